#!/bin/bash
# Session 11, call 1 (carry .devrun with the packed corpus, no .whl):
# 1. test_cuda_q8conv_sm90 after the output-size fix (a dilated filter wider
#    than the padded input counted one output pixel; its TMA descriptors then
#    faulted, "illegal instruction", session 10); memcheck if it fails;
# 2. INT8 against FP16 (ResNet-50 b256, BERT-base b128), then ResNet-50
#    INT8 with the SM90 implicit-GEMM convolution offered, with profiles;
# 3. flash attention v3's test and A/B, the new kernels' tests;
# 4. gpu_bench against torch on the issue-12 cases, with the time left.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/a
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > /tmp/a/smi.txt 2>&1
KILN_Q8CONV_BENCH=${QB:-1} timeout ${TT:-150} build-gpu/bin/test_cuda_q8conv_sm90 > /tmp/a/q8conv.txt 2>&1
rc=$?
echo "test_cuda_q8conv_sm90 rc $rc at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/a/q8conv.txt | tail -1)"
grep -E "^FAIL" /tmp/a/q8conv.txt | head -8 | cut -c1-200
grep -vE "^FAIL" /tmp/a/q8conv.txt | tail -45 | cut -c1-200
if [ $rc != 0 ] && command -v compute-sanitizer >/dev/null; then
  KILN_Q8CONV_BENCH=0 timeout 100 compute-sanitizer --tool memcheck --leak-check no --show-backtrace device \
      build-gpu/bin/test_cuda_q8conv_sm90 > /tmp/a/q8memcheck.txt 2>&1
  echo "memcheck rc $? at $((SECONDS-T0)) s"; grep -m1 -B2 -A25 "=========" /tmp/a/q8memcheck.txt | cut -c1-220
fi
# flash attention v3 (session 11, attn128; opt-in): the test, the
# micro-benchmark, then BERT-base b128 end to end with v3 off/auto/off/auto
timeout 150 build-gpu/bin/test_cuda_attn > /tmp/a/attn.txt 2>&1
echo "test_cuda_attn rc $? at $((SECONDS-T0)) s: $(tail -1 /tmp/a/attn.txt)"; grep -E "^FAIL|v3 vs v2" /tmp/a/attn.txt | head -6 | cut -c1-200
timeout 60 build-gpu/bin/cuda_attn_bench 200 > /tmp/a/attn_bench.txt 2>&1; head -12 /tmp/a/attn_bench.txt | cut -c1-200
for v in 0 auto 0 auto; do
  KILN_ATTN_V3=$v timeout 60 python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases bert_base_fp16_b128 > /tmp/a/bert_v3_$v.txt 2>&1
  echo "KILN_ATTN_V3=$v: $(grep -E '^bert' /tmp/a/bert_v3_$v.txt | cut -c1-120)"
done
# the new CUDA kernels of session 11 (integer ArgMax, RoiAlign, MaxRoiPool,
# STFT, ConvInteger/MatMulInteger and their ToFloat forms)
timeout 60 build-gpu/bin/test_cuda_reduce > /tmp/a/reduce.txt 2>&1; echo "test_cuda_reduce rc $?: $(tail -1 /tmp/a/reduce.txt)"
timeout 60 build-gpu/bin/test_cuda_pool > /tmp/a/pool.txt 2>&1; echo "test_cuda_pool rc $?: $(tail -1 /tmp/a/pool.txt)"
timeout 60 build-gpu/bin/test_cuda_einsum > /tmp/a/einsum.txt 2>&1; echo "test_cuda_einsum rc $?: $(tail -1 /tmp/a/einsum.txt)"
timeout 120 build-gpu/bin/test_cuda_int8 > /tmp/a/int8t.txt 2>&1; echo "test_cuda_int8 rc $?: $(tail -1 /tmp/a/int8t.txt)"
grep -E "^FAIL" /tmp/a/reduce.txt /tmp/a/pool.txt /tmp/a/einsum.txt /tmp/a/int8t.txt | head -8 | cut -c1-200
timeout ${TB:-240} python3 bench/gpu_bench.py $K --iters 50 --no-compile --no-torch \
  --cases ${ICASES:-resnet50_int8_b256} --json /tmp/a/int8.json > /tmp/a/int8.txt 2>&1
echo "int8 bench rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/a/int8.txt | tail -8 | cut -c1-220
if [ $rc = 0 ]; then
  KILN_QCONV_SM90=1 timeout ${TB2:-120} python3 bench/gpu_bench.py $K --iters 50 --no-compile --no-torch \
    --cases resnet50_int8_b256 --work /tmp/kiln-gpu-bench-sm90 --json /tmp/a/int8_sm90.json > /tmp/a/int8_sm90.txt 2>&1
  echo "int8 sm90 bench rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/a/int8_sm90.txt | tail -5 | cut -c1-220
  E=/tmp/kiln-gpu-bench-sm90/resnet50_int8_b256.kiln
  [ -f $E ] && timeout 40 $K inspect $E --profile-runs 10 --sort time > /tmp/a/rn50_int8_sm90.prof.txt 2>&1
fi
E=/tmp/kiln-gpu-bench/resnet50_int8_b256.kiln
[ -f $E ] && timeout 40 $K inspect $E --profile-runs 10 --sort time > /tmp/a/rn50_int8.prof.txt 2>&1
E=/tmp/kiln-gpu-bench/bert_base_int8_b128.kiln
[ -f $E ] && timeout 40 $K inspect $E --profile-runs 10 --sort time > /tmp/a/bert_int8.prof.txt 2>&1
echo "profiles at $((SECONDS-T0)) s"
for f in /tmp/a/*.prof.txt; do echo "== $f"; head -22 $f | cut -c1-200; done
left=$((${CEND:-570} - (SECONDS-T0)))
if [ $left -gt 60 ]; then
  timeout $left python3 bench/gpu_bench.py $K --iters 50 \
    --cases ${CASES:-bert_base_fp16_b128,resnet50_fp16_b256,bert_base_fp16_b1,resnet50_fp16_b1,mobilenet_v2_fp16_b1,resnet50_fp32_b256} \
    --json /tmp/a/gpu_bench.json > /tmp/a/gpu_bench.txt 2>&1
  echo "gpu_bench rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/a/gpu_bench.txt | tail -14 | cut -c1-230
fi
tar -C /tmp -czf $OUT/s11a.tgz a
echo "end at $((SECONDS-T0)) s"
