# SPDX-License-Identifier: MIT
"""Real programs from Debian's packages, run as a user would run them on a
small project, stock and under SHARE: pytest (its assertion rewriting and
tracebacks), flake8, black, coverage (line tracing of served code), pip,
pdb driven on stdin, a zipapp and a venv.  Each is traced and dumped on
its own; stdout, stderr and exit status must be stock's and the
program's own modules must be served.  A program whose package is
missing is skipped, and said so."""
import os
import re
import subprocess

import cdstest


def timeless(res):
    """pytest says how long it took: not part of what must be stock's."""
    res.out = re.sub(r' in [0-9.]+s\b', ' in Ns', res.out)
    return res

LIB = r'''
"""A small library."""
import json


def total(items):
    out = 0
    for x in items:
        if x in {5, 13, 21}:
            out += 2 * x
        else:
            out += x
    return out


def encode(d):
    return json.dumps(d, sort_keys=True)
'''

TESTS = r'''
import proj.lib as lib


def test_total():
    assert lib.total([1, 5]) == 11


def test_encode():
    assert lib.encode({'b': 1, 'a': 2}) == '{"a": 2, "b": 1}'


def test_fails():
    x = lib.total([13])
    assert x == 13, 'deliberate'
'''

MAIN = r'''
import proj.lib as lib
print(lib.total(range(30)), lib.encode({'k': [1, 2]}))
'''

# flake8 finds E225, E231 and F401 here; black reformats it
UGLY = 'import os\nx=[1,2 ,3]\ndef f( a ):\n  return a+1\n'

PDB_INPUT = 'n\nn\np lib.total([5, 1])\nc\n'


def programs(t):
    """(label, argv after the interpreter, stdin, modules to import for it
    to make sense, names that must be served)."""
    return [
        ('pytest', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    'tests'], None, ['pytest'],
         ['_pytest.main', '_pytest.assertion.rewrite', 'pluggy']),
        ('flake8', ['-m', 'flake8', '--isolated', 'ugly.py'], None,
         ['flake8'], ['flake8.main.application', 'pycodestyle',
                      'pyflakes.checker']),
        ('black', ['-m', 'black', '--code', UGLY], None, ['black'],
         ['black', 'blib2to3.pgen2.driver']),
        ('coverage', ['-m', 'coverage', 'run', '--data-file=cov.data',
                      'main.py'], None, ['coverage'],
         ['coverage.control', 'proj.lib']),
        ('pip', ['-m', 'pip', 'list', '--disable-pip-version-check',
                 '--format=freeze', '--no-color'], None, ['pip'],
         ['pip._internal.cli.main']),
        ('pdb', ['-m', 'pdb', 'main.py'], PDB_INPUT, ['pdb'],
         ['pdb', 'proj.lib']),
    ]


def source_modules(t, names):
    """The names stock loads from a .py file: an extension module beside
    the source (mypyc-compiled black on Debian trixie) is imported instead
    of it, and rightly never served."""
    r = t.stock(['-c', 'import importlib.util as u, sys\n'
                 'for n in sys.argv[1:]:\n'
                 '    s = u.find_spec(n)\n'
                 '    print(n, s.origin if s else None)'] + list(names))
    return [line.split()[0] for line in r.out.splitlines()
            if line.endswith('.py')]


def check_program(t, label, args, stdin, must_serve):
    lst, img = label + '.lst', label + '.img'
    must_serve = source_modules(t, must_serve)
    # once before the reference: a program's first run on a machine may
    # create its caches (and say so)
    t.stock(args, stdin=stdin)
    stock = timeless(t.stock(args, stdin=stdin))
    tr = timeless(t.trace(args, lst=lst, stdin=stdin))
    t.check_same(stock, tr, '%s traced' % label)
    d = t.dump(lst=lst, archive=img)
    t.check(d.rc == 0 and os.path.exists(t.path(img)), '%s dumped' % label,
            d)
    for relocate in (False, True):
        res = timeless(t.share(args, archive=img, relocate=relocate,
                               stdin=stdin))
        what = '%s under SHARE%s' % (label, ', relocated' if relocate else '')
        t.check_same(stock, res, what)
        missing = [n for n in must_serve if n not in res.served]
        t.check(not missing and not res.warnings, what + ': served',
                'not served: %r' % missing, res.warnings)
    return stock


def main():
    t = cdstest.Case('programs')
    t.write('proj/__init__.py', '')
    t.write('proj/lib.py', LIB)
    t.write('tests/test_lib.py', TESTS)
    t.write('main.py', MAIN)
    t.write('ugly.py', UGLY)
    ran = 0
    for label, args, stdin, need, must_serve in programs(t):
        if not t.has_modules(*need):
            print('note: %s: %s cannot import %s: skipped'
                  % (label, t.python, ', '.join(need)))
            continue
        stock = check_program(t, label, args, stdin, must_serve)
        ran += 1
        if label == 'pytest':
            t.check(stock.rc == 1 and '2 passed' in stock.out and
                    "AssertionError: deliberate" in stock.out,
                    'pytest ran the suite (one deliberate failure, with '
                    'its rewritten assertion)', stock)
        elif label == 'flake8':
            t.check(stock.rc == 1 and 'F401' in stock.out, 'flake8 found '
                    'the errors', stock)
        elif label == 'black':
            t.check(stock.rc == 0 and 'x = [1, 2, 3]' in stock.out,
                    'black formatted the code', stock)
        elif label == 'coverage':
            # the data file of each run, reported: line coverage of
            # served code is the same
            rep = {}
            for arm in ('stock', 'share'):
                if arm == 'stock':
                    t.stock(['-m', 'coverage', 'run', '--data-file=cov.data',
                             'main.py'])
                    r = t.stock(['-m', 'coverage', 'report', '-m',
                                 '--data-file=cov.data'])
                else:
                    t.share(['-m', 'coverage', 'run', '--data-file=cov.data',
                             'main.py'], archive='coverage.img')
                    r = t.stock(['-m', 'coverage', 'report', '-m',
                                 '--data-file=cov.data'])
                rep[arm] = r
            t.check(rep['stock'].rc == 0 and 'proj/lib.py' in
                    rep['stock'].out, 'coverage report', rep['stock'])
            t.check_equal(rep['share'].out, rep['stock'].out,
                          'coverage report of a SHARE run is stock\'s')
        elif label == 'pdb':
            t.check('(Pdb)' in stock.out and '11' in stock.out,
                    'pdb stepped and evaluated', stock)

    # a zipapp: the archive serves the stdlib, the zip's own modules come
    # from zipimport as always
    if t.has_modules('zipapp'):
        p = t.stock(['-m', 'zipapp', 'proj', '-o', 'app.pyz', '-m',
                     'lib:total'])
        t.check(p.rc == 0, 'zipapp built', p)
        t.write('use_zip.py', 'import sys, json\nsys.path.insert(0, '
                '"app.pyz")\nimport lib\nprint(lib.total([5]), '
                'lib.__loader__.__class__.__name__, json.dumps([1]))\n')
        check_program(t, 'zipapp', ['use_zip.py'], None, ['json'])
        ran += 1

    # a venv: its python is the same interpreter with another sys.prefix;
    # the stdlib directories are the same, so they are served
    venv = t.path('venv')
    p = subprocess.run([t.python, '-m', 'venv', '--without-pip', venv],
                       capture_output=True, text=True,
                       env=t.environ({}))
    if p.returncode == 0:
        saved = t.python
        t.python = os.path.join(venv, 'bin', 'python')
        try:
            t.write('in_venv.py', 'import sys, json, textwrap\n'
                    'print(sys.prefix != sys.base_prefix, json.dumps([2]), '
                    'textwrap.shorten("a b c d e f", 7))\n')
            stock = check_program(t, 'venv', ['in_venv.py'], None,
                                  ['json', 'textwrap'])
            t.check(stock.out.startswith('True '), 'ran inside the venv',
                    stock)
        finally:
            t.python = saved
        ran += 1
    else:
        print('note: venv: cannot create one (%s): skipped'
              % p.stderr.strip()[-200:])
    if ran == 0:
        t.skip('none of the programs is installed for %s' % t.python)
    t.finish()


if __name__ == '__main__':
    main()
