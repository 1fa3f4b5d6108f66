#!/bin/bash
# Session 8, the helpers' GPU work in one call: the SM90 GEMM with
# compile-time activations and the fast exact GELU (test + FFN bench), BERT
# b128 end to end with the SM90 tactics offered (with torch), its profile,
# kiln serve ResNet-50 on the GPU with the batcher's staging, serve_gpu,
# then BERT Kiln-only with the SM90 tactics withdrawn (A/B).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/d
timeout 100 build-gpu/bin/test_cuda_gemm_sm90 > /tmp/d/test_sm90.txt 2>&1
echo "test_cuda_gemm_sm90 rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/d/test_sm90.txt | tail -1)"
grep -E "^FAIL|FAIL |GELU tail" /tmp/d/test_sm90.txt | head -12 | cut -c1-200
KILN_GEMM_GRAPH=0 timeout 40 build-gpu/bin/cuda_gemm_bench 50 16384 f16 > /tmp/d/bench_f16.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s"; grep -E "^FFN|lt_h0 |lt_h1 |sm90" /tmp/d/bench_f16.txt | grep -v declines | cut -c1-140
KILN_GEMM_SM90=1 timeout 200 python3 bench/gpu_bench.py $K --iters 50 --cases bert_base_fp16_b128 > /tmp/d/bert_sm90.txt 2>&1
echo "bert sm90 rc $? at $((SECONDS-T0)) s"; grep -E "^bert|kiln |torch|ratio" /tmp/d/bert_sm90.txt | cut -c1-220
E=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln
timeout 30 $K inspect $E --profile-runs 5 --sort time > /tmp/d/bert_prof.txt 2>&1
sed -n "/^profile:/,\$p" /tmp/d/bert_prof.txt | head -16 | cut -c1-150
WRK_THREADS=4 timeout 150 python3 bench/serve_bench.py $K --models resnet50 --gpu --duration 4 \
  --server-threads 8 --concurrency 64 > /tmp/d/r50gpu.txt 2>&1
echo "serve rc $? at $((SECONDS-T0)) s"; grep -E "^\| resnet50|kiln bench|first" /tmp/d/r50gpu.txt | cut -c1-220
BUILD=build-gpu OUT=/tmp/d/g JOBS=16 KILN_GPU_SUITES="serve" timeout 60 bash tests/gpu/run.sh > /tmp/d/run.txt 2>&1
grep -E "^--- " /tmp/d/run.txt
left=$((${CEND:-560} - (SECONDS-T0)))
[ $left -gt 30 ] && KILN_GEMM_SM90=0 timeout $left python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases bert_base_fp16_b128,bert_base_fp16_b1 > /tmp/d/bert_lt.txt 2>&1
echo "bert lt at $((SECONDS-T0)) s"; grep -E "^bert" /tmp/d/bert_lt.txt | cut -c1-200
cp build/serve_bench/*.log /tmp/d/ 2>/dev/null
tar -C /tmp -czf $OUT/d3.tgz --exclude='*.kiln' --exclude='*.onnx' d
