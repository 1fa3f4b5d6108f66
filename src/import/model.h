/* model.h: the public kiln_model's internals (shared with the builder). */
#ifndef KILN_MODEL_H
#define KILN_MODEL_H

#include "onnx.h"

typedef struct op_stat {
    const char *op_type;
    int count;
    int supported;
} op_stat;

struct kiln_model {
    ir_model *ir;
    const uint8_t *bytes;  /* the ONNX file's bytes (mapped or caller's) */
    size_t nbytes;
    int n_nodes;
    int n_stats;
    op_stat *stats;
    int n_warnings;
    char **warnings;   /* import warnings (malloc'ed) */
};

/* kiln_model_load_v2 and kiln_model_load_memory_v2 with the evaluator the
** model's IR folds constants with (ir_model.eval); runtime/model_api.c gives
** them the reference backend's. */
kiln_status kiln_model_load_ev(const char *path, const kiln_model_load_options *o,
                               const op_evaluator *eval, kiln_model **out);
kiln_status kiln_model_load_memory_ev(const void *data, size_t size,
                                      const char *external_dir,
                                      const kiln_model_load_options *o,
                                      const op_evaluator *eval,
                                      kiln_model **out);

/* A fresh, independent IR of the same model (the optimizer edits it), with
** the same evaluator. */
kiln_status kiln_model_reimport(const kiln_model *m, ir_model **out);

#endif
