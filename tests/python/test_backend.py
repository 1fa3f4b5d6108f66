"""kiln.backend through onnx's own backend test machinery."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import onnx.backend.test  # noqa: E402

import kiln.backend  # noqa: E402

# A sample of node tests run by onnx.backend.test's own runner; the whole
# node suite runs through kiln.backend in tests/python/run_backend_node_tests.py.
SAMPLE = {"test_%s_cpu" % n for n in (
    "relu", "add_bcast", "conv_with_strides_padding", "matmul_2d", "cast_FLOAT_to_FLOAT16",
    "softmax_axis_1", "and2d", "gather_0", "reduce_mean_default_axes_keepdims_example")}
backend_test = onnx.backend.test.BackendTest(kiln.backend, __name__)
OnnxBackendNodeSample = backend_test.test_cases["OnnxBackendNodeModelTest"]
# The runner makes a method per case and skips the ones not included; keep
# only the sample so the report is not thousands of skips.
for attr in [a for a in vars(OnnxBackendNodeSample) if a.startswith("test_")]:
    if attr not in SAMPLE:
        delattr(OnnxBackendNodeSample, attr)
assert len([a for a in vars(OnnxBackendNodeSample) if a.startswith("test_")]) == len(SAMPLE)


def test_supports_device():
    assert kiln.backend.supports_device("CPU")
    # CUDA only where this kiln has the backend and the machine a GPU
    import glob
    if not glob.glob("/dev/nvidia[0-9]*"):
        assert not kiln.backend.supports_device("CUDA")
    assert not kiln.backend.supports_device("TPU")


def test_run_node():
    node = onnx.helper.make_node("Add", ["a", "b"], ["c"])
    a = np.arange(4, dtype=np.float32)
    (c,) = kiln.backend.run_node(node, [a, a])
    np.testing.assert_array_equal(c, 2 * a)


def test_run_model_dynamic_shapes():
    from conftest import TINY_CNN
    m = onnx.load(TINY_CNN)
    rep = kiln.backend.prepare(m)
    for b in (1, 2):
        (y,) = rep.run([np.zeros((b, 3, 32, 32), np.float32)])
        assert y.shape == (b, 10)
