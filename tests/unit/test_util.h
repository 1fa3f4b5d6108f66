/* test_util.h: scaffolding shared by the unit tests (each test stays one
** standalone program linked only against kiln_static): pass/fail counting,
** a deterministic random source, hand-built IR (nodes, inputs, constants,
** attributes), tensors, and the load -> optimize -> compare helpers of the
** optimizer tests. Everything is static so that a test uses what it needs. */
#ifndef KILN_TEST_UTIL_H
#define KILN_TEST_UTIL_H

#include "../../src/backends/ref/ref.h"
#include "../../src/import/model.h"
#include "../../src/passes/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ checking */
static int g_pass, g_fail;
static bool g_verbose; /* extra progress on stderr (KILN_TEST_VERBOSE) */

/* Counts a pass, or a failure reported on stderr with file:line and a
** printf-style message. */
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            g_pass++;                                                      \
        } else {                                                           \
            g_fail++;                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

/* Prints `N passed, M failed`; the exit status for main. */
static inline int test_summary(void) {
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}

/* Prints `NAME: all passed` when nothing failed; the exit status for main. */
static inline int test_all_passed(const char *name) {
    if (!g_fail) printf("%s: all passed\n", name);
    return g_fail != 0;
}

/* ------------------------------------------------------------ random */
#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif
static uint64_t g_rng = TEST_RNG_SEED;

static inline double rnd(void) { /* xorshift, uniform [0, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------ tensors */
/* New tensor holding raw (nbytes of it), zeros when raw is NULL. Exits on
** failure: a test cannot go on without its data. */
static inline kiln_tensor *tensor_with(kiln_dtype dt, int rank, const int64_t *dims,
                                       const void *raw) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) exit(1);
    if (raw && t->nbytes) memcpy(t->data, raw, t->nbytes);
    return t;
}

/* New tensor with elements converted from vals (zeros when NULL). */
static inline kiln_tensor *tensor_f64(kiln_dtype dt, int rank, const int64_t *dims,
                                      const double *vals) {
    kiln_tensor *t = tensor_with(dt, rank, dims, NULL);
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; vals && i < n; i++) dt_set_f64(dt, t->data, (size_t)i, vals[i]);
    return t;
}

static inline void free_tensors(kiln_tensor **t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) tensor_free(t[i]);
    free(t);
}

/* Worst |a-b| / (atol + rtol |b|): 0 when equal (NaN matches NaN); -1 when
** the shapes or dtypes differ. */
static inline double diff(const kiln_tensor *a, const kiln_tensor *b, double atol,
                          double rtol, double *worst_abs) {
    *worst_abs = 0;
    if (!a || !b || a->dtype != b->dtype ||
        !shape_equal(a->rank, a->dims, b->rank, b->dims))
        return -1;
    int64_t n = tensor_numel(a);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = dt_get_f64(a->dtype, a->data, (size_t)i);
        double y = dt_get_f64(b->dtype, b->data, (size_t)i);
        if (x != x || y != y) {
            if ((x != x) != (y != y)) return 1e9;
            continue;
        }
        if (isinf(x) || isinf(y)) {
            if (x != y) return 1e9;
            continue;
        }
        double d = fabs(x - y);
        if (d > *worst_abs) *worst_abs = d;
        double r = d / (atol + rtol * fabs(y));
        if (r > worst) worst = r;
    }
    return worst;
}

/* ------------------------------------------------------------ hand-built IR */
/* A model at an ai.onnx opset with an empty main graph (m->graph). */
static inline ir_model *model_new(int64_t opset) {
    ir_model *m = ir_model_new();
    if (!m) exit(1);
    m->eval = &ref_evaluator; /* as kiln_model_load sets it */
    m->opset = opset;
    m->graph = ir_graph_new(m, NULL);
    if (!m->graph) exit(1);
    return m;
}

/* Zeroed memory from the model's arena. */
static inline void *arena_zalloc(ir_model *m, size_t n) {
    void *p = kiln_arena_alloc(&m->arena, n);
    if (!p) exit(1);
    memset(p, 0, n);
    return p;
}

/* A graph input of a given type (the test lists it in g->inputs if needed). */
static inline ir_value *input(ir_graph *g, const char *name, kiln_dtype dt, int rank,
                              const int64_t *dims) {
    ir_value *v = ir_value_new(g, name);
    if (!v) exit(1);
    v->type.dtype = dt;
    v->type.rank = rank;
    if (rank > 0) memcpy(v->type.dims, dims, (size_t)rank * sizeof *dims);
    v->flags |= IR_VALUE_INPUT;
    return v;
}

/* An initializer holding a copy of vals (nbytes of the type). */
static inline ir_value *const_tensor(ir_graph *g, const char *name, kiln_dtype dt,
                                     int rank, const int64_t *dims, const void *vals) {
    ir_value *v = ir_value_new(g, name);
    if (!v) exit(1);
    kiln_tensor *t = tensor_with(dt, rank, dims, vals);
    if (!ir_model_own_tensor(g->model, t)) exit(1);
    v->const_val = t;
    v->type.dtype = dt;
    v->type.rank = rank;
    if (rank > 0) memcpy(v->type.dims, dims, (size_t)rank * sizeof *dims);
    v->flags |= IR_VALUE_INITIALIZER;
    return v;
}

/* int64 initializers: a vector of n values, and a scalar. */
static inline ir_value *const_vec(ir_graph *g, const char *name, int n,
                                  const int64_t *vals) {
    int64_t d = n;
    return const_tensor(g, name, KILN_DTYPE_INT64, 1, &d, vals);
}

static inline ir_value *const_scalar(ir_graph *g, const char *name, int64_t v) {
    return const_tensor(g, name, KILN_DTYPE_INT64, 0, NULL, &v);
}

/* A node of op type `op` reading in[0..n_in) (in NULL: inputs left absent)
** with n_out new outputs named out0, out0_1, out0_2, ... */
static inline ir_node *node(ir_graph *g, const char *op, int n_in, ir_value **in,
                            int n_out, const char *out0) {
    ir_node *n = ir_node_new(g, n_in, n_out);
    if (!n) exit(1);
    n->op_type = op;
    n->op = op_lookup(op);
    n->schema = op_schema_get(n->op);
    for (int i = 0; in && i < n_in; i++) n->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s_%d", out0, i);
        n->out[i] = ir_value_new(g, i == 0 ? out0 : nm);
        if (!n->out[i]) exit(1);
        n->out[i]->producer = n;
        n->out[i]->producer_out = i;
    }
    return n;
}

/* Appends an attribute to n (arena memory of n's model). */
static inline ir_attr *add_attr(ir_node *n, const char *name, int type) {
    ir_attr *a = arena_zalloc(n->graph->model, ((size_t)n->n_attrs + 1) * sizeof *a);
    if (n->n_attrs) memcpy(a, n->attrs, (size_t)n->n_attrs * sizeof *a);
    n->attrs = a;
    a += n->n_attrs++;
    a->name = name;
    a->type = type;
    return a;
}

static inline void attr_int(ir_node *n, const char *name, int64_t v) {
    add_attr(n, name, IR_ATTR_INT)->i = v;
}

static inline void attr_float(ir_node *n, const char *name, float v) {
    add_attr(n, name, IR_ATTR_FLOAT)->f = v;
}

static inline void attr_str(ir_node *n, const char *name, const char *s) {
    ir_attr *a = add_attr(n, name, IR_ATTR_STRING);
    a->s = s;
    a->s_len = strlen(s);
}

static inline void attr_ints(ir_node *n, const char *name, int cnt, const int64_t *v) {
    ir_attr *a = add_attr(n, name, IR_ATTR_INTS);
    a->ints = arena_zalloc(n->graph->model, (size_t)cnt * sizeof *v);
    memcpy(a->ints, v, (size_t)cnt * sizeof *v);
    a->n = cnt;
}

/* The inferred type has exactly these dims / the symbolic contents are. */
static inline bool dims_are(const ir_value *v, int rank, const int64_t *d) {
    if (v->type.rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (v->type.dims[i] != d[i]) return false;
    return true;
}

static inline bool sval_is(const ir_value *v, int n, const int64_t *d) {
    if (!v->sym_val || v->sym_len != n) return false;
    for (int i = 0; i < n; i++)
        if (v->sym_val[i] != d[i]) return false;
    return true;
}

/* ------------------------------------------------------------ models and passes */
#define NODE_DIR \
    "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/onnx/backend/test/data/node/"

static inline bool file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static inline void log_fn(void *user, kiln_severity sev, const char *msg) {
    (void)user;
    (void)sev;
    fprintf(stderr, "  %s\n", msg);
}

/* Loads a model twice: the original (km->ir) and an independent copy. */
static inline bool load2(const char *path, kiln_model **km, ir_model **opt) {
    *km = NULL;
    *opt = NULL;
    if (kiln_model_load(path, km)) {
        fprintf(stderr, "cannot load %s: %s\n", path, kiln_last_error());
        return false;
    }
    if (kiln_model_reimport(*km, opt)) {
        fprintf(stderr, "cannot reimport %s: %s\n", path, kiln_last_error());
        kiln_model_free(*km);
        *km = NULL;
        return false;
    }
    return true;
}

/* Runs a space-separated list of passes ("all": the pipeline). */
static inline kiln_status run_passes(ir_model *m, const char *list) {
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m;
    pc.g = m->graph;
    pc.opt_level = 3;
    pc.log = g_verbose ? log_fn : NULL;
    pc.log_max = g_verbose ? KILN_SEVERITY_VERBOSE : KILN_SEVERITY_ERROR;
    if (!strcmp(list, "all")) return passes_run_all(&pc);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *s = strtok_r(buf, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        kiln_status st = passes_run_one(&pc, s);
        if (st) return st;
    }
    return KILN_OK;
}

static inline int count_op(const ir_graph *g, const char *op) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, op)) k++;
    return k;
}

/* spec: "Op=count ... total=n" */
static inline void expect_ops(const char *what, const ir_graph *g, const char *spec) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *s = strtok_r(buf, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(s, '=');
        if (!eq) continue;
        *eq = 0;
        int want = atoi(eq + 1);
        int got = !strcmp(s, "total") ? g->n_nodes : count_op(g, s);
        CHECK(got == want, "%s: %s count %d, expected %d", what, s, got, want);
    }
}

static inline ir_value *value_named(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_values; i++)
        if (!strcmp(g->values[i]->name, name)) return g->values[i];
    return NULL;
}

static inline ir_node *producer_of(const ir_graph *g, const char *name) {
    ir_value *v = value_named(g, name);
    return v ? v->producer : NULL;
}

/* Random inputs for g: symbolic dims = sym_dim, except that a dim named
** `one_dim` (may be NULL) is 1 (a mask broadcast over the keys). Floats in
** [-2, 2); bools mostly true; integers 0..2 (valid token ids). NULL on
** failure. */
static inline kiln_tensor **make_inputs(const ir_graph *g, int64_t sym_dim,
                                        const char *one_dim) {
    kiln_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    if (!in) return NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_type *t = &g->inputs[i]->type;
        int64_t dims[KILN_MAX_RANK];
        for (int d = 0; d < t->rank; d++) {
            const char *nm = t->dims[d] < 0 ? ir_dim_name(g->model, t->dims[d]) : NULL;
            dims[d] = t->dims[d] >= 0 ? t->dims[d]
                      : one_dim && nm && !strcmp(nm, one_dim) ? 1 : sym_dim;
        }
        if (t->rank < 0 || tensor_new(t->dtype, t->rank, dims, &in[i])) {
            fprintf(stderr, "cannot make input '%s'\n", g->inputs[i]->name);
            return in;
        }
        int64_t n = tensor_numel(in[i]);
        for (int64_t k = 0; k < n; k++) {
            if (dtype_is_float(t->dtype))
                dt_set_f64(t->dtype, in[i]->data, (size_t)k, rnd() * 4 - 2);
            else if (t->dtype == KILN_DTYPE_BOOL)
                ((uint8_t *)in[i]->data)[k] = rnd() < 0.7;
            else
                dt_set_i64(t->dtype, in[i]->data, (size_t)k, (int64_t)(rnd() * 3));
        }
    }
    return in;
}

/* Runs ga and gb (same inputs and outputs) on one set of random inputs;
** every output must agree within atol/rtol. */
static inline void same_run(const char *what, const ir_graph *ga, const ir_graph *gb,
                            int64_t sym_dim, const char *one_dim, double atol,
                            double rtol) {
    kiln_tensor **in = make_inputs(ga, sym_dim, one_dim);
    int no = ga->n_outputs;
    kiln_tensor **oa = calloc((size_t)no + 1, sizeof *oa);
    kiln_tensor **ob = calloc((size_t)no + 1, sizeof *ob);
    if (!in || !oa || !ob) {
        CHECK(0, "%s: out of memory", what);
    } else {
        kiln_status sa = ref_run_graph(ga, (const kiln_tensor *const *)in, NULL, oa);
        char ea[512];
        snprintf(ea, sizeof ea, "%s", sa ? kiln_last_error() : "");
        kiln_status sb = ref_run_graph(gb, (const kiln_tensor *const *)in, NULL, ob);
        CHECK(!sa, "%s: original graph failed: %s", what, ea);
        CHECK(!sb, "%s: rewritten graph failed: %s", what, sb ? kiln_last_error() : "");
        for (int o = 0; !sa && !sb && o < no; o++) {
            double wa, e = diff(ob[o], oa[o], atol, rtol, &wa);
            CHECK(e >= 0 && e <= 1, "%s: output '%s' differs (err %g, max abs %g)", what,
                  ga->outputs[o]->name, e, wa);
        }
    }
    free_tensors(in, ga->n_inputs);
    free_tensors(oa, no);
    free_tensors(ob, no);
}

/* Runs g on DIR/input_N.pb and compares with DIR/output_N.pb (atol 1e-5,
** rtol 1e-3; 2e-3 for both on float16 outputs when half_tol). Returns the
** run's status (KILN_OK when the inputs could not be read). */
static inline kiln_status node_data_set(const char *name, const ir_graph *g,
                                        const char *dir, bool half_tol) {
    char path[1500];
    int ni = g->n_inputs, no = g->n_outputs;
    kiln_tensor **in = calloc((size_t)ni + 1, sizeof *in);
    kiln_tensor **out = calloc((size_t)no + 1, sizeof *out);
    bool ok = in && out;
    for (int i = 0; ok && i < ni; i++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", dir, i);
        ok = !kiln_tensor_load_pb(path, &in[i], NULL);
    }
    CHECK(ok, "%s: inputs", name);
    kiln_status st = KILN_OK;
    if (ok) {
        st = ref_run_graph(g, (const kiln_tensor *const *)in, NULL, out);
        CHECK(!st, "%s: run failed: %s", name, st ? kiln_last_error() : "");
    }
    for (int o = 0; ok && !st && o < no; o++) {
        kiln_tensor *want;
        snprintf(path, sizeof path, "%s/output_%d.pb", dir, o);
        if (kiln_tensor_load_pb(path, &want, NULL)) {
            CHECK(0, "%s: cannot read %s", name, path);
            continue;
        }
        bool half = half_tol && want->dtype == KILN_DTYPE_FLOAT16;
        double wa, e = diff(out[o], want, half ? 2e-3 : 1e-5, half ? 2e-3 : 1e-3, &wa);
        CHECK(e >= 0 && e <= 1, "%s: output %d differs (err %g, max abs %g)", name, o, e,
              wa);
        tensor_free(want);
    }
    free_tensors(in, ni);
    free_tensors(out, no);
    return st;
}

#endif
