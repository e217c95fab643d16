# SPDX-License-Identifier: MIT
"""What 50 real programs found (issue 6): behaviour that must be stock's.

1. Frozenset constants iterate in the order stock builds them from the
   .pyc (marshal's order of insertion), whether or not a .pyc existed when
   the archive was dumped, relocated or not.
2. Modules inside a namespace package nested in a regular package are
   dumped (without importing anything) and served.
4. A package that puts an override directory first on its __path__ gets
   the override's submodule, as stock.
5. Profilers and tracers see no Python frame of pycds on the served
   path; python -v says where each served module's code came from.
And, found by review: a custom FileFinder loader, a failing finder and a
legacy finder earlier on the path are left to PathFinder.
"""
import os
import shutil

import cdstest

# Items chosen to collide in a set's table (same low bits), to make the
# table grow while it is built, and to mix kinds whose marshal bytes sort
# differently from their values.
SETS = r'''
def loop():
    out = []
    for x in {5, 13, 21}:
        out.append(x)
    return out


def members(x):
    return (x in {8, 16, 24, 32, 1, 9, 17, 25},
            x in {1000, 5, 2**40, 13, -3, 2**70, 0},
            x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta',
                  'eta', 'theta', 'iota', 'kappa'},
            x in {(1, 2), (2, 1), 3.5, -0.5, b'x', b'y', 1j, None},
            x in {0, 64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 704,
                  768, 832, 896, 960, 1024, 1088, 1152, 1216, 1280})


def constants():
    return [c for c in members.__code__.co_consts
            if isinstance(c, frozenset)]
'''

MAIN_SETS = r'''
import sets
print('loop', sets.loop())
for s in sets.constants():
    print('iter', list(s))
print('members', sets.members(13), sets.members('beta'))
'''


def check_sets(t):
    t.write('sets.py', SETS)
    main = t.write('main_sets.py', MAIN_SETS)
    # a fixed seed: str items then iterate in an order that depends only
    # on the order they were inserted, as ints always do
    seed = {'PYTHONHASHSEED': '7'}
    writing = dict(seed, PYTHONDONTWRITEBYTECODE=None)
    # where the runs write sets.py's .pyc (under CDSTEST_PYCACHE when set)
    cache = t.pycache(os.path.realpath(t.dir), seed)

    # the reference: stock with a warm .pyc
    shutil.rmtree(cache, ignore_errors=True)
    t.stock([main], env=writing)
    warm = t.stock([main], env=seed)
    shutil.rmtree(cache, ignore_errors=True)
    cold = t.stock([main], env=dict(seed, PYTHONDONTWRITEBYTECODE='1'))
    t.check(warm.rc == 0 and warm.out.count('iter') >= 4, 'stock runs', warm)
    t.check(cold.out != warm.out,
            'the test can fail: sets built from source iterate in another '
            'order than from the .pyc', cold.out, warm.out)

    # dumped with the .pyc there (it is read), and with none (the dump
    # writes what stock would)
    t.stock([main], env=writing)
    t.trace([main], lst='sets.lst', env=seed)
    for label, keep_pyc in (('with a .pyc', True), ('without a .pyc', False)):
        if not keep_pyc:
            shutil.rmtree(cache, ignore_errors=True)
        img = 'sets-%s.img' % ('pyc' if keep_pyc else 'nopyc')
        d = t.dump(lst='sets.lst', archive=img, args=[main],
                   env=dict(seed, PYTHONDONTWRITEBYTECODE='1'))
        t.check(d.rc == 0, 'dump %s' % label, d)
        for relocate in (False, True):
            res = t.share([main], archive=img, relocate=relocate, env=seed)
            what = 'frozenset order, dumped %s%s' % (
                label, ', relocated' if relocate else '')
            t.check('sets' in res.served, what + ': served', res)
            t.check_equal(res.out, warm.out, what)
        # another seed: ints and the str set follow the seed as stock does
        other = {'PYTHONHASHSEED': '12345'}
        if not keep_pyc:
            t.stock([main], env=dict(other, PYTHONDONTWRITEBYTECODE=None))
        want = t.stock([main], env=other)
        res = t.share([main], archive=img, env=other)
        t.check_equal(res.out, want.out,
                      'frozenset order under another seed, dumped ' + label)
        shutil.rmtree(cache, ignore_errors=True)
        t.stock([main], env=writing)


NESTED = r'''
import r.s.m
import r.s.deeper.leaf
print('nested', r.s.m.V, r.s.deeper.leaf.W, list(r.s.__path__))
try:
    import test.test_import.data.circular_imports.basic as basic
except ImportError:
    print('no CPython test package')
else:
    print('cpython data', basic.__name__, basic.__spec__.parent)
'''


def check_nested_namespace(t):
    """2: r is a regular package, r.s a namespace package inside it."""
    t.write('r/__init__.py', '')
    t.write('r/s/m.py', 'V = 1\n')
    t.write('r/s/deeper/leaf.py', 'W = 2\n')
    main = t.write('main_nested.py', NESTED)
    stock = t.stock([main])
    t.check(stock.rc == 0 and 'nested 1 2' in stock.out, 'stock', stock)
    tr = t.trace([main], lst='nested.lst')
    names = t.read_list('nested.lst')
    t.check('r.s.m' in names and 'r.s.deeper.leaf' in names, 'traced', tr,
            names)
    d = t.dump(lst='nested.lst', archive='nested.img', args=[main])
    t.check(d.rc == 0 and 'skipping r.s.m' not in d.err
            and 'skipping r.s.deeper.leaf' not in d.err
            and 'skipping test.test_import' not in d.err,
            'dump archives modules inside nested namespace packages', d)
    res = t.share([main], archive='nested.img')
    t.check_same(stock, res, 'nested namespace packages under SHARE')
    for name in ('r.s.m', 'r.s.deeper.leaf'):
        t.check(name in res.served, '%s served' % name, res)
    if 'no CPython test package' not in stock.out:
        t.check('test.test_import.data.circular_imports.basic' in res.served,
                'a module of CPython\'s test data package served', res)
    else:
        print('note: libpython3.11-testsuite absent: its case skipped')


OVERRIDE = r'''
import os
__path__.insert(0, os.path.join(os.path.dirname(__file__), 'override'))
'''


def check_override(t):
    """4: a package that puts an override directory first on __path__."""
    t.write('p/__init__.py', OVERRIDE)
    t.write('p/mod.py', 'print("original mod")\n')
    t.write('p/other.py', 'print("original other")\n')
    t.write('p/override/mod.py', 'print("override mod")\n')
    main = t.write('main_ov.py', 'import p.mod, p.other\n')
    stock = t.stock([main])
    t.check(stock.out == 'override mod\noriginal other\n', 'stock', stock)
    # the list names p.mod: the dump, which imports nothing, finds it in
    # p's own directory
    t.write('ov.lst', 'p\np.mod\np.other\n')
    d = t.dump(lst='ov.lst', archive='ov.img', args=[main])
    t.check(d.rc == 0 and 'dumped 3 modules' in d.err, 'dump', d)
    for relocate in (False, True):
        res = t.share([main], archive='ov.img', relocate=relocate)
        t.check_same(stock, res, 'override directory first on __path__')
        t.check('p.other' in res.served and 'p.mod' not in res.served,
                'the override wins over the archived p.mod', res)
        t.check(any('p.mod: not served: shadowed' in line
                    for line in res.err_lines),
                'verbose says p.mod is shadowed', res)


PROFILED = r'''
import sys
seen = set()
def prof(frame, event, arg):
    if event == 'call':
        seen.add(frame.f_code.co_filename)
sys.setprofile(prof)
import json, textwrap, csv
sys.setprofile(None)
print('pycds frames', sorted(f for f in seen if f.startswith('<pycds')))
print('importlib frames', any('importlib' in f for f in seen))
# the path finders made for the directories imported from: stock's, but
# for the directory PYTHONPATH adds under SHARE (pycds's activation)
import os
extra = set(os.environ.get('PYTHONPATH', '').split(':'))
print('importer cache', sorted(str(k) for k in sys.path_importer_cache
                               if k not in extra))
'''


def check_no_frames(t):
    """5: no Python frame of pycds on the served path; python -v."""
    main = t.write('main_prof.py', PROFILED)
    t.build([main], lst='prof.lst', archive='prof.img')
    stock = t.stock([main])
    res = t.share([main], archive='prof.img')
    t.check_same(stock, res, 'sys.setprofile sees what stock sees')
    t.check("pycds frames []" in res.out and 'json' in res.served,
            'no pycds frame under sys.setprofile', res)
    for tool in (['-m', 'cProfile'], ['-m', 'trace', '--listfuncs']):
        res = t.share(tool + [main], archive='prof.img', verbose=False)
        t.check(res.rc == 0 and '<pycds' not in res.out and
                'pycds frames []' in res.out,
                '%s shows no pycds function' % tool[1], res)
    res = t.share(['-v', main], archive='prof.img', verbose=False)
    import json
    import textwrap
    for path in (json.__file__, textwrap.__file__):
        line = "# code object from pycds archive '%s' for '%s'" % (
            t.path('prof.img'), path)
        t.check(line in res.err_lines, 'python -v says: ' + line, res)


HOOKS = r'''
import sys
from importlib.machinery import (FileFinder, SourceFileLoader,
                                 SOURCE_SUFFIXES)

# an import-time transformer: a FileFinder whose loader for .py is its own
# (it compiles every time, so that a .pyc, written or not, changes nothing)
class Xform(SourceFileLoader):
    def get_code(self, fullname):
        data = self.get_data(self.path).replace(b'original', b'transformed')
        return compile(data, self.path, 'exec', dont_inherit=True)

here = sys.path[0]
sys.path_hooks.insert(0, FileFinder.path_hook((Xform, SOURCE_SUFFIXES)))
sys.path_importer_cache.pop(here, None)
import hooked
print('hooked', hooked.WHAT, type(hooked.__loader__).__name__)
sys.path_hooks.pop(0)
sys.path_importer_cache.pop(here, None)

# an earlier entry whose finder fails: the import fails as without pycds
class Boom:
    def find_spec(self, name, target=None):
        raise RuntimeError('boom ' + name)

def boom_hook(entry):
    if entry == '<boom>':
        return Boom()
    raise ImportError

sys.path_hooks.insert(0, boom_hook)
sys.path.insert(0, '<boom>')
try:
    import failing
except RuntimeError as e:
    print('failing raised', e)
sys.path.remove('<boom>')

# an earlier entry with a legacy finder (find_module only)
class Legacy:
    def find_module(self, name, path=None):
        return self if name == 'legacy_mod' else None
    def load_module(self, name):
        import types
        m = sys.modules[name] = types.ModuleType(name)
        m.WHAT = 'from the legacy finder'
        return m

def legacy_hook(entry):
    if entry == '<legacy>':
        return Legacy()
    raise ImportError

import warnings
sys.path_hooks.insert(0, legacy_hook)
sys.path.insert(0, '<legacy>')
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    try:
        import legacy_mod
        print('legacy', legacy_mod.WHAT)
    except AttributeError as e:
        # 3.12 on: PathFinder calls find_spec, which Legacy lacks
        print('legacy raised', type(e).__name__, e)
sys.path.remove('<legacy>')

cds = sys.modules.get('_cds')
if cds is not None:
    try:
        cds.frozensets_as_tuples(b'>')
    except ValueError:
        pass
print('one byte', b'>', bytes([62]) == b'>')
'''


def check_hooks(t):
    """A custom FileFinder loader, a failing finder and a legacy finder
    earlier on sys.path: the archive steps aside, as PathFinder would
    not reach it (found by review)."""
    t.write('hooked.py', "WHAT = 'original'\n")
    t.write('failing.py', "WHAT = 'archived failing'\n")
    t.write('legacy_mod.py', "WHAT = 'archived legacy'\n")
    main = t.write('main_hooks.py', HOOKS)
    t.write('hooks.lst', 'hooked\nfailing\nlegacy_mod\n')
    d = t.dump(lst='hooks.lst', archive='hooks.img', args=[main])
    t.check(d.rc == 0 and 'dumped 3 modules' in d.err, 'dump', d)
    stock = t.stock([main])
    t.check('hooked transformed Xform' in stock.out and
            'failing raised boom failing' in stock.out and
            ('legacy from the legacy finder' in stock.out or
             "legacy raised AttributeError 'Legacy' object has no attribute "
             "'find_spec'" in stock.out) and
            'one byte' in stock.out, 'stock', stock)
    for relocate in (False, True):
        res = t.share([main], archive='hooks.img', relocate=relocate)
        t.check_same(stock, res, 'custom, failing and legacy finders%s'
                     % (', relocated' if relocate else ''))
        t.check(not {'hooked', 'failing', 'legacy_mod'} & res.served,
                'none of them served', res)


def main():
    t = cdstest.Case('fidelity')
    check_sets(t)
    check_nested_namespace(t)
    check_override(t)
    check_no_frames(t)
    check_hooks(t)
    t.finish()


if __name__ == '__main__':
    main()
