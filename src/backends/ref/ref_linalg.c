/* ref_linalg.c: reference kernels for the linalg operator family. */
#include "ref.h"

const ref_kernel ref_kernels_linalg[] = {
    {OP_NONE, NULL},
};
