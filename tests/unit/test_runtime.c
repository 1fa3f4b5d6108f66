/* test_runtime.c: the public build/run API end to end on the bundled example
** model: two optimization profiles, many contexts sharing one engine across
** threads, caller-provided activation memory, shape queries and refusals.
** Every result is compared with the reference interpreter. */
#include "kiln.h"

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

static kiln_tensor *random_image(int batch, unsigned seed) {
    int64_t dims[4] = {batch, 3, 32, 32};
    kiln_tensor *t;
    if (kiln_tensor_create(KILN_DTYPE_FLOAT32, 4, dims, &t)) return NULL;
    float *p = kiln_tensor_data(t);
    for (int64_t i = 0; i < kiln_tensor_numel(t); i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return t;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

typedef struct job {
    const kiln_engine *e;
    const kiln_model *m;
    int batch, iterations;
    unsigned seed;
    double worst;
    int errors;
} job;

/* Each thread owns one context; all share the engine. */
static void *worker(void *arg) {
    job *j = arg;
    kiln_context *c = NULL;
    if (kiln_context_create(j->e, &c)) {
        j->errors++;
        return NULL;
    }
    for (int it = 0; it < j->iterations; it++) {
        int batch = 1 + (int)((j->seed + (unsigned)it * 7u) % (unsigned)j->batch);
        kiln_tensor *x = random_image(batch, j->seed * 31u + (unsigned)it);
        kiln_tensor *want = NULL;
        float out[32 * 10];
        int64_t dims[4] = {batch, 3, 32, 32};
        if (!x || kiln_model_run_reference(j->m, (const kiln_tensor *const *)&x, &want) ||
            kiln_context_set_input_shape(c, "image", 4, dims) ||
            kiln_context_set_tensor(c, "image", kiln_tensor_data(x), kiln_tensor_nbytes(x)) ||
            kiln_context_set_tensor(c, "probs", out, sizeof out) ||
            kiln_context_execute(c)) {
            j->errors++;
        } else {
            double d = max_diff(out, kiln_tensor_data(want), kiln_tensor_numel(want));
            if (d > j->worst) j->worst = d;
        }
        kiln_tensor_destroy(x);
        kiln_tensor_destroy(want);
    }
    kiln_context_destroy(c);
    return NULL;
}

int main(void) {
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    void *blob = NULL;
    size_t n = 0;
    CHECK(kiln_model_load("examples/tiny_cnn.onnx", &m) == KILN_OK, "load model");
    if (!m) goto done;

    /* A model with a dynamic batch cannot build without a profile. */
    CHECK(kiln_builder_config_create(&cfg) == KILN_OK, "config");
    kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_ERROR);
    CHECK(kiln_build_engine(m, cfg, &blob, &n) == KILN_INVALID_ARGUMENT &&
              strstr(kiln_last_error(), "batch"),
          "build without a profile must name the dynamic dim");

    /* Two profiles: small batches and large ones. */
    int p0, p1;
    int64_t mn0[4] = {1, 3, 32, 32}, op0[4] = {2, 3, 32, 32}, mx0[4] = {4, 3, 32, 32};
    int64_t mn1[4] = {5, 3, 32, 32}, op1[4] = {8, 3, 32, 32}, mx1[4] = {32, 3, 32, 32};
    CHECK(kiln_builder_config_add_profile(cfg, &p0) == KILN_OK && p0 == 0, "profile 0");
    CHECK(kiln_builder_config_set_shape(cfg, p0, "image", 4, mn0, op0, mx0) == KILN_OK, "shape 0");
    CHECK(kiln_builder_config_add_profile(cfg, &p1) == KILN_OK && p1 == 1, "profile 1");
    CHECK(kiln_builder_config_set_shape(cfg, p1, "image", 4, mn1, op1, mx1) == KILN_OK, "shape 1");
    CHECK(kiln_builder_config_set_shape(cfg, p1, "image", 4, mx1, op1, mn1) ==
              KILN_INVALID_ARGUMENT, "min > max is refused");
    CHECK(kiln_builder_config_set_shape(cfg, p1, "nope", 4, mn1, op1, mx1) == KILN_OK,
          "unknown input accepted at config time");
    CHECK(kiln_build_engine(m, cfg, &blob, &n) == KILN_INVALID_ARGUMENT &&
              strstr(kiln_last_error(), "nope"),
          "unknown input refused at build time");
    kiln_builder_config_destroy(cfg);
    cfg = NULL;
    CHECK(kiln_builder_config_create(&cfg) == KILN_OK, "config");
    kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_ERROR);
    kiln_builder_config_set_opt_level(cfg, 1);
    kiln_builder_config_add_profile(cfg, &p0);
    kiln_builder_config_set_shape(cfg, p0, "image", 4, mn0, op0, mx0);
    kiln_builder_config_add_profile(cfg, &p1);
    kiln_builder_config_set_shape(cfg, p1, "image", 4, mn1, op1, mx1);
    CHECK(kiln_build_engine(m, cfg, &blob, &n) == KILN_OK && blob && n > 0, "build");
    if (!blob) goto done;
    CHECK(kiln_engine_load_memory(blob, n, &e) == KILN_OK, "load engine");
    if (!e) goto done;
    CHECK(kiln_engine_num_profiles(e) == 2, "two profiles");
    CHECK(kiln_engine_activation_bytes(e, 1) > kiln_engine_activation_bytes(e, 0),
          "larger profile plans more memory");

    /* Profile 1 via caller-provided memory; shapes outside it are refused. */
    {
        uint64_t need = 0;
        for (int p = 0; p < 2; p++)
            if (kiln_engine_activation_bytes(e, p) > need) need = kiln_engine_activation_bytes(e, p);
        void *mem = aligned_alloc(64, (size_t)((need + 63) / 64 * 64));
        kiln_context *c = NULL;
        CHECK(kiln_context_create_with_memory(e, mem, (size_t)need, &c) == KILN_OK, "ctx mem");
        if (c) {
            int64_t d3[4] = {3, 3, 32, 32}, d20[4] = {20, 3, 32, 32};
            CHECK(kiln_context_set_input_shape(c, "image", 4, d20) == KILN_INVALID_ARGUMENT &&
                      strstr(kiln_last_error(), "max 4x3x32x32"),
                  "batch 20 outside profile 0");
            CHECK(kiln_context_set_profile(c, 1) == KILN_OK, "select profile 1");
            CHECK(kiln_context_set_input_shape(c, "image", 4, d3) == KILN_INVALID_ARGUMENT,
                  "batch 3 outside profile 1");
            CHECK(kiln_context_set_input_shape(c, "image", 4, d20) == KILN_OK, "batch 20");
            int rank = 0;
            int64_t od[KILN_MAX_RANK];
            CHECK(kiln_context_output_shape(c, "probs", &rank, od) == KILN_OK && rank == 2 &&
                      od[0] == 20 && od[1] == 10, "output shape 20x10");
            kiln_tensor *x = random_image(20, 99), *want = NULL;
            const kiln_tensor *got = NULL;
            CHECK(kiln_context_set_tensor(c, "image", kiln_tensor_data(x), 16) == KILN_OK, "bind");
            CHECK(kiln_context_execute(c) == KILN_INVALID_ARGUMENT, "short input buffer refused");
            kiln_context_set_tensor(c, "image", kiln_tensor_data(x), kiln_tensor_nbytes(x));
            CHECK(kiln_context_enqueue(c, NULL) == KILN_OK, "enqueue");
            CHECK(kiln_context_output(c, "probs", &got) == KILN_OK, "output");
            kiln_model_run_reference(m, (const kiln_tensor *const *)&x, &want);
            if (got && want)
                CHECK(max_diff(kiln_tensor_cdata(got), kiln_tensor_data(want),
                               kiln_tensor_numel(want)) < 1e-5, "profile 1 result");
            kiln_tensor_destroy(x);
            kiln_tensor_destroy(want);
        }
        kiln_context_destroy(c);
        free(mem);
    }

    /* Four threads, one context each, sharing the engine (profile 0). */
    {
        pthread_t th[4];
        job jobs[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] = (job){e, m, 4, 20, (unsigned)t + 1, 0, 0};
            pthread_create(&th[t], NULL, worker, &jobs[t]);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECK(jobs[t].errors == 0 && jobs[t].worst < 1e-5,
                  "thread %d: %d errors, worst diff %g", t, jobs[t].errors, jobs[t].worst);
        }
    }

    /* Per-layer profiling and the JSON description. */
    {
        kiln_context *c = NULL;
        char *json = NULL;
        kiln_tensor *x = random_image(2, 5);
        int64_t d2[4] = {2, 3, 32, 32};
        kiln_context_create(e, &c);
        kiln_context_set_input_shape(c, "image", 4, d2);
        kiln_context_set_tensor(c, "image", kiln_tensor_data(x), kiln_tensor_nbytes(x));
        kiln_context_set_profiling(c, 1);
        CHECK(kiln_context_execute(c) == KILN_OK && kiln_context_execute(c) == KILN_OK, "runs");
        double ms = -1;
        int runs = 0;
        CHECK(kiln_context_layer_time(c, 0, NULL, &ms, &runs) == KILN_OK && runs == 2 && ms >= 0,
              "layer time");
        CHECK(kiln_engine_describe_json(e, c, &json) == KILN_OK && json &&
                  strstr(json, "\"layers\":[") && strstr(json, "\"time_ms\"") &&
                  strstr(json, "\"naive_activation_bytes\""),
              "describe json");
        kiln_free(json);
        kiln_tensor_destroy(x);
        kiln_context_destroy(c);
    }
done:
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
