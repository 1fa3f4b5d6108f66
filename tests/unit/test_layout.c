/* test_layout.c: the channels-last pass (passes/layout.c) and the NHWC ops'
** reference kernels (backends/ref/ref_layout.c), on the CPU. A small ResNet
** (tests/data/passes/resnet_nhwc.onnx: RGB stem, max pool, bottleneck
** blocks with projection and identity shortcuts, stride 2, a conv with 12
** output channels, a mid-chain graph output, AveragePool + Clip, GAP ->
** Flatten -> Gemm) must give the same outputs with and without the pass,
** at channel alignment 8 (the RGB input padded, the 12-channel conv left
** NCHW) and 1; the rewrite's structure is checked (which layers are NHWC,
** where the reformats are). Then the same model goes end to end through the
** builder with KILN_CHANNELS_LAST=1 and runs as a CPU engine. The ops'
** kernels are also checked one by one against hand-transposed NCHW runs
** over random shapes. INT8 chains (QLinearConv -> 8-bit MaxPool -> 1x1 ->
** 3x3 -> QAdd -> strided 3x3, built in the IR over random shapes with odd
** channel counts, int8 and uint8 activations, per-tensor and per-channel
** weight scales, uint8 weights, weight zero points) must give the same bytes
** with and without the pass, and the model calibrated INT8 through the
** builder with KILN_CHANNELS_LAST=1 must run like its NCHW build. Prints
** `N passed, M failed`. */
#include "../../src/ops/layout.h"
#include "test_util.h"

#define MODEL "tests/data/passes/resnet_nhwc.onnx"

static kiln_status run_layout(ir_model *m, int align) {
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m;
    pc.g = m->graph;
    pc.opt_level = 3;
    pc.log = g_verbose ? log_fn : NULL;
    pc.log_max = g_verbose ? KILN_SEVERITY_VERBOSE : KILN_SEVERITY_ERROR;
    return pass_channels_last(&pc, align);
}

/* The op of the layer that writes graph value `name`. */
static const char *op_of(const ir_graph *g, const char *name) {
    ir_node *n = producer_of(g, name);
    return n ? n->op_type : "(none)";
}

/* The model through the pipeline ("all" when fuse_first) twice; the layout
** pass on one copy; both must compute the same (the NHWC reference kernels
** are the NCHW ones on transposed data: equal to float rounding of the
** padded channels' zero terms, i.e. exactly). The structure is checked on
** the fused graph, the one builds make. */
static void pass_case(int align, bool fuse_first) {
    char what[128];
    snprintf(what, sizeof what, "resnet_nhwc align %d%s", align, fuse_first ? " (fused)" : "");
    kiln_model *km = NULL, *km2 = NULL;
    ir_model *opt = NULL, *base = NULL;
    if (!load2(MODEL, &km, &opt) || !load2(MODEL, &km2, &base)) {
        CHECK(0, "%s: cannot load " MODEL " (run from the repository root)", what);
        goto done;
    }
    kiln_status st = fuse_first ? run_passes(opt, "all") : KILN_OK;
    if (!st && fuse_first) st = run_passes(base, "all");
    CHECK(!st, "%s: pipeline failed: %s", what, st ? kiln_last_error() : "");
    if (!st) st = run_layout(opt, align);
    CHECK(!st, "%s: layout pass failed: %s", what, st ? kiln_last_error() : "");
    if (st) goto done;
    const ir_graph *g = opt->graph;
    if (fuse_first) {
        int nconv = count_op(g, "NhwcConv"), nto = count_op(g, "ToNhwc"),
            nback = count_op(g, "ToNchw");
        /* 11 convs: all NHWC but the 12-channel one at align 8 */
        int want_conv = align == 8 ? 10 : 11;
        CHECK(nconv == want_conv, "%s: %d NhwcConv, expected %d", what, nconv, want_conv);
        CHECK(count_op(g, "FusedConv") == 11 - want_conv, "%s: %d NCHW convs left", what,
              count_op(g, "FusedConv"));
        CHECK(count_op(g, "NhwcMaxPool") == 1 && count_op(g, "NhwcAveragePool") == 1 &&
                  count_op(g, "NhwcGlobalAveragePool") == 1,
              "%s: pools not all NHWC", what);
        /* the input once (padded to 8 at align 8); back: mid (a graph
        ** output), z (after Clip), and the 12-channel conv's input (align
        ** 8) or output (align 1) */
        CHECK(nto == 1, "%s: %d ToNhwc, expected 1", what, nto);
        CHECK(nback == 3, "%s: %d ToNchw, expected 3", what, nback);
        ir_node *t = NULL;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->op == OP_ToNhwc) t = g->nodes[i];
        CHECK(t && ir_attr_int(t, "channels", -1) == (align == 8 ? 8 : -1),
              "%s: ToNhwc channels %lld", what,
              t ? (long long)ir_attr_int(t, "channels", -1) : -2LL);
        CHECK(!strcmp(op_of(g, "mid"), "ToNchw"), "%s: mid written by %s", what,
              op_of(g, "mid"));
        CHECK(!strcmp(op_of(g, "z"), "ToNchw"), "%s: z written by %s", what, op_of(g, "z"));
        CHECK(!strcmp(op_of(g, "odd"), align == 8 ? "FusedConv" : "ToNchw"),
              "%s: odd written by %s", what, op_of(g, "odd"));
        CHECK(!strcmp(op_of(g, "g"), "NhwcGlobalAveragePool"), "%s: g written by %s", what,
              op_of(g, "g"));
    }
    /* no layer reads a ToNhwc of a ToNchw (inverse pairs cancelled) */
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->op != OP_ToNhwc) continue;
        CHECK(!n->in[0]->producer || n->in[0]->producer->op != OP_ToNchw,
              "%s: ToNhwc of a ToNchw", what);
    }
    for (int trial = 0; trial < 2; trial++)
        same_run(what, base->graph, g, 1 + 2 * trial, NULL, 1e-6, 1e-6);
    /* and the original ONNX graph, to rounding */
    same_run(what, km->ir->graph, g, 2, NULL, 1e-3, 1e-3);
    /* idempotent: a second run finds nothing new to convert */
    int before = g->n_nodes, tn = count_op(g, "ToNhwc");
    st = run_layout(opt, align);
    CHECK(!st && opt->graph->n_nodes == before && count_op(opt->graph, "ToNhwc") == tn,
          "%s: second run changed the graph (%d -> %d nodes)", what, before,
          opt->graph->n_nodes);
done:
    ir_model_free(opt);
    ir_model_free(base);
    kiln_model_free(km);
    kiln_model_free(km2);
}

/* ---- the ops one by one: NHWC op vs transpose + NCHW op + transpose */
static kiln_tensor *rand_tensor(int rank, const int64_t *d) {
    kiln_tensor *t = tensor_with(KILN_DTYPE_FLOAT32, rank, d, NULL);
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = (float)(rnd() * 2 - 1);
    return t;
}

/* NCHW <-> NHWC of a rank-4 float32 tensor (perm: 0 to NHWC, 1 to NCHW) */
static kiln_tensor *perm(const kiln_tensor *x, int to_nchw) {
    int64_t d[4];
    if (to_nchw) d[0] = x->dims[0], d[1] = x->dims[3], d[2] = x->dims[1], d[3] = x->dims[2];
    else d[0] = x->dims[0], d[1] = x->dims[2], d[2] = x->dims[3], d[3] = x->dims[1];
    kiln_tensor *y = tensor_with(KILN_DTYPE_FLOAT32, 4, d, NULL);
    const float *a = x->data;
    float *b = y->data;
    int64_t N = x->dims[0];
    int64_t C = to_nchw ? x->dims[3] : x->dims[1], H = to_nchw ? x->dims[1] : x->dims[2],
            W = to_nchw ? x->dims[2] : x->dims[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t i = ((n * C + c) * H + h) * W + w, j = ((n * H + h) * W + w) * C + c;
                    if (to_nchw) b[i] = a[j];
                    else b[j] = a[i];
                }
    return y;
}

/* A node of any op (internal ones too) with one output. */
static ir_node *mk(ir_graph *g, const char *op, int n_in, ir_value **in, const char *out) {
    ir_node *n = node(g, op, n_in, in, 1, out);
    n->op = op_lookup_any(op);
    n->op_type = op_name(n->op);
    n->domain = op_is_internal(n->op) ? "kiln" : "";
    n->schema = op_schema_get(n->op);
    return n;
}

/* Runs node n (inputs `in`) with the reference kernel; NULL on failure. */
static kiln_tensor *run1(const ir_node *n, const kiln_tensor *const *in, const char *what) {
    kiln_tensor *out[1] = {NULL};
    kiln_status st = ref_run_node(n, in, out);
    CHECK(!st, "%s: %s failed: %s", what, n->op_type, st ? kiln_last_error() : "");
    return st ? NULL : out[0];
}

static void op_cases(void) {
    for (int trial = 0; trial < 24; trial++) {
        char what[160];
        int64_t N = 1 + (int64_t)(rnd() * 3), C = 1 + (int64_t)(rnd() * 9),
                H = 1 + (int64_t)(rnd() * 9), W = 1 + (int64_t)(rnd() * 9);
        int64_t M = 1 + (int64_t)(rnd() * 7), K = trial % 3 == 0 ? 1 : trial % 3 == 1 ? 3 : 5;
        int64_t S = 1 + trial % 2, P = K / 2;
        snprintf(what, sizeof what, "ops N%lld C%lld H%lld W%lld M%lld K%lld S%lld",
                 (long long)N, (long long)C, (long long)H, (long long)W, (long long)M,
                 (long long)K, (long long)S);
        ir_model *m = model_new(17);
        ir_graph *g = m->graph;
        int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C, K, K}, bd[1] = {M};
        kiln_tensor *x = rand_tensor(4, xd), *w = rand_tensor(4, wd), *b = rand_tensor(1, bd);
        int64_t xhd[4] = {N, H, W, C}, whd[4] = {M, K, K, C};
        ir_value *vx = input(g, "x", KILN_DTYPE_FLOAT32, 4, xd);
        ir_value *vxh = input(g, "xh", KILN_DTYPE_FLOAT32, 4, xhd);
        ir_value *vw = input(g, "w", KILN_DTYPE_FLOAT32, 4, wd);
        ir_value *vwh = input(g, "wh", KILN_DTYPE_FLOAT32, 4, whd);
        ir_value *vb = input(g, "b", KILN_DTYPE_FLOAT32, 1, bd);
        int64_t pads[4] = {P, P, P, P}, str[2] = {S, S}, ks[2] = {K, K};
        /* FusedConv with a bias and a residual vs NhwcConv */
        ir_value *in4[4] = {vx, vw, vb, NULL};
        ir_node *fc = mk(g, "FusedConv", 3, in4, "y");
        ir_value *in4h[4] = {vxh, vwh, vb, NULL};
        ir_node *hc = mk(g, "NhwcConv", 3, in4h, "yh");
        ir_node *mp = mk(g, "MaxPool", 1, &vx, "mp");
        ir_node *hmp = mk(g, "NhwcMaxPool", 1, &vxh, "hmp");
        ir_node *ap = mk(g, "AveragePool", 1, &vx, "ap");
        ir_node *hap = mk(g, "NhwcAveragePool", 1, &vxh, "hap");
        ir_node *gp = mk(g, "GlobalAveragePool", 1, &vx, "gp");
        ir_node *hgp = mk(g, "NhwcGlobalAveragePool", 1, &vxh, "hgp");
        ir_node *tn = mk(g, "ToNhwc", 1, &vx, "tn");
        ir_node *tc = mk(g, "ToNchw", 1, &vxh, "tc");
        if (!fc || !hc || !mp || !hmp || !ap || !hap || !gp || !hgp || !tn || !tc) {
            CHECK(0, "%s: cannot build nodes", what);
            goto next;
        }
        for (int k = 0; k < 2; k++) {
            ir_node *cn = k ? hc : fc;
            attr_ints(cn, "pads", 4, pads);
            attr_ints(cn, "strides", 2, str);
            attr_str(cn, "activation", "Relu");
        }
        int64_t pk[2] = {KILN_MIN(K, H + 2 * P), KILN_MIN(K, W + 2 * P)};
        int64_t pp[4] = {KILN_MIN(P, pk[0] - 1), KILN_MIN(P, pk[1] - 1),
                         KILN_MIN(P, pk[0] - 1), KILN_MIN(P, pk[1] - 1)};
        (void)ks;
        ir_node *pools[4] = {mp, hmp, ap, hap};
        for (int k = 0; k < 4; k++) {
            attr_ints(pools[k], "kernel_shape", 2, pk);
            attr_ints(pools[k], "pads", 4, pp);
            attr_ints(pools[k], "strides", 2, str);
            if (k >= 2) attr_int(pools[k], "count_include_pad", trial % 2);
        }
        kiln_tensor *xh = perm(x, 0), *wh = perm(w, 0);
        const kiln_tensor *ia[4] = {x, w, b, NULL}, *ib[4] = {xh, wh, b, NULL};
        struct { ir_node *a, *h; bool nchw_out; } pairs[4] = {
            {fc, hc, false}, {mp, hmp, false}, {ap, hap, false}, {gp, hgp, true}};
        for (int k = 0; k < 4; k++) {
            kiln_tensor *ya = run1(pairs[k].a, ia, what), *yh = run1(pairs[k].h, ib, what);
            kiln_tensor *yb = yh && !pairs[k].nchw_out ? perm(yh, 1) : NULL;
            double wa;
            double e = ya && yh ? diff(pairs[k].nchw_out ? yh : yb, ya, 1e-5, 1e-5, &wa) : -1;
            CHECK(e >= 0 && e <= 1, "%s: %s differs from %s (err %g)", what,
                  pairs[k].h->op_type, pairs[k].a->op_type, e);
            tensor_free(ya);
            tensor_free(yh);
            tensor_free(yb);
        }
        /* conversions, and padding */
        kiln_tensor *t1 = run1(tn, ia, what), *t2 = run1(tc, ib, what);
        double wa;
        CHECK(t1 && diff(t1, xh, 0, 0, &wa) == 0, "%s: ToNhwc wrong", what);
        CHECK(t2 && diff(t2, x, 0, 0, &wa) == 0, "%s: ToNchw wrong", what);
        tensor_free(t1);
        tensor_free(t2);
        attr_int(tn, "channels", C + 3);
        t1 = run1(tn, ia, what);
        bool ok = t1 && t1->dims[3] == C + 3;
        for (int64_t i = 0; ok && i < N * H * W; i++)
            for (int64_t c = 0; c < C + 3; c++) {
                float got = ((float *)t1->data)[i * (C + 3) + c];
                float want = c < C ? ((float *)xh->data)[i * C + c] : 0.0f;
                if (got != want) ok = false;
            }
        CHECK(ok, "%s: ToNhwc with channels %lld wrong", what, (long long)(C + 3));
        tensor_free(t1);
        tensor_free(xh);
        tensor_free(wh);
    next:
        tensor_free(x);
        tensor_free(w);
        tensor_free(b);
        ir_model_free(m);
    }
}

/* ---- INT8 chains: QLinearConv / 8-bit MaxPool / QAdd in NHWC */
typedef struct q8b {
    ir_model *m;
    ir_graph *g;
    int k;              /* name counter */
    kiln_dtype at;      /* activation type (int8 or uint8) */
} q8b;

static const char *q8name(q8b *b, const char *p) {
    char *s = arena_zalloc(b->m, 32);
    snprintf(s, 32, "%s%d", p, b->k++);
    return s;
}

static ir_value *q8_fscalar(q8b *b, float f) {
    return const_tensor(b->g, q8name(b, "s"), KILN_DTYPE_FLOAT32, 0, NULL, &f);
}

/* A zero point of type t near the middle of its range. */
static ir_value *q8_zp(q8b *b, kiln_dtype t, int spread) {
    int v = (int)(rnd() * (2 * spread + 1)) - spread;
    if (t == KILN_DTYPE_UINT8) {
        uint8_t u = (uint8_t)(128 + v);
        return const_tensor(b->g, q8name(b, "z"), t, 0, NULL, &u);
    }
    int8_t i = (int8_t)v;
    return const_tensor(b->g, q8name(b, "z"), t, 0, NULL, &i);
}

typedef struct q8conv_spec {
    int64_t C, M, k, s, p;
    bool per_channel, uint8_w, bias, wzp_nonzero;
} q8conv_spec;

/* QLinearConv of x (NCHW, b->at) with random weights; x's scale xs. The
** output scale follows the accumulator's spread, so outputs are neither
** all saturated nor all zero. *ys_out: the output's scale. */
static ir_value *q8_conv(q8b *b, ir_value *x, float xs, const q8conv_spec *sp, float *ys_out) {
    int64_t wd[4] = {sp->M, sp->C, sp->k, sp->k}, md[1] = {sp->M};
    int64_t nw = sp->M * sp->C * sp->k * sp->k;
    kiln_dtype wt = sp->uint8_w ? KILN_DTYPE_UINT8 : KILN_DTYPE_INT8;
    uint8_t *w = malloc((size_t)nw);
    float *ws = malloc((size_t)sp->M * sizeof *ws);
    int32_t *bias = malloc((size_t)sp->M * sizeof *bias);
    uint8_t *wz = malloc((size_t)sp->M);
    if (!w || !ws || !bias || !wz) exit(1);
    for (int64_t i = 0; i < nw; i++)
        w[i] = sp->uint8_w ? (uint8_t)(rnd() * 256) : (uint8_t)(int8_t)(rnd() * 255 - 127);
    float ws_sum = 0;
    for (int64_t m = 0; m < sp->M; m++) {
        ws[m] = (float)(0.002 + 0.01 * rnd());
        ws_sum += ws[m];
        bias[m] = (int32_t)(rnd() * 4000 - 2000);
        wz[m] = sp->wzp_nonzero ? (uint8_t)(sp->uint8_w ? 100 + m % 50 : (int8_t)(m % 7 - 3))
                                : 0;
    }
    ir_value *vw = const_tensor(b->g, q8name(b, "w"), wt, 4, wd, w);
    ir_value *vws = sp->per_channel ? const_tensor(b->g, q8name(b, "ws"), KILN_DTYPE_FLOAT32, 1,
                                                   md, ws)
                                    : q8_fscalar(b, ws[0]);
    ir_value *vwz = sp->per_channel ? const_tensor(b->g, q8name(b, "wz"), wt, 1, md, wz)
                                    : const_tensor(b->g, q8name(b, "wz"), wt, 0, NULL, wz);
    float wsm = sp->per_channel ? ws_sum / (float)sp->M : ws[0];
    float ys = (float)(xs * wsm * sqrt((double)(sp->C * sp->k * sp->k)) * 140.0);
    *ys_out = ys;
    ir_value *in[9] = {x, q8_fscalar(b, xs), q8_zp(b, b->at, 20), vw, vws, vwz,
                       q8_fscalar(b, ys), q8_zp(b, b->at, 20),
                       sp->bias ? const_tensor(b->g, q8name(b, "b"), KILN_DTYPE_INT32, 1, md,
                                               bias)
                                : NULL};
    /* x's zero point: the one x was made with is unknown here; any value
    ** is a valid QLinearConv */
    ir_node *n = node(b->g, "QLinearConv", sp->bias ? 9 : 8, in, 1, q8name(b, "y"));
    int64_t st[2] = {sp->s, sp->s}, pads[4] = {sp->p, sp->p, sp->p, sp->p};
    int64_t ks[2] = {sp->k, sp->k};
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "pads", pads, 4);
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    free(w);
    free(ws);
    free(bias);
    free(wz);
    return n->out[0];
}

static ir_value *q8_add(q8b *b, ir_value *a, float as, ir_value *c, float cs, float ys) {
    ir_value *in[8] = {a, q8_fscalar(b, as), q8_zp(b, b->at, 10), c, q8_fscalar(b, cs),
                       q8_zp(b, b->at, 10), q8_fscalar(b, ys), q8_zp(b, b->at, 10)};
    ir_node *n = node(b->g, "QAdd", 8, in, 1, q8name(b, "y"));
    n->op = OP_QAdd;
    n->op_type = op_name(OP_QAdd);
    n->domain = "kiln";
    n->schema = op_schema_get(OP_QAdd);
    return n->out[0];
}

typedef struct q8case {
    int64_t N, C, H, W, M1, M2;
    kiln_dtype at;
    bool per_channel, uint8_w, odd_wzp; /* odd_wzp: conv 1 has weight zero points */
    int64_t k1, s1;
} q8case;

/* stem conv (k1, s1, C -> M1) -> MaxPool 3x3 s2 -> 1x1 (M1 -> M2) -> 3x3
** (M2 -> M2) -> QAdd with the 1x1's output -> 3x3 stride 2 (M2 -> M1);
** outputs: the last conv and the 1x1's output (a mid-chain output). */
static void q8_graph(q8b *b, const q8case *c) {
    b->m = model_new(17);
    b->g = b->m->graph;
    b->k = 0;
    b->at = c->at;
    int64_t xd[4] = {c->N, c->C, c->H, c->W};
    ir_value *x = input(b->g, "x", c->at, 4, xd);
    b->g->inputs = arena_zalloc(b->m, sizeof *b->g->inputs);
    b->g->inputs[0] = x;
    b->g->n_inputs = 1;
    float s1, s2, s3, s5;
    q8conv_spec sp1 = {c->C, c->M1, c->k1, c->s1, c->k1 / 2, c->per_channel, c->uint8_w, true,
                       c->odd_wzp};
    ir_value *y1 = q8_conv(b, x, 0.02f, &sp1, &s1);
    ir_node *mp = node(b->g, "MaxPool", 1, &y1, 1, q8name(b, "y"));
    int64_t ks[2] = {3, 3}, st[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    ir_edit_set_ints(mp, "kernel_shape", ks, 2);
    ir_edit_set_ints(mp, "strides", st, 2);
    ir_edit_set_ints(mp, "pads", pads, 4);
    q8conv_spec sp2 = {c->M1, c->M2, 1, 1, 0, !c->per_channel, false, false, false};
    ir_value *y2 = q8_conv(b, mp->out[0], s1, &sp2, &s2);
    q8conv_spec sp3 = {c->M2, c->M2, 3, 1, 1, c->per_channel, false, true, false};
    ir_value *y3 = q8_conv(b, y2, s2, &sp3, &s3);
    ir_value *y4 = q8_add(b, y3, s3, y2, s2, (s2 + s3) * 0.7f);
    q8conv_spec sp5 = {c->M2, c->M1, 3, 2, 1, c->per_channel, c->uint8_w, true, false};
    ir_value *y5 = q8_conv(b, y4, (s2 + s3) * 0.7f, &sp5, &s5);
    b->g->outputs = arena_zalloc(b->m, 2 * sizeof *b->g->outputs);
    b->g->outputs[0] = y5;
    b->g->outputs[1] = y2;
    b->g->n_outputs = 2;
    y5->flags |= IR_VALUE_OUTPUT;
    y2->flags |= IR_VALUE_OUTPUT;
    if (ir_graph_compact(b->g) || ir_graph_infer(b->g)) {
        fprintf(stderr, "q8 graph: %s\n", kiln_last_error());
        exit(2);
    }
}

/* Random bytes for the graph's 8-bit input. */
static kiln_tensor **q8_inputs(const ir_graph *g) {
    kiln_tensor **in = calloc(2, sizeof *in);
    if (!in) return NULL;
    const ir_type *t = &g->inputs[0]->type;
    in[0] = tensor_with(t->dtype, 4, t->dims, NULL);
    for (int64_t i = 0; i < tensor_numel(in[0]); i++)
        ((uint8_t *)in[0]->data)[i] = (uint8_t)(rnd() * 256);
    return in;
}

/* The chain built twice (same seed); the pass on one copy; outputs must be
** equal bit for bit (NhwcQLinearConv is QLinearConv on transposed data,
** the padded channels add exact zeros). */
static void q8_chain_case(int trial) {
    int align = trial % 3 == 0 ? 1 : trial % 3 == 1 ? 4 : 8;
    q8case c;
    c.N = 1 + (int64_t)(rnd() * 2);
    c.C = 1 + (int64_t)(rnd() * 9); /* odd counts: padded to the alignment */
    c.H = 5 + (int64_t)(rnd() * 9), c.W = 5 + (int64_t)(rnd() * 9);
    c.M1 = align * (1 + (int64_t)(rnd() * (align == 1 ? 9 : 3)));
    c.M2 = align * (1 + (int64_t)(rnd() * (align == 1 ? 9 : 3)));
    c.at = trial % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    c.per_channel = trial % 4 < 2;
    c.uint8_w = trial % 5 == 3;
    c.odd_wzp = trial % 7 == 5;
    c.k1 = trial % 3 == 2 ? 7 : 3;
    c.s1 = 1 + trial % 2;
    char what[200];
    snprintf(what, sizeof what,
             "q8 chain %d: align %d N%lld C%lld H%lld W%lld M%lld/%lld %s %s%s%s k%lld s%lld",
             trial, align, (long long)c.N, (long long)c.C, (long long)c.H, (long long)c.W,
             (long long)c.M1, (long long)c.M2, c.at == KILN_DTYPE_INT8 ? "int8" : "uint8",
             c.per_channel ? "per-channel" : "per-tensor", c.uint8_w ? " uint8 w" : "",
             c.odd_wzp ? " w_zp" : "", (long long)c.k1, (long long)c.s1);
    uint64_t seed = g_rng;
    q8b a, o;
    q8_graph(&a, &c);
    g_rng = seed;
    q8_graph(&o, &c);
    /* the half kinds alone leave an 8-bit graph alone */
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = o.m;
    pc.g = o.g;
    pc.opt_level = 3;
    pc.log = g_verbose ? log_fn : NULL;
    pc.log_max = g_verbose ? KILN_SEVERITY_VERBOSE : KILN_SEVERITY_ERROR;
    int before = o.g->n_nodes;
    kiln_status st = pass_channels_last_kinds(&pc, align, CL_KIND_HALF);
    CHECK(!st && o.g->n_nodes == before && count_op(o.g, "ToNhwc") == 0,
          "%s: the half-only pass changed an INT8 graph", what);
    st = pass_channels_last_kinds(&pc, align, CL_KIND_Q8);
    CHECK(!st, "%s: layout pass failed: %s", what, st ? kiln_last_error() : "");
    if (st) goto done;
    /* conv 1 stays NCHW when its channels need padding but it has weight
    ** zero points (padding would add (0 - x_zp) * (0 - w_zp)) */
    bool stem_nchw = c.odd_wzp && c.C % align;
    int want_conv = stem_nchw ? 3 : 4;
    CHECK(count_op(o.g, "NhwcQLinearConv") == want_conv, "%s: %d NhwcQLinearConv, expected %d",
          what, count_op(o.g, "NhwcQLinearConv"), want_conv);
    CHECK(count_op(o.g, "QLinearConv") == 4 - want_conv, "%s: %d QLinearConv left", what,
          count_op(o.g, "QLinearConv"));
    CHECK(count_op(o.g, "NhwcMaxPool") == (stem_nchw ? 0 : 1), "%s: MaxPool layout", what);
    CHECK(count_op(o.g, "ToNhwc") == 1 && count_op(o.g, "ToNchw") == 2,
          "%s: %d ToNhwc, %d ToNchw (expected 1, 2)", what, count_op(o.g, "ToNhwc"),
          count_op(o.g, "ToNchw"));
    for (int i = 0; i < o.g->n_nodes; i++) {
        const ir_node *n = o.g->nodes[i];
        if (n->op == OP_QAdd)
            CHECK(!strcmp(layout_of_node(n), "NHWC"), "%s: QAdd not NHWC", what);
        if (n->op == OP_ToNhwc) {
            int64_t want = !stem_nchw && c.C % align ? (c.C + align - 1) / align * align : -1;
            CHECK(ir_attr_int(n, "channels", -1) == want, "%s: ToNhwc channels %lld, want %lld",
                  what, (long long)ir_attr_int(n, "channels", -1), (long long)want);
        }
    }
    for (int r = 0; r < 2; r++) {
        kiln_tensor **in = q8_inputs(a.g);
        kiln_tensor *oa[2] = {NULL, NULL}, *ob[2] = {NULL, NULL};
        kiln_status sa = in ? ref_run_graph(a.g, (const kiln_tensor *const *)in, NULL, oa)
                            : KILN_OUT_OF_MEMORY;
        CHECK(!sa, "%s: original graph failed: %s", what, sa ? kiln_last_error() : "");
        kiln_status sb = in && !sa
                             ? ref_run_graph(o.g, (const kiln_tensor *const *)in, NULL, ob)
                             : KILN_OUT_OF_MEMORY;
        CHECK(sa || !sb, "%s: rewritten graph failed: %s", what, sb ? kiln_last_error() : "");
        for (int k = 0; !sa && !sb && k < 2; k++) {
            bool same = oa[k]->dtype == ob[k]->dtype && oa[k]->nbytes == ob[k]->nbytes &&
                        oa[k]->rank == 4 && ob[k]->rank == 4 &&
                        !memcmp(oa[k]->dims, ob[k]->dims, sizeof(int64_t) * 4) &&
                        !memcmp(oa[k]->data, ob[k]->data, oa[k]->nbytes);
            /* not trivially saturated: several distinct values */
            int distinct = 0;
            uint8_t seen[256] = {0};
            for (size_t i = 0; i < oa[k]->nbytes; i++)
                if (!seen[((uint8_t *)oa[k]->data)[i]]++) distinct++;
            CHECK(same, "%s: output %d differs from the NCHW graph's", what, k);
            CHECK(distinct >= 3 || oa[k]->nbytes < 8, "%s: output %d has %d distinct values",
                  what, k, distinct);
        }
        free_tensors(in, 1);
        for (int k = 0; k < 2; k++) {
            tensor_free(oa[k]);
            tensor_free(ob[k]);
        }
    }
    /* idempotent */
    before = o.g->n_nodes;
    st = pass_channels_last_kinds(&pc, align, CL_KIND_Q8);
    CHECK(!st && o.g->n_nodes == before, "%s: second run changed the graph", what);
done:
    ir_model_free(a.m);
    ir_model_free(o.m);
}

/* The 1x1 QLinearConv form of a Gemm ([rows, K, 1, 1]) starts no chain. */
static void q8_gemm_form_case(void) {
    const char *what = "q8 Gemm form";
    q8b b;
    b.m = model_new(17);
    b.g = b.m->graph;
    b.k = 0;
    b.at = KILN_DTYPE_INT8;
    int64_t xd[4] = {5, 32, 1, 1};
    ir_value *x = input(b.g, "x", b.at, 4, xd);
    b.g->inputs = arena_zalloc(b.m, sizeof *b.g->inputs);
    b.g->inputs[0] = x;
    b.g->n_inputs = 1;
    float ys;
    q8conv_spec sp = {32, 16, 1, 1, 0, true, false, true, false};
    ir_value *y = q8_conv(&b, x, 0.02f, &sp, &ys);
    b.g->outputs = arena_zalloc(b.m, sizeof *b.g->outputs);
    b.g->outputs[0] = y;
    b.g->n_outputs = 1;
    y->flags |= IR_VALUE_OUTPUT;
    if (ir_graph_compact(b.g) || ir_graph_infer(b.g)) {
        CHECK(0, "%s: %s", what, kiln_last_error());
        ir_model_free(b.m);
        return;
    }
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = b.m;
    pc.g = b.g;
    kiln_status st = pass_channels_last_kinds(&pc, 8, CL_KIND_Q8);
    CHECK(!st && count_op(b.g, "NhwcQLinearConv") == 0 && count_op(b.g, "ToNhwc") == 0,
          "%s: converted (%d NhwcQLinearConv)", what, count_op(b.g, "NhwcQLinearConv"));
    ir_model_free(b.m);
}

/* Builds MODEL for the CPU (the pass on when nhwc, through the
** environment variable), runs it on in; outputs into out (n of them).
** *n_nhwc / *n_reformat count the engine's NHWC and reformat layers. */
static kiln_status engine_run(const kiln_model *km, bool nhwc, kiln_tensor **in,
                              kiln_tensor **out, int n, int *n_nhwc, int *n_reformat) {
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    kiln_context *cx = NULL;
    void *blob = NULL;
    size_t size = 0;
    if (nhwc) setenv("KILN_CHANNELS_LAST", "1", 1);
    else unsetenv("KILN_CHANNELS_LAST");
    int prof = 0;
    int64_t mn[4] = {1, 3, 19, 17}, op[4] = {2, 3, 19, 17}, mx[4] = {3, 3, 19, 17};
    kiln_status st = kiln_builder_config_create(&cfg);
    if (!st) st = kiln_builder_config_add_profile(cfg, &prof);
    if (!st) st = kiln_builder_config_set_shape(cfg, prof, "x", 4, mn, op, mx);
    if (!st) st = kiln_build_engine(km, cfg, &blob, &size);
    unsetenv("KILN_CHANNELS_LAST");
    if (!st) st = kiln_engine_load_memory(blob, size, &e);
    *n_nhwc = *n_reformat = 0;
    for (int i = 0; !st && i < kiln_engine_num_layers(e); i++) {
        kiln_layer_info li;
        if (kiln_engine_layer(e, i, &li)) continue;
        const char *lay = kiln_engine_layer_layout(e, i);
        *n_nhwc += !strcmp(lay, "NHWC");
        *n_reformat += strchr(lay, '>') != NULL;
        /* the layout follows the op: the NHWC ops, the reformats, and the
        ** elementwise layers the pass moved into a chain (Clip here) */
        bool want_nhwc = !strncmp(li.op_type, "Nhwc", 4) || (nhwc && !strcmp(li.op_type, "Clip"));
        bool want_ref = !strcmp(li.op_type, "ToNhwc") || !strcmp(li.op_type, "ToNchw");
        if (want_nhwc != !strcmp(lay, "NHWC") || want_ref != (strchr(lay, '>') != NULL))
            *n_reformat += 100; /* reported by the count check */
    }
    const ir_graph *g = km->ir->graph;
    if (!st) st = kiln_context_create(e, &cx);
    if (!st) st = kiln_context_set_input_shape(cx, "x", 4, in[0]->dims);
    if (!st) st = kiln_context_set_tensor(cx, "x", in[0]->data, in[0]->nbytes);
    for (int o = 0; !st && o < n; o++)
        st = kiln_context_set_tensor(cx, g->outputs[o]->name, out[o]->data, out[o]->nbytes);
    if (!st) st = kiln_context_execute(cx);
    kiln_context_destroy(cx);
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    return st;
}

/* Through kiln_build_engine with KILN_CHANNELS_LAST=1 on the CPU backend:
** the engine has NHWC layers and runs like the same build without them
** and like the reference run of the original graph. */
static void engine_case(void) {
    const char *what = "engine (KILN_CHANNELS_LAST=1)";
    setenv("KILN_CHANNELS_LAST", "1", 1);
    CHECK(pass_channels_last_wanted(false), "%s: the variable is ignored", what);
    unsetenv("KILN_CHANNELS_LAST");
    kiln_model *km = NULL;
    if (kiln_model_load(MODEL, &km)) {
        CHECK(0, "%s: cannot load: %s", what, kiln_last_error());
        return;
    }
    const ir_graph *g = km->ir->graph;
    int no = g->n_outputs;
    kiln_tensor **in = make_inputs(g, 3, NULL);
    kiln_tensor **ref = calloc((size_t)no, sizeof *ref);
    kiln_tensor **a = calloc((size_t)no, sizeof *a), **b = calloc((size_t)no, sizeof *b);
    if (!in || !ref || !a || !b || ref_run_graph(g, (const kiln_tensor *const *)in, NULL, ref)) {
        CHECK(0, "%s: reference run failed: %s", what, kiln_last_error());
        goto done;
    }
    for (int o = 0; o < no; o++) {
        a[o] = tensor_with(ref[o]->dtype, ref[o]->rank, ref[o]->dims, NULL);
        b[o] = tensor_with(ref[o]->dtype, ref[o]->rank, ref[o]->dims, NULL);
    }
    int nh, nr, nh0, nr0;
    /* CPU builds also block convolutions for the CPU (passes/nchwc.c),
    ** which would leave no Conv for the NHWC pass: this case is about the
    ** NHWC rewrite, so that one is off. */
    setenv("KILN_NCHWC", "0", 1);
    kiln_status st = engine_run(km, true, in, a, no, &nh, &nr);
    CHECK(!st, "%s: build/run failed: %s", what, st ? kiln_last_error() : "");
    kiln_status st0 = engine_run(km, false, in, b, no, &nh0, &nr0);
    unsetenv("KILN_NCHWC");
    CHECK(!st0, "%s: build/run without the pass failed: %s", what,
          st0 ? kiln_last_error() : "");
    if (st || st0) goto done;
    CHECK(nh == 14 && nr == 4, "%s: %d NHWC layers, %d reformats (expected 14, 4)", what, nh,
          nr);
    CHECK(nh0 == 0 && nr0 == 0, "%s: NHWC layers without the pass", what);
    for (int o = 0; o < no; o++) {
        /* tolerances relative to the output's scale: the CPU engines' fast
        ** tactics round differently from the reference kernels, and the
        ** random-weight net has outputs near zero by cancellation */
        double scale = 0;
        for (int64_t i = 0; i < tensor_numel(ref[o]); i++)
            scale = fmax(scale, fabs(dt_get_f64(ref[o]->dtype, ref[o]->data, (size_t)i)));
        double wa, wb, e1 = diff(a[o], b[o], 1e-4 * scale + 1e-6, 1e-4, &wa);
        double e2 = diff(a[o], ref[o], 1e-3 * scale + 1e-6, 1e-3, &wb);
        CHECK(e1 >= 0 && e1 <= 1, "%s: output %s differs from the NCHW engine's (err %g, "
              "max abs %g)", what, g->outputs[o]->name, e1, wa);
        CHECK(e2 >= 0 && e2 <= 1, "%s: output %s differs from the reference (err %g, "
              "max abs %g)", what, g->outputs[o]->name, e2, wb);
    }
done:
    if (ref) free_tensors(ref, no);
    if (a) free_tensors(a, no);
    if (b) free_tensors(b, no);
    if (in) free_tensors(in, g->n_inputs);
    kiln_model_free(km);
}

/* ---- INT8 end to end: MODEL calibrated (KILN_PRECISION_INT8) for the CPU,
** built with KILN_CHANNELS_LAST=1 (the CPU runs NhwcQLinearConv through
** its reference kernel) and without; the quantized outputs must be the
** same bytes, the float head's within float rounding (its GEMM tactic is
** timed and may differ). */
static bool write_npy(const char *path, const kiln_tensor *t) {
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr,
                     "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (%lld, %lld, %lld, %lld), }",
                     (long long)t->dims[0], (long long)t->dims[1], (long long)t->dims[2],
                     (long long)t->dims[3]);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hl = n + pad + 1;
    pre[8] = (unsigned char)(hl & 0xff), pre[9] = (unsigned char)(hl >> 8);
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
    return fclose(f) == 0 && ok;
}

static kiln_status q8_engine_run(const kiln_model *km, const char *calib, bool nhwc,
                                 const kiln_tensor *x, kiln_tensor **out, int n, int *n_q) {
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    kiln_context *cx = NULL;
    void *blob = NULL;
    size_t size = 0;
    setenv("KILN_CHANNELS_LAST", nhwc ? "1" : "0", 1);
    int prof = 0;
    kiln_status st = kiln_builder_config_create(&cfg);
    if (!st) st = kiln_builder_config_add_profile(cfg, &prof);
    if (!st) st = kiln_builder_config_set_shape(cfg, prof, "x", 4, x->dims, x->dims, x->dims);
    if (!st) st = kiln_builder_config_set_precisions(cfg, KILN_PRECISION_INT8);
    if (!st)
        st = kiln_builder_config_set_int8_calibration(cfg, calib, KILN_CALIB_MINMAX, 99.99, 0,
                                                     NULL);
    if (!st) st = kiln_build_engine(km, cfg, &blob, &size);
    unsetenv("KILN_CHANNELS_LAST");
    if (!st) st = kiln_engine_load_memory(blob, size, &e);
    *n_q = 0;
    for (int i = 0; !st && i < kiln_engine_num_layers(e); i++) {
        kiln_layer_info li;
        if (!kiln_engine_layer(e, i, &li) && !strcmp(li.op_type, "NhwcQLinearConv")) ++*n_q;
    }
    const ir_graph *g = km->ir->graph;
    if (!st) st = kiln_context_create(e, &cx);
    if (!st) st = kiln_context_set_input_shape(cx, "x", 4, x->dims);
    if (!st) st = kiln_context_set_tensor(cx, "x", x->data, x->nbytes);
    for (int o = 0; !st && o < n; o++)
        st = kiln_context_set_tensor(cx, g->outputs[o]->name, out[o]->data, out[o]->nbytes);
    if (!st) st = kiln_context_execute(cx);
    kiln_context_destroy(cx);
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    return st;
}

static void q8_engine_case(void) {
    const char *what = "INT8 engine (KILN_CHANNELS_LAST=1)";
    kiln_model *km = NULL;
    if (kiln_model_load(MODEL, &km)) {
        CHECK(0, "%s: cannot load: %s", what, kiln_last_error());
        return;
    }
    const ir_graph *g = km->ir->graph;
    int no = g->n_outputs;
    char dir[] = "/tmp/kiln_test_layout_XXXXXX", path[128];
    kiln_tensor **in = make_inputs(g, 2, NULL);
    kiln_tensor **a = calloc((size_t)no, sizeof *a), **b = calloc((size_t)no, sizeof *b);
    kiln_tensor **ref = calloc((size_t)no, sizeof *ref);
    bool made = in && a && b && ref && mkdtemp(dir);
    path[0] = 0;
    if (!made) {
        CHECK(0, "%s: setup failed", what);
        goto done;
    }
    snprintf(path, sizeof path, "%s/x.npy", dir);
    if (!write_npy(path, in[0]) ||
        ref_run_graph(g, (const kiln_tensor *const *)in, NULL, ref)) {
        CHECK(0, "%s: calibration data / reference run failed", what);
        goto done;
    }
    for (int o = 0; o < no; o++) {
        a[o] = tensor_with(ref[o]->dtype, ref[o]->rank, ref[o]->dims, NULL);
        b[o] = tensor_with(ref[o]->dtype, ref[o]->rank, ref[o]->dims, NULL);
    }
    int nq = 0, nq0 = 0;
    setenv("KILN_NCHWC", "0", 1);
    kiln_status st = q8_engine_run(km, dir, true, in[0], a, no, &nq);
    CHECK(!st, "%s: build/run failed: %s", what, st ? kiln_last_error() : "");
    kiln_status st0 = q8_engine_run(km, dir, false, in[0], b, no, &nq0);
    CHECK(!st0, "%s: build/run without the pass failed: %s", what,
          st0 ? kiln_last_error() : "");
    unsetenv("KILN_NCHWC");
    if (st || st0) goto done;
    CHECK(nq == 10 && nq0 == 0, "%s: %d / %d NhwcQLinearConv layers (expected 10 / 0)", what, nq,
          nq0);
    for (int o = 0; o < no; o++) {
        double scale = 0;
        for (int64_t i = 0; i < tensor_numel(a[o]); i++)
            scale = fmax(scale, fabs(dt_get_f64(a[o]->dtype, a[o]->data, (size_t)i)));
        double wa, e = diff(a[o], b[o], 1e-5 * scale + 1e-6, 1e-5, &wa);
        CHECK(e >= 0 && e <= 1, "%s: output %s differs from the NCHW engine's (err %g, max abs %g)",
              what, g->outputs[o]->name, e, wa);
    }
done:
    if (made) {
        remove(path);
        remove(dir);
    }
    if (in) free_tensors(in, g->n_inputs);
    if (a) free_tensors(a, no);
    if (b) free_tensors(b, no);
    if (ref) free_tensors(ref, no);
    kiln_model_free(km);
}

int main(void) {
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    unsetenv("KILN_CHANNELS_LAST");
    CHECK(!pass_channels_last_wanted(false) && pass_channels_last_wanted(true),
          "default: wanted only for device half builds");
    setenv("KILN_CHANNELS_LAST", "0", 1);
    CHECK(!pass_channels_last_wanted(true), "KILN_CHANNELS_LAST=0 ignored");
    unsetenv("KILN_CHANNELS_LAST");
    pass_case(8, false);
    pass_case(1, false);
    pass_case(8, true);
    pass_case(1, true);
    op_cases();
    for (int t = 0; t < 30; t++) q8_chain_case(t);
    q8_gemm_form_case();
    engine_case();
    q8_engine_case();
    return test_summary();
}
