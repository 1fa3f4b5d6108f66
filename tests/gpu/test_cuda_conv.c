/* test_cuda_conv.c: the cuDNN Conv / FusedConv tactics (one per forward
** algorithm, and the fused bias+activation one) and the depthwise kernel
** against the reference kernels: 1-D/2-D/3-D, groups, depthwise,
** strides, dilations, symmetric / asymmetric / SAME pads, bias, residual,
** every activation; f32 (exact FP32, 1e-4 of the magnitude), f16, bf16.
** An algorithm may decline a problem (cuDNN has no kernel for it: the
** builder then never times it), but some algorithm must take every
** symmetric-pad case, and the depthwise kernel every depthwise one.
** argv[1] optionally filters tactics by name. */
#include "gpu_test.h"

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
        const kiln_tactic *ts[16];
        int nt = gt_tactics(cuda_tactics_conv, n->op, ts, 16);
        bool dw = cc->G > 1 && cc->G == cc->C && cc->G == cc->M && nsp <= 2;
        double lip = cc->fused ? gt_act_lip(cc->act) : 1.0;
        int dnn_ran = 0;
        for (int k = 0; k < nt; k++) {
            bool declined;
            kiln_tensor *got = gt_run(ts[k], n, in, want, &declined);
            if (got && strstr(ts[k]->name, "_dnn_")) dnn_ran++;
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
        if (!g_only && pads_sym(cc) && !dnn_ran) {
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

int main(int argc, char **argv) {
    if (!gt_init(argc, argv)) return 0;
    test_conv(KILN_DTYPE_FLOAT32, true);
    test_conv(KILN_DTYPE_FLOAT16, false);
    test_conv(KILN_DTYPE_BFLOAT16, false);
    return gt_finish();
}
