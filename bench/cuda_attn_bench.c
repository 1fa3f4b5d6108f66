/* cuda_attn_bench.c: GPU micro-benchmark of the fused ("flash") attention
** kernel through its C seam (kc_attn_flash), for BERT-base shapes: 3-D
** layout (B, S, H*64), a [B,1,1,S] bool key-padding mask (batch b keeps its
** first S - (7b mod S/4) keys), scale 1/8. Both kernels run on the same
** inputs: v2 (the default) and v1 (kept selectable for this A/B); each is
** timed with CUDA events around single launches after a warm-up, and the
** median of the repetitions is printed as
**   attn B H S hd dtype kernel: X.XXX ms  Y TFLOP/s
** (TFLOP/s counts 4*B*H*S*S*hd, both matrix products, masked keys
** included), then the largest |v2 - v1| over the outputs and whether any
** output is not finite. Without a GPU it says so and exits 0.
**   cuda_attn_bench [reps (100)] [B H S hd ...] */
#include "../src/backends/cuda/kernels/attn_kernels.h"
#include "../src/util/tensor.h"

#define CB_PROG "cuda_attn_bench"
#include "cuda_bench.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float h2f(int dt, uint16_t v) { return dt == KC_F16 ? f16_to_f32(v) : bf16_to_f32(v); }

typedef struct flash_launch {
    int dt;
    const kc_attn_flash_args *a;
} flash_launch;

static cudaError_t launch_flash(void *ctx, cudaStream_t s) {
    const flash_launch *l = ctx;
    return kc_attn_flash(l->dt, l->a, s);
}

/* Median time in ms of reps launches of kernel `kernel` (0: v2, 1: v1),
** or a negative value on error. */
static float time_kernel(int dt, kc_attn_flash_args *a, int kernel, int reps, cudaStream_t s,
                         cudaEvent_t *ev) {
    a->kernel = kernel;
    flash_launch l = {dt, a};
    return median_ms(launch_flash, &l, 10, reps, s, ev);
}

static int bench(int dt, int64_t B, int64_t H, int64_t S, int64_t D, int reps) {
    const char *dn = dt == KC_F16 ? "f16" : "bf16";
    size_t n = (size_t)(B * S * H * D), nm = (size_t)(B * S);
    uint16_t *hq = malloc(n * 2 * 3), *hy1 = malloc(n * 2), *hy2 = malloc(n * 2);
    unsigned char *hm = malloc(nm);
    void *dq = NULL, *dy1 = NULL, *dy2 = NULL, *dm = NULL;
    cudaStream_t s = NULL;
    cudaEvent_t ev[2] = {NULL, NULL};
    int rc = -1;
    if (!hq || !hy1 || !hy2 || !hm) goto fail;
    for (size_t i = 0; i < n * 3; i++)
        hq[i] = dt == KC_F16 ? f32_to_f16((float)rnd_sym()) : f32_to_bf16((float)rnd_sym());
    for (int64_t b = 0; b < B; b++) {
        int64_t quarter = S / 4 > 0 ? S / 4 : 1, keep = S - (7 * b) % quarter;
        for (int64_t t = 0; t < S; t++) hm[b * S + t] = t < keep;
    }
    if (check(cudaMalloc(&dq, n * 2 * 3), "cudaMalloc") || check(cudaMalloc(&dy1, n * 2), "cudaMalloc") ||
        check(cudaMalloc(&dy2, n * 2), "cudaMalloc") || check(cudaMalloc(&dm, nm), "cudaMalloc") ||
        check(cudaMemcpy(dq, hq, n * 2 * 3, cudaMemcpyHostToDevice), "upload") ||
        check(cudaMemcpy(dm, hm, nm, cudaMemcpyHostToDevice), "upload") ||
        check(cudaStreamCreate(&s), "stream") || check(cudaEventCreate(&ev[0]), "event") ||
        check(cudaEventCreate(&ev[1]), "event"))
        goto fail;
    kc_attn_flash_args a;
    memset(&a, 0, sizeof a);
    a.q = dq, a.k = (char *)dq + n * 2, a.v = (char *)dq + n * 4;
    a.b = B, a.hq = a.hkv = H, a.sq = a.t = S, a.d = D;
    a.q_sb = a.k_sb = a.v_sb = a.y_sb = S * H * D;
    a.q_sh = a.k_sh = a.v_sh = a.y_sh = D;
    a.q_ss = a.k_ss = a.v_ss = a.y_ss = H * D;
    a.scale = 1.0f / sqrtf((float)D);
    a.mask_kind = KC_MASK_BOOL, a.mask = dm;
    a.mst[0] = S, a.mst[3] = 1, a.mlast = S; /* [B,1,1,S] */
    double flop = 4.0 * (double)B * (double)H * (double)S * (double)S * (double)D;
    float ms[2];
    for (int k = 0; k < 2; k++) {
        a.y = k ? dy1 : dy2;
        ms[k] = time_kernel(dt, &a, k, reps, s, ev);
        if (ms[k] < 0) goto fail;
        printf("attn %lld %lld %lld %lld %s %s: %.3f ms  %.1f TFLOP/s\n", (long long)B,
               (long long)H, (long long)S, (long long)D, dn, k ? "v1" : "v2", ms[k],
               flop / (ms[k] * 1e-3) / 1e12);
    }
    if (check(cudaMemcpy(hy1, dy1, n * 2, cudaMemcpyDeviceToHost), "download") ||
        check(cudaMemcpy(hy2, dy2, n * 2, cudaMemcpyDeviceToHost), "download"))
        goto fail;
    double diff = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float x = h2f(dt, hy2[i]), y = h2f(dt, hy1[i]);
        if (!isfinite(x) || !isfinite(y)) bad++;
        else diff = fmax(diff, fabs((double)x - (double)y));
    }
    printf("attn %lld %lld %lld %lld %s: v2/v1 speed-up %.2fx, max |v2 - v1| %.3g, %zu outputs "
           "not finite\n",
           (long long)B, (long long)H, (long long)S, (long long)D, dn, ms[1] / ms[0], diff, bad);
    rc = bad ? -1 : 0;
fail:
    if (ev[0]) cudaEventDestroy(ev[0]);
    if (ev[1]) cudaEventDestroy(ev[1]);
    if (s) cudaStreamDestroy(s);
    cudaFree(dq);
    cudaFree(dy1);
    cudaFree(dy2);
    cudaFree(dm);
    free(hq);
    free(hy1);
    free(hy2);
    free(hm);
    return rc;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 100, ndev = 0;
    if (reps < 1) reps = 100;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("cuda_attn_bench: no GPU\n");
        return 0;
    }
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
        printf("device: %s, %d SMs; median of %d launches each\n", p.name, p.multiProcessorCount,
               reps);
    int fails = 0;
    if (argc > 2) { /* B H S hd groups from the command line, f16 */
        for (int i = 2; i + 3 < argc; i += 4)
            fails += bench(KC_F16, atoll(argv[i]), atoll(argv[i + 1]), atoll(argv[i + 2]),
                           atoll(argv[i + 3]), reps) != 0;
    } else {
        fails += bench(KC_F16, 128, 12, 128, 64, reps) != 0;
        fails += bench(KC_F16, 1, 12, 128, 64, reps) != 0;
        fails += bench(KC_BF16, 128, 12, 128, 64, reps) != 0;
        fails += bench(KC_F16, 8, 12, 512, 64, reps) != 0;
        fails += bench(KC_F16, 32, 16, 256, 128, reps) != 0;
        fails += bench(KC_F16, 64, 8, 128, 32, reps) != 0;
    }
    return fails ? 1 : 0;
}
