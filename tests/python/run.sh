#!/usr/bin/env bash
# tests/python/run.sh: the Python package as a user gets it. Builds the wheel
# with `pip wheel .` (PEP 517, scikit-build-core in an isolated build env),
# checks it is tagged for the stable ABI (cp311-abi3), installs it into a
# fresh virtual environment (system site packages visible, for numpy, onnx,
# onnxruntime and pytest), imports it from outside the tree and runs the
# pytest suite. Ends with `N passed, M failed` (pytest's counts plus the
# packaging checks). The venv stays at build-venv/ for the suites after it.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=$root/build-venv
dist=$root/build-py/dist
pass=0
fail=0
note() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "PASS $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }

export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
rm -rf "$venv" "$dist"
python3 -m venv --system-site-packages "$venv"
note $? "venv"
py=$venv/bin/python
# The build tree is kept between runs (build-py/) so rebuilds are incremental.
"$py" -m pip wheel -q --no-deps -w "$dist" -C build-dir="$root/build-py/cmake" \
    -C cmake.define.KILN_CUDA=OFF . 2>&1 | tail -n 20
whl=$(ls "$dist"/kiln-*.whl 2>/dev/null | head -n 1)
[ -n "$whl" ]
note $? "pip wheel . -> ${whl##*/}"
case "${whl##*/}" in *-cp311-abi3-*.whl) r=0 ;; *) r=1 ;; esac
note $r "wheel tagged cp311-abi3"
"$py" -m pip install -q --no-deps --force-reinstall "$whl" 2>&1 | tail -n 20
note $? "pip install wheel into venv"
(cd /tmp && "$py" -c "import kiln, sys; assert kiln.__file__.startswith(sys.prefix), kiln.__file__; print('kiln', kiln.__version__, kiln.__file__)")
note $? "import kiln (installed copy)"
# Every public name has a stub.
"$py" - <<'PY'
import ast, os, sys, kiln
stub = ast.parse(open(os.path.join(os.path.dirname(kiln.__file__), "__init__.pyi")).read())
names = {n.name for n in stub.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
missing = [n for n in kiln.__all__ if n not in names]
print("names without a stub:", missing) if missing else None
sys.exit(1 if missing else 0)
PY
note $? "stubs cover kiln.__all__"

log=$(mktemp)
KILN_CACHE_DIR=$(mktemp -d) "$py" -m pytest tests/python -q -p no:cacheprovider 2>&1 | tee "$log" | tail -n 30
last=$(tail -n 1 "$log")
p=$(echo "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
f=0
for n in $(echo "$last" | grep -oE '[0-9]+ (failed|errors?)' | grep -oE '^[0-9]+'); do f=$((f + n)); done
if [ "$p" -eq 0 ]; then f=$((f + 1)); fi
rm -f "$log"
echo "$((pass + p)) passed, $((fail + f)) failed"
[ $((fail + f)) -eq 0 ]
