/* cuda_gemm.c: CUDA tactics of the gemm family (see cuda_internal.h). */
#include "cuda_internal.h"

const kiln_tactic *const cuda_tactics_gemm[] = {NULL};
