/* quant.c: schemas and shape inference for the quant operator family. */
#include "op.h"

const op_schema op_schemas_quant[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
