/* pool.c: a pool of pre-warmed execution contexts for one engine. Contexts
** are created and warmed up front so no request pays a first-run cost, and
** a context whose run failed is rebuilt before it is handed out again. */
#include "serve.h"

#include <stdio.h>
#include <string.h>

typedef struct pool_slot {
    kiln_context *ctx;
    void *mem;          /* activation memory sized for every profile */
    void *stream;
    bool busy;          /* handed out (or being rebuilt) */
    bool healthy;
} pool_slot;

struct kiln_pool {
    const kiln_engine *e;
    kiln_pool_options o;
    pool_slot *slots;
    int n;
    size_t mem_bytes;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_ok;
    uint64_t acquires, hits, timeouts, rebuilds, warmup_us;
};

void kiln_pool_options_init(kiln_pool_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->num_contexts = 1;
    o->warmup_runs = 1;
}

const kiln_engine *serve_pool_engine(const kiln_pool *p) { return p->e; }
int serve_pool_contexts(const kiln_pool *p) { return p->n; }

/* Binds input i of e to c as zeros of dims (*z replaced), for a warm-up run. */
static kiln_status bind_zero_input(const kiln_engine *e, kiln_context *c, int i,
                                   const int64_t *dims, kiln_tensor **z) {
    kiln_io_info info;
    kiln_status st = kiln_engine_input(e, i, &info);
    if (st) return st;
    kiln_tensor_destroy(*z);
    *z = NULL;
    if ((st = kiln_tensor_create(info.dtype, info.rank, dims, z)) ||
        (st = kiln_context_set_input_shape(c, info.name, info.rank, dims)))
        return st;
    return kiln_context_set_tensor(c, info.name, kiln_tensor_data(*z), kiln_tensor_nbytes(*z));
}

/* Lets the context allocate every output (no caller buffers). */
static kiln_status bind_outputs(const kiln_engine *e, kiln_context *c) {
    kiln_status st = KILN_OK;
    for (int o = 0; o < kiln_engine_num_outputs(e) && !st; o++) {
        kiln_io_info info;
        if ((st = kiln_engine_output(e, o, &info))) break;
        st = kiln_context_set_tensor(c, info.name, NULL, 0);
    }
    return st;
}

/* Runs the context once per warm-up shape: each profile at max, opt and
** min. Max touches every page of the activation plan; opt is what the
** builder tuned for and what most batches look like; min (a lone request,
** batch 1 for a batched model) is what an unbatched first request runs, so
** a shape only it reaches fails here rather than in a client's request, and
** the context is left holding it. */
static kiln_status warm(kiln_pool *p, kiln_context *c, void *stream) {
    const kiln_engine *e = p->e;
    int ni = kiln_engine_num_inputs(e);
    kiln_tensor **zeros = calloc((size_t)ni + 1, sizeof *zeros);
    if (!zeros) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    kiln_status st = KILN_OK;
    /* The extra batch sizes first (twice: a device context records each
    ** one's CUDA graph on its second run), each at the opt shape of the
    ** first profile whose dim-0 range takes it. */
    for (int w = 0; w < p->o.num_warmup_batch_sizes && p->o.warmup_runs && !st; w++) {
        int64_t bs = p->o.warmup_batch_sizes[w];
        int prof = -1;
        for (int q = 0; q < kiln_engine_num_profiles(e) && prof < 0 && !st; q++) {
            bool fits = ni > 0;
            for (int i = 0; i < ni && fits && !st; i++) {
                kiln_io_info info;
                int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
                if ((st = kiln_engine_input(e, i, &info)) ||
                    (st = kiln_engine_profile_shape(e, q, info.name, mn, op, mx)))
                    break;
                fits = info.rank > 0 && mn[0] <= bs && bs <= mx[0];
            }
            if (fits) prof = q;
        }
        if (st) break;
        if (prof < 0) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "warm-up batch size %lld: no profile of "
                            "the engine takes it in dim 0", (long long)bs);
            break;
        }
        if ((st = kiln_context_set_profile(c, prof))) break;
        for (int i = 0; i < ni && !st; i++) {
            kiln_io_info info;
            int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            if ((st = kiln_engine_input(e, i, &info)) ||
                (st = kiln_engine_profile_shape(e, prof, info.name, mn, op, mx)))
                break;
            op[0] = bs;
            st = bind_zero_input(e, c, i, op, &zeros[i]);
        }
        if (!st) st = bind_outputs(e, c);
        for (int r = 0; r < 2 && !st; r++) st = kiln_context_enqueue(c, stream);
    }
    /* Last profile first, so profile 0 (what requests mostly pick) ends set. */
    for (int prof = kiln_engine_num_profiles(e) - 1; prof >= 0 && !st; prof--) {
        for (int which = 0; which < 3 && !st; which++) {
            if ((st = kiln_context_set_profile(c, prof))) break;
            bool again = which > 0;   /* this shape was run just before */
            for (int i = 0; i < ni && !st; i++) {
                kiln_io_info info;
                int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
                if ((st = kiln_engine_input(e, i, &info))) break;
                if ((st = kiln_engine_profile_shape(e, prof, info.name, mn, op, mx))) break;
                const int64_t *dims = which == 0 ? mx : which == 1 ? op : mn;
                const int64_t *prev = which == 1 ? mx : op;
                again = again && !memcmp(dims, prev, sizeof(int64_t) * (size_t)info.rank);
                st = bind_zero_input(e, c, i, dims, &zeros[i]);
            }
            if (!st) st = bind_outputs(e, c);
            for (int r = 0; r < p->o.warmup_runs && !st && !again; r++)
                st = kiln_context_enqueue(c, stream);
        }
    }
    for (int i = 0; i < ni; i++) kiln_tensor_destroy(zeros[i]);
    free(zeros);
    /* Profile 0's min shapes stay set; a request sets its own. */
    if (st) kiln_error_prefix("warming a pool context");
    return st;
}

static void slot_free(kiln_pool *p, pool_slot *s) {
    kiln_context_destroy(s->ctx);
    s->ctx = NULL;
    kiln_aligned_free(s->mem);
    s->mem = NULL;
    if (s->stream && p->o.stream_destroy) p->o.stream_destroy(p->o.stream_user, s->stream);
    s->stream = NULL;
    s->healthy = false;
}

static kiln_status slot_build(kiln_pool *p, pool_slot *s) {
    kiln_status st;
    if (strcmp(kiln_engine_backend(p->e), "cpu") != 0) {
        /* A device engine's activations live in device memory, which the
        ** context allocates itself; host memory handed to
        ** kiln_context_create_with_memory would be taken for device memory
        ** (an illegal address on the first run). */
        if ((st = kiln_context_create(p->e, &s->ctx))) return st;
    } else {
        s->mem = kiln_aligned_alloc(p->mem_bytes ? p->mem_bytes : 64);
        if (!s->mem) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory for %zu bytes of "
                                       "activation memory", p->mem_bytes);
        st = kiln_context_create_with_memory(p->e, s->mem, p->mem_bytes ? p->mem_bytes : 64,
                                             &s->ctx);
        if (st) return st;
    }
    if (p->o.stream_create) {
        s->stream = p->o.stream_create(p->o.stream_user);
        if (!s->stream) return kiln_error(KILN_DEVICE_ERROR, "stream_create returned NULL");
    }
    if ((st = warm(p, s->ctx, s->stream))) return st;
    s->healthy = true;
    return KILN_OK;
}

kiln_status kiln_pool_create(const kiln_engine *e, const kiln_pool_options *o,
                             kiln_pool **out) {
    if (!e || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_pool_options def;
    kiln_pool_options_init(&def);
    if (o) {
        if (o->size < offsetof(kiln_pool_options, stream_create) || o->size > sizeof def)
            return kiln_error(KILN_INVALID_ARGUMENT, "kiln_pool_options.size is %zu; "
                              "call kiln_pool_options_init", o->size);
        memcpy(&def, o, o->size);
        def.size = sizeof def;
    }
    if (def.num_contexts < 1 || def.num_contexts > 1024)
        return kiln_error(KILN_INVALID_ARGUMENT, "pool num_contexts %d is outside 1..1024",
                          def.num_contexts);
    if (def.warmup_runs < 0 || def.warmup_runs > 100)
        return kiln_error(KILN_INVALID_ARGUMENT, "pool warmup_runs %d is outside 0..100",
                          def.warmup_runs);
    if (def.num_warmup_batch_sizes < 0 || def.num_warmup_batch_sizes > 16)
        return kiln_error(KILN_INVALID_ARGUMENT, "pool num_warmup_batch_sizes %d is outside "
                          "0..16", def.num_warmup_batch_sizes);
    for (int i = 0; i < def.num_warmup_batch_sizes; i++)
        if (def.warmup_batch_sizes[i] < 1)
            return kiln_error(KILN_INVALID_ARGUMENT, "pool warm-up batch size %d is below 1",
                              def.warmup_batch_sizes[i]);
    kiln_pool *p = calloc(1, sizeof *p);
    if (!p) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    p->e = e;
    p->o = def;
    p->n = def.num_contexts;
    uint64_t need = 0;
    for (int i = 0; i < kiln_engine_num_profiles(e); i++)
        need = KILN_MAX(need, kiln_engine_activation_bytes(e, i));
    p->mem_bytes = (size_t)need;
    kiln_status st = KILN_OK;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return kiln_error(KILN_INTERNAL, "pthread_mutex_init failed");
    }
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return kiln_error(KILN_INTERNAL, "pthread_cond_init failed");
    }
    p->sync_ok = true;
    p->slots = calloc((size_t)p->n, sizeof *p->slots);
    if (!p->slots) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    uint64_t t0 = serve_now_us();
    for (int i = 0; i < p->n; i++)
        if ((st = slot_build(p, &p->slots[i]))) {
            kiln_error_prefix("pool context %d of %d", i, p->n);
            goto fail;
        }
    p->warmup_us = serve_now_us() - t0;
    *out = p;
    return KILN_OK;
fail:
    kiln_pool_destroy(p);
    return st;
}

void kiln_pool_destroy(kiln_pool *p) {
    if (!p) return;
    if (p->sync_ok && p->slots) {
        /* Contexts still handed out are waited for: freeing one under its
        ** user would be a use-after-free. */
        pthread_mutex_lock(&p->mu);
        for (;;) {
            bool any = false;
            for (int i = 0; i < p->n; i++) any |= p->slots[i].busy;
            if (!any) break;
            pthread_cond_wait(&p->cv, &p->mu);
        }
        pthread_mutex_unlock(&p->mu);
    }
    if (p->slots)
        for (int i = 0; i < p->n; i++) slot_free(p, &p->slots[i]);
    free(p->slots);
    if (p->sync_ok) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    free(p);
}

static int find_free(kiln_pool *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->slots[i].busy && p->slots[i].healthy) return i;
    return -1;
}

kiln_status kiln_pool_acquire(kiln_pool *p, int64_t timeout_us, kiln_context **ctx_out,
                              void **stream_out) {
    if (!p || !ctx_out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *ctx_out = NULL;
    pthread_mutex_lock(&p->mu);
    int i = find_free(p);
    bool hit = i >= 0;
    if (i < 0 && timeout_us != 0) {
        struct timespec dl = serve_deadline(timeout_us > 0 ? (uint64_t)timeout_us : 0);
        while ((i = find_free(p)) < 0) {
            bool any_healthy = false;
            for (int k = 0; k < p->n; k++) any_healthy |= p->slots[k].healthy || p->slots[k].busy;
            if (!any_healthy) break;   /* nothing will ever come back */
            if (timeout_us < 0) {
                pthread_cond_wait(&p->cv, &p->mu);
            } else if (pthread_cond_timedwait(&p->cv, &p->mu, &dl)) {
                i = find_free(p);
                break;
            }
        }
    }
    if (i < 0) {
        p->timeouts++;
        bool any_healthy = false;
        for (int k = 0; k < p->n; k++) any_healthy |= p->slots[k].healthy;
        pthread_mutex_unlock(&p->mu);
        if (!any_healthy)
            return kiln_error(KILN_RUNTIME_ERROR, "no healthy context in the pool (all %d "
                              "failed and could not be rebuilt)", p->n);
        return kiln_error(KILN_TIMEOUT, "no free context in the pool within %lld us",
                          (long long)timeout_us);
    }
    p->slots[i].busy = true;
    p->acquires++;
    p->hits += hit;
    *ctx_out = p->slots[i].ctx;
    if (stream_out) *stream_out = p->slots[i].stream;
    pthread_mutex_unlock(&p->mu);
    return KILN_OK;
}

void kiln_pool_release(kiln_pool *p, kiln_context *c, int failed) {
    if (!p || !c) return;
    pthread_mutex_lock(&p->mu);
    int i = 0;
    while (i < p->n && p->slots[i].ctx != c) i++;
    if (i == p->n) {            /* not ours: ignore rather than corrupt state */
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pool_slot *s = &p->slots[i];
    if (failed) {
        /* Rebuild outside the lock (it runs the warm-up); the slot stays
        ** busy so nobody takes it meanwhile. */
        pthread_mutex_unlock(&p->mu);
        slot_free(p, s);
        kiln_status st = slot_build(p, s);
        if (st) slot_free(p, s);
        pthread_mutex_lock(&p->mu);
        p->rebuilds++;
    }
    s->busy = false;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

kiln_status kiln_pool_get_stats(kiln_pool *p, kiln_pool_stats *out) {
    if (!p || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (out->size < sizeof(size_t))
        return kiln_error(KILN_INVALID_ARGUMENT, "kiln_pool_stats.size is not set");
    kiln_pool_stats s;
    memset(&s, 0, sizeof s);
    pthread_mutex_lock(&p->mu);
    s.contexts = p->n;
    for (int i = 0; i < p->n; i++) {
        if (!p->slots[i].healthy && !p->slots[i].busy) s.unhealthy++;
        else if (p->slots[i].busy) s.busy++;
        else s.idle++;
    }
    s.acquires = p->acquires;
    s.hits = p->hits;
    s.timeouts = p->timeouts;
    s.rebuilds = p->rebuilds;
    s.warmup_us = p->warmup_us;
    s.activation_bytes = (uint64_t)p->mem_bytes * (uint64_t)p->n;
    pthread_mutex_unlock(&p->mu);
    size_t n = KILN_MIN(out->size, sizeof s);
    s.size = out->size;
    memcpy(out, &s, n);
    return KILN_OK;
}
