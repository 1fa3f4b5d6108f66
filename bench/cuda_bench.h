/* cuda_bench.h: what the CUDA micro-benchmarks (cuda_attn_bench.c,
** cuda_elt_bench.c, cuda_gemm_bench.c) share: a fixed random sequence,
** error reporting and the median CUDA-event time of a launch. Header-only;
** each program defines CB_PROG (its name, for messages) before including it. */
#ifndef KILN_CUDA_BENCH_H
#define KILN_CUDA_BENCH_H

#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t g_rng = 88172645463325252ull;

static double rnd_sym(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 4503599627370496.0 - 1.0;
}

static int check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    fprintf(stderr, CB_PROG ": %s: %s\n", what, cudaGetErrorString(e));
    return -1;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* One launch of a kernel under test. */
typedef cudaError_t (*launch_fn)(void *ctx, cudaStream_t s);

/* Median ms of reps launches of f on s (warm launches first, untimed),
** timed with the events ev[0..1]; negative on error. */
static inline float median_ms(launch_fn f, void *ctx, int warm, int reps, cudaStream_t s,
                              cudaEvent_t *ev) {
    for (int i = 0; i < warm; i++)
        if (check(f(ctx, s), "warm-up launch")) return -1.0f;
    float *ms = malloc((size_t)reps * sizeof *ms);
    if (!ms) return -1.0f;
    for (int r = 0; r < reps; r++) {
        if (check(cudaEventRecord(ev[0], s), "event") || check(f(ctx, s), "launch") ||
            check(cudaEventRecord(ev[1], s), "event") ||
            check(cudaEventSynchronize(ev[1]), "synchronize") ||
            check(cudaEventElapsedTime(&ms[r], ev[0], ev[1]), "elapsed")) {
            free(ms);
            return -1.0f;
        }
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    float med = ms[reps / 2];
    free(ms);
    return med;
}

#endif
