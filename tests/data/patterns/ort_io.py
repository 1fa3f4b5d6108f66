"""ort_io.py: writes random inputs for a model and onnxruntime's outputs as
input_N.pb / output_N.pb into a folder, for `test_patterns --io DIR MODEL`
(the optimized Kiln graph against onnxruntime). Symbolic dims get --dim
(default 16); int64 inputs named *mask* get ones with the last quarter 0,
other int64 inputs token ids below --vocab.
    python3 tests/data/patterns/ort_io.py MODEL.onnx DIR [--dim N] [--batch N]
"""
import argparse
import os

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("dir")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=1000)
    a = ap.parse_args()
    rng = np.random.default_rng(3)
    os.makedirs(a.dir, exist_ok=True)
    s = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    feeds = {}
    for k, i in enumerate(s.get_inputs()):
        shape = [d if isinstance(d, int) else (a.batch if j == 0 else a.dim)
                 for j, d in enumerate(i.shape)]
        if i.type == "tensor(int64)" and "mask" in i.name:
            x = np.ones(shape, np.int64)
            x[..., shape[-1] * 3 // 4:] = 0
        elif i.type == "tensor(int64)":
            x = rng.integers(0, a.vocab, shape).astype(np.int64)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
        feeds[i.name] = x
        with open(os.path.join(a.dir, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, i.name).SerializeToString())
    outs = s.run(None, feeds)
    for k, (o, y) in enumerate(zip(s.get_outputs(), outs)):
        with open(os.path.join(a.dir, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y, o.name).SerializeToString())
    print("wrote", len(feeds), "inputs,", len(outs), "outputs to", a.dir)


if __name__ == "__main__":
    main()
