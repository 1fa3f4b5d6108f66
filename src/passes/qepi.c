/* qepi.c: the epilogue of an INT8 product. A QFusedGemm (made by qdq.c
** from DQ -> MatMul/Gemm) takes in, one at a time, the sole reader of its
** output when that reader is
**   Add of a constant with one value per column   -> bias (none yet)
**   Add of a tensor of the output's shape         -> residual R (none yet;
**     DequantizeLinear(r_q) per tensor is read as r_q with its scale and
**     zero point, so the residual travels in 8 bits)
**   Relu / Gelu (erf or tanh) / Sigmoid / Tanh    -> activation (none yet)
**   QuantizeLinear, per tensor, saturating       -> 8-bit output (last)
** in the order the op computes them (ops/qfused.c: bias, residual,
** activation, quantization), so each fold is bit for bit the node it
** removes. This is how a BERT layer's FFN runs as int8 GEMM + bias + GELU
** + requantization into the next int8 GEMM, and its output projections as
** int8 GEMM + bias + residual, with no float pass between.
** A LayerNormalization whose only reader is a per-tensor QuantizeLinear
** becomes QLayerNormalization (ops/qfused.c: LayerNorm then Q's steps, so
** exact): in a BERT layer the products and the residual read that 8-bit
** value, and the float LayerNorm output never reaches memory.
** Runs after gelu.c (which makes the Gelu it folds) and before the float
** fusions (matmul_add, bias_act, eltwise), which would take these nodes. */
#include "patterns.h"

#include "../ops/fused.h"

static bool is_q8(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8;
}

static bool has_in(const ir_node *n, int i) { return n->n_in > i && n->in[i]; }

static bool set_in(ir_node *n, int i, ir_value *v) {
    if (n->n_in <= i && !ir_edit_resize_inputs(n, i + 1)) return false;
    n->in[i] = v;
    return true;
}

/* A scalar float32 constant > 0 (a scale). */
static bool scale_of(const ir_value *v, double *s) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (!t || t->dtype != KILN_DTYPE_FLOAT32 || tensor_numel(t) != 1) return false;
    *s = dt_get_f64(t->dtype, t->data, 0);
    return *s > 0 && isfinite(*s);
}

/* A zero point input (absent, or a scalar constant of type qt). */
static bool zero_point_ok(const ir_node *n, int i, kiln_dtype qt) {
    if (!has_in(n, i)) return true;
    const kiln_tensor *t = n->in[i]->const_val;
    return t && t->dtype == qt && tensor_numel(t) == 1;
}

/* A per-tensor saturating QuantizeLinear of a float32 value with a float32
** scale and an 8-bit zero point (c's output type). */
static bool plain_q(const ir_node *c) {
    double ys;
    kiln_dtype qt = c->out[0]->type.dtype;
    return c->op == OP_QuantizeLinear && c->n_out == 1 && !c->n_implicit && c->n_in >= 2 &&
           c->in[0] && c->in[0]->type.dtype == KILN_DTYPE_FLOAT32 && is_q8(qt) &&
           scale_of(c->in[1], &ys) && ir_attr_int(c, "saturate", 1) == 1 &&
           !ir_attr_find(c, "output_dtype") && !ir_attr_find(c, "block_size") &&
           !ir_attr_find(c, "precision") && zero_point_ok(c, 2, qt);
}

/* Activation of a unary node, FUSED_ACT_NONE when not one folded here. */
static int act_of(const ir_node *c) {
    if (c->n_in != 1 || c->n_out != 1) return FUSED_ACT_NONE;
    switch (c->op) {
    case OP_Relu: return FUSED_ACT_RELU;
    case OP_Sigmoid: return FUSED_ACT_SIGMOID;
    case OP_Tanh: return FUSED_ACT_TANH;
    case OP_Gelu:
        return strcmp(ir_attr_str(c, "approximate", "none"), "tanh") ? FUSED_ACT_GELU
                                                                     : FUSED_ACT_GELU_TANH;
    default: return FUSED_ACT_NONE;
    }
}

/* 1: folded the reader of q's output, 0: nothing to fold, -1: OOM. */
static int fold_one(pass_ctx *p, ir_node *q) {
    ir_graph *g = p->g;
    ir_value *y = q->out[0];
    if (has_in(q, 9) || !pu_is_float(y->type.dtype)) return 0; /* quantized: done */
    ir_node *c = ir_edit_sole_consumer(g, y);
    if (!c || c->dead || c->n_implicit || c->n_out != 1) return 0;
    bool has_act = ir_attr_str(q, "activation", "")[0] != 0;
    const char *what = NULL;
    ir_node *res_dq = NULL;
    if (c->op == OP_Add) {
        ir_value *o = pu_other_input(c, y, NULL);
        if (!o || !pu_same_type(&c->out[0]->type, &y->type) || has_act) return 0;
        if (o->const_val) {
            /* bias: one float32 value per column, none folded yet */
            if (has_in(q, 5) || has_in(q, 6) || !pu_row_bias(&y->type, o) ||
                o->type.dtype != KILN_DTYPE_FLOAT32)
                return 0;
            ir_value *b = pu_const_flat(g, o);
            if (!b || !set_in(q, 5, b)) return -1;
            what = "bias Add";
        } else {
            if (has_in(q, 6) || !pu_same_type(&o->type, &y->type)) return 0;
            /* an 8-bit residual behind a per-tensor DequantizeLinear */
            ir_node *d = pt_prod_op(g, o, OP_DequantizeLinear);
            double rs;
            if (d && d->n_in >= 2 && d->in[0] && is_q8(d->in[0]->type.dtype) &&
                !d->in[0]->const_val && !ir_attr_find(d, "block_size") &&
                !ir_attr_find(d, "output_dtype") && o->type.dtype == KILN_DTYPE_FLOAT32 &&
                scale_of(d->in[1], &rs) && zero_point_ok(d, 2, d->in[0]->type.dtype) &&
                pt_same_dims(&d->in[0]->type, &y->type)) {
                if (!set_in(q, 6, d->in[0]) || !set_in(q, 7, d->in[1])) return -1;
                if (has_in(d, 2) && !set_in(q, 8, d->in[2])) return -1;
                res_dq = d;
                what = "residual Add (8-bit, its DequantizeLinear read in the epilogue)";
            } else {
                if (!set_in(q, 6, o)) return -1;
                what = "residual Add";
            }
        }
    } else if (act_of(c) != FUSED_ACT_NONE) {
        if (has_act) return 0;
        if (!ir_edit_set_str(q, "activation", fused_act_name(act_of(c)))) return -1;
        what = c->op_type;
    } else if (c->op == OP_QuantizeLinear) {
        /* per tensor, float32 scale, saturating, an 8-bit zero point */
        kiln_dtype qt = c->out[0]->type.dtype;
        if (y->type.dtype != KILN_DTYPE_FLOAT32 || !plain_q(c) || ir_attr_find(q, "output_dtype"))
            return 0;
        double zero = 0;
        ir_value *z = has_in(c, 2) ? c->in[2] : pu_const_f64(g, qt, 0, NULL, &zero, "y_zero_point");
        if (!z || !set_in(q, 9, c->in[1]) || !set_in(q, 10, z)) return -1;
        what = "QuantizeLinear";
    } else {
        return 0;
    }
    ir_edit_set_output(q, 0, c->out[0]);
    ir_edit_kill(c);
    ir_node *src[1] = {c};
    ir_edit_note_fused(g, q, src, 1);
    if (res_dq) { /* the residual's DequantizeLinear, if nothing else reads it */
        ir_node *dl[1] = {res_dq};
        pt_kill_unused(g, dl, 1);
    }
    pass_note(p, "folded %s '%s' into QFusedGemm '%s'", what, pu_name(c), pu_name(q));
    return 1;
}

/* LayerNormalization (its statistics outputs unread) -> Q: 1 folded, 0
** not, -1 OOM. */
static int fold_ln(pass_ctx *p, ir_node *ln) {
    ir_graph *g = p->g;
    if (ln->n_implicit || ln->n_in < 2 || !ln->in[0] || !ln->in[1]) return 0;
    for (int o = 1; o < ln->n_out; o++)
        if (ir_edit_is_graph_output(g, ln->out[o]) || ir_edit_num_consumers(g, ln->out[o]))
            return 0;
    ir_node *c = ir_edit_sole_consumer(g, ln->out[0]);
    if (!c || !plain_q(c) || c->in[0] != ln->out[0]) return 0;
    char name[256];
    pt_name(name, sizeof name, ln, "QLayerNormalization");
    ir_node *q = ir_edit_add_node(g, OP_QLayerNormalization, 5, 1, name);
    if (!q || !ir_edit_copy_attrs(q, ln)) return -1;
    q->in[0] = ln->in[0];
    q->in[1] = ln->in[1];
    q->in[2] = ln->n_in > 2 ? ln->in[2] : NULL;
    q->in[3] = c->in[1];
    if (c->n_in > 2 && c->in[2]) {
        q->in[4] = c->in[2];
    } else {
        double zero = 0;
        if (!(q->in[4] = pu_const_f64(g, c->out[0]->type.dtype, 0, NULL, &zero, "y_zero_point")))
            return -1;
    }
    ir_edit_set_output(q, 0, c->out[0]);
    ir_node *src[2] = {ln, c};
    ir_edit_note_fused(g, q, src, 2);
    ir_edit_kill(c);
    ir_edit_kill(ln);
    pass_note(p, "folded LayerNormalization '%s' and QuantizeLinear '%s' into "
              "QLayerNormalization (%s out)", pu_name(ln), pu_name(c),
              kiln_dtype_name(q->out[0]->type.dtype));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    /* (device builds whose backend has no QFusedGemm tactic have none of
    ** QLayerNormalization either: pass_ctx.no_q8_epilogue) */
    int n0 = p->no_q8_epilogue ? 0 : g->n_nodes;
    for (int i = 0; i < n0; i++) {
        ir_node *n = g->nodes[i];
        if (!n->dead && n->op == OP_LayerNormalization && fold_ln(p, n) < 0) return pu_oom();
    }
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *q = g->nodes[i];
        if (q->dead || q->op != OP_QFusedGemm || q->n_out != 1) continue;
        for (int k = 0; k < 4; k++) {
            int r = fold_one(p, q);
            if (r < 0) return pu_oom();
            if (!r) break;
        }
    }
    return KILN_OK;
}

const kiln_pass pass_qepi = {"qepi", run};
