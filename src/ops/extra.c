/* extra.c: schemas and shape inference for the "extra" family: losses
** (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss), Scan, CumProd,
** BitCast, TensorScatter, signal processing (DFT, STFT, windows,
** MelWeightMatrix), DeformConv, CausalConvWithState, LinearAttention and
** ImageDecoder. */
#include "op.h"

/* ------------------------------------------------------------ helpers */

static bool is_float_dt(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_FLOAT64;
}

static bool known_dt(const ir_type *t) {
    return t && t->dtype != KILN_DTYPE_UNDEFINED;
}

static int require_index(infer_ctx *c, int i, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (known_dt(t) && t->dtype != KILN_DTYPE_INT32 && t->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "%s must be int32 or int64, got %s", what,
                       kiln_dtype_name(t->dtype));
    return 0;
}

static int require_float_named(infer_ctx *c, int i, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (known_dt(t) && !is_float_dt(t->dtype))
        return ic_fail(c, "%s must be a float tensor, got %s", what,
                       kiln_dtype_name(t->dtype));
    return 0;
}

/* A one-element input must not have more elements than one. */
static int require_scalarish(infer_ctx *c, int i, const char *what) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0) return 0;
    if (t->rank > 1) return ic_fail(c, "%s must be a scalar, got rank %d", what, t->rank);
    if (t->rank == 1 && t->dims[0] >= 0 && t->dims[0] != 1)
        return ic_fail(c, "%s must hold one value, got %lld", what,
                       (long long)t->dims[0]);
    return 0;
}

/* Value of a one-element integer input: 1 and *v when concrete, 2 with *v a
** symbolic dim when only its symbol is known, 0 when unknown. */
static int scalar_int(const infer_ctx *c, int i, int64_t *v) {
    const kiln_tensor *t = ic_const(c, i);
    if (t) {
        if (!dtype_is_int(t->dtype) || tensor_numel(t) != 1) return 0;
        *v = dt_get_i64(t->dtype, t->data, 0);
        return 1;
    }
    int64_t vals[2];
    if (ic_int_values(c, i, vals, 1) == 1) {
        *v = vals[0];
        return vals[0] >= 0 ? 1 : 2;
    }
    return 0;
}

static void set_unknown(infer_ctx *c, int o, kiln_dtype dt) {
    ic_set_out(c, o, dt, -1, NULL);
}

/* output_datatype of the window / mel ops: numeric, not bool. */
static int out_datatype(infer_ctx *c, kiln_dtype *dt) {
    int64_t v = ir_attr_int(c->node, "output_datatype", KILN_DTYPE_FLOAT32);
    if (!dtype_is_valid((int)v) || v == KILN_DTYPE_BOOL || v == KILN_DTYPE_STRING ||
        !dtype_is_numeric((kiln_dtype)v) || v == KILN_DTYPE_COMPLEX64 ||
        v == KILN_DTYPE_COMPLEX128 || kiln_dtype_size((kiln_dtype)v) == 0 ||
        (kiln_dtype_size((kiln_dtype)v) == 1 && dtype_is_float((kiln_dtype)v)))
        return ic_fail(c, "output_datatype %lld is not allowed", (long long)v);
    *dt = (kiln_dtype)v;
    return 0;
}

/* ------------------------------------------------------------ losses */

static int reduction_kind(infer_ctx *c) {
    const char *r = ir_attr_str(c->node, "reduction", "mean");
    if (!strcmp(r, "none")) return 0;
    if (!strcmp(r, "sum")) return 1;
    if (!strcmp(r, "mean")) return 2;
    return ic_fail(c, "reduction '%s' is not one of none, sum, mean", r);
}

/* Shared by NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: input
** (N, C, d1..dk), target (N, d1..dk), optional weight (C). */
static int infer_loss(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *tg = ic_in(c, 1), *w = ic_in(c, 2);
    if (!x || !tg) return ic_fail(c, "needs input and target");
    if (require_float_named(c, 0, "input") || require_index(c, 1, "target") ||
        require_float_named(c, 2, "weight") || ic_require_same_dtype(c, 0, 2))
        return -1;
    int red = reduction_kind(c);
    if (red < 0) return -1;
    if (x->rank >= 0 && x->rank < 2)
        return ic_fail(c, "input must have rank >= 2 (N, C, ...), got %d", x->rank);
    if (x->rank >= 0 && tg->rank >= 0) {
        if (tg->rank != x->rank - 1)
            return ic_fail(c, "target rank %d must be input rank %d minus one",
                           tg->rank, x->rank);
        for (int d = 0; d < tg->rank; d++) {
            int64_t a = tg->dims[d], b = x->dims[d == 0 ? 0 : d + 1];
            if (a >= 0 && b >= 0 && a != b)
                return ic_fail(c, "target dim %d is %lld, input has %lld", d,
                               (long long)a, (long long)b);
        }
    }
    if (w && w->rank >= 0) {
        if (w->rank != 1) return ic_fail(c, "weight must have rank 1, got %d", w->rank);
        if (x->rank >= 0 && x->dims[1] >= 0 && w->dims[0] >= 0 &&
            x->dims[1] != w->dims[0])
            return ic_fail(c, "weight has %lld entries for %lld classes",
                           (long long)w->dims[0], (long long)x->dims[1]);
    }
    if (red != 0) {
        ic_set_out(c, 0, x->dtype, 0, NULL);
    } else if (tg->rank >= 0) {
        ic_set_out(c, 0, x->dtype, tg->rank, tg->dims);
        if (x->rank >= 0) /* prefer concrete dims from either side */
            for (int d = 0; d < tg->rank; d++)
                if (c->out[0]->dims[d] < 0) c->out[0]->dims[d] = x->dims[d ? d + 1 : 0];
    } else if (x->rank >= 0) {
        int64_t dims[KILN_MAX_RANK];
        dims[0] = x->dims[0];
        for (int d = 2; d < x->rank; d++) dims[d - 1] = x->dims[d];
        ic_set_out(c, 0, x->dtype, x->rank - 1, dims);
    } else {
        set_unknown(c, 0, x->dtype);
    }
    if (c->n_out > 1) ic_copy_type(c, 1, 0); /* log_prob */
    return 0;
}

/* ------------------------------------------------------------ Scan */

/* Merges an initial-state type with the body's output type. */
static void merge_state(infer_ctx *c, const ir_type *a, const ir_type *b,
                        ir_type *out) {
    *out = *a;
    if (a->dtype == KILN_DTYPE_UNDEFINED) out->dtype = b->dtype;
    if (a->rank < 0) {
        *out = *b;
        if (out->dtype == KILN_DTYPE_UNDEFINED) out->dtype = a->dtype;
        if (b->rank < 0) return;
        for (int d = 0; d < b->rank; d++)
            if (b->dims[d] < 0) out->dims[d] = ic_new_sym(c);
        return;
    }
    if (b->rank >= 0 && a->rank != b->rank) {
        out->rank = -1;
        return;
    }
    if (b->rank >= 0)
        for (int d = 0; d < a->rank; d++)
            if (a->dims[d] != b->dims[d] && a->dims[d] < 0 && b->dims[d] >= 0)
                out->dims[d] = b->dims[d];
}

static int infer_scan(infer_ctx *c) {
    const ir_node *n = c->node;
    const ir_graph *body = ir_attr_graph(n, "body");
    if (!body) return ic_fail(c, "needs graph attribute body");
    int64_t m = ir_attr_int(n, "num_scan_inputs", -1);
    bool v8 = c->opset < 9;
    int first = v8 ? 1 : 0; /* opset 8 starts with sequence_lens */
    int total = c->n_in - first;
    if (m < 1 || m > total)
        return ic_fail(c, "num_scan_inputs %lld is invalid for %d inputs",
                       (long long)m, total);
    int ns = total - (int)m, nm = (int)m;
    if (body->n_inputs != ns + nm)
        return ic_fail(c, "body takes %d inputs, expected %d (%d states, %d scan "
                       "inputs)", body->n_inputs, ns + nm, ns, nm);
    int nk = body->n_outputs - ns;
    if (nk < 0 || c->n_out > ns + nk)
        return ic_fail(c, "body has %d outputs, the node %d with %d states",
                       body->n_outputs, c->n_out, ns);
    for (int i = 0; i < total; i++)
        if (!ic_has(c, first + i))
            return ic_fail(c, "state/scan input %d is missing", i);
    int cnt = 0;
    const int64_t *in_axes = v8 ? NULL : ir_attr_ints(n, "scan_input_axes", &cnt);
    if (in_axes && cnt != nm)
        return ic_fail(c, "scan_input_axes has %d entries for %d scan inputs", cnt, nm);
    const int64_t *in_dirs = ir_attr_ints(n, v8 ? "directions" : "scan_input_directions", &cnt);
    if (in_dirs && cnt != nm)
        return ic_fail(c, "scan input directions has %d entries for %d scan inputs",
                       cnt, nm);
    const int64_t *out_axes = NULL, *out_dirs = NULL;
    if (!v8) {
        out_axes = ir_attr_ints(n, "scan_output_axes", &cnt);
        if (out_axes && cnt != nk)
            return ic_fail(c, "scan_output_axes has %d entries for %d scan outputs",
                           cnt, nk);
        out_dirs = ir_attr_ints(n, "scan_output_directions", &cnt);
        if (out_dirs && cnt != nk)
            return ic_fail(c, "scan_output_directions has %d entries for %d scan "
                           "outputs", cnt, nk);
    }
    for (int j = 0; j < nm; j++)
        if (in_dirs && in_dirs[j] != 0 && in_dirs[j] != 1)
            return ic_fail(c, "scan input direction %lld must be 0 or 1",
                           (long long)in_dirs[j]);
    for (int k = 0; out_dirs && k < nk; k++)
        if (out_dirs[k] != 0 && out_dirs[k] != 1)
            return ic_fail(c, "scan output direction %lld must be 0 or 1",
                           (long long)out_dirs[k]);
    if (v8 && ic_has(c, 0)) {
        const ir_type *sl = ic_in(c, 0);
        if (known_dt(sl) && sl->dtype != KILN_DTYPE_INT64)
            return ic_fail(c, "sequence_lens must be int64, got %s",
                           kiln_dtype_name(sl->dtype));
    }
    /* Sequence length (and opset-8 batch) from the first scan input. */
    int64_t seq = 0, batch = 0;
    bool have_seq = false, have_batch = false;
    for (int j = 0; j < nm; j++) {
        const ir_type *t = ic_in(c, first + ns + j);
        if (t->rank < 0) continue;
        int ax;
        if (v8) {
            if (t->rank < 2)
                return ic_fail(c, "scan input %d needs rank >= 2 (batch, sequence)", j);
            ax = 1;
            if (!have_batch || (batch < 0 && t->dims[0] >= 0)) batch = t->dims[0];
            have_batch = true;
        } else {
            if (t->rank < 1) return ic_fail(c, "scan input %d must not be a scalar", j);
            if (ic_axis(c, in_axes ? in_axes[j] : 0, t->rank, &ax)) return -1;
        }
        int64_t L = t->dims[ax];
        if (have_seq && seq >= 0 && L >= 0 && L != seq)
            return ic_fail(c, "scan inputs disagree on the sequence length (%lld vs "
                           "%lld)", (long long)seq, (long long)L);
        if (!have_seq || (seq < 0 && L >= 0)) seq = L;
        have_seq = true;
    }
    if (!have_seq) seq = ic_new_sym(c);
    if (v8 && !have_batch) batch = ic_new_sym(c);
    for (int i = 0; i < c->n_out; i++) {
        ir_type *o = c->out[i];
        const ir_type *bo = &body->outputs[i]->type;
        if (i < ns) {
            /* opset 8 states keep their batch dim, which the body never sees */
            if (v8) *o = *ic_in(c, first + i);
            else merge_state(c, ic_in(c, first + i), bo, o);
            if (o->dtype == KILN_DTYPE_UNDEFINED) o->dtype = bo->dtype;
        } else {
            int k = i - ns, extra = v8 ? 2 : 1;
            o->dtype = bo->dtype;
            if (bo->rank < 0 || bo->rank + extra > KILN_MAX_RANK) {
                o->rank = -1;
            } else if (v8) {
                o->rank = bo->rank + 2;
                o->dims[0] = batch;
                o->dims[1] = seq;
                memcpy(o->dims + 2, bo->dims, (size_t)bo->rank * sizeof *bo->dims);
            } else {
                int r = bo->rank + 1, ax;
                if (ic_axis(c, out_axes ? out_axes[k] : 0, r, &ax)) return -1;
                o->rank = r;
                for (int d = 0, s = 0; d < r; d++)
                    o->dims[d] = d == ax ? seq : bo->dims[s++];
            }
        }
        if (c->runtime) o->rank = -1; /* the kernel sizes outputs */
    }
    return 0;
}

/* ------------------------------------------------------------ CumProd */

static int infer_cumprod(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1)) return ic_fail(c, "needs x and axis");
    if (known_dt(x)) {
        switch (x->dtype) {
        case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64: case KILN_DTYPE_INT32:
        case KILN_DTYPE_INT64: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_FLOAT32:
        case KILN_DTYPE_FLOAT64: case KILN_DTYPE_BFLOAT16: break;
        default:
            return ic_fail(c, "x of type %s is not supported", kiln_dtype_name(x->dtype));
        }
    }
    if (require_index(c, 1, "axis") || require_scalarish(c, 1, "axis")) return -1;
    int64_t a;
    if (scalar_int(c, 1, &a) == 1 && ic_const(c, 1) && x->rank >= 0) {
        int ax;
        if (ic_axis(c, a, x->rank ? x->rank : 1, &ax)) return -1;
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ BitCast */

static int infer_bitcast(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "needs input");
    const ir_attr *a = ir_attr_find(c->node, "to");
    if (!a) return ic_fail(c, "needs attribute 'to'");
    int64_t to = a->i;
    if (!dtype_is_valid((int)to) || to == KILN_DTYPE_UNDEFINED || to == KILN_DTYPE_STRING)
        return ic_fail(c, "'to' = %lld is not a supported element type", (long long)to);
    if (known_dt(x)) {
        if (x->dtype == KILN_DTYPE_STRING)
            return ic_fail(c, "string tensors cannot be bit-cast");
        size_t a1, b1;
        /* Same bit width: compare the size of two elements (4-bit types). */
        if (!dtype_nbytes(x->dtype, 2, &a1) || !dtype_nbytes((kiln_dtype)to, 2, &b1) ||
            a1 != b1)
            return ic_fail(c, "BitCast from %s to %s changes the bit width",
                           kiln_dtype_name(x->dtype), kiln_dtype_name((kiln_dtype)to));
    }
    ic_copy_type(c, 0, 0);
    c->out[0]->dtype = (kiln_dtype)to;
    return 0;
}

/* ------------------------------------------------------------ TensorScatter */

static int infer_tensor_scatter(infer_ctx *c) {
    const ir_type *p = ic_in(c, 0), *u = ic_in(c, 1), *w = ic_in(c, 2);
    if (!p || !u) return ic_fail(c, "needs past_cache and update");
    if (ic_require_same_dtype(c, 0, 1)) return -1;
    const char *mode = ir_attr_str(c->node, "mode", "linear");
    if (strcmp(mode, "linear") && strcmp(mode, "circular"))
        return ic_fail(c, "mode '%s' is not linear or circular", mode);
    if (known_dt(w) && w->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "write_indices must be int64, got %s", kiln_dtype_name(w->dtype));
    if (p->rank >= 0) {
        int ax;
        if (p->rank < 2) return ic_fail(c, "past_cache needs rank >= 2, got %d", p->rank);
        if (ic_axis(c, ir_attr_int(c->node, "axis", -2), p->rank, &ax)) return -1;
        if (ax == 0) return ic_fail(c, "axis must not be the batch axis");
        if (u->rank >= 0) {
            if (u->rank != p->rank)
                return ic_fail(c, "update rank %d differs from past_cache rank %d",
                               u->rank, p->rank);
            for (int d = 0; d < p->rank; d++) {
                int64_t a = p->dims[d], b = u->dims[d];
                if (a < 0 || b < 0) continue;
                if (d == ax ? b > a : a != b)
                    return ic_fail(c, "update dim %d is %lld, past_cache has %lld",
                                   d, (long long)b, (long long)a);
            }
        }
        if (w && w->rank >= 0 &&
            (w->rank != 1 || (w->dims[0] >= 0 && p->dims[0] >= 0 &&
                              w->dims[0] != p->dims[0])))
            return ic_fail(c, "write_indices must have shape (batch_size)");
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ DFT */

static int infer_dft(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "needs input");
    if (require_float_named(c, 0, "input") || require_index(c, 1, "dft_length") ||
        require_scalarish(c, 1, "dft_length"))
        return -1;
    bool inv = ir_attr_int(c->node, "inverse", 0) != 0;
    bool one = ir_attr_int(c->node, "onesided", 0) != 0;
    if (x->rank < 0) {
        set_unknown(c, 0, x->dtype);
        return 0;
    }
    int r = x->rank;
    if (r < 2) return ic_fail(c, "input needs rank >= 2, got %d", r);
    if (x->dims[r - 1] >= 0 && x->dims[r - 1] != 1 && x->dims[r - 1] != 2)
        return ic_fail(c, "last dim must be 1 (real) or 2 (complex), got %lld",
                       (long long)x->dims[r - 1]);
    if (inv && one && x->dims[r - 1] == 1)
        return ic_fail(c, "the inverse one-sided DFT needs complex input");
    int64_t axis;
    int known_axis = 1;
    if (c->opset >= 20) {
        axis = -2;
        if (ic_has(c, 2)) {
            if (require_scalarish(c, 2, "axis")) return -1;
            const ir_type *at = ic_in(c, 2);
            if (known_dt(at) && at->dtype != KILN_DTYPE_INT64)
                return ic_fail(c, "axis must be int64");
            known_axis = ic_const(c, 2) ? scalar_int(c, 2, &axis) : 0;
        }
    } else {
        axis = ir_attr_int(c->node, "axis", 1);
    }
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, (size_t)r * sizeof *dims);
    dims[r - 1] = inv && one ? 1 : 2;
    if (!known_axis) {
        for (int d = 0; d < r - 1; d++) dims[d] = ic_new_sym(c);
        ic_set_out(c, 0, x->dtype, r, dims);
        return 0;
    }
    if (axis < -r || axis > r - 2 || axis == -1)
        return ic_fail(c, "axis %lld is out of range for rank %d", (long long)axis, r);
    int ax = (int)(axis < 0 ? axis + r : axis);
    int64_t n = x->dims[ax], L = -1;
    if (ic_has(c, 1)) {
        int k = scalar_int(c, 1, &L);
        if (k == 1 && L < 1)
            return ic_fail(c, "dft_length must be positive, got %lld", (long long)L);
        if (k == 0) L = ic_new_sym(c);
    } else if (inv && one) {
        /* the full signal is 2 * (n - 1) long */
        if (n >= 0 && n < 2)
            return ic_fail(c, "axis dim %lld is too short for the inverse one-sided "
                           "DFT", (long long)n);
        if (n < 0) L = ic_new_sym(c);
        else if (ic_dim_mul(c, 2, n - 1, &L, "inverse one-sided DFT length")) return -1;
    } else {
        L = n;
    }
    if (!inv && one) dims[ax] = L >= 0 ? L / 2 + 1 : ic_new_sym(c);
    else dims[ax] = L;
    ic_set_out(c, 0, x->dtype, r, dims);
    return 0;
}

/* ------------------------------------------------------------ STFT */

static int infer_stft(infer_ctx *c) {
    const ir_type *s = ic_in(c, 0), *w = ic_in(c, 2);
    if (!s || !ic_has(c, 1)) return ic_fail(c, "needs signal and frame_step");
    if (require_float_named(c, 0, "signal") || require_index(c, 1, "frame_step") ||
        require_scalarish(c, 1, "frame_step") || ic_require_same_dtype(c, 0, 2) ||
        require_index(c, 3, "frame_length") || require_scalarish(c, 3, "frame_length"))
        return -1;
    bool one = ir_attr_int(c->node, "onesided", 1) != 0;
    /* A rank-2 (batch, length) signal is real; torch.onnx.export writes it
    ** and onnxruntime accepts it, so it is read as (batch, length, 1). */
    if (s->rank >= 0 && s->rank != 3 && s->rank != 2)
        return ic_fail(c, "signal must be (batch, length[, 1 or 2]), got rank %d", s->rank);
    if (s->rank == 3 && s->dims[2] >= 0 && s->dims[2] != 1 && s->dims[2] != 2)
        return ic_fail(c, "signal last dim must be 1 or 2, got %lld",
                       (long long)s->dims[2]);
    if (w && w->rank >= 0 && w->rank != 1)
        return ic_fail(c, "window must have rank 1, got %d", w->rank);
    int64_t fl = -1, step = -1;
    int kf = 0;
    if (ic_has(c, 3)) kf = scalar_int(c, 3, &fl);
    else if (w && w->rank == 1) fl = w->dims[0], kf = fl >= 0 ? 1 : 2;
    else if (!w && s->rank >= 2) fl = s->dims[1], kf = fl >= 0 ? 1 : 2;
    if (kf == 1 && fl < 1)
        return ic_fail(c, "frame_length must be positive, got %lld", (long long)fl);
    if (kf == 1 && w && w->rank == 1 && w->dims[0] >= 0 && w->dims[0] != fl)
        return ic_fail(c, "window length %lld differs from frame_length %lld",
                       (long long)w->dims[0], (long long)fl);
    int ks = scalar_int(c, 1, &step);
    if (ks == 1 && step < 1)
        return ic_fail(c, "frame_step must be positive, got %lld", (long long)step);
    int64_t dims[4];
    dims[0] = s->rank >= 2 ? s->dims[0] : ic_new_sym(c);
    int64_t len = s->rank >= 2 ? s->dims[1] : -1;
    if (kf == 1 && ks == 1 && len >= 0) {
        if (len < fl)
            return ic_fail(c, "signal length %lld is shorter than frame_length %lld",
                           (long long)len, (long long)fl);
        dims[1] = 1 + (len - fl) / step;
    } else {
        dims[1] = ic_new_sym(c);
    }
    if (kf == 1) dims[2] = one ? fl / 2 + 1 : fl;
    else if (kf == 2 && !one) dims[2] = fl;
    else dims[2] = ic_new_sym(c);
    dims[3] = 2;
    ic_set_out(c, 0, s->dtype, 4, dims);
    return 0;
}

/* ------------------------------------------------------------ windows */

static int infer_window(infer_ctx *c) {
    if (!ic_has(c, 0)) return ic_fail(c, "needs size");
    if (require_index(c, 0, "size") || require_scalarish(c, 0, "size")) return -1;
    int64_t p = ir_attr_int(c->node, "periodic", 1);
    if (p != 0 && p != 1) return ic_fail(c, "periodic must be 0 or 1");
    kiln_dtype dt;
    if (out_datatype(c, &dt)) return -1;
    int64_t n;
    int k = scalar_int(c, 0, &n);
    if (k == 1 && n < 0) return ic_fail(c, "size must not be negative, got %lld", (long long)n);
    if (k == 0) n = ic_new_sym(c);
    ic_set_out(c, 0, dt, 1, &n);
    return 0;
}

static int infer_mel(infer_ctx *c) {
    for (int i = 0; i < 5; i++)
        if (!ic_has(c, i)) return ic_fail(c, "needs 5 inputs");
    if (require_index(c, 0, "num_mel_bins") || require_index(c, 1, "dft_length") ||
        require_index(c, 2, "sample_rate") ||
        require_float_named(c, 3, "lower_edge_hertz") ||
        require_float_named(c, 4, "upper_edge_hertz"))
        return -1;
    for (int i = 0; i < 5; i++)
        if (require_scalarish(c, i, "MelWeightMatrix input")) return -1;
    kiln_dtype dt;
    if (out_datatype(c, &dt)) return -1;
    int64_t mel, len, dims[2];
    int km = scalar_int(c, 0, &mel), kl = scalar_int(c, 1, &len);
    if (km == 1 && mel < 1) return ic_fail(c, "num_mel_bins must be positive");
    if (kl == 1 && len < 1) return ic_fail(c, "dft_length must be positive");
    dims[0] = kl == 1 ? len / 2 + 1 : ic_new_sym(c);
    dims[1] = km ? mel : ic_new_sym(c);
    ic_set_out(c, 0, dt, 2, dims);
    return 0;
}

/* ------------------------------------------------------------ DeformConv */

static int infer_deform_conv(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *off = ic_in(c, 2);
    const ir_type *b = ic_in(c, 3), *mk = ic_in(c, 4);
    if (!x || !w || !off) return ic_fail(c, "needs X, W and offset");
    for (int i = 0; i < 5; i++)
        if (require_float_named(c, i, "DeformConv input") ||
            ic_require_same_dtype(c, 0, i))
            return -1;
    int64_t group = ir_attr_int(c->node, "group", 1);
    int64_t og = ir_attr_int(c->node, "offset_group", 1);
    if (group < 1 || og < 1) return ic_fail(c, "group and offset_group must be >= 1");
    if (x->rank < 0 || w->rank < 0) {
        set_unknown(c, 0, x->dtype);
        return 0;
    }
    if (x->rank < 3) return ic_fail(c, "X needs rank >= 3, got %d", x->rank);
    if (w->rank != x->rank)
        return ic_fail(c, "W rank %d differs from X rank %d", w->rank, x->rank);
    int nd = x->rank - 2, cnt;
    const int64_t *ks = ir_attr_ints(c->node, "kernel_shape", &cnt);
    if (ks && cnt != nd) return ic_fail(c, "kernel_shape needs %d values", nd);
    const int64_t *st = ir_attr_ints(c->node, "strides", &cnt);
    if (st && cnt != nd) return ic_fail(c, "strides needs %d values", nd);
    const int64_t *dl = ir_attr_ints(c->node, "dilations", &cnt);
    if (dl && cnt != nd) return ic_fail(c, "dilations needs %d values", nd);
    const int64_t *pd = ir_attr_ints(c->node, "pads", &cnt);
    if (pd && cnt != 2 * nd) return ic_fail(c, "pads needs %d values", 2 * nd);
    int64_t C = x->dims[1], oc = w->dims[0];
    int64_t wcg = -1;
    if (w->dims[1] >= 0 && ic_dim_mul(c, w->dims[1], group, &wcg, "W channels x group"))
        return -1;
    if (C >= 0 && wcg >= 0 && C != wcg)
        return ic_fail(c, "X has %lld channels, W expects %lld x group %lld",
                       (long long)C, (long long)w->dims[1], (long long)group);
    if (oc >= 0 && oc % group)
        return ic_fail(c, "output channels %lld not divisible by group %lld",
                       (long long)oc, (long long)group);
    if (C >= 0 && C % og)
        return ic_fail(c, "channels %lld not divisible by offset_group %lld",
                       (long long)C, (long long)og);
    int64_t dims[KILN_MAX_RANK], kprod = 1;
    bool kknown = true;
    dims[0] = x->dims[0];
    dims[1] = oc;
    for (int d = 0; d < nd; d++) {
        int64_t k = ks ? ks[d] : w->dims[2 + d];
        int64_t s = st ? st[d] : 1, di = dl ? dl[d] : 1;
        int64_t pb = pd ? pd[d] : 0, pe = pd ? pd[nd + d] : 0;
        if ((ks && k < 1) || s < 1 || di < 1 || pb < 0 || pe < 0)
            return ic_fail(c, "bad kernel_shape/strides/dilations/pads");
        /* Bounded so the size arithmetic below cannot overflow. */
        if (k >= ((int64_t)1 << 31) || s >= ((int64_t)1 << 31) ||
            di >= ((int64_t)1 << 31) || pb >= ((int64_t)1 << 31) ||
            pe >= ((int64_t)1 << 31) || (x->dims[2 + d] >= ((int64_t)1 << 40)))
            return ic_fail(c, "kernel_shape/strides/dilations/pads or input size "
                              "too large");
        if (ks && w->dims[2 + d] >= 0 && w->dims[2 + d] != k)
            return ic_fail(c, "kernel_shape differs from W's shape");
        if (k < 0) kknown = false;
        else if (ic_dim_mul(c, kprod, k, &kprod, "kernel size"))
            return -1;
        int64_t in = x->dims[2 + d];
        if (in >= 0 && k >= 0) {
            int64_t span = (k - 1) * di + 1, o = in + pb + pe - span;
            if (o < 0) return ic_fail(c, "kernel is larger than the padded input");
            dims[2 + d] = o / s + 1;
        } else {
            dims[2 + d] = off->rank == x->rank ? off->dims[2 + d] : ic_new_sym(c);
        }
    }
    if (off->rank >= 0) {
        if (off->rank != x->rank)
            return ic_fail(c, "offset rank %d differs from X rank %d", off->rank, x->rank);
        int64_t want_ch;
        if (kknown && (ic_dim_mul(c, og, kprod, &want_ch, "offset channel count") ||
                       ic_dim_mul(c, want_ch, nd, &want_ch, "offset channel count")))
            return -1;
        if (kknown && off->dims[1] >= 0 && off->dims[1] != want_ch)
            return ic_fail(c, "offset has %lld channels, expected %lld",
                           (long long)off->dims[1], (long long)want_ch);
        for (int d = 0; d < nd; d++)
            if (off->dims[2 + d] >= 0 && dims[2 + d] >= 0 &&
                off->dims[2 + d] != dims[2 + d])
                return ic_fail(c, "offset spatial dim %d is %lld, output has %lld", d,
                               (long long)off->dims[2 + d], (long long)dims[2 + d]);
    }
    if (mk && mk->rank >= 0) {
        if (mk->rank != x->rank)
            return ic_fail(c, "mask rank %d differs from X rank %d", mk->rank, x->rank);
        int64_t want_ch;
        if (kknown && ic_dim_mul(c, og, kprod, &want_ch, "mask channel count")) return -1;
        if (kknown && mk->dims[1] >= 0 && mk->dims[1] != want_ch)
            return ic_fail(c, "mask has %lld channels, expected %lld",
                           (long long)mk->dims[1], (long long)want_ch);
    }
    if (b && b->rank >= 0 && (b->rank != 1 || (b->dims[0] >= 0 && oc >= 0 &&
                                                b->dims[0] != oc)))
        return ic_fail(c, "B must have shape (output channels)");
    ic_set_out(c, 0, x->dtype, x->rank, dims);
    return 0;
}

/* ------------------------------------------------------------ CausalConvWithState */

static bool is_cc_dt(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

static int infer_causal_conv(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *b = ic_in(c, 2), *ps = ic_in(c, 3);
    if (!x || !w) return ic_fail(c, "needs input and weight");
    if (known_dt(x) && !is_cc_dt(x->dtype))
        return ic_fail(c, "input type %s is not supported", kiln_dtype_name(x->dtype));
    for (int i = 1; i < 4; i++)
        if (ic_require_same_dtype(c, 0, i)) return -1;
    const char *act = ir_attr_str(c->node, "activation", "none");
    if (strcmp(act, "none") && strcmp(act, "silu") && strcmp(act, "swish"))
        return ic_fail(c, "activation '%s' is not none, silu or swish", act);
    if (x->rank >= 0 && x->rank != 3)
        return ic_fail(c, "input must be (batch, channels, length), got rank %d", x->rank);
    if (w->rank >= 0 && w->rank != 3)
        return ic_fail(c, "weight must be (channels, 1, k), got rank %d", w->rank);
    int64_t B = x->rank == 3 ? x->dims[0] : ic_new_sym(c);
    int64_t C = x->rank == 3 ? x->dims[1] : ic_new_sym(c);
    int64_t K = w->rank == 3 ? w->dims[2] : -1;
    if (w->rank == 3) {
        if (w->dims[1] >= 0 && w->dims[1] != 1)
            return ic_fail(c, "weight middle dim must be 1, got %lld", (long long)w->dims[1]);
        if (K == 0) return ic_fail(c, "kernel size must be >= 1");
        if (C >= 0 && w->dims[0] >= 0 && w->dims[0] != C)
            return ic_fail(c, "weight has %lld channels, input %lld",
                           (long long)w->dims[0], (long long)C);
    }
    if (b && b->rank >= 0 && (b->rank != 1 || (b->dims[0] >= 0 && C >= 0 &&
                                                b->dims[0] != C)))
        return ic_fail(c, "bias must have shape (channels)");
    int64_t sd[3] = {B, C, K >= 1 ? K - 1 : -1};
    if (ps && ps->rank >= 0) {
        if (ps->rank != 3) return ic_fail(c, "past_state must have rank 3");
        for (int d = 0; d < 3; d++) {
            if (ps->dims[d] >= 0 && sd[d] >= 0 && ps->dims[d] != sd[d])
                return ic_fail(c, "past_state dim %d is %lld, expected %lld", d,
                               (long long)ps->dims[d], (long long)sd[d]);
            if (sd[d] < 0) sd[d] = ps->dims[d];
        }
    }
    if (sd[2] < 0) sd[2] = ic_new_sym(c);
    if (x->rank == 3) ic_copy_type(c, 0, 0);
    else set_unknown(c, 0, x->dtype);
    if (c->n_out > 1) ic_set_out(c, 1, x->dtype, 3, sd);
    return 0;
}

/* ------------------------------------------------------------ LinearAttention */

static int la_rule(const char *r) {
    if (!strcmp(r, "linear")) return 0;
    if (!strcmp(r, "gated")) return 1;
    if (!strcmp(r, "delta")) return 2;
    if (!strcmp(r, "gated_delta")) return 3;
    return -1;
}

static int infer_linear_attention(infer_ctx *c) {
    const ir_type *q = ic_in(c, 0), *k = ic_in(c, 1), *v = ic_in(c, 2);
    const ir_type *ps = ic_in(c, 3), *g = ic_in(c, 4), *be = ic_in(c, 5);
    if (!q || !k || !v) return ic_fail(c, "needs query, key and value");
    if (known_dt(q) && !is_cc_dt(q->dtype))
        return ic_fail(c, "query type %s is not supported", kiln_dtype_name(q->dtype));
    if (known_dt(ps) && !is_cc_dt(ps->dtype))
        return ic_fail(c, "past_state type %s is not supported", kiln_dtype_name(ps->dtype));
    if (ic_require_same_dtype(c, 0, 1) || ic_require_same_dtype(c, 0, 2) ||
        ic_require_same_dtype(c, 0, 4) || ic_require_same_dtype(c, 0, 5))
        return -1;
    int rule = la_rule(ir_attr_str(c->node, "update_rule", "gated_delta"));
    if (rule < 0) return ic_fail(c, "update_rule must be linear, gated, delta or gated_delta");
    int64_t hq = ir_attr_int(c->node, "q_num_heads", 0);
    int64_t hkv = ir_attr_int(c->node, "kv_num_heads", 0);
    if (hq < 1 || hkv < 1 || hq % hkv)
        return ic_fail(c, "q_num_heads (%lld) must be a positive multiple of "
                       "kv_num_heads (%lld)", (long long)hq, (long long)hkv);
    bool gating = rule == 1 || rule == 3, delta = rule >= 2;
    if (gating != (g != NULL))
        return ic_fail(c, "update_rule %s decay", gating ? "requires" : "forbids");
    if (delta != (be != NULL))
        return ic_fail(c, "update_rule %s beta", delta ? "requires" : "forbids");
    const ir_type *all[6] = {q, k, v, NULL, g, be};
    for (int i = 0; i < 6; i++)
        if (all[i] && all[i]->rank >= 0 && all[i]->rank != 3)
            return ic_fail(c, "input %d must have rank 3 (B, T, H*D), got %d", i,
                           all[i]->rank);
    int64_t dk = -1, dv = -1;
    if (q->rank == 3 && q->dims[2] >= 0) {
        if (q->dims[2] % hq) return ic_fail(c, "query last dim not divisible by q_num_heads");
        dk = q->dims[2] / hq;
    }
    if (k->rank == 3 && k->dims[2] >= 0) {
        if (k->dims[2] % hkv || (dk >= 0 && k->dims[2] != hkv * dk))
            return ic_fail(c, "key last dim %lld must be kv_num_heads * d_k",
                           (long long)k->dims[2]);
    }
    if (v->rank == 3 && v->dims[2] >= 0) {
        if (v->dims[2] % hkv)
            return ic_fail(c, "value last dim not divisible by kv_num_heads");
        dv = v->dims[2] / hkv;
    }
    if (g && g->rank == 3 && g->dims[2] >= 0 && g->dims[2] != hkv &&
        (dk < 0 || g->dims[2] != hkv * dk))
        return ic_fail(c, "decay last dim %lld must be kv_num_heads or kv_num_heads*d_k",
                       (long long)g->dims[2]);
    if (be && be->rank == 3 && be->dims[2] >= 0 && be->dims[2] != hkv && be->dims[2] != 1)
        return ic_fail(c, "beta last dim %lld must be kv_num_heads or 1",
                       (long long)be->dims[2]);
    int64_t B = q->rank == 3 ? q->dims[0] : ic_new_sym(c);
    int64_t T = q->rank == 3 ? q->dims[1] : ic_new_sym(c);
    int64_t od[3] = {B, T, ic_new_sym(c)};
    if (dv >= 0 && ic_dim_mul(c, hq, dv, &od[2], "q_num_heads x value head size")) return -1;
    int64_t sd[4] = {B, hkv, dk >= 0 ? dk : ic_new_sym(c), dv >= 0 ? dv : ic_new_sym(c)};
    if (ps && ps->rank >= 0) {
        if (ps->rank != 4) return ic_fail(c, "past_state must have rank 4");
        for (int d = 0; d < 4; d++)
            if (ps->dims[d] >= 0 && sd[d] >= 0 && ps->dims[d] != sd[d])
                return ic_fail(c, "past_state dim %d is %lld, expected %lld", d,
                               (long long)ps->dims[d], (long long)sd[d]);
    }
    ic_set_out(c, 0, q->dtype, 3, od);
    if (c->n_out > 1) ic_set_out(c, 1, ps ? ps->dtype : q->dtype, 4, sd);
    return 0;
}

/* ------------------------------------------------------------ TfIdfVectorizer */

static int infer_tfidf(infer_ctx *c) {
    const ir_node *n = c->node;
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "needs X");
    if (known_dt(x) && x->dtype != KILN_DTYPE_INT32 && x->dtype != KILN_DTYPE_INT64)
        return ic_fail(c, "X must be int32 or int64 (string pools are not supported), "
                       "got %s", kiln_dtype_name(x->dtype));
    const char *mode = ir_attr_str(n, "mode", "");
    if (strcmp(mode, "TF") && strcmp(mode, "IDF") && strcmp(mode, "TFIDF"))
        return ic_fail(c, "mode '%s' is not TF, IDF or TFIDF", mode);
    if (ir_attr_find(n, "pool_strings"))
        return ic_fail(c, "pool_strings (string n-grams) is not supported");
    int np, ni, nc, nw;
    const int64_t *pool = ir_attr_ints(n, "pool_int64s", &np);
    const int64_t *idx = ir_attr_ints(n, "ngram_indexes", &ni);
    const int64_t *cnt = ir_attr_ints(n, "ngram_counts", &nc);
    ir_attr_floats(n, "weights", &nw);
    int64_t mn = ir_attr_int(n, "min_gram_length", 0), mx = ir_attr_int(n, "max_gram_length", 0);
    int64_t skip = ir_attr_int(n, "max_skip_count", 0);
    if (!pool || !idx || !cnt) return ic_fail(c, "needs pool_int64s, ngram_indexes and ngram_counts");
    if (mn < 1 || mx < mn || skip < 0)
        return ic_fail(c, "bad min_gram_length/max_gram_length/max_skip_count");
    int64_t out = 0, grams = 0;
    for (int i = 0; i < nc; i++) {
        int64_t b = cnt[i], e = i + 1 < nc ? cnt[i + 1] : np;
        if (b < 0 || e < b || e > np || (e - b) % (i + 1))
            return ic_fail(c, "ngram_counts does not split pool_int64s into n-grams");
        grams += (e - b) / (i + 1);
    }
    if (grams != ni) return ic_fail(c, "ngram_indexes has %d entries for %lld n-grams", ni,
                                    (long long)grams);
    if (nw && nw != ni) return ic_fail(c, "weights must match ngram_indexes");
    for (int i = 0; i < ni; i++) {
        if (idx[i] < 0 || idx[i] > ((int64_t)1 << 40))
            return ic_fail(c, "ngram_indexes value %lld is invalid", (long long)idx[i]);
        if (idx[i] + 1 > out) out = idx[i] + 1;
    }
    if (nw && out > nw) return ic_fail(c, "weights must cover every output coordinate");
    if (x->rank < 0) {
        set_unknown(c, 0, KILN_DTYPE_FLOAT32);
    } else if (x->rank <= 1) {
        ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 1, &out);
    } else if (x->rank == 2) {
        int64_t d[2] = {x->dims[0], out};
        if (d[0] == 0) return ic_fail(c, "X must have at least one row");
        ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 2, d);
    } else {
        return ic_fail(c, "X must have rank 1 or 2, got %d", x->rank);
    }
    return 0;
}

/* ------------------------------------------------------------ Optional* */

/* Kiln values are plain tensors: a present input always has an element. */
static int infer_opt_has(infer_ctx *c) {
    ic_set_out(c, 0, KILN_DTYPE_BOOL, 0, NULL);
    return 0;
}

static int infer_opt_get(infer_ctx *c) {
    if (!ic_has(c, 0)) return ic_fail(c, "the optional input is empty");
    ic_copy_type(c, 0, 0);
    return 0;
}

/* ------------------------------------------------------- ImageDecoder */

/* The image's size is only known once decoded: H and W are fresh symbols
** (the kernel sizes its output), C follows pixel_format. */
static int infer_image_decoder(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (known_dt(x) && x->dtype != KILN_DTYPE_UINT8)
        return ic_fail(c, "encoded_stream must be uint8, got %s", kiln_dtype_name(x->dtype));
    if (x && x->rank >= 0 && x->rank != 1)
        return ic_fail(c, "encoded_stream must be a 1-D tensor, got rank %d", x->rank);
    const char *pf = ir_attr_str(c->node, "pixel_format", "RGB");
    int64_t d[3] = {0, 0, 3};
    if (!strcmp(pf, "Grayscale")) d[2] = 1;
    else if (strcmp(pf, "RGB") && strcmp(pf, "BGR"))
        return ic_fail(c, "pixel_format must be RGB, BGR or Grayscale, got '%s'", pf);
    d[0] = ic_new_sym(c);
    d[1] = ic_new_sym(c);
    ic_set_out(c, 0, KILN_DTYPE_UINT8, 3, d);
    return 0;
}

const op_schema op_schemas_extra[] = {
    {OP_NegativeLogLikelihoodLoss, 2, 3, 1, 1, infer_loss},
    {OP_SoftmaxCrossEntropyLoss, 2, 3, 1, 2, infer_loss},
    {OP_Scan, 1, -1, 1, -1, infer_scan},
    {OP_CumProd, 2, 2, 1, 1, infer_cumprod},
    {OP_BitCast, 1, 1, 1, 1, infer_bitcast},
    {OP_TensorScatter, 2, 3, 1, 1, infer_tensor_scatter},
    {OP_DFT, 1, 3, 1, 1, infer_dft},
    {OP_STFT, 2, 4, 1, 1, infer_stft},
    {OP_HannWindow, 1, 1, 1, 1, infer_window},
    {OP_HammingWindow, 1, 1, 1, 1, infer_window},
    {OP_BlackmanWindow, 1, 1, 1, 1, infer_window},
    {OP_MelWeightMatrix, 5, 5, 1, 1, infer_mel},
    {OP_DeformConv, 3, 5, 1, 1, infer_deform_conv},
    {OP_CausalConvWithState, 2, 4, 1, 2, infer_causal_conv},
    {OP_LinearAttention, 3, 6, 1, 2, infer_linear_attention},
    {OP_TfIdfVectorizer, 1, 1, 1, 1, infer_tfidf},
    {OP_OptionalHasElement, 0, 1, 1, 1, infer_opt_has},
    {OP_OptionalGetElement, 1, 1, 1, 1, infer_opt_get},
    {OP_ImageDecoder, 1, 1, 1, 1, infer_image_decoder},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
