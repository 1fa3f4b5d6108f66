/* test_cuda_int8.c: the CUDA INT8 tactics (cuda_qconv.c) against the
** reference kernels, which they must match bit for bit:
**  - QLinearConv through every tactic that takes the case (cuBLASLt int8
**    tensor cores h0..h2 with exact requantization, the int8-output i8o
**    variants, which may be one step off near rounding ties on at most 1%
**    of the outputs, the direct kernel): int8/uint8 x and y, zero
**    points, per-tensor and per-channel weight scales, bias or none, 1-D
**    and 2-D, kernels 1..7, strides, dilations, asymmetric pads, auto_pad,
**    channels 1 and not multiples of 4/16/32, batch 1 and odd; the 1x1
**    "Gemm form" passes/qdq.c makes of Gemm/MatMul ([rows, K, 1, 1], K a
**    multiple of 16 or not); outputs that saturate; groups, depthwise,
**    uint8 weights, weight zero points and 3-D convolutions (direct kernel
**    only: the GEMM tactics must decline them); the GEMM path again with a workspace
**    smaller than it asked for (rows processed in several chunks).
**  - NhwcQLinearConv (the channels-last pass's INT8 op: X NHWC, W KRSC)
**    through its GEMM tactics (NHWC im2col at every copy width, the 1x1
**    in-place form, reduced workspace) and its direct kernel; 8-bit
**    NhwcMaxPool; QAdd's 16-byte kernel; ToNhwc/ToNchw of 8-bit values.
**  - 8-bit MaxPool and QAdd; QuantizeLinear of float16/bfloat16 data and
**    DequantizeLinear to float16/bfloat16, with float32 scales (what --fp16
**    builds of INT8 models run around the quantized layers); per-tensor
**    Q/DQ of float32/float16/bfloat16 at sizes the 8-wide kernels take.
** Ends with `N passed, M failed`; without a GPU "0 passed, 0 failed (no
** GPU)" (KILN_GPU_TEST_DRY=1: references and supports() only). argv[1]:
** only tactics whose name contains it. */
#include "gpu_test.h"

#include <math.h>

static int g_declines_expected, g_declines_bad;

static kiln_tensor *rand_q8(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) gt_die("tensor_new");
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        dt_set_i64(dt, t->data, (size_t)i,
                   dt == KILN_DTYPE_INT8 ? gt_irand(-128, 127) : gt_irand(0, 255));
    return t;
}

static kiln_tensor *scalar_t(kiln_dtype dt, double v, bool rank1) {
    int64_t d = 1;
    kiln_tensor *t;
    if (tensor_new(dt, rank1 ? 1 : 0, &d, &t)) gt_die("tensor_new");
    if (dtype_is_float(dt)) dt_set_f64(dt, t->data, 0, v);
    else dt_set_i64(dt, t->data, 0, (int64_t)v);
    return t;
}

static kiln_tensor *vec_t(kiln_dtype dt, int64_t n, const double *v) {
    kiln_tensor *t;
    if (tensor_new(dt, 1, &n, &t)) gt_die("tensor_new");
    for (int64_t i = 0; i < n; i++) {
        if (dtype_is_float(dt)) dt_set_f64(dt, t->data, (size_t)i, v[i]);
        else dt_set_i64(dt, t->data, (size_t)i, (int64_t)v[i]);
    }
    return t;
}

/* Runs device tactic t on n; ws_frac < 1 gives it less workspace than it
** asked for (the GEMM tactics then work in chunks). NULL on failure (message
** printed) or when declined (*declined). */
static kiln_tensor *run_tactic(const kiln_tactic *t, ir_node *n, kiln_tensor *const *in,
                               const kiln_tensor *want, double ws_frac, bool *declined) {
    *declined = false;
    ir_type types[9];
    const ir_type *tin[9] = {0};
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (t->supports && !t->supports(n, tin)) {
        *declined = true;
        return NULL;
    }
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (wsz == SIZE_MAX) {
        *declined = true;
        return NULL;
    }
    if (ws_frac < 1.0 && wsz) wsz = (size_t)((double)wsz * ws_frac);
    kiln_tensor *y;
    if (tensor_clone(want, &y)) gt_die("clone");
    if (g_dry) return y;
    kiln_tensor din[9], yd = *want;
    const kiln_tensor *pin[9] = {0};
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        din[i] = *in[i];
        din[i].name = NULL;
        din[i].flags = 0;
        if (cudaMalloc(&din[i].data, in[i]->nbytes ? in[i]->nbytes : 1) != cudaSuccess ||
            cudaMemcpy(din[i].data, in[i]->data, in[i]->nbytes, cudaMemcpyHostToDevice) !=
                cudaSuccess)
            gt_die("upload");
        pin[i] = &din[i];
    }
    yd.name = NULL;
    yd.flags = 0;
    if (cudaMalloc(&yd.data, want->nbytes ? want->nbytes : 1) != cudaSuccess ||
        cudaMemset(yd.data, 0xA5, want->nbytes) != cudaSuccess)
        gt_die("output");
    void *ws = NULL;
    if (wsz && cudaMalloc(&ws, wsz) != cudaSuccess) gt_die("workspace");
    kiln_tensor *outs[1] = {&yd};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = pin;
    c.n_out = 1;
    c.out = outs;
    c.ws = ws;
    c.ws_size = wsz;
    c.stream = g_stream;
    c.exec = g_exec;
    int rc = t->run(&c);
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)g_stream);
    bool ok = false;
    if (rc && strstr(c.err, "NOT_SUPPORTED")) {
        *declined = true;
    } else if (rc) {
        fprintf(stderr, "FAIL %s: run failed: %s\n", t->name, c.err);
    } else if (e != cudaSuccess) {
        fprintf(stderr, "FAIL %s: CUDA error %s\n", t->name, cudaGetErrorString(e));
        gt_die("device error (the context is unusable)");
    } else if (cudaMemcpy(y->data, yd.data, want->nbytes, cudaMemcpyDeviceToHost) !=
               cudaSuccess) {
        fprintf(stderr, "FAIL %s: download failed\n", t->name);
    } else {
        ok = true;
    }
    for (int i = 0; i < n->n_in; i++)
        if (pin[i]) cudaFree(din[i].data);
    cudaFree(yd.data);
    cudaFree(ws);
    if (!ok) {
        tensor_free(y);
        return NULL;
    }
    return y;
}

/* Every tactic of the qconv family for n's op: exact match with the
** reference. must_take: tactics (name substrings, "|"-free) that must not
** decline; must_decline likewise. Returns how many tactics ran. */
static int check_all(ir_node *n, kiln_tensor *const *in, const char *desc,
                     const char *must_take, const char *must_decline, double ws_frac) {
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    if (!want) {
        fprintf(stderr, "FAIL %s: the reference failed\n", desc);
        g_fail++;
        return 0;
    }
    int ran = 0;
    for (const kiln_tactic *const *tp = cuda_tactics_qconv; *tp; tp++) {
        const kiln_tactic *t = *tp;
        if (t->op != n->op || (g_only && !strstr(t->name, g_only))) continue;
        /* the int8-output tactics are offered only with KILN_INT8_LT_I8O=1
        ** (cuBLASLt 13.1 on an H100 refused their configuration) */
        const char *i8o_env = getenv("KILN_INT8_LT_I8O");
        if (strstr(t->name, "_i8o_") && !(i8o_env && !strcmp(i8o_env, "1"))) continue;
        bool declined;
        kiln_tensor *got = run_tactic(t, n, in, want, ws_frac, &declined);
        if (declined) {
            /* the direct kernels take every case generated here; of the
            ** GEMM tactics the first heuristic algorithm must exist */
            if ((must_take && strstr(t->name, must_take) && !strstr(t->name, "_h1") &&
                 !strstr(t->name, "_h2")) ||
                strstr(t->name, "direct")) {
                fprintf(stderr, "FAIL %s %s: declined a case it must take\n", t->name, desc);
                g_fail++;
            }
            continue;
        }
        if (must_decline && strstr(t->name, must_decline)) {
            fprintf(stderr, "FAIL %s %s: took a case it must decline\n", t->name, desc);
            g_declines_bad++;
            g_fail++;
            tensor_free(got);
            continue;
        }
        ran++;
        if (!got) {
            g_fail++;
            continue;
        }
        /* the int8-output GEMM tactics requantize in float32 inside
        ** cuBLASLt (the SM90 convolution in its epilogue): one step off
        ** near rounding ties, on at most 1% of the
        ** elements (and 2 elements), is allowed for them; every other
        ** tactic must match bit for bit */
        bool loose = strstr(t->name, "_i8o_") != NULL || strstr(t->name, "_sm90_") != NULL;
        int64_t ne = tensor_numel(want), bad = 0, off1 = 0, first = -1;
        for (int64_t i = 0; i < ne; i++) {
            int64_t d = dt_get_i64(got->dtype, got->data, (size_t)i) -
                        dt_get_i64(want->dtype, want->data, (size_t)i);
            if (d == 0) continue;
            if (loose && (d == 1 || d == -1)) {
                off1++;
                continue;
            }
            if (first < 0) first = i;
            bad++;
        }
        if (off1 > 2 && off1 * 100 > ne) {
            bad += off1;
            if (first < 0) first = 0;
        }
        if (bad == 0) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s %s: %lld of %lld differ, first at %lld: got %lld want %lld\n",
                    t->name, desc, (long long)bad, (long long)ne, (long long)first,
                    (long long)dt_get_i64(got->dtype, got->data, (size_t)first),
                    (long long)dt_get_i64(want->dtype, want->data, (size_t)first));
            g_fail++;
        }
        tensor_free(got);
    }
    if (must_decline) g_declines_expected++;
    tensor_free(want);
    return ran;
}

/* One random QLinearConv case. kind: 0 plain (group 1, int8 w, zp 0),
** 1 grouped/depthwise, 2 uint8 weights or weight zero points, 3 Gemm form,
** 4 plain with a reduced workspace. */
static void qconv_case(int it, int kind) {
    bool one_d = kind != 3 && kind != 4 && it % 9 == 4;
    int r = one_d ? 3 : 4;
    kiln_dtype xt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype wt = kind == 2 && it % 2 ? KILN_DTYPE_UINT8 : KILN_DTYPE_INT8;
    static const int64_t chans[] = {1, 3, 5, 8, 17, 33, 64};
    int64_t N = it % 5 == 0 ? 1 : gt_irand(1, 3);
    int64_t C = chans[gt_irand(0, 6)], M = chans[gt_irand(0, 6)] + (it % 3 == 0 ? 2 : 0);
    int64_t group = 1;
    if (kind == 1) {
        if (it % 2) { /* depthwise */
            group = C;
            M = C * gt_irand(1, 2);
        } else {
            group = gt_irand(2, 3);
            C = group * gt_irand(1, 5);
            M = group * gt_irand(1, 4);
        }
    }
    int64_t kh = one_d ? 1 : gt_irand(1, 3), kw = gt_irand(1, 3);
    if (it % 11 == 0 && !one_d) kh = kw = 7;
    int64_t sh = gt_irand(1, 2), sw = gt_irand(1, 2), dh = it % 7 == 3 ? 2 : 1, dw = dh;
    int64_t pads[4] = {gt_irand(0, 2), gt_irand(0, 2), gt_irand(0, 2), gt_irand(0, 2)};
    int64_t H = one_d ? 1 : gt_irand(1, 13), W = gt_irand(1, 15);
    if (kind == 3) { /* [rows, K, 1, 1] */
        N = it % 4 == 0 ? 1 : gt_irand(1, 40);
        C = it % 2 ? 16 * gt_irand(1, 8) : gt_irand(1, 70);
        M = gt_irand(1, 70);
        kh = kw = H = W = 1;
        sh = sw = dh = dw = 1;
        memset(pads, 0, sizeof pads);
    }
    if (kind == 4) { /* enough rows that half the workspace still holds several */
        N = 3;
        H = gt_irand(20, 30);
        W = gt_irand(20, 30);
        if (kh == 7) kh = kw = 3;
    }
    /* keep the output non-empty */
    if (!one_d && H + pads[0] + pads[2] < dh * (kh - 1) + 1) H = dh * (kh - 1) + 1;
    if (W + pads[1] + pads[3] < dw * (kw - 1) + 1) W = dw * (kw - 1) + 1;
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C / group, kh, kw};
    if (one_d) xd[2] = W, wd[2] = kw;
    kiln_tensor *in[9] = {0};
    in[0] = rand_q8(xt, r, xd);
    in[3] = rand_q8(wt, r, wd);
    int64_t K = (C / group) * kh * kw;
    double xs = 0.01 + rnd() * 0.05;
    bool per_ch = it % 3 != 1;
    double *ws = malloc((size_t)M * sizeof *ws), *wz = malloc((size_t)M * sizeof *wz);
    double *b = malloc((size_t)M * sizeof *b);
    if (!ws || !wz || !b) gt_die("oom");
    for (int64_t m = 0; m < M; m++) {
        ws[m] = 0.002 + rnd() * 0.03;
        wz[m] = kind == 2 ? (wt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(100, 150)) : 0;
        b[m] = gt_irand(-20000, 20000);
    }
    /* y scale: about the accumulators' spread, some saturation */
    double ys = xs * ws[0] * sqrt((double)K) * 60 * (0.2 + rnd() * 1.5);
    in[1] = scalar_t(KILN_DTYPE_FLOAT32, xs, it % 4 == 1);
    in[2] = scalar_t(xt, xt == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[4] = per_ch ? vec_t(KILN_DTYPE_FLOAT32, M, ws) : scalar_t(KILN_DTYPE_FLOAT32, ws[0], false);
    in[5] = per_ch ? vec_t(wt, M, wz) : scalar_t(wt, wz[0], false);
    in[6] = scalar_t(KILN_DTYPE_FLOAT32, ys, false);
    in[7] = scalar_t(yt, yt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(0, 130), false);
    bool bias = it % 4 != 2;
    if (bias) in[8] = vec_t(KILN_DTYPE_INT32, M, b);
    ir_node *n = gt_node_n(OP_QLinearConv, bias ? 9 : 8, 1);
    for (int i = 0; i < n->n_in; i++) {
        /* weights and their zero points are constants, as in engines; the
        ** rest alternates between constants and runtime tensors */
        bool cst = i == 3 || i == 5 || (i != 0 && it % 2 == 0);
        if (cst) gt_const_in(n, i, in[i]);
        else gt_rt_in(n, i);
    }
    const char *ap = "NOTSET";
    if (kind == 0 && it % 13 == 5) ap = it % 2 ? "SAME_UPPER" : "SAME_LOWER";
    if (strcmp(ap, "NOTSET")) {
        ir_edit_set_str(n, "auto_pad", ap);
    } else {
        int64_t p[4];
        if (one_d) p[0] = pads[1], p[1] = pads[3];
        else memcpy(p, pads, sizeof p);
        ir_edit_set_ints(n, "pads", p, one_d ? 2 : 4);
    }
    int64_t st[2] = {sh, sw}, dl[2] = {dh, dw};
    ir_edit_set_ints(n, "strides", one_d ? st + 1 : st, one_d ? 1 : 2);
    ir_edit_set_ints(n, "dilations", one_d ? dl + 1 : dl, one_d ? 1 : 2);
    ir_edit_set_int(n, "group", group);
    char desc[300];
    snprintf(desc, sizeof desc,
             "QLinearConv#%d kind %d x %s w %s y %s N %lld C %lld M %lld %s %lldx%lld k %lldx%lld "
             "s %lld,%lld d %lld pads %lld,%lld,%lld,%lld %s g %lld %s%s",
             it, kind, kiln_dtype_name(xt), kiln_dtype_name(wt), kiln_dtype_name(yt),
             (long long)N, (long long)C, (long long)M, one_d ? "1-D" : "2-D", (long long)H,
             (long long)W, (long long)kh, (long long)kw, (long long)sh, (long long)sw,
             (long long)dh, (long long)pads[0], (long long)pads[1], (long long)pads[2],
             (long long)pads[3], ap, (long long)group, per_ch ? "per-channel" : "per-tensor",
             bias ? " bias" : "");
    bool zp_nonzero = false;
    for (int64_t m = 0; m < (per_ch ? M : 1); m++) zp_nonzero |= wz[m] != 0;
    bool gemm_ok = group == 1 && wt == KILN_DTYPE_INT8 && !zp_nonzero;
    check_all(n, in, desc, gemm_ok ? "lt_i8" : "direct", gemm_ok ? NULL : "lt_i8",
              kind == 4 ? 0.5 : 1.0);
    for (int i = 0; i < 9; i++) tensor_free(in[i]);
    free(ws);
    free(wz);
    free(b);
}

/* 3-D QLinearConv (NCDHW): the direct kernel takes it, the GEMM tactics
** decline it. */
static void qconv3d_case(int it) {
    kiln_dtype xt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t group = it % 3 == 2 ? 2 : 1;
    int64_t N = gt_irand(1, 2), C = group * gt_irand(1, 3), M = group * gt_irand(1, 5);
    int64_t k[3], st[3], dl[3], pads[6], sp[3];
    for (int i = 0; i < 3; i++) {
        k[i] = gt_irand(1, 3);
        st[i] = gt_irand(1, 2);
        dl[i] = it % 4 == 3 ? 2 : 1;
        pads[i] = gt_irand(0, 1);
        pads[i + 3] = gt_irand(0, 1);
        sp[i] = gt_irand(1, 6);
        if (sp[i] + pads[i] + pads[i + 3] < dl[i] * (k[i] - 1) + 1) sp[i] = dl[i] * (k[i] - 1) + 1;
    }
    int64_t xd[5] = {N, C, sp[0], sp[1], sp[2]}, wd[5] = {M, C / group, k[0], k[1], k[2]};
    kiln_tensor *in[9] = {0};
    in[0] = rand_q8(xt, 5, xd);
    in[3] = rand_q8(KILN_DTYPE_INT8, 5, wd);
    double ws[16], wz[16], b[16];
    for (int64_t m = 0; m < M; m++) {
        ws[m] = 0.002 + rnd() * 0.03;
        wz[m] = 0;
        b[m] = gt_irand(-5000, 5000);
    }
    double xs = 0.01 + rnd() * 0.05;
    double ys = xs * ws[0] * sqrt((double)(C / group * k[0] * k[1] * k[2])) * 40;
    in[1] = scalar_t(KILN_DTYPE_FLOAT32, xs, false);
    in[2] = scalar_t(xt, xt == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[4] = vec_t(KILN_DTYPE_FLOAT32, M, ws);
    in[5] = vec_t(KILN_DTYPE_INT8, M, wz);
    in[6] = scalar_t(KILN_DTYPE_FLOAT32, ys, false);
    in[7] = scalar_t(yt, yt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(0, 130), false);
    in[8] = vec_t(KILN_DTYPE_INT32, M, b);
    ir_node *n = gt_node_n(OP_QLinearConv, 9, 1);
    for (int i = 0; i < 9; i++) {
        if (i == 0) gt_rt_in(n, i);
        else gt_const_in(n, i, in[i]);
    }
    ir_edit_set_ints(n, "pads", pads, 6);
    ir_edit_set_ints(n, "strides", st, 3);
    ir_edit_set_ints(n, "dilations", dl, 3);
    ir_edit_set_int(n, "group", group);
    char desc[240];
    snprintf(desc, sizeof desc,
             "QLinearConv3D#%d x %s y %s N %lld C %lld M %lld %lldx%lldx%lld k %lldx%lldx%lld "
             "g %lld",
             it, kiln_dtype_name(xt), kiln_dtype_name(yt), (long long)N, (long long)C,
             (long long)M, (long long)sp[0], (long long)sp[1], (long long)sp[2], (long long)k[0],
             (long long)k[1], (long long)k[2], (long long)group);
    check_all(n, in, desc, "direct", "lt_i8", 1.0);
    for (int i = 0; i < 9; i++) tensor_free(in[i]);
}

static void maxpool_case(int it) {
    kiln_dtype dt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    bool one_d = it % 5 == 3;
    int r = one_d ? 3 : 4;
    int64_t k[2] = {gt_irand(1, 3), gt_irand(1, 3)}, s[2] = {gt_irand(1, 2), gt_irand(1, 2)};
    int64_t p[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) p[i] = gt_irand(0, k[i % 2] - 1);
    int64_t xd[4] = {gt_irand(1, 3), gt_irand(1, 19), gt_irand(k[0], 14), gt_irand(k[1], 14)};
    if (one_d) xd[2] = xd[3];
    kiln_tensor *in[1] = {rand_q8(dt, r, xd)};
    ir_node *n = gt_node_n(OP_MaxPool, 1, 1);
    gt_rt_in(n, 0);
    int64_t p1[2] = {p[1], p[3]};
    ir_edit_set_ints(n, "kernel_shape", one_d ? k + 1 : k, one_d ? 1 : 2);
    ir_edit_set_ints(n, "strides", one_d ? s + 1 : s, one_d ? 1 : 2);
    ir_edit_set_ints(n, "pads", one_d ? p1 : p, one_d ? 2 : 4);
    if (it % 4 == 1) ir_edit_set_int(n, "ceil_mode", 1);
    char desc[160];
    snprintf(desc, sizeof desc, "MaxPool#%d %s %s %lldx%lldx%lldx%lld k %lldx%lld", it,
             kiln_dtype_name(dt), one_d ? "1-D" : "2-D", (long long)xd[0], (long long)xd[1],
             (long long)xd[2], (long long)xd[3], (long long)k[0], (long long)k[1]);
    check_all(n, in, desc, "maxpool", NULL, 1.0);
    tensor_free(in[0]);
}

static void qadd_case(int it) {
    kiln_dtype at = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype bt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = (it / 4) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t d[3] = {gt_irand(1, 3), gt_irand(1, 33), gt_irand(1, 257)};
    kiln_tensor *in[8] = {0};
    in[0] = rand_q8(at, 3, d);
    in[3] = rand_q8(bt, 3, d);
    in[1] = scalar_t(KILN_DTYPE_FLOAT32, 0.01 + rnd() * 0.1, false);
    in[2] = scalar_t(at, at == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[4] = scalar_t(KILN_DTYPE_FLOAT32, 0.01 + rnd() * 0.1, it % 3 == 0);
    in[5] = scalar_t(bt, bt == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[6] = scalar_t(KILN_DTYPE_FLOAT32, 0.02 + rnd() * 0.1, false);
    in[7] = scalar_t(yt, yt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(0, 50), false);
    ir_node *n = gt_node_n(OP_QAdd, 8, 1);
    for (int i = 0; i < 8; i++) {
        if (i == 0 || i == 3 || it % 2) gt_rt_in(n, i);
        else gt_const_in(n, i, in[i]);
    }
    char desc[160];
    snprintf(desc, sizeof desc, "QAdd#%d %s + %s -> %s %lldx%lldx%lld", it, kiln_dtype_name(at),
             kiln_dtype_name(bt), kiln_dtype_name(yt), (long long)d[0], (long long)d[1],
             (long long)d[2]);
    check_all(n, in, desc, "qadd", NULL, 1.0);
    for (int i = 0; i < 8; i++) tensor_free(in[i]);
}

/* NCHW -> NHWC of a rank-4 tensor of 1-byte elements (x: [N,C,H,W]); for
** weights the same gives KRSC. */
static kiln_tensor *to_nhwc8(const kiln_tensor *x) {
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t d[4] = {N, H, W, C};
    kiln_tensor *y;
    if (tensor_new(x->dtype, 4, d, &y)) gt_die("tensor_new");
    const uint8_t *a = x->data;
    uint8_t *b = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    b[((n * H + h) * W + w) * C + c] = a[((n * C + c) * H + h) * W + w];
    return y;
}

/* One random NhwcQLinearConv case (the channels-last pass's op: X NHWC, W
** KRSC, Y NHWC). kind 0: plain (group 1, int8 w, zp 0), channel counts
** that take every im2col width (16, 8, 4 bytes, 1); 1: 1x1 stride 1 (x
** read in place for int8 x with C % 16 == 0; uint8 x shifted); 2: uint8
** weights or weight zero points (direct kernel only); 3: the GEMM path
** with half the workspace it asked for (several row chunks). Checked
** against the reference (ref_layout.c: QLinearConv on transposed data).
** kind 4: C and M multiples of 16 and x_zp 0, what the SM90 implicit-GEMM
** convolution takes (where it is built in). */
static void nhwc_qconv_case(int it, int kind) {
    kiln_dtype xt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype wt = kind == 2 && it % 2 ? KILN_DTYPE_UINT8 : KILN_DTYPE_INT8;
    static const int64_t chans[] = {1, 3, 4, 8, 12, 16, 24, 32, 48, 64, 17, 80};
    int64_t N = it % 5 == 0 ? 1 : gt_irand(1, 3);
    int64_t C = chans[gt_irand(0, 11)], M = chans[gt_irand(0, 11)] + (it % 4 == 3 ? 1 : 0);
    int64_t kh = gt_irand(1, 3), kw = kh, sh = gt_irand(1, 2), sw = sh;
    if (it % 7 == 0) kh = kw = 7, sh = sw = 2;
    int64_t p = kh / 2;
    int64_t pads[4] = {p, p, p, p};
    if (it % 9 == 4) pads[2] = pads[3] = 0; /* asymmetric: the op allows it */
    int64_t H = gt_irand(1, 15), W = gt_irand(1, 15), dl = it % 11 == 5 ? 2 : 1;
    if (kind == 1) {
        kh = kw = sh = sw = 1, dl = 1;
        memset(pads, 0, sizeof pads);
        C = it % 3 ? 16 * gt_irand(1, 6) : chans[gt_irand(0, 11)];
    }
    if (kind == 3) {
        N = 3;
        H = gt_irand(20, 30);
        W = gt_irand(20, 30);
        if (kh == 7) kh = kw = 3, pads[0] = pads[1] = pads[2] = pads[3] = 1;
    }
    if (kind == 4) { /* what the SM90 convolution takes: C, M % 16, x_zp 0 */
        static const int64_t c16[] = {16, 32, 48, 64, 80, 128};
        C = c16[gt_irand(0, 5)];
        M = c16[gt_irand(0, 5)];
    }
    if (H + pads[0] + pads[2] < dl * (kh - 1) + 1) H = dl * (kh - 1) + 1;
    if (W + pads[1] + pads[3] < dl * (kw - 1) + 1) W = dl * (kw - 1) + 1;
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C, kh, kw};
    kiln_tensor *xc = rand_q8(xt, 4, xd), *wc = rand_q8(wt, 4, wd);
    kiln_tensor *in[9] = {0};
    in[0] = to_nhwc8(xc);
    in[3] = to_nhwc8(wc);
    tensor_free(xc);
    tensor_free(wc);
    int64_t K = C * kh * kw;
    double xs = 0.01 + rnd() * 0.05;
    bool per_ch = it % 3 != 1;
    double *ws = malloc((size_t)M * sizeof *ws), *wz = malloc((size_t)M * sizeof *wz);
    double *b = malloc((size_t)M * sizeof *b);
    if (!ws || !wz || !b) gt_die("oom");
    for (int64_t m = 0; m < M; m++) {
        ws[m] = 0.002 + rnd() * 0.03;
        wz[m] = kind == 2 ? (wt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(100, 150)) : 0;
        b[m] = gt_irand(-20000, 20000);
    }
    double ys = xs * ws[0] * sqrt((double)K) * 60 * (0.2 + rnd() * 1.5);
    in[1] = scalar_t(KILN_DTYPE_FLOAT32, xs, it % 4 == 1);
    in[2] = scalar_t(xt, kind == 4                   ? 0
                         : xt == KILN_DTYPE_INT8 ? gt_irand(-20, 20)
                                                 : gt_irand(0, 255),
                     false);
    in[4] = per_ch ? vec_t(KILN_DTYPE_FLOAT32, M, ws) : scalar_t(KILN_DTYPE_FLOAT32, ws[0], false);
    in[5] = per_ch ? vec_t(wt, M, wz) : scalar_t(wt, wz[0], false);
    in[6] = scalar_t(KILN_DTYPE_FLOAT32, ys, false);
    in[7] = scalar_t(yt, yt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(0, 130), false);
    bool bias = it % 4 != 2;
    if (bias) in[8] = vec_t(KILN_DTYPE_INT32, M, b);
    ir_node *n = gt_node_n(OP_NhwcQLinearConv, bias ? 9 : 8, 1);
    for (int i = 0; i < n->n_in; i++) {
        /* kind 4: x_zp a constant (the SM90 tactic reads it at build) */
        bool cst = i == 3 || i == 5 || (i == 2 && kind == 4) || (i != 0 && it % 2 == 0);
        if (cst) gt_const_in(n, i, in[i]);
        else gt_rt_in(n, i);
    }
    int64_t st[2] = {sh, sw}, dls[2] = {dl, dl};
    ir_edit_set_ints(n, "pads", pads, 4);
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "dilations", dls, 2);
    char desc[300];
    snprintf(desc, sizeof desc,
             "NhwcQLinearConv#%d kind %d x %s w %s y %s N %lld C %lld M %lld %lldx%lld k %lld "
             "s %lld d %lld pads %lld,%lld,%lld,%lld %s%s",
             it, kind, kiln_dtype_name(xt), kiln_dtype_name(wt), kiln_dtype_name(yt),
             (long long)N, (long long)C, (long long)M, (long long)H, (long long)W, (long long)kh,
             (long long)sh, (long long)dl, (long long)pads[0], (long long)pads[1],
             (long long)pads[2], (long long)pads[3], per_ch ? "per-channel" : "per-tensor",
             bias ? " bias" : "");
    bool zp_nonzero = false;
    for (int64_t m = 0; m < (per_ch ? M : 1); m++) zp_nonzero |= wz[m] != 0;
    bool gemm_ok = wt == KILN_DTYPE_INT8 && !zp_nonzero;
    check_all(n, in, desc, gemm_ok ? "nhwc_qconv_lt_i8" : "nhwc_qconv_direct",
              gemm_ok ? NULL : "lt_i8", kind == 3 ? 0.5 : 1.0);
    for (int i = 0; i < 9; i++) tensor_free(in[i]);
    free(ws);
    free(wz);
    free(b);
}

/* NhwcMaxPool of 8-bit data: channel counts that take the 16-, 4- and
** 1-byte kernels. */
static void nhwc_maxpool_case(int it) {
    kiln_dtype dt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    static const int64_t chans[] = {1, 3, 4, 12, 16, 17, 32, 64};
    int64_t k[2] = {gt_irand(1, 3), gt_irand(1, 3)}, s[2] = {gt_irand(1, 2), gt_irand(1, 2)};
    int64_t p[4];
    for (int i = 0; i < 4; i++) p[i] = gt_irand(0, k[i % 2] - 1);
    int64_t xd[4] = {gt_irand(1, 3), gt_irand(k[0], 14), gt_irand(k[1], 14), chans[it % 8]};
    kiln_tensor *in[1] = {rand_q8(dt, 4, xd)};
    ir_node *n = gt_node_n(OP_NhwcMaxPool, 1, 1);
    gt_rt_in(n, 0);
    ir_edit_set_ints(n, "kernel_shape", k, 2);
    ir_edit_set_ints(n, "strides", s, 2);
    ir_edit_set_ints(n, "pads", p, 4);
    char desc[160];
    snprintf(desc, sizeof desc, "NhwcMaxPool#%d %s %lldx%lldx%lldx%lld k %lldx%lld", it,
             kiln_dtype_name(dt), (long long)xd[0], (long long)xd[1], (long long)xd[2],
             (long long)xd[3], (long long)k[0], (long long)k[1]);
    check_all(n, in, desc, "maxpool", NULL, 1.0);
    tensor_free(in[0]);
}

/* QAdd over channels-last sizes: n % 16 == 0 takes the 16-byte kernel. */
static void qadd_vec_case(int it) {
    kiln_dtype at = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype bt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = (it / 4) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t d[4] = {gt_irand(1, 3), gt_irand(1, 9), gt_irand(1, 9), 16 * gt_irand(1, 8)};
    kiln_tensor *in[8] = {0};
    in[0] = rand_q8(at, 4, d);
    in[3] = rand_q8(bt, 4, d);
    in[1] = scalar_t(KILN_DTYPE_FLOAT32, 0.01 + rnd() * 0.1, false);
    in[2] = scalar_t(at, at == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[4] = scalar_t(KILN_DTYPE_FLOAT32, 0.01 + rnd() * 0.1, false);
    in[5] = scalar_t(bt, bt == KILN_DTYPE_INT8 ? gt_irand(-20, 20) : gt_irand(0, 255), false);
    in[6] = scalar_t(KILN_DTYPE_FLOAT32, 0.02 + rnd() * 0.1, false);
    in[7] = scalar_t(yt, yt == KILN_DTYPE_INT8 ? gt_irand(-10, 10) : gt_irand(0, 50), false);
    ir_node *n = gt_node_n(OP_QAdd, 8, 1);
    for (int i = 0; i < 8; i++) {
        if (i == 0 || i == 3) gt_rt_in(n, i);
        else gt_const_in(n, i, in[i]);
    }
    char desc[160];
    snprintf(desc, sizeof desc, "QAdd16#%d %s + %s -> %s %lldx%lldx%lldx%lld", it,
             kiln_dtype_name(at), kiln_dtype_name(bt), kiln_dtype_name(yt), (long long)d[0],
             (long long)d[1], (long long)d[2], (long long)d[3]);
    check_all(n, in, desc, "qadd", NULL, 1.0);
    for (int i = 0; i < 8; i++) tensor_free(in[i]);
}

/* ToNhwc (with and without channel padding) and ToNchw of 8-bit values:
** the reformat layers at the borders of INT8 chains (cuda_pool.c). */
static void reformat8_case(int it) {
    kiln_dtype dt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t C = gt_irand(1, 40), H = gt_irand(1, 20), W = gt_irand(1, 20), N = gt_irand(1, 3);
    bool back = it % 3 == 2;
    int64_t xd[4] = {N, C, H, W}, xh[4] = {N, H, W, C};
    kiln_tensor *in[1] = {rand_q8(dt, 4, back ? xh : xd)};
    int op = back ? OP_ToNchw : OP_ToNhwc;
    ir_node *n = gt_node_n(op, 1, 1);
    gt_rt_in(n, 0);
    int64_t cp = !back && it % 3 == 1 ? (C + 15) / 16 * 16 : -1;
    if (cp > 0) ir_edit_set_int(n, "channels", cp);
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    char desc[160];
    snprintf(desc, sizeof desc, "%s#%d %s %lldx%lldx%lldx%lld channels %lld", op_name(op), it,
             kiln_dtype_name(dt), (long long)N, (long long)C, (long long)H, (long long)W,
             (long long)cp);
    const kiln_tactic *ts[8];
    int nt = gt_tactics(cuda_tactics_pool, op, ts, 8), ran = 0;
    for (int k = 0; want && k < nt; k++) {
        bool declined;
        kiln_tensor *got = run_tactic(ts[k], n, in, want, 1.0, &declined);
        if (declined) continue;
        ran++;
        if (got && memcmp(got->data, want->data, want->nbytes) == 0) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                    got ? "differs from the reference" : "run failed");
            g_fail++;
        }
        tensor_free(got);
    }
    if (!want || (!ran && !g_only)) {
        fprintf(stderr, "FAIL %s: %s\n", desc, want ? "no device tactic took it" : "reference");
        g_fail++;
    }
    tensor_free(want);
    tensor_free(in[0]);
}

/* QuantizeLinear of a float16 (or bfloat16) x with a float32 scale: what
** the precision pass leaves behind a half layer in --fp16 builds of INT8
** models (passes/precision.c); must equal the reference exactly. */
static void quant_half_case(int it) {
    kiln_dtype xt = it % 3 == 2 ? KILN_DTYPE_BFLOAT16 : KILN_DTYPE_FLOAT16;
    kiln_dtype qt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t d[3] = {gt_irand(1, 3), gt_irand(1, 17), gt_irand(1, 300)};
    kiln_tensor *in[3] = {gt_rand_range(xt, 3, d, -8, 8),
                          scalar_t(KILN_DTYPE_FLOAT32, 0.01 + rnd() * 0.1, it % 4 == 0),
                          scalar_t(qt, qt == KILN_DTYPE_INT8 ? gt_irand(-5, 5) : gt_irand(0, 20),
                                   false)};
    ir_node *n = gt_node_n(OP_QuantizeLinear, 3, 1);
    gt_rt_in(n, 0);
    gt_const_in(n, 1, in[1]);
    gt_const_in(n, 2, in[2]);
    n->out[0]->type.dtype = qt;
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    char desc[160];
    snprintf(desc, sizeof desc, "QuantizeLinear#%d %s x, float32 scale -> %s %lldx%lldx%lld", it,
             kiln_dtype_name(xt), kiln_dtype_name(qt), (long long)d[0], (long long)d[1],
             (long long)d[2]);
    const kiln_tactic *ts[8];
    int nt = gt_tactics(cuda_tactics_eltwise, OP_QuantizeLinear, ts, 8);
    int ran = 0;
    for (int k = 0; want && k < nt; k++) {
        bool declined;
        kiln_tensor *got = run_tactic(ts[k], n, in, want, 1.0, &declined);
        if (declined) continue;
        ran++;
        if (got && memcmp(got->data, want->data, want->nbytes) == 0) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                    got ? "differs from the reference" : "run failed");
            g_fail++;
        }
        tensor_free(got);
    }
    if (!want || (!ran && !g_only)) {
        fprintf(stderr, "FAIL %s: %s\n", desc, want ? "no device tactic took it" : "reference");
        g_fail++;
    }
    tensor_free(want);
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
}

/* DequantizeLinear of int8/uint8 data with a float32 scale writing float16
** or bfloat16 (output_dtype, set by the precision pass where every reader
** computes in half): exact against the reference. */
static void dequant_half_case(int it) {
    kiln_dtype yt = it % 3 == 2 ? KILN_DTYPE_BFLOAT16 : KILN_DTYPE_FLOAT16;
    kiln_dtype qt = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t d[3] = {gt_irand(1, 3), gt_irand(1, 17), gt_irand(1, 300)};
    kiln_tensor *in[3] = {rand_q8(qt, 3, d),
                          scalar_t(KILN_DTYPE_FLOAT32, 0.001 + rnd() * 0.3, it % 4 == 0),
                          scalar_t(qt, qt == KILN_DTYPE_INT8 ? gt_irand(-5, 5) : gt_irand(0, 20),
                                   false)};
    ir_node *n = gt_node_n(OP_DequantizeLinear, 3, 1);
    gt_rt_in(n, 0);
    gt_const_in(n, 1, in[1]);
    gt_const_in(n, 2, in[2]);
    ir_edit_set_int(n, "output_dtype", yt);
    n->out[0]->type.dtype = yt;
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    char desc[160];
    snprintf(desc, sizeof desc, "DequantizeLinear#%d %s, float32 scale -> %s %lldx%lldx%lld", it,
             kiln_dtype_name(qt), kiln_dtype_name(yt), (long long)d[0], (long long)d[1],
             (long long)d[2]);
    const kiln_tactic *ts[8];
    int nt = gt_tactics(cuda_tactics_eltwise, OP_DequantizeLinear, ts, 8);
    int ran = 0;
    for (int k = 0; want && k < nt; k++) {
        bool declined;
        kiln_tensor *got = run_tactic(ts[k], n, in, want, 1.0, &declined);
        if (declined) continue;
        ran++;
        if (got && want->dtype == yt && memcmp(got->data, want->data, want->nbytes) == 0) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                    got ? "differs from the reference" : "run failed");
            g_fail++;
        }
        tensor_free(got);
    }
    if (!want || (!ran && !g_only)) {
        fprintf(stderr, "FAIL %s: %s\n", desc, want ? "no device tactic took it" : "reference");
        g_fail++;
    }
    tensor_free(want);
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
}

/* Per-tensor QuantizeLinear / DequantizeLinear between float32 / float16 /
** bfloat16 and int8 / uint8 with sizes that are multiples of 8 (the 8-wide
** kernels of cast_small.cu), zero point or none: exact against the
** reference. */
static void qdq_vec_case(int it) {
    static const kiln_dtype fts[3] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                      KILN_DTYPE_BFLOAT16};
    kiln_dtype ft = fts[it % 3];
    kiln_dtype qt = (it / 3) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    bool quant = (it / 6) % 2 == 0, zp = it % 5 != 4;
    int64_t d[3] = {gt_irand(1, 3), gt_irand(1, 17), 8 * gt_irand(1, 40)};
    double sc = 0.001 + rnd() * 0.3;
    kiln_tensor *in[3] = {quant ? gt_rand_range(ft, 3, d, -sc * 160, sc * 160)
                                : rand_q8(qt, 3, d),
                          scalar_t(KILN_DTYPE_FLOAT32, sc, false),
                          zp ? scalar_t(qt, qt == KILN_DTYPE_INT8 ? gt_irand(-5, 5)
                                                                  : gt_irand(100, 150),
                                        false)
                             : NULL};
    int op = quant ? OP_QuantizeLinear : OP_DequantizeLinear;
    ir_node *n = gt_node_n(op, zp ? 3 : 2, 1);
    gt_rt_in(n, 0);
    gt_const_in(n, 1, in[1]);
    if (zp) gt_const_in(n, 2, in[2]);
    if (!quant && ft != KILN_DTYPE_FLOAT32) ir_edit_set_int(n, "output_dtype", ft);
    n->out[0]->type.dtype = quant ? qt : ft;
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    char desc[160];
    snprintf(desc, sizeof desc, "%s#%d %s -> %s%s %lldx%lldx%lld", op_name(op), it,
             kiln_dtype_name(quant ? ft : qt), kiln_dtype_name(quant ? qt : ft),
             zp ? "" : " (no zero point)", (long long)d[0], (long long)d[1], (long long)d[2]);
    const kiln_tactic *ts[8];
    int nt = gt_tactics(cuda_tactics_eltwise, op, ts, 8), ran = 0;
    for (int k = 0; want && k < nt; k++) {
        bool declined;
        kiln_tensor *got = run_tactic(ts[k], n, in, want, 1.0, &declined);
        if (declined) continue;
        ran++;
        if (got && got->dtype == want->dtype && memcmp(got->data, want->data, want->nbytes) == 0) {
            g_pass++;
        } else {
            fprintf(stderr, "FAIL %s %s: %s\n", ts[k]->name, desc,
                    got ? "differs from the reference" : "run failed");
            g_fail++;
        }
        tensor_free(got);
    }
    if (!want || (!ran && !g_only)) {
        fprintf(stderr, "FAIL %s: %s\n", desc, want ? "no device tactic took it" : "reference");
        g_fail++;
    }
    tensor_free(want);
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
}

/* quantize_dynamic's products on the device (ConvInteger, MatMulInteger and
** the *ToFloat forms of passes/qdyn.c): every tactic for the op against the
** reference, byte for byte (exact integer sums; the float forms' two float32
** steps are the reference's). */
static void qint_check(ir_node *n, kiln_tensor *const *in, const char *desc) {
    kiln_tensor *want = gt_ref(n, (const kiln_tensor *const *)in);
    if (!want) {
        fprintf(stderr, "FAIL %s: the reference failed\n", desc);
        g_fail++;
        return;
    }
    int ran = 0;
    for (const kiln_tactic *const *tp = cuda_tactics_qconv; *tp; tp++) {
        const kiln_tactic *t = *tp;
        if (t->op != n->op) continue;
        bool declined;
        kiln_tensor *got = run_tactic(t, n, in, want, 1.0, &declined);
        if (declined) {
            fprintf(stderr, "FAIL %s %s: declined\n", t->name, desc);
            g_fail++;
            continue;
        }
        ran++;
        if (!got) {
            g_fail++;
            continue;
        }
        if (got->nbytes == want->nbytes && !memcmp(got->data, want->data, want->nbytes)) {
            g_pass++;
        } else {
            int64_t ne = tensor_numel(want), first = 0;
            size_t es = kiln_dtype_size(want->dtype);
            while (first < ne && !memcmp((char *)got->data + first * es,
                                         (char *)want->data + first * es, es))
                first++;
            fprintf(stderr, "FAIL %s %s: differs from element %lld: got %.9g want %.9g\n",
                    t->name, desc, (long long)first,
                    dt_get_f64(got->dtype, got->data, (size_t)(first < ne ? first : 0)),
                    dt_get_f64(want->dtype, want->data, (size_t)(first < ne ? first : 0)));
            g_fail++;
        }
        tensor_free(got);
    }
    if (!ran) {
        fprintf(stderr, "FAIL %s: no device tactic\n", desc);
        g_fail++;
    }
    tensor_free(want);
}

static void convint_case(int it) {
    bool tof = it % 2 == 1;
    kiln_dtype xt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype wt = (it / 4) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t group = it % 5 == 4 ? gt_irand(2, 3) : 1;
    int64_t cpg = gt_irand(1, 6), mpg = gt_irand(1, 5), M = mpg * group;
    int64_t k = gt_irand(1, 3), s = gt_irand(1, 2), pad = gt_irand(0, k - 1);
    int64_t xd[4] = {gt_irand(1, 2), cpg * group, gt_irand(k, 13), gt_irand(k, 13)};
    int64_t wd[4] = {M, cpg, k, k};
    kiln_tensor *in[6] = {0};
    in[0] = rand_q8(xt, 4, xd);
    in[1] = rand_q8(wt, 4, wd);
    if (it % 3 != 0) in[2] = scalar_t(xt, xt == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255), false);
    if (it % 3 == 1) {
        in[3] = scalar_t(wt, wt == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255), false);
    } else if (it % 3 == 2) {
        double z[64];
        for (int64_t m = 0; m < M; m++) z[m] = wt == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255);
        in[3] = vec_t(wt, M, z);
    }
    if (tof) {
        double sv[64], bv[64];
        for (int64_t m = 0; m < M; m++) sv[m] = 1e-4 + rnd() * 1e-2, bv[m] = rnd() * 2 - 1;
        in[4] = it % 4 == 1 ? scalar_t(KILN_DTYPE_FLOAT32, sv[0], false)
                            : vec_t(KILN_DTYPE_FLOAT32, M, sv);
        if (it % 7 != 0) in[5] = vec_t(KILN_DTYPE_FLOAT32, M, bv);
    }
    int nin = tof ? 6 : 4;
    ir_node *n = gt_node_n(tof ? OP_ConvIntegerToFloat : OP_ConvInteger, nin, 1);
    for (int i = 0; i < nin; i++) {
        if (!in[i]) continue;
        if (i == 0 || i == 2) gt_rt_in(n, i);
        else gt_const_in(n, i, in[i]);
    }
    int64_t ks[2] = {k, k}, st[2] = {s, s}, pd[4] = {pad, pad, pad, pad};
    ir_edit_set_ints(n, "kernel_shape", ks, 2);
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "pads", pd, 4);
    if (group > 1) ir_edit_set_int(n, "group", group);
    char desc[200];
    snprintf(desc, sizeof desc, "%s#%d x %s w %s %lldx%lldx%lldx%lld M %lld k %lld s %lld p %lld g %lld",
             tof ? "ConvIntegerToFloat" : "ConvInteger", it, kiln_dtype_name(xt),
             kiln_dtype_name(wt), (long long)xd[0], (long long)xd[1], (long long)xd[2],
             (long long)xd[3], (long long)M, (long long)k, (long long)s, (long long)pad,
             (long long)group);
    qint_check(n, in, desc);
    for (int i = 0; i < 6; i++) tensor_free(in[i]);
}

static void matmulint_case(int it) {
    bool tof = it % 2 == 1;
    kiln_dtype at = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype bt = (it / 4) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int ra = 1 + it % 3;
    int64_t K = gt_irand(1, 70), N = gt_irand(1, 40), M = gt_irand(1, 37);
    int64_t ad[3], bd[2] = {K, N};
    if (ra == 1) ad[0] = K;
    else if (ra == 2) ad[0] = M, ad[1] = K;
    else ad[0] = gt_irand(1, 3), ad[1] = M, ad[2] = K;
    kiln_tensor *in[6] = {0};
    in[0] = rand_q8(at, ra, ad);
    in[1] = rand_q8(bt, 2, bd);
    if (it % 3 != 0) in[2] = scalar_t(at, at == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255), it % 2 == 0);
    if (it % 4 == 1) {
        in[3] = scalar_t(bt, bt == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255), false);
    } else if (it % 4 == 2) {
        double z[64];
        for (int64_t j = 0; j < N; j++) z[j] = bt == KILN_DTYPE_INT8 ? gt_irand(-9, 9) : gt_irand(0, 255);
        in[3] = vec_t(bt, N, z);
    }
    if (tof) {
        double sv[64], bv[64];
        for (int64_t j = 0; j < N; j++) sv[j] = 1e-4 + rnd() * 1e-2, bv[j] = rnd() * 2 - 1;
        in[4] = it % 5 == 1 ? scalar_t(KILN_DTYPE_FLOAT32, sv[0], false)
                            : vec_t(KILN_DTYPE_FLOAT32, N, sv);
        if (it % 7 != 0) in[5] = vec_t(KILN_DTYPE_FLOAT32, N, bv);
    }
    int nin = tof ? 6 : 4;
    ir_node *n = gt_node_n(tof ? OP_MatMulIntegerToFloat : OP_MatMulInteger, nin, 1);
    for (int i = 0; i < nin; i++) {
        if (!in[i]) continue;
        if (i == 0 || i == 2) gt_rt_in(n, i);
        else gt_const_in(n, i, in[i]);
    }
    char desc[200];
    snprintf(desc, sizeof desc, "%s#%d A %s rank %d M %lld K %lld B %s N %lld",
             tof ? "MatMulIntegerToFloat" : "MatMulInteger", it, kiln_dtype_name(at), ra,
             (long long)M, (long long)K, kiln_dtype_name(bt), (long long)N);
    qint_check(n, in, desc);
    for (int i = 0; i < 6; i++) tensor_free(in[i]);
}

int main(int argc, char **argv) {
    /* the SM90 int8 convolution is opt-in in builds; test it (unless 0) */
    setenv("KILN_QCONV_SM90", "1", 0);
    if (!gt_open(21)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_only = argc > 1 ? argv[1] : NULL;
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    for (int it = 0; it < 60; it++) qconv_case(it, 0);
    for (int it = 0; it < 20; it++) qconv_case(it, 1);
    for (int it = 0; it < 16; it++) qconv_case(it, 2);
    for (int it = 0; it < 30; it++) qconv_case(it, 3);
    for (int it = 0; it < 12; it++) qconv_case(it, 4);
    for (int it = 0; it < 16; it++) qconv3d_case(it);
    for (int it = 0; it < 30; it++) maxpool_case(it);
    for (int it = 0; it < 24; it++) qadd_case(it);
    for (int it = 0; it < 60; it++) nhwc_qconv_case(it, 0);
    for (int it = 0; it < 24; it++) nhwc_qconv_case(it, 1);
    for (int it = 0; it < 16; it++) nhwc_qconv_case(it, 2);
    for (int it = 0; it < 10; it++) nhwc_qconv_case(it, 3);
    for (int it = 0; it < 24; it++) nhwc_qconv_case(it, 4);
    for (int it = 0; it < 24; it++) nhwc_maxpool_case(it);
    for (int it = 0; it < 16; it++) qadd_vec_case(it);
    for (int it = 0; it < 18; it++) reformat8_case(it);
    for (int it = 0; it < 12; it++) quant_half_case(it);
    for (int it = 0; it < 12; it++) dequant_half_case(it);
    for (int it = 0; it < 36; it++) qdq_vec_case(it);
    for (int it = 0; it < 40; it++) convint_case(it);
    for (int it = 0; it < 40; it++) matmulint_case(it);
    printf("(%d cases where the GEMM tactics had to decline; %d wrongly taken)\n",
           g_declines_expected, g_declines_bad);
    gt_close();
    return test_summary();
}
