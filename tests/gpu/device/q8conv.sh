#!/bin/bash
# Device call for the Hopper INT8 / FP8 implicit-GEMM convolution (issue 9,
# kernels/q8conv_sm90.cu): test_cuda_q8conv_sm90 (every configuration
# against the int64 host reference, the FP8 kind against exact products,
# then the ResNet-50 b256 timing print), then compute-sanitizer memcheck on
# the correctness cases alone (KILN_Q8CONV_BENCH=0). Logs in
# $OUT/q8conv.tgz, summary on stdout.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/q8
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv > /tmp/q8/gpu.txt 2>&1
timeout ${TT:-300} build-gpu/bin/test_cuda_q8conv_sm90 > /tmp/q8/test.txt 2>&1
echo "test_cuda_q8conv_sm90 rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/q8/test.txt | tail -1)"
grep -E "^FAIL|^  " /tmp/q8/test.txt | head -20 | cut -c1-220
grep -E "rounding tie|^ResNet|^layer|^conv1|^l[1-4] " /tmp/q8/test.txt | cut -c1-200
if command -v compute-sanitizer >/dev/null; then
  KILN_Q8CONV_BENCH=0 timeout ${ST:-400} compute-sanitizer --tool memcheck --leak-check no \
      --error-exitcode 1 build-gpu/bin/test_cuda_q8conv_sm90 > /tmp/q8/memcheck.txt 2>&1
  echo "memcheck rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed|ERROR SUMMARY' /tmp/q8/memcheck.txt | tail -2 | tr '\n' ' ')"
fi
tar -C /tmp -czf $OUT/q8conv.tgz q8
echo "end at $((SECONDS-T0)) s"
