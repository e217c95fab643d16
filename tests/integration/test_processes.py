# SPDX-License-Identifier: MIT
"""The pre-fork and multi-threaded uses: a parent that imported some
archived modules forks workers that import more (their first use of
those segments happens after the fork); threads import archived modules
concurrently (the same ones and different ones); multiprocessing with
the spawn and forkserver methods starts fresh interpreters that inherit
PYCDS*; a sub-interpreter imports modules.  Output and exit status as
stock, and the workers' modules are served."""
import cdstest

APP = '''\
import os
import sys
import threading
import json


def work(tag):
    import decimal, fractions, statistics, argparse, textwrap
    return '%s: %s %s %s %s' % (
        tag, decimal.Decimal(1) / 8, fractions.Fraction(-3, 9),
        statistics.median([5, 1, -4, 2]),
        textwrap.shorten('a b c d e f g h i j k', 9))


def importer(barrier, out, i, name):
    import importlib
    barrier.wait()
    mod = importlib.import_module(name)
    out[i] = (name, mod.__name__, mod.__spec__.origin is not None)


def main():
    # --- fork: the children import what the parent has not -------------
    results = []
    for i in range(3):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            import csv, io
            buf = io.StringIO()
            csv.writer(buf).writerow([i, work('fork %d' % i)])
            os.write(w, buf.getvalue().encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, 'rb') as f:
            results.append(f.read().decode().strip())
        _, status = os.waitpid(pid, 0)
        results.append('exit %d' % os.waitstatus_to_exitcode(status))
    print('\\n'.join(results))

    # --- threads: 8 at once, same and different modules ----------------
    names = ['email.mime.text', 'http.cookies', 'xml.dom.minidom',
             'calendar', 'difflib', 'email.mime.text', 'http.cookies',
             'xml.dom.minidom']
    barrier = threading.Barrier(len(names))
    out = [None] * len(names)
    threads = [threading.Thread(target=importer, args=(barrier, out, i, n))
               for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(out)
    import calendar, difflib
    print(calendar.monthrange(2024, 2), list(difflib.ndiff(['a'], ['b'])))

    # --- multiprocessing: fresh interpreters ----------------------------
    import multiprocessing
    for method in ('spawn', 'forkserver'):
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2) as pool:
            print(method, pool.map(work, ['%s %d' % (method, i)
                                          for i in range(3)]))

    # --- a sub-interpreter ------------------------------------------------
    try:
        import _interpreters as interpreters  # 3.13 on
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.11, 3.12
    sys.stdout.flush()
    interp = interpreters.create()
    interpreters.run_string(interp, """if True:
        import json, decimal, os
        os.write(1, ('sub: %s %s\\\\n' % (json.dumps([-1, 2]),
                                        decimal.Decimal('2.5') * 2)).encode())
    """)
    interpreters.destroy(interp)
    print('done')


if __name__ == '__main__':
    main()
'''


def main():
    t = cdstest.Case('processes')
    app = t.write('app.py', cdstest.STATS_HOOK + APP)
    stock = t.stock([app])
    t.check(stock.rc == 0 and stock.out.endswith('done\n')
            and stock.out.count('exit 0') == 3 and 'sub: [-1, 2] 5.0'
            in stock.out, 'stock run succeeds', stock)
    t.build([app])
    listed = set(t.read_list())
    t.check({'decimal', 'fractions', 'statistics', 'csv', 'calendar',
             'difflib', 'email.mime.text', 'multiprocessing.pool'} <= listed,
            'the trace (with its children) lists the workers\' modules',
            sorted(listed))
    for what, kw in (('share', {}), ('share (relocated)',
                                     {'relocate': True})):
        share = t.share([app], **kw)
        t.check_same(stock, share, what)
        t.check(not share.warnings, what + ': no warnings', share)
        # verbose lines come from every process: the forked children and
        # the spawned workers serve the modules their parent did not load
        served = share.served_list
        t.check(served.count('csv') >= 3 and served.count('fractions') >= 3,
                what + ': each forked child serves csv and fractions',
                'csv x%d, fractions x%d' % (served.count('csv'),
                                            served.count('fractions')))
        t.check({'calendar', 'difflib', 'xml.dom.minidom',
                 'http.cookies'} <= share.served,
                what + ': the threads\' modules served', share)
        t.check(served.count('statistics') >= 5,
                what + ': spawn/forkserver workers serve too (statistics '
                'x%d)' % served.count('statistics'))
        st = share.stats
        t.check(st is not None and st['failed'] == 0
                and st['segments_bad'] == 0,
                what + ': parent stats: nothing failed', st)
    t.finish()


if __name__ == '__main__':
    main()
