/* fuzz_image_replay.c: plugs the image fuzz body into the shared corpus
** replayer (fuzz/replay.c calls kiln_fuzz_init / kiln_fuzz_one). */
#include "fuzz_image_body.h"
#include "fuzz_onnx_body.h"

void kiln_fuzz_init(void) {}
int kiln_fuzz_one(const uint8_t *data, size_t size) {
    return kiln_fuzz_image_one(data, size);
}
