# SPDX-License-Identifier: MIT
# Python half of the _cds extension's DUMP.  Compiled into _cds at build
# time (glue.h) and run when DUMP starts.  TRACE and SHARE never run it:
# everything they do while a program runs (the finder, the get_code put
# on SourceFileLoader) is C, so that no frame of pycds shows in a
# profiler or a tracer.
import sys
from _frozen_importlib_external import (PathFinder, SourceFileLoader,
                                        cache_from_source)


# Imported by site before any program code, from whatever directory is
# first on sys.path at that time (pycds's own activation directory, when
# the CLI runs a build tree): never archived.  (TRACE skips them in C.)
NOT_ARCHIVED = frozenset(('sitecustomize', 'usercustomize'))


def dump_prepare():
    """DUMP runs before sys.path[0] is set: add the script's directory,
    as the traced run had it."""
    import os
    if not sys.argv or sys.argv[0] in ('', '-', '-c', '-m'):
        # python (interactive or stdin), -c and -m put the current
        # directory first
        sys.path.insert(0, os.getcwd())
    elif os.path.isfile(sys.argv[0]):
        sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))


# dump --package/--path: package parts below the root that hold tests
# and benchmarks, left out unless named (docs/usage.md)
DEFAULT_EXCLUDED_PARTS = frozenset((
    'test', 'tests', 'testing', 'conftest', 'benchmarks', 'bench'))


def _walk(prefix, directory, out):
    """Source modules under directory, as prefix + their dotted names,
    sorted; packages recursed into (a directory without __init__.py is a
    namespace portion: its modules, not itself)."""
    import os
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return
    for entry in entries:
        path = os.path.join(directory, entry)
        if entry.endswith('.py') and entry != '__init__.py':
            stem = entry[:-3]
            if stem.isidentifier() and os.path.isfile(path):
                out.append(prefix + stem)
        elif entry.isidentifier() and os.path.isdir(path):
            if os.path.isfile(os.path.join(path, '__init__.py')):
                out.append(prefix + entry)
            _walk(prefix + entry + '.', path, out)


def expand_names(names, packages, paths, include, exclude):
    """names plus every source module of the packages (names) and
    directory trees (sys.path entries, put first on sys.path) given, less
    tests and benchmarks below each root; then, over all of them,
    include/exclude (fnmatch patterns on the full name; include keeps only
    matches): (names, [problem lines])."""
    import os
    from fnmatch import fnmatchcase
    from importlib.util import find_spec
    problems, found = [], []
    for d in reversed(paths):
        sys.path.insert(0, d)
    for d in paths:
        if not os.path.isdir(d):
            problems.append('--path %s: not a directory' % d)
            continue
        below = []
        _walk('', d, below)
        found.extend(n for n in below
                     if DEFAULT_EXCLUDED_PARTS.isdisjoint(n.split('.')))
    for root in packages:
        try:
            spec = find_spec(root)
        except (ImportError, ValueError) as exc:
            spec, why = None, '%s: %s' % (type(exc).__name__, exc)
        else:
            why = 'not found'
        if spec is None:
            problems.append('--package %s: %s' % (root, why))
            continue
        found.append(root)
        below = []
        for d in spec.submodule_search_locations or ():
            _walk(root + '.', d, below)
        found.extend(n for n in below if DEFAULT_EXCLUDED_PARTS.isdisjoint(
            n[len(root) + 1:].split('.')))
    seen, out = set(), []
    for n in list(names) + found:
        if n in seen:
            continue
        seen.add(n)
        if include and not any(fnmatchcase(n, p) for p in include):
            continue
        if any(fnmatchcase(n, p) for p in exclude):
            continue
        out.append(n)
    return out, problems


class _RecordingLoader(SourceFileLoader):
    """A SourceFileLoader that keeps the .pyc bytes get_code read or
    wrote: the marshal data stock CPython loads the module from."""

    def __init__(self, name, path):
        super().__init__(name, path)
        try:
            self.pyc_path = cache_from_source(path)
        except NotImplementedError:   # no cache_tag: no .pyc at all
            self.pyc_path = None
        self.read = self.written = None
        self.compiled = False

    def get_data(self, path):
        data = super().get_data(path)
        if path == self.pyc_path:
            self.read = data
        return data

    def set_data(self, path, data, *, _mode=0o666):
        if path == self.pyc_path:
            self.written = data
        return super().set_data(path, data, _mode=_mode)

    def source_to_code(self, data, path, *args, **kwargs):
        # whatever the version passes on: 3.15 adds fullname (compile's
        # module=, for warnings filters)
        self.compiled = True
        return super().source_to_code(data, path, *args, **kwargs)


def _code_and_set_orders(loader, name, origin):
    """The code object stock CPython runs for name with a warm .pyc, and
    the insertion order of its frozenset constants (format.md 5.4): a
    frozenset iterates in an order that depends on the order its items
    were inserted, which is the order of the .pyc, not one this process
    can recompute."""
    import marshal
    from _imp import _fix_co_filename
    from _cds import frozensets_as_tuples
    code = loader.get_code(name)
    if not loader.compiled:
        stream = loader.read[16:]     # the .pyc it read
    else:
        # compiled from the source, its frozensets in source order: what
        # stock runs next time is the .pyc written now (or that would be)
        if loader.written is not None:
            stream = loader.written[16:]
        else:
            stream = marshal.dumps(code)
        code = marshal.loads(stream)
        _fix_co_filename(code, origin)
    if b'>' not in stream and b'\xbe' not in stream:
        return code, None
    orders = {}
    _pair_sets(code, marshal.loads(frozensets_as_tuples(stream)), orders)
    return code, orders


CodeType = type(_code_and_set_orders.__code__)


def _pair_sets(real, shadow, orders):
    """Walk real (constants) and shadow (the same read with frozensets as
    tuples) side by side; orders[id(f)] = f's items as inserted.  A
    frozenset inside a frozenset (only hand-made code has one) is left
    out: its shadow items do not compare equal to its own."""
    kind = type(real)
    if kind is frozenset:
        if type(shadow) is tuple and len(shadow) == len(real):
            mine = {x: x for x in real}
            try:
                orders[id(real)] = tuple(mine[x] for x in shadow)
            except (KeyError, TypeError):
                pass
    elif kind is tuple and type(shadow) is tuple:
        for a, b in zip(real, shadow):
            _pair_sets(a, b, orders)
    elif kind is CodeType and type(shadow) is CodeType:
        _pair_sets(real.co_consts, shadow.co_consts, orders)


def dump_info(name):
    """Find name's source without importing anything (a submodule through
    its parents' specs) and return (code, origin, search, is_package,
    mtime_ns, size, source bytes, frozenset orders), or a str saying why
    it cannot be archived.  The source is read between the two stats that
    bracket get_code, so an edit in between is noticed."""
    import os
    if name in NOT_ARCHIVED:
        return 'not archived: site imports it before any program code'
    parts = name.split('.')
    path = None
    spec = None
    try:
        for i in range(1, len(parts) + 1):
            prefix = '.'.join(parts[:i])
            # PathFinder.find_spec's own worker: find_spec would wrap a
            # namespace package's portions in a _NamespacePath, which
            # looks its parent up in sys.modules (nothing is imported)
            spec = PathFinder._get_spec(prefix,
                                        sys.path if path is None else path)
            if spec is None or (spec.loader is None and
                                not spec.submodule_search_locations):
                return 'not found' if i == len(parts) else \
                    'not found: no package %s' % prefix
            if i < len(parts):
                if spec.submodule_search_locations is None:
                    return 'not found: %s is not a package' % prefix
                path = list(spec.submodule_search_locations)
        if spec.loader is None:
            return 'a namespace package: no code to archive'
        if type(spec.loader) is not SourceFileLoader:
            return 'not a source module (loader %s)' % (
                type(spec.loader).__name__,)
        origin = spec.origin
        before = os.stat(origin)
        with open(origin, 'rb') as f:
            source = f.read()   # hashed by the caller (PYCDSCHECK=hash)
        code, orders = _code_and_set_orders(
            _RecordingLoader(name, origin), name, origin)
        after = os.stat(origin)
    except Exception as e:
        return 'cannot load: %s: %s' % (type(e).__name__, e)
    if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns,
                                                after.st_size):
        return 'source changed while dumping'
    is_package = spec.submodule_search_locations is not None
    directory = os.path.dirname(origin)
    search = os.path.dirname(directory) if is_package else directory
    if len(source) != before.st_size:
        return 'source changed while dumping'
    return (code, origin, search, is_package, before.st_mtime_ns,
            before.st_size, source, orders)
