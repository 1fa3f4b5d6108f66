/* ref_index.h: helpers shared by the index family's reference kernels
** (ref_index.c: data movement; ref_index_sample.c: resampling ops). */
#ifndef KILN_REF_INDEX_H
#define KILN_REF_INDEX_H

#include "ref.h"
#include "../../ops/index_shared.h"

/* Per-axis index maps: m[a][o] is the input index feeding output index o on
** axis a, or -1 for "use the fill value". One allocation for all axes. */
typedef struct idx_maps {
    int rank;
    int64_t *buf;
    int64_t *m[KILN_MAX_RANK];
} idx_maps;

/* Allocates maps for an output shape; -1 via ref_fail when out of memory. */
int idx_maps_init(ref_ctx *c, idx_maps *mp, int rank, const int64_t *dims);
void idx_maps_free(idx_maps *mp);

/* out[o] = in[sum_a m[a][o_a] * stride_a] (strides are in's row-major
** strides, or given), fill (one element of out's dtype) where a map entry
** is -1. out is allocated with its final shape. */
void idx_map_copy(kiln_tensor *out, const kiln_tensor *in,
                  const idx_maps *mp, const int64_t *in_strides,
                  const void *fill);

/* Reads a small int tensor into v (at most max values); -1 via ref_fail if
** it has more, or is not an integer tensor. */
int ref_read_ints(ref_ctx *c, const kiln_tensor *t, int64_t *v, int max,
                  const char *what);

int ref_resize(ref_ctx *c);
int ref_grid_sample(ref_ctx *c);
int ref_affine_grid(ref_ctx *c);

#endif
