"""make_pattern_models.py: writes the small ONNX models test_patterns.c runs
the pattern-recognition passes (layernorm, gelu, attention) on: decomposed
LayerNorm / RMSNorm / GELU / attention in the forms exporters emit, plus
near misses that must stay as they are. Run from the repository root:
    python3 tests/data/patterns/make_pattern_models.py tests/data/patterns
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto, save

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from onnx_builders import c, model, node, vi, weights  # noqa: E402

F = TensorProto.FLOAT
F16 = TensorProto.FLOAT16
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL
rng = np.random.default_rng(11)
w = weights(rng)


def rmean(x, y, axes, opset, p, **kw):
    """ReduceMean over axes: attribute before opset 18, input from 18."""
    if opset < 18:
        return [node("ReduceMean", [x], [y], axes=axes, **kw)]
    return [node("ReduceMean", [x, p + "_axes"], [y], **kw)], c(p + "_axes", axes, np.int64)


def ln_nodes(p, x, out, opset, axes=(-1,), eps=1e-5, square="pow", norm="div",
             gamma=None, beta=None, gamma_first=True, eps_first=False):
    """Decomposed LayerNorm of x into out; returns (nodes, inits)."""
    nodes, inits = [], [c(p + "_eps", eps)]
    if square == "pow":
        inits.append(c(p + "_two", 2.0))
    if norm == "one_div":
        inits.append(c(p + "_one", 1.0))
    for src, dst in ((x, p + "_mean"), (p + "_sq", p + "_var")):
        r = rmean(src, dst, list(axes), opset, p + ("_m" if dst.endswith("mean") else "_v"))
        if isinstance(r, tuple):
            nodes += r[0]
            inits.append(r[1])
        else:
            nodes += r
        if dst.endswith("mean"):
            nodes.append(node("Sub", [x, p + "_mean"], [p + "_d"]))
            nodes.append(node("Pow", [p + "_d", p + "_two"], [p + "_sq"]) if square == "pow"
                         else node("Mul", [p + "_d", p + "_d"], [p + "_sq"]))
    nodes.append(node("Add", [p + "_eps", p + "_var"] if eps_first else [p + "_var", p + "_eps"],
                      [p + "_ve"]))
    nodes.append(node("Sqrt", [p + "_ve"], [p + "_s"]))
    cur = p + "_n" if gamma is not None or beta is not None else out
    if norm == "div":
        nodes.append(node("Div", [p + "_d", p + "_s"], [cur]))
    elif norm == "recip":
        nodes.append(node("Reciprocal", [p + "_s"], [p + "_r"]))
        nodes.append(node("Mul", [p + "_r", p + "_d"], [cur]))
    else:  # 1 / s
        nodes.append(node("Div", [p + "_one", p + "_s"], [p + "_r"]))
        nodes.append(node("Mul", [p + "_d", p + "_r"], [cur]))
    steps = []
    if gamma is not None:
        steps.append(("Mul", gamma))
    if beta is not None:
        steps.append(("Add", beta))
    for i, (op, prm) in enumerate(steps):
        dst = out if i == len(steps) - 1 else p + "_g"
        ins = [prm.name, cur] if gamma_first else [cur, prm.name]
        nodes.append(node(op, ins, [dst]))
        inits.append(prm)
        cur = dst
    return nodes, inits


def layernorm_models(d):
    # 1. PyTorch's opset-14 export: axes attribute, Pow, Div, gamma, beta
    n, i = ln_nodes("a", "x", "y", 14, gamma=w("ga", 16), beta=w("ba", 16), gamma_first=False)
    save(model(n, [vi("x", ["B", "S", 16])], [vi("y", ["B", "S", 16])], i, 14),
         os.path.join(d, "ln_basic.onnx"))
    # 2. opset 18 (axes input) variants: d*d, Reciprocal, commuted operands,
    # two normalized axes, no affine, 1/Sqrt, eps first
    n1, i1 = ln_nodes("a", "x", "y1", 18, axes=(-2, -1), square="mul", norm="recip",
                      gamma=w("ga", 4, 16), beta=w("ba", 1, 16), eps=1e-6)
    n2, i2 = ln_nodes("b", "x", "y2", 18, norm="one_div", eps=1e-12, eps_first=True)
    n3, i3 = ln_nodes("c", "x", "y3", 18, axes=(1, 2), gamma=w("gc", 16))
    save(model(n1 + n2 + n3, [vi("x", ["B", 4, 16])],
               [vi("y1", ["B", 4, 16]), vi("y2", ["B", 4, 16]), vi("y3", ["B", 4, 16])],
               i1 + i2 + i3, 18), os.path.join(d, "ln_variants.onnx"))
    # 3. near misses
    nodes, inits = [], []
    # a: eps added after the Sqrt
    na, ia = ln_nodes("a", "x", "ya", 13)
    for k, nd in enumerate(na):
        if nd.op_type == "Add":
            na[k] = node("Sqrt", ["a_var"], ["a_sqv"])
        if nd.op_type == "Sqrt":
            na[k] = node("Add", ["a_sqv", "a_eps"], ["a_s"])
    # b: variance over axis 1 (not trailing)
    nb, ib = ln_nodes("b", "x", "yb", 13)
    for k, nd in enumerate(nb):
        if nd.output[0] == "b_var":
            nb[k] = node("ReduceMean", ["b_sq"], ["b_var"], axes=[1])
    # c: the variance is also a graph output
    nc, ic = ln_nodes("c", "x", "yc", 13)
    # d: Pow(d, 3)
    nd_, id_ = ln_nodes("d", "x", "yd", 13)
    id_ = [c("d_two", 3.0) if t.name == "d_two" else t for t in id_]
    # e: epsilon from an input
    ne, ie = ln_nodes("e", "x", "ye", 13)
    ne = [node("Add", ["e_var", "eps_in"], ["e_ve"]) if nd.output[0] == "e_ve" else nd
          for nd in ne]
    ie = [t for t in ie if t.name != "e_eps"]
    # f: gamma varying along a non-normalized axis: LN matches without it
    nf, i_f = ln_nodes("f", "x", "yf", 13, gamma=w("gf", 5, 16))
    for part in ((na, ia), (nb, ib), (nc, ic), (nd_, id_), (ne, ie), (nf, i_f)):
        nodes += part[0]
        inits += part[1]
    outs = [vi(o, ["B", 5, 16]) for o in ("ya", "yb", "yc", "yd", "ye", "yf")]
    outs.append(vi("c_var", ["B", 5, 1]))
    save(model(nodes, [vi("x", ["B", 5, 16]), vi("eps_in", [])], outs, inits, 13),
         os.path.join(d, "ln_negative.onnx"))


def ln_tf_models(d):
    # TensorFlow's tf.nn.batch_normalization spelling of LayerNorm:
    #   inv = Reciprocal(Sqrt(var + eps)) * gamma; y = x * inv + (beta - mean * inv)
    nodes, inits = [], [c("eps", 1e-3)]
    for p, affine in (("a", True), ("b", False)):
        nodes += [node("ReduceMean", ["x"], [p + "_mean"], axes=[-1]),
                  node("Sub", ["x", p + "_mean"], [p + "_d"]),
                  node("Mul", [p + "_d", p + "_d"], [p + "_sq"]),
                  node("ReduceMean", [p + "_sq"], [p + "_var"], axes=[-1]),
                  node("Add", [p + "_var", "eps"], [p + "_ve"]),
                  node("Sqrt", [p + "_ve"], [p + "_s"]),
                  node("Reciprocal", [p + "_s"], [p + "_r"])]
        inv = p + "_r"
        if affine:
            nodes.append(node("Mul", [p + "_r", "gamma"], [p + "_inv"]))
            inv = p + "_inv"
        nodes += [node("Mul", ["x", inv], [p + "_m1"]),
                  node("Mul", [p + "_mean", inv], [p + "_m2"])]
        if affine:
            nodes += [node("Sub", ["beta", p + "_m2"], [p + "_t"]),
                      node("Add", [p + "_m1", p + "_t"], ["y" + p])]
        else:
            nodes.append(node("Sub", [p + "_m1", p + "_m2"], ["y" + p]))
    inits += [w("gamma", 16), w("beta", 16)]
    save(model(nodes, [vi("x", ["B", "S", 16])], [vi("ya", ["B", "S", 16]),
                                                   vi("yb", ["B", "S", 16])], inits, 13),
         os.path.join(d, "ln_tf.onnx"))


def rms_models(d):
    # LLaMA / T5: x * Reciprocal(Sqrt(mean(x^2) + eps)) * gamma, and x / Sqrt(...)
    nodes = [
        node("Pow", ["x", "two"], ["a_sq"]),
        node("ReduceMean", ["a_sq"], ["a_var"], axes=[-1]),
        node("Add", ["a_var", "eps"], ["a_ve"]),
        node("Sqrt", ["a_ve"], ["a_s"]),
        node("Reciprocal", ["a_s"], ["a_r"]),
        node("Mul", ["x", "a_r"], ["a_n"]),
        node("Mul", ["ga", "a_n"], ["y1"]),
        node("Mul", ["x", "x"], ["b_sq"]),
        node("ReduceMean", ["b_sq"], ["b_var"], axes=[2]),
        node("Add", ["eps", "b_var"], ["b_ve"]),
        node("Sqrt", ["b_ve"], ["b_s"]),
        node("Div", ["x", "b_s"], ["y2"]),
    ]
    inits = [c("two", 2.0), c("eps", 1e-6), w("ga", 16)]
    save(model(nodes, [vi("x", ["B", "S", 16])], [vi("y1", ["B", "S", 16]),
                                                   vi("y2", ["B", "S", 16])], inits, 13),
         os.path.join(d, "rms.onnx"))
    # half-precision input normalized in float32 between Casts (torch.rsqrt
    # exports as Div(1, Sqrt))
    nodes = [
        node("Cast", ["x"], ["xf"], to=F),
        node("Pow", ["xf", "two"], ["sq"]),
        node("ReduceMean", ["sq"], ["var"], axes=[-1]),
        node("Add", ["var", "eps"], ["ve"]),
        node("Sqrt", ["ve"], ["s"]),
        node("Div", ["one", "s"], ["r"]),
        node("Mul", ["xf", "r"], ["n"]),
        node("Cast", ["n"], ["nh"], to=F16),
        node("Mul", ["g16", "nh"], ["y"]),
    ]
    inits = [c("two", 2.0), c("eps", 1e-5), c("one", 1.0), w("g16", 16, dtype=np.float16)]
    save(model(nodes, [vi("x", ["B", 16], F16)], [vi("y", ["B", 16], F16)], inits, 17),
         os.path.join(d, "rms_cast.onnx"))


def gelu_models(d):
    r2 = math.sqrt(2.0)
    nodes = [
        # a: BERT (torch): Mul(Mul(x, Add(Erf(Div(x, sqrt2)), 1)), 0.5)
        node("Div", ["x", "sqrt2"], ["a_t"]), node("Erf", ["a_t"], ["a_e"]),
        node("Add", ["a_e", "one"], ["a_a"]), node("Mul", ["x", "a_a"], ["a_m"]),
        node("Mul", ["a_m", "half"], ["ya"]),
        # b: Mul(Mul(x, 0.5), a), x * 1/sqrt2, Add(1, erf)
        node("Mul", ["inv_sqrt2", "x"], ["b_t"]), node("Erf", ["b_t"], ["b_e"]),
        node("Add", ["one", "b_e"], ["b_a"]), node("Mul", ["half", "x"], ["b_h"]),
        node("Mul", ["b_a", "b_h"], ["yb"]),
        # c: x * (a * 0.5)
        node("Div", ["x", "sqrt2"], ["c_t"]), node("Erf", ["c_t"], ["c_e"]),
        node("Add", ["c_e", "one"], ["c_a"]), node("Mul", ["c_a", "half"], ["c_h"]),
        node("Mul", ["x", "c_h"], ["yc"]),
        # d: (x * a) / 2
        node("Div", ["x", "sqrt2"], ["d_t"]), node("Erf", ["d_t"], ["d_e"]),
        node("Add", ["d_e", "one"], ["d_a"]), node("Mul", ["d_a", "x"], ["d_m"]),
        node("Div", ["d_m", "two"], ["yd"]),
        # e: GPT-2 tanh form with Pow(x, 3)
        node("Mul", ["x", "half"], ["e_h"]), node("Pow", ["x", "three"], ["e_p"]),
        node("Mul", ["e_p", "kappa"], ["e_k"]), node("Add", ["x", "e_k"], ["e_w"]),
        node("Mul", ["e_w", "beta"], ["e_u"]), node("Tanh", ["e_u"], ["e_t"]),
        node("Add", ["e_t", "one"], ["e_a"]), node("Mul", ["e_h", "e_a"], ["ye"]),
        # f: torch's opset < 20 tanh form: x * (x * x), constants first
        node("Mul", ["x", "x"], ["f_xx"]), node("Mul", ["x", "f_xx"], ["f_c"]),
        node("Mul", ["kappa", "f_c"], ["f_k"]), node("Add", ["x", "f_k"], ["f_w"]),
        node("Mul", ["beta", "f_w"], ["f_u"]), node("Tanh", ["f_u"], ["f_t"]),
        node("Add", ["one", "f_t"], ["f_a"]), node("Mul", ["x", "f_a"], ["f_m"]),
        node("Mul", ["half", "f_m"], ["yf"]),
        # g: a GELU times another tensor: the GELU part still matches
        node("Div", ["x", "sqrt2"], ["g_t"]), node("Erf", ["g_t"], ["g_e"]),
        node("Add", ["g_e", "one"], ["g_a"]), node("Mul", ["x", "half"], ["g_h"]),
        node("Mul", ["g_h", "g_a"], ["g_m"]), node("Mul", ["g_m", "z"], ["yg"]),
    ]
    inits = [c("sqrt2", r2), c("inv_sqrt2", 1 / r2), c("one", 1.0), c("half", 0.5),
             c("two", 2.0), c("three", 3.0), c("kappa", 0.044715),
             c("beta", math.sqrt(2 / math.pi))]
    outs = [vi("y" + k, ["B", 8]) for k in "abcdefg"]
    save(model(nodes, [vi("x", ["B", 8]), vi("z", ["B", 8])], outs, inits, 13),
         os.path.join(d, "gelu.onnx"))
    # near misses
    nodes = [
        # a: 0.6 instead of 0.5
        node("Div", ["x", "sqrt2"], ["a_t"]), node("Erf", ["a_t"], ["a_e"]),
        node("Add", ["a_e", "one"], ["a_a"]), node("Mul", ["x", "a_a"], ["a_m"]),
        node("Mul", ["a_m", "six"], ["ya"]),
        # b: divided by 1.5
        node("Div", ["x", "onefive"], ["b_t"]), node("Erf", ["b_t"], ["b_e"]),
        node("Add", ["b_e", "one"], ["b_a"]), node("Mul", ["x", "b_a"], ["b_m"]),
        node("Mul", ["b_m", "half"], ["yb"]),
        # c: the Erf output is also a graph output
        node("Div", ["x", "sqrt2"], ["c_t"]), node("Erf", ["c_t"], ["c_e"]),
        node("Add", ["c_e", "one"], ["c_a"]), node("Mul", ["x", "c_a"], ["c_m"]),
        node("Mul", ["c_m", "half"], ["yc"]),
        # d: 0.04 instead of 0.044715
        node("Mul", ["x", "half"], ["d_h"]), node("Pow", ["x", "three"], ["d_p"]),
        node("Mul", ["d_p", "kappa_bad"], ["d_k"]), node("Add", ["x", "d_k"], ["d_w"]),
        node("Mul", ["d_w", "beta"], ["d_u"]), node("Tanh", ["d_u"], ["d_t"]),
        node("Add", ["d_t", "one"], ["d_a"]), node("Mul", ["d_h", "d_a"], ["yd"]),
        # e: x^2 instead of x^3
        node("Mul", ["x", "half"], ["e_h"]), node("Pow", ["x", "two"], ["e_p"]),
        node("Mul", ["e_p", "kappa"], ["e_k"]), node("Add", ["x", "e_k"], ["e_w"]),
        node("Mul", ["e_w", "beta"], ["e_u"]), node("Tanh", ["e_u"], ["e_t"]),
        node("Add", ["e_t", "one"], ["e_a"]), node("Mul", ["e_h", "e_a"], ["ye"]),
        # f: the other x: Erf(z / sqrt2) * x * 0.5
        node("Div", ["z", "sqrt2"], ["f_t"]), node("Erf", ["f_t"], ["f_e"]),
        node("Add", ["f_e", "one"], ["f_a"]), node("Mul", ["x", "f_a"], ["f_m"]),
        node("Mul", ["f_m", "half"], ["yf"]),
    ]
    inits = [c("sqrt2", r2), c("one", 1.0), c("half", 0.5), c("six", 0.6), c("onefive", 1.5),
             c("two", 2.0), c("three", 3.0), c("kappa", 0.044715), c("kappa_bad", 0.04),
             c("beta", math.sqrt(2 / math.pi))]
    outs = [vi("y" + k, ["B", 8]) for k in "abcdef"] + [vi("c_e", ["B", 8])]
    save(model(nodes, [vi("x", ["B", 8]), vi("z", ["B", 8])], outs, inits, 13),
         os.path.join(d, "gelu_negative.onnx"))


def heads_split(p, x, H, D, perm=(0, 2, 1, 3)):
    """Q/K/V projection of x and its split into H heads of D."""
    nodes = [node("MatMul", [x, p + "_w"], [p + "_mm"]),
             node("Add", [p + "_mm", p + "_b"], [p + "_3"]),
             node("Reshape", [p + "_3", "split_shape"], [p + "_r"]),
             node("Transpose", [p + "_r"], [p + "_4"], perm=list(perm))]
    return nodes, [w(p + "_w", H * D, H * D, scale=0.3), w(p + "_b", H * D, scale=0.1)]


def attention_models(d):
    H, D = 4, 8
    E = H * D
    # 1. BERT (eager): head splits, K^T at once (0,2,3,1), Div by sqrt(D),
    # additive [B,1,1,S] mask, merge back: the 3-D form
    nodes, inits = [], [c("split_shape", [0, 0, H, D], np.int64),
                        c("merge_shape", [0, 0, E], np.int64), c("sqrt_d", math.sqrt(D))]
    for p, perm in (("q", (0, 2, 1, 3)), ("k", (0, 2, 3, 1)), ("v", (0, 2, 1, 3))):
        n, i = heads_split(p, "x", H, D, perm)
        nodes += n
        inits += i
    nodes += [node("MatMul", ["q_4", "k_4"], ["scores"]),
              node("Div", ["scores", "sqrt_d"], ["scaled"]),
              node("Add", ["scaled", "mask"], ["masked"]),
              node("Softmax", ["masked"], ["probs"], axis=-1),
              node("MatMul", ["probs", "v_4"], ["ctx"]),
              node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
              node("Reshape", ["ctx_t", "merge_shape"], ["y"])]
    save(model(nodes, [vi("x", ["B", "S", E]), vi("mask", ["B", 1, 1, "S"])],
               [vi("y", ["B", "S", E])], inits, 13), os.path.join(d, "attn_bert.onnx"))

    # 2. torch sdpa (GPT-2 / ViT style): 4-D inputs, sqrt(scale) on Q and on
    # K^T, K transposed by (0,1,3,2), causal mask spelled with Trilu, no
    # head merge (4-D form), and a second attention with a NaN cleaner and
    # a boolean mask via Where(cond, 0, -inf) whose length is a different
    # symbol (expanded)
    s4 = math.sqrt(1 / math.sqrt(D))
    nodes = [node("Mul", ["q", "s4"], ["qs"]),
             node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             node("Mul", ["kt", "s4"], ["kts"]),
             node("MatMul", ["qs", "kts"], ["scores"]),
             node("Trilu", ["ones"], ["tri"], upper=0),
             node("Equal", ["tri", "zero"], ["upper"]),
             node("Where", ["upper", "ninf", "zero"], ["causal"]),
             node("Add", ["scores", "causal"], ["masked"]),
             node("Softmax", ["masked"], ["probs"], axis=-1),
             node("MatMul", ["probs", "v"], ["y"]),
             # second one
             node("Transpose", ["k2"], ["kt2"], perm=[0, 1, 3, 2]),
             node("MatMul", ["q2", "kt2"], ["scores2"]),
             node("Mul", ["scores2", "inv_sqrt_d"], ["scaled2"]),
             node("Where", ["cond", "zero", "ninf"], ["bias2"]),
             node("Add", ["bias2", "scaled2"], ["masked2"]),
             node("Softmax", ["masked2"], ["probs2"], axis=3),
             node("IsNaN", ["probs2"], ["nan2"]),
             node("Where", ["nan2", "zero", "probs2"], ["clean2"]),
             node("MatMul", ["clean2", "v2"], ["y2"])]
    inits = [c("s4", s4), c("ones", np.ones((6, 6))), c("zero", [0.0]), c("ninf", [-np.inf]),
             c("inv_sqrt_d", 1 / math.sqrt(D))]
    save(model(nodes, [vi("q", ["B", H, 6, D]), vi("k", ["B", H, 6, D]), vi("v", ["B", H, 6, D]),
                       vi("q2", ["B", H, "S", D]), vi("k2", ["B", H, "S", D]),
                       vi("v2", ["B", H, "S", D]), vi("cond", ["B", 1, 1, "M"], BOOL)],
               [vi("y", ["B", H, 6, D]), vi("y2", ["B", H, "S", D])], inits, 17),
         os.path.join(d, "attn_sdpa.onnx"))

    # 3. K given already transposed (a new Transpose is needed), scale on
    # Q only, GPT-2 eager's Where(cond, scores, finfo.min) mask, and a merge
    # the 3-D form cannot take ([0, -1, E]): 4-D form plus the merge
    nodes = [node("Div", ["q", "sq2"], ["qs"]),
             node("MatMul", ["qs", "kt"], ["scores"]),
             node("Where", ["cond", "scores", "fmin"], ["masked"]),
             node("Softmax", ["masked"], ["probs"], axis=-1),
             node("MatMul", ["probs", "v"], ["ctx"]),
             node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
             node("Reshape", ["ctx_t", "merge_shape"], ["y"])]
    inits = [c("sq2", math.sqrt(D)), c("fmin", np.finfo(np.float32).min),
             c("merge_shape", [0, -1, E], np.int64)]
    save(model(nodes, [vi("q", ["B", H, "S", D]), vi("kt", ["B", H, D, "S"]),
                       vi("v", ["B", H, "S", D]), vi("cond", ["S", "S"], BOOL)],
               [vi("y", ["B", "S", E])], inits, 17), os.path.join(d, "attn_kt.onnx"))

    # 4. GPT-2 (sdpa, dynamic shapes): fused QKV split, the merge target
    # computed from Shape of the transposed context, a one-input Concat (an
    # empty KV cache) before K and V
    nodes = [node("MatMul", ["x", "w_qkv"], ["qkv"]),
             node("Split", ["qkv", "split3"], ["q_3", "k_3", "v_3s"], axis=2),
             node("Mul", ["v_3s", "two"], ["v_3"]),     # a factor on V stays
             node("Mul", ["q_3", "two"], ["q_3s"])]     # one on Q is absorbed
    for p in "qkv":
        nodes += [node("Reshape", [p + ("_3s" if p == "q" else "_3"), "split_shape"],
                       [p + "_r"]),
                  node("Transpose", [p + "_r"], [p + "_t"], perm=[0, 2, 1, 3])]
    nodes += [node("Concat", ["k_t"], ["k_4"], axis=-2),
              node("Concat", ["v_t"], ["v_4"], axis=-2),
              node("Transpose", ["k_4"], ["k_tt"], perm=[0, 1, 3, 2]),
              node("MatMul", ["q_t", "k_tt"], ["scores"]),
              node("Mul", ["scores", "inv_sqrt_d"], ["scaled"]),
              node("Softmax", ["scaled"], ["probs"], axis=-1),
              node("MatMul", ["probs", "v_4"], ["ctx"]),
              node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
              node("Shape", ["ctx_t"], ["sh"]),
              node("Gather", ["sh", "i0"], ["d0"], axis=0),
              node("Gather", ["sh", "i1"], ["d1"], axis=0),
              node("Unsqueeze", ["d0", "ax0"], ["d0u"]),
              node("Unsqueeze", ["d1", "ax0"], ["d1u"]),
              node("Concat", ["d0u", "d1u", "m1"], ["merge_shape"], axis=0),
              node("Reshape", ["ctx_t", "merge_shape"], ["y"])]
    inits = [w("w_qkv", E, 3 * E, scale=0.3), c("split3", [E, E, E], np.int64), c("two", 2.0),
             c("split_shape", [0, 0, H, D], np.int64), c("inv_sqrt_d", 1 / math.sqrt(D)),
             c("i0", 0, np.int64), c("i1", 1, np.int64), c("ax0", [0], np.int64),
             c("m1", [-1], np.int64)]
    save(model(nodes, [vi("x", ["B", "S", E])], [vi("y", ["B", "S", E])], inits, 17),
         os.path.join(d, "attn_gpt2.onnx"))

    # 5. broadcasting: K and V with one head for all (multi-query: the
    # Attention node does the same), and K shared by the batch (it cannot)
    nodes = [node("Transpose", ["k1"], ["kt1"], perm=[0, 1, 3, 2]),
             node("MatMul", ["q", "kt1"], ["s1"]),
             node("Softmax", ["s1"], ["p1"], axis=-1),
             node("MatMul", ["p1", "v1"], ["y1"]),
             node("Transpose", ["kb"], ["ktb"], perm=[0, 1, 3, 2]),
             node("MatMul", ["q", "ktb"], ["s2"]),
             node("Softmax", ["s2"], ["p2"], axis=-1),
             node("MatMul", ["p2", "vb"], ["y2"])]
    save(model(nodes, [vi("q", ["B", H, "S", D]), vi("k1", ["B", 1, "S", D]),
                       vi("v1", ["B", 1, "S", D]), vi("kb", [1, H, "S", D]),
                       vi("vb", ["B", H, "S", D])],
               [vi("y1", ["B", H, "S", D]), vi("y2", ["B", H, "S", D])], [], 17),
         os.path.join(d, "attn_bcast.onnx"))

    # 6. near misses: Softmax over axis 1; scores read twice; non-constant
    # scale; probabilities also a graph output
    nodes, inits = [], [c("sc", 0.3)]
    for p, extra in (("a", None), ("b", None), ("c", None), ("d", None)):
        nodes.append(node("Transpose", ["k"], [p + "_kt"], perm=[0, 1, 3, 2]))
        nodes.append(node("MatMul", ["q", p + "_kt"], [p + "_s"]))
        nodes.append(node("Mul", [p + "_s", "scale_in" if p == "c" else "sc"], [p + "_ss"]))
        nodes.append(node("Softmax", [p + "_ss"], [p + "_p"], axis=1 if p == "a" else -1))
        nodes.append(node("MatMul", [p + "_p", "v"], ["y" + p]))
    nodes.append(node("Relu", ["b_s"], ["yb2"]))
    outs = [vi("y" + p, ["B", H, 6, D]) for p in "abcd"]
    outs += [vi("yb2", ["B", H, 6, 6]), vi("d_p", ["B", H, 6, 6])]
    save(model(nodes, [vi("q", ["B", H, 6, D]), vi("k", ["B", H, 6, D]),
                       vi("v", ["B", H, 6, D]), vi("scale_in", [])], outs, inits, 17),
         os.path.join(d, "attn_negative.onnx"))


    # 7. a key-padding mask [B,1,1,S] widened to [B,1,S,S] before use, as
    # transformers 5 exports it: And with an all-true constant (then
    # Expand), Or with an all-false one; the Attention reads the narrow
    # mask. A constant that is not all true keeps its And.
    nodes, inits = [], [c("sc", 1 / math.sqrt(D)), c("zero", [0.0]), c("ninf", [-np.inf]),
                        c("fmin", [np.finfo(np.float32).min]),
                        c("wshape", [1, 1, 6, 6], np.int64)]
    inits.append(c("all_true", np.ones((1, 1, 6, 1)), bool))
    inits.append(c("all_false", np.zeros((1, 1, 6, 1)), bool))
    inits.append(c("some_true", np.array([1, 1, 0, 1, 1, 1]).reshape(1, 1, 6, 1), bool))
    nodes.append(node("And", ["all_true", "cond"], ["wa"]))
    nodes.append(node("Expand", ["wa", "wshape"], ["wa_x"]))
    nodes.append(node("Or", ["cond", "all_false"], ["wb"]))
    nodes.append(node("And", ["some_true", "cond"], ["wc"]))
    for p, wide in (("a", "wa_x"), ("b", "wb"), ("c", "wc")):
        nodes.append(node("Transpose", ["k"], [p + "_kt"], perm=[0, 1, 3, 2]))
        nodes.append(node("MatMul", ["q", p + "_kt"], [p + "_s"]))
        nodes.append(node("Mul", [p + "_s", "sc"], [p + "_ss"]))
        if p == "b":
            nodes.append(node("Where", [wide, p + "_ss", "fmin"], [p + "_m"]))
        else:
            nodes.append(node("Where", [wide, "zero", "ninf"], [p + "_bias"]))
            nodes.append(node("Add", [p + "_ss", p + "_bias"], [p + "_m"]))
        nodes.append(node("Softmax", [p + "_m"], [p + "_p"], axis=-1))
        nodes.append(node("MatMul", [p + "_p", "v"], ["y" + p]))
    save(model(nodes, [vi("q", ["B", H, 6, D]), vi("k", ["B", H, 6, D]),
                       vi("v", ["B", H, 6, D]), vi("cond", ["B", 1, 1, 6], BOOL)],
               [vi("y" + p, ["B", H, 6, D]) for p in "abc"], inits, 17),
         os.path.join(d, "attn_widen.onnx"))


def qkv_models(d):
    """Inputs of passes/qkv.c: ONNX Attention (opset 23, 3-D Q/K/V with
    q_num_heads/kv_num_heads) fed by MatMul (+ Add) projections of one x.
    Own generator, so the other models' bytes do not depend on these."""
    wq = weights(np.random.default_rng(23))
    E = 32

    def proj(p, x, n_in, n_out, bias, nodes, inits):
        out = p + ("_mm" if not bias else "_3")
        nodes.append(node("MatMul", [x, p + "_w"], [p + "_mm"]))
        inits.append(wq(p + "_w", n_in, n_out, scale=0.3))
        if bias:
            nodes.append(node("Add", [p + "_mm", p + "_b"], [p + "_3"]))
            inits.append(wq(p + "_b", n_out, scale=0.1))
        return out

    # 1. grouped-query widths (4 q heads, 2 kv heads of 8): block a with a
    # bool [B,1,S,S] mask and no K bias; block b causal with a float
    # [B,1,1,S] mask, biases everywhere
    nodes, inits = [], []
    qa = proj("aq", "x", E, 32, True, nodes, inits)
    ka = proj("ak", "x", E, 16, False, nodes, inits)
    va = proj("av", "x", E, 16, True, nodes, inits)
    nodes.append(node("Attention", [qa, ka, va, "bmask"], ["ya"], q_num_heads=4,
                      kv_num_heads=2))
    qb = proj("bq", "x", E, 32, True, nodes, inits)
    kb = proj("bk", "x", E, 16, True, nodes, inits)
    vb = proj("bv", "x", E, 16, True, nodes, inits)
    nodes.append(node("Attention", [qb, kb, vb, "fmask"], ["yb"], q_num_heads=4,
                      kv_num_heads=2, is_causal=1, scale=0.25))
    save(model(nodes, [vi("x", ["B", "S", E]), vi("bmask", ["B", 1, "S", "S"], BOOL),
                       vi("fmask", ["B", 1, 1, "S"])],
               [vi("ya", ["B", "S", 32]), vi("yb", ["B", "S", 32])], inits, 23),
         os.path.join(d, "attn_qkv_gqa.onnx"))

    # 2. near misses: block a's K projection is also a graph output (another
    # reader); block b's K projection reads x2 of another width (K differs);
    # block c's V projection has a Relu (another activation)
    nodes, inits = [], []
    for p in "abc":
        q = proj(p + "q", "x", E, 32, True, nodes, inits)
        k = proj(p + "k", "x2" if p == "b" else "x", 24 if p == "b" else E, 32, True,
                 nodes, inits)
        v = proj(p + "v", "x", E, 32, True, nodes, inits)
        if p == "c":
            nodes.append(node("Relu", [v], ["cv_relu"]))
            v = "cv_relu"
        nodes.append(node("Attention", [q, k, v], ["y" + p], q_num_heads=4, kv_num_heads=4))
    save(model(nodes, [vi("x", ["B", "S", E]), vi("x2", ["B", "S", 24])],
               [vi("y" + p, ["B", "S", 32]) for p in "abc"] + [vi("ak_3", ["B", "S", 32])],
               inits, 23),
         os.path.join(d, "attn_qkv_negative.onnx"))

    # 3. Q, K, V cut by a Split out of one projection (GPT-2's c_attn): a
    # [32, 32, 32], b grouped-query [32, 16, 16] with a bool mask and
    # causal, c a near miss (its K also a graph output)
    nodes, inits = [], []
    for p, widths in (("a", [32, 32, 32]), ("b", [32, 16, 16]), ("c", [32, 32, 32])):
        y3 = proj(p + "p", "x", E, sum(widths), True, nodes, inits)
        inits.append(c(p + "_split", widths, np.int64))
        nodes.append(node("Split", [y3, p + "_split"], [p + "_q", p + "_k", p + "_v"], axis=2))
        hkv = 2 if p == "b" else 4
        ins = [p + "_q", p + "_k", p + "_v"] + (["bmask"] if p == "b" else [])
        nodes.append(node("Attention", ins, ["y" + p], q_num_heads=4, kv_num_heads=hkv,
                          **({"is_causal": 1} if p == "b" else {})))
    save(model(nodes, [vi("x", ["B", "S", E]), vi("bmask", ["B", 1, "S", "S"], BOOL)],
               [vi("y" + p, ["B", "S", 32]) for p in "abc"] + [vi("c_k", ["B", "S", 32])],
               inits, 23),
         os.path.join(d, "attn_qkv_split.onnx"))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(d, exist_ok=True)
    layernorm_models(d)
    ln_tf_models(d)
    rms_models(d)
    gelu_models(d)
    attention_models(d)
    qkv_models(d)


if __name__ == "__main__":
    main()
