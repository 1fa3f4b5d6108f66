/* cpu_dwconv.c: portable depthwise convolution of one plane. Each tap is
** applied to a whole output row at once over the output columns where it
** lands inside the input (so padding costs nothing and the inner loop
** vectorizes), then the epilogue runs on the finished row. */
#include "cpu_gemm.h"

/* Output columns [lo, hi) whose input column ox*s + off lies in [0, iw). */
static void tap_range(int64_t off, int64_t s, int64_t iw, int64_t ow,
                      int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = iw - 1 - off < 0 ? 0 : (iw - 1 - off) / s + 1;
    *lo = KILN_MIN(l, ow);
    *hi = KILN_MAX(KILN_MIN(h, ow), *lo);
}

void cpu_dw_plane_c(const cpu_dw_plane *p) {
    for (int64_t oy = 0; oy < p->oh; oy++) {
        float *restrict yr = p->y + oy * p->ow;
        for (int64_t ox = 0; ox < p->ow; ox++) yr[ox] = 0.0f;
        for (int64_t ky = 0; ky < p->kh; ky++) {
            int64_t iy = oy * p->sh - p->ph + ky * p->dh;
            if (iy < 0 || iy >= p->ih) continue;
            const float *restrict xr = p->x + iy * p->iw;
            for (int64_t kx = 0; kx < p->kw; kx++) {
                float w = p->w[ky * p->kw + kx];
                int64_t off = kx * p->dw - p->pw, lo, hi;
                tap_range(off, p->sw, p->iw, p->ow, &lo, &hi);
                if (p->sw == 1)
                    for (int64_t ox = lo; ox < hi; ox++) yr[ox] += w * xr[ox + off];
                else
                    for (int64_t ox = lo; ox < hi; ox++)
                        yr[ox] += w * xr[ox * p->sw + off];
            }
        }
        if (p->epi) cpu_epi_row(p->epi, yr, p->ow, p->ch, oy * p->ow);
    }
}
