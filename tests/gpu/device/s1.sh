#!/bin/bash
# First call of a session with unverified CUDA work: the tactic, runtime and
# node suites; then a Kiln-only A/B of BERT-base FP16 (b128, b1) with the
# opt-in switches (KILN_QKV, KILN_CUDA_ELT_FAST) off and on (on only when
# test_cuda_attn / test_cuda_eltwise passed here); then gpu_bench with
# torch.compile (switches as tested) and a BERT b128 profile. Fuzzers run on
# the idle cores meanwhile.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
[ -f .devrun/fz.tar.xz ] && tar -C .devrun -xJf .devrun/fz.tar.xz && bash .devrun/fuzzbg.sh ${FT:-500}
BUILD=build-gpu OUT=/tmp/g JOBS=12 KILN_GPU_SUITES="tactics runtime node" timeout ${TT:-200} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
ON=""
grep -q "^--- test_cuda_attn: [0-9]* passed, 0 failed" /tmp/g/run.txt && ON="$ON KILN_QKV=1"
grep -q "^--- test_cuda_eltwise: [0-9]* passed, 0 failed" /tmp/g/run.txt && ON="$ON KILN_CUDA_ELT_FAST=1"
echo "switches on: $ON" >> /tmp/g/run.txt
C=${ABCASES:-bert_base_fp16_b128,bert_base_fp16_b1}
KILN_QKV=0 KILN_CUDA_ELT_FAST=0 timeout ${TA:-110} python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases $C --work /tmp/wA > /tmp/b/ab_off.txt 2>&1
echo "A rc $? at $((SECONDS-T0)) s" >> /tmp/b/ab_off.txt
cp /tmp/wA/*.onnx /tmp/ 2>/dev/null; mkdir -p /tmp/kiln-gpu-bench; cp /tmp/wA/*.onnx /tmp/kiln-gpu-bench/ 2>/dev/null
[ -n "$ON" ] && export $ON
timeout ${TB:-230} python3 bench/gpu_bench.py $K --iters 50 ${NOCOMPILE:+--no-compile} --cases ${CASES:-bert_base_fp16_b128,bert_base_fp16_b1,resnet50_fp16_b1} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 25 $K inspect $e --profile-runs 5 --sort time > /tmp/b/bert_profile.txt 2>&1
pkill -INT -f kiln_fuzz_; sleep 2
for f in onnx eng; do echo "== fuzz $f"; cat /tmp/fz/$f.time; grep -E "INFO: fuzzed|DONE|crash|CRASH|timeout|leak|ERROR" /tmp/fz/$f.log | tail -4; ls /tmp/fz/art_$f | head; done > /tmp/g/fuzz.txt 2>&1
cp -r /tmp/fz/art_onnx /tmp/fz/art_eng /tmp/g/ 2>/dev/null
echo "end at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
tar -C /tmp -czf $OUT/s1.tgz g b
grep -E "^--- |passed, .* failed$|rc |switches" /tmp/g/run.txt; cut -c1-160 /tmp/g/fuzz.txt | head -12; tail -4 /tmp/b/ab_off.txt | cut -c1-200; tail -6 /tmp/b/gpu_bench.txt | cut -c1-230; grep -E "^ +[0-9]+ |profile:" /tmp/b/bert_profile.txt | head -16 | cut -c1-140
