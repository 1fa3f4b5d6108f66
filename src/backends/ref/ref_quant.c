/* ref_quant.c: reference kernels for the quantization ops. Semantics follow
** the ONNX reference: division by the scale in the scale's precision,
** round half to even, saturate to the target range; integer matmul/conv
** accumulate exactly and requantize in double. */
#include "ref.h"
#include "../../ops/fused.h"

#include <math.h>

/* ------------------------------------------------------------ helpers */

static bool is_fp8(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT8E4M3FN || t == KILN_DTYPE_FLOAT8E4M3FNUZ ||
           t == KILN_DTYPE_FLOAT8E5M2 || t == KILN_DTYPE_FLOAT8E5M2FNUZ;
}

/* Saturation range of an integer quantized type. */
static void int_range(kiln_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case KILN_DTYPE_INT8: *lo = -128; *hi = 127; break;
    case KILN_DTYPE_UINT8: *lo = 0; *hi = 255; break;
    case KILN_DTYPE_INT16: *lo = -32768; *hi = 32767; break;
    case KILN_DTYPE_UINT16: *lo = 0; *hi = 65535; break;
    case KILN_DTYPE_INT4: *lo = -8; *hi = 7; break;
    case KILN_DTYPE_UINT4: *lo = 0; *hi = 15; break;
    case KILN_DTYPE_INT2: *lo = -2; *hi = 1; break;
    case KILN_DTYPE_UINT2: *lo = 0; *hi = 3; break;
    default: *lo = INT32_MIN; *hi = INT32_MAX; break;
    }
}

/* Rounds v to the nearest value of float type t (f16/bf16/f32/f64). */
static double round_to(kiln_dtype t, double v) {
    switch (t) {
    case KILN_DTYPE_FLOAT16:
        /* Half subnormals are multiples of 2^-24: round on that grid here
        ** (scaling by a power of two is exact), normals via the helper. */
        if (fabs(v) < 6.103515625e-05)
            return nearbyint((double)(float)v * 16777216.0) / 16777216.0;
        return f16_to_f32(f32_to_f16((float)v));
    case KILN_DTYPE_BFLOAT16: return bf16_to_f32(f32_to_bf16((float)v));
    case KILN_DTYPE_FLOAT64: return v;
    default: return (float)v;
    }
}

/* Half-to-even rounding, then clamping to [lo, hi]; NaN gives 0. */
static int64_t round_sat(double v, int64_t lo, int64_t hi) {
    if (v != v) return 0;
    double r = nearbyint(v);
    if (r <= (double)lo) return lo;
    if (r >= (double)hi) return hi;
    return (int64_t)r;
}

/* Maps a flat element index of x to the index of its scale / zero point
** for the three granularities. */
typedef struct qmap {
    int mode; /* 0 per-tensor, 1 per-axis, 2 blocked */
    int64_t dim, inner, sdim, block;
} qmap;

static int64_t qmap_index(const qmap *m, int64_t i) {
    if (m->mode == 0) return 0;
    int64_t in = i % m->inner, rest = i / m->inner, d = rest % m->dim;
    if (m->mode == 1) return d;
    return ((rest / m->dim) * m->sdim + d / m->block) * m->inner + in;
}

static int qmap_init(ref_ctx *c, qmap *m, const kiln_tensor *x,
                     const kiln_tensor *s, const kiln_tensor *z) {
    memset(m, 0, sizeof *m);
    int64_t ns = tensor_numel(s);
    if (z && tensor_numel(z) != ns)
        return ref_fail(c, "zero point has %lld elements, scale has %lld",
                        (long long)tensor_numel(z), (long long)ns);
    if (ns == 1) return 0;
    int64_t axis = ir_attr_int(c->node, "axis", 1);
    int64_t bs = ir_attr_int(c->node, "block_size", 0);
    if (x->rank == 0 || axis < -x->rank || axis >= x->rank)
        return ref_fail(c, "axis %lld is out of range for rank %d", (long long)axis,
                        x->rank);
    int a = (int)(axis < 0 ? axis + x->rank : axis);
    m->dim = x->dims[a];
    m->inner = shape_numel(x->rank - a - 1, x->dims + a + 1);
    if (bs <= 0) {
        if (s->rank != 1 || s->dims[0] != m->dim)
            return ref_fail(c, "per-axis scale must be 1-D of length %lld",
                            (long long)m->dim);
        m->mode = 1;
        return 0;
    }
    if (s->rank != x->rank)
        return ref_fail(c, "blocked scale must have rank %d", x->rank);
    for (int k = 0; k < x->rank; k++) {
        int64_t want = k == a ? x->dims[k] / bs + (x->dims[k] % bs != 0) : x->dims[k];
        if (s->dims[k] != want)
            return ref_fail(c, "blocked scale dim %d is %lld, expected %lld", k,
                            (long long)s->dims[k], (long long)want);
    }
    m->mode = 2;
    m->sdim = s->dims[a];
    m->block = bs;
    return 0;
}

/* Reads every element of an optional tensor as double (NULL if absent). */
static double *to_f64(ref_ctx *c, const kiln_tensor *t, bool *err) {
    if (!t) return NULL;
    int64_t n = tensor_numel(t);
    double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) {
        *err = true;
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) p[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    return p;
}

/* --------------------------------------------------- QuantizeLinear */

static int ref_quantize(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *s = c->in[1];
    const kiln_tensor *z = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    qmap m;
    if (qmap_init(c, &m, x, s, z)) return -1;
    /* Precision of x / scale: the precision attribute, else numpy's
    ** promotion of the two types (int32 with anything gives double). */
    kiln_dtype prec = (kiln_dtype)ir_attr_int(c->node, "precision", 0);
    if (!prec) {
        if (x->dtype == s->dtype)
            prec = x->dtype == KILN_DTYPE_INT32 ? KILN_DTYPE_FLOAT64 : x->dtype;
        else if (x->dtype == KILN_DTYPE_INT32 || s->dtype == KILN_DTYPE_INT32)
            prec = KILN_DTYPE_FLOAT64;
        else
            prec = KILN_DTYPE_FLOAT32;
    }
    bool saturate = ir_attr_int(c->node, "saturate", 1) != 0;
    bool err = false;
    double *sv = to_f64(c, s, &err), *zv = to_f64(c, z, &err);
    if (err) {
        free(sv); free(zv);
        return ref_fail(c, "out of memory");
    }
    int64_t n = tensor_numel(x), lo, hi;
    kiln_dtype ot = y->dtype;
    int_range(ot, &lo, &hi);
    bool fx = x->dtype == KILN_DTYPE_FLOAT32;
    for (int64_t i = 0; i < n; i++) {
        int64_t si = qmap_index(&m, i);
        double xv = fx ? ((const float *)x->data)[i] : dt_get_f64(x->dtype, x->data, (size_t)i);
        double q;
        if (prec == KILN_DTYPE_FLOAT64) q = xv / sv[si];
        else q = round_to(prec, (float)round_to(prec, xv) / (float)round_to(prec, sv[si]));
        double zp = zv ? zv[si] : 0.0;
        if (is_fp8(ot)) {
            ((uint8_t *)y->data)[i] = f32_to_fp8(ot, (float)(q + zp), saturate);
        } else if (ot == KILN_DTYPE_FLOAT4E2M1) {
            dt_set_f64(ot, y->data, (size_t)i, (float)(q + zp));
        } else {
            /* rint first, then the zero point: the order matters at .5 */
            double r = nearbyint(q);
            dt_set_i64(ot, y->data, (size_t)i, round_sat(r + zp, lo, hi));
        }
    }
    free(sv); free(zv);
    return 0;
}

/* ------------------------------------------------- DequantizeLinear */

static int ref_dequantize(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *s = c->in[1];
    const kiln_tensor *z = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    qmap m;
    if (qmap_init(c, &m, x, s, z)) return -1;
    bool err = false;
    double *sv = to_f64(c, s, &err), *zv = to_f64(c, z, &err);
    if (err) {
        free(sv); free(zv);
        return ref_fail(c, "out of memory");
    }
    int64_t n = tensor_numel(x);
    bool fy = y->dtype == KILN_DTYPE_FLOAT32;
    for (int64_t i = 0; i < n; i++) {
        int64_t si = qmap_index(&m, i);
        /* float32 arithmetic, as the reference does */
        float dx = (float)dt_get_f64(x->dtype, x->data, (size_t)i);
        if (zv) dx -= (float)zv[si];
        float v = dx * (float)sv[si];
        if (fy) ((float *)y->data)[i] = v;
        else dt_set_f64(y->dtype, y->data, (size_t)i, v);
    }
    free(sv); free(zv);
    return 0;
}

/* --------------------------------------------- DynamicQuantizeLinear */

static int ref_dynquant(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    const float *xv = x->data;
    int64_t n = tensor_numel(x);
    float mx = 0.0f, mn = 0.0f; /* the range always includes 0 */
    for (int64_t i = 0; i < n; i++) {
        if (xv[i] > mx) mx = xv[i];
        if (xv[i] < mn) mn = xv[i];
    }
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float izp = 0.0f - mn / scale;
    float zp = izp < 0 ? 0.0f : izp > 255 ? 255.0f : izp;
    float zpi = nearbyintf(zp);
    uint8_t *y = c->out[0]->data;
    for (int64_t i = 0; i < n; i++)
        y[i] = (uint8_t)round_sat((double)(nearbyintf(xv[i] / scale) + zpi), 0, 255);
    *(float *)c->out[1]->data = scale;
    *(uint8_t *)c->out[2]->data = (uint8_t)round_sat(zpi, 0, 255); /* NaN-safe */
    return 0;
}

/* -------------------------------------------------- integer matmul */

/* Copies t into int32 with its zero point subtracted. The zero point is a
** scalar, a 1-D per-row (A side: length M) or per-column (B side: length
** N) vector, or any shape that broadcasts to t's. */
static int32_t *sub_zero_point(ref_ctx *c, const kiln_tensor *t,
                               const kiln_tensor *zp, bool a_side,
                               const char *name) {
    int64_t n = tensor_numel(t);
    int32_t *o = malloc((size_t)(n > 0 ? n : 1) * sizeof *o);
    if (!o) {
        ref_fail(c, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        o[i] = (int32_t)dt_get_i64(t->dtype, t->data, (size_t)i);
    if (!zp) return o;
    int64_t nz = tensor_numel(zp);
    if (nz == 1) {
        int32_t z = (int32_t)dt_get_i64(zp->dtype, zp->data, 0);
        for (int64_t i = 0; i < n; i++) o[i] -= z;
        return o;
    }
    int zr = zp->rank;
    int64_t zd[KILN_MAX_RANK];
    memcpy(zd, zp->dims, sizeof zd);
    if (zr == 1 && a_side && t->rank >= 2) { /* per-row: [M] -> [M, 1] */
        zr = 2;
        zd[1] = 1;
    }
    int rr;
    int64_t rd[KILN_MAX_RANK + 1];
    if (zr > t->rank || !shape_broadcast(zr, zd, t->rank, t->dims, &rr, rd) ||
        !shape_equal(rr, rd, t->rank, t->dims)) {
        free(o);
        ref_fail(c, "%s does not fit its input's shape", name);
        return NULL;
    }
    int64_t st[KILN_MAX_RANK];
    const int64_t *sp[1] = {st};
    bcast_strides(zr, zd, t->rank, st);
    bcast_iter it;
    bcast_iter_init(&it, t->rank, t->dims, 1, sp);
    for (int64_t i = 0; i < n; i++, bcast_iter_next(&it))
        o[i] -= (int32_t)dt_get_i64(zp->dtype, zp->data, (size_t)it.off[0]);
    return o;
}

/* Batched int32 matmul with numpy broadcasting into out (the node's output
** shape). Sums are exact in int64 and wrap to int32 like numpy's. */
static bool bmm_i32(const int32_t *a, const kiln_tensor *ta, const int32_t *b,
                    const kiln_tensor *tb, const kiln_tensor *out, int32_t *o) {
    int ra = ta->rank, rb = tb->rank;
    int64_t M = ra >= 2 ? ta->dims[ra - 2] : 1, K = ta->dims[ra - 1];
    int64_t N = rb >= 2 ? tb->dims[rb - 1] : 1;
    int nb = out->rank - (ra >= 2) - (rb >= 2); /* batch rank */
    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK];
    bcast_strides(ra > 2 ? ra - 2 : 0, ta->dims, nb, sa);
    bcast_strides(rb > 2 ? rb - 2 : 0, tb->dims, nb, sb);
    const int64_t *sp[2] = {sa, sb};
    bcast_iter it;
    bcast_iter_init(&it, nb, out->dims, 2, sp);
    int64_t nbatch = shape_numel(nb, out->dims);
    int64_t acc_n = N > 0 ? N : 1;
    int64_t *acc = malloc((size_t)acc_n * sizeof *acc);
    if (!acc) return false;
    for (int64_t bi = 0; bi < nbatch; bi++, bcast_iter_next(&it)) {
        const int32_t *A = a + it.off[0] * M * K, *B = b + it.off[1] * K * N;
        int32_t *C = o + bi * M * N;
        for (int64_t i = 0; i < M; i++) {
            memset(acc, 0, (size_t)acc_n * sizeof *acc);
            for (int64_t k = 0; k < K; k++) {
                int64_t av = A[i * K + k];
                const int32_t *br = B + k * N;
                if (av == 0) continue;
                for (int64_t j = 0; j < N; j++) acc[j] += av * br[j];
            }
            for (int64_t j = 0; j < N; j++) C[i * N + j] = (int32_t)(uint32_t)acc[j];
        }
    }
    free(acc);
    return true;
}

static int matmul_operands(ref_ctx *c, int ai, int azi, int bi, int bzi,
                           int32_t **a, int32_t **b, int32_t **out) {
    const kiln_tensor *ta = c->in[ai], *tb = c->in[bi];
    int64_t K = ta->dims[ta->rank - 1];
    int64_t Kb = tb->rank >= 2 ? tb->dims[tb->rank - 2] : tb->dims[0];
    if (K != Kb)
        return ref_fail(c, "inner dims differ: %lld vs %lld", (long long)K, (long long)Kb);
    *a = sub_zero_point(c, ta, ref_has(c, azi) ? c->in[azi] : NULL, true, "A zero point");
    if (!*a) return -1;
    *b = sub_zero_point(c, tb, ref_has(c, bzi) ? c->in[bzi] : NULL, false, "B zero point");
    if (!*b) {
        free(*a);
        return -1;
    }
    int64_t n = tensor_numel(c->out[0]);
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out) {
        free(*a);
        free(*b);
        return ref_fail(c, "out of memory");
    }
    return 0;
}

static int ref_matmulint(ref_ctx *c) {
    int32_t *a, *b, *o;
    if (matmul_operands(c, 0, 2, 1, 3, &a, &b, &o)) return -1;
    bool ok = bmm_i32(a, c->in[0], b, c->in[1], c->out[0], o);
    int64_t n = tensor_numel(c->out[0]);
    if (ok && n) memcpy(c->out[0]->data, o, (size_t)n * sizeof *o);
    free(a); free(b); free(o);
    return ok ? 0 : ref_fail(c, "out of memory");
}

/* MatMulIntegerToFloat (ops/quant.c): the int32 product, then per column
** n: (float)acc * scale[n] (+ bias[n]), each a float32 operation. */
static int ref_matmulint_f(ref_ctx *c) {
    const kiln_tensor *s = c->in[4], *bias = ref_has(c, 5) ? c->in[5] : NULL;
    kiln_tensor *y = c->out[0];
    int64_t N = y->rank >= 1 ? y->dims[y->rank - 1] : 1, ns = tensor_numel(s);
    int64_t nb = bias ? tensor_numel(bias) : 0;
    if (s->dtype != KILN_DTYPE_FLOAT32 || (ns != 1 && ns != N) ||
        (bias && (bias->dtype != KILN_DTYPE_FLOAT32 || (nb != 1 && nb != N))))
        return ref_fail(c, "scale and bias must be float32 with 1 or %lld values", (long long)N);
    int32_t *a, *b, *o;
    if (matmul_operands(c, 0, 2, 1, 3, &a, &b, &o)) return -1;
    bool ok = bmm_i32(a, c->in[0], b, c->in[1], y, o);
    int64_t n = tensor_numel(y);
    const float *sv = s->data, *bv = bias ? bias->data : NULL;
    float *yv = y->data;
    for (int64_t i = 0; ok && i < n; i++) {
        int64_t col = N > 0 ? i % N : 0;
        float v = (float)o[i] * sv[ns == 1 ? 0 : col];
        yv[i] = bv ? v + bv[nb == 1 ? 0 : col] : v;
    }
    free(a); free(b); free(o);
    return ok ? 0 : ref_fail(c, "out of memory");
}

/* QFusedGemm (ops/qfused.c): the int32 product of A [rows, K] and B [N, K]
** (zero points subtracted, summed in int64, wrapped to 32 bits as
** MatMulInteger's), then MatMulIntegerToFloat's float32 steps, the residual
** (DequantizeLinear's steps for an 8-bit one), the activation and the
** output (QuantizeLinear's steps, or a rounding to the float type), each as
** the node it replaces computes it. */
static int ref_qfused_gemm(ref_ctx *c) {
    const kiln_tensor *A = c->in[0], *B = c->in[1];
    const kiln_tensor *s = c->in[4], *bias = ref_has(c, 5) ? c->in[5] : NULL;
    const kiln_tensor *r = ref_has(c, 6) ? c->in[6] : NULL;
    const kiln_tensor *az = ref_has(c, 2) ? c->in[2] : NULL, *bz = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *y = c->out[0];
    if (B->rank != 2 || A->rank < 1 || A->dims[A->rank - 1] != B->dims[1])
        return ref_fail(c, "A [..., K] and B [N, K] do not match");
    int64_t N = B->dims[0], K = B->dims[1], ns = tensor_numel(s);
    int64_t nb = bias ? tensor_numel(bias) : 0, n = tensor_numel(y);
    int64_t rows = K > 0 ? tensor_numel(A) / K : 0;
    if (rows * N != n) return ref_fail(c, "output size does not match the inputs");
    if (s->dtype != KILN_DTYPE_FLOAT32 || (ns != 1 && ns != N) ||
        (bias && (bias->dtype != KILN_DTYPE_FLOAT32 || (nb != 1 && nb != N))))
        return ref_fail(c, "scale and bias must be float32 with 1 or %lld values", (long long)N);
    int64_t nbz = bz ? tensor_numel(bz) : 0;
    if ((az && tensor_numel(az) != 1) || (bz && nbz != 1 && nbz != N))
        return ref_fail(c, "zero points: one for A, 1 or %lld for B", (long long)N);
    bool r8 = r && (r->dtype == KILN_DTYPE_INT8 || r->dtype == KILN_DTYPE_UINT8);
    float rs = 1.0f, rz = 0.0f;
    if (r && tensor_numel(r) != n) return ref_fail(c, "the residual must have the output's shape");
    if (r8) {
        if (!ref_has(c, 7) || tensor_numel(c->in[7]) != 1 ||
            (ref_has(c, 8) && tensor_numel(c->in[8]) != 1))
            return ref_fail(c, "an 8-bit residual needs a scalar r_scale and r_zero_point");
        rs = (float)dt_get_f64(c->in[7]->dtype, c->in[7]->data, 0);
        rz = ref_has(c, 8) ? (float)dt_get_i64(c->in[8]->dtype, c->in[8]->data, 0) : 0.0f;
    }
    bool quant = ref_has(c, 9);
    float ys = 1.0f;
    double yz = 0, lo = 0, hi = 0;
    if (quant) {
        if (!ref_has(c, 10) || tensor_numel(c->in[9]) != 1 || tensor_numel(c->in[10]) != 1)
            return ref_fail(c, "y_scale and y_zero_point must be scalars");
        ys = (float)dt_get_f64(c->in[9]->dtype, c->in[9]->data, 0);
        yz = (double)dt_get_i64(c->in[10]->dtype, c->in[10]->data, 0);
        lo = y->dtype == KILN_DTYPE_INT8 ? -128 : 0, hi = lo + 255;
    }
    fused_act act;
    if (!fused_act_read(c->node, &act, c->err, sizeof c->err)) return -1;
    int64_t azv = az ? dt_get_i64(az->dtype, az->data, 0) : 0;
    const float *sv = s->data, *bv = bias ? bias->data : NULL;
    for (int64_t m = 0; m < rows; m++)
        for (int64_t col = 0; col < N; col++) {
            int64_t bzv = bz ? dt_get_i64(bz->dtype, bz->data, (size_t)(nbz == 1 ? 0 : col)) : 0;
            int64_t acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (dt_get_i64(A->dtype, A->data, (size_t)(m * K + k)) - azv) *
                       (dt_get_i64(B->dtype, B->data, (size_t)(col * K + k)) - bzv);
            int64_t i = m * N + col;
            float v = (float)(int32_t)(uint32_t)(uint64_t)acc * sv[ns == 1 ? 0 : col];
            if (bv) v = v + bv[nb == 1 ? 0 : col];
            if (r8) v = v + ((float)dt_get_i64(r->dtype, r->data, (size_t)i) - rz) * rs;
            else if (r) v = v + (float)dt_get_f64(r->dtype, r->data, (size_t)i);
            v = fused_act_f32(&act, v);
            if (quant) {
                double q = nearbyint((double)(v / ys)) + yz;
                q = q < lo ? lo : q > hi ? hi : q;
                dt_set_i64(y->dtype, y->data, (size_t)i, q == q ? (int64_t)q : (int64_t)lo);
            } else {
                dt_set_f64(y->dtype, y->data, (size_t)i, (double)v);
            }
        }
    return 0;
}

/* Requantization multiplier a_scale * b_scale / y_scale evaluated in the
** scales' own precision, as the reference does with numpy arrays. */
static double requant_mult(kiln_dtype st, double as, double bs, double ys) {
    return round_to(st, round_to(st, round_to(st, as) * round_to(st, bs)) /
                            round_to(st, ys));
}

/* Scale values of a QLinearMatMul operand: a scalar, or 1-D of length len
** (per-row for a, per-column for b). */
static int scale_vec(ref_ctx *c, int i, int64_t len, const char *name,
                     double *out_scalar, double **out_vec) {
    const kiln_tensor *t = c->in[i];
    int64_t n = tensor_numel(t);
    *out_vec = NULL;
    if (n == 1) {
        *out_scalar = dt_get_f64(t->dtype, t->data, 0);
        return 0;
    }
    if (t->rank != 1 || n != len)
        return ref_fail(c, "%s must be a scalar or have %lld elements", name,
                        (long long)len);
    bool err = false;
    *out_vec = to_f64(c, t, &err);
    return err ? ref_fail(c, "out of memory") : 0;
}

static int ref_qlinearmatmul(ref_ctx *c) {
    const kiln_tensor *ta = c->in[0], *tb = c->in[3], *yz = c->in[7];
    kiln_tensor *y = c->out[0];
    if (tensor_numel(c->in[6]) != 1 || tensor_numel(yz) != 1)
        return ref_fail(c, "y_scale and y_zero_point must be scalars");
    int64_t M = ta->rank >= 2 ? ta->dims[ta->rank - 2] : 1;
    int64_t N = tb->rank >= 2 ? tb->dims[tb->rank - 1] : 1;
    double as = 0, bs = 0, *av = NULL, *bv = NULL;
    if (scale_vec(c, 1, M, "a_scale", &as, &av)) return -1;
    if (scale_vec(c, 4, N, "b_scale", &bs, &bv)) {
        free(av);
        return -1;
    }
    int32_t *a, *b, *o;
    if (matmul_operands(c, 0, 2, 3, 5, &a, &b, &o)) {
        free(av); free(bv);
        return -1;
    }
    if (!bmm_i32(a, ta, b, tb, y, o)) {
        free(a); free(b); free(o); free(av); free(bv);
        return ref_fail(c, "out of memory");
    }
    kiln_dtype st = c->in[1]->dtype;
    double ys = dt_get_f64(c->in[6]->dtype, c->in[6]->data, 0);
    double zp = (double)dt_get_i64(yz->dtype, yz->data, 0);
    int64_t lo, hi, n = tensor_numel(y);
    int_range(y->dtype, &lo, &hi);
    for (int64_t i = 0; i < n; i++) {
        int64_t col = i % (N ? N : 1), row = (i / (N ? N : 1)) % (M ? M : 1);
        double mult = requant_mult(st, av ? av[row] : as, bv ? bv[col] : bs, ys);
        dt_set_i64(y->dtype, y->data, (size_t)i, round_sat(o[i] * mult + zp, lo, hi));
    }
    free(a); free(b); free(o); free(av); free(bv);
    return 0;
}

/* ----------------------------------------------------- integer conv */

typedef struct conv_geom {
    int ns;                       /* spatial dims */
    int64_t n, cin, m, group;
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK], k[KILN_MAX_RANK];
    int64_t stride[KILN_MAX_RANK], dil[KILN_MAX_RANK], pad[KILN_MAX_RANK];
} conv_geom;

static int conv_geom_init(ref_ctx *c, const kiln_tensor *x, const kiln_tensor *w,
                          const kiln_tensor *y, conv_geom *g) {
    const ir_node *nd = c->node;
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || w->rank != x->rank)
        return ref_fail(c, "x and w must have the same rank >= 3");
    g->ns = x->rank - 2;
    g->n = x->dims[0];
    g->cin = x->dims[1];
    g->m = w->dims[0];
    g->group = ir_attr_int(nd, "group", 1);
    if (g->group < 1 || g->m % g->group || w->dims[1] * g->group != g->cin)
        return ref_fail(c, "channels do not match group %lld", (long long)g->group);
    int np = 0, nst = 0, ndl = 0;
    const int64_t *pads = ir_attr_ints(nd, "pads", &np);
    const int64_t *st = ir_attr_ints(nd, "strides", &nst);
    const int64_t *dl = ir_attr_ints(nd, "dilations", &ndl);
    const char *ap = ir_attr_str(nd, "auto_pad", "NOTSET");
    bool same_u = strcmp(ap, "SAME_UPPER") == 0, same_l = strcmp(ap, "SAME_LOWER") == 0;
    for (int i = 0; i < g->ns; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        g->out[i] = y->dims[2 + i];
        g->stride[i] = st && nst == g->ns ? st[i] : 1;
        g->dil[i] = dl && ndl == g->ns ? dl[i] : 1;
        if (same_u || same_l) {
            int64_t tot = (g->out[i] - 1) * g->stride[i] + (g->k[i] - 1) * g->dil[i] +
                          1 - g->in[i];
            if (tot < 0) tot = 0;
            g->pad[i] = same_u ? tot / 2 : tot - tot / 2;
        } else if (strcmp(ap, "VALID") == 0) {
            g->pad[i] = 0;
        } else {
            g->pad[i] = pads && np == 2 * g->ns ? pads[i] : 0;
        }
    }
    return 0;
}

/* y[n, m, ...] = sum over channels of its group and kernel taps of
** x * w, exact in int64. The innermost spatial dim runs as a contiguous
** row update for speed. out must hold N*M*prod(out) values. */
static void conv_i32(const conv_geom *g, const int32_t *x, const int32_t *w,
                     int64_t *acc) {
    int ns = g->ns, last = ns - 1;
    int64_t osz = shape_numel(ns, g->out), isz = shape_numel(ns, g->in);
    int64_t ksz = shape_numel(ns, g->k);
    int64_t cpg = g->cin / g->group, mpg = g->m / g->group;
    int64_t orow = g->out[last], nrows = orow ? osz / orow : 0;
    int64_t ostr[KILN_MAX_RANK], istr[KILN_MAX_RANK];
    shape_strides(ns, g->out, ostr);
    shape_strides(ns, g->in, istr);
    memset(acc, 0, (size_t)(g->n * g->m * osz) * sizeof *acc);
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t m = 0; m < g->m; m++) {
            int64_t grp = m / mpg;
            int64_t *out = acc + (n * g->m + m) * osz;
            for (int64_t ci = 0; ci < cpg; ci++) {
                const int32_t *xin = x + (n * g->cin + grp * cpg + ci) * isz;
                const int32_t *wk = w + (m * cpg + ci) * ksz;
                for (int64_t kp = 0; kp < ksz; kp++) {
                    int64_t wv = wk[kp];
                    if (wv == 0) continue;
                    int64_t kidx[KILN_MAX_RANK], r = kp;
                    for (int d = ns - 1; d >= 0; d--) {
                        kidx[d] = r % g->k[d];
                        r /= g->k[d];
                    }
                    /* valid output range on the last axis for this tap */
                    int64_t off = kidx[last] * g->dil[last] - g->pad[last];
                    int64_t s = g->stride[last], w0 = 0, w1 = orow;
                    if (off < 0) w0 = (-off + s - 1) / s;
                    if (g->in[last] - off <= 0) w1 = 0;
                    else w1 = KILN_MIN(orow, (g->in[last] - off - 1) / s + 1);
                    if (w0 >= w1) continue;
                    for (int64_t row = 0; row < nrows; row++) {
                        /* decompose row into outer output coords */
                        int64_t rr = row, ioff = 0;
                        bool ok = true;
                        for (int d = last - 1; d >= 0; d--) {
                            int64_t od = rr % g->out[d];
                            rr /= g->out[d];
                            int64_t id = od * g->stride[d] + kidx[d] * g->dil[d] - g->pad[d];
                            if (id < 0 || id >= g->in[d]) { ok = false; break; }
                            ioff += id * istr[d];
                        }
                        if (!ok) continue;
                        const int32_t *xr = xin + ioff;
                        int64_t *orw = out + row * orow;
                        for (int64_t ow = w0; ow < w1; ow++)
                            orw[ow] += wv * xr[ow * s + off];
                    }
                }
            }
        }
}

/* int32 copy of a conv operand with a scalar zero point (x) or a scalar or
** per-output-channel one (w) subtracted. */
static int32_t *conv_operand(ref_ctx *c, const kiln_tensor *t, const kiln_tensor *zp,
                             bool per_channel_ok, const char *name) {
    int64_t n = tensor_numel(t), nz = zp ? tensor_numel(zp) : 0;
    int64_t per = t->dims[0] ? n / t->dims[0] : 0;
    if (zp && nz != 1 && !(per_channel_ok && zp->rank == 1 && nz == t->dims[0])) {
        ref_fail(c, "%s must be a scalar%s", name,
                 per_channel_ok ? " or have one value per output channel" : "");
        return NULL;
    }
    int32_t *o = malloc((size_t)(n > 0 ? n : 1) * sizeof *o);
    if (!o) {
        ref_fail(c, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t z = 0;
        if (zp) z = (int32_t)dt_get_i64(zp->dtype, zp->data, nz == 1 ? 0 : (size_t)(i / per));
        o[i] = (int32_t)dt_get_i64(t->dtype, t->data, (size_t)i) - z;
    }
    return o;
}

/* Shared body: computes the exact accumulators of conv(x - xz, w - wz). */
static int64_t *conv_common(ref_ctx *c, int xi, int xzi, int wi, int wzi,
                            conv_geom *g) {
    const kiln_tensor *x = c->in[xi], *w = c->in[wi];
    if (conv_geom_init(c, x, w, c->out[0], g)) return NULL;
    int32_t *xv = conv_operand(c, x, ref_has(c, xzi) ? c->in[xzi] : NULL, false,
                               "x zero point");
    if (!xv) return NULL;
    int32_t *wv = conv_operand(c, w, ref_has(c, wzi) ? c->in[wzi] : NULL, true,
                               "w zero point");
    if (!wv) {
        free(xv);
        return NULL;
    }
    int64_t n = tensor_numel(c->out[0]);
    int64_t *acc = malloc((size_t)(n > 0 ? n : 1) * sizeof *acc);
    if (!acc) ref_fail(c, "out of memory");
    else conv_i32(g, xv, wv, acc);
    free(xv);
    free(wv);
    return acc;
}

static int ref_convint(ref_ctx *c) {
    conv_geom g;
    int64_t *acc = conv_common(c, 0, 2, 1, 3, &g);
    if (!acc) return -1;
    int64_t n = tensor_numel(c->out[0]);
    int32_t *y = c->out[0]->data;
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(uint32_t)acc[i];
    free(acc);
    return 0;
}

/* ConvIntegerToFloat (ops/quant.c): the int32 convolution, then per output
** channel m: (float)acc * scale[m] (+ bias[m]), float32 steps. */
static int ref_convint_f(ref_ctx *c) {
    const kiln_tensor *s = c->in[4], *bias = ref_has(c, 5) ? c->in[5] : NULL;
    kiln_tensor *y = c->out[0];
    int64_t M = c->in[1]->dims[0], ns = tensor_numel(s), nb = bias ? tensor_numel(bias) : 0;
    if (s->dtype != KILN_DTYPE_FLOAT32 || (ns != 1 && ns != M) ||
        (bias && (bias->dtype != KILN_DTYPE_FLOAT32 || (nb != 1 && nb != M))))
        return ref_fail(c, "scale and bias must be float32 with 1 or %lld values", (long long)M);
    conv_geom g;
    int64_t *acc = conv_common(c, 0, 2, 1, 3, &g);
    if (!acc) return -1;
    int64_t osz = shape_numel(g.ns, g.out);
    const float *sv = s->data, *bv = bias ? bias->data : NULL;
    float *yv = y->data;
    for (int64_t nm = 0; nm < g.n * M; nm++) {
        int64_t m = nm % M;
        float sc = sv[ns == 1 ? 0 : m], b = bv ? bv[nb == 1 ? 0 : m] : 0.0f;
        for (int64_t p = 0; p < osz; p++) {
            int64_t i = nm * osz + p;
            float v = (float)(int32_t)(uint32_t)acc[i] * sc;
            yv[i] = bv ? v + b : v;
        }
    }
    free(acc);
    return 0;
}

static int ref_qlinearconv(ref_ctx *c) {
    const kiln_tensor *xs = c->in[1], *ws = c->in[4], *ys = c->in[6], *yz = c->in[7];
    const kiln_tensor *bias = ref_has(c, 8) ? c->in[8] : NULL;
    kiln_tensor *y = c->out[0];
    int64_t M = c->in[3]->dims[0], nws = tensor_numel(ws);
    if (tensor_numel(xs) != 1 || tensor_numel(ys) != 1 || tensor_numel(yz) != 1)
        return ref_fail(c, "x_scale, y_scale and y_zero_point must be scalars");
    if (nws != 1 && (ws->rank != 1 || nws != M))
        return ref_fail(c, "w_scale must be a scalar or have %lld elements", (long long)M);
    if (bias && (bias->rank != 1 || bias->dims[0] != M))
        return ref_fail(c, "B must have %lld elements", (long long)M);
    conv_geom g;
    int64_t *acc = conv_common(c, 0, 2, 3, 5, &g);
    if (!acc) return -1;
    double xsv = dt_get_f64(xs->dtype, xs->data, 0);
    double ysv = dt_get_f64(ys->dtype, ys->data, 0);
    double zp = (double)dt_get_i64(yz->dtype, yz->data, 0);
    int64_t lo, hi;
    int_range(y->dtype, &lo, &hi);
    int64_t osz = shape_numel(g.ns, g.out);
    for (int64_t nm = 0; nm < g.n * M; nm++) {
        int64_t m = nm % M;
        double wsv = dt_get_f64(ws->dtype, ws->data, nws == 1 ? 0 : (size_t)m);
        double mult = (float)((float)((float)xsv * (float)wsv) / (float)ysv);
        int64_t b = bias ? ((const int32_t *)bias->data)[m] : 0;
        for (int64_t p = 0; p < osz; p++) {
            int64_t i = nm * osz + p;
            int32_t r = (int32_t)(uint32_t)(acc[i] + b);
            dt_set_i64(y->dtype, y->data, (size_t)i, round_sat(r * mult + zp, lo, hi));
        }
    }
    free(acc);
    return 0;
}

const ref_kernel ref_kernels_quant[] = {
    {OP_QuantizeLinear, ref_quantize},
    {OP_DequantizeLinear, ref_dequantize},
    {OP_DynamicQuantizeLinear, ref_dynquant},
    {OP_MatMulInteger, ref_matmulint},
    {OP_MatMulIntegerToFloat, ref_matmulint_f},
    {OP_QFusedGemm, ref_qfused_gemm},
    {OP_ConvInteger, ref_convint},
    {OP_ConvIntegerToFloat, ref_convint_f},
    {OP_QLinearConv, ref_qlinearconv},
    {OP_QLinearMatMul, ref_qlinearmatmul},
    {OP_NONE, NULL},
};
