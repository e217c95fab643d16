# SPDX-License-Identifier: MIT
"""Never stale: after the dump, sources change (new content and size,
same size with a new mtime, a package __init__) or disappear; SHARE must
import the current sources, say "not served" for those modules in
verbose mode, and still serve the unchanged ones.  A module whose source
changes while the program runs is reloaded from the new source."""
import os

import cdstest

MAIN = '''\
import importlib
import os
import sys

import grows
import same_size
import unchanged
import pkg
import pkg.mod
print('grows', grows.VALUE, grows.f())
print('same_size', same_size.VALUE)
print('unchanged', unchanged.VALUE)
print('pkg', pkg.VALUE, pkg.mod.VALUE)
try:
    import removed
    print('removed', removed.VALUE)
except ImportError as e:
    print('removed: ImportError', e.name)
try:
    import pkg.gone
    print('pkg.gone', pkg.gone.VALUE)
except ImportError as e:
    print('pkg.gone: ImportError', e.name)

# change a module while running, then reload it
import live
print('live before', live.VALUE)
path = live.__file__
st = os.stat(path)
with open(path, 'w') as f:
    f.write("VALUE = 'live after the edit, longer'\\n")
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
importlib.invalidate_caches()
importlib.reload(live)
print('live after', live.VALUE)
'''


def write_sources(t):
    t.write('grows.py', "VALUE = 'old'\n\ndef f():\n    return 'old f'\n")
    t.write('same_size.py', "VALUE = 'AAAA'\n")
    t.write('unchanged.py', "VALUE = 'unchanged'\n")
    t.write('pkg/__init__.py', "VALUE = 'old pkg'\n")
    t.write('pkg/mod.py', "VALUE = 'pkg.mod'\n")
    t.write('pkg/gone.py', "VALUE = 'pkg.gone exists'\n")
    t.write('removed.py', "VALUE = 'removed exists'\n")
    reset_live(t)


def reset_live(t):
    """live.py as it was dumped: same content, same mtime (main.py edits
    it in every run)."""
    p = t.write('live.py', "VALUE = 'live before the edit'\n")
    os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def rewrite(t, rel, text, same_size=False):
    """New content with an mtime 2 s later (some filesystems have coarse
    timestamps; the check must not depend on the clock moving)."""
    p = t.path(rel)
    st = os.stat(p)
    if same_size:
        assert len(text.encode()) == st.st_size, rel
    with open(p, 'w') as f:
        f.write(text)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def main():
    t = cdstest.Case('stale')
    write_sources(t)
    main_py = t.write('main.py', cdstest.STATS_HOOK + MAIN)
    t.trace([main_py])
    reset_live(t)
    d = t.dump(args=[main_py])
    t.check(d.rc == 0, 'dump succeeds', d)
    listed = set(t.read_list())
    archived = {'grows', 'same_size', 'unchanged', 'pkg', 'pkg.mod',
                'pkg.gone', 'removed', 'live'}
    t.check(archived <= listed, 'trace lists the test modules',
            sorted(archived - listed))
    # fresh: everything served, and the live edit is still seen
    reset_live(t)
    fresh = t.share([main_py])
    t.check(archived <= fresh.served,
            'before any change, the test modules are served',
            sorted(archived - fresh.served), fresh)
    t.check('live before the edit' in fresh.out
            and 'live after the edit, longer' in fresh.out,
            'reload after an edit while running uses the new source', fresh)
    t.check(fresh.served_list.count('live') == 1
            and 'changed' in fresh.not_served.get('live', ''),
            'the reload of the edited module is not served',
            fresh.served_list, fresh.not_served)

    rewrite(t, 'grows.py', "VALUE = 'new and longer'\n\n"
            "def f():\n    return 'new f'\n")
    rewrite(t, 'same_size.py', "VALUE = 'BBBB'\n", same_size=True)
    rewrite(t, 'pkg/__init__.py', "VALUE = 'new pkg!'\n")
    os.unlink(t.path('removed.py'))
    os.unlink(t.path('pkg/gone.py'))
    reset_live(t)

    stock = t.stock([main_py])
    t.check("grows new and longer new f" in stock.out
            and 'same_size BBBB' in stock.out
            and 'pkg new pkg! pkg.mod' in stock.out
            and 'removed: ImportError removed' in stock.out
            and 'pkg.gone: ImportError pkg.gone' in stock.out,
            'stock run sees the changes', stock)
    reset_live(t)
    share = t.share([main_py])
    t.check_same(stock, share, 'share after the changes')
    t.check(not share.warnings, 'a stale module is not a warning', share)
    # verbose: "NAME: not served: source PATH changed/removed since the
    # dump" (the wording is pycds's; the test wants the name and the path)
    ns = share.not_served
    for name, rel in (('grows', 'grows.py'), ('same_size', 'same_size.py'),
                      ('pkg', 'pkg/__init__.py'), ('removed', 'removed.py'),
                      ('pkg.gone', 'pkg/gone.py')):
        t.check(name in ns and t.path(rel) in ns[name]
                and name not in share.served,
                'verbose: %s not served, the reason names %s' % (name, rel),
                ns)
    t.check(ns.get('removed', '').replace('removed.py', '')
            != ns.get('grows', '').replace('grows.py', ''),
            'verbose: a removed source reads differently from a changed one',
            ns)
    t.check({'unchanged', 'pkg.mod'} <= share.served,
            'unchanged modules still served', share.served & archived)
    st = share.stats
    # grows, same_size, pkg, removed, pkg.gone and live (its reload)
    t.check(st is not None and st['stale'] == 6 and st['failed'] == 0,
            'stats count the stale modules', st)
    reset_live(t)
    quiet = t.share([main_py], verbose=False)
    t.check_same(stock, quiet, 'share after the changes (quiet)')
    t.check_equal(quiet.err, stock.err, 'quiet: stderr identical', quiet)
    t.finish()


if __name__ == '__main__':
    main()
