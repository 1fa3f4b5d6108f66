/* gpu_tactic_harness.h: runs one IR node through its first CUDA device
** tactic and through the reference kernel, and compares (used by
** test_cuda_data.c and test_cuda_pool.c). Inputs are host tensors; the
** harness uploads them, poisons the outputs, runs the tactic on a stream,
** synchronizes and downloads. Data movement is compared byte for byte;
** float math within a relative tolerance of a magnitude (the reference
** run on absolute values, or |want|). */
#ifndef KILN_GPU_TACTIC_HARNESS_H
#define KILN_GPU_TACTIC_HARNESS_H

#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/ir/ir_edit.h"
#include "../unit/test_util.h"

static ir_model *g_model;
static ir_graph *g_graph;
static void *g_dev, *g_exec, *g_stream;
static const kiln_backend_ops *g_cuda;
static int g_skipped;
/* Lower bound of the comparison magnitude (for kernels whose weights can
** be negative, where the reference on absolute values is no bound). */
static double g_mag_floor;

static void h_die(const char *what) {
    fprintf(stderr, "fatal: %s (%s)\n", what, kiln_last_error());
    exit(2);
}

/* KILN_GPU_TEST_DRY=1 without a GPU: each case picks its tactic and runs
** the reference, then counts as passed without running on the device (a
** check of the tests themselves on a machine without a GPU). */
static bool g_hdry;

/* 0: ready; 1: no GPU (the caller prints the no-GPU summary). */
static int h_open(int64_t opset) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        const char *dry = getenv("KILN_GPU_TEST_DRY");
        if (!dry || strcmp(dry, "1")) return 1;
        g_hdry = true;
    }
    g_cuda = kiln_backend_cuda();
    if (!g_cuda || !g_cuda->dev) h_die("no CUDA backend in this build");
    const kiln_device_ops *d = g_cuda->dev;
    if (!g_hdry && (d->open(&g_dev) || d->stream_create(g_dev, &g_stream) ||
                    d->exec_create(g_dev, g_stream, &g_exec)))
        h_die("device open");
    g_model = ir_model_new();
    if (!g_model) h_die("model");
    g_model->opset = opset;
    g_graph = ir_graph_new(g_model, NULL);
    if (!g_graph) h_die("graph");
    g_model->graph = g_graph;
    return 0;
}

static void h_close(void) {
    const kiln_device_ops *d = g_cuda->dev;
    if (g_hdry) {
        ir_model_free(g_model);
        return;
    }
    d->exec_destroy(g_dev, g_exec);
    d->stream_destroy(g_dev, g_stream);
    d->close(g_dev);
    ir_model_free(g_model);
}

static int64_t h_irand(int64_t lo, int64_t hi) { /* inclusive */
    return lo + (int64_t)(rnd() * (double)(hi - lo + 1));
}

/* Random contents: floats in [-2, 2], other types random bytes (bools 0/1). */
static kiln_tensor *h_rand(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) h_die("tensor_new");
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
    if (tensor_clone(t, &r)) h_die("clone");
    for (int64_t i = 0; i < tensor_numel(r); i++)
        dt_set_f64(r->dtype, r->data, (size_t)i, fabs(dt_get_f64(r->dtype, r->data, (size_t)i)));
    return r;
}

static kiln_tensor *h_ints(kiln_dtype dt, int rank, const int64_t *dims, const int64_t *v) {
    kiln_tensor *t;
    if (tensor_new(dt, rank, dims, &t)) h_die("tensor_new");
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
    if (tensor_new(KILN_DTYPE_FLOAT32, 1, &d, &t)) h_die("tensor_new");
    memcpy(t->data, v, (size_t)n * sizeof(float));
    return t;
}

/* A node input: a runtime value, or a constant owning t (the model frees
** it; the caller still passes t as the host input). */
static ir_value *h_rt(void) {
    ir_value *v = ir_edit_new_value(g_graph, "x");
    if (!v) h_die("value");
    return v;
}

static ir_value *h_const(kiln_tensor *t) {
    ir_value *v = ir_edit_add_const(g_graph, t, "c");
    if (!v) h_die("const");
    return v;
}

static ir_node *h_node(int op, int n_in, int n_out) {
    ir_node *n = ir_edit_add_node(g_graph, op, n_in, n_out, NULL);
    if (!n) h_die("node");
    return n;
}

enum { CMP_EXACT, CMP_FLOAT };

static double h_tol(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 ? 2e-3 : t == KILN_DTYPE_BFLOAT16 ? 2e-2 : 1e-5;
}

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
    if (mag_in && ref_run_node(n, (const kiln_tensor *const *)mag_in, mag)) h_die("magnitude run");
    if (g_hdry) {
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
    if (ok && wsz) ok = h_cuda_ok(cudaMalloc(&ws, wsz), "workspace", desc);
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
        if (tensor_clone(want[o], &got)) h_die("clone");
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

static int h_summary(void) {
    printf("%d passed, %d failed%s\n", g_pass, g_fail,
           g_hdry ? " (dry run: references and tactic choice only)" : "");
    return g_fail != 0;
}

#endif
