#!/bin/bash
# Packs the GPU build for the device: binaries (stripped) + the Python package.
set -e
cd /work/main
rm -rf /tmp/gb && mkdir -p /tmp/gb/build-gpu/bin /tmp/gb/py/kiln
cp build-gpu/bin/kiln build-gpu/bin/test_cuda_* /tmp/gb/build-gpu/bin/
# the flash attention micro-benchmark (v2 vs v1), where built
[ -f build-gpu/bin/cuda_attn_bench ] && cp build-gpu/bin/cuda_attn_bench /tmp/gb/build-gpu/bin/
# the elementwise micro-benchmark (fast path vs interpreter, casts, gather), where built
[ -f build-gpu/bin/cuda_elt_bench ] && cp build-gpu/bin/cuda_elt_bench /tmp/gb/build-gpu/bin/
# the GEMM micro-benchmark (cuBLASLt + epilogue vs cuDNN graph) and the placement dry run
for b in cuda_gemm_bench qkv_placement; do [ -f build-gpu/bin/$b ] && cp build-gpu/bin/$b /tmp/gb/build-gpu/bin/; done
strip /tmp/gb/build-gpu/bin/*
cp python/kiln/*.py python/kiln/*.pyi /tmp/gb/py/kiln/
cp $(find build-gpu -name "_kiln*.so" | head -1) /tmp/gb/py/kiln/
strip /tmp/gb/py/kiln/_kiln*.so
XZ_OPT="--lzma2=preset=1,dict=256MiB" tar -C /tmp/gb -cJf .devrun/gpu-bin.tar.xz build-gpu py
ls -la .devrun/gpu-bin.tar.xz
