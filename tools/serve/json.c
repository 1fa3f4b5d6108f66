/* json.c: JSON reading into an arena-backed tree and JSON writing. Every
** read is bounds-checked against the input length; the input need not be
** NUL-terminated. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct jblock {
    struct jblock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} jblock;

struct jdoc {
    jblock *blocks;
    jv *root;
};

typedef struct jparser {
    const char *p, *end, *start;
    jdoc *doc;
    char *err;
    size_t errlen;
    bool failed;
} jparser;

static void *arena_alloc(jdoc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    jblock *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = d->blocks;
        d->blocks = b;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

static void fail(jparser *ps, const char *what) {
    if (ps->failed) return;
    ps->failed = true;
    if (ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "malformed JSON at byte %zu: %s",
                 (size_t)(ps->p - ps->start), what);
}

static void skip_ws(jparser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static jv *new_node(jparser *ps, jv_kind k) {
    jv *v = arena_alloc(ps->doc, sizeof *v);
    if (!v) {
        fail(ps, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->kind = k;
    return v;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(jparser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) return false;
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return true;
}

/* Decodes a string literal (ps->p at the opening quote). Output is never
** longer than the input, so one allocation of the raw length suffices. */
static const char *parse_string(jparser *ps, size_t *len_out) {
    ps->p++;
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) {
        fail(ps, "unterminated string");
        return NULL;
    }
    char *out = arena_alloc(ps->doc, (size_t)(q - ps->p) + 1);
    if (!out) {
        fail(ps, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (ps->p < q) {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            fail(ps, "control character in string");
            return NULL;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!read_hex4(ps, &cp) || ps->p > q) {
                fail(ps, "bad \\u escape");
                return NULL;
            }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (q - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    ps->p += 2;
                    if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        fail(ps, "bad surrogate pair");
                        return NULL;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    fail(ps, "lone surrogate");
                    return NULL;
                }
            }
            /* 6 escaped bytes become at most 4 UTF-8 bytes: stays in bounds. */
            if (cp < 0x80) out[n++] = (char)cp;
            else if (cp < 0x800) {
                out[n++] = (char)(0xC0 | cp >> 6);
                out[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[n++] = (char)(0xE0 | cp >> 12);
                out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
                out[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[n++] = (char)(0xF0 | cp >> 18);
                out[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
                out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
                out[n++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            fail(ps, "bad escape");
            return NULL;
        }
    }
    ps->p = q + 1;
    out[n] = 0;
    *len_out = n;
    return out;
}

static jv *parse_value(jparser *ps, int depth);

static jv *parse_number(jparser *ps) {
    const char *s = ps->p;
    bool integral = true;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    const char *digits = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p == digits) {
        fail(ps, "bad number");
        return NULL;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integral = false;
        ps->p++;
        const char *f = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
        if (ps->p == f) {
            fail(ps, "bad fraction");
            return NULL;
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        const char *x = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
        if (ps->p == x) {
            fail(ps, "bad exponent");
            return NULL;
        }
    }
    size_t n = (size_t)(ps->p - s);
    if (n > 400) {
        fail(ps, "number too long");
        return NULL;
    }
    char buf[401];
    memcpy(buf, s, n);
    buf[n] = 0;
    jv *v = new_node(ps, JV_NUM);
    if (!v) return NULL;
    v->num = strtod(buf, NULL);
    if (integral && n <= 19) {
        v->i = strtoll(buf, NULL, 10);
        v->is_int = true;
    } else if (integral) {
        /* 20 digits may overflow int64: only keep it when strtoll agrees. */
        char *endp;
        long long x = strtoll(buf, &endp, 10);
        if ((double)x == v->num && x != INT64_MAX && x != INT64_MIN) {
            v->i = x;
            v->is_int = true;
        }
    }
    return v;
}

static bool lit(jparser *ps, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n)) return false;
    ps->p += n;
    return true;
}

static jv *parse_container(jparser *ps, int depth, bool obj) {
    jv *v = new_node(ps, obj ? JV_OBJ : JV_ARR);
    if (!v) return NULL;
    ps->p++;
    jv **tail = &v->child;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
        ps->p++;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        skip_ws(ps);
        if (obj) {
            size_t kl;
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, "expected a key");
                return NULL;
            }
            if (!(key = parse_string(ps, &kl))) return NULL;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected ':'");
                return NULL;
            }
            ps->p++;
        }
        jv *c = parse_value(ps, depth + 1);
        if (!c) return NULL;
        c->key = key;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
            return v;
        }
        fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        return NULL;
    }
}

static jv *parse_value(jparser *ps, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting deeper than 64");
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end");
        return NULL;
    }
    char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
    if (c == '"') {
        jv *v = new_node(ps, JV_STR);
        if (!v) return NULL;
        v->s = parse_string(ps, &v->len);
        return v->s ? v : NULL;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    jv *v = NULL;
    if (lit(ps, "true")) {
        if ((v = new_node(ps, JV_BOOL))) v->b = true;
    } else if (lit(ps, "false")) {
        v = new_node(ps, JV_BOOL);
    } else if (lit(ps, "null")) {
        v = new_node(ps, JV_NULL);
    } else if (lit(ps, "NaN")) {
        if ((v = new_node(ps, JV_NUM))) v->num = NAN;
    } else if (lit(ps, "Infinity")) {
        if ((v = new_node(ps, JV_NUM))) v->num = INFINITY;
    } else if (lit(ps, "-Infinity")) {
        if ((v = new_node(ps, JV_NUM))) v->num = -INFINITY;
    } else {
        fail(ps, "unexpected character");
    }
    return v;
}

jdoc *json_parse(const char *text, size_t len, char *err, size_t errlen) {
    jdoc *d = calloc(1, sizeof *d);
    if (!d) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    jparser ps = {text, text + len, text, d, err, errlen, false};
    if (!text) ps.p = ps.end = ps.start = "";
    d->root = parse_value(&ps, 0);
    if (d->root) {
        skip_ws(&ps);
        if (ps.p != ps.end) fail(&ps, "trailing bytes after the document");
    }
    if (ps.failed || !d->root) {
        if (!ps.failed) fail(&ps, "empty document");
        json_free(d);
        return NULL;
    }
    return d;
}

const jv *json_root(const jdoc *d) { return d ? d->root : NULL; }

void json_free(jdoc *d) {
    if (!d) return;
    for (jblock *b = d->blocks; b;) {
        jblock *n = b->next;
        free(b);
        b = n;
    }
    free(d);
}

const jv *json_get(const jv *obj, const char *key) {
    if (!obj || obj->kind != JV_OBJ) return NULL;
    for (const jv *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key)) return c;
    return NULL;
}

/* ---- writing */
void sb_init(sbuf *b) { memset(b, 0, sizeof *b); }
void sb_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static bool sb_reserve(sbuf *b, size_t extra) {
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void sb_put(sbuf *b, const void *data, size_t n) {
    if (!sb_reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_put(b, p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

void sb_json_num(sbuf *b, double v) {
    if (isnan(v)) sb_str(b, "NaN");
    else if (isinf(v)) sb_str(b, v > 0 ? "Infinity" : "-Infinity");
    else sb_printf(b, "%.9g", v);
}
