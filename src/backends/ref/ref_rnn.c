/* ref_rnn.c: reference kernels for the rnn operator family. */
#include "ref.h"

const ref_kernel ref_kernels_rnn[] = {
    {OP_NONE, NULL},
};
