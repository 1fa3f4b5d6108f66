#!/usr/bin/env python3
"""CPU-time A/B on 1 thread, for a loaded machine where wall-clock latency
swings: per-inference process CPU time (user + sys) of two Kiln binaries on
their engines of the same model (difference of a 26- and a 6-iteration
`kiln bench` run, so load and set-up cancel) and of onnxruntime
(time.process_time around 20 runs), interleaved, REPS times.

usage: bench/cpu_time_ab.py OLD_KILN OLD_ENGINE NEW_KILN NEW_ENGINE MODEL.onnx
           --shapes input_ids:1x128,attention_mask:1x128 [--reps 2] [--iters 20]
(--iters: timed runs per sample, the difference of a (iters+6)- and a
6-iteration run; raise it for small models, whose 20 runs are too short.)
Inputs are random (int64 inputs: ids below 30522; a *mask* input: ones).
"""
import argparse
import os
import resource
import subprocess
import time

import numpy as np


def kiln_cpu(binary, engine, shapes, n):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, "bench", "--engine", engine, "--shapes", shapes, "--threads", "1",
                    "--iterations", str(n), "--duration", "0", "--warmup", "0", "--json"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def ort_cpu(model, shapes, n):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feed = {}
    for i in s.get_inputs():
        dims = tuple(int(d) for d in shapes[i.name].split("x"))
        if "int64" in i.type:
            feed[i.name] = (np.ones(dims, np.int64) if "mask" in i.name
                            else np.random.randint(0, 30522, dims).astype(np.int64))
        else:
            feed[i.name] = np.random.randn(*dims).astype(np.float32)
    for _ in range(3):
        s.run(None, feed)
    t0 = time.process_time()
    for _ in range(n):
        s.run(None, feed)
    return (time.process_time() - t0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old_kiln")
    ap.add_argument("old_engine")
    ap.add_argument("new_kiln")
    ap.add_argument("new_engine")
    ap.add_argument("model")
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    shapes = dict(kv.split(":") for kv in a.shapes.split(","))
    for rep in range(a.reps):
        for name, b, e in (("old", a.old_kiln, a.old_engine), ("new", a.new_kiln, a.new_engine)):
            per = (kiln_cpu(b, e, a.shapes, a.iters + 6) - kiln_cpu(b, e, a.shapes, 6)) / a.iters
            print("rep %d kiln-%s cpu ms/inference %.2f  load %.1f" %
                  (rep, name, per * 1e3, os.getloadavg()[0]), flush=True)
        print("rep %d onnxruntime cpu ms/inference %.2f  load %.1f" %
              (rep, ort_cpu(a.model, shapes, a.iters) * 1e3, os.getloadavg()[0]), flush=True)


if __name__ == "__main__":
    main()
