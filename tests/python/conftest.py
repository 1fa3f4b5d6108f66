"""Shared fixtures: small ONNX models made on the fly with onnx.helper."""
import os

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY_CNN = os.path.join(ROOT, "examples", "tiny_cnn.onnx")


def one_node_model(op, dtype, shape, n_inputs=1, out_dtype=None, opset=17, **attrs):
    """A model with one node `op` over inputs x0..xN of ONNX dtype `dtype`."""
    from onnx import helper
    ins = [helper.make_tensor_value_info("x%d" % i, dtype, shape) for i in range(n_inputs)]
    out = helper.make_tensor_value_info("y", out_dtype or dtype, shape)
    node = helper.make_node(op, ["x%d" % i for i in range(n_inputs)], ["y"], name=op.lower(), **attrs)
    g = helper.make_graph([node], "g", ins, [out])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.fixture(scope="session")
def tiny_engine():
    import kiln
    return kiln.build(TINY_CNN, profiles=[{"image": ((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))}],
                      opt_level=0)


@pytest.fixture(scope="session")
def ort_tiny():
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(TINY_CNN, providers=["CPUExecutionProvider"])


@pytest.fixture
def image():
    return np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
