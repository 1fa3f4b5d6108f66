/* infer_helpers.c: the ic_* helpers used by operator inference functions. */
#include "op.h"

#include <stdio.h>

int ic_fail(infer_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

int64_t ic_new_sym(infer_ctx *c) {
    return c->new_sym ? c->new_sym(c->env) : IR_SYM(0);
}

int ic_int_values(const infer_ctx *c, int i, int64_t *vals, int max) {
    if (!ic_has(c, i)) return -1;
    const kiln_tensor *t = c->cval[i];
    if (t) {
        if (t->rank > 1 || !dtype_is_int(t->dtype)) return -1;
        int64_t n = tensor_numel(t);
        if (n < 0 || n > max) return -1;
        for (int64_t k = 0; k < n; k++)
            vals[k] = dt_get_i64(t->dtype, t->data, (size_t)k);
        return (int)n;
    }
    if (c->sval && c->sval[i]) {
        int n = c->slen[i];
        if (n > max) return -1;
        memcpy(vals, c->sval[i], (size_t)n * sizeof *vals);
        return n;
    }
    return -1;
}

void ic_set_int_values(infer_ctx *c, int i, int n, const int64_t *vals) {
    if (i < 0 || i >= c->n_out || !c->out_sval || n < 0 || n > 64) return;
    free(c->out_sval[i]);
    c->out_sval[i] = malloc(((size_t)n + 1) * sizeof *vals);
    if (!c->out_sval[i]) return;
    if (n) memcpy(c->out_sval[i], vals, (size_t)n * sizeof *vals);
    c->out_slen[i] = n;
}

void ic_set_out(infer_ctx *c, int i, kiln_dtype dtype, int rank,
                const int64_t *dims) {
    if (i < 0 || i >= c->n_out) return;
    ir_type *t = c->out[i];
    t->dtype = dtype;
    t->rank = rank > KILN_MAX_RANK ? -1 : rank;
    if (rank > 0 && rank <= KILN_MAX_RANK && dims)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    else if (rank > 0 && rank <= KILN_MAX_RANK)
        for (int k = 0; k < rank; k++) t->dims[k] = ic_new_sym(c);
}

void ic_copy_type(infer_ctx *c, int i, int j) {
    if (i < 0 || i >= c->n_out || !ic_has(c, j)) return;
    *c->out[i] = *c->in[j];
}

int ic_broadcast(infer_ctx *c, const ir_type *a, const ir_type *b,
                 ir_type *out) {
    out->dtype = a->dtype;
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return 0;
    }
    int r = KILN_MAX(a->rank, b->rank);
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - a->rank ? 1 : a->dims[i - (r - a->rank)];
        int64_t db = i < r - b->rank ? 1 : b->dims[i - (r - b->rank)];
        if (da == db || db == 1) out->dims[i] = da;
        else if (da == 1) out->dims[i] = db;
        else if (da >= 0 && db >= 0)
            return ic_fail(c, "shapes cannot broadcast: dim %d is %lld vs %lld",
                           i, (long long)da, (long long)db);
        else if (da >= 0) out->dims[i] = da; /* symbolic must be 1 or da */
        else if (db >= 0) out->dims[i] = db;
        else out->dims[i] = ic_new_sym(c);
    }
    out->rank = r;
    return 0;
}

int ic_axis(infer_ctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return ic_fail(c, "axis %lld is out of range for rank %d",
                       (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

int ic_require_float(infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->dtype == KILN_DTYPE_UNDEFINED) return 0;
    if (t->dtype == KILN_DTYPE_FLOAT32 || t->dtype == KILN_DTYPE_FLOAT16 ||
        t->dtype == KILN_DTYPE_BFLOAT16 || t->dtype == KILN_DTYPE_FLOAT64)
        return 0;
    return ic_fail(c, "input %d must be a floating-point tensor, got %s", i,
                   kiln_dtype_name(t->dtype));
}

int ic_require_same_dtype(infer_ctx *c, int i, int j) {
    const ir_type *a = ic_in(c, i), *b = ic_in(c, j);
    if (!a || !b || a->dtype == KILN_DTYPE_UNDEFINED ||
        b->dtype == KILN_DTYPE_UNDEFINED || a->dtype == b->dtype)
        return 0;
    return ic_fail(c, "inputs %d and %d must have the same type, got %s and %s",
                   i, j, kiln_dtype_name(a->dtype), kiln_dtype_name(b->dtype));
}

int ic_require_rank(infer_ctx *c, int i, int rank) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0 || t->rank == rank) return 0;
    return ic_fail(c, "input %d must have rank %d, got %d", i, rank, t->rank);
}

/* Dims declared in a file can be any int64 and reach inference unchanged, so
** every sum or product that makes an output dim goes through these. */
int ic_dim_add(infer_ctx *c, int64_t a, int64_t b, int64_t *out,
               const char *what) {
    if (__builtin_add_overflow(a, b, out))
        return ic_fail(c, "%s overflows int64 (%lld + %lld)", what,
                       (long long)a, (long long)b);
    return 0;
}

int ic_dim_mul(infer_ctx *c, int64_t a, int64_t b, int64_t *out,
               const char *what) {
    if (__builtin_mul_overflow(a, b, out))
        return ic_fail(c, "%s overflows int64 (%lld x %lld)", what,
                       (long long)a, (long long)b);
    return 0;
}
