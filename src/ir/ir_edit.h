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
/* Copies all attributes of src onto dst. */
bool ir_edit_copy_attrs(ir_node *dst, const ir_node *src);
/* Every consumer of old (node inputs in this graph and captures of its
** subgraphs) reads new instead. Graph outputs are not touched. */
void ir_edit_replace_uses(ir_graph *g, ir_value *old_v, ir_value *new_v);
/* Removes node n, which passes input in_idx through to output out_idx
** unchanged (Identity-like): consumers of the output read the input. When
** the output is a graph output the input takes over its name if that is
** safe; returns false (and changes nothing) when it is not. */
bool ir_edit_bypass(ir_graph *g, ir_node *n, int in_idx, int out_idx);
/* Marks a node dead (removed at the next compaction). */
void ir_edit_kill(ir_node *n);
/* The only consumer of v in g, or NULL when v has zero or several
** consumers or is a graph output (a fusion must then keep v). */
ir_node *ir_edit_sole_consumer(const ir_graph *g, const ir_value *v);
/* Number of node inputs (and subgraph captures) reading v. */
int ir_edit_num_consumers(const ir_graph *g, const ir_value *v);
/* Records that dst replaces the nodes srcs (for the fused_from list). */
void ir_edit_note_fused(ir_graph *g, ir_node *dst, ir_node *const *srcs, int n);
/* Drops dead nodes and unreferenced non-input values' producers,
** recomputes use counts and restores topological order. */
kiln_status ir_graph_compact(ir_graph *g);

#endif
