"""CUDA engines from Python with device arrays (DLPack), on a GPU machine:
torch CUDA tensors in, kiln.DeviceArray out (torch.from_dlpack without a
copy), equal to the host path and to torch; a caller's stream; refusals.
Run by tests/gpu/run.sh with the extension built with the CUDA backend on
PYTHONPATH. Prints `N passed, M failed`."""
import os
import sys
import tempfile
import traceback

import numpy as np
import torch

import kiln
import kiln.backend  # noqa: E402  (the submodule: test_session_cuda_provider)

passed = failed = 0


def case(fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok  ", fn.__name__)
    except Exception:
        failed += 1
        print("FAIL", fn.__name__)
        traceback.print_exc()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x, bias):
        y = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.fc(y) + bias, y * 2


torch.manual_seed(0)
net = Net().eval()
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "net.onnx")
x0 = torch.randn(2, 3, 16, 16)
b0 = torch.randn(2, 5)
torch.onnx.export(net, (x0, b0), path, input_names=["x", "bias"], output_names=["y", "feat"],
                  dynamic_axes={"x": {0: "n"}, "bias": {0: "n"}}, opset_version=17, dynamo=False)
engine = kiln.build(path, device="cuda",
                    profiles=[{"x": ((1, 3, 16, 16), (2, 3, 16, 16), (8, 3, 16, 16)),
                               "bias": ((1, 5), (2, 5), (8, 5))}])
with torch.no_grad():
    want_y, want_f = net(x0, b0)


def test_device_in_device_out():
    ctx = engine.create_context()
    out = ctx.run({"x": x0.cuda(), "bias": b0.cuda()})
    assert isinstance(out["y"], kiln.DeviceArray), type(out["y"])
    assert out["y"].shape == (2, 5) and out["y"].dtype == np.float32
    y = torch.from_dlpack(out["y"])
    assert y.is_cuda and y.data_ptr() == out["y"].data_ptr
    np.testing.assert_allclose(y.cpu().numpy(), want_y.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["feat"].numpy(), want_f.numpy(), rtol=1e-4, atol=1e-5)
    host = ctx.run({"x": x0.numpy(), "bias": b0.numpy()})
    np.testing.assert_array_equal(host["y"], y.cpu().numpy())


def test_outputs_outlive_context_and_array():
    ctx = engine.create_context()
    out = ctx.run({"x": x0.cuda(), "bias": b0.cuda()}, outputs=["y"])
    assert list(out) == ["y"]
    y = torch.from_dlpack(out["y"])
    del out, ctx
    torch.cuda.synchronize()
    np.testing.assert_allclose(y.cpu().numpy(), want_y.numpy(), rtol=1e-4, atol=1e-5)


def test_caller_stream_and_shapes():
    ctx = engine.create_context()
    s = torch.cuda.Stream()
    for n in (1, 5, 8):
        x = torch.randn(n, 3, 16, 16)
        b = torch.randn(n, 5)
        with torch.cuda.stream(s):
            xd, bd = x.cuda(), b.cuda()
            out = ctx.run({"x": xd, "bias": bd}, stream=s)
            y = torch.from_dlpack(out["y"])
        s.synchronize()
        with torch.no_grad():
            w = net(x, b)[0]
        np.testing.assert_allclose(y.cpu().numpy(), w.numpy(), rtol=1e-4, atol=1e-5)


def test_refusals():
    ctx = engine.create_context()
    for bad, msg in (({"x": x0.cuda().half(), "bias": b0.cuda()}, "float32"),
                     ({"x": x0.cuda()[:, :, :, ::2], "bias": b0.cuda()}, "contiguous|shape|range"),
                     ({"x": x0.cuda(), "bias": b0.numpy()}, "all inputs"),
                     ({"x": torch.randn(9, 3, 16, 16).cuda(), "bias": torch.randn(9, 5).cuda()},
                      "profile")):
        try:
            ctx.run(bad)
        except (kiln.KilnError, TypeError, ValueError) as ex:
            import re
            assert re.search(msg, str(ex)), (msg, str(ex))
        else:
            raise AssertionError("accepted: %s" % msg)
    out = ctx.run({"x": x0.cuda(), "bias": b0.cuda()})  # still works
    np.testing.assert_allclose(out["y"].numpy(), want_y.numpy(), rtol=1e-4, atol=1e-5)


def test_session_cuda_provider():
    assert kiln.backend.supports_device("CUDA")
    s = kiln.InferenceSession(path, providers=[("TensorrtExecutionProvider",
                                                {"trt_fp16_enable": True})], kiln_cache=False)
    assert s.get_providers() == ["TensorrtExecutionProvider"], s.get_providers()
    y = s.run(["y"], {"x": x0.numpy(), "bias": b0.numpy()})[0]
    rel = np.linalg.norm(y - want_y.numpy()) / np.linalg.norm(want_y.numpy())
    assert rel < 1e-2, rel
    assert any(l.precision == "fp16" for l in s._set._engine(s._set._static_key or
               tuple(sorted({"x": (2, 3, 16, 16), "bias": (2, 5)}.items()))).layers)


for t in (test_session_cuda_provider, test_device_in_device_out, test_outputs_outlive_context_and_array,
          test_caller_stream_and_shapes, test_refusals):
    case(t)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
