#!/bin/bash
# Session 7, CPU call on the device host: issue 6's weights-first split
# (KILN_CPU_SPLIT=old: the earlier one) and cold-weight timing
# (KILN_COLD_TIMING=0) A/B at 16 threads, profiles, run_bench at all cores.
. "$(dirname "$0")/prelude.sh"
mkdir -p /tmp/c
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench as r; r.export('resnet50'); r.export('mobilenet_v2')" > /tmp/c/export.txt 2>&1
S=input:1x3x224x224
for m in resnet50 mobilenet_v2; do for c in 1 0; do
  t=$SECONDS
  KILN_COLD_TIMING=$c $K build build/bench/$m.onnx -o /tmp/c/${m}_c$c.kiln --shapes $S -v > /tmp/c/build_${m}_c$c.txt 2>&1
  echo "build $m cold=$c rc $? $((SECONDS-t)) s: $(grep 'build total' /tmp/c/build_${m}_c$c.txt)"
done; done | tee /tmp/c/builds.txt
for m in resnet50 mobilenet_v2; do for c in 1 0; do for sp in new old; do
  printf "%s cold=%s split=%s: " $m $c $sp
  KILN_CPU_SPLIT=$sp $K bench --engine /tmp/c/${m}_c$c.kiln --threads 16 --duration 2 --json 2>/dev/null \
    | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); l=d['latency_ms']; print('median %.3f min %.3f ms' % (l['median'], l['min']))"
done; done; done | tee /tmp/c/ab.txt
for m in resnet50 mobilenet_v2; do for sp in new old; do
  KILN_CPU_SPLIT=$sp timeout 40 $K inspect /tmp/c/${m}_c1.kiln --profile-runs 30 --threads 16 --sort time > /tmp/c/prof_${m}_${sp}_t16.txt 2>&1
done; done
left=$((585 - (SECONDS - T0)))
[ $left -gt 40 ] && timeout $left python3 bench/run_bench.py $K --models resnet50,mobilenet_v2 --batches 1,8 --threads all --duration 2 > /tmp/c/run_bench.txt 2>&1
rm -f /tmp/c/*.kiln
tar -C /tmp -czf $OUT/c5cpu.tgz c
cat /tmp/c/builds.txt /tmp/c/ab.txt | cut -c1-200
for f in /tmp/c/prof_*_t16.txt; do echo "== $f"; sed -n "/^profile:/,\$p" $f | head -8 | cut -c1-150; done
grep -E "^\| |kiln|ratio" /tmp/c/run_bench.txt | tail -12 | cut -c1-200
