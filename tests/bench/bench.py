#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pycds benchmark: stock CPython with warm .pyc caches against PYCDSMODE=SHARE.

For each workload (a script in workloads/ that times its own import
statement) the benchmark

  1. runs it once with the stock interpreter and bytecode writing allowed,
     so that every .pyc cache is warm, then checks that the cache file of
     every module in the traced list exists;
  2. traces it (PYCDSMODE=TRACE) and dumps the archive (PYCDSMODE=DUMP)
     into a temporary directory;
  3. runs --rounds rounds, each round running every arm once, in an order
     that rotates from round to round (stock, share, ..., then share,
     ..., stock, ...):
       stock      the interpreter as installed, no pycds;
       share      PYCDSMODE=SHARE, activated from the build tree
                  (PYTHONPATH=BUILD/site, its sitecustomize.py);
       share-pth  PYCDSMODE=SHARE, activated the way an installed pycds is:
                  _cds and pycds.pth in a site directory (a user site
                  directory selected with PYTHONUSERBASE);
       limit      the in-memory limit: every code object of the traced
                  modules loaded into a dict before the import statement,
                  served by a meta-path finder (workloads/_bench_helper.py);
                  only its in-process import time is meaningful.
  4. reports medians and minima: whole-process wall time (perf_counter_ns
     around posix_spawn + wait4), in-process import time (printed by the
     workload), CPU time and peak RSS (the child's rusage from wait4), the
     archive size against the .pyc files it replaces;
  5. then, unless --no-pages, --page-rounds runs of each of four untimed
     variants of the share arm, run through workloads/_bench_helper.py,
     which reads the child's /proc/self/smaps at the end: the pages of
     the archive's mapping that are private copies (Private_Dirty) and
     those still the file's (Shared_Clean + Private_Clean), after the
     workload (loader and module bodies) and after only the loader
     (get_code for every traced module, no module body run), each with
     PYCDSPREFAULT at its default (on) and 0; medians, and whether the
     archive was mapped at its base (_cds.stats()['relocated']).

Then the startup costs, with `python -c pass` (--pass-rounds rounds):
  (d) SHARE with an archive mapped and nothing imported from it, against
      stock;
  (e) pycds present but PYCDSMODE unset, against stock: from the build
      tree (PYTHONPATH=BUILD/site) and installed (.pth in a site directory).

Every run gets the same small, fixed environment (PATH, HOME, locale),
with PYTHONUSERBASE pointing at an empty user site directory unless the
arm installs pycds there, so that the arms differ only in what is measured.
--pythonpath DIRS is appended to every run's PYTHONPATH (after BUILD/site
where an arm has it), for an interpreter that lacks the workloads'
packages (pyenv's, with Debian's /usr/lib/python3/dist-packages), and
--pycache-prefix sets PYTHONPYCACHEPREFIX for every run; with
--pythonpath and no --pycache-prefix, the prefix is a directory in the
work directory, so that no run writes into those directories.

Run it with the interpreter under test or any Python 3; it keeps its own
imports few, because a child's peak RSS as reported by the kernel cannot
be below the peak RSS of the process that spawned it.
"""
import argparse
import glob
import math
import os
import resource
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD_DIR = os.path.join(HERE, 'workloads')
HELPER = os.path.join(WORKLOAD_DIR, '_bench_helper.py')
REPO = os.path.dirname(os.path.dirname(HERE))
PTH = os.path.join(REPO, 'importhook', 'pycds.pth')

WORKLOADS = {
    'stdlib': ('wl_stdlib.py', '22 standard-library modules'),
    'sympy': ('wl_sympy.py', 'import sympy'),
    'flask': ('wl_flask_requests.py', 'import flask, requests'),
}

# Targets from the issue: ratios share/stock (at most), or milliseconds.
TARGETS = {
    ('sympy', 'wall'): 0.65, ('stdlib', 'wall'): 0.72,
    ('flask', 'wall'): 0.78,
    ('sympy', 'import'): 0.62, ('stdlib', 'import'): 0.66,
    ('sympy', 'rss'): 1.05,
    ('*', 'size'): 2.0,
}
TARGET_MAP_MS = 1.0          # (d): under 1 ms over `python -c pass`

ENV_KEEP = ('PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'TMPDIR',
            'USER', 'LOGNAME')


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- running

class Runner:
    """Spawns children with posix_spawn, stdout/stderr to files, and reaps
    them with wait4 for their own rusage."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.out = os.path.join(workdir, 'stdout')
        self.err = os.path.join(workdir, 'stderr')
        self.devnull = os.open(os.devnull, os.O_RDONLY)

    def run(self, argv, env, check=True):
        out = os.open(self.out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(self.err, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0),
                   (os.POSIX_SPAWN_DUP2, out, 1),
                   (os.POSIX_SPAWN_DUP2, err, 2)]
        try:
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter_ns()
        finally:
            os.close(out)
            os.close(err)
        with open(self.out, errors='replace') as f:
            stdout = f.read()
        with open(self.err, errors='replace') as f:
            stderr = f.read()
        rc = os.waitstatus_to_exitcode(status)
        if check and rc != 0:
            raise BenchError('%s exited with %d\n--- stderr:\n%s'
                             % (' '.join(argv), rc, stderr[-4000:]))
        return {
            'wall_ms': (t1 - t0) / 1e6,
            'cpu_ms': (ru.ru_utime + ru.ru_stime) * 1e3,
            'rss_kb': ru.ru_maxrss,
            'rc': rc, 'stdout': stdout, 'stderr': stderr,
            'kv': parse_kv(stdout),
        }


def parse_kv(stdout):
    kv = {}
    for line in stdout.splitlines():
        if line.startswith('pycds-bench '):
            for item in line.split()[1:]:
                k, _, v = item.partition('=')
                kv[k] = v
    return kv


# ------------------------------------------------------------- statistics

def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float('nan')
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def median_ci(xs, level=0.95):
    """Distribution-free confidence interval for the median (order
    statistics of the binomial / sign test).  With fewer than 6 samples
    it is just [min, max], at a lower confidence."""
    s = sorted(xs)
    n = len(s)
    alpha = (1 - level) / 2
    # [s[k], s[n-1-k]] covers the median with probability
    # 1 - 2 P(Binomial(n, 1/2) <= k): take the largest k that keeps it.
    k = 0
    cdf = 0.0
    for i in range(n):
        cdf += math.comb(n, i) / 2 ** n
        if cdf > alpha:
            break
        k = i
    k = min(k, (n - 1) // 2)
    return s[k], s[n - 1 - k]


# ----------------------------------------------------------------- setup

def base_env(userbase, extra):
    """The environment of every run: ENV_KEEP from ours, the user base,
    and extra (PYTHONPATH, PYTHONPYCACHEPREFIX from the options)."""
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env['PYTHONUSERBASE'] = userbase
    env.update(extra)
    return env


def tree_env(env, site):
    """env with pycds activated from the build tree: BUILD/site first on
    PYTHONPATH, then whatever --pythonpath put there for every arm."""
    pp = env.get('PYTHONPATH')
    return dict(env, PYTHONPATH=site + os.pathsep + pp if pp else site)


def user_site(python, runner, userbase, extra):
    r = runner.run([python, '-c', 'import site; print(site.getusersitepackages())'],
                   base_env(userbase, extra))
    return r['stdout'].strip()


# What the interpreter under test says of itself: one value a line.
INTERP_PROBE = r"""
import os, sys, sysconfig
print(sys.version.replace('\n', ' '))
print(os.path.realpath(sys.executable))
print(sysconfig.get_config_var('Py_ENABLE_SHARED'))
lib = '-'
with open('/proc/self/maps') as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and \
                os.path.basename(parts[5]).startswith('libpython'):
            lib = parts[5].strip()
            break
print(lib)
"""

ELF_TYPES = {2: 'non-PIE (ELF e_type ET_EXEC)', 3: 'PIE (ELF e_type ET_DYN)'}


def elf_type(path):
    """e_type of the ELF file path (2 ET_EXEC, 3 ET_DYN), or None."""
    try:
        with open(path, 'rb') as f:
            h = f.read(18)
    except OSError:
        return None
    if len(h) < 18 or h[:4] != b'\x7fELF' or h[5] not in (1, 2):
        return None
    return int.from_bytes(h[16:18], 'little' if h[5] == 1 else 'big')


def machine_info(python, build, runner, env):
    info = {'nproc': os.cpu_count()}
    try:
        info['cpus_usable'] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    u = os.uname()
    info['kernel'] = '%s %s %s' % (u.sysname, u.release, u.machine)
    r = runner.run([python, '-c', INTERP_PROBE], env)
    lines = r['stdout'].splitlines()
    info['python'] = python
    info['python_version'] = lines[0].strip()
    info['executable'] = lines[1].strip()
    et = elf_type(info['executable'])
    info['elf_type'] = et
    info['pie'] = ELF_TYPES.get(et, 'not an ELF executable we know '
                                '(e_type %s)' % et)
    info['py_enable_shared'] = lines[2].strip()
    info['libpython_loaded'] = None if lines[3] == '-' else lines[3]
    info['loadavg_start'] = os.getloadavg()
    info['source'] = source_revision(build, runner, env)
    return info


def source_revision(build, runner, env):
    """The source tree the build directory was configured from, with its
    commit and whether it has uncommitted changes, if it is a git
    checkout (the build may of course be older than the tree)."""
    src = None
    try:
        with open(os.path.join(build, 'CMakeCache.txt')) as f:
            for line in f:
                if line.startswith('CMAKE_HOME_DIRECTORY:'):
                    src = line.split('=', 1)[1].strip()
    except OSError:
        pass
    if not src:
        return 'unknown'
    git = shutil.which('git')
    r = git and runner.run([git, '-C', src, 'rev-parse', '--show-toplevel',
                            '--short', 'HEAD'], env, check=False)
    if not r or r['rc'] != 0 or len(r['stdout'].split()) != 2:
        return src + ', not a git checkout'
    top, rev = r['stdout'].split()
    r = runner.run([git, '-C', src, 'status', '--porcelain',
                    '--untracked-files=no', '--', 'cds', 'importhook'],
                   env, check=False)
    dirty = ' + uncommitted changes in cds/ importhook/' \
        if r['stdout'].strip() else ''
    return '%s at %s%s' % (src, rev, dirty)


class Workload:
    def __init__(self, name, script, desc, tmp):
        self.name = name
        self.script = os.path.join(WORKLOAD_DIR, script)
        self.desc = desc
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.lst = os.path.join(self.dir, 'heap.lst')
        self.img = os.path.join(self.dir, 'heap.img')
        self.info = {}


def prepare(w, python, site, runner, env_stock, log):
    """Warm the .pyc caches, trace, dump, and size the archive against the
    .pyc files it replaces."""
    # 1. stock run with bytecode writing allowed (the environment of the
    # caller may have PYTHONDONTWRITEBYTECODE=1; base_env drops it).
    runner.run([python, w.script], env_stock)
    # 2. trace and dump, activated from the build tree.
    env = dict(tree_env(env_stock, site), PYCDSMODE='TRACE', PYCDSLIST=w.lst)
    runner.run([python, w.script], env)
    env = dict(tree_env(env_stock, site), PYCDSMODE='DUMP', PYCDSLIST=w.lst,
               PYCDSARCHIVE=w.img)
    r = runner.run([python], env)
    if not os.path.exists(w.img):
        raise BenchError('dump wrote no archive:\n' + r['stderr'])
    w.info['dump_message'] = r['stderr'].strip()
    # 3. sizes.  The helper runs in the interpreter under test with the
    # stock environment, so cache_from_source there is where that
    # interpreter wrote its .pyc (PYTHONPYCACHEPREFIX, its cache tag).
    r = runner.run([python, HELPER, 'pycsizes', w.lst], env_stock)
    kv = r['kv']
    w.info['listed'] = int(kv['listed'])
    w.info['pyc_files'] = int(kv['pyc_files'])
    w.info['pyc_bytes'] = int(kv['pyc_bytes'])
    missing = [m for m in kv['pyc_missing'].split(',') if m != '-']
    stale = [m for m in kv['pyc_stale'].split(',') if m != '-']
    w.info['pyc_missing'] = missing
    w.info['pyc_stale'] = stale
    w.info['archive_bytes'] = os.path.getsize(w.img)
    if missing or stale:
        log('warning: %s: %d traced modules have no .pyc cache and %d an '
            'out-of-date one (stock pays compilation for them): %s'
            % (w.name, len(missing), len(stale),
               ', '.join((missing + stale)[:10])))


def check_share(w, arm, r):
    kv = r['kv']
    if kv.get('active') != 'True' or int(kv.get('served', '0')) == 0:
        raise BenchError('%s/%s: pycds served nothing (stats: %s)\n%s'
                         % (w.name, arm, kv or 'none', r['stderr'][-2000:]))
    if 'pycds:' in r['stderr']:
        raise BenchError('%s/%s: pycds warned:\n%s'
                         % (w.name, arm, r['stderr'][-2000:]))


def measure_workload(w, python, arms, runner, rounds, warmup, log):
    """arms: list of (name, argv, env).  Returns {arm: [result, ...]}."""
    samples = {a[0]: [] for a in arms}
    n = len(arms)
    for r in range(-warmup, rounds):
        order = arms[r % n:] + arms[:r % n]
        for name, argv, env in order:
            res = runner.run(argv, env)
            if name.startswith('share'):
                check_share(w, name, res)
            if name == 'limit' and 'limit_served' not in res['kv']:
                raise BenchError('limit run printed no counters:\n'
                                 + res['stdout'] + res['stderr'])
            if 'import_ns' not in res['kv']:
                raise BenchError('%s/%s printed no import time:\n%s%s'
                                 % (w.name, name, res['stdout'],
                                    res['stderr']))
            if r >= 0:
                del res['stdout'], res['stderr']
                samples[name].append(res)
        if r >= 0 and (r + 1) % 5 == 0:
            log('  %s: round %d/%d' % (w.name, r + 1, rounds))
    return samples


# The untimed variants of the share arm that count the archive's pages:
# (key, label, helper mode, PYCDSPREFAULT or None for the default).
PAGE_ARMS = [
    ('run', 'after the workload', 'pages', None),
    ('run-nopf', 'after the workload', 'pages', '0'),
    ('load', 'loader only (get_code, no body run)', 'loadonly', None),
    ('load-nopf', 'loader only (get_code, no body run)', 'loadonly', '0'),
]
PAGE_FIELDS = ('size', 'rss', 'private_dirty', 'shared_clean',
               'private_clean', 'shared_dirty', 'anonymous')


def measure_pages(w, python, env_share, runner, rounds):
    """--page-rounds runs of each PAGE_ARMS variant, in rotating order.
    Returns {key: [kv, ...]} (the helper's and _cds.stats()'s counters)."""
    arms = []
    for key, _, mode, prefault in PAGE_ARMS:
        args = [w.img, w.script] if mode == 'pages' else [w.img, w.lst]
        env = dict(env_share)
        if prefault is not None:
            env['PYCDSPREFAULT'] = prefault
        arms.append((key, [python, HELPER, mode] + args, env))
    samples = {a[0]: [] for a in arms}
    n = len(arms)
    for r in range(rounds):
        for key, argv, env in arms[r % n:] + arms[:r % n]:
            res = runner.run(argv, env)
            check_share(w, 'pages/' + key, res)
            if res['kv'].get('pages_areas', '0') == '0':
                raise BenchError('%s/pages/%s: no mapping of %s in '
                                 '/proc/self/smaps\n%s%s'
                                 % (w.name, key, w.img, res['stdout'],
                                    res['stderr'][-2000:]))
            samples[key].append(res['kv'])
    return samples


def summarize_pages(samples):
    """Medians of each smaps field (kB) per variant, and at-base counts."""
    out = {}
    for key, label, mode, prefault in PAGE_ARMS:
        kvs = samples[key]
        m = {f: median([int(kv['pages_%s_kb' % f]) for kv in kvs])
             for f in PAGE_FIELDS}
        m.update(label=label, prefault='on' if prefault is None else 'off',
                 page_kb=int(kvs[0]['pages_page_kb']) or 4,
                 areas=int(kvs[0]['pages_areas']),
                 served=median([int(kv['served']) for kv in kvs]),
                 at_base=sum(kv.get('relocated') == 'False' for kv in kvs),
                 n=len(kvs))
        out[key] = m
    return out


def measure_pass(python, arms, runner, rounds, warmup, log):
    samples = {a[0]: [] for a in arms}
    n = len(arms)
    for r in range(-warmup, rounds):
        order = arms[r % n:] + arms[:r % n]
        for name, argv, env in order:
            res = runner.run(argv, env)
            if 'pycds:' in res['stderr']:
                raise BenchError('python -c pass (%s): pycds warned:\n%s'
                                 % (name, res['stderr'][-2000:]))
            if r >= 0:
                samples[name].append(res['wall_ms'])
        if r >= 0 and (r + 1) % 50 == 0:
            log('  startup: round %d/%d' % (r + 1, rounds))
    return samples


# ------------------------------------------------------------- reporting

def summarize(values):
    return {'median': median(values), 'min': min(values),
            'max': max(values), 'n': len(values)}


def target_for(workload, metric):
    return TARGETS.get((workload, metric), TARGETS.get(('*', metric)))


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return '-'
    return '%.*f' % (digits, x)


def report(results, startup, info, args, out):
    w = out.write
    w('\npycds benchmark%s\n' % (': ' + args.label if args.label else ''))
    w('  python   %s (%s)\n' % (info['python'], info['python_version']))
    lib = info['libpython_loaded']
    w('  binary   %s: %s; libpython %s (sysconfig Py_ENABLE_SHARED=%s)\n'
      % (info['executable'], info['pie'],
         'shared: ' + lib if lib else 'not a shared library in the process',
         info['py_enable_shared']))
    w('  paths    %s; %s\n'
      % ('PYTHONPATH += ' + args.pythonpath if args.pythonpath
         else 'no extra PYTHONPATH',
         'PYTHONPYCACHEPREFIX=' + args.pycache_prefix if args.pycache_prefix
         else '.pyc files in __pycache__ next to the sources'))
    w('  build    %s (source %s)\n' % (args.build, info['source']))
    w('  machine  %s CPUs (%s usable), %s, %s\n'
      % (info['nproc'], info.get('cpus_usable', '?'), info.get('cpu', '?'),
         info['kernel']))
    w('  load     %.2f at start, %.2f at end (1-min loadavg)\n'
      % (info['loadavg_start'][0], info['loadavg_end'][0]))
    w('  rounds   %d per workload (interleaved, rotating order), '
      '%d for python -c pass; medians (min in parentheses)\n'
      % (args.rounds, args.pass_rounds))

    hdr = '%-7s %-30s %19s %19s %7s %8s %4s\n'
    row = '%-7s %-30s %19s %19s %7s %8s %4s\n'
    w('\n' + hdr % ('', 'metric', 'stock', 'pycds', 'ratio',
                    'target', 'met'))
    w('-' * 101 + '\n')
    for name, res in results.items():
        for m in res['metrics']:
            t = m.get('target')
            met = '' if t is None else ('yes' if m['ratio'] <= t else 'NO')
            w(row % (name, m['label'],
                     '%s (%s)' % (fmt(m['stock_med'], m['digits']),
                                  fmt(m['stock_min'], m['digits'])),
                     '%s (%s)' % (fmt(m['pycds_med'], m['digits']),
                                  fmt(m['pycds_min'], m['digits'])),
                     fmt(m['ratio'], 3),
                     '' if t is None else '<=%.2f' % t, met))
        i = res['info']
        w('%-7s   %s: %d modules traced, %d with a valid .pyc; archive of '
          '%s modules; a SHARE run: %s served, %s missed; limit: %s '
          'preloaded, %s served\n'
          % ('', res['desc'], i['listed'],
             i['pyc_files'] - len(i['pyc_stale']),
             i.get('archive_modules', '?'), i.get('served', '?'),
             i.get('missed', '?'), i.get('limit_preloaded', '-'),
             i.get('limit_served', '-')))
    w('  (ratio: pycds/stock of medians; "limit" = every code object '
      'already in memory, only module bodies run)\n')
    w('  (peak RSS: the harness itself peaked at %.1f MB; a child\'s peak '
      'cannot be reported below that)\n' % (info['harness_rss_kb'] / 1024))
    report_pages(results, w)

    if startup:
        w('\nstartup: python -c pass, %d rounds; delta = median of per-round '
          'differences to stock [95%% CI]\n' % startup['rounds'])
        hdr2 = '%-52s %8s %8s %24s %10s %4s\n'
        w(hdr2 % ('arm', 'med ms', 'min ms', 'delta ms [95% CI]', 'target',
                  'met'))
        w('-' * 111 + '\n')
        for a in startup['arms']:
            if a['name'] == 'stock':
                delta = ''
            else:
                delta = '%+.2f [%+.2f, %+.2f]' % (a['delta'], a['ci'][0],
                                                   a['ci'][1])
            w(hdr2 % (a['label'], fmt(a['median'], 2), fmt(a['min'], 2),
                      delta, a.get('target', ''), a.get('met', '')))
        w('  (d) with the %s archive (%.1f MB).  "no cost" is met when the '
          'CI of the delta includes 0.\n'
          % (startup['archive_workload'], startup['archive_bytes'] / 2**20))


def report_pages(results, w):
    paged = {n: r for n, r in results.items() if r.get('pages')}
    if not paged:
        return
    any_pages = next(iter(paged.values()))['pages']['run']
    w('\narchive pages, SHARE (build tree): the archive\'s mapping in '
      '/proc/self/smaps at the end of the run, median of %d runs each; '
      'pages of %d kB\n' % (any_pages['n'], any_pages['page_kb']))
    hdr = '%-7s %-36s %4s %8s %8s %8s %8s  %9s %9s %9s %9s %7s %8s\n'
    w(hdr % ('', 'when', 'pf', 'mapped', 'resident', 'dirty', 'clean',
             'Size kB', 'Rss kB', 'Priv_Dty', 'Shr_Cln', 'Prv_Cln',
             'at base'))
    w('-' * 133 + '\n')
    for name, res in paged.items():
        for key, _, _, _ in PAGE_ARMS:
            m = res['pages'][key]
            pk = m['page_kb']
            clean = m['shared_clean'] + m['private_clean']
            w(hdr % (name, m['label'], m['prefault'],
                     fmt(m['size'] / pk, 0), fmt(m['rss'] / pk, 0),
                     fmt(m['private_dirty'] / pk, 0), fmt(clean / pk, 0),
                     fmt(m['size'], 0), fmt(m['rss'], 0),
                     fmt(m['private_dirty'], 0), fmt(m['shared_clean'], 0),
                     fmt(m['private_clean'], 0),
                     '%d/%d' % (m['at_base'], m['n'])))
        i = res['info']
        w('%-7s   %s served after the workload, %s after get_code alone; '
          'timed share runs mapped at base: %s\n'
          % ('', fmt(res['pages']['run']['served'], 0),
             fmt(res['pages']['load']['served'], 0), i['at_base']))
    w('  (pages: mapped = Size, resident = Rss, dirty = Private_Dirty '
      '(this process\'s copies), clean = Shared_Clean + Private_Clean '
      '(the file\'s page-cache pages, shared with every process that maps '
      'it; Private_ only while no other process does)\n'
      '  (pf: PYCDSPREFAULT; on, the default: on 3.11, PIE builds and '
      'relocated archives copy mode, each segment read into anonymous '
      'memory, so a segment used is dirty whole; on non-PIE 3.12 and 3.13 '
      'at the base only what loading writes is copied, the rest mapped from '
      'the file; off, only the pages written are copies; the header, the '
      'index and the string pool blocks used are private copies always)\n'
      '  (at base: runs where _cds.stats()[\'relocated\'] was False; the '
      'workloads do nothing after their import statement but print, so '
      '"after the workload" is after the imports; "loader only" runs no '
      'module body)\n')


def workload_metrics(name, s, info):
    """Rows of the result table from the samples of one workload."""
    def col(arm, key):
        return [x[key] for x in s[arm]]

    def imp(arm):
        return [int(x['kv']['import_ns']) / 1e6 for x in s[arm]]

    rows = []

    def add(label, metric, stock, pycds, digits=1):
        sm, pm = median(stock), median(pycds)
        rows.append({'label': label, 'metric': metric,
                     'stock_med': sm, 'stock_min': min(stock),
                     'pycds_med': pm, 'pycds_min': min(pycds),
                     'ratio': pm / sm, 'digits': digits,
                     'target': target_for(name, metric)})

    add('wall ms, SHARE (build tree)', 'wall', col('stock', 'wall_ms'),
        col('share', 'wall_ms'))
    if 'share-pth' in s:
        add('wall ms, SHARE (.pth)', 'wall-pth', col('stock', 'wall_ms'),
            col('share-pth', 'wall_ms'))
    add('import ms, SHARE (build tree)', 'import', imp('stock'),
        imp('share'))
    if 'share-pth' in s:
        add('import ms, SHARE (.pth)', 'import-pth', imp('stock'),
            imp('share-pth'))
    if 'limit' in s:
        add('import ms, in-memory limit', 'limit', imp('stock'),
            imp('limit'))
    add('CPU ms (user+sys), SHARE', 'cpu', col('stock', 'cpu_ms'),
        col('share', 'cpu_ms'))
    add('peak RSS MB, SHARE (build tree)', 'rss',
        [x / 1024 for x in col('stock', 'rss_kb')],
        [x / 1024 for x in col('share', 'rss_kb')])
    mb = 2 ** 20
    rows.append({'label': 'size MB: .pyc replaced / archive',
                 'metric': 'size',
                 'stock_med': info['pyc_bytes'] / mb, 'stock_min': None,
                 'pycds_med': info['archive_bytes'] / mb, 'pycds_min': None,
                 'ratio': info['archive_bytes'] / max(1, info['pyc_bytes']),
                 'digits': 2, 'target': target_for(name, 'size')})
    return rows


# ------------------------------------------------------------------ main

def main(argv=None):
    ap = argparse.ArgumentParser(
        description='pycds benchmark: stock CPython (warm .pyc) vs SHARE.')
    ap.add_argument('--python', default='/usr/bin/python3.11',
                    help='interpreter under test (default: %(default)s)')
    ap.add_argument('--build', default=os.path.join(REPO, 'build'),
                    help='pycds build directory, holding site/ '
                         '(default: %(default)s)')
    ap.add_argument('--rounds', type=int, default=20,
                    help='measured rounds per workload (default: 20)')
    ap.add_argument('--pass-rounds', type=int, default=None,
                    help='rounds of the `python -c pass` startup arms '
                         '(default: 5 x --rounds, at least 100)')
    ap.add_argument('--warmup', type=int, default=None,
                    help='unmeasured rounds before measuring (default 2)')
    ap.add_argument('--workloads', nargs='+', default=['all'],
                    help='stdlib, sympy, flask or all; comma-separated or '
                         'several arguments (default: all)')
    ap.add_argument('--no-pth', action='store_true',
                    help='skip the arms that activate pycds through an '
                         'installed pycds.pth')
    ap.add_argument('--no-limit', action='store_true',
                    help='skip the in-memory limit arm')
    ap.add_argument('--no-startup', action='store_true',
                    help='skip the `python -c pass` measurements (d), (e)')
    ap.add_argument('--quick', action='store_true',
                    help='smoke mode: few startup rounds, no warm-up '
                         'rounds; checks that everything runs and SHARE '
                         'serves modules')
    ap.add_argument('--no-pages', action='store_true',
                    help='skip counting the archive\'s dirty and shared '
                         'pages')
    ap.add_argument('--page-rounds', type=int, default=None,
                    help='runs of each page-counting variant (default: '
                         '--rounds, at most 5)')
    ap.add_argument('--pythonpath', metavar='DIRS',
                    help='directories (%s-separated) appended to every '
                         'run\'s PYTHONPATH, e.g. '
                         '/usr/lib/python3/dist-packages for an interpreter '
                         'that lacks the workloads\' packages' % os.pathsep)
    ap.add_argument('--pycache-prefix', metavar='DIR',
                    help='PYTHONPYCACHEPREFIX for every run (default: none; '
                         'with --pythonpath, a directory in the work '
                         'directory, so that no run writes .pyc files into '
                         'those directories)')
    ap.add_argument('--label', help='what is measured, for the report\'s '
                    'header (e.g. "Debian trixie python3.13 (chroot)")')
    ap.add_argument('--json', metavar='FILE',
                    help='also write all results and raw samples as JSON')
    ap.add_argument('--tmpdir', help='work directory (default: a new '
                    'temporary directory, removed afterwards)')
    ap.add_argument('--keep', action='store_true',
                    help='keep the temporary directory')
    args = ap.parse_args(argv)

    names = []
    for item in args.workloads:
        names += [x for x in item.split(',') if x]
    if 'all' in names:
        names = list(WORKLOADS)
    for n in names:
        if n not in WORKLOADS:
            ap.error('unknown workload %r (choose from %s)'
                     % (n, ', '.join(WORKLOADS)))
    if args.rounds < 1:
        ap.error('--rounds must be at least 1')
    if args.pass_rounds is None:
        args.pass_rounds = 5 if args.quick else max(100, 5 * args.rounds)
    if args.warmup is None:
        args.warmup = 0 if args.quick else 2
    if args.page_rounds is None:
        args.page_rounds = min(5, args.rounds)
    if args.page_rounds < 1:
        ap.error('--page-rounds must be at least 1')
    if args.pythonpath:
        # absolute: the children run in the work directory
        dirs = [os.path.abspath(d) for d in args.pythonpath.split(os.pathsep)
                if d]
        for d in dirs:
            if not os.path.isdir(d):
                ap.error('--pythonpath: %s is not a directory' % d)
        args.pythonpath = os.pathsep.join(dirs)
    if args.pycache_prefix:
        args.pycache_prefix = os.path.abspath(args.pycache_prefix)

    python = shutil.which(args.python) or args.python
    if args.json:
        args.json = os.path.abspath(args.json)   # before the chdir below
    args.build = os.path.abspath(args.build)
    site = os.path.join(args.build, 'site')
    sos = glob.glob(os.path.join(site, '_cds*.so'))
    if not sos or not os.path.exists(os.path.join(site, 'sitecustomize.py')):
        sys.exit('bench: %s has no _cds*.so and sitecustomize.py; build '
                 'first (cmake -S %s -B %s -DCMAKE_BUILD_TYPE=Release && '
                 'make -C %s)' % (site, REPO, args.build, args.build))

    def log(msg):
        sys.stderr.write(msg + '\n')
        sys.stderr.flush()

    tmp = args.tmpdir or tempfile.mkdtemp(prefix='pycds-bench-')
    tmp = os.path.abspath(tmp)
    os.makedirs(tmp, exist_ok=True)
    if args.pythonpath and not args.pycache_prefix:
        args.pycache_prefix = os.path.join(tmp, 'pycache')
    if args.pycache_prefix:
        os.makedirs(args.pycache_prefix, exist_ok=True)
    old_cwd = os.getcwd()
    os.chdir(tmp)     # children inherit it: nothing in it shadows a module
    try:
        return run_all(args, names, python, site, sos[0], tmp, log)
    except BenchError as e:
        log('bench: error: %s' % e)
        return 1
    finally:
        os.chdir(old_cwd)
        if args.keep:
            log('bench: kept %s' % tmp)
        elif not args.tmpdir:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(args, names, python, site, so, tmp, log):
    runner = Runner(tmp)

    # Two user bases: an empty user site directory for every arm, and one
    # with pycds installed in it (the _cds module and pycds.pth) for the
    # arms that measure the installed activation.  Both exist, so the arms
    # differ only by the files pycds installs.
    ub_empty = os.path.join(tmp, 'userbase-empty')
    ub_pycds = os.path.join(tmp, 'userbase-pycds')
    extra = {}
    if args.pythonpath:
        extra['PYTHONPATH'] = args.pythonpath
    if args.pycache_prefix:
        extra['PYTHONPYCACHEPREFIX'] = args.pycache_prefix
    env_stock = base_env(ub_empty, extra)
    use_pth = not args.no_pth
    for ub in (ub_empty, ub_pycds):
        us = user_site(python, runner, ub, extra)
        os.makedirs(us, exist_ok=True)
        if ub == ub_pycds:
            shutil.copy(so, us)
            shutil.copy(PTH, us)
    env_pth = base_env(ub_pycds, extra)
    r = runner.run([python, '-c', 'import sys; print(sys.path)'], env_pth)
    if use_pth and user_site(python, runner, ub_pycds,
                             extra) not in r['stdout']:
        log('warning: the user site directory is disabled for %s; '
            'skipping the .pth arms' % python)
        use_pth = False

    info = machine_info(python, args.build, runner, env_stock)
    log('bench: %s%s, build %s, work dir %s'
        % (python, ' (%s)' % args.label if args.label else '', args.build,
           tmp))

    results = {}
    for name in names:
        script, desc = WORKLOADS[name]
        w = Workload(name, script, desc, tmp)
        log('bench: %s: warm-up, trace, dump' % name)
        prepare(w, python, site, runner, env_stock, log)
        env_share = dict(tree_env(env_stock, site), PYCDSMODE='SHARE',
                         PYCDSARCHIVE=w.img)
        arms = [('stock', [python, w.script], env_stock),
                ('share', [python, w.script], env_share)]
        if use_pth:
            arms.append(('share-pth', [python, w.script],
                         dict(env_pth, PYCDSMODE='SHARE',
                              PYCDSARCHIVE=w.img)))
        if not args.no_limit:
            arms.append(('limit', [python, HELPER, 'limit', w.lst, w.script],
                         env_stock))
        log('bench: %s: %d rounds of %s' % (name, args.rounds,
                                            ', '.join(a[0] for a in arms)))
        s = measure_workload(w, python, arms, runner, args.rounds,
                             args.warmup, log)
        kv = s['share'][0]['kv']
        w.info['at_base'] = '%d/%d' % (
            sum(x['kv'].get('relocated') == 'False' for x in s['share']),
            len(s['share']))
        w.info['archive_modules'] = kv.get('modules')
        w.info['served'] = kv.get('served')
        w.info['missed'] = kv.get('missed')
        if 'limit' in s:
            w.info['limit_preloaded'] = s['limit'][0]['kv']['limit_preloaded']
            w.info['limit_served'] = s['limit'][0]['kv']['limit_served']
        pages = None
        if not args.no_pages:
            log('bench: %s: pages, %d runs of %d untimed variants'
                % (name, args.page_rounds, len(PAGE_ARMS)))
            ps = measure_pages(w, python, env_share, runner,
                               args.page_rounds)
            pages = summarize_pages(ps)
            for key in pages:
                pages[key]['samples'] = ps[key]
        results[name] = {'desc': desc, 'info': w.info, 'samples': s,
                         'metrics': workload_metrics(name, s, w.info),
                         'pages': pages, 'archive': w.img}

    startup = None
    if not args.no_startup:
        arch_name = 'sympy' if 'sympy' in results else names[0]
        img = results[arch_name]['archive']
        env_tree = tree_env(env_stock, site)
        arms = [
            ('stock', 'stock', env_stock),
            ('d-tree', '(d) SHARE, archive mapped, PYTHONPATH=site',
             dict(env_tree, PYCDSMODE='SHARE', PYCDSARCHIVE=img)),
            ('e-tree', '(e) PYTHONPATH=site, PYCDSMODE unset', env_tree),
        ]
        if use_pth:
            arms += [
                ('d-pth', '(d) SHARE, archive mapped, installed .pth',
                 dict(env_pth, PYCDSMODE='SHARE', PYCDSARCHIVE=img)),
                ('e-pth', '(e) installed .pth, PYCDSMODE unset', env_pth),
            ]
        log('bench: startup: %d rounds of python -c pass x %d arms'
            % (args.pass_rounds, len(arms)))
        s = measure_pass(python, [(a[0], [python, '-c', 'pass'], a[2])
                                  for a in arms],
                         runner, args.pass_rounds, args.warmup * 5, log)
        startup = {'rounds': args.pass_rounds, 'archive_workload': arch_name,
                   'archive_bytes': os.path.getsize(img), 'arms': []}
        for key, label, _ in arms:
            a = dict(summarize(s[key]), name=key, label=label,
                     samples=s[key])
            if key != 'stock':
                diffs = [x - y for x, y in zip(s[key], s['stock'])]
                a['delta'] = median(diffs)
                a['delta_of_medians'] = a['median'] - median(s['stock'])
                a['ci'] = median_ci(diffs)
                if key.startswith('d'):
                    a['target'] = '<%.1f ms' % TARGET_MAP_MS
                    a['met'] = 'yes' if a['delta'] < TARGET_MAP_MS else 'NO'
                else:
                    a['target'] = 'no cost'
                    a['met'] = 'yes' if a['ci'][0] <= 0 else 'NO'
            startup['arms'].append(a)

    info['loadavg_end'] = os.getloadavg()
    info['harness_rss_kb'] = resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss
    report(results, startup, info, args, sys.stdout)
    sys.stdout.flush()

    if args.json:
        import json
        doc = {'machine': info, 'args': vars(args),
               'workloads': {n: {k: v for k, v in r.items()
                                 if k != 'archive'}
                             for n, r in results.items()},
               'startup': startup}
        with open(args.json, 'w') as f:
            json.dump(doc, f, indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
