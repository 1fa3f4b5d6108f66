/* ref_layout.c: reference kernels of the channels-last ops (ops/layout.h).
** The conversions are plain element copies; every NHWC op transposes its
** inputs to NCHW, runs the reference kernel of the NCHW op it computes and
** transposes the result back, so it is exactly that op (no new math) and
** any engine graph the channels-last pass made still runs on the host. */
#include "ref.h"
#include "../../ops/layout.h"

#include <string.h>

/* dst[n][h][w][c] = src[n][c][h][w] (to_nhwc) or the inverse. For to_nhwc,
** dst may have more channels than src (zero padding: dst is zero-filled). */
static void permute4(const kiln_tensor *src, kiln_tensor *dst, bool to_nhwc, size_t es) {
    const unsigned char *s = src->data;
    unsigned char *d = dst->data;
    int64_t N, C, H, W, Cd;
    if (to_nhwc) {
        N = src->dims[0], C = src->dims[1], H = src->dims[2], W = src->dims[3];
        Cd = dst->dims[3];
    } else {
        N = src->dims[0], H = src->dims[1], W = src->dims[2], C = src->dims[3];
        Cd = C;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t nchw = ((n * C + c) * H + h) * W + w;
                    int64_t nhwc = ((n * H + h) * W + w) * Cd + c;
                    if (to_nhwc) memcpy(d + nhwc * es, s + nchw * es, es);
                    else memcpy(d + nchw * es, s + nhwc * es, es);
                }
}

static int elem_size(ref_ctx *c, kiln_dtype t, size_t *es) {
    if (!dtype_nbytes(t, 1, es) || *es == 0)
        return ref_fail(c, "unsupported element type %s", kiln_dtype_name(t));
    return 0;
}

/* New tensor: t permuted (rank 4). */
static int permuted(ref_ctx *c, const kiln_tensor *t, bool to_nhwc, int64_t pad_c,
                    kiln_tensor **out) {
    *out = NULL;
    if (t->rank != 4) return ref_fail(c, "expected a rank-4 tensor, got rank %d", t->rank);
    size_t es;
    if (elem_size(c, t->dtype, &es)) return -1;
    int64_t d[4];
    if (to_nhwc) d[0] = t->dims[0], d[1] = t->dims[2], d[2] = t->dims[3], d[3] = pad_c;
    else d[0] = t->dims[0], d[1] = t->dims[3], d[2] = t->dims[1], d[3] = t->dims[2];
    if (tensor_new(t->dtype, 4, d, out)) return ref_fail(c, "%s", kiln_last_error());
    permute4(t, *out, to_nhwc, es);
    return 0;
}

static int k_to_nhwc(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank != 4) return ref_fail(c, "X must have rank 4, has %d", x->rank);
    int64_t cp = ir_attr_int(c->node, "channels", x->dims[1]);
    if (cp < x->dims[1]) return ref_fail(c, "channels %lld is less than X's %lld",
                                         (long long)cp, (long long)x->dims[1]);
    int64_t d[4] = {x->dims[0], x->dims[2], x->dims[3], cp};
    size_t es;
    if (elem_size(c, x->dtype, &es) || ref_alloc_out(c, 0, x->dtype, 4, d)) return -1;
    memset(c->out[0]->data, 0, c->out[0]->nbytes); /* the padding */
    permute4(x, c->out[0], true, es);
    return 0;
}

static int k_to_nchw(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank != 4) return ref_fail(c, "X must have rank 4, has %d", x->rank);
    int64_t d[4] = {x->dims[0], x->dims[3], x->dims[1], x->dims[2]};
    size_t es;
    if (elem_size(c, x->dtype, &es) || ref_alloc_out(c, 0, x->dtype, 4, d)) return -1;
    permute4(x, c->out[0], false, es);
    return 0;
}

/* NhwcConv / NhwcMaxPool / NhwcAveragePool / NhwcGlobalAveragePool /
** NhwcQLinearConv */
static int k_nhwc(ref_ctx *c) {
    int op = layout_nchw_op(c->node->op);
    ref_kernel_fn fn = ref_kernel_get(op);
    if (!fn) return ref_fail(c, "no reference kernel for %s", op_name(op));
    enum { MAX_IN = 9 };
    int n_in = c->n_in < MAX_IN ? c->n_in : MAX_IN;
    kiln_tensor *tmp[MAX_IN] = {NULL}, *y = NULL;
    const kiln_tensor *in[MAX_IN] = {NULL};
    int rc = -1;
    for (int i = 0; i < n_in; i++) {
        if (!ref_has(c, i)) continue;
        if (!layout_input_is_spatial(c->node->op, i)) { /* bias, scales: no layout */
            in[i] = c->in[i];
            continue;
        }
        if (permuted(c, c->in[i], false, 0, &tmp[i])) goto done;
        in[i] = tmp[i];
    }
    int64_t zero = 0;
    kiln_dtype yt = c->node->op == OP_NhwcQLinearConv && ref_has(c, 7) ? c->in[7]->dtype
                                                                      : c->in[0]->dtype;
    /* QLinearConv's kernel writes into an output of the inferred shape */
    const kiln_tensor *o = c->out[0];
    bool sized = c->node->op == OP_NhwcQLinearConv && o->rank == 4;
    int64_t yd[4] = {sized ? o->dims[0] : 0, sized ? o->dims[3] : 0, sized ? o->dims[1] : 0,
                     sized ? o->dims[2] : 0};
    if (sized ? tensor_new(yt, 4, yd, &y) : tensor_new(yt, 1, &zero, &y)) {
        ref_fail(c, "%s", kiln_last_error());
        goto done;
    }
    ir_node sn = *c->node;
    sn.op = op;
    sn.op_type = op_name(op);
    sn.domain = op == OP_FusedConv ? "kiln" : "";
    sn.n_in = n_in;
    sn.n_implicit = 0;
    sn.schema = op_schema_get(op);
    kiln_tensor *outs[1] = {y};
    ref_ctx sub;
    memset(&sub, 0, sizeof sub);
    sub.node = &sn;
    sub.opset = c->opset;
    sub.n_in = n_in;
    sub.in = in;
    sub.n_out = 1;
    sub.out = outs;
    if (fn(&sub) != 0) {
        memcpy(c->err, sub.err, sizeof c->err);
        if (!c->err[0]) ref_fail(c, "%s failed", op_name(op));
        goto done;
    }
    if (y->rank != 4) {
        ref_fail(c, "%s gave rank %d", op_name(op), y->rank);
        goto done;
    }
    size_t es;
    if (elem_size(c, y->dtype, &es)) goto done;
    if (op == OP_GlobalAveragePool) { /* [N,C,1,1] is written as is */
        if (ref_alloc_out(c, 0, y->dtype, 4, y->dims)) goto done;
        if (y->nbytes) memcpy(c->out[0]->data, y->data, y->nbytes);
    } else {
        int64_t d[4] = {y->dims[0], y->dims[2], y->dims[3], y->dims[1]};
        if (ref_alloc_out(c, 0, y->dtype, 4, d)) goto done;
        permute4(y, c->out[0], true, es);
    }
    rc = 0;
done:
    for (int i = 0; i < MAX_IN; i++) tensor_free(tmp[i]);
    tensor_free(y);
    return rc;
}

const ref_kernel ref_kernels_layout[] = {
    {OP_ToNhwc, k_to_nhwc},
    {OP_ToNchw, k_to_nchw},
    {OP_NhwcConv, k_nhwc},
    {OP_NhwcMaxPool, k_nhwc},
    {OP_NhwcAveragePool, k_nhwc},
    {OP_NhwcGlobalAveragePool, k_nhwc},
    {OP_NhwcQLinearConv, k_nhwc},
    {OP_NONE, NULL},
};
