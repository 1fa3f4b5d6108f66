/* control.c: schemas and shape inference for the control operator family. */
#include "op.h"

const op_schema op_schemas_control[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
