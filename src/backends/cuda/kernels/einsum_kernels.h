/* einsum_kernels.h: the C seam of the general Einsum kernel, the DFT and
** QLinearMatMul (einsum.cu). Einsum:
** one thread per output element sums, over every combination of the
** contracted labels, the product of the operands' elements (double
** accumulation, as the host reference). The host side (cuda_gemm.c)
** resolves the equation into per-label sizes and per-operand strides
** (0 where an operand lacks the label or broadcasts it). */
#ifndef KILN_CUDA_EINSUM_KERNELS_H
#define KILN_CUDA_EINSUM_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KC_EIN_MAX_OPS = 4, KC_EIN_MAX_LABELS = 16 };
enum { KC_EIN_F64 = 3 }; /* beside gemm_kernels.h's KC_F32/F16/BF16 (0..2) */

typedef struct kc_einsum_args {
    int n_ops, n_out, n_sum;
    const void *op[KC_EIN_MAX_OPS];
    int64_t out_size[KC_EIN_MAX_LABELS];                  /* output labels, row-major */
    int64_t out_stride[KC_EIN_MAX_OPS][KC_EIN_MAX_LABELS];
    int64_t sum_size[KC_EIN_MAX_LABELS];                  /* contracted labels */
    int64_t sum_stride[KC_EIN_MAX_OPS][KC_EIN_MAX_LABELS];
    int64_t nsum;                                          /* product of sum_size */
} kc_einsum_args;

/* dtype: KC_F32/F16/BF16 (gemm_kernels.h) or KC_EIN_F64 of every operand
** and y; y has
** the product of out_size elements. */
cudaError_t kc_einsum(int dtype, const kc_einsum_args *a, void *y, cudaStream_t s);

/* DFT along one axis of x [outer, n, inner, cin] (cin 1: real, 2:
** complex) into y [outer, lout, inner, cout], a direct sum per output bin
** in double with exact twiddles (k*t mod L): forward, inverse (scaled by
** 1/L), onesided forward (lout = L/2 + 1) and onesided inverse (the full
** spectrum rebuilt from its conjugate-symmetric half, cout 1). dtype: the
** KC_F32/F16/BF16/KC_EIN_F64 code of x and y. O(L^2) per line: for the
** lengths models and tests use, not long signals. */
typedef struct kc_dft_args {
    int64_t outer, n, inner, cin, L, lout, cout;
    int inverse, onesided;
} kc_dft_args;

cudaError_t kc_dft(int dtype, const void *x, void *y, const kc_dft_args *a, cudaStream_t s);

/* STFT of signals x [batch, len, cin] (cin 1 real, 2 complex) with an
** optional window w [fl] (NULL: all ones): y [batch, frames, bins, 2],
** frames = 1 + (len - fl) / step, bins = fl / 2 + 1 when onesided else fl;
** the direct sum of kc_dft per bin (double, exact twiddles). */
typedef struct kc_stft_args {
    int64_t batch, len, cin, step, fl, frames, bins;
} kc_stft_args;

cudaError_t kc_stft(int dtype, const void *x, const void *w, void *y, const kc_stft_args *a,
                    cudaStream_t s);

/* QLinearMatMul with per-tensor scales and zero points: y = saturate(
** rint(int32(sum_k (a - a_zp) * (b - b_zp)) * mult + y_zp)) over numpy
** batch broadcasting (up to 4 batch dims; a's and b's strides in whole
** matrices, 0 where broadcast). a, b, y are 8-bit (signed when *_signed).
** mult is the host's requantization multiplier, in double. */
typedef struct kc_qlmm_args {
    int64_t M, K, N;
    int nb;
    int64_t bout[4], sa[4], sb[4];
    int a_signed, b_signed, y_signed;
    int32_t a_zp, b_zp;
    double mult, y_zp;
    int64_t lo, hi;
} kc_qlmm_args;

cudaError_t kc_qlinear_matmul(const void *a, const void *b, void *y, const kc_qlmm_args *p,
                              cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
