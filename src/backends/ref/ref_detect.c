/* ref_detect.c: reference kernels for NonMaxSuppression (greedy per batch
** and class, output sized at run time) and RoiAlign (bilinear sampling,
** avg or max pooling), in float32 like the ONNX reference. */
#include "ref.h"

#include <math.h>

/* ------------------------------------------------- NonMaxSuppression */

typedef struct nms_cand {
    float score;
    int64_t idx;
} nms_cand;

/* Descending score, ties by ascending box index; NaN scores last. */
static int cand_cmp(const void *pa, const void *pb) {
    const nms_cand *a = pa, *b = pb;
    bool na = a->score != a->score, nb = b->score != b->score;
    if (na != nb) return na ? 1 : -1;
    if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Corner form (xmin, ymin, xmax, ymax) of a box in either encoding. */
static void box_corners(const float *b, bool center, float *o) {
    if (center) {
        float hw = b[2] / 2, hh = b[3] / 2;
        o[0] = b[0] - hw; o[2] = b[0] + hw;
        o[1] = b[1] - hh; o[3] = b[1] + hh;
    } else { /* [y1, x1, y2, x2], corners in any order */
        o[0] = fminf(b[1], b[3]); o[2] = fmaxf(b[1], b[3]);
        o[1] = fminf(b[0], b[2]); o[3] = fmaxf(b[0], b[2]);
    }
}

/* True when the IoU of a and b exceeds the threshold. */
static bool suppresses(const float *a, const float *b, bool center, float thr) {
    float p[4], q[4];
    box_corners(a, center, p);
    box_corners(b, center, q);
    float ix0 = fmaxf(p[0], q[0]), ix1 = fminf(p[2], q[2]);
    if (!(ix1 > ix0)) return false;
    float iy0 = fmaxf(p[1], q[1]), iy1 = fminf(p[3], q[3]);
    if (!(iy1 > iy0)) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float a1 = (p[2] - p[0]) * (p[3] - p[1]), a2 = (q[2] - q[0]) * (q[3] - q[1]);
    float uni = a1 + a2 - inter;
    if (!(inter > 0) || !(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return inter / uni > thr;
}

static int ref_nms(ref_ctx *c) {
    const kiln_tensor *bt = c->in[0], *st = c->in[1];
    if (bt->rank != 3 || st->rank != 3 || bt->dims[2] != 4 ||
        bt->dims[0] != st->dims[0] || bt->dims[1] != st->dims[2])
        return ref_fail(c, "boxes must be [B, N, 4] and scores [B, C, N]");
    int64_t nb = bt->dims[0], nbox = bt->dims[1], ncls = st->dims[1];
    int64_t max_out = 0;
    float iou = 0.0f, sthr = 0.0f;
    bool has_sthr = false;
    if (ref_has(c, 2) && tensor_numel(c->in[2]) > 0)
        max_out = dt_get_i64(c->in[2]->dtype, c->in[2]->data, 0);
    if (ref_has(c, 3) && tensor_numel(c->in[3]) > 0)
        iou = (float)dt_get_f64(c->in[3]->dtype, c->in[3]->data, 0);
    if (ref_has(c, 4) && tensor_numel(c->in[4]) > 0) {
        sthr = (float)dt_get_f64(c->in[4]->dtype, c->in[4]->data, 0);
        has_sthr = true;
    }
    if (max_out < 0) max_out = 0;
    if (max_out > nbox) max_out = nbox;
    bool center = ir_attr_int(c->node, "center_point_box", 0) != 0;
    const float *boxes = bt->data, *scores = st->data;

    nms_cand *cand = malloc((size_t)(nbox > 0 ? nbox : 1) * sizeof *cand);
    int64_t *sel = malloc((size_t)(max_out > 0 ? max_out : 1) * sizeof *sel);
    int64_t cap = 64, cnt = 0;
    int64_t *res = malloc((size_t)cap * 3 * sizeof *res);
    int rc = 0;
    if (!cand || !sel || !res) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < nb && max_out > 0; b++)
        for (int64_t k = 0; k < ncls; k++) {
            const float *sc = scores + (b * ncls + k) * nbox;
            const float *bx = boxes + b * nbox * 4;
            int64_t nc = 0, ns = 0;
            for (int64_t i = 0; i < nbox; i++)
                if (!has_sthr || sc[i] > sthr) {
                    cand[nc].score = sc[i];
                    cand[nc++].idx = i;
                }
            qsort(cand, (size_t)nc, sizeof *cand, cand_cmp);
            for (int64_t i = 0; i < nc && ns < max_out; i++) {
                bool keep = true;
                for (int64_t j = 0; j < ns && keep; j++)
                    if (suppresses(bx + cand[i].idx * 4, bx + sel[j] * 4, center, iou))
                        keep = false;
                if (!keep) continue;
                sel[ns++] = cand[i].idx;
                if (cnt == cap) {
                    int64_t *nr = realloc(res, (size_t)cap * 2 * 3 * sizeof *res);
                    if (!nr) {
                        rc = ref_fail(c, "out of memory");
                        goto done;
                    }
                    res = nr;
                    cap *= 2;
                }
                res[cnt * 3] = b;
                res[cnt * 3 + 1] = k;
                res[cnt * 3 + 2] = cand[i].idx;
                cnt++;
            }
        }
    {
        int64_t d[2] = {cnt, 3};
        if (ref_alloc_out(c, 0, KILN_DTYPE_INT64, 2, d)) {
            rc = -1;
            goto done;
        }
        if (cnt) memcpy(c->out[0]->data, res, (size_t)cnt * 3 * sizeof *res);
    }
done:
    free(cand);
    free(sel);
    free(res);
    return rc;
}

/* ----------------------------------------------------------- RoiAlign */

/* Largest sampling grid per axis; only absurd ROIs reach it. */
#define ROI_MAX_GRID 4096

static int ref_roialign(ref_ctx *c) {
    const kiln_tensor *xt = c->in[0], *rt = c->in[1], *bt = c->in[2];
    kiln_tensor *yt = c->out[0];
    const ir_node *n = c->node;
    if (xt->rank != 4 || rt->rank != 2 || rt->dims[1] != 4 || bt->rank != 1 ||
        bt->dims[0] != rt->dims[0])
        return ref_fail(c, "expected X [N,C,H,W], rois [R,4], batch_indices [R]");
    int64_t N = xt->dims[0], C = xt->dims[1], H = xt->dims[2], W = xt->dims[3];
    int64_t R = rt->dims[0], OH = yt->dims[2], OW = yt->dims[3];
    bool is_max = strcmp(ir_attr_str(n, "mode", "avg"), "max") == 0;
    const char *ctm = ir_attr_str(n, "coordinate_transformation_mode",
                                  c->opset >= 16 ? "half_pixel" : "output_half_pixel");
    bool half = strcmp(ctm, "half_pixel") == 0;
    int64_t sr = ir_attr_int(n, "sampling_ratio", 0);
    float scale = ir_attr_float(n, "spatial_scale", 1.0f);
    for (int64_t r = 0; r < R; r++) {
        int64_t b = dt_get_i64(bt->dtype, bt->data, (size_t)r);
        if (b < 0 || b >= N)
            return ref_fail(c, "batch_indices[%lld] = %lld is outside [0, %lld)",
                            (long long)r, (long long)b, (long long)N);
    }
    float *x = tensor_to_f32(xt), *rois = tensor_to_f32(rt);
    int64_t ny = tensor_numel(yt);
    float *y = calloc((size_t)(ny > 0 ? ny : 1), sizeof *y);
    if (!x || !rois || !y) {
        free(x); free(rois); free(y);
        return ref_fail(c, "out of memory");
    }
    int64_t hw = H * W, ohw = OH * OW;
    float off = half ? 0.5f : 0.0f;
    for (int64_t r = 0; r < R; r++) {
        const float *ro = rois + r * 4;
        int64_t b = dt_get_i64(bt->dtype, bt->data, (size_t)r);
        float x0 = ro[0] * scale - off, y0 = ro[1] * scale - off;
        float x1 = ro[2] * scale - off, y1 = ro[3] * scale - off;
        float rw = x1 - x0, rh = y1 - y0;
        if (!half) { /* malformed ROIs become 1x1 */
            rw = fmaxf(rw, 1.0f);
            rh = fmaxf(rh, 1.0f);
        }
        float bh = rh / (float)OH, bw = rw / (float)OW;
        double gh = sr > 0 ? (double)sr : ceil((double)(rh / (float)OH));
        double gw = sr > 0 ? (double)sr : ceil((double)(rw / (float)OW));
        /* NaN or negative extents give an empty grid */
        int64_t ngh = gh >= 1 ? (int64_t)fmin(gh, ROI_MAX_GRID) : 0;
        int64_t ngw = gw >= 1 ? (int64_t)fmin(gw, ROI_MAX_GRID) : 0;
        float count = (float)KILN_MAX(ngh * ngw, 1);
        const float *xb = x + b * C * hw;
        float *yr = y + r * C * ohw;
        for (int64_t ph = 0; ph < OH; ph++)
            for (int64_t pw = 0; pw < OW; pw++) {
                bool first = true;
                for (int64_t iy = 0; iy < ngh; iy++) {
                    float yy = y0 + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)ngh;
                    for (int64_t ix = 0; ix < ngw; ix++) {
                        float xx = x0 + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)ngw;
                        int64_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                        float w1 = 0, w2 = 0, w3 = 0, w4 = 0;
                        float sy = yy, sx = xx;
                        if (!(sy < -1.0f || sy > (float)H || sx < -1.0f ||
                              sx > (float)W || sy != sy || sx != sx) && H > 0 && W > 0) {
                            sy = fmaxf(sy, 0.0f);
                            sx = fmaxf(sx, 0.0f);
                            int64_t yl = (int64_t)sy, xl = (int64_t)sx, yh, xh;
                            if (yl >= H - 1) { yh = yl = H - 1; sy = (float)yl; }
                            else yh = yl + 1;
                            if (xl >= W - 1) { xh = xl = W - 1; sx = (float)xl; }
                            else xh = xl + 1;
                            float ly = sy - (float)yl, lx = sx - (float)xl;
                            float hy = 1.0f - ly, hx = 1.0f - lx;
                            w1 = hy * hx; w2 = hy * lx; w3 = ly * hx; w4 = ly * lx;
                            p1 = yl * W + xl; p2 = yl * W + xh;
                            p3 = yh * W + xl; p4 = yh * W + xh;
                        }
                        if (hw == 0) continue; /* nothing to read */
                        for (int64_t ch = 0; ch < C; ch++) {
                            const float *xc = xb + ch * hw;
                            float *o = yr + ch * ohw + ph * OW + pw;
                            if (is_max) {
                                float v = fmaxf(fmaxf(w1 * xc[p1], w2 * xc[p2]),
                                                fmaxf(w3 * xc[p3], w4 * xc[p4]));
                                *o = first ? v : fmaxf(*o, v);
                            } else {
                                *o += w1 * xc[p1] + w2 * xc[p2] + w3 * xc[p3] + w4 * xc[p4];
                            }
                        }
                        first = false;
                    }
                }
                if (!is_max)
                    for (int64_t ch = 0; ch < C; ch++) yr[ch * ohw + ph * OW + pw] /= count;
            }
    }
    tensor_from_f32(yt, y);
    free(x); free(rois); free(y);
    return 0;
}

const ref_kernel ref_kernels_detect[] = {
    {OP_NonMaxSuppression, ref_nms},
    {OP_RoiAlign, ref_roialign},
    {OP_NONE, NULL},
};
