#!/bin/bash
# GPU suites other than the tactics, fuzzers beside them, then CPU per-layer profiles at 16 threads.
FT=${FT:-330} TLIM=${TLIM:-330} SUITES="${SUITES:-runtime node models int8 python serve sanitizer}" bash .devrun/tests.sh 2>&1 | tail -30
export LD_LIBRARY_PATH=$PWD/.devrun/lib PYTHONPATH=/tmp/site; K=build-gpu/bin/kiln
mkdir -p /tmp/p
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench as r; r.export('resnet50'); r.export('mobilenet_v2')" > /tmp/p/export.txt 2>&1
for m in resnet50 mobilenet_v2; do for t in 1 16; do timeout 60 $K inspect build/bench/$m.onnx --profile-runs 40 --threads $t --sort time --shapes input:1x3x224x224 > /tmp/p/${m}_t$t.txt 2>&1; done; done
tar -C /tmp -czf $OUT/p.tgz p; ls -la $OUT
for f in /tmp/p/*_t*.txt; do echo "== $f"; grep -E "^ +[0-9]+ |total|run" $f | head -12 | cut -c1-150; done
