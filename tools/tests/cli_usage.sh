#!/bin/sh
# SPDX-License-Identifier: MIT
# The CLI's usage contract (tools/pycds.c inv. 3): usage errors exit 2
# with one message line and a usage line on stderr; help and version exit
# 0 on stdout.  Needs no interpreter and no archive.
#   sh cli_usage.sh PYCDS
set -u
PYCDS=$1
failures=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pycds-usage.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

# expect STATUS ARGS...: run pycds ARGS, check the exit status
expect() {
    want=$1
    shift
    "$PYCDS" "$@" >out 2>err </dev/null
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: pycds $*: exit $got, expected $want" >&2
        sed 's/^/  stderr: /' err >&2
        failures=$((failures + 1))
        return 1
    fi
    if [ "$want" -eq 2 ]; then
        # one message line starting "pycds: ", then a usage line or a
        # hint (a bad pycds.yaml has no usage line to show)
        lines=$(wc -l <err)
        if [ "$lines" -lt 1 ] || [ "$lines" -gt 2 ] ||
            ! head -n 1 err | grep -q '^pycds: '
        then
            echo "FAIL: pycds $*: not a usage message:" >&2
            sed 's/^/  stderr: /' err >&2
            failures=$((failures + 1))
            return 1
        fi
        if [ -s out ]; then
            echo "FAIL: pycds $*: usage error wrote to stdout" >&2
            failures=$((failures + 1))
            return 1
        fi
    fi
    return 0
}

expect 2
expect 2 bogus
expect 2 --bogus
expect 2 --config
expect 2 trace
expect 2 trace -- true
expect 2 trace -o
expect 2 trace -o l.lst
expect 2 trace -o l.lst --
expect 2 trace -o l.lst true
expect 2 trace -o l.lst --relocate -- true
expect 2 dump
expect 2 dump l.lst
expect 2 dump -o a.img
expect 2 dump l.lst m.lst -o a.img
expect 2 dump l.lst -o a.img --python
expect 2 run
expect 2 run a.img
expect 2 run a.img true
expect 2 run a.img --
expect 2 run -- true
expect 2 run a.img -x -- true
expect 2 inspect
expect 2 inspect a.img b.img
expect 2 inspect --frobnicate a.img
expect 2 verify
expect 2 verify a.img b.img
expect 2 verify a.img -- true
expect 2 help bogus
# nothing may follow --help or --version at top level
expect 2 --version extra
expect 2 -V extra
expect 2 --help extra
expect 2 -h trace
expect 2 --config x.yaml --version extra

expect 0 --help && grep -q '^usage: pycds' out ||
    { echo "FAIL: --help has no usage line" >&2; failures=$((failures + 1)); }
expect 0 -h
expect 0 help
expect 0 help run && grep -q '^usage: pycds run ARCHIVE' out ||
    { echo "FAIL: help run" >&2; failures=$((failures + 1)); }
expect 0 verify --help
expect 0 --version && grep -q '^pycds [0-9]' out ||
    { echo "FAIL: --version" >&2; failures=$((failures + 1)); }

# -v counts up to the highest level the hook has (2): more are capped
for v in -vvv "-vv -vv" "-v -v -v" "--verbose -vv"; do
    # shellcheck disable=SC2086 # $v is one or more options
    expect 0 run a.img $v -- true &&
        grep -qx 'pycds: env PYCDSVERBOSE=2' err ||
        { echo "FAIL: run $v: level not capped at 2" >&2; sed 's/^/  stderr: /' err >&2
          failures=$((failures + 1)); }
done
expect 0 run a.img -v -- true && grep -qx 'pycds: env PYCDSVERBOSE=1' err ||
    { echo "FAIL: run -v: not PYCDSVERBOSE=1" >&2; failures=$((failures + 1)); }

# a bad pycds.yaml is a usage error too, with file and line, and only
# that line: no usage line (docs/usage.md, exit status)
printf 'archive: a.img\narhive: b.img\n' >pycds.yaml
expect 2 verify && [ "$(wc -l <err)" -eq 1 ] &&
    grep -qx "pycds: verify: pycds.yaml:2: unknown key 'arhive'" err ||
    { echo "FAIL: bad pycds.yaml" >&2; failures=$((failures + 1)); }
rm -f pycds.yaml

# not usage errors: a missing archive is exit 1 with one line
expect 1 verify missing.img && [ "$(wc -l <err)" -eq 1 ] ||
    { echo "FAIL: verify missing.img" >&2; failures=$((failures + 1)); }
expect 127 run a.img -- ./no-such-program

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "cli_usage: ok"
