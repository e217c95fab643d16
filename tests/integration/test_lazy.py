# SPDX-License-Identifier: MIT
"""Lazy imports (PEP 810, Python 3.15 on) served from the archive.

`lazy import M` binds a placeholder and imports nothing; the import runs,
through builtins.__import__ and sys.meta_path, when the name is first
used, from the frame of the line that uses it.  So the archive's finder
must serve a lazily imported module at its first use, and only then:

1. `lazy import`, `lazy from PKG import SUB`: nothing is imported at the
   statement (sys.modules, the placeholder's type and the module's own
   print show it), the module runs at first use, served from the archive,
   and behaves as stock's, tracebacks through it included.
2. A lazy import that is never used is never imported: the trace does not
   list it, and SHARE does not import it from the archive either.
3. PYTHON_LAZY_IMPORTS=all makes plain `import` statements lazy: the same
   under SHARE, with the archive traced and dumped under it.
4. The standard library's own lazy imports (site, traceback, inspect,
   typing, argparse, ... use them) are served where they are used.

Before 3.15 `lazy import` is a SyntaxError: the test skips and says so.
"""
import cdstest

LAZYMOD = r'''
print('lazymod runs')
VALUE = 42


def fail(x):
    return {'k': 1}[x]
'''

PKG_INIT = "print('pkg runs')\n"
PKG_SUB = r'''
print('pkg.sub runs')


def f():
    return 'sub.f'
'''
NEVER = "print('neverused runs')\nVALUE = 0\n"
PLAIN = "print('plainmod runs')\nVALUE = 'plain'\n"

MAIN = r'''
import sys
lazy import lazymod
lazy from pkg import sub
lazy import neverused
import plainmod


def kind(name):
    return type(globals()[name]).__name__


print('after the statements:', 'lazymod' in sys.modules,
      'pkg.sub' in sys.modules, kind('lazymod'), kind('sub'))
print('plainmod', plainmod.VALUE)
print('first use:', lazymod.VALUE)
print('after first use:', 'lazymod' in sys.modules, kind('lazymod'))
print('sub:', sub.f(), kind('sub'))
print('neverused imported:', 'neverused' in sys.modules)
try:
    lazymod.fail('nope')
except KeyError:
    import traceback
    print(traceback.format_exc())
import argparse
p = argparse.ArgumentParser(prog='lazy')
p.add_argument('--n', type=int, default=3)
print(p.parse_args(['--n', '5']))
print('done')
'''


def main():
    t = cdstest.Case('lazy')
    probe = t.stock(['-c', 'import sys; print(sys.version_info >= (3, 15),'
                           ' "%d.%d" % sys.version_info[:2])'])
    new_enough, version = (probe.out.split() + ['?', '?'])[:2]
    if new_enough != 'True':
        t.skip('lazy imports (PEP 810) need Python 3.15, not %s' % version)
    t.write('lazymod.py', LAZYMOD)
    t.write('pkg/__init__.py', PKG_INIT)
    t.write('pkg/sub.py', PKG_SUB)
    t.write('neverused.py', NEVER)
    t.write('plainmod.py', PLAIN)
    main_py = t.write('main.py', MAIN)

    stock = t.stock([main_py])
    t.check(stock.rc == 0 and stock.out.endswith('done\n'),
            'stock run succeeds', stock)
    lines = stock.out.splitlines()
    t.check('lazymod runs' in lines
            and lines.index('plainmod plain') < lines.index('lazymod runs')
            and 'neverused runs' not in lines
            and 'after the statements: False False lazy_import lazy_import'
            in lines, 'the test can fail: stock imports lazymod at its first '
            'use, never neverused', stock)

    t.build([main_py])
    listed = t.read_list()
    t.check(all(m in listed for m in ('lazymod', 'pkg', 'pkg.sub',
                                      'plainmod', 'argparse')),
            'trace lists the lazily imported modules that were used',
            'list: %r' % listed)
    t.check('neverused' not in listed,
            'trace does not list the lazy import never used',
            'list: %r' % listed)
    for relocate in (False, True):
        what = 'share' + (' (relocated)' if relocate else '')
        share = t.share([main_py], relocate=relocate)
        t.check_same(stock, share, what)
        t.check(not share.warnings, '%s: no warnings' % what, share)
        t.check(all(m in share.served for m in (
            'lazymod', 'pkg', 'pkg.sub', 'plainmod', 'argparse')),
            '%s: lazily imported modules served at first use' % what,
            share)
        t.check('neverused' not in share.served,
                '%s: the unused lazy import is not imported' % what, share)

    # every import lazy: traced, dumped and served under the same mode
    env = {'PYTHON_LAZY_IMPORTS': 'all'}
    stock_all = t.stock([main_py], env=env)
    t.check(stock_all.rc == 0 and stock_all.out != stock.out,
            'the test can fail: PYTHON_LAZY_IMPORTS=all defers plainmod',
            stock_all)
    t.build([main_py], lst='all.lst', archive='all.img', env=env)
    share_all = t.share([main_py], archive='all.img', env=env)
    t.check_same(stock_all, share_all, 'share (PYTHON_LAZY_IMPORTS=all)')
    t.check(not share_all.warnings and 'plainmod' in share_all.served,
            'share (PYTHON_LAZY_IMPORTS=all): plainmod served at first use',
            share_all)
    t.finish()


if __name__ == '__main__':
    main()
