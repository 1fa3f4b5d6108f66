"""make_pass_models.py: writes the small ONNX models test_passes.c runs the
optimizer passes on (each is checked for the rewrite and for numeric
equality before/after). Run from the repository root:
    python3 tests/data/passes/make_pass_models.py tests/data/passes
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper, save

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from onnx_builders import c, model, node, vi, weights  # noqa: E402

F = TensorProto.FLOAT
I64 = TensorProto.INT64
rng = np.random.default_rng(7)
w = weights(rng)


def fold():
    # shape arithmetic on a static input, a large constant expression, and
    # a Dropout in training mode that must stay
    nodes = [
        node("Range", ["r0", "r1", "r2"], ["rng"]),    # 90000 elements
        node("Reshape", ["rng", "s300"], ["big"]),
        node("Shape", ["x"], ["sh"]),
        node("Gather", ["sh", "i0"], ["d0"], axis=0),
        node("Unsqueeze", ["d0", "ax0"], ["d0u"]),
        node("Concat", ["d0u", "m1"], ["newshape"], axis=0),
        node("Reshape", ["x", "newshape"], ["xr"]),
        node("Mul", ["big", "small"], ["big2"]),
        node("Add", ["big2", "big"], ["big3"]),
        node("ReduceSum", ["big3", "ax0"], ["bsum"], keepdims=0),
        node("Slice", ["bsum", "s0", "s12", "ax0"], ["bs"]),
        node("Add", ["xr", "bs"], ["y"]),
    ]
    inits = [c("r0", 0.0), c("r1", 90000.0), c("r2", 1.0), c("s300", [300, 300], np.int64),
             c("small", 1e-4), c("i0", 0, np.int64), c("ax0", [0], np.int64),
             c("m1", [-1], np.int64), c("s0", [0], np.int64), c("s12", [12], np.int64)]
    return model(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 12])], inits)


def fold_dropout_train():
    nodes = [node("Dropout", ["k", "r", "t"], ["d"]), node("Add", ["x", "d"], ["y"])]
    inits = [c("k", [1.0, 2.0, 3.0]), c("r", 0.5), c("t", True, np.bool_)]
    return model(nodes, [vi("x", [3])], [vi("y", [3])], inits)


def noop():
    nodes = [
        node("Relu", ["x"], ["r"]),
        node("Identity", ["r"], ["a"]),
        node("Dropout", ["a"], ["b"]),
        node("Cast", ["b"], ["c"], to=F),
        node("Reshape", ["c", "shp"], ["d"]),
        node("Transpose", ["d"], ["e"], perm=[0, 1, 2]),
        node("Pad", ["e", "pads"], ["f"]),
        node("Mul", ["f", "one"], ["g"]),
        node("Add", ["zero", "g"], ["h"]),
        node("Sub", ["h", "zero"], ["i"]),
        node("Div", ["i", "one"], ["j"]),
        node("Identity", ["j"], ["y"]),       # graph output: j takes its name
        node("Identity", ["x"], ["y2"]),      # input -> output: must stay
        node("Expand", ["r", "eshp"], ["y3"]),  # really expands: must stay
        node("Mul", ["r", "onevec"], ["y4"]),   # x * ones[2,3,4] broadcasts: stays
    ]
    inits = [c("shp", [3, 4, 5], np.int64), c("pads", [0] * 6, np.int64),
             c("one", 1.0), c("zero", [0.0, 0.0, 0.0, 0.0, 0.0]),
             c("eshp", [2, 3, 4, 5], np.int64), c("onevec", np.ones((2, 3, 4, 5)))]
    return model(nodes, [vi("x", [3, 4, 5])],
                 [vi("y", [3, 4, 5]), vi("y2", [3, 4, 5]), vi("y3", [2, 3, 4, 5]),
                  vi("y4", [2, 3, 4, 5])], inits)


def dce():
    nodes = [node("Relu", ["x"], ["y"]), node("Sigmoid", ["x"], ["s"]),
             node("Tanh", ["s"], ["t"]), node("Split", ["t"], ["u", "v"], axis=0,
                                               num_outputs=2)]
    return model(nodes, [vi("x", [4, 3])], [vi("y", [4, 3])], [], opset=18)


def bn_params(p, ch):
    return [w(p + "s", ch), w(p + "b", ch),
            w(p + "m", ch),
            numpy_helper.from_array((rng.random(ch) + 0.2).astype(np.float32), p + "v")]


def conv_bn():
    nodes = [
        # plain conv without bias, BN with a large epsilon, then Relu
        node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c1", "p1s", "p1b", "p1m", "p1v"], ["b1"],
             epsilon=1e-2),
        node("Relu", ["b1"], ["r1"]),
        # depthwise conv with bias
        node("Conv", ["r1", "w2", "cb2"], ["c2"], group=4, pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c2", "p2s", "p2b", "p2m", "p2v"], ["y"]),
        # conv output also a graph output: the BN must stay
        node("Conv", ["x", "w3"], ["y2"], strides=[2, 2]),
        node("BatchNormalization", ["y2", "p3s", "p3b", "p3m", "p3v"], ["y3"]),
        # grouped ConvTranspose + BN
        node("ConvTranspose", ["r1", "w4", "cb4"], ["c4"], group=2, strides=[2, 2]),
        node("BatchNormalization", ["c4", "p4s", "p4b", "p4m", "p4v"], ["y4"]),
    ]
    inits = [w("w1", 4, 3, 3, 3), w("w2", 4, 1, 3, 3), w("cb2", 4), w("w3", 5, 3, 1, 1),
             w("w4", 4, 3, 2, 2), w("cb4", 6)]
    inits += bn_params("p1", 4) + bn_params("p2", 4) + bn_params("p3", 5)
    inits += bn_params("p4", 6)
    return model(nodes, [vi("x", [2, 3, 6, 6])],
                 [vi("y", [2, 4, 6, 6]), vi("y2", [2, 5, 3, 3]), vi("y3", [2, 5, 3, 3]),
                  vi("y4", [2, 6, 12, 12])], inits)


def matmul_add():
    nodes = [
        node("MatMul", ["x", "w1"], ["m1"]),
        node("Add", ["m1", "b1"], ["y"]),              # bias [16]
        node("MatMul", ["x", "w2"], ["m2"]),
        node("Add", ["b2", "m2"], ["y2"]),             # bias [1,1,16], reversed
        node("MatMul", ["x", "w3"], ["m3"]),
        node("Add", ["m3", "b3"], ["y3"]),             # [5,1]: not per column
        node("MatMul", ["x", "w4"], ["y4"]),           # output shared:
        node("Add", ["y4", "b1"], ["y5"]),             # Add must stay
        node("Gemm", ["x2", "w5", "b5"], ["y6"], transB=1, alpha=0.5, beta=2.0),
        node("MatMul", ["x", "x3"], ["y7"]),           # weights not constant
    ]
    inits = [w("w1", 8, 16), w("b1", 16), w("w2", 8, 16), c("b2", rng.standard_normal((1, 1, 16))),
             w("w3", 8, 16), c("b3", rng.standard_normal((5, 1))), w("w4", 8, 16),
             w("w5", 6, 8), w("b5", 6)]
    return model(nodes, [vi("x", ["N", 5, 8]), vi("x2", [3, 8]), vi("x3", [8, 2])],
                 [vi("y", ["N", 5, 16]), vi("y2", ["N", 5, 16]), vi("y3", ["N", 5, 16]),
                  vi("y4", ["N", 5, 16]), vi("y5", ["N", 5, 16]), vi("y6", [3, 6]),
                  vi("y7", ["N", 5, 2])], inits)


def bias_act_conv():
    nodes = [
        # ResNet block: conv, per-channel bias Add, residual, Relu
        node("Conv", ["x", "w1", "cb1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Add", ["c1", "bias1"], ["a1"]),          # [4,1,1]
        node("Add", ["x", "a1"], ["a2"]),              # residual (x first)
        node("Relu", ["a2"], ["y"]),
        # bias [1,4,1,1] then Clip with min only
        node("Conv", ["x", "w2"], ["c2"]),
        node("Add", ["bias2", "c2"], ["a3"]),
        node("Clip", ["a3", "cmin"], ["y2"]),
        # SiLU as Mul(Sigmoid(x), x)
        node("Conv", ["x", "w3"], ["c3"], group=4),
        node("Sigmoid", ["c3"], ["s3"]),
        node("Mul", ["s3", "c3"], ["y3"]),
        # a bias that is not per channel: must not fuse
        node("Conv", ["x", "w4"], ["c4"]),
        node("Add", ["c4", "bias4"], ["y4"]),          # [1,1,1,6] varies along W
        # conv output is a graph output: nothing may fuse into it
        node("Conv", ["x", "w5"], ["y5"]),
        node("Relu", ["y5"], ["y6"]),
        # depthwise conv + LeakyRelu, then HardSigmoid stays separate
        node("Conv", ["x", "w6"], ["c6"], group=4, pads=[1, 1, 1, 1]),
        node("LeakyRelu", ["c6"], ["l6"], alpha=0.2),
        node("HardSigmoid", ["l6"], ["y7"]),
        # conv output read by two nodes: the Relu must not fuse
        node("Conv", ["x", "w7"], ["c7"]),
        node("Relu", ["c7"], ["y8"]),
        node("Tanh", ["c7"], ["y9"]),
        # two residual adds in a row: only the first becomes Z
        node("Conv", ["x", "w8"], ["c8"], pads=[1, 1, 1, 1]),
        node("Add", ["c8", "x"], ["a8"]),
        node("Add", ["a8", "x"], ["a9"]),
        node("HardSwish", ["a9"], ["y10"]),
    ]
    inits = [w("w1", 4, 4, 3, 3), w("cb1", 4), c("bias1", rng.standard_normal((4, 1, 1))),
             w("w2", 4, 4, 1, 1), c("bias2", rng.standard_normal((1, 4, 1, 1))),
             c("cmin", 0.1), w("w3", 4, 1, 1, 1), w("w4", 4, 4, 1, 1),
             c("bias4", rng.standard_normal((1, 1, 1, 6))), w("w5", 4, 4, 1, 1),
             w("w6", 4, 1, 3, 3), w("w7", 4, 4, 1, 1), w("w8", 4, 4, 3, 3)]
    s = [2, 4, 5, 6]
    outs = ["y", "y2", "y3", "y4", "y5", "y6", "y7", "y8", "y9", "y10"]
    return model(nodes, [vi("x", s)], [vi(o, s) for o in outs], inits)


def bias_act_gemm():
    nodes = [
        node("MatMul", ["x", "w1"], ["m1"]),
        node("Add", ["m1", "b1"], ["a1"]),
        node("Gelu", ["a1"], ["y"]),
        node("MatMul", ["x", "w2"], ["m2"]),
        node("Add", ["m2", "b2"], ["a2"]),
        node("Gelu", ["a2"], ["y2"], approximate="tanh"),
        node("Gemm", ["x2", "w3", "b3"], ["g3"], beta=0.5),
        node("Add", ["g3", "b4"], ["a3"]),              # second bias
        node("Relu", ["a3"], ["y3"]),
        node("MatMul", ["x", "w4"], ["m4"]),            # no bias, Tanh
        node("Tanh", ["m4"], ["y4"]),
        node("Gemm", ["x2", "w3"], ["g5"]),             # Gemm without C + Sigmoid
        node("Sigmoid", ["g5"], ["y5"]),
    ]
    inits = [w("w1", 8, 16), w("b1", 16), w("w2", 8, 16), w("b2", 16), w("w3", 8, 4),
             c("b3", rng.standard_normal((3, 4))), w("b4", 4), w("w4", 8, 16)]
    return model(nodes, [vi("x", [2, 5, 8]), vi("x2", [3, 8])],
                 [vi("y", [2, 5, 16]), vi("y2", [2, 5, 16]), vi("y3", [3, 4]),
                  vi("y4", [2, 5, 16]), vi("y5", [3, 4])], inits, opset=20)


def bias_act_gemm_res():
    # residual Adds after GEMMs (post-LN transformer: x + (h W + b)); the
    # residual is added before an activation that follows the Add, and an
    # Add after an activation stays
    nodes = [
        node("MatMul", ["x", "w1"], ["m1"]),
        node("Add", ["m1", "b1"], ["a1"]),
        node("Add", ["a1", "r"], ["y"]),                # bias + residual
        node("MatMul", ["x", "w2"], ["m2"]),
        node("Add", ["m2", "b2"], ["a2"]),
        node("Add", ["r", "a2"], ["s2"]),               # residual on the left
        node("Relu", ["s2"], ["y2"]),                   # then act: act(AB+b+R)
        node("MatMul", ["x", "w3"], ["m3"]),
        node("Add", ["m3", "b3"], ["a3"]),
        node("Gelu", ["a3"], ["g3"]),
        node("Add", ["g3", "r"], ["y3"]),               # after act: stays
        node("MatMul", ["x", "w4"], ["m4"]),            # no bias
        node("Add", ["m4", "r"], ["y4"]),
        node("MatMul", ["x", "w5"], ["m5"]),
        node("Add", ["m5", "rb"], ["y5"]),              # broadcast: stays
        node("Gemm", ["x2", "w6", "c6"], ["g6"], transB=1, alpha=0.5, beta=2.0),
        node("Add", ["g6", "r2"], ["y6"]),              # Gemm, full C, residual
        node("MatMul", ["x", "w7"], ["m7"]),
        node("Add", ["m7", "r"], ["y7"]),               # m7 shared: stays
        node("Sigmoid", ["m7"], ["y8"]),
    ]
    inits = [w("w1", 8, 16), w("b1", 16), w("w2", 8, 16), w("b2", 16), w("w3", 8, 16),
             w("b3", 16), w("w4", 8, 16), w("w5", 8, 16), w("w6", 5, 8), w("c6", 3, 5),
             w("w7", 8, 16)]
    return model(nodes, [vi("x", ["batch", 5, 8]), vi("r", ["batch", 5, 16]),
                         vi("rb", [16]), vi("x2", [3, 8]), vi("r2", [3, 5])],
                 [vi("y", ["batch", 5, 16]), vi("y2", ["batch", 5, 16]),
                  vi("y3", ["batch", 5, 16]), vi("y4", ["batch", 5, 16]),
                  vi("y5", ["batch", 5, 16]), vi("y6", [3, 5]), vi("y7", ["batch", 5, 16]),
                  vi("y8", ["batch", 5, 16])], inits, opset=20)


def transpose():
    nodes = [
        node("Relu", ["x"], ["r"]),
        node("Transpose", ["r"], ["t1"], perm=[0, 2, 1, 3]),
        node("Transpose", ["t1"], ["t2"], perm=[0, 2, 1, 3]),   # cancels
        node("Sigmoid", ["t2"], ["y"]),
        node("Transpose", ["r"], ["t3"], perm=[1, 0, 2, 3]),
        node("Transpose", ["t3"], ["y2"], perm=[0, 1, 3, 2]),   # merges
        node("Reshape", ["r", "s1"], ["r1"]),
        node("Reshape", ["r1", "s2"], ["y3"]),                 # merges
        node("Reshape", ["r", "s3"], ["r3"]),
        node("Reshape", ["r3", "s4"], ["r4"]),                 # back to x's shape
        node("Tanh", ["r4"], ["y4"]),
        node("Transpose", ["r"], ["t5"], perm=[2, 0, 1, 3]),   # shared: stays
        node("Transpose", ["t5"], ["y5"], perm=[1, 2, 0, 3]),
        node("Neg", ["t5"], ["y6"]),
        node("Unsqueeze", ["r", "ax"], ["u7"]),
        node("Transpose", ["u7"], ["t7"], perm=[1, 0, 2, 3, 4]),  # moves a 1
        node("Flatten", ["t7"], ["y7"], axis=2),
    ]
    inits = [c("s1", [2, 12, 5], np.int64), c("s2", [4, 30], np.int64),
             c("s3", [6, 20], np.int64), c("s4", [2, 3, 4, 5], np.int64),
             c("ax", [0], np.int64)]
    return model(nodes, [vi("x", [2, 3, 4, 5])],
                 [vi("y", [2, 3, 4, 5]), vi("y2", [3, 2, 5, 4]), vi("y3", [4, 30]),
                  vi("y4", [2, 3, 4, 5]), vi("y5", [2, 3, 4, 5]), vi("y6", [4, 2, 3, 5]),
                  vi("y7", [2, 60])], inits)


def eltwise():
    nodes = [
        # x * 0.5 + bias[5] -> Tanh -> * x -> Clip(min only): one chain
        node("Mul", ["x", "half"], ["e1"]),
        node("Add", ["e1", "bias"], ["e2"]),
        node("Tanh", ["e2"], ["e3"]),
        node("Mul", ["e3", "x"], ["e4"]),
        node("Clip", ["e4", "cmin"], ["y"]),
        # shared intermediate: s is read twice, so it ends its own chain
        node("Sub", ["x", "z"], ["d"]),
        node("Abs", ["d"], ["s"]),
        node("Sqrt", ["s"], ["y2"]),
        node("Exp", ["s"], ["e5"]),
        node("Neg", ["e5"], ["y3"]),
        # a graph output in the middle of a chain
        node("Sigmoid", ["x"], ["y4"]),
        node("Mul", ["y4", "two"], ["e6"]),
        node("LeakyRelu", ["e6"], ["y5"], alpha=0.3),
        # rank-raising scalar constant stays an input; Pow; Max; Div by input
        node("Div", ["one111", "x"], ["e7"]),
        node("Pow", ["e7", "two"], ["e8"]),
        node("Max", ["e8", "z"], ["e9"]),
        node("HardSigmoid", ["e9"], ["y6"], alpha=0.3, beta=0.4),
        # Mul(t, t) of a chain value, then Gelu
        node("Erf", ["x"], ["e10"]),
        node("Mul", ["e10", "e10"], ["e11"]),
        node("Gelu", ["e11"], ["y7"], approximate="tanh"),
    ]
    inits = [c("half", 0.5), c("bias", rng.standard_normal(5)), c("cmin", -0.25),
             c("two", 2.0), c("one111", np.ones((1, 1, 1, 1)))]
    s = [3, 4, 5]
    return model(nodes, [vi("x", s), vi("z", [4, 1])],
                 [vi("y", s), vi("y2", s), vi("y3", s), vi("y4", s), vi("y5", s),
                  vi("y6", [1, 3, 4, 5]), vi("y7", s)], inits, opset=20)


def gemm_trans():
    # MatMul(Transpose(A), Transpose(B)) * alpha + C: rewritten by hand in the
    # test into one FusedGemm with transA/transB, N-D batch broadcasting
    nodes = [
        node("Transpose", ["a"], ["at"], perm=[0, 1, 3, 2]),
        node("Transpose", ["b"], ["bt"], perm=[0, 2, 1]),
        node("MatMul", ["at", "bt"], ["m"]),
        node("Mul", ["m", "alpha"], ["ma"]),
        node("Mul", ["cc", "beta"], ["cb"]),
        node("Add", ["ma", "cb"], ["s"]),
        node("Sigmoid", ["s"], ["sg"]),
        node("Mul", ["s", "sg"], ["y"]),
    ]
    inits = [c("alpha", 0.75), c("beta", 1.5)]
    return model(nodes, [vi("a", [2, 3, 6, 4]), vi("b", [3, 5, 6]), vi("cc", [3, 1, 5])],
                 [vi("y", [2, 3, 4, 5])], inits)


def resnet_block():
    # conv-bn-relu x2 + projection shortcut with its own BN: the full pipeline
    # must end with three FusedConv nodes and nothing else
    nodes = [
        node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c1", "p1s", "p1b", "p1m", "p1v"], ["b1"]),
        node("Relu", ["b1"], ["r1"]),
        node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c2", "p2s", "p2b", "p2m", "p2v"], ["b2"]),
        node("Conv", ["x", "w3"], ["c3"]),
        node("BatchNormalization", ["c3", "p3s", "p3b", "p3m", "p3v"], ["b3"]),
        node("Add", ["b2", "b3"], ["a"]),
        node("Relu", ["a"], ["y"]),
    ]
    inits = [w("w1", 8, 4, 3, 3), w("w2", 8, 8, 3, 3), w("w3", 8, 4, 1, 1)]
    inits += bn_params("p1", 8) + bn_params("p2", 8) + bn_params("p3", 8)
    return model(nodes, [vi("x", ["N", 4, 6, 6])], [vi("y", ["N", 8, 6, 6])], inits)


def resnet_nhwc():
    # A small ResNet: an RGB stem (C = 3: the channels-last pass pads it),
    # max pool, bottleneck blocks with projection shortcuts (stride 1 and 2),
    # a conv with 12 output channels (stays NCHW at align 8), a mid-chain
    # value that is also a graph output, an AveragePool + Clip side branch,
    # and GlobalAveragePool -> Flatten -> Gemm. test_layout.c runs the
    # channels-last pass on it. Own random source: the other models' bytes
    # do not change when this one is added.
    r = np.random.default_rng(12)
    wr = weights(r)
    nodes = [
        node("Conv", ["x", "w0"], ["c0"], pads=[3, 3, 3, 3], strides=[2, 2]),
        node("BatchNormalization", ["c0", "q0s", "q0b", "q0m", "q0v"], ["b0"]),
        node("Relu", ["b0"], ["r0"]),
        node("MaxPool", ["r0"], ["p0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        # block 1 (stride 1, projection)
        node("Conv", ["p0", "w1a"], ["c1a"]),
        node("Relu", ["c1a"], ["r1a"]),
        node("Conv", ["r1a", "w1b", "b1b"], ["c1b"], pads=[1, 1, 1, 1]),
        node("Relu", ["c1b"], ["r1b"]),
        node("Conv", ["r1b", "w1c", "b1c"], ["c1c"]),
        node("Conv", ["p0", "w1s", "b1s"], ["c1s"]),
        node("Add", ["c1c", "c1s"], ["a1"]),
        node("Relu", ["a1"], ["mid"]),
        # block 2 (stride 2, projection)
        node("Conv", ["mid", "w2a", "b2a"], ["c2a"], pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Relu", ["c2a"], ["r2a"]),
        node("Conv", ["r2a", "w2b", "b2b"], ["c2b"]),
        node("Conv", ["mid", "w2s", "b2s"], ["c2s"], strides=[2, 2]),
        node("Add", ["c2s", "c2b"], ["a2"]),
        node("Relu", ["a2"], ["r2"]),
        # identity block
        node("Conv", ["r2", "w3a", "b3a"], ["c3a"], pads=[1, 1, 1, 1]),
        node("Relu", ["c3a"], ["r3a"]),
        node("Conv", ["r3a", "w3b", "b3b"], ["c3b"]),
        node("Add", ["c3b", "r2"], ["a3"]),
        node("Relu", ["a3"], ["r3"]),
        # side branches
        node("Conv", ["r3", "w4"], ["odd"]),
        node("AveragePool", ["r3"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Clip", ["ap", "lo", "hi"], ["z"]),
        node("GlobalAveragePool", ["r3"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [wr("w0", 8, 3, 7, 7), wr("w1a", 8, 8, 1, 1), wr("w1b", 8, 8, 3, 3), wr("b1b", 8),
             wr("w1c", 16, 8, 1, 1), wr("b1c", 16), wr("w1s", 16, 8, 1, 1), wr("b1s", 16),
             wr("w2a", 16, 16, 3, 3), wr("b2a", 16), wr("w2b", 24, 16, 1, 1), wr("b2b", 24),
             wr("w2s", 24, 16, 1, 1), wr("b2s", 24), wr("w3a", 24, 24, 3, 3), wr("b3a", 24),
             wr("w3b", 24, 24, 1, 1), wr("b3b", 24),
             wr("w4", 12, 24, 1, 1), wr("wf", 5, 24), wr("bf", 5),
             c("lo", 0.0), c("hi", 0.5)]
    inits += [numpy_helper.from_array(a, n) for n, a in [
        ("q0s", (r.random(8) + 0.5).astype(np.float32)), ("q0b", r.standard_normal(8).astype(np.float32)),
        ("q0m", r.standard_normal(8).astype(np.float32)), ("q0v", (r.random(8) + 0.5).astype(np.float32))]]
    return model(nodes, [vi("x", ["N", 3, 19, 17])],
                 [vi("y", ["N", 5]), vi("mid", ["N", 16, 5, 5]), vi("odd", ["N", 12, 3, 3]),
                  vi("z", ["N", 24, 1, 1])], inits)


def half_and_old():
    # float16 graph (fused kernels widen and round once), and Clip-6 style
    # attributes in an opset-10 model
    H = TensorProto.FLOAT16

    def h(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float16), name)

    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Add", ["c1", "cb"], ["a1"]),
        node("Relu", ["a1"], ["y"]),
        node("MatMul", ["x2", "w2"], ["m2"]),
        node("Add", ["m2", "b2"], ["a2"]),
        node("Tanh", ["a2"], ["y2"]),
        node("Mul", ["x2", "hh"], ["e1"]),
        node("Sigmoid", ["e1"], ["e2"]),
        node("Sub", ["e2", "x2"], ["y3"]),
    ]
    inits = [h("w1", 4, 4, 3, 3), h("b1", 4), h("cb", 4, 1, 1), h("w2", 6, 5), h("b2", 5),
             numpy_helper.from_array(np.array(0.5, np.float16), "hh")]
    m16 = model(nodes, [vi("x", [1, 4, 5, 5], H), vi("x2", [3, 6], H)],
                [vi("y", [1, 4, 5, 5], H), vi("y2", [3, 5], H), vi("y3", [3, 6], H)],
                inits)
    old = [
        node("Conv", ["x", "w1"], ["c1"]),
        node("Clip", ["c1"], ["y"], min=-0.5, max=0.75),
        node("Mul", ["x", "two"], ["e1"]),
        node("Clip", ["e1"], ["e2"], max=1.0),
        node("Exp", ["e2"], ["y2"]),
    ]
    m10 = model(old, [vi("x", [1, 4, 5, 5])], [vi("y", [1, 4, 5, 5]), vi("y2", [1, 4, 5, 5])],
                [w("w1", 4, 4, 1, 1), c("two", 2.0)], opset=10)
    return m16, m10


def qdq_half():
    # Relu -> QuantizeLinear -> DequantizeLinear: under --fp16 the Relu runs
    # in float16 and the QuantizeLinear reads its output without a Cast
    nodes = [node("Relu", ["x"], ["r"]),
             node("QuantizeLinear", ["r", "s", "z"], ["q"]),
             node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    inits = [c("s", 0.02), c("z", 0, np.uint8)]
    return model(nodes, [vi("x", [2, 4, 3, 3])], [vi("y", [2, 4, 3, 3])], inits)


def qdq_half2():
    # DequantizeLinear read by a float16 Add: under --fp16 it writes float16
    # itself (no Cast between them)
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             node("Add", ["d", "b"], ["y"])]
    inits = [c("s", 0.02), c("z", 0, np.int8), c("b", [0.5, -0.25, 1.0])]
    return model(nodes, [vi("x", [2, 4, 3])], [vi("y", [2, 4, 3])], inits)


def gather_half():
    # Gathers from a float32 embedding table: under --fp16 the one read by a
    # float16 Add gathers from a float16 copy of the table (no Cast after
    # it); the one that is a graph output and the one read by Exp (float32)
    # keep the float32 table; a Shape of the float16 sum reads it without a
    # Cast back to float32
    nodes = [node("Gather", ["table", "ids"], ["e"], axis=0),
             node("Add", ["e", "x"], ["s"]),
             node("Relu", ["s"], ["y"]),
             node("Shape", ["s"], ["shp"]),
             node("Gather", ["table", "ids"], ["y2"], axis=0),
             node("Gather", ["table", "ids"], ["e3"], axis=0),
             node("Exp", ["e3"], ["y3"])]
    table = rng.standard_normal((10, 16)).astype(np.float32)
    inits = [numpy_helper.from_array(table, "table")]
    return model(nodes, [vi("ids", [2, 5], I64), vi("x", [2, 5, 16])],
                 [vi("y", [2, 5, 16]), vi("y2", [2, 5, 16]), vi("y3", [2, 5, 16]),
                  vi("shp", [3], I64)], inits)


def fold_repeat():
    # constants of copies of one row: the one read by an Add that broadcasts
    # x over it keeps one row (the fold pass); the one whose size the Mul's
    # output needs ([4,32,64] times a [64] input), the one a MatMul reads,
    # and the one repeated along the last dim only keep their shapes
    row = rng.standard_normal((1, 1, 64)).astype(np.float32)
    rep = np.broadcast_to(row, (4, 32, 64)).copy()
    col = np.broadcast_to(rng.standard_normal((4, 32, 1)).astype(np.float32), (4, 32, 64)).copy()
    sq = np.broadcast_to(rng.standard_normal((1, 64)).astype(np.float32), (64, 64)).copy()
    nodes = [node("Add", ["x", "rep"], ["a"]),
             node("Mul", ["rep2", "z"], ["m"]),
             node("Add", ["a", "m"], ["a2"]),
             node("Add", ["a2", "col"], ["a3"]),
             node("MatMul", ["a3", "sq"], ["mm"]),
             node("Add", ["mm", "x"], ["y"])]
    inits = [numpy_helper.from_array(rep, "rep"), numpy_helper.from_array(rep.copy(), "rep2"),
             numpy_helper.from_array(col, "col"), numpy_helper.from_array(sq, "sq")]
    return model(nodes, [vi("x", [4, 32, 64]), vi("z", [64])], [vi("y", [4, 32, 64])], inits)


def fold_chain():
    # torch's F.pad with pads computed from the input's shape, as
    # torchvision's Swin writes it (shape -> Mod arithmetic -> Concat ->
    # ConstantOfShape fill -> Reshape [-1, 2] -> Slice step -1 -> Transpose
    # -> Reshape [-1]), twice in a row: the second round's Shape reads the
    # first Pad's output, whose type becomes static only after the fold
    # resolved the first round's pads, so one sweep is not enough
    nodes, inits, k = [], [c("win", 4, np.int64), c("ax0", [0], np.int64),
                          c("z1", [0], np.int64), c("eight", [8], np.int64),
                          c("i0", [0], np.int64), c("pair", [-1, 2], np.int64),
                          c("st", [-1], np.int64), c("en", [-(2 ** 63) + 1], np.int64),
                          c("stp", [-1], np.int64), c("flat", [-1], np.int64)], "x"
    for r in range(2):
        p = "r%d_" % r
        nodes += [
            node("Shape", [k], [p + "s"]),
            node("Gather", [p + "s", "two"], [p + "w"], axis=0),
            node("Mod", [p + "w", "win"], [p + "m"]),
            node("Sub", ["win", p + "m"], [p + "d"]),
            node("Mod", [p + "d", "win"], [p + "pw"]),
            node("Unsqueeze", [p + "pw", "ax0"], [p + "pwu"]),
            node("Concat", ["z1", "z1", "z1", p + "pwu"], [p + "pl"], axis=0),
            node("Cast", [p + "pl"], [p + "plc"], to=I64),
            node("Shape", [p + "pl"], [p + "pls"]),
            node("Gather", [p + "pls", "i0"], [p + "pln"], axis=0),
            node("Sub", ["eight", p + "pln"], [p + "rest"]),
            node("ConstantOfShape", [p + "rest"], [p + "fill"],
                 value=numpy_helper.from_array(np.array([0], np.int64))),
            node("Concat", [p + "plc", p + "fill"], [p + "all"], axis=0),
            node("Reshape", [p + "all", "pair"], [p + "pr"]),
            node("Slice", [p + "pr", "st", "en", "ax0", "stp"], [p + "rev"]),
            node("Transpose", [p + "rev"], [p + "tr"], perm=[1, 0]),
            node("Reshape", [p + "tr", "flat"], [p + "pads"]),
            node("Pad", [k, p + "pads"], [p + "out"]),
        ]
        k = p + "out"
    inits.append(c("two", 2, np.int64))
    nodes += [node("Shape", [k], ["s_end"]),
              node("Reshape", [k, "s_end"], ["y"])]
    return model(nodes, [vi("x", [1, 5, 6, 3])], [vi("y", [1, 5, 8, 3])], inits)


def quant_mm2():
    # for test_quant.c: one MatMul with a constant weight, one of two
    # activations (quant_opts.weights_only keeps the second in float)
    nodes = [node("MatMul", ["x", "w"], ["a"]), node("MatMul", ["a", "z"], ["y"])]
    return model(nodes, [vi("x", [2, 4, 8]), vi("z", [2, 8, 4])], [vi("y", [2, 4, 4])],
                 [w("w", 8, 8)])


def qdyn():
    # for test_passes.c: quantize_dynamic's tail after MatMulInteger
    # (Cast -> Mul by x_scale * w_scale -> Add bias) folded into
    # MatMulIntegerToFloat; y3 (scale of the full shape) and y4 (Cast read
    # twice) stay as they are
    r = np.random.default_rng(11)
    wq = numpy_helper.from_array(r.integers(-127, 128, (16, 24)).astype(np.int8), "wq")
    wq2 = numpy_helper.from_array(r.integers(0, 256, (16, 8)).astype(np.uint8), "wq2")
    nodes = [node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             node("Mul", ["xs", "ws"], ["s"]),
             node("MatMulInteger", ["xq", "wq"], ["acc"]),
             node("Cast", ["acc"], ["accf"], to=F),
             node("Mul", ["accf", "s"], ["m"]),
             node("Add", ["bias", "m"], ["y"]),
             node("MatMulInteger", ["xq", "wq2", "xz", "wz2"], ["acc2"]),
             node("Cast", ["acc2"], ["acc2f"], to=F),
             node("Mul", ["xs", "ws2"], ["s2"]),
             node("Mul", ["s2", "acc2f"], ["y2"]),
             node("MatMulInteger", ["xq", "wq"], ["acc3"]),
             node("Cast", ["acc3"], ["acc3f"], to=F),
             node("Mul", ["acc3f", "full"], ["y3"]),
             node("MatMulInteger", ["xq", "wq"], ["acc4"]),
             node("Cast", ["acc4"], ["acc4f"], to=F),
             node("Mul", ["acc4f", "s"], ["y4"]),
             node("Relu", ["acc4f"], ["y5"]),
             # ConvInteger: a [1,4,1,1] bias folds (y6); a [4] one adds along
             # W (the output is 4 wide), not per channel, and stays (y7)
             node("DynamicQuantizeLinear", ["xc"], ["xcq", "xcs", "xcz"]),
             node("Mul", ["xcs", "ws"], ["sc"]),
             node("ConvInteger", ["xcq", "wc", "xcz"], ["cacc"], pads=[1, 1, 1, 1]),
             node("Cast", ["cacc"], ["caccf"], to=F),
             node("Mul", ["caccf", "sc"], ["cm"]),
             node("Add", ["cm", "cbias"], ["y6"]),
             node("ConvInteger", ["xcq", "wc", "xcz"], ["cacc2"], pads=[1, 1, 1, 1]),
             node("Cast", ["cacc2"], ["cacc2f"], to=F),
             node("Mul", ["cacc2f", "sc"], ["cm2"]),
             node("Add", ["cm2", "wbias"], ["y7"])]
    return model(nodes, [vi("x", [2, 5, 16]), vi("full", [2, 5, 24]), vi("xc", [2, 3, 5, 4])],
                 [vi("y", [2, 5, 24]), vi("y2", [2, 5, 8]), vi("y3", [2, 5, 24]),
                  vi("y4", [2, 5, 24]), vi("y5", [2, 5, 24]), vi("y6", [2, 4, 5, 4]),
                  vi("y7", [2, 4, 5, 4])],
                 [wq, wq2, c("ws", np.array(0.013, np.float32)),
                  c("ws2", (r.random(8) * 0.02 + 0.001).astype(np.float32)),
                  c("wz2", np.array(131, np.uint8), np.uint8),
                  c("bias", r.standard_normal(24).astype(np.float32)),
                  numpy_helper.from_array(r.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8), "wc"),
                  c("cbias", r.standard_normal((1, 4, 1, 1)).astype(np.float32)),
                  c("wbias", r.standard_normal(4).astype(np.float32))])


def qdq_epi():
    # for test_passes.c: DQ -> MatMul / Gemm with no Q after it becomes
    # QFusedGemm (qdq.c); then (qepi.c) a BERT FFN: bias Add, GELU (erf
    # pattern, gelu.c) and the next layer's Q fold into the first; bias Add
    # and the residual Add of DQ(x_q) (read as int8) into the second; a Gemm
    # (transB, per-tensor weight scale) with its bias and Relu; a MatMul
    # whose output is also a graph output keeps its readers
    r = np.random.default_rng(13)
    K, H, N = 16, 32, 16
    i8 = TensorProto.INT8

    def q8(name, *shape):
        return numpy_helper.from_array(r.integers(-127, 128, shape).astype(np.int8), name)

    def vec(name, n, lo, hi):
        return c(name, (lo + (hi - lo) * r.random(n)).astype(np.float32))
    nodes = [node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             node("DequantizeLinear", ["w1q", "s1"], ["w1d"], axis=1),
             node("MatMul", ["xd", "w1d"], ["m1"]),
             node("Add", ["m1", "b1"], ["a1"]),
             node("Div", ["a1", "sqrt2"], ["g_div"]),
             node("Erf", ["g_div"], ["g_erf"]),
             node("Add", ["g_erf", "one"], ["g_add"]),
             node("Mul", ["a1", "g_add"], ["g_mul"]),
             node("Mul", ["g_mul", "half"], ["g1"]),
             node("QuantizeLinear", ["g1", "sg", "zg"], ["gq"]),
             node("DequantizeLinear", ["gq", "sg", "zg"], ["gd"]),
             node("DequantizeLinear", ["w2q", "s2"], ["w2d"], axis=1),
             node("MatMul", ["gd", "w2d"], ["m2"]),
             node("Add", ["b2", "m2"], ["a2"]),
             node("Add", ["a2", "xd"], ["y"]),
             node("QuantizeLinear", ["x2", "sx", "zx"], ["x2q"]),
             node("DequantizeLinear", ["x2q", "sx", "zx"], ["x2d"]),
             node("DequantizeLinear", ["w3q", "s3"], ["w3d"]),
             node("Gemm", ["x2d", "w3d", "b3"], ["m3"], transB=1),
             node("Relu", ["m3"], ["y2"]),
             node("MatMul", ["xd", "w1d"], ["y3"]),
             node("Relu", ["y3"], ["y4"])]
    inits = [c("sx", 0.02), c("zx", 0, np.int8), q8("w1q", K, H), vec("s1", H, 0.002, 0.01),
             vec("b1", H, -0.5, 0.5), c("sqrt2", 1.4142135623730951), c("one", 1.0),
             c("half", 0.5), c("sg", 0.01), c("zg", 0, np.int8), q8("w2q", H, N),
             vec("s2", N, 0.002, 0.01), vec("b2", N, -0.5, 0.5), q8("w3q", N, K),
             c("s3", 0.004), vec("b3", N, -0.5, 0.5)]
    return model(nodes, [vi("x", [2, 5, K]), vi("x2", [3, K])],
                 [vi("y", [2, 5, N]), vi("y2", [3, N]), vi("y3", [2, 5, H]),
                  vi("y4", [2, 5, H])], inits)


def qdq_ln():
    # for test_passes.c: LayerNorm -> Q (its only reader) becomes
    # QLayerNormalization (qepi.c); the product reading it takes the bias
    # and the residual DQ(ln_q); then in an FP16 build (precision.c) that
    # product writes float16 for the second QLayerNormalization
    r = np.random.default_rng(17)
    D = 16

    def vec(name, n, lo, hi):
        return c(name, (lo + (hi - lo) * r.random(n)).astype(np.float32))
    nodes = [node("LayerNormalization", ["x", "g1", "be1"], ["ln1"], axis=-1, epsilon=1e-5),
             node("QuantizeLinear", ["ln1", "s1", "z"], ["ln1q"]),
             node("DequantizeLinear", ["ln1q", "s1", "z"], ["ln1d"]),
             node("DequantizeLinear", ["w1q", "ws1"], ["w1d"], axis=1),
             node("MatMul", ["ln1d", "w1d"], ["m1"]),
             node("Add", ["m1", "b1"], ["a1"]),
             node("Add", ["a1", "ln1d"], ["r1"]),
             node("LayerNormalization", ["r1", "g2", "be2"], ["ln2"], axis=-1, epsilon=1e-5),
             node("QuantizeLinear", ["ln2", "s2", "z"], ["ln2q"]),
             node("DequantizeLinear", ["ln2q", "s2", "z"], ["ln2d"]),
             node("DequantizeLinear", ["w2q", "ws2"], ["w2d"], axis=1),
             node("MatMul", ["ln2d", "w2d"], ["y"])]
    inits = [vec("g1", D, 0.5, 1.5), vec("be1", D, -0.5, 0.5), c("s1", 0.03), c("z", 0, np.int8),
             numpy_helper.from_array(r.integers(-127, 128, (D, D)).astype(np.int8), "w1q"),
             vec("ws1", D, 0.002, 0.01), vec("b1", D, -0.5, 0.5), vec("g2", D, 0.5, 1.5),
             vec("be2", D, -0.5, 0.5), c("s2", 0.03),
             numpy_helper.from_array(r.integers(-127, 128, (D, D)).astype(np.int8), "w2q"),
             vec("ws2", D, 0.002, 0.01)]
    return model(nodes, [vi("x", [2, 5, D])], [vi("y", [2, 5, D])], inits)


def main(out):
    os.makedirs(out, exist_ok=True)
    for fn in [fold, fold_dropout_train, noop, dce, conv_bn, matmul_add, bias_act_conv,
               bias_act_gemm, transpose, eltwise, gemm_trans, resnet_block]:
        save(fn(), os.path.join(out, fn.__name__ + ".onnx"))
    m16, m10 = half_and_old()
    save(bias_act_gemm_res(), os.path.join(out, "bias_act_gemm_res.onnx"))
    save(m16, os.path.join(out, "half.onnx"))
    save(m10, os.path.join(out, "opset10.onnx"))


def main_nhwc(out):
    save(resnet_nhwc(), os.path.join(out, "resnet_nhwc.onnx"))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "resnet_nhwc":
        main_nhwc(sys.argv[1])
    elif len(sys.argv) > 2 and sys.argv[2] in ("qdq_half", "qdq_half2", "quant_mm2",
                                                 "gather_half", "fold_repeat", "qdyn",
                                                 "fold_chain", "qdq_epi", "qdq_ln"):
        fn = {"qdq_half": qdq_half, "qdq_half2": qdq_half2, "quant_mm2": quant_mm2,
              "gather_half": gather_half, "fold_repeat": fold_repeat,
              "qdyn": qdyn, "fold_chain": fold_chain, "qdq_epi": qdq_epi,
              "qdq_ln": qdq_ln}[sys.argv[2]]
        save(fn(), os.path.join(sys.argv[1], sys.argv[2] + ".onnx"))
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else ".")
