#!/usr/bin/env bash
# run.sh: builds Kiln and runs the bundled example end to end: inspect the
# ONNX model, run it on the reference interpreter, build an engine with a
# dynamic-batch profile, inspect the engine, run it at two batch sizes and
# benchmark it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
K=build/bin/kiln
M=examples/tiny_cnn.onnx
E=build/tiny_cnn.kiln
set -x
$K inspect $M
$K run $M --shapes image:2x3x32x32
$K build $M -o $E --min-shapes image:1x3x32x32 --opt-shapes image:4x3x32x32 \
    --max-shapes image:16x3x32x32 --timing-cache build/tiny_cnn.cache
$K inspect $E
$K run --engine $E --shapes image:1x3x32x32
$K run --engine $E --shapes image:16x3x32x32
$K bench --engine $E --shapes image:4x3x32x32 --duration 1
