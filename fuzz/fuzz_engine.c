/* fuzz_engine.c: libFuzzer entry point for the engine loader
** (engine_deserialize). Build: fuzz/engine.cmake; see fuzz/README-engine.md. */
#include "fuzz_engine_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    kiln_fuzz_engine_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kiln_fuzz_engine_one(data, size);
    return 0;
}
