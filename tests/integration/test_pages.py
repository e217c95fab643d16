# SPDX-License-Identifier: MIT
"""Which of the archive's pages a SHARE run writes (issue 9, format 4).

On 3.12 and later the trace list also holds '@' records of the functions
that ran (argparse's parse_args, not print_help).

A workload of stdlib modules runs under SHARE; the program reads
/proc/self/smaps at the end and reports, for the archive's mapping, the
resident KiB and how many of them are private copies (Anonymous), with the
default prefault and with PYCDSPREFAULT=0 and =all.  The output must be
stock's in every arm.

- Everywhere: PYCDSPREFAULT=all makes every resident page of the
  mapping dirty (the whole block copied, header and index too).
- Everywhere at the base, in every arm (format 7): every module body is
  handed out as a heap copy, and no whole page of a loaded segment's
  load-only region is resident after the run.
- On an interpreter with immortal objects (3.12, 3.13) that is not PIE
  and maps the archive at its base (Debian's): most resident pages stay
  the file's, at least a third on this small workload (the pool and
  the index weigh more than on a large one), with the default prefault (what the writer
  guesses will be written is copied) and without prefault (what was
  actually written); the default copies no more than a tenth of the
  mapping beyond what PYCDSPREFAULT=0 dirties.  With an archive traced
  from more modules than the program imports, no page of the blocks of
  the others is resident (no fault-around into them).
- Relocated, or on 3.11 or a PIE build, where loading writes nearly
  every page: copy mode, segments read into anonymous memory (every
  resident page of the mapping anonymous), but on 3.11 at its base,
  where the bytes objects' pages stay the file's and leave the resident
  set after loading (fewer pages resident than with the file mapped and
  populated, some of them the file's); PYCDSPREFAULT=all and
  =0 map the file instead.
"""
import cdstest

WORKLOAD = r'''
import json, email.message, email.parser, argparse, decimal, fractions
import logging, string, textwrap, difflib, csv, ipaddress, pathlib
m = email.message.EmailMessage()
m['Subject'] = 'pages'
m.set_content('x' * 10)
print(len(email.parser.Parser().parsestr(m.as_string()).get_payload()))
print(json.dumps({'a': [1, 2.5, None]}, sort_keys=True))
print(decimal.Decimal('1.1') + decimal.Decimal('2.2'), fractions.Fraction(3, 6))
print(textwrap.fill('word ' * 20, 30).count('\n'))
print(list(difflib.unified_diff(['a\n', 'b\n'], ['a\n', 'c\n']))[-1].strip())
print(ipaddress.ip_network('10.0.0.0/30').num_addresses)
p = argparse.ArgumentParser(prog='p')
p.add_argument('--n', type=int, default=3)
print(p.parse_args([]).n)
'''

# modules main.py does not import, traced first: their blocks come
# before and between the workload's in the archive
WIDE = '''import tomllib, zipfile, tarfile, plistlib, calendar, gettext
import shlex, statistics, uuid, configparser, pprint, dataclasses
'''

REPORT = r'''
import os, sys
arch = relocated = None
try:
    import _cds
    if os.environ.get('PYCDSMODE') == 'SHARE':
        arch = os.path.realpath(os.environ['PYCDSARCHIVE'])
        relocated = _cds.stats().get('relocated')
except ImportError:
    pass
# the archive's address range: at its base (the header's base_address,
# offset 32) unless relocated; by file name otherwise.  In copy mode the
# range is anonymous memory, no longer the file's mapping.
lo = hi = 0
if arch and os.path.isfile(arch):
    with open(arch, 'rb') as f:
        head = f.read(40)
    lo = int.from_bytes(head[32:40], 'little')
    hi = lo + os.path.getsize(arch)
rss = copied = 0
cur = False
for line in open('/proc/self/smaps'):
    f = line.split()
    if '-' in f[0] and len(f) >= 5:
        start, end = (int(x, 16) for x in f[0].split('-'))
        cur = (f[-1] == arch if relocated
               else arch is not None and start < hi and end > lo)
    elif cur and f[0] == 'Rss:':
        rss += int(f[1])
    elif cur and f[0] == 'Anonymous:':
        # private copies: a page of a file on tmpfs counts as dirty even
        # when nothing wrote it, but only a copy is anonymous
        copied += int(f[1])
copy_mode = _cds.stats().get('copied') if arch else None
mapped = _cds.stats().get('bytes_mapped') if arch else None
# the whole pages of each loaded segment's load-only region, [copy_off,
# objects_size) (format.md 5): resident ones, by /proc/self/pagemap
# and the whole pages of the blocks of modules the program did not import
lonly = lres = unused = ures = 0
if arch and not relocated:
    with open(arch, 'rb') as f:
        img = f.read()
    u = lambda o, n: int.from_bytes(img[o:o + n], 'little')
    nmod, ents = u(88, 4), u(104, 8)
    names = set(sys.modules)
    with open('/proc/self/pagemap', 'rb') as pm:
        for i in range(nmod):
            e = ents + 152 * i
            name = img[u(e + 8, 4) + u(112, 8):][:u(e + 12, 4)].decode()
            seg, objs, cpo = u(e + 56, 8), u(e + 80, 4), u(e + 112, 4)
            if name not in names:
                size = u(e + 64, 8)
                for pg in range((lo + seg + 4095) // 4096,
                                (lo + seg + size) // 4096):
                    pm.seek(8 * pg)
                    unused += 1
                    ures += int.from_bytes(pm.read(8), 'little') >> 63
                continue
            p0 = (lo + seg + cpo + 4095) // 4096
            p1 = (lo + seg + objs) // 4096
            for pg in range(p0, p1):
                pm.seek(8 * pg)
                lonly += 1
                lres += int.from_bytes(pm.read(8), 'little') >> 63
st = _cds.stats() if arch else {}
with open('pages.txt', 'w') as out:
    out.write('PAGES rss=%d dirty=%d relocated=%s copied=%s mapped=%s '
              'lonly=%d lres=%d bodies=%s loaded=%s unused=%d ures=%d\n'
              % (rss, copied, relocated, copy_mode, mapped, lonly, lres,
                 st.get('bodies_copied'), st.get('segments_loaded'),
                 unused, ures))
'''

INFO = r'''
import sys
with open('/proc/self/exe', 'rb') as f:
    head = f.read(18)
print(sys.version_info[0], sys.version_info[1], head[16])
'''


def pages(t):
    try:
        text = t.read('pages.txt')
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('PAGES '):
            kv = dict(x.split('=', 1) for x in line.split()[1:])
            return (int(kv['rss']), int(kv['dirty']), kv['relocated'],
                    kv['copied'], kv['mapped'], int(kv['lonly']),
                    int(kv['lres']), kv['bodies'], kv['loaded'],
                    int(kv['unused']), int(kv['ures']))
    return None


def main():
    t = cdstest.Case('pages')
    main_py = t.write('main.py', WORKLOAD + REPORT)
    info = t.stock(['-c', INFO]).out.split()
    major, minor, etype = int(info[0]), int(info[1]), int(info[2])
    immortal = (major, minor) >= (3, 12)
    pie = etype == 3  # ET_DYN; Debian's interpreters are ET_EXEC (2)
    stock = t.stock([main_py])
    t.check(stock.rc == 0, 'stock run', stock)
    # the archive lives where the test's files do; tmpfs or not, private
    # copies are what smaps counts as Anonymous
    t.build([main_py])
    # 3.12 on: the trace records the functions that ran (docs/usage.md)
    ran = [q for _, _, q in t.read_ran()]
    if immortal:
        t.check('ArgumentParser.parse_args' in ran and
                'ArgumentParser.print_help' not in ran,
                'the trace records functions that ran (%d), not the others'
                % len(ran))
    else:
        t.check(not ran, '3.11: the trace records module names only')
    runs = {}
    for pf in ('', '0', 'all'):
        r = t.share([main_py], env={'PYCDSPREFAULT': pf} if pf else None)
        what = 'PYCDSPREFAULT=%s' % (pf or '(default)')
        t.check_same(stock, r, what)
        t.check('json' in r.served, '%s: json served' % what, r)
        p = pages(t)
        t.check(p is not None and p[0] > 0,
                '%s: the archive is mapped and resident' % what, r)
        runs[pf] = p
        print('%s: %s KiB resident, %s copied, relocated %s, copy mode '
              '%s, bytes mapped %s; load-only pages %s, %s resident; '
              'bodies copied %s of %s segments'
              % (what, *(p or ('?',) * 11)[:9]))
        if p is not None and p[2] == 'False':
            # every module body ran from a heap copy, and the archive's
            # pages of it are gone (format.md 8, steps 6 and 7)
            t.check(p[7] == p[8] and p[7] != '0' and p[5] > 0 and
                    p[6] == 0,
                    '%s: every body handed out as a copy (%s of %s), none '
                    'of the %d load-only pages resident (%d)'
                    % (what, p[7], p[8], p[5], p[6]))
    if any(p is None for p in runs.values()):
        t.finish()
    rss, dirty = runs['all'][:2]
    t.check(dirty == rss, 'PYCDSPREFAULT=all: every resident page is a '
            'private copy (%d of %d KiB)' % (dirty, rss))
    relocated = runs[''][2]
    if immortal and not pie and relocated == 'False':
        # the pool and the index are private anyway: on a workload this
        # small they weigh more than on sympy's (docs/benchmarks.md)
        for pf in ('', '0'):
            rss, dirty = runs[pf][:2]
            t.check(dirty * 3 <= rss * 2,
                    'PYCDSPREFAULT=%s: at least a third of the archive\'s '
                    'resident pages are still the file\'s (%d of %d KiB '
                    'copied)' % (pf or '(default)', dirty, rss))
        t.check(runs[''][1] - runs['0'][1] <= runs[''][0] // 10,
                'the default prefault copies little beyond what is '
                'written (%d KiB against %d KiB)' % (runs[''][1],
                                                     runs['0'][1]))
        t.check(runs[''][3] == 'False', 'no copy mode: the pages are '
                'shared with the file')
        # an archive traced from more than the program imports (a list
        # several workloads were traced into, docs/usage.md): the blocks
        # of the modules it never imports stay out of the resident set,
        # though the kernel's fault-around maps a file's cached pages
        # around a faulting one (cds_archive_guard_segments)
        wide = t.write('wide.py', WIDE + t.read('main.py'))
        t.build([wide], lst='wide.lst', archive='wide.img')
        r = t.share([main_py], archive='wide.img')
        t.check_same(stock, r, 'an archive of more modules than imported')
        p = pages(t)
        t.check(p is not None and p[9] > 0 and p[10] == 0,
                'none of the %s pages of the blocks of modules not '
                'imported is resident (%s)'
                % (p and p[9], p and p[10]), r)
    else:
        # copy mode: every page is written anyway, so segments are read
        # into anonymous memory and nothing of the file stays mapped
        t.check(runs[''][3] == 'True', 'the default reads segments into '
                'anonymous memory (copy mode)')
        if not immortal and not pie and relocated == 'False':
            # 3.11 at its base: the bytes objects' pages stay the file's
            # and leave the resident set after loading (those read again
            # come back from the page cache, not copied), the rest is
            # read in: fewer resident pages than with the file mapped and
            # populated (=all)
            t.check(runs[''][4] == 'True', '3.11 at the base: copy mode '
                    'leaves the bytes pages mapped from the file')
            t.check(runs[''][0] < runs['all'][0] and
                    runs[''][1] < runs[''][0],
                    'copy mode with the bytes mapped: %d KiB resident '
                    '(=all: %d), %d of them copies'
                    % (runs[''][0], runs['all'][0], runs[''][1]))
        else:
            t.check(runs[''][4] == 'False', 'relocated or PIE: no bytes '
                    'page stays mapped (their types are patched)')
            t.check(runs[''][1] == runs[''][0], 'copy mode: every '
                    'resident page is anonymous (%d of %d KiB)'
                    % runs[''][:2])
        t.check(runs['all'][3] == 'False' and runs['0'][3] == 'False',
                'PYCDSPREFAULT=all and =0 map the file (no copy mode)')
        print('skip: the clean-page checks need a non-PIE 3.12+ '
              'interpreter mapping the archive at its base (%d.%d, %s, '
              'relocated %s)' % (major, minor, 'PIE' if pie else 'non-PIE',
                                 relocated))
    t.finish()


if __name__ == '__main__':
    main()
