#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make and use Debian chroots in which pycds is built and tested against
# Debian's own python3.13 of trixie or unstable, and unstable's
# python3.14 and python3.15; and a bare bookworm one with python3.11 only,
# where the Debian package is installed as on a user's machine.
#   scripts/chroot.sh SUITE ensure      make it if absent or incomplete;
#                                       print its path
#   scripts/chroot.sh SUITE run CMD...  ensure, then run CMD in it as root,
#                                       in the repository, bind-mounted at
#                                       its own path; exit with CMD's status
#   scripts/chroot.sh SUITE path        print its path (makes nothing)
# PYCDS_CHROOT_DIR (default /var/lib/pycds) holds chroot-SUITE;
# PYCDS_CHROOT_ENV names variables (space-separated) to pass into `run`.
# Mounts live in a private mount namespace, so the kernel drops them when
# the command ends, however it ends; the trap unmounts them in order too.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$PATH:/usr/sbin:/sbin    # debootstrap, chroot

usage() {
    echo "usage: scripts/chroot.sh trixie|unstable|bookworm ensure|path|run CMD..." >&2
    exit 2
}
die() { echo "pycds: chroot: $*" >&2; exit 1; }

[ $# -ge 2 ] || usage
suite=$1 action=$2
shift 2
case $suite in trixie|unstable|bookworm) ;; *) usage ;; esac
case $action in
    ensure|path) [ $# -eq 0 ] || usage ;;
    run) [ $# -ge 1 ] || usage ;;
    *) usage ;;
esac

parent=${PYCDS_CHROOT_DIR:-/var/lib/pycds}
dir=$parent/chroot-$suite
if [ "$action" = path ]; then
    echo "$dir"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount, chroot)"

pkgs=(gcc make cmake pkg-config libxxhash-dev libyaml-dev libcmocka-dev
      python3.13 python3.13-dev libpython3.13-testsuite python3-sympy
      python3-flask python3-requests python3-botocore gunicorn python3-pytest
      flake8 black python3-coverage python3-pip valgrind python3.13-venv
      python3-setuptools python3-wheel)
# Both suites have every package above (checked with apt-cache policy in
# each chroot); a suite that loses one gets it dropped here, with a note.
apt_opts=(-o APT::Install-Recommends=false)
if [ "$suite" = bookworm ]; then
    # a user's machine: the interpreter, nothing to build with
    pkgs=(python3.11)
elif [ "$suite" = unstable ]; then
    # its newer interpreters (3.14 is unstable's python3)
    pkgs+=(python3.14 python3.14-dev libpython3.14-testsuite python3.14-venv
           python3.15 python3.15-dev libpython3.15-testsuite python3.15-venv)
    # unstable's Release on the mirror is past its Valid-Until date
    apt_opts+=(-o Acquire::Check-Valid-Until=false)
fi

base=$dir/.pycds-base        # debootstrap finished
marker=$dir/.pycds-packages  # the very last step: the packages installed
log=$parent/chroot-$suite.log
wanted=$(printf '%s\n' "${pkgs[@]}")

complete() { [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; }

mirror() { # first non-security URI apt uses, else Debian's own
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++)
                    if ($i !~ /debian-security/) { print $i; exit } }' \
              /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++)
                    if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /debian-security/)
                        print $i; break } }' /etc/apt/sources.list | head -n1)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

# Runs in a fresh mount namespace: mount what a build and its tests need,
# run the command chrooted with a clean environment, unmount, return its
# status.
# shellcheck disable=SC2317  # run by the bash that unshare starts
inner() { # DIR REPO-or-empty ENV-COUNT NAME=VALUE... CMD...
    set -euo pipefail
    local d=$1 repo=$2 n=$3 i
    shift 3
    local env=("${@:1:n}")
    shift "$n"
    mounted=()  # global: the EXIT trap runs after inner returns
    cleanup() {
        for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
            umount -R "${mounted[i]}" 2>/dev/null || umount -Rl "${mounted[i]}"
        done
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    m() { mount "$@"; mounted+=("${*: -1}"); }
    m -t proc proc "$d/proc"
    m --rbind /dev "$d/dev"     # with /dev/pts and /dev/shm
    m --bind /sys "$d/sys"
    m -t tmpfs -o mode=1777 tmpfs "$d/tmp"
    local cwd=/
    if [ -n "$repo" ]; then
        mkdir -p "$d$repo"
        m --bind "$repo" "$d$repo"
        cwd=$repo
    fi
    local rc=0
    chroot "$d" /usr/bin/env -i -C "$cwd" "${env[@]}" "$@" || rc=$?
    return "$rc"
}

in_chroot() { # REPO-or-empty CMD...: run CMD in the chroot with ${env[@]}
    local repo=$1
    shift
    unshare --mount --propagation private -- bash -c \
        "$(declare -f inner); inner \"\$@\"" inner \
        "$dir" "$repo" "${#env[@]}" "${env[@]}" "$@" 9>&-
}   # (fd 9, the lock, stays with this script: no stray process keeps it)

clean_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
           HOME=/root LANG=C.UTF-8)
env=("${clean_env[@]}" DEBIAN_FRONTEND=noninteractive)  # for apt

mounts_inside() { # mount points at or under $dir, deepest first
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' \
        /proc/mounts | sort -r
}

remove() { # never rm through a mount: unmount leftovers, refuse if any stay
    local p
    # Ours all live in private namespaces; these would be someone's by hand
    # or an older script's, and we hold the exclusive lock.
    for p in $(mounts_inside); do umount "$p" 2>/dev/null || true; done
    [ -z "$(mounts_inside)" ] ||
        die "$dir still has mounts inside (/proc/mounts); unmount them"
    rm -rf --one-file-system "$dir"
}

bootstrap() {
    remove
    if ! command -v debootstrap >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        { apt-get install -y -qq debootstrap ||
            { apt-get update -qq && apt-get install -y -qq debootstrap; }; } \
            >>"$log" 2>&1 || fail "could not install debootstrap on the host"
    fi
    # its own namespace too, so the /proc and /sys it mounts go with it
    unshare --mount --propagation private -- debootstrap --variant=minbase \
        "$suite" "$dir" "$(mirror)" >>"$log" 2>&1 9>&- ||
        fail "debootstrap $suite failed"
    touch "$base"
}

fail() { # the log's end, then the one-line error
    tail -n 20 "$log" >&2 || true
    die "$* (log: $log)"
}

install_pkgs() { # complete the base system; false if apt or dpkg fails
    # Keep daemons from starting, and name resolution the host's.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    in_chroot "" dpkg --configure -a &&
        in_chroot "" apt-get "${apt_opts[@]}" -qq update &&
        in_chroot "" apt-get "${apt_opts[@]}" -y -qq install "${pkgs[@]}" &&
        in_chroot "" apt-get -qq clean
}

strays() { # processes whose root is the chroot
    local p real
    real=$(readlink -f "$dir")
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$real" ]; then
            echo "${p#/proc/}"
        fi
    done
}

stop_strays() { # an interrupted creation's apt or dpkg (apt puts dpkg in a
    local i      # session of its own, so a killed script leaves it running)
    [ -n "$(strays)" ] || return 0
    # shellcheck disable=SC2046
    kill -TERM $(strays) 2>/dev/null || true
    for i in $(seq 50); do
        [ -n "$(strays)" ] || return 0
        sleep 0.2
    done
    # shellcheck disable=SC2046
    kill -KILL $(strays) 2>/dev/null || true
    sleep 1
}

ensure_locked() {
    complete && return 0
    : >"$log"
    # we hold the lock exclusively, so no `run` is using the chroot
    [ -d "$dir" ] && stop_strays
    if [ -f "$base" ] && chroot "$dir" /bin/true 2>/dev/null; then
        echo "pycds: completing the $suite chroot at $dir" \
             "(${#pkgs[@]} packages)" >&2
        install_pkgs >>"$log" 2>&1 && { echo "$wanted" >"$marker"; return 0; }
        echo "pycds: the $suite chroot's base is broken; making it anew" >&2
    else
        echo "pycds: creating the $suite chroot at $dir" \
             "(debootstrap, then ${#pkgs[@]} packages)" >&2
    fi
    bootstrap
    install_pkgs >>"$log" 2>&1 ||
        fail "installing packages in the $suite chroot failed"
    echo "$wanted" >"$marker"
}

# One lock per chroot: ensure holds it exclusively, run shares it, so a
# rebuild never pulls the chroot from under a running command.
mkdir -p "$parent"
exec 9>"$parent/chroot-$suite.lock"
while :; do
    flock -s 9
    complete && break
    flock -x 9
    ensure_locked
done

if [ "$action" = ensure ]; then
    echo "$dir"
    exit 0
fi

# Only what is named passes: the tests run some steps with
# PYTHONDONTWRITEBYTECODE unset, so it is passed only when set.
env=("${clean_env[@]}" "TERM=${TERM:-dumb}")
for name in PYTHONDONTWRITEBYTECODE ${PYCDS_CHROOT_ENV:-}; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
        die "PYCDS_CHROOT_ENV: not a variable name: $name"
    if [ -n "${!name+x}" ]; then
        env+=("$name=${!name}")
    fi
done
rc=0
in_chroot "$top" "$@" || rc=$?
exit $rc
