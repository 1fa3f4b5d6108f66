/* nhwc_kernels.h: the C seam of the channels-last kernels (nhwc.cu): the
** layout conversions (the ToNhwc / ToNchw reformat layers), the epilogue
** after a cuDNN NHWC convolution, and NHWC pooling. Dtype and activation
** codes are gemm_kernels.h's (KC_F32 / KC_F16 / KC_BF16, kc_act). Every
** launcher enqueues on the stream and returns the launch's cudaError_t. */
#ifndef KILN_CUDA_NHWC_KERNELS_H
#define KILN_CUDA_NHWC_KERNELS_H

#include "gemm_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[n,h,w,c] = x[n,c,h,w] for c < C, 0 for C <= c < cp (channel padding).
** es: element size in bytes (1, 2 or 4: a bit copy, any type of that size). */
cudaError_t kc_nchw_to_nhwc(int es, const void *x, void *y, int64_t n, int64_t c, int64_t h,
                            int64_t w, int64_t cp, cudaStream_t s);
/* y[n,c,h,w] = x[n,h,w,c]. */
cudaError_t kc_nhwc_to_nchw(int es, const void *x, void *y, int64_t n, int64_t c, int64_t h,
                            int64_t w, cudaStream_t s);

/* In place over y (count elements, channels last, c channels):
** y = act(y + bias[i % c] + z[i]); bias and z may be NULL. */
cudaError_t kc_nhwc_epilogue(int dtype, void *y, int64_t count, int64_t c, const void *bias,
                             const void *z, kc_act act, cudaStream_t s);

/* 2-D pooling, x [n,h,w,c] -> y [n,oh,ow,c]. Tap (i, j) of output (p, q)
** reads x at (p*sh - pt + i*dh, q*sw - pl + j*dw); outside the image is
** padding (ignored by max; by average unless include_pad, which counts the
** taps inside the padded image [-pt, h+pb) x [-pl, w+pr)). */
typedef struct kc_nhwc_pool_geom {
    int64_t n, h, w, c, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int max;          /* 1: max, 0: average */
    int include_pad;
} kc_nhwc_pool_geom;

cudaError_t kc_nhwc_pool(int dtype, const void *x, void *y, const kc_nhwc_pool_geom *g,
                         cudaStream_t s);

/* Global average pool, x [n,hw,c] -> y [n,c] (the NCHW [n,c,1,1]). */
cudaError_t kc_nhwc_global_avg(int dtype, const void *x, void *y, int64_t n, int64_t hw,
                               int64_t c, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
