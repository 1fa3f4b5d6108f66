#!/usr/bin/env python3
"""shape_switch.py: what a CUDA engine with a dynamic batch pays the first
time it runs a batch size it has not run before (issue 7: the dynamic
batcher forms any size from 1 to max_batch_size), against the same size's
later runs. Builds ENGINE from MODEL.onnx for batch 1..MAX (opt OPT) unless
it exists, then on one context runs sizes in a shuffled order, each twice,
and prints the first-run and second-run times (host wall time of a
synchronous run, host input copies included).

Usage: shape_switch.py KILN MODEL.onnx ENGINE [--max 64] [--opt 32]
       [--input input] [--sizes 1,2,3,...] [--extra "--fp16"]"""
import argparse
import os
import random
import statistics
import subprocess
import time

import numpy as np

import kiln


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("onnx")
    ap.add_argument("engine")
    ap.add_argument("--max", type=int, default=64)
    ap.add_argument("--opt", type=int, default=32)
    ap.add_argument("--input", default="input")
    ap.add_argument("--sizes")
    ap.add_argument("--extra", default="--fp16")
    a = ap.parse_args()
    dims = lambda b: "%s:%dx3x224x224" % (a.input, b)  # noqa: E731
    if not os.path.exists(a.engine):
        t = time.time()
        subprocess.run([a.kiln, "build", a.onnx, "-o", a.engine, "--device", "cuda",
                        "--min-shapes", dims(1), "--opt-shapes", dims(a.opt),
                        "--max-shapes", dims(a.max)] + a.extra.split(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("build %.1f s" % (time.time() - t))
    e = kiln.Engine.load(a.engine)
    c = e.create_context()
    sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else list(range(1, a.max + 1))
    random.Random(0).shuffle(sizes)
    x = np.random.default_rng(0).standard_normal((a.max, 3, 224, 224)).astype(np.float32)
    c.run({a.input: x[:a.opt]})
    first, second = {}, {}
    for b in sizes:
        for store in (first, second):
            t = time.perf_counter()
            c.run({a.input: x[:b]})
            store[b] = (time.perf_counter() - t) * 1e3
    f, s = list(first.values()), list(second.values())
    print("%s: %d sizes; first run median %.2f ms (max %.1f, sum %.0f ms); second run median "
          "%.2f ms (max %.2f)" % (os.path.basename(a.engine), len(sizes), statistics.median(f),
                                  max(f), sum(f), statistics.median(s), max(s)))
    for b in sorted(first)[:: max(1, len(first) // 8)]:
        print("  batch %3d: first %.2f ms, second %.2f ms" % (b, first[b], second[b]))


if __name__ == "__main__":
    main()
