/* norm.c: schemas and shape inference for the normalization family:
** BatchNormalization, InstanceNormalization, LayerNormalization,
** GroupNormalization, MeanVarianceNormalization, LRN, RMSNormalization. */
#include "op.h"

static bool dims_compatible(int64_t a, int64_t b) {
    return a < 0 || b < 0 || a == b;
}

/* Input i must be rank-1 of length n (checked where known). */
static int require_vec(infer_ctx *c, int i, int64_t n, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0) return 0;
    if (t->rank != 1 || !dims_compatible(t->dims[0], n))
        return ic_fail(c, "%s must be a vector of length %lld", what,
                       (long long)n);
    return 0;
}

/* Input i must broadcast unidirectionally to x's shape (numpy rules). */
static int require_bcast_to(infer_ctx *c, int i, const ir_type *x,
                            const char *what) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0 || x->rank < 0) return 0;
    if (t->rank > x->rank)
        return ic_fail(c, "%s has rank %d, more than the input's %d", what,
                       t->rank, x->rank);
    for (int k = 0; k < t->rank; k++) {
        int64_t d = t->dims[k], w = x->dims[x->rank - t->rank + k];
        if (d >= 0 && d != 1 && w >= 0 && d != w)
            return ic_fail(c, "%s dim %d (%lld) does not broadcast to %lld",
                           what, k, (long long)d, (long long)w);
    }
    return 0;
}

static bool float_dtype(int64_t t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_FLOAT64;
}

/* -------------------------------------------------------- BatchNormalization
** Inputs X, scale, B, mean, var. Opset >= 14: outputs Y [, running_mean,
** running_var] when training_mode=1. Older: Y [, mean, var, saved_mean,
** saved_var] in training. Before opset 9 spatial=0 allows per-activation
** parameters of shape X.dims[1:]. */
static int infer_batchnorm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    for (int i = 0; i < 5; i++)
        if (!ic_has(c, i))
            return ic_fail(c, "BatchNormalization needs 5 inputs (input %d "
                           "missing)", i);
    for (int i = 0; i < 5; i++)
        if (ic_require_float(c, i)) return -1;
    if (c->opset < 15)
        for (int i = 1; i < 5; i++)
            if (ic_require_same_dtype(c, 0, i)) return -1;
    if (ic_require_same_dtype(c, 1, 2) || ic_require_same_dtype(c, 3, 4))
        return -1;
    if (c->opset >= 14 && c->n_out > 3)
        return ic_fail(c, "BatchNormalization-%d has at most 3 outputs",
                       c->opset);
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "BatchNormalization input must have rank >= 2, got "
                       "%d", x->rank);
    if (x->rank >= 2) {
        int64_t ch = x->dims[1];
        for (int i = 1; i < 5; i++) {
            const ir_type *t = ic_in(c, i);
            if (t->rank < 0) continue;
            bool per_act = c->opset < 9 && t->rank == x->rank - 1 && t->rank > 1;
            if (per_act) {
                for (int k = 0; k < t->rank; k++)
                    if (!dims_compatible(t->dims[k], x->dims[k + 1]))
                        return ic_fail(c, "BatchNormalization input %d shape "
                                       "does not match X", i);
            } else if (t->rank != 1 || !dims_compatible(t->dims[0], ch)) {
                return ic_fail(c, "BatchNormalization input %d must be a "
                               "vector of length C = %lld", i, (long long)ch);
            }
        }
    }
    ic_copy_type(c, 0, 0);
    for (int i = 1; i < c->n_out; i++) ic_copy_type(c, i, 3);
    return 0;
}

/* ----------------------------------------------------- InstanceNormalization */
static int infer_instancenorm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1) || !ic_has(c, 2))
        return ic_fail(c, "InstanceNormalization needs input, scale and B");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2))
        return -1;
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "InstanceNormalization input must have rank >= 2, "
                       "got %d", x->rank);
    int64_t ch = x->rank >= 2 ? x->dims[1] : -1;
    if (require_vec(c, 1, ch, "scale") || require_vec(c, 2, ch, "B"))
        return -1;
    ic_copy_type(c, 0, 0);
    return 0;
}

/* -------------------------------------------------------- LayerNormalization
** Mean and InvStdDev have X's leading dims and 1 for the normalized ones;
** their type is stash_type. */
static int infer_layernorm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1))
        return ic_fail(c, "LayerNormalization needs X and Scale");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2))
        return -1;
    int64_t stash = ir_attr_int(c->node, "stash_type", 1);
    if (!float_dtype(stash))
        return ic_fail(c, "LayerNormalization stash_type %lld is not a float "
                       "type", (long long)stash);
    int64_t axis = ir_attr_int(c->node, "axis", -1);
    ic_copy_type(c, 0, 0);
    if (x->rank < 0) {
        for (int i = 1; i < c->n_out; i++)
            ic_set_out(c, i, (kiln_dtype)stash, -1, NULL);
        return 0;
    }
    int ax;
    if (ic_axis(c, axis, x->rank, &ax)) return -1;
    if (require_bcast_to(c, 1, x, "Scale") || require_bcast_to(c, 2, x, "B"))
        return -1;
    int64_t dims[KILN_MAX_RANK];
    for (int k = 0; k < x->rank; k++) dims[k] = k < ax ? x->dims[k] : 1;
    for (int i = 1; i < c->n_out && i < 3; i++)
        ic_set_out(c, i, (kiln_dtype)stash, x->rank, dims);
    return 0;
}

/* -------------------------------------------------------- GroupNormalization
** scale and bias are per group at opset 18 and per channel from opset 21;
** both sizes are accepted (they coincide when C == num_groups). */
static int infer_groupnorm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1) || !ic_has(c, 2))
        return ic_fail(c, "GroupNormalization needs X, scale and bias");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2))
        return -1;
    if (!ir_attr_find(c->node, "num_groups"))
        return ic_fail(c, "GroupNormalization needs the num_groups attribute");
    int64_t g = ir_attr_int(c->node, "num_groups", 0);
    if (g <= 0)
        return ic_fail(c, "GroupNormalization num_groups must be positive, got "
                       "%lld", (long long)g);
    int64_t stash = ir_attr_int(c->node, "stash_type", 1);
    if (!float_dtype(stash))
        return ic_fail(c, "GroupNormalization stash_type %lld is not a float "
                       "type", (long long)stash);
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "GroupNormalization input must have rank >= 2, got "
                       "%d", x->rank);
    int64_t ch = x->rank >= 2 ? x->dims[1] : -1;
    if (ch >= 0 && ch % g)
        return ic_fail(c, "GroupNormalization: %lld channels are not divisible "
                       "into %lld groups", (long long)ch, (long long)g);
    for (int i = 1; i <= 2; i++) {
        const ir_type *t = ic_in(c, i);
        if (t->rank < 0) continue;
        int64_t d = t->rank == 1 ? t->dims[0] : -2;
        if (t->rank != 1 ||
            (d >= 0 && ch >= 0 && d != ch && (d != g || c->opset >= 21)))
            return ic_fail(c, "GroupNormalization %s must be a vector of "
                           "length %s", i == 1 ? "scale" : "bias",
                           c->opset >= 21 ? "C" : "num_groups (or C)");
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------- MeanVarianceNormalization */
static int infer_mvn(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "MeanVarianceNormalization needs X");
    if (ic_require_float(c, 0)) return -1;
    int n;
    const int64_t *axes = ir_attr_ints(c->node, "axes", &n);
    if (x->rank >= 0) {
        if (!axes && x->rank < 4)
            return ic_fail(c, "MeanVarianceNormalization default axes [0,2,3] "
                           "need rank >= 4, got %d", x->rank);
        bool used[KILN_MAX_RANK] = {false};
        for (int i = 0; axes && i < n; i++) {
            int a;
            if (ic_axis(c, axes[i], x->rank, &a)) return -1;
            if (used[a])
                return ic_fail(c, "MeanVarianceNormalization axis %lld repeated",
                               (long long)axes[i]);
            used[a] = true;
        }
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* --------------------------------------------------------------------- LRN */
static int infer_lrn(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "LRN needs X");
    if (ic_require_float(c, 0)) return -1;
    if (!ir_attr_find(c->node, "size"))
        return ic_fail(c, "LRN needs the size attribute");
    int64_t size = ir_attr_int(c->node, "size", 0);
    if (size <= 0)
        return ic_fail(c, "LRN size must be positive, got %lld",
                       (long long)size);
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "LRN input must have rank >= 2, got %d", x->rank);
    ic_copy_type(c, 0, 0);
    return 0;
}

/* -------------------------------------------------------- RMSNormalization */
static int infer_rmsnorm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1))
        return ic_fail(c, "RMSNormalization needs X and scale");
    /* X (T) and scale (V) may differ; Y takes scale's type. */
    if (ic_require_float(c, 0) || ic_require_float(c, 1)) return -1;
    int64_t stash = ir_attr_int(c->node, "stash_type", 1);
    if (!float_dtype(stash))
        return ic_fail(c, "RMSNormalization stash_type %lld is not a float "
                       "type", (long long)stash);
    if (x->rank >= 0) {
        int ax;
        if (ic_axis(c, ir_attr_int(c->node, "axis", -1), x->rank, &ax))
            return -1;
        if (require_bcast_to(c, 1, x, "scale")) return -1;
    }
    ic_copy_type(c, 0, 0);
    c->out[0]->dtype = ic_in(c, 1)->dtype;
    return 0;
}

const op_schema op_schemas_norm[] = {
    {OP_BatchNormalization, 5, 5, 1, 5, infer_batchnorm},
    {OP_InstanceNormalization, 3, 3, 1, 1, infer_instancenorm},
    {OP_LayerNormalization, 2, 3, 1, 3, infer_layernorm},
    {OP_GroupNormalization, 3, 3, 1, 1, infer_groupnorm},
    {OP_MeanVarianceNormalization, 1, 1, 1, 1, infer_mvn},
    {OP_LRN, 1, 1, 1, 1, infer_lrn},
    {OP_RMSNormalization, 2, 2, 1, 1, infer_rmsnorm},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
