#!/bin/bash
# Prepares .devrun and .whl on a fresh development machine (steps 2-4 of
# README.md here): the device scripts, the shared libraries `kiln serve`
# links that the device lacks (libmicrohttpd and its GnuTLS chain), wrk and
# LuaJIT for bench/serve_bench.py, the image codecs of the ImageDecoder
# node tests, and onnx 1.22 (the last wheel with the node-test data) for the
# device's Python 3.12. Needs build-gpu built (for ldd) and apt/pip access.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p .devrun/lib .devrun/bin .whl
mkdir -p .git/info
for p in /.devrun/ /.whl/; do grep -qx "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
cp tests/gpu/device/*.sh .devrun/
tmp=$(mktemp -d)
# libraries kiln links outside glibc and the CUDA toolkit
ldd build-gpu/bin/kiln | awk '/=> \//{print $3}' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux|libgcc_s|libstdc\+\+)[.-]|cuda|cublas|cudnn' |
    while read -r l; do cp -L "$l" .devrun/lib/; done
( cd "$tmp" && apt-get download -qq wrk libluajit-5.1-2 libjpeg62-turbo libopenjp2-7 libtiff6 \
    libwebp7 libdeflate0 libjbig0 liblerc4 >/dev/null )
for d in "$tmp"/*.deb; do dpkg -x "$d" "$tmp/x"; done
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/*.so* .devrun/lib/ 2>/dev/null || true
cp "$tmp"/x/usr/bin/wrk .devrun/bin/
[ -n "$(ls .whl/onnx-1.22.0-*.whl 2>/dev/null)" ] ||
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 -d .whl onnx==1.22.0
rm -rf "$tmp"
du -sh .devrun .whl
