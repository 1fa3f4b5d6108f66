/* context.c: execution contexts. A context owns (or borrows) one activation
** block laid out by the engine's memory plan, input shapes and buffer
** bindings, and per-layer timing. Execution walks the layers in order:
** infer each layer's output shapes from its actual inputs, place outputs at
** their planned offsets (heap only when a size exceeds its slot or depends
** on data), and run the layer's chosen tactic. */
#include "runtime.h"
#include "../ops/infer.h"
#include "../ir/ir_edit.h"

#include <stdio.h>
#include <time.h>

/* CUDA graphs of a device context: one slot per run key (shapes and I/O
** bindings), so a dynamic batcher's changing batch sizes (or a caller
** alternating between a few shapes) each replay their own graph instead of
** recapturing; the least recently used slot is recycled. */
enum { GRAPH_SLOTS = 8 };
typedef struct {
    int64_t *key;               /* key_len entries */
    void *graph;                /* captured run (state 2) */
    kiln_tensor *out;           /* outputs' device tensors at capture */
    int state;                  /* 0 free, 1 key seen once (eligible), 2 captured */
    uint64_t used;              /* gs_tick at the last use */
} graph_slot;

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
    /* ---- device engines only (e->dev != NULL) */
    const kiln_device_ops *D;
    void *stream;               /* the context's own stream */
    void *cur;                  /* stream of the run in progress */
    void *exec;                 /* backend execution state (handles) */
    uint8_t *dmem;              /* device activation block + workspace */
    bool own_dmem;
    uint8_t *hmem;              /* host mirror block for host layers */
    void **in_dev;              /* per input: device staging buffer */
    size_t *in_dev_cap;
    bool *in_on_dev, *out_on_dev; /* caller bound device memory */
    kiln_tensor *hvals;         /* host copies by value id */
    kiln_tensor meta_view;      /* dims of a device value, no data: what a
                                   host Shape/Size layer reads */
    uint8_t *where;             /* RES_* by value id */
    void **tmp;                 /* device allocations of this run */
    int n_tmp, cap_tmp;
    bool irregular;             /* this run synchronized mid-way or
                                   allocated: it cannot be a CUDA graph */
    bool use_graphs;
    graph_slot gs[GRAPH_SLOTS]; /* captured runs, one per run key */
    uint64_t gs_tick;           /* LRU clock of gs */
    int64_t *run_key;           /* profile, then every input's dims, then
                                   I/O device pointers */
    size_t key_len;
    void **ev;                  /* profiling: an event before every layer + 1 */
};

enum { RES_DEV = 1, RES_HOST = 2 };

static const ir_graph *G(const kiln_context *c) { return c->e->ir->graph; }

static uint64_t needed_bytes(const kiln_engine *e, int p) {
    return e->plans[p].total_bytes + e->plans[p].workspace_bytes;
}

static kiln_status device_setup(kiln_context *c, uint64_t need);
static void device_teardown(kiln_context *c);

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
    if (e->dev) {
        /* Caller memory of a device engine is device memory. */
        c->dmem = memory;
        c->mem_size = memory ? size : (size_t)need;
        kiln_status st = device_setup(c, need);
        if (!st) st = kiln_context_set_profile(c, 0);
        if (st) {
            kiln_context_destroy(c);
            return st;
        }
        *out = c;
        return KILN_OK;
    }
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
    device_teardown(c);
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
        if (c->in_on_dev) c->in_on_dev[i] = false;
        return KILN_OK;
    }
    int o = find_output(c, name);
    if (o < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no tensor '%s'", name);
    c->out_data[o] = data;
    c->out_size[o] = size;
    if (c->out_on_dev) c->out_on_dev[o] = false;
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

/* Checks graph input i (shape set, bound, its buffer large enough) and
** sets t's dtype, shape and nbytes from it. */
static kiln_status input_meta(const kiln_context *c, int i, kiln_tensor *t) {
    const ir_value *v = G(c)->inputs[i];
    char a[128];
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
    t->nbytes = nb;
    return KILN_OK;
}

/* Host engine, before the layers: constants and the caller's inputs into
** the values (device engines stage theirs in stage_inputs). */
static kiln_status bind_host_values(kiln_context *c) {
    const ir_graph *g = G(c);
    for (int v = 0; v < g->n_values; v++) {
        const ir_value *val = g->values[v];
        if (val->const_val) {
            c->vals[v] = *val->const_val;
            c->vals[v].flags = 0;
            c->vals[v].name = NULL;
        }
    }
    for (int i = 0; i < c->n_in; i++) {
        kiln_tensor *t = &c->vals[g->inputs[i]->id];
        kiln_status st = input_meta(c, i, t);
        if (st) return st;
        t->data = c->in_data[i];
    }
    return KILN_OK;
}

/* Host engine: binds layer n's inputs (every value is on the host) and
** infers its output types from their shapes and contents. */
static kiln_status infer_layer_host(kiln_context *c, const ir_node *n) {
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
    return op_infer_node(n, (int)c->e->ir->opset, c->tin, c->args, NULL, NULL,
                         c->otypes, NULL, NULL, true, &counter, runtime_sym);
}

static kiln_status run_layers(kiln_context *c);

static kiln_status device_run(kiln_context *c, void *stream, bool sync);

kiln_status kiln_context_execute(kiln_context *c) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    if (c->D) return device_run(c, c->stream, true);
    const ir_graph *g = G(c);
    drop_outputs(c);
    reset_values(c);
    kiln_status st = bind_host_values(c);
    if (!st) st = run_layers(c);
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
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    if (c->D) return device_run(c, stream ? stream : c->stream, false);
    return kiln_context_execute(c); /* the CPU backend runs synchronously */
}

kiln_status kiln_context_output(kiln_context *c, const char *name,
                                const kiln_tensor **out) {
    if (!c || !name || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    int o = find_output(c, name);
    if (o < 0) return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no output '%s'", name);
    if (!c->out_kept[o] && c->out_on_dev && c->out_on_dev[o])
        return kiln_error(KILN_INVALID_ARGUMENT, "output '%s' is bound to device memory: "
                          "read it there", name);
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

/* ================================================================ device
** Engines of a device backend. Every value lives on the device, on the
** host, or both (RES_* bits): device layers read and write device memory
** (the planned block at the plan's offsets; constants from the engine's
** shared weight block), host layers (no device kernel) get host copies in a
** mirror block with the same offsets, and copies happen only where a value
** crosses. Inputs bound in host memory are staged into per-input device
** buffers at the start of a run, so a run whose every layer is on the
** device reads and writes fixed addresses: the second run of the same
** shapes and bindings is captured into a CUDA graph and later runs replay
** it, for up to GRAPH_SLOTS different keys at once (KILN_NO_CUDA_GRAPH=1 or
** kiln_context_set_cuda_graphs turn this off). */

static kiln_status device_setup(kiln_context *c, uint64_t need) {
    const kiln_engine *e = c->e;
    const ir_graph *g = G(c);
    const kiln_device_ops *D = e->ops->dev;
    kiln_status st;
    c->D = D;
    size_t nv = (size_t)g->n_values + 1, ni = (size_t)c->n_in + 1, no = (size_t)c->n_out + 1;
    c->in_dev = calloc(ni, sizeof *c->in_dev);
    c->in_dev_cap = calloc(ni, sizeof *c->in_dev_cap);
    c->in_on_dev = calloc(ni, sizeof *c->in_on_dev);
    c->out_on_dev = calloc(no, sizeof *c->out_on_dev);
    c->hvals = calloc(nv, sizeof *c->hvals);
    c->where = calloc(nv, sizeof *c->where);
    c->ev = calloc((size_t)g->n_nodes + 1, sizeof *c->ev);
    c->key_len = 1 + (size_t)c->n_in + (size_t)c->n_out;
    for (int i = 0; i < c->n_in; i++) c->key_len += (size_t)KILN_MAX(0, g->inputs[i]->type.rank);
    c->run_key = calloc(c->key_len, sizeof *c->run_key);
    if (!c->in_dev || !c->in_dev_cap || !c->in_on_dev || !c->out_on_dev || !c->hvals ||
        !c->where || !c->ev || !c->run_key)
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < GRAPH_SLOTS; i++) {
        c->gs[i].key = calloc(c->key_len, sizeof *c->gs[i].key);
        c->gs[i].out = calloc(no, sizeof *c->gs[i].out);
        if (!c->gs[i].key || !c->gs[i].out)
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    const char *env = getenv("KILN_NO_CUDA_GRAPH");
    c->use_graphs = !(env && env[0] && strcmp(env, "0") != 0);
    if ((st = D->stream_create(e->dev, &c->stream))) return st;
    c->cur = c->stream;
    if ((st = D->exec_create(e->dev, c->stream, &c->exec))) return st;
    if (!c->dmem) {
        if ((st = D->alloc(e->dev, (size_t)(need ? need : 256), (void **)&c->dmem)))
            return st;
        c->own_dmem = true;
    }
    bool any_host = false;
    for (int i = 0; i < g->n_nodes; i++)
        for (int p = 0; p < e->n_profiles; p++) any_host |= !runtime_layer_on_device(e, i, p);
    if (any_host && !(c->hmem = kiln_aligned_alloc((size_t)(need ? need : 64))))
        return kiln_error(KILN_OUT_OF_MEMORY, "cannot allocate %llu bytes of host "
                          "activation memory", (unsigned long long)need);
    for (int i = 0; i < c->n_in; i++) {
        const ir_type *t = &g->inputs[i]->type;
        size_t cap = 0;
        for (int p = 0; p < e->n_profiles; p++) {
            size_t nb;
            if (dtype_nbytes(t->dtype, shape_numel(t->rank, e->profiles[p].max[i]), &nb))
                cap = KILN_MAX(cap, nb);
        }
        c->in_dev_cap[i] = cap;
        if (cap && (st = D->alloc(e->dev, cap, &c->in_dev[i]))) return st;
    }
    return KILN_OK;
}

static void free_tmp(kiln_context *c) {
    for (int k = 0; k < c->n_tmp; k++) c->D->free(c->e->dev, c->tmp[k]);
    c->n_tmp = 0;
}

static void free_host_copy(kiln_context *c, int id) {
    kiln_tensor *h = &c->hvals[id];
    if (h->flags & TENSOR_OWNS_DATA) kiln_aligned_free(h->data);
    memset(h, 0, sizeof *h);
}

static void device_teardown(kiln_context *c) {
    if (!c->D) return;
    const kiln_device_ops *D = c->D;
    void *dev = c->e->dev;
    free_tmp(c);
    free(c->tmp);
    if (c->hvals)
        for (int v = 0; v < G(c)->n_values; v++) free_host_copy(c, v);
    for (int i = 0; i < GRAPH_SLOTS; i++) {
        if (c->gs[i].graph) D->graph_destroy(dev, c->gs[i].graph);
        free(c->gs[i].key);
        free(c->gs[i].out);
    }
    for (int i = 0; c->ev && i <= G(c)->n_nodes; i++)
        if (c->ev[i]) D->event_destroy(dev, c->ev[i]);
    for (int i = 0; c->in_dev && i < c->n_in; i++) D->free(dev, c->in_dev[i]);
    if (c->own_dmem) D->free(dev, c->dmem);
    if (c->exec) D->exec_destroy(dev, c->exec);
    if (c->stream) {
        D->stream_sync(dev, c->stream);
        D->stream_destroy(dev, c->stream);
    }
    kiln_aligned_free(c->hmem);
    free(c->in_dev); free(c->in_dev_cap); free(c->in_on_dev); free(c->out_on_dev);
    free(c->hvals); free(c->where); free(c->ev);
    free(c->run_key);
}

static kiln_status tmp_alloc(kiln_context *c, size_t n, void **out) {
    if (c->n_tmp == c->cap_tmp) {
        int cap = c->cap_tmp ? 2 * c->cap_tmp : 16;
        void **t = realloc(c->tmp, (size_t)cap * sizeof *t);
        if (!t) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        c->tmp = t;
        c->cap_tmp = cap;
    }
    kiln_status st = c->D->alloc(c->e->dev, n ? n : 64, out);
    if (!st) c->tmp[c->n_tmp++] = *out;
    c->irregular = true;
    return st;
}

/* A layer's host side: on a host engine the values themselves and the
** activation block; on a device engine the host copies and the mirror
** block (host layers use the planned offsets there). */
static kiln_tensor *host_val(kiln_context *c, int id) {
    return c->D ? &c->hvals[id] : &c->vals[id];
}
static uint8_t *host_base(const kiln_context *c) { return c->D ? c->hmem : c->mem; }

/* Device address for v's nb bytes: its planned slot, or a temporary. */
static kiln_status dev_slot(kiln_context *c, const ir_value *v, size_t nb, void **out) {
    const engine_plan *plan = &c->e->plans[c->profile];
    int64_t off = plan->offset[v->id];
    if (off >= 0 && nb <= plan->size[v->id]) {
        *out = c->dmem + off;
        return KILN_OK;
    }
    return tmp_alloc(c, nb, out);
}

/* Host memory for tensor t (metadata set) of value v: the host block
** (host_base) at the planned offset, or the heap. Zero-filled when zero is
** set. */
static kiln_status host_slot(kiln_context *c, const ir_value *v, kiln_tensor *t, bool zero) {
    const engine_plan *plan = &c->e->plans[c->profile];
    int64_t off = plan->offset[v->id];
    uint8_t *base = host_base(c);
    if (base && off >= 0 && t->nbytes <= plan->size[v->id]) {
        t->data = base + off;
        t->flags = 0;
        if (zero && t->nbytes) memset(t->data, 0, t->nbytes);
        return KILN_OK;
    }
    kiln_tensor tmp = *t;
    kiln_status st = tensor_alloc(t, tmp.dtype, tmp.rank, tmp.dims);
    return st;
}

static void copy_meta(kiln_tensor *dst, const kiln_tensor *src) {
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->nbytes = src->nbytes;
    dst->name = NULL;
}

static kiln_status ensure_dev(kiln_context *c, const ir_value *v) {
    int id = v->id;
    if (c->where[id] & RES_DEV) return KILN_OK;
    kiln_tensor *d = &c->vals[id];
    void *dev = c->e->dev;
    if (v->const_val) {
        copy_meta(d, v->const_val);
        d->flags = 0;
        if (c->e->dconst[id]) {
            d->data = c->e->dconst[id];
        } else {
            kiln_status st = tmp_alloc(c, v->const_val->nbytes, &d->data);
            if (!st) st = c->D->copy(dev, d->data, v->const_val->data, v->const_val->nbytes,
                                     DEV_H2D, c->cur);
            if (st) return st;
        }
        c->where[id] |= RES_DEV;
        return KILN_OK;
    }
    if (!(c->where[id] & RES_HOST))
        return kiln_error(KILN_INTERNAL, "value '%s' was read before it was computed", v->name);
    const kiln_tensor *h = &c->hvals[id];
    copy_meta(d, h);
    d->flags = 0;
    c->irregular = true; /* a host result crosses: no graph can replay it */
    kiln_status st = dev_slot(c, v, h->nbytes, &d->data);
    if (!st) st = c->D->copy(dev, d->data, h->data, h->nbytes, DEV_H2D, c->cur);
    if (!st) c->where[id] |= RES_DEV;
    return st;
}

/* Enqueues the copy of v to the host; the caller synchronizes before
** reading it (*pending is set). */
static kiln_status ensure_host(kiln_context *c, const ir_value *v, bool *pending) {
    int id = v->id;
    if (c->where[id] & RES_HOST) return KILN_OK;
    kiln_tensor *h = &c->hvals[id];
    if (v->const_val) {
        free_host_copy(c, id);
        *h = *v->const_val;
        h->flags = 0;
        h->name = NULL;
        c->where[id] |= RES_HOST;
        return KILN_OK;
    }
    if (!(c->where[id] & RES_DEV))
        return kiln_error(KILN_INTERNAL, "value '%s' was read before it was computed", v->name);
    const kiln_tensor *d = &c->vals[id];
    free_host_copy(c, id);
    copy_meta(h, d);
    kiln_status st = host_slot(c, v, h, false);
    if (!st) st = c->D->copy(c->e->dev, h->data, d->data, d->nbytes, DEV_D2H, c->cur);
    if (st) return st;
    c->where[id] |= RES_HOST;
    *pending = true;
    c->irregular = true;
    return KILN_OK;
}

static void release_dev(kiln_context *c, const ir_value *v) {
    if (--c->uses[v->id] > 0) return;
    free_host_copy(c, v->id);
    c->where[v->id] = 0;
}

static bool types_concrete(const ir_type *t, int n) {
    for (int o = 0; o < n; o++) {
        if (t[o].rank < 0 || !dtype_is_valid((int)t[o].dtype)) return false;
        for (int d = 0; d < t[o].rank; d++)
            if (t[o].dims[d] < 0) return false;
    }
    return true;
}

/* Output types of layer n from its inputs' shapes, reading the contents
** of inputs that are on the host; when that is not enough (a shape read
** from a tensor a device layer computed), the small integer inputs are
** fetched from the device first. */
static kiln_status infer_layer_dev(kiln_context *c, const ir_node *n, bool *pending) {
    const kiln_engine *e = c->e;
    const kiln_tensor **cval = (const kiln_tensor **)c->res; /* scratch */
    for (int pass = 0; pass < 2; pass++) {
        bool all = true;
        for (int k = 0; k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            cval[k] = NULL;
            c->tin[k] = NULL;
            if (!v) continue;
            const kiln_tensor *m = v->const_val ? v->const_val
                                 : (c->where[v->id] & RES_DEV) ? &c->vals[v->id]
                                                               : &c->hvals[v->id];
            c->types[k].dtype = m->dtype;
            c->types[k].rank = m->rank;
            memcpy(c->types[k].dims, m->dims, sizeof c->types[k].dims);
            c->tin[k] = &c->types[k];
            if (v->const_val) cval[k] = v->const_val;
            else if (c->where[v->id] & RES_HOST) cval[k] = &c->hvals[v->id];
            else all = false;
        }
        int64_t counter = -1;
        kiln_status st = op_infer_node(n, (int)e->ir->opset, c->tin, cval, NULL, NULL,
                                       c->otypes, NULL, NULL, all, &counter, runtime_sym);
        if (st) return st;
        if (all || types_concrete(c->otypes, n->n_out)) return KILN_OK;
        /* Fetch the small integer inputs and try once more. */
        bool fetched = false;
        for (int k = 0; k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            if (!v || v->const_val || (c->where[v->id] & RES_HOST)) continue;
            /* Small integer tensors (shapes, indices), and tiny tensors of
            ** any type: Range's float start/limit/delta (the node tests'
            ** expanded window functions compute them on the device) and
            ** Resize's float scales. */
            kiln_dtype t = c->vals[v->id].dtype;
            int64_t numel = tensor_numel(&c->vals[v->id]);
            bool int_small = (t == KILN_DTYPE_INT64 || t == KILN_DTYPE_INT32) && numel <= 4096;
            if (!int_small && numel > 16) continue;
            if ((st = ensure_host(c, v, pending))) return st;
            fetched = true;
        }
        if (!fetched) return KILN_OK; /* data-dependent: a host layer sizes it */
        if (*pending) {
            if ((st = c->D->stream_sync(e->dev, c->cur))) return st;
            *pending = false;
        }
    }
    return KILN_OK;
}

/* Stages host-bound inputs to the device; device-bound ones are used in
** place. Also fills the run's key (shapes and I/O addresses). */
static kiln_status stage_inputs(kiln_context *c) {
    const ir_graph *g = G(c);
    size_t k = 0;
    c->run_key[k++] = c->profile;
    for (int i = 0; i < c->n_in; i++) {
        const ir_value *v = g->inputs[i];
        kiln_tensor *t = &c->vals[v->id];
        memset(t, 0, sizeof *t);
        kiln_status st = input_meta(c, i, t);
        if (st) return st;
        size_t nb = t->nbytes;
        for (int d = 0; d < t->rank; d++) c->run_key[k++] = t->dims[d];
        if (c->in_on_dev[i]) {
            t->data = c->in_data[i];
            c->run_key[k++] = (int64_t)(uintptr_t)c->in_data[i];
            c->where[v->id] = RES_DEV;
            continue;
        }
        c->run_key[k++] = 0;
        kiln_tensor *h = &c->hvals[v->id];
        free_host_copy(c, v->id);
        copy_meta(h, t);
        h->data = c->in_data[i];
        if (nb > c->in_dev_cap[i])
            return kiln_error(KILN_INTERNAL, "input '%s' staging buffer is too small", v->name);
        t->data = c->in_dev[i];
        st = c->D->copy(c->e->dev, t->data, h->data, nb, DEV_H2D, c->cur);
        if (st) return st;
        c->where[v->id] = RES_DEV | RES_HOST;
    }
    for (int o = 0; o < c->n_out; o++)
        c->run_key[k++] = c->out_on_dev[o] ? (int64_t)(uintptr_t)c->out_data[o] : 0;
    return KILN_OK;
}

/* Device engine, after inference: where layer i runs (its device tactic, or
** the reference kernel on the host when the device tactic cannot size a
** data-dependent output), whether the run stays replayable as a CUDA graph,
** and its inputs brought to that side (c->args). */
static kiln_status place_layer_dev(kiln_context *c, int i, const kiln_tactic **tac,
                                   bool *on_dev, bool *pending) {
    const kiln_engine *e = c->e;
    const ir_graph *g = G(c);
    const ir_node *n = g->nodes[i];
    char lab[256];
    kiln_status st;
    if (*on_dev && !types_concrete(c->otypes, n->n_out)) {
        /* The output size depends on values the device holds (a Range
        ** over computed bounds): this run uses the reference kernel,
        ** which sizes its own outputs. */
        const kiln_tactic *ref = kiln_backend_cpu()->find_tactic("ref");
        if (!ref || !ref_kernel_get(n->op))
            return kiln_error(KILN_INTERNAL, "%s: device tactic %s cannot size a "
                              "data-dependent output", ir_node_label(n, lab, sizeof lab),
                              (*tac)->name);
        *tac = ref;
        *on_dev = false;
        c->irregular = true;
    }
    /* It reads parameter values on the host mid-run: no graph replay. */
    if (*on_dev && ((*tac)->flags & TACTIC_READS_PARAMS)) c->irregular = true;
    int total = n->n_in + n->n_implicit;
    for (int k = 0; k < total; k++) {
        const ir_value *v = n->in[k];
        c->args[k] = NULL;
        if (!v) continue;
        /* Shape and Size read only dims: a host one gets them without the
        ** device tensor's bytes (a dynamic-shape BERT's Shape of the
        ** [B,S,768] LayerNorm output copied it all to the host per run). */
        if (!*on_dev && k == 0 && (n->op == OP_Shape || n->op == OP_Size) && !v->const_val &&
            !(c->where[v->id] & RES_HOST) && (c->where[v->id] & RES_DEV)) {
            c->meta_view = c->vals[v->id];
            c->meta_view.data = NULL;
            c->meta_view.nbytes = 0;
            c->args[k] = &c->meta_view;
            continue;
        }
        st = *on_dev ? ensure_dev(c, v) : ensure_host(c, v, pending);
        if (st) return st;
        c->args[k] = *on_dev ? &c->vals[v->id] : &c->hvals[v->id];
    }
    if (!*on_dev) {
        /* Host layers are replayable only when they compute shapes
        ** (small integer results, no graph output). */
        for (int o = 0; o < n->n_out; o++) {
            const ir_type *t = &c->otypes[o];
            if ((t->dtype != KILN_DTYPE_INT64 && t->dtype != KILN_DTYPE_INT32) ||
                t->rank > 1 || ir_edit_is_graph_output(g, n->out[o]))
                c->irregular = true;
        }
        if (*pending && (st = c->D->stream_sync(e->dev, c->cur))) return st;
    }
    return KILN_OK;
}

/* A value's last use: frees its host data, and on a device engine forgets
** where it lives (its device slot belongs to the plan). */
static void release_value(kiln_context *c, const ir_value *v) {
    if (c->D) release_dev(c, v);
    else release(c, v);
}

/* Runs every layer once, on a host engine (bind_host_values first) or a
** device engine (stage_inputs first; host layers run on host copies, and
** values move between the sides as layers need them). */
static kiln_status run_layers(kiln_context *c) {
    const kiln_engine *e = c->e;
    const ir_graph *g = G(c);
    const kiln_device_ops *D = c->D; /* NULL on a host engine */
    const engine_plan *plan = &e->plans[c->profile];
    char lab[256];
    kiln_status st;
    for (int v = 0; v < g->n_values; v++) c->uses[v] = g->values[v]->n_uses;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool all_const = true;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all_const = false;
        if (all_const) goto release_inputs;
        const kiln_tactic *tac = e->layers[i].tactic[c->profile];
        bool on_dev = D && (tac->flags & TACTIC_DEVICE) != 0;
        bool pending = false;
        double t0 = 0;
        if (c->profiling) {
            if (!D) t0 = now_ms();
            else if ((st = D->event_record(e->dev, c->ev[i], c->cur))) return st;
        }
        if (!D) {
            if ((st = infer_layer_host(c, n))) return st;
        } else if ((st = infer_layer_dev(c, n, &pending)) ||
                   (st = place_layer_dev(c, i, &tac, &on_dev, &pending))) {
            return st;
        }
        bool zero = !(tac->flags & TACTIC_OVERWRITES_OUTPUT);
        for (int o = 0; o < n->n_out; o++) {
            const ir_value *ov = n->out[o];
            const ir_type *ty = &c->otypes[o];
            kiln_tensor *t = on_dev ? &c->vals[ov->id] : host_val(c, ov->id);
            if (!on_dev && D) free_host_copy(c, ov->id);
            memset(t, 0, sizeof *t);
            t->dtype = ty->dtype;
            t->rank = ty->rank < 0 ? 0 : ty->rank;
            c->res[o] = t;
            bool known = types_concrete(ty, 1);
            if (!known) {
                if (on_dev)
                    return kiln_error(KILN_INTERNAL, "%s: device tactic %s cannot size a "
                                      "data-dependent output", ir_node_label(n, lab, sizeof lab),
                                      tac->name);
                continue; /* the host kernel sizes it */
            }
            memcpy(t->dims, ty->dims, sizeof t->dims);
            size_t nb;
            if (!dtype_nbytes(ty->dtype, shape_numel(ty->rank, ty->dims), &nb))
                return kiln_error(KILN_RUNTIME_ERROR, "%s: output %d is too large",
                                  ir_node_label(n, lab, sizeof lab), o);
            t->nbytes = nb;
            if (on_dev) {
                if ((st = dev_slot(c, ov, nb, &t->data))) return st;
                if (zero && (st = D->memset0(e->dev, t->data, nb, c->cur))) return st;
            } else if ((st = host_slot(c, ov, t, zero))) {
                kiln_error_prefix("%s", ir_node_label(n, lab, sizeof lab));
                return st;
            }
        }
        ref_ctx *rc = c->rc;
        memset(rc, 0, sizeof *rc);
        rc->node = n;
        rc->opset = (int)e->ir->opset;
        rc->n_in = n->n_in;
        rc->in = c->args;
        rc->n_implicit = n->n_implicit;
        rc->n_out = n->n_out;
        rc->out = c->res;
        uint8_t *base = on_dev ? c->dmem : host_base(c);
        rc->ws = plan->workspace_bytes && base ? base + plan->total_bytes : NULL;
        rc->ws_size = rc->ws ? (size_t)plan->workspace_bytes : 0;
        rc->stream = c->cur; /* NULL on a host engine */
        rc->exec = c->exec;
        /* Host tactics read their prepared data in place; device tactics get
        ** none until the attach step uploads it (see kiln_tactic.prepare). */
        if (e->layers[i].blob && !on_dev && tac == e->layers[i].tactic[c->profile]) {
            rc->blob = e->layers[i].blob[c->profile];
            rc->blob_size = (size_t)e->layers[i].blob_size[c->profile];
        }
        if (tac->run(rc) != 0)
            return kiln_error(KILN_RUNTIME_ERROR, "%s: %s", ir_node_label(n, lab, sizeof lab),
                              rc->err[0] ? rc->err : "layer failed");
        for (int o = 0; o < n->n_out; o++) {
            const ir_value *ov = n->out[o];
            if (on_dev) {
                c->where[ov->id] = RES_DEV;
            } else {
                const kiln_tensor *h = host_val(c, ov->id);
                if (!h->data && tensor_numel(h) != 0)
                    return kiln_error(KILN_INTERNAL, "%s: output %d was not produced",
                                      ir_node_label(n, lab, sizeof lab), o);
                if (D) { /* the device-side value records its shape only */
                    copy_meta(&c->vals[ov->id], h);
                    c->vals[ov->id].data = NULL;
                    c->vals[ov->id].flags = 0;
                    c->where[ov->id] = RES_HOST;
                }
            }
            if (c->uses[ov->id] <= 0) {
                c->uses[ov->id] = 1;
                release_value(c, ov);
            }
        }
        if (c->profiling && !D) c->layer_ms[i] += now_ms() - t0;
    release_inputs:
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k] && !n->in[k]->const_val) release_value(c, n->in[k]);
    }
    if (c->profiling && D && (st = D->event_record(e->dev, c->ev[g->n_nodes], c->cur)))
        return st;
    return KILN_OK;
}

/* After the layers: results to the caller's buffers or kept tensors. */
static kiln_status copy_out(kiln_context *c) {
    const ir_graph *g = G(c);
    const kiln_device_ops *D = c->D;
    void *dev = c->e->dev;
    kiln_status st;
    bool need_sync = false;
    for (int o = 0; o < c->n_out; o++) {
        const ir_value *v = g->outputs[o];
        if (!v->const_val && !c->where[v->id])
            return kiln_error(KILN_INTERNAL, "output '%s' was not computed", v->name);
        const kiln_tensor *m = v->const_val ? v->const_val
                             : (c->where[v->id] & RES_DEV) ? &c->vals[v->id] : &c->hvals[v->id];
        if (c->out_on_dev[o]) {
            if (c->out_size[o] < m->nbytes)
                return kiln_error(KILN_INVALID_ARGUMENT, "output '%s' buffer holds %zu bytes; "
                                  "the result needs %zu", v->name, c->out_size[o], m->nbytes);
            if ((st = ensure_dev(c, v))) return st;
            if ((st = D->copy(dev, c->out_data[o], c->vals[v->id].data, m->nbytes, DEV_D2D,
                              c->cur)))
                return st;
            continue;
        }
        if ((st = tensor_new(m->dtype, m->rank, m->dims, &c->out_kept[o]))) return st;
        if (v->const_val || !(c->where[v->id] & RES_DEV)) {
            const kiln_tensor *h = v->const_val ? v->const_val : &c->hvals[v->id];
            if (h->nbytes) memcpy(c->out_kept[o]->data, h->data, h->nbytes);
        } else if ((st = D->copy(dev, c->out_kept[o]->data, c->vals[v->id].data, m->nbytes,
                                 DEV_D2H, c->cur))) {
            return st;
        }
        need_sync = true;
    }
    if (need_sync && (st = D->stream_sync(dev, c->cur))) return st;
    for (int o = 0; o < c->n_out; o++) {
        if (c->out_on_dev[o] || !c->out_data[o]) continue;
        const kiln_tensor *t = c->out_kept[o];
        if (c->out_size[o] < t->nbytes)
            return kiln_error(KILN_INVALID_ARGUMENT, "output '%s' buffer holds %zu bytes; "
                              "the result needs %zu", g->outputs[o]->name, c->out_size[o],
                              t->nbytes);
        if (t->nbytes) memcpy(c->out_data[o], t->data, t->nbytes);
    }
    return KILN_OK;
}

static void reset_dev_values(kiln_context *c) {
    const ir_graph *g = G(c);
    for (int v = 0; v < g->n_values; v++) {
        free_host_copy(c, v);
        memset(&c->vals[v], 0, sizeof c->vals[v]);
        c->where[v] = 0;
    }
}

/* The graph slot holding this run's key, or NULL. */
static graph_slot *graph_find(kiln_context *c) {
    for (int i = 0; i < GRAPH_SLOTS; i++)
        if (c->gs[i].state && !memcmp(c->gs[i].key, c->run_key, c->key_len * sizeof *c->run_key))
            return &c->gs[i];
    return NULL;
}

/* Drops every captured graph (graphs turned off, or a capture failed). */
static void graphs_reset(kiln_context *c) {
    for (int i = 0; i < GRAPH_SLOTS; i++) {
        if (c->gs[i].graph) c->D->graph_destroy(c->e->dev, c->gs[i].graph);
        c->gs[i].graph = NULL;
        c->gs[i].state = 0;
    }
}

static kiln_status device_run(kiln_context *c, void *stream, bool sync) {
    const kiln_device_ops *D = c->D;
    void *dev = c->e->dev;
    const ir_graph *g = G(c);
    kiln_status st;
    if (stream != c->cur) {
        if ((st = D->exec_set_stream(dev, c->exec, stream))) return st;
        c->cur = stream;
    }
    drop_outputs(c);
    reset_dev_values(c);
    c->irregular = false;
    if (c->profiling)
        for (int i = 0; i <= g->n_nodes; i++)
            if (!c->ev[i] && (st = D->event_create(dev, &c->ev[i]))) return st;
    if ((st = stage_inputs(c))) goto done;
    bool graphs = c->use_graphs && !c->profiling;
    graph_slot *gsl = graphs ? graph_find(c) : NULL;
    if (gsl && gsl->state == 2) {
        gsl->used = ++c->gs_tick;
        if ((st = D->graph_launch(dev, gsl->graph, c->cur))) goto done;
        for (int o = 0; o < c->n_out; o++) {
            const ir_value *v = g->outputs[o];
            if (v->const_val) continue;
            c->vals[v->id] = gsl->out[o];
            c->where[v->id] = RES_DEV;
        }
    } else if (gsl) {
        /* Second run of these shapes and bindings: record it. */
        gsl->used = ++c->gs_tick;
        if ((st = D->capture_begin(dev, c->cur))) goto done;
        kiln_status run_st = run_layers(c);
        void *graph = NULL;
        st = D->capture_end(dev, c->cur, &graph);
        if (run_st || st || c->irregular) {
            /* Not capturable after all: run it plainly from now on. */
            if (graph) D->graph_destroy(dev, graph);
            kiln_error_clear();
            graphs_reset(c);
            c->use_graphs = false;
            reset_dev_values(c);
            free_tmp(c);
            if ((st = stage_inputs(c)) || (st = run_layers(c))) goto done;
        } else {
            gsl->graph = graph;
            gsl->state = 2;
            for (int o = 0; o < c->n_out; o++) gsl->out[o] = c->vals[g->outputs[o]->id];
            if ((st = D->graph_launch(dev, gsl->graph, c->cur))) goto done;
        }
    } else {
        if ((st = run_layers(c))) goto done;
        if (graphs && !c->irregular) {
            /* First run of this key: remember it in the least recently used slot. */
            graph_slot *v = &c->gs[0];
            for (int i = 1; i < GRAPH_SLOTS && v->state; i++)
                if (!c->gs[i].state || c->gs[i].used < v->used) v = &c->gs[i];
            if (v->graph) D->graph_destroy(dev, v->graph);
            v->graph = NULL;
            memcpy(v->key, c->run_key, c->key_len * sizeof *c->run_key);
            v->state = 1;
            v->used = ++c->gs_tick;
        }
    }
    if ((st = copy_out(c))) goto done;
    if (sync && (st = D->stream_sync(dev, c->cur))) goto done;
    if (c->profiling) {
        for (int i = 0; i < g->n_nodes; i++) {
            float ms = 0;
            if ((st = D->event_elapsed(dev, c->ev[i], c->ev[i + 1], &ms))) goto done;
            c->layer_ms[i] += ms;
        }
        c->runs++;
    }
done:
    free_tmp(c);
    reset_dev_values(c);
    return st;
}

kiln_status kiln_context_set_device_tensor(kiln_context *c, const char *name,
                                           void *device_ptr, size_t size) {
    if (!c || !name) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (!c->D)
        return kiln_error(KILN_INVALID_ARGUMENT, "the engine runs on the CPU: bind host "
                          "memory with kiln_context_set_tensor");
    kiln_status st = kiln_context_set_tensor(c, name, device_ptr, size);
    if (st) return st;
    int i = find_input(c, name);
    if (i >= 0) c->in_on_dev[i] = device_ptr != NULL;
    else c->out_on_dev[find_output(c, name)] = device_ptr != NULL;
    return KILN_OK;
}

kiln_status kiln_context_set_cuda_graphs(kiln_context *c, int enabled) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    if (!c->D) return KILN_OK;
    c->use_graphs = enabled != 0;
    graphs_reset(c);
    return KILN_OK;
}

kiln_status kiln_context_synchronize(kiln_context *c) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "context is NULL");
    if (!c->D) return KILN_OK;
    return c->D->stream_sync(c->e->dev, c->cur);
}

void *kiln_context_stream(const kiln_context *c) { return c && c->D ? c->stream : NULL; }
