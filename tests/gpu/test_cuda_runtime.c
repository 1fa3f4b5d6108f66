/* test_cuda_runtime.c: the CUDA runtime end to end through the public API
** on the bundled example model (and any ONNX model given as argv[1] with a
** 4-D float input named in argv[2]): CUDA engines against the CPU engine at
** several batch sizes; plain enqueue, CUDA-graph capture and replay (equal
** bit for bit); device-bound inputs and outputs on a caller's stream; four
** contexts on four threads and streams at once; FP16 and BF16 engines
** within their tolerance; a damaged engine and one whose fingerprint names
** another GPU refused with a message. Ends with `N passed, M failed`. */
#include "kiln.h"
#include "engine/engine_format.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *g_model = "examples/tiny_cnn.onnx";
static const char *g_input = "image";
static int64_t g_chw[3] = {3, 32, 32};

static float *random_input(int batch, unsigned seed, size_t *n_out) {
    size_t n = (size_t)batch * (size_t)(g_chw[0] * g_chw[1] * g_chw[2]);
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    *n_out = n;
    return p;
}

static double rel_l2(const float *a, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        if (isnan(a[i])) return INFINITY;
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static kiln_status build(const kiln_model *m, kiln_device dev, unsigned prec,
                         kiln_engine **out) {
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t size = 0;
    int64_t mn[4] = {1, g_chw[0], g_chw[1], g_chw[2]}, op[4] = {4, g_chw[0], g_chw[1], g_chw[2]},
            mx[4] = {16, g_chw[0], g_chw[1], g_chw[2]};
    int p;
    kiln_status st = kiln_builder_config_create(&cfg);
    if (!st) st = kiln_builder_config_set_device(cfg, dev);
    if (!st) st = kiln_builder_config_set_precisions(cfg, prec);
    if (!st) st = kiln_builder_config_add_profile(cfg, &p);
    if (!st) st = kiln_builder_config_set_shape(cfg, p, g_input, 4, mn, op, mx);
    if (!st) st = kiln_build_engine(m, cfg, &blob, &size);
    if (!st) st = kiln_engine_load_memory(blob, size, out);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    return st;
}

/* Runs ctx at batch on host buffers; returns a malloc'd output copy. */
static float *run_host(kiln_context *c, int batch, const float *x, size_t nx, int64_t *n_out) {
    int64_t dims[4] = {batch, g_chw[0], g_chw[1], g_chw[2]};
    if (kiln_context_set_input_shape(c, g_input, 4, dims) ||
        kiln_context_set_tensor(c, g_input, (void *)x, nx * sizeof *x) ||
        kiln_context_execute(c))
        return NULL;
    const kiln_tensor *t;
    const kiln_engine *e = NULL;
    (void)e;
    kiln_io_info info;
    (void)info;
    /* The example and the models used here have one output. */
    if (kiln_context_output(c, "probs", &t) && kiln_context_output(c, "output", &t) &&
        kiln_context_output(c, "logits", &t))
        return NULL;
    *n_out = kiln_tensor_numel(t);
    float *r = malloc((size_t)*n_out * sizeof *r);
    if (r) memcpy(r, kiln_tensor_cdata(t), (size_t)*n_out * sizeof *r);
    return r;
}

typedef struct job {
    const kiln_engine *gpu, *cpu;
    int iterations;
    unsigned seed;
    int errors;
    double worst;
} job;

static void *worker(void *arg) {
    job *j = arg;
    kiln_context *g = NULL, *c = NULL;
    if (kiln_context_create(j->gpu, &g) || kiln_context_create(j->cpu, &c)) {
        j->errors++;
        goto done;
    }
    for (int it = 0; it < j->iterations; it++) {
        int batch = 1 + (int)((j->seed + (unsigned)it * 7u) % 16u);
        size_t nx;
        float *x = random_input(batch, j->seed * 31u + (unsigned)it, &nx);
        int64_t ng = 0, nc = 0;
        float *yg = run_host(g, batch, x, nx, &ng);
        float *yc = run_host(c, batch, x, nx, &nc);
        if (!yg || !yc || ng != nc) j->errors++;
        else j->worst = fmax(j->worst, rel_l2(yg, yc, nc));
        free(x); free(yg); free(yc);
    }
done:
    kiln_context_destroy(g);
    kiln_context_destroy(c);
    return NULL;
}

/* A layer that reads a parameter tensor on the host mid-run (ReduceSum with
** its axes a graph input: a TACTIC_READS_PARAMS tactic) keeps its runs out
** of CUDA graphs: runs with the same shapes and bindings but other axes
** values each match the CPU engine (a captured run replayed would keep the
** axes it saw). Uses the ONNX node test model under $KILN_NODE_DIR. */
static void test_runtime_params(void) {
    const char *nd = getenv("KILN_NODE_DIR");
    if (!nd) {
        printf("runtime parameters: skipped (KILN_NODE_DIR is not set)\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/test_reduce_sum_keepdims_random/model.onnx", nd);
    kiln_model *m = NULL;
    kiln_engine *e[2] = {NULL, NULL};
    kiln_context *c[2] = {NULL, NULL};
    if (kiln_model_load(path, &m)) {
        CHECK(0, "load %s", path);
        return;
    }
    for (int k = 0; k < 2; k++) {
        kiln_builder_config *cfg = NULL;
        void *blob = NULL;
        size_t size = 0;
        kiln_status st = kiln_builder_config_create(&cfg);
        if (!st) st = kiln_builder_config_set_device(cfg, k ? KILN_DEVICE_CUDA : KILN_DEVICE_CPU);
        if (!st) st = kiln_build_engine(m, cfg, &blob, &size);
        if (!st) st = kiln_engine_load_memory(blob, size, &e[k]);
        if (!st) st = kiln_context_create(e[k], &c[k]);
        kiln_free(blob);
        kiln_builder_config_destroy(cfg);
        CHECK(st == KILN_OK, "runtime-axes ReduceSum %s engine", k ? "CUDA" : "CPU");
        if (st) goto done;
    }
    int host = 0;
    for (int i = 0; i < kiln_engine_num_layers(e[1]); i++)
        host += !kiln_engine_layer_on_device(e[1], i);
    CHECK(host == 0, "runtime-axes ReduceSum runs on the device (%d host layers)", host);
    float data[12];
    for (int i = 0; i < 12; i++) data[i] = (float)(i * 7 % 11) - 4.5f;
    static const int64_t axes_seq[] = {1, 1, 2, 2, 0, -1, 1};
    for (size_t r = 0; r < sizeof axes_seq / sizeof axes_seq[0]; r++) {
        int64_t axes = axes_seq[r];
        const kiln_tensor *t[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            kiln_status st = kiln_context_set_tensor(c[k], "data", data, sizeof data);
            if (!st) st = kiln_context_set_tensor(c[k], "axes", &axes, sizeof axes);
            if (!st) st = kiln_context_execute(c[k]);
            if (!st) st = kiln_context_output(c[k], "reduced", &t[k]);
            CHECK(st == KILN_OK, "runtime-axes run %zu on %s", r, k ? "CUDA" : "CPU");
            if (st) goto done;
        }
        int64_t n = kiln_tensor_numel(t[0]);
        bool same = n == kiln_tensor_numel(t[1]) && kiln_tensor_rank(t[0]) == kiln_tensor_rank(t[1]);
        for (int d = 0; same && d < kiln_tensor_rank(t[0]); d++)
            same = kiln_tensor_dims(t[0])[d] == kiln_tensor_dims(t[1])[d];
        double worst = 0;
        for (int64_t i = 0; same && i < n; i++) {
            double a = ((const float *)kiln_tensor_cdata(t[0]))[i];
            double b = ((const float *)kiln_tensor_cdata(t[1]))[i];
            if (fabs(a - b) > worst) worst = fabs(a - b);
        }
        CHECK(same && worst <= 1e-5, "runtime axes %lld (run %zu): CUDA result %s (max abs "
              "diff %g)", (long long)axes, r, same ? "differs" : "has another shape", worst);
    }
done:
    for (int k = 0; k < 2; k++) {
        kiln_context_destroy(c[k]);
        kiln_engine_free(e[k]);
    }
    kiln_model_free(m);
}

int main(int argc, char **argv) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    if (argc > 2) {
        g_model = argv[1];
        g_input = argv[2];
    }
    if (argc > 5)
        for (int k = 0; k < 3; k++) g_chw[k] = atoll(argv[3 + k]);
    kiln_model *m = NULL;
    kiln_engine *cpu = NULL, *gpu = NULL;
    if (kiln_model_load(g_model, &m) || build(m, KILN_DEVICE_CPU, KILN_PRECISION_FP32, &cpu)) {
        printf("FAIL setup: %s\n1 passed, 1 failed\n", kiln_last_error());
        return 1;
    }
    kiln_status st = build(m, KILN_DEVICE_CUDA, KILN_PRECISION_FP32, &gpu);
    CHECK(st == KILN_OK, "CUDA FP32 build");
    if (st) goto done;
    int host_layers = 0;
    for (int i = 0; i < kiln_engine_num_layers(gpu); i++)
        host_layers += !kiln_engine_layer_on_device(gpu, i);
    printf("cuda engine: %d layers, %d on the host; %s\n", kiln_engine_num_layers(gpu),
           host_layers, kiln_engine_device_fingerprint(gpu));

    /* Plain runs vs the CPU engine, then graph capture and replay. */
    {
        kiln_context *g = NULL, *c = NULL, *p = NULL;
        CHECK(!kiln_context_create(gpu, &g) && !kiln_context_create(gpu, &p) &&
                  !kiln_context_create(cpu, &c), "contexts");
        kiln_context_set_cuda_graphs(p, 0);
        /* alternating sizes replay their own graph slots; more than the 8
        ** slots (2, 5..11) so the least recently used ones get recycled */
        int batches[] = {1, 4, 16, 3, 3, 3, 3, 4, 1, 16, 4, 1, 3, 16, 2, 5, 6, 7, 8, 9, 10, 11,
                         2, 5, 1, 4, 16, 2, 5, 11};
        for (size_t b = 0; g && p && c && b < sizeof batches / sizeof *batches; b++) {
            size_t nx;
            float *x = random_input(batches[b], 100u + (unsigned)b, &nx);
            int64_t n1 = 0, n2 = 0, n3 = 0;
            float *yc = run_host(c, batches[b], x, nx, &n1);
            float *yp = run_host(p, batches[b], x, nx, &n2);
            float *yg = run_host(g, batches[b], x, nx, &n3);
            CHECK(yc && yp && yg && n1 == n2 && n1 == n3, "run batch %d", batches[b]);
            if (yc && yp && yg && n1 == n2 && n1 == n3) {
                double e = rel_l2(yp, yc, n1);
                CHECK(e <= 1e-4, "batch %d: plain enqueue rel-L2 %.3g vs CPU", batches[b], e);
                CHECK(!memcmp(yp, yg, (size_t)n1 * sizeof *yp),
                      "batch %d: graph run (run %zu) differs from plain enqueue", batches[b], b);
            }
            free(x); free(yc); free(yp); free(yg);
        }
        kiln_context_destroy(g);
        kiln_context_destroy(p);
        kiln_context_destroy(c);
    }

    /* Device-bound input and output, enqueued on the caller's stream. */
    {
        kiln_context *g = NULL, *c = NULL;
        cudaStream_t s = NULL;
        void *dx = NULL, *dy = NULL;
        size_t nx;
        float *x = random_input(8, 7u, &nx);
        int64_t dims[4] = {8, g_chw[0], g_chw[1], g_chw[2]}, odims[KILN_MAX_RANK];
        int orank = 0;
        int64_t nc = 0;
        bool ok = !kiln_context_create(gpu, &g) && !kiln_context_create(cpu, &c) &&
                  cudaStreamCreate(&s) == cudaSuccess &&
                  cudaMalloc(&dx, nx * sizeof(float)) == cudaSuccess &&
                  cudaMemcpy(dx, x, nx * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess &&
                  !kiln_context_set_input_shape(g, g_input, 4, dims) &&
                  !kiln_context_output_shape(g, "probs", &orank, odims);
        float *yc = ok ? run_host(c, 8, x, nx, &nc) : NULL;
        ok = ok && yc && cudaMalloc(&dy, (size_t)nc * sizeof(float)) == cudaSuccess &&
             !kiln_context_set_device_tensor(g, g_input, dx, nx * sizeof(float)) &&
             !kiln_context_set_device_tensor(g, "probs", dy, (size_t)nc * sizeof(float));
        CHECK(ok, "device-bound setup");
        for (int r = 0; ok && r < 3; r++) {
            st = kiln_context_enqueue(g, s);
            CHECK(!st, "enqueue %d on a caller stream", r);
            float *y = malloc((size_t)nc * sizeof *y);
            cudaStreamSynchronize(s);
            cudaMemcpy(y, dy, (size_t)nc * sizeof(float), cudaMemcpyDeviceToHost);
            double e = rel_l2(y, yc, nc);
            CHECK(e <= 1e-4, "device-bound run %d: rel-L2 %.3g", r, e);
            free(y);
        }
        free(x); free(yc);
        cudaFree(dx); cudaFree(dy);
        if (s) cudaStreamDestroy(s);
        kiln_context_destroy(g);
        kiln_context_destroy(c);
    }

    /* Four contexts on four threads (four streams) at once. */
    {
        pthread_t th[4];
        job jobs[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] = (job){gpu, cpu, 12, (unsigned)(t + 1) * 977u, 0, 0};
            pthread_create(&th[t], NULL, worker, &jobs[t]);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECK(jobs[t].errors == 0 && jobs[t].worst <= 1e-4,
                  "thread %d: %d errors, worst rel-L2 %.3g", t, jobs[t].errors, jobs[t].worst);
        }
    }

    /* FP16 and BF16 engines. */
    unsigned precs[2] = {KILN_PRECISION_FP16, KILN_PRECISION_BF16};
    const char *pname[2] = {"fp16", "bf16"};
    for (int k = 0; k < 2; k++) {
        kiln_engine *h = NULL;
        st = build(m, KILN_DEVICE_CUDA, precs[k] | KILN_PRECISION_FP32, &h);
        CHECK(!st, "%s build", pname[k]);
        kiln_context *g = NULL, *c = NULL;
        if (!st && !kiln_context_create(h, &g) && !kiln_context_create(cpu, &c)) {
            size_t nx;
            float *x = random_input(4, 55u, &nx);
            int64_t n1 = 0, n2 = 0;
            float *yc = run_host(c, 4, x, nx, &n1);
            float *yh = run_host(g, 4, x, nx, &n2);
            double e = yc && yh && n1 == n2 ? rel_l2(yh, yc, n1) : INFINITY;
            printf("%s engine: rel-L2 %.3g vs FP32 CPU\n", pname[k], e);
            CHECK(e <= 1e-2, "%s engine rel-L2 %.3g", pname[k], e);
            free(x); free(yc); free(yh);
        }
        kiln_context_destroy(g);
        kiln_context_destroy(c);
        kiln_engine_free(h);
    }

    /* Damage and a foreign fingerprint. */
    {
        kiln_builder_config *cfg = NULL;
        void *blob = NULL;
        size_t size = 0;
        int p;
        int64_t d[4] = {2, g_chw[0], g_chw[1], g_chw[2]};
        if (!kiln_builder_config_create(&cfg) &&
            !kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA) &&
            !kiln_builder_config_add_profile(cfg, &p) &&
            !kiln_builder_config_set_shape(cfg, p, g_input, 4, d, d, d) &&
            !kiln_build_engine(m, cfg, &blob, &size)) {
            uint8_t *b = malloc(size);
            kiln_engine *x = NULL;
            memcpy(b, blob, size);
            b[size / 2] ^= 0x5a;
            st = kiln_engine_load_memory(b, size, &x);
            CHECK(st == KILN_CORRUPT_ENGINE, "damaged engine: %s", kiln_status_name(st));
            kiln_engine_free(x);
            x = NULL;
            memcpy(b, blob, size);
            uint8_t *hit = NULL;
            for (size_t i = 0; i + 4 < size && !hit; i++)
                if (!memcmp(b + i, "sm=", 3)) hit = b + i;
            CHECK(hit != NULL, "fingerprint in the engine");
            if (hit) {
                hit[3] = '1'; /* sm=90 -> sm=10 */
                engine_reseal(b, size);
                st = kiln_engine_load_memory(b, size, &x);
                CHECK(st == KILN_INCOMPATIBLE_ENGINE && strstr(kiln_last_error(), "rebuild"),
                      "foreign GPU engine: %s", kiln_status_name(st));
                printf("foreign GPU engine: %s\n", kiln_last_error());
                kiln_engine_free(x);
            }
            free(b);
        } else {
            CHECK(0, "fixed-shape CUDA build");
        }
        kiln_free(blob);
        kiln_builder_config_destroy(cfg);
    }
done:
    kiln_engine_free(gpu);
    kiln_engine_free(cpu);
    kiln_model_free(m);
    test_runtime_params();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
