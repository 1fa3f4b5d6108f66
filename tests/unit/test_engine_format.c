/* test_engine_format.c: the .kiln format end to end: builds an engine struct
** by hand around an imported model (tests/data/engine_format.onnx), then
** serialize -> deserialize -> field-by-field comparison, determinism, zero
** copy of constants, refusal of every single-byte change, truncation and
** extension, the incompatibility messages, and re-sealed mutations (must be
** refused or loaded cleanly, never crash).
** Usage: test_engine_format [MODEL.onnx] [--write-corpus DIR] */
#include "../../src/engine/checksum.h"
#include "../../src/engine/engine_format.h"
#include "test_util.h"

#include <time.h>

/* Quiet comparison helpers: they count one failure per mismatch and say
** where. */
static int g_cmp_fail;
static int g_layer_blobs; /* prepared-data buffers build_engine made */
static int g_no_data;     /* loaded constants stored without their bytes */
#define SAME(cond, ...)                                                    \
    do {                                                                   \
        if (!(cond)) {                                                     \
            g_cmp_fail++;                                                  \
            fprintf(stderr, "mismatch: ");                                 \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

static bool str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = kiln_aligned_alloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        kiln_aligned_free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

/* ------------------------------------------------------- engine by hand */
static int64_t prof_dim(int p, int which, int64_t d) {
    if (d >= 0) return d;                /* static dims are fixed */
    static const int64_t r[2][3] = {{1, 8, 32}, {33, 64, 128}};
    return r[p][which];
}

static void build_engine(ir_model *m, kiln_engine *e) {
    ir_graph *g = m->graph;
    const kiln_backend_ops *ops = kiln_backend_cpu();
    memset(e, 0, sizeof *e);
    e->ir = m;
    e->ops = ops;
    snprintf(e->lib_version, sizeof e->lib_version, "%s", KILN_VERSION_STRING);
    snprintf(e->backend, sizeof e->backend, "%s", ops->name);
    snprintf(e->arch, sizeof e->arch, "%s", kiln_host_arch());
    e->precisions = KILN_PRECISION_FP32 | KILN_PRECISION_FP16;
    e->opt_level = 3;
    e->workspace_limit = (uint64_t)1 << 30;
    e->source_nodes = g->n_nodes;
    /* an optimizer-style annotation on two nodes */
    g->nodes[0]->fused_from = "mm,add";
    g->nodes[2]->fused_from = "";
    e->n_profiles = 2;
    e->profiles = calloc(2, sizeof *e->profiles);
    e->plans = calloc(2, sizeof *e->plans);
    e->layers = calloc((size_t)g->n_nodes, sizeof *e->layers);
    int ni = g->n_inputs;
    for (int p = 0; p < 2; p++) {
        engine_profile *pr = &e->profiles[p];
        pr->min = calloc((size_t)ni, sizeof *pr->min);
        pr->opt = calloc((size_t)ni, sizeof *pr->opt);
        pr->max = calloc((size_t)ni, sizeof *pr->max);
        for (int i = 0; i < ni; i++)
            for (int d = 0; d < g->inputs[i]->type.rank; d++) {
                int64_t dim = g->inputs[i]->type.dims[d];
                pr->min[i][d] = prof_dim(p, 0, dim);
                pr->opt[i][d] = prof_dim(p, 1, dim);
                pr->max[i][d] = prof_dim(p, 2, dim);
            }
        engine_plan *pl = &e->plans[p];
        pl->offset = calloc((size_t)g->n_values, sizeof *pl->offset);
        pl->size = calloc((size_t)g->n_values, sizeof *pl->size);
        for (int v = 0; v < g->n_values; v++) {
            pl->offset[v] = v % 3 ? (int64_t)v * 128 : -1;
            pl->size[v] = 100 + (uint64_t)p;
            pl->naive_bytes += pl->size[v];
        }
        pl->total_bytes = (uint64_t)g->n_values * 128 + 64;
        pl->workspace_bytes = 4096 * (uint64_t)(p + 1);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        ir_node *n = g->nodes[k];
        engine_layer *l = &e->layers[k];
        const ir_type *in[64] = {0};
        for (int i = 0; i < n->n_in && i < 64; i++)
            in[i] = n->in[i] ? &n->in[i]->type : NULL;
        const kiln_tactic *cand[16];
        int nc = ops->tactics(n, in, cand, 16);
        l->precision = k == 1 ? KILN_PRECISION_FP16 : KILN_PRECISION_FP32;
        l->tactic = calloc(2, sizeof *l->tactic);
        l->time_us = calloc(2, sizeof *l->time_us);
        for (int p = 0; p < 2; p++) {
            /* layer 0 keeps its tactic in both profiles: one shared blob */
            l->tactic[p] = nc ? cand[p && k ? nc - 1 : 0] : NULL;
            l->time_us[p] = k % 4 == 3 ? -1.0f : 1.5f * (float)k + (float)p;
            if (l->tactic[p]) e->isa_required |= l->tactic[p]->isa;
            /* prepared data, as the builder makes it (both profiles of a
            ** layer with one tactic share one buffer) */
            const kiln_tactic *t = l->tactic[p];
            if (!t || !t->prepare) continue;
            const kiln_tensor *cin[64] = {0};
            for (int i = 0; i < n->n_in && i < 64; i++)
                cin[i] = n->in[i] ? n->in[i]->const_val : NULL;
            if (!l->blob) {
                l->blob = calloc(2, sizeof *l->blob);
                l->blob_size = calloc(2, sizeof *l->blob_size);
            }
            if (p && l->tactic[0] == t) {
                l->blob[p] = l->blob[0];
                l->blob_size[p] = l->blob_size[0];
                continue;
            }
            void *b = NULL;
            size_t bn = 0;
            if (t->prepare(n, in, cin, &b, &bn) == KILN_OK && b) {
                l->blob[p] = b;
                l->blob_size[p] = bn;
                g_layer_blobs++;
            }
        }
    }
    e->owns_layer_blobs = true;
}

/* A one-node engine with no profiles (static shapes only). */
static ir_model *tiny_model(void) {
    ir_model *m = ir_model_new();
    m->producer = m->producer_version = "";
    m->opset = 17;
    ir_graph *g = m->graph = ir_graph_new(m, NULL);
    ir_value *x = ir_value_new(g, "x"), *y = ir_value_new(g, "y");
    x->type.dtype = y->type.dtype = KILN_DTYPE_FLOAT32;
    x->type.rank = y->type.rank = 1;
    x->type.dims[0] = y->type.dims[0] = 5;
    x->flags = IR_VALUE_INPUT;
    y->flags = IR_VALUE_OUTPUT;
    g->inputs = kiln_arena_alloc(&m->arena, sizeof *g->inputs);
    g->outputs = kiln_arena_alloc(&m->arena, sizeof *g->outputs);
    g->inputs[g->n_inputs++] = x;
    g->outputs[g->n_outputs++] = y;
    ir_node *n = ir_node_new(g, 1, 1);
    n->op_type = "Relu";
    n->op = op_lookup_any("Relu");
    n->schema = op_schema_get(n->op);
    n->in[0] = x;
    n->out[0] = y;
    y->producer = n;
    ir_graph_toposort(g);
    return m;
}

/* --------------------------------------------------------- comparison */
static void cmp_tensor(const kiln_tensor *a, const kiln_tensor *b,
                       const char *where) {
    if (!a || !b) {
        SAME(a == b, "%s: tensor presence", where);
        return;
    }
    SAME(a->dtype == b->dtype, "%s: tensor dtype", where);
    SAME(shape_equal(a->rank, a->dims, b->rank, b->dims), "%s: tensor shape", where);
    SAME(a->nbytes == b->nbytes, "%s: tensor nbytes", where);
    /* b stored without its bytes (engine_const_unread; checked in main) */
    if (a->nbytes && !b->data) g_no_data++;
    else
        SAME(a->nbytes == b->nbytes &&
                 (!a->nbytes || memcmp(a->data, b->data, a->nbytes) == 0),
             "%s: tensor bytes", where);
    SAME(str_eq(a->name, b->name), "%s: tensor name", where);
}

static int vid(const ir_value *v) { return v ? v->id : -1; }

static void cmp_graph(const ir_graph *a, const ir_graph *b, const char *path);

static void cmp_attr(const ir_attr *x, const ir_attr *y, const ir_graph *gb,
                     const ir_node *nb, const char *where) {
    char w[512];
    SAME(str_eq(x->name, y->name), "%s: attr name", where);
    SAME(x->type == y->type, "%s: attr type", where);
    if (x->type != y->type) return;
    switch (x->type) {
    case IR_ATTR_FLOAT: SAME(memcmp(&x->f, &y->f, 4) == 0, "%s: f", where); break;
    case IR_ATTR_INT: SAME(x->i == y->i, "%s: i", where); break;
    case IR_ATTR_STRING:
        SAME(x->s_len == y->s_len && memcmp(x->s, y->s, x->s_len) == 0 &&
             y->s[y->s_len] == 0, "%s: s", where);
        break;
    case IR_ATTR_TENSOR: cmp_tensor(x->t, y->t, where); break;
    case IR_ATTR_GRAPH:
        SAME(y->g->parent == gb && y->g->owner == nb, "%s: subgraph links", where);
        snprintf(w, sizeof w, "%.400s/%.100s", where, x->name);
        cmp_graph(x->g, y->g, w);
        break;
    default:
        SAME(x->n == y->n, "%s: list count", where);
        if (x->n != y->n) break;
        for (int k = 0; k < x->n; k++) {
            snprintf(w, sizeof w, "%.400s[%d]", where, k);
            switch (x->type) {
            case IR_ATTR_FLOATS:
                SAME(memcmp(&x->floats[k], &y->floats[k], 4) == 0, "%s", w);
                break;
            case IR_ATTR_INTS: SAME(x->ints[k] == y->ints[k], "%s", w); break;
            case IR_ATTR_STRINGS: SAME(str_eq(x->strings[k], y->strings[k]), "%s", w); break;
            case IR_ATTR_TENSORS: cmp_tensor(x->tensors[k], y->tensors[k], w); break;
            case IR_ATTR_GRAPHS:
                SAME(y->graphs[k]->parent == gb && y->graphs[k]->owner == nb,
                     "%s: subgraph links", w);
                cmp_graph(x->graphs[k], y->graphs[k], w);
                break;
            default: break;
            }
        }
    }
}

static void cmp_graph(const ir_graph *a, const ir_graph *b, const char *path) {
    char w[512];
    SAME(str_eq(a->name, b->name), "%s: graph name", path);
    SAME(a->n_values == b->n_values, "%s: value count %d vs %d", path,
         a->n_values, b->n_values);
    if (a->n_values != b->n_values) return;
    for (int i = 0; i < a->n_values; i++) {
        const ir_value *x = a->values[i], *y = b->values[i];
        snprintf(w, sizeof w, "%.300s value %d '%.100s'", path, i, x->name);
        SAME(y->id == i, "%s: id", w);
        SAME(str_eq(x->name, y->name), "%s: name", w);
        SAME(x->flags == y->flags, "%s: flags", w);
        SAME(x->type.dtype == y->type.dtype && x->type.rank == y->type.rank,
             "%s: type", w);
        for (int d = 0; d < x->type.rank; d++)
            SAME(x->type.dims[d] == y->type.dims[d], "%s: dim %d", w, d);
        cmp_tensor(x->const_val, y->const_val, w);
        SAME(x->sym_len == y->sym_len, "%s: sym_len", w);
        for (int k = 0; k < x->sym_len && x->sym_len == y->sym_len; k++)
            SAME(x->sym_val[k] == y->sym_val[k], "%s: sym_val", w);
        SAME((x->producer ? x->producer->index : -1) ==
                 (y->producer ? y->producer->index : -1) &&
             (!y->producer || (y->producer->graph == b &&
                               y->producer->out[y->producer_out] == y)),
             "%s: producer", w);
        SAME(!x->producer || x->producer_out == y->producer_out, "%s: producer_out", w);
        SAME(x->n_uses == y->n_uses, "%s: n_uses %d vs %d", w, x->n_uses, y->n_uses);
    }
    SAME(a->n_inputs == b->n_inputs && a->n_outputs == b->n_outputs &&
         a->n_captures == b->n_captures && a->n_nodes == b->n_nodes,
         "%s: counts", path);
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
        a->n_captures != b->n_captures || a->n_nodes != b->n_nodes)
        return;
    for (int i = 0; i < a->n_inputs; i++)
        SAME(vid(a->inputs[i]) == vid(b->inputs[i]) && b->inputs[i] == b->values[vid(b->inputs[i])],
             "%s: input %d", path, i);
    for (int i = 0; i < a->n_outputs; i++)
        SAME(vid(a->outputs[i]) == vid(b->outputs[i]), "%s: output %d", path, i);
    for (int i = 0; i < a->n_captures; i++) {
        SAME(vid(a->capture_outer[i]) == vid(b->capture_outer[i]) &&
             b->capture_outer[i] == b->parent->values[b->capture_outer[i]->id],
             "%s: capture outer %d", path, i);
        SAME(vid(a->capture_local[i]) == vid(b->capture_local[i]),
             "%s: capture local %d", path, i);
    }
    for (int k = 0; k < a->n_nodes; k++) {
        const ir_node *x = a->nodes[k], *y = b->nodes[k];
        snprintf(w, sizeof w, "%.300s node %d '%.100s'", path, k, x->name);
        SAME(y->index == k && y->graph == b, "%s: index/graph", w);
        SAME(str_eq(x->name, y->name) && str_eq(x->op_type, y->op_type) &&
             str_eq(x->domain, y->domain), "%s: names", w);
        SAME(x->op == y->op && x->schema == y->schema, "%s: op/schema", w);
        SAME(str_eq(x->fused_from, y->fused_from), "%s: fused_from", w);
        SAME(x->n_in == y->n_in && x->n_implicit == y->n_implicit &&
             x->n_out == y->n_out && x->n_attrs == y->n_attrs, "%s: counts", w);
        if (x->n_in != y->n_in || x->n_implicit != y->n_implicit ||
            x->n_out != y->n_out || x->n_attrs != y->n_attrs)
            continue;
        for (int i = 0; i < x->n_in + x->n_implicit; i++)
            SAME(vid(x->in[i]) == vid(y->in[i]), "%s: input %d", w, i);
        for (int i = 0; i < x->n_out; i++)
            SAME(vid(x->out[i]) == vid(y->out[i]), "%s: output %d", w, i);
        for (int t = 0; t < x->n_attrs; t++) {
            char wa[600];
            snprintf(wa, sizeof wa, "%.400s attr '%.100s'", w, x->attrs[t].name);
            cmp_attr(&x->attrs[t], &y->attrs[t], b, y, wa);
        }
    }
}

static void cmp_engine(const kiln_engine *a, const kiln_engine *b) {
    const ir_model *ma = a->ir, *mb = b->ir;
    SAME(str_eq(ma->producer, mb->producer) &&
         str_eq(ma->producer_version, mb->producer_version), "producer");
    SAME(ma->ir_version == mb->ir_version && ma->opset == mb->opset, "versions");
    SAME(ma->n_opsets == mb->n_opsets, "opset count");
    for (int i = 0; i < ma->n_opsets && ma->n_opsets == mb->n_opsets; i++)
        SAME(str_eq(ma->opsets[i].domain, mb->opsets[i].domain) &&
             ma->opsets[i].version == mb->opsets[i].version, "opset %d", i);
    SAME(ma->n_syms == mb->n_syms, "symbol count");
    for (int i = 0; i < ma->n_syms && ma->n_syms == mb->n_syms; i++)
        SAME(str_eq(ma->sym_names[i], mb->sym_names[i]), "symbol %d", i);
    SAME(mb->graph->model == mb && !mb->graph->parent && !mb->graph->owner,
         "main graph links");
    cmp_graph(ma->graph, mb->graph, "main");
    SAME(strcmp(a->lib_version, b->lib_version) == 0 &&
         strcmp(a->backend, b->backend) == 0 && strcmp(a->arch, b->arch) == 0,
         "build strings");
    SAME(a->isa_required == b->isa_required && a->precisions == b->precisions &&
         a->opt_level == b->opt_level && a->workspace_limit == b->workspace_limit &&
         a->source_nodes == b->source_nodes, "build numbers");
    SAME(b->ops == kiln_backend_cpu(), "ops");
    SAME(a->n_profiles == b->n_profiles, "profile count");
    if (a->n_profiles != b->n_profiles) return;
    const ir_graph *g = ma->graph;
    for (int p = 0; p < a->n_profiles; p++) {
        for (int i = 0; i < g->n_inputs; i++)
            for (int d = 0; d < KILN_MAX_RANK; d++) {
                bool in_rank = d < g->inputs[i]->type.rank;
                SAME(!in_rank || (a->profiles[p].min[i][d] == b->profiles[p].min[i][d] &&
                                  a->profiles[p].opt[i][d] == b->profiles[p].opt[i][d] &&
                                  a->profiles[p].max[i][d] == b->profiles[p].max[i][d]),
                     "profile %d input %d dim %d", p, i, d);
            }
        const engine_plan *x = &a->plans[p], *y = &b->plans[p];
        SAME(x->total_bytes == y->total_bytes && x->naive_bytes == y->naive_bytes &&
             x->workspace_bytes == y->workspace_bytes, "plan %d totals", p);
        for (int v = 0; v < g->n_values; v++)
            SAME(x->offset[v] == y->offset[v] && x->size[v] == y->size[v],
                 "plan %d value %d", p, v);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        SAME(a->layers[k].precision == b->layers[k].precision, "layer %d precision", k);
        for (int p = 0; p < a->n_profiles; p++) {
            SAME(a->layers[k].tactic[p] == b->layers[k].tactic[p],
                 "layer %d profile %d tactic", k, p);
            SAME(memcmp(&a->layers[k].time_us[p], &b->layers[k].time_us[p], 4) == 0,
                 "layer %d profile %d time", k, p);
            const void *ba = a->layers[k].blob ? a->layers[k].blob[p] : NULL;
            const void *bb = b->layers[k].blob ? b->layers[k].blob[p] : NULL;
            uint64_t na = ba ? a->layers[k].blob_size[p] : 0;
            uint64_t nb = bb ? b->layers[k].blob_size[p] : 0;
            SAME(na == nb && (!na || memcmp(ba, bb, (size_t)na) == 0) &&
                 (uintptr_t)bb % 64 == 0, "layer %d profile %d prepared data", k, p);
        }
    }
}

/* Every deserialized constant must point into the blob, 64-byte aligned. */
static bool zero_copy(const kiln_engine *e, const uint8_t *blob, size_t size,
                      int *count) {
    const ir_model *m = e->ir;
    bool ok = true;
    *count = m->n_tensors;
    for (int i = 0; i < m->n_tensors; i++) {
        const uint8_t *p = m->tensors[i]->data;
        if (!p && m->tensors[i]->nbytes) continue; /* stored without bytes */
        ok &= p >= blob && p + m->tensors[i]->nbytes <= blob + size &&
              (uintptr_t)p % 64 == 0 && !(m->tensors[i]->flags & TENSOR_OWNS_DATA);
    }
    return ok;
}

/* ----------------------------------------------------------- helpers */
static kiln_status load(const uint8_t *p, size_t n) {
    kiln_engine e;
    memset(&e, 0, sizeof e);
    kiln_status st = engine_deserialize(p, n, &e);
    engine_clear(&e);
    return st;
}

static bool msg_has(const char *needle) {
    return strstr(kiln_last_error(), needle) != NULL;
}

static uint8_t *dup_aligned(const uint8_t *p, size_t n, size_t extra) {
    uint8_t *q = kiln_aligned_alloc(n + extra);
    if (q) {
        memcpy(q, p, n);
        memset(q + n, 0, extra);
    }
    return q;
}

static size_t section_off(const uint8_t *blob, int id) {
    uint64_t table, off;
    memcpy(&table, blob + ENGINE_OFF_SECTION_TABLE, 8);
    for (int i = 0; i < ENGINE_SEC_COUNT; i++) {
        uint32_t sid;
        memcpy(&sid, blob + table + (size_t)i * ENGINE_SECTION_ENTRY_SIZE, 4);
        if ((int)sid == id) {
            memcpy(&off, blob + table + (size_t)i * ENGINE_SECTION_ENTRY_SIZE + 8, 8);
            return (size_t)off;
        }
    }
    return 0;
}

static kiln_status serialize_and_load(const kiln_engine *e) {
    uint8_t *b;
    size_t n;
    kiln_status st = engine_serialize(e, &b, &n);
    if (st) {
        fprintf(stderr, "serialize: %s\n", kiln_last_error());
        return KILN_INTERNAL;
    }
    st = load(b, n);
    kiln_aligned_free(b);
    return st;
}

static void write_corpus_file(const char *dir, const char *name, uint8_t flag,
                              const uint8_t *blob, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        g_fail++;
        return;
    }
    fputc(flag, f);
    fwrite(blob, 1, n, f);
    fclose(f);
}

/* -------------------------------------------------------------- tests */
static void test_checksum(void) {
    /* the single-word guarantee, exhaustively on a small buffer */
    uint8_t buf[203];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 37 + 11);
    uint64_t h0 = kiln_checksum64(buf, sizeof buf);
    int same = 0;
    for (size_t i = 0; i < sizeof buf; i++) {
        uint8_t orig = buf[i];
        for (int v = 0; v < 256; v++) {
            if (v == orig) continue;
            buf[i] = (uint8_t)v;
            same += kiln_checksum64(buf, sizeof buf) == h0;
        }
        buf[i] = orig;
    }
    CHECK(same == 0, "checksum: %d single-byte changes collide", same);
    int lens = 0;
    for (size_t n = 0; n < sizeof buf; n++)
        lens += kiln_checksum64(buf, n) == h0;
    CHECK(lens == 0, "checksum: %d prefixes collide with the whole", lens);

    /* throughput */
    size_t n = (size_t)64 << 20;
    uint8_t *big = kiln_aligned_alloc(n);
    if (!big) return;
    for (size_t i = 0; i < n; i++) big[i] = (uint8_t)(i ^ (i >> 9));
    struct timespec t0, t1;
    volatile uint64_t sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < 4; r++) sink ^= kiln_checksum64(big, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double gbs = 4.0 * (double)n / s / 1e9;
    printf("checksum throughput: %.2f GB/s\n", gbs);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
#if defined(__has_feature)
#if !__has_feature(address_sanitizer)
    CHECK(gbs > 1.0, "checksum runs at %.2f GB/s, want > 1", gbs);
#endif
#else
    CHECK(gbs > 1.0, "checksum runs at %.2f GB/s, want > 1", gbs);
#endif
#endif
    (void)sink;
    kiln_aligned_free(big);
}

static void test_incompatible(kiln_engine *e, const uint8_t *blob, size_t size) {
    kiln_status st;
    char want[256];
    /* kiln version */
    char saved[32];
    memcpy(saved, e->lib_version, sizeof saved);
    snprintf(e->lib_version, sizeof e->lib_version, "0.0.9");
    st = serialize_and_load(e);
    snprintf(want, sizeof want, "built by kiln 0.0.9; this is kiln %s: rebuild "
             "the engine", KILN_VERSION_STRING);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && strcmp(kiln_last_error(), want) == 0,
          "old kiln version: %s: %s", kiln_status_name(st), kiln_last_error());
    memcpy(e->lib_version, saved, sizeof saved);

    /* backend, arch */
    snprintf(e->backend, sizeof e->backend, "tpu");
    st = serialize_and_load(e);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && msg_has("'tpu' backend, which this kiln was "
                                                    "built without"),
          "backend: %s: %s", kiln_status_name(st), kiln_last_error());
    snprintf(e->backend, sizeof e->backend, "cpu");
    snprintf(e->arch, sizeof e->arch, "sparc64");
    st = serialize_and_load(e);
    snprintf(want, sizeof want, "built for sparc64; this machine is %s: rebuild "
             "the engine on this machine", kiln_host_arch());
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && strcmp(kiln_last_error(), want) == 0,
          "arch: %s: %s", kiln_status_name(st), kiln_last_error());
    snprintf(e->arch, sizeof e->arch, "%s", kiln_host_arch());

    /* ISA: the message itself, then through a file */
    st = engine_check_isa(KILN_ISA_AVX512F, KILN_ISA_AVX2 | KILN_ISA_FMA);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE &&
              strcmp(kiln_last_error(), "built for avx512f; this machine has "
                     "avx2 fma only: rebuild the engine on this machine") == 0,
          "isa message: %s", kiln_last_error());
    CHECK(engine_check_isa(KILN_ISA_AVX2, KILN_ISA_AVX2 | KILN_ISA_FMA) == KILN_OK,
          "isa subset refused");
    /* an AMX engine on a VNNI-only host (or one with AMX hidden) */
    st = engine_check_isa(KILN_ISA_AVX512VNNI | KILN_ISA_AMXINT8,
                          KILN_ISA_AVX2 | KILN_ISA_AVX512VNNI);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE &&
              strcmp(kiln_last_error(), "built for avx512vnni amxint8; this machine has "
                     "avx2 avx512vnni only: rebuild the engine on this machine") == 0,
          "amx isa message: %s", kiln_last_error());
    unsigned host = kiln_backend_cpu()->host_isa();
    unsigned known = KILN_ISA_AVX2 | KILN_ISA_FMA | KILN_ISA_AVX512F;
    unsigned missing = known & ~host;
    unsigned saved_isa = e->isa_required;
    e->isa_required = missing ? missing : 1u << 7;
    st = serialize_and_load(e);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE &&
              msg_has(missing ? "only: rebuild the engine on this machine"
                              : "does not know"),
          "missing isa: %s: %s", kiln_status_name(st), kiln_last_error());
    e->isa_required = saved_isa;

    /* unknown tactic and op */
    static const kiln_tactic fake = {"no_such_tactic", OP_NONE, 0, 0, NULL, NULL, NULL};
    const kiln_tactic *saved_t = e->layers[0].tactic[1];
    e->layers[0].tactic[1] = &fake;
    st = serialize_and_load(e);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && msg_has("tactic 'no_such_tactic'"),
          "unknown tactic: %s: %s", kiln_status_name(st), kiln_last_error());
    e->layers[0].tactic[1] = saved_t;
    ir_node *n = e->ir->graph->nodes[3];
    const char *saved_op = n->op_type;
    n->op_type = "NoSuchOp";
    st = serialize_and_load(e);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && msg_has("operator 'NoSuchOp'"),
          "unknown op: %s: %s", kiln_status_name(st), kiln_last_error());
    n->op_type = saved_op;

    /* byte patches, re-sealed like a tool would */
    uint8_t *c = dup_aligned(blob, size, 0);
    uint32_t v2 = KILN_ENGINE_FORMAT_VERSION + 1;
    memcpy(c + ENGINE_OFF_VERSION, &v2, 4);
    engine_reseal(c, size);
    st = load(c, size);
    snprintf(want, sizeof want, "engine format v%d, this kiln reads v%d: rebuild the "
             "engine with this kiln", KILN_ENGINE_FORMAT_VERSION + 1,
             KILN_ENGINE_FORMAT_VERSION);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && strcmp(kiln_last_error(), want) == 0,
          "format version: %s: %s", kiln_status_name(st), kiln_last_error());
    /* an engine of the previous format (v3: every constant stored with its bytes) */
    memcpy(c, blob, size);
    uint32_t vold = KILN_ENGINE_FORMAT_VERSION - 1;
    memcpy(c + ENGINE_OFF_VERSION, &vold, 4);
    engine_reseal(c, size);
    st = load(c, size);
    snprintf(want, sizeof want, "engine format v%d, this kiln reads v%d: rebuild the "
             "engine with this kiln", KILN_ENGINE_FORMAT_VERSION - 1,
             KILN_ENGINE_FORMAT_VERSION);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && strcmp(kiln_last_error(), want) == 0 &&
          msg_has("rebuild"), "old format version: %s: %s", kiln_status_name(st),
          kiln_last_error());
    memcpy(c, blob, size);
    size_t bo = section_off(c, ENGINE_SEC_BUILD);
    uint32_t vlen;
    memcpy(&vlen, c + bo, 4);
    c[bo + 4] = '7'; /* "0.1.0" -> "7.1.0" */
    engine_reseal(c, size);
    st = load(c, size);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && msg_has("built by kiln 7."),
          "patched version: %s: %s", kiln_status_name(st), kiln_last_error());
    memcpy(c, blob, size);
    size_t p = bo;
    for (int s = 0; s < 3; s++) { /* skip version, backend, arch */
        uint32_t l;
        memcpy(&l, c + p, 4);
        p += 4 + l;
    }
    uint32_t isa = missing ? missing : 1u << 9;
    memcpy(c + p, &isa, 4);
    engine_reseal(c, size);
    st = load(c, size);
    CHECK(st == KILN_INCOMPATIBLE_ENGINE && msg_has(missing ? "this machine has" : "does not know"),
          "patched isa: %s: %s", kiln_status_name(st), kiln_last_error());
    /* without re-sealing, the same patch is damage */
    memcpy(c, blob, size);
    memcpy(c + p, &isa, 4);
    st = load(c, size);
    CHECK(st == KILN_CORRUPT_ENGINE && msg_has("checksum mismatch"),
          "unsealed patch: %s: %s", kiln_status_name(st), kiln_last_error());
    kiln_aligned_free(c);
}

static void test_damage(const uint8_t *blob, size_t size) {
    uint8_t *c = dup_aligned(blob, size, 128);
    /* every position, every other byte value (one value when large) */
    bool all_values = size <= 16384;
    long tried = 0, accepted = 0, wrong = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t orig = c[i];
        for (int v = 0; v < 256; v++) {
            if (v == orig || (!all_values && v != (orig ^ 0xFF))) continue;
            c[i] = (uint8_t)v;
            kiln_status st = load(c, size);
            tried++;
            if (st == KILN_OK) {
                accepted++;
                if (accepted < 5)
                    fprintf(stderr, "byte %zu = 0x%02x accepted\n", i, v);
                continue;
            }
            /* the right diagnosis for where the byte is */
            const char *want = i < ENGINE_MAGIC_LEN ? "not a Kiln engine"
                             : i < ENGINE_OFF_VERSION + 4 ? "engine format v"
                             : i >= ENGINE_OFF_TOTAL_SIZE && i < ENGINE_OFF_TOTAL_SIZE + 8
                                 ? "engine file"
                                 : "checksum mismatch";
            kiln_status want_st = i >= ENGINE_OFF_VERSION && i < ENGINE_OFF_VERSION + 4
                                      ? KILN_INCOMPATIBLE_ENGINE : KILN_CORRUPT_ENGINE;
            if (st != want_st || !msg_has(want)) {
                if (wrong++ < 5)
                    fprintf(stderr, "byte %zu = 0x%02x: %s: %s\n", i, v,
                            kiln_status_name(st), kiln_last_error());
            }
        }
        c[i] = orig;
    }
    CHECK(accepted == 0, "%ld of %ld single-byte changes accepted", accepted, tried);
    CHECK(wrong == 0, "%ld single-byte changes got the wrong diagnosis", wrong);
    printf("single-byte changes: %ld tried (%s), all refused: %s\n", tried,
           all_values ? "all 255 values at every byte" : "one flip per byte",
           accepted ? "NO" : "yes");

    /* every truncation, and extensions */
    long bad_trunc = 0;
    for (size_t n = 0; n < size; n++) {
        kiln_status st = load(c, n);
        if (st != KILN_CORRUPT_ENGINE ||
            (n >= ENGINE_MAGIC_LEN && !msg_has("truncated"))) {
            if (bad_trunc++ < 5)
                fprintf(stderr, "truncated to %zu: %s: %s\n", n,
                        kiln_status_name(st), kiln_last_error());
        }
    }
    CHECK(bad_trunc == 0, "%ld truncations not refused as truncated", bad_trunc);
    long bad_ext = 0;
    for (size_t k = 1; k <= 128; k++) {
        c[size + k - 1] = (uint8_t)(k & 1 ? 0 : 0xA5);
        kiln_status st = load(c, size + k);
        if (st != KILN_CORRUPT_ENGINE || !msg_has("after its end")) bad_ext++;
    }
    CHECK(bad_ext == 0, "%ld extensions not refused", bad_ext);
    printf("truncations: %zu refused; extensions: 128 refused\n", size);

    /* misaligned memory is a caller error */
    uint8_t *mis = kiln_aligned_alloc(size + 64);
    memcpy(mis + 8, blob, size);
    CHECK(load(mis + 8, size) == KILN_INVALID_ARGUMENT, "misaligned accepted");
    kiln_aligned_free(mis);
    kiln_aligned_free(c);
}

/* Re-sealed single-byte changes past the envelope reach the structural
** checks: each must be refused cleanly or load an engine that serializes
** again (ASan/UBSan builds make "cleanly" strict). */
static void test_resealed(const uint8_t *blob, size_t size) {
    uint8_t *c = dup_aligned(blob, size, 0);
    long refused = 0, loaded = 0, broken = 0;
    static const uint8_t deltas[] = {0x01, 0x80, 0xFF, 0x7F};
    for (size_t i = ENGINE_HEADER_SIZE; i + ENGINE_TRAILER_SIZE < size; i++) {
        for (size_t d = 0; d < sizeof deltas; d++) {
            c[i] = (uint8_t)(blob[i] ^ deltas[d]);
            engine_reseal(c, size);
            kiln_engine e;
            memset(&e, 0, sizeof e);
            kiln_status st = engine_deserialize(c, size, &e);
            if (st == KILN_OK) {
                loaded++;
                uint8_t *b2;
                size_t n2;
                if (engine_serialize(&e, &b2, &n2) != KILN_OK) {
                    if (broken++ < 5)
                        fprintf(stderr, "byte %zu ^ 0x%02x loads but does not "
                                "serialize: %s\n", i, deltas[d], kiln_last_error());
                } else {
                    if (load(b2, n2) != KILN_OK && broken++ < 5)
                        fprintf(stderr, "byte %zu ^ 0x%02x: re-serialized engine "
                                "does not load: %s\n", i, deltas[d], kiln_last_error());
                    kiln_aligned_free(b2);
                }
            } else {
                refused++;
                if (!kiln_last_error()[0]) broken++;
            }
            engine_clear(&e);
        }
        c[i] = blob[i];
    }
    CHECK(broken == 0, "%ld re-sealed mutations misbehaved", broken);
    printf("re-sealed mutations: %ld refused, %ld loaded (and re-serialized)\n",
           refused, loaded);
    kiln_aligned_free(c);
}

/* Offset of layer k's first profile entry (i32 tactic, f32 time, u64 blob
** offset, u64 blob size) in the layers section. */
static size_t layer_entry_off(const uint8_t *blob, int k, uint32_t *np_out) {
    size_t o = section_off(blob, ENGINE_SEC_LAYERS);
    uint32_t np, nt, len;
    memcpy(&np, blob + o + 4, 4);
    memcpy(&nt, blob + o + 8, 4);
    o += 12;
    for (uint32_t j = 0; j < nt; j++) {
        memcpy(&len, blob + o, 4);
        o += 4 + len;
    }
    *np_out = np;
    return o + (size_t)k * (4 + (size_t)np * 24) + 4;
}

/* Constants stored without bytes: each one's readers must all run with
** prepared data that replaces it; an engine whose layer lost its prepared
** data, or whose needed tensor claims to have no bytes, is refused with
** "rebuild". */
static void test_no_data(const uint8_t *blob, size_t size) {
    kiln_engine e;
    memset(&e, 0, sizeof e);
    CHECK(engine_deserialize(blob, size, &e) == KILN_OK, "load: %s", kiln_last_error());
    const ir_graph *g = e.ir ? e.ir->graph : NULL;
    int reader = -1, dropped = 0;
    uint8_t *unread = calloc(g ? (size_t)g->n_values + 1 : 1, 1);
    if (g) engine_const_unread(&e, unread);
    for (int i = 0; g && i < g->n_values; i++) {
        const kiln_tensor *t = g->values[i]->const_val;
        if (!t || !t->nbytes) continue;
        CHECK(!!t->data != !!unread[i], "value %d: stored without bytes %d, unread %d",
              i, !t->data, unread[i]);
        if (t->data) continue;
        dropped++;
        for (int k = 0; k < g->n_nodes && reader < 0; k++)
            for (int j = 0; j < g->nodes[k]->n_in; j++)
                if (g->nodes[k]->in[j] == g->values[i]) reader = k;
    }
    free(unread);
    engine_clear(&e);
    CHECK(dropped > 0 && reader >= 0, "no constant was stored without its bytes");
    if (reader < 0) return;
    /* the reader loses its prepared data (every profile) */
    uint8_t *c = dup_aligned(blob, size, 0);
    uint32_t np;
    size_t o = layer_entry_off(c, reader, &np);
    for (uint32_t p = 0; p < np; p++) memset(c + o + (size_t)p * 24 + 8, 0, 16);
    engine_reseal(c, size);
    kiln_status st = load(c, size);
    CHECK(st == KILN_CORRUPT_ENGINE && msg_has("stored without its bytes") &&
              msg_has("rebuild"), "a layer without the prepared data that replaces "
          "its constant: %s: %s", kiln_status_name(st), kiln_last_error());
    /* only one profile loses it */
    memcpy(c, blob, size);
    memset(c + o + 8, 0, 16);
    engine_reseal(c, size);
    st = load(c, size);
    CHECK(st == KILN_CORRUPT_ENGINE && msg_has("rebuild"),
          "one profile without prepared data: %s: %s", kiln_status_name(st),
          kiln_last_error());
    /* a tensor that is stored (offset 0: the first one) claims it is not */
    memcpy(c, blob, size);
    size_t t = section_off(c, ENGINE_SEC_TENSORS);
    uint32_t nt;
    memcpy(&nt, c + t, 4);
    t += 4;
    bool patched = false;
    for (uint32_t i = 0; i < nt && !patched; i++) {
        int32_t rank;
        uint64_t off, nb;
        uint32_t flags, len;
        memcpy(&rank, c + t + 4, 4);
        t += 8 + (size_t)rank * 8;
        memcpy(&off, c + t, 8);
        memcpy(&nb, c + t + 8, 8);
        memcpy(&flags, c + t + 16, 4);
        if (!flags && !off && nb) {
            flags = ENGINE_TENSOR_NO_DATA;
            memcpy(c + t + 16, &flags, 4);
            patched = true;
        }
        t += 20;
        memcpy(&len, c + t, 4);
        t += 4 + (len == 0xFFFFFFFFu ? 0 : len);
    }
    CHECK(patched, "no stored tensor at offset 0");
    engine_reseal(c, size);
    st = load(c, size);
    CHECK(st == KILN_CORRUPT_ENGINE && msg_has("without its bytes") && msg_has("rebuild"),
          "a needed tensor without bytes: %s: %s", kiln_status_name(st), kiln_last_error());
    printf("constants stored without bytes: %d; a reader without prepared data and a "
           "needed tensor without bytes are refused\n", dropped);
    kiln_aligned_free(c);
}

int main(int argc, char **argv) {
    const char *model_path = "tests/data/engine_format.onnx";
    const char *corpus_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--write-corpus") == 0 && i + 1 < argc)
            corpus_dir = argv[++i];
        else
            model_path = argv[i];
    }
    size_t msize;
    uint8_t *mbytes = read_all(model_path, &msize);
    if (!mbytes) {
        fprintf(stderr, "cannot read %s\n", model_path);
        return 1;
    }
    ir_model *m = NULL;
    if (onnx_import(mbytes, msize, NULL, &ref_evaluator, &m) != KILN_OK) {
        fprintf(stderr, "import: %s\n", kiln_last_error());
        return 1;
    }
    kiln_engine e;
    build_engine(m, &e);

    test_checksum();

    uint8_t *blob = NULL;
    size_t size = 0;
    kiln_status st = engine_serialize(&e, &blob, &size);
    CHECK(st == KILN_OK, "serialize: %s", kiln_last_error());
    if (st) return 1;
    CHECK((uintptr_t)blob % 64 == 0, "blob not aligned");
    printf("engine: %zu bytes, %d main-graph nodes, %d tensors\n", size,
           m->graph->n_nodes, m->n_tensors);

    kiln_engine e2;
    memset(&e2, 0, sizeof e2);
    st = engine_deserialize(blob, size, &e2);
    CHECK(st == KILN_OK, "deserialize: %s", kiln_last_error());
    if (st) return 1;
    g_cmp_fail = 0;
    cmp_engine(&e, &e2);
    CHECK(g_cmp_fail == 0, "%d fields differ after the round trip", g_cmp_fail);
    CHECK(g_no_data > 0, "no constant was stored without its bytes");
    int nt = 0;
    CHECK(zero_copy(&e2, blob, size, &nt) && nt > 0,
          "deserialized constants are not borrowed, aligned views of the blob");
    /* prepared layer data: present, borrowed from the file, 64-byte aligned,
    ** a shared buffer stored once */
    int nblob = 0;
    bool blobs_ok = true;
    for (int k = 0; k < e2.ir->graph->n_nodes; k++)
        for (int p = 0; p < e2.n_profiles && e2.layers[k].blob; p++) {
            const uint8_t *bp = e2.layers[k].blob[p];
            if (!bp) continue;
            nblob += !(p && e2.layers[k].blob[0] == e2.layers[k].blob[p]);
            blobs_ok &= bp >= blob && bp + e2.layers[k].blob_size[p] <= blob + size &&
                        (uintptr_t)bp % 64 == 0;
        }
    CHECK(e2.layers[0].blob && e2.layers[0].blob[0] &&
          e2.layers[0].blob[0] == e2.layers[0].blob[1],
          "layer 0: two profiles with one tactic do not share one stored blob");
    CHECK(g_layer_blobs > 0 && nblob == g_layer_blobs && blobs_ok,
          "prepared layer data: %d made, %d loaded (in place: %d)", g_layer_blobs, nblob,
          (int)blobs_ok);
    /* the nested If captures from two levels up */
    const ir_graph *then1 = ir_attr_graph(e2.ir->graph->nodes[6], "then_branch");
    CHECK(then1 && then1->n_captures >= 2 && e2.ir->graph->nodes[6]->n_implicit >= 2,
          "captures lost");
    /* a second trip gives the same bytes */
    uint8_t *blob2 = NULL;
    size_t size2 = 0;
    st = engine_serialize(&e2, &blob2, &size2);
    CHECK(st == KILN_OK && size2 == size && memcmp(blob, blob2, size) == 0,
          "re-serialization differs");
    kiln_aligned_free(blob2);
    engine_clear(&e2);
    CHECK(e2.ir == NULL && e2.layers == NULL, "engine_clear left state");

    /* no profiles, one node */
    kiln_engine t;
    memset(&t, 0, sizeof t);
    t.ir = tiny_model();
    t.ops = kiln_backend_cpu();
    snprintf(t.lib_version, sizeof t.lib_version, "%s", KILN_VERSION_STRING);
    snprintf(t.backend, sizeof t.backend, "cpu");
    snprintf(t.arch, sizeof t.arch, "%s", kiln_host_arch());
    t.layers = calloc(1, sizeof *t.layers);
    uint8_t *tb = NULL;
    size_t tn = 0;
    st = engine_serialize(&t, &tb, &tn);
    CHECK(st == KILN_OK, "tiny serialize: %s", kiln_last_error());
    kiln_engine t2;
    memset(&t2, 0, sizeof t2);
    st = tb ? engine_deserialize(tb, tn, &t2) : KILN_INTERNAL;
    CHECK(st == KILN_OK, "tiny deserialize: %s", kiln_last_error());
    if (st == KILN_OK) {
        g_cmp_fail = 0;
        cmp_engine(&t, &t2);
        CHECK(g_cmp_fail == 0, "tiny engine: %d fields differ", g_cmp_fail);
    }
    engine_clear(&t2);

    if (corpus_dir) {
        write_corpus_file(corpus_dir, "small_sealed", 1, blob, size);
        write_corpus_file(corpus_dir, "small_raw", 0, blob, size);
        if (tb) write_corpus_file(corpus_dir, "tiny_sealed", 1, tb, tn);
        printf("corpus written to %s\n", corpus_dir);
    }

    test_incompatible(&e, blob, size);
    test_damage(blob, size);
    if (tb) test_damage(tb, tn);
    test_resealed(blob, size);
    test_no_data(blob, size);

    kiln_aligned_free(tb);
    engine_clear(&t);
    kiln_aligned_free(blob);
    engine_clear(&e);
    kiln_aligned_free(mbytes);
    return test_summary();
}
