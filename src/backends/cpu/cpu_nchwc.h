/* cpu_nchwc.h: the seam between the NCHWc tactics (cpu_nchwc.c: checks,
** threading, dispatch) and their per-ISA microkernels (cpu_nchwc_avx512.c,
** cpu_nchwc_avx2.c, both generated from cpu_nchwc_tmpl.h). A kernel set
** works on one channel block (its vector width); a job describes one
** layer, and the task functions each compute one output row. */
#ifndef KILN_CPU_NCHWC_H
#define KILN_CPU_NCHWC_H

#include "../../ops/fused.h"
#include "../../ops/nchwc.h"

enum { NCHWC_ACT_NONE = 0, NCHWC_ACT_RELU, NCHWC_ACT_CLIP, NCHWC_ACT_POST };

typedef struct cpu_nchwc_job {
    nchwc_conv_geom g;          /* for pools: N, Cb (in Mb too), H, W, OH, OW, win */
    const float *x, *w, *bias, *z;
    float *y;
    int64_t xs_n, xs_cb, xs_row, xs_pix, xs_ic; /* input strides (floats) */
    /* weight strides (floats) of group-1 convs: per output block, input
    ** block, input channel and tap; W's own [Mb][C][KH][KW][b] or a
    ** tap-major blob's [Mb][Cb][KH][KW][b][b] (cpu_nchwc.c) */
    int64_t w_mb, w_cb, w_ic, w_tap;
    int act;                    /* NCHWC_ACT_*: in registers, or POST: scalar after */
    float lo, hi;               /* CLIP bounds (RELU: 0, +inf) */
    fused_act fact;
    int pool_kind;              /* NCHWC_POOL_* */
    bool count_include_pad;
    int64_t ow_chunk;           /* output pixels per task (conv) */
    int64_t cb_part;            /* input blocks per pass over the pixels (0: all) */
    bool pw_off;                /* 1x1 layers on the general tile (KILN_CPU_PW_TILE=0) */
    bool td_off;                /* direct tiles of NC_T pixels, not NC_TD (KILN_CPU_TILE7=0) */
} cpu_nchwc_job;

/* Checks an NchwcConv layer's tensors against its attributes (float32,
** the block, output/Z/B shapes) and fills j: geometry, input strides,
** pointers (j->w is W's data pointer, never read here) and the epilogue.
** 0, or -1 via ref_fail. */
struct ref_ctx;
int cpu_nchwc_job_init(struct ref_ctx *c, int64_t block, cpu_nchwc_job *j);

typedef struct cpu_nchwc_kernels {
    int block;                  /* channel block = vector width */
    int ob;                     /* output blocks per conv call (at most) */
    int tile;                   /* output pixels per register tile */
    const char *isa;
    /* group-1 conv: output blocks [mb0, mb0+nb), image n, output
    ** row oy, pixels [ox0, ox1); nb <= ob */
    void (*conv)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb, int64_t oy,
                 int64_t ox0, int64_t ox1);
    /* the same over output rows [oy0, oy1) and all their pixels, the
    ** input channels' parts (cb_part) outermost */
    void (*conv_rows)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb, int64_t oy0,
                      int64_t oy1);
    /* depthwise conv: block cb, image n, output row oy */
    void (*dwconv)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy);
    /* pools: block cb, image n, output row oy (global kinds: oy = 0) */
    void (*pool)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy);
} cpu_nchwc_kernels;

/* NULL when the file was compiled without its ISA flags. */
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx512(void);
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx2(void);

/* ---- Winograd F(m x m, 3x3) on the blocked layout (cpu_wino.c drives it,
** cpu_wino_tmpl.h holds the kernels). A 3x3 stride-1 dilation-1 group-1
** conv over a blocked input, its output cut into m x m tiles (m = 4 or 2,
** a = m + 2 input points a side, P = a * a transform positions):
**   V[p][cb][t]   = (B^T d B)[p] of tile t's a x a input patch, per block;
**   M[p][o][t]    = sum over c of V[p][c][t] U[p][mb][c] (P GEMMs);
**   Y tile        = act(A^T M A + bias + Z), clipped to the image.
** U (the prepared weights, G g G^T) is laid out [P][Mb][C][b]: for each
** position, output block and real input channel, the b output channels'
** values side by side (one vector load). Tiles are numbered across the
** batch, t = (n * TH + ty) * TW + tx; a task takes a chunk of consecutive
** tiles and a range of output blocks and runs the three steps on them in
** its own scratch:
**   V: P * Cb * tc * b floats, then M: P * ob * tc * b floats. */
typedef struct cpu_wino_job {
    cpu_nchwc_job j;            /* geometry, x, bias, z, y, epilogue (w unused) */
    const float *u;             /* transformed weights [P][Mb][C][b] */
    int m;                      /* output tile side: 4 or 2 */
    int64_t TH, TW;             /* tiles per image along H and W */
    int64_t tc;                 /* chunk capacity (tiles) the scratch is sized for */
} cpu_wino_job;

typedef struct cpu_wino_kernels {
    int block;                  /* channel block = vector width */
    int ob;                     /* output blocks per GEMM tile */
    int tile;                   /* tiles (GEMM rows) per GEMM tile */
    const char *isa;
    /* tiles [t0, t0 + nt) with nt <= j->tc, output blocks [mb_lo, mb_hi);
    ** scratch: 64-byte aligned, cpu_wino_scratch_floats(...) floats */
    void (*chunk)(const cpu_wino_job *j, int64_t t0, int64_t nt, int64_t mb_lo, int64_t mb_hi,
                  float *scratch);
} cpu_wino_kernels;

static inline int64_t cpu_wino_scratch_floats(const cpu_wino_kernels *k, int m, int64_t Cb,
                                              int64_t tc) {
    int64_t P = (int64_t)(m + 2) * (m + 2);
    return P * tc * k->block * (Cb + k->ob);
}

/* NULL when the file was compiled without its ISA flags. */
const cpu_wino_kernels *cpu_wino_kernels_avx512(void);
const cpu_wino_kernels *cpu_wino_kernels_avx2(void);
/* Portable C (cpu_nchwc_c.c), any block of 8 or 16; NULL for other blocks. */
const cpu_wino_kernels *cpu_wino_kernels_c(int64_t block);

#endif
