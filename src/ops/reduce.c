/* reduce.c: schemas and shape inference for the reductions (Reduce*) and
** ArgMax/ArgMin. Axes come from an attribute in older opsets and from an
** optional input later (opset 13 for ReduceSum, 18 for the others); both
** forms are accepted whenever present. */
#include "op.h"

static bool is_minmax(int op) { return op == OP_ReduceMax || op == OP_ReduceMin; }

static int check_dtype(infer_ctx *c, kiln_dtype t, bool allow_bool) {
    if (t == KILN_DTYPE_UNDEFINED) return 0;
    bool ok = (dtype_is_numeric(t) && t != KILN_DTYPE_INT4 &&
               t != KILN_DTYPE_UINT4 && t != KILN_DTYPE_FLOAT4E2M1 &&
               t != KILN_DTYPE_INT2 && t != KILN_DTYPE_UINT2) ||
              (allow_bool && t == KILN_DTYPE_BOOL);
    if (!ok)
        return ic_fail(c, "unsupported input type %s", kiln_dtype_name(t));
    return 0;
}

static int infer_reduce(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (check_dtype(c, in->dtype, is_minmax(c->node->op))) return -1;
    bool keep = ir_attr_int(c->node, "keepdims", 1) != 0;
    bool noop = ir_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    int64_t ax[KILN_MAX_RANK + 1];
    int na;
    if (ic_has(c, 1)) {
        const ir_type *at = ic_in(c, 1);
        if (at->dtype != KILN_DTYPE_UNDEFINED && at->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "axes input must be int64, got %s",
                           kiln_dtype_name(at->dtype));
        if (at->rank > 1)
            return ic_fail(c, "axes input must be 1-D, got rank %d", at->rank);
        na = ic_int_values(c, 1, ax, KILN_MAX_RANK + 1);
        /* symbolic contents cannot be axes we can trust */
        if (na > 0 && !ic_const(c, 1))
            for (int k = 0; k < na; k++)
                if (ax[k] < 0) na = -1;
        if (na < 0 && ic_const(c, 1))
            return ic_fail(c, "axes must be a 1-D int64 list of at most %d "
                           "entries", KILN_MAX_RANK);
        if (na < 0) { /* axes not known statically */
            if (in->rank < 0) {
                ic_set_out(c, 0, in->dtype, -1, NULL);
            } else if (keep) {
                int64_t od[KILN_MAX_RANK];
                for (int i = 0; i < in->rank; i++)
                    od[i] = in->dims[i] == 1 ? 1 : ic_new_sym(c);
                ic_set_out(c, 0, in->dtype, in->rank, od);
            } else if (at->rank == 1 && at->dims[0] > 0 &&
                       at->dims[0] <= in->rank) {
                ic_set_out(c, 0, in->dtype, in->rank - (int)at->dims[0], NULL);
            } else {
                ic_set_out(c, 0, in->dtype, -1, NULL);
            }
            return 0;
        }
    } else {
        int n;
        const int64_t *a = ir_attr_ints(c->node, "axes", &n);
        if (n > KILN_MAX_RANK) return ic_fail(c, "too many axes (%d)", n);
        if (n) memcpy(ax, a, (size_t)n * sizeof *ax);
        na = n;
    }
    if (in->rank < 0) {
        ic_set_out(c, 0, in->dtype, -1, NULL);
        return 0;
    }
    int r = in->rank;
    if (na > r) return ic_fail(c, "%d axes given for rank %d", na, r);
    bool red[KILN_MAX_RANK] = {false};
    if (na == 0) {
        if (noop) { /* reduction over no axis: same shape */
            ic_copy_type(c, 0, 0);
            return 0;
        }
        for (int i = 0; i < r; i++) red[i] = true;
    }
    for (int k = 0; k < na; k++) {
        int a;
        if (ic_axis(c, ax[k], r, &a)) return -1;
        if (red[a]) return ic_fail(c, "axis %d appears more than once", a);
        red[a] = true;
    }
    int64_t od[KILN_MAX_RANK];
    int o = 0;
    for (int i = 0; i < r; i++) {
        if (!red[i]) od[o++] = in->dims[i];
        else if (keep) od[o++] = 1;
    }
    ic_set_out(c, 0, in->dtype, o, od);
    return 0;
}

static int infer_arg(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (check_dtype(c, in->dtype, false)) return -1;
    bool keep = ir_attr_int(c->node, "keepdims", 1) != 0;
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    int64_t slast = ir_attr_int(c->node, "select_last_index", 0);
    if (slast != 0 && slast != 1)
        return ic_fail(c, "select_last_index must be 0 or 1");
    if (in->rank < 0) {
        ic_set_out(c, 0, KILN_DTYPE_INT64, -1, NULL);
        return 0;
    }
    int r = in->rank, a;
    if (r == 0) return ic_fail(c, "input must have rank >= 1");
    if (ic_axis(c, axis, r, &a)) return -1;
    if (in->dims[a] == 0) {
        bool empty = false;
        for (int i = 0; i < r; i++) empty |= i != a && in->dims[i] == 0;
        if (!empty) return ic_fail(c, "cannot take an index over an empty axis");
    }
    int64_t od[KILN_MAX_RANK];
    int o = 0;
    for (int i = 0; i < r; i++) {
        if (i != a) od[o++] = in->dims[i];
        else if (keep) od[o++] = 1;
    }
    ic_set_out(c, 0, KILN_DTYPE_INT64, o, od);
    return 0;
}

const op_schema op_schemas_reduce[] = {
    {OP_ReduceSum, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceMean, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceMax, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceMin, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceProd, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceL1, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceL2, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceLogSum, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceLogSumExp, 1, 2, 1, 1, infer_reduce},
    {OP_ReduceSumSquare, 1, 2, 1, 1, infer_reduce},
    {OP_ArgMax, 1, 1, 1, 1, infer_arg},
    {OP_ArgMin, 1, 1, 1, 1, infer_arg},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
