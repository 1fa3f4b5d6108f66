// qconv.cu: INT8 convolution helpers (see qconv_kernels.h): im2col into
// int8 rows for cuBLASLt's int8 tensor-core GEMM, weight padding and row
// sums, requantization of the int32 product into NCHW int8/uint8, a direct
// integer convolution for what the GEMM path declines, and QAdd.
// Requantization follows ref_quant.c exactly: multiplier float(float(xs *
// ws) / ys), then double(acc + bias) * mult + zp with round-to-nearest
// multiply and add kept separate (the host reference has no FMA), rint
// (half to even), saturation.
#include "kc_device.cuh"
#include "qconv_kernels.h"

namespace {

__device__ __forceinline__ int q8(const void *p, int64_t i, int sgn) {
    return sgn ? (int)((const int8_t *)p)[i] : (int)((const uint8_t *)p)[i];
}

__device__ __forceinline__ float q_mult(const kc_qparams &q, int64_t m) {
    float ws = q.ws[q.n_ws == 1 ? 0 : m];
    return __fdiv_rn(__fmul_rn(q.xs[0], ws), q.ys[0]);
}

// sat(rint(r * mult + zp)) in y's range
__device__ __forceinline__ int q_requant(int32_t r, float mult, double zp, int y_signed) {
    double v = __dadd_rn(__dmul_rn((double)r, (double)mult), zp);
    v = rint(v);
    double lo = y_signed ? -128.0 : 0.0, hi = y_signed ? 127.0 : 255.0;
    if (v != v) return 0;
    v = v < lo ? lo : v > hi ? hi : v;
    return (int)v;
}

__device__ __forceinline__ void q_store(void *y, int64_t i, int v, int y_signed) {
    if (y_signed) ((int8_t *)y)[i] = (int8_t)v;
    else ((uint8_t *)y)[i] = (uint8_t)v;
}

// Tiles of 32 rows x 128 k (bytes), block (32, 8): the gather reads run
// along rows (consecutive output pixels: consecutive input addresses at
// stride 1, where a k-major order would read one byte per channel plane),
// the stores along k (one 4-byte word per thread, 128 contiguous bytes per
// row), through shared memory.
enum { IM_ROWS = 32, IM_K = 128 };

__global__ void k_im2col(const void *x, kc_qconv_geom g, kc_qparams q, int64_t r0,
                         int64_t nrows, int64_t kp, uint32_t *col) {
    __shared__ uint8_t tile[IM_K][IM_ROWS + 1];
    int64_t K = g.c * g.kh * g.kw, khw = g.kh * g.kw;
    int sgn = q.x_signed, off = sgn ? 0 : 128;
    int padv = q8(q.xzp, 0, sgn) - off;
    int64_t rb = (int64_t)blockIdx.x * IM_ROWS, kb = (int64_t)blockIdx.y * IM_K;
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t lr = rb + tx;
    if (lr < nrows) {
        int64_t r = r0 + lr;
        int64_t ox = r % g.ow, rr = r / g.ow;
        int64_t oy = rr % g.oh, n = rr / g.oh;
        int64_t iy0 = oy * g.sh - g.ph, ix0 = ox * g.sw - g.pw;
        for (int kk = ty; kk < IM_K; kk += 8) {
            int64_t k = kb + kk;
            int v = 0;
            if (k < K) {
                int64_t c = k / khw, rem = k - c * khw;
                int64_t i = rem / g.kw, j = rem - i * g.kw;
                int64_t iy = iy0 + i * g.dh, ix = ix0 + j * g.dw;
                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                    v = q8(x, ((n * g.c + c) * g.h + iy) * g.w + ix, sgn) - off;
                else
                    v = padv;
            }
            tile[kk][tx] = (uint8_t)(int8_t)v;
        }
    }
    __syncthreads();
    int64_t k4 = kb + 4 * tx;
    if (k4 >= kp) return;
    for (int rr = ty; rr < IM_ROWS; rr += 8) {
        int64_t row = rb + rr;
        if (row >= nrows) break;
        uint32_t w = (uint32_t)tile[4 * tx][rr] | (uint32_t)tile[4 * tx + 1][rr] << 8 |
                     (uint32_t)tile[4 * tx + 2][rr] << 16 | (uint32_t)tile[4 * tx + 3][rr] << 24;
        col[(row * kp + k4) / 4] = w;
    }
}

__global__ void k_wpad(const int8_t *w, int64_t M, int64_t K, int64_t mp, int64_t kp,
                       int8_t *wp) {
    int64_t total = mp * kp;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t m = t / kp, k = t - m * kp;
        wp[t] = m < M && k < K ? w[m * K + k] : (int8_t)0;
    }
}

// one block (256 threads) per row
__global__ void k_rowsum(const int8_t *w, int64_t M, int64_t K, int32_t *rowsum) {
    __shared__ int32_t part[256];
    int64_t m = blockIdx.x;
    int32_t s = 0;
    if (m < M)
        for (int64_t k = threadIdx.x; k < K; k += blockDim.x) s += w[m * K + k];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = 128; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) rowsum[m] = part[0];
}

// 32 x 32 tiles of (rows, channels): read along channels, write along rows
// (NCHW's contiguous dim). Block (32, 8).
__global__ void k_requant(const int32_t *acc, int64_t ldacc, const int32_t *rowsum,
                          kc_qconv_geom g, kc_qparams q, int64_t r0, int64_t nrows, void *y) {
    __shared__ int tile[32][33];
    int64_t rb = (int64_t)blockIdx.x * 32, mb = (int64_t)blockIdx.y * 32;
    int64_t hw = g.oh * g.ow;
    int off = q.x_signed ? 0 : 128;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed);
    int64_t m = mb + threadIdx.x;
    if (m < g.m) {
        float mult = q_mult(q, m);
        uint32_t add = (uint32_t)(off - xzp) * (uint32_t)rowsum[m] +
                       (q.bias ? (uint32_t)q.bias[m] : 0u);
        for (int j = threadIdx.y; j < 32; j += 8) {
            int64_t lr = rb + j;
            if (lr < nrows) {
                int32_t r = (int32_t)((uint32_t)acc[lr * ldacc + m] + add);
                tile[j][threadIdx.x] = q_requant(r, mult, yzp, q.y_signed);
            }
        }
    }
    __syncthreads();
    int64_t lr = rb + threadIdx.x;
    if (lr >= nrows) return;
    int64_t r = r0 + lr, n = r / hw, p = r - n * hw;
    for (int j = threadIdx.y; j < 32; j += 8) {
        int64_t mm = mb + j;
        if (mm < g.m) q_store(y, (n * g.m + mm) * hw + p, tile[threadIdx.x][j], q.y_signed);
    }
}

__global__ void k_epi_prep(const int32_t *rowsum, kc_qconv_geom g, kc_qparams q, int64_t mp,
                           float *alpha, float *beta) {
    int off = q.x_signed ? 0 : 128;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed) - (q.y_signed ? 0.0 : 128.0);
    for (int64_t m = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; m < mp;
         m += (int64_t)gridDim.x * blockDim.x) {
        if (m >= g.m) {
            alpha[m] = 0.0f;
            beta[m] = 0.0f;
            continue;
        }
        float mult = q_mult(q, m);
        int32_t add = (int32_t)((uint32_t)(off - xzp) * (uint32_t)rowsum[m] +
                                (q.bias ? (uint32_t)q.bias[m] : 0u));
        alpha[m] = mult;
        beta[m] = (float)((double)mult * (double)add + yzp);
    }
}

__global__ void k_nhwc_to_nchw(const int8_t *d, int64_t ldd, kc_qconv_geom g, int y_signed,
                               int64_t r0, int64_t nrows, void *y) {
    __shared__ int8_t tile[32][33];
    int64_t rb = (int64_t)blockIdx.x * 32, mb = (int64_t)blockIdx.y * 32;
    int64_t hw = g.oh * g.ow;
    int64_t m = mb + threadIdx.x;
    if (m < g.m)
        for (int j = threadIdx.y; j < 32; j += 8) {
            int64_t lr = rb + j;
            if (lr < nrows) tile[j][threadIdx.x] = d[lr * ldd + m];
        }
    __syncthreads();
    int64_t lr = rb + threadIdx.x;
    if (lr >= nrows) return;
    int64_t r = r0 + lr, n = r / hw, p = r - n * hw;
    for (int j = threadIdx.y; j < 32; j += 8) {
        int64_t mm = mb + j;
        if (mm >= g.m) break;
        int v = tile[threadIdx.x][j];
        q_store(y, (n * g.m + mm) * hw + p, y_signed ? v : v + 128, y_signed);
    }
}

__global__ void k_qconv_direct(const void *x, const void *w, kc_qconv_geom g, kc_qparams q,
                               void *y) {
    int64_t hw = g.oh * g.ow, total = g.n * g.m * g.od * hw;
    int64_t mpg = g.m / g.group, cpg = g.c / g.group;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed);
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = t % g.ow, rr = t / g.ow;
        int64_t oy = rr % g.oh;
        rr /= g.oh;
        int64_t oz = rr % g.od;
        rr /= g.od;
        int64_t m = rr % g.m, n = rr / g.m;
        int64_t grp = m / mpg;
        int wzp = q.wzp ? q8(q.wzp, q.n_wzp == 1 ? 0 : m, q.w_signed) : 0;
        long long acc = 0;
        for (int64_t ci = 0; ci < cpg; ci++) {
            int64_t c = grp * cpg + ci;
            for (int64_t a = 0; a < g.kd; a++) {
                int64_t iz = oz * g.sd - g.pd + a * g.dd;
                if (iz < 0 || iz >= g.dp) continue;
                const int64_t wbase = (((m * cpg + ci) * g.kd + a) * g.kh) * g.kw;
                const int64_t xbase = ((n * g.c + c) * g.dp + iz) * g.h;
                for (int64_t i = 0; i < g.kh; i++) {
                    int64_t iy = oy * g.sh - g.ph + i * g.dh;
                    if (iy < 0 || iy >= g.h) continue;
                    for (int64_t j = 0; j < g.kw; j++) {
                        int64_t ix = ox * g.sw - g.pw + j * g.dw;
                        if (ix < 0 || ix >= g.w) continue;
                        int xv = q8(x, (xbase + iy) * g.w + ix, q.x_signed) - xzp;
                        int wv = q8(w, wbase + i * g.kw + j, q.w_signed) - wzp;
                        acc += (long long)xv * wv;
                    }
                }
            }
        }
        if (q.bias) acc += q.bias[m];
        int32_t r = (int32_t)(uint32_t)(unsigned long long)acc;
        q_store(y, t, q_requant(r, q_mult(q, m), yzp, q.y_signed), q.y_signed);
    }
}

__global__ void k_qadd(const void *a, const void *b, void *y, int64_t n, kc_qadd_args p) {
    float sa = p.as[0], sb = p.bs[0], sy = p.ys[0];
    float za = (float)q8(p.azp, 0, p.a_signed), zb = (float)q8(p.bzp, 0, p.b_signed);
    double zy = (double)q8(p.yzp, 0, p.y_signed);
    double lo = p.y_signed ? -128.0 : 0.0, hi = lo + 255.0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float av = __fmul_rn(__fsub_rn((float)q8(a, i, p.a_signed), za), sa);
        float bv = __fmul_rn(__fsub_rn((float)q8(b, i, p.b_signed), zb), sb);
        float qv = __fdiv_rn(__fadd_rn(av, bv), sy);
        double r = __dadd_rn(rint((double)qv), zy);
        r = r < lo ? lo : r > hi ? hi : r;
        q_store(y, i, (int)r, p.y_signed);
    }
}

__global__ void k_q8_maxpool(const void *x, void *y, kc_qconv_geom g, int sgn) {
    int64_t total = g.n * g.c * g.oh * g.ow;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = t % g.ow, rr = t / g.ow;
        int64_t oy = rr % g.oh, nc = rr / g.oh;
        int best = sgn ? -128 : 0;
        for (int64_t i = 0; i < g.kh; i++) {
            int64_t iy = oy * g.sh - g.ph + i * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < g.kw; j++) {
                int64_t ix = ox * g.sw - g.pw + j * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                int v = q8(x, (nc * g.h + iy) * g.w + ix, sgn);
                best = v > best ? v : best;
            }
        }
        q_store(y, t, best, sgn);
    }
}

} // namespace

extern "C" cudaError_t kc_q8_maxpool(const void *x, void *y, const kc_qconv_geom *g, int sgn,
                                     cudaStream_t s) {
    int64_t total = g->n * g->c * g->oh * g->ow;
    if (total <= 0) return cudaSuccess;
    k_q8_maxpool<<<kc_blocks(total, 256), 256, 0, s>>>(x, y, *g, sgn);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_im2col(const void *x, const kc_qconv_geom *g, const kc_qparams *q,
                                    int64_t r0, int64_t nrows, int64_t kp, int8_t *col,
                                    cudaStream_t s) {
    if (kp % 4 || ((uintptr_t)col & 3)) return cudaErrorInvalidValue;
    if (nrows <= 0 || kp <= 0) return cudaSuccess;
    int64_t bx = (nrows + IM_ROWS - 1) / IM_ROWS, by = (kp + IM_K - 1) / IM_K;
    if (bx > 0x7fffffffLL || by > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)bx, (unsigned)by), block(32, 8);
    k_im2col<<<grid, block, 0, s>>>(x, *g, *q, r0, nrows, kp, (uint32_t *)col);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_weight_prep(const int8_t *w, int64_t M, int64_t K, int64_t mp,
                                         int64_t kp, int8_t *wp, int32_t *rowsum,
                                         cudaStream_t s) {
    if (mp < M || kp < K || mp <= 0 || mp > 65535 * 1024LL) return cudaErrorInvalidValue;
    if (wp) {
        k_wpad<<<kc_blocks(mp * kp, 256), 256, 0, s>>>(w, M, K, mp, kp, wp);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    if (rowsum) k_rowsum<<<(unsigned)mp, 256, 0, s>>>(w, M, K, rowsum);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_requant(const int32_t *acc, int64_t ldacc, const int32_t *rowsum,
                                     const kc_qconv_geom *g, const kc_qparams *q, int64_t r0,
                                     int64_t nrows, void *y, cudaStream_t s) {
    if (nrows <= 0 || g->m <= 0) return cudaSuccess;
    int64_t bx = (nrows + 31) / 32, by = (g->m + 31) / 32;
    if (bx > 0x7fffffffLL || by > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)bx, (unsigned)by), block(32, 8);
    k_requant<<<grid, block, 0, s>>>(acc, ldacc, rowsum, *g, *q, r0, nrows, y);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_epilogue_prep(const int32_t *rowsum, const kc_qconv_geom *g,
                                           const kc_qparams *q, int64_t mp, float *alpha,
                                           float *beta, cudaStream_t s) {
    if (mp <= 0) return cudaSuccess;
    k_epi_prep<<<kc_blocks(mp, 128), 128, 0, s>>>(rowsum, *g, *q, mp, alpha, beta);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_nhwc_to_nchw(const int8_t *d, int64_t ldd, const kc_qconv_geom *g,
                                          int y_signed, int64_t r0, int64_t nrows, void *y,
                                          cudaStream_t s) {
    if (nrows <= 0 || g->m <= 0) return cudaSuccess;
    int64_t bx = (nrows + 31) / 32, by = (g->m + 31) / 32;
    if (bx > 0x7fffffffLL || by > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)bx, (unsigned)by), block(32, 8);
    k_nhwc_to_nchw<<<grid, block, 0, s>>>(d, ldd, *g, y_signed, r0, nrows, y);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_qconv_direct(const void *x, const void *w, const kc_qconv_geom *g,
                                       const kc_qparams *q, void *y, cudaStream_t s) {
    if (g->group < 1 || g->m % g->group || g->c % g->group || g->od < 1 || g->dp < 1 ||
        g->kd < 1)
        return cudaErrorInvalidValue;
    int64_t total = g->n * g->m * g->od * g->oh * g->ow;
    if (total <= 0) return cudaSuccess;
    k_qconv_direct<<<kc_blocks(total, 128), 128, 0, s>>>(x, w, *g, *q, y);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_qadd(const void *a, const void *b, void *y, int64_t n,
                               const kc_qadd_args *p, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    k_qadd<<<kc_blocks(n, 256), 256, 0, s>>>(a, b, y, n, *p);
    return cudaGetLastError();
}
