#!/bin/bash
# Device call A: tests/gpu/run.sh (all suites but the model set), with the
# fuzzers in the background on idle cores when .devrun/fz exists.
. "$(dirname "$0")/prelude.sh"
[ -f .devrun/fz.tar.xz ] && tar -C .devrun -xJf .devrun/fz.tar.xz
[ -d .devrun/fz ] && bash .devrun/fuzzbg.sh ${FT:-480}
mkdir -p /tmp/g
BUILD=build-gpu OUT=/tmp/g JOBS=12 KILN_GPU_PAR=${PAR:-4} KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics runtime node int8 python serve sanitizer}" KILN_GPU_TEST_GRAPH_BUDGET_S=${GB:-120} \
  timeout ${TLIM:-540} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
[ -x build-gpu/bin/cuda_gemm_bench ] && KILN_GEMM_GRAPH_LOG=1 timeout 40 build-gpu/bin/cuda_gemm_bench > /tmp/g/gemm_bench.txt 2>&1
if [ -d .devrun/fz ]; then
  while [ $((SECONDS-T0)) -lt $(( ${FT:-480} + 25 )) ] && pgrep -f kiln_fuzz_ >/dev/null; do sleep 2; done
  pkill -INT -f kiln_fuzz_; sleep 3
  for f in onnx eng; do echo "== fuzz $f"; cat /tmp/fz/$f.time; grep -E "^#[0-9]+.*(DONE|pulse)|INFO: fuzzed|crash|CRASH|timeout|leak|ERROR" /tmp/fz/$f.log | tail -6; ls /tmp/fz/art_$f | head; done > /tmp/g/fuzz.txt 2>&1
  cp -r /tmp/fz/art_onnx /tmp/fz/art_eng /tmp/g/ 2>/dev/null; tail -c 20000 /tmp/fz/onnx.log > /tmp/g/fz_onnx_tail.log; tail -c 20000 /tmp/fz/eng.log > /tmp/g/fz_eng_tail.log
fi
tar -C /tmp -czf $OUT/gpu_tests.tgz g
grep -E "^--- |passed, .* failed$|^rc " /tmp/g/run.txt; grep -v "^kiln gemm graph" /tmp/g/gemm_bench.txt 2>/dev/null | tail -12 | cut -c1-160; cat /tmp/g/fuzz.txt 2>/dev/null | cut -c1-200
