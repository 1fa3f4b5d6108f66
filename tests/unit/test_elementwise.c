/* test_elementwise.c: what the ONNX node tests do not show for the
** elementwise family: static shape arithmetic on symbolic contents
** (Shape -> Gather -> Mul -> Concat -> Reshape, Cast of ints), integer edge
** cases of the kernels (wrap, INT64_MIN / -1, division by zero) and the
** float8/float4 codecs round-tripping every code. */
#include "../../src/backends/ref/ref.h"

#include <math.h>
#include <stdio.h>

static int g_fail;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            g_fail = 1;                                                    \
        }                                                                  \
    } while (0)

static ir_model *m;
static ir_graph *g;

static ir_value *input(const char *name, kiln_dtype dt, int rank,
                       const int64_t *dims) {
    ir_value *v = ir_value_new(g, name);
    v->type.dtype = dt;
    v->type.rank = rank;
    if (rank) memcpy(v->type.dims, dims, (size_t)rank * sizeof *dims);
    v->flags |= IR_VALUE_INPUT;
    return v;
}

static ir_value *const_i64(const char *name, int n, const int64_t *vals) {
    ir_value *v = ir_value_new(g, name);
    kiln_tensor *t;
    int64_t d = n;
    if (tensor_new(KILN_DTYPE_INT64, 1, &d, &t) || !ir_model_own_tensor(m, t))
        return NULL;
    memcpy(t->data, vals, (size_t)n * sizeof *vals);
    v->const_val = t;
    v->type.dtype = KILN_DTYPE_INT64;
    v->type.rank = 1;
    v->type.dims[0] = n;
    v->flags |= IR_VALUE_INITIALIZER;
    return v;
}

static ir_attr *attrs(ir_node *n, int count) {
    n->attrs = kiln_arena_alloc(&m->arena, (size_t)count * sizeof *n->attrs);
    if (!n->attrs) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(n->attrs, 0, (size_t)count * sizeof *n->attrs);
    n->n_attrs = count;
    return n->attrs;
}

static void int_attr(ir_node *n, const char *name, int64_t v) {
    ir_attr *a = attrs(n, 1);
    a->name = name;
    a->type = IR_ATTR_INT;
    a->i = v;
}

static ir_node *node(const char *op, int n_in, ir_value **in, const char *out0) {
    ir_node *n = ir_node_new(g, n_in, 1);
    n->op_type = op;
    n->op = op_lookup(op);
    n->schema = op_schema_get(n->op);
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->out[0] = ir_value_new(g, out0);
    n->out[0]->producer = n;
    n->out[0]->producer_out = 0;
    return n;
}

static bool dims_are(const ir_value *v, int rank, const int64_t *d) {
    if (v->type.rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (v->type.dims[i] != d[i]) return false;
    return true;
}

static bool sval_is(const ir_value *v, int n, const int64_t *d) {
    if (!v->sym_val || v->sym_len != n) return false;
    for (int i = 0; i < n; i++)
        if (v->sym_val[i] != d[i]) return false;
    return true;
}

static void test_static(void) {
    m = ir_model_new();
    if (!m) exit(1);
    m->opset = 17;
    g = ir_graph_new(m, NULL);
    m->graph = g;
    int64_t B = ir_model_sym_named(m, "batch"), S = ir_model_sym_named(m, "seq");

    ir_value *x = input("x", KILN_DTYPE_FLOAT32, 4, (const int64_t[]){B, S, 12, 64});
    ir_value *bias = input("bias", KILN_DTYPE_FLOAT32, 1, (const int64_t[]){64});
    ir_node *shp = node("Shape", 1, &x, "shp");
    ir_value *i01 = const_i64("i01", 2, (const int64_t[]){0, 1});
    ir_value *i2 = const_i64("i2", 1, (const int64_t[]){2});
    ir_value *i3 = const_i64("i3", 1, (const int64_t[]){3});
    ir_value *one = const_i64("one", 1, (const int64_t[]){1});
    ir_value *zero = const_i64("zero", 1, (const int64_t[]){0});
    ir_value *k100 = const_i64("k100", 1, (const int64_t[]){100});

    ir_node *g01 = node("Gather", 2, (ir_value *[]){shp->out[0], i01}, "bs");
    ir_node *g2 = node("Gather", 2, (ir_value *[]){shp->out[0], i2}, "h");
    ir_node *g3 = node("Gather", 2, (ir_value *[]){shp->out[0], i3}, "d");
    ir_node *hd = node("Mul", 2, (ir_value *[]){g2->out[0], g3->out[0]}, "hd");
    ir_node *bs1 = node("Mul", 2, (ir_value *[]){g01->out[0], one}, "bs1");
    ir_node *bs0 = node("Add", 2, (ir_value *[]){zero, bs1->out[0]}, "bs0");
    ir_node *c32 = node("Cast", 1, &bs0->out[0], "c32");
    int_attr(c32, "to", KILN_DTYPE_INT32);
    ir_node *c64 = node("Cast", 1, &c32->out[0], "c64");
    int_attr(c64, "to", KILN_DTYPE_INT64);
    ir_node *cat = node("Concat", 2, (ir_value *[]){c64->out[0], hd->out[0]}, "cat");
    int_attr(cat, "axis", 0);
    ir_node *rs = node("Reshape", 2, (ir_value *[]){x, cat->out[0]}, "rs");
    /* d - 100 is negative: must not be recorded as a (symbolic) dim */
    ir_node *neg = node("Sub", 2, (ir_value *[]){g3->out[0], k100}, "neg");
    /* batch * 12: unknown but non-negative, a fresh symbol */
    ir_node *bh = node("Mul", 2, (ir_value *[]){g01->out[0], g2->out[0]}, "bh");
    /* broadcasting keeps symbolic dims */
    ir_node *add = node("Add", 2, (ir_value *[]){x, bias}, "add");
    ir_node *eq = node("Equal", 2, (ir_value *[]){x, bias}, "eq");

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
    m = ir_model_new();
    if (!m) exit(1);
    m->opset = 17;
    g = ir_graph_new(m, NULL);
    m->graph = g;
    int64_t d = n;
    ir_value *va = input("a", dt, 1, &d), *vb = input("b", dt, 1, &d);
    ir_node *nd = node(op, 2, (ir_value *[]){va, vb}, "y");
    if (fmod >= 0) int_attr(nd, "fmod", fmod);
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
    if (!g_fail) printf("test_elementwise: all passed\n");
    return g_fail;
}
