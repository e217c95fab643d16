# SPDX-License-Identifier: MIT
"""Trust (issue 3, item 5): an archive is code.  SHARE refuses, with one
warning and the normal import system, an archive that someone other than
its owner or root could have written: a group- or world-writable file, a
file owned by another user, or one in a directory others can write
(sticky directories such as /tmp excepted), as ssh does for keys.  The
writer never makes such a file, whatever the umask."""
import os
import shutil
import stat

import cdstest

MAIN = cdstest.STATS_HOOK + '''\
import json, csv
print(json.dumps([1, 2]), csv.QUOTE_ALL)
'''


def main():
    t = cdstest.Case('trust')
    app = t.write('app.py', MAIN)
    t.build([app])
    stock = t.stock([app])
    img = t.path('heap.img')
    mode = stat.S_IMODE(os.stat(img).st_mode)
    t.check(mode & 0o022 == 0, 'the dump wrote no group/world write bit',
            oct(mode))
    d = t.dump(env={'PYCDSARCHIVE': t.path('loose.img')},
               args=[], cwd=None)
    r = t.run(['-c', 'import os; os.umask(0); os.execvp(os.sys.executable, '
               '[os.sys.executable])'], what='dump umask 0',
              env={'PYCDSMODE': 'DUMP', 'PYCDSLIST': t.path('heap.lst'),
                   'PYCDSARCHIVE': t.path('umask0.img')})
    t.check(d.rc == 0 and r.rc == 0 and
            stat.S_IMODE(os.stat(t.path('umask0.img')).st_mode) == 0o644,
            'with umask 0 the archive is still 0644',
            oct(stat.S_IMODE(os.stat(t.path('umask0.img')).st_mode)))

    ok = t.share([app])
    t.check_same(stock, ok, 'a private archive')
    t.check('json' in ok.served and not ok.warnings, 'served', ok)

    def refused(what, archive):
        r = t.share([app], archive=archive)
        t.check_same(stock, r, what)
        t.check_one_warning(r, what)
        t.check(not r.served and 'not trusted' in r.err, what +
                ': nothing served, the warning says why', r)

    shutil.copy(img, t.path('gw.img'))
    os.chmod(t.path('gw.img'), 0o664)
    refused('group-writable archive', 'gw.img')
    shutil.copy(img, t.path('ww.img'))
    os.chmod(t.path('ww.img'), 0o646)
    refused('world-writable archive', 'ww.img')
    if os.geteuid() == 0:
        shutil.copy(img, t.path('other.img'))
        os.chown(t.path('other.img'), 65534, 65534)
        refused('archive owned by another user', 'other.img')
    os.makedirs(t.path('open'))
    os.chmod(t.path('open'), 0o777)
    shutil.copy(img, t.path('open', 'heap.img'))
    refused('archive in a world-writable directory', 'open/heap.img')
    os.makedirs(t.path('sticky'))
    os.chmod(t.path('sticky'), 0o1777)
    shutil.copy(img, t.path('sticky', 'heap.img'))
    s = t.share([app], archive='sticky/heap.img')
    t.check_same(stock, s, 'archive in a sticky directory (like /tmp)')
    t.check('json' in s.served and not s.warnings,
            'sticky directory: served', s)
    os.symlink(t.path('open', 'heap.img'), t.path('link.img'))
    refused('symbolic link to an archive in an open directory', 'link.img')
    return t.finish()


if __name__ == '__main__':
    main()
