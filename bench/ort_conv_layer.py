#!/usr/bin/env python3
"""The peer side of bench/nchwc_conv_bench.c: onnxruntime's time for one
Conv (+ Relu, which onnxruntime fuses) of the same geometry, 1 thread, from
its per-node profile (the Conv node's kernel time; least and median over
the runs after the first 20).

usage: bench/ort_conv_layer.py C H W M K S [DW [RUNS]]   (pad K/2 all round;
DW 1: depthwise, M = C; RUNS default 300)
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def main():
    C, H, W, M, K, S = map(int, sys.argv[1:7])
    dw = len(sys.argv) > 7 and sys.argv[7] == "1"
    runs = int(sys.argv[8]) if len(sys.argv) > 8 else 300
    if dw:
        M = C
    p = K // 2
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((M, 1 if dw else C, K, K)) * 0.1).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[K, K],
                            strides=[S, S], pads=[p] * 4, group=C if dw else 1)
    relu = helper.make_node("Relu", ["y"], ["z"])
    g = helper.make_graph([conv, relu], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = "/tmp/ort_conv_layer"
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, C, H, W)).astype(np.float32)
    for _ in range(runs):
        s.run(None, {"x": x})
    f = s.end_profiling()
    with open(f) as fh:
        ev = json.load(fh)
    os.remove(f)
    t = [e["dur"] for e in ev if e.get("cat") == "Node" and
         e["name"].endswith("_kernel_time") and e["args"].get("op_name") == "Conv"]
    t = sorted(t[20:])
    print("onnxruntime Conv C%d %dx%d M%d k%d s%d%s: min %.4f med %.4f ms" %
          (C, H, W, M, K, S, " dw" if dw else "", t[0] / 1000, t[len(t) // 2] / 1000))


if __name__ == "__main__":
    main()
