/* ref_shape.c: reference kernels for the shape/data-movement family. Output
** shapes come from inference (shape.c); these kernels move bytes. Packed 4-bit
** types go through per-element accessors, everything else through memcpy or
** typed strided loops. */
#include "ref.h"

#include <math.h>

/* ------------------------------------------------------------ helpers */

/* Makes sure output i exists with the given shape (the executor normally
** allocated it from the inferred shape already). */
static int ensure_out(ref_ctx *c, int i, kiln_dtype dt, int rank,
                      const int64_t *dims) {
    kiln_tensor *o = c->out[i];
    if (o->data && o->dtype == dt && shape_equal(o->rank, o->dims, rank, dims))
        return 0;
    return ref_alloc_out(c, i, dt, rank, dims);
}

static bool is_packed(kiln_dtype t) {
    return t == KILN_DTYPE_INT4 || t == KILN_DTYPE_UINT4 ||
           t == KILN_DTYPE_FLOAT4E2M1 || t == KILN_DTYPE_INT2 || t == KILN_DTYPE_UINT2;
}

/* Element size in bytes; 0 for packed 4-bit types (handled per element). */
static int elem_size(ref_ctx *c, kiln_dtype t, size_t *es) {
    *es = 0;
    if (t == KILN_DTYPE_STRING || !dtype_is_valid((int)t))
        return ref_fail(c, "unsupported element type %s", kiln_dtype_name(t));
    *es = is_packed(t) ? 0 : kiln_dtype_size(t);
    return 0;
}

/* Copies element si of src to element di of dst for packed types. */
static void copy_packed(kiln_dtype t, const void *src, size_t si, void *dst,
                        size_t di) {
    if (t == KILN_DTYPE_FLOAT4E2M1) {
        const uint8_t b = ((const uint8_t *)src)[si / 2];
        uint8_t q = (si & 1) ? (uint8_t)(b >> 4) : (uint8_t)(b & 15);
        uint8_t *d = (uint8_t *)dst + di / 2;
        *d = (di & 1) ? (uint8_t)((*d & 15) | (q << 4))
                      : (uint8_t)((*d & 0xf0) | q);
        return;
    }
    dt_set_i64(t, dst, di, dt_get_i64(t, src, si));
}

/* Whole-tensor copy for the ops that only change the shape. */
static int copy_data(ref_ctx *c, const kiln_tensor *in, kiln_tensor *out) {
    if (out->nbytes != in->nbytes)
        return ref_fail(c, "internal: output holds %zu bytes, input %zu",
                        out->nbytes, in->nbytes);
    if (in->nbytes && out->data != in->data)
        memcpy(out->data, in->data, in->nbytes);
    return 0;
}

/* Generic permutation: dst[i0..] = src[perm-indexed], dims of dst are
** in_dims[perm[k]]. Axes that stay adjacent are merged first so the common
** cases (e.g. swapping two middle axes) copy contiguous runs. */
static void permute(kiln_dtype t, size_t es, const void *src, void *dst,
                    int rank, const int64_t *in_dims, const int *perm) {
    int64_t is[KILN_MAX_RANK];
    shape_strides(rank, in_dims, is);
    /* merged output axes: size and input stride */
    int64_t d[KILN_MAX_RANK], s[KILN_MAX_RANK];
    int n = 0;
    for (int k = 0; k < rank; k++) {
        int64_t dk = in_dims[perm[k]];
        if (dk == 1) continue;
        if (n > 0 && s[n - 1] == is[perm[k]] * dk) {
            d[n - 1] *= dk; /* previous axis directly encloses this one */
            s[n - 1] = is[perm[k]];
        } else {
            d[n] = dk;
            s[n] = is[perm[k]];
            n++;
        }
    }
    int64_t total = shape_numel(rank, in_dims);
    if (total <= 0) return;
    if (n == 0) {
        d[0] = 1;
        s[0] = 1;
        n = 1;
    }
    int64_t inner = d[n - 1], istr = s[n - 1];
    int64_t idx[KILN_MAX_RANK] = {0};
    int64_t off = 0, o = 0;
    const char *sb = src;
    char *db = dst;
    for (int64_t done = 0; done < total; done += inner) {
        if (es == 0) {
            for (int64_t j = 0; j < inner; j++)
                copy_packed(t, src, (size_t)(off + j * istr), dst, (size_t)(o + j));
        } else if (istr == 1) {
            memcpy(db + o * (int64_t)es, sb + off * (int64_t)es,
                   (size_t)inner * es);
        } else {
            switch (es) {
            case 1: {
                const uint8_t *p = (const uint8_t *)sb + off;
                uint8_t *q = (uint8_t *)db + o;
                for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
                break;
            }
            case 2: {
                const uint16_t *p = (const uint16_t *)(const void *)sb + off;
                uint16_t *q = (uint16_t *)(void *)db + o;
                for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
                break;
            }
            case 4: {
                const uint32_t *p = (const uint32_t *)(const void *)sb + off;
                uint32_t *q = (uint32_t *)(void *)db + o;
                for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
                break;
            }
            case 8: {
                const uint64_t *p = (const uint64_t *)(const void *)sb + off;
                uint64_t *q = (uint64_t *)(void *)db + o;
                for (int64_t j = 0; j < inner; j++) q[j] = p[j * istr];
                break;
            }
            default:
                for (int64_t j = 0; j < inner; j++)
                    memcpy(db + (o + j) * (int64_t)es,
                           sb + (off + j * istr) * (int64_t)es, es);
            }
        }
        o += inner;
        /* advance the outer multi-index */
        for (int k = n - 2; k >= 0; k--) {
            off += s[k];
            if (++idx[k] < d[k]) break;
            off -= s[k] * d[k];
            idx[k] = 0;
        }
    }
}

/* ------------------------------------------------------------ pure copies */

static int run_copy(ref_ctx *c) { return copy_data(c, c->in[0], c->out[0]); }

/* ------------------------------------------------------------ Transpose */

static int run_transpose(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank, perm[KILN_MAX_RANK];
    int np;
    const int64_t *p = ir_attr_ints(c->node, "perm", &np);
    if (p && np != r) return ref_fail(c, "perm length %d != rank %d", np, r);
    int64_t od[KILN_MAX_RANK];
    for (int k = 0; k < r; k++) {
        perm[k] = p ? (int)p[k] : r - 1 - k;
        if (perm[k] < 0 || perm[k] >= r) return ref_fail(c, "bad perm");
        od[k] = x->dims[perm[k]];
    }
    size_t es = 0;
    if (elem_size(c, x->dtype, &es) || ensure_out(c, 0, x->dtype, r, od))
        return -1;
    permute(x->dtype, es, x->data, c->out[0]->data, r, x->dims, perm);
    return 0;
}

/* ------------------------------------------------------------ Concat, Split */

/* Moves a [outer, len] block between tensors: element (o, j) of a piece of
** width w lives at o*w + j; the whole has width W and the piece starts at
** column col. to_whole picks the direction. */
static void move_block(kiln_dtype t, size_t es, void *whole, int64_t W,
                       void *piece, int64_t w, int64_t col, int64_t outer,
                       bool to_whole) {
    char *wb = whole, *pb = piece;
    for (int64_t o = 0; o < outer; o++) {
        if (es == 0) {
            for (int64_t j = 0; j < w; j++) {
                size_t wi = (size_t)(o * W + col + j), pi = (size_t)(o * w + j);
                if (to_whole) copy_packed(t, piece, pi, whole, wi);
                else copy_packed(t, whole, wi, piece, pi);
            }
        } else if (w > 0) {
            char *a = wb + (o * W + col) * (int64_t)es, *b = pb + o * w * (int64_t)es;
            if (to_whole) memcpy(a, b, (size_t)w * es);
            else memcpy(b, a, (size_t)w * es);
        }
    }
}

static int run_concat(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    int r = y->rank, a;
    int64_t axis = ir_attr_int(c->node, "axis", c->opset < 4 ? 1 : 0);
    if (r == 0) return ref_fail(c, "cannot concatenate scalars");
    if (axis < -r || axis >= r) return ref_fail(c, "axis out of range");
    a = (int)(axis < 0 ? axis + r : axis);
    size_t es = 0;
    if (elem_size(c, y->dtype, &es)) return -1;
    int64_t outer = shape_numel(a, y->dims);
    int64_t W = shape_numel(r - a, y->dims + a), col = 0;
    for (int i = 0; i < c->n_in; i++) {
        const kiln_tensor *x = c->in[i];
        if (!x || x->rank != r || x->dtype != y->dtype)
            return ref_fail(c, "input %d does not match the output", i);
        int64_t w = shape_numel(r - a, x->dims + a);
        if (col + w > W) return ref_fail(c, "internal: concat overflow");
        move_block(y->dtype, es, y->data, W, x->data, w, col, outer, true);
        col += w;
    }
    return 0;
}

static int run_split(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    if (axis < -r || axis >= r) return ref_fail(c, "axis out of range");
    int a = (int)(axis < 0 ? axis + r : axis);
    size_t es = 0;
    if (elem_size(c, x->dtype, &es)) return -1;
    int64_t outer = shape_numel(a, x->dims);
    int64_t W = shape_numel(r - a, x->dims + a), col = 0;
    for (int i = 0; i < c->n_out; i++) {
        kiln_tensor *y = c->out[i];
        if (y->rank != r || y->dtype != x->dtype || !y->data)
            return ref_fail(c, "internal: output %d is not allocated", i);
        int64_t w = shape_numel(r - a, y->dims + a);
        if (col + w > W) return ref_fail(c, "split sizes exceed the input");
        move_block(x->dtype, es, (void *)x->data, W, y->data, w, col, outer,
                   false);
        col += w;
    }
    return 0;
}

/* ------------------------------------------------------------ Shape, Size */

static int run_shape(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank;
    int64_t s = ir_attr_int(c->node, "start", 0);
    int64_t e = ir_attr_int(c->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > s ? e - s : 0;
    if (ensure_out(c, 0, KILN_DTYPE_INT64, 1, &n)) return -1;
    if (n) memcpy(c->out[0]->data, x->dims + s, (size_t)n * sizeof(int64_t));
    return 0;
}

static int run_size(ref_ctx *c) {
    if (ensure_out(c, 0, KILN_DTYPE_INT64, 0, NULL)) return -1;
    *(int64_t *)c->out[0]->data = tensor_numel(c->in[0]);
    return 0;
}

/* ------------------------------------------------------------ constants */

/* Fills every element of y with element 0 of v (same dtype). */
static int fill_with(ref_ctx *c, kiln_tensor *y, const kiln_tensor *v) {
    size_t es = 0;
    if (elem_size(c, y->dtype, &es)) return -1;
    int64_t n = tensor_numel(y);
    if (es == 0) {
        for (int64_t k = 0; k < n; k++)
            copy_packed(y->dtype, v->data, 0, y->data, (size_t)k);
        return 0;
    }
    char *p = y->data;
    for (int64_t k = 0; k < n; k++) memcpy(p + k * (int64_t)es, v->data, es);
    return 0;
}

static int run_constant_of_shape(ref_ctx *c) {
    const kiln_tensor *v = ir_attr_tensor(c->node, "value");
    kiln_tensor *y = c->out[0];
    if (!y->data) return ref_fail(c, "internal: output not allocated");
    if (!v) { /* default: float32 zeros, already zero-filled */
        if (y->nbytes) memset(y->data, 0, y->nbytes);
        return 0;
    }
    if (v->dtype != y->dtype || tensor_numel(v) != 1)
        return ref_fail(c, "'value' must hold one %s element",
                        kiln_dtype_name(y->dtype));
    return fill_with(c, y, v);
}

static int run_constant(ref_ctx *c) {
    const ir_node *n = c->node;
    const ir_attr *a;
    const kiln_tensor *t = ir_attr_tensor(n, "value");
    if (t) {
        if (t->dtype == KILN_DTYPE_STRING)
            return ref_fail(c, "string constants are not supported");
        if (ensure_out(c, 0, t->dtype, t->rank, t->dims)) return -1;
        return copy_data(c, t, c->out[0]);
    }
    if ((a = ir_attr_find(n, "value_float"))) {
        if (ensure_out(c, 0, KILN_DTYPE_FLOAT32, 0, NULL)) return -1;
        *(float *)c->out[0]->data = a->f;
        return 0;
    }
    if ((a = ir_attr_find(n, "value_int"))) {
        if (ensure_out(c, 0, KILN_DTYPE_INT64, 0, NULL)) return -1;
        *(int64_t *)c->out[0]->data = a->i;
        return 0;
    }
    if ((a = ir_attr_find(n, "value_floats"))) {
        int64_t d = a->n;
        if (a->type != IR_ATTR_FLOATS || (a->n && !a->floats))
            return ref_fail(c, "attribute value_floats is not a list of floats");
        if (ensure_out(c, 0, KILN_DTYPE_FLOAT32, 1, &d)) return -1;
        if (a->n) memcpy(c->out[0]->data, a->floats, (size_t)a->n * sizeof(float));
        return 0;
    }
    if ((a = ir_attr_find(n, "value_ints"))) {
        int64_t d = a->n;
        if (a->type != IR_ATTR_INTS || (a->n && !a->ints))
            return ref_fail(c, "attribute value_ints is not a list of ints");
        if (ensure_out(c, 0, KILN_DTYPE_INT64, 1, &d)) return -1;
        if (a->n) memcpy(c->out[0]->data, a->ints, (size_t)a->n * sizeof(int64_t));
        return 0;
    }
    if (ir_attr_find(n, "sparse_value"))
        return ref_fail(c, "sparse constants are not supported");
    return ref_fail(c, "string constants are not supported");
}

/* ------------------------------------------------------------ Range */

static int run_range(ref_ctx *c) {
    const kiln_tensor *s = c->in[0], *d = c->in[2];
    kiln_tensor *y = c->out[0];
    if (!y->data || y->rank != 1) return ref_fail(c, "internal: bad output");
    int64_t n = y->dims[0];
    kiln_dtype t = y->dtype;
    if (dtype_is_int(t)) {
        uint64_t a = (uint64_t)dt_get_i64(t, s->data, 0),
                 st = (uint64_t)dt_get_i64(t, d->data, 0);
        for (int64_t k = 0; k < n; k++)
            dt_set_i64(t, y->data, (size_t)k, (int64_t)(a + (uint64_t)k * st));
        return 0;
    }
    double a = dt_get_f64(t, s->data, 0), st = dt_get_f64(t, d->data, 0);
    if (t == KILN_DTYPE_FLOAT32) {
        float *p = y->data;
        for (int64_t k = 0; k < n; k++) p[k] = (float)(a + (double)k * st);
        return 0;
    }
    /* 16-bit floats are computed in the stash type (float32 by default) */
    bool f32 = (t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16) &&
               ir_attr_int(c->node, "stash_type", 1) == 1;
    for (int64_t k = 0; k < n; k++) {
        double v = a + (double)k * st;
        dt_set_f64(t, y->data, (size_t)k, f32 ? (double)(float)v : v);
    }
    return 0;
}

/* ------------------------------------------------------------ Dropout */

static int run_dropout(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    bool training = false;
    double ratio = 0.5;
    if (ref_has(c, 1)) {
        const kiln_tensor *r = c->in[1];
        if (tensor_numel(r) != 1) return ref_fail(c, "ratio must be a scalar");
        ratio = dt_get_f64(r->dtype, r->data, 0);
    } else {
        ratio = ir_attr_float(c->node, "ratio", 0.5f);
    }
    if (ref_has(c, 2)) {
        const kiln_tensor *tm = c->in[2];
        if (tensor_numel(tm) != 1) return ref_fail(c, "training_mode must be a scalar");
        training = dt_get_i64(tm->dtype, tm->data, 0) != 0;
    }
    /* Opsets < 7 default to is_test=0 (training); as an inference runtime we
    ** treat those like inference, which is what exporters intend. */
    if (training && ratio > 0)
        return ref_fail(c, "training-mode Dropout (ratio %g) is random and not "
                        "supported", ratio);
    if (copy_data(c, x, c->out[0])) return -1;
    if (c->n_out > 1) {
        kiln_tensor *m = c->out[1];
        int64_t n = tensor_numel(m);
        if (!m->data) return ref_fail(c, "internal: mask not allocated");
        if (m->dtype == KILN_DTYPE_BOOL) {
            if (n > 0) memset(m->data, 1, (size_t)n);
        } else {
            for (int64_t k = 0; k < n; k++) dt_set_f64(m->dtype, m->data, (size_t)k, 1.0);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ EyeLike, Trilu */

static int run_eyelike(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    if (!y->data || y->rank != 2) return ref_fail(c, "internal: bad output");
    int64_t rows = y->dims[0], cols = y->dims[1];
    int64_t k = ir_attr_int(c->node, "k", 0);
    if (y->nbytes) memset(y->data, 0, y->nbytes);
    for (int64_t i = 0; i < rows; i++) {
        if (k > cols || k < -rows) break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) dt_set_f64(y->dtype, y->data, (size_t)(i * cols + j), 1.0);
    }
    return 0;
}

static int run_trilu(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int r = x->rank;
    if (r < 2) return ref_fail(c, "input must have rank >= 2");
    bool upper = ir_attr_int(c->node, "upper", 1) != 0;
    int64_t k = 0;
    if (ref_has(c, 1)) {
        const kiln_tensor *kt = c->in[1];
        if (tensor_numel(kt) != 1 || !dtype_is_int(kt->dtype))
            return ref_fail(c, "k must be an integer scalar");
        k = dt_get_i64(kt->dtype, kt->data, 0);
    }
    size_t es = 0;
    if (elem_size(c, x->dtype, &es) || ensure_out(c, 0, x->dtype, r, x->dims))
        return -1;
    int64_t rows = x->dims[r - 2], cols = x->dims[r - 1];
    int64_t batch = shape_numel(r - 2, x->dims);
    /* clamp k so that i + k cannot overflow */
    int64_t lim = rows + cols + 1;
    if (k > lim) k = lim;
    if (k < -lim) k = -lim;
    if (y->nbytes) memset(y->data, 0, y->nbytes);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < rows; i++) {
            /* kept columns [j0, j1) of row i */
            int64_t j0 = upper ? KILN_MAX(i + k, 0) : 0;
            int64_t j1 = upper ? cols : KILN_MIN(i + k + 1, cols);
            if (j1 <= j0) continue;
            int64_t base = (b * rows + i) * cols;
            if (es == 0) {
                for (int64_t j = j0; j < j1; j++)
                    copy_packed(x->dtype, x->data, (size_t)(base + j), y->data,
                                (size_t)(base + j));
            } else {
                memcpy((char *)y->data + (base + j0) * (int64_t)es,
                       (const char *)x->data + (base + j0) * (int64_t)es,
                       (size_t)(j1 - j0) * es);
            }
        }
    return 0;
}

const ref_kernel ref_kernels_shape[] = {
    {OP_Reshape, run_copy},
    {OP_Flatten, run_copy},
    {OP_Squeeze, run_copy},
    {OP_Unsqueeze, run_copy},
    {OP_Identity, run_copy},
    {OP_Transpose, run_transpose},
    {OP_Concat, run_concat},
    {OP_Split, run_split},
    {OP_Shape, run_shape},
    {OP_Size, run_size},
    {OP_ConstantOfShape, run_constant_of_shape},
    {OP_Constant, run_constant},
    {OP_Range, run_range},
    {OP_Dropout, run_dropout},
    {OP_EyeLike, run_eyelike},
    {OP_Trilu, run_trilu},
    {OP_NONE, NULL},
};
