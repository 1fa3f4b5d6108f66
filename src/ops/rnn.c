/* rnn.c: schemas and shape inference for the rnn operator family. */
#include "op.h"

const op_schema op_schemas_rnn[] = {
    {OP_NONE, 0, 0, 0, 0, NULL},
};
