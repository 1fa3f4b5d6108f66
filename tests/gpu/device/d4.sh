#!/bin/bash
# Session 8, last call: the SM90 tactics on by default -- their test, issue
# 12's headline cases against torch in one gpu_bench run, then the FP16
# model set against onnxruntime with what time is left (CEND = end, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/e
timeout 60 build-gpu/bin/test_cuda_gemm_sm90 > /tmp/e/test_sm90.txt 2>&1
echo "test_cuda_gemm_sm90 rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/e/test_sm90.txt | tail -1)"
grep -E "^FAIL" /tmp/e/test_sm90.txt | head -5 | cut -c1-200
timeout 330 python3 bench/gpu_bench.py $K --iters 50 --cases bert_base_fp16_b128,resnet50_fp16_b256,bert_base_fp16_b1,resnet50_fp16_b1 > /tmp/e/gpu_bench.txt 2>&1
echo "gpu_bench rc $? at $((SECONDS-T0)) s"; grep -E "^(bert|resnet)|gpu\"" /tmp/e/gpu_bench.txt | cut -c1-230
left=$((${CEND:-540} - (SECONDS-T0)))
[ $left -gt 30 ] && timeout $left python3 tests/models/check_models.py $K --quick --modes engine --build-args="--device cuda --fp16" --tol 1e-2 --top1 --json /tmp/e/models_fp16.json > /tmp/e/models_fp16.txt 2>&1
echo "models fp16 rc $? at $((SECONDS-T0)) s"; tail -30 /tmp/e/models_fp16.txt | cut -c1-200
tar -C /tmp -czf $OUT/d4.tgz e
