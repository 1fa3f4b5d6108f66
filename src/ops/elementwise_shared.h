/* elementwise_shared.h: attribute reading shared by the elementwise family's
** inference (ops/elementwise.c) and its reference kernels
** (backends/ref/ref_elementwise.c), so both read Cast's target alike. */
#ifndef KILN_ELEMENTWISE_SHARED_H
#define KILN_ELEMENTWISE_SHARED_H

#include "op.h"

/* Cast's `to` as a dtype code: the int attribute, or before opset 6 a type
** name string ("FLOAT", any case). 0 when absent or not a known name. */
int64_t elementwise_cast_to(const ir_node *n);

#endif
