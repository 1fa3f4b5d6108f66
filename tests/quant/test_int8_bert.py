#!/usr/bin/env python3
"""test_int8_bert.py: INT8 of a calibrated BERT-like encoder layer on the CPU.

Writes one BERT-base-shaped layer (LayerNorm, Q/K/V projections, attention,
output projection + residual, LayerNorm, FFN with the erf-form GELU +
residual, LayerNorm; small sizes, seeded weights), calibrates it through
the CLI and checks:
  - the build quantizes as session 11 made it: every product is a
    QFusedGemm (ops/qfused.c), a LayerNorm the products read writes int8
    (QLayerNormalization), and no QuantizeLinear/DequantizeLinear pair
    sits on a product's output that only float layers read (fewer Q/DQ
    layers than with KILN_INT8_QUANTIZE_OUTPUTS=1, the graph before);
  - accuracy against the FP32 engine is no worse than that previous INT8
    graph's (rel-l2 of the outputs on held-out inputs), and within a bound;
  - both INT8 engines run (CPU tactics) and agree with each other closely.
With --device cuda (tests/gpu/run.sh's int8 suite; needs a GPU, else "0
passed, 0 failed (no GPU)"): the same layer built for the GPU with --fp16
and KILN_CUDA_Q8_FLOAT_OUT=1 (the opt-in QFusedGemm / QLayerNormalization
tactics): every product and both LayerNorms on the device
(cuda_qfusedgemm_*, cuda_qlayernorm_rows), no layer on the host, outputs
close to the CPU INT8 engine's (same calibration cache, so the same scales;
the float16 tail rounds) and to FP32.
Usage: test_int8_bert.py path/to/kiln [--device cuda] [--keep DIR]
Ends with "N passed, M failed" like the other suites."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

KILN = None
passed = failed = 0
B, S, D, HEADS, FF = 4, 16, 64, 2, 256


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")


def kiln(*args, env=None):
    e = dict(os.environ)
    e.pop("KILN_INT8_QUANTIZE_OUTPUTS", None)
    if env:
        e.update(env)
    r = subprocess.run([KILN, *args], capture_output=True, text=True, env=e)
    if r.returncode != 0:
        print(f"kiln {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        raise SystemExit(f"unexpected exit code {r.returncode}")
    return r.stdout + r.stderr


def bert_layer(path):
    rng = np.random.default_rng(2026)
    inits = []

    def w(name, *shape, scale=None):
        scale = scale if scale is not None else 1.0 / np.sqrt(shape[0])
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def c(name, v, dt=np.float32):
        inits.append(numpy_helper.from_array(np.array(v, dtype=dt), name))
        return name

    nodes = []

    def n(op, ins, outs, **kw):
        nodes.append(helper.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    hd = D // HEADS
    c("split_shape", [B, S, HEADS, hd], np.int64)
    c("merge_shape", [B, S, D], np.int64)
    c("scale_qk", 1.0 / np.sqrt(hd))
    c("sqrt2", np.sqrt(2.0))
    c("one", 1.0)
    c("half", 0.5)

    def ln(x, tag):
        g = w(f"{tag}_g", D, scale=0.1)
        inits[-1] = numpy_helper.from_array(
            (1.0 + numpy_helper.to_array(inits[-1])).astype(np.float32), g)
        b = w(f"{tag}_b", D, scale=0.1)
        return n("LayerNormalization", [x, g, b], [f"{tag}_y"], axis=-1, epsilon=1e-5)

    def dense(x, k, m, tag):
        mm = n("MatMul", [x, w(f"{tag}_w", k, m)], [f"{tag}_mm"])
        return n("Add", [mm, w(f"{tag}_b", m, scale=0.1)], [f"{tag}_out"])

    h0 = ln("x", "ln0")
    heads = {}
    for p in "qkv":
        t = dense(h0, D, D, p)
        r = n("Reshape", [t, "split_shape"], [f"{p}_r"])
        heads[p] = n("Transpose", [r], [f"{p}_t"], perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3])
    sc = n("MatMul", [heads["q"], heads["k"]], ["scores"])
    sc = n("Mul", [sc, "scale_qk"], ["scores_s"])
    pr = n("Softmax", [sc], ["probs"], axis=-1)
    ctx = n("MatMul", [pr, heads["v"]], ["ctx"])
    ctx = n("Transpose", [ctx], ["ctx_t"], perm=[0, 2, 1, 3])
    ctx = n("Reshape", [ctx, "merge_shape"], ["ctx_m"])
    o = dense(ctx, D, D, "o")
    h1 = ln(n("Add", [o, h0], ["res1"]), "ln1")
    f = dense(h1, D, FF, "ffn1")
    g_div = n("Div", [f, "sqrt2"], ["g_div"])
    g_erf = n("Erf", [g_div], ["g_erf"])
    g_add = n("Add", [g_erf, "one"], ["g_add"])
    g_mul = n("Mul", [f, g_add], ["g_mul"])
    gelu = n("Mul", [g_mul, "half"], ["gelu"])
    f2 = dense(gelu, FF, D, "ffn2")
    ln(n("Add", [f2, h1], ["res2"]), "ln2")
    nodes[-1].output[0] = "y"
    g = helper.make_graph(nodes, "bert_layer",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, D])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [B, S, D])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    save(m, path)


def run_engine(engine, x_npy, tmp, env=None):
    out = tempfile.mkdtemp(dir=tmp)
    kiln("run", "--engine", engine, "--input", f"x={x_npy}", "--output-dir", out, env=env)
    t = TensorProto()
    with open(os.path.join(out, "output_0.pb"), "rb") as fh:
        t.ParseFromString(fh.read())
    return numpy_helper.to_array(t)


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def layer_counts(engine):
    txt = kiln("inspect", engine)
    ops = {op: 0 for op in ("QFusedGemm", "QuantizeLinear", "DequantizeLinear", "QLinearConv",
                            "MatMul", "FusedGemm", "Gelu", "Add", "QLayerNormalization",
                            "LayerNormalization")}
    for line in txt.splitlines():
        m = re.match(r"\s+\d+ \S+\s+(\S+)", line)  # index, name, op, ...
        if m and m.group(1) in ops:
            ops[m.group(1)] += 1
    return ops, txt


def have_gpu():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def gpu_checks(model, calib, vals, tmp):
    """The --device cuda half: device INT8 engine vs the CPU ones."""
    env = {"KILN_CUDA_Q8_FLOAT_OUT": "1"}
    cc = os.path.join(tmp, "calib.cache")
    cpu = os.path.join(tmp, "cpu_int8.kiln")
    gpu = os.path.join(tmp, "cuda_int8_fp16.kiln")
    fp32 = os.path.join(tmp, "fp32.kiln")
    kiln("build", model, "-o", fp32, "-q")
    kiln("build", model, "-o", cpu, "-q", "--int8", "--calib", calib, "--calib-method",
         "minmax", "--calib-cache", cc)
    kiln("build", model, "-o", gpu, "-q", "--device", "cuda", "--fp16", "--int8",
         "--calib-cache", cc, env=env)
    txt = kiln("inspect", gpu, env=env)
    print(txt)
    host = [l for l in txt.splitlines() if re.match(r"\s+\d+ HOST ", l)]
    check(not host, f"no layer of the device INT8 engine on the host ({len(host)})")
    check(len(re.findall(r"cuda_qfusedgemm_lt_h\d", txt)) == 6,
          "the six products run cuda_qfusedgemm_lt_*")
    check(len(re.findall(r"cuda_qlayernorm_rows", txt)) == 2,
          "the two LayerNorms the products read run cuda_qlayernorm_rows")
    d_cpu, d_fp = [], []
    for v in vals:
        g = run_engine(gpu, v, tmp, env)
        d_cpu.append(rel_l2(g, run_engine(cpu, v, tmp)))
        d_fp.append(rel_l2(g, run_engine(fp32, v, tmp)))
    print(f"device INT8 rel-l2 vs CPU INT8 {['%.3g' % x for x in d_cpu]}, vs FP32 "
          f"{['%.3g' % x for x in d_fp]}")
    check(max(d_cpu) < 2e-2, f"device INT8 matches the CPU INT8 engine (rel-l2 "
          f"{max(d_cpu):.3g} < 2e-2)")
    check(max(d_fp) < 0.08, f"device INT8 within 0.08 of FP32 (rel-l2 {max(d_fp):.3g})")


def main():
    global KILN
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    KILN = os.path.abspath(sys.argv[1])
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    if device == "cuda" and not have_gpu():
        print("0 passed, 0 failed (no GPU)")
        return 0
    tmp = keep or tempfile.mkdtemp(prefix="kiln_int8_bert_")
    os.makedirs(tmp, exist_ok=True)
    try:
        model = os.path.join(tmp, "bert_layer.onnx")
        bert_layer(model)
        rng = np.random.default_rng(7)
        calib = os.path.join(tmp, "calib")
        os.makedirs(calib, exist_ok=True)
        # four sets of B rows in one file
        np.save(os.path.join(calib, "x.npy"),
                rng.standard_normal((4 * B, S, D)).astype(np.float32))
        vals = []
        for i in range(3):
            p = os.path.join(tmp, f"val_{i}.npy")
            np.save(p, rng.standard_normal((B, S, D)).astype(np.float32))
            vals.append(p)
        if device == "cuda":
            gpu_checks(model, calib, vals, tmp)
            print(f"{passed} passed, {failed} failed")
            return 1 if failed else 0
        fp32 = os.path.join(tmp, "fp32.kiln")
        new = os.path.join(tmp, "int8.kiln")
        old = os.path.join(tmp, "int8_qout.kiln")
        kiln("build", model, "-o", fp32, "-q")
        kiln("build", model, "-o", new, "-q", "--int8", "--calib", calib,
             "--calib-method", "minmax")
        kiln("build", model, "-o", old, "-q", "--int8", "--calib", calib,
             "--calib-method", "minmax", env={"KILN_INT8_QUANTIZE_OUTPUTS": "1"})
        cn, txt_new = layer_counts(new)
        co, _ = layer_counts(old)
        print(f"layers, new: {cn}\nlayers, before: {co}")
        check(cn["QFusedGemm"] == 6 and cn["QLinearConv"] == 0 and cn["MatMul"] <= 2,
              "the six weight products are QFusedGemm (attention's two stay float)")
        qdq_new = cn["QuantizeLinear"] + cn["DequantizeLinear"]
        qdq_old = co["QuantizeLinear"] + co["DequantizeLinear"]
        check(qdq_new < qdq_old, f"fewer Q/DQ layers: {qdq_new} against {qdq_old} before")
        check(cn["Gelu"] == 0 and cn["Add"] == 0 and "gelu_QuantizeLinear" in txt_new,
              "the bias, GELU, residual adds and the FFN's requantization run inside "
              "the products")
        check(cn["QLayerNormalization"] == 2 and cn["LayerNormalization"] == 1,
              "the two LayerNorms the products read write int8 (QLayerNormalization); the "
              "output's stays float")
        e_new, e_old, d_no = [], [], []
        for v in vals:
            ref = run_engine(fp32, v, tmp)
            a = run_engine(new, v, tmp)
            b = run_engine(old, v, tmp)
            e_new.append(rel_l2(a, ref))
            e_old.append(rel_l2(b, ref))
            d_no.append(rel_l2(a, b))
        mn, mo = float(np.mean(e_new)), float(np.mean(e_old))
        print(f"rel-l2 vs FP32: new {['%.4g' % e for e in e_new]} (mean {mn:.4g}), "
              f"before {['%.4g' % e for e in e_old]} (mean {mo:.4g})")
        check(mn <= mo * 1.02, f"accuracy no worse than before: rel-l2 {mn:.4g} vs {mo:.4g}")
        check(mn < 0.08, f"rel-l2 against FP32 {mn:.4g} < 0.08")
        check(max(d_no) < 0.08, f"the two INT8 engines agree (rel-l2 {max(d_no):.4g})")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
