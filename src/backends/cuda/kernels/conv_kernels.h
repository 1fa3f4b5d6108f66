/* conv_kernels.h: the C seam of the convolution family's own kernels
** (conv_direct.cu): the epilogue after cuDNN, the depthwise convolution and
** the transposed convolution.
** Dtype and activation codes are gemm_kernels.h's. */
#ifndef KILN_CUDA_CONV_KERNELS_H
#define KILN_CUDA_CONV_KERNELS_H

#include "gemm_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NC<spatial> y (n elements, `inner` per channel, m channels), in place:
** y = act(y + bias[c] + z[i]); bias and z may be NULL. */
cudaError_t kc_conv_epilogue(int dtype, void *y, int64_t n, int64_t inner, int64_t m,
                             const void *bias, const void *z, kc_act act, cudaStream_t s);

/* Depthwise 2-D convolution, NCHW, one filter per channel (group == C ==
** M): y[n,c,oh,ow] = act(sum_{i,j} x[n,c,oh*sh-pt+i*dh, ow*sw-pl+j*dw] *
** w[c,0,i,j] + bias[c] + z[n,c,oh,ow]); padding reads as zero; bias and z
** may be NULL. A 1-D convolution is the H = OH = KH = 1 case. */
typedef struct kc_dw_geom {
    int64_t n, c, h, w, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl;
} kc_dw_geom;

cudaError_t kc_dwconv2d(int dtype, const void *x, const void *w, const void *bias,
                        const void *z, void *y, const kc_dw_geom *g, kc_act act,
                        cudaStream_t s);

/* Transposed convolution (ConvTranspose), NC<spatial> with up to 3
** spatial dims (fewer given as leading dims of size 1: image 1, grid 1,
** kernel 1, stride 1, dilation 1, no pad), W [C, M/G, k...], groups:
** y[n,m,o] = bias[m] + sum over c in m's group and taps t with
** q*s - pb + t*d == o (0 <= q < grid) of x[n,c,q] * w[c,m % (M/G),t].
** One thread per output element (a gather: no atomics), f32 accumulation;
** bias may be NULL. */
typedef struct kc_convt_geom {
    int64_t n, c, m, g;
    int64_t img[3], grid[3], k[3], s[3], d[3], pb[3];
} kc_convt_geom;

cudaError_t kc_conv_transpose(int dtype, const void *x, const void *w, const void *bias, void *y,
                              const kc_convt_geom *g, cudaStream_t s);

/* Col2Im: y[n, c, o] = sum over taps t and block positions q with
** q*s - pb + t*d == o (0 <= q < grid) of x[n, c*K + t, q] (K taps per
** block), up to 3 spatial dims given as kc_convt_geom's (m and g unused;
** img is the image, grid the block positions). Float types; a gather. */
cudaError_t kc_col2im(int dtype, const void *x, void *y, const kc_convt_geom *g,
                      cudaStream_t s);

/* Direct (gather) convolution with bias, residual and activation fused:
** y[n,m,q] = act(sum over c in m's group and taps t of x[n,c,q*s - pb +
** t*d] * w[m, c % (C/G), t] + bias[m] + z[n,m,q]); coordinates outside
** the image read zero. Geometry in kc_convt_geom's fields with img the
** input's spatial dims and grid the output's (up to 3, fewer given as
** leading 1s). For what cuDNN declines (asymmetric pads): one thread per
** output element, f32 accumulation. bias and z may be NULL. */
cudaError_t kc_conv_direct(int dtype, const void *x, const void *w, const void *bias,
                           const void *z, void *y, const kc_convt_geom *g, kc_act act,
                           cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
