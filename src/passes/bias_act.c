/* bias_act.c: grows FusedConv / FusedGemm nodes over what follows them:
**  - a constant bias Add (per output channel for a conv, per column for a
**    GEMM) folds into B / C;
**  - a residual Add of a tensor with exactly the output's shape becomes
**    FusedConv's Z input / FusedGemm's R input (only while no activation is
**    fused: the residual is added before the activation, so Add(act(y), r)
**    stays unfused, and an activation after the Add fuses on top);
**  - then one activation (Relu, Clip with constant bounds, Sigmoid,
**    x*Sigmoid(x) = SiLU, Gelu, LeakyRelu, HardSwish, HardSigmoid, Tanh)
**    becomes the activation attribute.
** Every float Conv becomes a FusedConv first, so the tactics see one conv op.
** Nothing is fused across a value that something else also reads. */
#include "passes_util.h"
#include "../ops/fused.h"

#include <float.h>

static bool has_act(const ir_node *n) {
    return strcmp(ir_attr_str(n, "activation", ""), "") != 0;
}

/* FusedConv's Z or FusedGemm's R: input 3 of both. */
static bool has_residual(const ir_node *n) {
    return n->n_in >= 4 && n->in[3];
}

static void fused_srcs_note(ir_graph *g, ir_node *dst, ir_node *a, ir_node *b) {
    ir_node *s[3] = {dst, a, b};
    ir_edit_note_fused(g, dst, s, b ? 3 : 2);
}

/* ---- bias */
/* Per-channel values of a constant added to a conv output of rank r with M
** channels (malloc'ed, M of them), or NULL when it is not per channel. */
static double *conv_bias_vals(const ir_value *b, int r, int64_t M) {
    const kiln_tensor *t = b->const_val;
    if (!t || t->rank > r || M < 1) return NULL;
    int64_t n = tensor_numel(t);
    for (int j = 0; j < t->rank; j++) {
        int axis = r - t->rank + j;
        int64_t d = t->dims[j];
        if (d == 1) continue;
        if (axis != 1 || d != M) return NULL;
    }
    double *v = malloc((size_t)M * sizeof *v);
    if (!v) return NULL;
    for (int64_t m = 0; m < M; m++)
        v[m] = dt_get_f64(t->dtype, t->data, (size_t)(n == 1 ? 0 : m));
    return v;
}

/* 1: folded, 0: not applicable, -1: out of memory. */
static int fold_conv_bias(pass_ctx *p, ir_node *P, ir_node *add, ir_value *b) {
    ir_graph *g = p->g;
    const ir_type *y = &P->out[0]->type;
    const ir_value *w = P->in[1];
    int64_t M = y->rank >= 2 ? y->dims[1] : -1;
    if (M < 0 && w && w->type.rank >= 1) M = w->type.dims[0];
    ir_value *oldb = P->n_in >= 3 ? P->in[2] : NULL;
    if (M < 1 || y->rank < 3 || (oldb && !oldb->const_val) || b->type.dtype != y->dtype)
        return 0;
    if (oldb && tensor_numel(oldb->const_val) != M) return 0;
    double *v = conv_bias_vals(b, y->rank, M);
    if (!v) return 0;
    for (int64_t m = 0; m < M && oldb; m++)
        v[m] += dt_get_f64(oldb->const_val->dtype, oldb->const_val->data, (size_t)m);
    ir_value *nb = pu_const_f64(g, y->dtype, 1, &M, v, oldb ? oldb->name : "conv_bias");
    free(v);
    if (!nb || (P->n_in < 3 && !ir_edit_resize_inputs(P, 3))) return -1;
    P->in[2] = nb;
    ir_edit_set_output(P, 0, add->out[0]);
    ir_edit_kill(add);
    fused_srcs_note(g, P, add, NULL);
    pass_note(p, "folded bias Add '%s' into %s '%s'", pu_name(add), P->op_type,
              pu_name(P));
    return 1;
}

static int fold_gemm_bias(pass_ctx *p, ir_node *P, ir_node *add, ir_value *b) {
    ir_graph *g = p->g;
    const ir_type *y = &P->out[0]->type;
    if (!pu_row_bias(y, b)) return 0;
    ir_value *oldc = P->n_in >= 3 ? P->in[2] : NULL;
    float beta = ir_attr_float(P, "beta", 1.0f);
    ir_value *nc;
    if (!oldc || beta == 0.0f) {
        if (!(nc = pu_const_flat(g, b))) return -1;
    } else {
        /* C' = beta * C + b, broadcast; must still broadcast onto y */
        const kiln_tensor *tc = oldc->const_val, *tb = b->const_val;
        if (!tc || tc->dtype != tb->dtype) return 0;
        int rank;
        int64_t dims[KILN_MAX_RANK];
        if (!shape_broadcast(tc->rank, tc->dims, tb->rank, tb->dims, &rank, dims) ||
            rank > y->rank)
            return 0;
        for (int i = 0; i < rank; i++) {
            int64_t yd = y->dims[y->rank - rank + i];
            if (dims[i] != 1 && dims[i] != yd) return 0;
        }
        int64_t n = shape_numel(rank, dims);
        double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
        if (!v) return -1;
        int64_t sc[KILN_MAX_RANK], sb[KILN_MAX_RANK];
        bcast_strides(tc->rank, tc->dims, rank, sc);
        bcast_strides(tb->rank, tb->dims, rank, sb);
        const int64_t *st[2] = {sc, sb};
        bcast_iter it;
        bcast_iter_init(&it, rank, dims, 2, st);
        for (int64_t i = 0; i < n; i++, bcast_iter_next(&it))
            v[i] = (double)beta * dt_get_f64(tc->dtype, tc->data, (size_t)it.off[0]) +
                   dt_get_f64(tb->dtype, tb->data, (size_t)it.off[1]);
        nc = pu_const_f64(g, tc->dtype, rank, dims, v, oldc->name);
        free(v);
        if (!nc) return -1;
    }
    if (P->n_in < 3 && !ir_edit_resize_inputs(P, 3)) return -1;
    P->in[2] = nc;
    if (!ir_edit_set_float(P, "beta", 1.0f)) return -1;
    ir_edit_set_output(P, 0, add->out[0]);
    ir_edit_kill(add);
    fused_srcs_note(g, P, add, NULL);
    pass_note(p, "folded bias Add '%s' into FusedGemm '%s'", pu_name(add), pu_name(P));
    return 1;
}

/* ---- activations */
static bool const_scalar(const ir_value *v, double *out) {
    return v && v->const_val && tensor_numel(v->const_val) == 1 &&
           ir_edit_const_uniform(v, out);
}

/* The activation node c computes on y, or false. */
static bool match_act(const ir_node *c, const ir_value *y, int opset, fused_act *a) {
    if (c->n_implicit || c->n_out != 1 || c->n_in < 1 || c->in[0] != y ||
        c->out[0]->type.dtype != y->type.dtype)
        return false;
    a->alpha = a->beta = 0;
    if (c->op != OP_Clip && c->n_in != 1) return false;
    switch (c->op) {
    case OP_Relu: a->kind = FUSED_ACT_RELU; return true;
    case OP_Sigmoid: a->kind = FUSED_ACT_SIGMOID; return true;
    case OP_Tanh: a->kind = FUSED_ACT_TANH; return true;
    case OP_HardSwish: a->kind = FUSED_ACT_HARD_SWISH; return true;
    case OP_LeakyRelu:
        a->kind = FUSED_ACT_LEAKY_RELU;
        a->alpha = ir_attr_float(c, "alpha", 0.01f);
        return true;
    case OP_HardSigmoid:
        a->kind = FUSED_ACT_HARD_SIGMOID;
        a->alpha = ir_attr_float(c, "alpha", 0.2f);
        a->beta = ir_attr_float(c, "beta", 0.5f);
        return true;
    case OP_Gelu: {
        const char *ap = ir_attr_str(c, "approximate", "none");
        if (strcmp(ap, "none") == 0) a->kind = FUSED_ACT_GELU;
        else if (strcmp(ap, "tanh") == 0) a->kind = FUSED_ACT_GELU_TANH;
        else return false;
        return true;
    }
    case OP_Swish:
        if (ir_attr_float(c, "alpha", 1.0f) != 1.0f) return false;
        a->kind = FUSED_ACT_SILU;
        return true;
    case OP_Clip: {
        a->kind = FUSED_ACT_CLIP;
        if (opset < 11) {
            if (c->n_in != 1) return false;
            a->alpha = ir_attr_float(c, "min", -FLT_MAX);
            a->beta = ir_attr_float(c, "max", FLT_MAX);
            return true;
        }
        double lo = -INFINITY, hi = INFINITY;
        if (c->n_in > 3) return false;
        if (c->n_in >= 2 && c->in[1] && !const_scalar(c->in[1], &lo)) return false;
        if (c->n_in >= 3 && c->in[2] && !const_scalar(c->in[2], &hi)) return false;
        /* bounds exact in float, so the float epilogue clips identically */
        if ((double)(float)lo != lo || (double)(float)hi != hi) return false;
        a->alpha = (float)lo;
        a->beta = (float)hi;
        return true;
    }
    default:
        return false;
    }
}

static bool set_act(ir_node *P, const fused_act *a) {
    return ir_edit_set_str(P, "activation", fused_act_name(a->kind)) &&
           ir_edit_set_float(P, "activation_alpha", a->alpha) &&
           ir_edit_set_float(P, "activation_beta", a->beta);
}

/* y consumed by exactly Sigmoid(y) and Mul(y, that) in either order. */
static bool match_silu(ir_graph *g, ir_node *const *cons, const ir_value *y,
                       ir_node **sig, ir_node **mul) {
    for (int k = 0; k < 2; k++) {
        ir_node *s = cons[k], *m = cons[1 - k];
        if (s->op != OP_Sigmoid || s->n_in != 1 || s->in[0] != y || s->n_out != 1)
            continue;
        if (m->op != OP_Mul || pu_other_input(m, y, NULL) != s->out[0]) continue;
        if (ir_edit_sole_consumer(g, s->out[0]) != m) continue;
        if (!pu_same_type(&m->out[0]->type, &y->type)) continue;
        *sig = s;
        *mul = m;
        return true;
    }
    return false;
}

/* One growth step of P. 1: changed, 0: nothing to do, -1: OOM. */
static int grow(pass_ctx *p, ir_node *P) {
    ir_graph *g = p->g;
    ir_value *y = P->out[0];
    if (has_act(P) || ir_edit_is_graph_output(g, y) || !pu_is_float(y->type.dtype))
        return 0;
    ir_node *cons[2];
    int nc = ir_edit_consumers(g, y, cons, 2);
    if (nc == 2) {
        ir_node *sig, *mul;
        if (!match_silu(g, cons, y, &sig, &mul)) return 0;
        fused_act a = {FUSED_ACT_SILU, 0, 0};
        if (!set_act(P, &a)) return -1;
        ir_edit_set_output(P, 0, mul->out[0]);
        ir_edit_kill(sig);
        ir_edit_kill(mul);
        fused_srcs_note(g, P, sig, mul);
        pass_note(p, "fused Sigmoid '%s' * Mul '%s' (SiLU) into %s '%s'",
                  pu_name(sig), pu_name(mul), P->op_type, pu_name(P));
        return 1;
    }
    if (nc != 1) return 0;
    ir_node *c = cons[0];
    if (c->op == OP_Add && p->m->opset >= 7) {
        ir_value *other = pu_other_input(c, y, NULL);
        if (!other || !pu_same_type(&c->out[0]->type, &y->type)) return 0;
        if (other->const_val) {
            int r = P->op == OP_FusedConv ? fold_conv_bias(p, P, c, other)
                                          : fold_gemm_bias(p, P, c, other);
            if (r) return r;
        }
        if (!has_residual(P) && pu_same_type(&other->type, &y->type)) {
            if (P->n_in < 4 && !ir_edit_resize_inputs(P, 4)) return -1;
            P->in[3] = other;
            ir_edit_set_output(P, 0, c->out[0]);
            ir_edit_kill(c);
            fused_srcs_note(g, P, c, NULL);
            pass_note(p, "fused residual Add '%s' into %s '%s'", pu_name(c), P->op_type,
                      pu_name(P));
            return 1;
        }
        return 0;
    }
    fused_act a;
    if (!match_act(c, y, (int)p->m->opset, &a)) return 0;
    if (!set_act(P, &a)) return -1;
    ir_edit_set_output(P, 0, c->out[0]);
    ir_edit_kill(c);
    fused_srcs_note(g, P, c, NULL);
    pass_note(p, "fused %s '%s' into %s '%s'", c->op_type, pu_name(c), P->op_type,
              pu_name(P));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->op != OP_Conv || n->n_implicit || !n->in[0] ||
            !pu_is_float(n->in[0]->type.dtype))
            continue;
        ir_edit_set_op(n, OP_FusedConv);
        pass_note(p, "Conv '%s' -> FusedConv", pu_name(n));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || (n->op != OP_FusedConv && n->op != OP_FusedGemm)) continue;
        int r;
        while ((r = grow(p, n)) > 0) {}
        if (r < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_bias_act = {"bias_act", run};
