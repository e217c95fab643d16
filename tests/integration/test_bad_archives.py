# SPDX-License-Identifier: MIT
"""Bad archives never change behaviour: for each damaged archive (missing,
empty, random bytes, a directory, truncated at many lengths, garbage
appended, a flipped byte in each header field, in the index, in a module
segment, an unfinished magic, another interpreter's fingerprint, ...) the
SHARE run's stdout and exit status equal the stock run's and stderr is
the stock stderr plus exactly one "pycds: warning:" line, which names the
problem.  Segment corruption is found lazily: the warning comes when that
module is imported, the module is imported normally, and a program that
never imports it gets no warning at all."""
import os
import random

import cdstest

APP = '''\
import os
import sys

import json
import decimal
import bystander
print(json.dumps({'a': [1, 2.5]}), decimal.Decimal('1.5') * 2, bystander.VALUE)
if os.environ.get('IMPORT_VICTIM', '1') == '1':
    sys.stderr.write('before victim\\n')
    sys.stderr.flush()
    import victim
    print(victim.VALUE, victim.f(20))
    sys.stderr.write('after victim\\n')
print('done')
'''

# The markers are not identifiers, so they stay in the module's own
# segment (not in a pool of interned strings): the test finds the segment
# by them, whatever the module table looks like.
VICTIM = '''\
VALUE = 'victim ' + 'value' * 3
MARK = 'victim segment: first marker'
BYTES = b'victim segment: second marker'


def f(n):
    victim_only_identifier_q7 = n
    return sum(i * i for i in range(victim_only_identifier_q7)) + len(VALUE)
'''


class Bad:
    def __init__(self, t, app, stock, stock_novictim):
        self.t = t
        self.app = app
        self.stock = stock
        self.stock_novictim = stock_novictim
        with open(t.path('heap.img'), 'rb') as f:
            self.good = f.read()
        self.n = 0

    def case(self, what, data=None, make=None, expect=(), victim=True,
             env=None, python=None):
        """Write the damaged archive (bytes, or make(path) builds it), run
        SHARE quietly and check it behaves as stock with one warning that
        contains one of the strings in expect."""
        t = self.t
        self.n += 1
        path = t.path('bad-%d.img' % self.n)
        if data is not None:
            with open(path, 'wb') as f:
                f.write(bytes(data))
        elif make is not None:
            make(path)
        e = dict(env or {})
        if not victim:
            e['IMPORT_VICTIM'] = '0'
        stock = self.stock if victim else self.stock_novictim
        res = t.share([self.app], archive=os.path.basename(path),
                      verbose=False, env=e)
        print('%s -> %s' % (what, res.warnings))
        ok = t.check_same(stock, res, what)
        ok &= t.check_one_warning(res, what)
        if expect and res.warnings:
            ok &= t.check(any(x in res.warnings[0] for x in expect),
                          '%s: the warning says %s' % (what,
                                                       ' or '.join(expect)),
                          res.warnings[0])
        return res


def flip(data, off):
    d = bytearray(data)
    d[off] ^= 0x5a
    return d


def main():
    t = cdstest.Case('bad_archives')
    t.write('bystander.py', "VALUE = 'bystander'\n"
            "MARK = 'bystander segment: marker'\n")
    t.write('victim.py', VICTIM)
    app = t.write('main.py', cdstest.STATS_HOOK + APP)
    stock = t.stock([app])
    t.check(stock.rc == 0 and 'before victim' in stock.err
            and stock.out.endswith('done\n'), 'stock run succeeds', stock)
    stock_nv = t.stock([app], env={'IMPORT_VICTIM': '0'})
    t.build([app])
    good = t.share([app], verbose=True)
    t.check({'json', 'decimal', 'bystander', 'victim'} <= good.served
            and not good.warnings,
            'the good archive serves json, decimal, bystander, victim', good)
    t.check_same(stock, good, 'good archive')

    b = Bad(t, app, stock, stock_nv)
    data = b.good
    size = len(data)
    h = cdstest.header(data)
    marks = {m: data.find(m.encode()) for m in (
        'victim segment: first marker', 'victim segment: second marker',
        'bystander segment: marker')}
    t.check(h['file_size'] == size and h['segments_offset'] >= 1024
            and h['index_offset'] >= h['segments_offset'] + h['segments_size']
            and h['index_offset'] + h['index_size'] <= size,
            'the test reads the archive header', h)
    t.check(all(h['segments_offset'] < o < h['index_offset']
                for o in marks.values()),
            'the test finds the victim and bystander segments', marks)
    victim1 = marks['victim segment: first marker']
    victim2 = marks['victim segment: second marker']
    bystander = marks['bystander segment: marker']

    # --- not an archive ---------------------------------------------
    b.case('missing file', make=lambda p: None,
           expect=['cannot open', 'i/o error'])
    b.case('empty file', data=b'', expect=['too small', 'not a pycds'])
    rnd = random.Random(1234)
    b.case('random bytes', data=bytes(rnd.randrange(256)
                                      for _ in range(8192)),
           expect=['not a pycds archive'])
    b.case('random bytes after the magic',
           data=data[:8] + bytes(rnd.randrange(256)
                                 for _ in range(size - 8)))
    b.case('a directory', make=os.mkdir, expect=['not a regular file'])
    b.case('a text file', data=b'json\ndecimal\n' * 100,
           expect=['not a pycds archive'])

    # --- truncated, or grown ----------------------------------------
    cuts = sorted({1, 7, 8, 9, 100, 1023, 1024, 1025, 4096,
                   h['segments_offset'] + 1, victim1,
                   h['index_offset'], h['index_offset'] + 1,
                   h['index_offset'] + h['index_size'] // 2, size - 1})
    for n in cuts:
        if 0 < n < size:
            b.case('truncated to %d of %d bytes' % (n, size), data=data[:n],
                   expect=['truncated', 'too small', 'header says',
                           'not a pycds'])
    b.case('garbage appended', data=data + b'\0' * 100,
           expect=['header says'])

    # --- one byte of the header -------------------------------------
    fields = {0: 'magic', 5: 'magic', 8: 'format version', 12: 'header size',
              16: 'file size', 24: 'header checksum', 32: 'base address',
              40: 'creation time', 48: 'segments offset',
              56: 'segments size', 64: 'index offset', 72: 'index size',
              80: 'index checksum', 88: 'module count', 92: 'slot count',
              96: 'slots offset', 104: 'entries offset',
              112: 'strings offset', 120: 'strings size', 128: 'flags',
              136: 'fingerprint: version', 140: 'fingerprint: pyc magic',
              152: 'fingerprint: layout hash', 168: 'fingerprint: cache tag',
              184: 'fingerprint: soabi', 232: 'fingerprint: build info',
              328: 'fingerprint: compiler', 415: 'fingerprint: compiler',
              416: 'fingerprint: quicken hash',
              424: 'after the fingerprint', 600: 'reserved',
              1023: 'reserved (last byte)'}
    for off, name in sorted(fields.items()):
        b.case('header byte %d (%s) flipped' % (off, name),
               data=flip(data, off))
    b.case('unfinished magic', data=b'\x93PYCDS\r!' + data[8:],
           expect=['unfinished', 'incomplete'])

    # --- the index ------------------------------------------------------
    for what, off in (('hash slots', h['index_offset'] + 4),
                      ('module entries', h['entries_offset'] + 60),
                      ('string pool', h['strings_offset'] + 3),
                      ('last byte', h['index_offset'] + h['index_size'] - 1)):
        b.case('index byte flipped (%s)' % what, data=flip(data, off),
               expect=['index checksum', 'checksum'])

    # --- re-sealed headers: the checks after the checksum ---------------
    hasher = cdstest.xxh3_64()
    if hasher is None:
        print('note: no XXH3 (python3-xxhash or libxxhash): re-sealed '
              'cases skipped')
    else:
        t.check(cdstest.reseal(data, hasher) == bytearray(data),
                're-sealing the good archive reproduces its checksum')

        def sealed(off, value, width=None, name=''):
            d = bytearray(data)
            if isinstance(value, int):
                d[off:off + width] = value.to_bytes(width, 'little')
            else:
                d[off:off + len(value)] = value
            return cdstest.reseal(d, hasher)

        ver = cdstest.u32(data, 136)
        b.case('re-sealed: another Python version (EVERSION)',
               data=sealed(136, ver + 1, 4),
               expect=['built for another interpreter'])
        b.case('re-sealed: another pyc magic (EVERSION)',
               data=sealed(140, cdstest.u32(data, 140) ^ 0x100, 4),
               expect=['built for another interpreter'])
        b.case('re-sealed: another SOABI (EVERSION)',
               data=sealed(184, b'cpython-311d\0'),
               expect=['built for another interpreter'])
        b.case('re-sealed: another build info (EVERSION)',
               data=sealed(232, b'other build, Jan  1 2000\0'),
               expect=['built for another interpreter'])
        b.case('re-sealed: another compiler (EVERSION)',
               data=sealed(328, b'[clang 99]\0'),
               expect=['built for another interpreter'])
        b.case('re-sealed: another quickening (EVERSION)',
               data=sealed(416, cdstest.u64(data, 416) ^ 1, 8),
               expect=['built for another interpreter', 'quicken_hash'])
        fv = cdstest.u32(data, 8)
        b.case('re-sealed: format version %d (this one + 1)' % (fv + 1),
               data=sealed(8, fv + 1, 4), expect=['format version'])
        b.case('re-sealed: format version 0', data=sealed(8, 0, 4),
               expect=['format version'])
        b.case('re-sealed: reserved byte set', data=sealed(1000, b'\x01'),
               expect=['reserved'])
        b.case('re-sealed: index offset past the end',
               data=sealed(64, size + 4096, 8), expect=['outside'])
        b.case('re-sealed: 2**32-1 modules',
               data=sealed(88, 0xffffffff, 4))
        b.case('re-sealed: segments offset 0', data=sealed(48, 0, 8),
               expect=['outside'])

    # --- a module segment: found when (and only when) it is imported ----
    seg_bad = flip(data, victim1 + 3)
    res = b.case('victim segment byte flipped', data=seg_bad,
                 expect=['victim', 'checksum', 'segment'])
    err = res.err_lines
    if res.warnings:
        i = err.index(res.warnings[0])
        t.check(0 < i and err[i - 1] == 'before victim'
                and 'after victim' in err[i + 1:],
                'the warning comes when victim is imported', err)
    st = res.stats
    t.check(st is not None and st['segments_bad'] == 1 and st['failed'] == 1
            and st['active'] and st['warnings'] == 1,
            'stats: one bad segment, one failure, one warning', st)
    vres = t.share([app], archive='bad-%d.img' % b.n, verbose=True)
    t.check('victim' not in vres.served and 'bystander' in vres.served
            and 'json' in vres.served,
            'verbose: victim not served, the others are', vres)
    t.check_same(stock, vres, 'victim segment flipped (verbose)')
    # never imported: no warning at all
    with open(t.path('seg-bad.img'), 'wb') as f:
        f.write(seg_bad)
    quiet = t.share([app], archive='seg-bad.img', verbose=False,
                    env={'IMPORT_VICTIM': '0'})
    t.check_same(stock_nv, quiet, 'victim segment flipped, not imported')
    t.check(quiet.err == stock_nv.err and not quiet.warnings,
            'victim segment flipped, not imported: no warning', quiet)
    t.check(quiet.stats is not None and quiet.stats['segments_bad'] == 0
            and quiet.stats['warnings'] == 0,
            'victim segment flipped, not imported: stats clean', quiet.stats)
    # two bad segments: still one warning
    b.case('victim and bystander segments flipped',
           data=flip(seg_bad, bystander + 3))
    b.case('victim segment bytes constant flipped',
           data=flip(data, victim2 + 5))
    # an identifier only victim uses: in an interned-string pool or in
    # the segment, its bytes are checked before they are used
    ident = data.find(b'victim_only_identifier_q7')
    t.check(ident > 0, 'the archive holds victim_only_identifier_q7')
    b.case('victim identifier flipped', data=flip(data, ident + 2))
    # json.decoder: imported before the program's own modules
    jd = data.find(b'Unterminated string starting at')
    t.check(jd > 0, 'the archive holds a json.decoder string constant')
    b.case('json.decoder segment byte flipped', data=flip(data, jd + 4))

    # --- the whole workload under another interpreter build -------------
    others = [p for p in ('/root/.pyenv/versions/3.11.7/bin/python3.11',
                          '/usr/bin/python3.11')
              if os.path.exists(p) and
              os.path.realpath(p) != os.path.realpath(t.python)]
    for other in others[:1]:
        saved = t.python
        t.python = other
        try:
            ostock = t.stock([app])
            ores = t.share([app], verbose=False)
        finally:
            t.python = saved
        what = 'this archive and _cds under %s' % other
        t.check_same(ostock, ores, what)
        t.check_one_warning(ores, what)
    if not others:
        print('note: no other interpreter build here')
    t.finish()


if __name__ == '__main__':
    main()
