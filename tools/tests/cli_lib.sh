# SPDX-License-Identifier: MIT
# What the CLI tests that run an interpreter share; sourced, with the
# caller's failures counter:  . "$(dirname "$0")/cli_lib.sh"

# count a failure and say what it was
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# show a file on stderr, for a failure's context
show() {
    sed "s|^|  $1: |" "$1" >&2
}

# a clean slate: nothing inherited may steer the hook
unset PYCDSMODE PYCDSLIST PYCDSARCHIVE PYCDSRELOCATE PYCDSVERBOSE PYCDSBASE
unset PYTHONPATH
