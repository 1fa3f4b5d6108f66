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
    KILN_DTYPE_COUNT_ = 24
} kiln_dtype;

/* Message of the last failing call on this thread ("" if none). */
KILN_API const char *kiln_last_error(void);
KILN_API const char *kiln_status_name(kiln_status s);
KILN_API const char *kiln_dtype_name(kiln_dtype t);
/* Bytes per element; 0 for sub-byte, string and unknown types. */
KILN_API size_t kiln_dtype_size(kiln_dtype t);
KILN_API const char *kiln_version(void);

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

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
