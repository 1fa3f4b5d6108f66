/* cuda_kc.h: small helpers the elementwise, reduce and normalization tactic
** glue (cuda_eltwise.c, cuda_reduce.c, cuda_norm.c) share: dtype gates,
** the node's opset, constant parameter inputs. */
#ifndef KILN_CUDA_KC_H
#define KILN_CUDA_KC_H

#include "cuda_internal.h"
#include "kernels/kc_shape.h"

#define KC_FLAGS (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define KC_FLAGS_INPLACE (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT | TACTIC_INPLACE_OK)

/* float32 / float16 / bfloat16: the float math kernels' storage types. */
static inline bool kc_dt_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}
/* Integer types the integer kernels load and store. */
static inline bool kc_dt_int(kiln_dtype t) {
    return t == KILN_DTYPE_INT64 || t == KILN_DTYPE_INT32 || t == KILN_DTYPE_INT8 ||
           t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT16 || t == KILN_DTYPE_UINT16 ||
           t == KILN_DTYPE_UINT32 || t == KILN_DTYPE_UINT64;
}
/* Every type Cast handles. */
static inline bool kc_dt_cast(kiln_dtype t) {
    return kc_dt_float(t) || kc_dt_int(t) || t == KILN_DTYPE_FLOAT64 || t == KILN_DTYPE_BOOL;
}
/* The ai.onnx opset the node's model uses (build time; 0 if unknown). */
static inline int kc_opset(const ir_node *n) {
    return n->graph && n->graph->model ? (int)n->graph->model->opset : 0;
}
static inline bool kc_has_in(const ir_node *n, const ir_type *const *in, int i) {
    return i < n->n_in && in[i] != NULL;
}
/* Host copy of constant input i, NULL when absent or not constant. */
static inline const kiln_tensor *kc_const_in(const ir_node *n, int i) {
    return i < n->n_in && n->in[i] ? n->in[i]->const_val : NULL;
}
/* Whether input i is absent or a constant (parameters read on the host). */
static inline bool kc_absent_or_const(const ir_node *n, int i) {
    return i >= n->n_in || !n->in[i] || n->in[i]->const_val;
}
static inline bool kc_rank_ok(const ir_type *t) {
    return t && t->rank >= 0 && t->rank <= KC_MAX_RANK;
}

#endif
