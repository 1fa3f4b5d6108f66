/* cli_bench_gpu.c: `kiln bench` on an engine of a device backend (CUDA), in
** the manner of trtexec: throughput, and per run the host latency (inputs
** in, outputs out, as a caller with host buffers sees it), the enqueue time
** (until kiln_context_enqueue returns, everything bound on the device), the
** GPU compute time (enqueue to completion with device-bound I/O: what a
** caller whose data already lives on the GPU sees), and the H2D and D2H
** copies of the I/O measured on their own. --no-data-transfers times only
** the device-bound runs; --streams N runs N contexts on N threads at once;
** --no-cuda-graph turns CUDA graphs off. */
#include "cli.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    double *v;
    long long n, cap;
} series;

static bool push(series *s, double x) {
    if (s->n == s->cap) {
        long long cap = s->cap ? 2 * s->cap : 1024;
        double *p = realloc(s->v, (size_t)cap * sizeof *p);
        if (!p) return false;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

static int cmp_dbl(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return p < q ? -1 : p > q;
}

static double pct(const series *s, double p) {
    if (s->n <= 0) return 0;
    double k = p / 100.0 * (double)(s->n - 1);
    long long lo = (long long)k, hi = lo + 1 < s->n ? lo + 1 : lo;
    return s->v[lo] + (s->v[hi] - s->v[lo]) * (k - (double)lo);
}

static double mean_of(const series *s) {
    double t = 0;
    for (long long i = 0; i < s->n; i++) t += s->v[i];
    return s->n ? t / (double)s->n : 0;
}

/* Device copies of the inputs and outputs of one context, bound in place. */
typedef struct dev_io {
    const kiln_engine *e;
    int ni, no;
    void **din, **dout;
    size_t *nin, *nout;
} dev_io;

static void dev_io_free(dev_io *d) {
    for (int i = 0; d->din && i < d->ni; i++) kiln_engine_device_free(d->e, d->din[i]);
    for (int o = 0; d->dout && o < d->no; o++) kiln_engine_device_free(d->e, d->dout[o]);
    free(d->din); free(d->dout); free(d->nin); free(d->nout);
    memset(d, 0, sizeof *d);
}

static kiln_status dev_io_bind(dev_io *d, const kiln_engine *e, kiln_context *c,
                               kiln_tensor *const *ins) {
    d->e = e;
    d->ni = kiln_engine_num_inputs(e);
    d->no = kiln_engine_num_outputs(e);
    d->din = calloc((size_t)d->ni + 1, sizeof *d->din);
    d->dout = calloc((size_t)d->no + 1, sizeof *d->dout);
    d->nin = calloc((size_t)d->ni + 1, sizeof *d->nin);
    d->nout = calloc((size_t)d->no + 1, sizeof *d->nout);
    if (!d->din || !d->dout || !d->nin || !d->nout) return KILN_OUT_OF_MEMORY;
    kiln_status st = KILN_OK;
    for (int i = 0; !st && i < d->ni; i++) {
        kiln_io_info io;
        kiln_engine_input(e, i, &io);
        d->nin[i] = kiln_tensor_nbytes(ins[i]);
        if (!(st = kiln_context_set_input_shape(c, io.name, kiln_tensor_rank(ins[i]),
                                                kiln_tensor_dims(ins[i]))) &&
            !(st = kiln_engine_device_alloc(e, d->nin[i] ? d->nin[i] : 1, &d->din[i])) &&
            !(st = kiln_engine_copy_to_device(e, d->din[i], kiln_tensor_cdata(ins[i]),
                                              d->nin[i])))
            st = kiln_context_set_device_tensor(c, io.name, d->din[i], d->nin[i]);
    }
    for (int o = 0; !st && o < d->no; o++) {
        kiln_io_info io;
        int rank;
        int64_t dims[KILN_MAX_RANK];
        kiln_engine_output(e, o, &io);
        if ((st = kiln_context_output_shape(c, io.name, &rank, dims))) break;
        int64_t n = 1;
        for (int k = 0; k < rank; k++) n *= dims[k] < 0 ? 0 : dims[k];
        d->nout[o] = (size_t)n * kiln_dtype_size(io.dtype);
        if (!(st = kiln_engine_device_alloc(e, d->nout[o] ? d->nout[o] : 1, &d->dout[o])))
            st = kiln_context_set_device_tensor(c, io.name, d->dout[o], d->nout[o]);
    }
    return st;
}

typedef struct stream_job {
    const kiln_engine *e;
    kiln_tensor *const *ins;
    bool graphs;
    double until_ms;
    long long runs;
    kiln_status st;
} stream_job;

static void *stream_worker(void *arg) {
    stream_job *j = arg;
    kiln_context *c = NULL;
    dev_io d = {0};
    if (!(j->st = kiln_context_create(j->e, &c)) &&
        !(j->st = kiln_context_set_cuda_graphs(c, j->graphs)) &&
        !(j->st = dev_io_bind(&d, j->e, c, j->ins))) {
        while (cli_now_ms() < j->until_ms) {
            if ((j->st = kiln_context_execute(c))) break;
            j->runs++;
        }
    }
    dev_io_free(&d);
    kiln_context_destroy(c);
    return NULL;
}

static void print_series(const char *what, series *s, bool json, bool *first) {
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_dbl);
    if (json) {
        printf("%s\"%s\":{\"min\":%.4f,\"mean\":%.4f,\"median\":%.4f,\"p90\":%.4f,"
               "\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f,\"n\":%lld}", *first ? "" : ",", what,
               s->n ? s->v[0] : 0, mean_of(s), pct(s, 50), pct(s, 90), pct(s, 95), pct(s, 99),
               s->n ? s->v[s->n - 1] : 0, s->n);
        *first = false;
        return;
    }
    printf("  %-15s min %9.4f  mean %9.4f  median %9.4f  p90 %9.4f  p95 %9.4f  p99 %9.4f  "
           "max %9.4f ms\n", what, s->n ? s->v[0] : 0, mean_of(s), pct(s, 50), pct(s, 90),
           pct(s, 95), pct(s, 99), s->n ? s->v[s->n - 1] : 0);
}

int cli_bench_device(cli_args *a, const char *path, kiln_engine *e, kiln_context *ctx,
                     kiln_tensor *const *ins, int ni) {
    bool json = cli_has(a, "--json"), no_xfer = cli_has(a, "--no-data-transfers");
    bool graphs = !cli_has(a, "--no-cuda-graph");
    int streams = cli_has(a, "--streams") ? (int)cli_get(a, "--streams")->i : 1;
    double warmup_ms = cli_has(a, "--warmup") ? cli_get(a, "--warmup")->num : 200;
    double duration_s = cli_has(a, "--duration") ? cli_get(a, "--duration")->num : 3;
    long long iterations = cli_has(a, "--iterations") ? cli_get(a, "--iterations")->i : 10;
    int64_t batch = ni && kiln_tensor_rank(ins[0]) > 0 ? kiln_tensor_dims(ins[0])[0] : 1;
    series host = {0}, enq = {0}, comp = {0}, h2d = {0}, d2h = {0};
    kiln_context *dctx = NULL;
    dev_io d = {0};
    void *stage = NULL;
    int rc = CLI_FAIL;
    kiln_set_num_threads(1);
    if (kiln_context_set_cuda_graphs(ctx, graphs)) goto lib_fail;
    int host_layers = 0;
    for (int i = 0; i < kiln_engine_num_layers(e); i++)
        host_layers += !kiln_engine_layer_on_device(e, i);

    /* Host-buffer runs (the default path of kiln_context_execute). */
    if (!no_xfer && streams == 1) {
        double end = cli_now_ms() + warmup_ms;
        do {
            if (kiln_context_execute(ctx)) goto lib_fail;
        } while (cli_now_ms() < end);
        double start = cli_now_ms();
        while (host.n < iterations || cli_now_ms() - start < duration_s * 1000.0) {
            double t0 = cli_now_ms();
            if (kiln_context_execute(ctx)) goto lib_fail;
            if (!push(&host, cli_now_ms() - t0)) goto oom;
        }
    }
    /* Device-bound runs: enqueue time and compute time. */
    double wall = 0;
    long long runs = 0;
    if (streams == 1) {
        if (kiln_context_create(e, &dctx) || kiln_context_set_cuda_graphs(dctx, graphs) ||
            dev_io_bind(&d, e, dctx, ins))
            goto lib_fail;
        void *s = kiln_context_stream(dctx);
        double end = cli_now_ms() + warmup_ms;
        do {
            if (kiln_context_execute(dctx)) goto lib_fail;
        } while (cli_now_ms() < end);
        double start = cli_now_ms();
        while (comp.n < iterations || cli_now_ms() - start < duration_s * 1000.0) {
            double t0 = cli_now_ms();
            if (kiln_context_enqueue(dctx, s)) goto lib_fail;
            double t1 = cli_now_ms();
            if (kiln_context_synchronize(dctx)) goto lib_fail;
            double t2 = cli_now_ms();
            if (!push(&enq, t1 - t0) || !push(&comp, t2 - t0)) goto oom;
        }
        wall = cli_now_ms() - start;
        runs = comp.n;
        /* I/O copies on their own, on the same buffers. */
        size_t mx = 0;
        for (int i = 0; i < d.ni; i++) mx = d.nin[i] > mx ? d.nin[i] : mx;
        for (int o = 0; o < d.no; o++) mx = d.nout[o] > mx ? d.nout[o] : mx;
        if (!(stage = malloc(mx ? mx : 1))) goto oom;
        for (long long k = 0; k < (comp.n < 200 ? comp.n : 200); k++) {
            double t0 = cli_now_ms();
            for (int i = 0; i < d.ni; i++)
                if (kiln_engine_copy_to_device(e, d.din[i], kiln_tensor_cdata(ins[i]), d.nin[i]))
                    goto lib_fail;
            double t1 = cli_now_ms();
            for (int o = 0; o < d.no; o++)
                if (kiln_engine_copy_to_host(e, stage, d.dout[o], d.nout[o])) goto lib_fail;
            double t2 = cli_now_ms();
            if (!push(&h2d, t1 - t0) || !push(&d2h, t2 - t1)) goto oom;
        }
    } else {
        pthread_t *th = calloc((size_t)streams, sizeof *th);
        stream_job *jobs = calloc((size_t)streams, sizeof *jobs);
        if (!th || !jobs) {
            free(th);
            free(jobs);
            goto oom;
        }
        double start = cli_now_ms();
        double until = start + warmup_ms + duration_s * 1000.0;
        for (int k = 0; k < streams; k++) {
            jobs[k] = (stream_job){e, ins, graphs, until, 0, KILN_OK};
            pthread_create(&th[k], NULL, stream_worker, &jobs[k]);
        }
        kiln_status st = KILN_OK;
        for (int k = 0; k < streams; k++) {
            pthread_join(th[k], NULL);
            runs += jobs[k].runs;
            if (jobs[k].st) st = jobs[k].st;
        }
        wall = cli_now_ms() - start;
        free(th);
        free(jobs);
        if (st) goto lib_fail;
    }
    double qps = wall > 0 ? (double)runs / (wall / 1000.0) : 0;
    if (comp.n) {
        /* Throughput of back-to-back device-bound runs (one stream). */
        qsort(comp.v, (size_t)comp.n, sizeof *comp.v, cmp_dbl);
        qps = pct(&comp, 50) > 0 ? 1000.0 / pct(&comp, 50) : 0;
    }
    if (json) {
        bool first = true;
        printf("{\"engine\":");
        cli_json_str(path);
        printf(",\"backend\":\"%s\",\"device\":", kiln_engine_backend(e));
        cli_json_str(kiln_engine_device_fingerprint(e));
        printf(",\"cuda_graphs\":%s,\"streams\":%d,\"batch\":%lld,\"host_fallback_layers\":%d,"
               "\"throughput_qps\":%.4f,\"throughput_items_per_s\":%.4f,",
               graphs ? "true" : "false", streams, (long long)batch, host_layers, qps,
               qps * (double)batch);
        if (comp.n)
            printf("\"latency_ms\":{\"median\":%.4f,\"mean\":%.4f,\"min\":%.4f,\"p99\":%.4f},",
                   pct(&comp, 50), mean_of(&comp), comp.v[0], pct(&comp, 99));
        printf("\"series_ms\":{");
        if (host.n) print_series("host_latency", &host, true, &first);
        if (enq.n) print_series("enqueue", &enq, true, &first);
        if (h2d.n) print_series("h2d", &h2d, true, &first);
        if (comp.n) print_series("gpu_compute", &comp, true, &first);
        if (d2h.n) print_series("d2h", &d2h, true, &first);
        printf("}}\n");
    } else {
        bool first = true;
        printf("=== Performance summary (%s) ===\n", kiln_engine_backend(e));
        printf("%-12s %s\n", "Target:", path);
        printf("%-12s %s\n", "Device:", kiln_engine_device_fingerprint(e));
        printf("%-12s %lld; CUDA graphs %s; %d stream(s); %d host-fallback layer(s)\n",
               "Batch:", (long long)batch, graphs ? "on" : "off", streams, host_layers);
        printf("%-12s %.3f qps, %.3f items/s%s\n", "Throughput:", qps, qps * (double)batch,
               streams > 1 ? " (all streams)" : " (device-bound runs back to back)");
        if (host.n) print_series("Host latency", &host, false, &first);
        if (enq.n) print_series("Enqueue", &enq, false, &first);
        if (h2d.n) print_series("H2D", &h2d, false, &first);
        if (comp.n) print_series("GPU compute", &comp, false, &first);
        if (d2h.n) print_series("D2H", &d2h, false, &first);
        printf("(GPU compute: enqueue to completion with inputs and outputs in device memory; "
               "H2D/D2H: the I/O copies alone; host latency: kiln_context_execute on host "
               "buffers)\n");
        if (comp.n && enq.n && pct(&enq, 50) > 0.8 * pct(&comp, 50))
            printf("Warning: enqueue-bound: enqueueing takes %.0f%% of the GPU time; CUDA graphs "
                   "(on unless --no-cuda-graph) or larger batches help\n",
                   100.0 * pct(&enq, 50) / pct(&comp, 50));
        if (comp.n && h2d.n && pct(&h2d, 50) + pct(&d2h, 50) > pct(&comp, 50))
            printf("Warning: copy-bound: H2D + D2H (%.3f ms) exceed the compute (%.3f ms); keep "
                   "the data on the GPU (kiln_context_set_device_tensor)\n",
                   pct(&h2d, 50) + pct(&d2h, 50), pct(&comp, 50));
    }
    rc = CLI_OK;
    goto done;
oom:
    fprintf(stderr, "kiln bench: out of memory\n");
    goto done;
lib_fail:
    cli_lib_error("bench", "run failed");
done:
    free(stage);
    dev_io_free(&d);
    kiln_context_destroy(dctx);
    free(host.v); free(enq.v); free(comp.v); free(h2d.v); free(d2h.v);
    return rc;
}
