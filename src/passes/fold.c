/* fold.c: constant folding. Nodes whose inputs are all constants are run
** once with the model's evaluator (ops/eval.h: the reference kernels, handed
** down by whoever created the model) and replaced by their results (any size up
** to a budget; inference only folds small ones), and int shape tensors whose
** contents inference resolved (Shape of a value with a static shape, and the
** arithmetic on it) become constants too. Constants that repeat one slice
** along dims their (broadcasting) readers would broadcast anyway keep only
** the slice. */
#include "passes_util.h"
#include "../ops/eval.h"
#include "../ops/infer.h"

#include <stdio.h>
#include <string.h>

/* Results above this are left to be computed at run time. */
#define FOLD_MAX_BYTES ((uint64_t)256 << 20)

static bool deterministic(const ir_node *n) {
    if (n->n_implicit || n->op == OP_If || n->op == OP_Loop) return false;
    if (op_fold_cost_unbounded(n->op)) return false;
    /* Dropout is random in training mode (a training_mode input that is not
    ** a constant false). */
    if (n->op == OP_Dropout && n->n_in >= 3 && n->in[2]) {
        double v;
        if (!ir_edit_const_uniform(n->in[2], &v) || v != 0) return false;
    }
    return true;
}

static bool bytes_ok(const ir_type *t) {
    if (!pu_static_shape(t)) return true; /* data-dependent: checked after */
    int64_t n = shape_numel(t->rank, t->dims);
    size_t nb;
    return n >= 0 && dtype_nbytes(t->dtype, n, &nb) && nb <= FOLD_MAX_BYTES;
}

/* Runs n on its constant inputs. 1: folded, 0: left alone, <0 error. */
static int fold_node(pass_ctx *p, ir_node *n) {
    ir_model *m = p->m;
    const op_evaluator *ev = deterministic(n) ? op_evaluator_for(m, n) : NULL;
    if (!ev) return 0;
    if (n->n_in == 0 && n->op != OP_Constant) return 0;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && !n->in[i]->const_val) return 0;
    for (int o = 0; o < n->n_out; o++)
        if (!bytes_ok(&n->out[o]->type)) return 0;
    size_t ni = (size_t)(n->n_in ? n->n_in : 1), no = (size_t)(n->n_out ? n->n_out : 1);
    const kiln_tensor **in = calloc(ni, sizeof *in);
    kiln_tensor **res = calloc(no, sizeof *res);
    if (!in || !res) {
        free(in);
        free(res);
        pu_oom();
        return -1;
    }
    for (int i = 0; i < n->n_in; i++) in[i] = n->in[i] ? n->in[i]->const_val : NULL;
    int rc = 0;
    if (ev->run(n, in, res) != KILN_OK) {
        kiln_error_clear(); /* the executor reports it with real inputs */
        goto done;
    }
    for (int o = 0; o < n->n_out; o++)
        if (res[o]->nbytes > FOLD_MAX_BYTES) goto done;
    for (int o = 0; o < n->n_out; o++) {
        kiln_tensor *t = res[o];
        res[o] = NULL;
        if (!ir_model_own_tensor(m, t)) {
            pu_oom();
            rc = -1;
            goto done;
        }
        ir_value *v = n->out[o];
        v->const_val = t;
        v->type.dtype = t->dtype;
        v->type.rank = t->rank;
        memcpy(v->type.dims, t->dims, sizeof t->dims);
    }
    rc = 1;
done:
    for (size_t o = 0; o < no; o++) tensor_free(res[o]);
    free(in);
    free(res);
    return rc;
}

/* Outputs whose contents inference knows exactly (every entry a concrete,
** non-negative number: symbols are negative) become constants. 1 if all
** outputs of n are constant afterwards. */
static int fold_symbolic(pass_ctx *p, ir_node *n) {
    if (n->n_implicit) return 0;
    for (int o = 0; o < n->n_out; o++) {
        ir_value *v = n->out[o];
        if (v->const_val) continue;
        const ir_type *t = &v->type;
        if (!v->sym_val || (t->dtype != KILN_DTYPE_INT64 && t->dtype != KILN_DTYPE_INT32) ||
            t->rank < 0 || t->rank > 1)
            return 0;
        int64_t cnt = t->rank == 0 ? 1 : t->dims[0];
        if (cnt != v->sym_len) return 0;
        for (int k = 0; k < v->sym_len; k++)
            if (v->sym_val[k] < 0) return 0;
    }
    for (int o = 0; o < n->n_out; o++) {
        ir_value *v = n->out[o];
        if (v->const_val) continue;
        kiln_tensor *t;
        int64_t d = v->sym_len;
        if (tensor_new(v->type.dtype, v->type.rank, &d, &t)) return -1;
        for (int k = 0; k < v->sym_len; k++)
            dt_set_i64(t->dtype, t->data, (size_t)k, v->sym_val[k]);
        if (!ir_model_own_tensor(p->m, t)) {
            pu_oom();
            return -1;
        }
        v->const_val = t;
    }
    return 1;
}

/* ---- constants repeated along a dim that their readers broadcast
** A folded constant can hold copies of one slice (BERT's token-type
** embeddings gathered with all-zero ids: [B, S, H] of one row), and every
** run then reads all of it. Where every reader is an elementwise op with
** numpy broadcasting and another input gives the dim its size anyway, the
** constant keeps one slice (the dim becomes 1): the readers compute the
** same values from a tensor that is B*S times smaller. Only large constants
** of rank 2 or more, never along the last dim (a bias row keeps its shape),
** and only when that at least halves them. */

/* Readers that broadcast every input against the others. */
static bool bcast_reader(int op) {
    switch (op) {
    case OP_Add: case OP_Sub: case OP_Mul: case OP_Div: case OP_Max: case OP_Min:
    case OP_Where: case OP_FusedElementwise:
        return true;
    default: return false;
    }
}

/* Whether every slice of t along d equals its first, byte for byte. */
static bool repeats_along(const kiln_tensor *t, int d, size_t es) {
    int64_t outer = shape_numel(d, t->dims), D = t->dims[d];
    size_t inner = (size_t)shape_numel(t->rank - d - 1, t->dims + d + 1) * es;
    const unsigned char *b = t->data;
    for (int64_t o = 0; o < outer; o++) {
        const unsigned char *first = b + (size_t)(o * D) * inner;
        for (int64_t i = 1; i < D; i++)
            if (memcmp(first + (size_t)i * inner, first, inner)) return false;
    }
    return true;
}

/* Whether every reader of v keeps its output shape when v's dims become
** dims (rank unchanged): numpy broadcasting of the inputs as they would be. */
static bool readers_keep_shape(const ir_graph *g, const ir_value *v, const int64_t *dims) {
    int readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *c = g->nodes[i];
        if (c->dead) continue;
        bool reads = false;
        for (int k = 0; k < c->n_in + c->n_implicit; k++)
            if (c->in[k] == v) {
                if (k >= c->n_in) return false; /* a subgraph captures it */
                reads = true;
            }
        if (!reads) continue;
        readers++;
        if (!bcast_reader(c->op) || c->n_out != 1) return false;
        const ir_type *y = &c->out[0]->type;
        if (!pu_static_shape(y)) return false;
        int64_t b[KILN_MAX_RANK];
        for (int d = 0; d < y->rank; d++) b[d] = 1;
        for (int k = 0; k < c->n_in; k++) {
            const ir_value *u = c->in[k];
            if (!u) continue;
            if (!pu_static_shape(&u->type) || u->type.rank > y->rank) return false;
            int off = y->rank - u->type.rank;
            for (int d = 0; d < u->type.rank; d++) {
                int64_t e = u == v ? dims[d] : u->type.dims[d];
                if (e == 1) continue;
                if (b[off + d] != 1 && b[off + d] != e) return false;
                b[off + d] = e;
            }
        }
        for (int d = 0; d < y->rank; d++)
            if (b[d] != y->dims[d]) return false;
    }
    return readers > 0;
}

/* Shrinks the constants that qualify; returns how many, <0 on error. */
static int shrink_repeated(pass_ctx *p) {
    ir_graph *g = p->g;
    int shrunk = 0, nv = g->n_values;
    for (int i = 0; i < nv; i++) {
        ir_value *v = g->values[i];
        const kiln_tensor *t = v->const_val;
        size_t es = t ? kiln_dtype_size(t->dtype) : 0;
        if (!t || es == 0 || (v->flags & (IR_VALUE_INPUT | IR_VALUE_OUTPUT | IR_VALUE_CAPTURE)) ||
            ir_edit_is_graph_output(g, v) || t->rank < 2 || tensor_numel(t) < 4096 ||
            !pu_static_shape(&v->type) || v->type.rank != t->rank)
            continue;
        int64_t dims[KILN_MAX_RANK];
        memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
        kiln_tensor *cur = NULL; /* the shrunk copy so far */
        /* not the last dim: rows (biases, scales) keep the shape the
        ** fusion patterns know them by */
        for (int d = 0; d < t->rank - 1; d++) {
            const kiln_tensor *src = cur ? cur : t;
            if (dims[d] <= 1 || !repeats_along(src, d, es)) continue;
            int64_t keep = dims[d];
            dims[d] = 1;
            if (!readers_keep_shape(g, v, dims)) {
                dims[d] = keep;
                continue;
            }
            kiln_tensor *n;
            if (tensor_new(src->dtype, src->rank, dims, &n)) {
                tensor_free(cur);
                return -1;
            }
            int64_t outer = shape_numel(d, src->dims);
            size_t inner = (size_t)shape_numel(src->rank - d - 1, src->dims + d + 1) * es;
            for (int64_t o = 0; o < outer; o++)
                memcpy((unsigned char *)n->data + (size_t)o * inner,
                       (const unsigned char *)src->data + (size_t)(o * keep) * inner, inner);
            tensor_free(cur);
            cur = n;
        }
        if (!cur) continue;
        if (tensor_numel(cur) * 2 > tensor_numel(t)) { /* not worth a new constant */
            tensor_free(cur);
            continue;
        }
        char hint[256];
        snprintf(hint, sizeof hint, "%s_slice", v->name);
        ir_value *r = ir_edit_add_const(g, cur, hint);
        if (!r) return -1;
        ir_edit_replace_uses(g, v, r);
        pass_note(p, "constant '%s' repeats along the dims its readers broadcast: %lld -> %lld "
                  "elements", v->name, (long long)tensor_numel(t), (long long)tensor_numel(cur));
        shrunk++;
    }
    return shrunk;
}

/* One sweep in topological order (a folded node's results feed the next);
** returns how many nodes it folded, <0 on error. */
static int sweep(pass_ctx *p) {
    ir_graph *g = p->g;
    int folded = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || !deterministic(n)) continue;
        bool all = n->n_out > 0;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all = false;
        int rc = all ? 1 : fold_node(p, n);
        if (rc == 0) rc = fold_symbolic(p, n);
        if (rc < 0) return -1;
        if (rc == 0) continue;
        ir_edit_kill(n);
        pass_note(p, "folded %s '%s' into a constant", n->op_type, pu_name(n));
        folded++;
    }
    return folded;
}

/* A sweep folds what the types inferred before it allow; a node it cannot
** fold (a Pad, say) keeps the output type inferred from its inputs as they
** were, though a fold upstream made them constant (the pads). So after a
** sweep that folded something, types are inferred again and the sweep
** repeats: torchvision's Swin computes each block's window padding from the
** previous block's output shape, and one sweep resolved one block at a time
** (swin_t kept 872 shape layers, its output typed [?, 1000]). */
#define FOLD_MAX_SWEEPS 64

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    for (int s = 0; s < FOLD_MAX_SWEEPS; s++) {
        int folded = sweep(p);
        if (folded < 0) return KILN_OUT_OF_MEMORY;
        if (folded == 0) break;
        kiln_status st;
        if ((st = ir_graph_compact(g)) || (st = ir_graph_infer(g))) return st;
    }
    if (p->opt_level >= 1 && shrink_repeated(p) < 0) return pu_oom();
    return KILN_OK;
}

const kiln_pass pass_fold = {"fold", run};
