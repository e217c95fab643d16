#!/bin/sh
# SPDX-License-Identifier: MIT
# The CLI and the interpreters a COMMAND starts (issue 6): -v notes a
# COMMAND whose Python processes may replace PYTHONPATH.
#   sh cli_interpreters.sh PYCDS PYTHON WORKDIR
set -u
PYCDS=$1
PYTHON=$2
WORK=$3
failures=0
skipped=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

show() {
    sed "s|^|  $1: |" "$1" >&2
}

# check_has FILE TEXT WHAT: FILE holds TEXT (fixed string)
check_has() {
    grep -qF -- "$2" "$1" || { fail "$3: no '$2'"; show "$1"; }
}

unset PYCDSMODE PYCDSLIST PYCDSARCHIVE PYCDSRELOCATE PYCDSVERBOSE PYCDSBASE
unset PYTHONPATH
rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 1

cat >app.py <<'EOF'
import json
open('ran', 'w').close()
print('app ran')
EOF

"$PYCDS" trace -o heap.lst -- "$PYTHON" app.py 2>err ||
    { fail "trace exited $?"; show err; }
"$PYCDS" dump heap.lst -o heap.img 2>dump.err ||
    { fail "dump exited $?"; show dump.err; exit 1; }

# --- COMMAND that starts Python processes with their own PYTHONPATH
# (build-tree activation only: an installed pycds.pth does not need it)
if [ -e "$(dirname "$PYCDS")/../site/sitecustomize.py" ]; then
    for c in run trace; do
        if [ $c = run ]; then
            set -- run heap.img
            verb=served
        else
            set -- trace -o heap.lst
            verb=traced
        fi
        "$PYCDS" "$@" -v -- sh -c "PYTHONPATH=/tmp '$PYTHON' app.py" \
            >out 2>err || { fail "$c -v -- sh -c: exit $?"; show err; }
        [ "$(grep -c '^pycds: '$c': note: ' err)" -eq 1 ] &&
            check_has err "pycds: $c: note: COMMAND sets PYTHONPATH: Python processes with a PYTHONPATH of their own are not $verb; install pycds (cmake --install) or keep" \
                "$c -v -- sh -c" ||
            { fail "$c -v -- sh -c 'PYTHONPATH=...': no one note"; show err; }
        check_has err "pycds: $c: activation: " "$c -v"
        "$PYCDS" "$@" -- sh -c "PYTHONPATH=/tmp '$PYTHON' app.py" \
            >out 2>err || { fail "$c -- sh -c: exit $?"; show err; }
        [ -s err ] && { fail "$c -- sh -c without -v printed something"; show err; }
        "$PYCDS" "$@" -v -- sh -c "'$PYTHON' app.py" >out 2>err
        check_has err "note: COMMAND is not a Python interpreter" \
            "$c -v -- sh -c"
        "$PYCDS" "$@" -v -- "$PYTHON" app.py >out 2>err
        grep -q 'note:' err && { fail "$c -v -- $PYTHON: a note"; show err; }
    done
else
    echo "cli_interpreters: skipped the PYTHONPATH notes: no build-tree activation"
    skipped=$((skipped + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files in $WORK" >&2
    exit 1
fi
echo "cli_interpreters: ok ($skipped case(s) skipped)"
