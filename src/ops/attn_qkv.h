/* attn_qkv.h: the packed Q/K/V form of Kiln's Attention node. passes/qkv.c
** merges the three projections of an attention block into one GEMM whose
** output [B, S, Nq + Nk + Nv] is the node's input 0; inputs 1 and 2 are
** then absent and the int list attribute kiln_qkv_packed holds the widths
** [Nq, Nk, Nv] (Q, K, V are column blocks of each row, in that order).
** Only the 3-D form (q_num_heads/kv_num_heads) without a KV cache is
** packed. Shared by the schema (ops/linalg.c) and every backend, so they
** read the attribute one way. */
#ifndef KILN_ATTN_QKV_H
#define KILN_ATTN_QKV_H

#include "op.h"
#include "../util/tensor.h"

#include <string.h>

#define ATTN_QKV_ATTR "kiln_qkv_packed"

/* 0: n is not packed; 1: packed, w = [Nq, Nk, Nv] (each >= 1); -1: the
** attribute is there but malformed (count or values). */
static inline int attn_qkv_widths(const ir_node *n, int64_t w[3]) {
    int cnt = 0;
    const int64_t *p = ir_attr_ints(n, ATTN_QKV_ATTR, &cnt);
    if (!ir_attr_find(n, ATTN_QKV_ATTR)) return 0;
    if (!p || cnt != 3) return -1;
    for (int i = 0; i < 3; i++) {
        if (p[i] < 1 || p[i] > ((int64_t)1 << 40)) return -1;
        w[i] = p[i];
    }
    return 1;
}

/* The types Q, K and V have inside a packed input of type p: [B, S, w[i]].
** false when p is known not to be 3-D with last dim Nq + Nk + Nv. An
** unknown rank gives unknown-rank types. */
static inline bool attn_qkv_split_type(const ir_type *p, const int64_t w[3], ir_type out[3]) {
    for (int i = 0; i < 3; i++) out[i] = *p;
    if (p->rank < 0) return true;
    if (p->rank != 3 || (p->dims[2] >= 0 && p->dims[2] != w[0] + w[1] + w[2])) return false;
    for (int i = 0; i < 3; i++) out[i].dims[2] = w[i];
    return true;
}

/* Views of Q, K and V inside a packed tensor p (no copy): headers with
** dims [B, S, w[i]] whose data points at the block's first element; rows
** are *ld = Nq + Nk + Nv elements apart (not w[i]). nbytes covers the
** view's span. false when p is not a 3-D tensor of that last dim. */
static inline bool attn_qkv_split_tensor(const kiln_tensor *p, const int64_t w[3],
                                         kiln_tensor out[3], int64_t *ld) {
    int64_t n = w[0] + w[1] + w[2];
    size_t es = 0;
    if (p->rank != 3 || p->dims[2] != n || !dtype_nbytes(p->dtype, 1, &es) || !es) return false;
    int64_t off = 0;
    for (int i = 0; i < 3; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].dtype = p->dtype;
        out[i].rank = 3;
        out[i].dims[0] = p->dims[0];
        out[i].dims[1] = p->dims[1];
        out[i].dims[2] = w[i];
        out[i].data = p->data ? (char *)p->data + (size_t)off * es : NULL; /* NULL: empty */
        out[i].nbytes = p->nbytes > (size_t)off * es ? p->nbytes - (size_t)off * es : 0;
        off += w[i];
    }
    *ld = n;
    return true;
}

#endif
