/* test_nchwc.c: the channel-blocked (NCHWc) layout. For block 8 (the AVX2
** kernels) and 16 (AVX-512): random conv and pool layers, awkward ones
** included (channels not a multiple of the block, 1x1 to 7x7, strides,
** asymmetric pads, dilations, H or W = 1, depthwise, NCHW input, residual,
** activations, nearest Resize), go through the layout pass; the rewritten graph must give
** the original's outputs on the reference interpreter, and every CPU
** tactic of every blocked layer must match that layer's reference kernel
** (1 and 3 threads). Then ResNet-style and MobileNet-style graphs go
** through the whole pipeline: same outputs (rtol 1e-4), one chain (no
** reorder-in, a single reorder-out). Extra argument: tactic-name filter.
** Prints `N passed, M failed`. */
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/ops/nchwc.h"
#include "test_util.h"

static unsigned g_host;
static int g_tactic_runs[2]; /* [0] block 8, [1] block 16 */

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

/* ------------------------------------------------------------ graph building */
typedef struct gbuild {
    ir_model *m;
    ir_graph *g;
    int k; /* name counter */
} gbuild;

static const char *nm(gbuild *b, const char *p) {
    char *s = arena_zalloc(b->m, 32);
    snprintf(s, 32, "%s%d", p, b->k++);
    return s;
}

static ir_value *rconst(gbuild *b, int rank, const int64_t *dims, double scale) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) die("malloc");
    for (int64_t i = 0; i < n; i++) v[i] = (float)((rnd() * 2 - 1) * scale);
    ir_value *c = const_tensor(b->g, nm(b, "c"), KILN_DTYPE_FLOAT32, rank, dims, v);
    free(v);
    return c;
}

static ir_value *fscalar(gbuild *b, float f) {
    return const_tensor(b->g, nm(b, "s"), KILN_DTYPE_FLOAT32, 0, NULL, &f);
}

static void add_input(gbuild *b, ir_value *v) {
    ir_value **a = arena_zalloc(b->m, ((size_t)b->g->n_inputs + 1) * sizeof *a);
    if (b->g->n_inputs) memcpy(a, b->g->inputs, (size_t)b->g->n_inputs * sizeof *a);
    a[b->g->n_inputs++] = v;
    b->g->inputs = a;
}

static void set_output(gbuild *b, ir_value *v) {
    b->g->outputs = arena_zalloc(b->m, sizeof *b->g->outputs);
    b->g->outputs[0] = v;
    b->g->n_outputs = 1;
    v->flags |= IR_VALUE_OUTPUT;
}

typedef struct conv_spec {
    int64_t C, M, G, kh, kw, sh, sw, dh, dw, pads[4];
    bool bias;
    const char *act; /* FusedConv activation ("" none) */
    ir_value *z;     /* residual (FusedConv) */
    bool plain;      /* ONNX Conv (the pipeline fuses) */
} conv_spec;

static ir_value *conv(gbuild *b, ir_value *x, const conv_spec *s) {
    int64_t wd[4] = {s->M, s->C / s->G, s->kh, s->kw}, bd[1] = {s->M};
    double sc = 1.0 / sqrt((double)(s->C / s->G * s->kh * s->kw));
    ir_value *in[4] = {x, rconst(b, 4, wd, sc), s->bias ? rconst(b, 1, bd, 1.0) : NULL, s->z};
    int nin = s->z ? 4 : s->bias ? 3 : 2;
    ir_node *n = node(b->g, s->plain ? "Conv" : "Conv", nin, in, 1, nm(b, "y"));
    if (!s->plain) ir_edit_set_op(n, OP_FusedConv);
    int64_t st[2] = {s->sh, s->sw}, dl[2] = {s->dh, s->dw}, ks[2] = {s->kh, s->kw};
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "dilations", dl, 2);
    ir_edit_set_ints(n, "pads", s->pads, 4);
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    if (s->G != 1) ir_edit_set_int(n, "group", s->G);
    if (!s->plain && s->act && s->act[0]) {
        ir_edit_set_str(n, "activation", s->act);
        if (!strcmp(s->act, "Clip")) {
            ir_edit_set_float(n, "activation_alpha", -0.25f);
            ir_edit_set_float(n, "activation_beta", 0.75f);
        }
    }
    return n->out[0];
}

static ir_value *op1(gbuild *b, const char *op, ir_value *x) {
    return node(b->g, op, 1, &x, 1, nm(b, "y"))->out[0];
}

static ir_value *clip6(gbuild *b, ir_value *x) {
    ir_value *in[3] = {x, fscalar(b, 0.0f), fscalar(b, 6.0f)};
    return node(b->g, "Clip", 3, in, 1, nm(b, "y"))->out[0];
}

static ir_value *op2(gbuild *b, const char *op, ir_value *x, ir_value *y) {
    ir_value *in[2] = {x, y};
    return node(b->g, op, 2, in, 1, nm(b, "y"))->out[0];
}

static ir_value *pool(gbuild *b, const char *op, ir_value *x, int64_t k, int64_t s,
                      const int64_t pads[4], bool incl) {
    ir_node *n = node(b->g, op, 1, &x, 1, nm(b, "y"));
    if (strncmp(op, "Global", 6)) {
        int64_t ks[2] = {k, k}, st[2] = {s, s};
        ir_edit_set_ints(n, "kernel_shape", ks, 2);
        ir_edit_set_ints(n, "strides", st, 2);
        ir_edit_set_ints(n, "pads", pads, 4);
        if (incl) ir_edit_set_int(n, "count_include_pad", 1);
    }
    return n->out[0];
}

static void finish(gbuild *b) {
    if (ir_graph_compact(b->g) || ir_graph_infer(b->g)) die("infer");
}

/* Runs the pass list (or "all") with a block. */
static kiln_status passes_with_block(ir_model *m, const char *list, int block) {
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m;
    pc.g = m->graph;
    pc.opt_level = 3;
    pc.nchwc_block = block;
    pc.log = g_verbose ? log_fn : NULL;
    pc.log_max = g_verbose ? KILN_SEVERITY_VERBOSE : KILN_SEVERITY_ERROR;
    return !strcmp(list, "all") ? passes_run_all(&pc) : passes_run_one(&pc, list);
}

/* ------------------------------------------------------------ layer checks */
static kiln_tensor *rand_tensor(const ir_type *t) {
    kiln_tensor *r;
    if (t->rank < 0 || tensor_new(KILN_DTYPE_FLOAT32, t->rank, t->dims, &r)) die("tensor");
    float *p = r->data;
    for (int64_t i = 0; i < tensor_numel(r); i++) p[i] = (float)(rnd() * 4 - 2);
    return r;
}

/* Thread counts check_layer runs each tactic at; the partition cases
** (test_partitions) widen them. A negative count runs that many threads
** with KILN_CPU_SPLIT=old (the row-first partition). */
static const int g_th_default[] = {1, 3};
static const int *g_threads = g_th_default;
static int g_n_threads = 2;

/* Every tactic of blocked node n against its reference kernel. */
static void check_layer(const char *what, ir_node *n, int bi) {
    kiln_tensor *in[4] = {0}, *own[4] = {0};
    for (int i = 0; i < n->n_in; i++) {
        ir_value *v = n->in[i];
        if (!v) continue;
        in[i] = v->const_val ? v->const_val : (own[i] = rand_tensor(&v->type));
    }
    kiln_tensor *want[1];
    if (ref_run_node(n, (const kiln_tensor *const *)in, want)) {
        CHECK(0, "%s: reference %s failed: %s", what, n->op_type, kiln_last_error());
        goto done;
    }
    const ir_type *tin[4] = {0};
    ir_type types[4];
    for (int i = 0; i < n->n_in; i++)
        if (in[i]) {
            types[i].dtype = in[i]->dtype;
            types[i].rank = in[i]->rank;
            memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
            tin[i] = &types[i];
        }
    int ran = 0;
    for (const kiln_tactic *const *t = cpu_tactic_table; *t; t++) {
        if ((*t)->op != n->op || ((*t)->isa & ~g_host)) continue;
        if ((*t)->supports && !(*t)->supports(n, tin)) continue;
        /* a tactic with prepared data runs on its blob (as in an engine,
        ** W's data absent where the blob replaces it) and without */
        void *blob = NULL;
        size_t bn = 0;
        if ((*t)->prepare) {
            const kiln_tensor *cin[4] = {0};
            for (int i = 0; i < n->n_in; i++) cin[i] = n->in[i] ? n->in[i]->const_val : NULL;
            CHECK(!(*t)->prepare(n, tin, cin, &blob, &bn), "%s: %s: prepare failed: %s", what,
                  (*t)->name, kiln_last_error());
        }
        kiln_tensor wcopy;
        const kiln_tensor *bin[4] = {in[0], in[1], in[2], in[3]};
        if (blob && ((*t)->blob_replaces & 2u) && in[1]) {
            wcopy = *in[1];
            wcopy.data = NULL;
            bin[1] = &wcopy;
        }
        for (int vb = 0; vb < (blob ? 2 : 1); vb++)
        for (int ti = 0; ti < g_n_threads; ti++) {
            int th = abs(g_threads[ti]);
            if (g_threads[ti] < 0) setenv("KILN_CPU_SPLIT", "old", 1);
            kiln_set_num_threads(th);
            kiln_tensor *y;
            if (tensor_new(KILN_DTYPE_FLOAT32, want[0]->rank, want[0]->dims, &y)) die("out");
            float *p = y->data;
            for (int64_t i = 0; i < tensor_numel(y); i++) p[i] = NAN;
            ref_ctx c;
            memset(&c, 0, sizeof c);
            c.node = n;
            c.opset = 17;
            c.n_in = n->n_in;
            c.in = vb ? bin : (const kiln_tensor *const *)in;
            c.blob = vb ? blob : NULL;
            c.blob_size = vb ? bn : 0;
            c.n_out = 1;
            kiln_tensor *outs[1] = {y};
            c.out = outs;
            int rc = (*t)->run(&c);
            unsetenv("KILN_CPU_SPLIT");
            CHECK(!rc, "%s: %s failed: %s", what, (*t)->name, c.err);
            if (!rc) {
                double wa, e = diff(y, want[0], 1e-4, 1e-4, &wa);
                CHECK(e >= 0 && e <= 1, "%s: %s (%d threads%s%s) differs from the reference "
                      "(err %g, max abs %g)", what, (*t)->name, th,
                      g_threads[ti] < 0 ? ", old split" : "", vb ? ", blob" : "", e, wa);
                if (g_verbose) fprintf(stderr, "  %s %s ok\n", what, (*t)->name);
            }
            tensor_free(y);
            ran++;
        }
        if (blob && bn > 64) { /* a truncated or foreign blob: refused, never read */
            kiln_tensor *y;
            if (tensor_new(KILN_DTYPE_FLOAT32, want[0]->rank, want[0]->dims, &y)) die("out");
            ref_ctx c;
            memset(&c, 0, sizeof c);
            c.node = n;
            c.opset = 17;
            c.n_in = n->n_in;
            c.in = bin;
            c.n_out = 1;
            kiln_tensor *outs[1] = {y};
            c.out = outs;
            c.blob = blob;
            c.blob_size = bn - 4;
            CHECK((*t)->run(&c) != 0, "%s: %s took a truncated blob", what, (*t)->name);
            ((char *)blob)[0] ^= 1;
            c.blob_size = bn;
            CHECK((*t)->run(&c) != 0, "%s: %s took a foreign blob", what, (*t)->name);
            tensor_free(y);
        }
        kiln_aligned_free(blob);
    }
    kiln_set_num_threads(1);
    g_tactic_runs[bi] += ran;
    /* each blocked op has a fast tactic for the host's block (reorders:
    ** the portable one) */
    bool need = n->op == OP_NchwcReorderIn || n->op == OP_NchwcReorderOut ||
                (bi == 1 ? (g_host & KILN_ISA_AVX512F) != 0 : (g_host & KILN_ISA_AVX2) != 0);
    CHECK(ran > 0 || !need, "%s: no tactic took %s", what, n->op_type);
    tensor_free(want[0]);
done:
    for (int i = 0; i < 4; i++) tensor_free(own[i]);
}

/* Builds the same graph twice, runs `passes` on the second with the block,
** compares them and checks every blocked layer. */
typedef void (*build_fn)(gbuild *b, const void *arg);

static ir_model *run_case(const char *what, build_fn fn, const void *arg, int block,
                          const char *passes, ir_model **orig_out) {
    uint64_t seed = g_rng;
    gbuild a = {model_new(17), NULL, 0};
    a.g = a.m->graph;
    fn(&a, arg);
    finish(&a);
    g_rng = seed;
    gbuild b = {model_new(17), NULL, 0};
    b.g = b.m->graph;
    fn(&b, arg);
    finish(&b);
    kiln_status st = passes_with_block(b.m, passes, block);
    CHECK(!st, "%s: passes failed: %s", what, st ? kiln_last_error() : "");
    if (!st) {
        int blocked = count_op(b.g, "NchwcConv") + count_op(b.g, "NchwcPool");
        CHECK(blocked > 0, "%s: nothing was blocked", what);
        same_run(what, a.g, b.g, 1, NULL, 1e-5, 1e-4);
        for (int i = 0; i < b.g->n_nodes; i++)
            if (b.g->nodes[i]->op >= OP_NchwcReorderIn)
                check_layer(what, b.g->nodes[i], block == 16);
    }
    if (orig_out) *orig_out = a.m;
    else ir_model_free(a.m);
    return b.m;
}

/* ------------------------------------------------------------ conv layers */
typedef struct conv_case {
    int64_t N, H, W;
    conv_spec s;
    bool resid, pre; /* residual input; a 1x1 conv before (blocked input) */
} conv_case;

static void build_conv(gbuild *b, const void *arg) {
    const conv_case *cc = arg;
    int64_t xd[4] = {cc->N, cc->s.C, cc->H, cc->W};
    ir_value *x = input(b->g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    add_input(b, x);
    if (cc->pre) {
        conv_spec p = {cc->s.C, cc->s.C, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, "Relu", NULL,
                       false};
        x = conv(b, x, &p);
    }
    conv_spec s = cc->s;
    if (cc->resid) {
        const int64_t *p = s.pads;
        int64_t zd[4] = {cc->N, s.M, nchwc_out_dim(cc->H, s.kh, s.sh, s.dh, p[0], p[2]),
                         nchwc_out_dim(cc->W, s.kw, s.sw, s.dw, p[1], p[3])};
        s.z = input(b->g, "z", KILN_DTYPE_FLOAT32, 4, zd);
        add_input(b, s.z);
    }
    set_output(b, conv(b, x, &s));
}

static void conv_case_run(const conv_case *cc) {
    static const int blocks[2] = {8, 16};
    for (int bi = 0; bi < 2; bi++) {
        char what[300];
        const conv_spec *s = &cc->s;
        snprintf(what, sizeof what,
                 "b%d N%lld C%lld M%lld G%lld %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld "
                 "p%lld,%lld,%lld,%lld%s%s act'%s'%s",
                 blocks[bi], (long long)cc->N, (long long)s->C, (long long)s->M,
                 (long long)s->G, (long long)cc->H, (long long)cc->W, (long long)s->kh,
                 (long long)s->kw, (long long)s->sh, (long long)s->sw, (long long)s->dh,
                 (long long)s->dw, (long long)s->pads[0], (long long)s->pads[1],
                 (long long)s->pads[2], (long long)s->pads[3], s->bias ? " bias" : "",
                 cc->resid ? " resid" : "", s->act ? s->act : "", cc->pre ? " pre" : "");
        ir_model *m = run_case(what, build_conv, cc, blocks[bi], "nchwc", NULL);
        ir_model_free(m);
    }
}

static void conv_rand(int64_t N, int64_t C, int64_t M, bool dw, int64_t H, int64_t W,
                      int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dwl,
                      int64_t pt, int64_t pl, int64_t pb, int64_t pr, const char *act,
                      bool resid, bool pre) {
    conv_case cc = {N, H, W, {C, dw ? C : M, dw ? C : 1, kh, kw, sh, sw, dh, dwl,
                              {pt, pl, pb, pr}, rnd() < 0.7, act, NULL, false},
                    resid, pre};
    conv_case_run(&cc);
}

static void test_convs(void) {
    /* 1x1 (the GEMM path), stride 1 and 2, channels off the block */
    conv_rand(1, 16, 32, false, 7, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Relu", false, true);
    conv_rand(2, 17, 13, false, 5, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "", true, true);
    conv_rand(1, 24, 40, false, 9, 9, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, "Clip", true, true);
    conv_rand(1, 5, 3, false, 11, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Sigmoid", false, true);
    /* 3x3 stride 1 and 2, pads asymmetric */
    conv_rand(1, 8, 16, false, 10, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Relu", true, true);
    conv_rand(2, 33, 20, false, 9, 8, 3, 3, 2, 2, 1, 1, 1, 0, 2, 1, "", false, true);
    conv_rand(1, 16, 48, false, 14, 14, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, "Clip", false, true);
    /* 5x5 and 7x7, dilation, strides differing per axis */
    conv_rand(1, 7, 9, false, 12, 11, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, "LeakyRelu", false, true);
    conv_rand(1, 12, 17, false, 13, 15, 7, 7, 2, 1, 1, 1, 3, 3, 3, 3, "", true, true);
    conv_rand(1, 9, 10, false, 12, 12, 3, 3, 1, 1, 2, 3, 2, 3, 1, 2, "Relu", false, true);
    conv_rand(1, 16, 16, false, 9, 20, 3, 5, 1, 2, 1, 1, 0, 2, 0, 1, "", false, true);
    /* H or W = 1, a kernel larger than the image (all padding) */
    conv_rand(1, 16, 24, false, 1, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Relu", false, true);
    conv_rand(1, 10, 8, false, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "", true, true);
    conv_rand(1, 8, 8, false, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "", false, true);
    conv_rand(1, 16, 16, false, 2, 3, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, "Tanh", false, true);
    /* a net's first conv: NCHW input (C < block) */
    conv_rand(1, 3, 32, false, 30, 30, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, "Relu", false, false);
    conv_rand(2, 3, 16, false, 17, 15, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "Clip", false, false);
    conv_rand(1, 1, 5, false, 6, 7, 3, 3, 1, 1, 1, 1, 0, 1, 2, 0, "", true, false);
    /* blocked input from a reorder-in (C >= block) */
    conv_rand(1, 20, 16, false, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "", false, false);
    /* depthwise */
    conv_rand(1, 32, 32, true, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Clip", false, true);
    conv_rand(2, 24, 24, true, 11, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "Relu", true, true);
    conv_rand(1, 19, 19, true, 9, 10, 5, 5, 1, 2, 2, 1, 2, 1, 4, 2, "", false, true);
    conv_rand(1, 7, 7, true, 1, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "HardSwish", true, false);
    conv_rand(1, 16, 16, true, 10, 10, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, "", false, true);
    /* random ones */
    static const int64_t ks[4] = {1, 3, 5, 7};
    static const char *const acts[8] = {"", "Relu", "Clip", "Sigmoid", "SiLU", "Gelu",
                                        "GeluTanh", "HardSigmoid"};
    for (int r = 0; r < 24; r++) {
        int64_t k = ks[(int)(rnd() * 4)], s = 1 + (int64_t)(rnd() * 2);
        int64_t C = 1 + (int64_t)(rnd() * 40), M = 1 + (int64_t)(rnd() * 40);
        int64_t H = 1 + (int64_t)(rnd() * 14), W = 1 + (int64_t)(rnd() * 14);
        int64_t p[4];
        for (int i = 0; i < 4; i++) p[i] = (int64_t)(rnd() * (double)k);
        int64_t dl = rnd() < 0.2 ? 2 : 1;
        if (nchwc_out_dim(H, k, s, dl, p[0], p[2]) < 1 || nchwc_out_dim(W, k, s, dl, p[1], p[3]) < 1)
            continue;
        conv_rand(1 + (rnd() < 0.3), C, M, rnd() < 0.3, H, W, k, k, s, s, dl, dl, p[0], p[1], p[2],
                  p[3], acts[(int)(rnd() * 8)], rnd() < 0.3, rnd() < 0.7);
    }
}

/* 1x1 convs on the bare pointwise tile (cpu_nchwc_tmpl.h pw_tile): input
** channels in several parts of the sum (by default past 128 channels on
** AVX-512, 512 on AVX2; then 1 and 2 blocks a part, KILN_CPU_CB_PART), one
** or two output blocks on the double-width tiles, block groups evened out
** (5 blocks as 3 + 2), Z and activations on the last part; each also on
** the general tile (KILN_CPU_PW_TILE=0), with groups of 4 and the rest
** (KILN_CPU_MB_EVEN=0) and with weights-first tasks a row at a time
** (KILN_CPU_ROWS=0); two 3x3 layers too. */
static void test_pointwise(void) {
    static const char *const envs[][2] = {{NULL, NULL},
                                          {"KILN_CPU_CB_PART", "1"},
                                          {"KILN_CPU_CB_PART", "2"},
                                          {"KILN_CPU_PW_TILE", "0"},
                                          {"KILN_CPU_MB_EVEN", "0"},
                                          {"KILN_CPU_ROWS", "0"}};
    for (size_t e = 0; e < KILN_ARRAY_LEN(envs); e++) {
        if (envs[e][0]) setenv(envs[e][0], envs[e][1], 1);
        conv_rand(1, 600, 40, false, 9, 11, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Clip", true, true);
        conv_rand(2, 200, 20, false, 5, 13, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Relu", true, true);
        conv_rand(1, 150, 9, false, 4, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Sigmoid", false, true);
        conv_rand(1, 37, 75, false, 3, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "", true, true);
        conv_rand(1, 1030, 16, false, 1, 25, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Gelu", false, true);
        /* weights outweigh pixels: the weights-first tasks, all their rows
        ** per input part (conv_rows) */
        conv_rand(1, 130, 70, false, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Relu", true, true);
        conv_rand(2, 99, 45, false, 9, 8, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, "", true, true);
        if (envs[e][0]) unsetenv(envs[e][0]);
    }
}

/* The tap-major tactics (cpu_nchwc.c taps_prepare) and the 7-pixel direct
** tile (AVX-512): rows of 7, 14, 28 pixels (whole 7-tiles) and of 8-13
** (a 7-tile and a remainder of 1-6, masked where the window leaves the
** row), stride 1 and 2, 3x3 and 5x5 and 1x3 windows, channels off the
** block, one to five output blocks; each also with the 6-pixel tiles
** (KILN_CPU_TILE7=0) and in parts of one input block
** (KILN_CPU_CB_PART=1). check_layer runs the taps tactics on their blob
** (W's data absent) and without one. */
static void test_taps(void) {
    static const char *const envs[][2] = {
        {NULL, NULL}, {"KILN_CPU_TILE7", "0"}, {"KILN_CPU_CB_PART", "1"}};
    for (size_t e = 0; e < KILN_ARRAY_LEN(envs); e++) {
        if (envs[e][0]) setenv(envs[e][0], envs[e][1], 1);
        conv_rand(1, 40, 70, false, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "Relu", true, true);
        conv_rand(1, 33, 20, false, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "", false, true);
        conv_rand(2, 17, 36, false, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Clip", true, true);
        for (int64_t W = 8; W <= 13; W++)
            conv_rand(1, 21, 49, false, 5, W, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Relu", W & 1, true);
        conv_rand(1, 18, 16, false, 9, 27, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, "", false, true);
        conv_rand(1, 9, 80, false, 6, 29, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, "Sigmoid", true, true);
        conv_rand(1, 24, 24, false, 4, 15, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, "", false, true);
        conv_rand(1, 12, 32, false, 11, 16, 3, 3, 1, 2, 2, 1, 2, 1, 2, 1, "Relu", false, true);
        if (envs[e][0]) unsetenv(envs[e][0]);
    }
}

/* The weights-first partition (cpu_split.h): layers whose weights outweigh
** their input and output, with enough flops that the pool gives them 16
** and 17 threads (cpu_threads_for: about a million flops a thread), at
** 1, 2, 3, 16 and 17 threads and at 16 with the old partition. 2 cores
** run 17 threads here: correctness, not speed. */
static void test_partitions(void) {
    static const int th[] = {1, 2, 3, 16, 17, -16};
    g_threads = th;
    g_n_threads = (int)KILN_ARRAY_LEN(th);
    /* 3x3 stride 1 on 7x7 and 14x14, odd channel counts (58 and 52 MFLOP) */
    conv_rand(1, 259, 257, false, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Relu", true, true);
    conv_rand(1, 67, 131, false, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "", false, true);
    /* batch 3 on 7x7; stride 2 from 14x14 to 7x7 */
    conv_rand(3, 67, 131, false, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "Clip", true, true);
    conv_rand(1, 131, 263, false, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "Relu", false, true);
    /* 1x1 (the flat path) on 7x7 and on a 1x1 map; batch 2 */
    conv_rand(1, 515, 1030, false, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "Relu", true, true);
    conv_rand(1, 2100, 4300, false, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "", false, false);
    conv_rand(2, 257, 517, false, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "", false, true);
    g_threads = g_th_default;
    g_n_threads = (int)KILN_ARRAY_LEN(g_th_default);
}

/* ------------------------------------------------------------ pools */
typedef struct pool_case {
    const char *op;
    int64_t C, H, W, k, s, pads[4];
    bool incl;
} pool_case;

static void build_pool(gbuild *b, const void *arg) {
    const pool_case *pc = arg;
    int64_t xd[4] = {2, pc->C, pc->H, pc->W};
    ir_value *x = input(b->g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    add_input(b, x);
    conv_spec p = {pc->C, pc->C, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, "", NULL, false};
    set_output(b, pool(b, pc->op, conv(b, x, &p), pc->k, pc->s, pc->pads, pc->incl));
}

static void test_pools(void) {
    static const pool_case cases[] = {
        {"MaxPool", 16, 12, 12, 3, 2, {1, 1, 1, 1}, false},
        {"MaxPool", 21, 9, 7, 2, 2, {0, 0, 1, 1}, false},
        {"AveragePool", 8, 7, 9, 3, 1, {1, 0, 1, 2}, false},
        {"AveragePool", 30, 10, 10, 3, 2, {1, 1, 1, 1}, true},
        {"AveragePool", 5, 1, 6, 1, 1, {0, 0, 0, 0}, false},
        {"GlobalAveragePool", 40, 7, 7, 0, 0, {0}, false},
        {"GlobalMaxPool", 9, 3, 5, 0, 0, {0}, false},
        {"GlobalAveragePool", 16, 1, 1, 0, 0, {0}, false},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++)
        for (int b = 8; b <= 16; b += 8) {
            char what[128];
            snprintf(what, sizeof what, "b%d %s C%lld %lldx%lld", b, cases[i].op,
                     (long long)cases[i].C, (long long)cases[i].H, (long long)cases[i].W);
            ir_model_free(run_case(what, build_pool, &cases[i], b, "nchwc", NULL));
        }
}

/* ------------------------------------------------------------ resize */
static void build_resize(gbuild *b, const void *arg) {
    int mode = *(const int *)arg; /* 0 scales, 1 sizes, 2 asymmetric scales */
    int64_t xd[4] = {1, 5, 5, 7};
    ir_value *x = input(b->g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    add_input(b, x);
    conv_spec p = {5, 20, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, "Relu", NULL, false};
    x = conv(b, x, &p);
    float roi0 = 0;
    int64_t zero = 0;
    ir_value *roi = const_tensor(b->g, nm(b, "roi"), KILN_DTYPE_FLOAT32, 1, &zero, &roi0);
    ir_value *in[4] = {x, roi, NULL, NULL};
    if (mode == 1) {
        int64_t four = 4, sz[4] = {1, 20, 11, 13};
        in[2] = const_tensor(b->g, nm(b, "sc"), KILN_DTYPE_FLOAT32, 1, &zero, &roi0);
        in[3] = const_tensor(b->g, nm(b, "sz"), KILN_DTYPE_INT64, 1, &four, sz);
    } else {
        int64_t four = 4;
        float sc[4] = {1, 1, 2, mode == 2 ? 1.5f : 2};
        in[2] = const_tensor(b->g, nm(b, "sc"), KILN_DTYPE_FLOAT32, 1, &four, sc);
    }
    ir_node *r = node(b->g, "Resize", mode == 1 ? 4 : 3, in, 1, nm(b, "y"));
    ir_edit_set_str(r, "mode", "nearest");
    if (mode == 2) ir_edit_set_str(r, "coordinate_transformation_mode", "asymmetric");
    conv_spec q = {20, 8, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, false, "", NULL, false};
    set_output(b, conv(b, r->out[0], &q));
}

static void test_resize(void) {
    for (int mode = 0; mode < 3; mode++)
        for (int blk = 8; blk <= 16; blk += 8) {
            char what[64];
            snprintf(what, sizeof what, "resize mode %d b%d", mode, blk);
            ir_model *m = run_case(what, build_resize, &mode, blk, "nchwc", NULL);
            expect_ops(what, m->graph, "NchwcReorderIn=0 NchwcReorderOut=1 Resize=1");
            ir_model_free(m);
        }
}

/* ------------------------------------------------------------ whole nets */
static conv_spec cs(int64_t C, int64_t M, int64_t G, int64_t k, int64_t s) {
    int64_t p = k / 2;
    conv_spec r = {C, M, G, k, k, s, s, 1, 1, {p, p, p, p}, true, "", NULL, true};
    return r;
}

static ir_value *gap_head(gbuild *b, ir_value *x, int64_t C) {
    x = op1(b, "Flatten", pool(b, "GlobalAveragePool", x, 0, 0, NULL, false));
    int64_t wd[2] = {10, C}, bd[1] = {10};
    ir_value *in[3] = {x, rconst(b, 2, wd, 0.3), rconst(b, 1, bd, 1.0)};
    ir_node *g = node(b->g, "Gemm", 3, in, 1, nm(b, "y"));
    ir_edit_set_int(g, "transB", 1);
    return g->out[0];
}

static void build_resnet(gbuild *b, const void *arg) {
    (void)arg;
    int64_t xd[4] = {2, 3, 37, 35};
    ir_value *x = input(b->g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    add_input(b, x);
    conv_spec c1 = cs(3, 16, 1, 7, 2);
    int64_t p1[4] = {1, 1, 1, 1};
    x = pool(b, "MaxPool", op1(b, "Relu", conv(b, x, &c1)), 3, 2, p1, false);
    int64_t C = 16;
    static const int64_t widths[3][2] = {{8, 24}, {12, 40}, {16, 48}};
    for (int st = 0; st < 3; st++) {
        int64_t mid = widths[st][0], out = widths[st][1], s = st ? 2 : 1;
        conv_spec a = cs(C, mid, 1, 1, 1), bb = cs(mid, mid, 1, 3, s), c = cs(mid, out, 1, 1, 1);
        conv_spec sc = cs(C, out, 1, 1, s);
        ir_value *y = op1(b, "Relu", conv(b, x, &a));
        y = op1(b, "Relu", conv(b, y, &bb));
        y = conv(b, y, &c);
        x = op1(b, "Relu", op2(b, "Add", y, conv(b, x, &sc)));
        /* an identity block */
        conv_spec a2 = cs(out, mid, 1, 1, 1), b2 = cs(mid, mid, 1, 3, 1), c2 = cs(mid, out, 1, 1, 1);
        y = op1(b, "Relu", conv(b, x, &a2));
        y = op1(b, "Relu", conv(b, y, &b2));
        x = op1(b, "Relu", op2(b, "Add", conv(b, y, &c2), x));
        C = out;
    }
    set_output(b, gap_head(b, x, C));
}

static void build_mobilenet(gbuild *b, const void *arg) {
    (void)arg;
    int64_t xd[4] = {1, 3, 33, 31};
    ir_value *x = input(b->g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    add_input(b, x);
    conv_spec c1 = cs(3, 16, 1, 3, 2), d1 = cs(16, 16, 16, 3, 1), p1 = cs(16, 24, 1, 1, 1);
    x = clip6(b, conv(b, x, &c1));
    x = clip6(b, conv(b, x, &d1));
    x = conv(b, x, &p1);
    for (int r = 0; r < 2; r++) { /* inverted residuals, expansion 3 */
        conv_spec e = cs(24, 72, 1, 1, 1), d = cs(72, 72, 72, 3, 1), p = cs(72, 24, 1, 1, 1);
        ir_value *y = clip6(b, conv(b, x, &e));
        y = clip6(b, conv(b, y, &d));
        x = op2(b, "Add", x, conv(b, y, &p));
    }
    conv_spec e = cs(24, 72, 1, 1, 1), d = cs(72, 72, 72, 3, 2), p = cs(72, 40, 1, 1, 1);
    x = conv(b, clip6(b, conv(b, clip6(b, conv(b, x, &e)), &d)), &p);
    /* two branches of whole blocks, joined along channels */
    conv_spec br = cs(40, 16, 1, 1, 1), br2 = cs(40, 16, 1, 3, 1);
    ir_value *in[2] = {clip6(b, conv(b, x, &br)), op1(b, "Relu", conv(b, x, &br2))};
    ir_node *cat = node(b->g, "Concat", 2, in, 1, nm(b, "y"));
    ir_edit_set_int(cat, "axis", 1);
    int64_t pp[4] = {0, 0, 1, 1};
    x = pool(b, "AveragePool", cat->out[0], 2, 2, pp, false);
    /* squeeze-and-excitation: a per-channel scale broadcast over H x W */
    conv_spec s1 = cs(32, 8, 1, 1, 1), s2 = cs(8, 32, 1, 1, 1);
    ir_value *se = pool(b, "GlobalAveragePool", x, 0, 0, NULL, false);
    se = op1(b, "Sigmoid", conv(b, op1(b, "Relu", conv(b, se, &s1)), &s2));
    x = op2(b, "Mul", x, se);
    set_output(b, gap_head(b, x, 32));
}

static void test_nets(void) {
    for (int blk = 8; blk <= 16; blk += 8) {
        char what[64];
        snprintf(what, sizeof what, "resnet-style b%d", blk);
        ir_model *m = run_case(what, build_resnet, NULL, blk, "all", NULL);
        expect_ops(what, m->graph, "NchwcReorderIn=0 NchwcReorderOut=1 NchwcConv=22 "
                   "NchwcPool=2 Conv=0 FusedConv=0");
        ir_model_free(m);
        snprintf(what, sizeof what, "mobilenet-style b%d", blk);
        m = run_case(what, build_mobilenet, NULL, blk, "all", NULL);
        expect_ops(what, m->graph, "NchwcReorderIn=0 NchwcReorderOut=1 NchwcConv=16 "
                   "NchwcPool=3 Conv=0 FusedConv=0 Mul=1");
        ir_model_free(m);
    }
    /* block 0: the pass changes nothing */
    gbuild a = {model_new(17), NULL, 0};
    a.g = a.m->graph;
    build_mobilenet(&a, NULL);
    finish(&a);
    CHECK(!passes_with_block(a.m, "all", 0), "block 0: pipeline failed");
    expect_ops("block 0", a.g, "NchwcConv=0 NchwcReorderOut=0");
    ir_model_free(a.m);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    g_host = kiln_backend_cpu()->host_isa();
    test_convs();
    test_pointwise();
    test_taps();
    test_partitions();
    test_pools();
    test_resize();
    test_nets();
    fprintf(stderr, "tactic runs: block 8: %d, block 16: %d\n", g_tactic_runs[0],
            g_tactic_runs[1]);
    if (g_host & KILN_ISA_AVX2) CHECK(g_tactic_runs[0] > 0, "the AVX2 kernels never ran");
    if (g_host & KILN_ISA_AVX512F) CHECK(g_tactic_runs[1] > 0, "the AVX-512 kernels never ran");
    return test_summary();
}
