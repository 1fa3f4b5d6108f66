#!/bin/bash
# One device call: CUDA tactic tests, runtime, Python DLPack, serve on the GPU,
# then the GPU benchmark (4 cases) and per-layer profiles.
export PYTHONUNBUFFERED=1
T0=$SECONDS
tar xJf .devrun/gpu-bin.tar.xz
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
export LD_LIBRARY_PATH=$PWD/.devrun/lib PATH=$PWD/.devrun/bin:$PATH
K=build-gpu/bin/kiln
mkdir -p /tmp/g /tmp/b
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="tactics runtime python serve" \
  timeout ${TT:-200} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
[ -x build-gpu/bin/cuda_attn_bench ] && timeout 60 build-gpu/bin/cuda_attn_bench > /tmp/b/cuda_attn_bench.txt 2>&1
timeout ${TB:-300} python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-resnet50_fp16_b256,bert_base_fp16_b128,resnet50_fp16_b1,bert_base_fp16_b1} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
for e in /tmp/kiln-gpu-bench/resnet50_fp16_b256 /tmp/kiln-gpu-bench/bert_base_fp16_b128 /tmp/kiln-gpu-bench/resnet50_fp16_b1; do
  [ -f $e.kiln ] && timeout 30 $K inspect $e.kiln --profile-runs 10 --sort time > /tmp/b/$(basename $e).profile.txt 2>&1; done
echo "end at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
tar -C /tmp -czf $OUT/combo.tgz g b
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; cat /tmp/b/cuda_attn_bench.txt 2>/dev/null; tail -25 /tmp/b/gpu_bench.txt | cut -c1-220
