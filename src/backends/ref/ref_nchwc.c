/* ref_nchwc.c: reference kernels of the channel-blocked internal ops
** (semantics in ops/nchwc.h): plain loops straight over the blocked
** layout, the oracle the CPU kernels (cpu_nchwc*.c) are tested against,
** and what runs them when no faster tactic is chosen (kiln run, the
** reference backend). Padding lanes get the formula's value with zero
** weights, which keeps them finite. */
#include "ref.h"
#include "../../ops/fused.h"
#include "../../ops/nchwc.h"

#include <math.h>
#include <stdlib.h>

static int reorder_in(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    if (X->dtype != KILN_DTYPE_FLOAT32 || X->rank != 4 || Y->rank != 5)
        return ref_fail(c, "expected a float32 NCHW tensor");
    int64_t N = X->dims[0], C = X->dims[1], HW = X->dims[2] * X->dims[3];
    int64_t b = Y->dims[4], Cb = Y->dims[1];
    if (b < 1 || Cb != nchwc_blocks(C, b) || Y->dims[0] != N || Y->dims[2] != X->dims[2] ||
        Y->dims[3] != X->dims[3])
        return ref_fail(c, "output shape does not match the input");
    const float *x = X->data;
    float *y = Y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t cb = 0; cb < Cb; cb++)
            for (int64_t p = 0; p < HW; p++)
                for (int64_t j = 0; j < b; j++) {
                    int64_t ch = cb * b + j;
                    y[((n * Cb + cb) * HW + p) * b + j] =
                        ch < C ? x[(n * C + ch) * HW + p] : 0.0f;
                }
    return 0;
}

static int reorder_out(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    if (X->dtype != KILN_DTYPE_FLOAT32 || X->rank != 5 || Y->rank != 4)
        return ref_fail(c, "expected a float32 blocked tensor");
    int64_t N = Y->dims[0], C = Y->dims[1], HW = Y->dims[2] * Y->dims[3];
    int64_t b = X->dims[4], Cb = X->dims[1];
    if (b < 1 || Cb != nchwc_blocks(C, b) || X->dims[0] != N || X->dims[2] != Y->dims[2] ||
        X->dims[3] != Y->dims[3])
        return ref_fail(c, "output shape does not match the input");
    const float *x = X->data;
    float *y = Y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t p = 0; p < HW; p++)
                y[(n * C + ch) * HW + p] = x[((n * Cb + ch / b) * HW + p) * b + ch % b];
    return 0;
}

static int conv(ref_ctx *c) {
    const kiln_tensor *X = c->in[0], *W = c->in[1];
    const kiln_tensor *B = ref_has(c, 2) ? c->in[2] : NULL;
    const kiln_tensor *Z = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *Y = c->out[0];
    nchwc_conv_geom g;
    fused_act act;
    if (X->dtype != KILN_DTYPE_FLOAT32 || W->dtype != KILN_DTYPE_FLOAT32 ||
        Y->dtype != KILN_DTYPE_FLOAT32 || (B && B->dtype != KILN_DTYPE_FLOAT32) ||
        (Z && Z->dtype != KILN_DTYPE_FLOAT32))
        return ref_fail(c, "NchwcConv computes in float32 only");
    if (!nchwc_conv_geom_read(c->node, X->rank, X->dims, W->rank, W->dims, &g, c->err,
                              sizeof c->err) ||
        !fused_act_read(c->node, &act, c->err, sizeof c->err))
        return -1;
    int64_t b = g.blk;
    int64_t yd[5] = {g.N, g.Mb, g.OH, g.OW, b};
    if (Y->rank != 5 || memcmp(Y->dims, yd, sizeof yd))
        return ref_fail(c, "output shape does not match the geometry");
    if (Z && (Z->rank != 5 || memcmp(Z->dims, yd, sizeof yd)))
        return ref_fail(c, "Z must have the output's shape");
    if (B && tensor_numel(B) != g.Mb * b) return ref_fail(c, "B has the wrong size");
    const nchwc_win *w = &g.win;
    const float *x = X->data, *wt = W->data, *bs = B ? B->data : NULL;
    const float *z = Z ? Z->data : NULL;
    float *y = Y->data;
    int64_t H = g.H, Wd = g.W;
    float *acc = malloc((size_t)b * sizeof *acc);
    if (!acc) return ref_fail(c, "out of memory");
    /* lanes innermost: the b output channels of a block share every input
    ** value (group 1) or read their own channel's (depthwise) */
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t mb = 0; mb < g.Mb; mb++)
            for (int64_t oy = 0; oy < g.OH; oy++)
                for (int64_t ox = 0; ox < g.OW; ox++) {
                    for (int64_t j = 0; j < b; j++) acc[j] = bs ? bs[mb * b + j] : 0.0f;
                    for (int64_t ky = 0; ky < w->kh; ky++) {
                        int64_t iy = oy * w->sh - w->pt + ky * w->dh;
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t kx = 0; kx < w->kw; kx++) {
                            int64_t ix = ox * w->sw - w->pl + kx * w->dw;
                            if (ix < 0 || ix >= Wd) continue;
                            if (g.depthwise) {
                                const float *xp =
                                    x + (((n * g.Cb + mb) * H + iy) * Wd + ix) * b;
                                const float *wp = wt + ((mb * w->kh + ky) * w->kw + kx) * b;
                                for (int64_t j = 0; j < b; j++) acc[j] += xp[j] * wp[j];
                                continue;
                            }
                            for (int64_t ch = 0; ch < g.C; ch++) {
                                float xv = g.nchw_in
                                    ? x[((n * g.C + ch) * H + iy) * Wd + ix]
                                    : x[(((n * g.Cb + ch / b) * H + iy) * Wd + ix) * b + ch % b];
                                const float *wp =
                                    wt + (((mb * g.C + ch) * w->kh + ky) * w->kw + kx) * b;
                                for (int64_t j = 0; j < b; j++) acc[j] += xv * wp[j];
                            }
                        }
                    }
                    int64_t o = (((n * g.Mb + mb) * g.OH + oy) * g.OW + ox) * b;
                    for (int64_t j = 0; j < b; j++) {
                        float v = acc[j] + (z ? z[o + j] : 0.0f);
                        y[o + j] = fused_act_f32(&act, v);
                    }
                }
    free(acc);
    return 0;
}

static int pool(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    nchwc_win w;
    if (!nchwc_win_read(c->node, &w, c->err, sizeof c->err)) return -1;
    int kind = (int)ir_attr_int(c->node, "kind", 0);
    bool incl = ir_attr_int(c->node, "count_include_pad", 0) != 0;
    if (X->rank != 5 || Y->rank != 5 || X->dtype != KILN_DTYPE_FLOAT32 ||
        Y->dtype != KILN_DTYPE_FLOAT32 || Y->dims[0] != X->dims[0] || Y->dims[1] != X->dims[1] ||
        Y->dims[4] != X->dims[4])
        return ref_fail(c, "expected float32 blocked tensors of one batch and block");
    int64_t N = X->dims[0], Cb = X->dims[1], H = X->dims[2], Wd = X->dims[3], b = X->dims[4];
    int64_t OH = Y->dims[2], OW = Y->dims[3];
    if (kind >= NCHWC_POOL_GLOBAL_AVG) {
        w.kh = H, w.kw = Wd, w.sh = w.sw = w.dh = w.dw = 1;
        w.pt = w.pl = w.pb = w.pr = 0;
        kind = kind == NCHWC_POOL_GLOBAL_AVG ? NCHWC_POOL_AVG : NCHWC_POOL_MAX;
    }
    const float *x = X->data;
    float *y = Y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t cb = 0; cb < Cb; cb++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++)
                    for (int64_t j = 0; j < b; j++) {
                        float acc = kind == NCHWC_POOL_MAX ? -INFINITY : 0.0f;
                        int64_t cnt = 0;
                        for (int64_t ky = 0; ky < w.kh; ky++) {
                            int64_t iy = oy * w.sh - w.pt + ky * w.dh;
                            if (iy < 0 || iy >= H) continue;
                            for (int64_t kx = 0; kx < w.kw; kx++) {
                                int64_t ix = ox * w.sw - w.pl + kx * w.dw;
                                if (ix < 0 || ix >= Wd) continue;
                                float v = x[(((n * Cb + cb) * H + iy) * Wd + ix) * b + j];
                                if (kind == NCHWC_POOL_MAX) acc = v > acc || isnan(v) ? v : acc;
                                else acc += v;
                                cnt++;
                            }
                        }
                        if (kind == NCHWC_POOL_AVG) {
                            int64_t den = incl ? w.kh * w.kw : cnt;
                            acc = den ? acc / (float)den : 0.0f;
                        }
                        y[(((n * Cb + cb) * OH + oy) * OW + ox) * b + j] = acc;
                    }
    return 0;
}

const ref_kernel ref_kernels_nchwc[] = {
    {OP_NchwcReorderIn, reorder_in},
    {OP_NchwcReorderOut, reorder_out},
    {OP_NchwcConv, conv},
    {OP_NchwcPool, pool},
    {OP_NONE, NULL},
};
