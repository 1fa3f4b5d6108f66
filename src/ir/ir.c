/* ir.c: IR construction, attribute access and topological ordering. */
#include "ir.h"

#include <stdio.h>

/* Every graph a model created, attached to a node or not: a failed import
** can leave subgraphs that no attribute points at, and their heap arrays
** must still be freed. The list lives beside the public struct. */
typedef struct graph_box {
    ir_graph g;
    struct graph_box *next;
} graph_box;

typedef struct model_box {
    ir_model m;             /* first member: ir_model * converts back */
    graph_box *graphs;
    /* Name -> first symbol id with that name (slots hold id + 1, 0 is
    ** empty): a model may name hundreds of thousands of dims, and a linear
    ** scan per dim_param would make loading quadratic. */
    int *sym_index;
    size_t sym_index_cap, sym_index_count;
} model_box;

static uint64_t sym_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* Slot for name: holding its id + 1, or the empty slot where it would go. */
static size_t sym_slot(const model_box *b, const char *name) {
    size_t mask = b->sym_index_cap - 1;
    for (size_t i = sym_hash(name) & mask;; i = (i + 1) & mask) {
        int id1 = b->sym_index[i];
        if (!id1 || strcmp(b->m.sym_names[id1 - 1], name) == 0) return i;
    }
}

static bool sym_index_add(model_box *b, int id) {
    if ((b->sym_index_count + 1) * 2 > b->sym_index_cap) {
        size_t cap = b->sym_index_cap ? b->sym_index_cap * 2 : 64;
        int *old = b->sym_index;
        size_t old_cap = b->sym_index_cap;
        if (!(b->sym_index = calloc(cap, sizeof *b->sym_index))) {
            b->sym_index = old;
            return false;
        }
        b->sym_index_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) b->sym_index[sym_slot(b, b->m.sym_names[old[i] - 1])] = old[i];
        free(old);
    }
    size_t j = sym_slot(b, b->m.sym_names[id]);
    if (!b->sym_index[j]) { /* keep the first id for a repeated name */
        b->sym_index[j] = id + 1;
        b->sym_index_count++;
    }
    return true;
}

ir_model *ir_model_new(void) {
    model_box *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    kiln_arena_init(&b->m.arena);
    return &b->m;
}

static void graph_free_arrays(ir_graph *g) {
    for (int i = 0; i < g->n_values; i++) free(g->values[i]->sym_val);
    free(g->values);
    free(g->nodes);
    free(g->capture_outer);
    free(g->capture_local);
    g->values = NULL;
    g->nodes = NULL;
    g->capture_outer = g->capture_local = NULL;
}

void ir_model_free(ir_model *m) {
    if (!m) return;
    for (graph_box *b = ((model_box *)m)->graphs; b; b = b->next)
        graph_free_arrays(&b->g);
    for (int i = 0; i < m->n_tensors; i++) tensor_free(m->tensors[i]);
    free(m->tensors);
    free(m->sym_names);
    free(((model_box *)m)->sym_index);
    free(m->dir);
    if (m->map_base) {
        extern void kiln_unmap_file(void *base, size_t size);
        kiln_unmap_file(m->map_base, m->map_size);
    }
    kiln_arena_free(&m->arena);
    free((model_box *)m);
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
        if (m->cap_syms > INT32_MAX / 4) return 0; /* ids must fit an int */
        int cap = m->cap_syms ? m->cap_syms * 2 : 16;
        const char **p = realloc(m->sym_names, (size_t)cap * sizeof *p);
        if (!p) return 0;
        m->sym_names = p;
        m->cap_syms = cap;
    }
    const char *nm = NULL;
    if (name && !(nm = kiln_arena_strdup(&m->arena, name))) return 0;
    m->sym_names[m->n_syms] = nm;
    if (nm && !sym_index_add((model_box *)m, m->n_syms)) return 0;
    return IR_SYM(m->n_syms++);
}

int64_t ir_model_sym_named(ir_model *m, const char *name) {
    model_box *b = (model_box *)m;
    if (b->sym_index_cap) {
        int id1 = b->sym_index[sym_slot(b, name)];
        if (id1) return IR_SYM(id1 - 1);
    }
    return ir_model_new_sym(m, name);
}

const char *ir_dim_name(const ir_model *m, int64_t dim) {
    if (dim >= 0) return NULL;
    int id = IR_SYM_ID(dim);
    return id < m->n_syms ? m->sym_names[id] : NULL;
}

void ir_value_io_info(const ir_model *m, const ir_value *v, kiln_io_info *o) {
    memset(o, 0, sizeof *o);
    o->name = v->name;
    o->dtype = v->type.dtype;
    o->rank = v->type.rank;
    for (int d = 0; d < v->type.rank; d++) {
        o->dims[d] = v->type.dims[d] >= 0 ? v->type.dims[d] : -1;
        o->dim_names[d] = ir_dim_name(m, v->type.dims[d]);
    }
}

ir_graph *ir_graph_new(ir_model *m, ir_graph *parent) {
    graph_box *b = kiln_arena_alloc(&m->arena, sizeof *b);
    if (!b) return NULL;
    model_box *mb = (model_box *)m;
    b->next = mb->graphs;
    mb->graphs = b;
    ir_graph *g = &b->g;
    g->model = m;
    g->parent = parent;
    g->name = "";
    return g;
}

ir_value *ir_value_new(ir_graph *g, const char *name) {
    ir_model *m = g->model;
    if (g->n_values == g->cap_values) {
        if (g->cap_values > INT32_MAX / 2) return NULL; /* ids are ints */
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
        if (g->cap_nodes > INT32_MAX / 2) return NULL; /* indices are ints */
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

/* Copy of an untrusted name for messages: control characters (terminal
** escapes, newlines) become '?'; UTF-8 bytes are kept. */
static const char *printable(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; s && *s && k + 1 < n; s++)
        buf[k++] = ((unsigned char)*s < 32 || *s == 127) ? '?' : *s;
    buf[k] = 0;
    return buf;
}

const char *ir_node_label(const ir_node *n, char *buf, size_t size) {
    char name[160], op[96];
    printable(n->op_type, op, sizeof op);
    if (n->name && n->name[0])
        snprintf(buf, size, "node %d '%s' (%s)", n->index,
                 printable(n->name, name, sizeof name), op);
    else
        snprintf(buf, size, "node %d (%s)", n->index, op);
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
    if (nn) memcpy(g->nodes, sorted, (size_t)nn * sizeof *sorted); /* no nodes: NULL */
    (void)pos;
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory sorting the graph");
done:
    free(indeg); free(order); free(pos); free(sorted); free(cnt);
    free(start); free(adj);
    return st;
}
