#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run every test, once per target,
# each built and tested in build/test-TARGET:
#
#   debian            /usr/bin/python3.11 (non-PIE), every test
#   pie               pyenv's 3.11.7 (PIE with a shared libpython)
#   pyenv-3.12        pyenv's 3.12.1
#   pyenv-3.13        pyenv's 3.13.0
#   trixie-3.13       Debian trixie's /usr/bin/python3.13, in a chroot
#   unstable-3.13     Debian unstable's /usr/bin/python3.13, in a chroot
#   unstable-3.14     Debian unstable's /usr/bin/python3.14 (its python3)
#   unstable-3.15     Debian unstable's /usr/bin/python3.15
#   asan              unit and integration tests under ASan/UBSan
#   release-bytecode  a Release build, unit and integration tests with
#                     PYTHONDONTWRITEBYTECODE unset (.pyc files written
#                     and read, as on users' machines; the development
#                     machines and CI set it)
#   deb               the Debian package (CPack), installed with apt in a
#                     bare bookworm chroot and used there as a user would
#                     (tests/package/test_deb.sh)
#   fuzz              a one-minute libFuzzer run of the reader (clang)
#
# asan, release-bytecode, deb and fuzz use /usr/bin/python3.11.  The pyenv
# targets take the workload packages from Debian's
# /usr/lib/python3/dist-packages (CDSTEST_PYTHONPATH, with the .pyc files
# under build/test-TARGET/pycache: CDSTEST_PYCACHE; see
# tests/integration/cdstest.py).  The chroot targets run through
# scripts/chroot.sh, which creates the chroot on first use.  A target
# whose interpreter is missing, or whose Python version pycds does not
# support yet (supported_minors below), is skipped and said so; a summary
# of every target ends the run.
#
#   scripts/test.sh              every target
#   scripts/test.sh TARGET...    only these, in this order
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# The Python 3 minor versions pycds supports: a target whose interpreter
# is another 3.X is skipped without building anything (or creating a
# chroot): "11 12 13" once the C side supports 3.12 and 3.13.
supported_minors="11 12 13 14 15"

targets=(debian pie pyenv-3.12 pyenv-3.13 trixie-3.13 unstable-3.13
         unstable-3.14 unstable-3.15 asan release-bytecode deb fuzz)
usage() {
    echo "usage: scripts/test.sh [TARGET...]  (TARGET: ${targets[*]})"
}
for arg in "$@"; do
    case " ${targets[*]} " in
    *" $arg "*) ;;
    *)
        if [ "$arg" = -h ] || [ "$arg" = --help ]; then
            usage
            exit 0
        fi
        usage >&2
        exit 2
        ;;
    esac
done
[ $# -gt 0 ] || set -- "${targets[@]}"

scripts/deps.sh
jobs=$(nproc)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
dist=/usr/lib/python3/dist-packages
status=0
summary=()

result() { # target outcome
    summary+=("$(printf '  %-17s %s' "$1" "$2")")
}

skip() { # target reason
    echo "=== pycds tests: $1: skipped ($2)"
    result "$1" "skipped ($2)"
}

supported() { # target python: false (and a skip) for an unsupported 3.X
    local minor=${2##*/python3.}
    case " $supported_minors " in
    *" $minor "*) return 0 ;;
    esac
    skip "$1" "pycds does not support Python 3.$minor yet"
    return 1
}

# Configure, build and ctest one tree; runs on the host or, shipped with
# declare -f, inside a chroot.  CMAKE_ARGS, CC, AS_USER_SHELL (ctest with
# PYTHONDONTWRITEBYTECODE unset) and CDSTEST_* from the environment.
# shellcheck disable=SC2317  # called through bash -c, by run
build_and_test() { # top dir python build-type jobs [ctest args...]
    local top=$1 dir=$2 python=$3 type=$4 jobs=$5 d stdlib
    shift 5
    # shellcheck disable=SC2086
    cmake -S "$top" -B "$dir" -DPYCDS_PYTHON="$python" \
        -DCMAKE_BUILD_TYPE="$type" ${CMAKE_ARGS:-} >/dev/null || return 1
    cmake --build "$dir" -j "$jobs" >/dev/null || return 1
    if [ -n "${CDSTEST_PYCACHE:-}" ]; then
        # with bytecode writing off nothing is ever written under the
        # prefix, and every child would compile from source whatever is
        # not there yet (the stdlib included): fill it once (later runs
        # only compare mtimes)
        stdlib=$("$python" -c \
            'import sysconfig; print(sysconfig.get_path("stdlib"))') ||
            return 1
        local -a srcs=("$stdlib")
        IFS=: read -ra d <<<"${CDSTEST_PYTHONPATH:-}"
        srcs+=("${d[@]}")
        PYTHONPYCACHEPREFIX=$CDSTEST_PYCACHE "$python" -m compileall -q \
            -j 0 -x '/(site-packages|test|idlelib|lib2to3/tests)/' \
            "${srcs[@]}" >/dev/null 2>&1 || true
    fi
    cd "$dir" || return 1
    if [ -n "${AS_USER_SHELL:-}" ]; then
        env -u PYTHONDONTWRITEBYTECODE \
            ctest --output-on-failure -j "$jobs" "$@"
    else
        ctest --output-on-failure -j "$jobs" "$@"
    fi
}

run() { # target chroot-suite|"" python build-type [ctest args...]
    local name=$1 suite=$2 python=$3 type=$4 v where=""
    shift 4
    [ -z "$suite" ] || where=" in the $suite chroot"
    echo "=== pycds tests: $name ($python$where, $type)"
    local -a cmd=(env)
    for v in CC CMAKE_ARGS AS_USER_SHELL CDSTEST_PYTHONPATH CDSTEST_PYCACHE
    do
        [ -z "${!v:-}" ] || cmd+=("$v=${!v}")
    done
    cmd+=(bash -c "$(declare -f build_and_test); build_and_test \"\$@\""
          build_and_test "$top" "$top/build/test-$name" "$python" "$type"
          "$jobs" "$@")
    [ -z "$suite" ] || cmd=(scripts/chroot.sh "$suite" run "${cmd[@]}")
    if "${cmd[@]}"; then
        result "$name" passed
    else
        result "$name" failed
        status=1
    fi
}

pyenv_target() { # target version
    local py="$pyenv_root/versions/$2/bin/python${2%.*}"
    supported "$1" "$py" || return 0
    if [ ! -x "$py" ]; then
        skip "$1" "$py not found"
        return 0
    fi
    CDSTEST_PYTHONPATH=$dist CDSTEST_PYCACHE="$top/build/test-$1/pycache" \
        run "$1" "" "$py" RelWithDebInfo
}

chroot_target() { # target suite python
    local found
    supported "$1" "$3" || return 0
    if [ ! -x scripts/chroot.sh ]; then
        skip "$1" "scripts/chroot.sh missing"
        return 0
    fi
    found=$(scripts/chroot.sh "$2" run sh -c \
        "if [ -x '$3' ]; then echo yes; else echo no; fi") || found=""
    case ${found##*$'\n'} in
    yes) run "$1" "$2" "$3" RelWithDebInfo ;;
    no) skip "$1" "$3 not found in the $2 chroot" ;;
    *)
        echo "=== pycds tests: $1: scripts/chroot.sh $2 failed"
        result "$1" "failed (scripts/chroot.sh $2 failed)"
        status=1
        ;;
    esac
}

for target in "$@"; do
    case $target in
    debian) run debian "" /usr/bin/python3.11 RelWithDebInfo ;;
    pie) pyenv_target pie 3.11.7 ;;
    pyenv-3.12) pyenv_target pyenv-3.12 3.12.1 ;;
    pyenv-3.13) pyenv_target pyenv-3.13 3.13.0 ;;
    trixie-3.13) chroot_target trixie-3.13 trixie /usr/bin/python3.13 ;;
    unstable-3.13) chroot_target unstable-3.13 unstable /usr/bin/python3.13 ;;
    unstable-3.14) chroot_target unstable-3.14 unstable /usr/bin/python3.14 ;;
    unstable-3.15) chroot_target unstable-3.15 unstable /usr/bin/python3.15 ;;
    asan) run asan "" /usr/bin/python3.11 Sanitize -L 'unit|integration' ;;
    release-bytecode)
        AS_USER_SHELL=1 run release-bytecode "" /usr/bin/python3.11 Release \
            -L 'unit|integration'
        ;;
    deb)
        echo "=== pycds tests: deb (Debian package, bookworm chroot)"
        if tests/package/test_deb.sh "$top/build/test-deb"; then
            result deb passed
        else
            result deb failed
            status=1
        fi
        ;;
    fuzz)
        # the reader under libFuzzer for a minute, and its saved crash
        # inputs
        CC=clang CMAKE_ARGS=-DPYCDS_FUZZ=ON \
            run fuzz "" /usr/bin/python3.11 RelWithDebInfo -L fuzz
        ;;
    esac
done
echo "=== pycds tests: summary"
printf '%s\n' "${summary[@]}"
exit $status
