# SPDX-License-Identifier: MIT
# pycds activation for interpreters where pycds is not installed: the
# `pycds` CLI puts this directory first on PYTHONPATH.  It activates _cds
# (PYCDSMODE), takes this directory back off sys.path so the program sees
# the path it would have had, and then runs the sitecustomize this one
# hides, if there is one.
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
# configured by CMake (importhook/CMakeLists.txt)
_BUILT_VERSION = '@Python_VERSION@'
_BUILT_PYTHON = '@Python_EXECUTABLE@'
_SUPPORTED = '@PYCDS_SUPPORTED_WORDS@'.split()  # minor versions: '11' ...
_SUPPORTED_TEXT = '@PYCDS_SUPPORTED_TEXT@'


def _cannot_load(e):
    mode = os.environ.get('PYCDSMODE', '').strip().upper()
    if not mode or mode == 'OFF':
        return
    if 'subinterpreters' in str(e):
        # a sub-interpreter of a served process (3.12+ refuses
        # single-phase modules there): archives serve the main one only
        return
    here = sys.version.split()[0]
    if here != _BUILT_VERSION:
        # the C side's words (_cdsmodule.c runtime_problem)
        why = ('pycds was built for Python %s (%s), not for Python %s (%s)'
               % (_BUILT_VERSION, _BUILT_PYTHON, here, sys.executable))
        if (sys.version_info[0] == 3 and
                str(sys.version_info[1]) in _SUPPORTED):
            why += (': rebuild pycds for it (cmake -DPYCDS_PYTHON=%s)'
                    % sys.executable)
        else:
            why += (': pycds builds for Python %s only' % _SUPPORTED_TEXT)
    else:
        why = 'cannot load _cds for this interpreter (%s)' % e
    if mode == 'DUMP':
        sys.stderr.write('pycds: dump: %s\n' % why)
        sys.stderr.flush()
        os._exit(1)
    tail = {'TRACE': 'not tracing',
            'SHARE': 'using the normal import system'}.get(
                mode, 'running without pycds')
    sys.stderr.write('pycds: warning: %s; %s\n' % (why, tail))


try:
    import _cds
except ImportError as e:
    _cannot_load(e)
else:
    _cds._activate()

sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _here]


def _chain():
    # importlib's frozen halves are loaded already; importlib.util would
    # pull in a dozen modules before the program starts
    from _frozen_importlib import module_from_spec
    from _frozen_importlib_external import PathFinder
    spec = PathFinder.find_spec('sitecustomize', sys.path)
    if spec is not None and spec.loader is not None:
        module = module_from_spec(spec)
        # the import of this file ends by taking sys.modules['sitecustomize']
        # as its result: make that the chained module
        sys.modules['sitecustomize'] = module
        spec.loader.exec_module(module)


_chain()
