/* ref_exec.c: the reference interpreter: runs a graph node by node on
** concrete tensors, inferring each node's output shapes from its actual
** inputs, and frees intermediates after their last use. */
#include "ref.h"
#include "../../ops/infer.h"

#include <stdio.h>

int ref_fail(ref_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

int ref_alloc_out(ref_ctx *c, int i, kiln_dtype dtype, int rank,
                  const int64_t *dims) {
    if (i < 0 || i >= c->n_out) return ref_fail(c, "output %d does not exist", i);
    if (tensor_alloc(c->out[i], dtype, rank, dims) != KILN_OK)
        return ref_fail(c, "output %d: %s", i, kiln_last_error());
    return 0;
}

static int64_t runtime_sym(void *env) {
    int64_t *counter = env;
    return --*counter;
}

static bool type_concrete(const ir_type *t) {
    if (t->rank < 0 || !dtype_is_valid((int)t->dtype)) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

kiln_status ref_run_node(const ir_node *n, const kiln_tensor *const *in,
                         kiln_tensor **out) {
    char lab[256];
    int total_in = n->n_in + n->n_implicit;
    kiln_status st = KILN_OK;
    ref_kernel_fn fn = ref_kernel_get(n->op);
    for (int i = 0; i < n->n_out; i++) out[i] = NULL;
    if (!fn)
        return kiln_error(KILN_UNSUPPORTED, "%s: this operator has no reference "
                          "kernel", ir_node_label(n, lab, sizeof lab));
    size_t ni = (size_t)(total_in ? total_in : 1), no = (size_t)(n->n_out ? n->n_out : 1);
    /* One allocation for the per-node scratch arrays. */
    ir_type *types = calloc(ni + no, sizeof *types);
    const ir_type **tin = calloc(ni, sizeof *tin);
    const int64_t **sval = calloc(ni, sizeof *sval);
    int *slen = calloc(ni, sizeof *slen);
    ref_ctx *c = calloc(1, sizeof *c);
    if (!types || !tin || !sval || !slen || !c) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof in[i]->dims);
        tin[i] = &types[i];
    }
    ir_type *otypes = types + ni;
    int64_t counter = -1;
    const ir_model *m = n->graph->model;
    st = op_infer_node(n, (int)m->opset, tin, in, sval, slen, otypes, NULL, NULL,
                       true, &counter, runtime_sym);
    if (st) goto done;
    for (int i = 0; i < n->n_out; i++) {
        out[i] = calloc(1, sizeof *out[i]);
        if (!out[i]) {
            st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        out[i]->dtype = otypes[i].dtype;
        out[i]->rank = otypes[i].rank < 0 ? 0 : otypes[i].rank;
        if (type_concrete(&otypes[i])) {
            st = tensor_alloc(out[i], otypes[i].dtype, otypes[i].rank, otypes[i].dims);
            if (st) {
                kiln_error_prefix("%s: output %d", ir_node_label(n, lab, sizeof lab), i);
                goto done;
            }
        }
    }
    c->node = n;
    c->opset = (int)m->opset;
    c->n_in = n->n_in;
    c->in = in;
    c->n_implicit = n->n_implicit;
    c->n_out = n->n_out;
    c->out = out;
    if (fn(c) != 0) {
        st = kiln_error(KILN_RUNTIME_ERROR, "%s: %s", ir_node_label(n, lab, sizeof lab),
                        c->err[0] ? c->err : "kernel failed");
        goto done;
    }
    for (int i = 0; i < n->n_out; i++) {
        if (!out[i]->data) {
            st = kiln_error(KILN_INTERNAL, "%s: kernel produced no output %d",
                            ir_node_label(n, lab, sizeof lab), i);
            goto done;
        }
        if (dtype_is_valid((int)otypes[i].dtype) && out[i]->dtype != otypes[i].dtype) {
            st = kiln_error(KILN_INTERNAL, "%s: output %d is %s, inference said %s",
                            ir_node_label(n, lab, sizeof lab), i,
                            kiln_dtype_name(out[i]->dtype),
                            kiln_dtype_name(otypes[i].dtype));
            goto done;
        }
    }
done:
    if (st)
        for (int i = 0; i < n->n_out; i++) {
            tensor_free(out[i]);
            out[i] = NULL;
        }
    free(types); free(tin); free(sval); free(slen); free(c);
    return st;
}

/* Per-run value table. owned[v] says whether slot[v] is ours to free. */
typedef struct exec_state {
    const ir_graph *g;
    const kiln_tensor **slot;
    bool *owned;
    int *uses;
} exec_state;

static void release(exec_state *s, const ir_value *v) {
    if (--s->uses[v->id] > 0) return;
    if (s->owned[v->id]) tensor_free((kiln_tensor *)s->slot[v->id]);
    s->owned[v->id] = false;
    s->slot[v->id] = NULL;
}

/* A subgraph's declared input dims are hints only (sub = true): a Loop's
** loop-carried values may change shape between iterations (a sequence grown
** by Concat), and exporters write the first iteration's shape there, which
** onnxruntime ignores. Dtype and rank still have to match. */
static kiln_status check_input(const ir_value *v, const kiln_tensor *t, bool sub) {
    char a[128], b[128];
    const ir_type *ty = &v->type;
    if (!t) return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' is not bound", v->name);
    if (ty->dtype != KILN_DTYPE_UNDEFINED && t->dtype != ty->dtype)
        return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' must be %s, got %s",
                          v->name, kiln_dtype_name(ty->dtype), kiln_dtype_name(t->dtype));
    if (ty->rank < 0) return KILN_OK;
    bool ok = t->rank == ty->rank;
    for (int i = 0; ok && !sub && i < ty->rank; i++)
        if (ty->dims[i] >= 0 && ty->dims[i] != t->dims[i]) ok = false;
    if (!ok)
        return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' must have shape %s, got %s",
                          v->name, shape_str(ty->rank, ty->dims, a, sizeof a),
                          shape_str(t->rank, t->dims, b, sizeof b));
    return KILN_OK;
}

/* Symbols bound by the inputs must agree across inputs. One slot per model
** symbol (first binding wins) keeps this linear in the number of dims. */
static kiln_status check_symbols(const ir_graph *g, const kiln_tensor *const *inputs) {
    int ns = g->model->n_syms;
    int *first = NULL; /* symbol id -> input index * KILN_MAX_RANK + dim + 1 */
    kiln_status st = KILN_OK;
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_type *ti = &g->inputs[i]->type;
        for (int d = 0; d < ti->rank; d++) {
            int64_t sym = ti->dims[d];
            if (sym >= 0 || sym < -(int64_t)ns) continue; /* not a model symbol */
            if (!first && !(first = calloc((size_t)ns, sizeof *first)))
                return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            int id = IR_SYM_ID(sym);
            if (!first[id]) {
                if ((int64_t)i * KILN_MAX_RANK + d + 1 > INT32_MAX) continue;
                first[id] = i * KILN_MAX_RANK + d + 1;
                continue;
            }
            int j = (first[id] - 1) / KILN_MAX_RANK, e = (first[id] - 1) % KILN_MAX_RANK;
            if (inputs[j]->dims[e] != inputs[i]->dims[d]) {
                const char *nm = ir_dim_name(g->model, sym);
                st = kiln_error(KILN_INVALID_ARGUMENT,
                                "inputs '%s' and '%s' disagree on dim '%s' "
                                "(%lld vs %lld)", g->inputs[j]->name,
                                g->inputs[i]->name, nm ? nm : "?",
                                (long long)inputs[j]->dims[e],
                                (long long)inputs[i]->dims[d]);
                goto done;
            }
        }
    }
done:
    free(first);
    return st;
}

kiln_status ref_run_graph(const ir_graph *g, const kiln_tensor *const *inputs,
                          const kiln_tensor *const *captures,
                          kiln_tensor **outputs) {
    exec_state s = {g, NULL, NULL, NULL};
    kiln_status st = KILN_OK;
    int nv = g->n_values;
    const kiln_tensor **args = NULL;
    kiln_tensor **res = NULL;
    int max_in = 1, max_out = 1;
    for (int o = 0; o < g->n_outputs; o++) outputs[o] = NULL;
    s.slot = calloc((size_t)nv + 1, sizeof *s.slot);
    s.owned = calloc((size_t)nv + 1, sizeof *s.owned);
    s.uses = calloc((size_t)nv + 1, sizeof *s.uses);
    for (int i = 0; i < g->n_nodes; i++) {
        max_in = KILN_MAX(max_in, g->nodes[i]->n_in + g->nodes[i]->n_implicit);
        max_out = KILN_MAX(max_out, g->nodes[i]->n_out);
    }
    args = calloc((size_t)max_in, sizeof *args);
    res = calloc((size_t)max_out, sizeof *res);
    if (!s.slot || !s.owned || !s.uses || !args || !res) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        s.uses[v] = g->values[v]->n_uses;
        if (g->values[v]->const_val) s.slot[v] = g->values[v]->const_val;
    }
    if (g->n_inputs && !inputs) { /* e.g. an If branch declaring inputs */
        st = kiln_error(KILN_INVALID_MODEL, "graph '%s' declares %d inputs but "
                        "none are given to it", g->name ? g->name : "",
                        g->n_inputs);
        goto done;
    }
    if (g->n_captures && !captures) {
        st = kiln_error(KILN_INTERNAL, "graph '%s' captures values but none "
                        "are bound", g->name ? g->name : "");
        goto done;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        if ((st = check_input(g->inputs[i], inputs[i], g->parent != NULL))) goto done;
        s.slot[g->inputs[i]->id] = inputs[i];
    }
    for (int i = 0; i < g->n_captures; i++)
        s.slot[g->capture_local[i]->id] = captures[i];
    if (!g->parent && (st = check_symbols(g, inputs))) goto done;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool all_const = true;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all_const = false;
        if (!all_const) {
            int total = n->n_in + n->n_implicit;
            for (int k = 0; k < total; k++) {
                const ir_value *v = n->in[k];
                args[k] = v ? s.slot[v->id] : NULL;
                if (v && !args[k]) {
                    char lab[256];
                    st = kiln_error(KILN_INTERNAL, "%s: input '%s' has no value",
                                    ir_node_label(n, lab, sizeof lab), v->name);
                    goto done;
                }
            }
            if ((st = ref_run_node(n, args, res))) goto done;
            for (int o = 0; o < n->n_out; o++) {
                int id = n->out[o]->id;
                s.slot[id] = res[o];
                s.owned[id] = true;
                if (s.uses[id] <= 0) release(&s, n->out[o]), s.uses[id] = 0;
            }
        }
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k]) release(&s, n->in[k]);
    }
    for (int o = 0; o < g->n_outputs; o++) {
        const kiln_tensor *t = s.slot[g->outputs[o]->id];
        if (!t) {
            st = kiln_error(KILN_INTERNAL, "graph output '%s' was not computed",
                            g->outputs[o]->name);
            goto done;
        }
        if ((st = tensor_clone(t, &outputs[o]))) goto done;
    }
done:
    if (st)
        for (int o = 0; o < g->n_outputs; o++) {
            tensor_free(outputs[o]);
            outputs[o] = NULL;
        }
    if (s.owned)
        for (int v = 0; v < nv; v++)
            if (s.owned[v]) tensor_free((kiln_tensor *)s.slot[v]);
    free(s.slot); free(s.owned); free(s.uses); free(args); free(res);
    return st;
}

/* Slot of value v in an open-addressing table of implicit-input indices. */
static size_t imp_slot(const int *tab, size_t mask, const ir_node *n, const ir_value *v) {
    size_t i = (size_t)(((uintptr_t)v >> 4) * 0x9e3779b97f4a7c15ull) & mask;
    while (tab[i] && n->in[n->n_in + tab[i] - 1] != v) i = (i + 1) & mask;
    return i;
}

int ref_run_subgraph(ref_ctx *c, const ir_graph *g,
                     const kiln_tensor *const *inputs, kiln_tensor **outputs) {
    const kiln_tensor **caps = calloc((size_t)g->n_captures + 1, sizeof *caps);
    if (!caps) return ref_fail(c, "out of memory");
    const ir_node *n = c->node;
    /* Map outer value -> implicit input through a hash table: bodies may
    ** capture tens of thousands of values and run once per Loop iteration. */
    size_t cap = 16;
    while (cap < (size_t)n->n_implicit * 2) cap *= 2;
    int *tab = calloc(cap, sizeof *tab); /* implicit index + 1, 0 empty */
    if (!tab) {
        free(caps);
        return ref_fail(c, "out of memory");
    }
    for (int j = 0; j < n->n_implicit; j++) {
        size_t k = imp_slot(tab, cap - 1, n, n->in[n->n_in + j]);
        if (!tab[k]) tab[k] = j + 1;
    }
    for (int k = 0; k < g->n_captures; k++) {
        int j = tab[imp_slot(tab, cap - 1, n, g->capture_outer[k])] - 1;
        if (j >= 0) caps[k] = c->in[n->n_in + j];
        if (!caps[k]) {
            free(tab);
            free(caps);
            return ref_fail(c, "captured value '%s' is not available",
                            g->capture_local[k]->name);
        }
    }
    free(tab);
    kiln_status st = ref_run_graph(g, inputs, caps, outputs);
    free(caps);
    if (st) return ref_fail(c, "%s", kiln_last_error());
    return 0;
}

static bool ref_eval_has(int op) { return ref_kernel_get(op) != NULL; }

const op_evaluator ref_evaluator = {ref_eval_has, ref_run_node};
