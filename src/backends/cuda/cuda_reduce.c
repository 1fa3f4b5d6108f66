/* cuda_reduce.c: CUDA tactics of the reduce family: Reduce* (axes from the
** attribute or a constant input; a runtime axes tensor in the _rtaxes
** tactics, which read it on the host and so keep the run out of CUDA
** graphs), ArgMax/ArgMin, Softmax/LogSoftmax, on
** float32/float16/bfloat16. Kernels in kernels/reduce.cu. */
#include "cuda_kc.h"
#include "kernels/reduce_kernels.h"
#include "kernels/loss_kernels.h"

#include <string.h>

static int reduce_code(int op) {
    switch (op) {
    case OP_ReduceSum: return KR_SUM;
    case OP_ReduceMean: return KR_MEAN;
    case OP_ReduceMax: return KR_MAX;
    case OP_ReduceMin: return KR_MIN;
    case OP_ReduceProd: return KR_PROD;
    case OP_ReduceL1: return KR_L1;
    case OP_ReduceL2: return KR_L2;
    case OP_ReduceLogSum: return KR_LOGSUM;
    case OP_ReduceLogSumExp: return KR_LSE;
    case OP_ReduceSumSquare: return KR_SUMSQ;
    default: return 0;
    }
}

/* float32/float16/bfloat16, and float64 (summed in float64 like the rest) */
static bool red_dt(kiln_dtype t) { return kc_dt_float(t) || t == KILN_DTYPE_FLOAT64; }

static bool reduce_supports(const ir_node *n, const ir_type *const *in) {
    if (!reduce_code(n->op) || !kc_has_in(n, in, 0) || !red_dt(in[0]->dtype) ||
        !kc_rank_ok(in[0]))
        return false;
    if (n->n_in >= 2 && n->in[1]) {
        const kiln_tensor *a = kc_const_in(n, 1);
        if (!a || !dtype_is_int(a->dtype) || a->rank > 1) return false;
    }
    return true;
}

/* The same reductions with axes given as a runtime tensor: read on the
** host at run time (TACTIC_READS_PARAMS). */
static bool reduce_rt_supports(const ir_node *n, const ir_type *const *in) {
    return reduce_code(n->op) && kc_has_in(n, in, 0) && red_dt(in[0]->dtype) &&
           kc_rank_ok(in[0]) && cuda_param_runtime(n, in, 1, false);
}

/* Flags the reduced axes as the reference does; -1 via ref_fail. */
static int reduced_axes(ref_ctx *c, const kiln_tensor *x, bool *red) {
    const ir_node *n = c->node;
    bool noop = ir_attr_int(n, "noop_with_empty_axes", 0) != 0;
    int r = x->rank, na = 0;
    int64_t ax[KILN_MAX_RANK];
    if (ref_has(c, 1)) {
        int k = cuda_param_i64(c, 1, ax, KILN_MAX_RANK, "axes");
        if (k < 0) return -1;
        if (k > r) return ref_fail(c, "%d axes for rank %d", k, r);
        na = k;
    } else {
        int k;
        const int64_t *a = ir_attr_ints(n, "axes", &k);
        if (k > r) return ref_fail(c, "%d axes for rank %d", k, r);
        if (k) memcpy(ax, a, (size_t)k * sizeof *ax);
        na = k;
    }
    for (int i = 0; i < r; i++) red[i] = na == 0 && !noop;
    for (int k = 0; k < na; k++) {
        if (ax[k] < -r || ax[k] >= r)
            return ref_fail(c, "axis %lld out of range for rank %d", (long long)ax[k], r);
        int a = (int)(ax[k] < 0 ? ax[k] + r : ax[k]);
        if (red[a]) return ref_fail(c, "axis %d repeated", a);
        red[a] = true;
    }
    return 0;
}

/* Appends dim d (size, stride) to a coalesced list, merging it into the
** previous entry when that one steps exactly over it. */
static void push_dim(int64_t *dims, int64_t *st, int *k, int64_t size, int64_t stride) {
    if (*k > 0 && st[*k - 1] == stride * size) {
        dims[*k - 1] *= size;
        st[*k - 1] = stride;
        return;
    }
    dims[*k] = size;
    st[*k] = stride;
    (*k)++;
}

static int reduce_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    bool red[KILN_MAX_RANK];
    if (reduced_axes(c, x, red)) return -1;
    if (x->rank > KC_MAX_RANK) return ref_fail(c, "rank %d is above the GPU kernel's", x->rank);
    kc_rgeom g;
    memset(&g, 0, sizeof g);
    int64_t st[KILN_MAX_RANK];
    shape_strides(x->rank, x->dims, st);
    g.nout = g.nred = 1;
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        if (red[d]) {
            push_dim(g.rdims, g.rst, &g.rrank, x->dims[d], st[d]);
            g.nred *= x->dims[d];
        } else {
            push_dim(g.kdims, g.kst, &g.krank, x->dims[d], st[d]);
            g.nout *= x->dims[d];
        }
    }
    if (g.nout != tensor_numel(y))
        return ref_fail(c, "the output has %lld elements, expected %lld",
                        (long long)tensor_numel(y), (long long)g.nout);
    return cuda_fail_if(c, kc_reduce(reduce_code(c->node->op), (int)x->dtype, &g, x->data,
                                     y->data, cuda_stream_of(c)),
                        c->node->op_type);
}

/* ------------------------------------------------------------ ArgMax/ArgMin */
static bool arg_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && kc_argext_dtype_ok((int)in[0]->dtype);
}

static int arg_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    int r = x->rank;
    if (axis < -r || axis >= r) return ref_fail(c, "axis out of range");
    int a = (int)(axis < 0 ? axis + r : axis);
    int64_t outer = shape_numel(a, x->dims), n = x->dims[a];
    int64_t inner = shape_numel(r - a - 1, x->dims + a + 1);
    if (tensor_numel(y) != outer * inner || y->dtype != KILN_DTYPE_INT64)
        return ref_fail(c, "unexpected output shape or type");
    if (outer * inner == 0) return 0;
    if (n == 0) return ref_fail(c, "cannot take an index over an empty axis");
    return cuda_fail_if(c, kc_argext(c->node->op == OP_ArgMax,
                                     ir_attr_int(c->node, "select_last_index", 0) != 0,
                                     (int)x->dtype, outer, n, inner, x->data, y->data,
                                     cuda_stream_of(c)),
                        c->node->op_type);
}

/* ------------------------------------------------------------ Softmax */
static bool softmax_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && kc_dt_float(in[0]->dtype);
}

static int softmax_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r || (axis == r && c->opset >= 13))
        return ref_fail(c, "axis out of range for rank %d", r);
    /* opset < 13 coerces to 2-D [outer, n] and normalizes all of n */
    int64_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (c->opset < 13 || i == axis) n *= x->dims[i];
        else inner *= x->dims[i];
    }
    if (tensor_numel(x) == 0) return 0;
    return cuda_fail_if(c, kc_softmax(c->node->op == OP_LogSoftmax, (int)x->dtype, outer, n,
                                      inner, x->data, c->out[0]->data, cuda_stream_of(c)),
                        c->node->op_type);
}

/* ------------------------------------------------------------ losses */
/* NegativeLogLikelihoodLoss, and SoftmaxCrossEntropyLoss as LogSoftmax over
** the class axis (into its log_prob output, or the workspace) then NLL. */
static bool loss_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || !kc_has_in(n, in, 1) || !kc_dt_float(in[0]->dtype) ||
        in[0]->rank < 2 ||
        (in[1]->dtype != KILN_DTYPE_INT64 && in[1]->dtype != KILN_DTYPE_INT32))
        return false;
    if (kc_has_in(n, in, 2) && in[2]->dtype != in[0]->dtype) return false;
    const char *rs = ir_attr_str(n, "reduction", "mean");
    return !strcmp(rs, "none") || !strcmp(rs, "sum") || !strcmp(rs, "mean");
}

static size_t loss_workspace(const ir_node *n, const ir_type *const *in) {
    if (n->op != OP_SoftmaxCrossEntropyLoss || !in[0] || in[0]->rank < 0) return 0;
    bool has_lp = n->n_out > 1 && n->out[1] &&
                  (n->out[1]->n_uses > 0 || (n->out[1]->flags & IR_VALUE_OUTPUT));
    if (has_lp) return 0;
    int64_t cnt = shape_numel(in[0]->rank, in[0]->dims);
    return cnt > 0 ? (size_t)cnt * kiln_dtype_size(in[0]->dtype) : 0;
}

static int loss_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0], *tg = c->in[1];
    const kiln_tensor *w = ref_has(c, 2) ? c->in[2] : NULL;
    const char *rs = ir_attr_str(n, "reduction", "mean");
    int red = !strcmp(rs, "none") ? 0 : !strcmp(rs, "sum") ? 1 : 2;
    const ir_attr *iia = ir_attr_find(n, "ignore_index");
    if (x->rank < 2) return ref_fail(c, "input needs rank >= 2");
    int64_t N = x->dims[0], C = x->dims[1], D = shape_numel(x->rank - 2, x->dims + 2);
    if (tensor_numel(tg) != N * D) return ref_fail(c, "target does not match input");
    if (w && tensor_numel(w) != C) return ref_fail(c, "weight must have C entries");
    if (tg->dtype != KILN_DTYPE_INT64 && tg->dtype != KILN_DTYPE_INT32)
        return ref_fail(c, "target must be int32 or int64");
    const void *lp = x->data;
    cudaStream_t st = cuda_stream_of(c);
    if (n->op == OP_SoftmaxCrossEntropyLoss) {
        bool to_out = c->n_out > 1 && c->out[1] && c->out[1]->data;
        void *dst = to_out ? c->out[1]->data : c->ws;
        if (tensor_numel(x) > 0) {
            if (to_out && c->out[1]->nbytes != x->nbytes)
                return ref_fail(c, "internal: log_prob output size");
            if (!to_out && (!c->ws || c->ws_size < x->nbytes))
                return ref_fail(c, "workspace holds %zu bytes, %zu needed", c->ws_size,
                                x->nbytes);
            if (cuda_fail_if(c, kc_softmax(1, (int)x->dtype, N, C, D, x->data, dst, st),
                             "SoftmaxCrossEntropyLoss"))
                return -1;
        }
        lp = dst;
    }
    return cuda_fail_if(c, kc_nll((int)x->dtype, lp, tg->data, tg->dtype == KILN_DTYPE_INT64,
                                  w ? w->data : NULL, N, C, D, iia != NULL, iia ? iia->i : 0, red,
                                  c->out[0]->data, st),
                        n->op_type);
}

/* ------------------------------------------------------------ CumSum */
static bool cum_dt_ok(kiln_dtype t) {
    return kc_dt_float(t) || t == KILN_DTYPE_FLOAT64 || kc_dt_int(t);
}

static bool cum_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || !cum_dt_ok(in[0]->dtype) || n->n_in < 2 || !n->in[1]) return false;
    const kiln_tensor *a = kc_const_in(n, 1);
    return a && dtype_is_int(a->dtype) && tensor_numel(a) == 1;
}

/* The axis as a runtime scalar (TACTIC_READS_PARAMS). */
static bool cum_rt_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && cum_dt_ok(in[0]->dtype) && cuda_param_runtime(n, in, 1, false);
}

static int cum_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int64_t a;
    int na = cuda_param_i64(c, 1, &a, 1, "axis");
    if (na < 0) return -1;
    if (na != 1) return ref_fail(c, "axis must be one integer");
    int r = x->rank, rr = r ? r : 1;
    if (a < -rr || a >= rr) return ref_fail(c, "axis %lld is out of range", (long long)a);
    int ax = (int)(a < 0 ? a + rr : a);
    int64_t outer = r ? shape_numel(ax, x->dims) : 1, L = r ? x->dims[ax] : 1;
    int64_t inner = r ? shape_numel(r - ax - 1, x->dims + ax + 1) : 1;
    return cuda_fail_if(c, kc_cum(c->node->op == OP_CumProd,
                                  ir_attr_int(c->node, "exclusive", 0) != 0,
                                  ir_attr_int(c->node, "reverse", 0) != 0, (int)x->dtype, x->data,
                                  c->out[0]->data, outer, L, inner, cuda_stream_of(c)),
                        c->node->op_type);
}

/* ------------------------------------------------- Hardmax, LpNormalization */
static bool hardmax_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && kc_dt_float(in[0]->dtype) && in[0]->rank >= 0;
}

static int hardmax_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r || (axis == r && c->opset >= 13))
        return ref_fail(c, "axis out of range for rank %d", r);
    /* opset < 13 coerces to 2-D [outer, n], as Softmax */
    int64_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (c->opset < 13 || i == axis) n *= x->dims[i];
        else inner *= x->dims[i];
    }
    return cuda_fail_if(c, kc_hardmax((int)x->dtype, x->data, c->out[0]->data, outer, n, inner,
                                      cuda_stream_of(c)),
                        "Hardmax");
}

static bool lpnorm_supports(const ir_node *n, const ir_type *const *in) {
    int64_t p = ir_attr_int(n, "p", 2);
    return kc_has_in(n, in, 0) && (kc_dt_float(in[0]->dtype) || in[0]->dtype == KILN_DTYPE_FLOAT64) &&
           in[0]->rank >= 1 && (p == 1 || p == 2);
}

static int lpnorm_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", -1), p = ir_attr_int(c->node, "p", 2);
    if (r < 1 || axis < -r || axis >= r)
        return ref_fail(c, "axis %lld is out of range for rank %d", (long long)axis, r);
    if (p != 1 && p != 2) return ref_fail(c, "p must be 1 or 2");
    int ax = (int)(axis < 0 ? axis + r : axis);
    return cuda_fail_if(c, kc_lpnorm((int)p, (int)x->dtype, x->data, c->out[0]->data,
                                     shape_numel(ax, x->dims), x->dims[ax],
                                     shape_numel(r - ax - 1, x->dims + ax + 1), cuda_stream_of(c)),
                        "LpNormalization");
}

/* ------------------------------------------------------------ TopK */
/* K is the output's length on the axis (inference read the K input), so
** the K input is never read here. */
static bool topk_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || in[0]->rank < 1 || n->n_out != 2) return false;
    kiln_dtype t = in[0]->dtype;
    size_t es = kiln_dtype_size(t);
    /* sorted=0 allows any order: the sorted one is among them */
    return (kc_dt_float(t) || t == KILN_DTYPE_FLOAT64 || kc_dt_int(t)) &&
           (es == 1 || es == 2 || es == 4 || es == 8);
}

static int topk_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *yv = c->out[0], *yi = c->out[1];
    int a = 0, r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", -1);
    if (r < 1 || axis < -r || axis >= r) return ref_fail(c, "TopK axis is out of range");
    a = (int)(axis < 0 ? axis + r : axis);
    if (yv->rank != r || yi->dtype != KILN_DTYPE_INT64)
        return ref_fail(c, "TopK output shape mismatch");
    int64_t L = x->dims[a], K = yv->dims[a];
    if (K < 0 || K > L) return ref_fail(c, "TopK K %lld is out of range [0, %lld]", (long long)K,
                                        (long long)L);
    return cuda_fail_if(c, kc_topk((int)x->dtype, (int)kiln_dtype_size(x->dtype),
                                   ir_attr_int(c->node, "largest", 1) != 0, x->data, yv->data,
                                   yi->data, shape_numel(a, x->dims), L, K,
                                   shape_numel(r - a - 1, x->dims + a + 1), cuda_stream_of(c)),
                        "TopK");
}

/* ------------------------------------------------- windows, EyeLike */
/* The window's length is the output's (inference read the size). */
static bool window_supports(const ir_node *n, const ir_type *const *in) {
    (void)in;
    if (n->n_out < 1 || !n->out[0]) return false;
    kiln_dtype t = n->out[0]->type.dtype;
    return kc_dt_float(t) || t == KILN_DTYPE_FLOAT64;
}

static int window_run(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    int kind = c->node->op == OP_HannWindow ? 0 : c->node->op == OP_HammingWindow ? 1 : 2;
    return cuda_fail_if(c, kc_window(kind, ir_attr_int(c->node, "periodic", 1) != 0,
                                     (int)y->dtype, y->data, tensor_numel(y), cuda_stream_of(c)),
                        c->node->op_type);
}

static bool eyelike_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || in[0]->rank != 2 || n->n_out < 1 || !n->out[0]) return false;
    kiln_dtype t = n->out[0]->type.dtype;
    return kc_dt_float(t) || t == KILN_DTYPE_FLOAT64 || kc_dt_int(t) || t == KILN_DTYPE_BOOL;
}

static int eyelike_run(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    if (y->rank != 2) return ref_fail(c, "internal: bad output");
    return cuda_fail_if(c, kc_eyelike((int)y->dtype, y->data, y->dims[0], y->dims[1],
                                      ir_attr_int(c->node, "k", 0), cuda_stream_of(c)),
                        "EyeLike");
}

/* ------------------------------------------------------------ tables */
#define RED(OP, NAME)                                                                   \
    static const kiln_tactic t_##OP = {"cuda_" NAME "_f64acc", OP_##OP, 0, KC_FLAGS,     \
                                       reduce_supports, NULL, reduce_run};
RED(ReduceSum, "reduce_sum") RED(ReduceMean, "reduce_mean") RED(ReduceMax, "reduce_max")
RED(ReduceMin, "reduce_min") RED(ReduceProd, "reduce_prod") RED(ReduceL1, "reduce_l1")
RED(ReduceL2, "reduce_l2") RED(ReduceLogSum, "reduce_log_sum")
RED(ReduceLogSumExp, "reduce_log_sum_exp") RED(ReduceSumSquare, "reduce_sum_square")
#undef RED
#define KC_FLAGS_RT (KC_FLAGS | TACTIC_READS_PARAMS)
#define RED(OP, NAME)                                                                   \
    static const kiln_tactic t_rt_##OP = {"cuda_" NAME "_f64acc_rtaxes", OP_##OP, 0,     \
                                          KC_FLAGS_RT, reduce_rt_supports, NULL, reduce_run};
RED(ReduceSum, "reduce_sum") RED(ReduceMean, "reduce_mean") RED(ReduceMax, "reduce_max")
RED(ReduceMin, "reduce_min") RED(ReduceProd, "reduce_prod") RED(ReduceL1, "reduce_l1")
RED(ReduceL2, "reduce_l2") RED(ReduceLogSum, "reduce_log_sum")
RED(ReduceLogSumExp, "reduce_log_sum_exp") RED(ReduceSumSquare, "reduce_sum_square")
#undef RED

static const kiln_tactic t_ArgMax = {"cuda_argmax_col", OP_ArgMax, 0, KC_FLAGS, arg_supports,
                                     NULL, arg_run};
static const kiln_tactic t_ArgMin = {"cuda_argmin_col", OP_ArgMin, 0, KC_FLAGS, arg_supports,
                                     NULL, arg_run};
static const kiln_tactic t_Softmax = {"cuda_softmax_rows", OP_Softmax, 0, KC_FLAGS_INPLACE,
                                      softmax_supports, NULL, softmax_run};
static const kiln_tactic t_LogSoftmax = {"cuda_log_softmax_rows", OP_LogSoftmax, 0,
                                         KC_FLAGS_INPLACE, softmax_supports, NULL,
                                         softmax_run};

static const kiln_tactic t_NLL = {"cuda_nll_loss", OP_NegativeLogLikelihoodLoss, 0, KC_FLAGS,
                                  loss_supports, loss_workspace, loss_run};
static const kiln_tactic t_SCE = {"cuda_softmax_ce_loss", OP_SoftmaxCrossEntropyLoss, 0,
                                  KC_FLAGS, loss_supports, loss_workspace, loss_run};

static const kiln_tactic t_CumSum = {"cuda_cumsum_lines", OP_CumSum, 0, KC_FLAGS, cum_supports,
                                     NULL, cum_run};
static const kiln_tactic t_CumProd = {"cuda_cumprod_lines", OP_CumProd, 0, KC_FLAGS,
                                      cum_supports, NULL, cum_run};
static const kiln_tactic t_CumSum_rt = {"cuda_cumsum_lines_rtaxis", OP_CumSum, 0, KC_FLAGS_RT,
                                        cum_rt_supports, NULL, cum_run};
static const kiln_tactic t_CumProd_rt = {"cuda_cumprod_lines_rtaxis", OP_CumProd, 0, KC_FLAGS_RT,
                                         cum_rt_supports, NULL, cum_run};

static const kiln_tactic t_Hardmax = {"cuda_hardmax_lines", OP_Hardmax, 0, KC_FLAGS,
                                      hardmax_supports, NULL, hardmax_run};
static const kiln_tactic t_LpNorm = {"cuda_lp_normalization_lines", OP_LpNormalization, 0,
                                     KC_FLAGS, lpnorm_supports, NULL, lpnorm_run};
static const kiln_tactic t_Hann = {"cuda_hann_window", OP_HannWindow, 0, KC_FLAGS,
                                   window_supports, NULL, window_run};
static const kiln_tactic t_Hamming = {"cuda_hamming_window", OP_HammingWindow, 0, KC_FLAGS,
                                      window_supports, NULL, window_run};
static const kiln_tactic t_Blackman = {"cuda_blackman_window", OP_BlackmanWindow, 0, KC_FLAGS,
                                       window_supports, NULL, window_run};
static const kiln_tactic t_TopK = {"cuda_topk_select_lines", OP_TopK, 0, KC_FLAGS, topk_supports,
                                   NULL, topk_run};
static const kiln_tactic t_EyeLike = {"cuda_eyelike", OP_EyeLike, 0, KC_FLAGS, eyelike_supports,
                                      NULL, eyelike_run};

const kiln_tactic *const cuda_tactics_reduce[] = {
    &t_NLL, &t_SCE, &t_Hardmax, &t_LpNorm, &t_Hann, &t_Hamming, &t_Blackman, &t_EyeLike, &t_TopK, &t_CumSum, &t_CumProd, &t_CumSum_rt, &t_CumProd_rt,
    &t_ReduceSum, &t_ReduceMean, &t_ReduceMax, &t_ReduceMin, &t_ReduceProd, &t_ReduceL1,
    &t_ReduceL2, &t_ReduceLogSum, &t_ReduceLogSumExp, &t_ReduceSumSquare,
    &t_rt_ReduceSum, &t_rt_ReduceMean, &t_rt_ReduceMax, &t_rt_ReduceMin, &t_rt_ReduceProd,
    &t_rt_ReduceL1, &t_rt_ReduceL2, &t_rt_ReduceLogSum, &t_rt_ReduceLogSumExp,
    &t_rt_ReduceSumSquare,
    &t_ArgMax, &t_ArgMin, &t_Softmax, &t_LogSoftmax,
    NULL,
};
