# Sourced by every device script (run from the repository root of the
# device's copy): unpack the carried binaries, install the carried onnx
# wheel, library and tool paths. Sets T0 (start, for elapsed times) and K
# (the kiln CLI).
export PYTHONUNBUFFERED=1
T0=$SECONDS
tar xJf .devrun/gpu-bin.tar.xz
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
export LD_LIBRARY_PATH=$PWD/.devrun/lib PATH=$PWD/.devrun/bin:$PATH
K=build-gpu/bin/kiln
