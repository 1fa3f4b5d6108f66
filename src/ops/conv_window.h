/* conv_window.h: sliding-window geometry (kernel, strides, dilations, pads,
** auto_pad, ceil_mode) shared by the conv family's inference (ops/conv.c)
** and its reference kernels (backends/ref/ref_conv.c), so both agree. */
#ifndef KILN_CONV_WINDOW_H
#define KILN_CONV_WINDOW_H

#include "op.h"

enum { CW_NOTSET, CW_SAME_UPPER, CW_SAME_LOWER, CW_VALID };

/* Flags for conv_window_read. */
enum {
    CW_CEIL = 1,        /* the op has ceil_mode */
    CW_DILATIONS = 2,   /* the op has dilations */
    CW_AUTO_PAD = 4     /* the op has auto_pad */
};

/* Window attributes as read from a node. Attribute values are bounded
** (< 2^31) so geometry arithmetic cannot overflow on sane dims. */
typedef struct conv_window {
    int nsp;              /* number of spatial dims */
    int auto_pad;         /* CW_* */
    bool ceil_mode;
    bool kernel_known;    /* false when taken from a symbolic W dim */
    int64_t k[KILN_MAX_RANK], s[KILN_MAX_RANK], d[KILN_MAX_RANK];
    int64_t pads[2 * KILN_MAX_RANK]; /* begin..., end... */
} conv_window;

/* Concrete geometry. For a forward window (conv, pooling) img is the input
** and grid the output; for ConvTranspose/Col2Im img is the output and grid
** the input. Grid position q and tap t touch image coordinate
** q*s - pb + t*d along each dim; coordinates outside [0, img) are padding. */
typedef struct conv_geom {
    int nsp;
    int64_t img[KILN_MAX_RANK], grid[KILN_MAX_RANK];
    int64_t k[KILN_MAX_RANK], s[KILN_MAX_RANK], d[KILN_MAX_RANK];
    int64_t pb[KILN_MAX_RANK], pe[KILN_MAX_RANK];
} conv_geom;

/* Reads kernel_shape/strides/dilations/pads/auto_pad/ceil_mode for nsp
** spatial dims. kdef gives the kernel when kernel_shape is absent (dims may
** be symbolic); kdef NULL makes kernel_shape required. flags: CW_*.
** Returns 0, or -1 with a message in err. */
int conv_window_read(const ir_node *n, int nsp, const int64_t *kdef,
                     unsigned flags, conv_window *w, char *err, size_t nerr);

/* Forward geometry (conv, pools) for concrete input spatial dims. */
int conv_geom_forward(const conv_window *w, const int64_t *in, conv_geom *g,
                      char *err, size_t nerr);

/* ConvTranspose geometry for concrete input spatial dims; reads the
** output_padding and output_shape attributes. */
int conv_geom_transpose(const conv_window *w, const ir_node *n,
                        const int64_t *in, conv_geom *g, char *err,
                        size_t nerr);

#endif
