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

/* Where a device build puts a layer. */
typedef enum {
    BUILDER_PLACE_DEVICE = 0,     /* a device tactic runs it */
    BUILDER_PLACE_SHAPE_HOST = 1, /* shape arithmetic, kept on the host on purpose */
    BUILDER_PLACE_FALLBACK = 2    /* no device tactic supports it: host with copies */
} builder_place;

/* Called once per layer (profile 0) with the node, its placement and its
** input types at the profile's max shapes (entries may be NULL). */
typedef void (*builder_place_fn)(void *user, const ir_node *n, builder_place where,
                                 const ir_type *const *in);

/* A placement dry run of a device build: the very import, passes, type
** inference and tactic filtering of kiln_build_engine, without opening the
** device or timing anything, reporting each layer's placement to cb. Used
** by the coverage report (tests/gpu/cover_report.c); runs without a GPU. */
kiln_status builder_placement(const kiln_model *m, const kiln_builder_config *cfg,
                              builder_place_fn cb, void *user);

#endif
