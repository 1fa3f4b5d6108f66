/* server.c: the HTTP side of `kiln serve`. libmicrohttpd owns sockets and
** HTTP parsing (a thread pool polling with poll()); an infer request
** suspends its connection, goes through the model's batcher, and the
** completion callback builds the response and resumes the connection, so
** no HTTP thread waits on inference. Metrics are served by a second daemon
** on their own port. */
#include "server.h"
#include "proto.h"
#include "repo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    serve_options o;
    serve_repo *repo;
    struct MHD_Daemon *http, *metrics;
    atomic_int in_flight;          /* requests seen and not yet completed */
    atomic_int open_conns;         /* HTTP connections open (the drain waits for 0) */
    atomic_bool draining;
    atomic_bool http_warm;         /* models loaded and HTTP threads warmed */
    atomic_llong held_bytes;       /* request bodies held in memory */
    atomic_ullong http_requests, http_rejected_overload;
    /* Start-up warm-up: loopback infer requests carry this token (so they
    ** stay out of the statistics); the HTTP threads that served one. */
    char warm_token[40];
    pthread_mutex_t warm_mu;
    pthread_t warm_threads[64];
    int n_warm_threads;
} server;

typedef struct hreq {
    server *s;
    struct MHD_Connection *conn;
    char *body;
    size_t len, cap;
    size_t reserved;               /* bytes counted in held_bytes */
    int early_status;              /* set while receiving: answer this */
    char early_msg[256];
    uint64_t t_start;
    /* infer */
    serve_version *v;
    serve_infer_req req;
    kiln_batch_input in[SERVE_MAX_IO];
    struct MHD_Response *resp;
    int status;
    bool dispatched;
    bool warmup;                   /* the server's own warm-up request */
    char url[256];
    char method[16];
} hreq;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- responses */
static struct MHD_Response *make_resp(server *s, sbuf *b, const char *ctype) {
    if (b->oom) {
        sb_free(b);
        return NULL;
    }
    size_t len = b->len;
    char *p = b->p ? b->p : calloc(1, 1);
    b->p = NULL;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(p);
        return NULL;
    }
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    /* While draining every answer closes its connection, so keep-alive
    ** clients move to the next server instead of sending more here. */
    if (atomic_load(&s->draining)) MHD_add_response_header(r, "Connection", "close");
    return r;
}

static enum MHD_Result send_sbuf(server *s, struct MHD_Connection *c, int status, sbuf *b,
                                 const char *ctype) {
    struct MHD_Response *r = make_resp(s, b, ctype);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Response *error_resp(server *s, const char *msg) {
    sbuf b;
    sb_init(&b);
    sb_str(&b, "{\"error\":");
    sb_json_str(&b, msg);
    sb_str(&b, "}");
    return make_resp(s, &b, "application/json");
}

static enum MHD_Result send_error(server *s, struct MHD_Connection *c, int status, const char *msg) {
    struct MHD_Response *r = error_resp(s, msg);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_empty(server *s, struct MHD_Connection *c, int status) {
    sbuf b;
    sb_init(&b);
    return send_sbuf(s, c, status, &b, NULL);
}

/* ---- JSON pieces */
static void dims_json(sbuf *b, const serve_tensor_cfg *t, bool batch) {
    sb_str(b, "[");
    bool first = true;
    if (batch) {
        sb_str(b, "-1");
        first = false;
    }
    for (int d = 0; d < t->rank; d++) {
        sb_printf(b, "%s%lld", first ? "" : ",", (long long)t->dims[d]);
        first = false;
    }
    sb_str(b, "]");
}

static void metadata_json(sbuf *b, serve_version *v, bool one_version, serve_repo *repo) {
    sb_str(b, "{\"name\":");
    sb_json_str(b, v->model);
    sb_str(b, ",\"versions\":[");
    if (one_version) {
        sb_printf(b, "\"%lld\"", (long long)v->version);
    } else {
        serve_version **all;
        int n = repo_snapshot(repo, &all), k = 0;
        for (int i = 0; i < n; i++) {
            if (!strcmp(all[i]->model, v->model))
                sb_printf(b, "%s\"%lld\"", k++ ? "," : "", (long long)all[i]->version);
            repo_release(repo, all[i]);
        }
        free(all);
    }
    sb_str(b, "],\"platform\":\"kiln\",\"inputs\":[");
    bool batch = v->cfg.max_batch_size > 0;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? v->cfg.n_outputs : v->cfg.n_inputs;
        const serve_tensor_cfg *t = pass ? v->cfg.outputs : v->cfg.inputs;
        if (pass) sb_str(b, "],\"outputs\":[");
        for (int i = 0; i < n; i++) {
            sb_str(b, i ? ",{\"name\":" : "{\"name\":");
            sb_json_str(b, t[i].name);
            sb_printf(b, ",\"datatype\":\"%s\",\"shape\":", serve_dtype_name(t[i].dtype));
            dims_json(b, &t[i], batch);
            sb_str(b, "}");
        }
    }
    sb_str(b, "]}");
}

static void config_json(sbuf *b, serve_version *v) {
    const serve_model_config *c = &v->cfg;
    sb_str(b, "{\"name\":");
    sb_json_str(b, v->model);
    sb_printf(b, ",\"platform\":\"kiln\",\"backend\":\"kiln\",\"max_batch_size\":%d,\"input\":[",
              c->max_batch_size);
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? c->n_outputs : c->n_inputs;
        const serve_tensor_cfg *t = pass ? c->outputs : c->inputs;
        if (pass) sb_str(b, "],\"output\":[");
        for (int i = 0; i < n; i++) {
            sb_str(b, i ? ",{\"name\":" : "{\"name\":");
            sb_json_str(b, t[i].name);
            const char *dn = serve_dtype_name(t[i].dtype);
            sb_printf(b, ",\"data_type\":\"TYPE_%s\",\"dims\":", dn ? dn : "INVALID");
            dims_json(b, &t[i], false);
            sb_str(b, "}");
        }
    }
    sb_str(b, "]");
    if (c->dynamic_batching) {
        sb_str(b, ",\"dynamic_batching\":{\"preferred_batch_size\":[");
        for (int i = 0; i < c->n_preferred; i++) sb_printf(b, "%s%d", i ? "," : "", c->preferred[i]);
        sb_printf(b, "],\"max_queue_delay_microseconds\":%lld,\"default_queue_policy\":"
                  "{\"max_queue_size\":%d,\"default_timeout_microseconds\":%lld}}",
                  (long long)c->max_queue_delay_us, c->max_queue_size,
                  (long long)c->default_timeout_us);
    }
    /* The kind the engine really runs on (a model.kiln may be a CUDA engine
    ** whatever the config says). */
    bool gpu = v->engine && strcmp(kiln_engine_backend(v->engine), "cpu") != 0;
    sb_printf(b, ",\"instance_group\":[{\"count\":%d,\"kind\":\"%s\"}]", c->instance_count,
              gpu ? "KIND_GPU" : "KIND_CPU");
    if (c->policy == SERVE_POLICY_ALL) sb_str(b, ",\"version_policy\":{\"all\":{}}");
    else if (c->policy == SERVE_POLICY_LATEST)
        sb_printf(b, ",\"version_policy\":{\"latest\":{\"num_versions\":%d}}", c->latest_n);
    else {
        sb_str(b, ",\"version_policy\":{\"specific\":{\"versions\":[");
        for (int i = 0; i < c->n_specific; i++)
            sb_printf(b, "%s%lld", i ? "," : "", (long long)c->specific[i]);
        sb_str(b, "]}}");
    }
    sb_str(b, "}");
}

static void stats_one(sbuf *b, serve_version *v) {
    serve_vstats st;
    pthread_mutex_lock(&v->mu);
    st = v->st;
    pthread_mutex_unlock(&v->mu);
    kiln_batcher_stats bs;
    repo_batcher_stats(v, &bs);
    sb_str(b, "{\"name\":");
    sb_json_str(b, v->model);
    sb_printf(b, ",\"version\":\"%lld\",\"last_inference\":%llu,\"inference_count\":%llu,"
              "\"execution_count\":%llu,\"inference_stats\":{"
              "\"success\":{\"count\":%llu,\"ns\":%llu},\"fail\":{\"count\":%llu,\"ns\":%llu},"
              "\"queue\":{\"count\":%llu,\"ns\":%llu},"
              "\"compute_input\":{\"count\":%llu,\"ns\":%llu},"
              "\"compute_infer\":{\"count\":%llu,\"ns\":%llu},"
              "\"compute_output\":{\"count\":%llu,\"ns\":%llu},"
              "\"cache_hit\":{\"count\":0,\"ns\":0},\"cache_miss\":{\"count\":0,\"ns\":0}},"
              "\"batch_stats\":[",
              (long long)v->version, (unsigned long long)st.last_inference_ms,
              (unsigned long long)st.inference_count, (unsigned long long)bs.batches,
              (unsigned long long)st.success, (unsigned long long)st.success_us * 1000,
              (unsigned long long)st.fail, (unsigned long long)st.fail_us * 1000,
              (unsigned long long)st.success, (unsigned long long)st.queue_us * 1000,
              (unsigned long long)st.success, (unsigned long long)st.cin_us * 1000,
              (unsigned long long)st.success, (unsigned long long)st.cinf_us * 1000,
              (unsigned long long)st.success, (unsigned long long)st.cout_us * 1000);
    bool first = true;
    for (int i = 1; i < KILN_BATCHER_HIST; i++) {
        if (!bs.batch_size_hist[i]) continue;
        unsigned long long n = (unsigned long long)bs.batch_size_hist[i];
        sb_printf(b, "%s{\"batch_size\":%d,\"compute_input\":{\"count\":%llu,\"ns\":0},"
                  "\"compute_infer\":{\"count\":%llu,\"ns\":0},\"compute_output\":"
                  "{\"count\":%llu,\"ns\":0}}", first ? "" : ",", i, n, n, n);
        first = false;
    }
    sb_str(b, "]}");
}

/* ---- infer */
static void count_failure(hreq *h, int reason, uint64_t us) {
    serve_version *v = h->v;
    if (h->warmup) return;
    pthread_mutex_lock(&v->mu);
    v->st.fail++;
    v->st.fail_by[reason]++;
    v->st.fail_us += us;
    v->st.request_us += us;
    pthread_mutex_unlock(&v->mu);
}

/* Writes one output's elements as a JSON array. */
static void tensor_json(sbuf *b, const kiln_tensor *t) {
    const unsigned char *p = kiln_tensor_cdata(t);
    int64_t n = kiln_tensor_numel(t);
    kiln_dtype dt = kiln_tensor_dtype(t);
    sb_str(b, "[");
    for (int64_t i = 0; i < n && !b->oom; i++) {
        if (i) sb_put(b, ",", 1);
        switch (dt) {
        case KILN_DTYPE_FLOAT32: {
            float x;
            memcpy(&x, p + i * 4, 4);
            sb_json_num(b, x);
            break;
        }
        case KILN_DTYPE_FLOAT64: {
            double x;
            memcpy(&x, p + i * 8, 8);
            if (x == x && x - x == 0) sb_printf(b, "%.17g", x);
            else sb_json_num(b, x);
            break;
        }
        case KILN_DTYPE_FLOAT16: {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            sb_json_num(b, serve_f16_to_f32(h));
            break;
        }
        case KILN_DTYPE_BFLOAT16: {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            uint32_t w = (uint32_t)h << 16;
            float x;
            memcpy(&x, &w, 4);
            sb_json_num(b, x);
            break;
        }
        case KILN_DTYPE_BOOL: sb_str(b, p[i] ? "true" : "false"); break;
        case KILN_DTYPE_INT8: sb_printf(b, "%d", (int)((const int8_t *)p)[i]); break;
        case KILN_DTYPE_UINT8: sb_printf(b, "%u", (unsigned)p[i]); break;
#define INTJ(T, ctype, fmt, cast)                       \
    case T: {                                           \
        ctype x;                                        \
        memcpy(&x, p + i * (int64_t)sizeof x, sizeof x); \
        sb_printf(b, fmt, (cast)x);                     \
        break;                                          \
    }
            INTJ(KILN_DTYPE_INT16, int16_t, "%d", int)
            INTJ(KILN_DTYPE_UINT16, uint16_t, "%u", unsigned)
            INTJ(KILN_DTYPE_INT32, int32_t, "%d", int)
            INTJ(KILN_DTYPE_UINT32, uint32_t, "%u", unsigned)
            INTJ(KILN_DTYPE_INT64, int64_t, "%lld", long long)
            INTJ(KILN_DTYPE_UINT64, uint64_t, "%llu", unsigned long long)
#undef INTJ
        default: sb_str(b, "null"); break;
        }
    }
    sb_str(b, "]");
}

static void resume(hreq *h, int status, struct MHD_Response *r) {
    h->status = status;
    h->resp = r;
    MHD_resume_connection(h->conn);
}

static void on_infer_done(void *user, const kiln_batch_result *r) {
    hreq *h = user;
    serve_version *v = h->v;
    server *s = h->s;
    uint64_t dur = now_us() - h->t_start;
    if (r->status) {
        /* Queue timeouts are Triton's 503 UNAVAILABLE; a failed run is a 500. */
        int code = r->status == KILN_TIMEOUT ? 503 : 500;
        count_failure(h, r->status == KILN_TIMEOUT ? FAIL_CANCELED : FAIL_BACKEND, dur);
        resume(h, code, error_resp(s, r->message));
        return;
    }
    sbuf b, bin;
    sb_init(&b);
    sb_init(&bin);
    sb_str(&b, "{");
    if (h->req.id) {
        sb_str(&b, "\"id\":");
        sb_json_str(&b, h->req.id);
        sb_str(&b, ",");
    }
    sb_str(&b, "\"model_name\":");
    sb_json_str(&b, v->model);
    sb_printf(&b, ",\"model_version\":\"%lld\",\"outputs\":[", (long long)v->version);
    int n = h->req.n_out ? h->req.n_out : r->num_outputs;
    for (int k = 0; k < n; k++) {
        int o = k;
        bool binary = h->req.binary_output;
        if (h->req.n_out) {
            binary = h->req.out[k].binary;
            for (o = 0; o < v->cfg.n_outputs; o++)
                if (!strcmp(v->cfg.outputs[o].name, h->req.out[k].name)) break;
        }
        const kiln_tensor *t = r->outputs[o];
        sb_str(&b, k ? ",{\"name\":" : "{\"name\":");
        sb_json_str(&b, v->cfg.outputs[o].name);
        const char *dn = serve_dtype_name(kiln_tensor_dtype(t));
        sb_printf(&b, ",\"datatype\":\"%s\",\"shape\":[", dn ? dn : "BYTES");
        for (int d = 0; d < kiln_tensor_rank(t); d++)
            sb_printf(&b, "%s%lld", d ? "," : "", (long long)kiln_tensor_dims(t)[d]);
        sb_str(&b, "]");
        if (binary) {
            sb_printf(&b, ",\"parameters\":{\"binary_data_size\":%zu}}", kiln_tensor_nbytes(t));
            sb_put(&bin, kiln_tensor_cdata(t), kiln_tensor_nbytes(t));
        } else {
            sb_str(&b, ",\"data\":");
            tensor_json(&b, t);
            sb_str(&b, "}");
        }
    }
    sb_str(&b, "]}");
    size_t header_len = b.len;
    if (bin.len) sb_put(&b, bin.p, bin.len);
    bool oom = b.oom || bin.oom;
    sb_free(&bin);
    for (int o = 0; o < r->num_outputs; o++) kiln_tensor_destroy(r->outputs[o]);
    if (oom) {
        sb_free(&b);
        count_failure(h, FAIL_OTHER, dur);
        resume(h, 500, error_resp(s, "out of memory building the response"));
        return;
    }
    struct MHD_Response *resp =
        make_resp(s, &b, header_len != b.len ? "application/octet-stream" : "application/json");
    if (resp && header_len != b.len) {
        char hl[32];
        snprintf(hl, sizeof hl, "%zu", header_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", hl);
    }
    int64_t rows = 1;
    for (int i = 0; i < v->cfg.n_inputs && v->cfg.max_batch_size > 0; i++)
        if (h->in[i].rank > 0) rows = h->in[i].dims[0];
    /* A warm-up request takes the same steps into a scratch copy. */
    serve_vstats scratch;
    memset(&scratch, 0, sizeof scratch);
    serve_vstats *st = h->warmup ? &scratch : &v->st;
    if (h->warmup) atomic_fetch_add(&v->warmup_http, 1);
    pthread_mutex_lock(&v->mu);
    st->success++;
    st->success_us += dur;
    st->request_us += dur;
    st->queue_us += r->queue_us;
    st->cin_us += r->compute_input_us;
    st->cinf_us += r->compute_infer_us;
    st->cout_us += r->compute_output_us;
    st->inference_count += (uint64_t)rows;
    st->last_inference_ms = wall_ms();
    pthread_mutex_unlock(&v->mu);
    resume(h, resp ? 200 : 500, resp ? resp : error_resp(s, "could not build the response"));
}

static enum MHD_Result handle_infer(hreq *h, const char *model, const char *version) {
    server *s = h->s;
    char err[1024];
    int status = 400;
    if (!(h->v = repo_acquire(s->repo, model, version, &status, err, sizeof err)))
        return send_error(s, h->conn, status, err);
    const char *wt = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Kiln-Warmup");
    if (wt && !strcmp(wt, s->warm_token)) {
        h->warmup = true;
        pthread_t self = pthread_self();
        pthread_mutex_lock(&s->warm_mu);
        bool seen = false;
        for (int i = 0; i < s->n_warm_threads; i++) seen |= pthread_equal(s->warm_threads[i], self);
        if (!seen && s->n_warm_threads < 64) s->warm_threads[s->n_warm_threads++] = self;
        pthread_mutex_unlock(&s->warm_mu);
    }
    const char *hl = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND,
                                                 "Inference-Header-Content-Length");
    int64_t header_len = -1;
    if (hl) {
        char *end;
        errno = 0;
        long long x = strtoll(hl, &end, 10);
        if (!*hl || *end || errno || x < 0) {
            count_failure(h, FAIL_OTHER, 0);
            return send_error(s, h->conn, 400, "Inference-Header-Content-Length is not a "
                                               "non-negative integer");
        }
        header_len = x;
    }
    if (serve_parse_infer(h->body ? h->body : "", h->len, header_len, &h->req, err, sizeof err)) {
        count_failure(h, FAIL_OTHER, now_us() - h->t_start);
        return send_error(s, h->conn, 400, err);
    }
    for (int k = 0; k < h->req.n_out; k++) {
        bool found = false;
        for (int o = 0; o < h->v->cfg.n_outputs; o++)
            found |= !strcmp(h->v->cfg.outputs[o].name, h->req.out[k].name);
        if (!found) {
            snprintf(err, sizeof err, "unexpected inference output '%s' for model '%s'",
                     h->req.out[k].name, h->v->model);
            count_failure(h, FAIL_OTHER, now_us() - h->t_start);
            return send_error(s, h->conn, 400, err);
        }
    }
    for (int i = 0; i < h->req.n_in; i++) {
        serve_in *si = &h->req.in[i];
        h->in[i] = (kiln_batch_input){si->name, si->dtype, si->rank, si->dims, si->data, si->nbytes};
    }
    /* Suspend first: the callback may run (and resume) before submit
    ** returns. */
    MHD_suspend_connection(h->conn);
    h->dispatched = true;
    kiln_status st = kiln_batcher_submit(h->v->batcher, h->in, h->req.n_in, h->req.timeout_us,
                                         on_infer_done, h);
    if (st) {
        int code = st == KILN_TIMEOUT || st == KILN_RUNTIME_ERROR ? 503 : 400;
        count_failure(h, st == KILN_TIMEOUT ? FAIL_REJECTED : FAIL_OTHER, now_us() - h->t_start);
        snprintf(err, sizeof err, "%s", kiln_last_error());
        resume(h, code, error_resp(s, err));
    }
    return MHD_YES;
}

/* ---- metrics (Prometheus text format) */
static void metric_head(sbuf *b, const char *name, const char *type, const char *help) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labels(sbuf *b, const serve_version *v) {
    sb_str(b, "{model=");
    sb_json_str(b, v->model);  /* Prometheus label values escape like JSON strings */
    sb_printf(b, ",version=\"%lld\"", (long long)v->version);
}

static uint64_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void metrics_text(server *s, sbuf *b) {
    serve_version **vs;
    int n = repo_snapshot(s->repo, &vs);
    serve_vstats *st = calloc((size_t)n + 1, sizeof *st);
    kiln_batcher_stats *bs = calloc((size_t)n + 1, sizeof *bs);
    kiln_pool_stats *ps = calloc((size_t)n + 1, sizeof *ps);
    if (!vs || !st || !bs || !ps) {
        for (int i = 0; vs && i < n; i++) repo_release(s->repo, vs[i]);
        free(vs), free(st), free(bs), free(ps);
        return;
    }
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&vs[i]->mu);
        st[i] = vs[i]->st;
        pthread_mutex_unlock(&vs[i]->mu);
        repo_batcher_stats(vs[i], &bs[i]);
        ps[i].size = sizeof ps[i];
        kiln_pool_get_stats(vs[i]->pool, &ps[i]);
    }
#define PER_VERSION(name, type, help, expr)                          \
    metric_head(b, name, type, help);                                \
    for (int i = 0; i < n; i++) {                                    \
        sb_str(b, name);                                             \
        labels(b, vs[i]);                                            \
        sb_printf(b, "} %llu\n", (unsigned long long)(expr));        \
    }
    PER_VERSION("nv_inference_request_success", "counter",
                "Number of successful inference requests", st[i].success)
    static const char *reasons[FAIL_N] = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};
    metric_head(b, "nv_inference_request_failure", "counter",
                "Number of failed inference requests, by reason");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < FAIL_N; k++) {
            sb_str(b, "nv_inference_request_failure");
            labels(b, vs[i]);
            sb_printf(b, ",reason=\"%s\"} %llu\n", reasons[k], (unsigned long long)st[i].fail_by[k]);
        }
    PER_VERSION("nv_inference_count", "counter",
                "Number of inferences performed (a batch of n counts n)", st[i].inference_count)
    PER_VERSION("nv_inference_exec_count", "counter",
                "Number of model executions (batches) performed", bs[i].batches)
    PER_VERSION("nv_inference_pending_request_count", "gauge",
                "Requests queued or running", (uint64_t)bs[i].queue_length + (uint64_t)bs[i].in_flight)
    PER_VERSION("nv_inference_request_duration_us", "counter",
                "Cumulative end-to-end inference request handling time", st[i].request_us)
    PER_VERSION("nv_inference_queue_duration_us", "counter",
                "Cumulative time requests spent waiting in the queue", st[i].queue_us)
    PER_VERSION("nv_inference_compute_input_duration_us", "counter",
                "Cumulative time gathering batch inputs", st[i].cin_us)
    PER_VERSION("nv_inference_compute_infer_duration_us", "counter",
                "Cumulative model execution time", st[i].cinf_us)
    PER_VERSION("nv_inference_compute_output_duration_us", "counter",
                "Cumulative time splitting batch outputs", st[i].cout_us)
    metric_head(b, "kiln_pool_contexts", "gauge", "Execution contexts in the pool, by state");
    for (int i = 0; i < n; i++) {
        static const char *states[3] = {"idle", "busy", "unhealthy"};
        int vals[3] = {ps[i].idle, ps[i].busy, ps[i].unhealthy};
        for (int k = 0; k < 3; k++) {
            sb_str(b, "kiln_pool_contexts");
            labels(b, vs[i]);
            sb_printf(b, ",state=\"%s\"} %d\n", states[k], vals[k]);
        }
    }
    PER_VERSION("kiln_pool_acquire_total", "counter", "Contexts taken from the pool", ps[i].acquires)
    PER_VERSION("kiln_pool_hit_total", "counter",
                "Pool acquisitions that found a warm context free at once", ps[i].hits)
    metric_head(b, "kiln_pool_hit_rate", "gauge", "kiln_pool_hit_total / kiln_pool_acquire_total");
    for (int i = 0; i < n; i++) {
        sb_str(b, "kiln_pool_hit_rate");
        labels(b, vs[i]);
        sb_printf(b, "} %.6f\n", ps[i].acquires ? (double)ps[i].hits / (double)ps[i].acquires : 1.0);
    }
    PER_VERSION("kiln_pool_rebuild_total", "counter", "Contexts rebuilt after a failed run", ps[i].rebuilds)
    PER_VERSION("kiln_pool_warmup_us", "gauge", "Time spent warming the pool at load", ps[i].warmup_us)
    metric_head(b, "kiln_warmup_requests_total", "counter",
                "Warm-up inferences run before the version turned READY (not in the other counters)");
    for (int i = 0; i < n; i++) {
        sb_str(b, "kiln_warmup_requests_total");
        labels(b, vs[i]);
        sb_printf(b, ",path=\"batcher\"} %llu\n", (unsigned long long)atomic_load(&vs[i]->warmup_batcher));
        sb_str(b, "kiln_warmup_requests_total");
        labels(b, vs[i]);
        sb_printf(b, ",path=\"http\"} %llu\n", (unsigned long long)atomic_load(&vs[i]->warmup_http));
    }
    PER_VERSION("kiln_batcher_queue_length", "gauge", "Requests waiting in the batcher queue",
                (uint64_t)bs[i].queue_length)
    PER_VERSION("kiln_batcher_rejected_total", "counter", "Requests refused because the queue was full",
                bs[i].rejected)
    PER_VERSION("kiln_batcher_timeout_total", "counter", "Requests that timed out in the queue",
                bs[i].timed_out)
    PER_VERSION("kiln_batcher_staged_requests_total", "counter",
                "Requests whose input rows were staged at submit", bs[i].staged_requests)
    PER_VERSION("kiln_batcher_staged_batches_total", "counter",
                "Batches that bound their staged rows in place (the rest were gathered)",
                bs[i].staged_batches)
    metric_head(b, "kiln_batch_size", "histogram", "Rows per executed batch");
    for (int i = 0; i < n; i++) {
        static const int les[] = {1, 2, 4, 8, 16, 32, 64};
        uint64_t cum = 0, sum = 0, count = 0;
        for (int k = 0; k < KILN_BATCHER_HIST; k++) {
            count += bs[i].batch_size_hist[k];
            sum += bs[i].batch_size_hist[k] * (uint64_t)k;
        }
        int k = 0;
        for (size_t j = 0; j < sizeof les / sizeof *les; j++) {
            for (; k <= les[j] && k < KILN_BATCHER_HIST - 1; k++) cum += bs[i].batch_size_hist[k];
            sb_str(b, "kiln_batch_size_bucket");
            labels(b, vs[i]);
            sb_printf(b, ",le=\"%d\"} %llu\n", les[j], (unsigned long long)cum);
        }
        sb_str(b, "kiln_batch_size_bucket");
        labels(b, vs[i]);
        sb_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
        sb_str(b, "kiln_batch_size_sum");
        labels(b, vs[i]);
        sb_printf(b, "} %llu\n", (unsigned long long)bs[i].rows);
        sb_str(b, "kiln_batch_size_count");
        labels(b, vs[i]);
        sb_printf(b, "} %llu\n", (unsigned long long)count);
        (void)sum;
    }
    PER_VERSION("kiln_engine_file_bytes", "gauge",
                "Size of the engine file (weights dominate it)", vs[i]->file_bytes)
    PER_VERSION("kiln_engine_activation_bytes", "gauge",
                "Activation memory held by the pool's contexts", ps[i].activation_bytes)
#undef PER_VERSION
    metric_head(b, "kiln_process_resident_memory_bytes", "gauge", "Resident set size of the server");
    sb_printf(b, "kiln_process_resident_memory_bytes %llu\n", (unsigned long long)resident_bytes());
    metric_head(b, "kiln_http_in_flight_requests", "gauge", "HTTP requests being received or answered");
    sb_printf(b, "kiln_http_in_flight_requests %d\n", atomic_load(&s->in_flight));
    metric_head(b, "kiln_http_overload_rejected_total", "counter",
                "Requests refused because too many request bytes were held");
    sb_printf(b, "kiln_http_overload_rejected_total %llu\n",
              (unsigned long long)atomic_load(&s->http_rejected_overload));
    for (int i = 0; i < n; i++) repo_release(s->repo, vs[i]);
    free(vs), free(st), free(bs), free(ps);
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    server *s = cls;
    if (!*con_cls) {          /* first call: headers only */
        *con_cls = s;
        return MHD_YES;
    }
    if (*upload_size) {       /* metrics take no body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics")) return send_error(s, c, 404, "only /metrics is served here");
    if (strcmp(method, "GET")) return send_error(s, c, 405, "use GET");
    sbuf b;
    sb_init(&b);
    metrics_text(s, &b);
    return send_sbuf(s, c, 200, &b, "text/plain; version=0.0.4");
}

/* ---- routing */
static enum MHD_Result route(hreq *h) {
    server *s = h->s;
    struct MHD_Connection *c = h->conn;
    char path[256];
    snprintf(path, sizeof path, "%s", h->url);
    char *seg[10], *save = NULL;
    int n = 0;
    for (char *p = strtok_r(path, "/", &save); p && n < 10; p = strtok_r(NULL, "/", &save))
        seg[n++] = p;
    bool get = !strcmp(h->method, "GET"), post = !strcmp(h->method, "POST");
    char err[1024];
    sbuf b;
    sb_init(&b);
    if (n < 1 || strcmp(seg[0], "v2")) return send_error(s, c, 404, "unknown path");
    if (n == 1) {
        if (!get) return send_error(s, c, 405, "use GET");
        sb_printf(&b, "{\"name\":\"kiln\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\","
                  "\"model_repository\",\"model_configuration\",\"statistics\"]}", kiln_version());
        return send_sbuf(s, c, 200, &b, "application/json");
    }
    if (!strcmp(seg[1], "health") && n == 3) {
        if (!get) return send_error(s, c, 405, "use GET");
        if (!strcmp(seg[2], "live")) return send_empty(s, c, 200);
        if (!strcmp(seg[2], "ready"))
            return send_empty(s, c, !atomic_load(&s->draining) && atomic_load(&s->http_warm) &&
                                    repo_all_ready(s->repo) ? 200 : 400);
        return send_error(s, c, 404, "unknown path");
    }
    if (!strcmp(seg[1], "repository")) {
        if (n == 3 && !strcmp(seg[2], "index")) {
            if (!post && !get) return send_error(s, c, 405, "use POST");
            bool ready_only = false;
            if (h->len) {
                jdoc *d = json_parse(h->body, h->len, err, sizeof err);
                if (!d) return send_error(s, c, 400, err);
                const jv *rd = json_get(json_root(d), "ready");
                ready_only = rd && rd->kind == JV_BOOL && rd->b;
                json_free(d);
            }
            repo_index_json(s->repo, &b, ready_only);
            return send_sbuf(s, c, 200, &b, "application/json");
        }
        if (n == 5 && !strcmp(seg[2], "models") &&
            (!strcmp(seg[4], "load") || !strcmp(seg[4], "unload"))) {
            if (!post) return send_error(s, c, 405, "use POST");
            int rc = seg[4][0] == 'l' ? repo_load_model(s->repo, seg[3], err, sizeof err)
                                      : repo_unload_model(s->repo, seg[3], err, sizeof err);
            if (rc) return send_error(s, c, rc, err);
            return send_empty(s, c, 200);
        }
        return send_error(s, c, 404, "unknown path");
    }
    if (strcmp(seg[1], "models")) return send_error(s, c, 404, "unknown path");
    if (n == 3 && !strcmp(seg[2], "stats")) {
        if (!get) return send_error(s, c, 405, "use GET");
        serve_version **vs;
        int nv = repo_snapshot(s->repo, &vs);
        sb_str(&b, "{\"model_stats\":[");
        for (int i = 0; i < nv; i++) {
            if (i) sb_str(&b, ",");
            stats_one(&b, vs[i]);
            repo_release(s->repo, vs[i]);
        }
        free(vs);
        sb_str(&b, "]}");
        return send_sbuf(s, c, 200, &b, "application/json");
    }
    if (n < 3) return send_error(s, c, 404, "unknown path");
    const char *model = seg[2], *version = NULL;
    int k = 3;
    if (n >= 5 && !strcmp(seg[3], "versions")) {
        version = seg[4];
        k = 5;
    }
    const char *action = k < n ? seg[k] : "";
    if (k + 1 < n) return send_error(s, c, 404, "unknown path");
    if (!strcmp(action, "infer")) {
        if (!post) return send_error(s, c, 405, "use POST");
        return handle_infer(h, model, version);
    }
    if (!get && !(post && !strcmp(action, "ready")))
        return send_error(s, c, 405, "use GET");
    int status = 400;
    serve_version *v = repo_acquire(s->repo, model, version, &status, err, sizeof err);
    if (!strcmp(action, "ready")) {
        /* At start-up a model is READY once the server's own warm-up
        ** requests went through it; a version loaded later turns visible
        ** only after its warm-up. */
        repo_release(s->repo, v);
        return send_empty(s, c, v && atomic_load(&s->http_warm) ? 200 : 400);
    }
    if (!v) return send_error(s, c, status, err);
    enum MHD_Result ret;
    if (!action[0]) {
        metadata_json(&b, v, version != NULL, s->repo);
        ret = send_sbuf(s, c, 200, &b, "application/json");
    } else if (!strcmp(action, "config")) {
        config_json(&b, v);
        ret = send_sbuf(s, c, 200, &b, "application/json");
    } else if (!strcmp(action, "stats")) {
        sb_str(&b, "{\"model_stats\":[");
        stats_one(&b, v);
        sb_str(&b, "]}");
        ret = send_sbuf(s, c, 200, &b, "application/json");
    } else {
        ret = send_error(s, c, 404, "unknown path");
    }
    repo_release(s->repo, v);
    return ret;
}

static bool reserve(hreq *h, size_t bytes) {
    server *s = h->s;
    long long after = atomic_fetch_add(&s->held_bytes, (long long)bytes) + (long long)bytes;
    h->reserved += bytes;
    return (size_t)after <= s->o.max_inflight_bytes;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    server *s = cls;
    hreq *h = *con_cls;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h) return MHD_NO;
        h->s = s;
        h->conn = c;
        h->t_start = now_us();
        snprintf(h->url, sizeof h->url, "%s", url);
        snprintf(h->method, sizeof h->method, "%s", method);
        *con_cls = h;
        atomic_fetch_add(&s->in_flight, 1);
        atomic_fetch_add(&s->http_requests, 1);
        if (strlen(url) >= sizeof h->url) {
            h->early_status = 414;
            snprintf(h->early_msg, sizeof h->early_msg, "URL longer than %zu bytes", sizeof h->url - 1);
            return send_error(s, c, 414, h->early_msg);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || cl[0] == '-') n = ~0ull;
            if (n > s->o.max_body_bytes) {
                /* Answered before the body is read; MHD closes the
                ** connection afterwards. */
                h->early_status = 413;
                snprintf(h->early_msg, sizeof h->early_msg,
                         "request body of %s bytes exceeds the limit of %zu", cl, s->o.max_body_bytes);
                return send_error(s, c, 413, h->early_msg);
            }
            if (!reserve(h, (size_t)n)) {
                atomic_fetch_add(&s->http_rejected_overload, 1);
                h->early_status = 503;
                snprintf(h->early_msg, sizeof h->early_msg, "server overloaded: too many request "
                         "bytes held");
                return send_error(s, c, 503, h->early_msg);
            }
            if (n) {
                h->body = malloc((size_t)n);
                if (!h->body) return MHD_NO;
                h->cap = (size_t)n;
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (h->early_status) return MHD_YES;
        if (h->len + n > s->o.max_body_bytes) {
            h->early_status = 413;
            snprintf(h->early_msg, sizeof h->early_msg, "request body exceeds the limit of %zu bytes",
                     s->o.max_body_bytes);
            return MHD_YES;
        }
        if (h->len + n > h->cap) {  /* chunked or lying Content-Length */
            size_t cap = h->cap ? h->cap * 2 : 4096;
            while (cap < h->len + n) cap *= 2;
            if (cap > s->o.max_body_bytes) cap = s->o.max_body_bytes;
            if (!reserve(h, cap - h->cap)) {
                atomic_fetch_add(&s->http_rejected_overload, 1);
                h->early_status = 503;
                snprintf(h->early_msg, sizeof h->early_msg, "server overloaded: too many request "
                         "bytes held");
                return MHD_YES;
            }
            char *nb = realloc(h->body, cap);
            if (!nb) return MHD_NO;
            h->body = nb;
            h->cap = cap;
        }
        memcpy(h->body + h->len, upload, n);
        h->len += n;
        return MHD_YES;
    }
    if (h->resp) {            /* resumed after inference */
        struct MHD_Response *r = h->resp;
        h->resp = NULL;
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)h->status, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (h->dispatched) return MHD_YES;   /* spurious wake-up while suspended */
    if (h->early_status) return send_error(s, c, h->early_status, h->early_msg);
    return route(h);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    hreq *h = *con_cls;
    if (!h) return;
    if (s->o.access_log) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        serve_log("ACCESS", "%s %s %u %zu %lluus%s", h->method, h->url, ci ? ci->http_status : 0,
                  h->len, (unsigned long long)(now_us() - h->t_start),
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (not completed)");
    }
    if (h->resp) MHD_destroy_response(h->resp);
    serve_infer_req_free(&h->req);
    repo_release(s->repo, h->v);
    free(h->body);
    atomic_fetch_sub(&s->held_bytes, (long long)h->reserved);
    free(h);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}


/* Open HTTP connections, counted for the drain at SIGTERM. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    server *s = cls;
    (void)c;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&s->open_conns, 1);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) atomic_fetch_sub(&s->open_conns, 1);
}

static struct MHD_Daemon *start_daemon(server *s, int port, bool metrics, int threads) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, s->o.host, &addr.sin_addr) != 1) {
        serve_log("ERROR", "--host %s is not an IPv4 address", s->o.host);
        return NULL;
    }
    /* poll(), not epoll: with epoll and a thread pool, MHD_quiesce_daemon
    ** (the drain at SIGTERM) and a worker thread that is awake both take
    ** the listen socket out of that worker's epoll set, and the loser's
    ** failed EPOLL_CTL_DEL is a libmicrohttpd panic (abort: seen in CI with
    ** SIGTERM 12 ms after start). poll() sets are rebuilt every turn, so
    ** quiescing only wakes the workers. Each worker polls its own share of
    ** at most 1024 connections. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (!metrics) flags |= MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, metrics ? on_metrics : on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 1),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.idle_timeout_secs,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(metrics ? 64 : 1024),
        /* 32 KiB, not more: libmicrohttpd mmaps a larger per-connection
        ** pool afresh for every connection (page faults on the first
        ** request of each, and a munmap after), and mallocs a smaller one
        ** from memory the thread already touched. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_NOTIFY_COMPLETED, metrics ? NULL : on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, metrics ? NULL : on_connection, s,
        MHD_OPTION_END);
    if (!d) serve_log("ERROR", "cannot listen on %s:%d: %s", s->o.host, port, strerror(errno));
    return d;
}

/* ---- start-up warm-up
** Before READY the server sends itself, over loopback, what a client sends:
** a GET, then a binary-tensor infer request of zeros (batch 1, profile 0's
** opt for other dims) to every loaded version. The first of each costs
** several times a steady request (code paths never run yet and their page
** faults and lazy symbol binding, the HTTP thread's allocator arena, the
** suspend/resume and response paths); a client's first request would pay
** it otherwise. Rounds of 2 x --threads concurrent connections repeat
** until every HTTP thread has served an infer request (connections go to
** whichever thread accepts them; at most 16 rounds, and no new round
** after 5 s). A version answering its warm-up request with an error takes
** its model out of service: READY must mean it answers. A 503 (the
** concurrent warm-up filled a small queue) or a warm-up the server could
** not send or got no answer to (its own client side failing) is logged and
** does not. */
typedef struct warm_req {
    char model[SERVE_NAME_MAX];
    long long version;
    char *bytes;                   /* the whole HTTP request */
    size_t len;
    int status;                    /* 0: not sent, -1: no answer, else the HTTP status
                                   ** (the first failure is kept) */
    bool costly;                   /* a run takes long: sent on few connections */
    int sent;
    char msg[256];
} warm_req;

typedef struct warm_job {
    server *s;
    warm_req *reqs;
    int n;
    int costly_cap;                /* connections a costly version is sent on */
    int sent;                      /* infer requests sent this round */
    pthread_mutex_t *mu;
} warm_job;

static int warm_connect(const server *s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->o.http_port);
    inet_pton(AF_INET, strcmp(s->o.host, "0.0.0.0") ? s->o.host : "127.0.0.1", &addr.sin_addr);
    /* Generous: a large model's first run on a loaded machine takes seconds. */
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request and reads its answer; returns the HTTP status (0: no
** answer) with the start of the body in msg. */
static int warm_exchange(int fd, const char *req, size_t len, char *msg, size_t msglen) {
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0) return 0;
        off += (size_t)k;
    }
    char head[8192];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof head - 1) return 0;
        ssize_t k = recv(fd, head + got, sizeof head - 1 - got, 0);
        if (k <= 0) return 0;
        got += (size_t)k;
        head[got] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) return 0;
    size_t body_len = 0;
    for (char *p = head; p && p < end; p = strstr(p, "\r\n")) {
        p += 2;
        if (!strncasecmp(p, "Content-Length:", 15)) body_len = strtoull(p + 15, NULL, 10);
    }
    size_t have = got - (size_t)(end + 4 - head);
    size_t m = have < msglen - 1 ? have : msglen - 1;
    memcpy(msg, end + 4, m);
    msg[m] = 0;
    char buf[16384];
    while (have < body_len) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0) return 0;
        if (m < msglen - 1) {
            size_t c = (size_t)k < msglen - 1 - m ? (size_t)k : msglen - 1 - m;
            memcpy(msg + m, buf, c);
            m += c;
            msg[m] = 0;
        }
        have += (size_t)k;
    }
    return status;
}

/* One client connection: a GET, then every version's infer request. */
static void *warm_client(void *arg) {
    warm_job *j = arg;
    int fd = warm_connect(j->s);
    if (fd < 0) return NULL;
    char msg[256];
    static const char get[] = "GET /v2/health/live HTTP/1.1\r\nHost: warm\r\n\r\n";
    int ok = warm_exchange(fd, get, sizeof get - 1, msg, sizeof msg) == 200;
    for (int i = 0; ok && i < j->n; i++) {
        warm_req *w = &j->reqs[i];
        pthread_mutex_lock(j->mu);
        bool go = !w->costly || w->sent < j->costly_cap;
        if (go) {
            w->sent++;
            j->sent++;
        }
        pthread_mutex_unlock(j->mu);
        if (!go) continue;
        int st = warm_exchange(fd, w->bytes, w->len, msg, sizeof msg);
        pthread_mutex_lock(j->mu);
        if (st == 503) st = -1;             /* busy, not broken */
        if (st > 0 && st != 200) {          /* a failure outranks everything */
            if (w->status <= 0 || w->status == 200) {
                w->status = st;
                snprintf(w->msg, sizeof w->msg, "%s", msg);
            }
        } else if (st == 200) {
            if (w->status <= 0) w->status = 200;
        } else if (w->status == 0) {
            w->status = -1;
        }
        pthread_mutex_unlock(j->mu);
        ok = st == 200;   /* an error answer may have closed the connection */
    }
    close(fd);
    return NULL;
}

/* The request a client would send first: zeros, batch 1 (or the smallest
** batch the engine takes). */
static bool warm_build(const server *s, serve_version *v, warm_req *w) {
    const serve_model_config *c = &v->cfg;
    sbuf head, req;
    sb_init(&head);
    sb_init(&req);
    size_t data = 0;
    sb_str(&head, "{\"inputs\":[");
    for (int i = 0; i < c->n_inputs; i++) {
        const serve_tensor_cfg *t = &c->inputs[i];
        int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
        if (kiln_engine_profile_shape(v->engine, 0, t->name, mn, op, mx)) goto fail;
        int off = c->max_batch_size > 0 ? 1 : 0;
        size_t nb = kiln_dtype_size(t->dtype);
        sb_str(&head, i ? ",{\"name\":" : "{\"name\":");
        sb_json_str(&head, t->name);
        sb_str(&head, ",\"shape\":[");
        if (off) sb_printf(&head, "%lld", (long long)(mn[0] > 1 ? mn[0] : 1));
        for (int d = 0; d < t->rank; d++) {
            int64_t dim = t->dims[d] < 0 ? op[d + off] : t->dims[d];
            sb_printf(&head, "%s%lld", d || off ? "," : "", (long long)dim);
            nb *= (size_t)dim;
        }
        if (off && mn[0] > 1) nb *= (size_t)mn[0];
        sb_printf(&head, "],\"datatype\":\"%s\",\"parameters\":{\"binary_data_size\":%zu}}",
                  serve_dtype_name(t->dtype), nb);
        data += nb;
    }
    sb_str(&head, "],\"parameters\":{\"binary_data_output\":true}}");
    if (head.oom || head.len + data > s->o.max_body_bytes) goto fail;
    sb_printf(&req, "POST /v2/models/%s/versions/%lld/infer HTTP/1.1\r\nHost: warm\r\n"
              "Kiln-Warmup: %s\r\nContent-Type: application/octet-stream\r\n"
              "Inference-Header-Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n",
              v->model, (long long)v->version, s->warm_token, head.len, head.len + data);
    sb_put(&req, head.p, head.len);
    size_t at = req.len;
    for (size_t k = 0; k < data && !req.oom; k += 4096) {
        static const char zeros[4096];
        sb_put(&req, zeros, data - k < 4096 ? data - k : 4096);
    }
    if (req.oom || req.len != at + data) goto fail;
    sb_free(&head);
    snprintf(w->model, sizeof w->model, "%s", v->model);
    w->version = (long long)v->version;
    /* Every connection of every round would queue a slow model's runs one
    ** after another: a version whose load-time warm-up request took over
    ** 0.5 s goes on as many connections as there are HTTP threads, and
    ** cheaper versions carry the later rounds. */
    w->costly = v->warmup_request_us > 500000;
    w->len = req.len;
    w->bytes = req.p;
    return true;
fail:
    sb_free(&head);
    sb_free(&req);
    return false;
}

static void warm_http(server *s) {
    serve_version **vs;
    int nv = repo_snapshot(s->repo, &vs), n = 0;
    warm_req *reqs = calloc((size_t)nv + 1, sizeof *reqs);
    for (int i = 0; reqs && i < nv; i++)
        if (warm_build(s, vs[i], &reqs[n])) n++;
        else serve_log("INFO", "model '%s' version %lld: no HTTP warm-up request (its input "
                       "is larger than --max-request-mib)", vs[i]->model, (long long)vs[i]->version);
    pthread_mutex_t mu;
    pthread_mutex_init(&mu, NULL);
    int threads = s->o.threads < 1 ? 1 : s->o.threads > 32 ? 32 : s->o.threads, rounds = 0, served;
    warm_job job = {s, reqs, reqs ? n : 0, threads, 0, &mu};
    uint64_t t0 = now_us();
    do {
        pthread_t t[64];
        int started = 0;
        for (int i = 0; i < 2 * threads; i++)
            if (!pthread_create(&t[started], NULL, warm_client, &job)) started++;
        for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
        rounds++;
        pthread_mutex_lock(&s->warm_mu);
        served = s->n_warm_threads;
        pthread_mutex_unlock(&s->warm_mu);
        bool failed = false;
        for (int i = 0; i < job.n; i++) failed |= reqs[i].status > 0 && reqs[i].status != 200;
        if (failed || !job.sent) break;   /* nothing left that a new round would send */
        job.sent = 0;
    } while (job.n && served < threads && rounds < 16 && now_us() - t0 < 5000000u);
    for (int i = 0; i < job.n; i++) {
        if (reqs[i].status == 200) continue;
        if (reqs[i].status <= 0) {
            serve_log("WARNING", "model '%s' version %lld: the HTTP warm-up request %s", reqs[i].model,
                      reqs[i].version, reqs[i].status ? "got no answer (or 503)" : "could not be sent");
            continue;
        }
        char why[512];
        snprintf(why, sizeof why, "warm-up request to version %lld through HTTP answered %d: %s",
                 reqs[i].version, reqs[i].status, reqs[i].msg);
        repo_fail_model(s->repo, reqs[i].model, why);
    }
    /* Statistics start here: what ran before is warm-up. */
    for (int i = 0; i < nv; i++) {
        repo_warmup_done(vs[i]);
        repo_release(s->repo, vs[i]);
    }
    if (job.n)
        serve_log("INFO", "HTTP warm-up: %d model version(s), %d round(s) of %d connection(s), "
                  "%d of %d HTTP thread(s) served an infer request", job.n, rounds, 2 * threads,
                  served, threads);
    for (int i = 0; i < n; i++) free(reqs[i].bytes);
    free(reqs);
    free(vs);
    pthread_mutex_destroy(&mu);
    atomic_store(&s->http_warm, true);
}

static void make_token(server *s) {
    unsigned char r[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(r, 1, sizeof r, f) : 0;
    if (f) fclose(f);
    if (got != sizeof r) {
        uint64_t x = now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
        memcpy(r, &x, sizeof x);
    }
    for (int i = 0; i < 16; i++) snprintf(s->warm_token + 2 * i, 3, "%02x", r[i]);
}

int serve_run(const serve_options *o) {
    server s;
    memset(&s, 0, sizeof s);
    s.o = *o;
    /* Block the stop signals in every thread; the main thread waits for
    ** them with sigtimedwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    make_token(&s);
    pthread_mutex_init(&s.warm_mu, NULL);
    serve_repo_options ro = {o->build_opt_level, o->poll_secs};
    s.repo = repo_create(o->repository, &ro);
    if (!s.repo) {
        serve_log("ERROR", "out of memory");
        return 1;
    }
    /* Listen first: liveness is answered while models build and warm (a
    ** model.onnx build can take minutes); readiness waits for them. */
    s.http = start_daemon(&s, o->http_port, false, o->threads);
    if (o->metrics_port > 0) s.metrics = start_daemon(&s, o->metrics_port, true, 1);
    if (!s.http || (o->metrics_port > 0 && !s.metrics)) {
        if (s.http) MHD_stop_daemon(s.http);
        if (s.metrics) MHD_stop_daemon(s.metrics);
        repo_destroy(s.repo);
        pthread_mutex_destroy(&s.warm_mu);
        return 1;
    }
    serve_log("INFO", "listening on %s:%d%s (%d threads); loading the model repository %s",
              o->host, o->http_port, o->metrics_port > 0 ? ", metrics on /metrics" : "",
              o->threads, o->repository);
    repo_load_all(s.repo);
    warm_http(&s);
    serve_log("INFO", "serving HTTP on %s:%d", o->host, o->http_port);
    uint64_t next_poll = now_us() + (uint64_t)o->poll_secs * 1000000u;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            serve_log("INFO", "%s: draining (at most %d s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                      o->drain_secs);
            break;
        }
        if (o->poll_secs > 0 && now_us() >= next_poll) {
            repo_poll(s.repo);
            next_poll = now_us() + (uint64_t)o->poll_secs * 1000000u;
        }
    }
    /* Stop accepting and close the listening socket first, then mark the
    ** drain: from then on every answer closes its connection, and a client
    ** that reconnects is refused at once. The other order lost requests
    ** under load (CI, session 11: 3 resets in 8,652): an answer marked
    ** "close" before the socket closed sent its client to reconnect into
    ** the accept backlog, which the kernel resets when the socket closes.
    ** Connections already open are served until nothing has been in
    ** flight for a moment (a request may be on the wire) or the deadline
    ** passes. */
    MHD_socket lfd = MHD_quiesce_daemon(s.http);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    atomic_store(&s.draining, true);
    /* Done when every connection has closed (clients that got a closing
    ** answer), or when nothing has been in flight for 1 s (idle keep-alive
    ** clients: a request may still be on the wire, or a client slow to
    ** send its next one on a loaded machine; a 300 ms window lost some in
    ** CI), or at the deadline. */
    uint64_t deadline = now_us() + (uint64_t)o->drain_secs * 1000000u, quiet_since = 0;
    while (now_us() < deadline) {
        if (atomic_load(&s.in_flight) == 0) {
            if (atomic_load(&s.open_conns) <= 0) break;
            if (!quiet_since) quiet_since = now_us();
            if (now_us() - quiet_since > 1000000) break;
        } else {
            quiet_since = 0;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&s.in_flight);
    MHD_stop_daemon(s.http);
    if (s.metrics) MHD_stop_daemon(s.metrics);
    repo_destroy(s.repo);
    serve_log("INFO", "stopped (%d request(s) still in flight at the deadline; %llu served)", left,
              (unsigned long long)atomic_load(&s.http_requests));
    pthread_mutex_destroy(&s.warm_mu);
    return left ? 1 : 0;
}
