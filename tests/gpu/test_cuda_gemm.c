/* test_cuda_gemm.c: the cuBLASLt MatMul / Gemm / FusedGemm tactics against
** the reference kernels on random shapes: odd M/N/K, K = 0, empty outputs,
** transposes, batch folding and broadcasting (either operand), bias rows
** (the cuBLASLt BIAS epilogues), residual C, broadcast C, alpha/beta, every
** activation, FusedGemm's residual input R (cuBLASLt's C with the BIAS
** epilogue, or our epilogue when C takes that slot; before the activation),
** the L2-block epilogue tactics (row blocks, each product then its epilogue);
** f32 (exact FP32, 1e-4 of the magnitude), f16 and bf16.
** argv[1] optionally filters tactics by name. */
#include "gpu_test.h"

typedef struct gemm_case {
    int op;
    int ra, rb, rc; /* rc -1: no C */
    int64_t ad[6], bd[6], cd[6];
    int ta, tb;
    float alpha, beta;
    const char *act;
    bool res; /* FusedGemm's residual R, of the output's shape */
} gemm_case;

static void set_gemm_attrs(ir_node *n, const gemm_case *gc, bool abs_mode) {
    if (gc->op == OP_MatMul) return;
    if (gc->ta) ir_edit_set_int(n, "transA", 1);
    if (gc->tb) ir_edit_set_int(n, "transB", 1);
    float a = abs_mode ? fabsf(gc->alpha) : gc->alpha, b = abs_mode ? fabsf(gc->beta) : gc->beta;
    if (a != 1.0f) ir_edit_set_float(n, "alpha", a);
    if (b != 1.0f) ir_edit_set_float(n, "beta", b);
    if (!abs_mode && gc->op == OP_FusedGemm) gt_set_act(n, gc->act);
    /* the L2-block tactics (cuda_fused_gemm_lt_h0_l2blk*): blocks of 256
    ** bytes of output, so small cases run as many blocks, the last ragged */
    if (!abs_mode && gc->op == OP_FusedGemm) ir_edit_set_int(n, "kiln_l2_chunk_bytes", 256);
}

static int g_l2_runs; /* cases the L2-block tactics ran */

static void run_case(const gemm_case *gc, kiln_dtype dt, const char *what) {
    kiln_tensor *A = gt_rand(dt, gc->ra, gc->ad, 2.0), *B = gt_rand(dt, gc->rb, gc->bd, 2.0);
    kiln_tensor *C = gc->rc >= 0 ? gt_rand(dt, gc->rc, gc->cd, 2.0) : NULL, *R = NULL;
    int n_in = gc->op == OP_MatMul ? 2 : C ? 3 : 2;
    if (gc->res) {
        /* R has the output's shape: learn it from the plain product */
        ir_node *p = gt_node(OP_FusedGemm, 2);
        if (gc->ta) ir_edit_set_int(p, "transA", 1);
        if (gc->tb) ir_edit_set_int(p, "transB", 1);
        const kiln_tensor *pin[2] = {A, B};
        kiln_tensor *y0 = gt_ref(p, pin);
        if (!y0) gt_die("residual shape");
        R = gt_rand(dt, y0->rank, y0->dims, 2.0);
        tensor_free(y0);
        n_in = 4;
    }
    ir_node *n = gt_node(gc->op, n_in);
    set_gemm_attrs(n, gc, false);
    ir_node *m = gt_node(gc->op, n_in);
    set_gemm_attrs(m, gc, true);
    const kiln_tensor *in[4] = {A, B, C, R};
    kiln_tensor *aA = gt_abs_f32(A), *aB = gt_abs_f32(B), *aC = gt_abs_f32(C);
    kiln_tensor *aR = gt_abs_f32(R);
    const kiln_tensor *ain[4] = {aA, aB, aC, aR};
    kiln_tensor *want = gt_ref(n, in), *mag = gt_ref(m, ain);
    char desc[300];
    snprintf(desc, sizeof desc, "%s%s %s", what, R ? " +R" : "", gt_dtype_name(dt));
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else {
        const kiln_tactic *ts[16];
        int nt = gt_tactics(cuda_tactics_gemm, gc->op, ts, 16);
        double lip = gc->op == OP_FusedGemm ? gt_act_lip(gc->act) : 1.0;
        for (int k = 0; k < nt; k++) {
            bool declined;
            kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
            if (!got && declined && strstr(ts[k]->name, "_l2blk") &&
                (!gc->act[0] || !strcmp(gc->act, "Relu") || !strcmp(gc->act, "GeluTanh"))) {
                g_declined++; /* cuBLASLt applies these: no epilogue pass to block */
                continue;
            }
            if (!got) {
                if (declined) {
                    fprintf(stderr, "FAIL %s %s: declined\n", ts[k]->name, desc);
                } else {
                    fprintf(stderr, "FAIL %s %s: did not run\n", ts[k]->name, desc);
                }
                g_fail++;
                continue;
            }
            if (strstr(ts[k]->name, "_l2blk")) g_l2_runs++;
            if (gt_compare(ts[k]->name, desc, got, want, mag, 0, gt_rtol(dt) * lip)) g_pass++;
            else g_fail++;
            tensor_free(got);
        }
    }
    tensor_free(want);
    tensor_free(mag);
    tensor_free(A);
    tensor_free(B);
    tensor_free(C);
    tensor_free(aA);
    tensor_free(aB);
    tensor_free(aC);
    tensor_free(R);
    tensor_free(aR);
}

static void gemm_2d_r(kiln_dtype dt, int op, int64_t M, int64_t K, int64_t N, int ta, int tb,
                    int crank, int cshape, float alpha, float beta, const char *act,
                    bool res) {
    gemm_case gc;
    memset(&gc, 0, sizeof gc);
    gc.op = op;
    gc.res = res;
    gc.ra = gc.rb = 2;
    gc.ad[0] = ta ? K : M, gc.ad[1] = ta ? M : K;
    gc.bd[0] = tb ? N : K, gc.bd[1] = tb ? K : N;
    gc.ta = ta, gc.tb = tb;
    gc.alpha = alpha, gc.beta = beta;
    gc.act = act;
    gc.rc = crank;
    /* cshape: 0 full, 1 row vector (N), 2 column (M,1), 3 scalar-ish */
    if (crank == 1) gc.cd[0] = cshape == 3 ? 1 : N;
    if (crank == 2) {
        gc.cd[0] = cshape == 1 || cshape == 3 ? 1 : M;
        gc.cd[1] = cshape == 2 || cshape == 3 ? 1 : N;
    }
    char desc[200];
    snprintf(desc, sizeof desc, "%s M=%lld K=%lld N=%lld ta=%d tb=%d C=r%d/%d a=%g b=%g act='%s'",
             op_name(op), (long long)M, (long long)K, (long long)N, ta, tb, crank, cshape, alpha,
             beta, act);
    run_case(&gc, dt, desc);
}

static void gemm_2d(kiln_dtype dt, int op, int64_t M, int64_t K, int64_t N, int ta, int tb,
                    int crank, int cshape, float alpha, float beta, const char *act) {
    gemm_2d_r(dt, op, M, K, N, ta, tb, crank, cshape, alpha, beta, act, false);
}

/* FusedGemm's residual R: with no C, a bias row (cuBLASLt BIAS epilogue +
** C = R), a bias row with beta != 1, a column / scalar C (our epilogue adds
** C, cuBLASLt's C = R), a full C (cuBLASLt's C = C, our epilogue adds R);
** activations after the residual; K = 0; awkward sizes; batches. */
static void test_residual(kiln_dtype dt, bool full) {
    static const int64_t sizes[] = {1, 5, 17, 64, 100};
    int step = full ? 1 : 2;
    for (int i = 0; i < 5; i += step)
        for (int j = 0; j < 5; j += 2)
            for (int l = 0; l < 5; l += step) {
                int64_t M = sizes[i], K = sizes[j], N = sizes[l];
                int ta = (i + j) & 1, tb = (j + l) & 1;
                gemm_2d_r(dt, OP_FusedGemm, M, K, N, ta, tb, (i + l) % 3 - 1, (i + j + l) % 4,
                          1.0f, 1.0f, (i + l) % 2 ? "Relu" : "", true);
            }
    gemm_2d_r(dt, OP_FusedGemm, 128, 3072, 768, 0, 0, 1, 0, 1.0f, 1.0f, "", true); /* FFN out */
    gemm_2d_r(dt, OP_FusedGemm, 128, 768, 768, 0, 1, 1, 0, 1.0f, 1.0f, "", true);  /* attn out */
    gemm_2d_r(dt, OP_FusedGemm, 150, 600, 70, 0, 0, 1, 0, 1.0f, 1.0f, "Relu", true);
    gemm_2d_r(dt, OP_FusedGemm, 33, 64, 96, 0, 1, 1, 0, 1.0f, 1.0f, "GeluTanh", true);
    gemm_2d_r(dt, OP_FusedGemm, 12, 257, 64, 0, 1, 2, 0, 2.0f, 0.25f, "Gelu", true); /* full C */
    gemm_2d_r(dt, OP_FusedGemm, 16, 40, 24, 0, 0, 2, 0, 1.0f, -1.0f, "", true);   /* full C, v8 */
    gemm_2d_r(dt, OP_FusedGemm, 300, 70, 33, 1, 1, 2, 2, 1.0f, 1.0f, "", true);    /* column C */
    gemm_2d_r(dt, OP_FusedGemm, 3, 100, 9, 0, 1, 1, 0, 0.5f, 2.0f, "SiLU", true);  /* row, beta 2 */
    gemm_2d_r(dt, OP_FusedGemm, 7, 9, 11, 0, 0, 0, 0, 1.0f, 2.0f, "Tanh", true);   /* scalar C */
    gemm_2d_r(dt, OP_FusedGemm, 5, 0, 7, 0, 0, 1, 0, 1.0f, 1.0f, "Relu", true);    /* K = 0 */
    gemm_2d_r(dt, OP_FusedGemm, 5, 0, 8, 0, 0, 2, 0, 1.0f, 0.5f, "", true);        /* K = 0, C */
    gemm_2d_r(dt, OP_FusedGemm, 0, 8, 7, 0, 0, 1, 0, 1.0f, 1.0f, "", true);        /* M = 0 */
    gemm_2d_r(dt, OP_FusedGemm, 9, 24, 13, 1, 0, -1, 0, 1.5f, 1.0f, "Relu", true); /* alpha */
    for (size_t a = 0; a < KILN_ARRAY_LEN(gt_acts); a++)
        gemm_2d_r(dt, OP_FusedGemm, 19, 33, 40, 0, 0, 1, 0, 1.0f, 1.0f, gt_acts[a], true);
    /* L2 blocks with each epilogue input: bias row in cuBLASLt and R as its
    ** C; bias row with beta != 1 (our ROW add); full C in cuBLASLt and R
    ** ours (SAME); odd N (the epilogue's scalar path) */
    gemm_2d_r(dt, OP_FusedGemm, 40, 24, 24, 0, 0, 1, 0, 1.0f, 1.0f, "Gelu", true);
    gemm_2d_r(dt, OP_FusedGemm, 40, 24, 24, 0, 0, 1, 0, 1.0f, 2.0f, "Gelu", true);
    gemm_2d_r(dt, OP_FusedGemm, 40, 24, 24, 0, 1, 2, 0, 1.0f, 0.5f, "Gelu", true);
    gemm_2d_r(dt, OP_FusedGemm, 37, 24, 13, 0, 0, 1, 0, 1.0f, 1.0f, "SiLU", true);
    struct {
        int ra, rb, rc;
        int64_t ad[4], bd[4], cd[4];
        int ta, tb;
        const char *act;
    } bc[] = {
        {3, 2, 1, {4, 17, 24}, {24, 40}, {40}, 0, 0, ""},          /* folds (BERT form) */
        {3, 2, 1, {4, 17, 24}, {24, 40}, {40}, 0, 0, "Gelu"},
        {3, 2, 3, {2, 5, 8}, {8, 9}, {2, 5, 9}, 0, 0, "Relu"},     /* full C */
        {3, 2, 2, {2, 5, 8}, {8, 9}, {5, 9}, 0, 0, ""},            /* bcast C */
        {4, 4, -1, {2, 3, 7, 6}, {2, 3, 6, 5}, {0}, 0, 0, ""},     /* strided batch */
        {4, 3, 2, {2, 3, 7, 6}, {3, 6, 5}, {1, 5}, 0, 0, "Tanh"},  /* B bcast dim: loop */
        {2, 3, 1, {9, 10}, {3, 10, 20}, {20}, 0, 0, ""},           /* A bcast */
        {3, 2, 1, {3, 8, 5}, {8, 6}, {6}, 1, 0, "Relu"},           /* ta: no fold */
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(bc); i++) {
        gemm_case gc;
        memset(&gc, 0, sizeof gc);
        gc.op = OP_FusedGemm;
        gc.ra = bc[i].ra, gc.rb = bc[i].rb, gc.rc = bc[i].rc;
        memcpy(gc.ad, bc[i].ad, sizeof bc[i].ad);
        memcpy(gc.bd, bc[i].bd, sizeof bc[i].bd);
        memcpy(gc.cd, bc[i].cd, sizeof bc[i].cd);
        gc.ta = bc[i].ta, gc.tb = bc[i].tb;
        gc.alpha = 1.0f, gc.beta = 1.0f;
        gc.act = bc[i].act;
        gc.res = true;
        char desc[100];
        snprintf(desc, sizeof desc, "batched residual case %zu", i);
        run_case(&gc, dt, desc);
    }
}

static void test_2d(kiln_dtype dt, bool full) {
    static const int64_t sizes[] = {1, 5, 17, 64, 100};
    int step = full ? 1 : 2;
    for (int i = 0; i < 5; i += step)
        for (int j = 0; j < 5; j += step)
            for (int l = 0; l < 5; l += 2) {
                int64_t M = sizes[i], K = sizes[j], N = sizes[l];
                int ta = (i + j) & 1, tb = (j + l) & 1;
                gemm_2d(dt, OP_FusedGemm, M, K, N, ta, tb, (i + l) % 3 - 1, (i + j + l) % 4, 1.0f,
                        1.0f, "");
                if ((i + j + l) % 3 == 0)
                    gemm_2d(dt, OP_Gemm, M, K, N, tb, ta, 2, i % 4, 0.5f, -1.5f, "");
            }
    gemm_2d(dt, OP_FusedGemm, 150, 600, 70, 0, 0, 1, 0, 1.0f, 1.0f, "Relu");   /* RELU_BIAS */
    gemm_2d(dt, OP_FusedGemm, 33, 64, 96, 0, 1, 1, 0, 1.0f, 1.0f, "GeluTanh"); /* GELU_BIAS */
    gemm_2d(dt, OP_FusedGemm, 12, 257, 64, 0, 1, 2, 0, 2.0f, 0.25f, "Gelu");   /* residual */
    gemm_2d(dt, OP_FusedGemm, 300, 70, 33, 1, 1, 2, 2, 1.0f, 1.0f, "");        /* column C */
    gemm_2d(dt, OP_Gemm, 200, 513, 48, 1, 0, 2, 0, 1.0f, 0.0f, "");            /* beta 0 */
    gemm_2d(dt, OP_Gemm, 7, 9, 11, 0, 0, 0, 0, 1.0f, 2.0f, "");                /* scalar C */
    gemm_2d(dt, OP_Gemm, 16, 8, 32, 0, 1, -1, 0, 1.0f, 1.0f, "");              /* no C */
    gemm_2d(dt, OP_Gemm, 4, 3, 5, 0, 1, 2, 1, 1.0f, -1.0f, "");                /* row, beta -1 */
    gemm_2d(dt, OP_FusedGemm, 3, 100, 9, 0, 1, 1, 0, 0.5f, 2.0f, "SiLU");      /* row, beta 2 */
    gemm_2d(dt, OP_FusedGemm, 5, 0, 7, 0, 0, 1, 0, 1.0f, 1.0f, "Relu");        /* K = 0 */
    gemm_2d(dt, OP_FusedGemm, 0, 8, 7, 0, 0, 1, 0, 1.0f, 1.0f, "");            /* M = 0 */
    gemm_2d(dt, OP_FusedGemm, 128, 768, 3072, 0, 0, 1, 0, 1.0f, 1.0f, "Gelu"); /* BERT FFN */
    gemm_2d(dt, OP_FusedGemm, 128, 3072, 768, 0, 1, 1, 0, 1.0f, 1.0f, "");     /* transposed W */
    /* the epilogue's 8-wide path in f16/bf16 (output and C in whole groups
    ** of 8): bias row with beta != 1, with GELU and with none; one group */
    gemm_2d(dt, OP_FusedGemm, 16, 40, 24, 0, 0, 1, 0, 1.0f, 2.0f, "Gelu");     /* row, beta 2 */
    gemm_2d(dt, OP_Gemm, 8, 16, 32, 0, 1, 2, 1, 1.0f, -1.0f, "");              /* row, beta -1 */
    gemm_2d(dt, OP_FusedGemm, 1, 8, 8, 0, 0, 1, 0, 1.0f, 1.0f, "Gelu");        /* one group */
    gemm_2d(dt, OP_FusedGemm, 3, 40, 16, 0, 0, 2, 0, 0.5f, 1.0f, "SiLU");      /* full C */
    /* L2 blocks (256 bytes): bias row beta != 1 (ROW add per block), full C */
    gemm_2d(dt, OP_FusedGemm, 40, 24, 24, 0, 0, 1, 0, 1.0f, 2.0f, "Gelu");
    gemm_2d(dt, OP_FusedGemm, 40, 24, 24, 0, 1, 2, 0, 0.5f, 1.0f, "Gelu");
    for (size_t a = 0; a < KILN_ARRAY_LEN(gt_acts); a++) {
        gemm_2d(dt, OP_FusedGemm, 19, 33, 40, 0, 0, 1, 0, 1.0f, 1.0f, gt_acts[a]);
        gemm_2d(dt, OP_FusedGemm, 6, 16, 16, 0, 1, 2, 0, 0.75f, -0.5f, gt_acts[a]);
        gemm_2d(dt, OP_FusedGemm, 9, 24, 13, 1, 0, -1, 0, 1.5f, 1.0f, gt_acts[a]);
    }
}

static void test_batched(kiln_dtype dt) {
    struct {
        int op, ra, rb, rc;
        int64_t ad[4], bd[4], cd[4];
        int ta, tb;
        const char *act;
    } bc[] = {
        {OP_FusedGemm, 3, 2, 1, {4, 17, 24}, {24, 40}, {40}, 0, 0, "Gelu"},       /* folds */
        {OP_FusedGemm, 3, 2, 3, {2, 5, 8}, {8, 9}, {2, 5, 9}, 0, 0, "Relu"},      /* folds, full C */
        {OP_FusedGemm, 3, 2, 2, {2, 5, 8}, {8, 9}, {5, 9}, 0, 0, ""},             /* bcast C */
        {OP_FusedGemm, 4, 3, 2, {2, 3, 7, 6}, {3, 6, 5}, {1, 5}, 0, 0, "Tanh"},   /* B bcast dim */
        {OP_FusedGemm, 4, 4, 4, {2, 1, 7, 6}, {1, 4, 6, 5}, {2, 4, 7, 5}, 0, 0, ""},
        {OP_FusedGemm, 4, 4, 3, {2, 1, 6, 7}, {1, 4, 5, 6}, {4, 1, 5}, 1, 1, "SiLU"},
        {OP_FusedGemm, 2, 3, 1, {9, 10}, {3, 10, 20}, {20}, 0, 0, ""},            /* A bcast */
        {OP_FusedGemm, 3, 3, 1, {3, 10, 9}, {3, 20, 10}, {1}, 1, 1, "HardSwish"},
        {OP_FusedGemm, 3, 3, 3, {1, 3, 20}, {2, 7, 20}, {2, 1, 7}, 0, 1, "Relu"},
        {OP_FusedGemm, 3, 2, 1, {3, 8, 5}, {8, 6}, {6}, 1, 0, "Relu"},            /* ta: no fold */
        {OP_MatMul, 3, 2, -1, {4, 17, 24}, {24, 40}, {0}, 0, 0, ""},
        {OP_MatMul, 4, 4, -1, {2, 12, 33, 16}, {2, 12, 16, 33}, {0}, 0, 0, ""},  /* attention */
        {OP_MatMul, 4, 3, -1, {2, 3, 7, 6}, {3, 6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 2, 4, -1, {7, 6}, {2, 3, 6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 1, 2, -1, {6}, {6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 3, 1, -1, {2, 7, 6}, {6}, {0}, 0, 0, ""},
        {OP_MatMul, 1, 1, -1, {13}, {13}, {0}, 0, 0, ""},
        {OP_MatMul, 2, 2, -1, {5, 0}, {0, 7}, {0}, 0, 0, ""},                     /* K = 0 */
        {OP_MatMul, 3, 2, -1, {0, 4, 3}, {3, 2}, {0}, 0, 0, ""},                  /* empty batch */
        {OP_MatMul, 3, 2, -1, {2, 130, 70}, {70, 90}, {0}, 0, 0, ""},
        {OP_MatMul, 4, 4, -1, {3, 1, 5, 4}, {1, 2, 4, 6}, {0}, 0, 0, ""},         /* both bcast */
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(bc); i++) {
        gemm_case gc;
        memset(&gc, 0, sizeof gc);
        gc.op = bc[i].op;
        gc.ra = bc[i].ra, gc.rb = bc[i].rb, gc.rc = bc[i].rc;
        memcpy(gc.ad, bc[i].ad, sizeof bc[i].ad);
        memcpy(gc.bd, bc[i].bd, sizeof bc[i].bd);
        memcpy(gc.cd, bc[i].cd, sizeof bc[i].cd);
        gc.ta = bc[i].ta, gc.tb = bc[i].tb;
        gc.alpha = 1.0f, gc.beta = 1.0f;
        gc.act = bc[i].act;
        char desc[100];
        snprintf(desc, sizeof desc, "batched case %zu (%s)", i, op_name(gc.op));
        run_case(&gc, dt, desc);
    }
}

/* A TF32 layer must still be close (looser) and must run. */
static void test_tf32(void) {
    kiln_tensor *A = gt_rand_amp(KILN_DTYPE_FLOAT32, 2, (int64_t[]){64, 256}, 1.0);
    kiln_tensor *B = gt_rand_amp(KILN_DTYPE_FLOAT32, 2, (int64_t[]){256, 96}, 1.0);
    ir_node *n = gt_node(OP_MatMul, 2);
    ir_edit_set_int(n, "kiln_tf32", 1);
    const kiln_tensor *in[2] = {A, B};
    kiln_tensor *aA = gt_abs_f32(A), *aB = gt_abs_f32(B);
    const kiln_tensor *ain[2] = {aA, aB};
    kiln_tensor *want = gt_ref(n, in), *mag = gt_ref(n, ain);
    const kiln_tactic *ts[16];
    int nt = gt_tactics(cuda_tactics_gemm, OP_MatMul, ts, 16);
    for (int k = 0; k < nt && want && mag; k++) {
        bool declined;
        kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
        if (got && gt_compare(ts[k]->name, "tf32 64x256x96", got, want, mag, 0, 2e-3)) g_pass++;
        else g_fail++;
        tensor_free(got);
    }
    tensor_free(A);
    tensor_free(B);
    tensor_free(aA);
    tensor_free(aB);
    tensor_free(want);
    tensor_free(mag);
}

int main(int argc, char **argv) {
    setenv("KILN_GEMM_L2BLK", "1", 0); /* opt-in tactics: tested here */
    if (!gt_init(argc, argv)) return 0;
    test_2d(KILN_DTYPE_FLOAT32, true);
    test_batched(KILN_DTYPE_FLOAT32);
    test_residual(KILN_DTYPE_FLOAT32, true);
    test_2d(KILN_DTYPE_FLOAT16, false);
    test_batched(KILN_DTYPE_FLOAT16);
    test_residual(KILN_DTYPE_FLOAT16, false);
    test_2d(KILN_DTYPE_BFLOAT16, false);
    test_batched(KILN_DTYPE_BFLOAT16);
    test_residual(KILN_DTYPE_BFLOAT16, false);
    test_tf32();
    if (g_l2_runs < 100) {
        fprintf(stderr, "FAIL the L2-block tactics ran only %d cases\n", g_l2_runs);
        g_fail++;
    }
    return gt_finish();
}
