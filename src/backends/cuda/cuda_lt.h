/* cuda_lt.h: cached cuBLASLt matmuls, shared by the GEMM and attention
** tactics (cuda_gemm.c defines them). A spec describes one column-major
** problem D = epi(alpha * op(A) op(B) + beta * C) completely; its plan
** (descriptors, layouts, up to CUDA_LT_MAX_ALGOS heuristic results) is made
** on first use and kept in the exec's plan cache. */
#ifndef KILN_CUDA_LT_H
#define KILN_CUDA_LT_H

#include "cuda_internal.h"

enum { CUDA_LT_MAX_ALGOS = 8 };

/* Every field int64 so the struct has no padding (it is a cache key). */
typedef struct cuda_lt_spec {
    int64_t tag;              /* set by cuda_lt_plan_get */
    int64_t a_type, c_type;   /* cudaDataType_t of A and B, of C and D */
    int64_t compute;          /* cublasComputeType_t */
    int64_t op_a, op_b;       /* cublasOperation_t */
    int64_t m, n, k;          /* D is m x n */
    int64_t a_rows, a_cols, lda;  /* A as stored (before op_a) */
    int64_t b_rows, b_cols, ldb;
    int64_t ldc;              /* C and D share one layout */
    int64_t batch;            /* strided batch count (1: none) */
    int64_t stride_a, stride_b, stride_c;  /* elements between matrices */
    int64_t epilogue;         /* cublasLtEpilogue_t */
    int64_t align_a, align_b, align_c;     /* pointer alignment, bytes */
    int64_t scale_type;       /* cudaDataType_t of alpha and beta; 0 is
                                 CUDA_R_32F (the float products), the int8
                                 products use CUDA_R_32I */
    int64_t pointer_mode;     /* cublasLtPointerMode_t; 0 is
                                 CUBLASLT_POINTER_MODE_HOST */
} cuda_lt_spec;

typedef struct cuda_lt_plan cuda_lt_plan;

/* The plan of spec, made and cached on first use; NULL after ref_fail
** (cuBLASLt missing, no algorithm for the problem, out of memory). */
const cuda_lt_plan *cuda_lt_plan_get(ref_ctx *rc, cuda_lt_spec *spec);
/* Enqueues the product with heuristic result `rank` (result 0 when the
** heuristic offered fewer). c may be NULL when beta is 0; bias is the BIAS
** epilogues' vector (else NULL). 0, or -1 after ref_fail. */
int cuda_lt_matmul(ref_ctx *rc, const cuda_lt_plan *p, int rank, const void *a,
                   const void *b, const void *c, void *d, float alpha, float beta,
                   const void *bias);
/* The same with alpha and beta given as pointers to host values of the
** plan's scale type (int32 for CUDA_R_32I plans). */
int cuda_lt_matmul_raw(ref_ctx *rc, const cuda_lt_plan *p, int rank, const void *a,
                       const void *b, const void *c, void *d, const void *alpha,
                       const void *beta, const void *bias);
/* MatMul / Gemm / FusedGemm layer rc through cuBLASLt's first heuristic
** algorithm and our epilogue (cuda_gemm.c's cuda_fused_gemm_lt_h0): the
** graph GEMM tactic's way out when cuDNN has no plan at run time. */
int cuda_gemm_lt_run(ref_ctx *rc);
/* Largest power of two (at most 256) dividing the address and every
** byte stride given (n of them): what cuBLASLt may assume of a pointer. */
int64_t cuda_lt_align(const void *p, const int64_t *byte_strides, int n);

#endif
