/* cuda_data.c: CUDA tactics of the data family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_data[] = {NULL};
