/* json.h: a small JSON reader (DOM over an arena, bounded depth and size)
** and a growable string buffer for writing JSON, used by `kiln serve`. */
#ifndef KILN_SERVE_JSON_H
#define KILN_SERVE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jv_kind { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind;

typedef struct jv {
    jv_kind kind;
    bool b;
    bool is_int;          /* a number written without fraction/exponent that fits int64 */
    int64_t i;
    double num;
    const char *s;        /* JV_STR: decoded, NUL-terminated */
    size_t len;           /* JV_STR: bytes; JV_ARR/JV_OBJ: members */
    const char *key;      /* member of an object: its key */
    struct jv *child, *next;
} jv;

typedef struct jdoc jdoc;

/* Parses text[0..len). On failure returns NULL and writes a message (with
** the byte offset) to err. Nesting is limited to 64 levels. */
jdoc *json_parse(const char *text, size_t len, char *err, size_t errlen);
const jv *json_root(const jdoc *d);
void json_free(jdoc *d);
/* Member of an object by key (first match), or NULL. */
const jv *json_get(const jv *obj, const char *key);

/* ---- writing */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;             /* an append failed; the content is truncated */
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_put(sbuf *b, const void *data, size_t n);
void sb_str(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s as a JSON string literal (quotes included). */
void sb_json_str(sbuf *b, const char *s);
/* A double as JSON (NaN/Infinity as Python's json writes them). */
void sb_json_num(sbuf *b, double v);

#endif
