/* data_kernels.h: the C seam of the data-movement kernels (data.cu). They
** move elements by size (1, 2, 4, 8 or 16 bytes), never by dtype. Every
** launcher takes device pointers, sizes and a stream, enqueues (never
** synchronizes) and returns the launch's cudaError_t. Parameter structs are
** passed to the kernels by value (no device-side tables to upload). */
#ifndef KILN_DATA_KERNELS_H
#define KILN_DATA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KC_MAXD 12

/* A strided copy: for every multi-index i over dims,
** dst[sum i_a * dstr[a]] = src[sum i_a * sstr[a]], in units of `unit`
** bytes. Source strides may be 0 (broadcast) or negative (reversed
** slices). The pointers must be aligned to unit. */
typedef struct kc_view {
    int rank;                /* 1..KC_MAXD */
    int unit;                /* 1, 2, 4, 8 or 16 */
    int64_t dims[KC_MAXD];
    int64_t sstr[KC_MAXD];
    int64_t dstr[KC_MAXD];
} kc_view;

cudaError_t kc_copy_view(void *dst, const void *src, const kc_view *v, cudaStream_t s);

/* out[b][c][r] = in[b][r][c] for unit sizes 1, 2, 4, 8 (tiled through
** shared memory so both sides are coalesced). */
cudaError_t kc_transpose_last2(void *dst, const void *src, int64_t batch, int64_t rows,
                               int64_t cols, int unit, cudaStream_t s);

/* GatherND: B batches of M index tuples of m int64 indices each; tuple t
** of batch bi starts at bi * bstride + sum idx[t][j] * xstr[j] (negative
** indices count from len[j]; out-of-range ones give zeros) and copies slice
** contiguous elements of es bytes. */
typedef struct kc_gather_nd_params {
    int m;
    int64_t B, M, slice, bstride;
    int64_t len[KC_MAXD], xstr[KC_MAXD];
} kc_gather_nd_params;

cudaError_t kc_gather_nd(void *dst, const void *src, const void *idx,
                         const kc_gather_nd_params *p, int es, cudaStream_t s);

/* n elements of es bytes (1, 2, 4, 8), each set to the first es bytes of
** value (host memory, copied into the launch). */
cudaError_t kc_fill(void *dst, int64_t n, const void *value, int es, cudaStream_t s);

/* Pad modes. */
enum { KC_PAD_CONSTANT, KC_PAD_REFLECT, KC_PAD_EDGE, KC_PAD_WRAP };

/* Pad: output index o on axis a reads input index lo[a] + m, where
** i = o - off[a] and m is i if 0 <= i < de[a], else per mode (constant:
** the fill value). */
typedef struct kc_pad_params {
    int rank, es, mode;
    int64_t odims[KC_MAXD];
    int64_t istr[KC_MAXD];
    int64_t lo[KC_MAXD], de[KC_MAXD], off[KC_MAXD];
    uint64_t fill;           /* the constant's bytes */
} kc_pad_params;

cudaError_t kc_pad(void *dst, const void *src, const kc_pad_params *p, cudaStream_t s);

/* Slice whose starts/axes/steps are device tensors (runtime values): one
** thread per block resolves them (negative starts count from the end, then
** clamp, as the reference does) into shared memory, then the block copies.
** The lengths are the output's dims, so ends are not needed. axes/steps
** may be NULL (all axes in order / steps of 1). */
typedef struct kc_slice_dyn_params {
    int rank, es, n;                  /* n: number of starts */
    int starts64, axes64, steps64;    /* int64 (1) or int32 (0) */
    int64_t xdims[KC_MAXD], xstr[KC_MAXD], ydims[KC_MAXD];
} kc_slice_dyn_params;

cudaError_t kc_slice_dyn(void *dst, const void *src, const kc_slice_dyn_params *p,
                         const void *starts, const void *axes, const void *steps, cudaStream_t s);

/* Gather along an axis: dst[o][j][k] = src[o][idx[j]][k] with outer, ni,
** inner counted in units of `unit` bytes for k. idx is int64 (idx64) or
** int32; negative values count from the end; out-of-range ones give
** zeros (the host reference fails on them; a device kernel cannot). */
cudaError_t kc_gather(void *dst, const void *src, const void *idx, int idx64, int64_t outer,
                      int64_t axis_len, int64_t ni, int64_t inner, int unit, cudaStream_t s);

/* GatherElements / ScatterElements geometry: indices have shape idims,
** the data tensor strides xstr and length axis_len on `axis`. */
typedef struct kc_elem_params {
    int rank, axis, es, idx64;
    int64_t idims[KC_MAXD];
    int64_t xstr[KC_MAXD];
    int64_t axis_len;
} kc_elem_params;

cudaError_t kc_gather_elements(void *dst, const void *x, const void *idx,
                               const kc_elem_params *p, cudaStream_t s);
/* y must already hold a copy of the data; writes updates (reduction none;
** duplicate indices: one of the writes wins, as ONNX leaves undefined). */
cudaError_t kc_scatter_elements(void *y, const void *idx, const void *upd,
                                const kc_elem_params *p, cudaStream_t s);

/* ScatterND (reduction none): y holds the data; for each of m index
** tuples of depth k, the slice of `slice` elements at sum idx_j*xstr[j]
** is overwritten with updates. */
typedef struct kc_scatter_nd_params {
    int k, es, idx64;
    int64_t m, slice;
    int64_t xdims[KC_MAXD], xstr[KC_MAXD];
} kc_scatter_nd_params;

cudaError_t kc_scatter_nd(void *y, const void *idx, const void *upd,
                          const kc_scatter_nd_params *p, cudaStream_t s);

/* Scatter reductions (add, mul, max, min) with atomics, for the element
** kinds below; float16/bfloat16 compute in float32 and round, ints wrap.
** Duplicate indices all apply (in an unspecified order). */
enum { KC_RED_ADD = 1, KC_RED_MUL, KC_RED_MAX, KC_RED_MIN };
enum { KC_RK_F32, KC_RK_F16, KC_RK_BF16, KC_RK_I32, KC_RK_I64 };

cudaError_t kc_scatter_elements_reduce(void *y, const void *idx, const void *upd,
                                       const kc_elem_params *p, int red, int kind,
                                       cudaStream_t s);
cudaError_t kc_scatter_nd_reduce(void *y, const void *idx, const void *upd,
                                 const kc_scatter_nd_params *p, int red, int kind, cudaStream_t s);

/* Trilu over batch matrices rows x cols: keeps the upper (or lower)
** triangle relative to diagonal k, zeros elsewhere. */
cudaError_t kc_trilu(void *dst, const void *src, int64_t batch, int64_t rows, int64_t cols,
                     int64_t k, int upper, int es, cudaStream_t s);

/* OneHot: dst[p][d][q] = values[ind[p][q] == d] (negative indices wrap
** once; out-of-range ones select nothing). values: two elements of es. */
cudaError_t kc_onehot(void *dst, const void *ind, int idx64, const void *values, int64_t pre,
                      int64_t depth, int64_t post, int es, cudaStream_t s);

/* Range: dst[k] = start + k * delta, start and delta read from device
** scalars of the output's type. kind 0: float32 (computed in double, as
** the reference does), 1: int32, 2: int64 (wrapping). */
cudaError_t kc_range(void *dst, int64_t n, int kind, const void *start, const void *delta,
                     cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
