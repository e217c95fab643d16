# SPDX-License-Identifier: MIT
# pycds benchmark workload "stdlib": a broad set of standard-library imports.
# Prints the in-process import time (perf_counter around the one import
# statement) and, when pycds is active, its counters.  Run by bench.py;
# the file name must not shadow any module the workload imports.
import time
_t0 = time.perf_counter_ns()
import asyncio, email.mime.multipart, http.client, json, argparse, typing, dataclasses, logging.handlers, unittest, xml.etree.ElementTree, urllib.request, decimal, pathlib, tomllib, concurrent.futures, sqlite3, csv, zipfile, tarfile, subprocess, inspect, pydoc  # noqa: E401,F401
_t1 = time.perf_counter_ns()
import sys
print('pycds-bench import_ns=%d' % (_t1 - _t0))
if '_cds' in sys.modules:
    print('pycds-bench ' + ' '.join('%s=%s' % kv for kv in
                                     sys.modules['_cds'].stats().items()))
