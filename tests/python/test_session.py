"""kiln.InferenceSession against onnxruntime.InferenceSession."""
import os

import numpy as np
import pytest

import kiln
from conftest import TINY_CNN, one_node_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(d))
    return d


def test_same_interface_and_results(cache_dir):
    ks = kiln.InferenceSession(TINY_CNN, providers=["CPUExecutionProvider"])
    os_ = ort.InferenceSession(TINY_CNN, providers=["CPUExecutionProvider"])
    for a, b in zip(ks.get_inputs() + ks.get_outputs(), os_.get_inputs() + os_.get_outputs()):
        assert (a.name, a.type, a.shape) == (b.name, b.type, b.shape)
    rng = np.random.default_rng(0)
    for batch in (1, 3, 1):  # a new batch size builds a second engine
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        got = ks.run(None, {"image": x})
        want = os_.run(None, {"image": x})
        assert len(got) == 1
        np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-6)
    assert len(list(cache_dir.glob("*.kiln"))) == 2


def test_engine_cache_is_reused_and_repaired(cache_dir):
    x = np.zeros((2, 3, 32, 32), np.float32)
    want = kiln.InferenceSession(TINY_CNN).run(["probs"], {"image": x})[0]
    (f,) = cache_dir.glob("*.kiln")
    stamp = f.stat().st_mtime_ns
    np.testing.assert_array_equal(kiln.InferenceSession(TINY_CNN).run(None, {"image": x})[0], want)
    assert f.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    f.write_bytes(b"KILN" + b"\0" * 64)   # damaged: rebuilt and replaced
    # (a rebuild may time a different tactic: equal up to rounding)
    np.testing.assert_allclose(kiln.InferenceSession(TINY_CNN).run(None, {"image": x})[0], want,
                               rtol=1e-5, atol=1e-7)
    assert f.stat().st_size > 100


def test_cache_key_depends_on_model(cache_dir):
    a = one_node_model("Relu", 1, [2, 2])
    b = one_node_model("Neg", 1, [2, 2])
    x = np.array([[1, -2], [3, -4]], np.float32)
    assert kiln.InferenceSession(a).run(None, {"x0": x})[0].tolist() == [[1, 0], [3, 0]]
    assert kiln.InferenceSession(b).run(None, {"x0": x})[0].tolist() == [[-1, 2], [-3, 4]]
    assert len(list(cache_dir.glob("*.kiln"))) == 2


def test_no_disk_cache(cache_dir):
    s = kiln.InferenceSession(one_node_model("Relu", 1, [2]), kiln_cache=False)
    s.run(None, {"x0": np.ones(2, np.float32)})
    assert not cache_dir.exists()


def test_explicit_profiles(cache_dir):
    s = kiln.InferenceSession(TINY_CNN, kiln_profiles=[
        {"image": ((1, 3, 32, 32), (2, 3, 32, 32), (8, 3, 32, 32))}])
    for b in (1, 5, 8):
        assert s.run(None, {"image": np.zeros((b, 3, 32, 32), np.float32)})[0].shape == (b, 10)
    assert len(list(cache_dir.glob("*.kiln"))) == 1
    with pytest.raises(kiln.InvalidArgumentError, match="outside"):
        s.run(None, {"image": np.zeros((9, 3, 32, 32), np.float32)})


def test_errors(cache_dir):
    s = kiln.InferenceSession(TINY_CNN)
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(kiln.InvalidArgumentError, match="no input"):
        s.run(None, {"images": x})
    with pytest.raises(kiln.InvalidArgumentError, match="no output"):
        s.run(["logits"], {"image": x})
    with pytest.raises(kiln.InvalidArgumentError, match="float64"):
        s.run(None, {"image": x.astype(np.float64)})
    with pytest.raises(kiln.InvalidModelError):
        kiln.InferenceSession(b"\x08\x01garbage")


def test_session_options_threads(cache_dir):
    so = kiln.SessionOptions()
    so.intra_op_num_threads = 1
    s = kiln.InferenceSession(TINY_CNN, sess_options=so)
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert s.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 10)


def test_cuda_provider_falls_back_to_cpu_with_a_warning(cache_dir):
    """Without a usable CUDA backend (this machine), a CUDA provider request
    runs on the CPU with a warning, as onnxruntime does; with one, it builds
    a CUDA engine (tests/gpu covers that)."""
    import warnings
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    want = kiln.InferenceSession(TINY_CNN).run(None, {"image": x})[0]
    if kiln.backend.supports_device("CUDA"):
        pytest.skip("this machine has a usable GPU")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = kiln.InferenceSession(TINY_CNN, providers=[
            ("TensorrtExecutionProvider", {"trt_fp16_enable": True}), "CPUExecutionProvider"])
        got = s.run(None, {"image": x})[0]
    assert any("running on the CPU" in str(m.message) for m in w), [str(m.message) for m in w]
    assert s.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
