/* passes_util.h: small helpers shared by the structural optimizer passes. */
#ifndef KILN_PASSES_UTIL_H
#define KILN_PASSES_UTIL_H

#include "passes.h"

static inline bool pu_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_FLOAT64;
}

/* Same dtype, same known rank and the same dims (a symbolic dim equals only
** the same symbol): the two values have identical shapes for every input. */
static inline bool pu_same_type(const ir_type *a, const ir_type *b) {
    if (a->dtype != b->dtype || a->dtype == KILN_DTYPE_UNDEFINED ||
        a->rank < 0 || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static inline bool pu_static_shape(const ir_type *t) {
    if (t->rank < 0) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

/* A node's label for pass notes. */
static inline const char *pu_name(const ir_node *n) {
    if (n->name && n->name[0]) return n->name;
    if (n->n_out > 0 && n->out[0]) return n->out[0]->name;
    return n->op_type;
}

/* New constant of dtype dt and the given shape from doubles (converted). */
static inline ir_value *pu_const_f64(ir_graph *g, kiln_dtype dt, int rank,
                                     const int64_t *dims, const double *vals,
                                     const char *hint) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) return NULL;
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dt_set_f64(dt, t->data, (size_t)i, vals[i]);
    return ir_edit_add_const(g, t, hint);
}

/* New 1-D int64 constant. */
static inline ir_value *pu_const_i64(ir_graph *g, int n, const int64_t *vals,
                                     const char *hint) {
    kiln_tensor *t;
    int64_t d = n;
    if (tensor_new(KILN_DTYPE_INT64, 1, &d, &t)) return NULL;
    if (n) memcpy(t->data, vals, (size_t)n * sizeof *vals);
    return ir_edit_add_const(g, t, hint);
}

/* Copies of a constant's elements as doubles (malloc'ed), NULL on failure. */
static inline double *pu_const_vals(const ir_value *v, int64_t *count) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (!t || !dtype_is_numeric(t->dtype)) return NULL;
    int64_t n = tensor_numel(t);
    if (n < 0) return NULL;
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (!d) return NULL;
    for (int64_t i = 0; i < n; i++) d[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    *count = n;
    return d;
}

/* A constant that, added to y, is one value per last-dim column (or one
** value): dims all 1 except maybe the last, which is y's last dim; rank at
** most y's so y's shape is unchanged. */
static inline bool pu_row_bias(const ir_type *y, const ir_value *b) {
    const kiln_tensor *t = b ? b->const_val : NULL;
    if (!t || y->rank < 1 || t->rank > y->rank || t->dtype != y->dtype) return false;
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i];
        if (d == 1) continue;
        if (i != t->rank - 1 || d != y->dims[y->rank - 1]) return false;
    }
    return true;
}

/* The other input of a two-input node, given one of them; NULL when n does
** not read v exactly once among two inputs. */
static inline ir_value *pu_other_input(const ir_node *n, const ir_value *v, int *v_idx) {
    if (n->n_in != 2 || n->n_implicit || !n->in[0] || !n->in[1]) return NULL;
    if (n->in[0] == v && n->in[1] != v) {
        if (v_idx) *v_idx = 0;
        return n->in[1];
    }
    if (n->in[1] == v && n->in[0] != v) {
        if (v_idx) *v_idx = 1;
        return n->in[0];
    }
    return NULL;
}

/* v itself when it is a 1-D constant, else a 1-D copy of it (NULL: OOM). */
static inline ir_value *pu_const_flat(ir_graph *g, ir_value *v) {
    const kiln_tensor *t = v->const_val;
    if (t->rank == 1) return v;
    kiln_tensor *c;
    if (tensor_clone(t, &c)) return NULL;
    c->dims[0] = tensor_numel(t);
    c->rank = 1;
    return ir_edit_add_const(g, c, v->name);
}

static inline kiln_status pu_oom(void) {
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
}

#endif
