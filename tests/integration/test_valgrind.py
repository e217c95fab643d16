# SPDX-License-Identifier: MIT
"""Memory safety of a real interpreter run under valgrind's memcheck
(PYTHONMALLOC=malloc): SHARE at the preferred base, relocated, and with a
corrupt segment (the error path) report no invalid reads, writes or
frees, no use of an uninitialised value in a pycds function or where the
stock run has none, no more definite leaks than the stock run, and the
output is as stock.  Skipped without valgrind.

Some interpreter builds have memcheck noise of their own: pyenv's 3.11.7
reads an uninitialised digit in int.from_bytes of zero bytes, which every
.pyc check does.  Valgrind reports such an error once per distinct stack,
so a run that reads the same .pyc through pycds's get_code (the corrupt
segment, imported normally) reports more of them than stock, all at the
places stock has them: hence the comparison of places, not counts."""
import re
import shutil

import cdstest

APP = '''\
import json, decimal, argparse, email.message, csv, io, textwrap
import victim
print(json.dumps({'a': [1, 2.5, None]}), decimal.Decimal('1.1') + 1)
p = argparse.ArgumentParser(prog='x')
p.add_argument('--n', type=int)
print(p.parse_args(['--n', '4']).n, victim.f(),
      textwrap.shorten('a b c d e', 5))
m = email.message.Message()
m['To'] = 'a@b'
print(m.as_string().strip())
'''

VICTIM = '''\
MARK = 'valgrind victim: marker'


def f():
    return sorted({'b': 2, 'a': 1}.items()), (1.5, 2j, b'x', 'y' * 3)
'''

VALGRIND = ['valgrind', '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--track-origins=no']
# a frame in pycds code
PYCDS_FRAMES = re.compile(r'_cdsmodule\.c|/cds/|\b(heap|archive|writer|'
                          r'marshal_walk|modlist)\.c:|_cds\.cpython')
SERIOUS = re.compile(r'^==\d+== (Invalid (read|write|free)|Mismatched free'
                     r'|Source and destination overlap|Syscall param .*'
                     r'unaddressable|Process terminating|Jump to the '
                     r'invalid address)', re.M)
UNINIT = re.compile(r'^==\d+== (Conditional jump or move depends on|Use of) '
                    r'uninitialised', re.M)


def uninit_sites(err):
    """Where each uninitialised-value error was used: its top frame
    (function, file and line), one per error."""
    sites = []
    for block in re.split(r'\n==\d+== \n', err):
        if UNINIT.search(block):
            top = re.search(r'^==\d+==\s+at 0x[0-9A-F]+: (.*)$', block, re.M)
            sites.append(top.group(1) if top else block)
    return sites


def summary(res, stock_sites=None):
    """(serious errors, uninitialised-value errors, bytes definitely
    lost), or None when valgrind printed no summary.  With stock_sites,
    only the uninitialised-value errors used in a pycds function or at a
    place where the stock run has none are counted."""
    if not re.search(r'ERROR SUMMARY: \d+ errors', res.err):
        return None
    d = re.search(r'definitely lost: ([\d,]+) bytes', res.err)
    sites = uninit_sites(res.err)
    if stock_sites is not None:
        sites = [x for x in sites
                 if PYCDS_FRAMES.search(x) or x not in stock_sites]
    return (len(SERIOUS.findall(res.err)), len(sites),
            int(d.group(1).replace(',', '')) if d else 0)


def main():
    t = cdstest.Case('valgrind')
    if shutil.which('valgrind') is None:
        t.skip('no valgrind')
    t.write('victim.py', VICTIM)
    app = t.write('app.py', APP)
    t.build([app])
    with open(t.path('heap.img'), 'rb') as f:
        data = bytearray(f.read())
    off = data.find(b'valgrind victim: marker')
    t.check(off > 0, 'the archive holds the victim marker')
    data[off + 2] ^= 0x20
    with open(t.path('bad.img'), 'wb') as f:
        f.write(data)

    python = t.python
    env = {'PYTHONMALLOC': 'malloc'}
    t.python = VALGRIND[0]
    try:
        args = VALGRIND[1:] + [python, app]
        stock = t.stock(args, env=env)
        base = summary(stock)
        if not t.check(stock.rc == 0 and base is not None,
                       'stock run under valgrind: %s (serious, '
                       'uninitialised, bytes lost)' % (base,), stock):
            t.finish()
        for what, kw in (('share', {}),
                         ('share (relocated)', {'relocate': True}),
                         ('share (corrupt segment)', {'archive': 'bad.img'})):
            res = t.share(args, verbose=False, env=env, **kw)
            got = summary(res, set(uninit_sites(stock.err)))
            t.check_equal(res.out, stock.out, what + ': stdout as stock', res)
            t.check(res.rc == 0 and got is not None and got[0] == 0
                    and got[1] == 0 and got[2] <= base[2],
                    '%s: no invalid accesses, no uninitialised value used '
                    'in pycds or where stock has none, no more lost than '
                    'stock: %s'
                    % (what, got), res)
            warned = len(res.warnings)
            t.check(warned == (1 if 'archive' in kw else 0),
                    '%s: %d warning(s)' % (what, warned), res.warnings)
    finally:
        t.python = python
    t.finish()


if __name__ == '__main__':
    main()
