/* runtime.h: runtime internals shared between the engine and context
** code. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include "../engine/engine.h"

/* Display name of a layer: its node name, or "<op>_<index>". */
const char *runtime_layer_name(const ir_node *n);
const kiln_engine *runtime_context_engine(const kiln_context *c);

#endif
