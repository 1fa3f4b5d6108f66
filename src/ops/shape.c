/* shape.c: schemas and shape inference for the shape operator family. */
#include "op.h"

const op_schema op_schemas_shape[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
