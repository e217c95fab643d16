# SPDX-License-Identifier: MIT
"""Trace, dump and share a broad standard-library workload
(workloads/stdlib_work.py): output and exit status as stock, and the
modules come from the archive."""
import cdstest

IMPORTS = ('asyncio email.mime.multipart http.client json argparse typing '
           'dataclasses logging.handlers unittest xml.etree.ElementTree '
           'urllib.request decimal pathlib tomllib concurrent.futures '
           'sqlite3 csv zipfile tarfile subprocess inspect pydoc').split()


def check_served(t, share, listed, imports, what):
    """Every name of the program's import list served, and at least 90%
    of the archived modules the program imports."""
    served = share.served
    t.check(not [n for n in imports if n not in served],
            '%s: every module of the import list served from the archive'
            % what, 'not served: %r' % [n for n in imports if n not in served],
            'not-served reasons: %r' % {n: share.not_served.get(n)
                                        for n in imports if n not in served})
    got = [n for n in listed if n in served]
    t.check(len(got) >= 0.9 * len(listed),
            '%s: >= 90%% of the %d archived modules served (%d; not: %s)'
            % (what, len(listed), len(got),
               ' '.join(sorted(set(listed) - served)[:10])),
            'not served: %r' % sorted(set(listed) - served),
            'reasons: %r' % share.not_served)
    t.check(not set(share.not_served) - {'sitecustomize'},
            '%s: no archived module reported "not served"' % what,
            share.not_served)


def check_stats(t, share, dumped, what, relocated):
    st = share.stats
    if not t.check(isinstance(st, dict), '%s: _cds.stats() recorded' % what,
                   share):
        return
    t.check(st['mode'] == 'share' and st['active'] is True,
            '%s: stats say share mode, active' % what, st)
    t.check(st['modules'] == dumped,
            '%s: stats modules == %d dumped' % (what, dumped), st)
    t.check(st['failed'] == 0 and st['segments_bad'] == 0
            and st['stale'] == 0 and st['warnings'] == 0,
            '%s: no failed/bad/stale segments, no warnings' % what, st)
    t.check(st['served'] == len(share.served_list),
            '%s: stats served == verbose "served" lines (%d)'
            % (what, len(share.served_list)), st)
    t.check(st['segments_loaded'] == len(share.served),
            '%s: stats segments_loaded == distinct served modules' % what,
            st)
    t.check(st['relocated'] is relocated,
            '%s: stats relocated is %s' % (what, relocated), st)


def run(name, relocate):
    t = cdstest.Case(name)
    app = t.workload('stdlib_work.py', 'app.py')
    stock = t.stock([app])
    t.check(stock.rc == 0 and 'done' in stock.out and stock.err == '',
            'stock run succeeds', stock)
    tr, dump = t.build([app])
    t.check_same(stock, tr, 'trace')
    listed = t.read_list()
    # an interpreter whose .pth files import some of these (pyenv's
    # setuptools hooks do) has them before pycds activates
    early = t.startup_modules()
    imports = [n for n in IMPORTS if n not in early]
    if len(imports) < len(IMPORTS):
        print('note: imported at startup, before pycds: %s'
              % ' '.join(n for n in IMPORTS if n in early))
    t.check(not [n for n in imports if n not in listed],
            'trace list has every module of the import list',
            'missing: %r' % [n for n in imports if n not in listed])
    # the subprocess child traces too (it inherits PYCDSMODE), appending
    # its own names: dump takes each name once
    listed = list(dict.fromkeys(listed))
    dumped = len(listed)
    t.check(dumped > 100, 'trace list is broad (%d modules)' % dumped)
    summary = [l for l in dump.err_lines if l.startswith('pycds: dumped ')]
    t.check(summary and summary[0].startswith(
        'pycds: dumped %d modules (0 skipped' % dumped),
        'dump archives all %d listed modules' % dumped, dump)

    share = t.share([app], relocate=relocate)
    what = 'share (relocated)' if relocate else 'share'
    t.check_same(stock, share, what)
    t.check(not share.warnings, '%s: no warnings' % what, share)
    check_served(t, share, listed, imports, what)
    check_stats(t, share, dumped, what, relocate)
    if relocate:
        t.check(any('elsewhere (relocating)' in l for l in share.pycds_lines),
                'verbose says the archive was mapped elsewhere', share)

    # not verbose: stderr is exactly stock's (nothing from pycds at all)
    quiet = t.share([app], verbose=False, relocate=relocate)
    t.check_same(stock, quiet, what + ' (quiet)')
    t.check_equal(quiet.err, stock.err, what + ' (quiet): stderr identical',
                  quiet)
    # a second process maps the same archive and gets the same answers
    again = t.share([app], verbose=False, relocate=relocate)
    t.check_same(stock, again, what + ' (second process)')
    t.check(again.stats and again.stats['served'] == share.stats['served'],
            what + ' (second process): serves as many modules',
            again.stats, share.stats)
    t.finish()


if __name__ == '__main__':
    run('stdlib', relocate=False)
