/* cuda_kernels.h: the C seam of the CUDA kernels. Every function here is
** defined in a .cu file of this folder with C linkage, takes device
** pointers, plain sizes and a stream, launches (never synchronizes) and
** returns the launch's cudaError_t. Tactic glue in ../cuda_*.c reads the
** layer (attributes, shapes) and calls these. */
#ifndef KILN_CUDA_KERNELS_H
#define KILN_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fills n bytes with a pattern (used by tests to poison outputs). */
cudaError_t kc_fill_u32(uint32_t *p, size_t n_words, uint32_t value, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
