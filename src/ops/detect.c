/* detect.c: schemas and shape inference for the detection ops
** NonMaxSuppression (data-dependent output) and RoiAlign. */
#include "op.h"

static int require_dtype(infer_ctx *c, int i, const char *name, kiln_dtype dt) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->dtype == KILN_DTYPE_UNDEFINED || t->dtype == dt) return 0;
    return ic_fail(c, "%s must be %s, got %s", name, kiln_dtype_name(dt),
                   kiln_dtype_name(t->dtype));
}

/* Fails when input i is known to hold more than one element. */
static int require_scalarish(infer_ctx *c, int i, const char *name) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0) return 0;
    if (t->rank > 1) return ic_fail(c, "%s must be a scalar or 1-D", name);
    if (t->rank == 1 && t->dims[0] > 1)
        return ic_fail(c, "%s must hold at most one value", name);
    return 0;
}

static int infer_nms(infer_ctx *c) {
    const ir_type *b = ic_in(c, 0), *s = ic_in(c, 1);
    if (!b || !s) return ic_fail(c, "inputs boxes and scores are required");
    if (require_dtype(c, 0, "boxes", KILN_DTYPE_FLOAT32) ||
        require_dtype(c, 1, "scores", KILN_DTYPE_FLOAT32) ||
        require_dtype(c, 2, "max_output_boxes_per_class", KILN_DTYPE_INT64) ||
        require_dtype(c, 3, "iou_threshold", KILN_DTYPE_FLOAT32) ||
        require_dtype(c, 4, "score_threshold", KILN_DTYPE_FLOAT32) ||
        ic_require_rank(c, 0, 3) || ic_require_rank(c, 1, 3) ||
        require_scalarish(c, 2, "max_output_boxes_per_class") ||
        require_scalarish(c, 3, "iou_threshold") ||
        require_scalarish(c, 4, "score_threshold"))
        return -1;
    int64_t cpb = ir_attr_int(c->node, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return ic_fail(c, "center_point_box must be 0 or 1, got %lld", (long long)cpb);
    if (b->rank == 3 && b->dims[2] >= 0 && b->dims[2] != 4)
        return ic_fail(c, "boxes last dim must be 4, got %lld", (long long)b->dims[2]);
    if (b->rank == 3 && s->rank == 3) {
        if (b->dims[0] >= 0 && s->dims[0] >= 0 && b->dims[0] != s->dims[0])
            return ic_fail(c, "boxes and scores batch sizes differ");
        if (b->dims[1] >= 0 && s->dims[2] >= 0 && b->dims[1] != s->dims[2])
            return ic_fail(c, "boxes has %lld boxes but scores has %lld",
                           (long long)b->dims[1], (long long)s->dims[2]);
    }
    /* The number of selected boxes depends on the data. */
    int64_t d[2] = {ic_new_sym(c), 3};
    ic_set_out(c, 0, KILN_DTYPE_INT64, 2, d);
    return 0;
}

static int infer_roialign(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *r = ic_in(c, 1), *bi = ic_in(c, 2);
    const ir_node *n = c->node;
    if (!x || !r || !bi) return ic_fail(c, "inputs X, rois and batch_indices are required");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        require_dtype(c, 2, "batch_indices", KILN_DTYPE_INT64) ||
        ic_require_rank(c, 0, 4) || ic_require_rank(c, 1, 2) ||
        ic_require_rank(c, 2, 1))
        return -1;
    const char *mode = ir_attr_str(n, "mode", "avg");
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return ic_fail(c, "mode must be avg or max, got '%s'", mode);
    const char *ctm = ir_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
        return ic_fail(c, "unknown coordinate_transformation_mode '%s'", ctm);
    int64_t oh = ir_attr_int(n, "output_height", 1);
    int64_t ow = ir_attr_int(n, "output_width", 1);
    int64_t sr = ir_attr_int(n, "sampling_ratio", 0);
    if (oh < 1 || ow < 1 || oh > ((int64_t)1 << 31) || ow > ((int64_t)1 << 31))
        return ic_fail(c, "output_height and output_width must be >= 1");
    if (sr < 0) return ic_fail(c, "sampling_ratio must be >= 0");
    if (r->rank == 2 && r->dims[1] >= 0 && r->dims[1] != 4)
        return ic_fail(c, "rois must have 4 columns, got %lld", (long long)r->dims[1]);
    int64_t nr = -1;
    if (r->rank == 2) nr = r->dims[0];
    if (bi->rank == 1) {
        if (nr >= 0 && bi->dims[0] >= 0 && nr != bi->dims[0])
            return ic_fail(c, "rois has %lld rows but batch_indices has %lld",
                           (long long)nr, (long long)bi->dims[0]);
        if (nr < 0) nr = bi->dims[0];
    }
    if (r->rank != 2 && bi->rank != 1) nr = ic_new_sym(c);
    int64_t d[4] = {nr, x->rank == 4 ? x->dims[1] : ic_new_sym(c), oh, ow};
    ic_set_out(c, 0, x->dtype, 4, d);
    return 0;
}

const op_schema op_schemas_detect[] = {
    {OP_NonMaxSuppression, 2, 5, 1, 1, infer_nms},
    {OP_RoiAlign, 3, 3, 1, 1, infer_roialign},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
