/* qfused.c: schemas of Kiln's internal quantized ops (domain "kiln"),
** made by the qdq pass (passes/qdq.c) from QuantizeLinear/DequantizeLinear
** patterns:
** QAdd: inputs A, A_scale, A_zero_point, B, B_scale, B_zero_point, Y_scale,
**   Y_zero_point (scales float32 scalars, zero points scalars of their
**   tensor's 8-bit type; A and B of one shape). Computes exactly what
**   QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B)) computes in
**   float32: a = (A - za) * sa, b = (B - zb) * sb, s = a + b, then
**   Y = saturate(nearbyint(s / sy) + zy). Y has Y_zero_point's type. */
#include "op.h"

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

const op_schema op_schemas_qfused[] = {
    {OP_QAdd, 8, 8, 1, 1, infer_qadd},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
