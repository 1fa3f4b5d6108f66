#!/bin/bash
# Session 7, GPU call: the SM90 CUTLASS GEMM tactic (test_cuda_gemm_sm90,
# cuda_gemm_bench, BERT b128 with KILN_GEMM_SM90=0 vs on, gpu_bench with
# torch), CUDA graph slots (test_cuda_runtime), a new batch size's cost
# (shape_switch.py) and kiln serve on the GPU with padded batches.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b /tmp/s
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_GPU_SUITES="tactics runtime" KILN_GPU_TACTICS="test_cuda_gemm_sm90" \
  timeout 120 bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
grep -E "^--- |passed, .* failed$|rc " /tmp/g/run.txt; grep -hE "^FAIL" /tmp/g/*.log | head -8 | cut -c1-220
KILN_GEMM_GRAPH=0 timeout 60 build-gpu/bin/cuda_gemm_bench 30 16384 f16 > /tmp/g/gemm_bench.txt 2>&1
grep -v "^kiln gemm graph" /tmp/g/gemm_bench.txt | tail -14 | cut -c1-170
W=/tmp/kiln-gpu-bench
KILN_GEMM_SM90=0 timeout 100 python3 bench/gpu_bench.py $K --iters 50 --no-torch --cases bert_base_fp16_b128 --work /tmp/wA > /tmp/b/ab_off.txt 2>&1
echo "A rc $? at $((SECONDS-T0)) s" >> /tmp/b/ab_off.txt; grep -E "kiln |rc " /tmp/b/ab_off.txt | cut -c1-200
mkdir -p $W; cp /tmp/wA/*.onnx $W/ 2>/dev/null
timeout 200 python3 bench/gpu_bench.py $K --iters 50 --cases bert_base_fp16_b128,bert_base_fp16_b1 --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt; grep -E "kiln |rc " /tmp/b/gpu_bench.txt | cut -c1-230
[ -f $W/bert_base_fp16_b128.kiln ] && timeout 25 $K inspect $W/bert_base_fp16_b128.kiln --profile-runs 5 --sort time > /tmp/b/bert.profile.txt 2>&1
grep -E "^ +[0-9]+ |profile:" /tmp/b/bert.profile.txt | head -8 | cut -c1-150
export PYTHONPATH=$PWD/py:$PYTHONPATH
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench; print(run_bench.export('resnet50')[0])" > /tmp/s/onnx.txt 2>&1
ONNX=$(tail -1 /tmp/s/onnx.txt)
[ $((SECONDS-T0)) -lt 420 ] && timeout 60 python3 bench/shape_switch.py $K $ONNX /tmp/s/r50_graph.kiln --sizes 1,2,3,5,8,13,21,34,55,64 > /tmp/s/switch_graph.txt 2>&1
grep -v "^\[kiln" /tmp/s/switch_graph.txt | tail -12 | cut -c1-200
left=$((585 - (SECONDS-T0)))
[ $left -gt 60 ] && WRK_THREADS=4 timeout $left python3 bench/serve_bench.py $K --models resnet50 --gpu --duration 4 --server-threads 8 --json /tmp/s/r50gpu.json > /tmp/s/r50gpu.txt 2>&1
echo "r50 gpu rc $? at $((SECONDS-T0)) s" >> /tmp/s/r50gpu.txt
cp build/serve_bench/*.log /tmp/s/ 2>/dev/null
tar -C /tmp -czf $OUT/c6.tgz g b s
grep -vE "^\s*$|^\[kiln" /tmp/s/r50gpu.txt | tail -12 | cut -c1-220; grep -h "ready:" /tmp/s/kiln_serve_resnet50.log | cut -c1-250
