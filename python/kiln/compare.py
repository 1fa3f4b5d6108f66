"""kiln compare: runs the same inputs through a reference and a Kiln engine
and reports, per output, how far apart they are.

    python -m kiln.compare MODEL.onnx                      # onnxruntime vs Kiln (built here)
    python -m kiln.compare MODEL.onnx --engine E.kiln      # onnxruntime vs an engine file
    python -m kiln.compare MODEL.onnx --kiln-model COPY.onnx --bisect
    python -m kiln.compare --engine FP32.kiln --engine2 FP16.kiln   # two engines

Per output: max/mean absolute error, max/mean relative error, the smallest
atol (at the given rtol) and rtol (at the given atol) that would pass, and
PASSED/FAILED against --rtol/--atol (elementwise |a - b| <= atol + rtol*|b|,
b the reference, NaN equal to NaN). Inputs are random (--seed, --shapes for
symbolic dims) unless given as .pb or .npy files with --input NAME=FILE.

--bisect finds the first layer whose output diverges: it marks every
intermediate tensor of the ONNX model as a graph output (in the reference
model and in the model the Kiln side is built from; tensors are matched by
name), runs both, and walks the nodes in order. Marking outputs keeps Kiln
from fusing across those tensors, so an error that only appears inside a
fusion shows up as "no intermediate diverges" while the outputs fail.
Exit status: 0 all passed, 1 some output failed, 2 usage or setup error.
"""
import argparse
import os
import sys

import numpy as np

import kiln


def _load_input(spec):
    if "=" not in spec:
        raise SystemExit("kiln compare: --input takes NAME=FILE.pb|FILE.npy, got %r" % spec)
    name, path = spec.split("=", 1)
    if path.endswith(".npy"):
        return name, np.load(path, allow_pickle=False)
    return name, kiln.load_pb(path)[1]


def _parse_shapes(text):
    shapes = {}
    for item in filter(None, (text or "").split(",")):
        name, _, dims = item.rpartition(":")
        if not name:
            raise SystemExit("kiln compare: --shapes takes NAME:DIMS,..., got %r" % item)
        shapes[name] = tuple(int(d) for d in dims.split("x")) if dims else ()
    return shapes


def random_inputs(infos, shapes, seed):
    """Random arrays for [(name, numpy dtype, shape)]: floats in [-1, 1),
    integers in [0, 4), random bools. Symbolic dims come from shapes, else 1."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name, dt, shape in infos:
        if name in shapes:
            dims = shapes[name]
        elif shape is None:
            raise SystemExit("kiln compare: input %r has unknown rank; give --shapes" % name)
        else:
            dims = tuple(d if isinstance(d, int) and d >= 0 else 1 for d in shape)
        if dt is None:
            raise SystemExit("kiln compare: input %r has a type numpy cannot hold" % name)
        if dt.kind == "f" or dt.kind == "V":
            a = rng.uniform(-1, 1, size=dims).astype(dt)
        elif dt.kind == "c":
            a = (rng.uniform(-1, 1, size=dims) + 1j * rng.uniform(-1, 1, size=dims)).astype(dt)
        elif dt.kind == "b":
            a = rng.integers(0, 2, size=dims).astype(bool)
        else:
            a = rng.integers(0, 4, size=dims).astype(dt)
        feed[name] = a
    return feed


class Stats:
    """Error statistics of candidate `got` against reference `ref`."""

    def __init__(self, got, ref, rtol, atol):
        self.shape_ok = got.shape == ref.shape
        self.rtol, self.atol = rtol, atol
        if not self.shape_ok:
            self.passed = False
            self.msg = "shape %s, reference %s" % (got.shape, ref.shape)
            return
        self.msg = ""
        kind = np.complex128 if got.dtype.kind == "c" or ref.dtype.kind == "c" else np.float64
        g = np.asarray(got).astype(kind).ravel()
        r = np.asarray(ref).astype(kind).ravel()
        both_nan = np.isnan(g) & np.isnan(r)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            d = np.abs(g - r)
            d[both_nan] = 0
            d[np.isnan(d)] = np.inf  # NaN on one side only: never within tolerance
            d[(g == r)] = 0          # equal infinities
            mag = np.abs(r)
            rel = np.where(d == 0, 0.0, d / np.where(mag > 0, mag, np.finfo(np.float64).tiny))
            self.max_abs = float(d.max()) if d.size else 0.0
            self.mean_abs = float(d.mean()) if d.size else 0.0
            self.max_rel = float(rel.max()) if d.size else 0.0
            self.mean_rel = float(rel.mean()) if d.size else 0.0
            # Smallest atol that passes at this rtol, smallest rtol at this atol.
            self.need_atol = float(max(0.0, (d - rtol * mag).max())) if d.size else 0.0
            need_r = np.where(d <= atol, 0.0, (d - atol) / np.where(mag > 0, mag, np.finfo(np.float64).tiny))
            self.need_rtol = float(need_r.max()) if d.size else 0.0
            bad = ~(d <= atol + rtol * mag)
        self.bad = int(bad.sum())
        self.size = int(d.size)
        self.passed = self.bad == 0

    def lines(self):
        if not self.shape_ok:
            return ["  " + self.msg]
        return [
            "  max abs %.4g  mean abs %.4g  max rel %.4g  mean rel %.4g" % (
                self.max_abs, self.mean_abs, self.max_rel, self.mean_rel),
            "  passes with atol >= %.4g (at rtol %g), or rtol >= %.4g (at atol %g)" % (
                self.need_atol, self.rtol, self.need_rtol, self.atol),
            "  %d of %d elements outside tolerance" % (self.bad, self.size),
        ]


class _Ort:
    name = "onnxruntime"

    def __init__(self, model, exact=False):
        import onnxruntime as ort
        so = ort.SessionOptions()
        if exact:  # keep intermediates as the graph computes them
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        data = model if isinstance(model, bytes) else model
        self.sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        self.name = "onnxruntime %s" % ort.__version__

    def input_infos(self):
        out = []
        for i in self.sess.get_inputs():
            t = i.type[len("tensor("):-1]
            dt = {"float": np.float32, "double": np.float64, "bool": np.bool_}.get(t, None)
            if dt is None:
                try:
                    dt = np.dtype(t)
                except TypeError:
                    dt = None
            out.append((i.name, None if dt is None else np.dtype(dt), i.shape))
        return out

    def run(self, feed, names=None):
        names = names or [o.name for o in self.sess.get_outputs()]
        return dict(zip(names, self.sess.run(names, feed)))


class _Kiln:
    def __init__(self, engine, label):
        self.engine = engine
        self.ctx = engine.create_context()
        self.name = label

    def input_infos(self):
        return [(t.name, t.dtype, t.shape) for t in self.engine.inputs]

    def run(self, feed, names=None):
        return self.ctx.run(feed, names)


def _static_shapes(feed):
    return {n: a.shape for n, a in feed.items()}


def _build(model, feed, args):
    return kiln.build(model, shapes=_static_shapes(feed), precision=tuple(args.precision.split(",")),
                      opt_level=args.opt_level, log="error")


def _mark_all(model_path):
    """(model bytes with every node output also a graph output, [(node index,
    node name, op, output name)] in node order)."""
    import onnx
    m = onnx.load(model_path)
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        typed = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    except Exception:  # untyped outputs still work for both runtimes
        typed = {}
    existing = {o.name for o in m.graph.output}
    order = []
    for i, node in enumerate(m.graph.node):
        for out in node.output:
            if not out:
                continue
            order.append((i, node.name or "node%d" % i, node.op_type, out))
            if out in existing:
                continue
            vi = onnx.ValueInfoProto()
            if out in typed:
                vi.CopyFrom(typed[out])
            else:
                vi.name = out
            m.graph.output.append(vi)
            existing.add(out)
    return m.SerializeToString(), order


def bisect(ref_model, kiln_model, feed, args, out):
    """Prints and returns the first (node, tensor) whose value diverges."""
    ref_bytes, order = _mark_all(ref_model)
    cand_bytes, cand_order = _mark_all(kiln_model)
    cand_names = {o[3] for o in cand_order}
    ref = _Ort(ref_bytes, exact=True)
    ref_out = ref.run(feed)
    engine = _build(cand_bytes, feed, args)
    got = engine.create_context().run(feed)
    compared = 0
    for idx, name, op, tensor in order:
        if tensor not in cand_names or tensor not in got or tensor not in ref_out:
            continue
        r, g = np.asarray(ref_out[tensor]), got[tensor]
        if r.dtype.kind not in "fcbiu":
            continue
        compared += 1
        st = Stats(g, r, args.rtol, args.atol)
        if not st.passed:
            out.write("bisect: %d intermediate tensors compared in node order\n" % compared)
            out.write("first diverging layer: node %d '%s' (%s), output '%s'\n" % (idx, name, op, tensor))
            for line in st.lines():
                out.write(line + "\n")
            return name
    out.write("bisect: %d intermediate tensors compared; none diverges beyond the tolerance "
              "(the difference may come from a fusion that marking outputs prevents)\n" % compared)
    return None


def main(argv=None, prog="python -m kiln.compare"):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="ONNX model: the reference (onnxruntime) side")
    ap.add_argument("--engine", help="Kiln engine file to test (default: build one from the model)")
    ap.add_argument("--kiln-model", help="build the Kiln side from this ONNX model instead "
                    "(e.g. a modified copy); --bisect rebuilds it")
    ap.add_argument("--engine2", help="reference side is this Kiln engine instead of onnxruntime")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE",
                    help="input from a .pb (TensorProto) or .npy file; repeatable")
    ap.add_argument("--shapes", help="NAME:DIMS,... for random inputs with symbolic dims")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--precision", default="fp32", help="precisions for engines built here, "
                    "comma-separated (fp32,fp16,...)")
    ap.add_argument("--opt-level", type=int, default=1)
    ap.add_argument("--bisect", action="store_true",
                    help="find the first layer whose output diverges")
    args = ap.parse_args(argv)
    out = sys.stdout
    try:
        return _main(args, out)
    except (kiln.KilnError, OSError) as e:
        sys.stderr.write("kiln compare: %s\n" % e)
        return 2


def _main(args, out):
    if not args.model and not (args.engine and args.engine2):
        sys.stderr.write("kiln compare: give MODEL.onnx, or --engine and --engine2\n")
        return 2
    if args.bisect and not args.model:
        sys.stderr.write("kiln compare: --bisect needs the ONNX model\n")
        return 2
    given = dict(_load_input(s) for s in args.input)
    shapes = _parse_shapes(args.shapes)

    # Reference side.
    if args.engine2:
        ref = _Kiln(kiln.Engine.load(args.engine2), "Kiln engine %s" % args.engine2)
    else:
        try:
            ref = _Ort(args.model)
        except ImportError:
            sys.stderr.write("kiln compare: onnxruntime is not installed (pip install onnxruntime)\n")
            return 2
    infos = ref.input_infos()
    feed = random_inputs([i for i in infos if i[0] not in given], shapes, args.seed)
    feed.update(given)

    # Candidate side.
    kiln_model = args.kiln_model or args.model
    if args.engine:
        cand = _Kiln(kiln.Engine.load(args.engine), "Kiln engine %s" % args.engine)
    else:
        cand = _Kiln(_build(kiln_model, feed, args), "Kiln engine built from %s (%s)"
                     % (kiln_model, args.precision))

    out.write("reference: %s\ncandidate: %s\n" % (ref.name if args.engine2 else
                                                  "%s on %s" % (ref.name, args.model), cand.name))
    for n, a in feed.items():
        out.write("input %s: %s %s%s\n" % (n, a.dtype, list(a.shape),
                                           "" if n in given else " (random, seed %d)" % args.seed))
    ref_out = ref.run(feed)
    got = cand.run(feed)
    failed = 0
    for name, r in ref_out.items():
        r = np.asarray(r)
        if name not in got:
            out.write("output %s: missing from the candidate\nFAILED\n" % name)
            failed += 1
            continue
        st = Stats(got[name], r, args.rtol, args.atol)
        out.write("output %s: %s %s\n" % (name, r.dtype, list(r.shape)))
        for line in st.lines():
            out.write(line + "\n")
        out.write("  %s (rtol %g, atol %g)\n" % ("PASSED" if st.passed else "FAILED",
                                                  args.rtol, args.atol))
        failed += not st.passed
    out.write("%s: %d of %d outputs within tolerance\n" % (
        "FAILED" if failed else "PASSED", len(ref_out) - failed, len(ref_out)))
    if args.bisect:
        if args.engine and not args.kiln_model:
            out.write("bisect: rebuilding the Kiln side from %s (an engine file cannot "
                      "expose its intermediates)\n" % args.model)
        bisect(args.model, kiln_model, feed, args, out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
