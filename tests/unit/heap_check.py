# SPDX-License-Identifier: MIT
"""Comparisons for test_heap, run inside the embedded interpreter.

test_heap.c executes this file into a namespace that already holds `_c`,
its C helpers: in_archive(o) (is o inside a loaded archive image),
str_layout(s) ((kind, ascii, compact, ready, interned state,
statically_allocated)), refcnt(o) and co_version(code) (None on 3.11);
and the layout's constants: ARCHIVED_REFCNT (what Py_REFCNT says of an
archived object, cds_layout_refcnt_reported), SMALL_INT_MAX (the top of
the small-int cache), STR_STATIC (whether every str image is statically
allocated, 3.14 on), IMMORTAL
(3.12 on: PEP 683 objects) and SSTATE_LOADED (the interned state of an
archived str interned in place).  Every check raises AssertionError naming
the path of the offending object; test_heap.c prints the traceback and
fails the case."""

import gc
import locale
import sys
import types

CO_OPTIMIZED = 0x1

# fields the code object holds (archived objects or singletons)
CODE_FIELDS = ('co_consts', 'co_names', 'co_filename', 'co_name',
               'co_qualname', 'co_linetable', 'co_exceptiontable')
# values the getters compute (new objects, or plain numbers)
CODE_COMPUTED = ('co_argcount', 'co_posonlyargcount', 'co_kwonlyargcount',
                 'co_nlocals', 'co_stacksize', 'co_flags', 'co_firstlineno',
                 'co_code', 'co_varnames', 'co_cellvars', 'co_freevars')
# heap.c inv. 1: 2**40 on 3.11 (mortal: more than half of it is left
# whatever DECREFs ran), the immortal count from 3.12 (never written)
ARCHIVED_REFCNT = _c.ARCHIVED_REFCNT
_NOTHING = object()
_BYTES = bytes(range(256))


def canonical(o):
    """The process's own object for a value the archive never copies
    (heap.c inv. 3), or _NOTHING."""
    t = type(o)
    if o is None or o is True or o is False or o is Ellipsis:
        return o
    if t is int and -5 <= o <= _c.SMALL_INT_MAX:
        return int(str(o))          # the small-int cache
    if t is str and len(o) == 0:
        return str()
    if t is str and len(o) == 1 and ord(o) < 256:
        return chr(ord(o))          # the latin-1 character cache (*)
    if t is bytes and len(o) == 0:
        return bytes()
    if t is bytes and len(o) == 1:
        return _BYTES[o[0]:o[0] + 1]  # the 1-byte cache
    if t is tuple and len(o) == 0:
        return tuple()
    return _NOTHING


def interned(s):
    """Is s the string the interpreter has interned for its value?"""
    if len(s) <= 1:
        return False
    return sys.intern(''.join(list(s))) is s


def check(cond, path, what):
    if not cond:
        raise AssertionError(f'{path}: {what}')


def archived_refcnt(o):
    """Does o still carry the archive's reference count (inv. 1)?"""
    if _c.IMMORTAL:
        return _c.refcnt(o) == ARCHIVED_REFCNT
    return _c.refcnt(o) > ARCHIVED_REFCNT // 2


def deep_check(o, l, path='root', stats=None, copy_ok=False):
    """l, loaded from the archive, is o's faithful copy: same types all the
    way down, equal values, the process's singletons, the interpreter's
    interned strings, frozensets rebuilt, everything else in the image but
    where copy_ok: the module and class bodies handed out as heap copies,
    and the tuples and bytes only they name (format.md 8, step 6)."""
    if stats is None:
        stats = {}
    t = type(o)
    check(type(l) is t, path, f'type {type(l)} is not {t}')
    stats[t.__name__] = stats.get(t.__name__, 0) + 1
    c = canonical(o)
    if c is not _NOTHING and t is str and len(o) == 1:
        # (*) 3.11's compiler uses the interned 1-character strings, which
        # are not chr()'s cache for ASCII; either is the process's own
        # object (that names should stay the interned one is
        # check_one_char_names, a known bug)
        check(l is o or l is c, path, f'{l!r} is a copy')
        return stats
    if c is not _NOTHING:
        check(o is c, path, f'original {o!r} is not the singleton')
        check(l is c, path, f'{l!r} is a copy, not the singleton')
        return stats
    if t is frozenset:
        # built at load from the archived items (heap.c inv. 7)
        check(not _c.in_archive(l), path, 'frozenset inside the image')
        check(o == l and len(o) == len(l), path, f'{l!r} != {o!r}')
        check(hash(o) == hash(l), path, 'frozenset hash')
        for i, x in enumerate(sorted(o, key=repr)):
            check(x in l, path, f'{x!r} not a member')
            y = [y for y in l if y == x and type(y) is type(x)]
            check(len(y) == 1, path, f'{x!r} not found by type')
            deep_check(x, y[0], f'{path}{{{i}}}', stats)
        return stats
    if t is str and interned(o):
        # same process: the interpreter's interned string is o itself
        check(l is o, path, f'{l!r} is not the interned string')
        check(interned(l), path, f'{l!r} not interned')
        return stats
    copied = (copy_ok and not _c.in_archive(l) and
              (t in (tuple, bytes) or
               (t is types.CodeType and not o.co_flags & CO_OPTIMIZED)))
    if copied:
        check(not archived_refcnt(l), path, 'a heap copy with the '
              "archive's reference count")
    else:
        check(_c.in_archive(l), path,
              f'{t.__name__} {l!r:.60} not in the image')
        check(archived_refcnt(l), path, 'refcount not immortal')
        check(not gc.is_tracked(l), path, 'archived object tracked by the GC')
    if t is types.CodeType:
        path = f'{path}<{o.co_qualname}>'
        for a in CODE_FIELDS:
            deep_check(getattr(o, a), getattr(l, a), f'{path}.{a}', stats,
                       copied)
        for a in CODE_COMPUTED:
            same(getattr(o, a), getattr(l, a), f'{path}.{a}')
        for a in ('co_varnames', 'co_cellvars', 'co_freevars'):
            for i, (x, y) in enumerate(zip(getattr(o, a), getattr(l, a))):
                deep_check(x, y, f'{path}.{a}[{i}]', stats)
        check(list(o.co_positions()) == list(l.co_positions()), path,
              'co_positions')
        check(list(o.co_lines()) == list(l.co_lines()), path, 'co_lines')
        check(o == l, path, 'code objects compare unequal')
        check(hash(o) == hash(l), path, 'code hash')
    elif t is slice:
        # 3.14 on: constant slices (format.md 5.1.8)
        for a in ('start', 'stop', 'step'):
            deep_check(getattr(o, a), getattr(l, a), f'{path}.{a}', stats)
    elif t is tuple:
        check(len(o) == len(l), path, f'length {len(l)} != {len(o)}')
        for i, (x, y) in enumerate(zip(o, l)):
            # a copied co_consts holds copies of the class bodies only
            deep_check(x, y, f'{path}[{i}]', stats,
                       copied and type(x) is types.CodeType)
    elif t is float or t is complex:
        check(repr(o) == repr(l), path, f'{l!r} != {o!r}')  # -0.0, inf
        check(hash(o) == hash(l), path, 'hash')
    elif t is str:
        check(o == l, path, f'{l!r:.60} != {o!r:.60}')
        check(len(o) == len(l), path, 'length')
        lo, ll = _c.str_layout(o), _c.str_layout(l)
        check(lo[:4] == ll[:4], path, f'layout {ll} != {lo}')
        check(ll[5] == _c.STR_STATIC, path, 'statically_allocated')
        check(ll[4] == 0, path, 'an uninterned copy has interned state')
        check(hash(o) == hash(l), path, 'hash')
        check(l.encode('utf-8') == o.encode('utf-8'), path, 'utf-8')
        check({o: 1}.get(l) == 1 and {l: 1}.get(o) == 1, path, 'dict key')
        if '\0' not in o:
            # wide-char view (3.11: a UCS-4 string's wstr is its data)
            check(locale.strcoll(l, o) == 0, path, 'wchar_t view (strcoll)')
    elif t in (int, bytes):
        check(o == l, path, f'{l!r:.60} != {o!r:.60}')
        check(hash(o) == hash(l), path, 'hash')
        check(repr(o) == repr(l), path, 'repr')
    else:
        raise AssertionError(f'{path}: unexpected type {t}')
    return stats


def same(a, b, path='result'):
    """Results equal with identical types all the way down."""
    check(type(a) is type(b), path, f'type {type(b)} is not {type(a)}')
    if isinstance(a, (tuple, list)):
        check(len(a) == len(b), path, 'length')
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f'{path}[{i}]')
    elif isinstance(a, dict):
        check(list(a) == list(b), path, 'keys')
        for k in a:
            same(a[k], b[k], f'{path}[{k!r}]')
    elif isinstance(a, float):
        check(repr(a) == repr(b), path, f'{b!r} != {a!r}')
    else:
        check(a == b, path, f'{b!r} != {a!r}')


def check_loaded(orig, loaded):
    """deep_check from a module's root, which may be a heap copy."""
    deep_check(orig, loaded, copy_ok=True)


def check_same_run(orig, loaded):
    """Both run to the same RESULTS (loaded's objects need not lie in
    the image: copy mode moves them, format.md 8, step 5.4a)."""
    same(run(orig)['RESULTS'], run(loaded)['RESULTS'])


def check_same_results(orig, loaded):
    """check_loaded, then both run to the same RESULTS."""
    check_loaded(orig, loaded)
    same(run(orig)['RESULTS'], run(loaded)['RESULTS'])


def run(code):
    ns = {'__name__': 'heap_sample', '__builtins__': __builtins__}
    exec(code, ns)
    return ns


def check_round_trip(orig, loaded, kinds):
    """Everything test_heap asks of a loaded module: faithful objects, and
    the same behaviour when executed (twice: the second run goes through
    quickened, specialised archived code)."""
    stats = deep_check(orig, loaded, copy_ok=True)
    for k in kinds:
        check(stats.get(k, 0) > 0, 'root', f'no {k} object was compared')
    a, b = run(orig), run(loaded)
    same(a['RESULTS'], b['RESULTS'])
    same(a['results'](), b['results']())
    for name in ('member_str', 'member_int', 'member_mixed', 'kinds',
                 'square', 'comprehensions', 'closure', 'generator',
                 'coroutine', 'formatted', 'uses_globals', 'results'):
        check(b[name].__code__ is not a[name].__code__, name, 'same code')
        check(_c.in_archive(b[name].__code__), name, 'code not archived')
        deep_check(a[name].__code__, b[name].__code__, name)
    check(_c.in_archive(b['Klass'].method.__code__), 'Klass', 'method')
    gc.collect()
    return stats


def check_singletons(loaded):
    """Every singleton in the sample module is the process's object."""
    consts = run(loaded)
    for v in consts['SMALL_INTS']:
        check(v is int(str(v)), 'SMALL_INTS', f'{v} copied')
    for v, w in zip(consts['SINGLETONS'], (None, True, False, Ellipsis)):
        check(v is w, 'SINGLETONS', f'{v!r} copied')
    for s in consts['ONE_CHAR']:
        if len(s) == 0:
            check(s is str(), 'ONE_CHAR', "'' copied")
        elif ord(s) < 256:
            # chr()'s cache or the interned string: see canonical()
            check(s is chr(ord(s)) or s is sys.intern(chr(ord(s))),
                  'ONE_CHAR', f'{s!r} copied')
            check(not _c.in_archive(s), 'ONE_CHAR', f'{s!r} archived')
        else:
            check(_c.in_archive(s), 'ONE_CHAR', f'{s!r} not archived')
    b = consts['BYTES']
    check(b[1] is bytes(), 'BYTES', "b'' copied")
    check(b[2] is _BYTES[65:66] and b[3] is _BYTES[128:129], 'BYTES',
          '1-byte bytes copied')
    check(consts['NESTED'][2][0] is tuple(), 'NESTED', '() copied')
    for v in consts['BIG_INTS'][:3]:  # 257, 1024, 1025
        if v <= _c.SMALL_INT_MAX:
            check(v is int(str(v)) and not _c.in_archive(v), 'BIG_INTS',
                  f'{v} archived, but in the small-int cache')
        else:
            check(_c.in_archive(v), 'BIG_INTS', f'{v} not archived')


def check_interned_names(orig, loaded):
    """Names of archived code are the interpreter's interned strings (the
    ones orig uses, since it is alive in this process)."""
    n = 0
    todo = [(orig, loaded)]
    while todo:
        o, l = todo.pop()
        for attr in ('co_names', 'co_varnames', 'co_cellvars',
                     'co_freevars'):
            for x, y in zip(getattr(o, attr), getattr(l, attr)):
                if len(x) <= 1:
                    continue    # check_one_char_names
                check(interned(x), attr, f'{x!r} not interned in orig')
                check(y is sys.intern(''.join(list(y))), attr,
                      f'{y!r} not interned')
                check(y is x, attr, f'{y!r} is not the interned object')
                check(not _c.in_archive(y), attr, f'{y!r} is a duplicate')
                n += 1
        todo += [(x, y) for x, y in zip(o.co_consts, l.co_consts)
                 if type(x) is types.CodeType]
    check(n > 50, 'names', f'only {n} names checked')


def check_new_names(loaded, names):
    """Names no other object used at load: the archived strings themselves
    became the interned ones (heap.c inv. 6), and new code compiled now
    shares them."""
    fn = [c for c in loaded.co_consts if type(c) is types.CodeType][0]
    found = set(fn.co_varnames) | set(fn.co_names) | {fn.co_name}
    check(set(names) <= found, 'names', f'{names} not in {found}')
    for s in fn.co_varnames + fn.co_names + (fn.co_name,):
        if s not in names:
            continue
        check(_c.in_archive(s), s, 'not the archived string')
        check(sys.intern(''.join(list(s))) is s, s, 'not interned')
        layout = _c.str_layout(s)
        check(layout[4] == _c.SSTATE_LOADED, s,
              f'interned state {layout[4]}, not {_c.SSTATE_LOADED}')
        check(layout[5] == _c.IMMORTAL, s, 'statically_allocated')
        check(archived_refcnt(s), s, 'refcount')
        new = compile(f'{s} = {s}', '<new>', 'exec')
        check(new.co_names[0] is s, s, 'new code does not share it')
    ns = run(loaded)
    return ns


def check_frozensets(orig, loaded):
    a, b = run(orig), run(loaded)
    fs = [c for c in b['member_str'].__code__.co_consts
          if type(c) is frozenset]
    check(len(fs) == 1, 'member_str', 'no frozenset constant')
    fs = fs[0]
    check(type(fs) is frozenset, 'member_str', f'{type(fs)}')
    check(not _c.in_archive(fs), 'member_str', 'frozenset not rebuilt')
    for x in ('alpha', 'beta', 'gamma', 'delta'):
        check(x in fs, 'member_str', f'{x} not a member')
        check(''.join(list(x)) in fs, 'member_str', f'copy of {x}')
    check('zeta' not in fs, 'member_str', 'zeta a member')
    check(fs == frozenset(['alpha', 'beta', 'gamma', 'delta']), 'fs', '==')
    for f in ('member_str', 'member_int', 'member_mixed'):
        for x in ('beta', 'zeta', 2**100, 4, (1, 2), 'é', 2**70, 1.5):
            check(a[f](x) == b[f](x), f, f'{x!r}')
    try:
        b['member_str']([])
    except TypeError:
        pass
    else:
        raise AssertionError('unhashable member did not raise TypeError')


def check_survives_gc(loaded):
    ns = run(loaded)
    keep = [ns, loaded, loaded.co_consts, ns['NESTED'], ns['BIG_INTS']]
    holder = {'k': keep, 'cycle': None}
    holder['cycle'] = holder
    for _ in range(3):
        gc.collect()
    # the module body and its co_consts are heap copies (format.md 8,
    # step 6), mortal; what they hold stays archived
    for o in (loaded, loaded.co_consts):
        check(not _c.in_archive(o), 'gc', f'{type(o)} not a heap copy')
        check(not archived_refcnt(o), 'gc', 'a copy with an archived count')
    for o in (ns['NESTED'],):
        check(not gc.is_tracked(o), 'gc', f'{type(o)} tracked')
        check(archived_refcnt(o), 'gc', 'refcount')
    same(ns['results'](), run(loaded)['RESULTS'])
    del holder, keep, ns
    gc.collect()


def _code_pairs(orig, loaded):
    todo = [(orig, loaded)]
    while todo:
        o, l = todo.pop()
        yield o, l
        todo += [(x, y) for x, y in zip(o.co_consts, l.co_consts)
                 if type(x) is types.CodeType]


def _quickened(code):
    import dis
    plain = [(i.opname, i.arg) for i in dis.get_instructions(code)]
    adaptive = [(i.opname, i.arg)
                for i in dis.get_instructions(code, adaptive=True)]
    return plain != adaptive


def check_deoptimised(orig, loaded, fresh, fresh_form=True):
    """orig has run until quickened; loaded, not run yet, holds the
    never-executed instructions (heap.c inv. 5): 3.11, the plain ones;
    3.12 on, those of fresh (compiled alike, never run), which init_code
    quickens as it creates the object (not checked when fresh_form is
    false: test_heap.c's FIXME(layer))."""
    pairs = list(_code_pairs(orig, loaded))
    fresh = [f for f, _ in _code_pairs(fresh, fresh)]
    check(len(fresh) == len(pairs), 'fresh', 'not the same code graph')
    if _c.IMMORTAL:
        quick = [o.co_qualname for (o, _), f in zip(pairs, fresh)
                 if o._co_code_adaptive != f._co_code_adaptive]
    else:
        quick = [o.co_qualname for o, _ in pairs if _quickened(o)]
    check(len(quick) >= 3, 'orig', f'only {quick} quickened')
    for (o, l), f in zip(pairs, fresh):
        check(f.co_qualname == l.co_qualname, l.co_qualname, 'fresh')
        if _c.IMMORTAL:
            if fresh_form:
                check(l._co_code_adaptive == f._co_code_adaptive,
                      l.co_qualname, "archived code is not a fresh object's")
        else:
            check(not _quickened(l), l.co_qualname, 'archived quickened')
        check(o.co_code == l.co_code, l.co_qualname, 'co_code')


def check_one_char_names(orig, loaded):
    """1-character names are interned too: loaded code must use the
    interpreter's interned string, as the original does."""
    bad = []
    for o, l in _code_pairs(orig, loaded):
        for attr in ('co_names', 'co_varnames', 'co_cellvars',
                     'co_freevars'):
            for x, y in zip(getattr(o, attr), getattr(l, attr)):
                if len(x) != 1:
                    continue
                check(sys.intern(x) is x, attr, f'{x!r} not interned')
                if y is not x:
                    bad.append(f'{o.co_qualname}.{attr}: {y!r}')
    check(not bad, 'names', 'not the interned string: ' + ', '.join(bad))


def check_negative_ints(orig, loaded):
    """Negative ints of every size survive: values, signs, arithmetic."""
    deep_check(orig, loaded, copy_ok=True)
    a, b = run(orig), run(loaded)
    same(a['RESULTS'], b['RESULTS'])
    for v in b['NEG'][:-1]:
        check(v < 0, 'NEG', f'{v} is not negative')
        check(-(-v) == v and v + abs(v) == 0, 'NEG', f'{v} arithmetic')


def _strings(code, out):
    """Every str a code graph refers to (names, constants, nested code)."""
    todo = [code]
    while todo:
        o = todo.pop()
        t = type(o)
        if t is str:
            out.append(o)
        elif t is tuple or t is frozenset:
            todo += list(o)
        elif t is types.CodeType:
            todo += [o.co_consts, o.co_names, o.co_varnames, o.co_cellvars,
                     o.co_freevars, o.co_filename, o.co_name, o.co_qualname]
    return out


def check_shared(orig1, orig2, loaded1, loaded2):
    """Two modules' references to one interned string resolve to one
    object; returns how many distinct strings the pool should hold."""
    s1, s2 = _strings(loaded1, []), _strings(loaded2, [])
    common = set(s1) & set(s2)
    check({'shared_name_q1', 'shared_arg_q3', 'shared_fn_q2'} <= common,
          'shared', f'{common}')
    for name in common:
        if len(name) <= 1 or not interned(name):
            continue
        a = [x for x in s1 if x == name]
        b = [x for x in s2 if x == name]
        check(all(x is a[0] for x in a + b), name, 'not one object')
    pooled = {x for x in _strings(orig1, []) + _strings(orig2, [])
              if len(x) > 1 and interned(x)}
    return len(pooled)


def check_names_are(loaded, names):
    check(loaded.co_names == names, 'co_names',
          f'{loaded.co_names} != {names}')
    ns = run(loaded)
    for n in names:
        check(n in ns, n, 'not bound by the module')


# standard library sources of every shape (big ints, closures, match
# statements, async, long tables, non-ASCII text), for the deep validation
# of real code (test_heap_validate_accepts_archives)
STDLIB_SOURCES = (
    'json/decoder.py', 'email/_header_value_parser.py',
    'asyncio/base_events.py', 'collections/__init__.py', 'typing.py',
    'dataclasses.py', 'inspect.py', 'unittest/mock.py', 'argparse.py',
    '_pydecimal.py', 'fractions.py', 'statistics.py', 'enum.py',
    're/_parser.py', 'pydoc.py', 'textwrap.py', 'locale.py',
    'encodings/cp1252.py', 'html/entities.py',
    'tomllib/_parser.py', 'zoneinfo/_zoneinfo.py',
)


def stdlib_codes():
    """[(module name, code)] for the STDLIB_SOURCES found here, compiled as
    importlib does (never executed)."""
    import os
    root = os.path.dirname(os.__file__)
    out = []
    for rel in STDLIB_SOURCES:
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        with open(path, 'rb') as f:
            src = f.read()
        name = rel[:-3].replace('/', '.')
        out.append((name, compile(src, path, 'exec', dont_inherit=True)))
    return out
