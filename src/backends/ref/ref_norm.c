/* ref_norm.c: reference kernels for the normalization family. Statistics
** are accumulated in double (two passes: mean, then centred variance) and
** results rounded once to the output type. */
#include "ref.h"

#include <math.h>

/* ---- element access in double for the float types */
static double *load_f64(const kiln_tensor *t) {
    int64_t n = tensor_numel(t);
    if (n < 0) return NULL;
    double *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++) r[i] = p[i];
    } else if (t->dtype == KILN_DTYPE_FLOAT64) {
        if (n) memcpy(r, t->data, (size_t)n * sizeof *r);
    } else {
        for (int64_t i = 0; i < n; i++) r[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    }
    return r;
}

static void store_f64(kiln_tensor *t, const double *v) {
    int64_t n = tensor_numel(t);
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        float *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = (float)v[i];
    } else if (t->dtype == KILN_DTYPE_FLOAT64) {
        if (n > 0) memcpy(t->data, v, (size_t)n * sizeof *v);
    } else {
        for (int64_t i = 0; i < n; i++) dt_set_f64(t->dtype, t->data, (size_t)i, v[i]);
    }
}

/* Loads the first `need` inputs (NULL entries for absent ones) as doubles;
** frees everything and fails on OOM. */
static int load_inputs(ref_ctx *c, int need, double **v) {
    for (int i = 0; i < need; i++) v[i] = NULL;
    for (int i = 0; i < need; i++) {
        if (!ref_has(c, i)) continue;
        if (!dtype_is_float(c->in[i]->dtype)) {
            for (int k = 0; k < i; k++) free(v[k]);
            return ref_fail(c, "input %d must be floating point", i);
        }
        if (!(v[i] = load_f64(c->in[i]))) {
            for (int k = 0; k < i; k++) free(v[k]);
            return ref_fail(c, "out of memory");
        }
    }
    return 0;
}

static void free_all(double **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
}

/* Index of a parameter broadcast (numpy, unidirectional) against X: either
** flat % mod when the parameter matches X's trailing dims, or a table. */
typedef struct {
    int64_t mod;
    int64_t *tab;
} bidx;

static int64_t bidx_at(const bidx *b, int64_t i) {
    return b->tab ? b->tab[i] : i % b->mod;
}

static int bidx_make(ref_ctx *c, const kiln_tensor *p, const kiln_tensor *x,
                     const char *what, bidx *out) {
    out->mod = 1;
    out->tab = NULL;
    if (p->rank > x->rank)
        return ref_fail(c, "%s has more dims than the input", what);
    int off = x->rank - p->rank;
    int first = 0; /* leading 1s of p are irrelevant */
    while (first < p->rank && p->dims[first] == 1) first++;
    bool trailing = true;
    for (int k = 0; k < p->rank; k++) {
        int64_t d = p->dims[k], w = x->dims[off + k];
        if (d != 1 && d != w)
            return ref_fail(c, "%s does not broadcast to the input shape", what);
        if (k >= first && d != w) trailing = false;
    }
    int64_t n = tensor_numel(x);
    if (trailing) {
        int64_t m = shape_numel(p->rank, p->dims);
        out->mod = m > 0 ? m : 1;
        return 0;
    }
    int64_t st[KILN_MAX_RANK];
    bcast_strides(p->rank, p->dims, x->rank, st);
    out->tab = malloc((size_t)(n > 0 ? n : 1) * sizeof *out->tab);
    if (!out->tab) return ref_fail(c, "out of memory");
    bcast_iter it;
    const int64_t *sts[1] = {st};
    bcast_iter_init(&it, x->rank, x->dims, 1, sts);
    for (int64_t i = 0; i < n; i++, bcast_iter_next(&it)) out->tab[i] = it.off[0];
    return 0;
}

/* Mean and centred variance of v[0..n) at stride 1. */
static void moments(const double *v, int64_t n, double *mean, double *var) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    double m = n ? s / (double)n : 0;
    for (int64_t i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = n ? q / (double)n : 0;
}

/* ------------------------------------------------------ BatchNormalization */
static int k_batchnorm(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->rank < 2) return ref_fail(c, "BatchNormalization input rank < 2");
    double eps = ir_attr_float(c->node, "epsilon", 1e-5f);
    double mom = ir_attr_float(c->node, "momentum", 0.9f);
    /* Training mode: the attribute from opset 14; before, asking for the
    ** statistics outputs (opset 6 also needs is_test = 0). */
    bool train;
    if (c->opset >= 14)
        train = ir_attr_int(c->node, "training_mode", 0) != 0;
    else if (c->opset < 7)
        train = ir_attr_int(c->node, "is_test", 0) == 0 && c->n_out > 1;
    else
        train = c->n_out > 1;
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t inner = shape_numel(x->rank - 2, x->dims + 2);
    int64_t total = tensor_numel(x);
    /* Parameters per channel, or per activation (C * inner) before opset 9. */
    int64_t np = tensor_numel(c->in[1]);
    for (int i = 2; i < 5; i++)
        if (tensor_numel(c->in[i]) != np)
            return ref_fail(c, "BatchNormalization parameters differ in size");
    bool per_act = np != C;
    if (per_act && np != C * inner)
        return ref_fail(c, "BatchNormalization parameters must have C = %lld "
                        "elements", (long long)C);
    double *v[5];
    if (load_inputs(c, 5, v)) return -1;
    double *X = v[0], *sc = v[1], *bi = v[2], *mean = v[3], *var = v[4];
    double *Y = malloc((size_t)(total > 0 ? total : 1) * sizeof *Y);
    double *bm = calloc((size_t)(np > 0 ? np : 1), sizeof *bm);
    double *bv = calloc((size_t)(np > 0 ? np : 1), sizeof *bv);
    if (!Y || !bm || !bv) {
        free(Y);
        free(bm);
        free(bv);
        free_all(v, 5);
        return ref_fail(c, "out of memory");
    }
    /* p(n, ch, s) = per_act ? ch * inner + s : ch */
    if (train) {
        int64_t cnt = np ? total / np : 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t s = 0; s < inner; s++)
                    bm[per_act ? ch * inner + s : ch] += X[(n * C + ch) * inner + s];
        for (int64_t p = 0; p < np; p++) bm[p] = cnt ? bm[p] / (double)cnt : 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t s = 0; s < inner; s++) {
                    int64_t p = per_act ? ch * inner + s : ch;
                    double d = X[(n * C + ch) * inner + s] - bm[p];
                    bv[p] += d * d;
                }
        for (int64_t p = 0; p < np; p++) bv[p] = cnt ? bv[p] / (double)cnt : 0;
    }
    const double *um = train ? bm : mean, *uv = train ? bv : var;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t s = 0; s < inner; s++) {
                int64_t p = per_act ? ch * inner + s : ch;
                int64_t e = (n * C + ch) * inner + s;
                Y[e] = sc[p] * (X[e] - um[p]) / sqrt(uv[p] + eps) + bi[p];
            }
    store_f64(y, Y);
    if (train) {
        /* running stats overwrite the inputs' copies */
        for (int64_t p = 0; p < np; p++) {
            mean[p] = mean[p] * mom + bm[p] * (1 - mom);
            var[p] = var[p] * mom + bv[p] * (1 - mom);
        }
        double *outs[4] = {mean, var, bm, bv};
        for (int i = 1; i < c->n_out && i < 5; i++)
            if (tensor_numel(c->out[i]) == np && dtype_is_float(c->out[i]->dtype))
                store_f64(c->out[i], outs[i - 1]);
    }
    free(Y);
    free(bm);
    free(bv);
    free_all(v, 5);
    return 0;
}

/* --------------------------------------------------- InstanceNormalization */
static int k_instancenorm(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank < 2) return ref_fail(c, "InstanceNormalization input rank < 2");
    double eps = ir_attr_float(c->node, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t inner = shape_numel(x->rank - 2, x->dims + 2);
    if (tensor_numel(c->in[1]) != C || tensor_numel(c->in[2]) != C)
        return ref_fail(c, "InstanceNormalization scale and B need C elements");
    double *v[3];
    if (load_inputs(c, 3, v)) return -1;
    double *X = v[0];
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            double *r = X + (n * C + ch) * inner, m, var;
            moments(r, inner, &m, &var);
            double k = v[1][ch] / sqrt(var + eps);
            for (int64_t s = 0; s < inner; s++) r[s] = (r[s] - m) * k + v[2][ch];
        }
    store_f64(c->out[0], X);
    free_all(v, 3);
    return 0;
}

/* ------------------------------------------ LayerNormalization, RMSNorm
** Rows are the trailing dims from `axis`; scale/bias broadcast against X. */
static int norm_rows(ref_ctx *c, bool rms) {
    const kiln_tensor *x = c->in[0];
    double eps = ir_attr_float(c->node, "epsilon", 1e-5f);
    int64_t axis = ir_attr_int(c->node, "axis", -1);
    if (axis < -(int64_t)x->rank || axis >= x->rank)
        return ref_fail(c, "axis %lld is out of range for rank %d",
                        (long long)axis, x->rank);
    int ax = (int)(axis < 0 ? axis + x->rank : axis);
    int64_t outer = shape_numel(ax, x->dims);
    int64_t inner = shape_numel(x->rank - ax, x->dims + ax);
    bool has_b = !rms && ref_has(c, 2);
    bidx si = {1, NULL}, bb = {1, NULL};
    if (bidx_make(c, c->in[1], x, "Scale", &si)) return -1;
    if (has_b && bidx_make(c, c->in[2], x, "B", &bb)) {
        free(si.tab);
        return -1;
    }
    double *v[3];
    if (load_inputs(c, has_b ? 3 : 2, v)) {
        free(si.tab);
        free(bb.tab);
        return -1;
    }
    if (!has_b) v[2] = NULL;
    double *X = v[0];
    double *mo = malloc((size_t)(outer > 0 ? outer : 1) * sizeof *mo);
    double *io = malloc((size_t)(outer > 0 ? outer : 1) * sizeof *io);
    if (!mo || !io) {
        free(mo);
        free(io);
        free(si.tab);
        free(bb.tab);
        free_all(v, 3);
        return ref_fail(c, "out of memory");
    }
    for (int64_t o = 0; o < outer; o++) {
        double *r = X + o * inner, m = 0, var;
        if (rms) {
            double q = 0;
            for (int64_t s = 0; s < inner; s++) q += r[s] * r[s];
            var = inner ? q / (double)inner : 0;
        } else {
            moments(r, inner, &m, &var);
        }
        double inv = 1.0 / sqrt(var + eps);
        mo[o] = m;
        io[o] = inv;
        for (int64_t s = 0; s < inner; s++) {
            int64_t e = o * inner + s;
            double t = (r[s] - m) * inv * v[1][bidx_at(&si, e)];
            if (has_b) t += v[2][bidx_at(&bb, e)];
            r[s] = t;
        }
    }
    store_f64(c->out[0], X);
    if (!rms)
        for (int i = 1; i < c->n_out && i < 3; i++)
            if (tensor_numel(c->out[i]) == outer &&
                dtype_is_float(c->out[i]->dtype))
                store_f64(c->out[i], i == 1 ? mo : io);
    free(mo);
    free(io);
    free(si.tab);
    free(bb.tab);
    free_all(v, 3);
    return 0;
}

static int k_layernorm(ref_ctx *c) { return norm_rows(c, false); }
static int k_rmsnorm(ref_ctx *c) { return norm_rows(c, true); }

/* ------------------------------------------------------ GroupNormalization */
static int k_groupnorm(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank < 2) return ref_fail(c, "GroupNormalization input rank < 2");
    double eps = ir_attr_float(c->node, "epsilon", 1e-5f);
    int64_t G = ir_attr_int(c->node, "num_groups", 0);
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t inner = shape_numel(x->rank - 2, x->dims + 2);
    if (G <= 0 || C % G)
        return ref_fail(c, "GroupNormalization: %lld channels do not split into "
                        "%lld groups", (long long)C, (long long)G);
    int64_t ns = tensor_numel(c->in[1]);
    if (tensor_numel(c->in[2]) != ns || (ns != C && ns != G))
        return ref_fail(c, "GroupNormalization scale and bias need C or "
                        "num_groups elements");
    bool per_ch = ns == C;
    int64_t cpg = C / G;
    double *v[3];
    if (load_inputs(c, 3, v)) return -1;
    double *X = v[0];
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double *r = X + (n * C + g * cpg) * inner, m, var;
            moments(r, cpg * inner, &m, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t k = 0; k < cpg; k++) {
                int64_t p = per_ch ? g * cpg + k : g;
                for (int64_t s = 0; s < inner; s++) {
                    double *e = r + k * inner + s;
                    *e = (*e - m) * inv * v[1][p] + v[2][p];
                }
            }
        }
    store_f64(c->out[0], X);
    free_all(v, 3);
    return 0;
}

/* ----------------------------------------------- MeanVarianceNormalization
** Y = (X - mean) / (sqrt(var) + 1e-9) over `axes` (the ONNX function body's
** formula). Elements are grouped by their index over the kept axes. */
static int k_mvn(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int na;
    const int64_t *axes = ir_attr_ints(c->node, "axes", &na);
    static const int64_t def_axes[3] = {0, 2, 3};
    if (!axes) {
        axes = def_axes;
        na = 3;
    }
    bool red[KILN_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i];
        if (a < -(int64_t)x->rank || a >= x->rank)
            return ref_fail(c, "axis %lld is out of range for rank %d",
                            (long long)a, x->rank);
        red[a < 0 ? a + x->rank : a] = true;
    }
    int64_t n = tensor_numel(x);
    /* group stride per axis: 0 on reduced axes */
    int64_t gst[KILN_MAX_RANK], ng = 1;
    for (int k = x->rank - 1; k >= 0; k--) {
        gst[k] = red[k] ? 0 : ng;
        if (!red[k]) ng *= x->dims[k];
    }
    double *v[1];
    if (load_inputs(c, 1, v)) return -1;
    double *X = v[0];
    double *sum = calloc((size_t)(ng > 0 ? ng : 1), sizeof *sum);
    double *sq = calloc((size_t)(ng > 0 ? ng : 1), sizeof *sq);
    int64_t *gid = malloc((size_t)(n > 0 ? n : 1) * sizeof *gid);
    if (!sum || !sq || !gid) {
        free(sum);
        free(sq);
        free(gid);
        free(X);
        return ref_fail(c, "out of memory");
    }
    bcast_iter it;
    const int64_t *sts[1] = {gst};
    bcast_iter_init(&it, x->rank, x->dims, 1, sts);
    for (int64_t i = 0; i < n; i++, bcast_iter_next(&it)) {
        gid[i] = it.off[0];
        sum[gid[i]] += X[i];
    }
    double cnt = ng ? (double)n / (double)ng : 1;
    for (int64_t g = 0; g < ng; g++) sum[g] /= cnt;
    for (int64_t i = 0; i < n; i++) {
        double d = X[i] - sum[gid[i]];
        sq[gid[i]] += d * d;
    }
    for (int64_t g = 0; g < ng; g++) sq[g] = sqrt(sq[g] / cnt) + 1e-9;
    for (int64_t i = 0; i < n; i++) X[i] = (X[i] - sum[gid[i]]) / sq[gid[i]];
    store_f64(c->out[0], X);
    free(sum);
    free(sq);
    free(gid);
    free(X);
    return 0;
}

/* --------------------------------------------------------------------- LRN
** Sum of squares over the channel window [c - floor((size-1)/2),
** c + ceil((size-1)/2)]. */
static int k_lrn(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->rank < 2) return ref_fail(c, "LRN input rank < 2");
    double alpha = ir_attr_float(c->node, "alpha", 1e-4f);
    double beta = ir_attr_float(c->node, "beta", 0.75f);
    double bias = ir_attr_float(c->node, "bias", 1.0f);
    int64_t size = ir_attr_int(c->node, "size", 0);
    if (size <= 0) return ref_fail(c, "LRN size must be positive");
    int64_t N = x->dims[0], C = x->dims[1];
    int64_t inner = shape_numel(x->rank - 2, x->dims + 2);
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    double *v[1];
    if (load_inputs(c, 1, v)) return -1;
    double *X = v[0];
    int64_t total = tensor_numel(x);
    double *Y = malloc((size_t)(total > 0 ? total : 1) * sizeof *Y);
    if (!Y) {
        free(X);
        return ref_fail(c, "out of memory");
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t c0 = KILN_MAX(0, ch - lo), c1 = KILN_MIN(C - 1, ch + hi);
            for (int64_t s = 0; s < inner; s++) {
                double q = 0;
                for (int64_t k = c0; k <= c1; k++) {
                    double t = X[(n * C + k) * inner + s];
                    q += t * t;
                }
                int64_t e = (n * C + ch) * inner + s;
                Y[e] = X[e] / pow(bias + alpha / (double)size * q, beta);
            }
        }
    store_f64(c->out[0], Y);
    free(Y);
    free(X);
    return 0;
}

const ref_kernel ref_kernels_norm[] = {
    {OP_BatchNormalization, k_batchnorm},
    {OP_InstanceNormalization, k_instancenorm},
    {OP_LayerNormalization, k_layernorm},
    {OP_GroupNormalization, k_groupnorm},
    {OP_MeanVarianceNormalization, k_mvn},
    {OP_LRN, k_lrn},
    {OP_RMSNormalization, k_rmsnorm},
    {OP_NONE, NULL},
};
