#!/bin/bash
# A/B on the device host, 16 threads, batch 1: build-gpu/bin/kiln (before) vs build/bin/kiln (small-M GEMM weighed by its rows).
. .devrun/prelude.sh
mkdir -p /tmp/a
python3 -c "import sys; sys.path.insert(0,'bench'); import run_bench as r; r.export('resnet50'); r.export('mobilenet_v2')" > /tmp/a/export.txt 2>&1
for b in old new; do
  rm -f build/bench/*.kiln build/bench/*.cache
  K2=build/bin/kiln; [ $b = old ] && K2=build-gpu/bin/kiln
  timeout 80 python3 bench/run_bench.py $K2 --models resnet50,mobilenet_v2 --batches 1 --threads all --duration 2 2>&1 | grep "kiln/ort" | sed "s/^/$b /"
done
for m in resnet50 mobilenet_v2; do timeout 30 build/bin/kiln inspect build/bench/$m.onnx --profile-runs 30 --threads 16 --sort time --shapes input:1x3x224x224 2>&1 | grep -E "Gemm|^profile:" | cut -c1-140; done
