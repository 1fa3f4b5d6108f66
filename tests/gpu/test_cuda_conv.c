/* test_cuda_conv.c: the cuDNN Conv / FusedConv tactics (one per forward
** algorithm, and the fused bias+activation one) and the depthwise kernel
** against the reference kernels: 1-D/2-D/3-D, groups, depthwise,
** strides, dilations, symmetric / asymmetric / SAME pads, bias, residual,
** every activation; f32 (exact FP32, 1e-4 of the magnitude), f16, bf16.
** An algorithm may decline a problem (cuDNN has no kernel for it: the
** builder then never times it), but some algorithm must take every
** symmetric-pad case, and the depthwise kernel every depthwise one.
** argv[1] optionally filters tactics by name.
**
** Channels-last (passes/layout.c, ops/layout.h): the NhwcConv cuDNN
** tactics against the NCHW FusedConv reference over random shapes (1x1,
** 3x3, 7x7, stride 1/2, bias, residual, ReLU or none, batch 1 to 32, C and
** M multiples of 8 or not: half types must decline those, float32 runs
** them), the padded-RGB path the pass builds (ToNhwc with channels = 8 and
** zero weights, equal to the 3-channel convolution), the NHWC pools and the
** ToNhwc/ToNchw reformat kernels (bit-exact), and a small ResNet built as a
** CUDA FP16 engine with and without the pass (KILN_CHANNELS_LAST=0).
**
** Graph API (cuda_conv_graph.c, test_graph): its FP16/BF16 tactics alone,
** NCHW and NHWC, against the same references; any configuration may be
** refused, but the FP16 NHWC 3x3 conv + bias + ReLU must run fused in
** cuDNN's graph. KILN_CONV_GRAPH_LOG=1 prints each plan cuDNN built or
** refused; KILN_GPU_TEST_FULL=1 runs every configuration on every shape. */
#include "gpu_test.h"
#include "../../src/ops/layout.h"

#include <time.h>
#include <unistd.h>

/* Graph-API tactics (cuda_conv_graph.c) that ran in the current case:
** any, and those with bias/residual/ReLU inside cuDNN's graph. */
static int g_graph_ran, g_graph_fused_ran;

static bool is_graph(const kiln_tactic *t) { return strstr(t->name, "_graph_") != NULL; }

static void note_graph_ran(const kiln_tactic *t) {
    if (!is_graph(t)) return;
    g_graph_ran++;
    if (!strstr(t->name, "_graph_conv_")) g_graph_fused_ran++;
}

/* Set by the graph-API cases: only those tactics run (else only the
** legacy ones); g_graph_all: every configuration, else h0, h1, fb0 and
** conv_h0 (each plan may compile kernels at run time: the GPU minutes
** are few). KILN_GPU_TEST_FULL=1 runs all of them in every case. */
static bool g_graph_only, g_graph_all, g_graph_every;
static double g_graph_spent; /* seconds in graph_case */
static int g_graph_skipped;  /* cases past the time budget */

static bool graph_sampled(const kiln_tactic *t) {
    static const char *const keep[] = {"_graph_h0", "_graph_h1", "_graph_fb0",
                                       "_graph_conv_h0"};
    size_t n = strlen(t->name);
    for (size_t i = 0; i < KILN_ARRAY_LEN(keep); i++) {
        size_t m = strlen(keep[i]);
        if (n >= m && !strcmp(t->name + n - m, keep[i])) return true;
    }
    return false;
}

/* The device tactics of op: cuda_conv.c's, or (g_graph_only) the graph
** API's of cuda_conv_graph.c. */
static int conv_tactics(int op, const kiln_tactic **ts, int max) {
    if (!g_graph_only) return gt_tactics(cuda_tactics_conv, op, ts, max);
    const char *full = getenv("KILN_GPU_TEST_FULL");
    bool all = g_graph_all || (full && full[0] == '1');
    int nt = gt_tactics(cuda_tactics_conv_graph, op, ts, max), k = 0;
    for (int i = 0; i < nt; i++)
        if (all || graph_sampled(ts[i])) ts[k++] = ts[i];
    return k;
}

/* gt_run; in a dry run (no GPU) also the graph tactics' cuDNN operation
** graph built host-only (cuda_conv_graph_probe), so cuDNN itself checks the
** shapes, strides, pads and groups they describe. A refusal comes back as
** a run that did not happen (the caller's FAIL), with cuDNN's reason. */
static int g_probed, g_probe_unavailable;

static kiln_tensor *conv_run(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                             const kiln_tensor *want, bool *declined, const char *desc) {
    kiln_tensor *got = gt_run(t, n, in, want, declined);
    if (!got || !g_dry || !is_graph(t)) return got;
    ir_type types[4];
    const ir_type *tin[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) {
        if (!in[i]) continue;
        memset(&types[i], 0, sizeof types[i]);
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    char err[256] = "";
    if (!cuda_conv_graph_probe(t, n, tin, err, sizeof err)) {
        g_probed++;
        return got;
    }
    if (strstr(err, "operation graph")) { /* this cuDNN wants a handle for that */
        g_probe_unavailable++;
        return got;
    }
    fprintf(stderr, "%s %s: cuDNN refuses the graph: %s\n", t->name, desc, err);
    tensor_free(got);
    *declined = false;
    return NULL;
}

typedef struct conv_case {
    int nsp;
    int64_t N, C, M, G;
    int64_t img[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    bool bias, resid, fused;
    const char *act;
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

static bool pads_sym(const conv_case *cc) {
    if (cc->auto_pad) return !strcmp(cc->auto_pad, "VALID"); /* SAME: not asserted */
    for (int i = 0; i < cc->nsp; i++)
        if (cc->pads[i] != cc->pads[cc->nsp + i]) return false;
    return true;
}

static void run_case(const conv_case *cc, kiln_dtype dt, const char *what) {
    int nsp = cc->nsp, r = nsp + 2;
    int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->M, cc->C / cc->G}, bd[1] = {cc->M};
    for (int i = 0; i < nsp; i++) xd[2 + i] = cc->img[i], wd[2 + i] = cc->k[i];
    kiln_tensor *X = gt_rand(dt, r, xd, 1.0), *W = gt_rand(dt, r, wd, 1.0);
    kiln_tensor *B = cc->bias ? gt_rand(dt, 1, bd, 1.0) : NULL;
    ir_node *cn = gt_node(OP_Conv, B ? 3 : 2);
    set_conv_attrs(cn, cc);
    kiln_tensor *aX = gt_abs_f32(X), *aW = gt_abs_f32(W), *aB = gt_abs_f32(B);
    const kiln_tensor *cin[3] = {X, W, B}, *acin[3] = {aX, aW, aB};
    kiln_tensor *want = gt_ref(cn, cin), *mag = gt_ref(cn, acin);
    kiln_tensor *Z = NULL;
    ir_node *n = cn;
    char desc[300];
    snprintf(desc, sizeof desc, "%s %s", what, gt_dtype_name(dt));
    if (want && mag && cc->fused) {
        Z = cc->resid ? gt_rand(dt, want->rank, want->dims, 1.0) : NULL;
        n = gt_node(OP_FusedConv, Z ? 4 : B ? 3 : 2);
        ir_edit_copy_attrs(n, cn);
        gt_set_act(n, cc->act);
        const kiln_tensor *fin[4] = {X, W, B, Z};
        tensor_free(want);
        want = gt_ref(n, fin);
        if (Z) { /* magnitude of the residual too */
            float *m = mag->data;
            for (int64_t i = 0; i < tensor_numel(mag); i++)
                m[i] += (float)fabs(dt_get_f64(dt, Z->data, (size_t)i));
        }
    }
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else {
        const kiln_tensor *in[4] = {X, W, B, Z};
        const kiln_tactic *ts[48];
        int nt = conv_tactics(n->op, ts, 48);
        bool dw = cc->G > 1 && cc->G == cc->C && cc->G == cc->M && nsp <= 2;
        double lip = cc->fused ? gt_act_lip(cc->act) : 1.0;
        int dnn_ran = 0;
        for (int k = 0; k < nt; k++) {
            bool declined;
            kiln_tensor *got = conv_run(ts[k], n, in, want, &declined, desc);
            if (got && strstr(ts[k]->name, "_dnn_")) dnn_ran++;
            if (got) note_graph_ran(ts[k]);
            if (!got) {
                bool must = strstr(ts[k]->name, "_dw_direct") && dw;
                if (!declined || must) {
                    fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                            declined ? "declined" : "did not run");
                    g_fail++;
                } else {
                    g_declined++;
                }
                continue;
            }
            if (gt_compare(ts[k]->name, desc, got, want, mag, 0, gt_rtol(dt) * lip)) g_pass++;
            else g_fail++;
            tensor_free(got);
        }
        /* some cuDNN algorithm must take every symmetric-pad problem */
        if (!g_only && !g_graph_only && pads_sym(cc) && !dnn_ran) {
            fprintf(stderr, "FAIL %s: no cuDNN tactic ran\n", desc);
            g_fail++;
        }
    }
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

static void conv2d(kiln_dtype dt, int64_t N, int64_t C, int64_t M, int64_t G, int64_t H,
                   int64_t Wd, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                   int64_t dw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, bool bias,
                   bool fused, bool resid, const char *act, const char *auto_pad) {
    conv_case cc;
    memset(&cc, 0, sizeof cc);
    cc.nsp = 2;
    cc.N = N, cc.C = C, cc.M = M, cc.G = G;
    cc.img[0] = H, cc.img[1] = Wd;
    cc.k[0] = kh, cc.k[1] = kw;
    cc.s[0] = sh, cc.s[1] = sw;
    cc.d[0] = dh, cc.d[1] = dw;
    cc.pads[0] = pt, cc.pads[1] = pl, cc.pads[2] = pb, cc.pads[3] = pr;
    cc.auto_pad = auto_pad;
    cc.bias = bias, cc.fused = fused, cc.resid = resid;
    cc.act = act;
    char desc[300];
    snprintf(desc, sizeof desc,
             "conv2d N=%lld C=%lld M=%lld G=%lld %lldx%lld k=%lldx%lld s=%lld,%lld d=%lld,%lld "
             "p=%lld,%lld,%lld,%lld%s%s bias=%d fused=%d resid=%d act='%s'",
             (long long)N, (long long)C, (long long)M, (long long)G, (long long)H, (long long)Wd,
             (long long)kh, (long long)kw, (long long)sh, (long long)sw, (long long)dh,
             (long long)dw, (long long)pt, (long long)pl, (long long)pb, (long long)pr,
             auto_pad ? " auto_pad=" : "", auto_pad ? auto_pad : "", bias, fused, resid, act);
    run_case(&cc, dt, desc);
}

static void test_conv(kiln_dtype dt, bool full) {
    /* plain / strided / dilated / grouped, symmetric pads */
    conv2d(dt, 1, 3, 8, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, false, false, "", NULL);
    conv2d(dt, 2, 5, 7, 1, 13, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false, false, "", NULL);
    conv2d(dt, 2, 8, 6, 2, 12, 12, 3, 5, 1, 2, 2, 1, 2, 2, 2, 2, true, false, false, "", NULL);
    conv2d(dt, 1, 16, 32, 1, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, true, true, "Relu", NULL);
    conv2d(dt, 3, 12, 12, 4, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, false, "SiLU", NULL);
    conv2d(dt, 1, 4, 4, 1, 5, 5, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, false, false, false, "", NULL);
    conv2d(dt, 2, 6, 9, 3, 11, 8, 2, 3, 3, 2, 1, 2, 0, 1, 0, 1, true, true, true, "Gelu", NULL);
    conv2d(dt, 1, 3, 5, 1, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, false, true, false, "Relu", "VALID");
    conv2d(dt, 1, 3, 5, 1, 8, 9, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, true, false, "", "SAME_UPPER");
    conv2d(dt, 1, 3, 5, 1, 8, 9, 4, 4, 2, 2, 1, 1, 0, 0, 0, 0, true, false, false, "", "SAME_LOWER");
    /* asymmetric pads: cuDNN declines; the depthwise kernel takes them */
    conv2d(dt, 1, 4, 6, 1, 9, 9, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, true, false, false, "", NULL);
    /* ResNet-ish shapes */
    conv2d(dt, 2, 64, 64, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, true, "Relu", NULL);
    conv2d(dt, 2, 64, 256, 1, 28, 28, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, true, false, "", NULL);
    conv2d(dt, 1, 3, 64, 1, 64, 64, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, true, true, false, "Relu", NULL);
    /* depthwise: 3x3 / 5x5, stride 1/2, dilation, asymmetric pads, fused */
    conv2d(dt, 2, 16, 16, 16, 15, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, true, "Relu", NULL);
    conv2d(dt, 1, 24, 24, 24, 16, 16, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, true, true, false, "HardSwish",
           NULL);
    conv2d(dt, 2, 8, 8, 8, 17, 17, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, true, false, "SiLU", NULL);
    conv2d(dt, 1, 8, 8, 8, 12, 12, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, false, false, false, "", NULL);
    conv2d(dt, 1, 6, 6, 6, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, true, true, "Clip", NULL);
    conv2d(dt, 1, 5, 5, 5, 9, 7, 4, 2, 1, 1, 1, 1, 1, 0, 2, 1, true, false, false, "", NULL);
    conv2d(dt, 1, 7, 7, 7, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, false, true, false, "",
           "SAME_UPPER");
    if (!full) return;
    for (size_t a = 0; a < KILN_ARRAY_LEN(gt_acts); a++) {
        conv2d(dt, 1, 4, 6, 1, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true, a & 1, gt_acts[a],
               NULL);
        conv2d(dt, 1, 6, 6, 6, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, a & 1, true, true, gt_acts[a],
               NULL);
    }
    /* 1-D and 3-D */
    struct {
        int nsp;
        int64_t N, C, M, G, img[3], k[3], s[3], d[3], pads[6];
        bool bias, fused, resid;
    } nd[] = {
        {1, 2, 4, 6, 1, {17}, {3}, {1}, {1}, {1, 1}, true, false, false},
        {1, 1, 6, 4, 2, {20}, {5}, {2}, {2}, {4, 4}, false, true, true},
        {1, 1, 8, 8, 8, {19}, {3}, {2}, {1}, {1, 0}, true, true, false},     /* depthwise 1-D */
        {3, 1, 3, 4, 1, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, true,
         true, true},
        {3, 2, 4, 4, 2, {6, 5, 6}, {2, 3, 1}, {2, 1, 1}, {1, 2, 1}, {0, 2, 0, 0, 2, 0}, true,
         false, false},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(nd); i++) {
        conv_case cc;
        memset(&cc, 0, sizeof cc);
        cc.nsp = nd[i].nsp;
        cc.N = nd[i].N, cc.C = nd[i].C, cc.M = nd[i].M, cc.G = nd[i].G;
        memcpy(cc.img, nd[i].img, sizeof cc.img);
        memcpy(cc.k, nd[i].k, sizeof cc.k);
        memcpy(cc.s, nd[i].s, sizeof cc.s);
        memcpy(cc.d, nd[i].d, sizeof cc.d);
        memcpy(cc.pads, nd[i].pads, sizeof cc.pads);
        cc.bias = nd[i].bias, cc.fused = nd[i].fused, cc.resid = nd[i].resid;
        cc.act = cc.fused ? "Relu" : "";
        char desc[64];
        snprintf(desc, sizeof desc, "conv%dd case %zu", cc.nsp, i);
        run_case(&cc, dt, desc);
    }
}


/* ------------------------------------------------------------ channels-last */
/* NCHW [a,b,c,d] <-> NHWC host copies (rank 4, any 2/4-byte type) */
static kiln_tensor *nt_perm(const kiln_tensor *x, bool to_nhwc, int64_t pad_c) {
    int64_t d[4];
    if (to_nhwc) d[0] = x->dims[0], d[1] = x->dims[2], d[2] = x->dims[3], d[3] = pad_c;
    else d[0] = x->dims[0], d[1] = x->dims[3], d[2] = x->dims[1], d[3] = x->dims[2];
    kiln_tensor *y;
    if (tensor_new(x->dtype, 4, d, &y)) gt_die("tensor_new");
    size_t es = kiln_dtype_size(x->dtype);
    int64_t N = x->dims[0];
    int64_t C = to_nhwc ? x->dims[1] : x->dims[3], H = to_nhwc ? x->dims[2] : x->dims[1],
            W = to_nhwc ? x->dims[3] : x->dims[2], Cd = to_nhwc ? pad_c : C;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t i = ((n * C + c) * H + h) * W + w, j = ((n * H + h) * W + w) * Cd + c;
                    if (to_nhwc) memcpy((char *)y->data + j * es, (char *)x->data + i * es, es);
                    else memcpy((char *)y->data + i * es, (char *)x->data + j * es, es);
                }
    return y;
}

/* One NhwcConv case: the NCHW FusedConv reference (and its magnitude run)
** transposed to NHWC is what every NhwcConv tactic must produce. pad_c > C:
** X and W zero-padded to pad_c channels (the pass's RGB stem). */
static void nhwc_case(kiln_dtype dt, int64_t N, int64_t C, int64_t M, int64_t H, int64_t W,
                      int64_t k, int64_t s, bool bias, bool resid, bool relu, int64_t pad_c) {
    char desc[256];
    int64_t Cp = pad_c > C ? pad_c : C;
    snprintf(desc, sizeof desc, "nhwc conv N=%lld C=%lld(%lld) M=%lld %lldx%lld k=%lld s=%lld "
             "bias=%d resid=%d relu=%d %s", (long long)N, (long long)C, (long long)Cp,
             (long long)M, (long long)H, (long long)W, (long long)k, (long long)s, bias, resid,
             relu, gt_dtype_name(dt));
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C, k, k}, bd[1] = {M};
    kiln_tensor *X = gt_rand(dt, 4, xd, 1.0), *Wt = gt_rand(dt, 4, wd, 1.0);
    kiln_tensor *B = bias ? gt_rand(dt, 1, bd, 1.0) : NULL;
    int64_t pads[4] = {k / 2, k / 2, k / 2, k / 2}, str[2] = {s, s};
    ir_node *fc = gt_node(OP_FusedConv, resid ? 4 : bias ? 3 : 2);
    ir_edit_set_ints(fc, "pads", pads, 4);
    ir_edit_set_ints(fc, "strides", str, 2);
    if (relu) gt_set_act(fc, "Relu");
    kiln_tensor *aX = gt_abs_f32(X), *aW = gt_abs_f32(Wt), *aB = gt_abs_f32(B);
    /* Z: shaped like the output, made from a first run without it */
    const kiln_tensor *in0[4] = {X, Wt, B, NULL};
    ir_node *plain = gt_node(OP_FusedConv, bias ? 3 : 2);
    ir_edit_copy_attrs(plain, fc);
    kiln_tensor *y0 = gt_ref(plain, in0);
    kiln_tensor *Z = resid && y0 ? gt_rand(dt, 4, y0->dims, 1.0) : NULL;
    kiln_tensor *aZ = gt_abs_f32(Z);
    const kiln_tensor *in[4] = {X, Wt, B, Z}, *ain[4] = {aX, aW, aB, aZ};
    kiln_tensor *want = y0 ? gt_ref(fc, in) : NULL, *mag = y0 ? gt_ref(fc, ain) : NULL;
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
        goto done;
    }
    kiln_tensor *Xh = nt_perm(X, true, Cp), *Zh = Z ? nt_perm(Z, true, M) : NULL;
    /* KRSC weights, zero channels past C */
    kiln_tensor *Wh = nt_perm(Wt, true, Cp);
    kiln_tensor *wanth = nt_perm(want, true, want->dims[1]);
    kiln_tensor *magh = nt_perm(mag, true, mag->dims[1]);
    ir_node *n = gt_node(OP_NhwcConv, resid ? 4 : bias ? 3 : 2);
    ir_edit_copy_attrs(n, fc);
    const kiln_tensor *hin[4] = {Xh, Wh, B, Zh};
    const kiln_tactic *ts[48];
    int nt = conv_tactics(OP_NhwcConv, ts, 48);
    bool aligned = dt == KILN_DTYPE_FLOAT32 || (Cp % 8 == 0 && M % 8 == 0);
    int ran = 0;
    for (int t = 0; t < nt; t++) {
        bool declined;
        kiln_tensor *got = conv_run(ts[t], n, hin, wanth, &declined, desc);
        if (!got) {
            if (!declined) {
                fprintf(stderr, "FAIL %s %s: did not run\n", ts[t]->name, desc);
                g_fail++;
            } else {
                g_declined++;
            }
            continue;
        }
        ran++;
        note_graph_ran(ts[t]);
        /* the legacy NHWC kernels want 8k channels; the graph API's
        ** engines decide for themselves (a refusal is a decline) */
        if (!aligned && !is_graph(ts[t])) {
            fprintf(stderr, "FAIL %s %s: ran on channels that are not multiples of 8 (must "
                    "decline)\n", ts[t]->name, desc);
            g_fail++;
        } else if (gt_compare(ts[t]->name, desc, got, wanth, magh, 0, gt_rtol(dt) * 1.1)) {
            g_pass++;
        } else {
            g_fail++;
        }
        tensor_free(got);
    }
    if (aligned && !ran && !g_only) {
        fprintf(stderr, "FAIL %s: no NhwcConv tactic ran\n", desc);
        g_fail++;
    } else if (!aligned && !ran) {
        g_pass++; /* declined, as it must */
    }
    tensor_free(Xh);
    tensor_free(Zh);
    tensor_free(Wh);
    tensor_free(wanth);
    tensor_free(magh);
done:
    tensor_free(want);
    tensor_free(mag);
    tensor_free(y0);
    tensor_free(X);
    tensor_free(Wt);
    tensor_free(B);
    tensor_free(Z);
    tensor_free(aX);
    tensor_free(aW);
    tensor_free(aB);
    tensor_free(aZ);
}

/* The narrowed search (kiln_algo_top, set by the builder below its highest
** optimization level): with top = 1 a ReLU NhwcConv / FusedConv layer
** offers at most implicit precomputed GEMM and cuDNN's first ranked
** algorithm, each plain and fused, always at least one, fewer than all. Prints what was offered (for the GPU log). */
static void algo_top_case(kiln_dtype dt, int op) {
    if (g_dry || g_only) return;
    int64_t N = 8, C = 64, M = 64, H = 28;
    int64_t xd[4] = {N, C, H, H}, wd[4] = {M, C, 3, 3}, bd[1] = {M};
    if (op == OP_NhwcConv) {
        xd[1] = H, xd[2] = H, xd[3] = C;
        wd[1] = 3, wd[2] = 3, wd[3] = C;
    }
    ir_type tx = {dt, 4, {0}}, tw = {dt, 4, {0}}, tb = {dt, 1, {0}};
    memcpy(tx.dims, xd, sizeof xd);
    memcpy(tw.dims, wd, sizeof wd);
    memcpy(tb.dims, bd, sizeof bd);
    const ir_type *tin[3] = {&tx, &tw, &tb};
    ir_node *n = gt_node(op, 3);
    int64_t pads[4] = {1, 1, 1, 1};
    ir_edit_set_ints(n, "pads", pads, 4);
    gt_set_act(n, "Relu");
    const kiln_tactic *ts[16];
    int nt = gt_tactics(cuda_tactics_conv, op, ts, 16), all = 0, top = 0;
    char offered[512] = "";
    for (int pass = 0; pass < 2; pass++) {
        if (pass) ir_edit_set_int(n, "kiln_algo_top", 1);
        for (int t = 0; t < nt; t++) {
            if (strstr(ts[t]->name, "_dw_") || !ts[t]->supports(n, tin)) continue;
            if (!pass) all++;
            else {
                top++;
                size_t u = strlen(offered);
                snprintf(offered + u, sizeof offered - u, " %s", ts[t]->name);
            }
        }
    }
    fprintf(stderr, "algo_top %s %s: %d tactics offered, %d with kiln_algo_top=1:%s\n",
            op_name(op), gt_dtype_name(dt), all, top, offered);
    /* precomputed GEMM plain and fused, the first ranked plain and fused */
    if (top < 1 || top > 4 || top >= all) {
        fprintf(stderr, "FAIL algo_top %s %s: %d of %d offered with top 1 (expected 1..4, "
                "fewer than all)\n",
                op_name(op), gt_dtype_name(dt), top, all);
        g_fail++;
    } else {
        g_pass++;
    }
}

/* Runs the first device tactic of n from cuda_tactics_pool and compares
** with the reference (exact for data movement, rtol for pools). */
static void nhwc_pool_check(ir_node *n, const kiln_tensor *const *in, bool exact,
                            const char *desc) {
    kiln_tensor *want = gt_ref(n, in);
    if (!want) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
        return;
    }
    const kiln_tactic *ts[4];
    int nt = gt_tactics(cuda_tactics_pool, n->op, ts, 4);
    if (!nt && !g_only) {
        fprintf(stderr, "FAIL %s: no device tactic for %s\n", desc, n->op_type);
        g_fail++;
    }
    for (int t = 0; t < nt; t++) {
        bool declined;
        kiln_tensor *got = gt_run(ts[t], n, in, want, &declined);
        if (!got) {
            fprintf(stderr, "FAIL %s %s: %s\n", ts[t]->name, desc,
                    declined ? "declined" : "did not run");
            g_fail++;
            continue;
        }
        bool ok;
        if (exact) {
            ok = got->nbytes == want->nbytes && !memcmp(got->data, want->data, want->nbytes);
            if (!ok) {
                int64_t i = 0, cnt = tensor_numel(want);
                size_t es = kiln_dtype_size(want->dtype);
                while (i < cnt && !memcmp((char *)got->data + i * es, (char *)want->data + i * es, es))
                    i++;
                fprintf(stderr, "FAIL %s %s: element %lld of %lld differs (got %g want %g)\n",
                        ts[t]->name, desc, (long long)i, (long long)cnt,
                        i < cnt ? dt_get_f64(got->dtype, got->data, (size_t)i) : 0.0,
                        i < cnt ? dt_get_f64(want->dtype, want->data, (size_t)i) : 0.0);
            }
        } else {
            ok = gt_compare(ts[t]->name, desc, got, want, NULL, 2.0, gt_rtol(want->dtype));
        }
        if (ok) g_pass++;
        else g_fail++;
        tensor_free(got);
    }
    tensor_free(want);
}

static void nhwc_pools(kiln_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k,
                       int64_t s, int64_t p, int cip) {
    char desc[200];
    snprintf(desc, sizeof desc, "nhwc N=%lld C=%lld %lldx%lld k=%lld s=%lld p=%lld cip=%d %s",
             (long long)N, (long long)C, (long long)H, (long long)W, (long long)k, (long long)s,
             (long long)p, cip, gt_dtype_name(dt));
    int64_t xd[4] = {N, H, W, C}, nd[4] = {N, C, H, W};
    kiln_tensor *X = gt_rand(dt, 4, xd, 2.0), *Xn = gt_rand(dt, 4, nd, 2.0);
    int64_t ks[2] = {k, k}, st[2] = {s, s}, pads[4] = {p, p, p, p};
    const kiln_tensor *in[1] = {X}, *inn[1] = {Xn};
    char d2[260];
    for (int kind = 0; kind < 2; kind++) {
        ir_node *n = gt_node(kind ? OP_NhwcAveragePool : OP_NhwcMaxPool, 1);
        ir_edit_set_ints(n, "kernel_shape", ks, 2);
        ir_edit_set_ints(n, "strides", st, 2);
        ir_edit_set_ints(n, "pads", pads, 4);
        if (kind) ir_edit_set_int(n, "count_include_pad", cip);
        snprintf(d2, sizeof d2, "%s %s", kind ? "avgpool" : "maxpool", desc);
        nhwc_pool_check(n, in, false, d2);
    }
    ir_node *g = gt_node(OP_NhwcGlobalAveragePool, 1);
    snprintf(d2, sizeof d2, "global avgpool %s", desc);
    nhwc_pool_check(g, in, false, d2);
    ir_node *a = gt_node(OP_ToNchw, 1);
    snprintf(d2, sizeof d2, "ToNchw %s", desc);
    nhwc_pool_check(a, in, true, d2);
    ir_node *b = gt_node(OP_ToNhwc, 1);
    snprintf(d2, sizeof d2, "ToNhwc %s", desc);
    nhwc_pool_check(b, inn, true, d2);
    ir_node *c = gt_node(OP_ToNhwc, 1);
    int64_t cp = (C + 7) / 8 * 8 + (C % 8 == 0 ? 8 : 0);
    ir_edit_set_int(c, "channels", cp);
    snprintf(d2, sizeof d2, "ToNhwc channels=%lld %s", (long long)cp, desc);
    nhwc_pool_check(c, inn, true, d2);
    tensor_free(X);
    tensor_free(Xn);
}

static void test_nhwc(kiln_dtype dt) {
    /* aligned ResNet-like layers: 1x1 / 3x3 / 7x7, stride 1 / 2, residual */
    nhwc_case(dt, 2, 64, 64, 14, 14, 3, 1, true, true, true, 0);
    nhwc_case(dt, 2, 64, 256, 14, 14, 1, 1, true, true, true, 0);
    nhwc_case(dt, 1, 256, 128, 13, 13, 1, 2, true, false, false, 0);
    nhwc_case(dt, 1, 128, 128, 9, 11, 3, 2, true, false, true, 0);
    nhwc_case(dt, 32, 16, 32, 28, 28, 3, 1, true, true, true, 0); /* a larger batch */
    nhwc_case(dt, 1, 8, 16, 5, 7, 3, 1, false, false, false, 0);  /* no bias */
    nhwc_case(dt, 1, 8, 8, 1, 1, 1, 1, true, true, true, 0);     /* 1x1 image */
    /* the RGB stem as the pass builds it: 3 channels padded to 8 */
    nhwc_case(dt, 2, 3, 64, 32, 30, 7, 2, true, false, true, 8);
    nhwc_case(dt, 1, 5, 16, 9, 9, 3, 1, true, true, true, 8);
    /* channels that are not multiples of 8: half types must decline */
    nhwc_case(dt, 1, 12, 16, 8, 8, 3, 1, true, false, true, 0);
    nhwc_case(dt, 2, 16, 20, 7, 9, 1, 1, true, true, false, 0);
    nhwc_case(dt, 1, 3, 8, 10, 10, 7, 2, true, false, true, 0);
    /* random shapes */
    for (int i = 0; i < 8; i++) {
        int64_t C = 8 * (1 + (int64_t)(rnd() * 6)), M = 8 * (1 + (int64_t)(rnd() * 6));
        int64_t k = i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 5, s = 1 + i % 2;
        nhwc_case(dt, 1 + (int64_t)(rnd() * 3), C, M, 3 + (int64_t)(rnd() * 14),
                  3 + (int64_t)(rnd() * 14), k, s, rnd() < 0.8, rnd() < 0.5, rnd() < 0.5, 0);
    }
    nhwc_pools(dt, 2, 64, 13, 11, 3, 2, 1, 0);
    nhwc_pools(dt, 1, 24, 7, 7, 2, 2, 0, 1);
    nhwc_pools(dt, 3, 5, 9, 6, 3, 1, 1, 1);
    nhwc_pools(dt, 1, 33, 1, 1, 1, 1, 0, 0);
    nhwc_pools(dt, 2, 40, 35, 37, 3, 2, 1, 0); /* several 32x32 tiles, ragged edges */
}

/* The timing cache skips the sweep on a rebuild: the second FP16 build of
** the model with the same cache file times nothing ("0 new entries") and
** gives byte-identical engines. Build times printed for the log. */
typedef struct log_grab {
    int hits, fresh;
} log_grab;

static void grab_log(void *user, kiln_severity sev, const char *msg) {
    (void)sev;
    log_grab *g = user;
    int h, n;
    if (sscanf(msg, "timing cache: %d hits, %d new entries", &h, &n) == 2) g->hits = h, g->fresh = n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void cache_rebuild(const kiln_model *km, const int64_t *xd) {
    char path[] = "/tmp/kiln_nhwc_cacheXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    remove(path); /* created by the first build */
    void *blob[2] = {NULL, NULL};
    size_t size[2] = {0, 0};
    log_grab lg[2] = {{-1, -1}, {-1, -1}};
    double t[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        kiln_builder_config *cfg = NULL;
        int prof = 0;
        double t0 = now_s();
        kiln_status st = kiln_builder_config_create(&cfg);
        if (!st) st = kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA);
        if (!st) st = kiln_builder_config_set_precisions(cfg, KILN_PRECISION_FP16);
        if (!st) st = kiln_builder_config_set_timing_cache(cfg, path);
        if (!st) st = kiln_builder_config_set_logger(cfg, grab_log, &lg[k], KILN_SEVERITY_INFO);
        if (!st) st = kiln_builder_config_add_profile(cfg, &prof);
        if (!st) st = kiln_builder_config_set_shape(cfg, prof, "x", 4, xd, xd, xd);
        if (!st) st = kiln_build_engine(km, cfg, &blob[k], &size[k]);
        t[k] = now_s() - t0;
        if (st) {
            fprintf(stderr, "FAIL cache rebuild %d: %s\n", k, kiln_last_error());
            g_fail++;
        }
        kiln_builder_config_destroy(cfg);
    }
    fprintf(stderr, "cache rebuild: first build %.2f s (%d hits, %d new), rebuild %.2f s "
            "(%d hits, %d new)\n", t[0], lg[0].hits, lg[0].fresh, t[1], lg[1].hits, lg[1].fresh);
    if (blob[0] && blob[1]) {
        if (lg[0].fresh <= 0 || lg[1].fresh != 0 || lg[1].hits < lg[0].fresh) {
            fprintf(stderr, "FAIL cache rebuild: the rebuild timed %d layers\n", lg[1].fresh);
            g_fail++;
        } else if (size[0] != size[1] || memcmp(blob[0], blob[1], size[0])) {
            fprintf(stderr, "FAIL cache rebuild: the engines differ\n");
            g_fail++;
        } else {
            g_pass++;
        }
    }
    kiln_free(blob[0]);
    kiln_free(blob[1]);
    remove(path);
}

/* A small ResNet (tests/data/passes/resnet_nhwc.onnx) as a CUDA FP16
** engine with the channels-last pass (the default for FP16) and without it
** (KILN_CHANNELS_LAST=0): both within 1e-2 relative L2 of the float32
** reference, and the NHWC engine has its NHWC layers on the device. */
static double rel_l2(const kiln_tensor *a, const kiln_tensor *b) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < tensor_numel(b); i++) {
        double x = dt_get_f64(a->dtype, a->data, (size_t)i);
        double y = dt_get_f64(b->dtype, b->data, (size_t)i);
        num += (x - y) * (x - y);
        den += y * y;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void nhwc_engine(void) {
    const char *path = "tests/data/passes/resnet_nhwc.onnx";
    kiln_model *km = NULL;
    if (g_dry || g_only) return;
    if (kiln_model_load(path, &km)) {
        fprintf(stderr, "FAIL nhwc engine: cannot load %s (run from the repository root): %s\n",
                path, kiln_last_error());
        g_fail++;
        return;
    }
    const ir_graph *g = km->ir->graph;
    int no = g->n_outputs;
    int64_t xd[4] = {4, 3, 19, 17};
    kiln_tensor *x = gt_rand(KILN_DTYPE_FLOAT32, 4, xd, 1.0);
    kiln_tensor *ref[8] = {0};
    const kiln_tensor *xin[1] = {x};
    if (no > 8 || ref_run_graph(g, xin, NULL, ref)) {
        fprintf(stderr, "FAIL nhwc engine: reference: %s\n", kiln_last_error());
        g_fail++;
        goto done;
    }
    /* The NCHW FP16 engine's outputs, to hold the channels-last one to. */
    kiln_tensor *nchw[8] = {0};
    for (int pass = 0; pass < 2; pass++) {
        const char *what = pass ? "nhwc engine (channels-last)" : "nhwc engine (KILN_CHANNELS_LAST=0)";
        kiln_builder_config *cfg = NULL;
        kiln_engine *e = NULL;
        kiln_context *cx = NULL;
        void *blob = NULL;
        size_t size = 0;
        kiln_tensor *out[8] = {0};
        setenv("KILN_CHANNELS_LAST", pass ? "1" : "0", 1);
        kiln_status st = kiln_builder_config_create(&cfg);
        if (!st) st = kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA);
        if (!st) st = kiln_builder_config_set_precisions(cfg, KILN_PRECISION_FP16);
        int prof = 0;
        if (!st) st = kiln_builder_config_add_profile(cfg, &prof);
        if (!st) st = kiln_builder_config_set_shape(cfg, prof, "x", 4, xd, xd, xd);
        if (!st) st = kiln_build_engine(km, cfg, &blob, &size);
        unsetenv("KILN_CHANNELS_LAST");
        if (!st) st = kiln_engine_load_memory(blob, size, &e);
        int nh = 0, host = 0;
        for (int i = 0; !st && i < kiln_engine_num_layers(e); i++) {
            kiln_layer_info li;
            if (kiln_engine_layer(e, i, &li)) continue;
            if (!strncmp(li.op_type, "Nhwc", 4)) nh++;
            if (!kiln_engine_layer_on_device(e, i)) {
                host++;
                fprintf(stderr, "  %s: layer %d %s (%s) on the host\n", what, i, li.name,
                        li.op_type);
            }
        }
        if (!st) {
            if ((pass && nh < 12) || (!pass && nh)) {
                fprintf(stderr, "FAIL %s: %d NHWC layers\n", what, nh);
                g_fail++;
            } else {
                g_pass++;
            }
            if (host) {
                fprintf(stderr, "FAIL %s: %d layers on the host\n", what, host);
                g_fail++;
            }
        }
        if (!st) st = kiln_context_create(e, &cx);
        if (!st) st = kiln_context_set_input_shape(cx, "x", 4, xd);
        if (!st) st = kiln_context_set_tensor(cx, "x", x->data, x->nbytes);
        for (int o = 0; !st && o < no; o++) {
            if (tensor_new(ref[o]->dtype, ref[o]->rank, ref[o]->dims, &out[o])) gt_die("tensor");
            st = kiln_context_set_tensor(cx, g->outputs[o]->name, out[o]->data, out[o]->nbytes);
        }
        if (!st) st = kiln_context_execute(cx);
        if (st) {
            fprintf(stderr, "FAIL %s: %s\n", what, kiln_last_error());
            g_fail++;
        }
        /* Against the FP32 reference the bound is FP16's own error on this
        ** random-weight net (about 4e-2 either layout on an H100; torch's
        ** FP16 ResNet-50 is 2.9e-2 from its FP32); the channels-last
        ** engine against the NCHW FP16 engine is held to 1e-2. */
        for (int o = 0; !st && o < no; o++) {
            double r = rel_l2(out[o], ref[o]);
            double d = pass && nchw[o] ? rel_l2(out[o], nchw[o]) : 0;
            if (!(r <= 1e-1) || !(d <= 1e-2)) {
                fprintf(stderr, "FAIL %s: output %s rel-L2 %.3g vs FP32 reference (limit "
                        "1e-1), %.3g vs the NCHW FP16 engine (limit 1e-2)\n", what,
                        g->outputs[o]->name, r, d);
                g_fail++;
            } else {
                g_pass++;
            }
        }
        for (int o = 0; o < 8; o++) {
            if (!pass && !st) {
                nchw[o] = out[o];
                out[o] = NULL;
            }
            tensor_free(out[o]);
        }
        kiln_context_destroy(cx);
        kiln_engine_free(e);
        kiln_free(blob);
        kiln_builder_config_destroy(cfg);
    }
    for (int o = 0; o < 8; o++) tensor_free(nchw[o]);
    cache_rebuild(km, xd);
done:
    for (int o = 0; o < 8; o++) tensor_free(ref[o]);
    tensor_free(x);
    kiln_model_free(km);
}

/* ------------------------------------------------------------ graph API */
/* cuda_conv_graph.c's tactics alone against the reference, NCHW (Conv /
** FusedConv) and NHWC (NhwcConv, group and pads of any kind: the tactic
** takes them even where the layout pass does not make them). Any single
** configuration may be refused (a decline), but a plain FP16 NHWC 3x3
** conv + bias + ReLU must run with the bias and ReLU inside cuDNN's graph
** (`must`): cuDNN 9 on sm_80+ offers that, and the batch-1 plan rests on it.
** One log line per case says how many graph tactics ran. */
static void graph_nhwc_case(kiln_dtype dt, const conv_case *cc, const char *desc) {
    int64_t xd[4] = {cc->N, cc->C, cc->img[0], cc->img[1]};
    int64_t wd[4] = {cc->M, cc->C / cc->G, cc->k[0], cc->k[1]}, bd[1] = {cc->M};
    int64_t oh = (cc->img[0] + cc->pads[0] + cc->pads[2] - cc->d[0] * (cc->k[0] - 1) - 1) /
                     cc->s[0] + 1,
            ow = (cc->img[1] + cc->pads[1] + cc->pads[3] - cc->d[1] * (cc->k[1] - 1) - 1) /
                     cc->s[1] + 1;
    int64_t yd[4] = {cc->N, cc->M, oh, ow};
    kiln_tensor *X = gt_rand(dt, 4, xd, 1.0), *Wt = gt_rand(dt, 4, wd, 1.0);
    kiln_tensor *B = cc->bias ? gt_rand(dt, 1, bd, 1.0) : NULL;
    kiln_tensor *Z = cc->resid ? gt_rand(dt, 4, yd, 1.0) : NULL;
    kiln_tensor *aX = gt_abs_f32(X), *aW = gt_abs_f32(Wt), *aB = gt_abs_f32(B),
                *aZ = gt_abs_f32(Z);
    ir_node *fc = gt_node(OP_FusedConv, Z ? 4 : B ? 3 : 2);
    set_conv_attrs(fc, cc);
    gt_set_act(fc, cc->act);
    const kiln_tensor *in[4] = {X, Wt, B, Z}, *ain[4] = {aX, aW, aB, aZ};
    kiln_tensor *want = gt_ref(fc, in), *mag = gt_ref(fc, ain);
    if (!want || !mag) {
        fprintf(stderr, "FAIL %s: no reference\n", desc);
        g_fail++;
    } else {
        kiln_tensor *Xh = nt_perm(X, true, cc->C), *Wh = nt_perm(Wt, true, cc->C / cc->G);
        kiln_tensor *Zh = Z ? nt_perm(Z, true, cc->M) : NULL;
        kiln_tensor *wanth = nt_perm(want, true, cc->M), *magh = nt_perm(mag, true, cc->M);
        ir_node *n = gt_node(OP_NhwcConv, Z ? 4 : B ? 3 : 2);
        ir_edit_copy_attrs(n, fc);
        const kiln_tensor *hin[4] = {Xh, Wh, B, Zh};
        const kiln_tactic *ts[48];
        int nt = conv_tactics(OP_NhwcConv, ts, 48);
        double lip = cc->act[0] ? gt_act_lip(cc->act) : 1.0;
        for (int t = 0; t < nt; t++) {
            bool declined;
            kiln_tensor *got = conv_run(ts[t], n, hin, wanth, &declined, desc);
            if (!got) {
                if (!declined) {
                    fprintf(stderr, "FAIL %s %s: did not run\n", ts[t]->name, desc);
                    g_fail++;
                } else {
                    g_declined++;
                }
                continue;
            }
            note_graph_ran(ts[t]);
            if (gt_compare(ts[t]->name, desc, got, wanth, magh, 0, gt_rtol(dt) * lip)) g_pass++;
            else g_fail++;
            tensor_free(got);
        }
        tensor_free(Xh);
        tensor_free(Wh);
        tensor_free(Zh);
        tensor_free(wanth);
        tensor_free(magh);
    }
    tensor_free(want);
    tensor_free(mag);
    tensor_free(X);
    tensor_free(Wt);
    tensor_free(B);
    tensor_free(Z);
    tensor_free(aX);
    tensor_free(aW);
    tensor_free(aB);
    tensor_free(aZ);
}

static double graph_budget(void) {
    const char *e = getenv("KILN_GPU_TEST_GRAPH_BUDGET_S");
    return e && atof(e) > 0 ? atof(e) : 300;
}

static void graph_case(kiln_dtype dt, bool nhwc, int64_t N, int64_t C, int64_t M, int64_t G,
                       int64_t H, int64_t W, int64_t k, int64_t s, int64_t d, int64_t pt,
                       int64_t pl, int64_t pb, int64_t pr, bool bias, bool resid,
                       const char *act, bool must) {
    /* Plans may compile kernels at run time (seconds each at worst): past
    ** a time budget (KILN_GPU_TEST_GRAPH_BUDGET_S, default 300) the
    ** remaining cases are skipped, and said so; the must case runs first. */
    if (!must && !g_dry && g_graph_spent > graph_budget()) {
        g_graph_skipped++;
        return;
    }
    double t0 = now_s();
    conv_case cc;
    memset(&cc, 0, sizeof cc);
    cc.nsp = 2;
    cc.N = N, cc.C = C, cc.M = M, cc.G = G;
    cc.img[0] = H, cc.img[1] = W;
    cc.k[0] = cc.k[1] = k;
    cc.s[0] = cc.s[1] = s;
    cc.d[0] = cc.d[1] = d;
    cc.pads[0] = pt, cc.pads[1] = pl, cc.pads[2] = pb, cc.pads[3] = pr;
    cc.bias = bias, cc.resid = resid;
    cc.fused = resid || act[0];
    cc.act = act;
    char desc[300];
    snprintf(desc, sizeof desc,
             "graph %s N=%lld C=%lld M=%lld G=%lld %lldx%lld k=%lld s=%lld d=%lld "
             "p=%lld,%lld,%lld,%lld bias=%d resid=%d act='%s' %s",
             nhwc ? "nhwc" : "nchw", (long long)N, (long long)C, (long long)M, (long long)G,
             (long long)H, (long long)W, (long long)k, (long long)s, (long long)d,
             (long long)pt, (long long)pl, (long long)pb, (long long)pr, bias, resid, act,
             gt_dtype_name(dt));
    g_graph_ran = g_graph_fused_ran = 0;
    g_graph_only = true;
    g_graph_all = must;
    if (nhwc) graph_nhwc_case(dt, &cc, desc);
    else run_case(&cc, dt, desc);
    g_graph_only = g_graph_all = false;
    g_graph_spent += now_s() - t0;
    if (!g_dry)
        fprintf(stderr, "%s: %d graph tactics ran (%d with the epilogue in cuDNN), %.2f s\n",
                desc, g_graph_ran, g_graph_fused_ran, now_s() - t0);
    if (must && !g_dry && !g_only) {
        if (g_graph_fused_ran) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s: no graph-API tactic with bias and ReLU fused ran (cuDNN "
                    "must offer this one; KILN_CONV_GRAPH_LOG=1 shows why each was refused)\n",
                    desc);
            g_fail++;
        }
    }
}

static void test_graph(kiln_dtype dt) {
    const char *full = getenv("KILN_GPU_TEST_FULL");
    g_graph_every = full && full[0] == '1';
    if (!cuda_libs_get()->dnnBackendExecute && !g_dry) {
        fprintf(stderr, "FAIL graph: cuDNN's graph API did not load (%s)\n",
                cuda_libs_get()->dnn_path);
        g_fail++;
        return;
    }
    for (int l = 0; l < 2; l++) {
        bool nhwc = l == 1;
        /* the case that must run: FP16 NHWC 3x3 + bias + ReLU, ResNet's */
        graph_case(dt, nhwc, 1, 64, 64, 1, 28, 28, 3, 1, 1, 1, 1, 1, 1, true, false, "Relu",
                   nhwc && dt == KILN_DTYPE_FLOAT16);
        graph_case(dt, nhwc, 1, 64, 64, 1, 14, 14, 3, 1, 1, 1, 1, 1, 1, true, true, "Relu", false);
        graph_case(dt, nhwc, 3, 64, 128, 1, 15, 15, 3, 2, 1, 1, 1, 1, 1, true, false, "", false);
        /* 1x1, stride 1 and 2, residual */
        graph_case(dt, nhwc, 1, 256, 64, 1, 14, 14, 1, 1, 1, 0, 0, 0, 0, true, true, "Relu", false);
        graph_case(dt, nhwc, 3, 64, 256, 1, 13, 13, 1, 2, 1, 0, 0, 0, 0, true, false, "", false);
        graph_case(dt, nhwc, 1, 32, 16, 1, 7, 7, 1, 1, 1, 0, 0, 0, 0, false, false, "", false);
        if (dt == KILN_DTYPE_BFLOAT16 && !g_graph_every) {
            /* BF16 takes the same code path: a few shapes */
            graph_case(dt, nhwc, 3, 16, 16, 4, 12, 11, 3, 2, 1, 0, 0, 1, 1, true, true, "Relu",
                       false);
            graph_case(dt, nhwc, 1, 5, 7, 1, 9, 9, 3, 1, 1, 1, 1, 1, 1, true, false, "SiLU",
                       false);
            continue;
        }
        /* 7x7 stride 2 stem: padded to 8 channels, and the raw 3 */
        graph_case(dt, nhwc, 1, 8, 64, 1, 32, 30, 7, 2, 1, 3, 3, 3, 3, true, false, "Relu", false);
        graph_case(dt, nhwc, 3, 3, 64, 1, 33, 31, 7, 2, 1, 3, 3, 3, 3, true, false, "Relu", false);
        /* dilation, asymmetric pads */
        graph_case(dt, nhwc, 1, 16, 24, 1, 17, 15, 3, 1, 2, 2, 2, 2, 2, true, true, "", false);
        graph_case(dt, nhwc, 3, 16, 16, 1, 12, 11, 3, 2, 1, 0, 0, 1, 1, true, false, "Relu", false);
        /* groups, depthwise */
        graph_case(dt, nhwc, 1, 16, 32, 4, 10, 10, 3, 1, 1, 1, 1, 1, 1, true, false, "Relu", false);
        graph_case(dt, nhwc, 3, 32, 32, 32, 14, 14, 3, 1, 1, 1, 1, 1, 1, true, true, "Relu", false);
        graph_case(dt, nhwc, 1, 24, 24, 24, 15, 15, 3, 2, 1, 1, 1, 1, 1, true, false, "", false);
        /* odd channel counts, no bias, other activations (epilogue kernel) */
        graph_case(dt, nhwc, 1, 5, 7, 1, 9, 9, 3, 1, 1, 1, 1, 1, 1, true, true, "Relu", false);
        graph_case(dt, nhwc, 3, 13, 9, 1, 6, 8, 1, 1, 1, 0, 0, 0, 0, false, true, "", false);
        graph_case(dt, nhwc, 1, 8, 16, 1, 9, 9, 3, 1, 1, 1, 1, 1, 1, true, false, "SiLU", false);
        graph_case(dt, nhwc, 1, 8, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, true, "Relu", false);
        /* random shapes */
        for (int i = 0; i < 6; i++) {
            int64_t C = 1 + (int64_t)(rnd() * 40), M = 1 + (int64_t)(rnd() * 40);
            if (i % 2 == 0) C = (C + 7) / 8 * 8, M = (M + 7) / 8 * 8;
            int64_t k = i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 5, st = 1 + (int64_t)(rnd() * 2);
            int64_t p = k / 2;
            graph_case(dt, nhwc, 1 + (int64_t)(rnd() * 3), C, M, 1, 3 + (int64_t)(rnd() * 14),
                       3 + (int64_t)(rnd() * 14), k, st, 1, p, p, p, p, rnd() < 0.8,
                       rnd() < 0.5, rnd() < 0.5 ? "Relu" : "", false);
        }
    }
    /* 1-D and 3-D, NCHW only */
    struct {
        int nsp;
        int64_t N, C, M, img[3], k[3], s[3], pads[6];
        bool bias, resid;
    } nd[] = {
        {1, 3, 16, 8, {17}, {3}, {1}, {1, 1}, true, true},
        {1, 1, 8, 24, {20}, {5}, {2}, {2, 2}, true, false},
        {3, 1, 8, 16, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, true, true},
        {3, 2, 16, 8, {6, 5, 6}, {1, 1, 1}, {2, 1, 1}, {0, 0, 0, 0, 0, 0}, true, false},
    };
    for (size_t i = 0; i < KILN_ARRAY_LEN(nd); i++) {
        conv_case cc;
        memset(&cc, 0, sizeof cc);
        cc.nsp = nd[i].nsp;
        cc.N = nd[i].N, cc.C = nd[i].C, cc.M = nd[i].M, cc.G = 1;
        memcpy(cc.img, nd[i].img, sizeof cc.img);
        memcpy(cc.k, nd[i].k, sizeof cc.k);
        memcpy(cc.s, nd[i].s, sizeof cc.s);
        for (int j = 0; j < 3; j++) cc.d[j] = 1;
        memcpy(cc.pads, nd[i].pads, sizeof cc.pads);
        cc.bias = nd[i].bias, cc.resid = nd[i].resid, cc.fused = true;
        cc.act = "Relu";
        char desc[96];
        snprintf(desc, sizeof desc, "graph nchw conv%dd case %zu %s", cc.nsp, i,
                 gt_dtype_name(dt));
        if (!g_dry && g_graph_spent > graph_budget()) {
            g_graph_skipped++;
            continue;
        }
        double t0 = now_s();
        g_graph_ran = g_graph_fused_ran = 0;
        g_graph_only = true;
        run_case(&cc, dt, desc);
        g_graph_only = false;
        g_graph_spent += now_s() - t0;
        if (!g_dry) fprintf(stderr, "%s: %d graph tactics ran\n", desc, g_graph_ran);
    }
}

/* The graph tactics on float32 layers: none may take them (cuda_conv.c's
** exact-FP32 math keeps those), so a build never trades FP32 accuracy for
** TF32 unasked. */
static void graph_f32_declined(void) {
    ir_type tx = {KILN_DTYPE_FLOAT32, 4, {1, 8, 9, 9}}, tw = {KILN_DTYPE_FLOAT32, 4, {8, 8, 3, 3}};
    const ir_type *tin[2] = {&tx, &tw};
    ir_node *n = gt_node(OP_Conv, 2);
    int64_t pads[4] = {1, 1, 1, 1};
    ir_edit_set_ints(n, "pads", pads, 4);
    int took = 0;
    for (const kiln_tactic *const *t = cuda_tactics_conv_graph; *t; t++)
        if ((*t)->op == OP_Conv && (*t)->supports(n, tin)) took++;
    if (took) {
        fprintf(stderr, "FAIL graph: %d graph tactics offered for a float32 Conv\n", took);
        g_fail++;
    } else {
        g_pass++;
    }
}

int main(int argc, char **argv) {
    if (!gt_init(argc, argv)) return 0;
    test_conv(KILN_DTYPE_FLOAT32, true);
    test_conv(KILN_DTYPE_FLOAT16, false);
    test_conv(KILN_DTYPE_BFLOAT16, false);
    test_nhwc(KILN_DTYPE_FLOAT16);
    test_nhwc(KILN_DTYPE_BFLOAT16);
    test_nhwc(KILN_DTYPE_FLOAT32);
    test_graph(KILN_DTYPE_FLOAT16);
    test_graph(KILN_DTYPE_BFLOAT16);
    graph_f32_declined();
    if (g_dry)
        fprintf(stderr, "graph tactics: %d cuDNN graphs built host-only%s\n", g_probed,
                g_probe_unavailable ? " (this cuDNN needs a device for some)" : "");
    else
        fprintf(stderr, "graph cases: %.1f s%s\n", g_graph_spent,
                g_graph_skipped ? " (time budget reached: some cases skipped)" : "");
    if (g_graph_skipped)
        fprintf(stderr, "graph cases: %d skipped past the time budget "
                "(KILN_GPU_TEST_GRAPH_BUDGET_S)\n", g_graph_skipped);
    algo_top_case(KILN_DTYPE_FLOAT16, OP_NhwcConv);
    algo_top_case(KILN_DTYPE_FLOAT16, OP_FusedConv);
    algo_top_case(KILN_DTYPE_FLOAT32, OP_FusedConv);
    nhwc_engine();
    return gt_finish();
}
