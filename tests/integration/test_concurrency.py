# SPDX-License-Identifier: MIT
"""Concurrent writers and readers of one archive path (issue 3, item 7).

Each of 4 rounds starts 8 dumpers that write the same archive path at
once, 4 times each in a row (all the same list, or half of them another
list), while 8 reader threads start SHARE runs of the program in a loop
until every dumper has finished.  The path holds a valid archive before
the first round, so a reader always finds a complete file: the writer
fills a temporary file whose magic says incomplete until the end, and
renames it over the path (format.md 7).

After each round: the dumpers all succeeded; exactly one archive is left
and `pycds verify` (the build's CLI) accepts it, with the module count of
one of the lists; no temporary file (ARCHIVE.tmp.*) is left; every reader
run printed what the stock run prints, with its exit status, and no
pycds line at all, and was served from the archive (a stderr line saying
the file was incomplete, truncated or corrupt would mean a reader saw a
partial file).  Meanwhile a monitor reads the path in a loop: each read
is a whole archive (complete magic, the size its header says).  The last
line gives the counts."""
import os
import subprocess
import threading
import time

import cdstest

APP = '''\
import json, csv, io, argparse, decimal, email.message, textwrap, difflib
m = email.message.Message()
m['To'] = 'a@b'
buf = io.StringIO()
csv.writer(buf).writerow(['x', 'y z'])
p = argparse.ArgumentParser(prog='c')
p.add_argument('--n', type=int)
print(json.dumps([1, 2.5]), buf.getvalue().strip(),
      p.parse_args(['--n', '2']).n, decimal.Decimal('1.1') * 3, m['To'],
      textwrap.shorten('a b c d e f', 7), list(difflib.ndiff(['a'], ['b'])))
'''

DUMPERS = 8
DUMPS_EACH = 4
READERS = 8
ROUNDS = (('same list', 'same'), ('two lists', 'two'),
          ('same list again', 'same'), ('two lists again', 'two'))


def monitor(arch, writing, snaps):
    """Read the archive path in a loop while the dumpers run: every read
    must find a whole archive (complete magic, the size its header
    says).  Appends True, or a description of what was found."""
    while writing.is_set():
        try:
            with open(arch, 'rb') as f:
                data = f.read()
        except OSError as e:
            snaps.append('cannot open: %s' % e)
            continue
        if data[:8] == b'\x93PYCDS\r\n' and len(data) >= 1024 and \
                cdstest.u64(data, 16) == len(data):
            snaps.append(True)
        else:
            snaps.append('%d bytes, magic %r, header size field %d'
                         % (len(data), data[:8], cdstest.u64(data, 16)
                            if len(data) >= 24 else -1))
        time.sleep(0.002)


def main():
    t = cdstest.Case('concurrency')
    app = t.write('app.py', cdstest.STATS_HOOK + APP)
    stock = t.stock([app])
    t.check(stock.rc == 0 and stock.out, 'stock run succeeds', stock)
    t.build([app], lst='full.lst', archive='heap.img')
    full = list(dict.fromkeys(t.read_list('full.lst')))
    half = full[:len(full) // 2]
    t.write('half.lst', '\n'.join(half) + '\n')
    first = t.share([app])
    t.check_same(stock, first, 'the first archive')
    t.check(not first.warnings and first.served,
            'the first archive serves (%d modules)' % len(first.served), first)

    cli = os.path.join(os.path.dirname(t.site), 'tools', 'pycds')
    if not os.path.exists(cli):
        print('note: no %s: archives are checked by a SHARE run only' % cli)
        cli = None
    arch = t.path('heap.img')
    site = t.site
    reader_env = t.environ({'PYTHONPATH': site, 'PYCDSMODE': 'SHARE',
                            'PYCDSARCHIVE': arch})

    totals = {'dumps': 0, 'reads': 0, 'reads during writes': 0,
              'warnings': 0, 'snapshots': 0}
    t0 = time.monotonic()
    for rnd, (what, lists) in enumerate(ROUNDS, 1):
        writing = threading.Event()
        writing.set()
        results = []
        lock = threading.Lock()

        def reader(k):
            n = 0
            while writing.is_set() or n == 0:
                during = writing.is_set()
                stats = t.path('r%d-%d-%d.stats' % (rnd, k, n))
                env = dict(reader_env, CDSTEST_STATS=stats)
                p = subprocess.run([t.python, app], cwd=t.dir, env=env,
                                   capture_output=True, text=True,
                                   timeout=120)
                st = None
                if os.path.exists(stats):
                    with open(stats) as f:
                        st = eval(f.read(), {})
                    os.unlink(stats)
                with lock:
                    results.append((k, during, p.returncode, p.stdout,
                                    p.stderr, st))
                n += 1

        threads = [threading.Thread(target=reader, args=(k,))
                   for k in range(READERS)]
        for th in threads:
            th.start()
        snaps = []
        mon = threading.Thread(target=monitor, args=(arch, writing, snaps))
        mon.start()
        douts = []

        def dumper(i):
            lst = 'half.lst' if lists == 'two' and i % 2 else 'full.lst'
            env = t.environ({'PYTHONPATH': site, 'PYCDSMODE': 'DUMP',
                             'PYCDSLIST': t.path(lst),
                             'PYCDSARCHIVE': arch})
            for _ in range(DUMPS_EACH):
                p = subprocess.run([t.python, app], cwd=t.dir, env=env,
                                   capture_output=True, text=True,
                                   timeout=120)
                with lock:
                    douts.append((lst, (p.stdout, p.stderr), p.returncode))

        dthreads = [threading.Thread(target=dumper, args=(i,))
                    for i in range(DUMPERS)]
        for th in dthreads:
            th.start()
        for th in dthreads:
            th.join(timeout=300)
        writing.clear()
        for th in threads + [mon]:
            th.join(timeout=180)
        partial = [s for s in snaps if s is not True]
        totals['snapshots'] += len(snaps)
        tag = 'round %d (%s)' % (rnd, what)
        totals['dumps'] += len(douts)
        totals['reads'] += len(results)
        during = [r for r in results if r[1]]
        totals['reads during writes'] += len(during)
        t.check(snaps and not partial, '%s: %d reads of the archive path '
                'during the writes, each a whole archive' % (tag, len(snaps)),
                partial[:5])
        t.check(len(douts) == DUMPERS * DUMPS_EACH and
                all(rc == 0 and out == '' and 'pycds: dumped' in err
                    for _, (out, err), rc in douts),
                '%s: %d dumpers, %d dumps each, succeed'
                % (tag, DUMPERS, DUMPS_EACH),
                [(lst, rc, err[-300:]) for lst, (out, err), rc in douts
                 if rc != 0 or 'pycds: dumped' not in err])
        left = sorted(n for n in os.listdir(t.dir)
                      if n.startswith('heap.img'))
        t.check(left == ['heap.img'], '%s: one archive, no temporary '
                'file left' % tag, left)
        if cli:
            v = subprocess.run([cli, 'verify', arch], capture_output=True,
                               text=True, timeout=120,
                               env=t.environ())
            counts = {'ok: %d modules' % len(full),
                      'ok: %d modules' % len(half)}
            t.check(v.returncode == 0 and any(c in v.stdout for c in counts),
                    '%s: pycds verify accepts the archive (%s)'
                    % (tag, v.stdout.strip()), v.stdout, v.stderr)
        bad = []
        for k, dur, rc, out, err, st in results:
            problems = []
            if rc != stock.rc or out != stock.out:
                problems.append('output or status differs (rc %s)' % rc)
            lines = [l for l in err.splitlines() if l.startswith('pycds')]
            if lines:
                problems.append('pycds lines: %r' % lines)
            if err != stock.err:
                problems.append('stderr differs')
            if not st or not st['active'] or st['served'] == 0 \
                    or st['failed']:
                problems.append('not served from the archive: %r' % (st,))
            totals['warnings'] += sum(1 for l in lines
                                      if l.startswith('pycds: warning:'))
            if problems:
                bad.append((k, dur, problems, err[-500:]))
        t.check(not bad and len(during) >= READERS,
                '%s: %d reader runs (%d while the dumpers ran) as stock, '
                'no warning, served' % (tag, len(results), len(during)),
                *bad[:5])
    final = t.share([app])
    t.check_same(stock, final, 'the archive after the rounds')
    t.check(not final.warnings and final.served,
            'the archive after the rounds serves', final)
    print('concurrency: %d rounds, %d dumpers (%d dumps each) and %d '
          'readers each: %d dumps, %d reader runs (%d during the writes), '
          '%d warnings, %d whole-file reads of the path, %.1f s'
          % (len(ROUNDS), DUMPERS, DUMPS_EACH, READERS, totals['dumps'],
             totals['reads'], totals['reads during writes'],
             totals['warnings'], totals['snapshots'],
             time.monotonic() - t0))
    t.finish()


if __name__ == '__main__':
    main()
