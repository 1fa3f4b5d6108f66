#!/bin/bash
# The smallest useful call (~4 min, for a nearly spent device budget): the
# CUDA tactic, runtime and node suites, then BERT-base FP16 b128 (Kiln and
# eager torch, no torch.compile) with a per-layer profile, the elementwise
# fast paths on for the bench only when their test passed.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/g /tmp/b
BUILD=build-gpu OUT=/tmp/g JOBS=14 KILN_GPU_SUITES="tactics runtime node" timeout ${TT:-150} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "tests rc $? at $((SECONDS-T0)) s" >> /tmp/g/run.txt
timeout ${TB:-90} python3 bench/gpu_bench.py $K --iters 50 --no-compile --cases bert_base_fp16_b128 > /tmp/b/gpu_bench.txt 2>&1
echo "bench rc $? at $((SECONDS-T0)) s" >> /tmp/b/gpu_bench.txt
e=/tmp/kiln-gpu-bench/bert_base_fp16_b128.kiln; [ -f $e ] && timeout 20 $K inspect $e --profile-runs 5 --sort time > /tmp/b/bert_profile.txt 2>&1
tar -C /tmp -czf $OUT/min.tgz g b
grep -E "^--- |passed, .* failed$|rc |FAST|QKV" /tmp/g/run.txt; tail -5 /tmp/b/gpu_bench.txt | cut -c1-220; grep -E "^ +[0-9]+ |profile:" /tmp/b/bert_profile.txt | head -14 | cut -c1-140
