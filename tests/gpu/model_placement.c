/* model_placement.c: offline check (no GPU needed) that a CUDA build of a
** model puts every layer on the device: the builder's placement dry run
** (builder_placement: the import, passes, precision pass and tactic filter
** of `kiln build --device cuda [--fp16|--bf16]`) on one model, listing each
** layer that would fall back to the host (op, name, input types) and
** counting the shape-arithmetic layers kept on the host on purpose. Issue 12
** asks the exported model set to build with no host-fallback layer; the
** real build on a GPU (check_models.py --build-args="--device cuda") says
** the same after timing, this says it on any machine, in CI.
**
** usage: model_placement MODEL [--fp16|--bf16] [NAME:D1xD2x... ...]
** (static shapes for the inputs: min = opt = max). Exits 1 when a layer
** falls back, 2 on a setup error. */
#include "../../src/builder/builder.h"
#include "../../src/ir/ir.h"
#include "placement_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct state {
    int layers, shape_host, fallback;
} state;

static void on_layer(void *user, const ir_node *n, builder_place where, const ir_type *const *in) {
    state *s = user;
    s->layers++;
    if (where == BUILDER_PLACE_SHAPE_HOST) s->shape_host++;
    if (where != BUILDER_PLACE_FALLBACK) return;
    s->fallback++;
    printf("HOST  %-22s %s (", n->op_type ? n->op_type : "?", n->name ? n->name : "");
    for (int i = 0; i < n->n_in; i++) {
        const ir_type *t = in[i];
        if (i) printf(", ");
        if (!t) {
            printf("-");
            continue;
        }
        printf("%s[", kiln_dtype_name(t->dtype));
        for (int d = 0; d < t->rank; d++)
            printf(d ? "x%lld" : "%lld", (long long)t->dims[d]);
        printf("]");
    }
    printf(")\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--fp16|--bf16] [NAME:DIMS ...]\n", argv[0]);
        return 2;
    }
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    int prof;
    unsigned prec = KILN_PRECISION_FP32;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--fp16")) prec |= KILN_PRECISION_FP16;
        else if (!strcmp(argv[i], "--bf16")) prec |= KILN_PRECISION_BF16;
        else if (!strchr(argv[i], ':')) {
            fprintf(stderr, "unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    int rc = 2;
    if (kiln_model_load(argv[1], &m) || kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_ERROR) ||
        kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA) ||
        kiln_builder_config_set_precisions(cfg, prec) ||
        kiln_builder_config_add_profile(cfg, &prof)) {
        fprintf(stderr, "setup: %s\n", kiln_last_error());
        goto done;
    }
    if (placement_shapes(cfg, prof, argc, argv, 2)) goto done;
    state s;
    memset(&s, 0, sizeof s);
    if (builder_placement(m, cfg, on_layer, &s)) {
        fprintf(stderr, "placement: %s\n", kiln_last_error());
        goto done;
    }
    printf("%d layers: %d on the device, %d shape layers on the host, %d host fallbacks\n",
           s.layers, s.layers - s.shape_host - s.fallback, s.shape_host, s.fallback);
    rc = s.fallback ? 1 : 0;
done:
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return rc;
}
