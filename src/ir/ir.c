/* ir.c: IR construction, attribute access and topological ordering. */
#include "ir.h"

#include <stdio.h>

ir_model *ir_model_new(void) {
    ir_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    kiln_arena_init(&m->arena);
    return m;
}

static void graph_free_arrays(ir_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            ir_attr *at = &n->attrs[a];
            graph_free_arrays(at->g);
            for (int k = 0; at->graphs && k < at->n; k++)
                graph_free_arrays(at->graphs[k]);
        }
    }
    for (int i = 0; i < g->n_values; i++) free(g->values[i]->sym_val);
    free(g->values);
    free(g->nodes);
    g->values = NULL;
    g->nodes = NULL;
}

void ir_model_free(ir_model *m) {
    if (!m) return;
    graph_free_arrays(m->graph);
    for (int i = 0; i < m->n_tensors; i++) tensor_free(m->tensors[i]);
    free(m->tensors);
    free(m->sym_names);
    free(m->dir);
    if (m->map_base) {
        extern void kiln_unmap_file(void *base, size_t size);
        kiln_unmap_file(m->map_base, m->map_size);
    }
    kiln_arena_free(&m->arena);
    free(m);
}

bool ir_model_own_tensor(ir_model *m, kiln_tensor *t) {
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        kiln_tensor **p = realloc(m->tensors, (size_t)cap * sizeof *p);
        if (!p) {
            tensor_free(t);
            return false;
        }
        m->tensors = p;
        m->cap_tensors = cap;
    }
    m->tensors[m->n_tensors++] = t;
    return true;
}

int64_t ir_model_new_sym(ir_model *m, const char *name) {
    if (m->n_syms == m->cap_syms) {
        int cap = m->cap_syms ? m->cap_syms * 2 : 16;
        const char **p = realloc(m->sym_names, (size_t)cap * sizeof *p);
        if (!p) return 0;
        m->sym_names = p;
        m->cap_syms = cap;
    }
    const char *nm = NULL;
    if (name && !(nm = kiln_arena_strdup(&m->arena, name))) return 0;
    m->sym_names[m->n_syms] = nm;
    return IR_SYM(m->n_syms++);
}

int64_t ir_model_sym_named(ir_model *m, const char *name) {
    for (int i = 0; i < m->n_syms; i++)
        if (m->sym_names[i] && strcmp(m->sym_names[i], name) == 0)
            return IR_SYM(i);
    return ir_model_new_sym(m, name);
}

const char *ir_dim_name(const ir_model *m, int64_t dim) {
    if (dim >= 0) return NULL;
    int id = IR_SYM_ID(dim);
    return id < m->n_syms ? m->sym_names[id] : NULL;
}

ir_graph *ir_graph_new(ir_model *m, ir_graph *parent) {
    ir_graph *g = kiln_arena_alloc(&m->arena, sizeof *g);
    if (!g) return NULL;
    g->model = m;
    g->parent = parent;
    g->name = "";
    return g;
}

ir_value *ir_value_new(ir_graph *g, const char *name) {
    ir_model *m = g->model;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        ir_value **p = realloc(g->values, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        g->values = p;
        g->cap_values = cap;
    }
    ir_value *v = kiln_arena_alloc(&m->arena, sizeof *v);
    if (!v) return NULL;
    v->name = kiln_arena_strdup(&m->arena, name ? name : "");
    if (!v->name) return NULL;
    v->id = g->n_values;
    v->type.rank = -1;
    g->values[g->n_values++] = v;
    return v;
}

ir_node *ir_node_new(ir_graph *g, int n_in, int n_out) {
    ir_model *m = g->model;
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        ir_node **p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        g->nodes = p;
        g->cap_nodes = cap;
    }
    ir_node *n = kiln_arena_alloc(&m->arena, sizeof *n);
    if (!n) return NULL;
    n->in = kiln_arena_alloc(&m->arena, (size_t)(n_in ? n_in : 1) * sizeof *n->in);
    n->out = kiln_arena_alloc(&m->arena, (size_t)(n_out ? n_out : 1) * sizeof *n->out);
    if (!n->in || !n->out) return NULL;
    n->n_in = n_in;
    n->n_out = n_out;
    n->graph = g;
    n->index = g->n_nodes;
    n->name = n->op_type = n->domain = "";
    g->nodes[g->n_nodes++] = n;
    return n;
}

const ir_attr *ir_attr_find(const ir_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t ir_attr_int(const ir_node *n, const char *name, int64_t def) {
    const ir_attr *a = ir_attr_find(n, name);
    if (!a) return def;
    if (a->type == IR_ATTR_INT) return a->i;
    if (a->type == IR_ATTR_FLOAT) return f64_to_i64_sat(a->f);
    return def;
}

float ir_attr_float(const ir_node *n, const char *name, float def) {
    const ir_attr *a = ir_attr_find(n, name);
    if (!a) return def;
    if (a->type == IR_ATTR_FLOAT) return a->f;
    if (a->type == IR_ATTR_INT) return (float)a->i;
    return def;
}

const char *ir_attr_str(const ir_node *n, const char *name, const char *def) {
    const ir_attr *a = ir_attr_find(n, name);
    return a && a->type == IR_ATTR_STRING ? a->s : def;
}

const int64_t *ir_attr_ints(const ir_node *n, const char *name, int *count) {
    const ir_attr *a = ir_attr_find(n, name);
    if (!a || a->type != IR_ATTR_INTS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->ints ? a->ints : (const int64_t *)"";
}

const float *ir_attr_floats(const ir_node *n, const char *name, int *count) {
    const ir_attr *a = ir_attr_find(n, name);
    if (!a || a->type != IR_ATTR_FLOATS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    static const float empty[1];
    return a->floats ? a->floats : empty;
}

const kiln_tensor *ir_attr_tensor(const ir_node *n, const char *name) {
    const ir_attr *a = ir_attr_find(n, name);
    return a && a->type == IR_ATTR_TENSOR ? a->t : NULL;
}

ir_graph *ir_attr_graph(const ir_node *n, const char *name) {
    const ir_attr *a = ir_attr_find(n, name);
    return a && a->type == IR_ATTR_GRAPH ? a->g : NULL;
}

const char *ir_node_label(const ir_node *n, char *buf, size_t size) {
    if (n->name && n->name[0])
        snprintf(buf, size, "node %d '%s' (%s)", n->index, n->name, n->op_type);
    else
        snprintf(buf, size, "node %d (%s)", n->index, n->op_type);
    return buf;
}

/* Kahn's algorithm, picking the lowest original index first so an already
** sorted graph keeps its order. */
kiln_status ir_graph_toposort(ir_graph *g) {
    int nn = g->n_nodes;
    kiln_status st = KILN_OK;
    int *indeg = calloc((size_t)nn + 1, sizeof *indeg);
    int *order = malloc(((size_t)nn + 1) * sizeof *order);
    int *pos = malloc(((size_t)nn + 1) * sizeof *pos); /* node -> old index */
    ir_node **sorted = malloc(((size_t)nn + 1) * sizeof *sorted);
    /* consumers list in CSR form */
    int *cnt = calloc((size_t)nn + 1, sizeof *cnt), *start = NULL, *adj = NULL;
    if (!indeg || !order || !pos || !sorted || !cnt) goto oom;
    for (int i = 0; i < nn; i++) g->nodes[i]->index = i;
    for (int v = 0; v < g->n_values; v++) g->values[v]->n_uses = 0;
    size_t nedges = 0;
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            ir_value *v = n->in[k];
            if (!v) continue;
            v->n_uses++;
            if (v->producer && v->producer->graph == g) {
                indeg[i]++;
                cnt[v->producer->index]++;
                nedges++;
            }
        }
    }
    for (int o = 0; o < g->n_outputs; o++) g->outputs[o]->n_uses++;
    start = malloc(((size_t)nn + 1) * sizeof *start);
    adj = malloc((nedges + 1) * sizeof *adj);
    if (!start || !adj) goto oom;
    start[0] = 0;
    for (int i = 0; i < nn; i++) start[i + 1] = start[i] + cnt[i];
    memset(cnt, 0, (size_t)nn * sizeof *cnt);
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            ir_value *v = n->in[k];
            if (v && v->producer && v->producer->graph == g) {
                int p = v->producer->index;
                adj[start[p] + cnt[p]++] = i;
            }
        }
    }
    /* min-heap of ready node indices */
    int hn = 0, done = 0;
    for (int i = 0; i < nn; i++)
        if (indeg[i] == 0) order[hn++] = i; /* already ascending: a heap */
    while (hn > 0) {
        int top = order[0];
        order[0] = order[--hn];
        for (int k = 0;;) { /* sift down */
            int l = 2 * k + 1, r = l + 1, s = k;
            if (l < hn && order[l] < order[s]) s = l;
            if (r < hn && order[r] < order[s]) s = r;
            if (s == k) break;
            int t = order[k]; order[k] = order[s]; order[s] = t;
            k = s;
        }
        sorted[done++] = g->nodes[top];
        for (int e = start[top]; e < start[top + 1]; e++) {
            int j = adj[e];
            if (--indeg[j] == 0) {
                int k = hn++;
                order[k] = j;
                while (k > 0 && order[(k - 1) / 2] > order[k]) { /* sift up */
                    int p = (k - 1) / 2, t = order[p];
                    order[p] = order[k]; order[k] = t;
                    k = p;
                }
            }
        }
    }
    if (done != nn) {
        char lab[256];
        for (int i = 0; i < nn; i++)
            if (indeg[i] > 0) {
                st = kiln_error(KILN_INVALID_MODEL,
                                "graph has a cycle through %s",
                                ir_node_label(g->nodes[i], lab, sizeof lab));
                break;
            }
        goto done;
    }
    memcpy(g->nodes, sorted, (size_t)nn * sizeof *sorted);
    (void)pos;
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory sorting the graph");
done:
    free(indeg); free(order); free(pos); free(sorted); free(cnt);
    free(start); free(adj);
    return st;
}
