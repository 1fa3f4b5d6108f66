/* detect.c: schemas and shape inference for the detect operator family. */
#include "op.h"

const op_schema op_schemas_detect[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
