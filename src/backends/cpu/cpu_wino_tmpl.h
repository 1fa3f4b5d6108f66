/* cpu_wino_tmpl.h: the Winograd F(4x4,3x3) and F(2x2,3x3) kernels on the
** channel-blocked layout (see cpu_wino_job in cpu_nchwc.h), written once and
** instantiated per ISA next to the direct kernels (cpu_nchwc_avx512.c,
** cpu_nchwc_avx2.c, and cpu_nchwc_c.c for portable C). The includer defines
** the NC_* vector macros of cpu_nchwc_tmpl.h, NC_FN(name), and the
** epilogue NC_FN(epi)(job, v, z) (bias excluded), plus
**   WN_T   tiles per GEMM register tile (rows broadcast from V)
**   WN_OB  output blocks per GEMM register tile (weight vectors)
** Every transform works on whole vectors of one channel block, so the
** b channels of a pixel go through it side by side: no shuffles. The GEMM
** is the direct kernels' register tile again: WN_OB weight vectors of U
** times WN_T broadcast values of V, over the real input channels. */
#include "cpu_nchwc.h"

#ifndef NC_INLINE
#define NC_INLINE static inline __attribute__((always_inline))
#endif

#if WN_T > 8
#error "the tile-remainder switch in wino_gemm covers at most 8 tiles"
#endif

/* ---- 1-D transforms (a points in, a out; a out, m out). The matrices are
** the usual ones for the interpolation points 0, 1, -1, 2, -2 and infinity
** (m = 4) or 0, 1, -1, infinity (m = 2), factored into sums and
** differences so each costs a few adds and FMAs. */
NC_INLINE void NC_FN(wn_in6)(const NC_VEC *d, NC_VEC *r) {
    /* B^T rows: [4 0 -5 0 1 0] [0 -4 -4 1 1 0] [0 4 -4 -1 1 0]
    **           [0 -2 -1 2 1 0] [0 2 -1 -2 1 0] [0 4 0 -5 0 1] */
    NC_VEC s12 = NC_ADD(d[1], d[2]), d12 = NC_SUB(d[1], d[2]);
    NC_VEC s34 = NC_ADD(d[3], d[4]), d43 = NC_SUB(d[4], d[3]);
    NC_VEC d31 = NC_SUB(d[3], d[1]), d42 = NC_SUB(d[4], d[2]);
    r[0] = NC_FMA(NC_SET1(4.0f), d[0], NC_FMA(NC_SET1(-5.0f), d[2], d[4]));
    r[1] = NC_FMA(NC_SET1(-4.0f), s12, s34);
    r[2] = NC_FMA(NC_SET1(4.0f), d12, d43);
    r[3] = NC_FMA(NC_SET1(2.0f), d31, d42);
    r[4] = NC_FMA(NC_SET1(-2.0f), d31, d42);
    r[5] = NC_FMA(NC_SET1(4.0f), d[1], NC_FMA(NC_SET1(-5.0f), d[3], d[5]));
}

NC_INLINE void NC_FN(wn_out6)(const NC_VEC *s, NC_VEC *o) {
    /* A^T rows: [1 1 1 1 1 0] [0 1 -1 2 -2 0] [0 1 1 4 4 0] [0 1 -1 8 -8 1] */
    NC_VEC a = NC_ADD(s[1], s[2]), b = NC_SUB(s[1], s[2]);
    NC_VEC c = NC_ADD(s[3], s[4]), d = NC_SUB(s[3], s[4]);
    o[0] = NC_ADD(NC_ADD(s[0], a), c);
    o[1] = NC_FMA(NC_SET1(2.0f), d, b);
    o[2] = NC_FMA(NC_SET1(4.0f), c, a);
    o[3] = NC_ADD(NC_FMA(NC_SET1(8.0f), d, b), s[5]);
}

NC_INLINE void NC_FN(wn_in4)(const NC_VEC *d, NC_VEC *r) {
    /* B^T rows: [1 0 -1 0] [0 1 1 0] [0 -1 1 0] [0 1 0 -1] */
    r[0] = NC_SUB(d[0], d[2]);
    r[1] = NC_ADD(d[1], d[2]);
    r[2] = NC_SUB(d[2], d[1]);
    r[3] = NC_SUB(d[1], d[3]);
}

NC_INLINE void NC_FN(wn_out4)(const NC_VEC *s, NC_VEC *o) {
    /* A^T rows: [1 1 1 0] [0 1 -1 -1] */
    o[0] = NC_ADD(NC_ADD(s[0], s[1]), s[2]);
    o[1] = NC_SUB(NC_SUB(s[1], s[2]), s[3]);
}

/* ---- input transform of one tile and channel block into V */
NC_INLINE void NC_FN(wn_input)(const cpu_wino_job *wj, int64_t gt, int64_t cb, float *v,
                               int64_t vstride, const int WM) {
    enum { A_MAX = 6 };
    const int A = WM + 2;
    const nchwc_conv_geom *g = &wj->j.g;
    int64_t per = wj->TH * wj->TW, n = gt / per, r = gt % per;
    int64_t iy0 = r / wj->TW * WM - g->win.pt, ix0 = r % wj->TW * WM - g->win.pl;
    const float *xc = wj->j.x + (n * g->Cb + cb) * g->H * g->W * NC_B;
    bool inside = iy0 >= 0 && iy0 + A <= g->H && ix0 >= 0 && ix0 + A <= g->W;
    NC_VEC t[A_MAX][A_MAX]; /* rows transformed: t[i][q] */
    for (int i = 0; i < A; i++) {
        NC_VEC d[A_MAX];
        int64_t iy = iy0 + i;
        if (inside) {
            const float *xr = xc + (iy * g->W + ix0) * NC_B;
            for (int q = 0; q < A; q++) d[q] = NC_LOAD(xr + q * NC_B);
        } else {
            bool rin = iy >= 0 && iy < g->H;
            for (int q = 0; q < A; q++) {
                int64_t ix = ix0 + q;
                d[q] = rin && ix >= 0 && ix < g->W ? NC_LOAD(xc + (iy * g->W + ix) * NC_B)
                                                   : NC_ZERO();
            }
        }
        if (WM == 4) NC_FN(wn_in6)(d, t[i]);
        else NC_FN(wn_in4)(d, t[i]);
    }
    for (int q = 0; q < A; q++) {
        NC_VEC col[A_MAX], o[A_MAX];
        for (int i = 0; i < A; i++) col[i] = t[i][q];
        if (WM == 4) NC_FN(wn_in6)(col, o);
        else NC_FN(wn_in4)(col, o);
        for (int i = 0; i < A; i++) NC_STORE(v + (i * A + q) * vstride, o[i]);
    }
}

/* ---- output transform of one tile and output block, with the epilogue */
NC_INLINE void NC_FN(wn_output)(const cpu_wino_job *wj, int64_t gt, int64_t mb,
                                const float *ms, int64_t mstride, const int WM) {
    enum { A_MAX = 6, M_MAX = 4 };
    const int A = WM + 2;
    const cpu_nchwc_job *j = &wj->j;
    const nchwc_conv_geom *g = &j->g;
    int64_t per = wj->TH * wj->TW, n = gt / per, r = gt % per;
    int64_t oy0 = r / wj->TW * WM, ox0 = r % wj->TW * WM;
    NC_VEC t[A_MAX][M_MAX]; /* rows reduced: t[i][c] */
    for (int i = 0; i < A; i++) {
        NC_VEC s[A_MAX];
        for (int q = 0; q < A; q++) s[q] = NC_LOAD(ms + (i * A + q) * mstride);
        if (WM == 4) NC_FN(wn_out6)(s, t[i]);
        else NC_FN(wn_out4)(s, t[i]);
    }
    NC_VEC y[M_MAX][M_MAX]; /* y[row][col] */
    for (int c = 0; c < WM; c++) {
        NC_VEC col[A_MAX], o[M_MAX];
        for (int i = 0; i < A; i++) col[i] = t[i][c];
        if (WM == 4) NC_FN(wn_out6)(col, o);
        else NC_FN(wn_out4)(col, o);
        for (int rr = 0; rr < WM; rr++) y[rr][c] = o[rr];
    }
    NC_VEC bias = j->bias ? NC_LOAD(j->bias + mb * NC_B) : NC_ZERO();
    int64_t rows = KILN_MIN((int64_t)WM, g->OH - oy0), cols = KILN_MIN((int64_t)WM, g->OW - ox0);
    int64_t base = ((n * g->Mb + mb) * g->OH + oy0) * g->OW + ox0;
    for (int64_t rr = 0; rr < rows; rr++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t off = (base + rr * g->OW + c) * NC_B;
            NC_VEC v = NC_ADD(y[rr][c], bias);
            NC_STORE(j->y + off, NC_FN(epi)(j, v, j->z ? j->z + off : NULL));
        }
}

/* ---- GEMM register tile: T tiles x OB output blocks, K = the real input
** channels. v: V[p][0][t0] (blocks vcb floats apart), u: U[p][mb0][0]
** (output blocks umb floats apart), m: M[p][0][t0] (blocks mo apart). */
NC_INLINE void NC_FN(wn_gemm_tile)(const float *v, int64_t vcb, const float *u, int64_t umb,
                                   int64_t C, float *m, int64_t mo, const int T, const int OB) {
    NC_VEC acc[WN_OB][WN_T];
    for (int o = 0; o < OB; o++)
        for (int t = 0; t < T; t++) acc[o][t] = NC_ZERO();
    for (int64_t c0 = 0; c0 < C; c0 += NC_B) {
        int64_t clen = C - c0 < NC_B ? C - c0 : NC_B;
        const float *vp = v + c0 / NC_B * vcb, *up = u + c0 * NC_B;
        for (int64_t ic = 0; ic < clen; ic++) {
            NC_VEC wv[WN_OB];
            for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(up + o * umb + ic * NC_B);
#pragma GCC unroll 16
            for (int t = 0; t < T; t++) {
                NC_VEC xv = NC_SET1(vp[t * NC_B + ic]);
                for (int o = 0; o < OB; o++) acc[o][t] = NC_FMA(xv, wv[o], acc[o][t]);
            }
        }
    }
    for (int o = 0; o < OB; o++)
        for (int t = 0; t < T; t++) NC_STORE(m + o * mo + t * NC_B, acc[o][t]);
}

#define WN_GEMM1(T, OB) NC_FN(wn_gemm_tile)(vp, vcb, up, umb, C, mp, mo, T, OB)
#if WN_OB == 4
#define WN_GEMM(T)                                  \
    do {                                            \
        if (nb == 4) WN_GEMM1(T, 4);                \
        else if (nb == 3) WN_GEMM1(T, 3);           \
        else if (nb == 2) WN_GEMM1(T, 2);           \
        else WN_GEMM1(T, 1);                        \
    } while (0)
#elif WN_OB == 2
#define WN_GEMM(T)                                  \
    do {                                            \
        if (nb == 2) WN_GEMM1(T, 2);                \
        else WN_GEMM1(T, 1);                        \
    } while (0)
#else
#error "WN_OB must be 2 or 4"
#endif

/* P GEMMs of the chunk for output blocks [mb0, mb0 + nb) */
static void NC_FN(wn_gemm)(const cpu_wino_job *wj, const float *V, float *Mbuf, int64_t nt,
                           int64_t mb0, int64_t nb, int P) {
    const nchwc_conv_geom *g = &wj->j.g;
    const int64_t C = g->C, tc = wj->tc, vcb = tc * NC_B, mo = tc * NC_B;
    const int64_t umb = C * NC_B;
    for (int p = 0; p < P; p++) {
        const float *up = wj->u + ((int64_t)p * g->Mb + mb0) * umb;
        for (int64_t t0 = 0; t0 < nt; t0 += WN_T) {
            const float *vp = V + ((int64_t)p * g->Cb * tc + t0) * NC_B;
            float *mp = Mbuf + ((int64_t)p * WN_OB * tc + t0) * NC_B;
            switch (nt - t0 < WN_T ? nt - t0 : WN_T) {
#define WN_CASE(K) \
    case K: WN_GEMM(K); break;
            WN_CASE(1) WN_CASE(2) WN_CASE(3) WN_CASE(4)
#if WN_T >= 5
            WN_CASE(5)
#endif
#if WN_T >= 6
            WN_CASE(6)
#endif
#if WN_T >= 7
            WN_CASE(7)
#endif
#if WN_T >= 8
            WN_CASE(8)
#endif
#undef WN_CASE
            default: break;
            }
        }
    }
}

NC_INLINE void NC_FN(wn_chunk_m)(const cpu_wino_job *wj, int64_t t0, int64_t nt, int64_t mb_lo,
                                 int64_t mb_hi, float *scratch, const int WM) {
    const nchwc_conv_geom *g = &wj->j.g;
    const int P = (WM + 2) * (WM + 2);
    const int64_t tc = wj->tc;
    float *V = scratch, *Mbuf = scratch + (int64_t)P * g->Cb * tc * NC_B;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t cb = 0; cb < g->Cb; cb++)
            NC_FN(wn_input)(wj, t0 + t, cb, V + (cb * tc + t) * NC_B, g->Cb * tc * NC_B, WM);
    for (int64_t mb0 = mb_lo; mb0 < mb_hi; mb0 += WN_OB) {
        int64_t nb = KILN_MIN((int64_t)WN_OB, mb_hi - mb0);
        NC_FN(wn_gemm)(wj, V, Mbuf, nt, mb0, nb, P);
        for (int64_t t = 0; t < nt; t++)
            for (int64_t o = 0; o < nb; o++)
                NC_FN(wn_output)(wj, t0 + t, mb0 + o, Mbuf + (o * tc + t) * NC_B,
                                 WN_OB * tc * NC_B, WM);
    }
}

static void NC_FN(wino_chunk)(const cpu_wino_job *wj, int64_t t0, int64_t nt, int64_t mb_lo,
                              int64_t mb_hi, float *scratch) {
    if (wj->m == 4) NC_FN(wn_chunk_m)(wj, t0, nt, mb_lo, mb_hi, scratch, 4);
    else NC_FN(wn_chunk_m)(wj, t0, nt, mb_lo, mb_hi, scratch, 2);
}

#undef WN_GEMM1
#undef WN_GEMM
