/* fuzz_onnx.c: libFuzzer entry point for the ONNX reader (load from memory,
** introspect, free). Half of the mutations are protobuf-aware (see
** pb_mutator.c), half are libFuzzer's byte-level ones. Build with
** -DKILN_FUZZ=ON and clang; see fuzz/README.md. */
#include "fuzz_onnx_body.h"
#include "pb_mutator.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    kiln_fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kiln_fuzz_one(data, size);
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
    if (seed & 1) {
        size_t n = kiln_pb_mutate(data, size, max_size, seed >> 1);
        if (n) return n;
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
