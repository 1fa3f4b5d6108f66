/* ref_control.c: reference kernels for If and Loop: run the body graphs with
** the node's captured outer values. */
#include "ref.h"

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

static bool scalar_true(const kiln_tensor *t) {
    return tensor_numel(t) >= 1 && ((const uint8_t *)t->data)[0] != 0;
}

static int run_if(ref_ctx *c) {
    const kiln_tensor *cond = c->in[0];
    if (!cond || tensor_numel(cond) != 1)
        return ref_fail(c, "cond must hold exactly one element");
    const ir_graph *g = ir_attr_graph(c->node, scalar_true(cond) ? "then_branch"
                                                                 : "else_branch");
    kiln_tensor **res = calloc((size_t)g->n_outputs + 1, sizeof *res);
    if (!res) return ref_fail(c, "out of memory");
    if (ref_run_subgraph(c, g, NULL, res)) {
        free(res);
        return -1;
    }
    for (int i = 0; i < c->n_out; i++) move_into(c->out[i], res[i]);
    for (int i = c->n_out; i < g->n_outputs; i++) tensor_free(res[i]);
    free(res);
    return 0;
}

/* 1 where a Loop body declares its input k as a one-element vector [1]
** rather than the scalar the spec asks for, else 0. */
static int loop_input_rank(const ir_graph *body, int k) {
    if (body->n_inputs <= k) return 0;
    const ir_type *t = &body->inputs[k]->type;
    return t->rank == 1 && t->dims[0] == 1 ? 1 : 0;
}

/* Growing stack of per-iteration scan outputs. */
typedef struct scan_acc {
    kiln_tensor **items;
    int64_t n, cap;
} scan_acc;

static int run_loop(ref_ctx *c) {
    const ir_graph *body = ir_attr_graph(c->node, "body");
    int n_carried = c->n_in - 2, n_scan = body->n_outputs - 1 - n_carried;
    int64_t max_trip = INT64_MAX;
    bool cond = true;
    int rc = -1;
    if (ref_has(c, 0)) {
        if (tensor_numel(c->in[0]) != 1) return ref_fail(c, "M must be a scalar");
        max_trip = ((const int64_t *)c->in[0]->data)[0];
    }
    if (ref_has(c, 1)) {
        if (tensor_numel(c->in[1]) != 1) return ref_fail(c, "cond must be a scalar");
        cond = scalar_true(c->in[1]);
    }
    const kiln_tensor **args = calloc((size_t)n_carried + 2, sizeof *args);
    kiln_tensor **carried = calloc((size_t)n_carried + 1, sizeof *carried);
    kiln_tensor **res = calloc((size_t)body->n_outputs + 1, sizeof *res);
    scan_acc *scans = calloc((size_t)n_scan + 1, sizeof *scans);
    kiln_tensor *iter_t = NULL, *cond_t = NULL;
    if (!args || !carried || !res || !scans) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int k = 0; k < n_carried; k++) {
        if (!ref_has(c, 2 + k)) {
            ref_fail(c, "loop-carried input %d is missing", k);
            goto done;
        }
        if (tensor_clone(c->in[2 + k], &carried[k])) {
            ref_fail(c, "%s", kiln_last_error());
            goto done;
        }
    }
    /* Paddle's exporter declares the body's iteration number and condition
    ** as shape [1], not scalars; onnxruntime runs such bodies, so they get
    ** the one-element shape they declare. */
    int64_t one = 1;
    int r_it = loop_input_rank(body, 0), r_cond = loop_input_rank(body, 1);
    if (tensor_new(KILN_DTYPE_INT64, r_it, &one, &iter_t) ||
        tensor_new(KILN_DTYPE_BOOL, r_cond, &one, &cond_t)) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t it = 0; it < max_trip && cond; it++) {
        ((int64_t *)iter_t->data)[0] = it;
        ((uint8_t *)cond_t->data)[0] = cond;
        args[0] = iter_t;
        args[1] = cond_t;
        for (int k = 0; k < n_carried; k++) args[2 + k] = carried[k];
        if (ref_run_subgraph(c, body, args, res)) goto done;
        cond = scalar_true(res[0]);
        tensor_free(res[0]);
        for (int k = 0; k < n_carried; k++) {
            tensor_free(carried[k]);
            carried[k] = res[1 + k];
        }
        for (int k = 0; k < n_scan; k++) {
            scan_acc *s = &scans[k];
            kiln_tensor *t = res[1 + n_carried + k];
            if (s->n && (t->dtype != s->items[0]->dtype ||
                         !shape_equal(t->rank, t->dims, s->items[0]->rank,
                                      s->items[0]->dims))) {
                for (int j = 1 + n_carried + k; j < body->n_outputs; j++) tensor_free(res[j]);
                ref_fail(c, "scan output %d changes shape between iterations", k);
                goto done;
            }
            if (s->n == s->cap) {
                int64_t cap = s->cap ? s->cap * 2 : 16;
                kiln_tensor **p = realloc(s->items, (size_t)cap * sizeof *p);
                if (!p) {
                    for (int j = 1 + n_carried + k; j < body->n_outputs; j++) tensor_free(res[j]);
                    ref_fail(c, "out of memory");
                    goto done;
                }
                s->items = p;
                s->cap = cap;
            }
            s->items[s->n++] = t;
        }
    }
    for (int k = 0; k < n_carried && k < c->n_out; k++) {
        move_into(c->out[k], carried[k]);
        carried[k] = NULL;
    }
    for (int k = 0; k < n_scan && n_carried + k < c->n_out; k++) {
        scan_acc *s = &scans[k];
        int64_t dims[KILN_MAX_RANK];
        const ir_type *bt = &body->outputs[1 + n_carried + k]->type;
        kiln_dtype dt = s->n ? s->items[0]->dtype : bt->dtype;
        int rank = s->n ? s->items[0]->rank : KILN_MAX(bt->rank, 0);
        if (rank + 1 > KILN_MAX_RANK) {
            ref_fail(c, "scan output rank too large");
            goto done;
        }
        dims[0] = s->n;
        for (int d = 0; d < rank; d++)
            dims[d + 1] = s->n ? s->items[0]->dims[d] : KILN_MAX(bt->dims[d], 0);
        if (!dtype_is_valid((int)dt)) dt = KILN_DTYPE_FLOAT32;
        if (ref_alloc_out(c, n_carried + k, dt, rank + 1, dims)) goto done;
        size_t each = s->n ? s->items[0]->nbytes : 0;
        for (int64_t j = 0; j < s->n; j++)
            if (each) memcpy((char *)c->out[n_carried + k]->data + (size_t)j * each,
                             s->items[j]->data, each);
    }
    rc = 0;
done:
    for (int k = 0; carried && k < n_carried; k++) tensor_free(carried[k]);
    for (int k = 0; scans && k < n_scan; k++) {
        for (int64_t j = 0; j < scans[k].n; j++) tensor_free(scans[k].items[j]);
        free(scans[k].items);
    }
    tensor_free(iter_t);
    tensor_free(cond_t);
    free(args); free(carried); free(res); free(scans);
    return rc;
}

const ref_kernel ref_kernels_control[] = {
    {OP_If, run_if},
    {OP_Loop, run_loop},
    {OP_NONE, NULL},
};
