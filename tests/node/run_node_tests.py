#!/usr/bin/env python3
"""Runs the ONNX backend node tests (shipped in the onnx 1.22 wheel) through
`kiln check` and holds the result against the expected-failure lists in
tests/xfail/*.txt (one `case_name reason...` per line).

A case fails the suite when it is not listed and does not pass, or when it
is listed but passes (the list may only shrink: remove the entry). The last
line is `N passed, M failed`.

usage: run_node_tests.py KILN_BINARY [--mode engine|reference] [--jobs N]
                         [--min-pass N] [--filter SUBSTR]
"""
import argparse
import glob
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
XFAIL_DIR = os.path.join(HERE, "..", "xfail")


def node_dir():
    import onnx  # the data lives inside the wheel
    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    if not os.path.isdir(d):
        sys.exit("onnx %s ships no node tests; install onnx==1.22.0" % onnx.__version__)
    return d


def load_xfail():
    entries = {}
    for path in sorted(glob.glob(os.path.join(XFAIL_DIR, "*.txt"))):
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


def run_chunk(kiln, mode, dirs, extra=()):
    # The ONNX backend tests' own tolerances (kiln check defaults to looser
    # ones, meant for whole models).
    cmd = [kiln, "check", "--rtol", "1e-3", "--atol", "1e-7"] + list(extra) + \
        (["--reference"] if mode == "reference" else []) + dirs
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", timeout=3600)
    results = {}
    for line in p.stdout.splitlines():
        if line.startswith("PASS ") or line.startswith("FAIL "):
            name = line[5:].split(":", 1)[0].split(" ", 1)[0]
            results[name] = (line.startswith("PASS"), line)
    if p.returncode < 0 or p.returncode > 1:
        # a signal or a crash: mark every case of the chunk without a result
        for d in dirs:
            name = os.path.basename(d)
            if name not in results:
                results[name] = (False, "FAIL %s: kiln exited with status %d: %s" %
                                 (name, p.returncode, p.stderr[-400:]))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("--mode", choices=["engine", "reference"], default="engine")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-pass", type=int, default=0)
    ap.add_argument("--filter", default="")
    ap.add_argument("--kiln-args", default="",
                    help="extra arguments for kiln check, e.g. '--device cuda'")
    ap.add_argument("--report-host", default="",
                    help="write per-case host-fallback layer counts (device builds) here")
    args = ap.parse_args()

    root = node_dir()
    cases = sorted(d for d in os.listdir(root) if args.filter in d)
    xfail = load_xfail()
    dirs = [os.path.join(root, c) for c in cases]
    chunk = max(1, (len(dirs) + args.jobs * 8 - 1) // (args.jobs * 8))
    chunks = [dirs[i:i + chunk] for i in range(0, len(dirs), chunk)]
    results = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for r in ex.map(lambda c: run_chunk(args.kiln, args.mode, c,
                                                  args.kiln_args.split()), chunks):
            results.update(r)

    passed = failed = xfailed = 0
    problems = []
    for c in cases:
        ok, line = results.get(c, (False, "FAIL %s: no result" % c))
        if c in xfail:
            if ok:
                problems.append("XPASS %s (listed in %s: '%s'): it passes now; remove "
                                "the entry" % (c, xfail[c][1], xfail[c][0]))
                failed += 1
            else:
                xfailed += 1
        elif ok:
            passed += 1
        else:
            problems.append(line)
            failed += 1
    stale = sorted(set(xfail) - set(cases)) if not args.filter else []
    for s in stale:
        problems.append("STALE xfail entry %s (%s): no such case" % (s, xfail[s][1]))
        failed += 1
    for p in problems:
        print(p)
    print("node tests (%s mode): %d cases, %d pass, %d expected failures" %
          (args.mode, len(cases), passed, xfailed))
    if args.report_host:
        import re
        counts = {}
        for c in cases:
            ok, line = results.get(c, (False, ""))
            m = re.search(r"(\d+) host-fallback layers", line)
            if ok and m:
                counts[c] = int(m.group(1))
        with open(args.report_host, "w") as f:
            for c in sorted(counts):
                f.write("%s %d\n" % (c, counts[c]))
        print("device builds: %d passing cases ran with no host-fallback layer, %d with some" %
              (sum(1 for v in counts.values() if v == 0),
               sum(1 for v in counts.values() if v > 0)))
    if passed < args.min_pass:
        print("only %d cases pass; at least %d must" % (passed, args.min_pass))
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
