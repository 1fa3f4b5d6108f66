/* cuda_gemm_bench.c: the FusedGemm tactics on BERT-base's FFN layers,
** cuBLASLt + our epilogue pass (cuda_fused_gemm_lt_h<k>, cuda_gemm.c)
** against cuDNN's fused graph (cuda_fused_gemm_graph_h<k>,
** cuda_gemm_graph.c) and our SM90 CUTLASS GEMM with the epilogue fused
** (cuda_fused_gemm_sm90_<cfg>, cuda_gemm_sm90.c; Hopper only): median CUDA-event time of each tactic (its plan built
** by an untimed first run, as the builder's timing does), TFLOP/s, and the
** largest difference of each output from the first cuBLASLt tactic's.
** Shapes: FFN-in (M = B*S, K = 768, N = 3072, bias + erf GELU: the one the
** graph tactic is for) and FFN-out (K = 3072, N = 768, bias + residual, no
** activation: the same FLOP count in one cuBLASLt pass, the floor to reach).
** Every SM90 configuration is listed on both (the FFN-in candidates of
** kernels/gemm_sm90_cfg.h, FP16 GELU without C only, print "declines" on
** FFN-out and at BF16).
**   cuda_gemm_bench [reps] [M] [f16|bf16]      (defaults 50, 16384, f16)
** e.g. KILN_GEMM_GRAPH=0 build-gpu/bin/cuda_gemm_bench 50 16384 f16 (no
** cuDNN graph plans: faster; tests/gpu/device/gelu.sh runs it).
** KILN_GEMM_GRAPH_LOG=1 shows the cuDNN plans (engine, runtime compilation,
** finalize time). */
#define CB_PROG "cuda_gemm_bench"
#include "cuda_bench.h"
#include "../src/backends/cuda/cuda_internal.h"
#include "../src/ir/ir_edit.h"
#include "../src/ops/fused.h"

#include <math.h>
#include <string.h>

static const kiln_device_ops *g_ops;
static void *g_dev, *g_stream, *g_exec;
static ir_graph *g_graph;
static int g_reps = 50;

/* A device copy of host tensor h (data on the device, the rest h's). */
static int upload(const kiln_tensor *h, kiln_tensor *d) {
    *d = *h;
    d->flags = 0;
    d->name = NULL;
    d->data = NULL;
    if (check(cudaMalloc(&d->data, h->nbytes), "cudaMalloc") ||
        check(cudaMemcpy(d->data, h->data, h->nbytes, cudaMemcpyHostToDevice), "upload"))
        return -1;
    return 0;
}

static kiln_tensor *host_rand(kiln_dtype dt, int rank, const int64_t *dims, double amp) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) return NULL;
    for (int64_t i = 0; i < tensor_numel(t); i++)
        dt_set_f64(dt, t->data, (size_t)i, rnd_sym() * amp);
    return t;
}

typedef struct run_ctx {
    const kiln_tactic *t;
    ref_ctx c;
} run_ctx;

static cudaError_t launch(void *p, cudaStream_t s) {
    run_ctx *r = p;
    (void)s;
    if (r->t->run(&r->c)) {
        fprintf(stderr, CB_PROG ": %s: %s\n", r->t->name, r->c.err);
        return cudaErrorUnknown;
    }
    return cudaGetLastError();
}

/* Times every FusedGemm tactic of the two tables on one layer. */
static int bench_layer(const char *label, kiln_dtype dt, int64_t M, int64_t K, int64_t N,
                       const char *act, bool res, cudaEvent_t *ev) {
    int fails = 0;
    int64_t ad[2] = {M, K}, bd[2] = {K, N}, cd[1] = {N}, yd[2] = {M, N};
    kiln_tensor *h[4] = {host_rand(dt, 2, ad, 1.0), host_rand(dt, 2, bd, 0.05),
                         host_rand(dt, 1, cd, 1.0), res ? host_rand(dt, 2, yd, 1.0) : NULL};
    kiln_tensor *hy = NULL, *first = NULL;
    kiln_tensor d[4], y;
    memset(d, 0, sizeof d);
    const kiln_tensor *din[4] = {&d[0], &d[1], &d[2], res ? &d[3] : NULL};
    if (!h[0] || !h[1] || !h[2] || (res && !h[3]) || tensor_new(dt, 2, yd, &hy) ||
        tensor_new(dt, 2, yd, &first))
        return 1;
    for (int i = 0; i < 4; i++)
        if (h[i] && upload(h[i], &d[i])) return 1;
    if (upload(hy, &y)) return 1;
    kiln_tensor *outs[1] = {&y};
    ir_node *n = ir_edit_add_node(g_graph, OP_FusedGemm, res ? 4 : 3, 1, NULL);
    if (!n || (act[0] && !ir_edit_set_str(n, "activation", act))) return 1;
    ir_type types[4];
    const ir_type *tin[4] = {0};
    for (int i = 0; i < 4; i++) {
        if (!h[i]) continue;
        memset(&types[i], 0, sizeof types[i]);
        types[i].dtype = dt;
        types[i].rank = h[i]->rank;
        memcpy(types[i].dims, h[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    double flop = 2.0 * (double)M * (double)N * (double)K;
    printf("%s: M %lld K %lld N %lld %s, bias%s%s%s\n", label, (long long)M, (long long)K,
           (long long)N, dt == KILN_DTYPE_BFLOAT16 ? "bf16" : "f16", res ? " + residual" : "",
           act[0] ? " + " : "", act);
    const kiln_tactic *const *tables[] = {cuda_tactics_gemm, cuda_tactics_gemm_graph,
                                          cuda_tactics_gemm_sm90};
    bool have_first = false;
    for (int tb = 0; tb < 3; tb++)
        for (const kiln_tactic *const *tp = tables[tb]; *tp; tp++) {
            const kiln_tactic *t = *tp;
            if (t->op != OP_FusedGemm) continue;
            if (t->supports && !t->supports(n, tin)) {
                printf("  %-40s declines\n", t->name);
                continue;
            }
            size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
            if (wsz == SIZE_MAX) {
                printf("  %-40s no plan (cuDNN refuses)\n", t->name);
                continue;
            }
            void *ws = NULL;
            if (wsz && check(cudaMalloc(&ws, wsz), "workspace")) return 1;
            run_ctx r;
            memset(&r, 0, sizeof r);
            r.t = t;
            r.c.node = n;
            r.c.opset = 21;
            r.c.n_in = n->n_in;
            r.c.in = din;
            r.c.n_out = 1;
            r.c.out = outs;
            r.c.ws = ws;
            r.c.ws_size = wsz;
            r.c.stream = g_stream;
            r.c.exec = g_exec;
            int fb = cuda_gemm_graph_fallbacks(), fb90 = cuda_gemm_sm90_fallbacks();
            float ms = median_ms(launch, &r, 2, g_reps, (cudaStream_t)g_stream, ev);
            cudaFree(ws);
            if (ms < 0) {
                printf("  %-40s failed\n", t->name);
                fails++;
                continue;
            }
            double diff = 0;
            kiln_tensor *dst = have_first ? hy : first;
            if (check(cudaMemcpy(dst->data, y.data, y.nbytes, cudaMemcpyDeviceToHost),
                      "download"))
                return 1;
            if (have_first)
                for (int64_t i = 0; i < M * N; i++) {
                    double e = fabs(dt_get_f64(dt, hy->data, (size_t)i) -
                                    dt_get_f64(dt, first->data, (size_t)i));
                    if (e > diff || isnan(e)) diff = e;
                }
            printf("  %-40s %8.4f ms  %6.1f TFLOP/s  max |diff| %.3g%s\n", t->name, ms,
                   flop / (ms * 1e-3) / 1e12, diff,
                   cuda_gemm_graph_fallbacks() != fb || cuda_gemm_sm90_fallbacks() != fb90
                       ? "  (ran through cuBLASLt: no plan / not taken)"
                       : "");
            have_first = true;
        }
    for (int i = 0; i < 4; i++) {
        cudaFree(d[i].data);
        tensor_free(h[i]);
    }
    cudaFree(y.data);
    tensor_free(hy);
    tensor_free(first);
    return fails;
}

int main(int argc, char **argv) {
    int ndev = 0;
    setenv("KILN_GEMM_GRAPH", "1", 0); /* the graph tactics are opt-in */
    setenv("KILN_GEMM_SM90", "1", 0);  /* whatever the environment says */
    int64_t M = 16384;
    kiln_dtype dt = KILN_DTYPE_FLOAT16;
    if (argc > 1 && atoi(argv[1]) > 0) g_reps = atoi(argv[1]);
    if (argc > 2) M = atoll(argv[2]);
    if (argc > 3) dt = !strcmp(argv[3], "bf16") ? KILN_DTYPE_BFLOAT16 : KILN_DTYPE_FLOAT16;
    if (M < 1) {
        fprintf(stderr, "usage: cuda_gemm_bench [reps] [M] [f16|bf16]\n");
        return 2;
    }
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf(CB_PROG ": no GPU\n");
        return 0;
    }
    const kiln_backend_ops *be = kiln_backend_cuda();
    if (!be || !be->dev) {
        fprintf(stderr, CB_PROG ": no CUDA backend in this build\n");
        return 1;
    }
    g_ops = be->dev;
    if (g_ops->open(&g_dev) || g_ops->stream_create(g_dev, &g_stream) ||
        g_ops->exec_create(g_dev, g_stream, &g_exec)) {
        fprintf(stderr, CB_PROG ": device setup: %s\n", kiln_last_error());
        return 1;
    }
    ir_model *model = ir_model_new();
    if (!model || !(g_graph = ir_graph_new(model, NULL))) return 1;
    model->opset = 21;
    model->graph = g_graph;
    cudaEvent_t ev[2];
    if (check(cudaEventCreate(&ev[0]), "event") || check(cudaEventCreate(&ev[1]), "event"))
        return 1;
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
        printf("device: %s, %d SMs; median of %d runs each\n", p.name, p.multiProcessorCount,
               g_reps);
    int fails = bench_layer("FFN-in", dt, M, 768, 3072, "Gelu", false, ev);
    fails += bench_layer("FFN-out", dt, M, 3072, 768, "", true, ev);
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
    g_ops->exec_destroy(g_dev, g_exec);
    g_ops->stream_destroy(g_dev, g_stream);
    g_ops->close(g_dev);
    ir_model_free(model);
    return fails ? 1 : 0;
}
