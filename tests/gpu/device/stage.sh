#!/bin/bash
# Stage branch (issue 7), one GPU call: the batcher's staging A/B in kiln
# serve (ResNet-50 FP16, padded batches, c8/c64, KILN_SERVE_STAGE=0 vs on,
# servers alternating), then serve_bench's ResNet-50 row (batching on vs off)
# and the serve_gpu suite.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/st
WRK_THREADS=4 timeout 300 python3 bench/serve_stage_ab.py $K --models resnet50 --gpu --rounds 2 \
  --duration 6 --concurrency 8,64 --json /tmp/st/ab.json > /tmp/st/ab.txt 2>&1
echo "ab rc $? at $((SECONDS-T0)) s" >> /tmp/st/ab.txt
grep -E "^\||rc " /tmp/st/ab.txt | cut -c1-220
WRK_THREADS=4 timeout 150 python3 bench/serve_bench.py $K --models resnet50 --gpu --duration 4 \
  --server-threads 8 --concurrency 64 > /tmp/st/r50gpu.txt 2>&1
grep -E "^\| resnet50|rc |kiln bench" /tmp/st/r50gpu.txt | cut -c1-200
BUILD=build-gpu OUT=/tmp/st/g JOBS=16 KILN_GPU_SUITES="serve" timeout 90 bash tests/gpu/run.sh > /tmp/st/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/st/run.txt
grep -E "^--- |passed, .* failed$|rc " /tmp/st/run.txt; grep -hE "FAIL" /tmp/st/g/*.log | head -5 | cut -c1-200
cp build/serve_bench/*.log /tmp/st/ 2>/dev/null
