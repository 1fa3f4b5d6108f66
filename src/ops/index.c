/* index.c: schemas and shape inference for the index operator family. */
#include "op.h"

const op_schema op_schemas_index[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
