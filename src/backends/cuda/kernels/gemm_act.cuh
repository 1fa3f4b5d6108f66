// gemm_act.cuh: device-side activation formulas and element load/store
// shared by the GEMM, conv and attention kernels. The formulas are those
// of fused.h, evaluated in float32, so fused results match the reference.
#ifndef KILN_CUDA_GEMM_ACT_CUH
#define KILN_CUDA_GEMM_ACT_CUH

#include "gemm_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

__device__ __forceinline__ float kc_sigmoid(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

__device__ __forceinline__ float kc_clamp01(float v) {
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

__device__ __forceinline__ float kc_apply_act(const kc_act &a, float v) {
    switch (a.kind) {
    case KC_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case KC_ACT_CLIP:
        v = v < a.alpha ? a.alpha : v;
        return v > a.beta ? a.beta : v;
    case KC_ACT_SIGMOID: return kc_sigmoid(v);
    case KC_ACT_SILU: return v * kc_sigmoid(v);
    case KC_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    case KC_ACT_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case KC_ACT_LEAKY_RELU: return v < 0.0f ? a.alpha * v : v;
    case KC_ACT_HARD_SWISH: return v * kc_clamp01(v * (float)(1.0 / 6.0) + 0.5f);
    case KC_ACT_HARD_SIGMOID: return kc_clamp01(a.alpha * v + a.beta);
    case KC_ACT_TANH: return tanhf(v);
    default: return v;
    }
}

template <typename T> __device__ __forceinline__ float kc_ld(const T *p, int64_t i);
template <> __device__ __forceinline__ float kc_ld<float>(const float *p, int64_t i) {
    return p[i];
}
template <> __device__ __forceinline__ float kc_ld<__half>(const __half *p, int64_t i) {
    return __half2float(p[i]);
}
template <>
__device__ __forceinline__ float kc_ld<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i) {
    return __bfloat162float(p[i]);
}

template <typename T> __device__ __forceinline__ void kc_st(T *p, int64_t i, float v);
template <> __device__ __forceinline__ void kc_st<float>(float *p, int64_t i, float v) {
    p[i] = v;
}
template <> __device__ __forceinline__ void kc_st<__half>(__half *p, int64_t i, float v) {
    p[i] = __float2half_rn(v);
}
template <>
__device__ __forceinline__ void kc_st<__nv_bfloat16>(__nv_bfloat16 *p, int64_t i, float v) {
    p[i] = __float2bfloat16_rn(v);
}

// Grid for a grid-stride loop over n elements (capped: the loop covers
// the rest).
static inline unsigned kc_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535LL * 16) b = 65535LL * 16;
    return (unsigned)(b < 1 ? 1 : b);
}

#endif
