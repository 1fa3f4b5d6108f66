/* fuzz_serve_body.h: the body shared by the `kiln serve` request-parser
** fuzz target and its corpus replayer. */
#ifndef KILN_FUZZ_SERVE_BODY_H
#define KILN_FUZZ_SERVE_BODY_H

#include <stddef.h>
#include <stdint.h>

/* Byte 0 picks what the rest is: 0 an infer body without the binary
** extension, 1 an infer body whose JSON header length is bytes 1-2
** (little-endian, clamped to the body), 2 a config.pbtxt. Returns 1 when
** parsed, 0 when refused; anything else is a bug. */
int kiln_fuzz_serve_one(const uint8_t *data, size_t size);

#endif
