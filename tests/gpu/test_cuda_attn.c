/* test_cuda_attn.c: the attention tactics (cuBLASLt + softmax, and the
** fused flash kernel) against the reference Attention kernel: 4-D and 3-D
** (q_num_heads/kv_num_heads) layouts, grouped-query heads, Sq != T, odd
** sizes and sequence lengths off the 64-row tiles (1, 7, 129, 384), head
** dims 64/128 and others the flash kernel declines, no mask / bool / float
** masks of every broadcast shape and shorter than T, a float mask whose
** first key tile is all -inf, causal, softcap, explicit and default scale,
** nonpad_kv_seqlen, a fully masked row (NaN as the reference, or 0 with
** Kiln's kiln_masked_rows_zero); batch 1 to
** 64; f32 (1e-4), f16 and bf16. The flash kernel's v2 paths get their own
** cases (row-invariant masks in the per-tile bias row, with and without
** causal/softcap; S = 1, 63..65, 127..129, 300; a batch masked whole), and
** its element-wise (unaligned) path runs through the C seam for both v2 and
** the v1 kernel kept for A/B. The tolerance is relative to max |V| (each
** output is a convex combination of V rows). A tactic that declines a case
** it should take (flash: f16/bf16 with Dh == Dv in {32, 64, 128}) fails.
** The flash kernel's v3 (128 query rows a block, head dims 32/64): every
** f16/bf16 case the flash tactic takes runs three times, as the tactic
** chooses, with v3 forced (KILN_ATTN_V3=1, whatever the shape) and with v2
** forced (KILN_ATTN_V3=0), each against the reference, and v3 against v2
** (the same math per row: equal to within one unit in the last place of
** max |V|; the summary line counts how many were identical bit for bit);
** plus random v3 shapes (Sq 128/129/200/256/384, T != Sq, batch 1 and odd,
** 1..16 heads, no / [B,1,1,T] / [B,1,Sq,T] masks, causal, packed and
** separate Q/K/V) and a BERT-like grid big enough for the tactic's own choice
** to be v3 on an H100.
** argv[1] optionally filters tactics by name. */
#include "gpu_test.h"

#include <float.h>

#include "../../src/backends/cuda/kernels/attn_kernels.h"

typedef struct attn_case {
    int rank;                    /* 3 or 4 */
    int64_t B, Hq, Hkv, Sq, T, Dh, Dv;
    int mask;                    /* 0 none, 1 bool, 2 float */
    int mrank;                   /* mask rank 1..4 */
    int64_t mdims[4];
    bool causal, npad, scale;
    float softcap;
    bool dead_row;               /* bool mask with one row all false */
    bool late;                   /* float mask: columns < 70 are -inf */
    bool dead_zero;              /* kiln_masked_rows_zero: dead rows give 0 */
    bool m32;                    /* float mask in float32 whatever Q's type */
    bool finfo;                  /* float mask of 0 / -FLT_MAX (HF's finfo.min),
                                    its first row -FLT_MAX throughout (a
                                    uniform row in the reference, not NaN) */
    bool packed;                 /* rank 3, Sq == T: the tactics get Q, K, V
                                    packed in one [B, S, Nq+Nk+Nv] input
                                    (kiln_qkv_packed, passes/qkv.c); the
                                    reference runs them unpacked */
} attn_case;

/* Q, K, V (3-D, same B and S) side by side in one tensor. */
static kiln_tensor *pack_qkv(const kiln_tensor *q, const kiln_tensor *k, const kiln_tensor *v,
                             int64_t w[3]) {
    const kiln_tensor *part[3] = {q, k, v};
    for (int i = 0; i < 3; i++) w[i] = part[i]->dims[2];
    int64_t nt = w[0] + w[1] + w[2], pd[3] = {q->dims[0], q->dims[1], nt};
    kiln_tensor *p = tensor_with(q->dtype, 3, pd, NULL);
    size_t es = 0;
    dtype_nbytes(q->dtype, 1, &es);
    for (int64_t r = 0; r < pd[0] * pd[1]; r++) {
        int64_t col = 0;
        for (int i = 0; i < 3; i++) {
            memcpy((char *)p->data + (size_t)(r * nt + col) * es,
                   (const char *)part[i]->data + (size_t)(r * w[i]) * es, (size_t)w[i] * es);
            col += w[i];
        }
    }
    return p;
}

/* v3 against v2 comparisons: cases, and those identical bit for bit. */
static int g_v3_cmp, g_v3_same;

/* Whether the run is run.sh's v1 variant (KILN_ATTN_KERNEL=v1: the tactic
** then runs v1 whatever KILN_ATTN_V3 says, so there is no v3 to compare). */
static bool v1_only(void) {
    const char *e = getenv("KILN_ATTN_KERNEL");
    return e && !strcmp(e, "v1");
}

/* Sets KILN_ATTN_V3 (NULL: unsets it). */
static void set_v3(const char *v) {
    if (v) setenv("KILN_ATTN_V3", v, 1);
    else unsetenv("KILN_ATTN_V3");
}

/* Whether v3's output x matches v2's y to within one unit in the last place
** of the magnitude vmax (NaN where the other is NaN); counts identical ones. */
static bool v3_matches_v2(const char *desc, const kiln_tensor *x, const kiln_tensor *y,
                          double vmax) {
    g_v3_cmp++;
    if (x->nbytes != y->nbytes) {
        fprintf(stderr, "FAIL %s: v3 and v2 outputs differ in size\n", desc);
        return false;
    }
    if (!memcmp(x->data, y->data, x->nbytes)) {
        g_v3_same++;
        return true;
    }
    const double ulp = (x->dtype == KILN_DTYPE_FLOAT16 ? 0x1p-10 : 0x1p-7) * fmax(vmax, 1e-3);
    int64_t n = tensor_numel(x), bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = dt_get_f64(x->dtype, x->data, (size_t)i);
        double b = dt_get_f64(y->dtype, y->data, (size_t)i);
        bool ok = isnan(a) || isnan(b) ? isnan(a) && isnan(b) : fabs(a - b) <= ulp;
        if (!ok && first < 0) first = i;
        bad += !ok;
        if (!isnan(a) && !isnan(b)) worst = fmax(worst, fabs(a - b));
    }
    if (bad) {
        fprintf(stderr,
                "FAIL %s: v3 differs from v2 at %lld of %lld outputs (first %lld: %g vs %g), "
                "max |v3 - v2| %g > %g\n",
                desc, (long long)bad, (long long)n, (long long)first,
                dt_get_f64(x->dtype, x->data, (size_t)first),
                dt_get_f64(y->dtype, y->data, (size_t)first), worst, ulp);
        return false;
    }
    return true;
}

/* Whether tactic t must take the case in dtype dt. */
static bool expect_taken(const kiln_tactic *t, const attn_case *ac, kiln_dtype dt) {
    if (!strstr(t->name, "flash")) return true;
    return dt != KILN_DTYPE_FLOAT32 && ac->Dh == ac->Dv &&
           (ac->Dh == 32 || ac->Dh == 64 || ac->Dh == 128);
}

/* The flash tactic on one case with v3 forced, then v2 forced: each against
** the reference, then v3 against v2. KILN_ATTN_V3 is restored after. */
static void run_v3_v2(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                      const kiln_tensor *want, double vmax, kiln_dtype dt, const char *desc) {
    const char *env = getenv("KILN_ATTN_V3");
    char *saved = env ? strdup(env) : NULL;
    kiln_tensor *got[2] = {NULL, NULL};
    static const char *const mode[2] = {"1", "0"}, *const name[2] = {"v3", "v2"};
    char d2[480];
    for (int i = 0; i < 2; i++) {
        bool declined;
        set_v3(mode[i]);
        got[i] = gt_run(t, n, in, want, &declined);
        snprintf(d2, sizeof d2, "%s (%s forced)", desc, name[i]);
        if (!got[i]) {
            fprintf(stderr, "FAIL %s %s: %s\n", t->name, d2, declined ? "declined" : "did not run");
            g_fail++;
        } else if (gt_compare(t->name, d2, got[i], want, NULL, vmax, gt_rtol(dt))) {
            g_pass++;
        } else {
            g_fail++;
        }
    }
    set_v3(saved);
    free(saved);
    snprintf(d2, sizeof d2, "%s %s (v3 vs v2)", t->name, desc);
    if (got[0] && got[1]) {
        if (v3_matches_v2(d2, got[0], got[1], vmax)) g_pass++;
        else g_fail++;
    }
    tensor_free(got[0]);
    tensor_free(got[1]);
}

static void run_case(const attn_case *ac, kiln_dtype dt, const char *what) {
    int64_t qd[4], kd[4], vd[4];
    if (ac->rank == 4) {
        int64_t q[4] = {ac->B, ac->Hq, ac->Sq, ac->Dh}, k[4] = {ac->B, ac->Hkv, ac->T, ac->Dh};
        int64_t v[4] = {ac->B, ac->Hkv, ac->T, ac->Dv};
        memcpy(qd, q, sizeof q), memcpy(kd, k, sizeof k), memcpy(vd, v, sizeof v);
    } else {
        int64_t q[3] = {ac->B, ac->Sq, ac->Hq * ac->Dh}, k[3] = {ac->B, ac->T, ac->Hkv * ac->Dh};
        int64_t v[3] = {ac->B, ac->T, ac->Hkv * ac->Dv};
        memcpy(qd, q, sizeof q), memcpy(kd, k, sizeof k), memcpy(vd, v, sizeof v);
    }
    kiln_tensor *Q = gt_rand(dt, ac->rank, qd, 1.0), *K = gt_rand(dt, ac->rank, kd, 1.0);
    kiln_tensor *V = gt_rand(dt, ac->rank, vd, 1.0), *M = NULL, *NP = NULL;
    if (ac->mask == 1) {
        M = gt_rand(KILN_DTYPE_BOOL, ac->mrank, ac->mdims, 1.0);
        uint8_t *p = M->data;
        int64_t n = tensor_numel(M), last = ac->mdims[ac->mrank - 1];
        for (int64_t i = 0; i < n; i++) p[i] = rnd() < 0.75 || i % last == 0; /* a live column */
        if (ac->dead_row && n >= last)
            for (int64_t i = 0; i < last; i++) p[i] = 0;
    } else if (ac->mask == 2) {
        M = gt_rand(ac->m32 ? KILN_DTYPE_FLOAT32 : dt, ac->mrank, ac->mdims, 2.0);
        if (ac->finfo) { /* the lowest finite value of the mask's type */
            double lo = M->dtype == KILN_DTYPE_FLOAT16    ? -65504.0
                        : M->dtype == KILN_DTYPE_BFLOAT16 ? -3.3895313892515355e38
                                                          : -(double)FLT_MAX;
            int64_t n = tensor_numel(M), last = ac->mdims[ac->mrank - 1];
            for (int64_t i = 0; i < n; i++)
                dt_set_f64(M->dtype, M->data, (size_t)i, i < last || rnd() < 0.3 ? lo : 0.0);
        }
        if (ac->late) {
            int64_t n = tensor_numel(M), last = ac->mdims[ac->mrank - 1];
            for (int64_t i = 0; i < n; i++)
                if (i % last < 70) dt_set_f64(M->dtype, M->data, (size_t)i, -INFINITY);
        }
    }
    if (ac->npad) {
        int64_t nd[1] = {ac->B};
        NP = tensor_with(KILN_DTYPE_INT64, 1, nd, NULL);
        for (int64_t b = 0; b < ac->B; b++)
            ((int64_t *)NP->data)[b] = b == 0 ? ac->T : 1 + (int64_t)(rnd() * (double)ac->T);
    }
    int n_in = ac->npad ? 7 : M ? 4 : 3;
    ir_node *n = gt_node(OP_Attention, n_in);
    if (ac->rank == 3) {
        ir_edit_set_int(n, "q_num_heads", ac->Hq);
        ir_edit_set_int(n, "kv_num_heads", ac->Hkv);
    }
    if (ac->scale) ir_edit_set_float(n, "scale", 0.3f);
    if (ac->causal) ir_edit_set_int(n, "is_causal", 1);
    if (ac->softcap > 0) ir_edit_set_float(n, "softcap", ac->softcap);
    if (ac->dead_zero) ir_edit_set_int(n, "kiln_masked_rows_zero", 1);
    const kiln_tensor *in[7] = {Q, K, V, M, NULL, NULL, NP};
    kiln_tensor *want = gt_ref(n, in);
    /* packed: the reference's answer above, the tactics on the packed node */
    kiln_tensor *PK = NULL;
    const kiln_tensor *pin[7] = {NULL, NULL, NULL, M, NULL, NULL, NP};
    ir_node *run_n = n;
    const kiln_tensor *const *run_in = in;
    if (ac->packed) {
        int64_t w[3];
        PK = pack_qkv(Q, K, V, w);
        pin[0] = PK;
        run_n = gt_node(OP_Attention, n_in);
        if (!ir_edit_copy_attrs(run_n, n) || !ir_edit_set_ints(run_n, "kiln_qkv_packed", w, 3))
            gt_die("attrs");
        run_in = pin;
    }
    char desc[400];
    snprintf(desc, sizeof desc,
             "%s %s [rank %d B %lld Hq %lld Hkv %lld Sq %lld T %lld Dh %lld Dv %lld mask %d/%d "
             "(%lld,%lld,%lld,%lld) causal %d npad %d softcap %g late %d dead %d/%d m32 %d finfo %d"
             "%s]",
             what, gt_dtype_name(dt), ac->rank, (long long)ac->B, (long long)ac->Hq,
             (long long)ac->Hkv, (long long)ac->Sq, (long long)ac->T, (long long)ac->Dh,
             (long long)ac->Dv, ac->mask, ac->mrank, (long long)ac->mdims[0],
             (long long)ac->mdims[1], (long long)ac->mdims[2], (long long)ac->mdims[3],
             (int)ac->causal, (int)ac->npad, (double)ac->softcap, (int)ac->late,
             (int)ac->dead_row, (int)ac->dead_zero, (int)ac->m32, (int)ac->finfo,
             ac->packed ? " packed" : "");
    double vmax = 0;
    for (int64_t i = 0; i < tensor_numel(V); i++)
        vmax = fmax(vmax, fabs(dt_get_f64(dt, V->data, (size_t)i)));
    if (!want) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else if (ac->finfo && tensor_numel(want) > 0 && isnan(dt_get_f64(dt, want->data, 0))) {
        fprintf(stderr, "FAIL %s: reference gives NaN for a row padded with finfo.min\n", desc);
        g_fail++;
    } else if (ac->dead_row && tensor_numel(want) > 0 &&
               (ac->dead_zero ? dt_get_f64(dt, want->data, 0) != 0.0
                              : !isnan(dt_get_f64(dt, want->data, 0)))) {
        /* the test's own check: element 0 is in a dead row */
        fprintf(stderr, "FAIL %s: reference gives %g for a dead row\n", desc,
                dt_get_f64(dt, want->data, 0));
        g_fail++;
    } else {
        const kiln_tactic *ts[4];
        int nt = gt_tactics(cuda_tactics_attn, OP_Attention, ts, 4);
        for (int k = 0; k < nt; k++) {
            bool declined;
            kiln_tensor *got = gt_run(ts[k], run_n, run_in, want, &declined);
            if (!got && declined && !expect_taken(ts[k], ac, dt)) {
                g_declined++;
                continue;
            }
            if (!got) {
                fprintf(stderr,
                        "FAIL %s %s: %s (rank %d B %lld Hq %lld Hkv %lld Sq %lld T %lld Dh %lld "
                        "Dv %lld)\n",
                        ts[k]->name, desc, declined ? "declined" : "did not run", ac->rank,
                        (long long)ac->B, (long long)ac->Hq, (long long)ac->Hkv,
                        (long long)ac->Sq, (long long)ac->T, (long long)ac->Dh,
                        (long long)ac->Dv);
                g_fail++;
                continue;
            }
            if (got && !declined && !expect_taken(ts[k], ac, dt)) {
                fprintf(stderr, "note: %s took %s, which the test expected it to decline\n",
                        ts[k]->name, desc);
            }
            if (gt_compare(ts[k]->name, desc, got, want, NULL, vmax, gt_rtol(dt))) g_pass++;
            else g_fail++;
            tensor_free(got);
            if (strstr(ts[k]->name, "flash") && dt != KILN_DTYPE_FLOAT32 &&
                kc_attn_flash_v3_head_dim_ok(ac->Dh) && !g_dry && !v1_only())
                run_v3_v2(ts[k], run_n, run_in, want, vmax, dt, desc);
        }
    }
    tensor_free(want);
    tensor_free(PK);
    tensor_free(Q);
    tensor_free(K);
    tensor_free(V);
    tensor_free(M);
    tensor_free(NP);
}

static attn_case base(int rank, int64_t B, int64_t Hq, int64_t Hkv, int64_t Sq, int64_t T,
                      int64_t Dh, int64_t Dv) {
    attn_case a;
    memset(&a, 0, sizeof a);
    a.rank = rank;
    a.B = B, a.Hq = Hq, a.Hkv = Hkv, a.Sq = Sq, a.T = T, a.Dh = Dh, a.Dv = Dv;
    return a;
}

static void with_mask(attn_case *a, int kind, int mrank, int64_t d0, int64_t d1, int64_t d2,
                      int64_t d3) {
    int64_t all[4] = {d0, d1, d2, d3};
    a->mask = kind;
    a->mrank = mrank;
    memcpy(a->mdims, all + 4 - mrank, (size_t)mrank * sizeof(int64_t));
}

static void test_attn(kiln_dtype dt) {
    char d[64];
    int idx = 0;
#define RUN(A)                                                        \
    do {                                                              \
        snprintf(d, sizeof d, "case %d (line %d)", idx++, __LINE__);  \
        run_case(&(A), dt, d);                                        \
    } while (0)
    attn_case a;
    a = base(4, 2, 3, 3, 7, 7, 16, 16); RUN(a);
    a = base(4, 1, 2, 2, 5, 13, 24, 8); a.scale = true; RUN(a);               /* Sq != T */
    a = base(4, 2, 4, 2, 6, 9, 8, 12); RUN(a);                                /* GQA */
    a = base(4, 2, 4, 1, 6, 6, 8, 8); a.causal = true; RUN(a);                /* MQA, causal */
    a = base(4, 2, 3, 3, 7, 7, 16, 16); with_mask(&a, 1, 2, 0, 0, 7, 7); RUN(a);
    a = base(4, 2, 3, 3, 5, 9, 16, 16); with_mask(&a, 2, 4, 2, 1, 5, 9); RUN(a);
    a = base(4, 2, 3, 3, 5, 9, 16, 16); with_mask(&a, 1, 4, 2, 1, 1, 9); RUN(a); /* padding */
    a = base(4, 2, 3, 3, 5, 9, 16, 16); with_mask(&a, 2, 4, 1, 3, 5, 6); RUN(a); /* short */
    a = base(4, 1, 2, 2, 4, 4, 8, 8); with_mask(&a, 1, 2, 0, 0, 4, 4); a.dead_row = true; RUN(a);
    a = base(4, 2, 2, 2, 6, 6, 8, 8); a.softcap = 2.0f; a.causal = true; RUN(a);
    a = base(4, 3, 2, 2, 5, 8, 8, 8); a.npad = true; RUN(a);
    a = base(4, 2, 12, 12, 128, 128, 64, 64); with_mask(&a, 2, 4, 2, 1, 1, 128); RUN(a); /* BERT */
    /* 3-D: batch over heads (B <= H), over batch (B > H), grouped */
    a = base(3, 1, 4, 4, 9, 9, 16, 16); RUN(a);
    a = base(3, 2, 12, 12, 33, 33, 64, 64); with_mask(&a, 1, 4, 2, 1, 1, 33); RUN(a);
    a = base(3, 5, 2, 2, 6, 11, 8, 4); a.scale = true; RUN(a);
    a = base(3, 3, 6, 2, 7, 7, 8, 8); a.causal = true; RUN(a);
    a = base(3, 2, 4, 4, 5, 5, 12, 12); with_mask(&a, 2, 3, 0, 4, 5, 5); RUN(a);
    a = base(3, 2, 2, 2, 3, 3, 1, 1); RUN(a);                                 /* D = 1 */
    a = base(4, 1, 1, 1, 1, 1, 8, 8); RUN(a);                                 /* 1 x 1 */
    a = base(4, 2, 2, 2, 0, 5, 8, 8); RUN(a);                                 /* Sq = 0 */
    /* the flash kernel's shapes: head dims 32/64/128, rows and keys off
    ** the 64-row tiles */
    a = base(4, 1, 2, 2, 1, 1, 64, 64); RUN(a);                               /* seq 1 */
    a = base(4, 2, 3, 3, 7, 7, 64, 64); RUN(a);
    a = base(4, 1, 2, 2, 129, 129, 64, 64); RUN(a);
    a = base(4, 1, 2, 2, 384, 384, 64, 64); with_mask(&a, 2, 4, 1, 1, 1, 384); RUN(a);
    a = base(4, 2, 2, 2, 129, 129, 128, 128); a.causal = true; RUN(a);
    a = base(4, 1, 2, 2, 7, 200, 128, 128); a.scale = true; RUN(a);          /* T > Sq */
    a = base(4, 1, 2, 2, 200, 7, 64, 64); RUN(a);                            /* T < Sq */
    a = base(4, 1, 2, 2, 130, 70, 32, 32); a.causal = true; RUN(a);          /* causal, T < Sq */
    a = base(4, 2, 2, 2, 65, 65, 80, 80); RUN(a);                            /* Dh 80: declined */
    a = base(4, 2, 2, 2, 65, 65, 64, 32); RUN(a);                            /* Dh != Dv */
    a = base(4, 2, 8, 2, 70, 70, 64, 64); a.causal = true; RUN(a);           /* GQA */
    a = base(3, 2, 8, 2, 70, 90, 128, 128); RUN(a);                          /* 3-D GQA */
    a = base(3, 1, 4, 1, 1, 77, 64, 64); a.causal = true; RUN(a);            /* decode-like MQA */
    /* every mask broadcast form, bool and float */
    for (int kind = 1; kind <= 2; kind++) {
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 1, 0, 0, 0, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 2, 0, 0, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 2, 0, 0, 1, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 3, 0, 3, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 3, 0, 3, 1, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 3, 0, 1, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 4, 2, 1, 1, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 4, 2, 3, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 4, 1, 1, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 4, 2, 1, 67, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 67, 64, 64); with_mask(&a, kind, 4, 1, 3, 1, 67); RUN(a);
        a = base(4, 2, 3, 3, 67, 90, 64, 64); with_mask(&a, kind, 4, 2, 1, 1, 70); RUN(a); /* short */
        a = base(3, 2, 3, 3, 67, 67, 128, 128); with_mask(&a, kind, 4, 2, 1, 1, 67); a.causal = true; RUN(a);
    }
    a = base(4, 1, 2, 2, 6, 6, 64, 64); with_mask(&a, 1, 2, 0, 0, 6, 6); a.dead_row = true; RUN(a);
    /* kiln_masked_rows_zero: the dead row gives 0 (both tactics), live rows
    ** as before; npad 0-length batches are dead too */
    a = base(4, 1, 2, 2, 6, 6, 64, 64); with_mask(&a, 1, 2, 0, 0, 6, 6); a.dead_row = true;
    a.dead_zero = true; RUN(a);
    a = base(3, 2, 4, 4, 70, 70, 64, 64); with_mask(&a, 1, 4, 2, 1, 1, 70); a.dead_row = true;
    a.dead_zero = true; RUN(a);
    a = base(4, 1, 2, 2, 4, 4, 16, 16); with_mask(&a, 1, 2, 0, 0, 4, 4); a.dead_row = true;
    a.dead_zero = true; RUN(a);
    a = base(4, 2, 2, 2, 100, 140, 64, 64); with_mask(&a, 2, 4, 2, 1, 100, 140); a.late = true; RUN(a);
    /* float32 masks with half Q/K/V (the precision pass keeps them), HF's
    ** finfo.min padding with a row padded throughout */
    a = base(3, 2, 4, 4, 67, 67, 64, 64); with_mask(&a, 2, 4, 2, 1, 1, 67); a.m32 = true; RUN(a);
    a = base(4, 2, 2, 2, 70, 70, 64, 64); with_mask(&a, 2, 4, 2, 1, 70, 70); a.m32 = true;
    a.finfo = true; RUN(a);
    a = base(3, 2, 4, 4, 33, 100, 128, 128); with_mask(&a, 2, 2, 0, 0, 33, 100); a.m32 = true;
    a.finfo = true; RUN(a);
    a = base(4, 1, 2, 2, 20, 130, 64, 64); with_mask(&a, 2, 4, 1, 1, 20, 130); a.finfo = true;
    RUN(a);                                                         /* mask in Q's type */
    a = base(4, 2, 2, 2, 70, 70, 64, 64); a.softcap = 3.0f; a.causal = true; RUN(a);
    a = base(4, 3, 2, 2, 70, 130, 64, 64); a.npad = true; RUN(a);
    /* BERT-base attention at batch 1 and 64 (3-D, [B,1,1,T] additive mask) */
    a = base(3, 1, 12, 12, 128, 128, 64, 64); with_mask(&a, 2, 4, 1, 1, 1, 128); RUN(a);
    a = base(3, 64, 2, 2, 128, 128, 64, 64); with_mask(&a, 2, 4, 64, 1, 1, 128); RUN(a);
    a = base(4, 64, 2, 2, 33, 33, 128, 128); with_mask(&a, 1, 4, 64, 1, 1, 33); RUN(a);
    /* the v2 flash kernel's paths: without per-row masks, causal or softcap
    ** (the fast instance: no mask, or a row-invariant mask folded into a
    ** per-tile bias row), and with them (the full instance); key counts at
    ** and around the 64-key tiles and the two-tile (S = 128) pipeline, one
    ** key, many tiles; every head dim; batch 1 and many blocks */
    {
        static const int64_t seqs[] = {1, 63, 64, 65, 127, 128, 129, 300};
        static const int64_t dims[] = {32, 64, 128};
        for (int si = 0; si < 8; si++) {
            int64_t S = seqs[si], D = dims[si % 3];
            a = base(3, 3, 4, 4, S, S, D, D); with_mask(&a, 1, 4, 3, 1, 1, S); RUN(a);
            a = base(4, 1, 3, 3, S, S, D, D); with_mask(&a, 2, 4, 1, 1, 1, S); RUN(a);
            a = base(4, 2, 2, 2, S, S, dims[(si + 1) % 3], dims[(si + 1) % 3]); RUN(a);
            a = base(3, 2, 2, 2, S, S, dims[(si + 2) % 3], dims[(si + 2) % 3]);
            with_mask(&a, 1, 4, 2, 1, 1, S); a.causal = true; RUN(a);
        }
    }
    /* packed Q/K/V (passes/qkv.c): BERT's shape, GQA, MQA, head dims
    ** 32/64/128 and ones the flash kernel declines, Dh != Dv, masks bool and
    ** float of [B,1,1,S] and [B,1,S,S], causal, S off the tiles */
    a = base(3, 2, 12, 12, 128, 128, 64, 64); with_mask(&a, 2, 4, 2, 1, 1, 128); a.packed = true;
    RUN(a);
    a = base(3, 1, 12, 12, 128, 128, 64, 64); with_mask(&a, 1, 4, 1, 1, 1, 128); a.packed = true;
    RUN(a);
    a = base(3, 2, 8, 2, 70, 70, 128, 128); with_mask(&a, 1, 4, 2, 1, 70, 70); a.causal = true;
    a.packed = true; RUN(a);                                                 /* GQA */
    a = base(3, 3, 4, 1, 65, 65, 32, 32); with_mask(&a, 2, 4, 3, 1, 65, 65); a.packed = true;
    RUN(a);                                                                  /* MQA */
    a = base(3, 2, 4, 4, 1, 1, 64, 64); a.packed = true; RUN(a);             /* S = 1 */
    a = base(3, 2, 3, 3, 129, 129, 64, 64); a.causal = true; a.npad = true; a.packed = true;
    RUN(a);
    a = base(3, 2, 4, 2, 33, 33, 80, 80); with_mask(&a, 2, 4, 2, 1, 1, 33); a.packed = true;
    RUN(a);                                                                  /* Dh 80 */
    a = base(3, 2, 3, 3, 17, 17, 17, 17); with_mask(&a, 1, 4, 2, 1, 17, 17); a.packed = true;
    RUN(a);                                                                  /* odd, unaligned */
    a = base(3, 2, 4, 4, 40, 40, 64, 32); a.packed = true; RUN(a);           /* Dh != Dv */
    a = base(3, 2, 4, 4, 300, 300, 128, 128); with_mask(&a, 1, 4, 2, 1, 1, 300);
    a.dead_row = true; a.dead_zero = true; a.packed = true; RUN(a);
    /* BERT-base at batch 1 and 3, S = 128: bool and float16 padding masks */
    a = base(3, 1, 12, 12, 128, 128, 64, 64); with_mask(&a, 1, 4, 1, 1, 1, 128); RUN(a);
    a = base(3, 3, 12, 12, 128, 128, 64, 64); with_mask(&a, 1, 4, 3, 1, 1, 128); RUN(a);
    a = base(4, 3, 12, 12, 128, 128, 64, 64); with_mask(&a, 2, 4, 3, 1, 1, 128); RUN(a);
    /* a whole batch masked by a [B,1,1,T] mask (every row of it dead): NaN,
    ** or 0 with kiln_masked_rows_zero, through the bias row */
    a = base(3, 2, 2, 2, 70, 70, 64, 64); with_mask(&a, 1, 4, 2, 1, 1, 70); a.dead_row = true;
    RUN(a);
    a = base(3, 2, 2, 2, 130, 130, 64, 64); with_mask(&a, 1, 4, 2, 1, 1, 130); a.dead_row = true;
    a.dead_zero = true; RUN(a);
    a = base(4, 2, 2, 2, 5, 5, 128, 128); with_mask(&a, 2, 4, 2, 1, 1, 5); a.finfo = true;
    RUN(a);                                       /* finfo.min, row-invariant */
    /* row-invariant mask with softcap or causal (full instance, bias row),
    ** shorter than T, mask per head ([1,H,1,T]), GQA, npad with a mask */
    a = base(4, 2, 2, 2, 129, 129, 64, 64); with_mask(&a, 2, 4, 2, 1, 1, 129); a.softcap = 4.0f;
    RUN(a);
    a = base(4, 2, 3, 3, 65, 150, 32, 32); with_mask(&a, 1, 4, 2, 1, 1, 100); RUN(a);
    a = base(4, 2, 3, 3, 65, 150, 64, 64); with_mask(&a, 2, 4, 1, 3, 1, 150); RUN(a);
    a = base(3, 2, 8, 2, 127, 127, 128, 128); with_mask(&a, 1, 4, 2, 1, 1, 127); RUN(a);
    a = base(4, 3, 2, 2, 129, 129, 64, 64); with_mask(&a, 1, 4, 3, 1, 1, 129); a.npad = true;
    RUN(a);
    a = base(4, 3, 2, 2, 200, 200, 128, 128); with_mask(&a, 2, 2, 0, 0, 1, 200); a.causal = true;
    a.npad = true; RUN(a);
    /* the v3 flash kernel (128 query rows a block; run_case forces it and
    ** v2 on every flash case): random shapes of 128 rows and more, T off
    ** Sq, batch 1 and odd, 1..16 heads, head dims 64 and 32 (128: v3
    ** declines, v2 runs), no mask / [B,1,1,T] / [B,1,Sq,T] masks bool and
    ** float, causal, 4-D, 3-D and packed Q/K/V */
    if (dt != KILN_DTYPE_FLOAT32) {
        static const int64_t seqs[] = {128, 129, 200, 256, 384};
        static const int64_t batches[] = {1, 3, 5, 1, 7};
        for (int i = 0; i < 20; i++) {
            int64_t Sq = seqs[i % 5], B = batches[(i / 5 + i) % 5];
            int64_t H = h_irand(1, 16), D = i % 6 == 5 ? 32 : i % 10 == 9 ? 128 : 64;
            int layout = i % 3;  /* 0: 4-D, 1: 3-D, 2: packed 3-D (T = Sq) */
            int64_t T = layout == 2 ? Sq : h_irand(1, 2) == 1 ? h_irand(65, 450) : h_irand(1, 63);
            if (B * H * Sq * T > (int64_t)6 << 20) /* the host reference's time */
                H = 1 + ((int64_t)6 << 20) / (B * Sq * T);
            if (H > 16) H = 16;
            a = base(layout ? 3 : 4, B, H, H, Sq, T, D, D);
            int mk = i % 4, kind = 1 + (i / 4) % 2; /* mask: none, narrow, full, causal */
            if (mk == 1) with_mask(&a, kind, 4, B, 1, 1, T);
            if (mk == 2) with_mask(&a, kind, 4, B, 1, Sq, T);
            if (mk == 3) {
                a.causal = true;
                if (i % 8 == 7) with_mask(&a, kind, 4, B, 1, 1, T);
            }
            a.packed = layout == 2;
            RUN(a);
        }
        /* BERT-base's call (packed, [B,1,1,S] float mask in Q's type, 12
        ** heads of 64, S = 128) at batch 23: 276 blocks of 128 rows, past
        ** the 264 at which the tactic itself picks v3 on an H100 */
        a = base(3, 23, 12, 12, 128, 128, 64, 64); with_mask(&a, 2, 4, 23, 1, 1, 128);
        a.packed = true; RUN(a);
        /* GQA, v3 with a key tile per kv head shared by 4 query heads */
        a = base(3, 3, 8, 2, 256, 256, 64, 64); with_mask(&a, 1, 4, 3, 1, 1, 256);
        a.packed = true; RUN(a);
        a = base(4, 1, 4, 1, 300, 100, 64, 64); a.causal = true; a.softcap = 5.0f; RUN(a);
    }
#undef RUN
}

/* The flash kernel's element-wise load/store path (operands not 16-byte
** aligned: every pointer one element past an aligned one), called through
** its C seam on a 4-D f16/bf16 case with a [B,1,1,T] bool mask, causal or
** not, against the reference. kernels 0 (v2, the default) and 2 (v3) hand
** such operands to v1 as kernel 1 does: all three are run so a change to
** any routing shows. */
static void test_flash_unaligned(kiln_dtype dt, bool causal, int kernel) {
    const int64_t B = 2, H = 2, S = 70, T = 90, D = 64;
    int64_t qd[4] = {B, H, S, D}, kd[4] = {B, H, T, D}, md[4] = {B, 1, 1, T};
    kiln_tensor *Q = gt_rand(dt, 4, qd, 1.0), *K = gt_rand(dt, 4, kd, 1.0);
    kiln_tensor *V = gt_rand(dt, 4, kd, 1.0), *M = gt_rand(KILN_DTYPE_BOOL, 4, md, 1.0);
    uint8_t *mp = M->data;
    for (int64_t i = 0; i < tensor_numel(M); i++) mp[i] = rnd() < 0.7 || i % T == 0;
    ir_node *n = gt_node(OP_Attention, 4);
    if (causal) ir_edit_set_int(n, "is_causal", 1);
    const kiln_tensor *in[4] = {Q, K, V, M};
    kiln_tensor *want = gt_ref(n, in);
    char desc[96];
    snprintf(desc, sizeof desc, "flash unaligned %s B2 H2 S70 T90 D64 bool mask causal %d kernel %s",
             gt_dtype_name(dt), (int)causal, kernel == 1 ? "v1" : kernel == 2 ? "v3" : "v2");
    if (!want) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else if (!g_dry && (!g_only || strstr("cuda_attention_flash", g_only))) {
        const kiln_tensor *host[5] = {Q, K, V, M, want};
        char *dev[5] = {NULL};
        for (int i = 0; i < 5; i++) {
            size_t off = i == 3 ? 1 : 2; /* one element in */
            if (cudaMalloc((void **)&dev[i], host[i]->nbytes + 16) != cudaSuccess ||
                (i < 4 && cudaMemcpy(dev[i] + off, host[i]->data, host[i]->nbytes,
                                     cudaMemcpyHostToDevice) != cudaSuccess))
                gt_die("flash unaligned: upload");
        }
        kc_attn_flash_args a;
        memset(&a, 0, sizeof a);
        a.q = dev[0] + 2, a.k = dev[1] + 2, a.v = dev[2] + 2, a.y = dev[4] + 2;
        a.b = B, a.hq = H, a.hkv = H, a.sq = S, a.t = T, a.d = D;
        a.q_sb = H * S * D, a.q_sh = S * D, a.q_ss = D;
        a.k_sb = a.v_sb = H * T * D, a.k_sh = a.v_sh = T * D, a.k_ss = a.v_ss = D;
        a.y_sb = a.q_sb, a.y_sh = a.q_sh, a.y_ss = a.q_ss;
        a.scale = 0.125f;
        a.mask_kind = KC_MASK_BOOL, a.mask = dev[3] + 1;
        a.mst[0] = T, a.mst[3] = 1, a.mlast = T;
        a.causal = causal;
        a.kernel = kernel;
        kiln_tensor *got;
        if (tensor_clone(want, &got)) gt_die("clone");
        cudaError_t e = kc_attn_flash(dt == KILN_DTYPE_FLOAT16 ? KC_F16 : KC_BF16, &a,
                                      (cudaStream_t)g_stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize((cudaStream_t)g_stream);
        if (e == cudaSuccess)
            e = cudaMemcpy(got->data, dev[4] + 2, got->nbytes, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) {
            fprintf(stderr, "FAIL %s: %s\n", desc, cudaGetErrorString(e));
            g_fail++;
        } else if (gt_compare("cuda_attention_flash", desc, got, want, NULL, 1.0, gt_rtol(dt))) {
            g_pass++;
        } else {
            g_fail++;
        }
        tensor_free(got);
        for (int i = 0; i < 5; i++) cudaFree(dev[i]);
    }
    tensor_free(want);
    tensor_free(Q);
    tensor_free(K);
    tensor_free(V);
    tensor_free(M);
}

/* Times every tactic that takes a BERT-base attention layer (3-D, 12 heads
** of 64, [B,1,1,T] float16 additive mask) at batch b, seq sq: prints
** "bench ..." lines (information for the log, not pass/fail). No reference
** run: random data, the output is not checked here. */
static void bench_attn(kiln_dtype dt, int64_t b, int64_t sq) {
    if (g_dry) return;
    int64_t qd[3] = {b, sq, 768}, md[4] = {b, 1, 1, sq};
    kiln_tensor *Q = gt_rand(dt, 3, qd, 1.0), *K = gt_rand(dt, 3, qd, 1.0);
    kiln_tensor *V = gt_rand(dt, 3, qd, 1.0), *M = gt_rand(dt, 4, md, 1.0);
    ir_node *n = gt_node(OP_Attention, 4);
    ir_edit_set_int(n, "q_num_heads", 12);
    ir_edit_set_int(n, "kv_num_heads", 12);
    const kiln_tensor *hin[4] = {Q, K, V, M};
    kiln_tensor din[4];
    const kiln_tensor *dinp[4];
    void *ybuf = NULL, *ws = NULL;
    size_t ybytes = Q->nbytes;
    for (int i = 0; i < 4; i++) {
        din[i] = *hin[i];
        din[i].flags = 0;
        din[i].name = NULL;
        if (cudaMalloc(&din[i].data, hin[i]->nbytes) != cudaSuccess ||
            cudaMemcpy(din[i].data, hin[i]->data, hin[i]->nbytes, cudaMemcpyHostToDevice) !=
                cudaSuccess)
            gt_die("bench upload");
        dinp[i] = &din[i];
    }
    if (cudaMalloc(&ybuf, ybytes) != cudaSuccess) gt_die("bench output");
    kiln_tensor yd = *Q;
    yd.flags = 0;
    yd.name = NULL;
    yd.data = ybuf;
    kiln_tensor *outs[1] = {&yd};
    ir_type types[4];
    const ir_type *tin[4];
    for (int i = 0; i < 4; i++) {
        types[i].dtype = hin[i]->dtype;
        types[i].rank = hin[i]->rank;
        memcpy(types[i].dims, hin[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    const kiln_tactic *ts[4];
    int nt = gt_tactics(cuda_tactics_attn, OP_Attention, ts, 4);
    for (int k = 0; k < nt; k++) {
        if (ts[k]->supports && !ts[k]->supports(n, tin)) continue;
        size_t wsz = ts[k]->workspace ? ts[k]->workspace(n, tin) : 0;
        if (wsz == SIZE_MAX || (wsz && cudaMalloc(&ws, wsz) != cudaSuccess)) {
            printf("bench attention %s b%lld s%lld %s: no workspace\n", gt_dtype_name(dt),
                   (long long)b, (long long)sq, ts[k]->name);
            ws = NULL;
            continue;
        }
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        c.opset = (int)g_model->opset;
        c.n_in = 4;
        c.in = dinp;
        c.n_out = 1;
        c.out = outs;
        c.ws = ws;
        c.ws_size = wsz;
        c.stream = g_stream;
        c.exec = g_exec;
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        int rc = ts[k]->run(&c);
        cudaStreamSynchronize((cudaStream_t)g_stream);
        cudaEventRecord(e0, (cudaStream_t)g_stream);
        for (int r = 0; r < 20 && !rc; r++) rc = ts[k]->run(&c);
        cudaEventRecord(e1, (cudaStream_t)g_stream);
        float ms = 0;
        cudaError_t e = cudaEventSynchronize(e1);
        if (e == cudaSuccess) cudaEventElapsedTime(&ms, e0, e1);
        if (rc || e != cudaSuccess)
            printf("bench attention %s b%lld s%lld %-28s failed: %s %s\n", gt_dtype_name(dt),
                   (long long)b, (long long)sq, ts[k]->name, c.err, cudaGetErrorString(e));
        else
            printf("bench attention %s b%lld s%lld %-28s %9.1f us\n", gt_dtype_name(dt),
                   (long long)b, (long long)sq, ts[k]->name, ms * 1000 / 20);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        cudaFree(ws);
        ws = NULL;
    }
    for (int i = 0; i < 4; i++) cudaFree(din[i].data);
    cudaFree(ybuf);
    tensor_free(Q);
    tensor_free(K);
    tensor_free(V);
    tensor_free(M);
}

int main(int argc, char **argv) {
    /* the default (second) flash kernel unless told otherwise: run.sh runs
    ** these tests with KILN_ATTN_KERNEL=v1 too */
    if (!gt_init(argc, argv)) return 0;
    /* v3 is opt-in (cuda_attn.c, flash_v3): the runs "as the tactic
    ** chooses" take the shape rule it will have once it is the default */
    if (!getenv("KILN_ATTN_V3")) setenv("KILN_ATTN_V3", "auto", 1);
    g_model->opset = 23; /* Attention's opset */
    test_attn(KILN_DTYPE_FLOAT32);
    test_attn(KILN_DTYPE_FLOAT16);
    test_attn(KILN_DTYPE_BFLOAT16);
    for (int k = 0; k < 3; k++) { /* v2 (default), v1 and v3, causal and not */
        test_flash_unaligned(KILN_DTYPE_FLOAT16, true, k);
        test_flash_unaligned(KILN_DTYPE_BFLOAT16, true, k);
        test_flash_unaligned(KILN_DTYPE_FLOAT16, false, k);
        test_flash_unaligned(KILN_DTYPE_BFLOAT16, false, k);
    }
    fprintf(stderr, "v3 vs v2: %d cases compared, %d identical bit for bit\n", g_v3_cmp,
            g_v3_same);
    bench_attn(KILN_DTYPE_FLOAT16, 128, 128);
    bench_attn(KILN_DTYPE_FLOAT16, 1, 128);
    bench_attn(KILN_DTYPE_BFLOAT16, 128, 128);
    bench_attn(KILN_DTYPE_FLOAT16, 8, 512);
    return gt_finish();
}
