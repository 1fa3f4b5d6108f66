// rotary.cu: RotaryEmbedding (rotary position embedding of attention
// heads) on the GPU: one thread per output element, each reading its pair
// partner, so the rotation needs no shared memory. Float32 arithmetic with
// the host reference's operations in order (_rn: no fused multiply-add).
#include "attn_kernels.h"
#include "gemm_act.cuh"

static __device__ __forceinline__ float rot_ld(int dt, const void *p, int64_t i) {
    return dt == KC_F16    ? __half2float(((const __half *)p)[i])
           : dt == KC_BF16 ? __bfloat162float(((const __nv_bfloat16 *)p)[i])
                           : ((const float *)p)[i];
}

template <typename T>
__global__ void k_rotary(const T *__restrict__ x, T *__restrict__ y, kc_rotary_args a,
                         int64_t total) {
    const int64_t half = a.rd / 2;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = e % a.d, r = e / a.d, b, s;
        if (a.is3) { // (b, s, h, j)
            s = (r / a.h) % a.s;
            b = r / (a.h * a.s);
        } else {     // (b, h, s, j)
            s = r % a.s;
            b = r / (a.s * a.h);
        }
        if (j >= a.rd) {
            y[e] = x[e];
            continue;
        }
        int64_t row = b * a.s + s;
        if (a.pos) {
            row = a.pos[b * a.s + s];
            if (row < 0 || row >= a.maxpos) { // the reference refuses: zeros here
                kc_st(y, e, 0.0f);
                continue;
            }
        }
        int64_t i = a.interleaved ? j / 2 : j < half ? j : j - half;
        bool first = a.interleaved ? j % 2 == 0 : j < half;
        int64_t base = e - j;
        int64_t i1 = a.interleaved ? 2 * i : i, i2 = a.interleaved ? 2 * i + 1 : i + half;
        float x1 = kc_ld(x, base + i1), x2 = kc_ld(x, base + i2);
        float c = rot_ld(a.cache_dt, a.cos, row * half + i);
        float sn = rot_ld(a.cache_dt, a.sin, row * half + i);
        float v = first ? __fsub_rn(__fmul_rn(c, x1), __fmul_rn(sn, x2))
                        : __fadd_rn(__fmul_rn(sn, x1), __fmul_rn(c, x2));
        kc_st(y, e, v);
    }
}

extern "C" cudaError_t kc_rotary(int dtype, const void *x, void *y, const kc_rotary_args *a,
                                 cudaStream_t s) {
    if (a->d <= 0 || a->rd < 0 || a->rd > a->d || a->rd % 2 || a->cache_dt < KC_F32 ||
        a->cache_dt > KC_BF16)
        return cudaErrorInvalidValue;
    int64_t total = a->b * a->s * a->h * a->d;
    if (total <= 0) return cudaSuccess;
    unsigned g = kc_blocks(total, 256);
    switch (dtype) {
    case KC_F32: k_rotary<float><<<g, 256, 0, s>>>((const float *)x, (float *)y, *a, total); break;
    case KC_F16: k_rotary<__half><<<g, 256, 0, s>>>((const __half *)x, (__half *)y, *a, total); break;
    case KC_BF16:
        k_rotary<__nv_bfloat16><<<g, 256, 0, s>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                                  *a, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
