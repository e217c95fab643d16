# SPDX-License-Identifier: MIT
"""Modules the archive does not hold are imported normally: a module left
out of the list, a module added after the dump, and an archived module
that another sys.path entry now shadows (the program must get the
shadowing one, exactly as without pycds)."""
import os

import cdstest

APP = '''\
import sys
from importlib.machinery import SourceFileLoader

import listed
print('listed', listed.VALUE,
      isinstance(listed.__spec__.loader, SourceFileLoader))
import unlisted
print('unlisted', unlisted.VALUE, type(unlisted.__spec__.loader).__name__,
      unlisted.__file__, getattr(unlisted, '__cached__', None),
      unlisted.__spec__.cached)
try:
    import added_later
    print('added_later', added_later.VALUE, added_later.__file__)
except ImportError:
    print('added_later: ImportError')
import helper
print('helper', helper.WHO, helper.__file__)
import json
print('json', json.dumps([1, 'x']), json.__file__)
'''


def main():
    t = cdstest.Case('missing')
    t.write('app/listed.py', "VALUE = 'listed'\n")
    t.write('app/unlisted.py', "VALUE = 'unlisted'\n")
    t.write('app/helper.py', "WHO = 'app helper'\n")
    app = t.write('app/main.py', cdstest.STATS_HOOK + APP)
    t.build([app])
    names = t.read_list()
    t.check({'listed', 'unlisted', 'helper', 'json'} <= set(names),
            'trace lists the app modules', names)
    # drop unlisted from the list and dump again
    t.write('heap.lst', ''.join(n + '\n' for n in names if n != 'unlisted'))
    d = t.dump(args=[app])
    t.check(d.rc == 0, 'dump without unlisted succeeds', d)
    t.write('app/added_later.py', "VALUE = 'added later'\n")

    stock = t.stock([app])
    t.check(stock.rc == 0 and 'unlisted unlisted SourceFileLoader' in stock.out
            and 'added_later added later' in stock.out,
            'stock run imports everything', stock)
    share = t.share([app])
    t.check_same(stock, share, 'share')
    t.check({'listed', 'helper', 'json'} <= share.served,
            'listed modules served', share)
    for name in ('unlisted', 'added_later'):
        t.check(name in share.not_in_archive and name not in share.served,
                'verbose: %s not in archive' % name, share)
    st = share.stats
    t.check(st is not None and st['missed'] >= 2 and st['failed'] == 0,
            'stats count the misses', st)

    # shadowing: the same program run from other/, whose own helper.py
    # and json.py come before app/ (on PYTHONPATH) and the stdlib: the
    # archived ones must not be served
    t.write('other/helper.py', "WHO = 'shadowing helper'\n")
    t.write('other/json.py', "def dumps(o):\n    return 'fake json'\n")
    other = t.write('other/main.py', cdstest.STATS_HOOK + APP)
    stock2 = t.stock([other], env={'PYTHONPATH': t.path('app')})
    t.check('helper shadowing helper' in stock2.out
            and 'json fake json' in stock2.out and 'listed listed' in
            stock2.out, 'stock run from other/ gets its helper and json',
            stock2)
    env = {'PYTHONPATH': os.pathsep.join([t.site, t.path('app')])}
    share2 = t.share([other], env=env)
    t.check_same(stock2, share2, 'share with shadowing modules')
    for name in ('helper', 'json'):
        t.check(name not in share2.served and 'shadowed' in
                share2.not_served.get(name, ''),
                'verbose: %s not served (shadowed)' % name,
                share2.not_served, share2)
    t.check('listed' in share2.served,
            'listed (app/ on PYTHONPATH) still served', share2)

    # the script run from another directory: the archived app modules'
    # directory is not on sys.path, so they are not found at all
    t.write('elsewhere/main.py', 'import listed\n')
    stock3 = t.stock([t.path('elsewhere/main.py')])
    share3 = t.share([t.path('elsewhere/main.py')])
    t.check(stock3.rc == 1 and 'ModuleNotFoundError' in stock3.err,
            'stock: listed is not importable from elsewhere/', stock3)
    t.check_same(stock3, share3, 'share from elsewhere/')
    t.check('listed' not in share3.served,
            'listed not served when its directory is not on sys.path',
            share3.not_served, share3)
    # odd paths: spaces and non-ASCII in directory and file names, a
    # module that is a symlink
    odd = 'd\xedr with space \u00fc'
    t.write(odd + '/uni_mod.py', "VALUE = 'unicode dir'\n")
    t.write(odd + '/real_mod.py', "VALUE = 'through a symlink'\n")
    os.symlink('real_mod.py', t.path(odd, 'link_mod.py'))
    app4 = t.write(odd + '/main.py', cdstest.STATS_HOOK + (
        'import uni_mod, link_mod\n'
        'print(uni_mod.VALUE, uni_mod.__file__, uni_mod.__spec__.cached,\n'
        '      getattr(uni_mod, "__cached__", None))\n'
        'print(link_mod.VALUE, link_mod.__file__, link_mod.__name__)\n'))
    t.build([app4], lst='odd.lst', archive='odd.img')
    stock4 = t.stock([app4])
    share4 = t.share([app4], archive='odd.img')
    t.check_same(stock4, share4, 'share with odd paths')
    t.check({'uni_mod', 'link_mod'} <= share4.served,
            'modules in a non-ASCII directory and behind a symlink served',
            share4)
    t.finish()


if __name__ == '__main__':
    main()
