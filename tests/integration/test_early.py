# SPDX-License-Identifier: MIT
"""The pool's early list (format.md 4.1): strings the traced program
interned on its own before a module naming them was loaded.

A C extension interns the names of its functions when it is imported
(`math`: `isqrt`, `comb`, ...).  A program that imports `math` before a
module that names them would, under SHARE, have those names interned on
its heap first: every slot of the archive naming them would be written at
load (private copies of the file's pages), and the archive's strings would
go unused.  TRACE (3.12 on, where the interned dict can be read) records
them as `$ STRING` lines; DUMP puts them on the early list; SHARE interns
them at activation, before `math` is imported, so the interned names are
the archive's own.  On 3.11 TRACE records none, and the records are added
by hand (the list is meant to be edited): the rest works the same.

1. TRACE writes `$` records for the names `math` interned (3.12 on).
2. With them, the interned names are objects in the archive's range;
   from the same list without them (the control), none is.
3. Output as stock in both.
4. A damaged early list (an index past the pool, resealed): one pycds
   warning, output as stock, modules still served; `pycds verify`
   refuses it and passes the good one.
"""
import json
import os
import subprocess

import cdstest

USEMATH = '''\
from math import isqrt, nextafter, ulp, comb, perm, lcm, gcd
NAMES = ('isqrt', 'nextafter', 'ulp', 'comb', 'perm', 'lcm', 'gcd')


def run():
    return [isqrt(99), comb(5, 2), perm(5, 2), lcm(4, 6), gcd(12, 18),
            nextafter(1.0, 2.0) > 1.0, ulp(1.0) > 0]
'''

MAIN = '''\
import json
import os
import math
import usemath
print(usemath.run(), math.pi)
out = os.environ.get('EARLY_OUT')
if out:
    base = size = 0
    arch = os.environ.get('PYCDSARCHIVE')
    if arch and os.environ.get('PYCDSMODE') == 'SHARE':
        with open(arch, 'rb') as f:
            base = int.from_bytes(f.read(40)[32:40], 'little')
        size = os.path.getsize(arch)
    with open(out, 'w') as f:
        json.dump({n: base <= id(n) < base + size for n in usemath.NAMES}, f)
'''


def main():
    t = cdstest.Case('early')
    t.write('usemath.py', USEMATH)
    main_py = t.write('main.py', cdstest.STATS_HOOK + MAIN)
    out = t.path('early.json')
    env = {'EARLY_OUT': out}
    probe = t.stock(['-c', 'import sys; print(sys.version_info >= (3, 12))'])
    recorded = probe.out.strip() == 'True'

    stock = t.stock([main_py], env=env)
    t.check(stock.rc == 0 and '[9, 10, 20, 12, 6, True, True]' in stock.out,
            'stock run', stock)
    t.build([main_py], env=env)
    text = t.read('heap.lst')
    dollars = {l[2:] for l in text.splitlines() if l.startswith('$ ')}
    names = ('isqrt', 'nextafter', 'ulp', 'comb', 'perm', 'lcm', 'gcd')
    if recorded:
        # (one the interpreter has interned at start-up, or statically,
        # is not recorded: it is not the program's)
        t.check(len(set(names) & dollars) >= 5,
                "TRACE records the names math interned as '$' lines",
                sorted(dollars)[:40])
    else:
        t.check(not dollars, "3.11: TRACE writes no '$' records",
                sorted(dollars)[:10])
        text += ''.join('$ %s\n' % n for n in names)
        t.write('heap.lst', text)
    t.write('plain.lst', ''.join(l + '\n' for l in text.splitlines()
                                 if not l.startswith('$')))
    d = t.dump(args=[main_py], env=env)
    t.check(d.rc == 0, 'dump with the records', d)
    d = t.dump(lst='plain.lst', archive='plain.img', args=[main_py], env=env)
    t.check(d.rc == 0, 'dump without them', d)
    with open(t.path('heap.img'), 'rb') as f:
        data = bytearray(f.read())
    h = cdstest.full_header(data)
    with open(t.path('plain.img'), 'rb') as f:
        plain = cdstest.full_header(f.read())
    t.check(h['pool_early_count'] >= 5 and plain['pool_early_count'] == 0,
            'the early list holds the recorded names that are pooled',
            h['pool_early_count'], plain['pool_early_count'])

    def where(res):
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    s = t.share([main_py], env=env)
    t.check_same(stock, s, 'SHARE with the early list')
    got = where(s)
    t.check('usemath' in s.served and sum(got.values()) >= 5,
            "with the early list the interned names are the archive's",
            got, s.served)
    c = t.share([main_py], archive='plain.img', env=env)
    t.check_same(stock, c, 'SHARE without it')
    got = where(c)
    t.check('usemath' in c.served and got and not any(got.values()),
            'without it they are the ones math interned on the heap', got)

    # a damaged list: an index past the pool, every checksum recomputed
    hasher = cdstest.xxh3_64()
    if hasher is None:
        print('note: no XXH3 (python3-xxhash or libxxhash): the damaged '
              'early list is not tried')
    else:
        at = h['pool_offset'] + h['pool_table_off'] + 4 * h['pool_count']
        data[at:at + 4] = (h['pool_count'] + 7).to_bytes(4, 'little')
        with open(t.path('bad.img'), 'wb') as f:
            f.write(cdstest.reseal_all(data, hasher))
        b = t.share([main_py], archive='bad.img', env=env)
        t.check_same(stock, b, 'SHARE with a damaged early list',
                     stderr=False)
        t.check(len(b.warnings) == 1 and 'pool index' in b.warnings[0]
                and 'usemath' in b.served,
                'one warning naming the bad index; modules still served',
                b.warnings, b.served)
        cli = os.path.join(os.path.dirname(t.site), 'tools', 'pycds')
        if not os.path.exists(cli):
            print('note: no %s: verify is not tried' % cli)
        else:
            v = subprocess.run([cli, 'verify', t.path('heap.img')],
                               capture_output=True, text=True)
            t.check(v.returncode == 0, 'verify passes the early list', v)
            v = subprocess.run([cli, 'verify', t.path('bad.img')],
                               capture_output=True, text=True)
            t.check(v.returncode == 1 and 'pool index' in v.stderr,
                    'verify names the bad early index', v)
    t.finish()


if __name__ == '__main__':
    main()
