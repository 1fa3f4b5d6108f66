// nhwc.cu: the channels-last kernels (C seam in nhwc_kernels.h).
// Layout conversions are tiled transposes of each image's [C, H*W] matrix
// through a 32x32 shared-memory tile (+1 column against bank conflicts), so
// both the read and the write are coalesced; they copy bits (2- or 4-byte
// elements), so a conversion is exact for every type. Epilogue, pooling and
// the global average put consecutive threads on consecutive channels (the
// contiguous dim in NHWC) and compute in float32; for 2-byte types with
// C % 8 == 0 and 16-byte aligned pointers each thread takes 8 channels
// through one 16-byte load/store (the ResNet layers), else one channel.
#include "nhwc_kernels.h"
#include "gemm_act.cuh"

#include <stdint.h>

namespace {

constexpr int TILE = 32, ROWS = 8;

// x: [n][c][hw] -> y: [n][hw][cp]; blockIdx.x: hw tile, y: channel tile,
// z: images (grid-stride).
template <typename U>
__global__ void k_to_nhwc(const U *__restrict__ x, U *__restrict__ y, int64_t n, int64_t c,
                          int64_t hw, int64_t cp) {
    __shared__ U tile[TILE][TILE + 1];
    int64_t p0 = (int64_t)blockIdx.x * TILE, c0 = (int64_t)blockIdx.y * TILE;
    for (int64_t img = blockIdx.z; img < n; img += gridDim.z) {
        const U *xi = x + img * c * hw;
        U *yi = y + img * hw * cp;
        for (int j = 0; j < TILE; j += ROWS) {
            int64_t ch = c0 + threadIdx.y + j, p = p0 + threadIdx.x;
            tile[threadIdx.y + j][threadIdx.x] = ch < c && p < hw ? xi[ch * hw + p] : U(0);
        }
        __syncthreads();
        for (int j = 0; j < TILE; j += ROWS) {
            int64_t p = p0 + threadIdx.y + j, ch = c0 + threadIdx.x;
            if (p < hw && ch < cp) yi[p * cp + ch] = tile[threadIdx.x][threadIdx.y + j];
        }
        __syncthreads();
    }
}

// x: [n][hw][c] -> y: [n][c][hw]; blockIdx.x: hw tile, y: channel tile.
template <typename U>
__global__ void k_to_nchw(const U *__restrict__ x, U *__restrict__ y, int64_t n, int64_t c,
                          int64_t hw) {
    __shared__ U tile[TILE][TILE + 1];
    int64_t p0 = (int64_t)blockIdx.x * TILE, c0 = (int64_t)blockIdx.y * TILE;
    for (int64_t img = blockIdx.z; img < n; img += gridDim.z) {
        const U *xi = x + img * hw * c;
        U *yi = y + img * c * hw;
        for (int j = 0; j < TILE; j += ROWS) {
            int64_t p = p0 + threadIdx.y + j, ch = c0 + threadIdx.x;
            if (p < hw && ch < c) tile[threadIdx.y + j][threadIdx.x] = xi[p * c + ch];
        }
        __syncthreads();
        for (int j = 0; j < TILE; j += ROWS) {
            int64_t ch = c0 + threadIdx.y + j, p = p0 + threadIdx.x;
            if (ch < c && p < hw) yi[ch * hw + p] = tile[threadIdx.x][threadIdx.y + j];
        }
        __syncthreads();
    }
}

bool transpose_grid(int64_t n, int64_t hw, int64_t ch, dim3 *g) {
    int64_t gx = (hw + TILE - 1) / TILE, gy = (ch + TILE - 1) / TILE;
    if (gx < 1 || gy < 1 || gx > 0x7fffffffLL || gy > 65535) return false;
    g->x = (unsigned)gx;
    g->y = (unsigned)gy;
    g->z = (unsigned)(n < 65535 ? n : 65535);
    return true;
}

// 8 consecutive 2-byte elements through one 16-byte access.
template <typename T> struct vec8 {
    uint4 raw;
    __device__ __forceinline__ float get(int k) const {
        return kc_ld(reinterpret_cast<const T *>(&raw), k);
    }
    __device__ __forceinline__ void set(int k, float v) { kc_st(reinterpret_cast<T *>(&raw), k, v); }
};

template <typename T> __device__ __forceinline__ vec8<T> ld8(const T *p) {
    vec8<T> v;
    v.raw = *reinterpret_cast<const uint4 *>(p);
    return v;
}

template <typename T> __device__ __forceinline__ void st8(T *p, const vec8<T> &v) {
    *reinterpret_cast<uint4 *>(p) = v.raw;
}

bool aligned16(const void *a, const void *b, const void *c) {
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15) == 0;
}

// Vector forms: c % 8 == 0, 2-byte T, 16-byte aligned pointers.
template <typename T>
__global__ void k_epilogue8(T *y, int64_t count, int64_t c, const T *bias, const T *z,
                            kc_act act) {
    int64_t n8 = count / 8, c8 = c / 8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8;
         i += (int64_t)gridDim.x * blockDim.x) {
        vec8<T> v = ld8(y + i * 8), b, r;
        if (bias) b = ld8(bias + (i % c8) * 8);
        if (z) r = ld8(z + i * 8);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float f = v.get(k);
            if (bias) f += b.get(k);
            if (z) f += r.get(k);
            v.set(k, kc_apply_act(act, f));
        }
        st8(y + i * 8, v);
    }
}

template <typename T>
__global__ void k_pool8(const T *__restrict__ x, T *__restrict__ y, kc_nhwc_pool_geom g) {
    int64_t c8 = g.c / 8, total = g.n * g.oh * g.ow * c8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t cv = i % c8, r = i / c8;
        int64_t q = r % g.ow;
        r /= g.ow;
        int64_t p = r % g.oh, img = r / g.oh;
        int64_t y0 = p * g.sh - g.pt, x0 = q * g.sw - g.pl;
        const T *xi = x + img * g.h * g.w * g.c + cv * 8;
        float acc[8];
#pragma unroll
        for (int k = 0; k < 8; k++) acc[k] = g.max ? -INFINITY : 0.0f;
        int cnt = 0;
        for (int a = 0; a < g.kh; a++) {
            int64_t iy = y0 + (int64_t)a * g.dh;
            bool yin = iy >= 0 && iy < g.h;
            bool ypad = iy >= -g.pt && iy < g.h + g.pb;
            for (int b = 0; b < g.kw; b++) {
                int64_t ix = x0 + (int64_t)b * g.dw;
                if (yin && ix >= 0 && ix < g.w) {
                    vec8<T> v = ld8(xi + (iy * g.w + ix) * g.c);
#pragma unroll
                    for (int k = 0; k < 8; k++) {
                        float f = v.get(k);
                        if (g.max) acc[k] = f > acc[k] || f != f ? f : acc[k];
                        else acc[k] += f;
                    }
                    cnt++;
                } else if (!g.max && g.include_pad && ypad && ix >= -g.pl && ix < g.w + g.pr) {
                    cnt++;
                }
            }
        }
        vec8<T> o;
#pragma unroll
        for (int k = 0; k < 8; k++)
            o.set(k, g.max ? acc[k] : cnt > 0 ? acc[k] / (float)cnt : 0.0f);
        st8(y + i * 8, o);
    }
}

template <typename T>
__global__ void k_gap8(const T *__restrict__ x, T *__restrict__ y, int64_t n, int64_t hw,
                       int64_t c) {
    int64_t c8 = c / 8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * c8;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t cv = i % c8, img = i / c8;
        const T *xi = x + img * hw * c + cv * 8;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t p = 0; p < hw; p++) {
            vec8<T> v = ld8(xi + p * c);
#pragma unroll
            for (int k = 0; k < 8; k++) acc[k] += v.get(k);
        }
        vec8<T> o;
#pragma unroll
        for (int k = 0; k < 8; k++) o.set(k, hw > 0 ? acc[k] / (float)hw : 0.0f);
        st8(y + img * c + cv * 8, o);
    }
}

template <typename T>
__global__ void k_epilogue(T *y, int64_t count, int64_t c, const T *bias, const T *z,
                           kc_act act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = kc_ld(y, i);
        if (bias) v += kc_ld(bias, i % c);
        if (z) v += kc_ld(z, i);
        kc_st(y, i, kc_apply_act(act, v));
    }
}

template <typename T>
__global__ void k_pool(const T *__restrict__ x, T *__restrict__ y, kc_nhwc_pool_geom g) {
    int64_t total = g.n * g.oh * g.ow * g.c;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % g.c, r = i / g.c;
        int64_t q = r % g.ow;
        r /= g.ow;
        int64_t p = r % g.oh, img = r / g.oh;
        int64_t y0 = p * g.sh - g.pt, x0 = q * g.sw - g.pl;
        const T *xi = x + img * g.h * g.w * g.c + ch;
        float acc = g.max ? -INFINITY : 0.0f;
        int cnt = 0;
        for (int a = 0; a < g.kh; a++) {
            int64_t iy = y0 + (int64_t)a * g.dh;
            bool yin = iy >= 0 && iy < g.h;
            bool ypad = iy >= -g.pt && iy < g.h + g.pb;
            for (int b = 0; b < g.kw; b++) {
                int64_t ix = x0 + (int64_t)b * g.dw;
                if (yin && ix >= 0 && ix < g.w) {
                    float v = kc_ld(xi, (iy * g.w + ix) * g.c);
                    if (g.max) acc = v > acc || v != v ? v : acc;
                    else acc += v;
                    cnt++;
                } else if (!g.max && g.include_pad && ypad && ix >= -g.pl && ix < g.w + g.pr) {
                    cnt++;
                }
            }
        }
        float out = g.max ? acc : cnt > 0 ? acc / (float)cnt : 0.0f;
        kc_st(y, i, out);
    }
}

template <typename T>
__global__ void k_gap(const T *__restrict__ x, T *__restrict__ y, int64_t n, int64_t hw,
                      int64_t c) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * c;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % c, img = i / c;
        const T *xi = x + img * hw * c + ch;
        float acc = 0.0f;
        for (int64_t p = 0; p < hw; p++) acc += kc_ld(xi, p * c);
        kc_st(y, i, hw > 0 ? acc / (float)hw : 0.0f);
    }
}

} // namespace

extern "C" cudaError_t kc_nchw_to_nhwc(int es, const void *x, void *y, int64_t n, int64_t c,
                                       int64_t h, int64_t w, int64_t cp, cudaStream_t s) {
    int64_t hw = h * w;
    if (n <= 0 || hw <= 0 || cp <= 0) return cudaSuccess;
    if (cp < c) return cudaErrorInvalidValue;
    dim3 g, b(TILE, ROWS);
    if (!transpose_grid(n, hw, cp, &g)) return cudaErrorInvalidValue;
    if (es == 1)
        k_to_nhwc<uint8_t><<<g, b, 0, s>>>((const uint8_t *)x, (uint8_t *)y, n, c, hw, cp);
    else if (es == 2)
        k_to_nhwc<uint16_t><<<g, b, 0, s>>>((const uint16_t *)x, (uint16_t *)y, n, c, hw, cp);
    else if (es == 4)
        k_to_nhwc<uint32_t><<<g, b, 0, s>>>((const uint32_t *)x, (uint32_t *)y, n, c, hw, cp);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

extern "C" cudaError_t kc_nhwc_to_nchw(int es, const void *x, void *y, int64_t n, int64_t c,
                                       int64_t h, int64_t w, cudaStream_t s) {
    int64_t hw = h * w;
    if (n <= 0 || hw <= 0 || c <= 0) return cudaSuccess;
    dim3 g, b(TILE, ROWS);
    if (!transpose_grid(n, hw, c, &g)) return cudaErrorInvalidValue;
    if (es == 1)
        k_to_nchw<uint8_t><<<g, b, 0, s>>>((const uint8_t *)x, (uint8_t *)y, n, c, hw);
    else if (es == 2)
        k_to_nchw<uint16_t><<<g, b, 0, s>>>((const uint16_t *)x, (uint16_t *)y, n, c, hw);
    else if (es == 4)
        k_to_nchw<uint32_t><<<g, b, 0, s>>>((const uint32_t *)x, (uint32_t *)y, n, c, hw);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}

extern "C" cudaError_t kc_nhwc_epilogue(int dtype, void *y, int64_t count, int64_t c,
                                        const void *bias, const void *z, kc_act act,
                                        cudaStream_t s) {
    if (count <= 0) return cudaSuccess;
    if (c < 1) return cudaErrorInvalidValue;
    unsigned g = kc_blocks(count, 256);
    bool v8 = c % 8 == 0 && dtype != KC_F32 && aligned16(y, bias, z);
    unsigned g8 = kc_blocks(count / 8, 256);
    if (v8 && dtype == KC_F16)
        k_epilogue8<__half><<<g8, 256, 0, s>>>((__half *)y, count, c, (const __half *)bias,
                                               (const __half *)z, act);
    else if (v8)
        k_epilogue8<__nv_bfloat16><<<g8, 256, 0, s>>>((__nv_bfloat16 *)y, count, c,
                                                      (const __nv_bfloat16 *)bias,
                                                      (const __nv_bfloat16 *)z, act);
    if (v8) return cudaGetLastError();
    switch (dtype) {
    case KC_F32:
        k_epilogue<float><<<g, 256, 0, s>>>((float *)y, count, c, (const float *)bias,
                                            (const float *)z, act);
        break;
    case KC_F16:
        k_epilogue<__half><<<g, 256, 0, s>>>((__half *)y, count, c, (const __half *)bias,
                                             (const __half *)z, act);
        break;
    case KC_BF16:
        k_epilogue<__nv_bfloat16><<<g, 256, 0, s>>>((__nv_bfloat16 *)y, count, c,
                                                    (const __nv_bfloat16 *)bias,
                                                    (const __nv_bfloat16 *)z, act);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_nhwc_pool(int dtype, const void *x, void *y,
                                    const kc_nhwc_pool_geom *g, cudaStream_t s) {
    int64_t total = g->n * g->oh * g->ow * g->c;
    if (total <= 0) return cudaSuccess;
    if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1)
        return cudaErrorInvalidValue;
    unsigned b = kc_blocks(total, 256);
    if (g->c % 8 == 0 && dtype != KC_F32 && aligned16(x, y, NULL)) {
        unsigned b8 = kc_blocks(total / 8, 256);
        if (dtype == KC_F16)
            k_pool8<__half><<<b8, 256, 0, s>>>((const __half *)x, (__half *)y, *g);
        else if (dtype == KC_BF16)
            k_pool8<__nv_bfloat16><<<b8, 256, 0, s>>>((const __nv_bfloat16 *)x,
                                                      (__nv_bfloat16 *)y, *g);
        else
            return cudaErrorInvalidValue;
        return cudaGetLastError();
    }
    switch (dtype) {
    case KC_F32: k_pool<float><<<b, 256, 0, s>>>((const float *)x, (float *)y, *g); break;
    case KC_F16: k_pool<__half><<<b, 256, 0, s>>>((const __half *)x, (__half *)y, *g); break;
    case KC_BF16:
        k_pool<__nv_bfloat16><<<b, 256, 0, s>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                                *g);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_nhwc_global_avg(int dtype, const void *x, void *y, int64_t n,
                                          int64_t hw, int64_t c, cudaStream_t s) {
    if (n <= 0 || c <= 0) return cudaSuccess;
    unsigned b = kc_blocks(n * c, 128);
    if (c % 8 == 0 && dtype != KC_F32 && aligned16(x, y, NULL)) {
        unsigned b8 = kc_blocks(n * c / 8, 128);
        if (dtype == KC_F16)
            k_gap8<__half><<<b8, 128, 0, s>>>((const __half *)x, (__half *)y, n, hw, c);
        else if (dtype == KC_BF16)
            k_gap8<__nv_bfloat16><<<b8, 128, 0, s>>>((const __nv_bfloat16 *)x,
                                                     (__nv_bfloat16 *)y, n, hw, c);
        else
            return cudaErrorInvalidValue;
        return cudaGetLastError();
    }
    switch (dtype) {
    case KC_F32: k_gap<float><<<b, 128, 0, s>>>((const float *)x, (float *)y, n, hw, c); break;
    case KC_F16:
        k_gap<__half><<<b, 128, 0, s>>>((const __half *)x, (__half *)y, n, hw, c);
        break;
    case KC_BF16:
        k_gap<__nv_bfloat16><<<b, 128, 0, s>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y, n,
                                               hw, c);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
