/* test_cpu_tactics.c: every optimized CPU tactic against the reference
** kernels on random shapes, awkward ones included (sizes off the register
** tiles, batch broadcasting, transposes, groups, depthwise, dilations,
** strides, asymmetric pads, residuals, every activation), with 1 and 3
** threads. Fused ops are checked against the reference FusedConv/FusedGemm
** kernels when they exist, else against Conv/MatMul plus a scalar epilogue.
** Tolerance: 1e-5 of the accumulated magnitude (the same product on
** absolute values). */
#define _GNU_SOURCE /* sched_setaffinity */
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/backends/cpu/cpu_gemm.h"
#include "../../src/ir/ir_edit.h"
#include "../../src/ops/fused.h"

#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <unistd.h>
#include <time.h>

static ir_model *g_model;
static ir_graph *g_graph;
static unsigned g_host;
static const char *g_only; /* optional tactic-name filter from argv */

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

static kiln_tensor *rand_tensor(int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t)) die("tensor_new");
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = (float)(rnd() * 4.0 - 2.0);
    return t;
}

static kiln_tensor *abs_copy(const kiln_tensor *t) {
    if (!t) return NULL;
    kiln_tensor *r;
    if (tensor_clone(t, &r)) die("clone");
    float *p = r->data;
    for (int64_t i = 0; i < tensor_numel(r); i++) p[i] = fabsf(p[i]);
    return r;
}

static ir_node *new_node(int op, int n_in) {
    ir_node *n = ir_edit_add_node(g_graph, op, n_in, 1, NULL);
    if (!n) die("add node");
    return n;
}

static const char *const k_acts[] = {"",          "Relu",     "Clip",      "Sigmoid",
                                     "SiLU",      "Gelu",     "GeluTanh",  "LeakyRelu",
                                     "HardSwish", "HardSigmoid", "Tanh"};

static void set_act(ir_node *n, const char *act) {
    if (!act[0]) return;
    if (!ir_edit_set_str(n, "activation", act)) die("attr");
    if (!strcmp(act, "Clip")) {
        ir_edit_set_float(n, "activation_alpha", -0.5f);
        ir_edit_set_float(n, "activation_beta", 1.25f);
    } else if (!strcmp(act, "LeakyRelu")) {
        ir_edit_set_float(n, "activation_alpha", 0.1f);
    } else if (!strcmp(act, "HardSigmoid") && rnd() < 0.5) {
        ir_edit_set_float(n, "activation_alpha", 0.3f);
        ir_edit_set_float(n, "activation_beta", 0.4f);
    }
}

/* Runs the reference of node n (kernel of op `op` with n's attributes);
** returns the output (caller frees). */
static kiln_tensor *run_ref(ir_node *n, const kiln_tensor *const *in) {
    kiln_tensor *out[1];
    if (ref_run_node(n, in, out)) {
        fprintf(stderr, "reference failed: %s\n", kiln_last_error());
        return NULL;
    }
    return out[0];
}

static int g_prepared_runs; /* runs that used a prepared-weight blob */
static int g_no_data_runs;  /* ... with the replaced input's data NULL */

/* Runs a tactic on n; out is pre-shaped like want and filled with NaN so
** unwritten elements show. prepared: treat every input as a constant, ask
** the tactic's prepare hook for its blob and run on it (as an engine does). */
static kiln_tensor *run_tactic_ex(const kiln_tactic *t, ir_node *n,
                                  const kiln_tensor *const *in, const kiln_tensor *want,
                                  bool give_ws, bool prepared) {
    const ir_type *tin[8] = {0};
    ir_type types[8];
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (t->supports && !t->supports(n, tin)) return NULL;
    kiln_tensor *y;
    if (tensor_new(KILN_DTYPE_FLOAT32, want->rank, want->dims, &y)) die("out");
    float *p = y->data;
    for (int64_t i = 0; i < tensor_numel(y); i++) p[i] = NAN;
    size_t wsz = give_ws && t->workspace ? t->workspace(n, tin) : 0;
    void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
    if (wsz && !ws) die("ws");
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    c.ws = ws;
    c.ws_size = wsz;
    void *blob = NULL;
    size_t blob_n = 0;
    /* with a blob, the inputs it replaces lose their data as in an engine
    ** that stores them only prepared (kiln_tactic.blob_replaces): the run
    ** must not read, or even offset, those pointers */
    kiln_tensor hdr[8];
    const kiln_tensor *in2[8] = {0};
    if (prepared && t->prepare) {
        if (t->prepare(n, tin, in, &blob, &blob_n)) die("prepare");
        c.blob = blob;
        c.blob_size = blob_n;
        if (blob) g_prepared_runs++;
        for (int i = 0; i < n->n_in && i < 8; i++) {
            in2[i] = in[i];
            if (blob && in[i] && (t->blob_replaces >> i & 1u)) {
                hdr[i] = *in[i];
                hdr[i].data = NULL;
                in2[i] = &hdr[i];
                g_no_data_runs++;
            }
        }
        c.in = in2;
    }
    int rc = t->run(&c);
    kiln_aligned_free(ws);
    kiln_aligned_free(blob);
    if (rc) {
        fprintf(stderr, "%s failed: %s\n", t->name, c.err);
        tensor_free(y);
        return NULL;
    }
    return y;
}

static kiln_tensor *run_tactic(const kiln_tactic *t, ir_node *n,
                               const kiln_tensor *const *in, const kiln_tensor *want,
                               bool give_ws) {
    return run_tactic_ex(t, n, in, want, give_ws, false);
}

/* Activation slope bound (error growth through it). */
static double act_lip(const char *act) {
    return !strcmp(act, "HardSwish") ? 1.6 : !strcmp(act, "Gelu") || !strcmp(act, "GeluTanh") ? 1.2 : 1.1;
}

static bool compare(const char *tname, const char *desc, const kiln_tensor *got,
                    const kiln_tensor *want, const kiln_tensor *mag, double lip) {
    if (!shape_equal(got->rank, got->dims, want->rank, want->dims)) {
        fprintf(stderr, "FAIL %s %s: shape differs\n", tname, desc);
        return false;
    }
    const float *g = got->data, *w = want->data, *m = mag->data;
    int64_t n = tensor_numel(got);
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-5 * lip * (double)m[i] + 4 * 1.2e-7 * fabs((double)w[i]) + 1e-30;
        bool ok = fabs((double)g[i] - (double)w[i]) <= tol || (isnan(g[i]) && isnan(w[i]));
        if (!ok) {
            fprintf(stderr, "FAIL %s %s: element %lld got %.9g want %.9g (mag %.4g)\n",
                    tname, desc, (long long)i, g[i], w[i], m[i]);
            return false;
        }
    }
    return true;
}

/* Per-tactic counts, printed at the end. */
static const char *g_names[64];
static int g_counts[64];

static void record_for(const char *tname, bool ok) {
    for (int i = 0; i < 64 && tname; i++) {
        if (!g_names[i]) g_names[i] = tname;
        if (g_names[i] == tname) {
            g_counts[i]++;
            break;
        }
    }
    if (ok) g_pass++;
    else g_fail++;
}

static void record(bool ok) { record_for(NULL, ok); }

/* Candidate tactics of an op that the host can run. */
static int tactics_for(int op, const kiln_tactic **out) {
    int k = 0;
    for (const kiln_tactic *const *t = cpu_tactic_table; *t; t++) {
        if ((*t)->op != op || ((*t)->isa & ~g_host)) continue;
        if (g_only && !strstr((*t)->name, g_only)) continue;
        out[k++] = *t;
    }
    return k;
}

/* Applies beta*C (broadcast), Z and the activation to a reference product
** (mag: the same on absolute values, for the tolerance). */
static void epilogue_ref(kiln_tensor *y, kiln_tensor *mag, float alpha, float beta,
                         const kiln_tensor *C, const kiln_tensor *Z,
                         const ir_node *n) {
    fused_act a;
    if (!fused_act_read(n, &a, NULL, 0)) die("act");
    int64_t cnt = tensor_numel(y), cst[KILN_MAX_RANK];
    if (C) bcast_strides(C->rank, C->dims, y->rank, cst);
    float *yp = y->data, *mp = mag->data;
    int64_t idx[KILN_MAX_RANK] = {0};
    for (int64_t e = 0; e < cnt; e++) {
        float v = alpha * yp[e];
        double mv = fabs((double)alpha) * mp[e];
        if (C && beta != 0.0f) {
            int64_t off = 0;
            for (int d = 0; d < y->rank; d++) off += idx[d] * cst[d];
            float cv = ((const float *)C->data)[off];
            v += beta * cv;
            mv += fabs((double)beta * cv);
        }
        if (Z) {
            float zv = ((const float *)Z->data)[e];
            v += zv;
            mv += fabs((double)zv);
        }
        yp[e] = fused_act_f32(&a, v);
        mp[e] = (float)mv;
        for (int d = y->rank - 1; d >= 0; d--) {
            if (++idx[d] < y->dims[d]) break;
            idx[d] = 0;
        }
    }
}

/* ------------------------------------------------------------ GEMM cases */
typedef struct gemm_case {
    int op;                 /* OP_MatMul, OP_Gemm, OP_FusedGemm */
    int ra, rb, rc;         /* ranks; rc -1: no C */
    int64_t ad[6], bd[6], cd[6];
    int ta, tb;
    float alpha, beta;
    const char *act;
    bool res;               /* FusedGemm's residual R (the output's shape) */
} gemm_case;

/* Transposes the last two dims of t (new tensor). */
static kiln_tensor *transpose_last2(const kiln_tensor *t) {
    int r = t->rank;
    int64_t d[KILN_MAX_RANK];
    memcpy(d, t->dims, sizeof d);
    d[r - 2] = t->dims[r - 1];
    d[r - 1] = t->dims[r - 2];
    kiln_tensor *o;
    if (tensor_new(KILN_DTYPE_FLOAT32, r, d, &o)) die("tensor");
    int64_t R = t->dims[r - 2], C = t->dims[r - 1], mats = tensor_numel(t) / KILN_MAX(R * C, 1);
    const float *s = t->data;
    float *q = o->data;
    for (int64_t b = 0; b < mats && R * C != 0; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) q[b * R * C + j * R + i] = s[b * R * C + i * C + j];
    return o;
}

static void run_gemm_case(const gemm_case *gc, const char *desc) {
    kiln_tensor *A = rand_tensor(gc->ra, gc->ad), *B = rand_tensor(gc->rb, gc->bd);
    kiln_tensor *C = gc->rc >= 0 ? rand_tensor(gc->rc, gc->cd) : NULL, *R = NULL;
    int n_in = gc->op == OP_MatMul ? 2 : C ? 3 : 2;
    if (gc->res) {
        /* R has the output's shape: learn it from the plain product */
        ir_node *p = new_node(OP_FusedGemm, 2);
        if (gc->ta) ir_edit_set_int(p, "transA", 1);
        if (gc->tb) ir_edit_set_int(p, "transB", 1);
        const kiln_tensor *pin[2] = {A, B};
        kiln_tensor *y0 = run_ref(p, pin);
        if (!y0) die("residual shape");
        R = rand_tensor(y0->rank, y0->dims);
        tensor_free(y0);
        n_in = 4;
    }
    ir_node *n = new_node(gc->op, n_in);
    if (gc->op != OP_MatMul) {
        if (gc->ta) ir_edit_set_int(n, "transA", 1);
        if (gc->tb) ir_edit_set_int(n, "transB", 1);
        if (gc->alpha != 1.0f) ir_edit_set_float(n, "alpha", gc->alpha);
        if (gc->beta != 1.0f) ir_edit_set_float(n, "beta", gc->beta);
    }
    if (gc->op == OP_FusedGemm) set_act(n, gc->act);
    const kiln_tensor *in[4] = {A, B, C, R};
    /* Reference: the op's own kernel for MatMul/Gemm (and FusedGemm once
    ** it has one); otherwise MatMul on transposed copies + epilogue. */
    kiln_tensor *want = NULL, *mag = NULL;
    kiln_tensor *aA = abs_copy(A), *aB = abs_copy(B), *aC = abs_copy(C), *aR = abs_copy(R);
    const kiln_tensor *ain[4] = {aA, aB, aC, aR};
    bool own_ref = gc->op != OP_FusedGemm || ref_kernel_get(OP_FusedGemm);
    if (R) {
        /* the reference FusedGemm's residual against MatMul + this file's
        ** own epilogue (R added after beta * C, before the activation) */
        kiln_tensor *At = gc->ta ? transpose_last2(A) : NULL;
        kiln_tensor *Bt = gc->tb ? transpose_last2(B) : NULL;
        ir_node *m = new_node(OP_MatMul, 2);
        const kiln_tensor *min[2] = {At ? At : A, Bt ? Bt : B};
        kiln_tensor *ind = run_ref(m, min), *mg = run_ref(m, min);
        kiln_tensor *own = run_ref(n, in);
        if (ind && mg) epilogue_ref(ind, mg, gc->alpha, gc->beta, C, R, n);
        for (int64_t i = 0; ind && mg && i < tensor_numel(mg); i++)
            ((float *)mg->data)[i] = fabsf(((float *)mg->data)[i]) + 1.0f;
        record_for("ref_fused_gemm_residual",
                   ind && mg && own && compare("ref", desc, own, ind, mg, act_lip(gc->act)));
        tensor_free(At);
        tensor_free(Bt);
        tensor_free(ind);
        tensor_free(mg);
        tensor_free(own);
    }
    if (own_ref) {
        want = run_ref(n, in);
        /* Magnitude: the op on |A|, |B|, |C| with |alpha|, |beta|, no act. */
        ir_node *m = new_node(gc->op == OP_FusedGemm ? OP_FusedGemm : gc->op, n_in);
        if (gc->op != OP_MatMul) {
            if (gc->ta) ir_edit_set_int(m, "transA", 1);
            if (gc->tb) ir_edit_set_int(m, "transB", 1);
            ir_edit_set_float(m, "alpha", fabsf(gc->alpha));
            ir_edit_set_float(m, "beta", fabsf(gc->beta));
        }
        mag = run_ref(m, ain);
    } else {
        kiln_tensor *At = gc->ta ? transpose_last2(A) : NULL;
        kiln_tensor *Bt = gc->tb ? transpose_last2(B) : NULL;
        kiln_tensor *aAt = gc->ta ? transpose_last2(aA) : NULL;
        kiln_tensor *aBt = gc->tb ? transpose_last2(aB) : NULL;
        ir_node *m = new_node(OP_MatMul, 2);
        const kiln_tensor *min[2] = {At ? At : A, Bt ? Bt : B};
        const kiln_tensor *amin[2] = {aAt ? aAt : aA, aBt ? aBt : aB};
        want = run_ref(m, min);
        mag = run_ref(m, amin);
        if (want && mag) epilogue_ref(want, mag, gc->alpha, gc->beta, C, NULL, n);
        tensor_free(At);
        tensor_free(Bt);
        tensor_free(aAt);
        tensor_free(aBt);
    }
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        record(false);
    } else {
        const kiln_tactic *ts[16];
        int nt = tactics_for(gc->op, ts);
        for (int k = 0; k < nt; k++) {
            for (int v = 0; v < (ts[k]->prepare ? 4 : 2); v++) {
                int th = v % 2 ? 3 : 1;
                bool prep = v >= 2;
                kiln_set_num_threads(th);
                kiln_tensor *got = run_tactic_ex(ts[k], n, in, want, th == 3 || rnd() < 0.5,
                                                 prep);
                if (!got) {
                    fprintf(stderr, "FAIL %s %s: did not run\n", ts[k]->name, desc);
                    record(false);
                    continue;
                }
                char d2[300];
                snprintf(d2, sizeof d2, "%s threads=%d%s", desc, th, prep ? " prepared" : "");
                record_for(ts[k]->name, compare(ts[k]->name, d2, got, want,
                               mag, gc->op == OP_FusedGemm ? act_lip(gc->act) : 1.0));
                tensor_free(got);
            }
        }
    }
    kiln_set_num_threads(1);
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

static void gemm_2d_r(int op, int64_t M, int64_t K, int64_t N, int ta, int tb,
                    int crank, int cshape, float alpha, float beta,
                    const char *act, bool res) {
    gemm_case gc = {0};
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
    snprintf(desc, sizeof desc, "%s M=%lld K=%lld N=%lld ta=%d tb=%d C=r%d/%d a=%g b=%g act='%s'%s",
             op_name(op), (long long)M, (long long)K, (long long)N, ta, tb, crank,
             cshape, alpha, beta, act, res ? " +R" : "");
    run_gemm_case(&gc, desc);
}

static void gemm_2d(int op, int64_t M, int64_t K, int64_t N, int ta, int tb,
                    int crank, int cshape, float alpha, float beta,
                    const char *act) {
    gemm_2d_r(op, M, K, N, ta, tb, crank, cshape, alpha, beta, act, false);
}

/* Small M (1 to CPU_DOT_MAX_M) against a transposed B: the dot-product
** path (M = 1: one B^T row at a time; 2 to 4: pairs of A rows against four
** B^T rows). K around the vector widths (8, 16, 32-float steps and their
** tails), N not a multiple of anything or smaller than a pass, K past the
** L1 (2049, 4100), random shapes, ResNet-50's fc, and batched products;
** Gemm and FusedGemm, 1 and 3 threads. */
static void test_gemm_small_m(void) {
    static const int64_t ks[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 100, 2049, 4100};
    static const int64_t ns[] = {1, 3, 17, 40};
    for (int64_t M = 1; M <= CPU_DOT_MAX_M; M++)
        for (size_t i = 0; i < KILN_ARRAY_LEN(ks); i++) {
            int64_t N = ns[(i + (size_t)M) % KILN_ARRAY_LEN(ns)];
            gemm_2d_r(OP_FusedGemm, M, ks[i], N, 0, 1, 1, 0, 1.0f, 1.0f,
                      i % 2 ? "Relu" : "", false);
        }
    for (int r = 0; r < 12; r++) {
        int64_t M = 1 + (int64_t)(rnd() * CPU_DOT_MAX_M);
        int64_t K = 1 + (int64_t)(rnd() * 3000), N = 1 + (int64_t)(rnd() * 150);
        gemm_2d(OP_Gemm, M, K, N, 0, 1, 1, 0, r % 2 ? 0.5f : 1.0f, 1.0f, "");
    }
    gemm_2d(OP_Gemm, 1, 2048, 1000, 0, 1, 1, 0, 1.0f, 1.0f, ""); /* ResNet-50 fc */
    gemm_case gc = {0};
    gc.op = OP_FusedGemm;
    gc.ra = 3, gc.rb = 3, gc.rc = 1;
    gc.ad[0] = 2, gc.ad[1] = 3, gc.ad[2] = 4100; /* 2 problems of 3 rows, B per problem */
    gc.bd[0] = 2, gc.bd[1] = 37, gc.bd[2] = 4100;
    gc.cd[0] = 37;
    gc.tb = 1;
    gc.alpha = 1.0f, gc.beta = 1.0f;
    gc.act = "Relu";
    run_gemm_case(&gc, "small-M batched 2x3x4100 . 2x4100x37^T");
    gc.rb = 2; /* one B: 2 x 1 rows fold to M = 2 */
    gc.ad[1] = 1;
    gc.bd[0] = 37, gc.bd[1] = 4100, gc.bd[2] = 0;
    run_gemm_case(&gc, "small-M batched 2x1x4100 . 4100x37^T");
}

/* FusedGemm's residual R over awkward sizes, every C form, activations
** (R before the activation), both kernels paths (packed and small-M dot),
** K = 0, K blocking, and batched / folded products. */
static void test_gemm_residual(void) {
    static const int64_t sizes[] = {1, 5, 17, 64, 100};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j += 2)
            for (int l = 0; l < 5; l += 2) {
                int64_t M = sizes[i], K = sizes[j], N = sizes[l];
                int ta = (i + j) & 1, tb = (j + l) & 1;
                gemm_2d_r(OP_FusedGemm, M, K, N, ta, tb, (i + l) % 3 - 1, (i + j + l) % 4,
                          1.0f, 1.0f, (i + j) % 2 ? "Relu" : "", true);
            }
    gemm_2d_r(OP_FusedGemm, 150, 600, 70, 0, 0, 1, 0, 1.0f, 1.0f, "Relu", true);
    gemm_2d_r(OP_FusedGemm, 12, 257, 64, 0, 1, 2, 0, 2.0f, 0.25f, "Gelu", true);
    gemm_2d_r(OP_FusedGemm, 3, 100, 9, 0, 1, 1, 0, 0.5f, 2.0f, "SiLU", true); /* dot */
    gemm_2d_r(OP_FusedGemm, 2, 37, 13, 0, 1, -1, 0, 1.0f, 1.0f, "", true);    /* dot */
    gemm_2d_r(OP_FusedGemm, 5, 0, 7, 0, 0, 1, 0, 1.0f, 1.0f, "Relu", true);   /* K = 0 */
    gemm_2d_r(OP_FusedGemm, 7, 9, 11, 0, 0, 2, 2, 1.0f, -1.0f, "Tanh", true); /* column C */
    for (size_t a = 0; a < KILN_ARRAY_LEN(k_acts); a++)
        gemm_2d_r(OP_FusedGemm, 19, 33, 40, 0, 0, 1, 0, 1.0f, 1.0f, k_acts[a], true);
    struct {
        int ra, rb, rc;
        int64_t ad[4], bd[4], cd[4];
        int ta, tb;
        const char *act;
    } bc[] = {
        {3, 2, 1, {4, 17, 24}, {24, 40}, {40}, 0, 0, "Gelu"},      /* folds */
        {3, 2, 3, {2, 5, 8}, {8, 9}, {2, 5, 9}, 0, 0, "Relu"},     /* folds, full C */
        {3, 2, 2, {2, 5, 8}, {8, 9}, {5, 9}, 0, 0, ""},            /* no fold */
        {4, 3, 2, {2, 3, 7, 6}, {3, 6, 5}, {1, 5}, 0, 0, "Tanh"},
        {4, 4, -1, {2, 1, 7, 6}, {1, 4, 6, 5}, {0}, 0, 0, ""},
        {2, 3, 1, {9, 10}, {3, 10, 20}, {20}, 0, 0, ""},           /* A broadcast */
        {3, 3, 3, {1, 3, 20}, {2, 7, 20}, {2, 1, 7}, 0, 1, "Relu"}, /* dot, batched */
        {3, 2, 1, {3, 8, 5}, {8, 6}, {6}, 1, 0, "Relu"},           /* ta: no fold */
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(bc); i++) {
        gemm_case gc = {0};
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
        run_gemm_case(&gc, desc);
    }
}

static void test_gemm(void) {
    static const int64_t sizes[] = {1, 5, 17, 63, 64, 100};
    /* Plain 2-D products over awkward sizes, every layout. */
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j += 1)
            for (int l = 0; l < 6; l += 2) {
                int64_t M = sizes[i], K = sizes[j], N = sizes[l];
                int ta = (i + j) & 1, tb = (j + l) & 1;
                gemm_2d(OP_FusedGemm, M, K, N, ta, tb, (i + l) % 3 - 1, (i + j + l) % 4,
                        1.0f, 1.0f, "");
                if ((i + j + l) % 3 == 0) gemm_2d(OP_Gemm, M, K, N, tb, ta, 2, i % 4,
                                                  0.5f, -1.5f, "");
            }
    /* K blocking (K > kc), M > mc, N > nc, direct-B small M. */
    gemm_2d(OP_FusedGemm, 150, 600, 70, 0, 0, 1, 0, 1.0f, 1.0f, "Relu");
    gemm_2d(OP_FusedGemm, 3, 300, 1100, 0, 0, 1, 0, 1.0f, 1.0f, "");
    gemm_2d(OP_FusedGemm, 12, 257, 64, 0, 1, 2, 0, 2.0f, 0.25f, "Gelu");
    gemm_2d(OP_FusedGemm, 300, 70, 33, 1, 1, 2, 2, 1.0f, 1.0f, "");
    gemm_2d(OP_Gemm, 200, 513, 48, 1, 0, 2, 0, 1.0f, 0.0f, "");
    gemm_2d(OP_Gemm, 7, 9, 11, 0, 0, 0, 0, 1.0f, 2.0f, "");   /* scalar C */
    gemm_2d(OP_Gemm, 16, 8, 32, 0, 1, -1, 0, 1.0f, 1.0f, ""); /* no C */
    /* Small M against a transposed B: the dot-product path. */
    gemm_2d(OP_FusedGemm, 2, 37, 13, 0, 1, 2, 0, 1.0f, 1.0f, "Gelu");
    gemm_2d(OP_FusedGemm, 3, 100, 9, 0, 1, 1, 0, 0.5f, 2.0f, "SiLU");
    gemm_2d(OP_FusedGemm, 4, 8, 50, 0, 1, 2, 2, 1.0f, 1.0f, "");
    gemm_2d(OP_Gemm, 1, 700, 70, 0, 1, 1, 0, 1.0f, 1.0f, "");
    gemm_2d(OP_Gemm, 4, 3, 5, 0, 1, 2, 1, 1.0f, -1.0f, "");
    /* Every activation with a bias row and alpha/beta. */
    for (size_t a = 0; a < KILN_ARRAY_LEN(k_acts); a++) {
        gemm_2d(OP_FusedGemm, 19, 33, 40, 0, 0, 1, 0, 1.0f, 1.0f, k_acts[a]);
        gemm_2d(OP_FusedGemm, 6, 16, 16, 0, 1, 2, 0, 0.75f, -0.5f, k_acts[a]);
    }
    /* Batched / broadcast FusedGemm and MatMul. */
    struct {
        int op, ra, rb, rc;
        int64_t ad[4], bd[4], cd[4];
        int ta, tb;
        const char *act;
    } bc[] = {
        {OP_FusedGemm, 3, 2, 1, {4, 17, 24}, {24, 40}, {40}, 0, 0, "Gelu"},       /* folds */
        {OP_FusedGemm, 3, 2, 3, {2, 5, 8}, {8, 9}, {2, 5, 9}, 0, 0, "Relu"},      /* folds, full C */
        {OP_FusedGemm, 3, 2, 2, {2, 5, 8}, {8, 9}, {5, 9}, 0, 0, ""},             /* no fold */
        {OP_FusedGemm, 4, 3, 2, {2, 3, 7, 6}, {3, 6, 5}, {1, 5}, 0, 0, "Tanh"},
        {OP_FusedGemm, 4, 4, 4, {2, 1, 7, 6}, {1, 4, 6, 5}, {2, 4, 7, 5}, 0, 0, ""},
        {OP_FusedGemm, 4, 4, 3, {2, 1, 6, 7}, {1, 4, 5, 6}, {4, 1, 5}, 1, 1, "SiLU"},
        {OP_FusedGemm, 2, 3, 1, {9, 10}, {3, 10, 20}, {20}, 0, 0, ""},            /* A broadcast */
        {OP_FusedGemm, 3, 3, 1, {3, 10, 9}, {3, 20, 10}, {1}, 1, 1, "HardSwish"},
        {OP_FusedGemm, 3, 3, 3, {1, 3, 20}, {2, 7, 20}, {2, 1, 7}, 0, 1, "Relu"}, /* dot, batched */
        {OP_MatMul, 3, 2, -1, {4, 17, 24}, {24, 40}, {0}, 0, 0, ""},
        {OP_MatMul, 4, 3, -1, {2, 3, 7, 6}, {3, 6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 2, 4, -1, {7, 6}, {2, 3, 6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 1, 2, -1, {6}, {6, 5}, {0}, 0, 0, ""},
        {OP_MatMul, 3, 1, -1, {2, 7, 6}, {6}, {0}, 0, 0, ""},
        {OP_MatMul, 1, 1, -1, {13}, {13}, {0}, 0, 0, ""},
        {OP_MatMul, 2, 2, -1, {5, 0}, {0, 7}, {0}, 0, 0, ""},                    /* K = 0 */
        {OP_MatMul, 3, 2, -1, {2, 130, 70}, {70, 90}, {0}, 0, 0, ""},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(bc); i++) {
        gemm_case gc = {0};
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
        run_gemm_case(&gc, desc);
    }
}

/* ------------------------------------------------------------ conv cases */
typedef struct conv_case {
    int nsp;
    int64_t N, C, M, G;
    int64_t img[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    bool bias, resid;
    const char *act;
    bool fused;
} conv_case;

static void set_conv_attrs(ir_node *n, const conv_case *cc) {
    int nsp = cc->nsp;
    if (cc->G != 1) ir_edit_set_int(n, "group", cc->G);
    ir_edit_set_ints(n, "strides", cc->s, nsp);
    ir_edit_set_ints(n, "dilations", cc->d, nsp);
    if (cc->auto_pad) ir_edit_set_str(n, "auto_pad", cc->auto_pad);
    else ir_edit_set_ints(n, "pads", cc->pads, 2 * nsp);
    if (rnd() < 0.5) ir_edit_set_ints(n, "kernel_shape", cc->k, nsp);
}

static void run_conv_case(const conv_case *cc, const char *desc) {
    int nsp = cc->nsp, r = nsp + 2;
    int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->M, cc->C / cc->G}, bd[1] = {cc->M};
    for (int i = 0; i < nsp; i++) xd[2 + i] = cc->img[i], wd[2 + i] = cc->k[i];
    kiln_tensor *X = rand_tensor(r, xd), *W = rand_tensor(r, wd);
    kiln_tensor *B = cc->bias ? rand_tensor(1, bd) : NULL;
    /* Output shape via the reference Conv (it also yields the product). */
    ir_node *cn = new_node(OP_Conv, B ? 3 : 2);
    set_conv_attrs(cn, cc);
    const kiln_tensor *cin[3] = {X, W, B};
    kiln_tensor *aX = abs_copy(X), *aW = abs_copy(W), *aB = abs_copy(B);
    const kiln_tensor *acin[3] = {aX, aW, aB};
    kiln_tensor *want = run_ref(cn, cin), *mag = run_ref(cn, acin);
    kiln_tensor *Z = NULL;
    ir_node *n = cn;
    if (want && mag && cc->fused) {
        Z = cc->resid ? rand_tensor(want->rank, want->dims) : NULL;
        n = new_node(OP_FusedConv, Z ? 4 : B ? 3 : 2);
        ir_edit_copy_attrs(n, cn);
        set_act(n, cc->act);
        const kiln_tensor *fin[4] = {X, W, B, Z};
        if (ref_kernel_get(OP_FusedConv)) {
            kiln_tensor *w2 = run_ref(n, fin);
            epilogue_ref(want, mag, 1.0f, 1.0f, NULL, Z, n); /* only for mag */
            tensor_free(want);
            want = w2;
        } else {
            epilogue_ref(want, mag, 1.0f, 1.0f, NULL, Z, n);
        }
    }
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        record(false);
    } else {
        const kiln_tensor *in[4] = {X, W, B, Z};
        const kiln_tactic *ts[16];
        int nt = tactics_for(n->op, ts);
        for (int k = 0; k < nt; k++) {
            bool dw = strstr(ts[k]->name, "dwconv") != NULL;
            for (int v = 0; v < (ts[k]->prepare ? 4 : 2); v++) {
                int th = v % 2 ? 3 : 1;
                bool prep = v >= 2;
                kiln_set_num_threads(th);
                kiln_tensor *got = run_tactic_ex(ts[k], n, in, want, th == 3 || rnd() < 0.5,
                                                 prep);
                if (!got) {
                    if (dw) continue; /* declined: not depthwise */
                    fprintf(stderr, "FAIL %s %s: did not run\n", ts[k]->name, desc);
                    record(false);
                    continue;
                }
                char d2[300];
                snprintf(d2, sizeof d2, "%s threads=%d%s", desc, th, prep ? " prepared" : "");
                record_for(ts[k]->name, compare(ts[k]->name, d2, got, want, mag,
                               cc->fused ? act_lip(cc->act) : 1.0));
                tensor_free(got);
            }
        }
    }
    kiln_set_num_threads(1);
    tensor_free(want);
    tensor_free(mag);
    tensor_free(X);
    tensor_free(W);
    tensor_free(B);
    tensor_free(Z);
    tensor_free(aX);
    tensor_free(aW);
    tensor_free(aB);
}

static void conv2d(int64_t N, int64_t C, int64_t M, int64_t G, int64_t H, int64_t Wd,
                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                   int64_t dw, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
                   bool bias, bool fused, bool resid, const char *act,
                   const char *auto_pad) {
    conv_case cc = {0};
    cc.nsp = 2;
    cc.N = N, cc.C = C, cc.M = M, cc.G = G;
    cc.img[0] = H, cc.img[1] = Wd;
    cc.k[0] = kh, cc.k[1] = kw;
    cc.s[0] = sh, cc.s[1] = sw;
    cc.d[0] = dh, cc.d[1] = dw;
    cc.pads[0] = pt, cc.pads[1] = pl, cc.pads[2] = pb, cc.pads[3] = pr;
    cc.auto_pad = auto_pad;
    cc.bias = bias, cc.fused = fused, cc.resid = resid;
    cc.act = act ? act : "";
    char desc[300];
    snprintf(desc, sizeof desc,
             "conv2d N=%lld C=%lld M=%lld G=%lld %lldx%lld k=%lldx%lld s=%lld,%lld "
             "d=%lld,%lld p=%lld,%lld,%lld,%lld%s%s%s act='%s' ap=%s",
             (long long)N, (long long)C, (long long)M, (long long)G, (long long)H,
             (long long)Wd, (long long)kh, (long long)kw, (long long)sh, (long long)sw,
             (long long)dh, (long long)dw, (long long)pt, (long long)pl, (long long)pb,
             (long long)pr, bias ? " bias" : "", fused ? " fused" : "",
             resid ? " resid" : "", cc.act, auto_pad ? auto_pad : "-");
    run_conv_case(&cc, desc);
}

static void test_conv(void) {
    /* name: N C M G H W kh kw sh sw dh dw pads(t l b r) */
    conv2d(1, 3, 8, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(2, 5, 7, 1, 8, 6, 3, 2, 2, 1, 1, 2, 0, 1, 2, 0, true, false, false, NULL, NULL);
    conv2d(1, 16, 24, 1, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, false, false, NULL, NULL);
    conv2d(2, 17, 13, 1, 5, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, false, false, false, NULL, NULL);
    conv2d(1, 8, 16, 1, 10, 10, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, true, false, false, NULL, NULL);
    conv2d(1, 3, 10, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 4, 6, 1, 2, 3, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, false, false, NULL, NULL);
    conv2d(1, 3, 64, 1, 30, 30, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, true, false, false, NULL, NULL);
    conv2d(2, 8, 12, 4, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 6, 9, 3, 7, 8, 3, 3, 2, 2, 2, 1, 0, 3, 1, 2, false, false, false, NULL, NULL);
    conv2d(1, 4, 4, 2, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, false, false, NULL, "SAME_UPPER");
    conv2d(1, 4, 5, 1, 7, 8, 4, 3, 2, 3, 1, 1, 0, 0, 0, 0, true, false, false, NULL, "SAME_LOWER");
    conv2d(1, 4, 5, 1, 7, 8, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true, false, false, NULL, "VALID");
    /* K blocking (Cin*k > kc) and wide outputs (P > nc). */
    conv2d(1, 40, 20, 1, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, true, "Relu", NULL);
    conv2d(1, 9, 14, 1, 40, 35, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 300, 70, 1, 6, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, true, true, "", NULL);
    /* Depthwise. */
    conv2d(1, 8, 8, 8, 12, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(2, 5, 5, 5, 13, 67, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 6, 6, 6, 9, 40, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, false, false, false, NULL, NULL);
    conv2d(1, 4, 4, 4, 11, 45, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, false, false, NULL, NULL);
    conv2d(1, 3, 3, 3, 7, 50, 3, 5, 1, 2, 1, 2, 0, 3, 1, 0, true, false, false, NULL, NULL);
    conv2d(1, 3, 3, 3, 10, 41, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 7, 7, 7, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, NULL, NULL);
    conv2d(1, 4, 4, 4, 6, 9, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true, false, false, NULL, "SAME_UPPER");
    conv2d(2, 6, 6, 6, 14, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, true, "HardSwish", NULL);
    conv2d(1, 6, 6, 6, 14, 34, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, true, true, "Relu", NULL);
    /* Fused: residual + every activation. */
    for (size_t a = 0; a < KILN_ARRAY_LEN(k_acts); a++) {
        conv2d(2, 6, 10, 1, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, a % 2 == 0,
               k_acts[a], NULL);
        conv2d(1, 16, 9, 1, 5, 19, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, a % 3 != 0, true, true,
               k_acts[a], NULL);
        conv2d(1, 5, 5, 5, 8, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, a % 2 == 1,
               k_acts[a], NULL);
    }
    /* 1-D and 3-D. */
    conv_case c1 = {1, 2, 5, 7, 1, {30}, {3}, {2}, {2}, {1, 2}, NULL, true, true, "Sigmoid", true};
    run_conv_case(&c1, "conv1d fused");
    conv_case c1d = {1, 1, 4, 4, 4, {41}, {3}, {1}, {1}, {1, 1}, NULL, true, false, "", false};
    run_conv_case(&c1d, "conv1d depthwise");
    conv_case c3 = {3, 1, 3, 6, 1, {5, 6, 7}, {3, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 1, 1, 0}, NULL,
                    true, false, "", false};
    run_conv_case(&c3, "conv3d");
    conv_case c3g = {3, 2, 4, 4, 2, {4, 5, 6}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 1, 1, 1}, NULL,
                     false, true, "LeakyRelu", true};
    run_conv_case(&c3g, "conv3d grouped fused");
}

/* Activation accuracy through the vector epilogue: Y = act(x * 1) on
** full tiles (K = 1, B all ones) for x over a wide spread of magnitudes;
** each result must be within 8 ulp of the scalar formula, or within a few
** ulp of x (the reference's own cancellation in 1 + erf for Gelu). */
static void test_act_accuracy(void) {
    enum { NX = 4096, NN = 64 };
    int64_t ad[2] = {NX, 1}, bd[2] = {1, NN};
    kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd);
    float *a = A->data, *b = B->data;
    for (int j = 0; j < NN; j++) b[j] = 1.0f;
    for (int i = 0; i < NX; i++) {
        double u = (double)i / NX;
        float x;
        if (i % 4 == 0) x = (float)(-30.0 + 60.0 * u);           /* wide */
        else if (i % 4 == 1) x = (float)(-4.0 + 8.0 * u);        /* core */
        else if (i % 4 == 2) x = (float)((u - 0.5) * 0.8);       /* near 0 */
        else x = (float)(ldexp(1.0, -(i % 40)) * (i % 8 < 4 ? 1 : -1));
        a[i] = x;
    }
    a[7] = 0.0f, a[11] = -0.0f, a[15] = 0.3f, a[19] = -0.3f, a[23] = 88.5f;
    a[27] = -88.5f, a[31] = 200.0f, a[35] = -200.0f, a[39] = 9.0f;
    const kiln_tensor *in[2] = {A, B};
    for (size_t k = 1; k < KILN_ARRAY_LEN(k_acts); k++) {
        ir_node *n = new_node(OP_FusedGemm, 2);
        set_act(n, k_acts[k]);
        fused_act fa;
        fused_act_read(n, &fa, NULL, 0);
        int64_t yd[2] = {NX, NN};
        kiln_tensor *want;
        if (tensor_new(KILN_DTYPE_FLOAT32, 2, yd, &want)) die("t");
        float *w = want->data;
        for (int i = 0; i < NX; i++)
            for (int j = 0; j < NN; j++) w[i * NN + j] = fused_act_f32(&fa, a[i]);
        const kiln_tactic *ts[16];
        int nt = tactics_for(OP_FusedGemm, ts);
        for (int t = 0; t < nt; t++) {
            kiln_tensor *got = run_tactic(ts[t], n, in, want, true);
            bool ok = got != NULL;
            double worst = 0, w64 = 0, r64 = 0;
            for (int64_t e = 0; ok && e < NX * NN; e++) {
                double tr = fused_act_f64(&fa, (double)a[e / NN]);
                if (fabs(tr) > 1e-30) {
                    float g0 = ((float *)got->data)[e];
                    w64 = fmax(w64, fabs(g0 - tr) / fabs(tr) / 1.19e-7);
                    r64 = fmax(r64, fabs(w[e] - tr) / fabs(tr) / 1.19e-7);
                }
                float g = ((float *)got->data)[e], r = w[e], x = a[e / NN];
                double err = fabs((double)g - (double)r);
                double tol = 8 * 1.19e-7 * fabs((double)r) + 4 * 6e-8 * fabs((double)x) + 1e-37;
                if (isnan(g) != isnan(r) || (!isnan(r) && !(err <= tol))) {
                    fprintf(stderr, "FAIL %s act %s: x=%.9g got %.9g want %.9g\n",
                            ts[t]->name, k_acts[k], x, g, r);
                    ok = false;
                }
                if (r != 0 && fabs(r) > 1e-30) worst = fmax(worst, err / fabs((double)r) / 1.19e-7);
            }
            if (getenv("KILN_TEST_VERBOSE"))
                printf("  act %-12s %-32s max %.2f ulp vs ref; vs exact: %.2f (ref %.2f)\n",
                       k_acts[k], ts[t]->name, worst, w64, r64);
            record_for(ts[t]->name, ok);
            tensor_free(got);
        }
        tensor_free(want);
    }
    tensor_free(A);
    tensor_free(B);
}

/* Two application threads run tactics at the same time (one gets the
** pool, the other runs serially); results must not change. */
typedef struct conc_arg {
    const kiln_tactic *t;
    ir_node *n;
    const kiln_tensor *const *in;
    const kiln_tensor *want;
    bool ok;
} conc_arg;

static void *conc_main(void *p) {
    conc_arg *a = p;
    a->ok = true;
    for (int r = 0; r < 20 && a->ok; r++) {
        kiln_tensor *y;
        if (tensor_new(KILN_DTYPE_FLOAT32, a->want->rank, a->want->dims, &y)) {
            a->ok = false;
            break;
        }
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = a->n;
        c.opset = 17;
        c.n_in = a->n->n_in;
        c.in = a->in;
        c.n_out = 1;
        kiln_tensor *outs[1] = {y};
        c.out = outs;
        if (a->t->run(&c) || memcmp(y->data, a->want->data, y->nbytes)) a->ok = false;
        tensor_free(y);
    }
    return NULL;
}

static void test_concurrent(void) {
    int64_t ad[2] = {70, 90}, bd[2] = {90, 110}, cd[1] = {110};
    kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd), *C = rand_tensor(1, cd);
    ir_node *n = new_node(OP_FusedGemm, 3);
    set_act(n, "Relu");
    const kiln_tensor *in[3] = {A, B, C};
    const kiln_tactic *ts[16];
    int nt = tactics_for(OP_FusedGemm, ts);
    kiln_set_num_threads(3);
    for (int k = 0; k < nt; k++) {
        /* Expected: the same tactic alone, single-threaded (bitwise equal:
        ** the split changes no summation order). */
        kiln_set_num_threads(1);
        kiln_tensor *want = run_ref(n, in);
        kiln_tensor *alone = want ? run_tactic(ts[k], n, in, want, false) : NULL;
        kiln_set_num_threads(3);
        bool ok = alone != NULL;
        if (ok) {
            conc_arg args[2] = {{ts[k], n, in, alone, false}, {ts[k], n, in, alone, false}};
            pthread_t th[2];
            int started = 0;
            for (; started < 2; started++)
                if (pthread_create(&th[started], NULL, conc_main, &args[started])) break;
            for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
            ok = started == 2 && args[0].ok && args[1].ok;
        }
        if (!ok) fprintf(stderr, "FAIL %s: concurrent runs differ\n", ts[k]->name);
        record_for(ts[k]->name, ok);
        tensor_free(want);
        tensor_free(alone);
    }
    kiln_set_num_threads(1);
    tensor_free(A);
    tensor_free(B);
    tensor_free(C);
}

/* The driver on pre-packed A and/or B must give bitwise the same result as
** packing on the fly (same blocking, same summation order). */
typedef struct pp_ctx {
    const float *a, *b, *c, *apre, *bpre;
    float *y;
    int64_t M, N, K;
    bool ta, tb;
    fused_act act;
} pp_ctx;

static void pp_get(const void *ctx, int64_t idx, cpu_gemm_prob *p) {
    (void)idx;
    const pp_ctx *q = ctx;
    memset(p, 0, sizeof *p);
    p->a = q->a;
    p->a_rs = q->ta ? 1 : q->K;
    p->a_cs = q->ta ? q->M : 1;
    p->b = q->b;
    p->b_rs = q->tb ? 1 : q->N;
    p->b_cs = q->tb ? q->K : 1;
    p->a_pre = q->apre;
    p->b_pre = q->bpre;
    p->y = q->y;
    p->ldy = q->N;
    p->epi.alpha = 1.0f;
    p->epi.beta = 1.0f;
    p->epi.c = q->c;
    p->epi.c_rs = 0;
    p->epi.c_cs = 1;
    p->epi.act = q->act;
}

static void test_prepack(void) {
    static const int64_t shapes[][3] = {{1, 5, 7}, {17, 300, 33}, {150, 70, 1100},
                                        {64, 513, 64}, {9, 16, 40}};
    const cpu_gemm_kernel *ks[3] = {&cpu_gemm_kernel_c, &cpu_gemm_kernel_avx2,
                                    &cpu_gemm_kernel_avx512};
    unsigned need[3] = {0, KILN_ISA_AVX2 | KILN_ISA_FMA,
                        KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA};
    for (int q = 0; q < 3; q++) {
        if (!ks[q]->available || (need[q] & ~g_host)) continue;
        bool ok = true;
        for (size_t s = 0; s < KILN_ARRAY_LEN(shapes); s++)
            for (int lay = 0; lay < 4; lay++) {
                int64_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
                int64_t ad[2] = {M, K}, bd[2] = {K, N}, cd[1] = {N}, yd[2] = {M, N};
                kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd);
                kiln_tensor *C = rand_tensor(1, cd), *Y[4];
                float *apre = malloc(cpu_gemm_packed_a_floats(ks[q], M, K) * sizeof(float) + 4);
                float *bpre = malloc(cpu_gemm_packed_b_floats(ks[q], K, N) * sizeof(float) + 4);
                if (!apre || !bpre) die("malloc");
                pp_ctx pc = {A->data, B->data, C->data, NULL, NULL, NULL, M, N, K,
                             lay & 1, (lay & 2) != 0, {FUSED_ACT_GELU, 0, 0}};
                cpu_gemm_prepack_a(ks[q], pc.a, pc.ta ? 1 : K, pc.ta ? M : 1, M, K, apre);
                cpu_gemm_prepack_b(ks[q], pc.b, pc.tb ? 1 : N, pc.tb ? K : 1, K, N, bpre);
                for (int v = 0; v < 4; v++) {
                    if (tensor_new(KILN_DTYPE_FLOAT32, 2, yd, &Y[v])) die("t");
                    pc.y = Y[v]->data;
                    pc.apre = v & 1 ? apre : NULL;
                    pc.bpre = v & 2 ? bpre : NULL;
                    ref_ctx c;
                    memset(&c, 0, sizeof c);
                    cpu_gemm_job job = {M, N, K, 1, pp_get, &pc};
                    kiln_set_num_threads(v == 3 ? 3 : 1);
                    if (cpu_gemm_run(&c, ks[q], &job)) ok = false;
                    /* Small M with a transposed B takes the dot-product path
                    ** (other order) unless A or B is pre-packed (an engine
                    ** may hold B only packed: kiln_tactic.blob_replaces):
                    ** variant 0 is dot, 1 to 3 packed. */
                    bool dot = M <= CPU_DOT_MAX_M && pc.tb && (!pc.ta || M == 1);
                    int base = dot && v ? 1 : 0;
                    if (v > base && memcmp(Y[v]->data, Y[base]->data, Y[0]->nbytes)) {
                        fprintf(stderr, "FAIL prepack %s M=%lld K=%lld N=%lld layout %d variant %d\n",
                                ks[q]->name, (long long)M, (long long)K, (long long)N, lay, v);
                        ok = false;
                    }
                }
                kiln_set_num_threads(1);
                for (int v = 0; v < 4; v++) tensor_free(Y[v]);
                tensor_free(A);
                tensor_free(B);
                tensor_free(C);
                free(apre);
                free(bpre);
            }
        record_for(ks[q]->name, ok);
    }
}

/* A blob made for other shapes, or damaged, is refused with "rebuild"
** instead of being read out of bounds; a good blob gives the same bytes as
** packing on the fly. */
static int run_blob(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                    kiln_tensor *y, const void *blob, size_t bn, char *err, size_t en) {
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    c.blob = blob;
    c.blob_size = bn;
    int rc = t->run(&c);
    snprintf(err, en, "%s", c.err);
    return rc;
}

/* Gemm with transB and few rows known statically: every run takes the
** dot-product path, which reads B^T in place, so no blob (B stays in the
** engine); more rows, or an unknown row count, get one. */
static void test_dot_no_blob(void) {
    const kiln_tactic *ts[16];
    int nt = tactics_for(OP_Gemm, ts);
    for (int k = 0; k < nt; k++) {
        const kiln_tactic *t = ts[k];
        if (!t->prepare) continue;
        ir_node *n = new_node(OP_Gemm, 2);
        if (!ir_edit_set_int(n, "transB", 1)) die("attr");
        int64_t bd[2] = {45, 70};
        kiln_tensor *B = rand_tensor(2, bd);
        const kiln_tensor *cin[2] = {NULL, B};
        ir_type tb = {KILN_DTYPE_FLOAT32, 2, {45, 70}};
        static const int64_t rows[] = {1, CPU_DOT_MAX_M, CPU_DOT_MAX_M + 1, -1};
        bool ok = true;
        for (size_t r = 0; r < KILN_ARRAY_LEN(rows); r++) {
            ir_type ta = {KILN_DTYPE_FLOAT32, 2, {rows[r], 70}};
            const ir_type *tin[2] = {&ta, &tb};
            void *blob = NULL;
            size_t bn = 0;
            if (t->prepare(n, tin, cin, &blob, &bn)) die("prepare");
            bool want = rows[r] < 0 || rows[r] > CPU_DOT_MAX_M;
            if (!!blob != want) {
                fprintf(stderr, "FAIL %s: Gemm transB with %lld rows: blob %d, want %d\n",
                        t->name, (long long)rows[r], !!blob, want);
                ok = false;
            }
            kiln_aligned_free(blob);
        }
        record_for(t->name, ok);
        tensor_free(B);
    }
}

static void test_prepared_blobs(void) {
    const kiln_tactic *ts[16];
    int nt = tactics_for(OP_MatMul, ts);
    for (int k = 0; k < nt; k++) {
        const kiln_tactic *t = ts[k];
        bool ok = t->prepare != NULL;
        ir_node *n = new_node(OP_MatMul, 2);
        int64_t ad[2] = {37, 70}, bd[2] = {70, 45}, bd2[2] = {70, 44}, yd[2] = {37, 45};
        kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd), *B2 = rand_tensor(2, bd2);
        kiln_tensor *Y0, *Y1;
        if (tensor_new(KILN_DTYPE_FLOAT32, 2, yd, &Y0) || tensor_new(KILN_DTYPE_FLOAT32, 2, yd, &Y1))
            die("t");
        ir_type ta = {KILN_DTYPE_FLOAT32, 2, {37, 70}}, tb = {KILN_DTYPE_FLOAT32, 2, {70, 45}};
        const ir_type *tin[2] = {&ta, &tb};
        const kiln_tensor *in[2] = {A, B}, *cin[2] = {NULL, B}, *in2[2] = {A, B2};
        void *blob = NULL, *blob2 = NULL;
        size_t bn = 0, bn2 = 0;
        char err[512] = "";
        if (ok && (t->prepare(n, tin, cin, &blob, &bn) || !blob)) ok = false;
        /* deterministic: a second prepare gives the same bytes */
        if (ok && (t->prepare(n, tin, cin, &blob2, &bn2) || bn2 != bn || memcmp(blob, blob2, bn)))
            ok = false;
        if (ok && (run_blob(t, n, in, Y0, NULL, 0, err, sizeof err) ||
                   run_blob(t, n, in, Y1, blob, bn, err, sizeof err) ||
                   memcmp(Y0->data, Y1->data, Y0->nbytes)))
            ok = false;
        /* B of another width: refused */
        if (ok && (run_blob(t, n, in2, Y1, blob, bn, err, sizeof err) == 0 ||
                   !strstr(err, "rebuild")))
            ok = false;
        /* truncated and damaged headers: refused */
        if (ok && (run_blob(t, n, in, Y1, blob, bn - 4, err, sizeof err) == 0 ||
                   !strstr(err, "rebuild")))
            ok = false;
        if (ok) {
            ((uint8_t *)blob2)[20] ^= 1; /* inside the kernel name */
            if (run_blob(t, n, in, Y1, blob2, bn, err, sizeof err) == 0 || !strstr(err, "rebuild"))
                ok = false;
        }
        /* a non-constant B gets no blob */
        void *none = (void *)1;
        size_t nn = 1;
        const kiln_tensor *nocin[2] = {NULL, NULL};
        if (t->prepare && (t->prepare(n, tin, nocin, &none, &nn) || none || nn)) ok = false;
        /* B stored only as prepared data, but the layer got none: refused */
        kiln_tensor Bh = *B;
        Bh.data = NULL;
        const kiln_tensor *inh[2] = {A, &Bh};
        if (ok && (t->blob_replaces & 2u) &&
            (run_blob(t, n, inh, Y1, NULL, 0, err, sizeof err) == 0 || !strstr(err, "rebuild")))
            ok = false;
        if (!ok) fprintf(stderr, "FAIL prepared blobs %s: %s\n", t->name, err);
        record_for(t->name, ok);
        kiln_aligned_free(blob);
        kiln_aligned_free(blob2);
        tensor_free(A);
        tensor_free(B);
        tensor_free(B2);
        tensor_free(Y0);
        tensor_free(Y1);
    }
}

/* Idle pool workers sleep: after a threaded GEMM, the process uses (next
** to) no CPU while nothing runs. Process CPU time, so a loaded machine does
** not make it flaky. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_idle_pool(void) {
    const kiln_tactic *ts[16];
    if (!tactics_for(OP_MatMul, ts)) return;
    ir_node *n = new_node(OP_MatMul, 2);
    int64_t ad[2] = {96, 200}, bd[2] = {200, 300}, yd[2] = {96, 300};
    kiln_tensor *A = rand_tensor(2, ad), *B = rand_tensor(2, bd), *Y;
    if (tensor_new(KILN_DTYPE_FLOAT32, 2, yd, &Y)) die("t");
    const kiln_tensor *in[2] = {A, B};
    kiln_set_num_threads(4);
    kiln_tensor *got = run_tactic(ts[0], n, in, Y, true); /* starts the workers */
    kiln_set_num_threads(1);
    struct timespec nap = {0, 100 * 1000 * 1000};
    nanosleep(&nap, NULL); /* past the bounded spin */
    double c0 = cpu_seconds();
    nap.tv_nsec = 500 * 1000 * 1000;
    nanosleep(&nap, NULL);
    double used = cpu_seconds() - c0;
    bool ok = got && used < 0.02;
    if (!ok) fprintf(stderr, "FAIL idle pool: %.3f s of CPU in 0.5 s idle\n", used);
    else printf("idle pool: %.4f s of CPU in 0.5 s idle\n", used);
    record(ok);
    tensor_free(got);
    tensor_free(Y);
    tensor_free(A);
    tensor_free(B);
}

/* The pool itself: every task of every job runs exactly once whatever the
** thread count, with jobs back to back (workers still spinning), after a
** pause (workers asleep: some wake after the caller ran out of tasks and
** must stay out of the job), nested calls, and scratch of the asked size. */
typedef struct pool_job {
    _Atomic int *hits;
    int64_t n;
    size_t scratch;
    _Atomic int bad;
} pool_job;

static void pool_task(void *arg, int64_t t, int tid, void *scratch) {
    pool_job *j = arg;
    if (t < 0 || t >= j->n || tid < 0 || (tid > 0 && j->scratch && !scratch)) j->bad = 1;
    if (scratch && j->scratch) memset(scratch, 0x5a, j->scratch);
    atomic_fetch_add(&j->hits[t], 1);
}

static void pool_nested(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    pool_job *j = arg;
    _Atomic int inner[3] = {0, 0, 0};
    pool_job in = {inner, 3, 0, 0};
    cpu_parallel_for(3, 4, 0, NULL, pool_task, &in); /* runs serially */
    if (inner[0] != 1 || inner[1] != 1 || inner[2] != 1) j->bad = 1;
    atomic_fetch_add(&j->hits[t], 1);
}

static void test_pool(void) {
    enum { MAXT = 97 };
    _Atomic int hits[MAXT];
    char caller_scratch[256];
    bool ok = true;
    for (int it = 0; it < 3000 && ok; it++) {
        int64_t n = 1 + (int64_t)(rnd() * MAXT);
        /* up to 17 threads: more workers than cores here, so workers
        ** join late, get descheduled mid-job and miss whole jobs */
        int th = 1 + (int)(rnd() * (it % 3 == 2 ? 17 : 4));
        for (int64_t t = 0; t < n; t++) hits[t] = 0;
        pool_job j = {hits, n, rnd() < 0.5 ? 256 : 0, 0};
        if (it % 500 == 499) {
            struct timespec nap = {0, 2 * 1000 * 1000}; /* past the spin */
            nanosleep(&nap, NULL);
        }
        cpu_parallel_for(n, th, j.scratch, caller_scratch, it % 7 == 3 ? pool_nested : pool_task,
                         &j);
        for (int64_t t = 0; t < n; t++) ok = ok && hits[t] == 1;
        ok = ok && !j.bad;
        if (!ok)
            fprintf(stderr, "FAIL pool: job %d (%lld tasks, %d threads) ran a task "
                    "twice, never, or badly\n", it, (long long)n, th);
    }
    record(ok);
}

/* The backend's cache eviction (cold tactic timing): whole lines around
** an unaligned range of odd length, on 1 and 17 threads, leaves the data
** as it was and the pool usable; NULL and empty ranges are no-ops. */
static void test_evict(void) {
    const kiln_backend_ops *be = kiln_backend_cpu();
#ifdef CPU_HAVE_EVICT
    bool ok = be->evict != NULL;
    size_t n = 3 * 256 * 1024 + 4097;
    unsigned char *buf = malloc(n + 64);
    if (!buf) die("malloc");
    for (size_t i = 0; i < n + 64; i++) buf[i] = (unsigned char)(i * 7 + 3);
    for (int th = 1; th <= 17 && ok; th += 16) {
        kiln_set_num_threads(th);
        be->evict(buf + 5, n);
        be->evict(NULL, 100);
        be->evict(buf, 0);
    }
    kiln_set_num_threads(1);
    for (size_t i = 0; i < n + 64; i++) ok = ok && buf[i] == (unsigned char)(i * 7 + 3);
    free(buf);
    if (!ok) fprintf(stderr, "FAIL evict: data changed or no evict hook\n");
    record(ok);
#else
    record(be->evict == NULL);
#endif
}

/* kiln_set_num_threads(0): one thread per physical core of the affinity
** mask; pinned to one CPU that is 1. */
static void test_physical_cores(void) {
    int saved = kiln_get_num_threads();
    kiln_set_num_threads(0);
    int all = kiln_get_num_threads();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    bool ok = all >= 1 && all <= (online > 0 ? online : 1) && all == cpu_physical_cores();
#if defined(__linux__)
    cpu_set_t old, one;
    if (sched_getaffinity(0, sizeof old, &old) == 0) {
        int first = 0;
        while (first < CPU_SETSIZE && !CPU_ISSET(first, &old)) first++;
        CPU_ZERO(&one);
        CPU_SET(first, &one);
        if (first < CPU_SETSIZE && sched_setaffinity(0, sizeof one, &one) == 0) {
            kiln_set_num_threads(0);
            ok &= kiln_get_num_threads() == 1;
            sched_setaffinity(0, sizeof old, &old);
        }
    }
#endif
    if (!ok) fprintf(stderr, "FAIL physical cores: %d of %ld online\n", all, online);
    else printf("physical cores: %d (%ld online)\n", all, online);
    kiln_set_num_threads(saved);
    record(ok);
}

/* dtype gate: non-float32 inputs are declined. */
static void test_supports(void) {
    ir_node *n = new_node(OP_MatMul, 2);
    ir_type a = {KILN_DTYPE_FLOAT16, 2, {4, 4}}, b = a;
    const ir_type *in[2] = {&a, &b};
    bool ok = true;
    for (const kiln_tactic *const *t = cpu_tactic_table; *t; t++)
        if ((*t)->op == OP_MatMul && (*t)->supports && (*t)->supports(n, in)) ok = false;
    /* symbolic dims are accepted */
    a.dtype = b.dtype = KILN_DTYPE_FLOAT32;
    a.dims[0] = IR_SYM(0);
    if (!cpu_t_matmul_c.supports(n, in)) ok = false;
    if (!ok) fprintf(stderr, "FAIL supports() gate\n");
    record(ok);
}

int main(int argc, char **argv) {
    g_only = argc > 1 ? argv[1] : NULL;
    g_host = kiln_backend_cpu()->host_isa();
    char isa[64];
    printf("host isa: %s\n", kiln_isa_names(g_host, isa, sizeof isa));
    g_model = ir_model_new();
    if (!g_model) die("model");
    g_model->opset = 17;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) die("graph");
    g_model->graph = g_graph;
    test_supports();
    test_act_accuracy();
    test_concurrent();
    test_prepack();
    test_prepared_blobs();
    test_dot_no_blob();
    test_idle_pool();
    test_pool();
    test_evict();
    test_physical_cores();
    test_gemm();
    test_gemm_residual();
    test_gemm_small_m();
    test_conv();
    printf("runs on prepared weights: %d (%d with the replaced input's data NULL)\n",
           g_prepared_runs, g_no_data_runs);
    if (g_prepared_runs == 0 || g_no_data_runs == 0) {
        fprintf(stderr, "FAIL no tactic ran on prepared weights\n");
        g_fail++;
    }
    ir_model_free(g_model);
    for (int i = 0; i < 64 && g_names[i]; i++)
        printf("  %-40s %d checks\n", g_names[i], g_counts[i]);
    return test_summary();
}
