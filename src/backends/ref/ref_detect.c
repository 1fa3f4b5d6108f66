/* ref_detect.c: reference kernels for the detect operator family. */
#include "ref.h"

const ref_kernel ref_kernels_detect[] = {
    {OP_NONE, NULL},
};
