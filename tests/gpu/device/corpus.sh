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
tar -C /tmp -czf $OUT/corpus.tgz c
grep -E "^(PASS|FAIL|XFAIL|XPASS|SKIP) |^      |^=== |^--- |passed, .* failed|^rc " /tmp/c/corpus_cuda_*.log /tmp/c/run.txt | cut -c1-220
