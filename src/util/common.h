/* common.h: macros and helpers shared by every part of the library. */
#ifndef KILN_COMMON_H
#define KILN_COMMON_H

#include "kiln.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Kiln assumes a little-endian host"
#endif

#define KILN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KILN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KILN_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define KILN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KILN_PRINTF(f, a)
#endif

/* Records a message for kiln_last_error() on this thread and returns s. */
kiln_status kiln_error(kiln_status s, const char *fmt, ...) KILN_PRINTF(2, 3);
kiln_status kiln_verror(kiln_status s, const char *fmt, va_list ap);
/* Prefixes the current thread's message with "prefix: ". */
void kiln_error_prefix(const char *fmt, ...) KILN_PRINTF(1, 2);
void kiln_error_clear(void);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool kiln_mul_overflow(size_t a, size_t b, size_t *r) {
    return __builtin_mul_overflow(a, b, r);
}
static inline bool kiln_add_overflow(size_t a, size_t b, size_t *r) {
    return __builtin_add_overflow(a, b, r);
}

/* Largest single allocation Kiln makes for a tensor: a sanity bound against
** hostile sizes (default 16 GiB; fuzzers lower it). */
extern size_t kiln_max_alloc;
#define KILN_MAX_ALLOC kiln_max_alloc

/* Aligned allocation (64 bytes) freed with kiln_aligned_free. Returns NULL
** for size 0 as a valid non-NULL pointer is still returned (1 byte). */
void *kiln_aligned_alloc(size_t size);
void kiln_aligned_free(void *p);

char *kiln_strdup(const char *s);
char *kiln_strndup(const char *s, size_t n);

#endif
