#!/bin/bash
# Device call for the elementwise work (issue 12): test_cuda_eltwise (the
# FusedElementwise fast path and vector Cast against the reference and the old
# kernels), cuda_elt_bench (old vs new kernels on BERT embedding shapes), and
# BERT-base FP16 b128 with a per-layer profile (the embedding layers first).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/s
timeout ${TL:-120} build-gpu/bin/test_cuda_eltwise > /tmp/s/eltwise.txt 2>&1
echo "eltwise rc $? at $((SECONDS-T0)) s: $(grep -E 'passed.*failed' /tmp/s/eltwise.txt | tail -1)"
timeout 60 build-gpu/bin/cuda_elt_bench > /tmp/s/elt_bench.txt 2>&1
echo "elt_bench rc $? at $((SECONDS-T0)) s"
timeout ${TB:-120} python3 bench/gpu_bench.py $K --iters 50 --no-compile --cases ${CASES:-bert_base_fp16_b128} --json /tmp/s/gpu_bench.json > /tmp/s/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s"
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 20 $K inspect $e --profile-runs 5 --sort order > /tmp/s/bert_profile.txt 2>&1
tar -C /tmp -czf $OUT/elt.tgz s
grep -E "FAIL" /tmp/s/eltwise.txt | head -8 | cut -c1-200
cat /tmp/s/elt_bench.txt | cut -c1-160
tail -6 /tmp/s/gpu_bench.txt | cut -c1-200; grep -E "embeddings|Cast|/m/Flatten|Gather|And_1" /tmp/s/bert_profile.txt | head -14 | cut -c1-150
echo "end at $((SECONDS-T0)) s"
