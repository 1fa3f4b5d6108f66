#!/bin/bash
# Issue 6, batch 1 on the device host's 16 cores: the weights-first conv
# partition (KILN_CPU_SPLIT=old: the earlier one, same engine) and
# cold-weight tactic timing (KILN_COLD_TIMING=0: warm, another engine),
# A/B interleaved in one run, then per-layer profiles at 16 threads and
# the usual run_bench matrix against onnxruntime. Leaves $OUT/split.tgz.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/s
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench as r; r.export('resnet50'); r.export('mobilenet_v2')" > /tmp/s/export.txt 2>&1
S=input:1x3x224x224
for m in resnet50 mobilenet_v2; do
  for c in 1 0; do  # cold (default) and warm tactic timing; fresh timing each
    t=$SECONDS
    KILN_COLD_TIMING=$c $K build build/bench/$m.onnx -o /tmp/s/${m}_c$c.kiln --shapes $S -v \
      > /tmp/s/build_${m}_c$c.txt 2>&1
    echo "build $m cold=$c rc $? $((SECONDS-t)) s: $(grep 'build total' /tmp/s/build_${m}_c$c.txt)"
  done
done
for r in 1 2; do for m in resnet50 mobilenet_v2; do for c in 1 0; do for sp in new old; do
  printf "%s cold=%s split=%s round %s: " $m $c $sp $r
  KILN_CPU_SPLIT=$sp $K bench --engine /tmp/s/${m}_c$c.kiln --threads 16 --duration 2 --json 2>/dev/null \
    | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); l=d['latency_ms']; print('median %.3f min %.3f ms' % (l['median'], l['min']))"
done; done; done; done | tee /tmp/s/ab.txt
# batch 8: the weights-first split must not cost ResNet-50 b8 (49.7 ms in session 6)
$K build build/bench/resnet50.onnx -o /tmp/s/r50_b8.kiln --shapes input:8x3x224x224 > /tmp/s/build_r50_b8.txt 2>&1
for r in 1 2; do for sp in new old; do
  printf "resnet50 b8 split=%s round %s: " $sp $r
  KILN_CPU_SPLIT=$sp $K bench --engine /tmp/s/r50_b8.kiln --threads 16 --duration 2 --json 2>/dev/null \
    | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); l=d['latency_ms']; print('median %.3f min %.3f ms' % (l['median'], l['min']))"
done; done | tee -a /tmp/s/ab.txt
for m in resnet50 mobilenet_v2; do for sp in new old; do for t in 16 1; do
  [ $t = 1 ] && [ $sp = old ] && continue
  KILN_CPU_SPLIT=$sp timeout 90 $K inspect /tmp/s/${m}_c1.kiln --profile-runs 40 --threads $t --sort time > /tmp/s/prof_${m}_${sp}_t$t.txt 2>&1
done; done; done
timeout ${TC:-420} python3 bench/run_bench.py $K --models resnet50,mobilenet_v2 --batches 1,8 --threads 1,all --duration 2 > /tmp/s/run_bench.txt 2>&1
rm -f /tmp/s/*.kiln
tar -C /tmp -czf $OUT/split.tgz s
for f in /tmp/s/prof_*_t16.txt; do echo "== $f"; sed -n "/^profile:/,\$p" $f | head -12 | cut -c1-150; done
cat /tmp/s/ab.txt; tail -12 /tmp/s/run_bench.txt | cut -c1-200
