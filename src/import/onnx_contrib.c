/* onnx_contrib.c: the com.microsoft operators that onnxruntime's own tools
** write (quantization tool, transformer optimizer), with the semantics of
** onnxruntime's contrib-op documentation, expanded at import into ai.onnx
** nodes that Kiln already runs, fuses and tests: QLinearAdd becomes
** DequantizeLinear/Add/QuantizeLinear, SkipLayerNormalization becomes
** Add + LayerNormalization, Attention becomes MatMul/Softmax/MatMul, and so
** on. The optimizer then treats them like an exporter's ai.onnx forms (its
** LayerNorm, GELU, attention and Gemm fusions apply), so one set of kernels
** serves both spellings.
**
** Expansions need some input types (a weight's width, a mask's rank), so
** the graph is inferred first; contrib nodes leave their outputs unknown
** until expanded, and the graph is inferred again when a later contrib node
** needs a type an earlier expansion produces. */
#include "onnx.h"
#include "../ir/ir_edit.h"
#include "../ops/infer.h"

#include <math.h>
#include <stdio.h>

#define MS_DOMAIN "com.microsoft"

static const char *const k_ms_ops[] = {
    "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool", "QGemm",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulNBits",
    "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
    "EmbedLayerNormalization", "BiasGelu", "FastGelu", "QuickGelu", "Gelu",
    "BiasAdd", "FusedMatMul", "Attention", "MultiHeadAttention",
    "RotaryEmbedding", "DynamicQuantizeLSTM", "QLinearSoftmax", NULL};

/* ai.onnx.ml operators written by skl2onnx and the node tests that are
** plain tensor arithmetic (no maps, sequences or strings). */
static const char *const k_ml_ops[] = {
    "Binarizer", "ArrayFeatureExtractor", "Scaler", "Normalizer", "LinearRegressor",
    "LinearClassifier", "OneHotEncoder", "Imputer", "FeatureVectorizer", "LabelEncoder", NULL};

/* ai.onnx.preview operators with an ai.onnx expansion. */
static const char *const k_preview_ops[] = {"FlexAttention", NULL};
/* ai.onnx.preview.training optimizers: one update step, plain arithmetic. */
static const char *const k_training_ops[] = {"Adagrad", "Momentum", "Adam", NULL};

bool onnx_contrib_known(const char *domain, const char *op_type) {
    const char *const *ops = !strcmp(domain, MS_DOMAIN) ? k_ms_ops
                             : !strcmp(domain, "ai.onnx.ml") ? k_ml_ops
                             : !strcmp(domain, "ai.onnx.preview") ? k_preview_ops
                             : !strcmp(domain, "ai.onnx.preview.training") ? k_training_ops
                                                                          : NULL;
    for (int i = 0; ops && ops[i]; i++)
        if (strcmp(ops[i], op_type) == 0) return true;
    return false;
}

/* ------------------------------------------------------------ emitting */

typedef struct cx {
    ir_graph *g;
    ir_node *src;
    int64_t opset;
    bool oom;
    char lab[256];
} cx;

/* An expansion returns 0, a kiln_status (> 0) or this: infer again, retry. */
enum { NEED_TYPES = -2 };

static bool domain_is_plain_onnx(const char *d) {
    return d[0] == 0 || strcmp(d, "ai.onnx") == 0;
}

static ir_value *in_at(const cx *x, int i) {
    return i < x->src->n_in ? x->src->in[i] : NULL;
}

/* A new node reading ins (NULL entries: absent optional inputs). */
static ir_node *emit(cx *x, int op, int n_in, ir_value *const *ins, int n_out) {
    if (x->oom) return NULL;
    ir_node *n = ir_edit_add_node(x->g, op, n_in, n_out,
                                  x->src->name && x->src->name[0] ? x->src->name
                                                                  : x->src->op_type);
    if (!n) {
        x->oom = true;
        return NULL;
    }
    for (int i = 0; i < n_in; i++) n->in[i] = ins[i];
    ir_edit_note_fused(x->g, n, &x->src, 1);
    return n;
}

static ir_value *out0(ir_node *n) { return n ? n->out[0] : NULL; }

static ir_value *op1(cx *x, int op, ir_value *a) {
    ir_value *in[1] = {a};
    return out0(emit(x, op, 1, in, 1));
}

static ir_value *op2(cx *x, int op, ir_value *a, ir_value *b) {
    ir_value *in[2] = {a, b};
    return out0(emit(x, op, 2, in, 1));
}

static ir_value *konst(cx *x, kiln_tensor *t) {
    if (x->oom || !t) {
        x->oom = true;
        tensor_free(t);
        return NULL;
    }
    ir_value *v = ir_edit_add_const(x->g, t, "const");
    if (!v) x->oom = true;
    return v;
}

static ir_value *c_f32(cx *x, float f) {
    kiln_tensor *t = NULL;
    if (tensor_new(KILN_DTYPE_FLOAT32, 0, NULL, &t) == KILN_OK) *(float *)t->data = f;
    return konst(x, t);
}

/* A scalar of dtype dt (float or int) with value v. */
static ir_value *c_scalar(cx *x, kiln_dtype dt, double v) {
    kiln_tensor *t = NULL;
    if (tensor_new(dt, 0, NULL, &t) == KILN_OK) dt_set_f64(dt, t->data, 0, v);
    return konst(x, t);
}

static ir_value *c_i64s(cx *x, int n, const int64_t *v) {
    kiln_tensor *t = NULL;
    int64_t d = n;
    if (tensor_new(KILN_DTYPE_INT64, 1, &d, &t) == KILN_OK && n)
        memcpy(t->data, v, (size_t)n * sizeof *v);
    return konst(x, t);
}

static ir_value *c_i64(cx *x, int64_t v) { return c_scalar(x, KILN_DTYPE_INT64, (double)v); }

/* x with its source output k taken over by node n's output i (name, graph
** output status, consumers). */
static void take(cx *x, ir_node *n, int i, int k) {
    if (!n || k >= x->src->n_out) return;
    ir_edit_set_output(n, i, x->src->out[k]);
}

static bool src_out_used(const cx *x, int k) {
    return k < x->src->n_out && x->src->out[k]->name[0];
}

static ir_value *transpose(cx *x, ir_value *v, int r, const int64_t *perm) {
    ir_node *n = emit(x, OP_Transpose, 1, &v, 1);
    if (n && !ir_edit_set_ints(n, "perm", perm, r)) x->oom = true;
    return out0(n);
}

static ir_value *reshape(cx *x, ir_value *v, int r, const int64_t *shape) {
    return op2(x, OP_Reshape, v, c_i64s(x, r, shape));
}

/* Unsqueeze/ReduceSum/Slice spell their axes differently across opsets. */
static ir_value *unsqueeze(cx *x, ir_value *v, int n, const int64_t *axes) {
    if (x->opset >= 13) return op2(x, OP_Unsqueeze, v, c_i64s(x, n, axes));
    ir_node *u = emit(x, OP_Unsqueeze, 1, &v, 1);
    if (u && !ir_edit_set_ints(u, "axes", axes, n)) x->oom = true;
    return out0(u);
}

static ir_value *reduce(cx *x, int op, ir_value *v, int64_t axis, bool keep) {
    ir_node *r;
    if (x->opset >= (op == OP_ReduceSum ? 13 : 18)) {
        ir_value *in[2] = {v, c_i64s(x, 1, &axis)};
        r = emit(x, op, 2, in, 1);
    } else {
        r = emit(x, op, 1, &v, 1);
        if (r && !ir_edit_set_ints(r, "axes", &axis, 1)) x->oom = true;
    }
    if (r && !ir_edit_set_int(r, "keepdims", keep)) x->oom = true;
    return out0(r);
}

static ir_value *reduce_sum(cx *x, ir_value *v, int64_t axis, bool keep) {
    return reduce(x, OP_ReduceSum, v, axis, keep);
}

static ir_value *slice1(cx *x, ir_value *v, int64_t axis, int64_t start, int64_t end) {
    ir_value *in[4] = {v, c_i64s(x, 1, &start), c_i64s(x, 1, &end), c_i64s(x, 1, &axis)};
    return out0(emit(x, OP_Slice, 4, in, 1));
}

static ir_value *cast(cx *x, ir_value *v, kiln_dtype to) {
    ir_node *n = emit(x, OP_Cast, 1, &v, 1);
    if (n && !ir_edit_set_int(n, "to", to)) x->oom = true;
    return out0(n);
}

/* dim d of v as a scalar int64 (Shape + Gather). */
static ir_value *dim_of(cx *x, ir_value *v, int64_t d) {
    return op2(x, OP_Gather, op1(x, OP_Shape, v), c_i64(x, d));
}

static ir_value *arange(cx *x, ir_value *limit) {
    ir_value *in[3] = {c_i64(x, 0), limit, c_i64(x, 1)};
    return out0(emit(x, OP_Range, 3, in, 1));
}

static ir_value *dq(cx *x, ir_value *v, ir_value *scale, ir_value *zp, int axis) {
    ir_value *in[3] = {v, scale, zp};
    ir_node *n = emit(x, OP_DequantizeLinear, 3, in, 1);
    if (n && axis >= 0 && !ir_edit_set_int(n, "axis", axis)) x->oom = true;
    return out0(n);
}

static ir_node *q_node(cx *x, ir_value *v, ir_value *scale, ir_value *zp) {
    ir_value *in[3] = {v, scale, zp};
    return emit(x, OP_QuantizeLinear, 3, in, 1);
}

static int fail(cx *x, kiln_status st, const char *what) {
    return (int)kiln_error(st, "%s: %s (com.microsoft %s)", x->lab, what, x->src->op_type);
}

static bool known_rank(const ir_value *v) { return v && v->type.rank >= 0; }

/* Per-axis scale: a constant with more than one element, or a rank-1
** value not known to have one. */
static bool per_axis(const ir_value *s) {
    if (!s) return false;
    if (s->const_val) return tensor_numel(s->const_val) > 1;
    return s->type.rank == 1 && s->type.dims[0] != 1;
}

/* ------------------------------------------------------------ quantization */

/* QLinearAdd/QLinearMul: (A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp) */
static int x_qlinear_binary(cx *x, int op) {
    ir_value *a = dq(x, in_at(x, 0), in_at(x, 1), in_at(x, 2), -1);
    ir_value *b = dq(x, in_at(x, 3), in_at(x, 4), in_at(x, 5), -1);
    take(x, q_node(x, op2(x, op, a, b), in_at(x, 6), in_at(x, 7)), 0, 0);
    return 0;
}

/* QLinearSigmoid/QLinearLeakyRelu: (X, X_scale, X_zp, Y_scale, Y_zp) */
static int x_qlinear_unary(cx *x, int op) {
    ir_value *v = dq(x, in_at(x, 0), in_at(x, 1), in_at(x, 2), -1);
    ir_node *n = emit(x, op, 1, &v, 1);
    if (n && op == OP_LeakyRelu &&
        !ir_edit_set_float(n, "alpha", ir_attr_float(x->src, "alpha", 0.01f)))
        x->oom = true;
    take(x, q_node(x, out0(n), in_at(x, 3), in_at(x, 4)), 0, 0);
    return 0;
}

/* QLinearSoftmax: (X, X_scale, X_zp?, Y_scale, Y_zp?), attributes axis
** (default -1) and opset, the Softmax version whose semantics apply: before
** 13 the input is seen as 2-D [prod(dims < axis), prod(dims >= axis)].
** onnxruntime's kernel works from an exp lookup table on the 8-bit input;
** dequantize, float Softmax and quantize agree with it to about one step. */
static int x_qlinear_softmax(cx *x) {
    ir_value *xv = in_at(x, 0);
    int64_t axis = ir_attr_int(x->src, "axis", -1);
    int64_t ver = ir_attr_int(x->src, "opset", 13);
    if (axis != -1 && !known_rank(xv)) return NEED_TYPES;
    int64_t r = known_rank(xv) ? xv->type.rank : 0;
    if (known_rank(xv) && (axis < -r || axis >= (r ? r : 1)))
        return fail(x, KILN_INVALID_MODEL, "axis is out of range for the input's rank");
    bool last = axis == -1 || (known_rank(xv) && (axis < 0 ? axis + r : axis) == r - 1);
    ir_value *v = dq(x, xv, in_at(x, 1), in_at(x, 2), -1);
    ir_value *y;
    if (last) {
        ir_node *sm = emit(x, OP_Softmax, 1, &v, 1);
        if (sm && !ir_edit_set_int(sm, "axis", -1)) x->oom = true;
        y = out0(sm);
    } else if (ver < 13) {
        /* Flatten at axis, Softmax over the row, back to the input's shape */
        ir_node *f = emit(x, OP_Flatten, 1, &v, 1);
        if (f && !ir_edit_set_int(f, "axis", axis < 0 ? axis + r : axis)) x->oom = true;
        ir_value *fv = out0(f);
        ir_node *sm = emit(x, OP_Softmax, 1, &fv, 1);
        if (sm && !ir_edit_set_int(sm, "axis", 1)) x->oom = true;
        y = op2(x, OP_Reshape, out0(sm), op1(x, OP_Shape, xv));
    } else if (x->opset >= 13) {
        ir_node *sm = emit(x, OP_Softmax, 1, &v, 1);
        if (sm && !ir_edit_set_int(sm, "axis", axis)) x->oom = true;
        y = out0(sm);
    } else {
        return fail(x, KILN_UNSUPPORTED, "opset >= 13 semantics over a non-last axis "
                    "in a model of ai.onnx opset < 13");
    }
    take(x, q_node(x, y, in_at(x, 3), in_at(x, 4)), 0, 0);
    return 0;
}

/* QLinearConcat: (Y_scale, Y_zp, then (X, X_scale, X_zp) per input; axis) */
static int x_qlinear_concat(cx *x) {
    int n_in = x->src->n_in;
    if (n_in < 5 || (n_in - 2) % 3)
        return fail(x, KILN_INVALID_MODEL, "needs Y_scale, Y_zero_point and "
                    "(X, X_scale, X_zero_point) triples");
    int k = (n_in - 2) / 3;
    ir_value *parts[256];
    if (k > 256) return fail(x, KILN_UNSUPPORTED, "more than 256 inputs");
    for (int i = 0; i < k; i++)
        parts[i] = dq(x, in_at(x, 2 + 3 * i), in_at(x, 3 + 3 * i), in_at(x, 4 + 3 * i), -1);
    ir_node *c = emit(x, OP_Concat, k, parts, 1);
    if (c && !ir_edit_set_int(c, "axis", ir_attr_int(x->src, "axis", 0))) x->oom = true;
    take(x, q_node(x, out0(c), in_at(x, 0), in_at(x, 1)), 0, 0);
    return 0;
}

/* QLinearAveragePool / QLinearGlobalAveragePool: (X, x_scale, x_zp, y_scale,
** y_zp), NCHW only (channels_last = 0, what the quantization tool writes
** for NCHW models). */
static int x_qlinear_pool(cx *x, int op) {
    if (ir_attr_int(x->src, "channels_last", 0))
        return fail(x, KILN_UNSUPPORTED, "channels_last = 1 is not supported");
    ir_value *v = dq(x, in_at(x, 0), in_at(x, 1), in_at(x, 2), -1);
    ir_node *p = emit(x, op, 1, &v, 1);
    if (p && op == OP_AveragePool) {
        if (!ir_edit_copy_attrs(p, x->src)) x->oom = true;
        /* not an AveragePool attribute */
        for (int i = 0; p && i < p->n_attrs; i++)
            if (strcmp(p->attrs[i].name, "channels_last") == 0)
                p->attrs[i] = p->attrs[--p->n_attrs];
    }
    take(x, q_node(x, out0(p), in_at(x, 3), in_at(x, 4)), 0, 0);
    return 0;
}

/* QGemm: (A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp?):
** alpha * A'B' with the int32 bias C in the accumulator's scale
** (a_scale * b_scale); quantized again when y_scale is given. */
static int x_qgemm(cx *x) {
    int64_t ta = ir_attr_int(x->src, "transA", 0), tb = ir_attr_int(x->src, "transB", 0);
    float alpha = ir_attr_float(x->src, "alpha", 1.0f);
    ir_value *a = dq(x, in_at(x, 0), in_at(x, 1), in_at(x, 2), -1);
    ir_value *b = dq(x, in_at(x, 3), in_at(x, 4), in_at(x, 5),
                     per_axis(in_at(x, 4)) ? (tb ? 0 : 1) : -1);
    ir_value *c = NULL;
    if (in_at(x, 6)) {
        ir_value *s = op2(x, OP_Mul, in_at(x, 1), in_at(x, 4));
        c = op2(x, OP_Mul, cast(x, in_at(x, 6), KILN_DTYPE_FLOAT32), s);
    }
    ir_value *in[3] = {a, b, c};
    ir_node *g = emit(x, OP_Gemm, c ? 3 : 2, in, 1);
    if (g && (!ir_edit_set_int(g, "transA", ta) || !ir_edit_set_int(g, "transB", tb) ||
              !ir_edit_set_float(g, "alpha", alpha) || !ir_edit_set_float(g, "beta", alpha)))
        x->oom = true;
    if (in_at(x, 7)) take(x, q_node(x, out0(g), in_at(x, 7), in_at(x, 8)), 0, 0);
    else take(x, g, 0, 0);
    return 0;
}

/* (A_int . B_int) as float times the scales, plus an optional bias. */
static void int_matmul_to_float(cx *x, ir_value *a, ir_value *b, ir_value *az,
                                ir_value *bz, ir_value *as, ir_value *bs,
                                ir_value *bias) {
    ir_value *in[4] = {a, b, az, bz};
    ir_value *acc = out0(emit(x, OP_MatMulInteger, 4, in, 1));
    ir_value *y = op2(x, OP_Mul, cast(x, acc, KILN_DTYPE_FLOAT32), op2(x, OP_Mul, as, bs));
    if (bias) y = op2(x, OP_Add, y, bias);
    if (y && y->producer) take(x, y->producer, 0, 0);
}

/* DynamicQuantizeMatMul: (A float, B, b_scale, b_zp?, bias?) */
static int x_dyn_quant_matmul(cx *x) {
    ir_value *a = in_at(x, 0);
    ir_node *d = emit(x, OP_DynamicQuantizeLinear, 1, &a, 3);
    if (!d) return 0;
    int_matmul_to_float(x, d->out[0], in_at(x, 1), d->out[2], in_at(x, 3), d->out[1],
                        in_at(x, 2), in_at(x, 4));
    return 0;
}

/* MatMulIntegerToFloat: (A, B, a_scale, b_scale, a_zp?, b_zp?, bias?) */
static int x_matmul_int_to_float(cx *x) {
    int_matmul_to_float(x, in_at(x, 0), in_at(x, 1), in_at(x, 4), in_at(x, 5),
                        in_at(x, 2), in_at(x, 3), in_at(x, 6));
    return 0;
}

/* One direction-major quantized LSTM weight [D, K, 4H] (int8/uint8) with
** scale and zero point per direction [D] or per direction and gate column
** [D, 4H], as ai.onnx LSTM wants it: float [D, 4H, K]. */
static ir_value *lstm_weight(cx *x, ir_value *w, ir_value *scale, ir_value *zp) {
    static const int64_t bshape[3] = {0, 1, -1}, perm[3] = {0, 2, 1};
    ir_value *f = cast(x, w, KILN_DTYPE_FLOAT32);
    if (zp) f = op2(x, OP_Sub, f, reshape(x, cast(x, zp, KILN_DTYPE_FLOAT32), 3, bshape));
    f = op2(x, OP_Mul, f, reshape(x, scale, 3, bshape));
    return transpose(x, f, 3, perm);
}

/* DynamicQuantizeLSTM: (X, W, R, B?, sequence_lens?, initial_h?,
** initial_c?, P?, W_scale, W_zero_point, R_scale, R_zero_point), W and R
** stored transposed ([D, input, 4H], [D, H, 4H]). It becomes a float LSTM
** over the dequantized weights; onnxruntime also quantizes X and the hidden
** state to 8 bits at every step, which this does not (its outputs are the
** float LSTM's within that quantization noise). */
static int x_dyn_quant_lstm(cx *x) {
    if (!in_at(x, 8) || !in_at(x, 10))
        return fail(x, KILN_INVALID_MODEL, "W_scale and R_scale are required");
    ir_value *in[8];
    for (int i = 0; i < 8; i++) in[i] = in_at(x, i);
    in[1] = lstm_weight(x, in_at(x, 1), in_at(x, 8), in_at(x, 9));
    in[2] = lstm_weight(x, in_at(x, 2), in_at(x, 10), in_at(x, 11));
    int n_in = 8;
    while (n_in > 3 && !in[n_in - 1]) n_in--;
    ir_node *l = emit(x, OP_LSTM, n_in, in, x->src->n_out);
    if (!l) return 0;
    if (!ir_edit_copy_attrs(l, x->src)) {
        x->oom = true;
        return 0;
    }
    for (int k = 0; k < x->src->n_out; k++) take(x, l, k, k);
    return 0;
}

/* MatMulNBits: (A, B packed [N, blocks, blob], scales, zero_points?,
** g_idx?, bias?). The weights are constants in every file the tools write:
** they are unpacked here into a dense [K, N] matrix of A's type. */
static int x_matmul_nbits(cx *x) {
    int64_t K = ir_attr_int(x->src, "K", -1), N = ir_attr_int(x->src, "N", -1);
    int64_t bits = ir_attr_int(x->src, "bits", 4), bs = ir_attr_int(x->src, "block_size", -1);
    const ir_value *bv = in_at(x, 1), *sv = in_at(x, 2), *zv = in_at(x, 3);
    if (in_at(x, 4)) return fail(x, KILN_UNSUPPORTED, "g_idx is not supported");
    if ((bits != 4 && bits != 8) || bs < 16 || (bs & (bs - 1)) || K < 1 || N < 1 ||
        K > ((int64_t)1 << 24) || N > ((int64_t)1 << 24))
        return fail(x, KILN_INVALID_MODEL, "needs K, N >= 1, bits 4 or 8 and a "
                    "power-of-two block_size >= 16");
    if (!bv || !bv->const_val || !sv || !sv->const_val || (zv && !zv->const_val))
        return fail(x, KILN_UNSUPPORTED, "B, scales and zero_points must be "
                    "initializers");
    const kiln_tensor *B = bv->const_val, *S = sv->const_val, *Z = zv ? zv->const_val : NULL;
    int64_t nb = (K + bs - 1) / bs, blob = bs * bits / 8;
    int64_t zrow = (nb * bits + 7) / 8; /* packed zero points per column */
    if (B->dtype != KILN_DTYPE_UINT8 || tensor_numel(B) != N * nb * blob ||
        tensor_numel(S) != N * nb || !dtype_is_float(S->dtype) ||
        (Z && !(Z->dtype == KILN_DTYPE_UINT8 ? tensor_numel(Z) == N * zrow
                                              : Z->dtype == S->dtype &&
                                                tensor_numel(Z) == N * nb)))
        return fail(x, KILN_INVALID_MODEL, "B, scales or zero_points do not match "
                    "K, N, bits and block_size");
    int64_t wd[2] = {K, N};
    kiln_tensor *W = NULL;
    if (tensor_new(S->dtype, 2, wd, &W)) {
        x->oom = true;
        return 0;
    }
    const uint8_t *bp = B->data;
    int per_byte = (int)(8 / bits), mask = (1 << bits) - 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int64_t blk = k / bs, j = k % bs;
            uint8_t byte = bp[(n * nb + blk) * blob + j / per_byte];
            int q = (byte >> ((j % per_byte) * bits)) & mask;
            double zp = (double)(1 << (bits - 1));
            if (Z && Z->dtype == KILN_DTYPE_UINT8) {
                uint8_t zb = ((const uint8_t *)Z->data)[n * zrow + blk / per_byte];
                zp = (zb >> ((blk % per_byte) * bits)) & mask;
            } else if (Z) {
                zp = dt_get_f64(Z->dtype, Z->data, (size_t)(n * nb + blk));
            }
            double s = dt_get_f64(S->dtype, S->data, (size_t)(n * nb + blk));
            dt_set_f64(W->dtype, W->data, (size_t)(k * N + n), (q - zp) * s);
        }
    ir_value *y = op2(x, OP_MatMul, in_at(x, 0), konst(x, W));
    if (in_at(x, 5)) y = op2(x, OP_Add, y, in_at(x, 5));
    if (y) take(x, y->producer, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ transformer */

static ir_node *layer_norm(cx *x, ir_value *v, ir_value *gamma, ir_value *beta,
                           bool simplified) {
    float eps = ir_attr_float(x->src, "epsilon", 1e-12f);
    ir_value *in[3] = {v, gamma, beta};
    ir_node *n = simplified ? emit(x, OP_RMSNormalization, 2, in, 1)
                            : emit(x, OP_LayerNormalization, beta ? 3 : 2, in, 3);
    if (n && (!ir_edit_set_int(n, "axis", -1) || !ir_edit_set_float(n, "epsilon", eps)))
        x->oom = true;
    return n;
}

/* SkipLayerNormalization: (input, skip, gamma, beta?, bias?) -> output,
** mean, inv_std_var, input_skip_bias_sum. The simplified form is RMS
** normalization: (input, skip, gamma, bias?). */
static int x_skip_layer_norm(cx *x, bool simplified) {
    ir_value *bias = in_at(x, simplified ? 3 : 4);
    ir_node *sum = emit(x, OP_Add, 2, (ir_value *[]){in_at(x, 0), in_at(x, 1)}, 1);
    if (bias && sum) sum = emit(x, OP_Add, 2, (ir_value *[]){sum->out[0], bias}, 1);
    if (!sum) return 0;
    if (src_out_used(x, 3)) take(x, sum, 0, 3);
    ir_node *ln = layer_norm(x, sum->out[0], in_at(x, 2), simplified ? NULL : in_at(x, 3),
                             simplified);
    take(x, ln, 0, 0);
    if (!simplified && src_out_used(x, 1)) take(x, ln, 1, 1);
    if (!simplified && src_out_used(x, 2)) take(x, ln, 2, 2);
    if (simplified && (src_out_used(x, 1) || src_out_used(x, 2)))
        return fail(x, KILN_UNSUPPORTED, "the mean and inv_std_var outputs are not "
                    "supported");
    return 0;
}

/* EmbedLayerNormalization: (input_ids, segment_ids?, word_embedding,
** position_embedding, segment_embedding?, gamma, beta, mask?, position_ids?)
** -> output, mask_index (int32 [batch]: valid tokens per row), embedding_sum. */
static int x_embed_layer_norm(cx *x) {
    ir_value *ids = in_at(x, 0);
    ir_value *e = op2(x, OP_Gather, in_at(x, 2), ids);
    ir_value *pos = in_at(x, 8);
    ir_value *p = pos ? op2(x, OP_Gather, in_at(x, 3), pos)
                      : op2(x, OP_Gather, in_at(x, 3), arange(x, dim_of(x, ids, 1)));
    ir_node *sum = emit(x, OP_Add, 2, (ir_value *[]){e, p}, 1);
    if (in_at(x, 1) && in_at(x, 4) && sum) {
        ir_value *s = op2(x, OP_Gather, in_at(x, 4), in_at(x, 1));
        sum = emit(x, OP_Add, 2, (ir_value *[]){sum->out[0], s}, 1);
    }
    if (!sum) return 0;
    if (src_out_used(x, 2)) take(x, sum, 0, 2);
    take(x, layer_norm(x, sum->out[0], in_at(x, 5), in_at(x, 6), false), 0, 0);
    if (src_out_used(x, 1)) {
        ir_value *mi;
        if (in_at(x, 7)) {
            mi = cast(x, reduce_sum(x, cast(x, in_at(x, 7), KILN_DTYPE_INT32), 1, false),
                      KILN_DTYPE_INT32);
        } else { /* no mask: zeros [batch] */
            ir_value *z = op2(x, OP_Mul, cast(x, ids, KILN_DTYPE_INT32),
                              c_scalar(x, KILN_DTYPE_INT32, 0));
            mi = reduce_sum(x, z, 1, false);
        }
        if (mi) take(x, mi->producer, 0, 1);
    }
    return 0;
}

/* Multi-head attention core on Q [B,S,N*h], K/V either [B,T,N*h] (heads
** split here) or already [B,N,T,h]. mask_kind: 0 none, 1 end positions
** [B], 2 key padding [B,T], 3 [B,S,T]. Returns the [B,S,N*hv] output and
** the K/V after appending past_k/past_v (for present outputs). */
typedef struct attn_io {
    ir_value *q, *k, *v;       /* inputs */
    bool kv_heads;             /* k, v already [B,N,T,h] */
    ir_value *past_k, *past_v; /* [B,N,P,h] or NULL */
    ir_value *mask;
    int mask_kind;
    ir_value *bias;            /* additive [.., S, T] or NULL */
    bool causal;
    int64_t heads, head_q, head_v; /* head_q: query head size for the scale */
    float scale, filter;
    ir_value *y, *k_all, *v_all; /* results */
} attn_io;

static ir_value *split_heads(cx *x, ir_value *v, int64_t heads) {
    static const int64_t perm[4] = {0, 2, 1, 3};
    return transpose(x, reshape(x, v, 4, (int64_t[]){0, 0, heads, -1}), 4, perm);
}

static void attention_core(cx *x, attn_io *a) {
    static const int64_t perm[4] = {0, 2, 1, 3}, kt[4] = {0, 1, 3, 2};
    ir_value *q = split_heads(x, a->q, a->heads);
    ir_value *k = a->kv_heads ? a->k : split_heads(x, a->k, a->heads);
    ir_value *v = a->kv_heads ? a->v : split_heads(x, a->v, a->heads);
    if (a->past_k) k = out0(emit(x, OP_Concat, 2, (ir_value *[]){a->past_k, k}, 1));
    if (a->past_v) v = out0(emit(x, OP_Concat, 2, (ir_value *[]){a->past_v, v}, 1));
    if (a->past_k && k && !ir_edit_set_int(k->producer, "axis", 2)) x->oom = true;
    if (a->past_v && v && !ir_edit_set_int(v->producer, "axis", 2)) x->oom = true;
    a->k_all = k;
    a->v_all = v;
    ir_value *s = op2(x, OP_MatMul, q, transpose(x, k, 4, kt));
    s = op2(x, OP_Mul, s, c_f32(x, a->scale));
    ir_value *filt = c_f32(x, a->filter), *one = c_f32(x, 1.0f);
    if (a->mask_kind) {
        ir_value *m; /* 1 where attending is allowed, float */
        if (a->mask_kind == 1) {
            ir_value *t = arange(x, dim_of(x, k, 2)); /* [T] */
            ir_value *end = unsqueeze(x, cast(x, a->mask, KILN_DTYPE_INT64), 1, (int64_t[]){1});
            m = cast(x, op2(x, OP_Less, t, end), KILN_DTYPE_FLOAT32); /* [B,T] */
            m = unsqueeze(x, m, 2, (int64_t[]){1, 2});
        } else {
            m = cast(x, a->mask, KILN_DTYPE_FLOAT32);
            m = a->mask_kind == 2 ? unsqueeze(x, m, 2, (int64_t[]){1, 2})
                                  : unsqueeze(x, m, 1, (int64_t[]){1});
        }
        s = op2(x, OP_Add, s, op2(x, OP_Mul, op2(x, OP_Sub, one, m), filt));
    }
    if (a->causal) {
        /* query i (of S, after P past positions) sees keys j <= i + P */
        ir_value *T = dim_of(x, k, 2), *S = dim_of(x, q, 2);
        ir_value *rows = op2(x, OP_Add, arange(x, S), op2(x, OP_Sub, T, S));
        rows = unsqueeze(x, rows, 1, (int64_t[]){1});                /* [S,1] */
        ir_value *later = op2(x, OP_Greater, arange(x, T), rows);    /* [S,T] */
        s = op2(x, OP_Add, s, op2(x, OP_Mul, cast(x, later, KILN_DTYPE_FLOAT32), filt));
    }
    if (a->bias) s = op2(x, OP_Add, s, a->bias);
    ir_node *sm = emit(x, OP_Softmax, 1, &s, 1);
    if (sm && !ir_edit_set_int(sm, "axis", 3)) x->oom = true;
    ir_value *o = transpose(x, op2(x, OP_MatMul, out0(sm), v), 4, perm);
    a->y = reshape(x, o, 3, (int64_t[]){0, 0, -1});
}

/* [2, B, N, T, h] from k and v [B, N, T, h] */
static ir_node *stack_kv(cx *x, ir_value *k, ir_value *v) {
    ir_value *in[2] = {unsqueeze(x, k, 1, (int64_t[]){0}), unsqueeze(x, v, 1, (int64_t[]){0})};
    ir_node *c = emit(x, OP_Concat, 2, in, 1);
    if (c && !ir_edit_set_int(c, "axis", 0)) x->oom = true;
    return c;
}

static int mask_kind_of(cx *x, const ir_value *m, int *kind) {
    *kind = 0;
    if (!m) return 0;
    if (!known_rank(m)) return NEED_TYPES;
    switch (m->type.rank) {
    case 1:
        /* [2B] (end and start positions) is a different layout */
        *kind = 1;
        return 0;
    case 2: *kind = 2; return 0;
    case 3: *kind = 3; return 0;
    default:
        return fail(x, KILN_UNSUPPORTED, "a mask of rank 4 is not supported");
    }
}

/* Attention: (input, weights, bias?, mask_index?, past?, attention_bias?,
** past_sequence_length?) -> output, present */
static int x_attention(cx *x) {
    int64_t heads = ir_attr_int(x->src, "num_heads", 0);
    if (heads < 1) return fail(x, KILN_INVALID_MODEL, "num_heads must be positive");
    if (ir_attr_int(x->src, "do_rotary", 0) || ir_attr_int(x->src, "past_present_share_buffer", 0))
        return fail(x, KILN_UNSUPPORTED, "do_rotary and past_present_share_buffer are "
                    "not supported");
    if (in_at(x, 6)) return fail(x, KILN_UNSUPPORTED, "past_sequence_length is not supported");
    int cnt;
    const int64_t *qkv = ir_attr_ints(x->src, "qkv_hidden_sizes", &cnt);
    int64_t dq, dk, dv;
    if (qkv && cnt == 3) {
        dq = qkv[0], dk = qkv[1], dv = qkv[2];
    } else {
        const ir_value *w = in_at(x, 1);
        if (!known_rank(w)) return NEED_TYPES;
        if (w->type.rank != 2 || w->type.dims[1] < 0 || w->type.dims[1] % 3)
            return fail(x, KILN_UNSUPPORTED, "weights must be [hidden, 3 * hidden] with "
                        "a known width, or qkv_hidden_sizes given");
        dq = dk = dv = w->type.dims[1] / 3;
    }
    if (dq < 1 || dk != dq || dv < 1 || dq % heads || dv % heads)
        return fail(x, KILN_INVALID_MODEL, "qkv_hidden_sizes must be positive, with "
                    "equal Q and K sizes, divisible by num_heads");
    attn_io a = {0};
    int st = mask_kind_of(x, in_at(x, 3), &a.mask_kind);
    if (st) return st;
    ir_value *p = op2(x, OP_MatMul, in_at(x, 0), in_at(x, 1));
    if (in_at(x, 2)) p = op2(x, OP_Add, p, in_at(x, 2));
    a.q = slice1(x, p, 2, 0, dq);
    a.k = slice1(x, p, 2, dq, dq + dk);
    a.v = slice1(x, p, 2, dq + dk, dq + dk + dv);
    if (in_at(x, 4)) {
        a.past_k = op2(x, OP_Gather, in_at(x, 4), c_i64(x, 0));
        a.past_v = op2(x, OP_Gather, in_at(x, 4), c_i64(x, 1));
    }
    a.mask = in_at(x, 3);
    a.bias = in_at(x, 5);
    a.causal = ir_attr_int(x->src, "unidirectional", 0) != 0;
    a.heads = heads;
    a.scale = ir_attr_float(x->src, "scale", 0.0f);
    if (a.scale == 0.0f) a.scale = 1.0f / sqrtf((float)(dq / heads));
    a.filter = ir_attr_float(x->src, "mask_filter_value", -10000.0f);
    attention_core(x, &a);
    if (a.y) take(x, a.y->producer, 0, 0);
    if (src_out_used(x, 1)) take(x, stack_kv(x, a.k_all, a.v_all), 0, 1);
    return 0;
}

/* MultiHeadAttention: (query, key, value, bias?, key_padding_mask?,
** attention_bias?, past_key?, past_value?) -> output, present_key,
** present_value. Separate Q, K, V: K/V [B,L,D] or [B,N,L,h]. */
static int x_mha(cx *x) {
    int64_t heads = ir_attr_int(x->src, "num_heads", 0);
    if (heads < 1) return fail(x, KILN_INVALID_MODEL, "num_heads must be positive");
    ir_value *q = in_at(x, 0), *k = in_at(x, 1), *v = in_at(x, 2);
    if (!k || !v) return fail(x, KILN_UNSUPPORTED, "packed QKV / KV inputs are not supported");
    if (!known_rank(q) || !known_rank(k) || !known_rank(v)) return NEED_TYPES;
    if (q->type.rank != 3 || (k->type.rank != 3 && k->type.rank != 4) ||
        v->type.rank != k->type.rank)
        return fail(x, KILN_UNSUPPORTED, "query must be [B,S,D] and key/value "
                    "[B,L,D] or [B,N,L,h]");
    int64_t d = q->type.dims[2];
    attn_io a = {0};
    int st = mask_kind_of(x, in_at(x, 4), &a.mask_kind);
    if (st) return st;
    if (a.mask_kind == 3 || a.mask_kind == 1)
        return fail(x, KILN_UNSUPPORTED, "only a [batch, total length] key_padding_mask "
                    "is supported");
    if (in_at(x, 3)) {
        const ir_value *b = in_at(x, 3);
        if (!known_rank(b)) return NEED_TYPES;
        if (b->type.rank != 1 || b->type.dims[0] < 0 || b->type.dims[0] % 3 ||
            k->type.rank != 3)
            return fail(x, KILN_UNSUPPORTED, "bias must be [3 * D] with [B,L,D] keys");
        int64_t bd = b->type.dims[0] / 3;
        q = op2(x, OP_Add, q, slice1(x, in_at(x, 3), 0, 0, bd));
        k = op2(x, OP_Add, k, slice1(x, in_at(x, 3), 0, bd, 2 * bd));
        v = op2(x, OP_Add, v, slice1(x, in_at(x, 3), 0, 2 * bd, 3 * bd));
    }
    if (d < 0 || d % heads) return fail(x, KILN_UNSUPPORTED, "query width must be known "
                                        "and divisible by num_heads");
    a.q = q, a.k = k, a.v = v;
    a.kv_heads = in_at(x, 1)->type.rank == 4;
    a.past_k = in_at(x, 6);
    a.past_v = in_at(x, 7);
    a.mask = in_at(x, 4);
    a.bias = in_at(x, 5);
    a.causal = ir_attr_int(x->src, "unidirectional", 0) != 0;
    a.heads = heads;
    a.scale = ir_attr_float(x->src, "scale", 0.0f);
    if (a.scale == 0.0f) a.scale = 1.0f / sqrtf((float)(d / heads));
    a.filter = ir_attr_float(x->src, "mask_filter_value", -10000.0f);
    attention_core(x, &a);
    if (a.y) take(x, a.y->producer, 0, 0);
    if (src_out_used(x, 1) && a.k_all) take(x, a.k_all->producer, 0, 1);
    if (src_out_used(x, 2) && a.v_all) take(x, a.v_all->producer, 0, 2);
    return 0;
}

/* RotaryEmbedding (com.microsoft): (input, position_ids, cos_cache,
** sin_cache); ai.onnx's has the same attributes with the inputs reordered. */
static int x_rotary(cx *x) {
    const ir_value *p = in_at(x, 1);
    if (!known_rank(p)) return NEED_TYPES;
    if (p->type.rank != 2)
        return fail(x, KILN_UNSUPPORTED, "position_ids must be [batch, sequence] (a "
                    "single offset is not supported)");
    if (ir_attr_int(x->src, "is_packed_batching", 0))
        return fail(x, KILN_UNSUPPORTED, "is_packed_batching is not supported");
    ir_value *in[4] = {in_at(x, 0), in_at(x, 2), in_at(x, 3), in_at(x, 1)};
    ir_node *n = emit(x, OP_RotaryEmbedding, 4, in, 1);
    if (n && (!ir_edit_set_int(n, "interleaved", ir_attr_int(x->src, "interleaved", 0)) ||
              !ir_edit_set_int(n, "num_heads", ir_attr_int(x->src, "num_heads", 0)) ||
              !ir_edit_set_int(n, "rotary_embedding_dim",
                               ir_attr_int(x->src, "rotary_embedding_dim", 0))))
        x->oom = true;
    take(x, n, 0, 0);
    return 0;
}

static ir_node *gelu(cx *x, ir_value *v, bool tanh_approx) {
    ir_node *n = emit(x, OP_Gelu, 1, &v, 1);
    if (n && tanh_approx && !ir_edit_set_str(n, "approximate", "tanh")) x->oom = true;
    return n;
}

/* FusedMatMul: (A, B; alpha, transA, transB); batch transposes refused. */
static int x_fused_matmul(cx *x) {
    if (ir_attr_int(x->src, "transBatchA", 0) || ir_attr_int(x->src, "transBatchB", 0))
        return fail(x, KILN_UNSUPPORTED, "transBatchA/transBatchB are not supported");
    ir_value *ab[2] = {in_at(x, 0), in_at(x, 1)};
    const char *names[2] = {"transA", "transB"};
    for (int i = 0; i < 2; i++) {
        if (!ir_attr_int(x->src, names[i], 0)) continue;
        if (!known_rank(ab[i])) return NEED_TYPES;
        int r = ab[i]->type.rank;
        if (r < 2) return fail(x, KILN_INVALID_MODEL, "a transposed input needs rank >= 2");
        int64_t perm[KILN_MAX_RANK];
        for (int d = 0; d < r; d++) perm[d] = d;
        perm[r - 2] = r - 1, perm[r - 1] = r - 2;
        ab[i] = transpose(x, ab[i], r, perm);
    }
    ir_value *y = op2(x, OP_MatMul, ab[0], ab[1]);
    float alpha = ir_attr_float(x->src, "alpha", 1.0f);
    if (alpha != 1.0f) y = op2(x, OP_Mul, y, c_f32(x, alpha));
    if (y) take(x, y->producer, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ ai.onnx.ml */

static ir_value *c_f32s(cx *x, int rank, const int64_t *dims, const float *v) {
    kiln_tensor *t = NULL;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t) == KILN_OK)
        memcpy(t->data, v, (size_t)tensor_numel(t) * sizeof *v);
    return konst(x, t);
}

static ir_value *as_float(cx *x, ir_value *v) {
    return v->type.dtype == KILN_DTYPE_FLOAT32 ? v : cast(x, v, KILN_DTYPE_FLOAT32);
}

/* X as a float matrix [N, C] (a 1-D X is one row). */
static int ml_matrix(cx *x, ir_value **out) {
    ir_value *v = in_at(x, 0);
    if (!known_rank(v) || v->type.dtype == KILN_DTYPE_UNDEFINED) return NEED_TYPES;
    if (v->type.rank != 1 && v->type.rank != 2)
        return fail(x, KILN_UNSUPPORTED, "X must have rank 1 or 2");
    v = as_float(x, v);
    *out = in_at(x, 0)->type.rank == 1 ? reshape(x, v, 2, (int64_t[]){1, -1}) : v;
    return 0;
}

static int x_ml(cx *x) {
    const char *t = x->src->op_type;
    ir_value *v = in_at(x, 0), *y;
    int n;
    if (!strcmp(t, "Binarizer")) {
        if (v->type.dtype == KILN_DTYPE_UNDEFINED) return NEED_TYPES;
        y = op2(x, OP_Greater, v, c_scalar(x, v->type.dtype,
                                           ir_attr_float(x->src, "threshold", 0.0f)));
        y = cast(x, y, v->type.dtype);
    } else if (!strcmp(t, "ArrayFeatureExtractor")) {
        if (!known_rank(v)) return NEED_TYPES;
        ir_value *idx = reshape(x, in_at(x, 1), 1, (int64_t[]){-1});
        ir_node *g = emit(x, OP_Gather, 2, (ir_value *[]){v, idx}, 1);
        if (g && !ir_edit_set_int(g, "axis", v->type.rank > 0 ? v->type.rank - 1 : 0))
            x->oom = true;
        y = out0(g);
    } else if (!strcmp(t, "Scaler")) {
        if (v->type.dtype == KILN_DTYPE_UNDEFINED) return NEED_TYPES;
        int no, ns;
        const float *off = ir_attr_floats(x->src, "offset", &no);
        const float *scl = ir_attr_floats(x->src, "scale", &ns);
        y = as_float(x, v);
        if (off) y = op2(x, OP_Sub, y, c_f32s(x, 1, (int64_t[]){no}, off));
        if (scl) y = op2(x, OP_Mul, y, c_f32s(x, 1, (int64_t[]){ns}, scl));
        if (y == v) y = op1(x, OP_Identity, v);
    } else if (!strcmp(t, "Normalizer")) {
        int st = ml_matrix(x, &y);
        if (st) return st;
        const char *norm = ir_attr_str(x->src, "norm", "MAX");
        ir_value *d;
        if (!strcmp(norm, "MAX")) d = reduce(x, OP_ReduceMax, y, 1, true);
        else if (!strcmp(norm, "L1")) d = reduce_sum(x, op1(x, OP_Abs, y), 1, true);
        else if (!strcmp(norm, "L2")) d = op1(x, OP_Sqrt, reduce_sum(x, op2(x, OP_Mul, y, y), 1, true));
        else return fail(x, KILN_INVALID_MODEL, "norm must be MAX, L1 or L2");
        y = op2(x, OP_Div, y, d);
    } else { /* LinearRegressor, LinearClassifier */
        int st = ml_matrix(x, &y);
        if (st) return st;
        bool cls = !strcmp(t, "LinearClassifier"), binary = false;
        int nc, ni, nl = 0;
        const float *coef = ir_attr_floats(x->src, "coefficients", &nc);
        const float *icpt = ir_attr_floats(x->src, "intercepts", &ni);
        const int64_t *labels = cls ? ir_attr_ints(x->src, "classlabels_ints", &nl) : NULL;
        int64_t rows = ir_attr_int(x->src, "targets", 1);
        const char *post = ir_attr_str(x->src, "post_transform", "NONE");
        if (cls && ir_attr_find(x->src, "classlabels_strings"))
            return fail(x, KILN_UNSUPPORTED, "string class labels are not supported");
        if (cls) { /* one coefficient row per class; C from X */
            int64_t C = in_at(x, 0)->type.dims[in_at(x, 0)->type.rank - 1];
            if (C < 1) return fail(x, KILN_UNSUPPORTED, "X needs a known feature count");
            rows = coef && nc % C == 0 ? nc / C : -1;
            /* binary: one row scores the second class, the first gets its
            ** negation (onnxruntime's convention) */
            binary = rows == 1 && nl == 2;
            if (rows != nl && !binary) rows = -1;
        }
        if (!coef || rows < 1 || nc % rows || (icpt && ni != rows))
            return fail(x, KILN_INVALID_MODEL, cls ? "needs classlabels_ints and one row "
                        "of coefficients (and an intercept) per class" :
                        "coefficients must be targets rows (intercepts one per target)");
        int64_t wd[2] = {rows, nc / rows};
        ir_value *in[3] = {y, c_f32s(x, 2, wd, coef), icpt ? c_f32s(x, 1, &rows, icpt) : NULL};
        ir_node *g = emit(x, OP_Gemm, icpt ? 3 : 2, in, 1);
        if (g && !ir_edit_set_int(g, "transB", 1)) x->oom = true;
        y = out0(g);
        /* binary (one row scoring the second class), as onnxruntime does it:
        ** the label is the second one where the raw score is > 0; scores are
        ** [1 - v, v] of the transformed score v (NONE, LOGISTIC), or the
        ** transform of [-s, s] (SOFTMAX) */
        ir_value *raw = y, *bin_idx = NULL;
        if (binary) {
            bin_idx = reshape(x, cast(x, op2(x, OP_Greater, raw, c_f32(x, 0.0f)),
                                      KILN_DTYPE_INT64), 1, (int64_t[]){-1});
            if (!strcmp(post, "SOFTMAX")) {
                ir_node *cc = emit(x, OP_Concat, 2, (ir_value *[]){op1(x, OP_Neg, y), y}, 1);
                if (cc && !ir_edit_set_int(cc, "axis", 1)) x->oom = true;
                y = out0(cc);
            }
        }
        if (!strcmp(post, "LOGISTIC")) y = op1(x, OP_Sigmoid, y);
        else if (!strcmp(post, "SOFTMAX")) {
            ir_node *s = emit(x, OP_Softmax, 1, &y, 1);
            if (s && !ir_edit_set_int(s, "axis", 1)) x->oom = true;
            y = out0(s);
        } else if (strcmp(post, "NONE"))
            return fail(x, KILN_UNSUPPORTED, "post_transform must be NONE, LOGISTIC or "
                        "SOFTMAX");
        if (binary && strcmp(post, "SOFTMAX")) {
            ir_value *one_minus = op2(x, OP_Sub, c_f32(x, 1.0f), y);
            ir_node *cc = emit(x, OP_Concat, 2, (ir_value *[]){one_minus, y}, 1);
            if (cc && !ir_edit_set_int(cc, "axis", 1)) x->oom = true;
            y = out0(cc);
        }
        if (cls) {
            /* the scores value becomes output 1 before the label reads it */
            if (y && x->src->n_out > 1) {
                take(x, y->producer, 0, 1);
                y = x->src->out[1];
            }
            if (bin_idx) {
                ir_value *lab = op2(x, OP_Gather, c_i64s(x, nl, labels), bin_idx);
                if (lab) take(x, lab->producer, 0, 0);
                return 0;
            }
            ir_node *am = emit(x, OP_ArgMax, 1, &y, 1);
            if (am && (!ir_edit_set_int(am, "axis", 1) || !ir_edit_set_int(am, "keepdims", 0)))
                x->oom = true;
            ir_value *lab = op2(x, OP_Gather, c_i64s(x, nl, labels), out0(am));
            if (lab) take(x, lab->producer, 0, 0);
            return 0;
        }
    }
    (void)n;
    if (y) take(x, y->producer, 0, 0);
    return 0;
}

static ir_value *where(cx *x, ir_value *cond, ir_value *a, ir_value *b) {
    ir_value *in[3] = {cond, a, b};
    return out0(emit(x, OP_Where, 3, in, 1));
}

/* The numeric keys, values or default of a LabelEncoder: the list
** attribute (ints or floats) or the opset-4 tensor attribute; NULL with
** *str set when only the string form is given. */
static ir_value *le_const(cx *x, const char *base, bool scalar, bool *str) {
    char b[48];
    snprintf(b, sizeof b, "%s_tensor", base);
    const kiln_tensor *t = ir_attr_tensor(x->src, b);
    if (t) {
        if (!dtype_is_numeric(t->dtype)) {
            *str = true;
            return NULL;
        }
        kiln_tensor *c = NULL;
        if (tensor_clone(t, &c) != KILN_OK) {
            x->oom = true;
            return NULL;
        }
        if (scalar && tensor_numel(c) == 1) c->rank = 0; /* one value, [1] or [] */
        return konst(x, c);
    }
    int n = 0;
    if (scalar) {
        snprintf(b, sizeof b, "%s_float", base);
        if (ir_attr_find(x->src, b)) return c_f32(x, ir_attr_float(x->src, b, -0.0f));
        snprintf(b, sizeof b, "%s_int64", base);
        if (ir_attr_find(x->src, b)) return c_i64(x, ir_attr_int(x->src, b, -1));
        snprintf(b, sizeof b, "%s_string", base);
        *str = ir_attr_find(x->src, b) != NULL;
        return NULL;
    }
    snprintf(b, sizeof b, "%s_floats", base);
    const float *f = ir_attr_floats(x->src, b, &n);
    if (f) return c_f32s(x, 1, (int64_t[]){n}, f);
    snprintf(b, sizeof b, "%s_int64s", base);
    const int64_t *iv = ir_attr_ints(x->src, b, &n);
    if (iv) return c_i64s(x, n, iv);
    snprintf(b, sizeof b, "%s_strings", base);
    *str = ir_attr_find(x->src, b) != NULL;
    return NULL;
}

/* OneHotEncoder, Imputer, FeatureVectorizer and numeric LabelEncoder. */
static int x_ml_more(cx *x) {
    const char *t = x->src->op_type;
    ir_value *v = in_at(x, 0), *y = NULL;
    if (!known_rank(v) || v->type.dtype == KILN_DTYPE_UNDEFINED) return NEED_TYPES;
    kiln_dtype dt = v->type.dtype;
    if (!strcmp(t, "OneHotEncoder")) {
        int nc = 0;
        const int64_t *cats = ir_attr_ints(x->src, "cats_int64s", &nc);
        if (ir_attr_find(x->src, "cats_strings"))
            return fail(x, KILN_UNSUPPORTED, "string categories (cats_strings) are not "
                        "supported: Kiln runs numeric tensors only");
        if (!cats || nc < 1) return fail(x, KILN_INVALID_MODEL, "needs cats_int64s");
        /* zeros=0 asks for an error on an unseen category; Kiln writes a
        ** row of zeros for it either way (no data-dependent errors) */
        ir_value *xi = dt == KILN_DTYPE_INT64 ? v : cast(x, v, KILN_DTYPE_INT64);
        ir_value *eq = op2(x, OP_Equal, unsqueeze(x, xi, 1, (int64_t[]){-1}),
                           c_i64s(x, nc, cats));
        y = cast(x, eq, KILN_DTYPE_FLOAT32);
    } else if (!strcmp(t, "Imputer")) {
        int ni = 0;
        ir_value *imp, *cond;
        if (dtype_is_float(dt)) {
            const float *iv = ir_attr_floats(x->src, "imputed_value_floats", &ni);
            float r = ir_attr_float(x->src, "replaced_value_float", 0.0f);
            if (!iv || ni < 1) return fail(x, KILN_INVALID_MODEL, "needs imputed_value_floats");
            imp = c_f32s(x, 1, (int64_t[]){ni}, iv);
            if (dt != KILN_DTYPE_FLOAT32) imp = cast(x, imp, dt);
            cond = isnan(r) ? op1(x, OP_IsNaN, v) : op2(x, OP_Equal, v, c_scalar(x, dt, r));
        } else if (dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_INT32) {
            const int64_t *iv = ir_attr_ints(x->src, "imputed_value_int64s", &ni);
            int64_t r = ir_attr_int(x->src, "replaced_value_int64", 0);
            if (!iv || ni < 1) return fail(x, KILN_INVALID_MODEL, "needs imputed_value_int64s");
            imp = c_i64s(x, ni, iv);
            if (dt != KILN_DTYPE_INT64) imp = cast(x, imp, dt);
            cond = op2(x, OP_Equal, v, c_scalar(x, dt, (double)r));
        } else {
            return fail(x, KILN_UNSUPPORTED, "X must be a float or integer tensor");
        }
        y = where(x, cond, imp, v);
    } else if (!strcmp(t, "FeatureVectorizer")) {
        int nd = 0, n = x->src->n_in;
        const int64_t *dims = ir_attr_ints(x->src, "inputdimensions", &nd);
        if (!dims || nd != n || n > 1024)
            return fail(x, KILN_INVALID_MODEL, "inputdimensions needs one entry per input");
        ir_value *parts[1024];
        for (int i = 0; i < n; i++) {
            ir_value *p = in_at(x, i);
            if (!p) return fail(x, KILN_INVALID_MODEL, "every input is required");
            if (!known_rank(p) || p->type.dtype == KILN_DTYPE_UNDEFINED) return NEED_TYPES;
            int64_t last = p->type.rank ? p->type.dims[p->type.rank - 1] : 1;
            if (dims[i] < 1 || (last >= 0 && last != dims[i]))
                return fail(x, KILN_UNSUPPORTED, "an input's feature count differs from its "
                            "inputdimensions entry (padding or truncating is not supported)");
            parts[i] = reshape(x, as_float(x, p), 2, (int64_t[]){-1, dims[i]});
        }
        ir_node *c = emit(x, OP_Concat, n, parts, 1);
        if (c && !ir_edit_set_int(c, "axis", 1)) x->oom = true;
        y = out0(c);
    } else { /* LabelEncoder */
        bool str = false;
        ir_value *keys = le_const(x, "keys", false, &str);
        ir_value *vals = str ? NULL : le_const(x, "values", false, &str);
        ir_value *def = str ? NULL : le_const(x, "default", true, &str);
        if (str || dt == KILN_DTYPE_STRING)
            return fail(x, KILN_UNSUPPORTED, "string keys or values are not supported: Kiln "
                        "runs numeric tensors only");
        if (x->oom) return 0;
        if (!keys || !vals) return fail(x, KILN_INVALID_MODEL, "needs keys and values");
        if (!def) def = c_scalar(x, vals->type.dtype,
                                 dtype_is_float(vals->type.dtype) ? -0.0 : -1.0);
        else if (def->type.dtype != vals->type.dtype) def = cast(x, def, vals->type.dtype);
        if (keys->type.dtype != dt) v = cast(x, v, keys->type.dtype);
        if (keys->type.rank != 1 || vals->type.rank != 1 ||
            keys->type.dims[0] != vals->type.dims[0] || keys->type.dims[0] < 1)
            return fail(x, KILN_INVALID_MODEL, "keys and values must be lists of one length");
        /* [..., K] matches; the first matching key's value, else the default */
        ir_value *eq = cast(x, op2(x, OP_Equal, unsqueeze(x, v, 1, (int64_t[]){-1}), keys),
                            KILN_DTYPE_INT32);
        ir_node *am = emit(x, OP_ArgMax, 1, &eq, 1);
        if (am && (!ir_edit_set_int(am, "axis", -1) || !ir_edit_set_int(am, "keepdims", 0)))
            x->oom = true;
        ir_value *found = cast(x, reduce(x, OP_ReduceMax, eq, -1, false), KILN_DTYPE_BOOL);
        y = where(x, found, op2(x, OP_Gather, vals, out0(am)), def);
    }
    if (y) take(x, y->producer, 0, 0);
    return 0;
}

/* ------------------------------------------------- ai.onnx.preview FlexAttention */

/* s through a FlexAttention modifier subgraph (one rank-4 input, one output
** of its shape), run as the body of a one-step Scan over s[None]. */
static ir_value *flex_mod(cx *x, ir_value *s, const char *name, int *st) {
    const ir_attr *a = ir_attr_find(x->src, name);
    if (!a || !s) return s;
    if (a->type != IR_ATTR_GRAPH || !a->g || a->g->n_inputs != 1 || a->g->n_outputs != 1) {
        *st = fail(x, KILN_INVALID_MODEL, "score_mod/prob_mod must be a graph of one input "
                   "and one output");
        return NULL;
    }
    if (a->g->n_captures) {
        *st = fail(x, KILN_UNSUPPORTED, "a score_mod/prob_mod that reads values of the outer "
                   "graph is not supported");
        return NULL;
    }
    ir_value *u = unsqueeze(x, s, 1, (int64_t[]){0});
    ir_node *scan = emit(x, OP_Scan, 1, &u, 1);
    if (scan && (!ir_edit_set_int(scan, "num_scan_inputs", 1) ||
                 !ir_edit_set_graph(scan, "body", a->g)))
        x->oom = true;
    ir_value *y = out0(scan);
    if (x->opset >= 13) return op2(x, OP_Squeeze, y, c_i64s(x, 1, (int64_t[]){0}));
    ir_node *sq = emit(x, OP_Squeeze, 1, &y, 1);
    if (sq && !ir_edit_set_ints(sq, "axes", (int64_t[]){0}, 1)) x->oom = true;
    return out0(sq);
}

/* K or V [B, Hkv, S, E] repeated to [B, Hq, S, E] (query head h reads kv
** head h / (Hq / Hkv)). */
static ir_value *flex_repeat(cx *x, ir_value *v, int64_t hq, int64_t hkv, int64_t e) {
    if (hq == hkv) return v;
    ir_value *u = unsqueeze(x, v, 1, (int64_t[]){2});
    ir_value *t = op2(x, OP_Tile, u, c_i64s(x, 5, (int64_t[]){1, 1, hq / hkv, 1, 1}));
    return reshape(x, t, 4, (int64_t[]){0, hq, -1, e});
}

static int x_flex_attention(cx *x) {
    ir_value *q = in_at(x, 0), *k = in_at(x, 1), *v = in_at(x, 2);
    if (!known_rank(q) || !known_rank(k) || !known_rank(v) ||
        q->type.dtype == KILN_DTYPE_UNDEFINED)
        return NEED_TYPES;
    if (q->type.rank != 4 || k->type.rank != 4 || v->type.rank != 4)
        return fail(x, KILN_INVALID_MODEL, "Q, K and V must have rank 4");
    int64_t hq = q->type.dims[1], hkv = k->type.dims[1], e = q->type.dims[3];
    int64_t ek = k->type.dims[3], ev = v->type.dims[3];
    if (hq < 1 || hkv < 1 || e < 1 || ek < 1 || ev < 1)
        return fail(x, KILN_UNSUPPORTED, "Kiln needs FlexAttention's head counts and head "
                    "sizes known when the model is read");
    if (hq % hkv || v->type.dims[1] != hkv)
        return fail(x, KILN_INVALID_MODEL, "q_num_heads must be a multiple of kv_num_heads");
    kiln_dtype dt = q->type.dtype;
    int64_t sp = ir_attr_int(x->src, "softmax_precision",
                             dt == KILN_DTYPE_FLOAT64 ? KILN_DTYPE_FLOAT64 : KILN_DTYPE_FLOAT32);
    if (sp != KILN_DTYPE_FLOAT32 && sp != KILN_DTYPE_FLOAT64 && sp != KILN_DTYPE_FLOAT16 &&
        sp != KILN_DTYPE_BFLOAT16)
        return fail(x, KILN_INVALID_MODEL, "softmax_precision must be a float type");
    if (sp != dt) {
        q = cast(x, q, (kiln_dtype)sp);
        k = cast(x, k, (kiln_dtype)sp);
        v = cast(x, v, (kiln_dtype)sp);
    }
    k = flex_repeat(x, k, hq, hkv, ek);
    v = flex_repeat(x, v, hq, hkv, ev);
    float scale = ir_attr_float(x->src, "scale", 1.0f / sqrtf((float)e));
    ir_value *s = op2(x, OP_MatMul, q, transpose(x, k, 4, (int64_t[]){0, 1, 3, 2}));
    s = op2(x, OP_Mul, s, c_scalar(x, (kiln_dtype)sp, scale));
    int st = 0;
    s = flex_mod(x, s, "score_mod", &st);
    if (st) return st;
    ir_node *sm = emit(x, OP_Softmax, 1, &s, 1);
    if (sm && !ir_edit_set_int(sm, "axis", 3)) x->oom = true;
    ir_value *p = flex_mod(x, out0(sm), "prob_mod", &st);
    if (st) return st;
    ir_value *y = op2(x, OP_MatMul, p, v);
    if (sp != dt) y = cast(x, y, dt);
    if (y) take(x, y->producer, 0, 0);
    return 0;
}

/* ------------------------------------- ai.onnx.preview.training optimizers */

/* v becomes the node's output k now, so later consumers read that value. */
static ir_value *take_now(cx *x, ir_value *v, int k) {
    if (!v || k >= x->src->n_out) return v;
    take(x, v->producer, 0, k);
    return x->src->out[k];
}

/* One step of Adagrad, Momentum (standard or nesterov) or Adam for each of
** the n tensors: inputs R, T, then X[n], G[n] and the state(s) [n]; outputs
** X'[n] then the new state(s) [n], following the ONNX operator definitions. */
static int x_training(cx *x) {
    const char *t = x->src->op_type;
    bool adam = !strcmp(t, "Adam"), mom = !strcmp(t, "Momentum");
    int groups = adam ? 4 : 3, n_in = x->src->n_in;
    if (n_in < 2 + groups || (n_in - 2) % groups)
        return fail(x, KILN_INVALID_MODEL, "inputs must be R, T and groups of X, G and state");
    int n = (n_in - 2) / groups;
    if (x->src->n_out > (groups - 1) * n)
        return fail(x, KILN_INVALID_MODEL, "too many outputs");
    ir_value *R = in_at(x, 0), *T = in_at(x, 1);
    if (R->type.dtype == KILN_DTYPE_UNDEFINED || T->type.dtype == KILN_DTYPE_UNDEFINED)
        return NEED_TYPES;
    /* The spec's R is a float scalar and T an int64 count; anything else
    ** (a complex T made the constant fill below spin, found by the reader
    ** fuzzer) is refused by name. */
    if (!dtype_is_float(R->type.dtype) || !dtype_is_int(T->type.dtype))
        return (int)kiln_error(KILN_INVALID_MODEL, "%s: R must be a float tensor and T an "
                               "integer one (got %s and %s)", x->lab,
                               kiln_dtype_name(R->type.dtype), kiln_dtype_name(T->type.dtype));
    float norm = ir_attr_float(x->src, "norm_coefficient", 0.0f);
    float eps = ir_attr_float(x->src, "epsilon", adam ? 1e-6f : 0.0f);
    float alpha = ir_attr_float(x->src, "alpha", adam ? 0.9f : 0.0f);
    float beta = ir_attr_float(x->src, "beta", adam ? 0.999f : 0.0f);
    float decay = ir_attr_float(x->src, "decay_factor", 0.0f);
    float post = ir_attr_float(x->src, "norm_coefficient_post", 0.0f);
    bool nesterov = mom && !strcmp(ir_attr_str(x->src, "mode", "standard"), "nesterov");
    if (mom && !nesterov && strcmp(ir_attr_str(x->src, "mode", "standard"), "standard"))
        return fail(x, KILN_INVALID_MODEL, "mode must be standard or nesterov");
    ir_value *pos = op2(x, OP_Greater, T, c_scalar(x, T->type.dtype, 0));
    for (int i = 0; i < n; i++) {
        ir_value *X = in_at(x, 2 + i), *G = in_at(x, 2 + n + i), *S = in_at(x, 2 + 2 * n + i);
        ir_value *S2 = adam ? in_at(x, 2 + 3 * n + i) : NULL;
        if (!X || !G || !S || (adam && !S2))
            return fail(x, KILN_INVALID_MODEL, "every X, G and state input is required");
        kiln_dtype dt = X->type.dtype;
        if (!dtype_is_float(dt)) return NEED_TYPES;
#define K(v) c_scalar(x, dt, (double)(v))
        ir_value *r = R->type.dtype == dt ? R : cast(x, R, dt);
        ir_value *g = op2(x, OP_Add, op2(x, OP_Mul, K(norm), X), G);
        ir_value *xn, *s1;
        if (adam) {
            ir_value *s2;
            s1 = op2(x, OP_Add, op2(x, OP_Mul, K(alpha), S), op2(x, OP_Mul, K(1.0 - alpha), g));
            s1 = take_now(x, s1, n + i);
            s2 = op2(x, OP_Add, op2(x, OP_Mul, K(beta), S2),
                     op2(x, OP_Mul, K(1.0 - beta), op2(x, OP_Mul, g, g)));
            s2 = take_now(x, s2, 2 * n + i);
            ir_value *hs = op2(x, OP_Add, op1(x, OP_Sqrt, s2), K(eps));
            ir_value *tf = cast(x, T, dt);
            ir_value *bc = op1(x, OP_Sqrt, op2(x, OP_Sub, K(1), op2(x, OP_Pow, K(beta), tf)));
            ir_value *ac = op2(x, OP_Sub, K(1), op2(x, OP_Pow, K(alpha), tf));
            ir_value *radj = out0(emit(x, OP_Where, 3, (ir_value *[]){
                pos, op2(x, OP_Div, op2(x, OP_Mul, r, bc), ac), r}, 1));
            xn = op2(x, OP_Sub, X, op2(x, OP_Mul, radj, op2(x, OP_Div, s1, hs)));
            xn = op2(x, OP_Mul, K(1.0 - post), xn);
        } else if (mom) {
            ir_value *badj = out0(emit(x, OP_Where, 3, (ir_value *[]){pos, K(beta), K(1)}, 1));
            s1 = op2(x, OP_Add, op2(x, OP_Mul, K(alpha), S), op2(x, OP_Mul, badj, g));
            s1 = take_now(x, s1, n + i);
            ir_value *step = nesterov ? op2(x, OP_Add, g, op2(x, OP_Mul, K(alpha), s1)) : s1;
            xn = op2(x, OP_Sub, X, op2(x, OP_Mul, r, step));
        } else { /* Adagrad */
            ir_value *rr = op2(x, OP_Div, r, op2(x, OP_Add, K(1),
                                                 op2(x, OP_Mul, cast(x, T, dt), K(decay))));
            s1 = op2(x, OP_Add, S, op2(x, OP_Mul, g, g));
            s1 = take_now(x, s1, n + i);
            ir_value *hs = op2(x, OP_Add, op1(x, OP_Sqrt, s1), K(eps));
            xn = op2(x, OP_Sub, X, op2(x, OP_Div, op2(x, OP_Mul, rr, g), hs));
        }
#undef K
        if (xn) take(x, xn->producer, 0, i);
    }
    return 0;
}

static int expand_node(cx *x) {
    const char *t = x->src->op_type;
    ir_value *y;
    if (!strcmp(x->src->domain, "ai.onnx.preview")) return x_flex_attention(x);
    if (!strcmp(x->src->domain, "ai.onnx.preview.training")) return x_training(x);
    if (!strcmp(x->src->domain, "ai.onnx.ml")) {
        if (!strcmp(t, "OneHotEncoder") || !strcmp(t, "Imputer") ||
            !strcmp(t, "FeatureVectorizer") || !strcmp(t, "LabelEncoder"))
            return x_ml_more(x);
        return x_ml(x);
    }
    if (!strcmp(t, "QLinearAdd")) return x_qlinear_binary(x, OP_Add);
    if (!strcmp(t, "QLinearMul")) return x_qlinear_binary(x, OP_Mul);
    if (!strcmp(t, "QLinearSigmoid")) return x_qlinear_unary(x, OP_Sigmoid);
    if (!strcmp(t, "QLinearLeakyRelu")) return x_qlinear_unary(x, OP_LeakyRelu);
    if (!strcmp(t, "QLinearConcat")) return x_qlinear_concat(x);
    if (!strcmp(t, "QLinearSoftmax")) return x_qlinear_softmax(x);
    if (!strcmp(t, "QLinearAveragePool")) return x_qlinear_pool(x, OP_AveragePool);
    if (!strcmp(t, "QLinearGlobalAveragePool")) return x_qlinear_pool(x, OP_GlobalAveragePool);
    if (!strcmp(t, "QGemm")) return x_qgemm(x);
    if (!strcmp(t, "DynamicQuantizeMatMul")) return x_dyn_quant_matmul(x);
    if (!strcmp(t, "MatMulIntegerToFloat")) return x_matmul_int_to_float(x);
    if (!strcmp(t, "MatMulNBits")) return x_matmul_nbits(x);
    if (!strcmp(t, "DynamicQuantizeLSTM")) return x_dyn_quant_lstm(x);
    if (!strcmp(t, "SkipLayerNormalization")) return x_skip_layer_norm(x, false);
    if (!strcmp(t, "SkipSimplifiedLayerNormalization")) return x_skip_layer_norm(x, true);
    if (!strcmp(t, "EmbedLayerNormalization")) return x_embed_layer_norm(x);
    if (!strcmp(t, "Attention")) return x_attention(x);
    if (!strcmp(t, "MultiHeadAttention")) return x_mha(x);
    if (!strcmp(t, "RotaryEmbedding")) return x_rotary(x);
    if (!strcmp(t, "FusedMatMul")) return x_fused_matmul(x);
    if (!strcmp(t, "Gelu")) {
        take(x, gelu(x, in_at(x, 0), false), 0, 0);
        return 0;
    }
    if (!strcmp(t, "BiasGelu") || !strcmp(t, "FastGelu")) {
        y = in_at(x, 1) ? op2(x, OP_Add, in_at(x, 0), in_at(x, 1)) : in_at(x, 0);
        take(x, gelu(x, y, t[0] == 'F'), 0, 0);
        return 0;
    }
    if (!strcmp(t, "QuickGelu")) {
        float alpha = ir_attr_float(x->src, "alpha", 1.702f);
        y = op2(x, OP_Mul, in_at(x, 0), op1(x, OP_Sigmoid,
                                            op2(x, OP_Mul, in_at(x, 0), c_f32(x, alpha))));
        if (y) take(x, y->producer, 0, 0);
        return 0;
    }
    if (!strcmp(t, "BiasAdd")) {
        y = op2(x, OP_Add, op2(x, OP_Add, in_at(x, 0), in_at(x, 1)), in_at(x, 2));
        if (y) take(x, y->producer, 0, 0);
        return 0;
    }
    return fail(x, KILN_UNSUPPORTED, "no expansion");
}

/* Minimal arity per op (inputs that must be present). */
static int min_inputs(const char *t) {
    static const struct { const char *op; int n; } k[] = {
        {"QLinearAdd", 7}, {"QLinearMul", 7}, {"QLinearSigmoid", 4},
        {"QLinearLeakyRelu", 4}, {"QLinearAveragePool", 4},
        {"QLinearGlobalAveragePool", 5}, {"QGemm", 6}, {"DynamicQuantizeMatMul", 3},
        {"MatMulIntegerToFloat", 4}, {"MatMulNBits", 3}, {"DynamicQuantizeLSTM", 3}, {"SkipLayerNormalization", 3},
        {"SkipSimplifiedLayerNormalization", 3}, {"EmbedLayerNormalization", 7},
        {"BiasGelu", 2}, {"FastGelu", 1}, {"QuickGelu", 1}, {"Gelu", 1}, {"BiasAdd", 3},
        {"FusedMatMul", 2}, {"Attention", 2}, {"MultiHeadAttention", 1},
        {"RotaryEmbedding", 4}, {"QLinearConcat", 5}, {"QLinearSoftmax", 4}, {"Binarizer", 1},
        {"ArrayFeatureExtractor", 2}, {"Scaler", 1}, {"Normalizer", 1},
        {"LinearRegressor", 1}, {"LinearClassifier", 1}, {"OneHotEncoder", 1},
        {"Imputer", 1}, {"FeatureVectorizer", 1}, {"LabelEncoder", 1}, {"FlexAttention", 3},
        {"Adagrad", 5}, {"Momentum", 5}, {"Adam", 6}};
    for (size_t i = 0; i < KILN_ARRAY_LEN(k); i++)
        if (!strcmp(k[i].op, t)) return k[i].n;
    return 0;
}

static kiln_status reinfer(ir_graph *g) {
    kiln_status st = ir_graph_compact(g);
    return st ? st : ir_graph_infer(g);
}

kiln_status onnx_contrib_expand(ir_graph *g, int64_t opset) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !domain_is_plain_onnx(g->nodes[i]->domain) && !op_is_ml(g->nodes[i]->op);
    if (!n) return KILN_OK;
    ir_node **todo = malloc((size_t)n * sizeof *todo);
    if (!todo) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    n = 0;
    for (int i = 0; i < g->n_nodes; i++) /* topological order */
        if (!domain_is_plain_onnx(g->nodes[i]->domain) && !op_is_ml(g->nodes[i]->op))
            todo[n++] = g->nodes[i];
    kiln_status st = ir_graph_infer(g);
    bool fresh = true; /* types are up to date */
    for (int i = 0; i < n && !st; i++) {
        cx x = {g, todo[i], opset, false, {0}};
        ir_node_label(x.src, x.lab, sizeof x.lab);
        for (int k = 0; k < min_inputs(x.src->op_type); k++)
            if (!in_at(&x, k)) {
                st = kiln_error(KILN_INVALID_MODEL, "%s: input %d is required", x.lab, k);
                break;
            }
        if (st) break;
        int r = expand_node(&x);
        if (r == NEED_TYPES && !fresh) {
            if ((st = reinfer(g))) break;
            fresh = true;
            r = expand_node(&x);
        }
        if (r == NEED_TYPES)
            st = kiln_error(KILN_UNSUPPORTED, "%s: the shapes this operator needs (a "
                            "weight's width or an input's rank) are unknown", x.lab);
        else if (r)
            st = (kiln_status)r; /* kiln_error already set the message */
        else if (x.oom)
            st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        else {
            ir_edit_kill(x.src);
            fresh = false;
        }
    }
    free(todo);
    if (!st) st = ir_graph_compact(g);
    return st;
}
