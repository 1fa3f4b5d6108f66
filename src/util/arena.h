/* arena.h: bump allocator; everything is freed at once. */
#ifndef KILN_ARENA_H
#define KILN_ARENA_H

#include <stddef.h>

typedef struct kiln_arena_block kiln_arena_block;
typedef struct kiln_arena {
    kiln_arena_block *head;
    size_t used, cap; /* in the head block */
} kiln_arena;

void kiln_arena_init(kiln_arena *a);
/* Zeroed, 16-byte aligned; NULL when out of memory. */
void *kiln_arena_alloc(kiln_arena *a, size_t size);
char *kiln_arena_strndup(kiln_arena *a, const char *s, size_t n);
char *kiln_arena_strdup(kiln_arena *a, const char *s);
void kiln_arena_free(kiln_arena *a);

#endif
