# SPDX-License-Identifier: MIT
"""Staleness at the cost the user chooses (PYCDSCHECK, issue 3 item 4):
stat (default: size and mtime), hash (the source's bytes: catches an edit
that keeps size and mtime, serves a file merely touched), none (trusted:
no system call; an edited source is *not* noticed, as documented)."""
import os
import shutil

import cdstest

MAIN = cdstest.STATS_HOOK + '''\
import touched, edited, kept
print(touched.VALUE, edited.VALUE, kept.VALUE)
'''


def main():
    t = cdstest.Case('check_modes')
    t.write('touched.py', "VALUE = 'touched'\n")
    t.write('edited.py', "VALUE = 'AAAA'\n")
    t.write('kept.py', "VALUE = 'kept'\n")
    app = t.write('app.py', MAIN)
    t.build([app])
    # touched: same bytes, new mtime; edited: new bytes, same size and
    # the old mtime put back (as some build and sync tools do)
    st = os.stat(t.path('touched.py'))
    os.utime(t.path('touched.py'), ns=(st.st_atime_ns,
                                       st.st_mtime_ns + 5_000_000_000))
    st = os.stat(t.path('edited.py'))
    with open(t.path('edited.py'), 'w') as f:
        f.write("VALUE = 'BBBB'\n")
    os.utime(t.path('edited.py'), ns=(st.st_atime_ns, st.st_mtime_ns))
    # the truth is the sources: a .pyc the build's runs wrote (bytecode
    # writing on, as on users' machines) would hide the edit from stock
    # too, which is the point of hash mode (under CDSTEST_PYCACHE if set)
    shutil.rmtree(t.pycache(os.path.realpath(t.dir)), ignore_errors=True)
    stock = t.stock([app], env={'PYTHONDONTWRITEBYTECODE': '1'})
    t.check_equal(stock.out, 'touched BBBB kept\n', 'stock sees the edit',
                  stock)

    # stat, like CPython's own timestamp .pyc check, cannot see an edit
    # that keeps size and mtime: the archived (old) code runs
    s = t.share([app])
    t.check_equal(s.out, 'touched AAAA kept\n',
                  'stat (default): what a timestamp .pyc would give', s)
    t.check('touched' not in s.served and 'kept' in s.served,
            'stat: the touched source is not served, kept is', s)
    t.check('edited' in s.served,
            'stat: an edit keeping size and mtime is not seen (the reason '
            'for hash mode)', s)

    s = t.share([app], env={'PYCDSCHECK': 'stat'})
    t.check('touched' not in s.served, 'PYCDSCHECK=stat is the default', s)

    h = t.share([app], env={'PYCDSCHECK': 'hash'})
    # the edited module is imported from its new source: output as stock
    t.check_same(stock, h, 'hash')
    t.check('touched' in h.served and 'kept' in h.served,
            'hash: a touched but unchanged source is served', h)
    t.check('edited' not in h.served and 'edited' in h.not_served,
            'hash: the edit is seen', h)
    t.check(h.stats is not None and h.stats['stale'] == 1,
            'hash: one stale module counted', h.stats)

    n = t.share([app], env={'PYCDSCHECK': 'none'})
    t.check({'touched', 'edited', 'kept'} <= n.served,
            'none: everything in the archive is served, unchecked', n)
    t.check_equal(n.out, 'touched AAAA kept\n',
                  'none: the archived code runs (trusted tree)', n)
    t.check(not n.warnings, 'none: no warning', n)

    b = t.share([app], env={'PYCDSCHECK': 'sometimes'}, verbose=False)
    t.check_equal(b.out, s.out, 'unknown PYCDSCHECK behaves as stat', b)
    t.check_one_warning(b, 'unknown PYCDSCHECK')
    return t.finish()


if __name__ == '__main__':
    main()
