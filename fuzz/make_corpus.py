#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpus for the ONNX reader fuzzer.

Hand-made models cover reader features (every attribute type, typed-field and
raw initializers, external data references, symbolic dims, If/Loop bodies
that capture outer values, folding chains); a deterministic, diverse sample
of the ONNX backend node-test models adds breadth.
Usage: python3 fuzz/make_corpus.py OUT_DIR [--node-sample N]
"""
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NODE_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
F, I64, I32, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL


def model(nodes, inputs, outputs, inits=(), opset=17, vinfo=(), ir=8, name="g", **kw):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits), value_info=list(vinfo))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir,
                             producer_name="kiln-fuzz-seed", **kw)


def vi(name, et, shape):
    return helper.make_tensor_value_info(name, et, shape)


def feature_models():
    out = {}
    rng = np.random.default_rng(0)

    # Conv + Relu + Gemm chain with raw-data initializers and symbolic batch.
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    gw = numpy_helper.from_array(rng.standard_normal((4 * 4 * 4, 5)).astype(np.float32), "gw")
    shp = numpy_helper.from_array(np.array([0, -1], np.int64), "shp")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1],
                         strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu0"),
        helper.make_node("Reshape", ["r", "shp"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "gw"], ["y"], name="fc", alpha=0.5, transB=0),
    ]
    out["conv_gemm"] = model(nodes, [vi("x", F, ["N", 3, 8, 8])], [vi("y", F, ["N", 5])],
                             [w, b, gw, shp])

    # Typed-field initializers of many dtypes (no raw_data).
    inits = [
        helper.make_tensor("tf32", F, [3], [1.0, 2.5, -3.0]),
        helper.make_tensor("ti64", I64, [2, 2], [1, -2, 3, 1 << 40]),
        helper.make_tensor("ti32", I32, [2], [7, -7]),
        helper.make_tensor("tf64", TensorProto.DOUBLE, [2], [0.25, 1e300]),
        helper.make_tensor("tu64", TensorProto.UINT64, [1], [2**63 + 5]),
        helper.make_tensor("tu32", TensorProto.UINT32, [1], [4000000000]),
        helper.make_tensor("tf16", TensorProto.FLOAT16, [2], np.array([1.5, -2], np.float16)),
        helper.make_tensor("tbf16", TensorProto.BFLOAT16, [1], [1.0]),
        helper.make_tensor("tb", B, [3], [True, False, True]),
        helper.make_tensor("ti8", TensorProto.INT8, [2], [-128, 127]),
        helper.make_tensor("tu8", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("ti16", TensorProto.INT16, [1], [-300]),
        helper.make_tensor("ti4", TensorProto.INT4, [3], [1, -2, 7]),
        helper.make_tensor("tu4", TensorProto.UINT4, [2], [15, 3]),
        helper.make_tensor("tscalar", F, [], [42.0]),
        helper.make_tensor("tempty", F, [0, 3], []),
    ]
    nodes = [helper.make_node("Identity", [t.name], ["o_" + t.name], name="id_" + t.name)
             for t in inits]
    outs = [vi("o_" + t.name, t.data_type, list(t.dims)) for t in inits]
    out["typed_inits"] = model(nodes, [], outs, inits, opset=21, ir=10)

    # Same with raw_data for a subset, including an odd-aligned raw tensor.
    inits = [numpy_helper.from_array(np.arange(5, dtype=np.int16), "r16"),
             numpy_helper.from_array(np.arange(3, dtype=np.float64), "r64"),
             numpy_helper.from_array(np.array([True, False]), "rb")]
    nodes = [helper.make_node("Identity", [t.name], ["o" + t.name]) for t in inits]
    outs = [vi("o" + t.name, t.data_type, list(t.dims)) for t in inits]
    out["raw_inits"] = model(nodes, [], outs, inits)

    # Every attribute type on one (unknown-op-free) node: a custom-named
    # attribute set on Identity is ignored by schemas but parsed by the reader.
    sub = helper.make_graph([helper.make_node("Identity", ["sx"], ["sy"])], "sub",
                            [vi("sx", F, [1])], [vi("sy", F, [1])])
    attrs = [
        helper.make_attribute("af", 1.5),
        helper.make_attribute("ai", -7),
        helper.make_attribute("as", b"hello"),
        helper.make_attribute("at", helper.make_tensor("t", F, [2], [1, 2])),
        helper.make_attribute("ag", sub),
        helper.make_attribute("afs", [1.0, 2.0, 3.0]),
        helper.make_attribute("ais", [1, -2, 3]),
        helper.make_attribute("ass", [b"a", b"bc"]),
        helper.make_attribute("ats", [helper.make_tensor("t1", I64, [1], [3])]),
        helper.make_attribute("ags", [sub, sub]),
        helper.make_attribute("aempty_ints", [], attr_type=onnx.AttributeProto.INTS),
        helper.make_attribute("atp", helper.make_tensor_type_proto(F, [2, "k"])),
    ]
    n = helper.make_node("Identity", ["x"], ["y"], name="all_attrs")
    n.attribute.extend(attrs)
    out["all_attr_types"] = model([n], [vi("x", F, [2])], [vi("y", F, [2])])

    # Constant nodes with each value_* attribute, folded at load time.
    cs = [
        helper.make_node("Constant", [], ["c_t"], value=helper.make_tensor("v", F, [2], [1, 2])),
        helper.make_node("Constant", [], ["c_f"], value_float=2.0),
        helper.make_node("Constant", [], ["c_fs"], value_floats=[1.0, 2.0]),
        helper.make_node("Constant", [], ["c_i"], value_int=3),
        helper.make_node("Constant", [], ["c_is"], value_ints=[4, 5]),
        helper.make_node("Add", ["c_t", "c_fs"], ["s"], name="add_consts"),
        helper.make_node("Mul", ["s", "c_f"], ["y"]),
    ]
    out["constants"] = model(cs, [], [vi("y", F, [2]), vi("c_i", I64, []), vi("c_is", I64, [2])])

    # Shape arithmetic chain with symbolic dims: Shape/Gather/Concat/Reshape,
    # ConstantOfShape and Expand.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
        helper.make_node("Concat", ["d0", "m1"], ["ns"], axis=0),
        helper.make_node("Reshape", ["x", "ns"], ["y"]),
        helper.make_node("ConstantOfShape", ["small"], ["z"],
                         value=helper.make_tensor("v", F, [1], [3.0])),
        helper.make_node("Expand", ["z", "eshape"], ["e"]),
    ]
    inits = [helper.make_tensor("i0", I64, [1], [0]), helper.make_tensor("m1", I64, [1], [-1]),
             helper.make_tensor("small", I64, [2], [2, 3]),
             helper.make_tensor("eshape", I64, [3], [4, 2, 3])]
    out["shape_chain"] = model(nodes, [vi("x", F, ["batch", "seq", 4])],
                               [vi("y", F, None), vi("e", F, [4, 2, 3])], inits,
                               vinfo=[vi("s", I64, [3])])

    # If whose branches capture outer values (an input and an initializer).
    k = numpy_helper.from_array(np.array([2.0], np.float32), "k")
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["t_out"])], "then", [],
                               [vi("t_out", F, [3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "k"], ["e_out"])], "else", [],
                               [vi("e_out", F, [3])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="if0", then_branch=then_g,
                              else_branch=else_g)]
    out["if_capture"] = model(nodes, [vi("cond", B, []), vi("x", F, [3])], [vi("y", F, [3])], [k],
                              opset=13)

    # Loop with a carried value, a scan output and a captured outer tensor;
    # a nested If inside the body captures from two levels up.
    inner_then = helper.make_graph([helper.make_node("Add", ["acc", "step"], ["it"])], "ith", [],
                                   [vi("it", F, [2])])
    inner_else = helper.make_graph([helper.make_node("Identity", ["acc"], ["ie"])], "iel", [],
                                   [vi("ie", F, [2])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("If", ["c_in"], ["acc2"], then_branch=inner_then,
                          else_branch=inner_else),
         helper.make_node("Identity", ["acc2"], ["scan"])],
        "body",
        [vi("i", I64, []), vi("c_in", B, []), vi("acc", F, [2])],
        [vi("c_out", B, []), vi("acc2", F, [2]), vi("scan", F, [2])])
    nodes = [helper.make_node("Loop", ["M", "cond", "a0"], ["af", "scans"], name="loop0",
                              body=body)]
    inits = [helper.make_tensor("M", I64, [], [3]), helper.make_tensor("cond", B, [], [True]),
             helper.make_tensor("step", F, [2], [1, 1])]
    out["loop_capture"] = model(nodes, [vi("a0", F, [2])],
                                [vi("af", F, [2]), vi("scans", F, [None, 2])], inits, opset=16)

    # External data references (loaded from memory they are refused: no
    # folder; from a file they resolve next to it).
    t = TensorProto(name="ext", data_type=F, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    for kk, vv in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = kk, vv
    out["external_ref"] = model([helper.make_node("Identity", ["ext"], ["y"])], [],
                                [vi("y", F, [4])], [t])
    # The fuzz body resolves external data in a scratch folder holding
    # weights.bin (4096 B), w.bin (64 B), sub/w.bin (256 B) and a FIFO.
    for nm, loc, off, dims in (("external_sub", "sub/w.bin", 16, [4, 4]),
                               ("external_fifo", "fifo.bin", None, [2]),
                               ("external_dir", "sub", None, [2])):
        te = TensorProto(name="ext", data_type=F, dims=dims)
        te.data_location = TensorProto.EXTERNAL
        ent = [("location", loc)] + ([("offset", str(off))] if off is not None else [])
        for kk, vv in ent:
            e = te.external_data.add()
            e.key, e.value = kk, vv
        out[nm] = model([helper.make_node("Relu", ["ext"], ["y"])], [], [vi("y", F, dims)], [te])
    t2 = TensorProto(name="ext", data_type=F, dims=[2, 2])
    t2.data_location = TensorProto.EXTERNAL
    e = t2.external_data.add()
    e.key, e.value = "location", "../outside.bin"
    out["external_escape"] = model([helper.make_node("Identity", ["ext"], ["y"])], [],
                                   [vi("y", F, [2, 2])], [t2])

    # Old ir_version/opset, opset imports for other domains, metadata, functions.
    out["old_opset"] = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [1, 2])],
                             [vi("y", F, [1, 2])], opset=7, ir=3)
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, ["a", "b"])],
              [vi("y", F, ["a", "b"])])
    m.opset_import.extend([helper.make_opsetid("com.microsoft", 1),
                           helper.make_opsetid("ai.onnx.ml", 3)])
    helper.set_model_props(m, {"author": "kiln", "license": "none"})
    m.doc_string = "doc"
    m.graph.doc_string = "graph doc"
    fn = helper.make_function("local", "f", ["a"], ["b"],
                              [helper.make_node("Neg", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    m.functions.extend([fn])
    out["metadata_functions"] = m

    # Non-tensor graph input (sequence) and an unknown op and a custom domain.
    seq = helper.make_tensor_sequence_value_info("seq", F, [2])
    out["sequence_input"] = model([helper.make_node("SequenceLength", ["seq"], ["n"])], [seq],
                                  [vi("n", I64, [])])
    out["unknown_op"] = model([helper.make_node("FrobnicateX", ["x"], ["y"], name="weird")],
                              [vi("x", F, [2])], [vi("y", F, [2])])
    out["custom_domain"] = model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")],
                                 [vi("x", F, [2])], [vi("y", F, [2])])

    # Multi-output op with an omitted optional output and an empty input name.
    nodes = [helper.make_node("Split", ["x", ""], ["a", "", "c"], axis=0, num_outputs=3),
             helper.make_node("Clip", ["a", "", "mx"], ["ca"])]
    out["optional_io"] = model(nodes, [vi("x", F, [6])], [vi("ca", F, [2]), vi("c", F, [2])],
                               [helper.make_tensor("mx", F, [], [0.5])], opset=18)

    # Nodes listed out of topological order; dims with neither value nor param.
    nodes = [helper.make_node("Relu", ["t"], ["y"]), helper.make_node("Neg", ["x"], ["t"])]
    g = helper.make_graph(nodes, "g", [vi("x", F, [2, None])], [vi("y", F, None)])
    out["unsorted"] = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    # MatMul/Softmax/LayerNorm/Transpose/ReduceMean: a small attention block.
    d = 8
    wq = numpy_helper.from_array(rng.standard_normal((d, d)).astype(np.float32), "wq")
    sc = helper.make_tensor("sc", F, [], [0.35])
    ax = helper.make_tensor("ax", I64, [1], [-1])
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"]),
             helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "qt"], ["s"]),
             helper.make_node("Mul", ["s", "sc"], ["ss"]),
             helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "x"], ["o"]),
             helper.make_node("ReduceMean", ["o", "ax"], ["m"], keepdims=1),
             helper.make_node("Sub", ["o", "m"], ["y"])]
    out["attention"] = model(nodes, [vi("x", F, ["B", "T", d])], [vi("y", F, ["B", "T", d])],
                             [wq, sc, ax], opset=18)

    # Cast chain and a comparison, bool outputs.
    nodes = [helper.make_node("Cast", ["x"], ["xi"], to=I64),
             helper.make_node("Cast", ["xi"], ["xh"], to=TensorProto.FLOAT16),
             helper.make_node("Greater", ["x", "z"], ["g"]),
             helper.make_node("Where", ["g", "x", "z"], ["y"])]
    out["cast_where"] = model(nodes, [vi("x", F, [3])], [vi("y", F, [3]), vi("xh", 10, [3])],
                              [helper.make_tensor("z", F, [1], [0])], opset=13)
    return out


def node_sample(n):
    cases = sorted(d for d in os.listdir(NODE_DIR) if os.path.isfile(os.path.join(NODE_DIR, d, "model.onnx")))
    # Group by operator-ish prefix, take the smallest model of each group,
    # then fill round-robin; deterministic.
    groups = {}
    for c in cases:
        key = c[len("test_"):].split("_")[0]
        groups.setdefault(key, []).append(c)
    for k in groups:
        groups[k].sort(key=lambda c: (os.path.getsize(os.path.join(NODE_DIR, c, "model.onnx")), c))
    picked, rnd = [], 0
    while len(picked) < n:
        added = False
        for k in sorted(groups):
            if rnd < len(groups[k]) and len(picked) < n:
                c = groups[k][rnd]
                if os.path.getsize(os.path.join(NODE_DIR, c, "model.onnx")) <= 16384:
                    picked.append(c)
                added = True
        if not added:
            break
        rnd += 1
    return picked


def main():
    outdir = sys.argv[1]
    n = 200
    if "--node-sample" in sys.argv:
        n = int(sys.argv[sys.argv.index("--node-sample") + 1])
    os.makedirs(outdir, exist_ok=True)
    for name, m in feature_models().items():
        with open(os.path.join(outdir, "seed_" + name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())
    for c in node_sample(n):
        with open(os.path.join(NODE_DIR, c, "model.onnx"), "rb") as f:
            data = f.read()
        with open(os.path.join(outdir, "node_" + c[len("test_"):] + ".onnx"), "wb") as f:
            f.write(data)
    print("wrote", len(os.listdir(outdir)), "files to", outdir)


if __name__ == "__main__":
    main()
