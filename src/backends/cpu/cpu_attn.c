/* cpu_attn.c: fused multi-head attention tactics for OP_Attention as
** passes/attention.c emits it (3-D Q/K/V with q_num_heads/kv_num_heads, or
** 4-D; bool or float mask broadcasting to (B, Hq, Sq, keys); scale;
** is_causal; grouped-query heads; nonpad_kv_seqlen). Per (batch, head,
** block of query rows) the kernel scores a block of keys at a time, masks,
** folds it into an online softmax and adds its value product, so the whole
** score matrix never exists. K is first packed transposed ([Dh][keys] per
** kv head) so the scores are broadcast-FMA tiles. Declined (the reference
** runs): past/present KV, the qk output, softcap, non-float32 data.
** Packed Q/K/V (ops/attn_qkv.h, one projection GEMM's output) is read in
** place: the three operands are column blocks with a row stride of
** Nq + Nk + Nv. */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "cpu_xf.h"
#include "../../ops/attn_qkv.h"

static bool is_f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

static bool attn_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 3 || n->n_out != 1) return false;
    /* packed Q/K/V: the same checks on the column blocks (read in place) */
    int64_t w[3];
    ir_type qkv[3];
    const ir_type *vin[8];
    int pk = attn_qkv_widths(n, w);
    if (pk < 0) return false;
    if (pk) {
        if (n->n_in > 8 || !in[0] || in[1] || in[2] || !attn_qkv_split_type(in[0], w, qkv) ||
            qkv[0].rank != 3)
            return false;
        for (int i = 0; i < n->n_in; i++) vin[i] = i < 3 ? &qkv[i] : in[i];
        in = vin;
    }
    if (!is_f32(in[0]) || !is_f32(in[1]) || !is_f32(in[2])) return false;
    int r = in[0]->rank;
    if ((r != 3 && r != 4) || in[1]->rank != r || in[2]->rank != r) return false;
    if (n->n_in > 3 && in[3] && in[3]->dtype != KILN_DTYPE_FLOAT32 &&
        in[3]->dtype != KILN_DTYPE_BOOL)
        return false;
    if ((n->n_in > 4 && in[4]) || (n->n_in > 5 && in[5])) return false;
    if (n->n_in > 6 && in[6] && in[6]->dtype != KILN_DTYPE_INT64) return false;
    if (n->n_in > 7) return false;
    if (ir_attr_float(n, "softcap", 0.0f) != 0.0f) return false;
    return true;
}

/* Query rows per task: blocks of 32, smaller when that leaves too few
** tasks for the threads. */
static int64_t attn_mq(int64_t bh, int64_t Sq, int threads) {
    int64_t mq = 32;
    while (mq > 4 && bh * ((Sq + mq - 1) / mq) < 4 * (int64_t)threads) mq /= 2;
    int64_t sq4 = (Sq + 3) / 4 * 4;
    return KILN_MAX(4, KILN_MIN(mq, sq4));
}

typedef struct {
    int64_t B, Hkv, T, Dh, Tp;
    const float *k;
    int64_t k_bs, k_hs, k_rs;
    float *kt;
} pack_args;

static void pack_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const pack_args *p = arg;
    int64_t b = t / p->Hkv, h = t % p->Hkv;
    const float *k = p->k + b * p->k_bs + h * p->k_hs;
    float *dst = p->kt + t * p->Dh * p->Tp;
    for (int64_t s0 = 0; s0 < p->Tp; s0 += 16)
        for (int64_t d = 0; d < p->Dh; d++)
            for (int64_t s = s0; s < s0 + 16; s++)
                dst[d * p->Tp + s] = s < p->T ? k[s * p->k_rs + d] : 0.0f;
}

typedef struct {
    const cpu_xf_kernels *k;
    const cpu_attn_args *a;
} run_args;

static void attn_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const run_args *r = arg;
    r->k->attn_task(r->a, t, scratch);
}

static int attn_run(ref_ctx *c, const cpu_xf_kernels *K) {
    const ir_node *n = c->node;
    const kiln_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
    const kiln_tensor *mask = ref_has(c, 3) ? c->in[3] : NULL;
    const kiln_tensor *npad = ref_has(c, 6) ? c->in[6] : NULL;
    if (ref_has(c, 4) || ref_has(c, 5) || c->n_out != 1)
        return ref_fail(c, "this tactic has no past/present key-value support");
    /* packed Q/K/V (ops/attn_qkv.h): views into input 0, rows ld apart */
    int64_t w[3], ld = 0;
    kiln_tensor pv[3];
    int pk = attn_qkv_widths(n, w);
    if (pk < 0) return ref_fail(c, "Attention: malformed %s", ATTN_QKV_ATTR);
    if (pk) {
        if (ref_has(c, 1) || ref_has(c, 2) || !ref_has(c, 0) ||
            !attn_qkv_split_tensor(c->in[0], w, pv, &ld))
            return ref_fail(c, "Attention: packed Q/K/V input is not 3-D with last dim %lld",
                            (long long)(w[0] + w[1] + w[2]));
        q = &pv[0], k = &pv[1], v = &pv[2];
    }
    if (q->dtype != KILN_DTYPE_FLOAT32 || k->dtype != KILN_DTYPE_FLOAT32 ||
        v->dtype != KILN_DTYPE_FLOAT32)
        return ref_fail(c, "this tactic handles float32 only");
    if (q->rank != k->rank || q->rank != v->rank || (q->rank != 3 && q->rank != 4))
        return ref_fail(c, "Attention Q, K, V must all be 3-D or all 4-D");
    cpu_attn_args A;
    memset(&A, 0, sizeof A);
    bool is3 = q->rank == 3;
    A.B = q->dims[0];
    if (k->dims[0] != A.B || v->dims[0] != A.B)
        return ref_fail(c, "Attention batch sizes differ");
    int64_t k_bs, k_hs, k_rs;
    if (is3) {
        A.Hq = ir_attr_int(n, "q_num_heads", 0);
        A.Hkv = ir_attr_int(n, "kv_num_heads", 0);
        if (A.Hq <= 0 || A.Hkv <= 0)
            return ref_fail(c, "Attention 3-D inputs need q_num_heads and kv_num_heads");
        if (q->dims[2] % A.Hq || k->dims[2] % A.Hkv || v->dims[2] % A.Hkv)
            return ref_fail(c, "Attention hidden sizes are not multiples of the head counts");
        A.Sq = q->dims[1];
        A.T = k->dims[1];
        A.Dh = q->dims[2] / A.Hq;
        A.Dv = v->dims[2] / A.Hkv;
        if (k->dims[2] / A.Hkv != A.Dh || v->dims[1] != A.T)
            return ref_fail(c, "Attention K/V shapes do not match Q");
        A.q_rs = ld ? ld : A.Hq * A.Dh;
        k_rs = ld ? ld : A.Hkv * A.Dh;
        A.v_rs = ld ? ld : A.Hkv * A.Dv;
        A.q_bs = A.Sq * A.q_rs, A.q_hs = A.Dh;
        k_bs = A.T * k_rs, k_hs = A.Dh;
        A.v_bs = A.T * A.v_rs, A.v_hs = A.Dv;
        A.y_bs = A.Sq * A.Hq * A.Dv, A.y_hs = A.Dv, A.y_rs = A.Hq * A.Dv;
    } else {
        A.Hq = q->dims[1];
        A.Hkv = k->dims[1];
        A.Sq = q->dims[2];
        A.T = k->dims[2];
        A.Dh = q->dims[3];
        A.Dv = v->dims[3];
        if (k->dims[3] != A.Dh || v->dims[1] != A.Hkv || v->dims[2] != A.T)
            return ref_fail(c, "Attention K/V shapes do not match Q");
        A.q_bs = A.Hq * A.Sq * A.Dh, A.q_hs = A.Sq * A.Dh, A.q_rs = A.Dh;
        k_bs = A.Hkv * A.T * A.Dh, k_hs = A.T * A.Dh, k_rs = A.Dh;
        A.v_bs = A.Hkv * A.T * A.Dv, A.v_hs = A.T * A.Dv, A.v_rs = A.Dv;
        A.y_bs = A.Hq * A.Sq * A.Dv, A.y_hs = A.Sq * A.Dv, A.y_rs = A.Dv;
    }
    if (A.Hkv <= 0 || A.Hq % A.Hkv)
        return ref_fail(c, "Attention q heads must be a multiple of kv heads");
    const ir_attr *sa = ir_attr_find(n, "scale");
    A.scale = sa ? sa->f : 1.0f / sqrtf((float)A.Dh);
    A.causal = ir_attr_int(n, "is_causal", 0) != 0;
    if (ir_attr_float(n, "softcap", 0.0f) != 0.0f)
        return ref_fail(c, "this tactic has no softcap");
    if (mask) {
        if (mask->rank < 1 || mask->rank > 4)
            return ref_fail(c, "Attention attn_mask must have rank 1..4");
        if (mask->dtype != KILN_DTYPE_BOOL && mask->dtype != KILN_DTYPE_FLOAT32)
            return ref_fail(c, "this tactic takes bool or float32 masks");
        A.mlast = mask->dims[mask->rank - 1];
        if (A.mlast > A.T)
            return ref_fail(c, "Attention attn_mask is longer than the total sequence");
        int64_t want[4] = {A.B, A.Hq, A.Sq, A.mlast}, st[4];
        for (int i = 0; i < mask->rank; i++) {
            int64_t md = mask->dims[i];
            if (md != 1 && md != want[4 - mask->rank + i])
                return ref_fail(c, "Attention attn_mask does not broadcast");
        }
        bcast_strides(mask->rank, mask->dims, 4, st);
        A.mask = mask->data;
        A.mask_bool = mask->dtype == KILN_DTYPE_BOOL;
        A.m_bs = st[0], A.m_hs = st[1], A.m_rs = st[2], A.m_cs = st[3];
    }
    if (npad) {
        if (npad->rank != 1 || npad->dims[0] != A.B || npad->dtype != KILN_DTYPE_INT64)
            return ref_fail(c, "Attention nonpad_kv_seqlen must be int64 of shape (batch_size)");
        A.nonpad = npad->data;
    }
    int64_t ydims[4];
    int yr = q->rank;
    if (is3) ydims[0] = A.B, ydims[1] = A.Sq, ydims[2] = A.Hq * A.Dv;
    else ydims[0] = A.B, ydims[1] = A.Hq, ydims[2] = A.Sq, ydims[3] = A.Dv;
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 && shape_equal(Y->rank, Y->dims, yr, ydims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, yr, ydims))
        return -1;
    int64_t numel = A.B * A.Hq * A.Sq * A.Dv;
    if (numel == 0) return 0;
    if (A.T == 0) { /* no keys: an empty weighted sum, as the reference */
        memset(c->out[0]->data, 0, (size_t)numel * sizeof(float));
        return 0;
    }
    A.q = q->data;
    A.v = v->data;
    A.y = c->out[0]->data;
    A.Tp = (A.T + CPU_ATTN_NK - 1) / CPU_ATTN_NK * CPU_ATTN_NK;
    if (A.Tp == 0) A.Tp = CPU_ATTN_NK;
    int threads = cpu_threads_for(4.0 * (double)(A.B * A.Hq) * (double)A.Sq *
                                  (double)A.T * (double)(A.Dh + A.Dv) / 2);
    A.mq = attn_mq(A.B * A.Hq, A.Sq, threads);
    A.nqb = (A.Sq + A.mq - 1) / A.mq;
    /* workspace: K^T panels, then the caller's task scratch */
    size_t kt_floats = (size_t)(A.B * A.Hkv * A.Dh * A.Tp);
    size_t task_bytes = cpu_attn_scratch_floats(A.mq, A.Dv) * sizeof(float) + 64;
    size_t need = kt_floats * sizeof(float) + 64 + task_bytes;
    void *buf = c->ws, *own = NULL;
    if (!buf || c->ws_size < need) {
        own = kiln_aligned_alloc(need);
        if (!own) return ref_fail(c, "out of memory");
        buf = own;
    }
    float *kt = cpu_align64(buf);
    void *caller = (char *)kt + kt_floats * sizeof(float);
    pack_args P = {A.B, A.Hkv, A.T, A.Dh, A.Tp, k->data, k_bs, k_hs, k_rs, kt};
    cpu_parallel_for(A.B * A.Hkv, KILN_MIN(threads, (int)KILN_MIN(A.B * A.Hkv, 256)), 0,
                     NULL, pack_task, &P);
    A.kt = kt;
    run_args R = {K, &A};
    cpu_parallel_for(A.B * A.Hq * A.nqb, threads, task_bytes, caller, attn_task, &R);
    kiln_aligned_free(own);
    return 0;
}

static size_t attn_workspace(const ir_node *n, const ir_type *const *in) {
    const ir_type *q = in[0], *k = in[1], *v = in[2];
    int64_t w[3];
    ir_type qkv[3];
    if (attn_qkv_widths(n, w) > 0) {
        if (!q || !attn_qkv_split_type(q, w, qkv) || qkv[0].rank != 3) return 0;
        q = &qkv[0], k = &qkv[1], v = &qkv[2];
    }
    for (int i = 0; i < q->rank; i++)
        if (q->dims[i] < 0 || k->dims[i] < 0 || v->dims[i] < 0) return 0;
    int64_t B = q->dims[0], Hkv, T, Dh, Dv;
    if (q->rank == 3) {
        int64_t Hq = ir_attr_int(n, "q_num_heads", 1);
        Hkv = ir_attr_int(n, "kv_num_heads", 1);
        if (Hq <= 0 || Hkv <= 0) return 0;
        T = k->dims[1], Dh = q->dims[2] / Hq, Dv = v->dims[2] / Hkv;
    } else {
        Hkv = k->dims[1], T = k->dims[2], Dh = q->dims[3], Dv = v->dims[3];
    }
    int64_t Tp = KILN_MAX((T + CPU_ATTN_NK - 1) / CPU_ATTN_NK * CPU_ATTN_NK, CPU_ATTN_NK);
    /* K^T panels, then the caller's task scratch at the largest block
    ** (32 rows); a run that needs more allocates it */
    return (size_t)(B * Hkv * Dh * Tp) * sizeof(float) + 128 +
           cpu_attn_scratch_floats(32, Dv) * sizeof(float);
}

#define ATTN_TACTIC(SUF, KERN, ISA, TILE)                                      \
    static int attn_run_##SUF(ref_ctx *c) {                                    \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return attn_run(c, &(KERN));                                           \
    }                                                                          \
    static bool attn_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && attn_supports(n, in);                       \
    }                                                                          \
    const kiln_tactic cpu_t_attn_##SUF = {                                     \
        "f32_attention_online_" TILE "_" #SUF, OP_Attention, ISA,              \
        TACTIC_OVERWRITES_OUTPUT, attn_supports_##SUF, attn_workspace, attn_run_##SUF};

ATTN_TACTIC(avx512, cpu_xf_avx512, KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA, "4x64")
ATTN_TACTIC(avx2, cpu_xf_avx2, KILN_ISA_AVX2 | KILN_ISA_FMA, "4x16")
ATTN_TACTIC(c, cpu_xf_c, 0, "4x4")
