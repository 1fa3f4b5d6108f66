/* batcher.c: dynamic batching over a context pool. Requests wait in one
** FIFO queue; a worker takes the head plus the following requests that
** agree on every non-batch dim, concatenates them along dim 0, runs one
** context and splits the outputs back by rows.
**
** Input staging (issue 7): with batching on, the thread that submits a
** request copies its rows into batcher-owned staging memory (pinned for
** device engines), laid out so that the requests a worker later takes as
** one batch already sit back to back: the worker binds that region as the
** batch's input, without a copy, instead of concatenating every request
** itself on its one thread while the submitting threads idle. The memory is
** a few slots per input, each holding two batches of max_batch_size rows at
** the largest profile shape; a slot receives consecutive requests that
** could share a batch, and is reused once all of them are answered.
** Requests that find no free slot, and batches that are not one contiguous
** run of a slot, take the worker's gather as before. */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct breq {
    struct breq *next;
    const void **data;          /* per engine input */
    size_t *nbytes;
    int64_t (*dims)[KILN_MAX_RANK];
    int rows;                   /* dim 0, or 1 without a batch dim */
    uint64_t profiles;          /* bit p: fits profile p apart from rows */
    uint64_t t_submit, deadline; /* deadline 0: none */
    kiln_batch_done_fn done;
    void *user;
    int slot;                   /* staging slot holding the rows; -1: none */
    bool ready;                 /* staged: the submitter finished copying */
    size_t *soff;               /* staged: per input, byte offset in the slot */
    int64_t srows;              /* staged: rows in the slot up to and with r */
} breq;

/* A staging slot: consecutive queued requests that can share a batch, back
** to back from the slot's start, one region per input. It holds two full
** batches: a worker often takes the first requests while later ones are
** still being copied in, and those then start the next batch ("group")
** in the same slot. */
typedef struct stage_slot {
    int refs;                   /* requests staged in it not yet answered */
    int64_t rows;               /* rows staged since it was (re)opened */
    int64_t group0;             /* rows before the current group */
    uint64_t mask;              /* profiles the current group fits */
    size_t *used;               /* per input: bytes staged */
    size_t *dirty;              /* per input: every byte past this is zero */
} stage_slot;

typedef struct bio {            /* one engine input or output */
    const char *name;
    kiln_dtype dtype;
    int rank;
} bio;

struct kiln_batcher {
    kiln_pool *pool;
    const kiln_engine *e;
    kiln_batcher_options o;
    int n_in, n_out, n_prof;
    bio *in, *out;
    int64_t (*pmin)[KILN_MAX_RANK][KILN_MAX_RANK]; /* [profile][input][dim] */
    int64_t (*pmax)[KILN_MAX_RANK][KILN_MAX_RANK];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_ok, stopping;
    breq *head, *tail;
    int queued, in_flight;
    int64_t queued_rows;        /* rows over the queued requests */
    int delay_waiters;          /* workers sleeping out max_queue_delay */
    int copy_waiters;           /* workers waiting for a request's staging */
    pthread_t *threads;
    int n_threads;
    kiln_batcher_stats st;
    /* staging (0 slots: off) */
    int n_slots;
    stage_slot *slots;
    size_t *slot_cap;           /* per input: bytes a slot holds */
    size_t *slot_stride;        /* per input: distance between slots */
    unsigned char **stage;      /* per input: n_slots * stride bytes */
    size_t *slot_mem;           /* used and dirty of every slot */
};

void kiln_batcher_options_init(kiln_batcher_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->max_batch_size = -1;
    o->dynamic_batching = 1;
}

int kiln_batcher_max_batch_size(const kiln_batcher *b) { return b ? b->o.max_batch_size : 0; }

static void *worker_main(void *arg);
/* How long a worker forming a batch waits for a request whose rows are
** being staged (a copy of at most one request's bytes, under way). */
enum { STAGE_WAIT_US = 1000 };
static bool preferred(const kiln_batcher *b, int64_t rows);
static bool compatible(const kiln_batcher *b, const struct breq *x, const struct breq *y);
static kiln_status stage_setup(kiln_batcher *b);
static int pick_profile(const kiln_batcher *b, uint64_t mask, int64_t rows);

void kiln_batcher_destroy(kiln_batcher *b) {
    if (!b) return;
    if (b->sync_ok) {
        pthread_mutex_lock(&b->mu);
        b->stopping = true;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        for (int i = 0; i < b->n_threads; i++) pthread_join(b->threads[i], NULL);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
    }
    free(b->threads);
    for (int i = 0; b->stage && i < b->n_in; i++) kiln_engine_host_free(b->e, b->stage[i]);
    free(b->stage);
    free(b->slots);
    free(b->slot_cap);
    free(b->slot_stride);
    free(b->slot_mem);
    free(b->in);
    free(b->out);
    free(b->pmin);
    free(b->pmax);
    free(b);
}

kiln_status kiln_batcher_create(kiln_pool *pool, const kiln_batcher_options *o,
                                kiln_batcher **out) {
    if (!pool || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_batcher_options opt;
    kiln_batcher_options_init(&opt);
    if (o) {
        if (o->size < sizeof(size_t) + sizeof(int) || o->size > sizeof opt)
            return kiln_error(KILN_INVALID_ARGUMENT, "kiln_batcher_options.size is %zu; "
                              "call kiln_batcher_options_init", o->size);
        memcpy(&opt, o, o->size);
        opt.size = sizeof opt;
    }
    const kiln_engine *e = serve_pool_engine(pool);
    kiln_status s = KILN_OK;
    kiln_batcher *b = calloc(1, sizeof *b);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    b->pool = pool;
    b->e = e;
    b->n_in = kiln_engine_num_inputs(e);
    b->n_out = kiln_engine_num_outputs(e);
    b->n_prof = kiln_engine_num_profiles(e);
    if (b->n_prof < 1 || b->n_prof > 64) {
        s = kiln_error(KILN_UNSUPPORTED, "the batcher handles engines with 1..64 profiles; "
                       "this one has %d", b->n_prof);
        goto fail;
    }
    if (b->n_in > KILN_MAX_RANK * 8) { /* keeps the per-profile tables small */
        s = kiln_error(KILN_UNSUPPORTED, "too many engine inputs (%d)", b->n_in);
        goto fail;
    }
    b->in = calloc((size_t)b->n_in + 1, sizeof *b->in);
    b->out = calloc((size_t)b->n_out + 1, sizeof *b->out);
    b->pmin = calloc((size_t)b->n_prof * ((size_t)b->n_in + 1), sizeof(int64_t[KILN_MAX_RANK]));
    b->pmax = calloc((size_t)b->n_prof * ((size_t)b->n_in + 1), sizeof(int64_t[KILN_MAX_RANK]));
    if (!b->in || !b->out || !b->pmin || !b->pmax) {
        s = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    int64_t engine_max_rows = -1;
    for (int i = 0; i < b->n_in; i++) {
        kiln_io_info info;
        if ((s = kiln_engine_input(e, i, &info))) goto fail;
        b->in[i] = (bio){info.name, info.dtype, info.rank};
        for (int p = 0; p < b->n_prof; p++) {
            int64_t op[KILN_MAX_RANK];
            int64_t *mn = (int64_t *)b->pmin + ((size_t)p * b->n_in + i) * KILN_MAX_RANK;
            int64_t *mx = (int64_t *)b->pmax + ((size_t)p * b->n_in + i) * KILN_MAX_RANK;
            if ((s = kiln_engine_profile_shape(e, p, info.name, mn, op, mx))) goto fail;
            if (info.rank < 1) engine_max_rows = 0;
            else if (engine_max_rows != 0 && mx[0] > engine_max_rows) engine_max_rows = mx[0];
        }
    }
    for (int i = 0; i < b->n_out; i++) {
        kiln_io_info info;
        if ((s = kiln_engine_output(e, i, &info))) goto fail;
        b->out[i] = (bio){info.name, info.dtype, info.rank};
    }
    if (opt.max_batch_size < 0) opt.max_batch_size = engine_max_rows < 0 ? 0 : (int)KILN_MIN(engine_max_rows, 1 << 20);
    for (int i = 0; i < b->n_in && opt.max_batch_size > 0; i++)
        if (b->in[i].rank < 1) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "max_batch_size %d needs a batch dim, but "
                           "input '%s' is a scalar", opt.max_batch_size, b->in[i].name);
            goto fail;
        }
    if (opt.num_preferred < 0 || opt.num_preferred > KILN_BATCHER_MAX_PREFERRED) {
        s = kiln_error(KILN_INVALID_ARGUMENT, "num_preferred %d is outside 0..%d",
                       opt.num_preferred, KILN_BATCHER_MAX_PREFERRED);
        goto fail;
    }
    if (opt.max_queue_delay_us < 0 || opt.default_timeout_us < 0 || opt.max_queue_size < 0 ||
        opt.num_workers < 0) {
        s = kiln_error(KILN_INVALID_ARGUMENT, "negative batcher option");
        goto fail;
    }
    if (opt.max_queue_size == 0) opt.max_queue_size = 4096;
    if (opt.num_workers == 0) opt.num_workers = serve_pool_contexts(pool);
    if (opt.num_workers > 1024) {
        s = kiln_error(KILN_INVALID_ARGUMENT, "num_workers %d is above 1024", opt.num_workers);
        goto fail;
    }
    if (opt.stage_slots < -1 || opt.stage_slots > 64) {
        s = kiln_error(KILN_INVALID_ARGUMENT, "stage_slots %d is outside -1..64", opt.stage_slots);
        goto fail;
    }
    b->o = opt;
    if ((s = stage_setup(b))) goto fail;
    b->st.size = sizeof b->st;
    if (pthread_mutex_init(&b->mu, NULL)) {
        s = kiln_error(KILN_INTERNAL, "pthread_mutex_init failed");
        goto fail;
    }
    if (pthread_cond_init(&b->cv, NULL)) {
        pthread_mutex_destroy(&b->mu);
        s = kiln_error(KILN_INTERNAL, "pthread_cond_init failed");
        goto fail;
    }
    b->sync_ok = true;
    b->threads = calloc((size_t)opt.num_workers, sizeof *b->threads);
    if (!b->threads) {
        s = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    for (int i = 0; i < opt.num_workers; i++) {
        if (pthread_create(&b->threads[i], NULL, worker_main, b)) {
            s = kiln_error(KILN_INTERNAL, "could not start batcher worker %d", i);
            goto fail;
        }
        b->n_threads++;
    }
    *out = b;
    return KILN_OK;
fail:
    kiln_batcher_destroy(b);
    return s;
}

static const int64_t *pdim(const int64_t (*t)[KILN_MAX_RANK][KILN_MAX_RANK], const kiln_batcher *b,
                           int p, int i) {
    return (const int64_t *)t + ((size_t)p * b->n_in + i) * KILN_MAX_RANK;
}

/* Bytes of input i for max_batch_size rows at the largest shape any
** profile takes (0 when that is over 1 GiB or overflows). */
static size_t full_batch_bytes(const kiln_batcher *b, int i) {
    size_t bytes = kiln_dtype_size(b->in[i].dtype);
    for (int d = 0; d < b->in[i].rank; d++) {
        int64_t mx = 0;
        for (int p = 0; p < b->n_prof; p++) mx = KILN_MAX(mx, pdim(b->pmax, b, p, i)[d]);
        if (d == 0) mx = KILN_MIN(mx, b->o.max_batch_size);
        if (mx < 0 || kiln_mul_overflow(bytes, (size_t)mx, &bytes)) return 0;
    }
    return bytes <= ((size_t)1 << 30) ? bytes : 0;
}

/* Staging slots: stage_slots of them (0: 1 per worker plus 2, so batches can
** fill while others run), each two full batches, at most 1 GiB over all;
** none without batching, with KILN_SERVE_STAGE=0 (A/B timing), or when the
** memory cannot be had (requests are then gathered by the worker, as they
** always can be). Only running out of memory for the bookkeeping fails. */
static kiln_status stage_setup(kiln_batcher *b) {
    const char *env = getenv("KILN_SERVE_STAGE");
    int n = b->o.stage_slots ? b->o.stage_slots : KILN_MIN(b->o.num_workers + 2, 64);
    if (b->o.stage_slots < 0 || !b->o.dynamic_batching || b->o.max_batch_size <= 0 ||
        b->n_in < 1 || (env && !strcmp(env, "0")))
        return KILN_OK;
    b->slot_cap = calloc((size_t)b->n_in, sizeof *b->slot_cap);
    b->slot_stride = calloc((size_t)b->n_in, sizeof *b->slot_stride);
    b->stage = calloc((size_t)b->n_in, sizeof *b->stage);
    if (!b->slot_cap || !b->slot_stride || !b->stage)
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    size_t per_slot = 0;
    for (int i = 0; i < b->n_in; i++) {
        size_t cap = 2 * full_batch_bytes(b, i);
        if (!cap) return KILN_OK; /* unbounded or empty: no staging */
        b->slot_cap[i] = cap;
        b->slot_stride[i] = (cap + 4095) & ~(size_t)4095;
        per_slot += b->slot_stride[i];
    }
    n = (int)KILN_MIN((size_t)n, ((size_t)1 << 30) / per_slot);
    if (n < 1) return KILN_OK;
    for (int i = 0; i < b->n_in; i++) {
        size_t bytes = b->slot_stride[i] * (size_t)n;
        if (kiln_engine_host_alloc(b->e, bytes, (void **)&b->stage[i]) || !b->stage[i]) {
            kiln_error_clear();
            for (int j = 0; j <= i; j++) {
                kiln_engine_host_free(b->e, b->stage[j]);
                b->stage[j] = NULL;
            }
            return KILN_OK;
        }
        /* Zero now (the padding rows a batch may take must be zero; also
        ** the page faults, at load rather than on the first requests). */
        memset(b->stage[i], 0, bytes);
    }
    b->slots = calloc((size_t)n, sizeof *b->slots);
    b->slot_mem = calloc((size_t)n * (size_t)b->n_in * 2, sizeof *b->slot_mem);
    if (!b->slots || !b->slot_mem) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    for (int k = 0; k < n; k++) {
        b->slots[k].used = b->slot_mem + (size_t)k * (size_t)b->n_in * 2;
        b->slots[k].dirty = b->slots[k].used + b->n_in;
    }
    b->n_slots = n;
    return KILN_OK;
}

/* Under b->mu, as r is queued: the slot and offsets r's rows go to. After
** the queue's last request when that one is staged and r could join the
** batch it starts or is part of (the worker takes consecutive compatible
** requests up to max_batch_size rows), else at the start of a free slot;
** r->slot -1 when neither is possible. */
static void stage_place(kiln_batcher *b, breq *r) {
    r->slot = -1;
    if (!b->n_slots) return;
    stage_slot *sl = NULL;
    const breq *t = b->tail;
    if (t && t->slot >= 0) {
        /* t is the latest request queued, so the last one in its slot */
        stage_slot *x = &b->slots[t->slot];
        int64_t group = x->rows - x->group0 + r->rows;
        bool fits = compatible(b, t, r) && group <= b->o.max_batch_size &&
                    pick_profile(b, x->mask & r->profiles, group) >= 0;
        for (int i = 0; fits && i < b->n_in; i++)
            fits = r->nbytes[i] <= b->slot_cap[i] - x->used[i];
        if (fits) {
            sl = x;
            r->slot = t->slot;
        }
    }
    for (int k = 0; !sl && k < b->n_slots; k++)
        if (!b->slots[k].refs) {
            sl = &b->slots[k];
            r->slot = k;
            sl->rows = sl->group0 = 0;
            sl->mask = ~(uint64_t)0;
            for (int i = 0; i < b->n_in; i++) sl->used[i] = 0;
        }
    for (int i = 0; sl && i < b->n_in; i++)
        if (r->nbytes[i] > b->slot_cap[i] - sl->used[i]) sl = NULL;
    if (!sl) {
        r->slot = -1;
        return;
    }
    for (int i = 0; i < b->n_in; i++) {
        r->soff[i] = sl->used[i];
        sl->used[i] += r->nbytes[i];
        sl->dirty[i] = KILN_MAX(sl->dirty[i], sl->used[i]);
    }
    sl->rows += r->rows;
    r->srows = sl->rows;
    sl->mask &= r->profiles;
    sl->refs++;
    b->st.staged_requests++;
}

static unsigned char *slot_base(const kiln_batcher *b, int slot, int i) {
    return b->stage[i] + (size_t)slot * b->slot_stride[i];
}

/* Rows fit profile p for every input. */
static bool rows_fit(const kiln_batcher *b, int p, int64_t rows) {
    if (b->o.max_batch_size == 0) return true;
    for (int i = 0; i < b->n_in; i++)
        if (rows < pdim(b->pmin, b, p, i)[0] || rows > pdim(b->pmax, b, p, i)[0]) return false;
    return true;
}

static int pick_profile(const kiln_batcher *b, uint64_t mask, int64_t rows) {
    for (int p = 0; p < b->n_prof; p++)
        if ((mask >> p & 1) && rows_fit(b, p, rows)) return p;
    return -1;
}

/* The rows a batch of `rows` runs with: itself, or with pad_to_preferred
** the smallest preferred size above it (else max_batch_size) that some
** profile of the batch's requests takes. A lone row runs as is. */
static int64_t run_rows_of(const kiln_batcher *b, uint64_t mask, int64_t rows) {
    if (!b->o.pad_to_preferred || b->o.max_batch_size <= 0 || rows <= 1) return rows;
    int64_t best = 0;
    for (int i = 0; i < b->o.num_preferred; i++) {
        int64_t p = b->o.preferred_batch_sizes[i];
        if (p >= rows && p <= b->o.max_batch_size && (!best || p < best) &&
            pick_profile(b, mask, p) >= 0)
            best = p;
    }
    if (!best && rows < b->o.max_batch_size && pick_profile(b, mask, b->o.max_batch_size) >= 0)
        best = b->o.max_batch_size;
    return best ? best : rows;
}

kiln_status kiln_batcher_submit(kiln_batcher *b, const kiln_batch_input *inputs,
                                int num_inputs, int64_t timeout_us,
                                kiln_batch_done_fn done, void *user) {
    if (!b || !done || (num_inputs > 0 && !inputs))
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (num_inputs != b->n_in)
        return kiln_error(KILN_INVALID_ARGUMENT, "the model has %d inputs, the request "
                          "gives %d", b->n_in, num_inputs);
    size_t n = (size_t)b->n_in;
    /* One allocation per request: the node plus its per-input tables. */
    size_t bytes = sizeof(breq) +
                   n * (sizeof(void *) + 2 * sizeof(size_t) + sizeof(int64_t[KILN_MAX_RANK]));
    breq *r = calloc(1, bytes);
    if (!r) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    r->dims = (int64_t(*)[KILN_MAX_RANK])(r + 1);
    r->data = (const void **)(r->dims + n);
    r->nbytes = (size_t *)(r->data + n);
    r->soff = r->nbytes + n;
    r->slot = -1;
    bool *seen = (bool *)calloc(n + 1, 1);
    if (!seen) {
        free(r);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    kiln_status s = KILN_OK;
    int mb = b->o.max_batch_size;
    r->rows = 1;
    for (int k = 0; k < num_inputs && !s; k++) {
        const kiln_batch_input *in = &inputs[k];
        int i = 0;
        while (i < b->n_in && (!in->name || strcmp(in->name, b->in[i].name))) i++;
        if (i == b->n_in) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "the model has no input '%s'",
                           in->name ? in->name : "(null)");
            break;
        }
        if (seen[i]) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "input '%s' is given twice", in->name);
            break;
        }
        seen[i] = true;
        if (in->dtype != b->in[i].dtype) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has type %s, got %s", in->name,
                           kiln_dtype_name(b->in[i].dtype), kiln_dtype_name(in->dtype));
            break;
        }
        if (in->rank != b->in[i].rank || (in->rank > 0 && !in->dims)) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has rank %d, got %d", in->name,
                           b->in[i].rank, in->rank);
            break;
        }
        /* Overflow-checked element count and byte size. */
        size_t numel = 1;
        for (int d = 0; d < in->rank; d++) {
            if (in->dims[d] < 0 || kiln_mul_overflow(numel, (size_t)in->dims[d], &numel)) {
                s = kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has a bad dim %lld", in->name,
                               (long long)in->dims[d]);
                break;
            }
            r->dims[i][d] = in->dims[d];
        }
        if (s) break;
        size_t es = kiln_dtype_size(in->dtype), want;
        if (!es || kiln_mul_overflow(numel, es, &want)) {
            s = kiln_error(KILN_UNSUPPORTED, "input '%s': type %s is not servable", in->name,
                           kiln_dtype_name(in->dtype));
            break;
        }
        if (want != in->nbytes || (want && !in->data)) {
            s = kiln_error(KILN_INVALID_ARGUMENT, "input '%s' needs %zu bytes for its shape, "
                           "got %zu", in->name, want, in->nbytes);
            break;
        }
        r->data[i] = in->data;
        r->nbytes[i] = in->nbytes;
        if (mb > 0) {
            if (k == 0) r->rows = (int)KILN_MIN(in->dims[0], (int64_t)1 << 30);
            else if (in->dims[0] != r->rows) {
                s = kiln_error(KILN_INVALID_ARGUMENT, "inputs disagree on the batch size "
                               "(%d and %lld at '%s')", r->rows, (long long)in->dims[0], in->name);
                break;
            }
        }
    }
    free(seen);
    if (!s && mb > 0 && (r->rows < 1 || r->rows > mb))
        s = kiln_error(KILN_INVALID_ARGUMENT, "batch size %d is outside 1..%d (the model's "
                       "max_batch_size)", r->rows, mb);
    if (!s) {
        /* Profiles the request fits, apart from dim 0 (checked per batch). */
        for (int p = 0; p < b->n_prof; p++) {
            bool ok = true;
            for (int i = 0; i < b->n_in && ok; i++)
                for (int d = mb > 0 ? 1 : 0; d < b->in[i].rank; d++)
                    if (r->dims[i][d] < pdim(b->pmin, b, p, i)[d] ||
                        r->dims[i][d] > pdim(b->pmax, b, p, i)[d])
                        ok = false;
            if (ok && rows_fit(b, p, r->rows)) r->profiles |= (uint64_t)1 << p;
        }
        if (!r->profiles) {
            char buf[256];
            int len = 0;
            for (int d = 0; d < b->in[0].rank && len < 200; d++)
                len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", d ? "x" : "",
                                (long long)r->dims[0][d]);
            buf[len] = 0;
            s = kiln_error(KILN_INVALID_ARGUMENT, "the request's shapes fit none of the "
                           "engine's profiles (input '%s' is %s)", b->in[0].name,
                           b->n_in ? buf : "");
        }
    }
    if (s) {
        free(r);
        return s;
    }
    r->done = done;
    r->user = user;
    r->t_submit = serve_now_us();
    int64_t to = timeout_us ? timeout_us : b->o.default_timeout_us;
    r->deadline = to > 0 ? r->t_submit + (uint64_t)to : 0;
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        free(r);
        return kiln_error(KILN_RUNTIME_ERROR, "the batcher is shutting down");
    }
    if (b->queued >= b->o.max_queue_size) {
        b->st.rejected++;
        pthread_mutex_unlock(&b->mu);
        free(r);
        return kiln_error(KILN_TIMEOUT, "queue full (%d requests waiting)", b->o.max_queue_size);
    }
    stage_place(b, r); /* before queueing: it looks at the queue's tail */
    if (b->tail) b->tail->next = r;
    else b->head = r;
    b->tail = r;
    b->queued++;
    b->queued_rows += r->rows;
    b->st.submitted++;
    int slot = r->slot;
    /* Workers sleeping out the queue delay only need waking when a batch
    ** could now be complete; waking them on every request costs a context
    ** switch each for nothing. A staged request is not taken before its
    ** rows are in, so it wakes them only then. */
    if (slot < 0 && (!b->delay_waiters || b->queued_rows >= b->o.max_batch_size ||
                     preferred(b, b->queued_rows)))
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (slot < 0) return KILN_OK;
    /* The copy runs on this thread, beside the other submitters, with the
    ** lock released: r stays queued (and its slot reserved) until ready. */
    for (int i = 0; i < b->n_in; i++)
        if (r->nbytes[i]) memcpy(slot_base(b, slot, i) + r->soff[i], r->data[i], r->nbytes[i]);
    pthread_mutex_lock(&b->mu);
    r->ready = true;
    if (b->copy_waiters)
        pthread_cond_broadcast(&b->cv);
    else if (r == b->head || !b->delay_waiters || b->queued_rows >= b->o.max_batch_size ||
             preferred(b, b->queued_rows))
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return KILN_OK;
}

/* Same non-batch dims on every input (so the two can share a run). */
static bool compatible(const kiln_batcher *b, const breq *x, const breq *y) {
    if (!(x->profiles & y->profiles)) return false;
    for (int i = 0; i < b->n_in; i++)
        for (int d = 1; d < b->in[i].rank; d++)
            if (x->dims[i][d] != y->dims[i][d]) return false;
    return true;
}

static bool preferred(const kiln_batcher *b, int64_t rows) {
    for (int i = 0; i < b->o.num_preferred; i++)
        if (b->o.preferred_batch_sizes[i] == rows) return true;
    return false;
}

static void answer(const breq *r, kiln_status s, const char *msg, kiln_tensor **outs, int n_out,
                   const kiln_batch_result *timing) {
    kiln_batch_result res;
    if (timing) res = *timing;
    else memset(&res, 0, sizeof res);
    res.status = s;
    res.message = msg ? msg : "";
    res.num_outputs = n_out;
    res.outputs = outs;
    r->done(r->user, &res);
}

/* Under b->mu: r was answered; its staging rows may be reused. */
static void retire(kiln_batcher *b, breq *r) {
    if (r->slot >= 0) b->slots[r->slot].refs--;
    free(r);
}

/* Under b->mu, as a batch is taken: the slot whose rows the batch can bind
** as they are (the requests back to back in one slot, the start aligned as
** a lone request's buffer must be, and room for any padding rows right
** after them that no other request holds), or -1: gather. */
static int stage_region(const kiln_batcher *b, const breq *first, int count, int rows,
                        uint64_t mask) {
    int slot = first->slot;
    if (slot < 0) return -1;
    const breq *r = first;
    for (int k = 1; k < count; k++, r = r->next)
        for (int i = 0; i < b->n_in; i++)
            if (r->next->slot != slot || r->next->soff[i] != r->soff[i] + r->nbytes[i])
                return -1;
    int64_t run_rows = run_rows_of(b, mask, rows);
    const stage_slot *sl = &b->slots[slot];
    for (int i = 0; i < b->n_in; i++) {
        size_t start = first->soff[i], end = r->soff[i] + r->nbytes[i];
        if (((uintptr_t)(slot_base(b, slot, i) + start)) % 16) return -1;
        if (run_rows > rows) {
            /* Only the slot's last requests may pad: nothing can be queued
            ** after them into the slot once they are taken. */
            size_t total = (end - start) / (size_t)rows * (size_t)run_rows;
            if (end != sl->used[i] || total > b->slot_cap[i] - start) return -1;
        }
    }
    return slot;
}

/* Under b->mu, after a batch ending with `last` left the queue: the
** requests of last's slot still queued (right at the head) start a new
** group, so later requests keep joining them. */
static void stage_taken(kiln_batcher *b, const breq *last) {
    if (last->slot < 0) return;
    stage_slot *sl = &b->slots[last->slot];
    sl->group0 = KILN_MAX(sl->group0, last->srows);
    sl->mask = ~(uint64_t)0;
    for (const breq *r = b->head; r && r->slot == last->slot; r = r->next) sl->mask &= r->profiles;
}

/* Runs one batch; answers every request in it. */
static void run_batch(kiln_batcher *b, breq *first, int count, int rows, uint64_t t_taken,
                      uint64_t mask, int zslot, void **gather, size_t *gather_cap) {
    char msg[512] = "";
    kiln_status s = KILN_OK;
    kiln_context *c = NULL;
    void *stream = NULL;
    int hit = 1;
    bool exec_failed = false;
    int64_t run_rows = rows;
    kiln_tensor **outs = calloc((size_t)b->n_out * (size_t)count + 1, sizeof *outs);
    kiln_batch_result tm;
    memset(&tm, 0, sizeof tm);
    uint64_t t0 = serve_now_us(), t1 = t0, t2 = t0, t3 = t0;
    if (!outs) {
        s = KILN_OUT_OF_MEMORY;
        snprintf(msg, sizeof msg, "out of memory");
        goto done;
    }
    if (kiln_pool_acquire(b->pool, 0, &c, &stream) != KILN_OK) {
        hit = 0;
        if ((s = kiln_pool_acquire(b->pool, -1, &c, &stream))) {
            snprintf(msg, sizeof msg, "%s", kiln_last_error());
            goto done;
        }
    }
    t0 = serve_now_us();
    run_rows = run_rows_of(b, mask, rows); /* > rows: zero rows pad the batch */
    bool split = count > 1 || run_rows != rows;
    int prof = b->o.max_batch_size > 0 ? pick_profile(b, mask, run_rows) : -1;
    if (prof < 0) prof = __builtin_ctzll(mask);
    if ((s = kiln_context_set_profile(c, prof))) goto ctx_error;
    for (int i = 0; i < b->n_in; i++) {
        int64_t dims[KILN_MAX_RANK];
        memcpy(dims, first->dims[i], sizeof dims);
        if (b->o.max_batch_size > 0) dims[0] = run_rows;
        if ((s = kiln_context_set_input_shape(c, b->in[i].name, b->in[i].rank, dims)))
            goto ctx_error;
        /* A lone request's buffer is bound as is when it is aligned;
        ** request bytes straight off the wire (the binary tensor extension
        ** puts them at any offset) are copied, as the kernels load
        ** elements with their natural alignment. */
        if (zslot >= 0) {
            /* Staged back to back by the submitters: bind in place. Padding
            ** rows follow in the slot; they are zero past its dirty mark. */
            unsigned char *base = slot_base(b, zslot, i);
            size_t start = first->soff[i], used = 0;
            const breq *r = first;
            for (int k = 0; k < count; k++, r = r->next) used += r->nbytes[i];
            size_t total = used, end = start + used;
            if (run_rows > rows) total = used / (size_t)rows * (size_t)run_rows;
            size_t *dirty = &b->slots[zslot].dirty[i];
            if (total > used && *dirty > end) {
                memset(base + end, 0, KILN_MIN(*dirty, start + total) - end);
                if (*dirty <= start + total) *dirty = end;
            }
            s = kiln_context_set_tensor(c, b->in[i].name, base + start, total);
        } else if (count == 1 && run_rows == rows && ((uintptr_t)first->data[i] % 16) == 0) {
            s = kiln_context_set_tensor(c, b->in[i].name, (void *)first->data[i], first->nbytes[i]);
        } else {
            /* Concatenate along dim 0 into this worker's gather buffer. */
            size_t total = 0;
            const breq *r = first;
            for (int k = 0; k < count; k++, r = r->next) total += r->nbytes[i];
            size_t used = total;
            if (run_rows > rows) total = total / (size_t)rows * (size_t)run_rows;
            if (total > gather_cap[i]) {
                /* pinned for a device engine (fast, asynchronous uploads);
                ** the old contents need not survive */
                void *nb = NULL;
                kiln_engine_host_alloc(b->e, total, &nb);
                kiln_error_clear();
                if (nb) {
                    kiln_engine_host_free(b->e, gather[i]);
                } else {
                    s = KILN_OUT_OF_MEMORY;
                    snprintf(msg, sizeof msg, "out of memory gathering a batch of %d", rows);
                    goto release;
                }
                gather[i] = nb;
                gather_cap[i] = total;
            }
            size_t off = 0;
            r = first;
            for (int k = 0; k < count; k++, r = r->next) {
                if (r->nbytes[i]) memcpy((char *)gather[i] + off, r->data[i], r->nbytes[i]);
                off += r->nbytes[i];
            }
            if (total > used) memset((char *)gather[i] + used, 0, total - used);
            s = kiln_context_set_tensor(c, b->in[i].name, gather[i], total);
        }
        if (s) goto ctx_error;
    }
    for (int o = 0; o < b->n_out; o++)
        if ((s = kiln_context_set_tensor(c, b->out[o].name, NULL, 0))) goto ctx_error;
    t1 = serve_now_us();
    if ((s = kiln_context_enqueue(c, stream))) {
        exec_failed = true;
        goto ctx_error;
    }
    t2 = serve_now_us();
    for (int o = 0; o < b->n_out && !s; o++) {
        const kiln_tensor *t;
        if ((s = kiln_context_output(c, b->out[o].name, &t))) goto ctx_error;
        int rank = kiln_tensor_rank(t);
        const int64_t *od = kiln_tensor_dims(t);
        size_t nb = kiln_tensor_nbytes(t);
        if (split && (rank < 1 || od[0] != run_rows || nb % (size_t)run_rows)) {
            s = KILN_RUNTIME_ERROR;
            snprintf(msg, sizeof msg, "output '%s' does not have the batch's %lld rows in dim 0; "
                     "requests to this model cannot be batched", b->out[o].name,
                     (long long)run_rows);
            goto release;
        }
        size_t row_bytes = split ? nb / (size_t)run_rows : nb;
        size_t off = 0;
        const breq *r = first;
        for (int k = 0; k < count; k++, r = r->next) {
            int64_t dims[KILN_MAX_RANK];
            memcpy(dims, od, sizeof(int64_t) * (size_t)rank);
            if (split) dims[0] = r->rows;
            kiln_tensor **slot = &outs[(size_t)k * b->n_out + o];
            if ((s = kiln_tensor_create(kiln_tensor_dtype(t), rank, dims, slot))) {
                snprintf(msg, sizeof msg, "%s", kiln_last_error());
                goto release;
            }
            size_t part = split ? row_bytes * (size_t)r->rows : nb;
            if (part) memcpy(kiln_tensor_data(*slot), (const char *)kiln_tensor_cdata(t) + off, part);
            off += part;
        }
    }
    goto release;
ctx_error:
    snprintf(msg, sizeof msg, "%s", kiln_last_error());
release:
    /* Only an execution failure marks the context for a rebuild; a shape
    ** refusal leaves it healthy. */
    kiln_pool_release(b->pool, c, exec_failed);
done:
    t3 = serve_now_us();
    if (t1 < t0) t1 = t0;
    if (t2 < t1) t2 = t1;
    tm.compute_input_us = t1 - t0;
    tm.compute_infer_us = t2 - t1;
    tm.compute_output_us = t3 - t2;
    tm.batch_rows = rows;
    tm.batch_requests = count;
    tm.pool_hit = hit;
    if (s && outs)
        for (size_t k = 0; k < (size_t)b->n_out * (size_t)count; k++) {
            kiln_tensor_destroy(outs[k]);
            outs[k] = NULL;
        }
    pthread_mutex_lock(&b->mu);
    b->st.batches++;
    b->st.rows += (uint64_t)rows;
    if (!s) b->st.padded_rows += (uint64_t)(run_rows - rows);
    if (!s && zslot >= 0) b->st.staged_batches++;
    b->st.batch_size_hist[KILN_MIN(rows, KILN_BATCHER_HIST - 1)]++;
    pthread_mutex_unlock(&b->mu);
    breq *r = first;
    for (int k = 0; k < count; k++) {
        breq *next = r->next;
        tm.queue_us = t_taken - r->t_submit;
        answer(r, s, s ? msg : "", s || !outs ? NULL : &outs[(size_t)k * b->n_out],
               s ? 0 : b->n_out, &tm);
        pthread_mutex_lock(&b->mu);
        b->in_flight--;
        if (s) b->st.failed++;
        else b->st.succeeded++;
        b->st.queue_us += tm.queue_us;
        b->st.compute_input_us += tm.compute_input_us;
        b->st.compute_infer_us += tm.compute_infer_us;
        b->st.compute_output_us += tm.compute_output_us;
        retire(b, r);
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        r = next;
    }
    free(outs);
}

static void *worker_main(void *arg) {
    kiln_batcher *b = arg;
    void **gather = calloc((size_t)b->n_in + 1, sizeof *gather);
    size_t *cap = calloc((size_t)b->n_in + 1, sizeof *cap);
    /* Gather buffers are sized for a full batch at the largest profile
    ** shape and touched now, so the first batched request does not pay for
    ** the allocation and its page faults (part of the warm-up). */
    for (int i = 0; gather && cap && b->o.max_batch_size > 0 && i < b->n_in; i++) {
        size_t bytes = kiln_dtype_size(b->in[i].dtype);
        for (int d = 0; d < b->in[i].rank; d++) {
            int64_t mx = 0;
            for (int p = 0; p < b->n_prof; p++) mx = KILN_MAX(mx, pdim(b->pmax, b, p, i)[d]);
            if (d == 0) mx = KILN_MIN(mx, b->o.max_batch_size);
            if (kiln_mul_overflow(bytes, (size_t)mx, &bytes)) bytes = 0;
        }
        if (bytes && bytes <= ((size_t)1 << 30) &&
            kiln_engine_host_alloc(b->e, bytes, &gather[i]) == KILN_OK && gather[i]) {
            memset(gather[i], 0, bytes);
            cap[i] = bytes;
        }
    }
    uint64_t copy_wait_since = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (!b->head) {
            if (b->stopping) break;
            copy_wait_since = 0;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        if (b->head->slot >= 0 && !b->head->ready) {
            /* Its submitter is still copying the rows in (and owns the
            ** request until then, even past its deadline). */
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        uint64_t now = serve_now_us();
        /* Expired requests at the head are answered without running. */
        if (b->head->deadline && now > b->head->deadline) {
            breq *r = b->head;
            b->head = r->next;
            if (!b->head) b->tail = NULL;
            b->queued--;
            b->queued_rows -= r->rows;
            b->st.timed_out++;
            b->in_flight++; /* taken, not yet answered (stats, wait_idle) */
            pthread_mutex_unlock(&b->mu);
            char msg[128];
            snprintf(msg, sizeof msg, "request timed out after %llu us in the queue",
                     (unsigned long long)(now - r->t_submit));
            kiln_batch_result tm;
            memset(&tm, 0, sizeof tm);
            tm.queue_us = now - r->t_submit;
            answer(r, KILN_TIMEOUT, msg, NULL, 0, &tm);
            pthread_mutex_lock(&b->mu);
            b->in_flight--;
            retire(b, r);
            continue;
        }
        /* Form the batch: the head plus compatible followers, in order. */
        int count = 1, rows = b->head->rows;
        uint64_t mask = b->head->profiles;
        bool batching = b->o.dynamic_batching && b->o.max_batch_size > 0 && gather && cap;
        bool more = false;      /* a request that would fit is still to come */
        bool copying = false;   /* ... and is queued, its rows being staged */
        if (batching) {
            for (breq *r = b->head->next; r; r = r->next) {
                if (!compatible(b, b->head, r) || rows + r->rows > b->o.max_batch_size ||
                    pick_profile(b, mask & r->profiles, rows + r->rows) < 0)
                    break;
                if (r->slot >= 0 && !r->ready) {
                    copying = true;
                    break;
                }
                count++;
                rows += r->rows;
                mask &= r->profiles;
            }
            more = rows < b->o.max_batch_size;
        }
        if (batching && more && b->o.max_queue_delay_us > 0 && !b->stopping &&
            !preferred(b, rows)) {
            uint64_t due = b->head->t_submit + (uint64_t)b->o.max_queue_delay_us;
            if (now < due) {
                /* Wait for more requests or the delay; whoever wakes first
                ** re-examines the queue. */
                struct timespec dl = serve_deadline(due - now);
                b->delay_waiters++;
                pthread_cond_timedwait(&b->cv, &b->mu, &dl);
                b->delay_waiters--;
                continue;
            }
        }
        if (copying && !b->stopping && run_rows_of(b, mask, rows) > rows) {
            /* A padded batch is bound in place only when no request of its
            ** slot follows it (the padding rows would be that request's):
            ** wait briefly for the copy under way, so it joins the batch.
            ** Unpadded, the ready part runs now and the rest starts the
            ** next batch, both in place. */
            if (!copy_wait_since) copy_wait_since = now;
            if (now < copy_wait_since + STAGE_WAIT_US) {
                struct timespec dl = serve_deadline(copy_wait_since + STAGE_WAIT_US - now);
                b->copy_waiters++;
                pthread_cond_timedwait(&b->cv, &b->mu, &dl);
                b->copy_waiters--;
                continue;
            }
            /* Still copying (its thread descheduled, say): a padded batch
            ** can no longer be bound in place, its padding rows being that
            ** request's. The longest leading part of preferred size (or
            ** max_batch_size), needing no padding, can: run that. */
            int k = 0, krows = 0;
            uint64_t kmask = ~(uint64_t)0;
            const breq *r = b->head;
            for (int j = 0; j < count; j++, r = r->next) {
                krows += r->rows;
                kmask &= r->profiles;
                if (krows > 1 && (preferred(b, krows) || krows == b->o.max_batch_size) &&
                    run_rows_of(b, kmask, krows) == krows) {
                    k = j + 1;
                    rows = krows;
                    mask = kmask;
                }
            }
            if (k) count = k;
        }
        copy_wait_since = 0;
        breq *first = b->head, *last = first;
        for (int k = 1; k < count; k++) last = last->next;
        b->head = last->next;
        if (!b->head) b->tail = NULL;
        last->next = NULL;
        b->queued -= count;
        b->queued_rows -= rows;
        b->in_flight += count;
        if (b->head) pthread_cond_signal(&b->cv); /* let another worker look */
        int zslot = stage_region(b, first, count, rows, mask);
        stage_taken(b, last);
        pthread_mutex_unlock(&b->mu);
        run_batch(b, first, count, rows, now, mask, zslot, gather, cap);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; gather && i < b->n_in; i++) kiln_engine_host_free(b->e, gather[i]);
    free(gather);
    free(cap);
    return NULL;
}

/* ---- blocking form */
typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    kiln_status status;
    char msg[512];
    kiln_tensor **outputs;
} sync_wait;

static void sync_done(void *user, const kiln_batch_result *r) {
    sync_wait *w = user;
    pthread_mutex_lock(&w->mu);
    w->status = r->status;
    snprintf(w->msg, sizeof w->msg, "%s", r->message);
    for (int i = 0; i < r->num_outputs; i++) w->outputs[i] = r->outputs[i];
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

kiln_status kiln_batcher_infer(kiln_batcher *b, const kiln_batch_input *inputs, int num_inputs,
                               int64_t timeout_us, kiln_tensor **outputs) {
    if (!b || !outputs) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    for (int i = 0; i < b->n_out; i++) outputs[i] = NULL;
    sync_wait w;
    memset(&w, 0, sizeof w);
    w.outputs = outputs;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    kiln_status s = kiln_batcher_submit(b, inputs, num_inputs, timeout_us, sync_done, &w);
    if (!s) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        s = w.status;
        if (s) kiln_error(s, "%s", w.msg);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return s;
}

kiln_status kiln_batcher_get_stats(kiln_batcher *b, kiln_batcher_stats *out) {
    if (!b || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (out->size < sizeof(size_t))
        return kiln_error(KILN_INVALID_ARGUMENT, "kiln_batcher_stats.size is not set");
    kiln_batcher_stats s;
    pthread_mutex_lock(&b->mu);
    s = b->st;
    s.queue_length = b->queued;
    s.in_flight = b->in_flight;
    pthread_mutex_unlock(&b->mu);
    size_t n = KILN_MIN(out->size, sizeof s);
    s.size = out->size;
    memcpy(out, &s, n);
    return KILN_OK;
}
