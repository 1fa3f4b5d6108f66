/* cuda_attn_bench.c: GPU micro-benchmark of the fused ("flash") attention
** kernels through their C seam (kc_attn_flash), for BERT-base shapes, scale
** 1/sqrt(hd), in two layouts:
**  - packed: BERT's call as Kiln makes it, one [B, S, 3*H*hd] tensor (Q, K,
**    V at column offsets 0, H*hd, 2*H*hd; rows 3*H*hd apart), a [B,1,1,S]
**    additive mask in Q's type (0, or -65504 on the padded keys), output
**    [B, S, H*hd];
**  - separate: Q, K, V each (B, S, H*hd), a [B,1,1,S] bool mask.
** Batch b keeps its first S - (7b mod S/4) keys. Three kernels run on the
** same inputs: v2 (kernel 0, 64 query rows a block), v3 (kernel 2, 128 rows;
** v2 again at head dim 128, marked "v3=v2") and v1 (kernel 1, kept for A/B).
** Timing is interleaved: after 10 warm launches of each, every round times
** one launch of each kernel in turn (CUDA events around the launch), so
** drift on the machine hits all of them alike. Printed per kernel:
**   attn B H S hd dtype layout kernel: median X.XXX ms [min p25 p75 max]
**        Y TFLOP/s  Z GB/s
** (TFLOP/s counts 4*B*H*S*S*hd, masked keys included; GB/s counts Q, K and
** V read once and Y written once, 4*B*S*H*hd elements: the memory floor),
** then v2/v3 and v2/v1 speed-ups, max |v3 - v2| (and whether v3's output is
** v2's bit for bit), max |v1 - v2|, and outputs not finite. Without a GPU it
** says so and exits 0.
**   cuda_attn_bench [reps (100)] [B H S hd ...]   (groups: f16, separate) */
#include "../src/backends/cuda/kernels/attn_kernels.h"
#include "../src/util/tensor.h"

#define CB_PROG "cuda_attn_bench"
#include "cuda_bench.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NK = 3 };                                 /* kernels timed */
static const int k_code[NK] = {0, 2, 1};         /* kc_attn_flash_args.kernel */
static const char *const k_name[NK] = {"v2", "v3", "v1"};

static float h2f(int dt, uint16_t v) { return dt == KC_F16 ? f16_to_f32(v) : bf16_to_f32(v); }

/* Interleaved timing: ms[k][r] is round r's time of kernel k, ys[k] the
** output buffer of kernel k. Returns 0, or -1 on a CUDA error. */
static int time_all(int dt, kc_attn_flash_args *a, void *const ys[NK], int reps, cudaStream_t s,
                    cudaEvent_t *ev, float *ms[NK]) {
    for (int w = 0; w < 10; w++) {
        for (int k = 0; k < NK; k++) {
            a->kernel = k_code[k], a->y = ys[k];
            if (check(kc_attn_flash(dt, a, s), "warm-up launch")) return -1;
        }
    }
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < NK; k++) {
            a->kernel = k_code[k], a->y = ys[k];
            if (check(cudaEventRecord(ev[0], s), "event") ||
                check(kc_attn_flash(dt, a, s), "launch") ||
                check(cudaEventRecord(ev[1], s), "event") ||
                check(cudaEventSynchronize(ev[1]), "synchronize") ||
                check(cudaEventElapsedTime(&ms[k][r], ev[0], ev[1]), "elapsed"))
                return -1;
        }
    }
    return 0;
}

static int bench(int dt, int64_t B, int64_t H, int64_t S, int64_t D, bool packed, int reps) {
    const char *dn = dt == KC_F16 ? "f16" : "bf16";
    const size_t n = (size_t)(B * S * H * D), nm = (size_t)(B * S);
    const size_t mbytes = packed ? nm * 2 : nm;
    uint16_t *hq = malloc(n * 2 * 3), *hy[NK] = {NULL, NULL, NULL};
    unsigned char *hm = malloc(mbytes);
    void *dq = NULL, *dm = NULL, *dy[NK] = {NULL, NULL, NULL};
    float *ms[NK] = {NULL, NULL, NULL};
    cudaStream_t s = NULL;
    cudaEvent_t ev[2] = {NULL, NULL};
    int rc = -1;
    if (!hq || !hm) goto fail;
    for (int k = 0; k < NK; k++)
        if (!(hy[k] = malloc(n * 2)) || !(ms[k] = malloc((size_t)reps * sizeof(float)))) goto fail;
    for (size_t i = 0; i < n * 3; i++)
        hq[i] = dt == KC_F16 ? f32_to_f16((float)rnd_sym()) : f32_to_bf16((float)rnd_sym());
    for (int64_t b = 0; b < B; b++) {
        int64_t quarter = S / 4 > 0 ? S / 4 : 1, keep = S - (7 * b) % quarter;
        for (int64_t t = 0; t < S; t++) {
            if (!packed) {
                hm[b * S + t] = t < keep;
            } else {
                float v = t < keep ? 0.0f : -65504.0f;
                uint16_t x = dt == KC_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                memcpy(hm + (size_t)(b * S + t) * 2, &x, 2);
            }
        }
    }
    if (check(cudaMalloc(&dq, n * 2 * 3), "cudaMalloc") ||
        check(cudaMalloc(&dm, mbytes), "cudaMalloc") ||
        check(cudaMemcpy(dq, hq, n * 2 * 3, cudaMemcpyHostToDevice), "upload") ||
        check(cudaMemcpy(dm, hm, mbytes, cudaMemcpyHostToDevice), "upload") ||
        check(cudaStreamCreate(&s), "stream") || check(cudaEventCreate(&ev[0]), "event") ||
        check(cudaEventCreate(&ev[1]), "event"))
        goto fail;
    for (int k = 0; k < NK; k++)
        if (check(cudaMalloc(&dy[k], n * 2), "cudaMalloc")) goto fail;
    kc_attn_flash_args a;
    memset(&a, 0, sizeof a);
    a.b = B, a.hq = a.hkv = H, a.sq = a.t = S, a.d = D;
    if (packed) {
        const int64_t w = 3 * H * D; /* row stride: Q, K, V side by side */
        a.q = dq, a.k = (uint16_t *)dq + H * D, a.v = (uint16_t *)dq + 2 * H * D;
        a.q_sb = a.k_sb = a.v_sb = S * w;
        a.q_ss = a.k_ss = a.v_ss = w;
        a.mask_kind = KC_MASK_FLOAT, a.mask_dtype = dt;
    } else {
        a.q = dq, a.k = (char *)dq + n * 2, a.v = (char *)dq + n * 4;
        a.q_sb = a.k_sb = a.v_sb = S * H * D;
        a.q_ss = a.k_ss = a.v_ss = H * D;
        a.mask_kind = KC_MASK_BOOL;
    }
    a.q_sh = a.k_sh = a.v_sh = a.y_sh = D;
    a.y_sb = S * H * D, a.y_ss = H * D;
    a.scale = 1.0f / sqrtf((float)D);
    a.mask = dm;
    a.mst[0] = S, a.mst[3] = 1, a.mlast = S; /* [B,1,1,S] */
    if (time_all(dt, &a, dy, reps, s, ev, ms)) goto fail;
    const double flop = 4.0 * (double)B * (double)H * (double)S * (double)S * (double)D;
    const double bytes = 4.0 * (double)n * 2.0;
    const char *lay = packed ? "packed" : "separate";
    float med[NK];
    for (int k = 0; k < NK; k++) {
        qsort(ms[k], (size_t)reps, sizeof(float), cmp_float);
        med[k] = ms[k][reps / 2];
        printf("attn %lld %lld %lld %lld %s %s %s: median %.4f ms [%.4f %.4f %.4f %.4f]  "
               "%.1f TFLOP/s  %.0f GB/s\n",
               (long long)B, (long long)H, (long long)S, (long long)D, dn, lay,
               k == 1 && !kc_attn_flash_v3_head_dim_ok(D) ? "v3=v2" : k_name[k], med[k],
               ms[k][0], ms[k][reps / 4], ms[k][(3 * reps) / 4], ms[k][reps - 1],
               flop / (med[k] * 1e-3) / 1e12, bytes / (med[k] * 1e-3) / 1e9);
    }
    for (int k = 0; k < NK; k++)
        if (check(cudaMemcpy(hy[k], dy[k], n * 2, cudaMemcpyDeviceToHost), "download")) goto fail;
    double diff[NK] = {0, 0, 0};
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const float x = h2f(dt, hy[0][i]);
        for (int k = 0; k < NK; k++) {
            const float y = h2f(dt, hy[k][i]);
            if (!isfinite(y)) bad++;
            else if (isfinite(x)) diff[k] = fmax(diff[k], fabs((double)y - (double)x));
        }
    }
    const bool same = !memcmp(hy[1], hy[0], n * 2);
    printf("attn %lld %lld %lld %lld %s %s: v3 %.2fx v2, v1 %.2fx v2; max |v3 - v2| %.3g (%s), "
           "max |v1 - v2| %.3g, %zu outputs not finite\n",
           (long long)B, (long long)H, (long long)S, (long long)D, dn, lay, med[0] / med[1],
           med[0] / med[2], diff[1], same ? "identical" : "not identical", diff[2], bad);
    rc = bad ? -1 : 0;
fail:
    if (ev[0]) cudaEventDestroy(ev[0]);
    if (ev[1]) cudaEventDestroy(ev[1]);
    if (s) cudaStreamDestroy(s);
    cudaFree(dq);
    cudaFree(dm);
    for (int k = 0; k < NK; k++) {
        cudaFree(dy[k]);
        free(hy[k]);
        free(ms[k]);
    }
    free(hq);
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
        printf("device: %s, %d SMs; %d interleaved rounds (one launch of each kernel a round)\n",
               p.name, p.multiProcessorCount, reps);
    int fails = 0;
    if (argc > 2) { /* B H S hd groups from the command line, f16, separate */
        for (int i = 2; i + 3 < argc; i += 4)
            fails += bench(KC_F16, atoll(argv[i]), atoll(argv[i + 1]), atoll(argv[i + 2]),
                           atoll(argv[i + 3]), false, reps) != 0;
    } else {
        /* BERT-base b128 as Kiln runs it first (issue 12), then the rest */
        fails += bench(KC_F16, 128, 12, 128, 64, true, reps) != 0;
        fails += bench(KC_BF16, 128, 12, 128, 64, true, reps) != 0;
        fails += bench(KC_F16, 128, 12, 128, 64, false, reps) != 0;
        fails += bench(KC_F16, 1, 12, 128, 64, true, reps) != 0;
        fails += bench(KC_F16, 8, 12, 512, 64, true, reps) != 0;
        fails += bench(KC_F16, 32, 16, 256, 128, false, reps) != 0;
        fails += bench(KC_F16, 64, 8, 128, 32, false, reps) != 0;
    }
    return fails ? 1 : 0;
}
