/* test_cuda_gemm_sm90.c: the SM90 CUTLASS FusedGemm tactics
** (cuda_gemm_sm90.c, kernels/gemm_sm90*.cu) against the reference kernel:
** every configuration forced over M in {1, 7, 64, 129, 1000, 16384}, K and N
** multiples of 8 (8, 72, 768, 3072), batch dims folded into M, with and
** without a bias row, a C of the output's shape (alpha, beta), the residual
** R, every activation (exact erf GELU included); FP16 and BF16, the
** tolerance of test_cuda_gemm. Each configuration holds only some
** (activation, C) instantiations (kernels/gemm_sm90_cfg.h): a tactic must
** run every case its configuration is compiled for and decline the others,
** and every case must be run by at least one tactic. Each run must really
** launch the kernel (the tactic's fallback counter must not move). The GELU
** tail: every instantiation that computes GELU, on pre-activations swept
** over [-14, 6] (an exact GEMM: A's first column times a row of ones),
** within 0.6 ulp of the true GELU, tiny and subnormal outputs included
** (the bound of kernels/gemm_sm90_gelu.h; CUDA's erff form fails it).
** Host checks first: what
** supports() takes and declines (odd K or N, transposes, FP32, broadcast C,
** a scaled bias row, C with R, a batched B), the kernels' own problem
** check (CUTLASS can_implement) and which (configuration, dtype,
** activation, C) forms they are compiled for; they run without a GPU too
** (dry run).
** The plan cache: a second run on the same buffers with new contents
** (launched from the cached plan) must see the new data.
** On a GPU other than compute capability 9.0, or a build without the
** kernels, the device cases are skipped with the reason printed (counted as
** skipped, not passed) and every tactic must decline.
** argv[1] optionally filters tactics by name. */
#include "gpu_test.h"
#include "../../src/backends/cuda/kernels/gemm_kernels.h"
#include "../../src/backends/cuda/kernels/gemm_sm90_cfg.h"

typedef struct sm90_case {
    int ra;
    int64_t ad[4];       /* A's dims; B is [K, N] */
    int64_t n;
    int c;               /* 0 none, 1 bias row [N], 2 C of the output's shape */
    bool res;            /* R */
    float alpha, beta;
    const char *act;
} sm90_case;

static int g_skip_dev; /* device cases skipped (no SM90 GPU or no kernels) */
static bool g_sm90;    /* an SM90 GPU and the kernels: the device cases run */

/* The tactics' configurations, by name. */
static const struct {
    const char *name;
    int cfg;
} k_cfgs[] = {
    {"cuda_fused_gemm_sm90_128x256_coop_c2x1", KC_SM90_128x256_COOP_C2x1},
    {"cuda_fused_gemm_sm90_128x128_pp_c1x1", KC_SM90_128x128_PP_C1x1},
    {"cuda_fused_gemm_sm90_256x128_coop_c1x2", KC_SM90_256x128_COOP_C1x2},
    {"cuda_fused_gemm_sm90_128x128_pp_c1x1_e64", KC_SM90_128x128_PP_C1x1_E64},
    {"cuda_fused_gemm_sm90_64x256_pp_c1x1", KC_SM90_64x256_PP_C1x1},
    {"cuda_fused_gemm_sm90_128x128_pp_c1x2", KC_SM90_128x128_PP_C1x2},
    {"cuda_fused_gemm_sm90_256x128_coop_c2x1", KC_SM90_256x128_COOP_C2x1},
    {"cuda_fused_gemm_sm90_256x128_coop_c1x2_e64", KC_SM90_256x128_COOP_C1x2_E64},
};

static int tactic_cfg(const kiln_tactic *t) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_cfgs); i++)
        if (!strcmp(t->name, k_cfgs[i].name)) return k_cfgs[i].cfg;
    fprintf(stderr, "FAIL %s: a tactic this test does not know\n", t->name);
    g_fail++;
    return -1;
}

/* Whether configuration cfg is compiled for the form (gemm_sm90_cfg.h,
** written out again here): act a KC_ACT_*, c a C or R. */
static bool cfg_offers(int cfg, bool bf16, int act, bool c) {
    if (cfg < 0) return false;
    if (cfg >= KC_SM90_FIRST_FFN) return !bf16 && act == KC_ACT_GELU && !c;
    if (act == KC_ACT_NONE || act == KC_ACT_RELU || (act == KC_ACT_GELU && !c)) return true;
    return cfg == KC_SM90_128x128_PP_C1x1; /* the run-time instantiation */
}

static int act_kind(const char *act) {
    return !act[0] ? KC_ACT_NONE : !strcmp(act, "Relu") ? KC_ACT_RELU
                                 : !strcmp(act, "Gelu") ? KC_ACT_GELU : KC_ACT_SIGMOID;
}

static void set_attrs(ir_node *n, const sm90_case *sc, bool abs_mode) {
    float a = abs_mode ? fabsf(sc->alpha) : sc->alpha, b = abs_mode ? fabsf(sc->beta) : sc->beta;
    if (a != 1.0f) ir_edit_set_float(n, "alpha", a);
    if (b != 1.0f) ir_edit_set_float(n, "beta", b);
    if (!abs_mode) gt_set_act(n, sc->act);
}

static void run_case(const sm90_case *sc, kiln_dtype dt, bool device) {
    int64_t K = sc->ad[sc->ra - 1], N = sc->n;
    int64_t bd[2] = {K, N}, yd[4];
    memcpy(yd, sc->ad, sizeof yd);
    yd[sc->ra - 1] = N;
    kiln_tensor *A = gt_rand(dt, sc->ra, sc->ad, 2.0), *B = gt_rand(dt, 2, bd, 2.0);
    kiln_tensor *C = NULL, *R = NULL, *want = NULL, *mag = NULL;
    const kiln_tactic *ts[16];
    int nt = gt_tactics(cuda_tactics_gemm_sm90, OP_FusedGemm, ts, 16);
    if (sc->c == 1) C = gt_rand(dt, 1, &N, 2.0);
    if (sc->c == 2) C = gt_rand(dt, sc->ra, yd, 2.0);
    if (sc->res) R = gt_rand(dt, sc->ra, yd, 2.0);
    int n_in = R ? 4 : C ? 3 : 2;
    ir_node *n = gt_node(OP_FusedGemm, n_in), *m = gt_node(OP_FusedGemm, n_in);
    set_attrs(n, sc, false);
    set_attrs(m, sc, true);
    const kiln_tensor *in[4] = {A, B, C, R};
    kiln_tensor *aA = gt_abs_f32(A), *aB = gt_abs_f32(B), *aC = gt_abs_f32(C), *aR = gt_abs_f32(R);
    const kiln_tensor *ain[4] = {aA, aB, aC, aR};
    char desc[200];
    int64_t M = tensor_numel(A) / K;
    snprintf(desc, sizeof desc, "%s M=%lld K=%lld N=%lld (rank %d) C=%d%s a=%g b=%g act='%s'",
             gt_dtype_name(dt), (long long)M, (long long)K, (long long)N, sc->ra, sc->c,
             sc->res ? " +R" : "", sc->alpha, sc->beta, sc->act);
    /* the host check of the device-free half of supports() */
    ir_type types[4];
    const ir_type *tin[4] = {0};
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (!cuda_gemm_sm90_takes(n, tin)) {
        fprintf(stderr, "FAIL %s: the SM90 GEMM does not take it\n", desc);
        g_fail++;
        goto done;
    }
    if (!device) {
        for (int k = 0; k < nt; k++)
            if (tactic_cfg(ts[k]) >= 0 && ts[k]->supports(n, tin)) {
                fprintf(stderr, "FAIL %s %s: offered without an SM90 GPU\n", ts[k]->name, desc);
                g_fail++;
            }
        g_skip_dev += nt;
        goto done;
    }
    want = gt_ref(n, in);
    mag = want ? gt_ref(m, ain) : NULL;
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else {
        double tol = gt_rtol(dt) * gt_act_lip(sc->act);
        int ran = 0;
        for (int k = 0; k < nt; k++) {
            bool declined;
            bool offered = cfg_offers(tactic_cfg(ts[k]), dt == KILN_DTYPE_BFLOAT16,
                                      act_kind(sc->act), sc->c == 2 || sc->res);
            if (!offered) { /* not compiled for this form: must decline */
                if (ts[k]->supports(n, tin)) {
                    fprintf(stderr, "FAIL %s %s: offered, not compiled for it\n", ts[k]->name,
                            desc);
                    g_fail++;
                } else {
                    g_pass++;
                }
                continue;
            }
            ran++;
            int runs = cuda_gemm_sm90_runs(), fb = cuda_gemm_sm90_fallbacks();
            kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
            if (!got) {
                fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                        declined ? "declined" : "did not run");
                g_fail++;
                continue;
            }
            if (!g_dry && (cuda_gemm_sm90_runs() != runs + 1 ||
                           cuda_gemm_sm90_fallbacks() != fb)) {
                fprintf(stderr, "FAIL %s %s: went through cuBLASLt, not the kernel\n",
                        ts[k]->name, desc);
                g_fail++;
            } else if (gt_compare(ts[k]->name, desc, got, want, mag, 0, tol)) {
                g_pass++;
            } else {
                g_fail++;
            }
            tensor_free(got);
        }
        if (!ran && nt == (int)KILN_ARRAY_LEN(k_cfgs)) {
            fprintf(stderr, "FAIL %s: no SM90 tactic runs it\n", desc);
            g_fail++;
        }
    }
done:
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

static void case_2d(kiln_dtype dt, bool device, int64_t M, int64_t K, int64_t N, int c, bool res,
                    float alpha, float beta, const char *act) {
    sm90_case sc = {2, {M, K}, N, c, res, alpha, beta, act};
    run_case(&sc, dt, device);
}

/* Shapes x epilogues. The epilogue variant rotates with the shape so every
** shape meets several and every variant several shapes; the reference runs
** on the host, so the largest products stay near 0.3 GFLOP. */
static void test_shapes(kiln_dtype dt, bool device) {
    static const struct {
        int64_t m, k, n;
    } sh[] = {
        {1, 8, 8},       {7, 72, 72},      {64, 768, 8},     {129, 8, 3072},
        {1000, 72, 768}, {16384, 72, 72},  {129, 768, 3072}, {7, 3072, 768},
        {64, 72, 3072},  {1000, 768, 72},  {16384, 8, 72},   {1, 3072, 768},
    };
    static const struct {
        int c;
        bool res;
        float alpha, beta;
        const char *act;
    } ep[] = {
        {0, false, 1.0f, 1.0f, ""},      /* plain product */
        {1, false, 1.0f, 1.0f, "Gelu"},  /* BERT's FFN-in: bias + erf GELU */
        {1, true, 1.0f, 1.0f, ""},       /* FFN-out: bias + residual */
        {0, false, 1.0f, 1.0f, "Relu"},
        {2, false, 2.0f, 0.5f, "Gelu"},  /* C of the output's shape, alpha, beta */
        {0, true, 0.75f, 1.0f, "Relu"},  /* residual alone */
        {1, false, 1.0f, 1.0f, "Relu"},
        {1, true, 1.0f, 1.0f, "Gelu"},
        {2, false, 1.0f, -1.0f, ""},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(sh); i++)
        for (size_t j = 0; j < 3; j++) {
            size_t e = (i * 3 + j * 4) % KILN_ARRAY_LEN(ep);
            case_2d(dt, device, sh[i].m, sh[i].k, sh[i].n, ep[e].c, ep[e].res, ep[e].alpha,
                    ep[e].beta, ep[e].act);
        }
    /* BERT's FFN-in and FFN-out at 1024 tokens: many tiles, the real K */
    case_2d(dt, device, 1024, 768, 3072, 1, false, 1.0f, 1.0f, "Gelu");
    case_2d(dt, device, 1024, 3072, 768, 1, true, 1.0f, 1.0f, "");
    /* every activation (one kernel serves them all), with a bias and R */
    for (size_t a = 0; a < KILN_ARRAY_LEN(gt_acts); a++) {
        case_2d(dt, device, 33, 40, 24, 1, a % 2 == 0, 1.0f, 1.0f, gt_acts[a]);
        case_2d(dt, device, 130, 16, 136, 2, false, 1.5f, 0.25f, gt_acts[a]);
    }
    /* batch dims fold into M (BERT's [batch, seq, hidden] form) */
    sm90_case b1 = {3, {4, 17, 24}, 40, 1, false, 1.0f, 1.0f, "Gelu"};
    sm90_case b2 = {3, {2, 65, 72}, 768, 1, true, 1.0f, 1.0f, ""};
    sm90_case b3 = {4, {2, 3, 5, 8}, 16, 2, false, 1.0f, 2.0f, "Relu"};
    run_case(&b1, dt, device);
    run_case(&b2, dt, device);
    run_case(&b3, dt, device);
}

/* What supports() must decline whatever the device (and take, for the
** accepted forms); checked through the device-free half. */
static void check_takes(const char *what, bool want, kiln_dtype dt, int ra, const int64_t *ad,
                        int rb, const int64_t *bdims, int rc, const int64_t *cd, bool res,
                        int ta, int tb, float beta) {
    ir_type t[4];
    memset(t, 0, sizeof t);
    const ir_type *tin[4] = {&t[0], &t[1], NULL, NULL};
    t[0].dtype = t[1].dtype = t[2].dtype = t[3].dtype = dt;
    t[0].rank = ra;
    memcpy(t[0].dims, ad, sizeof(int64_t) * (size_t)ra);
    t[1].rank = rb;
    memcpy(t[1].dims, bdims, sizeof(int64_t) * (size_t)rb);
    if (rc > 0) {
        t[2].rank = rc;
        memcpy(t[2].dims, cd, sizeof(int64_t) * (size_t)rc);
        tin[2] = &t[2];
    }
    if (res) { /* R: the output's shape */
        t[3].rank = ra;
        memcpy(t[3].dims, ad, sizeof(int64_t) * (size_t)ra);
        t[3].dims[ra - 1] = ta ? ad[ra - 2] : bdims[rb - (tb ? 2 : 1)];
        if (ta) t[3].dims[ra - 2] = ad[ra - 1];
        tin[3] = &t[3];
    }
    int n_in = res ? 4 : rc > 0 ? 3 : 2;
    ir_node *n = gt_node(OP_FusedGemm, n_in);
    if (ta) ir_edit_set_int(n, "transA", 1);
    if (tb) ir_edit_set_int(n, "transB", 1);
    if (beta != 1.0f) ir_edit_set_float(n, "beta", beta);
    bool got = cuda_gemm_sm90_takes(n, tin);
    if (got == want) {
        g_pass++;
    } else {
        fprintf(stderr, "FAIL supports: %s: %s, want %s\n", what, got ? "taken" : "declined",
                want ? "taken" : "declined");
        g_fail++;
    }
    /* on an SM90 GPU the tactics' own supports() must say the same, for
    ** the configurations compiled for the form (no activation; C: R, or a
    ** C of the output's shape) */
    const kiln_tactic *ts[16];
    int nt = g_sm90 ? gt_tactics(cuda_tactics_gemm_sm90, OP_FusedGemm, ts, 16) : 0;
    bool has_c = res || (rc == ra && rc >= 2 && cd[0] != 1);
    for (int k = 0; k < nt; k++) {
        bool w = want && cfg_offers(tactic_cfg(ts[k]), dt == KILN_DTYPE_BFLOAT16, KC_ACT_NONE,
                                    has_c);
        if (ts[k]->supports(n, tin) == w) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s supports: %s: want %s\n", ts[k]->name, what,
                    w ? "taken" : "declined");
            g_fail++;
        }
    }
}

static void test_supports(void) {
    const kiln_dtype H = KILN_DTYPE_FLOAT16;
    int64_t a64[2] = {64, 72}, b72[2] = {72, 768}, bias[1] = {768}, full[2] = {64, 768};
    check_takes("f16 bias", true, H, 2, a64, 2, b72, 1, bias, false, 0, 0, 1.0f);
    check_takes("bf16 bias + R", true, KILN_DTYPE_BFLOAT16, 2, a64, 2, b72, 1, bias, true, 0, 0,
                1.0f);
    check_takes("full C, beta 0.5", true, H, 2, a64, 2, b72, 2, full, false, 0, 0, 0.5f);
    check_takes("row C [1, N]", true, H, 2, a64, 2, b72, 2, (int64_t[]){1, 768}, false, 0, 0,
                1.0f);
    check_takes("symbolic M", true, H, 3, (int64_t[]){-1, 128, 72}, 2, b72, 1, bias, true, 0, 0,
                1.0f);
    check_takes("B [1, K, N]", true, H, 2, a64, 3, (int64_t[]){1, 72, 768}, 0, NULL, false, 0, 0,
                1.0f);
    check_takes("f32", false, KILN_DTYPE_FLOAT32, 2, a64, 2, b72, 1, bias, false, 0, 0, 1.0f);
    check_takes("odd N", false, H, 2, a64, 2, (int64_t[]){72, 13}, 0, NULL, false, 0, 0, 1.0f);
    check_takes("N 12", false, H, 2, a64, 2, (int64_t[]){72, 12}, 0, NULL, false, 0, 0, 1.0f);
    check_takes("odd K", false, H, 2, (int64_t[]){64, 9}, 2, (int64_t[]){9, 768}, 0, NULL, false,
                0, 0, 1.0f);
    check_takes("K 4", false, H, 2, (int64_t[]){64, 4}, 2, (int64_t[]){4, 768}, 0, NULL, false,
                0, 0, 1.0f);
    check_takes("K 0", false, H, 2, (int64_t[]){64, 0}, 2, (int64_t[]){0, 768}, 0, NULL, false,
                0, 0, 1.0f);
    check_takes("N 4", false, H, 2, a64, 2, (int64_t[]){72, 4}, 0, NULL, false, 0, 0, 1.0f);
    check_takes("symbolic N", false, H, 2, a64, 2, (int64_t[]){72, -1}, 0, NULL, false, 0, 0,
                1.0f);
    check_takes("transA", false, H, 2, (int64_t[]){72, 64}, 2, b72, 1, bias, false, 1, 0, 1.0f);
    check_takes("transB", false, H, 2, a64, 2, (int64_t[]){768, 72}, 1, bias, false, 0, 1, 1.0f);
    check_takes("column C", false, H, 2, a64, 2, b72, 2, (int64_t[]){64, 1}, false, 0, 0, 1.0f);
    check_takes("scalar C", false, H, 2, a64, 2, b72, 1, (int64_t[]){1}, false, 0, 0, 1.0f);
    check_takes("bias, beta 2", false, H, 2, a64, 2, b72, 1, bias, false, 0, 0, 2.0f);
    check_takes("full C with R", false, H, 2, a64, 2, b72, 2, full, true, 0, 0, 1.0f);
    check_takes("batched B", false, H, 3, (int64_t[]){2, 64, 72}, 3, (int64_t[]){2, 72, 768}, 0,
                NULL, false, 0, 0, 1.0f);
}

/* t->run then a stream sync; nonzero on failure (message in c->err). */
static int t_run_sync(const kiln_tactic *t, ref_ctx *c) {
    if (t->run(c)) return -1;
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)g_stream);
    if (e != cudaSuccess) gt_die(cudaGetErrorString(e));
    return 0;
}

/* Runs tactic t twice on the same device buffers, A's contents replaced in
** between: the second run launches from the plan cached by the first (same
** problem and pointers) and must compute with the new data. */
static void test_plan_reuse(kiln_dtype dt) {
    const int64_t M = 200, K = 72, N = 136;
    int64_t ad[2] = {M, K}, bd[2] = {K, N}, yd[2] = {M, N};
    kiln_tensor *h[3] = {gt_rand(dt, 2, ad, 2.0), gt_rand(dt, 2, bd, 2.0), gt_rand(dt, 1, &N, 2.0)};
    kiln_tensor *A2 = gt_rand(dt, 2, ad, 2.0), *y = NULL;
    if (tensor_new(dt, 2, yd, &y)) gt_die("tensor_new");
    ir_node *n = gt_node(OP_FusedGemm, 3), *m = gt_node(OP_FusedGemm, 3);
    gt_set_act(n, "Gelu");
    const kiln_tensor *in2[3] = {A2, h[1], h[2]};
    kiln_tensor *aA = gt_abs_f32(A2), *aB = gt_abs_f32(h[1]), *aC = gt_abs_f32(h[2]);
    const kiln_tensor *ain[3] = {aA, aB, aC};
    kiln_tensor *want = gt_ref(n, in2), *mag = gt_ref(m, ain);
    kiln_tensor d[3], dy;
    const kiln_tensor *din[3];
    for (int i = 0; i < 3; i++) {
        d[i] = *h[i];
        d[i].flags = 0, d[i].name = NULL, d[i].data = NULL;
        if (cudaMalloc(&d[i].data, h[i]->nbytes) ||
            cudaMemcpy(d[i].data, h[i]->data, h[i]->nbytes, cudaMemcpyHostToDevice))
            gt_die("upload");
        din[i] = &d[i];
    }
    dy = *y;
    dy.flags = 0, dy.name = NULL, dy.data = NULL;
    if (cudaMalloc(&dy.data, y->nbytes)) gt_die("output");
    kiln_tensor *outs[1] = {&dy};
    const kiln_tactic *ts[16];
    int nt = gt_tactics(cuda_tactics_gemm_sm90, OP_FusedGemm, ts, 16);
    for (int k = 0; k < nt && want && mag; k++) {
        if (!cfg_offers(tactic_cfg(ts[k]), dt == KILN_DTYPE_BFLOAT16, KC_ACT_GELU, false))
            continue;
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        c.opset = (int)g_model->opset;
        c.n_in = 3;
        c.in = din;
        c.n_out = 1;
        c.out = outs;
        c.stream = g_stream;
        c.exec = g_exec;
        int runs = cuda_gemm_sm90_runs();
        int rc1 = t_run_sync(ts[k], &c);
        /* new contents, same buffer */
        if (cudaMemcpy(d[0].data, A2->data, A2->nbytes, cudaMemcpyHostToDevice))
            gt_die("upload");
        int rc2 = rc1 ? rc1 : t_run_sync(ts[k], &c);
        if (rc1 || rc2) {
            fprintf(stderr, "FAIL %s plan reuse: run failed: %s\n", ts[k]->name, c.err);
            g_fail++;
        } else if (cuda_gemm_sm90_runs() != runs + 2) {
            fprintf(stderr, "FAIL %s plan reuse: went through cuBLASLt\n", ts[k]->name);
            g_fail++;
        } else if (cudaMemcpy(y->data, dy.data, y->nbytes, cudaMemcpyDeviceToHost)) {
            gt_die("download");
        } else if (gt_compare(ts[k]->name, "plan reuse", y, want, mag, 0,
                              gt_rtol(dt) * gt_act_lip("Gelu"))) {
            g_pass++;
        } else {
            g_fail++;
        }
        /* A back to the first contents for the next tactic */
        if (cudaMemcpy(d[0].data, h[0]->data, h[0]->nbytes, cudaMemcpyHostToDevice))
            gt_die("upload");
    }
    for (int i = 0; i < 3; i++) {
        cudaFree(d[i].data);
        tensor_free(h[i]);
    }
    cudaFree(dy.data);
    tensor_free(A2);
    tensor_free(y);
    tensor_free(aA);
    tensor_free(aB);
    tensor_free(aC);
    tensor_free(want);
    tensor_free(mag);
}

/* The kernels' own problem check (CUTLASS's can_implement, and no
** workspace needed), host-only: the shapes the tactic takes must pass it in
** every configuration and dtype compiled for them (FP16 GELU without C:
** every configuration), and the launcher must refuse odd sizes. Then the
** forms: every (configuration, dtype, activation, C) is planned (no plan
** made) iff gemm_sm90_cfg.h says it is compiled. */
static void test_can_implement(void) {
    if (!kc_gemm_sm90_built()) return;
    static const int64_t ok[][3] = {{1, 8, 8},     {7, 72, 72},      {16384, 768, 3072},
                                    {129, 3072, 768}, {1000, 8, 3072}, {65, 40, 136}};
    static const int64_t bad[][3] = {{64, 9, 72}, {64, 72, 13}, {64, 4, 8}, {0, 8, 8}};
    for (int cfg = 0; cfg < KC_SM90_N_ALL; cfg++)
        for (int t = 0; t < 2; t++) {
            kc_sm90_gemm g;
            memset(&g, 0, sizeof g);
            g.dtype = t ? KC_BF16 : KC_F16;
            g.alpha = 1.0f;
            g.act.kind = t ? KC_ACT_NONE : KC_ACT_GELU;
            for (size_t i = 0; i < KILN_ARRAY_LEN(ok) + KILN_ARRAY_LEN(bad); i++) {
                bool want = i < KILN_ARRAY_LEN(ok) && cfg_offers(cfg, t, g.act.kind, false);
                const int64_t *p = i < KILN_ARRAY_LEN(ok) ? ok[i] : bad[i - KILN_ARRAY_LEN(ok)];
                g.m = p[0], g.k = p[1], g.n = p[2];
                cudaError_t e = kc_gemm_sm90_plan(cfg, &g, 132, NULL);
                if ((e == cudaSuccess) == want) {
                    g_pass++;
                } else {
                    fprintf(stderr, "FAIL kernel check cfg %d %s M=%lld K=%lld N=%lld: %s (%s)\n",
                            cfg, t ? "bf16" : "f16", (long long)g.m, (long long)g.k,
                            (long long)g.n, cudaGetErrorName(e), want ? "want ok" : "want refused");
                    g_fail++;
                }
            }
        }
    static const int acts[] = {KC_ACT_NONE, KC_ACT_RELU, KC_ACT_GELU, KC_ACT_SIGMOID,
                               KC_ACT_GELU_TANH, KC_ACT_CLIP};
    int dummy = 0;
    for (int cfg = 0; cfg < KC_SM90_N_ALL; cfg++)
        for (int t = 0; t < 2; t++)
            for (size_t a = 0; a < KILN_ARRAY_LEN(acts); a++)
                for (int c = 0; c < 2; c++) {
                    kc_sm90_gemm g;
                    memset(&g, 0, sizeof g);
                    g.dtype = t ? KC_BF16 : KC_F16;
                    g.m = 1024, g.k = 768, g.n = 3072;
                    g.alpha = 1.0f;
                    g.act.kind = acts[a];
                    if (c) g.c = &dummy, g.beta = 1.0f;
                    bool want = cfg_offers(cfg, t, acts[a], c);
                    cudaError_t e = kc_gemm_sm90_plan(cfg, &g, 132, NULL);
                    if ((e == cudaSuccess) == want) {
                        g_pass++;
                    } else {
                        fprintf(stderr, "FAIL forms: cfg %d %s act %d C %d: %s (%s)\n", cfg,
                                t ? "bf16" : "f16", acts[a], c, cudaGetErrorName(e),
                                want ? "want compiled" : "want not compiled");
                        g_fail++;
                    }
                }
    /* and a configuration past the list is an invalid value */
    kc_sm90_gemm g;
    memset(&g, 0, sizeof g);
    g.dtype = KC_F16, g.m = 64, g.k = 64, g.n = 64;
    if (kc_gemm_sm90_plan(KC_SM90_N_ALL, &g, 132, NULL) == cudaErrorInvalidValue) {
        g_pass++;
    } else {
        fprintf(stderr, "FAIL: configuration %d accepted\n", KC_SM90_N_ALL);
        g_fail++;
    }
}

/* The spacing of dt's numbers at |v| (FP16: subnormals from 2^-24; BF16:
** FP32's exponent range). */
static double ulp_of(kiln_dtype dt, double v) {
    int e = v == 0.0 ? -1000 : ilogb(fabs(v));
    int mant = dt == KILN_DTYPE_BFLOAT16 ? 7 : 10, lo = dt == KILN_DTYPE_BFLOAT16 ? -133 : -24;
    return ldexp(1.0, e - mant < lo ? lo : e - mant);
}

/* The GELU tail: D = GELU(A[:, 0] + bias) exactly (B's first row ones, the
** rest zeros; bias 0), the pre-activations x swept over [-14, 6] (step
** 20/4096, then rounded to the dtype), each output within 0.6 ulp of
** x/2 erfc(-x/sqrt 2) (the GELU's own error under 0.02 ulp, plus the
** store's rounding; where the true GELU is under 2^-126, BF16 only, within
** 2^-126: the GELU flushes there to 0). with_c: R = 0 rides along, so the
** run-time instantiation (128x128_pp_c1x1) is checked too. */
static void test_gelu_tail(kiln_dtype dt, bool with_c) {
    const int64_t M = 4096, K = 8, N = 16;
    int64_t ad[2] = {M, K}, bd[2] = {K, N}, yd[2] = {M, N};
    kiln_tensor *A, *B, *bias, *R = NULL, *want;
    if (tensor_new(dt, 2, ad, &A) || tensor_new(dt, 2, bd, &B) || tensor_new(dt, 1, &N, &bias) ||
        tensor_new(dt, 2, yd, &want) || (with_c && tensor_new(dt, 2, yd, &R)))
        gt_die("tensor_new");
    memset(A->data, 0, A->nbytes);
    memset(B->data, 0, B->nbytes);
    memset(bias->data, 0, bias->nbytes);
    if (R) memset(R->data, 0, R->nbytes);
    for (int64_t j = 0; j < N; j++) dt_set_f64(dt, B->data, (size_t)j, 1.0);
    for (int64_t i = 0; i < M; i++) {
        /* x = -14 + 20 i / M, then the dtype's rounding */
        double x = -14.0 + 20.0 * (double)i / (double)M;
        dt_set_f64(dt, A->data, (size_t)(i * K), x);
    }
    ir_node *n = gt_node(OP_FusedGemm, with_c ? 4 : 3);
    gt_set_act(n, "Gelu");
    const kiln_tensor *in[4] = {A, B, bias, R};
    const kiln_tactic *ts[16];
    int nt = gt_tactics(cuda_tactics_gemm_sm90, OP_FusedGemm, ts, 16);
    for (int k = 0; k < nt; k++) {
        if (!cfg_offers(tactic_cfg(ts[k]), dt == KILN_DTYPE_BFLOAT16, KC_ACT_GELU, with_c))
            continue;
        bool declined;
        int runs = cuda_gemm_sm90_runs();
        kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
        if (!got || cuda_gemm_sm90_runs() != runs + 1) {
            fprintf(stderr, "FAIL %s GELU tail: %s\n", ts[k]->name,
                    !got ? (declined ? "declined" : "did not run") : "went through cuBLASLt");
            g_fail++;
            tensor_free(got);
            continue;
        }
        double worst = 0, worst_x = 0;
        int bad = 0;
        for (int64_t i = 0; i < M; i++) {
            double x = dt_get_f64(dt, A->data, (size_t)(i * K));
            double t = 0.5 * x * erfc(-x * 0.70710678118654752440);
            for (int64_t j = 0; j < N; j++) {
                double y = dt_get_f64(dt, got->data, (size_t)(i * N + j));
                /* below 2^-126 the GELU's bound is absolute (ex2.approx.ftz
                ** flushes: the output is 0, at most 2^-126 off). That only
                ** matters for BF16, which has numbers down there; FP16's
                ** spacing at such values is 2^-24, so its ulp rule holds. */
                bool tiny = dt == KILN_DTYPE_BFLOAT16 && fabs(t) < 0x1p-126;
                double u = fabs(y - t) / (tiny ? 0x1p-126 : ulp_of(dt, t));
                if (u > worst || isnan(u)) worst = u, worst_x = x;
                if (!(u <= (tiny ? 1.0 : 0.6)) && bad++ < 3)
                    fprintf(stderr,
                            "FAIL %s %s GELU tail%s: x=%.9g got %.9g want %.9g (%.2f ulp)\n",
                            ts[k]->name, gt_dtype_name(dt), with_c ? " (with R)" : "", x, y, t, u);
            }
        }
        if (bad) {
            g_fail++;
        } else {
            g_pass++;
        }
        printf("%s %s GELU tail%s: worst %.3f ulp at x=%.6g\n", ts[k]->name, gt_dtype_name(dt),
               with_c ? " (with R)" : "", worst, worst_x);
        tensor_free(got);
    }
    tensor_free(A);
    tensor_free(B);
    tensor_free(bias);
    tensor_free(R);
    tensor_free(want);
}

int main(int argc, char **argv) {
    setenv("KILN_GEMM_SM90", "1", 1); /* on by default; the environment may say 0 */
    if (!gt_init(argc, argv)) return 0;
    int ma = 0, mi = 0;
    const char *why = NULL;
    if (g_dry) {
        why = "dry run";
    } else if (!kc_gemm_sm90_built()) {
        why = "this build has no SM90 GEMM (no CUTLASS headers or no sm_90a in the gencode list)";
    } else if (cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, 0) ||
               cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, 0)) {
        why = "cannot read the compute capability";
    } else if (ma != 9 || mi != 0) {
        why = "the GPU is not compute capability 9.0";
    } else {
        g_sm90 = true;
    }
    if (why) printf("skipping the device cases: %s (sm %d.%d)\n", why, ma, mi);
    test_supports();
    test_can_implement();
    test_shapes(KILN_DTYPE_FLOAT16, g_sm90);
    test_shapes(KILN_DTYPE_BFLOAT16, g_sm90);
    if (g_sm90) {
        test_plan_reuse(KILN_DTYPE_FLOAT16);
        test_plan_reuse(KILN_DTYPE_BFLOAT16);
        for (int c = 0; c < 2; c++) {
            test_gelu_tail(KILN_DTYPE_FLOAT16, c);
            test_gelu_tail(KILN_DTYPE_BFLOAT16, c);
        }
    }
    if (g_declined) fprintf(stderr, "(%d tactic/case pairs declined)\n", g_declined);
    gt_close();
    printf("%d passed, %d failed, %d skipped%s\n", g_pass, g_fail, g_skip_dev,
           g_skip_dev ? " (device cases: no SM90 GPU or kernels)" : "");
    return g_fail != 0;
}
