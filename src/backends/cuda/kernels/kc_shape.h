/* kc_shape.h: geometry that the elementwise, reduce and normalization
** launchers take by value (plain C structs shared by the C glue and the .cu
** files). Dims are coalesced on the host so kernels index with few divisions. */
#ifndef KILN_KC_SHAPE_H
#define KILN_KC_SHAPE_H

#include <stdint.h>

#define KC_MAX_RANK 8
#define KC_MAX_IN 8

/* Element dtype codes: the ONNX values (equal to kiln_dtype). */
enum {
    KC_F32 = 1, KC_U8 = 2, KC_I8 = 3, KC_U16 = 4, KC_I16 = 5, KC_I32 = 6, KC_I64 = 7,
    KC_BOOL = 9, KC_F16 = 10, KC_F64 = 11, KC_U32 = 12, KC_U64 = 13, KC_BF16 = 16
};

/* An output shape and, per input, its element strides along each output dim
** (0 where the input is broadcast). rank 0: one element. */
typedef struct kc_bshape {
    int rank, nin;
    int64_t dims[KC_MAX_RANK];
    int64_t st[KC_MAX_IN][KC_MAX_RANK];
} kc_bshape;

/* A reduction: the output walks the kept dims (row-major, input element
** strides kst), each output element folds the input over the reduced dims
** (strides rst). Both coalesced; rrank 0 means one element per output. */
typedef struct kc_rgeom {
    int krank, rrank;
    int64_t kdims[KC_MAX_RANK], kst[KC_MAX_RANK];
    int64_t rdims[KC_MAX_RANK], rst[KC_MAX_RANK];
    int64_t nout, nred;
} kc_rgeom;

#endif
