/* index_shared.h: parameter resolution shared by the index family's shape
** inference (ops/index.c) and its reference kernels (backends/ref/), so both
** sides agree on Slice bounds, Pad amounts and Resize sizes/scales. */
#ifndef KILN_INDEX_SHARED_H
#define KILN_INDEX_SHARED_H

#include "op.h"

/* Every function writing into err assumes a buffer of INDEX_ERR_SIZE bytes
** (the size of infer_ctx.err and ref_ctx.err) and returns -1 on error. */
#define INDEX_ERR_SIZE 512
int index_err(char *err, const char *fmt, ...) KILN_PRINTF(2, 3);

/* Slice on a concrete shape. n entries of starts/ends (axes, steps may be
** NULL: all axes in order, steps of 1). Fills start/step/len for every axis
** of the input (untouched axes: 0, 1, dim). */
int index_slice_resolve(int rank, const int64_t *dims, int n,
                        const int64_t *starts, const int64_t *ends,
                        const int64_t *axes, const int64_t *steps,
                        int64_t *start, int64_t *step, int64_t *len,
                        char *err);

/* Pad amounts per axis (begin/end, possibly negative) from a pads list of
** 2*naxes entries; axes NULL means all rank axes. */
int index_pad_resolve(int rank, const int64_t *pads, int npads,
                      const int64_t *axes, int naxes, int64_t *pb,
                      int64_t *pe, char *err);

/* Resize / Upsample attributes, normalized across opsets. */
enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum {
    RZ_HALF_PIXEL, RZ_HALF_PIXEL_SYMMETRIC, RZ_PYTORCH_HALF_PIXEL,
    RZ_ALIGN_CORNERS, RZ_ASYMMETRIC, RZ_TF_CROP_AND_RESIZE,
    RZ_TF_HALF_PIXEL_FOR_NN
};
/* RZ_SIMPLE: Resize-10 nearest as onnxruntime does it: floor when
** upsampling an axis, ceil when downsampling. */
enum { RZ_ROUND_PREFER_FLOOR, RZ_ROUND_PREFER_CEIL, RZ_FLOOR, RZ_CEIL, RZ_SIMPLE };
enum { RZ_STRETCH, RZ_NOT_LARGER, RZ_NOT_SMALLER };

typedef struct resize_attrs {
    int mode, coord, nearest, policy;
    double cubic_a;
    bool exclude_outside, antialias;
    double extrapolation;
    int naxes;                    /* -1: all axes */
    int axes[KILN_MAX_RANK];      /* normalized, in attribute order */
    bool upsample;                /* Upsample or Resize-10 semantics */
    int i_roi, i_scales, i_sizes; /* input positions, -1 when absent */
    const float *attr_scales;     /* Upsample-7 scales attribute */
    int n_attr_scales;
} resize_attrs;

/* Reads and validates the node's attributes for rank (rank < 0: axes are
** not validated). */
int index_resize_attrs(const ir_node *n, int op, int opset, int rank,
                       resize_attrs *a, char *err);

/* Output dims and per-axis scale used for coordinate mapping, for a concrete
** input shape. scales (nscales values) or sizes (nsizes values) is given
** (n < 0: absent), in the axes' order when a->naxes >= 0. roi (nroi
** values, may be absent) is expanded into roi_full[2*rank]. */
int index_resize_plan(const resize_attrs *a, int rank, const int64_t *dims,
                      const double *scales, int nscales,
                      const int64_t *sizes, int nsizes, const double *roi,
                      int nroi, int64_t *out_dims, double *scale,
                      double *roi_full, char *err);

#endif
