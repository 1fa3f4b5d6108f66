#!/bin/bash
# Session 8, first call: regression on main (SM90 opt-in, pool warm-up
# helper, poll() serve) -- runtime, serve, int8, python suites and the SM90
# GEMM test; look for pretrained weights on the host; GPU INT8 vs FP16
# (ResNet-50 b256, BERT b128) with what time is left (CEND = end, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/o
{ ls -la ~/.cache/torch/hub/checkpoints ~/.cache/huggingface/hub 2>&1 | head -20
  find / -xdev \( -name "*.pth" -o -name "*.safetensors" -o -name "pytorch_model.bin" \) -size +5M 2>/dev/null | head -20
  python3 -c "import torch; print('TORCH_HOME', torch.hub.get_dir())"; env | grep -iE "hf_|torch|transformers" ; } > /tmp/o/weights.txt 2>&1
echo "weights scan:"; cat /tmp/o/weights.txt | head -30
BUILD=build-gpu OUT=/tmp/o/g JOBS=16 KILN_GPU_SUITES="runtime int8 python serve" timeout 200 bash tests/gpu/run.sh > /tmp/o/run.txt 2>&1
echo "suites rc $? at $((SECONDS-T0)) s"
grep -E "^--- |passed, .* failed$" /tmp/o/run.txt; grep -hE "FAIL" /tmp/o/g/*.log | head -5 | cut -c1-200
KILN_GEMM_SM90=1 timeout 90 build-gpu/bin/test_cuda_gemm_sm90 > /tmp/o/sm90.txt 2>&1; echo "sm90 rc $?"; tail -2 /tmp/o/sm90.txt
left=$((${CEND:-560} - (SECONDS-T0)))
echo "int8 bench with $left s"
[ $left -gt 60 ] && timeout $left python3 bench/gpu_bench.py $K --iters 20 --no-torch --cases resnet50_int8_b256,bert_base_int8_b128 > /tmp/o/int8.txt 2>&1
echo "int8 rc $?"; grep -vE "^\s*$" /tmp/o/int8.txt | tail -25 | cut -c1-250
tar -C /tmp -czf $OUT/d1.tgz --exclude='*.kiln' --exclude='*.onnx' --exclude='*.bin' o
