/* cuda_plan.c: the per-exec plan cache of the library tactics (see
** cuda_internal.h). A small chained hash table; an exec serves one context
** (one thread at a time), so there is no locking. Dynamic shapes can mint
** new keys without end: past a bound the table is emptied and refilled, at
** the start of a run (cuda_plans_trim), never while a run holds plans. */
#include "cuda_internal.h"

#include <stdlib.h>
#include <string.h>

enum { PLAN_BUCKETS = 256, PLAN_MAX = 4096 };

typedef struct cuda_plan {
    struct cuda_plan *next;
    uint64_t hash;
    size_t key_len;
    void *payload;
    cuda_plan_free_fn free_fn;
    unsigned char key[];
} cuda_plan;

static uint64_t plan_hash(const void *key, size_t n) {
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void *cuda_plan_get(cuda_exec *x, const void *key, size_t key_len) {
    if (!x->plans) return NULL;
    uint64_t h = plan_hash(key, key_len);
    for (cuda_plan *p = x->plans[h % PLAN_BUCKETS]; p; p = p->next)
        if (p->hash == h && p->key_len == key_len && !memcmp(p->key, key, key_len))
            return p->payload;
    return NULL;
}

bool cuda_plan_put(cuda_exec *x, const void *key, size_t key_len, void *payload,
                   cuda_plan_free_fn fn) {
    const cuda_libs *L = x->dev->libs;
    if (!x->plans && !(x->plans = calloc(PLAN_BUCKETS, sizeof *x->plans))) {
        fn(L, payload);
        return false;
    }
    cuda_plan *p = malloc(sizeof *p + key_len);
    if (!p) {
        fn(L, payload);
        return false;
    }
    p->hash = plan_hash(key, key_len);
    p->key_len = key_len;
    p->payload = payload;
    p->free_fn = fn;
    memcpy(p->key, key, key_len);
    p->next = x->plans[p->hash % PLAN_BUCKETS];
    x->plans[p->hash % PLAN_BUCKETS] = p;
    x->n_plans++;
    return true;
}

void cuda_plans_free(cuda_exec *x) {
    if (!x || !x->plans) return;
    for (int b = 0; b < PLAN_BUCKETS; b++) {
        cuda_plan *p = x->plans[b];
        while (p) {
            cuda_plan *next = p->next;
            p->free_fn(x->dev->libs, p->payload);
            free(p);
            p = next;
        }
    }
    free(x->plans);
    x->plans = NULL;
    x->n_plans = 0;
}

void cuda_plans_trim(cuda_exec *x) {
    if (x && x->n_plans >= PLAN_MAX) cuda_plans_free(x);
}
