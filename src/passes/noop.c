/* noop.c: removes nodes that pass their input through unchanged: Identity,
** inference-mode Dropout, Cast to the same type, reshapes to the identical
** shape, identity Transposes, Pads of nothing, and x*1, x/1, x+0, x-0. */
#include "passes_util.h"

static bool is_identity_perm(const ir_node *n) {
    int rank = n->in[0] ? n->in[0]->type.rank : -1;
    int cnt;
    const int64_t *perm = ir_attr_ints(n, "perm", &cnt);
    if (!perm) return rank >= 0 && rank <= 1; /* default reverses */
    if (cnt != rank) return false;
    for (int i = 0; i < cnt; i++)
        if (perm[i] != i) return false;
    return true;
}

static bool all_zero_pads(const ir_node *n, int opset) {
    if (opset < 11) {
        int cnt;
        const int64_t *pads = ir_attr_ints(n, "pads", &cnt);
        if (!pads) pads = ir_attr_ints(n, "paddings", &cnt);
        if (!pads) return false;
        for (int i = 0; i < cnt; i++)
            if (pads[i] != 0) return false;
        return true;
    }
    double v;
    return n->n_in >= 2 && n->in[1] && ir_edit_const_uniform(n->in[1], &v) && v == 0;
}

/* x op k with k a constant that leaves x unchanged (1 for Mul/Div, 0 for
** Add/Sub), where x already has the output's type. Returns x's input index
** or -1. */
static int neutral_operand(const ir_node *n, int opset) {
    if (opset < 7 || n->n_in != 2 || !n->in[0] || !n->in[1]) return -1;
    double unit = n->op == OP_Mul || n->op == OP_Div ? 1.0 : 0.0;
    bool commutes = n->op == OP_Mul || n->op == OP_Add;
    for (int x = 0; x < 2; x++) {
        int k = 1 - x;
        if (k == 0 && !commutes) continue;
        double v;
        if (!ir_edit_const_uniform(n->in[k], &v) || v != unit) continue;
        if (pu_same_type(&n->in[x]->type, &n->out[0]->type)) return x;
    }
    return -1;
}

/* The input index n passes through unchanged, or -1. */
static int passthrough(const ir_node *n, int opset) {
    if (n->n_in < 1 || !n->in[0] || n->n_implicit) return -1;
    const ir_type *ti = &n->in[0]->type, *to = &n->out[0]->type;
    switch (n->op) {
    case OP_Identity:
        return 0;
    case OP_Dropout: {
        double v;
        if (n->n_in >= 3 && n->in[2] &&
            (!ir_edit_const_uniform(n->in[2], &v) || v != 0))
            return -1; /* training mode may be on */
        return 0;
    }
    case OP_Cast:
        return ti->dtype != KILN_DTYPE_UNDEFINED &&
                       ir_attr_int(n, "to", 0) == (int64_t)ti->dtype
                   ? 0 : -1;
    case OP_CastLike:
        return n->n_in == 2 && n->in[1] && ti->dtype != KILN_DTYPE_UNDEFINED &&
                       n->in[1]->type.dtype == ti->dtype
                   ? 0 : -1;
    case OP_Reshape: case OP_Expand: case OP_Squeeze: case OP_Unsqueeze:
    case OP_Flatten:
        return pu_same_type(ti, to) ? 0 : -1;
    case OP_Transpose:
        return is_identity_perm(n) ? 0 : -1;
    case OP_Pad:
        return all_zero_pads(n, opset) && pu_same_type(ti, to) ? 0 : -1;
    case OP_Mul: case OP_Div: case OP_Add: case OP_Sub:
        return neutral_operand(n, opset);
    default:
        return -1;
    }
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int opset = (int)p->m->opset;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->n_out < 1) continue;
        int k = passthrough(n, opset);
        if (k < 0) continue;
        if (ir_edit_bypass(g, n, k, 0))
            pass_note(p, "removed no-op %s '%s'", n->op_type, pu_name(n));
    }
    return KILN_OK;
}

const kiln_pass pass_noop = {"noop", run};
