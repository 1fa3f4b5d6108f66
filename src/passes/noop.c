/* noop.c: optimizer pass (placeholder until implemented). */
#include "passes.h"

static kiln_status run(pass_ctx *p) {
    (void)p;
    return KILN_OK;
}

const kiln_pass pass_noop = {"noop", run};
