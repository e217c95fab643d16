# SPDX-License-Identifier: MIT
"""Archived modules run as programs: `python -m tool` and `python -m pkg`
(its __main__), runpy.run_module, and an uncaught exception from them:
__name__, __file__, __spec__, __loader__, sys.argv and tracebacks as
stock, and the code comes from the archive."""
import os

import cdstest

TOOL = '''\
import sys
from importlib.machinery import SourceFileLoader


def describe():
    spec = __spec__
    print('name', __name__, 'file', __file__, 'argv', sys.argv[1:])
    print('spec', spec.name, spec.origin, spec.cached, spec.parent,
          spec.has_location, isinstance(spec.loader, SourceFileLoader))
    print('loader', __loader__ is spec.loader, __loader__.get_filename(
        spec.name))
    print('cached', globals().get('__cached__'), __package__)


if __name__ == '__main__':
    describe()
    if '--fail' in sys.argv:
        raise SystemExit(int(sys.argv[-1]) if sys.argv[-1].isdigit()
                         else 'tool failed')
    if '--raise' in sys.argv:
        {}['missing key']
'''

PKG_MAIN = '''\
import sys
from . import helper
print('pkg main', __name__, __spec__.name, __file__, helper.VALUE,
      sys.argv[1:])
'''

RUNNER = '''\
import runpy
import sys
sys.argv[1:] = ['from-runpy']
g = runpy.run_module('tool', run_name='__main__', alter_sys=True)
print('run_module', sorted(k for k in g if not k.startswith('__')))
g = runpy.run_module('pkgtool')
print('run_module pkg', g['__name__'], g['__file__'])
'''


def main():
    t = cdstest.Case('run_module')
    t.write('tool.py', TOOL)
    t.write('pkgtool/__init__.py', '')
    t.write('pkgtool/__main__.py', PKG_MAIN)
    t.write('pkgtool/helper.py', "VALUE = 'helper value'\n")
    runner = t.write('runner.py', RUNNER)
    runs = [['-m', 'tool', 'a', '-b'], ['-m', 'pkgtool', 'x'],
            ['-m', 'tool', '--fail', '3'], ['-m', 'tool', '--fail', 'x'],
            ['-m', 'tool', '--raise'], [runner]]
    # one list for all the runs, as a deploy would trace several commands
    for args in runs:
        t.trace(args)
    names = set(t.read_list())
    t.check({'tool', 'pkgtool', 'pkgtool.__main__', 'pkgtool.helper'}
            <= names, 'trace of -m runs lists tool and pkgtool.__main__',
            sorted(names))
    # DUMP with the modules' directory on PYTHONPATH (-m runs have the
    # current directory first on sys.path)
    d = t.dump(env={'PYTHONPATH': os.pathsep.join([t.site, t.dir])})
    t.check(d.rc == 0 and 'skipping' not in d.err,
            'dump with PYTHONPATH archives every listed module', d)
    # DUMP given the same command line as the traced run: `-m` puts the
    # current directory on sys.path as a script puts its directory
    d2 = t.run(['-m', 'tool'], what='dump', env={
        'PYCDSMODE': 'DUMP', 'PYCDSLIST': t.path('heap.lst'),
        'PYCDSARCHIVE': t.path('m.img')})
    t.check(d2.rc == 0 and d2.out == '' and 'skipping tool' not in d2.err,
            'dump with `python -m tool` finds tool in the current directory',
            d2)
    for args in runs:
        what = 'python ' + ' '.join(a.replace(t.dir + '/', '')
                                    for a in args)
        stock = t.stock(args)
        share = t.share(args)
        t.check_same(stock, share, what)
        t.check(not share.warnings, what + ': no warnings', share)
        main = 'pkgtool.__main__' if 'pkgtool' in args else 'tool'
        t.check(main in share.served, what + ': %s served' % main,
                share.not_served, share)
    t.finish()


if __name__ == '__main__':
    main()
