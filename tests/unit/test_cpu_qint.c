/* test_cpu_qint.c: the ConvInteger and MatMulInteger tactics (cpu_qint.c;
** portable, AVX2, AVX-512 VNNI and AMX tiles, each this host can run,
** called directly)
** against the reference kernels, bit for bit, on random awkward shapes:
** uint8 and int8 activations and weights, with and without zero points
** (scalar and per output channel / column), K not a multiple of 4,
** position counts across the 64-position blocks, groups and depthwise,
** strides, dilations, pads and auto_pad, batched MatMulInteger, extreme
** bytes throughout (every activation 255 against weights of -128 or 127),
** prepared weights (the builder's blob) and the per-run conversion,
** workspace and malloc paths, 1 and 3 threads. QFusedGemm (B [N, K]) with
** every epilogue: bias, float32 or 8-bit residual, the activations, float32
** or requantized int8/uint8 output. QLayerNormalization (cpu_qnorm.c)
** against the reference within one step on at most 1% of the elements (the
** LayerNorm tactics normalize in float32, the reference in float64). */
#include "../../src/backends/cpu/cpu_int8.h"
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/ir/ir_edit.h"
#include "kiln.h"

#include "test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static unsigned g_host;
static int g_blob_runs;
static int g_amx_runs; /* cases the AMX tactics ran (hosts with amxint8) */

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

static int64_t irand(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rnd() * (double)(hi - lo + 1));
}

static kiln_tensor *tens(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) die("tensor");
    return t;
}

/* uniform bytes of type dt; ext: all at one end (lo_end: the low one) */
static void fill8(kiln_tensor *t, bool ext, bool lo_end) {
    int64_t lo = t->dtype == KILN_DTYPE_INT8 ? -128 : 0;
    for (int64_t i = 0; i < tensor_numel(t); i++)
        dt_set_i64(t->dtype, t->data, (size_t)i,
                   ext ? (lo_end ? lo : lo + 255) : lo + irand(0, 255));
}

static int run_tactic(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in, int nin,
                      kiln_tensor *y, bool use_blob, bool use_ws) {
    ir_type types[12];
    const ir_type *tin[12] = {0};
    memset(types, 0, sizeof types);
    for (int i = 0; i < nin; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (!t->supports(n, tin)) return 1;
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = nin;
    c.in = in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    size_t wsz = use_ws ? t->workspace(n, tin) : 0;
    void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
    c.ws = ws;
    c.ws_size = ws ? wsz : 0;
    void *blob = NULL;
    size_t blob_n = 0;
    const kiln_tensor *in2[12];
    kiln_tensor wnodata;
    if (use_blob) {
        const kiln_tensor *cin[12] = {NULL, in[1]};
        CHECK(t->prepare(n, tin, cin, &blob, &blob_n) == KILN_OK, "%s prepare", t->name);
        c.blob = blob;
        c.blob_size = blob_n;
        g_blob_runs += blob != NULL;
        /* the blob replaces the weights: the engine stores none */
        for (int i = 0; i < nin; i++) in2[i] = in[i];
        wnodata = *in[1];
        wnodata.data = NULL;
        in2[1] = &wnodata;
        c.in = in2;
    }
    int rc = t->run(&c);
    if (rc) fprintf(stderr, "%s failed: %s\n", t->name, c.err);
    kiln_aligned_free(ws);
    kiln_aligned_free(blob);
    return rc ? -1 : 0;
}

static void check_all(const kiln_tactic *const *tacs, ir_node *n, const kiln_tensor *const *in,
                      int nin, const char *desc) {
    kiln_tensor *out[1];
    if (ref_run_node(n, in, out)) {
        CHECK(0, "%s: reference failed: %s", desc, kiln_last_error());
        return;
    }
    kiln_tensor *want = out[0];
    static int flip;
    for (int ti = 0; ti < 4; ti++) {
        const kiln_tactic *t = tacs[ti];
        if (t->isa & ~g_host) continue;
        if (ti == 3) g_amx_runs++;
        for (int th = 1; th <= 3; th += 2) {
            kiln_set_num_threads(th);
            kiln_tensor *y = tens(want->dtype, want->rank, want->dims);
            memset(y->data, 0x5A, y->nbytes);
            flip++;
            int rc = run_tactic(t, n, in, nin, y, flip & 1, flip & 2);
            CHECK(rc == 0, "%s %s: did not run (%d)", t->name, desc, rc);
            if (rc == 0 && want->nbytes == (size_t)tensor_numel(want)) { /* 8-bit */
                int64_t bad = -1;
                for (int64_t i = 0; i < tensor_numel(y) && bad < 0; i++)
                    if (((uint8_t *)y->data)[i] != ((uint8_t *)want->data)[i]) bad = i;
                CHECK(bad < 0, "%s t=%d %s: y[%lld] = %lld, want %lld", t->name, th, desc,
                      (long long)bad,
                      bad < 0 ? 0LL : (long long)dt_get_i64(y->dtype, y->data, (size_t)bad),
                      bad < 0 ? 0LL : (long long)dt_get_i64(want->dtype, want->data, (size_t)bad));
            } else if (rc == 0) { /* int32, or float32 bit for bit */
                int64_t bad = -1;
                for (int64_t i = 0; i < tensor_numel(y) && bad < 0; i++)
                    if (((int32_t *)y->data)[i] != ((int32_t *)want->data)[i]) bad = i;
                bool f = want->dtype == KILN_DTYPE_FLOAT32;
                CHECK(bad < 0, "%s t=%d %s: y[%lld] = %.9g, want %.9g", t->name, th, desc,
                      (long long)bad,
                      bad < 0 ? 0.0 : f ? (double)((float *)y->data)[bad]
                                        : (double)((int32_t *)y->data)[bad],
                      bad < 0 ? 0.0 : f ? (double)((float *)want->data)[bad]
                                        : (double)((int32_t *)want->data)[bad]);
            }
            tensor_free(y);
        }
    }
    tensor_free(want);
}

static kiln_tensor *zp(kiln_dtype dt, int64_t n, bool vec) {
    kiln_tensor *t = vec ? tens(dt, 1, &n) : tens(dt, 0, NULL);
    int64_t lo = dt == KILN_DTYPE_INT8 ? -128 : 0;
    for (int64_t i = 0; i < (vec ? n : 1); i++)
        dt_set_i64(dt, t->data, (size_t)i, lo + irand(0, 255));
    return t;
}

/* float32 values of one of a few kinds: 1 value or n; NULL for kind 0 */
static kiln_tensor *fvec(int64_t n, bool vec, double lo, double hi) {
    kiln_tensor *t = vec ? tens(KILN_DTYPE_FLOAT32, 1, &n) : tens(KILN_DTYPE_FLOAT32, 0, NULL);
    for (int64_t i = 0; i < (vec ? n : 1); i++)
        ((float *)t->data)[i] = (float)(lo + (hi - lo) * rnd());
    return t;
}

static void conv_case(bool ext, bool tofloat) {
    int64_t N = irand(1, 2), G = rnd() < 0.2 ? irand(2, 3) : 1;
    int64_t Cg = irand(1, 9), Mg = irand(1, 14), kh = irand(1, 3), kw = irand(1, 3);
    if (rnd() < 0.1) G = irand(2, 7), Cg = 1, Mg = 1; /* depthwise */
    if (ext) G = 1, Cg = 64, Mg = 3, kh = kw = 3;
    int64_t C = G * Cg, M = G * Mg, H = irand(kh, 13), W = irand(kw, 19);
    if (rnd() < 0.1) H = 9, W = 15; /* 135 positions: three blocks */
    kiln_dtype xt = rnd() < 0.5 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype wt = rnd() < 0.5 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, Cg, kh, kw};
    kiln_tensor *x = tens(xt, 4, xd), *w = tens(wt, 4, wd);
    fill8(x, ext, false);
    fill8(w, ext, wt == KILN_DTYPE_INT8);
    int mode = (int)irand(0, 3); /* 0 none, 1 x only, 2 both scalar, 3 w per channel */
    kiln_tensor *xz = mode ? zp(xt, 1, false) : NULL;
    if (ext && xz) dt_set_i64(xt, xz->data, 0, xt == KILN_DTYPE_INT8 ? -128 : 0);
    kiln_tensor *wz = mode >= 2 ? zp(wt, M, mode == 3) : NULL;
    int nin = wz ? 4 : xz ? 3 : 2;
    int smode = (int)irand(0, 1), bmode = (int)irand(0, 2);
    kiln_tensor *sc = tofloat ? fvec(M, smode, 1e-6, 0.5) : NULL;
    kiln_tensor *bi = tofloat && bmode ? fvec(M, bmode == 2, -3, 3) : NULL;
    if (tofloat) nin = bi ? 6 : 5;
    ir_node *n = ir_edit_add_node(g_graph, tofloat ? OP_ConvIntegerToFloat : OP_ConvInteger, nin,
                                  1, NULL);
    if (!n) die("node");
    ir_edit_set_int(n, "group", G);
    int64_t st[2] = {irand(1, 2), irand(1, 2)}, dl[2] = {1, 1};
    if (H >= 2 * kh && rnd() < 0.2) dl[0] = 2;
    if (W >= 2 * kw && rnd() < 0.2) dl[1] = 2;
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "dilations", dl, 2);
    if (rnd() < 0.15) {
        ir_edit_set_str(n, "auto_pad", rnd() < 0.5 ? "SAME_UPPER" : "SAME_LOWER");
    } else {
        int64_t pads[4] = {irand(0, 2), irand(0, 2), irand(0, 2), irand(0, 2)};
        ir_edit_set_ints(n, "pads", pads, 4);
    }
    const kiln_tensor *in[6] = {x, w, xz, wz, sc, bi};
    char desc[200];
    snprintf(desc, sizeof desc,
             "%s N%lld C%lld %lldx%lld M%lld G%lld k%lldx%lld s%lld,%lld "
             "d%lld,%lld x%s w%s zp%d ext%d s%d b%d",
             tofloat ? "ConvIntegerToFloat" : "ConvInteger", (long long)N, (long long)C, (long long)H,
             (long long)W, (long long)M, (long long)G, (long long)kh, (long long)kw,
             (long long)st[0], (long long)st[1], (long long)dl[0], (long long)dl[1],
             xt == KILN_DTYPE_INT8 ? "s8" : "u8", wt == KILN_DTYPE_INT8 ? "s8" : "u8", mode, ext,
             smode, bmode);
    static const kiln_tactic *const tacs[4] = {&cpu_t_convint_c, &cpu_t_convint_avx2,
                                               &cpu_t_convint_vnni, &cpu_t_convint_amx};
    static const kiln_tactic *const ftacs[4] = {&cpu_t_convintf_c, &cpu_t_convintf_avx2,
                                                &cpu_t_convintf_vnni, &cpu_t_convintf_amx};
    check_all(tofloat ? ftacs : tacs, n, in, nin, desc);
    ir_edit_kill(n);
    for (int i = 0; i < 6; i++) tensor_free((kiln_tensor *)in[i]);
}

static void matmul_case(bool tofloat) {
    int ar = (int)irand(2, 4);
    int64_t ad[4], K = rnd() < 0.2 ? irand(257, 700) : irand(1, 70);
    int64_t Nc = rnd() < 0.3 ? irand(50, 200) : irand(1, 40); /* past 24 rows: split over tasks */
    for (int i = 0; i < ar - 2; i++) ad[i] = irand(1, 3);
    ad[ar - 2] = irand(1, 150);
    ad[ar - 1] = K;
    int64_t bd[2] = {K, Nc};
    kiln_dtype at = rnd() < 0.5 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype bt = rnd() < 0.5 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_tensor *a = tens(at, ar, ad), *b = tens(bt, 2, bd);
    fill8(a, false, false);
    fill8(b, false, false);
    int mode = (int)irand(0, 3);
    kiln_tensor *az = mode ? zp(at, 1, false) : NULL;
    kiln_tensor *bz = mode >= 2 ? zp(bt, Nc, mode == 3) : NULL;
    int nin = bz ? 4 : az ? 3 : 2;
    /* MatMulIntegerToFloat: scale of 1 or N values (tiny to large, so int32
    ** values past 2^24 round in the Cast), bias none, 1 or N values */
    int smode = (int)irand(0, 1), bmode = (int)irand(0, 2);
    kiln_tensor *sc = tofloat ? fvec(Nc, smode, 1e-6, 0.5) : NULL;
    kiln_tensor *bi = tofloat && bmode ? fvec(Nc, bmode == 2, -3, 3) : NULL;
    if (tofloat) nin = bi ? 6 : 5;
    ir_node *n = ir_edit_add_node(g_graph, tofloat ? OP_MatMulIntegerToFloat : OP_MatMulInteger,
                                  nin, 1, NULL);
    if (!n) die("node");
    const kiln_tensor *in[6] = {a, b, az, bz, sc, bi};
    char desc[160];
    snprintf(desc, sizeof desc, "%s rank %d rows %lld K %lld N %lld a%s b%s zp%d%s%s",
             tofloat ? "MatMulIntegerToFloat" : "MatMulInteger", ar,
             (long long)ad[ar - 2], (long long)K, (long long)Nc,
             at == KILN_DTYPE_INT8 ? "s8" : "u8",
             bt == KILN_DTYPE_INT8 ? "s8" : "u8", mode,
             !tofloat ? "" : smode ? " scale[N]" : " scale[1]",
             !tofloat ? "" : bmode == 2 ? " bias[N]" : bmode ? " bias[1]" : "");
    static const kiln_tactic *const tacs[4] = {&cpu_t_matmulint_c, &cpu_t_matmulint_avx2,
                                               &cpu_t_matmulint_vnni, &cpu_t_matmulint_amx};
    static const kiln_tactic *const ftacs[4] = {&cpu_t_matmulintf_c, &cpu_t_matmulintf_avx2,
                                                &cpu_t_matmulintf_vnni, &cpu_t_matmulintf_amx};
    check_all(tofloat ? ftacs : tacs, n, in, nin, desc);
    ir_edit_kill(n);
    for (int i = 0; i < 6; i++) tensor_free((kiln_tensor *)in[i]);
}

/* QFusedGemm: A [..., K] x B [N, K] with the epilogue's every form, bit
** for bit against the reference. */
static void qfgemm_case(void) {
    int ar = (int)irand(2, 3);
    int64_t ad[3], K = rnd() < 0.2 ? irand(257, 700) : irand(1, 70);
    int64_t Nc = rnd() < 0.3 ? irand(50, 200) : irand(1, 40);
    if (ar == 3) ad[0] = irand(1, 3);
    ad[ar - 2] = irand(1, 150);
    ad[ar - 1] = K;
    int64_t bd[2] = {Nc, K};
    kiln_dtype at = rnd() < 0.5 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype bt = rnd() < 0.7 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_tensor *a = tens(at, ar, ad), *b = tens(bt, 2, bd);
    fill8(a, false, false);
    fill8(b, false, false);
    int mode = (int)irand(0, 3);
    kiln_tensor *az = mode ? zp(at, 1, false) : NULL;
    kiln_tensor *bz = mode >= 2 ? zp(bt, Nc, mode == 3) : NULL;
    int smode = (int)irand(0, 1), bmode = (int)irand(0, 2);
    /* small scales keep values where the activations and rounding matter */
    kiln_tensor *sc = fvec(Nc, smode, 1e-6, 2e-3);
    kiln_tensor *bi = bmode ? fvec(Nc, bmode == 2, -3, 3) : NULL;
    int rmode = (int)irand(0, 3); /* none, float32, int8, uint8 */
    int64_t yd[3];
    memcpy(yd, ad, sizeof yd);
    yd[ar - 1] = Nc;
    kiln_tensor *r = NULL, *rs = NULL, *rz = NULL;
    if (rmode == 1) {
        r = tens(KILN_DTYPE_FLOAT32, ar, yd);
        for (int64_t i = 0; i < tensor_numel(r); i++) ((float *)r->data)[i] = (float)(rnd() * 6 - 3);
    } else if (rmode >= 2) {
        r = tens(rmode == 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8, ar, yd);
        fill8(r, false, false);
        rs = fvec(1, false, 1e-3, 0.05);
        rz = rnd() < 0.5 ? zp(r->dtype, 1, false) : NULL;
    }
    int qmode = (int)irand(0, 2); /* float32, int8, uint8 output */
    kiln_tensor *ys = NULL, *yz = NULL;
    if (qmode) {
        ys = fvec(1, false, 0.005, 0.05);
        yz = zp(qmode == 1 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8, 1, false);
    }
    static const char *const acts[6] = {"", "Relu", "Gelu", "GeluTanh", "Sigmoid", "Tanh"};
    const char *act = acts[irand(0, 5)];
    int nin = qmode ? 11 : rz ? 9 : rs ? 8 : r ? 7 : bi ? 6 : 5;
    ir_node *n = ir_edit_add_node(g_graph, OP_QFusedGemm, nin, 1, NULL);
    if (!n) die("node");
    if (act[0]) ir_edit_set_str(n, "activation", act);
    const kiln_tensor *in[11] = {a, b, az, bz, sc, bi, r, rs, rz, ys, yz};
    char desc[200];
    snprintf(desc, sizeof desc, "QFusedGemm rank %d rows %lld K %lld N %lld a%s b%s zp%d%s%s "
             "res%d act '%s' out%d", ar, (long long)ad[ar - 2], (long long)K, (long long)Nc,
             at == KILN_DTYPE_INT8 ? "s8" : "u8", bt == KILN_DTYPE_INT8 ? "s8" : "u8", mode,
             smode ? " scale[N]" : " scale[1]",
             bmode == 2 ? " bias[N]" : bmode ? " bias[1]" : "", rmode, act, qmode);
    static const kiln_tactic *const tacs[4] = {&cpu_t_qfgemm_c, &cpu_t_qfgemm_avx2,
                                               &cpu_t_qfgemm_vnni, &cpu_t_qfgemm_amx};
    check_all(tacs, n, in, nin, desc);
    ir_edit_kill(n);
    for (int i = 0; i < 11; i++) tensor_free((kiln_tensor *)in[i]);
}

static void qln_case(void) {
    int rank = (int)irand(2, 3);
    int64_t d[3];
    for (int i = 0; i < rank; i++) d[i] = irand(1, 9);
    d[rank - 1] = rnd() < 0.5 ? irand(1, 40) : irand(100, 800);
    int64_t len = d[rank - 1];
    kiln_tensor *x = tens(KILN_DTYPE_FLOAT32, rank, d);
    double shift = rnd() * 10 - 5, spread = 0.1 + rnd() * 4;
    for (int64_t i = 0; i < tensor_numel(x); i++)
        ((float *)x->data)[i] = (float)(shift + spread * (rnd() * 2 - 1));
    kiln_tensor *sc = fvec(len, true, 0.5, 1.5), *bi = rnd() < 0.7 ? fvec(len, true, -1, 1) : NULL;
    kiln_dtype yt = rnd() < 0.6 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_tensor *ys = fvec(1, false, 0.01, 0.05), *yz = zp(yt, 1, false);
    if (yt == KILN_DTYPE_INT8) dt_set_i64(yt, yz->data, 0, irand(-10, 10));
    ir_node *n = ir_edit_add_node(g_graph, OP_QLayerNormalization, 5, 1, NULL);
    if (!n) die("node");
    ir_edit_set_float(n, "epsilon", rnd() < 0.5 ? 1e-5f : 1e-12f);
    const kiln_tensor *in[5] = {x, sc, bi, ys, yz};
    kiln_tensor *out[1];
    if (ref_run_node(n, in, out)) {
        CHECK(0, "QLayerNormalization reference failed: %s", kiln_last_error());
    } else {
        static const kiln_tactic *const tacs[3] = {&cpu_t_qlayernorm_c, &cpu_t_qlayernorm_avx2,
                                                   &cpu_t_qlayernorm_avx512};
        for (int ti = 0; ti < 3; ti++) {
            if (tacs[ti]->isa & ~g_host) continue;
            kiln_tensor *y = tens(out[0]->dtype, out[0]->rank, out[0]->dims);
            int rc = run_tactic(tacs[ti], n, in, 5, y, false, ti & 1);
            CHECK(rc == 0, "%s: did not run", tacs[ti]->name);
            int64_t ne = tensor_numel(y), off = 0, bad = 0;
            for (int64_t i = 0; rc == 0 && i < ne; i++) {
                int64_t dv = dt_get_i64(y->dtype, y->data, (size_t)i) -
                             dt_get_i64(y->dtype, out[0]->data, (size_t)i);
                off += dv == 1 || dv == -1;
                bad += dv > 1 || dv < -1;
            }
            CHECK(bad == 0 && off <= 2 + ne / 100, "%s rows x %lld: %lld off by one, %lld more",
                  tacs[ti]->name, (long long)len, (long long)off, (long long)bad);
            tensor_free(y);
        }
        tensor_free(out[0]);
    }
    ir_edit_kill(n);
    for (int i = 0; i < 5; i++) tensor_free((kiln_tensor *)in[i]);
}

/* DynamicQuantizeLinear: bytes, scale (bits) and zero point as the
** reference's, over sizes around the chunk and vector widths and inputs
** with one sign only, all zeros, NaN and infinities. */
static void dynquant_case(int64_t n, int kind) {
    kiln_tensor *x = tens(KILN_DTYPE_FLOAT32, 1, &n);
    float *xv = x->data;
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(rnd() * 20.0 - 7.0);
        if (kind == 1) v = fabsf(v) + 0.5f;
        if (kind == 2) v = -fabsf(v) - 0.5f;
        if (kind == 3) v = 0.0f;
        if (kind == 4 && rnd() < 0.01) v = NAN;
        if (kind == 5 && i == n / 2) v = INFINITY;
        if (kind == 6 && i == n / 3) v = -INFINITY;
        xv[i] = v;
    }
    ir_node *nd = ir_edit_add_node(g_graph, OP_DynamicQuantizeLinear, 1, 3, NULL);
    if (!nd) die("node");
    const kiln_tensor *in[1] = {x};
    kiln_tensor *want[3];
    if (ref_run_node(nd, in, want)) die("reference");
    static const kiln_tactic *const tacs[2] = {&cpu_t_dynquant_c, &cpu_t_dynquant_avx2};
    for (int ti = 0; ti < 2; ti++) {
        const kiln_tactic *t = tacs[ti];
        if (t->isa & ~g_host) continue;
        for (int th = 1; th <= 3; th += 2) {
            kiln_set_num_threads(th);
            kiln_tensor *outs[3] = {tens(KILN_DTYPE_UINT8, 1, &n),
                                    tens(KILN_DTYPE_FLOAT32, 0, NULL),
                                    tens(KILN_DTYPE_UINT8, 0, NULL)};
            ref_ctx c;
            memset(&c, 0, sizeof c);
            c.node = nd, c.opset = 17, c.n_in = 1, c.in = in, c.n_out = 3, c.out = outs;
            int rc = t->run(&c);
            CHECK(rc == 0, "%s n %lld kind %d: %s", t->name, (long long)n, kind, c.err);
            if (rc == 0) {
                CHECK(!memcmp(outs[0]->data, want[0]->data, (size_t)n) &&
                          !memcmp(outs[1]->data, want[1]->data, 4) &&
                          *(uint8_t *)outs[2]->data == *(uint8_t *)want[2]->data,
                      "%s t=%d n %lld kind %d: differs from the reference", t->name, th,
                      (long long)n, kind);
            }
            for (int i = 0; i < 3; i++) tensor_free(outs[i]);
        }
    }
    for (int i = 0; i < 3; i++) tensor_free(want[i]);
    ir_edit_kill(nd);
    tensor_free(x);
}

/* Cast int32 -> float32 against the reference, values past 2^24 (rounded)
** and the int32 extremes included. */
static void cast_case(int64_t n) {
    kiln_tensor *x = tens(KILN_DTYPE_INT32, 1, &n);
    int32_t *xv = x->data;
    for (int64_t i = 0; i < n; i++) {
        double u = rnd();
        xv[i] = u < 0.1 ? INT32_MIN + (int32_t)irand(0, 3)
              : u < 0.2 ? INT32_MAX - (int32_t)irand(0, 3)
              : u < 0.5 ? (int32_t)irand(-(1 << 26), 1 << 26) : (int32_t)irand(-3000, 3000);
    }
    ir_node *nd = ir_edit_add_node(g_graph, OP_Cast, 1, 1, NULL);
    if (!nd) die("node");
    ir_edit_set_int(nd, "to", KILN_DTYPE_FLOAT32);
    const kiln_tensor *in[1] = {x};
    kiln_tensor *want[1];
    if (ref_run_node(nd, in, want)) die("reference");
    for (int th = 1; th <= 3; th += 2) {
        kiln_set_num_threads(th);
        kiln_tensor *outs[1] = {tens(KILN_DTYPE_FLOAT32, 1, &n)};
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = nd, c.opset = 17, c.n_in = 1, c.in = in, c.n_out = 1, c.out = outs;
        int rc = cpu_t_cast_i32_f32.run(&c);
        CHECK(rc == 0 && !memcmp(outs[0]->data, want[0]->data, (size_t)n * 4),
              "cast n %lld t=%d differs from the reference", (long long)n, th);
        tensor_free(outs[0]);
    }
    tensor_free(want[0]);
    ir_edit_kill(nd);
    tensor_free(x);
}

/* A blob from other weights' shape is refused with a message, not read. */
static void blob_mismatch(void) {
    int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {3, 4, 1, 1}, wd2[4] = {5, 4, 1, 1};
    kiln_tensor *x = tens(KILN_DTYPE_UINT8, 4, xd), *w = tens(KILN_DTYPE_INT8, 4, wd);
    kiln_tensor *w2 = tens(KILN_DTYPE_INT8, 4, wd2);
    fill8(x, false, false);
    fill8(w, false, false);
    fill8(w2, false, false);
    ir_node *n = ir_edit_add_node(g_graph, OP_ConvInteger, 2, 1, NULL);
    if (!n) die("node");
    ir_type t2;
    memset(&t2, 0, sizeof t2);
    t2.dtype = KILN_DTYPE_INT8, t2.rank = 4;
    memcpy(t2.dims, wd2, sizeof wd2);
    const ir_type *tin[2] = {NULL, &t2};
    const kiln_tensor *cin[2] = {NULL, w2};
    void *blob = NULL;
    size_t bn = 0;
    CHECK(cpu_t_convint_c.prepare(n, tin, cin, &blob, &bn) == KILN_OK && blob, "prepare");
    int64_t yd[4] = {1, 3, 5, 5};
    kiln_tensor *y = tens(KILN_DTYPE_INT32, 4, yd);
    const kiln_tensor *in[2] = {x, w};
    kiln_tensor *outs[1] = {y};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n, c.opset = 17, c.n_in = 2, c.in = in, c.n_out = 1, c.out = outs;
    c.blob = blob, c.blob_size = bn;
    CHECK(cpu_t_convint_c.run(&c) != 0 && strstr(c.err, "rebuild"), "mismatched blob: '%s'",
          c.err);
    kiln_aligned_free(blob);
    ir_edit_kill(n);
    tensor_free(x), tensor_free(w), tensor_free(w2), tensor_free(y);
}

int main(void) {
    g_host = kiln_backend_cpu()->host_isa();
    char isa[96];
    printf("host isa: %s\n", kiln_isa_names(g_host, isa, sizeof isa));
    g_model = ir_model_new();
    if (!g_model) die("model");
    g_model->opset = 17;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) die("graph");
    g_model->graph = g_graph;
    for (int i = 0; i < 80; i++) conv_case(false, false);
    for (int i = 0; i < 6; i++) conv_case(true, false);
    for (int i = 0; i < 60; i++) conv_case(false, true);
    for (int i = 0; i < 4; i++) conv_case(true, true);
    for (int i = 0; i < 80; i++) matmul_case(false);
    for (int i = 0; i < 60; i++) matmul_case(true);
    for (int i = 0; i < 120; i++) qfgemm_case();
    for (int i = 0; i < 40; i++) qln_case();
    blob_mismatch();
    static const int64_t dqn[] = {0, 1, 7, 8, 9, 1000, 32768, 32769, 100003};
    for (size_t i = 0; i < sizeof dqn / sizeof dqn[0]; i++)
        for (int kind = 0; kind < 7; kind++) dynquant_case(dqn[i], kind);
    for (size_t i = 0; i < sizeof dqn / sizeof dqn[0]; i++) cast_case(dqn[i]);
    CHECK(g_blob_runs > 20, "only %d runs on prepared weights", g_blob_runs);
    printf("prepared-blob runs %d, AMX cases %d\n", g_blob_runs, g_amx_runs);
    if (g_host & KILN_ISA_AMXINT8) CHECK(g_amx_runs >= 100, "only %d AMX cases", g_amx_runs);
    kiln_set_num_threads(1);
    ir_model_free(g_model);
    return test_summary();
}
