/* reduce_kernels.h: C seam of the reduction kernels (reduce.cu): Reduce*,
** ArgMax/ArgMin and Softmax/LogSoftmax on float32/float16/bfloat16 (dtype
** codes KC_*). Launch on the stream, return the launch's error. */
#ifndef KILN_REDUCE_KERNELS_H
#define KILN_REDUCE_KERNELS_H

#include "kc_shape.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KR_SUM = 1, KR_MEAN, KR_MAX, KR_MIN, KR_PROD, KR_L1, KR_L2, KR_LOGSUM, KR_LSE,
       KR_SUMSQ };
/* y[o] = reduction of x over g's reduced dims (sums in float64). */
cudaError_t kc_reduce(int op, int dt, const kc_rgeom *g, const void *x, void *y,
                      cudaStream_t st);
/* int64 index of the max (is_max) or min along n of [outer, n, inner];
** NaN counts as the extreme; ties: first, or last with last_index. Float
** types and the 8- to 64-bit integers (kc_argext_dtype_ok). */
cudaError_t kc_argext(int is_max, int last_index, int dt, int64_t outer, int64_t n,
                      int64_t inner, const void *x, void *y, cudaStream_t st);
int kc_argext_dtype_ok(int dt);
/* Softmax (or LogSoftmax with is_log) along n of [outer, n, inner]. */
cudaError_t kc_softmax(int is_log, int dt, int64_t outer, int64_t n, int64_t inner,
                       const void *x, void *y, cudaStream_t st);

/* CumSum (prod 0) / CumProd (prod 1) along L of [outer, L, inner] (cum.cu);
** dt: a float type (f32/f16/bf16/f64) or an integer type (wrapping). */
cudaError_t kc_cum(int prod, int exclusive, int reverse, int dt, const void *x, void *y,
                   int64_t outer, int64_t L, int64_t inner, cudaStream_t st);

/* Hardmax: 1 at the first maximum of each line along L, 0 elsewhere (a
** float type). LpNormalization (p 1 or 2; a zero line stays zero; f64 in
** f64, the others in float). (cum.cu) */
cudaError_t kc_hardmax(int dt, const void *x, void *y, int64_t outer, int64_t L, int64_t inner,
                       cudaStream_t st);
cudaError_t kc_lpnorm(int p, int dt, const void *x, void *y, int64_t outer, int64_t L,
                      int64_t inner, cudaStream_t st);
/* Hann (kind 0), Hamming (1) and Blackman (2) windows of n points in type
** dt; EyeLike's rows x cols matrix with ones where col - row == k. */
/* TopK along L of [outer, L, inner]: the K best (largest or smallest; NaN
** above every number; ties by the lower index) in order, values (elements
** of es bytes, type dt for the comparison) and int64 indices. */
cudaError_t kc_topk(int dt, int es, int largest, const void *x, void *values, void *indices,
                    int64_t outer, int64_t L, int64_t K, int64_t inner, cudaStream_t st);
cudaError_t kc_window(int kind, int periodic, int dt, void *y, int64_t n, cudaStream_t st);
cudaError_t kc_eyelike(int dt, void *y, int64_t rows, int64_t cols, int64_t k,
                       cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
