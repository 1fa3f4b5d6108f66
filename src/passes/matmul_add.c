/* matmul_add.c: MatMul by a constant 2-D weight, with the bias Add that
** follows it when there is one (a constant of one value per output column),
** becomes one FusedGemm; every float Gemm becomes a FusedGemm too, so
** bias_act and the tactics see a single GEMM op. */
#include "passes_util.h"

static bool set_gemm_attrs(ir_node *n) {
    return ir_edit_set_int(n, "transA", 0) && ir_edit_set_int(n, "transB", 0) &&
           ir_edit_set_float(n, "alpha", 1.0f) && ir_edit_set_float(n, "beta", 1.0f);
}

static kiln_status fuse_matmul(pass_ctx *p, ir_node *mm) {
    ir_graph *g = p->g;
    ir_value *a = mm->in[0], *w = mm->in[1], *y = mm->out[0];
    if (!a || !w || !w->const_val || w->const_val->rank != 2) return KILN_OK;
    kiln_dtype dt = w->const_val->dtype;
    if (!pu_is_float(dt) || a->type.dtype != dt || a->type.rank < 2 ||
        y->type.rank < 2)
        return KILN_OK;
    ir_node *add = ir_edit_sole_consumer(g, y);
    ir_value *bias = add && add->op == OP_Add && p->m->opset >= 7
                         ? pu_other_input(add, y, NULL) : NULL;
    if (bias && !(pu_row_bias(&y->type, bias) &&
                  pu_same_type(&add->out[0]->type, &y->type)))
        bias = NULL;
    if (bias && !(bias = pu_const_flat(g, bias))) return pu_oom();
    ir_edit_set_op(mm, OP_FusedGemm);
    if (!set_gemm_attrs(mm)) return pu_oom();
    if (!bias) {
        pass_note(p, "MatMul '%s' with constant weights -> FusedGemm", pu_name(mm));
        return KILN_OK;
    }
    if (!ir_edit_resize_inputs(mm, 3)) return pu_oom();
    mm->in[2] = bias;
    ir_edit_set_output(mm, 0, add->out[0]);
    ir_edit_kill(add);
    ir_node *srcs[2] = {mm, add};
    ir_edit_note_fused(g, mm, srcs, 2);
    pass_note(p, "MatMul '%s' + Add '%s' -> FusedGemm", pu_name(mm), pu_name(add));
    return KILN_OK;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->n_implicit) continue;
        if (n->op == OP_MatMul && n->n_in == 2) {
            kiln_status st = fuse_matmul(p, n);
            if (st) return st;
        } else if (n->op == OP_Gemm && n->in[0] &&
                   pu_is_float(n->in[0]->type.dtype)) {
            /* same inputs; transA/transB/alpha/beta keep their meaning */
            ir_edit_set_op(n, OP_FusedGemm);
            pass_note(p, "Gemm '%s' -> FusedGemm", pu_name(n));
        }
    }
    return KILN_OK;
}

const kiln_pass pass_matmul_add = {"matmul_add", run};
