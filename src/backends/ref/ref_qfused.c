/* ref_qfused.c: reference kernels of the internal quantized ops
** (ops/qfused.c). QAdd follows the float32 steps of the DequantizeLinear,
** Add and QuantizeLinear reference kernels it replaces, so the fused graph
** computes bit for bit what the unfused one does; QLayerNormalization runs
** the reference LayerNormalization, then QuantizeLinear's steps. */
#include "ref.h"

#include <math.h>
#include <stdio.h>

static int ref_qadd(ref_ctx *c) {
    const kiln_tensor *a = c->in[0], *b = c->in[3];
    kiln_tensor *y = c->out[0];
    for (int i = 1; i < 8; i++)
        if (i != 3 && tensor_numel(c->in[i]) != 1)
            return ref_fail(c, "scales and zero points must be scalars");
    int64_t n = tensor_numel(a);
    if (tensor_numel(b) != n || tensor_numel(y) != n)
        return ref_fail(c, "A and B must have the same shape");
    float sa = (float)dt_get_f64(c->in[1]->dtype, c->in[1]->data, 0);
    float za = (float)dt_get_i64(c->in[2]->dtype, c->in[2]->data, 0);
    float sb = (float)dt_get_f64(c->in[4]->dtype, c->in[4]->data, 0);
    float zb = (float)dt_get_i64(c->in[5]->dtype, c->in[5]->data, 0);
    float sy = (float)dt_get_f64(c->in[6]->dtype, c->in[6]->data, 0);
    double zy = (double)dt_get_i64(c->in[7]->dtype, c->in[7]->data, 0);
    double lo = y->dtype == KILN_DTYPE_INT8 ? -128 : 0, hi = lo + 255;
    for (int64_t i = 0; i < n; i++) {
        float av = ((float)dt_get_i64(a->dtype, a->data, (size_t)i) - za) * sa;
        float bv = ((float)dt_get_i64(b->dtype, b->data, (size_t)i) - zb) * sb;
        float q = (av + bv) / sy;
        double r = nearbyint((double)q) + zy;
        r = r < lo ? lo : r > hi ? hi : r;
        dt_set_i64(y->dtype, y->data, (size_t)i, (int64_t)r);
    }
    return 0;
}

/* QLayerNormalization (ops/qfused.c): the reference LayerNormalization into
** X's type, then the reference QuantizeLinear's float32 steps. */
static int ref_qln(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (!ref_has(c, 3) || !ref_has(c, 4) || tensor_numel(c->in[3]) != 1 ||
        tensor_numel(c->in[4]) != 1)
        return ref_fail(c, "y_scale and y_zero_point must be scalars");
    if (tensor_numel(y) != tensor_numel(x)) return ref_fail(c, "output size differs from X's");
    kiln_tensor *t;
    if (tensor_new(x->dtype, x->rank, x->dims, &t)) return ref_fail(c, "out of memory");
    ref_ctx s = *c;
    kiln_tensor *o[1] = {t};
    s.n_in = 3;
    s.n_out = 1;
    s.out = o;
    s.err[0] = 0;
    if (ref_kernel_get(OP_LayerNormalization)(&s)) {
        snprintf(c->err, sizeof c->err, "%s", s.err);
        tensor_free(t);
        return -1;
    }
    float ys = (float)dt_get_f64(c->in[3]->dtype, c->in[3]->data, 0);
    double yz = (double)dt_get_i64(c->in[4]->dtype, c->in[4]->data, 0);
    double lo = y->dtype == KILN_DTYPE_INT8 ? -128 : 0, hi = lo + 255;
    for (int64_t i = 0; i < tensor_numel(x); i++) {
        float v = (float)dt_get_f64(t->dtype, t->data, (size_t)i);
        double q = nearbyint((double)(v / ys)) + yz;
        q = q < lo ? lo : q > hi ? hi : q;
        dt_set_i64(y->dtype, y->data, (size_t)i, q == q ? (int64_t)q : (int64_t)lo);
    }
    tensor_free(t);
    return 0;
}

const ref_kernel ref_kernels_qfused[] = {
    {OP_QAdd, ref_qadd},
    {OP_QLayerNormalization, ref_qln},
    {OP_NONE, NULL},
};
