/* model.c: the public kiln_model object: loading and introspection. The
** public load calls and reference execution are in runtime/model_api.c,
** above the reference backend, which hands its evaluator down to here. */
#include "model.h"
#include "../ops/eval.h"
#include "../util/file.h"

#include <stdio.h>


/* Op histogram. A hash of op_type -> stat index keeps it linear: a hostile
** model may use hundreds of thousands of distinct (unknown) op types. */
typedef struct op_counter {
    kiln_model *km;
    int cap;
    int *slots; /* stat index + 1, 0 when empty */
    size_t n_slots;
} op_counter;

static uint64_t op_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static size_t op_slot(const op_counter *oc, const char *op_type) {
    size_t mask = oc->n_slots - 1;
    for (size_t i = op_hash(op_type) & mask;; i = (i + 1) & mask) {
        int k1 = oc->slots[i];
        if (!k1 || strcmp(oc->km->stats[k1 - 1].op_type, op_type) == 0) return i;
    }
}

static bool count_ops(op_counter *oc, const ir_graph *g) {
    kiln_model *km = oc->km;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        km->n_nodes += g == km->ir->graph;
        if ((size_t)(km->n_stats + 1) * 2 > oc->n_slots) {
            size_t ns = oc->n_slots ? oc->n_slots * 2 : 64;
            int *slots = calloc(ns, sizeof *slots);
            if (!slots) return false;
            free(oc->slots);
            oc->slots = slots;
            oc->n_slots = ns;
            for (int k = 0; k < km->n_stats; k++)
                oc->slots[op_slot(oc, km->stats[k].op_type)] = k + 1;
        }
        size_t j = op_slot(oc, n->op_type);
        int k = oc->slots[j] - 1;
        if (k < 0) {
            if (km->n_stats == oc->cap) {
                int cap = oc->cap ? oc->cap * 2 : 32;
                op_stat *p = realloc(km->stats, (size_t)cap * sizeof *p);
                if (!p) return false;
                km->stats = p;
                oc->cap = cap;
            }
            k = km->n_stats++;
            km->stats[k].op_type = n->op_type;
            km->stats[k].count = 0;
            km->stats[k].supported = n->schema && op_evaluator_for(km->ir, n);
            oc->slots[j] = k + 1;
        }
        km->stats[k].count++;
        for (int a = 0; a < n->n_attrs; a++) {
            const ir_attr *at = &n->attrs[a];
            if (at->type == IR_ATTR_GRAPH && !count_ops(oc, at->g)) return false;
            for (int j2 = 0; at->type == IR_ATTR_GRAPHS && j2 < at->n; j2++)
                if (!count_ops(oc, at->graphs[j2])) return false;
        }
    }
    return true;
}

static int cmp_stat(const void *a, const void *b) {
    const op_stat *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->op_type, y->op_type);
}

/* Import warnings, collected during onnx_import_ex and passed on to the
** caller's logger as they come. */
typedef struct warn_list {
    const kiln_model_load_options *o;
    int n, cap;
    char **v;
    bool oom;
} warn_list;

static void warn_collect(void *user, const char *msg) {
    warn_list *w = user;
    const kiln_model_load_options *o = w->o;
    if (o->max_severity >= KILN_SEVERITY_WARNING) {
        if (o->log) o->log(o->log_user, KILN_SEVERITY_WARNING, msg);
        else fprintf(stderr, "kiln: warning: %s\n", msg);
    }
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 8;
        char **p = realloc(w->v, (size_t)cap * sizeof *p);
        if (!p) {
            w->oom = true;
            return;
        }
        w->v = p;
        w->cap = cap;
    }
    char *s = kiln_strdup(msg);
    if (!s) {
        w->oom = true;
        return;
    }
    w->v[w->n++] = s;
}

static void warn_list_free(warn_list *w) {
    for (int i = 0; i < w->n; i++) free(w->v[i]);
    free(w->v);
}

static const kiln_model_load_options *options_or_default(
    const kiln_model_load_options *o, kiln_model_load_options *def) {
    kiln_model_load_options_init(def);
    if (!o) return def;
    /* an older, shorter struct keeps the defaults for the fields it lacks */
    size_t n = KILN_MIN(o->struct_size, sizeof *def);
    memcpy(def, o, n);
    def->struct_size = sizeof *def;
    return def;
}

void kiln_model_load_options_init(kiln_model_load_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->max_severity = KILN_SEVERITY_WARNING;
}

static kiln_status wrap(ir_model *ir, const void *bytes, size_t n,
                        warn_list *w, kiln_model **out) {
    kiln_model *km = calloc(1, sizeof *km);
    if (!km || w->oom) {
        free(km);
        ir_model_free(ir);
        warn_list_free(w);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    km->warnings = w->v;
    km->n_warnings = w->n;
    km->ir = ir;
    km->bytes = bytes;
    km->nbytes = n;
    op_counter oc = {km, 0, NULL, 0};
    bool counted = count_ops(&oc, ir->graph);
    free(oc.slots);
    if (!counted) {
        kiln_model_free(km);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    if (km->n_stats) qsort(km->stats, (size_t)km->n_stats, sizeof *km->stats, cmp_stat);
    *out = km;
    return KILN_OK;
}

kiln_status kiln_model_load_ev(const char *path, const kiln_model_load_options *o,
                               const op_evaluator *eval, kiln_model **out) {
    void *base;
    size_t size;
    if (!path || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_model_load_options def;
    warn_list w = {options_or_default(o, &def), 0, 0, NULL, false};
    onnx_warn_sink sink = {warn_collect, &w};
    kiln_status s = kiln_map_file(path, &base, &size);
    if (s) return s;
    char *dir = kiln_dirname(path);
    ir_model *ir = NULL;
    s = dir ? onnx_import_ex(base, size, dir, eval, &sink, &ir)
            : kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    free(dir);
    if (s) {
        warn_list_free(&w);
        kiln_unmap_file(base, size);
        kiln_error_prefix("%s", path);
        return s;
    }
    ir->map_base = base;
    ir->map_size = size;
    return wrap(ir, base, size, &w, out);
}

kiln_status kiln_model_load_memory_ev(const void *data, size_t size,
                                      const char *external_dir,
                                      const kiln_model_load_options *o,
                                      const op_evaluator *eval,
                                      kiln_model **out) {
    if (!data || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_model_load_options def;
    warn_list w = {options_or_default(o, &def), 0, 0, NULL, false};
    onnx_warn_sink sink = {warn_collect, &w};
    ir_model *ir = NULL;
    kiln_status s = onnx_import_ex(data, size, external_dir, eval, &sink, &ir);
    if (s) {
        warn_list_free(&w);
        return s;
    }
    return wrap(ir, data, size, &w, out);
}

int kiln_model_num_warnings(const kiln_model *m) { return m ? m->n_warnings : 0; }
const char *kiln_model_warning(const kiln_model *m, int i) {
    return m && i >= 0 && i < m->n_warnings ? m->warnings[i] : NULL;
}

void kiln_model_free(kiln_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_warnings; i++) free(m->warnings[i]);
    free(m->warnings);
    ir_model_free(m->ir);
    free(m->stats);
    free(m);
}

const char *kiln_model_producer(const kiln_model *m) { return m->ir->producer; }
int64_t kiln_model_ir_version(const kiln_model *m) { return m->ir->ir_version; }
int kiln_model_num_opsets(const kiln_model *m) { return m->ir->n_opsets; }
void kiln_model_opset(const kiln_model *m, int i, const char **domain,
                      int64_t *version) {
    *domain = m->ir->opsets[i].domain;
    *version = m->ir->opsets[i].version;
}
int kiln_model_num_nodes(const kiln_model *m) { return m->n_nodes; }
int kiln_model_num_op_types(const kiln_model *m) { return m->n_stats; }
void kiln_model_op_type(const kiln_model *m, int i, const char **op_type,
                        int *count, int *supported) {
    *op_type = m->stats[i].op_type;
    *count = m->stats[i].count;
    *supported = m->stats[i].supported;
}
int kiln_model_num_inputs(const kiln_model *m) { return m->ir->graph->n_inputs; }
int kiln_model_num_outputs(const kiln_model *m) { return m->ir->graph->n_outputs; }

kiln_status kiln_model_input(const kiln_model *m, int i, kiln_io_info *out) {
    if (!m || !out || i < 0 || i >= m->ir->graph->n_inputs)
        return kiln_error(KILN_INVALID_ARGUMENT, "input index %d out of range", i);
    ir_value_io_info(m->ir, m->ir->graph->inputs[i], out);
    return KILN_OK;
}

kiln_status kiln_model_output(const kiln_model *m, int i, kiln_io_info *out) {
    if (!m || !out || i < 0 || i >= m->ir->graph->n_outputs)
        return kiln_error(KILN_INVALID_ARGUMENT, "output index %d out of range", i);
    ir_value_io_info(m->ir, m->ir->graph->outputs[i], out);
    return KILN_OK;
}

kiln_status kiln_model_reimport(const kiln_model *m, ir_model **out) {
    return onnx_import(m->bytes, m->nbytes, m->ir->dir, m->ir->eval, out);
}
