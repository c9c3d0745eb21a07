#!/bin/sh
# Runs every libFuzzer target of a fuzz build on a copy of its seed corpus.
# Builds nothing: configure and build first, e.g.
#   CC=clang cmake -S . -B build-fuzz -DTERN_FUZZ=ON && cmake --build build-fuzz
#
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS [JOBS]
# Each fuzz_NAME binary in BUILD_DIR runs for SECONDS on a temporary copy
# of tests/fuzz/corpus/NAME/ (the seeds in the repository never grow).
# JOBS targets run at a time (default: the number of CPUs), each a single
# libFuzzer process with its own SECONDS, so every target gets the same
# time however many run beside it; a target's line is printed when it ends.
# Crash inputs are kept in a temporary directory whose path is printed.
# Exits non-zero if any target crashes, leaks, times out or is missing its corpus.
set -u

# One target (run by xargs below): BIN SECONDS WORK SEEDS_ROOT.
if [ "${1:-}" = "--one" ]; then
    bin=$2 secs=$3 work=$4 seeds_root=$5
    name=$(basename "$bin")
    short=${name#fuzz_}
    seeds=$seeds_root/$short
    report=$work/$short.report
    if [ ! -d "$seeds" ]; then
        echo "$name: no seed corpus at $seeds" >"$report"
        cat "$report" >&2
        exit 1
    fi
    mkdir -p "$work/$short/corpus" "$work/$short/artifacts"
    cp "$seeds"/* "$work/$short/corpus/" 2>/dev/null
    log=$work/$short/log
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$short/artifacts/" "$work/$short/corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        {
            echo "$name: FAILED (exit $rc) after ${runs:-?} runs; log and inputs in $work/$short"
            tail -n 30 "$log"
        } >"$report"
        cat "$report" >&2
        exit 1
    fi
    echo "$name: ok, ${runs:-?} runs in ${secs}s" >"$report"
    cat "$report"
    exit 0
fi

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [JOBS]" >&2
    exit 2
fi
build=$1
secs=$2
jobs=${3:-$(nproc)}
case $secs in
    ''|*[!0-9]*) echo "$0: SECONDS must be a number" >&2; exit 2 ;;
esac
case $jobs in
    ''|0|*[!0-9]*) echo "$0: JOBS must be a number above 0" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
self=$here/$(basename "$0")
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-fuzz.XXXXXX")

for bin in "$build"/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] && printf '%s\n' "$bin"
done >"$work/targets"
found=$(wc -l <"$work/targets")

if [ "$found" -eq 0 ]; then
    echo "$0: no fuzz_* binaries in $build" >&2
    rm -rf "$work"
    exit 2
fi
# xargs exits 123 when any target failed; each prints its own report.
status=0
xargs -P "$jobs" -I{} "$self" --one {} "$secs" "$work" "$here/corpus" <"$work/targets" || status=1
if [ $status -eq 0 ]; then
    rm -rf "$work"
fi
exit $status
