#!/bin/bash
# Final device call: GPU checks of the fixes, then the 16-core CPU benchmark.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/f
BUILD=build-gpu OUT=/tmp/f JOBS=16 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics runtime node python serve}" \
  timeout ${TT:-210} bash tests/gpu/run.sh > /tmp/f/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/f/run.txt
python3 -c "import sys; sys.path.insert(0,'bench'); import gpu_bench as g; g.export('resnet50','/tmp/r50.onnx')" 2>/dev/null
$K build /tmp/r50.onnx -o /tmp/r50b1.kiln --device cuda --fp16 --shapes input:1x3x224x224 > /tmp/f/r50b1_build.txt 2>&1
$K bench --engine /tmp/r50b1.kiln --shapes input:1x3x224x224 --no-data-transfers --duration 2 > /tmp/f/r50b1_bench.txt 2>&1
echo "r50 b1 at $((SECONDS-T0)) s: $(grep 'GPU compute' /tmp/f/r50b1_bench.txt | head -1)" >> /tmp/f/run.txt
lscpu > /tmp/f/lscpu.txt 2>&1
timeout ${TC:-240} python3 bench/run_bench.py $K --models ${CMODELS:-resnet50,mobilenet_v2,bert} --batches ${CBATCH:-1,8} --threads 1,all --duration 2 > /tmp/f/cpu_bench.txt 2>&1
echo "cpu bench rc $? at $((SECONDS-T0)) s" >> /tmp/f/run.txt
tar -C /tmp -czf $OUT/final.tgz f
grep -E "^--- |passed, .* failed$|rc |r50 b1|device builds" /tmp/f/run.txt; grep "kiln/ort" /tmp/f/cpu_bench.txt
