/* fuzz_onnx_body.h: the one function the libFuzzer target and the corpus
** replayer share: load a model from memory, walk the public introspection
** API, free it. */
#ifndef KILN_FUZZ_ONNX_BODY_H
#define KILN_FUZZ_ONNX_BODY_H

#include <stddef.h>
#include <stdint.h>

/* Allocation cap while fuzzing: big enough for every seed, small enough that
** a hostile declared size fails cleanly instead of exhausting the machine. */
#define KILN_FUZZ_MAX_ALLOC ((size_t)64 << 20)

/* Lowers the library's allocation cap; call once before the first input. */
void kiln_fuzz_init(void);
/* Feeds one input through the reader. Returns 1 if it loaded, 0 if refused.
** Anything else (a crash, a sanitizer report, a hang) is a bug. */
int kiln_fuzz_one(const uint8_t *data, size_t size);

#endif
