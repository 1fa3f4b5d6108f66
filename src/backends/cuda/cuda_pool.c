/* cuda_pool.c: CUDA tactics of the pool family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_pool[] = {NULL};
