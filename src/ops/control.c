/* control.c: schemas and shape inference for control flow (If, Loop). Both
** take their bodies as graph attributes; bodies were inferred already. */
#include "op.h"

/* Merges two output types from different branches: dims that differ become
** fresh symbols, differing ranks an unknown rank. */
static void merge_types(infer_ctx *c, const ir_type *a, const ir_type *b,
                        ir_type *out) {
    *out = *a;
    if (a->dtype == KILN_DTYPE_UNDEFINED) out->dtype = b->dtype;
    if (a->rank != b->rank) {
        out->rank = -1;
        return;
    }
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) out->dims[d] = ic_new_sym(c);
}

static int infer_if(infer_ctx *c) {
    const ir_node *n = c->node;
    const ir_graph *t = ir_attr_graph(n, "then_branch");
    const ir_graph *e = ir_attr_graph(n, "else_branch");
    if (!t || !e) return ic_fail(c, "needs graph attributes then_branch and else_branch");
    if (t->n_outputs != c->n_out || e->n_outputs != c->n_out)
        return ic_fail(c, "branches have %d and %d outputs, the node has %d",
                       t->n_outputs, e->n_outputs, c->n_out);
    const ir_type *cond = ic_in(c, 0);
    if (cond && cond->dtype != KILN_DTYPE_UNDEFINED && cond->dtype != KILN_DTYPE_BOOL)
        return ic_fail(c, "cond must be bool, got %s", kiln_dtype_name(cond->dtype));
    const kiln_tensor *cv = ic_const(c, 0);
    if (t->infer_failed && e->infer_failed)
        return ic_fail(c, "neither branch can be typed at these input shapes");
    for (int i = 0; i < c->n_out; i++) {
        const ir_type *a = &t->outputs[i]->type, *b = &e->outputs[i]->type;
        /* A branch that cannot be typed here fails whenever it is taken at
        ** these shapes, so a value the If yields comes from the other one. */
        if (t->infer_failed) a = b;
        if (e->infer_failed) b = a;
        if (a->dtype && b->dtype && a->dtype != b->dtype)
            return ic_fail(c, "output %d is %s in then_branch but %s in else_branch",
                           i, kiln_dtype_name(a->dtype), kiln_dtype_name(b->dtype));
        if (cv && tensor_numel(cv) == 1) { /* branch known: its static type */
            bool take_then = ((const uint8_t *)cv->data)[0] != 0;
            *c->out[i] = take_then ? *a : *b;
            if (c->runtime) c->out[i]->rank = -1; /* the kernel sizes it */
        } else {
            merge_types(c, a, b, c->out[i]);
            if (c->runtime) c->out[i]->rank = -1;
        }
    }
    return 0;
}

static int infer_loop(infer_ctx *c) {
    const ir_node *n = c->node;
    const ir_graph *body = ir_attr_graph(n, "body");
    if (!body) return ic_fail(c, "needs graph attribute body");
    int n_carried = c->n_in - 2;
    if (n_carried < 0) return ic_fail(c, "needs inputs M and cond (may be empty)");
    if (body->n_inputs != n_carried + 2)
        return ic_fail(c, "body takes %d inputs, expected %d (iteration, cond, "
                       "%d carried)", body->n_inputs, n_carried + 2, n_carried);
    int n_scan = body->n_outputs - 1 - n_carried;
    if (n_scan < 0 || c->n_out > n_carried + n_scan)
        return ic_fail(c, "body has %d outputs, node has %d outputs and %d carried "
                       "values", body->n_outputs, c->n_out, n_carried);
    const ir_type *m = ic_in(c, 0), *cond = ic_in(c, 1);
    if (m && m->dtype && m->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "M must be int64, got %s", kiln_dtype_name(m->dtype));
    if (cond && cond->dtype && cond->dtype != KILN_DTYPE_BOOL)
        return ic_fail(c, "cond must be bool, got %s", kiln_dtype_name(cond->dtype));
    for (int i = 0; i < c->n_out; i++) {
        ir_type *o = c->out[i];
        if (i < n_carried) {
            const ir_type *init = ic_in(c, 2 + i);
            const ir_type *bo = &body->outputs[1 + i]->type;
            if (init) merge_types(c, init, bo, o);
            else *o = *bo;
        } else {
            const ir_type *bo = &body->outputs[1 + i]->type;
            o->dtype = bo->dtype;
            if (bo->rank < 0 || bo->rank + 1 > KILN_MAX_RANK) {
                o->rank = -1;
            } else {
                o->rank = bo->rank + 1;
                o->dims[0] = ic_new_sym(c);
                memcpy(o->dims + 1, bo->dims, (size_t)bo->rank * sizeof *bo->dims);
            }
        }
        if (c->runtime) o->rank = -1; /* shapes come from running the body */
    }
    return 0;
}

const op_schema op_schemas_control[] = {
    {OP_If, 1, 1, 1, -1, infer_if},
    {OP_Loop, 2, -1, 1, -1, infer_loop},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
