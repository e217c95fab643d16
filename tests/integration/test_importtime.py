# SPDX-License-Identifier: MIT
"""python -X importtime works under SHARE: the program's output is as
stock, the import-time table is well formed and lists every module the
stock run lists, including those served from the archive."""
import re

import cdstest

APP = '''\
import json
import decimal
import argparse
import email.message
import localmod
print(json.dumps({'v': localmod.VALUE}), decimal.Decimal('0.1') * 3,
      argparse.Namespace(a=1), email.message.Message().get_content_type())
'''

LINE = re.compile(r'^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$')
HEAD = 'import time: self [us] | cumulative | imported package'


def table(t, res, what):
    """Module names of the -X importtime lines; checks their form."""
    lines = [l for l in res.err_lines if l.startswith('import time:')]
    bad = [l for l in lines if l != HEAD and not LINE.match(l)]
    t.check(lines and lines[0] == HEAD and not bad,
            '%s: the import-time table is well formed' % what, bad[:5], res)
    return [LINE.match(l).group(4) for l in lines if LINE.match(l)]


def main():
    t = cdstest.Case('importtime')
    t.write('localmod.py', "VALUE = 'local'\n")
    app = t.write('app.py', APP)
    t.build([app])
    names = set(t.read_list())
    t.check({'json', 'decimal', 'argparse', 'email.message',
             'localmod'} <= names, 'trace lists the app modules', names)
    for what, args, env in (
            ('-X importtime', ['-X', 'importtime', app], None),
            ('PYTHONPROFILEIMPORTTIME=1', [app],
             {'PYTHONPROFILEIMPORTTIME': '1'})):
        stock = t.stock(args, env=env)
        share = t.share(args, env=env)
        t.check(stock.rc == 0 and 'local' in stock.out, 'stock %s run' % what,
                stock)
        t.check_equal(share.out, stock.out, '%s: stdout same as stock' % what,
                      share)
        t.check_equal(share.rc, stock.rc, '%s: exit status same' % what,
                      share)
        want = table(t, stock, 'stock ' + what)
        got = table(t, share, 'share ' + what)
        missing = [n for n in want if n not in got]
        t.check(not missing, '%s: every module of the stock table is in '
                'the share table' % what, missing)
        for name in ('json', 'json.decoder', 'decimal', 'argparse',
                     'email.message', 'localmod'):
            t.check(name in got and name in share.served,
                    '%s: %s served and in the table' % (what, name), share)
        other = [l for l in share.err_lines if not l.startswith('pycds: ')
                 and not l.startswith('import time:')]
        t.check(not other, '%s: nothing else on stderr' % what, other)
    t.finish()


if __name__ == '__main__':
    main()
