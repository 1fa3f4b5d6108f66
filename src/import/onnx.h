/* onnx.h: ONNX protobuf decoding into Kiln tensors and IR. */
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "../ir/ir.h"

/* Field numbers of the ONNX messages we read (onnx.proto3). */
enum {
    ONNX_MODEL_IR_VERSION = 1, ONNX_MODEL_PRODUCER_NAME = 2,
    ONNX_MODEL_PRODUCER_VERSION = 3, ONNX_MODEL_GRAPH = 7,
    ONNX_MODEL_OPSET_IMPORT = 8, ONNX_MODEL_FUNCTIONS = 25,
    ONNX_OPSET_DOMAIN = 1, ONNX_OPSET_VERSION = 2,
    ONNX_GRAPH_NODE = 1, ONNX_GRAPH_NAME = 2, ONNX_GRAPH_INITIALIZER = 5,
    ONNX_GRAPH_INPUT = 11, ONNX_GRAPH_OUTPUT = 12, ONNX_GRAPH_VALUE_INFO = 13,
    ONNX_GRAPH_SPARSE_INITIALIZER = 15,
    ONNX_NODE_INPUT = 1, ONNX_NODE_OUTPUT = 2, ONNX_NODE_NAME = 3,
    ONNX_NODE_OP_TYPE = 4, ONNX_NODE_ATTRIBUTE = 5, ONNX_NODE_DOMAIN = 7,
    ONNX_ATTR_NAME = 1, ONNX_ATTR_F = 2, ONNX_ATTR_I = 3, ONNX_ATTR_S = 4,
    ONNX_ATTR_T = 5, ONNX_ATTR_G = 6, ONNX_ATTR_FLOATS = 7, ONNX_ATTR_INTS = 8,
    ONNX_ATTR_STRINGS = 9, ONNX_ATTR_TENSORS = 10, ONNX_ATTR_GRAPHS = 11,
    ONNX_ATTR_TYPE = 20, ONNX_ATTR_REF_ATTR_NAME = 21,
    ONNX_ATTR_SPARSE_TENSOR = 22,
    ONNX_VI_NAME = 1, ONNX_VI_TYPE = 2,
    ONNX_TYPE_TENSOR = 1, ONNX_TYPE_SEQUENCE = 4, ONNX_TYPE_MAP = 5,
    ONNX_TYPE_SPARSE = 8, ONNX_TYPE_OPTIONAL = 9,
    ONNX_TT_ELEM_TYPE = 1, ONNX_TT_SHAPE = 2,
    ONNX_SHAPE_DIM = 1, ONNX_DIM_VALUE = 1, ONNX_DIM_PARAM = 2,
    ONNX_TENSOR_DIMS = 1, ONNX_TENSOR_DATA_TYPE = 2, ONNX_TENSOR_SEGMENT = 3,
    ONNX_TENSOR_FLOAT_DATA = 4, ONNX_TENSOR_INT32_DATA = 5,
    ONNX_TENSOR_STRING_DATA = 6, ONNX_TENSOR_INT64_DATA = 7,
    ONNX_TENSOR_NAME = 8, ONNX_TENSOR_RAW_DATA = 9,
    ONNX_TENSOR_DOUBLE_DATA = 10, ONNX_TENSOR_UINT64_DATA = 11,
    ONNX_TENSOR_EXTERNAL_DATA = 13, ONNX_TENSOR_DATA_LOCATION = 14,
    ONNX_ENTRY_KEY = 1, ONNX_ENTRY_VALUE = 2
};

/* Decodes a TensorProto. When borrow is true, raw_data that is suitably
** aligned is used in place (the bytes must outlive the tensor); otherwise
** it is copied. External data is read relative to dir (NULL: refused).
** The tensor's name is stored in t->name. Messages do not name a node;
** callers prefix them. */
kiln_status onnx_decode_tensor(const uint8_t *p, size_t n, const char *dir,
                               bool borrow, kiln_tensor **out);
/* Serializes t as a TensorProto into a malloc'ed buffer. */
kiln_status onnx_encode_tensor(const kiln_tensor *t, const char *name,
                               uint8_t **out, size_t *out_size);

/* Decodes a ModelProto into a new model. data must outlive the model unless
** it is the model's own mapping. dir is used for external data. eval (may be
** NULL: nothing folded) becomes the model's evaluator (ops/eval.h), which
** inference folds constants with from here on; the import layer does not
** choose one itself, as the kernels live above it. */
kiln_status onnx_import(const uint8_t *data, size_t size, const char *dir,
                        const op_evaluator *eval, ir_model **out);

/* Receives each leniency of the reader (a construct onnxruntime accepts and
** the spec does not quite allow, read as onnxruntime reads it), one message
** each, no trailing newline. */
typedef struct onnx_warn_sink {
    void (*fn)(void *user, const char *msg);
    void *user;
} onnx_warn_sink;

/* com.microsoft operators (onnx_contrib.c): whether op_type is one Kiln
** expands, and the expansion of every such node of g into ai.onnx nodes
** (inferring g as it goes). */
bool onnx_contrib_known(const char *domain, const char *op_type);
kiln_status onnx_contrib_expand(ir_graph *g, int64_t opset);

/* onnx_import with the reader's warnings sent to warn (NULL: dropped). */
kiln_status onnx_import_ex(const uint8_t *data, size_t size, const char *dir,
                           const op_evaluator *eval,
                           const onnx_warn_sink *warn, ir_model **out);

#endif
