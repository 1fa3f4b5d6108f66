/* ref_index_sample.c: reference kernels for the index family's resampling
** ops: Resize/Upsample (separable, mirroring the ONNX reference's
** coordinate and tap rules), GridSample and AffineGrid. */
#include "ref_index.h"

#include <math.h>
#include <stdio.h>

#define MAXV 64

/* ------------------------------------------------------------- Resize */

/* Source coordinate of output index y on one axis (ONNX reference rules:
** "output_width" is the unrounded scale * input length). */
static double rz_coord(int mode, double y, double s, int64_t L, int64_t O,
                       double r0, double r1) {
    double ow = s * (double)L, Lm1 = (double)(L - 1);
    switch (mode) {
    case RZ_ALIGN_CORNERS:
        return ow == 1 ? 0.0 : y * Lm1 / (ow - 1);
    case RZ_ASYMMETRIC:
        return y / s;
    case RZ_TF_CROP_AND_RESIZE: {
        /* roi arithmetic in float32, as the ONNX reference does (it decides
        ** ties of nearest rounding) */
        float d = (float)r1 - (float)r0, base = (float)r0 * (float)(L - 1);
        double v = ow == 1 ? (double)(d * (float)(L - 1) / 2)
                           : y * (double)d * Lm1 / (ow - 1);
        return v + (double)base;
    }
    case RZ_PYTORCH_HALF_PIXEL:
        return ow == 1 ? -0.5 : (y + 0.5) / s - 0.5;
    case RZ_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)O / ow, center = (double)L / 2;
        double off = center * (1 - adj);
        return off + (y + 0.5) / s - 0.5;
    }
    case RZ_TF_HALF_PIXEL_FOR_NN:
        return (y + 0.5) / s;
    default: /* half_pixel */
        return (y + 0.5) / s - 0.5;
    }
}

static bool isclose(double a, double b) {
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* Interpolation taps for one axis: weights for 'n' neighbours. */
static int rz_ntaps(const resize_attrs *a, double s) {
    if (a->mode == RZ_NEAREST) return 2;
    if (!a->antialias) return a->mode == RZ_LINEAR ? 2 : 4;
    double sc = s < 1 ? s : 1;
    double st = floor((a->mode == RZ_LINEAR ? -1.0 : -2.0) / sc) + 1;
    if (st < -(double)(1 << 24)) return -1;
    return 2 - 2 * (int)st;
}

static double cubic_w(double x, double A) {
    x = fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
}

static void rz_coeffs(const resize_attrs *a, double ratio, double s, int n,
                      double *w) {
    if (a->mode == RZ_NEAREST) {
        bool up;
        if (ratio == 1.0) up = true; /* integer coordinate: the right tap */
        else if (a->nearest == RZ_ROUND_PREFER_FLOOR) up = ratio > 0.5;
        else if (a->nearest == RZ_ROUND_PREFER_CEIL) up = ratio >= 0.5;
        else if (a->nearest == RZ_SIMPLE) up = s < 1;
        else up = a->nearest == RZ_CEIL;
        w[0] = up ? 0 : 1;
        w[1] = up ? 1 : 0;
        return;
    }
    double A = a->cubic_a;
    if (!a->antialias) {
        if (a->mode == RZ_LINEAR) {
            w[0] = 1 - ratio;
            w[1] = ratio;
        } else {
            double r = ratio, q = 1 - ratio;
            w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
            w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
            w[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
            w[3] = ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A;
        }
        return;
    }
    /* antialias: the kernel is stretched by 1/scale when downsampling */
    double sc = s < 1 ? s : 1, sum = 0;
    int start = 1 - n / 2;
    for (int k = 0; k < n; k++) {
        double arg = ((double)(start + k) - ratio) * sc;
        w[k] = a->mode == RZ_LINEAR ? fmin(fmax(1 - fabs(arg), 0), 1)
                                    : cubic_w(arg, A);
        sum += w[k];
    }
    for (int k = 0; k < n; k++) w[k] /= sum;
}

/* Taps of output index y on one axis: idx[n] (clamped), w[n]; returns true
** when the point is extrapolated (tf_crop_and_resize outside the input). */
static bool rz_taps(const resize_attrs *a, int64_t y, double s, int64_t L,
                    int64_t O, double r0, double r1, int n, int64_t *idx,
                    double *w) {
    double x = rz_coord(a->coord, (double)y, s, L, O, r0, r1);
    if (a->coord == RZ_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(L - 1)))
        return true;
    if (!isfinite(x)) x = 0;
    x = fmin(fmax(x, -1e15), 1e15);
    double fl = floor(x), ratio = x == fl ? 1.0 : x - fl;
    rz_coeffs(a, ratio, s, n, w);
    /* the n nearest neighbours, ties toward the smaller index */
    int half = n / 2;
    double xp = x + half, p = floor(xp);
    int64_t start = (int64_t)p + (xp - p == 0 ? -half : -half + 1) - half;
    if (a->exclude_outside) {
        double sum = 0;
        for (int k = 0; k < n; k++) {
            int64_t i = start + k;
            if (i < 0 || i >= L) w[k] = 0;
            sum += w[k];
        }
        if (sum == 0) sum = 1;
        for (int k = 0; k < n; k++) w[k] /= sum;
    }
    for (int k = 0; k < n; k++) {
        int64_t i = start + k;
        idx[k] = i < 0 ? 0 : i >= L ? L - 1 : i;
    }
    return false;
}

static bool rz_identity(const resize_attrs *a, int ax, int rank, int64_t L,
                        int64_t O, const double *sc, const double *rf) {
    (void)a;
    return isclose(sc[ax], 1.0) && O == L && rf[ax] == 0.0 &&
           isclose(rf[rank + ax], 1.0);
}

static int64_t int_min(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_INT8: return INT8_MIN;
    case KILN_DTYPE_INT16: return INT16_MIN;
    case KILN_DTYPE_INT32: return INT32_MIN;
    case KILN_DTYPE_INT4: return -8;
    case KILN_DTYPE_INT2: return -2;
    case KILN_DTYPE_INT64: return INT64_MIN;
    default: return 0;
    }
}

static int64_t int_max(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_INT8: return INT8_MAX;
    case KILN_DTYPE_INT16: return INT16_MAX;
    case KILN_DTYPE_INT32: return INT32_MAX;
    case KILN_DTYPE_INT4: return 7;
    case KILN_DTYPE_UINT8: return UINT8_MAX;
    case KILN_DTYPE_UINT16: return UINT16_MAX;
    case KILN_DTYPE_UINT32: return UINT32_MAX;
    case KILN_DTYPE_UINT4: return 15;
    case KILN_DTYPE_INT2: return 1;
    case KILN_DTYPE_UINT2: return 3;
    case KILN_DTYPE_BOOL: return 1;
    default: return INT64_MAX;
    }
}

/* Stores a double into element i with the ONNX saturating cast: integers
** round half to even, then clamp to the type's range. */
static void store_sat(kiln_dtype t, void *p, size_t i, double v) {
    if (dtype_is_float(t)) {
        dt_set_f64(t, p, i, v);
        return;
    }
    v = nearbyint(v);
    if (t == KILN_DTYPE_UINT64 || t == KILN_DTYPE_INT64) {
        dt_set_f64(t, p, i, v); /* dt_set_f64 saturates 64-bit targets */
        return;
    }
    double lo = (double)int_min(t), hi = (double)int_max(t);
    v = v != v ? 0 : v < lo ? lo : v > hi ? hi : v;
    dt_set_i64(t, p, i, (int64_t)v);
}

static int resize_nearest(ref_ctx *c, const resize_attrs *a,
                          const double *sc, const double *rf) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    idx_maps mp;
    if (idx_maps_init(c, &mp, r, y->dims)) return -1;
    for (int ax = 0; ax < r; ax++) {
        int64_t L = x->dims[ax], O = y->dims[ax], idx[4];
        double w[4];
        bool id = rz_identity(a, ax, r, L, O, sc, rf);
        for (int64_t o = 0; o < O; o++) {
            if (id) mp.m[ax][o] = o;
            else if (rz_taps(a, o, sc[ax], L, O, rf[ax], rf[r + ax], 2, idx, w))
                mp.m[ax][o] = -1;
            else mp.m[ax][o] = w[1] > w[0] ? idx[1] : idx[0];
        }
    }
    uint8_t fill[16] = {0};
    if (dtype_is_numeric(x->dtype) && kiln_dtype_size(x->dtype) <= 8)
        store_sat(x->dtype, fill, 0, a->extrapolation);
    idx_map_copy(y, x, &mp, NULL, fill);
    idx_maps_free(&mp);
    return 0;
}

/* Linear/cubic: one separable pass per resized axis in double. */
static int resize_interp(ref_ctx *c, const resize_attrs *a, const double *sc,
                         const double *rf) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    int64_t n = tensor_numel(x), cd[KILN_MAX_RANK];
    memcpy(cd, x->dims, (size_t)r * sizeof *cd);
    double *cur = malloc((size_t)(n ? n : 1) * sizeof *cur);
    if (!cur) return ref_fail(c, "out of memory");
    for (int64_t i = 0; i < n; i++) cur[i] = dt_get_f64(x->dtype, x->data, (size_t)i);
    for (int ax = 0; ax < r; ax++) {
        int64_t L = cd[ax], O = y->dims[ax];
        if (rz_identity(a, ax, r, L, O, sc, rf)) continue;
        int nt = rz_ntaps(a, sc[ax]);
        if (nt < 0) {
            free(cur);
            return ref_fail(c, "resize scale %g is too small", sc[ax]);
        }
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) outer *= cd[i];
        for (int i = ax + 1; i < r; i++) inner *= cd[i];
        int64_t nn64;
        if (__builtin_mul_overflow(outer, O, &nn64) ||
            __builtin_mul_overflow(nn64, inner, &nn64) ||
            nn64 > (int64_t)(KILN_MAX_ALLOC / sizeof(double))) {
            free(cur);
            return ref_fail(c, "resize intermediate is too large");
        }
        size_t nn = (size_t)nn64, nw = (size_t)(O ? O : 1) * (size_t)nt;
        double *nxt = malloc((nn ? nn : 1) * sizeof *nxt);
        double *w = malloc(nw * sizeof *w);
        int64_t *idx = malloc(nw * sizeof *idx);
        bool *ext = malloc((size_t)(O ? O : 1) * sizeof *ext);
        if (!nxt || !w || !idx || !ext) {
            free(nxt), free(w), free(idx), free(ext), free(cur);
            return ref_fail(c, "out of memory");
        }
        for (int64_t o = 0; o < O; o++)
            ext[o] = rz_taps(a, o, sc[ax], L, O, rf[ax], rf[r + ax], nt,
                             idx + o * nt, w + o * nt);
        for (int64_t ou = 0; ou < outer; ou++)
            for (int64_t o = 0; o < O; o++) {
                double *dst = nxt + (ou * O + o) * inner;
                if (ext[o]) {
                    for (int64_t k = 0; k < inner; k++) dst[k] = a->extrapolation;
                    continue;
                }
                for (int64_t k = 0; k < inner; k++) dst[k] = 0;
                for (int t = 0; t < nt; t++) {
                    double wt = w[o * nt + t];
                    const double *src = cur + (ou * L + idx[o * nt + t]) * inner;
                    for (int64_t k = 0; k < inner; k++) dst[k] += wt * src[k];
                }
            }
        free(w), free(idx), free(ext), free(cur);
        cur = nxt;
        cd[ax] = O;
    }
    int64_t m = tensor_numel(y);
    for (int64_t i = 0; i < m; i++) store_sat(y->dtype, y->data, (size_t)i, cur[i]);
    free(cur);
    return 0;
}

int ref_resize(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    resize_attrs a;
    char err[INDEX_ERR_SIZE];
    if (index_resize_attrs(c->node, c->node->op, c->opset, r, &a, err))
        return ref_fail(c, "%s", err);
    double scales[MAXV], roi[MAXV];
    int64_t sizes[MAXV];
    int nsc = -1, nsz = -1, nroi = -1;
    if (a.attr_scales) {
        if (a.n_attr_scales > MAXV) return ref_fail(c, "too many scales");
        nsc = a.n_attr_scales;
        for (int k = 0; k < nsc; k++) scales[k] = a.attr_scales[k];
    } else if (ref_has(c, a.i_scales) && tensor_numel(c->in[a.i_scales]) > 0) {
        const kiln_tensor *t = c->in[a.i_scales];
        int64_t k = tensor_numel(t);
        if (!dtype_is_float(t->dtype) || k > MAXV)
            return ref_fail(c, "scales must be a float vector");
        nsc = (int)k;
        for (int i = 0; i < nsc; i++) scales[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    }
    if (a.i_sizes >= 0 && ref_has(c, a.i_sizes) &&
        tensor_numel(c->in[a.i_sizes]) > 0 &&
        (nsz = ref_read_ints(c, c->in[a.i_sizes], sizes, MAXV, "sizes")) < 0)
        return -1;
    if (a.i_roi >= 0 && ref_has(c, a.i_roi) && tensor_numel(c->in[a.i_roi]) > 0) {
        const kiln_tensor *t = c->in[a.i_roi];
        int64_t k = tensor_numel(t);
        if (!dtype_is_numeric(t->dtype) || k > MAXV)
            return ref_fail(c, "roi must be a small numeric vector");
        nroi = (int)k;
        for (int i = 0; i < nroi; i++) roi[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    }
    int64_t od[KILN_MAX_RANK];
    double sc[KILN_MAX_RANK], rf[2 * KILN_MAX_RANK];
    if (index_resize_plan(&a, r, x->dims, scales, nsc, sizes, nsz, roi, nroi, od,
                          sc, rf, err))
        return ref_fail(c, "%s", err);
    if (!shape_equal(y->rank, y->dims, r, od) || !y->data)
        return ref_fail(c, "Resize output shape does not match its inputs");
    if (tensor_numel(y) == 0) return 0;
    for (int i = 0; i < r; i++)
        if (x->dims[i] == 0)
            return ref_fail(c, "cannot resize an empty axis %d to %lld", i,
                            (long long)od[i]);
    if (a.mode == RZ_NEAREST) return resize_nearest(c, &a, sc, rf);
    if (!dtype_is_numeric(x->dtype))
        return ref_fail(c, "linear/cubic resize needs a numeric input");
    return resize_interp(c, &a, sc, rf);
}

/* --------------------------------------------------------- GridSample */

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

/* Reflects x into [lo, hi] by the nearest border, repeatedly. */
static double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo) {
        double dx = lo - x;
        double k = floor(dx / rng), rem = dx - k * rng;
        return fmod(k, 2) == 0 ? lo + rem : hi - rem;
    }
    if (x > hi) {
        double dx = x - hi;
        double k = floor(dx / rng), rem = dx - k * rng;
        return fmod(k, 2) == 0 ? hi - rem : lo + rem;
    }
    return x;
}

/* Index of a tap after padding, or -1 for a zero (padding "zeros"). */
static int64_t gs_pixel(int64_t i, int64_t d, int pad, double lo, double hi) {
    if (pad == GS_ZEROS) return i >= 0 && i < d ? i : -1;
    if (pad == GS_REFLECTION) {
        double f = gs_reflect((double)i, lo, hi);
        i = (int64_t)f; /* truncation, as the reference does */
    }
    return i < 0 ? 0 : i >= d ? d - 1 : i;
}

static void gs_cubic(float t, float *w) {
    const float A = -0.75f;
    float x = fabsf(t);
    w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    w[3] = ((A * (2 - x) - 5 * A) * (2 - x) + 8 * A) * (2 - x) - 4 * A;
}

int ref_grid_sample(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *g = c->in[1];
    kiln_tensor *y = c->out[0];
    int r = x->rank, k = r - 2;
    if (r < 3 || g->rank != r || g->dims[r - 1] != k || g->dims[0] != x->dims[0])
        return ref_fail(c, "GridSample X/grid shapes do not fit");
    const char *ms = ir_attr_str(c->node, "mode", "linear");
    const char *ps = ir_attr_str(c->node, "padding_mode", "zeros");
    int mode = !strcmp(ms, "nearest") ? GS_NEAREST
               : (!strcmp(ms, "cubic") || !strcmp(ms, "bicubic")) ? GS_CUBIC
               : GS_LINEAR;
    int pad = !strcmp(ps, "border") ? GS_BORDER
              : !strcmp(ps, "reflection") ? GS_REFLECTION : GS_ZEROS;
    bool ac = ir_attr_int(c->node, "align_corners", 0) != 0;
    int64_t N = x->dims[0], C = x->dims[1];
    const int64_t *D = x->dims + 2, *O = g->dims + 1;
    int64_t outsz = 1;
    for (int d = 0; d < k; d++) outsz *= O[d];
    if (tensor_numel(y) == 0) return 0;
    float *xf = tensor_to_f32(x), *gf = tensor_to_f32(g);
    float *yf = malloc((size_t)tensor_numel(y) * sizeof *yf);
    if (!xf || !gf || !yf) {
        free(xf), free(gf), free(yf);
        return ref_fail(c, "out of memory");
    }
    int nt = mode == GS_NEAREST ? 1 : mode == GS_LINEAR ? 2 : 4;
    int64_t tidx[KILN_MAX_RANK][4], ds[KILN_MAX_RANK];
    float tw[KILN_MAX_RANK][4];
    int64_t chan = 1;
    for (int d = k - 1; d >= 0; d--) {
        ds[d] = chan;
        chan *= D[d];
    }
    int64_t combos = 1;
    for (int d = 0; d < k; d++) combos *= nt;
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < outsz; p++) {
            const float *gv = gf + (n * outsz + p) * k;
            for (int d = 0; d < k; d++) {
                float v = gv[k - 1 - d]; /* grid is (x, y, ...): last dim first */
                float L = (float)D[d];
                float xc = ac ? (v + 1) / 2.0f * (L - 1) : ((v + 1) * L - 1) / 2.0f;
                double lo = ac ? 0.0 : -0.5, hi = ac ? (double)D[d] - 1 : (double)D[d] - 0.5;
                if (mode == GS_NEAREST) xc = nearbyintf(xc);
                /* cubic pads each tap instead (PyTorch/ORT semantics:
                ** clamping the coordinate first would shift the taps) */
                if (mode != GS_CUBIC && (xc < lo || xc > hi)) {
                    if (pad == GS_BORDER)
                        xc = xc < 0 ? 0 : xc > L - 1 ? L - 1 : xc;
                    else if (pad == GS_REFLECTION)
                        xc = (float)gs_reflect(xc, lo, hi);
                }
                /* keep the tap arithmetic in range for any input */
                if (!(xc >= -1e9f)) xc = -1e9f;
                if (xc > 1e9f) xc = 1e9f;
                if (mode == GS_NEAREST) {
                    tidx[d][0] = gs_pixel((int64_t)xc, D[d], pad, lo, hi);
                    tw[d][0] = 1;
                    continue;
                }
                float fl = floorf(xc);
                int64_t i0 = (int64_t)fl;
                float t = xc - fl;
                if (mode == GS_LINEAR) {
                    tw[d][0] = 1 - t;
                    tw[d][1] = t;
                    for (int j = 0; j < 2; j++)
                        tidx[d][j] = gs_pixel(i0 + j, D[d], pad, lo, hi);
                } else {
                    gs_cubic(t, tw[d]);
                    for (int j = 0; j < 4; j++)
                        tidx[d][j] = gs_pixel(i0 - 1 + j, D[d], pad, lo, hi);
                }
            }
            for (int64_t ch = 0; ch < C; ch++) {
                const float *xs = xf + (n * C + ch) * chan;
                float acc = 0;
                for (int64_t cb = 0; cb < combos; cb++) {
                    int64_t q = cb, off = 0;
                    float wt = 1;
                    bool zero = false;
                    for (int d = k - 1; d >= 0; d--) {
                        int j = (int)(q % nt);
                        q /= nt;
                        if (tidx[d][j] < 0) zero = true;
                        off += tidx[d][j] * ds[d];
                        wt *= tw[d][j];
                    }
                    if (!zero) acc += wt * xs[off];
                }
                yf[(n * C + ch) * outsz + p] = acc;
            }
        }
    tensor_from_f32(y, yf);
    free(xf), free(gf), free(yf);
    return 0;
}

/* --------------------------------------------------------- AffineGrid */

int ref_affine_grid(ref_ctx *c) {
    const kiln_tensor *th = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t sz[MAXV];
    int n = ref_read_ints(c, c->in[1], sz, MAXV, "size");
    if (n < 0) return -1;
    if (n != 4 && n != 5) return ref_fail(c, "AffineGrid size must have 4 or 5 values");
    int k = n - 2;
    if (th->rank != 3 || th->dims[1] != k || th->dims[2] != k + 1 ||
        th->dims[0] != sz[0])
        return ref_fail(c, "AffineGrid theta must be [%lld, %d, %d]",
                        (long long)sz[0], k, k + 1);
    bool ac = ir_attr_int(c->node, "align_corners", 0) != 0;
    int64_t od[6] = {sz[0]};
    for (int i = 0; i < k; i++) od[1 + i] = sz[2 + i];
    od[1 + k] = k;
    if (!shape_equal(y->rank, y->dims, k + 2, od))
        return ref_fail(c, "AffineGrid output shape mismatch");
    int64_t sp = 1;
    for (int i = 0; i < k; i++) sp *= sz[2 + i];
    size_t o = 0;
    for (int64_t b = 0; b < sz[0]; b++) {
        double t[12];
        for (int i = 0; i < k * (k + 1); i++)
            t[i] = dt_get_f64(th->dtype, th->data, (size_t)(b * k * (k + 1) + i));
        int64_t idx[3] = {0, 0, 0};
        for (int64_t p = 0; p < sp; p++) {
            /* base coordinate per spatial dim, then (x, y[, z]) order */
            double base[3], hom[4];
            for (int d = 0; d < k; d++) {
                double L = (double)sz[2 + d], i = (double)idx[d];
                if (ac) base[d] = L <= 1 ? 0.0 : -1 + i * (2.0 / (L - 1));
                else base[d] = -1 + (2.0 / L) / 2 + i * (2.0 / L);
            }
            for (int d = 0; d < k; d++) hom[d] = base[k - 1 - d];
            hom[k] = 1;
            for (int row = 0; row < k; row++) {
                double v = 0;
                for (int j = 0; j <= k; j++) v += t[row * (k + 1) + j] * hom[j];
                dt_set_f64(y->dtype, y->data, o++, v);
            }
            for (int d = k - 1; d >= 0; d--) {
                if (++idx[d] < sz[2 + d]) break;
                idx[d] = 0;
            }
        }
    }
    return 0;
}
