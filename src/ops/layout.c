/* layout.c: schemas and shape inference of the channels-last ops
** (semantics in layout.h). Each NHWC op infers through the schema of the
** NCHW op it computes, on its inputs' types permuted to NCHW, so the two
** can never disagree on windows, pads or checks. */
#include "layout.h"

#include <string.h>

int layout_nchw_op(int op) {
    switch (op) {
    case OP_NhwcConv: return OP_FusedConv;
    case OP_NhwcMaxPool: return OP_MaxPool;
    case OP_NhwcAveragePool: return OP_AveragePool;
    case OP_NhwcGlobalAveragePool: return OP_GlobalAveragePool;
    case OP_NhwcQLinearConv: return OP_QLinearConv;
    default: return OP_NONE;
    }
}

bool layout_is_nhwc_op(int op) {
    return layout_nchw_op(op) != OP_NONE || op == OP_ToNhwc || op == OP_ToNchw;
}

bool layout_input_is_spatial(int op, int k) {
    switch (op) {
    case OP_NhwcConv: return k != 2;        /* X, W, Z; not B */
    case OP_NhwcQLinearConv: return k == 0 || k == 3; /* X, W */
    default: return k == 0;
    }
}

const char *layout_of_node(const ir_node *n) {
    int op = n->op;
    if (op == OP_ToNhwc) return "NCHW>NHWC";
    if (op == OP_ToNchw) return "NHWC>NCHW";
    if (layout_nchw_op(op) != OP_NONE) return "NHWC";
    return strcmp(ir_attr_str(n, "kiln_layout", ""), "NHWC") == 0 ? "NHWC" : "";
}

/* t (rank 4 or unknown) with its dims permuted: to_nchw moves the last dim
** to position 1, else position 1 to the last. */
static ir_type permuted(const ir_type *t, bool to_nchw) {
    ir_type r = *t;
    if (t->rank != 4) return r;
    if (to_nchw) {
        r.dims[1] = t->dims[3], r.dims[2] = t->dims[1], r.dims[3] = t->dims[2];
    } else {
        r.dims[1] = t->dims[2], r.dims[2] = t->dims[3], r.dims[3] = t->dims[1];
    }
    return r;
}

static int infer_to_nhwc(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "ToNhwc needs X");
    if (x->rank >= 0 && x->rank != 4) return ic_fail(c, "X must have rank 4, has %d", x->rank);
    ir_type y = permuted(x, false);
    int64_t cp = ir_attr_int(c->node, "channels", -1);
    if (cp != -1) {
        if (cp < 1 || cp > ((int64_t)1 << 30))
            return ic_fail(c, "channels must be positive, got %lld", (long long)cp);
        if (x->rank == 4 && x->dims[1] >= 0 && x->dims[1] > cp)
            return ic_fail(c, "channels %lld is less than X's %lld", (long long)cp,
                           (long long)x->dims[1]);
        if (x->rank == 4) y.dims[3] = cp;
    }
    ic_set_out(c, 0, x->dtype, y.rank, y.rank > 0 ? y.dims : NULL);
    return 0;
}

static int infer_to_nchw(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "ToNchw needs X");
    if (x->rank >= 0 && x->rank != 4) return ic_fail(c, "X must have rank 4, has %d", x->rank);
    ir_type y = permuted(x, true);
    ic_set_out(c, 0, x->dtype, y.rank, y.rank > 0 ? y.dims : NULL);
    return 0;
}

/* The NHWC op through its NCHW schema. X, W and Z are permuted to NCHW
** (KRSC weights to KCRS), B, scales and zero points pass as they are. */
static int infer_nhwc(infer_ctx *c) {
    int op = layout_nchw_op(c->node->op);
    const op_schema *s = op_schema_get(op);
    if (!s || !s->infer) return ic_fail(c, "%s is not available", op_name(op));
    if (c->n_out != 1) return ic_fail(c, "%s has one output", op_name(c->node->op));
    enum { MAX_IN = 9 };
    ir_type tin[MAX_IN];
    const ir_type *pin[MAX_IN] = {NULL};
    const kiln_tensor *cv[MAX_IN] = {NULL};
    const int64_t *sv[MAX_IN] = {NULL};
    int sl[MAX_IN] = {0};
    int n_in = c->n_in < MAX_IN ? c->n_in : MAX_IN;
    for (int i = 0; i < n_in; i++) {
        const ir_type *t = ic_in(c, i);
        if (!t) continue;
        bool spatial = layout_input_is_spatial(c->node->op, i);
        if (spatial && t->rank >= 0 && t->rank != 4)
            return ic_fail(c, "input %d must have rank 4, has %d", i, t->rank);
        tin[i] = spatial ? permuted(t, true) : *t;
        pin[i] = &tin[i];
    }
    ir_node sn = *c->node;
    sn.op = op;
    sn.op_type = op_name(op);
    sn.domain = "";
    sn.schema = s;
    sn.n_in = n_in;
    ir_type y = *c->out[0];
    ir_type *pout[1] = {&y};
    infer_ctx sub = *c;
    sub.node = &sn;
    sub.n_in = n_in;
    sub.in = pin;
    sub.cval = cv;
    sub.sval = sv;
    sub.slen = sl;
    sub.n_out = 1;
    sub.out = pout;
    sub.out_sval = NULL;
    sub.out_slen = NULL;
    sub.err[0] = 0;
    if (s->infer(&sub)) {
        memcpy(c->err, sub.err, sizeof c->err);
        return -1;
    }
    if (y.rank >= 0 && y.rank != 4) return ic_fail(c, "the output must have rank 4");
    /* GlobalAveragePool's [N,C,1,1] is written as is (layout-free) */
    ir_type o = op == OP_GlobalAveragePool ? y : permuted(&y, false);
    ic_set_out(c, 0, o.dtype, o.rank, o.rank > 0 ? o.dims : NULL);
    return 0;
}

const op_schema op_schemas_layout[] = {
    {OP_ToNhwc, 1, 1, 1, 1, infer_to_nhwc},
    {OP_ToNchw, 1, 1, 1, 1, infer_to_nchw},
    {OP_NhwcConv, 2, 4, 1, 1, infer_nhwc},
    {OP_NhwcMaxPool, 1, 1, 1, 1, infer_nhwc},
    {OP_NhwcAveragePool, 1, 1, 1, 1, infer_nhwc},
    {OP_NhwcGlobalAveragePool, 1, 1, 1, 1, infer_nhwc},
    {OP_NhwcQLinearConv, 8, 9, 1, 1, infer_nhwc},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
