/* cpu_int8_avx2.c: AVX2 INT8 conv microkernel and requantizing epilogue
** (cpu_int8.h) for machines without VNNI. It avoids the u8*s8 saturation
** trap of vpmaddubsw (two 255*127 products overflow int16) by widening:
** the activation bytes are zero-extended to int16 and the weights
** sign-extended, and vpmaddwd sums pairs of exact products into int32, so
** full 8-bit weights are kept (no 7-bit restriction). Two kernels: the
** original one (int8 weights read in place, re-widened at every step;
** tiles of 2 output channels x 16 positions) and kernel16/kernel16x on
** weights widened and packed at build time (tiles of 6 channels x 8
** positions, 12 accumulators; about 1.35x the first per layer), which the
** direct and the integer Winograd tactics use; also the Winograd input
** transform. Built with -mavx2 (cpu.cmake); without it, unavailable. */
#include "cpu_int8.h"

#include <math.h>

/* Winograd input transform (cpu_int8.h), built with the file's flags; the
** column transform uses AVX2 when there is one. Rows are loaded 4
** channels interleaved (the kernel's layout), so every step works on
** whole rows and a tile's 4 channels are one 64-bit unit. */
#if defined(__AVX2__)
#include <immintrin.h>
#endif

int64_t cpu_q8_wino_scr_elems(int64_t TW) {
    return 32 * (2 * TW + 2) + 64 * TW + 16;
}

void cpu_q8_wino_in(const cpu_q8_wino_in_args *a, int64_t th, int16_t *scr) {
    int64_t TW = a->TW, wp = 2 * TW + 2, n4 = 4 * wp;
    int16_t *d = scr;          /* [4 rows][wp][4 channels] */
    int16_t *t = d + 4 * n4;   /* the same after the row transform */
    int16_t *o = t + 4 * n4;   /* [4 ri][TW][4 j][4 channels] */
    int64_t k0 = KILN_MIN(a->pw, wp), k1 = KILN_MAX(k0, KILN_MIN(a->pw + a->W, wp));
    int16_t xz = a->xzu;
    for (int64_t cq = 0; cq < a->Cq; cq++) {
        for (int i = 0; i < 4; i++) {
            int16_t *dr = d + i * n4;
            int64_t iy = 2 * th - a->ph + i;
            bool in = iy >= 0 && iy < a->H;
#if defined(__AVX2__)
            if (in && 4 * cq + 3 < a->C) {
                /* 4 whole channel rows: 8 columns at a time, bytes
                ** interleaved by unpacks, then widened */
                const uint8_t *r0 = a->x + ((4 * cq) * a->H + iy) * a->W - a->pw;
                int64_t cs = a->H * a->W;
                const __m128i fl = _mm_set1_epi8((char)a->flip);
                for (int64_t k = 0; k < k0; k++)
                    for (int cc = 0; cc < 4; cc++) dr[4 * k + cc] = xz;
                int64_t k = k0;
                for (; k + 8 <= k1; k += 8) {
                    __m128i c0 = _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r0 + k)), fl);
                    __m128i c1 =
                        _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r0 + cs + k)), fl);
                    __m128i c2 =
                        _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r0 + 2 * cs + k)), fl);
                    __m128i c3 =
                        _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r0 + 3 * cs + k)), fl);
                    __m128i ab = _mm_unpacklo_epi8(c0, c1), cd = _mm_unpacklo_epi8(c2, c3);
                    __m128i lo = _mm_unpacklo_epi16(ab, cd), hi = _mm_unpackhi_epi16(ab, cd);
                    _mm256_storeu_si256((__m256i *)(dr + 4 * k), _mm256_cvtepu8_epi16(lo));
                    _mm256_storeu_si256((__m256i *)(dr + 4 * k + 16), _mm256_cvtepu8_epi16(hi));
                }
                for (; k < k1; k++)
                    for (int cc = 0; cc < 4; cc++)
                        dr[4 * k + cc] = (int16_t)(r0[cc * cs + k] ^ a->flip);
                for (k = k1; k < wp; k++)
                    for (int cc = 0; cc < 4; cc++) dr[4 * k + cc] = xz;
                continue;
            }
#endif
            for (int cc = 0; cc < 4; cc++) {
                int64_t c = 4 * cq + cc;
                if (c >= a->C || !in) {
                    int16_t f = c >= a->C ? 0 : xz;
                    for (int64_t k = 0; k < wp; k++) dr[4 * k + cc] = f;
                    continue;
                }
                const uint8_t *xr = a->x + (c * a->H + iy) * a->W - a->pw;
                for (int64_t k = 0; k < k0; k++) dr[4 * k + cc] = xz;
                for (int64_t k = k0; k < k1; k++) dr[4 * k + cc] = (int16_t)(xr[k] ^ a->flip);
                for (int64_t k = k1; k < wp; k++) dr[4 * k + cc] = xz;
            }
        }
        const int16_t *d0 = d, *d1 = d + n4, *d2 = d + 2 * n4, *d3 = d + 3 * n4;
        int16_t *t0 = t, *t1 = t + n4, *t2 = t + 2 * n4, *t3 = t + 3 * n4;
        int64_t k = 0;
#if defined(__AVX2__)
        for (; k + 16 <= n4; k += 16) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(d0 + k));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(d1 + k));
            __m256i v2 = _mm256_loadu_si256((const __m256i *)(d2 + k));
            __m256i v3 = _mm256_loadu_si256((const __m256i *)(d3 + k));
            _mm256_storeu_si256((__m256i *)(t0 + k), _mm256_sub_epi16(v0, v2));
            _mm256_storeu_si256((__m256i *)(t1 + k), _mm256_add_epi16(v1, v2));
            _mm256_storeu_si256((__m256i *)(t2 + k), _mm256_sub_epi16(v2, v1));
            _mm256_storeu_si256((__m256i *)(t3 + k), _mm256_sub_epi16(v1, v3));
        }
#endif
        for (; k < n4; k++) {
            t0[k] = (int16_t)(d0[k] - d2[k]);
            t1[k] = (int16_t)(d1[k] + d2[k]);
            t2[k] = (int16_t)(d2[k] - d1[k]);
            t3[k] = (int16_t)(d1[k] - d3[k]);
        }
        /* per tile, positions q0..q3 (64-bit units): (q0 - q2, q1 + q2,
        ** q2 - q1, q1 - q3) */
        for (int ri = 0; ri < 4; ri++) {
            const int16_t *tr = t + ri * n4;
            int16_t *orow = o + ri * TW * 16;
#if defined(__AVX2__)
            const __m256i sg = _mm256_setr_epi16(-1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1,
                                                 -1, -1, -1, -1);
            for (int64_t tw = 0; tw < TW; tw++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(tr + 8 * tw));
                __m256i lhs = _mm256_permute4x64_epi64(q, 0x64); /* q0 q1 q2 q1 */
                __m256i rhs = _mm256_permute4x64_epi64(q, 0xDA); /* q2 q2 q1 q3 */
                _mm256_storeu_si256((__m256i *)(orow + 16 * tw),
                                    _mm256_add_epi16(lhs, _mm256_sign_epi16(rhs, sg)));
            }
#else
            for (int64_t tw = 0; tw < TW; tw++)
                for (int cc = 0; cc < 4; cc++) {
                    const int16_t *q = tr + 8 * tw + cc;
                    int16_t *r = orow + 16 * tw + cc;
                    r[0] = (int16_t)(q[0] - q[8]);
                    r[4] = (int16_t)(q[4] + q[8]);
                    r[8] = (int16_t)(q[8] - q[4]);
                    r[12] = (int16_t)(q[4] - q[12]);
                }
#endif
        }
        for (int xi = 0; xi < 16; xi++) {
            const int16_t *src = o + (xi / 4) * TW * 16 + (xi % 4) * 4;
            int64_t p = th * TW, b = p / CPU_Q8_NB, pp = p % CPU_Q8_NB;
            int16_t *dst = a->v + (((xi * a->nblk + b) * a->Cq + cq) * CPU_Q8_NB + pp) * 4;
            for (int64_t tw = 0; tw < TW; tw++) {
                memcpy(dst, src + 16 * tw, 8);
                dst += 4;
                if (++pp == CPU_Q8_NB) {
                    pp = 0;
                    b++;
                    dst = a->v + ((xi * a->nblk + b) * a->Cq + cq) * CPU_Q8_NB * 4;
                }
            }
        }
    }
}

#if defined(__AVX2__)

static inline int32_t wq4(const int8_t *wr, int64_t kq, int64_t K) {
    int32_t v = 0;
    int64_t k = 4 * kq, n = K - k < 4 ? K - k : 4;
    memcpy(&v, wr + k, (size_t)n);
    return v;
}

/* acc rows r0 (and r0+1 when two) x positions s*16 .. s*16+15 */
static void tile(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int two,
                 int s, int32_t *acc) {
    __m256i c0[4], c1[4];
    for (int v = 0; v < 4; v++) c0[v] = c1[v] = _mm256_setzero_si256();
    int64_t Kf = K / 4, Kq = (K + 3) / 4;
    for (int64_t kq = 0; kq < Kq; kq++) {
        const uint8_t *x = xp + kq * CPU_Q8_NB * 4 + s * 64;
        __m256i xv[4];
        for (int v = 0; v < 4; v++)
            xv[v] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + 16 * v)));
        int32_t w0, w1 = 0;
        if (kq < Kf) {
            memcpy(&w0, w + 4 * kq, 4);
            if (two) memcpy(&w1, w + ldw + 4 * kq, 4);
        } else {
            w0 = wq4(w, kq, K);
            if (two) w1 = wq4(w + ldw, kq, K);
        }
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_set1_epi32(w0));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_set1_epi32(w1));
        for (int v = 0; v < 4; v++) {
            c0[v] = _mm256_add_epi32(c0[v], _mm256_madd_epi16(xv[v], b0));
            c1[v] = _mm256_add_epi32(c1[v], _mm256_madd_epi16(xv[v], b1));
        }
    }
    /* each accumulator holds two partial sums per position: add the pairs
    ** and restore the position order */
    for (int r = 0; r < 1 + two; r++) {
        __m256i *c = r ? c1 : c0;
        for (int h = 0; h < 2; h++) {
            __m256i s8 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[2 * h], c[2 * h + 1]),
                                                  0xD8);
            _mm256_storeu_si256((__m256i *)(acc + r * CPU_Q8_NB + s * 16 + 8 * h), s8);
        }
    }
}

static void kernel(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                   int32_t *acc) {
    for (int r = 0; r < mr; r += 2)
        for (int s = 0; s < CPU_Q8_NB / 16; s++)
            tile(xp, w + r * ldw, ldw, K, r + 1 < mr, s, acc + r * CPU_Q8_NB);
}

static void epi(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y) {
    uint8_t *yb = y;
    __m256d mult = _mm256_set1_pd(e->mult), yz = _mm256_set1_pd(e->yz);
    __m256d lo = _mm256_set1_pd(e->lo), hi = _mm256_set1_pd(e->hi);
    __m256i beff = _mm256_set1_epi32((int32_t)e->beff), wz = _mm256_set1_epi32(e->wz);
    int64_t p = 0;
    /* |v * mult + yz| < 2^31 for every int32 v: round first, then the
    ** saturating packs clamp to the 8-bit range (the same result, as the
    ** bounds are integers and rounding is monotonic) */
    if (!e->colsum && fabs(e->mult) <= 0.5 && fabs(e->yz) <= 65536)
        for (; p + 16 <= n; p += 16) {
            __m256i v0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + p)), beff);
            __m256i v1 =
                _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + p + 8)), beff);
            __m256d d0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(v0));
            __m256d d1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(v0, 1));
            __m256d d2 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(v1));
            __m256d d3 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(v1, 1));
            d0 = _mm256_add_pd(_mm256_mul_pd(d0, mult), yz);
            d1 = _mm256_add_pd(_mm256_mul_pd(d1, mult), yz);
            d2 = _mm256_add_pd(_mm256_mul_pd(d2, mult), yz);
            d3 = _mm256_add_pd(_mm256_mul_pd(d3, mult), yz);
            __m128i w0 = _mm_packs_epi32(_mm256_cvtpd_epi32(d0), _mm256_cvtpd_epi32(d1));
            __m128i w1 = _mm_packs_epi32(_mm256_cvtpd_epi32(d2), _mm256_cvtpd_epi32(d3));
            __m128i b8 = e->y_signed ? _mm_packs_epi16(w0, w1) : _mm_packus_epi16(w0, w1);
            _mm_storeu_si128((__m128i *)(yb + p), b8);
        }
    for (; p + 8 <= n; p += 8) {
        __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + p)), beff);
        if (e->colsum)
            v = _mm256_sub_epi32(
                v, _mm256_mullo_epi32(wz, _mm256_loadu_si256((const __m256i *)(e->colsum + p))));
        __m256d d0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(v));
        __m256d d1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(v, 1));
        d0 = _mm256_add_pd(_mm256_mul_pd(d0, mult), yz);
        d1 = _mm256_add_pd(_mm256_mul_pd(d1, mult), yz);
        d0 = _mm256_min_pd(_mm256_max_pd(d0, lo), hi);
        d1 = _mm256_min_pd(_mm256_max_pd(d1, lo), hi);
        __m128i w16 = _mm_packs_epi32(_mm256_cvtpd_epi32(d0), _mm256_cvtpd_epi32(d1));
        __m128i b8 = e->y_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
        _mm_storel_epi64((__m128i *)(yb + p), b8);
    }
    if (p < n) {
        cpu_q8_epi t = *e;
        if (t.colsum) t.colsum += p;
        cpu_q8_epi_c(&t, acc + p, n - p, yb + p);
    }
}

/* GEMV: 16 bytes per step widened to int16 (vpmaddwd, no saturation), two
** weight rows per pass over x, the row tail through a zero-padded copy. */
static void dot(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K, int64_t m0,
                int64_t m1, int32_t *out) {
    int64_t Kf = K / 16 * 16;
    for (int64_t m = m0; m < m1; m += 2) {
        bool two = m + 1 < m1;
        const int8_t *r0 = w + m * ldw, *r1 = two ? r0 + ldw : r0;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (int64_t k = 0; k < Kf; k += 16) {
            __m256i xv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + k)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(
                                          _mm_loadu_si128((const __m128i *)(r0 + k)))));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(
                                          _mm_loadu_si128((const __m128i *)(r1 + k)))));
        }
        if (Kf < K) {
            int8_t t0[16] = {0}, t1[16] = {0};
            memcpy(t0, r0 + Kf, (size_t)(K - Kf));
            memcpy(t1, r1 + Kf, (size_t)(K - Kf));
            __m256i xv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + Kf)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(
                                          _mm_loadu_si128((const __m128i *)t0))));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(
                                          _mm_loadu_si128((const __m128i *)t1))));
        }
        int32_t s0[8], s1[8];
        _mm256_storeu_si256((__m256i *)s0, a0);
        _mm256_storeu_si256((__m256i *)s1, a1);
        uint32_t v0 = 0, v1 = 0;
        for (int i = 0; i < 8; i++) {
            v0 += (uint32_t)s0[i];
            v1 += (uint32_t)s1[i];
        }
        out[m - m0] = (int32_t)v0;
        if (two) out[m - m0 + 1] = (int32_t)v1;
    }
}

static void quant(const cpu_q8_qparams *p, const float *x, void *y, int64_t n) {
    cpu_q8_quant_body(p, x, y, n);
}

static void dequant(const cpu_q8_qparams *p, const void *x, float *y, int64_t n) {
    cpu_q8_dequant_body(p, x, y, n);
}

/* 8 int8/uint8 values to float */
static inline __m256 load8(const uint8_t *p, bool s) {
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(s ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

/* QAdd: the float32 steps of cpu_q8_add_c, 8 lanes at a time (division kept,
** cvtps rounds half to even by the default MXCSR mode), scalar tail. */
static void add(const cpu_q8_add *p, const void *a, const void *b, void *y, int64_t n) {
    const uint8_t *ab = a, *bb = b;
    uint8_t *yb = y;
    __m256 sa = _mm256_set1_ps(p->sa), za = _mm256_set1_ps(p->za);
    __m256 sb = _mm256_set1_ps(p->sb), zb = _mm256_set1_ps(p->zb);
    __m256 sy = _mm256_set1_ps(p->sy), big = _mm256_set1_ps(1e9f), nbig = _mm256_set1_ps(-1e9f);
    __m256i zy = _mm256_set1_epi32(p->zy);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 av = _mm256_mul_ps(_mm256_sub_ps(load8(ab + i, p->a_signed), za), sa);
        __m256 bv = _mm256_mul_ps(_mm256_sub_ps(load8(bb + i, p->b_signed), zb), sb);
        __m256 q = _mm256_div_ps(_mm256_add_ps(av, bv), sy);
        q = _mm256_min_ps(_mm256_max_ps(q, nbig), big);
        __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(q), zy);
        /* saturating packs clamp to the 8-bit range */
        __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        __m128i b8 = p->y_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
        _mm_storel_epi64((__m128i *)(yb + i), b8);
    }
    for (; i < n; i++) {
        float av = ((p->a_signed ? (float)((const int8_t *)a)[i] : (float)((const uint8_t *)a)[i]) -
                    p->za) * p->sa;
        float bv = ((p->b_signed ? (float)((const int8_t *)b)[i] : (float)((const uint8_t *)b)[i]) -
                    p->zb) * p->sb;
        int32_t r = cpu_q8_round_sat((av + bv) / p->sy, p->zy, p->lo, p->hi);
        if (p->y_signed) ((int8_t *)y)[i] = (int8_t)r;
        else ((uint8_t *)y)[i] = (uint8_t)r;
    }
}

/* 7-bit weights (every w in [-64, 63], as onnxruntime's reduce_range
** makes them): vpmaddubsw's pair sums stay within int16 (255 * 64 * 2 =
** 32640), so u8 x s8 products sum exactly with no widening; vpmaddwd with
** ones then adds the pairs into each position's int32. Tiles of 4 output
** channels x 16 positions; rows past mr repeat the last one. */
static void kernel7(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                    int32_t *acc) {
    int64_t Kf = K / 4, Kq = (K + 3) / 4;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r0 = 0; r0 < mr; r0 += 4) {
        const int8_t *wr[4];
        int32_t tl[4] = {0, 0, 0, 0};
        for (int i = 0; i < 4; i++) {
            wr[i] = w + (r0 + i < mr ? r0 + i : mr - 1) * ldw;
            if (Kf < Kq) tl[i] = wq4(wr[i], Kf, K);
        }
        for (int s = 0; s < CPU_Q8_NB / 16; s++) {
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00;
            __m256i a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            for (int64_t kq = 0; kq < Kq; kq++) {
                const uint8_t *x = xp + kq * CPU_Q8_NB * 4 + s * 64;
                __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
                bool full = kq < Kf;
                int32_t v0, v1, v2, v3;
                if (full) {
                    memcpy(&v0, wr[0] + 4 * kq, 4);
                    memcpy(&v1, wr[1] + 4 * kq, 4);
                    memcpy(&v2, wr[2] + 4 * kq, 4);
                    memcpy(&v3, wr[3] + 4 * kq, 4);
                } else {
                    v0 = tl[0], v1 = tl[1], v2 = tl[2], v3 = tl[3];
                }
                __m256i b0 = _mm256_set1_epi32(v0), b1 = _mm256_set1_epi32(v1);
                __m256i b2 = _mm256_set1_epi32(v2), b3 = _mm256_set1_epi32(v3);
#define Q8_MAC7(a, xv, b) \
    a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(xv, b), ones))
                Q8_MAC7(a00, x0, b0); Q8_MAC7(a01, x1, b0);
                Q8_MAC7(a10, x0, b1); Q8_MAC7(a11, x1, b1);
                Q8_MAC7(a20, x0, b2); Q8_MAC7(a21, x1, b2);
                Q8_MAC7(a30, x0, b3); Q8_MAC7(a31, x1, b3);
#undef Q8_MAC7
            }
            __m256i *out[4][2] = {{&a00, &a01}, {&a10, &a11}, {&a20, &a21}, {&a30, &a31}};
            for (int i = 0; i < 4 && r0 + i < mr; i++)
                for (int h = 0; h < 2; h++)
                    _mm256_storeu_si256((__m256i *)(acc + (r0 + i) * CPU_Q8_NB + s * 16 + 8 * h),
                                        *out[i][h]);
        }
    }
}

/* Pre-widened weights (cpu_int8.h, kernel16): tiles of 6 output channels x
** 8 positions, 12 accumulators. Per kq the 8 positions' 32 activation
** bytes are zero-extended to int16 once (two vpmovzxbw) and serve all 6
** rows; each row's 4 int16 weights are one 64-bit broadcast load (no
** shuffle port work), so the loop is loads + 12 vpmaddwd + 12 vpaddd per
** 192 multiply-adds. Exact: vpmaddwd sums two products of at most
** 255 * 128 into int32, vpaddd wraps as the reference's int32 does. */
static inline __m256i bq(const int16_t *w) {
    int64_t v;
    memcpy(&v, w, 8);
    return _mm256_set1_epi64x(v);
}

/* acc row r, positions 8s .. 8s+7, from the two accumulators of
** positions 0-3 (a) and 4-7 (b), each holding two partial sums per
** position */
static inline void st8(int32_t *acc, __m256i a, __m256i b) {
    _mm256_storeu_si256((__m256i *)acc,
                        _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8));
}

/* The 6 x 8 tile sweep of kernel16 (wide = false: uint8 activations,
** widened here) and kernel16x (wide = true: activations already int16,
** as the Winograd input transform makes them). */
static inline __attribute__((always_inline)) void k16_body(const void *xp, const int16_t *wp,
                                                            int64_t Kq, int mr, int np,
                                                            int32_t *acc, const bool wide) {
    int ns = (np + 7) / 8;
    for (int s = 0; s < ns; s++) {
        __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
        __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00;
        __m256i c50 = c00, c51 = c00;
        const uint8_t *x = (const uint8_t *)xp + s * 32 * (wide ? 2 : 1);
        const int16_t *w = wp;
        for (int64_t kq = 0; kq < Kq; kq++, x += CPU_Q8_NB * 4 * (wide ? 2 : 1), w += 24) {
            __m256i x0, x1;
            if (wide) {
                x0 = _mm256_loadu_si256((const __m256i *)x);
                x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
            } else {
                x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)x));
                x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + 16)));
            }
            __m256i b;
#define Q8_MAC16(a0, a1, off)                                        \
    b = bq(w + (off));                                               \
    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, b));             \
    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, b))
            Q8_MAC16(c00, c01, 0);
            Q8_MAC16(c10, c11, 4);
            Q8_MAC16(c20, c21, 8);
            Q8_MAC16(c30, c31, 12);
            Q8_MAC16(c40, c41, 16);
            Q8_MAC16(c50, c51, 20);
#undef Q8_MAC16
        }
        int32_t *o = acc + s * 8;
        st8(o, c00, c01);
        if (mr > 1) st8(o + CPU_Q8_NB, c10, c11);
        if (mr > 2) st8(o + 2 * CPU_Q8_NB, c20, c21);
        if (mr > 3) st8(o + 3 * CPU_Q8_NB, c30, c31);
        if (mr > 4) st8(o + 4 * CPU_Q8_NB, c40, c41);
        if (mr > 5) st8(o + 5 * CPU_Q8_NB, c50, c51);
    }
}

static void kernel16(const uint8_t *xp, const int16_t *wp, int64_t Kq, int mr, int np,
                     int32_t *acc) {
    k16_body(xp, wp, Kq, mr, np, acc, false);
}

static void kernel16x(const int16_t *xp, const int16_t *wp, int64_t Kq, int mr, int np,
                      int32_t *acc) {
    k16_body(xp, wp, Kq, mr, np, acc, true);
}

const cpu_q8_isa cpu_q8_avx2 = {"avx2", true, kernel, epi, add, dot, quant, dequant, NULL,
                                NULL};
const cpu_q8_isa cpu_q8_avx2_7bit = {"avx2-7bit", true, kernel7, epi, add, dot, quant,
                                     dequant, NULL, NULL};
const cpu_q8_isa cpu_q8_avx2_w16 = {"avx2-w16", true, kernel, epi, add, dot, quant, dequant,
                                    kernel16, kernel16x};
#else
const cpu_q8_isa cpu_q8_avx2 = {"avx2", false, cpu_q8_kernel_c, cpu_q8_epi_c, cpu_q8_add_c,
                                cpu_q8_dot_c, cpu_q8_quant_c, cpu_q8_dequant_c, NULL, NULL};
const cpu_q8_isa cpu_q8_avx2_7bit = {"avx2-7bit", false, cpu_q8_kernel_c, cpu_q8_epi_c,
                                     cpu_q8_add_c, cpu_q8_dot_c, cpu_q8_quant_c,
                                     cpu_q8_dequant_c, NULL, NULL};
const cpu_q8_isa cpu_q8_avx2_w16 = {"avx2-w16", false, cpu_q8_kernel_c, cpu_q8_epi_c,
                                    cpu_q8_add_c, cpu_q8_dot_c, cpu_q8_quant_c,
                                    cpu_q8_dequant_c, NULL, NULL};
#endif
