/* cuda_elt_bench.c: GPU micro-benchmark of the elementwise kernels on BERT's
** embedding-layer shapes, old against new in one run, through their C seams:
**  - FusedElementwise: the fast path (kc_fused_eltwise) and the interpreter
**    (kc_fused_eltwise_interp) on the embedding sum word[B,S,H] +
**    token_type[B,S,H] + position[S,H] (and with token_type [1,1,H], as the
**    fold pass now leaves it), a bias + GELU chain on [B*S, 4H] with
**    a row-vector bias, and a per-channel scale on [N,C,HW];
**  - broadcasting Add / Mul (a bias row, a per-channel scale): kc_binary (its
**    FusedElementwise fast path) and kc_binary_generic (per-dim index loop);
**  - Cast float32 <-> float16 of [B,S,H]: kc_cast (four per thread) and
**    kc_cast_generic (one per thread);
**  - the word-embedding Gather of B*S rows of H from a 30522-row table, in
**    float32 (before: the precision pass kept it float32 and cast after) and
**    in float16 (after: gathered from the float16 copy).
** Each is timed with CUDA events around single launches after a warm-up; the
** median of the repetitions is printed with the bandwidth it implies (bytes
** read once plus bytes written), and every A/B pair is checked to agree
** (bit for bit for the sum and the casts). Without a GPU it says so and
** exits 0.
**   cuda_elt_bench [reps (100)] [B S H (128 128 768)] */
#include "../src/backends/cuda/kernels/data_kernels.h"
#include "../src/backends/cuda/kernels/eltwise_kernels.h"
#include "../src/util/tensor.h"

#define CB_PROG "cuda_elt_bench"
#include "cuda_bench.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cudaStream_t g_s;
static cudaEvent_t g_ev[2];
static int g_reps = 100;

/* Median ms of g_reps launches, or negative on error. */
static float time_it(launch_fn f, void *ctx) { return median_ms(f, ctx, 5, g_reps, g_s, g_ev); }

static void report(const char *what, const char *which, float ms, double bytes) {
    printf("%-44s %-10s %8.4f ms  %7.1f GB/s\n", what, which, ms, bytes / (ms * 1e-3) / 1e9);
}

/* Device buffer of n random values of dt (KC_F32/F16/BF16), or NULL. */
static void *rand_dev(int dt, int64_t n) {
    size_t es = dt == KC_F32 ? 4 : 2;
    void *h = malloc((size_t)n * es), *d = NULL;
    if (!h) return NULL;
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(2.0 * rnd_sym());
        if (dt == KC_F32) ((float *)h)[i] = v;
        else ((uint16_t *)h)[i] = dt == KC_F16 ? f32_to_f16(v) : f32_to_bf16(v);
    }
    if (check(cudaMalloc(&d, (size_t)n * es), "cudaMalloc") ||
        check(cudaMemcpy(d, h, (size_t)n * es, cudaMemcpyHostToDevice), "upload")) {
        cudaFree(d);
        d = NULL;
    }
    free(h);
    return d;
}

/* Whether device buffers a and b (nbytes) are equal byte for byte. */
static int same_bytes(const void *a, const void *b, size_t nbytes) {
    unsigned char *ha = malloc(nbytes), *hb = malloc(nbytes);
    int same = ha && hb && !cudaMemcpy(ha, a, nbytes, cudaMemcpyDeviceToHost) &&
               !cudaMemcpy(hb, b, nbytes, cudaMemcpyDeviceToHost) && !memcmp(ha, hb, nbytes);
    free(ha);
    free(hb);
    return same;
}

/* ------------------------------------------------------------ fused */
typedef struct fe_ctx {
    int dt;
    const kc_fe_prog *p;
    void *y;
    int64_t n;
} fe_ctx;
static cudaError_t fe_new(void *c, cudaStream_t s) {
    fe_ctx *f = c;
    return kc_fused_eltwise(f->dt, f->p, f->y, f->n, s);
}
static cudaError_t fe_old(void *c, cudaStream_t s) {
    fe_ctx *f = c;
    return kc_fused_eltwise_interp(f->dt, f->p, f->y, f->n, s);
}

/* Times program p (geometry set, inputs in[0..nin) of sizes len[]) both
** ways; exact: the outputs must agree bit for bit. */
static int bench_fused(const char *what, int dt, kc_fe_prog *p, const int64_t *len, int64_t n,
                       int exact) {
    size_t es = dt == KC_F32 ? 4 : 2;
    void *in[KC_MAX_IN] = {NULL}, *y[2] = {NULL, NULL};
    int rc = -1;
    double bytes = (double)n * (double)es;
    for (int j = 0; j < p->n_in; j++) {
        if (!(in[j] = rand_dev(dt, len[j]))) goto fail;
        p->in[j] = in[j];
        bytes += (double)len[j] * (double)es;
    }
    if (check(cudaMalloc(&y[0], (size_t)n * es), "cudaMalloc") ||
        check(cudaMalloc(&y[1], (size_t)n * es), "cudaMalloc"))
        goto fail;
    fe_ctx a = {dt, p, y[0], n}, b = {dt, p, y[1], n};
    float t_new = time_it(fe_new, &a), t_old = time_it(fe_old, &b);
    if (t_new < 0 || t_old < 0) goto fail;
    char w[96];
    snprintf(w, sizeof w, "%s %s", what, dt == KC_F32 ? "f32" : dt == KC_F16 ? "f16" : "bf16");
    report(w, "interp", t_old, bytes);
    report(w, "fast", t_new, bytes);
    int path = kc_fused_eltwise_path(dt, p, y[0], n);
    int same = same_bytes(y[0], y[1], (size_t)n * es);
    printf("%-44s speed-up %.2fx (fast path groups of %d), outputs %s\n", w, t_old / t_new, path,
           same ? "identical" : exact ? "DIFFER" : "differ (not required bit for bit)");
    rc = exact && !same ? -1 : 0;
fail:
    for (int j = 0; j < KC_MAX_IN; j++) cudaFree(in[j]);
    cudaFree(y[0]);
    cudaFree(y[1]);
    return rc;
}

static int bench_fused_all(int64_t B, int64_t S, int64_t H) {
    int fails = 0;
    static const int dts[] = {KC_F16, KC_BF16, KC_F32};
    for (int d = 0; d < 3; d++) {
        int dt = dts[d];
        kc_fe_prog p;
        /* word + token_type + position, coalesced as the tactic does:
        ** dims (B, S*H), position broadcast over B */
        memset(&p, 0, sizeof p);
        p.n_in = 3, p.n_instr = 2, p.out_reg = 3;
        p.ins[0] = (kc_fe_instr){1, KB_ADD, 3, 0, 1, 0, 0, 0};
        p.ins[1] = (kc_fe_instr){1, KB_ADD, 3, 3, 2, 0, 0, 0};
        p.s.rank = 2, p.s.nin = 3;
        p.s.dims[0] = B, p.s.dims[1] = S * H;
        p.s.st[0][0] = p.s.st[1][0] = S * H;
        p.s.st[0][1] = p.s.st[1][1] = p.s.st[2][1] = 1;
        int64_t len3[3] = {B * S * H, B * S * H, S * H};
        fails += bench_fused("embeddings w+t+p [B,S,H]+[B,S,H]+[S,H]", dt, &p, len3, B * S * H,
                             1) != 0;
        /* the same with the token-type constant folded to one row (the fold
        ** pass): dims (B, S, H) */
        p.s.rank = 3;
        p.s.dims[0] = B, p.s.dims[1] = S, p.s.dims[2] = H;
        memset(p.s.st, 0, sizeof p.s.st);
        p.s.st[0][0] = S * H, p.s.st[0][1] = H, p.s.st[0][2] = 1;
        p.s.st[1][2] = 1;
        p.s.st[2][1] = H, p.s.st[2][2] = 1;
        int64_t len3r[3] = {B * S * H, H, S * H};
        fails += bench_fused("embeddings w+t+p [B,S,H]+[1,1,H]+[S,H]", dt, &p, len3r, B * S * H,
                             1) != 0;
        /* x + bias, then gelu(x * 0.5) (dims (B*S, 4H), bias a row) */
        memset(&p, 0, sizeof p);
        p.n_in = 2, p.n_instr = 3, p.out_reg = 2;
        p.k[0] = 0.5f;
        p.ins[0] = (kc_fe_instr){1, KB_ADD, 2, 0, 1, 0, 0, 0};
        p.ins[1] = (kc_fe_instr){1, KB_MUL, 2, 2, -1, 0, 0, 0};
        p.ins[2] = (kc_fe_instr){0, KU_GELU, 2, 2, -1, 0, 0, 0};
        p.s.rank = 2, p.s.nin = 2;
        p.s.dims[0] = B * S, p.s.dims[1] = 4 * H;
        p.s.st[0][0] = 4 * H, p.s.st[0][1] = 1, p.s.st[1][1] = 1;
        int64_t len2[2] = {B * S * 4 * H, 4 * H};
        fails += bench_fused("bias+gelu [B*S,4H]+[4H]", dt, &p, len2, B * S * 4 * H, 0) != 0;
        /* per-channel scale x * s[c] on (N=B, C=H, S) */
        memset(&p, 0, sizeof p);
        p.n_in = 2, p.n_instr = 1, p.out_reg = 2;
        p.ins[0] = (kc_fe_instr){1, KB_MUL, 2, 0, 1, 0, 0, 0};
        p.s.rank = 3, p.s.nin = 2;
        p.s.dims[0] = B, p.s.dims[1] = H, p.s.dims[2] = S;
        p.s.st[0][0] = H * S, p.s.st[0][1] = S, p.s.st[0][2] = 1, p.s.st[1][1] = 1;
        int64_t lenc[2] = {B * H * S, H};
        fails += bench_fused("channel scale [B,H,S]*[H,1]", dt, &p, lenc, B * H * S, 1) != 0;
    }
    return fails;
}

/* ------------------------------------------------------------ binary */
typedef struct bin_ctx {
    int op, dt;
    const kc_bshape *s;
    const void *a, *b;
    void *y;
    int64_t n;
} bin_ctx;
static cudaError_t bin_new(void *c, cudaStream_t s) {
    bin_ctx *k = c;
    return kc_binary(k->op, k->dt, k->dt, k->dt, k->s, k->a, k->b, k->y, k->n, s);
}
static cudaError_t bin_old(void *c, cudaStream_t s) {
    bin_ctx *k = c;
    return kc_binary_generic(k->op, k->dt, k->dt, k->dt, k->s, k->a, k->b, k->y, k->n, s);
}

/* kc_binary (fast path) against kc_binary_generic on geometry s; the
** outputs must agree bit for bit. */
static int bench_binary(const char *what, int op, int dt, const kc_bshape *s, int64_t la,
                        int64_t lb, int64_t n) {
    size_t es = dt == KC_F32 ? 4 : 2;
    void *a = rand_dev(dt, la), *b = rand_dev(dt, lb), *y[2] = {NULL, NULL};
    int rc = -1;
    if (!a || !b || check(cudaMalloc(&y[0], (size_t)n * es), "cudaMalloc") ||
        check(cudaMalloc(&y[1], (size_t)n * es), "cudaMalloc"))
        goto fail;
    bin_ctx x = {op, dt, s, a, b, y[0], n}, z = {op, dt, s, a, b, y[1], n};
    float t_new = time_it(bin_new, &x), t_old = time_it(bin_old, &z);
    if (t_new < 0 || t_old < 0) goto fail;
    char w[96];
    snprintf(w, sizeof w, "%s %s", what, dt == KC_F32 ? "f32" : dt == KC_F16 ? "f16" : "bf16");
    double bytes = (double)(la + lb + n) * (double)es;
    report(w, "generic", t_old, bytes);
    report(w, "fast", t_new, bytes);
    int same = same_bytes(y[0], y[1], (size_t)n * es);
    printf("%-44s speed-up %.2fx, outputs %s\n", w, t_old / t_new, same ? "identical" : "DIFFER");
    rc = same ? 0 : -1;
fail:
    cudaFree(a);
    cudaFree(b);
    cudaFree(y[0]);
    cudaFree(y[1]);
    return rc;
}

static int bench_binary_all(int64_t B, int64_t S, int64_t H) {
    int fails = 0;
    static const int dts[] = {KC_F16, KC_F32};
    for (int d = 0; d < 2; d++) {
        kc_bshape s;
        memset(&s, 0, sizeof s);
        s.rank = 2, s.nin = 2;
        s.dims[0] = B * S, s.dims[1] = H;
        s.st[0][0] = H, s.st[0][1] = 1, s.st[1][1] = 1;
        fails += bench_binary("Add bias [B*S,H]+[H]", KB_ADD, dts[d], &s, B * S * H, H,
                              B * S * H) != 0;
        memset(&s, 0, sizeof s);
        s.rank = 3, s.nin = 2;
        s.dims[0] = B, s.dims[1] = H, s.dims[2] = S;
        s.st[0][0] = H * S, s.st[0][1] = S, s.st[0][2] = 1, s.st[1][1] = 1;
        fails += bench_binary("Mul channel [B,H,S]*[H,1]", KB_MUL, dts[d], &s, B * H * S, H,
                              B * H * S) != 0;
    }
    return fails;
}

/* ------------------------------------------------------------ cast */
typedef struct cast_ctx {
    int ts, td;
    const void *x;
    void *y;
    int64_t n;
} cast_ctx;
static cudaError_t cast_new(void *c, cudaStream_t s) {
    cast_ctx *k = c;
    return kc_cast(k->ts, k->td, k->x, k->y, k->n, s);
}
static cudaError_t cast_old(void *c, cudaStream_t s) {
    cast_ctx *k = c;
    return kc_cast_generic(k->ts, k->td, k->x, k->y, k->n, s);
}

static int bench_cast(int ts, int td, int64_t n) {
    size_t es = ts == KC_F32 ? 4 : 2, ed = td == KC_F32 ? 4 : 2;
    void *x = rand_dev(ts, n), *y[2] = {NULL, NULL};
    int rc = -1;
    if (!x || check(cudaMalloc(&y[0], (size_t)n * ed), "cudaMalloc") ||
        check(cudaMalloc(&y[1], (size_t)n * ed), "cudaMalloc"))
        goto fail;
    cast_ctx a = {ts, td, x, y[0], n}, b = {ts, td, x, y[1], n};
    float t_new = time_it(cast_new, &a), t_old = time_it(cast_old, &b);
    if (t_new < 0 || t_old < 0) goto fail;
    char w[96];
    snprintf(w, sizeof w, "cast %s -> %s, %lld elements", ts == KC_F32 ? "f32" : "f16",
             td == KC_F32 ? "f32" : "f16", (long long)n);
    double bytes = (double)n * (double)(es + ed);
    report(w, "generic", t_old, bytes);
    report(w, "vector", t_new, bytes);
    int same = same_bytes(y[0], y[1], (size_t)n * ed);
    printf("%-44s speed-up %.2fx, outputs %s\n", w, t_old / t_new, same ? "identical" : "DIFFER");
    rc = same ? 0 : -1;
fail:
    cudaFree(x);
    cudaFree(y[0]);
    cudaFree(y[1]);
    return rc;
}

/* ------------------------------------------------------------ gather */
typedef struct gather_ctx {
    const void *table, *ids;
    void *y;
    int64_t rows, vocab, h;
    int es;
} gather_ctx;
/* As run_gather picks it: 16-byte units when the row allows. */
static cudaError_t gather_run(void *c, cudaStream_t s) {
    gather_ctx *g = c;
    int64_t rb = g->h * g->es;
    int u = rb % 16 == 0 ? 16 : rb % 8 == 0 ? 8 : rb % 4 == 0 ? 4 : g->es;
    return kc_gather(g->y, g->table, g->ids, 1, 1, g->vocab, g->rows, rb / u, u, s);
}

static int bench_gather(int64_t rows, int64_t h) {
    const int64_t vocab = 30522;
    long long *hid = malloc((size_t)rows * sizeof *hid);
    void *t32 = rand_dev(KC_F32, vocab * h), *t16 = rand_dev(KC_F16, vocab * h);
    void *ids = NULL, *y = NULL;
    int rc = -1;
    if (!hid || !t32 || !t16) goto fail;
    for (int64_t i = 0; i < rows; i++) hid[i] = (long long)((rnd_sym() + 1.0) * 0.5 * (vocab - 1));
    if (check(cudaMalloc(&ids, (size_t)rows * 8), "cudaMalloc") ||
        check(cudaMemcpy(ids, hid, (size_t)rows * 8, cudaMemcpyHostToDevice), "upload") ||
        check(cudaMalloc(&y, (size_t)(rows * h * 4)), "cudaMalloc"))
        goto fail;
    gather_ctx a = {t32, ids, y, rows, vocab, h, 4}, b = {t16, ids, y, rows, vocab, h, 2};
    float t_a = time_it(gather_run, &a), t_b = time_it(gather_run, &b);
    if (t_a < 0 || t_b < 0) goto fail;
    char w[96];
    snprintf(w, sizeof w, "gather %lld rows of %lld", (long long)rows, (long long)h);
    report(w, "f32 table", t_a, (double)rows * (double)h * 8.0);
    report(w, "f16 table", t_b, (double)rows * (double)h * 4.0);
    printf("%-44s f16 table %.2fx faster (and no f32 -> f16 cast after it)\n", w, t_a / t_b);
    rc = 0;
fail:
    free(hid);
    cudaFree(t32);
    cudaFree(t16);
    cudaFree(ids);
    cudaFree(y);
    return rc;
}

int main(int argc, char **argv) {
    int ndev = 0;
    setenv("KILN_CUDA_ELT_FAST", "1", 1); /* "new" = the opt-in fast paths */
    int64_t B = 128, S = 128, H = 768;
    if (argc > 1 && atoi(argv[1]) > 0) g_reps = atoi(argv[1]);
    if (argc > 4) B = atoll(argv[2]), S = atoll(argv[3]), H = atoll(argv[4]);
    if (B < 1 || S < 1 || H < 1) {
        fprintf(stderr, "usage: cuda_elt_bench [reps] [B S H]\n");
        return 2;
    }
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("cuda_elt_bench: no GPU\n");
        return 0;
    }
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
        printf("device: %s, %d SMs; B %lld S %lld H %lld; median of %d launches each\n", p.name,
               p.multiProcessorCount, (long long)B, (long long)S, (long long)H, g_reps);
    if (check(cudaStreamCreate(&g_s), "stream") || check(cudaEventCreate(&g_ev[0]), "event") ||
        check(cudaEventCreate(&g_ev[1]), "event"))
        return 1;
    int fails = bench_fused_all(B, S, H);
    fails += bench_binary_all(B, S, H);
    fails += bench_cast(KC_F32, KC_F16, B * S * H) != 0;
    fails += bench_cast(KC_F16, KC_F32, B * S * H) != 0;
    fails += bench_gather(B * S, H) != 0;
    cudaEventDestroy(g_ev[0]);
    cudaEventDestroy(g_ev[1]);
    cudaStreamDestroy(g_s);
    return fails ? 1 : 0;
}
