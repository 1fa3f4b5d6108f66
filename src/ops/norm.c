/* norm.c: schemas and shape inference for the norm operator family. */
#include "op.h"

const op_schema op_schemas_norm[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
