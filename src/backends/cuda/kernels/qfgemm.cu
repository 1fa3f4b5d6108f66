// qfgemm.cu: the epilogue of QFusedGemm's cuBLASLt tactic (see
// qfgemm_kernels.h): int32 product -> float32 steps of ops/qfused.c ->
// float / half / bfloat16 or requantized 8-bit output. One thread per four
// columns of a row: a 16-byte load of the product, the per-column scale and
// bias as float4 when they are vectors, the residual and output as one
// 4-element access of their width.
#include "kc_device.cuh"
#include "qfgemm_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {

__device__ __forceinline__ float ld_any(const void *p, int64_t i, int t) {
    switch (t) {
    case KC_QFG_F32: return ((const float *)p)[i];
    case KC_QFG_F16: return __half2float(((const __half *)p)[i]);
    case KC_QFG_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case KC_QFG_S8: return (float)((const int8_t *)p)[i];
    case KC_QFG_U8: return (float)((const uint8_t *)p)[i];
    default: return 0.0f;
    }
}

// The activations of ops/fused.h, each step rounded as the host's.
__device__ __forceinline__ float act_of(int act, float v) {
    switch (act) {
    case KC_QFG_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case KC_QFG_ACT_SIGMOID:
        if (v >= 0.0f) return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v)));
        else {
            float e = expf(v);
            return __fdiv_rn(e, __fadd_rn(1.0f, e));
        }
    case KC_QFG_ACT_GELU:
        return __fmul_rn(__fmul_rn(0.5f, v),
                         __fadd_rn(1.0f, erff(__fmul_rn(v, 0.7071067811865476f))));
    case KC_QFG_ACT_GELU_TANH: {
        float c = __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, v), v), v);
        float t = tanhf(__fmul_rn(0.7978845608028654f, __fadd_rn(v, c)));
        return __fmul_rn(__fmul_rn(0.5f, v), __fadd_rn(1.0f, t));
    }
    case KC_QFG_ACT_TANH: return tanhf(v);
    default: return v;
    }
}

__global__ void k_qfg_epi(kc_qfg_epi p) {
    int64_t q4 = p.n / 4;
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= p.rows * q4) return;
    int64_t r = t / q4, c = (t - r * q4) * 4;
    int4 a = *(const int4 *)(p.acc + r * p.ldacc + c);
    int av[4] = {a.x, a.y, a.z, a.w};
    float sc[4], bi[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (p.scale_vec) {
        float4 s4 = *(const float4 *)(p.scale + c);
        sc[0] = s4.x, sc[1] = s4.y, sc[2] = s4.z, sc[3] = s4.w;
    } else {
        sc[0] = sc[1] = sc[2] = sc[3] = p.scale[0];
    }
    if (p.bias && p.bias_vec) {
        float4 b4 = *(const float4 *)(p.bias + c);
        bi[0] = b4.x, bi[1] = b4.y, bi[2] = b4.z, bi[3] = b4.w;
    } else if (p.bias) {
        bi[0] = bi[1] = bi[2] = bi[3] = p.bias[0];
    }
    bool r8 = p.res_type == KC_QFG_S8 || p.res_type == KC_QFG_U8;
    float rs = r8 ? p.rs[0] : 1.0f;
    float rz = r8 && p.rz ? ld_any(p.rz, 0, p.res_type) : 0.0f;
    int64_t base = r * p.n + c;
    float v[4];
    for (int i = 0; i < 4; i++) {
        float f = __fmul_rn((float)av[i], sc[i]);
        if (p.bias) f = __fadd_rn(f, bi[i]);
        if (p.res) {
            float rv = ld_any(p.res, base + i, p.res_type);
            f = __fadd_rn(f, r8 ? __fmul_rn(__fsub_rn(rv, rz), rs) : rv);
        }
        v[i] = act_of(p.act, f);
    }
    switch (p.y_type) {
    case KC_QFG_F32:
        *(float4 *)((float *)p.y + base) = make_float4(v[0], v[1], v[2], v[3]);
        break;
    case KC_QFG_F16: {
        __half2 h0 = __floats2half2_rn(v[0], v[1]), h1 = __floats2half2_rn(v[2], v[3]);
        uint2 u;
        u.x = *(const uint32_t *)&h0, u.y = *(const uint32_t *)&h1;
        *(uint2 *)((__half *)p.y + base) = u;
        break;
    }
    case KC_QFG_BF16: {
        __nv_bfloat162 h0 = __floats2bfloat162_rn(v[0], v[1]);
        __nv_bfloat162 h1 = __floats2bfloat162_rn(v[2], v[3]);
        uint2 u;
        u.x = *(const uint32_t *)&h0, u.y = *(const uint32_t *)&h1;
        *(uint2 *)((__nv_bfloat16 *)p.y + base) = u;
        break;
    }
    default: { // 8-bit: QuantizeLinear's steps
        bool s8 = p.y_type == KC_QFG_S8;
        float ys = p.ys[0], yz = ld_any(p.yz, 0, p.y_type);
        float lo = s8 ? -128.0f : 0.0f, hi = s8 ? 127.0f : 255.0f;
        uint32_t w = 0;
        for (int i = 0; i < 4; i++) {
            float q = __fadd_rn(rintf(__fdiv_rn(v[i], ys)), yz);
            q = q < lo ? lo : q > hi ? hi : q;
            if (q != q) q = lo;
            uint32_t b = s8 ? (uint32_t)(uint8_t)(int8_t)(int)q : (uint32_t)(uint8_t)(int)q;
            w |= b << (8 * i);
        }
        *(uint32_t *)((uint8_t *)p.y + base) = w;
        break;
    }
    }
}

__device__ __forceinline__ float round_to(float v, int t) {
    if (t == KC_QFG_F16) return __half2float(__float2half_rn(v));
    if (t == KC_QFG_BF16) return __bfloat162float(__float2bfloat16_rn(v));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void k_qln(kc_qln_args p) {
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= p.rows) return;
    int64_t base = row * p.len;
    float s = 0.0f;
    for (int64_t i = lane; i < p.len; i += 32) s += ld_any(p.x, base + i, p.x_type);
    float mean = warp_sum(s) / (float)p.len;
    float v = 0.0f;
    for (int64_t i = lane; i < p.len; i += 32) {
        float d = ld_any(p.x, base + i, p.x_type) - mean;
        v += d * d;
    }
    float inv = 1.0f / sqrtf(warp_sum(v) / (float)p.len + p.eps);
    bool s8 = p.y_type == KC_QFG_S8;
    float ys = p.ys[0], yz = ld_any(p.yz, 0, p.y_type);
    float lo = s8 ? -128.0f : 0.0f, hi = s8 ? 127.0f : 255.0f;
    for (int64_t i = lane; i < p.len; i += 32) {
        float t = (ld_any(p.x, base + i, p.x_type) - mean) * inv * ld_any(p.scale, i, p.p_type);
        if (p.bias) t += ld_any(p.bias, i, p.p_type);
        t = round_to(t, p.x_type);
        float q = __fadd_rn(rintf(__fdiv_rn(t, ys)), yz);
        q = q < lo ? lo : q > hi ? hi : q;
        if (q != q) q = lo;
        if (s8) ((int8_t *)p.y)[base + i] = (int8_t)(int)q;
        else ((uint8_t *)p.y)[base + i] = (uint8_t)(int)q;
    }
}

bool aligned(const void *p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

} // namespace

extern "C" cudaError_t kc_qfg_epilogue(const kc_qfg_epi *p, cudaStream_t s) {
    if (p->rows <= 0 || p->n <= 0) return cudaSuccess;
    int yb = p->y_type == KC_QFG_F32 ? 16 : p->y_type == KC_QFG_S8 || p->y_type == KC_QFG_U8 ? 4
                                                                                            : 8;
    if (p->n % 4 || p->ldacc % 4 || !aligned(p->acc, 16) || !aligned(p->y, (uintptr_t)yb) ||
        (p->scale_vec && !aligned(p->scale, 16)) ||
        (p->bias && p->bias_vec && !aligned(p->bias, 16)) || p->y_type == KC_QFG_NONE ||
        ((p->res_type == KC_QFG_S8 || p->res_type == KC_QFG_U8) && !p->rs))
        return cudaErrorInvalidValue;
    int64_t threads = p->rows * (p->n / 4);
    k_qfg_epi<<<kc_blocks(threads, 256), 256, 0, s>>>(*p);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_qln(const kc_qln_args *p, cudaStream_t s) {
    if (p->rows <= 0 || p->len <= 0) return cudaSuccess;
    if ((p->y_type != KC_QFG_S8 && p->y_type != KC_QFG_U8) || p->x_type < KC_QFG_F32 ||
        p->x_type > KC_QFG_BF16 || p->p_type < KC_QFG_F32 || p->p_type > KC_QFG_BF16)
        return cudaErrorInvalidValue;
    k_qln<<<kc_blocks(p->rows * 32, 256), 256, 0, s>>>(*p);
    return cudaGetLastError();
}
