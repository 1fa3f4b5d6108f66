#!/usr/bin/env python3
"""Writes examples/tiny_cnn.onnx: a small image classifier (Conv+BN+Relu
blocks with a residual connection, pooling, Gemm, Softmax) with a dynamic
batch dimension and fixed random weights. The committed file was made by
this script; rerun it to regenerate."""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def const(name, arr):
    return numpy_helper.from_array(arr.astype(np.float32), name)


def conv_bn_relu(x, cin, cout, name, inits, nodes, relu=True):
    w = const(name + "_w", rng.normal(0, (2.0 / (cin * 9)) ** 0.5, (cout, cin, 3, 3)))
    b = const(name + "_b", rng.normal(0, 0.1, cout))
    inits += [w, b]
    nodes.append(helper.make_node("Conv", [x, w.name, b.name], [name + "_c"], name=name,
                                  pads=[1, 1, 1, 1], kernel_shape=[3, 3]))
    for p, arr in (("scale", rng.uniform(0.5, 1.5, cout)), ("bias", rng.normal(0, 0.1, cout)),
                   ("mean", rng.normal(0, 0.1, cout)), ("var", rng.uniform(0.5, 1.5, cout))):
        inits.append(const(name + "_bn_" + p, arr))
    nodes.append(helper.make_node(
        "BatchNormalization",
        [name + "_c"] + [name + "_bn_" + p for p in ("scale", "bias", "mean", "var")],
        [name + "_n"], name=name + "_bn", epsilon=1e-5))
    if not relu:
        return name + "_n"
    nodes.append(helper.make_node("Relu", [name + "_n"], [name + "_r"], name=name + "_relu"))
    return name + "_r"


def main():
    inits, nodes = [], []
    x = conv_bn_relu("image", 3, 16, "stem", inits, nodes)
    y = conv_bn_relu(x, 16, 16, "block_a", inits, nodes)
    y = conv_bn_relu(y, 16, 16, "block_b", inits, nodes, relu=False)
    nodes.append(helper.make_node("Add", [y, x], ["res"], name="residual"))
    nodes.append(helper.make_node("Relu", ["res"], ["res_r"], name="residual_relu"))
    nodes.append(helper.make_node("MaxPool", ["res_r"], ["pool"], name="pool",
                                  kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    inits.append(const("fc_w", rng.normal(0, 0.3, (10, 16))))
    inits.append(const("fc_b", rng.normal(0, 0.1, 10)))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc",
                                  transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, producer_name="kiln-examples",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_cnn.onnx")
    onnx.save(model, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
