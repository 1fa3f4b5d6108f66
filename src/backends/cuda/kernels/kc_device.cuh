// kc_device.cuh: device helpers shared by Kiln's elementwise, reduce and
// normalization kernels: typed loads/stores by runtime dtype code, float
// conversions, broadcast offsets, warp/block reductions, launch sizing.
#ifndef KILN_KC_DEVICE_CUH
#define KILN_KC_DEVICE_CUH

#include "kc_shape.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

// ---- float element types: T <-> float
__device__ __forceinline__ float kc_f(float v) { return v; }
__device__ __forceinline__ float kc_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float kc_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T kc_to(float v);
template <> __device__ __forceinline__ float kc_to<float>(float v) { return v; }
template <> __device__ __forceinline__ __half kc_to<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 kc_to<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
// v rounded to T's precision and widened back (what storing an intermediate
// tensor of type T would do).
template <class T> __device__ __forceinline__ float kc_round(float v) { return kc_f(kc_to<T>(v)); }

// ---- four consecutive elements through one 16-byte (float) or 8-byte
// (16-bit types) access; index v counts groups of four, p must be aligned.
template <class T> __device__ __forceinline__ float kc_from_bits(unsigned short b);
template <> __device__ __forceinline__ float kc_from_bits<__half>(unsigned short b) {
    return __half2float(__ushort_as_half(b));
}
template <> __device__ __forceinline__ float kc_from_bits<__nv_bfloat16>(unsigned short b) {
    return __bfloat162float(__ushort_as_bfloat16(b));
}
template <class T> __device__ __forceinline__ unsigned kc_to_bits(float v);
template <> __device__ __forceinline__ unsigned kc_to_bits<__half>(float v) {
    return __half_as_ushort(__float2half_rn(v));
}
template <> __device__ __forceinline__ unsigned kc_to_bits<__nv_bfloat16>(float v) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}
template <class T> __device__ __forceinline__ void kc_ld4(const T *p, int64_t v, float *f) {
    if constexpr (sizeof(T) == 4) {
        float4 q = ((const float4 *)p)[v];
        f[0] = q.x, f[1] = q.y, f[2] = q.z, f[3] = q.w;
    } else {
        uint2 q = ((const uint2 *)p)[v];
        f[0] = kc_from_bits<T>((unsigned short)(q.x & 0xffffu));
        f[1] = kc_from_bits<T>((unsigned short)(q.x >> 16));
        f[2] = kc_from_bits<T>((unsigned short)(q.y & 0xffffu));
        f[3] = kc_from_bits<T>((unsigned short)(q.y >> 16));
    }
}
template <class T> __device__ __forceinline__ void kc_st4(T *p, int64_t v, const float *f) {
    if constexpr (sizeof(T) == 4) {
        ((float4 *)p)[v] = make_float4(f[0], f[1], f[2], f[3]);
    } else {
        uint2 q;
        q.x = kc_to_bits<T>(f[0]) | (kc_to_bits<T>(f[1]) << 16);
        q.y = kc_to_bits<T>(f[2]) | (kc_to_bits<T>(f[3]) << 16);
        ((uint2 *)p)[v] = q;
    }
}

__host__ __device__ __forceinline__ bool kc_is_float(int dt) {
    return dt == KC_F32 || dt == KC_F16 || dt == KC_BF16 || dt == KC_F64;
}

// ---- loads and stores by runtime dtype code (uniform branches)
__device__ __forceinline__ float kc_ldf(const void *p, int64_t i, int dt) {
    switch (dt) {
    case KC_F32: return ((const float *)p)[i];
    case KC_F16: return __half2float(((const __half *)p)[i]);
    case KC_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case KC_F64: return (float)((const double *)p)[i];
    case KC_I32: return (float)((const int32_t *)p)[i];
    case KC_I64: return (float)((const long long *)p)[i];
    case KC_I8: return (float)((const int8_t *)p)[i];
    case KC_I16: return (float)((const int16_t *)p)[i];
    case KC_U16: return (float)((const uint16_t *)p)[i];
    case KC_U32: return (float)((const uint32_t *)p)[i];
    case KC_U64: return (float)((const unsigned long long *)p)[i];
    default: return (float)((const uint8_t *)p)[i]; // u8, bool
    }
}
__device__ __forceinline__ double kc_ldd(const void *p, int64_t i, int dt) {
    switch (dt) {
    case KC_F64: return ((const double *)p)[i];
    case KC_I64: return (double)((const long long *)p)[i];
    default: return (double)kc_ldf(p, i, dt);
    }
}
__device__ __forceinline__ long long kc_ldi(const void *p, int64_t i, int dt) {
    switch (dt) {
    case KC_I64: return ((const long long *)p)[i];
    case KC_I32: return ((const int32_t *)p)[i];
    case KC_I8: return ((const int8_t *)p)[i];
    case KC_I16: return ((const int16_t *)p)[i];
    case KC_U16: return ((const uint16_t *)p)[i];
    case KC_U32: return ((const uint32_t *)p)[i];
    case KC_U64: return (long long)((const unsigned long long *)p)[i]; // the bits
    default: return ((const uint8_t *)p)[i]; // u8, bool
    }
}
__device__ __forceinline__ void kc_stf(void *p, int64_t i, int dt, float v) {
    switch (dt) {
    case KC_F32: ((float *)p)[i] = v; return;
    case KC_F16: ((__half *)p)[i] = __float2half_rn(v); return;
    case KC_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); return;
    case KC_F64: ((double *)p)[i] = (double)v; return;
    default: return;
    }
}
// Integer stores keep the low bits (two's complement); bool is != 0.
__device__ __forceinline__ void kc_sti(void *p, int64_t i, int dt, long long v) {
    switch (dt) {
    case KC_I64: ((long long *)p)[i] = v; return;
    case KC_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(unsigned long long)v; return;
    case KC_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)(unsigned long long)v; return;
    case KC_U8: ((uint8_t *)p)[i] = (uint8_t)(unsigned long long)v; return;
    case KC_I16: ((int16_t *)p)[i] = (int16_t)(uint16_t)(unsigned long long)v; return;
    case KC_U16: ((uint16_t *)p)[i] = (uint16_t)(unsigned long long)v; return;
    case KC_U32: ((uint32_t *)p)[i] = (uint32_t)(unsigned long long)v; return;
    case KC_U64: ((unsigned long long *)p)[i] = (unsigned long long)v; return;
    case KC_BOOL: ((uint8_t *)p)[i] = v != 0; return;
    default: return;
    }
}

// ---- broadcast offsets of NIN inputs for output element i
template <int NIN, class I>
__device__ __forceinline__ void kc_offsets(const kc_bshape &s, I i, I *off) {
#pragma unroll
    for (int j = 0; j < NIN; j++) off[j] = 0;
    if (s.rank <= 1) { // contiguous or scalar operands: no division
#pragma unroll
        for (int j = 0; j < NIN; j++) off[j] = s.rank ? i * (I)s.st[j][0] : 0;
        return;
    }
    for (int d = s.rank - 1; d >= 0; d--) {
        I dim = (I)s.dims[d];
        I q = i / dim, r = i - q * dim;
#pragma unroll
        for (int j = 0; j < NIN; j++) off[j] += r * (I)s.st[j][d];
        i = q;
    }
}

// ---- reductions
__device__ __forceinline__ float kc_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float kc_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. sh: 32 floats of shared memory.
__device__ __forceinline__ float kc_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = kc_warp_sum(v);
    __syncthreads(); // sh may still be read by a previous call
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return kc_warp_sum(v);
}
__device__ __forceinline__ float kc_block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = kc_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return kc_warp_max(v);
}

// Blocks for a grid-stride loop over n items with `threads` per block:
// enough to fill the GPU several times over, never more than needed.
static inline unsigned kc_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b > 8192) b = 8192;
    if (b < 1) b = 1;
    return (unsigned)b;
}

#endif
