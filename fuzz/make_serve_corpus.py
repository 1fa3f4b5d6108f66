#!/usr/bin/env python3
"""make_serve_corpus.py: writes the seed corpus of the `kiln serve` parser
fuzz target (fuzz/corpus/serve): infer requests in JSON and with the binary
tensor extension (byte 0 = 0 or 1, see fuzz_serve_body.h) and config.pbtxt
files (byte 0 = 2)."""
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "serve")
os.makedirs(out, exist_ok=True)
seeds = {}


def infer_json(name, req):
    seeds[name] = b"\x00" + json.dumps(req).encode()


def infer_bin(name, req, blobs):
    head = json.dumps(req).encode()
    seeds[name] = b"\x01" + struct.pack("<H", len(head)) + head + b"".join(blobs)


infer_json("json_fp32", {"id": "a", "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                                 "data": [1, 2.5, -3e-2, 4, 5, 6]}]})
infer_json("json_nested", {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64",
                                        "data": [[1, -2], [3, 9007199254740993]]}],
                           "outputs": [{"name": "y", "parameters": {"binary_data": False}}]})
infer_json("json_types", {"inputs": [
    {"name": "b", "shape": [2], "datatype": "BOOL", "data": [True, False]},
    {"name": "h", "shape": [1], "datatype": "FP16", "data": [0.5]},
    {"name": "u", "shape": [1], "datatype": "UINT8", "data": [255]},
    {"name": "i", "shape": [1], "datatype": "INT8", "data": [-128]},
    {"name": "d", "shape": [1], "datatype": "FP64", "data": [1e300]}],
    "parameters": {"binary_data_output": True, "timeout": 1000}})
infer_json("json_escape", {"id": "\u00e9\ud83d\ude00\n\"", "inputs": [
    {"name": "x\\y", "shape": [], "datatype": "INT32", "data": [7]}]})
infer_bin("bin_fp32", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 16}}],
                       "outputs": [{"name": "y", "parameters": {"binary_data": True}}]},
          [struct.pack("<4f", 1, 2, 3, 4)])
infer_bin("bin_two", {"inputs": [
    {"name": "a", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}},
    {"name": "b", "shape": [1], "datatype": "FP32", "data": [1.0]},
    {"name": "c", "shape": [3], "datatype": "UINT8", "parameters": {"binary_data_size": 3}}]},
          [struct.pack("<2i", 1, 2), b"xyz"])
infer_bin("bin_short", {"inputs": [{"name": "x", "shape": [8], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 32}}]}, [b"\0" * 8])
seeds["bad_json"] = b"\x00{\"inputs\": [ {\"name\": \"x\", "
seeds["deep"] = b"\x00" + b"[" * 200 + b"]" * 200
seeds["numbers"] = b"\x00{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1e999,-0.0,NaN]}]}"

cfg = b"""name: "tiny"
max_batch_size: 16
input [ { name: "image" data_type: TYPE_FP32 dims: [3, 32, 32] } ]
output [ { name: "probs", data_type: TYPE_FP32, dims: [ 10 ] } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100
  default_queue_policy { max_queue_size: 64 default_timeout_microseconds: 5000 } }
instance_group [ { count: 2 kind: KIND_CPU } ]
version_policy: { specific: { versions: [1, 3] } }
model_warmup [ { name: "w" batch_size: 4 inputs { key: "image" value: { data_type: TYPE_FP32 dims: [3, 32, 32] zero_data: true } } } ]
# comment
parameters { key: "x" value: { string_value: 'quoted \\' string' } }
"""
seeds["config_full"] = b"\x02" + cfg
seeds["config_latest"] = b"\x02version_policy { latest { num_versions: 2 } }\nplatform: \"onnxruntime_onnx\"\n"
seeds["config_all"] = b"\x02max_batch_size: 0\nversion_policy <all {}>\ninput: [{name:'x', dims:-1}]"
seeds["config_bad"] = b"\x02input [ { name: \"x\" dims: [3, \n"
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
