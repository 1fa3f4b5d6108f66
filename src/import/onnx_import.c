/* onnx_import.c: ModelProto -> IR. Decodes the protobuf directly over the
** (mapped) file: initializer bytes are used in place when aligned. Every
** malformed construct ends in KILN_INVALID_MODEL (or KILN_UNSUPPORTED) with a
** message naming the graph element and, for nodes, index, name and op. */
#include "onnx.h"
#include "pb.h"
#include "../ops/op.h"

#include <stdio.h>

#define MAX_GRAPH_DEPTH 32
#define BAD(...) kiln_error(KILN_INVALID_MODEL, __VA_ARGS__)

typedef struct span {
    const uint8_t *p;
    size_t n;
} span;

typedef struct spans {
    span *v;
    int n, cap;
} spans;

static bool spans_push(spans *s, const uint8_t *p, size_t n) {
    if (s->n == s->cap) {
        if (s->cap > INT32_MAX / 2) return false; /* counts are ints */
        int cap = s->cap ? s->cap * 2 : 16;
        span *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].p = p;
    s->v[s->n].n = n;
    s->n++;
    return true;
}

/* ---- name -> value map (open addressing) */
typedef struct name_map {
    ir_value **slots;
    size_t cap, count;
} name_map;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static ir_value *map_get(const name_map *m, const char *name) {
    if (!m->cap) return NULL;
    for (size_t i = hash_str(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        ir_value *v = m->slots[i];
        if (!v) return NULL;
        if (strcmp(v->name, name) == 0) return v;
    }
}

static bool map_put(name_map *m, ir_value *v) {
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        ir_value **slots = calloc(cap, sizeof *slots);
        if (!slots) return false;
        for (size_t i = 0; i < m->cap; i++) {
            ir_value *w = m->slots[i];
            if (!w) continue;
            size_t j = hash_str(w->name) & (cap - 1);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = w;
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    size_t j = hash_str(v->name) & (m->cap - 1);
    while (m->slots[j]) j = (j + 1) & (m->cap - 1);
    m->slots[j] = v;
    m->count++;
    return true;
}

typedef struct scope {
    ir_graph *g;
    name_map names;
    struct scope *parent;
} scope;

typedef struct importer {
    ir_model *m;
    const char *dir;
    int depth;
    const onnx_warn_sink *warn;
    int n_warn;
    bool warned_qdim;   /* the dim_param "?" leniency was logged */
} importer;

/* A hostile file can trigger a leniency per value; past this many the
** rest are counted, not logged. */
#define MAX_WARNINGS 64

/* Logs one leniency (something onnxruntime accepts that the spec does not
** quite allow, read the way onnxruntime reads it). */
static void KILN_PRINTF(2, 3) warnf(importer *im, const char *fmt, ...) {
    if (!im->warn || !im->warn->fn) return;
    int k = im->n_warn++;
    if (k > MAX_WARNINGS) return;
    char msg[512];
    if (k == MAX_WARNINGS) {
        snprintf(msg, sizeof msg, "more import warnings follow; only the first %d "
                 "are shown", MAX_WARNINGS);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    im->warn->fn(im->warn->user, msg);
}

static const char *dup_span(importer *im, const uint8_t *p, size_t n) {
    return kiln_arena_strndup(&im->m->arena, (const char *)p, n);
}

static kiln_status oom(void) {
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory while importing");
}

/* Printable copy of an untrusted name for messages. */
static const char *safe_name(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        buf[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    buf[k] = 0;
    return buf;
}

/* Finds a value by name in this scope or an enclosing one; an outer value
** becomes a capture of every graph between its scope and this one. */
static ir_value *lookup(scope *sc, const char *name, kiln_status *st) {
    ir_value *v = map_get(&sc->names, name);
    if (v || !sc->parent) return v;
    ir_value *outer = lookup(sc->parent, name, st);
    if (!outer) return NULL;
    ir_graph *g = sc->g;
    ir_value *local = ir_value_new(g, name);
    /* The graph keeps no capacity: grow to powers of two (from 8) so a
    ** body capturing many values costs linear time, not quadratic. */
    int nc = g->n_captures;
    bool grow = nc == 0 || (nc >= 8 && (nc & (nc - 1)) == 0);
    size_t cap = nc == 0 ? 8 : (size_t)nc * 2;
    ir_value **o = g->capture_outer, **l = g->capture_local;
    if (grow && (o = realloc(g->capture_outer, cap * sizeof *o)))
        g->capture_outer = o;
    if (grow && (l = realloc(g->capture_local, cap * sizeof *l)))
        g->capture_local = l;
    if (nc == INT32_MAX || !local || !o || !l || !map_put(&sc->names, local)) {
        *st = oom();
        return NULL;
    }
    local->flags |= IR_VALUE_CAPTURE;
    g->capture_outer[g->n_captures] = outer;
    g->capture_local[g->n_captures] = local;
    g->n_captures++;
    return local;
}

/* ---- types */
static kiln_status parse_shape(importer *im, const uint8_t *p, size_t n,
                               ir_type *t, int64_t *neg) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    t->rank = 0;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        if (f != ONNX_SHAPE_DIM || wt != PB_LEN) {
            if (pb_skip(&r, wt)) return BAD("malformed shape");
            continue;
        }
        const uint8_t *q;
        size_t m;
        if (pb_bytes(&r, &q, &m)) return BAD("malformed shape dim");
        if (t->rank >= KILN_MAX_RANK)
            return kiln_error(KILN_UNSUPPORTED, "rank exceeds %d", KILN_MAX_RANK);
        pb_reader d = pb_init(q, m);
        uint32_t df;
        int dwt, drc;
        int64_t dim = INT64_MIN;
        while ((drc = pb_next(&d, &df, &dwt)) == 1) {
            if (df == ONNX_DIM_VALUE && dwt == PB_VARINT) {
                uint64_t v;
                if (pb_varint(&d, &v)) return BAD("malformed dim_value");
                /* TensorFlow and Paddle exporters write -1 for "unknown";
                ** onnxruntime reads it so. The caller warns. */
                if ((int64_t)v < 0) {
                    *neg = (int64_t)v;
                    dim = INT64_MIN;
                } else {
                    dim = (int64_t)v;
                }
            } else if (df == ONNX_DIM_PARAM && dwt == PB_LEN) {
                const uint8_t *s;
                size_t sn;
                if (pb_bytes(&d, &s, &sn)) return BAD("malformed dim_param");
                char *name = kiln_strndup((const char *)s, sn);
                if (!name) return oom();
                /* Paddle's exporter writes "?" for every unknown dim (height
                ** and width alike); onnxruntime does not tie such dims
                ** together, so neither does Kiln. */
                bool anon = sn == 0 || (sn == 1 && s[0] == '?');
                if (sn == 1 && s[0] == '?' && !im->warned_qdim) {
                    im->warned_qdim = true;
                    warnf(im, "dim_param '?' is read as an unknown dim of its own, "
                          "not one name shared by every '?'");
                }
                dim = anon ? ir_model_new_sym(im->m, NULL)
                           : ir_model_sym_named(im->m, name);
                free(name);
                if (dim == 0) return oom();
            } else if (pb_skip(&d, dwt)) {
                return BAD("malformed shape dim");
            }
        }
        if (drc < 0) return BAD("malformed shape dim");
        if (dim == INT64_MIN) { /* neither value nor param: unknown */
            dim = ir_model_new_sym(im->m, NULL);
            if (dim == 0) return oom();
        }
        t->dims[t->rank++] = dim;
    }
    return rc < 0 ? BAD("malformed shape") : KILN_OK;
}

/* Whether the optional type about to be read at r (a TypeProto.Optional)
** holds a tensor type, and nothing else: r itself is not advanced. */
static bool optional_of_tensor(const pb_reader *r) {
    pb_reader c = *r, o, e;
    const uint8_t *q, *p;
    size_t m, n;
    uint32_t f;
    int wt;
    bool tensor = false, other = false;
    if (pb_bytes(&c, &q, &m)) return false;
    o = pb_init(q, m);
    while (pb_next(&o, &f, &wt) == 1) {
        if (f != 1 || wt != PB_LEN) {
            if (pb_skip(&o, wt)) return false;
            continue;
        }
        if (pb_bytes(&o, &p, &n)) return false;
        e = pb_init(p, n);
        while (pb_next(&e, &f, &wt) == 1) {
            if (f == ONNX_TYPE_TENSOR) tensor = true;
            else if (f == ONNX_TYPE_SEQUENCE || f == ONNX_TYPE_MAP || f == ONNX_TYPE_SPARSE ||
                     f == ONNX_TYPE_OPTIONAL)
                other = true;
            if (pb_skip(&e, wt)) return false;
        }
    }
    return tensor && !other;
}

/* Parses a TypeProto. *is_tensor tells whether it was a tensor type. */
static kiln_status parse_type(importer *im, const uint8_t *p, size_t n,
                              ir_type *t, bool *is_tensor, const char **kind,
                              int64_t *neg) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    t->dtype = KILN_DTYPE_UNDEFINED;
    t->rank = -1;
    *is_tensor = false;
    *kind = "unknown";
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        if (f == ONNX_TYPE_TENSOR && wt == PB_LEN) {
            const uint8_t *q;
            size_t m;
            if (pb_bytes(&r, &q, &m)) return BAD("malformed tensor type");
            *is_tensor = true;
            *kind = "tensor";
            pb_reader tt = pb_init(q, m);
            uint32_t tf;
            int twt, trc;
            while ((trc = pb_next(&tt, &tf, &twt)) == 1) {
                if (tf == ONNX_TT_ELEM_TYPE && twt == PB_VARINT) {
                    uint64_t e;
                    if (pb_varint(&tt, &e)) return BAD("malformed elem_type");
                    if (e != 0 && !dtype_is_valid((int)KILN_MIN(e, 1000)))
                        return BAD("invalid elem_type %llu", (unsigned long long)e);
                    t->dtype = (kiln_dtype)e;
                } else if (tf == ONNX_TT_SHAPE && twt == PB_LEN) {
                    const uint8_t *s;
                    size_t sn;
                    if (pb_bytes(&tt, &s, &sn)) return BAD("malformed shape");
                    kiln_status st = parse_shape(im, s, sn, t, neg);
                    if (st) return st;
                } else if (pb_skip(&tt, twt)) {
                    return BAD("malformed tensor type");
                }
            }
            if (trc < 0) return BAD("malformed tensor type");
        } else if (f == ONNX_TYPE_OPTIONAL && wt == PB_LEN && optional_of_tensor(&r)) {
            /* optional(tensor) reads as the tensor: a graph value that is
            ** present (Kiln has no absent graph values) */
            const uint8_t *q, *e = NULL;
            size_t m, en = 0;
            if (pb_bytes(&r, &q, &m)) return BAD("malformed optional type");
            pb_reader o = pb_init(q, m);
            uint32_t of;
            int owt;
            while (pb_next(&o, &of, &owt) == 1)
                if (of == 1 && owt == PB_LEN) {
                    if (pb_bytes(&o, &e, &en)) return BAD("malformed optional type");
                } else if (pb_skip(&o, owt)) {
                    return BAD("malformed optional type");
                }
            kiln_status st = parse_type(im, e, en, t, is_tensor, kind, neg);
            if (st) return st;
        } else {
            if (f == ONNX_TYPE_SEQUENCE) *kind = "sequence";
            else if (f == ONNX_TYPE_MAP) *kind = "map";
            else if (f == ONNX_TYPE_OPTIONAL) *kind = "optional";
            else if (f == ONNX_TYPE_SPARSE) *kind = "sparse tensor";
            if (pb_skip(&r, wt)) return BAD("malformed type");
        }
    }
    return rc < 0 ? BAD("malformed type") : KILN_OK;
}

typedef struct vinfo {
    const char *name;
    ir_type type;
    bool has_type, is_tensor;
    const char *kind;
    int64_t neg_dim;   /* a negative dim_value read as unknown, else 0 */
} vinfo;

static kiln_status parse_value_info(importer *im, span s, vinfo *vi) {
    pb_reader r = pb_init(s.p, s.n);
    uint32_t f;
    int wt, rc;
    memset(vi, 0, sizeof *vi);
    vi->name = "";
    vi->type.rank = -1;
    vi->is_tensor = true;
    vi->kind = "tensor";
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t m;
        if (f == ONNX_VI_NAME && wt == PB_LEN) {
            if (pb_bytes(&r, &q, &m)) return BAD("malformed value info name");
            if (!(vi->name = dup_span(im, q, m))) return oom();
        } else if (f == ONNX_VI_TYPE && wt == PB_LEN) {
            if (pb_bytes(&r, &q, &m)) return BAD("malformed value info type");
            kiln_status st = parse_type(im, q, m, &vi->type, &vi->is_tensor,
                                        &vi->kind, &vi->neg_dim);
            if (st) {
                char b[128];
                kiln_error_prefix("type of '%s'", safe_name(vi->name, b, sizeof b));
                return st;
            }
            /* An empty TypeProto (`type {}`, written by spox and by
            ** torch.onnx for If-branch outputs) says nothing: read it as
            ** no type, to be inferred, as onnxruntime does. */
            if (strcmp(vi->kind, "unknown") == 0) {
                vi->is_tensor = true;
                vi->kind = "tensor";
                continue;
            }
            vi->has_type = true;
        } else if (pb_skip(&r, wt)) {
            return BAD("malformed value info");
        }
    }
    return rc < 0 ? BAD("malformed value info") : KILN_OK;
}

/* ---- attributes */
static kiln_status parse_graph(importer *im, scope *parent, const uint8_t *p,
                               size_t n, ir_graph **out);

static kiln_status add_tensor(importer *im, const uint8_t *p, size_t n,
                              kiln_tensor **out) {
    kiln_status s = onnx_decode_tensor(p, n, im->dir, true, out);
    if (s) return s;
    if (!ir_model_own_tensor(im->m, *out)) return oom();
    return KILN_OK;
}

static kiln_status parse_attr(importer *im, scope *sc, const uint8_t *p,
                              size_t n, ir_attr *a) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    int64_t declared = -1;
    spans list = {0};
    kiln_status st = KILN_OK;
    int list_field = 0;
    size_t nf = 0, ni = 0;
    a->name = "";
    /* First pass: scalars and counts of repeated fields. */
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t m;
        uint64_t v;
        uint32_t u;
        switch (f) {
        case ONNX_ATTR_NAME:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if (!(a->name = dup_span(im, q, m))) goto nomem;
            break;
        case ONNX_ATTR_TYPE:
            if (wt != PB_VARINT || pb_varint(&r, &v)) goto bad;
            declared = (int64_t)KILN_MIN(v, 1000);
            break;
        case ONNX_ATTR_F:
            if (wt != PB_I32 || pb_fixed32(&r, &u)) goto bad;
            memcpy(&a->f, &u, 4);
            if (declared < 0 && !a->type) a->type = IR_ATTR_FLOAT;
            break;
        case ONNX_ATTR_I:
            if (wt != PB_VARINT || pb_varint(&r, &v)) goto bad;
            a->i = (int64_t)v;
            if (!a->type) a->type = IR_ATTR_INT;
            break;
        case ONNX_ATTR_S:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if (!(a->s = dup_span(im, q, m))) goto nomem;
            a->s_len = m;
            if (!a->type) a->type = IR_ATTR_STRING;
            break;
        case ONNX_ATTR_T:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if ((st = add_tensor(im, q, m, &a->t))) goto fail;
            if (!a->type) a->type = IR_ATTR_TENSOR;
            break;
        case ONNX_ATTR_G:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if ((st = parse_graph(im, sc, q, m, &a->g))) goto fail;
            if (!a->type) a->type = IR_ATTR_GRAPH;
            break;
        case ONNX_ATTR_FLOATS:
            if (wt == PB_LEN) {
                if (pb_bytes(&r, &q, &m) || m % 4) goto bad;
                nf += m / 4;
            } else if (wt == PB_I32) {
                if (pb_fixed32(&r, &u)) goto bad;
                nf++;
            } else {
                goto bad;
            }
            break;
        case ONNX_ATTR_INTS:
            if (wt == PB_LEN) {
                if (pb_bytes(&r, &q, &m)) goto bad;
                pb_reader s = pb_init(q, m);
                while (s.p < s.end) {
                    if (pb_varint(&s, &v)) goto bad;
                    ni++;
                }
            } else if (wt == PB_VARINT) {
                if (pb_varint(&r, &v)) goto bad;
                ni++;
            } else {
                goto bad;
            }
            break;
        case ONNX_ATTR_STRINGS: case ONNX_ATTR_TENSORS: case ONNX_ATTR_GRAPHS:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if (list_field && list_field != (int)f) goto bad;
            list_field = (int)f;
            if (!spans_push(&list, q, m)) goto nomem;
            break;
        case ONNX_ATTR_REF_ATTR_NAME:
            st = kiln_error(KILN_UNSUPPORTED, "attribute references "
                            "(ref_attr_name) are only valid inside functions");
            goto fail;
        case ONNX_ATTR_SPARSE_TENSOR:
            st = kiln_error(KILN_UNSUPPORTED, "sparse tensor attributes are "
                            "not supported");
            goto fail;
        default:
            if (pb_skip(&r, wt)) goto bad;
        }
    }
    if (rc < 0) goto bad;
    if (!a->name[0]) {
        st = BAD("attribute without a name");
        goto fail;
    }
    if (nf > INT32_MAX || ni > INT32_MAX) goto bad; /* a->n is an int */
    /* Second pass for the numeric lists. */
    if (nf) {
        if (!(a->floats = kiln_arena_alloc(&im->m->arena, nf * sizeof(float))))
            goto nomem;
    }
    if (ni) {
        if (!(a->ints = kiln_arena_alloc(&im->m->arena, ni * sizeof(int64_t))))
            goto nomem;
    }
    if (nf || ni) {
        size_t kf = 0, ki = 0;
        r = pb_init(p, n);
        while (pb_next(&r, &f, &wt) == 1) {
            const uint8_t *q;
            size_t m;
            uint64_t v;
            uint32_t u;
            if (f == ONNX_ATTR_FLOATS && wt == PB_LEN) {
                pb_bytes(&r, &q, &m);
                for (size_t k = 0; k < m / 4; k++) memcpy(&a->floats[kf++], q + 4 * k, 4);
            } else if (f == ONNX_ATTR_FLOATS) {
                pb_fixed32(&r, &u);
                memcpy(&a->floats[kf++], &u, 4);
            } else if (f == ONNX_ATTR_INTS && wt == PB_LEN) {
                pb_bytes(&r, &q, &m);
                pb_reader s = pb_init(q, m);
                while (s.p < s.end && !pb_varint(&s, &v)) a->ints[ki++] = (int64_t)v;
            } else if (f == ONNX_ATTR_INTS) {
                pb_varint(&r, &v);
                a->ints[ki++] = (int64_t)v;
            } else {
                pb_skip(&r, wt);
            }
        }
    }
    if (list.n) {
        size_t cnt = (size_t)list.n;
        if (list_field == ONNX_ATTR_STRINGS) {
            if (!(a->strings = kiln_arena_alloc(&im->m->arena, cnt * sizeof(char *))))
                goto nomem;
            for (int k = 0; k < list.n; k++)
                if (!(a->strings[k] = dup_span(im, list.v[k].p, list.v[k].n)))
                    goto nomem;
        } else if (list_field == ONNX_ATTR_TENSORS) {
            if (!(a->tensors = kiln_arena_alloc(&im->m->arena, cnt * sizeof(kiln_tensor *))))
                goto nomem;
            for (int k = 0; k < list.n; k++)
                if ((st = add_tensor(im, list.v[k].p, list.v[k].n, &a->tensors[k])))
                    goto fail;
        } else {
            if (!(a->graphs = kiln_arena_alloc(&im->m->arena, cnt * sizeof(ir_graph *))))
                goto nomem;
            for (int k = 0; k < list.n; k++)
                if ((st = parse_graph(im, sc, list.v[k].p, list.v[k].n, &a->graphs[k])))
                    goto fail;
        }
    }
    /* Settle the type: the declared one wins; lists need it to tell an
    ** empty list apart. */
    if (declared > 0) {
        a->type = (int)declared;
    } else if (!a->type) {
        a->type = nf ? IR_ATTR_FLOATS : ni ? IR_ATTR_INTS
                : list_field == ONNX_ATTR_STRINGS ? IR_ATTR_STRINGS
                : list_field == ONNX_ATTR_TENSORS ? IR_ATTR_TENSORS
                : list_field == ONNX_ATTR_GRAPHS ? IR_ATTR_GRAPHS
                : IR_ATTR_UNDEFINED;
    }
    switch (a->type) {
    case IR_ATTR_FLOATS: a->n = (int)nf; break;
    case IR_ATTR_INTS: a->n = (int)ni; break;
    case IR_ATTR_STRINGS: case IR_ATTR_TENSORS: case IR_ATTR_GRAPHS:
        a->n = list.n;
        if (list.n && list_field != (a->type == IR_ATTR_STRINGS ? ONNX_ATTR_STRINGS
                                     : a->type == IR_ATTR_TENSORS ? ONNX_ATTR_TENSORS
                                                                  : ONNX_ATTR_GRAPHS))
            goto badtype;
        break;
    case IR_ATTR_FLOAT: case IR_ATTR_INT: break;
    case IR_ATTR_STRING: if (!a->s) { a->s = ""; } break;
    case IR_ATTR_TENSOR: if (!a->t) goto badtype; break;
    case IR_ATTR_GRAPH: if (!a->g) goto badtype; break;
    case IR_ATTR_TYPE_PROTO: case IR_ATTR_TYPE_PROTOS: break;
    case IR_ATTR_SPARSE_TENSOR: case IR_ATTR_SPARSE_TENSORS:
        st = kiln_error(KILN_UNSUPPORTED, "sparse tensor attribute '%s' is "
                        "not supported", a->name);
        goto fail;
    default:
        goto badtype;
    }
    free(list.v);
    return KILN_OK;
badtype: {
        char b[128];
        st = BAD("attribute '%s' has type %d but no matching value",
                 safe_name(a->name, b, sizeof b), a->type);
        goto fail;
    }
bad: {
        char b[128];
        st = BAD("malformed attribute '%s'", safe_name(a->name, b, sizeof b));
        goto fail;
    }
nomem:
    st = oom();
fail:
    free(list.v);
    return st;
}

/* ---- nodes */
typedef struct node_fields {
    spans inputs, outputs, attrs;
    const char *name, *op_type, *domain;
} node_fields;

static void node_fields_free(node_fields *nf) {
    free(nf->inputs.v);
    free(nf->outputs.v);
    free(nf->attrs.v);
}

static kiln_status read_node_fields(importer *im, span s, node_fields *nf) {
    pb_reader r = pb_init(s.p, s.n);
    uint32_t f;
    int wt, rc;
    memset(nf, 0, sizeof *nf);
    nf->name = nf->op_type = nf->domain = "";
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t m;
        spans *target = NULL;
        const char **str = NULL;
        if (f == ONNX_NODE_INPUT) target = &nf->inputs;
        else if (f == ONNX_NODE_OUTPUT) target = &nf->outputs;
        else if (f == ONNX_NODE_ATTRIBUTE) target = &nf->attrs;
        else if (f == ONNX_NODE_NAME) str = &nf->name;
        else if (f == ONNX_NODE_OP_TYPE) str = &nf->op_type;
        else if (f == ONNX_NODE_DOMAIN) str = &nf->domain;
        if (target || str) {
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) return BAD("malformed node");
            if (target && !spans_push(target, q, m)) return oom();
            if (str && !(*str = dup_span(im, q, m))) return oom();
        } else if (pb_skip(&r, wt)) {
            return BAD("malformed node");
        }
    }
    return rc < 0 ? BAD("malformed node") : KILN_OK;
}

static bool domain_is_onnx(const char *d) {
    return d[0] == 0 || strcmp(d, "ai.onnx") == 0;
}

/* Creates the node and its output values (pass B). */
static kiln_status declare_node(importer *im, scope *sc, span s, int index) {
    node_fields nf;
    char lab[256], b[128];
    kiln_status st = read_node_fields(im, s, &nf);
    if (st) {
        kiln_error_prefix("node %d", index);
        goto done;
    }
    ir_node *n = ir_node_new(sc->g, nf.inputs.n, nf.outputs.n);
    if (!n) {
        st = oom();
        goto done;
    }
    n->index = index;
    n->name = nf.name;
    n->op_type = nf.op_type;
    n->domain = nf.domain;
    if (!nf.op_type[0]) {
        st = BAD("%s: missing op_type", ir_node_label(n, lab, sizeof lab));
        goto done;
    }
    if (!strcmp(nf.domain, "ai.onnx.ml") && op_is_ml(op_lookup_any(nf.op_type))) {
        /* ai.onnx.ml operators with their own kernels (ops/ml.c) */
        n->op = op_lookup_any(nf.op_type);
        n->schema = op_schema_get(n->op);
        goto outputs;
    }
    if (!domain_is_onnx(nf.domain)) {
        /* onnxruntime's own tools write com.microsoft nodes; they are
        ** expanded into ai.onnx after the graph is read (onnx_contrib.c) */
        if (onnx_contrib_known(nf.domain, nf.op_type) && im->depth == 1) {
            n->op = OP_NONE;
            goto outputs;
        }
        if (strcmp(nf.domain, "com.microsoft") == 0 || strcmp(nf.domain, "ai.onnx.ml") == 0)
            st = kiln_error(KILN_UNSUPPORTED, "%s: %s operator '%s' is not supported%s",
                            ir_node_label(n, lab, sizeof lab), nf.domain,
                            safe_name(nf.op_type, b, sizeof b),
                            im->depth > 1 ? " inside a subgraph" : !strcmp(nf.op_type, "ZipMap") ?
                            " (its output is a sequence of maps; Kiln runs tensors only: "
                            "convert without ZipMap, e.g. skl2onnx options {'zipmap': False})" :
                            !strcmp(nf.op_type, "CastMap") || !strcmp(nf.op_type, "DictVectorizer") ?
                            " (it reads a map; Kiln runs tensors only: feed the features as one "
                            "float tensor instead)" : "");
        else
            st = kiln_error(KILN_UNSUPPORTED, "%s: domain '%s' is not supported "
                            "(Kiln implements the ai.onnx domain and the com.microsoft "
                            "operators onnxruntime's tools write)",
                            ir_node_label(n, lab, sizeof lab),
                            safe_name(nf.domain, b, sizeof b));
        goto done;
    }
    n->op = op_lookup(nf.op_type);
    n->schema = op_schema_get(n->op);
outputs:
    for (int k = 0; k < nf.outputs.n; k++) {
        const char *name = dup_span(im, nf.outputs.v[k].p, nf.outputs.v[k].n);
        if (!name) {
            st = oom();
            goto done;
        }
        ir_value *v = ir_value_new(sc->g, name);
        if (!v) {
            st = oom();
            goto done;
        }
        v->producer = n;
        v->producer_out = k;
        n->out[k] = v;
        if (!name[0]) continue;
        if (map_get(&sc->names, name)) {
            st = BAD("%s: output '%s' is already defined (by another node, a "
                     "graph input or an initializer)",
                     ir_node_label(n, lab, sizeof lab), safe_name(name, b, sizeof b));
            goto done;
        }
        if (!map_put(&sc->names, v)) {
            st = oom();
            goto done;
        }
    }
done:
    node_fields_free(&nf);
    return st;
}

/* Set of values (open addressing on the pointer) for collecting a node's
** implicit inputs without a quadratic duplicate scan. */
typedef struct value_set {
    ir_value **slots;
    size_t cap, count;
} value_set;

static size_t vset_slot(const value_set *vs, const ir_value *v) {
    size_t mask = vs->cap - 1;
    for (size_t i = (size_t)(((uintptr_t)v >> 4) * 0x9e3779b97f4a7c15ull) & mask;;
         i = (i + 1) & mask)
        if (!vs->slots[i] || vs->slots[i] == v) return i;
}

/* Adds v; *added tells whether it was new. false when out of memory. */
static bool vset_add(value_set *vs, ir_value *v, bool *added) {
    if ((vs->count + 1) * 2 > vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 32;
        ir_value **old = vs->slots;
        size_t old_cap = vs->cap;
        if (!(vs->slots = calloc(cap, sizeof *vs->slots))) {
            vs->slots = old;
            return false;
        }
        vs->cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) vs->slots[vset_slot(vs, old[i])] = old[i];
        free(old);
    }
    size_t j = vset_slot(vs, v);
    *added = !vs->slots[j];
    if (*added) {
        vs->slots[j] = v;
        vs->count++;
    }
    return true;
}

static int cmp_attr_name(const void *a, const void *b) {
    return strcmp((*(const ir_attr *const *)a)->name, (*(const ir_attr *const *)b)->name);
}

/* Name of an attribute that appears twice, NULL if none (sorting: a node
** may carry very many attributes). oom set when scratch memory ran out. */
static const char *duplicate_attr(const ir_node *n, bool *oom_out) {
    *oom_out = false;
    if (n->n_attrs < 2) return NULL;
    const ir_attr **v = malloc((size_t)n->n_attrs * sizeof *v);
    if (!v) {
        *oom_out = true;
        return NULL;
    }
    for (int k = 0; k < n->n_attrs; k++) v[k] = &n->attrs[k];
    qsort(v, (size_t)n->n_attrs, sizeof *v, cmp_attr_name);
    const char *dup = NULL;
    for (int k = 1; k < n->n_attrs && !dup; k++)
        if (strcmp(v[k - 1]->name, v[k]->name) == 0) dup = v[k]->name;
    free(v);
    return dup;
}

/* Resolves inputs and parses attributes (pass C). */
static kiln_status define_node(importer *im, scope *sc, span s, ir_node *n) {
    node_fields nf;
    char lab[256], b[128];
    kiln_status st = read_node_fields(im, s, &nf);
    if (st) goto done;
    for (int k = 0; k < nf.inputs.n; k++) {
        const char *name = dup_span(im, nf.inputs.v[k].p, nf.inputs.v[k].n);
        if (!name) {
            st = oom();
            goto done;
        }
        if (!name[0]) {
            n->in[k] = NULL;
            continue;
        }
        st = KILN_OK;
        ir_value *v = lookup(sc, name, &st);
        if (st) goto done;
        if (!v) {
            st = BAD("%s: input '%s' is not produced by any node, graph input "
                     "or initializer", ir_node_label(n, lab, sizeof lab),
                     safe_name(name, b, sizeof b));
            goto done;
        }
        n->in[k] = v;
    }
    if (nf.attrs.n) {
        n->attrs = kiln_arena_alloc(&im->m->arena, (size_t)nf.attrs.n * sizeof *n->attrs);
        if (!n->attrs) {
            st = oom();
            goto done;
        }
    }
    for (int k = 0; k < nf.attrs.n; k++) {
        ir_attr *a = &n->attrs[k];
        st = parse_attr(im, sc, nf.attrs.v[k].p, nf.attrs.v[k].n, a);
        if (st) {
            kiln_error_prefix("%s", ir_node_label(n, lab, sizeof lab));
            goto done;
        }
        n->n_attrs = k + 1;
    }
    bool dup_oom;
    const char *dup = duplicate_attr(n, &dup_oom);
    if (dup_oom) {
        st = oom();
        goto done;
    }
    if (dup) {
        st = BAD("%s: attribute '%s' appears twice", ir_node_label(n, lab, sizeof lab),
                 safe_name(dup, b, sizeof b));
        goto done;
    }
    /* Outer values used by subgraphs become implicit inputs of the node. */
    int n_imp = 0, cap = 0;
    ir_value **imp = NULL;
    value_set seen = {0};
    for (int k = 0; k < n->n_attrs; k++) {
        ir_attr *a = &n->attrs[k];
        int ng = a->type == IR_ATTR_GRAPH ? 1 : a->type == IR_ATTR_GRAPHS ? a->n : 0;
        for (int j = 0; j < ng; j++) {
            ir_graph *sg = a->type == IR_ATTR_GRAPH ? a->g : a->graphs[j];
            sg->owner = n;
            for (int c = 0; c < sg->n_captures; c++) {
                ir_value *o = sg->capture_outer[c];
                bool added;
                if (!vset_add(&seen, o, &added) ||
                    (added && n_imp == cap && cap > INT32_MAX / 2 - n->n_in)) {
                    free(imp);
                    free(seen.slots);
                    st = oom();
                    goto done;
                }
                if (!added) continue;
                if (n_imp == cap) {
                    cap = cap ? cap * 2 : 8;
                    ir_value **p = realloc(imp, (size_t)cap * sizeof *p);
                    if (!p) {
                        free(imp);
                        free(seen.slots);
                        st = oom();
                        goto done;
                    }
                    imp = p;
                }
                imp[n_imp++] = o;
            }
        }
    }
    free(seen.slots);
    if (n_imp) {
        ir_value **in = kiln_arena_alloc(&im->m->arena,
                                         (size_t)(n->n_in + n_imp) * sizeof *in);
        if (!in) {
            free(imp);
            st = oom();
            goto done;
        }
        if (n->n_in) memcpy(in, n->in, (size_t)n->n_in * sizeof *in);
        memcpy(in + n->n_in, imp, (size_t)n_imp * sizeof *in);
        n->in = in;
        n->n_implicit = n_imp;
    }
    free(imp);
done:
    node_fields_free(&nf);
    return st;
}

/* ---- graphs */
static kiln_status parse_graph(importer *im, scope *parent, const uint8_t *p,
                               size_t n, ir_graph **out) {
    spans nodes = {0}, inits = {0}, inputs = {0}, outputs = {0}, vinfos = {0};
    scope sc = {0};
    kiln_status st = KILN_OK;
    char b[128], gl[160] = "graph"; /* graph label for warnings */
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    if (++im->depth > MAX_GRAPH_DEPTH) {
        st = BAD("subgraphs nested deeper than %d levels", MAX_GRAPH_DEPTH);
        goto done;
    }
    ir_graph *g = ir_graph_new(im->m, parent ? parent->g : NULL);
    if (!g) {
        st = oom();
        goto done;
    }
    *out = g;
    sc.g = g;
    sc.parent = parent;
    int n_shadow = 0;
    const char *first_shadow = NULL;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t m;
        spans *target = NULL;
        switch (f) {
        case ONNX_GRAPH_NODE: target = &nodes; break;
        case ONNX_GRAPH_INITIALIZER: target = &inits; break;
        case ONNX_GRAPH_INPUT: target = &inputs; break;
        case ONNX_GRAPH_OUTPUT: target = &outputs; break;
        case ONNX_GRAPH_VALUE_INFO: target = &vinfos; break;
        case ONNX_GRAPH_SPARSE_INITIALIZER:
            st = kiln_error(KILN_UNSUPPORTED, "sparse initializers are not "
                            "supported; convert them to dense initializers");
            goto done;
        case ONNX_GRAPH_NAME:
            if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
            if (!(g->name = dup_span(im, q, m))) goto nomem;
            continue;
        default:
            if (pb_skip(&r, wt)) goto bad;
            continue;
        }
        if (wt != PB_LEN || pb_bytes(&r, &q, &m)) goto bad;
        if (!spans_push(target, q, m)) goto nomem;
    }
    if (rc < 0) goto bad;
    if (parent) {
        char gb[128];
        snprintf(gl, sizeof gl, "subgraph '%s'",
                 safe_name(g->name ? g->name : "", gb, sizeof gb));
    }

    /* Initializers. */
    for (int k = 0; k < inits.n; k++) {
        kiln_tensor *t;
        st = add_tensor(im, inits.v[k].p, inits.v[k].n, &t);
        if (st) {
            kiln_error_prefix("initializer %d", k);
            goto done;
        }
        const char *name = t->name ? t->name : "";
        if (!name[0]) {
            st = BAD("initializer %d has no name", k);
            goto done;
        }
        ir_value *v = map_get(&sc.names, name);
        if (v) {
            /* onnxruntime keeps the last definition (and warns) */
            warnf(im, "%s: initializer '%s' is defined twice; the last definition is "
                  "used", gl, safe_name(name, b, sizeof b));
        } else if (!(v = ir_value_new(g, name)) || !map_put(&sc.names, v)) {
            goto nomem;
        }
        v->const_val = t;
        v->flags |= IR_VALUE_INITIALIZER;
        v->type.dtype = t->dtype;
        v->type.rank = t->rank;
        memcpy(v->type.dims, t->dims, sizeof t->dims);
    }
    /* Inputs (an input that names an initializer keeps its value). */
    if (inputs.n && !(g->inputs = kiln_arena_alloc(&im->m->arena,
                                                  (size_t)inputs.n * sizeof *g->inputs)))
        goto nomem;
    for (int k = 0; k < inputs.n; k++) {
        vinfo vi;
        st = parse_value_info(im, inputs.v[k], &vi);
        if (st) {
            kiln_error_prefix("graph input %d", k);
            goto done;
        }
        ir_value *v = map_get(&sc.names, vi.name);
        if (v && (v->flags & IR_VALUE_INITIALIZER)) {
            if (!n_shadow++) first_shadow = vi.name;
            continue;
        }
        if (v || !vi.name[0]) {
            st = BAD("graph input %d '%s' is %s", k, safe_name(vi.name, b, sizeof b),
                     vi.name[0] ? "declared twice" : "unnamed");
            goto done;
        }
        if (!vi.is_tensor) {
            st = kiln_error(KILN_UNSUPPORTED, "graph input '%s' has %s type; "
                            "Kiln supports tensor inputs only",
                            safe_name(vi.name, b, sizeof b), vi.kind);
            goto done;
        }
        if (!(v = ir_value_new(g, vi.name)) || !map_put(&sc.names, v)) goto nomem;
        if (vi.neg_dim)
            warnf(im, "%s: input '%s' has dim_value %lld; read as an unknown dim", gl,
                  safe_name(vi.name, b, sizeof b), (long long)vi.neg_dim);
        v->type = vi.type;
        v->flags |= IR_VALUE_INPUT;
        g->inputs[g->n_inputs++] = v;
    }
    /* Nodes: declare all outputs first so order in the file does not
    ** matter, then resolve inputs and attributes. */
    for (int k = 0; k < nodes.n; k++)
        if ((st = declare_node(im, &sc, nodes.v[k], k))) goto done;
    for (int k = 0; k < nodes.n; k++)
        if ((st = define_node(im, &sc, nodes.v[k], g->nodes[k]))) goto done;
    /* value_info is advisory (types are recomputed by inference), so what
    ** is wrong in it is warned about and ignored, as onnxruntime does. */
    for (int k = 0; k < vinfos.n; k++) {
        vinfo vi;
        if ((st = parse_value_info(im, vinfos.v[k], &vi))) {
            if (st == KILN_OUT_OF_MEMORY) goto done;
            warnf(im, "%s: value_info %d is ignored: %s", gl, k, kiln_last_error());
            st = KILN_OK;
            continue;
        }
        if (vi.neg_dim)
            warnf(im, "%s: value_info '%s' has dim_value %lld; read as an unknown dim",
                  gl, safe_name(vi.name, b, sizeof b), (long long)vi.neg_dim);
    }
    /* Outputs. */
    if (outputs.n && !(g->outputs = kiln_arena_alloc(&im->m->arena,
                                                    (size_t)outputs.n * sizeof *g->outputs)))
        goto nomem;
    for (int k = 0; k < outputs.n; k++) {
        vinfo vi;
        if ((st = parse_value_info(im, outputs.v[k], &vi))) {
            kiln_error_prefix("graph output %d", k);
            goto done;
        }
        if (!vi.is_tensor) {
            st = kiln_error(KILN_UNSUPPORTED, "graph output '%s' has %s type; "
                            "Kiln supports tensor outputs only",
                            safe_name(vi.name, b, sizeof b), vi.kind);
            goto done;
        }
        ir_value *v = vi.name[0] ? lookup(&sc, vi.name, &st) : NULL;
        if (st) goto done;
        if (!v) {
            st = BAD("graph output '%s' is not produced by any node, input or "
                     "initializer", safe_name(vi.name, b, sizeof b));
            goto done;
        }
        /* Declared output types are not used (inference computes them);
        ** the spec requires an element type, exporters sometimes omit it. */
        if (vi.neg_dim)
            warnf(im, "%s: output '%s' has dim_value %lld; read as an unknown dim", gl,
                  safe_name(vi.name, b, sizeof b), (long long)vi.neg_dim);
        if (vi.type.dtype == KILN_DTYPE_UNDEFINED)
            warnf(im, "%s: output '%s' declares no %s; it is inferred", gl,
                  safe_name(vi.name, b, sizeof b), vi.has_type ? "element type" : "type");
        v->flags |= IR_VALUE_OUTPUT;
        g->outputs[g->n_outputs++] = v;
    }
    st = ir_graph_toposort(g);
    if (st) goto done;
    /* before IR version 4 every initializer had to be a graph input */
    if (n_shadow && im->m->ir_version >= 4)
        warnf(im, "%s: %d graph input%s ('%s'%s) also ha%s an initializer; read as "
              "constant%s (onnxruntime lets a caller override them; Kiln does not)", gl,
              n_shadow, n_shadow > 1 ? "s" : "", safe_name(first_shadow, b, sizeof b),
              n_shadow > 1 ? " and others" : "", n_shadow > 1 ? "ve" : "s",
              n_shadow > 1 ? "s" : "");
    int n_unused = 0;
    const char *first_unused = NULL;
    for (int k = 0; k < g->n_values; k++) {
        const ir_value *v = g->values[k];
        if ((v->flags & IR_VALUE_INITIALIZER) && v->n_uses == 0 && !n_unused++)
            first_unused = v->name;
    }
    if (n_unused)
        warnf(im, "%s: %d initializer%s ('%s'%s) %s not used by any node; ignored", gl,
              n_unused, n_unused > 1 ? "s" : "", safe_name(first_unused, b, sizeof b),
              n_unused > 1 ? " and others" : "", n_unused > 1 ? "are" : "is");
    goto done;
bad:
    st = BAD("malformed graph");
    goto done;
nomem:
    st = oom();
done:
    im->depth--;
    free(nodes.v); free(inits.v); free(inputs.v); free(outputs.v); free(vinfos.v);
    free(sc.names.slots);
    return st;
}

kiln_status onnx_import(const uint8_t *data, size_t size, const char *dir,
                        const op_evaluator *eval, ir_model **out) {
    return onnx_import_ex(data, size, dir, eval, NULL, out);
}

kiln_status onnx_import_ex(const uint8_t *data, size_t size, const char *dir,
                           const op_evaluator *eval,
                           const onnx_warn_sink *warn, ir_model **out) {
    importer im = {0};
    im.warn = warn;
    kiln_status st = KILN_OK;
    pb_reader r = pb_init(data, size);
    uint32_t f;
    int wt, rc;
    const uint8_t *graph = NULL;
    size_t graph_n = 0;
    spans opsets = {0};
    bool have_ir = false;
    *out = NULL;
    ir_model *m = ir_model_new();
    if (!m) return oom();
    m->eval = eval;
    im.m = m;
    im.dir = dir;
    if (dir && !(m->dir = kiln_strdup(dir))) goto nomem;
    m->producer = m->producer_version = "";
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t n;
        uint64_t v;
        switch (f) {
        case ONNX_MODEL_IR_VERSION:
            if (wt != PB_VARINT || pb_varint(&r, &v)) goto bad;
            m->ir_version = (int64_t)v;
            have_ir = true;
            break;
        case ONNX_MODEL_PRODUCER_NAME: case ONNX_MODEL_PRODUCER_VERSION:
            if (wt != PB_LEN || pb_bytes(&r, &q, &n)) goto bad;
            if (f == ONNX_MODEL_PRODUCER_NAME) m->producer = dup_span(&im, q, n);
            else m->producer_version = dup_span(&im, q, n);
            if (!m->producer || !m->producer_version) goto nomem;
            break;
        case ONNX_MODEL_GRAPH:
            if (wt != PB_LEN || pb_bytes(&r, &graph, &graph_n)) goto bad;
            break;
        case ONNX_MODEL_OPSET_IMPORT:
            if (wt != PB_LEN || pb_bytes(&r, &q, &n)) goto bad;
            if (!spans_push(&opsets, q, n)) goto nomem;
            break;
        default:
            if (pb_skip(&r, wt)) goto bad;
        }
    }
    if (rc < 0) goto bad;
    if (!graph) {
        st = BAD("not an ONNX model: no graph found");
        goto fail;
    }
    if (!have_ir) {
        st = BAD("not an ONNX model: ir_version is missing");
        goto fail;
    }
    m->opsets = kiln_arena_alloc(&m->arena, ((size_t)opsets.n + 1) * sizeof *m->opsets);
    if (!m->opsets) goto nomem;
    for (int k = 0; k < opsets.n; k++) {
        pb_reader o = pb_init(opsets.v[k].p, opsets.v[k].n);
        ir_opset *os = &m->opsets[m->n_opsets++];
        os->domain = "";
        while ((rc = pb_next(&o, &f, &wt)) == 1) {
            const uint8_t *q;
            size_t n;
            uint64_t v;
            if (f == ONNX_OPSET_DOMAIN && wt == PB_LEN) {
                if (pb_bytes(&o, &q, &n)) goto bad;
                if (!(os->domain = dup_span(&im, q, n))) goto nomem;
            } else if (f == ONNX_OPSET_VERSION && wt == PB_VARINT) {
                if (pb_varint(&o, &v)) goto bad;
                os->version = (int64_t)KILN_MIN(v, (uint64_t)INT32_MAX);
            } else if (pb_skip(&o, wt)) {
                goto bad;
            }
        }
        if (rc < 0) goto bad;
        if (domain_is_onnx(os->domain)) m->opset = os->version;
    }
    /* A model of ai.onnx.ml, com.microsoft or preview operators alone: they are
    ** expanded into ai.onnx nodes, read at a fixed opset. */
    for (int k = 0; m->opset == 0 && k < m->n_opsets; k++)
        if (!strcmp(m->opsets[k].domain, "ai.onnx.ml") ||
            !strcmp(m->opsets[k].domain, "com.microsoft") ||
            !strcmp(m->opsets[k].domain, "ai.onnx.preview") ||
            !strcmp(m->opsets[k].domain, "ai.onnx.preview.training"))
            m->opset = 17;
    if (m->opset == 0) {
        if (m->n_opsets > 0) {
            char b[128];
            st = kiln_error(KILN_UNSUPPORTED, "the model imports only the "
                            "'%s' domain%s; Kiln implements ai.onnx",
                            safe_name(m->opsets[0].domain, b, sizeof b),
                            m->n_opsets > 1 ? " and others" : "");
            goto fail;
        }
        if (m->ir_version >= 3) {
            st = BAD("the model imports no ai.onnx opset (opset_import is "
                     "missing or has no entry for the default domain)");
            goto fail;
        }
        m->opset = 1;
    }
    if (m->opset < 1 || m->opset > 28) {
        st = kiln_error(KILN_UNSUPPORTED, "ai.onnx opset %lld is outside the "
                        "range Kiln supports (1 to 28)", (long long)m->opset);
        goto fail;
    }
    if ((st = parse_graph(&im, NULL, graph, graph_n, &m->graph))) goto fail;
    if ((st = onnx_contrib_expand(m->graph, m->opset))) goto fail;
    if ((st = ir_graph_infer(m->graph))) goto fail;
    free(opsets.v);
    *out = m;
    return KILN_OK;
bad:
    st = BAD("malformed model file (protobuf decoding failed)");
    goto fail;
nomem:
    st = oom();
fail:
    free(opsets.v);
    ir_model_free(m);
    return st;
}
