#!/bin/bash
# The CPU benchmark on the device's host (16 cores, AVX-512): Kiln against
# onnxruntime in one run of bench/run_bench.py, 1 thread and all cores
# (issue 6). Optionally the GPU suites first (SUITES="..." TT=seconds).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/c
lscpu > /tmp/c/lscpu.txt 2>&1; nproc >> /tmp/c/lscpu.txt
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__)" >> /tmp/c/lscpu.txt 2>&1
if [ -n "$SUITES" ]; then
  BUILD=build-gpu OUT=/tmp/c JOBS=16 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="$SUITES" \
    timeout ${TT:-200} bash tests/gpu/run.sh > /tmp/c/run.txt 2>&1
  echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/c/run.txt
fi
timeout ${TC:-420} python3 bench/run_bench.py $K --models ${CMODELS:-resnet50,mobilenet_v2,bert} --batches ${CBATCH:-1,8} --threads ${CTHREADS:-1,all} --duration ${CDUR:-2} > /tmp/c/cpu_bench.txt 2>&1
echo "cpu bench rc $? at $((SECONDS-T0)) s" >> /tmp/c/cpu_bench.txt
tar -C /tmp -czf $OUT/cpu16.tgz c
grep -E "^--- |passed, .* failed$|rc " /tmp/c/run.txt 2>/dev/null; grep -E "Model name|^CPU\(s\)|Flags" /tmp/c/lscpu.txt | cut -c1-300; cat /tmp/c/cpu_bench.txt | tail -30 | cut -c1-200
