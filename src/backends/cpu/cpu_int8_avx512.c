/* cpu_int8_avx512.c: AVX-512 VNNI INT8 conv microkernel and requantizing
** epilogue (cpu_int8.h). The kernel keeps CPU_Q8_MR x 4 zmm accumulators
** (6 output channels x 64 positions); per group of 4 reduction indices it
** loads the block's 4 x 64 activation bytes once and does one vpdpbusd per
** accumulator against 4 broadcast weight bytes. vpdpbusd sums u8*s8
** products in int32 without the int16 saturation of vpmaddubsw. Built with
** -mavx512f -mavx512bw -mavx512vl -mavx512vnni (cpu.cmake); without them
** the kernel is marked unavailable. */
#include "cpu_int8.h"

#include <math.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && \
    defined(__AVX512VL__)
#include <immintrin.h>

/* 4 weight bytes of row wr at k = 4*kq (fewer at the end of K, zero-filled). */
static inline int32_t wq4(const int8_t *wr, int64_t kq, int64_t K) {
    int32_t v = 0;
    int64_t k = 4 * kq, n = K - k < 4 ? K - k : 4;
    memcpy(&v, wr + k, (size_t)n);
    return v;
}

/* One reduction group: 4 activation vectors against row r's 4 weight bytes. */
#define Q8_STEP(r, wv)                                                             \
    do {                                                                           \
        __m512i b_ = _mm512_set1_epi32(wv);                                        \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, x0, b_);                            \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, x1, b_);                            \
        c##r##2 = _mm512_dpbusd_epi32(c##r##2, x2, b_);                            \
        c##r##3 = _mm512_dpbusd_epi32(c##r##3, x3, b_);                            \
    } while (0)

#define Q8_ZERO(r)                                                                 \
    __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = _mm512_setzero_si512(),    \
            c##r##2 = _mm512_setzero_si512(), c##r##3 = _mm512_setzero_si512()

#define Q8_STORE(r)                                                                \
    do {                                                                           \
        if (r < mr) {                                                              \
            _mm512_storeu_si512(acc + r * CPU_Q8_NB, c##r##0);                     \
            _mm512_storeu_si512(acc + r * CPU_Q8_NB + 16, c##r##1);                \
            _mm512_storeu_si512(acc + r * CPU_Q8_NB + 32, c##r##2);                \
            _mm512_storeu_si512(acc + r * CPU_Q8_NB + 48, c##r##3);                \
        }                                                                          \
    } while (0)

static inline int32_t ld4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Always 6 rows (24 accumulators in registers, no branch in the K loop);
** rows past mr repeat the last real row and are not stored. */
static void kernel(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                   int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + (mr > 1 ? 1 : 0) * ldw, *w2 = w + (mr > 2 ? 2 : mr - 1) * ldw;
    const int8_t *w3 = w + (mr > 3 ? 3 : mr - 1) * ldw, *w4 = w + (mr > 4 ? 4 : mr - 1) * ldw;
    const int8_t *w5 = w + (mr > 5 ? 5 : mr - 1) * ldw;
    Q8_ZERO(0); Q8_ZERO(1); Q8_ZERO(2); Q8_ZERO(3); Q8_ZERO(4); Q8_ZERO(5);
    int64_t Kf = K / 4, Kq = (K + 3) / 4;
    /* the last 1..3 reduction indices, zero-padded, read as one more group */
    int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0;
    if (Kf < Kq) {
        t0 = wq4(w0, Kf, K); t1 = wq4(w1, Kf, K); t2 = wq4(w2, Kf, K);
        t3 = wq4(w3, Kf, K); t4 = wq4(w4, Kf, K); t5 = wq4(w5, Kf, K);
    }
    for (int64_t kq = 0; kq < Kq; kq++) {
        const uint8_t *x = xp + kq * CPU_Q8_NB * 4;
        __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 64);
        __m512i x2 = _mm512_loadu_si512(x + 128), x3 = _mm512_loadu_si512(x + 192);
        int64_t k = 4 * kq;
        bool full = kq < Kf;
        Q8_STEP(0, full ? ld4(w0 + k) : t0); Q8_STEP(1, full ? ld4(w1 + k) : t1);
        Q8_STEP(2, full ? ld4(w2 + k) : t2); Q8_STEP(3, full ? ld4(w3 + k) : t3);
        Q8_STEP(4, full ? ld4(w4 + k) : t4); Q8_STEP(5, full ? ld4(w5 + k) : t5);
    }
    Q8_STORE(0); Q8_STORE(1); Q8_STORE(2); Q8_STORE(3); Q8_STORE(4); Q8_STORE(5);
}

/* 16 outputs: the same double steps as cpu_q8_epi_c (multiply, add, clamp,
** round to nearest even by the default MXCSR mode). */
static inline __m128i requant16(const cpu_q8_epi *e, __m512i v) {
    __m512d mult = _mm512_set1_pd(e->mult), yz = _mm512_set1_pd(e->yz);
    __m512d lo = _mm512_set1_pd(e->lo), hi = _mm512_set1_pd(e->hi);
    __m512d d0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(v));
    __m512d d1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1));
    d0 = _mm512_add_pd(_mm512_mul_pd(d0, mult), yz);
    d1 = _mm512_add_pd(_mm512_mul_pd(d1, mult), yz);
    d0 = _mm512_min_pd(_mm512_max_pd(d0, lo), hi);
    d1 = _mm512_min_pd(_mm512_max_pd(d1, lo), hi);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtpd_epi32(d0)),
                                   _mm512_cvtpd_epi32(d1), 1);
    return _mm512_cvtepi32_epi8(q); /* in range: truncation is exact */
}

/* The same when |v * mult + yz| < 2^31 for every int32 v: round first,
** then a saturating narrowing clamps to the 8-bit range (the same result:
** the bounds are integers and rounding is monotonic). */
static inline bool epi_fast(const cpu_q8_epi *e) {
    return fabs(e->mult) <= 0.5 && fabs(e->yz) <= 65536 &&
           e->lo == (e->y_signed ? -128 : 0) && e->hi == (e->y_signed ? 127 : 255);
}

static inline __m128i requant16_sat(const cpu_q8_epi *e, __m512i v) {
    __m512d mult = _mm512_set1_pd(e->mult), yz = _mm512_set1_pd(e->yz);
    __m512d d0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(v));
    __m512d d1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1));
    d0 = _mm512_add_pd(_mm512_mul_pd(d0, mult), yz);
    d1 = _mm512_add_pd(_mm512_mul_pd(d1, mult), yz);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtpd_epi32(d0)),
                                   _mm512_cvtpd_epi32(d1), 1);
    if (e->y_signed) return _mm512_cvtsepi32_epi8(q);
    return _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()));
}

/* The kernel on the first NV (1..4) groups of 16 positions only: a
** block's partial tail (layer 3's 196 positions are 3 blocks and 4
** positions) costs what its positions need, not a whole block. FUSE: the
** requantizing epilogue runs on the accumulators in registers and writes
** the 8-bit rows (kernel_epi), instead of storing acc. */
#define Q8_STEPN(r, wv)                                                            \
    do {                                                                           \
        __m512i b_ = _mm512_set1_epi32(wv);                                        \
        for (int v_ = 0; v_ < NV; v_++)                                            \
            c[r][v_] = _mm512_dpbusd_epi32(c[r][v_], xv[v_], b_);                  \
    } while (0)

static inline __attribute__((always_inline)) void kernel_nv(const uint8_t *xp,
                                                             const int8_t *w, int64_t ldw,
                                                             int64_t K, int mr,
                                                             int32_t *acc, const int NV,
                                                             const int FUSE, int np,
                                                             const cpu_q8_epi *e,
                                                             const int32_t *colsum,
                                                             uint8_t *y, int64_t ldy) {
    const int8_t *w0 = w, *w1 = w + (mr > 1 ? 1 : 0) * ldw, *w2 = w + (mr > 2 ? 2 : mr - 1) * ldw;
    const int8_t *w3 = w + (mr > 3 ? 3 : mr - 1) * ldw, *w4 = w + (mr > 4 ? 4 : mr - 1) * ldw;
    const int8_t *w5 = w + (mr > 5 ? 5 : mr - 1) * ldw;
    __m512i c[6][4];
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_si512();
    int64_t Kf = K / 4, Kq = (K + 3) / 4;
    int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0;
    if (Kf < Kq) {
        t0 = wq4(w0, Kf, K); t1 = wq4(w1, Kf, K); t2 = wq4(w2, Kf, K);
        t3 = wq4(w3, Kf, K); t4 = wq4(w4, Kf, K); t5 = wq4(w5, Kf, K);
    }
    for (int64_t kq = 0; kq < Kq; kq++) {
        const uint8_t *x = xp + kq * CPU_Q8_NB * 4;
        __m512i xv[4];
        for (int v = 0; v < NV; v++) xv[v] = _mm512_loadu_si512(x + 64 * v);
        int64_t k = 4 * kq;
        bool full = kq < Kf;
        Q8_STEPN(0, full ? ld4(w0 + k) : t0); Q8_STEPN(1, full ? ld4(w1 + k) : t1);
        Q8_STEPN(2, full ? ld4(w2 + k) : t2); Q8_STEPN(3, full ? ld4(w3 + k) : t3);
        Q8_STEPN(4, full ? ld4(w4 + k) : t4); Q8_STEPN(5, full ? ld4(w5 + k) : t5);
    }
    if (!FUSE) {
        for (int r = 0; r < 6; r++)
            if (r < mr)
                for (int v = 0; v < NV; v++)
                    _mm512_storeu_si512(acc + r * CPU_Q8_NB + 16 * v, c[r][v]);
        return;
    }
    for (int r = 0; r < 6; r++) {
        if (r >= mr) break;
        const cpu_q8_epi *er = &e[r];
        __m512i beff = _mm512_set1_epi32((int32_t)er->beff), wz = _mm512_set1_epi32(er->wz);
        bool fast = epi_fast(er);
        uint8_t *yr = y + r * ldy;
        for (int v = 0; v < NV; v++) {
            __m512i a = _mm512_add_epi32(c[r][v], beff);
            if (er->colsum)
                a = _mm512_sub_epi32(a, _mm512_mullo_epi32(
                                            wz, _mm512_loadu_si512(colsum + 16 * v)));
            __m128i b = fast ? requant16_sat(er, a) : requant16(er, a);
            if (16 * v + 16 <= np) _mm_storeu_si128((__m128i *)(void *)(yr + 16 * v), b);
            else if (16 * v < np)
                _mm_mask_storeu_epi8(yr + 16 * v, (__mmask16)((1u << (np - 16 * v)) - 1), b);
        }
    }
}

static void kernel_n(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                     int np, int32_t *acc) {
    if (np <= 16) kernel_nv(xp, w, ldw, K, mr, acc, 1, 0, np, NULL, NULL, NULL, 0);
    else if (np <= 32) kernel_nv(xp, w, ldw, K, mr, acc, 2, 0, np, NULL, NULL, NULL, 0);
    else if (np <= 48) kernel_nv(xp, w, ldw, K, mr, acc, 3, 0, np, NULL, NULL, NULL, 0);
    else kernel(xp, w, ldw, K, mr, acc);
}

static void kernel_epi(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                       int np, const cpu_q8_epi *e, const int32_t *colsum, uint8_t *y,
                       int64_t ldy) {
    if (np <= 16) kernel_nv(xp, w, ldw, K, mr, NULL, 1, 1, np, e, colsum, y, ldy);
    else if (np <= 32) kernel_nv(xp, w, ldw, K, mr, NULL, 2, 1, np, e, colsum, y, ldy);
    else if (np <= 48) kernel_nv(xp, w, ldw, K, mr, NULL, 3, 1, np, e, colsum, y, ldy);
    else kernel_nv(xp, w, ldw, K, mr, NULL, 4, 1, np, e, colsum, y, ldy);
}

static void epi(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y) {
    uint8_t *yb = y;
    __m512i beff = _mm512_set1_epi32((int32_t)e->beff), wz = _mm512_set1_epi32(e->wz);
    if (epi_fast(e)) {
        for (int64_t p = 0; p < n; p += 16) {
            int64_t m = n - p < 16 ? n - p : 16;
            __mmask16 k = (__mmask16)(m == 16 ? 0xFFFF : (1u << m) - 1);
            __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + p), beff);
            if (e->colsum)
                v = _mm512_sub_epi32(v, _mm512_mullo_epi32(
                                            wz, _mm512_maskz_loadu_epi32(k, e->colsum + p)));
            _mm_mask_storeu_epi8(yb + p, k, requant16_sat(e, v));
        }
        return;
    }
    for (int64_t p = 0; p < n; p += 16) {
        int64_t m = n - p < 16 ? n - p : 16;
        __mmask16 k = (__mmask16)(m == 16 ? 0xFFFF : (1u << m) - 1);
        __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + p), beff);
        if (e->colsum)
            v = _mm512_sub_epi32(v, _mm512_mullo_epi32(
                                        wz, _mm512_maskz_loadu_epi32(k, e->colsum + p)));
        _mm_mask_storeu_epi8(yb + p, k, requant16(e, v));
    }
}

/* 4 rows of 64 bytes interleaved by unpacks (words of positions 4i..4i+3
** of each 16-position lane), then a 4x4 transpose of the 128-bit lanes. */
static void pack4(const uint8_t *const *t, uint32_t flip, int np, uint32_t *d) {
    __mmask64 k = np >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << np) - 1);
    __m512i a = _mm512_maskz_loadu_epi8(k, t[0]), b = _mm512_maskz_loadu_epi8(k, t[1]);
    __m512i c = _mm512_maskz_loadu_epi8(k, t[2]), e = _mm512_maskz_loadu_epi8(k, t[3]);
    if (flip) {
        a = _mm512_maskz_mov_epi8(k, _mm512_xor_si512(a, _mm512_set1_epi8((char)(flip & 0xFF))));
        b = _mm512_maskz_mov_epi8(k, _mm512_xor_si512(b, _mm512_set1_epi8((char)(flip >> 8))));
        c = _mm512_maskz_mov_epi8(k, _mm512_xor_si512(c, _mm512_set1_epi8((char)(flip >> 16))));
        e = _mm512_maskz_mov_epi8(k, _mm512_xor_si512(e, _mm512_set1_epi8((char)(flip >> 24))));
    }
    __m512i ab0 = _mm512_unpacklo_epi8(a, b), ab1 = _mm512_unpackhi_epi8(a, b);
    __m512i ce0 = _mm512_unpacklo_epi8(c, e), ce1 = _mm512_unpackhi_epi8(c, e);
    __m512i w0 = _mm512_unpacklo_epi16(ab0, ce0), w1 = _mm512_unpackhi_epi16(ab0, ce0);
    __m512i w2 = _mm512_unpacklo_epi16(ab1, ce1), w3 = _mm512_unpackhi_epi16(ab1, ce1);
    __m512i t0 = _mm512_shuffle_i64x2(w0, w1, 0x44), t1 = _mm512_shuffle_i64x2(w2, w3, 0x44);
    __m512i t2 = _mm512_shuffle_i64x2(w0, w1, 0xEE), t3 = _mm512_shuffle_i64x2(w2, w3, 0xEE);
    _mm512_storeu_si512(d, _mm512_shuffle_i64x2(t0, t1, 0x88));
    _mm512_storeu_si512(d + 16, _mm512_shuffle_i64x2(t0, t1, 0xDD));
    _mm512_storeu_si512(d + 32, _mm512_shuffle_i64x2(t2, t3, 0x88));
    _mm512_storeu_si512(d + 48, _mm512_shuffle_i64x2(t2, t3, 0xDD));
}

/* 16 int8/uint8 values to float */
static inline __m512 load16(const void *p, bool s, __mmask16 k) {
    __m128i v = _mm_maskz_loadu_epi8(k, p);
    return _mm512_cvtepi32_ps(s ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v));
}

/* QAdd: the float32 steps of cpu_q8_add_c, 16 lanes at a time (the division
** stays a division, cvtps rounds half to even by the default MXCSR mode). */
static void add(const cpu_q8_add *p, const void *a, const void *b, void *y, int64_t n) {
    const uint8_t *ab = a, *bb = b;
    uint8_t *yb = y;
    __m512 sa = _mm512_set1_ps(p->sa), za = _mm512_set1_ps(p->za);
    __m512 sb = _mm512_set1_ps(p->sb), zb = _mm512_set1_ps(p->zb);
    __m512 sy = _mm512_set1_ps(p->sy), big = _mm512_set1_ps(1e9f);
    __m512i zy = _mm512_set1_epi32(p->zy), lo = _mm512_set1_epi32(p->lo),
            hi = _mm512_set1_epi32(p->hi);
    /* |q| < 2^30 for all 8-bit inputs (finite scales): the +-1e9 clamp
    ** changes nothing and cvtps2dq is in range, so a saturating narrowing
    ** after adding zy clamps to the 8-bit range (integer bounds: the same
    ** result); full vectors stored from a register */
    float bound = (512.0f * (fabsf(p->sa) + fabsf(p->sb))) / fabsf(p->sy);
    int64_t i = 0;
    if (bound < 1e9f && p->lo == (p->y_signed ? -128 : 0) && p->hi == p->lo + 255 &&
        p->zy >= -65536 && p->zy <= 65536 && isfinite(p->za) && isfinite(p->zb) &&
        fabsf(p->za) <= 256 && fabsf(p->zb) <= 256)
        for (; i + 16 <= n; i += 16) {
            __m512 av = _mm512_mul_ps(_mm512_sub_ps(load16(ab + i, p->a_signed, 0xFFFF), za), sa);
            __m512 bv = _mm512_mul_ps(_mm512_sub_ps(load16(bb + i, p->b_signed, 0xFFFF), zb), sb);
            __m512 q = _mm512_div_ps(_mm512_add_ps(av, bv), sy);
            __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(q), zy);
            __m128i o = p->y_signed ? _mm512_cvtsepi32_epi8(r)
                                    : _mm512_cvtusepi32_epi8(
                                          _mm512_max_epi32(r, _mm512_setzero_si512()));
            _mm_storeu_si128((__m128i *)(void *)(yb + i), o);
        }
    for (; i < n; i += 16) {
        int64_t m = n - i < 16 ? n - i : 16;
        __mmask16 k = (__mmask16)(m == 16 ? 0xFFFF : (1u << m) - 1);
        __m512 av = _mm512_mul_ps(_mm512_sub_ps(load16(ab + i, p->a_signed, k), za), sa);
        __m512 bv = _mm512_mul_ps(_mm512_sub_ps(load16(bb + i, p->b_signed, k), zb), sb);
        __m512 q = _mm512_div_ps(_mm512_add_ps(av, bv), sy);
        q = _mm512_min_ps(_mm512_max_ps(q, _mm512_sub_ps(_mm512_setzero_ps(), big)), big);
        __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(q), zy);
        r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
        _mm_mask_storeu_epi8(yb + i, k, _mm512_cvtepi32_epi8(r));
    }
}

/* GEMV: 4 weight rows per pass over x, 64 bytes per step, the row tail
** through a masked load (never past the row). */
static void dot(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K, int64_t m0,
                int64_t m1, int32_t *out) {
    int64_t Kf = K / 64 * 64;
    __mmask64 tail = K > Kf ? (~(__mmask64)0) >> (64 - (K - Kf)) : 0;
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) {
        const int8_t *r0 = w + m * ldw, *r1 = r0 + ldw, *r2 = r1 + ldw, *r3 = r2 + ldw;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t k = 0; k < Kf; k += 64) {
            __m512i xv = _mm512_loadu_si512(x + k);
            a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512(r0 + k));
            a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_loadu_si512(r1 + k));
            a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_loadu_si512(r2 + k));
            a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_loadu_si512(r3 + k));
        }
        if (tail) {
            __m512i xv = _mm512_loadu_si512(x + Kf);
            a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_maskz_loadu_epi8(tail, r0 + Kf));
            a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_maskz_loadu_epi8(tail, r1 + Kf));
            a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_maskz_loadu_epi8(tail, r2 + Kf));
            a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_maskz_loadu_epi8(tail, r3 + Kf));
        }
        out[m - m0] = _mm512_reduce_add_epi32(a0);
        out[m - m0 + 1] = _mm512_reduce_add_epi32(a1);
        out[m - m0 + 2] = _mm512_reduce_add_epi32(a2);
        out[m - m0 + 3] = _mm512_reduce_add_epi32(a3);
    }
    for (; m < m1; m++) {
        const int8_t *r0 = w + m * ldw;
        __m512i a0 = _mm512_setzero_si512();
        for (int64_t k = 0; k < Kf; k += 64)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(x + k), _mm512_loadu_si512(r0 + k));
        if (tail)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(x + Kf),
                                     _mm512_maskz_loadu_epi8(tail, r0 + Kf));
        out[m - m0] = _mm512_reduce_add_epi32(a0);
    }
}

static void quant(const cpu_q8_qparams *p, const float *x, void *y, int64_t n) {
    cpu_q8_quant_body(p, x, y, n);
}

static void dequant(const cpu_q8_qparams *p, const void *x, float *y, int64_t n) {
    cpu_q8_dequant_body(p, x, y, n);
}

const cpu_q8_isa cpu_q8_avx512vnni = {"avx512vnni", true, kernel, epi, add, dot, quant,
                                      dequant, NULL, NULL, kernel_n, kernel_epi, pack4};
#else
const cpu_q8_isa cpu_q8_avx512vnni = {"avx512vnni", false, cpu_q8_kernel_c, cpu_q8_epi_c,
                                      cpu_q8_add_c, cpu_q8_dot_c, cpu_q8_quant_c,
                                      cpu_q8_dequant_c, NULL, NULL, NULL, NULL, NULL};
#endif
