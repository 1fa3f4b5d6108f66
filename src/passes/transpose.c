/* transpose.c: layout-op cancellation. Transpose(Transpose(x)) becomes one
** Transpose (none when the perms cancel); a Transpose that only moves
** size-1 dims becomes a Reshape; chains of Reshape / Flatten / Squeeze /
** Unsqueeze collapse into one Reshape (none when the shape comes back to
** x's). Only through intermediates nothing else reads. */
#include "passes_util.h"

static bool is_reshape_like(int op) {
    return op == OP_Reshape || op == OP_Flatten || op == OP_Squeeze ||
           op == OP_Unsqueeze;
}

/* perm of a Transpose whose input has rank r (default: reversed). */
static bool get_perm(const ir_node *n, int r, int64_t *perm) {
    int cnt;
    const int64_t *p = ir_attr_ints(n, "perm", &cnt);
    if (r < 0 || r > KILN_MAX_RANK) return false;
    if (!p) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return true;
    }
    if (cnt != r) return false;
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        if (p[i] < 0 || p[i] >= r || seen[p[i]]) return false;
        seen[p[i]] = true;
        perm[i] = p[i];
    }
    return true;
}

/* The single-consumer producer of n's data input, if it has op kind. */
static ir_node *fusable_producer(ir_graph *g, ir_node *n, bool reshape_like) {
    ir_value *v = n->in[0];
    ir_node *q = v ? v->producer : NULL;
    if (!q || q->dead || q->graph != g || q->n_implicit || v->producer_out != 0 ||
        !q->in[0])
        return NULL;
    if (reshape_like ? !is_reshape_like(q->op) : q->op != OP_Transpose) return NULL;
    return ir_edit_sole_consumer(g, v) == n ? q : NULL;
}

static kiln_status try_transpose(pass_ctx *p, ir_node *t2) {
    ir_graph *g = p->g;
    ir_node *t1 = fusable_producer(g, t2, false);
    if (!t1) return KILN_OK;
    int r = t1->in[0]->type.rank;
    int64_t p1[KILN_MAX_RANK], p2[KILN_MAX_RANK], q[KILN_MAX_RANK];
    if (!get_perm(t1, r, p1) || !get_perm(t2, r, p2)) return KILN_OK;
    bool ident = true;
    for (int i = 0; i < r; i++) {
        q[i] = p1[p2[i]];
        if (q[i] != i) ident = false;
    }
    if (!ir_edit_set_ints(t2, "perm", q, r)) return pu_oom();
    t2->in[0] = t1->in[0];
    ir_edit_kill(t1);
    ir_node *srcs[2] = {t1, t2};
    ir_edit_note_fused(g, t2, srcs, 2);
    if (ident && ir_edit_bypass(g, t2, 0, 0))
        pass_note(p, "Transposes '%s' and '%s' cancel", pu_name(t1), pu_name(t2));
    else
        pass_note(p, "merged Transposes '%s' and '%s'", pu_name(t1), pu_name(t2));
    return KILN_OK;
}

/* Makes n a Reshape of its data input to its (static) output shape. */
static bool has_zero_dim(const ir_type *t) {
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] == 0) return true;
    return false;
}

static kiln_status to_static_reshape(pass_ctx *p, ir_node *n) {
    const ir_type *t = &n->out[0]->type;
    ir_value *shape = pu_const_i64(p->g, t->rank, t->dims, "shape");
    if (!shape || (n->n_in != 2 && !ir_edit_resize_inputs(n, 2))) return pu_oom();
    ir_edit_set_op(n, OP_Reshape);
    n->in[1] = shape;
    n->n_attrs = 0; /* allowzero 0; other ops' attributes do not apply */
    return KILN_OK;
}

/* Transpose moving only size-1 dims: the data order is unchanged. */
static kiln_status try_transpose_as_reshape(pass_ctx *p, ir_node *n) {
    const ir_type *ti = &n->in[0]->type, *to = &n->out[0]->type;
    int64_t perm[KILN_MAX_RANK];
    /* (a 0 in a Reshape shape would copy an input dim) */
    if (!pu_static_shape(ti) || !pu_static_shape(to) || has_zero_dim(to) ||
        !get_perm(n, ti->rank, perm))
        return KILN_OK;
    int64_t last = -1;
    for (int i = 0; i < ti->rank; i++) {
        if (ti->dims[perm[i]] == 1) continue;
        if (perm[i] < last) return KILN_OK;
        last = perm[i];
    }
    kiln_status st = to_static_reshape(p, n);
    if (!st) pass_note(p, "Transpose '%s' only moves size-1 dims: Reshape", pu_name(n));
    return st;
}

static kiln_status try_reshape(pass_ctx *p, ir_node *r) {
    ir_graph *g = p->g;
    ir_node *q = fusable_producer(g, r, true);
    if (!q) return KILN_OK;
    const ir_type *to = &r->out[0]->type;
    ir_value *x = q->in[0];
    if (pu_static_shape(to) && !has_zero_dim(to)) {
        if (r->op != OP_Reshape || !r->in[1] || !r->in[1]->const_val) {
            kiln_status st = to_static_reshape(p, r);
            if (st) return st;
        } else {
            /* the constant shape may hold 0s copying dims of the old input */
            ir_value *shape = pu_const_i64(g, to->rank, to->dims, "shape");
            if (!shape) return pu_oom();
            r->in[1] = shape;
            r->n_attrs = 0;
        }
    } else {
        /* dynamic output: keep r's shape if it never copies input dims */
        if (r->op != OP_Reshape || !r->in[1] || !r->in[1]->const_val) return KILN_OK;
        if (ir_attr_int(r, "allowzero", 0) == 0) {
            const kiln_tensor *s = r->in[1]->const_val;
            for (int64_t i = 0; i < tensor_numel(s); i++)
                if (dt_get_i64(s->dtype, s->data, (size_t)i) == 0) return KILN_OK;
        }
    }
    r->in[0] = x;
    ir_edit_kill(q);
    ir_node *srcs[2] = {q, r};
    ir_edit_note_fused(g, r, srcs, 2);
    if (pu_same_type(&x->type, to) && ir_edit_bypass(g, r, 0, 0))
        pass_note(p, "%s '%s' and %s '%s' cancel", q->op_type, pu_name(q),
                  r->op_type, pu_name(r));
    else
        pass_note(p, "merged %s '%s' into Reshape '%s'", q->op_type, pu_name(q),
                  pu_name(r));
    return KILN_OK;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    /* before opset 5 Reshape takes its shape as an attribute */
    bool reshape_ok = p->m->opset >= 5;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->n_implicit || n->n_in < 1 || !n->in[0]) continue;
        kiln_status st = KILN_OK;
        if (n->op == OP_Transpose) {
            st = try_transpose(p, n);
            if (!st && !n->dead && n->op == OP_Transpose && reshape_ok)
                st = try_transpose_as_reshape(p, n);
        }
        if (!st && !n->dead && is_reshape_like(n->op) && reshape_ok)
            st = try_reshape(p, n);
        if (st) return st;
    }
    return KILN_OK;
}

const kiln_pass pass_transpose = {"transpose", run};
