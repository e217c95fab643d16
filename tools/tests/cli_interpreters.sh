#!/bin/sh
# SPDX-License-Identifier: MIT
# The CLI with interpreters pycds is and is not built for (issue 6):
# trace probes a Python COMMAND and refuses one pycds cannot work in (exit
# 1, one line, the program not run); dump passes the hook's message on;
# run never fails for it, and says so under -v; -v notes a COMMAND whose
# Python processes may replace PYTHONPATH.  The foreign interpreters are
# pyenv's 3.11.7 and 3.12.1: absent ones are skipped, and said so.
#   sh cli_interpreters.sh PYCDS PYTHON WORKDIR SUPPORTED
# SUPPORTED: the versions the build supports, as its messages say them
# ("3.11, 3.12 and 3.13": CMake's PYCDS_SUPPORTED_TEXT).
set -u
PYCDS=$1
PYTHON=$2
WORK=$3
SUPPORTED=$4
failures=0
skipped=0

. "$(dirname "$0")/cli_lib.sh"

# exactly one line, starting "pycds: ", in file $1
check_one_line() {
    [ "$(wc -l <"$1")" -eq 1 ] && grep -q '^pycds: ' "$1"
}

# check_has FILE TEXT WHAT: FILE holds TEXT (fixed string)
check_has() {
    grep -qF -- "$2" "$1" || { fail "$3: no '$2'"; show "$1"; }
}

rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 1

cat >app.py <<'EOF'
import json
open('ran', 'w').close()
print('app ran')
EOF
built_version=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')
pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}

# --- the interpreter pycds is built for: probed, and traced
rm -f ran heap.lst
"$PYCDS" trace -v -o heap.lst -- "$PYTHON" app.py >out 2>err ||
    { fail "trace with $PYTHON exited $?"; show err; }
[ -e ran ] || fail "trace with $PYTHON did not run the program"
grep -qx json heap.lst || { fail "trace with $PYTHON: json not traced"; }
check_has err "pycds: trace: $PYTHON is Python $built_version: pycds works there" \
    "trace -v with $PYTHON"
grep -q 'note:' err && { fail "trace -v $PYTHON app.py: a note"; show err; }
"$PYCDS" dump heap.lst -o heap.img 2>dump.err ||
    { fail "dump exited $?"; show dump.err; exit 1; }
# without -v the probe says nothing
"$PYCDS" trace -o heap.lst -- "$PYTHON" -c pass 2>err ||
    fail "trace -c pass exited $?"
[ -s err ] && { fail "trace without -v printed something"; show err; }

# --- interpreters pycds is not built for
for foreign in /usr/bin/python3.11 "$pyenv_root/versions/3.11.7/bin/python3.11" \
    "$pyenv_root/versions/3.12.1/bin/python3" \
    "$pyenv_root/versions/3.10.13/bin/python3.10"; do
    if [ ! -x "$foreign" ]; then
        echo "cli_interpreters: skipped $foreign: not installed"
        skipped=$((skipped + 1))
        continue
    fi
    version=$("$foreign" -c 'import sys; print(sys.version.split()[0])')
    if [ "$version" = "$built_version" ]; then
        echo "cli_interpreters: skipped $foreign: pycds is built for $version"
        skipped=$((skipped + 1))
        continue
    fi
    # trace: one line naming both interpreters and the remedy, exit 1,
    # the program not run, no list created; also through PATH
    mkdir -p bin && ln -sf "$foreign" bin/python-foreign
    for how in path name; do
        if [ $how = path ]; then
            word=$foreign
            named=$foreign
            cmdpath=$PATH
        else
            word=python-foreign
            named=$WORK/bin/python-foreign
            cmdpath=$WORK/bin:$PATH
        fi
        # the interpreter as it names itself (sys.executable: the link)
        case $version in
        3.11.* | 3.12.* | 3.13.*) remedy="-DPYCDS_PYTHON=$named" ;;
        *) remedy="pycds builds for Python $SUPPORTED only: use $PYTHON" ;;
        esac
        rm -f ran new.lst
        PATH=$cmdpath "$PYCDS" trace -o new.lst -- "$word" app.py >out 2>err
        rc=$?
        what="trace -- $word ($version)"
        [ "$rc" -eq 1 ] || fail "$what exited $rc, expected 1"
        [ -e ran ] && fail "$what ran the program"
        [ -e new.lst ] && fail "$what created the list"
        [ -s out ] && { fail "$what wrote to stdout"; show out; }
        check_one_line err || { fail "$what: not one pycds: line"; show err; }
        check_has err "pycds: trace: $named is Python $version" "$what"
        check_has err "built for Python $built_version ($PYTHON)" "$what"
        check_has err "$remedy" "$what"
    done

    # dump: the hook's one line (or the CLI's, if _cds cannot even load),
    # exit 1
    "$PYCDS" dump heap.lst -o foreign.img --python "$foreign" >out 2>err
    rc=$?
    [ "$rc" -eq 1 ] || { fail "dump --python $foreign exited $rc"; show err; }
    [ -e foreign.img ] && fail "dump --python $foreign wrote an archive"
    # one line whatever the version (the build tree's sitecustomize says
    # it for an interpreter that cannot load _cds at all)
    check_one_line err || { fail "dump $version: not one line"; show err; }
    check_has err "pycds: dump: pycds was built for Python $built_version ($PYTHON), not for Python $version ($foreign)" \
        "dump --python $foreign"
    case $version in
    3.11.* | 3.12.* | 3.13.*) more="rebuild pycds for it (cmake -DPYCDS_PYTHON=$foreign)" ;;
    *) more="pycds builds for Python $SUPPORTED only" ;;
    esac
    check_has err "$more" "dump --python $foreign"

    # run: never a failure; the program's status and output are its own;
    # -v says why nothing is served, without -v pycds adds nothing to
    # what the program's own start-up says
    rm -f ran
    got=$("$PYCDS" run heap.img -- "$foreign" app.py 2>err)
    rc=$?
    [ "$rc" -eq 0 ] && [ "$got" = "app ran" ] ||
        { fail "run -- $foreign: exit $rc, output '$got'"; show err; }
    grep -q '^pycds: run:' err && { fail "run without -v: a run: line"; show err; }
    got=$("$PYCDS" run heap.img -v -- "$foreign" app.py 2>err)
    rc=$?
    [ "$rc" -eq 0 ] && [ "$got" = "app ran" ] ||
        { fail "run -v -- $foreign: exit $rc, output '$got'"; show err; }
    check_has err "pycds: run: $foreign is Python $version, but pycds was built for Python $built_version ($PYTHON)" \
        "run -v -- $foreign"
    check_has err "; it runs without pycds" "run -v -- $foreign"
done

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

# a python that is not there: exec's 127, no probe message
"$PYCDS" trace -o heap.lst -- python-no-such-interpreter 2>err
rc=$?
[ "$rc" -eq 127 ] || { fail "trace -- python-no-such: exit $rc"; show err; }

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files in $WORK" >&2
    exit 1
fi
echo "cli_interpreters: ok ($skipped case(s) skipped)"
