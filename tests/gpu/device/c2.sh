#!/bin/bash
# Session 7, call 2 (issue 7 on the device host): bench/serve_bench.py with
# the tiny mlp on the CPU engines, HTTP spread over many server threads
# (batching on vs off at concurrency 64: the 1.5x target), then ResNet-50
# FP16 CUDA engines (--gpu: batching on vs off, the 3x target). wrk comes
# from .devrun/bin (Debian's, with its libraries in .devrun/wrklib).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/s
nproc > /tmp/s/env.txt; lscpu | grep -E "Model name|^CPU\(s\)|Thread" >> /tmp/s/env.txt
WRK_THREADS=${WT:-4} timeout ${TM:-150} python3 bench/serve_bench.py $K --models mlp --no-fastapi --duration ${D:-5} --server-threads ${ST:-8} --json /tmp/s/mlp.json > /tmp/s/mlp.txt 2>&1
echo "mlp rc $? at $((SECONDS-T0)) s" >> /tmp/s/mlp.txt
left=$((570 - (SECONDS-T0)))
WRK_THREADS=${WT:-4} timeout $left python3 bench/serve_bench.py $K --models resnet50 --gpu --duration ${D:-5} --server-threads ${ST:-8} --json /tmp/s/r50gpu.json > /tmp/s/r50gpu.txt 2>&1
echo "r50 gpu rc $? at $((SECONDS-T0)) s" >> /tmp/s/r50gpu.txt
cp build/serve_bench/*.log /tmp/s/ 2>/dev/null
tar -C /tmp -czf $OUT/c2.tgz s
cat /tmp/s/env.txt; grep -vE "^\s*$" /tmp/s/mlp.txt | tail -22 | cut -c1-200; grep -vE "^\s*$" /tmp/s/r50gpu.txt | tail -22 | cut -c1-200
