/* linalg.c: schemas and shape inference for the linalg family: MatMul, Gemm,
** Einsum, Det, and the attention-era Attention and RotaryEmbedding. */
#include "op.h"

#include "linalg_einsum.h"
#include "attn_qkv.h"

/* Two dims that must agree: false only when both are concrete and differ. */
static bool dims_compatible(int64_t a, int64_t b) {
    return a < 0 || b < 0 || a == b;
}

/* Merges two dims known to be equal: prefer the concrete one. */
static int64_t dim_pick(int64_t a, int64_t b) { return a >= 0 ? a : b; }

/* a + b for dims; symbolic when either is. */
static int64_t dim_add(infer_ctx *c, int64_t a, int64_t b) {
    if (a >= 0 && b >= 0 && a <= INT64_MAX - b) return a + b;
    return ic_new_sym(c);
}

/* Sub-byte and 8-bit float types are numeric to dtype_is_numeric but the
** kernels here only handle the byte-addressable standard types. */
static bool std_numeric(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: case KILN_DTYPE_FLOAT64: case KILN_DTYPE_FLOAT16:
    case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8:
    case KILN_DTYPE_INT16: case KILN_DTYPE_UINT16: case KILN_DTYPE_INT32:
    case KILN_DTYPE_UINT32: case KILN_DTYPE_INT64: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_UNDEFINED:
        return true;
    default:
        return false;
    }
}

static int require_std_numeric(infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (!t || std_numeric(t->dtype)) return 0;
    return ic_fail(c, "input %d: element type %s is not supported", i,
                   kiln_dtype_name(t->dtype));
}

/* ------------------------------------------------------------------ MatMul */
static int infer_matmul(infer_ctx *c) {
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1);
    if (!a || !b) return ic_fail(c, "MatMul needs inputs A and B");
    if (require_std_numeric(c, 0) || require_std_numeric(c, 1) ||
        ic_require_same_dtype(c, 0, 1))
        return -1;
    kiln_dtype dt = a->dtype != KILN_DTYPE_UNDEFINED ? a->dtype : b->dtype;
    if (a->rank < 0 || b->rank < 0) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    if (a->rank == 0 || b->rank == 0)
        return ic_fail(c, "MatMul inputs must have rank >= 1 (got %d and %d)",
                       a->rank, b->rank);
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (!dims_compatible(ka, kb))
        return ic_fail(c, "MatMul inner dims differ: %lld vs %lld",
                       (long long)ka, (long long)kb);
    ir_type ba = {0}, bb = {0}, bo = {0};
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(ba.dims, a->dims, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.dims, b->dims, (size_t)bb.rank * sizeof(int64_t));
    if (ic_broadcast(c, &ba, &bb, &bo)) return -1;
    int64_t dims[KILN_MAX_RANK];
    int r = bo.rank;
    memcpy(dims, bo.dims, (size_t)r * sizeof(int64_t));
    if (a->rank > 1) dims[r++] = a->dims[a->rank - 2];
    if (b->rank > 1) dims[r++] = b->dims[b->rank - 1];
    ic_set_out(c, 0, dt, r, dims);
    return 0;
}

/* -------------------------------------------------------------------- Gemm */
static int infer_gemm(infer_ctx *c) {
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1), *cc = ic_in(c, 2);
    if (!a || !b) return ic_fail(c, "Gemm needs inputs A and B");
    if (require_std_numeric(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2))
        return -1;
    if (ic_require_rank(c, 0, 2) || ic_require_rank(c, 1, 2)) return -1;
    kiln_dtype dt = a->dtype != KILN_DTYPE_UNDEFINED ? a->dtype : b->dtype;
    int64_t ta = ir_attr_int(c->node, "transA", 0);
    int64_t tb = ir_attr_int(c->node, "transB", 0);
    int64_t m = a->rank == 2 ? a->dims[ta ? 1 : 0] : ic_new_sym(c);
    int64_t ka = a->rank == 2 ? a->dims[ta ? 0 : 1] : -1;
    int64_t kb = b->rank == 2 ? b->dims[tb ? 1 : 0] : -1;
    int64_t n = b->rank == 2 ? b->dims[tb ? 0 : 1] : ic_new_sym(c);
    if (a->rank == 2 && b->rank == 2 && !dims_compatible(ka, kb))
        return ic_fail(c, "Gemm inner dims differ: %lld vs %lld", (long long)ka,
                       (long long)kb);
    if (cc && cc->rank >= 0) {
        if (cc->rank > 2)
            return ic_fail(c, "Gemm input C must have rank <= 2, got %d",
                           cc->rank);
        /* Unidirectional broadcast of C to (M, N). */
        int64_t want[2] = {m, n};
        for (int i = 0; i < cc->rank; i++) {
            int64_t d = cc->dims[i], w = want[2 - cc->rank + i];
            if (d >= 0 && d != 1 && w >= 0 && d != w)
                return ic_fail(c, "Gemm input C (dim %d = %lld) does not "
                               "broadcast to %lld", i, (long long)d,
                               (long long)w);
        }
    }
    int64_t dims[2] = {m, n};
    ic_set_out(c, 0, dt, 2, dims);
    return 0;
}

/* ------------------------------------------------------------------ Einsum */
static int infer_einsum(infer_ctx *c) {
    const char *eq = ir_attr_str(c->node, "equation", NULL);
    if (!eq) return ic_fail(c, "Einsum needs the 'equation' attribute");
    int n = c->n_in;
    if (n < 1) return ic_fail(c, "Einsum needs at least one input");
    if (einsum_count_terms(eq) != n)
        return ic_fail(c, "Einsum equation '%s' has %d terms for %d inputs", eq,
                       einsum_count_terms(eq), n);
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    int ranks[EIN_MAX_OPS];
    bool known = true;
    if (n > EIN_MAX_OPS)
        return ic_fail(c, "Einsum with %d inputs (at most %d supported)", n,
                       EIN_MAX_OPS);
    for (int i = 0; i < n; i++) {
        const ir_type *t = ic_in(c, i);
        if (!t) return ic_fail(c, "Einsum input %d is missing", i);
        if (require_std_numeric(c, i) || ic_require_same_dtype(c, 0, i))
            return -1;
        if (dt == KILN_DTYPE_UNDEFINED) dt = t->dtype;
        ranks[i] = t->rank;
        if (t->rank < 0) known = false;
    }
    if (!known) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    einsum_spec sp;
    if (einsum_parse(eq, n, ranks, &sp, c->err, sizeof c->err)) return -1;
    /* Size of each label: concrete non-1 sizes win, 1 broadcasts. */
    int64_t size[EIN_MAX_LABELS];
    bool seen[EIN_MAX_LABELS] = {false};
    for (int i = 0; i < n; i++) {
        const ir_type *t = ic_in(c, i);
        for (int ax = 0; ax < sp.rank[i]; ax++) {
            int l = sp.lab[i][ax];
            int64_t d = t->dims[ax];
            if (!seen[l]) {
                seen[l] = true;
                size[l] = d;
            } else if (size[l] == 1) {
                size[l] = d;
            } else if (d == 1 || d == size[l]) {
                /* keep */
            } else if (d >= 0 && size[l] >= 0) {
                return ic_fail(c, "Einsum: dimension sizes %lld and %lld for "
                               "the same label do not match",
                               (long long)size[l], (long long)d);
            } else if (d >= 0) {
                size[l] = d;
            } else if (size[l] >= 0) {
                /* symbolic d must equal size[l] or 1 */
            } else {
                size[l] = ic_new_sym(c); /* two different symbols */
            }
        }
    }
    int64_t dims[KILN_MAX_RANK];
    for (int k = 0; k < sp.out_rank; k++) dims[k] = size[(int)sp.out[k]];
    ic_set_out(c, 0, dt, sp.out_rank, dims);
    return 0;
}

/* --------------------------------------------------------------------- Det */
static int infer_det(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "Det needs input X");
    if (ic_require_float(c, 0)) return -1;
    if (x->rank < 0) {
        ic_set_out(c, 0, x->dtype, -1, NULL);
        return 0;
    }
    if (x->rank < 2)
        return ic_fail(c, "Det input must have rank >= 2, got %d", x->rank);
    if (!dims_compatible(x->dims[x->rank - 1], x->dims[x->rank - 2]))
        return ic_fail(c, "Det input matrices must be square, got %lldx%lld",
                       (long long)x->dims[x->rank - 2],
                       (long long)x->dims[x->rank - 1]);
    ic_set_out(c, 0, x->dtype, x->rank - 2, x->dims);
    return 0;
}

/* --------------------------------------------------------------- Attention
** Inputs: Q, K, V, attn_mask, past_key, past_value, nonpad_kv_seqlen (24).
** Outputs: Y, present_key, present_value, qk_matmul_output. */
static int infer_attention(infer_ctx *c) {
    const ir_type *q = ic_in(c, 0), *k = ic_in(c, 1), *v = ic_in(c, 2);
    /* Kiln's packed form (attn_qkv.h): Q, K, V are column blocks of input
    ** 0, inputs 1 and 2 absent; the checks below run on the blocks */
    int64_t pw[3];
    ir_type qkv[3];
    int packed = attn_qkv_widths(c->node, pw);
    if (packed < 0)
        return ic_fail(c, "Attention: %s must be three positive widths", ATTN_QKV_ATTR);
    if (packed) {
        if (!q || k || v || ic_has(c, 4) || ic_has(c, 5))
            return ic_fail(c, "Attention with %s takes packed Q/K/V as input 0, no separate "
                           "K, V or past key/value", ATTN_QKV_ATTR);
        if (!attn_qkv_split_type(q, pw, qkv))
            return ic_fail(c, "Attention: packed Q/K/V input must be 3-D with last dim "
                           "%lld + %lld + %lld", (long long)pw[0], (long long)pw[1],
                           (long long)pw[2]);
        q = &qkv[0], k = &qkv[1], v = &qkv[2];
    }
    if (!q || !k || !v) return ic_fail(c, "Attention needs Q, K and V");
    /* Q, K, past_key share T1; V, past_value share T2 (may differ). */
    if (ic_require_float(c, 0) || ic_require_float(c, 2) ||
        ic_require_same_dtype(c, 0, 1) || ic_require_same_dtype(c, 0, 4) ||
        ic_require_same_dtype(c, 2, 5))
        return -1;
    const ir_type *mask = ic_in(c, 3);
    if (mask && mask->dtype != KILN_DTYPE_UNDEFINED &&
        mask->dtype != KILN_DTYPE_BOOL && !std_numeric(mask->dtype))
        return ic_fail(c, "Attention attn_mask must be bool or numeric, got %s",
                       kiln_dtype_name(mask->dtype));
    const ir_type *npad = ic_in(c, 6);
    if (npad && npad->dtype != KILN_DTYPE_UNDEFINED &&
        npad->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "Attention nonpad_kv_seqlen must be int64");
    if (npad && (ic_has(c, 4) || ic_has(c, 5)))
        return ic_fail(c, "Attention: nonpad_kv_seqlen cannot be combined with "
                       "past_key/past_value");
    if (ic_has(c, 4) != ic_has(c, 5))
        return ic_fail(c, "Attention: past_key and past_value must be given "
                       "together");
    int64_t qmode = ir_attr_int(c->node, "qk_matmul_output_mode", 0);
    if (qmode < 0 || qmode > 3)
        return ic_fail(c, "Attention: qk_matmul_output_mode %lld is not 0..3",
                       (long long)qmode);
    kiln_dtype dt = q->dtype, vdt = v->dtype;
    if (q->rank < 0 || k->rank < 0 || v->rank < 0) {
        ic_set_out(c, 0, dt, -1, NULL);
        ic_set_out(c, 1, dt, 4, NULL);
        ic_set_out(c, 2, vdt, 4, NULL);
        ic_set_out(c, 3, dt, 4, NULL);
        return 0;
    }
    if (q->rank != k->rank || q->rank != v->rank ||
        (q->rank != 3 && q->rank != 4))
        return ic_fail(c, "Attention Q, K, V must all be 3-D or all 4-D (ranks "
                       "%d, %d, %d)", q->rank, k->rank, v->rank);
    int64_t B = q->dims[0], Hq, Hkv, Sq, Skv, Dh, Dv;
    if (!dims_compatible(B, k->dims[0]) || !dims_compatible(B, v->dims[0]))
        return ic_fail(c, "Attention batch sizes of Q, K, V differ");
    B = dim_pick(dim_pick(B, k->dims[0]), v->dims[0]);
    if (q->rank == 3) {
        int64_t hq = ir_attr_int(c->node, "q_num_heads", 0);
        int64_t hkv = ir_attr_int(c->node, "kv_num_heads", 0);
        if (hq <= 0 || hkv <= 0)
            return ic_fail(c, "Attention with 3-D inputs needs positive "
                           "q_num_heads and kv_num_heads attributes");
        Hq = hq;
        Hkv = hkv;
        Sq = q->dims[1];
        Skv = k->dims[1];
        if (!dims_compatible(Skv, v->dims[1]))
            return ic_fail(c, "Attention K and V sequence lengths differ");
        Skv = dim_pick(Skv, v->dims[1]);
        int64_t hs[3] = {q->dims[2], k->dims[2], v->dims[2]};
        int64_t nh[3] = {hq, hkv, hkv};
        int64_t per[3];
        for (int i = 0; i < 3; i++) {
            if (hs[i] >= 0 && hs[i] % nh[i])
                return ic_fail(c, "Attention: hidden size %lld of input %d is "
                               "not a multiple of %lld heads",
                               (long long)hs[i], i, (long long)nh[i]);
            per[i] = hs[i] >= 0 ? hs[i] / nh[i] : ic_new_sym(c);
        }
        Dh = per[0];
        if (!dims_compatible(per[0], per[1]))
            return ic_fail(c, "Attention Q and K head sizes differ (%lld vs "
                           "%lld)", (long long)per[0], (long long)per[1]);
        Dv = per[2];
    } else {
        Hq = q->dims[1];
        Hkv = k->dims[1];
        Sq = q->dims[2];
        Skv = k->dims[2];
        Dh = q->dims[3];
        Dv = v->dims[3];
        if (!dims_compatible(Hkv, v->dims[1]) ||
            !dims_compatible(Skv, v->dims[2]))
            return ic_fail(c, "Attention K and V shapes disagree");
        if (!dims_compatible(Dh, k->dims[3]))
            return ic_fail(c, "Attention Q and K head sizes differ (%lld vs "
                           "%lld)", (long long)Dh, (long long)k->dims[3]);
        Dh = dim_pick(Dh, k->dims[3]);
        Hkv = dim_pick(Hkv, v->dims[1]);
        Skv = dim_pick(Skv, v->dims[2]);
    }
    if (Hq >= 0 && Hkv > 0 && Hq % Hkv)
        return ic_fail(c, "Attention: q heads (%lld) must be a multiple of kv "
                       "heads (%lld)", (long long)Hq, (long long)Hkv);
    if (Hkv == 0) return ic_fail(c, "Attention: zero kv heads");
    int64_t total = Skv;
    const ir_type *pk = ic_in(c, 4), *pv = ic_in(c, 5);
    if (pk) {
        if (ic_require_rank(c, 4, 4) || ic_require_rank(c, 5, 4)) return -1;
        if (pk->rank == 4) {
            if (!dims_compatible(pk->dims[0], B) ||
                !dims_compatible(pk->dims[1], Hkv) ||
                !dims_compatible(pk->dims[3], Dh))
                return ic_fail(c, "Attention past_key shape does not match K");
            total = dim_add(c, pk->dims[2], Skv);
        } else {
            total = ic_new_sym(c);
        }
        if (pv->rank == 4 &&
            (!dims_compatible(pv->dims[0], B) ||
             !dims_compatible(pv->dims[1], Hkv) ||
             !dims_compatible(pv->dims[3], Dv) ||
             (pk->rank == 4 && !dims_compatible(pv->dims[2], pk->dims[2]))))
            return ic_fail(c, "Attention past_value shape does not match V");
    }
    if (mask && mask->rank >= 0) {
        if (mask->rank < 1 || mask->rank > 4)
            return ic_fail(c, "Attention attn_mask must have rank 1..4, got %d",
                           mask->rank);
        int64_t md = mask->dims[mask->rank - 1];
        if (md >= 0 && total >= 0 && md > total)
            return ic_fail(c, "Attention attn_mask last dim %lld exceeds the "
                           "total sequence length %lld", (long long)md,
                           (long long)total);
        int64_t want[4] = {B, Hq, Sq, total};
        for (int i = 0; i < mask->rank - 1; i++) {
            int64_t d = mask->dims[i], w = want[4 - mask->rank + i];
            if (d >= 0 && d != 1 && w >= 0 && d != w)
                return ic_fail(c, "Attention attn_mask dim %d (%lld) does not "
                               "broadcast to %lld", i, (long long)d,
                               (long long)w);
        }
    }
    if (npad && npad->rank >= 0 &&
        (npad->rank != 1 || !dims_compatible(npad->dims[0], B)))
        return ic_fail(c, "Attention nonpad_kv_seqlen must have shape "
                       "(batch_size)");
    if (q->rank == 3) {
        int64_t hid = ic_new_sym(c);
        if (Dv >= 0 && Hq >= 0 && ic_dim_mul(c, Dv, Hq, &hid, "heads x value head size"))
            return -1;
        int64_t y[3] = {B, Sq, hid};
        ic_set_out(c, 0, dt, 3, y);
    } else {
        int64_t y[4] = {B, Hq, Sq, Dv};
        ic_set_out(c, 0, dt, 4, y);
    }
    int64_t pkd[4] = {B, Hkv, total, Dh}, pvd[4] = {B, Hkv, total, Dv};
    int64_t qk[4] = {B, Hq, Sq, total};
    ic_set_out(c, 1, dt, 4, pkd);
    ic_set_out(c, 2, vdt, 4, pvd);
    ic_set_out(c, 3, dt, 4, qk);
    return 0;
}

/* --------------------------------------------------------- RotaryEmbedding
** Inputs: X, cos_cache, sin_cache, position_ids (optional). */
static int infer_rotary(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *cs = ic_in(c, 1), *sn = ic_in(c, 2);
    if (!x || !cs || !sn)
        return ic_fail(c, "RotaryEmbedding needs X, cos_cache and sin_cache");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2))
        return -1;
    const ir_type *pos = ic_in(c, 3);
    if (pos && pos->dtype != KILN_DTYPE_UNDEFINED &&
        pos->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "RotaryEmbedding position_ids must be int64");
    int64_t nh = ir_attr_int(c->node, "num_heads", 0);
    int64_t rd = ir_attr_int(c->node, "rotary_embedding_dim", 0);
    if (nh < 0 || rd < 0)
        return ic_fail(c, "RotaryEmbedding: negative num_heads or "
                       "rotary_embedding_dim");
    if (x->rank >= 0) {
        if (x->rank != 3 && x->rank != 4)
            return ic_fail(c, "RotaryEmbedding input must be 3-D or 4-D, got "
                           "rank %d", x->rank);
        if (x->rank == 3 && nh == 0)
            return ic_fail(c, "RotaryEmbedding with 3-D input needs num_heads");
        int64_t head = -1;
        if (x->rank == 4) head = x->dims[3];
        else if (x->dims[2] >= 0) {
            if (x->dims[2] % nh)
                return ic_fail(c, "RotaryEmbedding: hidden size %lld is not a "
                               "multiple of num_heads %lld",
                               (long long)x->dims[2], (long long)nh);
            head = x->dims[2] / nh;
        }
        int64_t r = rd ? rd : head;
        if (head >= 0 && rd > head)
            return ic_fail(c, "RotaryEmbedding: rotary_embedding_dim %lld "
                           "exceeds head size %lld", (long long)rd,
                           (long long)head);
        if (r >= 0 && r % 2)
            return ic_fail(c, "RotaryEmbedding: rotary dim %lld is odd",
                           (long long)r);
        int want = pos ? 2 : 3;
        for (int i = 1; i <= 2; i++) {
            const ir_type *t = ic_in(c, i);
            if (t->rank < 0) continue;
            if (t->rank != want)
                return ic_fail(c, "RotaryEmbedding: %s must be %d-D %s "
                               "position_ids, got rank %d",
                               i == 1 ? "cos_cache" : "sin_cache", want,
                               pos ? "with" : "without", t->rank);
            int64_t last = t->dims[t->rank - 1];
            if (r >= 0 && !dims_compatible(last, r / 2))
                return ic_fail(c, "RotaryEmbedding: cache last dim %lld is not "
                               "rotary dim / 2 = %lld", (long long)last,
                               (long long)(r / 2));
        }
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

const op_schema op_schemas_linalg[] = {
    {OP_MatMul, 2, 2, 1, 1, infer_matmul},
    {OP_Gemm, 2, 3, 1, 1, infer_gemm},
    {OP_Einsum, 1, -1, 1, 1, infer_einsum},
    {OP_Det, 1, 1, 1, 1, infer_det},
    {OP_Attention, 3, 7, 1, 4, infer_attention},
    {OP_RotaryEmbedding, 3, 4, 1, 1, infer_rotary},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
