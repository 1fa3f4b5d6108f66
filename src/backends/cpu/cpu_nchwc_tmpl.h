/* cpu_nchwc_tmpl.h: the NCHWc microkernel family, written once and
** instantiated per ISA (cpu_nchwc_avx512.c, cpu_nchwc_avx2.c), so a fix lands
** in every ISA. The vector width is the channel block. The includer
** defines:
**   NC_B          channel block (floats per vector)
**   NC_T          output pixels per register tile
**   NC_OB         output blocks per register tile (2 or 4)
**   NC_VEC        the vector type; NC_LOAD NC_STORE NC_SET1 NC_ZERO NC_FMA
**                 NC_ADD NC_MAX NC_MIN NC_MUL
**   NC_FN(name)   the ISA-suffixed name of a function
**   and the vector-math macros of cpu_vec_math.h (VM VT V1 ...), whose
**   functions give the transcendental activations in registers
** Direct convolution: a tile of up to NC_OB output blocks x NC_T pixels stays
** in registers; each input value is broadcast once per tile and multiplied by
** the weight vectors of its blocks (weights [C][KH][KW][b] per block, or
** the taps tactics' [Cb][KH][KW][b][b], the job's strides say which; one
** load gives b output channels). On a blocked input, tiles whose window
** leaves the row read a block of zeros for the taps outside (one pointer
** per pixel); a plain NCHW input (the first conv) runs its edge pixels one
** at a time with bounds checks. */
#include "cpu_nchwc.h"

#define NC_INLINE static inline __attribute__((always_inline))

/* NC_TD: output pixels per tile of the direct conv on a blocked input
** (default NC_T); AVX-512 takes 7, so that the 56-, 28-, 14- and 7-pixel
** rows of ResNet's layers leave no narrow tile that streams all the
** weights again for one or two pixels */
#ifndef NC_TD
#define NC_TD NC_T
#endif
/* NC_TD_TAIL 1: the NC_TD tile only for a row's last NC_TD pixels (AVX2:
** 7 x 2 blocks spill a register, a loss on long rows, a gain where it
** replaces a 6 + 1 split) */
#ifndef NC_TD_TAIL
#define NC_TD_TAIL 0
#endif
/* NC_EDGE1 1: a tile's taps where only its first or only its last pixel
** leaves the row run the plain loop over the other pixels (conv_tile) */
#ifndef NC_EDGE1
#define NC_EDGE1 0
#endif
#if NC_T > 6 || NC_TD > 7 || NC_TD < NC_T
#error "the row-remainder switches in conv_part() cover tiles of at most 6 (7) pixels"
#endif

static const float NC_FN(zeros)[NC_B] __attribute__((aligned(64)));

#include "cpu_vec_math.h"

/* Activations other than Relu/Clip, out of line (big; a call is cheap next
** to them). Piecewise-linear ones go through the scalar formulas. */
static __attribute__((noinline)) NC_VEC NC_FN(act_math)(NC_VEC v, const fused_act *a) {
    switch (a->kind) {
    case FUSED_ACT_SIGMOID: return VM(sigmoid)(v);
    case FUSED_ACT_SILU: return NC_MUL(v, VM(sigmoid)(v));
    case FUSED_ACT_TANH: return VM(tanh)(v);
    case FUSED_ACT_GELU: return VM(gelu)(v);
    case FUSED_ACT_GELU_TANH: return VM(gelu_tanh)(v);
    default: {
        float t[NC_B];
        NC_STORE(t, v);
        for (int i = 0; i < NC_B; i++) t[i] = fused_act_f32(a, t[i]);
        return NC_LOAD(t);
    }
    }
}

NC_INLINE NC_VEC NC_FN(epi)(const cpu_nchwc_job *j, NC_VEC v, const float *z) {
    if (z) v = NC_ADD(v, NC_LOAD(z));
    /* bound first: max/min return their second operand on NaN, as the
    ** scalar formulas keep NaN */
    if (j->act == NCHWC_ACT_RELU) v = NC_MAX(NC_ZERO(), v);
    else if (j->act == NCHWC_ACT_CLIP)
        v = NC_MIN(NC_SET1(j->hi), NC_MAX(NC_SET1(j->lo), v));
    else if (j->act == NCHWC_ACT_POST)
        v = NC_FN(act_math)(v, &j->fact);
    return v;
}

/* Input blocks [cb0, cb1) of the sum: the first part starts from the bias
** and Z (read before y is written, so Z may be y itself), the others from
** the partial sums in y; the last applies the activation. */
NC_INLINE void NC_FN(conv_tile)(const cpu_nchwc_job *j, const float *xn, int64_t mb0,
                                int64_t oy, int64_t ox, float *yp, const float *zp,
                                const int T, const int OB, const bool edge, const bool nchw,
                                const bool masked, const bool s1, int64_t cb0, int64_t cb1,
                                bool first, bool last) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    /* weights: [C][KH][KW][b] per output block, or tap-major within each
    ** input block, [Cb][KH][KW][b][b] (the prepared blob): the job's
    ** strides say which */
    const int64_t C = g->C, wmb = j->w_mb, wic = j->w_ic, wtap = j->w_tap;
    const int64_t xpix = nchw ? 1 : NC_B, xic = nchw ? j->xs_ic : 1;
    /* s1: stride 1 on a blocked input, the pixel step a constant */
    const int64_t pstep = s1 ? NC_B : w->sw * xpix;
    const int64_t ymb = g->OH * g->OW * NC_B;
    NC_VEC acc[NC_OB][NC_TD];
    for (int o = 0; o < OB; o++) {
        if (first) {
            NC_VEC b0 = j->bias ? NC_LOAD(j->bias + (mb0 + o) * NC_B) : NC_ZERO();
            for (int t = 0; t < T; t++)
                acc[o][t] = zp ? NC_ADD(b0, NC_LOAD(zp + o * ymb + t * NC_B)) : b0;
        } else {
            for (int t = 0; t < T; t++) acc[o][t] = NC_LOAD(yp + o * ymb + t * NC_B);
        }
    }
    int64_t ix0 = ox * w->sw - w->pl;
    for (int64_t ky = 0; ky < w->kh; ky++) {
        int64_t iy = oy * w->sh - w->pt + ky * w->dh;
        if (iy < 0 || iy >= g->H) continue;
        for (int64_t cb = cb0; cb < cb1; cb++) {
            int64_t clen = C - cb * NC_B < NC_B ? C - cb * NC_B : NC_B;
            const float *xr = xn + cb * j->xs_cb + iy * j->xs_row;
            const float *wr = j->w + mb0 * wmb + cb * j->w_cb + ky * w->kw * wtap;
            for (int64_t kx = 0; kx < w->kw; kx++) {
                int64_t ix = ix0 + kx * w->dw;
                const float *wp = wr + kx * wtap;
                /* only the first or only the last pixel's tap outside (the
                ** edge tiles of a row with pad 1): the plain loop without
                ** that pixel (512ch 7x7 s1: 1.35 -> 1.21 ms, 14x14 s2:
                ** 1.44 -> 1.39, against the pointer loop below; AVX2, where
                ** 15 of the 16 registers are the tile's, lost 13% on
                ** 128ch 56x56 s2 with them, so NC_EDGE1 is 0 there) */
                if (NC_EDGE1 && masked && T > 1 && ix < 0 && ix + w->sw >= 0 &&
                    ix + (T - 1) * w->sw < g->W) {
                    const float *xp = xr + (ix + w->sw) * NC_B; /* pixel 1's */
                    for (int64_t ic = 0; ic < clen; ic++) {
                        NC_VEC wv[NC_OB];
                        for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(wp + o * wmb + ic * wic);
#pragma GCC unroll 16
                        for (int t = 1; t < T; t++) {
                            NC_VEC xv = NC_SET1(xp[(t - 1) * pstep + ic]);
                            for (int o = 0; o < OB; o++) acc[o][t] = NC_FMA(xv, wv[o], acc[o][t]);
                        }
                    }
                    continue;
                }
                if (NC_EDGE1 && masked && T > 1 && ix >= 0 && ix + (T - 2) * w->sw < g->W &&
                    ix + (T - 1) * w->sw >= g->W) {
                    const float *xp = xr + ix * NC_B;
                    for (int64_t ic = 0; ic < clen; ic++) {
                        NC_VEC wv[NC_OB];
                        for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(wp + o * wmb + ic * wic);
#pragma GCC unroll 16
                        for (int t = 0; t < T - 1; t++) {
                            NC_VEC xv = NC_SET1(xp[t * pstep + ic]);
                            for (int o = 0; o < OB; o++) acc[o][t] = NC_FMA(xv, wv[o], acc[o][t]);
                        }
                    }
                    continue;
                }
                if (masked && (ix < 0 || ix + (T - 1) * w->sw >= g->W)) {
                    /* blocked input, this tap partly outside the row:
                    ** pixels whose tap is outside read a block of zeros
                    ** (the tile's other taps take the plain loop below) */
                    const float *xq[NC_TD];
                    for (int t = 0; t < T; t++) {
                        int64_t it = ix + t * w->sw;
                        xq[t] = it >= 0 && it < g->W ? xr + it * NC_B : NC_FN(zeros);
                    }
                    for (int64_t ic = 0; ic < clen; ic++) {
                        NC_VEC wv[NC_OB];
                        for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(wp + o * wmb + ic * wic);
#pragma GCC unroll 16
                        for (int t = 0; t < T; t++) {
                            NC_VEC xv = NC_SET1(xq[t][ic]);
                            for (int o = 0; o < OB; o++) acc[o][t] = NC_FMA(xv, wv[o], acc[o][t]);
                        }
                    }
                    continue;
                }
                if (edge && (ix < 0 || ix >= g->W)) continue;
                const float *xp = xr + ix * xpix;
                for (int64_t ic = 0; ic < clen; ic++) {
                    NC_VEC wv[NC_OB];
                    for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(wp + o * wmb + ic * wic);
#pragma GCC unroll 16
                    for (int t = 0; t < T; t++) {
                        NC_VEC xv = NC_SET1(xp[t * pstep + ic * xic]);
                        for (int o = 0; o < OB; o++) acc[o][t] = NC_FMA(xv, wv[o], acc[o][t]);
                    }
                }
            }
        }
    }
    for (int o = 0; o < OB; o++)
        for (int t = 0; t < T; t++) {
            int64_t off = o * ymb + t * NC_B;
            NC_STORE(yp + off, last ? NC_FN(epi)(j, acc[o][t], NULL) : acc[o][t]);
        }
}

/* A 1x1 stride-1 unpadded conv on a blocked input (the flat path: no
** window, no edges, the pixel step a constant): the bare tile, input
** blocks [cb0, cb1), partial sums as in conv_tile. The general tile's
** window loops and runtime strides cost it about a tenth of its speed on
** these layers (AVX-512, one thread). */
NC_INLINE void NC_FN(pw_tile)(const cpu_nchwc_job *j, const float *xn, int64_t mb0,
                              int64_t oy, int64_t ox, float *yp, const float *zp, const int T,
                              const int OB, int64_t cb0, int64_t cb1, bool first, bool last) {
    const nchwc_conv_geom *g = &j->g;
    const int64_t C = g->C, wmb = C * NC_B, ymb = g->OH * g->OW * NC_B;
    /* OB * T <= NC_OB * NC_T: fewer blocks take wider tiles */
    NC_VEC acc[NC_OB * NC_T];
#define NC_ACC(o, t) acc[(o) * T + (t)]
    for (int o = 0; o < OB; o++) {
        if (first) {
            NC_VEC b0 = j->bias ? NC_LOAD(j->bias + (mb0 + o) * NC_B) : NC_ZERO();
            for (int t = 0; t < T; t++)
                NC_ACC(o, t) = zp ? NC_ADD(b0, NC_LOAD(zp + o * ymb + t * NC_B)) : b0;
        } else {
            for (int t = 0; t < T; t++) NC_ACC(o, t) = NC_LOAD(yp + o * ymb + t * NC_B);
        }
    }
    const float *xq = xn + oy * j->xs_row + ox * NC_B, *wq = j->w + mb0 * wmb;
    for (int64_t cb = cb0; cb < cb1; cb++) {
        const float *xp = xq + cb * j->xs_cb, *wp = wq + cb * NC_B * NC_B;
        int64_t clen = C - cb * NC_B < NC_B ? C - cb * NC_B : NC_B;
        for (int64_t ic = 0; ic < clen; ic++) {
            NC_VEC wv[NC_OB];
            for (int o = 0; o < OB; o++) wv[o] = NC_LOAD(wp + o * wmb + ic * NC_B);
#pragma GCC unroll 16
            for (int t = 0; t < T; t++) {
                NC_VEC xv = NC_SET1(xp[t * NC_B + ic]);
                for (int o = 0; o < OB; o++) NC_ACC(o, t) = NC_FMA(xv, wv[o], NC_ACC(o, t));
            }
        }
    }
    for (int o = 0; o < OB; o++)
        for (int t = 0; t < T; t++) {
            int64_t off = o * ymb + t * NC_B;
            NC_STORE(yp + off, last ? NC_FN(epi)(j, NC_ACC(o, t), NULL) : NC_ACC(o, t));
        }
#undef NC_ACC
}

/* Whether pixels [ox, ox+T) read only inside the row. */
NC_INLINE bool NC_FN(inside)(const nchwc_win *w, int64_t W, int64_t ox, int64_t T) {
    int64_t first = ox * w->sw - w->pl;
    return first >= 0 && (ox + T - 1) * w->sw - w->pl + (w->kw - 1) * w->dw < W;
}

#define NC_CONV_CALL1(T, EDGE, MASK, OB)                                              \
    do {                                                                              \
        if (nchw)                                                                     \
            NC_FN(conv_tile)(j, xn, mb0, oy, ox, yp, zp, T, OB, EDGE, true, false, false, 0, \
                             g->Cb, true, true);                                      \
        else if (w->sw == 1)                                                          \
            NC_FN(conv_tile)(j, xn, mb0, oy, ox, yp, zp, T, OB, false, false, MASK, true, cb0, \
                             cb1, cb0 == 0, cb1 == g->Cb);                            \
        else                                                                          \
            NC_FN(conv_tile)(j, xn, mb0, oy, ox, yp, zp, T, OB, false, false, MASK, false, cb0, \
                             cb1, cb0 == 0, cb1 == g->Cb);                            \
    } while (0)
#if NC_OB == 4
#define NC_CONV_CALL(T, EDGE, MASK)                                                    \
    do {                                                                               \
        if (nb == 4) NC_CONV_CALL1(T, EDGE, MASK, 4);                                  \
        else if (nb == 3) NC_CONV_CALL1(T, EDGE, MASK, 3);                             \
        else if (nb == 2) NC_CONV_CALL1(T, EDGE, MASK, 2);                             \
        else NC_CONV_CALL1(T, EDGE, MASK, 1);                                          \
    } while (0)
#else
#define NC_CONV_CALL(T, EDGE, MASK)                                                    \
    do {                                                                               \
        if (nb == 2) NC_CONV_CALL1(T, EDGE, MASK, 2);                                  \
        else NC_CONV_CALL1(T, EDGE, MASK, 1);                                          \
    } while (0)
#endif

/* Input blocks [cb0, cb1) of pixels [ox0, ox1), register tile by tile. */
NC_INLINE void NC_FN(conv_part)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb,
                                int64_t oy, int64_t ox0, int64_t ox1, int64_t cb0,
                                int64_t cb1) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    const bool nchw = g->nchw_in;
    const float *xn = j->x + n * j->xs_n;
    int64_t row = ((n * g->Mb + mb0) * g->OH + oy) * g->OW;
    if (!nchw && w->kh == 1 && w->kw == 1 && w->sw == 1 && !w->pl && !w->pr && !j->pw_off) {
        for (int64_t ox = ox0; ox < ox1;) {
            float *yp = j->y + (row + ox) * NC_B;
            const float *zp = j->z ? j->z + (row + ox) * NC_B : NULL;
            if (nb <= NC_OB / 2 && ox1 - ox >= 2 * NC_T) {
                /* one or two blocks: tiles twice as wide, enough
                ** independent sums to hide the multiply-add latency */
                if (nb == NC_OB / 2)
                    NC_FN(pw_tile)(j, xn, mb0, oy, ox, yp, zp, 2 * NC_T, NC_OB / 2, cb0, cb1,
                                   cb0 == 0, cb1 == g->Cb);
                else
                    NC_FN(pw_tile)(j, xn, mb0, oy, ox, yp, zp, 2 * NC_T, 1, cb0, cb1, cb0 == 0,
                                   cb1 == g->Cb);
                ox += 2 * NC_T;
                continue;
            }
            int64_t k = KILN_MIN(ox1 - ox, (int64_t)NC_T);
            switch (k) {
#define NC_PW1(K, OB)                                                                        \
    NC_FN(pw_tile)(j, xn, mb0, oy, ox, yp, zp, K, OB, cb0, cb1, cb0 == 0, cb1 == g->Cb)
#if NC_OB == 4
#define NC_PW(K)                                                                            \
    case K:                                                                                 \
        if (nb == 4) NC_PW1(K, 4);                                                          \
        else if (nb == 3) NC_PW1(K, 3);                                                     \
        else if (nb == 2) NC_PW1(K, 2);                                                     \
        else NC_PW1(K, 1);                                                                  \
        break;
#else
#define NC_PW(K)                                                                            \
    case K:                                                                                 \
        if (nb == 2) NC_PW1(K, 2);                                                          \
        else NC_PW1(K, 1);                                                                  \
        break;
#endif
                NC_PW(1) NC_PW(2) NC_PW(3) NC_PW(4) NC_PW(5) NC_PW(6)
#undef NC_PW
#undef NC_PW1
            default: break;
            }
            ox += k;
        }
        return;
    }
    for (int64_t ox = ox0; ox < ox1;) {
        float *yp = j->y + (row + ox) * NC_B;
        const float *zp = j->z ? j->z + (row + ox) * NC_B : NULL;
        int64_t left = ox1 - ox;
        if (!nchw) { /* blocked: whole tiles, masked where the window leaves the row */
            if ((NC_TD_TAIL ? left == NC_TD : left >= NC_TD) && (NC_TD == NC_T || !j->td_off)) {
                if (NC_FN(inside)(w, g->W, ox, NC_TD)) NC_CONV_CALL(NC_TD, false, false);
                else NC_CONV_CALL(NC_TD, false, true);
                ox += NC_TD;
#if NC_TD > NC_T
            } else if (left >= NC_T) { /* KILN_CPU_TILE7=0 */
                if (NC_FN(inside)(w, g->W, ox, NC_T)) NC_CONV_CALL(NC_T, false, false);
                else NC_CONV_CALL(NC_T, false, true);
                ox += NC_T;
#endif
            } else { /* the row's remainder as one narrower tile */
                bool in = NC_FN(inside)(w, g->W, ox, left);
                switch (left) {
#define NC_TAIL(K)                                   \
    case K:                                          \
        if (in) NC_CONV_CALL(K, false, false);       \
        else NC_CONV_CALL(K, false, true);           \
        break;
                    NC_TAIL(1) NC_TAIL(2) NC_TAIL(3) NC_TAIL(4) NC_TAIL(5)
#if NC_TD > 6
                    NC_TAIL(6)
#endif
#undef NC_TAIL
                default: break;
                }
                ox += left;
            }
        } else if (left >= NC_T && NC_FN(inside)(w, g->W, ox, NC_T)) {
            NC_CONV_CALL(NC_T, false, false);
            ox += NC_T;
        } else if (left >= NC_T / 2 && NC_FN(inside)(w, g->W, ox, NC_T / 2)) {
            NC_CONV_CALL(NC_T / 2, false, false);
            ox += NC_T / 2;
        } else if (NC_FN(inside)(w, g->W, ox, 1)) {
            NC_CONV_CALL(1, false, false);
            ox++;
        } else {
            NC_CONV_CALL(1, true, false);
            ox++;
        }
    }
}

/* Output rows [oy0, oy1) of pixels [ox0, ox1) (a single row when the
** pixels are not the whole row). A blocked input's channels go in parts of
** j->cb_part blocks, each part over all the rows and pixels: its weights
** stay in L1 across the tiles of every row. */
NC_INLINE void NC_FN(conv_span)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb,
                                int64_t oy0, int64_t oy1, int64_t ox0, int64_t ox1) {
    const nchwc_conv_geom *g = &j->g;
    int64_t part = !g->nchw_in && j->cb_part > 0 ? j->cb_part : g->Cb, cb0 = 0;
    do { /* once when Cb is 0: the bias alone */
        int64_t cb1 = KILN_MIN(cb0 + part, g->Cb);
        for (int64_t oy = oy0; oy < oy1; oy++)
            NC_FN(conv_part)(j, n, mb0, nb, oy, ox0, ox1, cb0, cb1);
        cb0 = cb1;
    } while (cb0 < g->Cb);
}

static void NC_FN(conv)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb,
                        int64_t oy, int64_t ox0, int64_t ox1) {
    NC_FN(conv_span)(j, n, mb0, nb, oy, oy + 1, ox0, ox1);
}

static void NC_FN(conv_rows)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb,
                             int64_t oy0, int64_t oy1) {
    NC_FN(conv_span)(j, n, mb0, nb, oy0, oy1, 0, j->g.OW);
}

/* ------------------------------------------------------------ depthwise */
NC_INLINE void NC_FN(dw_tile)(const cpu_nchwc_job *j, const float *xc, const float *wc,
                              NC_VEC bias, int64_t oy, int64_t ox, float *yp,
                              const float *zp, const int T, const bool edge) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    NC_VEC acc[NC_T];
    for (int t = 0; t < T; t++) acc[t] = bias;
    int64_t ix0 = ox * w->sw - w->pl, pstep = w->sw * NC_B;
    for (int64_t ky = 0; ky < w->kh; ky++) {
        int64_t iy = oy * w->sh - w->pt + ky * w->dh;
        if (iy < 0 || iy >= g->H) continue;
        const float *xr = xc + iy * g->W * NC_B;
        for (int64_t kx = 0; kx < w->kw; kx++) {
            int64_t ix = ix0 + kx * w->dw;
            if (edge && (ix < 0 || ix >= g->W)) continue;
            NC_VEC wv = NC_LOAD(wc + (ky * w->kw + kx) * NC_B);
            const float *xp = xr + ix * NC_B;
#pragma GCC unroll 16
            for (int t = 0; t < T; t++) acc[t] = NC_FMA(NC_LOAD(xp + t * pstep), wv, acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        NC_STORE(yp + t * NC_B, NC_FN(epi)(j, acc[t], zp ? zp + t * NC_B : NULL));
}

static void NC_FN(dwconv)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    const float *xc = j->x + (n * g->Cb + cb) * g->H * g->W * NC_B;
    const float *wc = j->w + cb * w->kh * w->kw * NC_B;
    NC_VEC bias = j->bias ? NC_LOAD(j->bias + cb * NC_B) : NC_ZERO();
    int64_t row = ((n * g->Mb + cb) * g->OH + oy) * g->OW;
    for (int64_t ox = 0; ox < g->OW;) {
        float *yp = j->y + (row + ox) * NC_B;
        const float *zp = j->z ? j->z + (row + ox) * NC_B : NULL;
        int64_t k = KILN_MIN(g->OW - ox, (int64_t)NC_T);
        while (k > 1 && !NC_FN(inside)(w, g->W, ox, k)) k--;
        if (k > 1) { /* the widest inside tile: a 7-pixel row's 5 inner pixels in one */
            switch (k) {
#define NC_DW(K)                                                                   \
    case K: NC_FN(dw_tile)(j, xc, wc, bias, oy, ox, yp, zp, K, false); break;
                NC_DW(2) NC_DW(3) NC_DW(4) NC_DW(5) NC_DW(6)
#undef NC_DW
            default: break;
            }
            ox += k;
        } else if (NC_FN(inside)(w, g->W, ox, 1)) {
            NC_FN(dw_tile)(j, xc, wc, bias, oy, ox, yp, zp, 1, false);
            ox++;
        } else {
            NC_FN(dw_tile)(j, xc, wc, bias, oy, ox, yp, zp, 1, true);
            ox++;
        }
    }
}

/* ---------------------------------------------------------------- pools */
static void NC_FN(pool)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    const float *xc = j->x + (n * g->Cb + cb) * g->H * g->W * NC_B;
    bool mx = j->pool_kind == NCHWC_POOL_MAX || j->pool_kind == NCHWC_POOL_GLOBAL_MAX;
    if (j->pool_kind >= NCHWC_POOL_GLOBAL_AVG) {
        NC_VEC acc = mx ? NC_SET1(-INFINITY) : NC_ZERO();
        int64_t hw = g->H * g->W;
        for (int64_t p = 0; p < hw; p++)
            acc = mx ? NC_MAX(acc, NC_LOAD(xc + p * NC_B)) : NC_ADD(acc, NC_LOAD(xc + p * NC_B));
        if (!mx) acc = NC_MUL(acc, NC_SET1(1.0f / (float)hw));
        NC_STORE(j->y + (n * g->Cb + cb) * NC_B, acc);
        return;
    }
    float *yr = j->y + ((n * g->Cb + cb) * g->OH + oy) * g->OW * NC_B;
    for (int64_t ox = 0; ox < g->OW; ox++) {
        NC_VEC acc = mx ? NC_SET1(-INFINITY) : NC_ZERO();
        int64_t cnt = 0;
        for (int64_t ky = 0; ky < w->kh; ky++) {
            int64_t iy = oy * w->sh - w->pt + ky * w->dh;
            if (iy < 0 || iy >= g->H) continue;
            for (int64_t kx = 0; kx < w->kw; kx++) {
                int64_t ix = ox * w->sw - w->pl + kx * w->dw;
                if (ix < 0 || ix >= g->W) continue;
                NC_VEC v = NC_LOAD(xc + (iy * g->W + ix) * NC_B);
                acc = mx ? NC_MAX(acc, v) : NC_ADD(acc, v);
                cnt++;
            }
        }
        if (!mx) {
            int64_t den = j->count_include_pad ? w->kh * w->kw : cnt;
            acc = den ? NC_MUL(acc, NC_SET1(1.0f / (float)den)) : NC_ZERO();
        }
        NC_STORE(yr + ox * NC_B, acc);
    }
}
