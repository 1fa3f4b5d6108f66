/* backend.h: what an execution backend offers the builder and runtime.
** A backend exposes, per node, candidate implementations ("tactics"). The
** builder times the candidates on the target and records the winner's name
** in the engine; the runtime looks the name up again at load time. Kernels
** use the reference kernel contract (ref_ctx) so the reference kernel of
** every op is itself a tactic ("ref") and the oracle for the others. */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "ref/ref.h"

/* CPU features a tactic may require (x86-64). */
enum {
    KILN_ISA_AVX2 = 1u << 0,
    KILN_ISA_FMA = 1u << 1,
    KILN_ISA_AVX512F = 1u << 2
};

enum {
    /* The tactic writes every output element: the runtime need not zero
    ** outputs first. Reference kernels do not promise this. */
    TACTIC_OVERWRITES_OUTPUT = 1u << 0,
    /* Output 0 may share memory with input 0 (pure elementwise, same
    ** shape and dtype). Implies TACTIC_OVERWRITES_OUTPUT. */
    TACTIC_INPLACE_OK = 1u << 1
};

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
} kiln_backend_ops;

const kiln_backend_ops *kiln_backend_cpu(void);
/* "avx2 fma" style names for a feature set, into buf. */
const char *kiln_isa_names(unsigned isa, char *buf, size_t n);

#endif
