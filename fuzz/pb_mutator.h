/* pb_mutator.h: protobuf-structure-aware mutation for the libFuzzer target. */
#ifndef KILN_PB_MUTATOR_H
#define KILN_PB_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

/* Mutates data (size bytes, room for max_size) as a protobuf message tree.
** Returns the new size, or 0 when the input does not parse as protobuf or
** the result would not fit (the caller then mutates bytes instead). */
size_t kiln_pb_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed);

#endif
