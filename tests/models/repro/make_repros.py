#!/usr/bin/env python3
"""Writes the one-node reproducers in this folder (backend-test layout:
model.onnx + test_data_set_0/, expected outputs from onnxruntime), so
`kiln check --reference tests/models/repro/<name>` shows each open bug.

usage: make_repros.py   (rewrites every case below)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from export_models import ort_session, write_pb  # noqa: E402


def save_case(name, graph, opset, feeds):
    d = os.path.join(HERE, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    outs = ort_session(path, optimize=False).run(None, feeds)
    for k, i in enumerate(graph.input):
        write_pb(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), feeds[i.name], i.name)
    for k, (o, a) in enumerate(zip(graph.output, outs)):
        write_pb(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), np.asarray(a), o.name)
    print("wrote %s" % d)


def stft_rank2_signal():
    """torch.onnx.export turns torch.stft on a real (batch, samples) signal
    into STFT with that rank-2 signal (no trailing [1] axis); onnxruntime
    takes it as a real signal, Kiln's STFT inference rejects it."""
    rng = np.random.default_rng(0)
    sig = rng.standard_normal((2, 64)).astype(np.float32)
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("STFT", ["signal", "frame_step", "window", "frame_length"], ["y"],
                          onesided=1)],
        "stft_rank2_signal",
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, ["batch", "samples"]),
         helper.make_tensor_value_info("window", TensorProto.FLOAT, [16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "frames", 9, 2])],
        [numpy_helper.from_array(np.array(4, np.int64), "frame_step"),
         numpy_helper.from_array(np.array(16, np.int64), "frame_length")])
    save_case("stft_rank2_signal", g, 17, {"signal": sig, "window": win})


if __name__ == "__main__":
    stft_rank2_signal()
