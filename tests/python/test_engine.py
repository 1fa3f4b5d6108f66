"""kiln.build, Engine and Context: results, metadata, dtypes, errors, threads."""
import os
import threading
import time

import numpy as np
import pytest

import kiln
from conftest import TINY_CNN, one_node_model


def test_version():
    assert kiln.__version__ == kiln._kiln.version()
    assert kiln.__version__.count(".") == 2


def test_run_matches_onnxruntime(tiny_engine, ort_tiny, image):
    out = tiny_engine.create_context().run({"image": image})
    ref = ort_tiny.run(None, {"image": image})[0]
    assert out["probs"].shape == (2, 10) and out["probs"].dtype == np.float32
    np.testing.assert_allclose(out["probs"], ref, rtol=1e-4, atol=1e-6)


def test_metadata(tiny_engine):
    (i,) = tiny_engine.inputs
    (o,) = tiny_engine.outputs
    assert (i.name, i.dtype, i.kiln_dtype, i.shape) == ("image", np.float32, "float32", ("batch", 3, 32, 32))
    assert (o.name, o.shape) == ("probs", ("batch", 10))
    assert tiny_engine.profiles == [{"image": ((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))}]
    layers = tiny_engine.layers
    assert layers and all(l.tactic and l.op_type for l in layers)
    # The Conv+BN+ReLU chains fuse: fewer layers than ONNX nodes, and the
    # fused layers say which nodes they came from.
    assert len(layers) < 15 and any(len(l.fused_from) > 1 for l in layers)
    d = tiny_engine.describe()
    assert isinstance(d, dict) and len(d["layers"]) == len(layers)
    assert tiny_engine.activation_bytes(0) > 0


def test_save_load_roundtrip(tiny_engine, image, tmp_path):
    p = tmp_path / "tiny.kiln"
    tiny_engine.save(p)
    want = tiny_engine.create_context().run({"image": image})["probs"]
    for e in (kiln.Engine.load(p), kiln.Engine.load(str(p)), kiln.Engine.load(p.read_bytes())):
        np.testing.assert_array_equal(e.create_context().run({"image": image})["probs"], want)
    # Saving an engine loaded from a file writes the same bytes.
    kiln.Engine.load(p).save(tmp_path / "again.kiln")
    assert (tmp_path / "again.kiln").read_bytes() == p.read_bytes()


def test_build_from_bytes_and_modelproto(image):
    onnx = pytest.importorskip("onnx")
    data = open(TINY_CNN, "rb").read()
    a = kiln.build(data, shapes={"image": (2, 3, 32, 32)}, opt_level=0)
    b = kiln.build(onnx.load(TINY_CNN), shapes={"image": (2, 3, 32, 32)}, opt_level=0)
    ra = a.create_context().run({"image": image})["probs"]
    rb = b.create_context().run({"image": image})["probs"]
    np.testing.assert_array_equal(ra, rb)


def test_noncontiguous_and_list_inputs(tiny_engine, image):
    ctx = tiny_engine.create_context()
    want = ctx.run({"image": image})["probs"]
    big = np.zeros((2, 3, 32, 64), np.float32)
    big[..., ::2] = image
    view = big[..., ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(ctx.run({"image": view})["probs"], want)
    np.testing.assert_array_equal(ctx.run({"image": image.tolist()})["probs"], want)


def test_outputs_are_owned_and_writable(tiny_engine, image):
    ctx = tiny_engine.create_context()
    a = ctx.run({"image": image})["probs"]
    b = ctx.run({"image": image[:1]})["probs"]
    assert a.shape == (2, 10) and b.shape == (1, 10)
    a[:] = 0  # the next run must not see or overwrite it
    c = ctx.run({"image": image})["probs"]
    assert c.sum() > 1.9 and a.sum() == 0


def test_selected_outputs(tiny_engine, image):
    out = tiny_engine.create_context().run({"image": image}, outputs=["probs"])
    assert list(out) == ["probs"]
    with pytest.raises(kiln.InvalidArgumentError, match="nope"):
        tiny_engine.create_context().run({"image": image}, outputs=["nope"])


DTYPES = [  # (onnx dtype, numpy dtype, op)
    (1, np.float32, "Identity"), (10, np.float16, "Identity"), (11, np.float64, "Identity"),
    (2, np.uint8, "Identity"), (3, np.int8, "Identity"), (4, np.uint16, "Identity"),
    (5, np.int16, "Identity"), (6, np.int32, "Identity"), (7, np.int64, "Identity"),
    (12, np.uint32, "Identity"), (13, np.uint64, "Identity"), (9, np.bool_, "Not"),
    (10, np.float16, "Neg"), (9, np.bool_, "Identity"),
]


@pytest.mark.parametrize("onnx_type,np_type,op", DTYPES,
                         ids=["%s-%s" % (np.dtype(d[1]).name, d[2]) for d in DTYPES])
def test_dtypes(onnx_type, np_type, op):
    e = kiln.build(one_node_model(op, onnx_type, [3, 5]), opt_level=0)
    assert e.inputs[0].dtype == np.dtype(np_type)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 5)) * 50).astype(np_type)
    y = e.create_context().run({"x0": x})["y"]
    want = {"Identity": lambda v: v, "Not": np.logical_not, "Neg": np.negative}[op](x)
    assert y.dtype == np.dtype(np_type)
    np.testing.assert_array_equal(y, want)


def test_bfloat16_when_ml_dtypes_present():
    ml = pytest.importorskip("ml_dtypes")
    e = kiln.build(one_node_model("Identity", 16, [4]), opt_level=0)
    x = np.array([1.5, -2, 3.25, 0], dtype=ml.bfloat16)
    np.testing.assert_array_equal(e.create_context().run({"x0": x})["y"], x)


@pytest.mark.parametrize("code,name", [(22, "int4"), (21, "uint4"), (23, "float4_e2m1fn")])
def test_4bit_types_pack_and_unpack(code, name):
    ml = pytest.importorskip("ml_dtypes")
    t = getattr(ml, name)
    # Odd length: the last byte Kiln sees is half used.
    x = np.array([1, 2, 3, 0, 1], np.float32).astype(t)
    e = kiln.build(one_node_model("Identity", code, [5]), opt_level=0)
    y = e.create_context().run({"x0": x})["y"]
    assert y.dtype == np.dtype(t) and y.shape == (5,)
    np.testing.assert_array_equal(y.astype(np.float32), x.astype(np.float32))


def test_errors_on_bad_input(tiny_engine, image):
    ctx = tiny_engine.create_context()
    with pytest.raises(kiln.InvalidArgumentError, match="float64"):
        ctx.run({"image": image.astype(np.float64)})
    with pytest.raises(kiln.InvalidArgumentError, match="no input 'img'"):
        ctx.run({"img": image})
    with pytest.raises(kiln.InvalidArgumentError, match="not bound|image"):
        ctx.run({})
    with pytest.raises(kiln.InvalidArgumentError, match="outside optimization profile"):
        ctx.run({"image": np.zeros((5, 3, 32, 32), np.float32)})
    with pytest.raises(kiln.InvalidArgumentError):
        ctx.run({"image": np.zeros((2, 3, 32), np.float32)})
    with pytest.raises(kiln.InvalidArgumentError):
        ctx.set_profile(3)
    # The context still works after every refusal.
    assert ctx.run({"image": image})["probs"].shape == (2, 10)


def test_error_classes_carry_status():
    with pytest.raises(kiln.InvalidModelError) as ei:
        kiln.build(b"definitely not an onnx model")
    e = ei.value
    assert isinstance(e, kiln.KilnError) and e.status == 2 and e.status_name == "KILN_INVALID_MODEL"
    assert e.message and e.message in str(e)
    with pytest.raises(kiln.KilnIOError):
        kiln.build("/nonexistent/model.onnx")
    assert issubclass(kiln.InvalidArgumentError, ValueError)


def test_damaged_engine_is_refused(tiny_engine, tmp_path):
    blob = bytearray(tiny_engine.serialize())
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(kiln.CorruptEngineError):
        kiln.Engine.load(bytes(blob))
    with pytest.raises(kiln.CorruptEngineError):
        kiln.Engine.load(bytes(blob[:100]))


def test_build_options_are_checked():
    with pytest.raises(kiln.InvalidArgumentError, match="precision"):
        kiln.build(TINY_CNN, precision="fp7")
    with pytest.raises(kiln.InvalidArgumentError, match="device"):
        kiln.build(TINY_CNN, device="tpu")
    with pytest.raises(kiln.InvalidArgumentError, match="not both"):
        kiln.build(TINY_CNN, shapes={}, profiles=[])
    with pytest.raises(kiln.KilnError):  # a symbolic batch with no profile
        kiln.build(TINY_CNN, opt_level=0, log="error")
    with pytest.raises(TypeError):
        kiln.build(12345)


def test_log_callback_and_timing_cache(tmp_path):
    seen = []
    cache = tmp_path / "t.cache"
    kiln.build(TINY_CNN, shapes={"image": (1, 3, 32, 32)}, opt_level=1, timing_cache=cache,
               log=lambda sev, msg: seen.append((sev, msg)))
    assert seen and all(s in ("error", "warning", "info", "verbose") for s, _ in seen)
    assert cache.exists() and cache.stat().st_size > 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_log_callback_exception_does_not_break_build():
    def bad(sev, msg):
        raise RuntimeError("boom")
    e = kiln.build(TINY_CNN, shapes={"image": (1, 3, 32, 32)}, opt_level=0, log=bad)
    assert e.outputs[0].name == "probs"


def test_threads_with_own_contexts(tiny_engine, image):
    want = tiny_engine.create_context().run({"image": image})["probs"]
    errors = []

    def worker():
        ctx = tiny_engine.create_context()
        for _ in range(20):
            if not np.array_equal(ctx.run({"image": image})["probs"], want):
                errors.append("mismatch")
    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def _matmul_chain(n, k):
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(k):
        w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w%d" % i))
        nodes.append(helper.make_node("MatMul", [prev, "w%d" % i], ["t%d" % i], name="mm%d" % i))
        prev = "t%d" % i
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [n, n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString(), prev


def test_gil_released_while_running():
    pytest.importorskip("onnx")
    model, out = _matmul_chain(512, 16)
    e = kiln.build(model, opt_level=0)
    ctx = e.create_context()
    x = np.ones((512, 512), np.float32)
    t0 = time.perf_counter()
    ctx.run({"x": x})
    one = time.perf_counter() - t0
    done = threading.Event()

    def runner():
        for _ in range(3):
            ctx.run({"x": x})
        done.set()
    th = threading.Thread(target=runner)
    ticks, last, gap = 0, time.perf_counter(), 0.0
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
        ticks += 1
    th.join()
    # With the GIL held for a whole run, this loop would stall for `one`.
    assert gap < max(0.6 * one, 0.02), (gap, one)


def test_same_context_from_two_threads_never_crashes():
    pytest.importorskip("onnx")
    model, out = _matmul_chain(256, 8)
    ctx = kiln.build(model, opt_level=0).create_context()
    x = np.ones((256, 256), np.float32)
    results, refused = [], []

    def worker():
        for _ in range(5):
            try:
                results.append(ctx.run({"x": x})[out])
            except RuntimeError as exc:
                refused.append(str(exc))
    ts = [threading.Thread(target=worker) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results and all(np.array_equal(r, results[0]) for r in results)
    assert all("another thread" in m for m in refused)


def test_num_threads():
    old = kiln.get_num_threads()
    try:
        kiln.set_num_threads(2)
        assert kiln.get_num_threads() == 2
        with pytest.raises(ValueError):
            kiln.set_num_threads(-1)
    finally:
        kiln.set_num_threads(old)


def test_load_pb(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    a = np.arange(6, dtype=np.float16).reshape(2, 3)
    p = tmp_path / "t.pb"
    p.write_bytes(numpy_helper.from_array(a, "t").SerializeToString())
    name, b = kiln.load_pb(p)
    assert name == "t" and b.dtype == np.float16
    np.testing.assert_array_equal(a, b)


def test_dlpack_host_tensor_and_device_refusal(tiny_engine, image):
    ctx = tiny_engine.create_context()
    want = ctx.run({"image": image})["probs"]

    class HostTensor:  # a minimal DLPack producer on the CPU
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    np.testing.assert_array_equal(ctx.run({"image": HostTensor(image)})["probs"], want)

    class DeviceTensor(HostTensor):
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA

    # A CUDA tensor given to a CPU engine is refused before its memory is
    # touched, with what to do.
    with pytest.raises(kiln.UnsupportedError, match=r"need a CUDA engine.*tensor\.cpu\(\)"):
        ctx.run({"image": DeviceTensor(image)})

    class OtherDevice(HostTensor):
        def __dlpack_device__(self):
            return (8, 0)  # kDLMetal

    with pytest.raises(kiln.UnsupportedError, match="does not drive"):
        ctx.run({"image": OtherDevice(image)})
    with pytest.raises(TypeError, match="Context.run"):
        kiln.DeviceArray()
    # The context still works after the refusals.
    np.testing.assert_array_equal(ctx.run({"image": image})["probs"], want)
