/* ref_conv.c: reference kernels for the conv family. Convolutions run as
** im2col + a cache-blocked GEMM per group; pools walk a precomputed plan of
** valid window taps. float32 and float64 compute natively, float16/bfloat16
** (and MaxPool's int8/uint8) are widened to float32. */
#include "ref.h"
#include "../../ops/conv_window.h"

#include <math.h>

/* Valid input taps of a chunk of output positions of a pooling window:
** position p's taps are off[first[p-p0] .. first[p-p0+1]), offsets within
** one input plane in row-major tap order; padcnt counts taps inside the
** padded input (the count_include_pad divisor). */
typedef struct pool_plan {
    const conv_geom *g;
    int64_t plane_in, plane_out;
    int64_t chunk;  /* positions per chunk */
    int64_t p0, p1; /* current chunk */
    int64_t *first, *off, *padcnt;
} pool_plan;

/* GEMM blocking (columns, depth) and the most column-buffer elements one
** im2col chunk may use. */
enum { GEMM_NB = 256, GEMM_KB = 128 };
#define COL_BUDGET ((int64_t)1 << 22)

#define CT float
#define CT_FN(name) name##_f32
#define CT_IS_FLOAT 1
#define CT_ABS fabsf
#define CT_SQRT sqrtf
#define CT_POW powf
#define CT_FLOOR floorf
#define CT_CEIL ceilf
#include "ref_conv_tmpl.h"
#undef CT
#undef CT_FN
#undef CT_ABS
#undef CT_SQRT
#undef CT_POW
#undef CT_FLOOR
#undef CT_CEIL

#define CT double
#define CT_FN(name) name##_f64
#define CT_ABS fabs
#define CT_SQRT sqrt
#define CT_POW pow
#define CT_FLOOR floor
#define CT_CEIL ceil
#include "ref_conv_tmpl.h"
#undef CT
#undef CT_FN
#undef CT_IS_FLOAT

/* Integers accumulate in uint64 so overflow wraps instead of being UB. */
#define CT uint64_t
#define CT_FN(name) name##_u64
#define CT_IS_FLOAT 0
#include "ref_conv_tmpl.h"
#undef CT
#undef CT_FN
#undef CT_IS_FLOAT

/* ------------------------------------------------------------- helpers */

/* float32 view of an input: its own data or a widened copy in *tmp. */
static const float *f32_in(ref_ctx *c, const kiln_tensor *t, float **tmp) {
    *tmp = NULL;
    if (!t) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) return t->data;
    *tmp = tensor_to_f32(t);
    if (!*tmp) ref_fail(c, "out of memory widening a %s input",
                        kiln_dtype_name(t->dtype));
    return *tmp;
}

/* float32 buffer for an output: its data, or scratch that f32_out_done
** narrows into it. */
static float *f32_out(ref_ctx *c, kiln_tensor *t, float **tmp) {
    *tmp = NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) return t->data;
    int64_t n = tensor_numel(t);
    if (n < 0 || (uint64_t)n > KILN_MAX_ALLOC / sizeof(float) ||
        !(*tmp = malloc((size_t)(n ? n : 1) * sizeof(float)))) {
        ref_fail(c, "out of memory for a float32 output buffer");
        return NULL;
    }
    return *tmp;
}

static void f32_out_done(kiln_tensor *t, float *tmp) {
    if (!tmp) return;
    tensor_from_f32(t, tmp);
    free(tmp);
}

/* Makes output i exactly (dt, rank, dims); normally the executor already
** allocated it from inference. */
static int ensure_out(ref_ctx *c, int i, kiln_dtype dt, int rank,
                      const int64_t *dims) {
    kiln_tensor *t = c->out[i];
    if (t->data && t->dtype == dt && shape_equal(t->rank, t->dims, rank, dims))
        return 0;
    return ref_alloc_out(c, i, dt, rank, dims);
}

static bool is_float_dtype(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_FLOAT64;
}

static int64_t prod(int n, const int64_t *v) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= v[i];
    return p;
}

/* ------------------------------------------------------- conv / convT */

static int conv_run(ref_ctx *c, bool transpose) {
    const kiln_tensor *X = c->in[0], *W = c->in[1];
    const kiln_tensor *B = ref_has(c, 2) ? c->in[2] : NULL;
    int r = X->rank, nsp = r - 2;
    if (r < 3 || W->rank != r)
        return ref_fail(c, "X and W must have the same rank >= 3");
    if (!is_float_dtype(X->dtype) || W->dtype != X->dtype ||
        (B && B->dtype != X->dtype))
        return ref_fail(c, "X, W and B must share a floating-point type");
    int64_t G = ir_attr_int(c->node, "group", 1);
    conv_window win;
    conv_geom g;
    if (conv_window_read(c->node, nsp, W->dims + 2, CW_DILATIONS | CW_AUTO_PAD,
                         &win, c->err, sizeof c->err))
        return -1;
    int64_t N = X->dims[0], C = X->dims[1], M;
    if (G < 1) return ref_fail(c, "group must be >= 1");
    if (transpose) {
        if (conv_geom_transpose(&win, c->node, X->dims + 2, &g, c->err,
                                sizeof c->err))
            return -1;
        if (W->dims[0] != C || C % G)
            return ref_fail(c, "W must have X's %lld channels, divisible by "
                            "group", (long long)C);
        if (__builtin_mul_overflow(W->dims[1], G, &M))
            return ref_fail(c, "output channels overflow");
    } else {
        if (conv_geom_forward(&win, X->dims + 2, &g, c->err, sizeof c->err))
            return -1;
        int64_t wcg;
        M = W->dims[0];
        if (__builtin_mul_overflow(W->dims[1], G, &wcg) || C != wcg || M % G)
            return ref_fail(c, "channel counts do not match the group");
    }
    if (B && (B->rank != 1 || B->dims[0] != M))
        return ref_fail(c, "B must have %lld values", (long long)M);
    int64_t dims[KILN_MAX_RANK];
    dims[0] = N;
    dims[1] = M;
    memcpy(dims + 2, transpose ? g.img : g.grid, (size_t)nsp * sizeof *dims);
    if (ensure_out(c, 0, X->dtype, r, dims)) return -1;
    kiln_tensor *Y = c->out[0];
    if (X->dtype == KILN_DTYPE_FLOAT64) {
        const double *b = B ? B->data : NULL;
        return transpose
                   ? conv_transpose_f64(X->data, W->data, b, Y->data, N, C, M,
                                        G, &g, c)
                   : conv_f64(X->data, W->data, b, Y->data, N, C, M, G, &g, c);
    }
    float *tx, *tw, *tb, *ty;
    const float *x = f32_in(c, X, &tx), *w = f32_in(c, W, &tw);
    const float *b = f32_in(c, B, &tb);
    float *y = f32_out(c, Y, &ty);
    int rc = -1;
    if (x && w && (b || !B) && y)
        rc = transpose ? conv_transpose_f32(x, w, b, y, N, C, M, G, &g, c)
                       : conv_f32(x, w, b, y, N, C, M, G, &g, c);
    if (rc == 0) f32_out_done(Y, ty);
    else free(ty);
    free(tx);
    free(tw);
    free(tb);
    return rc;
}

static int k_conv(ref_ctx *c) { return conv_run(c, false); }
static int k_conv_transpose(ref_ctx *c) { return conv_run(c, true); }

/* ------------------------------------------------------------- pooling */

#define PLAN_BUDGET ((int64_t)1 << 21)

static void plan_free(pool_plan *pl) {
    free(pl->first);
    free(pl->off);
    free(pl->padcnt);
}

static int plan_init(ref_ctx *c, pool_plan *pl, const conv_geom *g) {
    memset(pl, 0, sizeof *pl);
    pl->g = g;
    pl->plane_in = prod(g->nsp, g->img);
    pl->plane_out = prod(g->nsp, g->grid);
    /* A position has at most min(kernel size, plane) valid taps. */
    int64_t maxv = 1;
    for (int i = 0; i < g->nsp && maxv <= pl->plane_in; i++) maxv *= g->k[i];
    maxv = KILN_MAX(KILN_MIN(maxv, pl->plane_in), 1);
    pl->chunk = KILN_MAX(PLAN_BUDGET / maxv, 1);
    pl->chunk = KILN_MAX(KILN_MIN(pl->chunk, pl->plane_out), 1);
    pl->first = malloc((size_t)(pl->chunk + 1) * sizeof *pl->first);
    pl->padcnt = malloc((size_t)pl->chunk * sizeof *pl->padcnt);
    pl->off = malloc((size_t)(pl->chunk * maxv) * sizeof *pl->off);
    if (!pl->first || !pl->padcnt || !pl->off) {
        plan_free(pl);
        return ref_fail(c, "out of memory for the pooling plan");
    }
    return 0;
}

/* Fills the plan for positions [p0, p0 + chunk). */
static void plan_build(pool_plan *pl, int64_t p0) {
    const conv_geom *g = pl->g;
    int nsp = g->nsp;
    int64_t o[KILN_MAX_RANK], istr[KILN_MAX_RANK], rem = p0, acc = 1;
    for (int i = nsp - 1; i >= 0; i--) {
        o[i] = rem % g->grid[i];
        rem /= g->grid[i];
        istr[i] = acc;
        acc *= g->img[i];
    }
    pl->p0 = p0;
    pl->p1 = KILN_MIN(p0 + pl->chunk, pl->plane_out);
    int64_t n = 0;
    for (int64_t p = p0; p < pl->p1; p++) {
        int64_t start[KILN_MAX_RANK], lo[KILN_MAX_RANK], hi[KILN_MAX_RANK];
        int64_t padcnt = 1;
        bool empty = false;
        pl->first[p - p0] = n;
        for (int i = 0; i < nsp; i++) {
            int64_t s0 = o[i] * g->s[i] - g->pb[i], d = g->d[i], k = g->k[i];
            int64_t l = s0 >= 0 ? 0 : (-s0 + d - 1) / d;
            int64_t h = g->img[i] - s0 <= 0 ? 0 : (g->img[i] - s0 + d - 1) / d;
            int64_t ph = g->img[i] + g->pe[i] - s0 <= 0
                             ? 0
                             : (g->img[i] + g->pe[i] - s0 + d - 1) / d;
            l = KILN_MIN(l, k);
            h = KILN_MAX(KILN_MIN(h, k), l);
            padcnt *= KILN_MIN(ph, k);
            start[i] = s0;
            lo[i] = l;
            hi[i] = h;
            if (l == h) empty = true;
        }
        pl->padcnt[p - p0] = padcnt;
        if (!empty) {
            int64_t t[KILN_MAX_RANK];
            memcpy(t, lo, (size_t)nsp * sizeof *t);
            for (;;) {
                int64_t off = 0;
                for (int i = 0; i < nsp; i++)
                    off += (start[i] + t[i] * g->d[i]) * istr[i];
                pl->off[n++] = off;
                int i = nsp - 1;
                for (; i >= 0; i--) {
                    if (++t[i] < hi[i]) break;
                    t[i] = lo[i];
                }
                if (i < 0) break;
            }
        }
        for (int i = nsp - 1; i >= 0; i--) {
            if (++o[i] < g->grid[i]) break;
            o[i] = 0;
        }
    }
    pl->first[pl->p1 - p0] = n;
}

static int k_pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int op = c->node->op, r = X->rank, nsp = r - 2;
    bool is_max = op == OP_MaxPool;
    if (r < 3) return ref_fail(c, "X must have rank >= 3");
    conv_window win;
    conv_geom g;
    if (conv_window_read(c->node, nsp, NULL,
                         CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &win, c->err,
                         sizeof c->err) ||
        conv_geom_forward(&win, X->dims + 2, &g, c->err, sizeof c->err))
        return -1;
    int64_t dims[KILN_MAX_RANK];
    dims[0] = X->dims[0];
    dims[1] = X->dims[1];
    memcpy(dims + 2, g.grid, (size_t)nsp * sizeof *dims);
    if (ensure_out(c, 0, X->dtype, r, dims)) return -1;
    int64_t *ind = NULL;
    if (is_max && c->n_out > 1) {
        if (ensure_out(c, 1, KILN_DTYPE_INT64, r, dims)) return -1;
        ind = c->out[1]->data;
    }
    bool col_major = ir_attr_int(c->node, "storage_order", 0) == 1;
    bool incl_pad = ir_attr_int(c->node, "count_include_pad", 0) != 0;
    double lp = op == OP_LpPool ? ir_attr_float(c->node, "p", 2.0f) : 0.0;
    if (op == OP_LpPool && !(lp > 0)) return ref_fail(c, "p must be positive");
    int64_t planes = shape_numel(2, X->dims);
    pool_plan pl;
    if (planes < 0) return ref_fail(c, "batch x channels overflows");
    if (planes == 0 || prod(nsp, g.grid) == 0) return 0;
    if (plan_init(c, &pl, &g)) return -1;
    kiln_tensor *Y = c->out[0];
    bool dbl = X->dtype == KILN_DTYPE_FLOAT64;
    float *tx = NULL, *ty = NULL;
    const float *xf = NULL;
    float *yf = NULL;
    if (!dbl) {
        xf = f32_in(c, X, &tx);
        yf = xf ? f32_out(c, Y, &ty) : NULL;
        if (!yf) {
            free(tx);
            plan_free(&pl);
            return -1;
        }
    }
    for (int64_t p0 = 0; p0 < pl.plane_out; p0 += pl.chunk) {
        plan_build(&pl, p0);
        if (is_max) {
            if (dbl) pool_max_f64(X->data, Y->data, ind, planes, &pl, col_major);
            else pool_max_f32(xf, yf, ind, planes, &pl, col_major);
        } else if (dbl) {
            pool_sum_f64(X->data, Y->data, planes, &pl, incl_pad, lp);
        } else {
            pool_sum_f32(xf, yf, planes, &pl, incl_pad, (float)lp);
        }
    }
    f32_out_done(Y, ty);
    free(tx);
    plan_free(&pl);
    return 0;
}

static int k_global_pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int op = c->node->op, r = X->rank;
    if (r < 2) return ref_fail(c, "X must have rank >= 2");
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < r; i++) dims[i] = i < 2 ? X->dims[i] : 1;
    if (ensure_out(c, 0, X->dtype, r, dims)) return -1;
    int kind = op == OP_GlobalAveragePool ? 0 : op == OP_GlobalMaxPool ? 1 : 2;
    double lp = kind == 2 ? ir_attr_float(c->node, "p", 2.0f) : 0.0;
    if (kind == 2 && !(lp > 0)) return ref_fail(c, "p must be positive");
    int64_t planes = shape_numel(2, X->dims), n = prod(r - 2, X->dims + 2);
    kiln_tensor *Y = c->out[0];
    if (planes < 0) return ref_fail(c, "batch x channels overflows");
    if (X->dtype == KILN_DTYPE_FLOAT64) {
        global_pool_f64(X->data, Y->data, planes, n, kind, lp);
        return 0;
    }
    float *tx, *ty;
    const float *x = f32_in(c, X, &tx);
    float *y = x ? f32_out(c, Y, &ty) : NULL;
    if (!y) {
        free(tx);
        return -1;
    }
    global_pool_f32(x, y, planes, n, kind, (float)lp);
    f32_out_done(Y, ty);
    free(tx);
    return 0;
}

/* ------------------------------------------------------ other kernels */

static int k_lp_norm(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int r = X->rank;
    int64_t axis = ir_attr_int(c->node, "axis", -1), p = ir_attr_int(c->node, "p", 2);
    if (r < 1 || axis < -r || axis >= r)
        return ref_fail(c, "axis %lld is out of range for rank %d",
                        (long long)axis, r);
    if (p != 1 && p != 2) return ref_fail(c, "p must be 1 or 2");
    int ax = (int)(axis < 0 ? axis + r : axis);
    if (ensure_out(c, 0, X->dtype, r, X->dims)) return -1;
    int64_t outer = prod(ax, X->dims), len = X->dims[ax];
    int64_t inner = prod(r - ax - 1, X->dims + ax + 1);
    kiln_tensor *Y = c->out[0];
    if (tensor_numel(X) == 0) return 0;
    if (X->dtype == KILN_DTYPE_FLOAT64) {
        lp_norm_f64(X->data, Y->data, outer, len, inner, (int)p);
        return 0;
    }
    float *tx, *ty;
    const float *x = f32_in(c, X, &tx);
    float *y = x ? f32_out(c, Y, &ty) : NULL;
    if (!y) {
        free(tx);
        return -1;
    }
    lp_norm_f32(x, y, outer, len, inner, (int)p);
    f32_out_done(Y, ty);
    free(tx);
    return 0;
}

static int k_max_unpool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0], *I = c->in[1];
    int r = X->rank, nsp = r - 2;
    if (r < 3 || I->dtype != KILN_DTYPE_INT64 ||
        !shape_equal(I->rank, I->dims, r, X->dims))
        return ref_fail(c, "I must be int64 with the shape of X");
    conv_window win;
    if (conv_window_read(c->node, nsp, NULL, 0, &win, c->err, sizeof c->err))
        return -1;
    /* Indices address the default-sized output (as the ONNX reference
    ** does); an explicit output_shape embeds it at the origin. */
    int64_t inf[KILN_MAX_RANK], dims[KILN_MAX_RANK];
    inf[0] = X->dims[0];
    inf[1] = X->dims[1];
    for (int i = 0; i < nsp; i++) {
        int64_t xi = X->dims[2 + i], v;
        if (__builtin_mul_overflow(xi > 0 ? xi - 1 : 0, win.s[i], &v))
            return ref_fail(c, "unpooled size overflows");
        v += (xi > 0 ? 0 : -win.s[i]) + win.k[i] - win.pads[i] -
             win.pads[nsp + i];
        if (v < 0) return ref_fail(c, "negative unpooled size");
        inf[2 + i] = v;
    }
    memcpy(dims, inf, (size_t)r * sizeof *dims);
    if (ref_has(c, 2)) {
        const kiln_tensor *os = c->in[2];
        if (os->dtype != KILN_DTYPE_INT64 || os->rank != 1 || os->dims[0] != r)
            return ref_fail(c, "output_shape must be int64 with %d values", r);
        const int64_t *v = os->data;
        for (int i = 0; i < r; i++) {
            if (i < 2 ? v[i] != inf[i] : v[i] < inf[i])
                return ref_fail(c, "output_shape[%d]=%lld is smaller than the "
                                "unpooled size %lld", i, (long long)v[i],
                                (long long)inf[i]);
            dims[i] = v[i];
        }
    }
    if (ensure_out(c, 0, X->dtype, r, dims)) return -1;
    kiln_tensor *Y = c->out[0];
    int64_t n = tensor_numel(X), total = prod(r, inf);
    int64_t istr[KILN_MAX_RANK], ostr[KILN_MAX_RANK];
    shape_strides(r, inf, istr);
    shape_strides(r, dims, ostr);
    size_t es = kiln_dtype_size(X->dtype);
    const int64_t *idx = I->data;
    for (int64_t e = 0; e < n; e++) {
        int64_t k = idx[e];
        if (k < 0 || k >= total)
            return ref_fail(c, "index %lld is outside the output (%lld "
                            "elements)", (long long)k, (long long)total);
        int64_t o = 0, rem = k;
        for (int i = 0; i < r; i++) {
            o += rem / istr[i] * ostr[i];
            rem %= istr[i];
        }
        memcpy((char *)Y->data + (size_t)o * es,
               (const char *)X->data + (size_t)e * es, es);
    }
    return 0;
}

static int k_col2im(ref_ctx *c) {
    const kiln_tensor *X = c->in[0], *IS = c->in[1], *BS = c->in[2];
    if (X->rank != 3) return ref_fail(c, "input must be 3-D");
    if (IS->dtype != KILN_DTYPE_INT64 || BS->dtype != KILN_DTYPE_INT64 ||
        IS->rank != 1 || BS->rank != 1 || IS->dims[0] != BS->dims[0] ||
        IS->dims[0] < 1 || IS->dims[0] > KILN_MAX_RANK - 2)
        return ref_fail(c, "image_shape and block_shape must be int64 vectors "
                        "of the same length");
    int nsp = (int)IS->dims[0];
    const int64_t *img = IS->data, *blk = BS->data;
    for (int i = 0; i < nsp; i++)
        if (img[i] < 0 || img[i] >= ((int64_t)1 << 40))
            return ref_fail(c, "image_shape value %lld is out of range",
                            (long long)img[i]);
    conv_window win;
    conv_geom g;
    if (conv_window_read(c->node, nsp, blk, CW_DILATIONS, &win, c->err,
                         sizeof c->err) ||
        conv_geom_forward(&win, img, &g, c->err, sizeof c->err))
        return -1;
    int64_t ksz = prod(nsp, g.k), L = prod(nsp, g.grid);
    if (X->dims[1] % ksz || X->dims[2] != L)
        return ref_fail(c, "input shape does not match the block geometry "
                        "(%lld blocks of size %lld)", (long long)L,
                        (long long)ksz);
    int64_t N = X->dims[0], C = X->dims[1] / ksz, dims[KILN_MAX_RANK];
    dims[0] = N;
    dims[1] = C;
    memcpy(dims + 2, img, (size_t)nsp * sizeof *dims);
    if (ensure_out(c, 0, X->dtype, nsp + 2, dims)) return -1;
    kiln_tensor *Y = c->out[0];
    memset(Y->data, 0, Y->nbytes);
    if (X->dtype == KILN_DTYPE_FLOAT64) {
        col2im_op_f64(X->data, Y->data, N, C, &g);
        return 0;
    }
    if (is_float_dtype(X->dtype)) {
        float *tx, *ty;
        const float *x = f32_in(c, X, &tx);
        float *y = x ? f32_out(c, Y, &ty) : NULL;
        if (!y) {
            free(tx);
            return -1;
        }
        if (ty) memset(ty, 0, (size_t)tensor_numel(Y) * sizeof *ty);
        col2im_op_f32(x, y, N, C, &g);
        f32_out_done(Y, ty);
        free(tx);
        return 0;
    }
    /* Integers: widen to wrapping uint64, sum, narrow. */
    int64_t nx = tensor_numel(X), ny = tensor_numel(Y);
    uint64_t *xu = malloc((size_t)(nx ? nx : 1) * sizeof *xu);
    uint64_t *yu = calloc((size_t)(ny ? ny : 1), sizeof *yu);
    if (!xu || !yu) {
        free(xu);
        free(yu);
        return ref_fail(c, "out of memory");
    }
    for (int64_t i = 0; i < nx; i++)
        xu[i] = (uint64_t)dt_get_i64(X->dtype, X->data, (size_t)i);
    col2im_op_u64(xu, yu, N, C, &g);
    for (int64_t i = 0; i < ny; i++) {
        /* Wrap into int64 without an out-of-range conversion. */
        uint64_t u = yu[i];
        int64_t v = u <= (uint64_t)INT64_MAX ? (int64_t)u
                                             : -(int64_t)(~u) - 1;
        dt_set_i64(Y->dtype, Y->data, (size_t)i, v);
    }
    free(xu);
    free(yu);
    return 0;
}

static int k_max_roi_pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0], *R = c->in[1];
    if (X->rank != 4 || R->rank != 2 || R->dims[1] != 5 ||
        R->dtype != X->dtype)
        return ref_fail(c, "expects X [N, C, H, W] and rois [num_rois, 5] of "
                        "the same type");
    int cnt;
    const int64_t *ps = ir_attr_ints(c->node, "pooled_shape", &cnt);
    if (!ps || cnt != 2 || ps[0] < 1 || ps[1] < 1)
        return ref_fail(c, "pooled_shape must have 2 positive values");
    double scale = ir_attr_float(c->node, "spatial_scale", 1.0f);
    int64_t nroi = R->dims[0];
    int64_t dims[4] = {nroi, X->dims[1], ps[0], ps[1]};
    if (ensure_out(c, 0, X->dtype, 4, dims)) return -1;
    kiln_tensor *Y = c->out[0];
    const int64_t *xd = X->dims;
    if (X->dtype == KILN_DTYPE_FLOAT64)
        return max_roi_pool_f64(X->data, R->data, Y->data, xd[0], xd[1], xd[2],
                                xd[3], nroi, ps[0], ps[1], scale, c);
    float *tx, *tr, *ty;
    const float *x = f32_in(c, X, &tx), *rois = f32_in(c, R, &tr);
    float *y = x && rois ? f32_out(c, Y, &ty) : NULL;
    int rc = -1;
    if (y) {
        rc = max_roi_pool_f32(x, rois, y, xd[0], xd[1], xd[2], xd[3], nroi,
                              ps[0], ps[1], scale, c);
        if (rc == 0) f32_out_done(Y, ty);
        else free(ty);
    }
    free(tx);
    free(tr);
    return rc;
}

const ref_kernel ref_kernels_conv[] = {
    {OP_Conv, k_conv},
    {OP_ConvTranspose, k_conv_transpose},
    {OP_MaxPool, k_pool},
    {OP_AveragePool, k_pool},
    {OP_LpPool, k_pool},
    {OP_GlobalAveragePool, k_global_pool},
    {OP_GlobalMaxPool, k_global_pool},
    {OP_GlobalLpPool, k_global_pool},
    {OP_LpNormalization, k_lp_norm},
    {OP_MaxUnpool, k_max_unpool},
    {OP_Col2Im, k_col2im},
    {OP_MaxRoiPool, k_max_roi_pool},
    {OP_NONE, NULL},
};
