/* ref_extra_nn.c: reference kernels for DeformConv (N-D, n-linear sampling),
** CausalConvWithState (depthwise causal conv with carried state) and
** LinearAttention (the sequential recurrence, state kept in float32). */
#include "ref_extra.h"

#include <math.h>

/* ------------------------------------------------------------ DeformConv */

int ref_extra_deform_conv(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *w = c->in[1], *off = c->in[2];
    const kiln_tensor *bias = ref_has(c, 3) ? c->in[3] : NULL;
    const kiln_tensor *mask = ref_has(c, 4) ? c->in[4] : NULL;
    kiln_tensor *y = c->out[0];
    const ir_node *n = c->node;
    int nd = x->rank - 2, cnt;
    if (nd < 1 || nd > 8 || w->rank != x->rank || y->rank != x->rank)
        return ref_fail(c, "DeformConv supports 1 to 8 spatial dims");
    const int64_t *st = ir_attr_ints(n, "strides", &cnt);
    const int64_t *dl = ir_attr_ints(n, "dilations", &cnt);
    const int64_t *pd = ir_attr_ints(n, "pads", &cnt);
    int64_t group = ir_attr_int(n, "group", 1), og = ir_attr_int(n, "offset_group", 1);
    int64_t N = x->dims[0], C = x->dims[1], OC = w->dims[0];
    int64_t Cg = C / group, OCg = OC / group, Cog = C / og;
    int64_t K = 1, O = 1, I = 1;
    for (int d = 0; d < nd; d++) {
        K *= w->dims[2 + d];
        O *= y->dims[2 + d];
        I *= x->dims[2 + d];
    }
    if (tensor_numel(off) != N * og * K * nd * O ||
        (mask && tensor_numel(mask) != N * og * K * O) ||
        (bias && tensor_numel(bias) != OC) || w->dims[1] != Cg)
        return ref_fail(c, "offset/mask/bias/W shapes do not match");
    int rc = -1;
    double *xv = rx_to_f64(x), *wv = rx_to_f64(w), *ov = rx_to_f64(off);
    double *mv = mask ? rx_to_f64(mask) : NULL, *bv = bias ? rx_to_f64(bias) : NULL;
    double *yv = calloc((size_t)tensor_numel(y) + 1, sizeof *yv);
    double *col = malloc(((size_t)Cog + 1) * sizeof *col);
    if (!xv || !wv || !ov || (mask && !mv) || (bias && !bv) || !yv || !col) {
        ref_fail(c, "out of memory");
        goto done;
    }
    int64_t xs[8], kidx[8], oidx[8];
    xs[nd - 1] = 1;
    for (int d = nd - 2; d >= 0; d--) xs[d] = xs[d + 1] * x->dims[3 + d];
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < og; g++)
            for (int64_t kk = 0; kk < K; kk++) {
                for (int64_t r = kk, d = nd - 1; d >= 0; d--) {
                    kidx[d] = r % w->dims[2 + d];
                    r /= w->dims[2 + d];
                }
                for (int64_t o = 0; o < O; o++) {
                    for (int64_t r = o, d = nd - 1; d >= 0; d--) {
                        oidx[d] = r % y->dims[2 + d];
                        r /= y->dims[2 + d];
                    }
                    double pos[8];
                    for (int d = 0; d < nd; d++) {
                        double s = st ? (double)st[d] : 1, di = dl ? (double)dl[d] : 1;
                        double pb = pd ? (double)pd[d] : 0;
                        size_t oi = (size_t)((((b * og + g) * K + kk) * nd + d) * O + o);
                        pos[d] = (double)oidx[d] * s - pb + (double)kidx[d] * di + ov[oi];
                    }
                    double m = mv ? mv[((b * og + g) * K + kk) * O + o] : 1.0;
                    for (int64_t ci = 0; ci < Cog; ci++) col[ci] = 0;
                    /* n-linear interpolation; corners outside the input read 0 */
                    for (int corner = 0; corner < (1 << nd); corner++) {
                        double wt = 1;
                        int64_t at = 0;
                        bool inside = true;
                        for (int d = 0; d < nd && inside; d++) {
                            double fl = floor(pos[d]);
                            int up = (corner >> d) & 1;
                            double fr = pos[d] - fl;
                            wt *= up ? fr : 1 - fr;
                            if (!(fl > -2.0 && fl < (double)x->dims[2 + d] + 1.0)) {
                                inside = false;
                                break;
                            }
                            int64_t q = (int64_t)fl + up;
                            if (q < 0 || q >= x->dims[2 + d]) inside = false;
                            at += q * xs[d];
                        }
                        if (!inside || wt == 0) continue;
                        for (int64_t ci = 0; ci < Cog; ci++)
                            col[ci] += wt * xv[(b * C + g * Cog + ci) * I + at];
                    }
                    for (int64_t ci = 0; ci < Cog; ci++) {
                        int64_t ch = g * Cog + ci, gi = ch / Cg;
                        double v = col[ci] * m;
                        if (v == 0) continue;
                        for (int64_t oc = gi * OCg; oc < (gi + 1) * OCg; oc++)
                            yv[(b * OC + oc) * O + o] +=
                                wv[(oc * Cg + (ch - gi * Cg)) * K + kk] * v;
                    }
                }
            }
    if (bv)
        for (int64_t b = 0; b < N; b++)
            for (int64_t oc = 0; oc < OC; oc++)
                for (int64_t o = 0; o < O; o++) yv[(b * OC + oc) * O + o] += bv[oc];
    rx_from_f64(y, yv, tensor_numel(y));
    rc = 0;
done:
    free(xv); free(wv); free(ov); free(mv); free(bv); free(yv); free(col);
    return rc;
}

/* ------------------------------------------------------------ CausalConvWithState */

/* v rounded to dtype t (float32 values pass through). */
static float round_to(kiln_dtype t, float v) {
    if (t == KILN_DTYPE_FLOAT16) return f16_to_f32(f32_to_f16(v));
    if (t == KILN_DTYPE_BFLOAT16) return bf16_to_f32(f32_to_bf16(v));
    return v;
}

int ref_extra_causal_conv(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *w = c->in[1];
    const kiln_tensor *bias = ref_has(c, 2) ? c->in[2] : NULL;
    const kiln_tensor *ps = ref_has(c, 3) ? c->in[3] : NULL;
    const char *act = ir_attr_str(c->node, "activation", "none");
    bool silu = !strcmp(act, "silu") || !strcmp(act, "swish");
    if (x->rank != 3 || w->rank != 3) return ref_fail(c, "input and weight need rank 3");
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], K = w->dims[2];
    if (w->dims[0] != C || w->dims[1] != 1 || K < 1)
        return ref_fail(c, "weight must be (channels, 1, k)");
    if (bias && tensor_numel(bias) != C) return ref_fail(c, "bias must have C entries");
    if (ps && (ps->rank != 3 || ps->dims[0] != B || ps->dims[1] != C || ps->dims[2] != K - 1))
        return ref_fail(c, "past_state must be (batch, channels, k - 1)");
    kiln_tensor *y = c->out[0], *pr = c->n_out > 1 ? c->out[1] : NULL;
    int rc = -1;
    float *xv = tensor_to_f32(x), *wv = tensor_to_f32(w);
    float *bv = bias ? tensor_to_f32(bias) : NULL, *pv = ps ? tensor_to_f32(ps) : NULL;
    float *pad = malloc(((size_t)(L + K) + 1) * sizeof *pad);
    float *yv = malloc(((size_t)(B * C * L) + 1) * sizeof *yv);
    float *sv = malloc(((size_t)(B * C * (K - 1)) + 1) * sizeof *sv);
    if (!xv || !wv || (bias && !bv) || (ps && !pv) || !pad || !yv || !sv) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t ch = 0; ch < C; ch++) {
            /* the carried state followed by the new input */
            for (int64_t t = 0; t < K - 1; t++)
                pad[t] = pv ? pv[(b * C + ch) * (K - 1) + t] : 0.0f;
            for (int64_t t = 0; t < L; t++) pad[K - 1 + t] = xv[(b * C + ch) * L + t];
            const float *wk = wv + ch * K;
            for (int64_t t = 0; t < L; t++) {
                float s = bv ? bv[ch] : 0.0f;
                for (int64_t j = 0; j < K; j++) s += wk[j] * pad[t + j];
                s = round_to(x->dtype, s);
                if (silu) s = s / (1.0f + expf(-s));
                yv[(b * C + ch) * L + t] = s;
            }
            for (int64_t j = 0; j < K - 1; j++)
                sv[(b * C + ch) * (K - 1) + j] = pad[L + j];
        }
    tensor_from_f32(y, yv);
    if (pr) tensor_from_f32(pr, sv);
    rc = 0;
done:
    free(xv); free(wv); free(bv); free(pv); free(pad); free(yv); free(sv);
    return rc;
}

/* ------------------------------------------------------------ LinearAttention */

int ref_extra_linear_attention(ref_ctx *c) {
    const kiln_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
    const kiln_tensor *ps = ref_has(c, 3) ? c->in[3] : NULL;
    const kiln_tensor *g = ref_has(c, 4) ? c->in[4] : NULL;
    const kiln_tensor *be = ref_has(c, 5) ? c->in[5] : NULL;
    const ir_node *n = c->node;
    const char *rule = ir_attr_str(n, "update_rule", "gated_delta");
    bool gating = !strcmp(rule, "gated") || !strcmp(rule, "gated_delta");
    bool delta = !strcmp(rule, "delta") || !strcmp(rule, "gated_delta");
    int64_t hq = ir_attr_int(n, "q_num_heads", 0), hkv = ir_attr_int(n, "kv_num_heads", 0);
    if (q->rank != 3 || k->rank != 3 || v->rank != 3)
        return ref_fail(c, "query, key and value need rank 3");
    int64_t B = q->dims[0], T = q->dims[1], dk = q->dims[2] / hq, dv = v->dims[2] / hkv;
    int64_t grp = hq / hkv;
    if (k->dims[0] != B || v->dims[0] != B || k->dims[1] != T || v->dims[1] != T ||
        k->dims[2] != hkv * dk)
        return ref_fail(c, "query/key/value shapes disagree");
    int64_t gl = g ? g->dims[2] : 0, bl = be ? be->dims[2] : 0;
    if (g && (g->rank != 3 || g->dims[0] != B || g->dims[1] != T ||
              (gl != hkv && gl != hkv * dk)))
        return ref_fail(c, "decay must be (B, T, kv_num_heads[*d_k])");
    if (be && (be->rank != 3 || be->dims[0] != B || be->dims[1] != T ||
               (bl != hkv && bl != 1)))
        return ref_fail(c, "beta must be (B, T, kv_num_heads or 1)");
    if (ps && tensor_numel(ps) != B * hkv * dk * dv)
        return ref_fail(c, "past_state must be (B, kv_num_heads, d_k, d_v)");
    float scale = ir_attr_float(n, "scale", 0.0f);
    if (scale == 0.0f) scale = 1.0f / sqrtf((float)dk);
    int rc = -1;
    size_t ssz = (size_t)(B * hkv * dk * dv);
    float *qv = tensor_to_f32(q), *kv = tensor_to_f32(k), *vv = tensor_to_f32(v);
    float *gv = g ? tensor_to_f32(g) : NULL, *bv = be ? tensor_to_f32(be) : NULL;
    float *S = ps ? tensor_to_f32(ps) : calloc(ssz + 1, sizeof *S);
    float *ov = malloc(((size_t)(B * T * hq * dv) + 1) * sizeof *ov);
    float *u = malloc(((size_t)dv + 1) * sizeof *u);
    if (!qv || !kv || !vv || (g && !gv) || (be && !bv) || !S || !ov || !u) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < hkv; h++) {
                float *St = S + (size_t)((b * hkv + h) * dk * dv);
                const float *kt = kv + ((b * T + t) * hkv + h) * dk;
                const float *vt = vv + ((b * T + t) * hkv + h) * dv;
                if (gating) { /* S *= exp(g), per head or per key dim */
                    const float *gt = gv + (b * T + t) * gl;
                    for (int64_t i = 0; i < dk; i++) {
                        float e = expf(gl == hkv ? gt[h] : gt[h * dk + i]);
                        for (int64_t j = 0; j < dv; j++) St[i * dv + j] *= e;
                    }
                }
                for (int64_t j = 0; j < dv; j++) u[j] = vt[j];
                if (delta) { /* u = beta * (v - S^T k) */
                    float bt = bv[(b * T + t) * bl + (bl == 1 ? 0 : h)];
                    for (int64_t j = 0; j < dv; j++) {
                        float r = 0;
                        for (int64_t i = 0; i < dk; i++) r += St[i * dv + j] * kt[i];
                        u[j] = bt * (vt[j] - r);
                    }
                }
                for (int64_t i = 0; i < dk; i++)
                    for (int64_t j = 0; j < dv; j++) St[i * dv + j] += kt[i] * u[j];
            }
            for (int64_t h = 0; h < hq; h++) { /* query head h reads kv head h / grp */
                const float *St = S + (size_t)((b * hkv + h / grp) * dk * dv);
                const float *qt = qv + ((b * T + t) * hq + h) * dk;
                float *o = ov + ((b * T + t) * hq + h) * dv;
                for (int64_t j = 0; j < dv; j++) {
                    float s = 0;
                    for (int64_t i = 0; i < dk; i++) s += qt[i] * St[i * dv + j];
                    o[j] = scale * s;
                }
            }
        }
    tensor_from_f32(c->out[0], ov);
    if (c->n_out > 1) tensor_from_f32(c->out[1], S);
    rc = 0;
done:
    free(qv); free(kv); free(vv); free(gv); free(bv); free(S); free(ov); free(u);
    return rc;
}
