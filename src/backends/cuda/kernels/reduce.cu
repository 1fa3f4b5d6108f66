// reduce.cu: reductions (sums in float64, like the reference), ArgMax/ArgMin
// and Softmax/LogSoftmax (float32 statistics; a warp per row holding the row
// in registers when it is short, a block per row when long, a thread per
// column when the axis is not innermost).
#include "kc_device.cuh"
#include "reduce_kernels.h"

// ---------------------------------------------------------------- Reduce*
__device__ __forceinline__ int64_t kr_koff(const kc_rgeom &g, int64_t o) {
    int64_t off = 0;
    for (int d = g.krank - 1; d >= 0; d--) {
        int64_t q = o / g.kdims[d];
        off += (o - q * g.kdims[d]) * g.kst[d];
        o = q;
    }
    return off;
}
__device__ __forceinline__ int64_t kr_roff(const kc_rgeom &g, int64_t r) {
    if (g.rrank == 1) return r * g.rst[0];
    int64_t off = 0;
    for (int d = g.rrank - 1; d >= 0; d--) {
        int64_t q = r / g.rdims[d];
        off += (r - q * g.rdims[d]) * g.rst[d];
        r = q;
    }
    return off;
}

__device__ __forceinline__ double kr_init(int op) {
    switch (op) {
    case KR_MAX: return -INFINITY;
    case KR_MIN: return INFINITY;
    case KR_PROD: return 1.0;
    default: return 0.0;
    }
}
// NaN propagates through max/min (numpy), once seen it stays.
__device__ __forceinline__ double kr_upd(int op, double a, double v) {
    switch (op) {
    case KR_MAX: return (v > a || v != v) ? v : a;
    case KR_MIN: return (v < a || v != v) ? v : a;
    case KR_PROD: return a * v;
    case KR_L1: return a + fabs(v);
    case KR_L2: case KR_SUMSQ: return a + v * v;
    default: return a + v;
    }
}
__device__ __forceinline__ double kr_comb(int op, double a, double b) {
    switch (op) {
    case KR_MAX: return (a != a || b != b) ? a + b : a > b ? a : b;
    case KR_MIN: return (a != a || b != b) ? a + b : a < b ? a : b;
    case KR_PROD: return a * b;
    default: return a + b;
    }
}
__device__ __forceinline__ double kr_fin(int op, double a, int64_t nred) {
    switch (op) {
    case KR_MEAN: return nred ? a / (double)nred : NAN;
    case KR_L2: return sqrt(a);
    case KR_LOGSUM: return log(a);
    default: return a;
    }
}
// LogSumExp's shift: the largest finite value; NaN if any value is NaN.
__device__ __forceinline__ double kr_lse_upd(double m, double v) {
    if (v != v) return v;
    return (isfinite(v) && v > m) ? v : m;
}

// Element loads as double and result stores: float64 data stays float64.
template <class T> __device__ __forceinline__ double kr_ld(T v) { return (double)kc_f(v); }
template <> __device__ __forceinline__ double kr_ld<double>(double v) { return v; }
template <class T> __device__ __forceinline__ T kr_st(double a) { return kc_to<T>((float)a); }
template <> __device__ __forceinline__ double kr_st<double>(double a) { return a; }

template <class T>
__global__ void k_reduce_thread(int op, const __grid_constant__ kc_rgeom g, const T *x, T *y) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < g.nout;
         o += (int64_t)gridDim.x * blockDim.x) {
        const T *p = x + kr_koff(g, o);
        double acc;
        if (op == KR_LSE) {
            double m = -INFINITY;
            for (int64_t r = 0; r < g.nred; r++) m = kr_lse_upd(m, kr_ld<T>(p[kr_roff(g, r)]));
            if (m == -INFINITY) m = 0;
            double s = 0;
            for (int64_t r = 0; r < g.nred && m == m; r++)
                s += exp(kr_ld<T>(p[kr_roff(g, r)]) - m);
            acc = m == m ? log(s) + m : m;
        } else {
            acc = kr_init(op);
            for (int64_t r = 0; r < g.nred; r++) acc = kr_upd(op, acc, kr_ld<T>(p[kr_roff(g, r)]));
            acc = kr_fin(op, acc, g.nred);
        }
        y[o] = kr_st<T>(acc);
    }
}

// Tree over the block in shared memory; every thread gets the result.
__device__ __forceinline__ double kr_block(int op, double v, double *sh) {
    __syncthreads(); // sh may still be read from a previous call
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = kr_comb(op, sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    return sh[0];
}

template <class T>
__global__ void k_reduce_block(int op, const __grid_constant__ kc_rgeom g, const T *x, T *y) {
    __shared__ double sh[256];
    for (int64_t o = blockIdx.x; o < g.nout; o += gridDim.x) {
        const T *p = x + kr_koff(g, o);
        double acc;
        if (op == KR_LSE) {
            double m = -INFINITY;
            for (int64_t r = threadIdx.x; r < g.nred; r += blockDim.x)
                m = kr_lse_upd(m, kr_ld<T>(p[kr_roff(g, r)]));
            m = kr_block(KR_MAX, m, sh);
            if (m == -INFINITY) m = 0;
            double s = 0;
            for (int64_t r = threadIdx.x; r < g.nred && m == m; r += blockDim.x)
                s += exp(kr_ld<T>(p[kr_roff(g, r)]) - m);
            s = kr_block(KR_SUM, s, sh);
            acc = m == m ? log(s) + m : m;
        } else {
            acc = kr_init(op);
            for (int64_t r = threadIdx.x; r < g.nred; r += blockDim.x)
                acc = kr_upd(op, acc, kr_ld<T>(p[kr_roff(g, r)]));
            acc = kr_fin(op, kr_block(op, acc, sh), g.nred);
        }
        if (threadIdx.x == 0) y[o] = kr_st<T>(acc);
    }
}

template <class T>
static void kc_reduce_t(int op, const kc_rgeom *g, const void *x, void *y, cudaStream_t st) {
    bool inner_contig = g->rrank > 0 && g->rst[g->rrank - 1] == 1;
    if (g->nred >= 256 && (inner_contig || g->nout < 2048)) {
        unsigned b = g->nout > 65536 ? 65536u : (unsigned)g->nout;
        k_reduce_block<T><<<b, 256, 0, st>>>(op, *g, (const T *)x, (T *)y);
    } else {
        k_reduce_thread<T><<<kc_blocks(g->nout, 128), 128, 0, st>>>(op, *g, (const T *)x, (T *)y);
    }
}

extern "C" cudaError_t kc_reduce(int op, int dt, const kc_rgeom *g, const void *x, void *y,
                                 cudaStream_t st) {
    if (g->nout <= 0) return cudaSuccess;
    switch (dt) {
    case KC_F32: kc_reduce_t<float>(op, g, x, y, st); break;
    case KC_F16: kc_reduce_t<__half>(op, g, x, y, st); break;
    case KC_BF16: kc_reduce_t<__nv_bfloat16>(op, g, x, y, st); break;
    case KC_F64: kc_reduce_t<double>(op, g, x, y, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ---------------------------------------------------------------- ArgMax/Min
__device__ __forceinline__ bool ka_take(float v, float b, bool mx, bool last) {
    if (b != b) return last && v != v;
    if (v != v) return true;
    if (mx) return last ? v >= b : v > b;
    return last ? v <= b : v < b;
}

template <class T>
__global__ void k_argext(bool mx, bool last, int64_t outer, int64_t n, int64_t inner,
                         const T *x, long long *y) {
    int64_t total = outer * inner;
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t oo = o / inner, i = o - oo * inner;
        const T *p = x + oo * n * inner + i;
        float b = kc_f(p[0]);
        long long best = 0;
        for (int64_t k = 1; k < n; k++) {
            float v = kc_f(p[k * inner]);
            if (ka_take(v, b, mx, last)) {
                b = v;
                best = k;
            }
        }
        y[o] = best;
    }
}

// Integer inputs (CLIP's text tower takes the ArgMax of int32 token ids):
// compared in their own type, no NaN.
template <class T>
__global__ void k_argext_int(bool mx, bool last, int64_t outer, int64_t n, int64_t inner,
                             const T *x, long long *y) {
    int64_t total = outer * inner;
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t oo = o / inner, i = o - oo * inner;
        const T *p = x + oo * n * inner + i;
        T b = p[0];
        long long best = 0;
        for (int64_t k = 1; k < n; k++) {
            T v = p[k * inner];
            bool take = mx ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
            if (take) {
                b = v;
                best = k;
            }
        }
        y[o] = best;
    }
}

extern "C" int kc_argext_dtype_ok(int dt) {
    switch (dt) {
    case KC_F32: case KC_F16: case KC_BF16: case KC_I8: case KC_U8: case KC_I16:
    case KC_U16: case KC_I32: case KC_U32: case KC_I64: case KC_U64: return 1;
    default: return 0;
    }
}

extern "C" cudaError_t kc_argext(int is_max, int last, int dt, int64_t outer, int64_t n,
                                 int64_t inner, const void *x, void *y, cudaStream_t st) {
    int64_t total = outer * inner;
    if (total <= 0) return cudaSuccess;
    unsigned b = kc_blocks(total, 128);
    switch (dt) {
    case KC_F32:
        k_argext<float><<<b, 128, 0, st>>>(is_max, last, outer, n, inner, (const float *)x,
                                           (long long *)y);
        break;
    case KC_F16:
        k_argext<__half><<<b, 128, 0, st>>>(is_max, last, outer, n, inner, (const __half *)x,
                                            (long long *)y);
        break;
    case KC_BF16:
        k_argext<__nv_bfloat16><<<b, 128, 0, st>>>(is_max, last, outer, n, inner,
                                                   (const __nv_bfloat16 *)x, (long long *)y);
        break;
#define KA_INT(code, T)                                                                   \
    case code:                                                                            \
        k_argext_int<T><<<b, 128, 0, st>>>(is_max, last, outer, n, inner, (const T *)x,   \
                                           (long long *)y);                               \
        break;
    KA_INT(KC_I8, int8_t)
    KA_INT(KC_U8, uint8_t)
    KA_INT(KC_I16, int16_t)
    KA_INT(KC_U16, uint16_t)
    KA_INT(KC_I32, int32_t)
    KA_INT(KC_U32, uint32_t)
    KA_INT(KC_I64, int64_t)
    KA_INT(KC_U64, uint64_t)
#undef KA_INT
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ---------------------------------------------------------------- Softmax
// A warp per row of n <= 32 * K elements, kept in registers: one read, one
// write. Padding lanes hold -inf (exp gives 0, max ignores them).
template <class T, int K>
__global__ void k_softmax_warp(bool lg, int64_t rows, int n, const T *x, T *y) {
    int lane = threadIdx.x & 31;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = warp; row < rows; row += nwarps) {
        const T *p = x + row * n;
        T *q = y + row * n;
        float v[K];
        float m = -INFINITY;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int j = lane + 32 * k;
            v[k] = j < n ? kc_f(p[j]) : -INFINITY;
            m = fmaxf(m, v[k]);
        }
        m = kc_warp_max(m);
        float s = 0;
#pragma unroll
        for (int k = 0; k < K; k++)
            if (lane + 32 * k < n) s += expf(v[k] - m);
        s = kc_warp_sum(s);
        float inv = 1.0f / s, shift = m + logf(s);
#pragma unroll
        for (int k = 0; k < K; k++) {
            int j = lane + 32 * k;
            if (j < n) q[j] = kc_to<T>(lg ? v[k] - shift : expf(v[k] - m) * inv);
        }
    }
}

// A block per long row: max, sum, write (the row stays in L1/L2 between).
template <class T>
__global__ void k_softmax_block(bool lg, int64_t rows, int64_t n, const T *x, T *y) {
    __shared__ float sh[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const T *p = x + row * n;
        T *q = y + row * n;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, kc_f(p[j]));
        m = kc_block_max(m, sh);
        float s = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(kc_f(p[j]) - m);
        s = kc_block_sum(s, sh);
        float inv = 1.0f / s, shift = m + logf(s);
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            float v = kc_f(p[j]);
            q[j] = kc_to<T>(lg ? v - shift : expf(v - m) * inv);
        }
    }
}

// A thread per (outer, inner) column; neighbours read neighbouring columns.
template <class T>
__global__ void k_softmax_col(bool lg, int64_t outer, int64_t n, int64_t inner, const T *x,
                              T *y) {
    int64_t total = outer * inner;
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < total;
         c += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = c / inner, i = c - o * inner;
        const T *p = x + o * n * inner + i;
        T *q = y + o * n * inner + i;
        float m = -INFINITY;
        for (int64_t k = 0; k < n; k++) m = fmaxf(m, kc_f(p[k * inner]));
        float s = 0;
        for (int64_t k = 0; k < n; k++) s += expf(kc_f(p[k * inner]) - m);
        float inv = 1.0f / s, shift = m + logf(s);
        for (int64_t k = 0; k < n; k++) {
            float v = kc_f(p[k * inner]);
            q[k * inner] = kc_to<T>(lg ? v - shift : expf(v - m) * inv);
        }
    }
}

template <class T>
static void kc_softmax_t(bool lg, int64_t outer, int64_t n, int64_t inner, const void *x,
                         void *y, cudaStream_t st) {
    const T *X = (const T *)x;
    T *Y = (T *)y;
    if (inner == 1 && n <= 1024) {
        unsigned b = kc_blocks(outer * 32, 128);
        int nn = (int)n;
        if (n <= 32) k_softmax_warp<T, 1><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
        else if (n <= 64) k_softmax_warp<T, 2><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
        else if (n <= 128) k_softmax_warp<T, 4><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
        else if (n <= 256) k_softmax_warp<T, 8><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
        else if (n <= 512) k_softmax_warp<T, 16><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
        else k_softmax_warp<T, 32><<<b, 128, 0, st>>>(lg, outer, nn, X, Y);
    } else if (inner == 1) {
        unsigned b = outer > 65536 ? 65536u : (unsigned)outer;
        k_softmax_block<T><<<b, 512, 0, st>>>(lg, outer, n, X, Y);
    } else {
        k_softmax_col<T><<<kc_blocks(outer * inner, 128), 128, 0, st>>>(lg, outer, n, inner, X, Y);
    }
}

extern "C" cudaError_t kc_softmax(int is_log, int dt, int64_t outer, int64_t n, int64_t inner,
                                  const void *x, void *y, cudaStream_t st) {
    if (outer <= 0 || n <= 0 || inner <= 0) return cudaSuccess;
    switch (dt) {
    case KC_F32: kc_softmax_t<float>(is_log, outer, n, inner, x, y, st); break;
    case KC_F16: kc_softmax_t<__half>(is_log, outer, n, inner, x, y, st); break;
    case KC_BF16: kc_softmax_t<__nv_bfloat16>(is_log, outer, n, inner, x, y, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
