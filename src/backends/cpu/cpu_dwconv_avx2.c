/* cpu_dwconv_avx2.c: AVX2+FMA depthwise convolution of one plane. The
** input plane is first copied into zero-padded rows (left pad and enough
** right slack), so every output column, borders included, runs 32 or 16 at
** a time with all taps in registers (stride 2 de-interleaves two loads);
** rows in the vertical padding are simply skipped. The epilogue then runs
** over the hot output row. Strides above 2 use the portable plane. Built
** with -mavx2 -mfma (see cpu.cmake); without them the entry is NULL. */
#include "cpu_gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "cpu_vec_avx2.h"

/* 8 floats at src, src+s, ..., src+7s for s = 1 or 2 (s = 2 reads 16). */
static inline __m256 load_s(const float *src, int s) {
    if (s == 1) return _mm256_loadu_ps(src);
    __m256 lo = _mm256_loadu_ps(src), hi = _mm256_loadu_ps(src + 8);
    __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* One output row from the padded plane xp (rows wp floats apart). KW, DW:
** the kernel width and dilation when known at compile time (0: read them
** from p), so the common 3x3 / 5x5 tap loops unroll. */
static inline __attribute__((always_inline)) void
dw_row(const cpu_dw_plane *p, int s, int KW, int DW, const float *xp,
       int64_t wp, int64_t oy, int64_t kya, int64_t kyb) {
    float *yr = p->y + oy * p->ow;
    int64_t base = oy * p->sh - p->ph, ox = 0;
    const int64_t kw = KW ? KW : p->kw, dw = DW ? DW : p->dw;
    for (; ox + 32 <= p->ow; ox += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t ky = kya; ky < kyb; ky++) {
            const float *xr = xp + (base + ky * p->dh) * wp + ox * s;
            const float *wr = p->w + ky * kw;
            for (int64_t kx = 0; kx < kw; kx++) {
                __m256 wv = _mm256_broadcast_ss(wr + kx);
                const float *src = xr + kx * dw;
                a0 = _mm256_fmadd_ps(wv, load_s(src, s), a0);
                a1 = _mm256_fmadd_ps(wv, load_s(src + 8 * s, s), a1);
                a2 = _mm256_fmadd_ps(wv, load_s(src + 16 * s, s), a2);
                a3 = _mm256_fmadd_ps(wv, load_s(src + 24 * s, s), a3);
            }
        }
        _mm256_storeu_ps(yr + ox, a0);
        _mm256_storeu_ps(yr + ox + 8, a1);
        _mm256_storeu_ps(yr + ox + 16, a2);
        _mm256_storeu_ps(yr + ox + 24, a3);
    }
    /* The rest 16 at a time (two independent accumulators), the last
    ** block stored partially; the padded rows cover the overhang. */
    for (; ox < p->ow; ox += 16) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int64_t ky = kya; ky < kyb; ky++) {
            const float *xr = xp + (base + ky * p->dh) * wp + ox * s;
            const float *wr = p->w + ky * kw;
            for (int64_t kx = 0; kx < kw; kx++) {
                __m256 wv = _mm256_broadcast_ss(wr + kx);
                const float *src = xr + kx * dw;
                a0 = _mm256_fmadd_ps(wv, load_s(src, s), a0);
                a1 = _mm256_fmadd_ps(wv, load_s(src + 8 * s, s), a1);
            }
        }
        int64_t left = p->ow - ox;
        if (left >= 16) {
            _mm256_storeu_ps(yr + ox, a0);
            _mm256_storeu_ps(yr + ox + 8, a1);
        } else {
            /* masked stores: a libc memcpy per short row costs more */
            const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lanes);
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left - 8), lanes);
            _mm256_maskstore_ps(yr + ox, m0, a0);
            if (left > 8) _mm256_maskstore_ps(yr + ox + 8, m1, a1);
        }
    }
    if (p->epi) {
        const cpu_epi *e = p->epi;
        int64_t j0 = oy * p->ow, q = 0;
        for (; q + 8 <= p->ow; q += 8)
            _mm256_storeu_ps(yr + q, v8_epi(_mm256_loadu_ps(yr + q), e, p->ch, j0 + q));
        for (; q < p->ow; q++) yr[q] = cpu_epi_scalar(e, yr[q], p->ch, j0 + q);
    }
}

static void dw_plane(const cpu_dw_plane *p) {
    int64_t s = p->sw;
    if (s != 1 && s != 2) {
        cpu_dw_plane_c(p);
        return;
    }
    int64_t wp = cpu_dw_padded_width(p->iw, p->ow, p->kw, s, p->dw, p->pw);
    float *xp = p->scratch;
    /* Plain loops: rows are often short, where libc calls would dominate. */
    int64_t rpad = wp - p->pw - p->iw;
    for (int64_t iy = 0; iy < p->ih; iy++) {
        float *row = xp + iy * wp;
        const float *src = p->x + iy * p->iw;
        for (int64_t q = 0; q < p->pw; q++) row[q] = 0.0f;
        row += p->pw;
        int64_t q = 0;
        for (; q + 8 <= p->iw; q += 8) _mm256_storeu_ps(row + q, _mm256_loadu_ps(src + q));
        for (; q < p->iw; q++) row[q] = src[q];
        for (q = 0; q < rpad; q++) row[p->iw + q] = 0.0f;
    }
    for (int64_t oy = 0; oy < p->oh; oy++) {
        int64_t base = oy * p->sh - p->ph, kya, kyb;
        if (p->dh == 1) { /* no divisions in the common case */
            kya = base >= 0 ? 0 : -base;
            kyb = p->ih - base;
        } else {
            kya = base >= 0 ? 0 : (-base + p->dh - 1) / p->dh;
            kyb = p->ih - 1 - base < 0 ? 0 : (p->ih - 1 - base) / p->dh + 1;
        }
        kya = KILN_MIN(kya, p->kh);
        kyb = KILN_MAX(KILN_MIN(kyb, p->kh), kya);
        bool k3 = p->kw == 3 && p->dw == 1, k5 = p->kw == 5 && p->dw == 1;
        if (s == 1 && k3) dw_row(p, 1, 3, 1, xp, wp, oy, kya, kyb);
        else if (s == 2 && k3) dw_row(p, 2, 3, 1, xp, wp, oy, kya, kyb);
        else if (s == 1 && k5) dw_row(p, 1, 5, 1, xp, wp, oy, kya, kyb);
        else if (s == 2 && k5) dw_row(p, 2, 5, 1, xp, wp, oy, kya, kyb);
        else if (s == 1) dw_row(p, 1, 0, 0, xp, wp, oy, kya, kyb);
        else dw_row(p, 2, 0, 0, xp, wp, oy, kya, kyb);
    }
}

const cpu_dw_fn cpu_dw_plane_avx2 = dw_plane;

#else

const cpu_dw_fn cpu_dw_plane_avx2 = NULL;

#endif
