/* attn_kernels.h: the C seam of the attention family's kernels
** (attn_softmax.cu). Dtype codes are gemm_kernels.h's. */
#ifndef KILN_CUDA_ATTN_KERNELS_H
#define KILN_CUDA_ATTN_KERNELS_H

#include "gemm_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { KC_MASK_NONE = 0, KC_MASK_BOOL = 1, KC_MASK_FLOAT = 2 };

typedef struct kc_attn_softmax_args {
    int64_t b, hq, sq, t;       /* scores are [b*hq*sq, t], rows in (b, h, i) order */
    int mask_kind;              /* KC_MASK_* */
    int mask_dtype;             /* KC_F32/F16/BF16 for KC_MASK_FLOAT */
    const void *mask;
    int64_t mst[4];             /* mask element strides over (b, h, i, t) */
    int64_t mlast;              /* mask columns; columns past it are -inf */
    int causal;                 /* column t > i + past is -inf */
    int64_t past;
    const int64_t *valid;       /* per batch: columns >= valid[b] are -inf
                                   (NULL: none) */
    float softcap;              /* > 0: s = softcap * tanh(s / softcap) */
} kc_attn_softmax_args;

/* Row softmax of the scores (float32) with the masks applied, in float32;
** writes the probabilities into p in dtype (p may be the scores themselves
** when dtype is KC_F32). A row with every column masked gives NaN, as the
** reference does. */
cudaError_t kc_attn_softmax(int dtype, const float *scores, void *p,
                            const kc_attn_softmax_args *a, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
