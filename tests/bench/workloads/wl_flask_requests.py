# SPDX-License-Identifier: MIT
# pycds benchmark workload "flask": import flask, requests.
# Prints the in-process import time (perf_counter around the one import
# statement) and, when pycds is active, its counters.  Run by bench.py;
# the file name must not shadow any module the workload imports.
import time
_t0 = time.perf_counter_ns()
import flask, requests  # noqa: E401,F401
_t1 = time.perf_counter_ns()
import sys
print('pycds-bench import_ns=%d' % (_t1 - _t0))
if '_cds' in sys.modules:
    print('pycds-bench ' + ' '.join('%s=%s' % kv for kv in
                                     sys.modules['_cds'].stats().items()))
