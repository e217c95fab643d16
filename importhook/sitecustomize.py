# SPDX-License-Identifier: MIT
# pycds activation for interpreters where pycds is not installed: the
# `pycds` CLI puts this directory first on PYTHONPATH.  It activates _cds
# (PYCDSMODE), takes this directory back off sys.path so the program sees
# the path it would have had, and then runs the sitecustomize this one
# hides, if there is one.
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
try:
    import _cds
except ImportError as e:
    if os.environ.get('PYCDSMODE'):
        sys.stderr.write('pycds: warning: cannot load _cds for this '
                         'interpreter (%s); running without pycds\n' % e)
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
