/* ref_control.c: reference kernels for the control operator family. */
#include "ref.h"

const ref_kernel ref_kernels_control[] = {
    {OP_NONE, NULL},
};
