#!/usr/bin/env python3
"""run_hostile.py: feeds damaged and malicious ONNX models to the kiln CLI.

Every case is written to a scratch folder and run through `kiln inspect` and
`kiln run` under a timeout. A command must never die by a signal, never time
out, never trip a sanitizer, and whenever it exits non-zero it must say why on
stderr. Cases marked as invalid must fail (with the expected message; errors
about a node must name it as `node INDEX 'NAME' (OP)`); others may load.

Usage: python3 tests/hostile/run_hostile.py BUILD_DIR [-j N] [-k SUBSTRING] [-v]
Exits non-zero if any case misbehaves; the last line is `N passed, M failed`.
Needs nothing beyond the Python standard library (models are encoded here).
"""
import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

# ---------------------------------------------------------------- protobuf
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def fv(field, v):
    return key(field, VARINT) + varint(v)


def fb(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, LEN) + varint(len(data)) + data


def ff32(field, x):
    return key(field, I32) + struct.pack("<f", x)


# ---------------------------------------------------------------- ONNX
FLOAT, UINT8, INT8, INT32, INT64, STRING, BOOL, DOUBLE = 1, 2, 3, 6, 7, 8, 9, 11


def tensor(name, dtype, dims, raw=None, floats=None, ints=None, extra=b""):
    b = b"".join(fv(1, d) for d in dims) + fv(2, dtype)
    if floats is not None:
        b += fb(4, struct.pack("<%df" % len(floats), *floats))
    if ints is not None:
        b += fb(7, b"".join(varint(x) for x in ints))
    b += fb(8, name)
    if raw is not None:
        b += fb(9, raw)
    return b + extra


def external(name, dtype, dims, location, offset=None, length=None):
    b = b"".join(fv(1, d) for d in dims) + fv(2, dtype) + fb(8, name)
    ent = [("location", location)]
    if offset is not None:
        ent.append(("offset", str(offset)))
    if length is not None:
        ent.append(("length", str(length)))
    for k, v in ent:
        b += fb(13, fb(1, k) + fb(2, v))
    return b + fv(14, 1)


def ttype(elem, shape):
    tt = fv(1, elem)
    if shape is not None:
        dims = b""
        for d in shape:
            if d is None:
                dims += fb(1, b"")
            elif isinstance(d, str):
                dims += fb(1, fb(2, d))
            else:
                dims += fb(1, fv(1, d))
        tt += fb(2, dims)
    return fb(1, tt)


def vinfo(name, elem=FLOAT, shape=(2, 3)):
    return fb(1, name) + fb(2, ttype(elem, shape))


def attr(name, kind, v):
    b = fb(1, name)
    if kind == "f":
        b += ff32(2, v) + fv(20, 1)
    elif kind == "i":
        b += fv(3, v) + fv(20, 2)
    elif kind == "s":
        b += fb(4, v) + fv(20, 3)
    elif kind == "t":
        b += fb(5, v) + fv(20, 4)
    elif kind == "g":
        b += fb(6, v) + fv(20, 5)
    elif kind == "floats":
        b += fb(7, struct.pack("<%df" % len(v), *v)) + fv(20, 6)
    elif kind == "ints":
        b += fb(8, b"".join(varint(x) for x in v)) + fv(20, 7)
    elif kind == "strings":
        b += b"".join(fb(9, x) for x in v) + fv(20, 8)
    elif kind == "graphs":
        b += b"".join(fb(11, g) for g in v) + fv(20, 10)
    else:
        raise ValueError(kind)
    return b


def node(op, ins, outs, name="", attrs=(), domain=None):
    b = b"".join(fb(1, i) for i in ins) + b"".join(fb(2, o) for o in outs)
    if name:
        b += fb(3, name)
    b += fb(4, op)
    b += b"".join(fb(5, a) for a in attrs)
    if domain is not None:
        b += fb(7, domain)
    return b


def graph(nodes, inputs=(), outputs=(), inits=(), name="g", vinfos=()):
    b = b"".join(fb(1, n) for n in nodes) + fb(2, name)
    b += b"".join(fb(5, t) for t in inits)
    b += b"".join(fb(11, v) for v in inputs)
    b += b"".join(fb(12, v) for v in outputs)
    b += b"".join(fb(13, v) for v in vinfos)
    return b


def model(g, opset=17, ir=8):
    b = fv(1, ir) + fb(2, "kiln-hostile")
    if opset is not None:
        b += fb(8, fv(2, opset))
    return b + fb(7, g)


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


# ---------------------------------------------------------------- base models
def base_small():
    """x[2,3] + w (raw initializer) -> Relu -> y."""
    w = tensor("w", FLOAT, [2, 3], raw=f32(1, -2, 3, -4, 5, -6))
    g = graph([node("Add", ["x", "w"], ["a"], name="add0"),
               node("Relu", ["a"], ["y"], name="relu0")],
              [vinfo("x")], [vinfo("y")], [w])
    return model(g)


def base_if():
    """If whose branches capture an input and an initializer."""
    k = tensor("k", FLOAT, [1], floats=[2.0])
    then_g = graph([node("Mul", ["x", "k"], ["t"])], [], [vinfo("t", FLOAT, [3])], name="then")
    else_g = graph([node("Sub", ["x", "k"], ["e"])], [], [vinfo("e", FLOAT, [3])], name="else")
    g = graph([node("If", ["c"], ["y"], name="if0",
                    attrs=[attr("then_branch", "g", then_g), attr("else_branch", "g", else_g)])],
              [vinfo("c", BOOL, []), vinfo("x", FLOAT, [3])], [vinfo("y", FLOAT, [3])], [k])
    return model(g, opset=13)


def base_conv():
    """Conv with weights, then Reshape by a constant shape and a Gemm."""
    w = tensor("w", FLOAT, [2, 1, 3, 3], raw=f32(*[0.1 * i for i in range(18)]))
    shp = tensor("shp", INT64, [2], ints=[1, -1])
    gw = tensor("gw", FLOAT, [8, 2], raw=f32(*range(16)))
    g = graph([node("Conv", ["x", "w"], ["c"], name="conv0",
                    attrs=[attr("kernel_shape", "ints", [3, 3]), attr("pads", "ints", [0, 0, 0, 0])]),
               node("Reshape", ["c", "shp"], ["f"], name="flat"),
               node("Gemm", ["f", "gw"], ["y"], name="fc", attrs=[attr("alpha", "f", 0.5)])],
              [vinfo("x", FLOAT, [1, 1, 4, 4])], [vinfo("y", FLOAT, [1, 2])], [w, shp, gw])
    return model(g)


def base_loop():
    """Loop with a carried value and a scan output; the body captures 'step'."""
    body = graph([node("Identity", ["cin"], ["cout"]),
                  node("Add", ["acc", "step"], ["acc2"]),
                  node("Identity", ["acc2"], ["scan"])],
                 [vinfo("i", INT64, []), vinfo("cin", BOOL, []), vinfo("acc", FLOAT, [2])],
                 [vinfo("cout", BOOL, []), vinfo("acc2", FLOAT, [2]), vinfo("scan", FLOAT, [2])],
                 name="body")
    g = graph([node("Loop", ["M", "", "a0"], ["af", "scans"], name="loop0",
                    attrs=[attr("body", "g", body)])],
              [vinfo("a0", FLOAT, [2])], [vinfo("af", FLOAT, [2]), vinfo("scans", FLOAT, [None, 2])],
              [tensor("M", INT64, [], ints=[3]), tensor("step", FLOAT, [2], floats=[1, 1])])
    return model(g, opset=16)


# ---------------------------------------------------------------- cases
class Case:
    """expect: 'any' (may load), 'fail' (both commands must fail),
    'inspect_ok' (inspect succeeds, run fails), 'ok' (both succeed).
    msg: regex that must appear in stderr of each failing command.
    files: extra files (relative path -> bytes) written beside the model;
    setup: callable(model_dir) for special files."""

    def __init__(self, name, data, expect="any", msg=None, files=None, setup=None,
                 commands=("inspect", "run"), forbid=None):
        self.name, self.data, self.expect, self.msg = name, data, expect, msg
        self.forbid = forbid  # regex that must not appear in stderr
        self.files, self.setup, self.commands = files or {}, setup, commands


def label(index, op, name=None):
    if name:
        return re.escape("node %d '%s' (%s)" % (index, name, op))
    return re.escape("node %d (%s)" % (index, op))


def mutation_cases():
    cases = []
    small = base_small()
    for n in range(len(small)):
        cases.append(Case("truncate_small_%d" % n, small[:n]))
    for name, base in (("if", base_if()), ("loop", base_loop())):
        for n in range(0, len(base), 2):
            cases.append(Case("truncate_%s_%d" % (name, n), base[:n]))
    for name, base, stride, masks in (("small", small, 1, (0xFF, 0x80, 0x01)),
                                      ("if", base_if(), 1, (0xFF,)),
                                      ("conv", base_conv(), 2, (0xFF, 0x7F)),
                                      ("loop", base_loop(), 2, (0xFF,))):
        for pos in range(0, len(base), stride):
            for m in masks:
                b = bytearray(base)
                b[pos] ^= m
                cases.append(Case("flip_%s_%d_x%02x" % (name, pos, m), bytes(b)))
    rnd = random.Random(1234)  # deterministic multi-byte damage
    for i in range(150):
        b = bytearray(base_conv() if i % 2 else base_loop())
        for _ in range(rnd.randint(2, 6)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        cases.append(Case("scramble_%d" % i, bytes(b)))
    return cases


def wire_cases():
    c = []
    g_small = graph([node("Relu", ["x"], ["y"], name="r")], [vinfo("x")], [vinfo("y")])
    ok_tail = fb(8, fv(2, 17))
    # Wrong wire types on known fields.
    c.append(Case("wt_ir_version_len", fb(1, "8") + ok_tail + fb(7, g_small), "fail", "malformed"))
    c.append(Case("wt_graph_varint", fv(1, 8) + ok_tail + fv(7, 5), "fail", "malformed"))
    c.append(Case("wt_graph_fixed32", fv(1, 8) + ok_tail + key(7, I32) + b"\0\0\0\0", "fail", "malformed"))
    c.append(Case("wt_opset_fixed64", fv(1, 8) + key(8, I64) + b"\0" * 8 + fb(7, g_small), "fail", "malformed"))
    g = graph([fv(4, 3) + fb(1, "x") + fb(2, "y")], [vinfo("x")], [vinfo("y")])
    c.append(Case("wt_op_type_varint", model(g), "fail", r"node 0: malformed node"))
    g = graph([node("Relu", ["x"], ["y"], name="r")], [vinfo("x")], [vinfo("y")],
              [key(1, I32) + b"\1\0\0\0" + fv(2, FLOAT) + fb(8, "w")])
    c.append(Case("wt_tensor_dims_fixed32", model(g), "fail", "wire type|malformed"))
    g = graph([node("Relu", ["x"], ["y"], name="r",
                    attrs=[fb(1, "alpha") + key(3, I64) + b"\0" * 8])], [vinfo("x")], [vinfo("y")])
    c.append(Case("wt_attr_int_fixed64", model(g), "fail", label(0, "Relu", "r") + ".*malformed attribute"))
    c.append(Case("wt_group_start", fv(1, 8) + ok_tail + key(9, 3) + fb(7, g_small), "fail", "malformed"))
    c.append(Case("wt_group_end", fv(1, 8) + ok_tail + key(9, 4) + fb(7, g_small), "fail", "malformed"))
    c.append(Case("wt_unknown_field_fixed64_skipped",
                  model(g_small) + key(99, I64) + b"\1" * 8, "ok"))
    c.append(Case("field_zero", b"\x00\x01" + model(g_small), "fail", "malformed"))
    # Absurd lengths and varints.
    for n, ln in (("2p63", 1 << 63), ("u32max", 0xFFFFFFFF), ("u64max", (1 << 64) - 1), ("plus1", len(g_small) + 1)):
        c.append(Case("len_graph_" + n, fv(1, 8) + ok_tail + key(7, LEN) + varint(ln) + g_small,
                      "fail", "malformed"))
    c.append(Case("varint_11_bytes", fv(1, 8) + ok_tail + key(1, VARINT) + b"\xff" * 10 + b"\x01" + fb(7, g_small),
                  "fail", "malformed"))
    c.append(Case("varint_10th_byte_overflow", fv(1, 8) + ok_tail + key(1, VARINT) + b"\xff" * 9 + b"\x7f"
                  + fb(7, g_small), "fail", "malformed"))
    c.append(Case("varint_unterminated_at_eof", model(g_small) + key(1, VARINT) + b"\xff\xff", "fail", "malformed"))
    c.append(Case("varint_noncanonical_ok", fv(1, 8) + ok_tail + key(7, LEN) + bytes(
        [len(g_small) & 0x7F | 0x80, len(g_small) >> 7 | 0x80, 0x80, 0x00]) + g_small, "ok"))
    g = graph([node("Relu", ["x"], ["y"])], [vinfo("x")], [vinfo("y")],
              [fv(1, (1 << 64) - 1) + fv(2, FLOAT) + fb(8, "w")])
    c.append(Case("dim_u64max", model(g), "fail", "negative dim|too large"))
    g = graph([node("Relu", ["x"], ["y"])], [vinfo("x")], [vinfo("y")],
              [fv(1, 2) + fv(2, FLOAT) + fb(8, "w") + key(9, LEN) + varint(1 << 40) + b"\0" * 8])
    c.append(Case("raw_len_past_end", model(g), "fail", "malformed"))
    c.append(Case("empty_file", b"", "fail", "no graph"))
    c.append(Case("one_zero_byte", b"\0", "fail", "malformed"))
    rnd = random.Random(99)
    for i in range(10):
        c.append(Case("garbage_%d" % i, bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 2000)))))
    c.append(Case("text_file", b"this is not an onnx model\n" * 20, "fail"))
    return c


def semantic_cases():
    c = []
    X, Y = [vinfo("x")], [vinfo("y")]

    def m(nodes, inputs=X, outputs=Y, inits=(), opset=17, **kw):
        return model(graph(nodes, inputs, outputs, inits, **kw), opset=opset)

    c.append(Case("valid_small", base_small(), "ok"))
    c.append(Case("valid_if", base_if(), "ok"))
    c.append(Case("valid_conv", base_conv(), "ok"))
    c.append(Case("valid_loop", base_loop(), "ok"))
    # Names.
    c.append(Case("dup_node_outputs", m([node("Relu", ["x"], ["y"], name="a"),
                                         node("Neg", ["x"], ["y"], name="b")]),
                  "fail", label(1, "Neg", "b") + ".*already defined"))
    c.append(Case("output_shadows_input", m([node("Relu", ["x"], ["x"], name="r")]),
                  "fail", label(0, "Relu", "r") + ".*already defined"))
    w = tensor("w", FLOAT, [1], floats=[1])
    # onnxruntime keeps the last definition (and warns); so does Kiln
    c.append(Case("dup_initializer", m([node("Relu", ["x"], ["y"])], inits=[w, w]), "ok"))
    c.append(Case("dup_graph_input", m([node("Relu", ["x"], ["y"])], inputs=X + X), "fail", "declared twice"))
    c.append(Case("unnamed_initializer", m([node("Relu", ["x"], ["y"])],
                                          inits=[tensor("", FLOAT, [1], floats=[1])]), "fail", "no name"))
    c.append(Case("cycle", m([node("Relu", ["b"], ["a"], name="ra"), node("Relu", ["a"], ["b"], name="rb"),
                              node("Add", ["a", "x"], ["y"], name="out")]),
                  "fail", "cycle through " + label(0, "Relu", "ra")))
    c.append(Case("self_loop", m([node("Add", ["x", "y"], ["y"], name="self")]),
                  "fail", "cycle through " + label(0, "Add", "self")))
    c.append(Case("unknown_op", m([node("Frobnicate", ["x"], ["y"], name="mystery")]),
                  "inspect_ok", label(0, "Frobnicate", "mystery") + ".*(not supported|no reference kernel)"))
    c.append(Case("unknown_op_unnamed", m([node("Relu", ["x"], ["t"]), node("Frobnicate", ["t"], ["y"])]),
                  "inspect_ok", label(1, "Frobnicate")))
    c.append(Case("custom_domain", m([node("Gelu", ["x"], ["y"], name="g", domain="com.example")]),
                  "fail", label(0, "Gelu", "g") + ".*domain"))
    c.append(Case("missing_op_type", m([fb(1, "x") + fb(2, "y") + fb(3, "nameless")]),
                  "fail", "node 0 'nameless' \\(\\): missing op_type"))
    c.append(Case("missing_input_name", m([node("Add", ["x", "nope"], ["y"], name="add1")]),
                  "fail", label(0, "Add", "add1") + ".*'nope' is not produced"))
    c.append(Case("missing_graph_output", m([node("Relu", ["x"], ["t"])]), "fail", "'y' is not produced"))
    c.append(Case("type_error_add_f32_i64",
                  m([node("Add", ["x", "i"], ["y"], name="mixed")], inputs=[vinfo("x"), vinfo("i", INT64)]),
                  "fail", label(0, "Add", "mixed")))
    c.append(Case("type_error_second_node",
                  m([node("Relu", ["x"], ["t"], name="ok"), node("MatMul", ["t", "i"], ["y"], name="mm")],
                    inputs=[vinfo("x"), vinfo("i", INT64, [3, 2])]),
                  "fail", label(1, "MatMul", "mm")))
    c.append(Case("arity_error", m([node("Relu", ["x", "x", "x"], ["y"], name="r3")]),
                  "fail", label(0, "Relu", "r3") + ".*inputs"))
    c.append(Case("no_attr_name", m([node("Relu", ["x"], ["y"], name="r", attrs=[fv(3, 1) + fv(20, 2)])]),
                  "fail", label(0, "Relu", "r") + ".*without a name"))
    c.append(Case("dup_attr", m([node("Softmax", ["x"], ["y"], name="sm",
                                      attrs=[attr("axis", "i", 1), attr("axis", "i", 0)])]),
                  "fail", label(0, "Softmax", "sm") + ".*twice"))
    c.append(Case("attr_type_without_value", m([node("Relu", ["x"], ["y"], name="r",
                                                      attrs=[fb(1, "g") + fv(20, 5)])]),
                  "fail", label(0, "Relu", "r") + ".*no matching value"))
    c.append(Case("attr_bad_tensor", m([node("Constant", [], ["y"], name="k",
                                             attrs=[attr("value", "t", tensor("v", FLOAT, [4], floats=[1]))])],
                                       inputs=[]),
                  "fail", label(0, "Constant", "k") + ".*elements"))
    # Types and tensors.
    c.append(Case("opset_99", m([node("Relu", ["x"], ["y"])], opset=99), "fail", "opset 99"))
    c.append(Case("no_opset", model(graph([node("Relu", ["x"], ["y"])], X, Y), opset=None), "fail", "opset"))
    c.append(Case("rank_13_input", m([node("Relu", ["x"], ["y"])], inputs=[vinfo("x", FLOAT, [1] * 13)]),
                  "fail", "rank"))
    c.append(Case("elem_type_99", m([node("Relu", ["x"], ["y"])], inputs=[vinfo("x", 99)]), "fail", "elem_type"))
    c.append(Case("tensor_dtype_99", m([node("Relu", ["x"], ["y"])],
                                       inits=[tensor("w", 99, [1], raw=b"\0" * 4)]), "fail", "data_type"))
    c.append(Case("string_initializer", m([node("Relu", ["x"], ["y"])],
                                          inits=[fv(1, 1) + fv(2, STRING) + fb(6, "s") + fb(8, "w")]),
                  "fail", "string"))
    c.append(Case("raw_size_mismatch", m([node("Add", ["x", "w"], ["y"])],
                                         inits=[tensor("w", FLOAT, [2, 3], raw=b"\0" * 23)]),
                  "fail", "raw_data"))
    c.append(Case("typed_count_mismatch", m([node("Add", ["x", "w"], ["y"])],
                                            inits=[tensor("w", FLOAT, [2, 3], floats=[1, 2])]),
                  "fail", "data values"))
    c.append(Case("no_data_huge_dims", m([node("Add", ["x", "w"], ["y"])],
                                         inits=[tensor("w", FLOAT, [1 << 40, 1 << 40])]),
                  "fail", "too large"))
    c.append(Case("no_data_big_dims", m([node("Add", ["x", "w"], ["y"])],
                                        inits=[tensor("w", FLOAT, [1 << 20, 1 << 10])]),
                  "fail", "elements|too large|no data"))
    c.append(Case("segment", m([node("Relu", ["x"], ["y"])],
                               inits=[tensor("w", FLOAT, [1], floats=[1], extra=fb(3, fv(1, 0) + fv(2, 1)))]),
                  "fail", "segment"))
    g = graph([node("Relu", ["x"], ["y"])], X, Y) + fb(15, fb(1, tensor("v", FLOAT, [1], floats=[1])))
    c.append(Case("sparse_initializer_present", model(g), "fail", "sparse"))
    g = graph([node("Relu", ["x"], ["y"])], [fb(1, "x") + fb(2, fb(4, fb(1, ttype(FLOAT, [2]))))], Y)
    c.append(Case("sequence_input", model(g), "fail", "sequence"))
    c.append(Case("huge_declared_input_dims", m([node("Relu", ["x"], ["y"], name="r")],
                                                inputs=[vinfo("x", FLOAT, [1 << 40, 1 << 40])],
                                                outputs=[vinfo("y", FLOAT, [1 << 40, 1 << 40])]),
                  "inspect_ok", "cannot create input|allocate|too large|invalid"))
    c.append(Case("big_declared_input_over_cap", m([node("Relu", ["x"], ["y"], name="r")],
                                                   inputs=[vinfo("x", FLOAT, [1 << 36])],
                                                   outputs=[vinfo("y", FLOAT, [1 << 36])]),
                  "inspect_ok", "cannot create input|allocate"))
    shp = tensor("s", INT64, [3], ints=[1 << 20, 1 << 20, 1 << 20])
    c.append(Case("constantofshape_enormous",
                  m([node("ConstantOfShape", ["s"], ["y"], name="cos")], inputs=[], outputs=[vinfo("y", FLOAT, None)],
                    inits=[shp]),
                  "inspect_ok", label(0, "ConstantOfShape", "cos")))
    shp = tensor("s", INT64, [2], ints=[1 << 31, 1 << 31])
    c.append(Case("expand_enormous",
                  m([node("Expand", ["x", "s"], ["y"], name="ex")], inputs=[vinfo("x", FLOAT, [1, 1])],
                    outputs=[vinfo("y", FLOAT, None)], inits=[shp]),
                  "inspect_ok", label(0, "Expand", "ex")))
    shp = tensor("s", INT64, [4], ints=[(1 << 62), 4, 4, 4])
    c.append(Case("constantofshape_overflow",
                  m([node("ConstantOfShape", ["s"], ["y"], name="cos")], inputs=[], outputs=[vinfo("y", FLOAT, None)],
                    inits=[shp]),
                  "any", label(0, "ConstantOfShape", "cos")))
    # Load-time folding must stay cheap: tiny models whose all-constant nodes
    # would cost billions of operations (only loading is checked: running
    # them legitimately computes that much).
    def cos(name, dims):
        return (node("ConstantOfShape", [name + "_s"], [name],
                     attrs=[attr("value", "t", tensor("v", FLOAT, [1], floats=[1.0]))]),
                tensor(name + "_s", INT64, [len(dims)], ints=dims))

    (nx, tx), (nw, tw) = cos("X", [1, 1, 200, 200]), cos("W", [1, 1, 150, 150])
    convs = [node("Conv", ["X", "W"], ["c%d" % i], name="conv%d" % i, attrs=[attr("pads", "ints", [102] * 4)])
             for i in range(8)]
    c.append(Case("fold_bomb_conv", m([nx, nw] + convs + [node("Identity", ["c0"], ["y"])], inputs=[],
                                      outputs=[vinfo("y", FLOAT, None)], inits=[tx, tw]),
                  "ok", commands=("inspect",)))
    ens, eins, eterms = [], [], []
    for j in range(10):
        n_, t_ = cos("E%d" % j, [40, 40])
        ens.append(n_)
        eins.append(t_)
        eterms.append("abcdefghijk"[j:j + 2])
    c.append(Case("fold_bomb_einsum",
                  m(ens + [node("Einsum", ["E%d" % j for j in range(10)], ["y"], name="ein",
                                attrs=[attr("equation", "s", ",".join(eterms) + "->ak")])],
                    inputs=[], outputs=[vinfo("y", FLOAT, None)], inits=eins),
                  "ok", commands=("inspect",)))
    # Untrusted names reach messages without terminal control characters.
    c.append(Case("escape_in_names", m([node("Frob\x1b]0;pwned\x07", ["x"], ["y"], name="n\x1b[2J\n")]),
                  "inspect_ok", r"node 0 'n\?\[2J\?' \(Frob\?\]0;pwned\?\)", forbid="[\x1b\x07]"))
    c.append(Case("escape_in_external_location",
                  m([node("Relu", ["w"], ["y"])], inputs=[],
                    inits=[external("w", FLOAT, [2, 3], "\x1b[2J/../x")]),
                  "fail", "relative path", forbid="\x1b"))
    # Many inputs bound to one symbol: the agreement check must stay linear.
    ins = [vinfo("x%d" % i, FLOAT, ["N"]) for i in range(30000)]
    c.append(Case("many_inputs_one_symbol",
                  m([node("Sum", ["x%d" % i for i in range(30000)], ["y"])], inputs=ins,
                    outputs=[vinfo("y", FLOAT, ["N"])]), "ok"))
    # Folding amplification: each node folds to 256 KiB from a few bytes;
    # 20000 of them would ask for 5 GiB without a total budget.
    shp = tensor("s", INT64, [1], ints=[65536])
    amp = [node("ConstantOfShape", ["s"], ["a%d" % i], attrs=[attr("value", "t", tensor("v", FLOAT, [1], floats=[1]))])
           for i in range(20000)]
    c.append(Case("fold_amplification", m(amp + [node("Identity", ["a0"], ["y"])], inputs=[],
                                          outputs=[vinfo("y", FLOAT, [65536])], inits=[shp]),
                  "ok", commands=("inspect",)))
    # Control flow.
    sub = graph([node("Identity", ["x"], ["t"])], [], [vinfo("t")], name="b")
    c.append(Case("if_missing_else", m([node("If", ["c"], ["y"], name="if1", attrs=[attr("then_branch", "g", sub)])],
                                       inputs=[vinfo("c", BOOL, []), vinfo("x")]),
                  "fail", label(0, "If", "if1")))
    sub2 = graph([node("Identity", ["x"], ["t"]), node("Identity", ["x"], ["u"])], [], [vinfo("t"), vinfo("u")])
    c.append(Case("if_branch_arity", m([node("If", ["c"], ["y"], name="if2",
                                             attrs=[attr("then_branch", "g", sub), attr("else_branch", "g", sub2)])],
                                       inputs=[vinfo("c", BOOL, []), vinfo("x")]),
                  "fail", label(0, "If", "if2") + ".*outputs"))
    badsub = graph([node("Relu", ["nowhere"], ["t"], name="inner")], [], [vinfo("t")])
    c.append(Case("subgraph_missing_input", m([node("If", ["c"], ["y"], name="if3",
                                                    attrs=[attr("then_branch", "g", badsub),
                                                           attr("else_branch", "g", sub)])],
                                              inputs=[vinfo("c", BOOL, []), vinfo("x")]),
                  "fail", label(0, "Relu", "inner") + ".*'nowhere'"))
    within = graph([node("Identity", ["bx"], ["t"])], [vinfo("bx")], [vinfo("t")], name="takes_input")
    c.append(Case("if_branch_with_inputs",
                  m([node("If", ["c"], ["y"], name="ifi", attrs=[attr("then_branch", "g", within),
                                                                attr("else_branch", "g", within)])],
                    inputs=[vinfo("c", BOOL, []), vinfo("x")]),
                  "any", label(0, "If", "ifi")))
    c.append(Case("loop_body_arity", m([node("Loop", ["", "", "x"], ["y"], name="lp", attrs=[attr("body", "g", sub)])]),
                  "fail", label(0, "Loop", "lp") + ".*body"))
    selfcap = graph([node("Identity", ["y"], ["t"])], [], [vinfo("t")])
    c.append(Case("subgraph_captures_owner_output",
                  m([node("If", ["c"], ["y"], name="ifc", attrs=[attr("then_branch", "g", selfcap),
                                                                attr("else_branch", "g", selfcap)])],
                    inputs=[vinfo("c", BOOL, []), vinfo("x")]),
                  "fail", "cycle"))

    def nest_model(depth, wrap_op="If"):
        # Then-branch nests deeper, else-branch is a leaf: size stays linear.
        leaf = graph([node("Identity", ["x"], ["t"])], [], [vinfo("t")], name="leaf")
        g = leaf
        for _ in range(depth):
            g = graph([node("If", ["c"], ["t"], attrs=[attr("then_branch", "g", g),
                                                       attr("else_branch", "g", leaf)])],
                      [], [vinfo("t")])
        top = graph([node("If", ["c"], ["y"], name="top", attrs=[attr("then_branch", "g", g),
                                                                 attr("else_branch", "g", leaf)])],
                    [vinfo("c", BOOL, []), vinfo("x")], Y)
        return model(top)

    c.append(Case("nest_depth_8", nest_model(8), "ok"))
    c.append(Case("nest_depth_31", nest_model(30), "ok"))
    c.append(Case("nest_depth_40", nest_model(40), "fail", "nested deeper"))

    def chain_nest(depth):  # one branch deep, the other shallow: stays small
        leaf = graph([node("Identity", ["x"], ["t"])], [], [vinfo("t")])
        g = leaf
        for _ in range(depth):
            g = graph([node("If", ["c"], ["t"], attrs=[attr("then_branch", "g", g), attr("else_branch", "g", leaf)])],
                      [], [vinfo("t")])
        return model(graph([node("Identity", ["x"], ["y"], attrs=[attr("g", "g", g)])],
                           [vinfo("c", BOOL, []), vinfo("x")], Y))

    c.append(Case("nest_depth_5000", chain_nest(5000), "fail", "nested deeper"))
    many = [graph([node("Identity", ["x"], ["t"])], [], [vinfo("t")], name="w%d" % i) for i in range(3000)]
    c.append(Case("wide_graphs_attr", m([node("Relu", ["x"], ["y"], name="r", attrs=[attr("gs", "graphs", many)])]),
                  "ok"))
    # Scale: many nodes, many inputs, many names.
    nodes = [node("Relu", ["x" if i == 0 else "t%d" % (i - 1)], ["t%d" % i]) for i in range(20000)]
    nodes.append(node("Identity", ["t19999"], ["y"]))
    c.append(Case("chain_20000_nodes", m(nodes), "ok"))
    c.append(Case("sum_20000_inputs", m([node("Sum", ["x"] * 20000, ["y"], name="s")]), "ok"))
    # Sizes where a quadratic lookup would blow the timeout.
    vis = [vinfo("v%d" % i, FLOAT, ["sym%d" % i, "sym%d_b" % i]) for i in range(100000)]
    c.append(Case("many_dim_params", m([node("Relu", ["x"], ["y"])], vinfos=vis), "ok"))
    ops = [node("Op%d" % i, ["x"], ["u%d" % i]) for i in range(200000)]
    c.append(Case("many_unknown_op_types", m(ops + [node("Relu", ["x"], ["y"])]), "inspect_ok",
                  r"node \d+ \(Op\d+\).*(not supported|no reference kernel)"))
    attrs = [attr("a%d" % i, "i", i) for i in range(200000)]
    c.append(Case("many_attrs", m([node("Relu", ["x"], ["y"], name="r", attrs=attrs)]), "ok"))
    c.append(Case("many_attrs_dup_last", m([node("Relu", ["x"], ["y"], name="r",
                                                 attrs=attrs + [attr("a5", "i", 0)])]),
                  "fail", label(0, "Relu", "r") + ".*'a5' appears twice"))
    caps = graph([node("Sum", ["c%d" % i for i in range(50000)], ["t"])], [], [vinfo("t")])
    inits = [tensor("c%d" % i, FLOAT, [1], floats=[i]) for i in range(50000)]
    c.append(Case("many_captures", m([node("If", ["c"], ["y"], name="ifcap",
                                            attrs=[attr("then_branch", "g", caps), attr("else_branch", "g", caps)])],
                                      inputs=[vinfo("c", BOOL, [])], outputs=[vinfo("y", FLOAT, None)],
                                      inits=inits), "ok"))
    # ai.onnx.ml tree ensembles: their node arrays come from the file and are
    # checked when the kernel compiles them (run fails, naming the problem).
    def tree_reg(tids, truen, falsen, modes, feat=(0, 0, 0)):
        at = [attr("nodes_treeids", "ints", [0, 0, 0]), attr("nodes_nodeids", "ints", [0, 1, 2]),
              attr("nodes_featureids", "ints", list(feat)),
              attr("nodes_modes", "strings", modes),
              attr("nodes_values", "floats", [0.5, 0, 0]),
              attr("nodes_truenodeids", "ints", truen), attr("nodes_falsenodeids", "ints", falsen),
              attr("target_treeids", "ints", [0, 0]), attr("target_nodeids", "ints", tids),
              attr("target_ids", "ints", [0, 0]), attr("target_weights", "floats", [1, 2]),
              attr("n_targets", "i", 1)]
        return m([node("TreeEnsembleRegressor", ["x"], ["y"], name="t", attrs=at,
                       domain="ai.onnx.ml")], outputs=[vinfo("y", FLOAT, None)])
    tl = label(0, "TreeEnsembleRegressor", "t") + ".*"
    leafs = ["BRANCH_LEQ", "LEAF", "LEAF"]
    c.append(Case("tree_valid", tree_reg([1, 2], [1, 0, 0], [2, 0, 0], leafs), "ok"))
    c.append(Case("tree_cycle", tree_reg([1, 2], [0, 0, 0], [1, 0, 0],
                                         ["BRANCH_LEQ", "BRANCH_GT", "LEAF"]),
                  "inspect_ok", tl + "(cycle|names no LEAF)"))
    c.append(Case("tree_missing_child", tree_reg([1, 2], [7, 0, 0], [2, 0, 0], leafs),
                  "inspect_ok", tl + "does not exist"))
    c.append(Case("tree_bad_feature", tree_reg([1, 2], [1, 0, 0], [2, 0, 0], leafs,
                                               feat=(99, 0, 0)),
                  "inspect_ok", tl + "reads feature 99"))
    c.append(Case("tree_bad_mode", tree_reg([1, 2], [1, 0, 0], [2, 0, 0],
                                            ["BRANCH_SOMETIMES", "LEAF", "LEAF"]),
                  "inspect_ok", tl + "not a branch mode"))
    c.append(Case("tree_target_not_leaf", tree_reg([0, 2], [1, 0, 0], [2, 0, 0], leafs),
                  "inspect_ok", tl + "names no LEAF"))
    # optional(tensor) graph inputs read as tensors; optional(optional(...))
    # and truncated optional types are refused with a message
    opt_t = fb(1, b"x") + fb(2, fb(9, fb(1, ttype(FLOAT, (2, 3)))))
    c.append(Case("optional_tensor_input", m([node("Relu", ["x"], ["y"])], inputs=[opt_t]), "ok"))
    opt_opt = fb(1, b"x") + fb(2, fb(9, fb(1, fb(9, fb(1, ttype(FLOAT, (2, 3)))))))
    c.append(Case("optional_optional_input", m([node("Relu", ["x"], ["y"])], inputs=[opt_opt]),
                  "fail", "optional"))
    opt_cut = fb(1, b"x") + fb(2, fb(9, b"\x0a\x40\x0a"))
    c.append(Case("optional_truncated_input", m([node("Relu", ["x"], ["y"])], inputs=[opt_cut]),
                  "fail"))
    for op, why in (("ZipMap", "sequence of maps"), ("DictVectorizer", "reads a map"),
                    ("CastMap", "reads a map")):
        c.append(Case("ml_refused_" + op, m([node(op, ["x"], ["y"], name="z", domain="ai.onnx.ml")]),
                      "fail", label(0, op, "z") + ".*not supported.*" + why))
    v5 = [attr("n_targets", "i", 1), attr("tree_roots", "ints", [0]),
          attr("nodes_featureids", "ints", [0]), attr("nodes_truenodeids", "ints", [5]),
          attr("nodes_falsenodeids", "ints", [0]), attr("nodes_trueleafs", "ints", [1]),
          attr("nodes_falseleafs", "ints", [1]), attr("leaf_targetids", "ints", [0]),
          attr("nodes_modes", "t", tensor("nodes_modes", UINT8, [1], raw=b"\x06")),
          attr("nodes_splits", "t", tensor("nodes_splits", FLOAT, [1], floats=[0])),
          attr("leaf_weights", "t", tensor("leaf_weights", FLOAT, [1], floats=[1]))]
    c.append(Case("tree_v5_bad_leaf", m([node("TreeEnsemble", ["x"], ["y"], name="t5", attrs=v5,
                                              domain="ai.onnx.ml")], outputs=[vinfo("y", FLOAT, None)]),
                  "inspect_ok", label(0, "TreeEnsemble", "t5") + ".*(membership_values|out of range)"))
    return c


def external_cases():
    c = []
    w16 = f32(1, 2, 3, 4)

    def ext_model(location, offset=None, length=None, dims=(2, 2)):
        t = external("w", FLOAT, list(dims), location, offset, length)
        return model(graph([node("Add", ["x", "w"], ["y"], name="a")], [vinfo("x", FLOAT, [2, 2])],
                           [vinfo("y", FLOAT, [2, 2])], [t]))

    c.append(Case("ext_valid", ext_model("w.bin"), "ok", files={"w.bin": w16}))
    c.append(Case("ext_valid_subdir_offset", ext_model("d/w.bin", 4, 16), "ok", files={"d/w.bin": b"\0" * 4 + w16}))
    esc = "relative path inside"
    c.append(Case("ext_parent", ext_model("../outside.bin"), "fail", esc, files={"../outside.bin": w16}))
    c.append(Case("ext_parent_nested", ext_model("d/../../outside.bin"), "fail", esc,
                  files={"../outside.bin": w16, "d/x": b""}))
    c.append(Case("ext_absolute", ext_model("/etc/passwd", 0, 16), "fail", esc))
    c.append(Case("ext_absolute_dev", ext_model("/dev/zero"), "fail", esc))
    c.append(Case("ext_dotdot_only", ext_model(".."), "fail", esc))
    c.append(Case("ext_empty_location", ext_model(""), "fail", "location"))
    c.append(Case("ext_missing_file", ext_model("nope.bin"), "fail", "cannot open"))
    c.append(Case("ext_directory", ext_model("d"), "fail", "not a regular file", files={"d/x": b""}))
    c.append(Case("ext_offset_past_end", ext_model("w.bin", 1 << 40), "fail", "cannot read", files={"w.bin": w16}))
    c.append(Case("ext_offset_overflow", ext_model("w.bin", (1 << 64) - 1), "fail", "cannot read|number",
                  files={"w.bin": w16}))
    c.append(Case("ext_short_file", ext_model("w.bin"), "fail", "cannot read", files={"w.bin": w16[:8]}))
    c.append(Case("ext_length_mismatch", ext_model("w.bin", 0, 8), "fail", "length", files={"w.bin": w16}))
    c.append(Case("ext_bad_offset", model(graph([node("Relu", ["x"], ["y"])], [vinfo("x")], [vinfo("y")],
                                                [external("w", FLOAT, [1], "w.bin")
                                                 + fb(13, fb(1, "offset") + fb(2, "-5"))])),
                  "fail", "not a number", files={"w.bin": w16}))
    c.append(Case("ext_huge_dims", ext_model("w.bin", dims=(1 << 40, 1 << 40)), "fail", "too large",
                  files={"w.bin": w16}))
    c.append(Case("ext_big_dims_over_file", ext_model("w.bin", dims=(1 << 20, 1 << 8)), "fail", "cannot read",
                  files={"w.bin": w16}))

    def fifo(d):
        os.mkfifo(os.path.join(d, "fifo.bin"))

    if hasattr(os, "mkfifo"):
        c.append(Case("ext_fifo", ext_model("fifo.bin"), "fail", "regular file", setup=fifo))

    def link_out(d):
        os.symlink("/dev/zero", os.path.join(d, "zero.bin"))

    c.append(Case("ext_symlink_to_device", ext_model("zero.bin"), "fail", "regular file", setup=link_out))
    return c


# ---------------------------------------------------------------- running
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|"
                       r"MemorySanitizer|ThreadSanitizer")


def run_cmd(kiln, cmd, path, timeout):
    """Runs `kiln CMD PATH`; returns (exit code or None on timeout, stdout,
    stderr, peak RSS in MiB). A negative exit code is a signal number."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:allocator_may_return_null=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1")
    p = subprocess.Popen([kiln, cmd, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    got = {}

    def drain(name, f):
        got[name] = f.read()

    readers = [threading.Thread(target=drain, args=("out", p.stdout)),
               threading.Thread(target=drain, args=("err", p.stderr))]
    for t in readers:
        t.start()
    expired = threading.Event()

    def kill():
        expired.set()
        p.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    # wait4 rather than Popen.wait: it reports this child's own peak RSS.
    _, status, usage = os.wait4(p.pid, 0)
    timer.cancel()
    for t in readers:
        t.join()
    p.returncode = rc = os.waitstatus_to_exitcode(status)
    out = got.get("out", b"").decode(errors="replace")
    err = got.get("err", b"").decode(errors="replace")
    rss_mb = usage.ru_maxrss / 1024.0  # Linux reports KiB
    if expired.is_set():
        return None, out, "timed out after %ss" % timeout, rss_mb
    return rc, out, err, rss_mb


def check_case(kiln, case, root, timeout, max_rss_mb):
    """Returns a list of problems (empty when the case passed)."""
    problems = []
    d = os.path.join(root, case.name, "m")
    os.makedirs(d)
    for rel, data in case.files.items():
        p = os.path.normpath(os.path.join(d, rel))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    if case.setup:
        case.setup(d)
    path = os.path.join(d, "model.onnx")
    with open(path, "wb") as f:
        f.write(case.data)
    for cmd in case.commands:
        rc, out, err, rss_mb = run_cmd(kiln, cmd, path, timeout)
        where = "%s: " % cmd
        if rc is None:
            problems.append(where + err)
            continue
        if rss_mb > max_rss_mb:
            problems.append(where + "peak RSS %.0f MiB exceeds %d MiB" % (rss_mb, max_rss_mb))
        if rc < 0:
            problems.append(where + "killed by signal %d; stderr: %s" % (-rc, err.strip()[-2000:]))
            continue
        if SANITIZER.search(err):
            problems.append(where + "sanitizer report:\n" + err.strip()[-3000:])
            continue
        if rc != 0 and not err.strip():
            problems.append(where + "exit %d with no message on stderr" % rc)
            continue
        want_ok = case.expect == "ok" or (case.expect == "inspect_ok" and cmd == "inspect")
        want_fail = case.expect == "fail" or (case.expect == "inspect_ok" and cmd == "run")
        if want_ok and rc != 0:
            problems.append(where + "expected success, exit %d: %s" % (rc, err.strip()[-500:]))
        elif want_fail and rc == 0:
            problems.append(where + "expected failure, exit 0")
        if rc != 0 and case.msg and (want_fail or case.expect == "any") and not re.search(case.msg, err):
            problems.append(where + "message does not match /%s/: %s" % (case.msg, err.strip()[-500:]))
        if case.forbid and re.search(case.forbid, err):
            problems.append(where + "stderr contains /%s/: %r" % (case.forbid, err[-300:]))
        if rc != 0 and "kiln:" not in err and "kiln run:" not in err:
            problems.append(where + "message lacks the 'kiln:' prefix: %s" % err.strip()[-300:])
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("-j", type=int, default=2, help="parallel cases (default 2)")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("-v", action="store_true", help="print every case")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("KILN_HOSTILE_TIMEOUT", "60")))
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--max-rss-mb", type=int, default=int(os.environ.get("KILN_HOSTILE_MAX_RSS_MB", "2048")),
                    help="peak resident memory allowed per command (default 2048 MiB)")
    a = ap.parse_args()
    kiln = os.path.join(a.build_dir, "bin", "kiln")
    if not os.access(kiln, os.X_OK):
        print("run_hostile: no kiln binary at %s" % kiln, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    cases = semantic_cases() + wire_cases() + external_cases() + mutation_cases()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    cases = [c for c in cases if a.k in c.name]
    # Cases that reach outside their folder get a private parent folder.
    root = tempfile.mkdtemp(prefix="kiln-hostile-")
    passed = failed = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, a.j)) as ex:
            futs = [(c, ex.submit(check_case, kiln, c, root, a.timeout, a.max_rss_mb)) for c in cases]
            for c, fut in futs:
                try:
                    problems = fut.result()
                except Exception as e:  # a bug in this script counts as a failure
                    problems = ["harness error: %r" % e]
                if problems:
                    failed += 1
                    print("FAIL %s" % c.name)
                    for p in problems:
                        print("    " + p.replace("\n", "\n    "))
                else:
                    passed += 1
                    if a.v:
                        print("PASS %s" % c.name)
                sys.stdout.flush()
    finally:
        if a.keep:
            print("scratch folder kept: %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
