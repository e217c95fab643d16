# SPDX-License-Identifier: MIT
"""A damage matrix over the real archive of a real program (issue 3, items
3 and 6): whatever the archive holds, the program runs as stock.

The program (APP) imports some 60-90 standard-library modules (89 with
Debian's 3.11.2) in two halves and uses each.  Its archive is damaged in
every region of the file, and each damaged copy is used by a quiet SHARE
run whose stdout, exit status and stderr (pycds's lines taken out) must
equal the stock run's, with the number of "pycds: warning:" lines
asserted per case (one; none where nothing is wrong or nothing damaged
is used; at most one where either is right):

  flips, unsealed   one byte XOR 0x5a in every header field, the hash
                    slots, module entries, name pool, every kind of place
                    in several segments (object region start, middle and
                    end, object table, relocation, external, frozenset and
                    pool-reference lists, last byte), the pool's strings,
                    table and sums, one byte per sampled 16 KiB pool block.
                    The checksums catch each: one warning, or none for
                    the padding no checksum covers and for a segment the
                    program never imports.
  flips, resealed   the same kinds of places, then every checksum is
                    recomputed (cdstest.reseal_all) so that the structural
                    checks behind them (format.md 6) are what must catch
                    the damage: header fields, the fingerprint (EVERSION),
                    hash slots, every field of a module entry, the name
                    pool, pool string headers and table, segment tables,
                    object headers, code object fields and pointer slots.
                    Bytes that are only data (characters of a string,
                    digits, line tables) are not flipped resealed: a
                    re-sealed archive with other data is a valid archive
                    of another program (format.md 6.5).
  truncations       39 lengths: the file's boundaries and 18 spread over it.
  other build       _cds built for the other interpreter build (pyenv's
                    3.11.7 or Debian's 3.11.2) in a temporary directory
                    (a few seconds): this archive under that build, and
                    that build's archive read here (also relocated):
                    EVERSION, one warning.
  replaced          while a SHARE process that has imported the first
                    half waits, another valid archive, a corrupt or a
                    truncated one is renamed over its archive path, or the
                    path is unlinked; the process imports the second half
                    from the file it mapped: as stock, no warning, every
                    module served.  Written over in place (what cp does):
                    a corrupt archive of the same size is one warning; a
                    file shrunk in place is KNOWN (SIGBUS).

Offsets inside objects (code fields, str and int heads) are those of the
interpreter under test, CPython 3.11 to 3.15: one table per version
(LAYOUTS), picked by asking it for sys.version_info.

The intern and reference lists must be empty (format.md 5.4): a count
made non-zero is refused at open; their offsets are never read.

Cases matching KNOWN (or the version's known failures) fail today: they
are skipped unless CDSTEST_MATRIX_STRICT=1, which runs and asserts them
like the others.  CDSTEST_MATRIX_ONLY=SUBSTRING runs only the cases
whose label contains it.  A crash (signal, or a sanitizer report) is
listed with the case's label, file offset and byte.  The last line is a
summary to quote (docs/reliability.md)."""
import ast
import os
import re
import shutil
import subprocess
import time

import cdstest

FIRST = ('json', 'email.mime.text', 'decimal', 'argparse', 'csv',
         'dataclasses')
SECOND = ('http.client', 'fractions', 'textwrap', 'shlex', 'difflib',
          'pprint')

APP = '''\
import os
import sys

import io
import json
import email.mime.text
import decimal
import argparse
import csv
import dataclasses

print(json.dumps({'k': [1, 2.5, None, True], 'u': 'caf\\u00e9'},
                 sort_keys=True), json.loads('{"a": [1, {"b": null}]}'))
m = email.mime.text.MIMEText('body \\u00e9', 'plain', 'utf-8')
m['Subject'] = 'matrix'
print(m.as_string().replace('\\n', '|'))
with decimal.localcontext() as ctx:
    ctx.prec = 25
    print(decimal.Decimal(1) / decimal.Decimal(7),
          decimal.Decimal('2.50').quantize(decimal.Decimal('0.1')))
p = argparse.ArgumentParser(prog='matrix')
p.add_argument('--n', type=int, default=3)
p.add_argument('words', nargs='*')
ns = p.parse_args(['--n', '5', 'a', 'b'])
print(ns.n, ns.words, p.format_usage().strip())
buf = io.StringIO()
csv.writer(buf).writerows([['a', 'b c', 'd,e'], [1, 2, 3]])
print(repr(buf.getvalue()), list(csv.DictReader(io.StringIO('x,y\\n1,2\\n'))))


@dataclasses.dataclass(order=True, frozen=True)
class P:
    x: int
    y: int = 0


print(sorted([P(3, 1), P(1)]), dataclasses.asdict(P(2, 2)))
sys.stdout.flush()

ready = os.environ.get('MATRIX_READY')
if ready:
    with open(ready + '.tmp', 'w') as f:
        f.write('first half imported')
    os.rename(ready + '.tmp', ready)
    import time
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ['MATRIX_GO']):
        if time.monotonic() > deadline:
            sys.exit('nobody said go')
        time.sleep(0.01)

if os.environ.get('MATRIX_LATE', '1') == '1':
    import http.client
    import fractions
    import textwrap
    import shlex
    import difflib
    import pprint
    print(http.client.responses[404], http.client.HTTPConnection.default_port)
    print(fractions.Fraction(3, 4) + fractions.Fraction(1, 6))
    print(textwrap.fill('the quick brown fox jumps over the lazy dog', 15))
    print(shlex.split('a "b c" d\\\\ e'), shlex.quote("it's"))
    print(list(difflib.unified_diff(['a', 'b', 'c'], ['a', 'c', 'd'],
                                    lineterm='')))
    print(pprint.pformat({'z': list(range(12)), 'a': {'b': (1, 2)}},
                         width=30))
print('done')
'''

# Cases that fail today, by label pattern (regular expressions searched
# in the label) and the reason.  Skipped unless CDSTEST_MATRIX_STRICT=1,
# which runs them and prints "known failure passed: LABEL" for those that
# pass (then drop the pattern).  State at 1316a12 (cds_heap_validate):
# see docs/reliability.md 1.3 for the cases and what they do.  Known
# failures of one CPython version are in its layout table (LAYOUTS:
# 'known', 'resume').
BYTECODE_TRUSTED = ('bytecode is trusted as in a .pyc: an opcode turned '
                    'into an unknown or specialised one is not detected '
                    '(format.md 6.5)')
KNOWN = ()
# Where the archive's pages stay the file's (a non-PIE 3.12+ interpreter
# at the base: shared between processes; the bytes objects' pages in 3.11's
# copy mode at the base), a file shrunk in place under the mapping raises
# SIGBUS; in copy mode on PIE builds or relocated (the loader reads
# segments into anonymous memory, docs/design.md 3) it cannot.
SHARED_KNOWN = (
    (r'replaced: (another valid archive written over it in place|'
     r'truncated in place)', 'a file shrunk in place under a mapping '
     'that shares its pages raises SIGBUS (archives are replaced by '
     'rename; documented)'),
)

XOR = 0x5a


def crashed(res):
    """How the run died, or None: a signal, or a sanitizer's report (an
    ASan-built _cds handles SEGV itself and exits 1)."""
    if isinstance(res.rc, int) and res.rc < 0:
        return 'signal %d' % -res.rc
    for marker in ('ERROR: AddressSanitizer', 'runtime error:',
                   'ERROR: LeakSanitizer'):
        if marker in res.err:
            i = res.err.index(marker)
            line = res.err[i:].split('\n', 1)[0]
            frames = re.findall(r'^\s*#\d+ .*$', res.err[i:], re.M)[:8]
            ours = [f.strip() for f in frames
                    if re.search(r'_cds\.|/cds/|/importhook/| cds_', f)]
            return '%s%s' % (line[:120], '; in pycds: ' + ' | '.join(ours)
                             if ours else '; not in pycds frames')
    return None


def known(label, layout):
    extra = SHARED_KNOWN if (not layout.get('copied', True) or
                             layout.get('bytes_mapped')) else ()
    for pattern, why in KNOWN + extra + layout['known']:
        if re.search(pattern, label):
            return why
    return None


class Matrix:
    def __init__(self, t, app, stock, stock_early, good, layout):
        self.t = t
        self.layout = layout  # LAYOUTS[the interpreter's version]
        self.app = app
        self.stock = stock
        self.stock_early = stock_early
        self.good = bytes(good)
        self.hasher = cdstest.xxh3_64()
        self.strict = os.environ.get('CDSTEST_MATRIX_STRICT') == '1'
        self.only = os.environ.get('CDSTEST_MATRIX_ONLY')
        self.counts = {}
        self.passed = {}
        self.skipped = []
        self.bad = []       # (label, detail): failed cases
        self.crashes = []   # (label, where, rc)
        self.labels = set()
        self.known_ok = []  # known failures that passed (strict mode)
        self.n = 0

    # --- one case ----------------------------------------------------
    def run(self, kind, label, data, expect='one', where='', late=True,
            say=(), stale=False, env=None, known_why=None):
        """Write data as the archive, run SHARE quietly, and check: stdout,
        exit status and stderr without pycds lines as stock; the pycds
        lines are exactly `expect` warnings ('one', 'zero', or 'le1': at
        most one); a warning contains one of `say`; with stale, the
        stats count a stale source.  known_why: the case is a known
        failure (as a KNOWN pattern), for this reason."""
        t = self.t
        assert label not in self.labels, label
        self.labels.add(label)
        if self.only and self.only not in label:
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        why = known(label, self.layout) or known_why
        if why and not self.strict:
            self.skipped.append(label)
            print('skip (known: %s): %s' % (why, label))
            return
        self.n += 1
        path = t.path('m.img')
        with open(path, 'wb') as f:
            f.write(data)
        e = dict(env or {})
        if not late:
            e['MATRIX_LATE'] = '0'
        stock = self.stock if late else self.stock_early
        res = t.share([self.app], archive='m.img', verbose=False, env=e)
        problems = []
        crash = crashed(res)
        if crash:
            self.crashes.append((label, where, crash))
            problems.append('CRASH: %s' % crash)
        if res.out != stock.out:
            problems.append('stdout differs')
        if res.rc != stock.rc:
            problems.append('exit status %s, stock %s' % (res.rc, stock.rc))
        if res.program_err != stock.program_err:
            problems.append('stderr (without pycds lines) differs')
        w = res.warnings
        others = [l for l in res.pycds_lines if l not in w]
        if others:
            problems.append('pycds lines that are not warnings: %r' % others)
        want = {'one': (1,), 'zero': (0,), 'le1': (0, 1)}[expect]
        if len(w) not in want:
            problems.append('%d warnings, expected %s' % (len(w), expect))
        if say and w and not any(s in w[0] for s in say):
            problems.append('the warning does not say %s' % ' or '.join(say))
        if stale and not (res.stats and res.stats['stale'] >= 1):
            problems.append('no stale source counted: %r' % (res.stats,))
        if stale and res.stats and res.stats['served'] == 0:
            problems.append('nothing served: %r' % (res.stats,))
        ok = t.check(not problems, '%s [%s]: %s (%s)' % (
            label, where, 'as stock, %d warning(s)' % len(w)
            if not problems else '; '.join(problems), expect),
            *([res] if problems else []))
        if ok:
            self.passed[kind] = self.passed.get(kind, 0) + 1
            if why:
                self.known_ok.append(label)
        else:
            self.bad.append((label, where, '; '.join(problems)))
        return res

    def flip(self, kind, label, off, resealed=False, xor=XOR, base=None,
             region='', **kw):
        d = bytearray(self.good if base is None else base)
        old = d[off]
        d[off] ^= xor
        where = '%s offset %d (0x%x) %02x->%02x' % (region or 'file', off,
                                                    off, old, d[off])
        if resealed:
            d = cdstest.reseal_all(d, self.hasher)
        return self.run(kind, label, bytes(d), where=where, **kw)

    # --- summary -----------------------------------------------------
    def summary(self):
        order = ('flips unsealed', 'flips resealed', 'truncations',
                 'other build', 'replaced while mapped')
        total = sum(self.counts.values())
        parts = ', '.join('%d %s' % (self.counts[k], k) for k in order
                          if k in self.counts)
        ran = self.n
        ok = sum(self.passed.values())
        line = 'matrix: %d cases: %s: ' % (total, parts)
        if ok == ran:
            line += 'all %d run as stock' % ran
        else:
            line += '%d of %d run as stock, %d not' % (ok, ran, ran - ok)
        if self.skipped:
            line += ('; %d cases of known failures skipped '
                     '(CDSTEST_MATRIX_STRICT=1 runs them)' % len(self.skipped))
        if self.crashes:
            line += '; %d crashed' % len(self.crashes)
        return line


def segment_places(data, e):
    """Named offsets (file offsets) inside module e's segment: the object
    region's start, middle and end, the middle entry of the object table
    and of each non-empty list, and the last byte."""
    s = e['seg_offset']
    p = {'object region start': s,
         'object region middle': s + e['objects_size'] // 2,
         'object region end': s + e['objects_size'] - 1,
         'object table': s + e['objtab_off'] + 4 * (e['nobjects'] // 2),
         'last byte': s + e['seg_size'] - 1}
    for what, off, n, size in (
            ('relocation list', 'reloc_off', 'nreloc', 4),
            ('external list', 'ext_off', 'next', 8),
            ('intern list', 'intern_off', 'nintern', 12),
            ('frozenset list', 'frozen_off', 'nfrozen', 4),
            ('pool reference list', 'shared_off', 'nshared', 8)):
        if e[n]:
            p[what] = s + e[off] + size * (e[n] // 2)
    return p


def objects_by_kind(data, e):
    kinds = {}
    for off, kind in cdstest.objtab(data, e):
        kinds.setdefault(kind, []).append(off)
    return kinds


CODE, STR, BYTES, INT, FLOAT, COMPLEX, TUPLE = range(7)


def pick_modules(ents, listed_first, listed_second):
    """Modules whose segments are damaged: the first entry, a big module
    and a package of the first half, a module with frozenset constants,
    one of the second half, and the last entry."""
    by = {e['name']: e for e in ents}
    out = []

    def add(e, why):
        if e is not None and e['name'] not in [x[0]['name'] for x in out]:
            out.append((e, why))

    add(ents[0], 'first entry')
    add(by.get('argparse'), 'large, first half')
    add(next((e for e in ents if e['flags'] & 1 and e['name']
              in listed_first and e is not ents[0]), None),
        'package, first half')
    add(next((e for e in ents if e['nfrozen'] and e['name'] in listed_first),
             None), 'frozensets, first half')
    add(by.get('difflib') or next((e for e in ents if e['name']
                                   in listed_second), None),
        'second half')
    add(ents[-1], 'last entry')
    return out


def main():
    t = cdstest.Case('matrix')
    hasher = cdstest.xxh3_64()
    if hasher is None:
        t.skip('no XXH3 (python3-xxhash or libxxhash): cannot re-seal')
    version = python_version(t)
    layout = LAYOUTS.get(version)
    if layout is None:
        t.check(False, 'a layout table for Python %d.%d (LAYOUTS)' % version)
        t.finish()
    print('object layout: Python %d.%d' % version)
    app = t.write('app.py', cdstest.STATS_HOOK + APP)
    stock = t.stock([app])
    t.check(stock.rc == 0 and stock.out.endswith('done\n'),
            'stock run succeeds', stock)
    stock_early = t.stock([app], env={'MATRIX_LATE': '0'})
    # the first half, traced alone, tells the halves apart
    t.trace([app], lst='first.lst', env={'MATRIX_LATE': '0'})
    first = set(t.read_list('first.lst'))
    t.build([app])
    listed = list(dict.fromkeys(t.read_list()))
    second = set(listed) - first
    good = t.share([app])
    t.check_same(stock, good, 'the good archive')
    t.check(not good.warnings and set(listed) <= good.served,
            'the good archive serves all %d modules (%d + %d)'
            % (len(listed), len(first), len(second)), good)
    # copy mode or pages shared with the file (SHARED_KNOWN)
    layout = dict(layout, copied=bool(good.stats and
                                      good.stats.get('copied')),
                  bytes_mapped=bool(good.stats and
                                    good.stats.get('bytes_mapped')))
    print('segments read into anonymous memory (copy mode): %s, their bytes '
          'objects mapped from the file: %s'
          % (layout['copied'], layout['bytes_mapped']))
    with open(t.path('heap.img'), 'rb') as f:
        data = f.read()
    t.check(cdstest.reseal_all(data, hasher) == bytearray(data),
            're-sealing the good archive changes nothing')
    h = cdstest.full_header(data)
    ents = cdstest.entries(data)
    t.check([e['name'] for e in ents] == listed,
            'the test reads the %d module entries' % len(ents))
    size = len(data)
    m = Matrix(t, app, stock, stock_early, data, layout)
    esize = cdstest.entry_size(data)
    print('archive: %d bytes, %d modules, entries of %d bytes, pool of %d '
          'strings' % (size, len(ents), esize, h['pool_count']))

    unsealed(m, data, h, ents, first, second)
    resealed(m, data, h, ents, first, second, esize)
    truncations(m, data, h, ents)
    if not m.only or m.only in 'other build':
        other_build(m, t, app, data)
    replaced(m, t, app, data, ents, first, second, listed)

    for label, where, what in m.bad:
        print('not as stock: %s [%s]: %s' % (label, where, what))
    for label, where, how in m.crashes:
        print('crash: %s [%s]: %s' % (label, where, how))
    for label in m.known_ok:
        print('known failure passed: %s' % label)
    print(m.summary())
    t.finish()


# --- flips without re-sealing: the checksums ---------------------------------

def unsealed(m, data, h, ents, first, second):
    K = 'flips unsealed'
    L = m.layout
    for name, off, size in cdstest.HEADER_FIELDS:
        m.flip(K, 'unsealed: header %s' % name, off, region='header')
    m.flip(K, 'unsealed: header magic, last byte', 7, region='header',
           say=['not a pycds archive'])
    m.flip(K, 'unsealed: header reserved, last byte', 1023, region='header')

    io_, eo, so = h['index_offset'], h['entries_offset'], h['strings_offset']
    slots = [cdstest.u32(data, io_ + 4 * i) for i in range(h['nslots'])]
    full = next(i for i, v in enumerate(slots) if v)
    empty = next(i for i, v in enumerate(slots) if not v)
    idx = [('first hash slot', io_), ('a used hash slot', io_ + 4 * full),
           ('an empty hash slot', io_ + 4 * empty),
           ('last hash slot', io_ + 4 * h['nslots'] - 1),
           ('first entry, first byte', eo),
           ('last entry, last byte', so - 1),
           ('name pool, first byte', so),
           ('name pool, last byte', io_ + h['index_size'] - 1)]
    mid = ents[len(ents) // 2]
    for f, off, sz in cdstest.ENTRY_FIELDS:
        if f in ('name_hash', 'seg_offset', 'seg_checksum', 'nshared',
                 'reserved', 'source_mtime_ns'):
            idx.append(('entry %s %s' % (mid['name'], f), mid['at'] + off))
    nm = h['strings_offset'] + mid['name_off']
    idx += [('name pool: name of %s' % mid['name'], nm),
            ('name pool: NUL after the name of %s' % mid['name'],
             nm + mid['name_len']),
            ('name pool: origin of %s' % mid['name'],
             h['strings_offset'] + mid['origin_off'] + 3)]
    for what, off in idx:
        m.flip(K, 'unsealed: index %s' % what, off, region='index',
               say=['checksum'])

    # the pool: strings, table, sums, and one byte per sampled block
    po = h['pool_offset']
    table = cdstest.pool_table(data)
    covered = (h['pool_objects_size'] + 4 * h['pool_count']
               + 4 * h['pool_early_count'])
    pool = [('first string, refcount', po), ('first string, type', po + 8),
            ('first string, length', po + 16), ('first string, hash', po + 24),
            ('first string, state', po + 32),
            ('first string, characters', po + L['str_ascii_data']),
            ('middle string', po + table[len(table) // 2]
             + L['str_ascii_data'] + 1),
            ('object region, last byte', po + h['pool_objects_size'] - 1),
            ('table, first entry', po + h['pool_table_off']),
            ('table, middle entry', po + h['pool_table_off']
             + 4 * (len(table) // 2)),
            ('table (or early list), last byte', po + covered - 1),
            ('sums, first byte', po + h['pool_sums_off']),
            ('sums, last byte', po + h['pool_size'] - 1)]
    nblocks = -(-covered // cdstest.POOL_BLOCK)
    for b in sorted({1, 2, nblocks // 3, nblocks // 2, 2 * nblocks // 3,
                     nblocks - 2} - {0, nblocks - 1}):
        if 0 < b < nblocks:
            pool.append(('block %d of %d' % (b, nblocks),
                         po + cdstest.POOL_BLOCK * b + 777))
    for what, off in pool:
        m.flip(K, 'unsealed: pool %s' % what, off, region='pool',
               say=['checksum'])
    # bytes no checksum covers: padding after the pool's table, after the
    # pool, after a segment block
    gap = po + h['pool_sums_off'] - (po + covered)
    if gap:
        m.flip(K, 'unsealed: pool padding before the sums', po + covered,
               region='pool padding', expect='zero')
    if io_ > po + h['pool_size']:
        m.flip(K, 'unsealed: padding between pool and index', io_ - 1,
               region='padding', expect='zero')

    for e, why in pick_modules(ents, first, second):
        places = segment_places(data, e)
        late = e['name'] in second
        for what, off in places.items():
            m.flip(K, 'unsealed: segment %s (%s): %s' % (e['name'], why,
                                                         what),
                   off, region='segment %s' % e['name'],
                   say=['checksum'])
        end = e['seg_offset'] + e['seg_size']
        if end % 64:
            m.flip(K, 'unsealed: padding after segment %s' % e['name'], end,
                   region='padding', expect='zero')
        if late:
            # the program does not import it: the damage goes unseen
            m.flip(K, 'unsealed: segment %s, never imported' % e['name'],
                   places['object region middle'], late=False,
                   region='segment %s' % e['name'], expect='zero')


# --- flips with every checksum recomputed: the structural checks -------------

HEADER_EXPECT = {
    'magic': ('one', ['not a pycds archive']),
    'format_version': ('one', ['format version']),
    'created_ns': ('zero', ()),
    # smaller by up to 0x5a: the last block's padding may absorb it
    'segments_size': ('le1', ()),
    'fp.py_version_hex': ('one', ['another interpreter']),
    'fp.pyc_magic': ('one', ['another interpreter']),
    'fp.pointer_size': ('one', ['another interpreter']),
    'fp.byte_order': ('one', ['another interpreter']),
    'fp.long_shift': ('one', ['another interpreter']),
    'fp.wchar_size': ('one', ['another interpreter']),
    'fp.build_flags': ('one', ['another interpreter']),
    'fp.layout_hash': ('one', ['another interpreter']),
    'fp.runtime_hash': ('one', ['another interpreter']),
    'fp.cache_tag': ('one', ['another interpreter']),
    'fp.soabi': ('one', ['another interpreter']),
    'fp.build_info': ('one', ['another interpreter']),
    'fp.compiler': ('one', ['another interpreter']),
    'fp.quicken_hash': ('one', ['another interpreter']),
}
RESTORED = ('header_checksum', 'index_checksum', 'pool_sums_checksum',
            'seg_checksum')


def resealed(m, data, h, ents, first, second, esize):
    K = 'flips resealed'

    def rs(label, off, **kw):
        kw.setdefault('region', 'file')
        return m.flip(K, 'resealed: ' + label, off, resealed=True, **kw)

    # header: every field but the checksums re-sealing restores
    for name, off, size in cdstest.HEADER_FIELDS:
        if name in RESTORED:
            continue
        expect, say = HEADER_EXPECT.get(name, ('one', ()))
        if name == 'code_version_count' and h[name]:
            # 3.13 (format.md 5.1.7): a larger range only bounds the
            # versions more loosely (nothing to see); a smaller one leaves
            # code objects outside it
            expect = 'zero' if h[name] ^ XOR > h[name] else 'one'
        rs('header %s' % name, off, region='header', expect=expect, say=say)
    rs('header base_address, page-aligned elsewhere', 37, region='header')
    rs('header base_address, page-aligned elsewhere, relocated', 37,
       region='header', env={'PYCDSRELOCATE': '1'})
    # every build flag is compared, undefined ones too (the PIE bit, once
    # informative, is gone)
    rs('header fp.build_flags undefined bit 0x10', 148, xor=0x10,
       region='header', expect='one', say=['fingerprint'])
    rs('header reserved, last byte', 1023, region='header')

    # hash slots
    io_ = h['index_offset']
    n = h['nmodules']
    slots = [cdstest.u32(data, io_ + 4 * i) for i in range(h['nslots'])]
    used = [i for i, v in enumerate(slots) if v]
    s0 = used[len(used) // 2]
    rs('slot %d: entry out of range' % s0, io_ + 4 * s0 + 3,
       region='hash slots', say=['slot'])
    empty = next(i for i, v in enumerate(slots) if not v)
    rs('empty slot %d: entry out of range' % empty, io_ + 4 * empty + 2,
       region='hash slots', say=['slot'])
    # another valid entry in a used slot: that name is not found, its
    # module is imported normally, nothing is wrong with the archive
    other = next((v ^ x for x in (1, 2, 3, 4) for v in [slots[s0]]
                  if 0 < v ^ x <= n), None)
    if other is not None:
        rs('slot %d names another valid entry' % s0, io_ + 4 * s0,
           xor=slots[s0] ^ other, region='hash slots', expect='zero')

    # every field of a module entry (a first-half module, imported)
    e = next(x for x in ents if x['name'] == 'argparse')
    for f, off, sz in cdstest.ENTRY_FIELDS:
        if f in RESTORED:
            continue
        kw = {'say': ['entry', e['name'], 'segment', 'module'],
              'region': 'entry %s' % e['name']}
        if f in ('source_mtime_ns', 'source_size'):
            kw = {'expect': 'zero', 'stale': True,
                  'region': 'entry %s' % e['name']}
        if f == 'source_hash':
            # compared only under PYCDSCHECK=hash
            kw = {'expect': 'zero', 'region': 'entry %s' % e['name']}
            rs('entry %s %s, low byte, PYCDSCHECK=hash' % (e['name'], f),
               e['at'] + off, expect='zero', stale=True,
               region='entry %s' % e['name'], env={'PYCDSCHECK': 'hash'})
        if f == 'search_off':
            # another valid name-pool string: the path rules decide
            kw = {'expect': 'le1', 'region': 'entry %s' % e['name']}
        if f == 'seg_size':
            # larger: the zero padding before the next block, on its own
            # page since format 4 (format.md 4), may absorb it
            kw = {'expect': 'le1', 'region': 'entry %s' % e['name']}
        if f == 'intern_off':
            # the offset of a list that must be empty (format.md 5.4):
            # never read
            kw = {'expect': 'zero', 'region': 'entry %s' % e['name']}
        if f == 'copy_off':
            # misaligned, or before write_size: refused; elsewhere the
            # load-only region moves: refused (S3), or fewer objects
            # copied, or none (format.md 5)
            kw = {'expect': 'le1', 'region': 'entry %s' % e['name']}
        if f.startswith('n') and f not in ('name_off', 'name_len',
                                           'name_hash'):
            # a count made larger (byte 2: + 0x5a0000): lists overrun
            rs('entry %s %s, larger' % (e['name'], f), e['at'] + off + 2,
               **kw)
        else:
            rs('entry %s %s, low byte' % (e['name'], f), e['at'] + off,
               **kw)
        if f.startswith('n') and f != 'name_hash' and f != 'name_off' \
                and f != 'name_len' and e[f]:
            # a count made smaller by one: a list entry is missing
            rs('entry %s %s, one less' % (e['name'], f), e['at'] + off,
               xor=e[f] ^ (e[f] - 1), region='entry %s' % e['name'],
               say=['entry', e['name']])
            if f == 'nreloc':
                rs('entry %s %s, one less, relocated' % (e['name'], f),
                   e['at'] + off, xor=e[f] ^ (e[f] - 1),
                   region='entry %s' % e['name'], say=['entry', e['name']],
                   env={'PYCDSRELOCATE': '1'})
    known_end = max(off + sz for _, off, sz in cdstest.ENTRY_FIELDS)
    for off in range(known_end, esize, 8):  # fields this test does not know
        rs('entry %s byte %d' % (e['name'], off), e['at'] + off,
           expect='le1', region='entry %s' % e['name'])
    so = h['strings_offset']
    rs('name pool: name of %s' % e['name'], so + e['name_off'] + 1,
       region='name pool', say=['entry'])
    rs('name pool: NUL after the name of %s' % e['name'],
       so + e['name_off'] + e['name_len'], region='name pool',
       say=['entry'])
    rs('name pool: origin of %s' % e['name'],
       so + e['origin_off'] + len(e['origin']) - 4, region='name pool',
       expect='zero', stale=True)
    rs('name pool: search path of %s' % e['name'],
       so + e['search_off'] + 2, region='name pool', expect='le1')

    # pool strings and table
    po = h['pool_offset']
    table = cdstest.pool_table(data)
    mid = po + table[len(table) // 2]
    for what, rel, exp, xor in m.layout['pool_str']:
        rs('pool first string %s' % what, po + rel, region='pool',
           expect=exp, xor=xor)
    for what, off, exp in (
            ('middle string length', mid + 16, 'one'),
            ('middle string NUL', po + table[len(table) // 2 + 1] - 1
             if data[po + table[len(table) // 2 + 1] - 1] else None, 'one'),
            ('table middle entry', po + h['pool_table_off']
             + 4 * (len(table) // 2), 'one'),
            ('table last entry, high byte', po + h['pool_table_off']
             + 4 * len(table) - 1, 'one')):
        if off is not None:
            rs('pool %s' % what, off, region='pool', expect=exp)

    # segments: tables, object headers, code fields, pointer slots
    for e, why in pick_modules(ents, first, second):
        seg(m, rs, data, h, e, why)


# --- object layouts: one table per CPython version --------------------------
#
# Where the fields of an archived object lie, and what a flipped byte of
# each must produce, for each interpreter pycds supports.  The offsets are
# cds/layout_3XX.c's static_asserts (format.md 5.1); main() picks the
# table of the interpreter under test (python_version).  A new version is
# one more table in LAYOUTS.
#
#   code      code object fields, (name, offset, expect[, xor]): expect
#             None is a pointer slot, whose expectation follows from the
#             list that names it (slot_expect); 'nlocals0' is 'one' if the
#             code object has no locals, else 'zero' (see LAYOUT_312).
#             Every field of the root code object is flipped, those in
#             code_mid also in a middle one.
#   pool_str  the first pool string's head, (what, offset, expect, xor),
#             resealed.
#   str       a segment's middle str, (what, offset, expect, xor).
#   str_compact  the first non-ASCII (compact) str of a segment, if any,
#             (what, offset, expect, xor).
#   int       a segment's first int, (what, offset, expect, xor).
#   str_ascii_data  where an ASCII str's characters start (unsealed flips
#             of the pool's characters).
#   known     known failures of this version, as KNOWN.
#   resume    the RESUME opcode, or None: a code object's first
#             instruction flipped is one warning where it is RESUME (the
#             first RESUME moves: _co_firsttraceable no longer matches),
#             and a known failure where it is not (MAKE_CELL,
#             COPY_FREE_VARS, RETURN_GENERATOR come first: BYTECODE_TRUSTED).

LAYOUT_311 = {
    'code': (
        ('ob_refcnt', 0, 'le1'), ('ob_type', 8, 'zero'),
        ('ob_size', 16, 'one'),
        ('co_consts', 24, None), ('co_names', 32, None),
        ('co_exceptiontable', 40, None), ('co_flags', 48, 'one'),
        ('co_warmup', 52, 'le1'), ('co_argcount', 56, 'one'),
        ('co_stacksize', 68, 'le1'), ('co_firstlineno', 72, 'le1'),
        ('co_nlocalsplus', 76, 'one'), ('co_nlocals', 80, 'one'),
        ('co_ncellvars', 88, 'one'), ('co_localsplusnames', 96, None),
        ('co_localspluskinds', 104, None), ('co_filename', 112, None),
        ('co_name', 120, None), ('co_qualname', 128, None),
        ('co_linetable', 136, None), ('co_weakreflist', 144, 'one'),
        ('_co_code', 152, 'one'), ('co_extra', 176, 'one'),
        ('first instruction', 184, 'one'),
    ),
    'code_mid': ('ob_size', 'co_consts', 'co_argcount', 'co_nlocalsplus',
                 'co_localsplusnames', 'first instruction'),
    'pool_str': (
        ('refcount', 0, 'le1', XOR), ('type', 8, 'zero', XOR),
        ('length', 16, 'one', XOR), ('hash', 24, 'one', XOR),
        ('state', 32, 'one', XOR), ('wstr', 40, 'one', XOR),
    ),
    'str': (
        ('length', 16, 'one', XOR), ('hash', 24, 'one', XOR),
        ('state', 32, 'one', XOR), ('wstr', 40, 'one', XOR),
    ),
    'str_compact': (),
    'int': (('ob_size', 16, 'one', XOR), ('type', 8, 'zero', XOR)),
    'str_ascii_data': 48,
    # a code object whose first instruction is not RESUME (MAKE_CELL,
    # COPY_FREE_VARS, RETURN_GENERATOR: which ones are picked depends on
    # the layout, format.md 5) is a known failure, as on 3.12 on
    'known': (),
    'resume': 151,  # opcode.opmap['RESUME']
}

# 3.12 and later: immortal objects (every archived object's count is
# exactly 0xFFFFFFFF, checked for each: a flipped count is one warning),
# no co_warmup (code quickened at creation); co_stacksize is tied to
# co_framesize (= co_nlocalsplus + co_stacksize + FRAME_SPECIALS_SIZE) and
# co_version must be 0, so both are one warning; the runtime caches
# (_co_cached, _co_instrumentation_version, _co_monitoring, co_extra,
# 3.13's co_executors) must be empty.  A str has no wstr: its ASCII
# characters start at 40, a compact one's at 56 after utf8_length (40) and
# utf8 (48), which must be 0/NULL; state bit 7 is statically_allocated,
# which an archived str never is.  An int's ob_size is lv_tag: sign in
# bits 0-1 (3 is no sign), bit 2 no int of ours, digit count from bit 3.
#
# co_flags XOR 0x5a sets CO_NEWLOCALS, CO_VARKEYWORDS and CO_NESTED in a
# module's code (its flags are 0): the only check it can fail is
# _PyCode_Validate's, arguments (now one, the ** dict) that no local
# holds.  That is one warning where the module's code has no locals (as
# on 3.11), but from 3.12 on the comprehensions at a module's top level
# are inlined (PEP 709) and their variables are locals of the module's
# code: then the flags are ones a .pyc could carry, trusted as its
# bytecode is (format.md 6.5), and harmless (the ** dict lands in a local
# slot that exists; the comprehension saves and restores it): no
# warning.  A negative co_flags is always one.
_POOL_STR_IMMORTAL = (
    ('refcount', 0, 'one', XOR), ('type', 8, 'zero', XOR),
    ('length', 16, 'one', XOR), ('hash', 24, 'one', XOR),
    ('state', 32, 'one', XOR), ('state, statically_allocated bit', 32,
                                'one', 0x80),
)
_STR_IMMORTAL = (
    ('length', 16, 'one', XOR), ('hash', 24, 'one', XOR),
    ('state', 32, 'one', XOR), ('state, statically_allocated bit', 32,
                                'one', 0x80),
)
_STR_COMPACT_IMMORTAL = (
    ('utf8_length', 40, 'one', XOR), ('utf8', 48, 'one', XOR),
)
_INT_IMMORTAL = (
    ('lv_tag', 16, 'one', XOR), ('lv_tag sign bits 3', 16, 'one', 3),
    ('lv_tag bit 2', 16, 'one', 4), ('type', 8, 'zero', XOR),
)
_CODE_MID_IMMORTAL = ('ob_size', 'co_consts', 'co_argcount',
                      'co_nlocalsplus', 'co_localsplusnames',
                      'first instruction')

LAYOUT_312 = {
    'code': (
        ('ob_refcnt', 0, 'one'), ('ob_type', 8, 'zero'),
        ('ob_size', 16, 'one'),
        ('co_consts', 24, None), ('co_names', 32, None),
        ('co_exceptiontable', 40, None), ('co_flags', 48, 'nlocals0'),
        ('co_flags, sign bit', 51, 'one', 0x80),
        ('co_argcount', 52, 'one'), ('co_stacksize', 64, 'one'),
        ('co_firstlineno', 68, 'le1'), ('co_nlocalsplus', 72, 'one'),
        ('co_framesize', 76, 'one'), ('co_nlocals', 80, 'one'),
        ('co_ncellvars', 84, 'one'), ('co_nfreevars', 88, 'one'),
        ('co_version', 92, 'one'), ('co_localsplusnames', 96, None),
        ('co_localspluskinds', 104, None), ('co_filename', 112, None),
        ('co_name', 120, None), ('co_qualname', 128, None),
        ('co_linetable', 136, None), ('co_weakreflist', 144, 'one'),
        ('_co_cached', 152, 'one'),
        ('_co_instrumentation_version', 160, 'one'),
        ('_co_monitoring', 168, 'one'), ('_co_firsttraceable', 176, 'one'),
        ('co_extra', 184, 'one'), ('first instruction', 192, 'one'),
    ),
    'code_mid': _CODE_MID_IMMORTAL,
    'pool_str': _POOL_STR_IMMORTAL,
    'str': _STR_IMMORTAL,
    'str_compact': _STR_COMPACT_IMMORTAL,
    'int': _INT_IMMORTAL,
    'str_ascii_data': 40,
    'known': (),
    'resume': 151,  # opcode.opmap['RESUME']
}

LAYOUT_313 = {
    'code_versions': True,  # format.md 5.1.7: the archive's own co_version
    'code': (
        ('ob_refcnt', 0, 'one'), ('ob_type', 8, 'zero'),
        ('ob_size', 16, 'one'),
        ('co_consts', 24, None), ('co_names', 32, None),
        ('co_exceptiontable', 40, None), ('co_flags', 48, 'nlocals0'),
        ('co_flags, sign bit', 51, 'one', 0x80),
        ('co_argcount', 52, 'one'), ('co_stacksize', 64, 'one'),
        ('co_firstlineno', 68, 'le1'), ('co_nlocalsplus', 72, 'one'),
        ('co_framesize', 76, 'one'), ('co_nlocals', 80, 'one'),
        ('co_ncellvars', 84, 'one'), ('co_nfreevars', 88, 'one'),
        ('co_version', 92, 'one'), ('co_localsplusnames', 96, None),
        ('co_localspluskinds', 104, None), ('co_filename', 112, None),
        ('co_name', 120, None), ('co_qualname', 128, None),
        ('co_linetable', 136, None), ('co_weakreflist', 144, 'one'),
        ('co_executors', 152, 'one'), ('_co_cached', 160, 'one'),
        ('_co_instrumentation_version', 168, 'one'),
        ('_co_monitoring', 176, 'one'), ('_co_firsttraceable', 184, 'one'),
        ('co_extra', 192, 'one'), ('first instruction', 200, 'one'),
    ),
    'code_mid': _CODE_MID_IMMORTAL,
    'pool_str': _POOL_STR_IMMORTAL,
    'str': _STR_IMMORTAL,
    'str_compact': _STR_COMPACT_IMMORTAL,
    'int': _INT_IMMORTAL,
    'str_ascii_data': 40,
    'known': (),
    'resume': 149,  # opcode.opmap['RESUME']
}

# 3.14 and 3.15 (layout_314.c, layout_315.c): as 3.13, with _co_unique_id
# before _co_firsttraceable; the object head's first word holds ob_flags
# too, and every str image is statically allocated (so flipping that bit
# clears it)
LAYOUT_314 = dict(LAYOUT_313, code=tuple(
    e for e in LAYOUT_313['code'] if e[1] < 184) + (
    ('_co_unique_id', 184, 'one'), ('_co_firsttraceable', 192, 'one'),
    ('co_extra', 200, 'one'), ('first instruction', 208, 'one'),
), resume=128)  # opcode.opmap['RESUME']

LAYOUTS = {(3, 11): LAYOUT_311, (3, 12): LAYOUT_312, (3, 13): LAYOUT_313,
           (3, 14): LAYOUT_314, (3, 15): LAYOUT_314}


def python_version(t):
    """(major, minor) of the interpreter under test, asked once (not the
    interpreter running this script, nor other_build's)."""
    r = t.stock(['-c', 'import sys; print(*sys.version_info[:2])'])
    try:
        major, minor = (int(x) for x in r.out.split())
    except ValueError:
        t.check(False, 'the interpreter under test says its version', r)
        t.finish()
    return major, minor


def slot_lists(data, e):
    """Segment offsets of the pointer slots each list names."""
    s = e['seg_offset']
    u32 = cdstest.u32
    return {
        'reloc': {u32(data, s + e['reloc_off'] + 4 * i)
                  for i in range(e['nreloc'])},
        'ext': {u32(data, s + e['ext_off'] + 8 * i)
                for i in range(e['next'])},
        'shared': {u32(data, s + e['shared_off'] + 8 * i)
                   for i in range(e['nshared'])},
    }


def slot_expect(lists, off):
    """A byte of a pointer slot flipped: an external or pool reference
    slot is rewritten with the process's object at load where it
    differs (its value is a hint, never followed: nothing to see); an
    internal pointer that no longer names an object start fails S3."""
    if off in lists['ext']:
        return 'zero', 'external'
    if off in lists['reloc']:
        return 'one', 'internal'
    if off in lists['shared']:
        return 'zero', 'pool reference'
    return 'one', 'listed nowhere'


def seg(m, rs, data, h, e, why):
    s = e['seg_offset']
    name = e['name']
    reg = 'segment %s' % name
    lists = slot_lists(data, e)
    L = m.layout

    def at(what, off, **kw):
        kw.setdefault('region', reg)
        if kw.get('expect', 'one') == 'one':
            kw.setdefault('say', [name])
        rs('segment %s (%s): %s' % (name, why, what), off, **kw)

    def slot(what, rel, **kw):
        exp, kind = slot_expect(lists, rel)
        at('%s (%s slot)' % (what, kind), s + rel, expect=exp, **kw)

    tab = cdstest.objtab(data, e)
    ot = s + e['objtab_off']
    at('object table, root entry', ot)
    at('object table, middle entry', ot + 4 * (len(tab) // 2))
    at('object table, last entry, high byte', ot + 4 * len(tab) - 1)
    if e['nreloc']:
        r = s + e['reloc_off'] + 4 * (e['nreloc'] // 2)
        at('relocation, slot misaligned', r)
        at('relocation, another slot', r + 1)
    if e['next']:
        x = s + e['ext_off'] + 8 * (e['next'] // 2)
        at('external, slot misaligned', x)
        at('external, index out of range', x + 5)
    if e['nfrozen']:
        at('frozenset, slot misaligned', s + e['frozen_off'])
        fr = cdstest.u32(data, s + e['frozen_off'])
        # the slot of another pointer that is not a frozenset's tuple
        other = next((r for r in sorted(lists['reloc'])
                      if r != fr and (r ^ fr) < 256 and (r ^ fr) & 7 == 0),
                     None)
        if other is not None:
            at('frozenset, another internal slot', s + e['frozen_off'],
               xor=fr ^ other)
    if e['nshared']:
        x = s + e['shared_off'] + 8 * (e['nshared'] // 2)
        at('pool reference, slot misaligned', x)
        at('pool reference, index out of range', x + 7)
    kinds = objects_by_kind(data, e)
    code_off = {f[0]: f[1] for f in L['code']}
    codes = [(e['root_off'], 'root code')]
    if len(kinds.get(CODE, [])) > 1:
        codes.append((kinds[CODE][len(kinds[CODE]) // 2], 'middle code'))
    for c, cname in codes:
        for f, off, exp, *xor in L['code']:
            if cname != 'root code' and f not in L['code_mid']:
                continue
            if exp == 'nlocals0':
                nlocals = cdstest.u32(data, s + c + code_off['co_nlocals'])
                exp = 'one' if nlocals == 0 else 'zero'
            kw = {}
            if f == 'first instruction' and L['resume'] is not None \
                    and data[s + c + off] != L['resume']:
                kw['known_why'] = BYTECODE_TRUSTED
            if f == 'co_version' and L.get('code_versions'):
                # another version of the archive's range: refused where it
                # is given twice, which may be in the module loaded later
                # (format.md 5.1.7): one warning, naming the field
                kw['say'] = ['co_version']
            if exp is None:
                slot('%s %s' % (cname, f), c + off)
            else:
                at('%s %s' % (cname, f), s + c + off, expect=exp,
                   xor=xor[0] if xor else XOR, **kw)
    if kinds.get(TUPLE):
        tp = kinds[TUPLE][len(kinds[TUPLE]) // 2]
        at('middle tuple GC head', s + tp - 16, expect='le1')
        at('middle tuple ob_size', s + tp + 16)
        at('middle tuple ob_size high byte', s + tp + 23)
        slot('middle tuple item 0', tp + 24)
    if kinds.get(STR):
        st = kinds[STR][len(kinds[STR]) // 2]
        for what, rel, exp, xor in L['str']:
            at('middle str %s' % what, s + st + rel, expect=exp, xor=xor)
        # state bit 6 clear: not ASCII, a compact str's longer head
        cs = next((o for o in kinds[STR] if not data[s + o + 32] & 0x40),
                  None)
        for what, rel, exp, xor in L['str_compact'] if cs is not None \
                else ():
            at('first non-ASCII str %s' % what, s + cs + rel, expect=exp,
               xor=xor)
    if kinds.get(BYTES):
        by = kinds[BYTES][-1]
        at('last bytes ob_size', s + by + 16)
        at('last bytes ob_size high byte', s + by + 23)
        at('last bytes hash', s + by + 24, expect='le1')
    if kinds.get(INT):
        it = kinds[INT][0]
        for what, rel, exp, xor in L['int']:
            at('first int %s' % what, s + it + rel, expect=exp, xor=xor)


# --- truncations ------------------------------------------------------------

def truncations(m, data, h, ents):
    size = len(data)
    fixed = {1, 7, 8, 9, 100, 512, 1023, 1024, 1025, 4096,
             h['segments_offset'] + 1,
             ents[0]['seg_offset'] + ents[0]['seg_size'],
             ents[len(ents) // 2]['seg_offset'],
             h['pool_offset'], h['pool_offset'] + h['pool_table_off'],
             h['pool_offset'] + h['pool_sums_off'],
             h['pool_offset'] + h['pool_size'], h['index_offset'],
             h['entries_offset'], h['strings_offset'], size - 8, size - 1}
    step = size // 19
    spread = {step * i + 13 for i in range(1, 19)}
    cuts = sorted(x for x in fixed | spread if 0 < x < size)
    for n in cuts[:40]:
        m.run('truncations', 'truncated to %d of %d bytes' % (n, size),
              data[:n], where='length %d' % n,
              say=['truncated', 'too small', 'header says', 'not a pycds'])


# --- an archive of another interpreter build ---------------------------------

OTHERS = ('/root/.pyenv/versions/3.11.7/bin/python3.11',
          '/usr/bin/python3.11')


def other_build(m, t, app, data):
    """Build _cds for another 3.11 (a few seconds: the format and heap
    layers and the extension, no tests), dump the workload with it, and
    cross the archives."""
    K = 'other build'
    cands = [os.environ.get('CDSTEST_OTHER_PYTHON')] + list(OTHERS)
    other = next((p for p in cands if p and os.path.exists(p) and
                  os.path.realpath(p) != os.path.realpath(t.python)), None)
    if other is None:
        print('note: no other interpreter build: other-build cases skipped '
              '(test_bad_archives re-seals fingerprints)')
        return
    if shutil.which('cmake') is None:
        print('note: no cmake: other-build cases skipped')
        return
    # the sources of the build under test (its CMakeCache.txt), else ours
    src = os.path.dirname(os.path.dirname(cdstest.HERE))
    try:
        with open(os.path.join(os.path.dirname(t.site),
                               'CMakeCache.txt')) as f:
            for line in f:
                if line.startswith('CMAKE_HOME_DIRECTORY:'):
                    src = line.split('=', 1)[1].strip()
    except OSError:
        pass
    bdir = t.path('other-build')
    t0 = time.monotonic()
    env = dict(os.environ)
    for k in ('CFLAGS', 'LDFLAGS', 'LD_PRELOAD'):
        env.pop(k, None)
    p = subprocess.run(
        'cmake -S "%s" -B "%s" -DPYCDS_PYTHON="%s" -DBUILD_TESTING=OFF '
        '-DPYCDS_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && '
        'cmake --build "%s" --target _cds -j 2 >/dev/null'
        % (src, bdir, other, bdir), shell=True, env=env,
        capture_output=True, text=True)
    osite = os.path.join(bdir, 'site')
    if p.returncode != 0 or not os.path.isdir(osite):
        print('note: building _cds for %s failed: other-build cases '
              'skipped\n%s' % (other, p.stderr[-2000:]))
        return
    print('built _cds for %s in %.1f s' % (other, time.monotonic() - t0))
    saved = t.python, t.site
    t.python, t.site = other, osite
    try:
        ostock = t.stock([app])
        t.build([app], lst='other.lst', archive='other.img')
        oshare = t.share([app], archive='other.img')
        t.check_same(ostock, oshare, 'the other build serves its own archive')
        t.check(not oshare.warnings and oshare.served,
                'the other build: no warning, modules served', oshare)
        # this build's archive under the other build
        with open(t.path('mine.img'), 'wb') as f:
            f.write(data)
        m.counts[K] = m.counts.get(K, 0) + 1
        m.n += 1
        res = t.share([app], archive='mine.img', verbose=False)
        ok = t.check_same(ostock, res, 'this archive under %s' % other)
        ok &= t.check_one_warning(res, 'this archive under %s' % other)
        ok &= t.check(res.warnings and 'another interpreter'
                      in res.warnings[0], 'the warning says built for '
                      'another interpreter', res.warnings)
        if ok:
            m.passed[K] = m.passed.get(K, 0) + 1
        else:
            m.bad.append(('this archive under the other build', other, ''))
    finally:
        t.python, t.site = saved
    with open(t.path('other.img'), 'rb') as f:
        odata = f.read()
    m.run(K, 'an archive of %s, read here' % other, odata,
          where='other build', say=['another interpreter'])
    m.run(K, 'an archive of %s, read here, relocated' % other, odata,
          where='other build', say=['another interpreter'],
          env={'PYCDSRELOCATE': '1'})


# --- the archive replaced while a process has it mapped ----------------------

def replaced(m, t, app, data, ents, first, second, listed):
    """A SHARE process imports the first half, waits while the archive
    file changes, then imports the second half.  Renamed over or
    unlinked: the process keeps the file it mapped, serves every module
    and prints nothing.  Overwritten in place (not what the writer does,
    but what cp does): the pages of segments not yet used show the new
    bytes; a segment that no longer checks out, or a size change, is one
    warning and normal imports."""
    K = 'replaced while mapped'
    # another valid archive: the first half only
    t.dump(lst='first.lst', archive='first.img', args=[app])
    with open(t.path('first.img'), 'rb') as f:
        other_valid = f.read()
    # a corrupt one: every second-half segment damaged (not re-sealed)
    corrupt = bytearray(data)
    for e in ents:
        if e['name'] in second:
            corrupt[e['seg_offset'] + e['objects_size'] // 2] ^= XOR
    corrupt = bytes(corrupt)
    for what, new, how, expect in (
            ('another valid archive renamed over it', other_valid, 'rename',
             'all served'),
            ('a corrupt archive renamed over it', corrupt, 'rename',
             'all served'),
            ('a truncated archive renamed over it', data[:5000], 'rename',
             'all served'),
            ('the file unlinked', None, 'unlink', 'all served'),
            ('a corrupt archive of the same size written over it in place',
             corrupt, 'inplace', 'one'),
            ('another valid archive written over it in place', other_valid,
             'inplace', 'one'),
            ('truncated in place to 5000 bytes', data[:5000], 'inplace',
             'one')):
        label = 'replaced: %s' % what
        m.counts[K] = m.counts.get(K, 0) + 1
        if m.only and m.only not in label:
            continue
        why = known(label, m.layout)
        if why and not m.strict:
            m.skipped.append(label)
            print('skip (known: %s): %s' % (why, label))
            continue
        m.n += 1
        arch = t.path('live.img')
        with open(arch, 'wb') as f:
            f.write(data)
        ready, go = t.path('ready'), t.path('go')
        for p in (ready, go):
            if os.path.exists(p):
                os.unlink(p)
        env = t.environ({'PYTHONPATH': t.site, 'PYCDSMODE': 'SHARE',
                         'PYCDSARCHIVE': arch, 'MATRIX_READY': ready,
                         'MATRIX_GO': go,
                         'CDSTEST_STATS': t.path('live.stats')})
        proc = subprocess.Popen([t.python, app], cwd=t.dir, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(ready) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        was_ready = os.path.exists(ready)
        if how == 'rename':
            with open(arch + '.new', 'wb') as f:
                f.write(new)
            os.rename(arch + '.new', arch)
        elif how == 'inplace':
            with open(arch, 'r+b') as f:
                f.write(new)
                f.truncate(len(new))
        else:
            os.unlink(arch)
        with open(go, 'w') as f:
            f.write('go')
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        stats = None
        if os.path.exists(t.path('live.stats')):
            with open(t.path('live.stats')) as f:
                stats = ast.literal_eval(f.read())
            os.unlink(t.path('live.stats'))
        res = cdstest.Result('share', [t.python, app], proc.returncode, out,
                             err, stats)
        crash = crashed(res)
        if crash:
            m.crashes.append((label, how, crash))
        ok = t.check(was_ready, '%s: the process imported the first half '
                     'and waited' % label, res)
        ok &= t.check_same(m.stock, res, label)
        if expect == 'all served':
            ok &= t.check(not res.pycds_lines, '%s: no pycds line' % label,
                          res)
            ok &= t.check(stats is not None and stats['served'] >= len(listed)
                          and stats['segments_loaded'] == len(listed)
                          and stats['failed'] == 0,
                          '%s: every module, both halves, served from the '
                          'mapped file (%d)' % (label, len(listed)), stats)
        else:
            ok &= t.check_one_warning(res, label)
        if ok:
            m.passed[K] = m.passed.get(K, 0) + 1
        else:
            m.bad.append((label, how, 'see above'))


if __name__ == '__main__':
    main()
