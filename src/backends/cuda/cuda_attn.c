/* cuda_attn.c: CUDA tactics of the attn family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_attn[] = {NULL};
