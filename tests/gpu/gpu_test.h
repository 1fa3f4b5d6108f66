/* gpu_test.h: scaffolding of the CUDA tactic tests (tests/gpu/test_cuda_*.c):
** opening the CUDA backend's device and an execution state, random host
** tensors in f32/f16/bf16, running a device tactic on uploaded copies of
** host tensors (output poisoned with NaN first, so unwritten elements
** show), and comparing against the reference kernel with a tolerance
** relative to the accumulated magnitude. Each test prints one line per
** failing case and ends with `N passed, M failed`; without a GPU it prints
** "0 passed, 0 failed (no GPU)" and exits 0. */
#ifndef KILN_GPU_TEST_H
#define KILN_GPU_TEST_H

#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/backends/cuda/kernels/cuda_kernels.h"
#include "../../src/ir/ir_edit.h"
#include "../../src/ops/fused.h"
#include "../unit/test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static void *g_dev;
static void *g_stream;
static cuda_exec *g_exec;
static const kiln_device_ops *g_ops;
static int g_declined; /* tactic declined a case (supports false / no algorithm) */
static const char *g_only; /* argv[1]: only tactics whose name contains it */
/* KILN_GPU_TEST_DRY=1 without a GPU: every case runs its reference and the
** tactics' supports()/workspace(), and "runs" by copying the reference (a
** check of the test itself on a machine without a GPU). */
static bool g_dry;

static void gt_die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

/* Opens the device; false (after printing the no-GPU summary) without one. */
static bool gt_init(int argc, char **argv) {
    int n = 0;
    g_only = argc > 1 ? argv[1] : NULL;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        const char *dry = getenv("KILN_GPU_TEST_DRY");
        if (!dry || strcmp(dry, "1")) {
            printf("0 passed, 0 failed (no GPU)\n");
            return false;
        }
        g_dry = true;
    }
    if (g_dry) goto model;
    const kiln_backend_ops *be = kiln_backend_cuda();
    if (!be || !be->dev) gt_die("no CUDA backend in this build");
    g_ops = be->dev;
    if (g_ops->open(&g_dev)) gt_die("device open");
    if (g_ops->stream_create(g_dev, &g_stream)) gt_die("stream");
    void *x;
    if (g_ops->exec_create(g_dev, g_stream, &x)) gt_die("exec");
    g_exec = x;
model:
    g_model = ir_model_new();
    if (!g_model) gt_die("model");
    g_model->opset = 21;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) gt_die("graph");
    g_model->graph = g_graph;
    return true;
}

static int gt_finish(void) {
    if (g_declined) fprintf(stderr, "(%d tactic/case pairs declined)\n", g_declined);
    if (!g_dry) {
        g_ops->exec_destroy(g_dev, g_exec);
        g_ops->stream_destroy(g_dev, g_stream);
        g_ops->close(g_dev);
    }
    ir_model_free(g_model);
    printf("%d passed, %d failed%s\n", g_pass, g_fail, g_dry ? " (dry run: references only)" : "");
    return g_fail != 0;
}

static ir_node *gt_node(int op, int n_in) {
    ir_node *n = ir_edit_add_node(g_graph, op, n_in, 1, NULL);
    if (!n) gt_die("add node");
    return n;
}

static const char *gt_dtype_name(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 ? "f16" : t == KILN_DTYPE_BFLOAT16 ? "bf16" : "f32";
}

/* Random tensor of dtype with values uniform in [-amp, amp) (rounded to
** the dtype). */
static kiln_tensor *gt_rand(kiln_dtype dt, int rank, const int64_t *dims, double amp) {
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
               cudaStreamSynchronize((cudaStream_t)g_stream)))
        gt_die("poison");
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
static bool gt_compare(const char *tname, const char *desc, const kiln_tensor *got,
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

#endif
