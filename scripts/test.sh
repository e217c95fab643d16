#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run every test: against Debian's
# /usr/bin/python3.11 (non-PIE) and, where it exists, pyenv's 3.11.7 (PIE
# with a shared libpython); unit and integration tests also under
# ASan/UBSan, and in a Release build with PYTHONDONTWRITEBYTECODE unset
# (.pyc files written and read, as on users' machines; the development
# machines and CI set it); a one-minute libFuzzer run of the reader
# (clang).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
jobs=$(nproc)
status=0

run() { # name python build-type [ctest args...]; CMAKE_ARGS, CC honoured
    local dir="$top/build/test-$1"
    echo "=== pycds tests: $1 ($2, $3)"
    # shellcheck disable=SC2086
    cmake -S "$top" -B "$dir" -DPYCDS_PYTHON="$2" -DCMAKE_BUILD_TYPE="$3" \
        ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    shift 3
    if [ -n "${AS_USER_SHELL:-}" ]; then
        (cd "$dir" && env -u PYTHONDONTWRITEBYTECODE \
            ctest --output-on-failure -j "$jobs" "$@") || status=1
    else
        (cd "$dir" && ctest --output-on-failure -j "$jobs" "$@") || status=1
    fi
}

run debian /usr/bin/python3.11 RelWithDebInfo
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
pie="$pyenv_root/versions/3.11.7/bin/python3.11"
if [ -x "$pie" ]; then
    run pie "$pie" RelWithDebInfo
else
    echo "=== pycds tests: pie: skipped ($pie not found)"
fi
run asan /usr/bin/python3.11 Sanitize -L 'unit|integration'
AS_USER_SHELL=1 run release-bytecode /usr/bin/python3.11 Release \
    -L 'unit|integration'
# the reader under libFuzzer for a minute, and its saved crash inputs
CC=clang CMAKE_ARGS=-DPYCDS_FUZZ=ON \
    run fuzz /usr/bin/python3.11 RelWithDebInfo -L fuzz
exit $status
