#!/bin/bash
# One call when the device budget allows only one: the GEMM micro-benchmark
# (cuBLASLt + epilogue vs the cuDNN graph GEMM) first, then the tactic,
# runtime, node and model-set suites, then BERT-base FP16 b128 against torch
# (eager, torch.compile) and its per-layer profile.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
KILN_GEMM_GRAPH_LOG=1 timeout 40 build-gpu/bin/cuda_gemm_bench > /tmp/g/gemm_bench.txt 2>&1
echo "gemm bench rc $? at $((SECONDS-T0)) s" >> /tmp/g/gemm_bench.txt
BUILD=build-gpu OUT=/tmp/g JOBS=14 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics runtime node models}" \
  timeout ${TT:-330} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
# the graph GEMM is opt-in: on for the bench when its test passed here, with a Kiln-only A/B
if grep -q "^--- test_cuda_gemm_graph: [0-9]* passed, 0 failed" /tmp/g/run.txt; then
  KILN_GEMM_GRAPH=0 timeout 60 python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases ${CASES:-bert_base_fp16_b128} --work /tmp/wA > /tmp/b/ab_off.txt 2>&1
  mkdir -p /tmp/kiln-gpu-bench; cp /tmp/wA/*.onnx /tmp/kiln-gpu-bench/ 2>/dev/null
  export KILN_GEMM_GRAPH=1; echo "KILN_GEMM_GRAPH=1 for the bench" >> /tmp/g/run.txt
fi
timeout ${TB:-150} python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-bert_base_fp16_b128} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 20 $K inspect $e --profile-runs 5 --sort time > /tmp/b/bert_profile.txt 2>&1
tar -C /tmp -czf $OUT/s3.tgz g b
grep -v "^kiln gemm graph" /tmp/g/gemm_bench.txt | tail -14 | cut -c1-170
grep -E "^--- |passed, .* failed$|rc |GRAPH" /tmp/g/run.txt; grep -hE "^FAIL" /tmp/g/*.log | head -8 | cut -c1-220
grep -hE "kiln |rc " /tmp/b/ab_off.txt /tmp/b/gpu_bench.txt | cut -c1-230; grep -E "^ +[0-9]+ |profile:" /tmp/b/bert_profile.txt | head -8 | cut -c1-140
