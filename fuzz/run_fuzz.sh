#!/usr/bin/env bash
# run_fuzz.sh: runs the ONNX reader fuzzer for a total wall time, one job,
# restarting after each finding (libFuzzer stops at the first crash; known
# crashes in op-family code must not end the session). Findings land in
# ARTIFACTS; triage them with fuzz/triage.py.
# Usage: fuzz/run_fuzz.sh BUILD_DIR WORK_CORPUS ARTIFACTS [SECONDS]
set -u
build=$1 corpus=$2 art=$3 total=${4:-600}
mkdir -p "$corpus" "$art"
start=$(date +%s)
runs=0
while :; do
    left=$(( total - ($(date +%s) - start) ))
    [ "$left" -le 5 ] && break
    runs=$((runs + 1))
    # libFuzzer's -timeout covers running an input, not mutating one: the
    # outer timeout catches a stuck mutator or a hung process.
    timeout --signal=KILL $((left + 120)) \
    "$build/bin/kiln_fuzz_onnx" -timeout=10 -rss_limit_mb=2048 \
        -max_total_time="$left" -artifact_prefix="$art/" -print_final_stats=1 \
        "$corpus" > "$art/run-$runs.log" 2>&1
    rc=$?
    grep -E '^stat::|^Done|^#[0-9]+' "$art/run-$runs.log" | tail -n 7 | tr '\n' ' '
    echo "(run $runs, exit $rc)"
done
echo "total wall time: $(( $(date +%s) - start ))s in $runs runs"
