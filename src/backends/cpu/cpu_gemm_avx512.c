/* cpu_gemm_avx512.c: the 8x32 AVX-512F GEMM microkernel (16 accumulator
** registers; the A broadcasts fold into the FMAs as memory operands) with
** the epilogue applied in registers. Built with -mavx512f -mavx2 -mfma (see
** cpu.cmake); without those flags the kernel is marked unavailable. */
#include "cpu_gemm.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include "cpu_pack_x86.h"

#include <immintrin.h>
#include <math.h>

#define VM(name) v16_##name
#define VT __m512
#define V1(x) _mm512_set1_ps(x)
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMIN _mm512_min_ps
#define VMAX _mm512_max_ps
#define VFMA _mm512_fmadd_ps
#define VABS(x) _mm512_abs_ps(x)
#define VSEL_LT(a, b, x, y) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (y), (x))
#define VROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                              \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                     \
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#include "cpu_vec_math.h"

/* The transcendental activations, out of line (see cpu_vec_avx2.h). */
static __attribute__((noinline)) __m512 v16_act_math(__m512 v, const fused_act *a) {
    switch (a->kind) {
    case FUSED_ACT_SIGMOID: return v16_sigmoid(v);
    case FUSED_ACT_SILU: return _mm512_mul_ps(v, v16_sigmoid(v));
    case FUSED_ACT_TANH: return v16_tanh(v);
    case FUSED_ACT_GELU: return v16_gelu(v);
    case FUSED_ACT_GELU_TANH: return v16_gelu_tanh(v);
    default: {
        float t[16];
        _mm512_storeu_ps(t, v);
        for (int i = 0; i < 16; i++) t[i] = fused_act_f32(a, t[i]);
        return _mm512_loadu_ps(t);
    }
    }
}

static inline __attribute__((always_inline)) __m512 v16_act(__m512 v,
                                                            const fused_act *a) {
    const __m512 zero = _mm512_setzero_ps();
    switch (a->kind) {
    case FUSED_ACT_NONE: return v;
    /* Operand order as in cpu_vec_avx2.h: NaN inputs pass through. */
    case FUSED_ACT_RELU: return _mm512_max_ps(zero, v);
    case FUSED_ACT_CLIP:
        v = _mm512_max_ps(_mm512_set1_ps(a->alpha), v);
        return _mm512_min_ps(_mm512_set1_ps(a->beta), v);
    case FUSED_ACT_LEAKY_RELU: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
        return _mm512_mask_mul_ps(v, neg, _mm512_set1_ps(a->alpha), v);
    }
    case FUSED_ACT_HARD_SWISH: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps((float)(1.0 / 6.0))),
                                 _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(zero, t));
        return _mm512_mul_ps(v, t);
    }
    case FUSED_ACT_HARD_SIGMOID: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(a->alpha), v),
                                 _mm512_set1_ps(a->beta));
        return _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(zero, t));
    }
    default: return v16_act_math(v, a);
    }
}

static inline __attribute__((always_inline)) __m512
v16_epi(__m512 v, const cpu_epi *e, int64_t i, int64_t j) {
    if (e->alpha != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(e->alpha));
    if (e->c) {
        const float *cp = e->c + i * e->c_rs + j * e->c_cs;
        __m512 cv;
        if (e->c_cs == 1) {
            cv = _mm512_loadu_ps(cp);
        } else if (e->c_cs == 0) {
            cv = _mm512_set1_ps(*cp);
        } else {
            float t[16];
            for (int q = 0; q < 16; q++) t[q] = cp[q * e->c_cs];
            cv = _mm512_loadu_ps(t);
        }
        v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(e->beta), cv));
    }
    if (e->z) v = _mm512_add_ps(v, _mm512_loadu_ps(e->z + i * e->z_ld + j));
    return v16_act(v, &e->act);
}

static inline __attribute__((always_inline)) void
row_out(float *y, __m512 v0, __m512 v1, bool accumulate, const cpu_epi *e, int64_t i,
        int64_t j) {
    if (accumulate) {
        v0 = _mm512_add_ps(v0, _mm512_loadu_ps(y));
        v1 = _mm512_add_ps(v1, _mm512_loadu_ps(y + 16));
    }
    if (e) {
        v0 = v16_epi(v0, e, i, j);
        v1 = v16_epi(v1, e, i, j + 16);
    }
    _mm512_storeu_ps(y, v0);
    _mm512_storeu_ps(y + 16, v1);
}

#define STEP(r)                                                                \
    do {                                                                       \
        __m512 av = _mm512_set1_ps(a[r]);                                      \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                            \
        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                            \
    } while (0)

/* Edge tiles of few rows (small M: batch-1 transformer layers, the last
** row panel): the same panel layout (A rows 8 apart per k) but only R rows
** of FMAs, so a 1-row tile costs 1/8 of a full one. */
#define UKR_ROWS(R)                                                            \
    static void ukr_##R##x32(int64_t kc, const float *a, const float *b,      \
                             int64_t bs, float *y, int64_t ldy, int mr,        \
                             int nr, bool accumulate, const cpu_epi *e,        \
                             int64_t i0, int64_t j0) {                         \
        __m512 c[R][2];                                                        \
        for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm512_setzero_ps(); \
        for (int64_t k = 0; k < kc; k++) {                                     \
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);      \
            for (int r = 0; r < R; r++) {                                      \
                __m512 av = _mm512_set1_ps(a[r]);                              \
                c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);                    \
                c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);                    \
            }                                                                  \
            a += 8;                                                            \
            b += bs;                                                           \
        }                                                                      \
        if (nr == 32) {                                                        \
            for (int r = 0; r < mr; r++)                                       \
                row_out(y + r * ldy, c[r][0], c[r][1], accumulate, e, i0 + r,  \
                        j0);                                                   \
            return;                                                            \
        }                                                                      \
        float t[R * 32];                                                       \
        for (int r = 0; r < R; r++) {                                          \
            _mm512_storeu_ps(t + r * 32, c[r][0]);                             \
            _mm512_storeu_ps(t + r * 32 + 16, c[r][1]);                        \
        }                                                                      \
        cpu_tile_store(t, 32, y, ldy, mr, nr, accumulate, e, i0, j0);          \
    }
UKR_ROWS(1)
UKR_ROWS(2)
UKR_ROWS(4)

static void ukr_8x32(int64_t kc, const float *a, const float *b, int64_t bs,
                     float *y, int64_t ldy, int mr, int nr, bool accumulate,
                     const cpu_epi *e, int64_t i0, int64_t j0) {
    if (mr <= 4) {
        (mr == 1 ? ukr_1x32 : mr == 2 ? ukr_2x32 : ukr_4x32)(kc, a, b, bs, y, ldy, mr, nr,
                                                            accumulate, e, i0, j0);
        return;
    }
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
    __m512 c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00;
    __m512 c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        STEP(4);
        STEP(5);
        STEP(6);
        STEP(7);
        a += 8;
        b += bs;
    }
    if (mr == 8 && nr == 32) {
        row_out(y, c00, c01, accumulate, e, i0, j0);
        row_out(y + ldy, c10, c11, accumulate, e, i0 + 1, j0);
        row_out(y + 2 * ldy, c20, c21, accumulate, e, i0 + 2, j0);
        row_out(y + 3 * ldy, c30, c31, accumulate, e, i0 + 3, j0);
        row_out(y + 4 * ldy, c40, c41, accumulate, e, i0 + 4, j0);
        row_out(y + 5 * ldy, c50, c51, accumulate, e, i0 + 5, j0);
        row_out(y + 6 * ldy, c60, c61, accumulate, e, i0 + 6, j0);
        row_out(y + 7 * ldy, c70, c71, accumulate, e, i0 + 7, j0);
        return;
    }
    float t[8 * 32];
    _mm512_storeu_ps(t, c00);
    _mm512_storeu_ps(t + 16, c01);
    _mm512_storeu_ps(t + 32, c10);
    _mm512_storeu_ps(t + 48, c11);
    _mm512_storeu_ps(t + 64, c20);
    _mm512_storeu_ps(t + 80, c21);
    _mm512_storeu_ps(t + 96, c30);
    _mm512_storeu_ps(t + 112, c31);
    _mm512_storeu_ps(t + 128, c40);
    _mm512_storeu_ps(t + 144, c41);
    _mm512_storeu_ps(t + 160, c50);
    _mm512_storeu_ps(t + 176, c51);
    _mm512_storeu_ps(t + 192, c60);
    _mm512_storeu_ps(t + 208, c61);
    _mm512_storeu_ps(t + 224, c70);
    _mm512_storeu_ps(t + 240, c71);
    cpu_tile_store(t, 32, y, ldy, mr, nr, accumulate, e, i0, j0);
}

/* Small-M dot kernel for one A row (M = 1; written for up to two): one B^T
** row at a time, so B^T is read as one forward stream (row after row, as
** laid out), which the hardware prefetchers follow. Reading four B^T rows
** at once (four streams, each only K floats long) ran ResNet-50's fc
** (K = 2048) at 0.32 ms with its weights cold, against 0.21 ms for this
** (1 thread, 2-core EPYC; software prefetch did not help either way). */
static inline __attribute__((always_inline)) void
dot_rows16(int M, int64_t K, const float *a, int64_t lda, const float *bt,
           int64_t ldb, int64_t j0, int64_t j1, float *y, int64_t ldy,
           const cpu_epi *e, int64_t i0) {
    const float *ar[2];
    for (int r = 0; r < 2; r++) ar[r] = a + (r < M ? r : 0) * lda;
    int64_t kt = K % 16;
    __mmask16 tail = (__mmask16)((1u << kt) - 1u);
    for (int64_t j = j0; j < j1; j++) {
        const float *b = bt + j * ldb;
        __m512 s[2][2];
        for (int r = 0; r < M; r++) s[r][0] = s[r][1] = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            __m512 v0 = _mm512_loadu_ps(b + k), v1 = _mm512_loadu_ps(b + k + 16);
            for (int r = 0; r < M; r++) {
                s[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(ar[r] + k), v0, s[r][0]);
                s[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(ar[r] + k + 16), v1, s[r][1]);
            }
        }
        if (k + 16 <= K) {
            __m512 v0 = _mm512_loadu_ps(b + k);
            for (int r = 0; r < M; r++)
                s[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(ar[r] + k), v0, s[r][0]);
            k += 16;
        }
        if (kt) {
            __m512 v0 = _mm512_maskz_loadu_ps(tail, b + k);
            for (int r = 0; r < M; r++)
                s[r][1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, ar[r] + k), v0,
                                          s[r][1]);
        }
        for (int r = 0; r < M; r++)
            y[r * ldy + j] = cpu_epi_scalar(
                e, _mm512_reduce_add_ps(_mm512_add_ps(s[r][0], s[r][1])), i0 + r, j);
    }
}

/* Two A rows against four B^T rows per pass, eight accumulators; rows past
** m or j1 repeat a valid row and are not stored. For two rows this beats
** one B^T row at a time (fewer loads per FMA: 0.26 against 0.29 ms on
** ResNet-50's fc at M = 2, cold, 2 threads); for one it does not. */
static void dot_avx512_2x4(int64_t K, const float *a, int64_t lda, int m,
                           const float *bt, int64_t ldb, int64_t j0, int64_t j1,
                           float *y, int64_t ldy, const cpu_epi *e, int64_t i0) {
    const float *a0 = a, *a1 = m > 1 ? a + lda : a;
    for (int64_t j = j0; j < j1; j += 4) {
        int nj = (int)KILN_MIN((int64_t)4, j1 - j);
        const float *b[4];
        for (int q = 0; q < 4; q++) b[q] = bt + (j + (q < nj ? q : 0)) * ldb;
        __m512 s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00;
        __m512 s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) {
            __m512 x0 = _mm512_loadu_ps(a0 + k), x1 = _mm512_loadu_ps(a1 + k), v;
            v = _mm512_loadu_ps(b[0] + k);
            s00 = _mm512_fmadd_ps(x0, v, s00);
            s10 = _mm512_fmadd_ps(x1, v, s10);
            v = _mm512_loadu_ps(b[1] + k);
            s01 = _mm512_fmadd_ps(x0, v, s01);
            s11 = _mm512_fmadd_ps(x1, v, s11);
            v = _mm512_loadu_ps(b[2] + k);
            s02 = _mm512_fmadd_ps(x0, v, s02);
            s12 = _mm512_fmadd_ps(x1, v, s12);
            v = _mm512_loadu_ps(b[3] + k);
            s03 = _mm512_fmadd_ps(x0, v, s03);
            s13 = _mm512_fmadd_ps(x1, v, s13);
        }
#define HS _mm512_reduce_add_ps
        float r[2][4] = {
            {HS(s00), HS(s01), HS(s02), HS(s03)},
            {HS(s10), HS(s11), HS(s12), HS(s13)},
        };
#undef HS
        for (; k < K; k++)
            for (int q = 0; q < 4; q++) {
                r[0][q] += a0[k] * b[q][k];
                r[1][q] += a1[k] * b[q][k];
            }
        for (int i = 0; i < m; i++)
            for (int q = 0; q < nj; q++)
                y[i * ldy + j + q] = cpu_epi_scalar(e, r[i][q], i0 + i, j + q);
    }
}

static void dot_avx512(int64_t K, const float *a, int64_t lda, int m,
                        const float *bt, int64_t ldb, int64_t j0, int64_t j1,
                        float *y, int64_t ldy, const cpu_epi *e, int64_t i0) {
    if (m == 1) dot_rows16(1, K, a, lda, bt, ldb, j0, j1, y, ldy, e, i0);
    else dot_avx512_2x4(K, a, lda, m, bt, ldb, j0, j1, y, ldy, e, i0);
}


/* ------------------------------------------------------------- packing */
static void pack_a_8(const float *a, int64_t lda, int64_t i0, int64_t mc,
                     int64_t k0, int64_t kc, float *dst) {
    cpu_pack_a_rows(a, lda, i0, mc, k0, kc, dst, 8);
}

/* im2col straight into 32-column panels: per panel the output positions
** split into runs along output rows; per packed row each run is one masked
** load (stride 1) or masked gather, the mask covering the lanes whose input
** column is inside the row (padding lanes stay zero). */
static void im2col_32(const void *ctx, const float *x, int64_t k0, int64_t kc,
                      int64_t j0, int64_t nc, int nr, float *dst) {
    (void)nr;
    const cpu_im2col *g = ctx;
    int64_t khw = g->kh * g->kw, ksz = g->kd * khw;
    const __m512i lanes0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                             11, 12, 13, 14, 15);
    const __m512i lanes1 = _mm512_add_epi32(lanes0, _mm512_set1_epi32(16));
    const __m512i sw = _mm512_set1_epi32((int)g->sw);
    cpu_seg seg[32];
    for (int64_t jp = 0; jp < nc; jp += 32) {
        int w = (int)KILN_MIN((int64_t)32, nc - jp);
        int ns = cpu_segments(g, j0 + jp, w, seg);
        float *d = dst + jp * kc;
        int64_t ch = k0 / ksz, t = k0 % ksz;
        int64_t tz = t / khw, ty = t / g->kw % g->kh, tx = t % g->kw;
        for (int64_t kk = 0; kk < kc; kk++) {
            __m512 v0 = _mm512_setzero_ps(), v1 = v0;
            const float *xc = x + ch * g->in_plane;
            int64_t xoff = tx * g->dw - g->pw;
            for (int q = 0; q < ns; q++) {
                const cpu_seg *sg = &seg[q];
                int64_t iz = sg->oz * g->sd - g->pd + tz * g->dd;
                int64_t iy = sg->oy * g->sh - g->ph + ty * g->dh;
                if (iz < 0 || iz >= g->id || iy < 0 || iy >= g->ih) continue;
                const float *row = xc + (iz * g->ih + iy) * g->iw;
                int64_t ix0 = sg->ox * g->sw + xoff;
                int lo, hi;
                cpu_seg_valid(ix0, g->sw, g->iw, sg->len, &lo, &hi);
                if (lo >= hi) continue;
                uint64_t m = (1ull << (sg->lane + hi)) - (1ull << (sg->lane + lo));
                __mmask16 m0 = (__mmask16)m, m1 = (__mmask16)(m >> 16);
                if (g->sw == 1) {
                    /* lane L reads row[ix0 + L - lane]; only valid lanes load */
                    const float *base = row + ix0 - sg->lane;
                    if (m0) v0 = _mm512_mask_loadu_ps(v0, m0, base);
                    if (m1) v1 = _mm512_mask_loadu_ps(v1, m1, base + 16);
                } else {
                    __m512i ln = _mm512_set1_epi32(sg->lane);
                    const float *base = row + ix0;
                    if (m0)
                        v0 = _mm512_mask_i32gather_ps(
                            v0, m0, _mm512_mullo_epi32(_mm512_sub_epi32(lanes0, ln), sw),
                            base, 4);
                    if (m1)
                        v1 = _mm512_mask_i32gather_ps(
                            v1, m1, _mm512_mullo_epi32(_mm512_sub_epi32(lanes1, ln), sw),
                            base, 4);
                }
            }
            _mm512_storeu_ps(d + kk * 32, v0);
            _mm512_storeu_ps(d + kk * 32 + 16, v1);
            if (++tx == g->kw) {
                tx = 0;
                if (++ty == g->kh) {
                    ty = 0;
                    if (++tz == g->kd) tz = 0, ch++;
                }
            }
        }
    }
}

const cpu_gemm_kernel cpu_gemm_kernel_avx512 = {
    "8x32_avx512", true, 8, 32, 128, 256, 1024, ukr_8x32, dot_avx512, pack_a_8, im2col_32,
};

#else

const cpu_gemm_kernel cpu_gemm_kernel_avx512 = {
    "8x32_avx512", false, 8, 32, 128, 256, 1024, NULL, NULL, NULL, NULL,
};

#endif
