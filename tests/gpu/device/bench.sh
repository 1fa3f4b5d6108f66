#!/bin/bash
# Device call B/C: model set in FP32/FP16/BF16 and/or benchmarks. $WHAT selects.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/b
for w in ${WHAT:-models gpubench}; do
  case $w in
  models) BUILD=build-gpu OUT=/tmp/b KILN_GPU_SUITES=models JOBS=16 timeout ${TM:-300} bash tests/gpu/run.sh > /tmp/b/models.txt 2>&1 ;;
  gpubench) timeout ${TB:-400} python3 bench/gpu_bench.py $K --iters 50 --cases ${CASES:-resnet50_fp16_b256,bert_base_fp16_b128,resnet50_fp16_b1,bert_base_fp16_b1,mobilenet_v2_fp16_b1,resnet50_fp32_b256} --json /tmp/b/gpu_bench.json > /tmp/b/gpu_bench.txt 2>&1
     for e in /tmp/kiln-gpu-bench/resnet50_fp16_b256 /tmp/kiln-gpu-bench/bert_base_fp16_b128 /tmp/kiln-gpu-bench/resnet50_fp16_b1; do
       [ -f $e.kiln ] && timeout 60 $K inspect $e.kiln --profile-runs 10 --sort time > $e.profile.txt 2>&1 && cp $e.profile.txt /tmp/b/; done ;;
  cpubench) timeout ${TC:-300} python3 bench/run_bench.py $K --models resnet50,bert,mobilenet_v2 --threads 1,16 --duration 3 > /tmp/b/cpu_bench.txt 2>&1 ;;
  serve) WRK_THREADS=4 timeout 100 python3 bench/serve_bench.py $K --models mlp --concurrency 1,64 --duration 5 --no-fastapi --server-threads 8 > /tmp/b/serve_bench_cpu.txt 2>&1
     WRK_THREADS=4 timeout ${TS:-200} python3 bench/serve_bench.py $K --models resnet50 --concurrency 1,64 --duration 8 --gpu --server-threads 8 > /tmp/b/serve_bench_gpu.txt 2>&1 ;;
  esac
done
tar -C /tmp -czf $OUT/bench.tgz b
tail -30 /tmp/b/*.txt | cut -c1-200
