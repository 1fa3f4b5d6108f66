// cum.cu: CumSum / CumProd along one axis of [outer, L, inner]: a thread per
// (outer, inner) line walks the axis in order (or reversed), accumulating
// like the reference: float in float32 for 32- and 16-bit floats, float64 in
// float64, integers in wrapping unsigned 64-bit arithmetic. Consecutive
// threads take consecutive inner positions, so loads coalesce when inner > 1.
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

} // namespace

extern "C" cudaError_t kc_cum(int prod, int exclusive, int reverse, int dt, const void *x, void *y,
                              int64_t outer, int64_t L, int64_t inner, cudaStream_t st) {
    if (outer <= 0 || L <= 0 || inner <= 0) return cudaSuccess;
    k_cum<<<kc_blocks(outer * inner, 128), 128, 0, st>>>(prod, exclusive, reverse, dt, x, y, outer,
                                                       L, inner);
    return cudaGetLastError();
}
