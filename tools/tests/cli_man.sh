#!/bin/sh
# SPDX-License-Identifier: MIT
# The generated man page and bash completion (tools/gen_man.py): the page
# renders without warnings and names every command of --help; the
# completion completes commands, options and help's operand; both are
# installed by cmake --install.
#   sh cli_man.sh PYCDS BUILD_DIR WORKDIR
set -u
PYCDS=$1
BUILD=$2
WORK=$3
failures=0

. "$(dirname "$0")/cli_lib.sh"

rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 1
page=$BUILD/tools/pycds.1
comp=$BUILD/tools/pycds.bash
[ -s "$page" ] || fail "no $page"
[ -s "$comp" ] || fail "no $comp"

commands=$("$PYCDS" --help | sed -n 's/^  pycds \([a-z]*\) .*/\1/p')
[ -n "$commands" ] || fail "pycds --help lists no command"
if command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1; then
    LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$page" >page.txt \
        2>page.err || fail "man -l exited $?"
    [ -s page.err ] && { fail "man -l warns"; show page.err; }
    for c in $commands; do
        grep -q "^   $c\$" page.txt || fail "man page: no section for $c"
        grep -q "pycds $c" page.txt || fail "man page: no usage of $c"
    done
    for v in PYCDSMODE PYCDSARCHIVE PYCDSSTATS PYCDSPACKAGES; do
        grep -q "$v" page.txt || fail "man page: no $v"
    done
else
    echo "note: man or groff missing: the page is not rendered"
fi

# complete WORDS...: what _pycds offers for the last word
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
             _pycds; echo "${COMPREPLY[*]}"' bash "$comp" "$@"
}
check_completion() { # want words...
    want=$1
    shift
    got=$(complete_words "$@")
    [ "$got" = "$want" ] || fail "completion of '$*': '$got', not '$want'"
}
check_completion "dump" pycds du
check_completion "stats" pycds st
check_completion "--package --path --python" pycds dump --p
check_completion "--json" pycds inspect --j
check_completion "--auto" pycds run heap.img --a
check_completion "verify" pycds help ve
check_completion "" pycds run heap.img -- python3 --a

# installed with the rest (staged with DESTDIR: _cds and pycds.pth go to
# the interpreter's absolute site directory)
DESTDIR="$WORK/inst" cmake --install "$BUILD" >install.out 2>&1 ||
    { fail "cmake --install exited $?"; show install.out; }
[ "$(find inst -path '*/share/man/man1/pycds.1' -size +0 | wc -l)" -eq 1 ] ||
    { fail "man page not installed"; show install.out; }
[ "$(find inst -path '*/share/bash-completion/completions/pycds' -size +0 |
    wc -l)" -eq 1 ] || { fail "completion not installed"; show install.out; }

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files in $WORK" >&2
    exit 1
fi
rm -rf "$WORK"
echo "cli_man: ok"
