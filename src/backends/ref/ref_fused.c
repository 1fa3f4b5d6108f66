/* ref_fused.c: reference kernels for Kiln's internal fused ops. */
#include "ref.h"

const ref_kernel ref_kernels_fused[] = {
    {OP_NONE, NULL},
};
