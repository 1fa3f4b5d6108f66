/* passes.h: the graph optimizer. Each pass rewrites the main graph in place
** and reports every rewrite through pass_note (verbose build log); the
** pipeline logs a one-line summary per pass. Passes must keep the graph's
** meaning exactly (numerically equal to the reference within float
** rounding) for every input shape the graph accepts. */
#ifndef KILN_PASSES_H
#define KILN_PASSES_H

#include "../ir/ir_edit.h"

typedef struct pass_ctx {
    ir_model *m;
    ir_graph *g;                /* main graph */
    int opt_level;              /* 0..5 from the builder config */
    int nchwc_block;            /* CPU builds: channel block of the NCHWc
                                   layout (8 AVX2, 16 AVX-512F); 0 off */
    bool device_build;          /* the engine is for a device backend */
    bool no_q8_epilogue;        /* its backend has no QFusedGemm tactic: the
                                   qdq pass leaves DQ -> MatMul in float and
                                   the quantizer quantizes every product's
                                   output (the graph before QFusedGemm) */
    kiln_log_fn log;            /* may be NULL */
    void *log_user;
    int log_max;                /* most verbose kiln_severity to emit */
    int changes;                /* rewrites made by the running pass */
    const char *pass_name;
} pass_ctx;

typedef struct kiln_pass {
    const char *name;
    kiln_status (*run)(pass_ctx *p);
} kiln_pass;

/* Logs one rewrite at VERBOSE and counts it. */
void pass_note(pass_ctx *p, const char *fmt, ...) KILN_PRINTF(2, 3);
void pass_log(pass_ctx *p, kiln_severity sev, const char *fmt, ...)
    KILN_PRINTF(3, 4);
/* Runs the whole pipeline (compacting and re-inferring between passes). */
kiln_status passes_run_all(pass_ctx *p);
/* Runs one pass by name (tests). */
kiln_status passes_run_one(pass_ctx *p, const char *name);

/* The passes. */
extern const kiln_pass pass_qdq;         /* Q/DQ -> INT8 layers (qdq.c) */
extern const kiln_pass pass_qdyn;        /* MatMulInteger + Cast + Mul -> MatMulIntegerToFloat */
extern const kiln_pass pass_qepi;        /* QFusedGemm + bias/residual/act/Q epilogue */
extern const kiln_pass pass_fold;        /* constant folding */
extern const kiln_pass pass_noop;        /* Identity/Dropout/no-op Cast, ... */
extern const kiln_pass pass_dce;         /* dead nodes */
extern const kiln_pass pass_layernorm;   /* LayerNorm + RMSNorm patterns */
extern const kiln_pass pass_gelu;        /* GELU patterns (erf, tanh) */
extern const kiln_pass pass_attention;   /* scaled dot-product attention */
extern const kiln_pass pass_conv_bn;     /* Conv + BatchNormalization */
extern const kiln_pass pass_matmul_add;  /* MatMul + Add -> FusedGemm */
extern const kiln_pass pass_bias_act;    /* Conv/Gemm + bias + residual + act */
extern const kiln_pass pass_qkv;         /* Q/K/V GEMMs -> one packed GEMM */
extern const kiln_pass pass_transpose;   /* transpose/reshape cancellation */
extern const kiln_pass pass_eltwise;     /* elementwise chains */
extern const kiln_pass pass_nchwc;       /* NCHWc layout (nchwc_block set) */

/* Device builds with --fp16 / --bf16: layers with half-precision kernels
** compute in `half` (KILN_DTYPE_FLOAT16 or BFLOAT16); Cast layers where
** values cross precisions and before float32 graph outputs (precision.c). */
kiln_status pass_reduced_precision(pass_ctx *p, kiln_dtype half);

/* Channels-last (layout.c): conv chains into Kiln's NHWC ops, ToNhwc/ToNchw
** reformat layers at chain borders; input channels padded to a multiple
** of align (1: none). pass_channels_last_wanted says whether a build runs
** it: `by_default` (device builds at FP16/BF16 or with INT8 layers, which
** builder.c works out) unless the KILN_CHANNELS_LAST environment variable
** ("1" always, "0" never) overrides. */
kiln_status pass_channels_last(pass_ctx *p, int align);
/* The same for some kinds of chains only: float convolutions (CL_KIND_HALF:
** float32, float16, bfloat16) and 8-bit ones (CL_KIND_Q8: QLinearConv,
** QAdd, 8-bit MaxPool). pass_channels_last converts both. */
enum { CL_KIND_HALF = 1, CL_KIND_Q8 = 2 };
kiln_status pass_channels_last_kinds(pass_ctx *p, int align, unsigned kinds);
bool pass_channels_last_wanted(bool by_default);
/* The alignment builds pass: 8, or KILN_CHANNELS_LAST_ALIGN (tests). */
int pass_channels_last_align(void);

#endif
