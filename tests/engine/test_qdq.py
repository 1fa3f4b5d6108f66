#!/usr/bin/env python3
"""test_qdq.py: explicit quantization end to end. Builds a small CNN, a
depthwise (MobileNet-style) block, a tiny MLP and a rank-3 MLP with a
symbolic batch with onnx.helper (random weights), quantizes them with
onnxruntime's quantize_static (QDQ format, random calibration data; uint8
and int8 activations, per-tensor and per-channel weights), builds each with
`kiln build`, checks that `kiln inspect` shows INT8 (QLinearConv) layers in
place of the float Conv/Gemm, and that Kiln's outputs match onnxruntime's on
the same QDQ model within one quantization step of the output. The same
model built and run as on an AVX2-only machine (KILN_CPU_ISA=avx2,fma: the
int16 and integer Winograd tactics) and with no vector ISA (the portable
tactics) must give bit-identical outputs, every INT8 tactic being exact.

usage: test_qdq.py build/bin/kiln   (prints "N passed, M failed")
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)

RNG = np.random.default_rng(7)


def init(name, shape, scale=0.2):
    return numpy_helper.from_array(
        (RNG.standard_normal(shape) * scale).astype(np.float32), name)


def cnn():
    """conv-relu, conv(stride 2, odd channels)-relu, maxpool, residual add,
    global pool, flatten, gemm: the ResNet shapes in small."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Conv", ["p", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c3", "p"], ["a"]),
        helper.make_node("Relu", ["a"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [init("w1", [7, 3, 3, 3]), init("b1", [7], 0.1),
             init("w2", [13, 7, 3, 3]), init("b2", [13], 0.1),
             init("w3", [13, 13, 1, 1]), init("b3", [13], 0.1),
             init("wf", [10, 13]), init("bf", [10], 0.1)]
    g = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 15, 17])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), \
        {"x": (2, 3, 15, 17)}


def dwnet():
    """MobileNet-style block: conv, depthwise 3x3 stride 2 (group = channels),
    pointwise conv, each followed by Relu."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1],
                         strides=[2, 2], group=11),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["y"]),
    ]
    inits = [init("w1", [11, 3, 3, 3]), init("b1", [11], 0.1),
             init("w2", [11, 1, 3, 3], 0.5), init("b2", [11], 0.1),
             init("w3", [6, 11, 1, 1]), init("b3", [6], 0.1)]
    g = helper.make_graph(
        nodes, "dwnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 13, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 7, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), \
        {"x": (1, 3, 13, 16)}


def wnet():
    """3x3 stride-1 convs with 16+ input channels (the AVX2 Winograd
    tactic's layers; odd output sizes cut its 2x2 tiles), a 1x1 conv with a
    residual add, then global pool and a Gemm (one position: the few-position
    path of the AVX2 tactics on their prepared weights)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 0, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c3", "r2"], ["a"]),
        helper.make_node("Relu", ["a"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [init("w1", [22, 17, 3, 3], 0.1), init("b1", [22], 0.1),
             init("w2", [19, 22, 3, 3], 0.1), init("b2", [19], 0.1),
             init("w3", [19, 19, 1, 1]), init("b3", [19], 0.1),
             init("wf", [7, 19]), init("bf", [7], 0.1)]
    g = helper.make_graph(
        nodes, "wnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 17, 11, 13])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), \
        {"x": (2, 17, 11, 13)}


def mlp():
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "w2"], ["y"]),
    ]
    inits = [init("w1", [19, 33]), init("b1", [33], 0.1), init("w2", [33, 5])]
    g = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 19])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), \
        {"x": (3, 19)}


def mlp3():
    """MatMuls on a rank-3 input with a symbolic batch dim (a transformer's
    projections in small): the folded 1x1 conv restores the leading dims
    from the input's shape at run time."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "w2"], ["y"]),
    ]
    inits = [init("w1", [19, 33]), init("w2", [33, 6])]
    g = helper.make_graph(
        nodes, "mlp3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5, 19])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5, 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), \
        {"x": (2, 5, 19)}


class Reader(CalibrationDataReader):
    def __init__(self, shapes, n=8):
        self.data = [{k: RNG.standard_normal(s).astype(np.float32)
                      for k, s in shapes.items()} for _ in range(n)]
        self.it = iter(self.data)

    def get_next(self):
        return next(self.it, None)


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True,
                       env=dict(os.environ, **env) if env else None)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: rc {r.returncode}\n{r.stderr}")
    return r.stdout


def out_scale(model, name):
    """Scale of the QuantizeLinear that produces the DQ feeding output name."""
    by_out = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = by_out.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    return float(inits[dq.input[1]])


def check(kiln, tmp, label, make, act_type, per_channel):
    model, shapes = make()
    fp = os.path.join(tmp, f"{label}_fp32.onnx")
    qp = os.path.join(tmp, f"{label}_qdq.onnx")
    onnx.save(model, fp)
    quantize_static(fp, qp, Reader(shapes), quant_format=QuantFormat.QDQ,
                    activation_type=act_type, weight_type=QuantType.QInt8,
                    per_channel=per_channel)
    qm = onnx.load(qp)
    eng = os.path.join(tmp, f"{label}.kiln")
    spec = ",".join(f"{k}:{'x'.join(map(str, (1,) + s[1:]))}" for k, s in shapes.items())
    spec_max = ",".join(f"{k}:{'x'.join(map(str, s))}" for k, s in shapes.items())
    symbolic = any(d.dim_param for i in model.graph.input
                   for d in i.type.tensor_type.shape.dim)
    shape_args = (["--min-shapes", spec, "--opt-shapes", spec_max, "--max-shapes", spec_max]
                  if symbolic else [])
    run([kiln, "build", qp, "-o", eng] + shape_args)
    # the same model as an AVX2-only machine and a machine with no vector
    # ISA build and run it (each engine run under its own ISA)
    isa_engines = []
    for isa in ("avx2,fma", "baseline"):
        e = os.path.join(tmp, f"{label}_{isa.replace(',', '_')}.kiln")
        run([kiln, "build", qp, "-o", e] + shape_args, env={"KILN_CPU_ISA": isa})
        isa_engines.append((isa, e))
    info = json.loads(run([kiln, "inspect", eng, "--json"]))
    layers = info.get("layers") or info.get("profiles", [{}])[0].get("layers", [])
    ops = [l.get("op") or l.get("op_type") for l in layers]
    n_q = sum(1 for l in layers if (l.get("op") or l.get("op_type")) == "QLinearConv"
              and l.get("precision") == "int8")
    n_float = sum(1 for o in ops if o in ("Conv", "FusedConv", "Gemm", "FusedGemm",
                                          "MatMul"))
    want_q = sum(1 for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul"))
    n_add = sum(1 for o in ops if o == "QAdd")
    want_add = sum(1 for n in model.graph.node if n.op_type == "Add")
    ok = True
    msgs = []
    if n_q != want_q or n_float or n_add != want_add:
        ok = False
        msgs.append(f"INT8 layers {n_q} (want {want_q}), QAdd {n_add} (want {want_add}), "
                    f"float layers {n_float}: {ops}")
    sess = ort.InferenceSession(qp, providers=["CPUExecutionProvider"])
    step = out_scale(qm, "y")
    for seed in range(3):
        x = {k: np.random.default_rng(100 + seed).standard_normal(s).astype(np.float32)
             for k, s in shapes.items()}
        want = sess.run(None, x)[0]
        ins = []
        for k, v in x.items():
            f = os.path.join(tmp, f"{label}_{k}.npy")
            np.save(f, v)
            ins += ["--input", f"{k}={f}"]
        od = os.path.join(tmp, f"{label}_out")
        run([kiln, "run", "--engine", eng, "--output-dir", od] + ins)
        got = numpy_helper.to_array(onnx.load_tensor(os.path.join(od, "output_0.pb")))
        err = float(np.max(np.abs(got - want)))
        if step is None or err > step * 1.0001:
            ok = False
            msgs.append(f"seed {seed}: max |kiln - ort| {err:.6g}, step {step}")
        # and against Kiln's reference interpreter on the unfused QDQ graph
        rd = os.path.join(tmp, f"{label}_ref")
        run([kiln, "run", qp, "--reference", "--output-dir", rd] + ins)
        ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(rd, "output_0.pb")))
        err = float(np.max(np.abs(got - ref)))
        if err > step * 1.0001:
            ok = False
            msgs.append(f"seed {seed}: max |engine - reference| {err:.6g}, step {step}")
        for isa, e in isa_engines:
            idir = os.path.join(tmp, f"{label}_{isa.replace(',', '_')}_out")
            run([kiln, "run", "--engine", e, "--output-dir", idir] + ins,
                env={"KILN_CPU_ISA": isa})
            other = numpy_helper.to_array(onnx.load_tensor(os.path.join(idir, "output_0.pb")))
            if not np.array_equal(other, got):
                ok = False
                msgs.append(f"seed {seed}: KILN_CPU_ISA={isa} output differs by up to "
                            f"{float(np.max(np.abs(other - got))):.6g}")
    if label.startswith("wnet"):  # the AVX2 engine really takes the AVX2 tactics
        tac = run([kiln, "inspect", isa_engines[0][1]])
        for t in ("u8s8_qconv_wino2x2_6x8_avx2", "u8s8_qconv_im2col_w16_6x8_avx2"):
            if t not in tac:
                ok = False
                msgs.append(f"the AVX2-only engine has no {t} layer")
    print(f"{'PASS' if ok else 'FAIL'} {label}: {n_q} INT8 layers; "
          + ("; ".join(msgs) if msgs else f"within one step ({step:.4g})"))
    return ok


def main():
    kiln = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/bin/kiln")
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for make, name in ((cnn, "cnn"), (dwnet, "dwnet"), (wnet, "wnet"), (mlp, "mlp"),
                           (mlp3, "mlp3")):
            for act, an in ((QuantType.QUInt8, "u8"), (QuantType.QInt8, "s8")):
                for pc in (False, True):
                    label = f"{name}_{an}_{'perchannel' if pc else 'pertensor'}"
                    try:
                        ok = check(kiln, tmp, label, make, act, pc)
                    except Exception as e:  # noqa: BLE001 (reported as a failure)
                        print(f"FAIL {label}: {e}")
                        ok = False
                    passed += ok
                    failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
