// conv_direct.cu: the convolution family's own kernels: the epilogue that
// adds bias / residual and applies activations cuDNN does not fuse, and a
// direct depthwise convolution (MobileNet / EfficientNet blocks) with the
// bias, residual and activation fused. One thread per output element,
// consecutive threads along the output row (coalesced), f32 accumulation;
// 3x3 and 5x5 filters get unrolled instantiations.
#include "conv_kernels.h"
#include "gemm_act.cuh"

template <typename T>
__global__ void k_conv_epilogue(T *y, int64_t n, int64_t inner, int64_t m, const T *bias,
                                const T *z, kc_act act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = kc_ld(y, i);
        if (bias) v += kc_ld(bias, (i / inner) % m);
        if (z) v += kc_ld(z, i);
        kc_st(y, i, kc_apply_act(act, v));
    }
}

extern "C" cudaError_t kc_conv_epilogue(int dtype, void *y, int64_t n, int64_t inner,
                                        int64_t m, const void *bias, const void *z, kc_act act,
                                        cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (inner < 1) inner = 1;
    if (m < 1) m = 1;
    unsigned g = kc_blocks(n, 256);
    switch (dtype) {
    case KC_F32:
        k_conv_epilogue<float><<<g, 256, 0, s>>>((float *)y, n, inner, m, (const float *)bias,
                                                 (const float *)z, act);
        break;
    case KC_F16:
        k_conv_epilogue<__half><<<g, 256, 0, s>>>((__half *)y, n, inner, m,
                                                  (const __half *)bias, (const __half *)z, act);
        break;
    case KC_BF16:
        k_conv_epilogue<__nv_bfloat16><<<g, 256, 0, s>>>(
            (__nv_bfloat16 *)y, n, inner, m, (const __nv_bfloat16 *)bias,
            (const __nv_bfloat16 *)z, act);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// KH/KW > 0: compile-time filter size (unrolled); 0: taken from g.
template <typename T, int KH, int KW>
__global__ void k_dwconv2d(const T *x, const T *w, const T *bias, const T *z, T *y,
                           kc_dw_geom g, kc_act act) {
    const int kh = KH > 0 ? KH : g.kh, kw = KW > 0 ? KW : g.kw;
    int64_t total = g.n * g.c * g.oh * g.ow;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = i % g.ow, r = i / g.ow;
        int64_t oy = r % g.oh;
        r /= g.oh;
        int64_t c = r % g.c; // r = n * C + c: the (n, c) plane
        const T *xp = x + r * g.h * g.w;
        const T *wp = w + c * (int64_t)kh * kw;
        int64_t iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
        float acc = 0.0f;
        // kh/kw are compile-time constants in the 3x3 / 5x5 instantiations,
        // so these loops unroll there.
        for (int a = 0; a < kh; a++) {
            int64_t iy = iy0 + (int64_t)a * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int b = 0; b < kw; b++) {
                int64_t ix = ix0 + (int64_t)b * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                acc += kc_ld(xp, iy * g.w + ix) * kc_ld(wp, (int64_t)a * kw + b);
            }
        }
        if (bias) acc += kc_ld(bias, c);
        if (z) acc += kc_ld(z, i);
        kc_st(y, i, kc_apply_act(act, acc));
    }
}

template <typename T>
static void dw_launch(const void *x, const void *w, const void *bias, const void *z, void *y,
                      const kc_dw_geom &g, kc_act act, cudaStream_t s) {
    int64_t total = g.n * g.c * g.oh * g.ow;
    unsigned blocks = kc_blocks(total, 256);
    const T *xp = (const T *)x, *wp = (const T *)w, *bp = (const T *)bias, *zp = (const T *)z;
    T *yp = (T *)y;
    if (g.kh == 3 && g.kw == 3)
        k_dwconv2d<T, 3, 3><<<blocks, 256, 0, s>>>(xp, wp, bp, zp, yp, g, act);
    else if (g.kh == 5 && g.kw == 5)
        k_dwconv2d<T, 5, 5><<<blocks, 256, 0, s>>>(xp, wp, bp, zp, yp, g, act);
    else
        k_dwconv2d<T, 0, 0><<<blocks, 256, 0, s>>>(xp, wp, bp, zp, yp, g, act);
}

extern "C" cudaError_t kc_dwconv2d(int dtype, const void *x, const void *w, const void *bias,
                                   const void *z, void *y, const kc_dw_geom *g, kc_act act,
                                   cudaStream_t s) {
    if (g->n * g->c * g->oh * g->ow <= 0) return cudaSuccess;
    switch (dtype) {
    case KC_F32: dw_launch<float>(x, w, bias, z, y, *g, act, s); break;
    case KC_F16: dw_launch<__half>(x, w, bias, z, y, *g, act, s); break;
    case KC_BF16: dw_launch<__nv_bfloat16>(x, w, bias, z, y, *g, act, s); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ------------------------------------------------------------ ConvTranspose
// Output-stationary: each thread finds, per spatial dim, the taps t whose
// input position q = (o + pb - t*d) / s is whole and inside the grid, and
// sums x * w over them and the group's input channels.
template <typename T>
__global__ void k_conv_transpose(const T *__restrict__ x, const T *__restrict__ w,
                                 const T *__restrict__ bias, T *__restrict__ y, kc_convt_geom g,
                                 int64_t total) {
    const int64_t img = g.img[0] * g.img[1] * g.img[2], grid = g.grid[0] * g.grid[1] * g.grid[2];
    const int64_t ksz = g.k[0] * g.k[1] * g.k[2], Cg = g.c / g.g, Mg = g.m / g.g;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t pos = i % img, nm = i / img, m = nm % g.m, n = nm / g.m;
        int64_t o[3];
        o[2] = pos % g.img[2];
        o[1] = (pos / g.img[2]) % g.img[1];
        o[0] = pos / (g.img[2] * g.img[1]);
        int64_t gi = m / Mg, ml = m - gi * Mg;
        const T *xg = x + (n * g.c + gi * Cg) * grid;
        const T *wg = w + (gi * Cg * Mg + ml) * ksz; // + ci * Mg * ksz + tap
        float acc = bias ? kc_ld(bias, m) : 0.0f;
        for (int64_t t0 = 0; t0 < g.k[0]; t0++) {
            int64_t a0 = o[0] + g.pb[0] - t0 * g.d[0];
            if (a0 < 0 || a0 % g.s[0]) continue;
            int64_t q0 = a0 / g.s[0];
            if (q0 >= g.grid[0]) continue;
            for (int64_t t1 = 0; t1 < g.k[1]; t1++) {
                int64_t a1 = o[1] + g.pb[1] - t1 * g.d[1];
                if (a1 < 0 || a1 % g.s[1]) continue;
                int64_t q1 = a1 / g.s[1];
                if (q1 >= g.grid[1]) continue;
                for (int64_t t2 = 0; t2 < g.k[2]; t2++) {
                    int64_t a2 = o[2] + g.pb[2] - t2 * g.d[2];
                    if (a2 < 0 || a2 % g.s[2]) continue;
                    int64_t q2 = a2 / g.s[2];
                    if (q2 >= g.grid[2]) continue;
                    int64_t xo = (q0 * g.grid[1] + q1) * g.grid[2] + q2;
                    int64_t wo = (t0 * g.k[1] + t1) * g.k[2] + t2;
                    for (int64_t ci = 0; ci < Cg; ci++)
                        acc += kc_ld(xg, ci * grid + xo) * kc_ld(wg, ci * Mg * ksz + wo);
                }
            }
        }
        kc_st(y, i, acc);
    }
}

extern "C" cudaError_t kc_conv_transpose(int dtype, const void *x, const void *w,
                                         const void *bias, void *y, const kc_convt_geom *g,
                                         cudaStream_t s) {
    if (g->g < 1 || g->c % g->g || g->m % g->g) return cudaErrorInvalidValue;
    for (int a = 0; a < 3; a++)
        if (g->s[a] < 1 || g->d[a] < 1 || g->k[a] < 0) return cudaErrorInvalidValue;
    int64_t total = g->n * g->m * g->img[0] * g->img[1] * g->img[2];
    if (total <= 0) return cudaSuccess;
    unsigned b = kc_blocks(total, 128);
    switch (dtype) {
    case KC_F32:
        k_conv_transpose<float><<<b, 128, 0, s>>>((const float *)x, (const float *)w,
                                                  (const float *)bias, (float *)y, *g, total);
        break;
    case KC_F16:
        k_conv_transpose<__half><<<b, 128, 0, s>>>((const __half *)x, (const __half *)w,
                                                   (const __half *)bias, (__half *)y, *g, total);
        break;
    case KC_BF16:
        k_conv_transpose<__nv_bfloat16><<<b, 128, 0, s>>>(
            (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w, (const __nv_bfloat16 *)bias,
            (__nv_bfloat16 *)y, *g, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ------------------------------------------------------------ Col2Im
template <typename T>
__global__ void k_col2im(const T *__restrict__ x, T *__restrict__ y, kc_convt_geom g,
                         int64_t total) {
    const int64_t img = g.img[0] * g.img[1] * g.img[2], grid = g.grid[0] * g.grid[1] * g.grid[2];
    const int64_t ksz = g.k[0] * g.k[1] * g.k[2];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t pos = i % img, nc = i / img; // nc = n * C + c
        int64_t o[3];
        o[2] = pos % g.img[2];
        o[1] = (pos / g.img[2]) % g.img[1];
        o[0] = pos / (g.img[2] * g.img[1]);
        const T *xc = x + nc * ksz * grid;
        float acc = 0.0f;
        for (int64_t t0 = 0; t0 < g.k[0]; t0++) {
            int64_t a0 = o[0] + g.pb[0] - t0 * g.d[0];
            if (a0 < 0 || a0 % g.s[0] || a0 / g.s[0] >= g.grid[0]) continue;
            for (int64_t t1 = 0; t1 < g.k[1]; t1++) {
                int64_t a1 = o[1] + g.pb[1] - t1 * g.d[1];
                if (a1 < 0 || a1 % g.s[1] || a1 / g.s[1] >= g.grid[1]) continue;
                for (int64_t t2 = 0; t2 < g.k[2]; t2++) {
                    int64_t a2 = o[2] + g.pb[2] - t2 * g.d[2];
                    if (a2 < 0 || a2 % g.s[2] || a2 / g.s[2] >= g.grid[2]) continue;
                    int64_t q = (a0 / g.s[0] * g.grid[1] + a1 / g.s[1]) * g.grid[2] + a2 / g.s[2];
                    int64_t t = (t0 * g.k[1] + t1) * g.k[2] + t2;
                    acc += kc_ld(xc, t * grid + q);
                }
            }
        }
        kc_st(y, i, acc);
    }
}

extern "C" cudaError_t kc_col2im(int dtype, const void *x, void *y, const kc_convt_geom *g,
                                 cudaStream_t s) {
    for (int a = 0; a < 3; a++)
        if (g->s[a] < 1 || g->d[a] < 1 || g->k[a] < 0) return cudaErrorInvalidValue;
    int64_t total = g->n * g->c * g->img[0] * g->img[1] * g->img[2];
    if (total <= 0) return cudaSuccess;
    unsigned b = kc_blocks(total, 128);
    switch (dtype) {
    case KC_F32: k_col2im<float><<<b, 128, 0, s>>>((const float *)x, (float *)y, *g, total); break;
    case KC_F16: k_col2im<__half><<<b, 128, 0, s>>>((const __half *)x, (__half *)y, *g, total); break;
    case KC_BF16:
        k_col2im<__nv_bfloat16><<<b, 128, 0, s>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                                  *g, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ------------------------------------------------------------ direct conv
template <typename T>
__global__ void k_conv_direct(const T *__restrict__ x, const T *__restrict__ w,
                              const T *__restrict__ bias, const T *__restrict__ z,
                              T *__restrict__ y, kc_convt_geom g, kc_act act, int64_t total) {
    const int64_t img = g.img[0] * g.img[1] * g.img[2], grid = g.grid[0] * g.grid[1] * g.grid[2];
    const int64_t ksz = g.k[0] * g.k[1] * g.k[2], Cg = g.c / g.g, Mg = g.m / g.g;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t pos = i % grid, nm = i / grid, m = nm % g.m, n = nm / g.m;
        int64_t q[3];
        q[2] = pos % g.grid[2];
        q[1] = (pos / g.grid[2]) % g.grid[1];
        q[0] = pos / (g.grid[2] * g.grid[1]);
        const T *xg = x + (n * g.c + (m / Mg) * Cg) * img;
        const T *wm = w + m * Cg * ksz;
        float acc = 0.0f;
        for (int64_t t0 = 0; t0 < g.k[0]; t0++) {
            int64_t i0 = q[0] * g.s[0] - g.pb[0] + t0 * g.d[0];
            if (i0 < 0 || i0 >= g.img[0]) continue;
            for (int64_t t1 = 0; t1 < g.k[1]; t1++) {
                int64_t i1 = q[1] * g.s[1] - g.pb[1] + t1 * g.d[1];
                if (i1 < 0 || i1 >= g.img[1]) continue;
                for (int64_t t2 = 0; t2 < g.k[2]; t2++) {
                    int64_t i2 = q[2] * g.s[2] - g.pb[2] + t2 * g.d[2];
                    if (i2 < 0 || i2 >= g.img[2]) continue;
                    int64_t xo = (i0 * g.img[1] + i1) * g.img[2] + i2;
                    int64_t wo = (t0 * g.k[1] + t1) * g.k[2] + t2;
                    for (int64_t ci = 0; ci < Cg; ci++)
                        acc += kc_ld(xg, ci * img + xo) * kc_ld(wm, ci * ksz + wo);
                }
            }
        }
        if (bias) acc += kc_ld(bias, m);
        if (z) acc += kc_ld(z, i);
        kc_st(y, i, kc_apply_act(act, acc));
    }
}

extern "C" cudaError_t kc_conv_direct(int dtype, const void *x, const void *w, const void *bias,
                                      const void *z, void *y, const kc_convt_geom *g, kc_act act,
                                      cudaStream_t s) {
    if (g->g < 1 || g->c % g->g || g->m % g->g) return cudaErrorInvalidValue;
    for (int a = 0; a < 3; a++)
        if (g->s[a] < 1 || g->d[a] < 1 || g->k[a] < 0) return cudaErrorInvalidValue;
    int64_t total = g->n * g->m * g->grid[0] * g->grid[1] * g->grid[2];
    if (total <= 0) return cudaSuccess;
    unsigned b = kc_blocks(total, 128);
    switch (dtype) {
    case KC_F32:
        k_conv_direct<float><<<b, 128, 0, s>>>((const float *)x, (const float *)w,
                                               (const float *)bias, (const float *)z, (float *)y,
                                               *g, act, total);
        break;
    case KC_F16:
        k_conv_direct<__half><<<b, 128, 0, s>>>((const __half *)x, (const __half *)w,
                                                (const __half *)bias, (const __half *)z,
                                                (__half *)y, *g, act, total);
        break;
    case KC_BF16:
        k_conv_direct<__nv_bfloat16><<<b, 128, 0, s>>>(
            (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w, (const __nv_bfloat16 *)bias,
            (const __nv_bfloat16 *)z, (__nv_bfloat16 *)y, *g, act, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
