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

// shifted: the activations are read shifted into int8 (uint8 x - 128, with
// the row-sum correction) and uint8 y is written shifted (cuBLASLt's int8
// output); else both are taken as they are (the SM90 kernel).
__global__ void k_epi_prep(const int32_t *rowsum, kc_qconv_geom g, kc_qparams q, int64_t mp,
                           float *alpha, float *beta, int shifted) {
    int off = q.x_signed || !shifted ? 0 : 128;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed) - (q.y_signed || !shifted ? 0.0 : 128.0);
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

// The exact sum of (x - xzp)(w - wzp) over output (n, m, oz, oy, ox)'s window,
// NCDHW, any group: the direct integer convolutions' shared inner loop.
__device__ __forceinline__ long long qconv_window_sum(const void *x, const void *w,
                                                      const kc_qconv_geom &g, int x_signed,
                                                      int w_signed, int xzp, int wzp, int64_t n,
                                                      int64_t m, int64_t oz, int64_t oy,
                                                      int64_t ox) {
    int64_t mpg = g.m / g.group, cpg = g.c / g.group, grp = m / mpg;
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
                    int xv = q8(x, (xbase + iy) * g.w + ix, x_signed) - xzp;
                    int wv = q8(w, wbase + i * g.kw + j, w_signed) - wzp;
                    acc += (long long)xv * wv;
                }
            }
        }
    }
    return acc;
}

__global__ void k_qconv_direct(const void *x, const void *w, kc_qconv_geom g, kc_qparams q,
                               void *y) {
    int64_t hw = g.oh * g.ow, total = g.n * g.m * g.od * hw;
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
        int wzp = q.wzp ? q8(q.wzp, q.n_wzp == 1 ? 0 : m, q.w_signed) : 0;
        long long acc =
            qconv_window_sum(x, w, g, q.x_signed, q.w_signed, xzp, wzp, n, m, oz, oy, ox);
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

// ---- channels-last (NhwcQLinearConv, ops/layout.h) -----------------------
// x [n, h, w, c], weights KRSC [m, kh, kw, c] (so a GEMM row k = (i * kw +
// j) * c + ch), y [n, oh, ow, m]: the GEMM's [rows, m] product is y itself.

// 32-bit word of 4 bytes with each byte's top bit flipped: uint8 - 128 as
// int8, bytewise.
__device__ __forceinline__ uint32_t flip4(uint32_t v, uint32_t f) { return v ^ f; }

// NW 32-bit words (16, 8 or 4 bytes) of one channel run per thread; c % (4
// * NW) == 0 so a run never crosses a tap, and K % (4 * NW) == 0.
template <int NW>
__global__ void k_im2col_nhwc(const uint8_t *__restrict__ x, kc_qconv_geom g, kc_qparams q,
                              int64_t r0, uint32_t nrows, uint32_t kp, uint8_t *__restrict__ col) {
    const uint32_t VW = 4 * NW, kv = kp / VW, K = (uint32_t)(g.kh * g.kw * g.c);
    const uint32_t C = (uint32_t)g.c, KW = (uint32_t)g.kw;
    const uint32_t OW = (uint32_t)g.ow, OH = (uint32_t)g.oh;
    int sgn = q.x_signed;
    uint32_t f = sgn ? 0u : 0x80808080u;
    uint32_t pb = (uint32_t)(uint8_t)(int8_t)(q8(q.xzp, 0, sgn) - (sgn ? 0 : 128));
    uint32_t padw = pb * 0x01010101u;
    uint32_t total = nrows * kv;
    for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += gridDim.x * blockDim.x) {
        uint32_t lr = t / kv, k = (t - lr * kv) * VW;
        uint32_t w[NW];
        if (k >= K) {
#pragma unroll
            for (int u = 0; u < NW; u++) w[u] = 0;
        } else {
            uint32_t tap = k / C, ch = k - tap * C, i = tap / KW, j = tap - i * KW;
            uint32_t r = (uint32_t)r0 + lr; // r0 + nrows < 2^32 (checked)
            uint32_t rr = r / OW, ox = r - rr * OW;
            uint32_t n = rr / OH, oy = rr - n * OH;
            int64_t iy = (int64_t)oy * g.sh - g.ph + (int64_t)i * g.dh;
            int64_t ix = (int64_t)ox * g.sw - g.pw + (int64_t)j * g.dw;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
                const uint8_t *p = x + ((((int64_t)n * g.h + iy) * g.w + ix) * g.c + ch);
                if constexpr (NW == 4) {
                    uint4 v = *reinterpret_cast<const uint4 *>(p);
                    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
                } else if constexpr (NW == 2) {
                    uint2 v = *reinterpret_cast<const uint2 *>(p);
                    w[0] = v.x, w[1] = v.y;
                } else {
                    w[0] = *reinterpret_cast<const uint32_t *>(p);
                }
#pragma unroll
                for (int u = 0; u < NW; u++) w[u] = flip4(w[u], f);
            } else {
#pragma unroll
                for (int u = 0; u < NW; u++) w[u] = padw;
            }
        }
        uint8_t *d = col + (int64_t)lr * kp + k;
        if constexpr (NW == 4) *reinterpret_cast<uint4 *>(d) = make_uint4(w[0], w[1], w[2], w[3]);
        else if constexpr (NW == 2) *reinterpret_cast<uint2 *>(d) = make_uint2(w[0], w[1]);
        else *reinterpret_cast<uint32_t *>(d) = w[0];
    }
}

// any c: one byte per thread
__global__ void k_im2col_nhwc_b(const uint8_t *__restrict__ x, kc_qconv_geom g, kc_qparams q,
                                int64_t r0, uint32_t nrows, uint32_t kp,
                                uint8_t *__restrict__ col) {
    const uint32_t K = (uint32_t)(g.kh * g.kw * g.c), C = (uint32_t)g.c, KW = (uint32_t)g.kw;
    const uint32_t OW = (uint32_t)g.ow, OH = (uint32_t)g.oh;
    int sgn = q.x_signed;
    uint8_t f = sgn ? 0 : 0x80;
    uint8_t pb = (uint8_t)(int8_t)(q8(q.xzp, 0, sgn) - (sgn ? 0 : 128));
    uint32_t total = nrows * kp;
    for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += gridDim.x * blockDim.x) {
        uint32_t lr = t / kp, k = t - lr * kp;
        uint8_t v = 0;
        if (k < K) {
            uint32_t tap = k / C, ch = k - tap * C, i = tap / KW, j = tap - i * KW;
            uint32_t r = (uint32_t)r0 + lr; // r0 + nrows < 2^32 (checked)
            uint32_t rr = r / OW, ox = r - rr * OW;
            uint32_t n = rr / OH, oy = rr - n * OH;
            int64_t iy = (int64_t)oy * g.sh - g.ph + (int64_t)i * g.dh;
            int64_t ix = (int64_t)ox * g.sw - g.pw + (int64_t)j * g.dw;
            v = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
                    ? (uint8_t)(x[(((int64_t)n * g.h + iy) * g.w + ix) * g.c + ch] ^ f)
                    : pb;
        }
        col[t] = v;
    }
}

// 4 channels x QR_ROWS rows per thread: the channels' multipliers and
// zero-point/bias terms once, then per row one 16-byte read of the product
// and one 4-byte store (m % 4 == 0; else element by element).
enum { QR_ROWS = 8 };

__global__ void k_requant_nhwc(const int32_t *__restrict__ acc, int64_t ldacc,
                               const int32_t *__restrict__ rowsum, kc_qconv_geom g,
                               kc_qparams q, int64_t r0, uint32_t nrows, uint8_t *__restrict__ y,
                               bool vec) {
    const uint32_t M = (uint32_t)g.m, m4 = (M + 3) / 4, nb = (nrows + QR_ROWS - 1) / QR_ROWS;
    int off = q.x_signed ? 0 : 128;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed);
    uint32_t total = nb * m4;
    for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += gridDim.x * blockDim.x) {
        uint32_t rb = t / m4, m0 = (t - rb * m4) * 4;
        float mult[4];
        uint32_t add[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            uint32_t m = m0 + u < M ? m0 + u : M - 1;
            mult[u] = q_mult(q, m);
            add[u] = (uint32_t)(off - xzp) * (uint32_t)rowsum[m] +
                     (q.bias ? (uint32_t)q.bias[m] : 0u);
        }
        uint32_t rend = (rb + 1) * QR_ROWS < nrows ? (rb + 1) * QR_ROWS : nrows;
        for (uint32_t lr = rb * QR_ROWS; lr < rend; lr++) {
            const int32_t *a = acc + (int64_t)lr * ldacc + m0;
            uint8_t *yo = y + (r0 + lr) * (int64_t)M + m0;
            if (vec) {
                int4 v = *reinterpret_cast<const int4 *>(a);
                int32_t av[4] = {v.x, v.y, v.z, v.w};
                uint32_t w = 0;
#pragma unroll
                for (int u = 0; u < 4; u++)
                    w |= (uint32_t)(uint8_t)q_requant((int32_t)((uint32_t)av[u] + add[u]), mult[u],
                                                      yzp, q.y_signed)
                         << (8 * u);
                *reinterpret_cast<uint32_t *>(yo) = w;
            } else {
                for (uint32_t u = 0; u < 4 && m0 + u < M; u++)
                    yo[u] = (uint8_t)q_requant((int32_t)((uint32_t)a[u] + add[u]), mult[u], yzp,
                                               q.y_signed);
            }
        }
    }
}

// y[r * m + c] = d[r * ldd + c] ^ flip (the int8-output GEMM's rows into y;
// in place when d == y and ldd == m)
__global__ void k_rows_fix(const uint8_t *d, int64_t ldd, uint8_t *y, int64_t m, uint32_t nrows,
                           uint8_t flip) {
    uint32_t total = nrows * (uint32_t)m;
    for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += gridDim.x * blockDim.x) {
        uint32_t r = t / (uint32_t)m, c = t - r * (uint32_t)m;
        y[t] = d[(int64_t)r * ldd + c] ^ flip;
    }
}

__global__ void k_rows_flip16(uint4 *y, uint32_t n16) {
    for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < n16;
         t += gridDim.x * blockDim.x) {
        uint4 v = y[t];
        v.x ^= 0x80808080u, v.y ^= 0x80808080u, v.z ^= 0x80808080u, v.w ^= 0x80808080u;
        y[t] = v;
    }
}

// Direct NHWC QLinearConv (group 1; any weight type and zero points): one
// thread per output, channel runs contiguous in x and w.
__global__ void k_qconv_direct_nhwc(const void *x, const void *w, kc_qconv_geom g, kc_qparams q,
                                    void *y) {
    int64_t total = g.n * g.oh * g.ow * g.m;
    int xzp = q8(q.xzp, 0, q.x_signed);
    double yzp = (double)q8(q.yzp, 0, q.y_signed);
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t m = t % g.m, rr = t / g.m;
        int64_t ox = rr % g.ow;
        rr /= g.ow;
        int64_t oy = rr % g.oh, n = rr / g.oh;
        int wzp = q.wzp ? q8(q.wzp, q.n_wzp == 1 ? 0 : m, q.w_signed) : 0;
        long long acc = 0;
        for (int64_t i = 0; i < g.kh; i++) {
            int64_t iy = oy * g.sh - g.ph + i * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < g.kw; j++) {
                int64_t ix = ox * g.sw - g.pw + j * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                int64_t xb = ((n * g.h + iy) * g.w + ix) * g.c;
                int64_t wb = ((m * g.kh + i) * g.kw + j) * g.c;
                for (int64_t c = 0; c < g.c; c++)
                    acc += (long long)(q8(x, xb + c, q.x_signed) - xzp) *
                           (q8(w, wb + c, q.w_signed) - wzp);
            }
        }
        if (q.bias) acc += q.bias[m];
        int32_t r = (int32_t)(uint32_t)(unsigned long long)acc;
        q_store(y, t, q_requant(r, q_mult(q, m), yzp, q.y_signed), q.y_signed);
    }
}

// NHWC 8-bit max pool: NW words of 4 channels per thread (c % (4 * NW) ==
// 0), bytewise max through __vmaxs4 / __vmaxu4; taps outside the image are
// skipped (as the reference does).
template <int NW>
__global__ void k_q8_maxpool_nhwc(const uint8_t *__restrict__ x, uint8_t *__restrict__ y,
                                  kc_qconv_geom g, int sgn) {
    const int64_t cv = g.c / (4 * NW), total = g.n * g.oh * g.ow * cv;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t cq = t % cv, rr = t / cv;
        int64_t ox = rr % g.ow;
        rr /= g.ow;
        int64_t oy = rr % g.oh, n = rr / g.oh;
        uint32_t best[NW];
#pragma unroll
        for (int u = 0; u < NW; u++) best[u] = sgn ? 0x80808080u : 0u;
        for (int64_t i = 0; i < g.kh; i++) {
            int64_t iy = oy * g.sh - g.ph + i * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < g.kw; j++) {
                int64_t ix = ox * g.sw - g.pw + j * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const uint8_t *p = x + ((n * g.h + iy) * g.w + ix) * g.c + cq * 4 * NW;
                uint32_t v[NW];
                if constexpr (NW == 4) {
                    uint4 a = *reinterpret_cast<const uint4 *>(p);
                    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
                } else {
                    v[0] = *reinterpret_cast<const uint32_t *>(p);
                }
#pragma unroll
                for (int u = 0; u < NW; u++)
                    best[u] = sgn ? __vmaxs4(best[u], v[u]) : __vmaxu4(best[u], v[u]);
            }
        }
        uint8_t *o = y + t * 4 * NW;
        if constexpr (NW == 4)
            *reinterpret_cast<uint4 *>(o) = make_uint4(best[0], best[1], best[2], best[3]);
        else *reinterpret_cast<uint32_t *>(o) = best[0];
    }
}

__global__ void k_q8_maxpool_nhwc_b(const void *x, void *y, kc_qconv_geom g, int sgn) {
    int64_t total = g.n * g.oh * g.ow * g.c;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = t % g.c, rr = t / g.c;
        int64_t ox = rr % g.ow;
        rr /= g.ow;
        int64_t oy = rr % g.oh, n = rr / g.oh;
        int best = sgn ? -128 : 0;
        for (int64_t i = 0; i < g.kh; i++) {
            int64_t iy = oy * g.sh - g.ph + i * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t j = 0; j < g.kw; j++) {
                int64_t ix = ox * g.sw - g.pw + j * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                int v = q8(x, ((n * g.h + iy) * g.w + ix) * g.c + c, sgn);
                best = v > best ? v : best;
            }
        }
        q_store(y, t, best, sgn);
    }
}

// QAdd, 16 bytes per thread (n % 16 == 0, 16-byte aligned a, b, y): the
// scalar kernel's arithmetic on each byte.
__device__ __forceinline__ uint32_t qadd_byte(uint32_t a, uint32_t b, float sa, float za,
                                              float sb, float zb, float sy, double zy,
                                              const kc_qadd_args &p) {
    float av = p.a_signed ? (float)(int8_t)a : (float)(uint8_t)a;
    float bv = p.b_signed ? (float)(int8_t)b : (float)(uint8_t)b;
    av = __fmul_rn(__fsub_rn(av, za), sa);
    bv = __fmul_rn(__fsub_rn(bv, zb), sb);
    float qv = __fdiv_rn(__fadd_rn(av, bv), sy);
    double r = __dadd_rn(rint((double)qv), zy);
    double lo = p.y_signed ? -128.0 : 0.0, hi = lo + 255.0;
    r = r < lo ? lo : r > hi ? hi : r;
    return (uint32_t)(uint8_t)(int)r;
}

__global__ void k_qadd16(const uint4 *a, const uint4 *b, uint4 *y, int64_t n16, kc_qadd_args p) {
    float sa = p.as[0], sb = p.bs[0], sy = p.ys[0];
    float za = (float)q8(p.azp, 0, p.a_signed), zb = (float)q8(p.bzp, 0, p.b_signed);
    double zy = (double)q8(p.yzp, 0, p.y_signed);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n16;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint4 va = a[i], vb = b[i];
        uint32_t wa[4] = {va.x, va.y, va.z, va.w}, wb[4] = {vb.x, vb.y, vb.z, vb.w}, wy[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            uint32_t o = 0;
#pragma unroll
            for (int s = 0; s < 4; s++)
                o |= qadd_byte((wa[u] >> (8 * s)) & 0xffu, (wb[u] >> (8 * s)) & 0xffu, sa, za, sb,
                               zb, sy, zy, p)
                     << (8 * s);
            wy[u] = o;
        }
        y[i] = make_uint4(wy[0], wy[1], wy[2], wy[3]);
    }
}


// ConvInteger / ConvIntegerToFloat and MatMulInteger / MatMulIntegerToFloat
// (onnxruntime's quantize_dynamic models; Kiln's qdyn pass writes the *ToFloat
// forms): exact int64 sums of (x - x_zp) (w - w_zp), wrapped to int32 as the
// reference does, then either stored as int32 or as float32 (float)acc *
// scale (+ bias) in two float32 steps (no FMA), per output channel / column.
__device__ __forceinline__ void qi_store(const kc_qint_out &o, void *y, int64_t t, int64_t ch,
                                         long long acc) {
    int32_t r = (int32_t)(uint32_t)(unsigned long long)acc;
    if (!o.to_float) {
        ((int32_t *)y)[t] = r;
        return;
    }
    float v = __fmul_rn((float)r, o.scale[o.n_scale == 1 ? 0 : ch]);
    if (o.bias) v = __fadd_rn(v, o.bias[o.n_bias == 1 ? 0 : ch]);
    ((float *)y)[t] = v;
}

__global__ void k_convint_direct(const void *x, const void *w, kc_qconv_geom g, kc_qint_zp z,
                                 kc_qint_out o, void *y) {
    int64_t hw = g.oh * g.ow, total = g.n * g.m * g.od * hw;
    int xzp = z.azp ? q8(z.azp, 0, z.a_signed) : 0;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = t % g.ow, rr = t / g.ow;
        int64_t oy = rr % g.oh;
        rr /= g.oh;
        int64_t oz = rr % g.od;
        rr /= g.od;
        int64_t m = rr % g.m, n = rr / g.m;
        int wzp = z.bzp ? q8(z.bzp, z.n_bzp == 1 ? 0 : m, z.b_signed) : 0;
        long long acc =
            qconv_window_sum(x, w, g, z.a_signed, z.b_signed, xzp, wzp, n, m, oz, oy, ox);
        qi_store(o, y, t, m, acc);
    }
}

// [batch, M, K] x [K, N]: 16x16 output tiles, 16-deep K slices of A and B
// in shared memory (as int, zero points subtracted on load).
__global__ void k_matmulint(const void *a, const void *b, int64_t b0, int64_t M, int64_t K,
                            int64_t N, kc_qint_zp z, kc_qint_out o, void *y) {
    __shared__ int as[16][17], bs[16][17];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx, bi = b0 + blockIdx.z;
    int azp = z.azp ? q8(z.azp, 0, z.a_signed) : 0;
    int bzp_c = 0;
    long long acc = 0;
    const int64_t abase = bi * M * K;
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        int64_t ka = k0 + tx, kb = k0 + ty;
        as[ty][tx] = row < M && ka < K ? q8(a, abase + row * K + ka, z.a_signed) - azp : 0;
        int64_t bc = blockIdx.x * 16 + tx;
        if (bc < N && kb < K) {
            bzp_c = z.bzp ? q8(z.bzp, z.n_bzp == 1 ? 0 : bc, z.b_signed) : 0;
            bs[ty][tx] = q8(b, kb * N + bc, z.b_signed) - bzp_c;
        } else {
            bs[ty][tx] = 0;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < 16; k++) acc += (long long)as[ty][k] * bs[k][tx];
        __syncthreads();
    }
    if (row < M && col < N) qi_store(o, y, (bi * M + row) * N + col, col, acc);
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
    k_epi_prep<<<kc_blocks(mp, 128), 128, 0, s>>>(rowsum, *g, *q, mp, alpha, beta, 1);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_epilogue_prep_plain(const int32_t *rowsum, const kc_qconv_geom *g,
                                                 const kc_qparams *q, int64_t mp, float *alpha,
                                                 float *beta, cudaStream_t s) {
    if (mp <= 0) return cudaSuccess;
    k_epi_prep<<<kc_blocks(mp, 128), 128, 0, s>>>(rowsum, *g, *q, mp, alpha, beta, 0);
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

// The session-10 vector paths of the default (NCHW) INT8 layers: 16-byte
// QAdd, 8-wide per-tensor Q/DQ (cast_small.cu) and the row-major
// requantization of one-pixel layers (cuda_qconv.c). On by default since
// they passed test_cuda_int8, test_cuda_eltwise and int8_e2e on an H100
// (2026-12-08); KILN_CUDA_Q8_FAST=0 takes the per-element kernels (A/B).
extern "C" int kc_q8_fast(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("KILN_CUDA_Q8_FAST");
        v = !(e && e[0] == '0');
    }
    return v;
}

extern "C" cudaError_t kc_qadd(const void *a, const void *b, void *y, int64_t n,
                               const kc_qadd_args *p, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    if (kc_q8_fast() && n % 16 == 0 && (((uintptr_t)a | (uintptr_t)b | (uintptr_t)y) & 15) == 0) {
        k_qadd16<<<kc_blocks(n / 16, 256), 256, 0, s>>>((const uint4 *)a, (const uint4 *)b,
                                                         (uint4 *)y, n / 16, *p);
        return cudaGetLastError();
    }
    k_qadd<<<kc_blocks(n, 256), 256, 0, s>>>(a, b, y, n, *p);
    return cudaGetLastError();
}

// ---- channels-last launchers
static bool al(const void *p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

extern "C" cudaError_t kc_q8_im2col_nhwc(const void *x, const kc_qconv_geom *g,
                                         const kc_qparams *q, int64_t r0, int64_t nrows,
                                         int64_t kp, int8_t *col, cudaStream_t s) {
    if (nrows <= 0 || kp <= 0) return cudaSuccess;
    int64_t K = g->kh * g->kw * g->c;
    if (kp % 16 || kp < K || !al(col, 16) || nrows * kp > 0x7fffffffLL || g->group != 1 ||
        r0 < 0 || r0 + nrows > 0xffffffffLL)
        return cudaErrorInvalidValue;
    const uint8_t *xb = (const uint8_t *)x;
    uint8_t *cb = (uint8_t *)col;
    uint32_t nr = (uint32_t)nrows, k = (uint32_t)kp;
    if (g->c % 16 == 0 && al(x, 16))
        k_im2col_nhwc<4><<<kc_blocks(nrows * kp / 16, 256), 256, 0, s>>>(xb, *g, *q, r0, nr, k, cb);
    else if (g->c % 8 == 0 && al(x, 8))
        k_im2col_nhwc<2><<<kc_blocks(nrows * kp / 8, 256), 256, 0, s>>>(xb, *g, *q, r0, nr, k, cb);
    else if (g->c % 4 == 0 && al(x, 4))
        k_im2col_nhwc<1><<<kc_blocks(nrows * kp / 4, 256), 256, 0, s>>>(xb, *g, *q, r0, nr, k, cb);
    else
        k_im2col_nhwc_b<<<kc_blocks(nrows * kp, 256), 256, 0, s>>>(xb, *g, *q, r0, nr, k, cb);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_requant_nhwc(const int32_t *acc, int64_t ldacc,
                                          const int32_t *rowsum, const kc_qconv_geom *g,
                                          const kc_qparams *q, int64_t r0, int64_t nrows, void *y,
                                          cudaStream_t s) {
    if (nrows <= 0 || g->m <= 0) return cudaSuccess;
    int64_t m4 = (g->m + 3) / 4;
    if (ldacc < g->m || nrows * m4 > 0x7fffffffLL || g->m > 0x7fffffffLL)
        return cudaErrorInvalidValue;
    bool vec = g->m % 4 == 0 && ldacc % 4 == 0 && al(acc, 16) && al(y, 4);
    int64_t items = (nrows + QR_ROWS - 1) / QR_ROWS * m4;
    k_requant_nhwc<<<kc_blocks(items, 256), 256, 0, s>>>(acc, ldacc, rowsum, *g, *q, r0,
                                                         (uint32_t)nrows, (uint8_t *)y, vec);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_rows_fix(const int8_t *d, int64_t ldd, void *y, int64_t m,
                                      int64_t nrows, int flip, cudaStream_t s) {
    if (nrows <= 0 || m <= 0) return cudaSuccess;
    if (ldd < m || nrows * m > 0x7fffffffLL) return cudaErrorInvalidValue;
    int64_t n = nrows * m;
    if ((const void *)d == y && ldd == m) {
        if (!flip) return cudaSuccess;
        if (n % 16 == 0 && al(y, 16)) {
            k_rows_flip16<<<kc_blocks(n / 16, 256), 256, 0, s>>>((uint4 *)y, (uint32_t)(n / 16));
            return cudaGetLastError();
        }
    }
    k_rows_fix<<<kc_blocks(n, 256), 256, 0, s>>>((const uint8_t *)d, ldd, (uint8_t *)y, m,
                                                 (uint32_t)nrows, flip ? 0x80 : 0);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_qconv_direct_nhwc(const void *x, const void *w, const kc_qconv_geom *g,
                                            const kc_qparams *q, void *y, cudaStream_t s) {
    if (g->group != 1) return cudaErrorInvalidValue;
    int64_t total = g->n * g->oh * g->ow * g->m;
    if (total <= 0) return cudaSuccess;
    k_qconv_direct_nhwc<<<kc_blocks(total, 128), 128, 0, s>>>(x, w, *g, *q, y);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_q8_maxpool_nhwc(const void *x, void *y, const kc_qconv_geom *g,
                                          int sgn, cudaStream_t s) {
    int64_t total = g->n * g->oh * g->ow * g->c;
    if (total <= 0) return cudaSuccess;
    if (g->c % 16 == 0 && al(x, 16) && al(y, 16))
        k_q8_maxpool_nhwc<4><<<kc_blocks(total / 16, 256), 256, 0, s>>>(
            (const uint8_t *)x, (uint8_t *)y, *g, sgn);
    else if (g->c % 4 == 0 && al(x, 4) && al(y, 4))
        k_q8_maxpool_nhwc<1><<<kc_blocks(total / 4, 256), 256, 0, s>>>(
            (const uint8_t *)x, (uint8_t *)y, *g, sgn);
    else
        k_q8_maxpool_nhwc_b<<<kc_blocks(total, 256), 256, 0, s>>>(x, y, *g, sgn);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_convint_direct(const void *x, const void *w, const kc_qconv_geom *g,
                                         const kc_qint_zp *z, const kc_qint_out *o, void *y,
                                         cudaStream_t s) {
    if (g->group < 1 || g->m % g->group || g->c % g->group || g->od < 1 || g->dp < 1 ||
        g->kd < 1 || (o->to_float && !o->scale))
        return cudaErrorInvalidValue;
    int64_t total = g->n * g->m * g->od * g->oh * g->ow;
    if (total <= 0) return cudaSuccess;
    k_convint_direct<<<kc_blocks(total, 128), 128, 0, s>>>(x, w, *g, *z, *o, y);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_matmulint(const void *a, const void *b, int64_t batch, int64_t M,
                                    int64_t K, int64_t N, const kc_qint_zp *z,
                                    const kc_qint_out *o, void *y, cudaStream_t s) {
    if (batch < 0 || M < 0 || K < 0 || N < 0 || (o->to_float && !o->scale))
        return cudaErrorInvalidValue;
    if (batch == 0 || M == 0 || N == 0) return cudaSuccess;
    if ((M + 15) / 16 > 65535 || (N + 15) / 16 > 2147483647) return cudaErrorInvalidValue;
    for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
        int64_t nb = batch - b0 < 65535 ? batch - b0 : 65535;
        dim3 grid((unsigned)((N + 15) / 16), (unsigned)((M + 15) / 16), (unsigned)nb);
        k_matmulint<<<grid, dim3(16, 16), 0, s>>>(a, b, b0, M, K, N, *z, *o, y);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}
