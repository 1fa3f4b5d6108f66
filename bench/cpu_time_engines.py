#!/usr/bin/env python3
"""CPU time per inference, one thread: Kiln engines vs onnxruntime.

On a shared machine wall-clock latency mostly measures the other jobs; the
CPU time a single-threaded run consumes is much steadier (it still includes
cache misses caused by neighbours). For each engine, runs `kiln bench` with
few and with many iterations and takes the difference of the children's
user+sys time, so loading and warm-up cancel out; onnxruntime is timed in
process with time.process_time() (intra- and inter-op threads 1).

usage: bench/cpu_time_engines.py KILN MODEL.onnx ENGINE [ENGINE...] [--runs N]
           [--shape 1x3x224x224] [--rounds R]
Prints one line per engine and for onnxruntime: median over R rounds of
CPU ms per inference.
"""
import argparse
import resource
import statistics
import subprocess
import time

import numpy as np


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def kiln_cpu(kiln, engine, runs):
    def one(n):
        t0 = child_cpu()
        subprocess.run([kiln, "bench", "--engine", engine, "--threads", "1", "--duration", "0",
                        "--warmup", "0", "--iterations", str(n)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return child_cpu() - t0
    lo, hi = one(2), one(2 + runs)
    return (hi - lo) / runs * 1e3


def ort_cpu(model, shape, runs):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(3):
        s.run(None, {name: x})
    t0 = time.process_time()
    for _ in range(runs):
        s.run(None, {name: x})
    return (time.process_time() - t0) / runs * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("model")
    ap.add_argument("engines", nargs="+")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shape", default="1x3x224x224")
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split("x"))
    res = {e: [] for e in a.engines}
    res["onnxruntime"] = []
    for _ in range(a.rounds):  # interleaved, so drifting load hits all alike
        for e in a.engines:
            res[e].append(kiln_cpu(a.kiln, e, a.runs))
        res["onnxruntime"].append(ort_cpu(a.model, shape, a.runs))
    for k, v in res.items():
        print("%-40s CPU ms/inference: median %7.2f  (rounds: %s)" %
              (k, statistics.median(v), " ".join("%.1f" % x for x in v)))


if __name__ == "__main__":
    main()
