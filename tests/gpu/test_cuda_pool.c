/* test_cuda_pool.c: the CUDA pooling and resize tactics (cuda_pool.c)
** against the reference kernels: MaxPool/AveragePool/LpPool over 1-3
** spatial dims with random kernels, strides, pads, dilations, ceil_mode,
** count_include_pad and auto_pad; the global pools (odd planes and the
** 16-byte load path); Resize nearest with every coordinate mode and
** rounding rule, linear and cubic, from scales or sizes; float32/16/bf16.
** Windowed maxima and nearest resizes must match exactly; sums within
** 1e-5 (f32), 2e-3 (f16), 2e-2 (bf16) of the magnitude (the reference on
** absolute values; for cubic, whose weights go negative, at least the
** largest input magnitude, 2). Ends with `N passed, M failed`; without a GPU it
** prints "0 passed, 0 failed (no GPU)" and succeeds. */
#include "gpu_test.h"

static const kiln_dtype k_ftypes[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};

static void test_pools(void) {
    static const int ops[] = {OP_MaxPool, OP_AveragePool, OP_LpPool};
    static const char *const names[] = {"MaxPool", "AveragePool", "LpPool"};
    for (int it = 0; it < 150; it++) {
        int which = it % 3, nsp = (int)h_irand(1, 3);
        kiln_dtype dt = k_ftypes[(it / 3) % 3];
        int64_t d[5], k[3], s[3], dl[3], pads[6];
        d[0] = h_irand(1, 2);
        d[1] = h_irand(1, 5);
        for (int i = 0; i < nsp; i++) {
            d[2 + i] = h_irand(1, nsp == 3 ? 7 : 13);
            k[i] = h_irand(1, 3);
            s[i] = h_irand(1, 3);
            dl[i] = which == 0 && rnd() < 0.3 ? 2 : 1;
            pads[i] = h_irand(0, k[i] - 1);
            pads[nsp + i] = h_irand(0, k[i] - 1);
        }
        kiln_tensor *x = h_rand(dt, 2 + nsp, d);
        ir_node *n = h_node(ops[which], 1, 1);
        n->in[0] = h_rt();
        ir_edit_set_ints(n, "kernel_shape", k, nsp);
        ir_edit_set_ints(n, "strides", s, nsp);
        if (which == 0) ir_edit_set_ints(n, "dilations", dl, nsp);
        int ap = (int)h_irand(0, 5);
        if (ap == 0) ir_edit_set_str(n, "auto_pad", "SAME_UPPER");
        else if (ap == 1) ir_edit_set_str(n, "auto_pad", "VALID");
        else ir_edit_set_ints(n, "pads", pads, 2 * nsp);
        if (which != 2 && rnd() < 0.4) ir_edit_set_int(n, "ceil_mode", 1);
        if (which == 1 && rnd() < 0.5) ir_edit_set_int(n, "count_include_pad", 1);
        if (which == 2) ir_edit_set_int(n, "p", h_irand(1, 3));
        kiln_tensor *in[1] = {x}, *ax = h_abs(x), *mag[1] = {ax};
        char desc[96];
        snprintf(desc, sizeof desc, "%s %dD %s", names[which], nsp, kiln_dtype_name(dt));
        h_check(n, in, which == 0 ? CMP_EXACT : CMP_FLOAT, which == 0 ? NULL : mag, true, desc);
        tensor_free(x);
        tensor_free(ax);
    }
    /* ResNet's stem pool */
    int64_t d[4] = {2, 64, 112, 112}, k[2] = {3, 3}, s[2] = {2, 2}, p[4] = {1, 1, 1, 1};
    for (int t = 0; t < 3; t++) {
        kiln_tensor *x = h_rand(k_ftypes[t], 4, d);
        ir_node *n = h_node(OP_MaxPool, 1, 1);
        n->in[0] = h_rt();
        ir_edit_set_ints(n, "kernel_shape", k, 2);
        ir_edit_set_ints(n, "strides", s, 2);
        ir_edit_set_ints(n, "pads", p, 4);
        kiln_tensor *in[1] = {x};
        h_check(n, in, CMP_EXACT, NULL, true, "MaxPool resnet stem");
        tensor_free(x);
    }
}

static void test_global(void) {
    static const int ops[] = {OP_GlobalAveragePool, OP_GlobalMaxPool, OP_GlobalLpPool};
    static const int64_t fixed[][4] = {{2, 2048, 7, 7}, {1, 1280, 7, 7}, {3, 64, 56, 56},
                                       {1, 5, 1, 1},    {2, 3, 4, 2},    {1, 7, 8, 8}};
    for (int f = 0; f < 6; f++)
        for (int t = 0; t < 3; t++)
            for (int o = 0; o < 3; o++) {
                kiln_tensor *x = h_rand(k_ftypes[t], 4, fixed[f]), *ax = h_abs(x);
                ir_node *n = h_node(ops[o], 1, 1);
                n->in[0] = h_rt();
                kiln_tensor *in[1] = {x}, *mag[1] = {ax};
                char desc[96];
                snprintf(desc, sizeof desc, "global pool %d shape %d %s", o, f,
                         kiln_dtype_name(k_ftypes[t]));
                /* only the average form has a device tactic now (cuda_pool.c) */
                h_check(n, in, o == 1 ? CMP_EXACT : CMP_FLOAT, o == 1 ? NULL : mag, o == 0,
                        desc);
                tensor_free(x);
                tensor_free(ax);
            }
    for (int it = 0; it < 30; it++) {
        int r = (int)h_irand(2, 5);
        int64_t d[5];
        for (int a = 0; a < r; a++) d[a] = h_irand(1, a < 2 ? 6 : 9);
        kiln_dtype dt = k_ftypes[it % 3];
        int o = (int)h_irand(0, 2);
        kiln_tensor *x = h_rand(dt, r, d), *ax = h_abs(x);
        ir_node *n = h_node(ops[o], 1, 1);
        n->in[0] = h_rt();
        kiln_tensor *in[1] = {x}, *mag[1] = {ax};
        h_check(n, in, o == 1 ? CMP_EXACT : CMP_FLOAT, o == 1 ? NULL : mag, o == 0,
                "global pool random");
        tensor_free(x);
        tensor_free(ax);
    }
}

static void test_resize(void) {
    static const char *const coords[] = {"half_pixel",   "half_pixel_symmetric", "pytorch_half_pixel",
                                         "align_corners", "asymmetric",          "tf_crop_and_resize",
                                         "tf_half_pixel_for_nn"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const float scale_set[] = {0.5f, 0.6f, 0.75f, 1.0f, 1.5f, 2.0f, 3.0f, 1.7f, 2.5f};
    for (int it = 0; it < 300; it++) {
        /* nearest, linear, nearest, cubic, ... */
        bool linear = it % 2 == 1, cubic = it % 4 == 3;
        int coord = (it / 2) % 7;
        if (linear && coord == 6) coord = 0; /* tf_half_pixel_for_nn is for nearest */
        int r = it % 9 == 0 ? 3 : it % 9 == 4 ? 5 : 4;
        int64_t d[5];
        d[0] = h_irand(1, 2);
        d[1] = h_irand(1, 3);
        for (int a = 2; a < r; a++) d[a] = h_irand(1, 9);
        kiln_dtype dt = linear || it % 5 ? k_ftypes[(it / 14) % 3] : KILN_DTYPE_UINT8;
        if (coord == 5 && !dtype_is_float(dt)) dt = KILN_DTYPE_FLOAT32;
        kiln_tensor *x = h_rand(dt, r, d), *ax = h_abs(x);
        ir_node *n = h_node(OP_Resize, 4, 1);
        n->in[0] = h_rt();
        ir_edit_set_str(n, "mode", cubic ? "cubic" : linear ? "linear" : "nearest");
        if (cubic && rnd() < 0.5) ir_edit_set_float(n, "cubic_coeff_a", -0.5f);
        ir_edit_set_str(n, "coordinate_transformation_mode", coords[coord]);
        if (!linear) ir_edit_set_str(n, "nearest_mode", nearests[h_irand(0, 3)]);
        if (rnd() < 0.2) ir_edit_set_int(n, "exclude_outside", 1);
        kiln_tensor *roi = NULL, *sc = NULL, *sz = NULL;
        if (coord == 5) {
            float rv[10];
            for (int a = 0; a < r; a++) {
                bool sp = a >= 2;
                rv[a] = sp ? (float)(rnd() * 0.6 - 0.1) : 0.f;
                rv[r + a] = sp ? (float)(rnd() * 0.6 + 0.5) : 1.f;
            }
            roi = h_f32vec(2 * r, rv);
            ir_edit_set_float(n, "extrapolation_value", -3.5f);
        }
        if (it % 3 == 2) {
            int64_t sv[5];
            for (int a = 0; a < r; a++) sv[a] = a < 2 ? d[a] : h_irand(1, 17);
            sz = h_vec(r, sv);
        } else {
            float sv[5];
            for (int a = 0; a < r; a++) sv[a] = a < 2 ? 1.f : scale_set[h_irand(0, 8)];
            sc = h_f32vec(r, sv);
        }
        n->in[1] = roi ? h_const(roi) : NULL;
        n->in[2] = sc ? h_const(sc) : NULL;
        n->in[3] = sz ? h_const(sz) : NULL;
        kiln_tensor *in[4] = {x, roi, sc, sz}, *mag[4] = {ax, roi, sc, sz};
        char desc[128];
        snprintf(desc, sizeof desc, "Resize %s %s rank %d %s %s",
                 cubic ? "cubic" : linear ? "linear" : "nearest",
                 coords[coord], r, kiln_dtype_name(dt), sz ? "sizes" : "scales");
        g_mag_floor = cubic ? 2.0 : 0.0;
        /* cubic with half_pixel_symmetric stays on the host (cuda_pool.c) */
        bool host = cubic && !strcmp(coords[coord], "half_pixel_symmetric");
        h_check(n, in, linear ? CMP_FLOAT : CMP_EXACT, linear ? mag : NULL, !host, desc);
        g_mag_floor = 0.0;
        tensor_free(x);
        tensor_free(ax);
    }
    /* YOLO-style 2x nearest upsample of a feature map */
    int64_t d[4] = {1, 255, 20, 20};
    float sv[4] = {1, 1, 2, 2};
    for (int t = 0; t < 3; t++) {
        kiln_tensor *x = h_rand(k_ftypes[t], 4, d), *sc = h_f32vec(4, sv);
        ir_node *n = h_node(OP_Resize, 3, 1);
        n->in[0] = h_rt();
        n->in[2] = h_const(sc);
        ir_edit_set_str(n, "mode", "nearest");
        ir_edit_set_str(n, "coordinate_transformation_mode", "asymmetric");
        ir_edit_set_str(n, "nearest_mode", "floor");
        kiln_tensor *in[3] = {x, NULL, sc};
        h_check(n, in, CMP_EXACT, NULL, true, "Resize yolo 2x");
        tensor_free(x);
    }
}

int main(void) {
    if (h_open(18)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    test_pools();
    test_global();
    test_resize();
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
