/* config.h: the subset of Triton's config.pbtxt (protobuf text format) that
** `kiln serve` honours, parsed by a pure function (fuzzed with the request
** parser). */
#ifndef KILN_SERVE_CONFIG_H
#define KILN_SERVE_CONFIG_H

#include "kiln.h"

#include <stdbool.h>

#define SERVE_NAME_MAX 128
#define SERVE_CFG_MAX_IO 32
#define SERVE_CFG_MAX_VERSIONS 32
#define SERVE_CFG_MAX_WARMUP 16

typedef struct serve_tensor_cfg {
    char name[SERVE_NAME_MAX];
    kiln_dtype dtype;          /* UNDEFINED when not given */
    int rank;                  /* -1 when dims not given */
    int64_t dims[KILN_MAX_RANK]; /* without the batch dim when max_batch_size > 0 */
} serve_tensor_cfg;

typedef enum serve_version_policy {
    SERVE_POLICY_LATEST = 0,
    SERVE_POLICY_ALL,
    SERVE_POLICY_SPECIFIC
} serve_version_policy;

/* Where model.onnx is built for: instance_group's kind. */
typedef enum serve_device {
    SERVE_DEVICE_AUTO = 0, /* no kind, or KIND_AUTO: the CPU */
    SERVE_DEVICE_CPU,      /* KIND_CPU */
    SERVE_DEVICE_GPU       /* KIND_GPU: a CUDA engine */
} serve_device;

typedef struct serve_model_config {
    char name[SERVE_NAME_MAX];
    char platform[SERVE_NAME_MAX];
    int max_batch_size;        /* -1: not given (taken from the engine) */
    int n_inputs, n_outputs;
    serve_tensor_cfg inputs[SERVE_CFG_MAX_IO], outputs[SERVE_CFG_MAX_IO];
    bool dynamic_batching;     /* a dynamic_batching block is present */
    int preferred[KILN_BATCHER_MAX_PREFERRED];
    int n_preferred;
    int64_t max_queue_delay_us;
    int max_queue_size;        /* 0: default */
    int64_t default_timeout_us;
    int instance_count;        /* sum of instance_group counts (default 1) */
    serve_version_policy policy;
    int latest_n;
    int64_t specific[SERVE_CFG_MAX_VERSIONS];
    int n_specific;
    serve_device device;       /* instance_group kind */
    /* KILN_PRECISION_* bits for GPU builds of model.onnx, from
    ** optimization.execution_accelerators.gpu_execution_accelerator
    ** (name "tensorrt" or "kiln", parameter precision_mode FP32/FP16/BF16,
    ** as Triton's TensorRT accelerator spells it); 0: FP32. */
    unsigned gpu_precision;
    int warmup_batch[SERVE_CFG_MAX_WARMUP]; /* model_warmup batch sizes */
    int n_warmup;
    /* parameters kiln_pad_batches "true"/"false": batches padded to the
    ** preferred sizes (kiln_batcher_options.pad_to_preferred); -1 (not
    ** given): on for CUDA engines with dynamic batching and preferred sizes */
    int pad_batches;
} serve_model_config;

void serve_config_defaults(serve_model_config *c);
/* Parses config.pbtxt text into c (defaults first). Returns 0, or -1 with a
** message naming the line in err. Unknown fields are ignored, as a Triton
** user's config carries fields Kiln has no use for. */
int serve_config_parse(const char *text, size_t len, serve_model_config *c, char *err,
                       size_t errlen);

#endif
