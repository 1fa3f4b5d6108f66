/* test_cpu_int8.c: the INT8 QLinearConv tactics (portable, AVX2, AVX-512
** VNNI, AMX: each one this host can run is called directly, so the AVX2
** path is tested on VNNI machines too) against the reference QLinearConv kernel on
** random awkward shapes: K not a multiple of 4, odd channel and position
** counts (edge tiles of 6 channels x 64 positions), 1x1 and 7x7 kernels,
** strides, dilations, asymmetric and SAME padding, groups and depthwise,
** uint8 and int8 activations and outputs, per-tensor and per-channel
** weight scales and zero points, extreme scales and zero points that
** saturate, an int32 accumulator that wraps, 1 and 3 threads. The tactics
** are designed to be bit-identical to the reference, so any difference
** fails. */
#include "../../src/backends/cpu/cpu_int8.h"
#include "../../src/backends/cpu/cpu_tactics.h"
#include "../../src/ir/ir_edit.h"
#include "kiln.h"

#include "test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static unsigned g_host;

static void die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

static int64_t irand(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() * (double)(hi - lo + 1));
}

static kiln_tensor *tens(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) die("tensor");
    return t;
}

static kiln_tensor *scalar_f(double v) {
    kiln_tensor *t = tens(KILN_DTYPE_FLOAT32, 0, NULL);
    ((float *)t->data)[0] = (float)v;
    return t;
}

static kiln_tensor *scalar_q(kiln_dtype dt, int64_t v) {
    kiln_tensor *t = tens(dt, 0, NULL);
    dt_set_i64(dt, t->data, 0, v);
    return t;
}

typedef struct qcase {
    int64_t N, C, H, W, M, G, kh, kw, sh, sw, dh, dw, pads[4];
    const char *auto_pad;
    bool xs8, ys8, per_ch, wzp, bias, extreme, wrap;
    bool w7; /* weights in [-64, 63]: the 7-bit AVX2 tactic runs too */
    int wneg; /* with wrap: 1 every weight -128; 2 rows alternate 127 / -128 */
} qcase;

static int g_blob_runs;   /* runs that used a prepared blob */
static int g_wino_cases;  /* cases the Winograd tactic ran */
static int g_c4_cases;    /* cases the NCHW4 tactic ran */
static int g_amx_cases;   /* cases the AMX tactic ran */

static int run_tactic(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                      kiln_tensor *y) {
    const ir_type *tin[9] = {0};
    ir_type types[9];
    memset(types, 0, sizeof types);
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    /* the 7-bit tactic checks the weight constant of a graph node; these
    ** test nodes have none, so its cases (w7) call it directly */
    if (t->supports && t != &cpu_t_qconv_avx2_7bit && t != &cpu_t_qconv_avx2_wino &&
        !t->supports(n, tin))
        return 1;
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = n->n_in;
    c.in = in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    /* every other run with the planned workspace, else the malloc path */
    static int flipflop;
    size_t wsz = t->workspace && (flipflop++ & 1) ? t->workspace(n, tin) : 0;
    void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
    c.ws = ws;
    c.ws_size = ws ? wsz : 0;
    /* tactics with prepared weights: every other run on the blob the
    ** builder would store (the weights as the constant), else without */
    void *blob = NULL;
    size_t blob_n = 0;
    static int blobflip;
    if (t->prepare && (blobflip++ & 1)) {
        const kiln_tensor *cin[9] = {0};
        cin[3] = in[3];
        kiln_status st = t->prepare(n, tin, cin, &blob, &blob_n);
        CHECK(st == KILN_OK, "%s prepare failed: %s", t->name, kiln_last_error());
        c.blob = blob;
        c.blob_size = blob_n;
        g_blob_runs += blob != NULL;
    }
    /* a tactic whose blob replaces W must not read W's data on that path
    ** (the engine then stores none): run it on a W without data */
    const kiln_tensor *in2[9];
    kiln_tensor wnodata;
    if (blob && (t->blob_replaces & 1u << 3)) {
        for (int i = 0; i < n->n_in; i++) in2[i] = in[i];
        wnodata = *in[3];
        wnodata.data = NULL;
        in2[3] = &wnodata;
        c.in = in2;
    }
    int rc = t->run(&c);
    kiln_aligned_free(ws);
    kiln_aligned_free(blob);
    if (rc) {
        fprintf(stderr, "%s failed: %s\n", t->name, c.err);
        return -1;
    }
    return 0;
}

static void run_case(const qcase *q) {
    kiln_dtype xt = q->xs8 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    kiln_dtype yt = q->ys8 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
    int64_t Cg = q->C / q->G;
    int64_t xd[4] = {q->N, q->C, q->H, q->W}, wd[4] = {q->M, Cg, q->kh, q->kw};
    kiln_tensor *x = tens(xt, 4, xd), *w = tens(KILN_DTYPE_INT8, 4, wd);
    int64_t xlo = q->xs8 ? -128 : 0;
    for (int64_t i = 0; i < tensor_numel(x); i++)
        dt_set_i64(xt, x->data, (size_t)i,
                   q->wrap ? xlo + 255 : xlo + irand(0, 255));
    for (int64_t i = 0; i < tensor_numel(w); i++)
        ((int8_t *)w->data)[i] = (int8_t)(q->wrap ? (q->w7 ? 63
                                                     : q->wneg == 1 ? -128
                                                     : q->wneg == 2 && i / (Cg * q->kh * q->kw) % 2
                                                         ? -128 : 127)
                                          : q->w7 ? (rnd() < 0.2 ? (rnd() < 0.5 ? -64 : 63)
                                                                 : irand(-64, 63))
                                                  : irand(-128, 127));
    int64_t M = q->M, nsc = q->per_ch ? M : 1;
    kiln_tensor *ws = q->per_ch ? tens(KILN_DTYPE_FLOAT32, 1, &M) : scalar_f(0);
    kiln_tensor *wz = q->per_ch ? tens(KILN_DTYPE_INT8, 1, &M) : scalar_q(KILN_DTYPE_INT8, 0);
    for (int64_t m = 0; m < nsc; m++) {
        ((float *)ws->data)[m] = (float)(q->extreme ? 0.5 + rnd() * 4 : 0.002 + rnd() * 0.01);
        ((int8_t *)wz->data)[m] = (int8_t)(q->wzp ? irand(-128, 127) : 0);
    }
    int64_t xz = q->extreme ? (q->xs8 ? 127 : 255) : xlo + irand(0, 255);
    int64_t ylo = q->ys8 ? -128 : 0;
    int64_t yz = q->extreme ? ylo + (rnd() < 0.5 ? 0 : 255) : ylo + irand(0, 255);
    kiln_tensor *bias = NULL;
    if (q->bias) {
        bias = tens(KILN_DTYPE_INT32, 1, &M);
        for (int64_t m = 0; m < M; m++)
            ((int32_t *)bias->data)[m] = (int32_t)(q->wrap ? 2147483000 : irand(-20000, 20000));
    }
    const kiln_tensor *in[9] = {x, scalar_f(q->extreme ? 1e-3 : 0.02), scalar_q(xt, xz), w, ws,
                                wz, scalar_f(q->extreme ? 1e-4 : 0.05 + rnd() * 0.2),
                                scalar_q(yt, yz), bias};
    ir_node *n = ir_edit_add_node(g_graph, OP_QLinearConv, q->bias ? 9 : 8, 1, NULL);
    if (!n) die("node");
    ir_edit_set_int(n, "group", q->G);
    int64_t st[2] = {q->sh, q->sw}, dl[2] = {q->dh, q->dw};
    ir_edit_set_ints(n, "strides", st, 2);
    ir_edit_set_ints(n, "dilations", dl, 2);
    if (q->auto_pad) ir_edit_set_str(n, "auto_pad", q->auto_pad);
    else ir_edit_set_ints(n, "pads", q->pads, 4);
    kiln_tensor *out[1];
    if (ref_run_node(n, in, out)) {
        fprintf(stderr, "reference failed: %s\n", kiln_last_error());
        g_fail++;
        goto done;
    }
    kiln_tensor *want = out[0];
    const kiln_tactic *tacs[8] = {&cpu_t_qconv_c, &cpu_t_qconv_avx2, &cpu_t_qconv_vnni,
                                  &cpu_t_qconv_avx2_7bit, &cpu_t_qconv_avx2_w16,
                                  &cpu_t_qconv_avx2_wino, &cpu_t_qconv_vnni_c4,
                                  &cpu_t_qconv_amx};
    /* the Winograd tactic's supports() wants constant weights (its bound
    ** check); it runs on the layers it would be given */
    bool wino = q->kh == 3 && q->kw == 3 && q->sh == 1 && q->sw == 1 && q->dh == 1 &&
                q->dw == 1 && q->G == 1 && !q->wzp;
    /* the NCHW4 tactic: one group, and not the 1x1 stride-1 unpadded conv */
    bool unpadded = !q->auto_pad && !q->pads[0] && !q->pads[1] && !q->pads[2] && !q->pads[3];
    bool c4 = q->G == 1 && !(q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && unpadded);
    for (int ti = 0; ti < 8; ti++) {
        const kiln_tactic *t = tacs[ti];
        if ((t->isa & ~g_host) || (ti == 3 && !q->w7) || (ti == 5 && !wino) || (ti == 6 && !c4))
            continue;
        if (ti == 5) g_wino_cases++;
        if (ti == 6) g_c4_cases++;
        if (ti == 7) g_amx_cases++;
        for (int threads = 1; threads <= 3; threads += 2) {
            kiln_set_num_threads(threads);
            kiln_tensor *y = tens(yt, want->rank, want->dims);
            memset(y->data, 0x5A, y->nbytes);
            int rc = run_tactic(t, n, in, y);
            CHECK(rc == 0, "%s did not run (rc %d)", t->name, rc);
            if (rc == 0) {
                int64_t bad = -1, cnt = tensor_numel(y);
                for (int64_t i = 0; i < cnt && bad < 0; i++)
                    if (dt_get_i64(yt, y->data, (size_t)i) != dt_get_i64(yt, want->data, (size_t)i))
                        bad = i;
                CHECK(bad < 0,
                      "%s t=%d N%lld C%lld %lldx%lld M%lld G%lld k%lldx%lld s%lld,%lld "
                      "d%lld,%lld x%s y%s pc%d wz%d b%d ext%d wrap%d: y[%lld] %lld want %lld",
                      t->name, threads, (long long)q->N, (long long)q->C, (long long)q->H,
                      (long long)q->W, (long long)q->M, (long long)q->G, (long long)q->kh,
                      (long long)q->kw, (long long)q->sh, (long long)q->sw, (long long)q->dh,
                      (long long)q->dw, q->xs8 ? "s8" : "u8", q->ys8 ? "s8" : "u8", q->per_ch,
                      q->wzp, q->bias, q->extreme, q->wrap, (long long)bad,
                      bad < 0 ? 0LL : (long long)dt_get_i64(yt, y->data, (size_t)bad),
                      bad < 0 ? 0LL : (long long)dt_get_i64(yt, want->data, (size_t)bad));
            }
            tensor_free(y);
        }
    }
    tensor_free(want);
done:
    ir_edit_kill(n);
    for (int i = 0; i < 9; i++) tensor_free((kiln_tensor *)in[i]);
}

static void random_cases(int count) {
    for (int i = 0; i < count; i++) {
        qcase q;
        memset(&q, 0, sizeof q);
        q.N = irand(1, 2);
        q.G = rnd() < 0.2 ? irand(2, 3) : 1;
        q.C = q.G * irand(1, 9);
        q.M = q.G * irand(1, 14);
        if (rnd() < 0.1) { /* depthwise */
            q.G = q.C = q.M = irand(2, 7);
        }
        q.kh = irand(1, 3);
        q.kw = irand(1, 3);
        q.H = irand(q.kh, 13);
        q.W = irand(q.kw, 17);
        q.sh = irand(1, 2);
        q.sw = irand(1, 2);
        q.dh = rnd() < 0.2 ? 2 : 1;
        q.dw = rnd() < 0.2 ? 2 : 1;
        if (q.H < (q.kh - 1) * q.dh + 1) q.dh = 1;
        if (q.W < (q.kw - 1) * q.dw + 1) q.dw = 1;
        if (rnd() < 0.15) q.auto_pad = rnd() < 0.5 ? "SAME_UPPER" : "SAME_LOWER";
        else
            for (int k = 0; k < 4; k++) q.pads[k] = irand(0, 2);
        q.xs8 = rnd() < 0.5;
        q.ys8 = rnd() < 0.5;
        q.per_ch = rnd() < 0.5;
        q.wzp = rnd() < 0.3;
        q.bias = rnd() < 0.7;
        q.extreme = rnd() < 0.15;
        q.w7 = rnd() < 0.4;
        run_case(&q);
    }
}

/* Shapes for the AMX tactic's tiles (32 channels x 32 positions, 64
** reduction indices a step): M around and off multiples of 16 and 32, K
** below, at and off multiples of 64, positions that end a 64-position block
** early or leave one half of it empty, groups, batch 2, 1x1 (direct and
** strided), 3x3 and the 7x7 stem, weight zero points, int8 and uint8. */
static void amx_cases(int count) {
    static const int64_t ms[] = {1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 80, 97};
    for (int i = 0; i < count; i++) {
        qcase q;
        memset(&q, 0, sizeof q);
        q.N = irand(1, 2);
        q.G = rnd() < 0.2 ? 2 : 1;
        int shape = (int)irand(0, 3);
        q.kh = q.kw = shape == 0 ? 1 : shape == 3 ? 7 : 3;
        int64_t cg = shape == 3 ? irand(1, 4) : shape == 0 ? irand(1, 140) : irand(1, 40);
        if (rnd() < 0.2) cg = shape == 0 ? 64 : shape == 3 ? 3 : 16; /* K multiple of 64 (or 147) */
        q.C = q.G * cg;
        q.M = q.G * ms[irand(0, (int64_t)KILN_ARRAY_LEN(ms) - 1)];
        q.H = irand(q.kh, shape == 3 ? 23 : 14);
        q.W = irand(q.kw, shape == 3 ? 23 : 19);
        q.sh = q.sw = shape == 3 ? 2 : irand(1, 3); /* 3: the strided gather */
        q.dh = q.dw = 1;
        for (int k = 0; k < 4; k++) q.pads[k] = shape == 0 ? 0 : irand(0, q.kh / 2);
        q.xs8 = rnd() < 0.5;
        q.ys8 = rnd() < 0.5;
        q.per_ch = rnd() < 0.5;
        q.wzp = rnd() < 0.3;
        q.bias = rnd() < 0.7;
        q.extreme = rnd() < 0.1;
        run_case(&q);
    }
}

static void fixed_cases(void) {
    /* ResNet-like stem: K = 3*7*7 = 147, big position count (several blocks) */
    qcase stem = {1, 3, 37, 41, 8, 1, 7, 7, 2, 2, 1, 1, {3, 3, 3, 3}, NULL,
                  false, false, true, false, true, false, false, false};
    run_case(&stem);
    /* 1x1 stride 1 (the direct packing path), K = 67, M = 13 */
    qcase pw = {2, 67, 9, 11, 13, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL,
                true, true, false, true, true, false, false, false};
    run_case(&pw);
    /* accumulator wrap-around: every product -128 * 255, big K, bias near max */
    qcase wrap = {1, 64, 5, 5, 7, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                  false, true, false, false, true, false, true, false};
    run_case(&wrap);
    /* saturation both ways */
    qcase sat = {1, 5, 6, 7, 9, 1, 3, 3, 1, 1, 1, 1, {1, 0, 0, 1}, NULL,
                 true, false, true, true, true, true, false, false};
    run_case(&sat);
    /* GEMV path (at most 8 positions): a Gemm as 1x1 conv, K = 131 (tail of
    ** the 64-byte steps), batch 3, odd M; and 2x2 outputs of a padded 3x3 */
    qcase gemv = {3, 131, 1, 1, 37, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL,
                  true, false, true, true, true, false, false, false};
    run_case(&gemv);
    qcase gemv2 = {1, 70, 2, 2, 9, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                   false, true, false, false, true, false, false, false};
    run_case(&gemv2);
    qcase gemv3 = {2, 64, 1, 1, 5, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL,
                   false, false, true, false, false, false, false, false};
    run_case(&gemv3);
    /* 7-bit weights at both ends with all-255 activations: the largest
    ** vpmaddubsw pair sums (255*63*2 and 255*-64*2) */
    qcase w7 = {1, 35, 9, 10, 11, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                false, false, true, false, true, false, true, true};
    run_case(&w7);
    w7.xs8 = true;
    run_case(&w7);
    /* depthwise path: many channels over few positions, per-channel
    ** scales and zero points, stride 2 with asymmetric pads; and a 5x5
    ** dilated one with SAME padding */
    qcase dw = {2, 70, 9, 11, 70, 70, 3, 3, 2, 2, 1, 1, {1, 0, 0, 1}, NULL,
                true, false, true, true, true, false, false, false};
    run_case(&dw);
    qcase dw2 = {1, 13, 17, 12, 13, 13, 5, 5, 1, 1, 2, 1, {0, 0, 0, 0}, "SAME_UPPER",
                 false, true, false, false, false, false, false, false};
    run_case(&dw2);
    /* NCHW4 path: channels not a multiple of 4 (a partial last word),
    ** stride 2 with asymmetric pads over several blocks and batch 2, weight
    ** zero points (column sums); 1x1 stride 2 (a downsample); 5x3 dilated */
    qcase c4a = {2, 67, 15, 13, 19, 1, 3, 3, 2, 2, 1, 1, {1, 0, 2, 1}, NULL,
                 false, true, true, true, true, false, false, false};
    run_case(&c4a);
    qcase c4b = {1, 34, 20, 21, 7, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL,
                 true, false, true, false, true, false, false, false};
    run_case(&c4b);
    qcase c4c = {1, 6, 17, 19, 8, 1, 5, 3, 1, 1, 2, 1, {2, 1, 3, 0}, NULL,
                 true, true, false, true, false, false, false, false};
    run_case(&c4c);
    /* blocks whose last 1..4 positions run as dot products (VNNI): 7x7 =
    ** 49 positions (3 vectors + 1) with weight zero points, batch 2; 14x14
    ** = 196 (a last block of 4 positions only), 1x1 direct and 3x3 */
    qcase t49 = {2, 37, 7, 7, 19, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                 false, true, true, true, true, false, false, false};
    run_case(&t49);
    qcase t196 = {1, 20, 14, 14, 13, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL,
                  true, false, true, false, true, false, false, false};
    run_case(&t196);
    t196.kh = t196.kw = 3;
    t196.pads[0] = t196.pads[1] = t196.pads[2] = t196.pads[3] = 1;
    t196.wzp = true;
    run_case(&t196);
    /* pre-widened int16 weights (u8s8_qconv_im2col_w16_6x8_avx2): every
    ** product -128 * 255 (the u8 x s8 pairs vpmaddubsw would saturate),
    ** then rows alternating 127 / -128; K = 333 and 5 (not multiples of 4),
    ** M = 13 and 17 (tile tails of 6 rows), positions 63 and 9 (groups of 8
    ** positions cut short; 9 is the smallest count off the GEMV path) */
    qcase neg = {1, 37, 7, 9, 13, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                 false, false, true, false, true, false, true, false, 1};
    run_case(&neg);
    neg.xs8 = true;
    neg.wneg = 2;
    run_case(&neg);
    qcase alt = {2, 5, 3, 3, 17, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL,
                 false, true, true, true, true, false, true, false, 2};
    run_case(&alt);
    /* groups with 6 < Mg, odd K per group, stride 2 and positions spread
    ** over several 64-position blocks */
    qcase grp = {1, 6, 23, 19, 21, 3, 3, 2, 2, 1, 1, 1, {1, 0, 1, 1}, NULL,
                 true, false, true, true, true, false, false, false, 0};
    run_case(&grp);
    /* Winograd over many 64-tile blocks, split over threads (W odd) */
    qcase wbig = {1, 67, 37, 41, 40, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                  false, false, true, false, true, false, false, false, 0};
    run_case(&wbig);
    /* big enough (about 40 Mflop) that 3 threads really split the work */
    qcase big = {1, 64, 30, 30, 40, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL,
                 false, true, true, true, true, false, false, false};
    run_case(&big);
}

/* QAdd tactics vs the reference QAdd kernel: lengths off the vector width,
** every signedness mix, scales that saturate and ones that leave ties. */
static void qadd_cases(void) {
    const kiln_tactic *tacs[3] = {&cpu_t_qadd_c, &cpu_t_qadd_avx512, &cpu_t_qadd_avx2};
    for (int it = 0; it < 60; it++) {
        int64_t n = it < 5 ? it : it == 59 ? 400000 : irand(1, it < 50 ? 300 : 70000);
        bool as = rnd() < 0.5, bs = rnd() < 0.5, ys = rnd() < 0.5;
        kiln_dtype at = as ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_dtype bt = bs ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_dtype yt = ys ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_tensor *a = tens(at, 1, &n), *b = tens(bt, 1, &n);
        for (int64_t i = 0; i < n; i++) {
            dt_set_i64(at, a->data, (size_t)i, (as ? -128 : 0) + irand(0, 255));
            dt_set_i64(bt, b->data, (size_t)i, (bs ? -128 : 0) + irand(0, 255));
        }
        bool ties = it % 3 == 0; /* sy = sa = sb: sums of halves land on .5 */
        double sa = ties ? 0.5 : 0.001 + rnd() * 0.1, sb = ties ? 0.25 : 0.001 + rnd() * 0.1;
        /* 1e-9: sums past the +-1e9 clamp (the kernels' general path) */
        double sy = ties ? 0.5 : (it % 7 == 0 ? 1e-4 : it % 11 == 0 ? 1e-9 : 0.002 + rnd() * 0.2);
        const kiln_tensor *in[8] = {
            a, scalar_f(sa), scalar_q(at, (as ? -128 : 0) + irand(0, 255)),
            b, scalar_f(sb), scalar_q(bt, (bs ? -128 : 0) + irand(0, 255)),
            scalar_f(sy), scalar_q(yt, (ys ? -128 : 0) + irand(0, 255))};
        ir_node *nd = ir_edit_add_node(g_graph, OP_QAdd, 8, 1, NULL);
        if (!nd) die("node");
        kiln_tensor *out[1];
        if (ref_run_node(nd, in, out)) die("reference QAdd");
        for (int ti = 0; ti < 3; ti++) {
            const kiln_tactic *t = tacs[ti];
            if (t->isa & ~g_host) continue;
            kiln_tensor *y = tens(yt, 1, &n);
            memset(y->data, 0x5A, y->nbytes);
            int rc = run_tactic(t, nd, in, y);
            CHECK(rc == 0, "%s did not run", t->name);
            int64_t bad = -1;
            for (int64_t i = 0; i < n && bad < 0 && rc == 0; i++)
                if (dt_get_i64(yt, y->data, (size_t)i) != dt_get_i64(yt, out[0]->data, (size_t)i))
                    bad = i;
            CHECK(bad < 0, "%s n=%lld a%s b%s y%s: y[%lld] differs", t->name, (long long)n,
                  as ? "s8" : "u8", bs ? "s8" : "u8", ys ? "s8" : "u8", (long long)bad);
            tensor_free(y);
        }
        tensor_free(out[0]);
        ir_edit_kill(nd);
        for (int i = 0; i < 8; i++) tensor_free((kiln_tensor *)in[i]);
    }
}

/* int8/uint8 MaxPool tactic vs the reference MaxPool. */
static void maxpool_cases(void) {
    for (int it = 0; it < 60; it++) {
        bool s8 = rnd() < 0.5;
        kiln_dtype dt = s8 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        int64_t kh = irand(1, 3), kw = irand(1, 3), dh = rnd() < 0.2 ? 2 : 1, dw = rnd() < 0.2 ? 2 : 1;
        if (it == 2) { /* a window wider than the row buffers (direct loop) */
            kh = 1;
            kw = 4100;
            dh = dw = 1;
        }
        /* the first ones wider than the tactic's 4096-column row buffers */
        int64_t xd[4] = {irand(1, 2), irand(1, 5), irand((kh - 1) * dh + 1, 15),
                         it < 2 ? 9001 - it * 4000 : it == 2 ? 4203
                                                             : irand((kw - 1) * dw + 1, 17)};
        kiln_tensor *x = tens(dt, 4, xd);
        for (int64_t i = 0; i < tensor_numel(x); i++)
            dt_set_i64(dt, x->data, (size_t)i, (s8 ? -128 : 0) + irand(0, 255));
        ir_node *nd = ir_edit_add_node(g_graph, OP_MaxPool, 1, 1, NULL);
        if (!nd) die("node");
        int64_t k[2] = {kh, kw}, st[2] = {irand(1, 2), irand(1, 2)}, dl[2] = {dh, dw};
        int64_t pads[4] = {irand(0, kh / 2), irand(0, kw / 2), irand(0, kh / 2), irand(0, kw / 2)};
        ir_edit_set_ints(nd, "kernel_shape", k, 2);
        ir_edit_set_ints(nd, "strides", st, 2);
        ir_edit_set_ints(nd, "dilations", dl, 2);
        if (rnd() < 0.2) ir_edit_set_str(nd, "auto_pad", "SAME_UPPER");
        else ir_edit_set_ints(nd, "pads", pads, 4);
        if (rnd() < 0.3) ir_edit_set_int(nd, "ceil_mode", 1);
        const kiln_tensor *in[1] = {x};
        kiln_tensor *out[1];
        if (ref_run_node(nd, in, out)) die("reference MaxPool");
        kiln_tensor *y = tens(dt, 4, out[0]->dims);
        int rc = run_tactic(&cpu_t_q8_maxpool, nd, in, y);
        CHECK(rc == 0, "q8 maxpool did not run");
        CHECK(rc != 0 || memcmp(y->data, out[0]->data, y->nbytes) == 0,
              "q8 maxpool %s x %lldx%lldx%lldx%lld k%lldx%lld differs", s8 ? "s8" : "u8",
              (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)xd[3],
              (long long)kh, (long long)kw);
        tensor_free(y);
        tensor_free(out[0]);
        tensor_free(x);
        ir_edit_kill(nd);
    }
}

/* Per-tensor QuantizeLinear / DequantizeLinear tactics vs the reference:
** ties (x / scale = k + 0.5), saturation, NaN and infinities, both types. */
static void qdq_cases(void) {
    const kiln_tactic *qt[3] = {&cpu_t_quant_c, &cpu_t_quant_avx2, &cpu_t_quant_avx512};
    const kiln_tactic *dq[3] = {&cpu_t_dequant_c, &cpu_t_dequant_avx2, &cpu_t_dequant_avx512};
    for (int it = 0; it < 40; it++) {
        int64_t n = it < 4 ? it + 1 : irand(1, it < 30 ? 200 : 50000);
        bool s8 = rnd() < 0.5, has_z = rnd() < 0.8;
        kiln_dtype t8 = s8 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        double scale = it % 4 == 0 ? 0.5 : 0.001 + rnd() * 0.2;
        kiln_tensor *x = tens(KILN_DTYPE_FLOAT32, 1, &n);
        float *xv = x->data;
        for (int64_t i = 0; i < n; i++) {
            xv[i] = (float)((rnd() - 0.5) * 300 * scale);
            if (it % 4 == 0) xv[i] = (float)(floor(xv[i]) + 0.25); /* ties at scale 0.5 */
        }
        if (n > 3) {
            xv[0] = NAN;
            xv[1] = INFINITY;
            xv[2] = -INFINITY;
        }
        const kiln_tensor *in[3] = {x, scalar_f(scale),
                                    has_z ? scalar_q(t8, (s8 ? -128 : 0) + irand(0, 255)) : NULL};
        if (!has_z && s8) {
            tensor_free((kiln_tensor *)in[1]);
            tensor_free(x);
            continue; /* no zero point means uint8 */
        }
        ir_node *q = ir_edit_add_node(g_graph, OP_QuantizeLinear, has_z ? 3 : 2, 1, NULL);
        ir_node *d = ir_edit_add_node(g_graph, OP_DequantizeLinear, has_z ? 3 : 2, 1, NULL);
        if (!q || !d) die("node");
        kiln_tensor *qo[1], *dqo[1];
        if (ref_run_node(q, in, qo)) die("reference Q");
        const kiln_tensor *din[3] = {qo[0], in[1], in[2]};
        if (ref_run_node(d, din, dqo)) die("reference DQ");
        for (int ti = 0; ti < 3; ti++) {
            if (!(qt[ti]->isa & ~g_host)) {
                kiln_tensor *y = tens(t8, 1, &n);
                int rc = run_tactic(qt[ti], q, in, y);
                CHECK(rc == 0 && memcmp(y->data, qo[0]->data, y->nbytes) == 0,
                      "%s n=%lld %s differs (rc %d)", qt[ti]->name, (long long)n,
                      s8 ? "s8" : "u8", rc);
                tensor_free(y);
            }
            if (!(dq[ti]->isa & ~g_host)) {
                kiln_tensor *y = tens(KILN_DTYPE_FLOAT32, 1, &n);
                int rc = run_tactic(dq[ti], d, din, y);
                CHECK(rc == 0 && memcmp(y->data, dqo[0]->data, y->nbytes) == 0,
                      "%s n=%lld %s differs (rc %d)", dq[ti]->name, (long long)n,
                      s8 ? "s8" : "u8", rc);
                tensor_free(y);
            }
        }
        tensor_free(qo[0]);
        tensor_free(dqo[0]);
        ir_edit_kill(q);
        ir_edit_kill(d);
        for (int i = 0; i < 3; i++) tensor_free((kiln_tensor *)in[i]);
    }
}

/* Random 3x3 stride-1 single-group cases: the shapes the Winograd tactic
** takes (odd output sizes cut the 2x2 tiles, C not a multiple of 4, tile
** counts off the 64-tile blocks, 1x1 outputs, asymmetric and SAME pads). */
static void wino_cases(int count) {
    for (int i = 0; i < count; i++) {
        qcase q;
        memset(&q, 0, sizeof q);
        q.N = irand(1, 2);
        q.G = 1;
        q.C = irand(1, 40);
        q.M = irand(1, 20);
        q.kh = q.kw = 3;
        q.sh = q.sw = q.dh = q.dw = 1;
        q.H = irand(1, 24);
        q.W = irand(1, 24);
        if (rnd() < 0.15) q.auto_pad = rnd() < 0.5 ? "SAME_UPPER" : "SAME_LOWER";
        else
            for (int k = 0; k < 4; k++) q.pads[k] = irand(0, 2);
        /* at least one output position */
        if (!q.auto_pad && q.H + q.pads[0] + q.pads[2] < 3) q.pads[2] = 3 - q.H - q.pads[0];
        if (!q.auto_pad && q.W + q.pads[1] + q.pads[3] < 3) q.pads[3] = 3 - q.W - q.pads[1];
        q.xs8 = rnd() < 0.5;
        q.ys8 = rnd() < 0.5;
        q.per_ch = rnd() < 0.5;
        q.bias = rnd() < 0.7;
        q.extreme = rnd() < 0.15;
        q.w7 = rnd() < 0.2;
        if (rnd() < 0.1) {
            q.wrap = true;
            q.wneg = (int)irand(0, 2);
        }
        run_case(&q);
    }
}

/* Weights whose sums could leave int32 (255 * sum |w| >= 2^29): the
** Winograd tactic must refuse them (supports() false, a forced run fails
** with a message), never compute a wrong result. */
static void wino_bound_case(void) {
    const kiln_tactic *t = &cpu_t_qconv_avx2_wino;
    if (t->isa & ~g_host) return;
    int64_t xd[4] = {1, 1900, 3, 3}, wd[4] = {2, 1900, 3, 3}, yd[4] = {1, 2, 1, 1};
    kiln_tensor *x = tens(KILN_DTYPE_UINT8, 4, xd), *w = tens(KILN_DTYPE_INT8, 4, wd);
    kiln_tensor *y = tens(KILN_DTYPE_UINT8, 4, yd);
    memset(x->data, 255, x->nbytes);
    memset(w->data, 127, w->nbytes);
    const kiln_tensor *in[8] = {x, scalar_f(0.02), scalar_q(KILN_DTYPE_UINT8, 0), w,
                                scalar_f(0.01), scalar_q(KILN_DTYPE_INT8, 0), scalar_f(0.1),
                                scalar_q(KILN_DTYPE_UINT8, 0)};
    ir_node *n = ir_edit_add_node(g_graph, OP_QLinearConv, 8, 1, NULL);
    if (!n) die("node");
    const ir_type *tin[8] = {0};
    const kiln_tensor *cin[8] = {0};
    cin[3] = w;
    void *blob = NULL;
    size_t bn = 0;
    CHECK(t->prepare(n, tin, cin, &blob, &bn) == KILN_OK && !blob,
          "Winograd blob made for weights that could overflow");
    kiln_aligned_free(blob);
    kiln_set_num_threads(1);
    int rc = run_tactic(t, n, in, y);
    CHECK(rc != 0, "Winograd ran on weights that could overflow");
    ir_edit_kill(n);
    for (int i = 0; i < 8; i++) tensor_free((kiln_tensor *)in[i]);
    tensor_free(y);
}

/* A prepared blob that does not match the layer (another shape, a damaged
** header, a truncated blob) fails the layer with a message, never reads
** out of bounds or computes garbage. */
static void blob_mismatch_cases(const kiln_tactic *t) {
    if (t->isa & ~g_host) return;
    int64_t xd[4] = {1, 8, 9, 9}, wd[4] = {10, 8, 3, 3}, wd2[4] = {10, 8, 1, 1};
    int64_t yd[4] = {1, 10, 9, 9};
    kiln_tensor *x = tens(KILN_DTYPE_UINT8, 4, xd), *w = tens(KILN_DTYPE_INT8, 4, wd);
    kiln_tensor *w2 = tens(KILN_DTYPE_INT8, 4, wd2), *y = tens(KILN_DTYPE_UINT8, 4, yd);
    memset(x->data, 3, x->nbytes);
    memset(w->data, 1, w->nbytes);
    memset(w2->data, 1, w2->nbytes);
    const kiln_tensor *in[8] = {x, scalar_f(0.02), scalar_q(KILN_DTYPE_UINT8, 7), w,
                                scalar_f(0.01), scalar_q(KILN_DTYPE_INT8, 0), scalar_f(0.1),
                                scalar_q(KILN_DTYPE_UINT8, 0)};
    ir_node *n = ir_edit_add_node(g_graph, OP_QLinearConv, 8, 1, NULL);
    if (!n) die("node");
    int64_t pd[4] = {1, 1, 1, 1};
    ir_edit_set_ints(n, "pads", pd, 4);
    const ir_type *tin[8] = {0};
    const kiln_tensor *cin[8] = {0};
    void *blob = NULL, *blob2 = NULL;
    size_t bn = 0, bn2 = 0;
    cin[3] = w;
    CHECK(t->prepare(n, tin, cin, &blob, &bn) == KILN_OK && blob, "prepare 3x3");
    cin[3] = w2;
    CHECK(t->prepare(n, tin, cin, &blob2, &bn2) == KILN_OK && blob2, "prepare 1x1");
    kiln_set_num_threads(1);
    for (int v = 0; v < 4 && blob && blob2; v++) {
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        c.opset = 17;
        c.n_in = 8;
        c.in = in;
        c.n_out = 1;
        kiln_tensor *outs[1] = {y};
        c.out = outs;
        c.blob = v == 1 ? blob2 : blob;  /* 1: the 1x1 layer's blob */
        c.blob_size = v == 2 ? bn - 64 : v == 1 ? bn2 : bn; /* 2: truncated */
        uint8_t save = ((uint8_t *)blob)[8];
        if (v == 3) ((uint8_t *)blob)[8] ^= 1; /* 3: another version */
        int rc = t->run(&c);
        ((uint8_t *)blob)[8] = save;
        if (v == 0) CHECK(rc == 0, "matching blob refused: %s", c.err);
        else
            CHECK(rc != 0 && strstr(c.err, "rebuild"), "mismatched blob %d accepted (rc %d: %s)",
                  v, rc, c.err);
    }
    kiln_aligned_free(blob);
    kiln_aligned_free(blob2);
    ir_edit_kill(n);
    for (int i = 0; i < 8; i++) tensor_free((kiln_tensor *)in[i]);
    tensor_free(w2);
    tensor_free(y);
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
    CHECK(cpu_q8_c.available, "portable int8 kernel unavailable");
    if (g_host & KILN_ISA_AVX2) CHECK(cpu_q8_avx2.available, "AVX2 int8 kernel not built");
    if (g_host & KILN_ISA_AVX512VNNI)
        CHECK(cpu_q8_avx512vnni.available, "VNNI int8 kernel not built");
    if (g_host & KILN_ISA_AMXINT8)
        CHECK(cpu_q8_amx.available, "AMX int8 kernel not built");
    else
        printf("AMX tactic skipped: this host (or KILN_CPU_ISA) has no AMX-INT8\n");
    fixed_cases();
    random_cases(120);
    amx_cases(40);
    if (g_host & KILN_ISA_AMXINT8)
        CHECK(g_amx_cases >= 40, "only %d AMX cases", g_amx_cases);
    printf("AMX cases %d\n", g_amx_cases);
    wino_cases(60);
    blob_mismatch_cases(&cpu_t_qconv_avx2_w16);
    blob_mismatch_cases(&cpu_t_qconv_vnni_c4);
    wino_bound_case();
    if (cpu_q8_avx2_w16.available && (g_host & KILN_ISA_AVX2))
        CHECK(g_blob_runs > 20, "only %d runs on prepared int8 weights", g_blob_runs);
    if (cpu_q8_avx2_w16.available && (g_host & KILN_ISA_AVX2))
        CHECK(g_wino_cases >= 10, "only %d Winograd cases", g_wino_cases);
    if (cpu_q8_avx512vnni.available && (g_host & KILN_ISA_AVX512VNNI))
        CHECK(g_c4_cases >= 60, "only %d NCHW4 cases", g_c4_cases);
    printf("prepared-blob runs %d, Winograd cases %d, NCHW4 cases %d\n", g_blob_runs,
           g_wino_cases, g_c4_cases);
    qadd_cases();
    maxpool_cases();
    qdq_cases();
    kiln_set_num_threads(1);
    ir_model_free(g_model);
    return test_summary();
}
