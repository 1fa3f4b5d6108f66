#!/usr/bin/env bash
# setup.sh: installs what building and testing Kiln needs on a fresh Debian
# machine. Idempotent; skips what is already present.
#   scripts/setup.sh          build tools only
#   scripts/setup.sh --test   plus the Python test tooling (onnx 1.22 for the
#                             node tests, onnxruntime, torch/torchvision/
#                             transformers for exporting real models,
#                             scikit-build-core and pytest for the Python
#                             package, scikit-learn and skl2onnx for the
#                             ai.onnx.ml model tests, CUTLASS 4.2 headers
#                             from the nvidia-cutlass wheel for the SM90 GEMM)
set -euo pipefail

need_apt=()
for tool in cmake gcc make python3 pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# The Python package's tests build it in a virtual environment.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import venv, ensurepip" 2>/dev/null; then
    need_apt+=(python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
    else
        echo "setup: please install: ${need_apt[*]}" >&2
        exit 1
    fi
fi

# ImageDecoder's codecs: the headers are needed to build them (the libraries
# are dlopened at run time, and the -dev packages pull them in). Without
# them Kiln still builds; those formats then refuse with a message naming
# the package, and the ImageDecoder node tests fail.
need_apt=()
[ -f /usr/include/jpeglib.h ] || need_apt+=(libjpeg62-turbo-dev)
[ -f /usr/include/png.h ] || need_apt+=(libpng-dev)
[ -n "$(ls /usr/include/tiffio.h /usr/include/*/tiffio.h 2>/dev/null)" ] || need_apt+=(libtiff-dev)
[ -f /usr/include/webp/decode.h ] || need_apt+=(libwebp-dev)
ls /usr/include/openjpeg-2.*/openjpeg.h >/dev/null 2>&1 || need_apt+=(libopenjp2-7-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${need_apt[@]}"; } ||
            echo "setup: apt could not install ${need_apt[*]} (ImageDecoder codecs)" >&2
    else
        echo "setup: for ImageDecoder's codecs please install: ${need_apt[*]}" >&2
    fi
fi

if [ "${1:-}" = "--test" ]; then
    # kiln serve: libmicrohttpd to build it; Debian's prometheus to scrape it
    # in tests/serve (the test skips that step if apt cannot install it).
    need_apt=()
    [ -f /usr/include/microhttpd.h ] || need_apt+=(libmicrohttpd-dev)
    command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
    if [ "${#need_apt[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${need_apt[@]}"; } ||
            echo "setup: apt could not install ${need_apt[*]}" >&2
    fi
    py=python3
    # onnx 1.22 is the last wheel that ships the backend node test data.
    want="onnx==1.22.0 onnxruntime numpy"
    if ! $py -c "import onnx, onnxruntime, numpy, sys; sys.exit(onnx.__version__ != '1.22.0')" 2>/dev/null; then
        $py -m pip install -q $want
    fi
    # The Python package: its PEP 517 backend (pip also fetches it into an
    # isolated build environment) and its test runner.
    if ! $py -c "import scikit_build_core, pytest" 2>/dev/null; then
        $py -m pip install -q scikit-build-core pytest
    fi
    if ! $py -c "import tritonclient.http" 2>/dev/null; then
        $py -m pip install -q "tritonclient[http]"
    fi
    # scikit-learn models converted by skl2onnx (tests/models/sklearn_cases.py)
    if ! $py -c "import sklearn, skl2onnx" 2>/dev/null; then
        $py -m pip install -q scikit-learn skl2onnx
    fi
    if ! $py -c "import torch, torchvision, transformers, onnxscript" 2>/dev/null; then
        $py -m pip install -q torch torchvision transformers onnxscript
    fi
    # CUTLASS headers for the SM90 GEMM (kernels/gemm_sm90*.cu, header-only;
    # cuda.cmake finds the package's folder). --no-deps: only the headers
    # are used, and the wheel's Python dependencies would replace
    # cuda-python versions other tools pinned.
    if ! $py -c "import importlib.util as u, sys; sys.exit(u.find_spec('cutlass_library') is None)" 2>/dev/null; then
        $py -m pip install -q --no-deps nvidia-cutlass==4.2.0.0
    fi
    # tests/quant trains small real models on scikit-learn's digits data.
    if ! $py -c "import sklearn" 2>/dev/null; then
        $py -m pip install -q scikit-learn
    fi
fi
