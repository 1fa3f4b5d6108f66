/* qdq.c: explicit quantization. Folds the QuantizeLinear/DequantizeLinear
** pattern that onnxruntime's quantize_static (QDQ format) and similar tools
** write around each quantized layer into a real INT8 layer:
**   DQ(x_q) , DQ(w_q const) [, DQ(b_i32 const) | b float const]
**     -> Conv [-> Relu] -> Q(y)            =>  QLinearConv(x_q, w_q, b_i32)
**     -> Gemm / MatMul  [-> Relu] -> Q(y)  =>  Reshape -> QLinearConv (1x1)
**                                               -> Reshape
**   DQ(a_q) + DQ(b_q) -> Add [-> Relu] -> Q   =>  QAdd (internal, exact)
**   DQ(x_q) -> MaxPool | Flatten | Reshape | Transpose | (Un)Squeeze -> Q
**     (same scale and zero point)  =>  the same op on x_q
** The model's scales are used as they are (the requantization multiplier is
** x_scale * w_scale / y_scale; a bias given at another scale is re-expressed
** at x_scale * w_scale, rounded half to even). A Relu between the layer and
** its Q is folded only when the Q's zero point is the lowest value of its
** type, where it changes nothing: Q(relu(v)) = max(Q(v), zp) = Q(v).
** Consecutive quantized layers then read each other's int8 outputs directly
** (the Q -> DQ pair between them has no reader left and is removed).
**   DQ(x_q), DQ(w_q const) -> MatMul / Gemm with no Q after it
**     =>  QFusedGemm(x_q, w_q [N, K], ..., scale = x_scale * w_scale[n],
**         bias) with a float32 output (ops/qfused.c)
** The Q/DQ graph means a float product of the dequantized operands; the
** int32 product scaled once per column computes the same up to float32
** summation order (no quantization step is added or dropped: that rule is
** what lets this fold apply to any Q/DQ model, onnxruntime's included).
** passes/qepi.c later folds the bias, residual, activation and a Q that
** follow into it. What is not folded keeps its Q/DQ nodes and runs in
** float as before.
** Runs first in the pipeline: constant folding would otherwise turn the
** DQ of each weight into a float constant. */
#include "patterns.h"

#include <math.h>

static bool is_q8(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8;
}

/* Per-tensor quantization parameters of a Q or DQ node: scalar float32
** scale, scalar zero point of dtype qt (absent: 0). */
static bool per_tensor(const ir_node *n, kiln_dtype qt, double *scale, int64_t *zp) {
    if (n->n_in < 2 || !n->in[1] || ir_attr_find(n, "block_size")) return false;
    const kiln_tensor *s = n->in[1]->const_val;
    if (!s || s->dtype != KILN_DTYPE_FLOAT32 || tensor_numel(s) != 1) return false;
    *scale = dt_get_f64(s->dtype, s->data, 0);
    if (!(*scale > 0) || !isfinite(*scale)) return false;
    *zp = 0;
    if (n->n_in >= 3 && n->in[2]) {
        const kiln_tensor *z = n->in[2]->const_val;
        if (!z || z->dtype != qt || tensor_numel(z) != 1) return false;
        *zp = dt_get_i64(z->dtype, z->data, 0);
    }
    return true;
}

/* An activation DQ: x_q of an 8-bit type, per-tensor parameters. */
static ir_node *act_dq(const ir_graph *g, const ir_value *v, double *s, int64_t *zp) {
    ir_node *d = pt_prod_op(g, v, OP_DequantizeLinear);
    if (!d || !d->in[0] || !is_q8(d->in[0]->type.dtype) || d->in[0]->const_val)
        return NULL;
    if (v->type.dtype != KILN_DTYPE_FLOAT32) return NULL;
    return per_tensor(d, d->in[0]->type.dtype, s, zp) ? d : NULL;
}

/* The quantized weight behind a float weight value: DQ of a constant int8
** tensor, scale float32 scalar or 1-D along `axis` (normalized). */
typedef struct qweight {
    ir_node *dq;
    const kiln_tensor *w, *s, *z; /* z may be NULL */
    int axis;                     /* of per-channel scales; -1 per tensor */
} qweight;

static bool weight_dq(const ir_graph *g, const ir_value *v, qweight *q) {
    ir_node *d = pt_prod_op(g, v, OP_DequantizeLinear);
    if (!d || d->n_in < 2 || !d->in[0] || !d->in[1] || ir_attr_find(d, "block_size"))
        return false;
    q->dq = d;
    q->w = d->in[0]->const_val;
    q->s = d->in[1]->const_val;
    q->z = d->n_in >= 3 && d->in[2] ? d->in[2]->const_val : NULL;
    if (!q->w || q->w->dtype != KILN_DTYPE_INT8 || !q->s ||
        q->s->dtype != KILN_DTYPE_FLOAT32 || (d->n_in >= 3 && d->in[2] && !q->z))
        return false;
    if (q->z && q->z->dtype != KILN_DTYPE_INT8) return false;
    int64_t ns = tensor_numel(q->s);
    q->axis = -1;
    if (ns != 1) {
        int64_t ax = ir_attr_int(d, "axis", 1);
        if (ax < 0) ax += q->w->rank;
        if (q->s->rank != 1 || ax < 0 || ax >= q->w->rank || q->w->dims[ax] != ns)
            return false;
        q->axis = (int)ax;
    }
    if (q->z && tensor_numel(q->z) != ns) return false;
    for (int64_t i = 0; i < ns; i++)
        if (!(dt_get_f64(q->s->dtype, q->s->data, (size_t)i) > 0)) return false;
    return true;
}

/* Float bias values (M of them, malloc'ed) of a bias input: DQ of a
** constant (any integer type, per tensor or per channel) or a float
** constant. NULL when it is neither; *dq gets the DQ node if any. */
static double *bias_vals(const ir_graph *g, const ir_value *b, int64_t M, ir_node **dq) {
    *dq = NULL;
    const kiln_tensor *t = b->const_val;
    double *v = NULL;
    if (t) {
        if (t->dtype != KILN_DTYPE_FLOAT32 || tensor_numel(t) != M) return NULL;
        if (!(v = malloc((size_t)(M ? M : 1) * sizeof *v))) return NULL;
        for (int64_t m = 0; m < M; m++) v[m] = dt_get_f64(t->dtype, t->data, (size_t)m);
        return v;
    }
    ir_node *d = pt_prod_op(g, b, OP_DequantizeLinear);
    if (!d || d->n_in < 2 || !d->in[0] || !d->in[1] || ir_attr_find(d, "block_size"))
        return NULL;
    const kiln_tensor *q = d->in[0]->const_val, *s = d->in[1]->const_val;
    const kiln_tensor *z = d->n_in >= 3 && d->in[2] ? d->in[2]->const_val : NULL;
    if (!q || !s || q->rank != 1 || q->dims[0] != M || s->dtype != KILN_DTYPE_FLOAT32 ||
        (d->n_in >= 3 && d->in[2] && !z))
        return NULL;
    int64_t ns = tensor_numel(s), nz = z ? tensor_numel(z) : 0;
    if ((ns != 1 && ns != M) || (z && nz != 1 && nz != M)) return NULL;
    if (!(v = malloc((size_t)(M ? M : 1) * sizeof *v))) return NULL;
    for (int64_t m = 0; m < M; m++) {
        double sv = dt_get_f64(s->dtype, s->data, (size_t)(ns == 1 ? 0 : m));
        int64_t zv = z ? dt_get_i64(z->dtype, z->data, (size_t)(nz == 1 ? 0 : m)) : 0;
        /* DequantizeLinear computes (q - zp) * scale in float32 */
        v[m] = (float)((float)(dt_get_i64(q->dtype, q->data, (size_t)m) - zv) * (float)sv);
    }
    *dq = d;
    return v;
}

static double wscale(const qweight *q, int64_t m) {
    return dt_get_f64(q->s->dtype, q->s->data, (size_t)(q->axis < 0 ? 0 : m));
}

/* ---- matching */
typedef struct qmatch {
    ir_node *layer, *relu, *q, *xdq, *bdq;
    qweight w;
    double xs, ys;
    int64_t xz, yz;
    kiln_dtype yt;
} qmatch;

/* The layer feeding Q node q (through a Relu that changes nothing). */
static bool match_out(const ir_graph *g, ir_node *q, qmatch *mt) {
    memset(mt, 0, sizeof *mt);
    if (q->n_out != 1 || !q->in[0] || q->in[0]->type.dtype != KILN_DTYPE_FLOAT32)
        return false;
    mt->yt = q->out[0]->type.dtype;
    if (!is_q8(mt->yt)) return false;
    if (q->n_in >= 3 && q->in[2] && q->in[2]->const_val &&
        q->in[2]->const_val->dtype != mt->yt)
        return false;
    if (ir_attr_int(q, "saturate", 1) != 1 || ir_attr_find(q, "output_dtype") ||
        !per_tensor(q, mt->yt, &mt->ys, &mt->yz))
        return false;
    mt->q = q;
    ir_node *p = pt_prod(g, q->in[0]);
    if (p && p->op == OP_Relu && p->n_in == 1 && pt_only(g, q->in[0], q)) {
        int64_t lo = mt->yt == KILN_DTYPE_UINT8 ? 0 : -128;
        if (mt->yz != lo) return false;
        mt->relu = p;
        p = pt_prod(g, p->in[0]);
        if (!p || !pt_only(g, mt->relu->in[0], mt->relu)) return false;
    } else if (!p || !pt_only(g, q->in[0], q)) {
        return false;
    }
    if (p->n_out != 1 || p->n_implicit) return false;
    mt->layer = p;
    return true;
}

/* Common input checks: DQ activation x, DQ int8 weight w. */
static bool match_inputs(const ir_graph *g, qmatch *mt) {
    ir_node *p = mt->layer;
    if (p->n_in < 2 || !p->in[0] || !p->in[1]) return false;
    if (!(mt->xdq = act_dq(g, p->in[0], &mt->xs, &mt->xz))) return false;
    return weight_dq(g, p->in[1], &mt->w);
}

/* int32 bias at scale xs * ws[m] (NULL-free: zeros when absent). */
static int32_t *int_bias(pass_ctx *p, qmatch *mt, int64_t M, const ir_value *b,
                         bool *ok) {
    *ok = false;
    int32_t *bi = calloc((size_t)(M ? M : 1), sizeof *bi);
    if (!bi) return NULL;
    if (!b) {
        *ok = true;
        return bi;
    }
    double *bv = bias_vals(p->g, b, M, &mt->bdq);
    if (!bv) return bi;
    for (int64_t m = 0; m < M; m++) {
        /* the scale the QLinearConv accumulators have, in float32 as the
        ** bias quantizer computes it */
        double s = (float)((float)mt->xs * (float)wscale(&mt->w, m));
        double r = nearbyint(bv[m] / s);
        if (!(fabs(r) < 2147483647.0)) {
            free(bv);
            return bi;
        }
        bi[m] = (int32_t)r;
    }
    free(bv);
    *ok = true;
    return bi;
}

static ir_value *scalar_const(ir_graph *g, kiln_dtype dt, double v, const char *hint) {
    return pu_const_f64(g, dt, 0, NULL, &v, hint);
}

/* Builds QLinearConv(x_q, ..., w (given), ...) writing out_v. */
static ir_node *emit_qconv(pass_ctx *p, qmatch *mt, ir_value *xq, ir_value *w,
                           int64_t M, const int32_t *bias, const char *name) {
    ir_graph *g = p->g;
    ir_node *qc = ir_edit_add_node(g, OP_QLinearConv, 9, 1, name);
    if (!qc) return NULL;
    qc->in[0] = xq;
    qc->in[1] = scalar_const(g, KILN_DTYPE_FLOAT32, mt->xs, "x_scale");
    qc->in[2] = scalar_const(g, xq->type.dtype, (double)mt->xz, "x_zero_point");
    qc->in[3] = w;
    /* per-channel or per-tensor scale / zero point as 1-D [M] or scalar */
    int64_t ns = mt->w.axis < 0 ? 1 : M;
    double *sv = malloc((size_t)ns * sizeof *sv), *zv = malloc((size_t)ns * sizeof *zv);
    if (!sv || !zv) {
        free(sv);
        free(zv);
        return NULL;
    }
    int64_t nz = mt->w.z ? tensor_numel(mt->w.z) : 0;
    for (int64_t m = 0; m < ns; m++) {
        sv[m] = wscale(&mt->w, m);
        zv[m] = mt->w.z ? (double)dt_get_i64(mt->w.z->dtype, mt->w.z->data,
                                              (size_t)(nz == 1 ? 0 : m))
                        : 0.0;
    }
    qc->in[4] = pu_const_f64(g, KILN_DTYPE_FLOAT32, ns == 1 ? 0 : 1, &ns, sv, "w_scale");
    qc->in[5] = pu_const_f64(g, KILN_DTYPE_INT8, ns == 1 ? 0 : 1, &ns, zv, "w_zero_point");
    free(sv);
    free(zv);
    qc->in[6] = scalar_const(g, KILN_DTYPE_FLOAT32, mt->ys, "y_scale");
    qc->in[7] = scalar_const(g, mt->yt, (double)mt->yz, "y_zero_point");
    kiln_tensor *bt;
    if (tensor_new(KILN_DTYPE_INT32, 1, &M, &bt)) return NULL;
    memcpy(bt->data, bias, (size_t)M * sizeof *bias);
    qc->in[8] = ir_edit_add_const(g, bt, "bias_i32");
    for (int i = 0; i < 9; i++)
        if (!qc->in[i]) return NULL;
    return qc;
}

static void finish(pass_ctx *p, qmatch *mt, ir_node *first, ir_node *last) {
    ir_graph *g = p->g;
    ir_edit_set_output(last, 0, mt->q->out[0]);
    ir_node *srcs[6] = {mt->xdq, mt->w.dq, mt->bdq, mt->layer, mt->relu, mt->q};
    ir_node *fs[6];
    int nf = 0;
    for (int i = 0; i < 6; i++)
        if (srcs[i]) fs[nf++] = srcs[i];
    ir_edit_note_fused(g, first, fs, nf);
    ir_edit_kill(mt->q);
    if (mt->relu) ir_edit_kill(mt->relu);
    ir_edit_kill(mt->layer);
    ir_node *dqs[3] = {mt->xdq, mt->w.dq, mt->bdq};
    pt_kill_unused(g, dqs, 3);
    pass_note(p, "folded DQ/%s%s/Q '%s' into INT8 %s (%s -> %s%s)",
              mt->layer->op_type, mt->relu ? "+Relu" : "", pu_name(mt->layer),
              first->op_type, kiln_dtype_name(first->in[0]->type.dtype), kiln_dtype_name(mt->yt),
              first->op == OP_QAdd ? "" : mt->w.axis < 0 ? ", w per tensor" : ", w per channel");
}

/* 1 folded, 0 not applicable, -1 out of memory. */
static int fold_conv(pass_ctx *p, qmatch *mt) {
    ir_node *c = mt->layer;
    const kiln_tensor *W = mt->w.w;
    if (c->n_in > 3 || W->rank < 3 || (mt->w.axis >= 0 && mt->w.axis != 0)) return 0;
    int64_t M = W->dims[0];
    bool ok;
    int32_t *bias = int_bias(p, mt, M, c->n_in >= 3 ? c->in[2] : NULL, &ok);
    if (!bias) return -1;
    if (!ok) {
        free(bias);
        return 0;
    }
    char name[256];
    pt_name(name, sizeof name, c, "QLinearConv");
    ir_node *qc = emit_qconv(p, mt, mt->xdq->in[0], mt->w.dq->in[0], M, bias, name);
    free(bias);
    if (!qc || !ir_edit_copy_attrs(qc, c)) return -1;
    finish(p, mt, qc, qc);
    return 1;
}

/* Gemm (transA 0, alpha 1, beta 1) or MatMul with a 2-D constant weight:
** a 1x1 QLinearConv over [rows, K, 1, 1]. */
static int fold_gemm(pass_ctx *p, qmatch *mt) {
    ir_graph *g = p->g;
    ir_node *c = mt->layer;
    const kiln_tensor *W = mt->w.w;
    const ir_type *xt = &c->in[0]->type;
    bool gemm = c->op == OP_Gemm;
    if (W->rank != 2 || xt->rank < 2) return 0;
    bool tb = gemm && ir_attr_int(c, "transB", 0);
    if (gemm && (ir_attr_int(c, "transA", 0) || ir_attr_float(c, "alpha", 1.0f) != 1.0f ||
                 (c->n_in >= 3 && c->in[2] && ir_attr_float(c, "beta", 1.0f) != 1.0f) ||
                 xt->rank != 2))
        return 0;
    if (!gemm && c->n_in != 2) return 0;
    int64_t K = W->dims[tb ? 1 : 0], N = W->dims[tb ? 0 : 1];
    /* per-channel scales must run along N */
    if (mt->w.axis >= 0 && mt->w.axis != (tb ? 0 : 1)) return 0;
    if (xt->dims[xt->rank - 1] != K) return 0;
    /* rows: rank 2 keeps dim 0 symbolic; higher ranks with symbolic dims
    ** restore their leading dims from the input's shape at run time */
    bool dyn = xt->rank > 2 && !pu_static_shape(xt);
    if (dyn && p->m->opset < 10) return 0;
    const ir_value *b = gemm && c->n_in >= 3 ? c->in[2] : NULL;
    if (b && b->const_val && !(b->const_val->rank == 1 && b->const_val->dims[0] == N))
        return 0;
    bool ok;
    int32_t *bias = int_bias(p, mt, N, b, &ok);
    if (!bias) return -1;
    if (!ok) {
        free(bias);
        return 0;
    }
    /* weight as [N, K, 1, 1] */
    kiln_tensor *wt;
    int64_t wd[4] = {N, K, 1, 1};
    if (tensor_new(KILN_DTYPE_INT8, 4, wd, &wt)) {
        free(bias);
        return -1;
    }
    const int8_t *ws = W->data;
    int8_t *wdst = wt->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) wdst[n * K + k] = tb ? ws[n * K + k] : ws[k * N + n];
    ir_value *wv = ir_edit_add_const(g, wt, "w_nk11");
    int64_t s1[4] = {xt->rank == 2 ? 0 : -1, K, 1, 1};
    int64_t s2[KILN_MAX_RANK];
    int r2 = xt->rank;
    if (r2 == 2) {
        s2[0] = 0;
    } else {
        for (int i = 0; i < r2 - 1; i++) s2[i] = xt->dims[i];
    }
    s2[r2 - 1] = N;
    char name[256];
    pt_name(name, sizeof name, c, "QLinearConv");
    ir_node *r_in = ir_edit_add_node(g, OP_Reshape, 2, 1, "qdq_rows");
    ir_node *r_out = r_in ? ir_edit_add_node(g, OP_Reshape, 2, 1, "qdq_unrows") : NULL;
    if (!wv || !r_out) {
        free(bias);
        return -1;
    }
    r_in->in[0] = mt->xdq->in[0];
    r_in->in[1] = pu_const_i64(g, 4, s1, "rows_shape");
    /* types for the rest of this pass (the pipeline re-infers after it) */
    r_in->out[0]->type.dtype = mt->xdq->in[0]->type.dtype;
    ir_node *qc = emit_qconv(p, mt, r_in->out[0], wv, N, bias, name);
    free(bias);
    if (!qc || !r_in->in[1]) return -1;
    r_out->in[0] = qc->out[0];
    if (dyn) {
        /* Concat(Slice(Shape(x_q), 0, r-1), [N]) */
        ir_node *sh = ir_edit_add_node(g, OP_Shape, 1, 1, "qdq_shape");
        ir_node *sl = sh ? ir_edit_add_node(g, OP_Slice, 4, 1, "qdq_lead") : NULL;
        ir_node *cc = sl ? ir_edit_add_node(g, OP_Concat, 2, 1, "qdq_unrows_shape") : NULL;
        if (!cc || !ir_edit_set_int(cc, "axis", 0)) return -1;
        int64_t z = 0, e = r2 - 1;
        sh->in[0] = mt->xdq->in[0];
        sl->in[0] = sh->out[0];
        sl->in[1] = pu_const_i64(g, 1, &z, "starts");
        sl->in[2] = pu_const_i64(g, 1, &e, "ends");
        sl->in[3] = pu_const_i64(g, 1, &z, "axes");
        cc->in[0] = sl->out[0];
        cc->in[1] = pu_const_i64(g, 1, &N, "n");
        if (!sl->in[1] || !sl->in[2] || !sl->in[3] || !cc->in[1]) return -1;
        r_out->in[1] = cc->out[0];
    } else {
        r_out->in[1] = pu_const_i64(g, r2, s2, "unrows_shape");
        if (!r_out->in[1]) return -1;
    }
    finish(p, mt, qc, r_out);
    return 1;
}

/* DQ(x_q) -> MaxPool / data movement -> Q with the same parameters: the op
** on x_q (exact: these ops only select and move values, and Q(DQ(v)) = v
** at equal parameters). Other inputs (shapes, axes) must be constants. */
static int fold_passthrough(pass_ctx *p, qmatch *mt) {
    ir_node *mp = mt->layer;
    if (mt->relu || mp->n_out != 1 || !mp->in[0]) return 0;
    for (int i = 1; i < mp->n_in; i++)
        if (mp->in[i] && !mp->in[i]->const_val) return 0;
    double xs;
    int64_t xz;
    ir_node *d = act_dq(p->g, mp->in[0], &xs, &xz);
    if (!d || (float)xs != (float)mt->ys || xz != mt->yz ||
        d->in[0]->type.dtype != mt->yt)
        return 0;
    mp->in[0] = d->in[0];
    ir_edit_set_output(mp, 0, mt->q->out[0]);
    ir_edit_kill(mt->q);
    ir_node *dq1[1] = {d};
    pt_kill_unused(p->g, dq1, 1);
    pass_note(p, "%s '%s' runs on %s directly (DQ/Q removed)", mp->op_type, pu_name(mp),
              kiln_dtype_name(mt->yt));
    return 1;
}

/* DQ(a_q) + DQ(b_q) -> Q, operands of one shape: QAdd (ops/qfused.c),
** which computes the same float32 steps on the int8 tensors in one pass. */
static int fold_add(pass_ctx *p, qmatch *mt) {
    ir_graph *g = p->g;
    ir_node *ad = mt->layer;
    if (ad->n_in != 2 || !ad->in[0] || !ad->in[1]) return 0;
    double s[2];
    int64_t z[2];
    ir_node *d[2];
    for (int i = 0; i < 2; i++)
        if (!(d[i] = act_dq(g, ad->in[i], &s[i], &z[i])) ||
            !pu_same_type(&ad->in[i]->type, &ad->out[0]->type))
            return 0;
    char name[256];
    pt_name(name, sizeof name, ad, "QAdd");
    ir_node *qa = ir_edit_add_node(g, OP_QAdd, 8, 1, name);
    if (!qa) return -1;
    for (int i = 0; i < 2; i++) {
        qa->in[3 * i] = d[i]->in[0];
        qa->in[3 * i + 1] = scalar_const(g, KILN_DTYPE_FLOAT32, s[i], "scale");
        qa->in[3 * i + 2] = scalar_const(g, d[i]->in[0]->type.dtype, (double)z[i], "zero_point");
    }
    qa->in[6] = scalar_const(g, KILN_DTYPE_FLOAT32, mt->ys, "y_scale");
    qa->in[7] = scalar_const(g, mt->yt, (double)mt->yz, "y_zero_point");
    for (int i = 0; i < 8; i++)
        if (!qa->in[i]) return -1;
    mt->xdq = d[0];
    mt->w.dq = d[1];
    finish(p, mt, qa, qa);
    return 1;
}

/* DQ(x_q), DQ(w_q) -> MatMul (constant [K, N] weight, x of rank >= 2) or
** Gemm (rank 2, transA 0, alpha 1, beta 1 or no C; constant bias) whose
** output no Q reads (that case is fold_gemm's): a QFusedGemm with a float32
** output. 1 folded, 0 not applicable, -1 out of memory. */
static int fold_gemm_float(pass_ctx *p, ir_node *c) {
    ir_graph *g = p->g;
    qmatch mt;
    memset(&mt, 0, sizeof mt);
    mt.layer = c;
    if (c->n_out != 1 || c->n_implicit || !match_inputs(g, &mt) ||
        c->out[0]->type.dtype != KILN_DTYPE_FLOAT32)
        return 0;
    const kiln_tensor *W = mt.w.w;
    const ir_type *xt = &c->in[0]->type;
    bool gemm = c->op == OP_Gemm;
    if (W->rank != 2 || xt->rank < 2) return 0;
    bool tb = gemm && ir_attr_int(c, "transB", 0);
    if (gemm && (ir_attr_int(c, "transA", 0) || ir_attr_float(c, "alpha", 1.0f) != 1.0f ||
                 (c->n_in >= 3 && c->in[2] && ir_attr_float(c, "beta", 1.0f) != 1.0f) ||
                 xt->rank != 2))
        return 0;
    if (!gemm && c->n_in != 2) return 0;
    int64_t K = W->dims[tb ? 1 : 0], N = W->dims[tb ? 0 : 1];
    if ((mt.w.axis >= 0 && mt.w.axis != (tb ? 0 : 1)) || xt->dims[xt->rank - 1] != K)
        return 0;
    /* (zero points: x's a scalar of its type, w's one value or one per
    ** column, as act_dq and weight_dq checked) */
    double *bias = NULL;
    const ir_value *b = gemm && c->n_in >= 3 ? c->in[2] : NULL;
    if (b && (b->type.rank > 2 || (b->type.rank == 2 && b->type.dims[0] != 1)))
        return 0; /* one value per column only */
    if (b && !(bias = bias_vals(g, b, N, &mt.bdq))) return 0;
    ir_value *wv = mt.w.dq->in[0];
    /* [K, N] -> [N, K] (a weight two products share gets one copy each) */
    if (!tb) {
        kiln_tensor *wt;
        int64_t wd[2] = {N, K};
        if (tensor_new(KILN_DTYPE_INT8, 2, wd, &wt)) {
            free(bias);
            return -1;
        }
        const int8_t *ws = W->data;
        int8_t *wdst = wt->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) wdst[n * K + k] = ws[k * N + n];
        if (!(wv = ir_edit_add_const(g, wt, "w_nk"))) {
            free(bias);
            return -1;
        }
    }
    int64_t ns = mt.w.axis < 0 ? 1 : N;
    int64_t nz = mt.w.z ? tensor_numel(mt.w.z) : 0;
    double *sv = malloc((size_t)ns * sizeof *sv), *zv = malloc((size_t)ns * sizeof *zv);
    if (!sv || !zv) {
        free(sv), free(zv), free(bias);
        return -1;
    }
    bool wz_any = false;
    for (int64_t n = 0; n < ns; n++) {
        /* the product of the two float32 scales, rounded to float32 */
        sv[n] = (float)((float)mt.xs * (float)wscale(&mt.w, n));
        zv[n] = mt.w.z ? (double)dt_get_i64(mt.w.z->dtype, mt.w.z->data,
                                             (size_t)(nz == 1 ? 0 : n))
                       : 0.0;
        wz_any |= zv[n] != 0;
    }
    char name[256];
    pt_name(name, sizeof name, c, "QFusedGemm");
    ir_node *qg = ir_edit_add_node(g, OP_QFusedGemm, bias ? 6 : 5, 1, name);
    if (qg) {
        qg->in[0] = mt.xdq->in[0];
        qg->in[1] = wv;
        qg->in[2] = mt.xz ? scalar_const(g, mt.xdq->in[0]->type.dtype, (double)mt.xz,
                                         "x_zero_point")
                          : NULL;
        qg->in[3] = wz_any ? pu_const_f64(g, KILN_DTYPE_INT8, ns == 1 ? 0 : 1, &ns, zv,
                                          "w_zero_point")
                           : NULL;
        qg->in[4] = pu_const_f64(g, KILN_DTYPE_FLOAT32, ns == 1 ? 0 : 1, &ns, sv, "scale");
        if (bias) qg->in[5] = pu_const_f64(g, KILN_DTYPE_FLOAT32, 1, &N, bias, "bias");
    }
    free(sv), free(zv), free(bias);
    if (!qg || !qg->in[4] || (mt.xz && !qg->in[2]) || (wz_any && !qg->in[3]) ||
        (qg->n_in > 5 && !qg->in[5]))
        return -1;
    ir_edit_set_output(qg, 0, c->out[0]);
    ir_node *fs[4] = {mt.xdq, mt.w.dq, mt.bdq, c};
    ir_node *srcs[4];
    int nf = 0;
    for (int i = 0; i < 4; i++)
        if (fs[i]) srcs[nf++] = fs[i];
    ir_edit_note_fused(g, qg, srcs, nf);
    ir_edit_kill(c);
    ir_node *dqs[3] = {mt.xdq, mt.w.dq, mt.bdq};
    pt_kill_unused(g, dqs, 3);
    pass_note(p, "folded DQ/%s '%s' into INT8 QFusedGemm (%s -> float32, w per %s)",
              c->op_type, pu_name(c), kiln_dtype_name(qg->in[0]->type.dtype),
              mt.w.axis < 0 ? "tensor" : "channel");
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int n0 = g->n_nodes;
    for (int i = 0; i < n0; i++) {
        ir_node *q = g->nodes[i];
        if (q->dead || q->op != OP_QuantizeLinear) continue;
        qmatch mt;
        if (!match_out(g, q, &mt)) continue;
        int r = 0;
        switch (mt.layer->op) {
        case OP_Conv:
            if (match_inputs(g, &mt)) r = fold_conv(p, &mt);
            break;
        case OP_Gemm: case OP_MatMul:
            if (match_inputs(g, &mt)) r = fold_gemm(p, &mt);
            break;
        case OP_Add:
            r = fold_add(p, &mt);
            break;
        case OP_MaxPool: case OP_Flatten: case OP_Reshape: case OP_Transpose:
        case OP_Squeeze: case OP_Unsqueeze:
            r = fold_passthrough(p, &mt);
            break;
        default:
            break;
        }
        if (r < 0) return pu_oom();
    }
    /* then the products no Q reads (where the backend runs QFusedGemm) */
    int n1 = p->no_q8_epilogue ? 0 : g->n_nodes;
    for (int i = 0; i < n1; i++) {
        ir_node *c = g->nodes[i];
        if (c->dead || (c->op != OP_MatMul && c->op != OP_Gemm)) continue;
        if (fold_gemm_float(p, c) < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_qdq = {"qdq", run};
