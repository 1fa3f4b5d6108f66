#!/bin/bash
# One device call: tactic/runtime/int8/python suites (fuzzers on idle cores
# meanwhile), the flash-attention micro-benchmark, then bench/gpu_bench.py and
# per-layer profiles. Env: TT (tests s), FT (fuzz s), TB (bench s), CASES.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
[ -f .devrun/fz.tar.xz ] && tar -C .devrun -xJf .devrun/fz.tar.xz && bash .devrun/fuzzbg.sh ${FT:-200}
BUILD=build-gpu OUT=/tmp/g JOBS=12 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics runtime int8 python}" KILN_GPU_TEST_GRAPH_BUDGET_S=${GB:-60} \
  timeout ${TT:-200} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
pkill -INT -f kiln_fuzz_; sleep 2
for f in onnx eng; do echo "== fuzz $f"; cat /tmp/fz/$f.time; grep -E "INFO: fuzzed|DONE|crash|CRASH|timeout|leak|ERROR" /tmp/fz/$f.log | tail -6; ls /tmp/fz/art_$f | head; done > /tmp/g/fuzz.txt 2>&1
cp -r /tmp/fz/art_onnx /tmp/fz/art_eng /tmp/g/ 2>/dev/null; tail -c 20000 /tmp/fz/onnx.log > /tmp/g/fz_onnx_tail.log 2>/dev/null; tail -c 20000 /tmp/fz/eng.log > /tmp/g/fz_eng_tail.log 2>/dev/null
pkill -9 -f kiln_fuzz_
timeout 40 build-gpu/bin/cuda_attn_bench > /tmp/b/attn_bench.txt 2>&1
timeout ${TB:-300} python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-bert_base_fp16_b128,bert_base_fp16_b1,resnet50_fp16_b1,resnet50_fp16_b256} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
for e in /tmp/kiln-gpu-bench/bert_base_fp16_b128 /tmp/kiln-gpu-bench/resnet50_fp16_b1 /tmp/kiln-gpu-bench/resnet50_fp16_b256; do
  [ -f $e.kiln ] && timeout 25 $K inspect $e.kiln --profile-runs 10 --sort time > /tmp/b/$(basename $e).profile.txt 2>&1; done
echo "end at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
tar -C /tmp -czf $OUT/combo.tgz g b
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; cut -c1-160 /tmp/g/fuzz.txt; grep -E "v2|v1|speed" /tmp/b/attn_bench.txt | head -12; tail -14 /tmp/b/gpu_bench.txt | cut -c1-220
