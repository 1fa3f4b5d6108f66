/* test_shape.c: static shape inference of the shape family with symbolic
** dims (what the ONNX node tests cannot show): Shape->Concat->Reshape chains,
** -1 solved symbolically, ConstantOfShape/Range from symbolic contents. */
#include "../../src/ops/op.h"

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
static int64_t BATCH, SEQ;

static ir_value *input(const char *name, int rank, const int64_t *dims) {
    ir_value *v = ir_value_new(g, name);
    v->type.dtype = KILN_DTYPE_FLOAT32;
    v->type.rank = rank;
    memcpy(v->type.dims, dims, (size_t)rank * sizeof *dims);
    v->flags |= IR_VALUE_INPUT;
    return v;
}

static ir_value *const_i64(const char *name, int n, const int64_t *vals,
                           bool scalar) {
    ir_value *v = ir_value_new(g, name);
    kiln_tensor *t;
    int64_t d = n;
    if (tensor_new(KILN_DTYPE_INT64, scalar ? 0 : 1, &d, &t) ||
        !ir_model_own_tensor(m, t))
        return NULL;
    memcpy(t->data, vals, (size_t)n * sizeof *vals);
    v->const_val = t;
    v->type.dtype = KILN_DTYPE_INT64;
    v->type.rank = t->rank;
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

static void int_attr(ir_attr *a, const char *name, int64_t v) {
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

int main(void) {
    m = ir_model_new();
    if (!m) return 1;
    m->opset = 17;
    g = ir_graph_new(m, NULL);
    m->graph = g;
    BATCH = ir_model_sym_named(m, "batch");
    SEQ = ir_model_sym_named(m, "seq");

    int64_t xd[3] = {BATCH, SEQ, 768};
    ir_value *x = input("x", 3, xd);

    /* Shape(start,end) pieces -> Concat with constants -> Reshape */
    ir_node *sb = node("Shape", 1, &x, 1, "sb");
    ir_attr *a = attrs(sb, 2);
    int_attr(&a[0], "start", 0);
    int_attr(&a[1], "end", 1);
    ir_node *ss = node("Shape", 1, &x, 1, "ss");
    a = attrs(ss, 2);
    int_attr(&a[0], "start", 1);
    int_attr(&a[1], "end", -1);
    ir_value *hd = const_i64("hd", 2, (const int64_t[]){12, 64}, false);
    ir_node *cat = node("Concat", 3, (ir_value *[]){sb->out[0], ss->out[0], hd},
                        1, "shp");
    int_attr(&attrs(cat, 1)[0], "axis", 0);
    ir_node *rs = node("Reshape", 2, (ir_value *[]){x, cat->out[0]}, 1, "heads");

    /* Concat(batch, -1, 12, 64): the -1 is solved to seq */
    ir_value *m1 = const_i64("m1", 3, (const int64_t[]){-1, 12, 64}, false);
    ir_node *cat2 = node("Concat", 2, (ir_value *[]){sb->out[0], m1}, 1, "shp2");
    int_attr(&attrs(cat2, 1)[0], "axis", 0);
    ir_node *rs2 = node("Reshape", 2, (ir_value *[]){x, cat2->out[0]}, 1, "heads2");

    /* back to [batch, seq, 768] with 0, 0, -1 */
    ir_value *zz = const_i64("zz", 3, (const int64_t[]){0, 0, -1}, false);
    ir_node *rs3 = node("Reshape", 2, (ir_value *[]){rs2->out[0], zz}, 1, "back");

    /* ConstantOfShape(Shape(x)[0:2]) and Range(0, seq, 1) */
    ir_node *sbs = node("Shape", 1, &x, 1, "sbs");
    a = attrs(sbs, 1);
    int_attr(&a[0], "end", 2);
    ir_node *cos = node("ConstantOfShape", 1, &sbs->out[0], 1, "mask");
    ir_value *ax0 = const_i64("ax0", 1, (const int64_t[]){0}, false);
    ir_node *sq = node("Squeeze", 2, (ir_value *[]){ss->out[0], ax0}, 1, "n");
    ir_value *zero = const_i64("zero", 1, (const int64_t[]){0}, true);
    ir_value *one = const_i64("one", 1, (const int64_t[]){1}, true);
    ir_node *rg = node("Range", 3, (ir_value *[]){zero, sq->out[0], one}, 1, "pos");

    /* reductions and data movement keep symbols */
    ir_value *axm1 = const_i64("axm1", 1, (const int64_t[]){-1}, false);
    ir_node *rm = node("ReduceMean", 2, (ir_value *[]){x, axm1}, 1, "rm");
    ir_node *tr = node("Transpose", 1, &rs->out[0], 1, "tr");
    ir_attr *pa = attrs(tr, 1);
    pa->name = "perm";
    pa->type = IR_ATTR_INTS;
    pa->n = 4;
    pa->ints = kiln_arena_alloc(&m->arena, 4 * sizeof(int64_t));
    if (!pa->ints) return 1;
    memcpy(pa->ints, (const int64_t[]){0, 2, 1, 3}, 4 * sizeof(int64_t));
    ir_node *fl = node("Flatten", 1, &x, 1, "fl");
    int_attr(&attrs(fl, 1)[0], "axis", 2);
    ir_node *sp = node("Split", 1, &x, 3, "sp");
    int_attr(&attrs(sp, 1)[0], "axis", -1);

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
    if (!g_fail) printf("test_shape: all passed\n");
    return g_fail;
}
