#!/bin/bash
# Session 8, CPU call on the device host (issue 6): run_bench at all 16
# cores with engines now built at the thread count they run at
# (`kiln build --threads 16`), then per-layer profiles of the two rows that
# lost (ResNet-50 b1, BERT b8) at 16 threads; then node tests through CUDA
# engines with what time is left (CEND = end, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/c
timeout ${TC:-330} python3 bench/run_bench.py $K --models ${CMODELS:-resnet50,mobilenet_v2,bert} --batches 1,8 --threads all --duration 2 > /tmp/c/run_bench.txt 2>&1
echo "run_bench rc $? at $((SECONDS-T0)) s"
grep -E "^\| |ratio" /tmp/c/run_bench.txt | tail -12 | cut -c1-200
for e in resnet50_b1_t16 bert_b8_t16 mobilenet_v2_b8_t16; do
  [ -f build/bench/$e.kiln ] || continue
  timeout 40 $K inspect build/bench/$e.kiln --profile-runs 20 --threads 16 --sort time > /tmp/c/prof_$e.txt 2>&1
  echo "== $e"; sed -n "/^profile:/,\$p" /tmp/c/prof_$e.txt | head -14 | cut -c1-150
done
left=$((${CEND:-560} - (SECONDS-T0)))
echo "node tests with $left s"
[ $left -gt 60 ] && BUILD=build-gpu OUT=/tmp/c/g JOBS=16 KILN_GPU_SUITES="node" timeout $left bash tests/gpu/run.sh > /tmp/c/run.txt 2>&1
grep -E "^--- " /tmp/c/run.txt
rm -f /tmp/c/*.kiln
tar -C /tmp -czf $OUT/d2.tgz c
