# SPDX-License-Identifier: MIT
"""Every kind of object a code object holds survives the archive: a
module of constants (ints of every size and sign, floats, complex, str of
each kind, bytes, tuples, frozensets, singletons, nested code) is served
from the archive and main.py prints their values, types, hashes and
identities; stdout must equal the stock run's, under a hash seed other
than the dump's and with relocation."""
import cdstest

CONSTS = r'''
"""Constants of every kind the archive stores."""
INTS = (0, 1, -1, -5, 5, 256, 257, -6, -15, 1000, -1000, 2**29, -2**29,
        2**30, -2**30, 2**40, -2**40, 2**60, -2**60, 2**62, -2**62,
        2**63 - 1, -2**63, 0x7fffffffffffffffffff, -0x7fffffffffffffffffff,
        12345678901234567890123456789, -12345678901234567890123456789)
FLOATS = (0.0, -0.0, 1.5, -2.25, 1e300, -1e-300, 5e-324, float('inf'),
          1.0 / 3, 3.141592653589793)
SPECIAL = (1e400, -1e400)
COMPLEX = (1j, -2 - 3j, 1.5 + 0j, -0j, 1e300j)
STRS = ('', 'a', 'Z', '\x00', '\xe9', '\xff', '\u20ac', '\U0001f600',
        'ascii text', 'caf\xe9 cr\xe8me', 'euro \u20ac sign',
        'emoji \U0001f600 here', 'nul\x00inside', 'x' * 5000,
        'identifier_like', 'with space', 'multi\nline')
BYTES = (b'', b'a', b'\x00', b'\xff', b'bytes value', b'\x00\x01\x02' * 300)
TUPLES = ((), (1,), (1, (2, (3, ()))), ('a', b'b', 1.0, 2j, None, True),
          ((-15, -1000), (-2**40,)))
SINGLETONS = (None, True, False, Ellipsis, ...)
SHARED_A = 'a shared constant string'
SHARED_B = 'a shared constant string'


def in_frozen(x):
    return x in {1, -1, -15, 2**40, 'a', 'b\xe9', b'c', 1.5, (1, 2), None}


def in_str_set(x):
    return x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta',
                 'eta', 'theta'}


def defaults(a=-15, b=(1, -2), *, c='kw\xe9', d=-2**40):
    return a, b, c, d


def closure(n=-7):
    def inner(m):
        return n * m + -1000
    return inner


def gen():
    yield from (-1, -15, -2**40)


async def coro():
    return -99


def comp():
    return [i * -3 for i in range(4)], {k: -len(k) for k in 'ab'}, \
        {i for i in (-1, -1000)}


LAMBDA = lambda x=-123456: x * -2  # noqa: E731
CONST_GLOBAL = 7


class A:
    def __init__(self):
        self.x = 15


class B:
    __slots__ = ('x',)

    def __init__(self):
        self.x = 2.5


def hot(n=3000):
    # long enough for the 3.11 specializing interpreter to quicken and
    # deoptimize: its inline caches live in the archived code object
    total = 0
    objs = [A(), B(), A()]
    vals = [1, 2.5, 'x', 15, 2**40]
    for i in range(n):
        o = objs[i % 3]
        total += o.x
        v = vals[i % 5]
        if isinstance(v, str):
            total += len(v * 2)
        else:
            total += v * 2
        total += len(INTS) + CONST_GLOBAL
    return total
FSTRING = (lambda v: f'{v!r:>10}|{v:x}|{-v}')(-255)
'''

MAIN = r'''
import sys

import consts


def norm(v):
    """A repr that does not depend on the hash seed."""
    if isinstance(v, frozenset):
        return 'frozenset(%s)' % sorted(map(norm, v))
    if isinstance(v, tuple):
        return '(%s)' % ', '.join(norm(x) for x in v)
    return repr(v)


def copy(v):
    """An equal object made at run time, not from a constant."""
    if isinstance(v, str):
        return ''.join(list(v))
    if isinstance(v, bytes):
        return bytes(bytearray(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return int(str(v))
    if isinstance(v, float):
        return float(repr(v))
    if isinstance(v, complex):
        return complex(v.real, v.imag)
    if isinstance(v, tuple):
        return tuple(copy(x) for x in v)
    return v


same = []
for name in ('INTS', 'FLOATS', 'SPECIAL', 'COMPLEX', 'STRS', 'BYTES',
             'TUPLES', 'SINGLETONS'):
    group = getattr(consts, name)
    for i, v in enumerate(group):
        c = copy(v)
        print(name, i, type(v).__name__, norm(v)[:80], v == c or v != v,
              hash(v) == hash(c), len(v) if hasattr(v, '__len__') else '-')
        same.append((name, i, v is c))
    print(name, 'hash(tuple)', hash(group) == hash(copy(group)))
    d = {v: i for i, v in enumerate(group)}
    print(name, 'dict lookups', [d.get(copy(v)) for v in group])

print('ints', [v + 1 for v in consts.INTS], [v < 0 for v in consts.INTS],
      [v.bit_length() for v in consts.INTS], sum(consts.INTS))
print('floats', [str(v) for v in consts.FLOATS],
      [str(v) for v in consts.SPECIAL])
print('strs', [s.upper()[:20] for s in consts.STRS],
      [s.encode('utf-8')[:20] for s in consts.STRS],
      [s.isidentifier() for s in consts.STRS])
print('bytes', [b.hex()[:20] for b in consts.BYTES])
print('frozen', [consts.in_frozen(copy(v)) for v in
                 (1, -1, -15, 2**40, 'a', 'b\xe9', b'c', 1.5, (1, 2), None,
                  2, 'q', -16)])
print('frozen const', norm(consts.in_frozen.__code__.co_consts))
print('str set', [consts.in_str_set(''.join(list(w))) for w in
                  ('alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta',
                   'eta', 'theta', 'iota')])
print('defaults', consts.defaults(), consts.defaults.__defaults__,
      consts.defaults.__kwdefaults__)
print('closure', consts.closure()(3), consts.closure(2)(5))
print('gen', list(consts.gen()))
try:
    consts.coro().send(None)
except StopIteration as e:
    print('coro', e.value)
print('comp', consts.comp()[0], sorted(consts.comp()[1].items()),
      sorted(consts.comp()[2]))
print('lambda', consts.LAMBDA(), consts.FSTRING)
print('hot', consts.hot(), consts.hot(10))
consts.CONST_GLOBAL = 1000
consts.A.extra = 'class changed'  # new type version: caches deopt
print('hot after changes', consts.hot(), consts.hot(1000))
print('doc', consts.__doc__)

# Object identity: what is shared with the interpreter (singletons, small
# ints, cached and interned strings) and within the module, as stock.
print('--- identity ---')
print('same object as a run-time copy', [x for x in same if x[2]])
print('identity', consts.SINGLETONS[0] is None, consts.SINGLETONS[1] is True,
      consts.SINGLETONS[3] is Ellipsis, consts.TUPLES[0] is tuple(),
      consts.STRS[0] is str(), consts.BYTES[0] is bytes(),
      consts.STRS[1] is chr(97), consts.INTS[4] is int('5'),
      consts.INTS[5] is int('256'), consts.INTS[3] is int('-5'),
      consts.SHARED_A is consts.SHARED_B,
      sys.intern(''.join(['identifier', '_like'])) is consts.STRS[14])
# identifiers are interned, as the compiler does: the constant is the
# interpreter's interned copy
print('interned', [(s, sys.intern(''.join(list(s))) is s)
                   for s in consts.STRS if s.isidentifier()])
'''


def main():
    t = cdstest.Case('constants')
    t.write('consts.py', CONSTS)
    main_py = t.write('main.py', cdstest.STATS_HOOK + MAIN)
    stock = t.stock([main_py])
    t.check(stock.rc == 0 and stock.err == '' and 'doc Constants' in stock.out
            and '--- identity ---' in stock.out,
            'stock run succeeds', stock)
    t.trace([main_py])
    t.check('consts' in t.read_list(), 'trace lists consts')
    t.dump(args=[main_py], env={'PYTHONHASHSEED': '3'})
    for what, kw in (('share', {}),
                     ('share (other hash seed)', {'env': {'PYTHONHASHSEED':
                                                          '4'}}),
                     ('share (relocated)', {'relocate': True})):
        share = t.share([main_py], **kw)
        t.check('consts' in share.served, what + ': consts served', share)
        values, _, ident = share.out.partition('--- identity ---\n')
        want_values, _, want_ident = stock.out.partition(
            '--- identity ---\n')
        t.check_equal(values, want_values, what + ': values as stock', share)
        t.check_equal(ident, want_ident, what + ': identities as stock',
                      share)
        t.check_equal(share.rc, stock.rc, what + ': exit status as stock')
        t.check_equal(share.program_err, stock.program_err,
                      what + ': stderr as stock')
    t.finish()


if __name__ == '__main__':
    main()
