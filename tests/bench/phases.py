#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where the loader's time goes, per PYCDSPREFAULT setting.

    phases.py --python PY --build BUILD [--runs N] [--prefault all,] STMT

traces and dumps STMT (e.g. 'import sympy') into a work directory in the
build directory, then runs it under SHARE N times per PYCDSPREFAULT value,
interleaved, and prints the medians of _cds.stats(): load_ns (segment
first use in get_code, all of it), its phases_ns (fetch: prefault or
read-in; check: checksum and S1-S7; validate: the object bodies; patch;
intern: resolving the pool strings, interning included; refs: the
pool-reference slots; copy: the heap copies of module bodies), find_ns (find_spec) and whether copy mode was on;
stmt is the statement's own wall time, which also holds the faults a
lighter prefault moves out of the loader.  `all` is format 3's
whole-block prefault, the empty value the default (copy mode where every
page is written, shared pages elsewhere), `0` no prefault.

--intern-floor adds, interleaved with the same rounds, a process of the
same interpreter that makes as many fresh identifier-like strings as the
archive's pool holds and times sys.intern over them: what interning
alone costs when the strings are new and hot in the cache, the floor
under the intern phase that no loader which keeps CPython's interning
can go below.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys

PROBE = r'''
import json, sys, time
t0 = time.perf_counter_ns()
exec(sys.argv[1])
t1 = time.perf_counter_ns()
import _cds
s = _cds.stats()
print('PHASES ' + json.dumps({'stmt': t1 - t0, 'load': s['load_ns'],
                             'find': s['find_ns'],
                             'copied': s.get('copied'),
                             'served': s['served'],
                             'copy': 0, 'release': 0,
                             **s['phases_ns']}))
'''


FLOOR = r'''
import sys, time
n = int(sys.argv[1])
strs = [''.join(('n', str(i), '_', 'abcdefgh'[i % 8] * (i % 11)))
        for i in range(n)]
t0 = time.perf_counter_ns()
for s in strs:
    sys.intern(s)
print('FLOOR %d' % (time.perf_counter_ns() - t0))
'''


def pool_count(img):
    """The archive header's pool_count (docs/format.md 2, offset 448)."""
    with open(img, 'rb') as f:
        head = f.read(452)
    return struct.unpack_from('<I', head, 448)[0]


def probe(python, env, code, arg, tag):
    """Run code (-c) with arg in a fresh process; the line it prints
    after tag, as text."""
    p = subprocess.run([python, '-c', code, arg], env=env,
                       capture_output=True, text=True, timeout=300)
    for line in p.stdout.splitlines():
        if line.startswith(tag + ' '):
            return line[len(tag) + 1:]
    raise SystemExit('phases.py: no %s result (exit %s): %s'
                     % (tag, p.returncode, p.stderr[-2000:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--python', default='/usr/bin/python3.11')
    ap.add_argument('--build', required=True)
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--prefault', default='all,',
                    help='comma-separated PYCDSPREFAULT values ("" is the '
                         'default)')
    ap.add_argument('--pythonpath', default='',
                    help='appended to PYTHONPATH (pyenv: Debian\'s '
                         'dist-packages)')
    ap.add_argument('--intern-floor', action='store_true',
                    help='also time sys.intern over as many fresh strings '
                         'as the pool holds, in fresh processes')
    ap.add_argument('stmt')
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    work = os.path.join(build, 'phases')
    os.makedirs(work, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PYCDS') and k != 'PYTHONPATH'}
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.join(build, 'site')] + ([a.pythonpath] if a.pythonpath
                                         else []))
    if a.pythonpath:
        env['PYTHONPYCACHEPREFIX'] = os.path.join(work, 'pycache')
    lst, img = os.path.join(work, 'p.lst'), os.path.join(work, 'p.img')
    if os.path.exists(lst):
        os.unlink(lst)
    for mode, extra in (('TRACE', {'PYCDSLIST': lst}),
                        ('DUMP', {'PYCDSLIST': lst, 'PYCDSARCHIVE': img})):
        e = dict(env, PYCDSMODE=mode, **extra)
        args = [a.python, '-c', a.stmt] if mode == 'TRACE' else [a.python]
        subprocess.run(args, env=e, check=True, capture_output=True,
                       timeout=600)
    values = list(dict.fromkeys(a.prefault.split(',')))  # once each
    res = {v: [] for v in values}
    npool, floor = pool_count(img), []
    for r in range(a.runs):
        if a.intern_floor:
            floor.append(int(probe(a.python, env, FLOOR, str(npool),
                                       'FLOOR')))
        order = values[r % len(values):] + values[:r % len(values)]
        for v in order:
            e = dict(env, PYCDSMODE='SHARE', PYCDSARCHIVE=img)
            if v:
                e['PYCDSPREFAULT'] = v
            res[v].append(json.loads(probe(a.python, e, PROBE, a.stmt,
                                             'PHASES')))
    keys = ('stmt', 'load', 'fetch', 'check', 'validate', 'patch', 'intern',
            'refs', 'copy', 'release', 'find')
    print('%s, %r, %d runs each, medians in ms' % (a.python, a.stmt,
                                                   a.runs))
    print('%-14s %6s %7s ' % ('PYCDSPREFAULT', 'copy', 'served')
          + ' '.join('%8s' % k for k in keys))
    for v in values:
        rs = res[v]
        med = {k: statistics.median(x[k] for x in rs) / 1e6 for k in keys}
        print('%-14s %6s %7d ' % (v or '(default)', rs[0]['copied'],
                                  rs[0]['served'])
              + ' '.join('%8.1f' % med[k] for k in keys))
        if a.intern_floor:
            print('%-14s intern phase %.0f ns per pool string (%d)'
                  % ('', med['intern'] * 1e6 / npool, npool))
    if a.intern_floor:
        f = statistics.median(floor)
        print('intern floor: sys.intern of %d fresh strings %.1f ms, '
              '%.0f ns each (median of %d processes)'
              % (npool, f / 1e6, f / npool, len(floor)))


if __name__ == '__main__':
    main()
