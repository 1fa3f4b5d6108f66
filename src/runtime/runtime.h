/* runtime.h: runtime internals shared between the engine and context
** code. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include "../engine/engine.h"

/* Display name of a layer: its node name, or "<op>_<index>". */
const char *runtime_layer_name(const ir_node *n);
const kiln_engine *runtime_context_engine(const kiln_context *c);

/* Device backends (device.c): open the device, check the fingerprint and
** upload the constants device layers read; and the reverse. No-ops for
** host backends. */
kiln_status runtime_attach_device(kiln_engine *e);
void runtime_detach_device(kiln_engine *e);
/* Whether a layer's chosen tactic (for a profile) runs on the device. */
bool runtime_layer_on_device(const kiln_engine *e, int layer, int profile);

#endif
