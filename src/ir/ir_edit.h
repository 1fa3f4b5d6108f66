/* ir_edit.h: graph rewriting helpers used by the optimizer passes. Edits
** may leave nodes out of order and dead; ir_graph_compact restores the
** invariants (no dead nodes, use counts, topological order). */
#ifndef KILN_IR_EDIT_H
#define KILN_IR_EDIT_H

#include "../ops/op.h"

/* New node with op (ONNX or internal), op_type and domain set from the op,
** n_in/n_out slots (inputs NULL, outputs fresh values named after hint).
** Appended at the end; call ir_graph_compact before relying on order. */
ir_node *ir_edit_add_node(ir_graph *g, int op, int n_in, int n_out,
                          const char *name_hint);
/* New value with a unique name derived from hint. */
ir_value *ir_edit_new_value(ir_graph *g, const char *hint);
/* New constant value owning t (freed with the model, even on failure). */
ir_value *ir_edit_add_const(ir_graph *g, kiln_tensor *t, const char *hint);
/* Attribute setters (replace an existing attribute of that name). false on
** out-of-memory. */
bool ir_edit_set_int(ir_node *n, const char *name, int64_t v);
bool ir_edit_set_float(ir_node *n, const char *name, float v);
bool ir_edit_set_str(ir_node *n, const char *name, const char *v);
bool ir_edit_set_ints(ir_node *n, const char *name, const int64_t *v, int count);
bool ir_edit_set_floats(ir_node *n, const char *name, const float *v, int count);
/* Moves subgraph g (held by another node's attribute, which must no longer
** be used) onto n as graph attribute `name`; g's owner becomes n. */
bool ir_edit_set_graph(ir_node *n, const char *name, ir_graph *g);
/* Copies all attributes of src onto dst. */
bool ir_edit_copy_attrs(ir_node *dst, const ir_node *src);
/* Every consumer of old (node inputs in this graph and captures of its
** subgraphs) reads new instead. Graph outputs are not touched. */
void ir_edit_replace_uses(ir_graph *g, ir_value *old_v, ir_value *new_v);
/* Removes node n, which passes input in_idx through to output out_idx
** unchanged (Identity-like): consumers of the output read the input. When
** the output is a graph output the input takes over its name if that is
** safe; returns false (and changes nothing) when it is not: the input is a
** graph input, another graph output, a capture or an outer value; or one
** of n's other outputs is still read or is a graph output. */
bool ir_edit_bypass(ir_graph *g, ir_node *n, int in_idx, int out_idx);
/* Marks a node dead (removed at the next compaction). */
void ir_edit_kill(ir_node *n);
/* The only consumer of v in g, or NULL when v has zero or several
** consumers or is a graph output (a fusion must then keep v). Consumers are
** live nodes: one reading v in two input slots (Mul(x, x)) is one consumer,
** and a node whose subgraphs capture v is a consumer. */
ir_node *ir_edit_sole_consumer(const ir_graph *g, const ir_value *v);
/* Number of node inputs (and subgraph captures) reading v. */
int ir_edit_num_consumers(const ir_graph *g, const ir_value *v);
/* Records that dst replaces the nodes srcs (for the fused_from list).
** dst->fused_from becomes the union (deduplicated, in order) of its old
** list and each src's fused_from, or name (first output's name when
** unnamed). Include dst itself in srcs when dst is an original node that
** absorbs others (Conv absorbing its BatchNormalization). */
void ir_edit_note_fused(ir_graph *g, ir_node *dst, ir_node *const *srcs, int n);
/* Drops dead nodes and unreferenced non-input values' producers,
** recomputes use counts and restores topological order. In detail: values
** a dead node produced lose their producer (a value with const_val becomes
** a constant; one without it that is still read is an error, KILN_INTERNAL);
** values nothing references any more (not a graph input/output, capture,
** node input or live node output) leave g->values, whose ids are
** renumbered. */
kiln_status ir_graph_compact(ir_graph *g);

/* ---- additions (not in the first version of this header) */
/* Makes v output i of n: v's producer becomes n, and n->out[i]'s old value
** is orphaned (dropped at compaction unless something still reads it). The
** way to have a fused node take over the last node's output value, and with
** it the name, graph-output status and consumers. */
void ir_edit_set_output(ir_node *n, int i, ir_value *v);
/* Changes the number of explicit inputs (new slots NULL, implicit inputs
** kept after them). false on out-of-memory. */
bool ir_edit_resize_inputs(ir_node *n, int n_in);
/* Whether v is one of g's outputs. */
bool ir_edit_is_graph_output(const ir_graph *g, const ir_value *v);
/* Distinct live nodes reading v (explicit or implicit inputs); stores up to
** max of them in out (may be NULL) and returns the full count. */
int ir_edit_consumers(const ir_graph *g, const ir_value *v, ir_node **out,
                      int max);
/* Turns n into another op in place (op, op_type, domain, schema); inputs,
** outputs, attributes and name stay. For ONNX op -> internal op upgrades
** such as Conv -> FusedConv, whose attributes are a superset. */
void ir_edit_set_op(ir_node *n, int op);
/* true when v is a constant with at least one element, all equal; *val gets
** that element (any numeric dtype, through double). */
bool ir_edit_const_uniform(const ir_value *v, double *val);

#endif
