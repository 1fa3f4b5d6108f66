/* cuda_graph.h: what the cuDNN graph-API (backend descriptor) tactics share
** (cuda_conv_graph.c, cuda_gemm_graph.c; cuda_graph.c defines it): plans
** that own their descriptors, descriptor helpers with GSET/GFIN, engine
** configurations from heuristic mode A or FALLBACK, the plan trial that
** refuses reduced-precision reductions, the process-wide query handle that
** answers workspace() at build time (with a cache of its answers), the
** per-exec plan cache at run time and the variant-pack execution.
**
** A tactic family describes its problem as a cg_problem: a plan-cache key
** (a zeroed, memcmp-able struct of at most CG_KEY_MAX bytes, starting with
** the family's tag), the configuration asked for, the function that builds
** its operation graph and the one that logs each plan attempt. */
#ifndef KILN_CUDA_GRAPH_H
#define KILN_CUDA_GRAPH_H

#include "cuda_internal.h"

#include <stdint.h>

enum { CG_MODE_A = 0, CG_MODE_FB = 1 };
enum { CG_MAX_DESC = 24, CG_MAX_CFG = 64, CG_MAX_UID = 6, CG_KEY_MAX = 512 };

/* Everything one plan needs alive, destroyed together (reverse order). */
typedef struct cg_plan {
    cudnnBackendDescriptor_t d[CG_MAX_DESC];
    int n_d;
    cudnnBackendDescriptor_t plan, vpack;
    int64_t ws;
    int n_uid;
    int64_t uid[CG_MAX_UID];
    void *vp_ptr[CG_MAX_UID], *vp_ws; /* what vpack was made with */
    int64_t engine;                   /* cuDNN's global engine index, -1 unknown */
    int mode, index;                  /* the configuration that built */
    bool rtc;                         /* the engine compiles at run time (NVRTC) */
    double build_ms;                  /* time the plan took to finalize */
    char refusal[160];                /* plan NULL: why cuDNN refused (run time) */
} cg_plan;

void cg_plan_clear(const cuda_libs *L, cg_plan *p);
/* cuda_plan_free_fn of a calloc'd plan */
void cg_plan_free(const cuda_libs *L, void *payload);

/* One plan being built: its descriptors go into p; what names the call
** that failed. */
typedef struct cg_build {
    const cuda_libs *L;
    cg_plan *p;
    const char *what;
} cg_build;

/* A new descriptor owned by the plan. */
cudnnStatus_t cg_new(cg_build *b, cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t *out);

/* Set one attribute / finalize, returning the status (and naming the call
** in B->what) from the enclosing function on failure. */
#define GSET(B, D, NAME, TYPE, CNT, PTR)                                                    \
    do {                                                                                   \
        cudnnStatus_t s_ = (B)->L->dnnBackendSetAttribute((D), NAME, TYPE, (CNT), (PTR));   \
        if (s_) {                                                                          \
            (B)->what = "cudnnBackendSetAttribute(" #NAME ")";                              \
            return s_;                                                                     \
        }                                                                                  \
    } while (0)

#define GFIN(B, D, WHAT)                                                                   \
    do {                                                                                   \
        cudnnStatus_t s_ = (B)->L->dnnBackendFinalize(D);                                  \
        if (s_) {                                                                          \
            (B)->what = "cudnnBackendFinalize(" WHAT ")";                                   \
            return s_;                                                                     \
        }                                                                                  \
    } while (0)

/* A finalized tensor descriptor of nd dims with the given strides. */
cudnnStatus_t cg_tensor(cg_build *b, int64_t uid, cudnnDataType_t t, int nd, const int64_t *dims,
                        const int64_t *strides, int64_t align, bool virt,
                        cudnnBackendDescriptor_t *out);
/* A pointwise op y = mode(x[, bb]) in FP32 math. */
cudnnStatus_t cg_pointwise(cg_build *b, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                           cudnnBackendDescriptor_t bb, cudnnBackendDescriptor_t y,
                           cudnnBackendDescriptor_t *op);
/* The operation graph of ops[0..n) on h (h NULL: the host-only check of
** cg_probe; newer cuDNN 9 finalizes a graph without a device). */
cudnnStatus_t cg_graph(cg_build *b, cudnnHandle_t h, cudnnBackendDescriptor_t *ops, int n_ops,
                       cudnnBackendDescriptor_t *graph);

typedef struct cg_problem {
    const void *key;    /* plan-cache key, key_len <= CG_KEY_MAX bytes */
    size_t key_len;
    int mode, index;    /* the configuration asked for (CG_MODE_*, k-th) */
    /* builds the operation graph of key on h (NULL: host-only) */
    cudnnStatus_t (*graph)(cg_build *b, cudnnHandle_t h, const void *key,
                           cudnnBackendDescriptor_t *graph);
    /* one plan attempt: configuration (mode, index), status, failing call */
    void (*log)(const void *key, const cg_plan *p, int mode, int index, cudnnStatus_t s,
                const char *what);
} cg_problem;

/* Builds pr's plan on h into p: configuration (mode, index); when that one
** does not build and `any`, the first of mode A, then FALLBACK, that does.
** Status and the failing call in *what. */
cudnnStatus_t cg_plan_make(const cuda_libs *L, cudnnHandle_t h, const cg_problem *pr, bool any,
                           size_t max_ws, cg_plan *p, const char **what);

/* Whether the graph API was loaded (cuDNN 9 with the backend entry points). */
bool cg_api(void);
/* workspace() at build time: pr's configuration planned on a process-wide
** query handle (the plan dropped, the answer cached by key). SIZE_MAX when
** it does not build or there is no device. */
size_t cg_workspace(const cg_problem *pr);
/* run(): pr's plan in the exec's plan cache, built on first use (any
** configuration that builds if the asked-for one does not); NULL after
** ref_fail (cuDNN's status, NOT_SUPPORTED when it has no plan, in the
** message). A refusal is cached too, so it is not retried every run. */
cg_plan *cg_plan_for(ref_ctx *rc, const cg_problem *pr);
/* Executes p with tensors uid[i] at ptr[i] (n <= CG_MAX_UID) and the
** layer's workspace; the variant pack is remade only when a pointer
** changed. 0, or -1 after ref_fail. */
int cg_execute(ref_ctx *rc, cg_plan *p, int n, const int64_t *uid, void *const *ptr);
/* Host-only check of pr's operation graph (no handle, no device): 0, or -1
** with the failing call and cuDNN's status in err. */
int cg_probe(const cg_problem *pr, char *err, size_t nerr);

int cg_dnn_fail(ref_ctx *rc, const cuda_libs *L, cudnnStatus_t s, const char *what);
/* Byte alignment of a device pointer, at most 16. */
int64_t cg_ptr_align(const void *p);

#endif
