/* pipeline.c: the order the optimizer passes run in, and their logging. */
#include "passes.h"

#include <stdio.h>

/* Q/DQ folding first, while the weights' DequantizeLinear nodes are still
** there (folding would make them float constants). Folding then exposes static shapes; pattern recognitions run before the
** generic fusions would take their pieces apart; the Q/K/V projections of
** an Attention pack into one GEMM once their biases are fused (qkv.c);
** elementwise chains last,
** over what is left; the CPU layout pass (a no-op unless the builder asks)
** after every fusion, so it sees the final layers; a final fold/DCE cleans
** up. */
static const kiln_pass *const k_pipeline[] = {
    &pass_qdq, &pass_fold, &pass_noop, &pass_dce, &pass_qdyn,
    &pass_layernorm, &pass_gelu, &pass_qepi, &pass_attention,
    &pass_conv_bn, &pass_matmul_add, &pass_bias_act, &pass_qkv,
    &pass_transpose, &pass_eltwise, &pass_nchwc,
    &pass_fold, &pass_dce,
};

void pass_log(pass_ctx *p, kiln_severity sev, const char *fmt, ...) {
    if ((int)sev > p->log_max) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->log) p->log(p->log_user, sev, msg);
    else fprintf(stderr, "kiln: %s\n", msg);
}

void pass_note(pass_ctx *p, const char *fmt, ...) {
    p->changes++;
    if (KILN_SEVERITY_VERBOSE > p->log_max) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pass_log(p, KILN_SEVERITY_VERBOSE, "[%s] %s", p->pass_name, msg);
}

static kiln_status run_pass(pass_ctx *p, const kiln_pass *ps) {
    p->changes = 0;
    p->pass_name = ps->name;
    int before = p->g->n_nodes;
    kiln_status st = ps->run(p);
    if (st) {
        kiln_error_prefix("pass %s", ps->name);
        return st;
    }
    if ((st = ir_graph_compact(p->g)) || (st = ir_graph_infer(p->g))) {
        kiln_error_prefix("after pass %s", ps->name);
        return st;
    }
    pass_log(p, KILN_SEVERITY_INFO, "pass %-12s %3d rewrites, %d -> %d nodes",
             ps->name, p->changes, before, p->g->n_nodes);
    return KILN_OK;
}

kiln_status passes_run_all(pass_ctx *p) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_pipeline); i++) {
        kiln_status st = run_pass(p, k_pipeline[i]);
        if (st) return st;
    }
    return KILN_OK;
}

kiln_status passes_run_one(pass_ctx *p, const char *name) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_pipeline); i++)
        if (strcmp(k_pipeline[i]->name, name) == 0) return run_pass(p, k_pipeline[i]);
    return kiln_error(KILN_INVALID_ARGUMENT, "no pass named '%s'", name);
}
