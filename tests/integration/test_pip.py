# SPDX-License-Identifier: MIT
"""pip install --no-build-isolation . into a fresh virtual environment
(issue 10, item 7): the build backend is setuptools from Debian's
packages (setup.py drives the project's CMake build); afterwards that
environment's python honours PYCDSMODE (_cds and pycds.pth in its
site-packages) and has the pycds command, man page and completion, and
a trace, dump and share through that command serve as they should.  The
interpreter's own site-packages gains nothing.

The sources are copied first, so that the build writes nowhere in the
checkout.  Skipped, and said so, where the interpreter cannot make a
virtual environment or lacks setuptools and wheel.
"""
import os
import shutil
import subprocess

import cdstest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
APP = 'import json, email.utils, mymod\nprint(json.dumps([mymod.V]))\n'


def main():
    t = cdstest.Case('pip')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PYCDS', 'PYTHONPATH', 'PIP_'))}
    venv = t.path('venv')
    r = subprocess.run([t.python, '-m', 'venv', '--system-site-packages',
                        venv], capture_output=True, text=True, env=env)
    py = os.path.join(venv, 'bin', 'python')
    # the build backend, as the environment has it (Debian's
    # python3-setuptools and python3-wheel for Debian's interpreters;
    # pyenv's builds have no wheel, and Debian's setuptools is patched for
    # Debian's interpreters only)
    probe = subprocess.run([py, '-c', 'import setuptools, wheel.bdist_wheel'],
                           capture_output=True, text=True, env=env) \
        if r.returncode == 0 else r
    if probe.returncode != 0:
        t.skip('%s: no virtual environment with setuptools and wheel '
               '(Debian: python3.X-venv, python3-setuptools, python3-wheel): '
               '%s' % (t.python, (probe.stderr.strip().splitlines() or
                                  ['?'])[-1]))
    src = t.path('src')
    shutil.copytree(TOP, src, ignore=shutil.ignore_patterns(
        'build*', '.git', '*.img', '*.lst', '__pycache__', '*.egg-info'))
    r = subprocess.run([py, '-m', 'pip', 'install', '--no-build-isolation',
                        '--no-index', '--no-deps', src],
                       capture_output=True, text=True, env=env, cwd=t.dir)
    t.check(r.returncode == 0, 'pip install --no-build-isolation .',
            (r.stdout + r.stderr)[-3000:])
    site = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.'
                           'get_path("platlib"))'], capture_output=True,
                          text=True, env=env).stdout.strip()
    listed = sorted(os.listdir(site)) if os.path.isdir(site) else []
    t.check('pycds.pth' in listed and any(
        n.startswith('_cds.') and n.endswith('.so') for n in listed),
        "the environment's site-packages holds _cds and pycds.pth", listed)
    for rel in ('bin/pycds', 'share/man/man1/pycds.1',
                'share/bash-completion/completions/pycds'):
        t.check(os.path.isfile(os.path.join(venv, rel)),
                'installed: %s' % rel)
    t.check(os.access(os.path.join(venv, 'bin', 'pycds'), os.X_OK),
            'bin/pycds is executable')
    # the base interpreter is untouched
    base = subprocess.run([t.python, '-c', 'import _cds'],
                          capture_output=True, text=True, env=env)
    t.check(base.returncode != 0, 'the base interpreter has no _cds',
            base.stderr)

    # the environment at work, through its own pycds command
    t.write('app/mymod.py', "V = 'venv'\n")
    app = t.write('app/app.py', APP)
    venv_env = dict(env, PATH=os.path.join(venv, 'bin') + os.pathsep +
                    env.get('PATH', ''))
    stock = subprocess.run([py, app], capture_output=True, text=True,
                           env=venv_env)
    pycds = os.path.join(venv, 'bin', 'pycds')
    steps = [[pycds, 'trace', '-o', 'h.lst', '--', py, app],
             [pycds, 'dump', 'h.lst', '-o', 'h.img', '--python', py]]
    for argv in steps:
        r = subprocess.run(argv, capture_output=True, text=True,
                           env=venv_env, cwd=t.path('app'))
        t.check(r.returncode == 0, ' '.join(argv[1:3]), r.stdout + r.stderr)
    share = subprocess.run([py, app], capture_output=True, text=True,
                           cwd=t.path('app'),
                           env=dict(venv_env, PYCDSMODE='SHARE',
                                    PYCDSARCHIVE='h.img', PYCDSVERBOSE='1'))
    t.check(share.returncode == 0 and share.stdout == stock.stdout ==
            '["venv"]\n', 'the venv python serves as stock prints',
            share.stdout, share.stderr)
    served = [l for l in share.stderr.splitlines()
              if l.endswith(': served from archive')]
    t.check(any(l.startswith('pycds: mymod:') for l in served) and
            any(l.startswith('pycds: json:') for l in served),
            'mymod and json served from the archive', share.stderr)
    t.finish()


if __name__ == '__main__':
    main()
