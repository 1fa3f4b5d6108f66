/* cpu_gemm_avx2.c: the 6x16 AVX2+FMA GEMM microkernel (12 accumulator
** registers, two B vectors and one A broadcast per step) with the epilogue
** applied while the tile is in registers. Built with -mavx2 -mfma (see
** cpu.cmake); without those flags the kernel is marked unavailable. */
#include "cpu_gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "cpu_pack_x86.h"
#include "cpu_vec_avx2.h"

static inline __attribute__((always_inline)) void
row_out(float *y, __m256 v0, __m256 v1, bool accumulate, const cpu_epi *e, int64_t i,
        int64_t j) {
    if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(y));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(y + 8));
    }
    if (e) {
        v0 = v8_epi(v0, e, i, j);
        v1 = v8_epi(v1, e, i, j + 8);
    }
    _mm256_storeu_ps(y, v0);
    _mm256_storeu_ps(y + 8, v1);
}

#define STEP(r)                                                                \
    do {                                                                       \
        __m256 av = _mm256_broadcast_ss(a + (r));                              \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                            \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                            \
    } while (0)

/* Edge tiles of few rows (small M: batch-1 transformer layers, the last
** row panel): the same panel layout (A rows 6 apart per k) but only R rows
** of FMAs. */
#define UKR_ROWS(R)                                                            \
    static void ukr_##R##x16(int64_t kc, const float *a, const float *b,      \
                             int64_t bs, float *y, int64_t ldy, int mr,        \
                             int nr, bool accumulate, const cpu_epi *e,        \
                             int64_t i0, int64_t j0) {                         \
        __m256 c[R][2];                                                        \
        for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm256_setzero_ps(); \
        for (int64_t k = 0; k < kc; k++) {                                     \
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);       \
            for (int r = 0; r < R; r++) {                                      \
                __m256 av = _mm256_broadcast_ss(a + r);                        \
                c[r][0] = _mm256_fmadd_ps(av, b0, c[r][0]);                    \
                c[r][1] = _mm256_fmadd_ps(av, b1, c[r][1]);                    \
            }                                                                  \
            a += 6;                                                            \
            b += bs;                                                           \
        }                                                                      \
        if (nr == 16) {                                                        \
            for (int r = 0; r < mr; r++)                                       \
                row_out(y + r * ldy, c[r][0], c[r][1], accumulate, e, i0 + r,  \
                        j0);                                                   \
            return;                                                            \
        }                                                                      \
        float t[R * 16];                                                       \
        for (int r = 0; r < R; r++) {                                          \
            _mm256_storeu_ps(t + r * 16, c[r][0]);                             \
            _mm256_storeu_ps(t + r * 16 + 8, c[r][1]);                         \
        }                                                                      \
        cpu_tile_store(t, 16, y, ldy, mr, nr, accumulate, e, i0, j0);          \
    }
UKR_ROWS(1)
UKR_ROWS(2)
UKR_ROWS(3)

static void ukr_6x16(int64_t kc, const float *a, const float *b, int64_t bs,
                     float *y, int64_t ldy, int mr, int nr, bool accumulate,
                     const cpu_epi *e, int64_t i0, int64_t j0) {
    if (mr <= 3) {
        (mr == 1 ? ukr_1x16 : mr == 2 ? ukr_2x16 : ukr_3x16)(kc, a, b, bs, y, ldy, mr, nr,
                                                            accumulate, e, i0, j0);
        return;
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
    __m256 c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00;
    __m256 c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        STEP(4);
        STEP(5);
        a += 6;
        b += bs;
    }
    if (mr == 6 && nr == 16) {
        row_out(y, c00, c01, accumulate, e, i0, j0);
        row_out(y + ldy, c10, c11, accumulate, e, i0 + 1, j0);
        row_out(y + 2 * ldy, c20, c21, accumulate, e, i0 + 2, j0);
        row_out(y + 3 * ldy, c30, c31, accumulate, e, i0 + 3, j0);
        row_out(y + 4 * ldy, c40, c41, accumulate, e, i0 + 4, j0);
        row_out(y + 5 * ldy, c50, c51, accumulate, e, i0 + 5, j0);
        return;
    }
    float t[6 * 16];
    _mm256_storeu_ps(t, c00);
    _mm256_storeu_ps(t + 8, c01);
    _mm256_storeu_ps(t + 16, c10);
    _mm256_storeu_ps(t + 24, c11);
    _mm256_storeu_ps(t + 32, c20);
    _mm256_storeu_ps(t + 40, c21);
    _mm256_storeu_ps(t + 48, c30);
    _mm256_storeu_ps(t + 56, c31);
    _mm256_storeu_ps(t + 64, c40);
    _mm256_storeu_ps(t + 72, c41);
    _mm256_storeu_ps(t + 80, c50);
    _mm256_storeu_ps(t + 88, c51);
    cpu_tile_store(t, 16, y, ldy, mr, nr, accumulate, e, i0, j0);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Small-M dot kernel for one A row (M = 1; written for up to two): one B^T
** row at a time, B^T read as one forward stream (see dot_avx512 for why
** not several B^T rows at once). */
static inline __attribute__((always_inline)) void
dot_rows8(int M, int64_t K, const float *a, int64_t lda, const float *bt,
          int64_t ldb, int64_t j0, int64_t j1, float *y, int64_t ldy,
          const cpu_epi *e, int64_t i0) {
    const float *ar[2];
    for (int r = 0; r < 2; r++) ar[r] = a + (r < M ? r : 0) * lda;
    for (int64_t j = j0; j < j1; j++) {
        const float *b = bt + j * ldb;
        __m256 s[2][2];
        for (int r = 0; r < M; r++) s[r][0] = s[r][1] = _mm256_setzero_ps();
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) {
            __m256 v0 = _mm256_loadu_ps(b + k), v1 = _mm256_loadu_ps(b + k + 8);
            for (int r = 0; r < M; r++) {
                s[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(ar[r] + k), v0, s[r][0]);
                s[r][1] = _mm256_fmadd_ps(_mm256_loadu_ps(ar[r] + k + 8), v1, s[r][1]);
            }
        }
        if (k + 8 <= K) {
            __m256 v0 = _mm256_loadu_ps(b + k);
            for (int r = 0; r < M; r++)
                s[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(ar[r] + k), v0, s[r][0]);
            k += 8;
        }
        for (int r = 0; r < M; r++) {
            float v = hsum8(_mm256_add_ps(s[r][0], s[r][1]));
            for (int64_t q = k; q < K; q++) v += ar[r][q] * b[q];
            y[r * ldy + j] = cpu_epi_scalar(e, v, i0 + r, j);
        }
    }
}

/* Two A rows against four B^T rows per pass, eight accumulators; rows past
** m or j1 repeat a valid row and are not stored. For two rows this beats
** one B^T row at a time (fewer loads per FMA: 0.26 against 0.29 ms on
** ResNet-50's fc at M = 2, cold, 2 threads); for one it does not. */
static void dot_avx2_2x4(int64_t K, const float *a, int64_t lda, int m,
                         const float *bt, int64_t ldb, int64_t j0, int64_t j1,
                         float *y, int64_t ldy, const cpu_epi *e, int64_t i0) {
    const float *a0 = a, *a1 = m > 1 ? a + lda : a;
    for (int64_t j = j0; j < j1; j += 4) {
        int nj = (int)KILN_MIN((int64_t)4, j1 - j);
        const float *b[4];
        for (int q = 0; q < 4; q++) b[q] = bt + (j + (q < nj ? q : 0)) * ldb;
        __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00;
        __m256 s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) {
            __m256 x0 = _mm256_loadu_ps(a0 + k), x1 = _mm256_loadu_ps(a1 + k), v;
            v = _mm256_loadu_ps(b[0] + k);
            s00 = _mm256_fmadd_ps(x0, v, s00);
            s10 = _mm256_fmadd_ps(x1, v, s10);
            v = _mm256_loadu_ps(b[1] + k);
            s01 = _mm256_fmadd_ps(x0, v, s01);
            s11 = _mm256_fmadd_ps(x1, v, s11);
            v = _mm256_loadu_ps(b[2] + k);
            s02 = _mm256_fmadd_ps(x0, v, s02);
            s12 = _mm256_fmadd_ps(x1, v, s12);
            v = _mm256_loadu_ps(b[3] + k);
            s03 = _mm256_fmadd_ps(x0, v, s03);
            s13 = _mm256_fmadd_ps(x1, v, s13);
        }
        float r[2][4] = {
            {hsum8(s00), hsum8(s01), hsum8(s02), hsum8(s03)},
            {hsum8(s10), hsum8(s11), hsum8(s12), hsum8(s13)},
        };
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

static void dot_avx2(int64_t K, const float *a, int64_t lda, int m,
                      const float *bt, int64_t ldb, int64_t j0, int64_t j1,
                      float *y, int64_t ldy, const cpu_epi *e, int64_t i0) {
    if (m == 1) dot_rows8(1, K, a, lda, bt, ldb, j0, j1, y, ldy, e, i0);
    else dot_avx2_2x4(K, a, lda, m, bt, ldb, j0, j1, y, ldy, e, i0);
}


/* ------------------------------------------------------------- packing */
static void pack_a_6(const float *a, int64_t lda, int64_t i0, int64_t mc,
                     int64_t k0, int64_t kc, float *dst) {
    cpu_pack_a_rows(a, lda, i0, mc, k0, kc, dst, 6);
}

/* Lanes [a, b) of the 8 lanes starting at `first`, as a maskload mask. */
static inline __m256i lane_mask(__m256i lanes, int a, int b) {
    return _mm256_and_si256(_mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(a - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(b), lanes));
}

/* im2col straight into 16-column panels (see the AVX-512 version): one
** masked load or gather per run of output columns and packed row. */
static void im2col_16(const void *ctx, const float *x, int64_t k0, int64_t kc,
                      int64_t j0, int64_t nc, int nr, float *dst) {
    (void)nr;
    const cpu_im2col *g = ctx;
    int64_t khw = g->kh * g->kw, ksz = g->kd * khw;
    const __m256i lanes0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lanes1 = _mm256_add_epi32(lanes0, _mm256_set1_epi32(8));
    const __m256i sw = _mm256_set1_epi32((int)g->sw);
    cpu_seg seg[16];
    for (int64_t jp = 0; jp < nc; jp += 16) {
        int w = (int)KILN_MIN((int64_t)16, nc - jp);
        int ns = cpu_segments(g, j0 + jp, w, seg);
        float *d = dst + jp * kc;
        int64_t ch = k0 / ksz, t = k0 % ksz;
        int64_t tz = t / khw, ty = t / g->kw % g->kh, tx = t % g->kw;
        for (int64_t kk = 0; kk < kc; kk++) {
            __m256 v0 = _mm256_setzero_ps(), v1 = v0;
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
                int a = sg->lane + lo, b = sg->lane + hi;
                if (g->sw == 1) {
                    /* lane L reads row[ix0 + L - lane]; only valid lanes load */
                    const float *base = row + ix0 - sg->lane;
                    if (a < 8)
                        v0 = _mm256_or_ps(v0, _mm256_maskload_ps(base, lane_mask(lanes0, a, b)));
                    if (b > 8)
                        v1 = _mm256_or_ps(v1, _mm256_maskload_ps(base + 8, lane_mask(lanes1, a, b)));
                } else {
                    __m256i ln = _mm256_set1_epi32(sg->lane);
                    const float *base = row + ix0;
                    if (a < 8)
                        v0 = _mm256_mask_i32gather_ps(
                            v0, base, _mm256_mullo_epi32(_mm256_sub_epi32(lanes0, ln), sw),
                            _mm256_castsi256_ps(lane_mask(lanes0, a, b)), 4);
                    if (b > 8)
                        v1 = _mm256_mask_i32gather_ps(
                            v1, base, _mm256_mullo_epi32(_mm256_sub_epi32(lanes1, ln), sw),
                            _mm256_castsi256_ps(lane_mask(lanes1, a, b)), 4);
                }
            }
            _mm256_storeu_ps(d + kk * 16, v0);
            _mm256_storeu_ps(d + kk * 16 + 8, v1);
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

const cpu_gemm_kernel cpu_gemm_kernel_avx2 = {
    "6x16_avx2", true, 6, 16, 144, 256, 1024, ukr_6x16, dot_avx2, pack_a_6, im2col_16,
};

#else

const cpu_gemm_kernel cpu_gemm_kernel_avx2 = {
    "6x16_avx2", false, 6, 16, 144, 256, 1024, NULL, NULL, NULL, NULL,
};

#endif
