#!/bin/bash
# Session 11, call: the model accuracy of issue 12 (carry .devrun with the
# packed corpus, no .whl): the corpus suite (trained models, CUDA engines in
# FP32/FP16/BF16 against onnxruntime) with its yardstick, then the exported
# model set in FP16 and BF16 with the time left (CEND, s).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/b
BUILD=build-gpu OUT=/tmp/b JOBS=${JOBS:-8} KILN_GPU_SUITES=corpus \
  timeout ${TLIM:-240} bash tests/gpu/run.sh > /tmp/b/run.txt 2>&1
echo "corpus rc $? at $((SECONDS-T0)) s"
for p in fp32 fp16 bf16; do
  echo "== $p"; grep -E "^(PASS|FAIL|XFAIL|XPASS|SKIP) |^      " /tmp/b/corpus_cuda_$p.log 2>/dev/null | cut -c1-180
done
grep -E "^=== corpus:|^--- |passed, .* failed$" /tmp/b/run.txt
for prec in fp16 bf16; do
  left=$((${CEND:-570} - (SECONDS-T0)))
  [ $left -lt 60 ] && break
  timeout $left python3 tests/models/check_models.py $K --quick --modes engine --build-args="--device cuda --$prec" \
    --tol 1e-2 --top1 --json /tmp/b/models_$prec.json > /tmp/b/models_$prec.txt 2>&1
  echo "models $prec rc $? at $((SECONDS-T0)) s"; grep -vE "^\s*$" /tmp/b/models_$prec.txt | tail -32 | cut -c1-170
done
tar -C /tmp -czf $OUT/s11b.tgz b
echo "end at $((SECONDS-T0)) s"
