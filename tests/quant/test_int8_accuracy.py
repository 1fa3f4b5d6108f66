#!/usr/bin/env python3
"""test_int8_accuracy.py: INT8 post-training quantization on a trained model.

Trains (or reuses) the digits CNN of train_digits.py, then checks through
the CLI:
  - top-1 on held-out images: INT8 with entropy calibration loses at most
    0.5 points against the FP32 engine (minmax and percentile reported);
  - accuracy budgets (top1, rel-l2, cosine): every budgeted build meets, on
    the validation data, the budget it accepted, measured here on the
    engine's own outputs, and `kiln inspect` shows the layers it kept in
    FP32 as fp32;
  - the calibration cache: a rebuild from it does no calibration runs and
    writes the same engine bytes.
Usage: test_int8_accuracy.py path/to/kiln [--keep DIR]
Ends with "N passed, M failed" like the other suites."""
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


PROFILE = ["--min-shapes", "x:1x1x8x8", "--opt-shapes", "x:32x1x8x8",
           "--max-shapes", "x:1024x1x8x8"]


def run_engine(engine, x_npy, tmp):
    out = tempfile.mkdtemp(dir=tmp)
    kiln("run", "--engine", engine, "--input", f"x={x_npy}", "--output-dir", out)
    t = TensorProto()
    with open(os.path.join(out, "output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def metrics(ref, got):
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    cos = float(np.sum(ref * got) / np.sqrt(np.sum(ref * ref) * np.sum(got * got)))
    top1 = 100.0 * float(np.mean(ref.argmax(1) != got.argmax(1)))
    return top1, rel, cos


def main():
    global KILN
    KILN = os.path.abspath(sys.argv[1])
    cache = os.path.join(HERE, "cache")
    subprocess.run([sys.executable, os.path.join(HERE, "train_digits.py"), cache], check=True)
    model = os.path.join(cache, "digits_cnn.onnx")
    calib, val = os.path.join(cache, "calib"), os.path.join(cache, "val")
    xtest = os.path.join(cache, "test", "x.npy")
    labels = np.load(os.path.join(cache, "test", "labels.npy"))
    tmp = tempfile.mkdtemp(prefix="kiln_int8_")
    e = lambda n: os.path.join(tmp, n)

    # ---- top-1 of FP32 vs INT8 on held-out data
    kiln("build", model, "-o", e("fp32.kiln"), *PROFILE, "-q")
    fp32_out = run_engine(e("fp32.kiln"), xtest, tmp)
    acc_fp32 = 100.0 * float(np.mean(fp32_out.argmax(1) == labels))
    print(f"FP32 top-1 {acc_fp32:.2f}% on {len(labels)} held-out images")
    check(acc_fp32 > 90, f"the trained CNN learned something (FP32 top-1 {acc_fp32:.2f}%)")
    for method in ("entropy", "minmax", "percentile"):
        log = kiln("build", model, "-o", e(f"{method}.kiln"), *PROFILE, "--int8",
                   "--calib", calib, "--calib-method", method)
        out = run_engine(e(f"{method}.kiln"), xtest, tmp)
        acc = 100.0 * float(np.mean(out.argmax(1) == labels))
        top1, rel, cos = metrics(fp32_out, out)
        print(f"INT8 {method:10s} top-1 {acc:.2f}% (FP32 {acc_fp32:.2f}%), vs FP32: "
              f"top1 disagreement {top1:.2f}%, rel-l2 {rel:.4f}, cosine {cos:.6f}")
        if method == "entropy":
            check(acc >= acc_fp32 - 0.5, f"INT8 entropy loses at most 0.5 points "
                  f"({acc_fp32:.2f}% -> {acc:.2f}%)")
            check("5 of 5 quantizable layers quantized" in log, "every conv/gemm is quantized")
            insp = kiln("inspect", e("entropy.kiln"))
            check(len(re.findall(r"\bint8\b", insp)) >= 5, "inspect shows int8 layers")

    # ---- accuracy budgets, measured on the engine's own outputs
    xval = os.path.join(val, "x.npy")
    ref_val = run_engine(e("fp32.kiln"), xval, tmp)
    any_kept = False
    for budget in ("top1:0%", "rel-l2:0.004", "cosine:0.999995", "rel-l2:0", "rel-l2:0.5"):
        name = budget.replace(":", "_").replace("%", "")
        log = kiln("build", model, "-o", e(name + ".kiln"), *PROFILE, "--int8",
                   "--calib", calib, "--accuracy-budget", budget, "--validate", val)
        out = run_engine(e(name + ".kiln"), xval, tmp)
        top1, rel, cos = metrics(ref_val, out)
        metric, value = budget.split(":")
        value = float(value.rstrip("%"))
        got = {"top1": top1, "rel-l2": rel, "cosine": cos}[metric]
        # The builder measures with the reference kernels; the engine's
        # fast FP32 kernels differ by float rounding only.
        ok = got >= value - 1e-6 if metric == "cosine" else got <= value * (1 + 1e-3) + 1e-6
        kept = re.search(r"(\d+) of (\d+) layers kept in FP32 \(([^)]*)\)", log)
        kept_names = kept.group(3).split(", ") if kept else []
        print(f"budget {budget}: engine gives {metric} {got:.6g}; kept in FP32: "
              f"{kept_names or 'none'}")
        check(ok, f"budget {budget} is met by the engine ({metric} {got:.6g})")
        check(("met with every layer in INT8" in log) != bool(kept),
              f"budget {budget}: the build says which layers stayed FP32")
        any_kept |= bool(kept_names)
        if budget == "rel-l2:0":
            check(kept and kept.group(1) == kept.group(2), "rel-l2:0 keeps every layer in FP32")
        if kept_names:
            insp = kiln("inspect", e(name + ".kiln"))
            rows = {ln.split()[1]: ln.split()[3] for ln in insp.splitlines()
                    if re.match(r"\s+\d+ ", ln) and len(ln.split()) > 3}
            lab = lambda k: k.split(" ")[0].split("(")[0]
            check(all(rows.get(lab(k).strip("'")) == "fp32" for k in kept_names) or
                  all(any(lab(k).strip("'") in r for r in rows) for k in kept_names),
                  f"budget {budget}: inspect shows the kept layers")

    check(any_kept, "some budget needed layers moved back to FP32 (the search ran)")

    # ---- calibration cache round trip
    cc, tc = e("calib.cache"), e("timing.cache")
    log1 = kiln("build", model, "-o", e("a.kiln"), *PROFILE, "--int8", "--calib", calib,
                "--calib-cache", cc, "--timing-cache", tc)
    log2 = kiln("build", model, "-o", e("b.kiln"), *PROFILE, "--int8", "--calib-cache", cc,
                "--timing-cache", tc)
    with open(e("a.kiln"), "rb") as f:
        a = f.read()
    with open(e("b.kiln"), "rb") as f:
        b = f.read()
    check("calibration: 8 sets" in log1 and "no calibration runs" in log2 and
          "calibration: 8 sets" not in log2, "a rebuild from the cache does no calibration runs")
    check(a == b, f"a rebuild from the cache writes the same engine bytes ({len(a)} bytes)")
    with open(cc) as f:
        text = f.read()
    check(text.startswith("kiln-calibration-cache 1\nmethod entropy\nkiln "),
          "cache header names the method and Kiln's version")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
