/* conv.c: schemas and shape inference for the conv family (Conv,
** ConvTranspose, pooling, LpNormalization, MaxUnpool, Col2Im, MaxRoiPool),
** plus the window geometry that the reference kernels share. */
#include "conv_window.h"

#include <stdio.h>

/* Attribute values at or above this are rejected: it keeps every product in
** the geometry formulas far from int64 overflow. */
#define CW_LIMIT ((int64_t)1 << 31)

/* ------------------------------------------------------------ geometry */

static int cw_err(char *err, size_t nerr, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static int cw_err(char *err, size_t nerr, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, nerr, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads an ints attribute of exactly `want` values in [lo, CW_LIMIT); absent
** or empty gives def everywhere. */
static int read_ints(const ir_node *n, const char *name, int want, int64_t def,
                     int64_t lo, int64_t *dst, char *err, size_t nerr) {
    int cnt;
    const int64_t *v = ir_attr_ints(n, name, &cnt);
    if (!v || cnt == 0) {
        for (int i = 0; i < want; i++) dst[i] = def;
        return 0;
    }
    if (cnt != want)
        return cw_err(err, nerr, "attribute '%s' has %d values, expected %d",
                      name, cnt, want);
    for (int i = 0; i < want; i++) {
        if (v[i] < lo || v[i] >= CW_LIMIT)
            return cw_err(err, nerr, "attribute '%s' value %lld is out of range",
                          name, (long long)v[i]);
        dst[i] = v[i];
    }
    return 0;
}

int conv_window_read(const ir_node *n, int nsp, const int64_t *kdef,
                     unsigned flags, conv_window *w, char *err, size_t nerr) {
    memset(w, 0, sizeof *w);
    if (nsp < 1 || nsp > KILN_MAX_RANK - 2)
        return cw_err(err, nerr, "%d spatial dims are not supported", nsp);
    w->nsp = nsp;
    w->kernel_known = true;
    int cnt;
    const int64_t *ks = ir_attr_ints(n, "kernel_shape", &cnt);
    if (ks && cnt > 0) {
        if (read_ints(n, "kernel_shape", nsp, 1, 1, w->k, err, nerr)) return -1;
        if (kdef)
            for (int i = 0; i < nsp; i++)
                if (kdef[i] >= 0 && kdef[i] != w->k[i])
                    return cw_err(err, nerr,
                                  "kernel_shape[%d]=%lld does not match the "
                                  "weight's spatial dim %lld", i,
                                  (long long)w->k[i], (long long)kdef[i]);
    } else if (kdef) {
        for (int i = 0; i < nsp; i++) {
            if (kdef[i] < 0) {
                w->kernel_known = false;
                w->k[i] = 1;
            } else if (kdef[i] < 1 || kdef[i] >= CW_LIMIT) {
                return cw_err(err, nerr, "weight spatial dim %lld is out of "
                              "range", (long long)kdef[i]);
            } else {
                w->k[i] = kdef[i];
            }
        }
    } else {
        return cw_err(err, nerr, "attribute 'kernel_shape' is required");
    }
    if (read_ints(n, "strides", nsp, 1, 1, w->s, err, nerr)) return -1;
    if (flags & CW_DILATIONS) {
        if (read_ints(n, "dilations", nsp, 1, 1, w->d, err, nerr)) return -1;
    } else {
        for (int i = 0; i < nsp; i++) w->d[i] = 1;
    }
    if (read_ints(n, "pads", 2 * nsp, 0, 0, w->pads, err, nerr)) return -1;
    w->auto_pad = CW_NOTSET;
    if (flags & CW_AUTO_PAD) {
        const char *ap = ir_attr_str(n, "auto_pad", "NOTSET");
        if (!strcmp(ap, "NOTSET") || !ap[0]) w->auto_pad = CW_NOTSET;
        else if (!strcmp(ap, "SAME_UPPER")) w->auto_pad = CW_SAME_UPPER;
        else if (!strcmp(ap, "SAME_LOWER")) w->auto_pad = CW_SAME_LOWER;
        else if (!strcmp(ap, "VALID")) w->auto_pad = CW_VALID;
        else return cw_err(err, nerr, "unknown auto_pad '%s'", ap);
    }
    if (flags & CW_CEIL) {
        int64_t cm = ir_attr_int(n, "ceil_mode", 0);
        if (cm != 0 && cm != 1)
            return cw_err(err, nerr, "ceil_mode must be 0 or 1, got %lld",
                          (long long)cm);
        w->ceil_mode = cm != 0;
    }
    return 0;
}

int conv_geom_forward(const conv_window *w, const int64_t *in, conv_geom *g,
                      char *err, size_t nerr) {
    memset(g, 0, sizeof *g);
    g->nsp = w->nsp;
    for (int i = 0; i < w->nsp; i++) {
        int64_t k = w->k[i], s = w->s[i], d = w->d[i], x = in[i];
        int64_t ek = (k - 1) * d + 1, out, pb, pe;
        if (x < 0 || x > INT64_MAX / 4)
            return cw_err(err, nerr, "spatial dim %d has invalid size %lld", i,
                          (long long)x);
        if (w->auto_pad == CW_SAME_UPPER || w->auto_pad == CW_SAME_LOWER) {
            /* out = ceil(in / stride); pads make the windows cover it. */
            out = (x + s - 1) / s;
            int64_t total = out > 0 ? (out - 1) * s + ek - x : 0;
            if (total < 0) total = 0;
            pb = w->auto_pad == CW_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (w->auto_pad == CW_VALID) pb = pe = 0;
            else pb = w->pads[i], pe = w->pads[w->nsp + i];
            int64_t span = x + pb + pe;
            if (span < ek)
                return cw_err(err, nerr,
                              "kernel extent %lld exceeds the padded input size "
                              "%lld along spatial dim %d", (long long)ek,
                              (long long)span, i);
            out = (span - ek) / s + 1;
            if (w->ceil_mode && w->auto_pad == CW_NOTSET) {
                if ((span - ek) % s) out++;
                /* The last window must start inside the input or its begin
                ** padding; one starting in the end padding is dropped. */
                if ((out - 1) * s >= x + pb) out--;
            }
        }
        g->img[i] = x;
        g->grid[i] = out;
        g->k[i] = k;
        g->s[i] = s;
        g->d[i] = d;
        g->pb[i] = pb;
        g->pe[i] = pe;
    }
    return 0;
}

int conv_geom_transpose(const conv_window *w, const ir_node *n,
                        const int64_t *in, conv_geom *g, char *err,
                        size_t nerr) {
    int nsp = w->nsp, cnt;
    int64_t opad[KILN_MAX_RANK], oshape[KILN_MAX_RANK];
    memset(g, 0, sizeof *g);
    g->nsp = nsp;
    if (read_ints(n, "output_padding", nsp, 0, 0, opad, err, nerr)) return -1;
    const int64_t *os = ir_attr_ints(n, "output_shape", &cnt);
    bool have_os = os && cnt > 0;
    if (have_os) {
        /* The spec gives spatial dims only; tolerate a full N,C,... list. */
        if (cnt != nsp && cnt != nsp + 2)
            return cw_err(err, nerr, "output_shape has %d values, expected %d",
                          cnt, nsp);
        for (int i = 0; i < nsp; i++) {
            oshape[i] = os[cnt - nsp + i];
            if (oshape[i] < 0 || oshape[i] >= ((int64_t)1 << 40))
                return cw_err(err, nerr, "output_shape value %lld is out of "
                              "range", (long long)oshape[i]);
        }
    }
    for (int i = 0; i < nsp; i++) {
        int64_t k = w->k[i], s = w->s[i], d = w->d[i], x = in[i];
        int64_t ek = (k - 1) * d + 1, out, pb, pe;
        if (x < 0 || x > ((int64_t)1 << 40))
            return cw_err(err, nerr, "spatial dim %d has invalid size %lld", i,
                          (long long)x);
        int64_t natural, same_out;
        if (__builtin_mul_overflow(s, x > 0 ? x - 1 : 0, &natural) ||
            __builtin_mul_overflow(s, x, &same_out) ||
            same_out > ((int64_t)1 << 50))
            return cw_err(err, nerr, "output size overflows along spatial "
                          "dim %d", i);
        natural = (x > 0 ? natural : -s) + opad[i] + ek;
        if (have_os || w->auto_pad == CW_SAME_UPPER ||
            w->auto_pad == CW_SAME_LOWER) {
            out = have_os ? oshape[i] : same_out;
            int64_t total = natural - out;
            if (total < 0) total = 0; /* larger outputs just get bias */
            pb = w->auto_pad == CW_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (w->auto_pad == CW_VALID) pb = pe = 0;
            else pb = w->pads[i], pe = w->pads[nsp + i];
            out = natural - pb - pe;
            if (out < 0)
                return cw_err(err, nerr, "pads leave a negative output size "
                              "along spatial dim %d", i);
        }
        g->img[i] = out;
        g->grid[i] = x;
        g->k[i] = k;
        g->s[i] = s;
        g->d[i] = d;
        g->pb[i] = pb;
        g->pe[i] = pe;
    }
    return 0;
}

/* ----------------------------------------------------------- inference */

static bool is_float_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_FLOAT64;
}

static int read_window(infer_ctx *c, int nsp, const int64_t *kdef,
                       unsigned flags, conv_window *w) {
    return conv_window_read(c->node, nsp, kdef, flags, w, c->err,
                            sizeof c->err);
}

/* Forward output spatial dims from possibly symbolic input dims: exact for
** concrete ones, the same symbol where the window preserves size, fresh
** symbols otherwise. */
static int forward_dims(infer_ctx *c, const conv_window *w, const int64_t *in,
                        int64_t *out) {
    int64_t tmp[KILN_MAX_RANK];
    conv_geom g;
    if (!w->kernel_known) {
        for (int i = 0; i < w->nsp; i++) out[i] = ic_new_sym(c);
        return 0;
    }
    /* Symbolic dims get a stand-in big enough for any window. */
    for (int i = 0; i < w->nsp; i++)
        tmp[i] = in[i] >= 0 ? in[i] : ((int64_t)1 << 33);
    if (conv_geom_forward(w, tmp, &g, c->err, sizeof c->err)) return -1;
    for (int i = 0; i < w->nsp; i++) {
        if (in[i] >= 0) {
            out[i] = g.grid[i];
            continue;
        }
        int64_t ek = (w->k[i] - 1) * w->d[i] + 1;
        bool same = w->s[i] == 1 &&
                    (w->auto_pad == CW_SAME_UPPER ||
                     w->auto_pad == CW_SAME_LOWER ||
                     (w->auto_pad == CW_VALID && ek == 1) ||
                     (w->auto_pad == CW_NOTSET &&
                      w->pads[i] + w->pads[w->nsp + i] == ek - 1));
        out[i] = same ? in[i] : ic_new_sym(c);
    }
    return 0;
}

/* Fails unless required inputs 0..n-1 are present. */
static int need_inputs(infer_ctx *c, int n) {
    for (int i = 0; i < n; i++)
        if (!ic_has(c, i)) return ic_fail(c, "required input %d is missing", i);
    return 0;
}

static int64_t dim_or_sym(infer_ctx *c, const ir_type *t, int i) {
    return t && t->rank > i ? t->dims[i] : ic_new_sym(c);
}

/* W's spatial dims as the default kernel; all-symbolic when W's rank is
** unknown so the kernel counts as unknown rather than missing. */
static const int64_t *kernel_dims(const ir_type *w, int64_t *buf) {
    if (w->rank >= 0) return w->dims + 2;
    for (int i = 0; i < KILN_MAX_RANK; i++) buf[i] = -1;
    return buf;
}

/* Shared start of Conv/ConvTranspose: checks X, W, optional B and group,
** then reads the window (W's spatial dims are the default kernel). Returns
** 0 with *nsp, *group and *win set; 1 when the rank is unknown (output 0 is
** then set, of unknown rank, and nothing is left to infer); -1 on failure. */
static int conv_common(infer_ctx *c, int *nsp, int64_t *group, conv_window *win) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *b = ic_in(c, 2);
    if (need_inputs(c, 2) || ic_require_float(c, 0) ||
        ic_require_same_dtype(c, 0, 1) || ic_require_same_dtype(c, 0, 2))
        return -1;
    int r = x->rank >= 0 ? x->rank : w->rank;
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return ic_fail(c, "X has rank %d but W has rank %d", x->rank, w->rank);
    if (r >= 0 && r < 3)
        return ic_fail(c, "X must have rank >= 3 (N, C, spatial...), got %d", r);
    if (r > KILN_MAX_RANK) return ic_fail(c, "rank %d is too large", r);
    if (b && b->rank >= 0 && b->rank != 1)
        return ic_fail(c, "B must be 1-D, got rank %d", b->rank);
    *group = ir_attr_int(c->node, "group", 1);
    if (*group < 1 || *group >= CW_LIMIT)
        return ic_fail(c, "group must be >= 1, got %lld", (long long)*group);
    if (r < 0) {
        ic_set_out(c, 0, x->dtype, -1, NULL);
        return 1;
    }
    *nsp = r - 2;
    int64_t kbuf[KILN_MAX_RANK];
    if (read_window(c, *nsp, kernel_dims(w, kbuf), CW_DILATIONS | CW_AUTO_PAD, win))
        return -1;
    return 0;
}

static int infer_conv(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *b = ic_in(c, 2);
    int nsp;
    int64_t group;
    conv_window win;
    int st = conv_common(c, &nsp, &group, &win);
    if (st) return st < 0 ? -1 : 0;
    kiln_dtype dt = x->dtype;
    int r = nsp + 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t m = w->rank >= 0 ? w->dims[0] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[1] : -1;
    int64_t wcg;
    if (wc >= 0 && ic_dim_mul(c, wc, group, &wcg, "W channels x group"))
        return -1;
    if (cin >= 0 && wc >= 0 && cin != wcg)
        return ic_fail(c, "X has %lld channels but W expects %lld x group %lld",
                       (long long)cin, (long long)wc, (long long)group);
    if (m >= 0 && m % group)
        return ic_fail(c, "W has %lld output channels, not divisible by group "
                       "%lld", (long long)m, (long long)group);
    if (b && b->rank == 1 && b->dims[0] >= 0 && m >= 0 && b->dims[0] != m)
        return ic_fail(c, "B has %lld values but there are %lld output "
                       "channels", (long long)b->dims[0], (long long)m);
    int64_t dims[KILN_MAX_RANK], in[KILN_MAX_RANK];
    dims[0] = dim_or_sym(c, x, 0);
    if (w->rank >= 0) dims[1] = w->dims[0];
    else if (b && b->rank == 1) dims[1] = b->dims[0];
    else dims[1] = ic_new_sym(c);
    for (int i = 0; i < nsp; i++) in[i] = dim_or_sym(c, x, 2 + i);
    if (forward_dims(c, &win, in, dims + 2)) return -1;
    ic_set_out(c, 0, dt, r, dims);
    return 0;
}

static int infer_conv_transpose(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *b = ic_in(c, 2);
    int nsp;
    int64_t group;
    conv_window win;
    int st = conv_common(c, &nsp, &group, &win);
    if (st) return st < 0 ? -1 : 0;
    kiln_dtype dt = x->dtype;
    int r = nsp + 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[0] : -1;
    int64_t wm = w->rank >= 0 ? w->dims[1] : -1;
    if (cin >= 0 && wc >= 0 && cin != wc)
        return ic_fail(c, "X has %lld channels but W has %lld", (long long)cin,
                       (long long)wc);
    if (wc >= 0 && wc % group)
        return ic_fail(c, "W has %lld input channels, not divisible by group "
                       "%lld", (long long)wc, (long long)group);
    int64_t m = -1;
    if (wm >= 0 && ic_dim_mul(c, wm, group, &m, "W output channels x group"))
        return -1;
    if (b && b->rank == 1 && b->dims[0] >= 0 && m >= 0 && b->dims[0] != m)
        return ic_fail(c, "B has %lld values but there are %lld output "
                       "channels", (long long)b->dims[0], (long long)m);
    int64_t dims[KILN_MAX_RANK], in[KILN_MAX_RANK];
    dims[0] = dim_or_sym(c, x, 0);
    if (m >= 0) dims[1] = m;
    else if (b && b->rank == 1) dims[1] = b->dims[0];
    else dims[1] = ic_new_sym(c);
    bool concrete = win.kernel_known;
    for (int i = 0; i < nsp; i++) {
        in[i] = dim_or_sym(c, x, 2 + i);
        if (in[i] < 0) concrete = false;
    }
    int cnt;
    const int64_t *os = ir_attr_ints(c->node, "output_shape", &cnt);
    if (concrete) {
        conv_geom g;
        if (conv_geom_transpose(&win, c->node, in, &g, c->err, sizeof c->err))
            return -1;
        memcpy(dims + 2, g.img, (size_t)nsp * sizeof *dims);
    } else if (os && (cnt == nsp || cnt == nsp + 2)) {
        for (int i = 0; i < nsp; i++) dims[2 + i] = os[cnt - nsp + i];
    } else {
        for (int i = 0; i < nsp; i++) dims[2 + i] = ic_new_sym(c);
    }
    ic_set_out(c, 0, dt, r, dims);
    return 0;
}

/* MaxPool, AveragePool, LpPool. */
static int infer_pool(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    int op = c->node->op;
    if (need_inputs(c, 1)) return -1;
    bool is_max = op == OP_MaxPool;
    if (is_max) {
        if (x->dtype != KILN_DTYPE_UNDEFINED && !is_float_type(x->dtype) &&
            x->dtype != KILN_DTYPE_INT8 && x->dtype != KILN_DTYPE_UINT8)
            return ic_fail(c, "MaxPool does not support %s input",
                           kiln_dtype_name(x->dtype));
    } else if (ic_require_float(c, 0)) {
        return -1;
    }
    if (op == OP_LpPool) {
        float p = ir_attr_float(c->node, "p", 2.0f);
        if (!(p > 0.0f) || p > 1e6f)
            return ic_fail(c, "p must be positive, got %g", (double)p);
    }
    if (is_max) {
        int64_t so = ir_attr_int(c->node, "storage_order", 0);
        if (so != 0 && so != 1)
            return ic_fail(c, "storage_order must be 0 or 1, got %lld",
                           (long long)so);
    }
    if (op == OP_AveragePool) {
        int64_t cip = ir_attr_int(c->node, "count_include_pad", 0);
        if (cip != 0 && cip != 1)
            return ic_fail(c, "count_include_pad must be 0 or 1, got %lld",
                           (long long)cip);
    }
    int cnt;
    if (!ir_attr_ints(c->node, "kernel_shape", &cnt) || cnt < 1)
        return ic_fail(c, "attribute 'kernel_shape' is required");
    int r = x->rank;
    if (r >= 0 && r != cnt + 2)
        return ic_fail(c, "X has rank %d but kernel_shape has %d dims", r, cnt);
    r = cnt + 2;
    if (r > KILN_MAX_RANK) return ic_fail(c, "rank %d is too large", r);
    conv_window win;
    if (read_window(c, cnt, NULL, CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &win))
        return -1;
    int64_t dims[KILN_MAX_RANK], in[KILN_MAX_RANK];
    dims[0] = dim_or_sym(c, x, 0);
    dims[1] = dim_or_sym(c, x, 1);
    for (int i = 0; i < cnt; i++) in[i] = dim_or_sym(c, x, 2 + i);
    if (forward_dims(c, &win, in, dims + 2)) return -1;
    ic_set_out(c, 0, x->dtype, r, dims);
    if (is_max && c->n_out > 1) ic_set_out(c, 1, KILN_DTYPE_INT64, r, dims);
    return 0;
}

/* GlobalAveragePool, GlobalMaxPool, GlobalLpPool. */
static int infer_global_pool(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (need_inputs(c, 1) || ic_require_float(c, 0)) return -1;
    if (c->node->op == OP_GlobalLpPool) {
        float p = ir_attr_float(c->node, "p", 2.0f);
        if (!(p > 0.0f) || p > 1e6f)
            return ic_fail(c, "p must be positive, got %g", (double)p);
    }
    if (x->rank < 0) {
        ic_set_out(c, 0, x->dtype, -1, NULL);
        return 0;
    }
    if (x->rank < 2)
        return ic_fail(c, "X must have rank >= 2 (N, C, spatial...), got %d",
                       x->rank);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    ic_set_out(c, 0, x->dtype, x->rank, dims);
    return 0;
}

static int infer_lp_norm(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (need_inputs(c, 1) || ic_require_float(c, 0)) return -1;
    int64_t p = ir_attr_int(c->node, "p", 2);
    if (p != 1 && p != 2) return ic_fail(c, "p must be 1 or 2, got %lld",
                                         (long long)p);
    if (x->rank >= 0) {
        int ax;
        if (x->rank == 0) return ic_fail(c, "input must not be a scalar");
        if (ic_axis(c, ir_attr_int(c->node, "axis", -1), x->rank, &ax))
            return -1;
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

static int infer_max_unpool(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1), *os = ic_in(c, 2);
    if (need_inputs(c, 2) || ic_require_float(c, 0)) return -1;
    if (ind->dtype != KILN_DTYPE_UNDEFINED && ind->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "I must be int64, got %s", kiln_dtype_name(ind->dtype));
    if (os && os->dtype != KILN_DTYPE_UNDEFINED && os->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "output_shape must be int64, got %s",
                       kiln_dtype_name(os->dtype));
    if (os && os->rank >= 0 && os->rank != 1)
        return ic_fail(c, "output_shape must be 1-D");
    int cnt;
    if (!ir_attr_ints(c->node, "kernel_shape", &cnt) || cnt < 1)
        return ic_fail(c, "attribute 'kernel_shape' is required");
    int r = cnt + 2;
    if (r > KILN_MAX_RANK) return ic_fail(c, "rank %d is too large", r);
    if (x->rank >= 0 && x->rank != r)
        return ic_fail(c, "X has rank %d but kernel_shape has %d dims",
                       x->rank, cnt);
    if (ind->rank >= 0 && x->rank >= 0) {
        bool bad = ind->rank != x->rank;
        for (int i = 0; !bad && i < x->rank; i++)
            if (ind->dims[i] >= 0 && x->dims[i] >= 0 && ind->dims[i] != x->dims[i])
                bad = true;
        if (bad) return ic_fail(c, "I must have the shape of X");
    }
    conv_window win;
    if (read_window(c, cnt, NULL, 0, &win)) return -1;
    int64_t dims[KILN_MAX_RANK];
    dims[0] = dim_or_sym(c, x, 0);
    dims[1] = dim_or_sym(c, x, 1);
    for (int i = 0; i < cnt; i++) {
        int64_t xi = dim_or_sym(c, x, 2 + i);
        if (xi < 0) {
            dims[2 + i] = ic_new_sym(c);
            continue;
        }
        int64_t v;
        if (xi > ((int64_t)1 << 40))
            return ic_fail(c, "spatial dim %d is too large", i);
        if (ic_dim_mul(c, xi > 0 ? xi - 1 : 0, win.s[i], &v, "unpooled dim"))
            return -1;
        v += (xi > 0 ? 0 : -win.s[i]) + win.k[i] - win.pads[i] -
             win.pads[cnt + i];
        if (v < 0)
            return ic_fail(c, "spatial dim %d gives a negative output size", i);
        dims[2 + i] = v;
    }
    if (os) {
        int64_t vals[KILN_MAX_RANK];
        int n = ic_int_values(c, 2, vals, KILN_MAX_RANK);
        if (n < 0) {
            for (int i = 0; i < r; i++) dims[i] = ic_new_sym(c);
        } else {
            if (n != r)
                return ic_fail(c, "output_shape has %d values, expected %d", n,
                               r);
            for (int i = 0; i < r; i++) {
                if (ic_const(c, 2) && vals[i] < 0)
                    return ic_fail(c, "output_shape has a negative value");
                /* Indices address the default-sized output, which is placed
                ** at the start of the requested one. */
                if (vals[i] >= 0 && dims[i] >= 0 &&
                    (i < 2 ? vals[i] != dims[i] : vals[i] < dims[i]))
                    return ic_fail(c, "output_shape[%d]=%lld is smaller than "
                                   "the unpooled size %lld", i,
                                   (long long)vals[i], (long long)dims[i]);
                dims[i] = vals[i];
            }
        }
    }
    ic_set_out(c, 0, x->dtype, r, dims);
    return 0;
}

static int infer_col2im(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *is = ic_in(c, 1), *bs = ic_in(c, 2);
    if (need_inputs(c, 3)) return -1;
    if (x->dtype != KILN_DTYPE_UNDEFINED &&
        (!dtype_is_numeric(x->dtype) || x->dtype == KILN_DTYPE_COMPLEX64 ||
         x->dtype == KILN_DTYPE_COMPLEX128 || kiln_dtype_size(x->dtype) == 0))
        return ic_fail(c, "Col2Im does not support %s input",
                       kiln_dtype_name(x->dtype));
    for (int i = 1; i <= 2; i++) {
        const ir_type *t = ic_in(c, i);
        if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "input %d must be int64", i);
        if (t->rank >= 0 && t->rank != 1)
            return ic_fail(c, "input %d must be 1-D", i);
    }
    if (ic_require_rank(c, 0, 3)) return -1;
    int nsp = -1;
    if (is->rank == 1 && is->dims[0] >= 0) nsp = (int)KILN_MIN(is->dims[0], 99);
    if (bs->rank == 1 && bs->dims[0] >= 0) {
        if (nsp >= 0 && bs->dims[0] != nsp)
            return ic_fail(c, "image_shape and block_shape differ in length");
        nsp = (int)KILN_MIN(bs->dims[0], 99);
    }
    if (nsp == 0) return ic_fail(c, "image_shape must not be empty");
    if (nsp > KILN_MAX_RANK - 2)
        return ic_fail(c, "%d spatial dims are not supported", nsp);
    int64_t img[KILN_MAX_RANK], blk[KILN_MAX_RANK];
    int ni = ic_int_values(c, 1, img, KILN_MAX_RANK);
    int nb = ic_int_values(c, 2, blk, KILN_MAX_RANK);
    int64_t dims[KILN_MAX_RANK];
    if (nsp < 0) nsp = ni >= 0 ? ni : nb;
    if (nsp < 0) {
        ic_set_out(c, 0, x->dtype, -1, NULL);
        return 0;
    }
    dims[0] = dim_or_sym(c, x, 0);
    dims[1] = ic_new_sym(c);
    for (int i = 0; i < nsp; i++)
        dims[2 + i] = ni == nsp ? img[i] : ic_new_sym(c);
    if ((ni >= 0 && ni != nsp) || (nb >= 0 && nb != nsp))
        return ic_fail(c, "image_shape and block_shape differ in length");
    bool img_ok = ni == nsp && ic_const(c, 1);
    bool blk_ok = nb == nsp && ic_const(c, 2);
    if (img_ok)
        for (int i = 0; i < nsp; i++)
            if (img[i] < 0 || img[i] >= ((int64_t)1 << 40))
                return ic_fail(c, "image_shape value %lld is out of range",
                               (long long)img[i]);
    if (blk_ok) {
        int64_t bprod = 1;
        for (int i = 0; i < nsp; i++) {
            if (blk[i] < 1 || blk[i] >= CW_LIMIT)
                return ic_fail(c, "block_shape value %lld is out of range",
                               (long long)blk[i]);
            bprod *= blk[i];
            if (bprod >= CW_LIMIT) return ic_fail(c, "block_shape is too large");
        }
        if (x->rank == 3 && x->dims[1] >= 0) {
            if (x->dims[1] % bprod)
                return ic_fail(c, "input dim 1 (%lld) is not divisible by the "
                               "block size %lld", (long long)x->dims[1],
                               (long long)bprod);
            dims[1] = x->dims[1] / bprod;
        }
    }
    if (img_ok && blk_ok) {
        /* The block count must match the input's last dim. */
        conv_window win;
        if (conv_window_read(c->node, nsp, blk, CW_DILATIONS, &win, c->err,
                             sizeof c->err))
            return -1;
        conv_geom g;
        if (conv_geom_forward(&win, img, &g, c->err, sizeof c->err)) return -1;
        int64_t L = shape_numel(nsp, g.grid);
        if (x->rank == 3 && x->dims[2] >= 0 && x->dims[2] != L)
            return ic_fail(c, "input has %lld blocks but the geometry gives "
                           "%lld", (long long)x->dims[2], (long long)L);
    }
    ic_set_out(c, 0, x->dtype, nsp + 2, dims);
    return 0;
}

static int infer_max_roi_pool(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *rois = ic_in(c, 1);
    if (need_inputs(c, 2) || ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_rank(c, 0, 4) || ic_require_rank(c, 1, 2))
        return -1;
    if (rois->rank == 2 && rois->dims[1] >= 0 && rois->dims[1] != 5)
        return ic_fail(c, "rois must have shape [num_rois, 5]");
    int cnt;
    const int64_t *ps = ir_attr_ints(c->node, "pooled_shape", &cnt);
    if (!ps || cnt != 2)
        return ic_fail(c, "attribute 'pooled_shape' must have 2 values");
    if (ps[0] < 1 || ps[1] < 1 || ps[0] >= CW_LIMIT || ps[1] >= CW_LIMIT)
        return ic_fail(c, "pooled_shape values must be positive");
    float sc = ir_attr_float(c->node, "spatial_scale", 1.0f);
    if (!(sc > 0.0f) || sc > 1e30f)
        return ic_fail(c, "spatial_scale must be positive");
    int64_t dims[4] = {dim_or_sym(c, rois, 0), dim_or_sym(c, x, 1), ps[0],
                       ps[1]};
    ic_set_out(c, 0, x->dtype, 4, dims);
    return 0;
}

const op_schema op_schemas_conv[] = {
    {OP_Conv, 2, 3, 1, 1, infer_conv},
    {OP_ConvTranspose, 2, 3, 1, 1, infer_conv_transpose},
    {OP_MaxPool, 1, 1, 1, 2, infer_pool},
    {OP_AveragePool, 1, 1, 1, 1, infer_pool},
    {OP_LpPool, 1, 1, 1, 1, infer_pool},
    {OP_GlobalAveragePool, 1, 1, 1, 1, infer_global_pool},
    {OP_GlobalMaxPool, 1, 1, 1, 1, infer_global_pool},
    {OP_GlobalLpPool, 1, 1, 1, 1, infer_global_pool},
    {OP_LpNormalization, 1, 1, 1, 1, infer_lp_norm},
    {OP_MaxUnpool, 2, 3, 1, 1, infer_max_unpool},
    {OP_Col2Im, 3, 3, 1, 1, infer_col2im},
    {OP_MaxRoiPool, 2, 2, 1, 1, infer_max_roi_pool},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
