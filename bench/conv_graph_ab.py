#!/usr/bin/env python3
"""A/B of the CUDA convolution paths on ResNet-50 FP16 (issue 12): cuDNN's
legacy API (src/backends/cuda/cuda_conv.c) against its graph API
(cuda_conv_graph.c), NCHW against channels-last, at batch 1 and 256.

Each configuration is one `kiln build -v` (environment below; no timing cache,
so every layer is timed) and one `kiln bench --no-data-transfers` (CUDA graphs
on, device I/O, as bench/gpu_bench.py). From the build's verbose log, per
convolution layer: the best legacy tactic's time, the best graph tactic's, the
chosen one. Reports per configuration: end-to-end median ms, the summed
per-layer times, and how many layers the graph API won.

  KILN_CONV_GRAPH=0      legacy cuDNN tactics only
  KILN_CONV_GRAPH=1      both, timed by the builder (the default)
  KILN_CONV_GRAPH=only   graph-API tactics only for FP16/BF16 convolutions
  (unset)                both, the builder times them and keeps the fastest
  KILN_CHANNELS_LAST_MIN_BATCH=1   channels-last (NhwcConv) at batch 1 too
                         (default: from batch 8; builder.c)
  KILN_CHANNELS_LAST_MIN_BATCH=auto  the builder builds both layouts (every
                         layer timed) and keeps the faster; its choice is the
                         "layout:" line of the build log (reported as "layout")

usage: conv_graph_ab.py KILN_BINARY [--configs a,b] [--work DIR] [--json F]
                        [--iters N] [--onnx resnet50.onnx] [--log]
--log sets KILN_CONV_GRAPH_LOG=1 (every cuDNN plan built or refused, to the
build log in WORK/<config>.build.log).

Needs torch + torchvision only to export the model (skipped with --onnx).
Example on the H100 (not yet run: cuDNN's runtime-fusion engines compile
kernels when a plan is built, so builds with graph tactics may take minutes;
split the configurations over calls with --configs if needed; the JSON is
rewritten after every configuration):
  python3 bench/conv_graph_ab.py build-gpu/bin/kiln --json /tmp/conv_ab.json
  python3 bench/conv_graph_ab.py build-gpu/bin/kiln --configs b1_nchw_legacy,b1_nhwc_both
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

CONFIGS = [
    ("b1_nchw_legacy", 1, {"KILN_CONV_GRAPH": "0"}),
    ("b1_nchw_both", 1, {"KILN_CONV_GRAPH": "1"}),
    ("b1_nchw_graph", 1, {"KILN_CONV_GRAPH": "only"}),
    ("b1_nhwc_legacy", 1, {"KILN_CONV_GRAPH": "0", "KILN_CHANNELS_LAST_MIN_BATCH": "1"}),
    ("b1_nhwc_both", 1, {"KILN_CONV_GRAPH": "1", "KILN_CHANNELS_LAST_MIN_BATCH": "1"}),
    ("b1_nhwc_graph", 1, {"KILN_CONV_GRAPH": "only", "KILN_CHANNELS_LAST_MIN_BATCH": "1"}),
    ("b1_auto_both", 1, {"KILN_CONV_GRAPH": "1", "KILN_CHANNELS_LAST_MIN_BATCH": "auto"}),
    ("b256_nhwc_legacy", 256, {"KILN_CONV_GRAPH": "0"}),
    ("b256_nhwc_both", 256, {"KILN_CONV_GRAPH": "1"}),
    ("b256_nhwc_graph", 256, {"KILN_CONV_GRAPH": "only"}),
]
CONV_OPS = ("Conv", "FusedConv", "NhwcConv")
LINE = re.compile(r"tactic (\S+) on (node \d+.*\((\w+)\)): (\(cannot time\) )?([0-9.]+) us"
                  r"(  <- chosen)?")


def parse_layers(log):
    """{layer: {"legacy": best us, "graph": best us, "chosen": name, "chosen_us": us}}"""
    layers = {}
    for line in log.splitlines():
        m = LINE.search(line)
        if not m or m.group(3) not in CONV_OPS:
            continue
        name, lab, untimed, us, chosen = m.group(1), m.group(2), m.group(4), m.group(5), m.group(6)
        d = layers.setdefault(lab, {"legacy": None, "graph": None, "chosen": None,
                                    "chosen_us": None})
        if chosen:
            d["chosen"], d["chosen_us"] = name, float(us)
        if untimed or "_dw_" in name or "_direct" in name:
            continue
        fam = "graph" if "_graph_" in name else "legacy"
        if d[fam] is None or float(us) < d[fam]:
            d[fam] = float(us)
    return layers


def run_config(kiln, onnx_path, work, name, batch, env_extra, iters, log):
    eng = os.path.join(work, name + ".kiln")
    shapes = "input:%dx3x224x224" % batch
    env = dict(os.environ)
    for k in ("KILN_CONV_GRAPH", "KILN_CHANNELS_LAST_MIN_BATCH", "KILN_CHANNELS_LAST"):
        env.pop(k, None)
    env.update(env_extra)
    if log:
        env["KILN_CONV_GRAPH_LOG"] = "1"
    cmd = [kiln, "build", onnx_path, "-o", eng, "--device", "cuda", "--fp16", "--shapes",
           shapes, "-v"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    build_s = time.time() - t0
    with open(os.path.join(work, name + ".build.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    res = {"config": name, "batch": batch, "env": env_extra, "build_seconds": build_s}
    if p.returncode:
        res["error"] = "build: " + (p.stderr or p.stdout)[-600:]
        return res
    layers = parse_layers(p.stdout + p.stderr)
    lay = re.search(r"layout: (.*)", p.stdout + p.stderr)
    if lay:
        res["layout"] = lay.group(1)
    res["host_layers"] = (p.stdout + p.stderr).count("runs on the host")
    res["conv_layers"] = len(layers)
    res["graph_chosen"] = sum(1 for d in layers.values() if d["chosen"] and "_graph_" in d["chosen"])
    res["sum_chosen_us"] = sum(d["chosen_us"] or 0 for d in layers.values())
    both = [d for d in layers.values() if d["legacy"] is not None and d["graph"] is not None]
    res["layers_both_timed"] = len(both)
    res["sum_best_legacy_us"] = sum(d["legacy"] for d in both)
    res["sum_best_graph_us"] = sum(d["graph"] for d in both)
    res["layers"] = layers
    cmd = [kiln, "bench", "--engine", eng, "--shapes", shapes, "--no-data-transfers",
           "--iterations", str(iters), "--warmup", "200", "--duration", "1", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        res["error"] = "bench: " + (p.stderr or p.stdout)[-600:]
        return res
    j = json.loads(p.stdout[p.stdout.index("{"):])
    lat = j.get("latency_ms", j)
    res["median_ms"] = lat.get("median", lat.get("median_ms"))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--configs", default=",".join(c[0] for c in CONFIGS))
    ap.add_argument("--work", default="/tmp/kiln-conv-ab")
    ap.add_argument("--json", default="")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--onnx", default="")
    ap.add_argument("--log", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    onnx_path = args.onnx or os.path.join(args.work, "resnet50.onnx")
    if not os.path.exists(onnx_path):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from gpu_bench import export
        export("resnet50", onnx_path)
    want = args.configs.split(",")
    out = []
    for name, batch, env in CONFIGS:
        if name not in want:
            continue
        r = run_config(args.kiln, onnx_path, args.work, name, batch, env, args.iters, args.log)
        out.append(r)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        if "error" in r:
            print("%-18s ERROR %s" % (name, r["error"]), flush=True)
            continue
        print("%-18s median %8.4f ms | conv layers %3d, graph chosen %3d | sum chosen %8.1f us"
              " | both timed %3d: best legacy %8.1f us, best graph %8.1f us | build %.1f s"
              " | host layers %d" % (
                  name, r["median_ms"], r["conv_layers"], r["graph_chosen"], r["sum_chosen_us"],
                  r["layers_both_timed"], r["sum_best_legacy_us"], r["sum_best_graph_us"],
                  r["build_seconds"], r["host_layers"]), flush=True)
        if "layout" in r:
            print("%-18s layout: %s" % (name, r["layout"]), flush=True)


if __name__ == "__main__":
    main()
