/* cuda_backend.c: the CUDA backend's contract with the core: device state,
** memory, streams, events, graph capture, the engine fingerprint, and the
** tactic list (device tactics of every family first; the CPU backend's
** host tactics, the reference kernel last, as the fallback the runtime runs
** with explicit copies). */
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kiln_status cuda_status(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return KILN_OK;
    kiln_status st = e == cudaErrorMemoryAllocation ? KILN_OUT_OF_MEMORY : KILN_DEVICE_ERROR;
    return kiln_error(st, "%s: CUDA error %s: %s", what, cudaGetErrorName(e),
                      cudaGetErrorString(e));
}

int cuda_fail_if(ref_ctx *c, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    ref_fail(c, "%s: CUDA error %s: %s", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return -1;
}

/* ---------------------------------------------------------------- params */
static int param_read(ref_ctx *c, int i, double *f, int64_t *v, int max, const char *what) {
    if (i >= c->n_in || !c->in[i]) return 0;
    const kiln_tensor *k = c->node && i < c->node->n_in && c->node->in[i]
                               ? c->node->in[i]->const_val : NULL;
    const kiln_tensor *t = k ? k : c->in[i];
    int64_t n = tensor_numel(t);
    size_t es = kiln_dtype_size(t->dtype);
    bool is_int = dtype_is_int(t->dtype), is_float = dtype_is_float(t->dtype);
    if (t->rank > 1 || n < 0 || n > max || (!is_int && !is_float) || es == 0 || es > 8 ||
        t->dtype == KILN_DTYPE_INT4 || t->dtype == KILN_DTYPE_UINT4)
        return ref_fail(c, "%s must be a vector of at most %d numbers", what, max);
    const void *src = t->data;
    uint64_t buf[64];
    if (!k && n > 0) {
        if ((size_t)n * es > sizeof buf) return ref_fail(c, "%s has too many values", what);
        cudaStream_t s = cuda_stream_of(c);
        if (cuda_fail_if(c, cudaMemcpyAsync(buf, t->data, (size_t)n * es, cudaMemcpyDeviceToHost,
                                            s), what) ||
            cuda_fail_if(c, cudaStreamSynchronize(s), what))
            return -1;
        src = buf;
    }
    for (int64_t j = 0; j < n; j++) {
        if (f) f[j] = dt_get_f64(t->dtype, src, (size_t)j);
        if (v) v[j] = is_int ? dt_get_i64(t->dtype, src, (size_t)j)
                             : (int64_t)dt_get_f64(t->dtype, src, (size_t)j);
    }
    return (int)n;
}

int cuda_param_i64(ref_ctx *c, int i, int64_t *v, int max, const char *what) {
    return param_read(c, i, NULL, v, max > 64 ? 64 : max, what);
}

int cuda_param_f64(ref_ctx *c, int i, double *v, int max, const char *what) {
    return param_read(c, i, v, NULL, max > 64 ? 64 : max, what);
}

bool cuda_param_runtime(const ir_node *n, const ir_type *const *in, int i, bool floats) {
    if (i >= n->n_in || !n->in[i] || n->in[i]->const_val || !in[i]) return false;
    kiln_dtype t = in[i]->dtype;
    bool ok = (dtype_is_int(t) && t != KILN_DTYPE_INT4 && t != KILN_DTYPE_UINT4) ||
              (floats && dtype_is_float(t) && kiln_dtype_size(t) <= 8 && kiln_dtype_size(t) >= 2);
    return ok && in[i]->rank >= 0 && in[i]->rank <= 1;
}

/* ---------------------------------------------------------------- device */
static kiln_status dev_open(void **out) {
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        int drv = 0;
        cudaDriverGetVersion(&drv);
        cudaGetLastError();
        if (drv == 0)
            return kiln_error(KILN_DEVICE_ERROR, "no NVIDIA GPU driver was found on this "
                              "machine: build for the CPU (--device cpu) or run on a "
                              "machine with a GPU");
        return kiln_error(KILN_DEVICE_ERROR, "no usable NVIDIA GPU was found (driver %d.%d; "
                          "%s): build for the CPU (--device cpu) or run on a machine with "
                          "a GPU", drv / 1000, drv % 1000 / 10,
                          e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    cuda_dev *d = calloc(1, sizeof *d);
    if (!d) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    const char *env = getenv("KILN_CUDA_DEVICE");
    d->device = env ? atoi(env) : 0;
    if (d->device < 0 || d->device >= n) {
        free(d);
        return kiln_error(KILN_INVALID_ARGUMENT, "KILN_CUDA_DEVICE=%s: this machine has %d "
                          "GPU(s)", env, n);
    }
    struct cudaDeviceProp p;
    kiln_status st;
    if ((st = cuda_status(cudaSetDevice(d->device), "cudaSetDevice")) ||
        (st = cuda_status(cudaGetDeviceProperties(&p, d->device), "cudaGetDeviceProperties"))) {
        free(d);
        return st;
    }
    d->sm = p.major * 10 + p.minor;
    d->n_sm = p.multiProcessorCount;
    d->smem_optin = p.sharedMemPerBlockOptin;
    d->l2_bytes = (size_t)p.l2CacheSize;
    snprintf(d->name, sizeof d->name, "%s", p.name);
    cudaDriverGetVersion(&d->driver_version);
    cudaRuntimeGetVersion(&d->runtime_version);
    d->libs = cuda_libs_get();
    snprintf(d->fingerprint, sizeof d->fingerprint,
             "sm=%d;name=%s;driver=%d;cudart=%d;cublaslt=%zu;cudnn=%zu",
             d->sm, d->name, d->driver_version, d->runtime_version,
             d->libs->lt_version, d->libs->dnn_version);
    *out = d;
    return KILN_OK;
}

static void dev_close(void *dev) { free(dev); }

static const char *dev_fingerprint(void *dev) { return ((cuda_dev *)dev)->fingerprint; }

/* Reads "key=value" out of a fingerprint into buf ("" when absent). */
static const char *fp_field(const char *fp, const char *key, char *buf, size_t n) {
    size_t kl = strlen(key);
    buf[0] = 0;
    for (const char *p = fp; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1, *end = strchr(v, ';');
            size_t len = end ? (size_t)(end - v) : strlen(v);
            if (len >= n) len = n - 1;
            memcpy(buf, v, len);
            buf[len] = 0;
            break;
        }
        p = strchr(p, ';');
        if (p) p++;
    }
    return buf;
}

static kiln_status dev_check_fingerprint(void *dev, const char *built) {
    cuda_dev *d = dev;
    char sm[32], name[256], lt[32], dnn[32], drv[32];
    fp_field(built, "sm", sm, sizeof sm);
    fp_field(built, "name", name, sizeof name);
    if (atoi(sm) != d->sm)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "the engine was built for sm_%s (%s); "
                          "this GPU is sm_%d (%s): rebuild the engine on it", sm, name,
                          d->sm, d->name);
    /* Tactics from a library need at least the version they were tuned
    ** with (cuBLASLt algorithms and cuDNN engines are not portable down). */
    fp_field(built, "cublaslt", lt, sizeof lt);
    fp_field(built, "cudnn", dnn, sizeof dnn);
    fp_field(built, "driver", drv, sizeof drv);
    if (strtoull(lt, NULL, 10) > d->libs->lt_version)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "the engine was built with cuBLASLt "
                          "%s; this machine has %zu (%s): install cuBLASLt %s or newer, "
                          "or rebuild the engine here", lt, d->libs->lt_version,
                          d->libs->lt_path, lt);
    if (strtoull(dnn, NULL, 10) > d->libs->dnn_version)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "the engine was built with cuDNN %s; "
                          "this machine has %zu (%s): install cuDNN %s or newer, or "
                          "rebuild the engine here", dnn, d->libs->dnn_version,
                          d->libs->dnn_path, dnn);
    if (atoi(drv) > d->driver_version)
        return kiln_error(KILN_INCOMPATIBLE_ENGINE, "the engine was built with CUDA driver "
                          "API %s; this driver supports %d: update the driver or rebuild",
                          drv, d->driver_version);
    return KILN_OK;
}

static kiln_status dev_alloc(void *dev, size_t bytes, void **out) {
    (void)dev;
    *out = NULL;
    if (!bytes) return KILN_OK;
    return cuda_status(cudaMalloc(out, bytes), "cudaMalloc");
}

static void dev_free(void *dev, void *p) {
    (void)dev;
    if (p) cudaFree(p);
}

static kiln_status dev_host_alloc(void *dev, size_t bytes, void **out) {
    (void)dev;
    *out = NULL;
    if (!bytes) return KILN_OK;
    return cuda_status(cudaMallocHost(out, bytes), "cudaMallocHost");
}

static void dev_host_free(void *dev, void *p) {
    (void)dev;
    if (p) cudaFreeHost(p);
}

static kiln_status dev_copy(void *dev, void *dst, const void *src, size_t n,
                            dev_copy_kind kind, void *stream) {
    (void)dev;
    if (!n) return KILN_OK;
    enum cudaMemcpyKind k = kind == DEV_H2D   ? cudaMemcpyHostToDevice
                            : kind == DEV_D2H ? cudaMemcpyDeviceToHost
                                              : cudaMemcpyDeviceToDevice;
    return cuda_status(cudaMemcpyAsync(dst, src, n, k, (cudaStream_t)stream), "cudaMemcpyAsync");
}

static kiln_status dev_memset0(void *dev, void *p, size_t n, void *stream) {
    (void)dev;
    if (!n) return KILN_OK;
    return cuda_status(cudaMemsetAsync(p, 0, n, (cudaStream_t)stream), "cudaMemsetAsync");
}

static kiln_status dev_stream_create(void *dev, void **out) {
    (void)dev;
    cudaStream_t s = NULL;
    kiln_status st = cuda_status(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking),
                                 "cudaStreamCreate");
    *out = s;
    return st;
}

static void dev_stream_destroy(void *dev, void *s) {
    (void)dev;
    if (s) cudaStreamDestroy((cudaStream_t)s);
}

static kiln_status dev_stream_sync(void *dev, void *s) {
    (void)dev;
    return cuda_status(cudaStreamSynchronize((cudaStream_t)s), "cudaStreamSynchronize");
}

static kiln_status lt_status(const cuda_libs *L, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return KILN_OK;
    return kiln_error(KILN_DEVICE_ERROR, "%s: cuBLASLt error %s", what,
                      L->ltGetStatusString ? L->ltGetStatusString(s) : "?");
}

static kiln_status dnn_status(const cuda_libs *L, cudnnStatus_t s, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return KILN_OK;
    return kiln_error(KILN_DEVICE_ERROR, "%s: cuDNN error %s", what,
                      L->dnnGetErrorString ? L->dnnGetErrorString(s) : "?");
}

static void exec_destroy(void *dev, void *p) {
    cuda_exec *x = p;
    if (!x) return;
    const cuda_libs *L = ((cuda_dev *)dev)->libs;
    cuda_plans_free(x);
    if (x->lt) L->ltDestroy((cublasLtHandle_t)x->lt);
    if (x->dnn) L->dnnDestroy((cudnnHandle_t)x->dnn);
    if (x->lt_ws) cudaFree(x->lt_ws);
    free(x);
}

static kiln_status exec_set_stream(void *dev, void *p, void *stream) {
    cuda_exec *x = p;
    x->stream = (cudaStream_t)stream;
    if (!x->dnn) return KILN_OK;
    const cuda_libs *L = ((cuda_dev *)dev)->libs;
    return dnn_status(L, L->dnnSetStream((cudnnHandle_t)x->dnn, x->stream), "cudnnSetStream");
}

static kiln_status exec_create(void *dev, void *stream, void **out) {
    cuda_dev *d = dev;
    const cuda_libs *L = d->libs;
    *out = NULL;
    cuda_exec *x = calloc(1, sizeof *x);
    if (!x) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    x->dev = d;
    kiln_status st = KILN_OK;
    if (L->ltCreate) {
        cublasLtHandle_t h = NULL;
        st = lt_status(L, L->ltCreate(&h), "cublasLtCreate");
        x->lt = h;
        /* 32 MiB is what cuBLASLt's Hopper kernels are documented to want
        ** at most for split-K and stream-K scratch. */
        x->lt_ws_size = 32u << 20;
        if (!st) st = cuda_status(cudaMalloc(&x->lt_ws, x->lt_ws_size), "cudaMalloc");
    }
    if (!st && L->dnnCreate) {
        cudnnHandle_t h = NULL;
        st = dnn_status(L, L->dnnCreate(&h), "cudnnCreate");
        x->dnn = h;
    }
    if (!st) st = exec_set_stream(dev, x, stream);
    if (st) {
        exec_destroy(dev, x);
        return st;
    }
    *out = x;
    return KILN_OK;
}

static kiln_status ev_create(void *dev, void **out) {
    (void)dev;
    cudaEvent_t e = NULL;
    kiln_status st = cuda_status(cudaEventCreate(&e), "cudaEventCreate");
    *out = e;
    return st;
}

static void ev_destroy(void *dev, void *e) {
    (void)dev;
    if (e) cudaEventDestroy((cudaEvent_t)e);
}

static kiln_status ev_record(void *dev, void *e, void *s) {
    (void)dev;
    return cuda_status(cudaEventRecord((cudaEvent_t)e, (cudaStream_t)s), "cudaEventRecord");
}

static kiln_status ev_elapsed(void *dev, void *a, void *b, float *ms) {
    (void)dev;
    kiln_status st = cuda_status(cudaEventSynchronize((cudaEvent_t)b), "cudaEventSynchronize");
    if (!st) st = cuda_status(cudaEventElapsedTime(ms, (cudaEvent_t)a, (cudaEvent_t)b),
                              "cudaEventElapsedTime");
    return st;
}

static kiln_status cap_begin(void *dev, void *s) {
    (void)dev;
    return cuda_status(cudaStreamBeginCapture((cudaStream_t)s,
                                              cudaStreamCaptureModeThreadLocal),
                       "cudaStreamBeginCapture");
}

static kiln_status cap_end(void *dev, void *s, void **out) {
    (void)dev;
    *out = NULL;
    cudaGraph_t g = NULL;
    kiln_status st = cuda_status(cudaStreamEndCapture((cudaStream_t)s, &g),
                                 "cudaStreamEndCapture");
    if (st) return st;
    cudaGraphExec_t x = NULL;
    st = cuda_status(cudaGraphInstantiate(&x, g, 0), "cudaGraphInstantiate");
    cudaGraphDestroy(g);
    *out = x;
    return st;
}

static kiln_status graph_launch(void *dev, void *g, void *s) {
    (void)dev;
    return cuda_status(cudaGraphLaunch((cudaGraphExec_t)g, (cudaStream_t)s), "cudaGraphLaunch");
}

static void graph_destroy(void *dev, void *g) {
    (void)dev;
    if (g) cudaGraphExecDestroy((cudaGraphExec_t)g);
}

static kiln_status mem_info(void *dev, uint64_t *free_b, uint64_t *total_b) {
    (void)dev;
    size_t f = 0, t = 0;
    kiln_status st = cuda_status(cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
    *free_b = f;
    *total_b = t;
    return st;
}

static const kiln_device_ops k_dev = {
    dev_open, dev_close, dev_fingerprint, dev_check_fingerprint,
    dev_alloc, dev_free, dev_host_alloc, dev_host_free, dev_copy, dev_memset0,
    dev_stream_create, dev_stream_destroy, dev_stream_sync,
    exec_create, exec_destroy, exec_set_stream,
    ev_create, ev_destroy, ev_record, ev_elapsed,
    cap_begin, cap_end, graph_launch, graph_destroy, mem_info,
};

/* ---------------------------------------------------------------- tactics */
static const kiln_tactic *const *const k_families[] = {
    cuda_tactics_eltwise, cuda_tactics_data,       cuda_tactics_reduce,
    cuda_tactics_norm,    cuda_tactics_pool,       cuda_tactics_gemm,
    cuda_tactics_gemm_sm90, cuda_tactics_gemm_graph, cuda_tactics_conv_graph, cuda_tactics_conv,
    cuda_tactics_attn,    cuda_tactics_qconv,      cuda_tactics_qfgemm,
};
#define N_FAMILIES (sizeof k_families / sizeof k_families[0])

static int cuda_tactics_for(const ir_node *n, const ir_type *const *in,
                            const kiln_tactic **out, int max) {
    int k = 0;
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (const kiln_tactic *const *t = k_families[f]; *t && k < max - 1; t++) {
            if ((*t)->op != n->op) continue;
            if ((*t)->supports && !(*t)->supports(n, in)) continue;
            out[k++] = *t;
        }
    /* Host fallback: the CPU backend's own list (its best tactic first,
    ** the reference kernel last). */
    if (k < max) k += kiln_backend_cpu()->tactics(n, in, out + k, max - k);
    return k;
}

static const kiln_tactic *cuda_find(const char *name) {
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (const kiln_tactic *const *t = k_families[f]; *t; t++)
            if (strcmp((*t)->name, name) == 0)
                /* opt-in tactics are not there until switched on */
                return k_families[f] == cuda_tactics_qfgemm && !cuda_qfgemm_enabled() ? NULL
                                                                                       : *t;
    return kiln_backend_cpu()->find_tactic(name);
}

static unsigned cuda_host_isa(void) { return kiln_backend_cpu()->host_isa(); }

static const kiln_backend_ops k_cuda = {
    "cuda", cuda_host_isa, cuda_tactics_for, cuda_find, &k_dev, NULL,
};

const kiln_backend_ops *kiln_backend_cuda(void) { return &k_cuda; }
