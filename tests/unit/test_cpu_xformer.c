/* test_cpu_xformer.c: the CPU transformer tactics (fused attention,
** LayerNorm/RMSNorm, Softmax/LogSoftmax, Gelu, FusedElementwise) against
** the reference kernels on random shapes, awkward ones included (sequence
** 1 and 7, head dims 8/64/80, odd hidden sizes, every mask broadcast form,
** bool and float masks, fully masked rows, causal, grouped-query heads,
** 3-D and 4-D layouts, non-last softmax axes, broadcasting chains, single
** elementwise ops, Transpose of every element size). Every
** ISA variant the host can run is tested directly (AVX-512, AVX2+FMA and
** portable C on an AVX-512 machine), with 1 and 3 threads, with and without
** a workspace. Also sweeps the vector exp/erf/tanh/sigmoid/GELU over a
** dense range: within 1e-5 relative of libm (the reference). */
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/backends/cpu/cpu_gemm.h"
#include "../../src/backends/cpu/cpu_xf.h"
#include "../../src/ir/ir_edit.h"
#include "../../src/ops/fused.h"

#include "test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static unsigned g_host;
static const char *g_names[128];
static int g_counts[128];

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

static kiln_tensor *rand_f32(int rank, const int64_t *dims, float lo, float hi) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t)) die("tensor_new");
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = (float)(lo + rnd() * (hi - lo));
    return t;
}

static kiln_tensor *abs_of(const kiln_tensor *t) {
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

static void count(const char *name) {
    for (int i = 0; i < 128; i++) {
        if (!g_names[i]) g_names[i] = name;
        if (g_names[i] == name) {
            g_counts[i]++;
            return;
        }
    }
}

/* Runs tactic t on n; NULL when it declines (supports) or fails. */
static kiln_tensor *run_tactic(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                               const kiln_tensor *want, bool give_ws, bool *declined) {
    const ir_type *tin[8] = {0};
    ir_type types[8];
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    *declined = false;
    if (t->supports && !t->supports(n, tin)) {
        *declined = true;
        return NULL;
    }
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
    int rc = t->run(&c);
    kiln_aligned_free(ws);
    if (rc) {
        fprintf(stderr, "%s failed: %s\n", t->name, c.err);
        tensor_free(y);
        return NULL;
    }
    return y;
}

/* Per-element error scale, for results that the reference itself computes
** with cancellation (GELU's 1 + erf(z) for negative z loses float digits
** in libm's erff as well): atol grows by g_errk * g_errscale[i]. */
static const float *g_errscale;
static double g_errk;

/* |got - want| <= atol + rtol |want|, NaN where the reference has NaN. */
static bool close_enough(const char *tname, const char *desc, const kiln_tensor *got,
                         const kiln_tensor *want, double atol, double rtol) {
    const float *g = got->data, *w = want->data;
    int64_t n = tensor_numel(want);
    for (int64_t i = 0; i < n; i++) {
        double at = atol + (g_errscale ? g_errk * g_errscale[i] : 0.0);
        bool ok = isnan(w[i]) ? isnan(g[i])
                              : fabs((double)g[i] - (double)w[i]) <= at + rtol * fabs((double)w[i]);
        if (!ok) {
            fprintf(stderr, "FAIL %s %s: element %lld got %.9g want %.9g\n", tname, desc,
                    (long long)i, g[i], w[i]);
            return false;
        }
    }
    return true;
}

/* Every host-runnable tactic of n's op against the reference output;
** returns how many ran (at least the portable one must). */
static int check_tactics(ir_node *n, const kiln_tensor *const *in, double atol, double rtol,
                         const char *desc) {
    kiln_tensor *want[1];
    if (ref_run_node(n, in, want)) {
        fprintf(stderr, "reference failed on %s: %s\n", desc, kiln_last_error());
        CHECK(false, "reference failed");
        return 0;
    }
    int ran = 0;
    for (const kiln_tactic *const *tp = cpu_tactic_table; *tp; tp++) {
        const kiln_tactic *t = *tp;
        if (t->op != n->op || (t->isa & ~g_host)) continue;
        for (int th = 1; th <= 3; th += 2) {
            kiln_set_num_threads(th);
            bool declined;
            kiln_tensor *got = run_tactic(t, n, in, want[0], th == 1, &declined);
            if (declined) break;
            bool ok = got && close_enough(t->name, desc, got, want[0], atol, rtol);
            CHECK(ok, "%s on %s (%d threads)", t->name, desc, th);
            count(t->name);
            tensor_free(got);
            ran++;
        }
    }
    kiln_set_num_threads(1);
    tensor_free(want[0]);
    return ran;
}

/* ------------------------------------------------------------ attention */
typedef struct attn_case {
    bool is3, causal, has_scale, npad;
    int64_t B, Hq, Hkv, Sq, T, Dh, Dv;
    int mask_kind;  /* 0 none, 1 float, 2 bool */
    int mask_rank;  /* 1..4 */
    int mask_form;  /* which dims broadcast, see make_mask */
} attn_case;

static float maxabs(const kiln_tensor *t) {
    float m = 0;
    const float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) m = fabsf(p[i]) > m ? fabsf(p[i]) : m;
    return m;
}

/* Mask of rank r broadcasting to (B, Hq, Sq, T): form bit k set keeps dim k
** (0..3 of the full shape) at its size, else 1; form 16: last dim 1. */
static kiln_tensor *make_mask(const attn_case *ac) {
    int64_t full[4] = {ac->B, ac->Hq, ac->Sq, ac->T}, d[4];
    int r = ac->mask_rank;
    for (int i = 0; i < r; i++) {
        int k = 4 - r + i;
        d[i] = (ac->mask_form >> k & 1) ? full[k] : 1;
    }
    if (ac->mask_form & 16) d[r - 1] = 1;
    kiln_tensor *m;
    if (ac->mask_kind == 1) {
        m = rand_f32(r, d, -3.0f, 1.0f);
        float *p = m->data;
        for (int64_t i = 0; i < tensor_numel(m); i++)
            if (rnd() < 0.2) p[i] = -INFINITY;
            else if (rnd() < 0.1) p[i] = -3.4028e38f;
    } else {
        if (tensor_new(KILN_DTYPE_BOOL, r, d, &m)) die("mask");
        uint8_t *p = m->data;
        for (int64_t i = 0; i < tensor_numel(m); i++) p[i] = rnd() < 0.75;
    }
    return m;
}

/* The same attention with Q, K, V packed into one [B, S, Nq+Nk+Nv] input
** (passes/qkv.c's form): the reference must give exactly the unpacked
** reference's output, and every CPU tactic must take it (read in place)
** and agree with it. */
static int g_packed_runs;
static void run_packed_case(const attn_case *ac, const ir_node *un, const kiln_tensor *const *in,
                            const char *desc) {
    const kiln_tensor *q = in[0], *k = in[1], *v = in[2];
    int64_t w[3] = {q->dims[2], k->dims[2], v->dims[2]}, nt = w[0] + w[1] + w[2];
    int64_t pd[3] = {ac->B, ac->Sq, nt};
    kiln_tensor *pk;
    if (tensor_new(KILN_DTYPE_FLOAT32, 3, pd, &pk)) die("packed");
    float *p = pk->data;
    for (int64_t r = 0; r < ac->B * ac->Sq; r++) {
        memcpy(p + r * nt, (const float *)q->data + r * w[0], (size_t)w[0] * sizeof(float));
        memcpy(p + r * nt + w[0], (const float *)k->data + r * w[1], (size_t)w[1] * sizeof(float));
        memcpy(p + r * nt + w[0] + w[1], (const float *)v->data + r * w[2],
               (size_t)w[2] * sizeof(float));
    }
    ir_node *n = new_node(OP_Attention, un->n_in);
    if (!ir_edit_copy_attrs(n, un) || !ir_edit_set_ints(n, "kiln_qkv_packed", w, 3))
        die("attrs");
    const kiln_tensor *pin[7] = {pk, NULL, NULL, NULL, NULL, NULL, NULL};
    for (int i = 3; i < un->n_in; i++) pin[i] = in[i];
    char pdesc[240];
    snprintf(pdesc, sizeof pdesc, "%s packed", desc);
    kiln_tensor *a[1] = {NULL}, *b[1] = {NULL};
    bool ok = !ref_run_node(un, in, a) && !ref_run_node(n, pin, b) &&
              shape_equal(a[0]->rank, a[0]->dims, b[0]->rank, b[0]->dims) &&
              !memcmp(a[0]->data, b[0]->data, (size_t)tensor_numel(a[0]) * sizeof(float));
    tensor_free(a[0]);
    tensor_free(b[0]);
    CHECK(ok, "%s: reference packed != reference unpacked (%s)", pdesc, kiln_last_error());
    int ran = check_tactics(n, pin, 2e-6 * maxabs(v), 1e-5, pdesc);
    CHECK(ran >= 2, "%s: only %d tactic runs", pdesc, ran);
    g_packed_runs++;
    tensor_free(pk);
}

static void run_attn_case(const attn_case *ac) {
    int64_t qd[4], kd[4], vd[4];
    int r = ac->is3 ? 3 : 4;
    if (ac->is3) {
        int64_t a[3] = {ac->B, ac->Sq, ac->Hq * ac->Dh}, b[3] = {ac->B, ac->T, ac->Hkv * ac->Dh},
                c[3] = {ac->B, ac->T, ac->Hkv * ac->Dv};
        memcpy(qd, a, sizeof a), memcpy(kd, b, sizeof b), memcpy(vd, c, sizeof c);
    } else {
        int64_t a[4] = {ac->B, ac->Hq, ac->Sq, ac->Dh}, b[4] = {ac->B, ac->Hkv, ac->T, ac->Dh},
                c[4] = {ac->B, ac->Hkv, ac->T, ac->Dv};
        memcpy(qd, a, sizeof a), memcpy(kd, b, sizeof b), memcpy(vd, c, sizeof c);
    }
    kiln_tensor *q = rand_f32(r, qd, -1, 1), *k = rand_f32(r, kd, -1, 1), *v = rand_f32(r, vd, -1, 1);
    kiln_tensor *m = ac->mask_kind ? make_mask(ac) : NULL, *np = NULL;
    int n_in = ac->npad ? 7 : m ? 4 : 3;
    if (ac->npad) {
        int64_t bd[1] = {ac->B};
        if (tensor_new(KILN_DTYPE_INT64, 1, bd, &np)) die("npad");
        int64_t *p = np->data;
        for (int64_t b = 0; b < ac->B; b++) p[b] = (int64_t)(rnd() * (double)(ac->T + 1));
    }
    ir_node *n = new_node(OP_Attention, n_in);
    if (ac->is3) {
        ir_edit_set_int(n, "q_num_heads", ac->Hq);
        ir_edit_set_int(n, "kv_num_heads", ac->Hkv);
    }
    if (ac->causal) ir_edit_set_int(n, "is_causal", 1);
    if (ac->has_scale) ir_edit_set_float(n, "scale", 0.3f);
    const kiln_tensor *in[7] = {q, k, v, m, NULL, NULL, np};
    char desc[200];
    snprintf(desc, sizeof desc,
             "attn %s B%lld Hq%lld Hkv%lld Sq%lld T%lld Dh%lld Dv%lld mask%d/r%d/f%d%s%s%s",
             ac->is3 ? "3d" : "4d", (long long)ac->B, (long long)ac->Hq, (long long)ac->Hkv,
             (long long)ac->Sq, (long long)ac->T, (long long)ac->Dh, (long long)ac->Dv,
             ac->mask_kind, ac->mask_rank, ac->mask_form, ac->causal ? " causal" : "",
             ac->has_scale ? " scale" : "", ac->npad ? " nonpad" : "");
    /* an average of V rows: error is relative to V's size */
    int ran = check_tactics(n, in, 2e-6 * maxabs(v), 1e-5, desc);
    CHECK(ran >= 2, "%s: only %d tactic runs", desc, ran);
    if (ac->is3 && ac->Sq == ac->T) run_packed_case(ac, n, in, desc);
    tensor_free(q), tensor_free(k), tensor_free(v), tensor_free(m), tensor_free(np);
}

static void test_attention(void) {
    static const int64_t seqs[] = {1, 7, 64, 65, 130};
    static const int64_t dims[] = {8, 64, 80, 17};
    static const int64_t heads[][2] = {{1, 1}, {4, 4}, {4, 2}, {6, 1}, {12, 12}};
    /* the BERT shape, exactly */
    attn_case bert = {true, false, true, false, 1, 12, 12, 128, 128, 64, 64, 1, 4, 0x9};
    run_attn_case(&bert);
    /* no keys at all */
    attn_case empty = {false, false, false, false, 2, 2, 1, 3, 0, 8, 8, 0, 1, 0};
    run_attn_case(&empty);
    for (int it = 0; it < 90; it++) {
        attn_case ac;
        memset(&ac, 0, sizeof ac);
        ac.is3 = rnd() < 0.5;
        ac.B = rnd() < 0.7 ? 1 : 2;
        int h = (int)(rnd() * 5);
        ac.Hq = heads[h][0];
        ac.Hkv = heads[h][1];
        ac.Sq = seqs[(int)(rnd() * 5)];
        ac.T = rnd() < 0.6 ? ac.Sq : seqs[(int)(rnd() * 5)];
        ac.Dh = dims[(int)(rnd() * 4)];
        ac.Dv = rnd() < 0.7 ? ac.Dh : dims[(int)(rnd() * 4)];
        ac.causal = rnd() < 0.3;
        ac.has_scale = rnd() < 0.3;
        ac.npad = rnd() < 0.1;
        ac.mask_kind = (int)(rnd() * 3);
        ac.mask_rank = 1 + (int)(rnd() * 4);
        ac.mask_form = (int)(rnd() * 16) | 8; /* mostly full key length */
        if (rnd() < 0.1) ac.mask_form |= 16;  /* key dim 1: keys past 0 masked */
        run_attn_case(&ac);
    }
    /* packed Q/K/V: head dims 32/64/128 and odd ones, GQA and MQA, masks
    ** bool/float of [B,1,1,S] (form 0x9) and [B,1,S,S] (0xD), causal */
    static const int64_t pdims[] = {32, 64, 128, 17, 8, 80};
    static const int64_t pheads[][2] = {{4, 4}, {4, 2}, {6, 1}, {3, 3}};
    static const int64_t pseqs[] = {1, 7, 33, 64};
    for (int it = 0; it < 40; it++) {
        attn_case ac;
        memset(&ac, 0, sizeof ac);
        ac.is3 = true;
        ac.B = 1 + (int64_t)(rnd() * 3);
        int h = (int)(rnd() * 4);
        ac.Hq = pheads[h][0], ac.Hkv = pheads[h][1];
        ac.Sq = ac.T = pseqs[(int)(rnd() * 4)];
        ac.Dh = pdims[(int)(rnd() * 6)];
        ac.Dv = rnd() < 0.8 ? ac.Dh : pdims[(int)(rnd() * 6)];
        ac.causal = it % 3 == 1;
        ac.has_scale = rnd() < 0.3;
        ac.npad = rnd() < 0.1;
        ac.mask_kind = it % 3;
        ac.mask_rank = 4;
        ac.mask_form = rnd() < 0.5 ? 0x9 : 0xD;
        run_attn_case(&ac);
    }
    /* packed and empty: no rows at all */
    attn_case pempty = {true, false, false, false, 2, 2, 1, 0, 0, 8, 8, 0, 1, 0};
    run_attn_case(&pempty);
    CHECK(g_packed_runs >= 41, "only %d packed attention cases ran", g_packed_runs);
    /* packed declines: with past key/value, or a malformed width list */
    {
        ir_type pt = {KILN_DTYPE_FLOAT32, 3, {1, 5, 24}}, kv4 = {KILN_DTYPE_FLOAT32, 4, {1, 2, 5, 4}};
        const ir_type *pin[6] = {&pt, NULL, NULL, NULL, &kv4, &kv4};
        int64_t w[3] = {8, 8, 8}, bad[3] = {8, 8, 9};
        ir_node *a = new_node(OP_Attention, 3);
        ir_edit_set_int(a, "q_num_heads", 2), ir_edit_set_int(a, "kv_num_heads", 2);
        ir_edit_set_ints(a, "kiln_qkv_packed", w, 3);
        CHECK(cpu_t_attn_c.supports(a, pin), "packed attention must be taken");
        ir_edit_set_ints(a, "kiln_qkv_packed", bad, 3);
        CHECK(!cpu_t_attn_c.supports(a, pin), "packed widths not adding up must be declined");
        ir_node *b = new_node(OP_Attention, 6);
        ir_edit_copy_attrs(b, a);
        ir_edit_set_ints(b, "kiln_qkv_packed", w, 3);
        CHECK(!cpu_t_attn_c.supports(b, pin), "packed attention with past KV must be declined");
    }
    /* declines: past key/value, softcap */
    int64_t d[4] = {1, 2, 5, 8};
    kiln_tensor *q = rand_f32(4, d, -1, 1);
    ir_type t = {KILN_DTYPE_FLOAT32, 4, {1, 2, 5, 8}};
    const ir_type *tin[6] = {&t, &t, &t, NULL, &t, &t};
    ir_node *n = new_node(OP_Attention, 6);
    CHECK(!cpu_t_attn_c.supports(n, tin), "attention with past KV must be declined");
    ir_node *n2 = new_node(OP_Attention, 3);
    ir_edit_set_float(n2, "softcap", 5.0f);
    CHECK(!cpu_t_attn_c.supports(n2, tin), "attention with softcap must be declined");
    tensor_free(q);
}

/* ------------------------------------------------------------ norms */
static void test_norms(void) {
    static const int64_t hs[] = {1, 7, 16, 17, 33, 768, 1001};
    for (int it = 0; it < 60; it++) {
        bool rms = it % 3 == 2;
        int64_t h = hs[(int)(rnd() * 7)], rows = 1 + (int64_t)(rnd() * 40);
        int64_t mid = rnd() < 0.3 ? 3 : 1;
        int64_t xd[3] = {rows, mid, h};
        int axis = rnd() < 0.3 ? -2 : -1;
        kiln_tensor *x = rand_f32(3, xd, -2, 3);
        /* scale / bias cover the normalized dims, sometimes with a leading 1 */
        int64_t sd[3];
        int sr;
        if (axis == -1) {
            if (rnd() < 0.3) sd[0] = 1, sd[1] = h, sr = 2;
            else sd[0] = h, sr = 1;
        } else {
            sd[0] = mid, sd[1] = h, sr = 2;
        }
        kiln_tensor *s = rand_f32(sr, sd, -2, 2), *b = rms || rnd() < 0.2 ? NULL : rand_f32(sr, sd, -1, 1);
        ir_node *n = new_node(rms ? OP_RMSNormalization : OP_LayerNormalization, b ? 3 : 2);
        ir_edit_set_int(n, "axis", axis);
        if (rnd() < 0.5) ir_edit_set_float(n, "epsilon", 1e-3f);
        const kiln_tensor *in[3] = {x, s, b};
        char desc[128];
        snprintf(desc, sizeof desc, "%s %lldx%lldx%lld axis %d%s", rms ? "rms" : "ln",
                 (long long)rows, (long long)mid, (long long)h, axis, b ? " bias" : "");
        /* y is about scale * O(1): absolute error relative to |scale| */
        int ran = check_tactics(n, in, 4e-6 * maxabs(s), 1e-5, desc);
        CHECK(ran >= 2, "%s: only %d runs", desc, ran);
        tensor_free(x), tensor_free(s), tensor_free(b);
    }
    /* a scale that broadcasts inside the row is declined */
    ir_type xt = {KILN_DTYPE_FLOAT32, 2, {4, 6}}, st = {KILN_DTYPE_FLOAT32, 1, {1}};
    const ir_type *tin[2] = {&xt, &st};
    ir_node *n = new_node(OP_LayerNormalization, 2);
    CHECK(!cpu_t_layernorm_c.supports(n, tin), "scalar scale must be declined");
}

static void test_softmax(void) {
    static const int64_t shapes[][4] = {{3, 7, 1, 1}, {2, 5, 33, 1}, {4, 1, 1, 1},
                                        {2, 3, 17, 5}, {1, 128, 128, 1}, {2, 9, 16, 3}};
    static const int ranks[] = {2, 3, 2, 4, 3, 4};
    for (int it = 0; it < 48; it++) {
        int s = it % 6;
        int r = ranks[s];
        kiln_tensor *x = rand_f32(r, shapes[s], -20, 20);
        int op = it % 4 == 3 ? OP_LogSoftmax : OP_Softmax;
        ir_node *n = new_node(op, 1);
        int axis = (int)(rnd() * r) - (rnd() < 0.5 ? r : 0);
        ir_edit_set_int(n, "axis", axis);
        int64_t old = g_model->opset;
        if (it % 8 == 5) g_model->opset = 11; /* flattening semantics */
        char desc[96];
        snprintf(desc, sizeof desc, "%s shape %d axis %d opset %lld",
                 op == OP_Softmax ? "softmax" : "logsoftmax", s, axis, (long long)g_model->opset);
        const kiln_tensor *in[1] = {x};
        int ran = check_tactics(n, in, op == OP_Softmax ? 1e-7 : 2e-6, 1e-5, desc);
        CHECK(ran >= 2, "%s: only %d runs", desc, ran);
        g_model->opset = old;
        tensor_free(x);
    }
}

/* ------------------------------------------------------------ GELU */
static void test_gelu(void) {
    static const int64_t ns[] = {1, 7, 16, 1000, 40001};
    for (int it = 0; it < 10; it++) {
        int64_t d[1] = {ns[it % 5]};
        kiln_tensor *x = rand_f32(1, d, -12, 12);
        float *p = x->data;
        for (int64_t i = 0; i < d[0]; i++)
            if (rnd() < 0.2) p[i] *= 1e-4f;
        ir_node *n = new_node(OP_Gelu, 1);
        bool th = it >= 5;
        if (th) ir_edit_set_str(n, "approximate", "tanh");
        const kiln_tensor *in[1] = {x};
        char desc[64];
        snprintf(desc, sizeof desc, "gelu%s n %lld", th ? " tanh" : "", (long long)d[0]);
        /* against the reference: its own 1 + erf (1 + tanh) cancels for
        ** negative v, an error of about an ulp of 1 times v / 2 */
        kiln_tensor *ax = abs_of(x);
        g_errscale = ax->data;
        g_errk = 1.2e-7;
        int ran = check_tactics(n, in, 1e-37, 1e-5, desc);
        g_errscale = NULL;
        CHECK(ran >= 2, "%s: only %d runs", desc, ran);
        tensor_free(ax);
        /* against the exact value (double): every tactic within 1e-5
        ** relative */
        for (const kiln_tactic *const *tp = cpu_tactic_table; *tp; tp++) {
            if ((*tp)->op != OP_Gelu || ((*tp)->isa & ~g_host)) continue;
            kiln_tensor *want;
            if (tensor_new(KILN_DTYPE_FLOAT32, 1, d, &want)) die("want");
            float *wp = want->data;
            for (int64_t i = 0; i < d[0]; i++) {
                double v = p[i];
                wp[i] = th ? (float)(v / (1.0 + exp(-2.0 * 0.7978845608028654 *
                                                    (v + 0.044715 * v * v * v))))
                           : (float)(0.5 * v * erfc(-v * 0.7071067811865476));
            }
            bool declined;
            kiln_tensor *got = run_tactic(*tp, n, in, want, true, &declined);
            /* below 1e-20 (v < -9.5) the float rounding of v / sqrt 2
            ** alone moves e^{-v^2/2} by more than 1e-5 relative */
            CHECK(got && close_enough((*tp)->name, desc, got, want, 1e-20, 1e-5),
                  "%s vs exact GELU on %s", (*tp)->name, desc);
            tensor_free(got);
            tensor_free(want);
        }
        tensor_free(x);
    }
}

/* ------------------------------------------------------------ FusedElementwise */
static ir_node *fe_node(int n_in, const int64_t *prog, int n_ins, const float *k, int nk) {
    ir_node *n = new_node(OP_FusedElementwise, n_in);
    if (!ir_edit_set_ints(n, "program", prog, 4 * n_ins)) die("program");
    if (nk && !ir_edit_set_floats(n, "constants", k, nk)) die("constants");
    return n;
}

/* Dense sweep of one unary opcode over [lo, hi] plus tiny values. */
static void sweep_unary(int opc, float lo, float hi, const float *k, int nk, double atol) {
    int64_t d[1] = {60001};
    kiln_tensor *x;
    if (tensor_new(KILN_DTYPE_FLOAT32, 1, d, &x)) die("x");
    float *p = x->data;
    for (int64_t i = 0; i < d[0]; i++) p[i] = lo + (hi - lo) * (float)i / (float)(d[0] - 1);
    for (int64_t i = 0; i < 2000; i++) p[i] = (float)((rnd() - 0.5) * 1e-3 * pow(10, -rnd() * 6));
    int64_t prog[4] = {opc, 0, nk ? 1 : -1, nk > 1 ? 2 : -1};
    ir_node *n = fe_node(1, prog, 1, k, nk);
    const kiln_tensor *in[1] = {x};
    char desc[64];
    snprintf(desc, sizeof desc, "sweep opcode %d [%g, %g]", opc, lo, hi);
    /* GELU: the reference's 1 + erf cancels for negative v (see test_gelu) */
    kiln_tensor *ax = abs_of(x);
    if (opc == FE_GELU || opc == FE_GELU_TANH) {
        g_errscale = ax->data;
        g_errk = 1.2e-7;
    }
    int ran = check_tactics(n, in, atol, 1e-5, desc);
    g_errscale = NULL;
    CHECK(ran >= 2, "%s: only %d runs", desc, ran);
    tensor_free(ax);
    tensor_free(x);
}

static void test_fused_eltwise(void) {
    /* vector math accuracy: exp, erf, tanh, sigmoid, GELU (both forms) */
    sweep_unary(FE_EXP, -87, 88, NULL, 0, 1e-37);
    sweep_unary(FE_ERF, -6, 6, NULL, 0, 1e-37);
    sweep_unary(FE_TANH, -12, 12, NULL, 0, 1e-37);
    sweep_unary(FE_SIGMOID, -80, 40, NULL, 0, 1e-37);
    sweep_unary(FE_GELU, -12, 12, NULL, 0, 1e-37);
    sweep_unary(FE_GELU_TANH, -12, 12, NULL, 0, 1e-37);
    /* every opcode, unary over x, binary against a broadcast y */
    static const int unary[] = {FE_NEG, FE_ABS, FE_SQRT, FE_EXP, FE_LOG, FE_TANH, FE_SIGMOID,
                                FE_RELU, FE_ERF, FE_RECIPROCAL, FE_FLOOR, FE_CEIL, FE_SIN,
                                FE_COS, FE_SOFTPLUS, FE_SOFTSIGN, FE_HARD_SWISH, FE_GELU,
                                FE_GELU_TANH};
    static const int binary[] = {FE_ADD, FE_SUB, FE_MUL, FE_DIV, FE_POW, FE_MAX, FE_MIN};
    static const int64_t xs[][3] = {{2, 7, 33}, {1, 1, 5}, {3, 16, 16}, {1, 130, 1}};
    static const int64_t ys[][3] = {{1, 1, 33}, {1, 1, 1}, {3, 1, 16}, {1, 130, 7}};
    for (int s = 0; s < 4; s++) {
        for (unsigned u = 0; u < KILN_ARRAY_LEN(unary); u++) {
            /* (x + y) then the unary, then * x: three instructions */
            kiln_tensor *x = rand_f32(3, xs[s], -4, 4), *y = rand_f32(3, ys[s], -4, 4);
            int64_t prog[12] = {FE_ADD, 0, 1, -1, unary[u], 2, -1, -1, FE_MUL, 3, 0, -1};
            ir_node *n = fe_node(2, prog, 3, NULL, 0);
            const kiln_tensor *in[2] = {x, y};
            char desc[64];
            snprintf(desc, sizeof desc, "chain add/%d/mul shape %d", unary[u], s);
            kiln_tensor *es = NULL;
            if (unary[u] == FE_GELU || unary[u] == FE_GELU_TANH) {
                /* |x + y| |x|: the cancellation in GELU times the multiplier */
                kiln_tensor *zr[1];
                int64_t pa[8] = {FE_ADD, 0, 1, -1, FE_MUL, 2, 0, -1};
                kiln_tensor *axx = abs_of(x), *ayy = abs_of(y);
                const kiln_tensor *ain[2] = {axx, ayy};
                if (ref_run_node(fe_node(2, pa, 2, NULL, 0), ain, zr)) die("errscale");
                es = zr[0];
                g_errscale = es->data;
                g_errk = 1.2e-7;
                tensor_free(axx), tensor_free(ayy);
            }
            int ran = check_tactics(n, in, 1e-30, 2e-5, desc);
            g_errscale = NULL;
            tensor_free(es);
            CHECK(ran >= 2, "%s: only %d runs", desc, ran);
            tensor_free(x), tensor_free(y);
        }
        for (unsigned b = 0; b < KILN_ARRAY_LEN(binary); b++) {
            kiln_tensor *x = rand_f32(3, xs[s], 0.1f, 4), *y = rand_f32(3, ys[s], -3, 3);
            float *yp = y->data;
            if (binary[b] == FE_MAX || binary[b] == FE_MIN) yp[0] = NAN;
            int64_t prog[4] = {binary[b], 0, 1, -1};
            ir_node *n = fe_node(2, prog, 1, NULL, 0);
            const kiln_tensor *in[2] = {x, y};
            char desc[64];
            snprintf(desc, sizeof desc, "binary %d shape %d", binary[b], s);
            int ran = check_tactics(n, in, 1e-30, 1e-5, desc);
            CHECK(ran >= 2, "%s: only %d runs", desc, ran);
            /* y op x too: the broadcast operand first */
            int64_t prog2[4] = {binary[b], 1, 0, -1};
            ir_node *n2 = fe_node(2, prog2, 1, NULL, 0);
            ran = check_tactics(n2, in, 1e-30, 1e-5, desc);
            CHECK(ran >= 2, "%s (swapped): only %d runs", desc, ran);
            tensor_free(x), tensor_free(y);
        }
    }
    /* parameter opcodes and Pow by constants 2 and 3, with constants */
    {
        int64_t d[2] = {5, 37};
        kiln_tensor *x = rand_f32(2, d, -5, 5);
        const kiln_tensor *in[1] = {x};
        float k[4] = {0.1f, 0.3f, 0.4f, 2.0f};
        int64_t p1[4] = {FE_LEAKY_RELU, 0, 1, -1};
        int64_t p2[4] = {FE_ELU, 0, 1, -1};
        int64_t p3[4] = {FE_HARD_SIGMOID, 0, 2, 3};
        int64_t p4[4] = {FE_CLIP, 0, 1, 3};
        int64_t p5[4] = {FE_CLIP, 0, -1, 2};
        int64_t p6[4] = {FE_CLIP, 0, 3, -1};
        int64_t p7[4] = {FE_POW, 0, 4, -1};
        const int64_t *ps[7] = {p1, p2, p3, p4, p5, p6, p7};
        for (int i = 0; i < 7; i++) {
            ir_node *n = fe_node(1, ps[i], 1, k, 4);
            char desc[48];
            snprintf(desc, sizeof desc, "param opcode %lld case %d", (long long)ps[i][0], i);
            int ran = check_tactics(n, in, 1e-30, 1e-5, desc);
            CHECK(ran >= 2, "%s: only %d runs", desc, ran);
        }
        float k3[1] = {3.0f};
        int64_t p8[4] = {FE_POW, 0, 1, -1};
        ir_node *n = fe_node(1, p8, 1, k3, 1);
        int ran = check_tactics(n, in, 1e-30, 1e-5, "pow 3");
        CHECK(ran >= 2, "pow 3: only %d runs", ran);
        tensor_free(x);
    }
    /* the erf-GELU chain as exporters spell it, on a BERT-sized block, and a
    ** three-input chain with a [rows, 1] operand (innermost broadcast) */
    {
        int64_t d[3] = {1, 128, 3072};
        kiln_tensor *x = rand_f32(3, d, -6, 6);
        float k[3] = {1.4142135f, 1.0f, 0.5f};
        int64_t prog[20] = {FE_DIV, 0, 1, -1, FE_ERF, 4, -1, -1, FE_ADD, 5, 2, -1,
                            FE_MUL, 0, 6, -1, FE_MUL, 7, 3, -1};
        ir_node *n = fe_node(1, prog, 5, k, 3);
        const kiln_tensor *in[1] = {x};
        kiln_tensor *ax = abs_of(x);
        g_errscale = ax->data;
        g_errk = 1.2e-7;
        int ran = check_tactics(n, in, 1e-30, 2e-5, "gelu chain 1x128x3072");
        g_errscale = NULL;
        tensor_free(ax);
        CHECK(ran >= 2, "gelu chain: only %d runs", ran);
        tensor_free(x);
        int64_t a[3] = {2, 9, 19}, b[1] = {19}, c[3] = {2, 9, 1};
        kiln_tensor *xa = rand_f32(3, a, -2, 2), *xb = rand_f32(1, b, -2, 2), *xc = rand_f32(3, c, 0.5f, 2);
        int64_t prog2[12] = {FE_SUB, 0, 2, -1, FE_MUL, 3, 1, -1, FE_DIV, 4, 2, -1};
        ir_node *n2 = fe_node(3, prog2, 3, NULL, 0);
        const kiln_tensor *in2[3] = {xa, xb, xc};
        ran = check_tactics(n2, in2, 1e-30, 2e-5, "three-input broadcast chain");
        CHECK(ran >= 2, "three-input chain: only %d runs", ran);
        tensor_free(xa), tensor_free(xb), tensor_free(xc);
    }
}

/* Single elementwise ops (one-instruction programs), with broadcasting. */
static void test_single_ops(void) {
    static const int bin[] = {OP_Add, OP_Sub, OP_Mul, OP_Div};
    static const int un[] = {OP_Neg, OP_Abs, OP_Sqrt, OP_Exp, OP_Tanh, OP_Sigmoid,
                             OP_Relu, OP_Erf, OP_Reciprocal};
    static const int64_t xs[][3] = {{1, 128, 768}, {2, 7, 33}, {1, 1, 5}, {3, 16, 1}};
    static const int64_t ys[][3] = {{1, 128, 768}, {1, 1, 33}, {1, 1, 1}, {3, 1, 17}};
    for (int s = 0; s < 4; s++) {
        for (unsigned b = 0; b < KILN_ARRAY_LEN(bin); b++)
            for (int sw = 0; sw < 2; sw++) {
                kiln_tensor *x = rand_f32(3, xs[s], -3, 3), *y = rand_f32(3, ys[s], 0.2f, 3);
                ir_node *n = new_node(bin[b], 2);
                const kiln_tensor *in[2] = {sw ? y : x, sw ? x : y};
                char desc[64];
                snprintf(desc, sizeof desc, "op %d shape %d%s", bin[b], s, sw ? " swapped" : "");
                int ran = check_tactics(n, in, 1e-30, 1e-6, desc);
                CHECK(ran >= 2, "%s: only %d runs", desc, ran);
                tensor_free(x), tensor_free(y);
            }
        for (unsigned u = 0; u < KILN_ARRAY_LEN(un); u++) {
            kiln_tensor *x = rand_f32(3, xs[s], -5, 5);
            ir_node *n = new_node(un[u], 1);
            const kiln_tensor *in[1] = {x};
            char desc[64];
            snprintf(desc, sizeof desc, "op %d shape %d", un[u], s);
            int ran = check_tactics(n, in, 1e-37, 1e-5, desc);
            CHECK(ran >= 2, "%s: only %d runs", desc, ran);
            tensor_free(x);
        }
    }
}

/* Transpose: every element size, ranks 1..6, random perms, exact bytes. */
static void test_transpose(void) {
    static const kiln_dtype dts[] = {KILN_DTYPE_UINT8, KILN_DTYPE_FLOAT16, KILN_DTYPE_FLOAT32,
                                     KILN_DTYPE_INT64};
    static const int64_t sizes[] = {1, 2, 3, 5, 7, 12, 33, 64, 65};
    for (int it = 0; it < 150; it++) {
        int r = 1 + (int)(rnd() * 6);
        int64_t d[KILN_MAX_RANK], numel = 1;
        for (int k = 0; k < r; k++) {
            d[k] = sizes[(int)(rnd() * 9)];
            if (numel * d[k] > 200000) d[k] = 1;
            numel *= d[k];
        }
        kiln_dtype dt = dts[it % 4];
        kiln_tensor *x;
        if (tensor_new(dt, r, d, &x)) die("x");
        size_t es;
        dtype_nbytes(dt, 1, &es);
        uint8_t *xb = x->data;
        for (size_t i = 0; i < (size_t)numel * es; i++) xb[i] = (uint8_t)(rnd() * 256);
        int64_t perm[KILN_MAX_RANK];
        for (int k = 0; k < r; k++) perm[k] = k;
        for (int k = r - 1; k > 0; k--) {
            int j = (int)(rnd() * (k + 1));
            int64_t t = perm[k];
            perm[k] = perm[j], perm[j] = t;
        }
        ir_node *n = new_node(OP_Transpose, 1);
        bool dflt = rnd() < 0.15;
        if (!dflt) ir_edit_set_ints(n, "perm", perm, r);
        const kiln_tensor *in[1] = {x};
        kiln_tensor *want[1];
        if (ref_run_node(n, in, want)) die("ref transpose");
        for (int th = 1; th <= 3; th += 2) {
            kiln_set_num_threads(th);
            ir_type ty = {dt, r, {0}};
            memcpy(ty.dims, d, sizeof d);
            const ir_type *tin[1] = {&ty};
            CHECK(cpu_t_transpose_c.supports(n, tin), "transpose declined");
            kiln_tensor *y;
            if (tensor_new(dt, want[0]->rank, want[0]->dims, &y)) die("y");
            memset(y->data, 0xA5, (size_t)numel * es);
            ref_ctx c;
            memset(&c, 0, sizeof c);
            c.node = n;
            c.opset = (int)g_model->opset;
            c.n_in = 1;
            c.in = in;
            c.n_out = 1;
            kiln_tensor *outs[1] = {y};
            c.out = outs;
            int rc = cpu_t_transpose_c.run(&c);
            CHECK(rc == 0 && !memcmp(y->data, want[0]->data, (size_t)numel * es),
                  "transpose rank %d dtype %d perm%s (%d threads): %s", r, (int)dt,
                  dflt ? " default" : "", th, rc ? c.err : "bytes differ");
            count(cpu_t_transpose_c.name);
            tensor_free(y);
        }
        kiln_set_num_threads(1);
        tensor_free(want[0]);
        tensor_free(x);
    }
}

int main(void) {
    g_host = kiln_backend_cpu()->host_isa();
    char isa[64];
    printf("host isa: %s\n", kiln_isa_names(g_host, isa, sizeof isa));
    printf("kernels: avx512 %s, avx2 %s\n", cpu_xf_avx512.available ? "built" : "absent",
           cpu_xf_avx2.available ? "built" : "absent");
    g_model = ir_model_new();
    if (!g_model) die("model");
    g_model->opset = 17;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) die("graph");
    g_model->graph = g_graph;
    test_attention();
    test_norms();
    test_softmax();
    test_gelu();
    test_fused_eltwise();
    test_single_ops();
    test_transpose();
    ir_model_free(g_model);
    for (int i = 0; i < 128 && g_names[i]; i++) printf("  %-40s %d checks\n", g_names[i], g_counts[i]);
    return test_summary();
}
