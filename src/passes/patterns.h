/* patterns.h: small matching helpers shared by the pattern-recognition
** passes (layernorm.c, gelu.c, attention.c). */
#ifndef KILN_PATTERNS_H
#define KILN_PATTERNS_H

#include "passes_util.h"

#include <math.h>
#include <stdio.h>

/* The node producing v in g, or NULL (inputs, constants, values of an
** enclosing graph). */
static inline ir_node *pt_prod(const ir_graph *g, const ir_value *v) {
    ir_node *n = v ? v->producer : NULL;
    return n && !n->dead && n->graph == g ? n : NULL;
}

/* The node producing v when it is op with v as output 0. */
static inline ir_node *pt_prod_op(const ir_graph *g, const ir_value *v, int op) {
    ir_node *n = pt_prod(g, v);
    return n && n->op == op && v->producer_out == 0 && !n->n_implicit ? n : NULL;
}

/* The value of a one-element numeric constant. */
static inline bool pt_scalar(const ir_value *v, double *val) {
    const kiln_tensor *t = v ? v->const_val : NULL;
    if (!t || !t->data || !dtype_is_numeric(t->dtype) || tensor_numel(t) != 1)
        return false;
    *val = dt_get_f64(t->dtype, t->data, 0);
    return *val == *val;
}

/* A constant given in dtype dt equals want up to that type's rounding (and
** the few digits exporters print, for float32 and wider). */
static inline bool pt_near(double got, double want, kiln_dtype dt) {
    double tol = dt == KILN_DTYPE_FLOAT16 ? 2e-3 : dt == KILN_DTYPE_BFLOAT16 ? 1.6e-2
                                                                          : 1e-5;
    return fabs(got - want) <= tol * fabs(want);
}

/* Same known rank and provably equal dims (the same static size or the same
** symbol; dtypes aside). */
static inline bool pt_same_dims(const ir_type *a, const ir_type *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

/* n reads v through exactly one live consumer edge set: v's only consumer
** is n, and v is not a graph output. */
static inline bool pt_only(const ir_graph *g, const ir_value *v, const ir_node *n) {
    return v && n && ir_edit_sole_consumer(g, v) == n;
}

/* Kills the listed nodes once nothing reads their outputs any more (an
** output another node took over with ir_edit_set_output counts as unread),
** consumers before producers (repeats until no change). */
static inline void pt_kill_unused(ir_graph *g, ir_node *const *nodes, int n) {
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < n; i++) {
            ir_node *x = nodes[i];
            if (!x || x->dead) continue;
            bool used = false;
            for (int o = 0; o < x->n_out && !used; o++)
                used = x->out[o]->producer == x && /* else taken over */
                       (ir_edit_is_graph_output(g, x->out[o]) ||
                        ir_edit_num_consumers(g, x->out[o]) > 0);
            if (!used) {
                ir_edit_kill(x);
                changed = true;
            }
        }
    }
}

/* After the nodes in list[0..*n) were killed: kills the producers that
** nothing reads any more, up the graph (the shape arithmetic exporters
** compute for a removed Reshape, say), appending them to the list while
** there is room. */
static inline void pt_cascade(ir_graph *g, ir_node **list, int *n, int max) {
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < *n; i++) {
            ir_node *x = list[i];
            if (!x->dead) continue;
            for (int k = 0; k < x->n_in + x->n_implicit; k++) {
                ir_node *p = pt_prod(g, x->in[k]);
                if (!p || p->dead || p->op == OP_Constant) continue;
                bool used = false;
                for (int o = 0; o < p->n_out && !used; o++)
                    used = p->out[o]->producer == p &&
                           (ir_edit_is_graph_output(g, p->out[o]) ||
                            ir_edit_num_consumers(g, p->out[o]) > 0);
                if (used) continue;
                ir_edit_kill(p);
                changed = true;
                bool listed = false;
                for (int j = 0; j < *n && !listed; j++) listed = list[j] == p;
                if (!listed && *n < max) list[(*n)++] = p;
            }
        }
    }
}

/* A name for a node replacing `last`: its name's scope (up to the last '/')
** followed by what. */
static inline void pt_name(char *buf, size_t size, const ir_node *last, const char *what) {
    const char *nm = pu_name(last);
    const char *slash = strrchr(nm, '/');
    int keep = slash ? (int)(slash - nm + 1) : 0;
    if (keep > 200) keep = 200;
    snprintf(buf, size, "%.*s%s", keep, nm, what);
}

/* Comma-separated names of the nodes, for pass notes (truncated). */
static inline const char *pt_list(char *buf, size_t size, ir_node *const *nodes, int n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 1 < size; i++) {
        if (!nodes[i]) continue;
        int w = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", pu_name(nodes[i]));
        if (w < 0) break;
        k += (size_t)w;
    }
    if (k >= size && size > 4) memcpy(buf + size - 4, "...", 4);
    return buf;
}

#endif
