#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package (issue 10, item 7): build it with CPack's DEB
# generator for Debian bookworm's /usr/bin/python3.11, check what it
# holds, install it with apt in a bare bookworm chroot (python3.11 and
# nothing to build with: a user's machine), and there, as a user would:
# pycds --version, man page and completion in place, trace, dump and run
# a program through the installed command, a plain python3.11 honouring
# PYCDSMODE with no PYTHONPATH; then purge it and check nothing is left.
#   tests/package/test_deb.sh BUILD_DIR
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath -m "${1:-$top/build/test-deb}")
cd "$top"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

cmake -S "$top" -B "$build" -DPYCDS_PYTHON=/usr/bin/python3.11 \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr \
    -DPYCDS_SITE_DIR=/usr/lib/python3/dist-packages >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
rm -f "$build"/pycds_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/pycds_*.deb)
echo "package: $deb"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/pycds ./usr/share/man/man1/pycds.1 \
    ./usr/share/bash-completion/completions/pycds \
    ./usr/lib/python3/dist-packages/pycds.pth \
    ./usr/lib/python3/dist-packages/_cds.cpython-311-x86_64-linux-gnu.so; do
    grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done
depends=$(dpkg-deb --field "$deb" Depends)
grep -q 'python3.11 (>= 3.11' <<<"$depends" ||
    fail "Depends names no python3.11: $depends"

# in the chroot: install, use, purge (the script runs there)
inside=$(cat <<'SCRIPT'
set -u
deb=$1
failures=0
fail() { echo "FAIL (chroot): $*" >&2; failures=$((failures + 1)); }
apt-get purge -y -qq pycds >/dev/null 2>&1 || true
apt-get install -y -qq "$deb" >/tmp/apt.log 2>&1 ||
    { fail "apt-get install $deb"; tail -20 /tmp/apt.log >&2; exit 1; }
pycds --version | grep -q '^pycds ' || fail "pycds --version"
[ -s /usr/share/man/man1/pycds.1 ] || fail "no man page"
[ -s /usr/share/bash-completion/completions/pycds ] || fail "no completion"
mkdir -p /tmp/app && cd /tmp/app || exit 1
printf 'V = 7\n' >mymod.py
printf 'import json, mymod\nprint(json.dumps([mymod.V]))\n' >app.py
want=$(python3.11 app.py)
pycds trace -o heap.lst -- python3.11 app.py >/dev/null ||
    fail "pycds trace"
grep -qx mymod heap.lst || fail "mymod not traced"
pycds dump heap.lst -o heap.img 2>/tmp/dump.err || {
    fail "pycds dump"; cat /tmp/dump.err >&2; }
got=$(env -u PYTHONPATH PYCDSMODE=SHARE PYCDSARCHIVE=heap.img \
      PYCDSVERBOSE=1 python3.11 app.py 2>/tmp/share.err)
[ "$got" = "$want" ] || fail "SHARE printed '$got', not '$want'"
grep -q '^pycds: mymod: served from archive$' /tmp/share.err ||
    { fail "a plain python3.11 did not serve mymod"; cat /tmp/share.err >&2; }
grep -q '^pycds: warning:' /tmp/share.err && fail "SHARE warned"
got=$(pycds run heap.img -- python3.11 app.py) || fail "pycds run"
[ "$got" = "$want" ] || fail "pycds run printed '$got'"
apt-get purge -y -qq pycds >/dev/null 2>&1 || fail "apt-get purge"
for f in /usr/bin/pycds /usr/lib/python3/dist-packages/pycds.pth; do
    [ -e "$f" ] && fail "$f left after purge"
done
python3.11 -c 'import _cds' 2>/dev/null && fail "_cds left after purge"
exit "$failures"
SCRIPT
)
scripts/chroot.sh bookworm run bash -c "$inside" inside "$deb" ||
    fail "in the bookworm chroot (above)"
if [ "$failures" -ne 0 ]; then
    echo "test_deb: $failures failure(s)" >&2
    exit 1
fi
echo "test_deb: ok"
