/* attn_kernels.h: the C seam of the attention family's kernels
** (attn_softmax.cu, attn_flash.cu, rotary.cu). Dtype codes are gemm_kernels.h's. */
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
    int dead_zero;              /* a row with every column masked gives 0s
                                   (kiln_masked_rows_zero), else NaN */
    void *qk;                   /* NULL, or the qk_matmul_output [rows, t] in
                                   the probabilities' dtype, written at stage
                                   qk_mode: 0 the scores as given, 1 after
                                   softcap, 2 after the masks, 3 the
                                   probabilities */
    int qk_mode;
} kc_attn_softmax_args;

/* Row softmax of the scores (float32) with the masks applied, in float32;
** writes the probabilities into p in dtype (p may be the scores themselves
** when dtype is KC_F32). A row with every column masked gives NaN, as the
** reference does, or 0s with dead_zero. */
cudaError_t kc_attn_softmax(int dtype, const float *scores, void *p,
                            const kc_attn_softmax_args *a, cudaStream_t s);

/* Fused ("flash") attention in FP16 or BF16 on tensor cores: per head,
** Y = softmax(mask(softcap(scale * Q K^T))) V with the scores kept in
** registers (online softmax in float32, never written to memory). Every
** operand is addressed as base + b*sb + h*sh + row*ss (element strides), so
** the 3-D (heads interleaved in the hidden dim) and 4-D layouts are both
** read in place. Query head h reads kv head h / (hq / hkv). */
typedef struct kc_attn_flash_args {
    const void *q, *k, *v;
    void *y;
    int64_t b, hq, hkv, sq, t, d; /* head dim d is both Q/K's and V's */
    int64_t q_sb, q_sh, q_ss;     /* element strides of (batch, head, row) */
    int64_t k_sb, k_sh, k_ss;
    int64_t v_sb, v_sh, v_ss;
    int64_t y_sb, y_sh, y_ss;
    float scale, softcap;         /* softcap > 0: s = softcap * tanh(s / softcap) */
    int mask_kind;                /* KC_MASK_* */
    int mask_dtype;               /* KC_F32/F16/BF16 for KC_MASK_FLOAT */
    const void *mask;
    int64_t mst[4];               /* mask element strides over (b, h, i, t) */
    int64_t mlast;                /* mask columns; columns past it are -inf */
    int causal;                   /* column t > i is -inf */
    const int64_t *valid;         /* per batch: columns >= valid[b] are -inf */
    int dead_zero;                /* a row with every column masked gives 0,
                                     else NaN */
    int kernel;                   /* 0: the default kernel (v2: ldmatrix,
                                     cp.async pipeline, 64 query rows a
                                     block); 1: the first one (v1), kept for
                                     A/B timing; 2: v3, v2's code with 128
                                     query rows a block (8 warps), so that at
                                     Sq <= 128 K and V are read once; head
                                     dims 32 and 64 (v2 runs for 128). 0 and
                                     2 give the same outputs bit for bit and
                                     hand the operands v2 cannot read
                                     (unaligned rows) to v1 */
} kc_attn_flash_args;

/* Whether kc_attn_flash has a kernel for head dim d (32, 64, 128). */
int kc_attn_flash_head_dim_ok(int64_t d);
/* Whether kernel = 2 runs v3 for head dim d (32, 64), not v2. */
int kc_attn_flash_v3_head_dim_ok(int64_t d);

/* Launches the fused attention (dtype KC_F16 or KC_BF16). A row whose
** every column is masked gives NaN, as the reference does (0 with
** dead_zero).
** cudaErrorInvalidValue for another dtype or head dim, or a grid too big. */
cudaError_t kc_attn_flash(int dtype, const kc_attn_flash_args *a, cudaStream_t s);

/* RotaryEmbedding (rotary.cu): x is (b, h, s, d) or, with is3, (b, s, h*d);
** the first rd features of each head rotate in pairs (i, i + rd/2), or
** (2i, 2i+1) when interleaved, by the caches cos/sin [row, rd/2] (dtype
** cache_dt, KC_F32/F16/BF16), row = pos[b*s + i] when pos is given (int64;
** rows outside [0, maxpos) give zeros: the host reference refuses them),
** else b*s + i; the other features are copied. */
typedef struct kc_rotary_args {
    int64_t b, s, h, d, rd;
    int is3, interleaved;
    const void *cos, *sin;
    int cache_dt;
    const int64_t *pos;
    int64_t maxpos;
} kc_rotary_args;

cudaError_t kc_rotary(int dtype, const void *x, void *y, const kc_rotary_args *a,
                      cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
