/* dce.c: dead-code elimination: nodes none of whose outputs is read (by a
** node, a subgraph capture or as a graph output) are removed, last first so
** whole dead chains go in one sweep. */
#include "passes_util.h"

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int nv = g->n_values;
    int *uses = calloc((size_t)nv + 1, sizeof *uses);
    if (!uses) return pu_oom();
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            const ir_value *v = n->in[k];
            if (v && v->id >= 0 && v->id < nv && g->values[v->id] == v) uses[v->id]++;
        }
    }
    for (int o = 0; o < g->n_outputs; o++) {
        const ir_value *v = g->outputs[o];
        if (v->id >= 0 && v->id < nv && g->values[v->id] == v) uses[v->id]++;
    }
    /* nodes are in topological order: consumers come after producers */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        ir_node *n = g->nodes[i];
        if (n->dead) continue;
        bool used = false;
        for (int o = 0; o < n->n_out && !used; o++) {
            const ir_value *v = n->out[o];
            if (v->id < 0 || v->id >= nv || g->values[v->id] != v || uses[v->id] > 0)
                used = true;
        }
        if (used) continue;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            const ir_value *v = n->in[k];
            if (v && v->id >= 0 && v->id < nv && g->values[v->id] == v) uses[v->id]--;
        }
        ir_edit_kill(n);
        pass_note(p, "removed unused %s '%s'", n->op_type, pu_name(n));
    }
    free(uses);
    return KILN_OK;
}

const kiln_pass pass_dce = {"dce", run};
