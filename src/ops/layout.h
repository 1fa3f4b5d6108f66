/* layout.h: Kiln's internal channels-last (NHWC) ops, domain "kiln", made
** only by the channels-last pass (passes/layout.c) for device builds at
** reduced precision, where cuDNN's fast tensor-core convolutions are NHWC.
** Semantics (schemas in ops/layout.c, reference kernels in
** backends/ref/ref_layout.c):
**
** ToNhwc(X [N,C,H,W]) -> [N,H,W,Cp]: the transpose; attribute "channels"
**   (int, default C, at least C) zero-pads the channel dim to Cp, so that a
**   convolution with C % 8 != 0 (an RGB input) can run as an aligned one
**   whose extra weights are zero.
** ToNchw(X [N,H,W,C]) -> [N,C,H,W]: the inverse transpose.
** NhwcConv(X [N,H,W,C], W [M,KH,KW,C/group], [B [M]], [Z [N,OH,OW,M]]):
**   FusedConv (every attribute, the activation included) with X, W, Z and Y
**   channels-last. 2-D only.
** NhwcMaxPool / NhwcAveragePool(X [N,H,W,C]) -> [N,OH,OW,C]: MaxPool (one
**   output, no Indices) / AveragePool, attributes and all, channels-last.
** NhwcGlobalAveragePool(X [N,H,W,C]) -> [N,C,1,1]: the output is written
**   in NCHW, which for H = W = 1 is bitwise the NHWC [N,1,1,C]: what
**   follows (Flatten, Gemm) needs no conversion.
** NhwcQLinearConv(X [N,H,W,C], x_scale, x_zp, W [M,KH,KW,C], w_scale, w_zp,
**   y_scale, y_zp, [B [M]]) -> Y [N,OH,OW,M]: QLinearConv (2-D, group 1)
**   with X, W and Y channels-last; scales, zero points and B as they are.
**   ToNhwc/ToNchw, NhwcMaxPool and QAdd (elementwise, any layout) carry
**   8-bit values in these chains too. */
#ifndef KILN_OPS_LAYOUT_H
#define KILN_OPS_LAYOUT_H

#include "op.h"

/* The NCHW op an NHWC op computes (OP_FusedConv for NhwcConv), OP_NONE
** for any other op. */
int layout_nchw_op(int op);
/* Whether input k of NHWC op `op` is channels-last (X, W, Z of NhwcConv;
** X, W of NhwcQLinearConv; input 0 of the others). */
bool layout_input_is_spatial(int op, int k);
/* Whether op is one of the ops above (layout conversions included). */
bool layout_is_nhwc_op(int op);
/* The data layout a layer works in, for inspect: "NHWC" for the ops above
** and for the elementwise layers the pass moved into a chain (they carry
** kiln_layout = "NHWC"), "NCHW>NHWC" / "NHWC>NCHW" for the reformat
** layers, "" otherwise (the ONNX layout, NCHW for image tensors). */
const char *layout_of_node(const ir_node *n);

#endif
