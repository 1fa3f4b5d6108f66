/* test_cuda_norm.c: the CUDA normalization tactics (cuda_norm.c) against the
** reference kernels: LayerNormalization (every axis, scale/bias over all or
** only the last of the normalized dims, with and without bias, with the
** Mean/InvStdDev outputs), RMSNormalization, InstanceNormalization,
** GroupNormalization (per-channel and per-group parameters) and inference
** BatchNormalization (rank 2 to 5); float32 / float16 / bfloat16, row
** lengths across the kernel's thread-count steps. */
#include "gpu_test.h"

#define TABLE cuda_tactics_norm

static const kiln_dtype k_floats[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                      KILN_DTYPE_BFLOAT16};

static void test_rows(void) {
    /* 128..1024 by 128: the warp-per-row path; 1025+: the block paths */
    static const int64_t lens[] = {1,    7,    64,   128, 255,  257, 768,
                                   1000, 1024, 1025, 256, 4097, 512, 5000};
    for (int rms = 0; rms < 2; rms++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (int k = 0; k < 16; k++) {
                kiln_dtype dt = k_floats[d];
                int rank = gt_irand(1, 4);
                int64_t dims[KILN_MAX_RANK];
                gt_shape(rank, dims, 8000);
                dims[rank - 1] = lens[k % KILN_ARRAY_LEN(lens)];
                int axis = gt_irand(0, rank - 1);
                /* keep rows * len moderate */
                int64_t total = shape_numel(rank, dims);
                /* (this loop used to set only dims[0] and spun forever when
                ** that was not enough: the norm test hung on the GPU run) */
                for (int i = 0; total > 400000 && i < rank - 1; i++) {
                    dims[i] = 1;
                    total = shape_numel(rank, dims);
                }
                kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
                /* scale/bias: the normalized dims, or only the trailing ones
                ** (leading 1s), both broadcast against X's trailing dims */
                int pr = rank - axis;
                int64_t pd[KILN_MAX_RANK];
                for (int i = 0; i < pr; i++) pd[i] = dims[axis + i];
                if (k % 4 == 1 && pr > 1) pd[0] = 1;
                if (k % 4 == 2) { /* only the last dim */
                    pr = 1;
                    pd[0] = dims[rank - 1];
                }
                kiln_tensor *S = gt_rand(dt, pr, pd, 0.5, 1.5);
                kiln_tensor *B = gt_rand(dt, pr, pd, -1, 1);
                bool has_b = !rms && k % 3 != 0;
                int n_out = !rms && k % 5 == 4 ? 3 : 1;
                g_model->opset = rms ? 23 : 17;
                ir_node *n = gt_node(rms ? OP_RMSNormalization : OP_LayerNormalization,
                                     has_b ? 3 : 2, n_out);
                ir_edit_set_int(n, "axis", k % 2 ? axis - rank : axis);
                if (k % 3 == 1) ir_edit_set_float(n, "epsilon", 1e-3f);
                const kiln_tensor *in[3] = {X, S, has_b ? B : NULL};
                char desc[160], sx[64], ss[64];
                snprintf(desc, sizeof desc, "%s %s X %s axis %d scale %s%s%s",
                         rms ? "RMSNorm" : "LayerNorm", gt_dt(dt), gt_shp(X, sx, sizeof sx), axis,
                         gt_shp(S, ss, sizeof ss), has_b ? " bias" : "",
                         n_out == 3 ? " +stats" : "");
                gt_case(TABLE, n, in, gt_tol(dt) * 2, desc);
                tensor_free(X);
                tensor_free(S);
                tensor_free(B);
            }
    g_model->opset = 17;
}

static void test_instance_group(void) {
    for (int grp = 0; grp < 2; grp++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (int k = 0; k < 10; k++) {
                kiln_dtype dt = k_floats[d];
                int rank = gt_irand(2, 4);
                int64_t dims[KILN_MAX_RANK];
                gt_shape(rank, dims, 60000);
                int64_t G = 1;
                if (grp) { /* C a multiple of G */
                    static const int64_t gs[] = {1, 2, 3, 4, 8};
                    G = gs[gt_irand(0, 4)];
                    dims[1] = G * gt_irand(1, 6);
                }
                kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
                bool per_group = grp && k % 2 == 1;
                int64_t pd[1] = {per_group ? G : dims[1]};
                kiln_tensor *S = gt_rand(dt, 1, pd, 0.5, 1.5), *B = gt_rand(dt, 1, pd, -1, 1);
                g_model->opset = grp ? (per_group ? 18 : 21) : 17;
                ir_node *n = gt_node(grp ? OP_GroupNormalization : OP_InstanceNormalization, 3,
                                     1);
                if (grp) ir_edit_set_int(n, "num_groups", G);
                if (k % 3 == 0) ir_edit_set_float(n, "epsilon", 1e-2f);
                const kiln_tensor *in[3] = {X, S, B};
                char desc[128], sx[64];
                snprintf(desc, sizeof desc, "%s %s X %s groups %lld%s",
                         grp ? "GroupNorm" : "InstanceNorm", gt_dt(dt), gt_shp(X, sx, sizeof sx),
                         (long long)G, per_group ? " per-group params" : "");
                gt_case(TABLE, n, in, gt_tol(dt) * 2, desc);
                tensor_free(X);
                tensor_free(S);
                tensor_free(B);
            }
    g_model->opset = 17;
}

static void test_batchnorm(void) {
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
        for (int k = 0; k < 10; k++) {
            kiln_dtype dt = k_floats[d];
            int rank = gt_irand(2, 5);
            int64_t dims[KILN_MAX_RANK];
            gt_shape(rank, dims, 60000);
            if (k == 9) dims[0] = 0;
            kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
            int64_t pd[1] = {dims[1]};
            kiln_tensor *P[4] = {gt_rand(dt, 1, pd, 0.5, 1.5), gt_rand(dt, 1, pd, -1, 1),
                                 gt_rand(dt, 1, pd, -1, 1), gt_rand(dt, 1, pd, 0.2, 2)};
            g_model->opset = 15;
            ir_node *n = gt_node(OP_BatchNormalization, 5, 1);
            if (k % 2) ir_edit_set_float(n, "epsilon", 1e-3f);
            const kiln_tensor *in[5] = {X, P[0], P[1], P[2], P[3]};
            char desc[96], sx[64];
            snprintf(desc, sizeof desc, "BatchNorm %s X %s", gt_dt(dt), gt_shp(X, sx, sizeof sx));
            gt_case(TABLE, n, in, gt_tol(dt) * 2, desc);
            tensor_free(X);
            for (int i = 0; i < 4; i++) tensor_free(P[i]);
        }
    g_model->opset = 17;
}

/* Model-sized timings (KC_GPU_BENCH=1). */
static void bench(void) {
    if (!getenv("KC_GPU_BENCH")) return;
    for (size_t d = 0; d < 2; d++) {
        kiln_dtype dt = k_floats[d];
        int64_t ln[2] = {32 * 128, 768}, h[1] = {768}, bn[4] = {32, 64, 112, 112}, c[1] = {64};
        kiln_tensor *X = gt_rand(dt, 2, ln, -3, 3), *S = gt_rand(dt, 1, h, 0.5, 1.5);
        kiln_tensor *B = gt_rand(dt, 1, h, -1, 1), *Y = gt_rand(dt, 4, bn, -3, 3);
        kiln_tensor *P[4] = {gt_rand(dt, 1, c, 0.5, 1.5), gt_rand(dt, 1, c, -1, 1),
                             gt_rand(dt, 1, c, -1, 1), gt_rand(dt, 1, c, 0.2, 2)};
        char l[96];
        const kiln_tensor *in3[3] = {X, S, B};
        ir_node *n = gt_node(OP_LayerNormalization, 3, 1);
        snprintf(l, sizeof l, "LayerNorm [4096,768] %s", gt_dt(dt));
        gt_bench(TABLE, n, in3, l);
        g_model->opset = 15;
        const kiln_tensor *in5[5] = {Y, P[0], P[1], P[2], P[3]};
        snprintf(l, sizeof l, "BatchNorm [32,64,112,112] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_BatchNormalization, 5, 1), in5, l);
        g_model->opset = 17;
        tensor_free(X);
        tensor_free(S);
        tensor_free(B);
        tensor_free(Y);
        for (int i = 0; i < 4; i++) tensor_free(P[i]);
    }
}

int main(void) {
    if (!gt_init()) return 0;
    bench();
    test_rows();
    test_instance_group();
    test_batchnorm();
    return gt_fini();
}
