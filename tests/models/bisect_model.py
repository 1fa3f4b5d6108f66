#!/usr/bin/env python3
"""Finds the node where Kiln and onnxruntime part ways on a model.

Makes a copy of the model whose graph outputs are every node output, runs it
through `kiln run` (reference interpreter) and onnxruntime on the same
inputs, and walks the nodes in graph order: a node is *guilty* when all its
inputs agree (rel-L2 <= --tol) but one of its outputs does not. Prints the
first few guilty nodes with their op, attributes, input shapes and the
distances, and can save the first one as a standalone case
(`--save-repro DIR`: one-node model + inputs + onnxruntime outputs in the
backend-test layout, so `kiln check DIR` reproduces it).

usage: bisect_model.py KILN MODEL.onnx CASE_DIR/test_data_set_0
                       [--tol 1e-4] [--show N] [--save-repro DIR]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_models import ort_session, rel_l2, write_pb  # noqa: E402


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def dist(a, b):
    if a.shape != b.shape:
        return float("inf")
    if a.dtype == np.bool_:
        return float((a != b).mean())
    return rel_l2(a, b)


def expose_all(model):
    """A copy whose outputs are all node outputs (typed by shape inference
    where possible: onnxruntime wants an element type on graph outputs)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        types = {v.name: v.type for v in inferred.graph.value_info}
    except Exception:  # noqa: BLE001 - inference is only a help here
        types = {}
    existing = {o.name for o in m.graph.output}
    names = []
    for n in m.graph.node:
        for o in n.output:
            if o and o not in existing and o in types and \
                    types[o].tensor_type.elem_type != 0:
                vi = helper.make_value_info(o, types[o])
                m.graph.output.append(vi)
                existing.add(o)
                names.append(o)
    del m.graph.value_info[:]
    return m, [o.name for o in m.graph.output]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("model")
    ap.add_argument("data_set")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--save-repro", default="")
    args = ap.parse_args()

    model = onnx.load(args.model)
    feeds, in_args = {}, []
    k = 0
    while os.path.isfile(os.path.join(args.data_set, "input_%d.pb" % k)):
        p = os.path.join(args.data_set, "input_%d.pb" % k)
        n, a = load_pb(p)
        feeds[n] = a
        in_args += ["--input", "%s=%s" % (n, os.path.abspath(p))]
        k += 1

    tmp = tempfile.mkdtemp(prefix="kiln-bisect-")
    try:
        big, names = expose_all(model)
        path = os.path.join(tmp, "all.onnx")
        onnx.save(big, path, save_as_external_data=big.ByteSize() > 1900 << 20,
                  location="all.onnx.data")
        shutil.rmtree(tmp + "/none", ignore_errors=True)
        ort_vals = dict(zip(names, ort_session(path, optimize=False).run(None, feeds)))
        out = os.path.join(tmp, "out")
        p = subprocess.run([args.kiln, "run", path] + in_args + ["--output-dir", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode:
            sys.exit("kiln run failed: %s" % p.stderr.strip())
        kiln_vals = {}
        for i, n in enumerate(names):
            _, kiln_vals[n] = load_pb(os.path.join(out, "output_%d.pb" % i))

        known = dict(feeds)
        for init in model.graph.initializer:
            known[init.name] = None  # constants agree by construction
        d_of = {n: 0.0 for n in known}
        guilty = []
        for idx, node in enumerate(model.graph.node):
            d_in = max([d_of.get(i, 0.0) for i in node.input if i] or [0.0])
            d_out = [dist(kiln_vals[o], ort_vals[o]) if o in ort_vals else 0.0
                     for o in node.output if o]
            for o, d in zip([o for o in node.output if o], d_out):
                d_of[o] = d
            if d_in <= args.tol and any(not d <= args.tol for d in d_out):
                guilty.append((idx, node, d_out))
        print("%d nodes, %d exposed values, %d guilty node(s)" % (
            len(model.graph.node), len(names), len(guilty)))
        for idx, node, d_out in guilty[:args.show]:
            shapes = []
            for i in node.input:
                v = ort_vals.get(i, feeds.get(i))
                shapes.append("%s%s" % (i, list(v.shape) if v is not None else "(const)"))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            attrs = {k2: (v if not isinstance(v, bytes) else v.decode()) for k2, v in
                     attrs.items() if not isinstance(v, onnx.TensorProto)}
            print("node %d %s '%s': inputs %s attrs %s; output rel-L2 %s" % (
                idx, node.op_type, node.name, ", ".join(shapes), attrs,
                ", ".join("%.3g" % d for d in d_out)))
        # A node can look guilty only because a small input difference got
        # amplified (a near-tie in TopK, a clip edge). Run each suspect alone
        # on onnxruntime's inputs: only a node that differs then is a bug.
        bugs = []
        for idx, node, _ in guilty[:args.show]:
            rdir = os.path.join(tmp, "node%d" % idx)
            try:
                save_repro(model, node, feeds, ort_vals, rdir, quiet=True)
                ok, rels = run_isolated(args.kiln, rdir, args.tol)
            except Exception as e:  # noqa: BLE001
                ok, rels = None, str(e)[:200]
            verdict = {True: "agrees when isolated (amplified upstream difference)",
                       False: "DIFFERS when isolated: a kernel bug", None: "not isolated"}[ok]
            print("  node %d %s: %s %s" % (idx, node.op_type, verdict, rels))
            if ok is False:
                bugs.append(node)
        if args.save_repro and bugs:
            save_repro(model, bugs[0], feeds, ort_vals, args.save_repro)
        return 1 if bugs else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_isolated(kiln, rdir, tol):
    sd = os.path.join(rdir, "test_data_set_0")
    ins = []
    k = 0
    while os.path.isfile(os.path.join(sd, "input_%d.pb" % k)):
        n, _ = load_pb(os.path.join(sd, "input_%d.pb" % k))
        ins += ["--input", "%s=%s" % (n, os.path.join(sd, "input_%d.pb" % k))]
        k += 1
    out = os.path.join(rdir, "kiln_out")
    p = subprocess.run([kiln, "run", os.path.join(rdir, "model.onnx")] + ins +
                       ["--output-dir", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode:
        return False, "kiln run failed: " + p.stderr.strip()[-200:]
    rels = []
    k = 0
    while os.path.isfile(os.path.join(sd, "output_%d.pb" % k)):
        _, want = load_pb(os.path.join(sd, "output_%d.pb" % k))
        _, got = load_pb(os.path.join(out, "output_%d.pb" % k))
        rels.append(dist(got, want))
        k += 1
    return all(r <= tol for r in rels), ["%.3g" % r for r in rels]


def outer_names(g, acc):
    """Names a (sub)graph reads but does not define: captures from outside."""
    defined = {i.name for i in g.input} | {i.name for i in g.initializer}
    for n in g.node:
        for i in n.input:
            if i and i not in defined:
                acc.append(i)
        for a in n.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for sg in subs:
                inner = []
                outer_names(sg, inner)
                acc.extend(x for x in inner if x not in defined)
        defined.update(o for o in n.output if o)
    return acc


def save_repro(model, node, feeds, vals, out_dir, quiet=False):
    """One-node model: the guilty node with its non-constant inputs (and the
    outer values its subgraphs capture) as graph inputs, holding onnxruntime's
    values, and constants as initializers."""
    inits = {i.name: i for i in model.graph.initializer}
    g_in, g_init, data = [], [], []
    wanted = list(node.input)
    for a in node.attribute:
        subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for sg in subs:
            wanted += outer_names(sg, [])
    seen = set()
    for i in wanted:
        if not i or i in seen:
            continue
        seen.add(i)
        if i in inits:
            g_init.append(inits[i])
            continue
        a = vals[i] if i in vals else feeds[i]
        g_in.append(helper.make_tensor_value_info(
            i, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)))
        data.append((i, a))
    g_out = [helper.make_tensor_value_info(
        o, helper.np_dtype_to_tensor_dtype(vals[o].dtype), None) for o in node.output if o]
    n2 = onnx.NodeProto()
    n2.CopyFrom(node)
    g = helper.make_graph([n2], "repro", g_in, g_out, g_init)
    m = helper.make_model(g, opset_imports=model.opset_import, ir_version=model.ir_version)
    os.makedirs(os.path.join(out_dir, "test_data_set_0"), exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    onnx.save(m, path)
    outs = ort_session(path, optimize=False).run(None, dict(data))
    for k, (n, a) in enumerate(data):
        write_pb(os.path.join(out_dir, "test_data_set_0", "input_%d.pb" % k), a, n)
    for k, (o, a) in enumerate(zip([o for o in node.output if o], outs)):
        write_pb(os.path.join(out_dir, "test_data_set_0", "output_%d.pb" % k),
                 np.asarray(a), o)
    if not quiet:
        print("saved %s" % out_dir)


if __name__ == "__main__":
    sys.exit(main())
