// cum.cu: line kernels over one axis of [outer, L, inner], a thread per
// (outer, inner) line walking the axis (consecutive threads take consecutive
// inner positions, so loads coalesce when inner > 1): CumSum / CumProd
// (accumulating like the reference: float32 for 32- and 16-bit floats,
// float64 for float64, wrapping unsigned 64-bit for integers), Hardmax and
// LpNormalization; plus the window generators and EyeLike.
#include "kc_device.cuh"
#include "reduce_kernels.h"

namespace {

__global__ void k_cum(int prod, int excl, int rev, int dt, const void *x, void *y, int64_t outer,
                      int64_t L, int64_t inner) {
    int64_t lines = outer * inner;
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines;
         l += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = l / inner, in = l - o * inner;
        float af = prod ? 1.0f : 0.0f;
        double ad = prod ? 1.0 : 0.0;
        unsigned long long ai = prod ? 1ull : 0ull;
        for (int64_t s = 0; s < L; s++) {
            int64_t pos = rev ? L - 1 - s : s;
            int64_t off = (o * L + pos) * inner + in;
            if (dt == KC_F64) {
                double v = ((const double *)x)[off];
                if (!excl) ad = prod ? ad * v : ad + v;
                ((double *)y)[off] = ad;
                if (excl) ad = prod ? ad * v : ad + v;
            } else if (kc_is_float(dt)) {
                float v = kc_ldf(x, off, dt);
                if (!excl) af = prod ? af * v : af + v;
                kc_stf(y, off, dt, af);
                if (excl) af = prod ? af * v : af + v;
            } else {
                unsigned long long v = (unsigned long long)kc_ldi(x, off, dt);
                if (!excl) ai = prod ? ai * v : ai + v;
                kc_sti(y, off, dt, (long long)ai);
                if (excl) ai = prod ? ai * v : ai + v;
            }
        }
    }
}

__global__ void k_hardmax(int dt, const void *x, void *y, int64_t outer, int64_t L,
                          int64_t inner) {
    int64_t lines = outer * inner;
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines;
         l += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = l / inner, in = l - o * inner, base = o * L * inner + in;
        // the first position of the maximum (a later NaN never wins "> ")
        float mx = kc_ldf(x, base, dt);
        int64_t at = 0;
        for (int64_t s = 1; s < L; s++) {
            float v = kc_ldf(x, base + s * inner, dt);
            if (v > mx) {
                mx = v;
                at = s;
            }
        }
        for (int64_t s = 0; s < L; s++) kc_stf(y, base + s * inner, dt, s == at ? 1.0f : 0.0f);
    }
}

__global__ void k_lpnorm(int p, int dt, const void *x, void *y, int64_t outer, int64_t L,
                         int64_t inner) {
    int64_t lines = outer * inner;
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines;
         l += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = l / inner, in = l - o * inner, base = o * L * inner + in;
        if (dt == KC_F64) {
            const double *xs = (const double *)x + base;
            double acc = 0;
            for (int64_t s = 0; s < L; s++) {
                double v = xs[s * inner];
                acc += p == 1 ? fabs(v) : v * v;
            }
            double nrm = p == 1 ? acc : sqrt(acc);
            for (int64_t s = 0; s < L; s++)
                ((double *)y)[base + s * inner] = nrm == 0 ? 0.0 : xs[s * inner] / nrm;
        } else {
            float acc = 0;
            for (int64_t s = 0; s < L; s++) {
                float v = kc_ldf(x, base + s * inner, dt);
                acc += p == 1 ? fabsf(v) : v * v;
            }
            float nrm = p == 1 ? acc : sqrtf(acc);
            for (int64_t s = 0; s < L; s++)
                kc_stf(y, base + s * inner, dt,
                       nrm == 0 ? 0.0f : kc_ldf(x, base + s * inner, dt) / nrm);
        }
    }
}

__global__ void k_window(int kind, int periodic, int dt, void *y, int64_t n) {
    double N1 = (double)(periodic ? n : n - 1);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        double a = N1 > 0 ? 2.0 * 3.14159265358979323846 * (double)i / N1 : 0, v;
        if (N1 <= 0) v = 1.0;
        else if (kind == 0) v = 0.5 - 0.5 * cos(a);
        else if (kind == 1) v = 25.0 / 46.0 - (21.0 / 46.0) * cos(a);
        else v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a);
        if (dt == KC_F64) ((double *)y)[i] = v;
        else if (kc_is_float(dt)) kc_stf(y, i, dt, (float)v);
        else kc_sti(y, i, dt, (long long)v);
    }
}

__global__ void k_eyelike(int dt, void *y, int64_t rows, int64_t cols, int64_t k) {
    int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        bool one = c - r == k;
        if (dt == KC_F64) ((double *)y)[i] = one ? 1.0 : 0.0;
        else if (kc_is_float(dt)) kc_stf(y, i, dt, one ? 1.0f : 0.0f);
        else kc_sti(y, i, dt, one ? 1 : 0);
    }
}

// TopK's order: a before b when its key is better (larger with largest,
// NaN above every number as in numpy), ties by the lower index (the
// reference's stable sort).
struct tk_key {
    int kind; // 0 float (d), 1 signed (i), 2 unsigned (i as bits)
    double d;
    long long i;
};

__device__ __forceinline__ int tk_cmp(const tk_key &a, const tk_key &b) { // ascending order
    if (a.kind == 0) {
        bool na = a.d != a.d, nb = b.d != b.d;
        if (na || nb) return (int)na - (int)nb;
        return a.d < b.d ? -1 : a.d > b.d;
    }
    if (a.kind == 2) {
        unsigned long long x = (unsigned long long)a.i, y = (unsigned long long)b.i;
        return x < y ? -1 : x > y;
    }
    return a.i < b.i ? -1 : a.i > b.i;
}

__device__ __forceinline__ bool tk_before(const tk_key &a, int64_t ia, const tk_key &b, int64_t ib,
                                          bool largest) {
    int c = tk_cmp(a, b);
    if (largest) c = -c;
    return c < 0 || (c == 0 && ia < ib);
}

__device__ __forceinline__ tk_key tk_load(const void *x, int64_t off, int dt) {
    tk_key k;
    k.kind = kc_is_float(dt) ? 0 : dt == KC_U64 ? 2 : 1;
    k.d = 0;
    k.i = 0;
    if (k.kind == 0) k.d = kc_ldd(x, off, dt);
    else k.i = kc_ldi(x, off, dt);
    return k;
}

template <typename T>
__global__ void k_topk(int dt, int largest, const T *x, T *yv, long long *yi, int64_t outer,
                       int64_t L, int64_t K, int64_t inner) {
    int64_t lines = outer * inner;
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines;
         l += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = l / inner, in = l - o * inner, base = o * L * inner + in;
        tk_key prev;
        int64_t prev_i = -1;
        for (int64_t t = 0; t < K; t++) {
            tk_key best;
            int64_t best_i = -1;
            for (int64_t s = 0; s < L; s++) {
                tk_key k = tk_load(x, base + s * inner, dt);
                if (prev_i >= 0 && !tk_before(prev, prev_i, k, s, largest != 0)) continue;
                if (best_i < 0 || tk_before(k, s, best, best_i, largest != 0)) {
                    best = k;
                    best_i = s;
                }
            }
            int64_t dst = (o * K + t) * inner + in;
            yv[dst] = x[base + best_i * inner];
            yi[dst] = best_i;
            prev = best;
            prev_i = best_i;
        }
    }
}

} // namespace

extern "C" cudaError_t kc_topk(int dt, int es, int largest, const void *x, void *values,
                               void *indices, int64_t outer, int64_t L, int64_t K, int64_t inner,
                               cudaStream_t st) {
    if (outer <= 0 || K <= 0 || inner <= 0) return cudaSuccess;
    if (K > L) return cudaErrorInvalidValue;
    unsigned b = kc_blocks(outer * inner, 128);
    long long *yi = (long long *)indices;
    switch (es) {
    case 1: k_topk<uint8_t><<<b, 128, 0, st>>>(dt, largest, (const uint8_t *)x, (uint8_t *)values, yi, outer, L, K, inner); break;
    case 2: k_topk<uint16_t><<<b, 128, 0, st>>>(dt, largest, (const uint16_t *)x, (uint16_t *)values, yi, outer, L, K, inner); break;
    case 4: k_topk<uint32_t><<<b, 128, 0, st>>>(dt, largest, (const uint32_t *)x, (uint32_t *)values, yi, outer, L, K, inner); break;
    case 8: k_topk<unsigned long long><<<b, 128, 0, st>>>(dt, largest, (const unsigned long long *)x, (unsigned long long *)values, yi, outer, L, K, inner); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_hardmax(int dt, const void *x, void *y, int64_t outer, int64_t L,
                                  int64_t inner, cudaStream_t st) {
    if (outer <= 0 || L <= 0 || inner <= 0) return cudaSuccess;
    k_hardmax<<<kc_blocks(outer * inner, 128), 128, 0, st>>>(dt, x, y, outer, L, inner);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_lpnorm(int p, int dt, const void *x, void *y, int64_t outer, int64_t L,
                                 int64_t inner, cudaStream_t st) {
    if (outer <= 0 || L <= 0 || inner <= 0) return cudaSuccess;
    k_lpnorm<<<kc_blocks(outer * inner, 128), 128, 0, st>>>(p, dt, x, y, outer, L, inner);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_window(int kind, int periodic, int dt, void *y, int64_t n,
                                 cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_window<<<kc_blocks(n, 256), 256, 0, st>>>(kind, periodic, dt, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_eyelike(int dt, void *y, int64_t rows, int64_t cols, int64_t k,
                                  cudaStream_t st) {
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    k_eyelike<<<kc_blocks(rows * cols, 256), 256, 0, st>>>(dt, y, rows, cols, k);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_cum(int prod, int exclusive, int reverse, int dt, const void *x, void *y,
                              int64_t outer, int64_t L, int64_t inner, cudaStream_t st) {
    if (outer <= 0 || L <= 0 || inner <= 0) return cudaSuccess;
    k_cum<<<kc_blocks(outer * inner, 128), 128, 0, st>>>(prod, exclusive, reverse, dt, x, y, outer,
                                                       L, inner);
    return cudaGetLastError();
}
