/* kc_gpu_test.h: harness of the elementwise / reduce / normalization GPU
** tests (test_cuda_eltwise.c, test_cuda_reduce.c, test_cuda_norm.c). A case
** is an IR node plus host inputs: the reference kernel computes the
** expected outputs on the host, the device tactic runs on uploaded copies
** into outputs poisoned with 0xFF bytes (NaN for floats, 255 for bool), and
** the results are compared: floats within rtol * (|want| + max |want|),
** everything else exactly. One line per failing case; the summary line is
** `N passed, M failed`. */
#ifndef KILN_KC_GPU_TEST_H
#define KILN_KC_GPU_TEST_H

#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/backends/cuda/kernels/kc_shape.h"
#include "../../src/ir/ir_edit.h"
#include "../unit/test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static const kiln_device_ops *g_ops;
static void *g_dev, *g_stream, *g_exec;
/* KC_GPU_TEST_DRYRUN=1: no device; run the references and supports() only
** (checks the cases themselves on a machine without a GPU). */
static bool g_dry;

static void gt_die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

/* false (after printing the no-GPU summary) when there is no GPU. */
static bool gt_init(void) {
    int n = 0;
    g_dry = getenv("KC_GPU_TEST_DRYRUN") != NULL;
    if (!g_dry && (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)) {
        cudaGetLastError();
        printf("0 passed, 0 failed (no GPU)\n");
        return false;
    }
    const kiln_backend_ops *b = kiln_backend_cuda();
    if (!b || !b->dev) gt_die("no CUDA backend in this build");
    g_ops = b->dev;
    if (!g_dry && (g_ops->open(&g_dev) || g_ops->stream_create(g_dev, &g_stream) ||
        g_ops->exec_create(g_dev, g_stream, &g_exec)))
        gt_die("device setup");
    g_model = ir_model_new();
    if (!g_model) gt_die("model");
    g_model->opset = 17;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) gt_die("graph");
    g_model->graph = g_graph;
    return true;
}

static int gt_fini(void) {
    if (!g_dry) {
        g_ops->exec_destroy(g_dev, g_exec);
        g_ops->stream_destroy(g_dev, g_stream);
        g_ops->close(g_dev);
    }
    ir_model_free(g_model);
    return test_summary();
}

static ir_node *gt_node(int op, int n_in, int n_out) {
    ir_node *n = ir_edit_add_node(g_graph, op, n_in, n_out, NULL);
    if (!n) gt_die("add node");
    return n;
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
static kiln_tensor *gt_rand(kiln_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
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

static double gt_tol(kiln_dtype dt) {
    return dt == KILN_DTYPE_FLOAT16 ? 2e-3 : dt == KILN_DTYPE_BFLOAT16 ? 2e-2 : 1e-5;
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
static bool gt_compare(const char *desc, int o, const kiln_tensor *got, const kiln_tensor *want,
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
        ir_type ty[KC_MAX_IN + 2];
        const ir_type *ti[KC_MAX_IN + 2] = {NULL};
        for (int i = 0; i < n->n_in && i < KC_MAX_IN + 2; i++) {
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
    kiln_tensor *din[KC_MAX_IN + 2] = {NULL}, *dout[4] = {NULL};
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
    ir_type types[KC_MAX_IN + 2];
    const ir_type *tin[KC_MAX_IN + 2] = {NULL};
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
        ok = gt_compare(lab, o, got, want[o], rtol);
        tensor_free(got);
    }
done:
    if (ok) g_pass++;
    else g_fail++;
    for (int i = 0; i < KC_MAX_IN + 2; i++) gt_dfree(din[i]);
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
    kiln_tensor *din[KC_MAX_IN + 2] = {NULL}, *dout[4] = {NULL};
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
    for (int i = 0; i < KC_MAX_IN + 2; i++) gt_dfree(din[i]);
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
