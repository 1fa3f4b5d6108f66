/* fuzz_engine_body.c: shared body of the engine-loader fuzz target and
** replayer. A refused engine must leave a message and a cleared struct; a
** loaded one must be internally consistent, serialize again, and the new
** bytes must load again. Violations abort so both drivers report them. */
#include "fuzz_engine_body.h"

#include "../src/engine/engine_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KILN_FUZZ_ENGINE_MAX_ALLOC ((size_t)64 << 20)

void kiln_fuzz_engine_init(void) { kiln_max_alloc = KILN_FUZZ_ENGINE_MAX_ALLOC; }

static void fail(const char *what) {
    fprintf(stderr, "kiln_fuzz_engine: contract violation: %s\n", what);
    abort();
}

static void check_graph(const ir_graph *g, int depth) {
    if (depth > ENGINE_MAX_GRAPH_DEPTH) fail("graph too deep");
    (void)strlen(g->name);
    for (int i = 0; i < g->n_values; i++) {
        const ir_value *v = g->values[i];
        if (v->id != i) fail("value id");
        (void)strlen(v->name);
        /* touch first and last; a constant stored without its bytes must be
        ** one of the main graph's that no reader needs (engine_const_unread,
        ** checked by the loader) */
        if (v->const_val && v->const_val->nbytes && !v->const_val->data && depth)
            fail("subgraph constant without bytes");
        if (v->const_val && v->const_val->nbytes && v->const_val->data)
            (void)(((volatile const uint8_t *)v->const_val->data)[0] +
                   ((volatile const uint8_t *)v->const_val->data)[v->const_val->nbytes - 1]);
        if (v->producer && (v->producer->graph != g ||
                            v->producer->out[v->producer_out] != v))
            fail("producer link");
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (n->graph != g || n->index != k || !n->schema) fail("node links");
        for (int i = 0; i < n->n_in + n->n_implicit; i++)
            if (n->in[i] && n->in[i] != g->values[n->in[i]->id]) fail("node input");
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] != g->values[n->out[i]->id]) fail("node output");
        for (int a = 0; a < n->n_attrs; a++) {
            const ir_attr *at = &n->attrs[a];
            (void)strlen(at->name);
            if (at->type == IR_ATTR_GRAPH) {
                if (at->g->parent != g || at->g->owner != n) fail("subgraph links");
                check_graph(at->g, depth + 1);
            }
            for (int j = 0; at->type == IR_ATTR_GRAPHS && j < at->n; j++)
                check_graph(at->graphs[j], depth + 1);
        }
    }
    for (int c = 0; c < g->n_captures; c++)
        if (!g->parent || g->capture_outer[c] != g->parent->values[g->capture_outer[c]->id])
            fail("capture link");
}

int kiln_fuzz_engine_one(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t flag = data[0];
    data++;
    size--;
    /* exact-size, 64-byte aligned copy: ASan sees any read past the end */
    void *mem = NULL;
    if (posix_memalign(&mem, 64, size ? size : 1)) return 0;
    uint8_t *buf = mem;
    if (size) memcpy(buf, data, size);
    if (flag & 1) engine_reseal(buf, size);
    kiln_engine e;
    memset(&e, 0, sizeof e);
    kiln_status st = engine_deserialize(buf, size, &e);
    if (st != KILN_OK) {
        const char *msg = kiln_last_error();
        if (!msg || !msg[0]) fail("refused engine left no message");
        if (e.ir || e.layers || e.profiles || e.plans || e.n_profiles)
            fail("refused engine not cleared");
        free(buf);
        return 0;
    }
    if (!e.ir || !e.ir->graph || e.ops != kiln_backend_cpu()) fail("loaded engine incomplete");
    check_graph(e.ir->graph, 0);
    for (int k = 0; k < e.ir->graph->n_nodes; k++)
        for (int p = 0; p < e.n_profiles; p++) {
            const kiln_tactic *t = e.layers[k].tactic[p];
            if (t && t->op != 0 && t->op != e.ir->graph->nodes[k]->op) fail("tactic op");
            /* prepared layer data: in the file, aligned, of a tactic that
            ** makes some; its first and last bytes are readable */
            const uint8_t *bp = e.layers[k].blob ? e.layers[k].blob[p] : NULL;
            if (!bp) continue;
            uint64_t bn = e.layers[k].blob_size[p];
            if (!bn || !t || !t->prepare || (uintptr_t)bp % 64 || bp < buf ||
                bn > size || bp - buf > (ptrdiff_t)(size - bn))
                fail("prepared data outside the file or without a tactic");
            volatile uint8_t sink = bp[0] ^ bp[bn - 1];
            (void)sink;
        }
    uint8_t *b2 = NULL;
    size_t n2 = 0;
    if (engine_serialize(&e, &b2, &n2) != KILN_OK) {
        fprintf(stderr, "%s\n", kiln_last_error());
        fail("loaded engine does not serialize");
    }
    kiln_engine e2;
    memset(&e2, 0, sizeof e2);
    if (engine_deserialize(b2, n2, &e2) != KILN_OK) {
        fprintf(stderr, "%s\n", kiln_last_error());
        fail("re-serialized engine does not load");
    }
    if (e2.ir->graph->n_nodes != e.ir->graph->n_nodes ||
        e2.ir->graph->n_values != e.ir->graph->n_values ||
        e2.n_profiles != e.n_profiles || e2.ir->n_tensors > e.ir->n_tensors)
        fail("round trip changed the engine");
    engine_clear(&e2);
    kiln_aligned_free(b2);
    engine_clear(&e);
    free(buf);
    return 1;
}
