/* test_conv.c: conv-family behaviour the ONNX node tests do not reach:
** MaxRoiPool rounding/bins, GlobalLpPool, integer Col2Im wrapping, MaxPool
** int8 indices in column-major order, LpNormalization of a zero vector, and
** static inference with symbolic spatial dims. */
#include "../../src/ops/infer.h"
#include "test_util.h"

static ir_model *m;
static ir_graph *g;

/* A node with absent inputs (the tests pass tensors or types directly). */
static ir_node *mk_node(const char *op, int n_in, int n_out) {
    return node(g, op, n_in, NULL, n_out, op);
}

static void test_max_roi_pool(void) {
    ir_node *n = mk_node("MaxRoiPool", 2, 1);
    attr_ints(n, "pooled_shape", 2, (int64_t[]){2, 2});
    double xv[16], rv[15] = {0, 0, 0, 3, 3, 0, 1, 1, 2, 2, 0, 0.6, 0.4, 1.5, 2.5};
    for (int i = 0; i < 16; i++) xv[i] = i;
    kiln_tensor *x = tensor_f64(KILN_DTYPE_FLOAT32, 4, (int64_t[]){1, 1, 4, 4}, xv);
    kiln_tensor *r = tensor_f64(KILN_DTYPE_FLOAT32, 2, (int64_t[]){3, 5}, rv);
    const kiln_tensor *in[2] = {x, r};
    kiln_tensor *out[1];
    CHECK(ref_run_node(n, in, out) == KILN_OK, "MaxRoiPool: %s", kiln_last_error());
    if (out[0]) {
        const float *y = out[0]->data;
        /* roi 0: 4x4 in 2x2 bins; roi 1: 2x2 region, one bin per pixel;
        ** roi 2: rounds to w [1,2], h [0,3] (2.5 rounds away from zero). */
        const float want[12] = {5, 7, 13, 15, 5, 6, 9, 10, 5, 6, 13, 14};
        for (int i = 0; i < 12; i++)
            CHECK(y[i] == want[i], "MaxRoiPool[%d] = %g, want %g", i, y[i], want[i]);
        tensor_free(out[0]);
    }
    tensor_free(x);
    tensor_free(r);
}

static void test_global_lp_pool(void) {
    ir_node *n = mk_node("GlobalLpPool", 1, 1);
    attr_int(n, "p", 3);
    kiln_tensor *x = tensor_f64(KILN_DTYPE_FLOAT64, 3, (int64_t[]){1, 2, 2},
                                (double[]){1, -2, 0, 3});
    const kiln_tensor *in[1] = {x};
    kiln_tensor *out[1];
    CHECK(ref_run_node(n, in, out) == KILN_OK, "GlobalLpPool: %s", kiln_last_error());
    if (out[0]) {
        const double *y = out[0]->data;
        CHECK(fabs(y[0] - cbrt(9.0)) < 1e-12 && fabs(y[1] - 3.0) < 1e-12,
              "GlobalLpPool = %g %g", y[0], y[1]);
        tensor_free(out[0]);
    }
    tensor_free(x);
}

static void test_col2im_int8_wraps(void) {
    ir_node *n = mk_node("Col2Im", 3, 1);
    double xv[16];
    for (int i = 0; i < 16; i++) xv[i] = 100;
    kiln_tensor *x = tensor_f64(KILN_DTYPE_INT8, 3, (int64_t[]){1, 4, 4}, xv);
    kiln_tensor *is = tensor_f64(KILN_DTYPE_INT64, 1, (int64_t[]){2}, (double[]){3, 3});
    kiln_tensor *bs = tensor_f64(KILN_DTYPE_INT64, 1, (int64_t[]){2}, (double[]){2, 2});
    const kiln_tensor *in[3] = {x, is, bs};
    kiln_tensor *out[1];
    CHECK(ref_run_node(n, in, out) == KILN_OK, "Col2Im: %s", kiln_last_error());
    if (out[0]) {
        const int8_t *y = out[0]->data;
        /* corner 100, edge 200 -> -56, centre 400 -> -112 (mod 256) */
        CHECK(y[0] == 100 && y[1] == -56 && y[4] == -112,
              "Col2Im int8 = %d %d %d", y[0], y[1], y[4]);
        tensor_free(out[0]);
    }
    tensor_free(x);
    tensor_free(is);
    tensor_free(bs);
}

static void test_maxpool_int8_indices(void) {
    ir_node *n = mk_node("MaxPool", 1, 2);
    attr_ints(n, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(n, "strides", 2, (int64_t[]){2, 2});
    attr_int(n, "storage_order", 1);
    /* 2x3 plane [[1, -5, 7], [9, 2, -128]], second channel negated. */
    double xv[12] = {1, -5, 7, 9, 2, -128, -1, 5, -7, -9, -2, 127};
    kiln_tensor *x = tensor_f64(KILN_DTYPE_INT8, 4, (int64_t[]){1, 2, 2, 3}, xv);
    const kiln_tensor *in[1] = {x};
    kiln_tensor *out[2];
    CHECK(ref_run_node(n, in, out) == KILN_OK, "MaxPool: %s", kiln_last_error());
    if (out[0]) {
        const int8_t *y = out[0]->data;
        const int64_t *ix = out[1]->data;
        CHECK(out[0]->dims[3] == 1 && y[0] == 9 && y[1] == 5,
              "MaxPool int8 = %d %d", y[0], y[1]);
        /* (1,0) column-major in a 2x3 plane is 1; channel 1's (0,1) is 2,
        ** plus the plane offset 6. */
        CHECK(ix[0] == 1 && ix[1] == 8, "indices = %lld %lld",
              (long long)ix[0], (long long)ix[1]);
        tensor_free(out[0]);
        tensor_free(out[1]);
    }
    tensor_free(x);
}

static void test_lp_norm_zero(void) {
    ir_node *n = mk_node("LpNormalization", 1, 1);
    attr_int(n, "p", 1);
    kiln_tensor *x = tensor_f64(KILN_DTYPE_FLOAT32, 2, (int64_t[]){2, 2},
                                (double[]){0, 0, 1, -3});
    const kiln_tensor *in[1] = {x};
    kiln_tensor *out[1];
    CHECK(ref_run_node(n, in, out) == KILN_OK, "LpNorm: %s", kiln_last_error());
    if (out[0]) {
        const float *y = out[0]->data;
        CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0.25f && y[3] == -0.75f,
              "LpNorm = %g %g %g %g", y[0], y[1], y[2], y[3]);
        tensor_free(out[0]);
    }
    tensor_free(x);
}

static int64_t sym_counter = -100;
static int64_t new_sym(void *env) {
    (void)env;
    return sym_counter--;
}

static void test_symbolic_inference(void) {
    int64_t N = ir_model_sym_named(m, "N"), H = ir_model_sym_named(m, "H");
    ir_type tx = {KILN_DTYPE_FLOAT32, 4, {N, 3, H, 17}};
    ir_type tw = {KILN_DTYPE_FLOAT32, 4, {8, 3, 3, 3}};
    const ir_type *tin[2] = {&tx, &tw};
    const kiln_tensor *cv[2] = {NULL, NULL};
    ir_type out[1];

    /* pads 1 keep H; the concrete W dim is exact. */
    ir_node *n = mk_node("Conv", 2, 1);
    attr_ints(n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    CHECK(op_infer_node(n, 22, tin, cv, NULL, NULL, out, NULL, NULL, false,
                        NULL, new_sym) == KILN_OK, "%s", kiln_last_error());
    CHECK(out[0].rank == 4 && out[0].dims[0] == N && out[0].dims[1] == 8 &&
          out[0].dims[2] == H && out[0].dims[3] == 17, "Conv pads 1 shape");

    /* stride 2 gives a fresh symbol for H and 9 for 17. */
    n = mk_node("Conv", 2, 1);
    attr_ints(n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    attr_ints(n, "strides", 2, (int64_t[]){2, 2});
    CHECK(op_infer_node(n, 22, tin, cv, NULL, NULL, out, NULL, NULL, false,
                        NULL, new_sym) == KILN_OK, "%s", kiln_last_error());
    CHECK(out[0].dims[2] < 0 && out[0].dims[2] != H && out[0].dims[3] == 9,
          "Conv stride 2 shape");

    /* A channel mismatch is caught statically. */
    ir_type tw2 = {KILN_DTYPE_FLOAT32, 4, {8, 2, 3, 3}};
    const ir_type *tin2[2] = {&tx, &tw2};
    n = mk_node("Conv", 2, 1);
    CHECK(op_infer_node(n, 22, tin2, cv, NULL, NULL, out, NULL, NULL, false,
                        NULL, new_sym) != KILN_OK, "channel mismatch accepted");

    /* W of unknown rank: spatial dims and channels become symbols. */
    ir_type twu = {KILN_DTYPE_FLOAT32, -1, {0}};
    const ir_type *tin4[2] = {&tx, &twu};
    n = mk_node("Conv", 2, 1);
    CHECK(op_infer_node(n, 22, tin4, cv, NULL, NULL, out, NULL, NULL, false,
                        NULL, new_sym) == KILN_OK, "%s", kiln_last_error());
    CHECK(out[0].rank == 4 && out[0].dims[0] == N && out[0].dims[1] < 0 &&
          out[0].dims[2] < 0 && out[0].dims[3] < 0, "Conv unknown W shape");

    /* SAME_UPPER pooling keeps symbolic dims at stride 1. */
    const ir_type *tin3[1] = {&tx};
    n = mk_node("MaxPool", 1, 2);
    attr_ints(n, "kernel_shape", 2, (int64_t[]){3, 3});
    attr_str(n, "auto_pad", "SAME_UPPER");
    ir_type out2[2];
    CHECK(op_infer_node(n, 22, tin3, cv, NULL, NULL, out2, NULL, NULL, false,
                        NULL, new_sym) == KILN_OK, "%s", kiln_last_error());
    CHECK(out2[0].dims[2] == H && out2[0].dims[3] == 17 &&
          out2[1].dtype == KILN_DTYPE_INT64, "MaxPool SAME shape");
}

int main(void) {
    m = model_new(22);
    g = m->graph;
    test_max_roi_pool();
    test_global_lp_pool();
    test_col2im_int8_wraps();
    test_maxpool_int8_indices();
    test_lp_norm_zero();
    test_symbolic_inference();
    ir_model_free(m);
    return test_all_passed("test_conv");
}
