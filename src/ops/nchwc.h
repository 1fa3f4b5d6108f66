/* nchwc.h: Kiln's internal channel-blocked ("NCHWc") ops, shared by their
** schemas (ops/nchwc.c), the layout pass (passes/nchwc.c), the reference
** kernels (backends/ref/ref_nchwc.c) and the CPU kernels (cpu_nchwc*.c).
**
** A blocked tensor of a 4-D NCHW tensor with C channels and block b has the
** shape [N, ceil(C/b), H, W, b]: channel c is element c % b of block c / b.
** The lanes past C in the last block ("padding lanes") hold unspecified
** finite values; no op reads them into a real lane. Every consumer therefore
** loops over the real channel count (an attribute), and NchwcReorderOut
** drops them.
**
** NchwcReorderIn:  X [N, C, H, W] -> [N, ceil(C/b), H, W, b]; "block" = b.
**   Padding lanes are written as zeros.
** NchwcReorderOut: X [N, Cb, H, W, b] -> [N, C, H, W]; "channels" = C
**   (ceil(C/b) must be Cb).
** NchwcConv: inputs X, W, [B], [Z]; attributes block, in_channels (C),
**   out_channels (M), group (1, or C == M for depthwise), kernel_shape,
**   strides, dilations, pads (explicit, 2-D: top, left, bottom, right),
**   input_nchw (0/1) and FusedConv's activation attributes.
**     X  blocked [N, ceil(C/b), H, W, b], or plain [N, C, H, W] when
**        input_nchw = 1 (a net's first conv, C < b, reads its input as is);
**     W  group 1: [ceil(M/b), C, KH, KW, b]: W[mb][c][ky][kx][j] is the
**        ONNX weight of output channel mb*b + j (zero past M);
**        depthwise: [ceil(C/b), KH, KW, b], W[cb][ky][kx][j] the filter of
**        channel cb*b + j (zero past C);
**     B  [ceil(M/b) * b] (zero past M); Z blocked, the output's shape.
**     Y  blocked [N, ceil(M/b), OH, OW, b] = act(conv(X, W) + B + Z), with
**        Conv's output size for those pads.
** NchwcPool: X blocked; attributes kind (NCHWC_POOL_*), channels (C),
**   kernel_shape, strides, dilations, pads (2-D, explicit) and
**   count_include_pad (average) as in MaxPool / AveragePool with
**   ceil_mode 0; the global kinds reduce H x W to 1 x 1. */
#ifndef KILN_NCHWC_H
#define KILN_NCHWC_H

#include "op.h"

enum {
    NCHWC_POOL_MAX = 0,
    NCHWC_POOL_AVG = 1,
    NCHWC_POOL_GLOBAL_AVG = 2,
    NCHWC_POOL_GLOBAL_MAX = 3
};

/* Window attributes of an NchwcConv/NchwcPool node (2-D). */
typedef struct nchwc_win {
    int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} nchwc_win;

/* Concrete geometry of an NchwcConv. */
typedef struct nchwc_conv_geom {
    int64_t N, C, M, Cb, Mb, H, W, OH, OW, blk;
    nchwc_win win;
    bool depthwise, nchw_in;
} nchwc_conv_geom;

static inline int64_t nchwc_blocks(int64_t c, int64_t b) { return (c + b - 1) / b; }

/* Reads the window attributes; false (message in err) when one is missing
** or out of range. Kernel sizes come from kernel_shape. */
bool nchwc_win_read(const ir_node *n, nchwc_win *w, char *err, size_t nerr);

/* Output size along one dim for input size in (>= 0), or -1 when the
** window does not fit. */
static inline int64_t nchwc_out_dim(int64_t in, int64_t k, int64_t s, int64_t d,
                                    int64_t p0, int64_t p1) {
    int64_t span = (k - 1) * d + 1, tot = in + p0 + p1;
    if (tot < span) return -1;
    return (tot - span) / s + 1;
}

/* Geometry of an NchwcConv from its node and concrete X / W dims; checks
** every shape against the attributes. false with a message in err. */
bool nchwc_conv_geom_read(const ir_node *n, int xrank, const int64_t *xdims,
                          int wrank, const int64_t *wdims, nchwc_conv_geom *g,
                          char *err, size_t nerr);

#endif
