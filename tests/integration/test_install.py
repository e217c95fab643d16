# SPDX-License-Identifier: MIT
"""Installed pycds: `cmake --install` puts _cds and pycds.pth into a
site-packages directory, and a plain interpreter then honours the PYCDS*
variables with no PYTHONPATH and no code change (issue 2, point 2).

The build is installed with DESTDIR into the test's directory, and the
staged _cds and pycds.pth are put into a user site directory chosen with
PYTHONUSERBASE, which site processes (.pth files included) at startup as
it would any site-packages.  Without PYCDSMODE, _cds is not even
imported."""
import os
import shutil
import subprocess
import sys

import cdstest

PROGRAM = cdstest.STATS_HOOK + '''\
import json, email.mime.text, decimal, argparse
print(json.dumps({"d": str(decimal.Decimal(1) / 7)}))
print(email.mime.text.MIMEText("hi")["Content-Type"])
'''


def main():
    case = cdstest.Case('install')
    build = os.path.dirname(os.path.abspath(case.site))
    stage = case.path('stage')
    env = dict(os.environ, DESTDIR=stage)
    p = subprocess.run(['cmake', '--install', build], env=env,
                       capture_output=True, text=True)
    case.check(p.returncode == 0, 'cmake --install succeeds',
               p.stdout + p.stderr)
    # os.walk, not glob: the destination may lie under a dot directory
    # (pyenv's ~/.pyenv), which glob's ** skips
    pth, ext = [], []
    for root, _, files in os.walk(stage):
        pth += [os.path.join(root, f) for f in files if f == 'pycds.pth']
        ext += [os.path.join(root, f) for f in files
                if f.startswith('_cds.') and f.endswith('.so')]
    case.check(len(pth) == 1 and len(ext) == 1,
               'install stages one pycds.pth and one _cds', pth, ext)
    if case.failures:
        return case.finish()
    # PYTHONUSERBASE's site-packages, as site computes it
    userbase = case.path('userbase')
    q = subprocess.run([case.python, '-c',
                        'import site; print(site.getusersitepackages())'],
                       env=case.environ({'PYTHONUSERBASE': userbase}),
                       capture_output=True, text=True)
    usersite = q.stdout.strip()
    os.makedirs(usersite)
    for f in pth + ext:
        shutil.copy(f, usersite)
    installed = {'PYTHONUSERBASE': userbase, 'PYTHONPATH': None}
    case.write('app.py', PROGRAM)

    # no PYCDSMODE: nothing of pycds is loaded
    r = case.run(['-c', 'import sys; print("_cds" in sys.modules)'],
                 env=installed)
    case.check_equal(r.out.strip(), 'False',
                     'installed, no PYCDSMODE: _cds not imported', r)
    r = case.run(['-c', 'import sys; print("\\n".join(sys.path))'],
                 env=installed)
    case.check(usersite in r.out.splitlines(),
               'the user site is on sys.path (site processed it)', r)

    stock = case.stock(['app.py'])
    env = dict(installed, PYCDSMODE='TRACE', PYCDSLIST=case.path('heap.lst'))
    t = case.run(['app.py'], env=env, what='trace')
    case.check_same(stock, t, 'installed TRACE')
    names = case.read_list()
    case.check('json.decoder' in names and 'email.mime.text' in names,
               'installed TRACE lists the modules', names)
    env = dict(installed, PYCDSMODE='DUMP', PYCDSLIST=case.path('heap.lst'),
               PYCDSARCHIVE=case.path('heap.img'))
    d = case.run([], env=env, what='dump')
    case.check(d.rc == 0 and os.path.exists(case.path('heap.img')),
               'installed DUMP writes the archive', d)
    env = dict(installed, PYCDSMODE='SHARE', PYCDSVERBOSE='1',
               PYCDSARCHIVE=case.path('heap.img'))
    s = case.run(['app.py'], env=env, what='share')
    case.check_same(stock, s, 'installed SHARE')
    case.check({'json', 'json.decoder', 'email.mime.text'} <= s.served,
               'installed SHARE serves the modules', sorted(s.served))
    case.check(s.stats is not None and s.stats['failed'] == 0,
               'installed SHARE: nothing failed', s.stats)
    return case.finish()


if __name__ == '__main__':
    sys.exit(main())
