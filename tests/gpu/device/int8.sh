#!/bin/bash
# One device call for the INT8 GPU work (issue 9): the INT8 tactic test, the
# INT8 end-to-end suite (digits CNN, onnxruntime Q/DQ model), then the INT8
# benchmark cases against FP16 in the same run and per-layer profiles of the
# INT8 engines (which QLinearConv tactic won, where the time goes).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/q
timeout ${TT:-120} build-gpu/bin/test_cuda_int8 > /tmp/q/test_cuda_int8.txt 2>&1
echo "test_cuda_int8 rc $? at $((SECONDS-T0)) s" >> /tmp/q/test_cuda_int8.txt
# the SM90 int8 implicit-GEMM convolution's own test, where built
if [ -x build-gpu/bin/test_cuda_q8conv_sm90 ]; then
  timeout ${TS:-90} build-gpu/bin/test_cuda_q8conv_sm90 > /tmp/q/test_cuda_q8conv_sm90.txt 2>&1
  echo "test_cuda_q8conv_sm90 rc $? at $((SECONDS-T0)) s" >> /tmp/q/test_cuda_q8conv_sm90.txt
fi
timeout ${TE:-200} python3 tests/quant/test_int8_gpu.py $K > /tmp/q/int8_e2e.txt 2>&1
echo "int8_e2e rc $? at $((SECONDS-T0)) s" >> /tmp/q/int8_e2e.txt
timeout ${TB:-400} python3 bench/gpu_bench.py $K --iters 50 --no-compile \
  --cases ${CASES:-resnet50_int8_b256,bert_base_int8_b128} --json /tmp/q/gpu_bench_int8.json \
  > /tmp/q/gpu_bench_int8.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/q/gpu_bench_int8.txt
# the same INT8 cases with the int8 layers kept NCHW (the A/B), then with
# the SM90 implicit-GEMM convolution offered (opt-in)
KILN_CHANNELS_LAST_INT8=0 timeout ${TB3:-150} python3 bench/gpu_bench.py $K --iters 50 --no-compile --no-torch \
  --cases ${CASES2:-resnet50_int8_b256} --work /tmp/kiln-gpu-bench-nchw --json /tmp/q/gpu_bench_int8_nchw.json \
  > /tmp/q/gpu_bench_int8_nchw.txt 2>&1
echo "bench nchw rc $? at $((SECONDS-T0)) s" >> /tmp/q/gpu_bench_int8_nchw.txt
KILN_QCONV_SM90=1 timeout ${TB2:-200} python3 bench/gpu_bench.py $K --iters 50 --no-compile --no-torch \
  --cases ${CASES2:-resnet50_int8_b256} --work /tmp/kiln-gpu-bench-sm90 --json /tmp/q/gpu_bench_int8_sm90.json \
  > /tmp/q/gpu_bench_int8_sm90.txt 2>&1
echo "bench sm90 rc $? at $((SECONDS-T0)) s" >> /tmp/q/gpu_bench_int8_sm90.txt
[ -f /tmp/kiln-gpu-bench-sm90/resnet50_int8_b256.kiln ] && timeout 60 $K inspect /tmp/kiln-gpu-bench-sm90/resnet50_int8_b256.kiln --profile-runs 10 --sort time > /tmp/q/resnet50_int8_b256_sm90.profile.txt 2>&1
for e in /tmp/kiln-gpu-bench/resnet50_int8_b256 /tmp/kiln-gpu-bench/bert_base_int8_b128; do
  [ -f $e.kiln ] && timeout 60 $K inspect $e.kiln --profile-runs 10 --sort time > /tmp/q/$(basename $e).profile.txt 2>&1; done
tar -C /tmp -czf $OUT/int8.tgz q
tail -5 /tmp/q/test_cuda_int8.txt; tail -12 /tmp/q/test_cuda_q8conv_sm90.txt 2>/dev/null; grep -E "^(ok|FAIL)|passed" /tmp/q/int8_e2e.txt; tail -8 /tmp/q/gpu_bench_int8.txt | cut -c1-220; tail -4 /tmp/q/gpu_bench_int8_nchw.txt | cut -c1-220; tail -4 /tmp/q/gpu_bench_int8_sm90.txt | cut -c1-220
