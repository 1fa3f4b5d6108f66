"""make_engine_format_onnx.py: writes engine_format.onnx, the small model the
engine-format unit test serializes. It packs what an engine has to carry:
a symbolic batch dim, initializers of several dtypes (float16, int4, bool),
an absent optional input, a Constant with a tensor attribute, attributes of
every list type (extra attributes the ops ignore), and If subgraphs nested
two deep that capture values from both enclosing graphs.
Run: python3 tests/data/make_engine_format_onnx.py tests/data/engine_format.onnx
"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

F = TensorProto.FLOAT


def main(path):
    W = numpy_helper.from_array(
        np.arange(12, dtype=np.float32).reshape(4, 3) / 8, "W")
    B = numpy_helper.from_array(np.array([0.5, -1, 2], np.float16), "B")
    Q = helper.make_tensor("Q", TensorProto.INT4, [5], [1, -2, 3, 4, -5])
    M = numpy_helper.from_array(np.array([True, False, True]), "M")
    K = numpy_helper.from_array(np.array([7, -8, 9], np.int8), "K")
    t1 = numpy_helper.from_array(np.array([1, 2], np.int64), "t1")
    t2 = numpy_helper.from_array(np.array(3.25, np.float64), "t2")

    # inner If (depth 2): captures r1 (depth 1) and bf (main graph)
    then2 = helper.make_graph(
        [helper.make_node("Mul", ["r1", "bf"], ["s2"], name="inner_mul")],
        "then2", [], [helper.make_tensor_value_info("s2", F, None)])
    else2 = helper.make_graph(
        [helper.make_node("Identity", ["r1"], ["s3"], name="inner_id")],
        "else2", [], [helper.make_tensor_value_info("s3", F, None)])
    then1 = helper.make_graph(
        [helper.make_node("Relu", ["lr"], ["r1"], name="then_relu"),
         helper.make_node("If", ["cond"], ["t_out"], name="inner_if",
                          then_branch=then2, else_branch=else2)],
        "then1", [], [helper.make_tensor_value_info("t_out", F, None)])
    else1 = helper.make_graph(
        [helper.make_node("Neg", ["lr"], ["e_out"], name="else_neg")],
        "else1", [], [helper.make_tensor_value_info("e_out", F, None)])
    # a graph-list attribute the op ignores (no captures)
    gl = helper.make_graph(
        [helper.make_node("Identity", ["gi"], ["go"])], "listed",
        [helper.make_tensor_value_info("gi", F, [1])],
        [helper.make_tensor_value_info("go", F, [1])])

    lrelu = helper.make_node("LeakyRelu", ["c"], ["lr"], name="lrelu",
                             alpha=0.125)
    lrelu.attribute.extend([
        helper.make_attribute("kiln_floats", [1.5, -2.5]),
        helper.make_attribute("kiln_ints", [1, -2, 3]),
        helper.make_attribute("kiln_strings", ["ab", "c"]),
        helper.make_attribute("kiln_bytes", b"he\x00llo"),
        helper.make_attribute("kiln_tensors", [t1, t2]),
        helper.make_attribute("kiln_graphs", [gl]),
    ])
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["mm"], name="mm"),
        helper.make_node("Cast", ["B"], ["bf"], name="cast", to=F),
        helper.make_node("Add", ["mm", "bf"], ["a"], name="add"),
        helper.make_node("Constant", [], ["maxv"], name="const",
                         value=numpy_helper.from_array(np.array(6, np.float32))),
        helper.make_node("Clip", ["a", "", "maxv"], ["c"], name="clip"),
        lrelu,
        helper.make_node("If", ["cond"], ["y"], name="outer_if",
                         then_branch=then1, else_branch=else1),
        helper.make_node("Shape", ["lr"], ["shp"], name="shape"),
        helper.make_node("Reshape", ["y", "shp"], ["z"], name="reshape"),
    ]
    g = helper.make_graph(
        nodes, "engine_format",
        [helper.make_tensor_value_info("X", F, ["N", 4]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", F, ["N", 3]),
         helper.make_tensor_value_info("a", F, ["N", 3])],
        initializer=[W, B, Q, M, K])
    m = helper.make_model(g, producer_name="kiln-tests",
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    save(m, path)


if __name__ == "__main__":
    main(sys.argv[1])
