// data.cu: data-movement kernels (strided views, tiled transpose, fill, pad,
// gather/scatter, trilu, one-hot, range). Elements move as opaque units of
// 1/2/4/8/16 bytes; grid-stride loops; 32-bit index arithmetic when the
// element count allows it (64-bit division is several times slower), 64-bit
// offsets always.
#include "data_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {

template <int N> struct unit_of;
template <> struct unit_of<1> { typedef uint8_t T; };
template <> struct unit_of<2> { typedef uint16_t T; };
template <> struct unit_of<4> { typedef uint32_t T; };
template <> struct unit_of<8> { typedef uint2 T; };
template <> struct unit_of<16> { typedef uint4 T; };

const int kThreads = 256;

unsigned blocks_for(int64_t n, int threads = kThreads) {
    int64_t b = (n + threads - 1) / threads;
    if (b > (1 << 20)) b = 1 << 20; // grid-stride covers the rest
    return (unsigned)(b < 1 ? 1 : b);
}

bool small(int64_t n) { return n < ((int64_t)1 << 31); }

// ------------------------------------------------------------ strided view
template <typename T, typename I>
__global__ void k_copy_view(T *__restrict__ dst, const T *__restrict__ src, kc_view v, I n) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I rem = i;
        int64_t so = 0, dof = 0;
#pragma unroll
        for (int a = KC_MAXD - 1; a >= 0; a--) {
            if (a < v.rank) {
                I d = (I)v.dims[a];
                I q = rem / d;
                I ia = rem - q * d;
                rem = q;
                so += (int64_t)ia * v.sstr[a];
                dof += (int64_t)ia * v.dstr[a];
            }
        }
        dst[dof] = src[so];
    }
}

template <int N>
cudaError_t copy_view_n(void *dst, const void *src, const kc_view *v, int64_t n, cudaStream_t s) {
    typedef typename unit_of<N>::T T;
    if (small(n))
        k_copy_view<T, uint32_t><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)src, *v,
                                                                     (uint32_t)n);
    else
        k_copy_view<T, uint64_t><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)src, *v,
                                                                     (uint64_t)n);
    return cudaGetLastError();
}

// ------------------------------------------------------------ transpose
template <typename T>
__global__ void k_transpose_last2(T *__restrict__ dst, const T *__restrict__ src, int64_t batch,
                                  int64_t R, int64_t C) {
    __shared__ T tile[32][33]; // +1 column: no bank conflicts on the column read
    int64_t tiles_c = (C + 31) / 32, tiles_r = (R + 31) / 32, per_b = tiles_c * tiles_r;
    for (int64_t t = blockIdx.x; t < batch * per_b; t += gridDim.x) {
        int64_t b = t / per_b, rem = t - b * per_b;
        int64_t tr = rem / tiles_c, tc = rem - tr * tiles_c;
        int64_t r0 = tr * 32, c0 = tc * 32;
        const T *sp = src + b * R * C;
        T *dp = dst + b * R * C;
        for (int y = threadIdx.y; y < 32; y += 8) {
            int64_t r = r0 + y, c = c0 + threadIdx.x;
            if (r < R && c < C) tile[y][threadIdx.x] = sp[r * C + c];
        }
        __syncthreads();
        for (int y = threadIdx.y; y < 32; y += 8) {
            int64_t c = c0 + y, r = r0 + threadIdx.x;
            if (r < R && c < C) dp[c * R + r] = tile[threadIdx.x][y];
        }
        __syncthreads();
    }
}

template <int N>
cudaError_t transpose_n(void *dst, const void *src, int64_t batch, int64_t R, int64_t C,
                        cudaStream_t s) {
    typedef typename unit_of<N>::T T;
    int64_t tiles = batch * ((R + 31) / 32) * ((C + 31) / 32);
    unsigned blocks = (unsigned)(tiles > (1 << 20) ? (1 << 20) : tiles);
    k_transpose_last2<T><<<blocks, dim3(32, 8), 0, s>>>((T *)dst, (const T *)src, batch, R, C);
    return cudaGetLastError();
}

// ------------------------------------------------------------ fill
template <typename T>
__global__ void k_fill(T *dst, int64_t n, T v) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

template <typename T> T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof v); // little-endian: the first bytes of b
    return v;
}

// ------------------------------------------------------------ pad
__device__ __forceinline__ int64_t pmod(int64_t a, int64_t m) {
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

template <typename T>
__global__ void k_pad(T *__restrict__ dst, const T *__restrict__ src, kc_pad_params p, int64_t n,
                      T fill) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = 0;
        bool pad = false;
#pragma unroll
        for (int a = KC_MAXD - 1; a >= 0; a--) {
            if (a < p.rank) {
                int64_t o = rem % p.odims[a];
                rem /= p.odims[a];
                int64_t j = o - p.off[a], de = p.de[a], m;
                if (j >= 0 && j < de) m = j;
                else if (p.mode == KC_PAD_CONSTANT) m = -1;
                else if (p.mode == KC_PAD_EDGE) m = j < 0 ? 0 : de - 1;
                else if (p.mode == KC_PAD_WRAP) m = pmod(j, de);
                else if (de == 1) m = 0;
                else {
                    int64_t per = 2 * (de - 1);
                    m = pmod(j, per);
                    if (m >= de) m = per - m;
                }
                if (m < 0) pad = true;
                else off += (p.lo[a] + m) * p.istr[a];
            }
        }
        dst[i] = pad ? fill : src[off];
    }
}

// ------------------------------------------------------------ dynamic slice
__device__ __forceinline__ int64_t rd_index(const void *p, int is64, int k) {
    return is64 ? ((const int64_t *)p)[k] : (int64_t)((const int32_t *)p)[k];
}

template <typename T>
__global__ void k_slice_dyn(T *__restrict__ dst, const T *__restrict__ src, kc_slice_dyn_params p,
                            const void *starts, const void *axes, const void *steps, int64_t n) {
    __shared__ int64_t s_step[KC_MAXD];
    __shared__ int64_t s_off;
    if (threadIdx.x == 0) {
        int64_t start[KC_MAXD];
        for (int a = 0; a < KC_MAXD; a++) {
            start[a] = 0;
            s_step[a] = 1;
        }
        for (int k = 0; k < p.n && k < KC_MAXD; k++) {
            int64_t ax = axes ? rd_index(axes, p.axes64, k) : k;
            if (ax < 0) ax += p.rank;
            if (ax < 0 || ax >= p.rank) continue; // invalid: inference rejected it
            int64_t st = steps ? rd_index(steps, p.steps64, k) : 1;
            if (st == 0) st = 1;
            int64_t d = p.xdims[ax], sv = rd_index(starts, p.starts64, k);
            if (d == 0) sv = 0;
            else {
                if (sv < 0) sv += d;
                int64_t hi = st > 0 ? d : d - 1;
                sv = sv < 0 ? 0 : sv > hi ? hi : sv;
            }
            start[ax] = sv;
            s_step[ax] = st;
        }
        int64_t off = 0;
        for (int a = 0; a < p.rank && a < KC_MAXD; a++) off += start[a] * p.xstr[a];
        s_off = off;
    }
    __syncthreads();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = s_off;
#pragma unroll
        for (int a = KC_MAXD - 1; a >= 0; a--) {
            if (a < p.rank) {
                int64_t c = rem % p.ydims[a];
                rem /= p.ydims[a];
                off += c * s_step[a] * p.xstr[a];
            }
        }
        dst[i] = src[off];
    }
}

// ------------------------------------------------------------ gather
template <typename T, typename I>
__global__ void k_gather(T *__restrict__ dst, const T *__restrict__ src, const void *idx, int idx64,
                         I A, I ni, I inner, I n) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I k = i % inner, t = i / inner;
        I j = t % ni, o = t / ni;
        int64_t v = idx64 ? ((const int64_t *)idx)[j] : (int64_t)((const int32_t *)idx)[j];
        if (v < 0) v += (int64_t)A;
        if (v < 0 || v >= (int64_t)A) {
            dst[i] = T();
            continue;
        }
        dst[i] = src[((int64_t)o * (int64_t)A + v) * (int64_t)inner + (int64_t)k];
    }
}

template <int N>
cudaError_t gather_n(void *dst, const void *src, const void *idx, int idx64, int64_t outer,
                     int64_t A, int64_t ni, int64_t inner, cudaStream_t s) {
    typedef typename unit_of<N>::T T;
    int64_t n = outer * ni * inner;
    if (small(n) && small(outer * A * inner))
        k_gather<T, uint32_t><<<blocks_for(n), kThreads, 0, s>>>(
            (T *)dst, (const T *)src, idx, idx64, (uint32_t)A, (uint32_t)ni, (uint32_t)inner,
            (uint32_t)n);
    else
        k_gather<T, uint64_t><<<blocks_for(n), kThreads, 0, s>>>(
            (T *)dst, (const T *)src, idx, idx64, (uint64_t)A, (uint64_t)ni, (uint64_t)inner,
            (uint64_t)n);
    return cudaGetLastError();
}

// ------------------------------------------------------------ elements
// Offset into the data tensor for index element i, or -1 when out of range.
__device__ __forceinline__ int64_t elem_offset(const kc_elem_params &p, const void *idx, int64_t i) {
    int64_t rem = i, off = 0;
    int64_t v = p.idx64 ? ((const int64_t *)idx)[i] : (int64_t)((const int32_t *)idx)[i];
    if (v < 0) v += p.axis_len;
    if (v < 0 || v >= p.axis_len) return -1;
#pragma unroll
    for (int a = KC_MAXD - 1; a >= 0; a--) {
        if (a < p.rank) {
            int64_t c = rem % p.idims[a];
            rem /= p.idims[a];
            off += (a == p.axis ? v : c) * p.xstr[a];
        }
    }
    return off;
}

template <typename T>
__global__ void k_gather_elements(T *__restrict__ dst, const T *__restrict__ x, const void *idx,
                                  kc_elem_params p, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off = elem_offset(p, idx, i);
        dst[i] = off < 0 ? T() : x[off];
    }
}

template <typename T>
__global__ void k_scatter_elements(T *__restrict__ y, const void *idx, const T *__restrict__ upd,
                                   kc_elem_params p, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off = elem_offset(p, idx, i);
        if (off >= 0) y[off] = upd[i];
    }
}

template <typename T>
__global__ void k_scatter_nd(T *__restrict__ y, const void *idx, const T *__restrict__ upd,
                             kc_scatter_nd_params p, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t mi = i / p.slice, e = i - mi * p.slice, off = 0;
        bool ok = true;
        for (int j = 0; j < p.k && j < KC_MAXD; j++) {
            int64_t t = mi * p.k + j;
            int64_t v = p.idx64 ? ((const int64_t *)idx)[t] : (int64_t)((const int32_t *)idx)[t];
            if (v < 0) v += p.xdims[j];
            if (v < 0 || v >= p.xdims[j]) ok = false;
            off += v * p.xstr[j];
        }
        if (ok) y[off + e] = upd[i];
    }
}

// ------------------------------------------------------------ scatter reductions
__device__ __forceinline__ float red_f(float a, float b, int red) {
    switch (red) {
    case KC_RED_ADD: return a + b;
    case KC_RED_MUL: return a * b;
    case KC_RED_MAX: return (b > a || isnan(b)) ? b : a;
    default: return (b < a || isnan(b)) ? b : a;
    }
}

__device__ __forceinline__ unsigned long long red_i(long long a, long long b, int red) {
    switch (red) {
    case KC_RED_ADD: return (unsigned long long)a + (unsigned long long)b;
    case KC_RED_MUL: return (unsigned long long)a * (unsigned long long)b;
    case KC_RED_MAX: return (unsigned long long)(b > a ? b : a);
    default: return (unsigned long long)(b < a ? b : a);
    }
}

// y[off] = red(y[off], upd[ui]) atomically (compare-and-swap loops; the
// 16-bit kinds swap the aligned 32-bit word holding the element).
__device__ void atomic_reduce(void *y, int64_t off, const void *upd, int64_t ui, int red, int kind) {
    if (kind == KC_RK_F32) {
        unsigned int *a = (unsigned int *)y + off;
        float b = ((const float *)upd)[ui];
        unsigned int old = *a, as;
        do {
            as = old;
            old = atomicCAS(a, as, __float_as_uint(red_f(__uint_as_float(as), b, red)));
        } while (as != old);
    } else if (kind == KC_RK_I32) {
        unsigned int *a = (unsigned int *)y + off;
        int b = ((const int *)upd)[ui];
        unsigned int old = *a, as;
        do {
            as = old;
            old = atomicCAS(a, as, (unsigned int)red_i((int)as, b, red));
        } while (as != old);
    } else if (kind == KC_RK_I64) {
        unsigned long long *a = (unsigned long long *)y + off;
        long long b = ((const long long *)upd)[ui];
        unsigned long long old = *a, as;
        do {
            as = old;
            old = atomicCAS(a, as, red_i((long long)as, b, red));
        } while (as != old);
    } else {
        unsigned short *e = (unsigned short *)y + off;
        unsigned int *w = (unsigned int *)((uintptr_t)e & ~(uintptr_t)3);
        int sh = ((uintptr_t)e & 2) ? 16 : 0;
        unsigned short bu = ((const unsigned short *)upd)[ui];
        float b = kind == KC_RK_F16 ? __half2float(__ushort_as_half(bu))
                                    : __bfloat162float(__ushort_as_bfloat16(bu));
        unsigned int old = *w, as;
        do {
            as = old;
            unsigned short h = (unsigned short)((as >> sh) & 0xffffu);
            float a = kind == KC_RK_F16 ? __half2float(__ushort_as_half(h))
                                        : __bfloat162float(__ushort_as_bfloat16(h));
            float r = red_f(a, b, red);
            unsigned short nh = kind == KC_RK_F16 ? __half_as_ushort(__float2half_rn(r))
                                                  : __bfloat16_as_ushort(__float2bfloat16_rn(r));
            unsigned int nw = (as & ~(0xffffu << sh)) | ((unsigned int)nh << sh);
            old = atomicCAS(w, as, nw);
        } while (as != old);
    }
}

__global__ void k_scatter_elements_reduce(void *y, const void *idx, const void *upd,
                                          kc_elem_params p, int red, int kind, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off = elem_offset(p, idx, i);
        if (off >= 0) atomic_reduce(y, off, upd, i, red, kind);
    }
}

__global__ void k_scatter_nd_reduce(void *y, const void *idx, const void *upd,
                                    kc_scatter_nd_params p, int red, int kind, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t mi = i / p.slice, e = i - mi * p.slice, off = 0;
        bool ok = true;
        for (int j = 0; j < p.k && j < KC_MAXD; j++) {
            int64_t t = mi * p.k + j;
            int64_t v = p.idx64 ? ((const int64_t *)idx)[t] : (int64_t)((const int32_t *)idx)[t];
            if (v < 0) v += p.xdims[j];
            if (v < 0 || v >= p.xdims[j]) ok = false;
            off += v * p.xstr[j];
        }
        if (ok) atomic_reduce(y, off + e, upd, i, red, kind);
    }
}

// ------------------------------------------------------------ trilu, one-hot
template <typename T>
__global__ void k_trilu(T *__restrict__ dst, const T *__restrict__ src, int64_t rows, int64_t cols,
                        int64_t k, int upper, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i % cols, r = (i / cols) % rows;
        bool keep = upper ? j >= r + k : j <= r + k;
        dst[i] = keep ? src[i] : T();
    }
}

template <typename T>
__global__ void k_onehot(T *__restrict__ dst, const void *ind, int idx64, const T *__restrict__ vals,
                         int64_t depth, int64_t post, int64_t n) {
    T off = vals[0], on = vals[1];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t q = i % post, t = i / post, d = t % depth, pp = t / depth;
        int64_t ii = pp * post + q;
        int64_t v = idx64 ? ((const int64_t *)ind)[ii] : (int64_t)((const int32_t *)ind)[ii];
        if (v < 0 && v >= -depth) v += depth;
        dst[i] = v == d ? on : off;
    }
}

__global__ void k_range_f32(float *dst, int64_t n, const float *start, const float *delta) {
    double a = (double)*start, d = (double)*delta;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = (float)__dadd_rn(a, __dmul_rn((double)i, d)); // no FMA: match the host
}

template <typename T>
__global__ void k_range_int(T *dst, int64_t n, const T *start, const T *delta) {
    uint64_t a = (uint64_t)(int64_t)*start, d = (uint64_t)(int64_t)*delta;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = (T)(a + (uint64_t)i * d);
}

} // namespace

// ------------------------------------------------------------ C seam
extern "C" cudaError_t kc_copy_view(void *dst, const void *src, const kc_view *v, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < v->rank; a++) n *= v->dims[a];
    if (n <= 0) return cudaSuccess;
    if (v->rank < 1 || v->rank > KC_MAXD) return cudaErrorInvalidValue;
    switch (v->unit) {
    case 1: return copy_view_n<1>(dst, src, v, n, s);
    case 2: return copy_view_n<2>(dst, src, v, n, s);
    case 4: return copy_view_n<4>(dst, src, v, n, s);
    case 8: return copy_view_n<8>(dst, src, v, n, s);
    case 16: return copy_view_n<16>(dst, src, v, n, s);
    default: return cudaErrorInvalidValue;
    }
}

// ------------------------------------------------------------ GatherND
template <typename T>
__global__ void k_gather_nd(T *__restrict__ dst, const T *__restrict__ src,
                            const long long *__restrict__ idx, kc_gather_nd_params p, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i / p.slice, e = i - t * p.slice; // tuple, element in its slice
        int64_t bi = t / p.M, off = bi * p.bstride;
        bool ok = true;
        for (int j = 0; j < p.m; j++) {
            long long v = idx[t * p.m + j];
            if (v < 0) v += p.len[j];
            if (v < 0 || v >= p.len[j]) ok = false;
            off += v * p.xstr[j];
        }
        dst[i] = ok ? src[off + e] : T(); // out of range: zeros (the reference fails)
    }
}

template <int N>
cudaError_t gather_nd_n(void *dst, const void *src, const void *idx, const kc_gather_nd_params *p,
                        cudaStream_t s) {
    typedef typename unit_of<N>::T T;
    int64_t n = p->B * p->M * p->slice;
    k_gather_nd<T><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)src,
                                                     (const long long *)idx, *p, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_gather_nd(void *dst, const void *src, const void *idx,
                                    const kc_gather_nd_params *p, int es, cudaStream_t s) {
    if (p->B * p->M * p->slice <= 0) return cudaSuccess;
    if (p->m < 1 || p->m > KC_MAXD) return cudaErrorInvalidValue;
    switch (es) {
    case 1: return gather_nd_n<1>(dst, src, idx, p, s);
    case 2: return gather_nd_n<2>(dst, src, idx, p, s);
    case 4: return gather_nd_n<4>(dst, src, idx, p, s);
    case 8: return gather_nd_n<8>(dst, src, idx, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_transpose_last2(void *dst, const void *src, int64_t batch, int64_t rows,
                                          int64_t cols, int unit, cudaStream_t s) {
    if (batch <= 0 || rows <= 0 || cols <= 0) return cudaSuccess;
    switch (unit) {
    case 1: return transpose_n<1>(dst, src, batch, rows, cols, s);
    case 2: return transpose_n<2>(dst, src, batch, rows, cols, s);
    case 4: return transpose_n<4>(dst, src, batch, rows, cols, s);
    case 8: return transpose_n<8>(dst, src, batch, rows, cols, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_fill(void *dst, int64_t n, const void *value, int es, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    uint64_t bits = 0;
    memcpy(&bits, value, (size_t)es);
    unsigned b = blocks_for(n);
    switch (es) {
    case 1: k_fill<uint8_t><<<b, kThreads, 0, s>>>((uint8_t *)dst, n, from_bits<uint8_t>(bits)); break;
    case 2: k_fill<uint16_t><<<b, kThreads, 0, s>>>((uint16_t *)dst, n, from_bits<uint16_t>(bits)); break;
    case 4: k_fill<uint32_t><<<b, kThreads, 0, s>>>((uint32_t *)dst, n, from_bits<uint32_t>(bits)); break;
    case 8: k_fill<uint64_t><<<b, kThreads, 0, s>>>((uint64_t *)dst, n, bits); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_pad(void *dst, const void *src, const kc_pad_params *p, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->odims[a];
    if (n <= 0) return cudaSuccess;
    unsigned b = blocks_for(n);
    switch (p->es) {
    case 1: k_pad<uint8_t><<<b, kThreads, 0, s>>>((uint8_t *)dst, (const uint8_t *)src, *p, n, from_bits<uint8_t>(p->fill)); break;
    case 2: k_pad<uint16_t><<<b, kThreads, 0, s>>>((uint16_t *)dst, (const uint16_t *)src, *p, n, from_bits<uint16_t>(p->fill)); break;
    case 4: k_pad<uint32_t><<<b, kThreads, 0, s>>>((uint32_t *)dst, (const uint32_t *)src, *p, n, from_bits<uint32_t>(p->fill)); break;
    case 8: k_pad<uint64_t><<<b, kThreads, 0, s>>>((uint64_t *)dst, (const uint64_t *)src, *p, n, p->fill); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_gather(void *dst, const void *src, const void *idx, int idx64,
                                 int64_t outer, int64_t A, int64_t ni, int64_t inner, int unit,
                                 cudaStream_t s) {
    if (outer <= 0 || ni <= 0 || inner <= 0) return cudaSuccess;
    switch (unit) {
    case 1: return gather_n<1>(dst, src, idx, idx64, outer, A, ni, inner, s);
    case 2: return gather_n<2>(dst, src, idx, idx64, outer, A, ni, inner, s);
    case 4: return gather_n<4>(dst, src, idx, idx64, outer, A, ni, inner, s);
    case 8: return gather_n<8>(dst, src, idx, idx64, outer, A, ni, inner, s);
    case 16: return gather_n<16>(dst, src, idx, idx64, outer, A, ni, inner, s);
    default: return cudaErrorInvalidValue;
    }
}

#define KC_BY_SIZE(es, KERNEL, ...)                                                     \
    switch (es) {                                                                       \
    case 1: KERNEL<uint8_t>(__VA_ARGS__); break;                                        \
    case 2: KERNEL<uint16_t>(__VA_ARGS__); break;                                       \
    case 4: KERNEL<uint32_t>(__VA_ARGS__); break;                                       \
    case 8: KERNEL<uint64_t>(__VA_ARGS__); break;                                       \
    default: return cudaErrorInvalidValue;                                              \
    }

namespace {
template <typename T>
void launch_gather_elements(void *dst, const void *x, const void *idx, const kc_elem_params *p,
                            int64_t n, cudaStream_t s) {
    k_gather_elements<T><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)x, idx, *p, n);
}
template <typename T>
void launch_scatter_elements(void *y, const void *idx, const void *upd, const kc_elem_params *p,
                             int64_t n, cudaStream_t s) {
    k_scatter_elements<T><<<blocks_for(n), kThreads, 0, s>>>((T *)y, idx, (const T *)upd, *p, n);
}
template <typename T>
void launch_scatter_nd(void *y, const void *idx, const void *upd, const kc_scatter_nd_params *p,
                       int64_t n, cudaStream_t s) {
    k_scatter_nd<T><<<blocks_for(n), kThreads, 0, s>>>((T *)y, idx, (const T *)upd, *p, n);
}
template <typename T>
void launch_slice_dyn(void *dst, const void *src, const kc_slice_dyn_params *p, const void *starts,
                      const void *axes, const void *steps, int64_t n, cudaStream_t s) {
    k_slice_dyn<T><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)src, *p, starts, axes,
                                                       steps, n);
}
template <typename T>
void launch_trilu(void *dst, const void *src, int64_t rows, int64_t cols, int64_t k, int upper,
                  int64_t n, cudaStream_t s) {
    k_trilu<T><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, (const T *)src, rows, cols, k, upper, n);
}
template <typename T>
void launch_onehot(void *dst, const void *ind, int idx64, const void *vals, int64_t depth,
                   int64_t post, int64_t n, cudaStream_t s) {
    k_onehot<T><<<blocks_for(n), kThreads, 0, s>>>((T *)dst, ind, idx64, (const T *)vals, depth,
                                                    post, n);
}
} // namespace

extern "C" cudaError_t kc_gather_elements(void *dst, const void *x, const void *idx,
                                          const kc_elem_params *p, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->idims[a];
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(p->es, launch_gather_elements, dst, x, idx, p, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_scatter_elements(void *y, const void *idx, const void *upd,
                                           const kc_elem_params *p, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->idims[a];
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(p->es, launch_scatter_elements, y, idx, upd, p, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_scatter_nd(void *y, const void *idx, const void *upd,
                                     const kc_scatter_nd_params *p, cudaStream_t s) {
    int64_t n = p->m * p->slice;
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(p->es, launch_scatter_nd, y, idx, upd, p, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_slice_dyn(void *dst, const void *src, const kc_slice_dyn_params *p,
                                    const void *starts, const void *axes, const void *steps,
                                    cudaStream_t s) {
    if (p->rank < 1 || p->rank > KC_MAXD) return cudaErrorInvalidValue;
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->ydims[a];
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(p->es, launch_slice_dyn, dst, src, p, starts, axes, steps, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_scatter_elements_reduce(void *y, const void *idx, const void *upd,
                                                  const kc_elem_params *p, int red, int kind,
                                                  cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->idims[a];
    if (n <= 0) return cudaSuccess;
    k_scatter_elements_reduce<<<blocks_for(n), kThreads, 0, s>>>(y, idx, upd, *p, red, kind, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_scatter_nd_reduce(void *y, const void *idx, const void *upd,
                                            const kc_scatter_nd_params *p, int red, int kind,
                                            cudaStream_t s) {
    int64_t n = p->m * p->slice;
    if (n <= 0) return cudaSuccess;
    k_scatter_nd_reduce<<<blocks_for(n), kThreads, 0, s>>>(y, idx, upd, *p, red, kind, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_trilu(void *dst, const void *src, int64_t batch, int64_t rows,
                                int64_t cols, int64_t k, int upper, int es, cudaStream_t s) {
    int64_t n = batch * rows * cols;
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(es, launch_trilu, dst, src, rows, cols, k, upper, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_onehot(void *dst, const void *ind, int idx64, const void *values,
                                 int64_t pre, int64_t depth, int64_t post, int es,
                                 cudaStream_t s) {
    int64_t n = pre * depth * post;
    if (n <= 0) return cudaSuccess;
    KC_BY_SIZE(es, launch_onehot, dst, ind, idx64, values, depth, post, n, s)
    return cudaGetLastError();
}

extern "C" cudaError_t kc_range(void *dst, int64_t n, int kind, const void *start,
                                const void *delta, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    unsigned b = blocks_for(n);
    if (kind == 0)
        k_range_f32<<<b, kThreads, 0, s>>>((float *)dst, n, (const float *)start,
                                            (const float *)delta);
    else if (kind == 1)
        k_range_int<int32_t><<<b, kThreads, 0, s>>>((int32_t *)dst, n, (const int32_t *)start,
                                                     (const int32_t *)delta);
    else if (kind == 2)
        k_range_int<int64_t><<<b, kThreads, 0, s>>>((int64_t *)dst, n, (const int64_t *)start,
                                                     (const int64_t *)delta);
    else
        return cudaErrorInvalidValue;
    return cudaGetLastError();
}
