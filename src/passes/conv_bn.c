/* conv_bn.c: folds an inference-mode BatchNormalization into the Conv (or
** ConvTranspose, or FusedConv without activation or residual yet) that
** feeds it: with s = scale / sqrt(var + epsilon) per output channel,
**   W'[m, ...] = W[m, ...] * s[m],  B'[m] = (B[m] - mean[m]) * s[m] + bias[m]
** (computed in double). New constants are made: W may be shared. */
#include "passes_util.h"

#include <math.h>

/* Mirrors the reference kernel's choice of training mode. */
static bool bn_inference(const ir_node *n, int opset) {
    if (n->n_in != 5 || n->n_out < 1) return false;
    for (int i = 1; i < 5; i++)
        if (!n->in[i] || !n->in[i]->const_val) return false;
    if (opset >= 14) return ir_attr_int(n, "training_mode", 0) == 0 && n->n_out == 1;
    if (opset < 7) return ir_attr_int(n, "is_test", 0) != 0 || n->n_out == 1;
    return n->n_out == 1;
}

static bool foldable_conv(const ir_node *c) {
    if (c->dead || c->n_in < 2 || !c->in[1] || !c->in[1]->const_val) return false;
    if (c->n_in >= 3 && c->in[2] && !c->in[2]->const_val) return false;
    switch (c->op) {
    case OP_Conv: case OP_ConvTranspose:
        return true;
    case OP_FusedConv:
        return !(c->n_in >= 4 && c->in[3]) &&
               strcmp(ir_attr_str(c, "activation", ""), "") == 0;
    default:
        return false;
    }
}

static kiln_status fold(pass_ctx *p, ir_node *conv, ir_node *bn) {
    ir_graph *g = p->g;
    const kiln_tensor *W = conv->in[1]->const_val;
    const kiln_tensor *B = conv->n_in >= 3 && conv->in[2] ? conv->in[2]->const_val : NULL;
    kiln_dtype dt = W->dtype;
    if (!pu_is_float(dt) || W->rank < 3 || (B && B->dtype != dt)) return KILN_OK;
    bool tr = conv->op == OP_ConvTranspose;
    int64_t G = ir_attr_int(conv, "group", 1);
    if (G < 1) return KILN_OK;
    int64_t M = tr ? W->dims[1] * G : W->dims[0];
    if (tr && W->dims[0] % G) return KILN_OK;
    if (B && tensor_numel(B) != M) return KILN_OK;
    for (int i = 1; i < 5; i++) {
        const kiln_tensor *t = bn->in[i]->const_val;
        if (tensor_numel(t) != M || !pu_is_float(t->dtype)) return KILN_OK;
    }
    double eps = ir_attr_float(bn, "epsilon", 1e-5f);
    int64_t nw = tensor_numel(W), cnt;
    double *prm[4] = {NULL, NULL, NULL, NULL}, *w = NULL, *b = NULL, *s = NULL;
    kiln_status st = KILN_OK;
    for (int i = 0; i < 4; i++)
        if (!(prm[i] = pu_const_vals(bn->in[1 + i], &cnt))) st = pu_oom();
    if (!st && !(w = pu_const_vals(conv->in[1], &cnt))) st = pu_oom();
    b = calloc((size_t)(M > 0 ? M : 1), sizeof *b);
    s = malloc((size_t)(M > 0 ? M : 1) * sizeof *s);
    if (!st && (!b || !s)) st = pu_oom();
    if (st) goto done;
    const double *scale = prm[0], *bias = prm[1], *mean = prm[2], *var = prm[3];
    for (int64_t m = 0; m < M; m++) {
        s[m] = scale[m] / sqrt(var[m] + eps);
        double b0 = B ? dt_get_f64(dt, B->data, (size_t)m) : 0.0;
        b[m] = (b0 - mean[m]) * s[m] + bias[m];
    }
    if (!tr) {
        int64_t per = M ? nw / M : 0; /* weights of one output channel */
        for (int64_t i = 0; i < nw; i++) w[i] *= s[i / per];
    } else {
        /* W is [C, M/G, k...]: input channel c of group c / (C/G) feeds
        ** output channel (c / (C/G)) * (M/G) + j */
        int64_t C = W->dims[0], Mg = W->dims[1], cg = C / G;
        int64_t k = shape_numel(W->rank - 2, W->dims + 2);
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < Mg; j++) {
                double f = s[(c / cg) * Mg + j];
                for (int64_t q = 0; q < k; q++) w[(c * Mg + j) * k + q] *= f;
            }
    }
    ir_value *nwv = pu_const_f64(g, dt, W->rank, W->dims, w, conv->in[1]->name);
    ir_value *nbv = nwv ? pu_const_f64(g, dt, 1, &M, b, "bn_bias") : NULL;
    if (!nwv || !nbv || (conv->n_in < 3 && !ir_edit_resize_inputs(conv, 3))) {
        st = pu_oom();
        goto done;
    }
    conv->in[1] = nwv;
    conv->in[2] = nbv;
    ir_edit_set_output(conv, 0, bn->out[0]);
    ir_edit_kill(bn);
    ir_node *srcs[2] = {conv, bn};
    ir_edit_note_fused(g, conv, srcs, 2);
    pass_note(p, "folded BatchNormalization '%s' into %s '%s'", pu_name(bn),
              conv->op_type, pu_name(conv));
done:
    for (int i = 0; i < 4; i++) free(prm[i]);
    free(w);
    free(b);
    free(s);
    return st;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int opset = (int)p->m->opset;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *bn = g->nodes[i];
        if (bn->dead || bn->op != OP_BatchNormalization || !bn_inference(bn, opset))
            continue;
        ir_value *x = bn->in[0];
        ir_node *conv = x ? x->producer : NULL;
        if (!conv || conv->graph != g || !foldable_conv(conv) || x->producer_out != 0)
            continue;
        /* another reader of the conv output still needs it un-normalized */
        if (ir_edit_sole_consumer(g, x) != bn) continue;
        kiln_status st = fold(p, conv, bn);
        if (st) return st;
    }
    return KILN_OK;
}

const kiln_pass pass_conv_bn = {"conv_bn", run};
