#!/bin/bash
# A second call after a new GEMM tactic: test_cuda_gemm, a Kiln-only A/B of
# BERT-base FP16 b128 with the cuDNN graph GEMM off and on (KILN_GEMM_GRAPH),
# then gpu_bench with torch.compile on ${CASES} and per-layer profiles.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
KILN_GEMM_GRAPH_LOG=1 timeout 40 build-gpu/bin/cuda_gemm_bench > /tmp/g/gemm_bench.txt 2>&1
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics}" KILN_GPU_TACTICS="${TACTICS-test_cuda_gemm test_cuda_gemm_graph}" timeout ${TT:-90} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
KILN_GEMM_GRAPH=0 timeout ${TA:-90} python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases bert_base_fp16_b128 --work /tmp/wA > /tmp/b/ab_off.txt 2>&1
echo "A rc $? at $((SECONDS-T0)) s" >> /tmp/b/ab_off.txt
mkdir -p /tmp/kiln-gpu-bench; cp /tmp/wA/*.onnx /tmp/kiln-gpu-bench/ 2>/dev/null
grep -q "^--- test_cuda_gemm_graph: [0-9]* passed, 0 failed" /tmp/g/run.txt && export KILN_GEMM_GRAPH=1
timeout ${TB:-330} python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-bert_base_fp16_b128,resnet50_fp16_b256} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
for e in bert_base_fp16_b128 resnet50_fp16_b256; do f=/tmp/kiln-gpu-bench/$e.kiln; [ -f $f ] && timeout 25 $K inspect $f --profile-runs 5 --sort time > /tmp/b/$e.profile.txt 2>&1; done
tar -C /tmp -czf $OUT/s2.tgz g b
grep -v "^kiln gemm graph" /tmp/g/gemm_bench.txt | tail -14 | cut -c1-170
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; grep -E "^FAIL" /tmp/g/*.log | head -5 | cut -c1-200; grep -E "kiln " /tmp/b/ab_off.txt | cut -c1-200; grep -E "kiln |rc " /tmp/b/gpu_bench.txt | cut -c1-230; for e in bert_base_fp16_b128 resnet50_fp16_b256; do grep -E "^ +[0-9]+ |profile:" /tmp/b/$e.profile.txt | head -8 | cut -c1-140; done
