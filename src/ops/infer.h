/* infer.h: running one node's inference function (statically or at run
** time). */
#ifndef KILN_INFER_H
#define KILN_INFER_H

#include "op.h"

/* Checks arity and runs the schema's inference. out has n->n_out entries;
** out_sval/out_slen may be NULL (no symbolic contents wanted). Errors name
** the node. */
kiln_status op_infer_node(const ir_node *n, int opset, const ir_type *const *in,
                          const kiln_tensor *const *cval,
                          const int64_t *const *sval, const int *slen,
                          ir_type *out, int64_t **out_sval, int *out_slen,
                          bool runtime, void *env, int64_t (*new_sym)(void *));


/* Infers the types of every value of graph g (by value id into types) for
** the given graph-input types, folding small constant computations so
** shape-computing chains resolve. Does not modify g. Values whose shape
** depends on runtime data keep symbolic dims (< 0) or rank -1. */
kiln_status ir_graph_infer_types(const ir_graph *g, const ir_type *in_types,
                                 ir_type *types);

/* Ops whose cost does not follow from their input and output sizes (a
** constant Conv or Einsum can take billions of operations): never folded,
** neither at load time nor by the optimizer. */
bool op_fold_cost_unbounded(int op);

#endif
