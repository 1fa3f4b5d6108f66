#!/usr/bin/env python3
"""The kiln CLI as a user meets it (issue 11), one check per finding:
- no data loss: outputs that are inputs, foreign files in the timing-cache
  slot, stale caches, unwritable folders; every such case leaves every file
  in the scratch folder byte-identical;
- a scripted session of wrong invocations (>= 50), written from a user's
  point of view: each gets exit code 2, a message on stderr naming the
  option or thing at fault, nothing on stdout, and no file changed;
- --help of every command goes to stdout, exits 0 and shows defaults;
- files are recognized by their magic, not their extension;
- random inputs respect the model (Gather ranges, masks, shape inputs
  refused unless given); --input .pb/.npy and --load-inputs;
- bench report (percentiles one per line, stddev, CoV, wall time, threads,
  --batch), build progress lines and --verbose winner marks, the workspace
  warning, byte-identical rebuilds with one timing cache;
- check prints its tolerances and per-output rel-L2, and recognizes an
  engine built from another model; inspect --json of a model keeps symbolic
  dim names; inspect --profile-runs prints totals and percentages.
Ends with `N passed, M failed`.

usage: test_cli.py KILN_BINARY
"""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "examples", "tiny_cnn.onnx")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))
    sys.stdout.flush()


def run(cmd, timeout=300, cwd=None):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def tree_digest(root):
    """path -> sha256 of every file under root (and the set of folders)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        out[os.path.relpath(dirpath, root) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def diff_trees(a, b):
    changed = [k for k in a if b.get(k) != a[k]]
    added = [k for k in b if k not in a]
    return changed + ["+" + k for k in added]


# ---------------------------------------------------------------- models
def token_model(path):
    """ids (int64 [batch, seq]) -> Gather from a 5-row table; attention_mask
    (int64, same shape) multiplies; y = emb * mask."""
    table = numpy_helper.from_array(np.arange(20, dtype=np.float32).reshape(5, 4), "table")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "ax"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["y"], name="apply_mask"),
    ]
    ax = numpy_helper.from_array(np.array([2], dtype=np.int64), "ax")
    g = helper.make_graph(
        nodes, "tok",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 4])],
        [table, ax])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)


def shape_input_model(path):
    """x (float [6]) reshaped by the input 'target' (int64 [2])."""
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")], "shp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6]),
         helper.make_tensor_value_info("target", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def relu_model(path, n=8):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="r")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def save_pb(arr, name, path):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


# ---------------------------------------------------------------- tests
def test_data_loss(kiln, tmp):
    d = os.path.join(tmp, "loss")
    os.makedirs(d)
    model = os.path.join(d, "model.onnx")
    shutil.copy(TINY, model)
    prof = ["--shapes", "image:2x3x32x32"]
    eng = os.path.join(d, "good.kiln")
    p = run([kiln, "build", model, "-o", eng, "-q"] + prof)
    check("build a reference engine", p.returncode == 0, p.stderr[-300:])
    notes = os.path.join(d, "notes.txt")
    with open(notes, "w") as f:
        f.write("precious\n")
    os.symlink(model, os.path.join(d, "link.onnx"))
    cases = [
        ("-o names the model", ["build", model, "-o", model] + prof, "is the input file"),
        ("-o names the model through ./ and ..",
         ["build", model, "-o", os.path.join(d, "..", "loss", ".", "model.onnx")] + prof,
         "is the input file"),
        ("-o names a symlink to the model",
         ["build", model, "-o", os.path.join(d, "link.onnx")] + prof, "is the input file"),
        ("--timing-cache names the model",
         ["build", model, "-o", os.path.join(d, "new.kiln"), "--timing-cache", model] + prof,
         "is the input file"),
        ("--timing-cache names a text file",
         ["build", model, "-o", os.path.join(d, "new.kiln"), "--timing-cache", notes] + prof,
         "not a Kiln timing cache|refusing to overwrite"),
        ("--timing-cache names an engine",
         ["build", model, "-o", os.path.join(d, "new.kiln"), "--timing-cache", eng] + prof,
         "refusing to overwrite"),
        ("-o names an existing non-engine file",
         ["build", model, "-o", notes] + prof, "refusing to overwrite"),
        ("-o and --timing-cache are one file",
         ["build", model, "-o", os.path.join(d, "same"), "--timing-cache",
          os.path.join(d, "same")] + prof, "same file"),
        ("-o in a missing folder",
         ["build", model, "-o", os.path.join(d, "nope", "e.kiln")] + prof, "does not exist"),
        ("-o is a folder", ["build", model, "-o", d] + prof, "is a folder"),
        ("run --output-dir is the --load-inputs folder", None, "load-inputs"),
        ("run --output-dir is a file", ["run", model, "--output-dir", notes] + prof,
         "not a folder"),
    ]
    # a test_data_set whose expected outputs must survive
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds)
    save_pb(np.ones((2, 3, 32, 32), np.float32), "image", os.path.join(ds, "input_0.pb"))
    save_pb(np.zeros((2, 10), np.float32), "logits", os.path.join(ds, "output_0.pb"))
    cases[10] = (cases[10][0], ["run", "--engine", eng, "--load-inputs", ds, "--output-dir", ds],
                 cases[10][2])
    for name, args, msg in cases:
        before = tree_digest(d)
        p = run([kiln] + args)
        after = tree_digest(d)
        ch = diff_trees(before, after)
        check("no data loss: " + name,
              p.returncode == 2 and re.search(msg, p.stderr) and not ch,
              "rc=%d changed=%s stderr=%s" % (p.returncode, ch, p.stderr[-300:]))
    if os.geteuid() != 0:
        ro = os.path.join(d, "ro")
        os.makedirs(ro)
        os.chmod(ro, stat.S_IRUSR | stat.S_IXUSR)
        p = run([kiln, "build", model, "-o", os.path.join(ro, "e.kiln"), "-v"] + prof)
        check("unwritable folder refused before the build",
              p.returncode == 2 and "not writable" in p.stderr and "tactic" not in p.stderr,
              p.stderr[-300:])
        os.chmod(ro, stat.S_IRWXU)

    # a stale cache (another format/device) is replaced only on success
    cache = os.path.join(d, "stale.cache")
    stale = "kiln-timing-cache 1 kiln-0.0.1/cpu/x86_64/none\nfoo\tbar\n"
    with open(cache, "w") as f:
        f.write(stale)
    bad_model = os.path.join(d, "bad.onnx")
    with open(bad_model, "wb") as f:
        f.write(b"\x08\x07garbage that is not a model")
    p = run([kiln, "build", bad_model, "-o", os.path.join(d, "x.kiln"), "--timing-cache", cache])
    check("failed build leaves a stale cache untouched",
          p.returncode != 0 and open(cache).read() == stale, p.stderr[-300:])
    p = run([kiln, "build", model, "-o", os.path.join(d, "x.kiln"), "--timing-cache", cache]
            + prof)
    new = open(cache).read()
    check("successful build replaces a stale cache",
          p.returncode == 0 and new.startswith("kiln-timing-cache 2 ") and "foo\tbar" not in new,
          p.stderr[-300:])
    # tactics timed on 2 threads get their own entries; a rebuild at 2 reuses them
    ents = lambda: len(open(cache).read().splitlines())  # noqa: E731
    n1 = ents()
    p = run([kiln, "build", model, "-o", os.path.join(d, "x.kiln"), "--timing-cache", cache,
             "--threads", "2"] + prof)
    n2 = ents()
    p2 = run([kiln, "build", model, "-o", os.path.join(d, "x.kiln"), "--timing-cache", cache,
              "--threads", "2"] + prof)
    check("--threads 2: timings of their own, reused by the next build at 2",
          p.returncode == 0 and p2.returncode == 0 and n2 > n1 and ents() == n2 and
          ":t2" in open(cache).read() and " 0 new entries" in p2.stderr,
          "%d -> %d entries; %s" % (n1, n2, p2.stderr[-300:]))


def wrong_invocations(kiln, d, eng, tok, shp):
    """(argv, regex the error must match). Each is something a user could
    type; each must be refused by name with exit 2."""
    m = TINY
    ds = os.path.join(d, "test_data_set_0")
    return [
        ([], r"usage"),
        (["frobnicate"], r"unknown command 'frobnicate'"),
        (["biuld", m], r"unknown command 'biuld'"),
        (["build"], r"missing MODEL"),
        (["build", m], r"missing -o"),
        (["build", m, "-o"], r"-o: missing its value"),
        (["build", m, "-o", "--verbose"], r"-o: missing its value"),
        (["build", m, "-o", "-v"], r"-o: missing its value"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--opt-level", "9"], r"--opt-level: .*'9'"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--opt-level", "two"], r"--opt-level"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--workspace", "-5"], r"--workspace"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--workspace", "lots"], r"--workspace: .*'lots'"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--workspace", "nan"], r"--workspace"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--device", "tpu"], r"--device: .*cpu\|cuda.*'tpu'"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--tming-cache", "c"], r"did you mean '--timing-cache'"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "imag:1x3x32x32"], r"no input 'imag'"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:1x3x32"], r"rank 4"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:1x3x32xabc"], r"--shapes: .*integers"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image"], r"--shapes: expected NAME:DIMS"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:"], r"has no dims"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:-1x3x32x32"], r"non-negative"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:1x3x32x32,image:2x3x32x32"], r"given twice"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:99999999999x3x32x32"], r"too large"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--min-shapes", "image:8x3x32x32", "--max-shapes", "image:2x3x32x32"], r"min <= opt <= max"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--shapes", "image:1x3x32x32", "--max-shapes", "image:2x3x32x32"], r"do not combine"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "--verbose=yes"], r"--verbose: takes no value"),
        (["build", m, "-o", os.path.join(d, "a.kiln"), "-o", os.path.join(d, "b.kiln")], r"given more than once"),
        (["build", eng, "-o", os.path.join(d, "a.kiln")], r"is a Kiln engine, not an ONNX model"),
        (["build", os.path.join(d, "missing.onnx"), "-o", os.path.join(d, "a.kiln")], r"does not exist"),
        (["build", d, "-o", os.path.join(d, "a.kiln")], r"is a folder"),
        (["build", m, m, "-o", os.path.join(d, "a.kiln")], r"unexpected argument"),
        (["bench", eng, "--threads", "0"], r"--threads: .*'0'"),
        (["bench", eng, "--threads", "-1"], r"--threads: .*'-1'"),
        (["bench", eng, "--threads", "abc"], r"--threads: .*'abc'"),
        (["bench", eng, "--threads", "1000"], r"--threads: .*'1000'"),
        (["bench", eng, "--threads", "2.5"], r"--threads: .*'2.5'"),
        (["bench", eng, "--iterations", "0"], r"--iterations"),
        (["bench", eng, "--duration", "-1"], r"--duration"),
        (["bench", eng, "--duration", "1e999"], r"--duration"),
        (["bench", eng, "--percentile", "101"], r"--percentile: .*'101'"),
        (["bench", eng, "--warmup", "soon"], r"--warmup"),
        (["bench", eng, "--batch", "0"], r"--batch"),
        (["bench", eng, "--shapes", "input:1x3x32x32"], r"no input 'input'"),
        (["bench", eng, "--engine", eng], r"not both"),
        (["bench"], r"missing MODEL"),
        (["bench", "--engine", m], r"not a Kiln engine"),
        (["bench", tok, "--input", "ids=" + os.path.join(d, "nothere.npy")], r"does not exist"),
        (["run", tok, "--input", "idz=" + os.path.join(d, "ids.npy")], r"no input 'idz'"),
        (["run", tok, "--input", "ids"], r"--input: expected NAME=FILE"),
        (["run", tok, "--input", "ids=" + os.path.join(d, "ids.npy"), "--input",
          "ids=" + os.path.join(d, "ids.npy")], r"given twice"),
        (["run", tok, "--input", "ids=" + os.path.join(d, "f32.npy")], r"holds float32.*int64"),
        (["run", tok, "--input", "ids=" + eng], r"is a Kiln engine, not a tensor"),
        (["run", tok, "--input", "ids=" + os.path.join(d, "notes.txt")], r"not a TensorProto"),
        (["run", shp], r"input 'target' holds shape values.*Reshape"),
        (["run", m, "--load-inputs", os.path.join(d, "nope")], r"--load-inputs: .*not a folder"),
        (["run", tok, "--load-inputs", ds], r"no input_1.pb|input_0.pb"),
        (["run", m, "--seed", "x"], r"--seed"),
        (["run", m, "--reference", "--engine", eng], r"not both"),
        (["run", eng, "--reference"], r"--reference runs a model"),
        (["run", m, "--batch", "2", "--shapes", "image:1x3x3x3"], r"fixed at 32"),
        (["check"], r"missing CASE_DIR"),
        (["check", os.path.join(d, "nocase")], r"not a case folder"),
        (["check", d, "--rtol", "abc"], r"--rtol: .*'abc'"),
        (["check", d, "--atol", "-1"], r"--atol: .*'-1'"),
        (["check", d, "--engine", m], r"not a Kiln engine"),
        (["inspect"], r"missing"),
        (["inspect", m, "--profile-runs", "0"], r"--profile-runs: .*'0'"),
        (["inspect", m, "--profile-runs", "ten"], r"--profile-runs"),
        (["inspect", m, "--sort", "size", "--profile-runs", "1"], r"--sort: .*time\|order"),
        (["inspect", m, "--shapes", "image:1x3x32x32"], r"need --profile-runs"),
        (["inspect", os.path.join(d, "empty.onnx"), "--json=1"], r"--json: takes no value"),
        (["version", "extra"], r"unexpected argument"),
    ]


def test_session(kiln, tmp):
    d = os.path.join(tmp, "session")
    os.makedirs(d)
    eng = os.path.join(d, "tiny.kiln")
    p = run([kiln, "build", TINY, "-o", eng, "--shapes", "image:1x3x32x32", "-q"])
    tok = os.path.join(d, "tok.onnx")
    token_model(tok)
    shp = os.path.join(d, "shp.onnx")
    shape_input_model(shp)
    np.save(os.path.join(d, "ids.npy"), np.zeros((1, 4), np.int64))
    np.save(os.path.join(d, "f32.npy"), np.zeros((1, 4), np.float32))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not a tensor\n")
    open(os.path.join(d, "empty.onnx"), "wb").close()
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds)
    save_pb(np.zeros((1, 4), np.int64), "ids", os.path.join(ds, "input_0.pb"))
    os.makedirs(os.path.join(d, "nocase"))
    os.rmdir(os.path.join(d, "nocase"))
    inv = wrong_invocations(kiln, d, eng, tok, shp)
    bad = []
    before = tree_digest(d)
    for args, pat in inv:
        p = run([kiln] + args, timeout=60)
        after = tree_digest(d)
        ch = diff_trees(before, after)
        problem = None
        if p.returncode != 2:
            problem = "exit %d" % p.returncode
        elif not re.search(pat, p.stderr):
            problem = "message does not match /%s/" % pat
        elif p.stdout.strip():
            problem = "printed to stdout"
        elif ch:
            problem = "changed files %s" % ch
        if problem:
            bad.append("kiln %s: %s: %s" % (" ".join(args), problem, p.stderr.strip()[-200:]))
            before = after
    for b in bad:
        print("  " + b)
    check("%d wrong invocations: each a named error, exit 2, no file changed" % len(inv),
          len(inv) >= 50 and not bad, "%d bad" % len(bad))


def test_help(kiln):
    bad = []
    for cmd in ("build", "run", "bench", "check", "inspect", "version"):
        for flag in ("--help", "-h"):
            p = run([kiln, cmd, flag])
            if p.returncode != 0 or not p.stdout.startswith("usage: kiln " + cmd) or p.stderr:
                bad.append("%s %s rc=%d" % (cmd, flag, p.returncode))
    p = run([kiln, "bench", "--help"])
    ok = "(default: 3)" in p.stdout and "(default: physical cores)" in p.stdout
    p2 = run([kiln, "--help"])
    check("--help to stdout, exit 0, with defaults",
          not bad and ok and p2.returncode == 0 and "build" in p2.stdout, ", ".join(bad))


def test_magic(kiln, tmp):
    d = os.path.join(tmp, "magic")
    os.makedirs(d)
    eng = os.path.join(d, "engine.onnx")  # an engine with a model's extension
    p = run([kiln, "build", TINY, "-o", eng, "--shapes", "image:1x3x32x32", "-q"])
    check("an engine may be named .onnx", p.returncode == 0, p.stderr[-300:])
    p = run([kiln, "inspect", eng])
    check("inspect recognizes an engine by magic", p.returncode == 0 and "layers:" in p.stdout,
          p.stderr[-300:])
    p = run([kiln, "run", eng])
    check("run recognizes an engine by magic", p.returncode == 0, p.stderr[-300:])
    model = os.path.join(d, "model.kiln")  # a model with an engine's extension
    shutil.copy(TINY, model)
    p = run([kiln, "inspect", model])
    check("a model named .kiln is read as a model", p.returncode == 0 and "producer" in p.stdout,
          p.stderr[-300:])
    p = run([kiln, "run", model, "--shapes", "image:1x3x32x32"])
    check("run a model named .kiln", p.returncode == 0, p.stderr[-300:])


def test_inputs(kiln, tmp):
    d = os.path.join(tmp, "inputs")
    os.makedirs(d)
    tok = os.path.join(d, "tok.onnx")
    token_model(tok)
    p = run([kiln, "run", tok, "--shapes", "ids:2x64,attention_mask:2x64", "--output-dir",
             os.path.join(d, "out"), "--seed", "3"])
    ok = p.returncode == 0
    if ok:
        y = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "out", "output_0.pb")))
        # mask of ones: y is the gathered rows, all from the 5-row table
        ok = y.shape == (2, 64, 4) and set(np.unique(y[:, :, 0]).tolist()) <= {0, 4, 8, 12, 16}
    check("random token ids stay inside the Gather table, masks are ones", ok, p.stderr[-300:])
    p = run([kiln, "bench", tok, "--shapes", "ids:1x16,attention_mask:1x16", "--duration",
             "0.1"])
    check("bench a token model with no input files", p.returncode == 0, p.stderr[-300:])
    p = run([kiln, "inspect", tok, "--profile-runs", "3", "--batch", "2"])
    check("inspect --profile-runs a token model with no input files", p.returncode == 0,
          p.stderr[-300:])
    shp = os.path.join(d, "shp.onnx")
    shape_input_model(shp)
    save_pb(np.array([2, 3], np.int64), "target", os.path.join(d, "target.pb"))
    p = run([kiln, "run", shp, "--input", "target=" + os.path.join(d, "target.pb"),
             "--output-dir", os.path.join(d, "out2")])
    ok = p.returncode == 0 and "[2, 3]" in p.stdout
    check("a shape input given as a file is used", ok, p.stderr[-300:] + p.stdout)
    ids = np.array([[4, 0, 1]], np.int64)
    np.save(os.path.join(d, "ids.npy"), ids)
    np.save(os.path.join(d, "mask.npy"), np.array([[1, 0, 1]], np.int64))
    p = run([kiln, "run", tok, "--input", "ids=" + os.path.join(d, "ids.npy"), "--input",
             "attention_mask=" + os.path.join(d, "mask.npy"), "--output-dir",
             os.path.join(d, "out3")])
    ok = p.returncode == 0
    if ok:
        y = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "out3", "output_0.pb")))
        want = np.arange(20, dtype=np.float32).reshape(5, 4)[ids] * np.array([1, 0, 1])[None, :, None]
        ok = np.array_equal(y, want)
    check("--input NAME=FILE.npy", ok, p.stderr[-300:])
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds)
    save_pb(ids, "ids", os.path.join(ds, "input_0.pb"))
    save_pb(np.ones_like(ids), "attention_mask", os.path.join(ds, "input_1.pb"))
    out = os.path.join(d, "out4")
    p = run([kiln, "build", tok, "-o", os.path.join(d, "tok.kiln"), "-q", "--min-shapes",
             "ids:1x1,attention_mask:1x1", "--max-shapes", "ids:4x32,attention_mask:4x32"])
    p = run([kiln, "run", "--engine", os.path.join(d, "tok.kiln"), "--load-inputs", ds,
             "--output-dir", out])
    ok = p.returncode == 0
    if ok:
        y = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
        ok = np.array_equal(y, np.arange(20, dtype=np.float32).reshape(5, 4)[ids])
    check("--load-inputs DIR on an engine", ok, p.stderr[-300:])


def test_bench_report(kiln, tmp):
    d = os.path.join(tmp, "bench")
    os.makedirs(d)
    relu = os.path.join(d, "relu.onnx")
    relu_model(relu)
    p = run([kiln, "bench", relu, "--batch", "4", "--duration", "0.2", "--threads", "1"])
    out = p.stdout
    lines = out.splitlines()
    need = [r"^\s+min\s", r"^\s+max\s", r"^\s+mean\s", r"^\s+median\s", r"^\s+p90\s",
            r"^\s+p95\s", r"^\s+p99\s", r"^\s+stddev\s", r"^\s+CoV\s"]
    missing = [n for n in need if not any(re.search(n, l) for l in lines)]
    ok = (p.returncode == 0 and not missing and re.search(r"Threads:\s+1\b", out)
          and re.search(r"Batch:\s+4\b", out) and "Host wall:" in out
          and re.search(r"x float32 \[4, 8\]", out))
    check("bench report: one line per statistic, threads, batch, wall time", ok,
          "missing %s; %s %s" % (missing, out[-600:], p.stderr[-300:]))
    p = run([kiln, "bench", relu, "--duration", "0.1", "--json"])
    try:
        doc = json.loads(p.stdout)
        lat = doc["latency_ms"]
        ok = all(k in lat for k in ("stddev", "cov", "p99")) and doc["threads"] >= 1 \
            and "host_wall_s" in doc and "unstable" in doc
    except (ValueError, KeyError) as e:
        ok = False
        p.stderr += str(e)
    check("bench --json has stddev, CoV, threads, wall time", ok, p.stderr[-300:])
    p = run([kiln, "bench", "--help"])
    cores = None
    m = re.search(r"Threads:\s+(\d+) \(default: (\d+) physical", run(
        [kiln, "bench", relu, "--duration", "0.05"]).stdout)
    check("--threads defaults to the physical cores", m and m.group(1) == m.group(2),
          str(m and m.groups()))


def test_build_output(kiln, tmp):
    d = os.path.join(tmp, "build")
    os.makedirs(d)
    eng = os.path.join(d, "e.kiln")
    cache = os.path.join(d, "c.cache")
    args = [kiln, "build", TINY, "-o", eng, "--min-shapes", "image:1x3x32x32", "--opt-shapes",
            "image:4x3x32x32", "--max-shapes", "image:8x3x32x32", "--timing-cache", cache]
    p = run(args + ["--verbose"])
    phases = ["model load", "import and shape inference", "optimizer passes",
              "tactic selection:", "memory planning", "serialization", "build total"]
    missing = [ph for ph in phases if not re.search(re.escape(ph) + r".*\d+\.\d ms", p.stderr)]
    check("build prints each phase with its time", p.returncode == 0 and not missing,
          "missing %s" % missing)
    check("build shows tactic-selection progress",
          re.search(r"tactic selection: profile 0: \d+/\d+ layers", p.stderr), p.stderr[-300:])
    check("--verbose marks the winning tactic", "<- chosen" in p.stderr, p.stderr[-300:])
    first = open(eng, "rb").read()
    eng2 = os.path.join(d, "e2.kiln")
    p = run(args[:4] + [eng2] + args[5:])
    check("rebuild with the same timing cache is byte-identical",
          p.returncode == 0 and open(eng2, "rb").read() == first, p.stderr[-300:])
    p = run([kiln, "build", TINY, "-o", os.path.join(d, "ws.kiln"), "--shapes",
             "image:1x3x32x32", "--workspace", "0"])
    check("--workspace 0 warns and names the layers",
          p.returncode == 0 and re.search(r"warning.*workspace.*reference tactic.*node \d+",
                                          p.stderr), p.stderr[-500:])
    p = run([kiln, "build", TINY, "-o", os.path.join(d, "dev.kiln"), "--shapes",
             "image:1x3x32x32", "--device", "cpu", "--fp16", "-q"])
    check("--device cpu --fp16 accepted", p.returncode == 0, p.stderr[-300:])


def test_check_inspect(kiln, tmp):
    d = os.path.join(tmp, "check")
    case = os.path.join(d, "case_relu")
    os.makedirs(os.path.join(case, "test_data_set_0"))
    relu_model(os.path.join(case, "model.onnx"))
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    save_pb(x, "x", os.path.join(case, "test_data_set_0", "input_0.pb"))
    # expected output with float noise of 2e-6 that an atol of 1e-7 refuses
    save_pb(np.maximum(x, 0) + np.float32(2e-6), "y",
            os.path.join(case, "test_data_set_0", "output_0.pb"))
    p = run([kiln, "check", case])
    check("check defaults accept float32 noise and print their tolerances",
          p.returncode == 0 and "rtol 0.001, atol 1e-05" in p.stdout and "rel-L2" in p.stdout,
          p.stdout[-400:] + p.stderr[-300:])
    other = os.path.join(d, "other.onnx")
    relu_model(other, n=8)
    m2 = onnx.load(other)
    m2.graph.node[0].name = "renamed"  # same I/O, different model bytes
    onnx.save(m2, other)
    eng = os.path.join(d, "other.kiln")
    run([kiln, "build", other, "-o", eng, "--shapes", "x:2x8", "-q"])
    p = run([kiln, "check", case, "--engine", eng])
    check("check recognizes an engine built from another model",
          p.returncode == 1 and "different model" in p.stdout, p.stdout[-300:])
    eng2 = os.path.join(d, "same.kiln")
    run([kiln, "build", os.path.join(case, "model.onnx"), "-o", eng2, "--shapes", "x:2x8", "-q"])
    p = run([kiln, "check", case, "--engine", eng2])
    check("check accepts an engine built from the case's model", p.returncode == 0,
          p.stdout[-300:])
    sym = os.path.join(d, "sym.onnx")
    relu_model(sym)
    p = run([kiln, "inspect", sym, "--json"])
    try:
        doc = json.loads(p.stdout)
        ok = doc["inputs"][0]["shape"] == ["N", 8] and doc["outputs"][0]["shape"] == ["N", 8]
    except (ValueError, KeyError, IndexError) as e:
        ok = False
        p.stderr += str(e)
    check("inspect MODEL.onnx --json keeps symbolic dim names", ok, p.stdout[-300:] + p.stderr[-300:])
    p = run([kiln, "inspect", TINY, "--profile-runs", "3", "--batch", "2"])
    rows = re.findall(r"^\s+\d+ .* (\d+\.\d+)% +(\d+\.\d)%$", p.stdout, re.M)
    pcts = [float(r[0]) for r in rows]
    ok = (p.returncode == 0 and re.search(r"profile: 3 runs, \d+\.\d+ ms per run", p.stdout)
          and rows and abs(sum(pcts) - 100) < 1 and pcts == sorted(pcts, reverse=True)
          and re.search(r"total .* 100\.00%", p.stdout))
    check("inspect --profile-runs: totals, percentages, sorted by time", ok,
          p.stdout[-600:] + p.stderr[-300:])


def main():
    kiln = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="kiln-cli-test-")
    try:
        test_data_loss(kiln, tmp)
        test_session(kiln, tmp)
        test_help(kiln)
        test_magic(kiln, tmp)
        test_inputs(kiln, tmp)
        test_bench_report(kiln, tmp)
        test_build_output(kiln, tmp)
        test_check_inspect(kiln, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
