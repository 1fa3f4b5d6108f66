/* fold.c: constant folding. Nodes whose inputs are all constants are run
** once with the model's evaluator (ops/eval.h: the reference kernels, handed
** down by whoever created the model) and replaced by their results (any size up
** to a budget; inference only folds small ones), and int shape tensors whose
** contents inference resolved (Shape of a value with a static shape, and the
** arithmetic on it) become constants too. */
#include "passes_util.h"
#include "../ops/eval.h"
#include "../ops/infer.h"

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

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    /* Topological order: a folded node's results feed the next. */
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || !deterministic(n)) continue;
        bool all = n->n_out > 0;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all = false;
        int rc = all ? 1 : fold_node(p, n);
        if (rc == 0) rc = fold_symbolic(p, n);
        if (rc < 0) return KILN_OUT_OF_MEMORY;
        if (rc == 0) continue;
        ir_edit_kill(n);
        pass_note(p, "folded %s '%s' into a constant", n->op_type, pu_name(n));
    }
    return KILN_OK;
}

const kiln_pass pass_fold = {"fold", run};
