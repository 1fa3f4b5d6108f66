#!/usr/bin/env python3
"""test_fp8.py: FP8 (E4M3) post-training quantization on a trained model.

Trains (or reuses) the digits CNN of train_digits.py, then checks through
the CLI:
  - top-1 on held-out images: FP8 with minmax calibration (the default)
    and with percentile loses at most 0.5 points against the FP32 engine;
    every Conv/Gemm is quantized and `kiln inspect` shows fp8 layers;
  - the engine computes what the standard ONNX FP8 Q/DQ graph means: the
    same model with FLOAT8E4M3FN QuantizeLinear/DequantizeLinear written
    here from the calibration cache's scales (and per-channel weight scales
    amax/448 computed here), run by the ONNX reference evaluator (and by
    onnxruntime at its basic optimization level), gives the same outputs up
    to float rounding; Kiln imports that explicit FP8 Q/DQ model alike;
  - the calibration cache: a rebuild from it does no calibration runs and
    writes the same engine bytes; its method line says e4m3; an INT8 cache
    is refused for an FP8 build and the other way round;
  - wrong invocations: --int8 with --fp8, --fp8 with entropy calibration,
    --fp8 without calibration data.
Usage: test_fp8.py path/to/kiln
Ends with "N passed, M failed" like the other suites."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

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


def read_cache(path):
    scales = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and not line.startswith(("method", "kiln")):
                try:
                    scales[parts[0]] = float.fromhex(parts[1]) if "0x" in parts[1] \
                        else float(parts[1])
                except ValueError:
                    pass
    return scales


def fp8_qdq_model(model_path, scales):
    """The model with FLOAT8E4M3FN Q/DQ on every cached activation and on the
    Conv/Gemm weights (per output channel, scale amax/448 in float32 as
    Kiln computes it), opset 21."""
    m = onnx.load(model_path)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    # activations: every reader of a cached tensor reads its DQ
    renames = {}
    for name, s in scales.items():
        sn, zn = name + "_fp8_scale", name + "_fp8_zp"
        g.initializer.append(numpy_helper.from_array(np.array(s, np.float32), sn))
        g.initializer.append(helper.make_tensor(zn, TensorProto.FLOAT8E4M3FN, [], [0.0]))
        nodes.append((name, [helper.make_node("QuantizeLinear", [name, sn, zn], [name + "_q"]),
                             helper.make_node("DequantizeLinear", [name + "_q", sn, zn],
                                              [name + "_dq"])]))
        renames[name] = name + "_dq"
    out = []
    produced = {"x"}
    pending = {n: q for n, q in nodes}
    for inp in g.input:
        if inp.name in pending:
            out.extend(pending.pop(inp.name))
    for n in g.node:
        ins = list(n.input)
        if n.op_type in ("Conv", "Gemm") and len(ins) > 1 and ins[1] in inits:
            w = numpy_helper.to_array(inits[ins[1]]).astype(np.float32)
            axis = 0
            if n.op_type == "Gemm":
                tb = next((a.i for a in n.attribute if a.name == "transB"), 0)
                axis = 0 if tb else 1
            red = tuple(d for d in range(w.ndim) if d != axis)
            amax = np.abs(w).max(axis=red).astype(np.float64)
            ws = np.where(amax > 0, (amax / 448.0).astype(np.float32), np.float32(1))
            wsn, wzn = ins[1] + "_fp8_scale", ins[1] + "_fp8_zp"
            g.initializer.append(numpy_helper.from_array(ws.astype(np.float32), wsn))
            g.initializer.append(helper.make_tensor(wzn, TensorProto.FLOAT8E4M3FN,
                                                    [len(ws)], [0.0] * len(ws)))
            out.append(helper.make_node("QuantizeLinear", [ins[1], wsn, wzn],
                                        [ins[1] + "_q"], axis=axis))
            out.append(helper.make_node("DequantizeLinear", [ins[1] + "_q", wsn, wzn],
                                        [ins[1] + "_dq"], axis=axis))
            ins[1] = ins[1] + "_dq"
        ins = [renames.get(i, i) for i in ins]
        nn = helper.make_node(n.op_type, ins, list(n.output), name=n.name)
        nn.attribute.extend(n.attribute)
        out.append(nn)
        for o in n.output:
            produced.add(o)
            if o in pending:
                out.extend(pending.pop(o))
    del g.node[:]
    g.node.extend(out)
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("", 21))
    m.ir_version = 10
    return m


def main():
    global KILN
    KILN = os.path.abspath(sys.argv[1])
    cache = os.path.join(HERE, "cache")
    subprocess.run([sys.executable, os.path.join(HERE, "train_digits.py"), cache], check=True)
    model = os.path.join(cache, "digits_cnn.onnx")
    calib = os.path.join(cache, "calib")
    xtest = os.path.join(cache, "test", "x.npy")
    labels = np.load(os.path.join(cache, "test", "labels.npy"))
    tmp = tempfile.mkdtemp(prefix="kiln_fp8_")
    e = lambda n: os.path.join(tmp, n)

    # ---- top-1 of FP32 vs FP8 on held-out data
    kiln("build", model, "-o", e("fp32.kiln"), *PROFILE, "-q")
    fp32_out = run_engine(e("fp32.kiln"), xtest, tmp)
    acc_fp32 = 100.0 * float(np.mean(fp32_out.argmax(1) == labels))
    print(f"FP32 top-1 {acc_fp32:.2f}% on {len(labels)} held-out images")
    check(acc_fp32 > 90, f"the trained CNN learned something (FP32 top-1 {acc_fp32:.2f}%)")
    cc, tcache = e("fp8.cache"), e("timing.cache")
    outs = {}
    for method in ("minmax", "percentile"):
        args = ["--calib-method", method] if method != "minmax" else []
        if method == "minmax":
            args += ["--calib-cache", cc, "--timing-cache", tcache]
        log = kiln("build", model, "-o", e(f"{method}.kiln"), *PROFILE, "--fp8",
                   "--calib", calib, *args)
        out = outs[method] = run_engine(e(f"{method}.kiln"), xtest, tmp)
        acc = 100.0 * float(np.mean(out.argmax(1) == labels))
        rel = float(np.linalg.norm(out - fp32_out) / np.linalg.norm(fp32_out))
        print(f"FP8 {method:10s} top-1 {acc:.2f}% (FP32 {acc_fp32:.2f}%), rel-l2 vs FP32 "
              f"{rel:.4f}")
        check(acc >= acc_fp32 - 0.5, f"FP8 {method} loses at most 0.5 points "
              f"({acc_fp32:.2f}% -> {acc:.2f}%)")
        check(0 < rel < 0.1, f"FP8 {method} changes the outputs a little (rel-l2 {rel:.4f})")
        check("fp8: 5 of 5 quantizable layers quantized" in log,
              f"FP8 {method}: every conv/gemm is quantized")
    insp = kiln("inspect", e("minmax.kiln"))
    check(len(re.findall(r"\bfp8\b", insp)) >= 5, "inspect shows fp8 layers")
    check(not re.search(r"\bint8\b", insp), "no int8 layer in an FP8 engine")

    # ---- the cache
    with open(cc) as f:
        text = f.read()
    check(text.startswith("kiln-calibration-cache 1\nmethod minmax e4m3\nkiln "),
          "FP8 cache header names the method and the E4M3 grid")
    log2 = kiln("build", model, "-o", e("again.kiln"), *PROFILE, "--fp8", "--calib-cache", cc,
                "--timing-cache", tcache)
    with open(e("minmax.kiln"), "rb") as f:
        a = f.read()
    with open(e("again.kiln"), "rb") as f:
        b = f.read()
    check("no calibration runs" in log2, "a rebuild from the FP8 cache does no calibration runs")
    check(a == b, f"a rebuild from the FP8 cache writes the same engine bytes ({len(a)} bytes)")
    r = subprocess.run([KILN, "build", model, "-o", e("x.kiln"), *PROFILE, "--int8",
                        "--calib-cache", cc], capture_output=True, text=True)
    check(r.returncode != 0 and "FP8" in r.stderr and "INT8" in r.stderr,
          "an FP8 cache is refused for an INT8 build, saying why")
    c8 = e("int8.cache")
    kiln("build", model, "-o", e("i8.kiln"), *PROFILE, "--int8", "--calib", calib,
         "--calib-cache", c8, "-q")
    r = subprocess.run([KILN, "build", model, "-o", e("x.kiln"), *PROFILE, "--fp8",
                        "--calib-cache", c8], capture_output=True, text=True)
    check(r.returncode != 0 and "INT8" in r.stderr and not os.path.exists(e("x.kiln")),
          "an INT8 cache is refused for an FP8 build, saying why")

    # ---- wrong invocations: usage errors (exit 2), no engine written
    for args, want in ((["--int8", "--fp8", "--calib", calib], "exclude"),
                       (["--fp8", "--calib", calib, "--calib-method", "entropy"], "entropy"),
                       (["--fp8"], "calibration data")):
        r = subprocess.run([KILN, "build", model, "-o", e("bad.kiln"), *PROFILE, *args],
                           capture_output=True, text=True)
        check(r.returncode == 2 and want in r.stderr and not os.path.exists(e("bad.kiln")),
              f"kiln build {' '.join(a for a in args if a != calib)}: usage error naming "
              f"'{want}' (exit {r.returncode})")

    # ---- against the ONNX reference evaluator and onnxruntime on the
    # standard FP8 Q/DQ graph
    scales = read_cache(cc)
    check(len(scales) >= 5, f"the cache lists the quantized tensors ({len(scales)})")
    qm = fp8_qdq_model(model, scales)
    qpath = e("digits_fp8_qdq.onnx")
    onnx.save(qm, qpath)
    x = np.load(xtest)
    got = outs["minmax"]
    from onnx.reference import ReferenceEvaluator
    ref = ReferenceEvaluator(qm).run(None, {"x": x})[0]
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    print(f"Kiln FP8 engine vs the ONNX reference on the FP8 Q/DQ graph: rel-l2 {rel:.2e}")
    # The same Q/DQ arithmetic; only float summation order differs (an
    # E4M3 step is 6-12% of a value, so one tensor landing on the other side
    # of a rounding boundary would show here as ~1e-3).
    check(rel < 1e-3, f"the engine computes the standard FP8 Q/DQ graph (rel-l2 {rel:.2e})")
    kiln("build", qpath, "-o", e("explicit.kiln"), *PROFILE, "-q")
    got2 = run_engine(e("explicit.kiln"), xtest, tmp)
    rel2 = float(np.linalg.norm(got2 - ref) / np.linalg.norm(ref))
    check(rel2 < 1e-3, f"Kiln runs the explicit FP8 Q/DQ model as the ONNX reference does "
          f"(rel-l2 {rel2:.2e})")
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        # onnxruntime 1.32 agrees at its basic optimization level; its
        # extended level (the QDQ fusions) computes this FP8 graph wrongly
        # (rel-l2 ~1.3 against the ONNX reference, seen 2026-12-07), so it
        # is printed, not checked.
        for name, lvl in (("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                          ("extended", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)):
            so = ort.SessionOptions()
            so.graph_optimization_level = lvl
            try:
                r = ort.InferenceSession(qpath, so, providers=["CPUExecutionProvider"]) \
                    .run(None, {"x": x})[0]
            except Exception as ex:  # a build without float8 types
                print(f"onnxruntime ({name}) cannot run the FP8 Q/DQ model: {str(ex)[:160]}")
                continue
            rel3 = float(np.linalg.norm(got - r) / np.linalg.norm(r))
            print(f"Kiln FP8 engine vs onnxruntime {ort.__version__} ({name} optimizations): "
                  f"rel-l2 {rel3:.2e}")
            if name == "basic":
                check(rel3 < 5e-3, f"the engine matches onnxruntime (basic) on the FP8 Q/DQ "
                      f"graph (rel-l2 {rel3:.2e})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
