#!/usr/bin/env python3
"""Runs real exported models (tests/models/export_models.py) through Kiln and
compares every output with onnxruntime's by relative L2 distance,
||kiln - ort|| / ||ort||, which must be <= --tol (1e-4).

Each case runs in two modes:
  reference  `kiln run MODEL.onnx --input NAME=FILE.pb ... --output-dir D`
             (the reference interpreter)
  engine     `kiln build MODEL.onnx -o E.kiln` with a profile spanning the
             test shapes (dynamic dims from 1 to the largest test size), then
             `kiln run --engine E.kiln --input ... --output-dir D`
Every test_data_set_N of a case runs (they differ in the dynamic dims).
The one-node reproducers in tests/models/repro/ run too (unless --only).
One line per case and mode (PASS/FAIL/XFAIL/XPASS, worst rel-L2 per output
over the sets, wall times per set); the last line is `N passed, M failed`. Cases listed in tests/models/xfail.txt
(`case mode|* reason`) are expected to fail; a listed case that passes fails
the run (remove the entry). Extra models whose export fails are skipped;
the acceptance models (REQUIRED) may not fail to export.

usage: check_models.py KILN_BINARY [--models-dir DIR] [--quick]
                       [--only NAME,...] [--modes reference,engine]
                       [--tol T] [--timeout S] [--json FILE] [--keep]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_models  # noqa: E402

# The acceptance set: its export may not fail. Everything else is extra
# coverage that is skipped (and said so) when the exporter cannot handle it.
REQUIRED = {"resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "bert_base"}
XFAIL_FILE = os.path.join(HERE, "xfail.txt")


def load_pb(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def load_xfail(path=XFAIL_FILE):
    entries = {}
    if not os.path.isfile(path):
        return entries
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                sys.exit("%s:%d: want 'case mode|* reason'" % (path, ln))
            entries[(parts[0], parts[1])] = parts[2]
    return entries


def run_cmd(cmd, timeout):
    """Runs cmd; returns (ok, seconds, message)."""
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t, "timed out after %ds: %s" % (
            timeout, " ".join(os.path.basename(c) for c in cmd[:3]))
    dt = time.perf_counter() - t
    if p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        what = "signal %d" % -p.returncode if p.returncode < 0 else "exit %d" % p.returncode
        return False, dt, "%s %s: %s" % (os.path.basename(cmd[0]), cmd[1], what) + (
            ": " + " | ".join(err[-3:]) if err else "")
    return True, dt, ""


BUILD_ARGS = []   # extra `kiln build` arguments (--build-args), e.g. --device cuda
TOP1 = False      # also require the same arg-max per row on classifier outputs
# With a case's own list of class-score outputs (top1= below), a row whose
# reference scores its top class and the engine's pick within TIE of each
# other (relative to the row's largest magnitude) is a tie, not a miss: half
# precision cannot order scores closer than its own rounding.
TIE = 1e-3


def top1_misses(got, want):
    """(misses, ties) of the arg-max over the last axis, per row."""
    import numpy as np
    w = np.asarray(want, dtype=np.float64).reshape(-1, want.shape[-1])
    g = np.asarray(got, dtype=np.float64).reshape(-1, got.shape[-1])
    gi, wi = np.argmax(g, axis=1), np.argmax(w, axis=1)
    rows = np.arange(w.shape[0])
    gap = w[rows, wi] - w[rows, gi]
    scale = np.maximum(np.abs(w).max(axis=1), np.finfo(np.float64).tiny)
    differ = gi != wi
    ties = differ & (gap <= TIE * scale)
    return int((differ & ~ties).sum()), int(ties.sum())


def compare_outputs(want_dir, got_dir, tol, top1=None):
    """rel-L2 per output; returns (ok, [rel], message). With TOP1 on, top1
    lists the outputs holding class scores on their last axis (None: 2-D
    float output 0 with at least 10 columns, as the exported classifiers)."""
    import numpy as np
    rels, problems = [], []
    k = 0
    while os.path.isfile(os.path.join(want_dir, "output_%d.pb" % k)):
        name, want = load_pb(os.path.join(want_dir, "output_%d.pb" % k))
        gp = os.path.join(got_dir, "output_%d.pb" % k)
        if not os.path.isfile(gp):
            problems.append("output %d '%s' missing" % (k, name))
            rels.append(float("inf"))
            k += 1
            continue
        _, got = load_pb(gp)
        if got.shape != want.shape:
            problems.append("output %d '%s': shape %s, expected %s" % (
                k, name, list(got.shape), list(want.shape)))
            rels.append(float("inf"))
        elif got.dtype != want.dtype:
            problems.append("output %d '%s': dtype %s, expected %s" % (k, name, got.dtype,
                                                                      want.dtype))
            rels.append(float("inf"))
        else:
            r = export_models.rel_l2(got, want)
            if not np.isfinite(np.asarray(got, dtype=np.float64)).all() and \
                    np.isfinite(np.asarray(want, dtype=np.float64)).all():
                r = float("inf")
            rels.append(r)
            if not r <= tol:
                problems.append("output %d '%s': rel-L2 %.3g > %.0e" % (k, name, r, tol))
            if TOP1 and top1 is None and want.ndim == 2 and want.shape[1] >= 10 and \
                    k == 0 and want.dtype.kind == "f":
                same = (np.argmax(got, axis=1) == np.argmax(want, axis=1))
                if not same.all():
                    problems.append("output %d '%s': top-1 class differs in %d of %d rows" %
                                    (k, name, int((~same).sum()), same.size))
            elif TOP1 and top1 and k in top1 and want.size:
                miss, ties = top1_misses(got, want)
                if miss:
                    problems.append("output %d '%s': top-1 differs in %d of %d rows "
                                    "(%d more within %.0e: ties)" % (
                                        k, name, miss, want.size // want.shape[-1], ties, TIE))
        k += 1
    if k == 0:
        problems.append("no expected outputs in %s" % want_dir)
    return not problems, rels, "; ".join(problems)


def data_sets(case_dir):
    return sorted((d for d in os.listdir(case_dir) if d.startswith("test_data_set_")),
                  key=lambda d: int(d.rsplit("_", 1)[1]))


def input_args(set_dir):
    """--input NAME=FILE pairs and {name: shape} for one test data set."""
    args, shapes = [], {}
    k = 0
    while os.path.isfile(os.path.join(set_dir, "input_%d.pb" % k)):
        p = os.path.join(set_dir, "input_%d.pb" % k)
        name, arr = load_pb(p)
        args += ["--input", "%s=%s" % (name, p)]
        shapes[name] = list(arr.shape)
        k += 1
    return args, shapes


def profile_args(all_shapes, dyn):
    """An engine profile spanning the data sets: dynamic dims from 1 (their
    smallest legal value) up to the largest test size; opt is set 0."""
    # rank-0 inputs have no DIMS spelling for the CLI, and need no profile
    names = [n for n in all_shapes[0] if all_shapes[0][n]]

    def is_dyn(n, i):
        d = dyn.get(n, {})
        return str(i) in d or i in d

    def spec(dims_of):
        return ",".join("%s:%s" % (n, "x".join(str(v) for v in dims_of(n))) for n in names)

    def lo(n):  # an empty KV cache makes a dim 0
        return [min(1, min(s[n][i] for s in all_shapes)) if is_dyn(n, i) else v
                for i, v in enumerate(all_shapes[0][n])]

    def hi(n):
        return [max(s[n][i] for s in all_shapes) for i in range(len(all_shapes[0][n]))]

    if not any(is_dyn(n, i) for n in names for i in range(len(all_shapes[0][n]))):
        return ["--shapes", spec(lambda n: all_shapes[0][n])]
    return ["--min-shapes", spec(lo), "--opt-shapes", spec(lambda n: all_shapes[0][n]),
            "--max-shapes", spec(hi)]


def run_case(kiln, case_dir, mode, work, tol, timeout, top1=None):
    """Runs every data set of a case in one mode; returns a result dict with
    the worst rel-L2 per output over the sets (top1: see compare_outputs)."""
    meta = {}
    mp = os.path.join(case_dir, "meta.json")
    if os.path.isfile(mp):
        with open(mp) as f:
            meta = json.load(f)
    model = os.path.join(case_dir, "model.onnx")
    sets = data_sets(case_dir)
    args = [input_args(os.path.join(case_dir, sd)) for sd in sets]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    res = {"mode": mode, "run_seconds": [], "rel_l2": [],
           "ort_seconds": [m.get("ort_seconds_1thread") for m in meta.get("sets", [])]}
    ok, msg, eng = True, "", None
    if not sets:
        ok, msg = False, "no test_data_set_* folders"
    elif mode == "engine":
        eng = os.path.join(work, "model.kiln")
        prof = profile_args([a[1] for a in args], meta.get("dynamic_axes") or {})
        ok, dt, msg = run_cmd([kiln, "build", model, "-o", eng, "-q"] + prof + BUILD_ARGS,
                              timeout)
        res["build_seconds"] = dt
    for sd, (ins, _) in zip(sets, args):
        if not ok:
            break
        out = os.path.join(work, sd)
        os.makedirs(out)
        target = ["--engine", eng] if eng else [model]
        ok, dt, msg = run_cmd([kiln, "run"] + target + ins + ["--output-dir", out], timeout)
        res["run_seconds"].append(dt)
        if ok:
            # a case may carry its own, looser tolerance (quantized models)
            ok, rels, msg = compare_outputs(os.path.join(case_dir, sd), out,
                                            max(tol, meta.get("tol", 0)), top1)
            res["rel_l2"] = [max(a, b) for a, b in zip(res["rel_l2"], rels)] \
                if res["rel_l2"] else rels
        if not ok:
            msg = "%s: %s" % (sd, msg)
    res["ok"], res["message"] = ok, msg
    return res


def fmt_line(status, case, res):
    rel = ",".join("%.1e" % r for r in res.get("rel_l2", [])) or "-"
    t = "run %s" % ("/".join("%.2fs" % x for x in res["run_seconds"]) or "-")
    if "build_seconds" in res:
        t = "build %.2fs %s" % (res["build_seconds"], t)
    ort = [x for x in res.get("ort_seconds", []) if x is not None]
    if ort:
        t += " (ort 1-thread %s)" % "/".join("%.3fs" % x for x in ort)
    line = "%-5s %-26s %-9s rel-L2 %-22s %s" % (status, case, res["mode"], rel, t)
    if res.get("message"):
        line += "\n      " + res["message"]
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kiln")
    ap.add_argument("--models-dir", default=export_models.DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true",
                    help="the acceptance set plus a KV-cache decoder, an LSTM, a "
                         "YOLO-like head and a Loop decoder (export_models.py --list)")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--modes", default="reference,engine")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=int, default=900, help="seconds per kiln command")
    ap.add_argument("--json", default="", help="write the results here too")
    ap.add_argument("--keep", action="store_true", help="keep engines and outputs")
    ap.add_argument("--build-args", default="",
                    help="extra kiln build arguments, e.g. '--device cuda --fp16'")
    ap.add_argument("--top1", action="store_true",
                    help="classifier outputs must also agree on the arg-max of every row")
    args = ap.parse_args()
    global TOP1
    BUILD_ARGS.extend(args.build_args.split())
    TOP1 = args.top1
    kiln = os.path.abspath(args.kiln)
    if not os.access(kiln, os.X_OK):
        sys.exit("no kiln binary at %s" % kiln)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("reference", "engine"):
            sys.exit("unknown mode %s" % m)
    mdir = os.path.abspath(args.models_dir)
    only = [s for s in args.only.split(",") if s] or None
    t_start = time.perf_counter()

    export_errors = export_models.export_all(mdir, args.quick, only,
                                             log=lambda s: print(s, flush=True))
    t_export = time.perf_counter() - t_start
    xfail = load_xfail()
    passed = failed = skipped = xfailed = 0
    results = {}
    for name, opset, case in export_models.case_names(args.quick, only):
        cdir = os.path.join(mdir, case)
        if case in export_errors or not export_models.case_complete(cdir):
            why = export_errors.get(case, "export incomplete")
            if name in REQUIRED:
                print("FAIL  %-26s export    %s" % (case, why), flush=True)
                failed += 1
            else:
                print("SKIP  %-26s export    %s" % (case, why), flush=True)
                skipped += 1
            results[case] = {"export_error": why}
            continue
        for mode in modes:
            work = os.path.join(mdir, "_work", case, mode)
            res = run_case(kiln, cdir, mode, work, args.tol, args.timeout)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
            reason = xfail.get((case, mode)) or xfail.get((case, "*"))
            if reason is not None:
                if res["ok"]:
                    status = "XPASS"
                    res["message"] = "listed in xfail.txt (%s) but passes: remove the " \
                                     "entry" % reason
                    failed += 1
                else:
                    status = "XFAIL"
                    res["message"] = "%s [expected: %s]" % (res["message"], reason)
                    xfailed += 1
            elif res["ok"]:
                status = "PASS"
                passed += 1
            else:
                status = "FAIL"
                failed += 1
            results.setdefault(case, {})[mode] = res
            print(fmt_line(status, case, res), flush=True)
    # one-node reproducers of bugs found here (tests/models/repro/): fixed
    # ones stay as regression cases
    rdir = os.path.join(HERE, "repro")
    repros = sorted(d for d in os.listdir(rdir)
                    if os.path.isfile(os.path.join(rdir, d, "model.onnx"))) \
        if os.path.isdir(rdir) and not only else []
    for name in repros:
        case = "repro/" + name
        for mode in modes:
            work = os.path.join(mdir, "_work", "repro", name, mode)
            res = run_case(kiln, os.path.join(rdir, name), mode, work, args.tol, args.timeout)
            shutil.rmtree(work, ignore_errors=True)
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
            results.setdefault(case, {})[mode] = res
            print(fmt_line(status, case, res), flush=True)
    total = time.perf_counter() - t_start
    print("models: export %.0fs, total %.0fs; %d expected failures, %d skipped (extra "
          "models the exporter cannot handle)" % (t_export, total, xfailed, skipped))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
