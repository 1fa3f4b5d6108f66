/* gpu_test.h: the one harness of the CUDA tactic tests (tests/gpu/test_cuda_*.c).
** A case is an IR node plus host inputs: the reference kernel computes the
** expected outputs on the host, the device tactic runs on uploaded copies
** into outputs poisoned first (all-ones bytes: NaN for floats), and the
** results are compared against the reference. Each test prints one line per
** failing case and ends with `N passed, M failed`; without a GPU it prints
** "0 passed, 0 failed (no GPU)" and exits 0.
**
** Dry run (a check of the tests themselves on a machine without a GPU):
** KILN_GPU_TEST_DRY=1 when there is no GPU, or KC_GPU_TEST_DRYRUN set: the
** cases run their references and the tactics' supports()/workspace() and
** count as passed without running on the device.
**
** Three families of helpers share the device, model and dry-run state:
**  - tactic tables with relative-to-magnitude comparison (gt_init(argc, argv),
**    gt_run, gt_compare_mag, gt_finish; attention, conv, gemm tests);
**  - one node through its first device tactic (h_open, h_check, h_summary;
**    data and pool tests);
**  - one node through a family's table (gt_init(), gt_case, gt_compare_out,
**    gt_bench, gt_fini; elementwise, reduce and norm tests).
** Four names had two meanings in the older headers (gt_init, gt_node, gt_rand,
** gt_compare); they dispatch on their argument count to the explicit
** functions below, which new code should call directly. */
#ifndef KILN_GPU_TEST_H
#define KILN_GPU_TEST_H

#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/backends/cuda/kernels/cuda_kernels.h"
#include "../../src/ir/ir_edit.h"
#include "../../src/ops/fused.h"
#include "../unit/test_util.h"

/* ------------------------------------------------------- shared state */
/* Most inputs of a gt_case/gt_bench node: the elementwise launchers'
** KC_MAX_IN (kernels/kc_shape.h is not included: its KC_* names clash with
** gemm_kernels.h's, which other tests include). */
#define GT_MAX_IN 8

static ir_model *g_model;
static ir_graph *g_graph;
static void *g_dev;
static void *g_stream;
static cuda_exec *g_exec;
static const kiln_backend_ops *g_cuda;
static const kiln_device_ops *g_ops;
static bool g_dry;            /* dry run: no device (see above) */
static int g_declined;        /* tactic declined a case (supports false / no algorithm) */
static int g_skipped;         /* cases without a device tactic or a valid reference */
static const char *g_only;    /* argv[1]: only tactics whose name contains it */
/* Lower bound of the comparison magnitude (for kernels whose weights can
** be negative, where the reference on absolute values is no bound). */
static double g_mag_floor;

static void gt_die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

/* Opens the device (unless dry) and a model at opset with an empty main
** graph. false without a GPU and without a dry run; nothing printed. */
static bool gt_open(int64_t opset) {
    int n = 0;
    const char *dry = getenv("KILN_GPU_TEST_DRY");
    g_dry = getenv("KC_GPU_TEST_DRYRUN") != NULL;
    if (!g_dry && (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)) {
        cudaGetLastError();
        if (!dry || strcmp(dry, "1")) return false;
        g_dry = true;
    }
    g_cuda = kiln_backend_cuda();
    if (!g_cuda || !g_cuda->dev) gt_die("no CUDA backend in this build");
    g_ops = g_cuda->dev;
    void *x = NULL;
    if (!g_dry && (g_ops->open(&g_dev) || g_ops->stream_create(g_dev, &g_stream) ||
                   g_ops->exec_create(g_dev, g_stream, &x)))
        gt_die("device setup");
    g_exec = x;
    g_model = ir_model_new();
    if (!g_model) gt_die("model");
    g_model->opset = opset;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) gt_die("graph");
    g_model->graph = g_graph;
    return true;
}

static void gt_close(void) {
    if (!g_dry) {
        g_ops->exec_destroy(g_dev, g_exec);
        g_ops->stream_destroy(g_dev, g_stream);
        g_ops->close(g_dev);
    }
    ir_model_free(g_model);
}

/* A node of op with n_in inputs and n_out outputs in the main graph. */
static ir_node *gt_node_n(int op, int n_in, int n_out) {
    ir_node *n = ir_edit_add_node(g_graph, op, n_in, n_out, NULL);
    if (!n) gt_die("add node");
    return n;
}

/* Comparison tolerance of a dtype (relative to a magnitude). */
static double gt_tol(kiln_dtype dt) {
    return dt == KILN_DTYPE_FLOAT16 ? 2e-3 : dt == KILN_DTYPE_BFLOAT16 ? 2e-2 : 1e-5;
}

/* Argument-count dispatch for the names with two meanings (see the top). */
#define GT_ARGC_(_1, _2, _3, _4, _5, _6, _7, N, ...) N
#define GT_ARGC(...) GT_ARGC_(__VA_ARGS__, 7, 6, 5, 4, 3, 2, 1, 0)
#define GT_CAT_(a, b) a##b
#define GT_CAT(a, b) GT_CAT_(a, b)
#define gt_init(...) GT_CAT(gt_init_, GT_ARGC(__VA_ARGS__))(__VA_ARGS__)
#define gt_init_1() gt_init_table()        /* gt_init() */
#define gt_init_2 gt_init_filtered         /* gt_init(argc, argv) */
#define gt_node(...) GT_CAT(gt_node_, GT_ARGC(__VA_ARGS__))(__VA_ARGS__)
#define gt_node_2 gt_node1                 /* (op, n_in): one output */
#define gt_node_3 gt_node_n                /* (op, n_in, n_out) */
#define gt_rand(...) GT_CAT(gt_rand_, GT_ARGC(__VA_ARGS__))(__VA_ARGS__)
#define gt_rand_4 gt_rand_amp              /* (dt, rank, dims, amp) */
#define gt_rand_5 gt_rand_range            /* (dt, rank, dims, lo, hi) */
#define gt_compare(...) GT_CAT(gt_compare_, GT_ARGC(__VA_ARGS__))(__VA_ARGS__)
#define gt_compare_7 gt_compare_mag
#define gt_compare_5 gt_compare_out

/* ------------------------------------------- tactic tables (attn, conv, gemm) */
/* Opens the device and an opset-21 model; argv[1] filters tactics by name.
** false (after printing the no-GPU summary) without a GPU. */
static bool gt_init_filtered(int argc, char **argv) {
    g_only = argc > 1 ? argv[1] : NULL;
    if (gt_open(21)) return true;
    printf("0 passed, 0 failed (no GPU)\n");
    return false;
}

static int gt_finish(void) {
    if (g_declined) fprintf(stderr, "(%d tactic/case pairs declined)\n", g_declined);
    gt_close();
    printf("%d passed, %d failed%s\n", g_pass, g_fail, g_dry ? " (dry run: references only)" : "");
    return g_fail != 0;
}

static ir_node *gt_node1(int op, int n_in) { return gt_node_n(op, n_in, 1); }

static const char *gt_dtype_name(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 ? "f16" : t == KILN_DTYPE_BFLOAT16 ? "bf16" : "f32";
}

/* Random tensor of dtype with values uniform in [-amp, amp) (rounded to
** the dtype). */
static kiln_tensor *gt_rand_amp(kiln_dtype dt, int rank, const int64_t *dims, double amp) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) gt_die("tensor_new");
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dt_set_f64(dt, t->data, (size_t)i, (rnd() * 2 - 1) * amp);
    return t;
}

/* float32 copy of |t| (NULL for NULL). */
static kiln_tensor *gt_abs_f32(const kiln_tensor *t) {
    if (!t) return NULL;
    kiln_tensor *r;
    if (tensor_new(KILN_DTYPE_FLOAT32, t->rank, t->dims, &r)) gt_die("tensor_new");
    float *p = r->data;
    for (int64_t i = 0; i < tensor_numel(r); i++)
        p[i] = (float)fabs(dt_get_f64(t->dtype, t->data, (size_t)i));
    return r;
}

/* float32 copy of t (NULL for NULL). */
static kiln_tensor *gt_f32(const kiln_tensor *t) {
    if (!t) return NULL;
    kiln_tensor *r;
    if (tensor_new(KILN_DTYPE_FLOAT32, t->rank, t->dims, &r)) gt_die("tensor_new");
    float *p = r->data;
    for (int64_t i = 0; i < tensor_numel(r); i++)
        p[i] = (float)dt_get_f64(t->dtype, t->data, (size_t)i);
    return r;
}

/* Reference run of node n on host tensors; the output (caller frees) or
** NULL. */
static kiln_tensor *gt_ref(ir_node *n, const kiln_tensor *const *in) {
    kiln_tensor *out[4] = {0};
    if (ref_run_node(n, in, out)) {
        fprintf(stderr, "reference failed: %s\n", kiln_last_error());
        return NULL;
    }
    for (int i = 1; i < n->n_out && i < 4; i++) tensor_free(out[i]);
    return out[0];
}

/* Runs device tactic t on n with host inputs in[0..n_in) (uploaded), output
** shaped like want. Returns the downloaded output, or NULL: *declined is
** set when the tactic does not take the case (supports false, or
** workspace SIZE_MAX), else the run failed (message printed). */
static kiln_tensor *gt_run(const kiln_tactic *t, ir_node *n, const kiln_tensor *const *in,
                           const kiln_tensor *want, bool *declined) {
    *declined = false;
    ir_type types[8];
    const ir_type *tin[8] = {0};
    kiln_tensor dt[8];
    const kiln_tensor *din[8] = {0};
    memset(dt, 0, sizeof dt);
    for (int i = 0; i < n->n_in && i < 8; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (t->supports && !t->supports(n, tin)) {
        *declined = true;
        return NULL;
    }
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (wsz == SIZE_MAX && !g_dry) { /* dry: cuDNN cannot be asked */
        *declined = true;
        return NULL;
    }
    if (g_dry) {
        kiln_tensor *copy;
        if (tensor_clone(want, &copy)) gt_die("clone");
        return copy;
    }
    kiln_tensor *y = NULL, yd;
    void *ws = NULL, *ybuf = NULL;
    bool ok = false;
    if (tensor_new(want->dtype, want->rank, want->dims, &y)) gt_die("tensor_new");
    for (int i = 0; i < n->n_in && i < 8; i++) {
        if (!in[i]) continue;
        dt[i] = *in[i];
        dt[i].flags = 0;
        dt[i].name = NULL;
        dt[i].data = NULL;
        if (in[i]->nbytes &&
            (cudaMalloc(&dt[i].data, in[i]->nbytes) != cudaSuccess ||
             cudaMemcpy(dt[i].data, in[i]->data, in[i]->nbytes, cudaMemcpyHostToDevice) !=
                 cudaSuccess))
            gt_die("upload");
        din[i] = &dt[i];
    }
    if (wsz && cudaMalloc(&ws, wsz) != cudaSuccess) gt_die("workspace");
    size_t yb = y->nbytes;
    if (yb && cudaMalloc(&ybuf, (yb + 3) & ~(size_t)3) != cudaSuccess) gt_die("output");
    /* all-ones bits: NaN in f32, f16 and bf16 */
    if (yb && (kc_fill_u32(ybuf, (yb + 3) / 4, 0xffffffffu, (cudaStream_t)g_stream) ||
               cudaDeviceSynchronize()))
        gt_die("poison"); /* the uploads ran on the legacy stream, which the
                          ** tactic's non-blocking stream does not wait for */
    yd = *y;
    yd.flags = 0;
    yd.name = NULL;
    yd.data = ybuf;
    kiln_tensor *outs[1] = {&yd};
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = din;
    c.n_out = 1;
    c.out = outs;
    c.ws = ws;
    c.ws_size = wsz;
    c.stream = g_stream;
    c.exec = g_exec;
    int rc = t->run(&c);
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)g_stream);
    if (rc && strstr(c.err, "NOT_SUPPORTED")) {
        *declined = true; /* the library has no kernel for this case */
    } else if (rc) {
        fprintf(stderr, "FAIL %s: run failed: %s\n", t->name, c.err);
    } else if (e != cudaSuccess) {
        fprintf(stderr, "FAIL %s: CUDA error %s\n", t->name, cudaGetErrorString(e));
        gt_die("device error (the context is unusable)");
    } else if (yb && cudaMemcpy(y->data, ybuf, yb, cudaMemcpyDeviceToHost) != cudaSuccess) {
        fprintf(stderr, "FAIL %s: download failed\n", t->name);
    } else {
        ok = true;
    }
    for (int i = 0; i < 8; i++) cudaFree(dt[i].data);
    cudaFree(ws);
    cudaFree(ybuf);
    if (!ok) {
        tensor_free(y);
        return NULL;
    }
    return y;
}

/* Tolerance factor of a dtype (relative to the magnitude). */
static double gt_rtol(kiln_dtype dt) {
    return dt == KILN_DTYPE_FLOAT16 ? 1e-2 : dt == KILN_DTYPE_BFLOAT16 ? 2e-2 : 1e-4;
}

/* |got - want| <= rtol * (mag + |want|) + tiny per element (NaN matches
** NaN). mag: float32 tensor of want's element count (the same computation
** on absolute values), or NULL to use mag_scalar everywhere. */
static bool gt_compare_mag(const char *tname, const char *desc, const kiln_tensor *got,
                       const kiln_tensor *want, const kiln_tensor *mag, double mag_scalar,
                       double rtol) {
    if (!shape_equal(got->rank, got->dims, want->rank, want->dims) ||
        got->dtype != want->dtype) {
        fprintf(stderr, "FAIL %s %s: shape or dtype differs\n", tname, desc);
        return false;
    }
    int64_t n = tensor_numel(got);
    for (int64_t i = 0; i < n; i++) {
        double g = dt_get_f64(got->dtype, got->data, (size_t)i);
        double w = dt_get_f64(want->dtype, want->data, (size_t)i);
        double m = mag ? ((const float *)mag->data)[i] : mag_scalar;
        double tol = rtol * (m + fabs(w)) + 1e-30;
        bool ok = fabs(g - w) <= tol || (isnan(g) && isnan(w)) || (isinf(g) && g == w);
        if (!ok) {
            fprintf(stderr, "FAIL %s %s: element %lld got %.9g want %.9g (mag %.4g)\n", tname,
                    desc, (long long)i, g, w, m);
            return false;
        }
    }
    return true;
}

/* Device tactics of op whose name passes the filter. */
static int gt_tactics(const kiln_tactic *const *table, int op, const kiln_tactic **out, int max) {
    int k = 0;
    for (const kiln_tactic *const *t = table; *t && k < max; t++) {
        if ((*t)->op != op) continue;
        if (g_only && !strstr((*t)->name, g_only)) continue;
        out[k++] = *t;
    }
    return k;
}

static const char *const gt_acts[] = {"",          "Relu",        "Clip",  "Sigmoid",
                                      "SiLU",      "Gelu",        "GeluTanh", "LeakyRelu",
                                      "HardSwish", "HardSigmoid", "Tanh"};

static void gt_set_act(ir_node *n, const char *act) {
    if (!act[0]) return;
    if (!ir_edit_set_str(n, "activation", act)) gt_die("attr");
    if (!strcmp(act, "Clip")) {
        ir_edit_set_float(n, "activation_alpha", -0.5f);
        ir_edit_set_float(n, "activation_beta", 1.25f);
    } else if (!strcmp(act, "LeakyRelu")) {
        ir_edit_set_float(n, "activation_alpha", 0.1f);
    } else if (!strcmp(act, "HardSigmoid")) {
        ir_edit_set_float(n, "activation_alpha", 0.3f);
        ir_edit_set_float(n, "activation_beta", 0.4f);
    }
}

/* Activation slope bound (error growth through it). */
static double gt_act_lip(const char *act) {
    return !strcmp(act, "HardSwish") ? 1.6 : !strcmp(act, "Gelu") || !strcmp(act, "GeluTanh") ? 1.2 : 1.1;
}

/* ------------------------------------- first device tactic (data, pool) */
/* 0: ready (model at opset); 1: no GPU (the caller prints the no-GPU
** summary). */
static int h_open(int64_t opset) { return gt_open(opset) ? 0 : 1; }

/* This family's older spellings of the shared names. */
#define h_die gt_die
#define g_hdry g_dry
#define h_node gt_node_n
#define h_tol gt_tol
#define h_summary test_summary

static void h_close(void) { gt_close(); }

static int64_t h_irand(int64_t lo, int64_t hi) { /* inclusive */
    return lo + (int64_t)(rnd() * (double)(hi - lo + 1));
}

/* Random contents: floats in [-2, 2], other types random bytes (bools 0/1). */
static kiln_tensor *h_rand(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) gt_die("tensor_new");
    int64_t n = tensor_numel(t);
    if (dtype_is_float(dt)) {
        for (int64_t i = 0; i < n; i++) dt_set_f64(dt, t->data, (size_t)i, rnd() * 4.0 - 2.0);
    } else if (dt == KILN_DTYPE_BOOL) {
        for (int64_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = rnd() < 0.5;
    } else {
        for (size_t i = 0; i < t->nbytes; i++) ((uint8_t *)t->data)[i] = (uint8_t)(rnd() * 256);
    }
    return t;
}

static kiln_tensor *h_abs(const kiln_tensor *t) {
    kiln_tensor *r;
    if (tensor_clone(t, &r)) gt_die("clone");
    for (int64_t i = 0; i < tensor_numel(r); i++)
        dt_set_f64(r->dtype, r->data, (size_t)i, fabs(dt_get_f64(r->dtype, r->data, (size_t)i)));
    return r;
}

static kiln_tensor *h_ints(kiln_dtype dt, int rank, const int64_t *dims, const int64_t *v) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) gt_die("tensor_new");
    for (int64_t i = 0; i < tensor_numel(t); i++) dt_set_i64(dt, t->data, (size_t)i, v[i]);
    return t;
}

static kiln_tensor *h_vec(int n, const int64_t *v) {
    int64_t d = n;
    return h_ints(KILN_DTYPE_INT64, 1, &d, v);
}

static kiln_tensor *h_f32vec(int n, const float *v) {
    int64_t d = n;
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, 1, &d, &t)) gt_die("tensor_new");
    memcpy(t->data, v, (size_t)n * sizeof(float));
    return t;
}

/* A node input: a runtime value, or a constant owning t (the model frees
** it; the caller still passes t as the host input). */
static ir_value *h_rt(void) {
    ir_value *v = ir_edit_new_value(g_graph, "x");
    if (!v) gt_die("value");
    return v;
}

static ir_value *h_const(kiln_tensor *t) {
    ir_value *v = ir_edit_add_const(g_graph, t, "c");
    if (!v) gt_die("const");
    return v;
}

enum { CMP_EXACT, CMP_FLOAT };

static bool h_cuda_ok(cudaError_t e, const char *what, const char *desc) {
    if (e == cudaSuccess) return true;
    fprintf(stderr, "FAIL %s: %s: %s\n", desc, what, cudaGetErrorString(e));
    g_fail++;
    return false;
}

static bool h_compare(const kiln_tensor *got, const kiln_tensor *want, const kiln_tensor *mag,
                      int cmp, const char *tname, const char *desc, int o) {
    if (cmp == CMP_EXACT || !dtype_is_float(want->dtype)) {
        if (!memcmp(got->data, want->data, want->nbytes)) return true;
        size_t es = kiln_dtype_size(want->dtype);
        size_t i = 0;
        while (i < want->nbytes && ((uint8_t *)got->data)[i] == ((uint8_t *)want->data)[i]) i++;
        fprintf(stderr, "FAIL %s %s: output %d element %zu differs (of %lld)\n", tname, desc, o,
                es ? i / es : i, (long long)tensor_numel(want));
        return false;
    }
    double tol = h_tol(want->dtype);
    for (int64_t i = 0; i < tensor_numel(want); i++) {
        double g = dt_get_f64(got->dtype, got->data, (size_t)i);
        double w = dt_get_f64(want->dtype, want->data, (size_t)i);
        double m = mag ? fabs(dt_get_f64(mag->dtype, mag->data, (size_t)i)) : fabs(w);
        if (m < g_mag_floor) m = g_mag_floor;
        if (isnan(g) && isnan(w)) continue;
        if (!(fabs(g - w) <= tol * m + 1e-30) && !(g == w)) {
            fprintf(stderr, "FAIL %s %s: output %d element %lld got %.9g want %.9g (mag %.4g)\n",
                    tname, desc, o, (long long)i, g, w, m);
            return false;
        }
    }
    return true;
}

/* Runs n (inputs in[0..n_in), NULL for absent) through the first device
** tactic and the reference. expect_device: a device tactic must exist (a
** missing one is a failure); else the case is only run when one does.
** mag_in: inputs for the magnitude run (NULL: |want|). */
static void h_check(ir_node *n, kiln_tensor **in, int cmp, kiln_tensor **mag_in,
                    bool expect_device, const char *desc) {
    ir_type types[16];
    const ir_type *tin[16] = {0};
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) continue;
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    const kiln_tactic *list[32], *t = NULL;
    int nt = g_cuda->tactics(n, tin, list, 32);
    for (int i = 0; i < nt && !t; i++)
        if (list[i]->flags & TACTIC_DEVICE) t = list[i];
    if (!t) {
        if (expect_device) {
            fprintf(stderr, "FAIL %s: no device tactic\n", desc);
            g_fail++;
        } else {
            g_skipped++;
        }
        return;
    }
    kiln_tensor *want[8] = {0}, *mag[8] = {0};
    if (ref_run_node(n, (const kiln_tensor *const *)in, want)) {
        /* an invalid random configuration: nothing to compare */
        if (g_verbose) fprintf(stderr, "skip %s: reference: %s\n", desc, kiln_last_error());
        g_skipped++;
        return;
    }
    if (mag_in && ref_run_node(n, (const kiln_tensor *const *)mag_in, mag)) gt_die("magnitude run");
    if (g_dry) {
        g_pass++;
        for (int o = 0; o < n->n_out; o++) {
            tensor_free(want[o]);
            tensor_free(mag[o]);
        }
        return;
    }
    kiln_tensor din[16], dout[8];
    const kiln_tensor *pin[16] = {0};
    kiln_tensor *pout[8] = {0};
    bool ok = true;
    for (int i = 0; i < n->n_in && ok; i++) {
        if (!in[i]) continue;
        din[i] = *in[i];
        din[i].name = NULL;
        din[i].flags = 0;
        din[i].data = NULL;
        ok = h_cuda_ok(cudaMalloc(&din[i].data, in[i]->nbytes ? in[i]->nbytes : 1), "malloc", desc) &&
             h_cuda_ok(cudaMemcpy(din[i].data, in[i]->data, in[i]->nbytes, cudaMemcpyHostToDevice),
                       "upload", desc);
        pin[i] = &din[i];
    }
    for (int o = 0; o < n->n_out && ok; o++) {
        if (!n->out[o]) continue; /* an absent optional output: the tactic gets NULL */
        dout[o] = *want[o];
        dout[o].name = NULL;
        dout[o].flags = 0;
        dout[o].data = NULL;
        ok = h_cuda_ok(cudaMalloc(&dout[o].data, want[o]->nbytes ? want[o]->nbytes : 1), "malloc",
                       desc) &&
             h_cuda_ok(cudaMemset(dout[o].data, 0xA5, want[o]->nbytes), "poison", desc);
        pout[o] = &dout[o];
    }
    void *ws = NULL;
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (ok && wsz && cudaMalloc(&ws, wsz) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: keep it from the next tactic's launch check */
        fprintf(stderr, "FAIL %s %s: workspace of %zu bytes: out of memory\n", t->name, desc, wsz);
        g_fail++;
        ok = false;
    }
    /* uploads and poisoning ran on the legacy stream, which the tactic's
    ** non-blocking stream does not wait for (a race seen on an H100 as a
    ** poisoned first element) */
    if (ok) ok = h_cuda_ok(cudaDeviceSynchronize(), "synchronize uploads", desc);
    if (ok) {
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        c.opset = (int)g_model->opset;
        c.n_in = n->n_in;
        c.in = pin;
        c.n_out = n->n_out;
        c.out = pout;
        c.ws = ws;
        c.ws_size = wsz;
        c.stream = g_stream;
        c.exec = g_exec;
        if (t->run(&c)) {
            fprintf(stderr, "FAIL %s %s: run failed: %s\n", t->name, desc, c.err);
            g_fail++;
            ok = false;
        } else {
            ok = h_cuda_ok(cudaStreamSynchronize((cudaStream_t)g_stream), "synchronize", desc);
        }
    }
    bool all = ok;
    for (int o = 0; o < n->n_out && ok; o++) {
        if (!pout[o]) continue;
        kiln_tensor *got;
        if (tensor_clone(want[o], &got)) gt_die("clone");
        if (!h_cuda_ok(cudaMemcpy(got->data, dout[o].data, want[o]->nbytes, cudaMemcpyDeviceToHost),
                       "download", desc)) {
            tensor_free(got);
            all = ok = false;
            break;
        }
        if (!h_compare(got, want[o], mag[o], cmp, t->name, desc, o)) all = false;
        tensor_free(got);
    }
    if (ok) {
        if (all) g_pass++;
        else g_fail++;
    }
    for (int i = 0; i < n->n_in; i++)
        if (pin[i]) cudaFree(din[i].data);
    for (int o = 0; o < n->n_out; o++)
        if (pout[o]) cudaFree(dout[o].data);
    if (ws) cudaFree(ws);
    for (int o = 0; o < n->n_out; o++) {
        tensor_free(want[o]);
        tensor_free(mag[o]);
    }
}



/* ------------------------------------- family tables (eltwise, reduce, norm) */
/* Opens the device and an opset-17 model; false (after printing the no-GPU
** summary) without a GPU. */
static bool gt_init_table(void) {
    if (gt_open(17)) return true;
    printf("0 passed, 0 failed (no GPU)\n");
    return false;
}

static int gt_fini(void) {
    gt_close();
    return test_summary();
}

/* Makes input i of n a constant holding a copy of t (tactics read
** parameters such as Clip bounds and reduction axes from the IR). */
static void gt_const_in(ir_node *n, int i, const kiln_tensor *t) {
    kiln_tensor *c;
    if (tensor_clone(t, &c)) gt_die("clone");
    ir_value *v = ir_edit_add_const(g_graph, c, "k");
    if (!v) gt_die("const");
    n->in[i] = v;
}

/* Makes input i of n a runtime value (not a constant): parameter inputs
** such as axes then reach the tactic only as device tensors. */
static void gt_rt_in(ir_node *n, int i) {
    ir_value *v = ir_edit_new_value(g_graph, "r");
    if (!v) gt_die("value");
    n->in[i] = v;
}

static double gt_urand(double lo, double hi) { return lo + (hi - lo) * rnd(); }
static int gt_irand(int lo, int hi) { return lo + (int)(rnd() * (hi - lo + 1)) % (hi - lo + 1); }

static bool gt_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16 ||
           t == KILN_DTYPE_FLOAT64;
}

/* Tensor of dt with values uniform in [lo, hi] (integers: rounded down). */
static kiln_tensor *gt_rand_range(kiln_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) gt_die("tensor");
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = gt_urand(lo, hi);
        if (gt_is_float(dt)) dt_set_f64(dt, t->data, (size_t)i, v);
        else if (dt == KILN_DTYPE_BOOL) ((uint8_t *)t->data)[i] = v > 0.5 * (lo + hi);
        else dt_set_i64(dt, t->data, (size_t)i, (int64_t)floor(v));
    }
    return t;
}

/* Random dims (rank given), at most max_numel elements. */
static void gt_shape(int rank, int64_t *dims, int64_t max_numel) {
    static const int64_t pick[] = {1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 64, 129};
    for (;;) {
        for (int i = 0; i < rank; i++) dims[i] = pick[gt_irand(0, (int)KILN_ARRAY_LEN(pick) - 1)];
        if (shape_numel(rank, dims) <= max_numel) return;
    }
}

/* A shape that broadcasts to (rank, dims): the same, a scalar, leading dims
** dropped, or random dims set to 1. */
static int gt_bcast_of(int rank, const int64_t *dims, int64_t *out) {
    int mode = gt_irand(0, 4), r = rank;
    if (mode == 1) return 0;
    if (mode == 2 && rank > 0) r = gt_irand(0, rank);
    for (int i = 0; i < r; i++) out[i] = dims[rank - r + i];
    if (mode >= 3)
        for (int i = 0; i < r; i++)
            if (rnd() < 0.5) out[i] = 1;
    return r;
}

static kiln_tensor *gt_upload(const kiln_tensor *h) {
    kiln_tensor *d = calloc(1, sizeof *d);
    if (!d) gt_die("oom");
    d->dtype = h->dtype;
    d->rank = h->rank;
    memcpy(d->dims, h->dims, sizeof d->dims);
    d->nbytes = h->nbytes;
    if (cudaMalloc(&d->data, h->nbytes ? h->nbytes : 1) != cudaSuccess) gt_die("cudaMalloc");
    if (h->nbytes && cudaMemcpy(d->data, h->data, h->nbytes, cudaMemcpyHostToDevice) != cudaSuccess)
        gt_die("cudaMemcpy");
    return d;
}

static void gt_dfree(kiln_tensor *d) {
    if (!d) return;
    cudaFree(d->data);
    free(d);
}

/* Compares got with want; prints the first bad element. */
static bool gt_compare_out(const char *desc, int o, const kiln_tensor *got, const kiln_tensor *want,
                       double rtol) {
    int64_t n = tensor_numel(want);
    kiln_dtype dt = want->dtype;
    if (gt_is_float(dt)) {
        double mx = 0;
        for (int64_t i = 0; i < n; i++) {
            double w = fabs(dt_get_f64(dt, want->data, (size_t)i));
            if (w == w && !isinf(w) && w > mx) mx = w;
        }
        for (int64_t i = 0; i < n; i++) {
            double g = dt_get_f64(dt, got->data, (size_t)i);
            double w = dt_get_f64(dt, want->data, (size_t)i);
            bool ok = (g != g && w != w) || g == w || fabs(g - w) <= rtol * (fabs(w) + mx);
            if (!ok) {
                fprintf(stderr, "FAIL %s: output %d element %lld got %.9g want %.9g\n", desc, o,
                        (long long)i, g, w);
                return false;
            }
        }
        return true;
    }
    size_t es = kiln_dtype_size(dt);
    if (es == 0) { /* packed 4-bit types: the bytes (an odd count's spare nibble too) */
        for (size_t i = 0; i < want->nbytes; i++)
            if (((const uint8_t *)got->data)[i] != ((const uint8_t *)want->data)[i]) {
                fprintf(stderr, "FAIL %s: output %d byte %zu (elements %zu, %zu) got 0x%02x "
                        "want 0x%02x\n", desc, o, i, 2 * i, 2 * i + 1,
                        ((const uint8_t *)got->data)[i], ((const uint8_t *)want->data)[i]);
                return false;
            }
        return true;
    }
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)got->data + (size_t)i * es,
                   (const char *)want->data + (size_t)i * es, es)) {
            fprintf(stderr, "FAIL %s: output %d element %lld got %lld want %lld\n", desc, o,
                    (long long)i, (long long)dt_get_i64(dt, got->data, (size_t)i),
                    (long long)dt_get_i64(dt, want->data, (size_t)i));
            return false;
        }
    return true;
}

/* The family's tactic for an op (first in table order). */
static const kiln_tactic *gt_tactic(const kiln_tactic *const *table, int op) {
    for (const kiln_tactic *const *t = table; *t; t++)
        if ((*t)->op == op) return *t;
    return NULL;
}

/* Runs one case; records a pass or a failure. Takes ownership of nothing. */
static bool gt_case(const kiln_tactic *const *table, ir_node *n, const kiln_tensor *const *hin,
                    double rtol, const char *desc) {
    const kiln_tactic *t = gt_tactic(table, n->op);
    /* the first tactic of the op that takes the case (an op may have one
    ** for constant parameters and one for runtime ones) */
    {
        ir_type ty[GT_MAX_IN + 2];
        const ir_type *ti[GT_MAX_IN + 2] = {NULL};
        for (int i = 0; i < n->n_in && i < GT_MAX_IN + 2; i++) {
            if (!hin[i]) continue;
            ty[i].dtype = hin[i]->dtype;
            ty[i].rank = hin[i]->rank;
            memcpy(ty[i].dims, hin[i]->dims, sizeof ty[i].dims);
            ti[i] = &ty[i];
        }
        for (const kiln_tactic *const *c = table; *c; c++)
            if ((*c)->op == n->op && (!(*c)->supports || (*c)->supports(n, ti))) {
                t = *c;
                break;
            }
    }
    char lab[300];
    snprintf(lab, sizeof lab, "%s %s (opset %lld)", t ? t->name : n->op_type, desc,
             (long long)g_model->opset);
    kiln_tensor *want[4] = {NULL, NULL, NULL, NULL};
    kiln_tensor *din[GT_MAX_IN + 2] = {NULL}, *dout[4] = {NULL};
    void *ws = NULL;
    bool ok = false;
    if (!t) {
        fprintf(stderr, "FAIL %s: no tactic\n", lab);
        goto done;
    }
    if (ref_run_node(n, hin, want)) {
        fprintf(stderr, "FAIL %s: reference failed: %s\n", lab, kiln_last_error());
        goto done;
    }
    for (int o = 0; o < n->n_out; o++) {
        ir_type *ty = &n->out[o]->type;
        ty->dtype = want[o]->dtype;
        ty->rank = want[o]->rank;
        memcpy(ty->dims, want[o]->dims, sizeof ty->dims);
    }
    ir_type types[GT_MAX_IN + 2];
    const ir_type *tin[GT_MAX_IN + 2] = {NULL};
    for (int i = 0; i < n->n_in; i++) {
        if (!hin[i]) continue;
        types[i].dtype = hin[i]->dtype;
        types[i].rank = hin[i]->rank;
        memcpy(types[i].dims, hin[i]->dims, sizeof types[i].dims);
        tin[i] = &types[i];
    }
    if (t->supports && !t->supports(n, tin)) {
        fprintf(stderr, "FAIL %s: the tactic declined the case\n", lab);
        goto done;
    }
    if (g_dry) {
        ok = true;
        goto done;
    }
    for (int i = 0; i < n->n_in; i++) din[i] = hin[i] ? gt_upload(hin[i]) : NULL;
    for (int o = 0; o < n->n_out; o++) {
        dout[o] = gt_upload(want[o]);
        if (cudaMemset(dout[o]->data, 0xff, want[o]->nbytes ? want[o]->nbytes : 1))
            gt_die("memset");
    }
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (wsz && cudaMalloc(&ws, wsz) != cudaSuccess) gt_die("ws");
    /* uploads and poisoning ran on the legacy stream, which the tactic's
    ** non-blocking stream does not wait for */
    if (cudaDeviceSynchronize() != cudaSuccess) gt_die("cudaDeviceSynchronize");
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = (const kiln_tensor *const *)din;
    c.n_out = n->n_out;
    c.out = dout;
    c.ws = ws;
    c.ws_size = wsz;
    c.stream = g_stream;
    c.exec = g_exec;
    int rc = t->run(&c);
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)g_stream);
    if (rc || e != cudaSuccess) {
        fprintf(stderr, "FAIL %s: run failed: %s %s\n", lab, c.err,
                e != cudaSuccess ? cudaGetErrorString(e) : "");
        cudaGetLastError();
        goto done;
    }
    ok = true;
    for (int o = 0; o < n->n_out && ok; o++) {
        kiln_tensor *got;
        if (tensor_new(want[o]->dtype, want[o]->rank, want[o]->dims, &got)) gt_die("tensor");
        if (got->nbytes &&
            cudaMemcpy(got->data, dout[o]->data, got->nbytes, cudaMemcpyDeviceToHost))
            gt_die("download");
        ok = gt_compare_out(lab, o, got, want[o], rtol);
        tensor_free(got);
    }
done:
    if (ok) g_pass++;
    else g_fail++;
    for (int i = 0; i < GT_MAX_IN + 2; i++) gt_dfree(din[i]);
    for (int o = 0; o < 4; o++) {
        gt_dfree(dout[o]);
        tensor_free(want[o]);
    }
    if (ws) cudaFree(ws);
    return ok;
}

/* KC_GPU_BENCH=1: times a tactic at model sizes (mean of 20 runs after a
** warm-up, on the device's clock) and prints the effective bandwidth
** (bytes of inputs read once plus outputs written). Not a pass/fail check. */
static void gt_bench(const kiln_tactic *const *table, ir_node *n, const kiln_tensor *const *hin,
                     const char *label) {
    if (g_dry || !getenv("KC_GPU_BENCH")) return;
    const kiln_tactic *t = gt_tactic(table, n->op);
    kiln_tensor *want[4] = {NULL, NULL, NULL, NULL};
    if (!t || ref_run_node(n, hin, want)) {
        fprintf(stderr, "bench %s: setup failed (%s)\n", label, kiln_last_error());
        return;
    }
    kiln_tensor *din[GT_MAX_IN + 2] = {NULL}, *dout[4] = {NULL};
    double bytes = 0;
    for (int i = 0; i < n->n_in; i++)
        if (hin[i]) {
            din[i] = gt_upload(hin[i]);
            bytes += (double)hin[i]->nbytes;
        }
    for (int o = 0; o < n->n_out; o++) {
        dout[o] = gt_upload(want[o]);
        bytes += (double)want[o]->nbytes;
    }
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = (int)g_model->opset;
    c.n_in = n->n_in;
    c.in = (const kiln_tensor *const *)din;
    c.n_out = n->n_out;
    c.out = dout;
    c.stream = g_stream;
    c.exec = g_exec;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaDeviceSynchronize();
    int rc = t->run(&c);
    cudaEventRecord(e0, (cudaStream_t)g_stream);
    for (int k = 0; k < 20 && !rc; k++) rc = t->run(&c);
    cudaEventRecord(e1, (cudaStream_t)g_stream);
    float ms = 0;
    if (cudaEventSynchronize(e1) == cudaSuccess) cudaEventElapsedTime(&ms, e0, e1);
    if (rc) printf("bench %-44s failed: %s\n", label, c.err);
    else printf("bench %-44s %9.1f us %8.1f GB/s  (%s)\n", label, ms * 1000 / 20,
                bytes / (ms / 20 * 1e-3) / 1e9, t->name);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    for (int i = 0; i < GT_MAX_IN + 2; i++) gt_dfree(din[i]);
    for (int o = 0; o < 4; o++) {
        gt_dfree(dout[o]);
        tensor_free(want[o]);
    }
}

static const char *gt_dt(kiln_dtype t) { return kiln_dtype_name(t); }

/* "[2,3,4]" for messages. */
static const char *gt_shp(const kiln_tensor *t, char *buf, size_t n) {
    return shape_str(t->rank, t->dims, buf, n);
}

#endif
