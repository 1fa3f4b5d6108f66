#!/usr/bin/env python3
"""test_int8_cli.py: `kiln build --int8` as a user meets it: --help lists
the options, every wrong invocation is refused with a message naming the
problem (exit 2 for the command line, 1 for data the build cannot use),
and a refused build writes nothing.
Usage: test_int8_cli.py path/to/kiln. Ends with "N passed, M failed"."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

KILN = None
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}\n{detail}")


def kiln(*args):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def refused(args, rc, words, what):
    code, out = kiln(*args)
    ok = code == rc and all(w in out for w in words)
    check(ok, f"{what} -> exit {rc}", f"got exit {code}:\n{out}")


def main():
    global KILN
    KILN = os.path.abspath(sys.argv[1])
    t = tempfile.mkdtemp(prefix="kiln_int8_cli_")
    p = lambda n: os.path.join(t, n)
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "W")
    g = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p("m.onnx"))
    os.makedirs(p("calib"))
    np.save(p("calib/x.npy"), rng.standard_normal((6, 1, 5, 5)).astype(np.float32))
    os.makedirs(p("badshape"))
    np.save(p("badshape/x.npy"), rng.standard_normal((6, 1, 4, 4)).astype(np.float32))
    os.makedirs(p("empty"))
    m, o = p("m.onnx"), p("e.kiln")

    code, out = kiln("build", "--help")
    check(code == 0 and all(s in out for s in (
        "--int8", "--calib DIR", "--calib-method", "entropy|minmax|percentile",
        "--calib-percentile", "--calib-batches", "--calib-cache", "--accuracy-budget",
        "METRIC:VALUE", "--validate", "int8 symmetric")), "--help lists the INT8 options", out)

    refused(["build", m, "-o", o, "--int8"], 2, ["--calib"], "--int8 without data")
    refused(["build", m, "-o", o, "--calib", p("calib")], 2, ["needs --int8"],
            "--calib without --int8")
    refused(["build", m, "-o", o, "--int8", "--calib", p("nope")], 2, ["does not exist"],
            "missing --calib folder")
    refused(["build", m, "-o", o, "--int8", "--calib", m], 2, ["not a folder"],
            "--calib names a file")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-method", "kl"], 2,
            ["--calib-method"], "unknown method")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-method",
             "percentile", "--calib-percentile", "0"], 2, ["--calib-percentile"],
            "percentile 0")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-percentile",
             "99"], 2, ["--calib-method percentile"], "percentile without its method")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-batches", "-1"],
            2, ["--calib-batches"], "negative batches")
    refused(["build", m, "-o", o, "--int8", "--calib-cache", p("none.txt")], 2,
            ["does not exist"], "missing cache without data")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-cache", m], 2,
            ["not a Kiln calibration cache"], "--calib-cache names the model")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-cache", o], 2,
            ["--calib-cache"], "--calib-cache is the engine")
    for bad, words in (("foo:1", ["top1:X%"]), ("top1:abc", ["not a number"]),
                       ("top1", ["top1:X%"]), ("cosine:2", ["cosine"]),
                       ("rel-l2:-1", ["rel-l2"])):
        refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--accuracy-budget",
                 bad, "--validate", p("calib")], 2, words, f"--accuracy-budget {bad}")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--accuracy-budget",
             "top1:1%"], 2, ["go together"], "budget without --validate")
    refused(["build", m, "-o", o, "--int8", "--calib", p("calib"), "--accuracy-budget",
             "top1:1%", "--validate", p("nope")], 2, ["does not exist"], "missing --validate")
    refused(["build", m, "-o", o, "--accuracy-budget", "top1:1%", "--validate", p("calib")], 2,
            ["needs --int8"], "budget without --int8")
    # data the build cannot use: exit 1, the file named, no engine written
    refused(["build", m, "-o", o, "--int8", "--calib", p("badshape")], 1,
            ["badshape/x.npy", "must have shape"], "calibration data of the wrong shape")
    refused(["build", m, "-o", o, "--int8", "--calib", p("empty")], 1,
            ["neither test_data_set_* folders nor .npy"], "empty calibration folder")
    os.makedirs(p("huge"))
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 1, 5, 5), }"
    hdr += b" " * (117 - len(hdr)) + b"\n"
    with open(p("huge/x.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + bytes(64))
    refused(["build", m, "-o", o, "--int8", "--calib", p("huge")], 1,
            ["huge/x.npy", "truncated"], "a .npy header claiming 10 TB (nothing allocated)")
    with open(p("bad.cache"), "w") as f:
        f.write("kiln-calibration-cache 1\nmethod entropy\nx zero\n")
    refused(["build", m, "-o", o, "--int8", "--calib-cache", p("bad.cache")], 1,
            ["bad.cache:3:", "TENSOR_NAME SCALE"], "malformed cache line")
    with open(p("other.cache"), "w") as f:
        f.write("kiln-calibration-cache 1\nmethod entropy\nsomething_else 0.5\n")
    refused(["build", m, "-o", o, "--int8", "--calib-cache", p("other.cache")], 1,
            ["no scale for tensor 'x'"], "cache for another model")
    check(not os.path.exists(o), "no engine was written by a refused build")
    # and the good path, with a hand-edited cache
    code, out = kiln("build", m, "-o", o, "--int8", "--calib", p("calib"), "--calib-cache",
                     p("c.cache"))
    check(code == 0 and os.path.exists(p("c.cache")), "build writes the cache", out)
    with open(p("c.cache")) as f:
        text = f.read()
    check(text.startswith("kiln-calibration-cache 1\nmethod entropy\nkiln ") and
          "\nx " in text, "cache lists tensor x", text)
    with open(p("c.cache"), "w") as f:
        f.write("kiln-calibration-cache 1\nmethod hand\nx 0.25\n")
    code, out = kiln("build", m, "-o", o, "--int8", "--calib-cache", p("c.cache"))
    code2, insp = kiln("inspect", o)
    check(code == 0 and "scale 0.25" in insp, "a hand-edited scale reaches the engine", insp)
    # attention-style MatMuls of two activations: both operands quantized,
    # Softmax output as uint8 (scale 1/255), result close to FP32
    wm = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "Wp")
    nodes = [helper.make_node("MatMul", ["a", "Wp"], ["h"], name="proj"),
             helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 2, 1], name="tr"),
             helper.make_node("MatMul", ["h", "bt"], ["s"], name="scores"),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1, name="sm"),
             helper.make_node("MatMul", ["p", "b"], ["o"], name="ctx")]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 8, 16]) for n in "ab"]
    g2 = helper.make_graph(nodes, "att", ins,
                           [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)], [wm])
    onnx.save(helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)]), p("att.onnx"))
    os.makedirs(p("att_calib"))
    for n in "ab":
        np.save(p(f"att_calib/{n}.npy"), rng.standard_normal((64, 8, 16)).astype(np.float32))
        np.save(p(f"{n}.npy"), rng.standard_normal((4, 8, 16)).astype(np.float32))
    sh = "a:4x8x16,b:4x8x16"
    code, out = kiln("build", p("att.onnx"), "-o", p("att8.kiln"), "--shapes", sh, "--int8",
                     "--calib", p("att_calib"))
    code2, _ = kiln("build", p("att.onnx"), "-o", p("att32.kiln"), "--shapes", sh, "-q")
    check(code == 0 and code2 == 0 and "3 of 3 quantizable layers" in out,
          "attention MatMuls quantize (both operands)", out)
    res = []
    for e in ("att32", "att8"):
        kiln("run", "--engine", p(e + ".kiln"), "--input", "a=" + p("a.npy"), "--input",
             "b=" + p("b.npy"), "--output-dir", p("out_" + e))
        res.append(numpy_helper.to_array(onnx.load_tensor(p("out_" + e + "/output_0.pb"))))
    rel = float(np.linalg.norm(res[1] - res[0]) / np.linalg.norm(res[0]))
    _, insp = kiln("inspect", p("att8.kiln"))
    check(rel < 0.1 and "scale 0.00392157" in insp,
          f"attention INT8 close to FP32 (rel-l2 {rel:.4f}), Softmax output uint8", insp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
