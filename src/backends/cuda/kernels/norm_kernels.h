/* norm_kernels.h: C seam of the normalization kernels (norm.cu):
** LayerNormalization / RMSNormalization / InstanceNormalization /
** GroupNormalization as one row kernel (float32 statistics, two passes:
** mean, then centred variance), and inference BatchNormalization.
** Dtype codes KC_*; launch on the stream, return the launch's error. */
#ifndef KILN_NORM_KERNELS_H
#define KILN_NORM_KERNELS_H

#include "kc_shape.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a row's element s (of row r, flat index e = r * len + s) finds its
** scale/bias entry. */
enum {
    KN_TRAIL = 0,   /* LayerNorm/RMSNorm: e % pmod (parameter = X's trailing dims) */
    KN_ROW = 1,     /* InstanceNorm, GroupNorm per group: r % pmod */
    KN_GROUP_CH = 2 /* GroupNorm per channel: (r % groups) * cpg + s / inner */
};
typedef struct kc_norm {
    int dt_x, dt_y;            /* X and Y may differ (RMSNorm: Y takes scale's) */
    int rms;                   /* no mean: y = x / sqrt(mean(x^2) + eps) */
    int mode;                  /* KN_* */
    int64_t rows, len;         /* rows of len elements */
    int64_t pmod, groups, cpg, inner;
    int64_t bmod;              /* KN_TRAIL: the bias's own modulus */
    float eps;
    const void *x;
    void *y;
    const void *scale, *bias;  /* bias may be NULL */
    int dt_scale, dt_bias;
    void *mean_out, *inv_out;  /* per-row statistics (LayerNorm), may be NULL */
    int dt_mean, dt_inv;
    int vec16;                 /* 16-bit rows may take the 16-byte kernel */
} kc_norm;
cudaError_t kc_rownorm(const kc_norm *p, cudaStream_t st);

/* y = scale[c] * (x - mean[c]) / sqrt(var[c] + eps) + bias[c] over
** [N, C, inner]; parameters of any float dtype (dts). */
cudaError_t kc_batchnorm(int dt, int dts, int64_t total, int64_t C, int64_t inner, float eps,
                         const void *x, const void *scale, const void *bias,
                         const void *mean, const void *var, void *y, cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
