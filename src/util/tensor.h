/* tensor.h: the internal tensor (the public kiln_tensor), element types,
** element access helpers and broadcasting arithmetic. */
#ifndef KILN_TENSOR_H
#define KILN_TENSOR_H

#include "common.h"

enum { TENSOR_OWNS_DATA = 1 };

struct kiln_tensor {
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    void *data;       /* NULL only while not yet allocated */
    size_t nbytes;
    unsigned flags;   /* TENSOR_OWNS_DATA: data from kiln_aligned_alloc */
    char *name;       /* optional, owned */
};

/* ---- dtypes */
bool dtype_is_float(kiln_dtype t);   /* f16 bf16 f32 f64 fp8 fp4 */
bool dtype_is_int(kiln_dtype t);     /* signed/unsigned ints incl. 4-bit */
bool dtype_is_signed_int(kiln_dtype t);
bool dtype_is_numeric(kiln_dtype t); /* float or int (not bool/string) */
bool dtype_is_valid(int t);          /* a known ONNX element type value */
/* Bytes needed for n elements (handles 4-bit types); false on overflow or
** for types with no fixed size (string, undefined). */
bool dtype_nbytes(kiln_dtype t, int64_t n, size_t *out);

/* Scalar conversions. */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);          /* round to nearest even */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);         /* round to nearest even */
/* 8-bit and 4-bit float formats (implemented in dtype_small.c). */
float fp8_to_f32(kiln_dtype t, uint8_t v);
uint8_t f32_to_fp8(kiln_dtype t, float f, bool saturate);
float fp4e2m1_to_f32(uint8_t nibble);
/* float8e8m0 (exponent only, ONNX 24): 2^(e-127), 255 is NaN. The cast
** rounds by Cast's round_mode; saturate keeps huge values at 2^127. */
enum { E8M0_ROUND_UP, E8M0_ROUND_DOWN, E8M0_ROUND_NEAREST };
float e8m0_to_f32(uint8_t v);
uint8_t f32_to_e8m0(float f, bool saturate, int round_mode);
uint8_t f32_to_fp4e2m1(float f);

/* Generic element access by flat index. Slow but total: every numeric and
** bool type. Floats go through double; ints through int64 (uint64 values
** above INT64_MAX wrap in get_i64 but round-trip through set_i64).
** Conversions of out-of-range or NaN floats to ints saturate (NaN -> 0)
** instead of invoking undefined behaviour. */
double dt_get_f64(kiln_dtype t, const void *base, size_t i);
void dt_set_f64(kiln_dtype t, void *base, size_t i, double v);
int64_t dt_get_i64(kiln_dtype t, const void *base, size_t i);
void dt_set_i64(kiln_dtype t, void *base, size_t i, int64_t v);
int64_t f64_to_i64_sat(double v);

/* ---- tensors */
int64_t shape_numel(int rank, const int64_t *dims); /* -1 on overflow/neg */
/* Allocates a tensor (zeroed data). Fails on negative dims or overflow. */
kiln_status tensor_new(kiln_dtype t, int rank, const int64_t *dims,
                       kiln_tensor **out);
/* Makes t's shape/dtype as given and allocates zeroed owned data (any old
** owned data is freed). */
kiln_status tensor_alloc(kiln_tensor *t, kiln_dtype dtype, int rank,
                         const int64_t *dims);
/* Wraps borrowed memory (not freed by the tensor). */
kiln_status tensor_wrap(kiln_dtype t, int rank, const int64_t *dims,
                        void *data, kiln_tensor **out);
kiln_status tensor_clone(const kiln_tensor *src, kiln_tensor **out);
void tensor_free(kiln_tensor *t);
int64_t tensor_numel(const kiln_tensor *t);
/* Row-major strides in elements. */
void shape_strides(int rank, const int64_t *dims, int64_t *strides);
bool shape_equal(int ra, const int64_t *a, int rb, const int64_t *b);
/* Formats "1x3x224x224" ("scalar" for rank 0) into buf. */
const char *shape_str(int rank, const int64_t *dims, char *buf, size_t n);

/* Copies a tensor's elements into a new float32 buffer (malloc'ed; caller
** frees) whatever its numeric dtype. NULL on failure. */
float *tensor_to_f32(const kiln_tensor *t);
/* Stores n float32 values into t (already allocated) converting to its
** dtype. */
void tensor_from_f32(kiln_tensor *t, const float *src);

/* ---- broadcasting (numpy rules) */
/* Output shape of broadcasting a and b. false if incompatible. */
bool shape_broadcast(int ra, const int64_t *a, int rb, const int64_t *b,
                     int *rc, int64_t *c);
/* Element strides for reading an input of shape (rin, din) while iterating
** an output of shape (rout, dout): broadcast dims get stride 0. rin<=rout. */
void bcast_strides(int rin, const int64_t *din, int rout,
                   int64_t *strides_out);

/* Iterates a multi-index over an output shape while keeping offsets into up
** to 4 operands with their own strides. Usage:
**   bcast_iter it; bcast_iter_init(&it, rank, dims, n, strides...);
**   for (int64_t k = 0; k < numel; k++, bcast_iter_next(&it)) use it.off[j]
*/
typedef struct bcast_iter {
    int rank, n;
    int64_t dims[KILN_MAX_RANK];
    int64_t idx[KILN_MAX_RANK];
    int64_t strides[4][KILN_MAX_RANK];
    int64_t off[4];
} bcast_iter;
void bcast_iter_init(bcast_iter *it, int rank, const int64_t *dims, int n,
                     const int64_t *const *strides);
void bcast_iter_next(bcast_iter *it);

#endif
