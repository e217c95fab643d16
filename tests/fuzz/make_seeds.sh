#!/bin/sh
# SPDX-License-Identifier: MIT
# Seed corpus for fuzz_archive (docs/fuzzing.md), made with the real
# pipeline: PYCDSMODE=TRACE and DUMP of the build tree's _cds on tiny
# programs, plus the synthetic archives of make_synth.
#
#   make_seeds.sh OUT SITE PYTHON MAKE_SYNTH
#
# OUT/img/*.img     the archives as written
# OUT/small/*       fuzzer inputs of at most 64 KiB (fuzz_short's -max_len)
# OUT/large/*       fuzzer inputs of real programs' archives, 0.5-2 MB
#
# A fuzzer input is a mode byte and an archive (fuzz_archive.c): each
# archive becomes NAME.plain (mode 0: checksums as written) and
# NAME.reseal (mode 1: the fuzzer recomputes them after mutating).
set -eu

if [ $# -ne 4 ]; then
    echo "usage: $0 OUT SITE PYTHON MAKE_SYNTH" >&2
    exit 2
fi
out=$1 site=$2 python=$3 synth=$4
small_max=65536

case $out in
/*) ;;
*) out=$PWD/$out ;;
esac
case $site in
/*) ;;
*) site=$PWD/$site ;;
esac
if [ ! -f "$site/sitecustomize.py" ]; then
    echo "$0: $site has no sitecustomize.py: build the project first" >&2
    exit 1
fi
rm -rf "$out/img" "$out/small" "$out/large" "$out/src"
mkdir -p "$out/img" "$out/small" "$out/large" "$out/src/pkg"
cd "$out/src"

# dump LIST ARCHIVE: the modules of LIST, from here (sys.path[0] = .)
dump() {
    PYTHONPATH=$site PYCDSMODE=DUMP PYCDSLIST=$1 PYCDSARCHIVE=$2 \
        "$python" </dev/null
}

# trace NAME CODE: the modules CODE imports, dumped to NAME.img
trace() {
    rm -f "$1.lst"
    PYTHONPATH=$site PYCDSMODE=TRACE PYCDSLIST=$1.lst "$python" -c "$2"
    dump "$1.lst" "$out/img/$1.img"
}

# A module with one constant of every archived kind, a frozenset, a
# non-ASCII and a UCS-4 string, nested code, and a package around it.
cat >tinymod.py <<'EOF'
"""A tiny module for the fuzzer's seeds."""
X = 1234567 ** 3
S = "hello, world"
B = b"\x00bytes\xff"
F = 2.5
C = 1 + 2j
T = (1, "two", 3.0, (None, True, ...), -7, 300)


def f(a, b=2, *args, k=None, **kw):
    """A docstring."""
    return (a + b, X, S, [k], kw, "\u00e9t\u00e9", "\U0001f600", "\u0100")


def g(x):
    return x in {"a", "b", "c"} or x in {1, 2} or x in frozenset()


class K:
    def m(self):
        return lambda y: y * X
EOF
cat >pkg/__init__.py <<'EOF'
from . import sub
EOF
cat >pkg/sub.py <<'EOF'
VALUE = ("sub", 2 ** 70)
EOF

: >empty.lst
dump empty.lst "$out/img/empty.img"
echo tinymod >tiny.lst
dump tiny.lst "$out/img/tiny.img"
printf 'pkg\npkg.sub\ntinymod\n' >pkg.lst
dump pkg.lst "$out/img/pkg.img"
echo json >json.lst
dump json.lst "$out/img/json-only.img"
printf 'json\njson.decoder\njson.scanner\njson.encoder\n' >jsonpkg.lst
dump jsonpkg.lst "$out/img/json-pkg.img"
trace json 'import json'
trace email 'import email, email.message, email.parser'
trace decimal 'import decimal, fractions'
"$synth" "$out/img"

for img in "$out"/img/*.img; do
    name=$(basename "$img" .img)
    size=$(wc -c <"$img")
    if [ "$size" -lt "$small_max" ]; then
        dir=$out/small
    else
        dir=$out/large
    fi
    { printf '\000'; cat "$img"; } >"$dir/$name.plain"
    { printf '\001'; cat "$img"; } >"$dir/$name.reseal"
done
echo "$0: $(ls "$out/small" | wc -l) small and $(ls "$out/large" | wc -l)" \
     "large seeds in $out"
