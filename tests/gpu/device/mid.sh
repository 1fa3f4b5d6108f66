#!/bin/bash
# One call: tactic/runtime/node suites, FP16 model set, BERT/ResNet bench with torch.compile, BERT profile.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
[ -f .devrun/fz.tar.xz ] && tar -C .devrun -xJf .devrun/fz.tar.xz && bash .devrun/fuzzbg.sh ${FT:-400}
BUILD=build-gpu OUT=/tmp/g JOBS=12 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="tactics runtime node" timeout ${TT:-200} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
[ "${TM:-130}" != 0 ] && timeout ${TM:-130} python3 tests/models/check_models.py $K --quick --modes engine --build-args="--device cuda --fp16" --tol 1e-2 --top1 --json /tmp/g/models_fp16.json > /tmp/g/models_fp16.log 2>&1
echo "models rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
timeout 30 build-gpu/bin/cuda_elt_bench > /tmp/b/elt_bench.txt 2>&1
timeout ${TB:-200} python3 bench/gpu_bench.py $K --iters 50 ${NOCOMPILE:+--no-compile} --cases ${CASES:-bert_base_fp16_b128,bert_base_fp16_b1,resnet50_fp16_b1} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 25 $K inspect $e --profile-runs 5 --sort time > /tmp/b/bert_profile.txt 2>&1
pkill -INT -f kiln_fuzz_; sleep 2
for f in onnx eng; do echo "== fuzz $f"; cat /tmp/fz/$f.time; grep -E "INFO: fuzzed|DONE|crash|CRASH|timeout|leak|ERROR" /tmp/fz/$f.log | tail -4; ls /tmp/fz/art_$f | head; done > /tmp/g/fuzz.txt 2>&1
cp -r /tmp/fz/art_onnx /tmp/fz/art_eng /tmp/g/ 2>/dev/null
echo "end at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
tar -C /tmp -czf $OUT/mid.tgz g b
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; tail -4 /tmp/g/models_fp16.log | cut -c1-200; cut -c1-160 /tmp/g/fuzz.txt | head -12; cut -c1-150 /tmp/b/elt_bench.txt | head -20; tail -8 /tmp/b/gpu_bench.txt | cut -c1-220; head -30 /tmp/b/bert_profile.txt | grep -E "^ +[0-9]+ |profile:" | cut -c1-140 | head -16
