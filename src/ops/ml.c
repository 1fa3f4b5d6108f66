/* ml.c: schemas and shape inference for the ai.onnx.ml operators that have
** their own reference kernels (tree ensembles: TreeEnsemble of ai.onnx.ml
** opset 5, TreeEnsembleClassifier/Regressor of opsets 1-3). The importer maps
** these names only from the ai.onnx.ml domain; the tensor-only ml operators
** that are plain arithmetic are expanded into ai.onnx nodes instead
** (import/onnx_contrib.c). The tree structure itself is validated by the
** kernel (backends/ref/ref_ml.c), which compiles it once per run. */
#include "op.h"

static bool ml_input_ok(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT64 || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_INT64 || t == KILN_DTYPE_INT32;
}

/* X is [N, F] (or [F], one sample); *n gets N. */
static int ml_rows(infer_ctx *c, int64_t *n) {
    const ir_type *x = ic_in(c, 0);
    if (!x) return ic_fail(c, "needs X");
    if (x->dtype != KILN_DTYPE_UNDEFINED && !ml_input_ok(x->dtype))
        return ic_fail(c, "X must be float, double, float16, int64 or int32, got %s",
                       kiln_dtype_name(x->dtype));
    if (x->rank > 2 || x->rank == 0) return ic_fail(c, "X must be [N, F] or [F]");
    *n = x->rank < 0 ? ic_new_sym(c) : x->rank == 1 ? 1 : x->dims[0];
    return 0;
}

static int infer_tree_ensemble(infer_ctx *c) {
    int64_t n = 0, t = ir_attr_int(c->node, "n_targets", -1);
    if (ml_rows(c, &n)) return -1;
    kiln_dtype dt = ic_in(c, 0)->dtype;
    if (dt != KILN_DTYPE_UNDEFINED && dt != KILN_DTYPE_FLOAT32 && dt != KILN_DTYPE_FLOAT64 &&
        dt != KILN_DTYPE_FLOAT16)
        return ic_fail(c, "X must be float, double or float16, got %s", kiln_dtype_name(dt));
    if (t < 1 || t > ((int64_t)1 << 31)) return ic_fail(c, "n_targets must be positive");
    ic_set_out(c, 0, dt, 2, (int64_t[]){n, t});
    return 0;
}

static int infer_tree_regressor(infer_ctx *c) {
    int64_t n = 0, t = ir_attr_int(c->node, "n_targets", 1);
    if (ml_rows(c, &n)) return -1;
    if (t < 1 || t > ((int64_t)1 << 31)) return ic_fail(c, "n_targets must be positive");
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 2, (int64_t[]){n, t});
    return 0;
}

static int infer_tree_classifier(infer_ctx *c) {
    int64_t n = 0;
    int nl = 0;
    if (ml_rows(c, &n)) return -1;
    if (ir_attr_find(c->node, "classlabels_strings"))
        return ic_fail(c, "string class labels (classlabels_strings) are not supported: "
                       "Kiln runs numeric tensors only; export with integer labels");
    if (!ir_attr_ints(c->node, "classlabels_int64s", &nl) || nl < 1)
        return ic_fail(c, "needs classlabels_int64s");
    ic_set_out(c, 0, KILN_DTYPE_INT64, 1, &n);
    /* one label is a binary classifier whose scores still have two columns */
    if (c->n_out > 1) ic_set_out(c, 1, KILN_DTYPE_FLOAT32, 2, (int64_t[]){n, nl == 1 ? 2 : nl});
    return 0;
}

const op_schema op_schemas_ml[] = {
    {OP_TreeEnsemble, 1, 1, 1, 1, infer_tree_ensemble},
    {OP_TreeEnsembleRegressor, 1, 1, 1, 1, infer_tree_regressor},
    {OP_TreeEnsembleClassifier, 1, 1, 1, 2, infer_tree_classifier},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
