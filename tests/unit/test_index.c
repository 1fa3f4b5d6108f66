/* test_index.c: what the ONNX node tests cannot show for the index family:
** static inference with symbolic dims (Shape->Gather/Slice->Concat->Reshape
** chains, Expand/Tile/Pad/Resize/TopK keeping symbols) and the run-time
** refusal of out-of-range indices by the gather/scatter kernels. */
#include "../../src/backends/ref/ref.h"

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

static ir_value *const_t(const char *name, kiln_dtype dt, int rank,
                         const int64_t *dims, const void *vals) {
    ir_value *v = ir_value_new(g, name);
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t) || !ir_model_own_tensor(m, t)) exit(1);
    if (t->nbytes) memcpy(t->data, vals, t->nbytes);
    v->const_val = t;
    v->type.dtype = dt;
    v->type.rank = rank;
    if (rank) memcpy(v->type.dims, dims, (size_t)rank * sizeof *dims);
    v->flags |= IR_VALUE_INITIALIZER;
    return v;
}

static ir_value *vec(const char *name, int n, const int64_t *vals) {
    int64_t d = n;
    return const_t(name, KILN_DTYPE_INT64, 1, &d, vals);
}

static ir_value *scalar(const char *name, int64_t v) {
    return const_t(name, KILN_DTYPE_INT64, 0, NULL, &v);
}

static ir_attr *attrs(ir_node *n, int count) {
    n->attrs = kiln_arena_alloc(&m->arena, (size_t)count * sizeof *n->attrs);
    if (!n->attrs) exit(1);
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

static ir_node *node(const char *op, int n_in, ir_value **in, int n_out,
                     const char *out0) {
    ir_node *n = ir_node_new(g, n_in, n_out);
    n->op_type = op;
    n->op = op_lookup(op);
    n->schema = op_schema_get(n->op);
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s_%d", out0, i);
        n->out[i] = ir_value_new(g, i == 0 ? out0 : nm);
        n->out[i]->producer = n;
        n->out[i]->producer_out = i;
    }
    return n;
}

static bool dims_are(const ir_value *v, int rank, const int64_t *d) {
    if (v->type.rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (v->type.dims[i] != d[i]) return false;
    return true;
}

static bool svals_are(const ir_value *v, int n, const int64_t *d) {
    if (!v->sym_val || v->sym_len != n) return false;
    for (int i = 0; i < n; i++)
        if (v->sym_val[i] != d[i]) return false;
    return true;
}

static void test_static(void) {
    m = ir_model_new();
    if (!m) exit(1);
    m->opset = 18;
    g = ir_graph_new(m, NULL);
    m->graph = g;
    int64_t B = ir_model_sym_named(m, "batch"), S = ir_model_sym_named(m, "seq");
    int64_t H = ir_model_sym_named(m, "h"), W = ir_model_sym_named(m, "w");
    ir_value *x = input("x", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){B, S, 768});
    ir_value *im = input("im", KILN_DTYPE_FLOAT32, 4, (const int64_t[]){B, 3, H, W});

    ir_node *sh = node("Shape", 1, &x, 1, "sh");
    /* Gather scalar and vector (negative) indices of a shape */
    ir_node *g0 = node("Gather", 2, (ir_value *[]){sh->out[0], scalar("i0", 0)},
                       1, "g0");
    ir_node *g1 = node("Gather", 2, (ir_value *[]){sh->out[0],
                       vec("i1", 2, (const int64_t[]){-2, 2})}, 1, "g1");
    /* Slice to the end, and the whole shape reversed */
    ir_node *s1 = node("Slice", 3, (ir_value *[]){sh->out[0],
                       vec("s1s", 1, (const int64_t[]){1}),
                       vec("s1e", 1, (const int64_t[]){INT64_MAX})}, 1, "s1");
    ir_node *s2 = node("Slice", 5, (ir_value *[]){sh->out[0],
                       vec("s2s", 1, (const int64_t[]){-1}),
                       vec("s2e", 1, (const int64_t[]){INT64_MIN}),
                       vec("s2a", 1, (const int64_t[]){0}),
                       vec("s2t", 1, (const int64_t[]){-1})}, 1, "s2");
    ir_node *us = node("Unsqueeze", 2, (ir_value *[]){g0->out[0],
                       vec("ua", 1, (const int64_t[]){0})}, 1, "us");
    ir_node *cat = node("Concat", 3, (ir_value *[]){us->out[0],
                        vec("c12", 1, (const int64_t[]){12}), s1->out[0]}, 1,
                        "cat");
    int_attr(cat, "axis", 0);
    ir_node *rs = node("Reshape", 2, (ir_value *[]){x, cat->out[0]}, 1, "rs");

    /* Slice of a symbolic dim: full range keeps it, a part does not */
    ir_node *sx = node("Slice", 4, (ir_value *[]){x,
                       vec("sxs", 2, (const int64_t[]){0, 1}),
                       vec("sxe", 2, (const int64_t[]){INT64_MAX, 5}),
                       vec("sxa", 2, (const int64_t[]){1, 2})}, 1, "sx");
    /* Expand a constant to a shape computed from x */
    float one = 1;
    ir_value *c1 = const_t("c1", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){1, 1, 1},
                           &one);
    ir_node *ex = node("Expand", 2, (ir_value *[]){c1, sh->out[0]}, 1, "ex");
    ir_node *ex2 = node("Expand", 2, (ir_value *[]){x,
                        vec("exs", 4, (const int64_t[]){2, 1, 1, 1})}, 1, "ex2");
    ir_node *ti = node("Tile", 2, (ir_value *[]){x,
                       vec("tr", 3, (const int64_t[]){1, 2, 2})}, 1, "ti");
    ir_node *pd = node("Pad", 2, (ir_value *[]){x,
                       vec("pp", 6, (const int64_t[]){0, 0, 1, 0, 0, 2})}, 1,
                       "pd");
    /* Resize with sizes built from the input's own shape (stretch) */
    ir_node *ish = node("Shape", 1, &im, 1, "ish");
    ir_node *isl = node("Slice", 3, (ir_value *[]){ish->out[0],
                        vec("is", 1, (const int64_t[]){0}),
                        vec("ie", 1, (const int64_t[]){2})}, 1, "isl");
    ir_node *icat = node("Concat", 2, (ir_value *[]){isl->out[0],
                         vec("hw", 2, (const int64_t[]){64, 32})}, 1, "icat");
    int_attr(icat, "axis", 0);
    ir_node *rz = node("Resize", 4, (ir_value *[]){im, NULL, NULL, icat->out[0]},
                       1, "rz");
    float sc[4] = {1, 1, 2, 1};
    ir_value *scv = const_t("sc", KILN_DTYPE_FLOAT32, 1, (const int64_t[]){4}, sc);
    ir_node *rz2 = node("Resize", 3, (ir_value *[]){im, NULL, scv}, 1, "rz2");
    ir_node *tk = node("TopK", 2, (ir_value *[]){x,
                       vec("k", 1, (const int64_t[]){5})}, 2, "tk");

    kiln_status st = ir_graph_infer(g);
    CHECK(st == KILN_OK, "inference failed: %s", kiln_last_error());
    if (st != KILN_OK) return;
    CHECK(g0->out[0]->type.rank == 0 && svals_are(g0->out[0], 1, &B),
          "Gather(shape, 0) is the scalar batch");
    CHECK(svals_are(g1->out[0], 2, (const int64_t[]){S, 768}),
          "Gather(shape, [-2, 2]) is [seq, 768]");
    CHECK(svals_are(s1->out[0], 2, (const int64_t[]){S, 768}),
          "Slice(shape, 1, INT64_MAX) is [seq, 768]");
    CHECK(svals_are(s2->out[0], 3, (const int64_t[]){768, S, B}),
          "Slice(shape, -1, INT64_MIN, step -1) reverses it");
    CHECK(dims_are(rs->out[0], 4, (const int64_t[]){B, 12, S, 768}),
          "Reshape through Gather/Slice/Concat");
    CHECK(sx->out[0]->type.rank == 3 && sx->out[0]->type.dims[0] == B &&
              sx->out[0]->type.dims[1] == S && sx->out[0]->type.dims[2] == 4,
          "Slice keeps a fully sliced symbolic dim");
    CHECK(dims_are(ex->out[0], 3, (const int64_t[]){B, S, 768}),
          "Expand to a symbolic shape");
    CHECK(dims_are(ex2->out[0], 4, (const int64_t[]){2, B, S, 768}),
          "Expand adding a leading dim");
    CHECK(ti->out[0]->type.rank == 3 && ti->out[0]->type.dims[0] == B &&
              ti->out[0]->type.dims[1] < 0 && ti->out[0]->type.dims[1] != S &&
              ti->out[0]->type.dims[2] == 1536,
          "Tile: symbol kept for 1, fresh for 2, product for concrete");
    CHECK(dims_are(pd->out[0], 3, (const int64_t[]){B, S, 771}),
          "Pad keeps unpadded symbolic dims");
    CHECK(dims_are(rz->out[0], 4, (const int64_t[]){B, 3, 64, 32}),
          "Resize to symbolic sizes");
    CHECK(rz2->out[0]->type.rank == 4 && rz2->out[0]->type.dims[0] == B &&
              rz2->out[0]->type.dims[1] == 3 && rz2->out[0]->type.dims[2] < 0 &&
              rz2->out[0]->type.dims[2] != H && rz2->out[0]->type.dims[3] == W,
          "Resize by scales keeps dims scaled by 1");
    CHECK(dims_are(tk->out[0], 3, (const int64_t[]){B, S, 5}) &&
              tk->out[1]->type.dtype == KILN_DTYPE_INT64,
          "TopK");
    ir_model_free(m);
}

/* Runs one node on concrete tensors and expects a failure naming bad. */
static void expect_fail(const char *op, int n_in, kiln_tensor **in,
                        const char *attr, int64_t av, const char *bad) {
    ir_value *vin[4];
    for (int i = 0; i < n_in; i++) {
        vin[i] = input("t", in[i]->dtype, in[i]->rank, in[i]->dims);
    }
    ir_node *n = node(op, n_in, vin, 1, "o");
    if (attr) int_attr(n, attr, av);
    kiln_tensor *out[1] = {NULL};
    kiln_status st = ref_run_node(n, (const kiln_tensor *const *)in, out);
    CHECK(st != KILN_OK, "%s with a bad index should fail", op);
    CHECK(st == KILN_OK || strstr(kiln_last_error(), bad),
          "%s: message '%s' should name '%s'", op, kiln_last_error(), bad);
    tensor_free(out[0]);
}

static kiln_tensor *ti64(int rank, const int64_t *dims, const int64_t *v) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_INT64, rank, dims, &t)) exit(1);
    memcpy(t->data, v, t->nbytes);
    return t;
}

static kiln_tensor *tf32(int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t)) exit(1);
    return t;
}

static void test_runtime(void) {
    m = ir_model_new();
    if (!m) exit(1);
    m->opset = 18;
    g = ir_graph_new(m, NULL);
    m->graph = g;
    kiln_tensor *data = tf32(2, (const int64_t[]){3, 4});
    kiln_tensor *i1 = ti64(1, (const int64_t[]){2}, (const int64_t[]){1, 7});
    kiln_tensor *i2 = ti64(2, (const int64_t[]){1, 2}, (const int64_t[]){1, -9});
    kiln_tensor *i3 = ti64(2, (const int64_t[]){1, 2}, (const int64_t[]){2, 4});
    kiln_tensor *u2 = tf32(2, (const int64_t[]){1, 2});
    kiln_tensor *u1 = tf32(1, (const int64_t[]){1});
    kiln_tensor *big = ti64(2, (const int64_t[]){3, 4},
                            (const int64_t[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    kiln_tensor *u34 = tf32(2, (const int64_t[]){3, 4});

    expect_fail("Gather", 2, (kiln_tensor *[]){data, i1}, "axis", 0, "7");
    expect_fail("GatherElements", 2, (kiln_tensor *[]){data, i2}, "axis", 1,
                "-9");
    expect_fail("GatherND", 2, (kiln_tensor *[]){data, i3}, NULL, 0, "4");
    expect_fail("ScatterElements", 3, (kiln_tensor *[]){data, i2, u2}, "axis",
                0, "-9");
    expect_fail("ScatterND", 3, (kiln_tensor *[]){data, i3, u1}, NULL, 0, "4");
    /* indices larger than data on a non-axis dim must not write past it */
    big->dims[0] = 4;
    big->dims[1] = 3;
    u34->dims[0] = 4;
    u34->dims[1] = 3;
    expect_fail("ScatterElements", 3, (kiln_tensor *[]){data, big, u34}, "axis",
                1, "exceeds");
    tensor_free(data), tensor_free(i1), tensor_free(i2), tensor_free(i3);
    tensor_free(u2), tensor_free(u1), tensor_free(big), tensor_free(u34);
    ir_model_free(m);
}

int main(void) {
    test_static();
    test_runtime();
    if (!g_fail) printf("test_index: all passed\n");
    return g_fail;
}
