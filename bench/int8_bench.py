#!/usr/bin/env python3
"""INT8 (explicit quantization) benchmark on the CPU, one run of this script:
ResNet-50 (torchvision, random weights, exported by run_bench.export) is
quantized by onnxruntime's quantize_static into a QDQ model (uint8
activations, int8 per-channel weights, random calibration data); then
  Kiln FP32 engine, Kiln INT8 engine built from the QDQ model, and
  onnxruntime running the same QDQ model (and the FP32 model)
are timed with the same thread count. Also reports how far Kiln's INT8
output is from onnxruntime's, in steps of the output quantization scale.

usage: bench/int8_bench.py KILN_BINARY [--threads 1] [--duration S] [--calib N]
                          [--amx-ab ROUNDS]

--amx-ab: on an AMX machine, also the INT8 engine built and run with AMX
hidden (KILN_CPU_ISA without amxint8: the VNNI tactic), and CPU time per run
of FP32, INT8 (AMX) and INT8 (VNNI) measured interleaved in ROUNDS rounds;
prints every sample and the medians.
"""
import argparse
import json
import os
import subprocess
import sys
import resource
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402


def quantize(fp32, shapes, n_calib):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                          QuantType, quantize_static)
    out = fp32[:-5] + "_qdq.onnx"
    if os.path.exists(out):
        return out

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.it = iter([{k: rng.standard_normal(s).astype(np.float32)
                             for k, s in shapes.items()} for _ in range(n_calib)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(fp32, out, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    return out


def kiln_build_isa(kiln, path, shapes, isa):
    """Builds path into an engine as on a machine with only `isa` features."""
    spec = ",".join("%s:%s" % (k, "x".join(map(str, v))) for k, v in shapes.items())
    engine = path[:-5] + "_" + isa.replace(",", "_") + ".kiln"
    env = dict(os.environ, KILN_CPU_ISA=isa)
    subprocess.run([kiln, "build", path, "-o", engine, "--shapes", spec], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return engine


def kiln_cpu_ms(kiln, engine, shapes, threads, n, env=None):
    """CPU milliseconds per run of `kiln bench` (user + sys of the child),
    from two runs of n and 3n iterations (cancels load, build and warm-up)."""
    spec = ",".join("%s:%s" % (k, "x".join(map(str, v))) for k, v in shapes.items())
    cpu = []
    for it in (n, 3 * n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([kiln, "bench", "--engine", engine, "--shapes", spec, "--threads",
                        str(threads), "--duration", "0", "--warmup", "0", "--iterations",
                        str(it)], check=True, stdout=subprocess.DEVNULL, env=env)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return (cpu[1] - cpu[0]) * 1e3 / (2 * n)


def ort_cpu_ms(path, shapes, threads, n):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    sess.run(None, feeds)
    t0 = time.process_time()
    for _ in range(n):
        sess.run(None, feeds)
    return (time.process_time() - t0) * 1e3 / n


def engine_path(model, shapes, threads):
    """The engine run_bench.bench_kiln built for model (named by batch and
    thread count)."""
    return model[:-5] + "_b%d_t%d.kiln" % (next(iter(shapes.values()))[0], threads)


def accuracy(kiln, qdq, shapes, threads):
    """max |kiln - ort| on the INT8 model, in output quantization steps."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    m = onnx.load(qdq, load_external_data=False)
    by_out = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: i for i in m.graph.initializer}
    out_name = m.graph.output[0].name
    dq = by_out[out_name]
    step = float(numpy_helper.to_array(inits[dq.input[1]])) if dq.op_type == \
        "DequantizeLinear" else float("nan")
    rng = np.random.default_rng(5)
    feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    want = ort.InferenceSession(qdq, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for k, v in feeds.items():
            np.save(os.path.join(tmp, k + ".npy"), v)
            args += ["--input", f"{k}={os.path.join(tmp, k + '.npy')}"]
        subprocess.run([kiln, "run", "--engine", engine_path(qdq, shapes, threads),
                        "--output-dir", tmp] + args, check=True, stdout=subprocess.DEVNULL)
        got = numpy_helper.to_array(onnx.load_tensor(os.path.join(tmp, "output_0.pb")))
    err = float(np.max(np.abs(got - want)))
    same_top1 = int(np.argmax(got) == np.argmax(want))
    return {"max_abs_diff": err, "step": step, "steps": err / step, "same_top1": same_top1}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--out", default=None)
    ap.add_argument("--avx2", action="store_true",
                    help="also Kiln FP32 and INT8 built and run as on an AVX2-only machine")
    ap.add_argument("--cpu-iters", type=int, default=5,
                    help="runs for the CPU-time measurement (robust to a loaded machine)")
    ap.add_argument("--amx-ab", type=int, default=0, metavar="ROUNDS")
    a = ap.parse_args()
    kiln = os.path.abspath(a.kiln)
    fp32, shapes, dtypes = run_bench.export("resnet50")
    qdq = quantize(fp32, shapes, a.calib)
    T = a.threads
    res = {}
    res["kiln_fp32"] = run_bench.bench_kiln(kiln, fp32, shapes, T, a.duration)
    res["kiln_int8"] = run_bench.bench_kiln(kiln, qdq, shapes, T, a.duration)
    res["ort_int8_qdq"] = run_bench.bench_ort(qdq, shapes, dtypes, T, a.duration)
    res["ort_fp32"] = run_bench.bench_ort(fp32, shapes, dtypes, T, a.duration)
    res["accuracy_vs_ort"] = accuracy(kiln, qdq, shapes, T)
    # CPU time per run, interleaved A/B (wall-clock latency on a shared,
    # loaded machine swings with the other jobs; 1-thread CPU time much less)
    cpu = {"kiln_fp32": [], "kiln_int8": [], "ort_int8_qdq": [], "ort_fp32": []}
    for _ in range(2):
        cpu["kiln_fp32"].append(kiln_cpu_ms(kiln, engine_path(fp32, shapes, T), shapes, T,
                                            a.cpu_iters))
        cpu["kiln_int8"].append(kiln_cpu_ms(kiln, engine_path(qdq, shapes, T), shapes, T,
                                            a.cpu_iters))
        cpu["ort_int8_qdq"].append(ort_cpu_ms(qdq, shapes, T, 3 * a.cpu_iters))
        cpu["ort_fp32"].append(ort_cpu_ms(fp32, shapes, T, 3 * a.cpu_iters))
    res["cpu_ms_per_run"] = {k: min(v) for k, v in cpu.items()}
    if a.avx2:
        # the same engines as an AVX2-only machine would build them
        env = dict(os.environ, KILN_CPU_ISA="avx2,fma")
        e32 = kiln_build_isa(kiln, fp32, shapes, "avx2,fma")
        e8 = kiln_build_isa(kiln, qdq, shapes, "avx2,fma")
        c32, c8 = [], []
        for _ in range(2):
            c32.append(kiln_cpu_ms(kiln, e32, shapes, T, a.cpu_iters, env))
            c8.append(kiln_cpu_ms(kiln, e8, shapes, T, a.cpu_iters, env))
        res["cpu_ms_per_run"]["kiln_fp32_avx2only"] = min(c32)
        res["cpu_ms_per_run"]["kiln_int8_avx2only"] = min(c8)
    if a.amx_ab:
        noamx = "avx2,fma,avx512f,avx512bw,avx512vnni"
        env = dict(os.environ, KILN_CPU_ISA=noamx)
        e8v = kiln_build_isa(kiln, qdq, shapes, noamx)
        ab = {"kiln_fp32": [], "kiln_int8_amx": [], "kiln_int8_vnni": []}
        for _ in range(a.amx_ab):
            ab["kiln_fp32"].append(kiln_cpu_ms(kiln, engine_path(fp32, shapes, T), shapes, T,
                                               a.cpu_iters))
            ab["kiln_int8_amx"].append(kiln_cpu_ms(kiln, engine_path(qdq, shapes, T), shapes, T,
                                                   a.cpu_iters))
            ab["kiln_int8_vnni"].append(kiln_cpu_ms(kiln, e8v, shapes, T, a.cpu_iters, env))
        res["amx_ab_cpu_ms"] = ab
        print(f"A/B, CPU ms per run, {a.amx_ab} interleaved rounds (samples; median):")
        for k, v in ab.items():
            print(f"  {k:15s} {' '.join('%.2f' % x for x in v)}; median {np.median(v):.2f}")
        m = {k: float(np.median(v)) for k, v in ab.items()}
        print(f"  INT8 AMX vs VNNI: {m['kiln_int8_vnni'] / m['kiln_int8_amx']:.2f}x; "
              f"INT8 AMX vs FP32: {m['kiln_fp32'] / m['kiln_int8_amx']:.2f}x; "
              f"INT8 VNNI vs FP32: {m['kiln_fp32'] / m['kiln_int8_vnni']:.2f}x")
    med = {k: v["latency_ms"]["median"] for k, v in res.items() if "latency_ms" in v}
    print(f"ResNet-50 1x3x224x224, {T} thread(s), median latency (ms):")
    for k, v in med.items():
        print(f"  {k:14s} {v:8.2f}")
    print(f"  Kiln INT8 speed-up vs Kiln FP32: {med['kiln_fp32'] / med['kiln_int8']:.2f}x; "
          f"vs onnxruntime QDQ: {med['ort_int8_qdq'] / med['kiln_int8']:.2f}x")
    c = res["cpu_ms_per_run"]
    print("CPU time per run (ms, best of 2 interleaved rounds):")
    for k, v in c.items():
        print(f"  {k:14s} {v:8.2f}")
    print(f"  Kiln INT8 speed-up vs Kiln FP32: {c['kiln_fp32'] / c['kiln_int8']:.2f}x; "
          f"vs onnxruntime QDQ: {c['ort_int8_qdq'] / c['kiln_int8']:.2f}x")
    if "kiln_int8_avx2only" in c:
        print(f"  AVX2 only: Kiln INT8 speed-up vs Kiln FP32: "
              f"{c['kiln_fp32_avx2only'] / c['kiln_int8_avx2only']:.2f}x")
    acc = res["accuracy_vs_ort"]
    print(f"  Kiln INT8 vs onnxruntime INT8: max |diff| {acc['max_abs_diff']:.4g} "
          f"= {acc['steps']:.2f} output steps; same top-1: {acc['same_top1']}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
