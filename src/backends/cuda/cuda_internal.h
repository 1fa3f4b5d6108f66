/* cuda_internal.h: what the CUDA backend's C files share: the device and
** per-context execution state, status helpers that turn CUDA, cuBLASLt and
** cuDNN errors into kiln_status / ref_fail messages, and the tactic families.
** Only files under src/backends/cuda include this (it pulls in the CUDA
** runtime's C header). */
#ifndef KILN_CUDA_INTERNAL_H
#define KILN_CUDA_INTERNAL_H

#include "../backend.h"
#include "cuda_libs.h"

#include <cuda_runtime_api.h>

/* One per engine (and one per build): the GPU and the libraries loaded. */
typedef struct cuda_dev {
    int device;                 /* CUDA ordinal */
    int sm;                     /* compute capability, 90 for sm_90 */
    int n_sm;                   /* multiprocessors */
    size_t smem_optin;          /* max dynamic shared memory per block */
    size_t l2_bytes;
    char name[256];
    int driver_version, runtime_version;
    const cuda_libs *libs;      /* cuBLASLt / cuDNN entry points (members
                                   NULL when a library is missing) */
    char fingerprint[768];
} cuda_dev;

/* One per execution context (and per timed tactic at build time). */
typedef struct cuda_exec {
    cuda_dev *dev;
    cudaStream_t stream;
    void *lt;                   /* cublasLtHandle_t, NULL if unavailable */
    void *dnn;                  /* cudnnHandle_t, NULL if unavailable */
    void *lt_ws;                /* cuBLASLt workspace (device) */
    size_t lt_ws_size;
    struct cuda_plan **plans;   /* cuda_plan.c: host-side plans of the
                                   library tactics, NULL until the first */
    int n_plans;
} cuda_exec;

/* Per-exec cache of host-side plans (cuBLASLt descriptors, layouts and
** heuristic results; cuDNN descriptors), keyed by the bytes of a key struct
** that describes the problem completely (shapes, dtypes, strides, pointer
** alignments), so run() creates no descriptors in steady state. Keys start
** with a family tag; zero them with memset before filling (memcmp'd). */
typedef void (*cuda_plan_free_fn)(const cuda_libs *L, void *payload);
/* The payload stored under key, NULL when absent. */
void *cuda_plan_get(cuda_exec *x, const void *key, size_t key_len);
/* Stores payload under key (the caller checked it is absent). On failure
** (out of memory) frees payload with fn and returns false. */
bool cuda_plan_put(cuda_exec *x, const void *key, size_t key_len, void *payload,
                   cuda_plan_free_fn fn);
/* Frees every plan (exec_destroy). */
void cuda_plans_free(cuda_exec *x);
/* Empties the cache when it has grown past its bound; tactics call it at
** the start of run(), before they hold any plan. */
void cuda_plans_trim(cuda_exec *x);

static inline cuda_exec *cuda_exec_of(const ref_ctx *c) { return (cuda_exec *)c->exec; }
static inline cudaStream_t cuda_stream_of(const ref_ctx *c) { return (cudaStream_t)c->stream; }

/* Fails the tactic with the CUDA error's name and text after a call or a
** launch: `if (cuda_fail_if(c, cudaGetLastError(), "softmax")) return -1;` */
int cuda_fail_if(ref_ctx *c, cudaError_t e, const char *what);
/* kiln_status form for the device ops. */
kiln_status cuda_status(cudaError_t e, const char *what);

/* Parameter inputs (axes, pads, sizes, k, bounds): input i of the layer
** as up to max values, from the IR's constant when it is one, else copied
** from the device synchronously (only tactics flagged TACTIC_READS_PARAMS
** may take that path: it makes the run non-capturable). Integer types read
** exactly, float types rounded toward zero for the int64 form. Returns the
** count (0 when the input is absent), or -1 via ref_fail. */
int cuda_param_i64(ref_ctx *c, int i, int64_t *v, int max, const char *what);
int cuda_param_f64(ref_ctx *c, int i, double *v, int max, const char *what);
/* Whether input i of n is a runtime tensor a parameter reader can take:
** present, not constant, of an integer (or, with floats, float) type,
** rank <= 1 (scalars included). */
bool cuda_param_runtime(const ir_node *n, const ir_type *const *in, int i, bool floats);

/* Tactic families, each a NULL-terminated table defined in its own file:
** cuda_eltwise.c (unary/binary/fused elementwise chains, Cast, Where, ...),
** cuda_data.c (Transpose, Concat, Slice, Gather, Expand, Pad, copies, ...),
** cuda_reduce.c (reductions, ArgMax/ArgMin, Softmax family),
** cuda_norm.c (LayerNorm/RMSNorm/BatchNorm/InstanceNorm/GroupNorm),
** cuda_pool.c (MaxPool, AveragePool, global pools, Resize),
** cuda_gemm.c (MatMul, Gemm, FusedGemm through cuBLASLt),
** cuda_gemm_sm90.c (FP16/BF16 FusedGemm on Hopper, epilogue fused),
** cuda_gemm_graph.c (FP16/BF16 FusedGemm through cuDNN's graph API, bias,
** residual and the activations cuBLASLt lacks fused),
** cuda_conv.c (Conv, FusedConv through cuDNN; depthwise kernels),
** cuda_conv_graph.c (FP16/BF16 Conv, FusedConv, NhwcConv through cuDNN's
** graph API, bias/residual/ReLU fused),
** cuda_attn.c (the fused attention layer),
** cuda_qconv.c (INT8 QLinearConv on integer tensor cores, QAdd). */
extern const kiln_tactic *const cuda_tactics_eltwise[];
extern const kiln_tactic *const cuda_tactics_data[];
extern const kiln_tactic *const cuda_tactics_reduce[];
extern const kiln_tactic *const cuda_tactics_norm[];
extern const kiln_tactic *const cuda_tactics_pool[];
extern const kiln_tactic *const cuda_tactics_gemm[];
extern const kiln_tactic *const cuda_tactics_gemm_graph[];
extern const kiln_tactic *const cuda_tactics_conv[];
extern const kiln_tactic *const cuda_tactics_conv_graph[];

/* KILN_CONV_GRAPH (cuda_conv_graph.c): 0 = graph-API convolutions off,
** 1 = offered next to the legacy ones (default), 2 ("only") = the legacy
** cuDNN tactics step aside for FP16/BF16 layers (A/B timing). */
int cuda_conv_graph_env(void);
/* Tests: builds and frees the cuDNN operation graph graph-API tactic t
** would run for node n on concrete types, without a device or handle (a
** host-only check of its descriptors: shapes, strides, groups, pads; cuDNN
** 9.x versions that need a handle for the graph refuse it). 0, or -1 with
** the failing call in err. */
int cuda_conv_graph_probe(const kiln_tactic *t, const ir_node *n, const ir_type *const *in,
                          char *err, size_t nerr);
/* KILN_GEMM_GRAPH (cuda_gemm_graph.c): 0 = graph-API GEMMs off, 1 = offered
** next to cuBLASLt (default), 2 ("only") = cuda_gemm.c's tactics step aside
** for the FusedGemm layers the graph plans (A/B timing). */
int cuda_gemm_graph_env(void);
/* Under KILN_GEMM_GRAPH=only: whether the graph tactics take layer n (and
** cuDNN plans its first configuration), so cuBLASLt's step aside. */
bool cuda_gemm_graph_replaces(const ir_node *n, const ir_type *const *in);
/* How many runs of the graph GEMM tactics found no plan and went through
** cuBLASLt instead (tests: the graph path really ran). */
int cuda_gemm_graph_fallbacks(void);
/* Tests: builds and frees the operation graph graph GEMM tactic t would
** run for n on concrete types, host-only (as cuda_conv_graph_probe). 0, or
** -1 with the reason in err (also when the tactic declines the layer). */
int cuda_gemm_graph_probe(const kiln_tactic *t, const ir_node *n, const ir_type *const *in,
                          char *err, size_t nerr);
/* cuda_gemm_sm90.c: FP16/BF16 FusedGemm through our SM90 CUTLASS GEMM with
** the bias, C / residual and activation fused (kernels/gemm_sm90*.cu);
** offered only on compute capability 9.0 builds that have the kernels. */
extern const kiln_tactic *const cuda_tactics_gemm_sm90[];
/* Whether the SM90 GEMM takes layer n with these types, leaving out the
** device check (tests: what supports() says on an SM90 GPU). */
bool cuda_gemm_sm90_takes(const ir_node *n, const ir_type *const *in);
/* Runs of the SM90 GEMM tactics that launched the kernel, and those that
** went through cuBLASLt instead (tests: the kernel really ran). */
int cuda_gemm_sm90_runs(void);
int cuda_gemm_sm90_fallbacks(void);
extern const kiln_tactic *const cuda_tactics_attn[];
extern const kiln_tactic *const cuda_tactics_qconv[];
/* cuda_qfgemm.c: QFusedGemm, opt-in (KILN_CUDA_Q8_FLOAT_OUT=1: then
** cuda_qfgemm_enabled() is true and cuda_find names its tactics) */
extern const kiln_tactic *const cuda_tactics_qfgemm[];
bool cuda_qfgemm_enabled(void);

#endif
