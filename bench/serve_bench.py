#!/usr/bin/env python3
"""serve_bench.py: `kiln serve` under load vs a FastAPI + onnxruntime
deployment of the same model (bench/serve_fastapi.py), both answering the
same KServe v2 binary-tensor request, measured by wrk (Debian's, a C load
generator far cheaper per request than either server).

For each model: dynamic batching on (`<model>`) and off (`<model>_nobatch`)
in kiln serve, then FastAPI; concurrency 1, 8 and 64 (closed loop, one
connection per concurrent client, keep-alive). Also: the first request after
READY vs the steady-state median (a warm client on the keep-alive
connection it polled readiness on; see first_after_ready), and, with batching on at the highest
concurrency, `kiln bench` at the batch size the server formed.

Models: mlp (tiny), resnet50, big (ResNet-50's input, almost no compute:
what moving 602 KB request bodies costs the server).

Usage: serve_bench.py KILN_BINARY [--models mlp,resnet50,big] [--concurrency 1,8,64]
                      [--duration 10] [--no-fastapi] [--json OUT] [--gpu]
                      [--server-threads N]   (WRK_THREADS=N: wrk's threads)"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "serve_bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "serve"))
sys.path.insert(0, os.path.join(ROOT, "bench"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(port, proc, timeout=900):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/v2/health/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready")


def model_setup(name, gpu=False):
    """(onnx path, input name, one request's shape, max batch, preferred)."""
    os.makedirs(WORK, exist_ok=True)
    if name == "mlp":
        import make_models
        path = os.path.join(WORK, "mlp.onnx")
        make_models.mlp(path)
        return path, "x", [1, 16], 64, [16, 32, 64]
    if name == "big":  # ResNet-50's 602 KB input, almost no compute (issue 7)
        import make_models
        path = os.path.join(WORK, "big.onnx")
        make_models.big(path)
        return path, "x", [1, 3, 224, 224], 64, [16, 32, 64]
    if name == "resnet50":
        import run_bench
        run_bench.WORK = WORK
        path, shapes, _ = run_bench.export("resnet50")
        if gpu:  # a GPU wants bigger batches
            return path, "input", [1, 3, 224, 224], 64, [16, 32, 64]
        return path, "input", [1, 3, 224, 224], 16, [8, 16]
    raise SystemExit("unknown model " + name)


def request_body(inp, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    head = json.dumps({"inputs": [{"name": inp, "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    return head, head + x.tobytes()


def wrk_script(path_body, head_len, model):
    lua = os.path.join(WORK, f"{model}.lua")
    with open(lua, "w") as f:
        f.write(f'local f = io.open("{path_body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
                f'wrk.method = "POST"\nwrk.path = "/v2/models/{model}/infer"\n'
                f'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                f'wrk.headers["Inference-Header-Content-Length"] = "{head_len}"\n')
    return lua


def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def run_wrk(port, lua, conc, duration):
    threads = 1 if conc == 1 else min(conc, int(os.environ.get("WRK_THREADS", "2")))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{duration}s",
                          "--timeout", "30s", "--latency", "-s", lua, f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        res[f"p{p}_ms"] = to_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1) if m else ""
    return res


def infer_once(c, model, body, hdr):
    """One timed binary request on connection c (seconds). The same function
    serves the client warm-up and the measurement, so the interpreter's
    first-call costs are paid in the warm-up."""
    t0 = time.perf_counter()
    c.request("POST", f"/v2/models/{model}/infer", body=body, headers=hdr)
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise SystemExit(f"infer answered {r.status}")
    return dt


def ready_once(c):
    c.request("GET", "/v2/health/ready")
    r = c.getresponse()
    r.read()
    return r.status


def warm_client(body, hdr, model):
    """Runs the client's request code against a canned local responder (not
    the server under test) until the interpreter has specialized it: a cold
    Python client adds 50-100 us to its own first request, as much as a
    whole steady request to the tiny model."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"Inference-Header-Content-Length: 100\r\nContent-Length: 164\r\n\r\n" + b"0" * 164)

    def serve():
        s, _ = ls.accept()
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    s.close()
                    return
                buf += d
            h, buf = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?im)^content-length: *(\d+)", h)
            n = int(m.group(1)) if m else 0
            while len(buf) < n:
                buf += s.recv(65536)
            buf = buf[n:]
            s.sendall(answer if h.startswith(b"POST") else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    import threading
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(100):
        ready_once(c)
        infer_once(c, model, body, hdr)
    c.close()
    t.join()
    ls.close()


def first_after_ready(port, proc, model, body, head_len, timeout=900):
    """The first request after READY against the steady-state median.

    What is measured, and why: a warm client (warm_client) polls
    /v2/health/ready every 10 ms on one keep-alive connection, as a client
    waiting for a server does, and sends its first infer request on that
    connection as soon as the server is READY; then 50 more (10 for big
    models) back to back, whose median is the steady state. Two references
    on the same warm server, same client: a request after 0.2 s of idling on
    the kept connection (what any request after a pause pays: threads and
    CPUs waking), and the first request on a fresh connection (what a new
    connection pays at any time). Returns ms: first, steady, after_idle,
    fresh."""
    hdr = {"Inference-Header-Content-Length": str(head_len)}
    warm_client(body, hdr, model)
    end = time.time() + timeout
    c = None
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.connect()
            if ready_once(c) == 200:
                break
        except OSError:
            c = None
        time.sleep(0.01)
    else:
        raise SystemExit("server not ready")
    first = infer_once(c, model, body, hdr)
    rest = [infer_once(c, model, body, hdr) for _ in range(50 if first < 0.1 else 10)]
    idle = []
    for _ in range(5):
        time.sleep(0.2)
        idle.append(infer_once(c, model, body, hdr))
    c.close()
    fresh = []
    for _ in range(5):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.connect()
        fresh.append(infer_once(c, model, body, hdr))
        c.close()
    ms = lambda x: x * 1000  # noqa: E731
    return ms(first), ms(statistics.median(rest)), ms(statistics.median(idle)), ms(statistics.median(fresh))


def scrape(port):
    # A fresh connection each time: the server closes idle ones.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return text


def metric(text, name, model):
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--models", default="mlp,resnet50")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--no-fastapi", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--gpu", action="store_true",
                    help="CUDA FP16 engines (kiln build --device cuda --fp16); implies --no-fastapi "
                         "(the FastAPI peer runs onnxruntime on the CPU)")
    ap.add_argument("--server-threads", type=int, default=2,
                    help="kiln serve --threads and --compute-threads")
    a = ap.parse_args()
    if a.gpu:
        a.no_fastapi = True
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt install wrk)")
    kiln = os.path.abspath(a.kiln)
    concs = [int(c) for c in a.concurrency.split(",")]
    rows, extra = [], []
    for name in a.models.split(","):
        onnx, inp, shape, maxb, pref = model_setup(name, a.gpu)
        repo = os.path.join(WORK, f"repo_{name}")
        # One engine for both variants, built once by `kiln build` (dim 0 in
        # 1..max batch, tuned at the largest preferred size) and reused on
        # later runs while the ONNX file is older than it.
        engine = os.path.join(WORK, f"{name}{'_gpu' if a.gpu else ''}.kiln")
        if not os.path.exists(engine) or os.path.getmtime(engine) < os.path.getmtime(onnx):
            dims = lambda b: f"{inp}:" + "x".join(map(str, [b] + shape[1:]))  # noqa: E731
            subprocess.run([kiln, "build", onnx, "-o", engine, "--min-shapes", dims(1),
                            "--opt-shapes", dims(max(pref)), "--max-shapes", dims(maxb),
                            "--opt-level", "1"] + (["--device", "cuda", "--fp16"] if a.gpu else []),
                           check=True, stdout=subprocess.DEVNULL)
        for variant, batching in ((name, True), (name + "_nobatch", False)):
            d = os.path.join(repo, variant, "1")
            os.makedirs(d, exist_ok=True)
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))
            shutil.copy(engine, os.path.join(d, "model.kiln"))
            cfg = f"max_batch_size: {maxb}\ninstance_group [ {{ count: 1 }} ]\n"
            if batching:
                cfg += (f"dynamic_batching {{ preferred_batch_size: [{', '.join(map(str, pref))}] "
                        f"max_queue_delay_microseconds: 200 }}\n")
            with open(os.path.join(repo, variant, "config.pbtxt"), "w") as f:
                f.write(cfg)
        head, body = request_body(inp, shape)
        body_path = os.path.join(WORK, f"{name}.body")
        with open(body_path, "wb") as f:
            f.write(body)
        def start(tag):
            port, mport = free_port(), free_port()
            log = open(os.path.join(WORK, f"kiln_serve_{name}{tag}.log"), "w")
            return port, mport, subprocess.Popen(
                [kiln, "serve", "--model-repository", repo, "--http-port", str(port),
                 "--metrics-port", str(mport), "--threads", str(a.server_threads),
                 "--compute-threads", str(a.server_threads), "--build-opt-level", "1"],
                stdout=log, stderr=subprocess.STDOUT)

        def first_note(port, srv, variant):
            first, med, idle, fresh = first_after_ready(port, srv, variant, body, len(head))
            extra.append(f"{variant}: first request after READY {first:.3f} ms, steady median "
                         f"{med:.3f} ms ({first / med:.2f}x); references on the warm server: "
                         f"after 0.2 s idle {idle:.3f} ms ({idle / med:.2f}x), first on a fresh "
                         f"connection {fresh:.3f} ms ({fresh / med:.2f}x)")
            print(extra[-1], flush=True)

        # The first request after READY with batching off, where nothing
        # (no queue delay) hides a cold start, on a server of its own: the
        # measurement below warms every shared path.
        port, mport, srv = start("_first")
        try:
            first_note(port, srv, name + "_nobatch")
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait()
        port, mport, srv = start("")
        try:
            first_note(port, srv, name)
            for variant in (name, name + "_nobatch"):
                for conc in concs:
                    m0 = scrape(mport)
                    r = run_wrk(port, wrk_script(body_path, len(head), variant), conc, a.duration)
                    m1 = scrape(mport)
                    batches = metric(m1, "kiln_batch_size_count", variant) - metric(m0, "kiln_batch_size_count", variant)
                    nrows = metric(m1, "kiln_batch_size_sum", variant) - metric(m0, "kiln_batch_size_sum", variant)
                    r.update(system="kiln serve", model=name, batching="on" if variant == name else "off",
                             concurrency=conc, mean_batch=nrows / batches if batches else 0)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            top = [r for r in rows if r["model"] == name and r["system"] == "kiln serve"
                   and r["batching"] == "on" and r["concurrency"] == max(concs)][0]
            b = max(1, int(round(top["mean_batch"])))
            shp = "x".join(map(str, [b] + shape[1:]))
            out = subprocess.run([kiln, "bench", "--engine", engine,
                                  "--shapes", f"{inp}:{shp}", "--duration", str(min(a.duration, 10)),
                                  "--threads", str(a.server_threads), "--json"],
                                 capture_output=True, text=True).stdout
            try:
                js = json.loads(out[out.index("{"):])
                ips = js.get("items_per_s") or js.get("throughput_items_per_s") or js.get("items_per_sec")
            except (ValueError, AttributeError):
                js, ips = None, None
            extra.append(f"{name}: kiln bench at batch {b} (the mean batch the server formed at "
                         f"concurrency {max(concs)}): {ips} items/s vs served {top['rps']:.1f} req/s"
                         + ("" if ips else f" (bench output: {out.strip()[:300]})"))
            print(extra[-1], flush=True)
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(120)
        if a.no_fastapi:
            continue
        fport = free_port()
        fa = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "serve_fastapi.py"), str(fport),
                               f"{name}={onnx}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(fport, fa, 300)
            for conc in concs:
                r = run_wrk(fport, wrk_script(body_path, len(head), name), conc, a.duration)
                r.update(system="FastAPI+onnxruntime", model=name, batching="-", concurrency=conc, mean_batch=1)
                rows.append(r)
                print(json.dumps(r), flush=True)
        finally:
            fa.terminate()
            fa.wait(30)
    print("\n| model | system | dynamic batching | concurrency | req/s | p50 ms | p90 ms | p99 ms | mean batch | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['system']} | {r['batching']} | {r['concurrency']} | {r['rps']:.0f} | "
              f"{r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_batch']:.1f} | "
              f"{r['non2xx']}{' ' + r['socket_errors'] if r['socket_errors'] else ''} |")
    for e in extra:
        print("- " + e)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "notes": extra}, f, indent=1)


if __name__ == "__main__":
    main()
