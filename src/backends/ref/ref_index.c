/* ref_index.c: reference kernels for the index family: slicing, gathering,
** scattering, padding, tiling, and the data-dependent ops (TopK, NonZero,
** Compress, Unique, ...). Resampling ops live in ref_index_sample.c. */
#include "ref_index.h"

#include <math.h>
#include <stdio.h>

#define MAXV 64

/* ------------------------------------------------------ element access */

static inline uint8_t nib_get(const void *p, int64_t i) {
    uint8_t b = ((const uint8_t *)p)[i / 2];
    return (i & 1) ? (uint8_t)(b >> 4) : (uint8_t)(b & 15);
}

static inline void nib_set(void *p, int64_t i, uint8_t v) {
    uint8_t *b = (uint8_t *)p + i / 2;
    *b = (i & 1) ? (uint8_t)((*b & 15) | (v << 4))
                 : (uint8_t)((*b & 0xf0) | (v & 15));
}

/* es: element size in bytes, 0 for the 4-bit types (nibble copies). */
static inline void copy_elems(size_t es, void *dst, int64_t di,
                              const void *src, int64_t si, int64_t n) {
    if (n <= 0) return;
    if (es) {
        memcpy((char *)dst + (size_t)di * es,
               (const char *)src + (size_t)si * es, (size_t)n * es);
        return;
    }
    for (int64_t k = 0; k < n; k++) nib_set(dst, di + k, nib_get(src, si + k));
}

static inline void copy_one(size_t es, void *dst, int64_t di,
                            const void *src, int64_t si) {
    char *d = dst;
    const char *s = src;
    switch (es) {
    case 0: nib_set(dst, di, nib_get(src, si)); return;
    case 1: d[di] = s[si]; return;
    case 2: memcpy(d + di * 2, s + si * 2, 2); return;
    case 4: memcpy(d + di * 4, s + si * 4, 4); return;
    case 8: memcpy(d + di * 8, s + si * 8, 8); return;
    default: memcpy(d + (size_t)di * es, s + (size_t)si * es, es); return;
    }
}

static inline int64_t get_idx(const kiln_tensor *t, int64_t i) {
    if (t->dtype == KILN_DTYPE_INT64) return ((const int64_t *)t->data)[i];
    if (t->dtype == KILN_DTYPE_INT32) return ((const int32_t *)t->data)[i];
    return dt_get_i64(t->dtype, t->data, (size_t)i);
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

static bool shape_is(const kiln_tensor *t, int rank, const int64_t *dims) {
    return shape_equal(t->rank, t->dims, rank, dims);
}

static int check_out(ref_ctx *c, int i, int rank, const int64_t *dims) {
    if (!c->out[i]->data || !shape_is(c->out[i], rank, dims)) {
        char a[128], b[128];
        return ref_fail(c, "output %d shape %s does not match computed %s", i,
                        shape_str(c->out[i]->rank, c->out[i]->dims, a, sizeof a),
                        shape_str(rank, dims, b, sizeof b));
    }
    return 0;
}

static int norm_axis(ref_ctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return ref_fail(c, "axis %lld is out of range for rank %d",
                        (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

/* An index into a dim of size d: negative counts from the end. */
static int fix_index(ref_ctx *c, int64_t *v, int64_t d, const char *what) {
    int64_t k = *v;
    if (k < -d || k >= d)
        return ref_fail(c, "%s index %lld is out of range for a dim of %lld",
                        what, (long long)k, (long long)d);
    *v = k < 0 ? k + d : k;
    return 0;
}

int ref_read_ints(ref_ctx *c, const kiln_tensor *t, int64_t *v, int max,
                  const char *what) {
    int64_t n = tensor_numel(t);
    if (!dtype_is_int(t->dtype))
        return ref_fail(c, "%s must be an integer tensor", what);
    if (t->rank > 1 || n < 0 || n > max)
        return ref_fail(c, "%s must be a vector of at most %d values", what,
                        max);
    for (int64_t k = 0; k < n; k++)
        v[k] = dt_get_i64(t->dtype, t->data, (size_t)k);
    return (int)n;
}

/* ------------------------------------------------------ index maps */

int idx_maps_init(ref_ctx *c, idx_maps *mp, int rank, const int64_t *dims) {
    int64_t total = 0; /* callers skip empty outputs: total <= numel + rank */
    memset(mp, 0, sizeof *mp);
    mp->rank = rank;
    for (int a = 0; a < rank; a++) total += dims[a];
    mp->buf = malloc((size_t)(total > 0 ? total : 1) * sizeof(int64_t));
    if (!mp->buf) return ref_fail(c, "out of memory");
    int64_t off = 0;
    for (int a = 0; a < rank; a++) {
        mp->m[a] = mp->buf + off;
        off += dims[a];
    }
    return 0;
}

void idx_maps_free(idx_maps *mp) {
    free(mp->buf);
    mp->buf = NULL;
}

void idx_map_copy(kiln_tensor *out, const kiln_tensor *in,
                  const idx_maps *mp, const int64_t *in_strides,
                  const void *fill) {
    int r = out->rank;
    size_t es = kiln_dtype_size(out->dtype);
    int64_t n = tensor_numel(out);
    if (n <= 0) return;
    if (r == 0) {
        copy_one(es, out->data, 0, in->data, 0);
        return;
    }
    int64_t st[KILN_MAX_RANK];
    if (in_strides) memcpy(st, in_strides, (size_t)r * sizeof *st);
    else shape_strides(in->rank, in->dims, st);
    int64_t last = out->dims[r - 1];
    const int64_t *lm = mp->m[r - 1];
    bool contig = st[r - 1] == 1;
    for (int64_t o = 0; o < last && contig; o++)
        if (lm[o] < 0 || lm[o] != lm[0] + o) contig = false;
    int64_t idx[KILN_MAX_RANK] = {0};
    int64_t rows = n / last;
    for (int64_t row = 0; row < rows; row++) {
        int64_t base = 0, dst0 = row * last;
        bool pad = false;
        for (int a = 0; a < r - 1; a++) {
            int64_t m = mp->m[a][idx[a]];
            if (m < 0) {
                pad = true;
                break;
            }
            base += m * st[a];
        }
        if (pad) {
            for (int64_t o = 0; o < last; o++)
                copy_one(es, out->data, dst0 + o, fill, 0);
        } else if (contig) {
            copy_elems(es, out->data, dst0, in->data, base + lm[0], last);
        } else {
            for (int64_t o = 0; o < last; o++) {
                if (lm[o] < 0) copy_one(es, out->data, dst0 + o, fill, 0);
                else copy_one(es, out->data, dst0 + o, in->data,
                              base + lm[o] * st[r - 1]);
            }
        }
        for (int a = r - 2; a >= 0; a--) {
            if (++idx[a] < out->dims[a]) break;
            idx[a] = 0;
        }
    }
}

/* --------------------------------------------------------------- Slice */

static int k_slice(ref_ctx *c) {
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
        if (!ref_has(c, 1) || !ref_has(c, 2))
            return ref_fail(c, "Slice needs starts and ends");
        if ((ns = ref_read_ints(c, c->in[1], st, MAXV, "starts")) < 0 ||
            (ne = ref_read_ints(c, c->in[2], en, MAXV, "ends")) < 0)
            return -1;
        if (ref_has(c, 3) &&
            (na = ref_read_ints(c, c->in[3], ax, MAXV, "axes")) < 0)
            return -1;
        if (ref_has(c, 4) &&
            (np = ref_read_ints(c, c->in[4], sp, MAXV, "steps")) < 0)
            return -1;
    }
    if (ns != ne || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return ref_fail(c, "Slice starts/ends/axes/steps lengths differ");
    int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], len[KILN_MAX_RANK];
    char err[INDEX_ERR_SIZE];
    if (index_slice_resolve(x->rank, x->dims, ns, st, en, na >= 0 ? ax : NULL,
                            np >= 0 ? sp : NULL, start, step, len, err))
        return ref_fail(c, "%s", err);
    if (check_out(c, 0, x->rank, len)) return -1;
    if (tensor_numel(y) == 0) return 0;
    idx_maps mp;
    if (idx_maps_init(c, &mp, x->rank, len)) return -1;
    for (int a = 0; a < x->rank; a++)
        for (int64_t o = 0; o < len[a]; o++) mp.m[a][o] = start[a] + o * step[a];
    idx_map_copy(y, x, &mp, NULL, NULL);
    idx_maps_free(&mp);
    return 0;
}

/* -------------------------------------------------------------- Gather */

static int k_gather(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1];
    kiln_tensor *y = c->out[0];
    int a = 0;
    if (x->rank < 1) return ref_fail(c, "Gather data must have rank >= 1");
    if (norm_axis(c, ir_attr_int(c->node, "axis", 0), x->rank, &a)) return -1;
    int64_t outer = prod(x->dims, 0, a), A = x->dims[a];
    int64_t inner = prod(x->dims, a + 1, x->rank);
    int64_t ni = tensor_numel(ind);
    size_t es = kiln_dtype_size(x->dtype);
    for (int64_t j = 0; j < ni; j++) {
        int64_t k = get_idx(ind, j);
        if (fix_index(c, &k, A, "Gather")) return -1;
    }
    if (tensor_numel(y) != outer * ni * inner)
        return ref_fail(c, "Gather output has the wrong size");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = get_idx(ind, j);
            if (k < 0) k += A;
            copy_elems(es, y->data, (o * ni + j) * inner, x->data,
                       (o * A + k) * inner, inner);
        }
    return 0;
}

/* Checks that indices (same rank as data) fit data on every axis but a. */
static int check_elem_shapes(ref_ctx *c, const kiln_tensor *x,
                             const kiln_tensor *ind, int a) {
    if (x->rank != ind->rank)
        return ref_fail(c, "data rank %d != indices rank %d", x->rank,
                        ind->rank);
    for (int d = 0; d < x->rank; d++)
        if (d != a && ind->dims[d] > x->dims[d])
            return ref_fail(c, "indices dim %d (%lld) exceeds data dim %lld",
                            d, (long long)ind->dims[d], (long long)x->dims[d]);
    return 0;
}

static int k_gather_elements(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1];
    kiln_tensor *y = c->out[0];
    int a = 0, r = x->rank;
    if (r < 1) return ref_fail(c, "GatherElements needs rank >= 1");
    if (norm_axis(c, ir_attr_int(c->node, "axis", 0), r, &a) ||
        check_elem_shapes(c, x, ind, a))
        return -1;
    size_t es = kiln_dtype_size(x->dtype);
    int64_t xs[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    shape_strides(r, x->dims, xs);
    int64_t n = tensor_numel(ind);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = get_idx(ind, i), off = 0;
        if (fix_index(c, &k, x->dims[a], "GatherElements")) return -1;
        for (int d = 0; d < r; d++) off += (d == a ? k : idx[d]) * xs[d];
        copy_one(es, y->data, i, x->data, off);
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < ind->dims[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

static int k_gather_nd(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1];
    kiln_tensor *y = c->out[0];
    int r = x->rank, q = ind->rank;
    int64_t b = ir_attr_int(c->node, "batch_dims", 0);
    if (r < 1 || q < 1 || b < 0 || b >= KILN_MIN(r, q))
        return ref_fail(c, "GatherND ranks/batch_dims are invalid");
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r - b)
        return ref_fail(c, "GatherND indices last dim %lld is invalid",
                        (long long)m);
    for (int i = 0; i < b; i++)
        if (x->dims[i] != ind->dims[i])
            return ref_fail(c, "GatherND batch dim %d differs", i);
    int64_t B = prod(ind->dims, 0, (int)b), M = prod(ind->dims, (int)b, q - 1);
    int64_t slice = prod(x->dims, (int)(b + m), r);
    int64_t bstride = prod(x->dims, (int)b, r);
    int64_t xs[KILN_MAX_RANK];
    shape_strides(r, x->dims, xs);
    size_t es = kiln_dtype_size(x->dtype);
    if (tensor_numel(y) != B * M * slice)
        return ref_fail(c, "GatherND output has the wrong size");
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t mi = 0; mi < M; mi++) {
            int64_t t = (bi * M + mi) * m, off = bi * bstride;
            for (int64_t j = 0; j < m; j++) {
                int64_t v = get_idx(ind, t + j);
                if (fix_index(c, &v, x->dims[b + j], "GatherND")) return -1;
                off += v * xs[b + j];
            }
            copy_elems(es, y->data, (bi * M + mi) * slice, x->data, off, slice);
        }
    return 0;
}

/* ------------------------------------------------------------- Scatter */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static int get_reduction(ref_ctx *c, int *red) {
    const char *s = c->node->op == OP_Scatter
                        ? "none" : ir_attr_str(c->node, "reduction", "none");
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *red = i;
            return 0;
        }
    return ref_fail(c, "unknown reduction '%s'", s);
}

static double red_f64(double a, double b, int red) {
    switch (red) {
    case RED_ADD: return a + b;
    case RED_MUL: return a * b;
    case RED_MAX: return (b > a || isnan(b)) ? b : a;
    case RED_MIN: return (b < a || isnan(b)) ? b : a;
    default: return b;
    }
}

static float red_f32(float a, float b, int red) {
    switch (red) {
    case RED_ADD: return a + b;
    case RED_MUL: return a * b;
    case RED_MAX: return (b > a || isnan(b)) ? b : a;
    case RED_MIN: return (b < a || isnan(b)) ? b : a;
    default: return b;
    }
}

/* dst[di] = red(dst[di], src[si]) in the element type (ints wrap). */
static void reduce_apply(kiln_dtype t, size_t es, void *dst, int64_t di,
                         const void *src, int64_t si, int red) {
    if (red == RED_NONE) {
        copy_one(es, dst, di, src, si);
        return;
    }
    switch (t) {
    case KILN_DTYPE_FLOAT32: {
        float *d = dst;
        d[di] = red_f32(d[di], ((const float *)src)[si], red);
        return;
    }
    case KILN_DTYPE_FLOAT64: {
        double *d = dst;
        d[di] = red_f64(d[di], ((const double *)src)[si], red);
        return;
    }
    case KILN_DTYPE_UINT64: {
        uint64_t *d = dst, b = ((const uint64_t *)src)[si], a = d[di];
        d[di] = red == RED_ADD ? a + b : red == RED_MUL ? a * b
                : red == RED_MAX ? (b > a ? b : a) : (b < a ? b : a);
        return;
    }
    case KILN_DTYPE_BOOL: {
        uint8_t *d = dst, b = ((const uint8_t *)src)[si] != 0, a = d[di] != 0;
        d[di] = (red == RED_ADD || red == RED_MAX) ? (a | b) : (a & b);
        return;
    }
    default:
        break;
    }
    if (dtype_is_float(t)) {
        float a = (float)dt_get_f64(t, dst, (size_t)di);
        float b = (float)dt_get_f64(t, src, (size_t)si);
        dt_set_f64(t, dst, (size_t)di, red_f32(a, b, red));
        return;
    }
    int64_t a = dt_get_i64(t, dst, (size_t)di), b = dt_get_i64(t, src, (size_t)si);
    int64_t v;
    switch (red) {
    case RED_ADD: v = (int64_t)((uint64_t)a + (uint64_t)b); break;
    case RED_MUL: v = (int64_t)((uint64_t)a * (uint64_t)b); break;
    case RED_MAX: v = b > a ? b : a; break;
    default: v = b < a ? b : a; break;
    }
    dt_set_i64(t, dst, (size_t)di, v);
}

static int k_scatter_elements(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    kiln_tensor *y = c->out[0];
    int a = 0, red = 0, r = x->rank;
    if (r < 1) return ref_fail(c, "scatter needs rank >= 1");
    if (get_reduction(c, &red) ||
        norm_axis(c, ir_attr_int(c->node, "axis", 0), r, &a) ||
        check_elem_shapes(c, x, ind, a))
        return -1;
    if (!shape_is(u, ind->rank, ind->dims) || u->dtype != x->dtype)
        return ref_fail(c, "updates must match indices in shape and data in "
                           "type");
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    size_t es = kiln_dtype_size(x->dtype);
    int64_t xs[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    shape_strides(r, x->dims, xs);
    int64_t n = tensor_numel(ind);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = get_idx(ind, i), off = 0;
        if (fix_index(c, &k, x->dims[a], "scatter")) return -1;
        for (int d = 0; d < r; d++) off += (d == a ? k : idx[d]) * xs[d];
        reduce_apply(x->dtype, es, y->data, off, u->data, i, red);
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < ind->dims[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

static int k_scatter_nd(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    kiln_tensor *y = c->out[0];
    int red = 0, r = x->rank, q = ind->rank;
    if (get_reduction(c, &red)) return -1;
    if (r < 1 || q < 1) return ref_fail(c, "ScatterND needs rank >= 1");
    int64_t k = ind->dims[q - 1];
    if (k > r) return ref_fail(c, "ScatterND index depth %lld > rank %d",
                               (long long)k, r);
    int64_t M = prod(ind->dims, 0, q - 1), slice = prod(x->dims, (int)k, r);
    if (u->dtype != x->dtype || tensor_numel(u) != M * slice ||
        u->rank != q - 1 + r - k)
        return ref_fail(c, "ScatterND updates shape/type is invalid");
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    size_t es = kiln_dtype_size(x->dtype);
    int64_t xs[KILN_MAX_RANK];
    shape_strides(r, x->dims, xs);
    for (int64_t mi = 0; mi < M; mi++) {
        int64_t off = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t v = get_idx(ind, mi * k + j);
            if (fix_index(c, &v, x->dims[j], "ScatterND")) return -1;
            off += v * xs[j];
        }
        for (int64_t e = 0; e < slice; e++)
            reduce_apply(x->dtype, es, y->data, off + e, u->data,
                         mi * slice + e, red);
    }
    return 0;
}

/* -------------------------------------------------------- Expand, Tile */

static int k_expand(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int R = y->rank, r = x->rank;
    if (r > R) return ref_fail(c, "Expand output rank is too small");
    int64_t xs[KILN_MAX_RANK], st[KILN_MAX_RANK];
    shape_strides(r, x->dims, xs);
    idx_maps mp;
    for (int a = 0; a < R; a++) {
        int j = a - (R - r);
        int64_t d = j >= 0 ? x->dims[j] : 1;
        if (d != 1 && d != y->dims[a])
            return ref_fail(c, "cannot expand dim %lld to %lld", (long long)d,
                            (long long)y->dims[a]);
        st[a] = j >= 0 ? xs[j] : 0;
    }
    if (tensor_numel(y) == 0) return 0;
    if (idx_maps_init(c, &mp, R, y->dims)) return -1;
    for (int a = 0; a < R; a++) {
        int j = a - (R - r);
        bool bc = j < 0 || x->dims[j] == 1;
        for (int64_t o = 0; o < y->dims[a]; o++) mp.m[a][o] = bc ? 0 : o;
    }
    idx_map_copy(y, x, &mp, st, NULL);
    idx_maps_free(&mp);
    return 0;
}

static int k_tile(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t rep[KILN_MAX_RANK];
    int n = ref_read_ints(c, c->in[1], rep, KILN_MAX_RANK, "repeats");
    if (n < 0) return -1;
    if (n != x->rank) return ref_fail(c, "Tile repeats length != rank");
    for (int a = 0; a < x->rank; a++)
        if (rep[a] < 0 || y->dims[a] != x->dims[a] * rep[a])
            return ref_fail(c, "Tile repeats/output shape mismatch");
    if (tensor_numel(y) == 0) return 0;
    idx_maps mp;
    if (idx_maps_init(c, &mp, y->rank, y->dims)) return -1;
    for (int a = 0; a < y->rank; a++)
        for (int64_t o = 0; o < y->dims[a]; o++) mp.m[a][o] = o % x->dims[a];
    idx_map_copy(y, x, &mp, NULL, NULL);
    idx_maps_free(&mp);
    return 0;
}

/* ----------------------------------------------------------------- Pad */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static int64_t pmod(int64_t a, int64_t m) {
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

static int k_pad(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    const char *ms = ir_attr_str(c->node, "mode", "constant");
    int mode = !strcmp(ms, "constant") ? PAD_CONSTANT
               : !strcmp(ms, "reflect") ? PAD_REFLECT
               : !strcmp(ms, "edge")    ? PAD_EDGE
               : !strcmp(ms, "wrap")    ? PAD_WRAP : -1;
    if (mode < 0) return ref_fail(c, "Pad mode '%s' is unknown", ms);
    int64_t pads[MAXV], axes[MAXV];
    int np, na = -1;
    uint8_t fill[16] = {0};
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
        if (!ref_has(c, 1)) return ref_fail(c, "Pad needs pads");
        if ((np = ref_read_ints(c, c->in[1], pads, MAXV, "pads")) < 0) return -1;
        if (ref_has(c, 2) && tensor_numel(c->in[2]) > 0) {
            if (c->in[2]->dtype != x->dtype)
                return ref_fail(c, "Pad constant_value type differs from data");
            copy_one(kiln_dtype_size(x->dtype), fill, 0, c->in[2]->data, 0);
        }
        if (ref_has(c, 3) &&
            (na = ref_read_ints(c, c->in[3], axes, MAXV, "axes")) < 0)
            return -1;
    }
    int64_t pb[KILN_MAX_RANK], pe[KILN_MAX_RANK], od[KILN_MAX_RANK];
    char err[INDEX_ERR_SIZE];
    if (index_pad_resolve(r, pads, np, na >= 0 ? axes : NULL, na, pb, pe, err))
        return ref_fail(c, "%s", err);
    for (int a = 0; a < r; a++) od[a] = x->dims[a] + pb[a] + pe[a];
    if (check_out(c, 0, r, od)) return -1;
    if (tensor_numel(y) == 0) return 0;
    idx_maps mp;
    if (idx_maps_init(c, &mp, r, od)) return -1;
    for (int a = 0; a < r; a++) {
        /* Negative pads crop first; the other modes then see the crop. */
        int64_t lo = pb[a] < 0 ? -pb[a] : 0;
        int64_t hi = x->dims[a] - (pe[a] < 0 ? -pe[a] : 0);
        int64_t de = hi - lo, off = pb[a] > 0 ? pb[a] : 0;
        if (de <= 0 && mode != PAD_CONSTANT && od[a] > 0) {
            idx_maps_free(&mp);
            return ref_fail(c, "Pad mode '%s' cannot pad an empty axis %d", ms,
                            a);
        }
        for (int64_t o = 0; o < od[a]; o++) {
            int64_t i = o - off, m;
            if (i >= 0 && i < de) m = i;
            else if (mode == PAD_CONSTANT) m = -1;
            else if (mode == PAD_EDGE) m = i < 0 ? 0 : de - 1;
            else if (mode == PAD_WRAP) m = pmod(i, de);
            else if (de == 1) m = 0;
            else {
                int64_t per = 2 * (de - 1);
                m = pmod(i, per);
                if (m >= de) m = per - m;
            }
            mp.m[a][o] = m < 0 ? -1 : lo + m;
        }
    }
    idx_map_copy(y, x, &mp, NULL, fill);
    idx_maps_free(&mp);
    return 0;
}

/* ---------------------------------------------------------- CenterCropPad */

static int k_center_crop_pad(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank, cnt;
    int64_t shp[MAXV];
    int n = ref_read_ints(c, c->in[1], shp, MAXV, "shape");
    if (n < 0) return -1;
    const int64_t *ax = ir_attr_ints(c->node, "axes", &cnt);
    int na = ax ? cnt : r;
    if (na != n || na > r)
        return ref_fail(c, "CenterCropPad shape has %d values for %d axes", n,
                        na);
    int64_t od[KILN_MAX_RANK], off[KILN_MAX_RANK] = {0};
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    for (int k = 0; k < na; k++) {
        int a = 0;
        if (norm_axis(c, ax ? ax[k] : k, r, &a)) return -1;
        if (shp[k] < 0) return ref_fail(c, "CenterCropPad size is negative");
        od[a] = shp[k];
        /* crop: positive offset into the input; pad: negative */
        off[a] = shp[k] <= x->dims[a] ? (x->dims[a] - shp[k]) / 2
                                      : -((shp[k] - x->dims[a]) / 2);
    }
    if (check_out(c, 0, r, od)) return -1;
    if (tensor_numel(y) == 0) return 0;
    idx_maps mp;
    if (idx_maps_init(c, &mp, r, od)) return -1;
    for (int a = 0; a < r; a++)
        for (int64_t o = 0; o < od[a]; o++) {
            int64_t i = o + off[a];
            mp.m[a][o] = i >= 0 && i < x->dims[a] ? i : -1;
        }
    uint8_t fill[16] = {0};
    idx_map_copy(y, x, &mp, NULL, fill);
    idx_maps_free(&mp);
    return 0;
}

/* ------------------------------------------ DepthToSpace, SpaceToDepth */

static int k_depth_space(ref_ctx *c, bool to_space) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->rank != 4 || y->rank != 4) return ref_fail(c, "needs rank 4");
    int64_t b = ir_attr_int(c->node, "blocksize", 0);
    if (b <= 0) return ref_fail(c, "blocksize must be positive");
    bool crd = to_space && !strcmp(ir_attr_str(c->node, "mode", "DCR"), "CRD");
    size_t es = kiln_dtype_size(x->dtype);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t oc = y->dims[1], oh = y->dims[2], ow = y->dims[3], i = 0;
    if ((to_space && (oc * b * b != C || oh != H * b || ow != W * b)) ||
        (!to_space && (oc != C * b * b || oh * b != H || ow * b != W)))
        return ref_fail(c, "output shape does not match blocksize");
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < oc; co++)
            for (int64_t ho = 0; ho < oh; ho++)
                for (int64_t wo = 0; wo < ow; wo++, i++) {
                    int64_t src;
                    if (to_space) {
                        int64_t bi = ho % b, bj = wo % b;
                        int64_t ci = crd ? co * b * b + bi * b + bj
                                         : (bi * b + bj) * oc + co;
                        src = ((n * C + ci) * H + ho / b) * W + wo / b;
                    } else {
                        int64_t blk = co / C, ci = co % C;
                        src = ((n * C + ci) * H + ho * b + blk / b) * W +
                              wo * b + blk % b;
                    }
                    copy_one(es, y->data, i, x->data, src);
                }
    return 0;
}

static int k_depth_to_space(ref_ctx *c) { return k_depth_space(c, true); }
static int k_space_to_depth(ref_ctx *c) { return k_depth_space(c, false); }

/* -------------------------------------------------------------- CumSum */

static int k_cumsum(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    const kiln_tensor *at = c->in[1];
    if (!dtype_is_int(at->dtype) || tensor_numel(at) != 1)
        return ref_fail(c, "CumSum axis must be one integer");
    int a = 0, r = x->rank;
    if (norm_axis(c, dt_get_i64(at->dtype, at->data, 0), r ? r : 1, &a))
        return -1;
    bool excl = ir_attr_int(c->node, "exclusive", 0) != 0;
    bool rev = ir_attr_int(c->node, "reverse", 0) != 0;
    int64_t outer = r ? prod(x->dims, 0, a) : 1, L = r ? x->dims[a] : 1;
    int64_t inner = r ? prod(x->dims, a + 1, r) : 1;
    kiln_dtype t = x->dtype;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            float af = 0;
            double ad = 0;
            uint64_t ai = 0;
            for (int64_t s = 0; s < L; s++) {
                int64_t pos = rev ? L - 1 - s : s;
                size_t off = (size_t)((o * L + pos) * inner + in);
                if (t == KILN_DTYPE_FLOAT32) {
                    float v = ((const float *)x->data)[off];
                    if (!excl) af += v;
                    ((float *)y->data)[off] = af;
                    if (excl) af += v;
                } else if (t == KILN_DTYPE_FLOAT64) {
                    double v = ((const double *)x->data)[off];
                    if (!excl) ad += v;
                    ((double *)y->data)[off] = ad;
                    if (excl) ad += v;
                } else if (dtype_is_float(t)) {
                    float v = (float)dt_get_f64(t, x->data, off);
                    if (!excl) af += v;
                    dt_set_f64(t, y->data, off, af);
                    if (excl) af += v;
                } else {
                    uint64_t v = (uint64_t)dt_get_i64(t, x->data, off);
                    if (!excl) ai += v;
                    dt_set_i64(t, y->data, off, (int64_t)ai);
                    if (excl) ai += v;
                }
            }
        }
    return 0;
}

/* -------------------------------------------------------------- OneHot */

static int k_onehot(ref_ctx *c) {
    const kiln_tensor *ind = c->in[0], *dep = c->in[1], *val = c->in[2];
    kiln_tensor *y = c->out[0];
    if (tensor_numel(dep) != 1 || tensor_numel(val) != 2)
        return ref_fail(c, "OneHot depth/values have the wrong size");
    double dv = dt_get_f64(dep->dtype, dep->data, 0);
    if (!(dv >= 0) || dv > 9.0e15)
        return ref_fail(c, "OneHot depth %g is invalid", dv);
    int64_t depth = (int64_t)dv;
    int a = 0, r = ind->rank;
    if (norm_axis(c, ir_attr_int(c->node, "axis", -1), r + 1, &a)) return -1;
    if (y->rank != r + 1 || y->dims[a] != depth || y->dtype != val->dtype)
        return ref_fail(c, "OneHot output shape mismatch");
    int64_t pre = prod(ind->dims, 0, a), post = prod(ind->dims, a, r);
    size_t es = kiln_dtype_size(y->dtype);
    int64_t n = tensor_numel(y);
    for (int64_t i = 0; i < n; i++) copy_one(es, y->data, i, val->data, 0);
    bool fidx = dtype_is_float(ind->dtype);
    for (int64_t p = 0; p < pre; p++)
        for (int64_t q = 0; q < post; q++) {
            size_t ii = (size_t)(p * post + q);
            int64_t v = fidx ? f64_to_i64_sat(dt_get_f64(ind->dtype, ind->data, ii))
                             : dt_get_i64(ind->dtype, ind->data, ii);
            if (v < 0 && v >= -depth) v += depth;
            if (v < 0 || v >= depth) continue; /* out of range: all off */
            copy_one(es, y->data, (p * depth + v) * post + q, val->data, 1);
        }
    return 0;
}

/* ------------------------------------------------- sorting (TopK, Unique) */

enum { KEY_F64, KEY_I64, KEY_U64 };
typedef union sort_key {
    double f;
    int64_t i;
    uint64_t u;
} sort_key;

static int key_kind(kiln_dtype t) {
    if (dtype_is_float(t)) return KEY_F64;
    return t == KILN_DTYPE_UINT64 ? KEY_U64 : KEY_I64;
}

static sort_key key_at(kiln_dtype t, int kind, const void *p, size_t i) {
    sort_key k;
    if (kind == KEY_F64) k.f = dt_get_f64(t, p, i);
    else if (kind == KEY_U64) k.u = ((const uint64_t *)p)[i];
    else k.i = dt_get_i64(t, p, i);
    return k;
}

/* Total order; NaN sorts above everything (as numpy does). */
static int key_cmp(int kind, sort_key a, sort_key b) {
    if (kind == KEY_F64) {
        bool na = isnan(a.f), nb = isnan(b.f);
        if (na || nb) return na - nb;
        return a.f < b.f ? -1 : a.f > b.f;
    }
    if (kind == KEY_U64) return a.u < b.u ? -1 : a.u > b.u;
    return a.i < b.i ? -1 : a.i > b.i;
}

typedef int (*item_cmp)(const void *ctx, int64_t i, int64_t j);

/* Stable merge sort of item ids. */
static void merge_sort(int64_t *v, int64_t *tmp, int64_t n, item_cmp cmp,
                       const void *ctx) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = KILN_MIN(lo + w, n), hi = KILN_MIN(lo + 2 * w, n);
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(ctx, v[j], v[i]) < 0 ? v[j++] : v[i++];
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

typedef struct topk_ctx {
    const sort_key *keys;
    int kind;
    bool largest;
} topk_ctx;

static int topk_cmp(const void *ctx, int64_t i, int64_t j) {
    const topk_ctx *t = ctx;
    int r = key_cmp(t->kind, t->keys[i], t->keys[j]);
    return t->largest ? -r : r;
}

static int k_topk(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *yv = c->out[0], *yi = c->out[1];
    int64_t K;
    if (c->opset < 10) {
        K = ir_attr_int(c->node, "k", -1);
    } else {
        if (!ref_has(c, 1) || tensor_numel(c->in[1]) != 1)
            return ref_fail(c, "TopK K must hold one value");
        K = get_idx(c->in[1], 0);
    }
    int a = 0, r = x->rank;
    if (r < 1 || norm_axis(c, ir_attr_int(c->node, "axis", -1), r, &a))
        return r < 1 ? ref_fail(c, "TopK needs rank >= 1") : -1;
    int64_t L = x->dims[a];
    if (K < 0 || K > L)
        return ref_fail(c, "TopK K %lld is out of range [0, %lld]",
                        (long long)K, (long long)L);
    bool largest = ir_attr_int(c->node, "largest", 1) != 0;
    int64_t outer = prod(x->dims, 0, a), inner = prod(x->dims, a + 1, r);
    if (tensor_numel(yv) != outer * K * inner || yi->dtype != KILN_DTYPE_INT64)
        return ref_fail(c, "TopK output shape mismatch");
    size_t es = kiln_dtype_size(x->dtype);
    int kind = key_kind(x->dtype);
    sort_key *keys = malloc((size_t)(L ? L : 1) * sizeof *keys);
    int64_t *perm = malloc((size_t)(L ? L : 1) * 2 * sizeof *perm);
    if (!keys || !perm) {
        free(keys);
        free(perm);
        return ref_fail(c, "out of memory");
    }
    topk_ctx tc = {keys, kind, largest};
    int64_t *yid = yi->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            for (int64_t t = 0; t < L; t++) {
                perm[t] = t;
                keys[t] = key_at(x->dtype, kind, x->data,
                                 (size_t)((o * L + t) * inner + in));
            }
            merge_sort(perm, perm + L, L, topk_cmp, &tc);
            for (int64_t t = 0; t < K; t++) {
                int64_t dst = (o * K + t) * inner + in;
                copy_one(es, yv->data, dst, x->data, (o * L + perm[t]) * inner + in);
                yid[dst] = perm[t];
            }
        }
    free(keys);
    free(perm);
    return 0;
}

/* ------------------------------------------------------------- NonZero */

static bool elem_nonzero(kiln_dtype t, const void *p, size_t i) {
    if (dtype_is_float(t)) return dt_get_f64(t, p, i) != 0;
    return dt_get_i64(t, p, i) != 0;
}

static int k_nonzero(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int64_t n = tensor_numel(x), cnt = 0;
    int r = x->rank ? x->rank : 1;
    for (int64_t i = 0; i < n; i++) cnt += elem_nonzero(x->dtype, x->data, (size_t)i);
    int64_t od[2] = {r, cnt};
    if (ref_alloc_out(c, 0, KILN_DTYPE_INT64, 2, od)) return -1;
    int64_t *y = c->out[0]->data, idx[KILN_MAX_RANK] = {0}, k = 0;
    int64_t dims1 = n; /* a scalar is a 1-element vector */
    const int64_t *dims = x->rank ? x->dims : &dims1;
    for (int64_t i = 0; i < n; i++) {
        if (elem_nonzero(x->dtype, x->data, (size_t)i)) {
            for (int d = 0; d < r; d++) y[d * cnt + k] = idx[d];
            k++;
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ Compress */

static int k_compress(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *cond = c->in[1];
    if (cond->dtype != KILN_DTYPE_BOOL || cond->rank != 1)
        return ref_fail(c, "Compress condition must be a bool vector");
    const ir_attr *axa = ir_attr_find(c->node, "axis");
    int64_t outer = 1, A = tensor_numel(x), inner = 1;
    int a = -1;
    if (axa) {
        if (x->rank < 1) return ref_fail(c, "Compress with an axis needs rank >= 1");
        if (norm_axis(c, axa->i, x->rank, &a)) return -1;
        outer = prod(x->dims, 0, a);
        A = x->dims[a];
        inner = prod(x->dims, a + 1, x->rank);
    }
    const uint8_t *cv = cond->data;
    int64_t nc = cond->dims[0], cnt = 0;
    for (int64_t i = 0; i < nc; i++)
        if (cv[i]) {
            if (i >= A)
                return ref_fail(c, "Compress condition selects index %lld "
                                   "beyond the axis size %lld", (long long)i,
                                (long long)A);
            cnt++;
        }
    int64_t od[KILN_MAX_RANK];
    int orank = 1;
    od[0] = cnt;
    if (axa) {
        orank = x->rank;
        memcpy(od, x->dims, (size_t)orank * sizeof *od);
        od[a] = cnt;
    }
    if (ref_alloc_out(c, 0, x->dtype, orank, od)) return -1;
    kiln_tensor *y = c->out[0];
    size_t es = kiln_dtype_size(x->dtype);
    int64_t k = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < nc; i++)
            if (cv[i])
                copy_elems(es, y->data, (k++) * inner, x->data,
                           (o * A + i) * inner, inner);
    return 0;
}

/* ----------------------------------------------------- ReverseSequence */

static int k_reverse_sequence(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *sl = c->in[1];
    kiln_tensor *y = c->out[0];
    int ba = (int)ir_attr_int(c->node, "batch_axis", 1);
    int ta = (int)ir_attr_int(c->node, "time_axis", 0);
    if (x->rank < 2 || (ba != 0 && ba != 1) || ta != 1 - ba)
        return ref_fail(c, "ReverseSequence axes/rank are invalid");
    int64_t B = x->dims[ba], T = x->dims[ta], inner = prod(x->dims, 2, x->rank);
    if (tensor_numel(sl) != B)
        return ref_fail(c, "sequence_lens has %lld values for batch %lld",
                        (long long)tensor_numel(sl), (long long)B);
    size_t es = kiln_dtype_size(x->dtype);
    for (int64_t b = 0; b < B; b++) {
        int64_t len = get_idx(sl, b);
        if (len < 0 || len > T)
            return ref_fail(c, "sequence length %lld is out of range [0, %lld]",
                            (long long)len, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t s = t < len ? len - 1 - t : t;
            int64_t dst = ba == 0 ? b * T + t : t * B + b;
            int64_t src = ba == 0 ? b * T + s : s * B + b;
            copy_elems(es, y->data, dst * inner, x->data, src * inner, inner);
        }
    }
    return 0;
}

/* -------------------------------------------------------------- Unique */

typedef struct uniq_ctx {
    const sort_key *keys; /* all elements of x */
    int kind;
    int64_t outer, A, inner;
} uniq_ctx;

/* Lexicographic order of the slices i and j along the unique axis. */
static int uniq_cmp(const void *ctx, int64_t i, int64_t j) {
    const uniq_ctx *u = ctx;
    for (int64_t o = 0; o < u->outer; o++)
        for (int64_t k = 0; k < u->inner; k++) {
            int r = key_cmp(u->kind, u->keys[(o * u->A + i) * u->inner + k],
                            u->keys[(o * u->A + j) * u->inner + k]);
            if (r) return r;
        }
    return 0;
}

static int k_unique(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    const ir_attr *axa = ir_attr_find(c->node, "axis");
    bool sorted = ir_attr_int(c->node, "sorted", 1) != 0;
    int64_t n = tensor_numel(x);
    uniq_ctx u = {NULL, key_kind(x->dtype), 1, n, 1};
    int a = -1;
    if (axa) {
        if (x->rank < 1) return ref_fail(c, "Unique with an axis needs rank >= 1");
        if (norm_axis(c, axa->i, x->rank, &a)) return -1;
        u.outer = prod(x->dims, 0, a);
        u.A = x->dims[a];
        u.inner = prod(x->dims, a + 1, x->rank);
    }
    int64_t A = u.A;
    size_t na = (size_t)(A ? A : 1);
    sort_key *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    int64_t *perm = malloc(na * 2 * sizeof *perm);
    int64_t *grp = malloc(na * sizeof *grp);   /* item -> unique id */
    int64_t *first = malloc(na * sizeof *first); /* unique id -> item */
    int64_t *cnt = calloc(na, sizeof *cnt);
    int64_t *remap = malloc(na * sizeof *remap);
    int rc = -1;
    if (!keys || !perm || !grp || !first || !cnt || !remap) {
        ref_fail(c, "out of memory");
        goto done;
    }
    u.keys = keys;
    for (int64_t i = 0; i < n; i++) keys[i] = key_at(x->dtype, u.kind, x->data, (size_t)i);
    for (int64_t i = 0; i < A; i++) perm[i] = i;
    merge_sort(perm, perm + A, A, uniq_cmp, &u);
    /* Stable sort: the first item of each run is its first occurrence. */
    int64_t nu = 0;
    for (int64_t s = 0; s < A; s++) {
        if (s == 0 || uniq_cmp(&u, perm[s - 1], perm[s]) != 0) first[nu++] = perm[s];
        grp[perm[s]] = nu - 1;
        cnt[nu - 1]++;
    }
    for (int64_t g = 0; g < nu; g++) remap[g] = g;
    if (!sorted) {
        /* order unique entries by first occurrence */
        int64_t *ord = perm, *tmp = perm + A, k = 0;
        for (int64_t i = 0; i < A; i++)
            if (first[grp[i]] == i) ord[k++] = grp[i];
        for (int64_t g = 0; g < nu; g++) remap[ord[g]] = g;
        for (int64_t g = 0; g < nu; g++) tmp[g] = first[ord[g]];
        memcpy(first, tmp, (size_t)nu * sizeof *first);
        for (int64_t g = 0; g < nu; g++) tmp[g] = cnt[ord[g]];
        memcpy(cnt, tmp, (size_t)nu * sizeof *cnt);
    }
    int64_t od[KILN_MAX_RANK];
    int orank = 1;
    od[0] = nu;
    if (axa) {
        orank = x->rank;
        memcpy(od, x->dims, (size_t)orank * sizeof *od);
        od[a] = nu;
    }
    if (ref_alloc_out(c, 0, x->dtype, orank, od)) goto done;
    size_t es = kiln_dtype_size(x->dtype);
    for (int64_t o = 0; o < u.outer; o++)
        for (int64_t g = 0; g < nu; g++)
            copy_elems(es, c->out[0]->data, (o * nu + g) * u.inner, x->data,
                       (o * A + first[g]) * u.inner, u.inner);
    if (c->n_out > 1) {
        if (ref_alloc_out(c, 1, KILN_DTYPE_INT64, 1, &nu)) goto done;
        memcpy(c->out[1]->data, first, (size_t)nu * sizeof *first);
    }
    if (c->n_out > 2) {
        if (ref_alloc_out(c, 2, KILN_DTYPE_INT64, 1, &A)) goto done;
        int64_t *inv = c->out[2]->data;
        for (int64_t i = 0; i < A; i++) inv[i] = remap[grp[i]];
    }
    if (c->n_out > 3) {
        if (ref_alloc_out(c, 3, KILN_DTYPE_INT64, 1, &nu)) goto done;
        memcpy(c->out[3]->data, cnt, (size_t)nu * sizeof *cnt);
    }
    rc = 0;
done:
    free(keys);
    free(perm);
    free(grp);
    free(first);
    free(cnt);
    free(remap);
    return rc;
}

const ref_kernel ref_kernels_index[] = {
    {OP_Slice, k_slice},
    {OP_Gather, k_gather},
    {OP_GatherElements, k_gather_elements},
    {OP_GatherND, k_gather_nd},
    {OP_ScatterElements, k_scatter_elements},
    {OP_Scatter, k_scatter_elements},
    {OP_ScatterND, k_scatter_nd},
    {OP_Expand, k_expand},
    {OP_Tile, k_tile},
    {OP_Pad, k_pad},
    {OP_Resize, ref_resize},
    {OP_Upsample, ref_resize},
    {OP_DepthToSpace, k_depth_to_space},
    {OP_SpaceToDepth, k_space_to_depth},
    {OP_CumSum, k_cumsum},
    {OP_OneHot, k_onehot},
    {OP_TopK, k_topk},
    {OP_NonZero, k_nonzero},
    {OP_Compress, k_compress},
    {OP_ReverseSequence, k_reverse_sequence},
    {OP_Unique, k_unique},
    {OP_CenterCropPad, k_center_crop_pad},
    {OP_GridSample, ref_grid_sample},
    {OP_AffineGrid, ref_affine_grid},
    {OP_NONE, NULL},
};
