# SPDX-License-Identifier: MIT
"""pycds dump --package and --path: archives without tracing (issue 10,
item 2).

1. `pycds dump --package requests` (Debian's python3-requests) archives
   every source module of the package but its tests; a program that
   imports every one of them runs as stock and each is served.
2. `--path DIR` over a tree with a package, a namespace portion, a tests
   directory and a module that does not compile: every other module is
   archived and served, the broken one is skipped with one line and
   counted, the tests are left out; --exclude and pycds.yaml's patterns
   drop what they match; a package that is not there is one line.
3. Progress: a dump of more than a second on a terminal (a pty) shows a
   bar (modules done of total, bytes), erased before the summary line;
   on a pipe nothing but the lines above.
"""
import os
import pty
import subprocess
import time

import cdstest

# imports every module a package has as files, sorted, and prints what
# each defines: the same in stock and SHARE
IMPORT_ALL = r'''
import importlib, os, sys
root = sys.argv[1]
pkg = importlib.import_module(root)
names = []
for d in pkg.__path__:
    for dirpath, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if x.isidentifier()
                         and x not in ('tests', 'test', 'testing'))
        rel = os.path.relpath(dirpath, d)
        prefix = root + ('' if rel == '.' else '.' + rel.replace(os.sep, '.'))
        for f in sorted(files):
            if f.endswith('.py') and f[:-3].isidentifier():
                names.append(prefix if f == '__init__.py'
                             else prefix + '.' + f[:-3])
for n in sorted(set(names)):
    try:
        m = importlib.import_module(n)
    except Exception as exc:
        print(n, 'fails', type(exc).__name__)
        continue
    print(n, len(vars(m)), sorted(k for k in vars(m) if not k.startswith('_'))[:8])
print('done', len(names))
'''


def main():
    t = cdstest.Case('dump_select')
    pycds = os.path.join(os.path.dirname(t.site), 'tools', 'pycds')
    env = t.environ({'PYTHONPATH': t.site})

    def dump(*args):
        return subprocess.run([pycds, 'dump', '--python', t.python] +
                              list(args), cwd=t.dir, env=env,
                              capture_output=True, text=True)

    def names(archive):
        r = subprocess.run([pycds, 'inspect', '--json', archive],
                           capture_output=True, text=True)
        import json
        return [m['name'] for m in json.loads(r.stdout)['modules']]

    # 1. a whole Debian package
    script = t.write('import_all.py', IMPORT_ALL)
    if not t.has_modules('requests'):
        t.skip('%s cannot import requests' % t.python)
    stock = t.stock([script, 'requests'])
    t.check(stock.rc == 0 and 'done' in stock.out and 'requests.api ' in
            stock.out, 'stock imports every module of requests', stock)
    d = dump('--package', 'requests', '-o', t.path('req.img'))
    t.check(d.returncode == 0 and 'dumped' in d.stderr,
            'dump --package requests', d.stdout + d.stderr)
    got = names(t.path('req.img'))
    want = [l.split()[0] for l in stock.out.splitlines()
            if l.startswith('requests') and ' fails ' not in l]
    t.check(set(want) <= set(got) and not [n for n in got if not
                                           n.startswith('requests')],
            'the archive holds every module of requests, nothing else',
            'missing: %r' % sorted(set(want) - set(got)))
    share = t.share([script, 'requests'], archive='req.img')
    t.check_same(stock, share, 'share of the --package archive')
    t.check(not share.warnings and set(want) <= set(share.served),
            'every module of requests served', share,
            'not served: %r' % sorted(set(want) - set(share.served)))

    # 2. a directory tree
    t.write('tree/top.py', 'X = 1\n')
    t.write('tree/pkg/__init__.py', '')
    t.write('tree/pkg/good.py', 'Y = 2\n')
    t.write('tree/pkg/bad.py', 'def f(:\n')
    t.write('tree/pkg/tests/test_a.py', 'T = 1\n')
    t.write('tree/pkg/drop_me.py', 'D = 1\n')
    t.write('tree/ns/nmod.py', 'Z = 3\n')
    t.write('pycds.yaml', 'exclude: ["*.yaml_drop"]\n')
    t.write('tree/pkg/yaml_drop.py', 'Q = 1\n')
    d = dump('--path', 'tree', '--package', 'no_such_pkg', '--exclude',
             'pkg.drop_*', '-o', t.path('tree.img'))
    got = names(t.path('tree.img'))
    t.check(d.returncode == 0 and sorted(got) == ['ns.nmod', 'pkg',
                                                  'pkg.good', 'top'],
            'dump --path: the tree less tests, excluded and broken modules',
            got, d.stderr)
    lines = [l for l in d.stderr.splitlines() if l.startswith('pycds:')]
    t.check(any('skipping pkg.bad' in l and 'SyntaxError' in l
                for l in lines)
            and any('--package no_such_pkg: not found' in l for l in lines)
            and any('(2 skipped' in l for l in lines),
            'one line per module that cannot be compiled or package not '
            'found, and the count', d.stderr)
    main_py = t.write('use_tree.py', 'import top, pkg.good, ns.nmod\n'
                      'print(top.X, pkg.good.Y, ns.nmod.Z)\n')
    tenv = {'PYTHONPATH': os.pathsep.join((t.site, t.path('tree')))}
    s0 = t.stock([main_py], env=tenv)
    s1 = t.share([main_py], archive='tree.img', env=tenv)
    t.check_same(s0, s1, 'share of the --path archive')
    t.check(all(m in s1.served for m in ('top', 'pkg', 'pkg.good',
                                         'ns.nmod')),
            'the tree\'s modules served', s1)
    t.check(not any('\r' in x.stderr for x in (d,)),
            'not a terminal: no progress bar', d.stderr)

    # 3. progress on a terminal
    if t.has_modules('sympy'):
        master, slave = pty.openpty()
        start = time.monotonic()
        # sympy and the stdlib's tree: several seconds of dump here, so
        # well past the second even on a fast machine (the bar's clock
        # starts with the module list and stops before the archive is
        # written, so the whole run's time only bounds it from above)
        stdlib = t.stock(['-c', 'import sysconfig; '
                          'print(sysconfig.get_path("stdlib"))']
                         ).out.strip()
        p = subprocess.Popen([pycds, 'dump', '--python', t.python,
                              '--package', 'sympy', '--path', stdlib,
                              '-o', t.path('sy.img')],
                             cwd=t.dir, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b''
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the other end closed
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        rc = p.wait()
        took = time.monotonic() - start
        text = out.decode(errors='replace')
        bar = '\rpycds: dump: [' in text and ' modules, ' in text
        t.check(rc == 0 and (bar or took < 2.0) and
                (not bar or '\r\x1b[Kpycds: dumped ' in text),
                'a terminal: the bar after a second (%.1f s here), erased '
                'before the summary' % took, repr(text[-400:]))
    t.finish()


if __name__ == '__main__':
    main()
