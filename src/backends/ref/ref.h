/* ref.h: the reference backend: plain, obviously-correct kernels that every
** fast path is tested against, and an interpreter that runs an IR graph node
** by node. Floating-point math is done in float32 (float16/bfloat16 widened,
** float64 may use double); integer ops in their own type.
**
** Kernel contract: the executor first runs the op's inference function on
** the concrete inputs, then allocates every output whose inferred shape is
** fully concrete (zero-filled). Outputs with data-dependent shapes are left
** with data == NULL; the kernel must size them with ref_alloc_out. Kernels
** never write past out[c->n_out - 1]; optional outputs that the model did
** not name still get a tensor (scratch) so kernels need not check. */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "../../ops/eval.h"

typedef struct ref_ctx {
    const ir_node *node;
    int opset;
    int n_in;                        /* explicit inputs */
    const kiln_tensor *const *in;    /* in[i] NULL when absent; then the
                                        node's implicit (captured) inputs
                                        at in[n_in .. n_in+n_implicit) */
    int n_implicit;
    int n_out;
    kiln_tensor *const *out;
    void *ws;                        /* tactic scratch (workspace bytes the
                                        tactic asked for), may be NULL */
    size_t ws_size;
    /* Device tactics (TACTIC_DEVICE) only: the stream to enqueue on and
    ** the backend's per-context execution state (library handles). */
    void *stream;
    void *exec;
    /* The layer's prepared data (kiln_tactic.prepare), read-only and
    ** 64-byte aligned, or NULL with blob_size 0 when it has none. */
    const void *blob;
    size_t blob_size;
    char err[512];
} ref_ctx;

typedef int (*ref_kernel_fn)(ref_ctx *c); /* 0 ok, -1 via ref_fail */

typedef struct ref_kernel {
    int op;           /* OP_*; OP_NONE terminates a table */
    ref_kernel_fn run;
} ref_kernel;

ref_kernel_fn ref_kernel_get(int op);

int ref_fail(ref_ctx *c, const char *fmt, ...) KILN_PRINTF(2, 3);
static inline bool ref_has(const ref_ctx *c, int i) {
    return i >= 0 && i < c->n_in && c->in[i] != NULL;
}
/* (Re)allocates output i with the given shape, zero-filled. */
int ref_alloc_out(ref_ctx *c, int i, kiln_dtype dtype, int rank,
                  const int64_t *dims);

/* Runs one node on concrete inputs (explicit then implicit, as in
** ir_node.in). out receives n->n_out new tensors. */
kiln_status ref_run_node(const ir_node *n, const kiln_tensor *const *in,
                         kiln_tensor **out);
/* ref_kernel_get and ref_run_node as the evaluator that lower layers fold
** constants with: whoever creates an ir_model sets model->eval to it. */
extern const op_evaluator ref_evaluator;
/* Runs a graph. inputs bind g->inputs in order; captures bind
** g->capture_local in order (NULL if none). outputs receives g->n_outputs new
** tensors. */
kiln_status ref_run_graph(const ir_graph *g, const kiln_tensor *const *inputs,
                          const kiln_tensor *const *captures,
                          kiln_tensor **outputs);
/* For control-flow kernels: runs subgraph g of the current node, binding its
** captures from the node's implicit inputs. */
int ref_run_subgraph(ref_ctx *c, const ir_graph *g,
                     const kiln_tensor *const *inputs, kiln_tensor **outputs);

#endif
