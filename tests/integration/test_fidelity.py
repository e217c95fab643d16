# SPDX-License-Identifier: MIT
"""What 50 real programs found (issue 6): behaviour that must be stock's.

1. Frozenset constants iterate in the order stock builds them from the
   .pyc (marshal's order of insertion), whether or not a .pyc existed when
   the archive was dumped, relocated or not.
2. Modules inside a namespace package nested in a regular package are
   dumped (without importing anything) and served.
4. A package that puts an override directory first on its __path__ gets
   the override's submodule, as stock.
5. Profilers and tracers see no Python frame of pycds on the served
   path; python -v says where each served module's code came from.
"""
import os
import shutil

import cdstest

# Items chosen to collide in a set's table (same low bits), to make the
# table grow while it is built, and to mix kinds whose marshal bytes sort
# differently from their values.
SETS = r'''
def loop():
    out = []
    for x in {5, 13, 21}:
        out.append(x)
    return out


def members(x):
    return (x in {8, 16, 24, 32, 1, 9, 17, 25},
            x in {1000, 5, 2**40, 13, -3, 2**70, 0},
            x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta',
                  'eta', 'theta', 'iota', 'kappa'},
            x in {(1, 2), (2, 1), 3.5, -0.5, b'x', b'y', 1j, None},
            x in {0, 64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 704,
                  768, 832, 896, 960, 1024, 1088, 1152, 1216, 1280})


def constants():
    return [c for c in members.__code__.co_consts
            if isinstance(c, frozenset)]
'''

MAIN_SETS = r'''
import sets
print('loop', sets.loop())
for s in sets.constants():
    print('iter', list(s))
print('members', sets.members(13), sets.members('beta'))
'''


def check_sets(t):
    t.write('sets.py', SETS)
    main = t.write('main_sets.py', MAIN_SETS)
    # a fixed seed: str items then iterate in an order that depends only
    # on the order they were inserted, as ints always do
    seed = {'PYTHONHASHSEED': '7'}
    writing = dict(seed, PYTHONDONTWRITEBYTECODE=None)
    cache = t.path('__pycache__')

    # the reference: stock with a warm .pyc
    shutil.rmtree(cache, ignore_errors=True)
    t.stock([main], env=writing)
    warm = t.stock([main], env=seed)
    shutil.rmtree(cache, ignore_errors=True)
    cold = t.stock([main], env=dict(seed, PYTHONDONTWRITEBYTECODE='1'))
    t.check(warm.rc == 0 and warm.out.count('iter') >= 4, 'stock runs', warm)
    t.check(cold.out != warm.out,
            'the test can fail: sets built from source iterate in another '
            'order than from the .pyc', cold.out, warm.out)

    # dumped with the .pyc there (it is read), and with none (the dump
    # writes what stock would)
    t.stock([main], env=writing)
    t.trace([main], lst='sets.lst', env=seed)
    for label, keep_pyc in (('with a .pyc', True), ('without a .pyc', False)):
        if not keep_pyc:
            shutil.rmtree(cache, ignore_errors=True)
        img = 'sets-%s.img' % ('pyc' if keep_pyc else 'nopyc')
        d = t.dump(lst='sets.lst', archive=img, args=[main],
                   env=dict(seed, PYTHONDONTWRITEBYTECODE='1'))
        t.check(d.rc == 0, 'dump %s' % label, d)
        for relocate in (False, True):
            res = t.share([main], archive=img, relocate=relocate, env=seed)
            what = 'frozenset order, dumped %s%s' % (
                label, ', relocated' if relocate else '')
            t.check('sets' in res.served, what + ': served', res)
            t.check_equal(res.out, warm.out, what)
        # another seed: ints and the str set follow the seed as stock does
        other = {'PYTHONHASHSEED': '12345'}
        if not keep_pyc:
            t.stock([main], env=dict(other, PYTHONDONTWRITEBYTECODE=None))
        want = t.stock([main], env=other)
        res = t.share([main], archive=img, env=other)
        t.check_equal(res.out, want.out,
                      'frozenset order under another seed, dumped ' + label)
        shutil.rmtree(cache, ignore_errors=True)
        t.stock([main], env=writing)


def main():
    t = cdstest.Case('fidelity')
    check_sets(t)
    t.finish()


if __name__ == '__main__':
    main()
