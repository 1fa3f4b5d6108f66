/* main.c: a program outside the Kiln tree that uses only the installed
** library: builds an engine from a model, reloads it and runs it once. */
#include <kiln.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                         \
    do {                                                                    \
        kiln_status st_ = (call);                                           \
        if (st_) {                                                          \
            fprintf(stderr, "%s: %s\n", #call, kiln_last_error());          \
            return 1;                                                       \
        }                                                                   \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: consumer MODEL.onnx\n");
        return 2;
    }
    if (strcmp(kiln_version(), KILN_VERSION_STRING)) {
        fprintf(stderr, "header %s, library %s\n", KILN_VERSION_STRING, kiln_version());
        return 1;
    }
    kiln_model *m;
    kiln_builder_config *cfg;
    kiln_engine *e;
    kiln_context *c;
    void *blob;
    size_t size;
    int prof;
    int64_t lo[4] = {1, 3, 32, 32}, hi[4] = {2, 3, 32, 32};
    CHECK(kiln_model_load(argv[1], &m));
    CHECK(kiln_builder_config_create(&cfg));
    CHECK(kiln_builder_config_set_opt_level(cfg, 0));
    CHECK(kiln_builder_config_add_profile(cfg, &prof));
    CHECK(kiln_builder_config_set_shape(cfg, prof, "image", 4, lo, hi, hi));
    CHECK(kiln_build_engine(m, cfg, &blob, &size));
    CHECK(kiln_engine_load_memory(blob, size, &e));
    CHECK(kiln_context_create(e, &c));
    static float image[2 * 3 * 32 * 32], probs[2 * 10];
    for (size_t i = 0; i < sizeof image / sizeof *image; i++) image[i] = (float)(i % 7) / 7.0f;
    CHECK(kiln_context_set_input_shape(c, "image", 4, hi));
    CHECK(kiln_context_set_tensor(c, "image", image, sizeof image));
    CHECK(kiln_context_set_tensor(c, "probs", probs, sizeof probs));
    CHECK(kiln_context_execute(c));
    /* probs is a softmax: each row sums to 1. */
    float sum = 0;
    for (int i = 0; i < 10; i++) sum += probs[i];
    printf("engine %zu bytes, %d layers, row sum %.4f\n", size, kiln_engine_num_layers(e), sum);
    kiln_context_destroy(c);
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return sum > 0.999f && sum < 1.001f ? 0 : 1;
}
