/* test_serve.c: the context pool and the dynamic batcher on the bundled
** example model (image [N,3,32,32] -> probs [N,10], batch 1..16): warm-up
** (ending at the min shape),
** acquire/release/timeouts, rebuild after failure, batched results equal to
** unbatched reference results, FIFO order, queue-full refusal, queue
** timeouts, refusals of bad requests, and draining on destroy; all of it
** with input staging off, on, and with one slot (always full); staging's
** own cases: padding rows zero in a reused slot, requests of shapes that
** cannot share a batch from several submitting threads (tiny_cnn_dyn.onnx,
** [N,3,H,W]), and slots handed back by requests that timed out. */
#include "kiln.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_pass, g_fail;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            g_pass++;                                                          \
        } else {                                                               \
            g_fail++;                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf(" (%s)\n", kiln_last_error());                              \
        }                                                                      \
    } while (0)

static kiln_model *g_model;
static kiln_engine *g_engine;

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

static int setup(void) {
    if (kiln_model_load("examples/tiny_cnn.onnx", &g_model)) return 1;
    kiln_builder_config *cfg;
    if (kiln_builder_config_create(&cfg)) return 1;
    kiln_builder_config_set_opt_level(cfg, 0);
    int p;
    int64_t mn[4] = {1, 3, 32, 32}, op[4] = {4, 3, 32, 32}, mx[4] = {16, 3, 32, 32};
    kiln_builder_config_add_profile(cfg, &p);
    kiln_builder_config_set_shape(cfg, p, "image", 4, mn, op, mx);
    void *blob;
    size_t n;
    kiln_status s = kiln_build_engine(g_model, cfg, &blob, &n);
    kiln_builder_config_destroy(cfg);
    if (s) return 1;
    s = kiln_engine_load_memory(blob, n, &g_engine);
    kiln_free(blob);
    return s != KILN_OK;
}

/* Staging slots for the batchers the tests create (-1: off, 0: default). */
static int g_stage = 0;

/* Reference answer for one request of rows x 3 x h x w on model m. */
static double ref_diff_hw(kiln_model *m, const float *x, int rows, int h, int w,
                          const kiln_tensor *got) {
    int64_t dims[4] = {rows, 3, h, w};
    kiln_tensor *in, *want = NULL;
    if (!got || kiln_tensor_create(KILN_DTYPE_FLOAT32, 4, dims, &in)) return 1e9;
    memcpy(kiln_tensor_data(in), x, kiln_tensor_nbytes(in));
    double d = 1e9;
    if (!kiln_model_run_reference(m, (const kiln_tensor *const *)&in, &want) &&
        kiln_tensor_numel(want) == kiln_tensor_numel(got) && kiln_tensor_dims(got)[0] == rows) {
        d = 0;
        const float *a = kiln_tensor_cdata(want), *b = kiln_tensor_cdata(got);
        for (int64_t i = 0; i < kiln_tensor_numel(want); i++) d = fmax(d, fabs((double)a[i] - b[i]));
    }
    kiln_tensor_destroy(in);
    kiln_tensor_destroy(want);
    return d;
}

static double ref_diff(const float *x, int rows, const kiln_tensor *got) {
    return ref_diff_hw(g_model, x, rows, 32, 32, got);
}

static void test_pool(void) {
    kiln_pool_options o;
    kiln_pool_options_init(&o);
    o.num_contexts = 2;
    kiln_pool *p = NULL;
    CHECK(kiln_pool_create(g_engine, &o, &p) == KILN_OK, "pool create");
    if (!p) return;
    kiln_pool_stats st = {.size = sizeof st};
    CHECK(kiln_pool_get_stats(p, &st) == KILN_OK && st.contexts == 2 && st.idle == 2 &&
          st.busy == 0 && st.unhealthy == 0 && st.activation_bytes > 0,
          "fresh pool stats: %d idle %d busy", st.idle, st.busy);
    kiln_context *a = NULL, *b = NULL, *c = NULL;
    CHECK(kiln_pool_acquire(p, 0, &a, NULL) == KILN_OK && a, "acquire 1");
    /* The warm-up ran max, opt and min, min last: a fresh context's last
    ** run was a lone request's shape (batch 1 here). */
    const kiln_tensor *last = NULL;
    CHECK(a && kiln_context_output(a, "probs", &last) == KILN_OK && last &&
          kiln_tensor_rank(last) == 2 && kiln_tensor_dims(last)[0] == 1,
          "warm-up ended at the profile's min shape (%lld rows)",
          last ? (long long)kiln_tensor_dims(last)[0] : -1LL);
    CHECK(kiln_pool_acquire(p, -1, &b, NULL) == KILN_OK && b && b != a, "acquire 2");
    CHECK(kiln_pool_acquire(p, 0, &c, NULL) == KILN_TIMEOUT && !c, "third acquire, no wait");
    CHECK(kiln_pool_acquire(p, 2000, &c, NULL) == KILN_TIMEOUT && !c, "third acquire, 2 ms");
    kiln_pool_release(p, a, 0);
    CHECK(kiln_pool_acquire(p, 0, &c, NULL) == KILN_OK && c == a, "acquire after release");
    /* A failed run: the context is rebuilt and still counts as healthy. */
    kiln_pool_release(p, c, 1);
    kiln_pool_release(p, b, 0);
    st.size = sizeof st;
    kiln_pool_get_stats(p, &st);
    CHECK(st.rebuilds == 1 && st.idle == 2 && st.unhealthy == 0 && st.acquires == 3 &&
          st.hits == 3 && st.timeouts == 2,
          "after rebuild: rebuilds %llu idle %d acquires %llu hits %llu timeouts %llu",
          (unsigned long long)st.rebuilds, st.idle, (unsigned long long)st.acquires,
          (unsigned long long)st.hits, (unsigned long long)st.timeouts);
    /* A rebuilt context runs. */
    kiln_context *r = NULL;
    float x[3 * 32 * 32] = {0};
    int64_t dims[4] = {1, 3, 32, 32};
    CHECK(kiln_pool_acquire(p, -1, &r, NULL) == KILN_OK &&
          kiln_context_set_input_shape(r, "image", 4, dims) == KILN_OK &&
          kiln_context_set_tensor(r, "image", x, sizeof x) == KILN_OK &&
          kiln_context_set_tensor(r, "probs", NULL, 0) == KILN_OK &&
          kiln_context_execute(r) == KILN_OK, "rebuilt context runs");
    kiln_pool_release(p, r, 0);
    kiln_pool_destroy(p);

    o.num_contexts = 0;
    CHECK(kiln_pool_create(g_engine, &o, &p) == KILN_INVALID_ARGUMENT && !p, "0 contexts refused");
    o.num_contexts = 1;
    o.size = 3;
    CHECK(kiln_pool_create(g_engine, &o, &p) == KILN_INVALID_ARGUMENT, "bad size refused");
    kiln_pool_destroy(NULL);
}

/* ---- batcher */
typedef struct req {
    float *x;
    int rows, index;
    kiln_status status;
    kiln_tensor *out;
    int batch_rows;
} req;

typedef struct log_ {
    pthread_mutex_t mu;
    int order[512];
    int n;
} log_;
static log_ g_log = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static void on_done(void *user, const kiln_batch_result *r) {
    req *q = user;
    q->status = r->status;
    q->batch_rows = r->batch_rows;
    if (r->num_outputs == 1) q->out = r->outputs[0];
    pthread_mutex_lock(&g_log.mu);
    if (g_log.n < 512) g_log.order[g_log.n++] = q->index;
    pthread_mutex_unlock(&g_log.mu);
}

static kiln_status submit(kiln_batcher *b, req *q, int64_t timeout_us) {
    int64_t dims[4] = {q->rows, 3, 32, 32};
    kiln_batch_input in = {"image", KILN_DTYPE_FLOAT32, 4, dims, q->x,
                           sizeof(float) * (size_t)q->rows * 3 * 32 * 32};
    return kiln_batcher_submit(b, &in, 1, timeout_us, on_done, q);
}

static void wait_idle(kiln_batcher *b) {
    for (int i = 0; i < 20000; i++) {
        kiln_batcher_stats st = {.size = sizeof st};
        kiln_batcher_get_stats(b, &st);
        if (st.queue_length == 0 && st.in_flight == 0) return;
        sleep_us(500);
    }
}

static void run_many_pad(int dynamic, int64_t delay_us, int workers, int contexts, int nreq,
                         int pad, kiln_batcher_stats *st_out, int *order_ok) {
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    po.num_contexts = contexts;
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.dynamic_batching = dynamic;
    bo.max_queue_delay_us = delay_us;
    bo.num_workers = workers;
    bo.stage_slots = g_stage;
    if (pad) { /* batches run as 5, 12 or 16 (max) rows; the pool warms those */
        bo.pad_to_preferred = 1;
        bo.num_preferred = 2;
        bo.preferred_batch_sizes[0] = 12;
        bo.preferred_batch_sizes[1] = 5;
        po.num_warmup_batch_sizes = 3;
        po.warmup_batch_sizes[0] = 5;
        po.warmup_batch_sizes[1] = 12;
        po.warmup_batch_sizes[2] = 16;
    }
    CHECK(kiln_pool_create(g_engine, &po, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    CHECK(kiln_batcher_max_batch_size(b) == 16, "max batch from the profile: %d",
          kiln_batcher_max_batch_size(b));
    req *qs = calloc((size_t)nreq, sizeof *qs);
    g_log.n = 0;
    for (int i = 0; i < nreq; i++) {
        qs[i].rows = 1 + i % 3;
        qs[i].index = i;
        qs[i].x = malloc(sizeof(float) * (size_t)qs[i].rows * 3 * 32 * 32);
        fill(qs[i].x, (size_t)qs[i].rows * 3 * 32 * 32, (unsigned)i * 7919u + 1);
        CHECK(submit(b, &qs[i], 0) == KILN_OK, "submit %d", i);
    }
    wait_idle(b);
    double worst = 0;
    int fails = 0, batched = 0;
    for (int i = 0; i < nreq; i++) {
        if (qs[i].status || !qs[i].out) fails++;
        else worst = fmax(worst, ref_diff(qs[i].x, qs[i].rows, qs[i].out));
        if (qs[i].batch_rows > qs[i].rows) batched++;
    }
    CHECK(fails == 0 && worst < 1e-4, "dynamic=%d stage=%d: %d failures, worst diff %g", dynamic,
          g_stage, fails, worst);
    if (!dynamic) CHECK(batched == 0, "batching off formed %d batched answers", batched);
    *order_ok = 1;
    for (int i = 1; i < g_log.n; i++)
        if (g_log.order[i] < g_log.order[i - 1]) *order_ok = 0;
    st_out->size = sizeof *st_out;
    kiln_batcher_get_stats(b, st_out);
    /* Staging takes part only with batching on, and then (one slot or
    ** more) some requests are staged and some batches bound in place. */
    if (!dynamic || g_stage < 0)
        CHECK(st_out->staged_requests == 0 && st_out->staged_batches == 0,
              "staging off: %llu staged requests", (unsigned long long)st_out->staged_requests);
    else
        CHECK(st_out->staged_requests > 0 && st_out->staged_batches > 0 &&
              st_out->staged_requests <= st_out->submitted,
              "staging on (%d slots): %llu of %llu requests staged, %llu batches in place",
              g_stage, (unsigned long long)st_out->staged_requests,
              (unsigned long long)st_out->submitted, (unsigned long long)st_out->staged_batches);
    if (dynamic && g_stage == 1 && delay_us > 0)
        CHECK(st_out->staged_requests < st_out->submitted && st_out->staged_batches < st_out->batches,
              "one slot: some requests found it full (%llu of %llu staged), some batches gathered",
              (unsigned long long)st_out->staged_requests, (unsigned long long)st_out->submitted);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
    for (int i = 0; i < nreq; i++) {
        free(qs[i].x);
        kiln_tensor_destroy(qs[i].out);
    }
    free(qs);
}

static void run_many(int dynamic, int64_t delay_us, int workers, int contexts, int nreq,
                     kiln_batcher_stats *st_out, int *order_ok) {
    run_many_pad(dynamic, delay_us, workers, contexts, nreq, 0, st_out, order_ok);
}

static void test_batching(void) {
    kiln_batcher_stats st;
    int order_ok;
    /* One worker, a queue delay: requests pile up and are batched; a single
    ** worker answers strictly in submission order. */
    run_many(1, 20000, 1, 1, 60, &st, &order_ok);
    CHECK(st.succeeded == 60 && st.batches < 60 && st.rows == 120,
          "batched: %llu ok in %llu batches, %llu rows", (unsigned long long)st.succeeded,
          (unsigned long long)st.batches, (unsigned long long)st.rows);
    CHECK(order_ok, "FIFO order with one worker");
    uint64_t hist = 0;
    for (int i = 0; i < KILN_BATCHER_HIST; i++) hist += st.batch_size_hist[i];
    CHECK(hist == st.batches, "histogram sums to the batch count");
    /* Batching off: one run per request. */
    run_many(0, 0, 2, 2, 40, &st, &order_ok);
    CHECK(st.succeeded == 40 && st.batches == 40, "unbatched: %llu batches",
          (unsigned long long)st.batches);
    /* Several workers and contexts, no delay. */
    run_many(1, 0, 3, 3, 90, &st, &order_ok);
    CHECK(st.succeeded == 90, "3 workers: %llu ok", (unsigned long long)st.succeeded);
    CHECK(st.padded_rows == 0, "no padding unless asked: %llu rows",
          (unsigned long long)st.padded_rows);
    /* Padded batches: every answer still matches its own rows (run_many
    ** checks each against the reference), zero rows were added, and a
    ** batch never ran at a size other than 1, 5, 12 or 16. */
    for (int w = 1; w <= 2; w++) {
        run_many_pad(1, 20000, w, w, 60, 1, &st, &order_ok);
        CHECK(st.succeeded == 60 && st.padded_rows > 0, "padded (%d workers): %llu ok, %llu "
              "zero rows added", w, (unsigned long long)st.succeeded,
              (unsigned long long)st.padded_rows);
        CHECK(st.rows == 120, "padded: %llu request rows", (unsigned long long)st.rows);
        uint64_t n = 0;
        for (int i = 0; i < KILN_BATCHER_HIST; i++) n += st.batch_size_hist[i];
        CHECK(n == st.batches, "padded: histogram (request rows) sums to the batch count");
    }
    /* staging memory (pinned on a device engine, plain on this CPU one) */
    void *h = NULL;
    CHECK(kiln_engine_host_alloc(g_engine, 4096, &h) == KILN_OK && h, "host_alloc");
    if (h) memset(h, 0x5a, 4096);
    kiln_engine_host_free(g_engine, h);
    h = (void *)1;
    CHECK(kiln_engine_host_alloc(g_engine, 0, &h) == KILN_OK && !h, "host_alloc 0 gives NULL");
    CHECK(kiln_engine_host_alloc(NULL, 16, &h) == KILN_INVALID_ARGUMENT && !h, "NULL engine");
    kiln_engine_host_free(g_engine, NULL);
    /* bad warm-up sizes are refused */
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    kiln_pool *p = NULL;
    po.num_warmup_batch_sizes = 1;
    po.warmup_batch_sizes[0] = 17;
    CHECK(kiln_pool_create(g_engine, &po, &p) == KILN_INVALID_ARGUMENT && !p,
          "warm-up batch 17 (profile max 16) refused: %s", kiln_last_error());
    po.warmup_batch_sizes[0] = 0;
    CHECK(kiln_pool_create(g_engine, &po, &p) == KILN_INVALID_ARGUMENT && !p,
          "warm-up batch 0 refused");
    po.num_warmup_batch_sizes = 17;
    CHECK(kiln_pool_create(g_engine, &po, &p) == KILN_INVALID_ARGUMENT && !p,
          "17 warm-up sizes refused");
}

/* Holding the pool's only context stalls the worker, so the queue fills. */
static void test_queue_limits(void) {
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.max_queue_size = 2;
    bo.num_workers = 1;
    bo.dynamic_batching = 0;
    CHECK(kiln_pool_create(g_engine, NULL, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    kiln_context *held = NULL;
    CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold the context");
    float x[4][3 * 32 * 32];
    req q[4];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 4; i++) {
        fill(x[i], 3 * 32 * 32, (unsigned)i + 100);
        q[i].x = x[i];
        q[i].rows = 1;
        q[i].index = i;
        q[i].status = KILN_INTERNAL;
    }
    CHECK(submit(b, &q[0], 0) == KILN_OK, "first (taken by the worker)");
    for (int i = 0; i < 2000; i++) { /* until the worker took it */
        kiln_batcher_stats st = {.size = sizeof st};
        kiln_batcher_get_stats(b, &st);
        if (st.in_flight == 1) break;
        sleep_us(500);
    }
    CHECK(submit(b, &q[1], 1000) == KILN_OK, "second (will time out)");
    CHECK(submit(b, &q[2], -1) == KILN_OK, "third");
    CHECK(submit(b, &q[3], 0) == KILN_TIMEOUT, "fourth refused: queue full");
    sleep_us(20000);
    kiln_pool_release(p, held, 0);
    wait_idle(b);
    CHECK(q[0].status == KILN_OK && q[2].status == KILN_OK, "held requests ran");
    CHECK(q[1].status == KILN_TIMEOUT && !q[1].out, "queued past its timeout: %s",
          kiln_status_name(q[1].status));
    kiln_batcher_stats st = {.size = sizeof st};
    kiln_batcher_get_stats(b, &st);
    CHECK(st.rejected == 1 && st.timed_out == 1 && st.succeeded == 2, "counts");
    kiln_tensor_destroy(q[0].out);
    kiln_tensor_destroy(q[2].out);

    /* Bad requests are refused at submit. */
    int64_t dims[4] = {1, 3, 32, 32}, big[4] = {17, 3, 32, 32}, odd[4] = {1, 3, 31, 32};
    kiln_batch_input in = {"image", KILN_DTYPE_FLOAT32, 4, dims, x[0], sizeof x[0]};
    kiln_batch_input bad = in;
    bad.name = "nope";
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "name");
    bad = in;
    bad.dtype = KILN_DTYPE_INT32;
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "dtype");
    bad = in;
    bad.nbytes -= 4;
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "size");
    bad = in;
    bad.dims = big;
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "batch 17");
    bad = in;
    bad.dims = odd;
    bad.nbytes = sizeof(float) * 3 * 31 * 32;
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "profile"), "shape outside the profile");
    bad = in;
    bad.rank = 3;
    CHECK(kiln_batcher_submit(b, &bad, 1, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "rank");
    CHECK(kiln_batcher_submit(b, &in, 0, 0, on_done, &q[0]) == KILN_INVALID_ARGUMENT, "count");
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
}

/* destroy runs what is still queued. */
static void test_drain(void) {
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.max_queue_delay_us = 1000000; /* long: destroy must not wait for it */
    CHECK(kiln_pool_create(g_engine, NULL, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    static float x[3 * 32 * 32];
    req q[8];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 8; i++) {
        q[i] = (req){x, 1, i, KILN_INTERNAL, NULL, 0};
        CHECK(submit(b, &q[i], 0) == KILN_OK, "submit");
    }
    clock_t t0 = clock();
    kiln_batcher_destroy(b);
    (void)t0;
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        ok += q[i].status == KILN_OK;
        kiln_tensor_destroy(q[i].out);
    }
    CHECK(ok == 8, "drained %d of 8", ok);
    /* Blocking form. */
    CHECK(kiln_batcher_create(p, NULL, &b) == KILN_OK, "batcher 2");
    int64_t dims[4] = {2, 3, 32, 32};
    float x2[2 * 3 * 32 * 32];
    fill(x2, 2 * 3 * 32 * 32, 5);
    kiln_batch_input in = {"image", KILN_DTYPE_FLOAT32, 4, dims, x2, sizeof x2};
    kiln_tensor *out = NULL;
    CHECK(kiln_batcher_infer(b, &in, 1, 0, &out) == KILN_OK && out &&
          ref_diff(x2, 2, out) < 1e-4, "blocking infer");
    kiln_tensor_destroy(out);
    /* Input bytes at an odd address (as the binary HTTP protocol delivers
    ** them) are accepted; UBSan checks the kernels never see them. */
    char *raw = malloc(sizeof x2 + 1);
    memcpy(raw + 1, x2, sizeof x2);
    in.data = raw + 1;
    out = NULL;
    CHECK(kiln_batcher_infer(b, &in, 1, 0, &out) == KILN_OK && out &&
          ref_diff(x2, 2, out) < 1e-4, "misaligned input");
    kiln_tensor_destroy(out);
    free(raw);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
}

/* Waits until the batcher has taken n requests off its queue. */
static void wait_taken(kiln_batcher *b, uint64_t queued_max) {
    for (int i = 0; i < 4000; i++) {
        kiln_batcher_stats st = {.size = sizeof st};
        kiln_batcher_get_stats(b, &st);
        if ((uint64_t)st.queue_length <= queued_max && st.in_flight > 0) return;
        sleep_us(500);
    }
}

/* Padding rows bound in place from a reused slot must be zero: a batch of
** 12 rows fills slot 1, then a request of 3 rows reuses it and runs padded
** to 5, over rows the first batch left behind. The padded run's last two
** rows must answer as all-zero inputs do (read from the context's kept
** outputs once the batcher handed it back). Same with staging off. */
static void test_stage_pad_zero(int stage) {
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    po.num_warmup_batch_sizes = 2;
    po.warmup_batch_sizes[0] = 5;
    po.warmup_batch_sizes[1] = 12;
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = 1;
    bo.stage_slots = stage;
    bo.pad_to_preferred = 1;
    bo.num_preferred = 2;
    bo.preferred_batch_sizes[0] = 5;
    bo.preferred_batch_sizes[1] = 12;
    CHECK(kiln_pool_create(g_engine, &po, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    enum { N = 7 };
    static float x[N][3 * 3 * 32 * 32];
    req q[N];
    memset(q, 0, sizeof q);
    int rows[N] = {1, 3, 3, 3, 3, 1, 3};
    for (int i = 0; i < N; i++) {
        fill(x[i], (size_t)rows[i] * 3 * 32 * 32, (unsigned)i * 31u + 7);
        q[i] = (req){x[i], rows[i], i, KILN_INTERNAL, NULL, 0};
    }
    for (int round = 0; round < 2; round++) {
        /* Hold the context: the first request is taken alone, the rest
        ** queue behind it (and are staged together) before anything runs. */
        kiln_context *held = NULL;
        CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold the context");
        int lo = round ? 5 : 0, hi = round ? 7 : 5;
        CHECK(submit(b, &q[lo], 0) == KILN_OK, "submit %d", lo);
        wait_taken(b, 0);
        for (int i = lo + 1; i < hi; i++) CHECK(submit(b, &q[i], 0) == KILN_OK, "submit %d", i);
        kiln_pool_release(p, held, 0);
        wait_idle(b);
    }
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, ref_diff(x[i], rows[i], q[i].out));
    CHECK(worst < 1e-4, "stage=%d: padded answers, worst diff %g", stage, worst);
    CHECK(q[1].batch_rows == 12 && q[6].batch_rows == 3, "batches of 12 and 3 rows: %d %d",
          q[1].batch_rows, q[6].batch_rows);
    kiln_batcher_stats st = {.size = sizeof st};
    kiln_batcher_get_stats(b, &st);
    CHECK(st.padded_rows == 2, "2 padding rows: %llu", (unsigned long long)st.padded_rows);
    if (stage >= 0)
        CHECK(st.staged_batches == 4, "all 4 batches bound in place: %llu",
              (unsigned long long)st.staged_batches);
    /* The last run (5 rows) is what the context holds. */
    kiln_context *c = NULL;
    const kiln_tensor *last = NULL;
    CHECK(kiln_pool_acquire(p, -1, &c, NULL) == KILN_OK &&
          kiln_context_output(c, "probs", &last) == KILN_OK && last &&
          kiln_tensor_dims(last)[0] == 5, "the padded run had 5 rows");
    if (last && kiln_tensor_dims(last)[0] == 5) {
        static float zero[2 * 3 * 32 * 32];
        kiln_tensor *pad = NULL;
        int64_t two[2] = {2, 10};
        if (!kiln_tensor_create(KILN_DTYPE_FLOAT32, 2, two, &pad)) {
            memcpy(kiln_tensor_data(pad), (const float *)kiln_tensor_cdata(last) + 3 * 10,
                   2 * 10 * sizeof(float));
            double d = ref_diff(zero, 2, pad);
            CHECK(d < 1e-4, "stage=%d: padding rows were zero (diff %g)", stage, d);
            kiln_tensor_destroy(pad);
        }
    }
    kiln_pool_release(p, c, 0);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
    for (int i = 0; i < N; i++) kiln_tensor_destroy(q[i].out);
}

/* ---- requests of several shapes from several threads */
static kiln_model *g_dyn_model;
static kiln_engine *g_dyn_engine;

typedef struct mreq {
    float *x;
    int rows, h, w;
    kiln_status status;
    kiln_tensor *out;
    int batch_rows;
} mreq;

static void on_mdone(void *user, const kiln_batch_result *r) {
    mreq *q = user;
    q->status = r->status;
    q->batch_rows = r->batch_rows;
    if (r->num_outputs == 1) q->out = r->outputs[0];
}

typedef struct submitter {
    kiln_batcher *b;
    mreq *q;
    int n, fails;
} submitter;

static void *submit_thread(void *arg) {
    submitter *t = arg;
    for (int i = 0; i < t->n; i++) {
        mreq *q = &t->q[i];
        int64_t dims[4] = {q->rows, 3, q->h, q->w};
        kiln_batch_input in = {"image", KILN_DTYPE_FLOAT32, 4, dims, q->x,
                               sizeof(float) * (size_t)q->rows * 3 * (size_t)q->h * (size_t)q->w};
        if (kiln_batcher_submit(t->b, &in, 1, -1, on_mdone, q)) t->fails++;
        if (i % 7 == 3) sleep_us(300);
    }
    return NULL;
}

static int dyn_setup(void) {
    if (kiln_model_load("tests/data/tiny_cnn_dyn.onnx", &g_dyn_model)) return 1;
    kiln_builder_config *cfg;
    if (kiln_builder_config_create(&cfg)) return 1;
    kiln_builder_config_set_opt_level(cfg, 0);
    int p;
    int64_t mn[4] = {1, 3, 8, 8}, op[4] = {4, 3, 16, 16}, mx[4] = {16, 3, 24, 24};
    kiln_builder_config_add_profile(cfg, &p);
    kiln_builder_config_set_shape(cfg, p, "image", 4, mn, op, mx);
    void *blob;
    size_t n;
    kiln_status s = kiln_build_engine(g_dyn_model, cfg, &blob, &n);
    kiln_builder_config_destroy(cfg);
    if (s) return 1;
    s = kiln_engine_load_memory(blob, n, &g_dyn_engine);
    kiln_free(blob);
    return s != KILN_OK;
}

/* 3 threads submit requests of 1..3 rows at 8x8, 16x16, 24x24 and 16x8 in
** runs of a few of each shape, to 1 or 2 workers (2 slots, so some find
** them full, or the default), padded to 8 or max or not; every answer must
** match its own reference. */
static void test_stage_mixed(int workers, int stage, int pad) {
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    po.num_contexts = workers;
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = workers;
    bo.max_queue_delay_us = 2000;
    bo.stage_slots = stage;
    bo.num_preferred = 1;
    bo.preferred_batch_sizes[0] = 8;
    bo.pad_to_preferred = pad;
    CHECK(kiln_pool_create(g_dyn_engine, &po, &p) == KILN_OK, "dyn pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "dyn batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    enum { T = 3, PER = 40 };
    static const int hw[4][2] = {{8, 8}, {16, 16}, {24, 24}, {16, 8}};
    mreq *qs = calloc(T * PER, sizeof *qs);
    submitter th[T];
    pthread_t tid[T];
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < PER; i++) {
            mreq *q = &qs[t * PER + i];
            int shape = (i / 4 + t) % 4; /* runs of 4 requests per shape */
            q->rows = 1 + (i + t) % 3;
            q->h = hw[shape][0];
            q->w = hw[shape][1];
            q->status = KILN_INTERNAL;
            size_t n = (size_t)q->rows * 3 * (size_t)q->h * (size_t)q->w;
            q->x = malloc(sizeof(float) * n);
            fill(q->x, n, (unsigned)(t * PER + i) * 2654435761u + 3);
        }
        th[t] = (submitter){b, &qs[t * PER], PER, 0};
    }
    for (int t = 0; t < T; t++) pthread_create(&tid[t], NULL, submit_thread, &th[t]);
    int refused = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(tid[t], NULL);
        refused += th[t].fails;
    }
    wait_idle(b);
    double worst = 0;
    int fails = 0, batched = 0;
    for (int i = 0; i < T * PER; i++) {
        mreq *q = &qs[i];
        if (q->status || !q->out) fails++;
        else worst = fmax(worst, ref_diff_hw(g_dyn_model, q->x, q->rows, q->h, q->w, q->out));
        batched += q->batch_rows > q->rows;
    }
    kiln_batcher_stats st = {.size = sizeof st};
    kiln_batcher_get_stats(b, &st);
    CHECK(refused == 0 && fails == 0 && worst < 1e-4, "mixed shapes, %d workers, stage=%d, "
          "pad=%d: %d refused, %d failed, worst diff %g", workers, stage, pad, refused, fails,
          worst);
    CHECK(batched > 0 && st.batches < (uint64_t)(T * PER), "mixed shapes batched: %llu runs",
          (unsigned long long)st.batches);
    if (stage >= 0)
        CHECK(st.staged_requests > 0 && st.staged_batches > 0, "mixed shapes staged: %llu "
              "requests, %llu batches in place", (unsigned long long)st.staged_requests,
              (unsigned long long)st.staged_batches);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
    for (int i = 0; i < T * PER; i++) {
        free(qs[i].x);
        kiln_tensor_destroy(qs[i].out);
    }
    free(qs);
}

/* A staged request that times out in the queue gives its slot back: with
** one slot, a later batch is staged and bound in place again. */
static void test_stage_timeout(void) {
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = 1;
    bo.stage_slots = 1;
    CHECK(kiln_pool_create(g_engine, NULL, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    static float x[4][3 * 32 * 32];
    req q[4];
    for (int i = 0; i < 4; i++) {
        fill(x[i], 3 * 32 * 32, (unsigned)i + 500);
        q[i] = (req){x[i], 1, i, KILN_INTERNAL, NULL, 0};
    }
    kiln_context *held = NULL;
    CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold the context");
    CHECK(submit(b, &q[0], 0) == KILN_OK, "first (staged, taken)");
    wait_taken(b, 0);
    CHECK(submit(b, &q[1], 1000) == KILN_OK, "second (not staged: the slot is taken; times out)");
    sleep_us(20000);
    kiln_pool_release(p, held, 0);
    wait_idle(b);
    /* The slot is free again only if both gave it back. */
    CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold the context again");
    CHECK(submit(b, &q[2], 0) == KILN_OK, "third (staged, taken)");
    wait_taken(b, 0);
    CHECK(submit(b, &q[3], 1000) == KILN_OK, "fourth (times out)");
    sleep_us(20000);
    kiln_pool_release(p, held, 0);
    wait_idle(b);
    kiln_batcher_stats st = {.size = sizeof st};
    kiln_batcher_get_stats(b, &st);
    CHECK(q[0].status == KILN_OK && q[2].status == KILN_OK && q[1].status == KILN_TIMEOUT &&
          q[3].status == KILN_TIMEOUT, "statuses %d %d %d %d", q[0].status, q[1].status,
          q[2].status, q[3].status);
    CHECK(ref_diff(x[0], 1, q[0].out) < 1e-4 && ref_diff(x[2], 1, q[2].out) < 1e-4, "answers");
    CHECK(st.staged_requests == 2 && st.staged_batches == 2 && st.timed_out == 2,
          "staged %llu, in place %llu, timed out %llu", (unsigned long long)st.staged_requests,
          (unsigned long long)st.staged_batches, (unsigned long long)st.timed_out);
    /* With 2 slots the request that times out was staged (in the second
    ** slot, the head holding the first): over 3 rounds every request is
    ** staged only if each timed-out one gave its slot back. */
    kiln_batcher_destroy(b);
    bo.stage_slots = 2;
    b = NULL;
    CHECK(kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher, 2 slots");
    if (b) {
        for (int round = 0; round < 3; round++) {
            req r[2] = {{x[0], 1, 0, KILN_INTERNAL, NULL, 0}, {x[1], 1, 1, KILN_INTERNAL, NULL, 0}};
            CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold");
            CHECK(submit(b, &r[0], 0) == KILN_OK, "head");
            wait_taken(b, 0);
            CHECK(submit(b, &r[1], 1000) == KILN_OK, "staged, times out");
            sleep_us(20000);
            kiln_pool_release(p, held, 0);
            wait_idle(b);
            CHECK(r[0].status == KILN_OK && r[1].status == KILN_TIMEOUT, "round %d", round);
            kiln_tensor_destroy(r[0].out);
        }
        kiln_batcher_get_stats(b, &st);
        CHECK(st.staged_requests == 6 && st.staged_batches == 3 && st.timed_out == 3,
              "2 slots: staged %llu (all: slots came back), in place %llu, timed out %llu",
              (unsigned long long)st.staged_requests, (unsigned long long)st.staged_batches,
              (unsigned long long)st.timed_out);
    }
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
    kiln_tensor_destroy(q[0].out);
    kiln_tensor_destroy(q[2].out);
}

/* A batch whose requests are not back to back in one slot is gathered: a
** request that times out in the queue leaves its rows counted in its slot,
** so the next request (2 rows) no longer fits there and goes to another slot
** (3 slots) or none (2), while the worker's batch, without the timed-out
** one, takes it beside the slot's others. */
static void test_stage_split_batch(int slots) {
    kiln_pool *p = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = 1;
    bo.stage_slots = slots;
    CHECK(kiln_pool_create(g_engine, NULL, &p) == KILN_OK, "pool");
    CHECK(p && kiln_batcher_create(p, &bo, &b) == KILN_OK, "batcher");
    if (!b) {
        kiln_pool_destroy(p);
        return;
    }
    enum { N = 7 };
    static float x[N][3 * 3 * 32 * 32];
    req q[N];
    int rows[N] = {1, 3, 3, 3, 3, 3, 2};
    for (int i = 0; i < N; i++) {
        fill(x[i], (size_t)rows[i] * 3 * 32 * 32, (unsigned)i * 77u + 9);
        q[i] = (req){x[i], rows[i], i, KILN_INTERNAL, NULL, 0};
    }
    kiln_context *held = NULL;
    CHECK(kiln_pool_acquire(p, -1, &held, NULL) == KILN_OK, "hold the context");
    CHECK(submit(b, &q[0], 0) == KILN_OK, "head");
    wait_taken(b, 0);
    CHECK(submit(b, &q[1], 1000) == KILN_OK, "times out");
    for (int i = 2; i < N; i++) CHECK(submit(b, &q[i], 0) == KILN_OK, "submit %d", i);
    sleep_us(20000);
    kiln_pool_release(p, held, 0);
    wait_idle(b);
    double worst = 0;
    for (int i = 2; i < N; i++) worst = fmax(worst, ref_diff(x[i], rows[i], q[i].out));
    CHECK(q[0].status == KILN_OK && q[1].status == KILN_TIMEOUT && worst < 1e-4,
          "split batch (%d slots): worst diff %g", slots, worst);
    CHECK(q[2].batch_rows == 14 && q[6].batch_rows == 14, "one batch of 14 rows: %d",
          q[6].batch_rows);
    kiln_batcher_stats st = {.size = sizeof st};
    kiln_batcher_get_stats(b, &st);
    CHECK(st.staged_requests == (slots > 2 ? 7u : 6u) && st.staged_batches == 1,
          "%d slots: %llu staged, %llu batches in place (the head's only)", slots,
          (unsigned long long)st.staged_requests, (unsigned long long)st.staged_batches);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(p);
    for (int i = 0; i < N; i++) kiln_tensor_destroy(q[i].out);
}

/* ---- two inputs of different row sizes and dtypes (tests/data/two_inputs.onnx:
** a [N,3,H,W] float32, b [N,4] int32 -> y [N,7] = mean of a per channel,
** then b / 2). Odd H and W give rows of a that are not multiples of 16
** bytes, so batches starting inside a slot are gathered (misaligned);
** padded batches too. Answers are checked against the formula. */
enum { BW = 4, YW = 3 + BW }; /* b's and y's row widths */
typedef struct treq {
    float *a;
    int32_t *bv;
    int rows, h, w;
    kiln_status status;
    kiln_tensor *out;
    int batch_rows;
} treq;

static void on_tdone(void *user, const kiln_batch_result *r) {
    treq *q = user;
    q->status = r->status;
    q->batch_rows = r->batch_rows;
    if (r->num_outputs == 1) q->out = r->outputs[0];
}

static double two_diff(const treq *q) {
    if (q->status || !q->out || kiln_tensor_rank(q->out) != 2 ||
        kiln_tensor_dims(q->out)[0] != q->rows || kiln_tensor_dims(q->out)[1] != YW)
        return 1e9;
    const float *y = kiln_tensor_cdata(q->out);
    double d = 0;
    for (int r = 0; r < q->rows; r++) {
        for (int c = 0; c < 3; c++) {
            double m = 0;
            const float *p = q->a + ((size_t)r * 3 + (size_t)c) * (size_t)(q->h * q->w);
            for (int k = 0; k < q->h * q->w; k++) m += p[k];
            d = fmax(d, fabs(m / (q->h * q->w) - y[r * YW + c]));
        }
        for (int c = 0; c < BW; c++)
            d = fmax(d, fabs(q->bv[r * BW + c] * 0.5 - y[r * YW + 3 + c]));
    }
    return d;
}

static void test_stage_two_inputs(int workers, int stage, int pad) {
    kiln_model *m = NULL;
    kiln_engine *e = NULL;
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t n = 0;
    int p = 0;
    int64_t amn[4] = {1, 3, 4, 4}, aop[4] = {4, 3, 7, 7}, amx[4] = {16, 3, 12, 12};
    int64_t bmn[2] = {1, BW}, bop[2] = {4, BW}, bmx[2] = {16, BW};
    CHECK(kiln_model_load("tests/data/two_inputs.onnx", &m) == KILN_OK &&
          kiln_builder_config_create(&cfg) == KILN_OK &&
          kiln_builder_config_add_profile(cfg, &p) == KILN_OK &&
          kiln_builder_config_set_shape(cfg, p, "a", 4, amn, aop, amx) == KILN_OK &&
          kiln_builder_config_set_shape(cfg, p, "b", 2, bmn, bop, bmx) == KILN_OK &&
          kiln_build_engine(m, cfg, &blob, &n) == KILN_OK &&
          kiln_engine_load_memory(blob, n, &e) == KILN_OK, "two-input engine");
    kiln_builder_config_destroy(cfg);
    kiln_free(blob);
    kiln_pool *pl = NULL;
    kiln_batcher *b = NULL;
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    po.num_contexts = workers;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = workers;
    bo.stage_slots = stage;
    bo.max_queue_delay_us = 3000;
    bo.pad_to_preferred = pad;
    bo.num_preferred = 2;
    bo.preferred_batch_sizes[0] = 4;
    bo.preferred_batch_sizes[1] = 8;
    CHECK(e && kiln_pool_create(e, &po, &pl) == KILN_OK, "two-input pool");
    CHECK(pl && kiln_batcher_create(pl, &bo, &b) == KILN_OK, "two-input batcher");
    enum { N = 90 };
    treq *qs = calloc(N, sizeof *qs);
    static const int hw[3] = {4, 7, 12};
    int refused = 0;
    for (int i = 0; b && i < N; i++) {
        treq *q = &qs[i];
        q->rows = 1 + i % 3;
        q->h = hw[(i / 10) % 3];
        q->w = q->h;
        q->status = KILN_INTERNAL;
        size_t na = (size_t)q->rows * 3 * (size_t)(q->h * q->w);
        q->a = malloc(sizeof(float) * na);
        q->bv = malloc(sizeof(int32_t) * (size_t)q->rows * BW);
        fill(q->a, na, (unsigned)i * 131u + 17);
        for (int k = 0; k < q->rows * BW; k++) q->bv[k] = (int32_t)((i * 7 + k * 3) % 23) - 11;
        int64_t ad[4] = {q->rows, 3, q->h, q->w}, bd[2] = {q->rows, BW};
        kiln_batch_input in[2] = {
            {"b", KILN_DTYPE_INT32, 2, bd, q->bv, sizeof(int32_t) * (size_t)q->rows * BW},
            {"a", KILN_DTYPE_FLOAT32, 4, ad, q->a, sizeof(float) * na}};
        if (kiln_batcher_submit(b, in, 2, -1, on_tdone, q)) refused++;
        if (i % 11 == 5) sleep_us(2000);
    }
    if (b) wait_idle(b);
    double worst = 0;
    for (int i = 0; b && i < N; i++) worst = fmax(worst, two_diff(&qs[i]));
    kiln_batcher_stats st = {.size = sizeof st};
    if (b) kiln_batcher_get_stats(b, &st);
    CHECK(b && refused == 0 && worst < 1e-4, "two inputs, %d workers, stage=%d, pad=%d: %d "
          "refused, worst diff %g", workers, stage, pad, refused, worst);
    CHECK(st.batches < N, "two inputs batched: %llu runs", (unsigned long long)st.batches);
    if (pad) CHECK(st.padded_rows > 0, "two inputs padded: %llu rows",
                   (unsigned long long)st.padded_rows);
    if (stage >= 0)
        CHECK(st.staged_requests > 0 && st.staged_batches > 0, "two inputs staged: %llu "
              "requests, %llu batches in place", (unsigned long long)st.staged_requests,
              (unsigned long long)st.staged_batches);
    kiln_batcher_destroy(b);
    kiln_pool_destroy(pl);
    for (int i = 0; i < N; i++) {
        free(qs[i].a);
        free(qs[i].bv);
        kiln_tensor_destroy(qs[i].out);
    }
    free(qs);
    kiln_engine_free(e);
    kiln_model_free(m);
}

/* A padded batch whose slot has a request still being copied right after
** it (a big one, copied by another thread) cannot bind its padding rows in
** place; after waiting for the copy (1 ms) the worker runs the leading part
** of preferred size instead (4 of 5 rows, in place, no padding), and the
** rest later (the 1-row request alone or with the big one, in place). When
** the copy ends within the wait, all run as one batch of 12 (max), in place
** too. Either way every batch binds in place and every answer is right;
** without the cut the 5 rows would run padded to 8 and be gathered. */
typedef struct big_submit {
    kiln_batcher *b;
    kiln_batch_input in[2];
    treq *q;
    kiln_status st;
} big_submit;

static void *big_submit_thread(void *arg) {
    big_submit *t = arg;
    t->st = kiln_batcher_submit(t->b, t->in, 2, -1, on_tdone, t->q);
    return NULL;
}

static void test_stage_cut(void) {
    kiln_model *m = NULL;
    kiln_engine *e = NULL;
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t n = 0;
    int p = 0;
    enum { HW = 640 };
    int64_t amn[4] = {1, 3, 4, 4}, aop[4] = {4, 3, 4, 4}, amx[4] = {12, 3, HW, HW};
    int64_t bmn[2] = {1, BW}, bop[2] = {4, BW}, bmx[2] = {12, BW};
    CHECK(kiln_model_load("tests/data/two_inputs.onnx", &m) == KILN_OK &&
          kiln_builder_config_create(&cfg) == KILN_OK &&
          kiln_builder_config_add_profile(cfg, &p) == KILN_OK &&
          kiln_builder_config_set_shape(cfg, p, "a", 4, amn, aop, amx) == KILN_OK &&
          kiln_builder_config_set_shape(cfg, p, "b", 2, bmn, bop, bmx) == KILN_OK &&
          kiln_build_engine(m, cfg, &blob, &n) == KILN_OK &&
          kiln_engine_load_memory(blob, n, &e) == KILN_OK, "cut: engine");
    kiln_builder_config_destroy(cfg);
    kiln_free(blob);
    kiln_pool *pl = NULL;
    kiln_batcher *b = NULL;
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.num_workers = 1;
    bo.stage_slots = 2;
    bo.pad_to_preferred = 1;
    bo.num_preferred = 2;
    bo.preferred_batch_sizes[0] = 4;
    bo.preferred_batch_sizes[1] = 8;
    CHECK(e && kiln_pool_create(e, NULL, &pl) == KILN_OK, "cut: pool");
    CHECK(pl && kiln_batcher_create(pl, &bo, &b) == KILN_OK, "cut: batcher");
    enum { N = 5 };
    treq q[N];
    memset(q, 0, sizeof q);
    int rows[N] = {1, 2, 2, 1, 7};
    for (int i = 0; i < N; i++) {
        q[i].rows = rows[i];
        q[i].h = q[i].w = i ? HW : 4;
        q[i].status = KILN_INTERNAL;
        size_t na = (size_t)q[i].rows * 3 * (size_t)(q[i].h * q[i].w);
        q[i].a = malloc(sizeof(float) * na);
        q[i].bv = malloc(sizeof(int32_t) * (size_t)q[i].rows * BW);
        if (q[i].a) fill(q[i].a, na, (unsigned)i * 1009u + 1);
        for (int k = 0; q[i].bv && k < q[i].rows * BW; k++) q[i].bv[k] = k - i;
    }
    int64_t ad[N][4], bd[N][2];
    kiln_batch_input in[N][2];
    for (int i = 0; i < N; i++) {
        ad[i][0] = bd[i][0] = q[i].rows;
        ad[i][1] = 3;
        ad[i][2] = ad[i][3] = q[i].h;
        bd[i][1] = BW;
        size_t na = (size_t)q[i].rows * 3 * (size_t)(q[i].h * q[i].w);
        in[i][0] = (kiln_batch_input){"a", KILN_DTYPE_FLOAT32, 4, ad[i], q[i].a, sizeof(float) * na};
        in[i][1] = (kiln_batch_input){"b", KILN_DTYPE_INT32, 2, bd[i], q[i].bv,
                                      sizeof(int32_t) * (size_t)q[i].rows * BW};
    }
    kiln_context *held = NULL;
    if (b && q[N - 1].a && kiln_pool_acquire(pl, -1, &held, NULL) == KILN_OK) {
        CHECK(kiln_batcher_submit(b, in[0], 2, -1, on_tdone, &q[0]) == KILN_OK, "cut: head");
        wait_taken(b, 0);
        for (int i = 1; i < N - 1; i++)
            CHECK(kiln_batcher_submit(b, in[i], 2, -1, on_tdone, &q[i]) == KILN_OK, "cut: %d", i);
        big_submit bs = {b, {in[N - 1][0], in[N - 1][1]}, &q[N - 1], KILN_INTERNAL};
        pthread_t t;
        pthread_create(&t, NULL, big_submit_thread, &bs);
        for (int i = 0; i < 100000; i++) { /* until the big one is queued (copying) */
            kiln_batcher_stats st = {.size = sizeof st};
            kiln_batcher_get_stats(b, &st);
            if (st.submitted == N) break;
            sleep_us(20);
        }
        kiln_pool_release(pl, held, 0);
        pthread_join(t, NULL);
        CHECK(bs.st == KILN_OK, "cut: big submit");
        wait_idle(b);
        double worst = 0;
        for (int i = 0; i < N; i++) worst = fmax(worst, two_diff(&q[i]));
        kiln_batcher_stats st = {.size = sizeof st};
        kiln_batcher_get_stats(b, &st);
        int cut = q[1].batch_rows == 4;
        CHECK(worst < 1e-4, "cut: worst diff %g", worst);
        CHECK(st.staged_requests == N && st.staged_batches == st.batches &&
              (cut ? st.batches >= 3 : q[1].batch_rows == 12 && st.batches == 2),
              "cut=%d: %llu of %llu batches in place, batch rows %d %d", cut,
              (unsigned long long)st.staged_batches, (unsigned long long)st.batches,
              q[1].batch_rows, q[4].batch_rows);
        if (!cut)
            printf("note: test_stage_cut: the big copy ended within the wait, so the cut "
                   "was not exercised\n");
    }
    kiln_batcher_destroy(b);
    kiln_pool_destroy(pl);
    for (int i = 0; i < N; i++) {
        free(q[i].a);
        free(q[i].bv);
        kiln_tensor_destroy(q[i].out);
    }
    kiln_engine_free(e);
    kiln_model_free(m);
}

int main(void) {
    if (setup()) {
        printf("setup failed: %s\n0 passed, 1 failed\n", kiln_last_error());
        return 1;
    }
    test_pool();
    for (int stage = -1; stage <= 1; stage++) {
        g_stage = stage;
        test_batching();
    }
    g_stage = 0;
    test_queue_limits();
    test_drain();
    test_stage_pad_zero(2);
    test_stage_pad_zero(-1);
    test_stage_timeout();
    test_stage_split_batch(2);
    test_stage_split_batch(3);
    if (dyn_setup()) {
        CHECK(0, "dynamic-shape model setup");
    } else {
        for (int w = 1; w <= 2; w++)
            for (int pad = 0; pad <= 1; pad++) {
                test_stage_mixed(w, 2, pad);
                test_stage_mixed(w, 0, pad);
                test_stage_mixed(w, -1, pad);
            }
    }
    test_stage_cut();
    for (int w = 1; w <= 2; w++)
        for (int pad = 0; pad <= 1; pad++) {
            test_stage_two_inputs(w, 0, pad);
            test_stage_two_inputs(w, -1, pad);
        }
    kiln_engine_free(g_dyn_engine);
    kiln_model_free(g_dyn_model);
    kiln_engine_free(g_engine);
    kiln_model_free(g_model);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
