/* cuda_graph.c: the cuDNN graph-API machinery shared by cuda_conv_graph.c
** and cuda_gemm_graph.c (see cuda_graph.h): descriptors owned by a plan,
** heuristic configurations, plan trials, the build-time query handle with
** its workspace answers, the run-time plan cache and variant packs. */
#include "cuda_graph.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool cg_api(void) {
    const cuda_libs *L = cuda_libs_get();
    return L->dnnBackendExecute != NULL && L->dnnConvolutionForward != NULL;
}

/* ------------------------------------------------------------ plans */
void cg_plan_clear(const cuda_libs *L, cg_plan *p) {
    if (p->vpack) L->dnnBackendDestroyDescriptor(p->vpack);
    if (p->plan) L->dnnBackendDestroyDescriptor(p->plan);
    for (int i = p->n_d - 1; i >= 0; i--)
        if (p->d[i]) L->dnnBackendDestroyDescriptor(p->d[i]);
    p->n_d = 0;
    p->plan = p->vpack = NULL;
}

void cg_plan_free(const cuda_libs *L, void *payload) {
    cg_plan *p = payload;
    if (!p) return;
    cg_plan_clear(L, p);
    free(p);
}

/* ------------------------------------------------------------ descriptors */
cudnnStatus_t cg_new(cg_build *b, cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t *out) {
    *out = NULL;
    if (b->p->n_d >= CG_MAX_DESC) {
        b->what = "internal: too many descriptors";
        return CUDNN_STATUS_INTERNAL_ERROR;
    }
    cudnnStatus_t s = b->L->dnnBackendCreateDescriptor(t, out);
    if (s) {
        b->what = "cudnnBackendCreateDescriptor";
        *out = NULL;
        return s;
    }
    b->p->d[b->p->n_d++] = *out;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cg_tensor(cg_build *b, int64_t uid, cudnnDataType_t t, int nd, const int64_t *dims,
                        const int64_t *strides, int64_t align, bool virt,
                        cudnnBackendDescriptor_t *out) {
    cudnnStatus_t s = cg_new(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR, out);
    if (s) return s;
    bool v = virt;
    GSET(b, *out, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t);
    GSET(b, *out, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, nd, dims);
    GSET(b, *out, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, nd, strides);
    GSET(b, *out, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    GSET(b, *out, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    GSET(b, *out, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
    GFIN(b, *out, "tensor");
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cg_pointwise(cg_build *b, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                           cudnnBackendDescriptor_t bb, cudnnBackendDescriptor_t y,
                           cudnnBackendDescriptor_t *op) {
    cudnnBackendDescriptor_t pw;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    cudnnStatus_t s = cg_new(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
    if (s) return s;
    GSET(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    GSET(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    GFIN(b, pw, "pointwise");
    if ((s = cg_new(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op))) return s;
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
         &pw);
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (bb)
        GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bb);
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    GFIN(b, *op, "pointwise operation");
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cg_graph(cg_build *b, cudnnHandle_t h, cudnnBackendDescriptor_t *ops, int n_ops,
                       cudnnBackendDescriptor_t *graph) {
    cudnnStatus_t s = cg_new(b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph);
    if (s) return s;
    GSET(b, *graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops);
    if (h) GSET(b, *graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    GFIN(b, *graph, "operation graph");
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ configurations */
/* The heuristic's configurations for graph in mode m (at most CG_MAX_CFG),
** into cfg[] (the caller destroys them and *heur). */
static cudnnStatus_t cg_configs(cg_build *b, cudnnBackendDescriptor_t graph, int m,
                                cudnnBackendDescriptor_t *heur, cudnnBackendDescriptor_t *cfg,
                                int *n_cfg) {
    const cuda_libs *L = b->L;
    *n_cfg = 0;
    *heur = NULL;
    cudnnBackendHeurMode_t hm = m == CG_MODE_A ? CUDNN_HEUR_MODE_A : CUDNN_HEUR_MODE_FALLBACK;
    cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, heur);
    if (s) {
        *heur = NULL;
        b->what = "cudnnBackendCreateDescriptor(ENGINEHEUR)";
        return s;
    }
    GSET(b, *heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
         &graph);
    GSET(b, *heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm);
    GFIN(b, *heur, "engine heuristic");
    int64_t n = 0;
    if ((s = L->dnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL))) {
        b->what = "cudnnBackendGetAttribute(ENGINEHEUR_RESULTS count)";
        return s;
    }
    if (n > CG_MAX_CFG) n = CG_MAX_CFG;
    if (n <= 0) return CUDNN_STATUS_SUCCESS;
    for (int i = 0; i < n; i++) {
        if ((s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]))) {
            for (int j = 0; j < i; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
            b->what = "cudnnBackendCreateDescriptor(ENGINECFG)";
            return s;
        }
    }
    int64_t got = 0;
    s = L->dnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got, cfg);
    if (s) {
        for (int j = 0; j < n; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
        b->what = "cudnnBackendGetAttribute(ENGINEHEUR_RESULTS)";
        return s;
    }
    if (got < 0) got = 0;
    for (int64_t j = got; j < n; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
    *n_cfg = (int)(got < n ? got : n);
    return CUDNN_STATUS_SUCCESS;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Finalizes a plan of configuration cfg on h. CUDNN_STATUS_NOT_SUPPORTED
** for engines that reduce in reduced precision (our FP16/BF16 layers
** accumulate in FP32) and for workspaces over max_ws. *rtc: the engine
** compiles its kernel at run time (NVRTC; its finalize may take seconds). */
static cudnnStatus_t cg_try(cg_build *b, cudnnHandle_t h, cudnnBackendDescriptor_t cfg,
                            size_t max_ws, cudnnBackendDescriptor_t *plan, int64_t *ws,
                            int64_t *engine, bool *rtc, double *ms) {
    const cuda_libs *L = b->L;
    *plan = NULL;
    *ws = 0;
    *engine = -1;
    *rtc = false;
    *ms = 0;
    cudnnBackendDescriptor_t eng = NULL;
    if (!L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng)) {
        int64_t cnt = 0;
        if (!L->dnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cnt, &eng) &&
            cnt == 1) {
            cudnnBackendNumericalNote_t notes[32];
            cudnnBackendBehaviorNote_t beh[32];
            int64_t nn = 0, nb = 0, gi = -1;
            if (!L->dnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64,
                                           1, &cnt, &gi))
                *engine = gi;
            if (!L->dnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE,
                                           CUDNN_TYPE_BEHAVIOR_NOTE, 32, &nb, beh))
                for (int64_t i = 0; i < nb && i < 32; i++)
                    if (beh[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) *rtc = true;
            if (!L->dnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                           CUDNN_TYPE_NUMERICAL_NOTE, 32, &nn, notes)) {
                for (int64_t i = 0; i < nn && i < 32; i++)
                    if (notes[i] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) {
                        L->dnnBackendDestroyDescriptor(eng);
                        b->what = "engine reduces in reduced precision";
                        return CUDNN_STATUS_NOT_SUPPORTED;
                    }
            }
        }
        L->dnnBackendDestroyDescriptor(eng);
    }
    cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, plan);
    if (s) {
        *plan = NULL;
        b->what = "cudnnBackendCreateDescriptor(EXECUTION_PLAN)";
        return s;
    }
    double t0 = now_ms();
    if ((s = L->dnnBackendSetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE,
                                       1, &h)) ||
        (s = L->dnnBackendSetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg))) {
        b->what = "cudnnBackendSetAttribute(EXECUTION_PLAN)";
    } else if ((s = L->dnnBackendFinalize(*plan))) {
        b->what = "cudnnBackendFinalize(execution plan)";
    } else {
        int64_t cnt = 0;
        if ((s = L->dnnBackendGetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                           CUDNN_TYPE_INT64, 1, &cnt, ws))) {
            b->what = "cudnnBackendGetAttribute(EXECUTION_PLAN_WORKSPACE_SIZE)";
        } else if (*ws < 0 || (uint64_t)*ws > (uint64_t)max_ws) {
            b->what = *ws < 0 ? "negative workspace" : "workspace over the layer's";
            s = CUDNN_STATUS_NOT_SUPPORTED;
        }
    }
    *ms = now_ms() - t0;
    if (s) {
        L->dnnBackendDestroyDescriptor(*plan);
        *plan = NULL;
    }
    return s;
}

cudnnStatus_t cg_plan_make(const cuda_libs *L, cudnnHandle_t h, const cg_problem *pr, bool any,
                           size_t max_ws, cg_plan *p, const char **what) {
    cg_build b = {L, p, "?"};
    memset(p, 0, sizeof *p);
    p->engine = -1;
    cudnnBackendDescriptor_t graph = NULL;
    cudnnStatus_t s = pr->graph(&b, h, pr->key, &graph), first = CUDNN_STATUS_SUCCESS;
    const char *first_what = NULL;
    if (s) {
        *what = b.what;
        pr->log(pr->key, p, pr->mode, pr->index, s, b.what);
        cg_plan_clear(L, p);
        return s;
    }
    /* pass 0: the asked-for config; passes 1, 2: modes A, FALLBACK in order */
    for (int pass = 0; pass < (any ? 3 : 1) && !p->plan; pass++) {
        int m = pass == 0 ? pr->mode : pass == 1 ? CG_MODE_A : CG_MODE_FB;
        cudnnBackendDescriptor_t heur = NULL, cfg[CG_MAX_CFG];
        int n_cfg = 0, keep = -1;
        s = cg_configs(&b, graph, m, &heur, cfg, &n_cfg);
        if (!s && pass == 0 && pr->index >= n_cfg) {
            s = CUDNN_STATUS_NOT_SUPPORTED;
            b.what = "the heuristic offers fewer configurations";
        }
        for (int i = 0; !s && i < n_cfg && keep < 0; i++) {
            if (pass == 0 && i != pr->index) continue;
            if (pass > 0 && m == pr->mode && i == pr->index) continue; /* tried already */
            int64_t ws = 0, engine = -1;
            bool rtc = false;
            double ms = 0;
            cudnnBackendDescriptor_t plan = NULL;
            cudnnStatus_t t = cg_try(&b, h, cfg[i], max_ws, &plan, &ws, &engine, &rtc, &ms);
            p->engine = engine;
            p->ws = ws;
            p->rtc = rtc;
            p->build_ms = ms;
            pr->log(pr->key, p, m, i, t, b.what);
            if (t) {
                if (pass == 0) s = t;
                continue;
            }
            keep = i;
            p->plan = plan;
            p->mode = m;
            p->index = i;
        }
        if (s && pass == 0) {
            first = s;
            first_what = b.what;
            if (n_cfg == 0 || pr->index >= n_cfg)
                pr->log(pr->key, p, m, pr->index, s, b.what);
        }
        for (int i = 0; i < n_cfg; i++) {
            if (i == keep && p->n_d < CG_MAX_DESC) p->d[p->n_d++] = cfg[i]; /* plan's own */
            else L->dnnBackendDestroyDescriptor(cfg[i]);
        }
        if (heur) {
            if (keep >= 0 && p->n_d < CG_MAX_DESC) p->d[p->n_d++] = heur;
            else L->dnnBackendDestroyDescriptor(heur);
        }
        s = CUDNN_STATUS_SUCCESS;
    }
    if (!p->plan) {
        *what = first_what ? first_what : "no engine configuration builds";
        cg_plan_clear(L, p);
        return first ? first : CUDNN_STATUS_NOT_SUPPORTED;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ query handle */
/* Tactics are asked for their scratch at build time, before any execution
** context exists: a process-wide handle on the current device answers, and
** a small cache keeps the answers (the plans themselves are dropped). */
static cudnnHandle_t g_query;
static pthread_mutex_t g_query_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_query_once = PTHREAD_ONCE_INIT;

static void query_init(void) {
    const cuda_libs *L = cuda_libs_get();
    int n = 0;
    if (!L->dnnCreate || !L->dnnBackendExecute || cudaGetDeviceCount(&n) != cudaSuccess ||
        n == 0) {
        cudaGetLastError();
        return;
    }
    cudnnHandle_t h = NULL;
    if (L->dnnCreate(&h) == CUDNN_STATUS_SUCCESS) g_query = h;
}

enum { WS_SLOTS = 1024 };
typedef struct ws_entry {
    unsigned char key[CG_KEY_MAX];
    size_t key_len;
    size_t ws; /* SIZE_MAX: refused */
} ws_entry;
static ws_entry g_ws[WS_SLOTS];
static int g_ws_n, g_ws_next;

size_t cg_workspace(const cg_problem *pr) {
    if (pr->key_len > CG_KEY_MAX) return SIZE_MAX;
    pthread_once(&g_query_once, query_init);
    if (!g_query) return SIZE_MAX;
    const cuda_libs *L = cuda_libs_get();
    size_t ws = SIZE_MAX;
    pthread_mutex_lock(&g_query_mu); /* one handle, one thread at a time */
    for (int i = 0; i < g_ws_n; i++)
        if (g_ws[i].key_len == pr->key_len && !memcmp(g_ws[i].key, pr->key, pr->key_len)) {
            ws = g_ws[i].ws;
            goto out;
        }
    cg_plan p;
    const char *what;
    if (cg_plan_make(L, g_query, pr, false, SIZE_MAX, &p, &what) == CUDNN_STATUS_SUCCESS) {
        ws = (size_t)p.ws;
        cg_plan_clear(L, &p);
    }
    memcpy(g_ws[g_ws_next].key, pr->key, pr->key_len);
    g_ws[g_ws_next].key_len = pr->key_len;
    g_ws[g_ws_next].ws = ws;
    g_ws_next = (g_ws_next + 1) % WS_SLOTS;
    if (g_ws_n < WS_SLOTS) g_ws_n++;
out:
    pthread_mutex_unlock(&g_query_mu);
    return ws;
}

/* ------------------------------------------------------------ run time */
int cg_dnn_fail(ref_ctx *rc, const cuda_libs *L, cudnnStatus_t s, const char *what) {
    return ref_fail(rc, "%s: cuDNN error %s", what,
                    L->dnnGetErrorString ? L->dnnGetErrorString(s) : "?");
}

int64_t cg_ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p | 16u;
    return (int64_t)(a & (~a + 1));
}

cg_plan *cg_plan_for(ref_ctx *rc, const cg_problem *pr) {
    cuda_exec *x = cuda_exec_of(rc);
    const cuda_libs *L = x->dev->libs;
    cg_plan *p = cuda_plan_get(x, pr->key, pr->key_len);
    if (p && !p->plan) /* refused before: not tried again on every run */
        return ref_fail(rc, "no cuDNN plan for this problem: %s", p->refusal), NULL;
    if (p) return p;
    if (!(p = calloc(1, sizeof *p))) return ref_fail(rc, "out of memory"), NULL;
    const char *what = "?";
    size_t max_ws = rc->ws ? rc->ws_size : 0;
    cudnnStatus_t s = cg_plan_make(L, (cudnnHandle_t)x->dnn, pr, true, max_ws, p, &what);
    if (s) {
        cg_dnn_fail(rc, L, s, what);
        snprintf(p->refusal, sizeof p->refusal, "%.159s", rc->err);
        cuda_plan_put(x, pr->key, pr->key_len, p, cg_plan_free); /* the refusal */
        return NULL;
    }
    if (!cuda_plan_put(x, pr->key, pr->key_len, p, cg_plan_free))
        return ref_fail(rc, "out of memory"), NULL;
    return p;
}

int cg_execute(ref_ctx *rc, cg_plan *p, int nu, const int64_t *uid, void *const *ptr) {
    cuda_exec *x = cuda_exec_of(rc);
    const cuda_libs *L = x->dev->libs;
    if (nu > CG_MAX_UID) return ref_fail(rc, "internal: too many graph tensors");
    if ((size_t)p->ws > rc->ws_size || (p->ws && !rc->ws))
        return ref_fail(rc, "cuDNN needs %lld bytes of workspace, the layer has %zu",
                        (long long)p->ws, rc->ws_size);
    void *ws = p->ws ? rc->ws : NULL;
    if (!p->vpack || p->n_uid != nu || memcmp(p->uid, uid, sizeof(int64_t) * (size_t)nu) ||
        memcmp(p->vp_ptr, ptr, sizeof(void *) * (size_t)nu) || p->vp_ws != ws) {
        if (p->vpack) L->dnnBackendDestroyDescriptor(p->vpack);
        p->vpack = NULL;
        cudnnBackendDescriptor_t vp = NULL;
        cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
        if (s) return cg_dnn_fail(rc, L, s, "cudnnBackendCreateDescriptor(VARIANT_PACK)");
        if ((s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                           CUDNN_TYPE_INT64, nu, uid)) ||
            (s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                           CUDNN_TYPE_VOID_PTR, nu, ptr)) ||
            (s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                           CUDNN_TYPE_VOID_PTR, 1, &ws)) ||
            (s = L->dnnBackendFinalize(vp))) {
            L->dnnBackendDestroyDescriptor(vp);
            return cg_dnn_fail(rc, L, s, "variant pack");
        }
        p->vpack = vp;
        p->n_uid = nu;
        memcpy(p->uid, uid, sizeof(int64_t) * (size_t)nu);
        memcpy(p->vp_ptr, ptr, sizeof(void *) * (size_t)nu);
        p->vp_ws = ws;
    }
    cudnnStatus_t s = L->dnnBackendExecute((cudnnHandle_t)x->dnn, p->plan, p->vpack);
    if (s) return cg_dnn_fail(rc, L, s, "cudnnBackendExecute");
    return 0;
}

/* ------------------------------------------------------------ host-only check */
int cg_probe(const cg_problem *pr, char *err, size_t nerr) {
    const cuda_libs *L = cuda_libs_get();
    if (!L->dnnBackendExecute) {
        if (err && nerr) snprintf(err, nerr, "no cuDNN graph API");
        return -1;
    }
    cg_plan p;
    memset(&p, 0, sizeof p);
    cg_build b = {L, &p, "?"};
    cudnnBackendDescriptor_t graph = NULL;
    cudnnStatus_t s = pr->graph(&b, NULL, pr->key, &graph);
    if (s && err && nerr)
        snprintf(err, nerr, "%s: %s", b.what,
                 L->dnnGetErrorString ? L->dnnGetErrorString(s) : "cuDNN error");
    cg_plan_clear(L, &p);
    return s ? -1 : 0;
}
