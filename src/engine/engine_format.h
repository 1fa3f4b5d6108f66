/* engine_format.h: byte-layout constants of .kiln files and the helpers the
** format's tests and fuzzer need besides engine.h. docs/ENGINE_FORMAT.md is
** the full description. */
#ifndef KILN_ENGINE_FORMAT_H
#define KILN_ENGINE_FORMAT_H

#include "engine.h"

/* First 8 bytes of every engine file, whatever its format version. */
#define ENGINE_MAGIC "\x89KILN\r\n\x1a"
#define ENGINE_MAGIC_LEN 8

enum {
    ENGINE_HEADER_SIZE = 64,
    ENGINE_TRAILER_SIZE = 8,       /* the checksum */
    ENGINE_SECTION_ENTRY_SIZE = 24,
    ENGINE_WEIGHT_ALIGN = 64,
    /* header field offsets */
    ENGINE_OFF_VERSION = 8,        /* u32, fixed for every format version */
    ENGINE_OFF_HEADER_SIZE = 12,   /* u32 */
    ENGINE_OFF_TOTAL_SIZE = 16,    /* u64 */
    ENGINE_OFF_SECTION_COUNT = 24, /* u32 */
    ENGINE_OFF_FLAGS = 28,         /* u32, 0 */
    ENGINE_OFF_SECTION_TABLE = 32  /* u64 */
};

/* Tensor flags (tensors section, since v4). */
enum {
    /* The bytes are not stored (offset 0): only layers' prepared data read
    ** them (engine_const_unread); the loaded tensor has data == NULL. */
    ENGINE_TENSOR_NO_DATA = 1u << 0
};

enum {
    ENGINE_SEC_BUILD = 1,
    ENGINE_SEC_SYMBOLS = 2,
    ENGINE_SEC_TENSORS = 3,
    ENGINE_SEC_GRAPH = 4,
    ENGINE_SEC_PROFILES = 5,
    ENGINE_SEC_LAYERS = 6,
    ENGINE_SEC_PLANS = 7,
    ENGINE_SEC_WEIGHTS = 8,
    ENGINE_SEC_COUNT = 8
};

/* Deepest subgraph nesting accepted (main graph is depth 0). */
#define ENGINE_MAX_GRAPH_DEPTH 32

/* Makes a (possibly edited) blob pass the size and checksum checks again:
** writes size into the header's total-size field (when the header is
** there) and the checksum of bytes [0, size-8) into the last 8 bytes. For
** tests and the fuzzer; does nothing to blobs under 8 + 24 bytes. */
void engine_reseal(uint8_t *blob, size_t size);

/* KILN_OK when host has every KILN_ISA_* bit of required, else
** KILN_INCOMPATIBLE_ENGINE with "built for avx512f; this machine has avx2
** fma only: rebuild the engine on this machine" style message. */
kiln_status engine_check_isa(unsigned required, unsigned host);

#endif
