#!/usr/bin/env python3
"""A/B of Kiln's INT8 graphs of a transformer on the CPU, in one run: the
FP32 engine, the INT8 engine as before session 11 (every product's output
quantized: KILN_INT8_QUANTIZE_OUTPUTS=1) and the INT8 engine with
QFusedGemm epilogues, built by one binary from one calibration folder, then
timed interleaved (round after round, engine after engine) as CPU time per
inference of a 1-thread `kiln bench` (N and 3N iterations differenced, as
cpu_time_engines.py measures). Prints each engine's layer count, median and
every sample.

--kiln-before KILN0: the "before" INT8 engine is built and run by that
binary instead (say, the main branch's), with no environment change.

usage: bench/bert_int8_ab.py KILN MODEL.onnx CALIB_DIR --shapes NAME:DIMS,...
           [--kiln-before KILN0] [--runs 6] [--rounds 3] [--workdir DIR]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_time_engines import kiln_cpu  # noqa: E402


def build(kiln, model, out, shapes, calib=None, env=None):
    """Builds one engine; returns (path, {op: layers})."""
    args = [kiln, "build", model, "-o", out, "--shapes", shapes, "--threads", "1", "-q"]
    if calib:
        args += ["--int8", "--calib", calib]
    e = dict(os.environ)
    e.pop("KILN_INT8_QUANTIZE_OUTPUTS", None)
    e.update(env or {})
    subprocess.run(args, check=True, env=e, stdout=subprocess.DEVNULL)
    txt = subprocess.run([kiln, "inspect", out], check=True, capture_output=True,
                         text=True).stdout
    ops = {}
    for line in txt.splitlines():
        m = re.match(r"\s+\d+ \S+\s+(\S+)", line)
        if m:
            ops[m.group(1)] = ops.get(m.group(1), 0) + 1
    return out, ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--kiln-before", default=None)
    a = ap.parse_args()
    wd = a.workdir or tempfile.mkdtemp(prefix="kiln_bert_ab_")
    os.makedirs(wd, exist_ok=True)
    kb = a.kiln_before or a.kiln
    before = ("int8 before: %s" % (a.kiln_before if a.kiln_before else
                                   "KILN_INT8_QUANTIZE_OUTPUTS=1"))
    engines = {
        "fp32": build(a.kiln, a.model, os.path.join(wd, "fp32.kiln"), a.shapes),
        before: build(kb, a.model, os.path.join(wd, "int8_before.kiln"), a.shapes, a.calib,
                      None if a.kiln_before else {"KILN_INT8_QUANTIZE_OUTPUTS": "1"}),
        "int8 QFusedGemm epilogues":
            build(a.kiln, a.model, os.path.join(wd, "int8.kiln"), a.shapes, a.calib),
    }
    binary = {k: (kb if k == before else a.kiln) for k in engines}
    for k, (_, ops) in engines.items():
        print("%-44s %d layers: %s" % (k, sum(ops.values()), " ".join(
            "%s=%d" % (o, n) for o, n in sorted(ops.items(), key=lambda x: -x[1])[:8])))
    res = {k: [] for k in engines}
    for _ in range(a.rounds):
        for k, (path, _) in engines.items():
            res[k].append(kiln_cpu(binary[k], path, a.runs))
    for k, v in res.items():
        print("%-44s CPU ms/inference: median %8.1f  (rounds: %s)" %
              (k, statistics.median(v), " ".join("%.1f" % x for x in v)))


if __name__ == "__main__":
    main()
