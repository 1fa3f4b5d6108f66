/* fuzz_image.c: libFuzzer entry point for ImageDecoder's decoders
** (util/image.c). Build: fuzz/image.cmake. */
#include "fuzz_image_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kiln_fuzz_image_one(data, size);
    return 0;
}
