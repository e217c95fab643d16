# SPDX-License-Identifier: MIT
"""The module test_heap archives: constants of every kind the heap layer
holds, nested code of every kind, and code paths that quicken."""

ASCII = 'plain ascii text, not an identifier'
IDENT = 'looks_like_an_identifier'
LATIN1 = 'café crème brûlée'
UCS2 = 'Ωmega ∑ 中文 ‰'
UCS4 = 'grin 😀 clef 𝄞'
ONE_CHAR = ('é', 'Ω', '😀', 'a', '\x00', '\xff', '')
LONG = 'x' * 3000
BYTES = (b'bytes\x00\xff', b'', b'A', b'\x80', b'\x00' * 100)
SMALL_INTS = (-5, -1, 0, 1, 100, 255, 256)
# literals: the compiler leaves 2**100 unfolded (result too large).
# 257..1024 are small ints from 3.15 on, 1025 never is.
BIG_INTS = (257, 1024, 1025, 2**30 - 1, 2**30, 2**60, 2**62, 2**63, 2**64,
            1267650600228229401496703205376,  # 2**100
            12345678901234567890123,
            -6, -1000, -2**30, -2**64,
            -1267650600228229401496703205376)  # -2**100
FLOATS = (1.5, -0.0, 0.0, 1e308, 5e-324, 1e999, -1e999, 3.141592653589793)
COMPLEXES = (2j, 1 + 2j, -0j, 1e999j, 1.5 - 2.5j)
NESTED = ((1, (2, (3, ('x', (b'y', (None, ..., 2**64)))))),
          ('a', 'b'), ((),))
SINGLETONS = (None, True, False, ...)


def member_str(x):
    return x in {'alpha', 'beta', 'gamma', 'delta'}


def member_int(x):
    return x not in {1, 2, 3, 1267650600228229401496703205376, 7}


def member_mixed(x):
    return x in {1.5, 'é', b'z', (1, 2), 3j, 'long string member',
                 1180591620717411303424}


def for_frozen():
    return [x for x in {3, 1, 2, 300}]


def kinds(a, b=2, /, c=3, *args, d, e=5, **kw):
    try:
        q = a / b
    except ZeroDivisionError as exc:
        q = type(exc).__name__
    finally:
        c += 1
    return (q, c, args, d, e, sorted(kw.items()))


square = lambda n: n * n  # noqa: E731


def comprehensions(n):
    return ([i * i for i in range(n)], {i: str(i) for i in range(n)},
            sorted({i % 3 for i in range(n)}), list(i + 1 for i in range(n)))


def closure(a):
    def inner(b):
        nonlocal a
        a += b
        return a
    return inner


def generator(n):
    yield from range(n)
    yield 'done'


async def coroutine(x):
    return ('coroutine', x, UCS2)


class Klass:
    """A class body is a code object too."""
    attr = 'class attribute'

    def method(self, x=UCS4):
        return (self.attr, x, __class__.__name__)

    @property
    def prop(self):
        return 'é' * 3 + 'Ω'


def formatted(x):
    return f'{x!r:>10}|{x}|{IDENT}|{LATIN1}'


def uses_globals():
    # the subscripts are constant slices from 3.14 on
    return (len(ASCII), max(SMALL_INTS), ASCII.upper(), IDENT in globals(),
            sum(BIG_INTS), LONG.count('x'), ASCII[1:5], LONG[::3][:4],
            ASCII[-3:None:-1])


def results():
    out = []
    # enough calls for 3.11 to quicken and specialise the archived code
    for i in range(64):
        out.append((member_str('beta'), member_str('zeta'),
                    member_int(2**100), member_int(4), member_mixed((1, 2)),
                    member_mixed('é'), member_mixed(2**70), square(i),
                    formatted(i), Klass().method(), Klass().prop))
    c = coroutine(7)
    try:
        c.send(None)
    except StopIteration as stop:
        co_result = stop.value
    return (out, sorted(for_frozen()), kinds(1, 0, d=4, z=1),
            kinds(6, 3, 7, 8, d=9), comprehensions(5), closure(1)(2),
            list(generator(3)), co_result, uses_globals())


RESULTS = results()
