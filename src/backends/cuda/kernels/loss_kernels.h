/* loss_kernels.h: C seam of the loss kernels (loss.cu): the gather-and-
** reduce half of NegativeLogLikelihoodLoss (SoftmaxCrossEntropyLoss runs
** kc_softmax's log form first). Launch on the stream, return its error. */
#ifndef KILN_LOSS_KERNELS_H
#define KILN_LOSS_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* lp: log-probabilities [N, C, D] of float type dt (KC_F32/F16/BF16);
** target [N, D] int64 (t64) or int32; w: C weights of type dt or NULL.
** Samples whose target equals ignore (when has_ignore) count zero loss and
** zero weight; a target outside [0, C) gives NaN (the reference fails).
** red 0: y [N, D] per-sample losses -lp[t]*w[t]; 1: their sum; 2: the sum
** over the sum of the counted weights. Sums in float64. */
cudaError_t kc_nll(int dt, const void *lp, const void *target, int t64, const void *w,
                   int64_t N, int64_t C, int64_t D, int has_ignore, int64_t ignore, int red,
                   void *y, cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
