/* cuda_eltwise.c: CUDA tactics of the eltwise family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_eltwise[] = {NULL};
