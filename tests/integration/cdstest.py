# SPDX-License-Identifier: MIT
"""Shared helpers for the pycds integration tests.

Every test script is run by CTest with the interpreter the build targets
and the build's site directory:

    python3.11 test_x.py --python /usr/bin/python3.11 --site BUILD/site

A test creates a `Case`, which owns a fresh temporary directory and runs
the target interpreter in it in four ways:

  stock   no pycds at all (clean environment, no site dir on PYTHONPATH)
  trace   PYCDSMODE=TRACE PYCDSLIST=...
  dump    PYCDSMODE=DUMP PYCDSLIST=... PYCDSARCHIVE=...
  share   PYCDSMODE=SHARE PYCDSARCHIVE=... (verbose by default)

Results carry stdout, stderr and the exit status, the names the verbose
lines say were served / missed / not served, and `_cds.stats()` when the
program includes STATS_HOOK (which writes it to a file at exit, so that
stdout stays comparable with the stock run).

Checks never stop the test: each failure is printed with its details and
counted, and `Case.finish()` exits 1 if any failed (0 otherwise, 77 for
a skip: CTest's SKIP_RETURN_CODE).  The temporary directory is removed
when the test passed and kept (its path printed) when it failed, or
always with CDSTEST_KEEP=1.

Every child interpreter a Case starts (stock and pycds runs alike, and
the ones a test starts itself with `Case.environ()`) gets a clean
environment (see _SCRUB) plus, when set in the tests' environment:

  CDSTEST_PYTHONPATH  directories (os.pathsep-separated) appended to the
                      child's PYTHONPATH, after the pycds site directory
                      and after whatever the test itself put there (also
                      when the test removed PYTHONPATH: they stand for the
                      user's own PYTHONPATH).  For an interpreter that
                      lacks the workload packages:
                      CDSTEST_PYTHONPATH=/usr/lib/python3/dist-packages
                      (Debian's: pure Python, but for a few extension
                      modules built for 3.11).  PYTHONPATH comes before
                      the interpreter's stdlib and site-packages on
                      sys.path: these shadow the interpreter's own copies.
  CDSTEST_PYCACHE     a directory, given to the child as
                      PYTHONPYCACHEPREFIX, so that the .pyc files of the
                      packages above are written there, never into
                      /usr/lib/python3/dist-packages/__pycache__.  A test
                      that sets PYTHONPYCACHEPREFIX itself (or removes it
                      with None) or passes -X pycache_prefix wins;
                      `Case.pycache()` says where a child writes a
                      directory's .pyc files.  With a prefix, .pyc files
                      are looked for there only: under
                      PYTHONDONTWRITEBYTECODE=1 every child compiles from
                      source each module it imports (the stdlib too) unless
                      the prefix was filled first, as scripts/test.sh does
                      (PYTHONPYCACHEPREFIX=DIR python -m compileall ...).

Relative paths in both are taken from the test's working directory (CTest
runs it in BUILD/tests/integration): give absolute ones.
"""
import ast
import difflib
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = os.path.join(HERE, 'workloads')

# Header layout (docs/format.md 2, cds/format.h).
HEADER_SIZE = 1024
HEADER_CHECKSUM = slice(24, 32)

# Put at the top of a program: at exit, write _cds.stats() (when pycds is
# active in this process) to $CDSTEST_STATS.  atexit is a builtin module,
# so this changes nothing about which modules the program imports.
STATS_HOOK = '''\
import atexit as _cdstest_atexit


def _cdstest_stats():
    import os, sys
    path = os.environ.get('CDSTEST_STATS')
    cds = sys.modules.get('_cds')
    if path and cds is not None:
        with open(path, 'w') as f:
            f.write(repr(cds.stats()))


if __name__ == '__main__':  # not in multiprocessing's __mp_main__
    _cdstest_atexit.register(_cdstest_stats)
'''

# Variables of the caller's environment that would change what a child
# interpreter does; everything PYCDS* goes too.  PYTHONDONTWRITEBYTECODE
# is deliberately kept as inherited: tests must pass with and without it.
_SCRUB = ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONINSPECT',
          'PYTHONWARNINGS', 'PYTHONVERBOSE', 'PYTHONPROFILEIMPORTTIME',
          'PYTHONNOUSERSITE', 'PYTHONSAFEPATH', 'PYTHONHASHSEED',
          'PYTHONDEVMODE', 'PYTHONTRACEMALLOC', 'PYTHONOPTIMIZE',
          'PYTHONUSERBASE', 'PYTHONEXECUTABLE', 'PYTHONPYCACHEPREFIX')


def _extra_pythonpath():
    """CDSTEST_PYTHONPATH's directories, absolute (see the docstring)."""
    return [os.path.abspath(d) for d in
            os.environ.get('CDSTEST_PYTHONPATH', '').split(os.pathsep) if d]


def _pycache_prefix():
    """CDSTEST_PYCACHE, absolute, or None."""
    d = os.environ.get('CDSTEST_PYCACHE')
    return os.path.abspath(d) if d else None


def sanitized():
    """True in a Sanitize build: CMake passes CDSTEST_PRELOAD, the
    sanitizer runtime the ASan/UBSan-built _cds needs loaded first."""
    return bool(os.environ.get('CDSTEST_PRELOAD'))


def sanitizer_environ(env):
    """What a child interpreter needs to load an ASan-built _cds: the
    interpreter is not instrumented, so the runtime is preloaded
    (LD_PRELOAD=CDSTEST_PRELOAD), and leak detection is off (CPython does
    not free everything at exit, by design).  Empty outside a Sanitize
    build.  Every run of Case gets it, stock runs too, so that stock and
    pycds runs are compared under the same allocator."""
    preload = os.environ.get('CDSTEST_PRELOAD')
    if not preload:
        return {}
    old = env.get('LD_PRELOAD', '').split()
    out = {'LD_PRELOAD': ' '.join([preload] + [x for x in old
                                               if x != preload])}
    opts = env.get('ASAN_OPTIONS', '')
    if 'detect_leaks' not in opts:
        opts = ':'.join(x for x in (opts, 'detect_leaks=0') if x)
    out['ASAN_OPTIONS'] = opts
    if 'UBSAN_OPTIONS' not in env:
        out['UBSAN_OPTIONS'] = 'print_stacktrace=1'
    return out


def _config():
    python = os.environ.get('CDSTEST_PYTHON')
    site = os.environ.get('CDSTEST_SITE')
    args = sys.argv[1:]
    while args:
        opt = args.pop(0)
        if opt == '--python' and args:
            python = args.pop(0)
        elif opt == '--site' and args:
            site = args.pop(0)
        else:
            sys.exit('usage: %s --python INTERPRETER --site BUILD/site'
                     % sys.argv[0])
    if not python or not site:
        sys.exit('%s: need --python and --site (or CDSTEST_PYTHON and '
                 'CDSTEST_SITE)' % sys.argv[0])
    if not os.path.isdir(site) or not any(
            n.startswith('_cds.') for n in os.listdir(site)):
        sys.exit('%s: %s holds no _cds extension: build first'
                 % (sys.argv[0], site))
    return os.path.abspath(python), os.path.abspath(site)


class Result:
    """One finished interpreter run."""

    def __init__(self, what, argv, rc, out, err, stats):
        self.what = what
        self.argv = argv
        self.rc = rc
        self.out = out
        self.err = err
        self.stats = stats

    def __repr__(self):
        return '<%s rc=%s>' % (self.what, self.rc)

    @property
    def err_lines(self):
        return self.err.splitlines()

    @property
    def pycds_lines(self):
        return [l for l in self.err_lines if l.startswith('pycds: ')]

    @property
    def program_err(self):
        """stderr without pycds's own lines."""
        return '\n'.join(l for l in self.err_lines
                         if not l.startswith('pycds: '))

    @property
    def warnings(self):
        return [l for l in self.err_lines if l.startswith('pycds: warning:')]

    def _verbose(self):
        served, missing, not_served = [], [], {}
        for line in self.pycds_lines:
            parts = line.split(': ', 2)
            if len(parts) != 3 or parts[1] in ('warning', 'dump', 'archive'):
                continue
            name, what = parts[1], parts[2]
            if what == 'served from archive':
                served.append(name)
            elif what == 'not in archive':
                missing.append(name)
            elif what.startswith('not served: '):
                not_served[name] = what[len('not served: '):]
        return served, missing, not_served

    @property
    def served_list(self):
        """Names of 'served from archive' lines, in order (may repeat)."""
        return self._verbose()[0]

    @property
    def served(self):
        return set(self._verbose()[0])

    @property
    def not_in_archive(self):
        return set(self._verbose()[1])

    @property
    def not_served(self):
        return self._verbose()[2]

    def describe(self, limit=4000):
        def cut(s):
            return s if len(s) <= limit else (
                s[:limit // 2] + '\n[... %d chars ...]\n' % (len(s) - limit)
                + s[-limit // 2:])
        return ('    command: %s\n    exit status: %s\n'
                '    --- stdout ---\n%s\n    --- stderr ---\n%s' %
                (' '.join(self.argv), self.rc, cut(self.out), cut(self.err)))


class Case:
    """A test's temporary directory, interpreter runs and checks."""

    def __init__(self, name):
        self.name = name
        self.python, self.site = _config()
        self.dir = tempfile.mkdtemp(prefix='pycds-%s-' % name)
        self.failures = 0
        self.checks = 0
        self._runs = 0
        self._described = set()
        print('%s: interpreter %s, site %s, dir %s'
              % (name, self.python, self.site, self.dir))

    # --- files --------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, rel, text, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'w') as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def workload(self, name, rel=None, hook=True):
        """Copy tests/integration/workloads/NAME into the case dir (with
        STATS_HOOK prepended) and return its path."""
        with open(os.path.join(WORKLOADS, name)) as f:
            text = f.read()
        return self.write(rel or name, (STATS_HOOK if hook else '') + text)

    # --- runs ---------------------------------------------------------
    def environ(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('PYCDS') and k not in _SCRUB}
        env.pop('CDSTEST_STATS', None)
        env['PYTHONIOENCODING'] = 'utf-8'
        env['LC_ALL'] = 'C.UTF-8'
        prefix = _pycache_prefix()
        if prefix:
            env['PYTHONPYCACHEPREFIX'] = prefix
        env.update(sanitizer_environ(env))
        if extra:
            for k, v in extra.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = str(v)
        more = _extra_pythonpath()
        if more:
            path = [d for d in env.get('PYTHONPATH', '').split(os.pathsep)
                    if d]
            env['PYTHONPATH'] = os.pathsep.join(
                path + [d for d in more if d not in path])
        return env

    def pycache(self, srcdir, env=None):
        """The directory where a child run with env (as for run())
        writes the .pyc files of the sources in srcdir (absolute, as the
        import system sees it: a script's directory is its real path):
        srcdir/__pycache__, or under PYTHONPYCACHEPREFIX when set."""
        prefix = self.environ(env).get('PYTHONPYCACHEPREFIX')
        if not prefix:
            return os.path.join(srcdir, '__pycache__')
        return os.path.join(prefix, os.path.abspath(srcdir).lstrip(os.sep))

    def run(self, args, what='run', pycds=True, env=None, cwd=None,
            stdin=None, timeout=300):
        """Run the target interpreter with args (a list, without the
        interpreter); with pycds=True the build's site dir goes first on
        PYTHONPATH.  Returns a Result; stats are read when the program
        has STATS_HOOK."""
        self._runs += 1
        stats_path = self.path('.stats-%d' % self._runs)
        extra = dict(env or {})
        extra['CDSTEST_STATS'] = stats_path
        if pycds:
            # a test that sets PYTHONPATH puts the site dir in it itself
            extra.setdefault('PYTHONPATH', self.site)
        argv = [self.python] + [str(a) for a in args]
        env = self.environ(extra)
        try:
            p = subprocess.run(argv, cwd=cwd or self.dir, env=env,
                               input=stdin if stdin is not None else '',
                               capture_output=True, text=True,
                               errors='replace', timeout=timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc = 'timeout after %ss' % timeout
            out = e.stdout or ''
            err = e.stderr or ''
            out = out.decode(errors='replace') if isinstance(out, bytes) \
                else out
            err = err.decode(errors='replace') if isinstance(err, bytes) \
                else err
        stats = None
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                stats = ast.literal_eval(f.read())
            os.unlink(stats_path)
        env_desc = ' '.join('%s=%s' % (k, v) for k, v in sorted(env.items())
                            if k.startswith('PYCDS') or k in (
                                'PYTHONPATH', 'PYTHONPYCACHEPREFIX'))
        return Result(what, ([env_desc] if env_desc else []) + argv, rc, out,
                      err, stats)

    def stock(self, args, env=None, **kw):
        return self.run(args, what='stock', pycds=False, env=env, **kw)

    def trace(self, args, lst='heap.lst', env=None, **kw):
        e = {'PYCDSMODE': 'TRACE', 'PYCDSLIST': self.path(lst)}
        e.update(env or {})
        return self.run(args, what='trace', env=e, **kw)

    def dump(self, lst='heap.lst', archive='heap.img', args=(), env=None,
             **kw):
        e = {'PYCDSMODE': 'DUMP', 'PYCDSLIST': self.path(lst),
             'PYCDSARCHIVE': self.path(archive)}
        e.update(env or {})
        return self.run(list(args), what='dump', env=e, **kw)

    def share(self, args, archive='heap.img', verbose=True, relocate=False,
              env=None, **kw):
        e = {'PYCDSMODE': 'SHARE', 'PYCDSARCHIVE': self.path(archive)}
        if verbose:
            e['PYCDSVERBOSE'] = '1'
        if relocate:
            e['PYCDSRELOCATE'] = '1'
        e.update(env or {})
        return self.run(args, what='share', env=e, **kw)

    def read_list(self, lst='heap.lst'):
        """The module names of a list, in order ('@' records of code that
        ran and '$' records of strings interned, 3.12 on, are not names:
        docs/usage.md)."""
        names = []
        for line in self.read(lst).splitlines():
            if line.lstrip()[:1] in ('@', '$'):
                continue
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line)
        return names

    def read_ran(self, lst='heap.lst'):
        """The '@ FIRSTLINENO QUALNAME FILE' records of a list, as
        (file, firstlineno, qualname)."""
        out = []
        for line in self.read(lst).splitlines():
            f = line.lstrip().split(' ', 3)
            if len(f) == 4 and f[0] == '@' and f[1].isdigit():
                out.append((f[3], int(f[1]), f[2]))
        return out

    def build(self, args, lst='heap.lst', archive='heap.img', env=None):
        """Trace args, dump the list (with the script, as the docs say),
        and check both went well.  Returns (trace, dump) results."""
        t = self.trace(args, lst=lst, env=env)
        self.check(t.rc == 0 and not t.warnings,
                   'trace run of %s succeeds without warnings' % args[-1], t)
        self.check(os.path.exists(self.path(lst)) and self.read_list(lst),
                   'trace wrote a non-empty list %s' % lst, t)
        script = [a for a in args if str(a).endswith('.py')][:1]
        d = self.dump(lst=lst, archive=archive, args=script, env=env)
        self.check(d.rc == 0 and os.path.exists(self.path(archive)),
                   'dump writes %s' % archive, d)
        self.check(d.out == '', 'dump prints nothing on stdout', d)
        return t, d

    # --- checks -------------------------------------------------------
    def check(self, cond, what, *details):
        self.checks += 1
        if cond:
            print('ok: %s' % what)
            return True
        self.failures += 1
        print('FAIL: %s' % what)
        for d in details:
            if isinstance(d, Result) and id(d) in self._described:
                print('    (%s run: output shown above)' % d.what)
            elif isinstance(d, Result):
                self._described.add(id(d))
                print(d.describe())
            else:
                print('    %s' % (d,))
        return False

    def check_equal(self, got, want, what, *details):
        if got == want:
            return self.check(True, what)
        if isinstance(got, str) and isinstance(want, str):
            diff = '\n'.join(difflib.unified_diff(
                want.splitlines(), got.splitlines(), 'expected', 'actual',
                lineterm='', n=2))
            return self.check(False, what, 'diff (expected -> actual):\n'
                              + diff[:6000], *details)
        return self.check(False, what, 'expected: %r' % (want,),
                          'actual:   %r' % (got,), *details)

    def check_same(self, stock, res, what, stderr=True):
        """res behaves as stock: same stdout, exit status and (unless
        stderr=False) the same stderr once pycds's own lines are taken
        out."""
        ok = self.check_equal(res.out, stock.out,
                              '%s: stdout same as stock' % what, res)
        ok &= self.check_equal(res.rc, stock.rc,
                               '%s: exit status same as stock' % what, res)
        if stderr:
            ok &= self.check_equal(res.program_err, stock.program_err,
                                   '%s: stderr (without pycds lines) same '
                                   'as stock' % what, res)
        return ok

    def check_one_warning(self, res, what):
        """Exactly one stderr line is pycds's warning (and the only pycds
        line: run non-verbose)."""
        w = res.warnings
        return self.check(len(w) == 1 and len(res.pycds_lines) == 1,
                          '%s: exactly one "pycds: warning:" line' % what,
                          'warning lines: %r' % (w,), res)

    def skip(self, reason):
        print('SKIP: %s' % reason)
        shutil.rmtree(self.dir, ignore_errors=True)
        sys.exit(SKIP)

    def has_modules(self, *names):
        """Can the target interpreter import these (stock)?"""
        r = self.stock(['-c', 'import ' + ', '.join(names)])
        return r.rc == 0

    def startup_modules(self):
        """Modules already imported when a stock interpreter's main
        program starts (site, .pth files, sitecustomize): imported before
        pycds can activate, so never served."""
        r = self.stock(['-c', 'import sys; print(*sys.modules)'])
        return set(r.out.split())

    def finish(self):
        if self.checks == 0:
            print('FAIL: %s made no checks' % self.name)
            self.failures += 1
        keep = os.environ.get('CDSTEST_KEEP') == '1' or self.failures
        if keep:
            print('kept %s' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        print('%s: %d checks, %d failed' % (self.name, self.checks,
                                            self.failures))
        sys.exit(1 if self.failures else 0)


# --- archive bytes ---------------------------------------------------------

def u32(b, off):
    return int.from_bytes(b[off:off + 4], 'little')


def u64(b, off):
    return int.from_bytes(b[off:off + 8], 'little')


def header(data):
    """The header fields the tests use (format.md 2)."""
    return {
        'file_size': u64(data, 16),
        'header_checksum': u64(data, 24),
        'segments_offset': u64(data, 48),
        'segments_size': u64(data, 56),
        'index_offset': u64(data, 64),
        'index_size': u64(data, 72),
        'nmodules': u32(data, 88),
        'entries_offset': u64(data, 104),
        'strings_offset': u64(data, 112),
    }


def xxh3_64():
    """XXH3-64 (seed 0) as a function of bytes, or None: the xxhash module
    if this interpreter has it, else libxxhash through ctypes (the
    library the build links)."""
    try:
        import xxhash
        return xxhash.xxh3_64_intdigest
    except ImportError:
        pass
    try:
        import ctypes
        import ctypes.util
        name = ctypes.util.find_library('xxhash') or 'libxxhash.so.0'
        lib = ctypes.CDLL(name)
        f = lib.XXH3_64bits
        f.restype = ctypes.c_uint64
        f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return lambda b: f(bytes(b), len(b))
    except (OSError, AttributeError):
        return None


def reseal(data, hasher):
    """Recompute the header checksum: XXH3-64 of the 1024-byte header with
    bytes 24..31 zeroed."""
    data = bytearray(data)
    h = bytearray(data[:HEADER_SIZE])
    h[HEADER_CHECKSUM] = bytes(8)
    data[HEADER_CHECKSUM] = hasher(bytes(h)).to_bytes(8, 'little')
    return data


# Every header field, (name, offset, size): docs/format.md 2 and 2.1.
HEADER_FIELDS = (
    ('magic', 0, 8), ('format_version', 8, 4), ('header_size', 12, 4),
    ('file_size', 16, 8), ('header_checksum', 24, 8),
    ('base_address', 32, 8), ('created_ns', 40, 8),
    ('segments_offset', 48, 8), ('segments_size', 56, 8),
    ('index_offset', 64, 8), ('index_size', 72, 8),
    ('index_checksum', 80, 8), ('nmodules', 88, 4), ('nslots', 92, 4),
    ('slots_offset', 96, 8), ('entries_offset', 104, 8),
    ('strings_offset', 112, 8), ('strings_size', 120, 8),
    ('flags', 128, 4), ('optimize', 132, 4),
    ('fp.py_version_hex', 136, 4), ('fp.pyc_magic', 140, 4),
    ('fp.pointer_size', 144, 1), ('fp.byte_order', 145, 1),
    ('fp.long_shift', 146, 1), ('fp.wchar_size', 147, 1),
    ('fp.build_flags', 148, 4), ('fp.layout_hash', 152, 8),
    ('fp.runtime_hash', 160, 8), ('fp.cache_tag', 168, 16),
    ('fp.soabi', 184, 48), ('fp.build_info', 232, 96),
    ('fp.compiler', 328, 88), ('fp.quicken_hash', 416, 8),
    ('pool_offset', 424, 8), ('pool_size', 432, 8),
    ('pool_sums_checksum', 440, 8), ('pool_count', 448, 4),
    ('pool_objects_size', 452, 4), ('pool_table_off', 456, 4),
    ('pool_sums_off', 460, 4), ('pool_block_size', 464, 4),
    ('pool_early_count', 468, 4), ('code_version_base', 472, 4),
    ('code_version_count', 476, 4), ('reserved', 480, 544),
)

# The module entry's fields (format.md 3.2); an entry is 152 bytes in
# format version 3 and may grow at its end in later versions: see
# entry_size().
ENTRY_FIELDS = (
    ('name_hash', 0, 8), ('name_off', 8, 4), ('name_len', 12, 4),
    ('origin_off', 16, 4), ('origin_len', 20, 4), ('search_off', 24, 4),
    ('search_len', 28, 4), ('flags', 32, 4), ('root_off', 36, 4),
    ('source_mtime_ns', 40, 8), ('source_size', 48, 8),
    ('seg_offset', 56, 8), ('seg_size', 64, 8), ('seg_checksum', 72, 8),
    ('objects_size', 80, 4), ('nobjects', 84, 4), ('reloc_off', 88, 4),
    ('nreloc', 92, 4), ('ext_off', 96, 4), ('next', 100, 4),
    ('intern_off', 104, 4), ('nintern', 108, 4), ('copy_off', 112, 4),
    ('nrefs', 116, 4), ('frozen_off', 120, 4), ('nfrozen', 124, 4),
    ('objtab_off', 128, 4), ('shared_off', 132, 4), ('nshared', 136, 4),
    ('write_size', 140, 4), ('source_hash', 144, 8),
)
SEG_CHECKSUM_AT = 72
POOL_BLOCK = 16384


def entry_size(data):
    """Bytes per module entry: the entries fill [entries_offset,
    strings_offset) as written (152 in format version 3)."""
    n = u32(data, 88)
    if n == 0:
        return 152
    return (u64(data, 112) - u64(data, 104)) // n


def _field(b, off, size):
    return int.from_bytes(b[off:off + size], 'little')


def full_header(data):
    """Every integer header field by name (text fields as bytes)."""
    h = {}
    for name, off, size in HEADER_FIELDS:
        if name in ('magic', 'reserved') or name in (
                'fp.cache_tag', 'fp.soabi', 'fp.build_info', 'fp.compiler'):
            h[name] = bytes(data[off:off + size])
        else:
            h[name] = _field(data, off, size)
    return h


def entries(data):
    """The module entries of a well-formed archive, as dicts of their
    fields plus 'at' (file offset of the entry), 'index', 'name',
    'origin' and 'search'."""
    h = full_header(data)
    esize = entry_size(data)
    out = []
    for i in range(h['nmodules']):
        at = h['entries_offset'] + esize * i
        e = {name: _field(data, at + off, size)
             for name, off, size in ENTRY_FIELDS}
        e['at'] = at
        e['index'] = i
        so = h['strings_offset']
        for what in ('name', 'origin', 'search'):
            o = so + e[what + '_off']
            e[what] = bytes(data[o:o + e[what + '_len']]).decode(
                'utf-8', 'replace')
        out.append(e)
    return out


def objtab(data, e):
    """(offset, kind) of every object of a module's segment."""
    base = e['seg_offset'] + e['objtab_off']
    return [(v & ~7, v & 7) for v in
            (u32(data, base + 4 * i) for i in range(e['nobjects']))]


def pool_table(data):
    """Pool offsets of the pool's strings (format.md 4.1)."""
    h = full_header(data)
    base = h['pool_offset'] + h['pool_table_off']
    return [u32(data, base + 4 * i) for i in range(h['pool_count'])]


def reseal_all(data, hasher):
    """Recompute every checksum of the file, innermost first, from the
    (possibly damaged) fields as they stand, so that a damaged archive
    reaches the structural checks behind the checksums: each module
    entry's seg_checksum (over [seg_offset, +seg_size), when that lies in
    the file), the pool's block sums and pool_sums_checksum, the index
    checksum and the header checksum.  A range that falls outside the
    file is left alone (its checksum stays as it was)."""
    d = bytearray(data)
    n = len(d)
    if n < HEADER_SIZE:
        return d

    def put(off, value):
        if 0 <= off and off + 8 <= n:
            d[off:off + 8] = value.to_bytes(8, 'little')

    h = full_header(d)
    nmod, eo = h['nmodules'], h['entries_offset']
    esize = entry_size(d) if nmod else 144
    if 0 < nmod <= (1 << 24) and esize >= 80 and eo + esize * nmod <= n:
        for i in range(nmod):
            at = eo + esize * i
            so, ss = u64(d, at + 56), u64(d, at + 64)
            if so + ss <= n:
                put(at + SEG_CHECKSUM_AT, hasher(bytes(d[so:so + ss])))
    po, cnt = h['pool_offset'], h['pool_count']
    # the strings, their table and the early list after it (format.md 4.1)
    covered = h['pool_objects_size'] + 4 * cnt + 4 * h['pool_early_count']
    nblocks = -(-covered // POOL_BLOCK)
    sums = po + h['pool_sums_off']
    if cnt and po + covered <= n and sums + 8 * nblocks <= n:
        for b in range(nblocks):
            lo = po + POOL_BLOCK * b
            hi = po + min(POOL_BLOCK * (b + 1), covered)
            put(sums + 8 * b, hasher(bytes(d[lo:hi])))
        put(440, hasher(bytes(d[sums:sums + 8 * nblocks])))
    io, isz = h['index_offset'], h['index_size']
    if io + isz <= n:
        put(80, hasher(bytes(d[io:io + isz])))
    return reseal(d, hasher)


def workload_case(name, workload, need, must_serve):
    """Trace, dump and share workloads/WORKLOAD: output, exit status and
    stderr as stock, no warning, every name in must_serve served from the
    archive and at least 90% of the listed modules.  Skips when the
    interpreter cannot import the modules in need."""
    t = Case(name)
    if not t.has_modules(*need):
        t.skip('%s cannot import %s (Debian packages live in '
               '/usr/lib/python3/dist-packages)' % (t.python, ', '.join(need)))
    early = t.startup_modules()
    must_serve = [n for n in must_serve if n not in early]
    app = t.workload(workload, 'app.py')
    stock = t.stock([app])
    t.check(stock.rc == 0 and stock.out.endswith('done\n'),
            'stock run succeeds', stock)
    tr, _ = t.build([app])
    t.check_same(stock, tr, 'trace')
    listed = list(dict.fromkeys(t.read_list()))
    t.check(not [n for n in must_serve if n not in listed],
            'trace list has %s' % ' '.join(must_serve),
            'missing: %r' % [n for n in must_serve if n not in listed])
    share = t.share([app])
    t.check_same(stock, share, 'share')
    t.check(not share.warnings, 'share: no warnings', share)
    served = share.served
    t.check(not [n for n in must_serve if n not in served],
            'share: %s served from the archive' % ' '.join(must_serve),
            'not served: %r' % [n for n in must_serve if n not in served],
            share.not_served)
    got = [n for n in listed if n in served]
    t.check(len(got) >= 0.9 * len(listed),
            'share: >= 90%% of the %d archived modules served (%d)'
            % (len(listed), len(got)),
            'not served: %r' % sorted(set(listed) - served), share.not_served)
    st = share.stats
    t.check(st is not None and st['active'] and st['failed'] == 0
            and st['segments_bad'] == 0 and st['stale'] == 0
            and st['segments_loaded'] == len(served),
            'share: stats active, nothing failed, bad or stale', st)
    quiet = t.share([app], verbose=False)
    t.check_same(stock, quiet, 'share (quiet)')
    t.check_equal(quiet.err, stock.err, 'share (quiet): stderr identical',
                  quiet)
    return t
