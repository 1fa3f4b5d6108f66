/* fuzz_image_body.h: the one function the ImageDecoder libFuzzer target and
** its corpus replayer share. */
#ifndef KILN_FUZZ_IMAGE_BODY_H
#define KILN_FUZZ_IMAGE_BODY_H

#include <stddef.h>
#include <stdint.h>

/* Input: one byte choosing the pixel format (RGB, BGR, Grayscale: value
** mod 3), then the encoded image. Returns 1 if it decoded, 0 if it was
** refused; anything else (crash, sanitizer report, hang) is a bug. */
int kiln_fuzz_image_one(const uint8_t *data, size_t size);

#endif
