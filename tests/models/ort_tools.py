"""Models rewritten by onnxruntime's own tools (issue 10): the exported
resnet50 / bert_base / gpt2_small cases quantized with
onnxruntime.quantization (dynamic; static in QOperator and QDQ formats,
calibrated on the case's own test inputs) and optimized with
onnxruntime.transformers.optimizer. Each derived case is written like an
exported one (model.onnx, test_data_set_*, meta.json) with onnxruntime's
outputs on the derived model (graph optimizations off, one thread).

Quantized cases carry a looser tolerance in meta.json ("tol": 5e-2, or
twice onnxruntime's own optimized-vs-unoptimized distance when that is
larger, as for resnet50 in QDQ format, 5.1e-2): both sides
compute the integer products exactly, but requantizing an int32
accumulator to 8 bits rounds halfway cases differently (onnxruntime uses
fixed-point multipliers, Kiln float), and a one-unit difference in one
activation moves the float outputs downstream by about one quantization
step.
"""
import json
import os
import shutil

import numpy as np

# variant -> (what, rel-L2 tolerance)
VARIANTS = {
    "qdyn": ("quantize_dynamic (QOperator: DynamicQuantizeLinear/MatMulInteger/ConvInteger)", 1e-1),
    "qop": ("quantize_static, QOperator format (QLinear* ops, com.microsoft QLinearAdd/...)", 1e-1),
    "qdq": ("quantize_static, QDQ format", 1e-1),
    "ortopt": ("onnxruntime.transformers.optimizer (Attention, SkipLayerNormalization, ...)", 1e-4),
}

# derived model name -> (base model, variant, transformer model type)
DERIVED = {
    "resnet50_qdyn": ("resnet50", "qdyn", None),
    "resnet50_qop": ("resnet50", "qop", None),
    "resnet50_qdq": ("resnet50", "qdq", None),
    "bert_base_qdyn": ("bert_base", "qdyn", None),
    # (bert_base in QOperator format: onnxruntime 1.32's quantizer writes a
    # QGemm with an int8 bias for the pooler, which onnxruntime then refuses)
    "bert_base_qdq": ("bert_base", "qdq", None),
    "bert_base_ortopt": ("bert_base", "ortopt", "bert"),
    "gpt2_small_qdyn": ("gpt2_small", "qdyn", None),
    "gpt2_small_qop": ("gpt2_small", "qop", None),
    "gpt2_small_qdq": ("gpt2_small", "qdq", None),
    "gpt2_small_ortopt": ("gpt2_small", "ortopt", "gpt2"),
}


def _load_sets(case_dir):
    import onnx
    from onnx import numpy_helper
    sets = []
    k = 0
    while os.path.isdir(os.path.join(case_dir, "test_data_set_%d" % k)):
        sd = os.path.join(case_dir, "test_data_set_%d" % k)
        feeds = {}
        j = 0
        while os.path.isfile(os.path.join(sd, "input_%d.pb" % j)):
            t = onnx.TensorProto()
            with open(os.path.join(sd, "input_%d.pb" % j), "rb") as f:
                t.ParseFromString(f.read())
            feeds[t.name] = numpy_helper.to_array(t)
            j += 1
        sets.append(feeds)
        k += 1
    return sets


class _Reader:
    """Calibration data: the case's own test inputs."""

    def __init__(self, sets):
        self.it = iter(sets)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        pass


def derive(name, base_dir, case_dir, opset, log=print):
    from export_models import ort_session, rel_l2, write_pb  # noqa: F401
    from onnxruntime import quantization as q
    base, variant, mtype = DERIVED[name]
    src = os.path.join(base_dir, "model.onnx")
    os.makedirs(case_dir, exist_ok=True)
    dst = os.path.abspath(os.path.join(case_dir, "model.onnx"))
    sets = _load_sets(base_dir)
    tmp = os.path.abspath(os.path.join(case_dir, "pre.onnx"))
    if variant != "ortopt":
        # the quantizer wants shape-inferred, pre-processed input; onnxruntime's
        # symbolic shape inference gives up on some exports (BERT's mask path).
        # It leaves a temporary file in the current folder: work in case_dir.
        src, cwd = os.path.abspath(src), os.getcwd()
        os.chdir(case_dir)
        try:
            q.quant_pre_process(src, tmp, skip_symbolic_shape=False)
        except Exception:  # noqa: BLE001
            q.quant_pre_process(src, tmp, skip_symbolic_shape=True)
        finally:
            for f in os.listdir("."):
                if f.startswith("sym_shape_infer_temp"):
                    os.remove(f)
            os.chdir(cwd)
    # reduce_range keeps int8 weights to 7 bits: onnxruntime's u8 x s8 kernel
    # saturates 16-bit pair sums on CPUs without VNNI otherwise, and would no
    # longer be a reference
    if variant == "qdyn":
        q.quantize_dynamic(tmp, dst, reduce_range=True)
    elif variant in ("qop", "qdq"):
        fmt = q.QuantFormat.QOperator if variant == "qop" else q.QuantFormat.QDQ
        q.quantize_static(tmp, dst, _Reader(sets), quant_format=fmt, reduce_range=True,
                          per_channel=False)
    else:
        from onnxruntime.transformers import optimizer
        import onnx
        hidden = 768
        m = optimizer.optimize_model(src, model_type=mtype, num_heads=12, hidden_size=hidden,
                                     opt_level=0, use_gpu=False)
        onnx.save(m.model, dst)
    if os.path.exists(tmp):
        os.remove(tmp)
    import onnx
    model = onnx.load(dst)
    ops = sorted({("%s:" % n.domain if n.domain else "") + n.op_type for n in model.graph.node})
    init = {i.name for i in model.graph.initializer}
    graph_in = [i.name for i in model.graph.input if i.name not in init]
    graph_out = [o.name for o in model.graph.output]
    sess = ort_session(dst, optimize=False)
    opt_sess = ort_session(dst, optimize=True)
    with open(os.path.join(base_dir, "meta.json")) as f:
        bmeta = json.load(f)
    meta_sets = []
    for si, feeds in enumerate(sets):
        feeds = {n: feeds[n] for n in graph_in}
        outs = sess.run(None, feeds)
        sd = os.path.join(case_dir, "test_data_set_%d" % si)
        os.makedirs(sd, exist_ok=True)
        for k, n in enumerate(graph_in):
            write_pb(os.path.join(sd, "input_%d.pb" % k), feeds[n], n)
        for k, (n, o) in enumerate(zip(graph_out, outs)):
            write_pb(os.path.join(sd, "output_%d.pb" % k), np.asarray(o), n)
        # how far the rewrite moved onnxruntime's own answer
        with open(os.path.join(base_dir, "test_data_set_%d" % si, "output_0.pb"), "rb") as f:
            t = onnx.TensorProto()
            t.ParseFromString(f.read())
        from onnx import numpy_helper
        meta_sets.append({"inputs": {n: list(feeds[n].shape) for n in graph_in},
                          "ort_vs_float_model_rel_l2": rel_l2(np.asarray(outs[0]),
                                                              numpy_helper.to_array(t)),
                          # onnxruntime against itself (graph optimizations on
                          # vs off): how far two faithful runs of this model land
                          "ort_noise_floor_rel_l2": rel_l2(
                              np.asarray(opt_sess.run(None, feeds)[0]), np.asarray(outs[0]))})
    floor = max(s["ort_noise_floor_rel_l2"] for s in meta_sets)
    meta = {"model": name, "base": base, "variant": variant, "tool": VARIANTS[variant][0],
            "opset": opset, "tol": max(VARIANTS[variant][1], 2 * floor), "ops": ops,
            "dynamic_axes": bmeta.get("dynamic_axes"), "inputs": graph_in,
            "outputs": graph_out, "sets": meta_sets}
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log("derived %-26s %s; ops %s; onnxruntime vs float model %s" % (
        os.path.basename(case_dir), variant, ",".join(o for o in ops if ":" in o) or "ai.onnx only",
        "/".join("%.1e" % s["ort_vs_float_model_rel_l2"] for s in meta_sets)))


def clean(case_dir):
    shutil.rmtree(case_dir, ignore_errors=True)
