/* fuzz_engine_body.h: the one function the engine-loader libFuzzer target
** and its corpus replayer share. */
#ifndef KILN_FUZZ_ENGINE_BODY_H
#define KILN_FUZZ_ENGINE_BODY_H

#include <stddef.h>
#include <stdint.h>

/* Lowers the library's allocation cap; call once before the first input. */
void kiln_fuzz_engine_init(void);
/* Input: one flag byte, then the engine bytes. Flag bit 0 set: the body
** re-seals the bytes first (total size and checksum recomputed), so the
** mutation reaches the structural checks behind the checksum; clear: the
** bytes are loaded as they are. Returns 1 if the engine loaded, 0 if it
** was refused; anything else (crash, sanitizer report, hang) is a bug. */
int kiln_fuzz_engine_one(const uint8_t *data, size_t size);

#endif
