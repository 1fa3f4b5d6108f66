#!/usr/bin/env python3
"""Runs the hand-made "models from the wild" cases (tests/models/wild_cases.py:
tolerant import, old opsets, and the com.microsoft / ai.onnx.ml operators
onnxruntime's tools and skl2onnx write) through Kiln in reference and engine
mode against onnxruntime, like check_models.py does for exported models.
Each case is written to build/models/wild/<name>/ at test time. A case that
declares import warnings also checks that `kiln inspect` logs each of them.

usage: check_wild.py KILN_BINARY [--only a,b] [--modes reference,engine]
                     [--out DIR] [--tol T] [--cases wild|sklearn]
`--cases sklearn` runs the scikit-learn models of sklearn_cases.py (skl2onnx
exports, made at test time) instead.
Ends with `N passed, M failed`; expected failures are the `wild/<name>`
entries of tests/models/xfail.txt.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_models  # noqa: E402
from export_models import DEFAULT_OUT, ort_session, write_pb  # noqa: E402
import wild_cases  # noqa: E402


def write_case(name, c, d):
    shutil.rmtree(d, ignore_errors=True)
    sd = os.path.join(d, "test_data_set_0")
    os.makedirs(sd)
    path = os.path.join(d, "model.onnx")
    onnx.save(c.model, path)
    if c.expect:
        outs = c.expect(c.feeds)
        ins = [i.name for i in c.model.graph.input
               if i.name not in {t.name for t in c.model.graph.initializer}]
        onames = [o.name for o in c.model.graph.output]
    else:
        sess = ort_session(path, optimize=False)
        outs = sess.run(None, c.feeds)
        ins = [i.name for i in sess.get_inputs()]
        onames = [o.name for o in sess.get_outputs()]
    for k, n in enumerate(ins):
        write_pb(os.path.join(sd, "input_%d.pb" % k), c.feeds[n], n)
    for k, (o, a) in enumerate(zip(onames, outs)):
        write_pb(os.path.join(sd, "output_%d.pb" % k), np.asarray(a), o)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"dynamic_axes": c.dynamic}, f)
    return path


def within_one_lsb(case_dir, work):
    k = 0
    want_dir = os.path.join(case_dir, "test_data_set_0")
    while os.path.isfile(os.path.join(want_dir, "output_%d.pb" % k)):
        _, want = check_models.load_pb(os.path.join(want_dir, "output_%d.pb" % k))
        _, got = check_models.load_pb(os.path.join(work, "test_data_set_0",
                                                   "output_%d.pb" % k))
        diff = np.abs(want.astype(np.int64) - got.astype(np.int64)).max() if want.size else 0
        if diff > 1:
            return False, "output %d differs by %d units (1 allowed)" % (k, diff)
        k += 1
    return True, ""


def check_warnings(kiln, path, warns):
    if not warns:
        return True, ""
    p = subprocess.run([kiln, "inspect", path], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        return False, "inspect failed: " + (p.stderr or p.stdout).strip()[-400:]
    missing = [w for w in warns if w not in p.stderr]
    if missing:
        return False, "import warnings lack %s; stderr was: %s" % (
            missing, p.stderr.strip()[-600:] or "(empty)")
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("--only", default="")
    ap.add_argument("--modes", default="reference,engine")
    ap.add_argument("--out", default=os.path.join(DEFAULT_OUT, "wild"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--cases", choices=["wild", "sklearn"], default="wild")
    args = ap.parse_args()
    cases = wild_cases.CASES
    if args.cases == "sklearn":
        import sklearn_cases
        cases = sklearn_cases.CASES
        if args.out == os.path.join(DEFAULT_OUT, "wild"):
            args.out = os.path.join(DEFAULT_OUT, "sklearn")
    if args.list:
        print("\n".join(sorted(cases)))
        return 0
    kiln = os.path.abspath(args.kiln)
    only = [s for s in args.only.split(",") if s]
    xfail = check_models.load_xfail()
    passed = failed = xfailed = 0
    for name in sorted(cases):
        if only and name not in only:
            continue
        d = os.path.join(os.path.abspath(args.out), name)
        case = args.cases + "/" + name
        try:
            c = cases[name]()
            path = write_case(name, c, d)
        except Exception as e:  # onnxruntime refusing a case is a test bug
            print("FAIL  %-34s setup     %s" % (case, str(e).splitlines()[0][:300]))
            failed += 1
            continue
        wok, wmsg = check_warnings(kiln, path, c.warns)
        for mode in args.modes.split(","):
            work = os.path.join(d, "_work", mode)
            if c.lsb:  # shapes and dtypes checked here, values below
                res = check_models.run_case(kiln, d, mode, work, float("inf"), 300)
                if res["ok"]:
                    res["ok"], res["message"] = within_one_lsb(d, work)
            else:
                res = check_models.run_case(kiln, d, mode, work, args.tol, 300)
            shutil.rmtree(work, ignore_errors=True)
            if res["ok"] and not wok:
                res["ok"], res["message"] = False, wmsg
            reason = xfail.get((case, mode)) or xfail.get((case, "*"))
            if reason is not None and not res["ok"]:
                status, xfailed = "XFAIL", xfailed + 1
                res["message"] = "%s [expected: %s]" % (res["message"], reason)
            elif reason is not None:
                status, failed = "XPASS", failed + 1
                res["message"] = "listed in xfail.txt (%s) but passes: remove the entry" % reason
            elif res["ok"]:
                status, passed = "PASS", passed + 1
            else:
                status, failed = "FAIL", failed + 1
            print(check_models.fmt_line(status, case, res), flush=True)
    print("wild cases: %d expected failures" % xfailed)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
