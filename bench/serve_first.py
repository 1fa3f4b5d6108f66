#!/usr/bin/env python3
"""serve_first.py: where the first request after READY spends its time.

Starts `kiln serve` on one engine (a repository of one model, `m`) several
times; each time it waits for READY, then times requests 1, 2, 3... on one
keep-alive connection (a raw-socket client: little Python in the timing),
then 5 requests each after GAP seconds of idling on that connection, then
the first request on a second connection. The server's own time per
request comes from its --access-log (headers parsed until the answer was
sent), and the server's minor page faults per request from
/proc/PID/stat. Prints per start and medians over the starts.

Usage: serve_first.py KILN ENGINE INPUT DIMS [--starts 5] [--n 30]
       [--maxb 64] [--batching] [--gap 0.05] [--prewarm N]
  e.g. serve_first.py build/bin/kiln mlp.kiln x 1x16
       serve_first.py build/bin/kiln resnet50.kiln input 1x3x224x224 --maxb 4 --n 12
ENGINE: a `kiln build` output whose profile takes DIMS (float32)."""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CL = re.compile(rb"(?im)^content-length: *(\d+)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Raw:
    """Keep-alive HTTP/1.1 client on a plain socket."""

    def __init__(self, port, req):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.req = req
        self.buf = b""

    def one(self):
        t0 = time.perf_counter()
        self.s.sendall(self.req)
        buf = self.buf
        while b"\r\n\r\n" not in buf:
            buf += self.s.recv(65536)
        h, rest = buf.split(b"\r\n\r\n", 1)
        n = int(CL.search(h).group(1))
        while len(rest) < n:
            rest += self.s.recv(65536)
        self.buf = rest[n:]
        t = time.perf_counter() - t0
        if not h.startswith(b"HTTP/1.1 200"):
            raise SystemExit(h.decode(errors="replace"))
        return t * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("engine")
    ap.add_argument("inp")
    ap.add_argument("dims")
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--maxb", type=int, default=64)
    ap.add_argument("--batching", action="store_true",
                    help="dynamic_batching (preferred 16/32/64, 200 us delay) as serve_bench's mlp")
    ap.add_argument("--gap", type=float, default=0.05, help="idle seconds before the idle references")
    ap.add_argument("--prewarm", type=int, default=0,
                    help="requests on another connection before the measured one")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "serve_first"))
    a = ap.parse_args()
    shape = [int(x) for x in a.dims.split("x")]
    repo = os.path.join(a.work, "repo")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(os.path.join(repo, "m", "1"))
    shutil.copy(a.engine, os.path.join(repo, "m", "1", "model.kiln"))
    cfg = f"max_batch_size: {a.maxb}\ninstance_group [ {{ count: 1 }} ]\n"
    if a.batching:
        cfg += "dynamic_batching { preferred_batch_size: [16, 32, 64] max_queue_delay_microseconds: 200 }\n"
    with open(os.path.join(repo, "m", "config.pbtxt"), "w") as f:
        f.write(cfg)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    head = json.dumps({"inputs": [{"name": a.inp, "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    body = head + x.tobytes()
    req = (f"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
           f"Inference-Header-Content-Length: {len(head)}\r\n\r\n").encode() + body

    runs, srv_ms, idles, fresh = [], [], [], []
    for k in range(a.starts):
        port = free_port()
        logp = os.path.join(a.work, f"log{k}")
        with open(logp, "w") as log:
            srv = subprocess.Popen([a.kiln, "serve", "--model-repository", repo, "--http-port", str(port),
                                    "--metrics-port", "0", "--threads", "2", "--compute-threads", "2",
                                    "--access-log"], stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 600
        while time.time() < end:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/v2/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)

        def minflt():
            with open(f"/proc/{srv.pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[7])
        if a.prewarm:
            w = Raw(port, req)
            for _ in range(a.prewarm):
                w.one()
        cl = Raw(port, req)
        ts, fl = [], []
        for _ in range(a.n):
            f0 = minflt()
            ts.append(cl.one())
            fl.append(minflt() - f0)
        idle = []
        for _ in range(5):
            time.sleep(a.gap)
            idle.append(cl.one())
        fresh.append(Raw(port, req).one())
        srv.terminate()
        srv.wait()
        with open(logp) as f:
            us = [int(m.group(1)) / 1000 for m in
                  re.finditer(r"POST /v2/models/m/infer 200 \d+ (\d+)us", f.read())][a.prewarm:]
        med, smed = statistics.median(ts[1:]), statistics.median(us[1:a.n])
        runs.append(ts)
        srv_ms.append(us)
        idles.append(statistics.median(idle))
        print(f"start {k}: client first {ts[0]:.3f} 2nd {ts[1]:.3f} median(2..) {med:.3f} ms "
              f"({ts[0] / med:.2f}x) | server first {us[0]:.3f} median {smed:.3f} ({us[0] / smed:.2f}x) "
              f"| after {a.gap}s idle {idles[-1]:.3f} ({idles[-1] / med:.2f}x) | fresh connection "
              f"{fresh[-1]:.3f} ({fresh[-1] / med:.2f}x) | server faults {fl[:3]}", flush=True)

    def summary(what, xs):
        print(f"{what}: median {statistics.median(xs):.2f}x, min {min(xs):.2f}x, max {max(xs):.2f}x")
    summary("client first / steady", [t[0] / statistics.median(t[1:]) for t in runs])
    summary("server first / steady", [u[0] / statistics.median(u[1:a.n]) for u in srv_ms])
    summary("client after idle / steady", [i / statistics.median(t[1:]) for i, t in zip(idles, runs)])
    summary("client fresh connection / steady", [f / statistics.median(t[1:]) for f, t in zip(fresh, runs)])
    for i in range(3):
        print(f"  request {i + 1}: client {statistics.median(t[i] for t in runs):.3f} ms, "
              f"server {statistics.median(u[i] for u in srv_ms):.3f} ms (medians over starts)")


if __name__ == "__main__":
    main()
