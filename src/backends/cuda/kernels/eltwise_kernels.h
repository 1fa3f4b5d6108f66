/* eltwise_kernels.h: C seam of the elementwise kernels (eltwise.cu):
** binary ops with numpy broadcasting, unary float math and activations,
** Cast, Where, Not, IsNaN/IsInf and the FusedElementwise interpreter. All
** take device pointers and dtype codes (KC_*), launch on the stream and
** return the launch's error. */
#ifndef KILN_ELTWISE_KERNELS_H
#define KILN_ELTWISE_KERNELS_H

#include "kc_shape.h"

#include <cuda_runtime_api.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Binary opcodes. Float inputs compute in float32, integer/bool inputs in
** int64 with wrap-around; comparisons and logic write bool. */
enum {
    KB_ADD = 1, KB_SUB, KB_MUL, KB_DIV, KB_POW, KB_MAX, KB_MIN, KB_MOD, KB_FMOD,
    KB_PRELU, KB_EQ, KB_LT, KB_LE, KB_GT, KB_GE, KB_AND, KB_OR, KB_XOR,
    /* integer-only: bitwise and shifts (unsigned shift counts >= width give 0) */
    KB_BAND, KB_BOR, KB_BXOR, KB_SHL, KB_SHR
};
/* y = op(a, b) over s (nin 2; y is contiguous with s's dims; y may be a).
** Float ops of one type whose inputs broadcast as blocks or scalars take the
** FusedElementwise fast path (same results). */
cudaError_t kc_binary(int op, int dta, int dtb, int dty, const kc_bshape *s,
                      const void *a, const void *b, void *y, int64_t n, cudaStream_t st);
/* kc_binary without that fast path (tests and benchmarks compare the two). */
cudaError_t kc_binary_generic(int op, int dta, int dtb, int dty, const kc_bshape *s,
                              const void *a, const void *b, void *y, int64_t n,
                              cudaStream_t st);
/* y = cond ? x : yy (s: nin 3 in that order), elements of es bytes. */
cudaError_t kc_where(const kc_bshape *s, const void *cond, const void *x, const void *yy,
                     void *y, int es, int64_t n, cudaStream_t st);

/* Unary float opcodes (p0, p1, p2: alpha, beta, gamma where used). */
enum {
    KU_NEG = 1, KU_ABS, KU_SQRT, KU_EXP, KU_LOG, KU_TANH, KU_SIGMOID, KU_RELU,
    KU_ERF, KU_RECIP, KU_FLOOR, KU_CEIL, KU_ROUND, KU_SIN, KU_COS, KU_SIGN,
    KU_SOFTPLUS, KU_SOFTSIGN, KU_ELU, KU_SELU, KU_LEAKY, KU_HSIG, KU_HSWISH,
    KU_MISH, KU_GELU, KU_GELU_TANH, KU_CLIP, KU_TAN, KU_CELU, KU_THRELU, KU_SWISH,
    KU_SCALE, /* y = x * p0 (Mean's final division) */
    KU_ASIN, KU_ACOS, KU_ATAN, KU_SINH, KU_COSH, KU_ASINH, KU_ACOSH, KU_ATANH,
    KU_SHRINK /* p0 lambd, p1 bias */
};
cudaError_t kc_unary(int op, int dt, float p0, float p1, float p2, const void *x, void *y,
                     int64_t n, cudaStream_t st);
/* IsNaN (isnan 1) / IsInf into bool. */
cudaError_t kc_isx(int dt, int isnan_op, int pos, int neg, const void *x, void *y,
                   int64_t n, cudaStream_t st);
/* Not on bool. */
cudaError_t kc_not(const void *x, void *y, int64_t n, cudaStream_t st);
/* Cast between f32/f16/bf16/f64/i64/i32/i8/u8/bool (ONNX semantics:
** float->int truncates, saturating at int64 first, then keeps low bits;
** to bool is != 0, NaN included). */
/* Whether kc_unary takes op on float64 (computed in double). */
int kc_unary_f64_ok(int op);
/* y = ~x on an integer type (kc_dt_int's). */
cudaError_t kc_bitnot(int dt, const void *x, void *y, int64_t n, cudaStream_t st);
cudaError_t kc_cast(int dts, int dtd, const void *x, void *y, int64_t n, cudaStream_t st);
/* kc_cast's one-element-per-thread kernel for every pair, which kc_cast
** leaves only between float32 / float16 / bfloat16 with aligned pointers
** (tests and benchmarks compare the two). */
cudaError_t kc_cast_generic(int dts, int dtd, const void *x, void *y, int64_t n,
                            cudaStream_t st);
/* Cast where either side is float8 (any of the four), float4e2m1, int4 or
** uint4, and the other any type kc_cast takes or one of those (cast_small.cu);
** saturate: the float8 attribute. */
/* QuantizeLinear / DequantizeLinear (cast_small.cu), the reference's rules.
** The scale / zero point of element i: per tensor (mode 0), per axis (1:
** index (i / inner) % dim), or blocked (2: block along the axis of length
** dim; sdim blocks). Types are KC_* / ONNX codes (8- and 4-bit ones too). */
typedef struct kc_qmap {
    int mode;
    long long dim, inner, sdim, block;
} kc_qmap;
typedef struct kc_qparams {
    kc_qmap m;
    int xt, st, zt, yt;  /* x, scale, zero point, y types */
    int prec;            /* quantize: type of x / scale (KC_F32/F16/BF16/F64) */
    int saturate;        /* float8 targets */
    long long lo, hi;    /* integer targets' range */
} kc_qparams;
cudaError_t kc_quantize(const kc_qparams *p, const void *x, const void *s, const void *z,
                        void *y, int64_t n, cudaStream_t st);
cudaError_t kc_dequantize(const kc_qparams *p, const void *x, const void *s, const void *z,
                          void *y, int64_t n, cudaStream_t st);
/* DynamicQuantizeLinear of n float32 values to uint8 y, with the scalar
** scale and zero point it outputs; scratch: 4 bytes of device memory. */
cudaError_t kc_dynamic_quantize(const float *x, int64_t n, uint8_t *y, float *scale,
                                uint8_t *zp, float *scratch, cudaStream_t st);
cudaError_t kc_cast_small(int dts, int dtd, int saturate, const void *x, void *y, int64_t n,
                          cudaStream_t st);

/* FusedElementwise, pre-decoded by the host into the unary (KU_*) and
** binary (KB_*) opcodes above. Operand encoding: >= 0 a register (inputs
** first, then results as the host allocated them), < 0 constant -(k+1). */
#define KC_FE_MAX_INSTR 64
#define KC_FE_MAX_CONST 64
#define KC_FE_MAX_REGS 48
typedef struct kc_fe_instr {
    int16_t binary, op;     /* binary: KB_* on a, b; else KU_* on a */
    int16_t dst, a, b, pad; /* b read only by binary ops */
    float p0, p1;           /* parameters (alpha/beta, clip bounds) */
} kc_fe_instr;
typedef struct kc_fe_prog {
    int n_in, n_instr, out_reg;
    kc_bshape s;
    const void *in[KC_MAX_IN];
    float k[KC_FE_MAX_CONST];   /* constants, already rounded to the dtype */
    kc_fe_instr ins[KC_FE_MAX_INSTR];
} kc_fe_prog;
/* Runs the fast path (kernels reading 16 bytes or one element per input per
** group, offsets from one or two divisions) when every input broadcasts as
** a block, a scalar or not at all and at most 8 registers are live, else the
** general interpreter; the same results either way. */
cudaError_t kc_fused_eltwise(int dt, const kc_fe_prog *p, void *y, int64_t n, cudaStream_t st);
/* Always the interpreter (tests and benchmarks compare the two). */
cudaError_t kc_fused_eltwise_interp(int dt, const kc_fe_prog *p, void *y, int64_t n,
                                    cudaStream_t st);
/* Which path kc_fused_eltwise takes: elements per group of the fast path
** (16-byte groups: 8 of a 16-bit type, 4 float32; 8-byte groups: 4 of a
** 16-bit type; 1: single elements), 0 the interpreter. */
int kc_fused_eltwise_path(int dt, const kc_fe_prog *p, const void *y, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
