#!/usr/bin/env python3
"""End-to-end engine tests through the kiln CLI:
- an engine built with a batch profile 1..32 runs batch 1, 16 and 32 and
  matches onnxruntime and the reference interpreter; batch 33 is refused with
  the profile's range in the message;
- a rebuild with the timing cache times nothing;
- damaged engine files (byte flips at sampled positions, truncations) are
  refused by `kiln inspect` and `kiln run` with a message, never a signal;
- `kiln inspect --json` and `kiln bench --json` print valid JSON with the
  documented keys.
Ends with `N passed, M failed`.

usage: test_engine_cli.py KILN_BINARY
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "examples", "tiny_cnn.onnx")
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))


def run(cmd, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", timeout=timeout)


def main():
    kiln = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="kiln-engine-test-")
    eng = os.path.join(tmp, "tiny.kiln")
    cache = os.path.join(tmp, "tiny.cache")
    build = [kiln, "build", MODEL, "-o", eng, "--min-shapes", "image:1x3x32x32",
             "--opt-shapes", "image:8x3x32x32", "--max-shapes", "image:32x3x32x32",
             "--timing-cache", cache, "--verbose"]
    p = run(build)
    check("build with profile 1..32", p.returncode == 0 and os.path.exists(eng), p.stderr[-500:])
    p2 = run(build)
    check("rebuild uses the timing cache", p2.returncode == 0 and "0 new entries" in p2.stderr
          and " hits" in p2.stderr and not re.search(r"tactic \S+ on ", p2.stderr),
          p2.stderr[-800:])

    sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for batch in (1, 16, 32):
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        xin = os.path.join(tmp, "x%d.pb" % batch)
        with open(xin, "wb") as f:
            f.write(numpy_helper.from_array(x, "image").SerializeToString())
        want = sess.run(None, {"image": x})[0]
        for mode, args in (("engine", ["--engine", eng]), ("reference", [MODEL])):
            out = os.path.join(tmp, "%s%d" % (mode, batch))
            p = run([kiln, "run"] + args + ["--input", "image=" + xin, "--output-dir", out])
            ok = p.returncode == 0
            if ok:
                got = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
                ok = got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-6)
            check("batch %d via %s matches onnxruntime" % (batch, mode), ok, p.stderr[-300:])
    p = run([kiln, "run", "--engine", eng, "--shapes", "image:33x3x32x32"])
    check("batch 33 is refused with the profile range",
          p.returncode != 0 and "min 1x3x32x32, max 32x3x32x32" in p.stderr, p.stderr)

    p = run([kiln, "inspect", eng, "--json"])
    try:
        doc = json.loads(p.stdout)
        ok = isinstance(doc.get("layers"), list) and "activation_bytes" in doc["memory"] \
            and "naive_activation_bytes" in doc["memory"] and len(doc["layers"]) > 0
    except ValueError as e:
        ok = False
        p.stderr += str(e)
    check("inspect --json", ok, p.stderr[-300:])
    p = run([kiln, "bench", "--engine", eng, "--shapes", "image:4x3x32x32", "--duration", "0.2",
             "--json"])
    try:
        doc = json.loads(p.stdout)
        lat = doc["latency_ms"]
        ok = doc["throughput_qps"] > 0 and all(k in lat for k in
                                                ("min", "mean", "median", "p90", "p95", "p99", "max"))
    except (ValueError, KeyError) as e:
        ok = False
        p.stderr += str(e)
    check("bench --json", ok, p.stderr[-300:])

    blob = open(eng, "rb").read()
    random.seed(5)
    positions = sorted(set([0, 1, 7, 8, len(blob) - 1, len(blob) - 8] +
                           random.sample(range(len(blob)), min(150, len(blob)))))
    bad = []
    damaged = os.path.join(tmp, "damaged.kiln")
    for pos in positions:
        b = bytearray(blob)
        b[pos] ^= 1 << random.randrange(8)
        open(damaged, "wb").write(b)
        p = run([kiln, "inspect", damaged], timeout=30)
        if p.returncode <= 0 or p.returncode > 2 or not p.stderr.strip():
            bad.append("flip@%d rc=%d" % (pos, p.returncode))
    check("%d single-byte changes refused" % len(positions), not bad, ", ".join(bad[:5]))
    bad = []
    cuts = sorted(set([0, 1, 4, 8, 16, 63, 64, len(blob) - 1] +
                      random.sample(range(len(blob)), min(60, len(blob)))))
    for n in cuts:
        open(damaged, "wb").write(blob[:n])
        p = run([kiln, "run", "--engine", damaged], timeout=30)
        if p.returncode <= 0 or p.returncode > 2 or not p.stderr.strip():
            bad.append("cut@%d rc=%d" % (n, p.returncode))
    check("%d truncations refused" % len(cuts), not bad, ", ".join(bad[:5]))

    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
