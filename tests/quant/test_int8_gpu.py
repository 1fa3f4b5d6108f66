#!/usr/bin/env python3
"""test_int8_gpu.py: INT8 engines on the GPU, end to end (needs a GPU; run by
tests/gpu/run.sh's "int8" suite).

On the digits CNN of train_digits.py (trained or reused from the cache):
  - `kiln build --device cuda --int8 --calib ...` builds untimed (every
    QLinearConv on the exact cuBLASLt int8 path), timed, and with --fp16 for
    the float layers; `kiln inspect` shows the quantized convolutions and
    the GEMM as int8 layers on the device (cuda_qlinear_conv_* tactics), and
    no QLinearConv/QAdd/MaxPool layer on the host;
  - top-1 on the held-out images is within 0.5 points of the CPU INT8
    engine's (same calibration cache, so the same scales), and the outputs
    match the CPU INT8 engine's closely (the integer layers compute the same
    integers; only the float tail may differ in rounding);
  - an explicit Q/DQ model (onnxruntime's quantize_static output of the same
    CNN, when onnxruntime's quantization tools are present) builds for CUDA
    into int8 layers and matches the CPU engine of the same model.
Usage: test_int8_gpu.py path/to/kiln. Without a GPU: "0 passed, 0 failed (no
GPU)". Ends with "N passed, M failed"."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from onnx import numpy_helper, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
KILN = None
passed = failed = 0
PROFILE = ["--min-shapes", "x:1x1x8x8", "--opt-shapes", "x:32x1x8x8",
           "--max-shapes", "x:1024x1x8x8"]


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")


def kiln(*args, expect=0):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    if r.returncode != expect:
        print(f"kiln {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        raise SystemExit(f"unexpected exit code {r.returncode}")
    return r.stdout + r.stderr


def run_engine(engine, x_npy, tmp):
    out = tempfile.mkdtemp(dir=tmp)
    kiln("run", "--engine", engine, "--input", f"x={x_npy}", "--output-dir", out)
    t = TensorProto()
    with open(os.path.join(out, "output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t).astype(np.float32)


def have_gpu():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def layers(insp):
    """(on_host, op, precision, tactic) per layer line of `kiln inspect`."""
    out = []
    for line in insp.splitlines():
        m = re.match(r"\s+\d+ (HOST |     )(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
        if m:
            out.append((m.group(1) == "HOST ", m.group(3), m.group(4), m.group(5)))
    return out


def check_engine_layers(insp, what, want_gemm):
    ls = layers(insp)
    q = [l for l in ls if l[1] in ("QLinearConv", "NhwcQLinearConv", "QAdd")]
    check(len(q) >= 4, f"{what}: {len(q)} quantized layers (QLinearConv/QAdd)")
    host = [l for l in ls if l[0] and l[1] in ("QLinearConv", "NhwcQLinearConv", "QAdd",
                                                "MaxPool", "NhwcMaxPool")]
    check(not host, f"{what}: no quantized layer on the host ({host[:3]})")
    gemm = [l for l in q if l[3].startswith(("cuda_qlinear_conv_lt_i8", "cuda_nhwc_qconv_lt_i8"))]
    print(f"{what}: tactics " + ", ".join(sorted(set(l[3] for l in q))))
    if want_gemm:  # untimed builds take the first candidate: the exact GEMM path
        check(len(gemm) == len([l for l in q if l[1] in ("QLinearConv", "NhwcQLinearConv")]),
              f"{what}: every QLinearConv on int8 tensor cores (cuBLASLt)")
    return ls


def main():
    global KILN
    KILN = os.path.abspath(sys.argv[1])
    if not have_gpu():
        print("0 passed, 0 failed (no GPU)")
        return 0
    cache = os.path.join(HERE, "cache")
    subprocess.run([sys.executable, os.path.join(HERE, "train_digits.py"), cache], check=True)
    model = os.path.join(cache, "digits_cnn.onnx")
    calib = os.path.join(cache, "calib")
    xtest = os.path.join(cache, "test", "x.npy")
    labels = np.load(os.path.join(cache, "test", "labels.npy"))
    tmp = tempfile.mkdtemp(prefix="kiln_int8_gpu_")
    e = lambda n: os.path.join(tmp, n)
    cc = e("calib.cache")

    kiln("build", model, "-o", e("cpu_int8.kiln"), *PROFILE, "--int8", "--calib", calib,
         "--calib-cache", cc, "-q")
    cpu = run_engine(e("cpu_int8.kiln"), xtest, tmp)
    acc_cpu = 100.0 * float(np.mean(cpu.argmax(1) == labels))
    print(f"CPU INT8 top-1 {acc_cpu:.2f}%")
    # --opt-level 0: no timing, every layer gets its first candidate (the
    # exact cuBLASLt path); then timed builds (whatever wins, the int8-output
    # variants included), FP32 and FP16 around the quantized layers
    for name, extra in (("cuda_int8_untimed", ["--opt-level", "0"]), ("cuda_int8", []),
                        ("cuda_int8_fp16", ["--fp16"])):
        kiln("build", model, "-o", e(name + ".kiln"), *PROFILE, "--device", "cuda", "--int8",
             "--calib-cache", cc, *extra, "-q")
        insp = kiln("inspect", e(name + ".kiln"))
        print(insp)
        check_engine_layers(insp, name, "--opt-level" in extra)
        out = run_engine(e(name + ".kiln"), xtest, tmp)
        acc = 100.0 * float(np.mean(out.argmax(1) == labels))
        agree = 100.0 * float(np.mean(out.argmax(1) == cpu.argmax(1)))
        rel = float(np.linalg.norm(out - cpu) / np.linalg.norm(cpu))
        print(f"{name}: top-1 {acc:.2f}% (CPU INT8 {acc_cpu:.2f}%), argmax agreement "
              f"{agree:.2f}%, rel-l2 vs CPU INT8 {rel:.2e}")
        check(acc >= acc_cpu - 0.5, f"{name} top-1 within 0.5 points of the CPU INT8 engine")
        # exact integer layers: only the float tail differs; the int8-output
        # tactics may move a value by one step near ties; FP16 tails round
        tol = 1e-3 if "untimed" in name else 2e-2
        check(rel < tol, f"{name} outputs match the CPU INT8 engine's (rel-l2 {rel:.2e} < {tol})")

    # explicit Q/DQ (onnxruntime's quantize_static), when its tools are here
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                              QuantType, quantize_static)
    except ImportError:
        print("skip: onnxruntime.quantization not available")
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    x = np.load(xtest).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x[i:i + 32]} for i in range(0, min(len(x), 256), 32)])

        def get_next(self):
            return next(self.it, None)

    qdq = e("digits_qdq.onnx")
    quantize_static(model, qdq, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    kiln("build", qdq, "-o", e("qdq_cpu.kiln"), *PROFILE, "-q")
    kiln("build", qdq, "-o", e("qdq_cuda.kiln"), *PROFILE, "--device", "cuda", "-q")
    insp = kiln("inspect", e("qdq_cuda.kiln"))
    print(insp)
    check_engine_layers(insp, "QDQ model on cuda", False)
    a = run_engine(e("qdq_cpu.kiln"), xtest, tmp)
    b = run_engine(e("qdq_cuda.kiln"), xtest, tmp)
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(a))
    check(rel < 2e-2, f"QDQ model: CUDA engine matches the CPU engine (rel-l2 {rel:.2e})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
