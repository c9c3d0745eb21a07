#!/bin/sh
# tern vs Postfix benchmark: a thin entry for bench.py (see bench/README.md).
# Runs from any directory; paths given as arguments are taken relative to the
# caller's working directory, the default tern binary is <repo>/build/tern.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BENCH_ENTRY=$0 exec /usr/bin/python3 "$here/bench.py" "$@"
