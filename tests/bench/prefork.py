#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pycds benchmark (issue 9): memory across processes on a pre-fork server.

A Flask application (workloads/prefork_app.py: flask, requests, sympy,
botocore) served by gunicorn, WORKERS sync workers on 127.0.0.1, with and
without --preload, stock CPython (warm .pyc caches) against PYCDSMODE=SHARE
activated the way an operator would: PYTHONPATH=BUILD/site, PYCDSMODE and
PYCDSARCHIVE in gunicorn's environment.  gunicorn runs as
`PYTHON -m gunicorn`, so the interpreter under test is explicit.

Preparation, in a temporary directory:
  1. gunicorn, one worker, stock with bytecode writing allowed: every .pyc
     is warm (checked with workloads/_bench_helper.py pycsizes);
  2. the same under PYCDSMODE=TRACE, without and with --preload, each
     stopped once it has answered / and /pid.  TRACE appends one line per
     module on a descriptor the workers inherit, so the list holds the
     master's imports (gunicorn) and the workers' (the application, and
     what the first request imports);
  3. PYCDSMODE=DUMP of that list; the same three steps for `import sympy`.

Each round runs the four arms (stock, share) x (no preload, preload) in an
order that rotates from round to round.  An arm:
  - starts the master and polls /pid?hold=20 from WORKERS threads until
    WORKERS distinct pids have answered (the hold keeps an answering
    worker busy, so concurrent polls land on other workers): the time
    from the master's start to then;
  - sends --requests requests for / from --clients threads (http.client,
    one connection each) and checks every body is the stock arm's;
  - asks each worker (/cds) what pycds served it;
  - reads /proc/PID/smaps_rollup of the master and every worker (PSS sum;
    USS = Private_Clean + Private_Dirty per worker) and, from
    /proc/PID/smaps, the mapping of the archive file (Rss, Shared_Clean,
    Shared_Dirty, Private_Clean, Private_Dirty), summed over the workers;
  - stops the server: SIGTERM to its process group, SIGKILL after 10 s.
Then --rounds rounds of the idle arms: WORKERS independent processes
(not forked) that each `import sympy`, print "ready" and sleep; stock
against SHARE (the sympy archive); the same memory counters.

Reported: medians over rounds, ratios share/stock; --json FILE has every
sample, --plot DIR writes PNGs (matplotlib, imported only then).  Exit
status 0 if every run worked, 1 otherwise (a server that does not come
up, a body that differs, SHARE serving nothing or warning), 2 for usage.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import (BenchError, Runner, base_env, median,  # noqa: E402
                   tree_env)
del sys.path[0]

WORKLOAD_DIR = os.path.join(HERE, 'workloads')
HELPER = os.path.join(WORKLOAD_DIR, '_bench_helper.py')
APP = 'prefork_app:app'
IDLE_CODE = ('import sys, time, sympy\n'
             'm = sys.modules.get("_cds")\n'
             's = m.stats() if m else {}\n'
             'print("ready", s.get("served", "-"), s.get("missed", "-"),'
             ' flush=True)\n'
             'time.sleep(600)\n')
NEEDED = ('gunicorn', 'flask', 'requests', 'sympy', 'botocore')
DEBIAN_PKGS = ('gunicorn', 'python3-flask', 'python3-requests',
               'python3-sympy', 'python3-botocore')
SMAPS_FIELDS = ('Size', 'Rss', 'Pss', 'Shared_Clean', 'Shared_Dirty',
                'Private_Clean', 'Private_Dirty')
ARMS = [('stock', False), ('share', False), ('stock', True), ('share', True)]
HOLD_MS = 20

_groups = set()          # process groups still to kill
_log_quiet = False


def log(msg):
    if not _log_quiet:
        print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------ processes

def spawn(argv, env, cwd, out, stdout=None):
    """Start argv in a session of its own (its workers join its process
    group), stderr (and stdout unless given) to the file out."""
    f = open(out, 'ab')
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=f if stdout is None else stdout,
                             stderr=f, start_new_session=True)
    finally:
        f.close()
    _groups.add(p.pid)
    return p


def stop(p, grace=10.0):
    """SIGTERM the process group of p, SIGKILL it after grace seconds."""
    if p.pid not in _groups:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its workers may still be exiting
        deadline = time.monotonic() + wait
        while group_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_alive(p.pid):
            break
    if p.poll() is None:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    _groups.discard(p.pid)


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_all():
    for pgid in list(_groups):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        _groups.discard(pgid)


def children(pid):
    """Direct children of pid, from /proc/PID/task/*/children, else by
    scanning /proc for the parent pid."""
    kids = []
    try:
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/children' % (pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
        return sorted(kids)
    except OSError:
        pass
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/stat' % d) as f:
                    st = f.read()
            except OSError:
                continue
            if int(st.rsplit(')', 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return sorted(kids)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --------------------------------------------------------------- memory

def read_rollup(pid):
    out = {}
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in SMAPS_FIELDS and v.strip().endswith('kB'):
                out[k] = int(v.split()[0])
    return out


def archive_range(path):
    """[base, base + size) of the archive: its header's base_address
    (format.md 2, offset 32) and the file's size."""
    with open(path, 'rb') as f:
        lo = int.from_bytes(f.read(40)[32:40], 'little')
    return lo, lo + os.path.getsize(path)


def read_mapping(pid, path):
    """smaps fields (kB) summed over the mappings of file path and, for
    copy mode (3.11, PIE), the anonymous areas over its range at its
    base (the pool; the segments are read into anonymous memory
    elsewhere, which smaps cannot tell from the heap), as
    workloads/_bench_helper.py counts them."""
    lo, hi = archive_range(path)
    out = dict.fromkeys(SMAPS_FIELDS, 0)
    out['areas'] = out['anon_areas'] = 0
    inside = False
    with open('/proc/%d/smaps' % pid) as f:
        for line in f:
            head = line.split(None, 5)
            if len(head) >= 5 and '-' in head[0] and ':' in head[3] \
                    and not head[0].endswith(':'):
                name = head[5].rstrip('\n') if len(head) == 6 else ''
                if name.endswith(' (deleted)'):
                    name = name[:-len(' (deleted)')]
                start, end = (int(x, 16) for x in head[0].split('-'))
                anon = not name and start < hi and end > lo
                inside = name == path or anon
                out['anon_areas'] += anon
                out['areas'] += inside
            elif inside:
                k, _, v = line.partition(':')
                if k in SMAPS_FIELDS:
                    out[k] += int(v.split()[0])
    return out


def memory(master, workers, archive):
    """PSS and USS of master and workers; the archive's pages."""
    procs = ([master] if master else []) + workers
    roll = {p: read_rollup(p) for p in procs}
    uss = [roll[p]['Private_Clean'] + roll[p]['Private_Dirty']
           for p in workers]
    m = {'pss_sum_kb': sum(r['Pss'] for r in roll.values()),
         'uss_kb': uss, 'uss_median_kb': median(uss),
         'rss_workers_kb': [roll[p]['Rss'] for p in workers]}
    if master:
        m['pss_master_kb'] = roll[master]['Pss']
        m['uss_master_kb'] = (roll[master]['Private_Clean']
                              + roll[master]['Private_Dirty'])
    if archive:
        per = [read_mapping(p, archive) for p in workers]
        m['archive_workers_kb'] = {k: sum(x[k] for x in per)
                                   for k in SMAPS_FIELDS}
        m['archive_areas'] = median([x['areas'] for x in per])
        m['archive_anon_areas'] = median([x['anon_areas'] for x in per])
        if master:
            m['archive_master_kb'] = read_mapping(master, archive)
    return m


# ---------------------------------------------------------------- HTTP

def get(port, path, timeout=30.0):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise BenchError('GET %s: HTTP %d' % (path, r.status))
        return body
    finally:
        c.close()


def poll_workers(port, path, n, proc, timeout, parse):
    """GET path from n threads until n distinct pids have answered (parse
    gives the pid and a value).  Returns ({pid: value}, the time the n-th
    answered, perf_counter)."""
    seen = {}
    lock = threading.Lock()
    done = threading.Event()
    when = []
    errors = []
    deadline = time.monotonic() + timeout

    def worker():
        while not done.is_set() and time.monotonic() < deadline:
            if proc.poll() is not None:
                errors.append('the master exited with %d' % proc.returncode)
                done.set()
                return
            try:
                body = get(port, path, timeout=5.0)
            except (OSError, http.client.HTTPException):
                time.sleep(0.01)
                continue
            except BenchError as e:
                errors.append(str(e))
                done.set()
                return
            pid, value = parse(body)
            with lock:
                if pid not in seen:
                    seen[pid] = value
                    if len(seen) == n:
                        when.append(time.perf_counter())
                        done.set()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    if errors:
        raise BenchError(errors[0])
    if not when:
        raise BenchError('%d of %d workers answered %s within %g s'
                         % (len(seen), n, path, timeout))
    return seen, when[0]


def load(port, total, clients, timeout):
    """total GETs of / from clients threads; {body: count}, seconds."""
    bodies = {}
    lock = threading.Lock()
    left = [total]
    errors = []
    deadline = time.monotonic() + timeout

    def worker():
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            if time.monotonic() > deadline:
                errors.append('%d requests took more than %.0f s'
                              % (total, timeout))
                return
            try:
                body = get(port, '/')
            except (OSError, http.client.HTTPException, BenchError) as e:
                errors.append('GET /: %s' % (e,))
                return
            with lock:
                bodies[body] = bodies.get(body, 0) + 1
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    t1 = time.perf_counter()
    if errors:
        raise BenchError(errors[0])
    return bodies, t1 - t0


# ------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.runner = Runner(tmp)
        userbase = os.path.join(tmp, 'userbase')
        os.makedirs(userbase)
        self.env = base_env(userbase, {})
        self.site = os.path.join(args.build, 'site')
        self.lst = os.path.join(tmp, 'app.lst')
        self.img = os.path.join(tmp, 'app.img')
        self.sympy_lst = os.path.join(tmp, 'sympy.lst')
        self.sympy_img = os.path.join(tmp, 'sympy.img')
        self.reference = None
        self.runs = 0
        self.info = {}

    def share_env(self, img):
        return dict(tree_env(self.env, self.site), PYCDSMODE='SHARE',
                    PYCDSARCHIVE=img)

    def gunicorn_argv(self, workers, preload, port):
        argv = [self.a.python, '-m', 'gunicorn', '--workers', str(workers),
                '--worker-class', 'sync', '--bind', '127.0.0.1:%d' % port,
                '--pythonpath', WORKLOAD_DIR, '--graceful-timeout', '5',
                '--log-level', 'warning']
        if preload:
            argv.append('--preload')
        return argv + [APP]

    def logfile(self, tag):
        self.runs += 1
        return os.path.join(self.tmp, 'log-%03d-%s' % (self.runs, tag))

    def serve_once(self, env, preload, tag):
        """One worker: start, answer / and /pid, stop (warm and trace)."""
        port = free_port()
        out = self.logfile(tag)
        p = spawn(self.gunicorn_argv(1, preload, port), env, self.tmp, out)
        try:
            poll_workers(port, '/pid', 1, p, self.a.timeout,
                         lambda b: (int(b), None))
            get(port, '/')
        except BenchError as e:
            raise BenchError('%s: %s\n%s' % (tag, e, tail(out)))
        finally:
            stop(p)
        return out

    def prepare(self):
        a = self.a
        # 1. warm caches: bytecode writing allowed (self.env does not pass
        # PYTHONDONTWRITEBYTECODE on)
        log('prepare: warm .pyc caches (stock gunicorn, 1 worker)')
        self.serve_once(self.env, False, 'warm')
        self.runner.run([a.python, '-c', 'import sympy'], self.env)
        # 2. trace without and with --preload, into one list
        env = dict(tree_env(self.env, self.site), PYCDSMODE='TRACE',
                   PYCDSLIST=self.lst)
        for preload in (False, True):
            log('prepare: trace gunicorn%s' % (' --preload' * preload))
            out = self.serve_once(env, preload, 'trace')
            check_quiet(out, 'trace')
        r = self.runner.run([a.python, '-c', 'import sympy'],
                            dict(env, PYCDSLIST=self.sympy_lst))
        if 'pycds:' in r['stderr']:
            raise BenchError('trace import sympy: ' + r['stderr'].strip())
        # 3. dump (finding the application where gunicorn's --pythonpath
        # puts it), and check the caches the stock arms use
        env = tree_env(dict(self.env, PYTHONPATH=WORKLOAD_DIR), self.site)
        for lst, img in ((self.lst, self.img),
                         (self.sympy_lst, self.sympy_img)):
            r = self.runner.run([a.python], dict(env, PYCDSMODE='DUMP',
                                                 PYCDSLIST=lst,
                                                 PYCDSARCHIVE=img),
                                check=False)
            if r['rc'] != 0 or not os.path.exists(img):
                raise BenchError('dump of %s failed:\n%s'
                                 % (lst, r['stderr'].strip()))
            # write the pages back: a dirty page-cache page counts as
            # Shared_Dirty/Private_Dirty in every mapping of it
            fd = os.open(img, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            key = os.path.basename(img).split('.')[0]
            msg = r['stderr'].strip().splitlines()
            self.info['dump_' + key] = msg
            self.info['archive_%s_bytes' % key] = os.path.getsize(img)
            log('prepare: ' + (msg[-1] if msg else 'dumped'))
            skipped = [x for x in msg if ': skipping ' in x]
            if skipped:
                log('prepare: %d skipped, e.g. %s'
                    % (len(skipped), skipped[0].split(': skipping ')[1]))
            r = self.runner.run([a.python, HELPER, 'pycsizes', lst],
                                self.env)
            kv = r['kv']
            bad = [m for k in ('pyc_missing', 'pyc_stale')
                   for m in kv.get(k, '-').split(',') if m != '-']
            self.info['listed_' + key] = len(set(read_list(lst)))
            self.info['pyc_bad_' + key] = bad
            if bad:
                log('warning: %s: %d traced modules have no valid .pyc '
                    '(stock compiles them): %s'
                    % (key, len(bad), ', '.join(bad[:10])))
        self.img = os.path.realpath(self.img)
        self.sympy_img = os.path.realpath(self.sympy_img)

    def server_arm(self, mode, preload):
        a = self.a
        n = a.workers
        env = self.share_env(self.img) if mode == 'share' else self.env
        port = free_port()
        tag = '%s%s' % (mode, '-preload' if preload else '')
        out = self.logfile(tag)
        argv = self.gunicorn_argv(n, preload, port)
        t0 = time.perf_counter()
        p = spawn(argv, env, self.tmp, out)
        try:
            seen, t1 = poll_workers(port, '/pid?hold=%d' % HOLD_MS, n, p,
                                    a.timeout, lambda b: (int(b), None))
            ready = t1 - t0
            bodies, secs = load(port, a.requests, a.clients, a.timeout)
            cds, _ = poll_workers(port, '/cds?hold=50', n, p, a.timeout,
                                  parse_cds)
            workers = children(p.pid)
            if sorted(seen) != workers:
                raise BenchError('the pids that answered (%s) are not the '
                                 "master's children (%s)"
                                 % (sorted(seen), workers))
            mem = memory(p.pid, workers, self.img)
        except BenchError as e:
            raise BenchError('%s: %s\n%s' % (tag, e, tail(out)))
        finally:
            stop(p)
        self.check_bodies(tag, bodies)
        served = [s['served'] if s else None for s in cds.values()]
        missed = [s['missed'] if s else None for s in cds.values()]
        if mode == 'share':
            check_quiet(out, tag)
            if not all(served):
                raise BenchError('%s: pycds served nothing in a worker '
                                 '(served per worker: %s)' % (tag, served))
        elif any(s is not None for s in served):
            raise BenchError('%s: _cds is loaded in a stock worker' % tag)
        res = dict(mem, ready_s=ready, requests=a.requests,
                   requests_s=secs, served=served, missed=missed,
                   master_pid=p.pid, worker_pids=workers)
        return res

    def check_bodies(self, tag, bodies):
        if len(bodies) != 1:
            raise BenchError('%s: %d different bodies for /'
                             % (tag, len(bodies)))
        body = next(iter(bodies))
        if self.reference is None:  # round 1 starts with the stock arm
            self.reference = body
        elif body != self.reference:
            raise BenchError("%s: the body of / differs from the stock "
                             "arm's:\n%r\n%r"
                             % (tag, body[:300], self.reference[:300]))

    def idle_arm(self, mode):
        a = self.a
        env = self.share_env(self.sympy_img) if mode == 'share' else self.env
        out = self.logfile('idle-' + mode)
        procs = []
        try:
            for _ in range(a.workers):
                procs.append(spawn([a.python, '-c', IDLE_CODE], env,
                                   self.tmp, out, stdout=subprocess.PIPE))
            lines = [read_line(p, a.timeout) for p in procs]
            for line in lines:
                if not line.startswith('ready'):
                    raise BenchError('an idle process printed %r' % line)
            mem = memory(None, [p.pid for p in procs], self.sympy_img)
        except BenchError as e:
            raise BenchError('idle-%s: %s\n%s' % (mode, e, tail(out)))
        finally:
            for p in procs:
                stop(p, grace=2.0)
                p.stdout.close()
        served = [int(x.split()[1]) if x.split()[1].isdigit() else None
                  for x in lines]
        if mode == 'share':
            check_quiet(out, 'idle-share')
            if not all(served):
                raise BenchError('idle-share: pycds served nothing '
                                 '(served: %s)' % served)
        return dict(mem, served=served,
                    missed=[x.split()[2] for x in lines])


def parse_cds(body):
    d = json.loads(body)
    return d['pid'], d['stats']


def read_line(p, timeout):
    """The first line p prints, within timeout seconds."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise BenchError('no "ready" within %.0f s' % timeout)
    finally:
        sel.close()
    line = p.stdout.readline().decode(errors='replace').strip()
    if not line:
        raise BenchError('a process exited before it was ready (status %s)'
                         % p.poll())
    return line


def fs_type(path):
    """The file system type path is on, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    best, kind = '', '?'
    try:
        with open('/proc/self/mountinfo') as f:
            for line in f:
                left, _, right = line.partition(' - ')
                mnt = left.split()[4].replace('\\040', ' ')
                if (path == mnt or path.startswith(mnt.rstrip('/') + '/')) \
                        and len(mnt) >= len(best):
                    best, kind = mnt, right.split()[0]
    except (OSError, IndexError):
        pass
    return kind


def read_list(path):
    with open(path) as f:
        return [x.split('#', 1)[0].strip() for x in f
                if x.split('#', 1)[0].strip() and
                x.lstrip()[:1] not in ('@', '$')]


def tail(path, n=15):
    try:
        with open(path, errors='replace') as f:
            lines = f.read().splitlines()
    except OSError:
        return ''
    return '\n'.join('  | ' + x for x in lines[-n:])


def check_quiet(path, tag):
    with open(path, errors='replace') as f:
        text = f.read()
    bad = [x for x in text.splitlines() if 'pycds:' in x]
    if bad:
        raise BenchError('%s: pycds warned:\n%s' % (tag, '\n'.join(bad[:5])))


# ------------------------------------------------------------ reporting

MB = 1024.0


def summary(samples):
    """Medians over rounds of each scalar; sums for the archive pages."""
    s = {}
    for key in ('ready_s', 'pss_sum_kb', 'uss_median_kb', 'pss_master_kb',
                'requests_s'):
        vals = [x[key] for x in samples if key in x]
        if vals:
            s[key] = median(vals)
    s['req_per_s'] = median([x['requests'] / x['requests_s']
                             for x in samples if 'requests_s' in x] or [0])
    if samples and 'archive_workers_kb' in samples[0]:
        s['archive_kb'] = {k: median([x['archive_workers_kb'][k]
                                      for x in samples])
                           for k in SMAPS_FIELDS}
    served = [v for x in samples for v in x['served'] if v is not None]
    anon = [x['archive_anon_areas'] for x in samples
            if 'archive_anon_areas' in x]
    s['archive_anon_areas'] = median(anon) if anon else 0
    s['served_median'] = median(served) if served else None
    s['served_range'] = [min(served), max(served)] if served else None
    s['n'] = len(samples)
    return s


def ratio(a, b):
    return '%.3f' % (b / a) if a else '-'


ROWS = [
    ('ready s (master start to %(w)d answering)', 'ready_s', 1.0, '%.2f'),
    ('PSS MB, sum of master + %(w)d workers', 'pss_sum_kb', MB, '%.1f'),
    ('USS MB per worker (median)', 'uss_median_kb', MB, '%.1f'),
    ('PSS MB, master', 'pss_master_kb', MB, '%.1f'),
    ('requests/s (%(r)d requests, %(c)d clients)', 'req_per_s', 1.0,
     '%.0f'),
]
PAGE_ROWS = [('archive Rss MB, sum of workers', 'Rss'),
             ('  Pss', 'Pss'),
             ('  Shared_Clean', 'Shared_Clean'),
             ('  Shared_Dirty', 'Shared_Dirty'),
             ('  Private_Clean', 'Private_Clean'),
             ('  Private_Dirty', 'Private_Dirty')]


def report(res, info, args, out):
    w = args.workers
    sub = {'w': w, 'r': args.requests, 'c': args.clients}
    p = lambda s='': print(s, file=out)  # noqa: E731
    p('pycds pre-fork memory benchmark (issue 9)')
    p('  python   %s (%s)' % (args.python, info['python_version']))
    p('  build    %s (source %s)' % (args.build, info['source']))
    p('  server   gunicorn %s, %d sync workers, 127.0.0.1; app %s (%s)'
      % (info['gunicorn'], w, APP, info['packages']))
    p('  archive  %.1f MB (%d modules traced); idle: sympy archive %.1f MB;'
      ' on %s' % (info['archive_app_bytes'] / 2 ** 20, info['listed_app'],
                  info['archive_sympy_bytes'] / 2 ** 20, info['archive_fs']))
    if info['archive_fs'] in ('tmpfs', 'ramfs'):
        p('           (%s: its pages are never clean, so shared ones show '
          'as Shared_Dirty; read Pss)' % info['archive_fs'])
    p('  rounds   %d (arms interleaved, rotating order); medians; ratio '
      'share/stock' % args.rounds)
    p('  machine  %s CPUs, %s; load %.2f at start, %.2f at end'
      % (info['nproc'], info['kernel'], info['load'][0], info['load'][1]))
    p()
    hdr = '%-44s %9s %9s %7s   %9s %9s %7s' % (
        'gunicorn', 'stock', 'share', 'ratio', 'stock', 'share', 'ratio')
    p('%-44s %27s   %27s' % ('', 'no --preload'.center(27),
                             '--preload'.center(27)))
    p(hdr)
    p('-' * len(hdr))
    for label, key, div, f in ROWS:
        cells = []
        for pre in (False, True):
            a = res['stock', pre].get(key)
            b = res['share', pre].get(key)
            if a is None or b is None:
                cells.append('%9s %9s %7s' % ('-', '-', '-'))
            else:
                cells.append('%9s %9s %7s' % (f % (a / div), f % (b / div),
                                              ratio(a, b)))
        p('%-44s %s   %s' % (label % sub, cells[0], cells[1]))
    for label, key in PAGE_ROWS:
        cells = []
        for pre in (False, True):
            b = res['share', pre]['archive_kb'][key]
            cells.append('%9s %9.1f %7s' % ('', b / MB, ''))
        p('%-44s %s   %s' % (label, cells[0], cells[1]))
    if any(res['share', pre].get('archive_anon_areas')
           for pre in (False, True)):
        p("  (copy mode: the archive rows are the archive's range at its "
          'base, not the anonymous memory the segments were read into)')
    for pre in (False, True):
        s = res['share', pre]
        p('  share%s: modules served per worker %s, missed %s'
          % (' --preload' if pre else '', fmt_range(s['served_range']),
             fmt_num(s['missed_median'])))
    if res.get(('idle', 'stock')) is None:
        return
    p()
    hdr = '%-44s %9s %9s %7s' % ('%d idle processes, import sympy' % w,
                                 'stock', 'share', 'ratio')
    p(hdr)
    p('-' * len(hdr))
    for label, key, div, f in ROWS[1:3]:
        a = res['idle', 'stock'][key]
        b = res['idle', 'share'][key]
        label = label.replace('master + %(w)d workers', '%(w)d processes')
        label = label.replace('per worker', 'per process')
        p('%-44s %9s %9s %7s' % (label % sub, f % (a / div), f % (b / div),
                                 ratio(a, b)))
    for label, key in PAGE_ROWS:
        b = res['idle', 'share']['archive_kb'][key]
        p('%-44s %9s %9.1f' % (label.replace('workers', 'processes'), '',
                               b / MB))
    s = res['idle', 'share']
    p('  share: modules served per process %s, missed %s'
      % (fmt_range(s['served_range']), fmt_num(s['missed_median'])))


def report_notes(w, out):
    p = lambda s='': print(s, file=out)  # noqa: E731
    p('  (USS = Private_Clean + Private_Dirty; archive = the smaps lines '
      'of the archive file,')
    p("   or in copy mode of the archive's range at its base: the bytes "
      'objects used from the file, the pool;')
    p('   ready: polled with %d concurrent GET /pid?hold=%d ms)'
      % (w, HOLD_MS))


def fmt_num(x):
    return '%g' % x if isinstance(x, (int, float)) else str(x)


def fmt_range(r):
    if not r:
        return '-'
    return str(r[0]) if r[0] == r[1] else '%d-%d' % tuple(r)


def plot(res, info, args, outdir):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError('--plot needs matplotlib (Debian: apt-get install '
                         'python3-matplotlib)')
    os.makedirs(outdir, exist_ok=True)
    w = args.workers
    who = '\nPython %s, gunicorn %s, %s' % (
        info['python_version'], info['gunicorn'], info['date'])
    groups = [('gunicorn', ('stock', False), ('share', False)),
              ('gunicorn --preload', ('stock', True), ('share', True)),
              ('%d x import sympy\n(independent, idle)' % w,
               ('idle', 'stock'), ('idle', 'share'))]
    written = []
    for key, title, fname in (
            ('pss_sum_kb', 'PSS, sum over the %d workers and master '
             '(idle: the %d processes)' % (w, w), args.plot_name + '-pss.png'),
            ('uss_median_kb', 'USS per worker (Private_Clean + '
             'Private_Dirty), median', args.plot_name + '-uss.png')):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        xs = range(len(groups))
        for i, (label, color, dx) in enumerate(
                (('stock', '#7f7f7f', -0.2), ('SHARE', '#1f77b4', 0.2))):
            vals = [res[g[1 + i]][key] / MB for g in groups]
            bars = ax.bar([x + dx for x in xs], vals, 0.4, label=label,
                          color=color)
            for b, (g, v) in zip(bars, zip(groups, vals)):
                txt = '%.0f' % v
                if i == 1:
                    txt += '\n(%s)' % ratio(res[g[1]][key], res[g[2]][key])
                ax.annotate(txt, (b.get_x() + b.get_width() / 2, v),
                            ha='center', va='bottom', fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([g[0] for g in groups])
        ax.set_ylabel('MB')
        ax.set_title(title + who, fontsize=9)
        ax.margins(y=0.2)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(outdir, fname)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    # the archive's pages in the SHARE arms
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    parts = (('Shared_Clean', '#2ca02c'), ('Shared_Dirty', '#ff7f0e'),
             ('Private_Clean', '#98df8a'), ('Private_Dirty', '#d62728'))
    labels = ['gunicorn', 'gunicorn --preload', '%d x import sympy' % w]
    keys = [('share', False), ('share', True), ('idle', 'share')]
    bottom = [0.0] * len(keys)
    for field, color in parts:
        vals = [res[k]['archive_kb'][field] / MB for k in keys]
        ax.bar(labels, vals, 0.5, bottom=bottom, label=field, color=color)
        bottom = [a + b for a, b in zip(bottom, vals)]
    ax.set_ylabel('MB, summed over the %d processes' % w)
    ax.set_title("The archive's mapping under SHARE (Rss by kind)" + who,
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(outdir, args.plot_name + '-archive.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


# ----------------------------------------------------------------- main

def ensure_packages(python, env, runner):
    """Check that python has what the benchmark imports; as root on
    Debian, apt-get install what is missing."""
    probe = ('import importlib.util as u, sys\n'
             'print(" ".join(m for m in sys.argv[1:] '
             'if u.find_spec(m) is None))')
    missing = runner.run([python, '-c', probe] + list(NEEDED),
                         env)['stdout'].split()
    if not missing:
        return
    apt = shutil.which('apt-get')
    if os.geteuid() == 0 and apt and python.startswith('/usr/bin/'):
        log('installing with apt-get: ' + ' '.join(DEBIAN_PKGS))
        r = subprocess.run([apt, 'install', '-y', '-qq'] + list(DEBIAN_PKGS),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=dict(os.environ,
                                    DEBIAN_FRONTEND='noninteractive'))
        if r.returncode == 0:
            missing = runner.run([python, '-c', probe] + list(NEEDED),
                                 env)['stdout'].split()
            if not missing:
                return
    raise BenchError('%s cannot import %s; install them (Debian: apt-get '
                     'install %s)' % (python, ', '.join(missing),
                                      ' '.join(DEBIAN_PKGS)))


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    apt = shutil.which('apt-get')
    if os.geteuid() == 0 and apt:
        log('installing with apt-get: python3-matplotlib')
        subprocess.run([apt, 'install', '-y', '-qq', 'python3-matplotlib'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
        try:
            import matplotlib  # noqa: F401,F811
            return
        except ImportError:
            pass
    raise BenchError('--plot needs matplotlib for %s (Debian: apt-get '
                     'install python3-matplotlib)' % sys.executable)


def head_from_files(src):
    """HEAD's commit read from .git itself, for a tree without git."""
    try:
        with open(os.path.join(src, '.git', 'HEAD')) as f:
            head = f.read().strip()
        if not head.startswith('ref: '):
            return head[:7]
        ref = head[5:]
        try:
            with open(os.path.join(src, '.git', ref)) as f:
                return f.read().strip()[:7]
        except FileNotFoundError:
            with open(os.path.join(src, '.git', 'packed-refs')) as f:
                for line in f:
                    if line.rstrip().endswith(' ' + ref):
                        return line[:7]
    except OSError:
        pass
    return 'unknown commit'


def source_revision(build):
    """The commit of the tree build was configured from, whether cds/ or
    importhook/ have uncommitted changes (and a hash of them), and when
    _cds was linked."""
    src = None
    try:
        with open(os.path.join(build, 'CMakeCache.txt')) as f:
            for line in f:
                if line.startswith('CMAKE_HOME_DIRECTORY:'):
                    src = line.split('=', 1)[1].strip()
    except OSError:
        pass
    so = [os.path.join(build, 'site', x)
          for x in os.listdir(os.path.join(build, 'site'))
          if x.startswith('_cds') and x.endswith('.so')]
    built = ('; _cds linked %s' % time.strftime(
        '%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(so[0])))
        if so else '; no _cds*.so in site/')
    git = shutil.which('git')
    if not src:
        return 'unknown (no CMakeCache.txt)' + built
    if not git:
        if not os.path.exists(os.path.join(src, '.git')):
            return '%s, not a git checkout%s' % (src, built)
        return '%s at %s (no git here: changes not checked)%s' % (
            src, head_from_files(src), built)

    def g(*a):
        r = subprocess.run([git, '-c', 'safe.directory=*', '-C', src] +
                           list(a), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        return r.stdout if r.returncode == 0 else None
    top = g('rev-parse', '--show-toplevel')
    rev = g('rev-parse', '--short', 'HEAD')
    if top is None or rev is None or \
            os.path.realpath(top.decode().strip()) != os.path.realpath(src):
        return '%s, not a git checkout%s' % (src, built)
    diff = g('diff', 'HEAD', '--', 'cds', 'importhook')
    dirty = ''
    if diff:
        import hashlib
        dirty = ' with uncommitted changes in cds/ importhook/ (the ' \
            "tree's diff now: sha1 %s)" % hashlib.sha1(diff).hexdigest()[:10]
    return '%s at %s%s%s' % (src, rev.decode().strip(), dirty, built)


VERSIONS = ('import sys, gunicorn, flask, requests, sympy, botocore\n'
            'print(sys.version.split()[0], gunicorn.__version__)\n'
            'print("flask %s, requests %s, sympy %s, botocore %s" % ('
            'flask.__version__ if hasattr(flask, "__version__") else "?", '
            'requests.__version__, sympy.__version__, botocore.__version__))')


def main(argv=None):
    ap = argparse.ArgumentParser(
        description='pycds: memory of a pre-fork server (gunicorn) and of '
        'independent processes, stock against SHARE (issue 9)')
    ap.add_argument('--python', default='/usr/bin/python3.11',
                    help='interpreter under test (default %(default)s)')
    ap.add_argument('--build', default=os.path.join(
        os.path.dirname(os.path.dirname(HERE)), 'build'),
        help='pycds build directory holding site/ (default: build in the '
        'checkout)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--workers', type=int, default=8)
    ap.add_argument('--requests', type=int, default=1000)
    ap.add_argument('--clients', type=int, default=4)
    ap.add_argument('--timeout', type=float, default=120.0,
                    help='seconds any one wait may take (default 120)')
    ap.add_argument('--no-idle', action='store_true',
                    help='leave out the independent processes')
    ap.add_argument('--json', metavar='FILE')
    ap.add_argument('--plot', metavar='DIR',
                    help='write NAME-pss.png, NAME-uss.png, '
                    'NAME-archive.png there (matplotlib)')
    ap.add_argument('--plot-name', metavar='NAME', default='prefork')
    ap.add_argument('--from-json', metavar='FILE',
                    help='measure nothing: print the table and draw the '
                    'plots of an earlier --json FILE (made elsewhere, such '
                    'as in a chroot without matplotlib)')
    ap.add_argument('--tmpdir', metavar='DIR',
                    help='where the work directory is made (default: the '
                    'build directory, so that the archive is on its disk, '
                    'not on a tmpfs)')
    ap.add_argument('--keep', action='store_true',
                    help='keep the work directory (lists, archives, logs)')
    ap.add_argument('-q', '--quiet', action='store_true',
                    help='no progress on stderr')
    args = ap.parse_args(argv)
    global _log_quiet
    _log_quiet = args.quiet
    if args.from_json:
        try:
            return replot(args)
        except (OSError, ValueError, KeyError, BenchError) as e:
            print('prefork: error: %s: %s' % (args.from_json, e),
                  file=sys.stderr)
            return 1
    if args.rounds < 1 or args.workers < 1 or args.clients < 1 \
            or args.requests < 1:
        ap.error('--rounds, --workers, --clients, --requests must be >= 1')
    args.build = os.path.abspath(args.build)
    if not os.access(args.python, os.X_OK):
        ap.error('--python %s: not an executable' % args.python)
    site = os.path.join(args.build, 'site')
    if not os.path.exists(os.path.join(site, 'sitecustomize.py')):
        ap.error('--build %s: no site/sitecustomize.py (build pycds first, '
                 'with -DPYCDS_PYTHON=%s)' % (args.build, args.python))

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    if args.tmpdir is None and os.access(args.build, os.W_OK):
        args.tmpdir = args.build
    tmp = tempfile.mkdtemp(prefix='pycds-prefork-', dir=args.tmpdir)
    try:
        return run(args, tmp)
    except BenchError as e:
        print('prefork: error: %s' % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('prefork: interrupted', file=sys.stderr)
        return 1
    finally:
        stop_all()
        if args.keep:
            print('prefork: work directory kept: %s' % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def replot(args):
    with open(args.from_json) as f:
        doc = json.load(f)
    res = {}
    for k, v in doc['summary'].items():
        a, b = k.split('/')
        res[a, {'True': True, 'False': False}.get(b, b)] = v
    old = argparse.Namespace(**doc['args'])
    report(res, doc['info'], old, sys.stdout)
    report_notes(old.workers, sys.stdout)
    if args.plot:
        ensure_matplotlib()
        old.plot_name = args.plot_name
        for path in plot(res, doc['info'], old, args.plot):
            log('wrote ' + path)
    return 0


def run(args, tmp):
    if args.plot:
        ensure_matplotlib()
    b = Bench(args, tmp)
    ensure_packages(args.python, b.env, b.runner)
    v = b.runner.run([args.python, '-c', VERSIONS], b.env)['stdout']
    v = v.splitlines()
    info = {'python_version': v[0].split()[0], 'gunicorn': v[0].split()[1],
            'packages': v[1], 'nproc': os.cpu_count(),
            'kernel': '%s %s' % (os.uname().release, os.uname().machine),
            'source': source_revision(args.build),
            'date': time.strftime('%Y-%m-%d %H:%M %Z'),
            'command': ' '.join([os.path.basename(sys.executable)]
                                + sys.argv)}
    load0 = os.getloadavg()[0]
    b.prepare()
    info.update(b.info)
    info['archive_fs'] = fs_type(b.img)
    samples = {arm: [] for arm in ARMS}
    if not args.no_idle:
        samples['idle', 'stock'] = []
        samples['idle', 'share'] = []
    for r in range(args.rounds):
        order = ARMS[r % len(ARMS):] + ARMS[:r % len(ARMS)]
        for mode, pre in order:
            log('round %d/%d: %s%s' % (r + 1, args.rounds, mode,
                                       ' --preload' if pre else ''))
            samples[mode, pre].append(b.server_arm(mode, pre))
    if not args.no_idle:
        for r in range(args.rounds):
            for mode in (('stock', 'share'), ('share', 'stock'))[r % 2]:
                log('round %d/%d: idle %s' % (r + 1, args.rounds, mode))
                samples['idle', mode].append(b.idle_arm(mode))
    info['load'] = (load0, os.getloadavg()[0])
    res = {k: summary(v) for k, v in samples.items()}
    for k, v in samples.items():
        missed = [int(m) for x in v for m in x['missed']
                  if str(m).isdigit()]
        res[k]['missed_median'] = median(missed) if missed else '-'
    if args.no_idle:
        for mode in ('stock', 'share'):
            res['idle', mode] = None
    report(res, info, args, sys.stdout)
    report_notes(args.workers, sys.stdout)
    sys.stdout.flush()
    if args.json:
        doc = {'info': info, 'args': vars(args),
               'summary': {'%s/%s' % k: v for k, v in res.items()},
               'samples': {'%s/%s' % k: v for k, v in samples.items()}}
        with open(args.json, 'w') as f:
            json.dump(doc, f, indent=1, default=str)
    if args.plot:
        if args.no_idle:
            raise BenchError('--plot needs the idle arms (drop --no-idle)')
        for path in plot(res, info, args, args.plot):
            log('wrote ' + path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
