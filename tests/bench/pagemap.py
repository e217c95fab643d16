#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Which of an archive's pages a SHARE process copied, by what they hold.

    PYCDSMODE=SHARE PYCDSARCHIVE=heap.img python pagemap.py heap.img \
        'import sympy' ['more statements']

runs the statements (the workload) in the process, then reads
/proc/self/pagemap for every page of the archive's range at its base and
says, per region of the archive, how many pages are resident, how many
are private copies (anonymous: written by the loader or the program, or
read into memory in copy mode) and how many are still the file's page
cache pages (shared with every process that maps the file).  A page
belongs to the region that holds most of its bytes:

  header, index           read at open
  pool                    the interned strings (format.md 4.1), their
                          table and block sums
  loader-written tuples   [0, write_size) of each segment (format.md 5)
  load-only               [copy_off, objects_size): the bodies handed out
                          as heap copies, with what only they use
                          (dropped after loading)
  code: bodies            module and class bodies not copied
  code: functions
  str, bytes, numbers, tuples
  segment tables          object tables and slot lists (dropped after
                          loading), and padding

It needs an archive mapped at its base (not PYCDSRELOCATE) and reads the
archive file itself for the layout; pagemap's flags need no privilege.
In copy mode (3.11, PIE builds) segments are read into anonymous
memory outside the archive's range and keep their objects there
(format.md 8, steps 2 and 7): what is counted there is then the header,
index, pool and, on 3.11 at the base, the bytes objects used from the
file.
"""
import os
import struct
import sys

PAGE = os.sysconf('SC_PAGE_SIZE')
CO_OPTIMIZED = 0x1
CO_FLAGS_AT = 48  # PyCodeObject.co_flags in 3.11, 3.12 and 3.13

KINDS = {0: 'code', 1: 'str', 2: 'bytes', 3: 'numbers', 4: 'numbers',
         5: 'numbers', 6: 'tuples', 7: 'tuples'}  # 7: slices (3.14 on)
GC_HEADED = (6, 7)  # format.md 5.1.6: a 16-byte GC head precedes them
ORDER = ('header', 'index', 'pool', 'loader-written tuples', 'load-only',
         'code: bodies',
         'code: functions', 'str', 'bytes', 'numbers', 'tuples',
         'segment tables')


def u32(b, o):
    return struct.unpack_from('<I', b, o)[0]


def u64(b, o):
    return struct.unpack_from('<Q', b, o)[0]


def regions(data):
    """(start, end, name) intervals of the file, by archive offset."""
    out = [(0, 1024, 'header')]
    nmod, entries = u32(data, 88), u64(data, 104)
    index_off, index_size = u64(data, 64), u64(data, 72)
    pool_off, pool_size = u64(data, 424), u64(data, 432)
    out.append((index_off, index_off + index_size, 'index'))
    out.append((pool_off, pool_off + pool_size, 'pool'))
    esize = 152
    for i in range(nmod):
        e = entries + esize * i
        seg, segsize = u64(data, e + 56), u64(data, e + 64)
        objsize, nobj = u32(data, e + 80), u32(data, e + 84)
        objtab, write_size = u32(data, e + 128), u32(data, e + 140)
        copy_off = u32(data, e + 112)
        tab = [u32(data, seg + objtab + 4 * k) for k in range(nobj)]
        starts = [v & ~7 for v in tab]
        for k, v in enumerate(tab):
            lo = starts[k] - (16 if v & 7 in GC_HEADED else 0)
            hi = (starts[k + 1] - (16 if tab[k + 1] & 7 in GC_HEADED else 0)
                  if k + 1 < nobj else objsize)
            kind = KINDS[v & 7]
            if lo < write_size:
                kind = 'loader-written tuples'
            elif lo >= copy_off:
                kind = 'load-only'
            elif kind == 'code':
                flags = u32(data, seg + starts[k] + CO_FLAGS_AT)
                kind = ('code: functions' if flags & CO_OPTIMIZED
                        else 'code: bodies')
            out.append((seg + lo, seg + hi, kind))
        out.append((seg + objsize, seg + segsize, 'segment tables'))
    return out


def page_owner(data, size):
    """The region name holding most bytes of each page."""
    npages = (size + PAGE - 1) // PAGE
    best = [dict() for _ in range(npages)]
    for lo, hi, name in regions(data):
        p = lo // PAGE
        while p * PAGE < hi and p < npages:
            a, b = max(lo, p * PAGE), min(hi, (p + 1) * PAGE)
            best[p][name] = best[p].get(name, 0) + (b - a)
            p += 1
    return [max(d, key=d.get) if d else 'segment tables' for d in best]


def main():
    if len(sys.argv) < 3:
        sys.exit('usage: pagemap.py ARCHIVE STATEMENT...')
    path = os.path.realpath(sys.argv[1])
    for stmt in sys.argv[2:]:
        exec(stmt, {'__name__': '__workload__'})
    with open(path, 'rb') as f:
        data = f.read()
    base, size = u64(data, 32), len(data)
    try:
        import _cds
        st = _cds.stats()
    except ImportError:
        st = {}
    if st.get('relocated') or not st.get('active'):
        sys.exit('pagemap.py: the archive must be active and mapped at its '
                 'base (SHARE, no PYCDSRELOCATE)')
    owner = page_owner(data, size)
    counts = {n: [0, 0, 0] for n in ORDER}
    with open('/proc/self/pagemap', 'rb') as f:
        f.seek((base // PAGE) * 8)
        raw = f.read(8 * len(owner))
    for p, name in enumerate(owner):
        v = struct.unpack_from('<Q', raw, 8 * p)[0]
        if not v >> 63 & 1:
            continue  # not resident
        c = counts[name]
        c[0] += 1
        if v >> 61 & 1:
            c[2] += 1  # a file page (page cache)
        else:
            c[1] += 1  # anonymous: a private copy
    print('archive %s: %d pages of %d KiB, served %s, copy mode %s'
          % (path, len(owner), PAGE // 1024, st.get('served'),
             st.get('copied')))
    print('%-24s %9s %9s %9s %7s' % ('region', 'resident', 'copied',
                                      'file', 'clean'))
    tot = [0, 0, 0]
    for n in ORDER:
        r, c, fl = counts[n]
        tot = [tot[0] + r, tot[1] + c, tot[2] + fl]
        if r:
            print('%-24s %9d %9d %9d %6.0f%%' % (n, r, c, fl, 100 * fl / r))
    print('%-24s %9d %9d %9d %6.0f%%' % ('total', *tot,
                                          100 * tot[2] / max(tot[0], 1)))


if __name__ == '__main__':
    main()
