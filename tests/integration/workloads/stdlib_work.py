# SPDX-License-Identifier: MIT
# A broad standard-library workload: the DESIGN.md import set plus a little
# real work with each module, printing deterministic results.
import asyncio, email.mime.multipart, http.client, json, argparse, typing, dataclasses, logging.handlers, unittest, xml.etree.ElementTree, urllib.request, decimal, pathlib, tomllib, concurrent.futures, sqlite3, csv, zipfile, tarfile, subprocess, inspect, pydoc  # noqa: E401,E501

import io
import sys

IMPORTS = ('asyncio email.mime.multipart http.client json argparse typing '
           'dataclasses logging.handlers unittest xml.etree.ElementTree '
           'urllib.request decimal pathlib tomllib concurrent.futures '
           'sqlite3 csv zipfile tarfile subprocess inspect pydoc').split()

# json round trip
doc = {'name': 'pycds', 'n': [1, 2.5, None, True], 'nested': {'k': 'v\u00e9'}}
text = json.dumps(doc, sort_keys=True)
print('json:', text, json.loads(text) == doc)

# decimal arithmetic
with decimal.localcontext() as ctx:
    ctx.prec = 30
    d = decimal.Decimal(1) / decimal.Decimal(7)
    print('decimal:', d, d.quantize(decimal.Decimal('0.0001')),
          decimal.Decimal('2').sqrt())


# dataclass and typing
@dataclasses.dataclass(order=True, frozen=True)
class Point:
    x: int
    y: int = 0
    tags: typing.Tuple[str, ...] = ()

    def norm2(self) -> int:
        return self.x * self.x + self.y * self.y


pts = sorted([Point(3, 4, ('a',)), Point(1), Point(3, 1)])
print('dataclass:', pts, [p.norm2() for p in pts],
      dataclasses.asdict(pts[-1]), dataclasses.replace(pts[0], y=9))
print('typing:', typing.get_type_hints(Point.norm2),
      typing.get_origin(typing.List[int]), typing.get_args(typing.Dict[str, int]))

# argparse
parser = argparse.ArgumentParser(prog='work', description='demo')
parser.add_argument('--count', type=int, default=1)
parser.add_argument('-v', '--verbose', action='store_true')
parser.add_argument('files', nargs='*')
ns = parser.parse_args(['--count', '3', '-v', 'a.txt', 'b.txt'])
print('argparse:', ns.count, ns.verbose, ns.files)
print('argparse help:', parser.format_usage().strip())

# ElementTree
root = xml.etree.ElementTree.fromstring(
    '<lib><book id="1"><t>Dune</t></book><book id="2"><t>Emma</t></book>'
    '</lib>')
print('xml:', [(b.get('id'), b.findtext('t')) for b in root.iter('book')],
      xml.etree.ElementTree.tostring(root.find('book'), encoding='unicode'))

# csv
buf = io.StringIO()
w = csv.writer(buf)
w.writerows([['a', 'b c', 'd,e'], [1, 2, 3]])
print('csv:', repr(buf.getvalue()), list(csv.reader(io.StringIO(buf.getvalue()))))

# sqlite3
con = sqlite3.connect(':memory:')
con.execute('create table t (k text primary key, v integer)')
con.executemany('insert into t values (?, ?)', [('x', 1), ('y', 2), ('z', 3)])
print('sqlite3:', con.execute('select k, v * 10 from t where v > 1 order by k').fetchall(),
      con.execute('select sum(v) from t').fetchone())
con.close()

# email
msg = email.mime.multipart.MIMEMultipart(boundary='BOUNDARY')
msg['Subject'] = 'hello'
msg['To'] = 'a@example.com'
from email.mime.text import MIMEText  # noqa: E402
msg.attach(MIMEText('body text'))
print('email:', msg.as_string().splitlines()[:6])

# http.client, urllib.request (no network)
print('http:', http.client.responses[404], http.client.HTTPConnection('example.com', 8080).port)
req = urllib.request.Request('http://example.com/a?b=c', data=b'x', headers={'X-A': '1'})
print('urllib:', req.full_url, req.get_method(), req.host, sorted(req.header_items()))

# logging.handlers
stream = io.StringIO()
logger = logging.getLogger('work')
logger.propagate = False
target = logging.StreamHandler(stream)
target.setFormatter(logging.Formatter('%(levelname)s:%(name)s:%(message)s'))
mem = logging.handlers.MemoryHandler(capacity=10, target=target)
logger.addHandler(mem)
logger.warning('first %d', 1)
logger.error('second')
mem.flush()
print('logging:', stream.getvalue().splitlines())


# unittest
class T(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(1 + 1, 2)

    def test_fail(self):
        self.assertIn('q', 'abc')


suite = unittest.defaultTestLoader.loadTestsFromTestCase(T)
res = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
print('unittest:', res.testsRun, len(res.failures), len(res.errors))

# pathlib, tomllib
p = pathlib.PurePosixPath('/srv/app/conf/settings.toml')
print('pathlib:', p.parent.name, p.suffix, p.with_suffix('.json').name,
      p.relative_to('/srv'))
print('tomllib:', tomllib.loads('title = "x"\n[owner]\nname = "T"\nn = [1, 2]\n'))

# concurrent.futures and asyncio
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
    print('futures:', list(ex.map(lambda v: v * v, range(6))))


async def square(v):
    await asyncio.sleep(0)
    return v * v


async def amain():
    return await asyncio.gather(*(square(i) for i in range(5)))


print('asyncio:', asyncio.run(amain()))

# zipfile, tarfile
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, 'w', zipfile.ZIP_DEFLATED) as zf:
    zf.writestr('a.txt', 'alpha ' * 50)
    zf.writestr('dir/b.txt', 'beta')
with zipfile.ZipFile(io.BytesIO(zbuf.getvalue())) as zf:
    print('zipfile:', zf.namelist(), zf.read('dir/b.txt'), zf.testzip())
tbuf = io.BytesIO()
with tarfile.open(fileobj=tbuf, mode='w:gz') as tf:
    data = b'tar member data'
    info = tarfile.TarInfo('m.bin')
    info.size = len(data)
    info.mtime = 0
    tf.addfile(info, io.BytesIO(data))
tbuf.seek(0)
with tarfile.open(fileobj=tbuf, mode='r:gz') as tf:
    print('tarfile:', tf.getnames(), tf.extractfile('m.bin').read())

# subprocess (a child interpreter, which inherits the environment)
out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'],
                     capture_output=True, text=True, check=True).stdout
print('subprocess:', out.strip())


# inspect, pydoc
def sample(a, b: int = 2, *args, key=None, **kw) -> str:
    """Return a sample."""
    return '%s%s' % (a, b)


print('inspect:', inspect.signature(sample), inspect.getdoc(sample),
      inspect.getsource(sample).splitlines()[0],
      inspect.getmodule(json.dumps).__name__,
      inspect.getsourcelines(json.dumps)[1] > 0)
print('pydoc:', pydoc.plain(pydoc.render_doc(json.dumps,
                                             renderer=pydoc.plaintext)).splitlines()[2])
print('modules:', [n for n in IMPORTS if n not in sys.modules])
print('done')
