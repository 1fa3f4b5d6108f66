/* cuda_norm.c: CUDA tactics of the normalization family:
** LayerNormalization, RMSNormalization, InstanceNormalization,
** GroupNormalization (one block per row, float32 statistics) and inference
** BatchNormalization. Kernels in kernels/norm.cu. */
#include "cuda_kc.h"

#include <stdlib.h>
#include <string.h>
#include "kernels/norm_kernels.h"

/* Whether parameter p broadcasts against x only along x's trailing dims
** (the reference's `flat % numel` case), judged on build-time types: every
** dim from p's first non-1 on must equal x's. Unknown dims: no. */
/* KILN_CUDA_LN16=1: 16-bit rows of 256..2048 elements take the 16-byte
** warp kernel (norm.cu's k_rownorm_warp8) instead of the 8-byte one.
** Opt-in until it has run on a GPU: written in session 9, when no device
** was lent (tests/gpu/device/d7.sh times both on BERT; test_cuda_norm
** covers it when run with the variable set). Read at run or capture time. */
static int ln16_on(void) {
    const char *e = getenv("KILN_CUDA_LN16");
    return e && !strcmp(e, "1");
}

static bool trailing_param(const ir_type *p, const ir_type *x) {
    if (!kc_rank_ok(p) || !kc_rank_ok(x) || p->rank > x->rank) return false;
    int off = x->rank - p->rank, first = 0;
    while (first < p->rank && p->dims[first] == 1) first++;
    for (int k = first; k < p->rank; k++)
        if (p->dims[k] < 0 || p->dims[k] != x->dims[off + k]) return false;
    return true;
}

/* Same test on concrete tensors; pmod gets the parameter's element count. */
static int trailing_mod(ref_ctx *c, const kiln_tensor *p, const kiln_tensor *x,
                        const char *what, int64_t *pmod) {
    if (p->rank > x->rank) return ref_fail(c, "%s has more dims than the input", what);
    int off = x->rank - p->rank, first = 0;
    while (first < p->rank && p->dims[first] == 1) first++;
    for (int k = first; k < p->rank; k++)
        if (p->dims[k] != x->dims[off + k])
            return ref_fail(c, "%s does not broadcast along the input's trailing dims", what);
    int64_t m = tensor_numel(p);
    *pmod = m > 0 ? m : 1;
    return 0;
}

static bool out_float_or_absent(const ir_node *n, int i) {
    return i >= n->n_out || kc_dt_float(n->out[i]->type.dtype) ||
           n->out[i]->type.dtype == KILN_DTYPE_UNDEFINED;
}

static bool rows_supports(const ir_node *n, const ir_type *const *in) {
    bool rms = n->op == OP_RMSNormalization;
    if (!kc_has_in(n, in, 0) || !kc_has_in(n, in, 1) || !kc_dt_float(in[0]->dtype) ||
        !kc_dt_float(in[1]->dtype) || !kc_dt_float(n->out[0]->type.dtype))
        return false;
    if (!trailing_param(in[1], in[0])) return false;
    if (!rms && kc_has_in(n, in, 2) &&
        (!kc_dt_float(in[2]->dtype) || !trailing_param(in[2], in[0])))
        return false;
    if (rms && n->n_out > 1) return false;
    /* Mean / InvStdDev outputs, when asked for, must be float too; an
    ** undefined type is an unused slot */
    return out_float_or_absent(n, 1) && out_float_or_absent(n, 2);
}

static int rows_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0];
    bool rms = n->op == OP_RMSNormalization;
    int64_t axis = ir_attr_int(n, "axis", -1);
    if (axis < -(int64_t)x->rank || axis >= x->rank)
        return ref_fail(c, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    int ax = (int)(axis < 0 ? axis + x->rank : axis);
    kc_norm p;
    memset(&p, 0, sizeof p);
    p.dt_x = (int)x->dtype;
    p.dt_y = (int)c->out[0]->dtype;
    p.rms = rms;
    p.vec16 = ln16_on();
    p.mode = KN_TRAIL;
    p.rows = shape_numel(ax, x->dims);
    p.len = shape_numel(x->rank - ax, x->dims + ax);
    p.eps = ir_attr_float(n, "epsilon", 1e-5f);
    p.x = x->data;
    p.y = c->out[0]->data;
    p.scale = c->in[1]->data;
    p.dt_scale = (int)c->in[1]->dtype;
    if (trailing_mod(c, c->in[1], x, "Scale", &p.pmod)) return -1;
    if (!rms && ref_has(c, 2)) {
        if (trailing_mod(c, c->in[2], x, "B", &p.bmod)) return -1;
        p.bias = c->in[2]->data;
        p.dt_bias = (int)c->in[2]->dtype;
    }
    if (!rms)
        for (int i = 1; i < c->n_out && i < 3; i++) {
            kiln_tensor *o = c->out[i];
            if (!o || !o->data || tensor_numel(o) != p.rows) continue;
            if (!kc_dt_float(o->dtype)) return ref_fail(c, "statistics output %d is not float", i);
            if (i == 1) {
                p.mean_out = o->data;
                p.dt_mean = (int)o->dtype;
            } else {
                p.inv_out = o->data;
                p.dt_inv = (int)o->dtype;
            }
        }
    if (tensor_numel(x) == 0 && !p.mean_out && !p.inv_out) return 0;
    return cuda_fail_if(c, kc_rownorm(&p, cuda_stream_of(c)), n->op_type);
}

/* ------------------------------------------------ Instance / Group norm */
static bool ig_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in != 3 || n->n_out != 1) return false;
    for (int i = 0; i < 3; i++)
        if (!kc_has_in(n, in, i) || !kc_dt_float(in[i]->dtype)) return false;
    return in[0]->dtype == n->out[0]->type.dtype;
}

static int ig_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0];
    if (x->rank < 2) return ref_fail(c, "%s input rank < 2", n->op_type);
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t inner = shape_numel(x->rank - 2, x->dims + 2);
    int64_t ns = tensor_numel(c->in[1]);
    kc_norm p;
    memset(&p, 0, sizeof p);
    p.dt_x = p.dt_y = (int)x->dtype;
    p.eps = ir_attr_float(n, "epsilon", 1e-5f);
    p.x = x->data;
    p.y = c->out[0]->data;
    p.scale = c->in[1]->data;
    p.dt_scale = (int)c->in[1]->dtype;
    p.bias = c->in[2]->data;
    p.dt_bias = (int)c->in[2]->dtype;
    if (n->op == OP_InstanceNormalization) {
        if (ns != C || tensor_numel(c->in[2]) != C)
            return ref_fail(c, "InstanceNormalization scale and B need C elements");
        p.mode = KN_ROW;
        p.pmod = C > 0 ? C : 1;
        p.rows = N * C;
        p.len = inner;
    } else {
        int64_t G = ir_attr_int(n, "num_groups", 0);
        if (G <= 0 || C % G)
            return ref_fail(c, "GroupNormalization: %lld channels do not split into %lld "
                            "groups", (long long)C, (long long)G);
        if (tensor_numel(c->in[2]) != ns || (ns != C && ns != G))
            return ref_fail(c, "GroupNormalization scale and bias need C or num_groups "
                            "elements");
        p.rows = N * G;
        p.len = C / G * inner;
        if (ns == C) {
            p.mode = KN_GROUP_CH;
            p.groups = G;
            p.cpg = C / G;
            p.inner = inner > 0 ? inner : 1;
        } else {
            p.mode = KN_ROW;
            p.pmod = G;
        }
    }
    if (tensor_numel(x) == 0) return 0;
    return cuda_fail_if(c, kc_rownorm(&p, cuda_stream_of(c)), n->op_type);
}

/* ------------------------------------------------ BatchNormalization */
static bool bn_supports(const ir_node *n, const ir_type *const *in) {
    /* inference only: one output, no training mode, per-channel params */
    if (n->n_out != 1 || ir_attr_int(n, "training_mode", 0) != 0 ||
        ir_attr_int(n, "spatial", 1) == 0 || n->n_in != 5)
        return false;
    if (!kc_has_in(n, in, 0) || !kc_dt_float(in[0]->dtype) || in[0]->rank < 2 ||
        n->out[0]->type.dtype != in[0]->dtype)
        return false;
    for (int i = 1; i < 5; i++)
        if (!kc_has_in(n, in, i) || in[i]->dtype != in[1]->dtype ||
            !kc_dt_float(in[i]->dtype) || in[i]->rank != 1)
            return false;
    return true;
}

static int bn_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank < 2) return ref_fail(c, "BatchNormalization input rank < 2");
    int64_t C = x->dims[1], inner = shape_numel(x->rank - 2, x->dims + 2);
    for (int i = 1; i < 5; i++)
        if (tensor_numel(c->in[i]) != C)
            return ref_fail(c, "BatchNormalization parameter %d needs %lld elements", i,
                            (long long)C);
    return cuda_fail_if(c, kc_batchnorm((int)x->dtype, (int)c->in[1]->dtype, tensor_numel(x),
                                        C, inner, ir_attr_float(c->node, "epsilon", 1e-5f),
                                        x->data, c->in[1]->data, c->in[2]->data,
                                        c->in[3]->data, c->in[4]->data, c->out[0]->data,
                                        cuda_stream_of(c)),
                        "BatchNormalization");
}

static const kiln_tactic t_ln = {"cuda_layernorm_rows", OP_LayerNormalization, 0,
                                 KC_FLAGS_INPLACE, rows_supports, NULL, rows_run};
static const kiln_tactic t_rms = {"cuda_rmsnorm_rows", OP_RMSNormalization, 0,
                                  KC_FLAGS_INPLACE, rows_supports, NULL, rows_run};
static const kiln_tactic t_in = {"cuda_instancenorm_rows", OP_InstanceNormalization, 0,
                                 KC_FLAGS_INPLACE, ig_supports, NULL, ig_run};
static const kiln_tactic t_gn = {"cuda_groupnorm_rows", OP_GroupNormalization, 0,
                                 KC_FLAGS_INPLACE, ig_supports, NULL, ig_run};
static const kiln_tactic t_bn = {"cuda_batchnorm_infer", OP_BatchNormalization, 0,
                                 KC_FLAGS_INPLACE, bn_supports, NULL, bn_run};

const kiln_tactic *const cuda_tactics_norm[] = {&t_ln, &t_rms, &t_in, &t_gn, &t_bn, NULL};
