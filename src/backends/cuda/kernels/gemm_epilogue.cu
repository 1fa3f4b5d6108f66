// gemm_epilogue.cu: the in-place epilogue after a cuBLASLt product, for what
// cuBLASLt cannot fuse: alpha/beta with a broadcast C, and activations other
// than ReLU / tanh-GELU (BERT's exact erf-GELU after the bias epilogue is the
// common case). f32 math. FP16/BF16 outputs with no C, a bias row or a C of
// the output's shape take a vector path (8 elements, 16-byte loads and
// stores per thread, one pass over the output in its own type); the rest
// one thread per element, grid-stride.
#include "gemm_act.cuh"

#include <stdint.h>

// Eight 16-bit values as floats and back.
template <typename T> __device__ __forceinline__ void unpack8(const uint4 &u, float f[8]);
template <> __device__ __forceinline__ void unpack8<__half>(const uint4 &u, float f[8]) {
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 v = __half22float2(h[j]);
        f[2 * j] = v.x, f[2 * j + 1] = v.y;
    }
}
template <> __device__ __forceinline__ void unpack8<__nv_bfloat16>(const uint4 &u, float f[8]) {
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 v = __bfloat1622float2(h[j]);
        f[2 * j] = v.x, f[2 * j + 1] = v.y;
    }
}
template <typename T> __device__ __forceinline__ uint4 pack8(const float f[8]);
template <> __device__ __forceinline__ uint4 pack8<__half>(const float f[8]) {
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
    for (int j = 0; j < 4; j++) h[j] = __floats2half2_rn(f[2 * j], f[2 * j + 1]);
    return u;
}
template <> __device__ __forceinline__ uint4 pack8<__nv_bfloat16>(const float f[8]) {
    uint4 u;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
    for (int j = 0; j < 4; j++) h[j] = __floats2bfloat162_rn(f[2 * j], f[2 * j + 1]);
    return u;
}

// Vector path: n8 groups of 8 elements; mode NONE, SAME or ROW (n_last a
// multiple of 8, so a group never straddles a row). GELU (the common case)
// gets its own instantiation so the loop has no activation switch.
template <typename T, bool GELU>
__global__ void k_gemm_epilogue_v8(T *y, int64_t n8, float alpha, const T *c, float beta,
                                   int mode, int64_t n_last8, kc_act act) {
    uint4 *y4 = reinterpret_cast<uint4 *>(y);
    const uint4 *c4 = reinterpret_cast<const uint4 *>(c);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v[8];
        unpack8<T>(y4[i], v);
        float w[8];
        if (mode != KC_ADD_NONE) unpack8<T>(__ldg(c4 + (mode == KC_ADD_SAME ? i : i % n_last8)), w);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float x = alpha * v[j];
            if (mode != KC_ADD_NONE) x += beta * w[j];
            v[j] = GELU ? 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)) : kc_apply_act(act, x);
        }
        y4[i] = pack8<T>(v);
    }
}

template <typename T>
static cudaError_t launch_v8(void *y, int64_t n, float alpha, const void *c, float beta, int mode,
                             int64_t n_last, kc_act act, cudaStream_t s) {
    int64_t n8 = n / 8;
    unsigned g = kc_blocks(n8, 256);
    if (act.kind == KC_ACT_GELU)
        k_gemm_epilogue_v8<T, true><<<g, 256, 0, s>>>((T *)y, n8, alpha, (const T *)c, beta,
                                                      mode, n_last / 8, act);
    else
        k_gemm_epilogue_v8<T, false><<<g, 256, 0, s>>>((T *)y, n8, alpha, (const T *)c, beta,
                                                       mode, n_last / 8, act);
    return cudaGetLastError();
}

template <typename T>
__global__ void k_gemm_epilogue(T *y, int64_t n, float alpha, const T *c, float beta,
                                int mode, int64_t n_last, kc_bcast bc, kc_act act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = alpha * kc_ld(y, i);
        if (mode != KC_ADD_NONE) {
            int64_t off;
            if (mode == KC_ADD_SAME) {
                off = i;
            } else if (mode == KC_ADD_ROW) {
                off = i % n_last;
            } else {
                off = 0;
                int64_t r = i;
                for (int d = bc.rank - 1; d >= 0; d--) {
                    int64_t q = r % bc.dims[d];
                    r /= bc.dims[d];
                    off += q * bc.cst[d];
                }
            }
            v = v + beta * kc_ld(c, off);
        }
        kc_st(y, i, kc_apply_act(act, v));
    }
}

extern "C" cudaError_t kc_gemm_epilogue(int dtype, void *y, int64_t n, float alpha,
                                        const void *c, float beta, int add_mode,
                                        int64_t n_last, const kc_bcast *bc, kc_act act,
                                        cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    kc_bcast b = *bc;
    if (!c) add_mode = KC_ADD_NONE;
    if (n_last < 1) n_last = 1;
    /* vector path: 16-byte aligned, whole groups of 8 */
    bool v8 = (dtype == KC_F16 || dtype == KC_BF16) && ((uintptr_t)y & 15u) == 0 && n % 8 == 0 &&
              (add_mode == KC_ADD_NONE ||
               (((uintptr_t)c & 15u) == 0 &&
                (add_mode == KC_ADD_SAME || (add_mode == KC_ADD_ROW && n_last % 8 == 0))));
    if (v8 && dtype == KC_F16)
        return launch_v8<__half>(y, n, alpha, c, beta, add_mode, n_last, act, s);
    if (v8)
        return launch_v8<__nv_bfloat16>(y, n, alpha, c, beta, add_mode, n_last, act, s);
    unsigned g = kc_blocks(n, 256);
    switch (dtype) {
    case KC_F32:
        k_gemm_epilogue<float><<<g, 256, 0, s>>>((float *)y, n, alpha, (const float *)c, beta,
                                                 add_mode, n_last, b, act);
        break;
    case KC_F16:
        k_gemm_epilogue<__half><<<g, 256, 0, s>>>((__half *)y, n, alpha, (const __half *)c,
                                                  beta, add_mode, n_last, b, act);
        break;
    case KC_BF16:
        k_gemm_epilogue<__nv_bfloat16><<<g, 256, 0, s>>>((__nv_bfloat16 *)y, n, alpha,
                                                         (const __nv_bfloat16 *)c, beta,
                                                         add_mode, n_last, b, act);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
