/* qkv_placement.c: offline check (no GPU needed) that a device build packs
** each Attention's Q/K/V projections into one GEMM (passes/qkv.c) and that
** the packed Attention stays on the device: the builder's placement dry run
** (builder_placement: the same import, passes, precision pass and tactic
** filter as `kiln build --device cuda [--fp16|--bf16]`) on a model, listing
** every Attention layer (packed widths, placement, whether the flash tactic
** takes it) and the packed GEMMs. Exits 1 when an Attention would run on
** the host, when none is packed, or (--want-flash) when the flash tactic
** declines one.
**
** usage: qkv_placement MODEL [--fp16|--bf16] [--want-flash] [NAME:D1xD2x... ...]
** (static shapes for the inputs: min = opt = max). */
#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/builder/builder.h"
#include "../../src/ir/ir.h"
#include "placement_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct state {
    int attn, packed, host, flash_no;
} state;

static void on_layer(void *user, const ir_node *n, builder_place where, const ir_type *const *in) {
    state *s = user;
    if (n->op != OP_Attention) return;
    int cnt = 0;
    const int64_t *w = ir_attr_ints(n, "kiln_qkv_packed", &cnt);
    const kiln_tactic *flash = NULL;
    for (int i = 0; cuda_tactics_attn[i]; i++)
        if (strstr(cuda_tactics_attn[i]->name, "flash")) flash = cuda_tactics_attn[i];
    bool fl = flash && flash->supports(n, in);
    s->attn++;
    if (w && cnt == 3) s->packed++;
    if (where != BUILDER_PLACE_DEVICE) s->host++;
    if (!fl) s->flash_no++;
    printf("Attention '%s': %s, %s, in0 %s [%lld x %lld x %lld], flash %s\n",
           n->name ? n->name : "", w && cnt == 3 ? "packed" : "not packed",
           where == BUILDER_PLACE_DEVICE ? "device" : "HOST",
           in[0] ? kiln_dtype_name(in[0]->dtype) : "?",
           in[0] && in[0]->rank == 3 ? (long long)in[0]->dims[0] : -1LL,
           in[0] && in[0]->rank == 3 ? (long long)in[0]->dims[1] : -1LL,
           in[0] && in[0]->rank == 3 ? (long long)in[0]->dims[2] : -1LL, fl ? "yes" : "no");
    if (w && cnt == 3)
        printf("  widths %lld/%lld/%lld\n", (long long)w[0], (long long)w[1], (long long)w[2]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--fp16|--bf16] [--want-flash] [NAME:DIMS ...]\n",
                argv[0]);
        return 2;
    }
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    int prof;
    unsigned prec = KILN_PRECISION_FP32;
    bool want_flash = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--fp16")) prec |= KILN_PRECISION_FP16;
        if (!strcmp(argv[i], "--bf16")) prec |= KILN_PRECISION_BF16;
        if (!strcmp(argv[i], "--want-flash")) want_flash = true;
    }
    if (kiln_model_load(argv[1], &m) || kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_WARNING) ||
        kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA) ||
        kiln_builder_config_set_precisions(cfg, prec) ||
        kiln_builder_config_add_profile(cfg, &prof)) {
        fprintf(stderr, "setup: %s\n", kiln_last_error());
        return 2;
    }
    if (placement_shapes(cfg, prof, argc, argv, 2)) return 2;
    state s;
    memset(&s, 0, sizeof s);
    kiln_status st = builder_placement(m, cfg, on_layer, &s);
    if (st) {
        fprintf(stderr, "placement: %s\n", kiln_last_error());
        return 2;
    }
    printf("%d Attention layer(s): %d packed, %d on the host, %d the flash tactic declines\n",
           s.attn, s.packed, s.host, s.flash_no);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    bool bad = s.host || s.packed == 0 || (want_flash && s.flash_no);
    /* the count line tests/gpu/run.sh's suite() reads */
    printf("%d passed, %d failed\n", bad ? 0 : 1, bad ? 1 : 0);
    return bad ? 1 : 0;
}
