/* qfgemm_kernels.h: C seam of the epilogue kernel behind cuda_qfgemm.c's
** QFusedGemm tactic (ops/qfused.c): cuBLASLt's int8 GEMM leaves the int32
** product of a row chunk; this kernel applies the op's float32 steps (scale,
** bias, residual, activation) and writes the float or requantized output,
** four columns per thread (one 16-byte load of the product). Multiplies,
** adds and the division are kept separate (no FMA) as in the reference;
** the activations use the device's erff/tanhf/expf, which may differ from
** the host's in the last bit (so a requantized output may differ by one
** step near rounding ties, as the float epilogues of cuda_qconv.c may). */
#ifndef KILN_QFGEMM_KERNELS_H
#define KILN_QFGEMM_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KC_QFG_NONE = 0, KC_QFG_F32, KC_QFG_F16, KC_QFG_BF16, KC_QFG_S8, KC_QFG_U8 };
/* activations: FUSED_ACT_* values of ops/fused.h that the kernel takes */
enum { KC_QFG_ACT_NONE = 0, KC_QFG_ACT_RELU = 1, KC_QFG_ACT_SIGMOID = 3, KC_QFG_ACT_GELU = 5,
       KC_QFG_ACT_GELU_TANH = 6, KC_QFG_ACT_TANH = 10 };

typedef struct kc_qfg_epi {
    const int32_t *acc;       /* [rows][ldacc], the product (zero points 0) */
    int64_t ldacc, rows, n;   /* output [rows][n]; n % 4 == 0, ldacc % 4 == 0 */
    const float *scale;       /* device, 1 (scale_vec 0) or n values */
    const float *bias;        /* device, NULL, 1 or n values */
    int scale_vec, bias_vec;
    const void *res;          /* residual [rows][n] of res_type, or NULL */
    int res_type;
    const float *rs;          /* 8-bit residual: scale, zero point (NULL: 0) */
    const void *rz;
    int act;                  /* KC_QFG_ACT_* */
    void *y;                  /* [rows][n] of y_type */
    int y_type;
    const float *ys;          /* 8-bit y: scale, zero point */
    const void *yz;
} kc_qfg_epi;

cudaError_t kc_qfg_epilogue(const kc_qfg_epi *p, cudaStream_t s);

/* QLayerNormalization (ops/qfused.c): rows of len elements of x (float32,
** float16 or bfloat16; Scale and B (NULL: none) of p_type, len values),
** normalized in float32 (mean, variance of the deviations, 1 / sqrtf(var +
** eps)), each result rounded to x's type as the LayerNorm output would be,
** then QuantizeLinear's steps into y (int8 or uint8). One warp per row. The
** reference normalizes in float64: a value may land one step off near a
** rounding tie. */
typedef struct kc_qln_args {
    const void *x, *scale, *bias;
    int x_type, p_type;       /* KC_QFG_F32 / F16 / BF16 */
    int64_t rows, len;
    float eps;
    const float *ys;          /* device scalars */
    const void *yz;
    void *y;
    int y_type;               /* KC_QFG_S8 / U8 */
} kc_qln_args;

cudaError_t kc_qln(const kc_qln_args *p, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
