/* cpu_matmul.c: float32 MatMul / Gemm / FusedGemm tactics on the packed
** GEMM. Batch dims broadcast numpy-style, one GEMM problem per output
** matrix; when B is a single matrix (a weight) and A is not transposed the
** batch folds into M so the whole product is one large GEMM. alpha, beta*C
** (broadcast to the output), FusedGemm's residual R (the output's shape) and
** the activation run in the epilogue. */
#include "cpu_tactics.h"
#include "cpu_gemm.h"

typedef struct mm_info {
    int64_t M, N, K, nbatch;
    int rbo;                          /* batch rank of the output */
    int64_t bdims[KILN_MAX_RANK];
    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK], sc[KILN_MAX_RANK];
    const float *a, *b, *c;
    const float *r;                   /* FusedGemm's residual, or NULL */
    const float *b_pre;               /* B packed at build time, or NULL */
    float *y;
    int64_t a_rs, a_cs, b_rs, b_cs;
    cpu_epi epi;                      /* c offsets relative to a matrix */
} mm_info;

static bool is_f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

static bool mm_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 2 || !is_f32(in[0]) || !is_f32(in[1])) return false;
    if (n->op == OP_MatMul) return in[0]->rank >= 1 && in[1]->rank >= 1;
    if (n->n_in > 2 && in[2] && !is_f32(in[2])) return false;
    if (n->n_in > 3 && in[3] && !is_f32(in[3])) return false;
    if (n->op == OP_Gemm) return in[0]->rank == 2 && in[1]->rank == 2;
    fused_act a;
    return in[0]->rank >= 2 && in[1]->rank >= 2 && fused_act_read(n, &a, NULL, 0);
}

static int mm_prepare(ref_ctx *c, mm_info *mi) {
    const ir_node *n = c->node;
    const kiln_tensor *A = c->in[0], *B = c->in[1];
    const kiln_tensor *C = n->op != OP_MatMul && ref_has(c, 2) ? c->in[2] : NULL;
    memset(mi, 0, sizeof *mi);
    if (A->dtype != KILN_DTYPE_FLOAT32 || B->dtype != KILN_DTYPE_FLOAT32 ||
        (C && C->dtype != KILN_DTYPE_FLOAT32))
        return ref_fail(c, "this tactic handles float32 only");
    bool ta = false, tb = false;
    mi->epi.alpha = 1.0f;
    mi->epi.beta = 1.0f;
    if (n->op != OP_MatMul) {
        ta = ir_attr_int(n, "transA", 0) != 0;
        tb = ir_attr_int(n, "transB", 0) != 0;
        mi->epi.alpha = ir_attr_float(n, "alpha", 1.0f);
        mi->epi.beta = ir_attr_float(n, "beta", 1.0f);
    }
    if (n->op == OP_FusedGemm &&
        !fused_act_read(n, &mi->epi.act, c->err, sizeof c->err))
        return -1;
    int ra = A->rank, rb = B->rank;
    int min_rank = n->op == OP_MatMul ? 1 : 2;
    if (ra < min_rank || rb < min_rank || (n->op == OP_Gemm && (ra != 2 || rb != 2)))
        return ref_fail(c, "inputs have unsupported ranks %d and %d", ra, rb);
    /* A rank-1 A is one row, a rank-1 B one column (MatMul only). */
    int64_t M = ra > 1 ? A->dims[ra - (ta ? 1 : 2)] : 1;
    int64_t K = ra > 1 ? A->dims[ra - (ta ? 2 : 1)] : A->dims[0];
    int64_t kb = rb > 1 ? B->dims[rb - (tb ? 1 : 2)] : B->dims[0];
    int64_t N = rb > 1 ? B->dims[rb - (tb ? 2 : 1)] : 1;
    if (K != kb)
        return ref_fail(c, "inner dims differ: %lld vs %lld", (long long)K,
                        (long long)kb);
    int rba = ra > 2 ? ra - 2 : 0, rbb = rb > 2 ? rb - 2 : 0;
    if (!shape_broadcast(rba, A->dims, rbb, B->dims, &mi->rbo, mi->bdims))
        return ref_fail(c, "batch dims do not broadcast");
    if (mi->rbo + 2 > KILN_MAX_RANK) return ref_fail(c, "output rank too large");
    bcast_strides(rba, A->dims, mi->rbo, mi->sa);
    bcast_strides(rbb, B->dims, mi->rbo, mi->sb);
    mi->nbatch = shape_numel(mi->rbo, mi->bdims);
    /* Output shape: batch, then M and N unless a rank-1 operand drops it. */
    int64_t ydims[KILN_MAX_RANK];
    int ry = mi->rbo;
    memcpy(ydims, mi->bdims, (size_t)ry * sizeof *ydims);
    if (ra > 1) ydims[ry++] = M;
    if (rb > 1) ydims[ry++] = N;
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 &&
          shape_equal(Y->rank, Y->dims, ry, ydims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, ry, ydims))
        return -1;
    mi->M = M;
    mi->N = N;
    mi->K = K;
    mi->a = A->data;
    mi->b = B->data;
    mi->y = c->out[0]->data;
    const kiln_tensor *R = n->op == OP_FusedGemm && ref_has(c, 3) ? c->in[3] : NULL;
    if (R) {
        if (R->dtype != KILN_DTYPE_FLOAT32 || !shape_equal(R->rank, R->dims, ry, ydims))
            return ref_fail(c, "R does not have the output's shape and type");
        mi->r = R->data;
        mi->epi.z_ld = N;
    }
    mi->a_rs = ta ? 1 : K;
    mi->a_cs = ta ? M : 1;
    mi->b_rs = tb ? 1 : N;
    mi->b_cs = tb ? K : 1;
    if (C && mi->epi.beta != 0.0f) {
        /* C broadcasts to [batch..., M, N] (rank-2 form of the output). */
        int64_t full[KILN_MAX_RANK], st[KILN_MAX_RANK];
        memcpy(full, mi->bdims, (size_t)mi->rbo * sizeof *full);
        full[mi->rbo] = M;
        full[mi->rbo + 1] = N;
        int rf = mi->rbo + 2;
        if (C->rank > rf) return ref_fail(c, "C has a higher rank than the output");
        for (int i = 0; i < C->rank; i++) {
            int64_t d = C->dims[i], want = full[rf - C->rank + i];
            if (d != 1 && d != want)
                return ref_fail(c, "C does not broadcast to the output");
        }
        bcast_strides(C->rank, C->dims, rf, st);
        memcpy(mi->sc, st, (size_t)mi->rbo * sizeof *st);
        mi->c = C->data;
        mi->epi.c = C->data;
        mi->epi.c_rs = st[mi->rbo];
        mi->epi.c_cs = st[mi->rbo + 1];
    }
    return 0;
}

/* Offsets (in matrices for A and B, elements for C) of batch idx. */
static void mm_batch(const mm_info *mi, int64_t idx, int64_t *oa, int64_t *ob,
                     int64_t *oc) {
    *oa = *ob = *oc = 0;
    for (int d = mi->rbo - 1; d >= 0; d--) {
        int64_t q = idx % mi->bdims[d];
        idx /= mi->bdims[d];
        *oa += q * mi->sa[d];
        *ob += q * mi->sb[d];
        *oc += q * mi->sc[d];
    }
}

static void mm_get(const void *ctx, int64_t idx, cpu_gemm_prob *p) {
    const mm_info *mi = ctx;
    int64_t oa, ob, oc;
    mm_batch(mi, idx, &oa, &ob, &oc);
    p->a = mi->a + oa * mi->M * mi->K;
    p->a_rs = mi->a_rs;
    p->a_cs = mi->a_cs;
    /* B's data is NULL in an engine that keeps only the packed copy */
    p->b = mi->b ? mi->b + ob * mi->K * mi->N : NULL;
    p->b_rs = mi->b_rs;
    p->b_cs = mi->b_cs;
    p->bpack = NULL;
    p->b_pre = mi->b_pre;             /* only set when B is one matrix */
    p->y = mi->y + idx * mi->M * mi->N;
    p->ldy = mi->N;
    p->epi = mi->epi;
    if (mi->c) p->epi.c = mi->c + oc;
    if (mi->r) p->epi.z = mi->r + idx * mi->M * mi->N;
}

/* The folded form: the whole batch as one [nbatch*M, K] x [K, N] GEMM. */
static void mm_get_folded(const void *ctx, int64_t idx, cpu_gemm_prob *p) {
    (void)idx;
    mm_get(ctx, 0, p);
}

static bool mm_can_fold(const mm_info *mi) {
    if (mi->nbatch <= 1) return false;
    for (int d = 0; d < mi->rbo; d++)
        if (mi->sb[d]) return false;          /* B varies over the batch */
    if (mi->a_cs != 1) return false;          /* transposed A */
    /* A must cover every batch contiguously (no broadcast A). */
    int64_t s = 1;
    for (int d = mi->rbo - 1; d >= 0; d--) {
        if (mi->bdims[d] != 1 && mi->sa[d] != s) return false;
        s *= mi->bdims[d];
    }
    if (!mi->c) return true;
    /* C must be a function of the folded row: broadcast over rows and
    ** batch, or laid out exactly like Y. */
    bool bcast = mi->epi.c_rs == 0;
    bool full = mi->epi.c_rs == mi->N && mi->epi.c_cs == 1;
    s = mi->M * mi->N;
    for (int d = mi->rbo - 1; d >= 0; d--) {
        if (mi->bdims[d] == 1) continue;
        if (mi->sc[d] != 0) bcast = false;
        if (mi->sc[d] != s) full = false;
        s *= mi->bdims[d];
    }
    return bcast || full;
}

/* B as the prepare hook sees it: a constant float32 matrix (rank 2, which
** every batch of the product shares), and its K x N view. */
static bool mm_const_b(const ir_node *n, const kiln_tensor *B, int64_t *K,
                       int64_t *N, int64_t *rs, int64_t *cs) {
    if (!B || B->dtype != KILN_DTYPE_FLOAT32 || B->rank != 2) return false;
    bool tb = n->op != OP_MatMul && ir_attr_int(n, "transB", 0) != 0;
    *K = B->dims[tb ? 1 : 0];
    *N = B->dims[tb ? 0 : 1];
    *rs = tb ? 1 : *N;
    *cs = tb ? *K : 1;
    return *K > 0 && *N > 0;
}

/* Whether every run takes cpu_gemm_run's dot-product path: B^T (transB)
** against few rows of a plain A, the row count known statically. That path
** reads B^T in place, which beats the packed panels on these memory-bound
** shapes; a blob would only add a second copy of B beside the one the path
** needs (a blob makes the constant droppable, and with it the dot path off). */
static bool mm_always_dot(const cpu_gemm_kernel *k, const ir_node *n, const ir_type *A) {
    if (!k->dot || n->op == OP_MatMul || A->rank < 1 ||
        ir_attr_int(n, "transB", 0) == 0 || ir_attr_int(n, "transA", 0) != 0)
        return false;
    int64_t m = 1;
    for (int d = 0; d < A->rank - 1; d++) {
        if (A->dims[d] < 0) return false;
        m *= A->dims[d];
    }
    return m <= CPU_DOT_MAX_M;
}

static kiln_status mm_prepare_blob(const cpu_gemm_kernel *k, const ir_node *n,
                                   const ir_type *const *in,
                                   const kiln_tensor *const *cin, void **blob,
                                   size_t *bytes) {
    int64_t K, N, rs, cs;
    *blob = NULL;
    *bytes = 0;
    if (n->n_in < 2 || !in[0] || in[0]->rank < 1 ||
        !mm_const_b(n, cin[1], &K, &N, &rs, &cs) || mm_always_dot(k, n, in[0]))
        return KILN_OK;
    size_t fl = cpu_gemm_packed_b_floats(k, K, N);
    uint8_t *b = cpu_pack_blob_new(k, CPU_PACK_B, K, N, 1, fl, bytes);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing weights");
    cpu_gemm_prepack_b(k, cin[1]->data, rs, cs, K, N, (float *)(b + CPU_PACK_HDR));
    *blob = b;
    return KILN_OK;
}

static int mm_run(ref_ctx *c, const cpu_gemm_kernel *k) {
    mm_info mi;
    if (mm_prepare(c, &mi)) return -1;
    if (mi.nbatch == 0 || mi.M == 0 || mi.N == 0) return 0;
    if (!c->blob && !mi.b && c->in[1]->nbytes)
        return ref_fail(c, "B is stored only as prepared weights, which this layer "
                        "lacks: rebuild the engine");
    if (c->blob) {
        int64_t K, N, rs, cs;
        if (!mm_const_b(c->node, c->in[1], &K, &N, &rs, &cs) || K != mi.K || N != mi.N)
            return ref_fail(c, "prepared weights do not match B: rebuild the engine");
        if (cpu_pack_blob_get(c, k, CPU_PACK_B, K, N, 1,
                              cpu_gemm_packed_b_floats(k, K, N), &mi.b_pre))
            return -1;
    }
    cpu_gemm_job job = {mi.M, mi.N, mi.K, mi.nbatch, mm_get, &mi};
    if (mm_can_fold(&mi)) {
        job.M = mi.M * mi.nbatch;
        job.nprob = 1;
        job.get = mm_get_folded;
    }
    return cpu_gemm_run(c, k, &job);
}

/* Static sizes for the workspace: the folded M bound covers both forms. */
static size_t mm_ws(const cpu_gemm_kernel *k, const ir_node *n,
                    const ir_type *const *in) {
    const ir_type *A = in[0], *B = in[1];
    bool ta = n->op != OP_MatMul && ir_attr_int(n, "transA", 0) != 0;
    bool tb = n->op != OP_MatMul && ir_attr_int(n, "transB", 0) != 0;
    int ra = A->rank, rb = B->rank;
    int64_t M = -1, N = -1, K = -1;
    if (ra >= 1 && rb >= 1) {
        M = ra > 1 ? A->dims[ra - (ta ? 1 : 2)] : 1;
        K = ra > 1 ? A->dims[ra - (ta ? 2 : 1)] : A->dims[0];
        N = rb > 1 ? B->dims[rb - (tb ? 2 : 1)] : 1;
        for (int d = 0; d < ra - 2 && M >= 0; d++)
            M = A->dims[d] < 0 ? -1 : M * A->dims[d];
    }
    return cpu_gemm_workspace(k, M, N, K);
}

static bool sup_avx512(const ir_node *n, const ir_type *const *in) {
    return cpu_gemm_kernel_avx512.available && mm_supports(n, in);
}
static bool sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_gemm_kernel_avx2.available && mm_supports(n, in);
}
static size_t ws_avx512(const ir_node *n, const ir_type *const *in) {
    return mm_ws(&cpu_gemm_kernel_avx512, n, in);
}
static size_t ws_avx2(const ir_node *n, const ir_type *const *in) {
    return mm_ws(&cpu_gemm_kernel_avx2, n, in);
}
static size_t ws_c(const ir_node *n, const ir_type *const *in) {
    return mm_ws(&cpu_gemm_kernel_c, n, in);
}
static kiln_status prep_avx512(const ir_node *n, const ir_type *const *in,
                               const kiln_tensor *const *cin, void **b, size_t *sz) {
    return mm_prepare_blob(&cpu_gemm_kernel_avx512, n, in, cin, b, sz);
}
static kiln_status prep_avx2(const ir_node *n, const ir_type *const *in,
                             const kiln_tensor *const *cin, void **b, size_t *sz) {
    return mm_prepare_blob(&cpu_gemm_kernel_avx2, n, in, cin, b, sz);
}
static kiln_status prep_c(const ir_node *n, const ir_type *const *in,
                          const kiln_tensor *const *cin, void **b, size_t *sz) {
    return mm_prepare_blob(&cpu_gemm_kernel_c, n, in, cin, b, sz);
}
static int run_avx512(ref_ctx *c) { return mm_run(c, &cpu_gemm_kernel_avx512); }
static int run_avx2(ref_ctx *c) { return mm_run(c, &cpu_gemm_kernel_avx2); }
static int run_c(ref_ctx *c) { return mm_run(c, &cpu_gemm_kernel_c); }

#define ISA_AVX2 (KILN_ISA_AVX2 | KILN_ISA_FMA)
#define ISA_AVX512 (KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)
#define OW TACTIC_OVERWRITES_OUTPUT
/* with its blob a run reads only B's dtype and dims (blob_replaces) */
#define BR (1u << 1)

#define MM_TACTICS(VAR, NAME, OP)                                              \
    const kiln_tactic cpu_t_##VAR##_avx512 = {"f32_" NAME "_8x32_avx512", OP,  \
        ISA_AVX512, OW, sup_avx512, ws_avx512, run_avx512, prep_avx512, BR};   \
    const kiln_tactic cpu_t_##VAR##_avx2 = {"f32_" NAME "_6x16_avx2", OP,      \
        ISA_AVX2, OW, sup_avx2, ws_avx2, run_avx2, prep_avx2, BR};             \
    const kiln_tactic cpu_t_##VAR##_c = {"f32_" NAME "_4x8_c", OP, 0, OW,      \
        mm_supports, ws_c, run_c, prep_c, BR};

MM_TACTICS(matmul, "matmul", OP_MatMul)
MM_TACTICS(gemm, "gemm", OP_Gemm)
MM_TACTICS(fgemm, "fused_gemm", OP_FusedGemm)
