"""make_two_inputs.py: writes two_inputs.onnx, a model with two batched
inputs of different row sizes and dtypes for the batcher's staging tests:
a [N,3,H,W] float32, b [N,4] int32 -> y [N,7] float32 =
concat(GlobalAveragePool(a) flattened, float(b) * 0.5). Rows do not interact.
Run: python3 tests/data/make_two_inputs.py tests/data/two_inputs.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(path):
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    g = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["a"], ["p"]),
         helper.make_node("Flatten", ["p"], ["pf"], axis=1),
         helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["bf", "half"], ["bh"]),
         helper.make_node("Concat", ["pf", "bh"], ["y"], axis=1)],
        "two_inputs",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, "H", "W"]),
         helper.make_tensor_value_info("b", TensorProto.INT32, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])],
        [half])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


if __name__ == "__main__":
    main(sys.argv[1])
