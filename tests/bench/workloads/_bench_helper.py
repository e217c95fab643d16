# SPDX-License-Identifier: MIT
# Helper run by bench.py with the interpreter under test, from this
# directory (so sys.path[0] is the same as for the workloads):
#
#   _bench_helper.py limit LIST SCRIPT
#       The in-memory limit: load the code object of every module in LIST
#       (a pycds module list) with its loader's get_code, keep them in a
#       dict, put a finder in front of sys.meta_path that serves them with
#       no file system access and no unmarshalling, then run SCRIPT (a
#       workload, which times its own import statement).  What is left is
#       the cost of running the module bodies and of the import machinery
#       around them.
#
#   _bench_helper.py pycsizes LIST
#       For each module in LIST: the spec's origin and
#       cache_from_source(origin); print the total size of the .pyc files
#       that exist, the names of modules that have none and of those whose
#       (timestamp-based) .pyc does not match the source, so that the
#       interpreter would not use it.
#
# Neither mode imports anything beyond what the interpreter has already
# loaded at startup: module specs are found the way importlib finds them,
# one package level at a time, without importing the packages.
import sys
from _frozen_importlib_external import (PathFinder, SourceFileLoader,
                                        cache_from_source,
                                        spec_from_file_location)


def read_list(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line)
    return names


def find(name, cache):
    """The spec PathFinder would give name, without importing parents."""
    if name in cache:
        return cache[name]
    parent, _, _ = name.rpartition('.')
    path = None
    if parent:
        pspec = find(parent, cache)
        if pspec is None or pspec.submodule_search_locations is None:
            cache[name] = None
            return None
        path = list(pspec.submodule_search_locations)
    try:
        spec = PathFinder.find_spec(name, path)
    except Exception:
        spec = None
    cache[name] = spec
    return spec


def source_specs(names):
    cache = {}
    for name in names:
        spec = find(name, cache)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            yield name, spec


def limit(list_path, script):
    codes = {}
    origins = {}
    for name, spec in source_specs(read_list(list_path)):
        try:
            code = spec.loader.get_code(name)
        except Exception:
            continue
        if code is not None:
            codes[name] = code
            origins[name] = spec.origin
    preloaded = len(codes)

    class MemoryLoader(SourceFileLoader):
        def get_code(self, fullname):
            code = codes.pop(fullname, None)
            if code is None:
                return SourceFileLoader.get_code(self, fullname)
            return code

    class MemoryFinder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            origin = origins.get(name)
            if origin is None or name not in codes:
                return None
            return spec_from_file_location(
                name, origin, loader=MemoryLoader(name, origin))

    sys.meta_path.insert(0, MemoryFinder)
    with open(script) as f:
        source = f.read()
    globs = {'__name__': '__main__', '__file__': script,
             '__builtins__': __builtins__}
    exec(compile(source, script, 'exec'), globs)
    sys.meta_path.remove(MemoryFinder)
    print('pycds-bench limit_preloaded=%d limit_served=%d'
          % (preloaded, preloaded - len(codes)))


def pycsizes(list_path):
    names = read_list(list_path)
    from _frozen_importlib_external import _path_stat
    total = 0
    found = 0
    missing = []
    stale = []
    for name, spec in source_specs(names):
        try:
            cached = cache_from_source(spec.origin)
            with open(cached, 'rb') as f:
                header = f.read(16)
                total += f.seek(0, 2)
            found += 1
        except OSError:
            missing.append(name)
            continue
        # A timestamp-based .pyc (flags 0) is used only if it records the
        # source's mtime and size; otherwise the stock run recompiles.
        if int.from_bytes(header[4:8], 'little') == 0:
            st = _path_stat(spec.origin)
            if (int.from_bytes(header[8:12], 'little')
                    != int(st.st_mtime) & 0xFFFFFFFF
                    or int.from_bytes(header[12:16], 'little')
                    != st.st_size & 0xFFFFFFFF):
                stale.append(name)
    print('pycds-bench listed=%d pyc_files=%d pyc_bytes=%d pyc_missing=%s '
          'pyc_stale=%s' % (len(names), found, total,
                            ','.join(missing) or '-', ','.join(stale) or '-'))


if __name__ == '__main__':
    if sys.argv[1:2] == ['limit'] and len(sys.argv) == 4:
        limit(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ['pycsizes'] and len(sys.argv) == 3:
        pycsizes(sys.argv[2])
    else:
        sys.exit('usage: _bench_helper.py limit LIST SCRIPT | pycsizes LIST')
