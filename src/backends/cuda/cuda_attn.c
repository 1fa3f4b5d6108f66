/* cuda_attn.c: Kiln's fused attention layer (OP_Attention as the attention
** pass emits it: Q, K, V 3-D with q_num_heads/kv_num_heads or 4-D,
** optional mask (bool, or float added), scale, is_causal; softcap and
** nonpad_kv_seqlen too) on the GPU, two tactics the builder times:
**  - cuda_attention_flash (FP16/BF16, head dims 32/64/128 with Dh == Dv):
**    one kernel (kernels/attn_flash.cu) that keeps the scores in registers
**    (tensor cores, online softmax in FP32), no workspace; 64 query rows a
**    block (v2), or 128 on large grids (v3, flash_v3);
**  - cuda_attention_lt_softmax (any float type, any head dim), three steps:
**      S = scale * Q K^T   cuBLASLt, strided batches, float32 scores
**      P = softmax(S + masks) per row, float32 math (kernels/attn_softmax.cu)
**      Y = P V             cuBLASLt, output written in Q's layout
**    The score and probability buffers come from the workspace
**    (B*Hq*Sq*T floats, plus the probabilities in the input type for
**    FP16/BF16).
** Heads are read in place in either layout (3-D: a head is a column block
** of the hidden dim, leading dim H*D). Grouped-query heads (Hq a multiple of
** Hkv) map q head h to kv head h / (Hq / Hkv).
** The lt_softmax tactic also takes the KV cache: past_key/past_value
** (B, Hkv, P, D) with the present_key/present_value outputs (past ++
** current in (B, Hkv, P+S, D), written by strided copies, then read as K
** and V; causal masking offset by P), and the qk_matmul_output (output 3,
** written by the softmax kernel at the stage qk_matmul_output_mode names:
** 0 scaled Q K^T, 1 after softcap, 2 after the masks, 3 probabilities).
** Not handled by the flash tactic: any of those.
** Both tactics take packed Q/K/V (ops/attn_qkv.h: the three projections
** merged into one GEMM): the operands are read in place as column blocks
** of that output, rows Nq+Nk+Nv apart (the flash kernel picks its 16-byte
** v2 path only when the block offsets and row stride allow it).
** Also RotaryEmbedding (kernels/rotary.cu), 3-D or 4-D, interleaved or
** not, partial rotary dims, with or without position_ids. */
#include "cuda_lt.h"
#include "kernels/attn_kernels.h"
#include "../../ops/attn_qkv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool float_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

static int kc_dtype(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 ? KC_F16 : t == KILN_DTYPE_BFLOAT16 ? KC_BF16 : KC_F32;
}

static cudaDataType_t cuda_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16    ? CUDA_R_16F
           : t == KILN_DTYPE_BFLOAT16 ? CUDA_R_16BF
                                      : CUDA_R_32F;
}

static size_t es_of(kiln_dtype t) { return t == KILN_DTYPE_FLOAT32 ? 4 : 2; }

typedef struct attn_shape {
    int64_t B, Hq, Hkv, Sq, T, Dh, Dv;
    bool is3;  /* Q and Y in the 3-D layout */
    bool kv3;  /* K and V in the 3-D layout (false when read from present) */
    int64_t P; /* past length (the present outputs hold T = P + current) */
    int64_t ldq, ldk, ldv; /* 3-D row strides of Q, K, V (packed: Nq+Nk+Nv) */
} attn_shape;

/* Dims of Q, K, V (types or tensors alike: rank + dims). 0, or -1 with a
** message in err. */
static int attn_shape_of(const ir_node *n, int rank, const int64_t *q, const int64_t *k,
                         const int64_t *v, attn_shape *d, char *err, size_t nerr) {
    memset(d, 0, sizeof *d);
    d->is3 = d->kv3 = rank == 3;
    d->B = q[0];
    if (k[0] != d->B || v[0] != d->B) {
        snprintf(err, nerr, "Attention batch sizes differ");
        return -1;
    }
    if (d->is3) {
        d->Hq = ir_attr_int(n, "q_num_heads", 0);
        d->Hkv = ir_attr_int(n, "kv_num_heads", 0);
        if (d->Hq <= 0 || d->Hkv <= 0 || q[2] % d->Hq || k[2] % d->Hkv || v[2] % d->Hkv) {
            snprintf(err, nerr, "Attention 3-D head counts do not divide the hidden sizes");
            return -1;
        }
        d->Sq = q[1];
        d->T = k[1];
        d->Dh = q[2] / d->Hq;
        d->Dv = v[2] / d->Hkv;
        if (k[2] / d->Hkv != d->Dh || v[1] != d->T) {
            snprintf(err, nerr, "Attention K/V shapes do not match Q");
            return -1;
        }
        d->ldq = d->Hq * d->Dh, d->ldk = d->Hkv * d->Dh, d->ldv = d->Hkv * d->Dv;
    } else {
        d->Hq = q[1];
        d->Hkv = k[1];
        d->Sq = q[2];
        d->T = k[2];
        d->Dh = q[3];
        d->Dv = v[3];
        if (k[3] != d->Dh || v[1] != d->Hkv || v[2] != d->T) {
            snprintf(err, nerr, "Attention K/V shapes do not match Q");
            return -1;
        }
        d->ldq = d->Dh, d->ldk = d->Dh, d->ldv = d->Dv;
    }
    if (d->Hkv <= 0 || d->Hq % d->Hkv) {
        snprintf(err, nerr, "Attention q heads must be a multiple of kv heads");
        return -1;
    }
    return 0;
}

static bool has_out(const ir_node *n, int i) { return i < n->n_out && n->out[i]; }

/* Packed Q/K/V (ops/attn_qkv.h, one projection GEMM's output [B, S,
** Nq+Nk+Nv] as input 0): the input types with the three column blocks as
** Q, K and V (vin holds them), so the checks below read one form. in as it
** is when not packed; NULL when packed in a form no tactic here takes
** (malformed, not 3-D, a KV cache or extra outputs). */
static const ir_type *const *attn_in_types(const ir_node *n, const ir_type *const *in,
                                           ir_type qkv[3], const ir_type *vin[8]) {
    int64_t w[3];
    int pk = attn_qkv_widths(n, w);
    if (pk == 0) return in;
    if (pk < 0 || n->n_in < 3 || n->n_in > 8 || n->n_out != 1 || !in[0] || in[1] || in[2] ||
        !attn_qkv_split_type(in[0], w, qkv) || qkv[0].rank != 3)
        return NULL;
    for (int i = 0; i < n->n_in; i++) vin[i] = i < 3 ? &qkv[i] : in[i];
    return vin;
}

/* The run's Q, K, V: the inputs, or views into the packed input 0 (pv holds
** them) whose rows are *ld elements apart (0: not packed). 0, or -1 with the
** message set. */
static int attn_in_tensors(ref_ctx *rc, kiln_tensor pv[3], const kiln_tensor **q,
                           const kiln_tensor **k, const kiln_tensor **v, int64_t *ld) {
    int64_t w[3];
    int pk = attn_qkv_widths(rc->node, w);
    *ld = 0;
    *q = rc->in[0], *k = rc->in[1], *v = rc->in[2];
    if (pk == 0) return 0;
    if (pk < 0) return ref_fail(rc, "Attention: malformed %s", ATTN_QKV_ATTR);
    if (ref_has(rc, 1) || ref_has(rc, 2) || ref_has(rc, 4) || ref_has(rc, 5) ||
        !ref_has(rc, 0) || !attn_qkv_split_tensor(rc->in[0], w, pv, ld))
        return ref_fail(rc, "Attention: packed Q/K/V must be one 3-D input of last dim %lld, "
                        "without a KV cache", (long long)(w[0] + w[1] + w[2]));
    *q = &pv[0], *k = &pv[1], *v = &pv[2];
    return 0;
}

static void attn_set_ld(attn_shape *d, int64_t ld) {
    if (ld && d->is3) d->ldq = d->ldk = d->ldv = ld;
}

/* What both tactics take: Q, K, V of one float type and rank, the mask and
** nonpad_kv_seqlen forms the kernels read. ext (the lt_softmax tactic):
** also past_key/past_value with both present outputs, and the qk output;
** else no KV cache and one output. */
static bool attn_common_ok(const ir_node *n, const ir_type *const *in, bool ext) {
    if (n->n_in < 3 || n->n_out < 1 || !n->out[0] || !in[0] || !in[1] || !in[2]) return false;
    if (ext ? n->n_out > 4 : n->n_out != 1) return false;
    kiln_dtype dt = in[0]->dtype;
    if (!float_type(dt) || in[1]->dtype != dt || in[2]->dtype != dt) return false;
    int r = in[0]->rank;
    if ((r != 3 && r != 4) || in[1]->rank != r || in[2]->rank != r) return false;
    if (r == 3 && (ir_attr_int(n, "q_num_heads", 0) <= 0 || ir_attr_int(n, "kv_num_heads", 0) <= 0))
        return false;
    const ir_type *pk = n->n_in > 4 ? in[4] : NULL, *pv = n->n_in > 5 ? in[5] : NULL;
    if (!ext && (pk || pv)) return false; /* KV cache */
    if (ext) {
        if (!pk != !pv) return false;
        /* present outputs come as a pair, and a past needs them (they are
        ** where past ++ current is assembled) */
        if (has_out(n, 1) != has_out(n, 2) || (pk && !has_out(n, 1))) return false;
        if (pk && (pk->rank != 4 || pv->rank != 4 || pk->dtype != dt || pv->dtype != dt))
            return false;
    }
    if (n->n_in > 3 && in[3]) {
        const ir_type *m = in[3];
        if (m->rank < 1 || m->rank > 4) return false;
        if (m->dtype != KILN_DTYPE_BOOL && !float_type(m->dtype)) return false;
    }
    if (n->n_in > 6 && in[6] && (in[6]->dtype != KILN_DTYPE_INT64 || in[6]->rank != 1))
        return false;
    return true;
}

static bool attn_supports(const ir_node *n, const ir_type *const *in) {
    ir_type qkv[3];
    const ir_type *vin[8];
    in = attn_in_types(n, in, qkv, vin);
    return in && cuda_libs_get()->ltMatmul != NULL && attn_common_ok(n, in, true);
}

static size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }

/* Score and probability buffers; 0 when a size is not known yet. */
static size_t attn_ws_bytes(const attn_shape *d, kiln_dtype dt) {
    int64_t ns;
    if (__builtin_mul_overflow(d->B * d->Hq, d->Sq, &ns) || __builtin_mul_overflow(ns, d->T, &ns) ||
        ns < 0 || (uint64_t)ns > ((uint64_t)1 << 40))
        return SIZE_MAX;
    size_t b = align256((size_t)ns * 4);
    if (dt != KILN_DTYPE_FLOAT32) b += align256((size_t)ns * es_of(dt));
    return b;
}

static size_t attn_workspace(const ir_node *n, const ir_type *const *in) {
    ir_type qkv[3];
    const ir_type *vin[8];
    if (!(in = attn_in_types(n, in, qkv, vin))) return 0;
    const ir_type *q = in[0], *k = in[1], *v = in[2];
    for (int i = 0; i < q->rank; i++)
        if (q->dims[i] < 0 || k->dims[i] < 0 || v->dims[i] < 0) return 0;
    attn_shape d;
    if (attn_shape_of(n, q->rank, q->dims, k->dims, v->dims, &d, (char[8]){0}, 8))
        return SIZE_MAX;
    if (n->n_in > 4 && in[4]) {
        if (in[4]->rank != 4 || in[4]->dims[2] < 0) return in[4]->rank == 4 ? 0 : SIZE_MAX;
        d.T += in[4]->dims[2];
    }
    return attn_ws_bytes(&d, q->dtype);
}

/* Element offsets of head (b, h) in each operand. */
typedef struct attn_offs {
    int64_t q, k, v, s, y;
} attn_offs;

static attn_offs offs_of(const attn_shape *d, int64_t b, int64_t h) {
    attn_offs o;
    int64_t kh = h / (d->Hq / d->Hkv);
    if (d->is3) {
        o.q = b * d->Sq * d->ldq + h * d->Dh;
        o.y = b * d->Sq * d->Hq * d->Dv + h * d->Dv;
    } else {
        o.q = (b * d->Hq + h) * d->Sq * d->Dh;
        o.y = (b * d->Hq + h) * d->Sq * d->Dv;
    }
    if (d->kv3) {
        o.k = b * d->T * d->ldk + kh * d->Dh;
        o.v = b * d->T * d->ldv + kh * d->Dv;
    } else {
        o.k = (b * d->Hkv + kh) * d->T * d->Dh;
        o.v = (b * d->Hkv + kh) * d->T * d->Dv;
    }
    o.s = (b * d->Hq + h) * d->Sq * d->T;
    return o;
}

static attn_offs offs_diff(attn_offs a, attn_offs b) {
    attn_offs o = {a.q - b.q, a.k - b.k, a.v - b.v, a.s - b.s, a.y - b.y};
    return o;
}

/* Where loop l of a batching mode starts (see attn_run). */
static attn_offs loop_offs(const attn_shape *d, int mode, int64_t l) {
    return mode == 1 ? offs_of(d, l, 0) : mode == 2 ? offs_of(d, 0, l) : offs_of(d, 0, 0);
}

/* Masks, causal, softcap and nonpad_kv_seqlen of a run into *sm (both
** tactics apply them the same way). 0, or -1 with the message set. */
static int attn_mask_args(ref_ctx *rc, const attn_shape *dp, kc_attn_softmax_args *sm) {
    const ir_node *n = rc->node;
    const attn_shape d = *dp;
    const kiln_tensor *mask = ref_has(rc, 3) ? rc->in[3] : NULL;
    const kiln_tensor *npad = ref_has(rc, 6) ? rc->in[6] : NULL;
    memset(sm, 0, sizeof *sm);
    sm->b = d.B, sm->hq = d.Hq, sm->sq = d.Sq, sm->t = d.T;
    sm->past = d.P;
    sm->softcap = ir_attr_float(n, "softcap", 0.0f);
    sm->causal = ir_attr_int(n, "is_causal", 0) != 0;
    sm->dead_zero = ir_attr_int(n, "kiln_masked_rows_zero", 0) != 0;
    if (mask) {
        if (mask->rank < 1 || mask->rank > 4)
            return ref_fail(rc, "Attention attn_mask must have rank 1..4");
        if (mask->dtype != KILN_DTYPE_BOOL && !float_type(mask->dtype))
            return ref_fail(rc, "Attention attn_mask must be bool or float");
        sm->mlast = mask->dims[mask->rank - 1];
        if (sm->mlast > d.T)
            return ref_fail(rc, "Attention attn_mask is longer than the total sequence");
        int64_t want[4] = {d.B, d.Hq, d.Sq, sm->mlast};
        for (int i = 0; i < mask->rank; i++) {
            int64_t md = mask->dims[i];
            if (md != 1 && md != want[4 - mask->rank + i])
                return ref_fail(rc, "Attention attn_mask does not broadcast");
        }
        bcast_strides(mask->rank, mask->dims, 4, sm->mst);
        sm->mask = mask->data;
        sm->mask_kind = mask->dtype == KILN_DTYPE_BOOL ? KC_MASK_BOOL : KC_MASK_FLOAT;
        sm->mask_dtype = kc_dtype(mask->dtype);
    }
    if (npad) {
        if (npad->rank != 1 || npad->dims[0] != d.B || npad->dtype != KILN_DTYPE_INT64)
            return ref_fail(rc, "Attention nonpad_kv_seqlen must be int64 of shape (batch_size)");
        sm->valid = npad->data;
    }
    return 0;
}

static int attn_run(ref_ctx *rc) {
    const ir_node *n = rc->node;
    cuda_plans_trim(cuda_exec_of(rc));
    const kiln_tensor *Q, *K, *V;
    kiln_tensor pv3[3];
    int64_t ld;
    if (attn_in_tensors(rc, pv3, &Q, &K, &V, &ld)) return -1;
    kiln_tensor *Y = rc->out[0];
    kiln_dtype dt = Q->dtype;
    if (!float_type(dt) || K->dtype != dt || V->dtype != dt || Y->dtype != dt)
        return ref_fail(rc, "Attention Q, K, V and Y must share one float type");
    int r = Q->rank;
    if ((r != 3 && r != 4) || K->rank != r || V->rank != r)
        return ref_fail(rc, "Attention Q, K, V must all be 3-D or all 4-D");
    attn_shape d;
    if (attn_shape_of(n, r, Q->dims, K->dims, V->dims, &d, rc->err, sizeof rc->err)) return -1;
    attn_set_ld(&d, ld);
    if (tensor_numel(Y) != d.B * d.Hq * d.Sq * d.Dv)
        return ref_fail(rc, "Attention output Y has the wrong size");
    cudaStream_t s = cuda_stream_of(rc);
    size_t es = es_of(dt);
    /* KV cache: present = past ++ current in (B, Hkv, T, D), then read as
    ** K and V */
    kiln_tensor *PK = rc->n_out > 1 ? rc->out[1] : NULL, *PV = rc->n_out > 2 ? rc->out[2] : NULL;
    if (ref_has(rc, 4) != ref_has(rc, 5) || !PK != !PV || (ref_has(rc, 4) && !PK))
        return ref_fail(rc, "Attention past_key/past_value need both present outputs");
    if (PK && ld) return ref_fail(rc, "packed Attention has no present_key/present_value");
    const void *kdata = K->data, *vdata = V->data;
    if (PK) {
        int64_t Skv = d.T;
        if (ref_has(rc, 4)) {
            const kiln_tensor *pk = rc->in[4], *pv = rc->in[5];
            if (pk->rank != 4 || pv->rank != 4 || pk->dtype != dt || pv->dtype != dt ||
                pk->dims[0] != d.B || pk->dims[1] != d.Hkv || pk->dims[3] != d.Dh ||
                pv->dims[0] != d.B || pv->dims[1] != d.Hkv || pv->dims[2] != pk->dims[2] ||
                pv->dims[3] != d.Dv)
                return ref_fail(rc, "Attention past_key/past_value shapes do not match K/V");
            d.P = pk->dims[2];
        }
        d.T = d.P + Skv;
        if (PK->dtype != dt || PV->dtype != dt ||
            tensor_numel(PK) != d.B * d.Hkv * d.T * d.Dh ||
            tensor_numel(PV) != d.B * d.Hkv * d.T * d.Dv)
            return ref_fail(rc, "Attention present_key/present_value have the wrong size");
        for (int w = 0; w < 2; w++) {
            const kiln_tensor *cur = w ? V : K;
            const kiln_tensor *past = ref_has(rc, 4 + w) ? rc->in[4 + w] : NULL;
            kiln_tensor *pres = w ? PV : PK;
            size_t D = (size_t)(w ? d.Dv : d.Dh), rows = (size_t)(d.B * d.Hkv);
            size_t dp = (size_t)d.T * D * es; /* one (b, h) block of present */
            char *dst = pres->data;
            const char *src = cur->data;
            cudaError_t e = cudaSuccess;
            if (D == 0 || rows == 0) continue;
            if (d.P > 0)
                e = cudaMemcpy2DAsync(dst, dp, past->data, (size_t)d.P * D * es,
                                      (size_t)d.P * D * es, rows, cudaMemcpyDeviceToDevice, s);
            if (e == cudaSuccess && Skv > 0 && !d.kv3)
                e = cudaMemcpy2DAsync(dst + (size_t)d.P * D * es, dp, src, (size_t)Skv * D * es,
                                      (size_t)Skv * D * es, rows, cudaMemcpyDeviceToDevice, s);
            /* 3-D current: rows of head h are D wide, Hkv * D apart */
            for (int64_t b = 0; e == cudaSuccess && Skv > 0 && d.kv3 && b < d.B; b++)
                for (int64_t h = 0; e == cudaSuccess && h < d.Hkv; h++)
                    e = cudaMemcpy2DAsync(dst + ((size_t)(b * d.Hkv + h) * (size_t)d.T +
                                                 (size_t)d.P) * D * es,
                                          D * es,
                                          src + ((size_t)(b * Skv * d.Hkv + h) * D) * es,
                                          (size_t)d.Hkv * D * es, D * es, (size_t)Skv,
                                          cudaMemcpyDeviceToDevice, s);
            if (cuda_fail_if(rc, e, w ? "present_value" : "present_key")) return -1;
        }
        kdata = PK->data, vdata = PV->data;
        d.kv3 = false;
    }
    /* qk_matmul_output: B x Hq x Sq x T in Y's type */
    kiln_tensor *QK = rc->n_out > 3 ? rc->out[3] : NULL;
    if (QK && (QK->dtype != dt || tensor_numel(QK) != d.B * d.Hq * d.Sq * d.T))
        return ref_fail(rc, "Attention qk_matmul_output has the wrong size");
    int64_t qk_mode = ir_attr_int(n, "qk_matmul_output_mode", 0);
    if (QK && (qk_mode < 0 || qk_mode > 3))
        return ref_fail(rc, "Attention qk_matmul_output_mode %lld is not 0..3", (long long)qk_mode);
    const ir_attr *sa = ir_attr_find(n, "scale");
    float scale = sa ? sa->f : 1.0f / sqrtf((float)d.Dh);
    kc_attn_softmax_args sm;
    if (attn_mask_args(rc, &d, &sm)) return -1;
    if (QK) {
        sm.qk = QK->data;
        sm.qk_mode = (int)qk_mode;
    }
    int64_t rows = d.B * d.Hq * d.Sq;
    if (rows == 0 || (d.Dv == 0 && !QK)) return 0;
    if (d.T == 0) /* softmax over nothing, times nothing: zeros */
        return cuda_fail_if(rc, cudaMemsetAsync(Y->data, 0, (size_t)tensor_numel(Y) * es, s),
                            "cudaMemsetAsync");
    size_t need = attn_ws_bytes(&d, dt);
    if (need == SIZE_MAX || need > rc->ws_size || !rc->ws)
        return ref_fail(rc, "Attention needs %zu bytes of workspace, the layer has %zu", need,
                        rc->ws_size);
    int64_t ns = rows * d.T;
    float *S = rc->ws;
    void *P = dt == KILN_DTYPE_FLOAT32 ? (void *)S : (char *)rc->ws + align256((size_t)ns * 4);

    /* batching: one strided batch over (b, h) when heads are uniform in
    ** memory, else a loop over b (batch h) or over h (batch b) */
    int reps = (int)(d.Hq / d.Hkv);
    int64_t count, loops;
    attn_offs stride;
    int mode; /* 0: one call; 1: loop over b (batch h); 2: loop over h (batch b) */
    if (!d.is3 && !d.kv3 && reps == 1) {
        mode = 0, count = d.B * d.Hq, loops = 1;
        stride = offs_diff(offs_of(&d, 0, 1), offs_of(&d, 0, 0));
    } else if (reps == 1 && d.B <= d.Hq) {
        mode = 1, count = d.Hq, loops = d.B;
        stride = offs_diff(offs_of(&d, 0, 1), offs_of(&d, 0, 0));
    } else {
        mode = 2, count = d.B, loops = d.Hq;
        stride = offs_diff(offs_of(&d, 1, 0), offs_of(&d, 0, 0));
    }
    if (count == 1) memset(&stride, 0, sizeof stride);
    /* Offsets of loop l are not linear in l for grouped heads (kv head
    ** h / reps): each loop computes its own, and the pointer alignment
    ** cuBLASLt may assume is over all of them (OR of their byte offsets). */
    attn_offs bits;
    memset(&bits, 0, sizeof bits);
    for (int64_t l = 0; l < loops; l++) {
        attn_offs o = loop_offs(&d, mode, l);
        bits.q |= o.q, bits.k |= o.k, bits.v |= o.v, bits.s |= o.s, bits.y |= o.y;
    }
    int64_t ldq = d.is3 ? d.ldq : d.Dh, ldk = d.kv3 ? d.ldk : d.Dh;
    int64_t ldv = d.kv3 ? d.ldv : d.Dv, ldy = d.is3 ? d.Hq * d.Dv : d.Dv;
    int64_t E = (int64_t)es;
    cublasComputeType_t ct = dt == KILN_DTYPE_FLOAT32 && ir_attr_int(n, "kiln_tf32", 0)
                                 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                 : CUBLAS_COMPUTE_32F;

    /* S^T[T, Sq] = K[T, Dh] (as stored: Dh x T column-major, op T) times
    ** Q^T (Dh x Sq column-major) */
    const cuda_lt_plan *pqk = NULL, *ppv = NULL;
    if (d.Dh > 0) {
        cuda_lt_spec sp;
        memset(&sp, 0, sizeof sp);
        sp.a_type = cuda_type(dt);
        sp.c_type = CUDA_R_32F;
        sp.compute = ct;
        sp.op_a = CUBLAS_OP_T;
        sp.op_b = CUBLAS_OP_N;
        sp.m = d.T, sp.n = d.Sq, sp.k = d.Dh;
        sp.a_rows = d.Dh, sp.a_cols = d.T, sp.lda = ldk;
        sp.b_rows = d.Dh, sp.b_cols = d.Sq, sp.ldb = ldq;
        sp.ldc = d.T;
        sp.batch = count;
        sp.stride_a = stride.k, sp.stride_b = stride.q, sp.stride_c = stride.s;
        sp.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
        int64_t ska[2] = {stride.k * E, bits.k * E}, skb[2] = {stride.q * E, bits.q * E};
        int64_t skc[2] = {stride.s * 4, bits.s * 4};
        sp.align_a = cuda_lt_align(kdata, ska, 2);
        sp.align_b = cuda_lt_align(Q->data, skb, 2);
        sp.align_c = cuda_lt_align(S, skc, 2);
        if (!(pqk = cuda_lt_plan_get(rc, &sp))) return -1;
    }
    /* Y^T[Dv, Sq] = V^T (Dv x T column-major, as stored) times P^T (T x Sq)
    ** (no product when Dv is 0: only the qk output has elements) */
    if (d.Dv > 0) {
        cuda_lt_spec sp;
        memset(&sp, 0, sizeof sp);
        sp.a_type = sp.c_type = cuda_type(dt);
        sp.compute = ct;
        sp.op_a = CUBLAS_OP_N;
        sp.op_b = CUBLAS_OP_N;
        sp.m = d.Dv, sp.n = d.Sq, sp.k = d.T;
        sp.a_rows = d.Dv, sp.a_cols = d.T, sp.lda = ldv;
        sp.b_rows = d.T, sp.b_cols = d.Sq, sp.ldb = d.T;
        sp.ldc = ldy;
        sp.batch = count;
        sp.stride_a = stride.v, sp.stride_b = stride.s, sp.stride_c = stride.y;
        sp.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
        int64_t sva[2] = {stride.v * E, bits.v * E}, svb[2] = {stride.s * E, bits.s * E};
        int64_t svc[2] = {stride.y * E, bits.y * E};
        sp.align_a = cuda_lt_align(vdata, sva, 2);
        sp.align_b = cuda_lt_align(P, svb, 2);
        sp.align_c = cuda_lt_align(Y->data, svc, 2);
        if (!(ppv = cuda_lt_plan_get(rc, &sp))) return -1;
    }
    if (!pqk && cuda_fail_if(rc, cudaMemsetAsync(S, 0, (size_t)ns * 4, s), "cudaMemsetAsync"))
        return -1;
    for (int64_t l = 0; pqk && l < loops; l++) {
        attn_offs o = loop_offs(&d, mode, l);
        const char *pq = (const char *)Q->data + (size_t)o.q * es;
        const char *pk = (const char *)kdata + (size_t)o.k * es;
        float *ps = S + o.s;
        if (cuda_lt_matmul(rc, pqk, 0, pk, pq, NULL, ps, scale, 0.0f, NULL)) return -1;
    }
    if (cuda_fail_if(rc, kc_attn_softmax(kc_dtype(dt), S, P, &sm, s), "attention softmax"))
        return -1;
    for (int64_t l = 0; ppv && l < loops; l++) {
        attn_offs o = loop_offs(&d, mode, l);
        const char *pv = (const char *)vdata + (size_t)o.v * es;
        const char *pp = (const char *)P + (size_t)o.s * es;
        char *py = (char *)Y->data + (size_t)o.y * es;
        if (cuda_lt_matmul(rc, ppv, 0, pv, pp, NULL, py, 1.0f, 0.0f, NULL)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ flash tactic */

/* Head dim of Q/K and V from types (-1 when not static or not equal). */
static int64_t flash_head_dim(const ir_node *n, const ir_type *const *in) {
    const ir_type *q = in[0], *k = in[1], *v = in[2];
    int r = q->rank;
    int64_t dq, dk, dv;
    if (r == 3) {
        int64_t hq = ir_attr_int(n, "q_num_heads", 0), hkv = ir_attr_int(n, "kv_num_heads", 0);
        if (hq <= 0 || hkv <= 0 || q->dims[2] <= 0 || k->dims[2] <= 0 || v->dims[2] <= 0 ||
            q->dims[2] % hq || k->dims[2] % hkv || v->dims[2] % hkv)
            return -1;
        dq = q->dims[2] / hq, dk = k->dims[2] / hkv, dv = v->dims[2] / hkv;
    } else {
        dq = q->dims[3], dk = k->dims[3], dv = v->dims[3];
    }
    return dq > 0 && dq == dk && dq == dv ? dq : -1;
}

static bool flash_supports(const ir_node *n, const ir_type *const *in) {
    ir_type qkv[3];
    const ir_type *vin[8];
    if (!(in = attn_in_types(n, in, qkv, vin)) || !attn_common_ok(n, in, false)) return false;
    kiln_dtype dt = in[0]->dtype;
    if (dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_BFLOAT16) return false;
    return kc_attn_flash_head_dim_ok(flash_head_dim(n, in)) != 0;
}

/* Element strides of (batch, head, row) of an operand with S rows of H
** heads of D; 3-D rows are ld elements apart (H * D, or the packed width:
** the kernel takes v2's 16-byte path only when every stride and base
** pointer allows it, else v1). */
static void flash_strides(const attn_shape *d, int64_t S, int64_t H, int64_t D, int64_t ld,
                          int64_t *sb, int64_t *sh, int64_t *ss) {
    if (d->is3) *sb = S * ld, *sh = D, *ss = ld;
    else *sb = S * H * D, *sh = S * D, *ss = D;
}

/* Whether the flash kernel's v3 (128 query rows a block: at Sq <= 128 one
** block per head, K and V read once instead of once per 64 rows) runs
** instead of v2. It pays where v2 takes more than one block per head
** (Sq > 64) and the grid of 128-row blocks still fills the GPU: at least
** two blocks per SM (264 on an H100, the blocks that run at once at 16
** warps an SM), so halving the block count costs no parallelism. BERT-base
** at batch 128 (1536 heads) takes v3; at batch 1 (12 heads) v2, whose 24
** blocks reach twice the SMs. Head dims 32 and 64 (kernels/attn_flash.cu
** runs v2 at 128). v3 has not run on a GPU yet (written without one,
** session 11), so it is opt-in until test_cuda_attn passes on an H100:
** KILN_ATTN_V3=auto applies the rule above, KILN_ATTN_V3=1 takes v3
** wherever it has an instance, whatever the shape (the tests); unset or 0
** keeps v2. Read at run or capture time. */
static bool flash_v3(const kc_attn_flash_args *a, const cuda_exec *x) {
    if (!kc_attn_flash_v3_head_dim_ok(a->d)) return false;
    const char *e = getenv("KILN_ATTN_V3");
    if (!e || strcmp(e, "auto")) return e && !strcmp(e, "1");
    int n_sm = x && x->dev && x->dev->n_sm > 0 ? x->dev->n_sm : 132;
    int64_t blocks = a->b * a->hq * ((a->sq + 127) / 128);
    return a->sq > 64 && blocks >= 2 * (int64_t)n_sm;
}

static int flash_run(ref_ctx *rc) {
    const ir_node *n = rc->node;
    const kiln_tensor *Q, *K, *V;
    kiln_tensor pv3[3];
    int64_t ld;
    if (attn_in_tensors(rc, pv3, &Q, &K, &V, &ld)) return -1;
    kiln_tensor *Y = rc->out[0];
    if (ref_has(rc, 4) || ref_has(rc, 5))
        return ref_fail(rc, "this tactic does not take past_key/past_value");
    kiln_dtype dt = Q->dtype;
    if ((dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_BFLOAT16) || K->dtype != dt ||
        V->dtype != dt || Y->dtype != dt)
        return ref_fail(rc, "flash attention takes float16 or bfloat16 Q, K, V and Y of one type");
    int r = Q->rank;
    if ((r != 3 && r != 4) || K->rank != r || V->rank != r)
        return ref_fail(rc, "Attention Q, K, V must all be 3-D or all 4-D");
    attn_shape d;
    if (attn_shape_of(n, r, Q->dims, K->dims, V->dims, &d, rc->err, sizeof rc->err)) return -1;
    attn_set_ld(&d, ld);
    if (tensor_numel(Y) != d.B * d.Hq * d.Sq * d.Dv)
        return ref_fail(rc, "Attention output Y has the wrong size");
    if (d.Dh != d.Dv || !kc_attn_flash_head_dim_ok(d.Dh))
        return ref_fail(rc, "flash attention has no kernel for head dims %lld/%lld",
                        (long long)d.Dh, (long long)d.Dv);
    kc_attn_softmax_args sm;
    if (attn_mask_args(rc, &d, &sm)) return -1;
    if (d.B * d.Hq * d.Sq == 0) return 0;
    cudaStream_t s = cuda_stream_of(rc);
    if (d.T == 0) /* softmax over nothing, times nothing: zeros */
        return cuda_fail_if(rc, cudaMemsetAsync(Y->data, 0, (size_t)tensor_numel(Y) * 2, s),
                            "cudaMemsetAsync");
    const ir_attr *sa = ir_attr_find(n, "scale");
    kc_attn_flash_args a;
    memset(&a, 0, sizeof a);
    a.q = Q->data, a.k = K->data, a.v = V->data, a.y = Y->data;
    a.b = d.B, a.hq = d.Hq, a.hkv = d.Hkv, a.sq = d.Sq, a.t = d.T, a.d = d.Dh;
    flash_strides(&d, d.Sq, d.Hq, d.Dh, d.ldq, &a.q_sb, &a.q_sh, &a.q_ss);
    flash_strides(&d, d.T, d.Hkv, d.Dh, d.ldk, &a.k_sb, &a.k_sh, &a.k_ss);
    flash_strides(&d, d.T, d.Hkv, d.Dv, d.ldv, &a.v_sb, &a.v_sh, &a.v_ss);
    flash_strides(&d, d.Sq, d.Hq, d.Dv, d.Hq * d.Dv, &a.y_sb, &a.y_sh, &a.y_ss);
    a.scale = sa ? sa->f : 1.0f / sqrtf((float)d.Dh);
    a.softcap = sm.softcap;
    a.mask_kind = sm.mask_kind, a.mask_dtype = sm.mask_dtype, a.mask = sm.mask;
    memcpy(a.mst, sm.mst, sizeof a.mst);
    a.mlast = sm.mlast;
    a.causal = sm.causal;
    a.valid = sm.valid;
    a.dead_zero = sm.dead_zero;
    /* The second flash kernel (ldmatrix, cp.async, mask folded per key
    ** tile) is the default: on an H100 it passed test_cuda_attn/_kv and ran
    ** BERT's attention (128x12x128x64 FP16) in 0.060 ms against the first
    ** kernel's 0.218 ms (bench/cuda_attn_bench.c). KILN_ATTN_KERNEL=v1 runs
    ** the first one, for A/B timing. Read at run or capture time. v3 (the
    ** same code at 128 query rows a block) replaces v2 on large grids:
    ** flash_v3. */
    const char *kv = getenv("KILN_ATTN_KERNEL");
    a.kernel = kv && !strcmp(kv, "v1") ? 1 : 0;
    if (a.kernel == 0 && flash_v3(&a, cuda_exec_of(rc))) a.kernel = 2;
    return cuda_fail_if(rc, kc_attn_flash(kc_dtype(dt), &a, s), "flash attention");
}

/* ------------------------------------------------------------ RotaryEmbedding */

static bool rotary_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 3 || !in[0] || !in[1] || !in[2] || !float_type(in[0]->dtype) ||
        in[1]->dtype != in[0]->dtype || in[2]->dtype != in[0]->dtype)
        return false;
    int r = in[0]->rank;
    if (r != 3 && r != 4) return false;
    if (r == 3 && ir_attr_int(n, "num_heads", 0) <= 0) return false;
    if (n->n_in > 3 && in[3] && (in[3]->dtype != KILN_DTYPE_INT64 || in[3]->rank != 2))
        return false;
    return ir_attr_int(n, "rotary_embedding_dim", 0) >= 0;
}

static int rotary_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *cs = c->in[1], *sn = c->in[2];
    const kiln_tensor *pos = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *y = c->out[0];
    kc_rotary_args a;
    memset(&a, 0, sizeof a);
    a.interleaved = ir_attr_int(c->node, "interleaved", 0) != 0;
    int64_t nh = ir_attr_int(c->node, "num_heads", 0);
    a.rd = ir_attr_int(c->node, "rotary_embedding_dim", 0);
    if (x->rank == 4) {
        a.b = x->dims[0], a.h = x->dims[1], a.s = x->dims[2], a.d = x->dims[3];
    } else if (x->rank == 3) {
        if (nh <= 0 || x->dims[2] % nh)
            return ref_fail(c, "RotaryEmbedding 3-D input needs num_heads dividing the hidden "
                            "size");
        a.is3 = 1;
        a.b = x->dims[0], a.s = x->dims[1], a.h = nh, a.d = x->dims[2] / nh;
    } else {
        return ref_fail(c, "RotaryEmbedding input must be 3-D or 4-D");
    }
    if (a.rd == 0) a.rd = a.d;
    if (a.rd < 0 || a.rd > a.d || a.rd % 2)
        return ref_fail(c, "RotaryEmbedding rotary dim %lld is invalid for head size %lld",
                        (long long)a.rd, (long long)a.d);
    int64_t half = a.rd / 2;
    if (!float_type(x->dtype) || y->dtype != x->dtype || tensor_numel(y) != tensor_numel(x) ||
        !float_type(cs->dtype) || sn->dtype != cs->dtype ||
        !shape_equal(cs->rank, cs->dims, sn->rank, sn->dims))
        return ref_fail(c, "RotaryEmbedding cos and sin caches differ in shape or type");
    if (pos) {
        if (pos->rank != 2 || pos->dims[0] != a.b || pos->dims[1] != a.s ||
            pos->dtype != KILN_DTYPE_INT64)
            return ref_fail(c, "RotaryEmbedding position_ids must be int64 (batch, sequence)");
        if (cs->rank != 2 || cs->dims[1] != half)
            return ref_fail(c, "RotaryEmbedding caches must be (positions, %lld)",
                            (long long)half);
        a.pos = pos->data;
        a.maxpos = cs->dims[0];
    } else if (cs->rank != 3 || cs->dims[0] != a.b || cs->dims[1] != a.s ||
               cs->dims[2] != half) {
        return ref_fail(c, "RotaryEmbedding caches must be (%lld, %lld, %lld) without "
                        "position_ids", (long long)a.b, (long long)a.s, (long long)half);
    }
    a.cos = cs->data, a.sin = sn->data, a.cache_dt = kc_dtype(cs->dtype);
    return cuda_fail_if(c, kc_rotary(kc_dtype(x->dtype), x->data, y->data, &a, cuda_stream_of(c)),
                        "RotaryEmbedding");
}

static const kiln_tactic t_rotary = {"cuda_rotary_direct", OP_RotaryEmbedding, 0,
                                     TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT, rotary_supports,
                                     NULL, rotary_run};

static const kiln_tactic t_flash = {"cuda_attention_flash", OP_Attention, 0,
                                    TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT, flash_supports,
                                    NULL, flash_run};

static const kiln_tactic t_attn = {"cuda_attention_lt_softmax", OP_Attention, 0,
                                   TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT, attn_supports,
                                   attn_workspace, attn_run};

/* The flash kernel first: the builder's guess before timing. */
const kiln_tactic *const cuda_tactics_attn[] = {&t_flash, &t_attn, &t_rotary, NULL};
