/* test_index.c: what the ONNX node tests cannot show for the index family:
** static inference with symbolic dims (Shape->Gather/Slice->Concat->Reshape
** chains, Expand/Tile/Pad/Resize/TopK keeping symbols) and the run-time
** refusal of out-of-range indices by the gather/scatter kernels. */
#include "test_util.h"

static ir_model *m;
static ir_graph *g;

static ir_value *vec(const char *name, int n, const int64_t *vals) {
    return const_vec(g, name, n, vals);
}

static void test_static(void) {
    m = model_new(18);
    g = m->graph;
    int64_t B = ir_model_sym_named(m, "batch"), S = ir_model_sym_named(m, "seq");
    int64_t H = ir_model_sym_named(m, "h"), W = ir_model_sym_named(m, "w");
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){B, S, 768});
    ir_value *im = input(g, "im", KILN_DTYPE_FLOAT32, 4, (const int64_t[]){B, 3, H, W});

    ir_node *sh = node(g, "Shape", 1, &x, 1, "sh");
    /* Gather scalar and vector (negative) indices of a shape */
    ir_node *g0 = node(g, "Gather", 2,
                       (ir_value *[]){sh->out[0], const_scalar(g, "i0", 0)}, 1, "g0");
    ir_node *g1 = node(g, "Gather", 2, (ir_value *[]){sh->out[0],
                          vec("i1", 2, (const int64_t[]){-2, 2})}, 1, "g1");
    /* Slice to the end, and the whole shape reversed */
    ir_node *s1 = node(g, "Slice", 3, (ir_value *[]){sh->out[0],
                          vec("s1s", 1, (const int64_t[]){1}),
                          vec("s1e", 1, (const int64_t[]){INT64_MAX})}, 1, "s1");
    ir_node *s2 = node(g, "Slice", 5, (ir_value *[]){sh->out[0],
                          vec("s2s", 1, (const int64_t[]){-1}),
                          vec("s2e", 1, (const int64_t[]){INT64_MIN}),
                          vec("s2a", 1, (const int64_t[]){0}),
                          vec("s2t", 1, (const int64_t[]){-1})}, 1, "s2");
    ir_node *us = node(g, "Unsqueeze", 2, (ir_value *[]){g0->out[0],
                          vec("ua", 1, (const int64_t[]){0})}, 1, "us");
    ir_node *cat = node(g, "Concat", 3, (ir_value *[]){us->out[0],
                           vec("c12", 1, (const int64_t[]){12}), s1->out[0]}, 1,
                           "cat");
    attr_int(cat, "axis", 0);
    ir_node *rs = node(g, "Reshape", 2, (ir_value *[]){x, cat->out[0]}, 1, "rs");

    /* Slice of a symbolic dim: full range keeps it, a part does not */
    ir_node *sx = node(g, "Slice", 4, (ir_value *[]){x,
                          vec("sxs", 2, (const int64_t[]){0, 1}),
                          vec("sxe", 2, (const int64_t[]){INT64_MAX, 5}),
                          vec("sxa", 2, (const int64_t[]){1, 2})}, 1, "sx");
    /* Expand a constant to a shape computed from x */
    float one = 1;
    ir_value *c1 =
        const_tensor(g, "c1", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){1, 1, 1}, &one);
    ir_node *ex = node(g, "Expand", 2, (ir_value *[]){c1, sh->out[0]}, 1, "ex");
    ir_node *ex2 = node(g, "Expand", 2, (ir_value *[]){x,
                           vec("exs", 4, (const int64_t[]){2, 1, 1, 1})}, 1, "ex2");
    ir_node *ti = node(g, "Tile", 2, (ir_value *[]){x,
                          vec("tr", 3, (const int64_t[]){1, 2, 2})}, 1, "ti");
    ir_node *pd = node(g, "Pad", 2, (ir_value *[]){x,
                          vec("pp", 6, (const int64_t[]){0, 0, 1, 0, 0, 2})}, 1,
                          "pd");
    /* Resize with sizes built from the input's own shape (stretch) */
    ir_node *ish = node(g, "Shape", 1, &im, 1, "ish");
    ir_node *isl = node(g, "Slice", 3, (ir_value *[]){ish->out[0],
                           vec("is", 1, (const int64_t[]){0}),
                           vec("ie", 1, (const int64_t[]){2})}, 1, "isl");
    ir_node *icat = node(g, "Concat", 2, (ir_value *[]){isl->out[0],
                            vec("hw", 2, (const int64_t[]){64, 32})}, 1, "icat");
    attr_int(icat, "axis", 0);
    ir_node *rz = node(g, "Resize", 4, (ir_value *[]){im, NULL, NULL, icat->out[0]},
                          1, "rz");
    float sc[4] = {1, 1, 2, 1};
    ir_value *scv = const_tensor(g, "sc", KILN_DTYPE_FLOAT32, 1, (const int64_t[]){4}, sc);
    ir_node *rz2 = node(g, "Resize", 3, (ir_value *[]){im, NULL, scv}, 1, "rz2");
    ir_node *tk = node(g, "TopK", 2, (ir_value *[]){x,
                          vec("k", 1, (const int64_t[]){5})}, 2, "tk");

    kiln_status st = ir_graph_infer(g);
    CHECK(st == KILN_OK, "inference failed: %s", kiln_last_error());
    if (st != KILN_OK) return;
    CHECK(g0->out[0]->type.rank == 0 && sval_is(g0->out[0], 1, &B),
          "Gather(shape, 0) is the scalar batch");
    CHECK(sval_is(g1->out[0], 2, (const int64_t[]){S, 768}),
          "Gather(shape, [-2, 2]) is [seq, 768]");
    CHECK(sval_is(s1->out[0], 2, (const int64_t[]){S, 768}),
          "Slice(shape, 1, INT64_MAX) is [seq, 768]");
    CHECK(sval_is(s2->out[0], 3, (const int64_t[]){768, S, B}),
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
        vin[i] = input(g, "t", in[i]->dtype, in[i]->rank, in[i]->dims);
    }
    ir_node *n = node(g, op, n_in, vin, 1, "o");
    if (attr) attr_int(n, attr, av);
    kiln_tensor *out[1] = {NULL};
    kiln_status st = ref_run_node(n, (const kiln_tensor *const *)in, out);
    CHECK(st != KILN_OK, "%s with a bad index should fail", op);
    CHECK(st == KILN_OK || strstr(kiln_last_error(), bad),
          "%s: message '%s' should name '%s'", op, kiln_last_error(), bad);
    tensor_free(out[0]);
}

static kiln_tensor *ti64(int rank, const int64_t *dims, const int64_t *v) {
    return tensor_with(KILN_DTYPE_INT64, rank, dims, v);
}

static kiln_tensor *tf32(int rank, const int64_t *dims) {
    return tensor_with(KILN_DTYPE_FLOAT32, rank, dims, NULL);
}

static void test_runtime(void) {
    m = model_new(18);
    g = m->graph;
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
    return test_all_passed("test_index");
}
