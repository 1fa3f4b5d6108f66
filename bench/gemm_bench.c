/* gemm_bench.c: micro-benchmark of the CPU GEMM / conv tactics against the
** reference kernels: best-of-N wall time and GFLOP/s per tactic, for BERT
** GEMM shapes and ResNet-50 / MobileNet conv shapes, at the thread counts
** given on the command line (default 1). Tactics with a prepare hook are
** timed twice: packing their constant weights on every run (no blob) and on
** the blob an engine stores ("+prepared", what an engine runs). Also times
** packing a constant B alone.
**   gemm_bench [-f filter] [-t seconds] [threads...] */
#include "../src/backends/cpu/cpu_gemm.h"
#include "../src/backends/cpu/cpu_tactics.h"
#include "../src/ir/ir_edit.h"

#include <stdio.h>
#include <time.h>

static ir_model *g_model;
static ir_graph *g_graph;
static unsigned g_host;
static const char *g_filter;
static double g_budget = 0.25; /* seconds per tactic */
static uint64_t g_rng = 88172645463325252ull;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static kiln_tensor *rand_tensor(int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t)) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) {
        g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
        p[i] = (float)((double)(g_rng >> 11) / 9007199254740992.0 - 0.5);
    }
    return t;
}

static const kiln_tactic k_ref_tactic = {"ref", OP_NONE, 0, 0, NULL, NULL, NULL};

/* Best time (seconds) of a tactic; < 0 if it declines or fails. */
static double time_one(const kiln_tactic *t, const ir_node *n,
                       const kiln_tensor *const *in, kiln_tensor *y, bool prepared) {
    const ir_type *tin[8] = {0};
    ir_type types[8];
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    ref_kernel_fn fn = t == &k_ref_tactic ? ref_kernel_get(n->op) : t->run;
    if (t != &k_ref_tactic && t->supports && !t->supports(n, tin)) return -1;
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = n->n_in;
    c.in = in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    c.ws = ws;
    c.ws_size = wsz;
    void *blob = NULL;
    size_t blob_n = 0;
    if (prepared) {
        /* weights (input 1) constant, as in an engine */
        const kiln_tensor *cin[8] = {0};
        cin[1] = in[1];
        if (!t->prepare || t->prepare(n, tin, cin, &blob, &blob_n) || !blob) {
            kiln_aligned_free(ws);
            return -1;
        }
        c.blob = blob;
        c.blob_size = blob_n;
    }
    double best = -1, spent = 0;
    for (int r = 0; r < 1000 && (r < 4 || spent < g_budget); r++) {
        double t0 = now_s();
        /* The runtime zero-fills outputs for tactics that do not promise
        ** to overwrite them. */
        if (!(t->flags & TACTIC_OVERWRITES_OUTPUT)) memset(y->data, 0, y->nbytes);
        if (fn(&c)) {
            fprintf(stderr, "%s: %s\n", t->name, c.err);
            best = -1;
            break;
        }
        double dt = now_s() - t0;
        if (r > 0 && (best < 0 || dt < best)) best = dt; /* r 0 warms up */
        spent += dt;
    }
    kiln_aligned_free(ws);
    kiln_aligned_free(blob);
    return best;
}

static void bench_node(const char *label, const ir_node *n,
                       const kiln_tensor *const *in, double flops,
                       const int *threads, int nthreads) {
    if (g_filter && !strstr(label, g_filter)) return;
    kiln_tensor *outs[1];
    /* Output shape from the reference run (also a warm-up). */
    if (ref_run_node(n, in, outs)) {
        fprintf(stderr, "%s: %s\n", label, kiln_last_error());
        return;
    }
    kiln_tensor *y = outs[0];
    const kiln_tactic *ts[16];
    int nt = 0;
    for (const kiln_tactic *const *t = cpu_tactic_table; *t; t++)
        if ((*t)->op == n->op && !((*t)->isa & ~g_host)) ts[nt++] = *t;
    ts[nt++] = &k_ref_tactic;
    printf("%s  (%.1f MFLOP)\n", label, flops * 1e-6);
    for (int k = 0; k < nt; k++)
        for (int q = 0; q < nthreads; q++) {
            for (int pr = 0; pr < 2; pr++) {
                if (pr && (ts[k] == &k_ref_tactic || !ts[k]->prepare)) continue;
                kiln_set_num_threads(threads[q]);
                double s = time_one(ts[k], n, in, y, pr != 0);
                if (s < 0) continue;
                char nm[96];
                snprintf(nm, sizeof nm, "%s%s", ts[k]->name, pr ? " +prepared" : "");
                printf("  %-52s t=%d %9.3f ms %8.2f GFLOP/s\n", nm, threads[q], s * 1e3,
                       flops / s * 1e-9);
            }
        }
    tensor_free(y);
}

/* ---- the GEMM driver with pre-packed weights (what a build-time pre-pack
** would give); jobs built here directly. */
typedef struct pre_ctx {
    const float *a, *b, *bias, *apre, *bpre;
    float *y;
    int64_t M, N, K;
    bool tb;
    cpu_bpack_fn im2col;
    const cpu_im2col *geom;
    bool bias_rows; /* conv: bias per row; gemm: per column */
} pre_ctx;

static void pre_get(const void *ctx, int64_t idx, cpu_gemm_prob *p) {
    (void)idx;
    const pre_ctx *q = ctx;
    memset(p, 0, sizeof *p);
    p->a = q->a;
    p->a_rs = q->K;
    p->a_cs = 1;
    p->b = q->b;
    p->b_rs = q->tb ? 1 : q->N;
    p->b_cs = q->tb ? q->K : 1;
    p->bpack = q->im2col;
    p->bpack_ctx = q->geom;
    p->a_pre = q->apre;
    p->b_pre = q->bpre;
    p->y = q->y;
    p->ldy = q->N;
    p->epi.alpha = p->epi.beta = 1.0f;
    p->epi.c = q->bias;
    p->epi.c_rs = q->bias_rows ? 1 : 0;
    p->epi.c_cs = q->bias_rows ? 0 : 1;
}

static double time_job(const cpu_gemm_kernel *k, pre_ctx *q) {
    cpu_gemm_job job = {q->M, q->N, q->K, 1, pre_get, q};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    size_t wsz = cpu_gemm_workspace(k, q->M, q->N, q->K);
    c.ws = kiln_aligned_alloc(wsz);
    c.ws_size = wsz;
    double best = -1, spent = 0;
    for (int r = 0; r < 1000 && (r < 4 || spent < g_budget); r++) {
        double t0 = now_s();
        cpu_gemm_run(&c, k, &job);
        double dt = now_s() - t0;
        if (r > 0 && (best < 0 || dt < best)) best = dt;
        spent += dt;
    }
    kiln_aligned_free(c.ws);
    return best;
}

static const cpu_gemm_kernel *best_kernel(void) {
    if (cpu_gemm_kernel_avx512.available && (g_host & KILN_ISA_AVX512F))
        return &cpu_gemm_kernel_avx512;
    if (cpu_gemm_kernel_avx2.available && (g_host & KILN_ISA_AVX2))
        return &cpu_gemm_kernel_avx2;
    return &cpu_gemm_kernel_c;
}

/* Weights packed per run vs once, same driver and kernel (1 thread). */
static void bench_prepacked(pre_ctx *q, bool weights_are_a, double flops) {
    const cpu_gemm_kernel *k = best_kernel();
    kiln_set_num_threads(1);
    double t0 = time_job(k, q);
    float *pre = malloc((weights_are_a ? cpu_gemm_packed_a_floats(k, q->M, q->K)
                                       : cpu_gemm_packed_b_floats(k, q->K, q->N)) *
                        sizeof(float));
    if (!pre) return;
    if (weights_are_a) {
        cpu_gemm_prepack_a(k, q->a, q->K, 1, q->M, q->K, pre);
        q->apre = pre;
    } else {
        cpu_gemm_prepack_b(k, q->b, q->tb ? 1 : q->N, q->tb ? q->K : 1, q->K, q->N, pre);
        q->bpre = pre;
    }
    double t1 = time_job(k, q);
    q->apre = q->bpre = NULL;
    free(pre);
    printf("  driver %-11s weights packed per run  t=1 %9.3f ms %8.2f GFLOP/s\n", k->name,
           t0 * 1e3, flops / t0 * 1e-9);
    printf("  driver %-11s weights pre-packed      t=1 %9.3f ms %8.2f GFLOP/s\n", k->name,
           t1 * 1e3, flops / t1 * 1e-9);
}

static void bench_gemm(int64_t M, int64_t K, int64_t N, bool tb, const char *act,
                       const int *threads, int nthreads) {
    int64_t ad[2] = {M, K}, bd[2] = {tb ? N : K, tb ? K : N}, cd[1] = {N};
    kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd), *C = rand_tensor(1, cd);
    ir_node *n = ir_edit_add_node(g_graph, OP_FusedGemm, 3, 1, NULL);
    if (tb) ir_edit_set_int(n, "transB", 1);
    if (act[0]) ir_edit_set_str(n, "activation", act);
    const kiln_tensor *in[3] = {A, B, C};
    char label[160];
    snprintf(label, sizeof label, "FusedGemm M=%lld K=%lld N=%lld%s bias%s%s",
             (long long)M, (long long)K, (long long)N, tb ? " transB" : "",
             act[0] ? " +" : "", act);
    double flops = 2.0 * (double)M * (double)K * (double)N;
    bench_node(label, n, in, flops, threads, nthreads);
    /* Packing the constant B once, as every run does now. */
    if (!g_filter || strstr(label, g_filter)) {
        const cpu_gemm_kernel *ks[2] = {&cpu_gemm_kernel_avx512, &cpu_gemm_kernel_avx2};
        for (int q = 0; q < 2; q++) {
            if (!ks[q]->available) continue;
            unsigned need = q == 0 ? KILN_ISA_AVX512F : KILN_ISA_AVX2;
            if (!(g_host & need)) continue;
            float *dst = malloc(cpu_gemm_packed_b_floats(ks[q], K, N) * sizeof(float));
            if (!dst) continue;
            double best = -1;
            for (int r = 0; r < 10; r++) {
                double t0 = now_s();
                cpu_gemm_prepack_b(ks[q], B->data, tb ? 1 : N, tb ? K : 1, K, N, dst);
                double dt = now_s() - t0;
                if (r && (best < 0 || dt < best)) best = dt;
            }
            printf("  pack B only (%s)%*s t=1 %9.3f ms\n", ks[q]->name,
                   (int)(26 - strlen(ks[q]->name)), "", best * 1e3);
            free(dst);
        }
        int64_t yd[2] = {M, N};
        kiln_tensor *Y = rand_tensor(2, yd);
        pre_ctx q = {A->data, B->data, C->data, NULL, NULL, Y->data, M, N, K, tb,
                     NULL, NULL, false};
        bench_prepacked(&q, false, flops);
        tensor_free(Y);
    }
    tensor_free(A);
    tensor_free(B);
    tensor_free(C);
}

static void bench_conv(const char *name, int64_t C, int64_t H, int64_t W, int64_t M,
                       int64_t k, int64_t s, int64_t p, int64_t G, bool fused,
                       const int *threads, int nthreads) {
    int64_t xd[4] = {1, C, H, W}, wd[4] = {M, C / G, k, k}, bd[1] = {M};
    kiln_tensor *X = rand_tensor(4, xd), *Wt = rand_tensor(4, wd), *B = rand_tensor(1, bd);
    int64_t oh = (H + 2 * p - k) / s + 1, ow = (W + 2 * p - k) / s + 1;
    int64_t zd[4] = {1, M, oh, ow};
    kiln_tensor *Z = fused ? rand_tensor(4, zd) : NULL;
    ir_node *n = ir_edit_add_node(g_graph, fused ? OP_FusedConv : OP_Conv, fused ? 4 : 3, 1, NULL);
    int64_t ks[2] = {k, k}, ss[2] = {s, s}, ps[4] = {p, p, p, p};
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    ir_edit_set_ints(n, "strides", ss, 2);
    ir_edit_set_ints(n, "pads", ps, 4);
    if (G != 1) ir_edit_set_int(n, "group", G);
    if (fused) ir_edit_set_str(n, "activation", "Relu");
    const kiln_tensor *in[4] = {X, Wt, B, Z};
    char label[200];
    snprintf(label, sizeof label, "%s%s: %lldx%lldx%lld -> %lld, k%lld s%lld p%lld g%lld",
             fused ? "FusedConv(+Z,Relu) " : "Conv ", name, (long long)C, (long long)H,
             (long long)W, (long long)M, (long long)k, (long long)s, (long long)p,
             (long long)G);
    double flops = 2.0 * (double)(M * oh * ow) * (double)(C / G * k * k);
    bench_node(label, n, in, flops, threads, nthreads);
    if (G == 1 && (!g_filter || strstr(label, g_filter))) {
        /* The same conv through the driver with its weights (A) pre-packed. */
        const cpu_gemm_kernel *kk = best_kernel();
        cpu_im2col geom = {1, H, W, 1, oh, ow, 1, k, k, 1, s, s, 1, 1, 1, 0, p, p, H * W};
        int64_t yd[4] = {1, M, oh, ow};
        kiln_tensor *Y = rand_tensor(4, yd);
        bool pointwise = k == 1 && s == 1 && p == 0;
        pre_ctx q = {Wt->data, X->data, B->data, NULL, NULL, Y->data, M, oh * ow,
                     C * k * k, false, pointwise ? NULL : kk->im2col ? kk->im2col
                                                                    : cpu_im2col_pack_c,
                     &geom, true};
        bench_prepacked(&q, true, flops);
        tensor_free(Y);
    }
    tensor_free(X);
    tensor_free(Wt);
    tensor_free(B);
    tensor_free(Z);
}

/* A blocked (NCHWc) conv layer as the layout pass leaves it: blocked input,
** weights [Mb][C][k][k][b], bias, Relu; every NchwcConv tactic of the
** host (direct, Winograd F(4x4) and F(2x2), each also on its blob). */
static void bench_nchwc(const char *name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t M,
                        int64_t k, int64_t s, int64_t p, const int *threads, int nthreads) {
    int64_t b = (g_host & KILN_ISA_AVX512F) ? 16 : 8, Cb = (C + b - 1) / b, Mb = (M + b - 1) / b;
    int64_t xd[5] = {N, Cb, H, W, b}, wd[5] = {Mb, C, k, k, b}, bd[1] = {Mb * b};
    kiln_tensor *X = rand_tensor(5, xd), *Wt = rand_tensor(5, wd), *B = rand_tensor(1, bd);
    ir_node *n = ir_edit_add_node(g_graph, OP_NchwcConv, 3, 1, NULL);
    int64_t ks[2] = {k, k}, ss[2] = {s, s}, one[2] = {1, 1}, ps[4] = {p, p, p, p};
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    ir_edit_set_ints(n, "strides", ss, 2);
    ir_edit_set_ints(n, "dilations", one, 2);
    ir_edit_set_ints(n, "pads", ps, 4);
    ir_edit_set_int(n, "block", b);
    ir_edit_set_int(n, "in_channels", C);
    ir_edit_set_int(n, "out_channels", M);
    ir_edit_set_str(n, "activation", "Relu");
    const kiln_tensor *in[3] = {X, Wt, B};
    char label[200];
    snprintf(label, sizeof label, "NchwcConv %s: N%lld %lldx%lldx%lld -> %lld, k%lld s%lld p%lld b%lld",
             name, (long long)N, (long long)C, (long long)H, (long long)W, (long long)M,
             (long long)k, (long long)s, (long long)p, (long long)b);
    int64_t oh = (H + 2 * p - k) / s + 1, ow = (W + 2 * p - k) / s + 1;
    double flops = 2.0 * (double)(N * M * oh * ow) * (double)(C * k * k);
    bench_node(label, n, in, flops, threads, nthreads);
    tensor_free(X);
    tensor_free(Wt);
    tensor_free(B);
}

int main(int argc, char **argv) {
    int threads[16], nth = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") && i + 1 < argc) g_filter = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) g_budget = atof(argv[++i]);
        else if (nth < 16) threads[nth++] = atoi(argv[i]);
    }
    if (!nth) threads[nth++] = 1;
    g_host = kiln_backend_cpu()->host_isa();
    char isa[64];
    printf("host isa: %s\n", kiln_isa_names(g_host, isa, sizeof isa));
    g_model = ir_model_new();
    g_model->opset = 17;
    g_graph = ir_graph_new(g_model, NULL);
    g_model->graph = g_graph;

    /* BERT-base, 128 tokens: QKV/out projection and the FFN. */
    bench_gemm(128, 768, 768, false, "", threads, nth);
    bench_gemm(128, 768, 3072, false, "Gelu", threads, nth);
    bench_gemm(128, 768, 3072, false, "", threads, nth); /* the GELU's share */
    bench_gemm(128, 3072, 768, false, "", threads, nth);
    /* ConvNeXt-T stage 1 MLP (56x56 tokens, 96 -> 384 -> 96), GELU on the first */
    bench_gemm(3136, 96, 384, false, "Gelu", threads, nth);
    bench_gemm(3136, 96, 384, false, "", threads, nth);
    bench_gemm(3136, 384, 96, false, "", threads, nth);
    /* The same sizes read as M x N x K = 768x768x128 and 3072x768x128. */
    bench_gemm(768, 128, 768, false, "", threads, nth);
    bench_gemm(3072, 128, 768, false, "", threads, nth);
    /* Batch-1 transformer rows (decode, short prompts): small M against a
    ** BERT-sized weight, threaded over N. */
    bench_gemm(1, 768, 3072, false, "", threads, nth);
    bench_gemm(4, 768, 3072, false, "", threads, nth);
    bench_gemm(17, 768, 768, false, "", threads, nth);
    /* ResNet-50 classifier (batch 1, weights transposed). */
    bench_gemm(1, 2048, 1000, true, "", threads, nth);
    /* The same with B not transposed (MatMul weights): the packed path. */
    bench_gemm(1, 2048, 1000, false, "", threads, nth);

    /* ResNet-50 (batch 1, 224x224). */
    bench_conv("conv1", 3, 224, 224, 64, 7, 2, 3, 1, false, threads, nth);
    bench_conv("l1 1x1 reduce", 64, 56, 56, 64, 1, 1, 0, 1, false, threads, nth);
    bench_conv("l1 3x3", 64, 56, 56, 64, 3, 1, 1, 1, false, threads, nth);
    bench_conv("l1 1x1 expand", 64, 56, 56, 256, 1, 1, 0, 1, true, threads, nth);
    bench_conv("l2 3x3 s2", 128, 56, 56, 128, 3, 2, 1, 1, false, threads, nth);
    bench_conv("l2 3x3", 128, 28, 28, 128, 3, 1, 1, 1, false, threads, nth);
    bench_conv("l3 3x3", 256, 14, 14, 256, 3, 1, 1, 1, false, threads, nth);
    bench_conv("l3 1x1 expand", 256, 14, 14, 1024, 1, 1, 0, 1, true, threads, nth);
    bench_conv("l4 3x3", 512, 7, 7, 512, 3, 1, 1, 1, false, threads, nth);
    bench_conv("l4 1x1 reduce", 2048, 7, 7, 512, 1, 1, 0, 1, false, threads, nth);
    /* The same 3x3 stride-1 layers blocked (direct vs Winograd), batch 1
    ** and 8, and a YOLO-ish odd size. */
    bench_nchwc("l1 3x3", 1, 64, 56, 56, 64, 3, 1, 1, threads, nth);
    bench_nchwc("l2 3x3", 1, 128, 28, 28, 128, 3, 1, 1, threads, nth);
    bench_nchwc("l3 3x3", 1, 256, 14, 14, 256, 3, 1, 1, threads, nth);
    bench_nchwc("l4 3x3", 1, 512, 7, 7, 512, 3, 1, 1, threads, nth);
    bench_nchwc("l3 3x3", 8, 256, 14, 14, 256, 3, 1, 1, threads, nth);
    bench_nchwc("l4 3x3", 8, 512, 7, 7, 512, 3, 1, 1, threads, nth);
    bench_nchwc("odd 3x3", 1, 48, 37, 41, 80, 3, 1, 1, threads, nth);
    /* the direct kernel on ResNet-50's other layers (1x1, strided) */
    bench_nchwc("l1 1x1 reduce", 1, 256, 56, 56, 64, 1, 1, 0, threads, nth);
    bench_nchwc("l1 1x1 expand", 1, 64, 56, 56, 256, 1, 1, 0, threads, nth);
    bench_nchwc("l3 1x1 expand", 1, 256, 14, 14, 1024, 1, 1, 0, threads, nth);
    bench_nchwc("l2 3x3 s2", 1, 128, 56, 56, 128, 3, 2, 1, threads, nth);
    bench_nchwc("l2 1x1 s2 down", 1, 256, 56, 56, 512, 1, 2, 0, threads, nth);
    /* MobileNet-style depthwise. */
    bench_conv("dw 3x3", 32, 112, 112, 32, 3, 1, 1, 32, false, threads, nth);
    bench_conv("dw 3x3 s2", 144, 56, 56, 144, 3, 2, 1, 144, false, threads, nth);
    bench_conv("dw 3x3", 576, 14, 14, 576, 3, 1, 1, 576, false, threads, nth);
    ir_model_free(g_model);
    return 0;
}
