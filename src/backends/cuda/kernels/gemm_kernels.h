/* gemm_kernels.h: the C seam of the GEMM family's helper kernels (epilogues
** applied in place after cuBLASLt), plus the dtype and activation codes that
** the conv and attention kernels share, and the SM90 CUTLASS GEMM (below).
** Defined in gemm_epilogue.cu and gemm_sm90*.cu; every
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

/* ---- the SM90 (Hopper) GEMM with a fused epilogue (gemm_sm90*.cu, on
** CUTLASS headers): D[M,N] = act(alpha * A[M,K] B[K,N] + bias[N] + beta *
** C[M,N]), all row-major, FP16 or BF16 with FP32 accumulation and epilogue
** math, one rounding at the store. Needs K and N multiples of 8, every
** pointer 16-byte aligned, M, N, K < 2^31. */
enum {
    KC_SM90_128x256_COOP_C2x1 = 0, /* CTA 128x256x64, cluster 2x1, cooperative */
    KC_SM90_128x128_PP_C1x1,       /* CTA 128x128x64, cluster 1x1, ping-pong */
    KC_SM90_256x128_COOP_C1x2,     /* CTA 256x128x64, cluster 1x2, cooperative */
    KC_SM90_N_CFG
};

typedef struct kc_sm90_gemm {
    int dtype;              /* KC_F16 or KC_BF16 */
    int64_t m, n, k;
    const void *a, *b;      /* A [M,K], B [K,N] */
    const void *bias;       /* [N], or NULL */
    const void *c;          /* [M,N] scaled by beta, or NULL (beta ignored) */
    float alpha, beta;
    void *d;                /* [M,N] */
    kc_act act;             /* KC_ACT_*; what is compiled: gemm_sm90_cfg.h */
} kc_sm90_gemm;

/* 1 when the SM90 kernels are in this build (CUTLASS headers found and
** sm_90a in the gencode list); they run only on compute capability 9.0. */
int kc_gemm_sm90_built(void);
/* A prepared launch of g with configuration cfg (sm_count: the device's
** multiprocessors, for the persistent tile scheduler): CUTLASS's kernel
** parameters (TMA descriptors, grid) made on the host, plus the kernel's
** shared-memory attribute set on the current device; no stream work. Valid
** while g's pointers, sizes and scalars hold (callers cache it keyed by
** them), so a launch is one kernel launch and nothing else on the host.
** cudaErrorNotSupported when the kernels cannot take g (sizes, 16-byte
** alignment of a pointer, a problem that would need a workspace) or are
** not built. With plan_out NULL only checks (pointers may then be NULL). */
typedef struct kc_sm90_plan kc_sm90_plan;
cudaError_t kc_gemm_sm90_plan(int cfg, const kc_sm90_gemm *g, int sm_count,
                              kc_sm90_plan **plan_out);
/* Enqueues the planned GEMM on s (no host sync; CUDA-graph capturable). */
cudaError_t kc_gemm_sm90_launch(kc_sm90_plan *p, cudaStream_t s);
/* Frees a plan (NULL: nothing). */
void kc_gemm_sm90_plan_free(kc_sm90_plan *p);

#ifdef KC_SM90_INTERNAL
/* gemm_sm90*.cu only: a plan starts with its own launch and destroy. */
struct kc_sm90_plan {
    cudaError_t (*launch)(kc_sm90_plan *self, cudaStream_t s);
    void (*destroy)(kc_sm90_plan *self);
};
#endif

#ifdef __cplusplus
}
#endif
#endif
