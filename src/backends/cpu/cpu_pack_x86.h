/* cpu_pack_x86.h: vector packers shared by the AVX2 and AVX-512 GEMM files
** (include only from files compiled with -mavx2 -mfma): an 8x8 transpose
** for packing row-major A panels, and the segment list of im2col. */
#ifndef KILN_CPU_PACK_X86_H
#define KILN_CPU_PACK_X86_H

#include "cpu_gemm.h"

#include <immintrin.h>

/* In-place 8x8 transpose: r[c] becomes column c of the input rows. */
static inline void cpu_tr8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Row-major A into panels of MR (<= 8) rows: full panels transpose 8 k
** columns at a time (rows past MR read as zero and are not stored). */
static inline void cpu_pack_a_rows(const float *a, int64_t lda, int64_t i0,
                                   int64_t mc, int64_t k0, int64_t kc,
                                   float *dst, int MR) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(MR), lanes);
    for (int64_t ip = 0; ip < mc; ip += MR) {
        int h = (int)KILN_MIN((int64_t)MR, mc - ip);
        float *d = dst + ip * kc;
        const float *src = a + (i0 + ip) * lda + k0;
        int64_t k = 0;
        if (h == MR) {
            for (; k + 8 <= kc; k += 8) {
                __m256 r[8];
                for (int q = 0; q < 8; q++)
                    r[q] = q < MR ? _mm256_loadu_ps(src + q * lda + k) : _mm256_setzero_ps();
                cpu_tr8x8(r);
                for (int c = 0; c < 8; c++) {
                    if (MR == 8) _mm256_storeu_ps(d + (k + c) * 8, r[c]);
                    else _mm256_maskstore_ps(d + (k + c) * MR, keep, r[c]);
                }
            }
        }
        for (; k < kc; k++)
            for (int q = 0; q < MR; q++) d[k * MR + q] = q < h ? src[q * lda + k] : 0.0f;
    }
}

/* A panel's columns as runs along output rows: lanes [lane, lane + len)
** are output positions (oz, oy, ox .. ox + len). */
typedef struct cpu_seg {
    int64_t oz, oy, ox;
    int lane, len;
} cpu_seg;

static inline int cpu_segments(const cpu_im2col *g, int64_t j, int w, cpu_seg *seg) {
    int64_t ohw = g->oh * g->ow;
    int ns = 0, lane = 0;
    while (lane < w) {
        int64_t oz = j / ohw, rem = j % ohw, oy = rem / g->ow, ox = rem % g->ow;
        int len = (int)KILN_MIN(g->ow - ox, (int64_t)(w - lane));
        seg[ns].oz = oz, seg[ns].oy = oy, seg[ns].ox = ox;
        seg[ns].lane = lane, seg[ns].len = len;
        ns++;
        lane += len;
        j += len;
    }
    return ns;
}

/* Valid lanes [lo, hi) of a segment for tap offset ix0 (the input column
** of its first lane) along a row of iw: 0 <= ix0 + q*s < iw. */
static inline void cpu_seg_valid(int64_t ix0, int64_t s, int64_t iw, int len,
                                 int *lo, int *hi) {
    int64_t l = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s;
    int64_t h = iw - 1 - ix0 < 0 ? 0 : (iw - 1 - ix0) / s + 1;
    l = KILN_MIN(l, (int64_t)len);
    h = KILN_MAX(KILN_MIN(h, (int64_t)len), l);
    *lo = (int)l;
    *hi = (int)h;
}

#endif
