"""Small hand-made models of the kinds other exporters and onnxruntime's own
tools write (issue 10): files onnxruntime loads that a strict reader would
refuse. Each case is a function returning a Case; check_wild.py writes it in
the backend-test layout with onnxruntime's outputs and runs it through Kiln.

A case lists the substrings its import warnings must contain (`warns`): each
leniency is logged, never silent.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


class Case:
    def __init__(self, model, feeds, warns=(), dynamic=None, lsb=False, expect=None):
        self.model = model
        self.feeds = feeds
        self.warns = list(warns)
        self.dynamic = dynamic or {}   # {input: [axes]} for engine profiles
        # quantized outputs: onnxruntime's fixed-point requantization rounds
        # some halfway cases the other way; allow 1 unit in the last place
        self.lsb = lsb
        # numpy reference for ops onnxruntime has no CPU kernel for
        self.expect = expect


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def rng(seed=0):
    return np.random.default_rng(seed)


def make(graph, opset=17, ir=8, extra_opsets=()):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] +
                          [helper.make_opsetid(d, v) for d, v in extra_opsets])
    m.ir_version = ir
    return m


def vi(name, elem, dims):
    """ValueInfo with raw dims: ints become dim_value (even <= 0), strings
    dim_param, None a dim with neither; dims None leaves the shape out."""
    v = onnx.ValueInfoProto()
    v.name = name
    if elem is None and dims is None:
        return v
    tt = v.type.tensor_type
    if elem is not None:
        tt.elem_type = elem
    if dims is not None:
        tt.shape.SetInParent()
        for d in dims:
            dd = tt.shape.dim.add()
            if isinstance(d, int):
                dd.dim_value = d
            elif isinstance(d, str):
                dd.dim_param = d
    return v


def x34(seed=0, shape=(3, 4)):
    return rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------ tolerant import

@case
def neg_dim_value_io():
    """dim_value -1 on a graph input and output (TensorFlow/Paddle exports)."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [vi("x", F, [-1, 4])], [vi("y", F, [-1, 4])])
    return Case(make(g), {"x": x34()}, ["'x'", "dim_value -1"], {"x": [0]})


@case
def zero_dim_value_output():
    """A graph output declared with dim_value 0 that is not empty:
    onnxruntime takes the computed shape (0 is a real dim on inputs, where
    onnxruntime refuses other sizes, so Kiln reads it as 0 there too)."""
    g = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "g",
                          [vi("x", F, [3, 4])], [vi("y", F, [0, 4])])
    return Case(make(g), {"x": x34()})


@case
def untyped_graph_output():
    """Graph outputs with no type, an elem_type only, or a shape only."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Neg", ["x"], ["b"]),
             helper.make_node("Abs", ["x"], ["c"])]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])],
                          [vi("a", None, None), vi("b", F, None), vi("c", F, [None, 7])])
    return Case(make(g), {"x": x34()}, ["output 'a' declares no type"])


@case
def untyped_value_info():
    """value_info entries without a type, with a wrong rank, or dim -1."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Add", ["a", "x"], ["y"])]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])], [vi("y", F, [3, 4])],
                          value_info=[vi("a", None, None), vi("x2", F, [-1])])
    return Case(make(g), {"x": x34()}, ["value_info 'x2'"])


@case
def if_untyped_subgraph_outputs():
    """If branches whose outputs carry no type (must be inferred)."""
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                               [vi("t", None, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [vi("e", None, None)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Constant", [], ["zero"],
                              value=numpy_helper.from_array(np.array(0, np.float32))),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])], [vi("y", F, [3, 4])])
    return Case(make(g), {"x": x34()}, ["'t'", "'e'"])


@case
def loop_untyped_body_outputs():
    """A Loop body whose carried and scan outputs have no declared type."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
         helper.make_node("Relu", ["acc_out"], ["scan_out"])],
        "body", [vi("i", I64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", F, None)],
        [vi("cond_out", None, None), vi("acc_out", None, None), vi("scan_out", None, None)])
    nodes = [helper.make_node("Constant", [], ["n"],
                              value=numpy_helper.from_array(np.array(3, np.int64))),
             helper.make_node("Constant", [], ["t"],
                              value=numpy_helper.from_array(np.array(True))),
             helper.make_node("Loop", ["n", "t", "x"], ["acc", "scans"], body=body)]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])],
                          [vi("acc", F, [3, 4]), vi("scans", F, [3, 3, 4])])
    return Case(make(g), {"x": x34()}, ["'acc_out'"])


def empty_type(name):
    """ValueInfo with a present but empty TypeProto (`type {}`), as spox and
    torch.onnx write for If-branch outputs (silero-vad)"""
    v = onnx.ValueInfoProto()
    v.name = name
    v.type.SetInParent()
    return v


@case
def if_empty_typeproto_outputs():
    """If branches whose outputs have an empty TypeProto (must be inferred)."""
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                               [empty_type("t")])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [empty_type("e")])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Constant", [], ["zero"],
                              value=numpy_helper.from_array(np.array(0, np.float32))),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])], [empty_type("y")])
    return Case(make(g), {"x": x34()}, ["'t' declares no type", "'y' declares no type"])


@case
def dim_param_question_mark():
    """Paddle's exporter writes dim_param '?' for every unknown dim; they are
    not one shared dim (height 48 and width 192 here), as in onnxruntime."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [vi("x", F, [-1, 3, "?", "?"])], [vi("y", F, [-1, 3, "?", "?"])])
    return Case(make(g), {"x": x34(shape=(2, 3, 5, 7))}, ["dim_param '?'"],
                dynamic={"x": [0, 2, 3]})


@case
def softmax_wide_axis():
    """Softmax over an OCR recognizer's 18,710 classes with the blank class
    far ahead (PP-OCRv6 rec): a float running sum of the many tiny terms
    drifts 1.8e-4 relative; the sum must be kept in higher precision."""
    z = (rng(5).standard_normal((2, 20, 18710)) * 1.5 + 0.6).astype(np.float32)
    z[..., 0] = 17.5
    g = helper.make_graph([helper.make_node("Softmax", ["z"], ["y"], axis=-1)], "g",
                          [vi("z", F, [2, 20, 18710])], [vi("y", F, [2, 20, 18710])])
    return Case(make(g), {"z": z})


@case
def loop_body_vector_iter_cond():
    """A Loop body declaring its iteration number and condition as shape [1]
    instead of scalars, with a [1] trip count (paddle2onnx: SLANet's
    decoder); onnxruntime runs it."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Cast", ["i"], ["fi"], to=F),
         helper.make_node("Add", ["acc_in", "fi"], ["acc_out"]),
         helper.make_node("Mul", ["acc_out", "fi"], ["scan_out"])],
        "body", [vi("i", I64, [1]), vi("cond_in", TensorProto.BOOL, [1]),
                 vi("acc_in", F, [3, 4])],
        [vi("cond_out", TensorProto.BOOL, [1]), vi("acc_out", F, [3, 4]),
         vi("scan_out", F, [3, 4])])
    nodes = [helper.make_node("Constant", [], ["n"],
                              value=numpy_helper.from_array(np.array([4], np.int64))),
             helper.make_node("Constant", [], ["t"],
                              value=numpy_helper.from_array(np.array([True]))),
             helper.make_node("Loop", ["n", "t", "x"], ["acc", "scans"], body=body)]
    g = helper.make_graph(nodes, "g", [vi("x", F, [3, 4])],
                          [vi("acc", F, [3, 4]), vi("scans", F, [4, 3, 4])])
    return Case(make(g), {"x": x34()})


@case
def unused_and_duplicate_initializers():
    """An initializer nobody reads and one defined twice (the last wins, as
    in onnxruntime)."""
    w1 = numpy_helper.from_array(np.full((4,), 1.0, np.float32), "w")
    w2 = numpy_helper.from_array(np.full((4,), 2.0, np.float32), "w")
    unused = numpy_helper.from_array(np.zeros((8, 8), np.float32), "unused")
    g = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g",
                          [vi("x", F, [3, 4])], [vi("y", F, [3, 4])],
                          initializer=[w1, unused, w2])
    return Case(make(g), {"x": x34()}, ["'w' is defined twice", "'unused'"])


@case
def initializer_shadows_input():
    """An initializer that is also a graph input (keep_initializers_as_inputs):
    a default the caller may override; fed nothing, it is the initializer."""
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [vi("x", F, [3, 4]), vi("w", F, [4])], [vi("y", F, [3, 4])],
                          initializer=[w])
    return Case(make(g, ir=4), {"x": x34()}, ["'w'"])


@case
def empty_named_optional_inputs():
    """Optional inputs skipped with "" in the middle and at the end, and an
    unused optional output named ""."""
    nodes = [helper.make_node("Clip", ["x", "", "hi"], ["a"]),
             helper.make_node("Resize", ["a", "", "scales", ""], ["y"], mode="nearest"),
             helper.make_node("Dropout", ["y"], ["z", ""])]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "hi"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    g = helper.make_graph(nodes, "g", [vi("x", F, [1, 1, 3, 4])],
                          [vi("z", F, [1, 1, 6, 8])], initializer=inits)
    return Case(make(g, opset=13), {"x": x34(shape=(1, 1, 3, 4))})


# ------------------------------------------------------------ old opsets

def one_node(op, ins, outs, opset, feeds, inits=(), **attrs):
    """A one-node model at an old opset: inputs typed from feeds, outputs
    untyped (onnxruntime and Kiln both infer them)."""
    node = helper.make_node(op, [i for i in ins], outs, **attrs)
    g = helper.make_graph([node], "g",
                          [vi(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
                           for n, a in feeds.items()],
                          [vi(o, None, None) for o in outs if o],
                          initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    return make(g, opset=opset, ir=5)


def _old(name, op, ins, outs, opset, feeds, inits=(), **attrs):
    def fn():
        return Case(one_node(op, ins, outs, opset, feeds, inits, **attrs), feeds)
    fn.__name__ = name
    CASES[name] = fn


_x4 = {"x": rng(1).standard_normal((2, 3, 6, 8)).astype(np.float32)}
_x2 = {"x": rng(2).standard_normal((4, 6)).astype(np.float32)}
_old("op7_upsample", "Upsample", ["x"], ["y"], 7, _x4, scales=[1.0, 1.0, 2.0, 3.0], mode="nearest")
_old("op9_upsample_linear", "Upsample", ["x", "s"], ["y"], 9, _x4,
     [("s", np.array([1, 1, 2, 2], np.float32))], mode="linear")
_old("op10_resize", "Resize", ["x", "s"], ["y"], 10, _x4,
     [("s", np.array([1, 1, 0.5, 2], np.float32))], mode="nearest")
_old("op9_slice_attrs", "Slice", ["x"], ["y"], 9, _x4, starts=[1, -5], ends=[3, 100], axes=[1, 3])
_old("op10_slice_inputs", "Slice", ["x", "st", "en", "ax", "sp"], ["y"], 10, _x4,
     [("st", np.array([5, 0], np.int64)), ("en", np.array([0, 2], np.int64)),
      ("ax", np.array([3, 1], np.int64)), ("sp", np.array([-2, 1], np.int64))])
_old("op7_pad_attrs", "Pad", ["x"], ["y"], 7, _x4, pads=[0, 0, 1, 2, 0, 0, 2, 1],
     mode="reflect")
_old("op7_dropout_ratio", "Dropout", ["x"], ["y"], 7, _x4, ratio=0.3)
# (Dropout-10's mask in inference is unspecified: onnxruntime writes all
# false, Kiln all true as from opset 12 on; only the output is compared)
_old("op10_dropout", "Dropout", ["x"], ["y"], 10, _x4)
_old("op7_batchnorm_spatial", "BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], 7, _x4,
     [("s", np.array([1, 2, 3], np.float32)), ("b", np.array([0, .5, 1], np.float32)),
      ("m", np.array([.1, .2, .3], np.float32)), ("v", np.array([1, 2, .5], np.float32))],
     epsilon=1e-3)
_old("op9_batchnorm", "BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], 9, _x4,
     [("s", np.array([1, 2, 3], np.float32)), ("b", np.array([0, .5, 1], np.float32)),
      ("m", np.array([.1, .2, .3], np.float32)), ("v", np.array([1, 2, .5], np.float32))])
_old("op7_clip_attrs", "Clip", ["x"], ["y"], 7, _x4, min=-0.5, max=0.25)
_old("op7_unsqueeze", "Unsqueeze", ["x"], ["y"], 7, _x2, axes=[0, 3])
_old("op7_squeeze", "Squeeze", ["x"], ["y"], 7,
     {"x": rng(3).standard_normal((1, 3, 1, 2)).astype(np.float32)}, axes=[0, 2])
_old("op7_reducemean_axes", "ReduceMean", ["x"], ["y"], 7, _x4, axes=[2, 3], keepdims=1)
_old("op7_reducemax", "ReduceMax", ["x"], ["y"], 7, _x4, axes=[1], keepdims=0)
_old("op7_softmax_coerce", "Softmax", ["x"], ["y"], 7, _x4, axis=1)
_old("op7_logsoftmax_coerce", "LogSoftmax", ["x"], ["y"], 7, _x4, axis=2)
_old("op7_topk_attr", "TopK", ["x"], ["y", "i"], 7, _x2, k=3)
_old("op10_topk_input", "TopK", ["x", "k"], ["y", "i"], 10, _x2,
     [("k", np.array([2], np.int64))])
_old("op7_split_attr", "Split", ["x"], ["y", "z"], 7, _x2, axis=1, split=[2, 4])
_old("op7_gemm", "Gemm", ["a", "b", "c"], ["y"], 7,
     {"a": rng(4).standard_normal((3, 5)).astype(np.float32)},
     [("b", rng(5).standard_normal((4, 5)).astype(np.float32)),
      ("c", rng(6).standard_normal((4,)).astype(np.float32))], transB=1, alpha=0.5)
_old("op8_maxpool", "MaxPool", ["x"], ["y", "i"], 8, _x4, kernel_shape=[3, 3], strides=[2, 2])
_old("op10_maxpool_ceil", "MaxPool", ["x"], ["y"], 10, _x4, kernel_shape=[3, 3],
     strides=[2, 2], ceil_mode=1)
_old("op7_avgpool_pad", "AveragePool", ["x"], ["y"], 7, _x4, kernel_shape=[3, 3],
     pads=[1, 1, 1, 1], count_include_pad=1)
_old("op10_avgpool_ceil", "AveragePool", ["x"], ["y"], 10, _x4, kernel_shape=[2, 3],
     strides=[2, 2], ceil_mode=1)
_old("op9_flatten", "Flatten", ["x"], ["y"], 9, _x4, axis=2)
_old("op7_concat", "Concat", ["x", "c"], ["y"], 7, _x2,
     [("c", np.ones((4, 2), np.float32))], axis=1)
_old("op9_cast", "Cast", ["x"], ["y"], 9, _x2, to=TensorProto.INT32)
_old("op8_expand", "Expand", ["x", "s"], ["y"], 8, _x2, [("s", np.array([2, 4, 6], np.int64))])
_old("op8_mean", "Mean", ["x", "c"], ["y"], 8, _x2, [("c", np.ones((6,), np.float32))])
_old("op9_where", "Where", ["c", "x", "z"], ["y"], 9, _x2,
     [("c", np.array([True, False] * 3)), ("z", np.zeros((6,), np.float32))])
_old("op7_tile", "Tile", ["x", "r"], ["y"], 7, _x2, [("r", np.array([2, 1], np.int64))])
_old("op7_reshape", "Reshape", ["x", "s"], ["y"], 7, _x2, [("s", np.array([0, -1, 2], np.int64))])
_old("op7_lrn", "LRN", ["x"], ["y"], 7, _x4, size=3)
_old("op7_instancenorm", "InstanceNormalization", ["x", "s", "b"], ["y"], 7, _x4,
     [("s", np.ones((3,), np.float32)), ("b", np.zeros((3,), np.float32))])
_old("op7_convtranspose", "ConvTranspose", ["x", "w"], ["y"], 7, _x4,
     [("w", rng(7).standard_normal((3, 2, 3, 3)).astype(np.float32))], strides=[2, 2])
_old("op7_prelu", "PRelu", ["x", "s"], ["y"], 7, _x4,
     [("s", np.array([[[.1]], [[.2]], [[.3]]], np.float32))])
_old("op9_constantofshape", "ConstantOfShape", ["s"], ["y"], 9,
     {"s": np.array([2, 3], np.int64)},
     value=numpy_helper.from_array(np.array([1.5], np.float32)))
_old("op7_gru", "GRU", ["x", "w", "r"], ["y", "h"], 7,
     {"x": rng(8).standard_normal((5, 2, 3)).astype(np.float32)},
     [("w", rng(9).standard_normal((1, 12, 3)).astype(np.float32) * .3),
      ("r", rng(10).standard_normal((1, 12, 4)).astype(np.float32) * .3)], hidden_size=4)
_old("op7_lstm", "LSTM", ["x", "w", "r"], ["y", "h"], 7,
     {"x": rng(8).standard_normal((5, 2, 3)).astype(np.float32)},
     [("w", rng(11).standard_normal((1, 16, 3)).astype(np.float32) * .3),
      ("r", rng(12).standard_normal((1, 16, 4)).astype(np.float32) * .3)], hidden_size=4)
_old("op10_quantizelinear", "QuantizeLinear", ["x", "s", "z"], ["y"], 10, _x2,
     [("s", np.array(0.02, np.float32)), ("z", np.array(128, np.uint8))])
# (u8 x u8: onnxruntime's u8 x s8 kernel saturates int16 pair sums on
# CPUs without VNNI, so its results are not a reference there)
_old("op10_matmulinteger", "MatMulInteger", ["a", "b", "za"], ["y"], 10,
     {"a": rng(13).integers(0, 255, (3, 5)).astype(np.uint8)},
     [("b", rng(14).integers(0, 255, (5, 4)).astype(np.uint8)),
      ("za", np.array(7, np.uint8))])
_old("op9_nonzero", "NonZero", ["x"], ["y"], 9,
     {"x": (rng(15).standard_normal((3, 4)) > 0)})
_old("op10_isinf", "IsInf", ["x"], ["y"], 10, _x2)
_old("op9_scatter", "Scatter", ["x", "i", "u"], ["y"], 9, _x2,
     [("i", np.array([[1, 0, 3]], np.int64)), ("u", np.ones((1, 3), np.float32))], axis=0)


# ------------------------------------------------------------ com.microsoft
# One-node models of the contrib operators onnxruntime's quantization tool
# and transformer optimizer write; onnxruntime runs them on CPU and gives
# the expected outputs.

MS = [("com.microsoft", 1)]


def ms_case(name, op, ins, outs, feeds, inits=(), opset=17, out_types=None, lsb=False,
            expect=None, **attrs):
    """ins: names ('' for absent); feeds: graph inputs; inits: (name, array).
    node_opset: the node's own "opset" attribute (opset is the model's)."""
    if "node_opset" in attrs:
        attrs["opset"] = attrs.pop("node_opset")

    def fn():
        node = helper.make_node(op, ins, outs, domain="com.microsoft", **attrs)
        g = helper.make_graph(
            [node], "g",
            [vi(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
             for n, a in feeds.items()],
            [vi(o, (out_types or {}).get(o, F), None) for o in outs if o],
            initializer=[numpy_helper.from_array(a, n) for n, a in inits])
        return Case(make(g, opset=opset, extra_opsets=MS), feeds, lsb=lsb, expect=expect)
    fn.__name__ = name
    CASES[name] = fn


U8 = TensorProto.UINT8
_r = rng(100)


def u8(shape, seed):
    return rng(seed).integers(0, 256, shape).astype(np.uint8)


def f32(shape, seed, s=1.0):
    return (rng(seed).standard_normal(shape) * s).astype(np.float32)


def sc(v):
    return np.array(v, np.float32)


def zp(v):
    return np.array(v, np.uint8)


_qa = {"a": u8((2, 3, 4, 5), 1)}
ms_case("ms_qlinear_add", "QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"],
        _qa, [("as", sc(0.02)), ("az", zp(120)), ("b", u8((4, 5), 2)), ("bs", sc(0.03)),
              ("bz", zp(130)), ("cs", sc(0.05)), ("cz", zp(125))], out_types={"y": U8}, lsb=True)
ms_case("ms_qlinear_mul", "QLinearMul", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"],
        _qa, [("as", sc(0.02)), ("az", zp(120)), ("b", u8((5,), 2)), ("bs", sc(0.03)),
              ("bz", zp(130)), ("cs", sc(0.01)), ("cz", zp(100))], out_types={"y": U8}, lsb=True)
ms_case("ms_qlinear_sigmoid", "QLinearSigmoid", ["a", "as", "az", "ys", "yz"], ["y"], _qa,
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(1 / 256)), ("yz", zp(0))],
        out_types={"y": U8}, lsb=True)
ms_case("ms_qlinear_leakyrelu", "QLinearLeakyRelu", ["a", "as", "az", "ys", "yz"], ["y"], _qa,
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(0.04)), ("yz", zp(20))],
        out_types={"y": U8}, lsb=True, alpha=0.1)
# QLinearSoftmax: the last axis, and a middle axis under Softmax-13 semantics
# and under the older flattened ones (opset attribute 11)
ms_case("ms_qlinear_softmax", "QLinearSoftmax", ["a", "as", "az", "ys", "yz"], ["y"], _qa,
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(1 / 256)), ("yz", zp(0))],
        out_types={"y": U8}, lsb=True, axis=-1, node_opset=13)
ms_case("ms_qlinear_softmax_axis1", "QLinearSoftmax", ["a", "as", "az", "ys", "yz"], ["y"],
        {"a": u8((2, 6, 7), 14)},
        [("as", sc(0.08)), ("az", zp(120)), ("ys", sc(1 / 256)), ("yz", zp(0))],
        out_types={"y": U8}, lsb=True, axis=1, node_opset=13)
ms_case("ms_qlinear_softmax_v11", "QLinearSoftmax", ["a", "as", "az", "ys", "yz"], ["y"],
        {"a": u8((2, 3, 4, 5), 15)},
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(1 / 256)), ("yz", zp(0))],
        out_types={"y": U8}, lsb=True, axis=1, node_opset=11)
ms_case("ms_qlinear_concat", "QLinearConcat",
        ["ys", "yz", "a", "as", "az", "b", "bs", "bz"], ["y"], _qa,
        [("ys", sc(0.05)), ("yz", zp(128)), ("as", sc(0.04)), ("az", zp(120)),
         ("b", u8((2, 2, 4, 5), 3)), ("bs", sc(0.06)), ("bz", zp(110))],
        out_types={"y": U8}, lsb=True, axis=1)
ms_case("ms_qlinear_avgpool", "QLinearAveragePool", ["a", "as", "az", "ys", "yz"], ["y"],
        {"a": u8((1, 3, 8, 8), 4)},
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(0.03)), ("yz", zp(120))],
        out_types={"y": U8}, lsb=True, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
ms_case("ms_qlinear_globalavgpool", "QLinearGlobalAveragePool",
        ["a", "as", "az", "ys", "yz"], ["y"], {"a": u8((2, 3, 7, 7), 5)},
        [("as", sc(0.05)), ("az", zp(128)), ("ys", sc(0.02)), ("yz", zp(128))],
        out_types={"y": U8}, lsb=True, channels_last=0)
ms_case("ms_qgemm_float", "QGemm", ["a", "as", "az", "b", "bs", "bz", "c"], ["y"],
        {"a": u8((3, 8), 6)},
        [("as", sc(0.02)), ("az", zp(128)), ("b", u8((4, 8), 7)), ("bs", sc(0.03)),
         ("bz", zp(128)), ("c", rng(8).integers(-500, 500, (4,)).astype(np.int32))],
        transB=1, alpha=0.5)
ms_case("ms_qgemm_quant", "QGemm", ["a", "as", "az", "b", "bs", "bz", "c", "ys", "yz"], ["y"],
        {"a": u8((3, 8), 9)},
        [("as", sc(0.02)), ("az", zp(128)), ("b", u8((8, 4), 10)), ("bs", sc(0.03)),
         ("bz", zp(128)), ("c", rng(11).integers(-500, 500, (4,)).astype(np.int32)),
         ("ys", sc(0.2)), ("yz", zp(128))], out_types={"y": U8}, lsb=True)
ms_case("ms_dynamic_quantize_matmul", "DynamicQuantizeMatMul", ["a", "b", "bs", "bz", "bias"],
        ["y"], {"a": f32((2, 3, 16), 12)},
        [("b", u8((16, 8), 13)), ("bs", sc(0.01)), ("bz", zp(128)),
         ("bias", f32((8,), 14))])
ms_case("ms_matmul_integer_to_float", "MatMulIntegerToFloat",
        ["a", "b", "as", "bs", "az", "bz", "bias"], ["y"], {"a": u8((2, 5, 16), 15)},
        [("b", u8((16, 8), 16)), ("as", sc(0.02)), ("bs", np.linspace(0.01, 0.02, 8).astype(np.float32)),
         ("az", zp(128)), ("bz", zp(128)), ("bias", f32((8,), 17))])


def _nbits(K=64, N=12, bs=32, seed=18):
    nb = K // bs
    q = rng(seed).integers(0, 16, (N, nb, bs)).astype(np.uint8)
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    scales = (rng(seed + 1).random(N * nb) * 0.1 + 0.01).astype(np.float32)
    zq = rng(seed + 2).integers(0, 16, (N, nb)).astype(np.uint8)
    zpk = (zq[:, 0::2] | (zq[:, 1::2] << 4)).astype(np.uint8).reshape(-1)
    return packed, scales, zpk


_nb = _nbits()
ms_case("ms_matmul_nbits", "MatMulNBits", ["a", "b", "s", "z"], ["y"], {"a": f32((2, 3, 64), 21)},
        [("b", _nb[0]), ("s", _nb[1]), ("z", _nb[2])], K=64, N=12, bits=4, block_size=32)
ms_case("ms_matmul_nbits_nozp", "MatMulNBits", ["a", "b", "s"], ["y"], {"a": f32((3, 64), 22)},
        [("b", _nb[0]), ("s", _nb[1])], K=64, N=12, bits=4, block_size=32)
_h = {"x": f32((2, 5, 16), 30)}
ms_case("ms_skip_layernorm", "SkipLayerNormalization", ["x", "s", "g", "b", "bias"],
        ["y", "", "", "sum"], _h,
        [("s", f32((2, 5, 16), 31)), ("g", f32((16,), 32)), ("b", f32((16,), 33)),
         ("bias", f32((16,), 34))], epsilon=1e-5)
ms_case("ms_skip_simplified_layernorm", "SkipSimplifiedLayerNormalization",
        ["x", "s", "g"], ["y"], _h, [("s", f32((2, 5, 16), 35)), ("g", f32((16,), 36))],
        epsilon=1e-6)
ms_case("ms_embed_layernorm", "EmbedLayerNormalization",
        ["ids", "seg", "we", "pe", "se", "g", "b", "mask"], ["y", "mi"],
        {"ids": rng(40).integers(0, 30, (2, 6)).astype(np.int32),
         "seg": rng(41).integers(0, 2, (2, 6)).astype(np.int32),
         "mask": np.array([[1] * 6, [1] * 4 + [0] * 2], np.int32)},
        [("we", f32((30, 16), 42)), ("pe", f32((10, 16), 43)), ("se", f32((2, 16), 44)),
         ("g", f32((16,), 45)), ("b", f32((16,), 46))],
        out_types={"mi": TensorProto.INT32}, epsilon=1e-12)
ms_case("ms_bias_gelu", "BiasGelu", ["x", "b"], ["y"], _h, [("b", f32((16,), 50))])
ms_case("ms_fast_gelu", "FastGelu", ["x", "b"], ["y"], _h, [("b", f32((16,), 51))])
ms_case("ms_quick_gelu", "QuickGelu", ["x"], ["y"], _h, alpha=1.702)
ms_case("ms_gelu", "Gelu", ["x"], ["y"], _h)
# (onnxruntime has BiasAdd for CUDA only: numpy gives the expected output)
_ba = (f32((16,), 52), f32((2, 5, 16), 53))
ms_case("ms_bias_add", "BiasAdd", ["x", "b", "s"], ["y"], _h, [("b", _ba[0]), ("s", _ba[1])],
        expect=lambda f: [f["x"] + _ba[0] + _ba[1]])
ms_case("ms_fused_matmul", "FusedMatMul", ["x", "w"], ["y"], _h,
        [("w", f32((3, 16), 54))], transB=1, alpha=0.25)
ms_case("ms_attention", "Attention", ["x", "w", "bias", "mask"], ["y"],
        {"x": f32((2, 5, 16), 60), "mask": np.array([[1] * 5, [1] * 3 + [0] * 2], np.int32)},
        [("w", f32((16, 48), 61, 0.3)), ("bias", f32((48,), 62, 0.1))], num_heads=4)
ms_case("ms_attention_maskindex", "Attention", ["x", "w", "bias", "mask"], ["y"],
        {"x": f32((2, 5, 16), 63), "mask": np.array([5, 3], np.int32)},
        [("w", f32((16, 48), 64, 0.3)), ("bias", f32((48,), 65, 0.1))], num_heads=2)
ms_case("ms_attention_causal_past", "Attention", ["x", "w", "bias", "", "past"], ["y", "present"],
        {"x": f32((2, 3, 16), 66), "past": f32((2, 2, 4, 4, 4), 67)},
        [("w", f32((16, 48), 68, 0.3)), ("bias", f32((48,), 69, 0.1))], num_heads=4,
        unidirectional=1)
ms_case("ms_multihead_attention", "MultiHeadAttention", ["q", "k", "v", "", "mask"], ["y"],
        {"q": f32((2, 4, 16), 70), "k": f32((2, 6, 16), 71), "v": f32((2, 6, 16), 72),
         "mask": np.array([[1] * 6, [1] * 5 + [0]], np.int32)}, num_heads=4)
ms_case("ms_rotary_embedding", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
        {"x": f32((2, 3, 16), 80), "pos": np.array([[0, 1, 2], [4, 5, 6]], np.int64)},
        [("cos", f32((8, 4), 81)), ("sin", f32((8, 4), 82))], num_heads=2)


# ------------------------------------------------------------ ai.onnx.ml

def ml_case(name, op, ins, outs, feeds, out_types=None, ml_opset=3, **attrs):
    def fn():
        node = helper.make_node(op, ins, outs, domain="ai.onnx.ml", **attrs)
        g = helper.make_graph(
            [node], "g",
            [vi(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
             for n, a in feeds.items()],
            [vi(o, (out_types or {}).get(o, F), None) for o in outs])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("ai.onnx.ml", ml_opset)])
        m.ir_version = 8
        return Case(m, feeds)
    fn.__name__ = name
    CASES[name] = fn


_m = {"x": f32((5, 4), 90)}
ml_case("ml_scaler", "Scaler", ["x"], ["y"], _m, offset=[0.1, -0.2, 0.3, 0.0],
        scale=[2.0, 0.5, 1.0, 3.0])
ml_case("ml_scaler_int", "Scaler", ["x"], ["y"],
        {"x": rng(91).integers(-9, 9, (3, 2)).astype(np.int64)}, offset=[1.0], scale=[0.5])
for _n in ("MAX", "L1", "L2"):
    ml_case("ml_normalizer_" + _n.lower(), "Normalizer", ["x"], ["y"],
            {"x": np.abs(f32((5, 4), 92)) + 0.1}, norm=_n)
ml_case("ml_linear_regressor", "LinearRegressor", ["x"], ["y"], _m,
        coefficients=list(f32((8,), 93)), intercepts=[0.5, -1.0], targets=2)
ml_case("ml_linear_classifier", "LinearClassifier", ["x"], ["label", "scores"], _m,
        out_types={"label": I64}, coefficients=list(f32((12,), 94)),
        intercepts=[0.1, 0.2, -0.3], classlabels_ints=[3, 5, 7], post_transform="SOFTMAX",
        multi_class=1)
ml_case("ml_binarizer", "Binarizer", ["x"], ["y"], _m, threshold=0.2)


# Tree ensembles (ref_ml.c). One forest of three trees over 4 features,
# written both ways: TreeEnsembleRegressor/Classifier (opset 3, nodes named by
# (tree, node)) and TreeEnsemble (opset 5).
def _forest(seed, modes=("BRANCH_LEQ",), n_trees=3, depth=3, n_feat=4):
    r = rng(seed)
    T = dict(nodes_treeids=[], nodes_nodeids=[], nodes_featureids=[], nodes_modes=[],
             nodes_values=[], nodes_truenodeids=[], nodes_falsenodeids=[],
             nodes_missing_value_tracks_true=[])
    leaves = []
    for t in range(n_trees):
        n_int = 2 ** depth - 1
        for i in range(2 ** (depth + 1) - 1):
            T["nodes_treeids"].append(t)
            T["nodes_nodeids"].append(i)
            if i < n_int:
                T["nodes_featureids"].append(int(r.integers(0, n_feat)))
                T["nodes_modes"].append(modes[int(r.integers(0, len(modes)))])
                T["nodes_values"].append(float(np.round(r.normal(), 1)))
                T["nodes_truenodeids"].append(2 * i + 1)
                T["nodes_falsenodeids"].append(2 * i + 2)
                T["nodes_missing_value_tracks_true"].append(int(r.integers(0, 2)))
            else:
                T["nodes_featureids"].append(0)
                T["nodes_modes"].append("LEAF")
                T["nodes_values"].append(0.0)
                T["nodes_truenodeids"].append(0)
                T["nodes_falsenodeids"].append(0)
                T["nodes_missing_value_tracks_true"].append(0)
                leaves.append((t, i))
    return T, leaves


def _xnan(seed, shape=(7, 4), ints=False):
    # rounded values tie with the splits, which exercises EQ/LEQ/GTE
    x = np.round(f32(shape, seed), 1) if not ints else \
        rng(seed).integers(-2, 3, shape).astype(np.float32)
    x[1, 2] = np.nan
    x[4, 0] = np.nan
    return x


def tree_reg(name, seed, agg="SUM", post="NONE", modes=("BRANCH_LEQ",), n_targets=2,
             base=True):
    T, leaves = _forest(seed, modes)
    r = rng(seed + 1)
    tgt = dict(target_treeids=[], target_nodeids=[], target_ids=[], target_weights=[])
    for t, i in leaves:
        for k in range(n_targets):
            if k == 0 or r.random() < 0.7:
                tgt["target_treeids"].append(t)
                tgt["target_nodeids"].append(i)
                tgt["target_ids"].append(k)
                tgt["target_weights"].append(float(np.round(r.normal(), 2)))
    extra = {"base_values": [0.5, -0.25][:n_targets]} if base else {}
    ml_case(name, "TreeEnsembleRegressor", ["x"], ["y"], {"x": _xnan(seed + 2)},
            n_targets=n_targets, aggregate_function=agg, post_transform=post, **T, **tgt,
            **extra)


_ALL = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
tree_reg("ml_tree_regressor_sum", 100)
tree_reg("ml_tree_regressor_average_modes", 101, agg="AVERAGE", modes=_ALL)
tree_reg("ml_tree_regressor_min", 102, agg="MIN", modes=_ALL, base=False)
tree_reg("ml_tree_regressor_max", 103, agg="MAX", base=False)
tree_reg("ml_tree_regressor_logistic", 104, post="LOGISTIC", n_targets=1)


def tree_cls(name, seed, labels, post="NONE", binary=False, base=None, modes=_ALL,
             x_dtype=np.float32):
    T, leaves = _forest(seed, modes)
    r = rng(seed + 1)
    c = dict(class_treeids=[], class_nodeids=[], class_ids=[], class_weights=[])
    for t, i in leaves:
        for k in ([0] if binary else range(len(labels))):
            c["class_treeids"].append(t)
            c["class_nodeids"].append(i)
            c["class_ids"].append(k)
            c["class_weights"].append(float(np.round(r.random() if post == "NONE"
                                                     else r.normal(), 2)))
    post = "NONE" if post == "NONE_SIGNED" else post
    extra = {"base_values": base} if base else {}
    ml_case(name, "TreeEnsembleClassifier", ["x"], ["label", "scores"],
            {"x": _xnan(seed + 2).astype(x_dtype)}, out_types={"label": I64},
            classlabels_int64s=labels, post_transform=post, **T, **c, **extra)


tree_cls("ml_tree_classifier_3", 110, [2, 5, 9])
tree_cls("ml_tree_classifier_softmax", 111, [0, 1, 2, 3], post="SOFTMAX",
         base=[0.1, 0.2, -0.1, 0.0])
tree_cls("ml_tree_classifier_binary_logistic", 112, [0, 1], post="LOGISTIC", binary=True,
         base=[0.3])
tree_cls("ml_tree_classifier_double", 113, [0, 1, 2], x_dtype=np.float64)
# binary, weights of both signs: scores are [-s, s] and the label s > 0
tree_cls("ml_tree_classifier_binary_margin", 114, [0, 1], post="LOGISTIC", binary=True)
tree_cls("ml_tree_classifier_binary_margin_none", 115, [3, 7], post="NONE_SIGNED", binary=True)


def tree_v5(name, seed, agg=1, post=0, n_targets=2, member=True, unit=False):
    """TreeEnsemble (ai.onnx.ml opset 5): the same kind of forest, leaves in
    their own arrays, BRANCH_MEMBER nodes reading membership_values."""
    T, leaves = _forest(seed, ("BRANCH_LEQ", "BRANCH_GT", "BRANCH_EQ"))
    r = rng(seed + 1)
    ids = list(zip(T["nodes_treeids"], T["nodes_nodeids"]))
    branch = [k for k, m in enumerate(T["nodes_modes"]) if m != "LEAF"]
    bidx = {ids[k]: j for j, k in enumerate(branch)}
    lidx = {tn: j for j, tn in enumerate(leaves)}
    code = {"BRANCH_LEQ": 0, "BRANCH_GT": 3, "BRANCH_EQ": 4}
    modes, splits, tn, tl, fn, fl, mem = [], [], [], [], [], [], []
    for k in branch:
        t = T["nodes_treeids"][k]
        m = code[T["nodes_modes"][k]]
        if member and r.random() < 0.3:
            m = 6
            mem += sorted({float(v) for v in r.integers(-2, 3, size=3)}) + [np.nan]
        modes.append(m)
        splits.append(T["nodes_values"][k] if m != 6 else np.nan)
        for side, ids_, lf in (("true", tn, tl), ("false", fn, fl)):
            child = (t, T["nodes_%snodeids" % side][k])
            leaf = child in lidx
            ids_.append(lidx[child] if leaf else bidx[child])
            lf.append(int(leaf))
    lw = [float(np.round(r.uniform(0.05, 0.95) if unit else r.normal(), 2)) for _ in leaves]
    lt = [int(r.integers(0, n_targets)) for _ in leaves]
    attrs = dict(
        n_targets=n_targets, aggregate_function=agg, post_transform=post,
        nodes_featureids=[T["nodes_featureids"][k] for k in branch],
        nodes_modes=numpy_helper.from_array(np.array(modes, np.uint8), "nodes_modes"),
        nodes_splits=numpy_helper.from_array(np.array(splits, np.float32), "nodes_splits"),
        nodes_truenodeids=tn, nodes_trueleafs=tl, nodes_falsenodeids=fn, nodes_falseleafs=fl,
        nodes_missing_value_tracks_true=[T["nodes_missing_value_tracks_true"][k]
                                         for k in branch],
        leaf_targetids=lt,
        leaf_weights=numpy_helper.from_array(np.array(lw, np.float32), "leaf_weights"),
        tree_roots=[bidx[(t, 0)] for t in range(3)])
    if mem:
        attrs["membership_values"] = numpy_helper.from_array(np.array(mem, np.float32),
                                                             "membership_values")
    ml_case(name, "TreeEnsemble", ["x"], ["y"], {"x": _xnan(seed + 2, (9, 4), member)},
            ml_opset=5, **attrs)


tree_v5("ml_tree_ensemble_v5_sum", 120)
tree_v5("ml_tree_ensemble_v5_average", 121, agg=0, member=False)
# post_transform 3 (SOFTMAX_ZERO): onnxruntime 1.32 reads 1 and 2 of opset 5
# as LOGISTIC and SOFTMAX, the spec (and Kiln) as SOFTMAX and LOGISTIC
tree_v5("ml_tree_ensemble_v5_max_softmax_zero", 122, agg=3, post=3)
tree_v5("ml_tree_ensemble_v5_min", 123, agg=2, member=False)
tree_v5("ml_tree_ensemble_v5_average_probit", 124, agg=0, post=4, n_targets=1, member=False,
        unit=True)

ml_case("ml_one_hot_encoder", "OneHotEncoder", ["x"], ["y"],
        {"x": np.array([[1, 4, 7], [4, 4, 2], [9, 1, 7]], np.int64)},
        cats_int64s=[1, 4, 7, 9], zeros=1)
ml_case("ml_imputer_nan", "Imputer", ["x"], ["y"], {"x": _xnan(130, (5, 4))},
        imputed_value_floats=[1.0, 2.0, 3.0, 4.0], replaced_value_float=float("nan"))
ml_case("ml_imputer_int", "Imputer", ["x"], ["y"],
        {"x": np.array([[0, 3], [5, 0], [0, 0]], np.int64)}, out_types={"y": I64},
        imputed_value_int64s=[7], replaced_value_int64=0)
ml_case("ml_feature_vectorizer", "FeatureVectorizer", ["a", "b"], ["y"],
        {"a": f32((3, 2), 131), "b": f32((3, 1), 132)},
        inputdimensions=[2, 1])
ml_case("ml_label_encoder_int_int", "LabelEncoder", ["x"], ["y"],
        {"x": np.array([[3, 1, 8], [8, 0, 3]], np.int64)}, out_types={"y": I64},
        keys_int64s=[1, 3, 8], values_int64s=[10, 30, 80], default_int64=-7, ml_opset=2)
ml_case("ml_label_encoder_int_float", "LabelEncoder", ["x"], ["y"],
        {"x": np.array([3, 1, 8, 5], np.int64)},
        keys_int64s=[1, 3, 8], values_floats=[0.5, 1.5, 2.5], ml_opset=2)
ml_case("ml_label_encoder_tensor", "LabelEncoder", ["x"], ["y"],
        {"x": np.array([2, 1, 7, 2], np.int64)}, out_types={"y": TensorProto.DOUBLE},
        keys_tensor=numpy_helper.from_array(np.array([1, 2], np.int64), "keys_tensor"),
        values_tensor=numpy_helper.from_array(np.array([-3, 4], np.float64), "values_tensor"),
        default_tensor=numpy_helper.from_array(np.array([9], np.float64), "default_tensor"),
        ml_opset=4)
for _p in ("NONE", "LOGISTIC"):
    ml_case("ml_linear_classifier_binary_" + _p.lower(), "LinearClassifier", ["x"],
            ["label", "scores"], _m, out_types={"label": I64},
            coefficients=list(f32((4,), 95)), intercepts=[0.1], classlabels_ints=[0, 1],
            post_transform=_p)
