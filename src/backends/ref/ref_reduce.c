/* ref_reduce.c: reference kernels for the reductions and ArgMax/ArgMin.
** Every reduction is brought to an [outer, red, inner] layout (permuting a
** copy only when the reduced axes are not adjacent), then one loop nest per
** element class runs it: float32 and float64 natively, other floats widened
** to float32, integers in int64 with wrap-around (sums accumulate in double
** for floats). */
#include "ref.h"

#include <math.h>

typedef enum {
    R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LSE, R_SUMSQ
} rop;

static rop op_of(int op) {
    switch (op) {
    case OP_ReduceMean: return R_MEAN;
    case OP_ReduceMax: return R_MAX;
    case OP_ReduceMin: return R_MIN;
    case OP_ReduceProd: return R_PROD;
    case OP_ReduceL1: return R_L1;
    case OP_ReduceL2: return R_L2;
    case OP_ReduceLogSum: return R_LOGSUM;
    case OP_ReduceLogSumExp: return R_LSE;
    case OP_ReduceSumSquare: return R_SUMSQ;
    default: return R_SUM;
    }
}

/* ------------------------------------------------------------ layout */

/* Gathers src (dims, element size es = 4 or 8) into dst with output axis k
** taken from input axis perm[k]. */
static void gather_perm(void *dst, const void *src, size_t es, int rank,
                        const int64_t *dims, const int *perm) {
    int64_t is[KILN_MAX_RANK], d[KILN_MAX_RANK], s[KILN_MAX_RANK];
    int64_t idx[KILN_MAX_RANK] = {0};
    shape_strides(rank, dims, is);
    for (int k = 0; k < rank; k++) {
        d[k] = dims[perm[k]];
        s[k] = is[perm[k]];
    }
    int64_t total = shape_numel(rank, dims);
    if (total <= 0) return;
    int last = rank - 1;
    int64_t inner = rank ? d[last] : 1, istr = rank ? s[last] : 1, off = 0;
    for (int64_t o = 0; o < total; o += inner) {
        if (es == 4) {
            const uint32_t *p = (const uint32_t *)src + off;
            uint32_t *q = (uint32_t *)dst + o;
            for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
        } else {
            const uint64_t *p = (const uint64_t *)src + off;
            uint64_t *q = (uint64_t *)dst + o;
            for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
        }
        for (int k = last - 1; k >= 0; k--) {
            off += s[k];
            if (++idx[k] < d[k]) break;
            off -= s[k] * d[k];
            idx[k] = 0;
        }
    }
}

typedef struct {
    int64_t outer, red, inner;
    bool permute;          /* a copy with kept axes first is needed */
    int perm[KILN_MAX_RANK];
} rgeom;

/* Builds the layout for reducing the axes flagged in red[]. */
static void make_geom(int rank, const int64_t *dims, const bool *red,
                      rgeom *g) {
    /* segments of adjacent non-unit dims with the same flag */
    int nseg = 0;
    bool segred[KILN_MAX_RANK];
    int64_t segsz[KILN_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 1) continue;
        if (nseg > 0 && segred[nseg - 1] == red[i]) {
            segsz[nseg - 1] *= dims[i];
        } else {
            segred[nseg] = red[i];
            segsz[nseg++] = dims[i];
        }
    }
    int nred = 0;
    for (int k = 0; k < nseg; k++) nred += segred[k];
    g->outer = g->red = g->inner = 1;
    g->permute = false;
    if (nred <= 1) {
        bool after = false;
        for (int k = 0; k < nseg; k++) {
            if (segred[k]) {
                g->red = segsz[k];
                after = true;
            } else if (after) {
                g->inner *= segsz[k];
            } else {
                g->outer *= segsz[k];
            }
        }
        return;
    }
    g->permute = true;
    int n = 0;
    for (int i = 0; i < rank; i++)
        if (!red[i]) {
            g->perm[n++] = i;
            g->outer *= dims[i];
        }
    for (int i = 0; i < rank; i++)
        if (red[i]) {
            g->perm[n++] = i;
            g->red *= dims[i];
        }
}

/* ------------------------------------------------------------ float engines */

/* Final value of a reduction from its accumulator (sum-like ops) or running
** value (max/min/prod). */
static double finish(rop op, double acc, int64_t red) {
    switch (op) {
    case R_MEAN: return red ? acc / (double)red : NAN;
    case R_L2: return sqrt(acc);
    case R_LOGSUM: return log(acc);
    default: return acc;
    }
}

static double init_of(rop op) {
    switch (op) {
    case R_MAX: case R_LSE: return -INFINITY;
    case R_MIN: return INFINITY;
    case R_PROD: return 1.0;
    default: return 0.0;
    }
}

/* One engine per float element type T. Sums accumulate in double; max/min
** propagate NaN like numpy. LogSumExp shifts by the largest finite value. */
#define DEFINE_ENGINE(NAME, T)                                                 \
static int NAME(rop op, const T *x, T *y, int64_t outer, int64_t red,         \
                int64_t inner) {                                              \
    if (inner == 1) {                                                         \
        for (int64_t o = 0; o < outer; o++) {                                 \
            const T *p = x + o * red;                                         \
            double acc = init_of(op);                                         \
            switch (op) {                                                     \
            case R_SUM: case R_MEAN: case R_LOGSUM: {                         \
                double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                        \
                int64_t r = 0;                                                \
                for (; r + 4 <= red; r += 4) {                                \
                    a0 += p[r]; a1 += p[r + 1]; a2 += p[r + 2]; a3 += p[r + 3]; \
                }                                                             \
                for (; r < red; r++) a0 += p[r];                              \
                acc = (a0 + a1) + (a2 + a3);                                  \
                break;                                                        \
            }                                                                 \
            case R_SUMSQ: case R_L2:                                          \
                for (int64_t r = 0; r < red; r++)                             \
                    acc += (double)p[r] * (double)p[r];                       \
                break;                                                        \
            case R_L1:                                                        \
                for (int64_t r = 0; r < red; r++) acc += fabs((double)p[r]); \
                break;                                                        \
            case R_PROD:                                                      \
                for (int64_t r = 0; r < red; r++) acc *= p[r];                \
                break;                                                        \
            case R_MAX: {                                                     \
                T m = (T)acc;                                                 \
                for (int64_t r = 0; r < red; r++)                             \
                    if (p[r] > m || p[r] != p[r]) {                           \
                        m = p[r];                                             \
                        if (m != m) break;                                    \
                    }                                                         \
                acc = m;                                                      \
                break;                                                        \
            }                                                                 \
            case R_MIN: {                                                     \
                T m = (T)acc;                                                 \
                for (int64_t r = 0; r < red; r++)                             \
                    if (p[r] < m || p[r] != p[r]) {                           \
                        m = p[r];                                             \
                        if (m != m) break;                                    \
                    }                                                         \
                acc = m;                                                      \
                break;                                                        \
            }                                                                 \
            case R_LSE: {                                                     \
                double m = -INFINITY;                                         \
                bool nan = false;                                             \
                for (int64_t r = 0; r < red; r++) {                           \
                    if (p[r] != p[r]) nan = true;                             \
                    else if (isfinite((double)p[r]) && p[r] > m) m = p[r];    \
                }                                                             \
                if (nan) { acc = NAN; break; }                                \
                if (m == -INFINITY) m = 0;                                    \
                double s = 0;                                                 \
                for (int64_t r = 0; r < red; r++) s += exp((double)p[r] - m); \
                acc = log(s) + m;                                             \
                break;                                                        \
            }                                                                 \
            }                                                                 \
            y[o] = (T)finish(op, acc, red);                                   \
        }                                                                     \
        return 0;                                                             \
    }                                                                         \
    /* inner > 1: accumulate whole rows so memory is read contiguously */     \
    double *acc = malloc((size_t)inner * 2 * sizeof *acc);                    \
    if (!acc) return -1;                                                      \
    double *aux = acc + inner;                                                \
    for (int64_t o = 0; o < outer; o++) {                                     \
        const T *base = x + o * red * inner;                                  \
        double i0 = init_of(op);                                              \
        for (int64_t i = 0; i < inner; i++) acc[i] = i0;                      \
        if (op == R_LSE) { /* shift: largest finite value, NaN marks NaN */   \
            for (int64_t i = 0; i < inner; i++) aux[i] = -INFINITY;           \
            for (int64_t r = 0; r < red; r++) {                               \
                const T *p = base + r * inner;                                \
                for (int64_t i = 0; i < inner; i++) {                         \
                    double v = p[i];                                          \
                    if (v != v) aux[i] = NAN;                                 \
                    else if (isfinite(v) && v > aux[i]) aux[i] = v;           \
                }                                                             \
            }                                                                 \
            for (int64_t i = 0; i < inner; i++) {                             \
                if (aux[i] == -INFINITY) aux[i] = 0;                          \
                acc[i] = 0;                                                   \
            }                                                                 \
        }                                                                     \
        for (int64_t r = 0; r < red; r++) {                                   \
            const T *p = base + r * inner;                                    \
            switch (op) {                                                     \
            case R_SUM: case R_MEAN: case R_LOGSUM:                           \
                for (int64_t i = 0; i < inner; i++) acc[i] += p[i];           \
                break;                                                        \
            case R_SUMSQ: case R_L2:                                          \
                for (int64_t i = 0; i < inner; i++)                           \
                    acc[i] += (double)p[i] * (double)p[i];                    \
                break;                                                        \
            case R_L1:                                                        \
                for (int64_t i = 0; i < inner; i++) acc[i] += fabs((double)p[i]); \
                break;                                                        \
            case R_PROD:                                                      \
                for (int64_t i = 0; i < inner; i++) acc[i] *= p[i];           \
                break;                                                        \
            case R_MAX:                                                       \
                for (int64_t i = 0; i < inner; i++)                           \
                    if (p[i] > acc[i] || p[i] != p[i]) acc[i] = p[i];          \
                break;                                                        \
            case R_MIN:                                                       \
                for (int64_t i = 0; i < inner; i++)                           \
                    if (p[i] < acc[i] || p[i] != p[i]) acc[i] = p[i];          \
                break;                                                        \
            case R_LSE:                                                       \
                for (int64_t i = 0; i < inner; i++)                           \
                    acc[i] += exp((double)p[i] - aux[i]);                     \
                break;                                                        \
            }                                                                 \
        }                                                                     \
        T *q = y + o * inner;                                                 \
        if (op == R_LSE)                                                      \
            for (int64_t i = 0; i < inner; i++)                               \
                q[i] = (T)(log(acc[i]) + aux[i]);                             \
        else                                                                  \
            for (int64_t i = 0; i < inner; i++)                               \
                q[i] = (T)finish(op, acc[i], red);                            \
    }                                                                         \
    free(acc);                                                                \
    return 0;                                                                 \
}

DEFINE_ENGINE(reduce_f32, float)
DEFINE_ENGINE(reduce_f64, double)

/* ------------------------------------------------------------ int engine */

static void int_limits(kiln_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case KILN_DTYPE_INT8: *lo = INT8_MIN; *hi = INT8_MAX; return;
    case KILN_DTYPE_INT16: *lo = INT16_MIN; *hi = INT16_MAX; return;
    case KILN_DTYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; return;
    case KILN_DTYPE_UINT8: *lo = 0; *hi = UINT8_MAX; return;
    case KILN_DTYPE_UINT16: *lo = 0; *hi = UINT16_MAX; return;
    case KILN_DTYPE_UINT32: *lo = 0; *hi = UINT32_MAX; return;
    case KILN_DTYPE_UINT64: *lo = 0; *hi = -1; return; /* stored as UINT64_MAX */
    case KILN_DTYPE_BOOL: *lo = 0; *hi = 1; return;
    default: *lo = INT64_MIN; *hi = INT64_MAX; return;
    }
}

/* Integers (and bool) held as int64; uint64 compares unsigned. Sums and
** products wrap like the type's own arithmetic; mean/L2/log forms go through
** double and truncate toward zero. */
static void reduce_int(rop op, kiln_dtype t, const int64_t *x, void *y,
                       int64_t outer, int64_t red, int64_t inner) {
    bool uns = t == KILN_DTYPE_UINT64;
    int64_t lo, hi;
    int_limits(t, &lo, &hi);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t *p = x + o * red * inner + i;
            size_t oi = (size_t)(o * inner + i);
            uint64_t u = op == R_PROD ? 1 : 0;
            double d = 0;
            int64_t m = op == R_MAX ? lo : hi;
            for (int64_t r = 0; r < red; r++) {
                int64_t v = p[r * inner];
                switch (op) {
                case R_SUM: u += (uint64_t)v; break;
                case R_PROD: u *= (uint64_t)v; break;
                case R_SUMSQ: u += (uint64_t)v * (uint64_t)v; break;
                case R_L1:
                    u += (!uns && v < 0) ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
                    break;
                case R_MAX:
                    if (uns ? (uint64_t)v > (uint64_t)m : v > m) m = v;
                    break;
                case R_MIN:
                    if (uns ? (uint64_t)v < (uint64_t)m : v < m) m = v;
                    break;
                case R_L2: {
                    double f = uns ? (double)(uint64_t)v : (double)v;
                    d += f * f;
                    break;
                }
                default: /* mean, log-sum, log-sum-exp */
                    d += op == R_LSE ? exp(uns ? (double)(uint64_t)v : (double)v)
                                     : (uns ? (double)(uint64_t)v : (double)v);
                }
            }
            switch (op) {
            case R_SUM: case R_PROD: case R_SUMSQ: case R_L1:
                dt_set_i64(t, y, oi, (int64_t)u);
                break;
            case R_MAX: case R_MIN:
                dt_set_i64(t, y, oi, m);
                break;
            case R_MEAN:
                dt_set_f64(t, y, oi, red ? trunc(d / (double)red) : 0);
                break;
            case R_L2: dt_set_f64(t, y, oi, sqrt(d)); break;
            default: dt_set_f64(t, y, oi, log(d)); break;
            }
        }
}

/* ------------------------------------------------------------ Reduce* */

/* Flags the reduced axes from the axes input / attribute. */
static int reduced_axes(ref_ctx *c, const kiln_tensor *x, bool *red) {
    bool noop = ir_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    int r = x->rank, na = 0;
    int64_t ax[KILN_MAX_RANK];
    if (ref_has(c, 1)) {
        const kiln_tensor *a = c->in[1];
        int64_t n = tensor_numel(a);
        if (!dtype_is_int(a->dtype) || a->rank > 1)
            return ref_fail(c, "axes must be a 1-D integer tensor");
        if (n > r) return ref_fail(c, "%lld axes for rank %d", (long long)n, r);
        for (int64_t k = 0; k < n; k++) ax[k] = dt_get_i64(a->dtype, a->data, (size_t)k);
        na = (int)n;
    } else {
        int n;
        const int64_t *a = ir_attr_ints(c->node, "axes", &n);
        if (n > r) return ref_fail(c, "%d axes for rank %d", n, r);
        if (n) memcpy(ax, a, (size_t)n * sizeof *ax);
        na = n;
    }
    for (int i = 0; i < r; i++) red[i] = na == 0 && !noop;
    for (int k = 0; k < na; k++) {
        if (ax[k] < -r || ax[k] >= r)
            return ref_fail(c, "axis %lld out of range for rank %d",
                            (long long)ax[k], r);
        int a = (int)(ax[k] < 0 ? ax[k] + r : ax[k]);
        if (red[a]) return ref_fail(c, "axis %d repeated", a);
        red[a] = true;
    }
    return 0;
}

static int run_reduce(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    rop op = op_of(c->node->op);
    bool red[KILN_MAX_RANK];
    if (reduced_axes(c, x, red)) return -1;
    if (!y->data || y->dtype != x->dtype)
        return ref_fail(c, "internal: output not allocated");
    rgeom g;
    make_geom(x->rank, x->dims, red, &g);
    int64_t n = tensor_numel(x);
    if (g.outer * g.inner != tensor_numel(y))
        return ref_fail(c, "internal: output has %lld elements, expected %lld",
                        (long long)tensor_numel(y), (long long)(g.outer * g.inner));
    if (tensor_numel(y) == 0) return 0;
    kiln_dtype t = x->dtype;
    int rc = 0;
    void *owned = NULL, *tmp = NULL;
    const void *src = x->data;
    size_t es = 0;
    if (t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT64) {
        es = t == KILN_DTYPE_FLOAT32 ? 4 : 8;
    } else if (dtype_is_float(t)) {
        owned = tensor_to_f32(x);
        es = 4;
        if (!owned) return ref_fail(c, "out of memory");
        src = owned;
    } else if (dtype_is_int(t) || t == KILN_DTYPE_BOOL) {
        int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
        if (!v) return ref_fail(c, "out of memory");
        for (int64_t k = 0; k < n; k++) v[k] = dt_get_i64(t, x->data, (size_t)k);
        owned = v;
        src = v;
        es = 8;
    } else {
        return ref_fail(c, "unsupported type %s", kiln_dtype_name(t));
    }
    if (g.permute && n > 0) {
        tmp = malloc((size_t)n * es);
        if (!tmp) {
            free(owned);
            return ref_fail(c, "out of memory");
        }
        gather_perm(tmp, src, es, x->rank, x->dims, g.perm);
        src = tmp;
    }
    if (t == KILN_DTYPE_FLOAT32) {
        rc = reduce_f32(op, src, y->data, g.outer, g.red, g.inner);
    } else if (t == KILN_DTYPE_FLOAT64) {
        rc = reduce_f64(op, src, y->data, g.outer, g.red, g.inner);
    } else if (dtype_is_float(t)) {
        float *yo = malloc((size_t)(g.outer * g.inner) * sizeof *yo);
        rc = yo ? reduce_f32(op, src, yo, g.outer, g.red, g.inner) : -1;
        if (!rc) tensor_from_f32(y, yo);
        free(yo);
    } else {
        reduce_int(op, t, src, y->data, g.outer, g.red, g.inner);
    }
    free(tmp);
    free(owned);
    if (rc) return ref_fail(c, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ ArgMax/ArgMin */

/* Whether candidate v replaces the current best b. NaN counts as the extreme
** (numpy semantics): the first NaN wins, the last with select_last_index. */
static inline bool arg_take_f(double v, double b, bool mx, bool last) {
    if (b != b) return last && v != v;
    if (v != v) return true;
    if (mx) return last ? v >= b : v > b;
    return last ? v <= b : v < b;
}

static int run_arg(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    bool mx = c->node->op == OP_ArgMax;
    bool last = ir_attr_int(c->node, "select_last_index", 0) != 0;
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    int r = x->rank;
    if (axis < -r || axis >= r) return ref_fail(c, "axis out of range");
    int a = (int)(axis < 0 ? axis + r : axis);
    int64_t outer = shape_numel(a, x->dims), n = x->dims[a];
    int64_t inner = shape_numel(r - a - 1, x->dims + a + 1);
    if (!y->data || tensor_numel(y) != outer * inner)
        return ref_fail(c, "internal: output not allocated");
    if (outer * inner == 0) return 0;
    if (n == 0) return ref_fail(c, "cannot take an index over an empty axis");
    int64_t *out = y->data;
    kiln_dtype t = x->dtype;
    bool isint = dtype_is_int(t), uns = t == KILN_DTYPE_UINT64;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            size_t base = (size_t)(o * n * inner + i);
            int64_t best = 0;
            if (t == KILN_DTYPE_FLOAT32) {
                const float *p = (const float *)x->data + base;
                float b = p[0];
                for (int64_t k = 1; k < n; k++)
                    if (arg_take_f(p[k * inner], b, mx, last)) {
                        b = p[k * inner];
                        best = k;
                    }
            } else if (isint) {
                int64_t b = dt_get_i64(t, x->data, base);
                for (int64_t k = 1; k < n; k++) {
                    int64_t v = dt_get_i64(t, x->data, base + (size_t)(k * inner));
                    bool gt = uns ? (uint64_t)v > (uint64_t)b : v > b;
                    bool lt = uns ? (uint64_t)v < (uint64_t)b : v < b;
                    bool take = mx ? (gt || (last && v == b)) : (lt || (last && v == b));
                    if (take) {
                        b = v;
                        best = k;
                    }
                }
            } else {
                double b = dt_get_f64(t, x->data, base);
                for (int64_t k = 1; k < n; k++) {
                    double v = dt_get_f64(t, x->data, base + (size_t)(k * inner));
                    if (arg_take_f(v, b, mx, last)) {
                        b = v;
                        best = k;
                    }
                }
            }
            out[o * inner + i] = best;
        }
    return 0;
}

const ref_kernel ref_kernels_reduce[] = {
    {OP_ReduceSum, run_reduce},
    {OP_ReduceMean, run_reduce},
    {OP_ReduceMax, run_reduce},
    {OP_ReduceMin, run_reduce},
    {OP_ReduceProd, run_reduce},
    {OP_ReduceL1, run_reduce},
    {OP_ReduceL2, run_reduce},
    {OP_ReduceLogSum, run_reduce},
    {OP_ReduceLogSumExp, run_reduce},
    {OP_ReduceSumSquare, run_reduce},
    {OP_ArgMax, run_arg},
    {OP_ArgMin, run_arg},
    {OP_NONE, NULL},
};
