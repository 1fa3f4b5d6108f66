/*
** kiln.h: the whole public interface of Kiln, an inference compiler and
** runtime. Everything not declared here is private to the library.
**
** Conventions
**  - Every fallible call returns a kiln_status. KILN_OK is zero. On failure
**    a human-readable message is available from kiln_last_error() on the
**    calling thread until the next failing call on that thread.
**  - Results come back through *_out parameters. Objects are opaque and come
**    in create/destroy (or load/free) pairs; destroy functions accept NULL.
**  - Strings returned by the library are owned by the object they came from
**    and live as long as it does, unless stated otherwise.
**  - Tensors are dense, row-major, little-endian.
*/
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KILN_BUILDING_LIBRARY) && defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION_STRING "0.1.0"

/* Highest tensor rank Kiln handles. */
#define KILN_MAX_RANK 12

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_INVALID_ARGUMENT,  /* a caller passed something unusable */
    KILN_INVALID_MODEL,     /* the model file is malformed or inconsistent */
    KILN_UNSUPPORTED,       /* valid, but Kiln does not implement it */
    KILN_INCOMPATIBLE_ENGINE, /* engine built for another version/target */
    KILN_CORRUPT_ENGINE,    /* engine file damaged */
    KILN_OUT_OF_MEMORY,
    KILN_IO_ERROR,          /* a file could not be read or written */
    KILN_DEVICE_ERROR,
    KILN_TIMEOUT,
    KILN_RUNTIME_ERROR,     /* execution failed (bad input values, ...) */
    KILN_INTERNAL           /* a bug in Kiln */
} kiln_status;

/* Element types. The values equal ONNX TensorProto.DataType. */
typedef enum kiln_dtype {
    KILN_DTYPE_UNDEFINED = 0,
    KILN_DTYPE_FLOAT32 = 1,
    KILN_DTYPE_UINT8 = 2,
    KILN_DTYPE_INT8 = 3,
    KILN_DTYPE_UINT16 = 4,
    KILN_DTYPE_INT16 = 5,
    KILN_DTYPE_INT32 = 6,
    KILN_DTYPE_INT64 = 7,
    KILN_DTYPE_STRING = 8,
    KILN_DTYPE_BOOL = 9,
    KILN_DTYPE_FLOAT16 = 10,
    KILN_DTYPE_FLOAT64 = 11,
    KILN_DTYPE_UINT32 = 12,
    KILN_DTYPE_UINT64 = 13,
    KILN_DTYPE_COMPLEX64 = 14,
    KILN_DTYPE_COMPLEX128 = 15,
    KILN_DTYPE_BFLOAT16 = 16,
    KILN_DTYPE_FLOAT8E4M3FN = 17,
    KILN_DTYPE_FLOAT8E4M3FNUZ = 18,
    KILN_DTYPE_FLOAT8E5M2 = 19,
    KILN_DTYPE_FLOAT8E5M2FNUZ = 20,
    KILN_DTYPE_UINT4 = 21,
    KILN_DTYPE_INT4 = 22,
    KILN_DTYPE_FLOAT4E2M1 = 23,
    KILN_DTYPE_FLOAT8E8M0 = 24, /* exponent only: 2^(e-127), 255 is NaN */
    KILN_DTYPE_UINT2 = 25, /* 2-bit, four per byte, first in the low bits */
    KILN_DTYPE_INT2 = 26,
    KILN_DTYPE_COUNT_ = 27
} kiln_dtype;

/* Message of the last failing call on this thread ("" if none). */
KILN_API const char *kiln_last_error(void);
KILN_API const char *kiln_status_name(kiln_status s);
KILN_API const char *kiln_dtype_name(kiln_dtype t);
/* Bytes per element; 0 for sub-byte, string and unknown types. */
KILN_API size_t kiln_dtype_size(kiln_dtype t);
KILN_API const char *kiln_version(void);

/* Threads the CPU backend may use per execution (process-wide; default 1;
** 0 means one per physical core this process may run on: the CPUs of its
** affinity mask, SMT siblings counted once; the `kiln` CLI's --threads
** defaults to that).
**
** Threading policy. The CPU backend has one process-wide worker pool
** (n - 1 workers; the thread that calls kiln_context_execute is the n-th).
** Idle workers spin for at most ~50 us after a layer (layers come back to
** back) and then sleep, so an idle context or server uses no CPU. The pool
** runs one layer at a time: when several contexts (of one engine or of
** several) execute at once, the first to reach a layer gets the pool and
** the others run that layer on their own calling thread only, never
** queueing behind it and never starting threads of their own. So N
** concurrent executions use at most n + N - 1 threads, never N x n: run
** one context per core with kiln_set_num_threads(1) for throughput, or one
** context with all cores for latency, without oversubscribing the machine.
** Layers too small to pay for a wake-up use fewer threads. */
KILN_API void kiln_set_num_threads(int n);
KILN_API int kiln_get_num_threads(void);

/* ---------------------------------------------------------------- tensors
** A kiln_tensor owns (or borrows) a dense buffer plus dtype and shape. */
typedef struct kiln_tensor kiln_tensor;

/* New zero-filled tensor. dims may be NULL when rank is 0 (a scalar). */
KILN_API kiln_status kiln_tensor_create(kiln_dtype dtype, int rank,
                                        const int64_t *dims,
                                        kiln_tensor **out);
/* Reads one serialized ONNX TensorProto (the .pb files of the ONNX test
** data). *name_out, if not NULL, receives the stored name (may be ""),
** owned by the tensor. */
KILN_API kiln_status kiln_tensor_load_pb(const char *path, kiln_tensor **out,
                                         const char **name_out);
/* Writes t as a serialized TensorProto with the given name (may be NULL).
** The file is written to a temporary name and renamed into place. */
KILN_API kiln_status kiln_tensor_save_pb(const kiln_tensor *t,
                                         const char *name, const char *path);
KILN_API void kiln_tensor_destroy(kiln_tensor *t);
KILN_API kiln_dtype kiln_tensor_dtype(const kiln_tensor *t);
KILN_API int kiln_tensor_rank(const kiln_tensor *t);
KILN_API const int64_t *kiln_tensor_dims(const kiln_tensor *t);
KILN_API int64_t kiln_tensor_numel(const kiln_tensor *t);
KILN_API size_t kiln_tensor_nbytes(const kiln_tensor *t);
KILN_API void *kiln_tensor_data(kiln_tensor *t);
KILN_API const void *kiln_tensor_cdata(const kiln_tensor *t);

/* ------------------------------------------------------------------ model
** An imported ONNX model: typed graph with inferred (possibly symbolic)
** shapes. Immutable once loaded; safe to share between threads for
** reading. */
typedef struct kiln_model kiln_model;

/* Maps and decodes an ONNX file. External data is resolved relative to the
** file's folder. Errors name the offending node (index, name, op type). */
KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out);
/* Same from memory; the buffer must outlive the model. external_dir may be
** NULL when the model has no external data. */
KILN_API kiln_status kiln_model_load_memory(const void *data, size_t size,
                                            const char *external_dir,
                                            kiln_model **out);
KILN_API void kiln_model_free(kiln_model *m);

KILN_API const char *kiln_model_producer(const kiln_model *m);
KILN_API int64_t kiln_model_ir_version(const kiln_model *m);
/* Opset imports: domain ("" is ai.onnx) and version. */
KILN_API int kiln_model_num_opsets(const kiln_model *m);
KILN_API void kiln_model_opset(const kiln_model *m, int i,
                               const char **domain, int64_t *version);
KILN_API int kiln_model_num_nodes(const kiln_model *m);
/* Histogram of op types in the main graph (subgraphs included), sorted by
** descending count. supported tells whether Kiln implements the op. */
KILN_API int kiln_model_num_op_types(const kiln_model *m);
KILN_API void kiln_model_op_type(const kiln_model *m, int i,
                                 const char **op_type, int *count,
                                 int *supported);

/* Graph inputs (initializers excluded) and outputs. A dim of -1 in dims is
** symbolic; its name is in dim_names[k] (NULL for concrete dims). */
typedef struct kiln_io_info {
    const char *name;
    kiln_dtype dtype;
    int rank;                       /* -1 when unknown */
    int64_t dims[KILN_MAX_RANK];
    const char *dim_names[KILN_MAX_RANK];
} kiln_io_info;

KILN_API int kiln_model_num_inputs(const kiln_model *m);
KILN_API int kiln_model_num_outputs(const kiln_model *m);
KILN_API kiln_status kiln_model_input(const kiln_model *m, int i,
                                      kiln_io_info *out);
KILN_API kiln_status kiln_model_output(const kiln_model *m, int i,
                                       kiln_io_info *out);

/* Runs the model on the reference backend (the simple, exact oracle).
** inputs[i] binds graph input i (in kiln_model_input order); all must be
** given. outputs receives kiln_model_num_outputs new tensors the caller
** destroys. Thread-safe: each call has its own state. */
KILN_API kiln_status kiln_model_run_reference(const kiln_model *m,
                                              const kiln_tensor *const *inputs,
                                              kiln_tensor **outputs);


/* ================================================================ logging */
typedef enum kiln_severity {
    KILN_SEVERITY_ERROR = 0,
    KILN_SEVERITY_WARNING = 1,
    KILN_SEVERITY_INFO = 2,
    KILN_SEVERITY_VERBOSE = 3
} kiln_severity;

/* Receives one message (no trailing newline). Called on the thread that
** made the call being logged. */
typedef void (*kiln_log_fn)(void *user, kiln_severity severity,
                            const char *message);

/* ================================================================ builder
** Build phase: model + config -> serialized engine (a byte blob). */
typedef enum kiln_device {
    KILN_DEVICE_CPU = 0,
    KILN_DEVICE_CUDA = 1   /* an NVIDIA GPU (builds with the CUDA backend);
                              KILN_CUDA_DEVICE=N picks the GPU ordinal */
} kiln_device;

/* Precision flags: which precisions layers may run in. FP32 is always
** allowed; the others are hints a backend may use where it has kernels. */
enum {
    KILN_PRECISION_FP32 = 1u << 0,
    KILN_PRECISION_FP16 = 1u << 1,
    KILN_PRECISION_BF16 = 1u << 2,
    KILN_PRECISION_INT8 = 1u << 3,
    /* FP8 E4M3 post-training quantization (with calibration, as INT8; the
    ** two exclude each other). Q/DQ in E4M3 around Conv/Gemm/MatMul; runs
    ** as simulated quantization (float math on E4M3-rounded values) where
    ** no FP8 kernel takes the layer. */
    KILN_PRECISION_FP8 = 1u << 4
};

typedef struct kiln_builder_config kiln_builder_config;

/* Defaults: CPU, FP32, optimization level 3, no profiles (inputs must then
** have static shapes), workspace 1 GiB, no timing cache, log to stderr at
** WARNING. */
KILN_API kiln_status kiln_builder_config_create(kiln_builder_config **out);
KILN_API void kiln_builder_config_destroy(kiln_builder_config *c);
KILN_API kiln_status kiln_builder_config_set_device(kiln_builder_config *c,
                                                    kiln_device device);
/* Bitwise or of KILN_PRECISION_*. */
KILN_API kiln_status kiln_builder_config_set_precisions(
    kiln_builder_config *c, unsigned flags);
/* Largest scratch memory a single layer's tactic may use. */
KILN_API kiln_status kiln_builder_config_set_workspace(kiln_builder_config *c,
                                                       uint64_t bytes);
/* 0: no tactic timing (first candidate); 1-5: time candidates with more
** repetitions and a wider search as the level rises. */
KILN_API kiln_status kiln_builder_config_set_opt_level(kiln_builder_config *c,
                                                       int level);
/* Build flags (bitwise or), trtexec-style switches. */
enum {
    /* FP32 matrix products may use TF32 tensor cores (about 1e-3 relative
    ** error; off by default). */
    KILN_BUILD_TF32 = 1u << 0,
    /* Fail the build when a layer has no kernel on the target device instead
    ** of running it on the host with copies around it. */
    KILN_BUILD_STRICT_DEVICE = 1u << 1
};
KILN_API kiln_status kiln_builder_config_set_flags(kiln_builder_config *c,
                                                   unsigned flags);
/* Reads (if present) and updates the timing cache file at path; NULL
** disables. */
KILN_API kiln_status kiln_builder_config_set_timing_cache(
    kiln_builder_config *c, const char *path);
/* Log callback (NULL: stderr) and the most verbose severity passed on. */
KILN_API kiln_status kiln_builder_config_set_logger(kiln_builder_config *c,
                                                    kiln_log_fn fn, void *user,
                                                    kiln_severity max_severity);
/* Adds an empty optimization profile; *index_out receives its index. */
KILN_API kiln_status kiln_builder_config_add_profile(kiln_builder_config *c,
                                                     int *index_out);
/* Sets the min/opt/max shape of one input in a profile. Each of min, opt,
** max holds rank dims and min <= opt <= max elementwise. Every input with a
** symbolic dim needs a range in every profile. */
KILN_API kiln_status kiln_builder_config_set_shape(kiln_builder_config *c,
                                                   int profile,
                                                   const char *input, int rank,
                                                   const int64_t *min,
                                                   const int64_t *opt,
                                                   const int64_t *max);

/* ---- INT8 (and FP8) post-training quantization. With KILN_PRECISION_INT8 among the
** precisions and calibration set, the builder runs the FP32 graph (after
** constant and Conv+BN folding) on the calibration data, picks a range for
** every tensor entering or leaving a Conv/Gemm/MatMul layer and inserts
** standard ONNX Q/DQ as onnxruntime's quantize_static does:
** QuantizeLinear -> DequantizeLinear on those tensors (one scale per tensor,
** zero point 0: uint8 for tensors never negative such as Relu outputs, int8
** symmetric otherwise) and DequantizeLinear on the layers' weights
** (int8 constants, symmetric, one scale per output channel). The optimizer
** then sees a Q/DQ model (docs/QUANTIZATION.md). With KILN_PRECISION_FP8
** instead, the same calibration writes FLOAT8E4M3FN Q/DQ: every tensor
** and weight symmetric, scale amax / 448; method KILN_CALIB_MINMAX or
** KILN_CALIB_PERCENTILE (entropy targets the integer grid and is refused).
** The calibration cache records which grid its scales are for. */
typedef enum kiln_calib_method {
    KILN_CALIB_ENTROPY = 0,    /* minimize KL divergence (TensorRT's choice) */
    KILN_CALIB_MINMAX = 1,     /* largest |x| seen */
    KILN_CALIB_PERCENTILE = 2  /* the given percentile of |x| */
} kiln_calib_method;
/* calib_dir: input sets in the ONNX test-data layout (test_data_set_*\/
** input_*.pb) or NAME.npy files, one per input (a file holding k times a
** fixed batch gives k sets; a dynamic batch dim gives sets of 32 rows).
** percentile in (0, 100] (KILN_CALIB_PERCENTILE only); max_batches: use at
** most that many sets (0: all). cache_path (may be NULL): a calibration
** cache text file; when it exists and names every tensor, its scales are
** used and no calibration runs (calib_dir may then be NULL); otherwise it
** is written after calibrating. Paths are copied. */
KILN_API kiln_status kiln_builder_config_set_int8_calibration(
    kiln_builder_config *c, const char *calib_dir, kiln_calib_method method,
    double percentile, int max_batches, const char *cache_path);
/* Accuracy budget of an INT8 build, measured against the FP32 graph on the
** validation sets in validate_dir (same layout as calibration data):
**   KILN_METRIC_TOP1: value = most percent of rows of output 0 whose argmax
**     may differ from FP32's (an upper bound on the top-1 accuracy lost);
**   KILN_METRIC_REL_L2: value = largest ||int8 - fp32|| / ||fp32|| over all
**     float outputs;
**   KILN_METRIC_COSINE: value = smallest mean cosine similarity per set.
** While over budget the builder moves the layer whose quantization hurts
** the output most (measured one layer at a time) back to FP32, and logs
** the layers it kept in FP32 and the final metric at INFO. */
typedef enum kiln_accuracy_metric {
    KILN_METRIC_TOP1 = 0,
    KILN_METRIC_REL_L2 = 1,
    KILN_METRIC_COSINE = 2
} kiln_accuracy_metric;
KILN_API kiln_status kiln_builder_config_set_accuracy_budget(
    kiln_builder_config *c, kiln_accuracy_metric metric, double value,
    const char *validate_dir);
/* Called during long build phases ("calibration", "accuracy budget") with
** the steps done and the total; on the building thread. NULL: none. */
typedef void (*kiln_progress_fn)(void *user, const char *phase, int done,
                                 int total);
KILN_API kiln_status kiln_builder_config_set_progress(kiln_builder_config *c,
                                                      kiln_progress_fn fn,
                                                      void *user);

/* Optimizes the model for the configured target and serializes the engine.
** *blob_out is released with kiln_free. */
KILN_API kiln_status kiln_build_engine(const kiln_model *m,
                                       const kiln_builder_config *c,
                                       void **blob_out, size_t *size_out);
KILN_API void kiln_free(void *p);

/* ================================================================ engine
** An engine is immutable after loading and may be shared by any number of
** threads; execution contexts hold per-run state. */
typedef struct kiln_engine kiln_engine;

/* Maps the file (weights are used in place). Damage is refused with
** KILN_CORRUPT_ENGINE; an engine built by another kiln version or for a
** CPU with features this one lacks is refused with KILN_INCOMPATIBLE_ENGINE
** and a message saying what differs and what to do. */
KILN_API kiln_status kiln_engine_load_file(const char *path, kiln_engine **out);
/* Same from memory; the bytes are copied. */
KILN_API kiln_status kiln_engine_load_memory(const void *data, size_t size,
                                             kiln_engine **out);
/* Writes a blob to path atomically (temporary file + rename). */
KILN_API kiln_status kiln_engine_save_blob(const void *blob, size_t size,
                                           const char *path);
KILN_API void kiln_engine_free(kiln_engine *e);

KILN_API int kiln_engine_num_inputs(const kiln_engine *e);
KILN_API int kiln_engine_num_outputs(const kiln_engine *e);
/* I/O description; symbolic dims are -1 with their names. */
KILN_API kiln_status kiln_engine_input(const kiln_engine *e, int i,
                                       kiln_io_info *out);
KILN_API kiln_status kiln_engine_output(const kiln_engine *e, int i,
                                        kiln_io_info *out);
KILN_API int kiln_engine_num_profiles(const kiln_engine *e);
/* Profile range of an input (rank dims each). */
KILN_API kiln_status kiln_engine_profile_shape(const kiln_engine *e,
                                               int profile, const char *input,
                                               int64_t *min, int64_t *opt,
                                               int64_t *max);
/* Activation bytes a context needs for a profile (memory plan). */
KILN_API uint64_t kiln_engine_activation_bytes(const kiln_engine *e,
                                               int profile);
/* Layers in execution order. */
typedef struct kiln_layer_info {
    const char *name;        /* layer name (first fused ONNX node's name) */
    const char *op_type;     /* ONNX op or Kiln fused op */
    const char *fused_from;  /* comma-separated ONNX node names */
    const char *tactic;      /* chosen implementation (profile 0) */
    unsigned precision;      /* one KILN_PRECISION_* */
    double build_time_us;    /* tactic's timed median at build, or -1 */
} kiln_layer_info;
KILN_API int kiln_engine_num_layers(const kiln_engine *e);
KILN_API kiln_status kiln_engine_layer(const kiln_engine *e, int i,
                                       kiln_layer_info *out);
/* Quantization of layer i (additions): a QuantizeLinear/DequantizeLinear
** layer reports its own scale(s); a Conv/Gemm/MatMul layer reports the
** scales of the DequantizeLinear layers feeding its activation input and
** its weights. Scales are those of the engine's Q/DQ (x = q * scale). */
typedef struct kiln_layer_quant {
    int quantized;            /* 1: an INT8 layer (Q/DQ or fed by them) */
    float input_scale;        /* per-tensor activation scale, 0: none */
    int n_weight_scales;      /* per-channel weight scales, 0: none */
    float weight_scale_min, weight_scale_max;
} kiln_layer_quant;
KILN_API kiln_status kiln_engine_layer_quant(const kiln_engine *e, int i,
                                             kiln_layer_quant *out);
/* Number of nodes in the ONNX graph the engine was built from. */
KILN_API int kiln_engine_source_nodes(const kiln_engine *e);
/* Backend the engine runs on ("cpu", "cuda") and, for device backends, the
** fingerprint of the device and libraries it was built for ("" on the CPU). */
KILN_API const char *kiln_engine_backend(const kiln_engine *e);
KILN_API const char *kiln_engine_device_fingerprint(const kiln_engine *e);
/* Whether layer i runs on the engine's device (1) or on the host (0: no
** device kernel; the runtime copies its inputs and outputs). CPU engines:
** always 1. */
KILN_API int kiln_engine_layer_on_device(const kiln_engine *e, int i);
/* The data layout layer i works in when the builder changed it: "NHWC"
** (channels-last layers, FP16/BF16 device builds), "NCHW>NHWC" and
** "NHWC>NCHW" (the reformat layers it inserted); "" for the model's own
** layout. The string is static. */
KILN_API const char *kiln_engine_layer_layout(const kiln_engine *e, int i);
/* Device memory through the engine's backend (device engines only; CPU
** engines answer KILN_INVALID_ARGUMENT), for callers without their own
** CUDA code: buffers to bind with kiln_context_set_device_tensor, and
** synchronous copies between them and host memory. */
KILN_API kiln_status kiln_engine_device_alloc(const kiln_engine *e, size_t bytes,
                                              void **device_ptr_out);
KILN_API void kiln_engine_device_free(const kiln_engine *e, void *device_ptr);
/* Host memory for staging a device engine's inputs and outputs: page-locked
** (pinned) for CUDA engines, so copies to and from the device run at full
** speed and asynchronously; ordinary aligned memory for CPU engines. bytes
** 0 gives NULL. Free with kiln_engine_host_free on the same engine. */
KILN_API kiln_status kiln_engine_host_alloc(const kiln_engine *e, size_t bytes, void **out);
KILN_API void kiln_engine_host_free(const kiln_engine *e, void *host_ptr);
KILN_API kiln_status kiln_engine_copy_to_device(const kiln_engine *e, void *dst,
                                                const void *host_src, size_t bytes);
KILN_API kiln_status kiln_engine_copy_to_host(const kiln_engine *e, void *host_dst,
                                              const void *src, size_t bytes);

typedef struct kiln_context kiln_context;

/* The whole engine description (metadata, I/O table with profiles, layers
** with fused nodes, precision, tactic, shapes at each profile's opt; memory
** plan) as a JSON document; *json_out is released with kiln_free. When
** profiled is a context that ran with profiling on, per-layer times are
** included. */
KILN_API kiln_status kiln_engine_describe_json(const kiln_engine *e,
                                               const kiln_context *profiled,
                                               char **json_out);

/* ================================================================ context
** Execution state for one engine: activation memory, shapes, bindings.
** A context is used by one thread at a time; use one context per thread
** (they share the engine's weights). */

/* Allocates the context's activation memory for profile 0. */
KILN_API kiln_status kiln_context_create(const kiln_engine *e,
                                         kiln_context **out);
/* Same with caller-provided activation memory (device memory for device
** engines, e.g. from kiln_engine_device_alloc; host memory on the CPU; at least
** kiln_engine_activation_bytes for every profile to be used, 64-byte
** aligned); the memory must outlive the context. */
KILN_API kiln_status kiln_context_create_with_memory(const kiln_engine *e,
                                                     void *memory, size_t size,
                                                     kiln_context **out);
KILN_API void kiln_context_destroy(kiln_context *c);
/* Selects the optimization profile (resets input shapes). */
KILN_API kiln_status kiln_context_set_profile(kiln_context *c, int profile);
/* Sets an input's shape for the next executions; refused (with the
** profile's range in the message) when outside the selected profile. */
KILN_API kiln_status kiln_context_set_input_shape(kiln_context *c,
                                                  const char *name, int rank,
                                                  const int64_t *dims);
/* Binds a caller buffer to an input or output tensor by name. Input
** buffers are read during execution; output buffers must hold the output's
** bytes for the current shapes (see kiln_context_output_shape). A NULL
** output binding makes the context keep the output internally (read it with
** kiln_context_output). */
KILN_API kiln_status kiln_context_set_tensor(kiln_context *c, const char *name,
                                             void *data, size_t size);
/* Output shape for the current input shapes (valid after set_input_shape
** of every input; data-dependent outputs are known only after execute). */
KILN_API kiln_status kiln_context_output_shape(kiln_context *c,
                                               const char *name, int *rank,
                                               int64_t *dims);
/* Device engines: binds device memory (a CUDA device pointer) to an input
** or output; the run reads and writes it in place, without host copies.
** kiln_context_set_tensor binds host memory again. */
KILN_API kiln_status kiln_context_set_device_tensor(kiln_context *c,
                                                   const char *name,
                                                   void *device_ptr,
                                                   size_t size);
/* Runs the engine and waits for it. */
KILN_API kiln_status kiln_context_execute(kiln_context *c);
/* Asynchronous form: queues the run on stream (a cudaStream_t on GPU
** backends; NULL: the context's own stream) and returns. It is fully
** asynchronous when every input and output is bound with
** kiln_context_set_device_tensor; host-bound outputs are copied back before
** it returns. The buffers must stay valid until the stream reaches the end
** of the run. The CPU backend ignores stream and completes before
** returning. */
KILN_API kiln_status kiln_context_enqueue(kiln_context *c, void *stream);
/* Waits until the context's last enqueued run has finished (device
** engines; immediate on the CPU). */
KILN_API kiln_status kiln_context_synchronize(kiln_context *c);
/* Device engines: the context's own stream (a cudaStream_t), NULL on CPU. */
KILN_API void *kiln_context_stream(const kiln_context *c);
/* Device engines: CUDA graphs (on by default). A context records its run
** the second time it sees the same input shapes and device bindings, and
** replays the recording afterwards, which removes per-layer launch cost;
** it keeps recordings of up to 8 different shape/binding sets (the least
** recently used is dropped), so alternating batch sizes each replay their
** own; runs with host-fallback layers are never recorded. */
KILN_API kiln_status kiln_context_set_cuda_graphs(kiln_context *c, int enabled);
/* After execute: an output's tensor (owned by the context, valid until the
** next execute or destroy). */
KILN_API kiln_status kiln_context_output(kiln_context *c, const char *name,
                                         const kiln_tensor **out);
/* Per-layer timing of the following executions (off by default). */
KILN_API kiln_status kiln_context_set_profiling(kiln_context *c, int enabled);
/* Accumulated per-layer time in milliseconds and number of timed runs. */
KILN_API int kiln_context_num_layers(const kiln_context *c);
KILN_API kiln_status kiln_context_layer_time(const kiln_context *c, int layer,
                                             const char **name, double *ms,
                                             int *runs);


/* ================================================================ inputs and provenance
** For tools that feed a model or engine without being told what its inputs
** mean (kiln bench/run/inspect), and that tell which model an engine was
** built from. */

/* What a graph input is used for, as far as the graph says. */
typedef enum kiln_input_role {
    KILN_INPUT_DATA = 0,   /* ordinary values */
    KILN_INPUT_INDEX = 1,  /* integer indices into a table (token ids):
                              valid values are [0, index_bound) */
    KILN_INPUT_MASK = 2,   /* an attention/padding mask (named "*mask*"):
                              all ones means "attend everywhere" */
    KILN_INPUT_SHAPE = 3   /* its values are shapes, axes or sizes (feeds a
                              Reshape, Expand, Slice, ...): no random value
                              is meaningful */
} kiln_input_role;

typedef struct kiln_input_hint {
    kiln_input_role role;
    int64_t index_bound;   /* KILN_INPUT_INDEX: exclusive upper bound */
    const char *consumer;  /* op type of the node that decided the role
                              ("Gather", "Reshape"), or "" */
} kiln_input_hint;

/* The role of graph input i, found by following it through casts and
** reshapes to a Gather (index), a shape operand (shape) or by its name
** (mask). Strings are owned by the model / engine. */
KILN_API kiln_status kiln_model_input_hint(const kiln_model *m, int i,
                                           kiln_input_hint *out);
KILN_API kiln_status kiln_engine_input_hint(const kiln_engine *e, int i,
                                            kiln_input_hint *out);

/* 64-bit digest of the ONNX file's bytes (external data files excluded).
** Engines record the digest of the model they were built from;
** kiln_engine_model_hash returns it. */
KILN_API uint64_t kiln_model_hash(const kiln_model *m);
KILN_API uint64_t kiln_engine_model_hash(const kiln_engine *e);

/* ================================================================ serving
** A pool of pre-warmed execution contexts per engine and a dynamic batcher
** on top of it: what an inference server needs around an engine, usable
** without any HTTP. Both are thread-safe. The HTTP server (`kiln serve`)
** is built on these calls and is not part of the library. */

/* ------------------------------------------------------------------- pool
** N contexts of one engine, created and warmed when the pool is created:
** every profile runs once at its max, opt and min shapes (zero inputs;
** min last, profile 0 last, so a context starts holding the shape of a
** lone request), so no request pays a first-run cost (page faults on
** activation memory, lazily built tables) and an engine that cannot run
** one of those shapes fails here. A context handed back as failed is
** destroyed and rebuilt (and re-warmed); the pool counts healthy ones. */
typedef struct kiln_pool kiln_pool;

typedef struct kiln_pool_options {
    size_t size;            /* sizeof(kiln_pool_options): set by _init */
    int num_contexts;       /* contexts to create (default 1, at most 1024) */
    int warmup_runs;        /* runs per warm-up shape (default 1; 0: none) */
    /* Optional per-context stream for GPU backends: called once per context
    ** (at creation and rebuild); the result is passed to
    ** kiln_context_enqueue. NULL on the CPU. */
    void *(*stream_create)(void *user);
    void (*stream_destroy)(void *user, void *stream);
    void *stream_user;
    /* Extra batch sizes every context also runs at creation (twice, so a
    ** device context records their CUDA graphs too): dim 0 of every input
    ** set to the size, the other dims at the opt shape of the first
    ** profile that takes it. For a batcher that pads batches to a few
    ** sizes (kiln_batcher_options.pad_to_preferred). */
    int warmup_batch_sizes[16];
    int num_warmup_batch_sizes;
} kiln_pool_options;

/* Fills defaults (and size). */
KILN_API void kiln_pool_options_init(kiln_pool_options *o);
/* Creates and warms the pool; the engine must outlive it. o may be NULL
** (defaults). Fails (nothing left allocated) when any context cannot be
** created or warmed. */
KILN_API kiln_status kiln_pool_create(const kiln_engine *e,
                                      const kiln_pool_options *o,
                                      kiln_pool **out);
/* Waits until every context is back, then frees them. Accepts NULL. */
KILN_API void kiln_pool_destroy(kiln_pool *p);
/* Takes a free context: waits up to timeout_us microseconds (-1: no limit,
** 0: do not wait; KILN_TIMEOUT when none came free). *stream_out (may be
** NULL) receives the context's stream (NULL on the CPU). The context's
** bindings and shapes are whatever its last user left. */
KILN_API kiln_status kiln_pool_acquire(kiln_pool *p, int64_t timeout_us,
                                       kiln_context **ctx_out,
                                       void **stream_out);
/* Hands a context back. failed != 0 means its last run failed: the context
** is rebuilt before it is handed out again. */
KILN_API void kiln_pool_release(kiln_pool *p, kiln_context *c, int failed);

typedef struct kiln_pool_stats {
    size_t size;              /* sizeof(kiln_pool_stats): set by the caller */
    int contexts;             /* configured number */
    int idle, busy;           /* healthy contexts free / handed out */
    int unhealthy;            /* failed and not rebuilt (rebuild failed) */
    uint64_t acquires;        /* successful acquires */
    uint64_t hits;            /* ... that found a context free at once */
    uint64_t timeouts;        /* acquires that gave up */
    uint64_t rebuilds;        /* contexts rebuilt after a failure */
    uint64_t warmup_us;       /* time spent warming at creation */
    uint64_t activation_bytes; /* activation memory over all contexts */
} kiln_pool_stats;
/* Fills *out; out->size must be set (fields past it are left alone). */
KILN_API kiln_status kiln_pool_get_stats(kiln_pool *p, kiln_pool_stats *out);

/* ---------------------------------------------------------------- batcher
** Queues requests for one pool and runs them in batches: requests whose
** inputs agree on everything but dim 0 are concatenated along dim 0 (up to
** max_batch_size rows), run on one context, and the outputs are split back
** by rows. Requests are answered in the order they were taken from the
** queue (FIFO). With max_batch_size 0 the model has no batch dimension and
** every request runs alone. */
typedef struct kiln_batcher kiln_batcher;

#define KILN_BATCHER_MAX_PREFERRED 16
#define KILN_BATCHER_HIST 65      /* batch-size histogram buckets 0..64+ */

typedef struct kiln_batcher_options {
    size_t size;               /* sizeof(kiln_batcher_options): set by _init */
    int max_batch_size;        /* rows per run; 0: no batch dimension;
                               ** -1 (default): the engine's largest dim 0
                               ** over its profiles */
    int dynamic_batching;      /* 1 (default): combine queued requests;
                               ** 0: one request per run */
    int preferred_batch_sizes[KILN_BATCHER_MAX_PREFERRED]; /* run at once
                               ** when the queue reaches one of these */
    int num_preferred;
    int64_t max_queue_delay_us; /* how long the oldest request may wait for
                               ** a batch to fill (default 0: run what is
                               ** queued as soon as a context is free) */
    int max_queue_size;        /* queued requests beyond which submit is
                               ** refused at once (default 0: 4096) */
    int64_t default_timeout_us; /* per-request timeout in the queue when
                               ** submit passes 0 (default 0: none) */
    int num_workers;           /* threads running batches (default 0: one
                               ** per pool context) */
    int pad_to_preferred;      /* 1: a batch of n > 1 rows runs padded with
                               ** zero rows to the smallest preferred size
                               ** >= n (else max_batch_size), and only the n
                               ** rows' outputs are returned, so the engine
                               ** sees a few shapes only. For device engines,
                               ** where the first run of a new shape can cost
                               ** far more than a run (library plans built,
                               ** kernels compiled, a CUDA graph recorded).
                               ** Needs rows that do not interact (no op
                               ** mixing dim 0). Default 0. */
    int stage_slots;           /* input staging, with dynamic_batching and
                               ** max_batch_size > 0: submit copies the
                               ** request's rows into batcher-owned memory
                               ** (kiln_engine_host_alloc: pinned for device
                               ** engines), placed so that the requests a
                               ** worker takes as one batch lie back to back
                               ** and run without the worker copying them;
                               ** requests that find no room, or batches not
                               ** laid out so, are gathered by the worker.
                               ** Slots of 2 x max_batch_size rows at the
                               ** largest profile shape per input: 0
                               ** (default): 1 per worker plus 2; -1: off; at
                               ** most 64, and at most 1 GiB over all (fewer
                               ** slots, or none, above). The environment variable
                               ** KILN_SERVE_STAGE=0 turns it off (A/B). The
                               ** submitting thread pays the copy; the input
                               ** data is still borrowed until done. */
} kiln_batcher_options;

KILN_API void kiln_batcher_options_init(kiln_batcher_options *o);

/* One input of a request. data is borrowed until the request completes. */
typedef struct kiln_batch_input {
    const char *name;
    kiln_dtype dtype;
    int rank;
    const int64_t *dims;
    const void *data;
    size_t nbytes;
} kiln_batch_input;

/* What a request's callback receives. */
typedef struct kiln_batch_result {
    kiln_status status;
    const char *message;       /* "" on success; valid during the call */
    int num_outputs;           /* the engine's outputs, in engine order */
    kiln_tensor **outputs;     /* the callee owns (destroys) each tensor;
                               ** the array itself belongs to the batcher */
    uint64_t queue_us;         /* submit until taken for a run */
    uint64_t compute_input_us; /* gather and bind the batch */
    uint64_t compute_infer_us; /* execute */
    uint64_t compute_output_us; /* split the outputs */
    int batch_rows;            /* rows of the run this request was part of */
    int batch_requests;        /* requests in that run */
    int pool_hit;              /* a context was free when the batch formed */
} kiln_batch_result;

typedef void (*kiln_batch_done_fn)(void *user, const kiln_batch_result *r);

/* Creates the batcher and starts its workers; the pool must outlive it. */
KILN_API kiln_status kiln_batcher_create(kiln_pool *pool,
                                         const kiln_batcher_options *o,
                                         kiln_batcher **out);
/* Stops taking requests, runs everything queued, joins the workers.
** Accepts NULL. */
KILN_API void kiln_batcher_destroy(kiln_batcher *b);
/* Queues a request. inputs must name every engine input once. timeout_us:
** the longest it may wait in the queue (0: the default; -1: none); past it
** the callback gets KILN_TIMEOUT. Returns KILN_OK when queued (done is then
** called exactly once, on a worker thread, possibly before submit
** returns); otherwise the request was refused and done is not called:
** KILN_INVALID_ARGUMENT (names, dtypes, ranks, sizes, batch too large),
** KILN_TIMEOUT (queue full: the request would wait more than the queue
** allows), KILN_RUNTIME_ERROR (shutting down). */
KILN_API kiln_status kiln_batcher_submit(kiln_batcher *b,
                                         const kiln_batch_input *inputs,
                                         int num_inputs, int64_t timeout_us,
                                         kiln_batch_done_fn done, void *user);
/* Blocking form: outputs receives kiln_engine_num_outputs new tensors the
** caller destroys. */
KILN_API kiln_status kiln_batcher_infer(kiln_batcher *b,
                                        const kiln_batch_input *inputs,
                                        int num_inputs, int64_t timeout_us,
                                        kiln_tensor **outputs);
/* Effective max batch size (after -1 was resolved). */
KILN_API int kiln_batcher_max_batch_size(const kiln_batcher *b);

typedef struct kiln_batcher_stats {
    size_t size;               /* sizeof(kiln_batcher_stats): set by caller */
    int queue_length;          /* requests waiting now */
    int in_flight;             /* requests taken and not yet answered */
    uint64_t submitted;        /* accepted by submit */
    uint64_t rejected;         /* refused by submit because the queue was full */
    uint64_t succeeded, failed, timed_out;
    uint64_t batches;          /* runs */
    uint64_t rows;             /* rows over all runs */
    uint64_t batch_size_hist[KILN_BATCHER_HIST]; /* runs by rows (last: 64+) */
    uint64_t queue_us, compute_input_us, compute_infer_us, compute_output_us;
                               /* totals over answered requests */
    uint64_t padded_rows;      /* zero rows added by pad_to_preferred */
    uint64_t staged_requests;  /* requests whose rows submit staged
                               ** (kiln_batcher_options.stage_slots) */
    uint64_t staged_batches;   /* runs that bound staged rows in place
                               ** (the others gathered their inputs) */
} kiln_batcher_stats;
KILN_API kiln_status kiln_batcher_get_stats(kiln_batcher *b,
                                            kiln_batcher_stats *out);

/* ================================================== model loading options
** (issue 10: tolerant import). Where onnxruntime reads a model the spec
** does not quite allow and the meaning is unambiguous (dim_value -1 on an
** input, a graph or subgraph output without element type, an initializer
** defined twice or never used, an initializer that is also a graph input,
** a broken value_info entry), Kiln reads it the same way and says so: one
** WARNING message per leniency. kiln_model_load/_load_memory log them to
** stderr; these forms take a logger, and the model keeps them. */
typedef struct kiln_model_load_options {
    size_t struct_size;          /* sizeof(kiln_model_load_options) */
    kiln_log_fn log;             /* NULL: stderr */
    void *log_user;
    kiln_severity max_severity;  /* most verbose severity passed on;
                                    KILN_SEVERITY_ERROR silences warnings */
} kiln_model_load_options;

/* Fills o with the defaults (stderr, WARNING). */
KILN_API void kiln_model_load_options_init(kiln_model_load_options *o);
/* kiln_model_load with options (NULL: the defaults). */
KILN_API kiln_status kiln_model_load_v2(const char *path,
                                        const kiln_model_load_options *o,
                                        kiln_model **out);
/* kiln_model_load_memory with options (NULL: the defaults). */
KILN_API kiln_status kiln_model_load_memory_v2(const void *data, size_t size,
                                               const char *external_dir,
                                               const kiln_model_load_options *o,
                                               kiln_model **out);
/* The import warnings of a loaded model, whatever the logger did with them
** (at most 65; the last then says more were dropped). The strings belong
** to the model. */
KILN_API int kiln_model_num_warnings(const kiln_model *m);
KILN_API const char *kiln_model_warning(const kiln_model *m, int i);

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
