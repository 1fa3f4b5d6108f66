/* test_elementwise.c: what the ONNX node tests do not show for the
** elementwise family: static shape arithmetic on symbolic contents
** (Shape -> Gather -> Mul -> Concat -> Reshape, Cast of ints), integer edge
** cases of the kernels (wrap, INT64_MIN / -1, division by zero) and the
** float8/float4 codecs round-tripping every code. */
#include "test_util.h"

static ir_model *m;
static ir_graph *g;

static void test_static(void) {
    m = model_new(17);
    g = m->graph;
    int64_t B = ir_model_sym_named(m, "batch"), S = ir_model_sym_named(m, "seq");

    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 4, (const int64_t[]){B, S, 12, 64});
    ir_value *bias = input(g, "bias", KILN_DTYPE_FLOAT32, 1, (const int64_t[]){64});
    ir_node *shp = node(g, "Shape", 1, &x, 1, "shp");
    ir_value *i01 = const_vec(g, "i01", 2, (const int64_t[]){0, 1});
    ir_value *i2 = const_vec(g, "i2", 1, (const int64_t[]){2});
    ir_value *i3 = const_vec(g, "i3", 1, (const int64_t[]){3});
    ir_value *one = const_vec(g, "one", 1, (const int64_t[]){1});
    ir_value *zero = const_vec(g, "zero", 1, (const int64_t[]){0});
    ir_value *k100 = const_vec(g, "k100", 1, (const int64_t[]){100});

    ir_node *g01 = node(g, "Gather", 2, (ir_value *[]){shp->out[0], i01}, 1, "bs");
    ir_node *g2 = node(g, "Gather", 2, (ir_value *[]){shp->out[0], i2}, 1, "h");
    ir_node *g3 = node(g, "Gather", 2, (ir_value *[]){shp->out[0], i3}, 1, "d");
    ir_node *hd = node(g, "Mul", 2, (ir_value *[]){g2->out[0], g3->out[0]}, 1, "hd");
    ir_node *bs1 = node(g, "Mul", 2, (ir_value *[]){g01->out[0], one}, 1, "bs1");
    ir_node *bs0 = node(g, "Add", 2, (ir_value *[]){zero, bs1->out[0]}, 1, "bs0");
    ir_node *c32 = node(g, "Cast", 1, &bs0->out[0], 1, "c32");
    attr_int(c32, "to", KILN_DTYPE_INT32);
    ir_node *c64 = node(g, "Cast", 1, &c32->out[0], 1, "c64");
    attr_int(c64, "to", KILN_DTYPE_INT64);
    ir_node *cat = node(g, "Concat", 2, (ir_value *[]){c64->out[0], hd->out[0]}, 1, "cat");
    attr_int(cat, "axis", 0);
    ir_node *rs = node(g, "Reshape", 2, (ir_value *[]){x, cat->out[0]}, 1, "rs");
    /* d - 100 is negative: must not be recorded as a (symbolic) dim */
    ir_node *neg = node(g, "Sub", 2, (ir_value *[]){g3->out[0], k100}, 1, "neg");
    /* batch * 12: unknown but non-negative, a fresh symbol */
    ir_node *bh = node(g, "Mul", 2, (ir_value *[]){g01->out[0], g2->out[0]}, 1, "bh");
    /* broadcasting keeps symbolic dims */
    ir_node *add = node(g, "Add", 2, (ir_value *[]){x, bias}, 1, "add");
    ir_node *eq = node(g, "Equal", 2, (ir_value *[]){x, bias}, 1, "eq");

    kiln_status st = ir_graph_infer(g);
    CHECK(st == KILN_OK, "inference failed: %s", kiln_last_error());
    if (st == KILN_OK) {
        CHECK(sval_is(hd->out[0], 1, (const int64_t[]){768}), "12*64 = 768");
        CHECK(sval_is(bs1->out[0], 2, (const int64_t[]){B, S}), "[b, s] * 1");
        CHECK(sval_is(bs0->out[0], 2, (const int64_t[]){B, S}), "0 + [b, s]");
        CHECK(sval_is(c32->out[0], 2, (const int64_t[]){B, S}), "Cast to int32");
        CHECK(sval_is(c64->out[0], 2, (const int64_t[]){B, S}), "Cast to int64");
        CHECK(dims_are(rs->out[0], 3, (const int64_t[]){B, S, 768}),
              "Reshape from a Shape arithmetic chain: rank %d",
              rs->out[0]->type.rank);
        CHECK(!neg->out[0]->sym_val, "negative result must not be symbolic");
        const int64_t *bv = bh->out[0]->sym_val;
        CHECK(bv && bh->out[0]->sym_len == 2 && bv[0] < 0 && bv[1] < 0 &&
                  bv[0] != B && bv[0] != S && bv[1] != B && bv[1] != S,
              "[batch, seq] * 12 gives fresh symbols");
        CHECK(dims_are(add->out[0], 4, (const int64_t[]){B, S, 12, 64}) &&
                  add->out[0]->type.dtype == KILN_DTYPE_FLOAT32,
              "Add broadcast with symbols");
        CHECK(eq->out[0]->type.dtype == KILN_DTYPE_BOOL, "Equal gives bool");
    }
    ir_model_free(m);
}

/* Runs a two-input int node on concrete tensors. */
static kiln_status run_bin(const char *op, kiln_dtype dt, int n,
                           const int64_t *a, const int64_t *b, int64_t fmod,
                           kiln_tensor **out) {
    m = model_new(17);
    g = m->graph;
    int64_t d = n;
    ir_value *va = input(g, "a", dt, 1, &d), *vb = input(g, "b", dt, 1, &d);
    ir_node *nd = node(g, op, 2, (ir_value *[]){va, vb}, 1, "y");
    if (fmod >= 0) attr_int(nd, "fmod", fmod);
    kiln_tensor *ta, *tb;
    if (tensor_new(dt, 1, &d, &ta) || tensor_new(dt, 1, &d, &tb)) exit(1);
    for (int i = 0; i < n; i++) {
        dt_set_i64(dt, ta->data, (size_t)i, a[i]);
        dt_set_i64(dt, tb->data, (size_t)i, b[i]);
    }
    kiln_status st = ref_run_node(nd, (const kiln_tensor *const[]){ta, tb}, out);
    tensor_free(ta);
    tensor_free(tb);
    ir_model_free(m);
    return st;
}

static void expect_ints(const char *what, const kiln_tensor *t, int n,
                        const int64_t *want) {
    for (int i = 0; i < n; i++) {
        int64_t v = dt_get_i64(t->dtype, t->data, (size_t)i);
        CHECK(v == want[i], "%s[%d]: got %lld, want %lld", what, i, (long long)v,
              (long long)want[i]);
    }
}

static void test_int_kernels(void) {
    kiln_tensor *y = NULL;
    const int64_t a[] = {INT64_MIN, INT64_MAX, -7, 7, -7};
    const int64_t b[] = {-1, 2, 2, -2, -2};
    CHECK(run_bin("Div", KILN_DTYPE_INT64, 5, a, b, -1, &y) == KILN_OK,
          "Div: %s", kiln_last_error());
    if (y) expect_ints("Div", y, 5, (const int64_t[]){INT64_MIN, INT64_MAX / 2, -3, -3, 3});
    tensor_free(y);
    CHECK(run_bin("Mod", KILN_DTYPE_INT64, 5, a, b, 0, &y) == KILN_OK,
          "Mod: %s", kiln_last_error());
    if (y) expect_ints("Mod", y, 5, (const int64_t[]){0, 1, 1, -1, -1});
    tensor_free(y);
    CHECK(run_bin("Mod", KILN_DTYPE_INT64, 5, a, b, 1, &y) == KILN_OK,
          "fmod: %s", kiln_last_error());
    if (y) expect_ints("fmod", y, 5, (const int64_t[]){0, 1, -1, 1, -1});
    tensor_free(y);
    CHECK(run_bin("Add", KILN_DTYPE_INT64, 2, (const int64_t[]){INT64_MAX, INT64_MIN},
                  (const int64_t[]){1, -1}, -1, &y) == KILN_OK,
          "Add: %s", kiln_last_error());
    if (y) expect_ints("Add wrap", y, 2, (const int64_t[]){INT64_MIN, INT64_MAX});
    tensor_free(y);
    CHECK(run_bin("Mul", KILN_DTYPE_INT32, 1, (const int64_t[]){65536},
                  (const int64_t[]){65536}, -1, &y) == KILN_OK,
          "Mul: %s", kiln_last_error());
    if (y) expect_ints("Mul wrap int32", y, 1, (const int64_t[]){0});
    tensor_free(y);
    CHECK(run_bin("Div", KILN_DTYPE_INT32, 2, (const int64_t[]){1, 2},
                  (const int64_t[]){1, 0}, -1, &y) != KILN_OK,
          "integer division by zero must fail");
    CHECK(run_bin("Mod", KILN_DTYPE_UINT8, 1, (const int64_t[]){1},
                  (const int64_t[]){0}, 0, &y) != KILN_OK,
          "integer modulo by zero must fail");
    CHECK(run_bin("Pow", KILN_DTYPE_INT64, 3, (const int64_t[]){3, -1, 2},
                  (const int64_t[]){41, -3, -1}, -1, &y) == KILN_OK,
          "Pow: %s", kiln_last_error());
    /* 3^41 wraps in 64 bits; negative exponents truncate toward zero */
    uint64_t p = 1;
    for (int i = 0; i < 41; i++) p *= 3;
    if (y) expect_ints("Pow", y, 3, (const int64_t[]){(int64_t)p, -1, 0});
    tensor_free(y);
}

static void test_small_floats(void) {
    const kiln_dtype f8[4] = {KILN_DTYPE_FLOAT8E4M3FN, KILN_DTYPE_FLOAT8E4M3FNUZ,
                              KILN_DTYPE_FLOAT8E5M2, KILN_DTYPE_FLOAT8E5M2FNUZ};
    const float maxv[4] = {448.0f, 240.0f, 57344.0f, 57344.0f};
    for (int k = 0; k < 4; k++) {
        for (int v = 0; v < 256; v++) {
            float f = fp8_to_f32(f8[k], (uint8_t)v);
            if (isnan(f) || isinf(f)) continue;
            uint8_t back = f32_to_fp8(f8[k], f, false);
            CHECK(back == v, "%s code 0x%02x -> %g -> 0x%02x",
                  kiln_dtype_name(f8[k]), v, f, back);
        }
        uint8_t top = f32_to_fp8(f8[k], 1e9f, true);
        CHECK(fp8_to_f32(f8[k], top) == maxv[k], "%s saturates to %g",
              kiln_dtype_name(f8[k]), maxv[k]);
        CHECK(isnan(fp8_to_f32(f8[k], f32_to_fp8(f8[k], NAN, true))),
              "%s keeps NaN", kiln_dtype_name(f8[k]));
    }
    /* overflow without saturation: NaN for e4m3fn and the fnuz types, inf
    ** for e5m2 */
    CHECK(f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FN, 500.0f, false) == 0x7f, "e4m3fn ovf");
    CHECK(f32_to_fp8(KILN_DTYPE_FLOAT8E5M2, -1e6f, false) == 0xfc, "e5m2 ovf");
    CHECK(f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FNUZ, INFINITY, false) == 0x80, "fnuz ovf");
    /* ties to even: 464 lies halfway between 448 and 480 (not finite) */
    CHECK(f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FN, 464.0f, false) == 0x7e, "tie");
    CHECK(f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FNUZ, -0.0f, true) == 0, "fnuz -0");
    for (int v = 0; v < 16; v++)
        CHECK(f32_to_fp4e2m1(fp4e2m1_to_f32((uint8_t)v)) == v, "fp4 code %d", v);
    CHECK(f32_to_fp4e2m1(0.25f) == 0 && f32_to_fp4e2m1(-3.5f) == 0xe &&
              f32_to_fp4e2m1(1e9f) == 7,
          "fp4 rounding and saturation");
}

int main(void) {
    test_static();
    test_int_kernels();
    test_small_floats();
    return test_all_passed("test_elementwise");
}
