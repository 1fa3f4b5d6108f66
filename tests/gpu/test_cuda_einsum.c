/* test_cuda_einsum.c: the general CUDA Einsum tactic (cuda_gemm.c,
** kernels/einsum.cu) against the reference kernel: matrix and batched
** products, inner and outer products, traces and (batch) diagonals, sums,
** transposes, implicit output, "..." broadcasting (including size-1
** broadcast dims), three operands, a scalar, size-1 and odd dims;
** float64, float32, float16, bfloat16 (1e-5, 1e-5, 2e-3, 2e-2 of the
** reference run on absolute values). Also DFT (see test_dft) and
** QLinearMatMul (see test_qlinear_matmul). Ends with `N passed, M failed`;
** without a GPU it prints "0 passed, 0 failed (no GPU)" (KILN_GPU_TEST_DRY=1:
** checks the cases and that the tactic takes each, without running it). */
#include "gpu_test.h"

typedef struct ein_case {
    const char *eq;
    int n;
    int rank[3];
    int64_t dims[3][5];
} ein_case;

static const ein_case k_cases[] = {
    {"ij,jk->ik", 2, {2, 2}, {{3, 5}, {5, 4}}},
    {"bij, bjk -> bik", 2, {3, 3}, {{5, 2, 3}, {5, 3, 4}}},
    {"i,i", 2, {1, 1}, {{7}, {7}}},
    {"i,j->ij", 2, {1, 1}, {{3}, {6}}},
    {"ii->i", 1, {2}, {{6, 6}}},
    {"ii", 1, {2}, {{5, 5}}},
    {"...ii ->...i", 1, {3}, {{3, 5, 5}}},
    {"ij->i", 1, {2}, {{3, 4}}},
    {"ij->", 1, {2}, {{9, 7}}},
    {"ij->ji", 1, {2}, {{3, 4}}},
    {"->", 1, {0}, {{0}}},
    {"ij,kj", 2, {2, 2}, {{4, 6}, {3, 6}}},
    {"...ij,...jk->...ik", 2, {4, 3}, {{2, 3, 4, 5}, {3, 5, 2}}},
    {"...ij,...jk->...ik", 2, {4, 4}, {{2, 1, 4, 5}, {1, 3, 5, 2}}},
    {"abc,cd,de->abe", 3, {3, 2, 2}, {{2, 3, 4}, {4, 5}, {5, 3}}},
    {"bhid,bhjd->bhij", 2, {4, 4}, {{2, 3, 7, 16}, {2, 3, 9, 16}}},
    {"ij,ij->ij", 2, {2, 2}, {{1, 7}, {5, 7}}},
    {"iij->ji", 1, {3}, {{4, 4, 3}}},
    {"i,i,i->", 3, {1, 1, 1}, {{33}, {33}, {33}}},
    {"ab,ab->", 2, {2, 2}, {{1, 1}, {1, 1}}},
};

static const kiln_dtype k_types[] = {KILN_DTYPE_FLOAT64, KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                     KILN_DTYPE_BFLOAT16};

/* DFT (cuda_dft_direct and its _rtparams form): rank 3 and 4, every legal
** axis, real and complex input, forward / inverse / onesided forward /
** onesided inverse, dft_length absent, shorter or longer than the axis,
** odd and prime lengths; opset 19 (axis attribute) and 20 (axis and
** dft_length as runtime or constant inputs). Within the dtype's tolerance
** of 4 * L (the largest a bin of [-2, 2] data can reach). */
static void test_dft(kiln_dtype dt) {
    static const int64_t lens[] = {1, 2, 5, 7, 8, 13, 16};
    for (int it = 0; it < 56; it++) {
        int opset = it % 2 ? 20 : 19, r = 3 + (it / 2) % 2;
        bool inv = (it / 4) % 2 == 1, one = (it / 8) % 2 == 1;
        int64_t d[4];
        for (int i = 0; i < r - 1; i++) d[i] = h_irand(1, 4);
        d[r - 1] = inv && one ? 2 : h_irand(1, 2);
        int64_t axis = h_irand(1, r - 2); /* a legal non-batch axis (0 also works) */
        if (it % 7 == 0) axis = 0;
        d[axis] = lens[it % 7];
        int64_t L = -1; /* -1: no dft_length input */
        if (it % 3 == 1) L = lens[(it / 3) % 7] + (it % 2);
        if (inv && one && L < 0 && d[axis] < 2) d[axis] = 2;
        kiln_tensor *x = h_rand(dt, r, d);
        g_model->opset = opset;
        int n_in = opset >= 20 ? 3 : (L >= 0 ? 2 : 1);
        ir_node *n = h_node(OP_DFT, n_in, 1);
        n->in[0] = h_rt();
        kiln_tensor *lt = NULL, *at = NULL;
        bool rt = (it / 3) % 2 == 0;
        if (L >= 0) {
            lt = h_vec(1, &L);
            lt->rank = 0;
            n->in[1] = rt ? h_rt() : h_const(lt);
        }
        if (opset >= 20) {
            int64_t av = it % 5 == 0 ? axis - r : axis; /* negative form too */
            at = h_vec(1, &av);
            at->rank = 0;
            n->in[2] = rt ? h_rt() : h_const(at);
        } else {
            ir_edit_set_int(n, "axis", axis);
        }
        if (inv) ir_edit_set_int(n, "inverse", 1);
        if (one) ir_edit_set_int(n, "onesided", 1);
        kiln_tensor *in[3] = {x, lt, at};
        char desc[160];
        snprintf(desc, sizeof desc, "DFT opset %d %s rank %d axis %lld n %lld L %lld cin %lld%s%s%s",
                 opset, kiln_dtype_name(dt), r, (long long)axis, (long long)d[axis], (long long)L,
                 (long long)d[r - 1], inv ? " inverse" : "", one ? " onesided" : "",
                 rt ? " (runtime params)" : "");
        int64_t lmax = L > d[axis] ? L : 2 * d[axis];
        g_mag_floor = 4.0 * (double)lmax;
        h_check(n, in, CMP_FLOAT, NULL, true, desc);
        g_mag_floor = 0.0;
        g_model->opset = 18;
        tensor_free(x);
        if (rt) {
            tensor_free(lt);
            tensor_free(at);
        }
    }
}

/* STFT (opset 17): real and complex signals, rank 2 and 3, with and
** without a window, frame_length given or taken from the window/signal,
** onesided or not, frame_step 1..5, parameters as constants or runtime
** tensors (the _rtparams tactic); within the tolerance of the DFT cases. */
static void test_stft(kiln_dtype dt) {
    for (int it = 0; it < 40; it++) {
        int64_t B = h_irand(1, 3), len = h_irand(4, 40), fl = h_irand(1, len < 16 ? len : 16);
        int64_t step = h_irand(1, 5), cin = it % 3 == 2 ? 2 : 1;
        int r = cin == 2 || it % 4 == 1 ? 3 : 2;
        int64_t d[3] = {B, len, cin};
        kiln_tensor *x = h_rand(dt, r, d);
        bool win = it % 2 == 0, give_fl = !win || it % 3 == 0, one = it % 5 != 4;
        bool rt = (it / 2) % 3 == 1;
        if (!win && !give_fl) fl = len;
        ir_node *n = h_node(OP_STFT, 4, 1);
        n->in[0] = h_rt();
        kiln_tensor *st = h_vec(1, &step), *wt = NULL, *lt = NULL;
        st->rank = 0;
        n->in[1] = rt ? h_rt() : h_const(st);
        if (win) {
            int64_t wd = fl;
            wt = h_rand(dt, 1, &wd);
            n->in[2] = h_rt();
        }
        if (give_fl) {
            lt = h_vec(1, &fl);
            lt->rank = 0;
            n->in[3] = rt ? h_rt() : h_const(lt);
        }
        if (!one) ir_edit_set_int(n, "onesided", 0);
        kiln_tensor *in[4] = {x, st, wt, lt};
        char desc[160];
        snprintf(desc, sizeof desc, "STFT %s B %lld len %lld cin %lld fl %lld step %lld%s%s%s",
                 kiln_dtype_name(dt), (long long)B, (long long)len, (long long)cin,
                 (long long)fl, (long long)step, win ? " window" : "", one ? " onesided" : "",
                 rt ? " (runtime params)" : "");
        g_mag_floor = 4.0 * (double)fl;
        h_check(n, in, CMP_FLOAT, NULL, true, desc);
        g_mag_floor = 0.0;
        tensor_free(x);
        tensor_free(wt);
        if (rt) {
            tensor_free(st);
            tensor_free(lt);
        }
    }
}

/* A one-element tensor ([1], or a scalar with scalar) of type dt. */
static kiln_tensor *q_one(kiln_dtype dt, double v, bool scalar) {
    int64_t d = 1;
    kiln_tensor *t;
    if (tensor_new(dt, scalar ? 0 : 1, &d, &t)) h_die("tensor_new");
    if (dtype_is_float(dt)) dt_set_f64(dt, t->data, 0, v);
    else dt_set_i64(dt, t->data, 0, (int64_t)v);
    return t;
}

/* QLinearMatMul (per-tensor scales and zero points; constants, or runtime
** tensors for the _rtparams tactic): int8/uint8 A, B and Y in every
** combination, float32/float16 scales, 2-D to 4-D with batch broadcasting,
** K from 1 to 300, outputs that saturate; must match exactly. */
static void test_qlinear_matmul(void) {
    for (int it = 0; it < 64; it++) {
        kiln_dtype at = it % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_dtype bt = (it / 2) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_dtype yt = (it / 4) % 2 ? KILN_DTYPE_INT8 : KILN_DTYPE_UINT8;
        kiln_dtype st = (it / 8) % 2 ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_FLOAT32;
        bool rt = (it / 16) % 2 == 1;
        int ra = 2 + (int)h_irand(0, 2), rb = 2 + (int)h_irand(0, 2);
        int64_t M = h_irand(1, 9), K = it % 7 == 0 ? h_irand(100, 300) : h_irand(1, 17);
        int64_t N = h_irand(1, 9), ad[4], bd[4];
        for (int i = 0; i < ra - 2; i++) ad[i] = h_irand(1, 3);
        for (int i = 0; i < rb - 2; i++) bd[i] = h_irand(1, 3);
        /* make the batch dims broadcast-compatible (align from the right) */
        for (int i = 1; i <= ra - 2 && i <= rb - 2; i++)
            if (ad[ra - 2 - i] != bd[rb - 2 - i] && ad[ra - 2 - i] != 1) bd[rb - 2 - i] = 1;
        ad[ra - 2] = M, ad[ra - 1] = K, bd[rb - 2] = K, bd[rb - 1] = N;
        kiln_tensor *A = h_rand(at, ra, ad), *B = h_rand(bt, rb, bd);
        double as = 0.002 + rnd() * 0.05, bs = 0.002 + rnd() * 0.05;
        double ys = as * bs * sqrt((double)K) * (20 + rnd() * 80); /* some saturation */
        kiln_tensor *q[8] = {A, q_one(st, as, it % 3 == 0),
                             q_one(at, at == KILN_DTYPE_INT8 ? h_irand(-20, 20) : h_irand(0, 255), false),
                             B, q_one(st, bs, false),
                             q_one(bt, bt == KILN_DTYPE_INT8 ? h_irand(-20, 20) : h_irand(0, 255), false),
                             q_one(st, ys, false),
                             q_one(yt, yt == KILN_DTYPE_INT8 ? h_irand(-10, 10) : h_irand(100, 150), false)};
        ir_node *n = h_node(OP_QLinearMatMul, 8, 1);
        for (int i = 0; i < 8; i++) n->in[i] = i == 0 || i == 3 || rt ? h_rt() : h_const(q[i]);
        char desc[200];
        snprintf(desc, sizeof desc, "QLinearMatMul A %s B %s Y %s scales %s (%s) A rank %d B rank %d "
                 "M %lld K %lld N %lld", kiln_dtype_name(at), kiln_dtype_name(bt),
                 kiln_dtype_name(yt), kiln_dtype_name(st), rt ? "runtime" : "constant", ra, rb,
                 (long long)M, (long long)K, (long long)N);
        h_check(n, q, CMP_EXACT, NULL, true, desc);
        tensor_free(A);
        tensor_free(B);
        if (rt)
            for (int i = 0; i < 8; i++)
                if (i != 0 && i != 3) tensor_free(q[i]);
    }
}

int main(void) {
    if (h_open(18)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    for (int t = 0; t < 4; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            const ein_case *ec = &k_cases[c];
            kiln_dtype dt = k_types[t];
            kiln_tensor *in[3] = {0}, *mag[3] = {0};
            ir_node *n = h_node(OP_Einsum, ec->n, 1);
            for (int i = 0; i < ec->n; i++) {
                in[i] = h_rand(dt, ec->rank[i], ec->dims[i]);
                mag[i] = h_abs(in[i]);
                n->in[i] = h_rt();
            }
            ir_edit_set_str(n, "equation", ec->eq);
            char desc[128];
            snprintf(desc, sizeof desc, "Einsum '%s' %s (case %zu)", ec->eq, kiln_dtype_name(dt),
                     c);
            h_check(n, in, CMP_FLOAT, mag, true, desc);
            for (int i = 0; i < ec->n; i++) {
                tensor_free(in[i]);
                tensor_free(mag[i]);
            }
        }
    for (int t = 0; t < 4; t++) test_dft(k_types[t]);
    g_model->opset = 17;
    for (int t = 0; t < 4; t++) test_stft(k_types[t]);
    g_model->opset = 21;
    test_qlinear_matmul();
    g_model->opset = 18;
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
