/* cuda_data.c: CUDA tactics of the data family (see cuda_internal.h): the
** pure copies (Reshape, Flatten, Squeeze, Unsqueeze, Identity), Transpose,
** Concat, Split, Slice, Gather, GatherElements, ScatterElements, ScatterND,
** Expand, Tile, Pad, DepthToSpace, SpaceToDepth, Trilu, Range,
** ConstantOfShape and OneHot. Most of them are one strided view copy
** (kc_copy_view) whose geometry is worked out here on the host; elements
** move by size, so every dtype of 1, 2, 4 or 8 bytes is handled. Small
** parameter inputs (Slice starts, pads, repeats, ...) are read from the
** IR's host copy of the constant; when one is not constant supports()
** declines and the host fallback runs the layer. */
#include "cuda_internal.h"
#include "kernels/data_kernels.h"
#include "../../ops/index_shared.h"

#include <string.h>

#define MAXV 64
#define VIEW_MAX (2 * KILN_MAX_RANK)

/* ------------------------------------------------------------ helpers */

static bool is_packed(kiln_dtype t) {
    return t == KILN_DTYPE_INT4 || t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_FLOAT4E2M1;
}

/* Element types the movement kernels handle: anything of 1, 2, 4 or 8
** bytes (not strings, not the packed 4-bit types, not complex128). */
static bool movable(kiln_dtype t) {
    if (t == KILN_DTYPE_STRING || is_packed(t) || !dtype_is_valid((int)t) ||
        t == KILN_DTYPE_UNDEFINED)
        return false;
    size_t es = kiln_dtype_size(t);
    return es == 1 || es == 2 || es == 4 || es == 8;
}

static bool in_movable(const ir_type *const *in, int i) {
    return in[i] && in[i]->rank >= 0 && movable(in[i]->dtype);
}

static bool is_index_type(const ir_type *t) {
    return t && (t->dtype == KILN_DTYPE_INT64 || t->dtype == KILN_DTYPE_INT32);
}

/* Input i of the node is absent or a constant known at build time. */
static bool const_or_absent(const ir_node *n, int i) {
    return i >= n->n_in || !n->in[i] || n->in[i]->const_val;
}

static bool const_present(const ir_node *n, int i) {
    return i < n->n_in && n->in[i] && n->in[i]->const_val;
}

/* Host copy of a small constant integer input. -1 via ref_fail. */
static int read_const_ints(ref_ctx *c, int i, int64_t *v, int max, const char *what) {
    const kiln_tensor *t = c->node->in[i] ? c->node->in[i]->const_val : NULL;
    if (!t) return ref_fail(c, "%s is not a constant", what);
    int64_t n = tensor_numel(t);
    if (!dtype_is_int(t->dtype) || t->rank > 1 || n < 0 || n > max)
        return ref_fail(c, "%s must be an integer vector of at most %d values", what, max);
    for (int64_t k = 0; k < n; k++) v[k] = dt_get_i64(t->dtype, t->data, (size_t)k);
    return (int)n;
}

static int norm_axis(ref_ctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return ref_fail(c, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Builds a kernel view from a copy geometry in elements: drops size-1
** dims, merges dims that are contiguous on both sides, and when the
** innermost dim is contiguous on both sides widens the unit to up to 16
** bytes (strides, the inner length and both pointers permitting). Returns
** -1 via ref_fail when more dims remain than the kernel takes. */
static int view_plan(ref_ctx *c, kc_view *v, int rank, const int64_t *dims, const int64_t *ss,
                     const int64_t *ds, size_t es, const void *dst, const void *src) {
    int64_t d[VIEW_MAX], s[VIEW_MAX], t[VIEW_MAX];
    int m = 0;
    for (int a = 0; a < rank; a++) {
        if (dims[a] == 1) continue;
        if (m > 0 && s[m - 1] == ss[a] * dims[a] && t[m - 1] == ds[a] * dims[a]) {
            d[m - 1] *= dims[a];
            s[m - 1] = ss[a];
            t[m - 1] = ds[a];
        } else {
            d[m] = dims[a];
            s[m] = ss[a];
            t[m] = ds[a];
            m++;
        }
    }
    if (m == 0) {
        d[0] = 1;
        s[0] = t[0] = 0;
        m = 1;
    }
    if (m > KC_MAXD) return ref_fail(c, "the copy has %d independent dims (at most %d)", m, KC_MAXD);
    size_t u = es;
    if (s[m - 1] == 1 && t[m - 1] == 1) {
        for (size_t cand = 16; cand > es; cand /= 2) {
            bool ok = ((size_t)d[m - 1] * es) % cand == 0 && (uintptr_t)dst % cand == 0 &&
                      (uintptr_t)src % cand == 0;
            for (int k = 0; k < m - 1 && ok; k++)
                ok = (s[k] * (int64_t)es) % (int64_t)cand == 0 &&
                     (t[k] * (int64_t)es) % (int64_t)cand == 0;
            if (ok) {
                u = cand;
                break;
            }
        }
    }
    memset(v, 0, sizeof *v);
    v->rank = m;
    v->unit = (int)u;
    for (int k = 0; k < m; k++) {
        v->dims[k] = d[k];
        v->sstr[k] = k == m - 1 ? s[k] : s[k] * (int64_t)es / (int64_t)u;
        v->dstr[k] = k == m - 1 ? t[k] : t[k] * (int64_t)es / (int64_t)u;
    }
    if (u != es) v->dims[m - 1] = d[m - 1] * (int64_t)es / (int64_t)u;
    return 0;
}

/* Runs a copy geometry (elements of es bytes) from src to dst. */
static int copy_geom(ref_ctx *c, int rank, const int64_t *dims, const int64_t *ss,
                     const int64_t *ds, size_t es, void *dst, const void *src, const char *what) {
    if (shape_numel(rank, dims) == 0) return 0;
    kc_view v;
    if (view_plan(c, &v, rank, dims, ss, ds, es, dst, src)) return -1;
    return cuda_fail_if(c, kc_copy_view(dst, src, &v, cuda_stream_of(c)), what);
}

/* The view a tensor of this shape has when written contiguously. */
static void contig_strides(int rank, const int64_t *dims, int64_t *st) {
    int64_t acc = 1;
    for (int a = rank - 1; a >= 0; a--) {
        st[a] = acc;
        acc *= dims[a];
    }
}

static const char *layer_op(const ref_ctx *c) { return c->node->op_type ? c->node->op_type : "data"; }

/* ------------------------------------------------------------ pure copies */

static bool sup_copy(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in[0] && in[0]->dtype != KILN_DTYPE_STRING && in[0]->dtype != KILN_DTYPE_UNDEFINED;
}

static int run_copy(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (y->nbytes != x->nbytes)
        return ref_fail(c, "internal: output holds %zu bytes, input %zu", y->nbytes, x->nbytes);
    if (!x->nbytes || y->data == x->data) return 0;
    return cuda_fail_if(c, cudaMemcpyAsync(y->data, x->data, x->nbytes, cudaMemcpyDeviceToDevice,
                                           cuda_stream_of(c)),
                        layer_op(c));
}

/* BitCast reinterprets the bytes: a copy (element sizes may differ; the
** byte counts agree, which run_copy checks). */
static bool sup_bitcast(const ir_node *n, const ir_type *const *in) {
    return sup_copy(n, in) && n->n_out == 1 && n->out[0] &&
           n->out[0]->type.dtype != KILN_DTYPE_STRING;
}

/* Inference Dropout is a copy when nobody reads the mask and training_mode
** is absent or a constant false. */
static bool sup_dropout(const ir_node *n, const ir_type *const *in) {
    if (!sup_copy(n, in)) return false;
    /* a mask that is read must be bool (all true in inference) */
    if (n->n_out > 1 && n->out[1] && (n->out[1]->n_uses > 0 || (n->out[1]->flags & IR_VALUE_OUTPUT)) &&
        n->out[1]->type.dtype != KILN_DTYPE_BOOL)
        return false;
    if (n->n_in > 2 && n->in[2]) {
        const kiln_tensor *t = n->in[2]->const_val;
        if (!t || tensor_numel(t) != 1 || dt_get_i64(t->dtype, t->data, 0) != 0) return false;
    }
    return true;
}

/* Inference Dropout: the copy, and a mask of all true when it has one. */
static int run_dropout(ref_ctx *c) {
    if (run_copy(c)) return -1;
    if (c->n_out < 2 || !c->out[1] || !c->out[1]->data) return 0;
    kiln_tensor *m = c->out[1];
    const ir_value *mv = c->node->n_out > 1 ? c->node->out[1] : NULL;
    bool read = mv && (mv->n_uses > 0 || (mv->flags & IR_VALUE_OUTPUT));
    if (m->dtype != KILN_DTYPE_BOOL) return read ? ref_fail(c, "Dropout mask must be bool") : 0;
    int64_t n = tensor_numel(m);
    if (n <= 0) return 0;
    return cuda_fail_if(c, cudaMemsetAsync(m->data, 1, (size_t)n, cuda_stream_of(c)), "Dropout");
}

/* ------------------------------------------------------------ Transpose */

static bool sup_transpose(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0)) return false;
    /* 8-byte elements gave wrong results on an H100 (2026-12-06, every
    ** int64 case of test_cuda_data): host until fixed; int64 transposes are
    ** shape arithmetic in practice. */
    if (kiln_dtype_size(in[0]->dtype) == 8) return false;
    int np;
    const int64_t *p = ir_attr_ints(n, "perm", &np);
    return !p || np == in[0]->rank;
}

static int run_transpose(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank, np;
    const int64_t *p = ir_attr_ints(c->node, "perm", &np);
    if (p && np != r) return ref_fail(c, "perm length %d != rank %d", np, r);
    int64_t xs[KILN_MAX_RANK], ss[KILN_MAX_RANK], ds[KILN_MAX_RANK], od[KILN_MAX_RANK];
    contig_strides(r, x->dims, xs);
    bool seen[KILN_MAX_RANK] = {0};
    for (int k = 0; k < r; k++) {
        int64_t a = p ? p[k] : r - 1 - k;
        if (a < 0 || a >= r || seen[a]) return ref_fail(c, "perm is not a permutation");
        seen[a] = true;
        od[k] = x->dims[a];
        ss[k] = xs[a];
    }
    if (!shape_equal(y->rank, y->dims, r, od)) return ref_fail(c, "internal: output shape");
    contig_strides(r, od, ds);
    if (shape_numel(r, od) == 0) return 0;
    size_t es = kiln_dtype_size(x->dtype);
    kc_view v;
    if (view_plan(c, &v, r, od, ss, ds, es, y->data, x->data)) return -1;
    /* Swapping the last two (merged) dims: the tiled kernel keeps both
    ** the reads and the writes coalesced. */
    int m = v.rank;
    if (v.unit == (int)es && m >= 2 && m <= 3 && v.dstr[m - 1] == 1 &&
        v.sstr[m - 2] == 1 && v.sstr[m - 1] == v.dims[m - 2] &&
        (m == 2 || v.sstr[0] == v.dims[1] * v.dims[2])) {
        int64_t batch = m == 3 ? v.dims[0] : 1;
        return cuda_fail_if(c, kc_transpose_last2(y->data, x->data, batch, v.dims[m - 1],
                                                  v.dims[m - 2], (int)es, cuda_stream_of(c)),
                            "Transpose");
    }
    return cuda_fail_if(c, kc_copy_view(y->data, x->data, &v, cuda_stream_of(c)), "Transpose");
}

/* ------------------------------------------------------------ Concat, Split */

static bool sup_concat(const ir_node *n, const ir_type *const *in) {
    for (int i = 0; i < n->n_in; i++)
        if (!in_movable(in, i) || in[i]->dtype != in[0]->dtype) return false;
    return n->n_in > 0 && in[0]->rank > 0;
}

/* Moves the [outer, w] block at column col of a [outer, W] whole. */
static int move_block(ref_ctx *c, size_t es, void *whole, int64_t W, const void *piece_src,
                      void *piece_dst, int64_t w, int64_t col, int64_t outer, bool to_whole) {
    int64_t dims[2] = {outer, w}, ps[2] = {w, 1}, ws[2] = {W, 1};
    char *wp = (char *)whole + (size_t)col * es;
    if (to_whole) return copy_geom(c, 2, dims, ps, ws, es, wp, piece_src, layer_op(c));
    return copy_geom(c, 2, dims, ws, ps, es, piece_dst, wp, layer_op(c));
}

static int run_concat(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    int r = y->rank, a = 0;
    if (r == 0) return ref_fail(c, "cannot concatenate scalars");
    if (norm_axis(c, ir_attr_int(c->node, "axis", c->opset < 4 ? 1 : 0), r, &a)) return -1;
    size_t es = kiln_dtype_size(y->dtype);
    int64_t outer = prod(y->dims, 0, a), W = prod(y->dims, a, r), col = 0;
    for (int i = 0; i < c->n_in; i++) {
        const kiln_tensor *x = c->in[i];
        if (!x || x->rank != r || x->dtype != y->dtype)
            return ref_fail(c, "input %d does not match the output", i);
        int64_t w = prod(x->dims, a, r);
        if (col + w > W) return ref_fail(c, "internal: concat overflow");
        if (w > 0 && move_block(c, es, y->data, W, x->data, NULL, w, col, outer, true)) return -1;
        col += w;
    }
    return 0;
}

static bool sup_split(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0) && in[0]->rank > 0;
}

static int run_split(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank, a = 0;
    if (norm_axis(c, ir_attr_int(c->node, "axis", 0), r, &a)) return -1;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t outer = prod(x->dims, 0, a), W = prod(x->dims, a, r), col = 0;
    for (int i = 0; i < c->n_out; i++) {
        kiln_tensor *y = c->out[i];
        if (y->rank != r || y->dtype != x->dtype)
            return ref_fail(c, "internal: output %d does not match the input", i);
        int64_t w = prod(y->dims, a, r);
        if (col + w > W) return ref_fail(c, "split sizes exceed the input");
        if (w > 0 && outer > 0 && !y->data) return ref_fail(c, "internal: output %d not allocated", i);
        if (w > 0 && move_block(c, es, (void *)x->data, W, NULL, y->data, w, col, outer, false))
            return -1;
        col += w;
    }
    return 0;
}

/* ------------------------------------------------------------ Slice */

static bool sup_slice(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0)) return false;
    if (n->graph && n->graph->model && n->graph->model->opset < 10) return true;
    return const_present(n, 1) && const_present(n, 2) && const_or_absent(n, 3) &&
           const_or_absent(n, 4);
}

static int run_slice(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t st[MAXV], en[MAXV], ax[MAXV], sp[MAXV];
    int ns, ne, na = -1, np = -1;
    if (c->opset < 10) {
        int cs, ce, ca;
        const int64_t *as = ir_attr_ints(c->node, "starts", &cs);
        const int64_t *ae = ir_attr_ints(c->node, "ends", &ce);
        const int64_t *aa = ir_attr_ints(c->node, "axes", &ca);
        if (!as || !ae || cs > MAXV || ce > MAXV || ca > MAXV)
            return ref_fail(c, "Slice starts/ends attributes are invalid");
        ns = cs;
        ne = ce;
        memcpy(st, as, (size_t)cs * sizeof *st);
        memcpy(en, ae, (size_t)ce * sizeof *en);
        if (aa) {
            na = ca;
            memcpy(ax, aa, (size_t)ca * sizeof *ax);
        }
    } else {
        if ((ns = read_const_ints(c, 1, st, MAXV, "starts")) < 0 ||
            (ne = read_const_ints(c, 2, en, MAXV, "ends")) < 0)
            return -1;
        if (c->node->n_in > 3 && c->node->in[3] &&
            (na = read_const_ints(c, 3, ax, MAXV, "axes")) < 0)
            return -1;
        if (c->node->n_in > 4 && c->node->in[4] &&
            (np = read_const_ints(c, 4, sp, MAXV, "steps")) < 0)
            return -1;
    }
    if (ns != ne || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return ref_fail(c, "Slice starts/ends/axes/steps lengths differ");
    int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], len[KILN_MAX_RANK];
    char err[INDEX_ERR_SIZE];
    if (index_slice_resolve(x->rank, x->dims, ns, st, en, na >= 0 ? ax : NULL,
                            np >= 0 ? sp : NULL, start, step, len, err))
        return ref_fail(c, "%s", err);
    if (!shape_equal(y->rank, y->dims, x->rank, len)) return ref_fail(c, "internal: output shape");
    if (shape_numel(x->rank, len) == 0) return 0;
    int r = x->rank;
    int64_t xs[KILN_MAX_RANK], ss[KILN_MAX_RANK], ds[KILN_MAX_RANK], base = 0;
    contig_strides(r, x->dims, xs);
    contig_strides(r, len, ds);
    for (int a = 0; a < r; a++) {
        ss[a] = xs[a] * step[a];
        base += start[a] * xs[a];
    }
    size_t es = kiln_dtype_size(x->dtype);
    const char *src = (const char *)x->data + base * (int64_t)es;
    if (r == 0) {
        int64_t one = 1, z = 0;
        return copy_geom(c, 1, &one, &z, &z, es, y->data, src, "Slice");
    }
    return copy_geom(c, r, len, ss, ds, es, y->data, src, "Slice");
}

/* Slice with runtime starts/axes/steps (e.g. a KV cache's attention-mask
** window): resolved on the device; the output's dims give the lengths. */
static bool sup_slice_dynamic(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0) || in[0]->rank < 1 || in[0]->rank > KC_MAXD) return false;
    if (n->graph && n->graph->model && n->graph->model->opset < 10) return false;
    if (!is_index_type(in[1])) return false;
    for (int i = 3; i < 5 && i < n->n_in; i++)
        if (in[i] && !is_index_type(in[i])) return false;
    return true;
}

static int run_slice_dynamic(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *st = c->in[1];
    const kiln_tensor *ax = ref_has(c, 3) ? c->in[3] : NULL, *sp = ref_has(c, 4) ? c->in[4] : NULL;
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    if (r < 1 || r > KC_MAXD || y->rank != r) return ref_fail(c, "Slice rank %d is not supported here", r);
    int64_t ns = tensor_numel(st);
    if (ns > r || (ax && tensor_numel(ax) != ns) || (sp && tensor_numel(sp) != ns))
        return ref_fail(c, "Slice starts/axes/steps lengths differ");
    kc_slice_dyn_params p;
    memset(&p, 0, sizeof p);
    p.rank = r;
    p.es = (int)kiln_dtype_size(x->dtype);
    p.n = (int)ns;
    p.starts64 = st->dtype == KILN_DTYPE_INT64;
    p.axes64 = ax && ax->dtype == KILN_DTYPE_INT64;
    p.steps64 = sp && sp->dtype == KILN_DTYPE_INT64;
    contig_strides(r, x->dims, p.xstr);
    memcpy(p.xdims, x->dims, (size_t)r * sizeof *p.xdims);
    memcpy(p.ydims, y->dims, (size_t)r * sizeof *p.ydims);
    return cuda_fail_if(c, kc_slice_dyn(y->data, x->data, &p, st->data, ax ? ax->data : NULL,
                                        sp ? sp->data : NULL, cuda_stream_of(c)),
                        "Slice");
}

/* ------------------------------------------------------------ Gather */

static bool sup_gather(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0) && in[0]->rank >= 1 && is_index_type(in[1]);
}

static int run_gather(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1];
    kiln_tensor *y = c->out[0];
    int a = 0;
    if (norm_axis(c, ir_attr_int(c->node, "axis", 0), x->rank, &a)) return -1;
    int64_t outer = prod(x->dims, 0, a), A = x->dims[a], inner = prod(x->dims, a + 1, x->rank);
    int64_t ni = tensor_numel(ind);
    if (tensor_numel(y) != outer * ni * inner) return ref_fail(c, "Gather output has the wrong size");
    if (tensor_numel(y) == 0) return 0;
    size_t es = kiln_dtype_size(x->dtype), u = es;
    for (size_t cand = 16; cand > es; cand /= 2)
        if (((size_t)inner * es) % cand == 0 && (uintptr_t)x->data % cand == 0 &&
            (uintptr_t)y->data % cand == 0) {
            u = cand;
            break;
        }
    return cuda_fail_if(c, kc_gather(y->data, x->data, ind->data, ind->dtype == KILN_DTYPE_INT64,
                                     outer, A, ni, inner * (int64_t)es / (int64_t)u, (int)u,
                                     cuda_stream_of(c)),
                        "Gather");
}

/* ------------------------------------------------- GatherElements, scatters */

static bool sup_gather_elements(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0) && in[0]->rank >= 1 && in[0]->rank <= KC_MAXD &&
           is_index_type(in[1]) && in[1]->rank == in[0]->rank;
}

static int elem_params(ref_ctx *c, const kiln_tensor *x, const kiln_tensor *ind,
                       kc_elem_params *p) {
    int a = 0, r = x->rank;
    if (norm_axis(c, ir_attr_int(c->node, "axis", 0), r, &a)) return -1;
    if (ind->rank != r || r > KC_MAXD) return ref_fail(c, "data and indices ranks differ");
    for (int d = 0; d < r; d++)
        if (d != a && ind->dims[d] > x->dims[d])
            return ref_fail(c, "indices dim %d (%lld) exceeds data dim %lld", d,
                            (long long)ind->dims[d], (long long)x->dims[d]);
    memset(p, 0, sizeof *p);
    p->rank = r;
    p->axis = a;
    p->es = (int)kiln_dtype_size(x->dtype);
    p->idx64 = ind->dtype == KILN_DTYPE_INT64;
    p->axis_len = x->dims[a];
    contig_strides(r, x->dims, p->xstr);
    memcpy(p->idims, ind->dims, (size_t)r * sizeof *p->idims);
    return 0;
}

static int run_gather_elements(ref_ctx *c) {
    kc_elem_params p;
    if (elem_params(c, c->in[0], c->in[1], &p)) return -1;
    return cuda_fail_if(c, kc_gather_elements(c->out[0]->data, c->in[0]->data, c->in[1]->data, &p,
                                              cuda_stream_of(c)),
                        "GatherElements");
}

/* 0 for "none", KC_RED_* otherwise, -1 when unknown. */
static int reduction_of(const ir_node *n) {
    const char *r = ir_attr_str(n, "reduction", "none");
    return !strcmp(r, "none")  ? 0
           : !strcmp(r, "add") ? KC_RED_ADD
           : !strcmp(r, "mul") ? KC_RED_MUL
           : !strcmp(r, "max") ? KC_RED_MAX
           : !strcmp(r, "min") ? KC_RED_MIN
                               : -1;
}

/* KC_RK_* of the element types the atomic reductions handle, else -1. */
static int reduce_kind(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32    ? KC_RK_F32
           : t == KILN_DTYPE_FLOAT16  ? KC_RK_F16
           : t == KILN_DTYPE_BFLOAT16 ? KC_RK_BF16
           : t == KILN_DTYPE_INT32    ? KC_RK_I32
           : t == KILN_DTYPE_INT64    ? KC_RK_I64
                                      : -1;
}

static bool reduction_ok(const ir_node *n, kiln_dtype t) {
    int red = reduction_of(n);
    return red == 0 || (red > 0 && reduce_kind(t) >= 0);
}

static bool sup_scatter_elements(const ir_node *n, const ir_type *const *in) {
    return sup_gather_elements(n, in) && in[2] && in[2]->dtype == in[0]->dtype &&
           reduction_ok(n, in[0]->dtype);
}

/* Output = data first (the scatter kernels then overwrite entries). */
static int copy_data_to_out(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (y->nbytes != x->nbytes) return ref_fail(c, "internal: output size differs from data");
    if (!x->nbytes || y->data == x->data) return 0;
    return cuda_fail_if(c, cudaMemcpyAsync(y->data, x->data, x->nbytes, cudaMemcpyDeviceToDevice,
                                           cuda_stream_of(c)),
                        layer_op(c));
}

static int run_scatter_elements(ref_ctx *c) {
    kc_elem_params p;
    const kiln_tensor *u = c->in[2];
    if (elem_params(c, c->in[0], c->in[1], &p)) return -1;
    if (!shape_equal(u->rank, u->dims, c->in[1]->rank, c->in[1]->dims))
        return ref_fail(c, "updates must match indices in shape");
    int red = reduction_of(c->node), kind = reduce_kind(c->in[0]->dtype);
    if (red < 0 || (red > 0 && kind < 0)) return ref_fail(c, "this reduction is not supported here");
    if (copy_data_to_out(c)) return -1;
    cudaError_t e = red ? kc_scatter_elements_reduce(c->out[0]->data, c->in[1]->data, u->data, &p,
                                                     red, kind, cuda_stream_of(c))
                        : kc_scatter_elements(c->out[0]->data, c->in[1]->data, u->data, &p,
                                              cuda_stream_of(c));
    return cuda_fail_if(c, e, layer_op(c));
}

static bool sup_scatter_nd(const ir_node *n, const ir_type *const *in) {
    return in_movable(in, 0) && in[0]->rank >= 1 && is_index_type(in[1]) && in[1]->rank >= 1 &&
           in[2] && in[2]->dtype == in[0]->dtype && reduction_ok(n, in[0]->dtype);
}

static int run_scatter_nd(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    int r = x->rank, q = ind->rank;
    int64_t k = ind->dims[q - 1];
    if (k > r || k > KC_MAXD) return ref_fail(c, "ScatterND index depth %lld > rank %d", (long long)k, r);
    kc_scatter_nd_params p;
    memset(&p, 0, sizeof p);
    p.k = (int)k;
    p.es = (int)kiln_dtype_size(x->dtype);
    p.idx64 = ind->dtype == KILN_DTYPE_INT64;
    p.m = prod(ind->dims, 0, q - 1);
    p.slice = prod(x->dims, (int)k, r);
    if (tensor_numel(u) != p.m * p.slice) return ref_fail(c, "ScatterND updates shape is invalid");
    int64_t xs[KILN_MAX_RANK];
    contig_strides(r, x->dims, xs);
    for (int j = 0; j < k; j++) {
        p.xdims[j] = x->dims[j];
        p.xstr[j] = xs[j];
    }
    int red = reduction_of(c->node), kind = reduce_kind(x->dtype);
    if (red < 0 || (red > 0 && kind < 0)) return ref_fail(c, "this reduction is not supported here");
    if (copy_data_to_out(c)) return -1;
    cudaError_t e = red ? kc_scatter_nd_reduce(c->out[0]->data, ind->data, u->data, &p, red, kind,
                                               cuda_stream_of(c))
                        : kc_scatter_nd(c->out[0]->data, ind->data, u->data, &p, cuda_stream_of(c));
    return cuda_fail_if(c, e, "ScatterND");
}

/* ------------------------------------------------------------ Expand, Tile */

static bool sup_expand(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0);
}

static int run_expand(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int R = y->rank, r = x->rank;
    if (r > R) return ref_fail(c, "Expand output rank is too small");
    int64_t xs[KILN_MAX_RANK], ss[KILN_MAX_RANK], ds[KILN_MAX_RANK];
    contig_strides(r, x->dims, xs);
    contig_strides(R, y->dims, ds);
    for (int a = 0; a < R; a++) {
        int j = a - (R - r);
        int64_t d = j >= 0 ? x->dims[j] : 1;
        if (d != 1 && d != y->dims[a])
            return ref_fail(c, "cannot expand dim %lld to %lld", (long long)d, (long long)y->dims[a]);
        ss[a] = j >= 0 && d != 1 ? xs[j] : 0;
    }
    size_t es = kiln_dtype_size(x->dtype);
    if (R == 0) {
        int64_t one = 1, z = 0;
        return copy_geom(c, 1, &one, &z, &z, es, y->data, x->data, "Expand");
    }
    return copy_geom(c, R, y->dims, ss, ds, es, y->data, x->data, "Expand");
}

/* The repeats follow from the shapes (output dim / input dim), so they
** need not be constant. */
static bool sup_tile(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0);
}

static int run_tile(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    if (y->rank != r) return ref_fail(c, "internal: Tile output rank");
    if (tensor_numel(y) == 0) return 0;
    int64_t rep[KILN_MAX_RANK];
    for (int a = 0; a < r; a++) rep[a] = x->dims[a] ? y->dims[a] / x->dims[a] : 0;
    /* Each axis becomes (repeat, length): the repeat reads stride 0 and
    ** writes a whole input-length block further on. */
    int64_t xs[KILN_MAX_RANK], ys[KILN_MAX_RANK];
    int64_t d[VIEW_MAX], ss[VIEW_MAX], ds[VIEW_MAX];
    contig_strides(r, x->dims, xs);
    contig_strides(r, y->dims, ys);
    int m = 0;
    for (int a = 0; a < r; a++) {
        if (rep[a] < 0 || y->dims[a] != x->dims[a] * rep[a])
            return ref_fail(c, "Tile repeats/output shape mismatch");
        if (rep[a] != 1) {
            d[m] = rep[a];
            ss[m] = 0;
            ds[m] = x->dims[a] * ys[a];
            m++;
        }
        d[m] = x->dims[a];
        ss[m] = xs[a];
        ds[m] = ys[a];
        m++;
    }
    size_t es = kiln_dtype_size(x->dtype);
    if (m == 0) {
        int64_t one = 1, z = 0;
        return copy_geom(c, 1, &one, &z, &z, es, y->data, x->data, "Tile");
    }
    return copy_geom(c, m, d, ss, ds, es, y->data, x->data, "Tile");
}

/* ------------------------------------------------------------ Pad */

static int pad_mode(const ir_node *n) {
    const char *ms = ir_attr_str(n, "mode", "constant");
    return !strcmp(ms, "constant")  ? KC_PAD_CONSTANT
           : !strcmp(ms, "reflect") ? KC_PAD_REFLECT
           : !strcmp(ms, "edge")    ? KC_PAD_EDGE
           : !strcmp(ms, "wrap")    ? KC_PAD_WRAP
                                    : -1;
}

static bool sup_pad(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0) || in[0]->rank > KC_MAXD || pad_mode(n) < 0) return false;
    if (n->graph && n->graph->model && n->graph->model->opset < 11) return true;
    return const_present(n, 1) && const_or_absent(n, 2) && const_or_absent(n, 3);
}

/* Pad whose pads/constant_value/axes come as runtime tensors (read on the
** host at run time: TACTIC_READS_PARAMS). */
static bool sup_pad_rt(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0) || in[0]->rank > KC_MAXD || pad_mode(n) < 0) return false;
    if (n->graph && n->graph->model && n->graph->model->opset < 11) return false;
    if (!(n->n_in > 1 && n->in[1])) return false;
    bool rt = false;
    for (int i = 1; i < 4 && i < n->n_in; i++) {
        if (!n->in[i] || n->in[i]->const_val) continue;
        if (i == 2 ? !(in[2] && in[2]->dtype == in[0]->dtype && in[2]->rank <= 1)
                   : !cuda_param_runtime(n, in, i, false))
            return false;
        rt = true;
    }
    return rt;
}

/* The first element of input i (constant, or copied from the device
** synchronously) as es raw bytes; false when it has none. -1 on failure. */
static int read_scalar_bytes(ref_ctx *c, int i, void *dst, size_t es) {
    const kiln_tensor *k = c->node->in[i] ? c->node->in[i]->const_val : NULL;
    const kiln_tensor *t = k ? k : c->in[i];
    if (!t || tensor_numel(t) <= 0) return 0;
    if (k) {
        memcpy(dst, k->data, es);
        return 1;
    }
    cudaStream_t s = cuda_stream_of(c);
    if (cuda_fail_if(c, cudaMemcpyAsync(dst, t->data, es, cudaMemcpyDeviceToHost, s), "Pad") ||
        cuda_fail_if(c, cudaStreamSynchronize(s), "Pad"))
        return -1;
    return 1;
}

static int run_pad(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank, mode = pad_mode(c->node);
    if (mode < 0) return ref_fail(c, "Pad mode is unknown");
    int64_t pads[MAXV], axes[MAXV];
    int np, na = -1;
    uint8_t fill[16] = {0};
    size_t es = kiln_dtype_size(x->dtype);
    if (c->opset < 11) {
        int cnt;
        const int64_t *ap = ir_attr_ints(c->node, "pads", &cnt);
        if (!ap) ap = ir_attr_ints(c->node, "paddings", &cnt);
        if (!ap || cnt > MAXV) return ref_fail(c, "Pad pads attribute invalid");
        np = cnt;
        memcpy(pads, ap, (size_t)cnt * sizeof *pads);
        double v = ir_attr_float(c->node, "value", 0.0f);
        if (v != 0 && (dtype_is_numeric(x->dtype) || x->dtype == KILN_DTYPE_BOOL))
            dt_set_f64(x->dtype, fill, 0, v);
    } else {
        if ((np = cuda_param_i64(c, 1, pads, MAXV, "pads")) < 0) return -1;
        if (ref_has(c, 2)) {
            if (c->in[2]->dtype != x->dtype)
                return ref_fail(c, "Pad constant_value type differs from data");
            if (read_scalar_bytes(c, 2, fill, es) < 0) return -1;
        }
        if (ref_has(c, 3) && (na = cuda_param_i64(c, 3, axes, MAXV, "axes")) < 0) return -1;
    }
    int64_t pb[KILN_MAX_RANK], pe[KILN_MAX_RANK];
    char err[INDEX_ERR_SIZE];
    if (index_pad_resolve(r, pads, np, na >= 0 ? axes : NULL, na, pb, pe, err))
        return ref_fail(c, "%s", err);
    kc_pad_params p;
    memset(&p, 0, sizeof p);
    p.rank = r;
    p.es = (int)es;
    p.mode = mode;
    memcpy(&p.fill, fill, sizeof p.fill);
    contig_strides(r, x->dims, p.istr);
    for (int a = 0; a < r; a++) {
        p.odims[a] = x->dims[a] + pb[a] + pe[a];
        if (p.odims[a] != y->dims[a]) return ref_fail(c, "internal: Pad output shape");
        /* Negative pads crop first; the other modes then see the crop. */
        int64_t lo = pb[a] < 0 ? -pb[a] : 0;
        int64_t hi = x->dims[a] - (pe[a] < 0 ? -pe[a] : 0);
        p.lo[a] = lo;
        p.de[a] = hi - lo;
        p.off[a] = pb[a] > 0 ? pb[a] : 0;
        if (p.de[a] <= 0 && mode != KC_PAD_CONSTANT && p.odims[a] > 0)
            return ref_fail(c, "Pad mode cannot pad an empty axis %d", a);
    }
    if (tensor_numel(y) == 0) return 0;
    if (r == 0) {
        int64_t one = 1, z = 0;
        return copy_geom(c, 1, &one, &z, &z, es, y->data, x->data, "Pad");
    }
    return cuda_fail_if(c, kc_pad(y->data, x->data, &p, cuda_stream_of(c)), "Pad");
}

/* ------------------------------------------------------------ CenterCropPad */
/* The output's dims (inference read the shape input) say everything: per
** axis, a centered crop when it is smaller than the input, a centered zero
** pad when larger. One kc_pad map, so the shape input is never read. */
static bool sup_center_crop_pad(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return in_movable(in, 0) && in[0]->rank >= 1 && in[0]->rank <= KC_MAXD;
}

static int run_center_crop_pad(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    if (y->rank != r || r > KC_MAXD) return ref_fail(c, "internal: CenterCropPad output rank");
    kc_pad_params p;
    memset(&p, 0, sizeof p);
    p.rank = r;
    p.es = (int)kiln_dtype_size(x->dtype);
    p.mode = KC_PAD_CONSTANT;
    contig_strides(r, x->dims, p.istr);
    for (int a = 0; a < r; a++) {
        int64_t in = x->dims[a], out = y->dims[a];
        p.odims[a] = out;
        if (out <= in) { /* crop: output o reads input o + (in - out) / 2 */
            p.lo[a] = (in - out) / 2;
            p.de[a] = out;
            p.off[a] = 0;
        } else { /* pad: input i lands at output i + (out - in) / 2 */
            p.lo[a] = 0;
            p.de[a] = in;
            p.off[a] = (out - in) / 2;
        }
    }
    if (tensor_numel(y) == 0) return 0;
    return cuda_fail_if(c, kc_pad(y->data, x->data, &p, cuda_stream_of(c)), "CenterCropPad");
}

/* ------------------------------------------ DepthToSpace, SpaceToDepth */

static bool sup_depth_space(const ir_node *n, const ir_type *const *in) {
    return in_movable(in, 0) && in[0]->rank == 4 && ir_attr_int(n, "blocksize", 0) > 0;
}

static int run_depth_space(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    bool to_space = c->node->op == OP_DepthToSpace;
    int64_t b = ir_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4 || y->rank != 4 || b <= 0) return ref_fail(c, "needs rank 4 and blocksize > 0");
    bool crd = to_space && !strcmp(ir_attr_str(c->node, "mode", "DCR"), "CRD");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t oc = y->dims[1], oh = y->dims[2], ow = y->dims[3];
    if ((to_space && (oc * b * b != C || oh != H * b || ow != W * b)) ||
        (!to_space && (oc != C * b * b || oh * b != H || ow * b != W)))
        return ref_fail(c, "output shape does not match blocksize");
    int64_t d[6], ss[6], ds[6];
    if (to_space) {
        /* output viewed as (N, C', H, b_i, W, b_j) */
        int64_t plane = H * W;
        int64_t dd[6] = {N, oc, H, b, W, b};
        int64_t s_dcr[6] = {C * plane, plane, W, b * oc * plane, 1, oc * plane};
        int64_t s_crd[6] = {C * plane, b * b * plane, W, b * plane, 1, plane};
        memcpy(d, dd, sizeof d);
        memcpy(ss, crd ? s_crd : s_dcr, sizeof ss);
    } else {
        /* output viewed as (N, b_i, b_j, C, H', W') */
        int64_t dd[6] = {N, b, b, C, oh, ow};
        int64_t s2[6] = {C * H * W, W, 1, H * W, b * W, b};
        memcpy(d, dd, sizeof d);
        memcpy(ss, s2, sizeof ss);
    }
    contig_strides(6, d, ds);
    return copy_geom(c, 6, d, ss, ds, kiln_dtype_size(x->dtype), y->data, x->data, layer_op(c));
}

/* ------------------------------------------------------------ GatherND */

static bool sup_gather_nd(const ir_node *n, const ir_type *const *in) {
    if (!in_movable(in, 0) || !in[1] || in[1]->dtype != KILN_DTYPE_INT64 || in[1]->rank < 1)
        return false;
    int64_t b = ir_attr_int(n, "batch_dims", 0);
    return b >= 0 && b < in[0]->rank && b < in[1]->rank;
}

static int run_gather_nd(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1];
    kiln_tensor *y = c->out[0];
    int r = x->rank, q = ind->rank;
    int64_t b = ir_attr_int(c->node, "batch_dims", 0);
    if (r < 1 || q < 1 || b < 0 || b >= KILN_MIN(r, q))
        return ref_fail(c, "GatherND ranks/batch_dims are invalid");
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r - b || m > KC_MAXD)
        return ref_fail(c, "GatherND indices last dim %lld is invalid", (long long)m);
    for (int i = 0; i < b; i++)
        if (x->dims[i] != ind->dims[i]) return ref_fail(c, "GatherND batch dim %d differs", i);
    kc_gather_nd_params p;
    memset(&p, 0, sizeof p);
    int64_t xs[KILN_MAX_RANK];
    contig_strides(r, x->dims, xs);
    p.m = (int)m;
    p.B = prod(ind->dims, 0, (int)b);
    p.M = prod(ind->dims, (int)b, q - 1);
    p.slice = prod(x->dims, (int)(b + m), r);
    p.bstride = prod(x->dims, (int)b, r);
    for (int j = 0; j < m; j++) {
        p.len[j] = x->dims[b + j];
        p.xstr[j] = xs[b + j];
    }
    if (tensor_numel(y) != p.B * p.M * p.slice)
        return ref_fail(c, "GatherND output has the wrong size");
    return cuda_fail_if(c, kc_gather_nd(y->data, x->data, ind->data, &p,
                                        (int)kiln_dtype_size(x->dtype), cuda_stream_of(c)),
                        "GatherND");
}

/* ------------------------------------------------------------ Trilu */

static bool sup_trilu(const ir_node *n, const ir_type *const *in) {
    return in_movable(in, 0) && in[0]->rank >= 2 && const_or_absent(n, 1);
}

/* k as a runtime tensor, read on the host (TACTIC_READS_PARAMS). */
static bool sup_trilu_rt(const ir_node *n, const ir_type *const *in) {
    return in_movable(in, 0) && in[0]->rank >= 2 && cuda_param_runtime(n, in, 1, false);
}

static int run_trilu(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t k = 0;
    if (c->node->n_in > 1 && c->node->in[1]) {
        int64_t kv[1];
        int nk = cuda_param_i64(c, 1, kv, 1, "k");
        if (nk < 0) return -1;
        if (nk != 1) return ref_fail(c, "k must be one integer");
        k = kv[0];
    }
    int64_t rows = x->dims[r - 2], cols = x->dims[r - 1], batch = prod(x->dims, 0, r - 2);
    int64_t lim = rows + cols + 1; /* keeps i + k from overflowing */
    if (k > lim) k = lim;
    if (k < -lim) k = -lim;
    bool upper = ir_attr_int(c->node, "upper", 1) != 0;
    return cuda_fail_if(c, kc_trilu(c->out[0]->data, x->data, batch, rows, cols, k, upper,
                                    (int)kiln_dtype_size(x->dtype), cuda_stream_of(c)),
                        "Trilu");
}

/* ------------------------------------------------------------ Range */

/* start and delta are read on the device (they are often runtime values:
** position ids after a KV cache); the length is the output's. */
static bool sup_range(const ir_node *n, const ir_type *const *in) {
    (void)n;
    if (!in[0] || !in[2] || in[2]->dtype != in[0]->dtype) return false;
    kiln_dtype t = in[0]->dtype;
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_INT32 || t == KILN_DTYPE_INT64;
}

static int run_range(ref_ctx *c) {
    const kiln_tensor *s = c->in[0], *d = c->in[2];
    kiln_tensor *y = c->out[0];
    if (y->rank != 1 || tensor_numel(s) != 1 || tensor_numel(d) != 1 || s->dtype != y->dtype ||
        d->dtype != y->dtype)
        return ref_fail(c, "Range start and delta must be scalars of the output type");
    kiln_dtype t = y->dtype;
    int kind = t == KILN_DTYPE_FLOAT32 ? 0 : t == KILN_DTYPE_INT32 ? 1 : t == KILN_DTYPE_INT64 ? 2 : -1;
    if (kind < 0) return ref_fail(c, "Range type %s is not supported here", kiln_dtype_name(t));
    return cuda_fail_if(c, kc_range(y->data, y->dims[0], kind, s->data, d->data, cuda_stream_of(c)),
                        "Range");
}

/* ------------------------------------------------------ ConstantOfShape */

static bool sup_constant_of_shape(const ir_node *n, const ir_type *const *in) {
    (void)in;
    const kiln_tensor *v = ir_attr_tensor(n, "value");
    return !v || (movable(v->dtype) && tensor_numel(v) == 1);
}

static int run_constant_of_shape(ref_ctx *c) {
    const kiln_tensor *v = ir_attr_tensor(c->node, "value");
    kiln_tensor *y = c->out[0];
    int64_t n = tensor_numel(y);
    if (n <= 0) return 0;
    if (!v)
        return cuda_fail_if(c, cudaMemsetAsync(y->data, 0, y->nbytes, cuda_stream_of(c)),
                            "ConstantOfShape");
    if (v->dtype != y->dtype || tensor_numel(v) != 1)
        return ref_fail(c, "'value' must hold one %s element", kiln_dtype_name(y->dtype));
    return cuda_fail_if(c, kc_fill(y->data, n, v->data, (int)kiln_dtype_size(y->dtype),
                                   cuda_stream_of(c)),
                        "ConstantOfShape");
}

/* ------------------------------------------------------------ OneHot */

static bool sup_onehot(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return is_index_type(in[0]) && in[2] && movable(in[2]->dtype);
}

static int run_onehot(ref_ctx *c) {
    const kiln_tensor *ind = c->in[0], *val = c->in[2];
    kiln_tensor *y = c->out[0];
    int a = 0, r = ind->rank;
    if (norm_axis(c, ir_attr_int(c->node, "axis", -1), r + 1, &a)) return -1;
    if (y->rank != r + 1 || y->dtype != val->dtype || tensor_numel(val) != 2)
        return ref_fail(c, "OneHot output/values shape mismatch");
    int64_t depth = y->dims[a];
    return cuda_fail_if(c, kc_onehot(y->data, ind->data, ind->dtype == KILN_DTYPE_INT64, val->data,
                                     prod(ind->dims, 0, a), depth, prod(ind->dims, a, r),
                                     (int)kiln_dtype_size(y->dtype), cuda_stream_of(c)),
                        "OneHot");
}

/* ------------------------------------------------------------ table */

#define DEV_FLAGS (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define TACTIC(var, name, op, sup, fn) \
    static const kiln_tactic var = {name, op, 0, DEV_FLAGS, sup, NULL, fn};

TACTIC(t_reshape, "cuda_copy_reshape", OP_Reshape, sup_copy, run_copy)
TACTIC(t_flatten, "cuda_copy_flatten", OP_Flatten, sup_copy, run_copy)
TACTIC(t_squeeze, "cuda_copy_squeeze", OP_Squeeze, sup_copy, run_copy)
TACTIC(t_unsqueeze, "cuda_copy_unsqueeze", OP_Unsqueeze, sup_copy, run_copy)
TACTIC(t_identity, "cuda_copy_identity", OP_Identity, sup_copy, run_copy)
TACTIC(t_dropout, "cuda_copy_dropout", OP_Dropout, sup_dropout, run_dropout)
TACTIC(t_transpose, "cuda_transpose_view", OP_Transpose, sup_transpose, run_transpose)
TACTIC(t_concat, "cuda_concat_view", OP_Concat, sup_concat, run_concat)
TACTIC(t_split, "cuda_split_view", OP_Split, sup_split, run_split)
TACTIC(t_slice, "cuda_slice_view", OP_Slice, sup_slice, run_slice)
TACTIC(t_slice_dyn, "cuda_slice_dynamic", OP_Slice, sup_slice_dynamic, run_slice_dynamic)
TACTIC(t_gather, "cuda_gather_axis", OP_Gather, sup_gather, run_gather)
TACTIC(t_gather_el, "cuda_gather_elements", OP_GatherElements, sup_gather_elements,
       run_gather_elements)
TACTIC(t_scatter_el, "cuda_scatter_elements", OP_ScatterElements, sup_scatter_elements,
       run_scatter_elements)
/* opset 9-10 Scatter: ScatterElements without reductions */
TACTIC(t_scatter_old, "cuda_scatter_elements_v9", OP_Scatter, sup_scatter_elements,
       run_scatter_elements)
TACTIC(t_bitcast, "cuda_copy_bitcast", OP_BitCast, sup_bitcast, run_copy)
TACTIC(t_scatter_nd, "cuda_scatter_nd", OP_ScatterND, sup_scatter_nd, run_scatter_nd)
TACTIC(t_expand, "cuda_expand_view", OP_Expand, sup_expand, run_expand)
TACTIC(t_tile, "cuda_tile_view", OP_Tile, sup_tile, run_tile)
TACTIC(t_pad, "cuda_pad_map", OP_Pad, sup_pad, run_pad)
TACTIC(t_d2s, "cuda_depth_to_space_view", OP_DepthToSpace, sup_depth_space, run_depth_space)
TACTIC(t_s2d, "cuda_space_to_depth_view", OP_SpaceToDepth, sup_depth_space, run_depth_space)
TACTIC(t_trilu, "cuda_trilu", OP_Trilu, sup_trilu, run_trilu)
TACTIC(t_gather_nd, "cuda_gather_nd", OP_GatherND, sup_gather_nd, run_gather_nd)
TACTIC(t_ccp, "cuda_center_crop_pad_map", OP_CenterCropPad, sup_center_crop_pad,
       run_center_crop_pad)
TACTIC(t_range, "cuda_range", OP_Range, sup_range, run_range)
#define TACTIC_RT(var, name, op, sup, fn) \
    static const kiln_tactic var = {name, op, 0, DEV_FLAGS | TACTIC_READS_PARAMS, sup, NULL, fn};
TACTIC_RT(t_pad_rt, "cuda_pad_map_rtparams", OP_Pad, sup_pad_rt, run_pad)
TACTIC_RT(t_trilu_rt, "cuda_trilu_rtk", OP_Trilu, sup_trilu_rt, run_trilu)
TACTIC(t_cos, "cuda_constant_of_shape_fill", OP_ConstantOfShape, sup_constant_of_shape,
       run_constant_of_shape)
TACTIC(t_onehot, "cuda_onehot", OP_OneHot, sup_onehot, run_onehot)

const kiln_tactic *const cuda_tactics_data[] = {
    &t_reshape, &t_flatten, &t_squeeze, &t_unsqueeze, &t_identity, &t_dropout, &t_transpose,
    &t_concat, &t_split, &t_slice, &t_slice_dyn, &t_gather, &t_gather_el, &t_scatter_el,
    &t_scatter_nd, &t_expand, &t_tile, &t_pad, &t_d2s, &t_s2d,
    &t_trilu, &t_range, &t_cos, &t_onehot, &t_pad_rt, &t_trilu_rt, &t_gather_nd, &t_ccp, &t_scatter_old, &t_bitcast, NULL,
};
