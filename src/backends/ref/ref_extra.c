/* ref_extra.c: reference kernels of the "extra" family: the losses, Scan,
** CumProd, BitCast, TensorScatter and ImageDecoder (codecs in
** util/image.c), plus the family's kernel table (the
** signal and neural-network kernels live in ref_extra_signal.c and
** ref_extra_nn.c). */
#include "ref_extra.h"

#include "../../util/image.h"

#include <math.h>

/* ------------------------------------------------------------ helpers */

double *rx_to_f64(const kiln_tensor *t) {
    int64_t n = tensor_numel(t);
    if (n < 0) return NULL;
    double *v = malloc(((size_t)n + 1) * sizeof *v);
    if (!v) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        const float *s = t->data;
        for (int64_t i = 0; i < n; i++) v[i] = s[i];
    } else if (t->dtype == KILN_DTYPE_FLOAT64) {
        if (n) memcpy(v, t->data, (size_t)n * sizeof *v);
    } else {
        for (int64_t i = 0; i < n; i++) v[i] = dt_get_f64(t->dtype, t->data, (size_t)i);
    }
    return v;
}

void rx_from_f64(kiln_tensor *t, const double *v, int64_t n) {
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        float *d = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = (float)v[i];
    } else {
        for (int64_t i = 0; i < n; i++) dt_set_f64(t->dtype, t->data, (size_t)i, v[i]);
    }
}

int rx_scalar_int(ref_ctx *c, const kiln_tensor *t, const char *what, int64_t *v) {
    if (!t || !dtype_is_int(t->dtype) || tensor_numel(t) != 1)
        return ref_fail(c, "%s must be one integer", what);
    *v = dt_get_i64(t->dtype, t->data, 0);
    return 0;
}

static int64_t prod_dims(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Bytes per element; 0 for types without a whole-byte size (4-bit). */
static size_t elem_size(kiln_dtype t) {
    return t == KILN_DTYPE_STRING ? 0 : kiln_dtype_size(t);
}

/* Moves src's contents into dst (an executor-owned output) and frees src. */
static void move_into(kiln_tensor *dst, kiln_tensor *src) {
    kiln_tensor tmp = *dst;
    char *keep = dst->name;
    *dst = *src;
    dst->name = keep;
    src->name = NULL;
    *src = tmp;
    src->name = NULL;
    tensor_free(src);
}

/* ------------------------------------------------------------ losses */

static int k_loss(ref_ctx *c, bool softmax) {
    const kiln_tensor *x = c->in[0], *tg = c->in[1];
    const kiln_tensor *w = ref_has(c, 2) ? c->in[2] : NULL;
    const char *rs = ir_attr_str(c->node, "reduction", "mean");
    int red = !strcmp(rs, "none") ? 0 : !strcmp(rs, "sum") ? 1 : 2;
    const ir_attr *iia = ir_attr_find(c->node, "ignore_index");
    bool has_ii = iia != NULL;
    int64_t ii = has_ii ? iia->i : 0;
    if (x->rank < 2) return ref_fail(c, "input needs rank >= 2");
    int64_t N = x->dims[0], C = x->dims[1], D = prod_dims(x->dims, 2, x->rank);
    if (tensor_numel(tg) != N * D) return ref_fail(c, "target does not match input");
    if (w && tensor_numel(w) != C) return ref_fail(c, "weight must have C entries");
    int rc = -1;
    double *xv = rx_to_f64(x), *wv = w ? rx_to_f64(w) : NULL;
    double *loss = malloc(((size_t)(N * D) + 1) * sizeof *loss);
    if (!xv || !loss || (w && !wv)) {
        ref_fail(c, "out of memory");
        goto done;
    }
    if (softmax) { /* log-softmax over the class axis, in place */
        for (int64_t n = 0; n < N; n++)
            for (int64_t d = 0; d < D; d++) {
                double *p = xv + n * C * D + d, mx = -INFINITY, s = 0;
                for (int64_t k = 0; k < C; k++) mx = fmax(mx, p[k * D]);
                for (int64_t k = 0; k < C; k++) s += exp(p[k * D] - mx);
                double ls = log(s);
                for (int64_t k = 0; k < C; k++) p[k * D] = p[k * D] - mx - ls;
            }
        if (c->n_out > 1) rx_from_f64(c->out[1], xv, N * C * D);
    }
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = dt_get_i64(tg->dtype, tg->data, (size_t)(n * D + d));
            double l = 0, wt = 0;
            if (!(has_ii && t == ii)) {
                if (t < 0 || t >= C) {
                    ref_fail(c, "target value %lld is outside [0, %lld)", (long long)t,
                             (long long)C);
                    goto done;
                }
                wt = wv ? wv[t] : 1.0;
                l = -xv[(n * C + t) * D + d] * wt;
            }
            loss[n * D + d] = l;
            sum += l;
            wsum += wt;
        }
    if (red == 0) {
        rx_from_f64(c->out[0], loss, N * D);
    } else {
        /* mean divides by the weights of the counted samples: with no
        ** weight input, that is the number of non-ignored samples */
        double v = red == 1 ? sum : sum / wsum;
        rx_from_f64(c->out[0], &v, 1);
    }
    rc = 0;
done:
    free(xv);
    free(wv);
    free(loss);
    return rc;
}

static int k_nll(ref_ctx *c) { return k_loss(c, false); }
static int k_sce(ref_ctx *c) { return k_loss(c, true); }

/* ------------------------------------------------------------ Scan */

/* A copy of src's slice idx along axis (rank drops by one). */
static int slice_axis(ref_ctx *c, const kiln_tensor *src, int axis, int64_t idx,
                      kiln_tensor **dst) {
    size_t es = elem_size(src->dtype);
    if (!es) return ref_fail(c, "Scan does not support %s tensors",
                             kiln_dtype_name(src->dtype));
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0, k = 0; d < src->rank; d++)
        if (d != axis) dims[k++] = src->dims[d];
    if (tensor_new(src->dtype, src->rank - 1, dims, dst))
        return ref_fail(c, "%s", kiln_last_error());
    int64_t outer = prod_dims(src->dims, 0, axis), L = src->dims[axis];
    size_t inner = (size_t)prod_dims(src->dims, axis + 1, src->rank) * es;
    for (int64_t o = 0; o < outer; o++)
        if (inner)
            memcpy((char *)(*dst)->data + (size_t)o * inner,
                   (const char *)src->data + (size_t)(o * L + idx) * inner, inner);
    return 0;
}

/* Runs the body L times. state (ns tensors, owned) is updated in place;
** items[k * L + t] receives scan output k of iteration t. Scan input j is
** read along axes[j], backwards when dirs[j] is set. */
static int scan_loop(ref_ctx *c, const ir_graph *body, int ns, int nm, int nk,
                     kiln_tensor **state, const kiln_tensor *const *xs,
                     const int *axes, const bool *dirs, int64_t L,
                     kiln_tensor **items) {
    int rc = -1;
    const kiln_tensor **args = calloc((size_t)(ns + nm) + 1, sizeof *args);
    kiln_tensor **sl = calloc((size_t)nm + 1, sizeof *sl);
    kiln_tensor **res = calloc((size_t)(ns + nk) + 1, sizeof *res);
    if (!args || !sl || !res) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t t = 0; t < L; t++) {
        for (int j = 0; j < nm; j++)
            if (slice_axis(c, xs[j], axes[j], dirs[j] ? L - 1 - t : t, &sl[j])) goto done;
        for (int i = 0; i < ns; i++) args[i] = state[i];
        for (int j = 0; j < nm; j++) args[ns + j] = sl[j];
        if (ref_run_subgraph(c, body, args, res)) goto done;
        for (int j = 0; j < nm; j++) {
            tensor_free(sl[j]);
            sl[j] = NULL;
        }
        for (int i = 0; i < ns; i++) {
            tensor_free(state[i]);
            state[i] = res[i];
            res[i] = NULL;
        }
        for (int k = 0; k < nk; k++) {
            kiln_tensor *it = res[ns + k], *first = items[(size_t)k * (size_t)L];
            res[ns + k] = NULL;
            items[(size_t)k * (size_t)L + (size_t)t] = it;
            if (t > 0 && (it->dtype != first->dtype ||
                          !shape_equal(it->rank, it->dims, first->rank, first->dims))) {
                ref_fail(c, "scan output %d changes shape between iterations", k);
                goto done;
            }
        }
    }
    rc = 0;
done:
    for (int j = 0; sl && j < nm; j++) tensor_free(sl[j]);
    for (int i = 0; res && i < ns + nk; i++) tensor_free(res[i]);
    free(args);
    free(sl);
    free(res);
    return rc;
}

/* Element type and shape of scan output k when no iteration ran: the body's
** static type, unknown dims taken as 0. */
static void empty_item_type(const ir_graph *body, int idx, kiln_dtype *dt, int *rank,
                            int64_t *dims) {
    const ir_type *bt = &body->outputs[idx]->type;
    *dt = dtype_is_valid((int)bt->dtype) && bt->dtype ? bt->dtype : KILN_DTYPE_FLOAT32;
    *rank = bt->rank < 0 ? 0 : bt->rank;
    for (int d = 0; d < *rank; d++) dims[d] = bt->dims[d] < 0 ? 0 : bt->dims[d];
}

/* opset 9+: one pass over the scan axis of every scan input. */
static int scan9(ref_ctx *c, const ir_graph *body, int ns, int nm, int nk) {
    const ir_node *n = c->node;
    int cnt, rc = -1;
    const int64_t *ia = ir_attr_ints(n, "scan_input_axes", &cnt);
    const int64_t *id = ir_attr_ints(n, "scan_input_directions", &cnt);
    const int64_t *oa = ir_attr_ints(n, "scan_output_axes", &cnt);
    const int64_t *od = ir_attr_ints(n, "scan_output_directions", &cnt);
    int *axes = calloc((size_t)nm + 1, sizeof *axes);
    bool *dirs = calloc((size_t)nm + 1, sizeof *dirs);
    kiln_tensor **state = calloc((size_t)ns + 1, sizeof *state);
    kiln_tensor **items = NULL;
    int64_t L = 0;
    if (!axes || !dirs || !state) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int j = 0; j < nm; j++) {
        const kiln_tensor *x = c->in[ns + j];
        int64_t a = ia ? ia[j] : 0;
        if (x->rank < 1 || a < -x->rank || a >= x->rank) {
            ref_fail(c, "scan input %d: axis %lld is invalid for rank %d", j,
                     (long long)a, x->rank);
            goto done;
        }
        axes[j] = (int)(a < 0 ? a + x->rank : a);
        dirs[j] = id && id[j];
        if (j == 0) L = x->dims[axes[j]];
        else if (x->dims[axes[j]] != L) {
            ref_fail(c, "scan inputs disagree on the sequence length");
            goto done;
        }
    }
    items = calloc((size_t)nk * (size_t)L + 1, sizeof *items);
    if (!items) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int i = 0; i < ns; i++)
        if (tensor_clone(c->in[i], &state[i])) {
            ref_fail(c, "%s", kiln_last_error());
            goto done;
        }
    if (scan_loop(c, body, ns, nm, nk, state, (const kiln_tensor *const *)c->in + ns,
                  axes, dirs, L, items))
        goto done;
    for (int i = 0; i < ns && i < c->n_out; i++) {
        move_into(c->out[i], state[i]);
        state[i] = NULL;
    }
    for (int k = 0; k < nk && ns + k < c->n_out; k++) {
        kiln_dtype dt;
        int q;
        int64_t s[KILN_MAX_RANK], dims[KILN_MAX_RANK];
        if (L > 0) {
            const kiln_tensor *f = items[(size_t)k * (size_t)L];
            dt = f->dtype;
            q = f->rank;
            memcpy(s, f->dims, sizeof s);
        } else {
            empty_item_type(body, ns + k, &dt, &q, s);
        }
        int64_t a = oa ? oa[k] : 0;
        if (q + 1 > KILN_MAX_RANK || a < -(q + 1) || a > q) {
            ref_fail(c, "scan output %d: axis %lld is invalid for rank %d", k,
                     (long long)a, q + 1);
            goto done;
        }
        int ax = (int)(a < 0 ? a + q + 1 : a);
        for (int d = 0, j = 0; d <= q; d++) dims[d] = d == ax ? L : s[j++];
        if (ref_alloc_out(c, ns + k, dt, q + 1, dims)) goto done;
        size_t es = elem_size(dt);
        if (!es && L > 0) {
            ref_fail(c, "Scan does not support %s outputs", kiln_dtype_name(dt));
            goto done;
        }
        int64_t outer = prod_dims(s, 0, ax);
        size_t inner = (size_t)prod_dims(s, ax, q) * es;
        bool rev = od && od[k];
        for (int64_t t = 0; t < L && inner; t++) {
            const char *src = items[(size_t)k * (size_t)L + (size_t)t]->data;
            int64_t p = rev ? L - 1 - t : t;
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)c->out[ns + k]->data + (size_t)(o * L + p) * inner,
                       src + (size_t)o * inner, inner);
        }
    }
    rc = 0;
done:
    for (int i = 0; state && i < ns; i++) tensor_free(state[i]);
    for (size_t i = 0; items && i < (size_t)nk * (size_t)L; i++) tensor_free(items[i]);
    free(axes);
    free(dirs);
    free(state);
    free(items);
    return rc;
}

/* opset 8: axis 0 is a batch axis, axis 1 the sequence axis; every batch
** entry runs separately for sequence_lens[b] steps, scan outputs padded with
** zeros to the longest sequence. */
static int scan8(ref_ctx *c, const ir_graph *body, int ns, int nm, int nk) {
    int cnt, rc = -1;
    const int64_t *id = ir_attr_ints(c->node, "directions", &cnt);
    const kiln_tensor *sl = ref_has(c, 0) ? c->in[0] : NULL;
    const kiln_tensor *const *init = (const kiln_tensor *const *)c->in + 1;
    const kiln_tensor *const *xs = init + ns;
    int64_t B = -1, T = -1;
    for (int j = 0; j < nm; j++) {
        if (xs[j]->rank < 2) return ref_fail(c, "scan input %d needs rank >= 2", j);
        if (j == 0) B = xs[j]->dims[0], T = xs[j]->dims[1];
        else if (xs[j]->dims[0] != B || xs[j]->dims[1] != T)
            return ref_fail(c, "scan inputs disagree on batch or sequence length");
    }
    for (int i = 0; i < ns; i++)
        if (init[i]->rank < 1 || init[i]->dims[0] != B)
            return ref_fail(c, "initial state %d needs the batch dim %lld", i, (long long)B);
    if (sl && (sl->dtype != KILN_DTYPE_INT64 || tensor_numel(sl) != B))
        return ref_fail(c, "sequence_lens must be int64 with one entry per batch");
    int *axes = calloc((size_t)nm + 1, sizeof *axes);
    bool *dirs = calloc((size_t)nm + 1, sizeof *dirs);
    bool *done_alloc = calloc((size_t)(ns + nk) + 1, sizeof *done_alloc);
    kiln_tensor **state = calloc((size_t)ns + 1, sizeof *state);
    kiln_tensor **bx = calloc((size_t)nm + 1, sizeof *bx);
    kiln_tensor **items = calloc((size_t)nk * (size_t)T + 1, sizeof *items);
    if (!axes || !dirs || !done_alloc || !state || !bx || !items) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int j = 0; j < nm; j++) dirs[j] = id && j < cnt && id[j];
    for (int64_t b = 0; b < B; b++) {
        int64_t L = sl ? ((const int64_t *)sl->data)[b] : T;
        if (L < 0 || L > T) {
            ref_fail(c, "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                     (long long)L, (long long)T);
            goto done;
        }
        for (int i = 0; i < ns; i++)
            if (slice_axis(c, init[i], 0, b, &state[i])) goto done;
        for (int j = 0; j < nm; j++)
            if (slice_axis(c, xs[j], 0, b, &bx[j])) goto done;
        if (scan_loop(c, body, ns, nm, nk, state, (const kiln_tensor *const *)bx, axes,
                      dirs, L, items))
            goto done;
        for (int i = 0; i < ns + nk && i < c->n_out; i++) {
            bool is_state = i < ns;
            int k = i - ns;
            const kiln_tensor *one = is_state ? state[i] : L ? items[(size_t)k * (size_t)L]
                                                              : NULL;
            if (!one) continue;
            kiln_tensor *o = c->out[i];
            int extra = is_state ? 1 : 2;
            if (!done_alloc[i]) {
                int64_t dims[KILN_MAX_RANK];
                if (one->rank + extra > KILN_MAX_RANK) {
                    ref_fail(c, "output %d rank too large", i);
                    goto done;
                }
                dims[0] = B;
                if (!is_state) dims[1] = T;
                memcpy(dims + extra, one->dims, (size_t)one->rank * sizeof *dims);
                if (ref_alloc_out(c, i, one->dtype, one->rank + extra, dims)) goto done;
                done_alloc[i] = true;
            } else if (o->dtype != one->dtype ||
                       !shape_equal(o->rank - extra, o->dims + extra, one->rank, one->dims)) {
                ref_fail(c, "output %d differs in shape between batch entries", i);
                goto done;
            }
            size_t each = one->nbytes;
            if (is_state) {
                if (each) memcpy((char *)o->data + (size_t)b * each, one->data, each);
            } else {
                for (int64_t t = 0; t < L; t++)
                    if (each)
                        memcpy((char *)o->data + (size_t)(b * T + t) * each,
                               items[(size_t)k * (size_t)L + (size_t)t]->data, each);
            }
        }
        for (int i = 0; i < ns; i++) {
            tensor_free(state[i]);
            state[i] = NULL;
        }
        for (int j = 0; j < nm; j++) {
            tensor_free(bx[j]);
            bx[j] = NULL;
        }
        for (int64_t i = 0; i < (int64_t)nk * L; i++) {
            tensor_free(items[i]);
            items[i] = NULL;
        }
    }
    for (int i = 0; i < ns + nk && i < c->n_out; i++) { /* nothing ran */
        if (done_alloc[i]) continue;
        int64_t dims[KILN_MAX_RANK];
        kiln_dtype dt;
        int q;
        if (i < ns) {
            dt = init[i]->dtype;
            q = init[i]->rank;
            memcpy(dims, init[i]->dims, sizeof dims);
            if (ref_alloc_out(c, i, dt, q, dims)) goto done;
            if (init[i]->nbytes) memcpy(c->out[i]->data, init[i]->data, init[i]->nbytes);
        } else {
            int64_t s[KILN_MAX_RANK];
            empty_item_type(body, i, &dt, &q, s);
            if (q + 2 > KILN_MAX_RANK) {
                ref_fail(c, "output %d rank too large", i);
                goto done;
            }
            dims[0] = B;
            dims[1] = T;
            memcpy(dims + 2, s, (size_t)q * sizeof *dims);
            if (ref_alloc_out(c, i, dt, q + 2, dims)) goto done;
        }
    }
    rc = 0;
done:
    for (int i = 0; state && i < ns; i++) tensor_free(state[i]);
    for (int j = 0; bx && j < nm; j++) tensor_free(bx[j]);
    for (size_t i = 0; items && i < (size_t)nk * (size_t)T; i++) tensor_free(items[i]);
    free(axes);
    free(dirs);
    free(done_alloc);
    free(state);
    free(bx);
    free(items);
    return rc;
}

static int k_scan(ref_ctx *c) {
    const ir_graph *body = ir_attr_graph(c->node, "body");
    bool v8 = c->opset < 9;
    int first = v8 ? 1 : 0;
    int64_t m = ir_attr_int(c->node, "num_scan_inputs", -1);
    int total = c->n_in - first;
    if (!body || m < 1 || m > total) return ref_fail(c, "bad Scan node");
    int ns = total - (int)m, nm = (int)m, nk = body->n_outputs - ns;
    if (nk < 0) return ref_fail(c, "body has too few outputs");
    for (int i = first; i < c->n_in; i++)
        if (!ref_has(c, i)) return ref_fail(c, "input %d is missing", i);
    return v8 ? scan8(c, body, ns, nm, nk) : scan9(c, body, ns, nm, nk);
}

/* ------------------------------------------------------------ CumProd */

static int k_cumprod(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t a = 0;
    if (rx_scalar_int(c, c->in[1], "axis", &a)) return -1;
    int r = x->rank, rr = r ? r : 1;
    if (a < -rr || a >= rr) return ref_fail(c, "axis %lld is out of range", (long long)a);
    int ax = (int)(a < 0 ? a + rr : a);
    bool excl = ir_attr_int(c->node, "exclusive", 0) != 0;
    bool rev = ir_attr_int(c->node, "reverse", 0) != 0;
    int64_t outer = r ? prod_dims(x->dims, 0, ax) : 1, L = r ? x->dims[ax] : 1;
    int64_t inner = r ? prod_dims(x->dims, ax + 1, r) : 1;
    kiln_dtype t = x->dtype;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            float pf = 1;
            double pd = 1;
            uint64_t pi = 1; /* unsigned: products wrap like the fixed-size type */
            for (int64_t s = 0; s < L; s++) {
                int64_t pos = rev ? L - 1 - s : s;
                size_t off = (size_t)((o * L + pos) * inner + in);
                if (t == KILN_DTYPE_FLOAT64) {
                    double v = ((const double *)x->data)[off];
                    if (!excl) pd *= v;
                    ((double *)y->data)[off] = pd;
                    if (excl) pd *= v;
                } else if (t == KILN_DTYPE_FLOAT32) {
                    float v = ((const float *)x->data)[off];
                    if (!excl) pf *= v;
                    ((float *)y->data)[off] = pf;
                    if (excl) pf *= v;
                } else if (dtype_is_float(t)) {
                    float v = (float)dt_get_f64(t, x->data, off);
                    if (!excl) pf *= v;
                    dt_set_f64(t, y->data, off, pf);
                    if (excl) pf *= v;
                } else {
                    uint64_t v = (uint64_t)dt_get_i64(t, x->data, off);
                    if (!excl) pi *= v;
                    dt_set_i64(t, y->data, off, (int64_t)pi);
                    if (excl) pi *= v;
                }
            }
        }
    return 0;
}

/* ------------------------------------------------------------ BitCast */

static int k_bitcast(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->nbytes != y->nbytes)
        return ref_fail(c, "BitCast changes the byte size (%zu vs %zu)", x->nbytes,
                        y->nbytes);
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    return 0;
}

/* ------------------------------------------------------------ TensorScatter */

static int k_tensor_scatter(ref_ctx *c) {
    const kiln_tensor *p = c->in[0], *u = c->in[1];
    const kiln_tensor *wi = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    bool circ = !strcmp(ir_attr_str(c->node, "mode", "linear"), "circular");
    int64_t a = ir_attr_int(c->node, "axis", -2);
    int r = p->rank;
    size_t es = elem_size(p->dtype);
    if (!es) return ref_fail(c, "%s tensors are not supported", kiln_dtype_name(p->dtype));
    if (a < -r || a >= r) return ref_fail(c, "axis out of range");
    int ax = (int)(a < 0 ? a + r : a);
    if (ax == 0 || u->rank != r) return ref_fail(c, "bad axis or update rank");
    for (int d = 0; d < r; d++)
        if (d == ax ? u->dims[d] > p->dims[d] : u->dims[d] != p->dims[d])
            return ref_fail(c, "update shape does not fit past_cache");
    int64_t B = p->dims[0];
    if (wi && (wi->dtype != KILN_DTYPE_INT64 || tensor_numel(wi) != B))
        return ref_fail(c, "write_indices must be int64 with one entry per batch");
    if (p->nbytes) memcpy(y->data, p->data, p->nbytes);
    int64_t outer = prod_dims(p->dims, 0, ax), per_b = prod_dims(p->dims, 1, ax);
    int64_t M = p->dims[ax], S = u->dims[ax];
    size_t inner = (size_t)prod_dims(p->dims, ax + 1, r) * es;
    if (!inner || !outer || !S) return 0;
    for (int64_t o = 0; o < outer; o++) {
        int64_t b = o / per_b, w = wi ? ((const int64_t *)wi->data)[b] : 0;
        for (int64_t s = 0; s < S; s++) {
            int64_t pos;
            if (circ) {
                if (M == 0) return ref_fail(c, "circular write into an empty axis");
                pos = (w % M + M) % M;
                pos = (pos + s % M) % M;
            } else {
                if (w < 0 || w > M - S)
                    return ref_fail(c, "write index %lld with %lld new entries does not "
                                    "fit %lld slots", (long long)w, (long long)S,
                                    (long long)M);
                pos = w + s;
            }
            memcpy((char *)y->data + (size_t)(o * M + pos) * inner,
                   (const char *)u->data + (size_t)(o * S + s) * inner, inner);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ TfIdfVectorizer */

typedef struct gram {
    const int64_t *v; /* n values in the pool */
    int n;
    int64_t id;       /* n-gram number, indexes ngram_indexes */
} gram;

static int gram_cmp_vals(const int64_t *a, const int64_t *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

static int gram_cmp(const void *pa, const void *pb) {
    const gram *a = pa, *b = pb;
    int r = gram_cmp_vals(a->v, b->v, a->n);
    return r ? r : (a->id > b->id) - (a->id < b->id);
}

/* Id of the n-gram key in the sorted table, -1 if absent. A repeated pool
** entry maps to its last occurrence. */
static int64_t gram_find(const gram *g, int64_t cnt, const int64_t *key, int n) {
    int64_t lo = 0, hi = cnt; /* first entry greater than key */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (gram_cmp_vals(g[mid].v, key, n) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && gram_cmp_vals(g[lo - 1].v, key, n) == 0 ? g[lo - 1].id : -1;
}

static int k_tfidf(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int np, ni, nc, nw;
    const int64_t *pool = ir_attr_ints(n, "pool_int64s", &np);
    const int64_t *idx = ir_attr_ints(n, "ngram_indexes", &ni);
    const int64_t *cnt = ir_attr_ints(n, "ngram_counts", &nc);
    const float *w = ir_attr_floats(n, "weights", &nw);
    const char *mode = ir_attr_str(n, "mode", "TF");
    int64_t mn = ir_attr_int(n, "min_gram_length", 1), mx = ir_attr_int(n, "max_gram_length", 1);
    int64_t skip = ir_attr_int(n, "max_skip_count", 0);
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, C = x->rank == 0 ? 1 : x->dims[x->rank - 1];
    int64_t out = y->dims[y->rank - 1];
    if (!pool || !idx || !cnt || tensor_numel(y) != rows * out)
        return ref_fail(c, "bad TfIdfVectorizer attributes");
    int rc = -1;
    gram *g = calloc((size_t)ni + 1, sizeof *g);
    int64_t *start = calloc((size_t)nc + 2, sizeof *start); /* table of size k: [start[k-1], start[k]) */
    int64_t *freq = calloc((size_t)(rows * out) + 1, sizeof *freq);
    int64_t *key = calloc((size_t)KILN_MIN(KILN_MAX(mx, 1), nc + 1) + 1, sizeof *key);
    if (!g || !start || !freq || !key) {
        ref_fail(c, "out of memory");
        goto done;
    }
    int64_t id = 0, ng = 0;
    for (int k = 1; k <= nc; k++) {
        int64_t b = cnt[k - 1], e = k < nc ? cnt[k] : np;
        for (int64_t p = b; p + k <= e; p += k, id++)
            if (k >= mn && k <= mx && id < ni) g[ng++] = (gram){pool + p, k, id};
        start[k] = ng;
        if (ng > start[k - 1])
            qsort(g + start[k - 1], (size_t)(ng - start[k - 1]), sizeof *g, gram_cmp);
    }
    for (int64_t r = 0; r < rows; r++) {
        const void *row = (const char *)x->data + (size_t)(r * C) * kiln_dtype_size(x->dtype);
        for (int64_t s = 1; s <= skip + 1; s++) {
            int64_t lo = s > 1 ? KILN_MAX(mn, 2) : mn; /* unigrams once, not per skip */
            for (int64_t st = 0; st < C; st++)
                for (int64_t k = 1; k <= mx && k <= nc; k++) {
                    int64_t pos = st + (k - 1) * s;
                    if (pos >= C) break;
                    key[k - 1] = dt_get_i64(x->dtype, row, (size_t)pos);
                    if (k < lo) continue;
                    int64_t f = gram_find(g + start[k - 1], start[k] - start[k - 1], key, (int)k);
                    if (f >= 0) freq[r * out + idx[f]]++;
                }
        }
    }
    float *yv = y->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < out; i++) {
            int64_t f = freq[r * out + i];
            float v = (float)f;
            if (!strcmp(mode, "IDF")) v = f > 0 ? (nw ? w[i] : 1.0f) : 0.0f;
            else if (!strcmp(mode, "TFIDF") && nw) v = w[i] * (float)f;
            yv[r * out + i] = v;
        }
    rc = 0;
done:
    free(g);
    free(start);
    free(freq);
    free(key);
    return rc;
}

/* ------------------------------------------------------------ Optional* */

static int k_opt_has(ref_ctx *c) {
    ((uint8_t *)c->out[0]->data)[0] = ref_has(c, 0);
    return 0;
}

static int k_opt_get(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->nbytes != c->out[0]->nbytes) return ref_fail(c, "output size mismatch");
    if (x->nbytes) memcpy(c->out[0]->data, x->data, x->nbytes);
    return 0;
}

/* ------------------------------------------------------- ImageDecoder */

static int k_image_decoder(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (x->dtype != KILN_DTYPE_UINT8 || x->rank != 1)
        return ref_fail(c, "encoded_stream must be a 1-D uint8 tensor");
    const char *pf = ir_attr_str(c->node, "pixel_format", "RGB");
    img_pixel_format fmt = !strcmp(pf, "BGR") ? IMG_BGR
                         : !strcmp(pf, "Grayscale") ? IMG_GRAY : IMG_RGB;
    int64_t limit = 0;
    const char *env = getenv("KILN_IMAGE_MAX_PIXELS");
    if (env && *env) limit = strtoll(env, NULL, 10);
    uint8_t *pix = NULL;
    int64_t h = 0, w = 0;
    char err[384];
    if (img_decode(x->data, (size_t)x->dims[0], fmt, limit, &pix, &h, &w, err, sizeof err))
        return ref_fail(c, "%s", err);
    int64_t od[3] = {h, w, fmt == IMG_GRAY ? 1 : 3};
    if (ref_alloc_out(c, 0, KILN_DTYPE_UINT8, 3, od)) {
        free(pix);
        return -1;
    }
    memcpy(c->out[0]->data, pix, (size_t)(h * w * od[2]));
    free(pix);
    return 0;
}

const ref_kernel ref_kernels_extra[] = {
    {OP_NegativeLogLikelihoodLoss, k_nll},
    {OP_SoftmaxCrossEntropyLoss, k_sce},
    {OP_Scan, k_scan},
    {OP_CumProd, k_cumprod},
    {OP_BitCast, k_bitcast},
    {OP_TensorScatter, k_tensor_scatter},
    {OP_DFT, ref_extra_dft},
    {OP_STFT, ref_extra_stft},
    {OP_HannWindow, ref_extra_hann},
    {OP_HammingWindow, ref_extra_hamming},
    {OP_BlackmanWindow, ref_extra_blackman},
    {OP_MelWeightMatrix, ref_extra_mel},
    {OP_DeformConv, ref_extra_deform_conv},
    {OP_CausalConvWithState, ref_extra_causal_conv},
    {OP_LinearAttention, ref_extra_linear_attention},
    {OP_TfIdfVectorizer, k_tfidf},
    {OP_OptionalHasElement, k_opt_has},
    {OP_OptionalGetElement, k_opt_get},
    {OP_ImageDecoder, k_image_decoder},
    {OP_NONE, NULL},
};
