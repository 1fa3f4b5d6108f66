#!/usr/bin/env python3
"""serve_fastapi.py: the do-it-yourself deployment serve_bench.py compares
`kiln serve` with: FastAPI + uvicorn (one worker) + onnxruntime, answering
the same KServe v2 binary-tensor requests on /v2/models/{name}/infer.
Usage: serve_fastapi.py PORT NAME=MODEL.onnx [NAME=MODEL.onnx ...]"""
import json
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()
sessions = {}
DT = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32}


@app.get("/v2/health/ready")
def ready():
    return {}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = await request.body()
    hl = int(request.headers.get("inference-header-content-length", len(body)))
    req = json.loads(body[:hl])
    sess = sessions[name]
    feeds, off = {}, hl
    for inp in req["inputs"]:
        n = inp["parameters"]["binary_data_size"]
        feeds[inp["name"]] = np.frombuffer(body[off:off + n], DT[inp["datatype"]]).reshape(inp["shape"])
        off += n
    outs = sess.run(None, feeds)
    meta, blobs = [], []
    for o, v in zip(sess.get_outputs(), outs):
        b = np.ascontiguousarray(v).tobytes()
        meta.append({"name": o.name, "datatype": "FP32", "shape": list(v.shape),
                     "parameters": {"binary_data_size": len(b)}})
        blobs.append(b)
    head = json.dumps({"model_name": name, "outputs": meta}).encode()
    return Response(head + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(head))})


if __name__ == "__main__":
    port = int(sys.argv[1])
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        sessions[name] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
