# Sourced by every device script (run from the repository root of the
# device's copy): unpack the carried binaries (and the packed corpus, where
# carried), install the carried onnx wheel (where carried), library and tool
# paths. Sets T0 (start, for elapsed times) and K (the kiln CLI).
export PYTHONUNBUFFERED=1
T0=$SECONDS
tar xJf .devrun/gpu-bin.tar.xz
[ -f .devrun/corpus.tar.xz ] && [ ! -d .devrun/corpus ] && tar -C .devrun -xJf .devrun/corpus.tar.xz
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export LD_LIBRARY_PATH=$PWD/.devrun/lib PATH=$PWD/.devrun/bin:$PATH
K=build-gpu/bin/kiln
