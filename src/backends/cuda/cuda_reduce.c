/* cuda_reduce.c: CUDA tactics of the reduce family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_reduce[] = {NULL};
