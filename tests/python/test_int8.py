"""kiln.build with INT8 calibration and an accuracy budget from Python (the
same builder options as `kiln build --int8 --calib ... --accuracy-budget`)."""
import os

import numpy as np
import pytest

import kiln
from conftest import TINY_CNN

PROFILE = [{"image": ((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))}]


def _sets(tmp, name, n, seed):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    x = np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)
    np.save(os.path.join(d, "image.npy"), x)
    return d


def test_int8_calibration_and_cache(tmp_path):
    tmp = str(tmp_path)
    calib = _sets(tmp, "calib", 8, 1)
    cache = os.path.join(tmp, "calib.cache")
    e = kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "int8"), calib_data=calib,
                   calib_method="minmax", calib_cache=cache, opt_level=0)
    precs = [l.precision for l in e.layers]
    assert "int8" in precs, precs
    assert os.path.exists(cache) and open(cache).read().startswith("kiln-calibration-cache")
    f = kiln.build(TINY_CNN, profiles=PROFILE, opt_level=0)
    x = np.random.default_rng(9).standard_normal((2, 3, 32, 32)).astype(np.float32)
    a = e.create_context().run({"image": x})["probs"]
    b = f.create_context().run({"image": x})["probs"]
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.1
    # From the cache alone: no calibration data needed, same engine bytes.
    g = kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "int8"), calib_cache=cache,
                   calib_method="minmax", opt_level=0)
    assert g.serialize() == e.serialize()


def test_fp8_calibration(tmp_path):
    """precision "fp8": E4M3 Q/DQ with minmax by default; entropy refused;
    not together with "int8"."""
    tmp = str(tmp_path)
    calib = _sets(tmp, "calib", 8, 1)
    cache = os.path.join(tmp, "fp8.cache")
    e = kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "fp8"), calib_data=calib,
                   calib_cache=cache, opt_level=0)
    precs = [l.precision for l in e.layers]
    assert "fp8" in precs and "int8" not in precs, precs
    assert "method minmax e4m3" in open(cache).read()
    f = kiln.build(TINY_CNN, profiles=PROFILE, opt_level=0)
    x = np.random.default_rng(9).standard_normal((2, 3, 32, 32)).astype(np.float32)
    a = e.create_context().run({"image": x})["probs"]
    b = f.create_context().run({"image": x})["probs"]
    assert 0 < np.linalg.norm(a - b) / np.linalg.norm(b) < 0.1
    with pytest.raises(kiln.InvalidArgumentError, match="entropy"):
        kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "fp8"), calib_data=calib,
                   calib_method="entropy", opt_level=0)
    with pytest.raises(kiln.InvalidArgumentError, match="exclude"):
        kiln.build(TINY_CNN, profiles=PROFILE, precision=("int8", "fp8"), calib_data=calib,
                   calib_method="minmax", opt_level=0)


def test_int8_accuracy_budget(tmp_path):
    tmp = str(tmp_path)
    calib, val = _sets(tmp, "calib", 8, 1), _sets(tmp, "val", 4, 2)
    e = kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "int8"), calib_data=calib,
                   accuracy_budget="rel-l2:0", validate_data=val, opt_level=0)
    # A zero budget leaves nothing quantized that changes the outputs.
    f = kiln.build(TINY_CNN, profiles=PROFILE, opt_level=0)
    x = np.load(os.path.join(val, "image.npy"))[:2]
    a = e.create_context().run({"image": x})["probs"]
    b = f.create_context().run({"image": x})["probs"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw, msg", [
    ({"calib_method": "kl"}, "calib_method"),
    ({"accuracy_budget": "top5:1%"}, "METRIC:VALUE"),
    ({"accuracy_budget": "rel-l2:x", "validate_data": "."}, "not a number"),
    ({"accuracy_budget": "rel-l2:1%", "validate_data": "."}, "percentage"),
    ({"accuracy_budget": "top1:1%"}, "validate_data"),
])
def test_int8_bad_options(tmp_path, kw, msg):
    calib = _sets(str(tmp_path), "calib", 2, 1)
    with pytest.raises(kiln.InvalidArgumentError, match=msg):
        kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "int8"), calib_data=calib,
                   opt_level=0, **kw)


def test_int8_missing_calibration_folder(tmp_path):
    with pytest.raises(kiln.KilnError, match="nope"):
        kiln.build(TINY_CNN, profiles=PROFILE, precision=("fp32", "int8"),
                   calib_data=os.path.join(str(tmp_path), "nope"), opt_level=0)
