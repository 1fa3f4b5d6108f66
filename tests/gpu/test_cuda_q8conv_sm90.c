/* test_cuda_q8conv_sm90.c: the Hopper INT8 implicit-GEMM convolution
** (kernels/q8conv_sm90.cu, contract in kernels/q8conv_sm90_kernels.h)
** against a host reference computed here: the accumulator in int64, then
** the kernel's float epilogue in the same order (float(acc), fmaf with
** alpha and beta, fmaf with gamma and the residual, clamp, rint). Outputs
** must match exactly, except one quantization step where the reference's
** value lies within 1e-3 of a rounding tie (an FMA contracted differently
** could land on the other side); those are counted and printed.
**
** Shapes: a fixed list of awkward ones (batch 1 and odd, odd H/W, stride
** 2, 1x1 / 3x3 / 7x7, padding 0/1/3 and asymmetric, dilation 2, C and M
** from 16 to 512) plus random ones, every configuration, int8 and uint8 x
** and y, with and without a residual (int8 and uint8). Host checks (run
** without a GPU too): what the kernel declines (C or M not a multiple of
** 16, a zero point of x with padding, misaligned pointers, too much
** padding) and accepts. Then a timing print of ResNet-50's convolutions at
** batch 256 (TOP/s per layer shape and configuration, and the whole
** network's convolutions with the best configuration per shape): not a
** pass/fail criterion. KILN_Q8CONV_BENCH=0 skips it.
** FP8 (kc_f8conv_sm90_plan: e4m3 x and w, f16 y and residual): the fixed
** shapes on every configuration, with and without a residual and a ReLU
** clamp, against exact products summed in double, within the f16 rounding
** of the output plus 2^-11 of alpha * sum |x w| (wgmma's FP8 accumulation
** is not IEEE f32); the ResNet-50 timing print covers FP8 too.
** On a GPU other than compute capability 9.0, or a build without the
** kernels, the device cases are skipped with the reason printed.
** Ends with `N passed, M failed`. */
#include "../../src/backends/cuda/kernels/q8conv_sm90_kernels.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pass, g_fail, g_ties;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static int irand(int lo, int hi) { return lo + (int)(rnd32() % (uint32_t)(hi - lo + 1)); }
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd32() % 1000000u) / 1e6f; }

static const char *const k_cfg_name[] = {"128x128_c1x1", "128x128_c2x1", "128x64_c1x1",
                                         "128x64_c1x1_s4", "64x128_c1x1_s4"};
_Static_assert(sizeof k_cfg_name / sizeof k_cfg_name[0] == KC_Q8CONV_SM90_N_CFG,
               "a name per configuration");

static void check(bool ok, const char *what) {
    if (ok) {
        g_pass++;
    } else {
        g_fail++;
        printf("FAIL: %s\n", what);
    }
}

/* ---------------------------------------------------------------- cases */
typedef struct qcase {
    int n, h, w, c, m, kh, kw, sh, sw, ph0, pw0, ph1, pw1, dh, dw;
} qcase;

static qcase mk(int n, int h, int w, int c, int m, int k, int s, int p, int d) {
    qcase q = {n, h, w, c, m, k, k, s, s, p, p, p, p, d, d};
    return q;
}

static void fill_problem(kc_q8conv_sm90 *p, const qcase *q) {
    memset(p, 0, sizeof *p);
    p->n = q->n, p->h = q->h, p->w = q->w, p->c = q->c;
    p->m = q->m, p->kh = q->kh, p->kw = q->kw;
    p->sh = q->sh, p->sw = q->sw;
    p->ph0 = q->ph0, p->pw0 = q->pw0, p->ph1 = q->ph1, p->pw1 = q->pw1;
    p->dh = q->dh, p->dw = q->dw;
    p->x_signed = 1, p->y_signed = 1;
    p->lo = -128.0f, p->hi = 127.0f;
}

/* The reference's output element from its float value: clamp, rint. */
static float ref_round(float v, float lo, float hi) { return rintf(fminf(fmaxf(v, lo), hi)); }

/* Distance of v (after the clamp) to the nearest rounding tie. */
static float tie_dist(float v, float lo, float hi) {
    float c = fminf(fmaxf(v, lo), hi);
    float f = c - floorf(c);
    return fabsf(f - 0.5f);
}

static bool cuda_ok(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    printf("FAIL: %s: %s\n", what, cudaGetErrorString(e));
    g_fail++;
    return false;
}

/* One case on the device against the host reference. res: 0 none, 1 int8
** residual, 2 uint8 residual. */
static void run_case(int cfg, const qcase *q, int xs, int ys, int res) {
    char desc[256];
    snprintf(desc, sizeof desc,
             "%s n%d %dx%d c%d m%d k%dx%d s%d,%d p%d,%d,%d,%d d%d,%d x%s y%s r%d",
             k_cfg_name[cfg], q->n, q->h, q->w, q->c, q->m, q->kh, q->kw, q->sh, q->sw, q->ph0,
             q->pw0, q->ph1, q->pw1, q->dh, q->dw, xs ? "s8" : "u8", ys ? "s8" : "u8", res);
    kc_q8conv_sm90 p;
    fill_problem(&p, q);
    p.x_signed = xs, p.y_signed = ys;
    int64_t oh = kc_q8conv_sm90_out(q->h, q->kh, q->sh, q->ph0, q->ph1, q->dh);
    int64_t ow = kc_q8conv_sm90_out(q->w, q->kw, q->sw, q->pw0, q->pw1, q->dw);
    int64_t K = (int64_t)q->kh * q->kw * q->c;
    size_t nx = (size_t)q->n * q->h * q->w * q->c, nw = (size_t)q->m * K;
    size_t ny = (size_t)q->n * oh * ow * q->m;
    uint8_t *x = malloc(nx), *w = malloc(nw), *r = res ? malloc(ny) : NULL, *y = malloc(ny);
    float *alpha = malloc(sizeof(float) * q->m), *beta = malloc(sizeof(float) * q->m);
    void *dx = NULL, *dw = NULL, *dy = NULL, *dr = NULL, *da = NULL, *db = NULL;
    kc_q8conv_plan *pl = NULL;
    if (!x || !w || !y || (res && !r) || !alpha || !beta) {
        check(false, "host memory");
        goto done;
    }
    for (size_t i = 0; i < nx; i++) x[i] = (uint8_t)rnd32();
    for (size_t i = 0; i < nw; i++) w[i] = (uint8_t)rnd32();
    for (size_t i = 0; r && i < ny; i++) r[i] = (uint8_t)rnd32();
    /* acc's spread: about 74^2 sqrt(K) (x and w uniform bytes); aim for
    ** outputs spread over the int8 range, some clamped */
    float sd = 74.0f * 74.0f * sqrtf((float)K);
    for (int m = 0; m < q->m; m++) {
        alpha[m] = frand(0.3f, 1.5f) * 60.0f / sd;
        beta[m] = frand(-30.0f, 30.0f) + (ys ? 0.0f : 100.0f);
    }
    /* clamp: the full range, or a ReLU-like floor at a zero point */
    int relu = irand(0, 1);
    p.lo = ys ? (relu ? (float)irand(-20, 20) : -128.0f) : (relu ? (float)irand(0, 128) : 0.0f);
    p.hi = ys ? 127.0f : 255.0f;
    if (res) {
        p.r_signed = res == 1;
        p.gamma = frand(0.2f, 1.2f);
    }
    if (!cuda_ok(cudaMalloc(&dx, nx), desc) || !cuda_ok(cudaMalloc(&dw, nw), desc) ||
        !cuda_ok(cudaMalloc(&dy, ny), desc) || (res && !cuda_ok(cudaMalloc(&dr, ny), desc)) ||
        !cuda_ok(cudaMalloc(&da, sizeof(float) * q->m), desc) ||
        !cuda_ok(cudaMalloc(&db, sizeof(float) * q->m), desc))
        goto done;
    if (!cuda_ok(cudaMemcpy(dx, x, nx, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemcpy(dw, w, nw, cudaMemcpyHostToDevice), desc) ||
        (res && !cuda_ok(cudaMemcpy(dr, r, ny, cudaMemcpyHostToDevice), desc)) ||
        !cuda_ok(cudaMemcpy(da, alpha, sizeof(float) * q->m, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemcpy(db, beta, sizeof(float) * q->m, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemset(dy, 0xA5, ny), desc))
        goto done;
    p.x = dx, p.wt = dw, p.y = dy, p.r = dr, p.alpha = da, p.beta = db;
    cudaError_t e = kc_q8conv_sm90_plan(cfg, &p, &pl);
    if (e != cudaSuccess) {
        char m2[400];
        snprintf(m2, sizeof m2, "%s: plan: %s", desc, cudaGetErrorString(e));
        check(false, m2);
        goto done;
    }
    if (!cuda_ok(kc_q8conv_sm90_launch(pl, 0), desc) ||
        !cuda_ok(cudaDeviceSynchronize(), desc) ||
        !cuda_ok(cudaMemcpy(y, dy, ny, cudaMemcpyDeviceToHost), desc))
        goto done;
    /* reference */
    int64_t bad = 0, ties = 0, first = -1;
    float lo = p.lo, hi = p.hi;
    for (int n = 0; n < q->n; n++)
        for (int64_t op = 0; op < oh; op++)
            for (int64_t oq = 0; oq < ow; oq++)
                for (int m = 0; m < q->m; m++) {
                    int64_t acc = 0;
                    const uint8_t *wm = w + (size_t)m * K;
                    for (int i = 0; i < q->kh; i++) {
                        int64_t ih = op * q->sh - q->ph0 + (int64_t)i * q->dh;
                        if (ih < 0 || ih >= q->h) continue;
                        for (int j = 0; j < q->kw; j++) {
                            int64_t iw = oq * q->sw - q->pw0 + (int64_t)j * q->dw;
                            if (iw < 0 || iw >= q->w) continue;
                            const uint8_t *xp = x + (((size_t)n * q->h + ih) * q->w + iw) * q->c;
                            const uint8_t *wp = wm + ((size_t)i * q->kw + j) * q->c;
                            int32_t s = 0;
                            if (xs)
                                for (int c = 0; c < q->c; c++) s += (int8_t)xp[c] * (int8_t)wp[c];
                            else
                                for (int c = 0; c < q->c; c++) s += xp[c] * (int8_t)wp[c];
                            acc += s;
                        }
                    }
                    size_t yi = (((size_t)n * oh + op) * ow + oq) * q->m + m;
                    float v = fmaf((float)acc, alpha[m], beta[m]);
                    if (res) {
                        float rv = res == 1 ? (float)(int8_t)r[yi] : (float)r[yi];
                        v = fmaf(p.gamma, rv, v);
                    }
                    float want = ref_round(v, lo, hi);
                    float got = ys ? (float)(int8_t)y[yi] : (float)y[yi];
                    if (got != want) {
                        if (fabsf(got - want) == 1.0f && tie_dist(v, lo, hi) < 1e-3f) {
                            ties++;
                        } else {
                            if (first < 0) {
                                first = (int64_t)yi;
                                printf("  %s: y[%d,%lld,%lld,%d] = %g, want %g (v %.6f acc %lld)\n",
                                       desc, n, (long long)op, (long long)oq, m, got, want, v,
                                       (long long)acc);
                            }
                            bad++;
                        }
                    }
                }
    g_ties += (int)ties;
    if (bad) {
        char m2[400];
        snprintf(m2, sizeof m2, "%s: %lld of %zu outputs wrong", desc, (long long)bad, ny);
        check(false, m2);
    } else {
        if (ties) printf("  %s: %lld outputs one step off on a rounding tie\n", desc, (long long)ties);
        check(true, desc);
    }
done:
    kc_q8conv_sm90_plan_free(pl);
    cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(dr), cudaFree(da), cudaFree(db);
    free(x), free(w), free(r), free(y), free(alpha), free(beta);
}

/* ------------------------------------------------------------------ FP8 */
static float e4m3_to_f(uint8_t b) {
    int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    float v = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
    return s ? -v : v;
}

static float f16_to_f(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e) v = ldexpf(1.0f + (float)m / 1024.0f, e - 15);
    else v = ldexpf((float)m / 1024.0f, -14);
    return s ? -v : v;
}

/* e4m3 with magnitudes 2^-3 .. ~2^3 (exponent field 4..10), random sign;
** every few a zero */
static uint8_t e4m3_rand(void) {
    if (rnd32() % 16 == 0) return 0;
    return (uint8_t)(((rnd32() & 1) << 7) | ((4 + rnd32() % 7) << 3) | (rnd32() & 7));
}

/* float -> f16 bits, round to nearest even (finite inputs in range) */
static uint16_t f_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (a >= 65520.0f) return s | 0x7c00;
    if (a < ldexpf(1.0f, -14)) { /* subnormal: multiples of 2^-24 */
        float q = rintf(a * 16777216.0f);
        return s | (uint16_t)q;
    }
    int e;
    float fr = frexpf(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    float q = rintf(fr * 2048.0f); /* 11 significant bits */
    if (q >= 2048.0f) q = 1024.0f, e++;
    return s | (uint16_t)((e + 14) << 10) | (uint16_t)((int)q - 1024);
}

static void run_case_f8(int cfg, const qcase *q, int res, int relu) {
    char desc[256];
    snprintf(desc, sizeof desc, "fp8 %s n%d %dx%d c%d m%d k%dx%d s%d,%d p%d,%d,%d,%d d%d,%d r%d%s",
             k_cfg_name[cfg], q->n, q->h, q->w, q->c, q->m, q->kh, q->kw, q->sh, q->sw, q->ph0,
             q->pw0, q->ph1, q->pw1, q->dh, q->dw, res, relu ? " relu" : "");
    kc_q8conv_sm90 p;
    fill_problem(&p, q);
    int64_t oh = kc_q8conv_sm90_out(q->h, q->kh, q->sh, q->ph0, q->ph1, q->dh);
    int64_t ow = kc_q8conv_sm90_out(q->w, q->kw, q->sw, q->pw0, q->pw1, q->dw);
    int64_t K = (int64_t)q->kh * q->kw * q->c;
    size_t nx = (size_t)q->n * q->h * q->w * q->c, nw = (size_t)q->m * K;
    size_t ny = (size_t)q->n * oh * ow * q->m;
    uint8_t *x = malloc(nx), *w = malloc(nw);
    uint16_t *r = res ? malloc(ny * 2) : NULL, *y = malloc(ny * 2);
    float *alpha = malloc(sizeof(float) * q->m), *beta = malloc(sizeof(float) * q->m);
    float *xf = malloc(sizeof(float) * nx), *wf = malloc(sizeof(float) * nw);
    void *dx = NULL, *dw = NULL, *dy = NULL, *dr = NULL, *da = NULL, *db = NULL;
    kc_q8conv_plan *pl = NULL;
    if (!x || !w || !y || (res && !r) || !alpha || !beta || !xf || !wf) {
        check(false, "host memory");
        goto done;
    }
    for (size_t i = 0; i < nx; i++) xf[i] = e4m3_to_f(x[i] = e4m3_rand());
    for (size_t i = 0; i < nw; i++) wf[i] = e4m3_to_f(w[i] = e4m3_rand());
    for (size_t i = 0; r && i < ny; i++) r[i] = f_to_f16(frand(-4.0f, 4.0f));
    for (int m = 0; m < q->m; m++) {
        alpha[m] = frand(0.3f, 1.5f) / sqrtf((float)K);
        beta[m] = frand(-1.0f, 1.0f);
    }
    p.lo = relu ? 0.0f : -INFINITY;
    p.hi = INFINITY;
    p.gamma = res ? frand(0.2f, 1.2f) : 0.0f;
    if (!cuda_ok(cudaMalloc(&dx, nx), desc) || !cuda_ok(cudaMalloc(&dw, nw), desc) ||
        !cuda_ok(cudaMalloc(&dy, ny * 2), desc) ||
        (res && !cuda_ok(cudaMalloc(&dr, ny * 2), desc)) ||
        !cuda_ok(cudaMalloc(&da, sizeof(float) * q->m), desc) ||
        !cuda_ok(cudaMalloc(&db, sizeof(float) * q->m), desc))
        goto done;
    if (!cuda_ok(cudaMemcpy(dx, x, nx, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemcpy(dw, w, nw, cudaMemcpyHostToDevice), desc) ||
        (res && !cuda_ok(cudaMemcpy(dr, r, ny * 2, cudaMemcpyHostToDevice), desc)) ||
        !cuda_ok(cudaMemcpy(da, alpha, sizeof(float) * q->m, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemcpy(db, beta, sizeof(float) * q->m, cudaMemcpyHostToDevice), desc) ||
        !cuda_ok(cudaMemset(dy, 0xff, ny * 2), desc))
        goto done;
    p.x = dx, p.wt = dw, p.y = dy, p.r = dr, p.alpha = da, p.beta = db;
    cudaError_t e = kc_f8conv_sm90_plan(cfg, &p, &pl);
    if (e != cudaSuccess) {
        char m2[400];
        snprintf(m2, sizeof m2, "%s: plan: %s", desc, cudaGetErrorString(e));
        check(false, m2);
        goto done;
    }
    if (!cuda_ok(kc_q8conv_sm90_launch(pl, 0), desc) ||
        !cuda_ok(cudaDeviceSynchronize(), desc) ||
        !cuda_ok(cudaMemcpy(y, dy, ny * 2, cudaMemcpyDeviceToHost), desc))
        goto done;
    /* reference: exact products, summed in double; bound: the f16 rounding
    ** of the output plus 2^-11 of alpha * sum |x w| for the accumulation
    ** (wgmma's FP8 accumulation is not IEEE f32) */
    int64_t bad = 0;
    double worst = 0;
    for (int n = 0; n < q->n; n++)
        for (int64_t op = 0; op < oh; op++)
            for (int64_t oq = 0; oq < ow; oq++)
                for (int m = 0; m < q->m; m++) {
                    double acc = 0, sabs = 0;
                    const float *wm = wf + (size_t)m * K;
                    for (int i = 0; i < q->kh; i++) {
                        int64_t ih = op * q->sh - q->ph0 + (int64_t)i * q->dh;
                        if (ih < 0 || ih >= q->h) continue;
                        for (int j = 0; j < q->kw; j++) {
                            int64_t iw = oq * q->sw - q->pw0 + (int64_t)j * q->dw;
                            if (iw < 0 || iw >= q->w) continue;
                            const float *xp = xf + (((size_t)n * q->h + ih) * q->w + iw) * q->c;
                            const float *wp = wm + ((size_t)i * q->kw + j) * q->c;
                            for (int c = 0; c < q->c; c++) {
                                double t = (double)xp[c] * wp[c];
                                acc += t;
                                sabs += fabs(t);
                            }
                        }
                    }
                    size_t yi = (((size_t)n * oh + op) * ow + oq) * q->m + m;
                    double v = acc * alpha[m] + beta[m];
                    if (res) v += (double)p.gamma * f16_to_f(r[yi]);
                    if (relu && v < 0) v = 0;
                    double got = f16_to_f(y[yi]);
                    double tol = fabs(v) * ldexp(1.0, -10) + alpha[m] * sabs * ldexp(1.0, -11) +
                                 ldexp(1.0, -24);
                    double err = fabs(got - v);
                    if (!(err <= tol)) {
                        if (!bad)
                            printf("  %s: y[%d,%lld,%lld,%d] = %g, want %g (tol %g)\n", desc, n,
                                   (long long)op, (long long)oq, m, got, v, tol);
                        bad++;
                    }
                    if (tol > 0 && err / tol > worst) worst = err / tol;
                }
    if (bad) {
        char m2[400];
        snprintf(m2, sizeof m2, "%s: %lld of %zu outputs off (worst %.2f of the bound)", desc,
                 (long long)bad, ny, worst);
        check(false, m2);
    } else {
        check(true, desc);
    }
done:
    kc_q8conv_sm90_plan_free(pl);
    cudaFree(dx), cudaFree(dw), cudaFree(dy), cudaFree(dr), cudaFree(da), cudaFree(db);
    free(x), free(w), free(r), free(y), free(alpha), free(beta), free(xf), free(wf);
}

/* ------------------------------------------------------------ host checks */
static void host_checks(void) {
    bool built = kc_q8conv_sm90_built();
    kc_q8conv_sm90 p;
    qcase ok = mk(2, 9, 9, 32, 64, 3, 1, 1, 1);
    fill_problem(&p, &ok);
    for (int cfg = 0; cfg < KC_Q8CONV_SM90_N_CFG; cfg++) {
        cudaError_t e = kc_q8conv_sm90_plan(cfg, &p, NULL);
        char m[128];
        snprintf(m, sizeof m, "check-only plan of a valid problem (%s): %s", k_cfg_name[cfg],
                 cudaGetErrorString(e));
        check(built ? e == cudaSuccess : e == cudaErrorNotSupported, m);
    }
    fill_problem(&p, &ok);
    p.lo = -INFINITY, p.hi = INFINITY;
    for (int cfg = 0; cfg < KC_Q8CONV_SM90_N_CFG; cfg++) {
        cudaError_t e = kc_f8conv_sm90_plan(cfg, &p, NULL);
        char m[128];
        snprintf(m, sizeof m, "FP8 check-only plan of a valid problem (%s): %s",
                 k_cfg_name[cfg], cudaGetErrorString(e));
        check(built ? e == cudaSuccess : e == cudaErrorNotSupported, m);
    }
    fill_problem(&p, &ok);
    check(kc_q8conv_sm90_plan(KC_Q8CONV_SM90_N_CFG, &p, NULL) == cudaErrorInvalidValue,
          "bad configuration is cudaErrorInvalidValue");
    struct {
        const char *what;
        qcase q;
        int x_zp;
        uintptr_t xaddr;
        bool want;
    } cs[] = {
        {"C 24", mk(1, 8, 8, 24, 32, 3, 1, 1, 1), 0, 0, false},
        {"M 40", mk(1, 8, 8, 32, 40, 3, 1, 1, 1), 0, 0, false},
        {"C 8", mk(1, 8, 8, 8, 32, 1, 1, 0, 1), 0, 0, false},
        {"x_zp 3 with padding", mk(1, 8, 8, 32, 32, 3, 1, 1, 1), 3, 0, false},
        {"x_zp 3 without padding", mk(1, 8, 8, 32, 32, 3, 1, 0, 1), 3, 0, true},
        {"misaligned x", mk(1, 8, 8, 32, 32, 1, 1, 0, 1), 0, 8, false},
        {"padding 256", mk(1, 8, 8, 32, 32, 3, 1, 256, 1), 0, 0, false},
        {"no output", mk(1, 2, 2, 32, 32, 7, 1, 0, 1), 0, 0, false},
        /* span -2: truncating division once made this one output */
        {"dilated filter wider than the input", mk(1, 3, 3, 32, 32, 3, 3, 0, 2), 0, 0, false},
        {"7x7 s2 p3", mk(1, 224, 224, 16, 64, 7, 2, 3, 1), 0, 0, true},
        {"dilation 2", mk(1, 16, 16, 32, 32, 3, 1, 2, 2), 0, 0, true},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        fill_problem(&p, &cs[i].q);
        p.x_zp = cs[i].x_zp;
        p.x = (const void *)cs[i].xaddr;
        cudaError_t e = kc_q8conv_sm90_plan(KC_Q8CONV_SM90_128x128_C1x1, &p, NULL);
        bool want = built && cs[i].want;
        char m[160];
        snprintf(m, sizeof m, "check-only plan, %s: %s (want %s)", cs[i].what,
                 cudaGetErrorString(e), want ? "taken" : "declined");
        check(want ? e == cudaSuccess : e == cudaErrorNotSupported, m);
    }
}

/* ------------------------------------------------------------------ bench */
typedef struct rn50 {
    const char *name;
    int h, c, m, k, s, p, count; /* input H=W; count: times in the network */
} rn50;

/* One kind's timings (f8: the FP8 kernel) over ResNet-50's layers. */
static void bench_kind(int f8, const rn50 *L, int nl, void *dx, void *dy, void *dw, void *da,
                       void *db, cudaEvent_t e0, cudaEvent_t e1) {
    const int N = 256;
    printf("\nResNet-50 convolutions, batch 256, %s (TOP/s ms, per configuration):\n",
           f8 ? "FP8 e4m3 x, w -> f16 y" : "u8 x, s8 w -> u8 y");
    printf("%-24s", "layer");
    for (int c = 0; c < KC_Q8CONV_SM90_N_CFG; c++) printf(" %14s", k_cfg_name[c]);
    printf("   best ms x count\n");
    double total = 0;
    for (size_t i = 0; i < (size_t)nl; i++) {
        qcase q = mk(N, L[i].h, L[i].h, L[i].c, L[i].m, L[i].k, L[i].s, L[i].p, 1);
        kc_q8conv_sm90 p;
        fill_problem(&p, &q);
        p.x_signed = 0, p.y_signed = 0, p.lo = 0, p.hi = f8 ? INFINITY : 255;
        p.x = dx, p.wt = dw, p.y = dy, p.alpha = da, p.beta = db;
        int64_t o = kc_q8conv_sm90_out(L[i].h, L[i].k, L[i].s, L[i].p, L[i].p, 1);
        double macs = (double)N * o * o * L[i].m * L[i].k * L[i].k * L[i].c;
        double best = 0;
        printf("%-24s", L[i].name);
        for (int c = 0; c < KC_Q8CONV_SM90_N_CFG; c++) {
            kc_q8conv_plan *pl = NULL;
            if ((f8 ? kc_f8conv_sm90_plan(c, &p, &pl) : kc_q8conv_sm90_plan(c, &p, &pl)) !=
                cudaSuccess) {
                printf(" %14s", "-");
                continue;
            }
            for (int it = 0; it < 3; it++) kc_q8conv_sm90_launch(pl, 0);
            int reps = 20;
            cudaEventRecord(e0, 0);
            for (int it = 0; it < reps; it++) kc_q8conv_sm90_launch(pl, 0);
            cudaEventRecord(e1, 0);
            cudaError_t err = cudaEventSynchronize(e1);
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            kc_q8conv_sm90_plan_free(pl);
            if (err != cudaSuccess) {
                printf(" %14s", cudaGetErrorString(err));
                continue;
            }
            ms /= reps;
            printf(" %8.1f %5.3f", 2.0 * macs / (ms * 1e-3) / 1e12, ms);
            if (best == 0 || ms < best) best = ms;
        }
        printf("   %.3f x %d\n", best, L[i].count);
        total += best * L[i].count;
    }
    printf("ResNet-50 b256 convolutions (%s), best configuration per shape: %.3f ms "
           "(the Kiln FP16 network, everything included: 9.1 ms)\n", f8 ? "FP8" : "INT8", total);
}

static void bench(void) {
    const char *e = getenv("KILN_Q8CONV_BENCH");
    if (e && !strcmp(e, "0")) return;
    /* torchvision ResNet-50 v1.5 (stride in the 3x3), batch 256; conv1's 3
    ** input channels padded to 16 */
    static const rn50 L[] = {
        {"conv1 7x7/2 16->64", 224, 16, 64, 7, 2, 3, 1},
        {"l1 1x1 64->64", 56, 64, 64, 1, 1, 0, 1},
        {"l1 3x3 64->64", 56, 64, 64, 3, 1, 1, 3},
        {"l1 1x1 64->256", 56, 64, 256, 1, 1, 0, 4}, /* 3 expansions + downsample */
        {"l1 1x1 256->64", 56, 256, 64, 1, 1, 0, 2},
        {"l2 1x1 256->128", 56, 256, 128, 1, 1, 0, 1},
        {"l2 3x3/2 128->128", 56, 128, 128, 3, 2, 1, 1},
        {"l2 ds 1x1/2 256->512", 56, 256, 512, 1, 2, 0, 1},
        {"l2 1x1 128->512", 28, 128, 512, 1, 1, 0, 4},
        {"l2 1x1 512->128", 28, 512, 128, 1, 1, 0, 3},
        {"l2 3x3 128->128", 28, 128, 128, 3, 1, 1, 3},
        {"l3 1x1 512->256", 28, 512, 256, 1, 1, 0, 1},
        {"l3 3x3/2 256->256", 28, 256, 256, 3, 2, 1, 1},
        {"l3 ds 1x1/2 512->1024", 28, 512, 1024, 1, 2, 0, 1},
        {"l3 1x1 256->1024", 14, 256, 1024, 1, 1, 0, 6},
        {"l3 1x1 1024->256", 14, 1024, 256, 1, 1, 0, 5},
        {"l3 3x3 256->256", 14, 256, 256, 3, 1, 1, 5},
        {"l4 1x1 1024->512", 14, 1024, 512, 1, 1, 0, 1},
        {"l4 3x3/2 512->512", 14, 512, 512, 3, 2, 1, 1},
        {"l4 ds 1x1/2 1024->2048", 14, 1024, 2048, 1, 2, 0, 1},
        {"l4 1x1 512->2048", 7, 512, 2048, 1, 1, 0, 3},
        {"l4 1x1 2048->512", 7, 2048, 512, 1, 1, 0, 2},
        {"l4 3x3 512->512", 7, 512, 512, 3, 1, 1, 2},
    };
    const int N = 256;
    size_t maxx = 0, maxy = 0, maxw = 0;
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
        size_t o = (size_t)kc_q8conv_sm90_out(L[i].h, L[i].k, L[i].s, L[i].p, L[i].p, 1);
        size_t nx = (size_t)N * L[i].h * L[i].h * L[i].c, ny = (size_t)N * o * o * L[i].m;
        size_t nw = (size_t)L[i].m * L[i].k * L[i].k * L[i].c;
        if (nx > maxx) maxx = nx;
        if (ny > maxy) maxy = ny;
        if (nw > maxw) maxw = nw;
    }
    void *dx = NULL, *dy = NULL, *dw = NULL, *da = NULL, *db = NULL;
    uint8_t *hx = malloc(maxx);
    float hab[2048];
    cudaEvent_t e0 = NULL, e1 = NULL;
    if (!hx || cudaMalloc(&dx, maxx) || cudaMalloc(&dy, 2 * maxy) || cudaMalloc(&dw, maxw) ||
        cudaMalloc(&da, sizeof hab) || cudaMalloc(&db, sizeof hab) || cudaEventCreate(&e0) ||
        cudaEventCreate(&e1)) {
        printf("bench: no memory, skipped\n");
        goto done;
    }
    /* bytes 0..0x37: small non-negative int8, and e4m3 values below 2 */
    for (size_t i = 0; i < maxx; i++) hx[i] = (uint8_t)(rnd32() & 0x37);
    cudaMemcpy(dx, hx, maxx, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, hx, maxw, cudaMemcpyHostToDevice);
    for (int i = 0; i < 2048; i++) hab[i] = 1e-4f;
    cudaMemcpy(da, hab, sizeof hab, cudaMemcpyHostToDevice);
    cudaMemcpy(db, hab, sizeof hab, cudaMemcpyHostToDevice);
    bench_kind(0, L, (int)(sizeof L / sizeof L[0]), dx, dy, dw, da, db, e0, e1);
    bench_kind(1, L, (int)(sizeof L / sizeof L[0]), dx, dy, dw, da, db, e0, e1);
    printf("\n");
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(dx), cudaFree(dy), cudaFree(dw), cudaFree(da), cudaFree(db);
    free(hx);
}

int main(void) {
    host_checks();
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        cudaGetLastError();
        printf("no GPU: device cases skipped\n%d passed, %d failed (no GPU)\n", g_pass, g_fail);
        return g_fail != 0;
    }
    int ma = 0, mi = 0;
    cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, 0);
    cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, 0);
    if (!kc_q8conv_sm90_built() || ma != 9 || mi != 0) {
        printf("device cases skipped: %s\n",
               !kc_q8conv_sm90_built() ? "kernels not built (no CUTLASS or no sm_90a)"
                                       : "not a compute capability 9.0 GPU");
        printf("%d passed, %d failed\n", g_pass, g_fail);
        return g_fail != 0;
    }
    /* the awkward shapes: n, h, w, c, m, kh, kw, sh, sw, ph0, pw0, ph1, pw1, dh, dw */
    static const qcase fixed[] = {
        {1, 7, 7, 16, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {1, 13, 13, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 15, 15, 32, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {2, 23, 19, 16, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1},
        {5, 9, 9, 256, 128, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},
        {1, 7, 7, 512, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 7, 7, 512, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {3, 11, 17, 48, 80, 3, 3, 1, 1, 0, 1, 2, 0, 1, 1}, /* asymmetric pads */
        {1, 17, 17, 32, 32, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, /* dilation 2 */
        {2, 12, 12, 16, 144, 5, 3, 2, 1, 2, 1, 2, 1, 1, 1},
        {7, 5, 5, 128, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 1, 1, 64, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {1, 3, 3, 16, 16, 3, 3, 2, 2, 3, 3, 3, 3, 1, 1}, /* more pad than image */
    };
    int nf = (int)(sizeof fixed / sizeof fixed[0]);
    for (int cfg = 0; cfg < KC_Q8CONV_SM90_N_CFG; cfg++)
        for (int i = 0; i < nf; i++)
            for (int t = 0; t < 4; t++) /* x s8/u8 x y s8/u8 */
                run_case(cfg, &fixed[i], t & 1, (t >> 1) & 1, (i + t) % 3);
    /* random shapes, a random configuration each, up to ~40M MACs */
    static const int cm[] = {16, 32, 48, 64, 96, 128, 160, 256, 384, 512};
    static const int ks[] = {1, 3, 5, 7};
    int done = 0;
    for (int tries = 0; done < 60 && tries < 10000; tries++) {
        qcase q;
        q.n = irand(1, 5);
        q.h = irand(1, 31), q.w = irand(1, 31);
        q.c = cm[irand(0, 9)], q.m = cm[irand(0, 9)];
        q.kh = ks[irand(0, 3)], q.kw = irand(0, 3) ? q.kh : ks[irand(0, 3)];
        q.sh = irand(1, 2), q.sw = irand(0, 3) ? q.sh : irand(1, 3);
        q.dh = irand(0, 5) ? 1 : 2, q.dw = irand(0, 5) ? q.dh : irand(1, 2);
        q.ph0 = irand(0, q.kh / 2 + 1), q.ph1 = irand(0, 1) ? q.ph0 : irand(0, q.kh);
        q.pw0 = irand(0, q.kw / 2 + 1), q.pw1 = irand(0, 1) ? q.pw0 : irand(0, q.kw);
        int64_t oh = kc_q8conv_sm90_out(q.h, q.kh, q.sh, q.ph0, q.ph1, q.dh);
        int64_t ow = kc_q8conv_sm90_out(q.w, q.kw, q.sw, q.pw0, q.pw1, q.dw);
        if (oh < 1 || ow < 1) continue;
        double macs = (double)q.n * oh * ow * q.m * q.kh * q.kw * q.c;
        if (macs > 4e7) continue;
        run_case(irand(0, KC_Q8CONV_SM90_N_CFG - 1), &q, irand(0, 1), irand(0, 1), irand(0, 2));
        done++;
    }
    printf("%d outputs one quantization step off on a rounding tie (allowed)\n", g_ties);
    /* FP8 (e4m3 -> f16): the fixed shapes on every configuration */
    for (int cfg = 0; cfg < KC_Q8CONV_SM90_N_CFG; cfg++)
        for (int i = 0; i < nf; i++) run_case_f8(cfg, &fixed[i], (i + cfg) % 2, (i / 2 + cfg) % 2);
    bench();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
