#!/bin/bash
# Session 7, call 4: GPU INT8 vs FP16 (issue 9; calibration batch now the
# engine's batch) and ResNet-50 exact FP32 b256 vs torch with TF32 off.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/b
W=/tmp/kiln-gpu-bench
timeout ${TI:-280} python3 bench/gpu_bench.py $K --iters 30 --no-torch --cases resnet50_int8_b256,bert_base_int8_b128 --json /tmp/b/int8.json > /tmp/b/int8.txt 2>&1
echo "int8 rc $? at $((SECONDS-T0)) s" >> /tmp/b/int8.txt
for e in resnet50_int8_b256 bert_base_int8_b128; do
  [ -f $W/$e.kiln ] && timeout 25 $K inspect $W/$e.kiln --profile-runs 3 --sort time > /tmp/b/$e.profile.txt 2>&1
done
left=$((570 - (SECONDS-T0)))
[ $left -gt 90 ] && timeout $left python3 bench/gpu_bench.py $K --iters 20 --cases resnet50_fp32_b256 --json /tmp/b/fp32.json > /tmp/b/fp32.txt 2>&1
echo "fp32 rc $? at $((SECONDS-T0)) s" >> /tmp/b/fp32.txt
tar -C /tmp -czf $OUT/c4.tgz b
grep -E "kiln |rc |error" /tmp/b/int8.txt | cut -c1-250; grep -E "kiln |rc " /tmp/b/fp32.txt | cut -c1-230
for e in resnet50_int8_b256 bert_base_int8_b128; do grep -E "^ +[0-9]+ |profile:" /tmp/b/$e.profile.txt 2>/dev/null | head -12 | cut -c1-150; done
