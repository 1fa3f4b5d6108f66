/* backend.h: what an execution backend offers the builder and runtime.
** A backend exposes, per node, candidate implementations ("tactics"). The
** builder times the candidates on the target and records the winner's name
** in the engine; the runtime looks the name up again at load time. Kernels
** use the reference kernel contract (ref_ctx) so the reference kernel of
** every op is itself a tactic ("ref") and the oracle for the others.
**
** A backend that drives a device (CUDA) also fills kiln_device_ops: memory,
** copies, streams, its own clock and graph capture. Its tactics carry
** TACTIC_DEVICE: the tensors in their ref_ctx hold device pointers (dims and
** dtypes stay on the host) and they enqueue on ref_ctx.stream. Tactics
** without the flag are host tactics (the reference kernel, the CPU ones);
** the runtime copies a host layer's inputs from the device and its outputs
** back, so any layer without a device kernel still runs. The core sees only
** this contract: no device headers, no device #ifdefs. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "ref/ref.h"

/* CPU features a tactic may require (x86-64). */
enum {
    KILN_ISA_AVX2 = 1u << 0,
    KILN_ISA_FMA = 1u << 1,
    KILN_ISA_AVX512F = 1u << 2,
    KILN_ISA_AVX512BW = 1u << 3,
    KILN_ISA_AVX512VNNI = 1u << 4, /* vpdpbusd (int8 dot products) */
    /* AMX-TILE + AMX-INT8 (tdpbsud on 16x16 int32 tiles), enabled by the
    ** OS (XCR0) and granted to this process (Linux arch_prctl) */
    KILN_ISA_AMXINT8 = 1u << 5
};

enum {
    /* The tactic writes every output element: the runtime need not zero
    ** outputs first. Reference kernels do not promise this. */
    TACTIC_OVERWRITES_OUTPUT = 1u << 0,
    /* Output 0 may share memory with input 0 (pure elementwise, same
    ** shape and dtype). Implies TACTIC_OVERWRITES_OUTPUT. */
    TACTIC_INPLACE_OK = 1u << 1,
    /* Tensors are device memory of the backend's device; the tactic
    ** enqueues on ref_ctx.stream and must not synchronize it. */
    TACTIC_DEVICE = 1u << 2,
    /* A device tactic that reads small parameter inputs (axes, pads,
    ** sizes, bounds) given as runtime tensors: it copies them to the host
    ** and synchronizes its stream while it runs. The runtime never
    ** captures a run containing such a layer into a CUDA graph (a replay
    ** would keep the values seen at capture). */
    TACTIC_READS_PARAMS = 1u << 3
};

/* Copy directions for kiln_device_ops.copy. */
typedef enum { DEV_H2D = 0, DEV_D2H = 1, DEV_D2D = 2 } dev_copy_kind;

/* Memory, streams and clock of a device backend. `dev` is the device state
** an engine opens once and shares between its contexts; `exec` is the
** per-context execution state (library handles bound to one stream) that
** tactics receive as ref_ctx.exec. Every call returns a status with the
** device library's own message on failure. */
typedef struct kiln_device_ops {
    /* Opens the device. Fails with KILN_DEVICE_ERROR and a message saying
    ** no GPU or driver was found when there is none. */
    kiln_status (*open)(void **dev_out);
    void (*close)(void *dev);
    /* What an engine built here is bound to, one line of "key=value"
    ** fields (compute capability, name, driver, runtime and library
    ** versions). */
    const char *(*fingerprint)(void *dev);
    /* KILN_OK if an engine whose build fingerprint is `built` runs here;
    ** else KILN_INCOMPATIBLE_ENGINE with what differs and what to do. */
    kiln_status (*check_fingerprint)(void *dev, const char *built);
    kiln_status (*alloc)(void *dev, size_t bytes, void **out);
    void (*free)(void *dev, void *p);
    /* Page-locked host memory for staging copies. */
    kiln_status (*host_alloc)(void *dev, size_t bytes, void **out);
    void (*host_free)(void *dev, void *p);
    kiln_status (*copy)(void *dev, void *dst, const void *src, size_t bytes,
                        dev_copy_kind kind, void *stream);
    kiln_status (*memset0)(void *dev, void *p, size_t bytes, void *stream);
    kiln_status (*stream_create)(void *dev, void **out);
    void (*stream_destroy)(void *dev, void *stream);
    kiln_status (*stream_sync)(void *dev, void *stream);
    kiln_status (*exec_create)(void *dev, void *stream, void **out);
    void (*exec_destroy)(void *dev, void *exec);
    /* Rebinds an exec state to another stream (enqueue on a caller's). */
    kiln_status (*exec_set_stream)(void *dev, void *exec, void *stream);
    /* Events for timing on the device's clock. */
    kiln_status (*event_create)(void *dev, void **out);
    void (*event_destroy)(void *dev, void *ev);
    kiln_status (*event_record)(void *dev, void *ev, void *stream);
    /* Milliseconds between two recorded events (synchronizes on b). */
    kiln_status (*event_elapsed)(void *dev, void *a, void *b, float *ms);
    /* Stream capture into a replayable graph. */
    kiln_status (*capture_begin)(void *dev, void *stream);
    kiln_status (*capture_end)(void *dev, void *stream, void **graph_out);
    kiln_status (*graph_launch)(void *dev, void *graph, void *stream);
    void (*graph_destroy)(void *dev, void *graph);
    /* Bytes of device memory in use by the process and in total. */
    kiln_status (*mem_info)(void *dev, uint64_t *free_b, uint64_t *total_b);
} kiln_device_ops;

typedef struct kiln_tactic {
    const char *name;  /* stable id stored in engines, e.g.
                          "f32_conv_im2col_gemm_6x16_avx2"; "ref" is the
                          reference kernel of whatever op the node is */
    int op;            /* OP_* implemented; OP_NONE: any op (ref) */
    unsigned isa;      /* KILN_ISA_* the tactic needs */
    unsigned flags;    /* TACTIC_* */
    /* Whether it handles this node with these input types (dims may be
    ** symbolic at build time; the tactic must then handle any size).
    ** NULL: always. */
    bool (*supports)(const ir_node *n, const ir_type *const *in);
    /* Scratch bytes for these concrete input types. NULL: none. */
    size_t (*workspace)(const ir_node *n, const ir_type *const *in);
    ref_kernel_fn run;
    /* Optional (NULL: the tactic has no prepared data). Appended last so
    ** tables written before it still compile; new fields go after it.
    **
    ** Prepared constant data: packed or reordered weights made once by the
    ** builder for the tactic it chose and stored in the engine per layer
    ** and profile (the engine's "layer blob"), so a run never re-packs.
    ** in: the node's input types as at build time (dims may be symbolic);
    ** cin[i]: input i's constant contents, NULL when input i is not a
    ** constant. On KILN_OK *blob_out is a new kiln_aligned_alloc'd buffer of
    ** *size_out bytes, or NULL and 0 when this node gets none (say, B is
    ** not constant). The bytes must be a pure function of (tactic, node,
    ** types, constants), padding included, so rebuilds stay byte-identical.
    **
    ** At run time ref_ctx.blob/blob_size hold the stored bytes: read-only,
    ** 64-byte aligned (the engine's weights section), shared by every
    ** context of the engine. Engine files are validated but a blob's
    ** contents are the tactic's own format: the tactic checks the size and
    ** whatever header it wrote against the shapes it runs on, and fails the
    ** layer (never reads out of bounds) when they disagree. A tactic must
    ** also run correctly with blob == NULL (a node that got none, a timing
    ** run, a unit test).
    **
    ** Device backends: the builder calls prepare on the host exactly the
    ** same way and the engine stores the host bytes. The runtime hands a
    ** TACTIC_DEVICE tactic its blob only once the device attach step
    ** (runtime/device.c) uploads blobs next to the constants it uploads
    ** already, one device copy shared by all contexts, and passes the device
    ** address in ref_ctx.blob; until that is implemented the runtime passes
    ** NULL to device tactics, so a device tactic must not depend on one. */
    kiln_status (*prepare)(const ir_node *n, const ir_type *const *in,
                           const kiln_tensor *const *cin, void **blob_out,
                           size_t *size_out);
    /* Bit k set: whenever this tactic runs with a blob, it never reads the
    ** data of input k (only its dtype and dims), because the blob holds a
    ** prepared copy of it. The serializer then leaves such a constant's
    ** bytes out of the engine when no other reader needs them
    ** (engine_const_unread), and the loaded tensor has data == NULL. A
    ** tactic that sets a bit must, on that path, never dereference nor
    ** offset the input's data pointer (the dot-product and per-group paths
    ** included). Host tactics only: device tactics get no blob yet. */
    unsigned blob_replaces;
} kiln_tactic;

typedef struct kiln_backend_ops {
    const char *name;                 /* "cpu" */
    unsigned (*host_isa)(void);       /* features of this machine */
    /* Candidate tactics for a node, the backend's best guess first.
    ** Returns the count (at most max); always at least 1 for any op with
    ** a reference kernel. */
    int (*tactics)(const ir_node *n, const ir_type *const *in,
                   const kiln_tactic **out, int max);
    /* Tactic by name; NULL if this build does not have it. */
    const kiln_tactic *(*find_tactic)(const char *name);
    /* NULL for host backends (CPU); the device contract otherwise. */
    const kiln_device_ops *dev;
    /* Host backends, optional: evicts [p, p + bytes) from every cache
    ** level, on the backend's own threads, which are then ready for the
    ** next run (the builder times weight-heavy layers with their weights
    ** cold, as a network too large for the caches runs them). NULL where
    ** the machine offers no way to. */
    void (*evict)(const void *p, size_t bytes);
} kiln_backend_ops;

/* The device tactic of QFusedGemm (ops/qfused.c) the builder asks the
** backend for by name: where find_tactic has none (CUDA: until
** KILN_CUDA_Q8_FLOAT_OUT=1), device builds keep the Q/DQ graph of before
** (pass_ctx.no_q8_epilogue). */
#define QFGEMM_DEVICE_TACTIC "cuda_qfusedgemm_lt_h0"

const kiln_backend_ops *kiln_backend_cpu(void);
/* The CUDA backend; NULL when this build has none. */
const kiln_backend_ops *kiln_backend_cuda(void);
/* Backend by engine name ("cpu", "cuda"); NULL if not in this build. */
const kiln_backend_ops *kiln_backend_by_name(const char *name);
/* "avx2 fma" style names for a feature set, into buf. */
const char *kiln_isa_names(unsigned isa, char *buf, size_t n);

#endif
