/* cpu_int8_avx512.c: AVX-512 VNNI INT8 conv microkernel and requantizing
** epilogue (cpu_int8.h). The kernel keeps CPU_Q8_MR x 4 zmm accumulators
** (6 output channels x 64 positions); per group of 4 reduction indices it
** loads the block's 4 x 64 activation bytes once and does one vpdpbusd per
** accumulator against 4 broadcast weight bytes. vpdpbusd sums u8*s8
** products in int32 without the int16 saturation of vpmaddubsw. Built with
** -mavx512f -mavx512bw -mavx512vl -mavx512vnni (cpu.cmake); without them
** the kernel is marked unavailable. */
#include "cpu_int8.h"

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

#define Q8_VNNI_KERNEL(MRV)                                                        \
    static void vnni_##MRV(const uint8_t *xp, const int8_t *w, int64_t ldw,        \
                           int64_t K, int32_t *acc) {                              \
        __m512i c[MRV][4];                                                         \
        for (int r = 0; r < MRV; r++)                                              \
            for (int v = 0; v < 4; v++) c[r][v] = _mm512_setzero_si512();          \
        int64_t Kf = K / 4, Kq = (K + 3) / 4;                                      \
        for (int64_t kq = 0; kq < Kq; kq++) {                                      \
            const uint8_t *x = xp + kq * CPU_Q8_NB * 4;                            \
            __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 64);   \
            __m512i x2 = _mm512_loadu_si512(x + 128);                              \
            __m512i x3 = _mm512_loadu_si512(x + 192);                              \
            for (int r = 0; r < MRV; r++) {                                        \
                int32_t wv;                                                        \
                if (kq < Kf) memcpy(&wv, w + r * ldw + 4 * kq, 4);                 \
                else wv = wq4(w + r * ldw, kq, K);                                 \
                __m512i b = _mm512_set1_epi32(wv);                                 \
                c[r][0] = _mm512_dpbusd_epi32(c[r][0], x0, b);                     \
                c[r][1] = _mm512_dpbusd_epi32(c[r][1], x1, b);                     \
                c[r][2] = _mm512_dpbusd_epi32(c[r][2], x2, b);                     \
                c[r][3] = _mm512_dpbusd_epi32(c[r][3], x3, b);                     \
            }                                                                      \
        }                                                                          \
        for (int r = 0; r < MRV; r++)                                              \
            for (int v = 0; v < 4; v++)                                            \
                _mm512_storeu_si512(acc + r * CPU_Q8_NB + 16 * v, c[r][v]);        \
    }

Q8_VNNI_KERNEL(1)
Q8_VNNI_KERNEL(2)
Q8_VNNI_KERNEL(3)
Q8_VNNI_KERNEL(4)
Q8_VNNI_KERNEL(5)
Q8_VNNI_KERNEL(6)

static void kernel(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                   int32_t *acc) {
    switch (mr) {
    case 1: vnni_1(xp, w, ldw, K, acc); break;
    case 2: vnni_2(xp, w, ldw, K, acc); break;
    case 3: vnni_3(xp, w, ldw, K, acc); break;
    case 4: vnni_4(xp, w, ldw, K, acc); break;
    case 5: vnni_5(xp, w, ldw, K, acc); break;
    default: vnni_6(xp, w, ldw, K, acc); break;
    }
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

static void epi(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y) {
    uint8_t *yb = y;
    __m512i beff = _mm512_set1_epi32((int32_t)e->beff), wz = _mm512_set1_epi32(e->wz);
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
    for (int64_t i = 0; i < n; i += 16) {
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

const cpu_q8_isa cpu_q8_avx512vnni = {"avx512vnni", true, kernel, epi, add};
#else
const cpu_q8_isa cpu_q8_avx512vnni = {"avx512vnni", false, cpu_q8_kernel_c, cpu_q8_epi_c,
                                      cpu_q8_add_c};
#endif
