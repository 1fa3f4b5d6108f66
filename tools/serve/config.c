/* config.c: a protobuf text-format reader (fields, nested messages, lists,
** comments, quoted strings) into a small tree, then the extraction of the
** config.pbtxt fields `kiln serve` uses. */
#include "config.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_MAX_DEPTH 32
#define PB_MAX_NODES 100000

typedef struct pnode {
    char name[SERVE_NAME_MAX];
    bool msg;
    char value[SERVE_NAME_MAX];   /* scalars (longer values are refused) */
    struct pnode *child, *next;
} pnode;

typedef struct ptext {
    const char *p, *end;
    int line;
    int nodes;
    char *err;
    size_t errlen;
    bool failed;
} ptext;

static void pfail(ptext *t, const char *what) {
    if (t->failed) return;
    t->failed = true;
    snprintf(t->err, t->errlen, "config.pbtxt line %d: %s", t->line, what);
}

static void pskip(ptext *t) {
    while (t->p < t->end) {
        char c = *t->p;
        if (c == '\n') {
            t->line++;
            t->p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == ',' || c == ';') {
            t->p++;   /* separators between fields are optional */
        } else if (c == '#') {
            while (t->p < t->end && *t->p != '\n') t->p++;
        } else {
            break;
        }
    }
}

static bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '+';
}

/* An identifier, number or quoted string into out. */
static bool ptoken(ptext *t, char *out, size_t cap) {
    pskip(t);
    size_t n = 0;
    if (t->p < t->end && (*t->p == '"' || *t->p == '\'')) {
        char q = *t->p++;
        while (t->p < t->end && *t->p != q) {
            char c = *t->p++;
            if (c == '\n') return pfail(t, "newline in string"), false;
            if (c == '\\' && t->p < t->end) c = *t->p++;
            if (n + 1 >= cap) return pfail(t, "string too long"), false;
            out[n++] = c;
        }
        if (t->p >= t->end) return pfail(t, "unterminated string"), false;
        t->p++;
    } else {
        while (t->p < t->end && is_ident(*t->p)) {
            if (n + 1 >= cap) return pfail(t, "token too long"), false;
            out[n++] = *t->p++;
        }
        if (!n) return pfail(t, "expected a value"), false;
    }
    out[n] = 0;
    return true;
}

static void pfree(pnode *n) {
    while (n) {
        pnode *next = n->next;
        pfree(n->child);
        free(n);
        n = next;
    }
}

static pnode *pnew(ptext *t, const char *name) {
    if (++t->nodes > PB_MAX_NODES) return pfail(t, "too many fields"), NULL;
    pnode *n = calloc(1, sizeof *n);
    if (!n) return pfail(t, "out of memory"), NULL;
    snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

static pnode *pfields(ptext *t, int depth, char close);

/* Value(s) of field `name` appended at *tail. */
static bool pvalue(ptext *t, const char *name, int depth, pnode ***tail) {
    pskip(t);
    if (t->p < t->end && (*t->p == '{' || *t->p == '<')) {
        char close = *t->p == '{' ? '}' : '>';
        t->p++;
        pnode *n = pnew(t, name);
        if (!n) return false;
        n->msg = true;
        **tail = n;
        *tail = &n->next;
        n->child = pfields(t, depth + 1, close);
        return !t->failed;
    }
    pnode *n = pnew(t, name);
    if (!n) return false;
    **tail = n;
    *tail = &n->next;
    return ptoken(t, n->value, sizeof n->value);
}

static pnode *pfields(ptext *t, int depth, char close) {
    if (depth > PB_MAX_DEPTH) return pfail(t, "nesting too deep"), NULL;
    pnode *head = NULL, **tail = &head;
    for (;;) {
        pskip(t);
        if (t->p >= t->end) {
            if (close) pfail(t, "missing closing brace");
            break;
        }
        if (*t->p == close) {
            t->p++;
            break;
        }
        char name[SERVE_NAME_MAX];
        if (!ptoken(t, name, sizeof name)) break;
        pskip(t);
        if (t->p < t->end && *t->p == ':') t->p++;
        pskip(t);
        if (t->p < t->end && *t->p == '[') {
            t->p++;
            for (;;) {
                pskip(t);
                if (t->p < t->end && *t->p == ']') {
                    t->p++;
                    break;
                }
                if (t->p >= t->end) {
                    pfail(t, "missing ']'");
                    break;
                }
                if (!pvalue(t, name, depth, &tail)) break;
            }
        } else {
            pvalue(t, name, depth, &tail);
        }
        if (t->failed) break;
    }
    return head;
}

static bool to_i64(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end) return false;
    *out = v;
    return true;
}

#define CBAD(...)                                 \
    do {                                          \
        snprintf(err, errlen, __VA_ARGS__);       \
        goto fail;                                \
    } while (0)

static int int_field(const pnode *n, int64_t lo, int64_t hi, int64_t *out, char *err, size_t errlen) {
    if (n->msg || !to_i64(n->value, out) || *out < lo || *out > hi) {
        snprintf(err, errlen, "config.pbtxt: '%s' must be an integer in %lld..%lld, got '%s'",
                 n->name, (long long)lo, (long long)hi, n->msg ? "{...}" : n->value);
        return -1;
    }
    return 0;
}

static int tensor_cfg(const pnode *m, serve_tensor_cfg *tc, char *err, size_t errlen) {
    memset(tc, 0, sizeof *tc);
    tc->rank = -1;
    for (const pnode *f = m->child; f; f = f->next) {
        if (!strcmp(f->name, "name") && !f->msg) {
            snprintf(tc->name, sizeof tc->name, "%s", f->value);
        } else if (!strcmp(f->name, "data_type") && !f->msg) {
            const char *v = f->value;
            if (strncmp(v, "TYPE_", 5)) {
                snprintf(err, errlen, "config.pbtxt: data_type '%s' is not TYPE_*", v);
                return -1;
            }
            v += 5;
            tc->dtype = !strcmp(v, "STRING") ? KILN_DTYPE_UNDEFINED : serve_dtype_parse(v);
            if (!strcmp(v, "FP16")) tc->dtype = KILN_DTYPE_FLOAT16;
            if (!tc->dtype) {
                snprintf(err, errlen, "config.pbtxt: data_type '%s' is not supported", f->value);
                return -1;
            }
        } else if (!strcmp(f->name, "dims")) {
            int64_t d;
            if (tc->rank < 0) tc->rank = 0;
            if (tc->rank >= KILN_MAX_RANK) {
                snprintf(err, errlen, "config.pbtxt: tensor '%s' has too many dims", tc->name);
                return -1;
            }
            if (int_field(f, -1, INT64_MAX / 2, &d, err, errlen)) return -1;
            tc->dims[tc->rank++] = d;
        }
    }
    if (!tc->name[0]) {
        snprintf(err, errlen, "config.pbtxt: an input or output has no name");
        return -1;
    }
    return 0;
}

/* optimization { execution_accelerators { gpu_execution_accelerator : [
**   { name : "tensorrt" parameters { key : "precision_mode" value : "FP16" } } ] } }
** Kiln builds the engine itself, so "tensorrt" and "kiln" mean the same. */
static int gpu_accelerators(const pnode *opt, serve_model_config *c, char *err, size_t errlen) {
    for (const pnode *ea = opt->child; ea; ea = ea->next) {
        if (strcmp(ea->name, "execution_accelerators") || !ea->msg) continue;
        for (const pnode *g = ea->child; g; g = g->next) {
            if (strcmp(g->name, "gpu_execution_accelerator") || !g->msg) continue;
            const char *name = "";
            for (const pnode *h = g->child; h; h = h->next)
                if (!strcmp(h->name, "name") && !h->msg) name = h->value;
            if (strcmp(name, "tensorrt") && strcmp(name, "kiln")) {
                snprintf(err, errlen, "config.pbtxt: gpu_execution_accelerator '%s' is not "
                         "supported (use \"tensorrt\" or \"kiln\": Kiln builds the engine)", name);
                return -1;
            }
            for (const pnode *h = g->child; h; h = h->next) {
                if (strcmp(h->name, "parameters") || !h->msg) continue;
                const char *key = "", *val = "";
                for (const pnode *k = h->child; k; k = k->next) {
                    if (!strcmp(k->name, "key") && !k->msg) key = k->value;
                    if (!strcmp(k->name, "value") && !k->msg) val = k->value;
                }
                if (strcmp(key, "precision_mode")) continue; /* others: TensorRT's own */
                if (!strcmp(val, "FP32")) c->gpu_precision = KILN_PRECISION_FP32;
                else if (!strcmp(val, "FP16")) c->gpu_precision = KILN_PRECISION_FP16;
                else if (!strcmp(val, "BF16")) c->gpu_precision = KILN_PRECISION_BF16;
                else {
                    snprintf(err, errlen, "config.pbtxt: precision_mode '%s' is not "
                             "supported (FP32, FP16 or BF16)", val);
                    return -1;
                }
            }
        }
    }
    return 0;
}

void serve_config_defaults(serve_model_config *c) {
    memset(c, 0, sizeof *c);
    c->max_batch_size = -1;
    c->instance_count = 1;
    c->policy = SERVE_POLICY_LATEST;
    c->latest_n = 1;
    c->pad_batches = -1;
}

int serve_config_parse(const char *text, size_t len, serve_model_config *c, char *err,
                       size_t errlen) {
    serve_config_defaults(c);
    ptext t = {text ? text : "", (text ? text : "") + (text ? len : 0), 1, 0, err, errlen, false};
    pnode *root = pfields(&t, 0, 0);
    if (t.failed) {
        pfree(root);
        return -1;
    }
    int64_t v;
    int instances = 0;
    bool any_group = false;
    for (const pnode *f = root; f; f = f->next) {
        if (!strcmp(f->name, "name") && !f->msg) {
            snprintf(c->name, sizeof c->name, "%s", f->value);
        } else if ((!strcmp(f->name, "platform") || !strcmp(f->name, "backend")) && !f->msg) {
            snprintf(c->platform, sizeof c->platform, "%s", f->value);
        } else if (!strcmp(f->name, "max_batch_size")) {
            if (int_field(f, 0, 1 << 16, &v, err, errlen)) goto fail;
            c->max_batch_size = (int)v;
        } else if (!strcmp(f->name, "input") || !strcmp(f->name, "output")) {
            bool in = f->name[0] == 'i';
            int *n = in ? &c->n_inputs : &c->n_outputs;
            if (!f->msg) CBAD("config.pbtxt: '%s' must be a message", f->name);
            if (*n >= SERVE_CFG_MAX_IO) CBAD("config.pbtxt: too many %ss", f->name);
            if (tensor_cfg(f, in ? &c->inputs[*n] : &c->outputs[*n], err, errlen)) goto fail;
            (*n)++;
        } else if (!strcmp(f->name, "dynamic_batching") && f->msg) {
            c->dynamic_batching = true;
            for (const pnode *g = f->child; g; g = g->next) {
                if (!strcmp(g->name, "preferred_batch_size")) {
                    if (c->n_preferred >= KILN_BATCHER_MAX_PREFERRED)
                        CBAD("config.pbtxt: too many preferred_batch_size values");
                    if (int_field(g, 1, 1 << 16, &v, err, errlen)) goto fail;
                    c->preferred[c->n_preferred++] = (int)v;
                } else if (!strcmp(g->name, "max_queue_delay_microseconds")) {
                    if (int_field(g, 0, 60000000, &v, err, errlen)) goto fail;
                    c->max_queue_delay_us = v;
                } else if (!strcmp(g->name, "default_queue_policy") && g->msg) {
                    for (const pnode *h = g->child; h; h = h->next) {
                        if (!strcmp(h->name, "max_queue_size")) {
                            if (int_field(h, 0, 1 << 20, &v, err, errlen)) goto fail;
                            c->max_queue_size = (int)v;
                        } else if (!strcmp(h->name, "default_timeout_microseconds")) {
                            if (int_field(h, 0, INT64_MAX / 2, &v, err, errlen)) goto fail;
                            c->default_timeout_us = v;
                        }
                    }
                }
            }
        } else if (!strcmp(f->name, "instance_group") && f->msg) {
            any_group = true;
            int count = 1;
            serve_device kind = SERVE_DEVICE_AUTO;
            for (const pnode *g = f->child; g; g = g->next) {
                if (!strcmp(g->name, "count")) {
                    if (int_field(g, 1, 256, &v, err, errlen)) goto fail;
                    count = (int)v;
                } else if (!strcmp(g->name, "kind") && !g->msg) {
                    if (!strcmp(g->value, "KIND_GPU")) kind = SERVE_DEVICE_GPU;
                    else if (!strcmp(g->value, "KIND_CPU")) kind = SERVE_DEVICE_CPU;
                    else if (strcmp(g->value, "KIND_AUTO"))
                        CBAD("config.pbtxt: instance_group kind '%s' is not supported "
                             "(KIND_GPU, KIND_CPU or KIND_AUTO)", g->value);
                }
            }
            if (kind != SERVE_DEVICE_AUTO && c->device != SERVE_DEVICE_AUTO && kind != c->device)
                CBAD("config.pbtxt: instance groups of KIND_GPU and KIND_CPU in one model are "
                     "not supported (one engine serves a model)");
            if (kind != SERVE_DEVICE_AUTO) c->device = kind;
            instances += count;
        } else if (!strcmp(f->name, "optimization") && f->msg) {
            if (gpu_accelerators(f, c, err, errlen)) goto fail;
        } else if (!strcmp(f->name, "version_policy") && f->msg) {
            for (const pnode *g = f->child; g; g = g->next) {
                if (!strcmp(g->name, "all")) {
                    c->policy = SERVE_POLICY_ALL;
                } else if (!strcmp(g->name, "latest") && g->msg) {
                    c->policy = SERVE_POLICY_LATEST;
                    for (const pnode *h = g->child; h; h = h->next)
                        if (!strcmp(h->name, "num_versions")) {
                            if (int_field(h, 1, SERVE_CFG_MAX_VERSIONS, &v, err, errlen)) goto fail;
                            c->latest_n = (int)v;
                        }
                } else if (!strcmp(g->name, "specific") && g->msg) {
                    c->policy = SERVE_POLICY_SPECIFIC;
                    for (const pnode *h = g->child; h; h = h->next)
                        if (!strcmp(h->name, "versions")) {
                            if (c->n_specific >= SERVE_CFG_MAX_VERSIONS)
                                CBAD("config.pbtxt: too many specific versions");
                            if (int_field(h, 0, INT64_MAX / 2, &v, err, errlen)) goto fail;
                            c->specific[c->n_specific++] = v;
                        }
                }
            }
        } else if (!strcmp(f->name, "parameters") && f->msg) {
            /* parameters { key: "kiln_pad_batches" value: { string_value: "true" } } */
            const char *key = "", *val = "";
            for (const pnode *g = f->child; g; g = g->next) {
                if (!strcmp(g->name, "key") && !g->msg) key = g->value;
                if (!strcmp(g->name, "value") && g->msg)
                    for (const pnode *h = g->child; h; h = h->next)
                        if (!strcmp(h->name, "string_value") && !h->msg) val = h->value;
            }
            if (!strcmp(key, "kiln_pad_batches")) {
                if (!strcmp(val, "true")) c->pad_batches = 1;
                else if (!strcmp(val, "false")) c->pad_batches = 0;
                else CBAD("config.pbtxt: parameter kiln_pad_batches is '%s' (true or false)", val);
            }
        } else if (!strcmp(f->name, "model_warmup") && f->msg) {
            int bs = 1;
            for (const pnode *g = f->child; g; g = g->next)
                if (!strcmp(g->name, "batch_size")) {
                    if (int_field(g, 0, 1 << 16, &v, err, errlen)) goto fail;
                    bs = (int)v;
                }
            if (c->n_warmup < SERVE_CFG_MAX_WARMUP) c->warmup_batch[c->n_warmup++] = bs;
        }
    }
    if (any_group) c->instance_count = instances;
    pfree(root);
    return 0;
fail:
    pfree(root);
    return -1;
}
