#!/bin/bash
# Session 8, short last call: the SM90 test with the tactics on by default
# (and the fixed FP16 tail bound), the FP16 model set against onnxruntime
# (the builder now picks the SM90 tactics in the transformers), then BERT
# b128 against torch with what is left (CEND = end, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/e
timeout 60 build-gpu/bin/test_cuda_gemm_sm90 > /tmp/e/test_sm90.txt 2>&1
echo "test_cuda_gemm_sm90 rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/e/test_sm90.txt | tail -1)"
grep -E "^FAIL" /tmp/e/test_sm90.txt | head -5 | cut -c1-200
timeout 150 python3 tests/models/check_models.py $K --quick --modes engine --build-args="--device cuda --fp16" --tol 1e-2 --top1 --json /tmp/e/models_fp16.json > /tmp/e/models_fp16.txt 2>&1
echo "models fp16 rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/e/models_fp16.txt | tail -24 | cut -c1-200
left=$((${CEND:-240} - (SECONDS-T0)))
[ $left -gt 60 ] && timeout $left python3 bench/gpu_bench.py $K --iters 50 --cases bert_base_fp16_b128 > /tmp/e/gpu_bench.txt 2>&1
echo "gpu_bench at $((SECONDS-T0)) s"; grep -E "^(bert|resnet)|gpu\"" /tmp/e/gpu_bench.txt | cut -c1-230
tar -C /tmp -czf $OUT/d5.tgz e
