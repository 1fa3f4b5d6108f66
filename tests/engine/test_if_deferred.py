#!/usr/bin/env python3
"""test_if_deferred.py: an If branch that cannot be typed at the shapes an
engine is built for (silero_vad's 8 kHz branch at a 16 kHz chunk) must not
stop the build: onnxruntime never looks at an untaken branch. The branch is
deferred to run time (ir_graph.infer_failed): taking the other branch gives
the right answer in reference and engine mode, taking the broken one fails
with the branch's own message, and a model whose branches both fail is
refused at build time. Nested Ifs (the broken branch inside a taken one) and
an If whose outputs feed later nodes are covered.

usage: test_if_deferred.py build/bin/kiln   (prints "N passed, M failed")
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def squeeze_branch(name, out):
    """Squeeze axis 0 then Unsqueeze it back: typable only when dim 0 is 1."""
    ax = helper.make_tensor(name + "_ax", TensorProto.INT64, [1], [0])
    return helper.make_graph(
        [helper.make_node("Squeeze", ["x", name + "_ax"], [name + "_s"]),
         helper.make_node("Unsqueeze", [name + "_s", name + "_ax"], [out])],
        name, [], [helper.make_tensor_value_info(out, F, None)], [ax])


def neg_branch(name, out):
    return helper.make_graph([helper.make_node("Neg", ["x"], [out])], name, [],
                             [helper.make_tensor_value_info(out, F, None)])


def model(then_g, else_g, nested=False):
    nodes = [helper.make_node("If", ["c"], ["y0"], then_branch=then_g, else_branch=else_g)]
    if nested:  # the If above sits in the else branch of an outer If
        outer_then = helper.make_graph([helper.make_node("Abs", ["x"], ["ya"])], "ot", [],
                                       [helper.make_tensor_value_info("ya", F, None)])
        outer_else = helper.make_graph(nodes, "oe", [],
                                       [helper.make_tensor_value_info("y0", F, None)])
        nodes = [helper.make_node("Not", ["c"], ["nc"]),
                 helper.make_node("Not", ["nc"], ["c2"]),
                 helper.make_node("If", ["d"], ["y0"], then_branch=outer_then,
                                  else_branch=outer_else)]
    nodes.append(helper.make_node("Mul", ["y0", "x"], ["y"]))  # uses the If's shape
    ins = [helper.make_tensor_value_info("x", F, ["n", 3]),
           helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
    if nested:
        ins.append(helper.make_tensor_value_info("d", TensorProto.BOOL, []))
    g = helper.make_graph(nodes, "if_deferred", ins,
                          [helper.make_tensor_value_info("y", F, ["n", 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def write_case(root, name, m, feeds, y):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(m, os.path.join(d, "model.onnx"))
    for i, a in enumerate(list(feeds) + [("y", y)]):
        kind = "output_0" if i == len(feeds) else "input_%d" % i
        with open(os.path.join(d, "test_data_set_0", kind + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(a[1], a[0]).SerializeToString())
    return d


def check(kiln, d, mode):
    cmd = [kiln, "check"] + (["--reference"] if mode == "reference" else []) + [d]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", timeout=600)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))), "")
    return p.returncode, line


def main():
    kiln = sys.argv[1]
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5  # dim 0 is 2: Squeeze fails
    t, f = np.array(True), np.array(False)
    zero = np.zeros_like(x)
    # (name, model, feeds, expected y or None, substring of the FAIL line)
    cases = [
        ("else_taken", model(squeeze_branch("t", "y0"), neg_branch("e", "y0")),
         [("x", x), ("c", f)], -x * x, None),
        ("then_taken", model(neg_branch("t", "y0"), squeeze_branch("e", "y0")),
         [("x", x), ("c", t)], -x * x, None),
        ("broken_taken", model(squeeze_branch("t", "y0"), neg_branch("e", "y0")),
         [("x", x), ("c", t)], zero, "squeeze"),
        ("both_broken", model(squeeze_branch("t", "y0"), squeeze_branch("e", "y0")),
         [("x", x), ("c", f)], zero, "squeeze"),
        ("nested_else_taken", model(squeeze_branch("t", "y0"), neg_branch("e", "y0"), True),
         [("x", x), ("c", f), ("d", f)], -x * x, None),
        ("nested_outer_then", model(squeeze_branch("t", "y0"), neg_branch("e", "y0"), True),
         [("x", x), ("c", t), ("d", t)], np.abs(x) * x, None),
        ("nested_broken_taken", model(squeeze_branch("t", "y0"), neg_branch("e", "y0"), True),
         [("x", x), ("c", t), ("d", f)], zero, "squeeze"),
    ]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as root:
        for name, m, feeds, y, want in cases:
            d = write_case(root, name, m, feeds, y)
            for mode in ("reference", "engine"):
                rc, line = check(kiln, d, mode)
                if want is None:
                    ok = rc == 0 and line.startswith("PASS")
                else:
                    ok = rc == 1 and line.startswith("FAIL") and want in line.lower()
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print("FAIL %s (%s): exit %d: %s" % (name, mode, rc, line))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
