/* shape.c: schemas and shape inference for the shape/data-movement family
** (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Shape, Size,
** ConstantOfShape, Constant, Range, Identity, Dropout, EyeLike, Trilu), including
** the symbolic shape arithmetic that lets Shape->Gather->Concat->Reshape chains
** stay static when dims are symbolic. */
#include "op.h"

#include <math.h>

/* Most elements of a small int tensor whose contents we track. */
#define SH_MAX_VALS 64

/* ------------------------------------------------------------ helpers */

/* Integer contents of input i (see ic_int_values). *lit tells whether they
** come from constant data, in which case negative values are real negative
** numbers rather than symbols. */
static int get_ints(const infer_ctx *c, int i, int64_t *v, int max, bool *lit) {
    *lit = ic_const(c, i) != NULL;
    return ic_int_values(c, i, v, max);
}

/* Whether element k of value v is a literal integer, following simple
** shape-building chains (Concat of rank-1 pieces, Unsqueeze, Squeeze,
** Identity, Reshape, integer Cast) back to constant data. Needed because a
** symbolic contents list cannot tell a literal -1 from a symbol. */
static bool trace_literal(const ir_value *v, int64_t k, int64_t *out,
                          int depth) {
    if (!v || depth > 16 || k < 0) return false;
    if (v->const_val) {
        const kiln_tensor *t = v->const_val;
        if (!dtype_is_int(t->dtype) || k >= tensor_numel(t)) return false;
        *out = dt_get_i64(t->dtype, t->data, (size_t)k);
        return true;
    }
    const ir_node *p = v->producer;
    if (!p || p->n_in < 1) return false;
    switch (p->op) {
    case OP_Identity: case OP_Unsqueeze: case OP_Squeeze: case OP_Reshape:
    case OP_Flatten:
        return trace_literal(p->in[0], k, out, depth + 1);
    case OP_Cast:
        if (!p->in[0] || !dtype_is_int(p->in[0]->type.dtype)) return false;
        return trace_literal(p->in[0], k, out, depth + 1);
    case OP_Concat: {
        int64_t base = 0;
        for (int j = 0; j < p->n_in; j++) {
            const ir_value *u = p->in[j];
            if (!u || u->type.rank > 1 || u->type.rank < 0) return false;
            int64_t len = u->type.rank == 0 ? 1 : u->type.dims[0];
            if (len < 0) return false;
            if (k < base + len) return trace_literal(u, k - base, out, depth + 1);
            base += len;
        }
        return false;
    }
    default:
        return false;
    }
}

/* Records contents for int output o. Literal negatives cannot be stored as
** contents (they would read as symbols), so they become fresh symbols
** statically; consumers that care (Reshape) trace the graph instead. */
static void put_ints(infer_ctx *c, int o, int n, const int64_t *v, bool lit) {
    if (n < 0 || n > SH_MAX_VALS) return;
    int64_t w[SH_MAX_VALS];
    for (int k = 0; k < n; k++) {
        w[k] = v[k];
        if (lit && v[k] < 0) {
            if (c->runtime) return; /* contents are concrete tensors anyway */
            w[k] = ic_new_sym(c);
        }
    }
    ic_set_int_values(c, o, n, w);
}

/* Passes input i's contents to output o unchanged (same element order). */
static void pass_ints(infer_ctx *c, int i, int o) {
    const ir_type *t = ic_in(c, i);
    if (!t || !dtype_is_int(t->dtype)) return;
    int64_t v[SH_MAX_VALS];
    bool lit;
    int n = get_ints(c, i, v, SH_MAX_VALS, &lit);
    if (n >= 0) put_ints(c, o, n, v, lit);
}

/* Product of dims (concrete or symbolic): the concrete product, the single
** symbol when all other factors are 1, 0 when any factor is 0, else a fresh
** symbol. false on overflow. */
static bool dims_product(infer_ctx *c, const int64_t *d, int n, int64_t *out) {
    int64_t p = 1, sym = 0;
    int nsym = 0;
    for (int i = 0; i < n; i++) {
        if (d[i] == 0) {
            *out = 0;
            return true;
        }
        if (d[i] < 0) {
            nsym++;
            sym = d[i];
        } else if (__builtin_mul_overflow(p, d[i], &p)) {
            return false;
        }
    }
    if (nsym == 0) *out = p;
    else if (nsym == 1 && p == 1) *out = sym;
    else *out = ic_new_sym(c);
    return true;
}

/* Reads an axes list from input i (newer opsets) or attribute `attr`.
** Returns the count, -1 when absent, -2 when present but unknown, -3 when
** constant but not a short integer list. */
static int get_axes(infer_ctx *c, int i, const char *attr, int64_t *ax,
                    int max) {
    if (ic_has(c, i)) {
        bool lit;
        int n = get_ints(c, i, ax, max, &lit);
        if (n < 0 && ic_const(c, i)) return -3; /* known but unusable */
        if (n < 0) return -2;
        if (!lit)
            for (int k = 0; k < n; k++)
                if (ax[k] < 0) return -2; /* symbolic axes: unknown */
        return n;
    }
    int n;
    const int64_t *a = ir_attr_ints(c->node, attr, &n);
    if (!a) return -1;
    if (n > max) return -2;
    if (n) memcpy(ax, a, (size_t)n * sizeof *ax);
    return n;
}

/* Normalizes axes against rank, rejecting out-of-range and repeated ones. */
static int norm_axes(infer_ctx *c, int64_t *ax, int n, int rank) {
    for (int k = 0; k < n; k++) {
        int a;
        if (ic_axis(c, ax[k], rank, &a)) return -1;
        ax[k] = a;
        for (int j = 0; j < k; j++)
            if (ax[j] == a)
                return ic_fail(c, "axis %d appears more than once", a);
    }
    return 0;
}

static bool dtype_known(kiln_dtype t) { return t != KILN_DTYPE_UNDEFINED; }

/* ------------------------------------------------------------ Reshape */

/* Solves the -1 dim of a reshape statically: cancels common symbols and
** concrete factors between the input dims and the other output dims. */
static int64_t solve_minus_one(infer_ctx *c, const ir_type *in,
                               const int64_t *od, int orank, int neg) {
    int64_t sin[KILN_MAX_RANK], sout[KILN_MAX_RANK];
    int nin = 0, nout = 0;
    int64_t pin = 1, pout = 1;
    for (int i = 0; i < in->rank; i++) {
        if (in->dims[i] < 0) sin[nin++] = in->dims[i];
        else if (__builtin_mul_overflow(pin, in->dims[i], &pin)) return ic_new_sym(c);
    }
    for (int i = 0; i < orank; i++) {
        if (i == neg) continue;
        if (od[i] < 0) sout[nout++] = od[i];
        else if (__builtin_mul_overflow(pout, od[i], &pout)) return ic_new_sym(c);
    }
    for (int j = 0; j < nout; j++) { /* cancel symbols present on both sides */
        int k;
        for (k = 0; k < nin; k++)
            if (sin[k] == sout[j]) break;
        if (k == nin) return ic_new_sym(c);
        sin[k] = sin[--nin];
    }
    if (pout == 0 || pin % pout != 0) return ic_new_sym(c);
    if (nin == 0) return pin / pout;
    if (nin == 1 && pin == pout) return sin[0];
    return ic_new_sym(c);
}

static int infer_reshape(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    bool allowzero = ir_attr_int(c->node, "allowzero", 0) != 0;
    int64_t sv[KILN_MAX_RANK + 1];
    bool lit = true;
    int n;
    if (ic_has(c, 1)) {
        const ir_type *st = ic_in(c, 1);
        if (dtype_known(st->dtype) && st->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "shape input must be int64, got %s",
                           kiln_dtype_name(st->dtype));
        if (st->rank > 1)
            return ic_fail(c, "shape input must be 1-D, got rank %d", st->rank);
        n = get_ints(c, 1, sv, KILN_MAX_RANK + 1, &lit);
        if (n < 0) {
            /* shape contents unknown: the rank is the shape's length */
            int64_t len = st->rank == 1 ? st->dims[0] : -1;
            if (len > KILN_MAX_RANK)
                return ic_fail(c, "target shape has %lld dims, more than %d",
                               (long long)len, KILN_MAX_RANK);
            ic_set_out(c, 0, in->dtype, len >= 0 ? (int)len : -1, NULL);
            return 0;
        }
    } else { /* Reshape-1: shape as attribute */
        int na;
        const int64_t *a = ir_attr_ints(c->node, "shape", &na);
        if (!a) return ic_fail(c, "missing shape input");
        if (na > KILN_MAX_RANK)
            return ic_fail(c, "target shape has %d dims, more than %d", na,
                           KILN_MAX_RANK);
        memcpy(sv, a, (size_t)na * sizeof *sv);
        n = na;
    }
    if (n > KILN_MAX_RANK)
        return ic_fail(c, "target shape has %d dims, more than %d", n,
                       KILN_MAX_RANK);
    int64_t od[KILN_MAX_RANK];
    int neg = -1;
    bool lit_zero = false;
    for (int k = 0; k < n; k++) {
        int64_t v = sv[k], l;
        bool is_lit = lit || v >= 0;
        if (!is_lit && !c->runtime && trace_literal(c->node->in[1], k, &l, 0)) {
            v = l;
            is_lit = true;
        }
        if (!is_lit) { /* a symbol: stays that symbol */
            od[k] = v;
            continue;
        }
        if (v == -1) {
            if (neg >= 0)
                return ic_fail(c, "target shape has more than one -1");
            neg = k;
            od[k] = 1;
        } else if (v < -1) {
            return ic_fail(c, "invalid target dim %lld", (long long)v);
        } else if (v == 0 && !allowzero) {
            if (in->rank < 0) od[k] = ic_new_sym(c);
            else if (k >= in->rank)
                return ic_fail(c, "target dim %d is 0 (copy) but the input has "
                               "rank %d", k, in->rank);
            else od[k] = in->dims[k];
        } else {
            lit_zero |= v == 0;
            od[k] = v;
        }
    }
    if (lit_zero && neg >= 0)
        return ic_fail(c, "allowzero=1 forbids 0 together with -1");
    if (in->rank < 0) {
        if (neg >= 0) od[neg] = ic_new_sym(c);
        ic_set_out(c, 0, in->dtype, n, od);
        pass_ints(c, 0, 0);
        return 0;
    }
    bool in_conc = true, out_conc = true;
    for (int i = 0; i < in->rank; i++) in_conc &= in->dims[i] >= 0;
    for (int i = 0; i < n; i++) out_conc &= i == neg || od[i] >= 0;
    if (in_conc && out_conc) {
        int64_t nin = shape_numel(in->rank, in->dims), nout = 1;
        for (int i = 0; i < n; i++)
            if (i != neg && ic_dim_mul(c, nout, od[i], &nout, "target shape size"))
                return -1;
        if (nin < 0) return ic_fail(c, "input shape overflows");
        if (neg >= 0) {
            if (nout == 0 || nin % nout != 0)
                return ic_fail(c, "cannot infer the -1 dim: %lld elements do not "
                               "divide into %lld", (long long)nin, (long long)nout);
            od[neg] = nin / nout;
        } else if (nin != nout) {
            return ic_fail(c, "cannot reshape %lld elements into %lld",
                           (long long)nin, (long long)nout);
        }
    } else if (neg >= 0) {
        od[neg] = solve_minus_one(c, in, od, n, neg);
    }
    ic_set_out(c, 0, in->dtype, n, od);
    pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Flatten */

static int infer_flatten(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    int64_t axis = ir_attr_int(c->node, "axis", 1);
    if (in->rank < 0) {
        ic_set_out(c, 0, in->dtype, 2, NULL);
        return 0;
    }
    if (axis < -(int64_t)in->rank || axis > in->rank)
        return ic_fail(c, "axis %lld is out of range for rank %d",
                       (long long)axis, in->rank);
    int a = (int)(axis < 0 ? axis + in->rank : axis);
    int64_t od[2];
    if (!dims_product(c, in->dims, a, &od[0]) ||
        !dims_product(c, in->dims + a, in->rank - a, &od[1]))
        return ic_fail(c, "flattened shape overflows");
    ic_set_out(c, 0, in->dtype, 2, od);
    pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Transpose */

static int infer_transpose(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    int np;
    const int64_t *perm = ir_attr_ints(c->node, "perm", &np);
    if (in->rank < 0) {
        ic_set_out(c, 0, in->dtype, perm ? np : -1, NULL);
        return 0;
    }
    int r = in->rank;
    if (perm && np != r)
        return ic_fail(c, "perm has %d entries for an input of rank %d", np, r);
    int64_t od[KILN_MAX_RANK];
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        int64_t p = perm ? perm[i] : r - 1 - i;
        if (p < 0 || p >= r || seen[p])
            return ic_fail(c, "perm is not a permutation of 0..%d", r - 1);
        seen[p] = true;
        od[i] = in->dims[p];
    }
    ic_set_out(c, 0, in->dtype, r, od);
    if (r <= 1) pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Squeeze */

static int infer_squeeze(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    int64_t ax[KILN_MAX_RANK + 1];
    int na = get_axes(c, 1, "axes", ax, KILN_MAX_RANK + 1);
    if (na == -3) return ic_fail(c, "axes must be a 1-D int64 list of at most "
                                 "%d entries", KILN_MAX_RANK);
    if (in->rank < 0 || na == -2) {
        ic_set_out(c, 0, in->dtype, -1, NULL);
        return 0;
    }
    int r = in->rank;
    bool drop[KILN_MAX_RANK] = {false};
    if (na > r)
        return ic_fail(c, "%d axes given for rank %d", na, r);
    if (na <= 0) { /* all dims of size 1 */
        for (int i = 0; i < r; i++) {
            if (in->dims[i] < 0) { /* cannot tell whether it is 1 */
                ic_set_out(c, 0, in->dtype, -1, NULL);
                return 0;
            }
            drop[i] = in->dims[i] == 1;
        }
    } else {
        if (norm_axes(c, ax, na, r)) return -1;
        for (int k = 0; k < na; k++) {
            int64_t d = in->dims[ax[k]];
            if (d >= 0 && d != 1)
                return ic_fail(c, "cannot squeeze axis %d of size %lld",
                               (int)ax[k], (long long)d);
            drop[ax[k]] = true;
        }
    }
    int64_t od[KILN_MAX_RANK];
    int o = 0;
    for (int i = 0; i < r; i++)
        if (!drop[i]) od[o++] = in->dims[i];
    ic_set_out(c, 0, in->dtype, o, od);
    pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Unsqueeze */

static int infer_unsqueeze(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    int64_t ax[KILN_MAX_RANK + 1];
    int na = get_axes(c, 1, "axes", ax, KILN_MAX_RANK + 1);
    if (na == -1) return ic_fail(c, "missing axes");
    if (na == -3) return ic_fail(c, "axes must be a 1-D int64 list of at most "
                                 "%d entries", KILN_MAX_RANK);
    if (in->rank < 0 || na == -2) {
        int r = in->rank >= 0 && ic_in(c, 1) && ic_in(c, 1)->rank == 1 &&
                        ic_in(c, 1)->dims[0] >= 0
                    ? in->rank + (int)ic_in(c, 1)->dims[0]
                    : -1;
        if (r > KILN_MAX_RANK)
            return ic_fail(c, "output rank %d exceeds %d", r, KILN_MAX_RANK);
        ic_set_out(c, 0, in->dtype, r, NULL);
        return 0;
    }
    int r = in->rank + na;
    if (r > KILN_MAX_RANK)
        return ic_fail(c, "output rank %d exceeds %d", r, KILN_MAX_RANK);
    if (norm_axes(c, ax, na, r)) return -1;
    bool ins[KILN_MAX_RANK] = {false};
    for (int k = 0; k < na; k++) ins[ax[k]] = true;
    int64_t od[KILN_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) od[i] = ins[i] ? 1 : in->dims[j++];
    ic_set_out(c, 0, in->dtype, r, od);
    pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Concat */

static int infer_concat(infer_ctx *c) {
    int64_t axis = ir_attr_int(c->node, "axis", c->opset < 4 ? 1 : INT64_MIN);
    if (axis == INT64_MIN) return ic_fail(c, "missing attribute 'axis'");
    const ir_type *first = NULL;
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    for (int i = 0; i < c->n_in; i++) {
        const ir_type *t = ic_in(c, i);
        if (!t) return ic_fail(c, "input %d is absent", i);
        if (dtype_known(t->dtype)) {
            if (dtype_known(dt) && dt != t->dtype)
                return ic_fail(c, "inputs have different types %s and %s",
                               kiln_dtype_name(dt), kiln_dtype_name(t->dtype));
            dt = t->dtype;
        }
        if (t->rank >= 0) {
            if (first && first->rank != t->rank)
                return ic_fail(c, "inputs have different ranks %d and %d",
                               first->rank, t->rank);
            if (!first) first = t;
        }
    }
    if (!first) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    int r = first->rank, a;
    if (r == 0) return ic_fail(c, "cannot concatenate scalars");
    if (ic_axis(c, axis, r, &a)) return -1;
    int64_t od[KILN_MAX_RANK];
    memcpy(od, first->dims, (size_t)r * sizeof *od);
    int64_t sum = 0, sym = 0;
    int nsym = 0;
    for (int i = 0; i < c->n_in; i++) {
        const ir_type *t = ic_in(c, i);
        if (t->rank < 0) {
            nsym += 2; /* unknown length along axis */
            continue;
        }
        for (int k = 0; k < r; k++) {
            if (k == a) continue;
            int64_t d = t->dims[k];
            if (d >= 0 && od[k] >= 0 && d != od[k])
                return ic_fail(c, "input %d has dim %d = %lld, expected %lld",
                               i, k, (long long)d, (long long)od[k]);
            if (od[k] < 0 && d >= 0) od[k] = d;
        }
        int64_t d = t->dims[a];
        if (d < 0) {
            nsym++;
            sym = d;
        } else if (ic_dim_add(c, sum, d, &sum, "concatenated dim")) {
            return -1;
        }
    }
    od[a] = nsym == 0 ? sum : (nsym == 1 && sum == 0) ? sym : ic_new_sym(c);
    ic_set_out(c, 0, dt, r, od);
    /* contents of small int vectors (shape arithmetic) */
    if (r == 1 && dtype_is_int(dt)) {
        int64_t v[SH_MAX_VALS];
        int tot = 0;
        bool ok = true;
        for (int i = 0; i < c->n_in && ok; i++) {
            bool lit;
            int n = get_ints(c, i, v + tot, SH_MAX_VALS - tot, &lit);
            if (n < 0) {
                ok = false;
                break;
            }
            if (lit) /* literal negatives become fresh symbols */
                for (int k = tot; k < tot + n; k++)
                    if (v[k] < 0) {
                        if (c->runtime) ok = false;
                        v[k] = ic_new_sym(c);
                    }
            tot += n;
        }
        if (ok) ic_set_int_values(c, 0, tot, v);
    }
    return 0;
}

/* ------------------------------------------------------------ Split */

static int infer_split(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    int64_t axis = ir_attr_int(c->node, "axis", 0);
    int nout = c->n_out;
    int64_t sp[1024];
    int ns = -1; /* -1: no explicit split */
    bool unknown_split = false;
    if (ic_has(c, 1)) {
        const ir_type *st = ic_in(c, 1);
        if (dtype_known(st->dtype) && st->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "split input must be int64");
        bool lit;
        ns = get_ints(c, 1, sp, 1024, &lit);
        if (ns < 0 && ic_const(c, 1))
            return ic_fail(c, "split must be a 1-D int64 list of at most 1024 "
                           "entries");
        if (ns < 0) unknown_split = true;
        else if (!lit)
            for (int k = 0; k < ns; k++)
                if (sp[k] < 0) unknown_split = true;
    } else {
        int n;
        const int64_t *a = ir_attr_ints(c->node, "split", &n);
        if (a) {
            if (n > 1024) return ic_fail(c, "too many split sizes (%d)", n);
            memcpy(sp, a, (size_t)n * sizeof *sp);
            ns = n;
        }
    }
    int64_t num = ir_attr_int(c->node, "num_outputs", 0);
    if (ir_attr_find(c->node, "num_outputs")) {
        if (ns >= 0 || ic_has(c, 1))
            return ic_fail(c, "'num_outputs' and 'split' are mutually exclusive");
        if (num < 1) return ic_fail(c, "num_outputs must be positive");
        if (num != nout)
            return ic_fail(c, "num_outputs is %lld but the node has %d outputs",
                           (long long)num, nout);
    }
    if (ns >= 0 && !unknown_split) {
        if (ns != nout)
            return ic_fail(c, "%d split sizes for %d outputs", ns, nout);
        for (int k = 0; k < ns; k++)
            if (sp[k] < 0)
                return ic_fail(c, "negative split size %lld", (long long)sp[k]);
    }
    if (in->rank < 0) {
        for (int o = 0; o < nout; o++) ic_set_out(c, o, in->dtype, -1, NULL);
        return 0;
    }
    int a;
    if (ic_axis(c, axis, in->rank, &a)) return -1;
    int64_t d = in->dims[a];
    for (int o = 0; o < nout; o++) {
        int64_t od[KILN_MAX_RANK];
        memcpy(od, in->dims, (size_t)in->rank * sizeof *od);
        if (unknown_split) {
            od[a] = ic_new_sym(c);
        } else if (ns >= 0) {
            od[a] = sp[o];
        } else if (nout == 1) {
            od[a] = d;
        } else if (d < 0) {
            od[a] = ic_new_sym(c);
        } else {
            /* equal parts; with num_outputs the last one may be smaller */
            int64_t chunk = (d + nout - 1) / nout;
            if (!ir_attr_find(c->node, "num_outputs") && d % nout != 0)
                return ic_fail(c, "dim %lld cannot be split into %d equal parts",
                               (long long)d, nout);
            int64_t start = chunk * o;
            od[a] = start >= d ? 0 : KILN_MIN(chunk, d - start);
        }
        ic_set_out(c, o, in->dtype, in->rank, od);
    }
    if (ns >= 0 && !unknown_split && d >= 0) {
        int64_t s = 0;
        for (int k = 0; k < ns; k++)
            if (ic_dim_add(c, s, sp[k], &s, "sum of split sizes"))
                return -1;
        if (s != d)
            return ic_fail(c, "split sizes sum to %lld but the dim is %lld",
                           (long long)s, (long long)d);
    }
    return 0;
}

/* ------------------------------------------------------------ Shape, Size */

static int infer_shape(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (in->rank < 0) {
        ic_set_out(c, 0, KILN_DTYPE_INT64, 1, NULL);
        return 0;
    }
    int r = in->rank;
    int64_t s = ir_attr_int(c->node, "start", 0);
    int64_t e = ir_attr_int(c->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > s ? e - s : 0;
    ic_set_out(c, 0, KILN_DTYPE_INT64, 1, &n);
    ic_set_int_values(c, 0, (int)n, in->dims + s);
    return 0;
}

static int infer_size(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    ic_set_out(c, 0, KILN_DTYPE_INT64, 0, NULL);
    if (in->rank >= 0) {
        int64_t p;
        if (!dims_product(c, in->dims, in->rank, &p))
            return ic_fail(c, "element count overflows");
        ic_set_int_values(c, 0, 1, &p);
    }
    return 0;
}

/* ------------------------------------------------------------ ConstantOfShape */

static int infer_constant_of_shape(infer_ctx *c) {
    const ir_type *st = ic_in(c, 0);
    if (!st) return ic_fail(c, "input 0 is required");
    const kiln_tensor *val = ir_attr_tensor(c->node, "value");
    kiln_dtype dt = KILN_DTYPE_FLOAT32;
    if (val) {
        if (tensor_numel(val) != 1)
            return ic_fail(c, "'value' must hold exactly one element");
        if (val->dtype == KILN_DTYPE_STRING)
            return ic_fail(c, "string 'value' is not supported");
        dt = val->dtype;
    }
    if (dtype_known(st->dtype) && st->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "shape input must be int64, got %s",
                       kiln_dtype_name(st->dtype));
    if (st->rank > 1)
        return ic_fail(c, "shape input must be 1-D, got rank %d", st->rank);
    int64_t sv[KILN_MAX_RANK + 1];
    bool lit;
    int n = get_ints(c, 0, sv, KILN_MAX_RANK + 1, &lit);
    if (n > KILN_MAX_RANK)
        return ic_fail(c, "shape has %d dims, more than %d", n, KILN_MAX_RANK);
    if (n < 0) {
        int64_t len = st->rank == 1 ? st->dims[0] : -1;
        if (len > KILN_MAX_RANK)
            return ic_fail(c, "shape has %lld dims, more than %d",
                           (long long)len, KILN_MAX_RANK);
        ic_set_out(c, 0, dt, len >= 0 ? (int)len : -1, NULL);
        return 0;
    }
    bool conc = true;
    for (int k = 0; k < n; k++) {
        if (lit && sv[k] < 0)
            return ic_fail(c, "negative dim %lld", (long long)sv[k]);
        conc &= sv[k] >= 0;
    }
    if (conc && shape_numel(n, sv) < 0)
        return ic_fail(c, "shape has too many elements");
    ic_set_out(c, 0, dt, n, sv);
    /* contents of a small int64 result (e.g. a shape of ones) */
    if (dt == KILN_DTYPE_INT64 && n <= 1) {
        int64_t cnt = n == 0 ? 1 : sv[0];
        int64_t v = val ? dt_get_i64(val->dtype, val->data, 0) : 0;
        if (cnt >= 0 && cnt <= SH_MAX_VALS && v >= 0) {
            int64_t w[SH_MAX_VALS];
            for (int64_t k = 0; k < cnt; k++) w[k] = v;
            ic_set_int_values(c, 0, (int)cnt, w);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ Constant */

static int infer_constant(infer_ctx *c) {
    const ir_node *n = c->node;
    const ir_attr *a;
    int found = 0;
    const char *const names[] = {"value", "value_float", "value_floats",
                                 "value_int", "value_ints", "value_string",
                                 "value_strings", "sparse_value"};
    for (size_t k = 0; k < KILN_ARRAY_LEN(names); k++)
        if (ir_attr_find(n, names[k])) found++;
    if (found != 1)
        return ic_fail(c, "exactly one value attribute is required, found %d",
                       found);
    if ((a = ir_attr_find(n, "value"))) {
        const kiln_tensor *t = ir_attr_tensor(n, "value");
        if (!t) return ic_fail(c, "'value' is not a tensor");
        if (t->dtype == KILN_DTYPE_STRING)
            return ic_fail(c, "string tensors are not supported");
        ic_set_out(c, 0, t->dtype, t->rank, t->dims);
        if (dtype_is_int(t->dtype) && t->rank <= 1) {
            int64_t v[SH_MAX_VALS];
            int64_t cnt = tensor_numel(t);
            if (cnt >= 0 && cnt <= SH_MAX_VALS) {
                for (int64_t k = 0; k < cnt; k++)
                    v[k] = dt_get_i64(t->dtype, t->data, (size_t)k);
                put_ints(c, 0, (int)cnt, v, true);
            }
        }
        return 0;
    }
    /* The attribute's type must match its name: a hostile file may declare
    ** value_ints as FLOATS, leaving a->ints NULL. */
    static const struct { const char *name; int type; } want[] = {
        {"value_float", IR_ATTR_FLOAT}, {"value_floats", IR_ATTR_FLOATS},
        {"value_int", IR_ATTR_INT}, {"value_ints", IR_ATTR_INTS}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        if ((a = ir_attr_find(n, want[k].name)) && a->type != want[k].type)
            return ic_fail(c, "attribute %s has attribute type %d, expected %d",
                           want[k].name, a->type, want[k].type);
    if (ir_attr_find(n, "value_float")) {
        ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 0, NULL);
        return 0;
    }
    if ((a = ir_attr_find(n, "value_floats"))) {
        int64_t d = a->n;
        ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 1, &d);
        return 0;
    }
    if ((a = ir_attr_find(n, "value_int"))) {
        ic_set_out(c, 0, KILN_DTYPE_INT64, 0, NULL);
        put_ints(c, 0, 1, &a->i, true);
        return 0;
    }
    if ((a = ir_attr_find(n, "value_ints"))) {
        int64_t d = a->n;
        ic_set_out(c, 0, KILN_DTYPE_INT64, 1, &d);
        if (a->n <= SH_MAX_VALS) put_ints(c, 0, a->n, a->ints, true);
        return 0;
    }
    if (ir_attr_find(n, "sparse_value"))
        return ic_fail(c, "sparse constants are not supported");
    return ic_fail(c, "string constants are not supported");
}

/* ------------------------------------------------------------ Range */

static bool range_dtype_ok(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT64 ||
           t == KILN_DTYPE_INT16 || t == KILN_DTYPE_INT32 ||
           t == KILN_DTYPE_INT64 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16;
}

/* Number of Range elements for concrete start/limit/delta; -1 via ic_fail. */
static int range_count(infer_ctx *c, const kiln_tensor *s, const kiln_tensor *l,
                      const kiln_tensor *d, int64_t *out) {
    kiln_dtype t = s->dtype;
    if (dtype_is_int(t)) {
        int64_t a = dt_get_i64(t, s->data, 0), b = dt_get_i64(t, l->data, 0),
                st = dt_get_i64(t, d->data, 0);
        if (st == 0) return ic_fail(c, "delta is zero");
        /* the span may not fit int64: count in unsigned arithmetic */
        if ((st > 0 && b <= a) || (st < 0 && b >= a)) {
            *out = 0;
            return 0;
        }
        uint64_t span = st > 0 ? (uint64_t)b - (uint64_t)a
                               : (uint64_t)a - (uint64_t)b;
        uint64_t step = st > 0 ? (uint64_t)st : (uint64_t)0 - (uint64_t)st;
        uint64_t n = span / step + (span % step != 0);
        if (n > (uint64_t)INT64_MAX) return ic_fail(c, "range is too long");
        *out = (int64_t)n;
        return 0;
    }
    double a = dt_get_f64(t, s->data, 0), b = dt_get_f64(t, l->data, 0),
           st = dt_get_f64(t, d->data, 0);
    if (st == 0) return ic_fail(c, "delta is zero");
    double n = ceil((b - a) / st);
    if (n != n) return ic_fail(c, "range bounds are not finite");
    if (n <= 0) n = 0;
    if (n > 9.0e15) return ic_fail(c, "range is too long");
    *out = (int64_t)n;
    return 0;
}

static int infer_range(infer_ctx *c) {
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    for (int i = 0; i < 3; i++) {
        const ir_type *t = ic_in(c, i);
        if (!t) return ic_fail(c, "input %d is required", i);
        if (t->rank > 1 || (t->rank == 1 && t->dims[0] >= 0 && t->dims[0] != 1))
            return ic_fail(c, "input %d must be a scalar", i);
        if (!dtype_known(t->dtype)) continue;
        if (!range_dtype_ok(t->dtype))
            return ic_fail(c, "unsupported type %s", kiln_dtype_name(t->dtype));
        if (dtype_known(dt) && dt != t->dtype)
            return ic_fail(c, "inputs must have the same type");
        dt = t->dtype;
    }
    const kiln_tensor *s = ic_const(c, 0), *l = ic_const(c, 1),
                      *d = ic_const(c, 2);
    int64_t n;
    if (s && l && d) {
        if (tensor_numel(s) != 1 || tensor_numel(l) != 1 || tensor_numel(d) != 1)
            return ic_fail(c, "inputs must hold one element each");
        if (range_count(c, s, l, d, &n)) return -1;
        ic_set_out(c, 0, dt, 1, &n);
        if (dt == KILN_DTYPE_INT64 && n <= SH_MAX_VALS) {
            int64_t v[SH_MAX_VALS], a = dt_get_i64(dt, s->data, 0),
                                    st = dt_get_i64(dt, d->data, 0);
            for (int64_t k = 0; k < n; k++)
                v[k] = (int64_t)((uint64_t)a + (uint64_t)k * (uint64_t)st);
            put_ints(c, 0, (int)n, v, true);
        }
        return 0;
    }
    /* Range(0, n, 1) with a symbolic n has length n */
    int64_t vs[1], vl[1], vd[1];
    bool ls, ll, ld;
    if (dtype_is_int(dt) && get_ints(c, 0, vs, 1, &ls) == 1 &&
        get_ints(c, 1, vl, 1, &ll) == 1 && get_ints(c, 2, vd, 1, &ld) == 1 &&
        vs[0] == 0 && vd[0] == 1 && !ll && vl[0] < 0) {
        n = vl[0];
    } else {
        n = ic_new_sym(c);
    }
    ic_set_out(c, 0, dt, 1, &n);
    return 0;
}

/* ------------------------------------------------------------ Identity */

static int infer_identity(infer_ctx *c) {
    ic_copy_type(c, 0, 0);
    pass_ints(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ Dropout */

static int infer_dropout(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (dtype_known(in->dtype) && !dtype_is_float(in->dtype))
        return ic_fail(c, "input must be a floating-point tensor, got %s",
                       kiln_dtype_name(in->dtype));
    const kiln_tensor *r = ic_const(c, 1);
    if (r) {
        if (tensor_numel(r) != 1 || !dtype_is_float(r->dtype))
            return ic_fail(c, "ratio must be a floating-point scalar");
        double v = dt_get_f64(r->dtype, r->data, 0);
        if (!(v >= 0 && v < 1))
            return ic_fail(c, "ratio %g is outside [0, 1)", v);
    }
    const kiln_tensor *tm = ic_const(c, 2);
    if (tm && (tm->dtype != KILN_DTYPE_BOOL || tensor_numel(tm) != 1))
        return ic_fail(c, "training_mode must be a bool scalar");
    ic_copy_type(c, 0, 0);
    if (c->n_out > 1) {
        /* the mask is bool since opset 10, the input type before */
        ic_copy_type(c, 1, 0);
        if (c->opset >= 10) c->out[1]->dtype = KILN_DTYPE_BOOL;
    }
    return 0;
}

/* ------------------------------------------------------------ EyeLike */

static bool eyelike_dtype_ok(kiln_dtype t) {
    return (dtype_is_int(t) && t != KILN_DTYPE_INT4 && t != KILN_DTYPE_UINT4 &&
            t != KILN_DTYPE_INT2 && t != KILN_DTYPE_UINT2) ||
           t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_FLOAT32 ||
           t == KILN_DTYPE_FLOAT64 || t == KILN_DTYPE_BFLOAT16 ||
           t == KILN_DTYPE_BOOL;
}

static int infer_eyelike(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (ic_require_rank(c, 0, 2)) return -1;
    kiln_dtype dt = in->dtype;
    const ir_attr *a = ir_attr_find(c->node, "dtype");
    if (a) {
        if (!dtype_is_valid((int)a->i))
            return ic_fail(c, "invalid dtype %lld", (long long)a->i);
        dt = (kiln_dtype)a->i;
    }
    if (dtype_known(dt) && !eyelike_dtype_ok(dt))
        return ic_fail(c, "unsupported output type %s", kiln_dtype_name(dt));
    ic_set_out(c, 0, dt, 2, in->rank == 2 ? in->dims : NULL);
    return 0;
}

/* ------------------------------------------------------------ Trilu */

static int infer_trilu(infer_ctx *c) {
    const ir_type *in = ic_in(c, 0);
    if (!in) return ic_fail(c, "input 0 is required");
    if (in->rank >= 0 && in->rank < 2)
        return ic_fail(c, "input must have rank >= 2, got %d", in->rank);
    if (ic_has(c, 1)) {
        const ir_type *k = ic_in(c, 1);
        if (dtype_known(k->dtype) && k->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "k must be int64");
        if (k->rank > 1 || (k->rank == 1 && k->dims[0] >= 0 && k->dims[0] != 1))
            return ic_fail(c, "k must be a scalar");
    }
    if (in->dtype == KILN_DTYPE_STRING)
        return ic_fail(c, "string tensors are not supported");
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ table */

const op_schema op_schemas_shape[] = {
    {OP_Reshape, 1, 2, 1, 1, infer_reshape},
    {OP_Flatten, 1, 1, 1, 1, infer_flatten},
    {OP_Transpose, 1, 1, 1, 1, infer_transpose},
    {OP_Squeeze, 1, 2, 1, 1, infer_squeeze},
    {OP_Unsqueeze, 1, 2, 1, 1, infer_unsqueeze},
    {OP_Concat, 1, -1, 1, 1, infer_concat},
    {OP_Split, 1, 2, 1, -1, infer_split},
    {OP_Shape, 1, 1, 1, 1, infer_shape},
    {OP_Size, 1, 1, 1, 1, infer_size},
    {OP_ConstantOfShape, 1, 1, 1, 1, infer_constant_of_shape},
    {OP_Constant, 0, 0, 1, 1, infer_constant},
    {OP_Range, 3, 3, 1, 1, infer_range},
    {OP_Identity, 1, 1, 1, 1, infer_identity},
    {OP_Dropout, 1, 3, 1, 2, infer_dropout},
    {OP_EyeLike, 1, 1, 1, 1, infer_eyelike},
    {OP_Trilu, 1, 2, 1, 1, infer_trilu},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
