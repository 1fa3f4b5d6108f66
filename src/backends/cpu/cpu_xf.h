/* cpu_xf.h: the transformer kernels of the CPU backend (fused attention,
** LayerNorm/RMSNorm, Softmax, GELU and the FusedElementwise interpreter):
** argument blocks shared by the tactic drivers (cpu_attn.c, cpu_norm.c,
** cpu_eltwise.c) and the per-ISA kernel tables. The kernels are written
** once in cpu_xf_kern.h over vector macros and compiled three times:
** AVX-512F (16 lanes), AVX2+FMA (8 lanes) and portable C (1 lane, libm). */
#ifndef KILN_CPU_XF_H
#define KILN_CPU_XF_H

#include "../backend.h"
#include "../../ops/fused.h"

/* Key block of the attention kernel: scores for this many keys at a time
** (a multiple of every ISA's score tile width). */
enum { CPU_ATTN_NK = 64 };

/* One attention layer, float32, with the K^T panels already packed. */
typedef struct cpu_attn_args {
    int64_t B, Hq, Hkv, Sq, T, Dh, Dv;
    const float *q, *v;
    float *y;
    /* element strides per batch, head and row (3-D or 4-D layouts) */
    int64_t q_bs, q_hs, q_rs, v_bs, v_hs, v_rs, y_bs, y_hs, y_rs;
    /* K^T of (b, kv head) at kt + (b*Hkv + h) * Dh * Tp: [Dh][Tp], keys past
    ** T zero */
    const float *kt;
    int64_t Tp;
    float scale;
    bool causal;
    /* mask broadcast to (B, Hq, Sq, mlast); keys at or past mlast are
    ** masked; NULL: none. bool (byte) or float additive. */
    const void *mask;
    bool mask_bool;
    int64_t m_bs, m_hs, m_rs, m_cs, mlast;
    const int64_t *nonpad;   /* valid key count per batch, or NULL */
    int64_t mq;              /* query rows per task (multiple of 4) */
    int64_t nqb;             /* query blocks per head */
} cpu_attn_args;

/* Floats of per-task scratch the attention kernel needs. */
static inline size_t cpu_attn_scratch_floats(int64_t mq, int64_t Dv) {
    return (size_t)(mq * CPU_ATTN_NK + mq * ((Dv + 15) / 16 * 16) + 3 * mq + 64);
}

/* LayerNorm / RMSNorm rows: rows of n contiguous elements. */
typedef struct cpu_norm_args {
    const float *x, *scale, *bias; /* scale/bias: n floats; bias may be NULL */
    float *y;
    float *mean, *inv;             /* per-row outputs, may be NULL */
    int64_t n;
    float eps;
    bool rms;
} cpu_norm_args;

/* Softmax / LogSoftmax over (outer, n, inner) blocks. */
typedef struct cpu_softmax_args {
    const float *x;
    float *y;
    int64_t n, inner;
    bool log;
} cpu_softmax_args;

/* A decoded FusedElementwise program. Registers hold blocks of
** CPU_FE_BLK floats; vectorized ops run over a block at a time. */
enum { CPU_FE_BLK = 256, CPU_FE_MAX_INS = 64, CPU_FE_MAX_REGS = 128 };
/* Internal opcodes beyond fused.h's. */
enum { CPU_FE_SQUARE = 1000 /* Pow by the constant 2 */ };
typedef struct cpu_fe_ins {
    int opc, dst, a, b, c; /* registers; -1 absent */
} cpu_fe_ins;
typedef struct cpu_fe_prog {
    int n_ins, n_regs;
    cpu_fe_ins ins[CPU_FE_MAX_INS];
} cpu_fe_prog;

/* Scalar fallback of one instruction (the reference's formulas), used for
** the opcodes the vector kernels leave out. b, c NULL when absent. */
void cpu_fe_scalar(int opc, const float *a, const float *b, const float *c,
                   float *y, int64_t n);

typedef struct cpu_xf_kernels {
    const char *isa;
    bool available;     /* false: its file was built without ISA flags */
    int width;          /* float lanes */
    void (*attn_task)(const cpu_attn_args *a, int64_t task, float *scratch);
    void (*norm_rows)(const cpu_norm_args *a, int64_t r0, int64_t r1);
    void (*softmax)(const cpu_softmax_args *a, int64_t o0, int64_t o1);
    /* y = gelu(x) (erf form, or the tanh form) on n elements */
    void (*gelu)(const float *x, float *y, int64_t n, bool tanh_form);
    /* Runs prog on n <= CPU_FE_BLK elements; regs[r] points at each
    ** register's block (the last instruction's at the output). */
    void (*fe_run)(const cpu_fe_prog *p, float *const *regs, int64_t n);
} cpu_xf_kernels;

extern const cpu_xf_kernels cpu_xf_avx512, cpu_xf_avx2, cpu_xf_c;

#endif
