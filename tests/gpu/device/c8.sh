#!/bin/bash
# Session 7, last call: serve_gpu (padded batches, pinned gather buffers),
# the SM90 GEMM on BERT's FFN shapes and in the BERT build (every timed
# tactic, -v), kiln serve ResNet-50 on the GPU, MobileNetV2 b8 at 16 threads
# (split/cold-timing A/B), then GPU INT8 vs FP16 with what time is left.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/o
BUILD=build-gpu OUT=/tmp/o/g JOBS=16 KILN_GPU_SUITES="serve" timeout 90 bash tests/gpu/run.sh > /tmp/o/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/o/run.txt
grep -E "^--- |passed, .* failed$|rc " /tmp/o/run.txt; grep -hE "FAIL" /tmp/o/g/*.log | head -5 | cut -c1-200
KILN_GEMM_GRAPH=0 timeout 45 build-gpu/bin/cuda_gemm_bench 30 16384 f16 > /tmp/o/gemm_bench.txt 2>&1
grep -E "FFN|sm90|lt_h0 |lt_h1 |lt_h3 " /tmp/o/gemm_bench.txt | cut -c1-120
mkdir -p /tmp/kiln-gpu-bench; B=/tmp/kiln-gpu-bench/bert_base.onnx
S=$(python3 -c "
import os, sys; sys.path.insert(0, 'bench'); import gpu_bench as g
_, names, _ = g.torch_model('bert_base')
os.path.isfile('$B') or g.export('bert_base', '$B')
print(','.join('%s:128x128' % n for n in names))" 2>/tmp/o/export_err.txt | tail -1)
echo "bert shapes $S"
timeout 60 $K build $B -o /tmp/o/bert.kiln --device cuda --fp16 --shapes $S -v > /tmp/o/bert_build.txt 2>&1
echo "bert build rc $?"; grep -E "layer.0/intermediate" /tmp/o/bert_build.txt | grep -E "tactic" | head -10 | cut -c1-160
timeout 30 $K inspect /tmp/o/bert.kiln --profile-runs 5 --sort time > /tmp/o/bert_prof.txt 2>&1
sed -n "/^profile:/,\$p" /tmp/o/bert_prof.txt | head -8 | cut -c1-150
timeout 30 $K bench --engine /tmp/o/bert.kiln --no-data-transfers --duration 2 2>&1 | grep -iE "median|mean" | head -3
WRK_THREADS=4 timeout 130 python3 bench/serve_bench.py $K --models resnet50 --gpu --duration 4 --server-threads 8 > /tmp/o/r50gpu.txt 2>&1
grep -E "^\| resnet50|rc " /tmp/o/r50gpu.txt | cut -c1-200
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench as r; r.export('mobilenet_v2')" > /dev/null 2>&1
$K build build/bench/mobilenet_v2.onnx -o /tmp/o/mv2_b8.kiln --shapes input:8x3x224x224 > /dev/null 2>&1
KILN_COLD_TIMING=0 $K build build/bench/mobilenet_v2.onnx -o /tmp/o/mv2_b8w.kiln --shapes input:8x3x224x224 > /dev/null 2>&1
for r in 1 2; do for e in mv2_b8 mv2_b8w; do for sp in new old; do
  printf "%s split=%s: " $e $sp
  KILN_CPU_SPLIT=$sp $K bench --engine /tmp/o/$e.kiln --threads 16 --duration 1.5 --json 2>/dev/null | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); l=d['latency_ms']; print('median %.3f min %.3f ms' % (l['median'], l['min']))"
done; done; done
left=$((${CEND:-300} - (SECONDS-T0)))
[ $left -gt 60 ] && timeout $left python3 bench/gpu_bench.py $K --iters 20 --no-torch --cases resnet50_int8_b256,bert_base_int8_b128 > /tmp/o/int8.txt 2>&1
grep -E "kiln |error" /tmp/o/int8.txt | cut -c1-250
tar -C /tmp -czf $OUT/c8.tgz --exclude='*.kiln' --exclude='*.onnx' o
