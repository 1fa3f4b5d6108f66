/* ml.c: schemas and shape inference for the ai.onnx.ml operators that have
** their own reference kernels (tree ensembles: TreeEnsemble of ai.onnx.ml
** opset 5, TreeEnsembleClassifier/Regressor of opsets 1-3; support vector
** machines: SVMClassifier, SVMRegressor). The importer maps
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

/* Scores columns of an SVMClassifier, as onnxruntime writes them: one per
** class with probabilities (prob_a) or in linear mode (no support vectors),
** else one per class pair; a binary classifier's single pair score s is
** written as [-s, s] (one column under PROBIT). */
static int svm_score_cols(infer_ctx *c, int64_t *cols) {
    int nl = 0, nv = 0, npa = 0;
    if (ir_attr_find(c->node, "classlabels_strings"))
        return ic_fail(c, "string class labels (classlabels_strings) are not supported: "
                       "Kiln runs numeric tensors only; export with integer labels");
    ir_attr_ints(c->node, "classlabels_ints", &nl);
    const int64_t *vpc = ir_attr_ints(c->node, "vectors_per_class", &nv);
    ir_attr_floats(c->node, "prob_a", &npa);
    int64_t C = nl > 1 ? nl : 1, vc = 0;
    for (int i = 0; i < nv; i++) {
        if (vpc[i] < 0 || vpc[i] > ((int64_t)1 << 31))
            return ic_fail(c, "vectors_per_class[%d] = %lld is out of range", i,
                           (long long)vpc[i]);
        vc += vpc[i];
    }
    if (vc > 0 && nv != C)
        return ic_fail(c, "vectors_per_class has %d entries for %lld classes", nv, (long long)C);
    if (vc == 0) *cols = C;
    else if (npa > 0) *cols = C;
    else *cols = C * (C - 1) / 2;
    if (*cols == 1 && vc > 0)
        *cols = strcmp(ir_attr_str(c->node, "post_transform", "NONE"), "PROBIT") ? 2 : 1;
    if (*cols < 1) return ic_fail(c, "needs at least two classes");
    return 0;
}

static int infer_svm_classifier(infer_ctx *c) {
    int64_t n = 0, cols = 0;
    if (ml_rows(c, &n) || svm_score_cols(c, &cols)) return -1;
    ic_set_out(c, 0, KILN_DTYPE_INT64, 1, &n);
    if (c->n_out > 1) ic_set_out(c, 1, KILN_DTYPE_FLOAT32, 2, (int64_t[]){n, cols});
    return 0;
}

static int infer_svm_regressor(infer_ctx *c) {
    int64_t n = 0;
    if (ml_rows(c, &n)) return -1;
    if (strcmp(ir_attr_str(c->node, "post_transform", "NONE"), "NONE"))
        return ic_fail(c, "post_transform must be NONE (onnxruntime applies none to an "
                       "SVMRegressor either)");
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 2, (int64_t[]){n, 1});
    return 0;
}

const op_schema op_schemas_ml[] = {
    {OP_TreeEnsemble, 1, 1, 1, 1, infer_tree_ensemble},
    {OP_TreeEnsembleRegressor, 1, 1, 1, 1, infer_tree_regressor},
    {OP_TreeEnsembleClassifier, 1, 1, 1, 2, infer_tree_classifier},
    {OP_SVMClassifier, 1, 1, 1, 2, infer_svm_classifier},
    {OP_SVMRegressor, 1, 1, 1, 1, infer_svm_regressor},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
