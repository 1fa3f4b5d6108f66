/* test_linalg.c: linalg/norm behaviour the ONNX node tests do not reach:
** integer MatMul wrapping, batch broadcasting cross-checked against Einsum,
** Gemm with transA and a column bias, Einsum diagonals / three operands /
** uppercase labels, GroupNormalization-18 per-group scale, BatchNormalization-9
** training outputs, Attention with a bool mask + causal + KV cache, MVN axes,
** LRN with an even size, Det pivoting, and static inference with symbolic
** dims plus rejection of malformed nodes. Expected values come from numpy. */
#include "test_util.h"

static const float mm_bcast_want[24] = {
    1.4406755f, 1.1993874f, 0.77760386f, 0.93881774f, -0.91041493f,
    -1.2441653f, 0.46903527f, 0.17977965f, -1.0269792f, -0.63403356f,
    -0.99073559f, -1.0205104f, -2.2258162f, -2.1473045f, 1.4697853f,
    1.2292987f, 0.43683368f, 1.0626432f, -0.91010284f, -1.2527221f,
    2.0273173f, 1.6644349f, -1.0562308f, -0.66005659f};
static const float gemm_want[15] = {
    -0.85132337f, -0.88967788f, -0.25474191f, 0.57297766f, 0.96707916f,
    1.0250173f, 1.380805f, 2.1500304f, 2.7505589f, 2.7279224f, 0.29899317f,
    0.96181411f, 1.6769955f, 1.9033027f, 1.4694705f};
static const float diag_want[4] = {
    0.0f, -0.35078323f, 0.65698659f, -0.87969577f};
static const float dot3_want[1] = {
    1.3008971f};
static const float upper_want[1] = {
    1.449827f};
static const float gn_want[12] = {
    0.55547607f, 3.1308617f, 2.891846f, 0.099627062f, -2.1944366f,
    -1.4833742f, -0.20932993f, -1.1950446f, -0.6075857f, 0.91106699f,
    1.7013181f, 0.89957507f};
static const float bn_y[8] = {
    0.4702353f, 2.2921578f, 0.43751254f, 0.0087520908f, -0.55901304f,
    -1.80338f, -0.93288527f, -0.31337937f};
static const float bn_rm[2] = {
    0.25408191f, -0.073868077f};
static const float bn_rv[2] = {
    1.1215909f, 0.76060962f};
static const float bn_sm[2] = {
    -0.15918091f, 0.16131923f};
static const float bn_sv[2] = {
    0.41590908f, 0.40609622f};
static const float att_y[4] = {
    0.099334665f, 0.82469758f, 0.52187769f, 0.85624058f};
static const float att_pk[6] = {
    0.47942555f, 0.71735609f, 0.89120734f, 0.98544973f, 0.0f, 0.71735609f};
static const float att_pv[6] = {
    0.19866933f, 0.71735609f, 0.98544973f, 0.90929741f, 0.0f, 0.93203908f};
static const float mvn_want[12] = {
    -1.3601629f, -1.4132427f, 0.34471964f, 0.75199479f, 1.0154433f,
    0.66124793f, 1.234712f, 1.3005186f, -0.020183667f, -0.16912669f,
    -1.2145283f, -1.1313919f};
static const float lrn_want[6] = {
    0.0f, 0.69230147f, 0.96356978f, 0.65051934f, -0.058366686f, -0.74094469f};

static ir_model *m;
static ir_graph *g;

/* A node whose inputs are fresh untyped values (run() drops absent ones). */
static ir_node *mk_node(const char *op, int n_in, int n_out) {
    ir_value *in[8];
    if (n_in > 8) exit(1);
    for (int i = 0; i < n_in; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "%s_in%d", op, i);
        in[i] = ir_value_new(g, nm);
        if (!in[i]) exit(1);
    }
    return node(g, op, n_in, in, n_out, op);
}

/* float32 tensor with elements sin(i * k + off) (the numpy side uses the
** same formula). */
static kiln_tensor *tseq(int rank, const int64_t *dims, double k, double off) {
    kiln_tensor *t = tensor_with(KILN_DTYPE_FLOAT32, rank, dims, NULL);
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = (float)sin((double)i * k + off);
    return t;
}

/* Runs node n on the given inputs at an opset; outputs land in out. */
static bool run(ir_node *n, int opset, kiln_tensor **in, kiln_tensor **out) {
    m->opset = opset;
    for (int i = 0; i < n->n_in; i++)
        if (!in[i]) n->in[i] = NULL;
    kiln_status st = ref_run_node(n, (const kiln_tensor *const *)in, out);
    CHECK(st == KILN_OK, "%s failed: %s", n->op_type, kiln_last_error());
    return st == KILN_OK;
}

static void expect(const char *what, const kiln_tensor *t, const float *want,
                   int64_t n, double tol) {
    if (!t || tensor_numel(t) != n) {
        CHECK(0, "%s: wrong element count", what);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = dt_get_f64(t->dtype, t->data, (size_t)i);
        if (!(fabs(v - want[i]) <= tol + tol * fabs(want[i]))) {
            CHECK(0, "%s: element %lld is %.9g, want %.9g", what, (long long)i,
                  v, want[i]);
            return;
        }
    }
}

static void free_all(kiln_tensor **t, int n) {
    for (int i = 0; i < n; i++) tensor_free(t[i]);
}

static void test_matmul(void) {
    /* int32 products wrap like numpy: 2^30*2 + 2^30*2 = 2^32 -> 0 */
    ir_node *n = mk_node("MatMul", 2, 1);
    kiln_tensor *in[2] = {
        tensor_f64(KILN_DTYPE_INT32, 2, (const int64_t[]){1, 2},
                   (const double[]){1073741824.0, 1073741824.0}),
        tensor_f64(KILN_DTYPE_INT32, 2, (const int64_t[]){2, 1},
                   (const double[]){2, 2})};
    kiln_tensor *out[1] = {0};
    if (run(n, 13, in, out))
        CHECK(((const int32_t *)out[0]->data)[0] == 0, "int32 MatMul must wrap");
    free_all(in, 2);
    free_all(out, 1);

    /* batch broadcast [2,1,2,3] x [3,3,2], and the same through Einsum */
    kiln_tensor *bin[2] = {tseq(4, (const int64_t[]){2, 1, 2, 3}, 0.7, 0),
                           tseq(3, (const int64_t[]){3, 3, 2}, 0.3, 1.0)};
    n = mk_node("MatMul", 2, 1);
    if (run(n, 13, bin, out)) {
        CHECK(out[0]->rank == 4 && out[0]->dims[1] == 3, "MatMul bcast shape");
        expect("MatMul bcast", out[0], mm_bcast_want, 24, 1e-5);
    }
    free_all(out, 1);
    n = mk_node("Einsum", 2, 1);
    attr_str(n, "equation", " ...ij , ...jk -> ...ik ");
    if (run(n, 12, bin, out)) expect("Einsum bcast", out[0], mm_bcast_want, 24, 1e-5);
    free_all(out, 1);
    free_all(bin, 2);
}

static void test_gemm(void) {
    ir_node *n = mk_node("Gemm", 3, 1);
    attr_int(n, "transA", 1);
    attr_float(n, "alpha", 0.5f);
    attr_float(n, "beta", 2.0f);
    kiln_tensor *in[3] = {tseq(2, (const int64_t[]){4, 3}, 0.5, 0),
                          tseq(2, (const int64_t[]){4, 5}, 0.9, 0),
                          tseq(2, (const int64_t[]){3, 1}, 1.3, 0)};
    kiln_tensor *out[1] = {0};
    if (run(n, 13, in, out)) expect("Gemm transA, C[M,1]", out[0], gemm_want, 15, 1e-5);
    free_all(in, 3);
    free_all(out, 1);
}

static void test_einsum(void) {
    kiln_tensor *out[1] = {0};
    ir_node *n = mk_node("Einsum", 1, 1);
    attr_str(n, "equation", "ii->i");
    kiln_tensor *x = tseq(2, (const int64_t[]){4, 4}, 0.7, 0);
    if (run(n, 12, &x, out)) expect("Einsum ii->i", out[0], diag_want, 4, 1e-6);
    free_all(out, 1);
    tensor_free(x);

    n = mk_node("Einsum", 3, 1);
    attr_str(n, "equation", "i,i,i->");
    kiln_tensor *t3[3] = {tseq(1, (const int64_t[]){5}, 0.2, 0),
                          tseq(1, (const int64_t[]){5}, 0.4, 0),
                          tseq(1, (const int64_t[]){5}, 0.6, 0)};
    if (run(n, 12, t3, out)) {
        CHECK(out[0]->rank == 0, "Einsum i,i,i-> is a scalar");
        expect("Einsum i,i,i->", out[0], dot3_want, 1, 1e-6);
    }
    free_all(out, 1);
    free_all(t3, 3);

    n = mk_node("Einsum", 2, 1);
    attr_str(n, "equation", "Ab,bA");
    kiln_tensor *t2[2] = {tseq(2, (const int64_t[]){2, 3}, 0.7, 0),
                          tseq(2, (const int64_t[]){3, 2}, 0.3, 0)};
    if (run(n, 12, t2, out)) expect("Einsum Ab,bA", out[0], upper_want, 1, 1e-6);
    free_all(out, 1);
    free_all(t2, 2);
}

static void test_norms(void) {
    kiln_tensor *out[5] = {0};
    /* GroupNormalization-18: scale/bias per group (C=4, G=2) */
    ir_node *n = mk_node("GroupNormalization", 3, 1);
    attr_int(n, "num_groups", 2);
    kiln_tensor *gin[3] = {
        tseq(3, (const int64_t[]){1, 4, 3}, 1.1, 0),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, (const int64_t[]){2}, (const double[]){2, -1}),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, (const int64_t[]){2},
                   (const double[]){0.5, 0.25})};
    if (run(n, 18, gin, out)) expect("GroupNormalization-18", out[0], gn_want, 12, 1e-5);
    free_all(out, 1);
    free_all(gin, 3);

    /* BatchNormalization-9 with 5 outputs is training mode */
    n = mk_node("BatchNormalization", 5, 5);
    const int64_t two[1] = {2};
    kiln_tensor *bin[5] = {
        tseq(3, (const int64_t[]){2, 2, 2}, 0.9, 0),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, two, (const double[]){1.5, 0.5}),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, two, (const double[]){0.1, -0.2}),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, two, (const double[]){0.3, -0.1}),
        tensor_f64(KILN_DTYPE_FLOAT32, 1, two, (const double[]){1.2, 0.8})};
    if (run(n, 9, bin, out)) {
        expect("BatchNormalization-9 Y", out[0], bn_y, 8, 1e-5);
        expect("BatchNormalization-9 mean", out[1], bn_rm, 2, 1e-5);
        expect("BatchNormalization-9 var", out[2], bn_rv, 2, 1e-5);
        expect("BatchNormalization-9 saved mean", out[3], bn_sm, 2, 1e-5);
        expect("BatchNormalization-9 saved var", out[4], bn_sv, 2, 1e-5);
    }
    free_all(out, 5);
    free_all(bin, 5);

    n = mk_node("MeanVarianceNormalization", 1, 1);
    attr_ints(n, "axes", 1, (const int64_t[]){1});
    kiln_tensor *x = tseq(3, (const int64_t[]){2, 3, 2}, 0.4, 0);
    if (run(n, 13, &x, out)) expect("MVN axes=[1]", out[0], mvn_want, 12, 1e-5);
    free_all(out, 1);
    tensor_free(x);

    n = mk_node("LRN", 1, 1);
    attr_int(n, "size", 2);
    attr_float(n, "alpha", 0.1f);
    x = tseq(4, (const int64_t[]){1, 3, 1, 2}, 0.8, 0);
    if (run(n, 13, &x, out)) expect("LRN size=2", out[0], lrn_want, 6, 1e-5);
    free_all(out, 1);
    tensor_free(x);
}

static void test_attention(void) {
    /* bool mask + is_causal + past K/V: the causal diagonal is offset by the
    ** past length */
    ir_node *n = mk_node("Attention", 6, 3);
    attr_int(n, "is_causal", 1);
    kiln_tensor *in[6] = {
        tseq(4, (const int64_t[]){1, 1, 2, 2}, 0.5, 0),
        tseq(4, (const int64_t[]){1, 1, 1, 2}, 0.8, 0),
        tseq(4, (const int64_t[]){1, 1, 1, 2}, 1.2, 0),
        tensor_f64(KILN_DTYPE_BOOL, 2, (const int64_t[]){2, 3},
                   (const double[]){1, 0, 1, 1, 1, 1}),
        tseq(4, (const int64_t[]){1, 1, 2, 2}, 0.3, 0.5),
        tseq(4, (const int64_t[]){1, 1, 2, 2}, 0.6, 0.2)};
    kiln_tensor *out[3] = {0};
    if (run(n, 23, in, out)) {
        expect("Attention Y", out[0], att_y, 4, 1e-5);
        expect("Attention present_key", out[1], att_pk, 6, 1e-6);
        expect("Attention present_value", out[2], att_pv, 6, 1e-6);
    }
    free_all(in, 6);
    free_all(out, 3);
}

static void test_det(void) {
    ir_node *n = mk_node("Det", 1, 1);
    /* needs a row swap (zero pivot) and is then -2; second matrix singular */
    kiln_tensor *x = tensor_f64(KILN_DTYPE_FLOAT64, 3, (const int64_t[]){2, 2, 2},
                                (const double[]){0, 1, 2, 0, 1, 2, 2, 4});
    kiln_tensor *out[1] = {0};
    if (run(n, 22, &x, out)) {
        const double *d = out[0]->data;
        CHECK(d[0] == -2.0 && d[1] == 0.0, "Det got %g and %g, want -2 and 0",
              d[0], d[1]);
    }
    tensor_free(x);
    free_all(out, 1);
}

/* Static inference with symbolic dims, and malformed nodes rejected. */
static void test_static(void) {
    ir_model *sm = model_new(23);
    ir_model *saved_m = m;
    ir_graph *saved_g = g;
    m = sm;
    g = m->graph;
    int64_t B = ir_model_sym_named(m, "batch"), S = ir_model_sym_named(m, "seq");
    int64_t P = ir_model_sym_named(m, "past");
    ir_node *mm = mk_node("MatMul", 2, 1);
    mm->in[0]->type = (ir_type){KILN_DTYPE_FLOAT32, 3, {B, S, 768}};
    mm->in[1]->type = (ir_type){KILN_DTYPE_FLOAT32, 2, {768, 3072}};
    ir_node *at = mk_node("Attention", 6, 3);
    attr_int(at, "q_num_heads", 12);
    attr_int(at, "kv_num_heads", 4);
    at->in[0]->type = (ir_type){KILN_DTYPE_FLOAT32, 3, {B, S, 768}};
    at->in[1]->type = (ir_type){KILN_DTYPE_FLOAT32, 3, {B, S, 256}};
    at->in[2]->type = (ir_type){KILN_DTYPE_FLOAT32, 3, {B, S, 128}};
    at->in[3] = NULL;
    at->in[4]->type = (ir_type){KILN_DTYPE_FLOAT32, 4, {B, 4, P, 64}};
    at->in[5]->type = (ir_type){KILN_DTYPE_FLOAT32, 4, {B, 4, P, 32}};
    ir_node *es = mk_node("Einsum", 2, 1);
    attr_str(es, "equation", "bhid,bhjd->bhij");
    es->in[0]->type = (ir_type){KILN_DTYPE_FLOAT32, 4, {B, 12, S, 64}};
    es->in[1]->type = (ir_type){KILN_DTYPE_FLOAT32, 4, {B, 12, S, 64}};
    for (int i = 0; i < g->n_values; i++)
        if (!g->values[i]->producer) g->values[i]->flags |= IR_VALUE_INPUT;
    kiln_status st = ir_graph_infer(g);
    CHECK(st == KILN_OK, "static inference failed: %s", kiln_last_error());
    if (st == KILN_OK) {
        const ir_type *t = &mm->out[0]->type;
        CHECK(t->rank == 3 && t->dims[0] == B && t->dims[1] == S &&
                  t->dims[2] == 3072, "MatMul [batch,seq,768]x[768,3072]");
        t = &at->out[0]->type;
        CHECK(t->rank == 3 && t->dims[0] == B && t->dims[1] == S &&
                  t->dims[2] == 12 * 32, "Attention 3-D Y is [batch, seq, 384]");
        t = &at->out[1]->type;
        CHECK(t->rank == 4 && t->dims[0] == B && t->dims[1] == 4 &&
                  t->dims[2] < 0 && t->dims[2] != P && t->dims[3] == 64,
              "present_key is [batch, 4, past+seq, 64]");
        t = &es->out[0]->type;
        CHECK(t->rank == 4 && t->dims[0] == B && t->dims[1] == 12 &&
                  t->dims[2] == S && t->dims[3] == S, "Einsum bhij");
    }
    ir_model_free(sm);
    m = saved_m;
    g = saved_g;

    /* malformed: inner dims differ; einsum term count; odd rotary dim */
    const struct {
        const char *op, *eq;
        int rank0, rank1;
        int64_t d0[3], d1[3];
    } bad[] = {
        {"MatMul", NULL, 2, 2, {3, 4}, {5, 6}},
        {"Einsum", "ij,jk,kl->il", 2, 2, {3, 4}, {4, 5}},
        {"Einsum", "ij,jk->iz", 2, 2, {3, 4}, {4, 5}},
        {"Gemm", NULL, 2, 2, {3, 4}, {3, 5}},
    };
    for (size_t k = 0; k < KILN_ARRAY_LEN(bad); k++) {
        ir_model *bm = model_new(13);
        m = bm;
        g = m->graph;
        ir_node *n = mk_node(bad[k].op, 2, 1);
        if (bad[k].eq) attr_str(n, "equation", bad[k].eq);
        n->in[0]->type.dtype = n->in[1]->type.dtype = KILN_DTYPE_FLOAT32;
        n->in[0]->type.rank = bad[k].rank0;
        n->in[1]->type.rank = bad[k].rank1;
        memcpy(n->in[0]->type.dims, bad[k].d0, sizeof bad[k].d0);
        memcpy(n->in[1]->type.dims, bad[k].d1, sizeof bad[k].d1);
        n->in[0]->flags |= IR_VALUE_INPUT;
        n->in[1]->flags |= IR_VALUE_INPUT;
        CHECK(ir_graph_infer(g) != KILN_OK, "malformed %s '%s' was accepted",
              bad[k].op, bad[k].eq ? bad[k].eq : "");
        ir_model_free(bm);
    }
    m = saved_m;
    g = saved_g;
}

int main(void) {
    m = model_new(0); /* run() sets the opset per case */
    g = m->graph;
    test_matmul();
    test_gemm();
    test_einsum();
    test_norms();
    test_attention();
    test_det();
    test_static();
    ir_model_free(m);
    return test_all_passed("test_linalg");
}
