"""kiln compare: a planted weight error is caught and bisected to its layer."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_CNN

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import numpy_helper  # noqa: E402

import kiln  # noqa: E402
from kiln import compare  # noqa: E402


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """tiny_cnn with one weight of block_a's convolution changed."""
    m = onnx.load(TINY_CNN)
    for i, t in enumerate(m.graph.initializer):
        if t.name == "block_a_w":
            w = numpy_helper.to_array(t).copy()
            w[3, 5, 1, 1] += 0.5
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, t.name))
    p = tmp_path_factory.mktemp("planted") / "planted.onnx"
    onnx.save(m, str(p))
    return str(p)


def run(args, capsys):
    rc = compare.main(args)
    return rc, capsys.readouterr().out


def test_same_model_passes(capsys):
    rc, out = run([TINY_CNN, "--shapes", "image:2x3x32x32"], capsys)
    assert rc == 0, out
    assert "PASSED" in out and "max abs" in out and "passes with atol >=" in out


def test_planted_error_fails_and_bisects(planted, capsys):
    rc, out = run([TINY_CNN, "--kiln-model", planted, "--bisect"], capsys)
    assert rc == 1, out
    assert "FAILED" in out
    assert "first diverging layer: node 3 'block_a' (Conv)" in out


def test_engine_file_against_onnxruntime(planted, tmp_path, capsys):
    good = tmp_path / "good.kiln"
    bad = tmp_path / "bad.kiln"
    kiln.build(TINY_CNN, shapes={"image": (1, 3, 32, 32)}, opt_level=0).save(good)
    kiln.build(planted, shapes={"image": (1, 3, 32, 32)}, opt_level=0).save(bad)
    assert run([TINY_CNN, "--engine", str(good)], capsys)[0] == 0
    rc, out = run([TINY_CNN, "--engine", str(bad)], capsys)
    assert rc == 1 and "FAILED" in out
    # Two engines, no onnxruntime.
    rc, out = run(["--engine", str(bad), "--engine2", str(good)], capsys)
    assert rc == 1 and "FAILED" in out
    # A loose enough tolerance passes, and the reported minimum is that bound.
    line = [l for l in out.splitlines() if "passes with atol" in l][0]
    need = float(line.split(">=")[1].split()[0])
    assert run(["--engine", str(bad), "--engine2", str(good), "--atol", repr(need * 1.01),
                "--rtol", "1e-5"], capsys)[0] == 0


def test_inputs_from_files(tmp_path, capsys):
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "x.pb").write_bytes(numpy_helper.from_array(x, "image").SerializeToString())
    for f in ("x.npy", "x.pb"):
        rc, out = run([TINY_CNN, "--input", "image=%s" % (tmp_path / f)], capsys)
        assert rc == 0 and "(random" not in out


def test_usage_errors(capsys):
    assert compare.main([]) == 2
    assert compare.main(["--engine", "/nonexistent.kiln", "--engine2", "/x.kiln"]) == 2


def test_cli_forwards(planted):
    """`python -m kiln compare` runs the bundled CLI, which runs kiln.compare."""
    p = subprocess.run([sys.executable, "-m", "kiln", "compare", TINY_CNN, "--kiln-model", planted,
                        "--bisect"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    assert "first diverging layer" in p.stdout and "block_a" in p.stdout
