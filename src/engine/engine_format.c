/* engine_format.c: the .kiln byte format: engine_serialize, the validating
** engine_deserialize (hostile input: every count, index and offset is
** checked, constants borrow the file's bytes) and engine_clear. The layout
** is described field by field in docs/ENGINE_FORMAT.md. */
#include "engine_format.h"

#include "checksum.h"
#include "../ops/op.h"

#include <limits.h>
#include <stdio.h>

#define NO_STR 0xFFFFFFFFu  /* length of an absent (NULL) string */
#define MAX_COUNT (INT32_MAX / 4) /* any count; real bound: bytes left */

/* Smallest encodings, used to bound counts by the bytes that remain. */
enum {
    MIN_VALUE_BYTES = 24,  /* name len, flags, dtype, rank, const, sym_len */
    MIN_NODE_BYTES = 32,   /* 4 string lengths, 3 counts, attr count */
    MIN_ATTR_BYTES = 8,    /* name len, type */
    MIN_GRAPH_BYTES = 24,  /* name len, 5 counts */
    MIN_TENSOR_BYTES = 32, /* dtype, rank, offset, nbytes, flags, name len */
    MIN_PROFILE_BYTES = 4  /* input count */
};

static const char *const k_section_names[ENGINE_SEC_COUNT + 1] = {
    "", "build", "symbols", "tensors", "graph", "profiles", "layers",
    "plans", "weights",
};

const char *kiln_host_arch(void) {
#if defined(__x86_64__) || defined(_M_X64)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__i386__)
    return "x86";
#elif defined(__arm__)
    return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#elif defined(__powerpc64__)
    return "ppc64le";
#else
    return "unknown";
#endif
}

kiln_status engine_check_isa(unsigned required, unsigned host) {
    const unsigned known = KILN_ISA_AVX2 | KILN_ISA_FMA | KILN_ISA_AVX512F |
                           KILN_ISA_AVX512BW | KILN_ISA_AVX512VNNI | KILN_ISA_AMXINT8;
    char need[64], have[64];
    if (required & ~known)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "built for CPU features "
                          "this kiln does not know (mask 0x%x): rebuild the "
                          "engine on this machine", required & ~known);
    if (!(required & ~host)) return KILN_OK;
    return kiln_error(KILN_INCOMPATIBLE_ENGINE, "built for %s; this machine "
                      "has %s only: rebuild the engine on this machine",
                      kiln_isa_names(required, need, sizeof need),
                      kiln_isa_names(host & known, have, sizeof have));
}

/* Printable, bounded copy of an untrusted string for messages. */
static const char *printable(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; s && *s && k + 1 < n; s++)
        buf[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    buf[k] = 0;
    return buf;
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static bool dtype_storable(int dt) {
    size_t nb;
    return dtype_is_valid(dt) && dtype_nbytes((kiln_dtype)dt, 1, &nb);
}

/* A dim is concrete (>= 0) or names one of the model's symbols. */
static bool dim_ok(int64_t d, int n_syms) {
    return d >= 0 || (uint64_t)(-(d + 1)) < (uint64_t)n_syms;
}

static bool type_ok(const ir_type *t, int n_syms) {
    if (t->dtype != KILN_DTYPE_UNDEFINED && !dtype_is_valid((int)t->dtype))
        return false;
    if (t->rank < -1 || t->rank > KILN_MAX_RANK) return false;
    for (int i = 0; i < t->rank; i++)
        if (!dim_ok(t->dims[i], n_syms)) return false;
    return true;
}

/* A constant must agree with its value's type where that is known. */
static bool const_fits(const ir_type *t, const kiln_tensor *c) {
    if (t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != c->dtype) return false;
    if (t->rank < 0) return true;
    if (t->rank != c->rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] >= 0 && t->dims[i] != c->dims[i]) return false;
    return true;
}

static bool printable_str(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < 32 || s[i] >= 127) return false;
    return true;
}

void engine_reseal(uint8_t *blob, size_t size) {
    if (!blob || size < ENGINE_OFF_TOTAL_SIZE + 8 + ENGINE_TRAILER_SIZE) return;
    wr64(blob + ENGINE_OFF_TOTAL_SIZE, (uint64_t)size);
    wr64(blob + size - ENGINE_TRAILER_SIZE,
         kiln_checksum64(blob, size - ENGINE_TRAILER_SIZE));
}

/* ================================================================ clear */
void engine_clear(kiln_engine *e) {
    if (!e) return;
    if (e->layers) {
        int nn = e->ir && e->ir->graph ? e->ir->graph->n_nodes : 0;
        int np = e->n_profiles;
        for (int i = 0; i < nn; i++) {
            engine_layer *l = &e->layers[i];
            for (int p = 0; e->owns_layer_blobs && l->blob && p < np; p++) {
                bool shared = false; /* profiles may share one buffer */
                for (int q = 0; q < p && !shared; q++) shared = l->blob[q] == l->blob[p];
                if (!shared) kiln_aligned_free((void *)l->blob[p]);
            }
            free((void *)l->tactic);
            free(l->time_us);
            free((void *)l->blob);
            free(l->blob_size);
        }
        free(e->layers);
    }
    for (int p = 0; e->profiles && p < e->n_profiles; p++) {
        free(e->profiles[p].min);
        free(e->profiles[p].opt);
        free(e->profiles[p].max);
    }
    free(e->profiles);
    for (int p = 0; e->plans && p < e->n_profiles; p++) {
        free(e->plans[p].offset);
        free(e->plans[p].size);
    }
    free(e->plans);
    ir_model_free(e->ir);
    void *blob = e->blob;
    size_t blob_size = e->blob_size;
    bool mapped = e->blob_mapped;
    memset(e, 0, sizeof *e);
    e->blob = blob;
    e->blob_size = blob_size;
    e->blob_mapped = mapped;
}

/* ============================================================ serialize */
typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void w_bytes(wbuf *w, const void *src, size_t n) {
    if (w->oom || n == 0) return;
    if (n > w->cap - w->n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->n < n) {
            if (cap > SIZE_MAX / 2) {
                w->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}
static void w_u32(wbuf *w, uint32_t v) { w_bytes(w, &v, 4); }
static void w_i32(wbuf *w, int32_t v) { w_bytes(w, &v, 4); }
static void w_u64(wbuf *w, uint64_t v) { w_bytes(w, &v, 8); }
static void w_i64(wbuf *w, int64_t v) { w_bytes(w, &v, 8); }
static void w_f32(wbuf *w, float v) { w_bytes(w, &v, 4); }

typedef struct ser {
    wbuf *w;
    const ir_model *m;
    const kiln_tensor **tensors; /* tensor table in first-use order */
    int n_tensors, cap_tensors;
    const kiln_tensor **keys;    /* open-addressing map tensor -> index */
    int *vals;
    size_t map_cap;
    uint8_t *keep;               /* per table index: some reader needs the bytes */
    const uint8_t *unread;       /* per main-graph value id (engine_const_unread) */
    kiln_status st;
} ser;

static bool ser_fail(ser *s, kiln_status st, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static bool ser_fail(ser *s, kiln_status st, const char *fmt, ...) {
    if (s->st) return false;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->st = kiln_error(st, "cannot serialize engine: %s", msg);
    return false;
}

static bool w_str(ser *s, const char *str, size_t n) {
    if (n >= NO_STR) return ser_fail(s, KILN_UNSUPPORTED, "string too long");
    w_u32(s->w, (uint32_t)n);
    w_bytes(s->w, str, n);
    return true;
}
static bool w_cstr(ser *s, const char *str) {
    return w_str(s, str ? str : "", str ? strlen(str) : 0);
}
static bool w_ostr(ser *s, const char *str) {
    if (!str) {
        w_u32(s->w, NO_STR);
        return true;
    }
    return w_cstr(s, str);
}

static size_t ptr_hash(const void *p, size_t cap) {
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 17) &
           (cap - 1);
}

/* Index of t in the tensor table, adding it on first use; -1 on error. */
static int ser_tensor(ser *s, const kiln_tensor *t, const char *what, bool droppable) {
    char b[128];
    if (!t) return ser_fail(s, KILN_INTERNAL, "%s has a NULL tensor", what), -1;
    if ((size_t)s->n_tensors * 2 + 2 > s->map_cap) {
        size_t cap = s->map_cap ? s->map_cap * 2 : 256;
        const kiln_tensor **k = calloc(cap, sizeof *k);
        int *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return ser_fail(s, KILN_OUT_OF_MEMORY, "out of memory"), -1;
        }
        for (size_t i = 0; i < s->map_cap; i++) {
            if (!s->keys[i]) continue;
            size_t h = ptr_hash(s->keys[i], cap);
            while (k[h]) h = (h + 1) & (cap - 1);
            k[h] = s->keys[i];
            v[h] = s->vals[i];
        }
        free(s->keys);
        free(s->vals);
        s->keys = k;
        s->vals = v;
        s->map_cap = cap;
    }
    size_t h = ptr_hash(t, s->map_cap);
    while (s->keys[h]) {
        if (s->keys[h] == t) {
            if (!droppable) s->keep[s->vals[h]] = 1;
            return s->vals[h];
        }
        h = (h + 1) & (s->map_cap - 1);
    }
    size_t nb;
    int64_t numel = t->rank >= 0 && t->rank <= KILN_MAX_RANK
                        ? shape_numel(t->rank, t->dims) : -1;
    if (!dtype_storable((int)t->dtype))
        return ser_fail(s, KILN_UNSUPPORTED, "%s: tensors of type %s cannot "
                        "be stored in an engine", what,
                        kiln_dtype_name(t->dtype)), -1;
    /* data may be NULL only where a loaded engine left it out; whether it
    ** may stay out is decided once every reader is known */
    if (numel < 0 || !dtype_nbytes(t->dtype, numel, &nb) || nb != t->nbytes ||
        (nb && !t->data && !droppable))
        return ser_fail(s, KILN_INTERNAL, "%s: tensor '%s' has an "
                        "inconsistent shape or size", what,
                        printable(t->name, b, sizeof b)), -1;
    if (s->n_tensors >= MAX_COUNT)
        return ser_fail(s, KILN_UNSUPPORTED, "too many tensors"), -1;
    if (s->n_tensors == s->cap_tensors) {
        int cap = s->cap_tensors ? s->cap_tensors * 2 : 64;
        const kiln_tensor **p = realloc(s->tensors, (size_t)cap * sizeof *p);
        if (!p) return ser_fail(s, KILN_OUT_OF_MEMORY, "out of memory"), -1;
        s->tensors = p;
        uint8_t *kp = realloc(s->keep, (size_t)cap);
        if (!kp) return ser_fail(s, KILN_OUT_OF_MEMORY, "out of memory"), -1;
        s->keep = kp;
        s->cap_tensors = cap;
    }
    s->keep[s->n_tensors] = !droppable;
    s->keys[h] = t;
    s->vals[h] = s->n_tensors;
    s->tensors[s->n_tensors] = t;
    return s->n_tensors++;
}

static bool in_graph(const ir_graph *g, const ir_value *v) {
    return g && v && v->id >= 0 && v->id < g->n_values && g->values[v->id] == v;
}

static bool ser_graph(ser *s, const ir_graph *g, int depth);

static bool ser_graph_list_ok(ser *s, const ir_graph *sub, const ir_graph *g,
                              const ir_node *n, const char *lab) {
    if (!sub)
        return ser_fail(s, KILN_INTERNAL, "%s has a NULL subgraph", lab);
    if (sub->parent != g)
        return ser_fail(s, KILN_INTERNAL, "%s: subgraph '%s' has the wrong "
                        "parent graph", lab, sub->name ? sub->name : "");
    (void)n;
    return true;
}

static bool ser_attr(ser *s, const ir_graph *g, const ir_node *n,
                     const ir_attr *a, const char *lab, int depth) {
    wbuf *w = s->w;
    char what[512];
    snprintf(what, sizeof what, "%s attribute '%s'", lab, a->name ? a->name : "");
    if (!w_cstr(s, a->name)) return false;
    w_u32(w, (uint32_t)a->type);
    bool list = a->type == IR_ATTR_FLOATS || a->type == IR_ATTR_INTS ||
                a->type == IR_ATTR_STRINGS || a->type == IR_ATTR_TENSORS ||
                a->type == IR_ATTR_GRAPHS;
    if (list) {
        if (a->n < 0) return ser_fail(s, KILN_INTERNAL, "%s: negative count", what);
        bool have = a->type == IR_ATTR_FLOATS ? a->floats != NULL
                  : a->type == IR_ATTR_INTS ? a->ints != NULL
                  : a->type == IR_ATTR_STRINGS ? a->strings != NULL
                  : a->type == IR_ATTR_TENSORS ? a->tensors != NULL
                                               : a->graphs != NULL;
        if (a->n && !have)
            return ser_fail(s, KILN_INTERNAL, "%s: list without elements", what);
        w_u32(w, (uint32_t)a->n);
    }
    switch (a->type) {
    case IR_ATTR_FLOAT: w_f32(w, a->f); return true;
    case IR_ATTR_INT: w_i64(w, a->i); return true;
    case IR_ATTR_STRING: {
        const char *str = a->s ? a->s : "";
        /* s_len excludes the NUL; a hand-made attribute may leave it 0 */
        return w_str(s, str, a->s_len ? a->s_len : strlen(str));
    }
    case IR_ATTR_TENSOR: {
        int k = ser_tensor(s, a->t, what, false);
        if (k < 0) return false;
        w_u32(w, (uint32_t)k);
        return true;
    }
    case IR_ATTR_GRAPH:
        return ser_graph_list_ok(s, a->g, g, n, what) && ser_graph(s, a->g, depth + 1);
    case IR_ATTR_FLOATS:
        w_bytes(w, a->floats, (size_t)a->n * sizeof(float));
        return true;
    case IR_ATTR_INTS:
        w_bytes(w, a->ints, (size_t)a->n * sizeof(int64_t));
        return true;
    case IR_ATTR_STRINGS:
        for (int k = 0; k < a->n; k++)
            if (!w_cstr(s, a->strings[k])) return false;
        return true;
    case IR_ATTR_TENSORS:
        for (int k = 0; k < a->n; k++) {
            int t = ser_tensor(s, a->tensors[k], what, false);
            if (t < 0) return false;
            w_u32(w, (uint32_t)t);
        }
        return true;
    case IR_ATTR_GRAPHS:
        for (int k = 0; k < a->n; k++)
            if (!ser_graph_list_ok(s, a->graphs[k], g, n, what) ||
                !ser_graph(s, a->graphs[k], depth + 1))
                return false;
        return true;
    case IR_ATTR_TYPE_PROTO: case IR_ATTR_TYPE_PROTOS:
        return true; /* the IR keeps no payload for these */
    default:
        return ser_fail(s, KILN_UNSUPPORTED, "%s has type %d, which engines "
                        "cannot store", what, a->type);
    }
}

static bool ser_value_ref(ser *s, const ir_graph *g, const ir_value *v,
                          const char *what) {
    if (!in_graph(g, v))
        return ser_fail(s, KILN_INTERNAL, "%s is not a value of graph '%s'",
                        what, g->name ? g->name : "");
    w_u32(s->w, (uint32_t)v->id);
    return true;
}

static bool ser_graph(ser *s, const ir_graph *g, int depth) {
    wbuf *w = s->w;
    const ir_model *m = s->m;
    char lab[256], what[512];
    const char *gname = g->name ? g->name : "";
    if (depth > ENGINE_MAX_GRAPH_DEPTH)
        return ser_fail(s, KILN_UNSUPPORTED, "subgraphs nested deeper than %d",
                        ENGINE_MAX_GRAPH_DEPTH);
    if (g->model != m)
        return ser_fail(s, KILN_INTERNAL, "graph '%s' belongs to another model",
                        gname);
    if (!w_cstr(s, gname)) return false;
    /* values */
    w_u32(w, (uint32_t)g->n_values);
    for (int i = 0; i < g->n_values; i++) {
        const ir_value *v = g->values[i];
        const char *vn = v && v->name ? v->name : "";
        if (!v || v->id != i)
            return ser_fail(s, KILN_INTERNAL, "graph '%s': value %d has id %d",
                            gname, i, v ? v->id : -1);
        if (!type_ok(&v->type, m->n_syms))
            return ser_fail(s, KILN_INTERNAL, "value '%s' has an invalid type",
                            vn);
        if (v->flags & ~(unsigned)(IR_VALUE_INPUT | IR_VALUE_OUTPUT |
                                   IR_VALUE_INITIALIZER | IR_VALUE_CAPTURE))
            return ser_fail(s, KILN_INTERNAL, "value '%s' has unknown flags 0x%x",
                            vn, v->flags);
        if ((v->flags & IR_VALUE_INITIALIZER) && !v->const_val)
            return ser_fail(s, KILN_INTERNAL, "initializer '%s' has no "
                            "contents", vn);
        if (v->const_val && !const_fits(&v->type, v->const_val))
            return ser_fail(s, KILN_INTERNAL, "value '%s': constant contents "
                            "disagree with its type", vn);
        if (v->sym_len < 0 || (v->sym_len && !v->sym_val))
            return ser_fail(s, KILN_INTERNAL, "value '%s': bad symbolic "
                            "contents", vn);
        if (!w_cstr(s, vn)) return false;
        w_u32(w, v->flags);
        w_i32(w, (int32_t)v->type.dtype);
        w_i32(w, v->type.rank);
        for (int d = 0; d < v->type.rank; d++) w_i64(w, v->type.dims[d]);
        int ci = -1;
        if (v->const_val) {
            snprintf(what, sizeof what, "value '%s'", vn);
            bool unread = !g->parent && s->unread && s->unread[i];
            if ((ci = ser_tensor(s, v->const_val, what, unread)) < 0) return false;
        }
        w_i32(w, ci);
        w_u32(w, (uint32_t)v->sym_len);
        w_bytes(w, v->sym_val, (size_t)v->sym_len * sizeof(int64_t));
    }
    /* inputs */
    w_u32(w, (uint32_t)g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) {
        snprintf(what, sizeof what, "graph '%s' input %d", gname, i);
        if (!ser_value_ref(s, g, g->inputs[i], what)) return false;
    }
    /* captures */
    if (g->n_captures && !g->parent)
        return ser_fail(s, KILN_INTERNAL, "graph '%s' has captures but no "
                        "parent", gname);
    w_u32(w, (uint32_t)g->n_captures);
    for (int i = 0; i < g->n_captures; i++) {
        snprintf(what, sizeof what, "graph '%s' capture %d (outer)", gname, i);
        if (!ser_value_ref(s, g->parent, g->capture_outer[i], what)) return false;
        snprintf(what, sizeof what, "graph '%s' capture %d (local)", gname, i);
        if (!ser_value_ref(s, g, g->capture_local[i], what)) return false;
    }
    /* nodes */
    w_u32(w, (uint32_t)g->n_nodes);
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (!n) return ser_fail(s, KILN_INTERNAL, "graph '%s': node %d is NULL",
                                gname, k);
        ir_node_label(n, lab, sizeof lab);
        if (n->dead)
            return ser_fail(s, KILN_INTERNAL, "%s is marked dead: compact the "
                            "graph before serializing", lab);
        if (n->n_in < 0 || n->n_implicit < 0 || n->n_out < 0 || n->n_attrs < 0)
            return ser_fail(s, KILN_INTERNAL, "%s has a negative count", lab);
        if (!w_cstr(s, n->name) || !w_cstr(s, n->op_type) ||
            !w_cstr(s, n->domain) || !w_ostr(s, n->fused_from))
            return false;
        w_u32(w, (uint32_t)n->n_in);
        w_u32(w, (uint32_t)n->n_implicit);
        w_u32(w, (uint32_t)n->n_out);
        for (int i = 0; i < n->n_in; i++) {
            if (!n->in[i]) {
                w_i32(w, -1);
                continue;
            }
            snprintf(what, sizeof what, "%s input %d", lab, i);
            if (!ser_value_ref(s, g, n->in[i], what)) return false;
        }
        for (int i = n->n_in; i < n->n_in + n->n_implicit; i++) {
            snprintf(what, sizeof what, "%s implicit input %d", lab, i - n->n_in);
            if (!ser_value_ref(s, g, n->in[i], what)) return false;
        }
        for (int i = 0; i < n->n_out; i++) {
            snprintf(what, sizeof what, "%s output %d", lab, i);
            if (!ser_value_ref(s, g, n->out[i], what)) return false;
        }
        w_u32(w, (uint32_t)n->n_attrs);
        for (int a = 0; a < n->n_attrs; a++)
            if (!ser_attr(s, g, n, &n->attrs[a], lab, depth)) return false;
    }
    /* outputs */
    w_u32(w, (uint32_t)g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) {
        snprintf(what, sizeof what, "graph '%s' output %d", gname, i);
        if (!ser_value_ref(s, g, g->outputs[i], what)) return false;
    }
    return !s->st;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static bool fixed_str_ok(const char *s, size_t cap) {
    size_t n = strnlen(s, cap);
    return n < cap && printable_str(s, n);
}

kiln_status engine_serialize(const kiln_engine *e, uint8_t **out, size_t *size) {
    if (!e || !out || !size)
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    *size = 0;
    if (!e->ir || !e->ir->graph)
        return kiln_error(KILN_INVALID_ARGUMENT, "cannot serialize engine: "
                          "it has no graph");
    const ir_model *m = e->ir;
    const ir_graph *g = m->graph;
    wbuf secs[ENGINE_SEC_COUNT + 1];
    memset(secs, 0, sizeof secs);
    ser s = {0};
    s.m = m;
    uint64_t *woff = NULL, *boff = NULL;
    uint8_t *buf = NULL, *unread = NULL;
    const char **tnames = NULL;
    int n_tnames = 0;
    int np = e->n_profiles;

    if (np < 0 || np > MAX_COUNT || (np && (!e->profiles || !e->plans)))
        ser_fail(&s, KILN_INTERNAL, "bad profile count or missing profiles");
    else if (g->n_nodes && !e->layers)
        ser_fail(&s, KILN_INTERNAL, "layers are missing");
    else if (!fixed_str_ok(e->lib_version, sizeof e->lib_version) ||
             !fixed_str_ok(e->backend, sizeof e->backend) ||
             !fixed_str_ok(e->arch, sizeof e->arch) ||
             !fixed_str_ok(e->dev_fingerprint, sizeof e->dev_fingerprint))
        ser_fail(&s, KILN_INTERNAL, "version, backend, arch or fingerprint is not a "
                 "printable string");
    else if (e->precisions & ~0x1Fu)
        ser_fail(&s, KILN_INTERNAL, "unknown precision flags 0x%x", e->precisions);
    else if (e->source_nodes < 0)
        ser_fail(&s, KILN_INTERNAL, "negative source node count");
    if (s.st) goto done;

    /* build info */
    s.w = &secs[ENGINE_SEC_BUILD];
    w_cstr(&s, e->lib_version);
    w_cstr(&s, e->backend);
    w_cstr(&s, e->arch);
    w_u32(s.w, e->isa_required);
    w_u32(s.w, e->precisions);
    w_i32(s.w, e->opt_level);
    w_u64(s.w, e->workspace_limit);
    w_i32(s.w, e->source_nodes);
    w_u64(s.w, e->model_hash);
    w_cstr(&s, e->dev_fingerprint);

    /* symbols */
    s.w = &secs[ENGINE_SEC_SYMBOLS];
    w_u32(s.w, (uint32_t)m->n_syms);
    for (int i = 0; i < m->n_syms; i++) w_ostr(&s, m->sym_names[i]);

    /* graph (fills the tensor table) */
    s.w = &secs[ENGINE_SEC_GRAPH];
    w_cstr(&s, m->producer);
    w_cstr(&s, m->producer_version);
    w_i64(s.w, m->ir_version);
    w_i64(s.w, m->opset);
    w_u32(s.w, (uint32_t)m->n_opsets);
    for (int i = 0; i < m->n_opsets; i++) {
        w_cstr(&s, m->opsets[i].domain);
        w_i64(s.w, m->opsets[i].version);
    }
    if (g->parent || g->n_captures)
        ser_fail(&s, KILN_INTERNAL, "the main graph has a parent or captures");
    if (s.st) goto done;
    /* constants only read through prepared data are stored without bytes */
    if (!(unread = calloc((size_t)g->n_values + 1, 1))) {
        ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    engine_const_unread(e, unread);
    s.unread = unread;
    if (!ser_graph(&s, g, 0)) goto done;

    /* tensor table: offsets relative to the weights section */
    s.w = &secs[ENGINE_SEC_TENSORS];
    woff = malloc(((size_t)s.n_tensors + 1) * sizeof *woff);
    if (!woff) {
        ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    uint64_t wsize = 0;
    w_u32(s.w, (uint32_t)s.n_tensors);
    for (int i = 0; i < s.n_tensors; i++) {
        const kiln_tensor *t = s.tensors[i];
        bool omit = !s.keep[i] && t->nbytes;
        if (!omit && t->nbytes && !t->data) {
            ser_fail(&s, KILN_INTERNAL, "tensor '%s' has no data but a reader "
                     "that needs it", t->name ? t->name : "");
            goto done;
        }
        woff[i] = 0;
        if (!omit) {
            wsize = align_up(wsize, ENGINE_WEIGHT_ALIGN);
            woff[i] = wsize;
            if (t->nbytes > SIZE_MAX / 2 - wsize) {
                ser_fail(&s, KILN_UNSUPPORTED, "weights too large");
                goto done;
            }
            wsize += t->nbytes;
        }
        w_i32(s.w, (int32_t)t->dtype);
        w_i32(s.w, t->rank);
        for (int d = 0; d < t->rank; d++) w_i64(s.w, t->dims[d]);
        w_u64(s.w, woff[i]);
        w_u64(s.w, t->nbytes);
        w_u32(s.w, omit ? ENGINE_TENSOR_NO_DATA : 0);
        w_ostr(&s, t->name);
    }

    /* profiles */
    s.w = &secs[ENGINE_SEC_PROFILES];
    w_u32(s.w, (uint32_t)np);
    for (int p = 0; p < np && !s.st; p++) {
        const engine_profile *pr = &e->profiles[p];
        w_u32(s.w, (uint32_t)g->n_inputs);
        if (g->n_inputs && (!pr->min || !pr->opt || !pr->max)) {
            ser_fail(&s, KILN_INTERNAL, "profile %d has no shapes", p);
            break;
        }
        for (int i = 0; i < g->n_inputs; i++) {
            int r = g->inputs[i]->type.rank > 0 ? g->inputs[i]->type.rank : 0;
            w_u32(s.w, (uint32_t)r);
            for (int d = 0; d < r; d++) {
                if (pr->min[i][d] < 0 || pr->min[i][d] > pr->opt[i][d] ||
                    pr->opt[i][d] > pr->max[i][d]) {
                    ser_fail(&s, KILN_INTERNAL, "profile %d input '%s' dim %d: "
                             "need 0 <= min <= opt <= max", p,
                             g->inputs[i]->name, d);
                    break;
                }
                w_i64(s.w, pr->min[i][d]);
                w_i64(s.w, pr->opt[i][d]);
                w_i64(s.w, pr->max[i][d]);
            }
        }
    }
    if (s.st) goto done;

    /* layers: tactic name table, then per node precision and per-profile
    ** tactic and time */
    s.w = &secs[ENGINE_SEC_LAYERS];
    tnames = malloc(((size_t)g->n_nodes * (size_t)np + 1) * sizeof *tnames);
    if (!tnames) {
        ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int k = 0; k < g->n_nodes && !s.st; k++) {
        const engine_layer *l = &e->layers[k];
        if (np && (!l->tactic || !l->time_us)) {
            ser_fail(&s, KILN_INTERNAL, "layer %d has no tactic list", k);
            break;
        }
        if (l->precision & ~0x1Fu) {
            ser_fail(&s, KILN_INTERNAL, "layer %d has unknown precision 0x%x",
                     k, l->precision);
            break;
        }
        for (int p = 0; p < np; p++) {
            const kiln_tactic *t = l->tactic[p];
            if (!t) continue;
            if (!t->name || strlen(t->name) >= 256) {
                ser_fail(&s, KILN_INTERNAL, "layer %d: tactic without a "
                         "usable name", k);
                break;
            }
            int j;
            for (j = 0; j < n_tnames && strcmp(tnames[j], t->name); j++) {}
            if (j == n_tnames) tnames[n_tnames++] = t->name;
        }
    }
    if (s.st) goto done;
    w_u32(s.w, (uint32_t)g->n_nodes);
    w_u32(s.w, (uint32_t)np);
    w_u32(s.w, (uint32_t)n_tnames);
    for (int j = 0; j < n_tnames; j++) w_cstr(&s, tnames[j]);
    /* Layer blobs follow the tensors in the weights section, each 64-byte
    ** aligned; a profile whose bytes equal an earlier profile's of the
    ** same layer points at those. */
    boff = calloc((size_t)g->n_nodes * (size_t)np + 1, sizeof *boff);
    if (!boff) {
        ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int k = 0; k < g->n_nodes && !s.st; k++) {
        const engine_layer *l = &e->layers[k];
        w_u32(s.w, l->precision);
        for (int p = 0; p < np; p++) {
            int j = -1;
            if (l->tactic[p])
                for (j = 0; strcmp(tnames[j], l->tactic[p]->name); j++) {}
            w_i32(s.w, j);
            w_f32(s.w, l->time_us[p]);
            uint64_t bsz = l->blob && l->blob_size && l->blob[p] ? l->blob_size[p] : 0;
            uint64_t bo = 0;
            if (bsz) {
                int q = 0;
                for (; q < p; q++)
                    if (l->blob[q] && l->blob_size[q] == bsz &&
                        (l->blob[q] == l->blob[p] || !memcmp(l->blob[q], l->blob[p], bsz)))
                        break;
                if (q < p) {
                    bo = boff[(size_t)k * np + q];
                } else {
                    wsize = align_up(wsize, ENGINE_WEIGHT_ALIGN);
                    if (bsz > SIZE_MAX / 2 - wsize) {
                        ser_fail(&s, KILN_UNSUPPORTED, "weights too large");
                        break;
                    }
                    bo = wsize;
                    wsize += bsz;
                }
            }
            boff[(size_t)k * np + p] = bo;
            w_u64(s.w, bo);
            w_u64(s.w, bsz);
        }
    }
    if (s.st) goto done;

    /* memory plans */
    s.w = &secs[ENGINE_SEC_PLANS];
    w_u32(s.w, (uint32_t)np);
    w_u32(s.w, (uint32_t)g->n_values);
    for (int p = 0; p < np && !s.st; p++) {
        const engine_plan *pl = &e->plans[p];
        if (g->n_values && (!pl->offset || !pl->size)) {
            ser_fail(&s, KILN_INTERNAL, "plan %d is empty", p);
            break;
        }
        w_u64(s.w, pl->total_bytes);
        w_u64(s.w, pl->naive_bytes);
        w_u64(s.w, pl->workspace_bytes);
        for (int v = 0; v < g->n_values; v++) {
            int64_t o = pl->offset[v];
            uint64_t sz = pl->size[v];
            if (o != -1 && (o < 0 || sz > pl->total_bytes ||
                            (uint64_t)o > pl->total_bytes - sz)) {
                ser_fail(&s, KILN_INTERNAL, "plan %d: value %d lies outside "
                         "the activation block", p, v);
                break;
            }
            w_i64(s.w, o);
            w_u64(s.w, sz);
        }
    }
    if (s.st) goto done;
    for (int i = 1; i <= ENGINE_SEC_COUNT; i++)
        if (secs[i].oom) {
            ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory");
            goto done;
        }

    /* layout: header, section table, metadata sections (8-aligned), weights
    ** (64-aligned), checksum */
    uint64_t off[ENGINE_SEC_COUNT + 1], len[ENGINE_SEC_COUNT + 1];
    size_t pos = ENGINE_HEADER_SIZE + ENGINE_SEC_COUNT * ENGINE_SECTION_ENTRY_SIZE;
    for (int i = 1; i < ENGINE_SEC_WEIGHTS; i++) {
        pos = align_up(pos, 8);
        off[i] = pos;
        len[i] = secs[i].n;
        pos += secs[i].n;
    }
    pos = align_up(pos, ENGINE_WEIGHT_ALIGN);
    off[ENGINE_SEC_WEIGHTS] = pos;
    len[ENGINE_SEC_WEIGHTS] = wsize;
    if (wsize > SIZE_MAX / 2 - pos) {
        ser_fail(&s, KILN_UNSUPPORTED, "engine too large");
        goto done;
    }
    size_t body = align_up(pos + wsize, 8), total = body + ENGINE_TRAILER_SIZE;
    buf = kiln_aligned_alloc(total);
    if (!buf) {
        ser_fail(&s, KILN_OUT_OF_MEMORY, "out of memory (%zu bytes)", total);
        goto done;
    }
    memset(buf, 0, (size_t)off[ENGINE_SEC_WEIGHTS]);
    memcpy(buf, ENGINE_MAGIC, ENGINE_MAGIC_LEN);
    wr32(buf + ENGINE_OFF_VERSION, KILN_ENGINE_FORMAT_VERSION);
    wr32(buf + ENGINE_OFF_HEADER_SIZE, ENGINE_HEADER_SIZE);
    wr64(buf + ENGINE_OFF_TOTAL_SIZE, total);
    wr32(buf + ENGINE_OFF_SECTION_COUNT, ENGINE_SEC_COUNT);
    wr64(buf + ENGINE_OFF_SECTION_TABLE, ENGINE_HEADER_SIZE);
    for (int i = 1; i <= ENGINE_SEC_COUNT; i++) {
        uint8_t *ent = buf + ENGINE_HEADER_SIZE + (size_t)(i - 1) * ENGINE_SECTION_ENTRY_SIZE;
        wr32(ent, (uint32_t)i);
        wr64(ent + 8, off[i]);
        wr64(ent + 16, len[i]);
        if (i < ENGINE_SEC_WEIGHTS && secs[i].n)
            memcpy(buf + off[i], secs[i].p, secs[i].n);
    }
    uint8_t *wbase = buf + off[ENGINE_SEC_WEIGHTS];
    size_t wpos = 0;
    for (int i = 0; i < s.n_tensors; i++) {
        const kiln_tensor *t = s.tensors[i];
        if (!s.keep[i] && t->nbytes) continue; /* stored without its bytes */
        memset(wbase + wpos, 0, (size_t)woff[i] - wpos);
        if (t->nbytes) memcpy(wbase + woff[i], t->data, t->nbytes);
        wpos = (size_t)woff[i] + t->nbytes;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const engine_layer *l = &e->layers[k];
        for (int p = 0; p < np && l->blob && l->blob_size; p++) {
            uint64_t bo = boff[(size_t)k * np + p], bsz = l->blob[p] ? l->blob_size[p] : 0;
            if (!bsz || bo < wpos) continue; /* none, or shared with an earlier one */
            memset(wbase + wpos, 0, (size_t)bo - wpos);
            memcpy(wbase + bo, l->blob[p], (size_t)bsz);
            wpos = (size_t)(bo + bsz);
        }
    }
    memset(wbase + wpos, 0, body - (size_t)off[ENGINE_SEC_WEIGHTS] - wpos);
    wr64(buf + body, kiln_checksum64(buf, body));
    *out = buf;
    *size = total;
    buf = NULL;
done:
    for (int i = 0; i <= ENGINE_SEC_COUNT; i++) free(secs[i].p);
    free(s.tensors);
    free(s.keep);
    free(unread);
    free(s.keys);
    free(s.vals);
    free(woff);
    free(boff);
    free(tnames);
    kiln_aligned_free(buf);
    return s.st;
}

/* ========================================================== deserialize */
typedef struct rbuf {
    const uint8_t *p, *end;
    bool bad;  /* read past the end or impossible count */
    bool oom;
} rbuf;

static size_t r_left(const rbuf *r) { return (size_t)(r->end - r->p); }

static void r_raw(rbuf *r, void *dst, size_t n) {
    if (r->bad || r_left(r) < n) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
}
static uint32_t r_u32(rbuf *r) { uint32_t v; r_raw(r, &v, 4); return v; }
static int32_t r_i32(rbuf *r) { int32_t v; r_raw(r, &v, 4); return v; }
static uint64_t r_u64(rbuf *r) { uint64_t v; r_raw(r, &v, 8); return v; }
static int64_t r_i64(rbuf *r) { int64_t v; r_raw(r, &v, 8); return v; }
static float r_f32(rbuf *r) { float v; r_raw(r, &v, 4); return v; }

/* A count of items that each take at least min_bytes in the file: one that
** the remaining bytes cannot hold is corruption, so allocations sized by
** counts stay proportional to the input. */
static int r_count(rbuf *r, size_t min_bytes) {
    uint32_t n = r_u32(r);
    if (r->bad) return -1;
    if (n > MAX_COUNT || (min_bytes && n > r_left(r) / min_bytes)) {
        r->bad = true;
        return -1;
    }
    return (int)n;
}

/* Length-prefixed string copied (NUL-terminated) into the arena. NULL for
** an absent string when optional, or on error (r->bad / r->oom). Strings
** with NUL bytes are refused unless allow_nul. */
static const char *r_str_ex(rbuf *r, kiln_arena *a, size_t *len_out,
                            bool optional, bool allow_nul) {
    uint32_t n = r_u32(r);
    if (len_out) *len_out = 0;
    if (r->bad) return NULL;
    if (n == NO_STR && optional) return NULL;
    if (n > r_left(r) || (!allow_nul && memchr(r->p, 0, n))) {
        r->bad = true;
        return NULL;
    }
    char *s = kiln_arena_strndup(a, (const char *)r->p, n);
    if (!s) {
        r->oom = true;
        r->bad = true;
        return NULL;
    }
    r->p += n;
    if (len_out) *len_out = n;
    return s;
}
static const char *r_str(rbuf *r, kiln_arena *a) {
    return r_str_ex(r, a, NULL, false, false);
}

typedef struct des {
    const uint8_t *data;
    size_t size;
    kiln_engine *e;
    ir_model *m;
    uint64_t off[ENGINE_SEC_COUNT + 1], len[ENGINE_SEC_COUNT + 1];
    int n_tensors;
    kiln_tensor **tensors; /* index; the model owns them */
    unsigned host_isa;
} des;

static kiln_status bad(const char *fmt, ...) KILN_PRINTF(1, 2);
static kiln_status bad(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_error(KILN_CORRUPT_ENGINE, "engine file is inconsistent (%s); "
                      "rebuild the engine", msg);
}

static kiln_status oom(void) {
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory loading the engine");
}

/* Status for a reader that went wrong while decoding what. */
static kiln_status r_fail(const rbuf *r, const char *what) {
    if (r->oom) return oom();
    return bad("%s: truncated, or a count larger than the data", what);
}

static rbuf section(const des *d, int id) {
    rbuf r = {d->data + d->off[id], d->data + d->off[id] + d->len[id], false, false};
    return r;
}

/* ---- envelope: magic, format version, size, checksum, section table */
static kiln_status check_envelope(des *d) {
    const uint8_t *p = d->data;
    size_t n = d->size;
    if (n < ENGINE_MAGIC_LEN) {
        if (n && memcmp(p, ENGINE_MAGIC, n) == 0)
            return kiln_error(KILN_CORRUPT_ENGINE, "engine file is truncated "
                              "(%zu bytes); rebuild or re-copy it", n);
        return kiln_error(KILN_CORRUPT_ENGINE, "not a Kiln engine file%s",
                          n ? " (too short)" : " (empty)");
    }
    if (memcmp(p, ENGINE_MAGIC, ENGINE_MAGIC_LEN) != 0)
        return kiln_error(KILN_CORRUPT_ENGINE, "not a Kiln engine file");
    if (n < ENGINE_OFF_VERSION + 4)
        return kiln_error(KILN_CORRUPT_ENGINE, "engine file is truncated "
                          "(%zu bytes); rebuild or re-copy it", n);
    uint32_t ver = rd32(p + ENGINE_OFF_VERSION);
    if (ver != KILN_ENGINE_FORMAT_VERSION)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "engine format v%u, this "
                          "kiln reads v%d: rebuild the engine with this kiln",
                          ver, KILN_ENGINE_FORMAT_VERSION);
    if (n < ENGINE_OFF_TOTAL_SIZE + 8)
        return kiln_error(KILN_CORRUPT_ENGINE, "engine file is truncated "
                          "(%zu bytes); rebuild or re-copy it", n);
    uint64_t total = rd64(p + ENGINE_OFF_TOTAL_SIZE);
    if (total > n)
        return kiln_error(KILN_CORRUPT_ENGINE, "engine file is truncated (%zu "
                          "of %llu bytes); rebuild or re-copy it", n,
                          (unsigned long long)total);
    if (total < n)
        return kiln_error(KILN_CORRUPT_ENGINE, "engine file has %llu bytes "
                          "after its end (%zu bytes, %llu expected); rebuild "
                          "or re-copy it", (unsigned long long)(n - total), n,
                          (unsigned long long)total);
    if (n < ENGINE_HEADER_SIZE + ENGINE_TRAILER_SIZE ||
        rd64(p + n - ENGINE_TRAILER_SIZE) !=
            kiln_checksum64(p, n - ENGINE_TRAILER_SIZE))
        return kiln_error(KILN_CORRUPT_ENGINE, "engine file is damaged "
                          "(checksum mismatch); rebuild or re-copy it");

    /* From here on the bytes are what some writer produced: a failure is a
    ** broken or hostile writer, not transport damage. */
    size_t body = n - ENGINE_TRAILER_SIZE;
    if (rd32(p + ENGINE_OFF_HEADER_SIZE) != ENGINE_HEADER_SIZE)
        return bad("header size %u", rd32(p + ENGINE_OFF_HEADER_SIZE));
    if (rd32(p + ENGINE_OFF_FLAGS) != 0) return bad("unknown header flags");
    for (int i = ENGINE_OFF_SECTION_TABLE + 8; i < ENGINE_HEADER_SIZE; i++)
        if (p[i]) return bad("reserved header byte %d is not zero", i);
    uint32_t nsec = rd32(p + ENGINE_OFF_SECTION_COUNT);
    uint64_t table = rd64(p + ENGINE_OFF_SECTION_TABLE);
    if (nsec != ENGINE_SEC_COUNT)
        return bad("%u sections, expected %d", nsec, ENGINE_SEC_COUNT);
    if (table < ENGINE_HEADER_SIZE || table % 8 ||
        table > body || body - table < (uint64_t)nsec * ENGINE_SECTION_ENTRY_SIZE)
        return bad("section table outside the file");
    uint64_t prev_end = table + (uint64_t)nsec * ENGINE_SECTION_ENTRY_SIZE;
    bool seen[ENGINE_SEC_COUNT + 1] = {false};
    for (uint32_t i = 0; i < nsec; i++) {
        const uint8_t *ent = p + table + (uint64_t)i * ENGINE_SECTION_ENTRY_SIZE;
        uint32_t id = rd32(ent);
        uint64_t off = rd64(ent + 8), len = rd64(ent + 16);
        if (id < 1 || id > ENGINE_SEC_COUNT || seen[id])
            return bad("section table entry %u has id %u", i, id);
        seen[id] = true;
        const char *nm = k_section_names[id];
        if (rd32(ent + 4) != 0) return bad("%s section has unknown flags", nm);
        uint64_t align = id == ENGINE_SEC_WEIGHTS ? ENGINE_WEIGHT_ALIGN : 8;
        /* sections are stored in file order, without overlap */
        if (off % align || off < prev_end || off > body || len > body - off)
            return bad("%s section (offset %llu, %llu bytes) is misplaced", nm,
                       (unsigned long long)off, (unsigned long long)len);
        prev_end = off + len;
        d->off[id] = off;
        d->len[id] = len;
    }
    return KILN_OK;
}

/* ---- build info and compatibility */
static kiln_status read_fixed_str(rbuf *r, char *dst, size_t cap,
                                  const char *what) {
    uint32_t n = r_u32(r);
    if (r->bad || n >= cap || n > r_left(r) ||
        !printable_str((const char *)r->p, n))
        return bad("build section: bad %s string", what);
    memcpy(dst, r->p, n);
    dst[n] = 0;
    r->p += n;
    return KILN_OK;
}

static kiln_status des_build(des *d) {
    kiln_engine *e = d->e;
    rbuf r = section(d, ENGINE_SEC_BUILD);
    kiln_status st;
    if ((st = read_fixed_str(&r, e->lib_version, sizeof e->lib_version, "version")) ||
        (st = read_fixed_str(&r, e->backend, sizeof e->backend, "backend")) ||
        (st = read_fixed_str(&r, e->arch, sizeof e->arch, "architecture")))
        return st;
    e->isa_required = r_u32(&r);
    e->precisions = r_u32(&r);
    e->opt_level = r_i32(&r);
    e->workspace_limit = r_u64(&r);
    e->source_nodes = r_i32(&r);
    e->model_hash = r_u64(&r);
    if ((st = read_fixed_str(&r, e->dev_fingerprint, sizeof e->dev_fingerprint,
                             "device fingerprint")))
        return st;
    if (r.bad || r.p != r.end) return bad("build section has the wrong size");
    if (e->precisions & ~0x1Fu) return bad("unknown precision flags");
    if (e->source_nodes < 0) return bad("negative source node count");
    /* compatibility, in the documented order */
    if (strcmp(e->lib_version, KILN_VERSION_STRING) != 0)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "built by kiln %s; this is "
                          "kiln %s: rebuild the engine", e->lib_version,
                          KILN_VERSION_STRING);
    const kiln_backend_ops *ops = kiln_backend_by_name(e->backend);
    if (!ops)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "built for the '%s' "
                          "backend, which this kiln was built without%s: rebuild "
                          "the engine for a backend it has", e->backend,
                          kiln_backend_cuda() ? "" : " (it has the CPU backend only)");
    if (strcmp(e->arch, kiln_host_arch()) != 0)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "built for %s; this machine "
                          "is %s: rebuild the engine on this machine", e->arch,
                          kiln_host_arch());
    e->ops = ops;
    d->host_isa = ops->host_isa();
    return engine_check_isa(e->isa_required, d->host_isa);
}

/* ---- symbols and tensors */
static kiln_status des_symbols(des *d) {
    rbuf r = section(d, ENGINE_SEC_SYMBOLS);
    int n = r_count(&r, 4);
    for (int i = 0; i < n; i++) {
        const char *nm = r_str_ex(&r, &d->m->arena, NULL, true, false);
        if (r.bad) return r_fail(&r, "symbols section");
        if (ir_model_new_sym(d->m, nm) == 0) return oom();
    }
    if (r.bad) return r_fail(&r, "symbols section");
    if (r.p != r.end) return bad("symbols section has trailing bytes");
    return KILN_OK;
}

static kiln_status des_tensors(des *d) {
    rbuf r = section(d, ENGINE_SEC_TENSORS);
    int n = r_count(&r, MIN_TENSOR_BYTES);
    if (r.bad) return r_fail(&r, "tensors section");
    d->tensors = malloc(((size_t)n + 1) * sizeof *d->tensors);
    if (!d->tensors) return oom();
    const uint8_t *wbase = d->data + d->off[ENGINE_SEC_WEIGHTS];
    uint64_t wlen = d->len[ENGINE_SEC_WEIGHTS];
    for (int i = 0; i < n; i++) {
        int32_t dt = r_i32(&r), rank = r_i32(&r);
        int64_t dims[KILN_MAX_RANK];
        if (r.bad) return r_fail(&r, "tensors section");
        if (!dtype_storable(dt)) return bad("tensor %d has type %d", i, dt);
        if (rank < 0 || rank > KILN_MAX_RANK)
            return bad("tensor %d has rank %d", i, rank);
        for (int k = 0; k < rank; k++) dims[k] = r_i64(&r);
        uint64_t off = r_u64(&r), nbytes = r_u64(&r);
        uint32_t tflags = r_u32(&r);
        if (r.bad) return r_fail(&r, "tensors section");
        if (tflags & ~(uint32_t)ENGINE_TENSOR_NO_DATA)
            return bad("tensor %d has unknown flags 0x%x", i, tflags);
        bool no_data = tflags & ENGINE_TENSOR_NO_DATA;
        int64_t numel = shape_numel(rank, dims);
        size_t want;
        if (numel < 0 || !dtype_nbytes((kiln_dtype)dt, numel, &want) ||
            want != nbytes)
            return bad("tensor %d: shape and byte count disagree", i);
        if (no_data && (off || !nbytes))
            return bad("tensor %d is stored without bytes but has offset %llu "
                       "and %llu bytes", i, (unsigned long long)off,
                       (unsigned long long)nbytes);
        if (off % ENGINE_WEIGHT_ALIGN)
            return bad("tensor %d is not 64-byte aligned", i);
        if (!no_data && (off > wlen || nbytes > wlen - off))
            return bad("tensor %d lies outside the weights section", i);
        const char *nm = r_str_ex(&r, &d->m->arena, NULL, true, false);
        if (r.bad) return r_fail(&r, "tensors section");
        kiln_tensor *t;
        /* zero copy: the tensor borrows the (read-only) file bytes; one
        ** stored without bytes has data == NULL (checked against its
        ** readers once the layers are known: check_no_data) */
        if (tensor_wrap((kiln_dtype)dt, rank, dims,
                        no_data ? NULL : (void *)(uintptr_t)(wbase + off), &t))
            return oom();
        if (!ir_model_own_tensor(d->m, t)) return oom();
        if (nm && !(t->name = kiln_strdup(nm))) return oom();
        d->tensors[d->n_tensors++] = t;
    }
    if (r.p != r.end) return bad("tensors section has trailing bytes");
    return KILN_OK;
}

/* ---- graphs */
enum { VS_INPUT = 1, VS_CAPTURE = 2, VS_CONST = 4, VS_PRODUCED = 8 };

typedef struct gstate {
    uint8_t *vs;     /* VS_* per value */
    int *in_mark;    /* node index + 1 of the last node reading the value */
    int *imp_mark;   /* same, implicit inputs only */
} gstate;

static kiln_status des_graph(des *d, rbuf *r, ir_graph *g, int depth,
                             const char *path);

static kiln_status des_value_id(rbuf *r, const ir_graph *g, int32_t *id,
                                bool allow_absent, const char *what,
                                const char *path) {
    *id = r_i32(r);
    if (r->bad) return r_fail(r, "graph section");
    if (allow_absent && *id == -1) return KILN_OK;
    if (*id < 0 || *id >= g->n_values)
        return bad("graph %s: %s refers to value %d of %d", path, what, *id,
                   g->n_values);
    return KILN_OK;
}

static kiln_status des_attr(des *d, rbuf *r, ir_graph *g, ir_node *n,
                            ir_attr *a, int depth, const char *path,
                            const char *lab) {
    kiln_arena *ar = &d->m->arena;
    char sub[600], b[64];
    a->name = r_str(r, ar);
    a->type = (int)r_u32(r);
    if (r->bad) return r_fail(r, "graph section (attribute)");
    int cnt = 0;
    switch (a->type) {
    case IR_ATTR_FLOATS: cnt = r_count(r, 4); break;
    case IR_ATTR_INTS: cnt = r_count(r, 8); break;
    case IR_ATTR_STRINGS: cnt = r_count(r, 4); break;
    case IR_ATTR_TENSORS: cnt = r_count(r, 4); break;
    case IR_ATTR_GRAPHS: cnt = r_count(r, MIN_GRAPH_BYTES); break;
    default: break;
    }
    if (r->bad) return r_fail(r, "graph section (attribute)");
    a->n = cnt;
    switch (a->type) {
    case IR_ATTR_FLOAT: a->f = r_f32(r); break;
    case IR_ATTR_INT: a->i = r_i64(r); break;
    case IR_ATTR_STRING: a->s = r_str_ex(r, ar, &a->s_len, false, true); break;
    case IR_ATTR_TENSOR: {
        uint32_t k = r_u32(r);
        if (r->bad) break;
        if (k >= (uint32_t)d->n_tensors)
            return bad("graph %s: %s attribute '%s' refers to tensor %u of %d",
                       path, lab, printable(a->name, b, sizeof b), k, d->n_tensors);
        a->t = d->tensors[k];
        if (!a->t->data && a->t->nbytes)
            return bad("graph %s: %s attribute '%s' refers to tensor %u, which is "
                       "stored without its bytes", path, lab,
                       printable(a->name, b, sizeof b), k);
        break;
    }
    case IR_ATTR_GRAPH: case IR_ATTR_GRAPHS: {
        int ng = a->type == IR_ATTR_GRAPH ? 1 : cnt;
        ir_graph **gs = a->type == IR_ATTR_GRAPH ? &a->g : NULL;
        if (a->type == IR_ATTR_GRAPHS && cnt) {
            if (!(gs = a->graphs = kiln_arena_alloc(ar, (size_t)cnt * sizeof *gs)))
                return oom();
        }
        for (int k = 0; k < ng; k++) {
            ir_graph *sg = ir_graph_new(d->m, g);
            if (!sg) return oom();
            sg->owner = n;
            gs[k] = sg;
            snprintf(sub, sizeof sub, "%s/%s", path, printable(a->name, b, sizeof b));
            kiln_status st = des_graph(d, r, sg, depth + 1, sub);
            if (st) return st;
        }
        break;
    }
    case IR_ATTR_FLOATS:
        if (cnt) {
            if (!(a->floats = kiln_arena_alloc(ar, (size_t)cnt * sizeof(float))))
                return oom();
            r_raw(r, a->floats, (size_t)cnt * sizeof(float));
        }
        break;
    case IR_ATTR_INTS:
        if (cnt) {
            if (!(a->ints = kiln_arena_alloc(ar, (size_t)cnt * sizeof(int64_t))))
                return oom();
            r_raw(r, a->ints, (size_t)cnt * sizeof(int64_t));
        }
        break;
    case IR_ATTR_STRINGS:
        if (cnt) {
            if (!(a->strings = kiln_arena_alloc(ar, (size_t)cnt * sizeof(char *))))
                return oom();
            for (int k = 0; k < cnt && !r->bad; k++) a->strings[k] = r_str(r, ar);
        }
        break;
    case IR_ATTR_TENSORS:
        if (cnt) {
            if (!(a->tensors = kiln_arena_alloc(ar, (size_t)cnt * sizeof(kiln_tensor *))))
                return oom();
            for (int k = 0; k < cnt; k++) {
                uint32_t t = r_u32(r);
                if (r->bad) break;
                if (t >= (uint32_t)d->n_tensors)
                    return bad("graph %s: %s attribute '%s' refers to tensor "
                               "%u of %d", path, lab,
                               printable(a->name, b, sizeof b), t, d->n_tensors);
                a->tensors[k] = d->tensors[t];
                if (!a->tensors[k]->data && a->tensors[k]->nbytes)
                    return bad("graph %s: %s attribute '%s' refers to tensor %u, "
                               "which is stored without its bytes", path, lab,
                               printable(a->name, b, sizeof b), t);
            }
        }
        break;
    case IR_ATTR_TYPE_PROTO: case IR_ATTR_TYPE_PROTOS:
        break;
    default:
        return bad("graph %s: %s attribute '%s' has type %d", path, lab,
                   printable(a->name, b, sizeof b), a->type);
    }
    if (r->bad) return r_fail(r, "graph section (attribute)");
    return KILN_OK;
}

static kiln_status des_node(des *d, rbuf *r, ir_graph *g, gstate *gs, int k,
                            int depth, const char *path) {
    kiln_arena *ar = &d->m->arena;
    char lab[256], b[96];
    const char *name = r_str(r, ar);
    const char *op_type = r_str(r, ar);
    const char *domain = r_str(r, ar);
    const char *fused = r_str_ex(r, ar, NULL, true, false);
    int n_in = r_count(r, 4), n_imp = r_count(r, 4), n_out = r_count(r, 4);
    if (r->bad) return r_fail(r, "graph section (node)");
    if ((size_t)n_in + (size_t)n_imp + (size_t)n_out > r_left(r) / 4)
        return r_fail(r, "graph section (node)");
    ir_node *n = ir_node_new(g, n_in + n_imp, n_out);
    if (!n) return oom();
    n->name = name;
    n->op_type = op_type;
    n->domain = domain;
    n->fused_from = fused;
    n->n_in = n_in;
    n->n_implicit = n_imp;
    ir_node_label(n, lab, sizeof lab);
    /* An op this kiln does not know: the engine was made by another build. */
    n->op = op_lookup_any(op_type);
    if (n->op == OP_NONE)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "engine uses operator '%s', "
                          "which this kiln does not know: rebuild the engine",
                          printable(op_type, b, sizeof b));
    n->schema = op_schema_get(n->op);
    if (!n->schema)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "engine uses operator '%s', "
                          "which this kiln does not implement: rebuild the "
                          "engine", printable(op_type, b, sizeof b));
    const op_schema *s = n->schema;
    if (n_in < s->min_in || (s->max_in >= 0 && n_in > s->max_in) ||
        n_out < s->min_out || (s->max_out >= 0 && n_out > s->max_out))
        return bad("graph %s: %s has %d inputs and %d outputs", path, lab,
                   n_in, n_out);
    kiln_status st;
    for (int i = 0; i < n_in + n_imp; i++) {
        int32_t id;
        bool implicit = i >= n_in;
        if ((st = des_value_id(r, g, &id, !implicit, implicit ? "an implicit "
                               "input" : "a node input", path)))
            return st;
        if (id < 0) continue; /* absent optional input */
        if (!(gs->vs[id] & (VS_INPUT | VS_CAPTURE | VS_CONST | VS_PRODUCED)))
            return bad("graph %s: %s reads value %d before it is computed",
                       path, lab, id);
        n->in[i] = g->values[id];
        gs->in_mark[id] = k + 1;
        if (implicit) gs->imp_mark[id] = k + 1;
    }
    for (int i = 0; i < n_out; i++) {
        int32_t id;
        if ((st = des_value_id(r, g, &id, false, "a node output", path)))
            return st;
        if (gs->vs[id] & (VS_INPUT | VS_CAPTURE | VS_PRODUCED))
            return bad("graph %s: %s writes value %d, which is an input, a "
                       "capture or already computed", path, lab, id);
        /* a constant-valued output is readable early only in appearance:
        ** whoever read it before (or this node) ran out of order */
        if (gs->in_mark[id])
            return bad("graph %s: %s writes value %d after a node read it",
                       path, lab, id);
        gs->vs[id] |= VS_PRODUCED;
        ir_value *v = g->values[id];
        v->producer = n;
        v->producer_out = i;
        n->out[i] = v;
    }
    int na = r_count(r, MIN_ATTR_BYTES);
    if (r->bad) return r_fail(r, "graph section (node)");
    if (na && !(n->attrs = kiln_arena_alloc(ar, (size_t)na * sizeof *n->attrs)))
        return oom();
    for (int a = 0; a < na; a++) {
        if ((st = des_attr(d, r, g, n, &n->attrs[a], depth, path, lab))) return st;
        n->n_attrs = a + 1;
        /* every outer value a subgraph captures must be an implicit input */
        const ir_attr *at = &n->attrs[a];
        int ng = at->type == IR_ATTR_GRAPH ? 1 : at->type == IR_ATTR_GRAPHS ? at->n : 0;
        for (int j = 0; j < ng; j++) {
            const ir_graph *sg = at->type == IR_ATTR_GRAPH ? at->g : at->graphs[j];
            for (int c = 0; c < sg->n_captures; c++)
                if (gs->imp_mark[sg->capture_outer[c]->id] != k + 1)
                    return bad("graph %s: %s: a subgraph captures value %d, "
                               "which is not an implicit input", path, lab,
                               sg->capture_outer[c]->id);
        }
    }
    return KILN_OK;
}

static kiln_status des_graph_body(des *d, rbuf *r, ir_graph *g, gstate *gs,
                                  int depth, const char *path) {
    kiln_arena *ar = &d->m->arena;
    ir_model *m = d->m;
    kiln_status st;
    char b[64];
    g->name = r_str(r, ar);
    int nv = r_count(r, MIN_VALUE_BYTES);
    if (r->bad) return r_fail(r, "graph section");
    gs->vs = calloc((size_t)nv + 1, 1);
    gs->in_mark = calloc((size_t)nv + 1, sizeof *gs->in_mark);
    gs->imp_mark = calloc((size_t)nv + 1, sizeof *gs->imp_mark);
    if (!gs->vs || !gs->in_mark || !gs->imp_mark) return oom();
    for (int i = 0; i < nv; i++) {
        ir_value *v = ir_value_new(g, NULL);
        if (!v) return oom();
        const char *nm = r_str(r, ar);
        v->flags = r_u32(r);
        int32_t dt = r_i32(r);
        v->type.rank = r_i32(r);
        if (r->bad) return r_fail(r, "graph section (value)");
        v->name = nm;
        if (dt != KILN_DTYPE_UNDEFINED && !dtype_is_valid(dt))
            return bad("graph %s: value %d has type %d", path, i, dt);
        v->type.dtype = (kiln_dtype)dt;
        if (v->type.rank < -1 || v->type.rank > KILN_MAX_RANK)
            return bad("graph %s: value %d has rank %d", path, i, v->type.rank);
        for (int k = 0; k < v->type.rank; k++) v->type.dims[k] = r_i64(r);
        int32_t ci = r_i32(r);
        int sl = r_count(r, 8);
        if (r->bad) return r_fail(r, "graph section (value)");
        if (!type_ok(&v->type, m->n_syms))
            return bad("graph %s: value %d ('%s') has an invalid type", path, i,
                       printable(nm, b, sizeof b));
        if (v->flags & ~(unsigned)(IR_VALUE_INPUT | IR_VALUE_OUTPUT |
                                   IR_VALUE_INITIALIZER | IR_VALUE_CAPTURE))
            return bad("graph %s: value %d has unknown flags", path, i);
        if (ci < -1 || ci >= d->n_tensors)
            return bad("graph %s: value %d refers to tensor %d of %d", path, i,
                       ci, d->n_tensors);
        if (ci >= 0) {
            v->const_val = d->tensors[ci];
            if (!const_fits(&v->type, v->const_val))
                return bad("graph %s: value %d: constant disagrees with its "
                           "type", path, i);
            if (g->parent && !v->const_val->data && v->const_val->nbytes)
                return bad("graph %s: value %d refers to tensor %d, which is "
                           "stored without its bytes", path, i, ci);
            gs->vs[i] |= VS_CONST;
        }
        if ((v->flags & IR_VALUE_INITIALIZER) && !v->const_val)
            return bad("graph %s: initializer %d has no contents", path, i);
        if (sl > 0) {
            if (!(v->sym_val = malloc((size_t)sl * sizeof *v->sym_val))) return oom();
            v->sym_len = sl;
            r_raw(r, v->sym_val, (size_t)sl * sizeof *v->sym_val);
        }
    }
    /* inputs */
    int ni = r_count(r, 4);
    if (r->bad) return r_fail(r, "graph section (inputs)");
    if (ni && !(g->inputs = kiln_arena_alloc(ar, (size_t)ni * sizeof *g->inputs)))
        return oom();
    for (int i = 0; i < ni; i++) {
        int32_t id;
        if ((st = des_value_id(r, g, &id, false, "an input", path))) return st;
        if (gs->vs[id] & VS_INPUT) return bad("graph %s: input %d repeats", path, i);
        gs->vs[id] |= VS_INPUT;
        g->inputs[g->n_inputs++] = g->values[id];
    }
    /* captures */
    int nc = r_count(r, 8);
    if (r->bad) return r_fail(r, "graph section (captures)");
    if (nc && !g->parent) return bad("graph %s: the main graph captures values", path);
    if (nc) {
        g->capture_outer = malloc((size_t)nc * sizeof *g->capture_outer);
        g->capture_local = malloc((size_t)nc * sizeof *g->capture_local);
        if (!g->capture_outer || !g->capture_local) return oom();
    }
    for (int i = 0; i < nc; i++) {
        int32_t o = r_i32(r), l;
        if (r->bad) return r_fail(r, "graph section (captures)");
        if (o < 0 || o >= g->parent->n_values)
            return bad("graph %s: capture %d refers to outer value %d of %d",
                       path, i, o, g->parent->n_values);
        if ((st = des_value_id(r, g, &l, false, "a capture", path))) return st;
        if (gs->vs[l] & (VS_INPUT | VS_CAPTURE))
            return bad("graph %s: capture %d reuses value %d", path, i, l);
        gs->vs[l] |= VS_CAPTURE;
        g->capture_outer[i] = g->parent->values[o];
        g->capture_local[i] = g->values[l];
        g->n_captures = i + 1;
    }
    /* nodes, in execution order */
    int nn = r_count(r, MIN_NODE_BYTES);
    if (r->bad) return r_fail(r, "graph section (nodes)");
    for (int k = 0; k < nn; k++)
        if ((st = des_node(d, r, g, gs, k, depth, path))) return st;
    /* outputs */
    int no = r_count(r, 4);
    if (r->bad) return r_fail(r, "graph section (outputs)");
    if (no && !(g->outputs = kiln_arena_alloc(ar, (size_t)no * sizeof *g->outputs)))
        return oom();
    for (int i = 0; i < no; i++) {
        int32_t id;
        if ((st = des_value_id(r, g, &id, false, "an output", path))) return st;
        if (!gs->vs[id])
            return bad("graph %s: output %d (value %d) is never computed",
                       path, i, id);
        g->outputs[g->n_outputs++] = g->values[id];
    }
    /* already in order: this only recomputes use counts and indices; the
    ** order must not move (layers are parallel to the node list) */
    ir_node **before = malloc(((size_t)g->n_nodes + 1) * sizeof *before);
    if (!before) return oom();
    if (g->n_nodes) memcpy(before, g->nodes, (size_t)g->n_nodes * sizeof *before);
    st = ir_graph_toposort(g);
    bool moved = false;
    for (int k = 0; !st && k < g->n_nodes; k++) moved |= g->nodes[k] != before[k];
    free(before);
    if (st)
        return st == KILN_OUT_OF_MEMORY ? st
                                        : bad("graph %s: %s", path, kiln_last_error());
    if (moved) return bad("graph %s: nodes are not in execution order", path);
    return KILN_OK;
}

static kiln_status des_graph(des *d, rbuf *r, ir_graph *g, int depth,
                             const char *path) {
    if (depth > ENGINE_MAX_GRAPH_DEPTH)
        return bad("subgraphs nested deeper than %d levels",
                   ENGINE_MAX_GRAPH_DEPTH);
    gstate gs = {0};
    kiln_status st = des_graph_body(d, r, g, &gs, depth, path);
    free(gs.vs);
    free(gs.in_mark);
    free(gs.imp_mark);
    return st;
}

static kiln_status des_model(des *d) {
    ir_model *m = d->m;
    rbuf r = section(d, ENGINE_SEC_GRAPH);
    m->producer = r_str(&r, &m->arena);
    m->producer_version = r_str(&r, &m->arena);
    m->ir_version = r_i64(&r);
    m->opset = r_i64(&r);
    int no = r_count(&r, 12);
    if (r.bad) return r_fail(&r, "graph section (model)");
    m->opsets = kiln_arena_alloc(&m->arena, ((size_t)no + 1) * sizeof *m->opsets);
    if (!m->opsets) return oom();
    for (int i = 0; i < no; i++) {
        m->opsets[i].domain = r_str(&r, &m->arena);
        m->opsets[i].version = r_i64(&r);
        if (r.bad) return r_fail(&r, "graph section (opsets)");
        m->n_opsets = i + 1;
    }
    if (m->opset < 1 || m->opset > INT32_MAX)
        return bad("ai.onnx opset %lld", (long long)m->opset);
    if (!(m->graph = ir_graph_new(m, NULL))) return oom();
    kiln_status st = des_graph(d, &r, m->graph, 0, "main");
    if (st) return st;
    if (r.p != r.end) return bad("graph section has trailing bytes");
    return KILN_OK;
}

/* ---- profiles, layers, plans */
static kiln_status des_profiles(des *d) {
    kiln_engine *e = d->e;
    const ir_graph *g = d->m->graph;
    rbuf r = section(d, ENGINE_SEC_PROFILES);
    int np = r_count(&r, MIN_PROFILE_BYTES);
    if (r.bad) return r_fail(&r, "profiles section");
    size_t ni = (size_t)g->n_inputs;
    if (np) {
        if (!(e->profiles = calloc((size_t)np, sizeof *e->profiles)) ||
            !(e->plans = calloc((size_t)np, sizeof *e->plans)))
            return oom();
        e->n_profiles = np;
    }
    for (int p = 0; p < np; p++) {
        engine_profile *pr = &e->profiles[p];
        if (r_u32(&r) != ni || r.bad)
            return r.bad ? r_fail(&r, "profiles section")
                         : bad("profile %d does not cover the %zu inputs", p, ni);
        if (!(pr->min = calloc(ni + 1, sizeof *pr->min)) ||
            !(pr->opt = calloc(ni + 1, sizeof *pr->opt)) ||
            !(pr->max = calloc(ni + 1, sizeof *pr->max)))
            return oom();
        for (size_t i = 0; i < ni; i++) {
            int want = g->inputs[i]->type.rank > 0 ? g->inputs[i]->type.rank : 0;
            uint32_t rank = r_u32(&r);
            if (r.bad) return r_fail(&r, "profiles section");
            if (rank != (uint32_t)want)
                return bad("profile %d: input %zu has rank %u, expected %d", p,
                           i, rank, want);
            for (int k = 0; k < want; k++) {
                pr->min[i][k] = r_i64(&r);
                pr->opt[i][k] = r_i64(&r);
                pr->max[i][k] = r_i64(&r);
                if (r.bad) return r_fail(&r, "profiles section");
                if (pr->min[i][k] < 0 || pr->min[i][k] > pr->opt[i][k] ||
                    pr->opt[i][k] > pr->max[i][k])
                    return bad("profile %d: input %zu dim %d is not "
                               "0 <= min <= opt <= max", p, i, k);
            }
        }
    }
    if (r.p != r.end) return bad("profiles section has trailing bytes");
    return KILN_OK;
}

static kiln_status des_layers(des *d) {
    kiln_engine *e = d->e;
    const ir_graph *g = d->m->graph;
    rbuf r = section(d, ENGINE_SEC_LAYERS);
    kiln_status st = KILN_OK;
    char b[96];
    const uint8_t *wbase = d->data + d->off[ENGINE_SEC_WEIGHTS];
    uint64_t wlen = d->len[ENGINE_SEC_WEIGHTS];
    uint32_t nl = r_u32(&r), np = r_u32(&r);
    if (r.bad) return r_fail(&r, "layers section");
    if (nl != (uint32_t)g->n_nodes || np != (uint32_t)e->n_profiles)
        return bad("layers section has %u layers x %u profiles, expected "
                   "%d x %d", nl, np, g->n_nodes, e->n_profiles);
    int nt = r_count(&r, 4);
    if (r.bad) return r_fail(&r, "layers section");
    const kiln_tactic **tac = calloc((size_t)nt + 1, sizeof *tac);
    if (!tac) return oom();
    for (int j = 0; j < nt; j++) {
        uint32_t n = r_u32(&r);
        if (r.bad || n > r_left(&r) || n >= 256 || memchr(r.p, 0, n)) {
            st = bad("layers section: bad tactic name %d", j);
            goto done;
        }
        char name[256];
        memcpy(name, r.p, n);
        name[n] = 0;
        r.p += n;
        if (!(tac[j] = e->ops->find_tactic(name))) {
            st = kiln_error(KILN_INCOMPATIBLE_ENGINE, "engine uses tactic '%s', "
                            "which this kiln does not have: rebuild the engine",
                            printable(name, b, sizeof b));
            goto done;
        }
        /* a tactic may need more than the engine-wide ISA field says */
        if ((st = engine_check_isa(tac[j]->isa, d->host_isa))) goto done;
    }
    if ((size_t)g->n_nodes * (4 + (size_t)np * 24) > r_left(&r)) {
        st = bad("layers section: truncated");
        goto done;
    }
    if (g->n_nodes &&
        !(e->layers = calloc((size_t)g->n_nodes, sizeof *e->layers))) {
        st = oom();
        goto done;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        engine_layer *l = &e->layers[k];
        const ir_node *n = g->nodes[k];
        l->precision = r_u32(&r);
        if (l->precision & ~0x1Fu) {
            st = bad("layer %d has unknown precision 0x%x", k, l->precision);
            goto done;
        }
        if (!(l->tactic = calloc(np + 1, sizeof *l->tactic)) ||
            !(l->time_us = calloc(np + 1, sizeof *l->time_us)) ||
            !(l->blob = calloc(np + 1, sizeof *l->blob)) ||
            !(l->blob_size = calloc(np + 1, sizeof *l->blob_size))) {
            st = oom();
            goto done;
        }
        for (uint32_t p = 0; p < np; p++) {
            int32_t j = r_i32(&r);
            l->time_us[p] = r_f32(&r);
            uint64_t bo = r_u64(&r), bsz = r_u64(&r);
            if (j < -1 || j >= nt) {
                st = bad("layer %d refers to tactic %d of %d", k, j, nt);
                goto done;
            }
            if (bsz == 0 ? bo != 0 : (bo % ENGINE_WEIGHT_ALIGN || bo > wlen ||
                                      bsz > wlen - bo)) {
                st = bad("layer %d profile %u: prepared data (offset %llu, %llu "
                         "bytes) is misaligned or outside the weights section", k, p,
                         (unsigned long long)bo, (unsigned long long)bsz);
                goto done;
            }
            if (bsz && (j < 0 || !tac[j]->prepare)) {
                st = bad("layer %d profile %u has prepared data but its tactic "
                         "makes none", k, p);
                goto done;
            }
            if (bsz) {
                l->blob[p] = wbase + bo;
                l->blob_size[p] = bsz;
            }
            if (j < 0) continue;
            const kiln_tactic *t = tac[j];
            if (t->op != OP_NONE && t->op != n->op) {
                st = bad("layer %d (%s): tactic '%s' implements %s", k,
                         printable(n->op_type, b, sizeof b), t->name,
                         op_name(t->op));
                goto done;
            }
            l->tactic[p] = t;
        }
    }
    if (r.bad) st = r_fail(&r, "layers section");
    else if (r.p != r.end) st = bad("layers section has trailing bytes");
done:
    free(tac);
    return st;
}

static kiln_status des_plans(des *d) {
    kiln_engine *e = d->e;
    const ir_graph *g = d->m->graph;
    rbuf r = section(d, ENGINE_SEC_PLANS);
    uint32_t np = r_u32(&r), nv = r_u32(&r);
    if (r.bad) return r_fail(&r, "plans section");
    if (np != (uint32_t)e->n_profiles || nv != (uint32_t)g->n_values)
        return bad("plans section has %u plans x %u values, expected %d x %d",
                   np, nv, e->n_profiles, g->n_values);
    if ((size_t)np * (24 + (size_t)nv * 16) > r_left(&r))
        return bad("plans section: truncated");
    for (uint32_t p = 0; p < np; p++) {
        engine_plan *pl = &e->plans[p];
        pl->total_bytes = r_u64(&r);
        pl->naive_bytes = r_u64(&r);
        pl->workspace_bytes = r_u64(&r);
        if (!(pl->offset = malloc(((size_t)nv + 1) * sizeof *pl->offset)) ||
            !(pl->size = malloc(((size_t)nv + 1) * sizeof *pl->size)))
            return oom();
        for (uint32_t v = 0; v < nv; v++) {
            int64_t o = r_i64(&r);
            uint64_t sz = r_u64(&r);
            if (o != -1 && (o < 0 || sz > pl->total_bytes ||
                            (uint64_t)o > pl->total_bytes - sz))
                return bad("plan %u: value %u (offset %lld, %llu bytes) lies "
                           "outside the %llu-byte activation block", p, v,
                           (long long)o, (unsigned long long)sz,
                           (unsigned long long)pl->total_bytes);
            pl->offset[v] = o;
            pl->size[v] = sz;
        }
    }
    if (r.bad) return r_fail(&r, "plans section");
    if (r.p != r.end) return bad("plans section has trailing bytes");
    return KILN_OK;
}

/* A main-graph constant stored without its bytes must have no reader that
** needs them (engine_const_unread): say, an engine edited so that a layer
** runs a tactic without prepared data. */
static kiln_status check_no_data(des *d) {
    const ir_graph *g = d->m->graph;
    char b[96], lab[256];
    uint8_t *unread = calloc((size_t)g->n_values + 1, 1);
    if (!unread) return oom();
    engine_const_unread(d->e, unread);
    kiln_status st = KILN_OK;
    for (int i = 0; i < g->n_values && !st; i++) {
        const ir_value *v = g->values[i];
        if (!v->const_val || v->const_val->data || !v->const_val->nbytes || unread[i])
            continue;
        /* name a reader that needs the bytes, when there is one */
        const ir_node *who = NULL;
        for (int k = 0; k < g->n_nodes && !who; k++)
            for (int j = 0; j < g->nodes[k]->n_in + g->nodes[k]->n_implicit; j++)
                if (g->nodes[k]->in[j] == v) who = g->nodes[k];
        st = bad("constant '%s' is stored without its bytes but %s%s needs them",
                 printable(v->name, b, sizeof b), who ? "layer " : "a graph input or output",
                 who ? ir_node_label(who, lab, sizeof lab) : "");
    }
    free(unread);
    return st;
}

void engine_const_unread(const kiln_engine *e, uint8_t *unread) {
    const ir_graph *g = e->ir->graph;
    int np = e->n_profiles;
    /* 0: keep, 1: no use seen yet, 2: every use seen so far is fine */
    bool any = np > 0 && e->layers && e->ops && !e->ops->dev && !e->dev_fingerprint[0];
    for (int i = 0; i < g->n_values; i++) {
        const ir_value *v = g->values[i];
        unread[i] = any && v && v->const_val && v->const_val->nbytes &&
                    !(v->flags & (IR_VALUE_INPUT | IR_VALUE_OUTPUT));
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i]) unread[g->inputs[i]->id] = 0;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i]) unread[g->outputs[i]->id] = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        const engine_layer *L = &e->layers[k];
        /* a node of constants alone may be folded by shape inference,
        ** which reads every input */
        bool varying = false;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] && !n->in[j]->const_val) varying = true;
        for (int j = 0; j < n->n_in + n->n_implicit; j++) {
            const ir_value *v = n->in[j];
            if (!v || v->id < 0 || v->id >= g->n_values || !unread[v->id]) continue;
            bool ok = j < n->n_in && j < 32 && varying && L->tactic && L->blob &&
                      L->blob_size;
            for (int p = 0; ok && p < np; p++) {
                const kiln_tactic *t = L->tactic[p];
                ok = t && !(t->flags & TACTIC_DEVICE) && (t->blob_replaces >> j & 1u) &&
                     L->blob[p] && L->blob_size[p];
            }
            unread[v->id] = ok ? 2 : 0;
        }
    }
    for (int i = 0; i < g->n_values; i++) unread[i] = unread[i] == 2;
}

kiln_status engine_deserialize(const uint8_t *data, size_t size, kiln_engine *e) {
    if (!data || !e) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if ((uintptr_t)data % ENGINE_WEIGHT_ALIGN)
        return kiln_error(KILN_INVALID_ARGUMENT, "engine bytes must be 64-byte "
                          "aligned in memory");
    des d = {0};
    d.data = data;
    d.size = size;
    d.e = e;
    kiln_status st = check_envelope(&d);
    if (st) return st;
    if ((st = des_build(&d))) goto fail;
    if (!(d.m = e->ir = ir_model_new())) {
        st = oom();
        goto fail;
    }
    if ((st = des_symbols(&d)) || (st = des_tensors(&d)) || (st = des_model(&d)) ||
        (st = des_profiles(&d)) || (st = des_layers(&d)) || (st = des_plans(&d)) ||
        (st = check_no_data(&d)))
        goto fail;
    free(d.tensors);
    return KILN_OK;
fail:
    free(d.tensors);
    engine_clear(e);
    return st;
}
