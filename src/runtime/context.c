/* context.c: execution contexts. A context owns (or borrows) one activation
** block laid out by the engine's memory plan, input shapes and buffer
** bindings, and per-layer timing. Execution walks the layers in order:
** infer each layer's output shapes from its actual inputs, place outputs at
** their planned offsets (heap only when a size exceeds its slot or depends
** on data), and run the layer's chosen tactic. */
#include "runtime.h"
#include "../ops/infer.h"

#include <stdio.h>
#include <time.h>

struct kiln_context {
    const kiln_engine *e;
    int profile;
    uint8_t *mem;
    size_t mem_size;
    bool own_mem;
    int n_in, n_out;
    int64_t (*in_dims)[KILN_MAX_RANK];
    bool *in_set;
    void **in_data;
    size_t *in_size;
    void **out_data;
    size_t *out_size;
    kiln_tensor **out_kept;     /* results for unbound outputs */
    kiln_tensor *vals;          /* per main-graph value */
    int *uses;
    const kiln_tensor **args;
    kiln_tensor **res;
    ir_type *types, *otypes;
    const ir_type **tin;
    ref_ctx *rc;
    bool profiling;
    double *layer_ms;
    int runs;
};

static const ir_graph *G(const kiln_context *c) { return c->e->ir->graph; }

static uint64_t needed_bytes(const kiln_engine *e, int p) {
    return e->plans[p].total_bytes + e->plans[p].workspace_bytes;
}

static kiln_status context_new(const kiln_engine *e, void *memory, size_t size,
                               kiln_context **out) {
    if (!e || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    const ir_graph *g = e->ir->graph;
    kiln_context *c = calloc(1, sizeof *c);
    if (!c) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    c->e = e;
    c->n_in = g->n_inputs;
    c->n_out = g->n_outputs;
    size_t ni = (size_t)c->n_in + 1, no = (size_t)c->n_out + 1;
    size_t nv = (size_t)g->n_values + 1;
    int max_io = 1;
    for (int i = 0; i < g->n_nodes; i++)
        max_io = KILN_MAX(max_io, KILN_MAX(g->nodes[i]->n_in + g->nodes[i]->n_implicit,
                                           g->nodes[i]->n_out));
    c->in_dims = calloc(ni, sizeof *c->in_dims);
    c->in_set = calloc(ni, sizeof *c->in_set);
    c->in_data = calloc(ni, sizeof *c->in_data);
    c->in_size = calloc(ni, sizeof *c->in_size);
    c->out_data = calloc(no, sizeof *c->out_data);
    c->out_size = calloc(no, sizeof *c->out_size);
    c->out_kept = calloc(no, sizeof *c->out_kept);
    c->vals = calloc(nv, sizeof *c->vals);
    c->uses = calloc(nv, sizeof *c->uses);
    c->args = calloc((size_t)max_io, sizeof *c->args);
    c->res = calloc((size_t)max_io, sizeof *c->res);
    c->types = calloc((size_t)max_io, sizeof *c->types);
    c->otypes = calloc((size_t)max_io, sizeof *c->otypes);
    c->tin = calloc((size_t)max_io, sizeof *c->tin);
    c->rc = calloc(1, sizeof *c->rc);
    c->layer_ms = calloc((size_t)g->n_nodes + 1, sizeof *c->layer_ms);
    if (!c->in_dims || !c->in_set || !c->in_data || !c->in_size || !c->out_data ||
        !c->out_size || !c->out_kept || !c->vals || !c->uses || !c->args || !c->res ||
        !c->types || !c->otypes || !c->tin || !c->rc || !c->layer_ms) {
        kiln_context_destroy(c);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    uint64_t need = 0;
    for (int p = 0; p < e->n_profiles; p++) need = KILN_MAX(need, needed_bytes(e, p));
    if (memory) {
        if ((uintptr_t)memory % 64)
            return kiln_context_destroy(c),
                   kiln_error(KILN_INVALID_ARGUMENT, "context memory must be 64-byte aligned");
        c->mem = memory;
        c->mem_size = size;
    } else {
        c->mem = kiln_aligned_alloc((size_t)need);
        c->mem_size = (size_t)need;
        c->own_mem = true;
        if (!c->mem) {
            kiln_context_destroy(c);
            return kiln_error(KILN_OUT_OF_MEMORY, "cannot allocate %llu bytes of "
                              "activation memory", (unsigned long long)need);
        }
    }
    kiln_status st = kiln_context_set_profile(c, 0);
    if (st) {
        kiln_context_destroy(c);
        return st;
    }
    *out = c;
    return KILN_OK;
}

kiln_status kiln_context_create(const kiln_engine *e, kiln_context **out) {
    return context_new(e, NULL, 0, out);
}

kiln_status kiln_context_create_with_memory(const kiln_engine *e, void *memory,
                                            size_t size, kiln_context **out) {
    if (!memory) return kiln_error(KILN_INVALID_ARGUMENT, "memory is NULL");
    return context_new(e, memory, size, out);
}

static void drop_outputs(kiln_context *c) {
    for (int o = 0; o < c->n_out; o++) {
        tensor_free(c->out_kept[o]);
        c->out_kept[o] = NULL;
    }
}

void kiln_context_destroy(kiln_context *c) {
    if (!c) return;
    if (c->out_kept) drop_outputs(c);
    if (c->own_mem) kiln_aligned_free(c->mem);
    free(c->in_dims); free(c->in_set); free(c->in_data); free(c->in_size);
    free(c->out_data); free(c->out_size); free(c->out_kept); free(c->vals);
    free(c->uses); free(c->args); free(c->res); free(c->types); free(c->otypes);
    free(c->tin); free(c->rc); free(c->layer_ms);
    free(c);
}

kiln_status kiln_context_set_profile(kiln_context *c, int profile) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    if (profile < 0 || profile >= c->e->n_profiles)
        return kiln_error(KILN_INVALID_ARGUMENT, "profile %d does not exist (the "
                          "engine has %d)", profile, c->e->n_profiles);
    if (needed_bytes(c->e, profile) > c->mem_size)
        return kiln_error(KILN_INVALID_ARGUMENT, "profile %d needs %llu bytes of "
                          "activation memory; the context has %zu", profile,
                          (unsigned long long)needed_bytes(c->e, profile), c->mem_size);
    c->profile = profile;
    /* Inputs with a single allowed shape need no set_input_shape call. */
    const engine_profile *ep = &c->e->profiles[profile];
    for (int i = 0; i < c->n_in; i++) {
        const ir_type *t = &G(c)->inputs[i]->type;
        bool fixed = true;
        for (int d = 0; d < t->rank; d++) {
            c->in_dims[i][d] = ep->opt[i][d];
            if (ep->min[i][d] != ep->max[i][d]) fixed = false;
        }
        c->in_set[i] = fixed;
    }
    return KILN_OK;
}

static int find_input(const kiln_context *c, const char *name) {
    for (int i = 0; i < c->n_in; i++)
        if (!strcmp(G(c)->inputs[i]->name, name)) return i;
    return -1;
}

static int find_output(const kiln_context *c, const char *name) {
    for (int i = 0; i < c->n_out; i++)
        if (!strcmp(G(c)->outputs[i]->name, name)) return i;
    return -1;
}

kiln_status kiln_context_set_input_shape(kiln_context *c, const char *name,
                                         int rank, const int64_t *dims) {
    if (!c || !name || (rank > 0 && !dims))
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    int i = find_input(c, name);
    if (i < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no input '%s'", name);
    const ir_type *t = &G(c)->inputs[i]->type;
    char got[160], lo[160], hi[160];
    if (rank != t->rank)
        return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has rank %d, got %d dims",
                          name, t->rank, rank);
    const engine_profile *ep = &c->e->profiles[c->profile];
    for (int d = 0; d < rank; d++)
        if (dims[d] < ep->min[i][d] || dims[d] > ep->max[i][d])
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' shape %s is outside "
                              "optimization profile %d (min %s, max %s)", name,
                              shape_str(rank, dims, got, sizeof got), c->profile,
                              shape_str(rank, ep->min[i], lo, sizeof lo),
                              shape_str(rank, ep->max[i], hi, sizeof hi));
    for (int d = 0; d < rank; d++) c->in_dims[i][d] = dims[d];
    c->in_set[i] = true;
    return KILN_OK;
}

kiln_status kiln_context_set_tensor(kiln_context *c, const char *name, void *data,
                                    size_t size) {
    if (!c || !name) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    int i = find_input(c, name);
    if (i >= 0) {
        c->in_data[i] = data;
        c->in_size[i] = size;
        return KILN_OK;
    }
    int o = find_output(c, name);
    if (o < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no tensor '%s'", name);
    c->out_data[o] = data;
    c->out_size[o] = size;
    return KILN_OK;
}

static kiln_status input_types(const kiln_context *c, ir_type *in) {
    for (int i = 0; i < c->n_in; i++) {
        const ir_value *v = G(c)->inputs[i];
        if (!c->in_set[i])
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has a dynamic shape: "
                              "set it with kiln_context_set_input_shape", v->name);
        in[i] = v->type;
        for (int d = 0; d < in[i].rank; d++) in[i].dims[d] = c->in_dims[i][d];
    }
    return KILN_OK;
}

kiln_status kiln_context_output_shape(kiln_context *c, const char *name, int *rank,
                                      int64_t *dims) {
    if (!c || !name || !rank || !dims)
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    int o = find_output(c, name);
    if (o < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no output '%s'", name);
    const ir_graph *g = G(c);
    ir_type *in = calloc((size_t)c->n_in + 1, sizeof *in);
    ir_type *all = calloc((size_t)g->n_values + 1, sizeof *all);
    kiln_status st = in && all ? input_types(c, in)
                               : kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    if (!st) st = ir_graph_infer_types(g, in, all);
    if (!st) {
        const ir_type *t = &all[g->outputs[o]->id];
        *rank = t->rank;
        for (int d = 0; d < t->rank; d++) dims[d] = t->dims[d] >= 0 ? t->dims[d] : -1;
    }
    free(in);
    free(all);
    return st;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t runtime_sym(void *env) {
    int64_t *k = env;
    return --*k;
}

static void release(kiln_context *c, const ir_value *v) {
    if (--c->uses[v->id] > 0) return;
    kiln_tensor *t = &c->vals[v->id];
    if (t->flags & TENSOR_OWNS_DATA) kiln_aligned_free(t->data);
    t->flags = 0;
    t->data = NULL;
}

static void reset_values(kiln_context *c) {
    const ir_graph *g = G(c);
    for (int v = 0; v < g->n_values; v++) {
        kiln_tensor *t = &c->vals[v];
        if (t->flags & TENSOR_OWNS_DATA) kiln_aligned_free(t->data);
        memset(t, 0, sizeof *t);
    }
}

static kiln_status run_layers(kiln_context *c) {
    const kiln_engine *e = c->e;
    const ir_graph *g = G(c);
    const engine_plan *plan = &e->plans[c->profile];
    char lab[256], a[128], b[128];
    for (int v = 0; v < g->n_values; v++) {
        const ir_value *val = g->values[v];
        c->uses[v] = val->n_uses;
        if (val->const_val) {
            c->vals[v] = *val->const_val;
            c->vals[v].flags = 0;
            c->vals[v].name = NULL;
        }
    }
    for (int i = 0; i < c->n_in; i++) {
        const ir_value *v = g->inputs[i];
        kiln_tensor *t = &c->vals[v->id];
        if (!c->in_set[i])
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has a dynamic shape: "
                              "set it with kiln_context_set_input_shape", v->name);
        if (!c->in_data[i])
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' is not bound", v->name);
        t->dtype = v->type.dtype;
        t->rank = v->type.rank;
        memcpy(t->dims, c->in_dims[i], sizeof t->dims);
        size_t nb;
        if (!dtype_nbytes(t->dtype, shape_numel(t->rank, t->dims), &nb))
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' is too large", v->name);
        if (c->in_size[i] < nb)
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' buffer holds %zu bytes; "
                              "%s %s needs %zu", v->name, c->in_size[i],
                              kiln_dtype_name(t->dtype), shape_str(t->rank, t->dims, a, sizeof a), nb);
        t->data = c->in_data[i];
        t->nbytes = nb;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool all_const = true;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all_const = false;
        if (all_const) goto release_inputs;
        double t0 = c->profiling ? now_ms() : 0;
        int total = n->n_in + n->n_implicit;
        for (int k = 0; k < total; k++) {
            const ir_value *v = n->in[k];
            c->args[k] = v ? &c->vals[v->id] : NULL;
            if (k < n->n_in) {
                if (v) {
                    c->types[k].dtype = c->vals[v->id].dtype;
                    c->types[k].rank = c->vals[v->id].rank;
                    memcpy(c->types[k].dims, c->vals[v->id].dims, sizeof c->types[k].dims);
                }
                c->tin[k] = v ? &c->types[k] : NULL;
            }
        }
        int64_t counter = -1;
        kiln_status st = op_infer_node(n, (int)e->ir->opset, c->tin, c->args, NULL, NULL,
                                       c->otypes, NULL, NULL, true, &counter, runtime_sym);
        if (st) return st;
        const kiln_tactic *tac = e->layers[i].tactic[c->profile];
        for (int o = 0; o < n->n_out; o++) {
            kiln_tensor *t = &c->vals[n->out[o]->id];
            const ir_type *ty = &c->otypes[o];
            uint64_t nb = 0;
            memset(t, 0, sizeof *t);
            t->dtype = ty->dtype;
            t->rank = ty->rank < 0 ? 0 : ty->rank;
            bool known = ty->rank >= 0 && dtype_is_valid((int)ty->dtype);
            for (int d = 0; known && d < ty->rank; d++) known = ty->dims[d] >= 0;
            if (!known) continue; /* data-dependent: the kernel sizes it */
            size_t nbz;
            if (!dtype_nbytes(ty->dtype, shape_numel(ty->rank, ty->dims), &nbz))
                return kiln_error(KILN_RUNTIME_ERROR, "%s: output %d is too large",
                                  ir_node_label(n, lab, sizeof lab), o);
            nb = nbz;
            int64_t off = plan->offset[n->out[o]->id];
            if (off >= 0 && nb <= plan->size[n->out[o]->id]) {
                memcpy(t->dims, ty->dims, sizeof t->dims);
                t->data = c->mem + off;
                t->nbytes = nb;
                if (!(tac->flags & TACTIC_OVERWRITES_OUTPUT) && nb) memset(t->data, 0, nb);
            } else if ((st = tensor_alloc(t, ty->dtype, ty->rank, ty->dims))) {
                kiln_error_prefix("%s", ir_node_label(n, lab, sizeof lab));
                return st;
            }
            c->res[o] = t;
        }
        for (int o = 0; o < n->n_out; o++) c->res[o] = &c->vals[n->out[o]->id];
        ref_ctx *rc = c->rc;
        memset(rc, 0, sizeof *rc);
        rc->node = n;
        rc->opset = (int)e->ir->opset;
        rc->n_in = n->n_in;
        rc->in = c->args;
        rc->n_implicit = n->n_implicit;
        rc->n_out = n->n_out;
        rc->out = c->res;
        rc->ws = plan->workspace_bytes ? c->mem + plan->total_bytes : NULL;
        rc->ws_size = (size_t)plan->workspace_bytes;
        if (tac->run(rc) != 0)
            return kiln_error(KILN_RUNTIME_ERROR, "%s: %s", ir_node_label(n, lab, sizeof lab),
                              rc->err[0] ? rc->err : "layer failed");
        for (int o = 0; o < n->n_out; o++) {
            const kiln_tensor *t = &c->vals[n->out[o]->id];
            if (!t->data && tensor_numel(t) != 0)
                return kiln_error(KILN_INTERNAL, "%s: output %d was not produced",
                                  ir_node_label(n, lab, sizeof lab), o);
            if (c->uses[n->out[o]->id] <= 0) {
                c->uses[n->out[o]->id] = 1;
                release(c, n->out[o]);
            }
        }
        if (c->profiling) c->layer_ms[i] += now_ms() - t0;
    release_inputs:
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k] && !n->in[k]->const_val) release(c, n->in[k]);
    }
    (void)b;
    return KILN_OK;
}

kiln_status kiln_context_execute(kiln_context *c) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    const ir_graph *g = G(c);
    drop_outputs(c);
    reset_values(c);
    kiln_status st = run_layers(c);
    for (int o = 0; !st && o < c->n_out; o++) {
        const ir_value *v = g->outputs[o];
        const kiln_tensor *t = &c->vals[v->id];
        if (!t->data && t->nbytes) {
            st = kiln_error(KILN_INTERNAL, "output '%s' was not computed", v->name);
            break;
        }
        if (c->out_data[o]) {
            if (c->out_size[o] < t->nbytes) {
                st = kiln_error(KILN_INVALID_ARGUMENT, "output '%s' buffer holds %zu bytes; "
                                "the result needs %zu", v->name, c->out_size[o], t->nbytes);
                break;
            }
            if (t->nbytes) memcpy(c->out_data[o], t->data, t->nbytes);
        }
        if ((st = tensor_clone(t, &c->out_kept[o]))) break;
    }
    reset_values(c);
    if (!st && c->profiling) c->runs++;
    return st;
}

kiln_status kiln_context_enqueue(kiln_context *c, void *stream) {
    (void)stream; /* the CPU backend runs synchronously */
    return kiln_context_execute(c);
}

kiln_status kiln_context_output(kiln_context *c, const char *name,
                                const kiln_tensor **out) {
    if (!c || !name || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    int o = find_output(c, name);
    if (o < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no output '%s'", name);
    if (!c->out_kept[o])
        return kiln_error(KILN_INVALID_ARGUMENT, "output '%s' is not available: run "
                          "kiln_context_execute first", name);
    *out = c->out_kept[o];
    return KILN_OK;
}

kiln_status kiln_context_set_profiling(kiln_context *c, int enabled) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    c->profiling = enabled != 0;
    return KILN_OK;
}

int kiln_context_num_layers(const kiln_context *c) { return G(c)->n_nodes; }

kiln_status kiln_context_layer_time(const kiln_context *c, int layer,
                                    const char **name, double *ms, int *runs) {
    if (!c || layer < 0 || layer >= G(c)->n_nodes)
        return kiln_error(KILN_INVALID_ARGUMENT, "layer %d out of range", layer);
    if (name) *name = runtime_layer_name(G(c)->nodes[layer]);
    if (ms) *ms = c->layer_ms[layer];
    if (runs) *runs = c->runs;
    return KILN_OK;
}

const kiln_engine *runtime_context_engine(const kiln_context *c) { return c->e; }
