/* plan.c: static activation-memory planning. Tensors whose lifetimes do
** not overlap share bytes; offsets come from a greedy best-fit by size,
** largest first, which is what most inference runtimes do because the
** largest tensors dominate and are hardest to place late. */
#include "builder.h"

#define PLAN_ALIGN 64

bool type_bytes(const ir_type *t, uint64_t *out) {
    if (t->rank < 0 || !dtype_is_valid((int)t->dtype)) return false;
    int64_t n = shape_numel(t->rank, t->dims);
    size_t nb;
    if (n < 0 || !dtype_nbytes(t->dtype, n, &nb)) return false;
    *out = nb;
    return true;
}

typedef struct item {
    int id;
    int first, last; /* node indices */
    uint64_t size;
} item;

static int cmp_item(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    if (x->first != y->first) return x->first - y->first;
    return x->id - y->id;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

kiln_status plan_memory(const ir_graph *g, const ir_type *types,
                        engine_plan *plan) {
    int nv = g->n_values, nn = g->n_nodes;
    kiln_status st = KILN_OK;
    int *first = malloc(((size_t)nv + 1) * sizeof *first);
    int *last = malloc(((size_t)nv + 1) * sizeof *last);
    item *items = malloc(((size_t)nv + 1) * sizeof *items);
    uint64_t *placed_off = malloc(((size_t)nv + 1) * sizeof *placed_off);
    int *placed = malloc(((size_t)nv + 1) * sizeof *placed);
    uint64_t *cands = malloc(((size_t)nv + 2) * sizeof *cands);
    plan->offset = malloc(((size_t)nv + 1) * sizeof *plan->offset);
    plan->size = calloc((size_t)nv + 1, sizeof *plan->size);
    if (!first || !last || !items || !placed_off || !placed || !cands ||
        !plan->offset || !plan->size) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory planning memory");
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        first[v] = -1;
        last[v] = -1;
        plan->offset[v] = -1;
    }
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        for (int o = 0; o < n->n_out; o++) first[n->out[o]->id] = i;
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (n->in[k]) last[n->in[k]->id] = i;
    }
    for (int o = 0; o < g->n_outputs; o++) last[g->outputs[o]->id] = nn;
    int ni = 0;
    uint64_t naive = 0;
    for (int v = 0; v < nv; v++) {
        const ir_value *val = g->values[v];
        uint64_t sz;
        if (first[v] < 0 || val->const_val || !type_bytes(&types[v], &sz)) continue;
        sz = (sz + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
        if (sz == 0) sz = PLAN_ALIGN;
        items[ni].id = v;
        items[ni].first = first[v];
        items[ni].last = last[v] < first[v] ? first[v] : last[v];
        items[ni].size = sz;
        naive += sz;
        ni++;
    }
    qsort(items, (size_t)ni, sizeof *items, cmp_item);
    uint64_t total = 0;
    int np = 0;
    for (int k = 0; k < ni; k++) {
        item *it = &items[k];
        /* Candidate offsets: 0 and the end of every placed, overlapping
        ** tensor; take the lowest one that collides with nothing live. */
        int nc = 0;
        cands[nc++] = 0;
        for (int j = 0; j < np; j++) {
            const item *p = &items[placed[j]];
            if (p->last < it->first || it->last < p->first) continue;
            cands[nc++] = placed_off[j] + p->size;
        }
        qsort(cands, (size_t)nc, sizeof *cands, cmp_u64);
        uint64_t best = UINT64_MAX;
        for (int c = 0; c < nc && best == UINT64_MAX; c++) {
            uint64_t off = cands[c];
            bool ok = true;
            for (int j = 0; j < np && ok; j++) {
                const item *p = &items[placed[j]];
                if (p->last < it->first || it->last < p->first) continue;
                if (off < placed_off[j] + p->size && placed_off[j] < off + it->size)
                    ok = false;
            }
            if (ok) best = off;
        }
        placed[np] = k;
        placed_off[np] = best;
        np++;
        plan->offset[it->id] = (int64_t)best;
        plan->size[it->id] = it->size;
        if (best + it->size > total) total = best + it->size;
    }
    plan->total_bytes = total;
    plan->naive_bytes = naive;
done:
    free(first); free(last); free(items); free(placed_off); free(placed); free(cands);
    return st;
}
