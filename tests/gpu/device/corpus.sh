#!/bin/bash
# Device call: the corpus suite of tests/gpu/run.sh (trained models packed by
# corpus_pack.sh, through CUDA engines in FP32/FP16/BF16 against onnxruntime).
# Carry .devrun (gpu-bin.tar.xz, lib, corpus.tar.xz); .whl is not needed
# (the machine's onnx reads the cases) and would not fit next to the corpus.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/c
BUILD=build-gpu OUT=/tmp/c JOBS=${JOBS:-8} KILN_GPU_SUITES=corpus \
  timeout ${TLIM:-540} bash tests/gpu/run.sh > /tmp/c/run.txt 2>&1
echo "rc $? at $((SECONDS-T0)) s" >> /tmp/c/run.txt
# the yardstick: half storage emulated in onnxruntime on the CPU (seconds)
for p in "" --bf16; do timeout 120 python3 tests/models/corpus_half.py --cache .devrun/corpus $p; done > /tmp/c/half_yardstick.txt 2>&1
for p in fp32 fp16 bf16; do
  echo "== $p"
  grep -E "^(PASS|FAIL|XFAIL|XPASS|SKIP) |^      " /tmp/c/corpus_cuda_$p.log 2>/dev/null | cut -c1-200
done
tar -C /tmp -czf $OUT/corpus.tgz c
echo "== yardstick (tests/models/corpus_half.py: FP16/BF16 storage, FP32 arithmetic, onnxruntime)"
cut -c1-160 /tmp/c/half_yardstick.txt
grep -E "^=== corpus:|^--- |passed, .* failed$|^rc " /tmp/c/run.txt
