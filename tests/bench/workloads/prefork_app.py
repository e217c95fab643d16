# SPDX-License-Identifier: MIT
# pycds benchmark workload "prefork": a Flask application served by
# gunicorn in tests/bench/prefork.py.  Importing it pulls flask, requests,
# sympy and botocore (Debian's packages); it does no work at import time
# beyond that, so that a worker's memory is what its imports leave.
#
#   /        a deterministic body computed with sympy on every request:
#            the same bytes in every process, with or without pycds
#   /pid     os.getpid(), for the readiness check
#   /cds     os.getpid() and _cds.stats() (JSON), to see what pycds served
#            in the worker that answers
#
# /pid and /cds take ?hold=MS: the worker sleeps that long before it
# answers, so that concurrent requests land on distinct sync workers.
import functools
import json
import os
import sys
import time

import botocore.session  # noqa: F401
import flask
import requests  # noqa: F401
import sympy

app = flask.Flask(__name__)
_x = sympy.Symbol('x')


def _hold():
    ms = flask.request.args.get('hold', '')
    if ms.isdigit():
        time.sleep(min(int(ms), 1000) / 1000)


@functools.lru_cache(maxsize=None)
def _integral():
    # 20 ms, and more modules imported on first use: once per worker
    return sympy.integrate(_x ** 3 * sympy.sin(_x), _x)


@app.route('/')
def index():
    f = _x ** 3 * sympy.sin(_x)
    body = '%s\n%s\n%s\n%s\n' % (
        sympy.expand((_x + 1) ** 12), sympy.diff(f, _x, 3),
        sympy.factorint(2 ** 32 + 1), _integral())
    return flask.Response(body, mimetype='text/plain')


@app.route('/pid')
def pid():
    _hold()
    return flask.Response('%d\n' % os.getpid(), mimetype='text/plain')


@app.route('/cds')
def cds():
    _hold()
    mod = sys.modules.get('_cds')
    stats = mod.stats() if mod is not None else None
    return flask.Response(json.dumps({'pid': os.getpid(), 'stats': stats},
                                     default=str),
                          mimetype='application/json')
