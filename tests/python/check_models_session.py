#!/usr/bin/env python3
"""Runs the exported model suite (tests/models; the cases check_models.py
exports into build/models) through kiln.InferenceSession, the onnxruntime-
compatible Python session, and compares every output with the expected data
(onnxruntime's outputs, saved at export time) by relative L2 distance, as
check_models.py does for the CLI. Entries of tests/models/xfail.txt for the
engine mode (or `*`) are expected failures here too.

Run it after check_models.py has exported the models (tests/run.sh does).
The last line is `N passed, M failed`.

usage: check_models_session.py [--models-dir DIR] [--quick] [--tol T] [--only A,B]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models")
sys.path.insert(0, MODELS)
import export_models  # noqa: E402


def load_xfail():
    out = {}
    path = os.path.join(MODELS, "xfail.txt")
    if os.path.isfile(path):
        for line in open(path):
            parts = line.strip().split(None, 2)
            if len(parts) == 3 and not parts[0].startswith("#") and parts[1] in ("engine", "*"):
                out[parts[0]] = parts[2]
    return out


def run_case(case_dir, tol):
    """(ok, message, seconds) for every data set of one case."""
    import kiln
    t0 = time.perf_counter()
    opts = kiln.SessionOptions()
    opts.opt_level = 0  # correctness, not tuning: skip tactic timing
    sess = kiln.InferenceSession(os.path.join(case_dir, "model.onnx"), sess_options=opts,
                                 kiln_cache=False)
    names = [o.name for o in sess.get_outputs()]
    sets = sorted((d for d in os.listdir(case_dir) if d.startswith("test_data_set_")),
                  key=lambda d: int(d.rsplit("_", 1)[1]))
    worst = 0.0
    for sd in sets:
        d = os.path.join(case_dir, sd)
        feed, k = {}, 0
        while os.path.isfile(os.path.join(d, "input_%d.pb" % k)):
            name, arr = kiln.load_pb(os.path.join(d, "input_%d.pb" % k))
            feed[name] = arr
            k += 1
        got = sess.run(None, feed)
        k = 0
        while os.path.isfile(os.path.join(d, "output_%d.pb" % k)):
            _, want = kiln.load_pb(os.path.join(d, "output_%d.pb" % k))
            if k >= len(got):
                return False, "%s: output %d missing" % (sd, k), time.perf_counter() - t0
            g = got[k]
            if g.shape != want.shape or g.dtype != want.dtype:
                return False, "%s output %d '%s': %s %s, expected %s %s" % (
                    sd, k, names[k], g.dtype, g.shape, want.dtype, want.shape), time.perf_counter() - t0
            r = export_models.rel_l2(g, want)
            worst = max(worst, r)
            if not r <= tol:
                return False, "%s output %d '%s': rel-L2 %.3g > %.0e" % (sd, k, names[k], r, tol), \
                    time.perf_counter() - t0
            k += 1
    return True, "worst rel-L2 %.2g over %d sets" % (worst, len(sets)), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-dir", default=export_models.DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="the cases of check_models.py --quick")
    ap.add_argument("--only", default="")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s] or None
    cases = [c for _, _, c in export_models.case_names(args.quick, only)]
    xfail = load_xfail()
    passed = failed = 0
    ran = 0
    for case in cases:
        d = os.path.join(args.models_dir, case)
        if not os.path.isfile(os.path.join(d, "model.onnx")):
            print("SKIP %s: not exported (run tests/models/check_models.py first)" % case)
            continue
        ran += 1
        try:
            ok, msg, dt = run_case(d, args.tol)
        except Exception as e:  # a refusal is a result
            ok, msg, dt = False, "%s: %s" % (type(e).__name__, str(e)[:300]), 0.0
        if case in xfail:
            if ok:
                print("XPASS %s: listed in tests/models/xfail.txt but passes" % case)
                failed += 1
            else:
                print("XFAIL %s: %s" % (case, msg))
            continue
        print("%s %s: %s (%.1fs)" % ("PASS" if ok else "FAIL", case, msg, dt), flush=True)
        passed += ok
        failed += not ok
    if ran == 0:
        print("no exported models found in %s" % args.models_dir)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
