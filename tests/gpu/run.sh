#!/usr/bin/env bash
# tests/gpu/run.sh: everything GPU-side, on a machine with an NVIDIA GPU (CI
# has none). Expects a Release build with the CUDA backend in $BUILD
# (default build/; `cmake -S . -B build -DKILN_CUDA=ON && cmake --build build`).
# Runs: the CUDA tactic tests (tests/gpu/test_cuda_*), the runtime test (graph
# replay vs plain enqueue, device I/O, concurrent contexts, damaged and
# foreign-GPU engines), the offline coverage report (bin/cover_report), the
# ONNX node tests through CUDA engines (FP32), the
# exported model set through CUDA engines in FP32/FP16/BF16 against
# onnxruntime, INT8 engines end to end (tests/quant/test_int8_gpu.py: the
# digits CNN calibrated and as an onnxruntime Q/DQ model, against the CPU
# INT8 engine), the trained corpus models packed by
# tests/gpu/device/corpus_pack.sh (.devrun/corpus, or its .tar.xz; skipped
# without it) through CUDA engines in FP32/FP16/BF16 against onnxruntime,
# and compute-sanitizer memcheck on the runtime test. Logs go to
# $OUT (default /tmp/kiln-gpu). Ends with `N passed, M failed`.
#   KILN_GPU_SUITES="tactics runtime node models corpus int8 python serve sanitizer" selects suites.
#   KILN_GPU_CORPUS=DIR the packed corpus (default .devrun/corpus).
#   KILN_GPU_TACTICS="test_cuda_gemm ..." runs only those tactic tests.
#   KILN_GPU_PAR=N runs N tactic tests at once.
#   test_cuda_q8conv_sm90 (the Hopper INT8/FP8 implicit-GEMM convolution,
#   called through its C API) ends with a ResNet-50 b256 timing print;
#   KILN_Q8CONV_BENCH=0 skips it (it is timing, not a pass/fail case).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/kiln-gpu}
SUITES=${KILN_GPU_SUITES:-tactics runtime node models corpus int8 python serve sanitizer}
# KILN_CUDA_Q8_FAST=0 (the per-element INT8 kernels) passes through to every suite
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
K=$BUILD/bin/kiln
total_pass=0
total_fail=0

{ nvidia-smi; nvcc --version; python3 -c "import torch, onnxruntime, onnx; print('torch', torch.__version__, 'ort', onnxruntime.__version__, 'onnx', onnx.__version__)"; ldconfig -p | grep -E 'cudnn|cublasLt' ; } > "$OUT/env.txt" 2>&1

suite() {
    local name=$1
    shift
    echo "=== $name: $*"
    local t0=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 15 "$OUT/$name.log"
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/$name.log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    else
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "--- $name: $p passed, $f failed (exit $rc, $((SECONDS - t0)) s)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

has() { [[ " $SUITES " == *" $1 "* ]]; }

if has tactics; then
    tactics=()
    for t in "$BUILD"/bin/test_cuda_*; do
        [ "$(basename "$t")" = test_cuda_runtime ] && continue
        # KILN_GPU_TACTICS="test_cuda_gemm ...": only these tactic tests
        [ -n "${KILN_GPU_TACTICS:-}" ] && [[ " $KILN_GPU_TACTICS " != *" $(basename "$t") "* ]] && continue
        tactics+=("$t")
    done
    # second runs of some tactic tests with a kernel switch: the first flash
    # attention kernel (KILN_ATTN_KERNEL=v1), LayerNorm's opt-in 16-byte
    # kernel (KILN_CUDA_LN16=1)
    variants=()
    [ -x "$BUILD/bin/test_cuda_attn" ] && variants+=("test_cuda_attn_v1:KILN_ATTN_KERNEL=v1:test_cuda_attn")
    [ -x "$BUILD/bin/test_cuda_norm" ] && variants+=("test_cuda_norm_ln16:KILN_CUDA_LN16=1:test_cuda_norm")
    if [ "${KILN_GPU_PAR:-1}" -gt 1 ]; then
        # KILN_GPU_PAR=N: N tactic tests at once (their references run on
        # the host's cores, which one test alone leaves mostly idle); the
        # logs are read after all of them end, in the usual order
        echo "=== tactic tests, ${KILN_GPU_PAR} at a time"
        printf '%s\n' "${tactics[@]}" "${variants[@]}" | xargs -P "$KILN_GPU_PAR" -I{} bash -c '
            t={}; o=$1
            case "$t" in
            *:*) IFS=: read -r n e b <<< "$t"
                 env "$e" "$2/bin/$b" > "$o/par_$n.log" 2>&1; echo $? > "$o/par_$n.rc" ;;
            *)   "$t" > "$o/par_$(basename "$t").log" 2>&1; echo $? > "$o/par_$(basename "$t").rc" ;;
            esac' _ "$OUT" "$BUILD"
        for t in "${tactics[@]}" "${variants[@]}"; do
            n=$(basename "${t%%:*}")
            suite "$n" bash -c 'cat "$1.log"; exit "$(cat "$1.rc")"' _ "$OUT/par_$n"
        done
    else
        for t in "${tactics[@]}"; do suite "$(basename "$t")" "$t"; done
        for v in "${variants[@]}"; do
            IFS=: read -r n e b <<< "$v"
            suite "$n" env "$e" "$BUILD/bin/$b"
        done
    fi
    # packed Q/K/V (passes/qkv.c) kept on the device in an FP16 build
    # (the builder's placement dry run, no GPU needed)
    [ -x "$BUILD/bin/qkv_placement" ] && suite qkv_placement "$BUILD/bin/qkv_placement" \
        tests/data/patterns/attn_qkv_gqa.onnx --fp16 x:2x16x32 bmask:2x1x16x16 fmask:2x1x1x16
fi
# the node tests' models (the runtime test's runtime-parameter case uses one)
KILN_NODE_DIR=$(python3 -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend', 'test', 'data', 'node'))" 2>/dev/null)
export KILN_NODE_DIR
has runtime && suite runtime "$BUILD/bin/test_cuda_runtime"
if has node; then
    # offline coverage (the builder's placement dry run, no GPU needed):
    # which layers would run on the host and why, next to the real run's count
    if [ -x "$BUILD/bin/cover_report" ]; then
        nd=$(python3 -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend', 'test', 'data', 'node'))")
        "$BUILD/bin/cover_report" "$nd" --xfail tests/xfail --cases "$OUT/cover_cases.txt" \
            > "$OUT/cover_report.txt" 2>/dev/null
        echo "=== cover_report (top fallback reasons; full list in $OUT/cover_report.txt)"
        sed -n 2,11p "$OUT/cover_report.txt"
        tail -n 1 "$OUT/cover_report.txt"
    fi
    suite node_cuda_fp32 python3 tests/node/run_node_tests.py "$K" --mode engine \
        --jobs "$JOBS" --kiln-args="--device cuda" --report-host "$OUT/node_host_layers.txt"
fi
if has models; then
    # Torch's own FP16/BF16 error on the same models: the yardstick for ours.
    python3 tests/gpu/torch_half_baseline.py > "$OUT/torch_half_baseline.txt" 2>&1
    cat "$OUT/torch_half_baseline.txt"
    for prec in fp32 fp16 bf16; do
        extra="--device cuda"
        tol=1e-4
        if [ "$prec" != fp32 ]; then extra="$extra --$prec"; tol=1e-2; fi
        suite "models_cuda_$prec" python3 tests/models/check_models.py "$K" --quick \
            --modes engine --build-args="$extra" --tol "$tol" --top1 \
            --json "$OUT/models_$prec.json"
    done
fi
if has corpus; then
    # Trained models (issue 12: FP16/BF16 within 1e-2 rel-L2 of onnxruntime,
    # same top-1 on classifiers and per recognizer step), packed with their
    # inputs and onnxruntime's outputs: no network here. Expected failures:
    # tests/gpu/corpus_xfail.txt, second column fp32|fp16|bf16|*.
    CORPUS=${KILN_GPU_CORPUS:-.devrun/corpus}
    if [ ! -d "$CORPUS/cases" ] && [ -f "$CORPUS.tar.xz" ]; then
        tar -C "$(dirname "$CORPUS")" -xJf "$CORPUS.tar.xz"
    fi
    if [ -d "$CORPUS/cases" ]; then
        for prec in fp32 fp16 bf16; do
            extra="--device cuda"
            tol=1e-4
            if [ "$prec" != fp32 ]; then extra="$extra --$prec"; tol=1e-2; fi
            suite "corpus_cuda_$prec" python3 tests/models/check_corpus.py "$K" --offline \
                --cache "$CORPUS" --modes engine --build-args="$extra" --tol "$tol" --top1 \
                --xfail tests/gpu/corpus_xfail.txt --xfail-mode "$prec" --jobs "$JOBS"
        done
    else
        echo "=== corpus: skipped, no $CORPUS (tests/gpu/device/corpus_pack.sh makes it)"
        echo "--- corpus: 0 passed, 0 failed (skipped)"
    fi
fi
has int8 && suite int8_e2e python3 tests/quant/test_int8_gpu.py "$K"
# and with the int8 layers kept NCHW (KILN_CHANNELS_LAST_INT8=0)
has int8 && KILN_CHANNELS_LAST_INT8=0 suite int8_e2e_nchw python3 tests/quant/test_int8_gpu.py "$K"
# a BERT-like layer through the opt-in QFusedGemm / QLayerNormalization
# tactics (KILN_CUDA_Q8_FLOAT_OUT=1, set by the test), against the CPU INT8 engine
has int8 && suite int8_bert_gpu python3 tests/quant/test_int8_bert.py "$K" --device cuda
# The Python package with device arrays (DLPack): needs the extension built
# with the CUDA backend (cmake -DKILN_PYTHON=ON, target kiln_python) in a
# folder holding the kiln package, given as $KILN_PYTHONPATH.
if has python && [ -n "${KILN_PYTHONPATH:-}" ]; then
    suite python_dlpack env PYTHONPATH="$KILN_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}" \
        python3 tests/gpu/test_dlpack.py
fi
# kiln serve with a KIND_GPU model (FP16 through Triton's TensorRT accelerator
# setting): READY, right answers, batching (needs kiln built with libmicrohttpd).
if has serve && "$K" serve --help 2>&1 | grep -q "model-repository"; then
    suite serve_gpu python3 tests/serve/test_serve.py "$K" --gpu
fi
if has sanitizer && command -v compute-sanitizer >/dev/null; then
    suite sanitizer_runtime compute-sanitizer --tool memcheck --leak-check no \
        --error-exitcode 1 "$BUILD/bin/test_cuda_runtime"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
