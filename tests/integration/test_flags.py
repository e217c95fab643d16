# SPDX-License-Identifier: MIT
"""Interpreter flags that change what importing a module gives: -O and
-OO (asserts, __debug__, docstrings; the .opt-N.pyc __cached__),
PYTHONOPTIMIZE, -X pycache_prefix, -B.  An archive dumped at one
optimization level and used at another must not change behaviour: each
SHARE run's stdout, stderr and exit status equal the stock run's with the
same flags.  The runs set the pycache prefix themselves (none unless
said), whatever CDSTEST_PYCACHE is."""
import cdstest

MOD = '''\
"""Module docstring."""


def f():
    """Function docstring."""
    try:
        assert False, 'asserts are on'
        return 'asserts are off'
    except AssertionError as e:
        return str(e)


DEBUG = __debug__
if __debug__:
    BRANCH = 'debug branch'
else:
    BRANCH = 'optimized branch'
'''

APP = '''\
import sys
import mod
import json
print('flags', sys.flags.optimize, sys.flags.dont_write_bytecode)
print('mod', mod.f(), mod.DEBUG, mod.BRANCH, mod.__doc__, mod.f.__doc__)
print('cached', getattr(mod, '__cached__', None), mod.__spec__.cached)
print('json cached', getattr(json, '__cached__', None), json.__spec__.cached)
print('json doc', (json.__doc__ or '')[:30], json.dumps.__doc__ is None)
'''


def main():
    t = cdstest.Case('flags')
    t.write('mod.py', MOD)
    app = t.write('app.py', APP)
    # one archive dumped without -O, one with -OO
    noprefix = {'PYTHONPYCACHEPREFIX': None}
    t.build([app], lst='plain.lst', archive='plain.img', env=noprefix)
    t.trace(['-OO', app], lst='oo.lst', env=noprefix)
    d = t.dump(lst='oo.lst', archive='oo.img', args=['-OO', app],
               env=noprefix)
    t.check(d.rc == 0, 'dump with -OO succeeds', d)
    prefix = t.path('pycache-prefix')
    for flags, env in ((['-O'], None), (['-OO'], None),
                       ([], {'PYTHONOPTIMIZE': '1'}),
                       ([], None), (['-B'], None),
                       (['-X', 'pycache_prefix=' + prefix], None),
                       ([], {'PYTHONPYCACHEPREFIX': prefix})):
        stock = t.stock(flags + [app], env=dict(noprefix, **(env or {})))
        t.check(stock.rc == 0, 'stock %s run' % (flags or env), stock)
        for archive in ('plain.img', 'oo.img'):
            what = 'share %s with %s' % (' '.join(flags) or env or
                                         'no flags', archive)
            share = t.share(flags + [app], archive=archive,
                            env=dict(noprefix, **(env or {})))
            t.check_same(stock, share, what)
            t.check(not share.warnings or len(share.warnings) == 1,
                    what + ': at most one warning', share)
    t.finish()


if __name__ == '__main__':
    main()
