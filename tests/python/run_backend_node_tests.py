#!/usr/bin/env python3
"""Runs the ONNX backend node tests (onnx 1.22's data) through kiln.backend,
the Python ONNX backend: prepare(model) builds an engine in memory, run()
feeds each test_data_set_N's inputs, and every output is compared like
`kiln check` does (numpy.isclose with equal_nan, rtol 1e-3, atol 1e-7).

Expected failures: the CLI's lists (tests/xfail/*.txt: what Kiln itself
cannot do) plus tests/python/backend_xfail.txt (what only the Python layer
cannot do, e.g. element types numpy cannot hold). Each entry has a reason;
a listed case that passes fails the run (remove the entry). Cases run in
worker processes, so a crash fails its cases instead of the run.
The last line is `N passed, M failed`.

usage: run_backend_node_tests.py [--jobs N] [--filter SUBSTR] [--min-pass N]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
XFAIL_FILES = sorted(glob.glob(os.path.join(HERE, "..", "xfail", "*.txt"))) + \
    [os.path.join(HERE, "backend_xfail.txt")]


def node_dir():
    import onnx
    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    if not os.path.isdir(d):
        sys.exit("onnx %s ships no node tests; install onnx==1.22.0" % onnx.__version__)
    return d


def load_xfail():
    entries = {}
    for path in XFAIL_FILES:
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for ln, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(None, 1)
                if len(parts) < 2:
                    sys.exit("%s:%d: entry '%s' has no reason" % (path, ln, parts[0]))
                entries[parts[0]] = (parts[1], os.path.basename(path))
    return entries


def compare(got, want, rtol=1e-3, atol=1e-7):
    import numpy as np
    if got.dtype != want.dtype:
        return "dtype %s, expected %s" % (got.dtype, want.dtype)
    if got.shape != want.shape:
        return "shape %s, expected %s" % (got.shape, want.shape)
    if got.dtype.kind in "biu":
        bad = got != want
    else:
        g = got.astype(np.complex128 if got.dtype.kind == "c" else np.float64)
        w = want.astype(g.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return "%d of %d elements differ (first at %d: got %r, expected %r)" % (
            int(bad.sum()), bad.size, i, got.reshape(-1)[i], want.reshape(-1)[i])
    return None


def run_case(d):
    """One case in this process: (passed, message)."""
    import kiln
    import kiln.backend
    try:
        rep = kiln.backend.prepare(os.path.join(d, "model.onnx"))
        for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
            ins = [kiln.load_pb(p)[1] for p in
                   sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                          key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
            outs = [kiln.load_pb(p)[1] for p in
                    sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                           key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
            got = list(rep.run(ins))
            if len(got) != len(outs):
                return False, "%d outputs, expected %d" % (len(got), len(outs))
            for k, (g, w) in enumerate(zip(got, outs)):
                msg = compare(g, w)
                if msg:
                    return False, "%s output %d: %s" % (os.path.basename(ds), k, msg)
        return True, ""
    except Exception as e:  # every failure is a result, not a crash of the run
        return False, "%s: %s" % (type(e).__name__, str(e)[:300])


def worker(dirs):
    for d in dirs:
        ok, msg = run_case(d)
        print(json.dumps([os.path.basename(d), ok, msg]), flush=True)


def run_chunk(dirs):
    p = subprocess.run([sys.executable, __file__, "--worker"] + dirs, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace", timeout=3600)
    results = {}
    for line in p.stdout.splitlines():
        try:
            name, ok, msg = json.loads(line)
        except ValueError:
            continue
        results[name] = (ok, msg)
    if p.returncode != 0:  # a crash: the cases without a result fail
        for d in dirs:
            results.setdefault(os.path.basename(d), (
                False, "worker exited with status %d: %s" % (p.returncode, p.stderr[-300:])))
    return results


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--filter", default="")
    ap.add_argument("--min-pass", type=int, default=0)
    args = ap.parse_args()
    root = node_dir()
    cases = sorted(c for c in os.listdir(root) if args.filter in c)
    dirs = [os.path.join(root, c) for c in cases]
    n_chunks = max(1, args.jobs * 6)
    chunks = [dirs[i::n_chunks] for i in range(n_chunks) if dirs[i::n_chunks]]
    results = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for r in ex.map(run_chunk, chunks):
            results.update(r)
    xfail = load_xfail()
    passed = failed = xfailed = 0
    for c in cases:
        ok, msg = results.get(c, (False, "no result"))
        if c in xfail:
            if ok:
                print("XPASS %s (listed in %s: '%s'): it passes now; remove the entry"
                      % (c, xfail[c][1], xfail[c][0]))
                failed += 1
            else:
                xfailed += 1
        elif ok:
            passed += 1
        else:
            print("FAIL %s: %s" % (c, msg))
            failed += 1
    if not args.filter:
        for s in sorted(set(xfail) - set(cases)):
            print("STALE xfail entry %s (%s): no such case" % (s, xfail[s][1]))
            failed += 1
    print("node tests through kiln.backend: %d cases, %d pass, %d expected failures"
          % (len(cases), passed, xfailed))
    if passed < args.min_pass:
        print("only %d cases pass; at least %d must" % (passed, args.min_pass))
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
