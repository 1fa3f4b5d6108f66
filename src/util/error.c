/* error.c: per-thread last-error message and status names. */
#include "common.h"

#include <stdio.h>

static _Thread_local char g_msg[2048];

size_t kiln_max_alloc = (size_t)1 << 34;

kiln_status kiln_verror(kiln_status s, const char *fmt, va_list ap) {
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    return s;
}

kiln_status kiln_error(kiln_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    kiln_verror(s, fmt, ap);
    va_end(ap);
    return s;
}

void kiln_error_prefix(const char *fmt, ...) {
    char pre[1024], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t k = strlen(pre);
    if (k > sizeof g_msg - 3) k = sizeof g_msg - 3;
    memcpy(g_msg, pre, k);
    g_msg[k] = ':';
    g_msg[k + 1] = ' ';
    size_t rest = strlen(old);
    if (rest > sizeof g_msg - k - 3) rest = sizeof g_msg - k - 3;
    memcpy(g_msg + k + 2, old, rest);
    g_msg[k + 2 + rest] = 0;
}

void kiln_error_clear(void) { g_msg[0] = 0; }

const char *kiln_last_error(void) { return g_msg; }

const char *kiln_status_name(kiln_status s) {
    switch (s) {
    case KILN_OK: return "ok";
    case KILN_INVALID_ARGUMENT: return "invalid argument";
    case KILN_INVALID_MODEL: return "invalid model";
    case KILN_UNSUPPORTED: return "unsupported";
    case KILN_INCOMPATIBLE_ENGINE: return "incompatible engine";
    case KILN_CORRUPT_ENGINE: return "corrupt engine";
    case KILN_OUT_OF_MEMORY: return "out of memory";
    case KILN_IO_ERROR: return "i/o error";
    case KILN_DEVICE_ERROR: return "device error";
    case KILN_TIMEOUT: return "timeout";
    case KILN_RUNTIME_ERROR: return "runtime error";
    case KILN_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *kiln_version(void) { return KILN_VERSION_STRING; }

void *kiln_aligned_alloc(size_t size) {
    void *p = NULL;
    if (size == 0) size = 1;
    if (size > KILN_MAX_ALLOC) return NULL;
    size = (size + 63) & ~(size_t)63;
    p = aligned_alloc(64, size);
    return p;
}

void kiln_aligned_free(void *p) { free(p); }

char *kiln_strndup(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

char *kiln_strdup(const char *s) { return kiln_strndup(s, strlen(s)); }
