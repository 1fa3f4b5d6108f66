/* builder.h: pieces of the engine builder shared with tests. */
#ifndef KILN_BUILDER_H
#define KILN_BUILDER_H

#include "../engine/engine.h"

/* Plans the activation block of one profile: every main-graph value
** produced by a node whose size at the profile's max shapes (types, by
** value id) is known gets an offset; values whose lifetimes (producer to
** last consumer, graph outputs to the end) overlap never share bytes.
** Fills plan->offset/size (allocated here), total_bytes and naive_bytes. */
kiln_status plan_memory(const ir_graph *g, const ir_type *types,
                        engine_plan *plan);

/* Bytes of a concrete type (false when not concrete). */
bool type_bytes(const ir_type *t, uint64_t *out);

#endif
