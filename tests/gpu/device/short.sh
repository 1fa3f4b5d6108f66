#!/bin/bash
# Short device call: the tactic tests of today's new CUDA code, the attention
# micro-benchmark, and BERT-base FP16 b128 (torch eager only) with a profile.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/s
for t in attn attn_kv gemm int8 conv; do
  KILN_GPU_TEST_GRAPH_BUDGET_S=30 timeout ${TL:-45} build-gpu/bin/test_cuda_$t > /tmp/s/$t.txt 2>&1
  echo "$t rc $? at $((SECONDS-T0)) s: $(grep -E 'passed.*failed' /tmp/s/$t.txt | tail -1)"
done
timeout 30 build-gpu/bin/cuda_attn_bench > /tmp/s/attn_bench.txt 2>&1
KILN_ATTN_KERNEL=${AK:-v2} KILN_CONV_GRAPH=${CG:-1} KILN_GEMM_L2BLK=${L2:-1} timeout ${TB:-120} python3 bench/gpu_bench.py $K --iters 50 --no-compile --cases ${CASES:-bert_base_fp16_b128} --json /tmp/s/gpu_bench.json > /tmp/s/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s"
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 20 $K inspect $e --profile-runs 5 --sort time > /tmp/s/bert_profile.txt 2>&1
tar -C /tmp -czf $OUT/short.tgz s
for t in attn attn_kv gemm int8 conv; do grep -E "FAIL|fail" /tmp/s/$t.txt | head -4 | cut -c1-200; done
grep -E "v2|v1" /tmp/s/attn_bench.txt | head -8; tail -8 /tmp/s/gpu_bench.txt | cut -c1-200; head -30 /tmp/s/bert_profile.txt | cut -c1-150
echo "end at $((SECONDS-T0)) s"
