/* linalg.c: schemas and shape inference for the linalg operator family. */
#include "op.h"

const op_schema op_schemas_linalg[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
