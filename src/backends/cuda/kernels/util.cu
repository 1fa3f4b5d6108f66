// util.cu: small utility kernels shared by the tactics and tests.
#include "cuda_kernels.h"

__global__ void k_fill_u32(uint32_t *p, size_t n, uint32_t v) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

extern "C" cudaError_t kc_fill_u32(uint32_t *p, size_t n, uint32_t v, cudaStream_t s) {
    if (!n) return cudaSuccess;
    unsigned blocks = (unsigned)((n + 255) / 256);
    if (blocks > 65535u * 8u) blocks = 65535u * 8u;
    k_fill_u32<<<blocks, 256, 0, s>>>(p, n, v);
    return cudaGetLastError();
}
