/* index.c: schemas and shape inference for the index family (slicing,
** gather/scatter, padding, tiling, resizing, sorting, data-dependent ops),
** plus the parameter resolution shared with the reference kernels. */
#include "index_shared.h"

#include <math.h>
#include <stdio.h>

#define MAXV 64 /* most values read from a small int input */

/* Slice bound used to recognise "to the end" on a symbolic dim. */
#define SLICE_BIG ((int64_t)1 << 31)

int index_err(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, INDEX_ERR_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------ helpers */

static bool is_idx_dtype(kiln_dtype t) {
    return t == KILN_DTYPE_INT32 || t == KILN_DTYPE_INT64 ||
           t == KILN_DTYPE_UNDEFINED;
}

static int require_idx(infer_ctx *c, int i, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (t && !is_idx_dtype(t->dtype))
        return ic_fail(c, "%s (input %d) must be int32 or int64, got %s", what,
                       i, kiln_dtype_name(t->dtype));
    return 0;
}

static int require_i64(infer_ctx *c, int i, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (t && t->dtype != KILN_DTYPE_INT64 && t->dtype != KILN_DTYPE_UNDEFINED)
        return ic_fail(c, "%s (input %d) must be int64, got %s", what, i,
                       kiln_dtype_name(t->dtype));
    return 0;
}

static int require_numeric(infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (t && t->dtype != KILN_DTYPE_UNDEFINED && !dtype_is_numeric(t->dtype))
        return ic_fail(c, "input %d must be numeric, got %s", i,
                       kiln_dtype_name(t->dtype));
    return 0;
}

/* Contents of a small int input. conc[k] tells a real number from a
** symbolic dim (only constants may hold real negatives). -1: unknown. At run
** time an unreadable input is an error, reported by the caller. */
static int get_ints(const infer_ctx *c, int i, int64_t *v, bool *conc,
                    int max) {
    int n = ic_int_values(c, i, v, max);
    if (n < 0) return -1;
    bool k_const = ic_const(c, i) != NULL;
    for (int k = 0; k < n; k++) conc[k] = k_const || v[k] >= 0;
    return n;
}

static bool all_conc(const bool *conc, int n) {
    for (int k = 0; k < n; k++)
        if (!conc[k]) return false;
    return true;
}

/* Element count of a rank-1 input from its type, -1 when unknown. */
static int64_t vec_len(const infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (!t) return -1;
    if (t->rank == 0) return 1;
    if (t->rank == 1 && t->dims[0] >= 0) return t->dims[0];
    return -1;
}

static int const_f64s(const infer_ctx *c, int i, double *v, int max) {
    const kiln_tensor *t = ic_const(c, i);
    if (!t || !dtype_is_numeric(t->dtype)) return -1;
    int64_t n = tensor_numel(t);
    if (n < 0 || n > max) return -1;
    for (int64_t k = 0; k < n; k++)
        v[k] = dt_get_f64(t->dtype, t->data, (size_t)k);
    return (int)n;
}

static bool dims_conc(int rank, const int64_t *d) {
    for (int i = 0; i < rank; i++)
        if (d[i] < 0) return false;
    return true;
}

static void set_unknown_rank(infer_ctx *c, int out, kiln_dtype dt) {
    ic_set_out(c, out, dt, -1, NULL);
}

/* -------------------------------------------------------------- Slice */

/* One axis of a concrete Slice; d >= 0. */
static void slice_axis(int64_t d, int64_t s, int64_t e, int64_t st,
                       int64_t *start, int64_t *len) {
    if (d == 0) {
        *start = 0;
        *len = 0;
        return;
    }
    if (s < 0) s += d; /* s < 0, d >= 0: no overflow */
    if (e < 0) e += d;
    if (st > 0) {
        s = s < 0 ? 0 : s > d ? d : s;
        e = e < 0 ? 0 : e > d ? d : e;
        *len = e > s ? (e - s - 1) / st + 1 : 0;
    } else {
        s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
        e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
        uint64_t ast = (uint64_t)(-(st + 1)) + 1; /* |st| without overflow */
        *len = s > e ? (int64_t)((uint64_t)(s - e - 1) / ast) + 1 : 0;
    }
    *start = s;
}

int index_slice_resolve(int rank, const int64_t *dims, int n,
                        const int64_t *starts, const int64_t *ends,
                        const int64_t *axes, const int64_t *steps,
                        int64_t *start, int64_t *step, int64_t *len,
                        char *err) {
    bool seen[KILN_MAX_RANK] = {0};
    for (int a = 0; a < rank; a++) {
        start[a] = 0;
        step[a] = 1;
        len[a] = dims[a];
    }
    if (n > rank)
        return index_err(err, "Slice has %d starts for a rank-%d input", n,
                         rank);
    for (int k = 0; k < n; k++) {
        int64_t ax = axes ? axes[k] : k;
        if (ax < -(int64_t)rank || ax >= rank)
            return index_err(err, "Slice axis %lld is out of range for rank %d",
                             (long long)ax, rank);
        int a = (int)(ax < 0 ? ax + rank : ax);
        if (seen[a]) return index_err(err, "Slice axis %d is repeated", a);
        seen[a] = true;
        int64_t st = steps ? steps[k] : 1;
        if (st == 0) return index_err(err, "Slice step for axis %d is 0", a);
        step[a] = st;
        slice_axis(dims[a], starts[k], ends[k], st, &start[a], &len[a]);
    }
    return 0;
}

static int infer_slice(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "Slice needs a data input");
    int64_t st[MAXV], en[MAXV], ax[MAXV], sp[MAXV];
    bool stc[MAXV], enc[MAXV], axc[MAXV], spc[MAXV];
    int ns, ne, na = -2, np = -2; /* -2 absent, -1 unknown */
    int64_t n_hint = -1;          /* param count known from shapes */
    if (c->opset < 10) {
        int cs, ce, ca;
        const int64_t *as = ir_attr_ints(c->node, "starts", &cs);
        const int64_t *ae = ir_attr_ints(c->node, "ends", &ce);
        const int64_t *aa = ir_attr_ints(c->node, "axes", &ca);
        if (!as || !ae)
            return ic_fail(c, "Slice-%d needs 'starts' and 'ends' attributes",
                           c->opset);
        if (cs > MAXV || ce > MAXV || ca > MAXV)
            return ic_fail(c, "Slice has too many starts/ends/axes");
        ns = cs;
        ne = ce;
        memcpy(st, as, (size_t)cs * sizeof *st);
        memcpy(en, ae, (size_t)ce * sizeof *en);
        for (int k = 0; k < cs; k++) stc[k] = true;
        for (int k = 0; k < ce; k++) enc[k] = true;
        if (aa) {
            na = ca;
            memcpy(ax, aa, (size_t)ca * sizeof *ax);
            for (int k = 0; k < ca; k++) axc[k] = true;
        }
    } else {
        if (!ic_has(c, 1) || !ic_has(c, 2))
            return ic_fail(c, "Slice needs 'starts' and 'ends' inputs");
        for (int i = 1; i <= 4; i++)
            if (require_idx(c, i, i == 1 ? "starts" : i == 2 ? "ends"
                                  : i == 3 ? "axes" : "steps"))
                return -1;
        ns = get_ints(c, 1, st, stc, MAXV);
        ne = get_ints(c, 2, en, enc, MAXV);
        if (ic_has(c, 3)) na = get_ints(c, 3, ax, axc, MAXV);
        if (ic_has(c, 4)) np = get_ints(c, 4, sp, spc, MAXV);
        if (c->runtime && (ns < 0 || ne < 0 || na == -1 || np == -1))
            return ic_fail(c, "Slice starts/ends/axes/steps must be int "
                              "vectors of at most %d values", MAXV);
        n_hint = vec_len(c, 1);
    }
    if (ns >= 0 && ne >= 0 && ns != ne)
        return ic_fail(c, "Slice starts has %d values but ends has %d", ns, ne);
    if (ns >= 0 && na >= 0 && ns != na)
        return ic_fail(c, "Slice starts has %d values but axes has %d", ns, na);
    if (ns >= 0 && np >= 0 && ns != np)
        return ic_fail(c, "Slice starts has %d values but steps has %d", ns, np);
    if (na >= 0 && !all_conc(axc, na)) na = -1;
    int n = ns >= 0 ? ns : ne >= 0 ? ne : na >= 0 ? na : np >= 0 ? np
                                                    : (int)n_hint;
    for (int k = 0; np >= 0 && k < np; k++)
        if (spc[k] && sp[k] == 0)
            return ic_fail(c, "Slice step %d is 0", k);

    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank;
    if (n > r)
        return ic_fail(c, "Slice has %d starts for a rank-%d input", n, r);
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    if (na == -1 || n < 0) {
        /* Which axes are sliced is unknown: every dim may change. */
        for (int a = 0; a < r; a++) od[a] = ic_new_sym(c);
        ic_set_out(c, 0, x->dtype, r, od);
        return 0;
    }
    bool seen[KILN_MAX_RANK] = {0};
    int64_t ostart[KILN_MAX_RANK] = {0}, ostep[KILN_MAX_RANK];
    bool exact = true;
    for (int a = 0; a < r; a++) ostep[a] = 1;
    for (int k = 0; k < n; k++) {
        int64_t axv = na >= 0 ? ax[k] : k;
        int a;
        if (ic_axis(c, axv, r, &a)) return -1;
        if (seen[a]) return ic_fail(c, "Slice axis %d is repeated", a);
        seen[a] = true;
        bool known = ns >= 0 && ne >= 0 && stc[k] && enc[k] &&
                     (np < 0 || spc[k]);
        if (!known) {
            od[a] = ic_new_sym(c);
            exact = false;
            continue;
        }
        int64_t s = st[k], e = en[k], stp = np >= 0 ? sp[k] : 1;
        int64_t d = x->dims[a];
        if (d >= 0) {
            slice_axis(d, s, e, stp, &ostart[a], &od[a]);
            ostep[a] = stp;
        } else if ((stp == 1 && (s == 0 || s <= -SLICE_BIG) &&
                    e >= SLICE_BIG) ||
                   (stp == -1 && (s == -1 || s >= SLICE_BIG) &&
                    e <= -SLICE_BIG)) {
            od[a] = d; /* whole axis, possibly reversed */
            exact = false;
        } else {
            od[a] = ic_new_sym(c);
            exact = false;
        }
    }
    ic_set_out(c, 0, x->dtype, r, od);

    /* Shape arithmetic: slicing a known int vector gives a known vector. */
    if (exact && r == 1 && od[0] >= 0 && x->dims[0] >= 0 &&
        (x->dtype == KILN_DTYPE_INT64 || x->dtype == KILN_DTYPE_INT32)) {
        int64_t v[MAXV], ov[MAXV];
        bool vc[MAXV];
        int m = get_ints(c, 0, v, vc, MAXV);
        if (m == x->dims[0] && od[0] <= MAXV) {
            bool from_const = ic_const(c, 0) != NULL;
            for (int64_t i = 0; i < od[0]; i++) {
                int64_t src = ostart[0] + i * ostep[0];
                if (src < 0 || src >= m) return 0;
                ov[i] = v[src];
                if (from_const && ov[i] < 0) return 0;
            }
            ic_set_int_values(c, 0, (int)od[0], ov);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- Gather */

static int infer_gather(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1);
    if (!x || !ind) return ic_fail(c, "Gather needs data and indices");
    if (require_idx(c, 1, "indices")) return -1;
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    if (x->rank < 0 || ind->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    if (x->rank == 0) return ic_fail(c, "Gather data must have rank >= 1");
    int a;
    if (ic_axis(c, axis, x->rank, &a)) return -1;
    int orank = x->rank - 1 + ind->rank;
    if (orank > KILN_MAX_RANK)
        return ic_fail(c, "Gather output rank %d exceeds %d", orank,
                       KILN_MAX_RANK);
    int64_t od[KILN_MAX_RANK];
    int k = 0;
    for (int i = 0; i < a; i++) od[k++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++) od[k++] = ind->dims[i];
    for (int i = a + 1; i < x->rank; i++) od[k++] = x->dims[i];
    ic_set_out(c, 0, x->dtype, orank, od);

    /* Shape arithmetic: picking entries of a known int vector with
    ** constant indices (Shape -> Gather). */
    const kiln_tensor *it = ic_const(c, 1);
    if (x->rank == 1 && x->dims[0] >= 0 && ind->rank <= 1 && it &&
        (x->dtype == KILN_DTYPE_INT64 || x->dtype == KILN_DTYPE_INT32)) {
        int64_t v[MAXV], ov[MAXV];
        bool vc[MAXV];
        int m = get_ints(c, 0, v, vc, MAXV);
        int64_t ni = tensor_numel(it);
        if (m != x->dims[0] || ni < 0 || ni > MAXV) return 0;
        bool from_const = ic_const(c, 0) != NULL;
        for (int64_t i = 0; i < ni; i++) {
            int64_t j = dt_get_i64(it->dtype, it->data, (size_t)i);
            if (j < -(int64_t)m || j >= m)
                return ic_fail(c, "Gather index %lld is out of range for a "
                                  "dim of %d", (long long)j, m);
            ov[i] = v[j < 0 ? j + m : j];
            if (from_const && ov[i] < 0) return 0;
        }
        ic_set_int_values(c, 0, (int)ni, ov);
    }
    return 0;
}

/* Gather/ScatterElements: indices may not exceed data off the axis. */
static int check_elem_dims(infer_ctx *c, const ir_type *x, const ir_type *ind,
                           int a) {
    for (int d = 0; d < x->rank; d++)
        if (d != a && x->dims[d] >= 0 && ind->dims[d] >= 0 &&
            ind->dims[d] > x->dims[d])
            return ic_fail(c, "indices dim %d (%lld) exceeds data dim %lld", d,
                           (long long)ind->dims[d], (long long)x->dims[d]);
    return 0;
}

static int infer_gather_elements(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1);
    if (!x || !ind) return ic_fail(c, "GatherElements needs data and indices");
    if (require_idx(c, 1, "indices")) return -1;
    if (x->rank >= 0 && ind->rank >= 0) {
        if (x->rank != ind->rank)
            return ic_fail(c, "GatherElements data rank %d != indices rank %d",
                           x->rank, ind->rank);
        if (x->rank == 0)
            return ic_fail(c, "GatherElements needs rank >= 1");
        int a;
        if (ic_axis(c, ir_attr_int(c->node, "axis", 0), x->rank, &a) ||
            check_elem_dims(c, x, ind, a))
            return -1;
    }
    ic_set_out(c, 0, x->dtype, ind->rank, ind->rank > 0 ? ind->dims : NULL);
    return 0;
}

static int infer_gather_nd(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1);
    if (!x || !ind) return ic_fail(c, "GatherND needs data and indices");
    if (require_i64(c, 1, "indices")) return -1;
    int64_t b = ir_attr_int(c->node, "batch_dims", 0);
    if (x->rank < 0 || ind->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank, q = ind->rank;
    if (r < 1 || q < 1)
        return ic_fail(c, "GatherND needs data and indices of rank >= 1");
    if (b < 0 || b >= KILN_MIN(r, q))
        return ic_fail(c, "GatherND batch_dims %lld must be in [0, %d)",
                       (long long)b, KILN_MIN(r, q));
    int64_t m = ind->dims[q - 1];
    if (m < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    if (m < 1 || m > r - b)
        return ic_fail(c, "GatherND indices last dim %lld must be in [1, %lld]",
                       (long long)m, (long long)(r - b));
    for (int i = 0; i < b; i++)
        if (x->dims[i] >= 0 && ind->dims[i] >= 0 && x->dims[i] != ind->dims[i])
            return ic_fail(c, "GatherND batch dim %d differs: %lld vs %lld", i,
                           (long long)x->dims[i], (long long)ind->dims[i]);
    int64_t od[KILN_MAX_RANK];
    int k = 0;
    for (int i = 0; i < q - 1; i++) od[k++] = ind->dims[i];
    for (int i = (int)(b + m); i < r; i++) {
        if (k >= KILN_MAX_RANK) return ic_fail(c, "GatherND output rank too big");
        od[k++] = x->dims[i];
    }
    ic_set_out(c, 0, x->dtype, k, od);
    return 0;
}

/* ------------------------------------------------------------ Scatter */

static int check_reduction(infer_ctx *c) {
    const char *red = ir_attr_str(c->node, "reduction", "none");
    if (strcmp(red, "none") && strcmp(red, "add") && strcmp(red, "mul") &&
        strcmp(red, "max") && strcmp(red, "min"))
        return ic_fail(c, "unknown reduction '%s'", red);
    return 0;
}

static int infer_scatter_elements(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1), *u = ic_in(c, 2);
    if (!x || !ind || !u)
        return ic_fail(c, "scatter needs data, indices and updates");
    if (require_idx(c, 1, "indices") || ic_require_same_dtype(c, 0, 2) ||
        check_reduction(c))
        return -1;
    if (ind->rank >= 0 && u->rank >= 0) {
        if (ind->rank != u->rank)
            return ic_fail(c, "indices rank %d != updates rank %d", ind->rank,
                           u->rank);
        for (int i = 0; i < ind->rank; i++)
            if (ind->dims[i] >= 0 && u->dims[i] >= 0 &&
                ind->dims[i] != u->dims[i])
                return ic_fail(c, "indices and updates differ in dim %d", i);
    }
    if (x->rank >= 0 && ind->rank >= 0) {
        if (x->rank != ind->rank)
            return ic_fail(c, "data rank %d != indices rank %d", x->rank,
                           ind->rank);
        if (x->rank == 0) return ic_fail(c, "scatter needs rank >= 1");
        int a;
        if (ic_axis(c, ir_attr_int(c->node, "axis", 0), x->rank, &a) ||
            check_elem_dims(c, x, ind, a))
            return -1;
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

static int infer_scatter_nd(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *ind = ic_in(c, 1), *u = ic_in(c, 2);
    if (!x || !ind || !u)
        return ic_fail(c, "ScatterND needs data, indices and updates");
    if (require_i64(c, 1, "indices") || ic_require_same_dtype(c, 0, 2) ||
        check_reduction(c))
        return -1;
    if (x->rank >= 0 && ind->rank >= 0 && u->rank >= 0) {
        int r = x->rank, q = ind->rank;
        if (r < 1 || q < 1)
            return ic_fail(c, "ScatterND needs data and indices of rank >= 1");
        int64_t k = ind->dims[q - 1];
        if (k >= 0) {
            if (k > r)
                return ic_fail(c, "ScatterND indices last dim %lld > data "
                                  "rank %d", (long long)k, r);
            if (u->rank != q - 1 + r - k)
                return ic_fail(c, "ScatterND updates rank %d, expected %lld",
                               u->rank, (long long)(q - 1 + r - k));
            for (int i = 0; i < u->rank; i++) {
                int64_t want = i < q - 1 ? ind->dims[i]
                                         : x->dims[k + i - (q - 1)];
                if (want >= 0 && u->dims[i] >= 0 && want != u->dims[i])
                    return ic_fail(c, "ScatterND updates dim %d is %lld, "
                                      "expected %lld", i,
                                   (long long)u->dims[i], (long long)want);
            }
        }
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------- Expand, Tile */

static int infer_expand(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1)) return ic_fail(c, "Expand needs input and shape");
    if (require_i64(c, 1, "shape")) return -1;
    int64_t v[MAXV];
    bool vc[MAXV];
    int n = get_ints(c, 1, v, vc, KILN_MAX_RANK);
    if (c->runtime && n < 0)
        return ic_fail(c, "Expand shape must be a vector of at most %d values",
                       KILN_MAX_RANK);
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    if (n >= 0) {
        ir_type s = {0}, o = {0};
        s.rank = n;
        for (int k = 0; k < n; k++) {
            if (vc[k] && v[k] < 0)
                return ic_fail(c, "Expand shape value %lld is negative",
                               (long long)v[k]);
            s.dims[k] = v[k];
        }
        if (ic_broadcast(c, x, &s, &o)) return -1;
        if (o.rank > KILN_MAX_RANK) return ic_fail(c, "Expand rank too big");
        ic_set_out(c, 0, x->dtype, o.rank, o.dims);
        return 0;
    }
    int64_t len = vec_len(c, 1);
    if (len < 0 || len > KILN_MAX_RANK) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = KILN_MAX(x->rank, (int)len);
    int64_t od[KILN_MAX_RANK];
    for (int i = 0; i < r; i++) {
        int j = i - (r - x->rank);
        int64_t d = j >= 0 ? x->dims[j] : 1;
        od[i] = d >= 0 && d != 1 ? d : ic_new_sym(c);
    }
    ic_set_out(c, 0, x->dtype, r, od);
    return 0;
}

static int infer_tile(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1)) return ic_fail(c, "Tile needs input and repeats");
    if (c->n_in > 2 || c->opset < 6)
        return ic_fail(c, "Tile-1 (tiles/axis inputs) is not supported");
    if (require_i64(c, 1, "repeats")) return -1;
    int64_t v[MAXV];
    bool vc[MAXV];
    int n = get_ints(c, 1, v, vc, KILN_MAX_RANK);
    if (c->runtime && n < 0)
        return ic_fail(c, "Tile repeats must be a vector of at most %d values",
                       KILN_MAX_RANK);
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int64_t len = n >= 0 ? n : vec_len(c, 1);
    if (len >= 0 && len != x->rank)
        return ic_fail(c, "Tile repeats has %lld values for rank %d",
                       (long long)len, x->rank);
    int64_t od[KILN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t d = x->dims[i];
        if (n < 0 || !vc[i]) {
            od[i] = d == 0 ? 0 : ic_new_sym(c);
            continue;
        }
        if (v[i] < 0)
            return ic_fail(c, "Tile repeat %lld is negative", (long long)v[i]);
        if (v[i] == 1 || d == 0) od[i] = d;
        else if (v[i] == 0) od[i] = 0;
        else if (d < 0) od[i] = d == 1 ? v[i] : ic_new_sym(c);
        else if (ic_dim_mul(c, d, v[i], &od[i], "Tile output dim"))
            return -1;
    }
    ic_set_out(c, 0, x->dtype, x->rank, od);
    return 0;
}

/* ---------------------------------------------------------------- Pad */

int index_pad_resolve(int rank, const int64_t *pads, int npads,
                      const int64_t *axes, int naxes, int64_t *pb,
                      int64_t *pe, char *err) {
    bool seen[KILN_MAX_RANK] = {0};
    int n = axes ? naxes : rank;
    for (int a = 0; a < rank; a++) pb[a] = pe[a] = 0;
    if (npads != 2 * n)
        return index_err(err, "Pad has %d pads for %d axes (need %d)", npads, n,
                         2 * n);
    for (int k = 0; k < n; k++) {
        int64_t ax = axes ? axes[k] : k;
        if (ax < -(int64_t)rank || ax >= rank)
            return index_err(err, "Pad axis %lld is out of range for rank %d",
                             (long long)ax, rank);
        int a = (int)(ax < 0 ? ax + rank : ax);
        if (seen[a]) return index_err(err, "Pad axis %d is repeated", a);
        seen[a] = true;
        pb[a] = pads[k];
        pe[a] = pads[n + k];
    }
    return 0;
}

static int infer_pad(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "Pad needs a data input");
    const char *mode = ir_attr_str(c->node, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") &&
        strcmp(mode, "edge") && strcmp(mode, "wrap"))
        return ic_fail(c, "Pad mode '%s' is unknown", mode);
    int64_t p[MAXV], ax[MAXV];
    bool pc[MAXV], axc[MAXV];
    int np, na = -2;
    if (c->opset < 11) {
        int cnt;
        const int64_t *ap = ir_attr_ints(c->node, "pads", &cnt);
        if (!ap) ap = ir_attr_ints(c->node, "paddings", &cnt);
        if (!ap) return ic_fail(c, "Pad-%d needs a 'pads' attribute", c->opset);
        if (cnt > MAXV) return ic_fail(c, "Pad has too many pads");
        np = cnt;
        memcpy(p, ap, (size_t)cnt * sizeof *p);
        for (int k = 0; k < cnt; k++) pc[k] = true;
    } else {
        if (!ic_has(c, 1)) return ic_fail(c, "Pad needs a 'pads' input");
        if (require_i64(c, 1, "pads") || require_idx(c, 3, "axes")) return -1;
        if (ic_has(c, 2)) {
            if (ic_require_same_dtype(c, 0, 2)) return -1;
            const ir_type *cv = ic_in(c, 2);
            if (cv->rank > 1 || (cv->rank == 1 && cv->dims[0] > 1))
                return ic_fail(c, "Pad constant_value must be a scalar");
        }
        np = get_ints(c, 1, p, pc, MAXV);
        if (ic_has(c, 3)) na = get_ints(c, 3, ax, axc, MAXV);
        if (c->runtime && (np < 0 || na == -1))
            return ic_fail(c, "Pad pads/axes must be int vectors of at most "
                              "%d values", MAXV);
    }
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank;
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    if (na == -1 || np < 0 || (na >= 0 && !all_conc(axc, na))) {
        /* Unknown pads: only the padded axes change, if those are known. */
        if (na >= 0 && all_conc(axc, na)) {
            for (int k = 0; k < na; k++) {
                int a;
                if (ic_axis(c, ax[k], r, &a)) return -1;
                od[a] = ic_new_sym(c);
            }
        } else {
            for (int a = 0; a < r; a++) od[a] = ic_new_sym(c);
        }
        ic_set_out(c, 0, x->dtype, r, od);
        return 0;
    }
    int64_t pb[KILN_MAX_RANK], pe[KILN_MAX_RANK], cp[MAXV];
    for (int k = 0; k < np; k++) cp[k] = pc[k] ? p[k] : 0;
    if (index_pad_resolve(r, cp, np, na >= 0 ? ax : NULL, na, pb, pe, c->err))
        return -1;
    /* pads entries that are symbolic make their axis unknown */
    bool symp[KILN_MAX_RANK] = {0};
    int n = na >= 0 ? na : r;
    for (int k = 0; k < n; k++) {
        if (pc[k] && pc[n + k]) continue;
        int64_t axv = na >= 0 ? ax[k] : k;
        symp[axv < 0 ? axv + r : axv] = true;
    }
    for (int a = 0; a < r; a++) {
        int64_t d = x->dims[a];
        if (symp[a]) od[a] = ic_new_sym(c);
        else if (d >= 0) {
            int64_t o;
            if (ic_dim_add(c, d, pb[a], &o, "padded dim") ||
                ic_dim_add(c, o, pe[a], &o, "padded dim"))
                return -1;
            if (o < 0)
                return ic_fail(c, "Pad gives a negative dim on axis %d", a);
            od[a] = o;
        } else if (pb[a] == 0 && pe[a] == 0)
            od[a] = d;
        else
            od[a] = ic_new_sym(c);
    }
    ic_set_out(c, 0, x->dtype, r, od);
    return 0;
}

/* ------------------------------------------------------------- Resize */

static int pick(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

int index_resize_attrs(const ir_node *n, int op, int opset, int rank,
                       resize_attrs *a, char *err) {
    memset(a, 0, sizeof *a);
    a->naxes = -1;
    a->i_roi = a->i_scales = a->i_sizes = -1;
    a->cubic_a = -0.75;
    const char *mode = ir_attr_str(n, "mode", "nearest");
    if (op == OP_Upsample || opset < 11) {
        /* Upsample and Resize-10: asymmetric mapping, floor for nearest */
        a->upsample = true;
        a->coord = RZ_ASYMMETRIC;
        a->nearest = op == OP_Upsample ? RZ_FLOOR : RZ_SIMPLE;
        if (!strcmp(mode, "nearest")) a->mode = RZ_NEAREST;
        else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
            a->mode = RZ_LINEAR;
        else return index_err(err, "unknown mode '%s'", mode);
        if (op == OP_Upsample && opset < 9) {
            a->attr_scales = ir_attr_floats(n, "scales", &a->n_attr_scales);
            if (!a->attr_scales)
                return index_err(err, "Upsample-%d needs a 'scales' attribute",
                                 opset);
        } else {
            a->i_scales = 1;
        }
        return 0;
    }
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
        "align_corners", "asymmetric", "tf_crop_and_resize",
        "tf_half_pixel_for_nn"};
    static const char *const nearests[] = {"round_prefer_floor",
                                           "round_prefer_ceil", "floor", "ceil"};
    static const char *const policies[] = {"stretch", "not_larger",
                                           "not_smaller"};
    const char *s;
    a->mode = pick(mode, modes, 3);
    if (a->mode < 0) return index_err(err, "unknown mode '%s'", mode);
    s = ir_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    a->coord = pick(s, coords, 7);
    if (a->coord < 0)
        return index_err(err, "unknown coordinate_transformation_mode '%s'", s);
    s = ir_attr_str(n, "nearest_mode", "round_prefer_floor");
    a->nearest = pick(s, nearests, 4);
    if (a->nearest < 0) return index_err(err, "unknown nearest_mode '%s'", s);
    s = ir_attr_str(n, "keep_aspect_ratio_policy", "stretch");
    a->policy = pick(s, policies, 3);
    if (a->policy < 0)
        return index_err(err, "unknown keep_aspect_ratio_policy '%s'", s);
    a->cubic_a = ir_attr_float(n, "cubic_coeff_a", -0.75f);
    a->exclude_outside = ir_attr_int(n, "exclude_outside", 0) != 0;
    a->extrapolation = ir_attr_float(n, "extrapolation_value", 0.0f);
    a->antialias = ir_attr_int(n, "antialias", 0) != 0 && a->mode != RZ_NEAREST;
    int cnt;
    const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
    if (ax) {
        if (cnt > KILN_MAX_RANK || (rank >= 0 && cnt > rank))
            return index_err(err, "Resize has %d axes", cnt);
        a->naxes = cnt;
        for (int k = 0; k < cnt; k++) {
            int64_t v = ax[k];
            if (rank >= 0) {
                if (v < -(int64_t)rank || v >= rank)
                    return index_err(err, "Resize axis %lld out of range for "
                                          "rank %d", (long long)v, rank);
                if (v < 0) v += rank;
                for (int j = 0; j < k; j++)
                    if (a->axes[j] == v)
                        return index_err(err, "Resize axis %lld is repeated",
                                         (long long)v);
            }
            a->axes[k] = (int)v;
        }
    }
    a->i_roi = 1;
    a->i_scales = 2;
    a->i_sizes = 3;
    return 0;
}

int index_resize_plan(const resize_attrs *a, int rank, const int64_t *dims,
                      const double *scales, int nscales,
                      const int64_t *sizes, int nsizes, const double *roi,
                      int nroi, int64_t *od, double *sc, double *rf,
                      char *err) {
    int naxes = a->naxes >= 0 ? a->naxes : rank;
    int axes[KILN_MAX_RANK];
    for (int k = 0; k < naxes; k++) axes[k] = a->naxes >= 0 ? a->axes[k] : k;
    for (int i = 0; i < rank; i++) {
        od[i] = dims[i];
        sc[i] = 1.0;
        rf[i] = 0.0;
        rf[rank + i] = 1.0;
    }
    if (nscales > 0 && nsizes > 0)
        return index_err(err, "only one of scales and sizes may be given");
    if (nscales <= 0 && nsizes <= 0)
        return index_err(err, "one of scales and sizes must be given");
    if (nscales > 0) {
        if (nscales != naxes)
            return index_err(err, "scales has %d values, expected %d", nscales,
                             naxes);
        for (int k = 0; k < naxes; k++) {
            double s = scales[k];
            if (!(s > 0) || !isfinite(s))
                return index_err(err, "scale %g must be positive", s);
            double o = floor(s * (double)dims[axes[k]]);
            if (o > 9.0e15)
                return index_err(err, "scale %g gives a huge output", s);
            od[axes[k]] = (int64_t)o;
            sc[axes[k]] = s;
        }
    } else {
        if (nsizes != naxes)
            return index_err(err, "sizes has %d values, expected %d", nsizes,
                             naxes);
        for (int k = 0; k < naxes; k++)
            if (sizes[k] < 0)
                return index_err(err, "size %lld is negative",
                                 (long long)sizes[k]);
        if (a->policy == RZ_STRETCH) {
            for (int k = 0; k < naxes; k++) {
                int ax = axes[k];
                od[ax] = sizes[k];
                sc[ax] = dims[ax] > 0 ? (double)sizes[k] / (double)dims[ax]
                                      : 1.0;
            }
        } else {
            double s = 0;
            bool first = true;
            for (int k = 0; k < naxes; k++) {
                int ax = axes[k];
                if (dims[ax] == 0) continue;
                double r = (double)sizes[k] / (double)dims[ax];
                if (first || (a->policy == RZ_NOT_LARGER ? r < s : r > s))
                    s = r;
                first = false;
            }
            if (first) s = 1.0;
            for (int k = 0; k < naxes; k++) {
                int ax = axes[k];
                double o = s * (double)dims[ax] + 0.5;
                if (o > 9.0e15) return index_err(err, "size is too large");
                od[ax] = (int64_t)o;
                sc[ax] = s;
            }
        }
    }
    if (a->coord == RZ_TF_CROP_AND_RESIZE && roi && nroi > 0) {
        if (nroi != 2 * naxes)
            return index_err(err, "roi has %d values, expected %d", nroi,
                             2 * naxes);
        for (int k = 0; k < naxes; k++) {
            rf[axes[k]] = roi[k];
            rf[rank + axes[k]] = roi[naxes + k];
        }
    }
    return 0;
}

static int infer_resize(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "Resize needs an input");
    resize_attrs a;
    if (index_resize_attrs(c->node, c->node->op, c->opset, x->rank, &a, c->err))
        return -1;
    if (a.mode != RZ_NEAREST && x->dtype != KILN_DTYPE_UNDEFINED &&
        !dtype_is_numeric(x->dtype))
        return ic_fail(c, "Resize input must be numeric, got %s",
                       kiln_dtype_name(x->dtype));
    double scales[MAXV];
    int64_t sizes[MAXV];
    bool szc[MAXV];
    int nsc = -2, nsz = -2; /* -2 absent, -1 unknown */
    if (a.attr_scales) {
        if (a.n_attr_scales > MAXV) return ic_fail(c, "too many scales");
        nsc = a.n_attr_scales;
        for (int k = 0; k < nsc; k++) scales[k] = a.attr_scales[k];
    } else if (ic_has(c, a.i_scales) && vec_len(c, a.i_scales) != 0) {
        if (ic_require_float(c, a.i_scales)) return -1;
        nsc = const_f64s(c, a.i_scales, scales, MAXV);
    }
    if (a.i_sizes >= 0 && ic_has(c, a.i_sizes) && vec_len(c, a.i_sizes) != 0) {
        if (require_i64(c, a.i_sizes, "sizes")) return -1;
        nsz = get_ints(c, a.i_sizes, sizes, szc, MAXV);
    }
    if (nsc == 0) nsc = -2;
    if (nsz == 0) nsz = -2;
    if (c->runtime && (nsc == -1 || nsz == -1))
        return ic_fail(c, "Resize scales/sizes must be vectors of at most %d "
                          "values", MAXV);
    if (nsc == -2 && nsz == -2 && (c->runtime || a.upsample))
        return ic_fail(c, "Resize needs scales or sizes");
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank;
    int naxes = a.naxes >= 0 ? a.naxes : r;
    int axes[KILN_MAX_RANK];
    for (int k = 0; k < naxes; k++) axes[k] = a.naxes >= 0 ? a.axes[k] : k;
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    if (nsc >= 0 && nsz >= 0)
        return ic_fail(c, "only one of scales and sizes may be given");
    if (nsz >= 0 && !all_conc(szc, nsz)) {
        /* Symbolic sizes: only a plain stretch keeps them. */
        if (nsz != naxes)
            return ic_fail(c, "sizes has %d values, expected %d", nsz, naxes);
        for (int k = 0; k < naxes; k++)
            od[axes[k]] = a.policy == RZ_STRETCH ? sizes[k] : ic_new_sym(c);
    } else if ((nsc >= 0 || nsz >= 0) && dims_conc(r, x->dims)) {
        double sc[KILN_MAX_RANK], rf[2 * KILN_MAX_RANK];
        if (index_resize_plan(&a, r, x->dims, nsc >= 0 ? scales : NULL, nsc,
                              nsz >= 0 ? sizes : NULL, nsz, NULL, 0, od, sc, rf,
                              c->err))
            return -1;
    } else if (nsc >= 0) {
        if (nsc != naxes)
            return ic_fail(c, "scales has %d values, expected %d", nsc, naxes);
        for (int k = 0; k < naxes; k++) {
            int64_t d = x->dims[axes[k]];
            if (scales[k] == 1.0) continue;
            if (d >= 0) {
                double o = floor(scales[k] * (double)d);
                if (!(o >= 0) || o > 9.0e15)
                    return ic_fail(c, "bad scale %g", scales[k]);
                od[axes[k]] = (int64_t)o;
            } else {
                od[axes[k]] = ic_new_sym(c);
            }
        }
    } else if (nsz >= 0 && a.policy == RZ_STRETCH) {
        if (nsz != naxes)
            return ic_fail(c, "sizes has %d values, expected %d", nsz, naxes);
        for (int k = 0; k < naxes; k++) od[axes[k]] = sizes[k];
    } else {
        for (int k = 0; k < naxes; k++) od[axes[k]] = ic_new_sym(c);
    }
    ic_set_out(c, 0, x->dtype, r, od);
    return 0;
}

/* ----------------------------------------- DepthToSpace, SpaceToDepth */

static int infer_depth_space(infer_ctx *c, bool to_space) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "needs an input");
    int64_t b = ir_attr_int(c->node, "blocksize", 0);
    if (b <= 0 || b > (1 << 20))
        return ic_fail(c, "blocksize %lld must be positive", (long long)b);
    if (to_space) {
        const char *m = ir_attr_str(c->node, "mode", "DCR");
        if (strcmp(m, "DCR") && strcmp(m, "CRD"))
            return ic_fail(c, "DepthToSpace mode '%s' is unknown", m);
    }
    if (ic_require_rank(c, 0, 4)) return -1;
    if (x->rank < 0) {
        ic_set_out(c, 0, x->dtype, 4, NULL);
        return 0;
    }
    int64_t od[4] = {x->dims[0], 0, 0, 0}, bb;
    /* Declared dims can be any int64: every product is checked. */
    if (ic_dim_mul(c, b, b, &bb, "blocksize^2")) return -1;
    for (int i = 1; i < 4; i++) {
        int64_t t;
        if (x->dims[i] >= 0 && ic_dim_mul(c, x->dims[i], bb, &t, "dim times blocksize^2"))
            return -1;
    }
    if (to_space) {
        int64_t ch = x->dims[1];
        if (ch >= 0 && ch % bb)
            return ic_fail(c, "channels %lld not divisible by blocksize^2 %lld",
                           (long long)ch, (long long)bb);
        od[1] = ch >= 0 ? ch / bb : b == 1 ? ch : ic_new_sym(c);
        for (int i = 2; i < 4; i++) {
            int64_t d = x->dims[i];
            od[i] = d >= 0 ? d * b : b == 1 ? d : ic_new_sym(c);
        }
    } else {
        int64_t ch = x->dims[1];
        od[1] = ch >= 0 ? ch * bb : b == 1 ? ch : ic_new_sym(c);
        for (int i = 2; i < 4; i++) {
            int64_t d = x->dims[i];
            if (d >= 0 && d % b)
                return ic_fail(c, "spatial dim %lld not divisible by "
                                  "blocksize %lld", (long long)d, (long long)b);
            od[i] = d >= 0 ? d / b : b == 1 ? d : ic_new_sym(c);
        }
    }
    ic_set_out(c, 0, x->dtype, 4, od);
    return 0;
}

static int infer_depth_to_space(infer_ctx *c) {
    return infer_depth_space(c, true);
}
static int infer_space_to_depth(infer_ctx *c) {
    return infer_depth_space(c, false);
}

/* ------------------------------------------------------------- CumSum */

static int infer_cumsum(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1)) return ic_fail(c, "CumSum needs x and axis");
    if (require_numeric(c, 0) || require_idx(c, 1, "axis")) return -1;
    const ir_type *at = ic_in(c, 1);
    if (at->rank > 1 || (at->rank == 1 && at->dims[0] >= 0 && at->dims[0] != 1))
        return ic_fail(c, "CumSum axis must be a scalar");
    int64_t v[2];
    bool vc[2];
    int n = get_ints(c, 1, v, vc, 1);
    if (n == 1 && vc[0] && x->rank >= 0) {
        int a;
        if (ic_axis(c, v[0], x->rank == 0 ? 1 : x->rank, &a)) return -1;
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------- OneHot */

static int infer_onehot(infer_ctx *c) {
    const ir_type *ind = ic_in(c, 0), *dep = ic_in(c, 1), *val = ic_in(c, 2);
    if (!ind || !dep || !val)
        return ic_fail(c, "OneHot needs indices, depth and values");
    if (require_numeric(c, 0) || require_numeric(c, 1)) return -1;
    if (dep->rank > 1 || (dep->rank == 1 && dep->dims[0] >= 0 &&
                          dep->dims[0] != 1))
        return ic_fail(c, "OneHot depth must hold one value");
    if (val->rank >= 0 && (val->rank != 1 || (val->dims[0] >= 0 &&
                                              val->dims[0] != 2)))
        return ic_fail(c, "OneHot values must be [off, on]");
    if (ind->rank < 0) {
        set_unknown_rank(c, 0, val->dtype);
        return 0;
    }
    int r = ind->rank + 1;
    if (r > KILN_MAX_RANK) return ic_fail(c, "OneHot output rank too big");
    int a;
    if (ic_axis(c, ir_attr_int(c->node, "axis", -1), r, &a)) return -1;
    int64_t depth;
    double dv;
    if (const_f64s(c, 1, &dv, 1) == 1) {
        if (!(dv >= 0) || dv > 9.0e15)
            return ic_fail(c, "OneHot depth %g is invalid", dv);
        depth = (int64_t)dv;
    } else {
        depth = ic_new_sym(c);
    }
    int64_t od[KILN_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++)
        od[i] = i == a ? depth : ind->dims[k++];
    ic_set_out(c, 0, val->dtype, r, od);
    return 0;
}

/* --------------------------------------------------------------- TopK */

static int infer_topk(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "TopK needs an input");
    if (require_numeric(c, 0)) return -1;
    int64_t k;
    bool kknown = true;
    if (c->opset < 10) {
        k = ir_attr_int(c->node, "k", -1);
        if (k < 0) return ic_fail(c, "TopK-1 needs a non-negative 'k'");
    } else {
        if (!ic_has(c, 1)) return ic_fail(c, "TopK needs a K input");
        if (require_i64(c, 1, "K")) return -1;
        int64_t v[2];
        bool vc[2];
        int n = get_ints(c, 1, v, vc, 1);
        if (n == 1) {
            k = v[0];
            if (vc[0] && k < 0)
                return ic_fail(c, "TopK K %lld is negative", (long long)k);
        } else {
            if (c->runtime) return ic_fail(c, "TopK K must hold one value");
            k = ic_new_sym(c);
            kknown = false;
        }
    }
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        set_unknown_rank(c, 1, KILN_DTYPE_INT64);
        return 0;
    }
    if (x->rank == 0) return ic_fail(c, "TopK input must have rank >= 1");
    int a;
    if (ic_axis(c, ir_attr_int(c->node, "axis", -1), x->rank, &a)) return -1;
    int64_t d = x->dims[a];
    if (kknown && k >= 0 && d >= 0 && k > d)
        return ic_fail(c, "TopK K %lld exceeds dim %lld", (long long)k,
                       (long long)d);
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)x->rank * sizeof *od);
    od[a] = k;
    ic_set_out(c, 0, x->dtype, x->rank, od);
    ic_set_out(c, 1, KILN_DTYPE_INT64, x->rank, od);
    return 0;
}

/* ----------------------------------------------------------- NonZero */

static int infer_nonzero(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "NonZero needs an input");
    if (x->dtype != KILN_DTYPE_UNDEFINED && x->dtype != KILN_DTYPE_BOOL &&
        !dtype_is_numeric(x->dtype))
        return ic_fail(c, "NonZero input must be numeric or bool");
    int64_t od[2];
    /* a scalar counts as a 1-element vector, as numpy does */
    od[0] = x->rank < 0 ? ic_new_sym(c) : x->rank == 0 ? 1 : x->rank;
    const kiln_tensor *t = ic_const(c, 0);
    if (t) {
        int64_t n = tensor_numel(t), cnt = 0;
        for (int64_t i = 0; i < n; i++)
            cnt += dt_get_f64(t->dtype, t->data, (size_t)i) != 0;
        od[1] = cnt;
    } else {
        od[1] = ic_new_sym(c);
    }
    ic_set_out(c, 0, KILN_DTYPE_INT64, 2, od);
    return 0;
}

/* ----------------------------------------------------------- Compress */

static int infer_compress(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *cond = ic_in(c, 1);
    if (!x || !cond) return ic_fail(c, "Compress needs input and condition");
    if (cond->dtype != KILN_DTYPE_BOOL && cond->dtype != KILN_DTYPE_UNDEFINED)
        return ic_fail(c, "Compress condition must be bool");
    if (ic_require_rank(c, 1, 1)) return -1;
    const ir_attr *axa = ir_attr_find(c->node, "axis");
    int64_t cnt = -1;
    const kiln_tensor *t = ic_const(c, 1);
    if (t) {
        int64_t n = tensor_numel(t);
        const uint8_t *p = t->data;
        cnt = 0;
        int64_t lim = -1; /* size of the compressed axis if known */
        if (x->rank >= 0) {
            if (!axa) lim = shape_numel(x->rank, x->dims);
            else if (x->rank > 0) {
                int a;
                if (ic_axis(c, axa->i, x->rank, &a)) return -1;
                lim = x->dims[a];
            }
        }
        for (int64_t i = 0; i < n; i++)
            if (p[i]) {
                if (lim >= 0 && i >= lim)
                    return ic_fail(c, "Compress condition selects index %lld "
                                      "beyond the axis size %lld",
                                   (long long)i, (long long)lim);
                cnt++;
            }
    }
    if (cnt < 0) cnt = ic_new_sym(c);
    if (!axa) {
        ic_set_out(c, 0, x->dtype, 1, &cnt);
        return 0;
    }
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    if (x->rank == 0) return ic_fail(c, "Compress with an axis needs rank >= 1");
    int a;
    if (ic_axis(c, axa->i, x->rank, &a)) return -1;
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)x->rank * sizeof *od);
    od[a] = cnt;
    ic_set_out(c, 0, x->dtype, x->rank, od);
    return 0;
}

/* ---------------------------------------------------- ReverseSequence */

static int infer_reverse_sequence(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *sl = ic_in(c, 1);
    if (!x || !sl) return ic_fail(c, "ReverseSequence needs input and lens");
    if (require_i64(c, 1, "sequence_lens") || ic_require_rank(c, 1, 1))
        return -1;
    int64_t ba = ir_attr_int(c->node, "batch_axis", 1);
    int64_t ta = ir_attr_int(c->node, "time_axis", 0);
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return ic_fail(c, "batch_axis %lld / time_axis %lld must be 0 and 1",
                       (long long)ba, (long long)ta);
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "ReverseSequence input must have rank >= 2");
    if (x->rank >= 0 && sl->rank == 1 && x->dims[ba] >= 0 && sl->dims[0] >= 0 &&
        x->dims[ba] != sl->dims[0])
        return ic_fail(c, "sequence_lens has %lld values for batch %lld",
                       (long long)sl->dims[0], (long long)x->dims[ba]);
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------- Unique */

static int infer_unique(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "Unique needs an input");
    if (require_numeric(c, 0)) return -1;
    const ir_attr *axa = ir_attr_find(c->node, "axis");
    int64_t u = ic_new_sym(c); /* number of unique entries: data-dependent */
    int64_t inv;
    if (!axa) {
        ic_set_out(c, 0, x->dtype, 1, &u);
        inv = x->rank >= 0 ? shape_numel(x->rank, x->dims) : -1;
        if (inv < 0) inv = ic_new_sym(c);
    } else if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        inv = ic_new_sym(c);
    } else {
        int a;
        if (x->rank == 0) return ic_fail(c, "Unique with an axis needs rank >= 1");
        if (ic_axis(c, axa->i, x->rank, &a)) return -1;
        int64_t od[KILN_MAX_RANK];
        memcpy(od, x->dims, (size_t)x->rank * sizeof *od);
        od[a] = u;
        ic_set_out(c, 0, x->dtype, x->rank, od);
        inv = x->dims[a];
    }
    ic_set_out(c, 1, KILN_DTYPE_INT64, 1, &u);
    ic_set_out(c, 2, KILN_DTYPE_INT64, 1, &inv);
    ic_set_out(c, 3, KILN_DTYPE_INT64, 1, &u);
    return 0;
}

/* ------------------------------------------------------ CenterCropPad */

static int infer_center_crop_pad(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1)) return ic_fail(c, "CenterCropPad needs input and shape");
    if (require_idx(c, 1, "shape")) return -1;
    int64_t v[MAXV];
    bool vc[MAXV];
    int n = get_ints(c, 1, v, vc, MAXV);
    if (c->runtime && n < 0)
        return ic_fail(c, "CenterCropPad shape must be a small int vector");
    if (x->rank < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank, cnt;
    const int64_t *ax = ir_attr_ints(c->node, "axes", &cnt);
    int na = ax ? cnt : r;
    if (na > r) return ic_fail(c, "CenterCropPad has %d axes for rank %d", na, r);
    int axes[KILN_MAX_RANK];
    bool seen[KILN_MAX_RANK] = {0};
    for (int k = 0; k < na; k++) {
        if (!ax) axes[k] = k;
        else if (ic_axis(c, ax[k], r, &axes[k])) return -1;
        if (seen[axes[k]]) return ic_fail(c, "axis %d is repeated", axes[k]);
        seen[axes[k]] = true;
    }
    int64_t len = n >= 0 ? n : vec_len(c, 1);
    if (len >= 0 && len != na)
        return ic_fail(c, "shape has %lld values for %d axes", (long long)len,
                       na);
    int64_t od[KILN_MAX_RANK];
    memcpy(od, x->dims, (size_t)r * sizeof *od);
    for (int k = 0; k < na; k++) {
        if (n >= 0 && vc[k] && v[k] < 0)
            return ic_fail(c, "shape value %lld is negative", (long long)v[k]);
        od[axes[k]] = n >= 0 ? v[k] : ic_new_sym(c);
    }
    ic_set_out(c, 0, x->dtype, r, od);
    return 0;
}

/* --------------------------------------------------------- GridSample */

static int infer_grid_sample(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *g = ic_in(c, 1);
    if (!x || !g) return ic_fail(c, "GridSample needs X and grid");
    if (ic_require_float(c, 0) || ic_require_float(c, 1)) return -1;
    const char *m = ir_attr_str(c->node, "mode", "linear");
    if (strcmp(m, "linear") && strcmp(m, "bilinear") && strcmp(m, "nearest") &&
        strcmp(m, "cubic") && strcmp(m, "bicubic"))
        return ic_fail(c, "GridSample mode '%s' is unknown", m);
    const char *p = ir_attr_str(c->node, "padding_mode", "zeros");
    if (strcmp(p, "zeros") && strcmp(p, "border") && strcmp(p, "reflection"))
        return ic_fail(c, "GridSample padding_mode '%s' is unknown", p);
    int r = x->rank >= 0 ? x->rank : g->rank;
    if (r < 0) {
        set_unknown_rank(c, 0, x->dtype);
        return 0;
    }
    if (r < 3) return ic_fail(c, "GridSample needs rank >= 3");
    if ((x->rank >= 0 && x->rank != r) || (g->rank >= 0 && g->rank != r))
        return ic_fail(c, "GridSample X rank %d != grid rank %d", x->rank,
                       g->rank);
    if (g->rank >= 0 && g->dims[r - 1] >= 0 && g->dims[r - 1] != r - 2)
        return ic_fail(c, "GridSample grid last dim %lld, expected %d",
                       (long long)g->dims[r - 1], r - 2);
    if (x->rank >= 0 && g->rank >= 0 && x->dims[0] >= 0 && g->dims[0] >= 0 &&
        x->dims[0] != g->dims[0])
        return ic_fail(c, "GridSample batch %lld != grid batch %lld",
                       (long long)x->dims[0], (long long)g->dims[0]);
    int64_t od[KILN_MAX_RANK];
    od[0] = x->rank >= 0 && x->dims[0] >= 0 ? x->dims[0]
            : g->rank >= 0 ? g->dims[0] : ic_new_sym(c);
    od[1] = x->rank >= 0 ? x->dims[1] : ic_new_sym(c);
    for (int i = 2; i < r; i++)
        od[i] = g->rank >= 0 ? g->dims[i - 1] : ic_new_sym(c);
    ic_set_out(c, 0, x->dtype, r, od);
    return 0;
}

/* --------------------------------------------------------- AffineGrid */

static int infer_affine_grid(infer_ctx *c) {
    const ir_type *th = ic_in(c, 0);
    if (!th || !ic_has(c, 1)) return ic_fail(c, "AffineGrid needs theta and size");
    if (ic_require_float(c, 0) || require_i64(c, 1, "size") ||
        ic_require_rank(c, 0, 3))
        return -1;
    int64_t v[MAXV];
    bool vc[MAXV];
    int n = get_ints(c, 1, v, vc, MAXV);
    int64_t len = n >= 0 ? n : vec_len(c, 1);
    if (c->runtime && n < 0) return ic_fail(c, "AffineGrid size is unreadable");
    if (len >= 0 && len != 4 && len != 5)
        return ic_fail(c, "AffineGrid size must have 4 or 5 values, got %lld",
                       (long long)len);
    if (len < 0 && th->rank == 3 && th->dims[1] >= 0)
        len = th->dims[1] == 2 ? 4 : 5;
    if (len < 0) {
        set_unknown_rank(c, 0, th->dtype);
        return 0;
    }
    int sp = (int)len - 2;
    if (th->rank == 3 && ((th->dims[1] >= 0 && th->dims[1] != sp) ||
                          (th->dims[2] >= 0 && th->dims[2] != sp + 1)))
        return ic_fail(c, "AffineGrid theta must be [N, %d, %d]", sp, sp + 1);
    int64_t od[6];
    od[0] = th->rank == 3 && th->dims[0] >= 0 ? th->dims[0]
            : n >= 0 ? v[0] : ic_new_sym(c);
    if (n >= 0 && vc[0] && th->rank == 3 && th->dims[0] >= 0 &&
        v[0] != th->dims[0])
        return ic_fail(c, "AffineGrid size N %lld != theta N %lld",
                       (long long)v[0], (long long)th->dims[0]);
    for (int i = 0; i < sp; i++) {
        if (n >= 0 && vc[2 + i] && v[2 + i] < 0)
            return ic_fail(c, "AffineGrid size is negative");
        od[1 + i] = n >= 0 ? v[2 + i] : ic_new_sym(c);
    }
    od[1 + sp] = sp;
    ic_set_out(c, 0, th->dtype, sp + 2, od);
    return 0;
}

const op_schema op_schemas_index[] = {
    {OP_Slice, 1, 5, 1, 1, infer_slice},
    {OP_Gather, 2, 2, 1, 1, infer_gather},
    {OP_GatherElements, 2, 2, 1, 1, infer_gather_elements},
    {OP_GatherND, 2, 2, 1, 1, infer_gather_nd},
    {OP_ScatterElements, 3, 3, 1, 1, infer_scatter_elements},
    {OP_Scatter, 3, 3, 1, 1, infer_scatter_elements},
    {OP_ScatterND, 3, 3, 1, 1, infer_scatter_nd},
    {OP_Expand, 2, 2, 1, 1, infer_expand},
    {OP_Tile, 2, 3, 1, 1, infer_tile},
    {OP_Pad, 1, 4, 1, 1, infer_pad},
    {OP_Resize, 1, 4, 1, 1, infer_resize},
    {OP_Upsample, 1, 2, 1, 1, infer_resize},
    {OP_DepthToSpace, 1, 1, 1, 1, infer_depth_to_space},
    {OP_SpaceToDepth, 1, 1, 1, 1, infer_space_to_depth},
    {OP_CumSum, 2, 2, 1, 1, infer_cumsum},
    {OP_OneHot, 3, 3, 1, 1, infer_onehot},
    {OP_TopK, 1, 2, 2, 2, infer_topk},
    {OP_NonZero, 1, 1, 1, 1, infer_nonzero},
    {OP_Compress, 2, 2, 1, 1, infer_compress},
    {OP_ReverseSequence, 2, 2, 1, 1, infer_reverse_sequence},
    {OP_Unique, 1, 1, 1, 4, infer_unique},
    {OP_CenterCropPad, 2, 2, 1, 1, infer_center_crop_pad},
    {OP_GridSample, 2, 2, 1, 1, infer_grid_sample},
    {OP_AffineGrid, 2, 2, 1, 1, infer_affine_grid},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
