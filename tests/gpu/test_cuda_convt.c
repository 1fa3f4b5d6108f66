/* test_cuda_convt.c: the CUDA ConvTranspose tactic (cuda_conv.c,
** kernels/conv_direct.cu) against the reference kernel: 1-D/2-D/3-D,
** groups (1 to 3, several output channels per group), kernels 1 to 4,
** strides 1 to 3, dilations, asymmetric pads, output_padding, auto_pad
** SAME_UPPER/SAME_LOWER/VALID, output_shape, with and without bias, odd
** and size-1 dims, a decoder-like 4x4 stride-2 upsampling; float32 (1e-5),
** float16 (2e-3), bfloat16 (2e-2) of the reference run on |X|, |W|, |B|.
** Ends with `N passed, M failed`; without a GPU it prints "0 passed, 0
** failed (no GPU)" (KILN_GPU_TEST_DRY=1: checks the cases and that the
** tactic takes each, without running it). */
#include "gpu_test.h"

static const kiln_dtype k_types[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};

typedef struct convt_case {
    int nsp;
    int64_t N, C, Mg, G;
    int64_t img[3], k[3], s[3], d[3], pads[6], opad[3], oshape[3];
    const char *auto_pad; /* NULL: explicit pads */
    bool bias, dil, has_opad, has_oshape;
} convt_case;

static void run_convt(const convt_case *cc, kiln_dtype dt) {
    int r = cc->nsp + 2;
    int64_t xd[5] = {cc->N, cc->C}, wd[5] = {cc->C, cc->Mg}, bd[1] = {cc->Mg * cc->G};
    for (int i = 0; i < cc->nsp; i++) xd[2 + i] = cc->img[i], wd[2 + i] = cc->k[i];
    kiln_tensor *x = h_rand(dt, r, xd), *w = h_rand(dt, r, wd);
    kiln_tensor *b = cc->bias ? h_rand(dt, 1, bd) : NULL;
    kiln_tensor *ax = h_abs(x), *aw = h_abs(w), *ab = b ? h_abs(b) : NULL;
    ir_node *n = h_node(OP_ConvTranspose, cc->bias ? 3 : 2, 1);
    n->in[0] = h_rt();
    n->in[1] = h_rt();
    if (cc->bias) n->in[2] = h_rt();
    ir_edit_set_ints(n, "kernel_shape", cc->k, cc->nsp);
    ir_edit_set_ints(n, "strides", cc->s, cc->nsp);
    if (cc->dil) ir_edit_set_ints(n, "dilations", cc->d, cc->nsp);
    if (cc->G > 1) ir_edit_set_int(n, "group", cc->G);
    if (cc->auto_pad) ir_edit_set_str(n, "auto_pad", cc->auto_pad);
    else ir_edit_set_ints(n, "pads", cc->pads, 2 * cc->nsp);
    if (cc->has_opad) ir_edit_set_ints(n, "output_padding", cc->opad, cc->nsp);
    if (cc->has_oshape) ir_edit_set_ints(n, "output_shape", cc->oshape, cc->nsp);
    kiln_tensor *in[3] = {x, w, b}, *mag[3] = {ax, aw, ab};
    char desc[320];
    int o = snprintf(desc, sizeof desc, "ConvTranspose %dD %s N %lld C %lld M %lld G %lld%s%s",
                     cc->nsp, kiln_dtype_name(dt), (long long)cc->N, (long long)cc->C,
                     (long long)(cc->Mg * cc->G), (long long)cc->G, cc->bias ? " bias" : "",
                     cc->auto_pad ? " auto_pad " : "");
    if (cc->auto_pad) o += snprintf(desc + o, sizeof desc - (size_t)o, "%s", cc->auto_pad);
    for (int i = 0; i < cc->nsp && o < (int)sizeof desc - 64; i++)
        o += snprintf(desc + o, sizeof desc - (size_t)o,
                      " [img %lld k %lld s %lld d %lld pads %lld/%lld opad %lld oshape %lld]",
                      (long long)cc->img[i], (long long)cc->k[i], (long long)cc->s[i],
                      (long long)(cc->dil ? cc->d[i] : 1), (long long)cc->pads[i],
                      (long long)cc->pads[cc->nsp + i],
                      (long long)(cc->has_opad ? cc->opad[i] : 0),
                      (long long)(cc->has_oshape ? cc->oshape[i] : -1));
    h_check(n, in, CMP_FLOAT, mag, true, desc);
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
    tensor_free(ax);
    tensor_free(aw);
    tensor_free(ab);
}

static void test_random(kiln_dtype dt) {
    static const char *const aps[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int it = 0; it < 120; it++) {
        convt_case cc;
        memset(&cc, 0, sizeof cc);
        cc.nsp = it % 6 == 0 ? 3 : it % 3 == 0 ? 1 : 2;
        cc.N = h_irand(1, 2);
        cc.G = h_irand(1, 3);
        cc.C = cc.G * h_irand(1, 3);
        cc.Mg = h_irand(1, 4);
        cc.bias = rnd() < 0.6;
        cc.dil = rnd() < 0.3;
        for (int i = 0; i < cc.nsp; i++) {
            cc.img[i] = h_irand(1, cc.nsp == 3 ? 5 : 9);
            cc.k[i] = h_irand(1, cc.nsp == 3 ? 3 : 4);
            cc.s[i] = h_irand(1, 3);
            cc.d[i] = cc.dil ? h_irand(1, 2) : 1;
            cc.pads[i] = h_irand(0, cc.k[i] - 1);
            cc.pads[cc.nsp + i] = h_irand(0, cc.k[i] - 1);
        }
        int form = (int)h_irand(0, 9);
        if (form == 0 || form == 1) cc.auto_pad = aps[h_irand(0, 2)];
        if (form == 2 || form == 3) {
            cc.has_opad = true;
            for (int i = 0; i < cc.nsp; i++) {
                int64_t lim = cc.s[i] > cc.d[i] ? cc.s[i] : cc.d[i];
                cc.opad[i] = h_irand(0, lim - 1);
            }
        }
        if (form == 4) {
            cc.has_oshape = true;
            for (int i = 0; i < cc.nsp; i++) /* the natural size, or up to s - 1 more */
                cc.oshape[i] = cc.s[i] * (cc.img[i] - 1) + (cc.d[i] * (cc.k[i] - 1) + 1) +
                               h_irand(0, cc.s[i] - 1);
        }
        run_convt(&cc, dt);
    }
}

static void test_fixed(kiln_dtype dt) {
    convt_case cc;
    /* decoder upsampling: 4x4, stride 2, pad 1 (2x), bias */
    memset(&cc, 0, sizeof cc);
    cc.nsp = 2, cc.N = 2, cc.C = 64, cc.Mg = 32, cc.G = 1, cc.bias = true;
    for (int i = 0; i < 2; i++) cc.img[i] = 16, cc.k[i] = 4, cc.s[i] = 2, cc.pads[i] = cc.pads[2 + i] = 1;
    run_convt(&cc, dt);
    /* the ONNX node tests' forms: 3x3 stride 1 no pads; stride 3x2 with
    ** output_padding; kernel_shape with output_shape; 1-D; 3-D; groups */
    memset(&cc, 0, sizeof cc);
    cc.nsp = 2, cc.N = 1, cc.C = 1, cc.Mg = 2, cc.G = 1;
    for (int i = 0; i < 2; i++) cc.img[i] = 3, cc.k[i] = 3, cc.s[i] = 1;
    run_convt(&cc, dt);
    cc.s[0] = 3, cc.s[1] = 2, cc.has_opad = true, cc.opad[0] = 1, cc.opad[1] = 1;
    run_convt(&cc, dt);
    cc.has_opad = false, cc.has_oshape = true, cc.oshape[0] = 10, cc.oshape[1] = 8;
    run_convt(&cc, dt);
    memset(&cc, 0, sizeof cc);
    cc.nsp = 1, cc.N = 1, cc.C = 1, cc.Mg = 2, cc.G = 1, cc.img[0] = 3, cc.k[0] = 3, cc.s[0] = 1;
    run_convt(&cc, dt);
    memset(&cc, 0, sizeof cc);
    cc.nsp = 3, cc.N = 1, cc.C = 1, cc.Mg = 2, cc.G = 1;
    for (int i = 0; i < 3; i++) cc.img[i] = i == 0 ? 3 : 4, cc.k[i] = 3, cc.s[i] = 1;
    run_convt(&cc, dt);
    memset(&cc, 0, sizeof cc);
    cc.nsp = 2, cc.N = 1, cc.C = 2, cc.Mg = 1, cc.G = 2;
    for (int i = 0; i < 2; i++) cc.img[i] = 3, cc.k[i] = 3, cc.s[i] = 1;
    run_convt(&cc, dt);
    cc.N = 2, cc.Mg = 3, cc.bias = true, cc.dil = true, cc.d[0] = cc.d[1] = 2;
    run_convt(&cc, dt);
}

/* Col2Im: 1-D to 3-D, blocks 1 to 4, strides, dilations, pads, image
** sizes 1 and odd, image_shape/block_shape constant or runtime tensors
** (the _rtparams tactic); sums of up to K overlapping blocks. */
static void test_col2im(kiln_dtype dt) {
    for (int it = 0; it < 60; it++) {
        int nsp = it % 5 == 0 ? 3 : it % 3 == 0 ? 1 : 2;
        bool rt = it % 2 == 1;
        int64_t img[3], blk[3], s[3], d[3], pads[6], grid[3], K = 1, L = 1;
        bool ok = true;
        for (int i = 0; i < nsp; i++) {
            img[i] = h_irand(1, nsp == 3 ? 5 : 9);
            blk[i] = h_irand(1, 4);
            s[i] = h_irand(1, 3);
            d[i] = rnd() < 0.3 ? 2 : 1;
            pads[i] = h_irand(0, blk[i] - 1);
            pads[nsp + i] = h_irand(0, blk[i] - 1);
            int64_t span = img[i] + pads[i] + pads[nsp + i] - (d[i] * (blk[i] - 1) + 1);
            if (span < 0) ok = false;
            grid[i] = span < 0 ? 0 : span / s[i] + 1;
            K *= blk[i];
            L *= grid[i];
        }
        if (!ok) continue;
        int64_t xd[3] = {h_irand(1, 2), h_irand(1, 3) * K, L};
        kiln_tensor *x = h_rand(dt, 3, xd), *ax = h_abs(x);
        kiln_tensor *is = h_vec(nsp, img), *bs = h_vec(nsp, blk);
        ir_node *n = h_node(OP_Col2Im, 3, 1);
        n->in[0] = h_rt();
        n->in[1] = rt ? h_rt() : h_const(is);
        n->in[2] = rt ? h_rt() : h_const(bs);
        ir_edit_set_ints(n, "strides", s, nsp);
        ir_edit_set_ints(n, "dilations", d, nsp);
        ir_edit_set_ints(n, "pads", pads, 2 * nsp);
        kiln_tensor *in[3] = {x, is, bs}, *mag[3] = {ax, is, bs};
        char desc[200];
        snprintf(desc, sizeof desc, "Col2Im %dD %s shapes %s N %lld C %lld img %lldx%lld.. "
                 "block %lldx%lld.. s %lld d %lld pads %lld/%lld", nsp, kiln_dtype_name(dt),
                 rt ? "runtime" : "constant", (long long)xd[0], (long long)(xd[1] / K),
                 (long long)img[0], (long long)(nsp > 1 ? img[1] : 1), (long long)blk[0],
                 (long long)(nsp > 1 ? blk[1] : 1), (long long)s[0], (long long)d[0],
                 (long long)pads[0], (long long)pads[nsp]);
        h_check(n, in, CMP_FLOAT, mag, true, desc);
        tensor_free(x);
        tensor_free(ax);
        if (rt) {
            tensor_free(is);
            tensor_free(bs);
        }
    }
}

/* Conv / FusedConv with asymmetric pads (explicit, or SAME_UPPER /
** SAME_LOWER with an even dilated kernel), the cases cuDNN declines and
** cuda_*conv_direct_asympad takes: 1-D to 3-D, groups, strides,
** dilations, bias, residual Z and an activation (Relu, LeakyRelu,
** Sigmoid, Tanh, Clip) on FusedConv. Without an activation compared on
** the |X|, |W|, |B|, |Z| run; with one, on max(|want|, 1) with weights
** scaled to 0.1 (pre-activations of a few units, where the activations
** bend and float32 sums stay well inside 1e-5). */
static void test_conv_asym(kiln_dtype dt) {
    static const char *const acts[] = {"", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip"};
    for (int it = 0; it < 60; it++) {
        int nsp = it % 6 == 0 ? 3 : it % 3 == 0 ? 1 : 2;
        bool fused = it % 2 == 1;
        int64_t G = h_irand(1, 3), C = G * h_irand(1, 3), M = G * h_irand(1, 3);
        int64_t N = h_irand(1, 2), xd[5] = {N, C}, wd[5] = {M, C / G}, k[3], s[3], d[3], pads[6];
        for (int i = 0; i < nsp; i++) {
            xd[2 + i] = h_irand(2, nsp == 3 ? 6 : 11);
            k[i] = h_irand(1, 4);
            s[i] = h_irand(1, 2);
            d[i] = rnd() < 0.3 ? 2 : 1;
            wd[2 + i] = k[i];
            pads[i] = h_irand(0, k[i] - 1);
            pads[nsp + i] = h_irand(0, k[i] - 1);
        }
        pads[0] = pads[nsp] + 1; /* asymmetric on the first spatial dim */
        const char *ap = NULL;
        if (it % 5 == 4) { /* SAME with an even kernel: asymmetric by construction */
            ap = it % 10 == 4 ? "SAME_UPPER" : "SAME_LOWER";
            k[0] = wd[2] = 2, d[0] = 1, s[0] = 1;
        }
        kiln_tensor *x = h_rand(dt, 2 + nsp, xd), *w = h_rand(dt, 2 + nsp, wd);
        const char *act = fused ? acts[(it / 2) % 6] : "";
        if (act[0]) /* small weights: pre-activations near the activation's bend */
            for (int64_t i = 0; i < tensor_numel(w); i++)
                dt_set_f64(dt, w->data, (size_t)i, dt_get_f64(dt, w->data, (size_t)i) * 0.1);
        int64_t bd[1] = {M};
        kiln_tensor *b = it % 3 ? h_rand(dt, 1, bd) : NULL;
        ir_node *n = h_node(fused ? OP_FusedConv : OP_Conv, fused ? 4 : 3, 1);
        n->in[0] = h_rt(), n->in[1] = h_rt(), n->in[2] = b ? h_rt() : NULL;
        ir_edit_set_ints(n, "kernel_shape", k, nsp);
        ir_edit_set_ints(n, "strides", s, nsp);
        ir_edit_set_ints(n, "dilations", d, nsp);
        if (G > 1) ir_edit_set_int(n, "group", G);
        if (ap) ir_edit_set_str(n, "auto_pad", ap);
        else ir_edit_set_ints(n, "pads", pads, 2 * nsp);
        if (act[0]) {
            ir_edit_set_str(n, "activation", act);
            if (!strcmp(act, "LeakyRelu")) ir_edit_set_float(n, "activation_alpha", 0.1f);
            if (!strcmp(act, "Clip")) {
                ir_edit_set_float(n, "activation_alpha", -0.5f);
                ir_edit_set_float(n, "activation_beta", 1.25f);
            }
        }
        kiln_tensor *z = NULL, *in[4] = {x, w, b, NULL};
        if (fused && it % 4 == 1) { /* residual of the output's shape */
            kiln_tensor *want[1] = {0};
            if (!ref_run_node(n, (const kiln_tensor *const *)in, want) && want[0]) {
                z = h_rand(dt, want[0]->rank, want[0]->dims);
                n->in[3] = h_rt();
                in[3] = z;
            }
            tensor_free(want[0]);
        }
        kiln_tensor *ax = h_abs(x), *aw = h_abs(w), *ab = b ? h_abs(b) : NULL;
        kiln_tensor *az = z ? h_abs(z) : NULL, *mag[4] = {ax, aw, ab, az};
        char desc[200];
        snprintf(desc, sizeof desc, "%s %dD %s G %lld C %lld M %lld k0 %lld s0 %lld d0 %lld "
                 "pads0 %lld/%lld%s%s%s%s%s", fused ? "FusedConv" : "Conv", nsp,
                 kiln_dtype_name(dt), (long long)G, (long long)C, (long long)M, (long long)k[0],
                 (long long)s[0], (long long)d[0], (long long)pads[0], (long long)pads[nsp],
                 ap ? " auto_pad " : "", ap ? ap : "", b ? " bias" : "", z ? " Z" : "",
                 act[0] ? " act" : "");
        g_mag_floor = act[0] ? 1.0 : 0.0;
        h_check(n, in, CMP_FLOAT, act[0] ? NULL : mag, true, desc);
        g_mag_floor = 0.0;
        tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(z);
        tensor_free(ax), tensor_free(aw), tensor_free(ab), tensor_free(az);
    }
}

int main(void) {
    if (h_open(18)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    for (int t = 0; t < 3; t++) {
        test_fixed(k_types[t]);
        test_random(k_types[t]);
        test_col2im(k_types[t]);
        test_conv_asym(k_types[t]);
    }
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
