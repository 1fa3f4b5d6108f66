/* pb_mutator.c: a schema-free, protobuf-aware mutator for libFuzzer. It
** parses the input into a tree of wire-format fields (a length-delimited
** field whose bytes parse as a message becomes a submessage), edits the tree
** (values, names, op types, dims, duplicated/moved/deleted fields) and
** re-serializes it with correct lengths. Byte-level mutation alone mostly
** breaks the nesting; this keeps inputs well-formed enough to reach the
** importer's semantic checks, inference and load-time folding. */
#include "pb_mutator.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer's own byte mutator, for leaf payloads. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define MAX_NODES 16384
#define MAX_DEPTH 160

typedef struct pnode {
    uint32_t num;
    int wt;            /* 0 varint, 1 fixed64, 2 len, 5 fixed32 */
    uint64_t val;      /* varint and fixed values */
    const uint8_t *p;  /* leaf payload of a len field */
    size_t n;
    int child;         /* first field of the submessage, -1 if none */
    int next;          /* next sibling, -1 at the end */
    bool is_msg;
} pnode;

typedef struct tree {
    pnode *v;
    int n;
    long visits;       /* body_size work, to stop on a malformed tree */
    uint64_t rng;
    uint8_t *scratch;  /* arena for new leaf payloads */
    size_t scratch_n, scratch_cap;
} tree;

static uint64_t rnd(tree *t) {
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static size_t below(tree *t, size_t n) { return n ? (size_t)(rnd(t) % n) : 0; }

static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (int s = 0; s < 70; s += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int new_node(tree *t) {
    if (t->n >= MAX_NODES) return -1;
    pnode *x = &t->v[t->n];
    memset(x, 0, sizeof *x);
    x->child = x->next = -1;
    return t->n++;
}

/* Parses a message; returns its first field (-1 when empty), -2 on error. */
static int parse_msg(tree *t, const uint8_t *p, size_t n, int depth) {
    const uint8_t *end = p + n;
    int first = -1, last = -1;
    int mark = t->n;
    while (p < end) {
        uint64_t key;
        if (rd_varint(&p, end, &key)) goto bad;
        uint32_t num = (uint32_t)(key >> 3);
        int wt = (int)(key & 7);
        if (num == 0 || key >> 32) goto bad;
        int id = new_node(t);
        if (id < 0) goto bad;
        pnode *x = &t->v[id];
        x->num = num;
        x->wt = wt;
        if (wt == 0) {
            if (rd_varint(&p, end, &x->val)) goto bad;
        } else if (wt == 1 || wt == 5) {
            size_t k = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < k) goto bad;
            x->val = 0;
            for (size_t i = 0; i < k; i++) x->val |= (uint64_t)p[i] << (8 * i);
            p += k;
        } else if (wt == 2) {
            uint64_t len;
            if (rd_varint(&p, end, &len) || len > (uint64_t)(end - p)) goto bad;
            x->p = p;
            x->n = (size_t)len;
            p += len;
            if (len && depth < MAX_DEPTH) {
                int save = t->n;
                int c = parse_msg(t, x->p, x->n, depth + 1);
                x = &t->v[id];
                if (c >= -1) {
                    x->is_msg = true;
                    x->child = c;
                } else {
                    t->n = save;
                }
            }
        } else {
            goto bad;
        }
        if (last >= 0) t->v[last].next = id;
        else first = id;
        last = id;
    }
    return first;
bad:
    t->n = mark;
    return -2;
}

static size_t varint_len(uint64_t v) {
    size_t k = 1;
    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

static size_t body_size(const tree *t, int first, int depth);

static size_t field_size(const tree *t, int id, int depth) {
    const pnode *x = &t->v[id];
    size_t k = varint_len((uint64_t)x->num << 3 | (unsigned)x->wt);
    switch (x->wt) {
    case 0: return k + varint_len(x->val);
    case 1: return k + 8;
    case 5: return k + 4;
    default: {
        size_t b = x->is_msg ? body_size(t, x->child, depth + 1) : x->n;
        return k + varint_len(b) + b;
    }
    }
}

#define TOO_BIG ((size_t)1 << 40)

/* Serialized size of a field list. Mutations copy subtrees, never share
** them, so the tree is a tree; the visit bound is a safety net all the same
** (a mutator loop would hang libFuzzer, whose -timeout only covers runs). */
static size_t body_size(const tree *t, int first, int depth) {
    size_t s = 0;
    if (depth > MAX_DEPTH * 2) return TOO_BIG;
    for (int i = first; i >= 0; i = t->v[i].next) {
        if (++((tree *)t)->visits > 4L * MAX_NODES * (MAX_DEPTH + 1)) return TOO_BIG;
        s += field_size(t, i, depth);
        if (s >= TOO_BIG) return TOO_BIG;
    }
    return s;
}

/* Deep copy of field id (its subtree too); -1 when the pool is full. */
static int clone_field(tree *t, int id, int depth) {
    int c = new_node(t);
    if (c < 0 || depth > MAX_DEPTH) return -1;
    t->v[c] = t->v[id];
    t->v[c].next = -1;
    if (!t->v[id].is_msg) return c;
    int last = -1;
    t->v[c].child = -1;
    for (int k = t->v[id].child; k >= 0; k = t->v[k].next) {
        int kc = clone_field(t, k, depth + 1);
        if (kc < 0) return -1;
        if (last >= 0) t->v[last].next = kc;
        else t->v[c].child = kc;
        last = kc;
    }
    return c;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static uint8_t *write_body(const tree *t, int first, uint8_t *o, int depth) {
    for (int i = first; i >= 0; i = t->v[i].next) {
        const pnode *x = &t->v[i];
        o = put_varint(o, (uint64_t)x->num << 3 | (unsigned)x->wt);
        if (x->wt == 0) {
            o = put_varint(o, x->val);
        } else if (x->wt == 1 || x->wt == 5) {
            for (int k = 0; k < (x->wt == 1 ? 8 : 4); k++) *o++ = (uint8_t)(x->val >> (8 * k));
        } else if (x->is_msg) {
            o = put_varint(o, body_size(t, x->child, depth + 1));
            o = write_body(t, x->child, o, depth + 1);
        } else {
            o = put_varint(o, x->n);
            if (x->n) memcpy(o, x->p, x->n);
            o += x->n;
        }
    }
    return o;
}

static const char *const k_ops[] = {
#define KILN_OP(name) #name,
#include "../src/ops/op_list.h"
#undef KILN_OP
};

static const char *const k_words[] = {
    "axis", "axes", "keepdims", "perm", "pads", "strides", "kernel_shape",
    "dilations", "group", "alpha", "beta", "gamma", "transA", "transB", "to",
    "value", "value_float", "value_floats", "value_int", "value_ints",
    "then_branch", "else_branch", "body", "mode", "epsilon", "auto_pad",
    "SAME_UPPER", "VALID", "ceil_mode", "count_include_pad", "allowzero",
    "split", "num_outputs", "starts", "ends", "direction", "hidden_size",
    "activations", "layout", "output_padding", "output_shape", "blocksize",
    "batch_dims", "reduction", "noop_with_empty_axes", "select_last_index",
    "largest", "sorted", "k", "min", "max", "seed", "dtype", "equation",
    "coordinate_transformation_mode", "nearest_mode", "saturate",
    "stash_type", "training_mode", "location", "offset", "length", "", "x",
    "y", "ai.onnx", "com.microsoft", "N", "batch",
};

/* Interesting integers: dims, dtypes, axes, sizes at type limits. */
static uint64_t interesting(tree *t) {
    static const int64_t v[] = {0, 1, 2, 3, 7, 8, 16, 255, 256, 65535, 65536,
                                -1, -2, 12, 13, 24, 25, 26, 27, 100000,
                                1 << 20, (int64_t)1 << 31, (int64_t)1 << 32,
                                INT64_MAX, INT64_MIN, (int64_t)1 << 62,
                                INT32_MAX, INT32_MIN};
    if (rnd(t) & 1) return (uint64_t)v[below(t, sizeof v / sizeof v[0])];
    return below(t, 30);
}

static const uint8_t *keep_bytes(tree *t, const void *p, size_t n) {
    if (t->scratch_n + n > t->scratch_cap) return NULL;
    uint8_t *d = t->scratch + t->scratch_n;
    if (n) memcpy(d, p, n);
    t->scratch_n += n;
    return d;
}

/* Parent message of each node (-1: top level), and the list head link. */
static int parent_of(const tree *t, int id, int top) {
    for (int i = 0; i < t->n; i++)
        if (t->v[i].is_msg)
            for (int c = t->v[i].child; c >= 0; c = t->v[c].next)
                if (c == id) return i;
    (void)top;
    return -1;
}

static void unlink_node(tree *t, int *top, int id) {
    int par = parent_of(t, id, *top);
    int *head = par >= 0 ? &t->v[par].child : top;
    for (int *l = head; *l >= 0; l = &t->v[*l].next)
        if (*l == id) {
            *l = t->v[id].next;
            t->v[id].next = -1;
            return;
        }
}

static void insert_into(tree *t, int *top, int msg, int id) {
    int *head = msg >= 0 ? &t->v[msg].child : top;
    size_t len = 0;
    for (int c = *head; c >= 0; c = t->v[c].next) len++;
    size_t pos = below(t, len + 1);
    int *l = head;
    while (pos-- && *l >= 0) l = &t->v[*l].next;
    t->v[id].next = *l;
    *l = id;
}

/* A random leaf string already in the input (value names, mostly). */
static int random_leaf(tree *t) {
    for (int tries = 0; tries < 32; tries++) {
        int i = (int)below(t, (size_t)t->n);
        if (t->v[i].wt == 2 && !t->v[i].is_msg && t->v[i].n && t->v[i].n < 64) return i;
    }
    return -1;
}

/* Whether m lies inside id's subtree (copying id into m would loop). */
static bool inside(const tree *t, int id, int m, int depth) {
    if (id == m) return true;
    if (!t->v[id].is_msg || depth > MAX_DEPTH) return depth > MAX_DEPTH;
    for (int c = t->v[id].child; c >= 0; c = t->v[c].next)
        if (inside(t, c, m, depth + 1)) return true;
    return false;
}

static int random_msg(tree *t) {
    for (int tries = 0; tries < 32; tries++) {
        int i = (int)below(t, (size_t)t->n);
        if (t->v[i].is_msg) return i;
    }
    return -1;
}

static void mutate_once(tree *t, int *top) {
    if (!t->n) return;
    int id = (int)below(t, (size_t)t->n);
    pnode *x = &t->v[id];
    switch (below(t, 9)) {
    case 0: /* a value: ints, dims, dtypes, attribute types */
        if (x->wt == 0) x->val = interesting(t);
        else if (x->wt == 5) x->val = (uint32_t)rnd(t) & (rnd(t) & 1 ? 0xffffffffu : 0x7fc00000u);
        else if (x->wt == 1) x->val = rnd(t);
        else if (!x->is_msg) x->n = x->n ? below(t, x->n) : 0; /* truncate */
        break;
    case 1: { /* a string: op type, attribute name, another value name */
        if (x->wt != 2 || x->is_msg) break;
        const char *w;
        size_t r = below(t, 3);
        if (r == 0) w = k_ops[below(t, sizeof k_ops / sizeof k_ops[0])];
        else if (r == 1) w = k_words[below(t, sizeof k_words / sizeof k_words[0])];
        else {
            int l = random_leaf(t);
            if (l < 0) break;
            x->p = t->v[l].p;
            x->n = t->v[l].n;
            break;
        }
        const uint8_t *d = keep_bytes(t, w, strlen(w));
        if (d) {
            x->p = d;
            x->n = strlen(w);
        }
        break;
    }
    case 2: { /* byte-level edit inside a leaf payload */
        if (x->wt != 2 || x->is_msg) break;
        size_t cap = x->n + 16;
        if (t->scratch_n + cap > t->scratch_cap) break;
        uint8_t *d = t->scratch + t->scratch_n;
        if (x->n) memcpy(d, x->p, x->n);
        size_t m = LLVMFuzzerMutate(d, x->n, cap);
        t->scratch_n += cap;
        x->p = d;
        x->n = m;
        break;
    }
    case 3: /* delete a field */
        unlink_node(t, top, id);
        break;
    case 4: { /* duplicate a field next to itself */
        int c = clone_field(t, id, 0);
        if (c < 0) break;
        t->v[c].next = t->v[id].next;
        t->v[id].next = c;
        break;
    }
    case 5: { /* copy a field into another message: nodes into subgraphs,
              ** attributes onto other nodes, initializers elsewhere */
        int m = random_msg(t);
        if (m < 0 || inside(t, id, m, 0)) break;
        int c = clone_field(t, id, 0);
        if (c < 0) break;
        insert_into(t, top, m, c);
        break;
    }
    case 6: { /* swap two leaf strings: rewires value names */
        int a = random_leaf(t), b = random_leaf(t);
        if (a < 0 || b < 0) break;
        const uint8_t *p = t->v[a].p;
        size_t n = t->v[a].n;
        t->v[a].p = t->v[b].p;
        t->v[a].n = t->v[b].n;
        t->v[b].p = p;
        t->v[b].n = n;
        break;
    }
    case 7: /* renumber a field nearby: input<->output, dims<->data_type */
        if (x->num > 1 && (rnd(t) & 1)) x->num--;
        else if (x->num < 30) x->num++;
        break;
    default: { /* move a field to the end of its list (order changes) */
        int par = parent_of(t, id, *top);
        unlink_node(t, top, id);
        int *l = par >= 0 ? &t->v[par].child : top;
        while (*l >= 0) l = &t->v[*l].next;
        *l = id;
        break;
    }
    }
}

size_t kiln_pb_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    tree t = {0};
    size_t out = 0;
    t.rng = (uint64_t)seed * 0x9e3779b97f4a7c15ull + 1;
    t.v = malloc(MAX_NODES * sizeof *t.v);
    t.scratch_cap = 4096;
    t.scratch = malloc(t.scratch_cap);
    uint8_t *copy = malloc(size ? size : 1);
    if (!t.v || !t.scratch || !copy) goto done;
    memcpy(copy, data, size); /* leaves point into the copy, data is rewritten */
    int top = parse_msg(&t, copy, size, 0);
    if (top < -1 || t.n == 0) goto done;
    int rounds = 1 + (int)below(&t, 3);
    for (int r = 0; r < rounds; r++) mutate_once(&t, &top);
    t.visits = 0;
    size_t need = body_size(&t, top, 0);
    if (need > max_size) goto done;
    t.visits = 0;
    out = (size_t)(write_body(&t, top, data, 0) - data);
done:
    free(t.v);
    free(t.scratch);
    free(copy);
    return out;
}
