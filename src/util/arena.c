/* arena.c: bump allocator for IR objects. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct kiln_arena_block {
    kiln_arena_block *next;
    size_t size;
    _Alignas(16) unsigned char data[];
};

void kiln_arena_init(kiln_arena *a) { memset(a, 0, sizeof *a); }

void *kiln_arena_alloc(kiln_arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    if (!a->head || a->used + size > a->cap) {
        size_t cap = size > 65536 ? size : 65536;
        if (cap > SIZE_MAX - sizeof(kiln_arena_block)) return NULL;
        kiln_arena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->size = cap;
        a->head = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *kiln_arena_strndup(kiln_arena *a, const char *s, size_t n) {
    char *r = kiln_arena_alloc(a, n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

char *kiln_arena_strdup(kiln_arena *a, const char *s) {
    return kiln_arena_strndup(a, s, strlen(s));
}

void kiln_arena_free(kiln_arena *a) {
    kiln_arena_block *b = a->head;
    while (b) {
        kiln_arena_block *n = b->next;
        free(b);
        b = n;
    }
    memset(a, 0, sizeof *a);
}
