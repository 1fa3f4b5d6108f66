#!/usr/bin/env python3
"""serve_stage_ab.py: A/B of the batcher's input staging (issue 7) in
`kiln serve`: the same engine and model repository served by servers that
differ only in KILN_SERVE_STAGE (0: the worker gathers every batch itself,
1: submitting threads copy rows into staging slots the worker binds as
they are), interleaved in one run, driven by wrk as bench/serve_bench.py
does (its model setup, request body and wrk script are reused).

For each server and round: dynamic batching on at each concurrency, then
batching off; req/s, p50/p99 and, from /metrics, the worker's time per
request's batch (compute input = gather/bind, infer = the run, output =
splitting outputs: the server's per-request sums divided by requests), the
share of requests staged and of batches bound in place.

Usage: serve_stage_ab.py KILN_BINARY [--models big] [--concurrency 64]
         [--duration 10] [--rounds 2] [--server-threads 8] [--gpu]
         [--pad]   (kiln_pad_batches true: pad batches on the CPU too)
       WRK_THREADS=4 sets wrk's threads."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_bench as sb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--models", default="big")
    ap.add_argument("--concurrency", default="64")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--server-threads", type=int, default=8)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--pad", action="store_true")
    ap.add_argument("--no-nobatch", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    kiln = os.path.abspath(a.kiln)
    concs = [int(c) for c in a.concurrency.split(",")]
    rows = []
    for name in a.models.split(","):
        onnx, inp, shape, maxb, pref = sb.model_setup(name, a.gpu)
        repo = os.path.join(sb.WORK, f"repo_ab_{name}")
        engine = os.path.join(sb.WORK, f"{name}{'_gpu' if a.gpu else ''}.kiln")
        if not os.path.exists(engine) or os.path.getmtime(engine) < os.path.getmtime(onnx):
            dims = lambda b: f"{inp}:" + "x".join(map(str, [b] + shape[1:]))  # noqa: E731
            subprocess.run([kiln, "build", onnx, "-o", engine, "--min-shapes", dims(1),
                            "--opt-shapes", dims(max(pref)), "--max-shapes", dims(maxb),
                            "--opt-level", "1"] + (["--device", "cuda", "--fp16"] if a.gpu else []),
                           check=True, stdout=subprocess.DEVNULL)
        variants = [(name, True)] + ([] if a.no_nobatch else [(name + "_nobatch", False)])
        for variant, batching in variants:
            d = os.path.join(repo, variant, "1")
            os.makedirs(d, exist_ok=True)
            shutil.copy(engine, os.path.join(d, "model.kiln"))
            cfg = f"max_batch_size: {maxb}\ninstance_group [ {{ count: 1 }} ]\n"
            if batching:
                cfg += (f"dynamic_batching {{ preferred_batch_size: [{', '.join(map(str, pref))}] "
                        f"max_queue_delay_microseconds: 200 }}\n")
                if a.pad:
                    cfg += ('parameters { key: "kiln_pad_batches" value: { string_value: "true" } }\n')
            with open(os.path.join(repo, variant, "config.pbtxt"), "w") as f:
                f.write(cfg)
        head, body = sb.request_body(inp, shape)
        body_path = os.path.join(sb.WORK, f"{name}.body")
        with open(body_path, "wb") as f:
            f.write(body)
        for rnd in range(a.rounds):
            for stage in ("0", "1"):
                port, mport = sb.free_port(), sb.free_port()
                env = dict(os.environ, KILN_SERVE_STAGE=stage)
                log = open(os.path.join(sb.WORK, f"ab_{name}_stage{stage}.log"), "w")
                srv = subprocess.Popen(
                    [kiln, "serve", "--model-repository", repo, "--http-port", str(port),
                     "--metrics-port", str(mport), "--threads", str(a.server_threads),
                     "--compute-threads", str(a.server_threads)],
                    stdout=log, stderr=subprocess.STDOUT, env=env)
                try:
                    sb.wait_ready(port, srv)
                    for variant, batching in variants:
                        for conc in concs:
                            m0 = sb.scrape(mport)
                            r = sb.run_wrk(port, sb.wrk_script(body_path, len(head), variant),
                                           conc, a.duration)
                            m1 = sb.scrape(mport)
                            dm = lambda k: sb.metric(m1, k, variant) - sb.metric(m0, k, variant)  # noqa: E731
                            batches = dm("kiln_batch_size_count")
                            req = dm("nv_inference_request_success")
                            r.update(model=name, stage=stage, round=rnd,
                                     batching="on" if batching else "off", concurrency=conc,
                                     mean_batch=dm("kiln_batch_size_sum") / batches if batches else 0,
                                     input_us=dm("nv_inference_compute_input_duration_us") / max(req, 1),
                                     infer_us=dm("nv_inference_compute_infer_duration_us") / max(req, 1),
                                     output_us=dm("nv_inference_compute_output_duration_us") / max(req, 1),
                                     queue_us=dm("nv_inference_queue_duration_us") / max(req, 1),
                                     staged_req=dm("kiln_batcher_staged_requests_total") / max(req, 1),
                                     inplace=dm("kiln_batcher_staged_batches_total") / max(batches, 1))
                            rows.append(r)
                            print(json.dumps(r), flush=True)
                finally:
                    srv.send_signal(signal.SIGTERM)
                    srv.wait(120)
    print("\n| model | staging | round | batching | conc | req/s | p50 ms | p99 ms | mean batch "
          "| input us | infer us | output us | queue us | staged req | in-place batches | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {'on' if r['stage'] == '1' else 'off'} | {r['round']} | {r['batching']} | "
              f"{r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['mean_batch']:.1f} | {r['input_us']:.0f} | {r['infer_us']:.0f} | "
              f"{r['output_us']:.0f} | {r['queue_us']:.0f} | {r['staged_req']:.0%} | {r['inplace']:.0%} | "
              f"{r['non2xx']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
