/* eval.h: the node evaluator that inference and the optimizer fold
** constants with. Kernels live in a higher layer (the reference backend), and
** a lower layer never calls a higher one, so whoever creates an ir_model
** hands one down on it (ir_model.eval; see ref_evaluator in
** backends/ref/ref.h). A model without one is simply not folded. */
#ifndef KILN_OPS_EVAL_H
#define KILN_OPS_EVAL_H

#include "op.h"

struct op_evaluator {
    /* Whether run can evaluate nodes of this OP_*. */
    bool (*has)(int op);
    /* Runs node n on concrete inputs (explicit then implicit, as in
    ** ir_node.in); out receives n->n_out new tensors. */
    kiln_status (*run)(const ir_node *n, const kiln_tensor *const *in,
                       kiln_tensor **out);
};

/* The model's evaluator for node n's op, or NULL when n cannot be folded. */
static inline const op_evaluator *op_evaluator_for(const ir_model *m,
                                                   const ir_node *n) {
    const op_evaluator *ev = m ? m->eval : NULL;
    return ev && ev->has(n->op) ? ev : NULL;
}

#endif
