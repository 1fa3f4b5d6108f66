#!/usr/bin/env python3
"""test_dq_lstm.py: com.microsoft DynamicQuantizeLSTM, as onnxruntime's
quantize_dynamic writes it (per-tensor and per-channel weight scales;
forward, reverse and bidirectional; with bias, initial states and sequence
lengths, odd sizes). Two checks per model, reference and engine mode:
  - exact expansion: Kiln on the quantized model against onnxruntime on a
    float LSTM whose weights are the dequantized ones (rel-L2 < 1e-5): the
    weight layout, zero points and scales are read right;
  - against onnxruntime on the quantized model itself, which also quantizes
    the input and the hidden state at every step: rel-L2 < 3e-2.

usage: test_dq_lstm.py build/bin/kiln   (prints "N passed, M failed")
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

F = TensorProto.FLOAT


def lstm_model(direction, T, B, I, H, seed):
    r = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array((r.normal(size=(D, 4 * H, I)) * 0.3).astype(np.float32), "W"),
             numpy_helper.from_array((r.normal(size=(D, 4 * H, H)) * 0.3).astype(np.float32), "R"),
             numpy_helper.from_array((r.normal(size=(D, 8 * H)) * 0.1).astype(np.float32), "Bb")]
    node = helper.make_node("LSTM", ["X", "W", "R", "Bb", "L", "h0", "c0"], ["Y", "Yh", "Yc"],
                            hidden_size=H, direction=direction)
    g = helper.make_graph(
        [node], "lstm",
        [helper.make_tensor_value_info("X", F, [T, B, I]),
         helper.make_tensor_value_info("L", TensorProto.INT32, [B]),
         helper.make_tensor_value_info("h0", F, [D, B, H]),
         helper.make_tensor_value_info("c0", F, [D, B, H])],
        [helper.make_tensor_value_info("Y", F, [T, D, B, H]),
         helper.make_tensor_value_info("Yh", F, [D, B, H]),
         helper.make_tensor_value_info("Yc", F, [D, B, H])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    feeds = {"X": r.normal(size=(T, B, I)).astype(np.float32),
             "L": r.integers(1, T + 1, size=B).astype(np.int32),
             "h0": (r.normal(size=(D, B, H)) * 0.5).astype(np.float32),
             "c0": (r.normal(size=(D, B, H)) * 0.5).astype(np.float32)}
    return m, feeds


def dequantized_float_model(qm):
    """The float LSTM onnxruntime would run on the dequantized weights."""
    init = {i.name: numpy_helper.to_array(i) for i in qm.graph.initializer}
    n = next(n for n in qm.graph.node if n.op_type == "DynamicQuantizeLSTM")

    def deq(w, s, z):
        w, s, z = init[w].astype(np.float32), init[s], init[z].astype(np.float32)
        s = s.reshape(s.shape[0], 1, -1)
        z = z.reshape(z.shape[0], 1, -1)
        return ((w - z) * s).transpose(0, 2, 1).astype(np.float32)

    W = deq(n.input[1], n.input[8], n.input[9])
    R = deq(n.input[2], n.input[10], n.input[11])
    fm = onnx.ModelProto()
    fm.CopyFrom(qm)
    g = fm.graph
    keep = [i for i in g.initializer if i.name not in set(n.input[1:3]) | set(n.input[8:12])]
    del g.initializer[:]
    g.initializer.extend(keep + [numpy_helper.from_array(W, "Wf"), numpy_helper.from_array(R, "Rf")])
    for k, node in enumerate(g.node):
        if node.op_type == "DynamicQuantizeLSTM":
            new = helper.make_node("LSTM", ["X" if i == 0 else v for i, v in
                                            enumerate([node.input[0], "Wf", "Rf"] + list(node.input[3:8]))],
                                   list(node.output), **{a.name: helper.get_attribute_value(a)
                                                         for a in node.attribute})
            g.node.remove(node)
            g.node.insert(k, new)
            break
    return fm


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def kiln_run(kiln, model_path, feeds, mode, work):
    ind = os.path.join(work, "in")
    os.makedirs(ind, exist_ok=True)
    args = []
    for k, v in feeds.items():
        p = os.path.join(ind, k + ".npy")
        np.save(p, v)
        args += ["--input", "%s=%s" % (k, p)]
    out = os.path.join(work, "out_" + mode)
    target = model_path
    if mode == "engine":
        target = os.path.join(work, "model.kiln")
        p = subprocess.run([kiln, "build", model_path, "-o", target], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=600)
        if p.returncode:
            raise RuntimeError(p.stderr[-800:])
    cmd = [kiln, "run", target, "--output-dir", out] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode:
        raise RuntimeError(p.stderr[-800:])
    return [numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_%d.pb" % i)))
            for i in range(3)]


def main():
    kiln = sys.argv[1]
    passed = failed = 0
    configs = [("forward", 5, 3, 7, 6, False), ("reverse", 4, 1, 5, 9, True),
               ("bidirectional", 6, 2, 4, 5, False), ("bidirectional", 3, 4, 8, 3, True)]
    with tempfile.TemporaryDirectory() as root:
        for ci, (direction, T, B, I, H, per_ch) in enumerate(configs):
            name = "%s_T%d_B%d_I%d_H%d_%s" % (direction, T, B, I, H, "perch" if per_ch else "pert")
            m, feeds = lstm_model(direction, T, B, I, H, ci)
            fp, qp = os.path.join(root, name + "_f.onnx"), os.path.join(root, name + "_q.onnx")
            onnx.save(m, fp)
            quantize_dynamic(fp, qp, weight_type=QuantType.QInt8, per_channel=per_ch,
                             op_types_to_quantize=["LSTM"])
            qm = onnx.load(qp)
            if not any(n.op_type == "DynamicQuantizeLSTM" for n in qm.graph.node):
                print("FAIL %s: quantize_dynamic wrote no DynamicQuantizeLSTM" % name)
                failed += 1
                continue
            want_q = ort.InferenceSession(qp, providers=["CPUExecutionProvider"]).run(None, feeds)
            dm = dequantized_float_model(qm)
            want_f = ort.InferenceSession(dm.SerializeToString(),
                                          providers=["CPUExecutionProvider"]).run(None, feeds)
            for mode in ("reference", "engine"):
                work = os.path.join(root, name, mode)
                try:
                    got = kiln_run(kiln, qp, feeds, mode, work)
                except RuntimeError as e:
                    print("FAIL %s (%s): %s" % (name, mode, e))
                    failed += 2
                    continue
                ef = max(rel_l2(g, w) for g, w in zip(got, want_f))
                if os.environ.get("VERBOSE"):
                    print("%s %s: %.2e %.2e" % (name, mode, ef,
                          max(rel_l2(g, w) for g, w in zip(got, want_q))))
                eq = max(rel_l2(g, w) for g, w in zip(got, want_q))
                for what, err, lim in (("dequantized float", ef, 1e-5), ("quantized", eq, 3e-2)):
                    if err < lim:
                        passed += 1
                    else:
                        failed += 1
                        print("FAIL %s (%s) vs onnxruntime %s: rel-L2 %.2e >= %.0e"
                              % (name, mode, what, err, lim))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
