"""onnx_builders.py: small ONNX graph-building helpers shared by the scripts
that write the optimizer test models (passes/make_pass_models.py,
patterns/make_pattern_models.py)."""
import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper


def weights(rng):
    """w(name, *shape, scale=0.5, dtype=np.float32): a random normal
    initializer drawn from rng (draw order decides the model bytes)."""
    def w(name, *shape, scale=0.5, dtype=np.float32):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(dtype), name)
    return w


def c(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.array(arr, dtype=dtype), name)


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or outs[0], **attrs)


def model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    checker.check_model(m)
    return m
