/* attention.c: recognizes scaled dot-product attention as BERT, GPT-2, ViT
** and LLaMA exports spell it, and replaces it with one Attention node:
**   scores = MatMul(Q, K^T)        K^T = Transpose(K, 0,1,3,2), a K already
**                                  transposed, or the head split of K
**                                  transposed at once (perm 0,2,3,1)
**            * scale               Mul/Div by one-element constants on the
**                                  scores or on Q and K (their product)
**            + mask                optional: Add of a float mask, or
**                                  Where(cond, scores, -inf / <= -1e30)
**   P = Softmax(scores, axis=-1)   optionally NaN-cleaned by
**                                  Where(IsNaN(P), 0, P) (torch's sdpa)
**   Y = MatMul(P, V)               -> Attention(Q, K, V, mask, scale) 4-D
** When Q, K and V are head splits Transpose(Reshape(x, [B,S,H,D]), 0,2,1,3)
** of 3-D tensors and Y is merged back by Transpose(0,2,1,3) and
** Reshape([B,S,H*D]), those reshapes are absorbed too: the Attention takes
** the 3-D form with q_num_heads/kv_num_heads (factors on the 3-D Q and K
** go into the scale). Shape readers of the merged values are allowed when
** they only compute the merge's reshape targets (they go with it).
** Masks: Where(cond, 0, -inf) becomes the boolean cond; a causal mask
** (Where(Equal(Trilu(ones), 0), -inf, 0), or that folded to a constant) of
** [Sq, Skv] becomes is_causal. The scores, the softmax and the mask Add must
** be read only inside the pattern; the projections and head splits may have
** other readers (they then stay). A NaN cleaner on P becomes the node's
** kiln_masked_rows_zero attribute (Kiln's own: a row with every key masked
** gives 0 instead of NaN, which is what the cleaner made of it; every
** Attention kernel honours it, so no IsNaN/Where pass follows the node).
** Shapes: batch and head dims of Q, K, V must not broadcast (except K and V
** with one head for all, which Attention does the same way); where that is
** only known at run time the Attention node checks it and fails rather
** than differ. A mask whose last dim is not provably the key length is
** first expanded to it, so a [.., 1] mask still broadcasts over the keys. */
#include "patterns.h"

#define MAX_SCALES 4

/* ------------------------------------------------------------ helpers */
/* Two dims that no broadcasting relates: the same, or unknown symbols
** (not when one is a static 1 and the other might not be). */
static bool same_or_unknown(int64_t a, int64_t b) {
    if (a == b) return true;
    if (a >= 0 && b >= 0) return false;
    return a != 1 && b != 1;
}

static bool perm_is(const ir_node *t, int a, int b, int c, int d) {
    int cnt;
    const int64_t *p = ir_attr_ints(t, "perm", &cnt);
    return p && cnt == 4 && p[0] == a && p[1] == b && p[2] == c && p[3] == d;
}

static ir_node *transpose_of(const ir_graph *g, const ir_value *v) {
    ir_node *t = pt_prod_op(g, v, OP_Transpose);
    return t && t->n_in == 1 && t->in[0] && t->in[0]->type.rank == 4 ? t : NULL;
}

/* Identity-like producers exporters leave around K/V: a one-input Concat
** (an empty KV cache) or an Identity. */
static ir_value *look_through(const ir_graph *g, ir_value *v) {
    for (int i = 0; i < 8 && v; i++) {
        ir_node *n = pt_prod(g, v);
        if (!n || n->n_implicit || v->producer_out != 0 || n->n_in != 1 || !n->in[0] ||
            (n->op != OP_Identity && n->op != OP_Concat))
            break;
        v = n->in[0];
    }
    return v;
}

typedef struct {
    double k;
    ir_node *nodes[MAX_SCALES];
    int n;
} scales;

/* Strips Mul/Div by one-element constants off v (the value keeps its other
** readers, if any): the unscaled value, the factors multiplied into S. */
static ir_value *strip_scales(const ir_graph *g, ir_value *v, scales *S) {
    while (S->n < MAX_SCALES) {
        ir_node *n = pt_prod(g, v);
        if (!n || n->n_implicit || n->n_in != 2 || !n->in[0] || !n->in[1] ||
            (n->op != OP_Mul && n->op != OP_Div))
            break;
        double c;
        int side;
        if (n->op == OP_Div) {
            if (!pt_scalar(n->in[1], &c) || c == 0) break;
            side = 0;
            c = 1.0 / c;
        } else if (pt_scalar(n->in[1], &c)) {
            side = 0;
        } else if (pt_scalar(n->in[0], &c)) {
            side = 1;
        } else {
            break;
        }
        ir_value *x = n->in[side];
        /* the constant must not broadcast x to another shape or type */
        if (!pt_same_dims(&x->type, &v->type) || x->type.dtype != v->type.dtype ||
            n->in[1 - side]->type.rank > x->type.rank)
            break;
        S->k *= c;
        S->nodes[S->n++] = n;
        v = x;
    }
    return v;
}

/* Entries of a shape tensor (constant, or symbolic contents). */
static int shape_entries(const ir_value *v, int64_t *out, int max) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (t) {
        if (t->dtype != KILN_DTYPE_INT64 || t->rank != 1 || t->dims[0] > max) return -1;
        for (int64_t i = 0; i < t->dims[0]; i++) out[i] = ((const int64_t *)t->data)[i];
        return (int)t->dims[0];
    }
    if (!v || !v->sym_val || v->sym_len > max) return -1;
    for (int i = 0; i < v->sym_len; i++) out[i] = v->sym_val[i];
    return v->sym_len;
}

/* Reshape entry e (of node rs, input dim `in`) stands for dim want. */
static bool entry_is(const ir_node *rs, int64_t e, int64_t in, int64_t want) {
    if (e == 0 && ir_attr_int(rs, "allowzero", 0) == 0) return in == want;
    return e == want;
}

/* ------------------------------------------------------------ operands */
/* A head split: v4 = Transpose(Reshape(x3, [B, S, H, D]), perm) with x3
** 3-D and the reshape splitting only its last dim into static H x D. */
typedef struct {
    ir_node *tr, *rs;
    ir_value *x3;   /* before the reshape (scales stripped for Q and K) */
    scales s3;      /* scales stripped off x3 */
    int64_t H, D;
} head_split;

/* strip: Q and K, whose constant factors become the Attention's scale (a
** factor on V is not one). */
static bool head_split_of(const ir_graph *g, ir_node *tr, bool strip, head_split *h) {
    memset(h, 0, sizeof *h);
    h->s3.k = 1.0;
    ir_node *rs = pt_prod_op(g, tr->in[0], OP_Reshape);
    if (!rs || rs->n_in != 2 || !rs->in[0] || !rs->in[1]) return false;
    ir_value *x3 = rs->in[0];
    const ir_type *xt = &x3->type, *ot = &rs->out[0]->type;
    if (xt->rank != 3 || ot->rank != 4) return false;
    int64_t e[4];
    if (shape_entries(rs->in[1], e, 4) != 4) return false;
    for (int i = 0; i < 2; i++)
        if (!entry_is(rs, e[i], xt->dims[i], xt->dims[i])) return false;
    int64_t H = ot->dims[2], D = ot->dims[3];
    if (H < 1 || D < 1 || xt->dims[2] != H * D) return false;
    h->tr = tr;
    h->rs = rs;
    h->H = H;
    h->D = D;
    h->x3 = strip ? strip_scales(g, x3, &h->s3) : x3;
    return true;
}

/* The output merge: y4 [B,H,S,Dv] -> (identity Reshape) -> Transpose(0,2,1,3)
** -> Reshape to [B, S, H*Dv]. Exporters also take the Shape of these values
** to compute the reshape targets: such readers are allowed when all they
** feed is those targets (they die with the merge). */
typedef struct {
    ir_node *id_rs, *tr, *rs;
    ir_value *vals[3];  /* y4 and the outputs of id_rs (if any) and tr */
    int nv;
} head_merge;

/* The one reader of v that is not a Shape node (NULL: none, several, or v
** is a graph output). */
static ir_node *main_reader(const ir_graph *g, const ir_value *v) {
    ir_node *cons[8], *m = NULL;
    int nc = ir_edit_consumers(g, v, cons, 8);
    if (nc > 8 || ir_edit_is_graph_output(g, v)) return NULL;
    for (int i = 0; i < nc; i++) {
        if (cons[i]->op == OP_Shape) continue;
        if (m) return NULL;
        m = cons[i];
    }
    return m;
}

/* Every output of n feeds, through small int tensors (shape arithmetic),
** only the shape inputs (input 1) of the sinks. */
static bool feeds_only_targets(const ir_graph *g, const ir_node *n, ir_node *const *sinks,
                               int ns, int depth) {
    if (depth > 10 || n->n_implicit) return false;
    for (int o = 0; o < n->n_out; o++) {
        const ir_value *v = n->out[o];
        if (ir_edit_is_graph_output(g, v)) return false;
        ir_node *cons[8];
        int nc = ir_edit_consumers(g, v, cons, 8);
        if (nc > 8) return false;
        for (int i = 0; i < nc; i++) {
            const ir_node *c = cons[i];
            bool sink = false;
            for (int s = 0; s < ns; s++)
                if (c == sinks[s]) sink = true;
            if (sink) {
                if (c->in[0] == v) return false;
                continue;
            }
            for (int k = 0; k < c->n_out; k++)
                if (c->out[k]->type.dtype != KILN_DTYPE_INT64 || c->out[k]->type.rank > 1)
                    return false;
            if (!feeds_only_targets(g, c, sinks, ns, depth + 1)) return false;
        }
    }
    return true;
}

/* rs reshapes a [B,H,S,D] tensor to itself: every entry but at most one is
** provably the input's dim or the expected one. */
static bool identity_reshape(const ir_node *rs, const int64_t *want) {
    const ir_type *it = &rs->in[0]->type;
    int64_t e[4];
    if (rs->n_in != 2 || !rs->in[1] || it->rank != 4 || rs->out[0]->type.rank != 4 ||
        shape_entries(rs->in[1], e, 4) != 4)
        return false;
    int unknown = 0;
    for (int i = 0; i < 4; i++)
        if (!entry_is(rs, e[i], it->dims[i], it->dims[i]) &&
            !entry_is(rs, e[i], it->dims[i], want[i]))
            unknown++;
    return unknown <= 1;
}

static bool head_merge_of(const ir_graph *g, ir_value *y4, const int64_t *want,
                          int64_t hidden, head_merge *m) {
    memset(m, 0, sizeof *m);
    m->vals[m->nv++] = y4;
    ir_node *n = main_reader(g, y4);
    if (n && n->op == OP_Reshape && !n->n_implicit && n->in[0] == y4 &&
        identity_reshape(n, want)) {
        m->id_rs = n;
        m->vals[m->nv++] = n->out[0];
        n = main_reader(g, n->out[0]);
    }
    if (!n || n->op != OP_Transpose || n->n_implicit || !perm_is(n, 0, 2, 1, 3)) return false;
    m->tr = n;
    m->vals[m->nv++] = n->out[0];
    ir_node *rs = main_reader(g, n->out[0]);
    if (!rs || rs->op != OP_Reshape || rs->n_implicit || rs->n_in != 2 || !rs->in[1] ||
        rs->in[0] != n->out[0])
        return false;
    const ir_type *it = &n->out[0]->type, *ot = &rs->out[0]->type;
    int64_t e[3];
    if (ot->rank != 3 || shape_entries(rs->in[1], e, 3) != 3) return false;
    /* entries 0, 1 are B and S (the input's own dims, or Q's): the last one
    ** is then H*Dv by the element count */
    for (int i = 0; i < 2; i++)
        if (!entry_is(rs, e[i], it->dims[i], it->dims[i]) &&
            !entry_is(rs, e[i], it->dims[i], want[i == 0 ? 0 : 2]))
            return false;
    if (ot->dims[2] >= 0 && ot->dims[2] != hidden) return false;
    m->rs = rs;
    /* the Shape readers along the way */
    ir_node *sinks[2] = {rs, m->id_rs};
    for (int i = 0; i < m->nv; i++) {
        ir_node *cons[8];
        int nc = ir_edit_consumers(g, m->vals[i], cons, 8);
        for (int c = 0; c < nc && c < 8; c++)
            if (cons[c]->op == OP_Shape &&
                !feeds_only_targets(g, cons[c], sinks, m->id_rs ? 2 : 1, 0))
                return false;
    }
    return true;
}

/* ------------------------------------------------------------ masks */
/* m = Where(Equal(Trilu(Expand(1, [a, b]), upper=0), 0), -inf, 0): the
** lower-triangular causal mask of [a, b] (top-left aligned). */
static bool causal_mask(const ir_graph *g, const ir_value *m, ir_node **nodes, int *nn) {
    ir_node *w = pt_prod_op(g, m, OP_Where), *eq, *tri, *ex;
    double a, b, z;
    if (!w || w->n_in != 3 || !pt_scalar(w->in[1], &a) || !pt_scalar(w->in[2], &b) ||
        !(isinf(a) && a < 0) || b != 0)
        return false;
    if (!(eq = pt_prod_op(g, w->in[0], OP_Equal)) || eq->n_in != 2 || !eq->in[0] ||
        !pt_scalar(eq->in[1], &z) || z != 0)
        return false;
    if (!(tri = pt_prod_op(g, eq->in[0], OP_Trilu)) || ir_attr_int(tri, "upper", 1) != 0 ||
        (tri->n_in >= 2 && tri->in[1]))
        return false;
    ir_value *ones = tri->in[0];
    double one;
    if (ones && ones->const_val) {
        if (!ir_edit_const_uniform(ones, &one) || one != 1) return false;
    } else if (!(ex = pt_prod_op(g, ones, OP_Expand)) || !pt_scalar(ex->in[0], &one) ||
               one != 1) {
        return false;
    } else {
        nodes[(*nn)++] = ex;
    }
    if (m->type.rank != 2 || ones->type.rank != 2) return false;
    nodes[(*nn)++] = tri;
    nodes[(*nn)++] = eq;
    nodes[(*nn)++] = w;
    return true;
}

/* v reaches a MatMul through Mul/Div by one-element constants, each value
** read only by the next node (the scores side of the mask Add). */
static bool scores_chain(const ir_graph *g, const ir_value *v, const ir_node *reader) {
    for (int i = 0; i <= MAX_SCALES; i++) {
        ir_node *n = pt_prod(g, v);
        double c;
        if (!n || n->n_implicit || v->producer_out || v->type.rank != 4 || !pt_only(g, v, reader))
            return false;
        if (n->op == OP_MatMul) return true;
        if ((n->op != OP_Mul && n->op != OP_Div) || n->n_in != 2 || !n->in[0] || !n->in[1])
            return false;
        if (pt_scalar(n->in[1], &c)) v = n->in[0];
        else if (n->op == OP_Mul && pt_scalar(n->in[0], &c)) v = n->in[1];
        else return false;
        reader = n;
    }
    return false;
}

/* A constant causal mask of [.., Sq, Skv] (leading dims 1): 0 (or true) on
** and below the diagonal, -inf (or false) above it. */
static bool causal_const(const ir_value *m, int64_t sq, int64_t skv) {
    const kiln_tensor *t = m->const_val;
    if (!t || !t->data || t->rank < 2 || sq < 1 || skv < 1 ||
        t->dims[t->rank - 2] != sq || t->dims[t->rank - 1] != skv ||
        (t->dtype != KILN_DTYPE_BOOL && !dtype_is_float(t->dtype)))
        return false;
    for (int i = 0; i < t->rank - 2; i++)
        if (t->dims[i] != 1) return false;
    bool b = t->dtype == KILN_DTYPE_BOOL;
    for (int64_t i = 0; i < sq; i++)
        for (int64_t j = 0; j < skv; j++) {
            size_t e = (size_t)(i * skv + j);
            if (b) {
                if ((((const uint8_t *)t->data)[e] != 0) != (j <= i)) return false;
            } else {
                double v = dt_get_f64(t->dtype, t->data, e);
                if (j <= i ? v != 0 : !(isinf(v) && v < 0)) return false;
            }
        }
    return true;
}

/* ------------------------------------------------------------ the match */
typedef struct {
    ir_node *mm1, *mm2, *smax, *isnan_n, *nan_where;
    ir_node *score_nodes[MAX_SCALES + 2]; /* scales, mask Add/Where */
    int n_score;
    double scale;           /* on the scores and the 4-D Q, K */
    ir_value *q4, *kt, *v4;
    ir_value *k4;           /* K before its transpose, when there is one */
    ir_node *kt_tr;         /* that transpose (perm 0,1,3,2 or 0,2,3,1) */
    scales sq, sk;
    ir_value *mask;         /* attn_mask input (NULL: none) */
    bool mask_where;        /* from Where(cond, scores, c) */
    double where_c;
    bool float_where;       /* mask needs Where(cond, 0, where_c) built */
    ir_node *extra[8];      /* mask producers that may become unused */
    int n_extra;
    bool causal;
} attn;

/* Q, K^T, V operands and the 4-D checks. */
static bool match_core(const ir_graph *g, ir_node *smax, attn *A) {
    /* Softmax over the last axis of 4-D scores */
    ir_value *sv = smax->in[0];
    if (!sv || smax->n_implicit || sv->type.rank != 4 || !pu_is_float(sv->type.dtype))
        return false;
    int64_t ax = ir_attr_int(smax, "axis", g->model->opset < 13 ? 1 : -1);
    if (ax != -1 && ax != 3) return false;
    A->smax = smax;
    /* walk back: [Add mask | Where mask] [scales] MatMul */
    ir_value *cur = sv;
    ir_node *reader = smax;
    A->scale = 1.0;
    for (int guard = 0; guard < MAX_SCALES + 2; guard++) {
        ir_node *n = pt_prod(g, cur);
        if (!n || n->n_implicit || !pt_only(g, cur, reader) || cur->producer_out) return false;
        if (n->op == OP_MatMul) {
            A->mm1 = n;
            break;
        }
        double c;
        if (n->op == OP_Add && !A->mask && A->n_score == 0 && n->n_in == 2) {
            /* the mask: the operand that is not the scores chain */
            int si = -1;
            for (int s = 0; s < 2 && si < 0; s++)
                if (n->in[0] != n->in[1] && scores_chain(g, n->in[s], n)) si = s;
            if (si < 0) return false;
            A->mask = n->in[1 - si];
            A->score_nodes[A->n_score++] = n;
            reader = n;
            cur = n->in[si];
            continue;
        }
        if (n->op == OP_Where && !A->mask && A->n_score == 0 && n->n_in == 3 && n->in[0] &&
            n->in[1] && n->in[2] && n->in[0]->type.dtype == KILN_DTYPE_BOOL &&
            pt_scalar(n->in[2], &c) && c <= -1e30) {
            A->mask = n->in[0];
            A->mask_where = true;
            A->where_c = c;
            A->score_nodes[A->n_score++] = n;
            reader = n;
            cur = n->in[1];
            continue;
        }
        if ((n->op == OP_Mul || n->op == OP_Div) && A->n_score < MAX_SCALES + 1 &&
            n->n_in == 2 && n->in[0] && n->in[1]) {
            int side = -1;
            if (n->op == OP_Div) {
                if (pt_scalar(n->in[1], &c) && c != 0) {
                    side = 0;
                    c = 1.0 / c;
                }
            } else if (pt_scalar(n->in[1], &c)) {
                side = 0;
            } else if (pt_scalar(n->in[0], &c)) {
                side = 1;
            }
            if (side < 0 || n->in[1 - side]->type.rank > 4) return false;
            A->scale *= c;
            A->score_nodes[A->n_score++] = n;
            reader = n;
            cur = n->in[side];
            continue;
        }
        return false;
    }
    /* (the mask, when there is one, was the step right before the softmax:
    ** a scale after it would scale the mask too) */
    if (!A->mm1 || A->mm1->n_in != 2 || !A->mm1->in[0] || !A->mm1->in[1]) return false;

    /* P -> [Where(IsNaN(P), 0, P)] -> MatMul(P, V) */
    ir_value *P = smax->out[0];
    ir_node *cons[3];
    int nc = ir_edit_consumers(g, P, cons, 3);
    if (ir_edit_is_graph_output(g, P)) return false;
    if (nc == 2) {
        ir_node *in_ = cons[0]->op == OP_IsNaN ? cons[0] : cons[1];
        ir_node *wh = in_ == cons[0] ? cons[1] : cons[0];
        double z;
        if (in_->op != OP_IsNaN || wh->op != OP_Where || wh->n_in != 3 || in_->n_implicit ||
            wh->n_implicit || wh->in[0] != in_->out[0] || wh->in[2] != P ||
            !pt_scalar(wh->in[1], &z) || z != 0 || !pt_only(g, in_->out[0], wh) ||
            wh->in[1]->type.rank > 3) /* it moves after a 3-D output too */
            return false;
        A->isnan_n = in_;
        A->nan_where = wh;
        P = wh->out[0];
        nc = ir_edit_consumers(g, P, cons, 3);
        if (ir_edit_is_graph_output(g, P)) return false;
    }
    if (nc != 1 || cons[0]->op != OP_MatMul || cons[0]->n_implicit || cons[0]->n_in != 2 ||
        cons[0]->in[0] != P || !cons[0]->in[1] || cons[0]->in[1] == P)
        return false;
    A->mm2 = cons[0];

    /* operands */
    A->sq.k = A->sk.k = 1.0;
    A->q4 = strip_scales(g, A->mm1->in[0], &A->sq);
    A->kt = strip_scales(g, look_through(g, A->mm1->in[1]), &A->sk);
    A->kt = look_through(g, A->kt);
    A->v4 = look_through(g, A->mm2->in[1]);
    const ir_type *q = &A->q4->type, *kt = &A->kt->type, *v = &A->v4->type;
    if (q->rank != 4 || kt->rank != 4 || v->rank != 4 || !pu_is_float(q->dtype) ||
        kt->dtype != q->dtype || v->dtype != q->dtype || A->mm2->out[0]->type.dtype != q->dtype)
        return false;
    ir_node *t = transpose_of(g, A->kt);
    if (t && perm_is(t, 0, 1, 3, 2)) {
        A->kt_tr = t;
        A->k4 = look_through(g, t->in[0]);
    } else if (t && perm_is(t, 0, 2, 3, 1)) {
        A->kt_tr = t; /* K^T straight from the head split */
    }
    /* batch and head dims must not broadcast: equal, or symbols the
    ** Attention node checks at run time; the one broadcast it does itself
    ** is K and V with one head for all of Q's (multi-query) */
    int64_t qb = q->dims[0], kb = kt->dims[0], vb = v->dims[0];
    if (!same_or_unknown(qb, kb) || !same_or_unknown(qb, vb) || !same_or_unknown(kb, vb))
        return false;
    int64_t qh = q->dims[1], kh = kt->dims[1], vh = v->dims[1];
    bool mqa = kh == 1 && vh == 1 && qh > 1;
    if (!same_or_unknown(kh, vh) || (!mqa && !same_or_unknown(qh, kh))) return false;
    /* head sizes agree; the key lengths of K and V agree */
    if ((q->dims[3] >= 0 && kt->dims[2] >= 0 && q->dims[3] != kt->dims[2]) ||
        (kt->dims[3] >= 0 && v->dims[2] >= 0 && kt->dims[3] != v->dims[2]))
        return false;
    return true;
}

/* A bool constant with every element true (want = true) or false. */
static bool bool_const_all(const ir_value *v, bool want) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (!t || !t->data || t->dtype != KILN_DTYPE_BOOL) return false;
    int64_t n = tensor_numel(t);
    const unsigned char *d = t->data;
    for (int64_t i = 0; i < n; i++)
        if ((d[i] != 0) != want) return false;
    return n > 0;
}

/* x broadcast to m's shape is m's content: every dim of x (right-aligned)
** is 1 or provably m's. */
static bool bcasts_to(const ir_type *x, const ir_type *m) {
    if (x->rank < 1 || m->rank < 0 || x->rank > m->rank) return false;
    for (int i = 0; i < x->rank; i++) {
        int64_t d = x->dims[i], w = m->dims[m->rank - x->rank + i];
        if (d != 1 && d != w) return false;
    }
    return true;
}

/* The mask before a broadcast the attention does itself: exporters build a
** key-padding mask [B,1,1,T] and then widen it to [B,1,Sq,T] (And with an
** all-true constant, Or with an all-false one, Expand). The Attention
** broadcasts attn_mask, so it can read the narrow one: the kernels then
** see one mask row per batch (a per-key bias, not a per-element read). */
static ir_value *narrow_mask(const ir_graph *g, ir_value *m, attn *A) {
    for (int step = 0; step < 8 && m; step++) {
        ir_node *n = pt_prod(g, m);
        ir_value *x = NULL;
        if (!n || m->producer_out != 0 || n->n_implicit) break;
        if (n->op == OP_Expand && n->n_in == 2 && n->in[0]) {
            x = n->in[0];
        } else if ((n->op == OP_And || n->op == OP_Or) && n->n_in == 2 && n->in[0] && n->in[1]) {
            bool unit = n->op == OP_And;
            if (bool_const_all(n->in[0], unit)) x = n->in[1];
            else if (bool_const_all(n->in[1], unit)) x = n->in[0];
        }
        if (!x || x->type.dtype != m->type.dtype || !bcasts_to(&x->type, &m->type)) break;
        if (A->n_extra < (int)(sizeof A->extra / sizeof A->extra[0])) A->extra[A->n_extra++] = n;
        m = x;
    }
    return m;
}

/* The mask: checks and normalizations (may set A->causal, or replace the
** mask by a boolean condition). false: no match. *guard: its last dim is
** not provably the key length. */
static bool match_mask(const ir_graph *g, attn *A, bool *guard) {
    *guard = false;
    if (!A->mask) return true;
    const ir_type *mt = &A->mask->type, *q = &A->q4->type;
    if (mt->rank < 1 || mt->rank > 4) return false;
    if (!A->mask_where && mt->dtype != q->dtype) return false;
    int64_t skv = A->kt->type.dims[3], skv2 = A->v4->type.dims[2];
    int64_t want[4] = {q->dims[0], q->dims[1], q->dims[2], skv >= 0 ? skv : skv2};
    for (int i = 0; i < mt->rank; i++) {
        int64_t d = mt->dims[i], w = want[4 - mt->rank + i];
        if (d >= 0 && d != 1 && w >= 0 && d != w) return false;
    }
    int64_t last = mt->dims[mt->rank - 1];
    /* a causal mask folded to a constant (static shapes) */
    if (causal_const(A->mask, q->dims[2], last) && (last == skv || last == skv2) &&
        (!A->mask_where || isinf(A->where_c))) {
        A->causal = true;
        A->mask = NULL;
        return true;
    }
    if (!A->mask_where) {
        /* causal mask spelled out: is_causal when it is [Sq, Skv] exactly */
        int nn = A->n_extra;
        if (mt->rank == 2 && mt->dims[0] == q->dims[2] && (last == skv || last == skv2) &&
            causal_mask(g, A->mask, A->extra + A->n_extra, &nn)) {
            A->n_extra = nn;
            A->causal = true;
            A->mask = NULL;
            return true;
        }
        /* Where(cond, 0, -inf) is the boolean cond */
        ir_node *w = pt_prod_op(g, A->mask, OP_Where);
        double a, b;
        if (w && w->n_in == 3 && w->in[0] && w->in[0]->type.dtype == KILN_DTYPE_BOOL &&
            pt_scalar(w->in[1], &a) && pt_scalar(w->in[2], &b) && a == 0 && isinf(b) &&
            b < 0 && pt_same_dims(&w->in[0]->type, mt)) {
            A->extra[A->n_extra++] = w;
            A->mask = w->in[0];
        }
    } else if (!isinf(A->where_c)) {
        /* Where(cond, scores, c): scores + Where(cond, 0, c) is the same
        ** (|c| >= 1e30 absorbs any score), with fully masked rows uniform
        ** as before; -inf: the boolean cond as it is */
        A->float_where = true;
    }
    if (A->mask && A->mask->type.rank >= 1) {
        A->mask = narrow_mask(g, A->mask, A);
        last = A->mask->type.dims[A->mask->type.rank - 1];
    }
    if (last == skv || last == skv2) return true;
    if (last >= 2) return true;   /* else the graph fails either way */
    if (last == 1 && (skv == 1 || skv2 == 1)) return true;
    *guard = true;
    return true;
}

/* Builds Expand(mask, Shape(vref)[dim]) so a mask whose last dim is 1
** broadcasts over the keys as the Add did. */
static ir_value *guard_mask(ir_graph *g, ir_value *mask, ir_value *vref, int dim,
                            const char *hint) {
    char name[256];
    snprintf(name, sizeof name, "%.200s_mask_len", hint);
    ir_node *sh = ir_edit_add_node(g, OP_Shape, 1, 1, name);
    if (!sh) return NULL;
    sh->in[0] = vref;
    if (!ir_edit_set_int(sh, "start", dim) || !ir_edit_set_int(sh, "end", dim + 1)) return NULL;
    snprintf(name, sizeof name, "%.200s_mask", hint);
    ir_node *ex = ir_edit_add_node(g, OP_Expand, 2, 1, name);
    if (!ex) return NULL;
    ex->in[0] = mask;
    ex->in[1] = sh->out[0];
    return ex->out[0];
}

static void list_add(ir_node **l, int *n, int max, ir_node *x) {
    if (!x) return;
    for (int i = 0; i < *n; i++)
        if (l[i] == x) return;
    if (*n < max) l[(*n)++] = x;
}

/* 1: rewritten, 0: no match, <0: out of memory. */
static int try_match(pass_ctx *p, ir_node *smax) {
    ir_graph *g = p->g;
    attn A;
    memset(&A, 0, sizeof A);
    if (!match_core(g, smax, &A)) return 0;
    bool guard;
    if (!match_mask(g, &A, &guard)) return 0;
    const ir_type *q = &A.q4->type, *v = &A.v4->type;

    /* 3-D form: every operand a head split, the output merged back */
    head_split hq, hk, hv;
    head_merge hm;
    bool three = false;
    ir_node *qt = transpose_of(g, A.q4), *vt = transpose_of(g, A.v4);
    if (qt && vt && perm_is(qt, 0, 2, 1, 3) && perm_is(vt, 0, 2, 1, 3) &&
        head_split_of(g, qt, true, &hq) && head_split_of(g, vt, false, &hv) && A.kt_tr) {
        bool kok = false;
        if (perm_is(A.kt_tr, 0, 2, 3, 1)) {
            kok = head_split_of(g, A.kt_tr, true, &hk);
        } else if (A.k4) {
            ir_node *kt4 = transpose_of(g, A.k4);
            kok = kt4 && perm_is(kt4, 0, 2, 1, 3) && head_split_of(g, kt4, true, &hk);
        }
        int64_t want[4] = {q->dims[0], q->dims[1], q->dims[2], v->dims[3]};
        three = kok && hq.H == hk.H && hk.H == hv.H && hq.D == hk.D &&
                hq.x3->type.dtype == q->dtype && hk.x3->type.dtype == q->dtype &&
                hv.x3->type.dtype == q->dtype &&
                head_merge_of(g, A.mm2->out[0], want, hv.H * hv.D, &hm);
    }

    /* operands of the new node */
    ir_node *kill[160];
    int nk = 0;
    ir_value *qin, *kin, *vin, *out;
    double scale = A.scale * A.sq.k * A.sk.k;
    ir_node *kt_new = NULL;
    char name[256];
    if (three) {
        qin = hq.x3;
        kin = hk.x3;
        vin = hv.x3;
        scale *= hq.s3.k * hk.s3.k;
        out = hm.rs->out[0];
    } else {
        qin = A.q4;
        vin = A.v4;
        out = A.mm2->out[0];
        if (A.k4 && A.kt_tr && perm_is(A.kt_tr, 0, 1, 3, 2)) {
            kin = A.k4;
        } else {
            /* K^T given: transpose it back (or the head split's reshape) */
            bool from_split = A.kt_tr && perm_is(A.kt_tr, 0, 2, 3, 1);
            pt_name(name, sizeof name, A.mm1, "K");
            kt_new = ir_edit_add_node(g, OP_Transpose, 1, 1, name);
            if (!kt_new) return -1;
            kt_new->in[0] = from_split ? A.kt_tr->in[0] : A.kt;
            int64_t perm[4] = {0, 2, 1, 3};
            if (!from_split) perm[1] = 1, perm[2] = 3, perm[3] = 2;
            if (!ir_edit_set_ints(kt_new, "perm", perm, 4)) return -1;
            kin = kt_new->out[0];
        }
    }

    pt_name(name, sizeof name, three ? hm.rs : A.mm2, "Attention");
    ir_value *mask = A.mask;
    if (mask && A.float_where) {
        double zero = 0, c = A.where_c;
        int64_t one = 1;
        char wn[256];
        snprintf(wn, sizeof wn, "%.200s_float_mask", name);
        ir_node *w = ir_edit_add_node(g, OP_Where, 3, 1, wn);
        if (!w) return -1;
        w->in[0] = mask;
        w->in[1] = pu_const_f64(g, q->dtype, 1, &one, &zero, "attn_mask_zero");
        w->in[2] = pu_const_f64(g, q->dtype, 1, &one, &c, "attn_mask_fill");
        if (!w->in[1] || !w->in[2]) return -1;
        mask = w->out[0];
    }
    if (mask && guard) {
        mask = guard_mask(g, mask, vin, three ? 1 : 2, name);
        if (!mask) return -1;
    }
    ir_node *at = ir_edit_add_node(g, OP_Attention, mask ? 4 : 3, 1, name);
    if (!at) return -1;
    at->in[0] = qin;
    at->in[1] = kin;
    at->in[2] = vin;
    if (mask) at->in[3] = mask;
    if (!ir_edit_set_float(at, "scale", (float)scale)) return -1;
    if (A.causal && !ir_edit_set_int(at, "is_causal", 1)) return -1;
    if (three && (!ir_edit_set_int(at, "q_num_heads", hq.H) ||
                  !ir_edit_set_int(at, "kv_num_heads", hk.H)))
        return -1;

    /* the replaced nodes (in the order they compute, for the notes) */
    int km = (int)KILN_ARRAY_LEN(kill);
    if (three) {
        for (int i = 0; i < hq.s3.n; i++) list_add(kill, &nk, km, hq.s3.nodes[i]);
        list_add(kill, &nk, km, hq.rs);
        list_add(kill, &nk, km, hq.tr);
        for (int i = 0; i < hk.s3.n; i++) list_add(kill, &nk, km, hk.s3.nodes[i]);
        list_add(kill, &nk, km, hk.rs);
        list_add(kill, &nk, km, hk.tr);
        list_add(kill, &nk, km, hv.rs);
        list_add(kill, &nk, km, hv.tr);
    }
    for (int i = 0; i < A.sq.n; i++) list_add(kill, &nk, km, A.sq.nodes[i]);
    for (int i = 0; i < A.sk.n; i++) list_add(kill, &nk, km, A.sk.nodes[i]);
    list_add(kill, &nk, km, A.kt_tr);
    list_add(kill, &nk, km, A.mm1);
    for (int i = A.n_score - 1; i >= 0; i--) list_add(kill, &nk, km, A.score_nodes[i]);
    for (int i = 0; i < A.n_extra; i++) list_add(kill, &nk, km, A.extra[i]);
    list_add(kill, &nk, km, A.smax);
    list_add(kill, &nk, km, A.mm2);
    if (three) {
        list_add(kill, &nk, km, hm.id_rs);
        list_add(kill, &nk, km, hm.tr);
        list_add(kill, &nk, km, hm.rs);
    }

    if (A.nan_where) {
        /* The NaN cleaner on P (torch's SDPA export: a row with every key
        ** masked is NaN, made 0) becomes the node's kiln_masked_rows_zero:
        ** such rows give 0 instead of NaN. */
        if (!ir_edit_set_int(at, "kiln_masked_rows_zero", 1)) return -1;
        list_add(kill, &nk, km, A.isnan_n);
        list_add(kill, &nk, km, A.nan_where);
    }
    ir_edit_set_output(at, 0, out);
    /* fused_from lists what the node replaced for sure (the head splits and
    ** mask producers only when nothing else reads them any more) */
    pt_kill_unused(g, kill, nk);
    pt_cascade(g, kill, &nk, km);
    ir_node *gone[160];
    int ng = 0;
    for (int i = 0; i < nk; i++)
        if (kill[i]->dead) gone[ng++] = kill[i];
    ir_edit_note_fused(g, at, gone, ng);
    char list[768];
    pass_note(p, "Attention '%s' (%s, scale %g%s%s%s) replaces %s", at->name,
              three ? "3-D" : "4-D", scale, A.causal ? ", causal" : "",
              mask ? (A.mask->type.dtype == KILN_DTYPE_BOOL && !A.float_where ? ", bool mask"
                                                                               : ", float mask")
                   : "",
              guard ? " (expanded)" : "", pt_list(list, sizeof list, gone, ng));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int n0 = g->n_nodes;
    for (int i = 0; i < n0; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->op != OP_Softmax || n->n_in != 1 || n->n_out != 1) continue;
        if (try_match(p, n) < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_attention = {"attention", run};
