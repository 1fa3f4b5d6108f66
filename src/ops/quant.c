/* quant.c: schemas and shape inference for the quantization ops
** (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
** ConvInteger, QLinearConv, QLinearMatMul), and Kiln's internal
** MatMulIntegerToFloat (passes/qdyn.c): inputs A, B, a_zero_point,
** b_zero_point (optional, as MatMulInteger's), scale (float32, one value or
** one per column N of the output), bias (optional, float32, one per
** column). Computes exactly what MatMulInteger -> Cast(float32) ->
** Mul(scale) [-> Add(bias)] computes: y = (float)acc * scale[n] (+ bias[n]),
** each step rounded to float32. ConvIntegerToFloat: the same for
** ConvInteger (inputs x, w, x_zero_point, w_zero_point, scale, bias; 2-D
** only), scale and bias with one value or one per output channel (in
** order, any shape: unlike the Mul it replaces, no broadcasting). */
#include "op.h"

static bool is_q8(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8;
}

static bool is_fp8(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT8E4M3FN || t == KILN_DTYPE_FLOAT8E4M3FNUZ ||
           t == KILN_DTYPE_FLOAT8E5M2 || t == KILN_DTYPE_FLOAT8E5M2FNUZ;
}

/* Element types QuantizeLinear may produce (and DequantizeLinear read,
** plus int32). */
static bool is_quant_type(kiln_dtype t) {
    return is_q8(t) || t == KILN_DTYPE_INT16 || t == KILN_DTYPE_UINT16 ||
           t == KILN_DTYPE_INT4 || t == KILN_DTYPE_UINT4 || is_fp8(t) ||
           t == KILN_DTYPE_INT2 || t == KILN_DTYPE_UINT2 ||
           t == KILN_DTYPE_FLOAT4E2M1;
}

static bool is_scale_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16;
}

/* a, b >= 0, b > 0; no overflow for any block size */
static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* Checks scale (and zero point) shapes against x for the three
** granularities (per-tensor, per-axis, blocked). Static analysis checks
** what is concrete. */
static int check_qparams(infer_ctx *c, int xi, int si, int zi) {
    const ir_type *x = ic_in(c, xi), *s = ic_in(c, si), *z = ic_in(c, zi);
    int64_t bs = ir_attr_int(c->node, "block_size", 0);
    if (bs < 0) return ic_fail(c, "block_size must be >= 0, got %lld", (long long)bs);
    if (!x || !s || x->rank < 0 || s->rank < 0) return 0;
    if (z && z->rank >= 0) {
        /* Same shape, except that rank 0 and [1] are interchangeable. */
        bool same = z->rank == s->rank;
        for (int k = 0; same && k < s->rank; k++)
            if (z->dims[k] >= 0 && s->dims[k] >= 0 && z->dims[k] != s->dims[k])
                same = false;
        bool scalars = (s->rank == 0 || (s->rank == 1 && s->dims[0] == 1)) &&
                       (z->rank == 0 || (z->rank == 1 && z->dims[0] == 1));
        if (!same && !scalars)
            return ic_fail(c, "zero point and scale shapes differ");
    }
    bool one = true;
    for (int k = 0; k < s->rank; k++)
        if (s->dims[k] != 1) one = false;
    if (one) return 0; /* per-tensor */
    int axis;
    if (x->rank == 0)
        return ic_fail(c, "a scale with several elements needs a non-scalar input");
    if (ic_axis(c, ir_attr_int(c->node, "axis", 1), x->rank, &axis)) return -1;
    if (bs == 0) {
        if (s->rank != 1)
            return ic_fail(c, "scale must be a scalar or 1-D without block_size, "
                              "got rank %d", s->rank);
        if (s->dims[0] >= 0 && x->dims[axis] >= 0 && s->dims[0] != x->dims[axis])
            return ic_fail(c, "scale has %lld elements but input axis %d has %lld",
                           (long long)s->dims[0], axis, (long long)x->dims[axis]);
        return 0;
    }
    if (s->rank != x->rank)
        return ic_fail(c, "blocked scale must have the input's rank %d, got %d",
                       x->rank, s->rank);
    for (int k = 0; k < x->rank; k++) {
        int64_t xd = x->dims[k], sd = s->dims[k];
        if (xd < 0 || sd < 0) continue;
        int64_t want = k == axis ? ceil_div(xd, bs) : xd;
        if (sd != want)
            return ic_fail(c, "blocked scale dim %d is %lld, expected %lld", k,
                           (long long)sd, (long long)want);
    }
    return 0;
}

static int infer_quantize(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *s = ic_in(c, 1), *z = ic_in(c, 2);
    if (!x || !s) return ic_fail(c, "inputs x and y_scale are required");
    if (x->dtype != KILN_DTYPE_UNDEFINED && !is_scale_float(x->dtype) &&
        x->dtype != KILN_DTYPE_INT32)
        return ic_fail(c, "x must be float, float16, bfloat16 or int32, got %s",
                       kiln_dtype_name(x->dtype));
    if (s->dtype != KILN_DTYPE_UNDEFINED && !is_scale_float(s->dtype) &&
        s->dtype != KILN_DTYPE_INT32)
        return ic_fail(c, "y_scale must be float, float16, bfloat16 or int32, "
                          "got %s", kiln_dtype_name(s->dtype));
    int64_t od = ir_attr_int(c->node, "output_dtype", 0);
    kiln_dtype out = KILN_DTYPE_UINT8;
    if (z) {
        out = z->dtype;
        if (od && z->dtype != KILN_DTYPE_UNDEFINED && od != (int64_t)z->dtype)
            return ic_fail(c, "output_dtype %lld differs from y_zero_point's %s",
                           (long long)od, kiln_dtype_name(z->dtype));
    } else if (od) {
        if (!dtype_is_valid((int)KILN_MIN(od, 1000)))
            return ic_fail(c, "unknown output_dtype %lld", (long long)od);
        out = (kiln_dtype)od;
    }
    if (out != KILN_DTYPE_UNDEFINED && !is_quant_type(out))
        return ic_fail(c, "cannot quantize to %s", kiln_dtype_name(out));
    int64_t prec = ir_attr_int(c->node, "precision", 0);
    if (prec && prec != KILN_DTYPE_FLOAT32 && prec != KILN_DTYPE_FLOAT16 &&
        prec != KILN_DTYPE_BFLOAT16 && prec != KILN_DTYPE_FLOAT64)
        return ic_fail(c, "unsupported precision %lld", (long long)prec);
    if (check_qparams(c, 0, 1, 2)) return -1;
    ic_set_out(c, 0, out, x->rank, x->dims);
    return 0;
}

static int infer_dequantize(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *s = ic_in(c, 1);
    if (!x || !s) return ic_fail(c, "inputs x and x_scale are required");
    if (x->dtype != KILN_DTYPE_UNDEFINED && !is_quant_type(x->dtype) &&
        x->dtype != KILN_DTYPE_INT32)
        return ic_fail(c, "cannot dequantize %s", kiln_dtype_name(x->dtype));
    if (s->dtype != KILN_DTYPE_UNDEFINED && !is_scale_float(s->dtype))
        return ic_fail(c, "x_scale must be float, float16 or bfloat16, got %s",
                       kiln_dtype_name(s->dtype));
    const ir_type *z = ic_in(c, 2);
    if (z && z->dtype != KILN_DTYPE_UNDEFINED && x->dtype != KILN_DTYPE_UNDEFINED &&
        z->dtype != x->dtype)
        return ic_fail(c, "x_zero_point must have x's type %s, got %s",
                       kiln_dtype_name(x->dtype), kiln_dtype_name(z->dtype));
    int64_t od = ir_attr_int(c->node, "output_dtype", 0);
    kiln_dtype out = s->dtype;
    if (od) {
        if (od != KILN_DTYPE_FLOAT32 && od != KILN_DTYPE_FLOAT16 &&
            od != KILN_DTYPE_BFLOAT16)
            return ic_fail(c, "output_dtype must be a float type, got %lld",
                           (long long)od);
        out = (kiln_dtype)od;
    }
    if (check_qparams(c, 0, 1, 2)) return -1;
    ic_set_out(c, 0, out, x->rank, x->dims);
    return 0;
}

static int infer_dynquant(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "input x is required");
    if (x->dtype != KILN_DTYPE_UNDEFINED && x->dtype != KILN_DTYPE_FLOAT32)
        return ic_fail(c, "x must be float32, got %s", kiln_dtype_name(x->dtype));
    ic_set_out(c, 0, KILN_DTYPE_UINT8, x->rank, x->dims);
    ic_set_out(c, 1, KILN_DTYPE_FLOAT32, 0, NULL);
    ic_set_out(c, 2, KILN_DTYPE_UINT8, 0, NULL);
    return 0;
}

/* numpy matmul output shape (1-D operands promoted), symbolic-aware. */
static int matmul_shape(infer_ctx *c, const ir_type *a, const ir_type *b,
                        kiln_dtype dt) {
    if (a->rank < 0 || b->rank < 0) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    if (a->rank == 0 || b->rank == 0)
        return ic_fail(c, "matmul operands must have rank >= 1");
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return ic_fail(c, "matmul inner dims differ: %lld vs %lld", (long long)ka,
                       (long long)kb);
    ir_type ba = *a, bb = *b, bo;
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    if (ic_broadcast(c, &ba, &bb, &bo)) return -1;
    int64_t d[KILN_MAX_RANK + 2];
    int r = bo.rank;
    memcpy(d, bo.dims, (size_t)r * sizeof *d);
    if (a->rank >= 2) d[r++] = a->dims[a->rank - 2];
    if (b->rank >= 2) d[r++] = b->dims[b->rank - 1];
    if (r > KILN_MAX_RANK) return ic_fail(c, "result rank too large");
    ic_set_out(c, 0, dt, r, d);
    return 0;
}

static int require_q8(infer_ctx *c, int i, const char *name) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->dtype == KILN_DTYPE_UNDEFINED || is_q8(t->dtype)) return 0;
    return ic_fail(c, "%s must be int8 or uint8, got %s", name,
                   kiln_dtype_name(t->dtype));
}

static int infer_matmulint(infer_ctx *c) {
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1);
    if (!a || !b) return ic_fail(c, "inputs A and B are required");
    if (require_q8(c, 0, "A") || require_q8(c, 1, "B") ||
        ic_require_same_dtype(c, 0, 2) || ic_require_same_dtype(c, 1, 3))
        return -1;
    return matmul_shape(c, a, b, KILN_DTYPE_INT32);
}

/* Numel of a column vector input (scale, bias) of a product with n
** columns: 1 or n elements, every dim 1 but the last. -1: not one. */
static int64_t column_vec_len(const ir_type *t, int64_t n) {
    if (t->rank < 0) return -1;
    int64_t len = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        if (i < t->rank - 1 && t->dims[i] != 1) return -1;
        len *= t->dims[i];
    }
    return len == 1 || (n >= 0 && len == n) ? len : -1;
}

static int infer_matmulint_f(infer_ctx *c) {
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1);
    if (!a || !b || !ic_has(c, 4)) return ic_fail(c, "inputs A, B and scale are required");
    if (require_q8(c, 0, "A") || require_q8(c, 1, "B") ||
        ic_require_same_dtype(c, 0, 2) || ic_require_same_dtype(c, 1, 3))
        return -1;
    int64_t n = b->rank >= 1 ? b->dims[b->rank - 1] : -1;
    for (int i = 4; i <= 5; i++) {
        if (!ic_has(c, i)) continue;
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_FLOAT32)
            return ic_fail(c, "%s must be float32, got %s", i == 4 ? "scale" : "bias",
                           kiln_dtype_name(t->dtype));
        if (t->rank >= 0 && n >= 0 && column_vec_len(t, n) < 0)
            return ic_fail(c, "%s must hold 1 or %lld values along the last dim",
                           i == 4 ? "scale" : "bias", (long long)n);
    }
    return matmul_shape(c, a, b, KILN_DTYPE_FLOAT32);
}

static int infer_qlinearmatmul(infer_ctx *c) {
    for (int i = 0; i < 8; i++)
        if (!ic_has(c, i)) return ic_fail(c, "input %d is required", i);
    if (require_q8(c, 0, "a") || require_q8(c, 3, "b") || require_q8(c, 7, "y_zero_point") ||
        ic_require_same_dtype(c, 0, 2) || ic_require_same_dtype(c, 3, 5))
        return -1;
    for (int i = 1; i <= 6; i += (i == 1 ? 3 : 2)) {
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && !is_scale_float(t->dtype))
            return ic_fail(c, "scale input %d must be a float type, got %s", i,
                           kiln_dtype_name(t->dtype));
    }
    return matmul_shape(c, ic_in(c, 0), ic_in(c, 3), ic_in(c, 7)->dtype);
}

/* Conv output shape for x [N, C, D...] and w [M, C/group, k...]. */
static int conv_shape(infer_ctx *c, int xi, int wi, kiln_dtype dt) {
    const ir_node *n = c->node;
    const ir_type *x = ic_in(c, xi), *w = ic_in(c, wi);
    if (x->rank >= 0 && x->rank < 3)
        return ic_fail(c, "x must have rank >= 3, got %d", x->rank);
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return ic_fail(c, "w rank %d differs from x rank %d", w->rank, x->rank);
    int r = x->rank >= 0 ? x->rank : w->rank;
    if (r < 0) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    if (r < 3) return ic_fail(c, "w must have rank >= 3, got %d", r);
    int ns = r - 2, nk = 0, np = 0, nst = 0, ndl = 0;
    const int64_t *ks = ir_attr_ints(n, "kernel_shape", &nk);
    const int64_t *pads = ir_attr_ints(n, "pads", &np);
    const int64_t *st = ir_attr_ints(n, "strides", &nst);
    const int64_t *dl = ir_attr_ints(n, "dilations", &ndl);
    int64_t group = ir_attr_int(n, "group", 1);
    const char *ap = ir_attr_str(n, "auto_pad", "NOTSET");
    if ((ks && nk != ns) || (pads && np != 2 * ns) || (st && nst != ns) ||
        (dl && ndl != ns))
        return ic_fail(c, "kernel_shape/pads/strides/dilations lengths do not "
                          "match %d spatial dims", ns);
    if (group < 1) return ic_fail(c, "group must be >= 1");
    bool same_u = strcmp(ap, "SAME_UPPER") == 0, same_l = strcmp(ap, "SAME_LOWER") == 0;
    bool valid = strcmp(ap, "VALID") == 0;
    if (!same_u && !same_l && !valid && strcmp(ap, "NOTSET") != 0)
        return ic_fail(c, "unknown auto_pad '%s'", ap);
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t wcg = -1;
    if (w->rank >= 0 && w->dims[1] >= 0 &&
        ic_dim_mul(c, w->dims[1], group, &wcg, "w channels x group"))
        return -1;
    if (cin >= 0 && wcg >= 0 && cin != wcg)
        return ic_fail(c, "x has %lld channels but w expects %lld x %lld groups",
                       (long long)cin, (long long)w->dims[1], (long long)group);
    if (w->rank >= 0 && w->dims[0] >= 0 && w->dims[0] % group)
        return ic_fail(c, "output channels %lld not divisible by group %lld",
                       (long long)w->dims[0], (long long)group);
    int64_t d[KILN_MAX_RANK];
    d[0] = x->rank >= 0 ? x->dims[0] : ic_new_sym(c);
    d[1] = w->rank >= 0 && w->dims[0] >= 0 ? w->dims[0] : ic_new_sym(c);
    for (int i = 0; i < ns; i++) {
        int64_t k = ks ? ks[i] : (w->rank >= 0 ? w->dims[2 + i] : -1);
        int64_t s = st ? st[i] : 1, dil = dl ? dl[i] : 1;
        /* bounds keep the size arithmetic below far from overflow */
        const int64_t lim = (int64_t)1 << 31;
        if (s < 1 || dil < 1 || s > lim || dil > lim)
            return ic_fail(c, "strides and dilations must be in [1, 2^31]");
        if (k > lim || (pads && (pads[i] > lim || pads[i + ns] > lim)))
            return ic_fail(c, "kernel_shape or pads too large");
        if (ks && k < 1) return ic_fail(c, "kernel_shape must be >= 1");
        if (ks && w->rank >= 0 && w->dims[2 + i] >= 0 && w->dims[2 + i] != k)
            return ic_fail(c, "kernel_shape does not match w");
        int64_t in = x->rank >= 0 ? x->dims[2 + i] : -1;
        if (pads && (pads[i] < 0 || pads[i + ns] < 0))
            return ic_fail(c, "pads must be >= 0");
        if (in > ((int64_t)1 << 60)) return ic_fail(c, "spatial dim too large");
        if (in < 0 || k < 0) {
            d[2 + i] = ic_new_sym(c);
            continue;
        }
        int64_t ek = (k - 1) * dil + 1, o;
        if (same_u || same_l) o = ceil_div(in, s);
        else if (valid) o = in >= ek ? (in - ek) / s + 1 : 0;
        else {
            int64_t tot = in + (pads ? pads[i] + pads[i + ns] : 0);
            o = tot >= ek ? (tot - ek) / s + 1 : 0;
        }
        if (!valid && !same_u && !same_l && in + (pads ? pads[i] + pads[i + ns] : 0) < ek)
            return ic_fail(c, "kernel larger than padded input on spatial dim %d", i);
        d[2 + i] = o;
    }
    ic_set_out(c, 0, dt, r, d);
    return 0;
}

static int infer_convint(infer_ctx *c) {
    if (!ic_has(c, 0) || !ic_has(c, 1)) return ic_fail(c, "inputs x and w are required");
    if (require_q8(c, 0, "x") || require_q8(c, 1, "w") ||
        ic_require_same_dtype(c, 0, 2) || ic_require_same_dtype(c, 1, 3))
        return -1;
    return conv_shape(c, 0, 1, KILN_DTYPE_INT32);
}

/* Numel of a per-channel input (scale, bias) of ConvIntegerToFloat: the
** values in order, one or one per output channel m, whatever the shape
** (the qdyn pass checked the broadcast before folding). -1: not one. */
static int64_t channel_vec_len(const ir_type *t, int64_t m) {
    if (t->rank < 0) return -1;
    int64_t len = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        len *= t->dims[i];
    }
    return len == 1 || (m >= 0 && len == m) ? len : -1;
}

static int infer_convint_f(infer_ctx *c) {
    if (!ic_has(c, 0) || !ic_has(c, 1) || !ic_has(c, 4))
        return ic_fail(c, "inputs x, w and scale are required");
    if (require_q8(c, 0, "x") || require_q8(c, 1, "w") ||
        ic_require_same_dtype(c, 0, 2) || ic_require_same_dtype(c, 1, 3))
        return -1;
    const ir_type *w = ic_in(c, 1);
    int64_t m = w->rank >= 1 ? w->dims[0] : -1;
    for (int i = 4; i <= 5; i++) {
        if (!ic_has(c, i)) continue;
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_FLOAT32)
            return ic_fail(c, "%s must be float32, got %s", i == 4 ? "scale" : "bias",
                           kiln_dtype_name(t->dtype));
        if (t->rank >= 0 && m >= 0 && channel_vec_len(t, m) < 0)
            return ic_fail(c, "%s must hold 1 or %lld values (one per output channel)",
                           i == 4 ? "scale" : "bias", (long long)m);
    }
    return conv_shape(c, 0, 1, KILN_DTYPE_FLOAT32);
}

static int infer_qlinearconv(infer_ctx *c) {
    for (int i = 0; i < 8; i++)
        if (!ic_has(c, i)) return ic_fail(c, "input %d is required", i);
    if (require_q8(c, 0, "x") || require_q8(c, 3, "w") ||
        require_q8(c, 7, "y_zero_point") || ic_require_same_dtype(c, 0, 2) ||
        ic_require_same_dtype(c, 3, 5))
        return -1;
    const ir_type *b = ic_in(c, 8);
    if (b && b->dtype != KILN_DTYPE_UNDEFINED && b->dtype != KILN_DTYPE_INT32)
        return ic_fail(c, "B must be int32, got %s", kiln_dtype_name(b->dtype));
    if (ic_require_rank(c, 8, 1)) return -1;
    for (int i = 1; i <= 6; i += (i == 1 ? 3 : 2)) {
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_FLOAT32)
            return ic_fail(c, "scale input %d must be float32, got %s", i,
                           kiln_dtype_name(t->dtype));
    }
    return conv_shape(c, 0, 3, ic_in(c, 7)->dtype);
}

const op_schema op_schemas_quant[] = {
    {OP_QuantizeLinear, 2, 3, 1, 1, infer_quantize},
    {OP_DequantizeLinear, 2, 3, 1, 1, infer_dequantize},
    {OP_DynamicQuantizeLinear, 1, 1, 3, 3, infer_dynquant},
    {OP_MatMulInteger, 2, 4, 1, 1, infer_matmulint},
    {OP_MatMulIntegerToFloat, 5, 6, 1, 1, infer_matmulint_f},
    {OP_ConvInteger, 2, 4, 1, 1, infer_convint},
    {OP_ConvIntegerToFloat, 5, 6, 1, 1, infer_convint_f},
    {OP_QLinearConv, 8, 9, 1, 1, infer_qlinearconv},
    {OP_QLinearMatMul, 8, 8, 1, 1, infer_qlinearmatmul},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
