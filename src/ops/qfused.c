/* qfused.c: schemas of Kiln's internal quantized ops (domain "kiln"),
** made by the qdq pass (passes/qdq.c) from QuantizeLinear/DequantizeLinear
** patterns:
** QAdd: inputs A, A_scale, A_zero_point, B, B_scale, B_zero_point, Y_scale,
**   Y_zero_point (scales float32 scalars, zero points scalars of their
**   tensor's 8-bit type; A and B of one shape). Computes exactly what
**   QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B)) computes in
**   float32: a = (A - za) * sa, b = (B - zb) * sb, s = a + b, then
**   Y = saturate(nearbyint(s / sy) + zy). Y has Y_zero_point's type.
** QFusedGemm: an 8-bit matrix product with its epilogue (passes/qdq.c makes it
**   from DQ -> MatMul/Gemm, passes/qepi.c folds the bias, residual,
**   activation and output quantization that follow). Inputs:
**     0 A [..., K] (int8/uint8), 1 B [N, K] (int8/uint8; each output
**       column's K weights contiguous, as integer tensor cores read them),
**     2 a_zero_point (scalar of A's type), 3 b_zero_point (1 or N values of
**       B's type), as MatMulInteger's (absent: 0);
**     4 scale (float32, 1 or N values: a_scale * b_scale[n]),
**     5 bias (float32, 1 or N values; optional),
**     6 R, the residual (optional): A's leading dims by N, float32 (or the
**       output's float type), or int8/uint8 read through 7 r_scale (float32
**       scalar) and 8 r_zero_point (scalar of R's type, absent 0);
**     9 y_scale (float32 scalar), 10 y_zero_point (scalar, int8 or uint8):
**       present, Y is quantized to y_zero_point's type.
**   Attributes: the activation of FusedGemm (fused.h), output_dtype
**   (float16 / bfloat16 / float32: the float output's type, default
**   float32; precision.c sets it when every reader computes in half).
**   Computes, per output element, in float32 steps in this order:
**     v = (float)acc * scale[n]; v = v + bias[n]; v = v + r; v = act(v)
**   with acc the int32 sum of (A - a_zp)(B - b_zp) over K (as
**   MatMulInteger, wrapping) and r = R, or ((float)R - r_zp) * r_scale for
**   an 8-bit R (DequantizeLinear's steps); then Y = v rounded to the output
**   type, or saturate(nearbyint(v / y_scale) + y_zp) (QuantizeLinear's
**   steps). So it is bit for bit the MatMulIntegerToFloat -> Add(bias) ->
**   Add(R or DequantizeLinear(R)) -> activation -> QuantizeLinear chain it
**   replaces.
** QLayerNormalization: inputs X, Scale, B (optional), y_scale (float32
**   scalar), y_zero_point (int8 or uint8 scalar); LayerNormalization's axis
**   and epsilon. Y = QuantizeLinear(LayerNormalization(X, Scale, B), y_scale,
**   y_zero_point): the normalization's output rounded to X's type, then
**   QuantizeLinear's steps (x / y_scale in float32, round half to even, plus
**   the zero point, saturated). passes/qepi.c makes it where a LayerNorm's
**   only reader is its QuantizeLinear (a BERT layer: the next products and
**   the residual read the 8-bit value). */
#include "fused.h"

static bool is_q8(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8;
}

static int infer_qadd(infer_ctx *c) {
    for (int i = 0; i < 8; i++)
        if (!ic_has(c, i)) return ic_fail(c, "input %d is required", i);
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 3), *yz = ic_in(c, 7);
    static const int q8[4] = {0, 3, 7, 2};
    for (int k = 0; k < 4; k++) {
        kiln_dtype t = ic_in(c, q8[k])->dtype;
        if (t != KILN_DTYPE_UNDEFINED && !is_q8(t))
            return ic_fail(c, "input %d must be int8 or uint8, got %s", q8[k],
                           kiln_dtype_name(t));
    }
    static const int sc[3] = {1, 4, 6};
    for (int k = 0; k < 3; k++) {
        kiln_dtype t = ic_in(c, sc[k])->dtype;
        if (t != KILN_DTYPE_UNDEFINED && t != KILN_DTYPE_FLOAT32)
            return ic_fail(c, "scale input %d must be float32", sc[k]);
    }
    if (a->rank >= 0 && b->rank >= 0) {
        bool same = a->rank == b->rank;
        for (int i = 0; same && i < a->rank; i++)
            same = a->dims[i] < 0 || b->dims[i] < 0 || a->dims[i] == b->dims[i];
        if (!same) return ic_fail(c, "A and B must have the same shape");
    }
    const ir_type *s = a->rank >= 0 ? a : b;
    ic_set_out(c, 0, yz->dtype, s->rank, s->rank > 0 ? s->dims : NULL);
    return 0;
}

static bool is_float_t(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* 1 or n elements, every dim 1 but the last (n < 0: unknown). */
static bool col_vec(const ir_type *t, int64_t n) {
    if (t->rank < 0) return true;
    int64_t len = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return true;
        if (i < t->rank - 1 && t->dims[i] != 1) return false;
        len *= t->dims[i];
    }
    return len == 1 || n < 0 || len == n;
}

static int infer_qfgemm(infer_ctx *c) {
    if (!ic_has(c, 0) || !ic_has(c, 1) || !ic_has(c, 4))
        return ic_fail(c, "inputs A, B and scale are required");
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1);
    static const int q8[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        kiln_dtype t = ic_in(c, q8[k])->dtype;
        if (t != KILN_DTYPE_UNDEFINED && !is_q8(t))
            return ic_fail(c, "input %d must be int8 or uint8, got %s", q8[k],
                           kiln_dtype_name(t));
    }
    if ((ic_has(c, 2) && ic_require_same_dtype(c, 0, 2)) ||
        (ic_has(c, 3) && ic_require_same_dtype(c, 1, 3)))
        return -1;
    if (b->rank >= 0 && b->rank != 2) return ic_fail(c, "B must have rank 2");
    if (a->rank >= 0 && a->rank < 2) return ic_fail(c, "A must have rank >= 2");
    int64_t K = b->rank == 2 ? b->dims[1] : -1, N = b->rank == 2 ? b->dims[0] : -1;
    if (a->rank >= 2 && K >= 0 && a->dims[a->rank - 1] >= 0 && a->dims[a->rank - 1] != K)
        return ic_fail(c, "A's last dim %lld differs from B's columns %lld",
                       (long long)a->dims[a->rank - 1], (long long)K);
    for (int i = 4; i <= 5; i++) {
        if (!ic_has(c, i)) continue;
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_FLOAT32)
            return ic_fail(c, "%s must be float32", i == 4 ? "scale" : "bias");
        if (!col_vec(t, N))
            return ic_fail(c, "%s must hold 1 or %lld values along the last dim",
                           i == 4 ? "scale" : "bias", (long long)N);
    }
    bool r8 = ic_has(c, 6) && is_q8(ic_in(c, 6)->dtype);
    if (r8 && !ic_has(c, 7)) return ic_fail(c, "an 8-bit residual needs r_scale");
    if (ic_has(c, 6) && !r8 && ic_in(c, 6)->dtype != KILN_DTYPE_UNDEFINED &&
        !is_float_t(ic_in(c, 6)->dtype))
        return ic_fail(c, "the residual must be a float or 8-bit tensor");
    if (ic_has(c, 8) && ic_has(c, 6) && ic_require_same_dtype(c, 6, 8)) return -1;
    if (ic_has(c, 9) != ic_has(c, 10))
        return ic_fail(c, "y_scale and y_zero_point come together");
    kiln_dtype yt = KILN_DTYPE_FLOAT32;
    if (ic_has(c, 10)) {
        yt = ic_in(c, 10)->dtype;
        if (yt != KILN_DTYPE_UNDEFINED && !is_q8(yt))
            return ic_fail(c, "y_zero_point must be int8 or uint8");
    } else {
        int64_t od = ir_attr_int(c->node, "output_dtype", KILN_DTYPE_FLOAT32);
        if (!is_float_t((kiln_dtype)od)) return ic_fail(c, "output_dtype must be a float type");
        yt = (kiln_dtype)od;
    }
    fused_act act;
    char err[128];
    if (!fused_act_read(c->node, &act, err, sizeof err)) return ic_fail(c, "%s", err);
    if (a->rank < 0) {
        ic_set_out(c, 0, yt, -1, NULL);
        return 0;
    }
    int64_t d[KILN_MAX_RANK];
    memcpy(d, a->dims, (size_t)a->rank * sizeof *d);
    d[a->rank - 1] = N;
    if (ic_has(c, 6)) {
        const ir_type *r = ic_in(c, 6);
        bool same = r->rank < 0 || r->rank == a->rank;
        for (int i = 0; same && r->rank >= 0 && i < r->rank; i++)
            same = r->dims[i] < 0 || d[i] < 0 || r->dims[i] == d[i];
        if (!same) return ic_fail(c, "the residual must have the output's shape");
    }
    ic_set_out(c, 0, yt, a->rank, d);
    return 0;
}

static int infer_qln(infer_ctx *c) {
    if (!ic_has(c, 0) || !ic_has(c, 1) || !ic_has(c, 3) || !ic_has(c, 4))
        return ic_fail(c, "inputs X, Scale, y_scale and y_zero_point are required");
    const ir_type *x = ic_in(c, 0);
    if (x->dtype != KILN_DTYPE_UNDEFINED && !is_float_t(x->dtype))
        return ic_fail(c, "X must be a float tensor");
    if (ic_in(c, 3)->dtype != KILN_DTYPE_UNDEFINED && ic_in(c, 3)->dtype != KILN_DTYPE_FLOAT32)
        return ic_fail(c, "y_scale must be float32");
    kiln_dtype yt = ic_in(c, 4)->dtype;
    if (yt != KILN_DTYPE_UNDEFINED && !is_q8(yt))
        return ic_fail(c, "y_zero_point must be int8 or uint8");
    ic_set_out(c, 0, yt, x->rank, x->rank > 0 ? x->dims : NULL);
    return 0;
}

const op_schema op_schemas_qfused[] = {
    {OP_QLayerNormalization, 5, 5, 1, 1, infer_qln},
    {OP_QAdd, 8, 8, 1, 1, infer_qadd},
    {OP_QFusedGemm, 5, 11, 1, 1, infer_qfgemm},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
