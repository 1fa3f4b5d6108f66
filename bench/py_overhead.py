#!/usr/bin/env python3
"""Per-call overhead of running a tiny model from Python (kiln.Context.run
and kiln.InferenceSession.run) over doing the same through the C API
(bench/py_overhead_c.c, built here against build/lib/libkiln.a), plus
onnxruntime for scale. The model is one Relu on a 1x64 float tensor, so
nearly all of a call is overhead. Times are CPU time of the calling thread
(fastest of 15 rounds), so other jobs on a shared machine distort them less
than wall time would; onnxruntime uses its own threads, so its row is a
lower bound. Prints a table; the issue's target is at
most 20 us added per call by Python.

usage: bench/py_overhead.py [--build-dir build] [--iterations N]
(the kiln package must be importable: pip install .)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tiny_model(path):
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def per_call_ns(fn, n):
    """ns per call of the fastest of 15 rounds, in this thread's CPU time
    (as the C side measures; Kiln runs on the calling thread by default)."""
    rounds = []
    for _ in range(15):
        t0 = time.thread_time_ns()
        for _ in range(n):
            fn()
        rounds.append((time.thread_time_ns() - t0) / n)
    return min(rounds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iterations", type=int, default=5000)
    args = ap.parse_args()
    import kiln
    tmp = tempfile.mkdtemp()
    model = os.path.join(tmp, "tiny.onnx")
    tiny_model(model)
    exe = os.path.join(tmp, "py_overhead_c")
    lib = os.path.join(args.build_dir, "lib", "libkiln.a")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-I", os.path.join(ROOT, "include"),
                    os.path.join(HERE, "py_overhead_c.c"), lib, "-lm", "-lpthread", "-o", exe], check=True)
    n = args.iterations
    c_ns = float(subprocess.run([exe, model, str(n)], check=True, capture_output=True,
                                text=True).stdout)
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    ctx = kiln.build(model).create_context()
    feed = {"x": x}
    rows = [("C API (set shape, bind, execute)", c_ns)]
    rows.append(("kiln.Context.run", per_call_ns(lambda: ctx.run(feed), n)))
    sess = kiln.InferenceSession(model, kiln_cache=False)
    rows.append(("kiln.InferenceSession.run", per_call_ns(lambda: sess.run(None, feed), n)))
    try:
        import onnxruntime as ort
        o = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        rows.append(("onnxruntime InferenceSession.run", per_call_ns(lambda: o.run(None, feed), n)))
    except ImportError:
        pass
    print("tiny model (Relu, 1x64 float32), thread CPU time, fastest of 15 rounds x %d calls, "
          "kiln %s, Python %s"
          % (n, kiln.__version__, sys.version.split()[0]))
    print("%-36s %10s %14s" % ("path", "us/call", "over C (us)"))
    for name, ns in rows:
        print("%-36s %10.2f %14s" % (name, ns / 1e3, "" if name.startswith("C API") else
                                       "%+.2f" % ((ns - c_ns) / 1e3)))


if __name__ == "__main__":
    main()
