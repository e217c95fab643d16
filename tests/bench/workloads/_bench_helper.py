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
#   _bench_helper.py pages ARCHIVE SCRIPT
#       Run SCRIPT (a workload, under PYCDSMODE=SHARE) as limit does, then
#       print the pages of the mapping of ARCHIVE from /proc/self/smaps:
#       what the loader and the module bodies together left private.
#
#   _bench_helper.py loadonly ARCHIVE LIST
#       Under PYCDSMODE=SHARE: find every module in LIST through
#       sys.meta_path (so pycds's finder and loader serve it, as an import
#       would) and call its loader's get_code, running no module body;
#       print _cds.stats() and the pages of ARCHIVE's mapping: what the
#       loader alone dirties.
#
# No mode imports anything beyond what the interpreter has already loaded
# at startup: module specs are found the way importlib finds them, one
# package level at a time, without importing the packages.
import sys
from _frozen_importlib_external import (PathFinder, SourceFileLoader,
                                        cache_from_source,
                                        spec_from_file_location)


def read_list(path):
    names = []
    with open(path) as f:
        for line in f:
            if line.lstrip()[:1] in ('@', '$'):
                continue  # a record (3.12 on: code that ran, strings interned)
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line)
    return names


def find(name, cache, finders=(PathFinder,)):
    """The spec the first of finders to know name would give it (by
    default PathFinder's), without importing parents."""
    if name in cache:
        return cache[name]
    parent, _, _ = name.rpartition('.')
    path = None
    if parent:
        pspec = find(parent, cache, finders)
        if pspec is None or pspec.submodule_search_locations is None:
            cache[name] = None
            return None
        path = list(pspec.submodule_search_locations)
    spec = None
    for finder in finders:
        try:
            spec = finder.find_spec(name, path)
        except Exception:
            spec = None
        if spec is not None:
            break
    cache[name] = spec
    return spec


def source_specs(names, finders=(PathFinder,)):
    cache = {}
    for name in names:
        spec = find(name, cache, finders)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            yield name, spec


def run_script(script):
    """Run script as `python script` would, with this helper as the
    process's __main__ module (sys.path[0] is the same directory)."""
    with open(script) as f:
        source = f.read()
    globs = {'__name__': '__main__', '__file__': script,
             '__builtins__': __builtins__}
    exec(compile(source, script, 'exec'), globs)


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
    run_script(script)
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


SMAPS_FIELDS = ('Size', 'Rss', 'Pss', 'Shared_Clean', 'Shared_Dirty',
                'Private_Clean', 'Private_Dirty', 'Anonymous')


def print_pages(archive):
    """Sum the smaps fields (kB) of every mapping of the file archive
    (one mmap may show as several areas) and print them, with the kernel
    page size.  A clean page of a MAP_PRIVATE file mapping is the file's
    page-cache page (Shared_Clean when another process maps it too,
    Private_Clean when only this one does); a dirty one is this process's
    copy (Private_Dirty, also counted in Anonymous).  In copy mode the
    areas are the anonymous ones over the archive's range at its base,
    every resident page of them private."""
    import os     # loaded at startup by site
    real = os.path.realpath(archive)
    # in copy mode (3.11, PIE builds: docs/design.md 3) the archive's range
    # at its base is anonymous memory, no longer the file's mapping: the
    # header's base_address (offset 32) and the file's size name it
    with open(real, 'rb') as f:
        lo = int.from_bytes(f.read(40)[32:40], 'little')
    hi = lo + os.path.getsize(real)
    sums = dict.fromkeys(SMAPS_FIELDS, 0)
    areas = 0
    page_kb = 0
    inside = False
    with open('/proc/self/smaps') as f:
        for line in f:
            head, _, rest = line.partition(' ')
            if not head.endswith(':'):
                # an area: start-end perms offset dev inode [path]
                parts = line.rstrip('\n').split(None, 5)
                start, end = (int(x, 16) for x in parts[0].split('-'))
                inside = ((len(parts) == 6 and parts[5] == real) or
                          (len(parts) == 5 and start < hi and end > lo))
                areas += inside
            elif inside:
                key = head[:-1]
                if key in sums:
                    sums[key] += int(rest.split()[0])
                elif key == 'KernelPageSize':
                    page_kb = int(rest.split()[0])
    print('pycds-bench pages_areas=%d pages_page_kb=%d %s'
          % (areas, page_kb, ' '.join('pages_%s_kb=%d' % (k.lower(), v)
                                      for k, v in sums.items())))


def pages(archive, script):
    run_script(script)
    print_pages(archive)


def loadonly(archive, list_path):
    cds = sys.modules.get('_cds')
    if cds is None:
        sys.exit('_bench_helper.py loadonly: pycds is not active')
    loaded = 0
    for name, spec in source_specs(read_list(list_path), sys.meta_path):
        try:
            code = spec.loader.get_code(name)
        except Exception:
            continue
        loaded += code is not None
    print('pycds-bench loadonly_codes=%d' % loaded)
    print('pycds-bench ' + ' '.join('%s=%s' % kv
                                     for kv in cds.stats().items()))
    print_pages(archive)


MODES = {'limit': (limit, 2), 'pycsizes': (pycsizes, 1),
         'pages': (pages, 2), 'loadonly': (loadonly, 2)}

if __name__ == '__main__':
    mode = MODES.get(sys.argv[1] if len(sys.argv) > 1 else '')
    if mode is None or len(sys.argv) != 2 + mode[1]:
        sys.exit('usage: _bench_helper.py limit LIST SCRIPT | pycsizes LIST '
                 '| pages ARCHIVE SCRIPT | loadonly ARCHIVE LIST')
    mode[0](*sys.argv[2:])
