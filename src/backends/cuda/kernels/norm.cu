// norm.cu: normalization kernels. A block per row: pass 1 the mean (or mean
// of squares), pass 2 the centred variance, pass 3 the output; the row is
// read from DRAM once and from L1/L2 after. Statistics in float32. Rows of
// transformer width take a register-resident path (a block or a warp per
// row, see below).
#include <type_traits>
#include "kc_device.cuh"
#include "norm_kernels.h"

__device__ __forceinline__ int64_t kn_pidx(const kc_norm &p, int64_t r, int64_t s) {
    switch (p.mode) {
    case KN_TRAIL: return p.pmod == p.len ? s : (r * p.len + s) % p.pmod;
    case KN_ROW: return r % p.pmod;
    default: return (r % p.groups) * p.cpg + s / p.inner;
    }
}

// Element types by runtime code: X and Y may differ (RMSNormalization's Y
// takes the scale's type), and the loads are not the bottleneck here.
__global__ void k_rownorm(const __grid_constant__ kc_norm p) {
    __shared__ float sh[32];
    float inv_len = p.len ? 1.0f / (float)p.len : 0.0f;
    for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
        int64_t base = r * p.len;
        float mean = 0, var;
        if (p.rms) {
            float q = 0;
            for (int64_t s = threadIdx.x; s < p.len; s += blockDim.x) {
                float v = kc_ldf(p.x, base + s, p.dt_x);
                q += v * v;
            }
            var = kc_block_sum(q, sh) * inv_len;
        } else {
            float a = 0;
            for (int64_t s = threadIdx.x; s < p.len; s += blockDim.x) a += kc_ldf(p.x, base + s, p.dt_x);
            mean = kc_block_sum(a, sh) * inv_len;
            float q = 0;
            for (int64_t s = threadIdx.x; s < p.len; s += blockDim.x) {
                float d = kc_ldf(p.x, base + s, p.dt_x) - mean;
                q += d * d;
            }
            var = kc_block_sum(q, sh) * inv_len;
        }
        float inv = 1.0f / sqrtf(var + p.eps);
        for (int64_t s = threadIdx.x; s < p.len; s += blockDim.x) {
            int64_t k = kn_pidx(p, r, s);
            float t = (kc_ldf(p.x, base + s, p.dt_x) - mean) * inv * kc_ldf(p.scale, k, p.dt_scale);
            if (p.bias) {
                int64_t kb = k;
                if (p.mode == KN_TRAIL && p.bmod != p.pmod)
                    kb = p.bmod == p.len ? s : (base + s) % p.bmod;
                t += kc_ldf(p.bias, kb, p.dt_bias);
            }
            kc_stf(p.y, base + s, p.dt_y, t);
        }
        if (threadIdx.x == 0) {
            if (p.mean_out) kc_stf(p.mean_out, r, p.dt_mean, mean);
            if (p.inv_out) kc_stf(p.inv_out, r, p.dt_inv, inv);
        }
    }
}

// The LayerNorm/RMSNorm shape of transformers (BERT, GPT-2, ViT): X, Y,
// scale and bias of one type, parameters over exactly the row, row length a
// multiple of 4 up to 4096. A thread keeps four elements of the row in
// registers (one vector load), so the row is read once.
template <class T>
__global__ void k_rownorm_vec(const __grid_constant__ kc_norm p) {
    __shared__ float sh[32];
    int64_t nv = p.len / 4;
    int g = threadIdx.x;
    bool act = g < nv;
    float sc[4] = {0, 0, 0, 0}, bi[4] = {0, 0, 0, 0};
    if (act) {
        kc_ld4((const T *)p.scale, g, sc);
        if (p.bias) kc_ld4((const T *)p.bias, g, bi);
    }
    float inv_len = 1.0f / (float)p.len;
    for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
        float v[4] = {0, 0, 0, 0};
        if (act) kc_ld4((const T *)p.x + r * p.len, g, v);
        float mean = 0, var;
        if (p.rms) {
            var = kc_block_sum(v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3], sh) * inv_len;
        } else {
            mean = kc_block_sum((v[0] + v[1]) + (v[2] + v[3]), sh) * inv_len;
            float q = 0;
            if (act) {
#pragma unroll
                for (int k = 0; k < 4; k++) q += (v[k] - mean) * (v[k] - mean);
            }
            var = kc_block_sum(q, sh) * inv_len;
        }
        float inv = 1.0f / sqrtf(var + p.eps);
        if (act) {
#pragma unroll
            for (int k = 0; k < 4; k++) v[k] = (v[k] - mean) * inv * sc[k] + bi[k];
            kc_st4((T *)p.y + r * p.len, g, v);
        }
        if (threadIdx.x == 0) {
            if (p.mean_out) kc_stf(p.mean_out, r, p.dt_mean, mean);
            if (p.inv_out) kc_stf(p.inv_out, r, p.dt_inv, inv);
        }
    }
}

// Rows of 128 to 1024 elements, a multiple of 128 (BERT's 768): a warp per
// row, NG groups of four per lane held in registers, reductions by warp
// shuffles only (no block barriers, four rows per block), so short rows do
// not leave most of a block waiting at __syncthreads.
template <class T, int NG>
__global__ void __launch_bounds__(128) k_rownorm_warp(const __grid_constant__ kc_norm p) {
    const int lane = threadIdx.x & 31;
    const float inv_len = 1.0f / (float)p.len;
    const int64_t step = (int64_t)gridDim.x * 4;
    for (int64_t r = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5); r < p.rows; r += step) {
        const T *x = (const T *)p.x + r * p.len;
        float v[NG][4];
        float a = 0;
#pragma unroll
        for (int g = 0; g < NG; g++) {
            kc_ld4(x, lane + 32 * g, v[g]);
            a += (v[g][0] + v[g][1]) + (v[g][2] + v[g][3]);
        }
        const float mean = p.rms ? 0.0f : kc_warp_sum(a) * inv_len;
        float q = 0;
#pragma unroll
        for (int g = 0; g < NG; g++)
#pragma unroll
            for (int k = 0; k < 4; k++) q += (v[g][k] - mean) * (v[g][k] - mean);
        const float inv = 1.0f / sqrtf(kc_warp_sum(q) * inv_len + p.eps);
        T *y = (T *)p.y + r * p.len;
#pragma unroll
        for (int g = 0; g < NG; g++) {
            float sc[4], bi[4] = {0, 0, 0, 0}, o[4];
            kc_ld4((const T *)p.scale, lane + 32 * g, sc);
            if (p.bias) kc_ld4((const T *)p.bias, lane + 32 * g, bi);
#pragma unroll
            for (int k = 0; k < 4; k++) o[k] = (v[g][k] - mean) * inv * sc[k] + bi[k];
            kc_st4(y, lane + 32 * g, o);
        }
        if (lane == 0) {
            if (p.mean_out) kc_stf(p.mean_out, r, p.dt_mean, mean);
            if (p.inv_out) kc_stf(p.inv_out, r, p.dt_inv, inv);
        }
    }
}

// The same warp-per-row form for 16-bit rows of 256 to 2048 elements, a
// multiple of 256 (BERT's 768): each lane loads eight elements at a time
// (one 16-byte vector), so a 768-wide FP16 row is three loads a lane instead
// of six. Rows, scale and bias 16-byte aligned.
__device__ __forceinline__ void kn_unpack8(uint4 q, float *f, bool bf) {
    const unsigned w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (bf) {
            f[2 * i] = kc_from_bits<__nv_bfloat16>((unsigned short)(w[i] & 0xffffu));
            f[2 * i + 1] = kc_from_bits<__nv_bfloat16>((unsigned short)(w[i] >> 16));
        } else {
            f[2 * i] = kc_from_bits<__half>((unsigned short)(w[i] & 0xffffu));
            f[2 * i + 1] = kc_from_bits<__half>((unsigned short)(w[i] >> 16));
        }
    }
}

template <class T, int NG>
__global__ void __launch_bounds__(128) k_rownorm_warp8(const __grid_constant__ kc_norm p) {
    constexpr bool kBf = sizeof(T) == 2 && !std::is_same<T, __half>::value;
    const int lane = threadIdx.x & 31;
    const float inv_len = 1.0f / (float)p.len;
    const int64_t step = (int64_t)gridDim.x * 4;
    for (int64_t r = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5); r < p.rows; r += step) {
        const uint4 *x = (const uint4 *)((const T *)p.x + r * p.len);
        float v[NG][8];
        uint4 q[NG];
#pragma unroll
        for (int g = 0; g < NG; g++) q[g] = x[lane + 32 * g];  // all loads first
        float a = 0;
#pragma unroll
        for (int g = 0; g < NG; g++) {
            kn_unpack8(q[g], v[g], kBf);
#pragma unroll
            for (int k = 0; k < 8; k += 2) a += v[g][k] + v[g][k + 1];
        }
        const float mean = p.rms ? 0.0f : kc_warp_sum(a) * inv_len;
        float sq = 0;
#pragma unroll
        for (int g = 0; g < NG; g++)
#pragma unroll
            for (int k = 0; k < 8; k++) sq += (v[g][k] - mean) * (v[g][k] - mean);
        const float inv = 1.0f / sqrtf(kc_warp_sum(sq) * inv_len + p.eps);
        uint4 *y = (uint4 *)((T *)p.y + r * p.len);
#pragma unroll
        for (int g = 0; g < NG; g++) {
            float sc[8], bi[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            kn_unpack8(__ldg((const uint4 *)p.scale + lane + 32 * g), sc, kBf);
            if (p.bias) kn_unpack8(__ldg((const uint4 *)p.bias + lane + 32 * g), bi, kBf);
            unsigned o[4];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const float lo = (v[g][2 * k] - mean) * inv * sc[2 * k] + bi[2 * k];
                const float hi = (v[g][2 * k + 1] - mean) * inv * sc[2 * k + 1] + bi[2 * k + 1];
                o[k] = kc_to_bits<T>(lo) | (kc_to_bits<T>(hi) << 16);
            }
            y[lane + 32 * g] = make_uint4(o[0], o[1], o[2], o[3]);
        }
        if (lane == 0) {
            if (p.mean_out) kc_stf(p.mean_out, r, p.dt_mean, mean);
            if (p.inv_out) kc_stf(p.inv_out, r, p.dt_inv, inv);
        }
    }
}

template <class T>
static cudaError_t kn_warp8_launch(const kc_norm *p, cudaStream_t st) {
    int64_t nb = (p->rows + 3) / 4;
    unsigned b = nb > 65535LL * 16 ? 65535u * 16u : (unsigned)nb;
    switch (p->len / 256) {
    case 1: k_rownorm_warp8<T, 1><<<b, 128, 0, st>>>(*p); break;
    case 2: k_rownorm_warp8<T, 2><<<b, 128, 0, st>>>(*p); break;
    case 3: k_rownorm_warp8<T, 3><<<b, 128, 0, st>>>(*p); break;
    case 4: k_rownorm_warp8<T, 4><<<b, 128, 0, st>>>(*p); break;
    case 5: k_rownorm_warp8<T, 5><<<b, 128, 0, st>>>(*p); break;
    case 6: k_rownorm_warp8<T, 6><<<b, 128, 0, st>>>(*p); break;
    case 7: k_rownorm_warp8<T, 7><<<b, 128, 0, st>>>(*p); break;
    case 8: k_rownorm_warp8<T, 8><<<b, 128, 0, st>>>(*p); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

template <class T>
static cudaError_t kn_warp_launch(const kc_norm *p, cudaStream_t st) {
    int64_t nb = (p->rows + 3) / 4;
    unsigned b = nb > 65535LL * 16 ? 65535u * 16u : (unsigned)nb;
    switch (p->len / 128) {
    case 1: k_rownorm_warp<T, 1><<<b, 128, 0, st>>>(*p); break;
    case 2: k_rownorm_warp<T, 2><<<b, 128, 0, st>>>(*p); break;
    case 3: k_rownorm_warp<T, 3><<<b, 128, 0, st>>>(*p); break;
    case 4: k_rownorm_warp<T, 4><<<b, 128, 0, st>>>(*p); break;
    case 5: k_rownorm_warp<T, 5><<<b, 128, 0, st>>>(*p); break;
    case 6: k_rownorm_warp<T, 6><<<b, 128, 0, st>>>(*p); break;
    case 7: k_rownorm_warp<T, 7><<<b, 128, 0, st>>>(*p); break;
    case 8: k_rownorm_warp<T, 8><<<b, 128, 0, st>>>(*p); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

static bool kn_vec_ok(const kc_norm *p) {
    size_t al = p->dt_x == KC_F32 ? 16 : 8;
    bool same = p->dt_y == p->dt_x && p->dt_scale == p->dt_x && (!p->bias || p->dt_bias == p->dt_x);
    bool fl = p->dt_x == KC_F32 || p->dt_x == KC_F16 || p->dt_x == KC_BF16;
    bool aligned = (uintptr_t)p->x % al == 0 && (uintptr_t)p->y % al == 0 &&
                   (uintptr_t)p->scale % al == 0 && (uintptr_t)p->bias % al == 0;
    return same && fl && aligned && p->mode == KN_TRAIL && p->pmod == p->len &&
           (!p->bias || p->bmod == p->len) && p->len > 0 && p->len % 4 == 0 && p->len <= 4096;
}

// 16-byte rows for the warp8 kernel: 16-bit types, rows of 256..2048
// elements by 256, every operand 16-byte aligned. p->vec16 (set by the tactic
// from KILN_CUDA_LN16=1) asks for it; otherwise the 8-byte kernel runs.
static bool kn_vec16_ok(const kc_norm *p) {
    return kn_vec_ok(p) && p->dt_x != KC_F32 && p->len % 256 == 0 && p->len <= 2048 &&
           (uintptr_t)p->x % 16 == 0 && (uintptr_t)p->y % 16 == 0 &&
           (uintptr_t)p->scale % 16 == 0 && (uintptr_t)p->bias % 16 == 0;
}

extern "C" cudaError_t kc_rownorm(const kc_norm *p, cudaStream_t st) {
    if (p->rows <= 0) return cudaSuccess;
    if (p->vec16 && kn_vec16_ok(p)) {
        if (p->dt_x == KC_F16) return kn_warp8_launch<__half>(p, st);
        return kn_warp8_launch<__nv_bfloat16>(p, st);
    }
    if (kn_vec_ok(p) && p->len % 128 == 0 && p->len <= 1024) {
        if (p->dt_x == KC_F32) return kn_warp_launch<float>(p, st);
        if (p->dt_x == KC_F16) return kn_warp_launch<__half>(p, st);
        return kn_warp_launch<__nv_bfloat16>(p, st);
    }
    if (kn_vec_ok(p)) {
        unsigned b = p->rows > 65536 ? 65536u : (unsigned)p->rows;
        int t = (int)((p->len / 4 + 31) / 32 * 32);
        if (p->dt_x == KC_F32) k_rownorm_vec<float><<<b, t, 0, st>>>(*p);
        else if (p->dt_x == KC_F16) k_rownorm_vec<__half><<<b, t, 0, st>>>(*p);
        else k_rownorm_vec<__nv_bfloat16><<<b, t, 0, st>>>(*p);
        return cudaGetLastError();
    }
    unsigned b = p->rows > 65536 ? 65536u : (unsigned)p->rows;
    int t = p->len <= 256 ? 64 : p->len <= 1024 ? 128 : p->len <= 4096 ? 256 : 512;
    k_rownorm<<<b, t, 0, st>>>(*p);
    return cudaGetLastError();
}

template <class T, class I>
__global__ void k_batchnorm(int dts, I total, I C, I inner, float eps, const T *x,
                            const void *sc, const void *bi, const void *mean, const void *var,
                            T *y) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total;
         i += (I)gridDim.x * blockDim.x) {
        I c = (i / inner) % C;
        float k = kc_ldf(sc, c, dts) / sqrtf(kc_ldf(var, c, dts) + eps);
        y[i] = kc_to<T>((kc_f(x[i]) - kc_ldf(mean, c, dts)) * k + kc_ldf(bi, c, dts));
    }
}

template <class T>
static void kc_bn_t(int dts, int64_t total, int64_t C, int64_t inner, float eps, const void *x,
                    const void *sc, const void *bi, const void *m, const void *v, void *y,
                    cudaStream_t st) {
    unsigned b = kc_blocks(total, 256);
    if (total < ((int64_t)1 << 31))
        k_batchnorm<T, uint32_t><<<b, 256, 0, st>>>(dts, (uint32_t)total, (uint32_t)C,
                                                    (uint32_t)inner, eps, (const T *)x, sc, bi,
                                                    m, v, (T *)y);
    else
        k_batchnorm<T, int64_t><<<b, 256, 0, st>>>(dts, total, C, inner, eps, (const T *)x, sc,
                                                   bi, m, v, (T *)y);
}

extern "C" cudaError_t kc_batchnorm(int dt, int dts, int64_t total, int64_t C, int64_t inner,
                                    float eps, const void *x, const void *sc, const void *bi,
                                    const void *m, const void *v, void *y, cudaStream_t st) {
    if (total <= 0) return cudaSuccess;
    switch (dt) {
    case KC_F32: kc_bn_t<float>(dts, total, C, inner, eps, x, sc, bi, m, v, y, st); break;
    case KC_F16: kc_bn_t<__half>(dts, total, C, inner, eps, x, sc, bi, m, v, y, st); break;
    case KC_BF16: kc_bn_t<__nv_bfloat16>(dts, total, C, inner, eps, x, sc, bi, m, v, y, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
