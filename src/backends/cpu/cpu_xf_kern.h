/* cpu_xf_kern.h: the transformer kernels (see cpu_xf.h), written once over
** vector macros and included by cpu_xf_avx512.c, cpu_xf_avx2.c and
** cpu_xf_c.c, which define before including it:
**   W              lanes;  VT vector type;  XF_NV score-tile vectors;
**                  XF_PV value-product vectors per row (4 rows at once)
**   XF_TABLE       name of the cpu_xf_kernels table;  XF_ISA its isa name
**   V1(x) VLOAD(p) VSTORE(p,v) VLOADN(p,n) VSTOREN(p,v,n) (n in 1..W lanes,
**                  the others read as 0 / left alone)
**   VADD VSUB VMUL VDIV VMIN VMAX VFMA VSQRT VABS VSEL_LT (cpu_vec_math.h
**                  meanings), VHSUM(v) VHMAX(v) horizontal sum / max
**   XEXP XTANH XSIGMOID XERF XGELU XGELU_TANH: the transcendental maps
** Everything here is static; only the table at the end is visible. */

#ifdef XF_SIMD
/* the vector math (exp, tanh, sigmoid, GELU) of cpu_vec_math.h, and erf */
#define VM(name) xv_##name
#include "cpu_vec_math.h"
#undef VM

/* erf: its Taylor series to x^13 below |x| = 0.5 (relative error < 1e-9),
** else 1 - erfc(|x|) with the Chebyshev-fitted erfc of cpu_vec_math.h's
** GELU (relative error ~1.2e-7, erfc <= 0.48 there), sign restored. */
static inline VT xv_erf(VT x) {
    VT ax = VABS(x), x2 = VMUL(x, x);
    VT p = V1((float)(1.1283791670955126 / 9360.0));
    p = VFMA(p, x2, V1((float)(-1.1283791670955126 / 1320.0)));
    p = VFMA(p, x2, V1((float)(1.1283791670955126 / 216.0)));
    p = VFMA(p, x2, V1((float)(-1.1283791670955126 / 42.0)));
    p = VFMA(p, x2, V1((float)(1.1283791670955126 / 10.0)));
    p = VFMA(p, x2, V1((float)(-1.1283791670955126 / 3.0)));
    p = VFMA(p, x2, V1(1.1283791670955126f));
    VT small = VMUL(p, x);
    VT t = VDIV(V1(1.0f), VFMA(V1(0.5f), ax, V1(1.0f)));
    VT q = V1(0.17087277f);
    q = VFMA(q, t, V1(-0.82215223f));
    q = VFMA(q, t, V1(1.48851587f));
    q = VFMA(q, t, V1(-1.13520398f));
    q = VFMA(q, t, V1(0.27886807f));
    q = VFMA(q, t, V1(-0.18628806f));
    q = VFMA(q, t, V1(0.09678418f));
    q = VFMA(q, t, V1(0.37409196f));
    q = VFMA(q, t, V1(1.00002368f));
    q = VFMA(q, t, V1(-1.26551223f));
    VT erfc = VMUL(t, xv_exp(VSUB(q, VMUL(ax, ax))));
    VT big = VSUB(V1(1.0f), erfc);
    big = VSEL_LT(x, V1(0.0f), VSUB(V1(0.0f), big), big);
    return VSEL_LT(ax, V1(0.5f), small, big);
}
#define XEXP xv_exp
#define XTANH xv_tanh
#define XSIGMOID xv_sigmoid
#define XERF xv_erf
#define XGELU xv_gelu
#define XGELU_TANH xv_gelu_tanh
#endif

#ifndef XF_NEG_INF
#define XF_NEG_INF (-INFINITY)
#endif

/* -------------------------------------------------------- attention */
/* Scores S[r][j] = q_r . K^T[:, t0 + j] for rows r < nr (rounded up to 4,
** extra rows repeat the last) and columns j < ncol (a multiple of the tile
** width XF_NV * W). */
static void xf_scores(const cpu_attn_args *A, const float *q, int64_t nr,
                      const float *kt, int64_t ncol, float *S) {
    const int64_t Dh = A->Dh, Tp = A->Tp;
    for (int64_t r0 = 0; r0 < nr; r0 += 4) {
        const float *q0 = q + KILN_MIN(r0, nr - 1) * A->q_rs;
        const float *q1 = q + KILN_MIN(r0 + 1, nr - 1) * A->q_rs;
        const float *q2 = q + KILN_MIN(r0 + 2, nr - 1) * A->q_rs;
        const float *q3 = q + KILN_MIN(r0 + 3, nr - 1) * A->q_rs;
        for (int64_t j0 = 0; j0 < ncol; j0 += XF_NV * W) {
            VT c0[XF_NV], c1[XF_NV], c2[XF_NV], c3[XF_NV];
            for (int j = 0; j < XF_NV; j++) c0[j] = c1[j] = c2[j] = c3[j] = V1(0.0f);
            const float *kp = kt + j0;
            for (int64_t d = 0; d < Dh; d++, kp += Tp) {
                VT a0 = V1(q0[d]), a1 = V1(q1[d]), a2 = V1(q2[d]), a3 = V1(q3[d]);
                for (int j = 0; j < XF_NV; j++) {
                    VT k = VLOAD(kp + j * W);
                    c0[j] = VFMA(a0, k, c0[j]);
                    c1[j] = VFMA(a1, k, c1[j]);
                    c2[j] = VFMA(a2, k, c2[j]);
                    c3[j] = VFMA(a3, k, c3[j]);
                }
            }
            float *s = S + r0 * CPU_ATTN_NK + j0;
            for (int j = 0; j < XF_NV; j++) {
                VSTORE(s + j * W, c0[j]);
                VSTORE(s + CPU_ATTN_NK + j * W, c1[j]);
                VSTORE(s + 2 * CPU_ATTN_NK + j * W, c2[j]);
                VSTORE(s + 3 * CPU_ATTN_NK + j * W, c3[j]);
            }
        }
    }
}

/* For rows r in [0, nr4) (a multiple of 4): O[r] = O[r] * C[r] +
** sum_{j < n} P[r][j] * V row j, four rows at a time so each V vector
** loaded serves four rows. The last vector of V is partial when tail. */
static inline __attribute__((always_inline)) void
xf_pv(float *O, int64_t ldo, const float *C, const float *S, int64_t nr4, int64_t n,
      const float *v, int64_t v_rs, int64_t Dv, bool tail) {
    const int64_t nvec = (Dv + W - 1) / W;
    const int tn = (int)(Dv - (nvec - 1) * W);
    for (int64_t r0 = 0; r0 < nr4; r0 += 4) {
        const float *p0 = S + r0 * CPU_ATTN_NK, *p1 = p0 + CPU_ATTN_NK,
                    *p2 = p1 + CPU_ATTN_NK, *p3 = p2 + CPU_ATTN_NK;
        for (int64_t c0 = 0; c0 < nvec; c0 += XF_PV) {
            const int kc = (int)KILN_MIN(XF_PV, nvec - c0);
            VT a0[XF_PV], a1[XF_PV], a2[XF_PV], a3[XF_PV];
            VT c0v = V1(C[r0]), c1v = V1(C[r0 + 1]), c2v = V1(C[r0 + 2]), c3v = V1(C[r0 + 3]);
            float *o = O + r0 * ldo + c0 * W;
            for (int k = 0; k < XF_PV; k++) {
                if (k < kc) {
                    a0[k] = VMUL(VLOAD(o + k * W), c0v);
                    a1[k] = VMUL(VLOAD(o + ldo + k * W), c1v);
                    a2[k] = VMUL(VLOAD(o + 2 * ldo + k * W), c2v);
                    a3[k] = VMUL(VLOAD(o + 3 * ldo + k * W), c3v);
                } else {
                    a0[k] = a1[k] = a2[k] = a3[k] = V1(0.0f);
                }
            }
            const float *vp = v + c0 * W;
            if (kc == XF_PV && !(tail && c0 + XF_PV == nvec)) {
                for (int64_t j = 0; j < n; j++, vp += v_rs) {
                    VT b0 = V1(p0[j]), b1 = V1(p1[j]), b2 = V1(p2[j]), b3 = V1(p3[j]);
                    for (int k = 0; k < XF_PV; k++) {
                        VT vv = VLOAD(vp + k * W);
                        a0[k] = VFMA(b0, vv, a0[k]);
                        a1[k] = VFMA(b1, vv, a1[k]);
                        a2[k] = VFMA(b2, vv, a2[k]);
                        a3[k] = VFMA(b3, vv, a3[k]);
                    }
                }
            } else {
                for (int64_t j = 0; j < n; j++, vp += v_rs) {
                    VT b0 = V1(p0[j]), b1 = V1(p1[j]), b2 = V1(p2[j]), b3 = V1(p3[j]);
                    for (int k = 0; k < kc; k++) {
                        VT vv = tail && c0 + k == nvec - 1 ? VLOADN(vp + k * W, tn)
                                                           : VLOAD(vp + k * W);
                        a0[k] = VFMA(b0, vv, a0[k]);
                        a1[k] = VFMA(b1, vv, a1[k]);
                        a2[k] = VFMA(b2, vv, a2[k]);
                        a3[k] = VFMA(b3, vv, a3[k]);
                    }
                }
            }
            for (int k = 0; k < kc; k++) {
                VSTORE(o + k * W, a0[k]);
                VSTORE(o + ldo + k * W, a1[k]);
                VSTORE(o + 2 * ldo + k * W, a2[k]);
                VSTORE(o + 3 * ldo + k * W, a3[k]);
            }
        }
    }
}

static void XF_FN(attn_task)(const cpu_attn_args *A, int64_t task, float *scratch) {
    const int64_t per_b = A->Hq * A->nqb;
    const int64_t b = task / per_b, h = (task / A->nqb) % A->Hq, qb = task % A->nqb;
    const int64_t kh = h / (A->Hq / A->Hkv);
    const int64_t i0 = qb * A->mq, i1 = KILN_MIN(A->Sq, i0 + A->mq), nr = i1 - i0;
    if (nr <= 0) return;
    const int64_t Dv = A->Dv, DvW = (Dv + W - 1) / W * W;
    const int64_t DvP = (Dv + 15) / 16 * 16;
    float *S = cpu_align64(scratch);
    float *O = S + A->mq * CPU_ATTN_NK;
    float *M = O + A->mq * DvP, *L = M + A->mq, *C = L + A->mq;
    const int64_t nr4 = (nr + 3) / 4 * 4;
    for (int64_t r = 0; r < nr4; r++) {
        M[r] = XF_NEG_INF;
        L[r] = 0.0f;
        C[r] = 0.0f; /* rows past nr: computed on, never stored */
        for (int64_t e = 0; e < DvW; e++) O[r * DvP + e] = 0.0f;
    }
    const float *q = A->q + b * A->q_bs + h * A->q_hs + i0 * A->q_rs;
    const float *kt = A->kt + (b * A->Hkv + kh) * A->Dh * A->Tp;
    const float *v = A->v + b * A->v_bs + kh * A->v_hs;
    /* keys every row of the block may see */
    int64_t tend = A->T;
    if (A->mask) tend = KILN_MIN(tend, A->mlast);
    if (A->nonpad) {
        int64_t nv = A->nonpad[b];
        tend = KILN_MIN(tend, nv < 0 ? 0 : nv);
    }
    if (A->causal) tend = KILN_MIN(tend, i1);
    const bool vtail = Dv % W != 0;
    for (int64_t t0 = 0; t0 < tend; t0 += CPU_ATTN_NK) {
        const int64_t nk = KILN_MIN(CPU_ATTN_NK, tend - t0);
        const int64_t ncol = (nk + XF_NV * W - 1) / (XF_NV * W) * (XF_NV * W);
        const int64_t nkw = (nk + W - 1) / W * W;
        xf_scores(A, q, nr, kt + t0, ncol, S);
        for (int64_t r = 0; r < nr; r++) {
            const int64_t i = i0 + r;
            int64_t lim = nk;
            if (A->causal) lim = KILN_MIN(lim, i + 1 - t0);
            float *s = S + r * CPU_ATTN_NK;
            C[r] = 1.0f;
            if (lim <= 0) { /* no key of this block: P row 0 */
                for (int64_t j = 0; j < nkw; j++) s[j] = 0.0f;
                continue;
            }
            const VT sc = V1(A->scale);
            int64_t j = 0;
            if (!A->mask) {
                for (; j + W <= lim; j += W) VSTORE(s + j, VMUL(VLOAD(s + j), sc));
                for (; j < lim; j++) s[j] *= A->scale;
            } else {
                int64_t mo = b * A->m_bs + h * A->m_hs + i * A->m_rs + t0 * A->m_cs;
                if (A->mask_bool) {
                    const uint8_t *mp = (const uint8_t *)A->mask + mo;
                    for (; j < lim; j++)
                        s[j] = mp[j * A->m_cs] ? s[j] * A->scale : XF_NEG_INF;
                } else if (A->m_cs == 1) {
                    const float *mp = (const float *)A->mask + mo;
                    for (; j + W <= lim; j += W)
                        VSTORE(s + j, VFMA(VLOAD(s + j), sc, VLOAD(mp + j)));
                    for (; j < lim; j++) s[j] = s[j] * A->scale + mp[j];
                } else {
                    const float *mp = (const float *)A->mask + mo;
                    for (; j < lim; j++) s[j] = s[j] * A->scale + mp[j * A->m_cs];
                }
            }
            /* keys masked by causality and the pad to whole vectors get
            ** -inf (they weigh 0) */
            for (j = lim; j < nkw; j++) s[j] = XF_NEG_INF;
            VT mx = V1(XF_NEG_INF);
            for (j = 0; j < nkw; j += W) mx = VMAX(mx, VLOAD(s + j));
            float mb = VHMAX(mx);
            float mnew = M[r] > mb ? M[r] : mb;
            if (mnew == XF_NEG_INF) { /* everything so far masked */
                for (j = 0; j < nkw; j++) s[j] = 0.0f;
                continue;
            }
            float corr = expf(M[r] - mnew);
            VT mv = V1(mnew), sum = V1(0.0f);
            for (j = 0; j < nkw; j += W) {
                VT e = XEXP(VSUB(VLOAD(s + j), mv));
                VSTORE(s + j, e);
                sum = VADD(sum, e);
            }
            L[r] = L[r] * corr + VHSUM(sum);
            M[r] = mnew;
            C[r] = corr;
        }
        const float *vr = v + t0 * A->v_rs;
        if (vtail) xf_pv(O, DvP, C, S, nr4, nk, vr, A->v_rs, Dv, true);
        else xf_pv(O, DvP, C, S, nr4, nk, vr, A->v_rs, Dv, false);
    }
    /* y = O / L; a row that saw no key gives 0/0 = NaN, as the reference */
    float *y = A->y + b * A->y_bs + h * A->y_hs + i0 * A->y_rs;
    for (int64_t r = 0; r < nr; r++, y += A->y_rs) {
        VT inv = V1(1.0f / L[r]);
        const float *o = O + r * DvP;
        int64_t e = 0;
        for (; e + W <= Dv; e += W) VSTORE(y + e, VMUL(VLOAD(o + e), inv));
        if (e < Dv) VSTOREN(y + e, VMUL(VLOAD(o + e), inv), (int)(Dv - e));
    }
}

/* ---------------------------------------------------- LayerNorm rows */
static void XF_FN(norm_rows)(const cpu_norm_args *A, int64_t r0, int64_t r1) {
    const int64_t n = A->n;
    const int64_t nv = n / W * W;
    const int tn = (int)(n - nv);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = A->x + r * n;
        float *y = A->y + r * n;
        float mean = 0.0f;
        VT s0 = V1(0.0f), s1 = V1(0.0f);
        int64_t j = 0;
        if (!A->rms) {
            for (; j + 2 * W <= nv; j += 2 * W) {
                s0 = VADD(s0, VLOAD(x + j));
                s1 = VADD(s1, VLOAD(x + j + W));
            }
            for (; j < nv; j += W) s0 = VADD(s0, VLOAD(x + j));
            if (tn) s1 = VADD(s1, VLOADN(x + nv, tn));
            mean = VHSUM(VADD(s0, s1)) / (float)n;
        }
        VT mv = V1(mean);
        s0 = s1 = V1(0.0f);
        for (j = 0; j + 2 * W <= nv; j += 2 * W) {
            VT d0 = VSUB(VLOAD(x + j), mv), d1 = VSUB(VLOAD(x + j + W), mv);
            s0 = VFMA(d0, d0, s0);
            s1 = VFMA(d1, d1, s1);
        }
        for (; j < nv; j += W) {
            VT d0 = VSUB(VLOAD(x + j), mv);
            s0 = VFMA(d0, d0, s0);
        }
        if (tn) {
            /* lanes past n load 0; subtract their mean^2 contribution by
            ** masking the difference itself */
            VT d0 = VSUB(VLOADN(x + nv, tn), mv);
            float t[W];
            VSTORE(t, d0);
            for (int k = tn; k < W; k++) t[k] = 0.0f;
            d0 = VLOAD(t);
            s1 = VFMA(d0, d0, s1);
        }
        float var = n ? VHSUM(VADD(s0, s1)) / (float)n : 0.0f;
        float inv = (float)(1.0 / sqrt((double)var + (double)A->eps));
        if (A->mean) A->mean[r] = mean;
        if (A->inv) A->inv[r] = inv;
        VT iv = V1(inv);
        const float *g = A->scale, *bb = A->bias;
        for (j = 0; j < nv; j += W) {
            VT t = VMUL(VMUL(VSUB(VLOAD(x + j), mv), iv), VLOAD(g + j));
            if (bb) t = VADD(t, VLOAD(bb + j));
            VSTORE(y + j, t);
        }
        if (tn) {
            VT t = VMUL(VMUL(VSUB(VLOADN(x + nv, tn), mv), iv), VLOADN(g + nv, tn));
            if (bb) t = VADD(t, VLOADN(bb + nv, tn));
            VSTOREN(y + nv, t, tn);
        }
    }
}

/* ---------------------------------------------------------- Softmax */
static void XF_FN(softmax)(const cpu_softmax_args *A, int64_t o0, int64_t o1) {
    const int64_t n = A->n, inner = A->inner;
    if (inner == 1) {
        const int64_t nv = n / W * W;
        const int tn = (int)(n - nv);
        for (int64_t o = o0; o < o1; o++) {
            const float *x = A->x + o * n;
            float *y = A->y + o * n;
            VT mx = V1(XF_NEG_INF);
            int64_t j = 0;
            for (; j < nv; j += W) mx = VMAX(mx, VLOAD(x + j));
            float m = VHMAX(mx);
            for (; j < n; j++) m = x[j] > m ? x[j] : m;
            VT mv = V1(m), sum = V1(0.0f);
            float tail = 0.0f;
            for (j = 0; j < nv; j += W) {
                VT e = XEXP(VSUB(VLOAD(x + j), mv));
                if (!A->log) VSTORE(y + j, e);
                sum = VADD(sum, e);
            }
            if (tn) {
                float t[W];
                VSTORE(t, XEXP(VSUB(VLOADN(x + nv, tn), mv)));
                for (int k = 0; k < tn; k++) {
                    tail += t[k];
                    if (!A->log) y[nv + k] = t[k];
                }
            }
            float s = VHSUM(sum) + tail;
            if (A->log) {
                VT lv = V1(m + logf(s));
                for (j = 0; j < nv; j += W) VSTORE(y + j, VSUB(VLOAD(x + j), lv));
                if (tn) VSTOREN(y + nv, VSUB(VLOADN(x + nv, tn), lv), tn);
            } else {
                VT iv = V1(1.0f / s);
                for (j = 0; j < nv; j += W) VSTORE(y + j, VMUL(VLOAD(y + j), iv));
                if (tn) VSTOREN(y + nv, VMUL(VLOADN(y + nv, tn), iv), tn);
            }
        }
        return;
    }
    /* inner > 1: vectors run along inner, the reduction along n */
    for (int64_t o = o0; o < o1; o++) {
        const float *xb = A->x + o * n * inner;
        float *yb = A->y + o * n * inner;
        for (int64_t j = 0; j < inner; j += W) {
            const int m = (int)KILN_MIN(W, inner - j);
            const bool full = m == W;
#define XF_LD(p) (full ? VLOAD(p) : VLOADN((p), m))
#define XF_ST(p, v) (full ? VSTORE((p), (v)) : VSTOREN((p), (v), m))
            VT mx = XF_LD(xb + j);
            for (int64_t k = 1; k < n; k++) mx = VMAX(mx, XF_LD(xb + k * inner + j));
            VT sum = V1(0.0f);
            for (int64_t k = 0; k < n; k++) {
                VT e = XEXP(VSUB(XF_LD(xb + k * inner + j), mx));
                if (!A->log) XF_ST(yb + k * inner + j, e);
                sum = VADD(sum, e);
            }
            if (A->log) {
                float ms[W], ss[W];
                VSTORE(ms, mx);
                VSTORE(ss, sum);
                for (int k = 0; k < m; k++) ms[k] += logf(ss[k]);
                VT lv = VLOAD(ms);
                for (int64_t k = 0; k < n; k++)
                    XF_ST(yb + k * inner + j, VSUB(XF_LD(xb + k * inner + j), lv));
            } else {
                VT iv = VDIV(V1(1.0f), sum);
                for (int64_t k = 0; k < n; k++)
                    XF_ST(yb + k * inner + j, VMUL(XF_LD(yb + k * inner + j), iv));
            }
#undef XF_LD
#undef XF_ST
        }
    }
}

/* ------------------------------------------------------------- GELU */
static void XF_FN(gelu)(const float *x, float *y, int64_t n, bool tanh_form) {
    int64_t i = 0;
    if (tanh_form) {
        for (; i + W <= n; i += W) VSTORE(y + i, XGELU_TANH(VLOAD(x + i)));
        if (i < n) VSTOREN(y + i, XGELU_TANH(VLOADN(x + i, (int)(n - i))), (int)(n - i));
    } else {
        for (; i + W <= n; i += W) VSTORE(y + i, XGELU(VLOAD(x + i)));
        if (i < n) VSTOREN(y + i, XGELU(VLOADN(x + i, (int)(n - i))), (int)(n - i));
    }
}

/* ------------------------------------------ FusedElementwise programs */
#define FE_LOOP1(EXPR)                                                       \
    do {                                                                     \
        int64_t i = 0;                                                       \
        for (; i + W <= n; i += W) {                                         \
            VT x = VLOAD(a + i);                                             \
            VSTORE(y + i, (EXPR));                                           \
        }                                                                    \
        if (i < n) {                                                         \
            VT x = VLOADN(a + i, (int)(n - i));                              \
            VSTOREN(y + i, (EXPR), (int)(n - i));                            \
        }                                                                    \
    } while (0)
#define FE_LOOP2(EXPR)                                                       \
    do {                                                                     \
        int64_t i = 0;                                                       \
        for (; i + W <= n; i += W) {                                         \
            VT x = VLOAD(a + i), z = VLOAD(bp + i);                          \
            VSTORE(y + i, (EXPR));                                           \
        }                                                                    \
        if (i < n) {                                                         \
            VT x = VLOADN(a + i, (int)(n - i)), z = VLOADN(bp + i, (int)(n - i)); \
            VSTOREN(y + i, (EXPR), (int)(n - i));                            \
        }                                                                    \
    } while (0)

static void XF_FN(fe_run)(const cpu_fe_prog *p, float *const *regs, int64_t n) {
    for (int t = 0; t < p->n_ins; t++) {
        const cpu_fe_ins *in = &p->ins[t];
        const float *a = regs[in->a];
        const float *bp = in->b >= 0 ? regs[in->b] : NULL;
        const float *cp = in->c >= 0 ? regs[in->c] : NULL;
        float *y = regs[in->dst];
        switch (in->opc) {
        case FE_ADD: FE_LOOP2(VADD(x, z)); break;
        case FE_SUB: FE_LOOP2(VSUB(x, z)); break;
        case FE_MUL: FE_LOOP2(VMUL(x, z)); break;
        case FE_DIV: FE_LOOP2(VDIV(x, z)); break;
        case CPU_FE_SQUARE: FE_LOOP1(VMUL(x, x)); break;
        case FE_NEG: FE_LOOP1(VSUB(V1(0.0f), x)); break;
        case FE_ABS: FE_LOOP1(VABS(x)); break;
        case FE_SQRT: FE_LOOP1(VSQRT(x)); break;
        case FE_RECIPROCAL: FE_LOOP1(VDIV(V1(1.0f), x)); break;
        case FE_EXP: FE_LOOP1(XEXP(x)); break;
        case FE_TANH: FE_LOOP1(XTANH(x)); break;
        case FE_SIGMOID: FE_LOOP1(XSIGMOID(x)); break;
        case FE_ERF: FE_LOOP1(XERF(x)); break;
        case FE_GELU: FE_LOOP1(XGELU(x)); break;
        case FE_GELU_TANH: FE_LOOP1(XGELU_TANH(x)); break;
        /* max/min operand order: NaN in x passes through, as v < 0 ? .. */
        case FE_RELU: FE_LOOP1(VMAX(V1(0.0f), x)); break;
        case FE_LEAKY_RELU: {
            VT al = V1(bp[0]);
            FE_LOOP1(VSEL_LT(x, V1(0.0f), VMUL(al, x), x));
            break;
        }
        case FE_HARD_SIGMOID: {
            VT al = V1(bp[0]), be = V1(cp[0]);
            FE_LOOP1(VMIN(V1(1.0f), VMAX(V1(0.0f), VADD(VMUL(al, x), be))));
            break;
        }
        case FE_HARD_SWISH:
            FE_LOOP1(VMUL(x, VMIN(V1(1.0f), VMAX(V1(0.0f), VADD(VMUL(x, V1((float)(1.0 / 6.0))),
                                                               V1(0.5f))))));
            break;
        case FE_CLIP: {
            VT lo = V1(bp ? bp[0] : XF_NEG_INF), hi = V1(cp ? cp[0] : INFINITY);
            FE_LOOP1(VMIN(hi, VMAX(lo, x)));
            break;
        }
        default: cpu_fe_scalar(in->opc, a, bp, cp, y, n); break;
        }
    }
}
#undef FE_LOOP1
#undef FE_LOOP2

const cpu_xf_kernels XF_TABLE = {
    XF_ISA, true, W, XF_FN(attn_task), XF_FN(norm_rows), XF_FN(softmax),
    XF_FN(gelu), XF_FN(fe_run),
};
