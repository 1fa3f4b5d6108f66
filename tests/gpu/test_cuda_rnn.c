/* test_cuda_rnn.c: the CUDA LSTM / GRU / RNN tactics (cuda_gemm.c,
** kernels/rnn.cu) against the reference kernels, over every output (Y,
** Y_h, Y_c): forward, reverse and bidirectional; layout 0 and 1; with and
** without bias, initial_h / initial_c, peepholes, sequence_lens (rows
** shorter than the sequence, and 0), clip, input_forget,
** linear_before_reset, non-default activations (with alpha/beta);
** hidden sizes 1 to 300 (past the block's 256 threads), odd input sizes,
** batch 1 to 4; float32/16/bf16. Weights are scaled to 0.15 of the usual
** [-2, 2] so the recurrences stay in a contracting regime. Within 1e-5
** (f32), 2e-3 (f16), 2e-2 (bf16) of max(|want|, 1). Ends with `N passed,
** M failed`; without a GPU it prints "0 passed, 0 failed (no GPU)"
** (KILN_GPU_TEST_DRY=1: checks the cases and the tactic choice only). */
#include "gpu_test.h"

static const kiln_dtype k_types[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};

static void scale_t(kiln_tensor *t, double f) {
    for (int64_t i = 0; i < tensor_numel(t); i++)
        dt_set_f64(t->dtype, t->data, (size_t)i, dt_get_f64(t->dtype, t->data, (size_t)i) * f);
}

static void run_rnn(int op, kiln_dtype dt, int it) {
    static const char *const dirs[] = {"forward", "reverse", "bidirectional"};
    int G = op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1, nacts = op == OP_LSTM ? 3 : op == OP_GRU ? 2 : 1;
    int di = it % 3, ndir = di == 2 ? 2 : 1, layout = (it / 3) % 2;
    int64_t S = h_irand(1, 7), B = h_irand(1, 4), I = h_irand(1, 13);
    int64_t H = it % 11 == 5 ? 300 : h_irand(1, 16);
    bool bias = it % 4 != 1, h0 = it % 3 != 0, c0 = op == OP_LSTM && it % 2 == 0;
    bool peep = op == OP_LSTM && it % 5 == 2, lens = it % 4 == 3, clip = it % 6 == 4;
    bool ifg = op == OP_LSTM && it % 7 == 3, lbr = op == OP_GRU && it % 2 == 1;
    bool acts = it % 8 == 6;
    int64_t xd[3] = {layout ? B : S, layout ? S : B, I}, wd[3] = {ndir, G * H, I};
    int64_t rd[3] = {ndir, G * H, H}, bd[2] = {ndir, 2 * G * H};
    int64_t hd[3] = {layout ? B : ndir, layout ? ndir : B, H}, pd[2] = {ndir, 3 * H}, ld[1] = {B};
    kiln_tensor *in[8] = {0};
    in[0] = h_rand(dt, 3, xd);
    in[1] = h_rand(dt, 3, wd);
    in[2] = h_rand(dt, 3, rd);
    scale_t(in[1], 0.15);
    scale_t(in[2], 0.15);
    if (bias) in[3] = h_rand(dt, 2, bd);
    if (lens) {
        if (tensor_new(KILN_DTYPE_INT32, 1, ld, &in[4])) h_die("tensor_new");
        for (int64_t b = 0; b < B; b++)
            ((int32_t *)in[4]->data)[b] = b == 0 ? (int32_t)S : (int32_t)h_irand(0, S);
    }
    if (h0) in[5] = h_rand(dt, 3, hd);
    if (c0) in[6] = h_rand(dt, 3, hd);
    if (peep) {
        in[7] = h_rand(dt, 2, pd);
        scale_t(in[7], 0.3);
    }
    int n_in = op == OP_LSTM ? (peep ? 8 : c0 ? 7 : 6) : 6;
    int n_out = op == OP_LSTM ? 3 : 2;
    ir_node *n = h_node(op, n_in, n_out);
    for (int i = 0; i < n_in; i++) n->in[i] = in[i] ? h_rt() : NULL;
    ir_edit_set_str(n, "direction", dirs[di]);
    ir_edit_set_int(n, "hidden_size", H);
    if (layout) ir_edit_set_int(n, "layout", 1);
    if (clip) ir_edit_set_float(n, "clip", 0.8f);
    if (ifg) ir_edit_set_int(n, "input_forget", 1);
    if (lbr) ir_edit_set_int(n, "linear_before_reset", 1);
    if (acts) {
        /* bounded ones, with parameters: HardSigmoid (gates), ScaledTanh, Softsign */
        static const char *const pick[3] = {"HardSigmoid", "ScaledTanh", "Softsign"};
        /* a list-of-strings attribute (ir_edit has no setter for one):
        ** made as a string, then turned into the list form, the list
        ** itself in the model's arena */
        const char **names = kiln_arena_alloc(&g_model->arena, 6 * sizeof *names);
        if (!names || !ir_edit_set_str(n, "activations", "")) h_die("attribute");
        for (int k = 0; k < nacts * ndir; k++) names[k] = pick[k % nacts];
        ir_attr *la = (ir_attr *)ir_attr_find(n, "activations");
        la->type = IR_ATTR_STRINGS;
        la->strings = names;
        la->n = nacts * ndir;
        float al[6] = {0.3f, 0.9f, 0.25f, 0.8f, 0.35f, 0.7f}, be[6] = {0.45f, 1.1f, 0.5f, 0.9f, 0.55f, 1.2f};
        ir_edit_set_floats(n, "activation_alpha", al, 2 * ndir);
        ir_edit_set_floats(n, "activation_beta", be, 2 * ndir);
    }
    char desc[240];
    snprintf(desc, sizeof desc,
             "%s %s %s layout %d S %lld B %lld I %lld H %lld%s%s%s%s%s%s%s%s%s",
             op == OP_LSTM ? "LSTM" : op == OP_GRU ? "GRU" : "RNN", kiln_dtype_name(dt),
             dirs[di], layout, (long long)S, (long long)B, (long long)I, (long long)H,
             bias ? " bias" : "", h0 ? " h0" : "", c0 ? " c0" : "", peep ? " peepholes" : "",
             lens ? " sequence_lens" : "", clip ? " clip" : "", ifg ? " input_forget" : "",
             lbr ? " linear_before_reset" : "", acts ? " activations" : "");
    g_mag_floor = 1.0;
    h_check(n, in, CMP_FLOAT, NULL, true, desc);
    g_mag_floor = 0.0;
    for (int i = 0; i < 8; i++) tensor_free(in[i]);
}

int main(void) {
    if (h_open(22)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    static const int ops[] = {OP_LSTM, OP_GRU, OP_RNN};
    for (int t = 0; t < 3; t++)
        for (int o = 0; o < 3; o++)
            for (int it = 0; it < 24; it++) run_rnn(ops[o], k_types[t], it);
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
