#!/bin/bash
# Device call A: everything in tests/gpu/run.sh but the model set (call B).
export PYTHONUNBUFFERED=1
tar xJf .devrun/gpu-bin.tar.xz
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
export LD_LIBRARY_PATH=$PWD/.devrun/lib PATH=$PWD/.devrun/bin:$PATH
mkdir -p /tmp/g
BUILD=build-gpu OUT=/tmp/g JOBS=16 KILN_PYTHONPATH=$PWD/py KILN_GPU_SUITES="${SUITES:-tactics runtime node python serve sanitizer}" \
  timeout ${TLIM:-540} bash tests/gpu/run.sh > /tmp/g/run.txt 2>&1
echo "rc $?" >> /tmp/g/run.txt
tar -C /tmp -czf $OUT/gpu_tests.tgz g
grep -E "^--- |passed, .* failed$|^rc " /tmp/g/run.txt
