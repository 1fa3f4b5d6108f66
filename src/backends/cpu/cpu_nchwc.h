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
    int act;                    /* NCHWC_ACT_*: in registers, or POST: scalar after */
    float lo, hi;               /* CLIP bounds (RELU: 0, +inf) */
    fused_act fact;
    int pool_kind;              /* NCHWC_POOL_* */
    bool count_include_pad;
    int64_t ow_chunk;           /* output pixels per task (conv) */
} cpu_nchwc_job;

typedef struct cpu_nchwc_kernels {
    int block;                  /* channel block = vector width */
    int ob;                     /* output blocks per conv call (at most) */
    int tile;                   /* output pixels per register tile */
    const char *isa;
    /* group-1 conv: output blocks [mb0, mb0+nb), image n, output
    ** row oy, pixels [ox0, ox1); nb <= ob */
    void (*conv)(const cpu_nchwc_job *j, int64_t n, int64_t mb0, int64_t nb, int64_t oy,
                 int64_t ox0, int64_t ox1);
    /* depthwise conv: block cb, image n, output row oy */
    void (*dwconv)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy);
    /* pools: block cb, image n, output row oy (global kinds: oy = 0) */
    void (*pool)(const cpu_nchwc_job *j, int64_t n, int64_t cb, int64_t oy);
} cpu_nchwc_kernels;

/* NULL when the file was compiled without its ISA flags. */
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx512(void);
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx2(void);

#endif
