/* cuda_norm.c: CUDA tactics of the norm family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_norm[] = {NULL};
