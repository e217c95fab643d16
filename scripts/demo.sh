#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build pycds (Release), and run the demo: trace,
# dump and share a built-in workload, and print the speedup.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
python=${PYCDS_PYTHON:-/usr/bin/python3.11}
cmake -S "$top" -B "$top/build/demo" -DCMAKE_BUILD_TYPE=Release \
    -DPYCDS_PYTHON="$python" -DBUILD_TESTING=OFF >/dev/null
cmake --build "$top/build/demo" -j "$(nproc)" >/dev/null
exec "$python" "$top/scripts/demo.py" --build "$top/build/demo" \
    --python "$python" "$@"
