/* cuda_qfgemm.c: QFusedGemm (ops/qfused.c: an 8-bit product with its
** epilogue, made by passes/qdq.c and passes/qepi.c) on the GPU:
**  - cuda_qfusedgemm_lt_h<k>: cuBLASLt's int8 x int8 -> int32 GEMM (the
**    "TN" layout of the integer tensor cores: B [N, K] as stored, A's rows
**    [rows, K] read in place), then one epilogue kernel
**    (kernels/qfgemm.cu) doing scale, bias, residual (float or 8-bit),
**    activation and the float / half / requantized output. Rows run in
**    chunks so the int32 buffer stays bounded (QF_CHUNK_BYTES). Takes int8
**    A and B with constant zero points 0 (Kiln's quantizer: symmetric
**    int8 where a value may be negative, weights symmetric), K and N
**    multiples of 16.
**  - cuda_qfusedgemm_lt_l2_h<k>: the same with chunks of at most
**    QF_L2_CHUNK_BYTES of int32 product, so each chunk's product is still
**    in the L2 cache (50 MB on an H100) when the epilogue reads it: the
**    round trip costs L2 bandwidth instead of HBM's, for more, smaller
**    GEMMs. The builder times both forms and keeps the faster.
**  - cuda_qlayernorm_rows: QLayerNormalization (LayerNorm then Q: qepi.c
**    makes it where the LayerNorm's only reader is the Q, as in a BERT
**    layer whose products and residuals read the 8-bit value), one warp
**    per row: reads x once, writes one byte per element.
** Opt-in with KILN_CUDA_Q8_FLOAT_OUT=1 until it has run on a GPU: without
** it cuda_find does not name it either, so the builder keeps device graphs
** as they were (pass_ctx.no_q8_epilogue) and engines built with it do not
** load. The int32 product still makes a round trip through memory (8
** bytes an output element against 1 or 2 for the output itself): the
** CUTLASS SM90 GEMM with this epilogue in its visitor tree is the next
** step (bench/RESULTS.md 2026-12-08, session 11, bertq8). */
#include "cuda_lt.h"
#include "kernels/qfgemm_kernels.h"
#include "../../ops/fused.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { QF_ALIGN = 256 };
#define QF_CHUNK_BYTES ((size_t)256 << 20) /* int32 product rows per chunk */
#define QF_L2_CHUNK_BYTES ((size_t)16 << 20) /* the L2-resident form's chunks */

static size_t al(size_t v) { return (v + QF_ALIGN - 1) / QF_ALIGN * QF_ALIGN; }

bool cuda_qfgemm_enabled(void) {
    const char *e = getenv("KILN_CUDA_Q8_FLOAT_OUT");
    return e && !strcmp(e, "1");
}

static int kc_type(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: return KC_QFG_F32;
    case KILN_DTYPE_FLOAT16: return KC_QFG_F16;
    case KILN_DTYPE_BFLOAT16: return KC_QFG_BF16;
    case KILN_DTYPE_INT8: return KC_QFG_S8;
    case KILN_DTYPE_UINT8: return KC_QFG_U8;
    default: return KC_QFG_NONE;
    }
}

/* A constant input of zeros, or no input. */
static bool zero_or_absent(const ir_node *n, int i) {
    if (n->n_in <= i || !n->in[i]) return true;
    const kiln_tensor *z = n->in[i]->const_val;
    if (!z) return false;
    for (int64_t k = 0; k < tensor_numel(z); k++)
        if (dt_get_i64(z->dtype, z->data, (size_t)k) != 0) return false;
    return true;
}

static int64_t numel_ty(const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

static bool qf_supports(const ir_node *n, const ir_type *const *in) {
    if (!cuda_qfgemm_enabled() || !cuda_libs_get()->ltMatmul || n->op != OP_QFusedGemm ||
        n->n_out != 1 || n->n_in < 5 || !in[0] || !in[1] || !in[4])
        return false;
    const ir_type *a = in[0], *b = in[1];
    if (a->dtype != KILN_DTYPE_INT8 || b->dtype != KILN_DTYPE_INT8 || b->rank != 2 ||
        a->rank < 2 || b->dims[0] < 1 || b->dims[1] < 1 || b->dims[0] % 16 ||
        b->dims[1] % 16 || a->dims[a->rank - 1] != b->dims[1])
        return false;
    if (!zero_or_absent(n, 2) || !zero_or_absent(n, 3)) return false;
    int64_t N = b->dims[0];
    for (int i = 4; i <= 5; i++) {
        if (n->n_in <= i || !in[i]) continue;
        int64_t len = numel_ty(in[i]);
        if (in[i]->dtype != KILN_DTYPE_FLOAT32 || (len != 1 && len != N)) return false;
    }
    if (n->n_in > 6 && in[6] && kc_type(in[6]->dtype) == KC_QFG_NONE) return false;
    bool r8 = n->n_in > 6 && in[6] && kc_type(in[6]->dtype) >= KC_QFG_S8;
    if (r8 && !(n->n_in > 7 && in[7] && in[7]->dtype == KILN_DTYPE_FLOAT32 &&
                numel_ty(in[7]) == 1))
        return false;
    if (n->n_in > 8 && in[8] && numel_ty(in[8]) != 1) return false;
    if (n->n_in > 9 && in[9] && (in[9]->dtype != KILN_DTYPE_FLOAT32 || numel_ty(in[9]) != 1))
        return false;
    if (n->n_in > 10 && in[10] && numel_ty(in[10]) != 1) return false;
    fused_act act;
    char err[64];
    if (!fused_act_read(n, &act, err, sizeof err)) return false;
    return act.kind == FUSED_ACT_NONE || act.kind == FUSED_ACT_RELU ||
           act.kind == FUSED_ACT_SIGMOID || act.kind == FUSED_ACT_GELU ||
           act.kind == FUSED_ACT_GELU_TANH || act.kind == FUSED_ACT_TANH;
}

static int64_t qf_chunk(int64_t rows, int64_t N, size_t bytes) {
    int64_t c = (int64_t)(bytes / ((size_t)N * 4));
    if (c > rows) c = rows;
    /* cuBLASLt's n and the epilogue's thread count stay in 32 bits */
    if (c > INT32_MAX / N) c = INT32_MAX / N;
    return c < 1 ? 1 : c;
}

static size_t qf_workspace_any(const ir_type *const *in, size_t chunk_bytes) {
    int64_t rows = 1;
    for (int i = 0; i < in[0]->rank - 1; i++) {
        if (in[0]->dims[i] < 0) return SIZE_MAX;
        rows *= in[0]->dims[i];
    }
    int64_t N = in[1]->dims[0];
    return 2 * QF_ALIGN + al((size_t)(qf_chunk(rows, N, chunk_bytes) * N) * 4);
}

static size_t qf_workspace(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return qf_workspace_any(in, QF_CHUNK_BYTES);
}

static size_t qf_workspace_l2(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return qf_workspace_any(in, QF_L2_CHUNK_BYTES);
}

static int qf_run(ref_ctx *rc, int rank, size_t chunk_bytes) {
    cuda_exec *x = cuda_exec_of(rc);
    cuda_plans_trim(x);
    const kiln_tensor *A = rc->in[0], *B = rc->in[1];
    kiln_tensor *Y = rc->out[0];
    if (A->dtype != KILN_DTYPE_INT8 || B->dtype != KILN_DTYPE_INT8 || B->rank != 2 ||
        A->rank < 2 || A->dims[A->rank - 1] != B->dims[1] || B->dims[0] % 16 || B->dims[1] % 16)
        return ref_fail(rc, "the int8 GEMM path needs int8 A [..., K], B [N, K], K and N "
                            "multiples of 16");
    int64_t N = B->dims[0], K = B->dims[1], rows = K ? tensor_numel(A) / K : 0;
    if (tensor_numel(Y) != rows * N) return ref_fail(rc, "output size does not match");
    if (rows == 0) return 0;
    kc_qfg_epi e;
    memset(&e, 0, sizeof e);
    const kiln_tensor *s = rc->in[4], *bias = ref_has(rc, 5) ? rc->in[5] : NULL;
    e.scale = s->data, e.scale_vec = tensor_numel(s) != 1;
    if (bias) e.bias = bias->data, e.bias_vec = tensor_numel(bias) != 1;
    if ((e.scale_vec && tensor_numel(s) != N) || (bias && e.bias_vec && tensor_numel(bias) != N))
        return ref_fail(rc, "scale and bias must have 1 or %lld values", (long long)N);
    const kiln_tensor *R = ref_has(rc, 6) ? rc->in[6] : NULL;
    if (R) {
        e.res_type = kc_type(R->dtype);
        if (e.res_type == KC_QFG_NONE || tensor_numel(R) != rows * N)
            return ref_fail(rc, "the residual must be a float or 8-bit tensor of the output's "
                                "shape");
        if (e.res_type >= KC_QFG_S8) {
            if (!ref_has(rc, 7)) return ref_fail(rc, "an 8-bit residual needs r_scale");
            e.rs = rc->in[7]->data;
            e.rz = ref_has(rc, 8) ? rc->in[8]->data : NULL;
        }
    }
    fused_act act;
    if (!fused_act_read(rc->node, &act, rc->err, sizeof rc->err)) return -1;
    e.act = act.kind;
    e.y_type = kc_type(Y->dtype);
    if (e.y_type >= KC_QFG_S8) {
        if (!ref_has(rc, 9) || !ref_has(rc, 10))
            return ref_fail(rc, "an 8-bit output needs y_scale and y_zero_point");
        e.ys = rc->in[9]->data, e.yz = rc->in[10]->data;
    }
    /* rows per chunk: what the workspace holds (it may be less than asked) */
    int64_t chunk = rc->ws && rc->ws_size > QF_ALIGN
                        ? (int64_t)((rc->ws_size - QF_ALIGN) / ((size_t)N * 4)) : 0;
    if (chunk > qf_chunk(rows, N, chunk_bytes)) chunk = qf_chunk(rows, N, chunk_bytes);
    if (chunk < 1) return ref_fail(rc, "workspace of %zu bytes is too small", rc->ws_size);
    int32_t *acc = (int32_t *)(((uintptr_t)rc->ws + QF_ALIGN - 1) / QF_ALIGN * QF_ALIGN);
    cudaStream_t st = cuda_stream_of(rc);
    const int32_t one = 1, zero = 0;
    size_t yel = Y->dtype == KILN_DTYPE_FLOAT32 ? 4 : e.y_type >= KC_QFG_S8 ? 1 : 2;
    size_t rel = R ? (e.res_type == KC_QFG_F32 ? 4 : e.res_type >= KC_QFG_S8 ? 1 : 2) : 0;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        const int8_t *b = (const int8_t *)A->data + r0 * K;
        cuda_lt_spec sp;
        memset(&sp, 0, sizeof sp);
        sp.a_type = CUDA_R_8I;
        sp.c_type = CUDA_R_32I;
        sp.compute = CUBLAS_COMPUTE_32I;
        sp.scale_type = CUDA_R_32I;
        sp.op_a = CUBLAS_OP_T, sp.op_b = CUBLAS_OP_N;
        sp.m = N, sp.n = nr, sp.k = K;
        sp.a_rows = K, sp.a_cols = N, sp.lda = K;
        sp.b_rows = K, sp.b_cols = nr, sp.ldb = K;
        sp.ldc = N;
        sp.batch = 1;
        sp.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
        int64_t sa = K, sc = N * 4;
        sp.align_a = cuda_lt_align(B->data, &sa, 1);
        sp.align_b = cuda_lt_align(b, &sa, 1);
        sp.align_c = cuda_lt_align(acc, &sc, 1);
        const cuda_lt_plan *p = cuda_lt_plan_get(rc, &sp);
        if (!p) return -1;
        if (cuda_lt_matmul_raw(rc, p, rank, B->data, b, NULL, acc, &one, &zero, NULL)) return -1;
        e.acc = acc, e.ldacc = N, e.rows = nr, e.n = N;
        e.res = R ? (const char *)R->data + (size_t)(r0 * N) * rel : NULL;
        e.y = (char *)Y->data + (size_t)(r0 * N) * yel;
        if (cuda_fail_if(rc, kc_qfg_epilogue(&e, st), "QFusedGemm epilogue")) return -1;
    }
    return 0;
}

static int qf_run_h0(ref_ctx *rc) { return qf_run(rc, 0, QF_CHUNK_BYTES); }
static int qf_run_h1(ref_ctx *rc) { return qf_run(rc, 1, QF_CHUNK_BYTES); }
static int qf_run_l2_h0(ref_ctx *rc) { return qf_run(rc, 0, QF_L2_CHUNK_BYTES); }

/* ---- QLayerNormalization */
static bool qln_supports(const ir_node *n, const ir_type *const *in) {
    if (!cuda_qfgemm_enabled() || n->op != OP_QLayerNormalization || n->n_in != 5 ||
        n->n_out != 1 || !in[0] || !in[1] || !in[3] || !in[4])
        return false;
    const ir_type *x = in[0];
    int xt = kc_type(x->dtype), pt = kc_type(in[1]->dtype);
    if (xt < KC_QFG_F32 || xt > KC_QFG_BF16 || pt < KC_QFG_F32 || pt > KC_QFG_BF16 ||
        (in[2] && in[2]->dtype != in[1]->dtype) || in[3]->dtype != KILN_DTYPE_FLOAT32 ||
        numel_ty(in[3]) != 1 || kc_type(in[4]->dtype) < KC_QFG_S8 || numel_ty(in[4]) != 1)
        return false;
    int64_t axis = ir_attr_int(n, "axis", -1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return false;
    int64_t len = 1;
    for (int i = (int)axis; i < x->rank; i++) {
        if (x->dims[i] < 0) return false;
        len *= x->dims[i];
    }
    /* Scale and B: one value per normalized element */
    return numel_ty(in[1]) == len && (!in[2] || numel_ty(in[2]) == len);
}

static int qln_run(ref_ctx *rc) {
    const kiln_tensor *X = rc->in[0];
    kiln_tensor *Y = rc->out[0];
    int64_t axis = ir_attr_int(rc->node, "axis", -1);
    if (axis < 0) axis += X->rank;
    if (axis < 0 || axis >= X->rank) return ref_fail(rc, "axis out of range");
    kc_qln_args a;
    memset(&a, 0, sizeof a);
    a.len = 1;
    for (int i = (int)axis; i < X->rank; i++) a.len *= X->dims[i];
    a.rows = a.len ? tensor_numel(X) / a.len : 0;
    if (tensor_numel(rc->in[1]) != a.len || (ref_has(rc, 2) && tensor_numel(rc->in[2]) != a.len) ||
        tensor_numel(Y) != tensor_numel(X))
        return ref_fail(rc, "Scale and B must cover the normalized dims");
    a.x = X->data, a.x_type = kc_type(X->dtype);
    a.scale = rc->in[1]->data, a.p_type = kc_type(rc->in[1]->dtype);
    a.bias = ref_has(rc, 2) ? rc->in[2]->data : NULL;
    a.eps = ir_attr_float(rc->node, "epsilon", 1e-5f);
    a.ys = rc->in[3]->data, a.yz = rc->in[4]->data;
    a.y = Y->data, a.y_type = kc_type(Y->dtype);
    return cuda_fail_if(rc, kc_qln(&a, cuda_stream_of(rc)), "QLayerNormalization");
}

#define DEV_OW (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
static const kiln_tactic t_qf_h0 = {QFGEMM_DEVICE_TACTIC, OP_QFusedGemm, 0, DEV_OW,
                                    qf_supports, qf_workspace, qf_run_h0};
static const kiln_tactic t_qf_h1 = {"cuda_qfusedgemm_lt_h1", OP_QFusedGemm, 0, DEV_OW,
                                    qf_supports, qf_workspace, qf_run_h1};

static const kiln_tactic t_qf_l2_h0 = {"cuda_qfusedgemm_lt_l2_h0", OP_QFusedGemm, 0, DEV_OW,
                                       qf_supports, qf_workspace_l2, qf_run_l2_h0};
static const kiln_tactic t_qln = {"cuda_qlayernorm_rows", OP_QLayerNormalization, 0, DEV_OW,
                                  qln_supports, NULL, qln_run};

const kiln_tactic *const cuda_tactics_qfgemm[] = {&t_qf_h0, &t_qf_h1, &t_qf_l2_h0, &t_qln,
                                                   NULL};
