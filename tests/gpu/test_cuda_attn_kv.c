/* test_cuda_attn_kv.c: the attention layer's KV cache and qk output on the
** GPU (cuda_attention_lt_softmax, cuda_attn.c) against the reference
** Attention kernel, over every output: past_key/past_value (past length
** 0 to 12) with present_key/present_value (past ++ current, 4-D), the
** current K/V in 3-D or 4-D layout, grouped-query heads, Dh != Dv, odd
** head dims (1, 5) and sequence lengths (1, 7); no mask / bool / float
** masks of several broadcast shapes; causal (offset by the past), softcap;
** the qk_matmul_output in each qk_matmul_output_mode (0 scaled scores, 1
** after softcap, 2 after the masks, 3 probabilities), with and without the
** present outputs; float32/16/bf16. Present outputs are copies and must
** match exactly; Y and qk within 1e-5 (f32), 2e-3 (f16), 2e-2 (bf16) of
** max(|want|, 4) (scores and outputs of [-2, 2] data stay within a few
** units). Also RotaryEmbedding (the rotary part of the same layers).
** Ends with `N passed, M failed`; without a GPU it prints "0
** passed, 0 failed (no GPU)" (KILN_GPU_TEST_DRY=1: checks the cases and
** that the tactic takes each, without running it). */
#include "gpu_test.h"

static const kiln_dtype k_types[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};

typedef struct kv_case {
    int rank;             /* 3 or 4 (Q, K, V) */
    int64_t B, Hq, Hkv, Sq, S, P, Dh, Dv;
    bool past;            /* past_key/past_value given (then P >= 1) */
    bool present;         /* present outputs requested */
    int qk;               /* -1: no qk output, else qk_matmul_output_mode */
    int mask;             /* 0 none, 1 bool, 2 float */
    int mshape;           /* 0 (Sq, T), 1 (B, 1, Sq, T), 2 (B, Hq, Sq, T), 3 (T) */
    bool causal;
    float softcap;
} kv_case;

static void run_kv(const kv_case *k, kiln_dtype dt) {
    int64_t T = k->P + k->S;
    int64_t qd[4], kd[4], vd[4];
    if (k->rank == 4) {
        int64_t q[4] = {k->B, k->Hq, k->Sq, k->Dh}, kk[4] = {k->B, k->Hkv, k->S, k->Dh};
        int64_t v[4] = {k->B, k->Hkv, k->S, k->Dv};
        memcpy(qd, q, sizeof q), memcpy(kd, kk, sizeof kk), memcpy(vd, v, sizeof v);
    } else {
        int64_t q[3] = {k->B, k->Sq, k->Hq * k->Dh}, kk[3] = {k->B, k->S, k->Hkv * k->Dh};
        int64_t v[3] = {k->B, k->S, k->Hkv * k->Dv};
        memcpy(qd, q, sizeof q), memcpy(kd, kk, sizeof kk), memcpy(vd, v, sizeof v);
    }
    kiln_tensor *Q = h_rand(dt, k->rank, qd), *K = h_rand(dt, k->rank, kd);
    kiln_tensor *V = h_rand(dt, k->rank, vd), *M = NULL, *PK = NULL, *PV = NULL;
    if (k->past) {
        int64_t pk[4] = {k->B, k->Hkv, k->P, k->Dh}, pv[4] = {k->B, k->Hkv, k->P, k->Dv};
        PK = h_rand(dt, 4, pk);
        PV = h_rand(dt, 4, pv);
    }
    if (k->mask) {
        int64_t md[4];
        int mr;
        switch (k->mshape) {
        case 0: mr = 2, md[0] = k->Sq, md[1] = T; break;
        case 1: mr = 4, md[0] = k->B, md[1] = 1, md[2] = k->Sq, md[3] = T; break;
        case 2: mr = 4, md[0] = k->B, md[1] = k->Hq, md[2] = k->Sq, md[3] = T; break;
        default: mr = 1, md[0] = T; break;
        }
        M = h_rand(k->mask == 1 ? KILN_DTYPE_BOOL : dt, mr, md);
        if (k->mask == 1) { /* column 0 stays live: no row is wholly masked */
            uint8_t *p = M->data;
            for (int64_t i = 0; i < tensor_numel(M); i++) p[i] = p[i] || i % T == 0;
        }
    }
    int n_in = k->past ? 6 : M ? 4 : 3, n_out = k->qk >= 0 ? 4 : 3;
    ir_node *n = h_node(OP_Attention, n_in, n_out);
    n->in[0] = h_rt(), n->in[1] = h_rt(), n->in[2] = h_rt();
    if (n_in > 3) n->in[3] = M ? h_rt() : NULL;
    if (k->past) n->in[4] = h_rt(), n->in[5] = h_rt();
    if (!k->present) n->out[1] = n->out[2] = NULL;
    if (k->rank == 3) {
        ir_edit_set_int(n, "q_num_heads", k->Hq);
        ir_edit_set_int(n, "kv_num_heads", k->Hkv);
    }
    if (k->causal) ir_edit_set_int(n, "is_causal", 1);
    if (k->softcap > 0) ir_edit_set_float(n, "softcap", k->softcap);
    if (k->qk > 0) ir_edit_set_int(n, "qk_matmul_output_mode", k->qk);
    kiln_tensor *in[6] = {Q, K, V, M, PK, PV};
    char desc[256];
    snprintf(desc, sizeof desc,
             "Attention kv %s [rank %d B %lld Hq %lld Hkv %lld Sq %lld S %lld past %lld%s Dh %lld "
             "Dv %lld present %d qk mode %d mask %d shape %d causal %d softcap %g]",
             kiln_dtype_name(dt), k->rank, (long long)k->B, (long long)k->Hq, (long long)k->Hkv,
             (long long)k->Sq, (long long)k->S, (long long)k->P, k->past ? "" : " (none)",
             (long long)k->Dh, (long long)k->Dv, (int)k->present, k->qk, k->mask, k->mshape,
             (int)k->causal, (double)k->softcap);
    g_mag_floor = 4.0;
    h_check(n, in, CMP_FLOAT, NULL, true, desc);
    g_mag_floor = 0.0;
    tensor_free(Q);
    tensor_free(K);
    tensor_free(V);
    tensor_free(M);
    tensor_free(PK);
    tensor_free(PV);
}

static kv_case kvc(int rank, int64_t B, int64_t Hq, int64_t Hkv, int64_t Sq, int64_t S,
                   int64_t P, int64_t Dh, int64_t Dv) {
    kv_case k;
    memset(&k, 0, sizeof k);
    k.rank = rank, k.B = B, k.Hq = Hq, k.Hkv = Hkv, k.Sq = Sq, k.S = S, k.P = P;
    k.Dh = Dh, k.Dv = Dv;
    k.past = P > 0;
    k.present = true;
    k.qk = -1;
    return k;
}

static void test_fixed(kiln_dtype dt) {
    kv_case k;
    /* the ONNX node tests' shapes */
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2; run_kv(&k, dt);
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 10), k.mask = 2; run_kv(&k, dt);          /* Dh != Dv */
    k = kvc(4, 2, 9, 3, 4, 6, 12, 8, 8), k.mask = 2; run_kv(&k, dt);           /* GQA */
    k = kvc(3, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2; run_kv(&k, dt);           /* 3-D */
    k = kvc(3, 2, 9, 3, 4, 6, 12, 8, 8), k.mask = 2; run_kv(&k, dt);           /* 3-D GQA */
    k = kvc(3, 2, 3, 3, 4, 6, 12, 8, 10), k.mask = 2; run_kv(&k, dt);          /* 3-D Dh != Dv */
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 10), k.mask = 2, k.mshape = 1; run_kv(&k, dt);
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 10), k.mask = 2, k.mshape = 2; run_kv(&k, dt);
    for (int mode = 0; mode < 4; mode++) {
        k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2, k.qk = mode;
        if (mode == 1) k.softcap = 2.0f;
        run_kv(&k, dt);
        k = kvc(3, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2, k.qk = mode;
        if (mode == 1) k.softcap = 2.0f;
        run_kv(&k, dt);
        /* qk without a KV cache, present outputs absent */
        k = kvc(4, 2, 3, 3, 4, 6, 0, 8, 8), k.present = false, k.qk = mode;
        if (mode) k.mask = 2;
        if (mode == 1) k.softcap = 2.0f;
        run_kv(&k, dt);
    }
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2, k.mshape = 1, k.causal = true, k.qk = 2;
    run_kv(&k, dt);
    k = kvc(4, 2, 3, 3, 4, 6, 12, 8, 8), k.mask = 2, k.mshape = 2, k.causal = true, k.qk = 2;
    run_kv(&k, dt);
    /* decode step: one new token on a long past, bool padding mask */
    k = kvc(4, 3, 4, 2, 1, 1, 37, 16, 16), k.mask = 1, k.mshape = 1; run_kv(&k, dt);
    k = kvc(3, 1, 12, 12, 1, 1, 63, 64, 64), k.causal = true; run_kv(&k, dt);
    /* present without a past (present == K, V in 4-D) */
    k = kvc(3, 2, 4, 2, 5, 5, 0, 8, 8), k.causal = true; run_kv(&k, dt);
    k = kvc(4, 2, 4, 2, 5, 5, 0, 8, 8); run_kv(&k, dt);
}

static void test_random(kiln_dtype dt) {
    static const int64_t dims[] = {1, 5, 8, 16};
    for (int it = 0; it < 40; it++) {
        int rank = 3 + it % 2;
        int64_t Hkv = h_irand(1, 3), Hq = Hkv * h_irand(1, 3);
        int64_t P = it % 5 == 0 ? 0 : h_irand(1, 12);
        kv_case k = kvc(rank, h_irand(1, 3), Hq, Hkv, h_irand(1, 7), h_irand(1, 7), P,
                        dims[h_irand(0, 3)], dims[h_irand(0, 3)]);
        k.present = P > 0 || rnd() < 0.7;
        k.qk = rnd() < 0.5 ? (int)h_irand(0, 3) : -1;
        if (!k.present && k.qk < 0) k.qk = 0; /* something beyond Y */
        k.mask = (int)h_irand(0, 2);
        k.mshape = (int)h_irand(0, 3);
        k.causal = rnd() < 0.3;
        k.softcap = rnd() < 0.3 ? 1.5f : 0.0f;
        run_kv(&k, dt);
    }
}

/* RotaryEmbedding (cuda_rotary_direct): 3-D (num_heads) and 4-D input,
** interleaved or not, full or partial rotary dim (2 to D, even), with
** position_ids into a longer cache (positions repeated and out of order)
** or per-(batch, seq) caches; odd head
** counts and sequence lengths. Within 1e-5 (f32; the operations are the
** reference's in its order, but a host compiler may fuse them), 2e-3
** (f16), 2e-2 (bf16) of max(|want|, 4). */
static void test_rotary(kiln_dtype dt) {
    for (int it = 0; it < 60; it++) {
        bool is3 = it % 2 == 0, inter = (it / 2) % 2 == 1, haspos = (it / 4) % 2 == 0;
        int64_t B = h_irand(1, 3), S = h_irand(1, 9), H = h_irand(1, 5);
        int64_t D = 2 * h_irand(1, 8);
        int64_t rd = it % 3 == 0 ? 0 : 2 * h_irand(1, D / 2); /* 0: the whole head */
        int64_t half = (rd ? rd : D) / 2, maxpos = S + h_irand(0, 20);
        kiln_dtype ct = dt; /* the op wants one type for X and the caches */
        int64_t xd[4];
        int xr;
        if (is3) xr = 3, xd[0] = B, xd[1] = S, xd[2] = H * D;
        else xr = 4, xd[0] = B, xd[1] = H, xd[2] = S, xd[3] = D;
        int64_t cd[3];
        int cr;
        if (haspos) cr = 2, cd[0] = maxpos, cd[1] = half;
        else cr = 3, cd[0] = B, cd[1] = S, cd[2] = half;
        kiln_tensor *x = h_rand(dt, xr, xd), *cs = h_rand(ct, cr, cd), *sn = h_rand(ct, cr, cd);
        kiln_tensor *pos = NULL;
        if (haspos) {
            int64_t pd[2] = {B, S};
            if (tensor_new(KILN_DTYPE_INT64, 2, pd, &pos)) h_die("tensor_new");
            for (int64_t i = 0; i < B * S; i++) ((int64_t *)pos->data)[i] = h_irand(0, maxpos - 1);
        }
        ir_node *n = h_node(OP_RotaryEmbedding, haspos ? 4 : 3, 1);
        n->in[0] = h_rt(), n->in[1] = h_rt(), n->in[2] = h_rt();
        if (haspos) n->in[3] = h_rt();
        if (is3) ir_edit_set_int(n, "num_heads", H);
        if (inter) ir_edit_set_int(n, "interleaved", 1);
        if (rd) ir_edit_set_int(n, "rotary_embedding_dim", rd);
        kiln_tensor *in[4] = {x, cs, sn, pos};
        char desc[200];
        snprintf(desc, sizeof desc, "RotaryEmbedding %s cache %s %s B %lld S %lld H %lld D %lld "
                 "rotary dim %lld%s%s", kiln_dtype_name(dt), kiln_dtype_name(ct),
                 is3 ? "3-D" : "4-D", (long long)B, (long long)S, (long long)H, (long long)D,
                 (long long)rd, inter ? " interleaved" : "", haspos ? " position_ids" : "");
        g_mag_floor = 4.0;
        h_check(n, in, CMP_FLOAT, NULL, true, desc);
        g_mag_floor = 0.0;
        tensor_free(x);
        tensor_free(cs);
        tensor_free(sn);
        tensor_free(pos);
    }
}

int main(void) {
    if (h_open(23)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    for (int t = 0; t < 3; t++) {
        test_fixed(k_types[t]);
        test_random(k_types[t]);
        test_rotary(k_types[t]);
    }
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
