/* test_cuda_gemm_graph.c: the cuDNN graph-API FusedGemm tactics
** (cuda_gemm_graph.c: matmul -> + bias / C -> + R -> activation in one
** cuDNN graph) against the reference kernels, FP16 and BF16: random shapes
** (M = 1, odd, up to a few hundred; N and K multiples of 8 or not;
** transposes; bias row, C of the output's shape or none; residual R or
** not; every activation the tactic takes), batches folded into M or run as
** cuDNN's batch, and BERT-base's FFN-in layer (M = 16384, K = 768,
** N = 3072, bias + erf GELU).
**
** What must hold on a GPU: any configuration may be refused (workspace()
** SIZE_MAX: cuDNN has no engine for the problem or its alignment), but
** some configuration must run the FP16 BERT FFN-in shape and a small
** aligned bias + GELU case in cuDNN's graph (not through the cuBLASLt way
** out, cuda_gemm_graph_fallbacks); the GELU must be the erf form (a case
** whose pre-activations lie in [-4.2, -3], where the tanh form is 10% to
** 40% off, compared tightly); the tactic declines what it does not take
** (alpha != 1, beta != 1 with C, Clip/LeakyRelu/HardSwish/HardSigmoid, no
** activation, ReLU and tanh GELU without a residual, broadcast batches).
** Dry run (KILN_GPU_TEST_DRY=1, no GPU): references, supports() and each
** graph built host-only by cuDNN (cuda_gemm_graph_probe), which checks the
** descriptors' dims and strides. KILN_GEMM_GRAPH_LOG=1 prints each plan;
** KILN_GPU_TEST_FULL=1 runs all four configurations on every case (else
** all four on the FP16 BERT layer, h0 and h1 on the others, and random
** cases stop after 240 s: runtime-compiled engines may cost seconds of
** NVRTC per plan). argv[1] optionally filters tactics by name. */
#include "gpu_test.h"

#include <time.h>

static int g_graph_runs;     /* tactic/case pairs run in cuDNN's graph */
static int g_probed, g_probe_unavailable;
static double g_spent;       /* seconds in random cases */
static int g_budget_skipped; /* random cases past the time budget */
static bool g_full;

typedef struct gg_case {
    int ra, rb;
    int64_t ad[4], bd[4];
    int64_t M, K, N; /* of one matrix product */
    int ta, tb;
    int ckind;       /* 0 none, 1 bias row [N], 2 C of the output's shape */
    bool res;        /* residual R */
    const char *act;
    bool must;       /* some configuration must run it in the graph */
    bool all_cfg;    /* run all four configurations */
    bool erf_check;  /* A = 0, bias in [-4.2, -3]: tight comparison */
    bool big;        /* BERT-sized: a dry run skips its references */
} gg_case;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_attrs(ir_node *n, const gg_case *gc, bool abs_mode) {
    if (gc->ta) ir_edit_set_int(n, "transA", 1);
    if (gc->tb) ir_edit_set_int(n, "transB", 1);
    if (!abs_mode) gt_set_act(n, gc->act);
}

/* Builds the types of in[0..n) for supports() and the probe. */
static void types_of(const ir_node *n, const kiln_tensor *const *in, ir_type *types,
                     const ir_type **tin) {
    for (int i = 0; i < n->n_in && i < 4; i++) {
        tin[i] = NULL;
        if (!in[i]) continue;
        memset(&types[i], 0, sizeof types[i]);
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
}

/* Each element within rtol of |want| (plus a tiny floor): the erf check. */
static bool compare_tight(const char *tname, const char *desc, const kiln_tensor *got,
                          const kiln_tensor *want, double rtol) {
    int64_t n = tensor_numel(got);
    for (int64_t i = 0; i < n; i++) {
        double g = dt_get_f64(got->dtype, got->data, (size_t)i);
        double w = dt_get_f64(want->dtype, want->data, (size_t)i);
        if (!(fabs(g - w) <= rtol * fabs(w) + 1e-7)) {
            fprintf(stderr, "FAIL %s %s: element %lld got %.9g want %.9g (erf GELU check)\n",
                    tname, desc, (long long)i, g, w);
            return false;
        }
    }
    return true;
}

static void run_case(const gg_case *gc, kiln_dtype dt, const char *what) {
    kiln_tensor *A = gt_rand(dt, gc->ra, gc->ad, 2.0), *B = gt_rand(dt, gc->rb, gc->bd, 2.0);
    kiln_tensor *C = NULL, *R = NULL;
    /* the output's shape, from the plain product */
    ir_node *p = gt_node(OP_FusedGemm, 2);
    set_attrs(p, gc, true);
    const kiln_tensor *pin[2] = {A, B};
    kiln_tensor *y0 = gt_ref(p, pin);
    if (!y0) gt_die("output shape");
    if (gc->erf_check) {
        memset(A->data, 0, A->nbytes); /* Y = GELU(bias) exactly in FP32 */
        int64_t cd[1] = {gc->N};
        C = gt_rand(dt, 1, cd, 1.0);
        for (int64_t i = 0; i < gc->N; i++)
            dt_set_f64(dt, C->data, (size_t)i, -3.0 - 1.2 * rnd());
    } else if (gc->ckind == 1) {
        int64_t cd[1] = {gc->N};
        C = gt_rand(dt, 1, cd, 2.0);
    } else if (gc->ckind == 2) {
        C = gt_rand(dt, y0->rank, y0->dims, 2.0);
    }
    if (gc->res) R = gt_rand(dt, y0->rank, y0->dims, 2.0);
    tensor_free(y0);
    int n_in = R ? 4 : C ? 3 : 2;
    ir_node *n = gt_node(OP_FusedGemm, n_in);
    set_attrs(n, gc, false);
    ir_node *m = gt_node(OP_FusedGemm, n_in);
    set_attrs(m, gc, true);
    const kiln_tensor *in[4] = {A, B, C, R};
    kiln_tensor *aA = NULL, *aB = NULL, *aC = NULL, *aR = NULL, *want = NULL, *mag = NULL;
    bool refs = !(gc->big && g_dry); /* the BERT layer: ~6 s per reference */
    if (refs) {
        aA = gt_abs_f32(A), aB = gt_abs_f32(B), aC = gt_abs_f32(C), aR = gt_abs_f32(R);
        const kiln_tensor *ain[4] = {aA, aB, aC, aR};
        mag = gt_ref(m, ain);
        want = gt_ref(n, in);
    }
    char desc[300];
    snprintf(desc, sizeof desc, "%s %s", what, gt_dtype_name(dt));
    ir_type types[4];
    const ir_type *tin[4] = {0};
    types_of(n, in, types, tin);
    if (refs && (!want || !mag)) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
        goto out;
    }
    const kiln_tactic *ts[8];
    int nt = gt_tactics(cuda_tactics_gemm_graph, OP_FusedGemm, ts, 8);
    double lip = gt_act_lip(gc->act);
    int in_graph = 0;
    for (int k = 0; k < nt; k++) {
        bool first = strstr(ts[k]->name, "_graph_h0") != NULL;
        /* h0 and h1, unless all are asked for or a must-case has not yet run */
        if (!gc->all_cfg && !g_full && !first && !strstr(ts[k]->name, "_graph_h1") &&
            !(gc->must && in_graph == 0 && !g_dry))
            continue;
        if (!ts[k]->supports(n, tin)) {
            fprintf(stderr, "FAIL %s %s: supports() declines a case it must take\n",
                    ts[k]->name, desc);
            g_fail++;
            continue;
        }
        if (g_dry) { /* cuDNN checks the graph's descriptors host-only */
            char err[256] = "";
            if (!cuda_gemm_graph_probe(ts[k], n, tin, err, sizeof err)) {
                g_probed++;
                g_pass++;
            } else if (strstr(err, "operation graph")) {
                g_probe_unavailable++; /* this cuDNN wants a handle for that */
                g_pass++;
            } else {
                fprintf(stderr, "FAIL %s %s: cuDNN refuses the graph: %s\n", ts[k]->name, desc,
                        err);
                g_fail++;
            }
            continue;
        }
        bool declined;
        int fb = cuda_gemm_graph_fallbacks();
        kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
        bool graph_ran = got && cuda_gemm_graph_fallbacks() == fb;
        if (!got) {
            if (declined) {
                g_declined++;
                continue;
            }
            fprintf(stderr, "FAIL %s %s: did not run\n", ts[k]->name, desc);
            g_fail++;
            continue;
        }
        if (graph_ran) g_graph_runs++, in_graph++;
        bool ok = gc->erf_check
                      ? compare_tight(ts[k]->name, desc, got, want,
                                      dt == KILN_DTYPE_FLOAT16 ? 1e-2 : 2e-2)
                      : gt_compare(ts[k]->name, desc, got, want, mag, 0, gt_rtol(dt) * lip);
        if (ok) g_pass++;
        else g_fail++;
        tensor_free(got);
    }
    if (gc->must && !g_dry && in_graph == 0) {
        fprintf(stderr, "FAIL %s: no configuration ran it in cuDNN's graph (refused, or no "
                "plan at run time)\n", desc);
        g_fail++;
    }
out:
    tensor_free(want);
    tensor_free(mag);
    tensor_free(A);
    tensor_free(B);
    tensor_free(C);
    tensor_free(R);
    tensor_free(aA);
    tensor_free(aB);
    tensor_free(aC);
    tensor_free(aR);
}

/* A 2-D case (batch 1 < nb: A [nb, M, K] with B shared, folded into M). */
static gg_case case_2d(int64_t nb, int64_t M, int64_t K, int64_t N, int ta, int tb, int ckind,
                       bool res, const char *act) {
    gg_case gc;
    memset(&gc, 0, sizeof gc);
    gc.M = M, gc.K = K, gc.N = N;
    gc.ta = ta, gc.tb = tb;
    gc.ckind = ckind, gc.res = res, gc.act = act;
    if (nb > 1) {
        gc.ra = 3;
        gc.ad[0] = nb, gc.ad[1] = M, gc.ad[2] = K;
        gc.ta = 0;
    } else {
        gc.ra = 2;
        gc.ad[0] = ta ? K : M, gc.ad[1] = ta ? M : K;
    }
    gc.rb = 2;
    gc.bd[0] = tb ? N : K, gc.bd[1] = tb ? K : N;
    return gc;
}

static void describe(const gg_case *gc, int64_t nb, char *d, size_t n) {
    snprintf(d, n, "nb=%lld M=%lld K=%lld N=%lld ta=%d tb=%d C=%s%s act='%s'", (long long)nb,
             (long long)gc->M, (long long)gc->K, (long long)gc->N, gc->ta, gc->tb,
             gc->ckind == 0 ? "none" : gc->ckind == 1 ? "row" : "full", gc->res ? " +R" : "",
             gc->act);
}

static void run_2d(kiln_dtype dt, int64_t nb, int64_t M, int64_t K, int64_t N, int ta, int tb,
                   int ckind, bool res, const char *act, bool must, bool all_cfg) {
    gg_case gc = case_2d(nb, M, K, N, ta, tb, ckind, res, act);
    gc.must = must;
    gc.all_cfg = all_cfg;
    char d[200];
    describe(&gc, nb, d, sizeof d);
    run_case(&gc, dt, d);
}

/* Activations the tactic takes in every case; Relu and GeluTanh only with
** a residual or a full C. */
static const char *const k_acts[] = {"Gelu", "SiLU", "Sigmoid", "Tanh"};

static int64_t pick(const int64_t *v, int n) { return v[(int)(rnd() * n) % n]; }

static void test_random(kiln_dtype dt, int count) {
    static const int64_t ms[] = {1, 3, 17, 64, 127, 200, 333};
    static const int64_t ks[] = {8, 16, 24, 64, 96, 7, 13, 40};
    static const int64_t ns[] = {8, 16, 48, 128, 9, 33, 72};
    for (int i = 0; i < count; i++) {
        if (!g_dry && !g_full && g_spent > 240.0) {
            g_budget_skipped++;
            continue;
        }
        double t0 = now_s();
        int64_t M = pick(ms, KILN_ARRAY_LEN(ms)), K = pick(ks, KILN_ARRAY_LEN(ks));
        int64_t N = pick(ns, KILN_ARRAY_LEN(ns));
        int ta = rnd() < 0.3, tb = rnd() < 0.4, ckind = (int)(rnd() * 3) % 3;
        bool res = rnd() < 0.35;
        const char *act = k_acts[i % (int)KILN_ARRAY_LEN(k_acts)];
        if ((res || ckind == 2) && rnd() < 0.3) act = rnd() < 0.5 ? "Relu" : "GeluTanh";
        int64_t nb = rnd() < 0.25 ? 1 + (int64_t)(rnd() * 4) : 1;
        run_2d(dt, nb, M, K, N, ta, tb, ckind, res, act, false, false);
        g_spent += now_s() - t0;
    }
}

/* A and B with the same batch dims: cuDNN's own batch. */
static void test_batched(kiln_dtype dt) {
    static const struct {
        int64_t nb, M, K, N;
        int ta, tb, ckind;
        bool res;
        const char *act;
    } cs[] = {
        {3, 16, 32, 24, 0, 0, 1, false, "Gelu"},
        {2, 7, 16, 9, 1, 0, 0, true, "Tanh"},
        {4, 33, 24, 40, 0, 1, 2, false, "Relu"},
        {2, 1, 8, 16, 1, 1, 1, true, "SiLU"},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(cs); i++) {
        gg_case gc;
        memset(&gc, 0, sizeof gc);
        gc.M = cs[i].M, gc.K = cs[i].K, gc.N = cs[i].N;
        gc.ta = cs[i].ta, gc.tb = cs[i].tb, gc.ckind = cs[i].ckind, gc.res = cs[i].res;
        gc.act = cs[i].act;
        gc.ra = gc.rb = 3;
        gc.ad[0] = gc.bd[0] = cs[i].nb;
        gc.ad[1] = gc.ta ? gc.K : gc.M, gc.ad[2] = gc.ta ? gc.M : gc.K;
        gc.bd[1] = gc.tb ? gc.N : gc.K, gc.bd[2] = gc.tb ? gc.K : gc.N;
        char d[200];
        describe(&gc, cs[i].nb, d, sizeof d);
        char d2[240];
        snprintf(d2, sizeof d2, "batched %s", d);
        run_case(&gc, dt, d2);
    }
}

/* What the tactic must decline (supports() false). */
static void test_declines(void) {
    struct {
        const char *act;
        float alpha, beta;
        int ckind;
        bool res;
        int rb; /* 3: B batched [3, K, N] against A [1, M, K] (A broadcast) */
        kiln_dtype dt;
    } cs[] = {
        {"Gelu", 2.0f, 1.0f, 1, false, 2, KILN_DTYPE_FLOAT16},   /* alpha */
        {"Gelu", 1.0f, 0.5f, 1, false, 2, KILN_DTYPE_FLOAT16},   /* beta with C */
        {"", 1.0f, 1.0f, 1, false, 2, KILN_DTYPE_FLOAT16},       /* nothing to fuse */
        {"Relu", 1.0f, 1.0f, 1, false, 2, KILN_DTYPE_FLOAT16},   /* cuBLASLt's RELU_BIAS */
        {"GeluTanh", 1.0f, 1.0f, 0, false, 2, KILN_DTYPE_FLOAT16},
        {"Clip", 1.0f, 1.0f, 1, true, 2, KILN_DTYPE_FLOAT16},
        {"LeakyRelu", 1.0f, 1.0f, 1, false, 2, KILN_DTYPE_BFLOAT16},
        {"HardSwish", 1.0f, 1.0f, 0, true, 2, KILN_DTYPE_FLOAT16},
        {"HardSigmoid", 1.0f, 1.0f, 1, false, 2, KILN_DTYPE_FLOAT16},
        {"Gelu", 1.0f, 1.0f, 1, false, 3, KILN_DTYPE_FLOAT16},   /* broadcast batch */
        {"Gelu", 1.0f, 1.0f, 1, false, 2, KILN_DTYPE_FLOAT32},   /* FP32: cuBLASLt's */
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(cs); i++) {
        int64_t M = 5, K = 16, N = 8;
        ir_type t[4];
        memset(t, 0, sizeof t);
        const ir_type *tin[4] = {&t[0], &t[1], NULL, NULL};
        for (int j = 0; j < 4; j++) t[j].dtype = cs[i].dt;
        if (cs[i].rb == 3) {
            t[0].rank = 3, t[0].dims[0] = 1, t[0].dims[1] = M, t[0].dims[2] = K;
            t[1].rank = 3, t[1].dims[0] = 3, t[1].dims[1] = K, t[1].dims[2] = N;
        } else {
            t[0].rank = 2, t[0].dims[0] = M, t[0].dims[1] = K;
            t[1].rank = 2, t[1].dims[0] = K, t[1].dims[1] = N;
        }
        t[2].rank = 1, t[2].dims[0] = N;
        t[3].rank = 2, t[3].dims[0] = M, t[3].dims[1] = N;
        int n_in = cs[i].res ? 4 : cs[i].ckind ? 3 : 2;
        if (cs[i].ckind) tin[2] = &t[2];
        if (cs[i].res) tin[3] = &t[3];
        ir_node *n = gt_node(OP_FusedGemm, n_in);
        gt_set_act(n, cs[i].act);
        if (cs[i].alpha != 1.0f) ir_edit_set_float(n, "alpha", cs[i].alpha);
        if (cs[i].beta != 1.0f) ir_edit_set_float(n, "beta", cs[i].beta);
        for (const kiln_tactic *const *tp = cuda_tactics_gemm_graph; *tp; tp++) {
            if ((*tp)->supports(n, tin)) {
                fprintf(stderr, "FAIL %s: takes declines case %zu (act '%s')\n", (*tp)->name, i,
                        cs[i].act);
                g_fail++;
            } else {
                g_pass++;
            }
        }
    }
}

static void test_fixed(kiln_dtype dt) {
    bool f16 = dt == KILN_DTYPE_FLOAT16;
    /* BERT-base FFN-in, batch 128 x seq 128 folded into M: the reason for
    ** the tactic; config 0 must run it in the graph (FP16) */
    gg_case bert = case_2d(128, 128, 768, 3072, 0, 0, 1, false, "Gelu");
    bert.must = f16;
    bert.all_cfg = f16;
    bert.big = true;
    run_case(&bert, dt, "BERT FFN-in nb=128 M=128 K=768 N=3072 C=row act='Gelu'");
    run_2d(dt, 1, 256, 64, 128, 0, 0, 1, false, "Gelu", f16, false); /* small, aligned */
    run_2d(dt, 1, 128, 768, 3072, 0, 1, 1, false, "Gelu", false, false); /* W transposed */
    run_2d(dt, 1, 1, 64, 64, 0, 0, 1, false, "Gelu", false, false);      /* M = 1 */
    run_2d(dt, 1, 129, 72, 40, 0, 0, 1, true, "Gelu", false, false);     /* odd M, R */
    run_2d(dt, 1, 64, 32, 48, 0, 0, 2, true, "Relu", false, false);      /* full C + R */
    run_2d(dt, 1, 31, 13, 9, 1, 1, 1, false, "SiLU", false, false);      /* all odd */
    run_2d(dt, 1, 50, 40, 16, 0, 0, 0, true, "GeluTanh", false, false);  /* no C, R */
    /* erf, not tanh: pre-activations in [-4.2, -3] */
    gg_case gc = case_2d(1, 64, 16, 64, 0, 0, 1, false, "Gelu");
    gc.erf_check = true;
    gc.must = f16;
    run_case(&gc, dt, "erf GELU check M=64 K=16 N=64");
}

int main(int argc, char **argv) {
    const char *full = getenv("KILN_GPU_TEST_FULL");
    g_full = full && full[0] == '1';
    setenv("KILN_GEMM_GRAPH", "1", 0); /* the tactics are opt-in until this passes on a GPU */
    if (!gt_init(argc, argv)) return 0;
    test_declines();
    test_fixed(KILN_DTYPE_FLOAT16);
    test_fixed(KILN_DTYPE_BFLOAT16);
    test_batched(KILN_DTYPE_FLOAT16);
    test_batched(KILN_DTYPE_BFLOAT16);
    test_random(KILN_DTYPE_FLOAT16, 24);
    test_random(KILN_DTYPE_BFLOAT16, 16);
    if (g_dry)
        fprintf(stderr, "graph GEMM: %d cuDNN graphs built host-only%s\n", g_probed,
                g_probe_unavailable ? " (this cuDNN needs a device for some)" : "");
    else
        fprintf(stderr, "graph GEMM: %d tactic/case pairs ran in cuDNN's graph, %d fell back "
                "to cuBLASLt%s\n", g_graph_runs, cuda_gemm_graph_fallbacks(),
                g_budget_skipped ? " (random cases past the time budget skipped)" : "");
    if (!g_dry && g_graph_runs == 0) {
        fprintf(stderr, "FAIL no case ran in cuDNN's graph\n");
        g_fail++;
    }
    return gt_finish();
}
