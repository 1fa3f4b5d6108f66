#!/usr/bin/env python3
"""Kiln vs onnxruntime on the CPU: same model, same input shapes, same
thread count, one run of this script. Reports latency percentiles and the
ratio (Kiln median / onnxruntime median; < 1 means Kiln is faster).

usage: bench/run_bench.py KILN_BINARY [--models resnet50,bert] [--threads 1,2]
           [--duration S] [--out bench/results.json]

Models are exported with random weights (no downloads) into build/bench/.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "bench")


def export(name):
    """Exports a model once; returns (path, {input: shape}, {input: dtype})."""
    import torch
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, name + ".onnx")
    torch.manual_seed(0)
    if name in ("resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16"):
        import torchvision
        shapes = {"input": (1, 3, 224, 224)}
        if not os.path.exists(path):
            m = getattr(torchvision.models, name)(weights=None).eval()
            torch.onnx.export(m, torch.randn(*shapes["input"]), path, input_names=["input"],
                              output_names=["logits"], opset_version=17, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        return path, shapes, {"input": np.float32}
    if name == "bert":
        from transformers import BertConfig, BertModel
        seq = 128
        shapes = {"input_ids": (1, seq), "attention_mask": (1, seq)}
        if not os.path.exists(path):
            cfg = BertConfig()
            cfg._attn_implementation = "eager"
            bert = BertModel(cfg).eval()

            class Wrap(torch.nn.Module):  # positional inputs, tuple outputs
                def __init__(self):
                    super().__init__()
                    self.bert = bert

                def forward(self, input_ids, attention_mask):
                    o = self.bert(input_ids=input_ids, attention_mask=attention_mask)
                    return o.last_hidden_state, o.pooler_output

            ids = torch.randint(0, 30522, (1, seq))
            mask = torch.ones(1, seq, dtype=torch.int64)
            torch.onnx.export(Wrap().eval(), (ids, mask), path,
                              input_names=["input_ids", "attention_mask"],
                              output_names=["last_hidden_state", "pooler_output"],
                              opset_version=17, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                            "attention_mask": {0: "batch", 1: "seq"}})
        return path, shapes, {"input_ids": np.int64, "attention_mask": np.int64}
    raise SystemExit("unknown model " + name)


def bench_ort(path, shapes, dtypes, threads, duration, warmup_s=1.0):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for k, shp in shapes.items():
        if dtypes[k] == np.int64:
            feeds[k] = (rng.integers(0, 100, shp) if "mask" not in k
                        else np.ones(shp)).astype(np.int64)
        else:
            feeds[k] = rng.standard_normal(shp).astype(np.float32)
    t_end = time.perf_counter() + warmup_s
    while time.perf_counter() < t_end:
        sess.run(None, feeds)
    lat = []
    start = time.perf_counter()
    while len(lat) < 10 or time.perf_counter() - start < duration:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    n = len(lat)
    return {"iterations": n, "throughput_qps": n / (time.perf_counter() - start),
            "latency_ms": {"min": lat[0], "median": float(np.percentile(lat, 50)),
                           "mean": float(np.mean(lat)), "p90": float(np.percentile(lat, 90)),
                           "p99": float(np.percentile(lat, 99)), "max": lat[-1]}}


def bench_kiln(kiln, path, shapes, threads, duration):
    # One engine per batch and thread count, its tactics timed at the thread
    # count it runs at (`kiln build --threads`, as a deployment would build
    # it): a tactic that wins on one core can scale worst on sixteen.
    engine = path[:-5] + "_b%d_t%d.kiln" % (next(iter(shapes.values()))[0], threads)
    spec = ",".join("%s:%s" % (k, "x".join(map(str, v))) for k, v in shapes.items())
    t0 = time.perf_counter()
    subprocess.run([kiln, "build", path, "-o", engine, "--shapes", spec, "--threads",
                    str(threads), "--timing-cache", engine + ".cache"], check=True,
                   stdout=subprocess.DEVNULL)
    build_s = time.perf_counter() - t0
    out = subprocess.run([kiln, "bench", "--engine", engine, "--shapes", spec, "--threads",
                          str(threads), "--duration", str(duration), "--warmup", "1000",
                          "--json"], check=True, stdout=subprocess.PIPE, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["build_s"] = build_s
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--models", default="resnet50,bert")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts; 'all' = every core of this process")
    ap.add_argument("--batches", default="1", help="comma-separated batch sizes (dim 0)")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--out", default=os.path.join(WORK, "results.json"))
    args = ap.parse_args()
    rows = []
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = [ncores if t == "all" else int(t) for t in args.threads.split(",")]
    for name in args.models.split(","):
        path, shapes1, dtypes = export(name)
        for b in map(int, args.batches.split(",")):
            shapes = {k: (b,) + tuple(v[1:]) for k, v in shapes1.items()}
            for th in threads:
                k = bench_kiln(os.path.abspath(args.kiln), path, shapes, th, args.duration)
                o = bench_ort(path, shapes, dtypes, th, args.duration)
                ratio = k["latency_ms"]["median"] / o["latency_ms"]["median"]
                rows.append({"model": name, "batch": b, "threads": th, "shapes": shapes,
                             "kiln": k, "ort": o, "ratio_median": ratio})
                print("%-12s batch=%-3d threads=%-3d kiln median %8.2f ms p99 %8.2f | ort "
                      "median %8.2f ms p99 %8.2f | kiln/ort %.2fx"
                      % (name, b, th, k["latency_ms"]["median"], k["latency_ms"]["p99"],
                         o["latency_ms"]["median"], o["latency_ms"]["p99"], ratio), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or
            platform.machine(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        import onnxruntime
        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
