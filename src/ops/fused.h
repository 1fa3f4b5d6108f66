/* fused.h: shared definitions of Kiln's internal fused ops (domain "kiln"):
** the activation kinds of FusedConv/FusedGemm with their exact scalar
** formulas, and the FusedElementwise program encoding. Used by the optimizer
** passes, shape inference, the reference kernels and the fast tactics, so
** every implementation computes the same thing. Semantics: see fused.c. */
#ifndef KILN_FUSED_H
#define KILN_FUSED_H

#include "op.h"

#include <math.h>

/* ---- activations ("activation" string attribute) */
enum {
    FUSED_ACT_NONE = 0,    /* "" */
    FUSED_ACT_RELU,        /* "Relu" */
    FUSED_ACT_CLIP,        /* "Clip": alpha = min, beta = max */
    FUSED_ACT_SIGMOID,     /* "Sigmoid" */
    FUSED_ACT_SILU,        /* "SiLU": x * sigmoid(x) */
    FUSED_ACT_GELU,        /* "Gelu": erf form */
    FUSED_ACT_GELU_TANH,   /* "GeluTanh": tanh approximation */
    FUSED_ACT_LEAKY_RELU,  /* "LeakyRelu": alpha */
    FUSED_ACT_HARD_SWISH,  /* "HardSwish" */
    FUSED_ACT_HARD_SIGMOID,/* "HardSigmoid": alpha, beta */
    FUSED_ACT_TANH,        /* "Tanh" */
    FUSED_ACT_COUNT_
};

typedef struct fused_act {
    int kind;           /* FUSED_ACT_* */
    float alpha, beta;  /* defaults filled in by fused_act_read */
} fused_act;

/* FUSED_ACT_* for an attribute string, -1 if unknown. */
int fused_act_parse(const char *s);
/* The attribute string of a kind ("" for none). */
const char *fused_act_name(int kind);
/* Reads activation / activation_alpha / activation_beta of a FusedConv or
** FusedGemm node. Absent parameters take the ONNX defaults of the op they
** stand for (LeakyRelu 0.01; HardSigmoid 0.2, 0.5; Clip -inf, +inf).
** false (message in err) for an unknown activation. */
bool fused_act_read(const ir_node *n, fused_act *a, char *err, size_t nerr);

/* The scalar formulas, written exactly as the ONNX reference kernels
** evaluate the unfused ops in the same precision (so the fused result is
** bit-identical in float32 where the unfused graph does the same steps). */
static inline float fused_sigmoid_f32(float v) {
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

static inline float fused_clamp01_f32(float v) {
    return v < 0 ? 0.0f : v > 1 ? 1.0f : v;
}

static inline float fused_act_f32(const fused_act *a, float v) {
    switch (a->kind) {
    case FUSED_ACT_RELU: return v < 0 ? 0.0f : v;
    case FUSED_ACT_CLIP:
        v = v < a->alpha ? a->alpha : v;
        return v > a->beta ? a->beta : v;
    case FUSED_ACT_SIGMOID: return fused_sigmoid_f32(v);
    case FUSED_ACT_SILU: return v * fused_sigmoid_f32(v);
    case FUSED_ACT_GELU:
        return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    case FUSED_ACT_GELU_TANH:
        return 0.5f * v *
               (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case FUSED_ACT_LEAKY_RELU: return v < 0 ? a->alpha * v : v;
    case FUSED_ACT_HARD_SWISH:
        return v * fused_clamp01_f32(v * (float)(1.0 / 6.0) + 0.5f);
    case FUSED_ACT_HARD_SIGMOID: return fused_clamp01_f32(a->alpha * v + a->beta);
    case FUSED_ACT_TANH: return tanhf(v);
    default: return v;
    }
}

static inline double fused_sigmoid_f64(double v) {
    if (v >= 0) return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}

static inline double fused_clamp01_f64(double v) {
    return v < 0 ? 0.0 : v > 1 ? 1.0 : v;
}

static inline double fused_act_f64(const fused_act *a, double v) {
    switch (a->kind) {
    case FUSED_ACT_RELU: return v < 0 ? 0.0 : v;
    case FUSED_ACT_CLIP:
        v = v < (double)a->alpha ? (double)a->alpha : v;
        return v > (double)a->beta ? (double)a->beta : v;
    case FUSED_ACT_SIGMOID: return fused_sigmoid_f64(v);
    case FUSED_ACT_SILU: return v * fused_sigmoid_f64(v);
    case FUSED_ACT_GELU: return 0.5 * v * (1.0 + erf(v * 0.7071067811865476));
    case FUSED_ACT_GELU_TANH:
        return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    case FUSED_ACT_LEAKY_RELU: return v < 0 ? (double)a->alpha * v : v;
    case FUSED_ACT_HARD_SWISH:
        return v * fused_clamp01_f64(v * (1.0 / 6.0) + 0.5);
    case FUSED_ACT_HARD_SIGMOID:
        return fused_clamp01_f64((double)a->alpha * v + (double)a->beta);
    case FUSED_ACT_TANH: return tanh(v);
    default: return v;
    }
}

/* ---- FusedElementwise programs
** Attributes: "program" (ints, 4 per instruction: opcode, a, b, c) and
** "constants" (floats). Registers: 0 .. n_in-1 are the node's inputs,
** n_in .. n_in+n_const-1 the constants (scalars of the inputs' dtype), then
** one register per instruction, in order. An operand is a register number,
** or -1 where an optional operand is absent. Parameter operands (marked P
** below) must be constant registers. The output is the last instruction's
** register. Opcode values are stable (engines store them). */
enum {
    /* binary, numpy broadcasting: r = op(a, b) */
    FE_ADD = 1, FE_SUB = 2, FE_MUL = 3, FE_DIV = 4, FE_POW = 5, FE_MAX = 6,
    FE_MIN = 7,
    /* unary: r = op(a) */
    FE_NEG = 16, FE_ABS = 17, FE_SQRT = 18, FE_EXP = 19, FE_LOG = 20,
    FE_TANH = 21, FE_SIGMOID = 22, FE_RELU = 23, FE_ERF = 24,
    FE_RECIPROCAL = 25, FE_FLOOR = 26, FE_CEIL = 27, FE_SIN = 28, FE_COS = 29,
    FE_SOFTPLUS = 30, FE_SOFTSIGN = 31, FE_HARD_SWISH = 32, FE_GELU = 33,
    FE_GELU_TANH = 34,
    /* unary with parameters */
    FE_LEAKY_RELU = 48,   /* a, alpha = P b */
    FE_ELU = 49,          /* a, alpha = P b */
    FE_HARD_SIGMOID = 50, /* a, alpha = P b, beta = P c */
    FE_CLIP = 51          /* a, min = P b or -1, max = P c or -1 */
};

/* The ONNX op an opcode computes (OP_NONE if unknown). */
int fe_opcode_op(int opcode);
/* Opcode for an ONNX op (Gelu: pass its approximate flag), 0 if none. */
int fe_op_opcode(int op, bool gelu_tanh);
/* Operand slots an opcode uses: 1 (a), 2 (a b) or 3 (a b c). */
int fe_opcode_arity(int opcode);
/* true when operand slot k (1 or 2) of opcode is a parameter (constant). */
bool fe_opcode_param(int opcode, int k);

#endif
