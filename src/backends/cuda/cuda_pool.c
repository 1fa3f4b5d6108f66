/* cuda_pool.c: CUDA tactics of the pool family (see cuda_internal.h):
** MaxPool (with its Indices output too), AveragePool and LpPool over 1 to 3
** spatial dims, GlobalAveragePool/GlobalMaxPool/GlobalLpPool, and
** Resize/Upsample (nearest with every coordinate mode and rounding rule,
** linear and cubic over any resized axes, antialiased too), GridSample (1 to 3
** spatial dims, every mode and padding), AffineGrid (2-D and 3-D), LRN. Window
** geometry comes from the same
** conv_window code as inference and the reference kernels; resize sizes
** and scales from the constant inputs' host copies.
**
** Channels-last (ops/layout.h, made by passes/layout.c): NhwcMaxPool,
** NhwcAveragePool, NhwcGlobalAveragePool, and the ToNhwc / ToNchw reformat
** layers (tiled transposes), over kernels/nhwc.cu. */
#include "cuda_internal.h"
#include "kernels/pool_kernels.h"
#include "kernels/nhwc_kernels.h"
#include "../../ops/conv_window.h"
#include "../../ops/index_shared.h"

#include <math.h>
#include <string.h>

#define MAXV 64

_Static_assert((int)KC_RZ_NEAREST == (int)RZ_NEAREST && (int)KC_RZ_LINEAR == (int)RZ_LINEAR &&
                   (int)KC_RZ_CUBIC == (int)RZ_CUBIC,
               "resize modes");
_Static_assert((int)KC_RZ_HALF_PIXEL == (int)RZ_HALF_PIXEL &&
                   (int)KC_RZ_HALF_PIXEL_SYMMETRIC == (int)RZ_HALF_PIXEL_SYMMETRIC &&
                   (int)KC_RZ_PYTORCH_HALF_PIXEL == (int)RZ_PYTORCH_HALF_PIXEL &&
                   (int)KC_RZ_ALIGN_CORNERS == (int)RZ_ALIGN_CORNERS && (int)KC_RZ_ASYMMETRIC == (int)RZ_ASYMMETRIC &&
                   (int)KC_RZ_TF_CROP_AND_RESIZE == (int)RZ_TF_CROP_AND_RESIZE &&
                   (int)KC_RZ_TF_HALF_PIXEL_FOR_NN == (int)RZ_TF_HALF_PIXEL_FOR_NN,
               "resize coordinate modes");
_Static_assert((int)KC_RZ_ROUND_PREFER_FLOOR == (int)RZ_ROUND_PREFER_FLOOR &&
                   (int)KC_RZ_ROUND_PREFER_CEIL == (int)RZ_ROUND_PREFER_CEIL && (int)KC_RZ_FLOOR == (int)RZ_FLOOR &&
                   (int)KC_RZ_CEIL == (int)RZ_CEIL && (int)KC_RZ_SIMPLE == (int)RZ_SIMPLE,
               "resize nearest modes");

/* ------------------------------------------------------------ helpers */

/* KC_DT_* of a float storage type, -1 for the others. */
static int float_kind(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32    ? KC_DT_F32
           : t == KILN_DTYPE_FLOAT16  ? KC_DT_F16
           : t == KILN_DTYPE_BFLOAT16 ? KC_DT_BF16
                                      : -1;
}

/* An output that somebody reads (a consumer or a graph output). */
static bool output_used(const ir_node *n, int i) {
    if (i >= n->n_out || !n->out[i]) return false;
    const ir_value *v = n->out[i];
    return v->n_uses > 0 || (v->flags & IR_VALUE_OUTPUT);
}

/* ------------------------------------------------------------ windowed pools */

static bool sup_pool(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || float_kind(in[0]->dtype) < 0 || in[0]->rank < 3 || in[0]->rank > 5)
        return false;
    if (n->op != OP_MaxPool && n->n_out > 1 && output_used(n, 1)) return false;
    conv_window w;
    char err[256];
    if (conv_window_read(n, in[0]->rank - 2, NULL, CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &w, err,
                         sizeof err))
        return false;
    if (n->op == OP_LpPool && !(ir_attr_float(n, "p", 2.0f) > 0)) return false;
    return true;
}

static int run_pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    int op = c->node->op, r = X->rank, nsp = r - 2;
    if (r < 3 || r > 5) return ref_fail(c, "X must have rank 3 to 5");
    conv_window win;
    conv_geom g;
    if (conv_window_read(c->node, nsp, NULL, CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &win, c->err,
                         sizeof c->err) ||
        conv_geom_forward(&win, X->dims + 2, &g, c->err, sizeof c->err))
        return -1;
    if (Y->rank != r || Y->dims[0] != X->dims[0] || Y->dims[1] != X->dims[1])
        return ref_fail(c, "internal: pool output shape");
    for (int i = 0; i < nsp; i++)
        if (Y->dims[2 + i] != g.grid[i]) return ref_fail(c, "internal: pool output shape");
    kc_pool_params p;
    memset(&p, 0, sizeof p);
    p.planes = X->dims[0] * X->dims[1];
    int lead = 3 - nsp; /* missing spatial dims become size-1 ones in front */
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        p.img[i] = j >= 0 ? g.img[j] : 1;
        p.grid[i] = j >= 0 ? g.grid[j] : 1;
        p.k[i] = j >= 0 ? g.k[j] : 1;
        p.s[i] = j >= 0 ? g.s[j] : 1;
        p.d[i] = j >= 0 ? g.d[j] : 1;
        p.pb[i] = j >= 0 ? g.pb[j] : 0;
        p.pe[i] = j >= 0 ? g.pe[j] : 0;
    }
    p.kind = op == OP_MaxPool ? KC_POOL_MAX : op == OP_AveragePool ? KC_POOL_AVG : KC_POOL_LP;
    if (op == OP_MaxPool && c->n_out > 1 && c->out[1]) {
        kiln_tensor *I = c->out[1];
        if (I->dtype != KILN_DTYPE_INT64 || tensor_numel(I) != tensor_numel(Y))
            return ref_fail(c, "internal: MaxPool Indices shape");
        p.ind = I->data;
        p.col_major = ir_attr_int(c->node, "storage_order", 0) == 1;
    }
    p.include_pad = ir_attr_int(c->node, "count_include_pad", 0) != 0;
    p.p = op == OP_LpPool ? ir_attr_float(c->node, "p", 2.0f) : 0.0f;
    if (op == OP_LpPool && !(p.p > 0)) return ref_fail(c, "p must be positive");
    return cuda_fail_if(c, kc_pool(float_kind(X->dtype), X->data, Y->data, &p, cuda_stream_of(c)),
                        c->node->op_type ? c->node->op_type : "pool");
}

/* ------------------------------------------------------------ global pools */

static bool sup_global(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || float_kind(in[0]->dtype) < 0 || in[0]->rank < 2) return false;
    return n->op != OP_GlobalLpPool || ir_attr_float(n, "p", 2.0f) > 0;
}

static int run_global(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int op = c->node->op, r = X->rank;
    if (r < 2) return ref_fail(c, "X must have rank >= 2");
    int kind = op == OP_GlobalAveragePool ? KC_POOL_AVG : op == OP_GlobalMaxPool ? KC_POOL_MAX
                                                                                 : KC_POOL_LP;
    float lp = kind == KC_POOL_LP ? ir_attr_float(c->node, "p", 2.0f) : 0.0f;
    if (kind == KC_POOL_LP && !(lp > 0)) return ref_fail(c, "p must be positive");
    int64_t planes = X->dims[0] * X->dims[1], n = shape_numel(r - 2, X->dims + 2);
    if (tensor_numel(c->out[0]) != planes) return ref_fail(c, "internal: pool output shape");
    return cuda_fail_if(c, kc_global_pool(float_kind(X->dtype), X->data, c->out[0]->data, planes, n,
                                          kind, lp, cuda_stream_of(c)),
                        c->node->op_type ? c->node->op_type : "global pool");
}

/* ------------------------------------------------------------ channels-last */

/* KC_F32/F16/BF16 (gemm_kernels.h) of a float type, -1 for the others. */
static int kc_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 ? KC_F32 : t == KILN_DTYPE_FLOAT16 ? KC_F16
           : t == KILN_DTYPE_BFLOAT16 ? KC_BF16 : -1;
}

static bool sup_nhwc_pool(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || kc_float(in[0]->dtype) < 0 || in[0]->rank != 4 || n->n_out != 1) return false;
    conv_window w;
    if (conv_window_read(n, 2, NULL, CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &w, NULL, 0))
        return false;
    return !w.ceil_mode; /* the pass never makes one; the host keeps ONNX's edge rules */
}

static int run_nhwc_pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    if (X->rank != 4 || Y->rank != 4) return ref_fail(c, "X and Y must have rank 4");
    conv_window win;
    conv_geom g;
    int64_t img[2] = {X->dims[1], X->dims[2]};
    if (conv_window_read(c->node, 2, NULL, CW_CEIL | CW_DILATIONS | CW_AUTO_PAD, &win, c->err,
                         sizeof c->err) ||
        conv_geom_forward(&win, img, &g, c->err, sizeof c->err))
        return -1;
    if (win.ceil_mode) return ref_fail(c, "ceil_mode is not supported here");
    if (Y->dims[0] != X->dims[0] || Y->dims[1] != g.grid[0] || Y->dims[2] != g.grid[1] ||
        Y->dims[3] != X->dims[3])
        return ref_fail(c, "internal: NHWC pool output shape");
    for (int i = 0; i < 2; i++)
        if (g.k[i] > INT32_MAX || g.s[i] > INT32_MAX || g.d[i] > INT32_MAX ||
            g.pb[i] > INT32_MAX || g.pe[i] > INT32_MAX)
            return ref_fail(c, "window attributes out of range");
    kc_nhwc_pool_geom p;
    memset(&p, 0, sizeof p);
    p.n = X->dims[0], p.h = X->dims[1], p.w = X->dims[2], p.c = X->dims[3];
    p.oh = g.grid[0], p.ow = g.grid[1];
    p.kh = (int)g.k[0], p.kw = (int)g.k[1], p.sh = (int)g.s[0], p.sw = (int)g.s[1];
    p.dh = (int)g.d[0], p.dw = (int)g.d[1];
    p.pt = (int)g.pb[0], p.pl = (int)g.pb[1], p.pb = (int)g.pe[0], p.pr = (int)g.pe[1];
    p.max = c->node->op == OP_NhwcMaxPool;
    p.include_pad = ir_attr_int(c->node, "count_include_pad", 0) != 0;
    return cuda_fail_if(c, kc_nhwc_pool(kc_float(X->dtype), X->data, Y->data, &p,
                                        cuda_stream_of(c)),
                        p.max ? "NHWC max pool" : "NHWC average pool");
}

static bool sup_nhwc_gap(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in[0] && kc_float(in[0]->dtype) >= 0 && in[0]->rank == 4;
}

static int run_nhwc_gap(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    if (X->rank != 4) return ref_fail(c, "X must have rank 4");
    if (tensor_numel(c->out[0]) != X->dims[0] * X->dims[3])
        return ref_fail(c, "internal: NHWC global pool output shape");
    return cuda_fail_if(c, kc_nhwc_global_avg(kc_float(X->dtype), X->data, c->out[0]->data,
                                              X->dims[0], X->dims[1] * X->dims[2], X->dims[3],
                                              cuda_stream_of(c)),
                        "NHWC global average pool");
}

/* The reformat layers copy bits: any 1-, 2- or 4-byte element type (1:
** the int8/uint8 values of INT8 chains). */
static bool sup_reformat(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || in[0]->rank != 4 || !dtype_is_valid((int)in[0]->dtype)) return false;
    size_t es = kiln_dtype_size(in[0]->dtype); /* 0 for sub-byte types */
    if (es != 1 && es != 2 && es != 4) return false;
    if (n->op == OP_ToNhwc) {
        int64_t cp = ir_attr_int(n, "channels", -1);
        if (cp != -1 && (cp < 1 || (in[0]->dims[1] >= 0 && cp < in[0]->dims[1]))) return false;
    }
    return true;
}

static int run_reformat(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    if (X->rank != 4 || Y->rank != 4) return ref_fail(c, "X and Y must have rank 4");
    int es = (int)kiln_dtype_size(X->dtype);
    if (c->node->op == OP_ToNhwc) {
        int64_t cp = Y->dims[3];
        if (Y->dims[0] != X->dims[0] || Y->dims[1] != X->dims[2] || Y->dims[2] != X->dims[3] ||
            cp < X->dims[1])
            return ref_fail(c, "internal: ToNhwc output shape");
        return cuda_fail_if(c, kc_nchw_to_nhwc(es, X->data, Y->data, X->dims[0], X->dims[1],
                                               X->dims[2], X->dims[3], cp, cuda_stream_of(c)),
                            "NCHW to NHWC");
    }
    if (Y->dims[0] != X->dims[0] || Y->dims[1] != X->dims[3] || Y->dims[2] != X->dims[1] ||
        Y->dims[3] != X->dims[2])
        return ref_fail(c, "internal: ToNchw output shape");
    return cuda_fail_if(c, kc_nhwc_to_nchw(es, X->data, Y->data, X->dims[0], X->dims[3],
                                           X->dims[1], X->dims[2], cuda_stream_of(c)),
                        "NHWC to NCHW");
}

/* ------------------------------------------------------------ Resize */

static bool movable(kiln_dtype t) {
    if (t == KILN_DTYPE_STRING || t == KILN_DTYPE_UNDEFINED || t == KILN_DTYPE_INT4 ||
        t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_FLOAT4E2M1 || !dtype_is_valid((int)t))
        return false;
    size_t es = kiln_dtype_size(t);
    return es == 1 || es == 2 || es == 4 || es == 8;
}

static bool const_or_absent(const ir_node *n, int i) {
    return i < 0 || i >= n->n_in || !n->in[i] || n->in[i]->const_val;
}

/* Attributes and data type a device Resize takes (params aside). */
static bool sup_resize_base(const ir_node *n, const ir_type *const *in, resize_attrs *a) {
    if (!in[0] || in[0]->rank < 1 || in[0]->rank > KC_RZ_MAXD) return false;
    int opset = n->graph && n->graph->model ? (int)n->graph->model->opset : 18;
    char err[INDEX_ERR_SIZE];
    if (index_resize_attrs(n, n->op, opset, in[0]->rank, a, err)) return false;
    /* antialias: its own kernel for linear and cubic (nearest ignores it,
    ** as the reference does) */
    /* cubic with half_pixel_symmetric disagreed with the reference on an
    ** H100 (2026-12-06, 1e-2 relative): host until it is understood */
    if (a->mode == RZ_CUBIC && a->coord == RZ_HALF_PIXEL_SYMMETRIC) return false;
    if (a->mode != RZ_NEAREST && float_kind(in[0]->dtype) < 0) return false;
    if (a->mode == RZ_NEAREST && !movable(in[0]->dtype)) return false;
    /* the extrapolation value is stored as the input type: floats only */
    if (a->coord == RZ_TF_CROP_AND_RESIZE && !dtype_is_float(in[0]->dtype)) return false;
    return true;
}

static bool sup_resize(const ir_node *n, const ir_type *const *in) {
    resize_attrs a;
    return sup_resize_base(n, in, &a) && const_or_absent(n, a.i_roi) &&
           const_or_absent(n, a.i_scales) && const_or_absent(n, a.i_sizes);
}

/* Runtime roi, scales or sizes (graph inputs, or computed): read on the
** host when the layer runs (TACTIC_READS_PARAMS), so the run is never
** captured into a CUDA graph. At least one of them is a runtime tensor. */
static bool sup_resize_rt(const ir_node *n, const ir_type *const *in) {
    resize_attrs a;
    if (!sup_resize_base(n, in, &a)) return false;
    bool rt = false;
    for (int k = 0; k < 3; k++) {
        int i = k == 0 ? a.i_roi : k == 1 ? a.i_scales : a.i_sizes;
        if (const_or_absent(n, i)) continue;
        if (!cuda_param_runtime(n, in, i, k != 2)) return false;
        if (k == 1 && !dtype_is_float(in[i]->dtype)) return false;
        rt = true;
    }
    return rt;
}

/* The tensor behind parameter input i (the IR's constant, else the
** runtime tensor), or NULL when absent. */
static const kiln_tensor *param_t(const ref_ctx *c, int i) {
    if (i < 0 || i >= c->node->n_in || !c->node->in[i]) return NULL;
    if (c->node->in[i]->const_val) return c->node->in[i]->const_val;
    return i < c->n_in ? c->in[i] : NULL;
}

static bool isclose(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)); }

static int run_resize(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    resize_attrs a;
    char err[INDEX_ERR_SIZE];
    if (r < 1 || r > KC_RZ_MAXD) return ref_fail(c, "Resize rank %d is not supported here", r);
    if (index_resize_attrs(c->node, c->node->op, c->opset, r, &a, err)) return ref_fail(c, "%s", err);
    double scales[MAXV], roi[MAXV];
    int64_t sizes[MAXV];
    int nsc = -1, nsz = -1, nroi = -1;
    const kiln_tensor *t;
    /* constants come from the IR's host copy; runtime tensors are copied
    ** from the device (only the _rt tactic is given those) */
    if (a.attr_scales) {
        if (a.n_attr_scales > MAXV) return ref_fail(c, "too many scales");
        nsc = a.n_attr_scales;
        for (int k = 0; k < nsc; k++) scales[k] = a.attr_scales[k];
    } else if ((t = param_t(c, a.i_scales)) && tensor_numel(t) > 0) {
        if (!dtype_is_float(t->dtype) || tensor_numel(t) > MAXV)
            return ref_fail(c, "scales must be a float vector of at most %d values", MAXV);
        if ((nsc = cuda_param_f64(c, a.i_scales, scales, MAXV, "Resize scales")) < 0) return -1;
    }
    if ((t = param_t(c, a.i_sizes)) && tensor_numel(t) > 0) {
        if (!dtype_is_int(t->dtype) || tensor_numel(t) > MAXV)
            return ref_fail(c, "sizes must be an int vector of at most %d values", MAXV);
        if ((nsz = cuda_param_i64(c, a.i_sizes, sizes, MAXV, "Resize sizes")) < 0) return -1;
    }
    if ((t = param_t(c, a.i_roi)) && tensor_numel(t) > 0) {
        if (!dtype_is_numeric(t->dtype) || tensor_numel(t) > MAXV)
            return ref_fail(c, "roi must be a numeric vector of at most %d values", MAXV);
        if ((nroi = cuda_param_f64(c, a.i_roi, roi, MAXV, "Resize roi")) < 0) return -1;
    }
    if (nsc == 0) nsc = -1;
    if (nsz == 0) nsz = -1;
    if (nroi == 0) nroi = -1;
    int64_t od[KILN_MAX_RANK];
    double sc[KILN_MAX_RANK], rf[2 * KILN_MAX_RANK];
    if (index_resize_plan(&a, r, x->dims, scales, nsc, sizes, nsz, roi, nroi, od, sc, rf, err))
        return ref_fail(c, "%s", err);
    if (!shape_equal(y->rank, y->dims, r, od))
        return ref_fail(c, "Resize output shape does not match its inputs");
    if (tensor_numel(y) == 0) return 0;
    for (int i = 0; i < r; i++)
        if (x->dims[i] == 0)
            return ref_fail(c, "cannot resize an empty axis %d to %lld", i, (long long)od[i]);
    kc_resize_params p;
    memset(&p, 0, sizeof p);
    p.rank = r;
    p.coord = a.coord;
    p.nearest = a.nearest;
    p.exclude_outside = a.exclude_outside;
    p.extrapolation = a.extrapolation;
    p.cubic_a = a.cubic_a;
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        p.istr[i] = acc;
        acc *= x->dims[i];
    }
    for (int i = 0; i < r; i++) {
        kc_resize_axis *ax = &p.ax[i];
        ax->L = x->dims[i];
        ax->O = od[i];
        ax->scale = sc[i];
        ax->r0 = rf[i];
        ax->r1 = rf[r + i];
        ax->identity = isclose(sc[i], 1.0) && od[i] == x->dims[i] && rf[i] == 0.0 &&
                       isclose(rf[r + i], 1.0);
    }
    const char *what = c->node->op_type ? c->node->op_type : "Resize";
    if (a.mode == RZ_NEAREST) {
        uint64_t fill = 0;
        if (dtype_is_float(x->dtype) && kiln_dtype_size(x->dtype) <= 8)
            dt_set_f64(x->dtype, &fill, 0, a.extrapolation);
        return cuda_fail_if(c, kc_resize_nearest(y->data, x->data, &p, (int)kiln_dtype_size(x->dtype),
                                                 fill, cuda_stream_of(c)),
                            what);
    }
    if (float_kind(x->dtype) < 0)
        return ref_fail(c, "this Resize mode is not supported on the GPU");
    if (a.antialias) {
        /* taps per axis as the reference counts them (rz_ntaps) */
        double combos = 1;
        for (int i = 0; i < r; i++) {
            if (p.ax[i].identity) continue;
            double sc1 = sc[i] < 1 ? sc[i] : 1;
            double st0 = floor((a.mode == RZ_LINEAR ? -1.0 : -2.0) / sc1) + 1;
            if (!(st0 >= -(double)(1 << 24)))
                return ref_fail(c, "resize scale %g is too small", sc[i]);
            p.ax[i].nt = (int)(2 - 2 * st0);
            combos *= p.ax[i].nt;
        }
        if (combos > (double)(1 << 20))
            return ref_fail(c, "antialiased Resize needs %g taps per output element here",
                            combos);
        return cuda_fail_if(c, kc_resize_aa(float_kind(x->dtype), a.mode == RZ_CUBIC, y->data,
                                            x->data, &p, cuda_stream_of(c)),
                            what);
    }
    cudaError_t e = a.mode == RZ_LINEAR
                        ? kc_resize_linear(float_kind(x->dtype), y->data, x->data, &p, cuda_stream_of(c))
                        : kc_resize_cubic(float_kind(x->dtype), y->data, x->data, &p, cuda_stream_of(c));
    return cuda_fail_if(c, e, what);
}

/* ------------------------------------------------------------ GridSample */

/* KC_GS_* of the mode attribute (the reference's names), -1 for others. */
static int gs_mode(const ir_node *n) {
    const char *m = ir_attr_str(n, "mode", "linear");
    if (!strcmp(m, "linear") || !strcmp(m, "bilinear")) return KC_GS_LINEAR;
    if (!strcmp(m, "nearest")) return KC_GS_NEAREST;
    if (!strcmp(m, "cubic") || !strcmp(m, "bicubic")) return KC_GS_CUBIC;
    return -1;
}

static int gs_pad(const ir_node *n) {
    const char *m = ir_attr_str(n, "padding_mode", "zeros");
    return !strcmp(m, "zeros")        ? KC_GS_PAD_ZEROS
           : !strcmp(m, "border")     ? KC_GS_PAD_BORDER
           : !strcmp(m, "reflection") ? KC_GS_PAD_REFLECTION
                                      : -1;
}

static bool sup_grid_sample(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 2 || !in[0] || !in[1] || float_kind(in[0]->dtype) < 0 ||
        float_kind(in[1]->dtype) < 0)
        return false;
    int r = in[0]->rank;
    if (r < 3 || r > 5 || in[1]->rank != r) return false;
    if (in[1]->dims[r - 1] >= 0 && in[1]->dims[r - 1] != r - 2) return false;
    return gs_mode(n) >= 0 && gs_pad(n) >= 0;
}

static int run_grid_sample(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *g = c->in[1];
    kiln_tensor *y = c->out[0];
    int r = x->rank, k = r - 2;
    if (r < 3 || r > 5 || g->rank != r || g->dims[r - 1] != k || g->dims[0] != x->dims[0])
        return ref_fail(c, "GridSample X/grid shapes do not fit");
    int mode = gs_mode(c->node), pad = gs_pad(c->node);
    if (mode < 0 || pad < 0) return ref_fail(c, "GridSample mode or padding_mode is unknown");
    if (y->rank != r || y->dims[0] != x->dims[0] || y->dims[1] != x->dims[1])
        return ref_fail(c, "internal: GridSample output shape");
    kc_grid_sample_params p;
    memset(&p, 0, sizeof p);
    p.k = k, p.mode = mode, p.pad = pad;
    p.align_corners = ir_attr_int(c->node, "align_corners", 0) != 0;
    p.n = x->dims[0], p.c = x->dims[1];
    for (int d = 0; d < k; d++) {
        p.in[d] = x->dims[2 + d];
        p.out[d] = g->dims[1 + d];
        if (y->dims[2 + d] != p.out[d]) return ref_fail(c, "internal: GridSample output shape");
    }
    if (tensor_numel(y) == 0) return 0;
    for (int d = 0; d < k; d++)
        if (p.in[d] == 0) return ref_fail(c, "GridSample input has an empty spatial dim");
    return cuda_fail_if(c, kc_grid_sample(float_kind(x->dtype), float_kind(g->dtype), x->data,
                                          g->data, y->data, &p, cuda_stream_of(c)),
                        "GridSample");
}

/* ------------------------------------------------------------ AffineGrid */

/* theta [N, k, k+1] of a float type; size (input 1) constant, or with rt a
** runtime int vector read on the host (TACTIC_READS_PARAMS). */
static bool sup_affine_common(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 2 || !in[0] || !in[1] || float_kind(in[0]->dtype) < 0 || in[0]->rank != 3)
        return false;
    return in[0]->dims[1] < 0 || in[0]->dims[1] == 2 || in[0]->dims[1] == 3;
}

static bool sup_affine(const ir_node *n, const ir_type *const *in) {
    return sup_affine_common(n, in) && n->in[1] && n->in[1]->const_val;
}

static bool sup_affine_rt(const ir_node *n, const ir_type *const *in) {
    return sup_affine_common(n, in) && cuda_param_runtime(n, in, 1, false);
}

static int run_affine(ref_ctx *c) {
    const kiln_tensor *th = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t sz[8];
    int cnt = cuda_param_i64(c, 1, sz, 8, "AffineGrid size");
    if (cnt < 0) return -1;
    if (cnt != 4 && cnt != 5) return ref_fail(c, "AffineGrid size must have 4 or 5 values");
    int k = cnt - 2;
    if (th->rank != 3 || th->dims[1] != k || th->dims[2] != k + 1 || th->dims[0] != sz[0] ||
        float_kind(th->dtype) < 0 || y->dtype != th->dtype)
        return ref_fail(c, "AffineGrid theta must be [%lld, %d, %d] of a float type",
                        (long long)sz[0], k, k + 1);
    int64_t od[6] = {sz[0]};
    for (int i = 0; i < k; i++) od[1 + i] = sz[2 + i];
    od[1 + k] = k;
    if (!shape_equal(y->rank, y->dims, k + 2, od))
        return ref_fail(c, "AffineGrid output shape mismatch");
    kc_affine_grid_params p;
    memset(&p, 0, sizeof p);
    p.k = k;
    p.align_corners = ir_attr_int(c->node, "align_corners", 0) != 0;
    p.n = sz[0];
    for (int i = 0; i < k; i++) p.size[i] = sz[2 + i];
    return cuda_fail_if(c, kc_affine_grid(float_kind(th->dtype), th->data, y->data, &p,
                                          cuda_stream_of(c)),
                        "AffineGrid");
}

/* ------------------------------------------------------------ LRN */

static bool sup_lrn(const ir_node *n, const ir_type *const *in) {
    return in[0] && float_kind(in[0]->dtype) >= 0 && in[0]->rank >= 2 &&
           ir_attr_int(n, "size", 0) > 0;
}

static int run_lrn(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->rank < 2) return ref_fail(c, "LRN input rank < 2");
    int64_t size = ir_attr_int(c->node, "size", 0);
    if (size <= 0) return ref_fail(c, "LRN size must be positive");
    if (y->dtype != x->dtype || tensor_numel(y) != tensor_numel(x))
        return ref_fail(c, "internal: LRN output shape");
    return cuda_fail_if(c, kc_lrn(float_kind(x->dtype), x->data, y->data, x->dims[0],
                                  x->dims[1], shape_numel(x->rank - 2, x->dims + 2), size,
                                  ir_attr_float(c->node, "alpha", 1e-4f),
                                  ir_attr_float(c->node, "beta", 0.75f),
                                  ir_attr_float(c->node, "bias", 1.0f), cuda_stream_of(c)),
                        "LRN");
}

/* ------------------------------------------------------------ RoiAlign, MaxRoiPool */

static bool sup_roialign(const ir_node *n, const ir_type *const *in) {
    return n->n_in >= 3 && in[0] && in[1] && in[2] && float_kind(in[0]->dtype) >= 0 &&
           in[1]->dtype == in[0]->dtype && in[2]->dtype == KILN_DTYPE_INT64 &&
           in[0]->rank == 4 && in[1]->rank == 2 && in[2]->rank == 1;
}

static int run_roialign(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    kiln_tensor *y = c->out[0];
    const ir_node *n = c->node;
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 ||
        bi->dims[0] != rois->dims[0] || y->rank != 4 || y->dims[0] != rois->dims[0] ||
        y->dims[1] != x->dims[1])
        return ref_fail(c, "RoiAlign expects X [N,C,H,W], rois [R,4], batch_indices [R]");
    const char *ctm = ir_attr_str(n, "coordinate_transformation_mode",
                                  c->opset >= 16 ? "half_pixel" : "output_half_pixel");
    kc_roialign_params p = {
        .n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3],
        .r = rois->dims[0], .oh = y->dims[2], .ow = y->dims[3],
        .sampling_ratio = ir_attr_int(n, "sampling_ratio", 0),
        .scale = ir_attr_float(n, "spatial_scale", 1.0f),
        .is_max = strcmp(ir_attr_str(n, "mode", "avg"), "max") == 0,
        .half_pixel = strcmp(ctm, "half_pixel") == 0,
    };
    return cuda_fail_if(c, kc_roialign(float_kind(x->dtype), x->data, rois->data, bi->data,
                                       y->data, &p, cuda_stream_of(c)),
                        "RoiAlign");
}

static bool sup_max_roi_pool(const ir_node *n, const ir_type *const *in) {
    int cnt;
    const int64_t *ps = ir_attr_ints(n, "pooled_shape", &cnt);
    return in[0] && in[1] && float_kind(in[0]->dtype) >= 0 && in[1]->dtype == in[0]->dtype &&
           in[0]->rank == 4 && in[1]->rank == 2 && ps && cnt == 2 && ps[0] >= 1 && ps[1] >= 1;
}

static int run_max_roi_pool(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *rois = c->in[1];
    kiln_tensor *y = c->out[0];
    int cnt;
    const int64_t *ps = ir_attr_ints(c->node, "pooled_shape", &cnt);
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 5 || !ps || cnt != 2 ||
        y->rank != 4 || y->dims[0] != rois->dims[0] || y->dims[1] != x->dims[1] ||
        y->dims[2] != ps[0] || y->dims[3] != ps[1])
        return ref_fail(c, "MaxRoiPool expects X [N,C,H,W], rois [R,5] and pooled_shape");
    kc_max_roi_pool_params p = {
        .n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3],
        .r = rois->dims[0], .ph = ps[0], .pw = ps[1],
        .scale = ir_attr_float(c->node, "spatial_scale", 1.0f),
    };
    return cuda_fail_if(c, kc_max_roi_pool(float_kind(x->dtype), x->data, rois->data, y->data,
                                           &p, cuda_stream_of(c)),
                        "MaxRoiPool");
}

/* ------------------------------------------------------------ table */

#define DEV_FLAGS (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define TACTIC(var, name, op, sup, fn) \
    static const kiln_tactic var = {name, op, 0, DEV_FLAGS, sup, NULL, fn};

TACTIC(t_maxpool, "cuda_maxpool_direct", OP_MaxPool, sup_pool, run_pool)
TACTIC(t_avgpool, "cuda_avgpool_direct", OP_AveragePool, sup_pool, run_pool)
TACTIC(t_lppool, "cuda_lppool_direct", OP_LpPool, sup_pool, run_pool)
TACTIC(t_gavg, "cuda_global_avgpool_warp", OP_GlobalAveragePool, sup_global, run_global)
TACTIC(t_gmax, "cuda_global_maxpool_warp", OP_GlobalMaxPool, sup_global, run_global)
TACTIC(t_glp, "cuda_global_lppool_warp", OP_GlobalLpPool, sup_global, run_global)
TACTIC(t_resize, "cuda_resize_direct", OP_Resize, sup_resize, run_resize)
TACTIC(t_nmax, "cuda_nhwc_maxpool_direct", OP_NhwcMaxPool, sup_nhwc_pool, run_nhwc_pool)
TACTIC(t_navg, "cuda_nhwc_avgpool_direct", OP_NhwcAveragePool, sup_nhwc_pool, run_nhwc_pool)
TACTIC(t_ngap, "cuda_nhwc_global_avgpool", OP_NhwcGlobalAveragePool, sup_nhwc_gap, run_nhwc_gap)
TACTIC(t_to_nhwc, "cuda_to_nhwc_tiled", OP_ToNhwc, sup_reformat, run_reformat)
TACTIC(t_to_nchw, "cuda_to_nchw_tiled", OP_ToNchw, sup_reformat, run_reformat)
TACTIC(t_upsample, "cuda_upsample_direct", OP_Upsample, sup_resize, run_resize)
TACTIC(t_grid_sample, "cuda_grid_sample_direct", OP_GridSample, sup_grid_sample, run_grid_sample)

#define TACTIC_RT(var, name, op, sup, fn) \
    static const kiln_tactic var = {name, op, 0, DEV_FLAGS | TACTIC_READS_PARAMS, sup, NULL, fn};

TACTIC_RT(t_resize_rt, "cuda_resize_direct_rtparams", OP_Resize, sup_resize_rt, run_resize)
TACTIC_RT(t_upsample_rt, "cuda_upsample_direct_rtparams", OP_Upsample, sup_resize_rt, run_resize)
TACTIC(t_affine, "cuda_affine_grid_direct", OP_AffineGrid, sup_affine, run_affine)
TACTIC(t_lrn, "cuda_lrn_direct", OP_LRN, sup_lrn, run_lrn)
TACTIC(t_roialign, "cuda_roialign_direct", OP_RoiAlign, sup_roialign, run_roialign)
TACTIC(t_max_roi_pool, "cuda_max_roi_pool_direct", OP_MaxRoiPool, sup_max_roi_pool,
       run_max_roi_pool)
TACTIC_RT(t_affine_rt, "cuda_affine_grid_direct_rtparams", OP_AffineGrid, sup_affine_rt, run_affine)

const kiln_tactic *const cuda_tactics_pool[] = {
    /* t_gmax and t_glp came back after the global-pool kernel was
    ** rewritten (kernels/pool.cu): wrong on an H100 on 2026-12-06 */
    &t_maxpool, &t_avgpool, &t_lppool, &t_gavg, &t_gmax, &t_glp, &t_resize, &t_upsample,
    &t_resize_rt, &t_upsample_rt, &t_grid_sample, &t_affine, &t_affine_rt, &t_lrn, &t_roialign, &t_max_roi_pool, &t_nmax, &t_navg, &t_ngap, &t_to_nhwc, &t_to_nchw, NULL,
};
