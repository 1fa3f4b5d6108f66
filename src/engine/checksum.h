/* checksum.h: the 64-bit checksum that seals engine files (see checksum.c
** for why every single-byte change is guaranteed to change it). */
#ifndef KILN_CHECKSUM_H
#define KILN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Checksum of n bytes at data (any alignment). Deterministic across hosts
** (bytes are read as little-endian words). */
uint64_t kiln_checksum64(const void *data, size_t n);

#endif
