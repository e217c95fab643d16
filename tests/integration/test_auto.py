# SPDX-License-Identifier: MIT
"""PYCDSMODE=AUTO: trace, dump and share in one step (issue 10, item 1).

1. First run, no archive: runs as stock (no warning), traces, and the
   archive appears after the program exited; the run's own output pipes
   close with the program (the dumper is detached), and the private list
   is removed.
2. Second run: served from the archive, as stock.
3. A program that fails (exit status 3, an uncaught exception) writes
   nothing, nor does the exit 0 of a child it forked.
4. A stale module: that run imports it from source (as stock), and the
   archive is refreshed at exit, so the next run serves the new code.
5. A damaged archive: one warning, the run as stock, the archive
   rewritten; the next run is served without a warning.
6. Concurrent first runs (6 at once) leave one valid archive (pycds
   verify) and no list files.
7. A program that changes directory and starts a Python child: the
   archive is written where it was named at start-up, and holds the
   child's imports too (the child joined the trace instead of dumping
   its own over it).
"""
import glob
import os
import subprocess
import time

import cdstest

MYMOD = "V = %r\n"
MAIN = r'''
import json, decimal, mymod
import pkg.sub
print(mymod.V, json.dumps({'a': [1, 2]}), decimal.Decimal('1.10') * 3,
      pkg.sub.f())
'''
FAIL_EXIT = "import json, mymod\nraise SystemExit(3)\n"
FAIL_RAISE = "import json, mymod\nraise ValueError('boom')\n"
FORK = r'''
import os, sys, json, mymod
pid = os.fork()
if pid == 0:
    sys.exit(0)          # the child exits 0 through Python's exit path
os.waitpid(pid, 0)
sys.exit(1)              # the program fails: nothing may be written
'''


def wait_for(cond, seconds=60.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def main():
    t = cdstest.Case('auto')
    t.write('mymod.py', MYMOD % 'one')
    t.write('pkg/__init__.py', '')
    t.write('pkg/sub.py', "def f():\n    return 'sub'\n")
    main_py = t.write('main.py', MAIN)
    img = t.path('heap.img')
    pycds = os.path.join(os.path.dirname(t.site), 'tools', 'pycds')

    def auto(script, archive=img, verbose=True):
        # PYCDSVERBOSE also keeps the dumper's stderr, the run's pipe: the
        # run then returns once a dump it started ended
        env = {'PYCDSMODE': 'AUTO', 'PYCDSARCHIVE': archive}
        if verbose:
            env['PYCDSVERBOSE'] = '1'
        return t.run([script], what='auto', env=env)

    def lists():
        return glob.glob(t.path('*.auto-*.lst'))

    def settled(archive=img):
        return lambda: os.path.exists(archive) and not lists()

    # 1. first run
    stock = t.stock([main_py])
    t.check(stock.rc == 0 and stock.out.startswith('one '),
            'stock run succeeds', stock)
    first = auto(main_py, verbose=False)
    t.check_same(stock, first, 'first run')
    t.check(first.err == '', 'first run: nothing on stderr (the detached '
            'dumper writes nothing to the program\'s streams)', first)
    t.check(wait_for(settled()), 'the archive appears after the first run, '
            'and its list is removed', 'lists: %r' % lists())
    v = subprocess.run([pycds, 'verify', img], capture_output=True,
                       text=True)
    t.check(v.returncode == 0, 'pycds verify: the archive is valid',
            v.stdout + v.stderr)

    # 2. second run
    second = auto(main_py)
    t.check_same(stock, second, 'second run')
    t.check(not second.warnings and all(
        m in second.served for m in ('mymod', 'pkg', 'pkg.sub', 'json',
                                     'decimal')),
        'second run: the program and the stdlib served', second)
    t.check(not lists(), 'second run: no list left (nothing was stale)',
            'lists: %r' % lists())

    # 3. failures write nothing
    for name, text in (('fail_exit.py', FAIL_EXIT),
                       ('fail_raise.py', FAIL_RAISE), ('fork.py', FORK)):
        script = t.write(name, text)
        archive = t.path(name + '.img')
        s = t.stock([script])
        r = auto(script, archive=archive)
        t.check_same(s, r, '%s: as stock' % name)
        time.sleep(1.0)
        t.check(s.rc != 0 and not os.path.exists(archive) and not lists(),
                '%s: exit status %s, no archive, no list' % (name, r.rc),
                r)

    # 4. a stale module is refreshed
    before = os.stat(img).st_mtime_ns
    time.sleep(0.05)
    t.write('mymod.py', MYMOD % 'two')
    stock2 = t.stock([main_py])
    stale = auto(main_py)
    t.check_same(stock2, stale, 'stale run')
    t.check('mymod' not in stale.served and 'json' in stale.served,
            'stale run: mymod from source, the rest served', stale)
    t.check(wait_for(lambda: os.stat(img).st_mtime_ns != before
                     and not lists()),
            'the archive is rewritten after the stale run')
    fresh = auto(main_py)
    t.check_same(stock2, fresh, 'after the refresh')
    t.check('mymod' in fresh.served and not fresh.warnings,
            'after the refresh: the new mymod served', fresh)

    # 5. a damaged archive is rewritten
    with open(img, 'r+b') as f:
        f.truncate(100)
    damaged = auto(main_py)
    t.check_same(stock2, damaged, 'damaged archive')
    t.check(len(damaged.warnings) == 1, 'damaged archive: one warning',
            damaged)
    t.check(wait_for(lambda: os.path.getsize(img) > 100 and not lists()),
            'the damaged archive is rewritten')
    healed = auto(main_py)
    t.check(not healed.warnings and 'mymod' in healed.served,
            'after the rewrite: served, no warning', healed)

    # 6. concurrent first runs
    many = t.path('many.img')
    env = t.environ({'PYTHONPATH': t.site, 'PYCDSMODE': 'AUTO',
                     'PYCDSARCHIVE': many})
    procs = [subprocess.Popen([t.python, main_py], cwd=t.dir, env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [p.communicate(timeout=300) for p in procs]
    t.check(all(p.returncode == 0 and o == stock2.out
                for p, (o, _) in zip(procs, outs)),
            'concurrent runs: all as stock', outs)
    t.check(wait_for(settled(many)), 'concurrent runs: an archive, no list')
    time.sleep(1.0)      # any later dumper finishes its rename
    v = subprocess.run([pycds, 'verify', many], capture_output=True,
                       text=True)
    t.check(v.returncode == 0 and not lists() and not glob.glob(
        t.path('*.tmp*')), 'concurrent runs: one valid archive, nothing '
        'left over', v.stdout + v.stderr, os.listdir(t.dir))

    # 7. chdir, and a Python child
    t.write('child.py', 'import childmod\nprint(childmod.C)\n')
    t.write('childmod.py', 'C = "child"\n')
    parent = t.write('parent.py', (
        'import os, subprocess, sys, json\n'
        'here = os.path.dirname(os.path.abspath(__file__))\n'
        'os.chdir("/")\n'
        'subprocess.run([sys.executable, os.path.join(here, "child.py")],'
        ' check=True)\n'
        'print(os.environ.get("PYCDSMODE"), json.dumps(1))\n'))
    rel = 'rel.img'
    p0 = t.stock([parent])
    p1 = t.run([parent], what='auto', env={'PYCDSMODE': 'AUTO',
                                           'PYCDSARCHIVE': rel})
    t.check(p1.rc == 0 and p1.out == p0.out.replace('None', 'AUTO'),
            'chdir and a child: runs as stock (os.environ still says AUTO)',
            p1, p0)
    t.check(wait_for(settled(t.path(rel))),
            'the archive is written at the path named at start-up')
    t.check('childmod' in names(pycds, t.path(rel)) and 'json' in
            names(pycds, t.path(rel)), "it holds the parent's and the "
            "child's imports", names(pycds, t.path(rel)))
    t.check(not os.path.exists('/rel.img'), 'nothing written in / ')
    t.finish()


def names(pycds, archive):
    import json
    r = subprocess.run([pycds, 'inspect', '--json', archive],
                       capture_output=True, text=True)
    return [m['name'] for m in json.loads(r.stdout)['modules']] \
        if r.returncode == 0 else []


if __name__ == '__main__':
    main()
