#!/bin/bash
# Session 7, call 3: CUDA graph slots (test_cuda_runtime), qkv_placement's
# count line, what a new batch size costs a dynamic-batch ResNet-50 FP16
# engine (bench/shape_switch.py; cuDNN graph convolutions on and off), and
# kiln serve's GPU batching with padded batches (bench/serve_bench.py --gpu).
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/s /tmp/g
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_GPU_SUITES="tactics runtime" KILN_GPU_TACTICS=none \
  timeout 100 bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
export PYTHONPATH=$PWD/py:$PYTHONPATH
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench; run_bench.WORK='/tmp/sw'; print(run_bench.export('resnet50')[0])" > /tmp/s/onnx.txt 2>&1
ONNX=$(tail -1 /tmp/s/onnx.txt)
SZ=1,2,3,5,8,13,21,34,55,64
timeout 150 python3 bench/shape_switch.py $K $ONNX /tmp/sw/r50_graph.kiln --sizes $SZ > /tmp/s/switch_graph.txt 2>&1
echo "rc $? at $((SECONDS-T0)) s" >> /tmp/s/switch_graph.txt
KILN_CONV_GRAPH=0 timeout 100 python3 bench/shape_switch.py $K $ONNX /tmp/sw/r50_legacy.kiln --sizes $SZ > /tmp/s/switch_legacy.txt 2>&1
echo "rc $? at $((SECONDS-T0)) s" >> /tmp/s/switch_legacy.txt
left=$((${C3_END:-575} - (SECONDS-T0)))
WRK_THREADS=4 timeout $left python3 bench/serve_bench.py $K --models resnet50 --gpu --duration 5 --server-threads 8 --json /tmp/s/r50gpu.json > /tmp/s/r50gpu.txt 2>&1
echo "r50 gpu rc $? at $((SECONDS-T0)) s" >> /tmp/s/r50gpu.txt
cp build/serve_bench/*.log /tmp/s/ 2>/dev/null
tar -C /tmp -czf $OUT/c3.tgz s g
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; grep -E "^FAIL" /tmp/g/*.log | head -5 | cut -c1-200
cat /tmp/s/switch_graph.txt /tmp/s/switch_legacy.txt | grep -v "^\[kiln" | tail -24 | cut -c1-200
grep -vE "^\s*$|^\[kiln" /tmp/s/r50gpu.txt | tail -12 | cut -c1-220; grep -h "ready:" /tmp/s/kiln_serve_resnet50.log | cut -c1-250
