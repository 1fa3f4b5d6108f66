#!/usr/bin/env python3
"""qdyn_bench.py: dynamically quantized models (onnxruntime's
quantize_dynamic: DynamicQuantizeLinear -> MatMulInteger/ConvInteger ->
Cast -> scale Mul) through Kiln and onnxruntime, the same model file, inputs
and thread count, in one run. Median latency of each and the ratio
Kiln / onnxruntime.

Models: bert (BERT-base seq 128 from tests/models/export_models.py,
weights QInt8: MatMulInteger), resnet50 (torchvision ResNet-50, weights
QUInt8: ConvInteger), yolov8n (nudenet's 320x320 YOLOv8n from the trained
corpus cache, the case check_corpus.py quantizes; skipped when absent).

usage: qdyn_bench.py KILN [--models bert,resnet50,yolov8n] [--threads 1,2]
                     [--duration 3] [--batch 1]"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "qdyn_bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))


def quantized(name):
    import export_models
    from onnxruntime.quantization import QuantType, quantize_dynamic
    os.makedirs(WORK, exist_ok=True)
    out = os.path.join(WORK, name + "_qdyn.onnx")
    if os.path.exists(out):
        return out
    if name == "yolov8n":
        src = os.path.expanduser("~/.cache/kiln-corpus/cases/nudenet_320n_qdyn/model.onnx")
        if not os.path.exists(src):
            return None
        import shutil
        shutil.copy(src, out)
        return out
    case = {"bert": "bert_base_op17", "resnet50": "resnet50_op17"}[name]
    mdir = export_models.DEFAULT_OUT
    export_models.export_all(mdir, True, [case.rsplit("_op", 1)[0]], log=lambda s: None)
    src = os.path.join(mdir, case, "model.onnx")
    wt = QuantType.QInt8 if name == "bert" else QuantType.QUInt8
    quantize_dynamic(src, out, weight_type=wt)
    return out


def feeds(model, batch):
    import onnx
    m = onnx.load(model, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    f, shapes = {}, []
    rng = np.random.default_rng(0)
    for i in m.graph.input:
        if i.name in inits:
            continue
        et = i.type.tensor_type.elem_type
        dims = []
        rank = len(i.type.tensor_type.shape.dim)
        for k, d in enumerate(i.type.tensor_type.shape.dim):
            if d.dim_value > 0:
                dims.append(d.dim_value)
            else:  # batch; sequence 128; an image's free sides 320
                dims.append(batch if k == 0 else 320 if rank == 4 else 128)
        if et == onnx.TensorProto.INT64:
            a = (np.ones(dims, np.int64) if "mask" in i.name
                 else np.zeros(dims, np.int64) if "type" in i.name
                 else rng.integers(0, 1000, dims).astype(np.int64))
        else:
            a = rng.random(dims, dtype=np.float32)
        f[i.name] = a
        shapes.append("%s:%s" % (i.name, "x".join(str(d) for d in dims)))
    return f, ",".join(shapes)


def kiln_ms(kiln, model, shapes, threads, duration):
    eng = model.replace(".onnx", "_t%d.kiln" % threads)
    subprocess.run([kiln, "build", model, "-o", eng, "--shapes", shapes, "--threads",
                    str(threads)], check=True, capture_output=True)
    p = subprocess.run([kiln, "bench", "--engine", eng, "--shapes", shapes, "--threads",
                        str(threads), "--duration", str(duration), "--json"],
                       check=True, capture_output=True, text=True)
    j = json.loads(p.stdout[p.stdout.index("{"):])
    lat = j.get("latency_ms", j)
    return lat.get("median", lat.get("median_ms"))


def ort_ms(model, f, threads, duration):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, f)
    t, end = [], time.perf_counter() + duration
    while time.perf_counter() < end or len(t) < 10:
        t0 = time.perf_counter()
        s.run(None, f)
        t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("--models", default="bert,resnet50,yolov8n")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    kiln = os.path.abspath(a.kiln)
    print("| model | threads | Kiln ms | onnxruntime ms | Kiln/ORT |")
    print("|---|---|---|---|---|")
    for name in a.models.split(","):
        model = quantized(name)
        if not model:
            print("| %s | - | skipped (model not available) | | |" % name)
            continue
        f, shapes = feeds(model, a.batch)
        for th in [int(x) for x in a.threads.split(",")]:
            k = kiln_ms(kiln, model, shapes, th, a.duration)
            o = ort_ms(model, f, th, a.duration)
            print("| %s | %d | %.2f | %.2f | %.2fx |" % (name, th, k, o, k / o), flush=True)


if __name__ == "__main__":
    main()
