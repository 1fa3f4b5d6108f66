/*
** kiln_cuda.h: stream-typed conveniences for CUDA users of kiln.h. Include
** after <cuda_runtime_api.h>. Everything here forwards to kiln.h.
*/
#ifndef KILN_CUDA_H
#define KILN_CUDA_H

#include "kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Queues a run of a CUDA engine's context on a CUDA stream. */
static inline kiln_status kiln_context_enqueue_cuda(kiln_context *c, cudaStream_t s) {
    return kiln_context_enqueue(c, (void *)s);
}

/* The context's own stream. */
static inline cudaStream_t kiln_context_cuda_stream(const kiln_context *c) {
    return (cudaStream_t)kiln_context_stream(c);
}

#ifdef __cplusplus
}
#endif
#endif /* KILN_CUDA_H */
