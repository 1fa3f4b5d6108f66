/* einsum_kernels.h: the C seam of the general Einsum kernel (einsum.cu):
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

#ifdef __cplusplus
}
#endif
#endif
