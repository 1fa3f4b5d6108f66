/* pool_kernels.h: the C seam of the pooling and resize kernels (pool.cu).
** Float math in float32 whatever the storage type (float32, float16,
** bfloat16); resize coordinates in double with the host reference's exact
** operation order. Launchers enqueue on the stream and return the launch's
** cudaError_t. */
#ifndef KILN_POOL_KERNELS_H
#define KILN_POOL_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Storage types of the float kernels. */
enum { KC_DT_F32, KC_DT_F16, KC_DT_BF16 };
enum { KC_POOL_MAX, KC_POOL_AVG, KC_POOL_LP };

/* A sliding-window pool over planes (batch x channels) of up to 3 spatial
** dims; fewer dims are given as leading dims of size 1 (image 1, kernel 1,
** stride 1, dilation 1, no pads). Grid position q and tap t read image
** coordinate q*s - pb + t*d; coordinates outside [0, img) are padding. */
typedef struct kc_pool_params {
    int64_t planes;
    int64_t img[3], grid[3], k[3], s[3], d[3], pb[3], pe[3];
    int kind;          /* KC_POOL_* */
    int include_pad;   /* AveragePool count_include_pad */
    float p;           /* LpPool exponent */
    int64_t *ind;      /* MaxPool Indices (NULL: none): plane * plane size + the
                          first maximum's offset in its plane, row-major or
                          (col_major, storage_order 1) column-major; -1 for
                          an empty window */
    int col_major;
} kc_pool_params;

cudaError_t kc_pool(int dt, const void *x, void *y, const kc_pool_params *p, cudaStream_t s);

/* Global pools: one value per plane of n elements (one warp per plane). */
cudaError_t kc_global_pool(int dt, const void *x, void *y, int64_t planes, int64_t n, int kind,
                           float p, cudaStream_t s);

/* Resize. The enum values equal index_shared.h's RZ_* (checked by the C
** glue at compile time). */
enum { KC_RZ_NEAREST, KC_RZ_LINEAR, KC_RZ_CUBIC };
enum {
    KC_RZ_HALF_PIXEL, KC_RZ_HALF_PIXEL_SYMMETRIC, KC_RZ_PYTORCH_HALF_PIXEL,
    KC_RZ_ALIGN_CORNERS, KC_RZ_ASYMMETRIC, KC_RZ_TF_CROP_AND_RESIZE,
    KC_RZ_TF_HALF_PIXEL_FOR_NN
};
enum { KC_RZ_ROUND_PREFER_FLOOR, KC_RZ_ROUND_PREFER_CEIL, KC_RZ_FLOOR, KC_RZ_CEIL, KC_RZ_SIMPLE };

#define KC_RZ_MAXD 12

typedef struct kc_resize_axis {
    int64_t L, O;              /* input and output length */
    double scale, r0, r1;      /* coordinate scale, roi start/end */
    int identity;              /* the axis is copied as is */
    int nt;                    /* antialias: taps on this axis (host's count) */
} kc_resize_axis;

typedef struct kc_resize_params {
    int rank, coord, nearest, exclude_outside;
    double extrapolation;
    double cubic_a;            /* cubic_coeff_a */
    int64_t istr[KC_RZ_MAXD];  /* input strides in elements */
    kc_resize_axis ax[KC_RZ_MAXD];
} kc_resize_params;

/* Nearest: any element size (1, 2, 4, 8); fill holds the element written
** for tf_crop_and_resize points outside the input. */
cudaError_t kc_resize_nearest(void *y, const void *x, const kc_resize_params *p, int es,
                              uint64_t fill, cudaStream_t s);
/* Linear (2 taps per resized axis, any number of resized axes), float
** types only. */
cudaError_t kc_resize_linear(int dt, void *y, const void *x, const kc_resize_params *p,
                             cudaStream_t s);
/* Cubic (4 taps per resized axis, no antialias), float types only. */
cudaError_t kc_resize_cubic(int dt, void *y, const void *x, const kc_resize_params *p,
                            cudaStream_t s);
/* Antialiased linear (cubic 0) or cubic (cubic 1) resize: on each
** non-identity axis ax.nt taps of the
** kernel stretched by 1/min(scale, 1), normalized (then renormalized over
** the taps inside the input with exclude_outside), weights computed on
** the fly; float types only. */
#define KC_RZ_AA_MAXAX KC_RZ_MAXD
cudaError_t kc_resize_aa(int dt, int cubic, void *y, const void *x, const kc_resize_params *p,
                         cudaStream_t s);

/* GridSample over k = 1..3 spatial dims (X is [N, C, D0..], grid is
** [N, O0.., k] with (x, y, ...) in its last dim), the host reference's
** arithmetic (float32 coordinates, double reflection). mode: KC_GS_*,
** pad: KC_GS_PAD_*. x_dt and grid_dt are KC_DT_* (the output is x_dt). */
enum { KC_GS_LINEAR, KC_GS_NEAREST, KC_GS_CUBIC };
enum { KC_GS_PAD_ZEROS, KC_GS_PAD_BORDER, KC_GS_PAD_REFLECTION };

typedef struct kc_grid_sample_params {
    int k, mode, pad, align_corners;
    int64_t n, c;
    int64_t in[3];   /* input spatial dims D0..D(k-1) */
    int64_t out[3];  /* output spatial dims O0..O(k-1) */
} kc_grid_sample_params;

cudaError_t kc_grid_sample(int x_dt, int grid_dt, const void *x, const void *grid, void *y,
                           const kc_grid_sample_params *p, cudaStream_t s);

/* AffineGrid: grid[b, o.., :] = theta[b] (k x (k+1)) times the homogeneous
** base coordinate (x, y[, z], 1) of output position o (normalized to
** [-1, 1], align_corners as ONNX defines it), in double as the host
** reference; k = 2 or 3; theta and grid in dtype (KC_DT_*). */
typedef struct kc_affine_grid_params {
    int k, align_corners;
    int64_t n, size[3];
} kc_affine_grid_params;

cudaError_t kc_affine_grid(int dt, const void *theta, void *grid,
                           const kc_affine_grid_params *p, cudaStream_t s);

/* LRN across channels: y = x / (bias + alpha / size * sum of x^2 over
** channels [c - (size-1)/2, c + size-1 - (size-1)/2] clipped to [0, C))^beta,
** in double as the host reference; x is [n, c, inner]. */
cudaError_t kc_lrn(int dt, const void *x, void *y, int64_t n, int64_t c, int64_t inner,
                   int64_t size, double alpha, double beta, double bias, cudaStream_t s);

/* RoiAlign (opset 10/16): x [n, c, h, w], rois [r, 4] in x's type, int64
** batch indices [r], y [r, c, oh, ow]; the host reference's float
** operations in its order. A batch index outside [0, n) gives zeros. */
typedef struct kc_roialign_params {
    int64_t n, c, h, w, r, oh, ow;
    int64_t sampling_ratio; /* 0: adaptive, ceil(bin size) */
    float scale;            /* spatial_scale */
    int is_max;             /* mode "max" (else "avg") */
    int half_pixel;         /* coordinate_transformation_mode half_pixel */
} kc_roialign_params;
cudaError_t kc_roialign(int dt, const void *x, const void *rois, const void *batch_indices,
                        void *y, const kc_roialign_params *p, cudaStream_t s);

/* MaxRoiPool: x [n, c, h, w], rois [r, 5] (batch index, x1, y1, x2, y2) in
** x's type, y [r, c, ph, pw]; Caffe's rounding and bins, as the host
** reference. A batch index outside [0, n) or not whole gives zeros. */
typedef struct kc_max_roi_pool_params {
    int64_t n, c, h, w, r, ph, pw;
    float scale;
} kc_max_roi_pool_params;
cudaError_t kc_max_roi_pool(int dt, const void *x, const void *rois, void *y,
                            const kc_max_roi_pool_params *p, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
