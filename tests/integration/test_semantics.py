# SPDX-License-Identifier: MIT
"""Same semantics (DESIGN.md "Loading" 4 and the invariants): a package
served from the archive looks to the program exactly as when imported
from source/.pyc.  main.py prints __file__, __cached__, the spec and the
loader's answers, resources, a traceback, inspect, linecache, warnings,
pickle, reload, tracing, ... and ends with a warning and an uncaught
exception from the archived module; the SHARE run's stdout, stderr and
exit status must equal the stock run's.  Dump and share also run with
different hash seeds (archived strings must not carry the dump's
hashes)."""
import cdstest

INIT = '''\
"""The test package."""
LOADS = globals().get('LOADS', 0) + 1


def where():
    return __file__
'''

SUB = '''\
"""A submodule of the test package."""
import warnings

LOADS = globals().get('LOADS', 0) + 1
WORDS = ('alpha', 'beta', 'gamma')


def greet(name):
    """Say hello."""
    return 'hello ' + name


def fail(depth=0):
    if depth < 2:
        return fail(depth + 1)
    raise ValueError('failed at depth %d' % depth)  # the raising line


def warn():
    warnings.warn('sub warns', UserWarning)  # the warning line


# A comment that inspect.getcomments sees.
class Point:
    """A point."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return 'Point(%r, %r)' % (self.x, self.y)


def known(word):
    return word in {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'}


def lookup(word):
    return {'alpha': 1, 'beta': 2, 'gamma': 3}.get(word, -1)


def lines():
    total = 0
    for i in range(3):
        total += i
    return total
'''

OTHER = '''\
VALUE = 'other module value'
'''

# latin-1 source with a coding declaration
LATIN = '''\
# -*- coding: latin-1 -*-
"""Caf\xe9 module."""
TEXT = 'cr\xe8me br\xfbl\xe9e \xa9'


def f(fail=False):
    """D\xe9j\xe0 vu."""
    if fail:
        raise ValueError('\xe9chec')  # \xe9chec
    return TEXT.upper()
'''

ANNOTATED = '''\
from __future__ import annotations

x: Undefined = 1


def f(a: int, b: list[Undefined]) -> dict[str, int]:
    return {}


class C:
    y: SomethingElse
'''

SERVED = {'pkg', 'pkg.sub', 'pkg.other', 'nspkg.mod', 'latin', 'annotated'}

MAIN = '''\
import dis
import importlib
import importlib.resources
import importlib.util
import inspect
import linecache
import os
import pickle
import pkgutil
import sys
import traceback
import warnings
from importlib.machinery import SourceFileLoader

import pkg
import pkg.sub
from pkg import sub


def show(key, value):
    print('%s: %r' % (key, value))


def norm(consts):
    # a frozenset's order depends on the hash seed: compare it sorted
    return tuple(sorted(c) if isinstance(c, frozenset) else c
                 for c in consts)


def describe(mod):
    n = mod.__name__
    spec = mod.__spec__
    show(n + ' __name__', mod.__name__)
    show(n + ' __file__', mod.__file__)
    # 3.15 sets no __cached__ (only __spec__.cached)
    show(n + ' __cached__', getattr(mod, '__cached__', None))
    show(n + ' __package__', mod.__package__)
    show(n + ' __path__', getattr(mod, '__path__', None))
    show(n + ' __doc__', mod.__doc__)
    show(n + ' spec.name', spec.name)
    show(n + ' spec.origin', spec.origin)
    show(n + ' spec.cached', spec.cached)
    show(n + ' spec.has_location', spec.has_location)
    show(n + ' spec.submodule_search_locations',
         spec.submodule_search_locations)
    show(n + ' spec.parent', spec.parent)
    show(n + ' spec.loader_state', spec.loader_state)
    show(n + ' spec.loader is __loader__', spec.loader is mod.__loader__)
    loader = spec.loader
    show(n + ' loader is a SourceFileLoader',
         isinstance(loader, SourceFileLoader))
    show(n + ' loader.name', loader.name)
    show(n + ' loader.path', loader.path)
    show(n + ' get_filename', loader.get_filename(n))
    show(n + ' is_package', loader.is_package(n))
    show(n + ' get_source', loader.get_source(n))
    show(n + ' get_data', loader.get_data(mod.__file__))
    show(n + ' path_stats size', loader.path_stats(mod.__file__)['size'])
    code = loader.get_code(n)
    show(n + ' get_code type', type(code).__name__)
    show(n + ' get_code co_filename', code.co_filename)
    show(n + ' get_code co_name', code.co_name)
    with open(mod.__file__, 'rb') as f:
        src = f.read()
    show(n + ' get_code == compile(source)',
         code == compile(src, mod.__file__, 'exec', dont_inherit=True))
    show(n + ' resource reader', type(loader.get_resource_reader(n)).__name__)
    show(n + ' importlib.util.find_spec origin',
         importlib.util.find_spec(n).origin)


describe(pkg)
describe(sub)
show('pkg.where()', pkg.where())
show('sys.modules', sys.modules['pkg.sub'] is sub and pkg.sub is sub)

# the module's functions are what compiling the source gives
with open(sub.__file__, 'rb') as f:
    compiled = compile(f.read(), sub.__file__, 'exec', dont_inherit=True)
consts = {c.co_name: c for c in compiled.co_consts if hasattr(c, 'co_name')}
for fn in (sub.greet, sub.fail, sub.warn, sub.known, sub.lines,
           sub.Point.__init__):
    c = fn.__code__
    show(fn.__qualname__ + ' code', (c.co_filename, c.co_name, c.co_qualname,
                                     c.co_firstlineno, c.co_argcount,
                                     c.co_varnames, c.co_names,
                                     norm(c.co_consts)))
    show(fn.__qualname__ + ' positions', list(c.co_positions()))
    show(fn.__qualname__ + ' lines', list(c.co_lines()))
    show(fn.__qualname__ + ' ops', [i.opname for i in dis.get_instructions(c)])
    if fn.__name__ in consts:
        show(fn.__qualname__ + ' == compiled', c == consts[fn.__name__])
show('greet', (sub.greet('world'), sub.greet.__doc__, sub.greet.__module__,
               sub.greet.__qualname__, sub.greet.__defaults__))
show('fail defaults', sub.fail.__defaults__)

# strings: lookups by strings made at run time (hashes, interning)
for w in ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta']:
    rt = ''.join(list(w))
    show('known ' + w, (sub.known(rt), sub.lookup(rt), rt in sub.WORDS))
show('getattr', getattr(sub, ''.join(['gr', 'eet']))('x'))
show('interned names', ''.join(['gr', 'eet']) in vars(sub)
     and sys.intern(''.join(['gr', 'eet'])) is sub.greet.__name__)

# resources
files = importlib.resources.files('pkg')
show('resources files type', type(files).__name__)
show('resources read_text', files.joinpath('data.txt').read_text())
show('resources is_file', files.joinpath('data.txt').is_file())
show('resources iterdir', sorted(p.name for p in files.iterdir()
                                 if p.name != '__pycache__'))
with importlib.resources.as_file(files.joinpath('data.txt')) as p:
    show('resources as_file', str(p))
show('pkgutil.get_data', pkgutil.get_data('pkg', 'data.txt'))
show('pkgutil.iter_modules', sorted(m.name for m in
                                    pkgutil.iter_modules(pkg.__path__)))
show('pkg.__loader__.get_data', pkg.__loader__.get_data(
    os.path.join(os.path.dirname(pkg.__file__), 'data.txt')))

# traceback with source lines
try:
    sub.fail()
except ValueError:
    show('traceback', traceback.format_exc())
    show('extract_tb', [(f.filename, f.lineno, f.name, f.line)
                        for f in traceback.extract_tb(sys.exc_info()[2])])

# inspect
show('getsource greet', inspect.getsource(sub.greet))
show('getsource Point', inspect.getsource(sub.Point))
show('getsourcelines fail', inspect.getsourcelines(sub.fail))
show('getsourcefile', inspect.getsourcefile(sub.Point))
show('getfile', inspect.getfile(sub.fail))
show('getcomments', inspect.getcomments(sub.Point))
show('getmodule', inspect.getmodule(sub.greet).__name__)
show('getsource module', inspect.getsource(sub) == sub.__loader__.get_source(
    'pkg.sub'))
show('signature', str(inspect.signature(sub.fail)))

# linecache
show('linecache getline', linecache.getline(sub.__file__, 9))
show('linecache getlines', len(linecache.getlines(sub.__file__)))
linecache.clearcache()
show('linecache after clear', linecache.getline(sub.__file__, 14))

# warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    sub.warn()
for w in caught:
    show('warning', (w.filename, w.lineno, w.category.__name__,
                     str(w.message), w.line))
    show('formatwarning', warnings.formatwarning(
        w.message, w.category, w.filename, w.lineno))

# pickle
show('pickle function', pickle.loads(pickle.dumps(sub.greet)) is sub.greet)
pt = pickle.loads(pickle.dumps(sub.Point(1, -2)))
show('pickle instance', (pt, type(pt) is sub.Point, pt == sub.Point(1, -2)))
show('pickle class', pickle.loads(pickle.dumps(sub.Point)) is sub.Point)
show('pickle bytes', pickle.dumps(sub.Point(3, 4), protocol=4))

# tracing (what coverage tools see)
events = []


def tracer(frame, event, arg):
    if frame.f_code.co_filename == sub.__file__:
        events.append((event, frame.f_code.co_name,
                       frame.f_lineno - frame.f_code.co_firstlineno))
    return tracer


sys.settrace(tracer)
sub.lines()
sys.settrace(None)
show('trace events', events)

# a submodule not imported yet: its spec, then the import
spec = importlib.util.find_spec('pkg.other')
show('other spec', (spec.name, spec.origin, spec.cached, spec.has_location,
                    spec.submodule_search_locations, spec.parent,
                    isinstance(spec.loader, SourceFileLoader)))
other = importlib.import_module('pkg.other')
show('other', (other.VALUE, other.__file__,
               getattr(other, '__cached__', None)))

# reload: the module body runs again, in the same module object
old_greet = sub.greet
again = importlib.reload(sub)
show('reload', (again is sub, sub.LOADS, sub.greet is old_greet,
                sub.greet('again'), sub.__spec__.origin))
again = importlib.reload(pkg)
show('reload pkg', (again is pkg, pkg.LOADS, pkg.__path__))
pt = pickle.loads(pickle.dumps(sub.Point(5, 6)))
show('pickle after reload', type(pt) is sub.Point)

# a namespace package's module, a latin-1 source, postponed annotations
import nspkg.mod
describe(nspkg.mod)
show('nspkg', (list(nspkg.__path__), nspkg.__spec__.origin,
               nspkg.__file__ if hasattr(nspkg, '__file__') else None,
               sorted(m.name for m in pkgutil.iter_modules(nspkg.__path__))))
import latin
show('latin', (latin.TEXT, latin.f(), latin.f.__doc__, len(latin.TEXT)))
show('latin source', latin.__loader__.get_source('latin'))
show('latin getsource', inspect.getsource(latin.f))
try:
    latin.f(fail=True)
except ValueError:
    show('latin traceback', traceback.format_exc())
import annotated
show('annotations', (annotated.f.__annotations__,
                     annotated.C.__annotations__,
                     annotated.f.__code__.co_flags,
                     annotated.__annotations__))

sys.stdout.flush()
# on stderr: a warning with its source line, then an uncaught traceback
sub.warn()
sub.fail()
'''


def main():
    t = cdstest.Case('semantics')
    t.write('pkg/__init__.py', INIT)
    t.write('pkg/sub.py', SUB)
    t.write('pkg/other.py', OTHER)
    t.write('pkg/data.txt', 'payload text\n')
    t.write('nspkg/mod.py', "VALUE = 'namespace portion'\n")
    with open(t.path('latin.py'), 'wb') as f:
        f.write(LATIN.encode('latin-1'))
    t.write('annotated.py', ANNOTATED)
    main_py = t.write('main.py', cdstest.STATS_HOOK + MAIN)

    stock = t.stock([main_py])
    t.check(stock.rc == 1 and 'ValueError: failed at depth 2' in stock.err
            and "raise ValueError('failed at depth %d' % depth)" in stock.err
            and 'UserWarning: sub warns' in stock.err,
            'stock run ends with the warning and the traceback', stock)
    t.check(stock.out.count('\n') > 100, 'stock run prints the values',
            stock)
    # the module list: trace, then make sure pkg.other is in it even
    # though the traced run imported it through find_spec first
    t.trace([main_py], env={'PYTHONHASHSEED': '1'})
    listed = t.read_list()
    t.check(SERVED <= set(listed), 'trace lists %s' % ' '.join(SERVED),
            listed)
    d = t.dump(args=[main_py], env={'PYTHONHASHSEED': '1'})
    t.check(d.rc == 0 and d.out == '', 'dump succeeds, prints nothing', d)

    for seed in ('2', '1', None):
        what = 'share (PYTHONHASHSEED=%s)' % (seed or 'random')
        share = t.share([main_py], env={'PYTHONHASHSEED': seed})
        t.check_same(stock, share, what)
        t.check(not share.warnings, what + ': no warnings', share)
        t.check(SERVED <= share.served,
                what + ': %s served from the archive' % ' '.join(SERVED),
                share)
        # the import serves the module body as a heap copy, once
        # (format.md 8, step 6); describe()'s explicit loader.get_code and
        # the reload, which goes through the finder again, get the
        # module's code as stock does, from its .pyc
        again = [ln for ln in share.err.splitlines()
                 if ln.endswith(': served once already; importing it '
                                'normally')]
        t.check(share.served_list.count('pkg.sub') == 1
                and share.served_list.count('pkg') == 1
                and sum(': pkg.sub: ' in ln for ln in again) == 2
                and sum(': pkg: ' in ln for ln in again) == 2,
                what + ': the import served pkg, pkg.sub; get_code and '
                'reload loaded them normally',
                [n for n in share.served_list if n.startswith('pkg')] +
                again)
        t.check(share.stats is not None and share.stats['failed'] == 0,
                what + ': no failed segments', share.stats)
    t.finish()


if __name__ == '__main__':
    main()
