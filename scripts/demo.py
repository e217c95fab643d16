# SPDX-License-Identifier: MIT
"""The pycds demo: trace, dump and share a built-in workload, then time
its imports with and without the archive (interleaved runs, medians).

Run by scripts/demo.sh; usable alone:
    python3.11 scripts/demo.py --build BUILD [--python PY] [--rounds N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOAD = '''\
import time
t = time.perf_counter()
import asyncio, email.mime.multipart, http.client, json, argparse, typing
import dataclasses, logging.handlers, unittest, xml.etree.ElementTree
import urllib.request, decimal, pathlib, tomllib, concurrent.futures
import sqlite3, csv, zipfile, tarfile, subprocess, inspect, pydoc
%s
t = time.perf_counter() - t
print('%%.3f' %% (t * 1000))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', required=True, help='pycds build directory')
    ap.add_argument('--python', default='/usr/bin/python3.11')
    ap.add_argument('--rounds', type=int, default=15)
    args = ap.parse_args()
    pycds = os.path.join(args.build, 'tools', 'pycds')
    extra = ''
    probe = subprocess.run([args.python, '-c', 'import sympy'],
                           capture_output=True)
    if probe.returncode == 0:
        extra = 'import sympy'
    with tempfile.TemporaryDirectory(prefix='pycds-demo-') as tmp:
        app = os.path.join(tmp, 'app.py')
        lst = os.path.join(tmp, 'heap.lst')
        img = os.path.join(tmp, 'heap.img')
        with open(app, 'w') as f:
            f.write(WORKLOAD % extra)
        env = dict(os.environ)
        env.pop('PYTHONDONTWRITEBYTECODE', None)  # stock gets warm .pyc
        subprocess.run([args.python, app], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        steps = [
            ('trace', [pycds, 'trace', '-o', lst, '--', args.python, app]),
            ('dump', [pycds, 'dump', lst, '-o', img, '--python',
                      args.python]),
        ]
        for name, cmd in steps:
            print('$ ' + ' '.join(cmd), flush=True)
            subprocess.run(cmd, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        with open(lst) as f:
            nmods = sum(1 for line in f if line.strip())
        print('traced %d modules; archive %.1f MB' %
              (nmods, os.path.getsize(img) / 1e6))
        share = [pycds, 'run', img, '--', args.python, app]
        stock = [args.python, app]
        print('$ ' + ' '.join(share))
        times = {'stock': [], 'share': []}
        walls = {'stock': [], 'share': []}
        for _ in range(args.rounds):
            for kind, cmd in (('stock', stock), ('share', share)):
                t0 = time.perf_counter()
                out = subprocess.run(cmd, env=env, check=True,
                                     capture_output=True, text=True).stdout
                walls[kind].append(time.perf_counter() - t0)
                times[kind].append(float(out.split()[-1]))
        imp = {k: statistics.median(v) for k, v in times.items()}
        wall = {k: statistics.median(v) * 1000 for k, v in walls.items()}
        print('\n%d interleaved rounds, medians:' % args.rounds)
        print('  %-28s %9s %9s %7s' % ('', 'stock', 'pycds', 'ratio'))
        print('  %-28s %7.1fms %7.1fms %7.2f' % (
            'import time (in process)', imp['stock'], imp['share'],
            imp['share'] / imp['stock']))
        print('  %-28s %7.1fms %7.1fms %7.2f' % (
            'whole process (wall)', wall['stock'], wall['share'],
            wall['share'] / wall['stock']))


if __name__ == '__main__':
    main()
