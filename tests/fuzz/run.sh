#!/bin/sh
# Runs every libFuzzer target of a fuzz build on a copy of its seed corpus.
# Builds nothing: configure and build first, e.g.
#   CC=clang cmake -S . -B build-fuzz -DTERN_FUZZ=ON && cmake --build build-fuzz
#
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS
# Each fuzz_NAME binary in BUILD_DIR runs for SECONDS on a temporary copy
# of tests/fuzz/corpus/NAME/ (the seeds in the repository never grow).
# Crash inputs are kept in a temporary directory whose path is printed.
# Exits non-zero if any target crashes, leaks, times out or is missing its corpus.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
case $secs in
    ''|*[!0-9]*) echo "$0: SECONDS must be a number" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-fuzz.XXXXXX")

status=0
found=0
for bin in "$build"/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin")
    short=${name#fuzz_}
    seeds=$here/corpus/$short
    found=$((found + 1))
    if [ ! -d "$seeds" ]; then
        echo "$name: no seed corpus at $seeds" >&2
        status=1
        continue
    fi
    mkdir -p "$work/$short/corpus" "$work/$short/artifacts"
    cp "$seeds"/* "$work/$short/corpus/" 2>/dev/null
    log=$work/$short/log
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$short/artifacts/" "$work/$short/corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        echo "$name: FAILED (exit $rc) after ${runs:-?} runs; log and inputs in $work/$short" >&2
        tail -n 30 "$log" >&2
        status=1
    else
        echo "$name: ok, ${runs:-?} runs in ${secs}s"
    fi
done

if [ $found -eq 0 ]; then
    echo "$0: no fuzz_* binaries in $build" >&2
    exit 2
fi
if [ $status -eq 0 ]; then
    rm -rf "$work"
fi
exit $status
