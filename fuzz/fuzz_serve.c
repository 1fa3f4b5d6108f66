/* fuzz_serve.c: libFuzzer entry point for the `kiln serve` request and
** config parsers (see fuzz_serve_body.c). Build with -DKILN_FUZZ=ON and
** clang; run with fuzz/corpus/serve as the seed corpus. */
#include "fuzz_serve_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kiln_fuzz_serve_one(data, size);
    return 0;
}
