/* test_cuda_pool.c: the CUDA pooling and resampling tactics (cuda_pool.c)
** against the reference kernels: MaxPool (and its Indices output, both
** storage orders)/AveragePool/LpPool over 1-3 spatial dims with random
** kernels, strides, pads, dilations, ceil_mode, count_include_pad and
** auto_pad; the global pools (odd planes, plane sizes around the warp
** width, all-negative data for the maximum, Lp with p 1, 2, 3); Resize
** nearest with every coordinate mode and rounding rule, linear and cubic,
** from scales or sizes given as constants or runtime tensors, and
** antialiased; GridSample; AffineGrid; LRN; RoiAlign; MaxRoiPool;
** float32/16/bf16.
** Windowed maxima and nearest resizes must match exactly; sums within
** 1e-5 (f32), 2e-3 (f16), 2e-2 (bf16) of the magnitude (the reference on
** absolute values; for cubic, whose weights go negative, at least the
** largest input magnitude, 2). Ends with `N passed, M failed`; without a GPU it
** prints "0 passed, 0 failed (no GPU)" and succeeds (KILN_GPU_TEST_DRY=1:
** checks the cases and the tactic choice without running them). */
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
    /* MaxPool with its Indices output, row- and column-major (storage_order),
    ** 1-D to 3-D, pads, strides, dilations, ceil_mode; both outputs exact */
    for (int it = 0; it < 48; it++) {
        int nsp = 1 + it % 3;
        kiln_dtype dt = k_ftypes[(it / 3) % 3];
        int64_t d[5], k[3], s[3], dl[3], pads[6];
        d[0] = h_irand(1, 2);
        d[1] = h_irand(1, 4);
        for (int i = 0; i < nsp; i++) {
            d[2 + i] = h_irand(2, nsp == 3 ? 6 : 11);
            k[i] = h_irand(1, 3);
            s[i] = h_irand(1, 2);
            dl[i] = rnd() < 0.3 ? 2 : 1;
            pads[i] = h_irand(0, k[i] - 1);
            pads[nsp + i] = h_irand(0, k[i] - 1);
        }
        kiln_tensor *x = h_rand(dt, 2 + nsp, d);
        ir_node *n = h_node(OP_MaxPool, 1, 2);
        n->in[0] = h_rt();
        ir_edit_set_ints(n, "kernel_shape", k, nsp);
        ir_edit_set_ints(n, "strides", s, nsp);
        ir_edit_set_ints(n, "dilations", dl, nsp);
        ir_edit_set_ints(n, "pads", pads, 2 * nsp);
        bool cm = it % 2 == 1;
        if (cm) ir_edit_set_int(n, "storage_order", 1);
        if (it % 5 == 0) ir_edit_set_int(n, "ceil_mode", 1);
        kiln_tensor *in[1] = {x};
        char desc[96];
        snprintf(desc, sizeof desc, "MaxPool+Indices %dD %s storage_order %d", nsp,
                 kiln_dtype_name(dt), (int)cm);
        h_check(n, in, CMP_EXACT, NULL, true, desc);
        tensor_free(x);
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
                h_check(n, in, o == 1 ? CMP_EXACT : CMP_FLOAT, o == 1 ? NULL : mag, true, desc);
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
        char desc[128];
        snprintf(desc, sizeof desc, "global pool random op %d rank %d dims %lldx%lld.. %s", o, r,
                 (long long)d[0], (long long)d[1], kiln_dtype_name(dt));
        h_check(n, in, o == 1 ? CMP_EXACT : CMP_FLOAT, o == 1 ? NULL : mag, true, desc);
        tensor_free(x);
        tensor_free(ax);
    }
    /* Max and Lp (the forms that went wrong on an H100 once): plane sizes
    ** around the warp width and odd ones, all-negative data (a maximum
    ** that starts at 0 would show), one large value at the plane's last
    ** element (a lane or tail that is skipped would show), Lp with p 1, 2
    ** and 3, rank 3 to 5. */
    static const int64_t plane_n[] = {1, 2, 31, 32, 33, 63, 64, 65, 49, 97, 1000, 4099};
    for (int it = 0; it < 72; it++) {
        int64_t pn = plane_n[it % 12];
        kiln_dtype dt = k_ftypes[(it / 12) % 3];
        int o = 1 + (it / 36) % 2, r = 3 + it % 3;
        int64_t d[5] = {h_irand(1, 3), h_irand(1, 19), 1, 1, 1};
        d[r - 1] = pn; /* the whole plane on the last axis */
        kiln_tensor *x = h_rand(dt, r, d);
        int64_t total = tensor_numel(x), planes = d[0] * d[1];
        for (int64_t i = 0; i < total; i++) {
            double v = dt_get_f64(dt, x->data, (size_t)i);
            if (o == 1) v = -fabs(v) - 0.25; /* all negative */
            if (i % pn == pn - 1 && (i / pn) % 2 == 0) v = o == 1 ? -0.125 : 3.0;
            dt_set_f64(dt, x->data, (size_t)i, v);
        }
        kiln_tensor *ax = h_abs(x);
        ir_node *n = h_node(ops[o], 1, 1);
        n->in[0] = h_rt();
        int64_t pv = o == 2 ? 1 + it % 3 : 2;
        if (o == 2) ir_edit_set_int(n, "p", pv);
        kiln_tensor *in[1] = {x}, *mag[1] = {ax};
        char desc[128];
        snprintf(desc, sizeof desc, "%s rank %d planes %lld of %lld p %lld %s",
                 o == 1 ? "GlobalMaxPool" : "GlobalLpPool", r, (long long)planes, (long long)pn,
                 (long long)pv, kiln_dtype_name(dt));
        h_check(n, in, o == 1 ? CMP_EXACT : CMP_FLOAT, o == 1 ? NULL : mag, true, desc);
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
        /* roi, scales and sizes as constants, or (about half the cases)
        ** as runtime tensors the _rtparams tactic reads on the host */
        bool rtp = rnd() < 0.5;
        n->in[1] = roi ? (rtp && rnd() < 0.7 ? h_rt() : h_const(roi)) : NULL;
        n->in[2] = sc ? (rtp ? h_rt() : h_const(sc)) : NULL;
        n->in[3] = sz ? (rtp ? h_rt() : h_const(sz)) : NULL;
        kiln_tensor *in[4] = {x, roi, sc, sz}, *mag[4] = {ax, roi, sc, sz};
        char desc[128];
        snprintf(desc, sizeof desc, "Resize %s %s rank %d %s %s%s dims %lldx%lldx%lld",
                 cubic ? "cubic" : linear ? "linear" : "nearest",
                 coords[coord], r, kiln_dtype_name(dt), sz ? "sizes" : "scales",
                 rtp ? " (runtime params)" : "", (long long)d[r - 3], (long long)d[r - 2],
                 (long long)d[r - 1]);
        g_mag_floor = cubic ? 2.0 : 0.0;
        /* cubic with half_pixel_symmetric stays on the host (cuda_pool.c) */
        bool host = cubic && !strcmp(coords[coord], "half_pixel_symmetric");
        h_check(n, in, linear ? CMP_FLOAT : CMP_EXACT, linear ? mag : NULL, !host, desc);
        g_mag_floor = 0.0;
        /* runtime parameters stay the test's (constants belong to the model) */
        if (roi && !n->in[1]->const_val) tensor_free(roi);
        if (sc && !n->in[2]->const_val) tensor_free(sc);
        if (sz && !n->in[3]->const_val) tensor_free(sz);
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

/* Antialiased Resize (linear and cubic): downscales from 0.9 to 0.2
** (taps per axis from 2 up to 20), an upscale (antialias changes nothing
** there), scales or sizes, exclude_outside, several coordinate modes,
** rank 3 to 5 (1 to 3 resized axes), constants or runtime parameters;
** linear within the usual tolerance of the |X| run, cubic of max(that, 2). */
static void test_resize_antialias(void) {
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "asymmetric"};
    static const float scale_set[] = {0.9f, 0.75f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 1.0f, 1.5f};
    for (int it = 0; it < 90; it++) {
        bool cubic = it % 2 == 1, rtp = (it / 2) % 3 == 1, sizes = (it / 6) % 2 == 1;
        int r = 3 + (it / 4) % 3, coord = (it / 3) % 4;
        kiln_dtype dt = k_ftypes[(it / 12) % 3];
        int64_t d[5];
        d[0] = h_irand(1, 2);
        d[1] = h_irand(1, 3);
        for (int a = 2; a < r; a++) d[a] = h_irand(1, r == 5 ? 12 : 24);
        kiln_tensor *x = h_rand(dt, r, d), *ax = h_abs(x), *sc = NULL, *sz = NULL;
        if (sizes) {
            int64_t sv[5];
            for (int a = 0; a < r; a++)
                sv[a] = a < 2 ? d[a] : (int64_t)fmax(1.0, floor((double)d[a] * scale_set[h_irand(0, 8)]));
            sz = h_vec(r, sv);
        } else {
            float sv[5];
            for (int a = 0; a < r; a++) sv[a] = a < 2 ? 1.f : scale_set[h_irand(0, 8)];
            sc = h_f32vec(r, sv);
        }
        ir_node *n = h_node(OP_Resize, 4, 1);
        n->in[0] = h_rt();
        n->in[1] = NULL;
        n->in[2] = sc ? (rtp ? h_rt() : h_const(sc)) : NULL;
        n->in[3] = sz ? (rtp ? h_rt() : h_const(sz)) : NULL;
        ir_edit_set_str(n, "mode", cubic ? "cubic" : "linear");
        ir_edit_set_int(n, "antialias", 1);
        ir_edit_set_str(n, "coordinate_transformation_mode", coords[coord]);
        if (it % 5 == 2) ir_edit_set_int(n, "exclude_outside", 1);
        if (cubic && it % 3 == 0) ir_edit_set_float(n, "cubic_coeff_a", -0.5f);
        kiln_tensor *in[4] = {x, NULL, sc, sz}, *mag[4] = {ax, NULL, sc, sz};
        char desc[160];
        snprintf(desc, sizeof desc, "Resize antialias %s %s rank %d %s %s%s dims %lldx%lld..",
                 cubic ? "cubic" : "linear", coords[coord], r, kiln_dtype_name(dt),
                 sizes ? "sizes" : "scales", rtp ? " (runtime params)" : "", (long long)d[2],
                 (long long)(r > 3 ? d[3] : 1));
        g_mag_floor = cubic ? 2.0 : 0.0;
        h_check(n, in, CMP_FLOAT, mag, true, desc);
        g_mag_floor = 0.0;
        tensor_free(x);
        tensor_free(ax);
        if (rtp) {
            tensor_free(sc);
            tensor_free(sz);
        }
    }
}

/* GridSample: 1 to 3 spatial dims, every mode (linear, nearest, cubic)
** and padding (zeros, border, reflection), align_corners, grids reaching
** about twice past the borders (the padding rules), odd sizes and 1,
** float32/16/bf16 X and grid (grid in X's type or float32). Nearest must
** match exactly; linear within the usual tolerance of the reference on
** |X|; cubic (negative weights) of at least 2. */
static void test_grid_sample(void) {
    static const char *const modes[] = {"linear", "nearest", "cubic", "bilinear", "bicubic"};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    for (int it = 0; it < 180; it++) {
        int mi = it % 5, pi = (it / 5) % 3, k = it % 7 == 0 ? 1 : it % 3 == 0 ? 3 : 2;
        if (mi % 3 == 2 && k == 3) k = 2; /* keep cubic at up to 2-D: 4^k taps */
        bool ac = (it / 15) % 2 == 1;
        kiln_dtype dt = k_ftypes[(it / 30) % 3];
        kiln_dtype gt = it % 4 == 0 ? KILN_DTYPE_FLOAT32 : dt;
        int r = k + 2;
        int64_t xd[5], gd[5];
        xd[0] = gd[0] = h_irand(1, 2);
        xd[1] = h_irand(1, 4);
        for (int d = 0; d < k; d++) {
            xd[2 + d] = h_irand(1, k == 3 ? 5 : 9);
            gd[1 + d] = h_irand(1, k == 3 ? 4 : 7);
        }
        gd[r - 1] = k;
        kiln_tensor *x = h_rand(dt, r, xd), *g = h_rand(gt, r, gd), *ax = h_abs(x);
        if (it % 6 == 1) { /* a grid inside [-1, 1]: interpolation away from the borders */
            for (int64_t i = 0; i < tensor_numel(g); i++)
                dt_set_f64(gt, g->data, (size_t)i, dt_get_f64(gt, g->data, (size_t)i) / 2);
        }
        ir_node *n = h_node(OP_GridSample, 2, 1);
        n->in[0] = h_rt();
        n->in[1] = h_rt();
        ir_edit_set_str(n, "mode", modes[mi]);
        ir_edit_set_str(n, "padding_mode", pads[pi]);
        if (ac) ir_edit_set_int(n, "align_corners", 1);
        kiln_tensor *in[2] = {x, g}, *mag[2] = {ax, g};
        char desc[160];
        snprintf(desc, sizeof desc, "GridSample %s %s align_corners %d %dD X %s grid %s "
                 "X %lldx%lldx%lld.. grid out %lldx%lld..", modes[mi], pads[pi], (int)ac, k,
                 kiln_dtype_name(dt), kiln_dtype_name(gt), (long long)xd[0], (long long)xd[1],
                 (long long)xd[2], (long long)gd[1], (long long)(k > 1 ? gd[2] : 1));
        bool nearest = mi == 1, cubic = mi == 2 || mi == 4; /* cubic, bicubic */
        g_mag_floor = cubic ? 2.0 : 0.0;
        h_check(n, in, nearest ? CMP_EXACT : CMP_FLOAT, nearest ? NULL : mag, true, desc);
        g_mag_floor = 0.0;
        tensor_free(x);
        tensor_free(g);
        tensor_free(ax);
    }
}

/* AffineGrid: 2-D and 3-D, align_corners, output sizes 1 and odd, size as
** a constant or a runtime tensor (the _rtparams tactic), float32/16/bf16
** theta; within the usual tolerance of max(|want|, 2). */
static void test_affine_grid(void) {
    for (int it = 0; it < 48; it++) {
        int k = it % 2 ? 3 : 2;
        bool ac = (it / 2) % 2 == 1, rt = (it / 4) % 2 == 1;
        kiln_dtype dt = k_ftypes[(it / 8) % 3];
        int64_t N = h_irand(1, 3), td[3] = {N, k, k + 1}, sv[5] = {N, h_irand(1, 4)};
        for (int i = 0; i < k; i++) sv[2 + i] = it % 5 == 0 ? 1 : h_irand(1, k == 3 ? 6 : 11);
        kiln_tensor *th = h_rand(dt, 3, td), *sz = h_vec(k + 2, sv);
        ir_node *n = h_node(OP_AffineGrid, 2, 1);
        n->in[0] = h_rt();
        n->in[1] = rt ? h_rt() : h_const(sz);
        if (ac) ir_edit_set_int(n, "align_corners", 1);
        kiln_tensor *in[2] = {th, sz};
        char desc[128];
        snprintf(desc, sizeof desc, "AffineGrid %dD %s align_corners %d size %s N %lld out %lldx%lld%s",
                 k, kiln_dtype_name(dt), (int)ac, rt ? "runtime" : "constant", (long long)N,
                 (long long)sv[2], (long long)sv[3], k == 3 ? "x.." : "");
        g_mag_floor = 2.0;
        h_check(n, in, CMP_FLOAT, NULL, true, desc);
        g_mag_floor = 0.0;
        tensor_free(th);
        if (rt) tensor_free(sz);
    }
}

/* LRN: sizes 1 to 6 (odd and even windows), channel counts below and
** above the window, rank 2 to 5, non-default alpha/beta/bias. */
static void test_lrn(void) {
    for (int it = 0; it < 36; it++) {
        int r = 2 + it % 4;
        kiln_dtype dt = k_ftypes[(it / 4) % 3];
        int64_t d[5] = {h_irand(1, 2), h_irand(1, 9)};
        for (int a = 2; a < r; a++) d[a] = h_irand(1, 6);
        kiln_tensor *x = h_rand(dt, r, d);
        ir_node *n = h_node(OP_LRN, 1, 1);
        n->in[0] = h_rt();
        int64_t size = h_irand(1, 6);
        ir_edit_set_int(n, "size", size);
        if (it % 3 == 1) {
            ir_edit_set_float(n, "alpha", 0.02f);
            ir_edit_set_float(n, "beta", 0.6f);
            ir_edit_set_float(n, "bias", 2.0f);
        }
        kiln_tensor *in[1] = {x};
        char desc[96];
        snprintf(desc, sizeof desc, "LRN rank %d C %lld size %lld %s", r, (long long)d[1],
                 (long long)size, kiln_dtype_name(dt));
        h_check(n, in, CMP_FLOAT, NULL, true, desc);
        tensor_free(x);
    }
}

/* RoiAlign (avg/max, half_pixel and output_half_pixel, sampling_ratio 0
** adaptive or 1-3, spatial_scale 1/0.5/0.25, boxes inside, across and
** outside the image, inverted ones) and MaxRoiPool (pooled sizes 1-4,
** boxes partly outside); float32/16/bf16. Within the usual tolerance of
** the result on |X|. */
static kiln_tensor *h_boxes(kiln_dtype dt, int64_t r, int cols, int64_t n, int64_t h, int64_t w,
                            double inv_scale, bool batch_col) {
    int64_t d[2] = {r, cols};
    kiln_tensor *t;
    if (tensor_new(dt, 2, d, &t)) gt_die("tensor_new");
    for (int64_t i = 0; i < r; i++) {
        int o = batch_col ? 1 : 0;
        if (batch_col) dt_set_f64(dt, t->data, (size_t)(i * cols), (double)h_irand(0, n - 1));
        double x1 = (rnd() * (w + 4) - 2) * inv_scale, y1 = (rnd() * (h + 4) - 2) * inv_scale;
        double bw = (rnd() * w * 0.8 + (i % 5 == 4 ? -2.0 : 0.2)) * inv_scale;
        double bh = (rnd() * h * 0.8 + (i % 7 == 6 ? -2.0 : 0.2)) * inv_scale;
        dt_set_f64(dt, t->data, (size_t)(i * cols + o + 0), x1);
        dt_set_f64(dt, t->data, (size_t)(i * cols + o + 1), y1);
        dt_set_f64(dt, t->data, (size_t)(i * cols + o + 2), x1 + bw);
        dt_set_f64(dt, t->data, (size_t)(i * cols + o + 3), y1 + bh);
    }
    return t;
}

static void test_roi(void) {
    static const float scales[] = {1.0f, 0.5f, 0.25f};
    for (int it = 0; it < 72; it++) {
        kiln_dtype dt = k_ftypes[it % 3];
        float sc = scales[(it / 3) % 3];
        int64_t N = h_irand(1, 3), C = h_irand(1, 5), H = h_irand(1, 13), W = h_irand(1, 13);
        int64_t R = h_irand(1, 9), xd[4] = {N, C, H, W};
        kiln_tensor *x = h_rand(dt, 4, xd), *ax = h_abs(x);
        char desc[320];
        if (it % 4 != 3) { /* RoiAlign */
            kiln_tensor *rois = h_boxes(dt, R, 4, N, H, W, 1.0 / sc, false);
            int64_t bv[16];
            for (int64_t i = 0; i < R; i++) bv[i] = h_irand(0, N - 1);
            kiln_tensor *bi = h_vec((int)R, bv);
            ir_node *n = h_node(OP_RoiAlign, 3, 1);
            n->in[0] = h_rt();
            n->in[1] = h_rt();
            n->in[2] = h_rt();
            bool mx = it % 2 == 1, half = (it / 2) % 2 == 0;
            int64_t oh = h_irand(1, 5), ow = h_irand(1, 5), sr = it % 5 == 0 ? 0 : h_irand(0, 3);
            ir_edit_set_str(n, "mode", mx ? "max" : "avg");
            ir_edit_set_str(n, "coordinate_transformation_mode",
                            half ? "half_pixel" : "output_half_pixel");
            ir_edit_set_int(n, "output_height", oh);
            ir_edit_set_int(n, "output_width", ow);
            ir_edit_set_int(n, "sampling_ratio", sr);
            ir_edit_set_float(n, "spatial_scale", sc);
            kiln_tensor *in[3] = {x, rois, bi}, *mag[3] = {ax, rois, bi};
            snprintf(desc, sizeof desc, "RoiAlign %s %s %s X %lldx%lldx%lldx%lld R %lld out "
                     "%lldx%lld sampling %lld scale %g", kiln_dtype_name(dt), mx ? "max" : "avg",
                     half ? "half_pixel" : "output_half_pixel", (long long)N, (long long)C,
                     (long long)H, (long long)W, (long long)R, (long long)oh, (long long)ow,
                     (long long)sr, sc);
            h_check(n, in, CMP_FLOAT, mag, true, desc);
            tensor_free(rois);
            tensor_free(bi);
        } else { /* MaxRoiPool */
            kiln_tensor *rois = h_boxes(dt, R, 5, N, H, W, 1.0 / sc, true);
            ir_node *n = h_node(OP_MaxRoiPool, 2, 1);
            n->in[0] = h_rt();
            n->in[1] = h_rt();
            int64_t ps[2] = {h_irand(1, 4), h_irand(1, 4)};
            ir_edit_set_ints(n, "pooled_shape", ps, 2);
            ir_edit_set_float(n, "spatial_scale", sc);
            kiln_tensor *in[2] = {x, rois};
            snprintf(desc, sizeof desc, "MaxRoiPool %s X %lldx%lldx%lldx%lld R %lld pooled "
                     "%lldx%lld scale %g", kiln_dtype_name(dt), (long long)N, (long long)C,
                     (long long)H, (long long)W, (long long)R, (long long)ps[0],
                     (long long)ps[1], sc);
            h_check(n, in, CMP_EXACT, NULL, true, desc);
            tensor_free(rois);
        }
        tensor_free(x);
        tensor_free(ax);
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
    test_resize_antialias();
    test_grid_sample();
    test_affine_grid();
    test_lrn();
    test_roi();
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}
