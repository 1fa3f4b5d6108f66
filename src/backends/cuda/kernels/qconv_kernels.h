/* qconv_kernels.h: C seam of the INT8 convolution / GEMM helper kernels
** (qconv.cu) behind cuda_qconv.c's QLinearConv and QAdd tactics. The
** tensor-core path is im2col (int8, K contiguous) -> cuBLASLt int8 x int8
** -> int32 -> requantization; these kernels are its first and last steps,
** its weight preparation, and a direct integer convolution that takes
** every QLinearConv the tensor-core path declines (groups, depthwise,
** weight zero points), so no quantized layer leaves the device.
** Arithmetic matches the reference kernels (ref_quant.c, ref_qfused.c) bit
** for bit: requantization in float64 with separate multiply and add
** (no FMA), round half to even, saturation. Launch on the stream, return
** its error. */
#ifndef KILN_QCONV_KERNELS_H
#define KILN_QCONV_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Convolution geometry, NCHW (1-D runs with h = kh = oh = 1). The depth
** fields (3-D, NCDHW) are read by the direct kernel only; 1-D and 2-D set
** dp = kd = od = sd = dd = 1, pd = 0. */
typedef struct kc_qconv_geom {
    int64_t n, c, h, w;          /* input */
    int64_t m, oh, ow;           /* output channels and spatial dims */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;  /* kernel, strides, begin pads, dilations */
    int64_t group;
    int64_t dp, kd, od, sd, pd, dd;  /* depth: input, kernel, output, stride, pad, dilation */
} kc_qconv_geom;

/* Per-layer quantization parameters, all device pointers to the layer's
** own input tensors (so runtime scales work too): x_scale, w_scale (one or
** M float32), y_scale float32; x_zp (one value, x's type), w_zp (NULL, one
** or M values of w's type), y_zp (one value, y's type); bias int32 [M] or
** NULL. The requantization multiplier of channel m is computed as the
** reference does: float(float(xs * ws[m]) / ys). */
typedef struct kc_qparams {
    const float *xs, *ws, *ys;
    const void *xzp, *wzp, *yzp;
    const int32_t *bias;
    int64_t n_ws, n_wzp;         /* counts of w_scale and w_zp (1 or M) */
    int x_signed, w_signed, y_signed;  /* int8 (1) or uint8 (0) */
} kc_qparams;

/* im2col for the tensor-core path, for rows r0 .. r0 + nrows of the
** output (r = (n * oh + y) * ow + x): col[(r - r0) * kp + k], k = (c * kh
** + i) * kw + j < K = c * kh * kw (group 1). Values are shifted into int8:
** x - 128 for uint8 x, x for int8 x; taps outside the image hold the zero
** point (shifted the same way), so they add nothing once the zero point
** correction (kc_q8_requant's) is applied; k >= K is 0. */
cudaError_t kc_q8_im2col(const void *x, const kc_qconv_geom *g, const kc_qparams *q,
                         int64_t r0, int64_t nrows, int64_t kp, int8_t *col, cudaStream_t s);

/* Weight preparation: wp[m * kp + k] = w[m * K + k] (int8) for m < M,
** k < K, zero elsewhere (mp rows), and rowsum[m] = sum_k w[m, k] (mp
** entries, 0 past M). Weights must be int8 with zero points 0. */
cudaError_t kc_q8_weight_prep(const int8_t *w, int64_t M, int64_t K, int64_t mp, int64_t kp,
                              int8_t *wp, int32_t *rowsum, cudaStream_t s);

/* Requantization of rows r0 .. r0 + nrows: acc[(r - r0) * ldacc + m] holds
** sum_k w[m, k] * (x - off) (off 128 for uint8 x, else 0); the true
** accumulator adds (off - x_zp) * rowsum[m]; then bias, the multiplier,
** y_zp and saturation, written NCHW to y. */
cudaError_t kc_q8_requant(const int32_t *acc, int64_t ldacc, const int32_t *rowsum,
                          const kc_qconv_geom *g, const kc_qparams *q, int64_t r0,
                          int64_t nrows, void *y, cudaStream_t s);

/* Epilogue vectors of the int8-output GEMM path (cuBLASLt computes
** D = sat(round(alpha[m] * acc + beta[m])) into int8 itself): alpha[m] =
** the multiplier, beta[m] = multiplier * (bias + (off - x_zp) * rowsum[m])
** + y_zp, less 128 for uint8 y (written shifted into int8, restored by
** kc_q8_nhwc_to_nchw). mp entries, 0 past M. Float arithmetic, so outputs
** may differ from the reference's float64 requantization by one step near
** rounding ties. */
cudaError_t kc_q8_epilogue_prep(const int32_t *rowsum, const kc_qconv_geom *g,
                                const kc_qparams *q, int64_t mp, float *alpha, float *beta,
                                cudaStream_t s);

/* The same vectors for a kernel that reads x and writes y unshifted (the
** SM90 implicit-GEMM convolution): alpha[m] = multiplier, beta[m] =
** multiplier * (bias - x_zp * rowsum[m]) + y_zp. */
cudaError_t kc_q8_epilogue_prep_plain(const int32_t *rowsum, const kc_qconv_geom *g,
                                      const kc_qparams *q, int64_t mp, float *alpha, float *beta,
                                      cudaStream_t s);

/* d[(r - r0) * ldd + m] (int8, rows r0 .. r0 + nrows) to y NCHW (uint8 y:
** the value + 128). */
cudaError_t kc_q8_nhwc_to_nchw(const int8_t *d, int64_t ldd, const kc_qconv_geom *g,
                               int y_signed, int64_t r0, int64_t nrows, void *y,
                               cudaStream_t s);

/* Direct QLinearConv, 1-D to 3-D (any group, zero points per tensor for
** x, per tensor or per channel for w), one thread per output element. */
cudaError_t kc_qconv_direct(const void *x, const void *w, const kc_qconv_geom *g,
                            const kc_qparams *q, void *y, cudaStream_t s);

/* ConvInteger / MatMulInteger and their *ToFloat forms (onnxruntime's
** quantize_dynamic models): zero points (device pointers, NULL for none)
** of the activation (one value) and of the weights (1, or M output channels
** / N columns), 8-bit signedness of each; the output either int32 (the
** wrapped exact sum) or float32 = (float)acc * scale[ch] (+ bias[ch]), two
** float32 steps, scale/bias 1 or per channel/column values. */
typedef struct kc_qint_zp {
    const void *azp, *bzp;
    int64_t n_bzp;
    int a_signed, b_signed;
} kc_qint_zp;
typedef struct kc_qint_out {
    int to_float;
    const float *scale, *bias;
    int64_t n_scale, n_bias;
} kc_qint_out;
/* x NCHW (1-D to 3-D, any group), w [M, C/group, k...]; one thread an output. */
cudaError_t kc_convint_direct(const void *x, const void *w, const kc_qconv_geom *g,
                              const kc_qint_zp *z, const kc_qint_out *o, void *y,
                              cudaStream_t s);
/* a [batch, M, K] row-major, b [K, N] (shared by the batch), y [batch, M, N];
** M up to 16 * 65535 rows. */
cudaError_t kc_matmulint(const void *a, const void *b, int64_t batch, int64_t M, int64_t K,
                         int64_t N, const kc_qint_zp *z, const kc_qint_out *o, void *y,
                         cudaStream_t s);

/* QAdd (ops/qfused.c): y = sat(rint(((a - za) * sa + (b - zb) * sb) / sy)
** + zy), the float32 steps of the reference; 16 bytes per thread when n %
** 16 == 0 and a, b, y are 16-byte aligned, else one. Device scalars as in
** kc_qparams: a_scale, a_zp, b_scale, b_zp, y_scale, y_zp. */
typedef struct kc_qadd_args {
    const float *as, *bs, *ys;
    const void *azp, *bzp, *yzp;
    int a_signed, b_signed, y_signed;
} kc_qadd_args;
/* 0 when KILN_CUDA_Q8_FAST=0: the vector paths of the NCHW INT8 layers
** (16-byte QAdd, 8-wide Q/DQ, row-major one-pixel requantization) off. */
int kc_q8_fast(void);

cudaError_t kc_qadd(const void *a, const void *b, void *y, int64_t n, const kc_qadd_args *p,
                    cudaStream_t s);

/* MaxPool of int8 (sgn 1) or uint8 NCHW data (2-D; 1-D with h = 1):
** g's n, c (channels), h, w, oh, ow, kernel, strides, begin pads and
** dilations; taps outside the image are skipped (as the reference does). */
cudaError_t kc_q8_maxpool(const void *x, void *y, const kc_qconv_geom *g, int sgn,
                          cudaStream_t s);

/* ---- channels-last (NhwcQLinearConv, ops/layout.h): x [n, h, w, c], w
** KRSC [m, kh, kw, c], y [n, oh, ow, m]; g holds the same sizes as for
** NCHW (group 1). */

/* im2col of rows r0 .. r0 + nrows: col[(r - r0) * kp + k], k = (i * kw + j)
** * c + ch (the KRSC weights' order), shifted into int8 and padded with the
** zero point as kc_q8_im2col does; 16-, 8- or 4-byte copies of channel runs
** when c allows, bytes otherwise. kp % 16 == 0, col 16-byte aligned,
** nrows * kp < 2^31. */
cudaError_t kc_q8_im2col_nhwc(const void *x, const kc_qconv_geom *g, const kc_qparams *q,
                              int64_t r0, int64_t nrows, int64_t kp, int8_t *col,
                              cudaStream_t s);

/* kc_q8_requant's arithmetic, written channels-last: y[r * m + ch] for
** rows r0 .. r0 + nrows (no transpose: 4 channels x 8 rows per thread). */
cudaError_t kc_q8_requant_nhwc(const int32_t *acc, int64_t ldacc, const int32_t *rowsum,
                               const kc_qconv_geom *g, const kc_qparams *q, int64_t r0,
                               int64_t nrows, void *y, cudaStream_t s);

/* y[r * m + ch] = d[r * ldd + ch], top bit flipped when flip (int8-shifted
** uint8 back to uint8); in place when d == y and ldd == m. */
cudaError_t kc_q8_rows_fix(const int8_t *d, int64_t ldd, void *y, int64_t m, int64_t nrows,
                           int flip, cudaStream_t s);

/* Direct channels-last QLinearConv (group 1, any weight type and zero
** points), one thread per output. */
cudaError_t kc_qconv_direct_nhwc(const void *x, const void *w, const kc_qconv_geom *g,
                                 const kc_qparams *q, void *y, cudaStream_t s);

/* MaxPool of 8-bit NHWC data (g's n, c, h, w, oh, ow, kernel, strides,
** begin pads, dilations): 16 or 4 channels per thread when c allows. */
cudaError_t kc_q8_maxpool_nhwc(const void *x, void *y, const kc_qconv_geom *g, int sgn,
                               cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
