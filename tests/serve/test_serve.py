#!/usr/bin/env python3
"""test_serve.py: `kiln serve` end to end on loopback, bounded in time.

Builds a model repository in a temporary folder (the bundled tiny CNN as
model.onnx, built at load; a 16-wide MLP; a model with a tiny queue), starts
the server, and checks with the real tritonclient[http]: health, metadata,
config, statistics, JSON and binary inference against onnxruntime, async
requests, errors (unknown model/version/output, wrong shape/dtype). Then: a
load test at concurrency 1..64, hot reload of a new version under load (0
failed requests), a failed reload leaving the old version serving, 10x
overload answered 200/503 with bounded memory, hostile requests on raw
sockets (each answered 4xx or closed while the server keeps serving), the
Prometheus endpoint scraped by a real Prometheus when one is installed, and
SIGTERM under load (exit 0, no request lost). Warm-up: READY only after
every version ran a request through its batcher and a loopback HTTP infer
request on every HTTP thread (counted apart from the statistics), a
reloaded version warmed before serving, and models failing their warm-up
(a min-shape run, a model_warmup batch) UNAVAILABLE with the reason.

Usage: test_serve.py KILN_BINARY      Ends with "N passed, M failed"."""
import concurrent.futures as cf
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_models  # noqa: E402

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"PASS {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


TINY_CFG = """name: "tiny"
max_batch_size: 16
input [ { name: "image" data_type: TYPE_FP32 dims: [3, 32, 32] } ]
output [ { name: "probs" data_type: TYPE_FP32 dims: [10] } ]
dynamic_batching { preferred_batch_size: [4, 8] max_queue_delay_microseconds: 200 }
instance_group [ { count: 1 kind: KIND_CPU } ]
model_warmup [ { name: "w" batch_size: 4 } ]
parameters { key: "kiln_pad_batches" value: { string_value: "true" } }
"""
MLP_CFG = """name: "mlp"
max_batch_size: 32
dynamic_batching { max_queue_delay_microseconds: 100 }
instance_group [ { count: 2 } ]
"""
SMALLQ_CFG = """max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [16] } ]
dynamic_batching { default_queue_policy { max_queue_size: 2 } }
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class Server:
    def __init__(self, kiln, repo, extra=(), ready_path="/v2/health/ready"):
        self.http_port, self.metrics_port = free_port(), free_port()
        self.log = open(os.path.join(repo, "..", f"server-{self.http_port}.log"), "w")
        self.proc = subprocess.Popen(
            [kiln, "serve", "--model-repository", repo, "--http-port", str(self.http_port),
             "--metrics-port", str(self.metrics_port), "--threads", "2",
             "--idle-timeout-secs", "2", "--drain-secs", "20", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"127.0.0.1:{self.http_port}"
        deadline = time.time() + 240
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.get(ready_path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready; see " + self.log.name)

    def get(self, path, method="GET", body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, r

    def metrics(self):
        return self.get("/metrics", port=self.metrics_port)[1].decode()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -999
        self.log.close()
        return rc


def metric(text, name, **labels):
    total = None
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def infer_raw(port, model, x, name="x", conn=None, version=None):
    """One binary-protocol request on a raw http.client connection."""
    head = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    c.request("POST", path, body=head + x.tobytes(),
              headers={"Inference-Header-Content-Length": str(len(head)),
                       "Content-Type": "application/octet-stream"})
    r = c.getresponse()
    data = r.read()
    if own:
        c.close()
    hl = r.getheader("Inference-Header-Content-Length")
    meta = json.loads(data[:int(hl)] if hl else data) if data else {}
    return r.status, meta, data[int(hl):] if hl else b""


def run_load(port, model, seconds, conc, stop=None, width=16):
    """Closed-loop load on keep-alive connections; returns (codes, versions)."""
    codes, versions = {}, {}
    lock = threading.Lock()
    end = time.time() + seconds

    def worker(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        x = np.full((1, width), float(i), np.float32)
        while time.time() < end and not (stop and stop.is_set()):
            try:
                st, meta, _ = infer_raw(port, model, x, conn=c)
            except Exception as e:  # counted as a failure
                st, meta = type(e).__name__, {}
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                codes[st] = codes.get(st, 0) + 1
                v = meta.get("model_version")
                if v:
                    versions[v] = versions.get(v, 0) + 1
        c.close()

    with cf.ThreadPoolExecutor(conc) as ex:
        list(ex.map(worker, range(conc)))
    return codes, versions


def tritonclient_suite(srv, tiny_onnx):
    import onnxruntime as ort
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException
    c = th.InferenceServerClient(srv.url, concurrency=8)
    check(c.is_server_live() and c.is_server_ready(), "health live/ready")
    md = c.get_server_metadata()
    check(md["name"] == "kiln" and "binary_tensor_data" in md["extensions"], "server metadata")
    check(c.is_model_ready("tiny") and c.is_model_ready("tiny", "1"), "model ready")
    check(not c.is_model_ready("nope"), "unknown model not ready")
    mm = c.get_model_metadata("tiny")
    check(mm["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}
          and mm["outputs"][0]["shape"] == [-1, 10] and mm["versions"] == ["1"], "model metadata")
    cfg = c.get_model_config("tiny")
    check(cfg["max_batch_size"] == 16 and cfg["input"][0]["dims"] == [3, 32, 32]
          and cfg["dynamic_batching"]["preferred_batch_size"] == [4, 8], "model config")
    mlp_cfg = c.get_model_config("mlp")
    check(mlp_cfg["max_batch_size"] == 32 and mlp_cfg["input"][0]["name"] == "x"
          and mlp_cfg["instance_group"][0]["count"] == 2, "config auto-completed from the engine")
    sess = ort.InferenceSession(tiny_onnx)
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    ref = sess.run(None, {"image": x})[0]
    for binary in (True, False):
        i = th.InferInput("image", list(x.shape), "FP32")
        i.set_data_from_numpy(x, binary_data=binary)
        o = th.InferRequestedOutput("probs", binary_data=binary)
        r = c.infer("tiny", [i], outputs=[o], request_id="r1")
        got = r.as_numpy("probs")
        check(got is not None and got.shape == (3, 10) and np.abs(got - ref).max() < 1e-4
              and r.get_response()["id"] == "r1",
              f"infer {'binary' if binary else 'JSON'} matches onnxruntime")
    i = th.InferInput("image", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    r = c.infer("tiny", [i], model_version="1")
    check(np.abs(r.as_numpy("probs") - ref).max() < 1e-4, "infer, all outputs, explicit version")
    # async: several in flight at once (they may be batched together)
    xs = [np.random.default_rng(10 + k).standard_normal((1, 3, 32, 32)).astype(np.float32)
          for k in range(16)]
    reqs = []
    for xk in xs:
        ik = th.InferInput("image", [1, 3, 32, 32], "FP32")
        ik.set_data_from_numpy(xk)
        reqs.append(c.async_infer("tiny", [ik]))
    worst = max(float(np.abs(rq.get_result().as_numpy("probs") - sess.run(None, {"image": xk})[0]).max())
                for rq, xk in zip(reqs, xs))
    check(worst < 1e-4, f"16 async requests (worst diff {worst:.2e})")

    def err_of(fn):
        try:
            fn()
        except InferenceServerException as e:
            return e
        return None

    e = err_of(lambda: c.infer("nope", [i]))
    check(e is not None and e.status() == "400" and "unknown model" in e.message(), "unknown model: 400")
    e = err_of(lambda: c.infer("tiny", [i], model_version="7"))
    check(e is not None and e.status() == "400", "unknown version: 400")
    bad = th.InferInput("image", [1, 3, 31, 32], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3, 31, 32), np.float32))
    e = err_of(lambda: c.infer("tiny", [bad]))
    check(e is not None and e.status() == "400" and "profile" in e.message(), "wrong shape: 400")
    bad = th.InferInput("image", [1, 3, 32, 32], "INT32")
    bad.set_data_from_numpy(np.zeros((1, 3, 32, 32), np.int32))
    e = err_of(lambda: c.infer("tiny", [bad]))
    check(e is not None and e.status() == "400" and "type" in e.message(), "wrong dtype: 400")
    big = th.InferInput("image", [17, 3, 32, 32], "FP32")
    big.set_data_from_numpy(np.zeros((17, 3, 32, 32), np.float32))
    e = err_of(lambda: c.infer("tiny", [big]))
    check(e is not None and e.status() == "400", "batch above max_batch_size: 400")
    e = err_of(lambda: c.infer("tiny", [i], outputs=[th.InferRequestedOutput("nope")]))
    check(e is not None and e.status() == "400", "unknown output: 400")
    st = c.get_inference_statistics("tiny")["model_stats"][0]
    # 19 successful requests of 25 rows; 4 failures reached the model (the
    # unknown model and version never did). config's model_warmup ran once.
    check(st["inference_stats"]["success"]["count"] == 19 and st["inference_count"] == 25
          and 2 <= st["execution_count"] <= 20 and st["inference_stats"]["fail"]["count"] == 4,
          f"statistics count successes, rows, executions and failures ({st['inference_stats']['success']}, "
          f"{st['inference_count']}, {st['execution_count']}, {st['inference_stats']['fail']})")
    idx = c.get_model_repository_index()
    check({m["name"] for m in idx} >= {"tiny", "mlp"}
          and all(m["state"] == "READY" for m in idx), "repository index")
    c.unload_model("smallq")
    check(not c.is_model_ready("smallq"), "unload")
    c.load_model("smallq")
    check(c.is_model_ready("smallq"), "load through the repository API")
    c.close()


def warmup_before_ready(srv, models):
    """READY came after the server's own warm-up: every version ran a request
    through its batcher and a loopback HTTP infer request, which the
    statistics leave out."""
    m = srv.metrics()
    for name in models:
        b = metric(m, "kiln_warmup_requests_total", model=name, version="1", path="batcher")
        h = metric(m, "kiln_warmup_requests_total", model=name, version="1", path="http")
        check(b and b >= 1 and h and h >= 1,
              f"{name}: warm-up through the batcher ({b}) and over HTTP ({h}) before READY")
    check((metric(m, "kiln_warmup_requests_total", model="tiny", version="1", path="batcher") or 0) >= 2,
          "tiny: config's model_warmup ran beside the batch-1 warm-up")
    st = json.loads(srv.get("/v2/models/mlp/stats")[1])["model_stats"][0]
    check(st["inference_stats"]["success"]["count"] == 0 and st["execution_count"] == 0
          and metric(m, "nv_inference_request_success", model="mlp") == 0
          and metric(m, "kiln_batch_size_count", model="mlp") == 0,
          f"warm-up requests are not in the statistics ({st['inference_stats']['success']}, "
          f"{st['execution_count']} executions)")
    with open(srv.log.name) as f:
        log = f.read()
    mt = re.search(r"HTTP warm-up: (\d+) model version\(s\), \d+ round\(s\) of \d+ connection\(s\), "
                   r"(\d+) of (\d+) HTTP thread", log)
    check(mt and int(mt.group(1)) == len(models) and mt.group(2) == mt.group(3),
          f"every HTTP thread served a warm-up infer request ({mt.group(0) if mt else 'no log line'})")


def warmup_failures(kiln, tmp, models_dir):
    """A model whose warm-up fails is not READY, says why, and keeps the
    server from being READY; a good model beside it is. bad_min: the engine
    cannot run its profile's min batch (a Reshape of 2 values into rows of
    3), which only the min-shape warm-up reaches. bad_warmup: a
    config.pbtxt model_warmup batch the model refuses. min2: an engine
    whose smallest batch is 2 is READY (warmed at 2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    repo = os.path.join(tmp, "repo_warm")
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"])], "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 3])],
        [numpy_helper.from_array(np.array([-1, 3], np.int64), "s")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, os.path.join(tmp, "reshape.onnx"))
    for name, src, shapes, cfg in (
            ("bad_min", os.path.join(tmp, "reshape.onnx"), ("x:1x2", "x:3x2", "x:3x2"), ""),
            ("bad_warmup", os.path.join(models_dir, "mlp.onnx"), ("x:1x16", "x:8x16", "x:32x16"),
             'model_warmup [ { name: "w" batch_size: 64 } ]\n'),
            ("good", os.path.join(models_dir, "mlp.onnx"), ("x:1x16", "x:8x16", "x:32x16"), ""),
            # an engine taking batches of 2 and more warms at 2, not 1
            ("min2", os.path.join(models_dir, "mlp.onnx"), ("x:2x16", "x:8x16", "x:32x16"), "")):
        os.makedirs(os.path.join(repo, name, "1"))
        subprocess.run([kiln, "build", src, "-o", os.path.join(repo, name, "1", "model.kiln"),
                        "--min-shapes", shapes[0], "--opt-shapes", shapes[1], "--max-shapes", shapes[2]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        write(os.path.join(repo, name, "config.pbtxt"), cfg)
    srv = Server(kiln, repo, ready_path="/v2/health/live")
    try:
        deadline = time.time() + 60
        idx = []
        while time.time() < deadline:
            idx = json.loads(srv.get("/v2/repository/index", "POST")[1])
            if len(idx) == 4 and srv.get("/v2/models/good/ready")[0] == 200:
                break
            time.sleep(0.2)
        state = {e["name"]: (e["state"], e.get("reason", "")) for e in idx}
        with open(srv.log.name) as f:
            log = f.read()
        bm = state.get("bad_min", ("", ""))
        check(bm[0] == "UNAVAILABLE" and "warming a pool context" in bm[1] and "divide" in bm[1]
              and srv.get("/v2/models/bad_min/ready")[0] == 400 and "divide" in log,
              f"a model failing its min-shape warm-up is UNAVAILABLE with the reason ({bm[1][:120]})")
        bw = state.get("bad_warmup", ("", ""))
        check(bw[0] == "UNAVAILABLE" and "warm-up request (batch 64, config.pbtxt model_warmup)" in bw[1]
              and srv.get("/v2/models/bad_warmup/ready")[0] == 400,
              f"a model whose model_warmup fails is UNAVAILABLE with the reason ({bw[1][:120]})")
        check(state.get("good", ("",))[0] == "READY" and srv.get("/v2/models/good/ready")[0] == 200
              and srv.get("/v2/health/ready")[0] == 400,
              "the good model beside them is READY; the server is not")
        w = metric(srv.metrics(), "kiln_warmup_requests_total", model="min2", path="http")
        check(state.get("min2", ("",))[0] == "READY" and w and w >= 1,
              f"an engine whose smallest batch is 2 warms at batch 2 and is READY ({state.get('min2')}, {w})")
    finally:
        check(srv.stop() == 0, "clean stop (warm-up failures)")


def first_request_latency(srv):
    """The first request after READY against the steady-state median."""
    x = np.ones((1, 16), np.float32)
    c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
    t0 = time.perf_counter()
    infer_raw(srv.http_port, "mlp", x, conn=c)
    first = time.perf_counter() - t0
    lat = []
    for _ in range(200):
        t0 = time.perf_counter()
        infer_raw(srv.http_port, "mlp", x, conn=c)
        lat.append(time.perf_counter() - t0)
    c.close()
    med = float(np.median(lat))
    print(f"first request {first * 1e6:.0f} us, steady median {med * 1e6:.0f} us")
    # Informational: on a shared 2-core machine scheduling noise dominates;
    # the test only guards against a cold-start stall (10x).
    check(first < 10 * med + 0.002, "first request after READY is not a cold start")


def load_tests(srv):
    for conc in (1, 8, 64):
        codes, _ = run_load(srv.http_port, "mlp", 2.0, conc)
        n = sum(codes.values())
        check(set(codes) == {200} and n > 0, f"load at concurrency {conc}: {n} requests, codes {codes}")
    m = srv.metrics()
    hist = metric(m, "kiln_batch_size_count", model="mlp")
    rows = metric(m, "kiln_batch_size_sum", model="mlp")
    check(hist and rows and rows / hist > 1.0, f"dynamic batching formed batches (mean {rows / hist:.2f} rows)")


def hot_reload(srv, repo, models_dir):
    stop = threading.Event()
    result = {}

    def load():
        result["r"] = run_load(srv.http_port, "mlp", 60, 16, stop=stop)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1.0)
    # New version 2 appears on disk; the poller loads and warms it beside 1.
    tmp = os.path.join(repo, "mlp", ".v2tmp")
    os.makedirs(tmp)
    shutil.copy(os.path.join(models_dir, "mlp_v2.onnx"), os.path.join(tmp, "model.onnx"))
    os.rename(tmp, os.path.join(repo, "mlp", "2"))
    deadline = time.time() + 60
    while time.time() < deadline:
        if srv.get("/v2/models/mlp")[1].find(b'"2"') >= 0:
            break
        time.sleep(0.2)
    time.sleep(1.5)
    stop.set()
    t.join()
    codes, versions = result["r"]
    check(set(codes) == {200} and "1" in versions and "2" in versions,
          f"hot reload under load: codes {codes}, versions answered {versions}")
    w2 = metric(srv.metrics(), "kiln_warmup_requests_total", model="mlp", version="2", path="batcher")
    check(w2 and w2 >= 1, f"the reloaded version warmed through its batcher before serving ({w2})")
    # A version that fails to load leaves version 2 serving.
    os.makedirs(os.path.join(repo, "mlp", "3"))
    write(os.path.join(repo, "mlp", "3", "model.onnx"), "this is not an onnx file")
    deadline = time.time() + 30
    reason = ""
    while time.time() < deadline:
        idx = json.loads(srv.get("/v2/repository/index", "POST")[1])
        reason = " ".join(m.get("reason", "") for m in idx if m["name"] == "mlp")
        if reason:
            break
        time.sleep(0.2)
    st, meta, _ = infer_raw(srv.http_port, "mlp", np.ones((1, 16), np.float32))
    check(reason and st == 200 and meta.get("model_version") == "2",
          f"failed reload keeps the old version serving (reason: {reason[:80]})")
    shutil.rmtree(os.path.join(repo, "mlp", "3"))


def overload(srv):
    x = np.ones((4, 16), np.float32)
    rss0 = metric(srv.metrics(), "kiln_process_resident_memory_bytes")
    codes = {}
    lock = threading.Lock()

    def one(_):
        try:
            st, _, _ = infer_raw(srv.http_port, "smallq", x)
        except Exception as e:
            st = type(e).__name__
        with lock:
            codes[st] = codes.get(st, 0) + 1

    with cf.ThreadPoolExecutor(64) as ex:
        list(ex.map(one, range(640)))
    rss1 = metric(srv.metrics(), "kiln_process_resident_memory_bytes")
    check(set(codes) <= {200, 503} and sum(codes.values()) == 640,
          f"overload: every request answered 200 or 503 ({codes})")
    check(rss1 < rss0 + 64 * 2**20, f"memory bounded under overload ({rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB)")
    rej = metric(srv.metrics(), "nv_inference_request_failure", model="smallq", reason="REJECTED")
    check(codes.get(503, 0) == 0 or rej, "rejections counted as REJECTED")


def raw(port, data, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
        return out
    except (ConnectionResetError, socket.timeout):
        return b""
    finally:
        if read:
            s.close()


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0  # closed without an answer


def hostile(srv):
    p = srv.http_port
    ok = lambda: srv.get("/v2/health/live")[0] == 200  # noqa: E731
    cases = {
        "malformed request line": b"GARBAGE\r\n\r\n",
        "not HTTP at all": b"\x00\x01\x02\xff" * 64,
        "huge Content-Length": b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 99999999999\r\n\r\n",
        "negative Content-Length": b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: -5\r\n\r\n",
        "bad JSON": b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{\"inputs\"",
        "binary size lies": b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n"
                            b"Inference-Header-Content-Length: 500\r\nContent-Length: 2\r\n\r\n{}",
        "unknown path": b"GET /v3/whatever HTTP/1.1\r\nHost: x\r\n\r\n",
        "huge header": b"GET /v2 HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 200000 + b"\r\n\r\n",
        "deep JSON": b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
                     + b"[" * 1000 + b"]" * 1000,
    }
    for name, data in cases.items():
        st = status_of(raw(p, data))
        check((400 <= st < 500 or st == 0) and ok(), f"hostile: {name} -> {st or 'closed'}, server alive")
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                   "data": ["a"] * 16}]}).encode()
    st = srv.get("/v2/models/mlp/infer", "POST", body)[0]
    check(st == 400, "hostile: strings as FP32 data -> 400")
    body = json.dumps({"inputs": [{"name": "x", "shape": [100000000000, 16], "datatype": "FP32",
                                   "data": [1]}]}).encode()
    check(srv.get("/v2/models/mlp/infer", "POST", body)[0] == 400, "hostile: lying shape -> 400")
    # Lying Content-Length, slow sender and idle connections: none of them
    # blocks other clients, and the server closes them after its idle timeout.
    liar = raw(p, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{", read=False)
    slow = raw(p, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n", read=False)
    idle = [socket.create_connection(("127.0.0.1", p)) for _ in range(64)]
    t0 = time.time()
    codes, _ = run_load(p, "mlp", 1.0, 8)
    check(set(codes) == {200}, f"others served while 66 connections stall ({codes})")
    for k in range(3):
        slow.sendall(b"X")
        time.sleep(0.5)
    time.sleep(max(0.0, 3.5 - (time.time() - t0)))
    for s in [liar, slow] + idle[:1]:
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b"timeout"
        check(data != b"timeout", f"stalled connection closed by the server ({data[:12]!r})")
    for s in [liar, slow] + idle:
        s.close()
    check(ok(), "server alive after hostile requests")


def prometheus(srv, tmp):
    prom = shutil.which("prometheus")
    if not prom:
        print("SKIP prometheus: not installed (scripts/setup.sh --test installs Debian's)")
        return
    port = free_port()
    cfg = os.path.join(tmp, "prom.yml")
    write(cfg, f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kiln\n"
               f"    static_configs:\n      - targets: ['127.0.0.1:{srv.metrics_port}']\n")
    p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/promdata",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    value = None
    try:
        deadline = time.time() + 40
        while time.time() < deadline and value is None:
            time.sleep(1)
            try:
                q = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query="
                                           "nv_inference_count%7Bmodel%3D%22mlp%22%7D", timeout=5)
                res = json.loads(q.read())["data"]["result"]
                if res:
                    value = float(res[0]["value"][1])
                up = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5)
                health = [t["health"] for t in json.loads(up.read())["data"]["activeTargets"]]
            except OSError:
                health = []
        check(value and value > 0 and health == ["up"],
              f"prometheus scraped nv_inference_count = {value} (target {health})")
    finally:
        p.terminate()
        p.wait(10)


def sigterm_under_load(srv):
    stop = threading.Event()
    result = {}

    def load():
        result["r"] = run_load(srv.http_port, "mlp", 30, 16, stop=stop)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1.5)
    t0 = time.time()
    rc = srv.stop(signal.SIGTERM)
    stop.set()
    t.join()
    codes, _ = result["r"]
    lost = {k: v for k, v in codes.items() if k not in (200, "ConnectionRefusedError")}
    check(rc == 0, f"SIGTERM: exit status {rc} after {time.time() - t0:.1f}s")
    check(codes.get(200, 0) > 0 and not lost, f"SIGTERM under load loses no request ({codes})")


GPU_CFG = """name: "tiny_gpu"
max_batch_size: 16
input [ { name: "image" data_type: TYPE_FP32 dims: [3, 32, 32] } ]
output [ { name: "probs" data_type: TYPE_FP32 dims: [10] } ]
dynamic_batching { preferred_batch_size: [8, 16] max_queue_delay_microseconds: 500 }
instance_group [ { count: 2 kind: KIND_GPU } ]
optimization { execution_accelerators { gpu_execution_accelerator : [
  { name : "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }
"""


def gpu_model(kiln, tmp, tiny, on_gpu):
    """A KIND_GPU model with TensorRT-style FP16 precision. On a GPU machine
    (--gpu): READY, reported as KIND_GPU, answers like onnxruntime within
    FP16's tolerance, batches concurrent requests. Without a GPU: that one
    model is UNAVAILABLE with a reason naming the missing GPU, and a CPU
    model beside it still serves."""
    import onnxruntime as ort
    repo = os.path.join(tmp, "repo_gpu")
    os.makedirs(os.path.join(repo, "tiny_gpu", "1"))
    shutil.copy(tiny, os.path.join(repo, "tiny_gpu", "1", "model.onnx"))
    write(os.path.join(repo, "tiny_gpu", "config.pbtxt"), GPU_CFG)
    os.makedirs(os.path.join(repo, "tiny_cpu", "1"))
    shutil.copy(tiny, os.path.join(repo, "tiny_cpu", "1", "model.onnx"))
    write(os.path.join(repo, "tiny_cpu", "config.pbtxt"),
          TINY_CFG.replace('name: "tiny"', 'name: "tiny_cpu"'))
    # Server-wide readiness needs every model; wait for the CPU one, then
    # for the GPU one to settle (READY, or UNAVAILABLE with a reason).
    srv = Server(kiln, repo, ready_path="/v2/models/tiny_cpu/ready")
    try:
        index = {}
        deadline = time.time() + 300
        while time.time() < deadline:
            st, data, _ = srv.get("/v2/repository/index", method="POST", body=b"{}")
            index = {m["name"]: m for m in json.loads(data)} if st == 200 else {}
            g = index.get("tiny_gpu", {})
            if g.get("state") == "READY" or (g.get("state") == "UNAVAILABLE" and g.get("reason")):
                break
            time.sleep(0.5)
        x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
        ref = ort.InferenceSession(tiny, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        st, _, raw_out = infer_raw(srv.http_port, "tiny_cpu", x, name="image")
        check(st == 200 and np.allclose(np.frombuffer(raw_out, np.float32).reshape(ref.shape), ref,
                                        rtol=1e-4, atol=1e-5), "CPU model beside a GPU model serves")
        if not on_gpu:
            m = index.get("tiny_gpu", {})
            check(m.get("state") == "UNAVAILABLE" and re.search(r"GPU|driver|CUDA", m.get("reason", "")),
                  f"KIND_GPU model without a GPU: UNAVAILABLE with the reason ({m})")
            return
        check(index.get("tiny_gpu", {}).get("state") == "READY", f"KIND_GPU model READY ({index})")
        st, data, _ = srv.get("/v2/models/tiny_gpu/config")
        cfg = json.loads(data) if st == 200 else {}
        check(cfg.get("instance_group", [{}])[0].get("kind") == "KIND_GPU",
              f"config reports KIND_GPU ({cfg.get('instance_group')})")
        st, _, raw_out = infer_raw(srv.http_port, "tiny_gpu", x, name="image")
        got = np.frombuffer(raw_out, np.float32).reshape(ref.shape) if st == 200 else None
        err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref)) if got is not None else None
        check(err is not None and err < 1e-2, f"GPU FP16 model matches onnxruntime (rel-L2 {err})")
        xs = [np.random.default_rng(i).standard_normal((1, 3, 32, 32)).astype(np.float32)
              for i in range(64)]
        with cf.ThreadPoolExecutor(32) as ex:
            res = list(ex.map(lambda a: infer_raw(srv.http_port, "tiny_gpu", a, name="image"), xs))
        ok = all(r[0] == 200 for r in res)
        worst = 0.0
        sess = ort.InferenceSession(tiny, providers=["CPUExecutionProvider"])
        for a, r in zip(xs, res):
            if r[0] == 200:
                w = sess.run(None, {"image": a})[0]
                g = np.frombuffer(r[2], np.float32).reshape(w.shape)
                worst = max(worst, float(np.linalg.norm(g - w) / np.linalg.norm(w)))
        check(ok and worst < 1e-2, f"64 concurrent requests on the GPU model: all 200, worst rel-L2 {worst}")
        m = srv.metrics()
        nb = metric(m, "kiln_batch_size_count", model="tiny_gpu") or 0
        rows = metric(m, "kiln_batch_size_sum", model="tiny_gpu") or 0
        check(nb and rows / nb > 1.0, f"GPU model batched concurrent requests (mean batch {rows / nb if nb else 0:.2f})")
    finally:
        check(srv.stop() == 0, "clean stop (GPU repository)")


def cli_mistakes(kiln):
    """kiln serve's own command line: --help exits 0; mistakes exit 2 naming
    what is wrong."""
    def run(*args):
        p = subprocess.run([kiln, "serve", *args], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr
    rc, out, _ = run("--help")
    check(rc == 0 and "--model-repository" in out, "kiln serve --help: exit 0, usage on stdout")
    for args, want in ((("--bogus", "1"), "unknown option '--bogus'"),
                       (("--http-port",), "--http-port needs a value"),
                       (("repo",), "unexpected argument 'repo'"),
                       ((), "--model-repository DIR is required"),
                       (("--model-repository", "/x", "--http-port", "99999"), "bad value '99999'")):
        rc, _, err = run(*args)
        check(rc == 2 and want in err, f"kiln serve {' '.join(args)}: exit 2 and '{want}' ({rc}, {err[:80]!r})")


def main():
    kiln = os.path.abspath(sys.argv[1])
    on_gpu = "--gpu" in sys.argv[2:]
    if not on_gpu:
        cli_mistakes(kiln)
    tmp = tempfile.mkdtemp(prefix="kiln-serve-")
    t_start = time.time()
    if on_gpu:  # tests/gpu/run.sh: the CPU suite runs in CI; here the GPU step alone
        try:
            gpu_model(kiln, tmp, os.path.join(ROOT, "examples", "tiny_cnn.onnx"), True)
        except Exception as e:
            import traceback
            traceback.print_exc()
            check(False, f"harness: {e!r}")
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    try:
        models = os.path.join(tmp, "models")
        make_models.mlp(os.path.join(tmp, "mlp.onnx"))
        make_models.main = None
        os.makedirs(models)
        make_models.mlp(os.path.join(models, "mlp.onnx"))
        make_models.mlp(os.path.join(models, "mlp_v2.onnx"), seed=1)
        repo = os.path.join(tmp, "repo")
        tiny = os.path.join(ROOT, "examples", "tiny_cnn.onnx")
        os.makedirs(os.path.join(repo, "tiny", "1"))
        shutil.copy(tiny, os.path.join(repo, "tiny", "1", "model.onnx"))
        write(os.path.join(repo, "tiny", "config.pbtxt"), TINY_CFG)
        # mlp is served from a prebuilt model.kiln (max batch from the engine)
        os.makedirs(os.path.join(repo, "mlp", "1"))
        subprocess.run([kiln, "build", os.path.join(models, "mlp.onnx"), "-o",
                        os.path.join(repo, "mlp", "1", "model.kiln"), "--min-shapes", "x:1x16",
                        "--opt-shapes", "x:8x16", "--max-shapes", "x:32x16"],
                       check=True, stdout=subprocess.DEVNULL)
        write(os.path.join(repo, "mlp", "config.pbtxt"), MLP_CFG)
        os.makedirs(os.path.join(repo, "smallq", "1"))
        shutil.copy(os.path.join(models, "mlp.onnx"), os.path.join(repo, "smallq", "1", "model.onnx"))
        write(os.path.join(repo, "smallq", "config.pbtxt"), SMALLQ_CFG)
        srv = Server(kiln, repo, ["--repository-poll-secs", "1", "--max-request-mib", "16"])
        check(True, "server ready (tiny built from model.onnx, mlp from model.kiln)")
        cache = [f for f in os.listdir(os.path.join(repo, "tiny", "1")) if f.endswith(".kiln")]
        check(len(cache) == 1, f"engine built from model.onnx cached beside it ({cache})")
        try:
            warmup_before_ready(srv, ("tiny", "mlp", "smallq"))
            first_request_latency(srv)
            tritonclient_suite(srv, tiny)
            load_tests(srv)
            hot_reload(srv, repo, models)
            overload(srv)
            hostile(srv)
            prometheus(srv, tmp)
            sigterm_under_load(srv)
        finally:
            if srv.proc.poll() is None:
                srv.stop(signal.SIGKILL)
        # Restart: the cached engine is reused, not rebuilt.
        srv = Server(kiln, repo)
        with open(srv.log.name) as f:
            log = f.read()
        check("using cached engine" in log and "building engine" not in log,
              "restart reuses the cached engines")
        check(srv.stop() == 0, "clean stop")
        warmup_failures(kiln, tmp, models)
        gpu_model(kiln, tmp, tiny, on_gpu)
    except Exception as e:  # a crash of the harness is a failure, not a pass
        import traceback
        traceback.print_exc()
        check(False, f"harness: {e!r}")
    finally:
        for f in sorted(os.listdir(tmp)):
            if f.startswith("server-") and failed:
                print(f"--- {f} (tail)")
                with open(os.path.join(tmp, f)) as fh:
                    print("".join(fh.readlines()[-30:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"serve tests took {time.time() - t_start:.0f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
