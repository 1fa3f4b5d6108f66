/* qdyn.c: the dequantization tail of dynamically quantized products.
** onnxruntime's quantize_dynamic writes, for every MatMul it quantizes,
**   DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp[, W_zp])
**     -> Cast(to float32) -> Mul(x_scale * W_scale) [-> Add(bias)]
** and the same after each ConvInteger (scale and bias per output channel).
** The int32 product goes through memory three times after the GEMM (the
** Cast, the scale Mul, the bias Add). This pass folds the tail into one
** MatMulIntegerToFloat / ConvIntegerToFloat (ops/quant.c) whose kernels
** scale the accumulators
** as they store them: y = (float)acc * scale[n] (+ bias[n]), the same
** float32 operations in the same order, so results are bit-identical.
** Taken when: Cast is MatMulInteger's only reader and casts to float32; the
** Mul is the Cast's only reader, its other operand a float32 value of one
** element or one per output column (every dim 1 but the last; it may be
** computed at run time, as x_scale is; for a convolution, one per output
** channel, axis 1), and its output has the product's
** shape (no broadcast growing it); a following Add is folded when it is
** the Mul's only reader and adds a constant bias of the same kind.
** Runs before the elementwise-chain pass, which would otherwise take the
** Mul and Add into a chain. */
#include "passes_util.h"

/* A float32 value of 1 element or one per index of y's axis (every dim 1
** but the one broadcasting aligns with axis, which is 1 or y's size there),
** and no more dims than y. const_only: a constant. */
static bool chan_vector(const ir_type *y, const ir_value *v, int axis, bool const_only) {
    const ir_type *t = &v->type;
    if (t->dtype != KILN_DTYPE_FLOAT32 || t->rank < 0 || t->rank > y->rank || y->rank < 1 ||
        (const_only && !v->const_val))
        return false;
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i];
        if (d == 1) continue;
        if (i + (y->rank - t->rank) != axis || d < 0 || d != y->dims[axis]) return false;
    }
    return true;
}

static kiln_status fold_tail(pass_ctx *p, ir_node *mm) {
    ir_graph *g = p->g;
    ir_value *acc = mm->out[0];
    bool conv = mm->op == OP_ConvInteger;
    int axis = conv ? 1 : acc->type.rank - 1;
    if (acc->type.rank < (conv ? 3 : 1)) return KILN_OK;
    ir_node *cast = ir_edit_sole_consumer(g, acc);
    if (!cast || cast->op != OP_Cast || cast->n_in != 1 || cast->n_implicit ||
        ir_attr_int(cast, "to", 0) != KILN_DTYPE_FLOAT32)
        return KILN_OK;
    ir_value *f = cast->out[0];
    ir_node *mul = ir_edit_sole_consumer(g, f);
    ir_value *scale = mul && mul->op == OP_Mul ? pu_other_input(mul, f, NULL) : NULL;
    if (!scale || !chan_vector(&f->type, scale, axis, false) ||
        !pu_same_type(&mul->out[0]->type, &f->type))
        return KILN_OK;
    ir_node *add = ir_edit_sole_consumer(g, mul->out[0]);
    ir_value *bias = add && add->op == OP_Add ? pu_other_input(add, mul->out[0], NULL) : NULL;
    if (bias && !(chan_vector(&f->type, bias, axis, true) &&
                  pu_same_type(&add->out[0]->type, &f->type)))
        bias = NULL;
    if (bias && !(bias = pu_const_flat(g, bias))) return pu_oom();
    if (!ir_edit_resize_inputs(mm, bias ? 6 : 5)) return pu_oom();
    /* MatMulInteger's optional zero points keep slots 2 and 3 (NULL when
    ** absent); the scale and bias follow */
    mm->in[4] = scale;
    if (bias) mm->in[5] = bias;
    ir_edit_set_op(mm, conv ? OP_ConvIntegerToFloat : OP_MatMulIntegerToFloat);
    ir_node *last = bias ? add : mul;
    ir_edit_set_output(mm, 0, last->out[0]);
    ir_node *srcs[4] = {mm, cast, mul, add};
    int ns = bias ? 4 : 3;
    ir_edit_kill(cast);
    ir_edit_kill(mul);
    if (bias) ir_edit_kill(add);
    ir_edit_note_fused(g, mm, srcs, ns);
    pass_note(p, "%s '%s' + Cast + Mul%s -> %sToFloat", conv ? "ConvInteger" : "MatMulInteger",
              pu_name(mm), bias ? " + Add" : "", conv ? "ConvInteger" : "MatMulInteger");
    return KILN_OK;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->n_implicit ||
            (n->op != OP_MatMulInteger && n->op != OP_ConvInteger) || n->n_in < 2 ||
            n->n_out != 1)
            continue;
        kiln_status st = fold_tail(p, n);
        if (st) return st;
    }
    return KILN_OK;
}

const kiln_pass pass_qdyn = {"qdyn", run};
