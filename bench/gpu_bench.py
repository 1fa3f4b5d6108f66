#!/usr/bin/env python3
"""GPU benchmark: Kiln CUDA engines against PyTorch eager and torch.compile on
the same GPU, model (random weights), inputs and batch, in one run.

Cases (issue 12): ResNet-50 FP16 batch 1 and 256, MobileNetV2 FP16 batch 1,
BERT-base seq 128 FP16 batch 1 and 128, ResNet-50 FP32 batch 256.
FP32 is exact FP32 on both sides: torch's TF32 switches (cuDNN convolutions
use TF32 by default in torch) are turned off for it. The tf32 case compares
`kiln build --tf32` with torch's TF32 on (convolutions and matmuls).
INT8 cases (issue 9): ResNet-50 batch 256 and BERT-base batch 128, built with
`--int8 --fp16 --calib DIR` (calibrated on random inputs written to DIR: speed
only, accuracy is tests/quant's business); quantized layers run on the INT8
tactics, the rest in FP16. They are reported against the FP16 case of the
same model and batch in the same run (which is run too when not listed):
int8/fp16 speedup = FP16 median / INT8 median. Torch is not run for them.

Kiln: `kiln build --device cuda [--fp16]` then `kiln bench --no-data-transfers`
(inputs and outputs bound in device memory, as torch's tensors are; CUDA graphs
on, the default). Torch: eager, torch.compile() (default mode) and
torch.compile(mode="reduce-overhead") (CUDA graphs; batch 1 only, default
mode at larger batches, to fit the device time), timed with CUDA events
over the same number of iterations after warm-up; the median is reported.
Throughput = batch / median latency. Results go to stdout as a table and to
--json.

usage: gpu_bench.py KILN_BINARY [--cases a,b] [--iters N] [--json F]
                    [--no-compile] [--no-torch] [--work DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time

CASES = {
    "resnet50_fp16_b1": ("resnet50", "fp16", 1),
    "resnet50_fp16_b256": ("resnet50", "fp16", 256),
    "mobilenet_v2_fp16_b1": ("mobilenet_v2", "fp16", 1),
    "bert_base_fp16_b1": ("bert_base", "fp16", 1),
    "bert_base_fp16_b128": ("bert_base", "fp16", 128),
    "resnet50_fp32_b256": ("resnet50", "fp32", 256),
    "resnet50_tf32_b256": ("resnet50", "tf32", 256),
    "resnet50_int8_b256": ("resnet50", "int8", 256),
    "bert_base_int8_b128": ("bert_base", "int8", 128),
}
QUANT = ("int8",)
SEQ = 128


def torch_model(name):
    import torch
    if name in ("resnet50", "mobilenet_v2"):
        import torchvision
        m = getattr(torchvision.models, name)(weights=None).eval()
        return m, ["input"], lambda b: (torch.randn(b, 3, 224, 224),)
    from transformers import BertConfig, BertModel
    cfg = BertConfig()  # bert-base: 12 layers, hidden 768, 12 heads
    m = BertModel(cfg, add_pooling_layer=False).eval()

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            return self.m(input_ids=ids, attention_mask=mask).last_hidden_state

    def inputs(b):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, cfg.vocab_size, (b, SEQ), generator=g)
        return ids, torch.ones(b, SEQ, dtype=torch.int64)
    return Wrap(m).eval(), ["input_ids", "attention_mask"], inputs


def export(name, path):
    import torch
    m, names, mk = torch_model(name)
    x = mk(2)
    dyn = {n: {0: "batch"} for n in names}
    torch.onnx.export(m, x, path, input_names=names, output_names=["output"],
                      dynamic_axes=dyn, opset_version=17, dynamo=False)


def time_torch(fn, args, iters, warm):
    import torch
    with torch.inference_mode():
        for _ in range(warm):
            fn(*args)
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            fn(*args)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def torch_runs(name, prec, batch, iters, do_compile):
    import torch
    m, names, mk = torch_model(name)
    dt = torch.float16 if prec == "fp16" else torch.float32
    # exact FP32 against Kiln's default FP32; TF32 against `kiln build --tf32`
    torch.backends.cudnn.allow_tf32 = prec == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    m = m.cuda().to(dt) if name != "bert_base" else m.cuda().to(dt)
    args = [a.cuda() for a in mk(batch)]
    args = [a.to(dt) if a.is_floating_point() else a for a in args]
    res = {"eager": time_torch(m, args, iters, 10)}
    if do_compile:
        # Device time is scarce: torch.compile's default mode at large
        # batches, and mode="reduce-overhead" (CUDA graphs, what helps
        # torch most there) at batch 1.
        for mode in (("reduce-overhead",) if batch == 1 else ("default",)):
            try:
                torch._dynamo.reset()
                t0 = time.time()
                c = torch.compile(m) if mode == "default" else torch.compile(m, mode=mode)
                ms = time_torch(c, args, iters, 10)
                res["compile_" + mode] = ms
                res["compile_%s_seconds" % mode] = time.time() - t0
            except Exception as ex:  # report, don't die
                res["compile_" + mode + "_error"] = str(ex)[:200]
    return res


def calib_dir(work, onnx_path, names, batch):
    """One calibration batch of random rows per input (.npy): as many rows as
    the engine's batch, which --shapes fixes (the builder calibrates the
    graph at the engine's shapes)."""
    import numpy as np
    d = os.path.join(work, "calib_%s_b%d" % (os.path.splitext(os.path.basename(onnx_path))[0],
                                             batch))
    if os.path.isdir(d):
        return d
    os.makedirs(d)
    rng = np.random.default_rng(0)
    for n in names:
        if n == "input":
            a = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
        elif n == "input_ids":
            a = rng.integers(0, 30522, (batch, SEQ)).astype(np.int64)
        else:
            a = np.ones((batch, SEQ), np.int64)
        np.save(os.path.join(d, n + ".npy"), a)
    return d


def kiln_run(kiln, onnx_path, work, case, prec, batch, names, iters):
    eng = os.path.join(work, case + ".kiln")
    if names == ["input"]:
        shapes = "input:%dx3x224x224" % batch
    else:
        shapes = ",".join("%s:%dx%d" % (n, batch, SEQ) for n in names)
    cmd = [kiln, "build", onnx_path, "-o", eng, "--device", "cuda", "--shapes", shapes,
           "--timing-cache", os.path.join(work, "timing.cache")]
    if prec == "fp16":
        cmd.append("--fp16")
    if prec == "tf32":
        cmd.append("--tf32")
    if prec in QUANT:
        cmd += ["--fp16", "--int8", "--calib", calib_dir(work, onnx_path, names, batch),
                "--calib-batches", "1"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    build_s = time.time() - t0
    if p.returncode:
        return {"error": "build: " + (p.stderr or p.stdout)[-600:]}
    host = p.stderr.count("runs on the host")
    t0 = time.time()
    cmd = [kiln, "bench", "--engine", eng, "--shapes", shapes, "--no-data-transfers",
           "--iterations", str(iters), "--warmup", "200", "--duration", "1", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        return {"error": "bench: " + (p.stderr or p.stdout)[-600:], "build_seconds": build_s}
    j = json.loads(p.stdout[p.stdout.index("{"):])
    lat = j.get("latency_ms", j)
    med = lat.get("median", lat.get("median_ms"))
    return {"median_ms": med, "build_seconds": build_s, "host_layers": host, "bench": j}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--json", default="")
    ap.add_argument("--work", default="/tmp/kiln-gpu-bench")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-torch", action="store_true",
                    help="Kiln only (A/B runs of Kiln settings); torch still exports the models")
    args = ap.parse_args()
    import torch
    os.makedirs(args.work, exist_ok=True)
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "date": time.strftime("%Y-%m-%d")}
    print("# " + json.dumps(info), flush=True)
    results = []
    exported = {}
    cases = args.cases.split(",")
    # an INT8 case is measured against the FP16 case of its model and batch
    for case in list(cases):
        name, prec, batch = CASES[case]
        if prec in QUANT:
            base = "%s_fp16_b%d" % (name, batch)
            if base not in CASES:
                CASES[base] = (name, "fp16", batch)
            if base not in cases:
                cases.insert(cases.index(case), base)
    kiln_ms = {}
    for case in cases:
        name, prec, batch = CASES[case]
        if name not in exported:
            path = os.path.join(args.work, name + ".onnx")
            if not os.path.isfile(path):
                export(name, path)
            exported[name] = path
        _, names, _ = torch_model(name) if name == "bert_base" else (None, ["input"], None)
        r = {"case": case}
        r["kiln"] = kiln_run(args.kiln, exported[name], args.work, case, prec, batch, names,
                             args.iters)
        kiln_ms[(name, prec, batch)] = r["kiln"].get("median_ms")
        if prec in QUANT:
            base = kiln_ms.get((name, "fp16", batch))
            k = r["kiln"].get("median_ms")
            r["batch"] = batch
            r["kiln_fp16_ms"] = base
            r["speedup_vs_kiln_fp16"] = base / k if base and k else None
            results.append(r)
            print("%-22s kiln %8s ms | kiln fp16 %8s ms | %s/fp16 speedup %s | kiln build "
                  "%.1fs host layers %s" % (
                      case, "%.3f" % k if k else "ERR", "%.3f" % base if base else "ERR", prec,
                      "%.2fx" % r["speedup_vs_kiln_fp16"] if r["speedup_vs_kiln_fp16"] else "-",
                      r["kiln"].get("build_seconds", -1), r["kiln"].get("host_layers")),
                  flush=True)
            if "error" in r["kiln"]:
                print("   kiln error: " + r["kiln"]["error"], flush=True)
            continue
        if args.no_torch:
            k = r["kiln"].get("median_ms")
            results.append(r)
            print("%-22s kiln %8s ms | kiln build %.1fs host layers %s" % (
                case, "%.3f" % k if k else "ERR", r["kiln"].get("build_seconds", -1),
                r["kiln"].get("host_layers")), flush=True)
            if "error" in r["kiln"]:
                print("   kiln error: " + r["kiln"]["error"], flush=True)
            continue
        r["torch"] = torch_runs(name, prec, batch, args.iters, not args.no_compile)
        best = min(v for k, v in r["torch"].items()
                   if k in ("eager", "compile_default", "compile_reduce-overhead"))
        k = r["kiln"].get("median_ms")
        r["batch"] = batch
        r["speedup_vs_best_torch"] = best / k if k else None
        results.append(r)
        t = r["torch"]
        print("%-22s kiln %8s ms | eager %7.3f | compile %7s | reduce-overhead %7s | "
              "kiln/best-torch speedup %s | kiln build %.1fs host layers %s" % (
                  case, "%.3f" % k if k else "ERR", t["eager"],
                  "%.3f" % t["compile_default"] if "compile_default" in t else "-",
                  "%.3f" % t["compile_reduce-overhead"] if "compile_reduce-overhead" in t else "-",
                  "%.2fx" % r["speedup_vs_best_torch"] if k else "-",
                  r["kiln"].get("build_seconds", -1), r["kiln"].get("host_layers")),
              flush=True)
        if "error" in r["kiln"]:
            print("   kiln error: " + r["kiln"]["error"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
