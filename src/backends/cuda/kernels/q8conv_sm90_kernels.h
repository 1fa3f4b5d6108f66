/* q8conv_sm90_kernels.h: the C seam of the Hopper (sm_90a) INT8 implicit-GEMM
** convolution (q8conv_sm90.cu, on CUTLASS 3.x headers): channels-last int8
** or uint8 activations in, int8 or uint8 activations out, with the
** requantization in the kernel's epilogue, so layers chain with no im2col
** buffer and no int32 tensor in memory.
**
**   acc[n,p,q,m] = sum_{i,j,c} x[n, p*sh - ph0 + i*dh, q*sw - pw0 + j*dw, c]
**                              * w[m, i, j, c]          (int32, exact)
**   v = acc * alpha[m] + beta[m]   (+ gamma * r[n,p,q,m] with a residual)
**   y[n,p,q,m] = rne(clamp(v, lo, hi))                  (float math)
**
** Layouts: x [N, H, W, C], w [M, KH, KW, C] (int8), y and r [N, OH, OW, M],
** all dense (C resp. M contiguous). Float math in that order: one FMA for
** acc * alpha + beta (acc converted to float first), then the residual term
** as a second FMA (gamma * r + v), the clamp, then one round to nearest even.
**
** What the kernel takes (kc_q8conv_sm90_plan answers cudaErrorNotSupported
** otherwise; with plan_out NULL it only checks, so callers use it as their
** supports()):
**   - C % 16 == 0 and M % 16 == 0 (16-byte TMA rows), 2-D, group 1,
**     x, w, y, r 16-byte aligned, alpha/beta 16-byte aligned;
**   - CUTLASS's im2col TMA limits (its can_implement): padding 0..255 per
**     side, (KH-1)*dh and (KW-1)*dw < 255, and the im2col corners
**     -pad_begin and pad_end - (K-1)*dilation within -128..127 (so in
**     effect pads up to 128); strides and dilations >= 1;
**   - N*OH*OW < 2^31;
**   - x_zp == 0, or no padding at all: the implicit GEMM reads taps outside
**     the image as a raw 0, which is the real value only when the input's
**     zero point is 0. With x_zp != 0 and padding the caller must pad x
**     itself or fold the correction another way (kernel declines).
**   x int8 or uint8 (wgmma takes u8 x s8 directly: no shift needed).
** Zero points are the caller's to fold (w's must be 0): for QLinearConv,
**   alpha[m] = x_scale * w_scale[m] / y_scale,
**   beta[m]  = alpha[m] * (bias[m] - x_zp * sum_{i,j,c} w[m,i,j,c]) + y_zp,
**   lo, hi   = the y range: -128..127 / 0..255, or y_zp..hi for a fused ReLU.
** This is float32 math (one FMA), not the reference's float64
** requantization (ref_quant.c): an output can differ from it by one step
** where the two roundings straddle a tie or the float32 error of alpha,
** beta and float(acc) (acc beyond 2^24 is rounded) moves it.
** lo/hi are clamped to y's type range and rounded; a NaN v stores lo.
**
** Plans: CUTLASS's kernel parameters (TMA descriptors, grid) made once per
** problem and pointers; a launch is then one kernel launch. */
#ifndef KILN_CUDA_Q8CONV_SM90_KERNELS_H
#define KILN_CUDA_Q8CONV_SM90_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel configurations (CTA tile over output pixels x output channels x
** the reduction, cluster shape). The caller times them and keeps the best. */
enum {
    KC_Q8CONV_SM90_128x128_C1x1 = 0, /* CTA 128x128x64, cluster 1x1 */
    KC_Q8CONV_SM90_128x128_C2x1,     /* CTA 128x128x64, cluster 2x1 (w tile multicast) */
    KC_Q8CONV_SM90_128x64_C1x1,      /* CTA 128x64x64, cluster 1x1 (M = 64 layers) */
    /* 4 pipeline stages instead of as many as fit: two or more CTAs per SM
    ** (the conv kernel is not persistent, so a second CTA is what overlaps
    ** one tile's epilogue with another's mainloop) */
    KC_Q8CONV_SM90_128x64_C1x1_S4,   /* CTA 128x64x64, 4 stages */
    KC_Q8CONV_SM90_64x128_C1x1_S4,   /* CTA 64x128x64, 4 stages */
    KC_Q8CONV_SM90_N_CFG
};

typedef struct kc_q8conv_sm90 {
    int x_signed;             /* x: 1 int8, 0 uint8 */
    int y_signed;             /* y: 1 int8, 0 uint8 */
    int64_t n, h, w, c;       /* x [N, H, W, C] */
    int64_t m, kh, kw;        /* w [M, KH, KW, C], int8 */
    int64_t sh, sw;           /* strides */
    int64_t ph0, pw0;         /* pads at the start of H and W */
    int64_t ph1, pw1;         /* pads at the end of H and W */
    int64_t dh, dw;           /* dilations */
    int x_zp;                 /* x's zero point: only checked (see above) */
    const void *x;
    const int8_t *wt;
    void *y;                  /* [N, OH, OW, M] */
    const float *alpha;       /* device, [M] */
    const float *beta;        /* device, [M] */
    float lo, hi;             /* clamp bounds in y's integer domain */
    const void *r;            /* residual [N, OH, OW, M] or NULL */
    int r_signed;             /* r: 1 int8, 0 uint8 */
    float gamma;              /* residual scale (ignored without r) */
} kc_q8conv_sm90;

/* The output's spatial size (0 or less: no output). */
static inline int64_t kc_q8conv_sm90_out(int64_t in, int64_t k, int64_t s, int64_t p0,
                                         int64_t p1, int64_t d) {
    /* a dilated filter wider than the padded input has no output: C's
    ** division truncates toward zero, so a negative span must not reach it
    ** (it gave 1, and the kernel then ran TMA descriptors of an impossible
    ** geometry: "illegal instruction" on the H100, session 10) */
    int64_t span = in + p0 + p1 - d * (k - 1) - 1;
    return s < 1 || span < 0 ? 0 : span / s + 1;
}

/* 1 when the kernels are in this build (CUTLASS headers found and sm_90a in
** the gencode list); they run only on compute capability 9.0 devices. */
int kc_q8conv_sm90_built(void);

typedef struct kc_q8conv_plan kc_q8conv_plan;
/* A prepared launch of p with configuration cfg, plus the kernel's
** shared-memory attribute set on the current device; no stream work. Valid
** while p's pointers, sizes and scalars hold (callers cache it keyed by
** them). cudaErrorNotSupported when the kernels cannot take p (see above)
** or are not built; with plan_out NULL only checks (pointers may be NULL,
** then only the shapes are checked). */
cudaError_t kc_q8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                kc_q8conv_plan **plan_out);
/* The FP8 variant (issue 9's FP8 target), the same kernel with e4m3
** operands: x [N,H,W,C] and w [M,KH,KW,C] hold float8 e4m3 bytes (x and wt
** point at them), y and r float16, f32 accumulation (wgmma's FP8
** accumulation, no periodic promotion), then
**   y = f16_rne(clamp(acc * alpha[m] + beta[m] (+ gamma * r), lo, hi))
** with lo/hi plain floats (-INFINITY/INFINITY: no clamp; 0/INFINITY: ReLU).
** Same geometry limits; padded taps read +0.0, exact (no zero point), so
** x_zp, x_signed, y_signed and r_signed are ignored. Plans launch and free
** through the two calls below. */
cudaError_t kc_f8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                kc_q8conv_plan **plan_out);
/* Enqueues the planned convolution on s (no host sync; graph capturable). */
cudaError_t kc_q8conv_sm90_launch(kc_q8conv_plan *plan, cudaStream_t s);
/* Frees a plan (NULL: nothing). */
void kc_q8conv_sm90_plan_free(kc_q8conv_plan *plan);

#ifdef KC_Q8CONV_SM90_INTERNAL
/* q8conv_sm90.cu only: a plan starts with its own launch and destroy. */
struct kc_q8conv_plan {
    cudaError_t (*launch)(kc_q8conv_plan *self, cudaStream_t s);
    void (*destroy)(kc_q8conv_plan *self);
};
#endif

#ifdef __cplusplus
}
#endif
#endif
