/* cuda_conv.c: CUDA tactics of the conv family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_conv[] = {NULL};
