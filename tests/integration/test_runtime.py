# SPDX-License-Identifier: MIT
"""Archived code at run time, on every version (issue 7, item 2).

What each version's interpreter does with a code object after it is
created must work on archived ones as on unmarshalled ones, and show the
same to the program:

1. Introspection: co_code, co_lines, co_positions, co_varnames and
   friends, dis (as created, and adaptive after warm-up, where the
   version specialises: 3.11 quickens after 8 calls, 3.12 and 3.13 at
   creation), code.replace, and the functions made from the code.
2. Specialisation: a hot call site of archived code specialises to
   CALL_PY_EXACT_ARGS as stock's does (3.13 gives archived code objects a
   version from the interpreter's counter at load; with version 0 it
   never would).
3. Tracing and monitoring: sys.settrace line events, sys.setprofile
   calls, and on 3.12+ sys.monitoring's PY_START, LINE and CALL events
   (instrumentation rewrites the archived bytecode in place) are stock's;
   turning monitoring off again leaves code that runs as before.
4. Exceptions: tracebacks through archived code, with their positions.
5. Quickening settings: 3.15's PYTHON_SPECIALIZATION_OFF changes the
   counters code is created with, so an archive dumped without it is
   refused, with one warning, by a process with it (before 3.15 the
   variable is inert and the archive serves).
"""
import cdstest

MOD = r'''
import sys


def add(a, b):
    return a + b


def hot(n):
    s = 0
    for i in range(n):
        s = add(s, i)
    return s


class Box:
    def __init__(self, v):
        self.v = v

    def get(self):
        return self.v


def boxes(n):
    return sum(Box(i).get() for i in range(n))


def fails(x):
    return {'k': 1}[x]


def gen(n):
    for i in range(n):
        yield i * i
'''

MAIN = r'''
import dis, io, sys
import mod


def ops(f, adaptive=False):
    out = io.StringIO()
    dis.dis(f, adaptive=adaptive, file=out)
    return [line.split()[1] if line.split()[0].isdigit()
            else line.split()[0]
            for line in out.getvalue().splitlines()
            if line.strip() and line.split()[0].isdigit()
            or line.strip().startswith(tuple('ABCDEFGHIJKLMNOPQRSTUVWXYZ'))]


# 1. introspection, before anything ran
c = mod.hot.__code__
print('code', c.co_name, c.co_qualname, c.co_varnames, c.co_consts,
      c.co_names, c.co_argcount, c.co_stacksize, c.co_flags,
      c.co_firstlineno)
print('co_code', c.co_code.hex())
print('lines', list(c.co_lines()))
print('positions', list(c.co_positions())[:12])
print('dis', ops(mod.hot))
print('replace', c.replace(co_name='other').co_name, c.co_name)

# 2. specialisation after warm-up
for _ in range(30):
    mod.hot(20)
    mod.boxes(5)
adaptive = ops(mod.hot, adaptive=True)
print('specialised call', [o for o in adaptive if o.startswith('CALL')])
print('result', mod.hot(1000), mod.boxes(100), list(mod.gen(5)))

# 3. tracing and profiling
events = []


def tracer(frame, event, arg):
    if frame.f_code.co_filename == mod.__file__:
        events.append((event, frame.f_code.co_name, frame.f_lineno))
    return tracer


sys.settrace(tracer)
mod.hot(3)
list(mod.gen(2))
sys.settrace(None)
print('settrace', events)
calls = []
sys.setprofile(lambda f, e, a: calls.append((e, f.f_code.co_name))
               if f.f_code.co_filename == mod.__file__ else None)
mod.boxes(2)
sys.setprofile(None)
print('setprofile', calls)
if hasattr(sys, 'monitoring'):
    M = sys.monitoring
    seen = []
    M.use_tool_id(3, 'pycds-test')
    M.register_callback(3, M.events.PY_START,
                        lambda code, off: seen.append(('start', code.co_name)))
    M.register_callback(3, M.events.LINE,
                        lambda code, line: seen.append(('line', line)))
    M.set_events(3, M.events.PY_START | M.events.LINE)
    mod.hot(2)
    mod.boxes(1)
    M.set_events(3, 0)
    M.free_tool_id(3)
    print('monitoring', seen)
    print('after monitoring', mod.hot(50), ops(mod.hot))

# 4. exceptions
try:
    mod.fails('nope')
except KeyError:
    import traceback
    tb = traceback.format_exc()
    print('traceback', tb.replace(mod.__file__, 'MOD'))
print('done')
'''


def main():
    t = cdstest.Case('runtime')
    t.write('mod.py', MOD)
    main_py = t.write('main.py', MAIN)
    stock = t.stock([main_py])
    t.check(stock.rc == 0 and stock.out.endswith('done\n'),
            'stock run succeeds', stock)
    t.check('CALL_PY_EXACT_ARGS' in stock.out,
            'the test can fail: stock specialises the hot call', stock)
    t.build([main_py])
    for relocate in (False, True):
        what = 'share' + (' (relocated)' if relocate else '')
        share = t.share([main_py], relocate=relocate)
        t.check_same(stock, share, what)
        t.check(not share.warnings, '%s: no warnings' % what, share)
        t.check('mod' in share.served, '%s: mod served' % what, share)

    # 3.15 takes quickening's initial counters from run-time settings:
    # an archive holds its dumper's, so a process with other settings
    # refuses it (format.md 2.1 quicken_hash) and runs as stock; before
    # 3.15 the variable means nothing and the archive serves
    env = {'PYTHON_SPECIALIZATION_OFF': '1'}
    stock_off = t.stock([main_py], env=env)
    share_off = t.share([main_py], env=env, verbose=False)
    t.check_same(stock_off, share_off, 'share (PYTHON_SPECIALIZATION_OFF)')
    if t.stock(['-c', 'import sys; print(sys.version_info >= (3, 15))']
               ).out.strip() == 'True':
        t.check('CALL_PY_EXACT_ARGS' not in stock_off.out,
                'the test can fail: 3.15 does not specialise with '
                'PYTHON_SPECIALIZATION_OFF', stock_off)
        t.check_one_warning(share_off, 'share (PYTHON_SPECIALIZATION_OFF)')
        t.check(any('quicken_hash' in w for w in share_off.warnings),
                'share (PYTHON_SPECIALIZATION_OFF): the warning names the '
                'quickening', share_off)
    else:
        t.check(not share_off.warnings,
                'share (PYTHON_SPECIALIZATION_OFF): no warning before 3.15',
                share_off)
    t.finish()


if __name__ == '__main__':
    main()
