/* linalg_einsum.h: Einsum equation parsing, shared by shape inference
** (ops/linalg.c) and the reference kernel (backends/ref/ref_linalg.c). */
#ifndef KILN_LINALG_EINSUM_H
#define KILN_LINALG_EINSUM_H

#include "../util/common.h"

/* Labels: 'A'..'Z' are 0..25, 'a'..'z' are 26..51 (so id order is ASCII
** order, which fixes the implicit output order), and the broadcast dims
** covered by "..." are 52 + k, k counted from the left of the broadcast
** rank. */
enum {
    EIN_LETTERS = 52,
    EIN_MAX_LABELS = EIN_LETTERS + KILN_MAX_RANK,
    EIN_MAX_OPS = 64
};

typedef struct einsum_spec {
    int n_ops;
    int ell_rank;                        /* broadcast rank of "..." */
    int rank[EIN_MAX_OPS];               /* each operand's rank */
    signed char lab[EIN_MAX_OPS][KILN_MAX_RANK]; /* label of each axis */
    int out_rank;
    signed char out[KILN_MAX_RANK];      /* label of each output axis */
} einsum_spec;

/* Parses eq for n_ops operands of the given ranks (all must be known).
** Returns 0, or -1 with a message in err. */
int einsum_parse(const char *eq, int n_ops, const int *ranks,
                 einsum_spec *sp, char *err, size_t errn);

/* Number of operand terms written in eq (commas + 1 before "->"); -1 if eq
** is NULL. Lets inference check the input count without ranks. */
int einsum_count_terms(const char *eq);

#endif
