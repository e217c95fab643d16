#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install, from Debian's packages, whatever the build and the tests need
# and the machine lacks.  Asks apt only when something is missing.
set -euo pipefail
pkgs=(cmake make gcc pkg-config python3.11 python3.11-dev libxxhash-dev
      libyaml-dev libcmocka-dev python3-sympy python3-flask python3-requests
      python3-botocore libpython3.11-testsuite valgrind clang
      python3-pytest flake8 black python3-coverage python3-pip
      libclang-rt-14-dev python3.11-venv python3-setuptools python3-wheel
      man-db groff-base)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "pycds: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
