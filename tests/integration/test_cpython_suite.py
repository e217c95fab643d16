# SPDX-License-Identifier: MIT
"""CPython's own regression tests of import-heavy, introspection-heavy
modules, run with the test modules and the standard library they use
served from an archive: regrtest must pass as it does stock.  Needs the
interpreter's test package (Debian: libpython3.11-testsuite); skipped
without it.

The suite runs without a pycache prefix (test_importlib's
cache_from_source tests and test_inspect's --details expect none): under
CDSTEST_PYCACHE with PYTHONPYCACHEPREFIX removed and bytecode writing
off, so that nothing is written next to CDSTEST_PYTHONPATH's packages."""
import os
import sys

import cdstest

TESTS = ['test_json', 'test_pickle', 'test_inspect', 'test_dataclasses',
         'test_typing', 'test_enum', 'test_functools', 'test_collections',
         'test_traceback', 'test_linecache', 'test_pkgutil',
         'test_importlib', 'test_warnings', 'test_argparse']
# tests that compare a child interpreter's stderr with an expected value
STDERR_TESTS = {'test_json', 'test_traceback', 'test_warnings'}


def main():
    case = cdstest.Case('cpython_suite')
    env = {}
    if os.environ.get('CDSTEST_PYCACHE'):
        env = {'PYTHONPYCACHEPREFIX': None, 'PYTHONDONTWRITEBYTECODE': '1'}
    probe = case.stock(['-c', 'import test.test_json, test.libregrtest'],
                       env=env)
    if probe.rc != 0:
        return case.skip('no CPython test package for this interpreter')
    args = ['-m', 'test', '--fail-env-changed'] + TESTS
    stock = case.stock(args, timeout=600, env=env)
    case.check(stock.rc == 0 and 'Tests result: SUCCESS' in stock.out,
               'stock regrtest passes', stock)
    trace = case.trace(args, timeout=600, env=env)
    case.check(trace.rc == 0, 'traced regrtest passes', trace)
    names = case.read_list()
    case.check(all('test.' + t in names for t in TESTS),
               'the test modules are traced', names)
    dump = case.dump(env=env)
    case.check(dump.rc == 0, 'dump succeeds', dump)
    # quiet: several of these tests check that child interpreters (which
    # inherit PYCDS*) write nothing to stderr
    share = case.share(args, verbose=False, timeout=600, env=env)
    case.check(share.rc == 0 and 'Tests result: SUCCESS' in share.out,
               'regrtest passes with the archive', share)
    case.check(not share.warnings, 'no pycds warnings', share)
    # which modules were served: the same run with verbose lines, on the
    # tests that do not look at their children's stderr
    quiet = [t for t in TESTS if t not in STDERR_TESTS]
    share = case.share(['-m', 'test'] + quiet, timeout=600, env=env)
    case.check(share.rc == 0, 'verbose regrtest passes', share)
    served = share.served
    case.check(all('test.' + t in served for t in quiet),
               'every test module was served from the archive',
               sorted(set('test.' + t for t in quiet) - served))
    case.check(len(served) > 100, 'more than 100 modules served',
               len(served))
    case.check(not share.not_served, 'no archived module was refused',
               share.not_served)
    return case.finish()


if __name__ == '__main__':
    sys.exit(main())
