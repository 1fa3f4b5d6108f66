/* ref_index.c: reference kernels for the index operator family. */
#include "ref.h"

const ref_kernel ref_kernels_index[] = {
    {OP_NONE, NULL},
};
