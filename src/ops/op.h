/* op.h: operator schemas. Each supported ONNX operator has a schema with its
** input/output arity and an inference function that computes output dtypes
** and shapes from input types, and from input contents when they are known.
**
** The same inference function serves two callers:
**  - static analysis of a model (ir_graph_infer): dims may be symbolic
**    (negative, see IR_SYM), ranks may be unknown (-1), contents are known
**    only for constants (ic_const) or small symbolic int tensors
**    (ic_int_values);
**  - the reference executor at run time: every input is a concrete tensor,
**    every dim is >= 0 and ic_const(c, i) returns the input's value.
** So an inference function must be exact when everything is known, and
** conservative otherwise (fresh symbols via ic_new_sym, rank -1 if even the
** rank is unknown). It must validate what the ONNX spec requires of the
** inputs (dtypes, ranks, attribute values) and fail with ic_fail on anything
** broken: the message is shown to the user with the node named. */
#ifndef KILN_OP_H
#define KILN_OP_H

#include "../ir/ir.h"

enum {
    OP_NONE = 0,
#define KILN_OP(name) OP_##name,
#include "op_list.h"
#undef KILN_OP
    OP_COUNT_
};

typedef struct infer_ctx infer_ctx;

typedef struct op_schema {
    int op;              /* OP_* */
    int min_in, max_in;  /* max_in -1: variadic */
    int min_out, max_out;
    int (*infer)(infer_ctx *c); /* 0 on success, -1 via ic_fail */
} op_schema;

struct infer_ctx {
    const ir_node *node;
    int opset;                  /* ai.onnx opset version in effect */
    int n_in;                   /* node's explicit input count */
    const ir_type *const *in;   /* in[i] NULL when input i is absent */
    const kiln_tensor *const *cval;  /* known contents or NULL */
    const int64_t *const *sval; /* symbolic int contents or NULL */
    const int *slen;
    int n_out;
    ir_type *const *out;        /* to fill; pre-set to unknown */
    int64_t **out_sval;         /* set through ic_set_int_values */
    int *out_slen;
    bool runtime;               /* true inside the executor */
    void *env;
    int64_t (*new_sym)(void *env);
    char err[512];
};

const char *op_name(int op);
/* OP_* for an op_type in the ai.onnx domain, OP_NONE if unknown. Never
** returns a Kiln-internal op (OP_FusedConv and later). */
int op_lookup(const char *op_type);
/* OP_* for any op name, internal ones included (engine loading). */
int op_lookup_any(const char *op_type);
static inline bool op_is_internal(int op) { return op >= OP_FusedConv; }
/* An ai.onnx.ml operator with its own schema (not an ai.onnx name). */
static inline bool op_is_ml(int op) {
    return op >= OP_TreeEnsemble && op <= OP_SVMRegressor;
}
/* Schema for an op, NULL if Kiln has none. */
const op_schema *op_schema_get(int op);

/* ---- helpers for inference functions */
int ic_fail(infer_ctx *c, const char *fmt, ...) KILN_PRINTF(2, 3);
static inline bool ic_has(const infer_ctx *c, int i) {
    return i >= 0 && i < c->n_in && c->in[i] != NULL;
}
static inline const ir_type *ic_in(const infer_ctx *c, int i) {
    return ic_has(c, i) ? c->in[i] : NULL;
}
static inline const kiln_tensor *ic_const(const infer_ctx *c, int i) {
    return ic_has(c, i) ? c->cval[i] : NULL;
}
/* Contents of a rank-0/1 integer input as dims (concrete >= 0 or symbolic
** < 0; note a concrete negative value such as -1 in a Reshape shape is
** returned as -1 only when it came from constant data: check
** ic_const to tell them apart). Returns the count, or -1 if unknown or more
** than max. */
int ic_int_values(const infer_ctx *c, int i, int64_t *vals, int max);
/* Records symbolic contents for an int64 output (shape arithmetic). */
void ic_set_int_values(infer_ctx *c, int i, int n, const int64_t *vals);
int64_t ic_new_sym(infer_ctx *c);
/* Sets output i. dims may be NULL for rank 0 or unknown rank (-1). */
void ic_set_out(infer_ctx *c, int i, kiln_dtype dtype, int rank,
                const int64_t *dims);
/* Output i gets input j's type. */
void ic_copy_type(infer_ctx *c, int i, int j);
/* Broadcast two types (numpy rules, symbolic-aware) into out. -1 via
** ic_fail when incompatible. Unknown ranks give unknown rank. */
int ic_broadcast(infer_ctx *c, const ir_type *a, const ir_type *b,
                 ir_type *out);
/* Normalizes a possibly negative axis against rank; -1 via ic_fail when
** out of range. */
int ic_axis(infer_ctx *c, int64_t axis, int rank, int *out);
/* Checked shape arithmetic: *out = a + b (or a * b); on int64 overflow
** -1 via ic_fail with a message naming `what` (the node is named by the
** caller of the inference function). Every output dim computed from input
** dims or attribute values goes through these, since a file may declare
** any int64 as a dim. */
int ic_dim_add(infer_ctx *c, int64_t a, int64_t b, int64_t *out,
               const char *what);
int ic_dim_mul(infer_ctx *c, int64_t a, int64_t b, int64_t *out,
               const char *what);
/* dtype checks with uniform messages. */
int ic_require_float(infer_ctx *c, int i);          /* f16/bf16/f32/f64 */
int ic_require_same_dtype(infer_ctx *c, int i, int j);
int ic_require_rank(infer_ctx *c, int i, int rank); /* ok if unknown */

#endif
