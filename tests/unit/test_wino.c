/* test_wino.c: the Winograd tactics (cpu_wino.c) on random blocked 3x3
** stride-1 convolutions, XNNPACK-tester style: channels off the block,
** H and W not multiples of the tile (edge tiles), H or W below 4, batch 2,
** pads 0/1/2 per side, with and without bias, residual and activations,
** blocks 8 and 16, F(4x4) and F(2x2), every kernel instance the host runs
** (AVX-512, AVX2 and the portable C one), 1 and 3 threads, with the
** prepared blob and without it.
**
** Oracle: the convolution in double on the blocked tensors, plus per
** output the absolute sum S = |bias| + sum |x||w| + |z|. Winograd adds
** rounding from its transforms, bounded by a constant times eps * S (the
** transform entries reach 8 in A^T, 5 in B^T and 1/24 in G, so the bound
** could reach some hundreds of float32 eps in the worst case): we require
** |y - y64| <= K * eps * S with K = 64 for F(4x4) and 8 for F(2x2) and for
** the direct kernel (the control). The worst ratios seen (printed at the
** end) are about 12, 1.5 and 1.7 up to 65 channels and 20, 1.3 and 3.0 at
** 2500 (slow growth with C): F(4x4) costs 2-3 bits over
** direct, F(2x2) nothing, and a wrong tap or transform entry lands at 1e5
** and up. Padding lanes of
** the input are filled with random values: no tactic may read them into a
** real lane. Also checks that the tactics refuse other geometries and a
** blob of the wrong shape. Prints `N passed, M failed`. */
#include "../../src/backends/cpu/cpu_split.h"
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/ops/fused.h"
#include "../../src/ops/nchwc.h"
#include "test_util.h"

static unsigned g_host;
static bool g_partitions; /* check_case also at 2, 16 and 17 threads */
static double g_worst[3]; /* err / (eps S): [0] direct, [1] F(2x2), [2] F(4x4) */
static int g_runs[3];

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

typedef struct wcase {
    int64_t N, C, M, H, W, pads[4], block;
    bool bias, resid;
    const char *act;
} wcase;

static ir_value *rconst(ir_graph *g, const char *name, int rank, const int64_t *dims,
                        double scale) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) die("malloc");
    for (int64_t i = 0; i < n; i++) v[i] = (float)((rnd() * 2 - 1) * scale);
    ir_value *c = const_tensor(g, name, KILN_DTYPE_FLOAT32, rank, dims, v);
    free(v);
    return c;
}

/* x -> 1x1 conv (so the 3x3 one reads a blocked input) -> the 3x3 conv;
** after the nchwc pass, the 3x3 NchwcConv node. */
static ir_node *build(const wcase *w, ir_model *m) {
    ir_graph *g = m->graph;
    int64_t xd[4] = {w->N, w->C, w->H, w->W};
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    g->inputs = arena_zalloc(m, 2 * sizeof *g->inputs);
    g->inputs[g->n_inputs++] = x;
    int64_t w1[4] = {w->C, w->C, 1, 1};
    ir_value *in1[2] = {x, rconst(g, "w1", 4, w1, 0.5)};
    ir_value *y1 = node(g, "Conv", 2, in1, 1, "y1")->out[0];
    int64_t wd[4] = {w->M, w->C, 3, 3}, bd[1] = {w->M};
    ir_value *in[4] = {y1, rconst(g, "w", 4, wd, 1.0 / sqrt(9.0 * (double)w->C)),
                       w->bias ? rconst(g, "b", 1, bd, 1.0) : NULL, NULL};
    if (w->resid) {
        int64_t OH = w->H + w->pads[0] + w->pads[2] - 2, OW = w->W + w->pads[1] + w->pads[3] - 2;
        int64_t zd[4] = {w->N, w->M, OH, OW};
        in[3] = input(g, "z", KILN_DTYPE_FLOAT32, 4, zd);
        g->inputs[g->n_inputs++] = in[3];
    }
    ir_node *n = node(g, "Conv", w->resid ? 4 : w->bias ? 3 : 2, in, 1, "y");
    ir_edit_set_op(n, OP_FusedConv);
    int64_t one[2] = {1, 1}, ks[2] = {3, 3};
    ir_edit_set_ints(n, "strides", one, 2);
    ir_edit_set_ints(n, "dilations", one, 2);
    ir_edit_set_ints(n, "pads", w->pads, 4);
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    if (w->act[0]) {
        ir_edit_set_str(n, "activation", w->act);
        if (!strcmp(w->act, "Clip")) {
            ir_edit_set_float(n, "activation_alpha", -0.25f);
            ir_edit_set_float(n, "activation_beta", 0.75f);
        }
    }
    g->outputs = arena_zalloc(m, sizeof *g->outputs);
    g->outputs[0] = n->out[0];
    g->n_outputs = 1;
    n->out[0]->flags |= IR_VALUE_OUTPUT;
    if (ir_graph_compact(g) || ir_graph_infer(g)) die("infer");
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m;
    pc.g = g;
    pc.opt_level = 3;
    pc.nchwc_block = (int)w->block;
    if (passes_run_one(&pc, "nchwc")) die("nchwc pass");
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *k = g->nodes[i];
        int cnt = 0;
        const int64_t *kk = ir_attr_ints(k, "kernel_shape", &cnt);
        if (k->op == OP_NchwcConv && kk && cnt == 2 && kk[0] == 3) return k;
    }
    die("no blocked 3x3 conv");
    return NULL;
}

static kiln_tensor *rand_tensor(const ir_type *t) {
    kiln_tensor *r;
    if (t->rank < 0 || tensor_new(KILN_DTYPE_FLOAT32, t->rank, t->dims, &r)) die("tensor");
    float *p = r->data;
    for (int64_t i = 0; i < tensor_numel(r); i++) p[i] = (float)(rnd() * 4 - 2);
    return r;
}

/* y64 (activation applied) and S of every output element, blocked layout. */
static void oracle(const ir_node *n, const kiln_tensor *const *in, const nchwc_conv_geom *g,
                   double *y64, double *S) {
    const float *x = in[0]->data, *w = in[1]->data;
    const float *b = in[2] ? in[2]->data : NULL, *z = in[3] ? in[3]->data : NULL;
    fused_act a;
    if (!fused_act_read(n, &a, NULL, 0)) die("act");
    int64_t B = g->blk;
    for (int64_t nn = 0; nn < g->N; nn++)
        for (int64_t mb = 0; mb < g->Mb; mb++)
            for (int64_t oy = 0; oy < g->OH; oy++)
                for (int64_t ox = 0; ox < g->OW; ox++)
                    for (int64_t j = 0; j < B; j++) {
                        int64_t o = (((nn * g->Mb + mb) * g->OH + oy) * g->OW + ox) * B + j;
                        double s = b ? b[mb * B + j] : 0, sa = fabs(s);
                        for (int64_t c = 0; c < g->C; c++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int64_t iy = oy - g->win.pt + ky, ix = ox - g->win.pl + kx;
                                    if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W) continue;
                                    double xv = x[(((nn * g->Cb + c / B) * g->H + iy) * g->W +
                                                   ix) * B + c % B];
                                    double wv = w[(((mb * g->C + c) * 3 + ky) * 3 + kx) * B + j];
                                    s += xv * wv, sa += fabs(xv * wv);
                                }
                        if (z) s += z[o], sa += fabs(z[o]);
                        y64[o] = fused_act_f32(&a, (float)s);
                        /* float rounding of s before the activation */
                        S[o] = sa + fabs(s);
                    }
}

/* Runs tactic t on the node (blob from its prepare hook when use_blob);
** returns the worst err / (eps S) over the real output lanes, or -1. */
static double run_one(const char *what, const kiln_tactic *t, const ir_node *n,
                      const kiln_tensor *const *in, const nchwc_conv_geom *g, const double *y64,
                      const double *S, bool use_blob, int threads, double floor) {
    ir_type types[4];
    const ir_type *tin[4] = {0};
    for (int i = 0; i < 4; i++)
        if (in[i]) {
            types[i].dtype = in[i]->dtype;
            types[i].rank = in[i]->rank;
            memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
            tin[i] = &types[i];
        }
    int64_t yd[5] = {g->N, g->Mb, g->OH, g->OW, g->blk};
    kiln_tensor *y;
    if (tensor_new(KILN_DTYPE_FLOAT32, 5, yd, &y)) die("out");
    float *p = y->data;
    for (int64_t i = 0; i < tensor_numel(y); i++) p[i] = NAN;
    void *blob = NULL, *ws = NULL;
    size_t bn = 0, wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (use_blob && t->prepare) {
        const kiln_tensor *cin[4] = {NULL, in[1], NULL, NULL};
        if (t->prepare(n, tin, cin, &blob, &bn)) die("prepare");
        CHECK(blob && bn, "%s: %s made no blob", what, t->name);
    }
    if (wsz && !(ws = kiln_aligned_alloc(wsz))) die("ws");
    /* with a blob the weights' data must not be read (blob_replaces) */
    kiln_tensor wcopy = *in[1];
    if (blob && (t->blob_replaces & 2u)) wcopy.data = NULL;
    const kiln_tensor *ins[4] = {in[0], &wcopy, in[2], in[3]};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = n->n_in;
    c.in = ins;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    c.blob = blob;
    c.blob_size = bn;
    c.ws = ws;
    c.ws_size = wsz;
    kiln_set_num_threads(threads);
    int rc = t->run(&c);
    kiln_set_num_threads(1);
    double worst = -1;
    CHECK(!rc, "%s: %s failed: %s", what, t->name, c.err);
    if (!rc) {
        worst = 0;
        const double eps = 1.1920928955078125e-7;
        for (int64_t nn = 0; nn < g->N; nn++)
            for (int64_t mb = 0; mb < g->Mb; mb++)
                for (int64_t q = 0; q < g->OH * g->OW; q++)
                    for (int64_t j = 0; j < g->blk && mb * g->blk + j < g->M; j++) {
                        int64_t o = ((nn * g->Mb + mb) * g->OH * g->OW + q) * g->blk + j;
                        double e = fabs((double)p[o] - y64[o]);
                        double r = e / (eps * S[o] + 1e-30);
                        if (e <= floor) r = 0; /* vector activations' own error */
                        if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
                    }
    }
    tensor_free(y);
    kiln_aligned_free(blob);
    kiln_aligned_free(ws);
    return worst;
}

static void check_case(const wcase *w) {
    char what[256];
    snprintf(what, sizeof what, "b%lld N%lld C%lld M%lld %lldx%lld p%lld,%lld,%lld,%lld%s%s act'%s'",
             (long long)w->block, (long long)w->N, (long long)w->C, (long long)w->M,
             (long long)w->H, (long long)w->W, (long long)w->pads[0], (long long)w->pads[1],
             (long long)w->pads[2], (long long)w->pads[3], w->bias ? " bias" : "",
             w->resid ? " resid" : "", w->act);
    ir_model *m = model_new(17);
    ir_node *n = build(w, m);
    kiln_tensor *own[4] = {0};
    const kiln_tensor *in[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) {
        ir_value *v = n->in[i];
        if (!v) continue;
        in[i] = v->const_val ? v->const_val : (own[i] = rand_tensor(&v->type));
    }
    nchwc_conv_geom g;
    char err[256];
    if (!nchwc_conv_geom_read(n, in[0]->rank, in[0]->dims, in[1]->rank, in[1]->dims, &g, err,
                              sizeof err))
        die(err);
    CHECK(!g.nchw_in, "%s: the 3x3 conv reads a plain input", what);
    int64_t ny = g.N * g.Mb * g.OH * g.OW * g.blk;
    double *y64 = malloc((size_t)(ny + 1) * sizeof *y64), *S = malloc((size_t)(ny + 1) * sizeof *S);
    if (!y64 || !S) die("malloc");
    oracle(n, in, &g, y64, S);
    static const kiln_tactic *const tacs[] = {
        &cpu_t_nchwc_conv_taps_avx512, &cpu_t_nchwc_conv_taps_avx2,
        &cpu_t_nchwc_conv_avx512, &cpu_t_nchwc_conv_avx2, &cpu_t_nchwc_wino4_avx512,
        &cpu_t_nchwc_wino4_avx2, &cpu_t_nchwc_wino4_c, &cpu_t_nchwc_wino2_avx512,
        &cpu_t_nchwc_wino2_avx2, &cpu_t_nchwc_wino2_c};
    const ir_type *tin[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) tin[i] = n->in[i] ? &n->in[i]->type : NULL;
    int ran = 0;
    /* the vector sigmoid has its own error (about 1e-7 relative) */
    double floor = !strcmp(w->act, "Sigmoid") || !strcmp(w->act, "SiLU") ? 1e-6 : 0;
    for (size_t k = 0; k < KILN_ARRAY_LEN(tacs); k++) {
        const kiln_tactic *t = tacs[k];
        if (t->isa & ~g_host) continue;
        bool is_c = strstr(t->name, "_c") == t->name + strlen(t->name) - 2;
        /* the portable ones are offered only where no vector one runs;
        ** call them directly here whenever their block fits */
        if (!is_c && !t->supports(n, tin)) continue;
        if (is_c && ir_attr_int(n, "block", 0) != 8 && ir_attr_int(n, "block", 0) != 16) continue;
        int kind = strstr(t->name, "wino4") ? 2 : strstr(t->name, "wino2") ? 1 : 0;
        static const double K[3] = {8, 8, 64};
        /* blob at 1 thread, none at 1, blob at 3; the partition cases
        ** also at 2, 16, 17 threads and 16 with the old partition (< 0) */
        static const int vth[] = {1, 1, 3, 2, 16, 17, -16};
        int nv = g_partitions ? (int)KILN_ARRAY_LEN(vth) : 3;
        for (int v = 0; v < nv; v++) {
            bool blob = v != 1;
            int th = abs(vth[v]);
            if (vth[v] < 0) setenv("KILN_CPU_SPLIT", "old", 1);
            double r = run_one(what, t, n, in, &g, y64, S, blob, th, floor);
            unsetenv("KILN_CPU_SPLIT");
            if (r < 0) continue;
            CHECK(r <= K[kind], "%s: %s (%s blob, %d threads%s): error %.1f eps*S over %g",
                  what, t->name, blob ? "with" : "no", th, vth[v] < 0 ? ", old split" : "", r,
                  K[kind]);
            if (r > g_worst[kind]) g_worst[kind] = r;
            g_runs[kind]++;
            ran++;
        }
    }
    CHECK(ran > 0, "%s: no tactic ran", what);
    free(y64);
    free(S);
    for (int i = 0; i < 4; i++) tensor_free(own[i]);
    ir_model_free(m);
}

static const char *const g_acts[] = {"", "Relu", "Clip", "Sigmoid", "SiLU"};

static void test_cases(void) {
    static const wcase fixed[] = {
        /* one tile, H/W below 4, 1x1 images, channels off the block */
        {1, 16, 16, 4, 4, {1, 1, 1, 1}, 16, true, false, "Relu"},
        {1, 3, 5, 1, 1, {1, 1, 1, 1}, 8, true, false, ""},
        {1, 17, 9, 2, 3, {1, 1, 1, 1}, 16, false, true, "Clip"},
        {2, 9, 33, 7, 5, {0, 0, 0, 0}, 8, true, true, "Relu"},
        {1, 40, 24, 13, 11, {1, 0, 0, 1}, 16, true, false, "Sigmoid"},
        {2, 8, 8, 9, 9, {1, 1, 1, 1}, 8, false, false, ""},
        {1, 64, 64, 14, 14, {1, 1, 1, 1}, 16, true, true, "Relu"},
        {1, 33, 65, 10, 6, {2, 1, 0, 2}, 16, true, false, "SiLU"},
        {1, 1, 1, 5, 9, {0, 1, 1, 0}, 8, false, true, ""},
        /* one tile, many output blocks: threads split the output blocks */
        {1, 16, 72, 4, 4, {1, 1, 1, 1}, 8, true, true, "Relu"},
        /* so many channels that a chunk holds fewer tiles than a GEMM tile */
        {1, 2500, 20, 10, 11, {1, 1, 1, 1}, 16, true, false, ""},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(fixed); i++) {
        check_case(&fixed[i]);
        wcase w = fixed[i];
        w.block = 24 - w.block; /* the other block too */
        check_case(&w);
    }
    for (int r = 0; r < 40; r++) {
        wcase w;
        memset(&w, 0, sizeof w);
        w.N = rnd() < 0.3 ? 2 : 1;
        w.C = 1 + (int64_t)(rnd() * 40), w.M = 1 + (int64_t)(rnd() * 40);
        w.H = 1 + (int64_t)(rnd() * 17), w.W = 1 + (int64_t)(rnd() * 17);
        for (int i = 0; i < 4; i++) w.pads[i] = (int64_t)(rnd() * 2);
        w.block = rnd() < 0.5 ? 8 : 16;
        w.bias = rnd() < 0.7, w.resid = rnd() < 0.4;
        w.act = g_acts[(int)(rnd() * KILN_ARRAY_LEN(g_acts))];
        if (w.H + w.pads[0] + w.pads[2] < 3 || w.W + w.pads[1] + w.pads[3] < 3) continue;
        check_case(&w);
    }
}

/* The weights-first partition (cpu_split.h) end to end: layers whose U
** outweighs their transformed input (more output channels than tiles),
** with enough flops for the pool to give them 16 and 17 threads: 7x7 and
** 14x14 maps, a 1x1 map, batch 1 and 3, odd channel counts. 2 cores run
** the 17 threads here: correctness, not speed. */
static void test_partition_cases(void) {
    static const wcase big[] = {
        {1, 259, 257, 7, 7, {1, 1, 1, 1}, 16, true, true, "Relu"},
        {1, 131, 263, 14, 14, {1, 1, 1, 1}, 16, true, false, ""},
        {3, 67, 131, 7, 7, {1, 1, 1, 1}, 16, false, true, "Clip"},
        {1, 257, 2201, 1, 1, {1, 1, 1, 1}, 16, true, false, "Relu"},
    };
    g_partitions = true;
    for (size_t i = 0; i < KILN_ARRAY_LEN(big); i++) {
        check_case(&big[i]);
        wcase w = big[i];
        w.block = 8;
        check_case(&w);
    }
    g_partitions = false;
}

/* Every task of a split is non-empty and all of them cover the work;
** the pixel side is cut no more than the scratch cap and the threads
** need; ResNet-50's 7x7 layers read each weight once. */
static void check_split(int nth, int64_t units, int64_t cap, int64_t Mb, int64_t ob, double wu,
                        double xu) {
    cpu_split s = cpu_split_weights_first(nth, units, cap, Mb, ob, wu, xu);
    char what[160];
    snprintf(what, sizeof what, "split nth %d units %lld cap %lld Mb %lld ob %lld wu %g", nth,
             (long long)units, (long long)cap, (long long)Mb, (long long)ob, wu);
    CHECK(s.oc_per >= 1 && s.oc_parts == (Mb + s.oc_per - 1) / s.oc_per &&
              (s.oc_parts - 1) * s.oc_per < Mb,
          "%s: output blocks %lld x %lld", what, (long long)s.oc_parts, (long long)s.oc_per);
    int64_t pmin = (units + cap - 1) / cap;
    CHECK(s.px_parts >= pmin && s.px_parts <= units, "%s: %lld pixel parts", what,
          (long long)s.px_parts);
    /* the largest pixel part fits the cap */
    CHECK((units + s.px_parts - 1) / s.px_parts <= cap, "%s: a part over the cap", what);
    /* the pixel side cut at most 4 times further than the threads need:
    ** fewer than 8 tasks a thread */
    CHECK(s.oc_parts * s.px_parts < KILN_MAX(8 * (int64_t)nth, s.oc_parts * pmin + 1),
          "%s: %lld tasks", what, (long long)(s.oc_parts * s.px_parts));
    /* at least half the threads busy when there is work enough (fewer
    ** tasks than threads when that shortens the largest one) */
    CHECK(2 * s.oc_parts * s.px_parts >= KILN_MIN((int64_t)nth, Mb * units),
          "%s: %lld tasks for %d threads", what, (long long)(s.oc_parts * s.px_parts), nth);
}

static void test_split(void) {
    /* ResNet-50 layer4 F(2x2) at 16 and 17 threads: 16 tiles, 32 blocks of
    ** 16, GEMM tiles of 4 blocks: 16 slices of 2 blocks, U read once */
    cpu_split s = cpu_split_weights_first(16, 16, 30, 32, 4, cpu_split_w_units(1), 0.4);
    CHECK(s.oc_per == 2 && s.oc_parts == 16 && s.px_parts == 1, "layer4 16 thr: %lld x %lld / %lld",
          (long long)s.oc_parts, (long long)s.px_parts, (long long)s.oc_per);
    s = cpu_split_weights_first(17, 16, 30, 32, 4, cpu_split_w_units(1), 0.4);
    CHECK(s.oc_parts == 16 && s.px_parts == 1, "layer4 17 thr: %lld x %lld",
          (long long)s.oc_parts, (long long)s.px_parts);
    /* 3 threads: balanced slices (11, 11, 10 blocks), not 12, 12, 8 */
    s = cpu_split_weights_first(3, 16, 30, 32, 4, cpu_split_w_units(1), 0.4);
    CHECK(s.oc_per == 11 && s.px_parts == 1, "3 thr: %lld x %lld / %lld",
          (long long)s.oc_parts, (long long)s.px_parts, (long long)s.oc_per);
    /* 1 thread: one task unless the cap cuts the pixels */
    s = cpu_split_weights_first(1, 49, 100, 32, 4, 16, 0.4);
    CHECK(s.oc_parts == 1 && s.px_parts == 1, "1 thr: %lld x %lld", (long long)s.oc_parts,
          (long long)s.px_parts);
    s = cpu_split_weights_first(1, 49, 20, 32, 4, 16, 0.4);
    CHECK(s.oc_parts == 1 && s.px_parts == 3, "1 thr capped: %lld x %lld",
          (long long)s.oc_parts, (long long)s.px_parts);
    /* ResNet-50 layer4 direct 3x3 (7 rows of 7) and its 1x1 2048 -> 512,
    ** 16 threads: disjoint weight slices, each read once */
    s = cpu_split_weights_first(16, 7, 7, 32, 4, cpu_split_w_units(7), 0);
    CHECK(s.oc_parts == 16 && s.px_parts == 1, "direct 7x7: %lld x %lld",
          (long long)s.oc_parts, (long long)s.px_parts);
    /* few output blocks for many threads: the pixel side makes up */
    s = cpu_split_weights_first(16, 49, 49, 4, 4, cpu_split_w_units(1), 0.4);
    CHECK(s.oc_parts == 4 && s.px_parts >= 4, "4 blocks 16 thr: %lld x %lld",
          (long long)s.oc_parts, (long long)s.px_parts);
    /* ResNet-50 layer3 F(4x4) at 16 threads: 16 tiles, 16 blocks: one
    ** block a task for all the tiles (U read once, the input transformed
    ** 16 times), not 4 blocks x 4 tiles (U read 4 times) */
    s = cpu_split_weights_first(16, 16, 45, 16, 4, cpu_split_w_units(1), 0.4);
    CHECK(s.oc_parts == 16 && s.px_parts == 1, "layer3 F4: %lld x %lld", (long long)s.oc_parts,
          (long long)s.px_parts);
    /* an input costlier to prepare than the weights to read: the pixels
    ** are cut rather than the output blocks */
    s = cpu_split_weights_first(4, 64, 64, 8, 4, 0, 4);
    CHECK(s.oc_parts == 1 && s.px_parts == 4, "input-bound: %lld x %lld", (long long)s.oc_parts,
          (long long)s.px_parts);
    /* degenerate arguments */
    s = cpu_split_weights_first(0, 0, 0, 1, 0, -1, -1);
    CHECK(s.oc_parts == 1 && s.px_parts == 1 && s.oc_per == 1, "degenerate");
    for (int r = 0; r < 2000; r++) {
        int nth = 1 + (int)(rnd() * 40);
        int64_t units = 1 + (int64_t)(rnd() * 300), cap = 1 + (int64_t)(rnd() * 400);
        int64_t Mb = 1 + (int64_t)(rnd() * 200), ob = rnd() < 0.5 ? 4 : 2;
        check_split(nth, units, cap, Mb, ob, rnd() * 30, rnd() < 0.5 ? 0 : rnd());
    }
}

/* Geometries the tactics must refuse, and a blob of another layer. */
static void test_refusals(void) {
    wcase w = {1, 16, 16, 8, 8, {1, 1, 1, 1}, 16, true, false, "Relu"};
    ir_model *m = model_new(17);
    ir_node *n = build(&w, m);
    const ir_type *tin[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) tin[i] = n->in[i] ? &n->in[i]->type : NULL;
    const kiln_tactic *t = &cpu_t_nchwc_wino4_c;
    CHECK(!(g_host & KILN_ISA_AVX512F) || cpu_t_nchwc_wino4_avx512.supports(n, tin),
          "3x3 stride 1 not taken");
    int64_t two[2] = {2, 2};
    ir_edit_set_ints(n, "strides", two, 2);
    CHECK(!cpu_t_nchwc_wino4_avx512.supports(n, tin) && !cpu_t_nchwc_wino2_avx2.supports(n, tin),
          "stride 2 taken");
    int64_t one[2] = {1, 1};
    ir_edit_set_ints(n, "strides", one, 2);
    ir_edit_set_ints(n, "dilations", two, 2);
    CHECK(!cpu_t_nchwc_wino4_avx512.supports(n, tin), "dilation 2 taken");
    ir_edit_set_ints(n, "dilations", one, 2);
    /* a blob for the F(2x2) tactic handed to the F(4x4) one: refused */
    kiln_tensor *x = rand_tensor(tin[0]), *y;
    int64_t yd[5] = {1, 1, 8, 8, 16};
    if (tensor_new(KILN_DTYPE_FLOAT32, 5, yd, &y)) die("out");
    const kiln_tensor *cin[4] = {NULL, n->in[1]->const_val, NULL, NULL};
    void *blob = NULL;
    size_t bn = 0;
    if (cpu_t_nchwc_wino2_c.prepare(n, tin, cin, &blob, &bn)) die("prepare");
    const kiln_tensor *ins[3] = {x, n->in[1]->const_val, n->in[2]->const_val};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = 3;
    c.in = ins;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    c.blob = blob;
    c.blob_size = bn;
    CHECK(t->run(&c) != 0 && strstr(c.err, "rebuild"), "a foreign blob was accepted (%s)", c.err);
    c.blob_size = bn - 4;
    CHECK(cpu_t_nchwc_wino2_c.run(&c) != 0, "a truncated blob was accepted");
    kiln_aligned_free(blob);
    tensor_free(x);
    tensor_free(y);
    ir_model_free(m);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    g_host = kiln_backend_cpu()->host_isa();
    test_split();
    test_cases();
    test_partition_cases();
    test_refusals();
    fprintf(stderr, "runs: direct %d, F(2x2) %d, F(4x4) %d; worst error / (eps S): direct %.2f, "
            "F(2x2) %.2f, F(4x4) %.2f\n", g_runs[0], g_runs[1], g_runs[2], g_worst[0],
            g_worst[1], g_worst[2]);
    CHECK(g_runs[1] > 0 && g_runs[2] > 0, "the Winograd tactics never ran");
    return test_summary();
}
