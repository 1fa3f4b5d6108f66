/* gemm_kernels.h: the C seam of the GEMM family's helper kernels (epilogues
** applied in place after cuBLASLt), plus the dtype and activation codes that
** the conv and attention kernels share. Defined in gemm_epilogue.cu; every
** launcher enqueues on the stream and returns the launch's cudaError_t. */
#ifndef KILN_CUDA_GEMM_KERNELS_H
#define KILN_CUDA_GEMM_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of the float kernels. */
enum { KC_F32 = 0, KC_F16 = 1, KC_BF16 = 2 };

/* Activations: the same values as FUSED_ACT_* (ops/fused.h, which .cu files
** cannot include; cuda_gemm.c checks the two agree at compile time) and the
** same scalar formulas, evaluated in float32. */
enum {
    KC_ACT_NONE = 0, KC_ACT_RELU, KC_ACT_CLIP, KC_ACT_SIGMOID, KC_ACT_SILU,
    KC_ACT_GELU, KC_ACT_GELU_TANH, KC_ACT_LEAKY_RELU, KC_ACT_HARD_SWISH,
    KC_ACT_HARD_SIGMOID, KC_ACT_TANH
};

typedef struct kc_act {
    int kind;
    float alpha, beta;
} kc_act;

enum { KC_MAX_RANK = 12 };

/* How the added tensor C reaches output element i. */
enum {
    KC_ADD_NONE = 0,   /* no C */
    KC_ADD_SAME = 1,   /* C[i]: C has the output's shape */
    KC_ADD_ROW = 2,    /* C[i % n_last]: a vector along the last dim */
    KC_ADD_BCAST = 3   /* general numpy broadcast: strides below */
};

typedef struct kc_bcast {
    int rank;                   /* the output's rank */
    int64_t dims[KC_MAX_RANK];  /* the output's dims */
    int64_t cst[KC_MAX_RANK];   /* C's element strides per output dim (0:
                                   broadcast) */
} kc_bcast;

/* y[i] = act(alpha * y[i] + beta * C(i)) over n elements, in place; C has
** y's dtype. n_last: the output's last dim (KC_ADD_ROW). */
cudaError_t kc_gemm_epilogue(int dtype, void *y, int64_t n, float alpha, const void *c,
                             float beta, int add_mode, int64_t n_last, const kc_bcast *bc,
                             kc_act act, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
