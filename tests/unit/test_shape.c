/* test_shape.c: static shape inference of the shape family with symbolic
** dims (what the ONNX node tests cannot show): Shape->Concat->Reshape chains,
** -1 solved symbolically, ConstantOfShape/Range from symbolic contents. */
#include "test_util.h"

static ir_model *m;
static ir_graph *g;
static int64_t BATCH, SEQ;

static ir_value *const_i64(const char *name, int n, const int64_t *vals, bool scalar) {
    return scalar ? const_scalar(g, name, vals[0]) : const_vec(g, name, n, vals);
}

int main(void) {
    m = model_new(17);
    g = m->graph;
    BATCH = ir_model_sym_named(m, "batch");
    SEQ = ir_model_sym_named(m, "seq");

    int64_t xd[3] = {BATCH, SEQ, 768};
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 3, xd);

    /* Shape(start,end) pieces -> Concat with constants -> Reshape */
    ir_node *sb = node(g, "Shape", 1, &x, 1, "sb");
    attr_int(sb, "start", 0);
    attr_int(sb, "end", 1);
    ir_node *ss = node(g, "Shape", 1, &x, 1, "ss");
    attr_int(ss, "start", 1);
    attr_int(ss, "end", -1);
    ir_value *hd = const_i64("hd", 2, (const int64_t[]){12, 64}, false);
    ir_node *cat = node(g, "Concat", 3, (ir_value *[]){sb->out[0], ss->out[0], hd},
                           1, "shp");
    attr_int(cat, "axis", 0);
    ir_node *rs = node(g, "Reshape", 2, (ir_value *[]){x, cat->out[0]}, 1, "heads");

    /* Concat(batch, -1, 12, 64): the -1 is solved to seq */
    ir_value *m1 = const_i64("m1", 3, (const int64_t[]){-1, 12, 64}, false);
    ir_node *cat2 = node(g, "Concat", 2, (ir_value *[]){sb->out[0], m1}, 1, "shp2");
    attr_int(cat2, "axis", 0);
    ir_node *rs2 = node(g, "Reshape", 2, (ir_value *[]){x, cat2->out[0]}, 1, "heads2");

    /* back to [batch, seq, 768] with 0, 0, -1 */
    ir_value *zz = const_i64("zz", 3, (const int64_t[]){0, 0, -1}, false);
    ir_node *rs3 = node(g, "Reshape", 2, (ir_value *[]){rs2->out[0], zz}, 1, "back");

    /* ConstantOfShape(Shape(x)[0:2]) and Range(0, seq, 1) */
    ir_node *sbs = node(g, "Shape", 1, &x, 1, "sbs");
    attr_int(sbs, "end", 2);
    ir_node *cos = node(g, "ConstantOfShape", 1, &sbs->out[0], 1, "mask");
    ir_value *ax0 = const_i64("ax0", 1, (const int64_t[]){0}, false);
    ir_node *sq = node(g, "Squeeze", 2, (ir_value *[]){ss->out[0], ax0}, 1, "n");
    ir_value *zero = const_i64("zero", 1, (const int64_t[]){0}, true);
    ir_value *one = const_i64("one", 1, (const int64_t[]){1}, true);
    ir_node *rg = node(g, "Range", 3, (ir_value *[]){zero, sq->out[0], one}, 1, "pos");

    /* reductions and data movement keep symbols */
    ir_value *axm1 = const_i64("axm1", 1, (const int64_t[]){-1}, false);
    ir_node *rm = node(g, "ReduceMean", 2, (ir_value *[]){x, axm1}, 1, "rm");
    ir_node *tr = node(g, "Transpose", 1, &rs->out[0], 1, "tr");
    attr_ints(tr, "perm", 4, (const int64_t[]){0, 2, 1, 3});
    ir_node *fl = node(g, "Flatten", 1, &x, 1, "fl");
    attr_int(fl, "axis", 2);
    ir_node *sp = node(g, "Split", 1, &x, 3, "sp");
    attr_int(sp, "axis", -1);

    kiln_status st = ir_graph_infer(g);
    CHECK(st == KILN_OK, "inference failed: %s", kiln_last_error());
    if (st == KILN_OK) {
        CHECK(cat->out[0]->sym_val && cat->out[0]->sym_len == 4 &&
                  cat->out[0]->sym_val[0] == BATCH &&
                  cat->out[0]->sym_val[1] == SEQ,
              "Concat of Shape pieces should carry [batch, seq, 12, 64]");
        CHECK(dims_are(rs->out[0], 4, (const int64_t[]){BATCH, SEQ, 12, 64}),
              "Reshape from a Shape chain");
        CHECK(dims_are(rs2->out[0], 4, (const int64_t[]){BATCH, SEQ, 12, 64}),
              "Reshape with a literal -1 behind Concat");
        CHECK(dims_are(rs3->out[0], 3, (const int64_t[]){BATCH, SEQ, 768}),
              "Reshape with 0, 0, -1");
        CHECK(dims_are(cos->out[0], 2, (const int64_t[]){BATCH, SEQ}),
              "ConstantOfShape of symbolic dims");
        CHECK(dims_are(rg->out[0], 1, (const int64_t[]){SEQ}),
              "Range(0, seq, 1)");
        CHECK(dims_are(rm->out[0], 3, (const int64_t[]){BATCH, SEQ, 1}),
              "ReduceMean over the last axis");
        CHECK(dims_are(tr->out[0], 4, (const int64_t[]){BATCH, 12, SEQ, 64}),
              "Transpose");
        CHECK(fl->out[0]->type.rank == 2 && fl->out[0]->type.dims[1] == 768 &&
                  fl->out[0]->type.dims[0] < 0,
              "Flatten keeps 768 and makes an unknown leading dim");
        CHECK(dims_are(sp->out[2], 3, (const int64_t[]){BATCH, SEQ, 256}),
              "Split into equal parts");
    }
    ir_model_free(m);
    return test_all_passed("test_shape");
}
