#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One process's resident memory by mapping, stock against SHARE.

    rssmap.py --python PY --build BUILD [--build OTHER ...] [--rounds N]
              [--trace TRACED] STMT

traces and dumps STMT (e.g. 'import flask, requests'), or TRACED where
given (an archive holding more than STMT imports), with each build into
a work directory in the first build directory, then runs STMT in
fresh processes, stock and SHARE with each build, interleaved in an order
that rotates from round to round.  Each process reads its own
/proc/self/smaps and /proc/self/status after the statement: the Rss of
each mapping, summed by file name (the archive, _cds, the interpreter,
libc ...; anonymous memory as [anon], [heap]), and VmHWM, the peak RSS
the kernel counts (ru_maxrss).  It prints the medians of VmHWM against
stock's, then every mapping whose median Rss differs between the arms.

What it shows (docs/benchmarks.md, "Where a small workload's peak RSS
goes"): which part of a SHARE process's peak RSS is the archive (its
resident pages against the heap and anonymous memory stock spends on
the same objects), pycds's own library, and the pages of the
interpreter's and libc's text that pycds's code paths touch and stock's
do not (the kernel maps a file's cached pages around a faulting one,
fault-around, 64 KiB at a time).
"""
import argparse
import os
import statistics
import subprocess

PROBE = r'''
import os, sys
exec(sys.argv[1])
rss = {}
name = None
with open('/proc/self/smaps') as f:
    for line in f:
        field = line.split()
        if '-' in field[0] and not field[0].endswith(':'):
            path = field[5] if len(field) > 5 else '[anon]'
            name = os.path.basename(path) if path.startswith('/') else path
        elif field[0] == 'Rss:':
            rss[name] = rss.get(name, 0) + int(field[1])
with open('/proc/self/status') as f:
    hwm = [line.split()[1] for line in f if line.startswith('VmHWM:')][0]
print('RSSMAP HWM %s' % hwm)
for name, kb in rss.items():
    print('RSSMAP MAP %d %s' % (kb, name))
'''


def run(python, env, args, **kw):
    return subprocess.run([python] + args, env=env, check=True,
                          timeout=300, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--python', required=True)
    ap.add_argument('--build', required=True, action='append',
                    help='a build tree (its site/ is put on PYTHONPATH); '
                         'repeat to compare builds side by side')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--trace', metavar='TRACED',
                    help='the statement to trace and dump (default: STMT)')
    ap.add_argument('stmt')
    a = ap.parse_args()

    work = os.path.join(os.path.abspath(a.build[0]), 'rssmap')
    os.makedirs(work, exist_ok=True)
    base = {'PATH': '/usr/bin:/bin', 'HOME': work, 'LC_ALL': 'C.UTF-8'}
    # the stock run first, with .pyc writing on: every cache warm
    run(a.python, base, ['-c', a.stmt])
    arms = {'stock': base}
    for i, build in enumerate(a.build):
        lst = os.path.join(work, '%d.lst' % i)
        img = os.path.join(work, '%d.img' % i)
        env = dict(base, PYTHONPATH=os.path.join(os.path.abspath(build),
                                                 'site'))
        for old in (lst, img):  # TRACE appends to a list that exists
            if os.path.exists(old):
                os.unlink(old)
        run(a.python, dict(env, PYCDSMODE='TRACE', PYCDSLIST=lst),
            ['-c', a.trace or a.stmt])
        run(a.python, dict(env, PYCDSMODE='DUMP', PYCDSLIST=lst,
                           PYCDSARCHIVE=img), ['-c', 'pass'],
            stderr=subprocess.DEVNULL)
        arms['share %s' % build] = dict(env, PYCDSMODE='SHARE',
                                        PYCDSARCHIVE=img)

    names = list(arms)
    hwm = {n: [] for n in names}
    maps = {n: [] for n in names}
    for r in range(a.rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            out = run(a.python, arms[n], ['-c', PROBE, a.stmt],
                      capture_output=True, text=True).stdout
            got = {}
            for line in out.splitlines():
                f = line.split(None, 3)
                if f[:2] == ['RSSMAP', 'HWM']:
                    hwm[n].append(int(f[2]))
                elif f[:2] == ['RSSMAP', 'MAP']:
                    got[f[3]] = got.get(f[3], 0) + int(f[2])
            maps[n].append(got)

    stock = statistics.median(hwm['stock'])
    print('peak RSS (VmHWM), medians of %d rounds:' % a.rounds)
    for n in names:
        m = statistics.median(hwm[n])
        print('  %-40s %8.0f KiB  %.4f of stock' % (n, m, m / stock))
    keys = sorted(set().union(*(g for n in names for g in maps[n])))
    med = {n: {k: statistics.median(g.get(k, 0) for g in maps[n])
               for k in keys} for n in names}
    rows = [k for k in keys
            if any(med[n][k] != med['stock'][k] for n in names)]
    rows.sort(key=lambda k: -max(abs(med[n][k] - med['stock'][k])
                                 for n in names))
    print('Rss by mapping where the arms differ, KiB (medians):')
    print('  %-36s' % 'mapping' + ''.join('%12s' % ('stock' if n == 'stock'
                                                    else 'share %d' % i)
                                          for i, n in enumerate(names)))
    for k in rows:
        print('  %-36s' % k[:36] +
              ''.join('%12.0f' % med[n][k] for n in names))


if __name__ == '__main__':
    main()
