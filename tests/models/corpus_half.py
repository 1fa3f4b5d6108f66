#!/usr/bin/env python3
"""corpus_half.py: the yardstick for the GPU corpus suite (issue 12), on the
CPU without Kiln: how far a corpus model moves from onnxruntime's FP32
outputs when every weight and every activation is stored in FP16 (or BF16)
and the arithmetic stays FP32, as an engine that keeps half tensors between
layers and accumulates in float does. Emulated in onnxruntime: float
initializers rounded to half, a Cast to half and back after every float
output of the main graph (subgraphs of If/Loop are left alone). A real
engine can be better (fused layers skip a rounding) or worse (half
arithmetic inside a kernel), so this is a reference point, not a bound.

usage: corpus_half.py [--cache DIR] [--only a,b] [--bf16]
Reads the built cases under DIR/cases (default: the corpus cache; a packed
.devrun/corpus works too); prints the worst rel-L2 per output over the
data sets and the top-1 misses/ties of corpus_cases.TOP1's outputs.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_corpus  # noqa: E402
import check_models  # noqa: E402
import corpus_cases as cc  # noqa: E402
from export_models import rel_l2  # noqa: E402


def to_half(a, bf16):
    """float32 array rounded to FP16 or BF16 (nearest even), back in float32"""
    a = np.asarray(a, np.float32)
    if not bf16:
        return a.astype(np.float16).astype(np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    r = u.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, r).astype(np.float32)


def emulate(model, bf16):
    """the model with half storage between nodes (see the module doc)"""
    g = model.graph
    # BatchNormalization's parameters stay float: an engine folds them into
    # the convolution's weights first (a running variance can pass 65504)
    bn = {i for n in g.node if n.op_type == "BatchNormalization" for i in n.input[1:5]}
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in bn:
            init.CopyFrom(numpy_helper.from_array(to_half(numpy_helper.to_array(init), bf16),
                                                  init.name))
    inferred = onnx.shape_inference.infer_shapes(model)
    floats = {v.name for v in list(inferred.graph.value_info) + list(inferred.graph.output)
              if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    half = TensorProto.FLOAT16
    if bf16:
        g.initializer.append(numpy_helper.from_array(np.array(65537, np.float32), "__split"))
    nodes = []
    renames = {}
    for n in g.node:
        n.input[:] = [renames.get(i, i) for i in n.input]
        nodes.append(n)
        if n.op_type in ("Shape", "Size") or (n.op_type == "Constant" and
                                               any(o in bn for o in n.output)):
            continue
        for k, o in enumerate(n.output):
            if o not in floats:
                continue
            raw = o + "__f32"
            n.output[k] = raw
            if bf16:  # Dekker's split keeps 8 significant bits (Cast to
                # bfloat16 needs opset 13; paddle2onnx wrote older ones)
                nodes.append(helper.make_node("Mul", [raw, "__split"], [o + "__t"]))
                nodes.append(helper.make_node("Sub", [o + "__t", raw], [o + "__d"]))
                nodes.append(helper.make_node("Sub", [o + "__t", o + "__d"], [o]))
            else:
                nodes.append(helper.make_node("Cast", [raw], [o + "__h"], to=half))
                nodes.append(helper.make_node("Cast", [o + "__h"], [o], to=TensorProto.FLOAT))
    del g.node[:]
    g.node.extend(nodes)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=check_corpus.default_cache())
    ap.add_argument("--only", default="")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    from export_models import ort_session
    cdir = os.path.join(a.cache, "cases")
    names = [s for s in a.only.split(",") if s] or sorted(
        n for n in os.listdir(cdir) if os.path.isfile(os.path.join(cdir, n, "meta.json")))
    tmp = os.path.join(a.cache, "_half")
    os.makedirs(tmp, exist_ok=True)
    for name in names:
        d = os.path.join(cdir, name)
        path = os.path.join(tmp, name + ".onnx")
        try:
            onnx.save(emulate(onnx.load(os.path.join(d, "model.onnx")), a.bf16), path)
            sess = ort_session(path, optimize=False)
        except Exception as e:
            print("%-24s cannot emulate: %s" % (name, str(e).splitlines()[0][:150]))
            continue
        finally:
            if os.path.exists(path):
                os.remove(path)
        worst, miss, ties, rows = [], 0, 0, 0
        for sd in check_models.data_sets(d):
            feeds, k = {}, 0
            while os.path.isfile(os.path.join(d, sd, "input_%d.pb" % k)):
                n, arr = check_models.load_pb(os.path.join(d, sd, "input_%d.pb" % k))
                feeds[n] = to_half(arr, a.bf16) if arr.dtype == np.float32 else arr
                k += 1
            outs = sess.run(None, feeds)
            for j, got in enumerate(outs):
                _, want = check_models.load_pb(os.path.join(d, sd, "output_%d.pb" % j))
                r = rel_l2(got, want) if want.dtype.kind == "f" else 0.0
                worst = worst + [r] if len(worst) <= j else worst
                worst[j] = max(worst[j], r)
                if j in cc.TOP1.get(name, []):
                    m, t = check_models.top1_misses(np.asarray(got), want)
                    miss, ties, rows = miss + m, ties + t, rows + want.size // want.shape[-1]
        t1 = " top-1 misses %d, ties %d of %d rows" % (miss, ties, rows) if rows else ""
        print("%-24s %s rel-L2 %s%s" % (name, "bf16" if a.bf16 else "fp16",
                                         ",".join("%.1e" % r for r in worst), t1), flush=True)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
