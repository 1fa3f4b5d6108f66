#!/bin/bash
# Device call for the SM90 GEMM's fused erf GELU (issue 12, BERT FFN-in):
# test_cuda_gemm_sm90 (every configuration and instantiation against the
# reference, the GELU tail within 0.6 ulp of the true GELU), then
# cuda_gemm_bench (every FusedGemm tactic on BERT's FFN-in, M 16384 K 768
# N 3072 bias + erf GELU, and FFN-out, K 3072 N 768 bias + residual: ms,
# TFLOP/s, max |diff| against cuBLASLt + our GELU pass), twice, FP16, then
# once at BF16. Under 3 minutes; logs in $OUT/gelu.tgz, summary on stdout.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g
timeout ${TT:-100} build-gpu/bin/test_cuda_gemm_sm90 > /tmp/g/test_sm90.txt 2>&1
echo "test_cuda_gemm_sm90 rc $? at $((SECONDS-T0)) s: $(grep -E 'passed, .* failed' /tmp/g/test_sm90.txt | tail -1)"
grep -E "^FAIL|FAIL " /tmp/g/test_sm90.txt | head -10 | cut -c1-200
grep -E "GELU tail" /tmp/g/test_sm90.txt | cut -c1-160
for r in 1 2; do
  KILN_GEMM_GRAPH=0 timeout 30 build-gpu/bin/cuda_gemm_bench 50 16384 f16 > /tmp/g/bench_f16_$r.txt 2>&1
  echo "bench f16 run $r rc $? at $((SECONDS-T0)) s"
  grep -E "^device|^FFN|lt_h0 |sm90" /tmp/g/bench_f16_$r.txt | cut -c1-140
done
KILN_GEMM_GRAPH=0 timeout 30 build-gpu/bin/cuda_gemm_bench 30 16384 bf16 > /tmp/g/bench_bf16.txt 2>&1
echo "bench bf16 rc $? at $((SECONDS-T0)) s"
grep -E "^FFN|lt_h0 |sm90" /tmp/g/bench_bf16.txt | grep -v declines | cut -c1-140
tar -C /tmp -czf $OUT/gelu.tgz g
echo "end at $((SECONDS-T0)) s"
