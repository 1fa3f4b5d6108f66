// loss.cu: NegativeLogLikelihoodLoss's gather and reduction (see
// loss_kernels.h). Per-sample losses are one thread each; the sum and mean
// reductions run in one block in float64, like the reference (loss layers
// end training graphs: a few thousand samples, never a hot path).
#include "kc_device.cuh"
#include "loss_kernels.h"

namespace {

__device__ __forceinline__ void nll_one(int dt, const void *lp, const void *target, int t64,
                                        const void *w, int64_t C, int64_t D, int has_ignore,
                                        int64_t ignore, int64_t i, double *l, double *wt) {
    int64_t n = i / D, d = i - n * D;
    int64_t t = t64 ? ((const long long *)target)[i] : ((const int32_t *)target)[i];
    *l = 0;
    *wt = 0;
    if (has_ignore && t == ignore) return;
    if (t < 0 || t >= C) {
        *l = NAN;
        *wt = NAN;
        return;
    }
    *wt = w ? (double)kc_ldf(w, t, dt) : 1.0;
    *l = -(double)kc_ldf(lp, (n * C + t) * D + d, dt) * *wt;
}

__global__ void k_nll_none(int dt, const void *lp, const void *target, int t64, const void *w,
                           int64_t C, int64_t D, int has_ignore, int64_t ignore, int64_t total,
                           void *y) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        double l, wt;
        nll_one(dt, lp, target, t64, w, C, D, has_ignore, ignore, i, &l, &wt);
        kc_stf(y, i, dt, (float)l);
    }
}

__global__ void k_nll_reduce(int dt, const void *lp, const void *target, int t64, const void *w,
                             int64_t C, int64_t D, int has_ignore, int64_t ignore, int64_t total,
                             int red, void *y) {
    __shared__ double sl[1024], sw[1024];
    double al = 0, aw = 0;
    for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
        double l, wt;
        nll_one(dt, lp, target, t64, w, C, D, has_ignore, ignore, i, &l, &wt);
        al += l;
        aw += wt;
    }
    sl[threadIdx.x] = al;
    sw[threadIdx.x] = aw;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            sl[threadIdx.x] += sl[threadIdx.x + s];
            sw[threadIdx.x] += sw[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) kc_stf(y, 0, dt, (float)(red == 1 ? sl[0] : sl[0] / sw[0]));
}

} // namespace

extern "C" cudaError_t kc_nll(int dt, const void *lp, const void *target, int t64, const void *w,
                              int64_t N, int64_t C, int64_t D, int has_ignore, int64_t ignore,
                              int red, void *y, cudaStream_t st) {
    if (dt != KC_F32 && dt != KC_F16 && dt != KC_BF16) return cudaErrorInvalidValue;
    int64_t total = N * D;
    if (red == 0) {
        if (total <= 0) return cudaSuccess;
        k_nll_none<<<kc_blocks(total, 256), 256, 0, st>>>(dt, lp, target, t64, w, C, D,
                                                          has_ignore, ignore, total, y);
    } else {
        // 1024 threads: a power of two, as the tree reduction needs
        k_nll_reduce<<<1, 1024, 0, st>>>(dt, lp, target, t64, w, C, D, has_ignore, ignore,
                                         total, red, y);
    }
    return cudaGetLastError();
}
