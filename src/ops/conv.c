/* conv.c: schemas and shape inference for the conv operator family. */
#include "op.h"

const op_schema op_schemas_conv[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
