#!/bin/bash
# Session 7, call 1 (measurements of code already on main): the tactic suites
# last session's limit cut off (int8, norm, pool, reduce, rnn), GPU INT8 vs
# FP16 (issue 9), ResNet-50 FP32 b256 vs torch (issue 12), engine load times
# (bench/load_time.py), and per-layer profiles of the INT8 engines.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
W=/tmp/kiln-gpu-bench
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_GPU_SUITES=tactics \
  KILN_GPU_TACTICS="${TACTICS:-test_cuda_int8 test_cuda_norm test_cuda_pool test_cuda_reduce test_cuda_rnn}" \
  timeout ${TT:-150} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
timeout ${TI:-210} python3 bench/gpu_bench.py $K --iters 30 --no-torch --cases resnet50_int8_b256,bert_base_int8_b128 --json /tmp/b/int8.json > /tmp/b/int8.txt 2>&1
echo "int8 rc $? at $((SECONDS-T0)) s" >> /tmp/b/int8.txt
left=$((560 - (SECONDS-T0)))
if [ $left -gt 120 ]; then
  timeout $((left-60)) python3 bench/gpu_bench.py $K --iters 20 --cases resnet50_fp32_b256 --json /tmp/b/fp32.json > /tmp/b/fp32.txt 2>&1
  echo "fp32 rc $? at $((SECONDS-T0)) s" >> /tmp/b/fp32.txt
fi
PYTHONPATH=$PWD/py:$PYTHONPATH timeout 40 python3 bench/load_time.py $W/resnet50_fp16_b256.kiln $W/bert_base_fp16_b128.kiln $W/resnet50_int8_b256.kiln $W/resnet50_fp32_b256.kiln > /tmp/b/load.txt 2>&1
for e in resnet50_int8_b256 bert_base_int8_b128; do
  [ $((SECONDS-T0)) -lt 570 ] && [ -f $W/$e.kiln ] && timeout 20 $K inspect $W/$e.kiln --profile-runs 3 --sort time > /tmp/b/$e.profile.txt 2>&1
done
tar -C /tmp -czf $OUT/c1.tgz g b
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; grep -E "^FAIL" /tmp/g/*.log | head -5 | cut -c1-200
grep -E "kiln |rc |int8|error" /tmp/b/int8.txt | cut -c1-230; grep -E "kiln |torch|rc " /tmp/b/fp32.txt | cut -c1-230; cat /tmp/b/load.txt | cut -c1-250
for e in resnet50_int8_b256 bert_base_int8_b128; do grep -E "^ +[0-9]+ |profile:" /tmp/b/$e.profile.txt 2>/dev/null | head -10 | cut -c1-150; done
