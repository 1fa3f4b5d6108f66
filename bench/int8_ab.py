#!/usr/bin/env python3
"""A/B of two Kiln binaries on the INT8 benchmark's models, in one run:
each binary builds its own engines (FP32 and the QDQ INT8 ResNet-50 of
bench/int8_bench.py, optionally also as on an AVX2-only machine), then the
engines run interleaved, round after round (A, B, A, B, ...), and the CPU
time per run (user + sys of a 1-thread `kiln bench`, N and 3N iterations
differenced, as int8_bench.py measures it) is reported: median and every
sample. Run bench/int8_bench.py once first (it makes the QDQ model).

usage: bench/int8_ab.py KILN_A KILN_B [--rounds 3] [--cpu-iters 5] [--avx2]
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import int8_bench  # noqa: E402
import run_bench  # noqa: E402


def build(kiln, model, shapes, out, isa=None):
    spec = ",".join("%s:%s" % (k, "x".join(map(str, v))) for k, v in shapes.items())
    env = dict(os.environ, KILN_CPU_ISA=isa) if isa else None
    subprocess.run([kiln, "build", model, "-o", out, "--shapes", spec, "--threads", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln_a")
    ap.add_argument("kiln_b")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu-iters", type=int, default=5)
    ap.add_argument("--avx2", action="store_true", help="also the AVX2-only engines")
    ap.add_argument("--workdir", default=None, help="where the engines go")
    a = ap.parse_args()
    fp32, shapes, _ = run_bench.export("resnet50")
    qdq = fp32[:-5] + "_qdq.onnx"
    if not os.path.exists(qdq):
        sys.exit("no %s: run bench/int8_bench.py first" % qdq)
    work = a.workdir or os.path.join(os.path.dirname(fp32), "ab")
    os.makedirs(work, exist_ok=True)
    cases = [("fp32", fp32, None), ("int8", qdq, None)]
    if a.avx2:
        cases += [("fp32_avx2only", fp32, "avx2,fma"), ("int8_avx2only", qdq, "avx2,fma")]
    bins = {"A": os.path.abspath(a.kiln_a), "B": os.path.abspath(a.kiln_b)}
    engines = {}
    for name, model, isa in cases:
        for tag, kiln in bins.items():
            engines[(name, tag)] = build(kiln, model, shapes,
                                         os.path.join(work, "%s_%s.kiln" % (name, tag)), isa)
    samples = {k: [] for k in engines}
    for _ in range(a.rounds):
        for name, _, isa in cases:
            env = dict(os.environ, KILN_CPU_ISA=isa) if isa else None
            for tag, kiln in bins.items():
                samples[(name, tag)].append(int8_bench.kiln_cpu_ms(
                    kiln, engines[(name, tag)], shapes, 1, a.cpu_iters, env))
    print("CPU ms per run, 1 thread (median; all samples in round order)")
    print("A = %s\nB = %s" % (bins["A"], bins["B"]))
    med = {}
    for (name, tag), v in samples.items():
        med[(name, tag)] = statistics.median(v)
        print("  %-14s %s %8.2f  (%s)" % (name, tag, med[(name, tag)],
                                         " ".join("%.2f" % x for x in v)))
    for tag in bins:
        print("  %s: INT8 speed-up vs FP32 %.2fx" % (tag, med[("fp32", tag)] / med[("int8", tag)]),
              end="")
        if a.avx2:
            print("; AVX2 only %.2fx" % (med[("fp32_avx2only", tag)] /
                                          med[("int8_avx2only", tag)]), end="")
        print()


if __name__ == "__main__":
    main()
