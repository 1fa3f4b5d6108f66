"""`python -m kiln` forwards to the bundled command-line tool."""
import subprocess
import sys

import kiln
from conftest import TINY_CNN


def kiln_cli(*args):
    return subprocess.run([sys.executable, "-m", "kiln"] + list(args), capture_output=True,
                          text=True, timeout=300)


def test_version():
    p = kiln_cli("version")
    assert p.returncode == 0 and kiln.__version__ in p.stdout


def test_inspect_and_build(tmp_path):
    p = kiln_cli("inspect", TINY_CNN)
    assert p.returncode == 0 and "Conv" in p.stdout
    e = tmp_path / "t.kiln"
    p = kiln_cli("build", TINY_CNN, "-o", str(e), "--shapes", "image:1x3x32x32", "--opt-level", "0")
    assert p.returncode == 0, p.stderr
    assert kiln.Engine.load(e).inputs[0].shape == (1, 3, 32, 32)


def test_bad_command_exit_status():
    assert kiln_cli("no-such-command").returncode == 2
