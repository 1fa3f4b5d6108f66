/* int8_placement.c: offline check of a calibrated INT8 device build (no GPU
** needed): the builder's placement dry run (builder_placement: the same
** import, calibration, Q/DQ insertion, passes and tactic filter as `kiln
** build --device cuda --int8 [--fp16]`) on a model, listing per op how many
** layers a device tactic takes and how many would run on the host, and the
** reformat (Cast) layers the precision pass left. Exits 1 when a quantized
** layer (QLinearConv, QAdd, 8-bit MaxPool, Q/DQ) would run on the host.
**
** usage: int8_placement MODEL CALIB_DIR [--fp16] [NAME:D1xD2x... ...]
** (static shapes for the inputs: min = opt = max). */
#include "../../src/builder/builder.h"
#include "../../src/ir/ir.h"
#include "placement_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct op_count {
    char op[64];
    int device, host;
} op_count;

typedef struct state {
    op_count ops[256];
    int n_ops;
    int q_host;
} state;

static bool is_q8(kiln_dtype t) { return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8; }

static void on_layer(void *user, const ir_node *n, builder_place where, const ir_type *const *in) {
    state *s = user;
    const char *op = n->op_type ? n->op_type : "?";
    op_count *c = NULL;
    for (int i = 0; i < s->n_ops && !c; i++)
        if (!strcmp(s->ops[i].op, op)) c = &s->ops[i];
    if (!c && s->n_ops < 256) {
        c = &s->ops[s->n_ops++];
        snprintf(c->op, sizeof c->op, "%s", op);
    }
    bool dev = where == BUILDER_PLACE_DEVICE;
    if (c) {
        if (dev) c->device++;
        else c->host++;
    }
    bool quant = n->op == OP_QLinearConv || n->op == OP_QAdd ||
                 n->op == OP_QuantizeLinear || n->op == OP_DequantizeLinear ||
                 (n->op == OP_MaxPool && in[0] && is_q8(in[0]->dtype));
    if (quant && !dev) {
        s->q_host++;
        fprintf(stderr, "host: %s '%s'\n", op, n->name ? n->name : "");
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL CALIB_DIR [--fp16] [NAME:D1xD2x... ...]\n", argv[0]);
        return 2;
    }
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    int prof;
    unsigned prec = KILN_PRECISION_INT8;
    for (int i = 3; i < argc; i++)
        if (!strcmp(argv[i], "--fp16")) prec |= KILN_PRECISION_FP16;
    if (kiln_model_load(argv[1], &m) || kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_WARNING) ||
        kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA) ||
        kiln_builder_config_set_precisions(cfg, prec) ||
        kiln_builder_config_set_int8_calibration(cfg, argv[2], KILN_CALIB_ENTROPY, 99.99, 1,
                                                 NULL) ||
        kiln_builder_config_add_profile(cfg, &prof)) {
        fprintf(stderr, "setup: %s\n", kiln_last_error());
        return 2;
    }
    if (placement_shapes(cfg, prof, argc, argv, 3)) return 2;
    state *s = calloc(1, sizeof *s);
    if (!s) return 2;
    kiln_status st = builder_placement(m, cfg, on_layer, s);
    if (st) {
        fprintf(stderr, "placement: %s\n", kiln_last_error());
        return 2;
    }
    printf("%-28s %7s %5s\n", "op", "device", "host");
    for (int i = 0; i < s->n_ops; i++)
        printf("%-28s %7d %5d\n", s->ops[i].op, s->ops[i].device, s->ops[i].host);
    printf("%d quantized layer(s) on the host\n", s->q_host);
    int rc = s->q_host ? 1 : 0;
    free(s);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return rc;
}
