# SPDX-License-Identifier: MIT
"""pip's way in (pyproject.toml): CMake builds and installs pycds for the
interpreter pip runs under into a staging directory, and the wheel takes
from it _cds and pycds.pth (into site-packages: the environment's python
then honours PYCDSMODE), the pycds command (bin/), its man page and bash
completion (share/).  The CMake build is the project's one build; this
file only moves its results."""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
STAGE = os.path.join(HERE, 'build', 'pip-stage')


class CMakeBuild(build_ext):
    """Build and install with CMake; put _cds where setuptools wants the
    extension."""

    def run(self):
        tree = os.path.abspath(os.path.join(self.build_temp, 'cmake'))
        shutil.rmtree(STAGE, ignore_errors=True)
        subprocess.check_call([
            'cmake', '-S', HERE, '-B', tree,
            '-DPYCDS_PYTHON=' + sys.executable, '-DCMAKE_BUILD_TYPE=Release',
            '-DBUILD_TESTING=OFF', '-DCMAKE_INSTALL_PREFIX=' + STAGE,
            '-DPYCDS_SITE_DIR=' + os.path.join(STAGE, 'site')])
        subprocess.check_call(['cmake', '--build', tree, '-j',
                               str(os.cpu_count() or 2)])
        subprocess.check_call(['cmake', '--install', tree])
        built = glob.glob(os.path.join(STAGE, 'site', '_cds*.so'))
        if len(built) != 1:
            raise RuntimeError('cmake --install left %r' % built)
        target = self.get_ext_fullpath('_cds')
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)
        # pycds.pth beside it, at the top of site-packages
        shutil.copyfile(os.path.join(STAGE, 'site', 'pycds.pth'),
                        os.path.join(self.build_lib, 'pycds.pth'))


def staged(rel):
    return [os.path.join('build', 'pip-stage', rel)]


setup(
    ext_modules=[Extension('_cds', sources=[])],
    cmdclass={'build_ext': CMakeBuild},
    # made by build_ext above, before install collects data files
    data_files=[('bin', staged('bin/pycds')),
                ('share/man/man1', staged('share/man/man1/pycds.1')),
                ('share/bash-completion/completions',
                 staged('share/bash-completion/completions/pycds'))],
    packages=[],
    py_modules=[],
    zip_safe=False,
)
