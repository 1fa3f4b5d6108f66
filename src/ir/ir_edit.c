/* ir_edit.c: graph rewriting helpers for the optimizer passes: new nodes,
** values and constants, attribute edits, rewiring of consumers, and the
** compaction that restores the IR invariants after a pass. */
#include "ir_edit.h"

#include <stdio.h>

/* ------------------------------------------------------------- names */
static bool value_name_taken(const ir_graph *g, const char *name) {
    for (; g; g = g->parent)
        for (int i = 0; i < g->n_values; i++)
            if (strcmp(g->values[i]->name, name) == 0) return true;
    return false;
}

static bool node_name_taken(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return true;
    return false;
}

/* hint itself when free, else hint_1, hint_2, ... (arena copy). */
static const char *unique_name(ir_graph *g, const char *hint, bool node) {
    if (!hint || !hint[0]) hint = "kiln";
    size_t n = strlen(hint);
    if (n > 200) n = 200; /* keep generated names bounded */
    char buf[256];
    memcpy(buf, hint, n);
    buf[n] = 0;
    for (unsigned k = 1;; k++) {
        bool taken = node ? node_name_taken(g, buf) : value_name_taken(g, buf);
        if (!taken) return kiln_arena_strdup(&g->model->arena, buf);
        snprintf(buf + n, sizeof buf - n, "_%u", k);
    }
}

/* --------------------------------------------------------- creation */
ir_value *ir_edit_new_value(ir_graph *g, const char *hint) {
    const char *nm = unique_name(g, hint, false);
    return nm ? ir_value_new(g, nm) : NULL;
}

ir_node *ir_edit_add_node(ir_graph *g, int op, int n_in, int n_out,
                          const char *name_hint) {
    if (!name_hint || !name_hint[0]) name_hint = op_name(op);
    const char *nm = unique_name(g, name_hint, true);
    if (!nm) return NULL;
    ir_node *n = ir_node_new(g, n_in, n_out);
    if (!n) return NULL;
    n->name = nm;
    n->op = op;
    n->op_type = op_name(op);
    n->domain = op_is_internal(op) ? "kiln" : "";
    n->schema = op_schema_get(op);
    for (int i = 0; i < n_in; i++) n->in[i] = NULL;
    for (int i = 0; i < n_out; i++) {
        char hint[256];
        if (n_out == 1) snprintf(hint, sizeof hint, "%s", name_hint);
        else snprintf(hint, sizeof hint, "%.200s_out%d", name_hint, i);
        ir_value *v = ir_edit_new_value(g, hint);
        if (!v) return NULL;
        v->producer = n;
        v->producer_out = i;
        n->out[i] = v;
    }
    return n;
}

ir_value *ir_edit_add_const(ir_graph *g, kiln_tensor *t, const char *hint) {
    if (!ir_model_own_tensor(g->model, t)) return NULL;
    ir_value *v = ir_edit_new_value(g, hint);
    if (!v) return NULL;
    v->const_val = t;
    v->type.dtype = t->dtype;
    v->type.rank = t->rank;
    memcpy(v->type.dims, t->dims, sizeof t->dims);
    v->flags |= IR_VALUE_INITIALIZER;
    return v;
}

/* -------------------------------------------------------- attributes */
/* The attribute slot for name, appended (zeroed, named) if absent. */
static ir_attr *attr_slot(ir_node *n, const char *name) {
    kiln_arena *ar = &n->graph->model->arena;
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            const char *nm = n->attrs[i].name;
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = nm;
            return &n->attrs[i];
        }
    ir_attr *a = kiln_arena_alloc(ar, ((size_t)n->n_attrs + 1) * sizeof *a);
    const char *nm = kiln_arena_strdup(ar, name);
    if (!a || !nm) return NULL;
    if (n->n_attrs) memcpy(a, n->attrs, (size_t)n->n_attrs * sizeof *a);
    n->attrs = a;
    ir_attr *s = &a[n->n_attrs++];
    memset(s, 0, sizeof *s);
    s->name = nm;
    return s;
}

bool ir_edit_set_int(ir_node *n, const char *name, int64_t v) {
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_INT;
    a->i = v;
    return true;
}

bool ir_edit_set_graph(ir_node *n, const char *name, ir_graph *g) {
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_GRAPH;
    a->g = g;
    g->owner = n;
    return true;
}

bool ir_edit_set_float(ir_node *n, const char *name, float v) {
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_FLOAT;
    a->f = v;
    return true;
}

bool ir_edit_set_str(ir_node *n, const char *name, const char *v) {
    char *s = kiln_arena_strdup(&n->graph->model->arena, v ? v : "");
    if (!s) return false;
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_STRING;
    a->s = s;
    a->s_len = strlen(s);
    return true;
}

bool ir_edit_set_ints(ir_node *n, const char *name, const int64_t *v, int count) {
    if (count < 0) return false;
    int64_t *p = kiln_arena_alloc(&n->graph->model->arena,
                                  (size_t)(count ? count : 1) * sizeof *p);
    if (!p) return false;
    if (count) memcpy(p, v, (size_t)count * sizeof *p);
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_INTS;
    a->ints = p;
    a->n = count;
    return true;
}

bool ir_edit_set_floats(ir_node *n, const char *name, const float *v, int count) {
    if (count < 0) return false;
    float *p = kiln_arena_alloc(&n->graph->model->arena,
                                (size_t)(count ? count : 1) * sizeof *p);
    if (!p) return false;
    if (count) memcpy(p, v, (size_t)count * sizeof *p);
    ir_attr *a = attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_FLOATS;
    a->floats = p;
    a->n = count;
    return true;
}

bool ir_edit_copy_attrs(ir_node *dst, const ir_node *src) {
    for (int i = 0; i < src->n_attrs; i++) {
        const ir_attr *s = &src->attrs[i];
        ir_attr *a = attr_slot(dst, s->name);
        if (!a) return false;
        const char *nm = a->name;
        *a = *s; /* payloads live in the model's arena: sharing is safe */
        a->name = nm;
    }
    return true;
}

/* ---------------------------------------------------------- rewiring */
static bool owns_value(const ir_graph *g, const ir_value *v) {
    return v->id >= 0 && v->id < g->n_values && g->values[v->id] == v;
}

bool ir_edit_is_graph_output(const ir_graph *g, const ir_value *v) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return true;
    return false;
}

static bool is_graph_input(const ir_graph *g, const ir_value *v) {
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v) return true;
    return (v->flags & IR_VALUE_INPUT) != 0;
}

/* Points the captures of n's subgraphs that stand for old at new. */
static void recapture(ir_node *n, ir_value *old_v, ir_value *new_v) {
    for (int k = 0; k < n->n_attrs; k++) {
        ir_attr *a = &n->attrs[k];
        int ng = a->type == IR_ATTR_GRAPH ? 1 : a->type == IR_ATTR_GRAPHS ? a->n : 0;
        for (int j = 0; j < ng; j++) {
            ir_graph *sg = a->type == IR_ATTR_GRAPH ? a->g : a->graphs[j];
            if (!sg) continue;
            for (int c = 0; c < sg->n_captures; c++)
                if (sg->capture_outer[c] == old_v) sg->capture_outer[c] = new_v;
        }
    }
}

void ir_edit_replace_uses(ir_graph *g, ir_value *old_v, ir_value *new_v) {
    if (old_v == new_v) return;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead) continue;
        bool implicit = false;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            if (n->in[k] != old_v) continue;
            n->in[k] = new_v;
            old_v->n_uses--;
            new_v->n_uses++;
            if (k >= n->n_in) implicit = true;
        }
        if (implicit) recapture(n, old_v, new_v);
    }
}

int ir_edit_num_consumers(const ir_graph *g, const ir_value *v) {
    int cnt = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k] == v) cnt++;
    }
    return cnt;
}

int ir_edit_consumers(const ir_graph *g, const ir_value *v, ir_node **out,
                      int max) {
    int cnt = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k] == v) {
                if (out && cnt < max) out[cnt] = n;
                cnt++;
                break;
            }
    }
    return cnt;
}

ir_node *ir_edit_sole_consumer(const ir_graph *g, const ir_value *v) {
    if (ir_edit_is_graph_output(g, v)) return NULL;
    ir_node *only = NULL;
    return ir_edit_consumers(g, v, &only, 1) == 1 ? only : NULL;
}

void ir_edit_kill(ir_node *n) { n->dead = true; }

bool ir_edit_bypass(ir_graph *g, ir_node *n, int in_idx, int out_idx) {
    if (in_idx < 0 || in_idx >= n->n_in || out_idx < 0 || out_idx >= n->n_out)
        return false;
    ir_value *in = n->in[in_idx], *out = n->out[out_idx];
    if (!in || in == out) return false;
    /* the node's other outputs must be unused, or removing it loses them */
    for (int o = 0; o < n->n_out; o++)
        if (o != out_idx && (ir_edit_is_graph_output(g, n->out[o]) ||
                             ir_edit_num_consumers(g, n->out[o]) > 0))
            return false;
    if (ir_edit_is_graph_output(g, out)) {
        /* in takes over the output's name: impossible when in must keep its
        ** own (graph input, another output, a capture, a value of an
        ** enclosing graph). */
        if (!owns_value(g, in) || is_graph_input(g, in) ||
            ir_edit_is_graph_output(g, in) || (in->flags & IR_VALUE_CAPTURE))
            return false;
        const char *nm = in->name;
        in->name = out->name;
        out->name = nm; /* names stay unique */
        for (int i = 0; i < g->n_outputs; i++)
            if (g->outputs[i] == out) g->outputs[i] = in;
        in->flags |= IR_VALUE_OUTPUT;
        out->flags &= ~(unsigned)IR_VALUE_OUTPUT;
    }
    ir_edit_replace_uses(g, out, in);
    ir_edit_kill(n);
    return true;
}

void ir_edit_set_output(ir_node *n, int i, ir_value *v) {
    ir_value *old = n->out[i];
    if (old == v) return;
    if (old && old->producer == n) old->producer = NULL;
    n->out[i] = v;
    v->producer = n;
    v->producer_out = i;
    v->const_val = NULL; /* computed now; inference decides again */
}

void ir_edit_set_op(ir_node *n, int op) {
    n->op = op;
    n->op_type = op_name(op);
    n->domain = op_is_internal(op) ? "kiln" : "";
    n->schema = op_schema_get(op);
}

bool ir_edit_resize_inputs(ir_node *n, int n_in) {
    if (n_in < 0) return false;
    if (n_in == n->n_in) return true;
    size_t total = (size_t)n_in + (size_t)n->n_implicit;
    ir_value **in = kiln_arena_alloc(&n->graph->model->arena,
                                     (total ? total : 1) * sizeof *in);
    if (!in) return false;
    int keep = KILN_MIN(n_in, n->n_in);
    for (int i = 0; i < keep; i++) in[i] = n->in[i];
    for (int i = keep; i < n_in; i++) in[i] = NULL;
    for (int i = 0; i < n->n_implicit; i++) in[n_in + i] = n->in[n->n_in + i];
    n->in = in;
    n->n_in = n_in;
    return true;
}

bool ir_edit_const_uniform(const ir_value *v, double *val) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (!t || !t->data || !dtype_is_numeric(t->dtype) ||
        kiln_dtype_size(t->dtype) == 0)
        return false;
    int64_t n = tensor_numel(t);
    if (n < 1) return false;
    double first = dt_get_f64(t->dtype, t->data, 0);
    if (first != first) return false; /* NaN is never "a value" to match */
    for (int64_t i = 1; i < n; i++)
        if (dt_get_f64(t->dtype, t->data, (size_t)i) != first) return false;
    *val = first;
    return true;
}

/* ------------------------------------------------------- fused_from */
/* The label a node contributes: its own list, its name, or (unnamed ONNX
** nodes) its first output's name. */
static const char *node_tag(const ir_node *n) {
    if (n->fused_from) return n->fused_from;
    if (n->name && n->name[0]) return n->name;
    if (n->n_out > 0 && n->out[0]) return n->out[0]->name;
    return n->op_type;
}

/* Appends the comma-separated items of list to buf, skipping duplicates. */
static void append_items(char **buf, size_t *len, size_t *cap, const char *list) {
    while (*list) {
        const char *e = strchr(list, ',');
        size_t n = e ? (size_t)(e - list) : strlen(list);
        bool dup = false;
        for (const char *p = *buf; p && *p && !dup;) {
            const char *q = strchr(p, ',');
            size_t m = q ? (size_t)(q - p) : strlen(p);
            if (m == n && memcmp(p, list, n) == 0) dup = true;
            p = q ? q + 1 : p + m;
        }
        if (!dup && n) {
            size_t need = *len + n + 2;
            if (need > *cap) {
                size_t nc = need * 2;
                char *nb = realloc(*buf, nc);
                if (!nb) return; /* the list is informational: keep what fits */
                *buf = nb;
                *cap = nc;
            }
            if (*len) (*buf)[(*len)++] = ',';
            memcpy(*buf + *len, list, n);
            *len += n;
            (*buf)[*len] = 0;
        }
        list = e ? e + 1 : list + n;
    }
}

void ir_edit_note_fused(ir_graph *g, ir_node *dst, ir_node *const *srcs, int n) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (dst->fused_from) append_items(&buf, &len, &cap, dst->fused_from);
    for (int i = 0; i < n; i++)
        if (srcs[i]) append_items(&buf, &len, &cap, node_tag(srcs[i]));
    if (!buf) return;
    const char *s = kiln_arena_strdup(&g->model->arena, buf);
    if (s) dst->fused_from = s;
    free(buf);
}

/* -------------------------------------------------------- compaction */
kiln_status ir_graph_compact(ir_graph *g) {
    char lab[256];
    int nv = g->n_values;
    bool *keep = calloc((size_t)nv + 1, sizeof *keep);
    if (!keep) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    /* dead nodes go; what they produced is a constant now, or nothing */
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (!n->dead) {
            g->nodes[w++] = n;
            continue;
        }
        for (int o = 0; o < n->n_out; o++) {
            ir_value *v = n->out[o];
            if (v && v->producer == n) {
                v->producer = NULL;
                if (v->const_val) v->flags |= IR_VALUE_INITIALIZER;
            }
        }
    }
    g->n_nodes = w;
    for (int i = 0; i < g->n_inputs; i++)
        if (owns_value(g, g->inputs[i])) keep[g->inputs[i]->id] = true;
    for (int i = 0; i < g->n_captures; i++)
        if (owns_value(g, g->capture_local[i])) keep[g->capture_local[i]->id] = true;
    kiln_status st = KILN_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        ir_node *n = g->nodes[i];
        for (int o = 0; o < n->n_out; o++)
            if (owns_value(g, n->out[o])) keep[n->out[o]->id] = true;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            ir_value *v = n->in[k];
            if (!v || !owns_value(g, v)) continue;
            keep[v->id] = true;
            if (!v->producer && !v->const_val && !is_graph_input(g, v) &&
                !(v->flags & IR_VALUE_CAPTURE))
                st = kiln_error(KILN_INTERNAL, "%s reads '%s', whose producer was "
                                "removed", ir_node_label(n, lab, sizeof lab),
                                v->name);
        }
    }
    for (int i = 0; i < g->n_outputs && !st; i++) {
        ir_value *v = g->outputs[i];
        if (!owns_value(g, v)) continue;
        keep[v->id] = true;
        if (!v->producer && !v->const_val && !is_graph_input(g, v) &&
            !(v->flags & IR_VALUE_CAPTURE))
            st = kiln_error(KILN_INTERNAL, "graph output '%s' lost its producer",
                            v->name);
    }
    if (st) {
        free(keep);
        return st;
    }
    /* unreferenced values go too, so later stages (memory planning, engine
    ** serialization) never see orphans; ids are renumbered */
    w = 0;
    for (int v = 0; v < nv; v++) {
        ir_value *val = g->values[v];
        if (!keep[v]) {
            free(val->sym_val);
            val->sym_val = NULL;
            val->sym_len = 0;
            val->id = -1;
            continue;
        }
        val->id = w;
        g->values[w++] = val;
    }
    g->n_values = w;
    free(keep);
    return ir_graph_toposort(g);
}
