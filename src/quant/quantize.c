/* quantize.c: INT8 (or FP8 E4M3) post-training quantization of the imported graph
** (before the optimizer, after Conv+BN folding), the way onnxruntime's
** quantize_static writes QDQ models. Finds the layers worth quantizing
** (Conv/Gemm/MatMul on float32 with constant weights, MatMul of two
** activations unless quant_opts.weights_only), runs the FP32 graph on calibration data while
** histogramming every tensor the Q/DQ graph quantizes (the layers'
** activation inputs and their outputs, after a Relu that follows), picks
** per-tensor scales (or reads them from the calibration cache), optionally
** measures the quantized graph against FP32 on validation data and moves
** the most harmful layers back to FP32 until an accuracy budget holds, and
** writes ONNX Q/DQ nodes into the graph (convention in quant.h and
** docs/QUANTIZATION.md). Data-movement ops (MaxPool, Flatten, Reshape,
** Transpose, (Un)Squeeze) pass their input's scale on to their output, so
** a fold can keep them in int8.
** The budget search evaluates quantization by substituting fake-quantized
** inputs while running, with the exact arithmetic of the reference
** QuantizeLinear/DequantizeLinear kernels, so what it measures is what the
** inserted Q/DQ graph computes.
** FP8 (quant_opts.qtype FLOAT8E4M3FN) is the same flow on another grid:
** every tensor and weight symmetric E4M3 (no unsigned variant) with scale
** amax / 448 (the largest finite E4M3), zero points +0.0, ranges from
** minmax or percentile (entropy chooses a threshold for 128 uniform
** levels, meaningless for a floating-point grid: refused). */
#include "quant.h"
#include "../backends/backend.h"
#include "../backends/ref/ref.h"
#include "../ir/ir_edit.h"
#include "../ops/infer.h"

#include <math.h>
#include <stdio.h>

typedef struct qlayer {
    ir_node *n;
    int out_t;             /* value id of the quantized output (after a sole
                              Relu consumer), -1: none (a graph output) */
    int act[2];            /* value ids of quantized activation inputs (-1: none) */
    int act_slot[2];       /* their input slots */
    int w_slot;            /* constant weight input slot, -1: none */
    int w_axis;
    kiln_tensor *w_fake;   /* weight after int8 round trip (owned) */
    float *w_scale;        /* per output channel */
    int64_t w_channels;
    double sensitivity;    /* rel-l2 with only this layer quantized */
    char label[160];
} qlayer;

typedef struct qctx {
    const quant_opts *o;
    ir_graph *g;
    int n_layers;
    qlayer *L;
    int *layer_of;         /* node index -> layer, -1 */
    bool *enabled;         /* per layer */
    float *scale;          /* per value id: activation scale, 0 none */
    bool *cand;            /* per value id: quantized when its layers are */
    bool *active;          /* per value id: quantized with enabled[] now */
    int *share;            /* per value id: takes this value's scale, -1 */
    bool *unsig;           /* per value id: never negative (Relu output):
                              quantized to uint8 with zero point 0 */
    quant_hist **hist;     /* per value id while calibrating */
    bool fp8;              /* o->qtype is FLOAT8E4M3FN */
    bool quantize_outputs; /* o->quantize_outputs or KILN_INT8_QUANTIZE_OUTPUTS=1 */
} qctx;

/* What one quantized tensor is stored as. */
enum { QK_S8 = 0, QK_U8 = 1, QK_F8 = 2 };

static int qkind(const qctx *q, int id) {
    return q->fp8 ? QK_F8 : q->unsig[id] ? QK_U8 : QK_S8;
}

static void qlog(const qctx *q, kiln_severity sev, const char *fmt, ...) KILN_PRINTF(3, 4);
static void qlog(const qctx *q, kiln_severity sev, const char *fmt, ...) {
    if ((int)sev > q->o->log_max) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (q->o->log) q->o->log(q->o->log_user, sev, msg);
    else fprintf(stderr, "kiln: %s\n", msg);
}

static bool is_f32_act(const ir_value *v) {
    return v && !v->const_val && v->type.dtype == KILN_DTYPE_FLOAT32;
}

static bool is_f32_const(const ir_value *v) {
    return v && v->const_val && v->const_val->dtype == KILN_DTYPE_FLOAT32 &&
           v->const_val->rank >= 2;
}

/* ---------------------------------------------------------------- layers */
static kiln_status find_layers(qctx *q) {
    ir_graph *g = q->g;
    q->L = calloc((size_t)g->n_nodes + 1, sizeof *q->L);
    q->layer_of = calloc((size_t)g->n_nodes + 1, sizeof *q->layer_of);
    if (!q->L || !q->layer_of) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        q->layer_of[i] = -1;
        qlayer l;
        memset(&l, 0, sizeof l);
        l.n = n;
        l.act[0] = l.act[1] = -1;
        l.w_slot = -1;
        if (n->n_in < 2) continue;
        ir_value *x = n->in[0], *w = n->in[1];
        switch (n->op) {
        case OP_Conv:
        case OP_FusedConv:
            if (!is_f32_act(x) || !is_f32_const(w)) continue;
            l.w_slot = 1;
            l.w_axis = 0;
            break;
        case OP_Gemm:
        case OP_FusedGemm:
        case OP_MatMul: {
            if (!is_f32_act(x)) continue;
            int tb = n->op == OP_MatMul ? 0 : (int)ir_attr_int(n, "transB", 0);
            if (is_f32_const(w)) {
                l.w_slot = 1;
                l.w_axis = tb ? w->const_val->rank - 2 : w->const_val->rank - 1;
            } else if (!q->o->weights_only && is_f32_act(w) && w != x) {
                l.act[1] = w->id;
                l.act_slot[1] = 1;
            } else {
                continue;
            }
            break;
        }
        default: continue;
        }
        l.act[0] = x->id;
        l.act_slot[0] = 0;
        if (n->name && n->name[0]) snprintf(l.label, sizeof l.label, "%s", n->name);
        else ir_node_label(n, l.label, sizeof l.label);
        /* the output a fold requantizes to: after a Relu that alone reads it */
        ir_value *y = n->out[0];
        ir_node *r = ir_edit_sole_consumer(g, y);
        if (r && r->op == OP_Relu && r->n_out == 1) y = r->out[0];
        l.out_t = ir_edit_is_graph_output(g, y) || y->type.dtype != KILN_DTYPE_FLOAT32
                      ? -1 : y->id;
        q->layer_of[i] = q->n_layers;
        q->L[q->n_layers++] = l;
    }
    return KILN_OK;
}

static bool passes_scale(int op) {
    return op == OP_MaxPool || op == OP_Flatten || op == OP_Reshape || op == OP_Transpose ||
           op == OP_Squeeze || op == OP_Unsqueeze;
}

/* Whether a reader of v keeps it in 8 bits when v is quantized: a
** two-input Add or a data mover whose output (after a Relu that alone
** reads an Add's) is a layer's input (q->cand holds the layers' inputs). */
static bool feeds_int8(const qctx *q, const ir_value *v) {
    const ir_graph *g = q->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->n_out < 1 || !n->out[0] || (n->op != OP_Add && !passes_scale(n->op))) continue;
        bool reads = false;
        for (int k = 0; k < n->n_in && !reads; k++) reads = n->in[k] == v;
        if (!reads) continue;
        const ir_value *o = n->out[0];
        ir_node *r = ir_edit_sole_consumer(g, o);
        if (n->op == OP_Add && r && r->op == OP_Relu && r->n_out == 1) o = r->out[0];
        if (q->cand[o->id]) return true;
    }
    return false;
}

/* Marks the tensors the Q/DQ graph may quantize, and which of them take
** their scale from their producer's input (data movement keeps values). */
static kiln_status find_tensors(qctx *q) {
    int nv = q->g->n_values;
    q->cand = calloc((size_t)nv + 1, sizeof *q->cand);
    q->active = calloc((size_t)nv + 1, sizeof *q->active);
    q->share = malloc(((size_t)nv + 1) * sizeof *q->share);
    q->unsig = calloc((size_t)nv + 1, sizeof *q->unsig);
    if (!q->cand || !q->active || !q->share || !q->unsig)
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    for (int l = 0; l < q->n_layers; l++)
        for (int a = 0; a < 2; a++)
            if (q->L[l].act[a] >= 0) q->cand[q->L[l].act[a]] = true;
    /* A product's output is quantized only where an 8-bit reader may take
    ** it: the next layer (an input, marked above), or a residual Add or a
    ** data mover whose own output a layer reads (QAdd, and the moves the
    ** qdq fold keeps in int8). Otherwise its readers are float (a BERT
    ** layer's bias, GELU, residual and LayerNorm): a Q/DQ pair there would
    ** only round the value, and the qdq/qepi passes run the product with
    ** a float or requantized epilogue instead. Convolutions keep theirs
    ** (their float-output form does not exist). */
    if (!q->quantize_outputs)
        for (int l = 0; l < q->n_layers; l++) {
            qlayer *L = &q->L[l];
            int op = L->n->op;
            if (L->out_t < 0 || q->cand[L->out_t] ||
                (op != OP_MatMul && op != OP_Gemm && op != OP_FusedGemm) ||
                feeds_int8(q, q->g->values[L->out_t]))
                continue;
            L->out_t = -1;
        }
    for (int l = 0; l < q->n_layers; l++)
        if (q->L[l].out_t >= 0) q->cand[q->L[l].out_t] = true;
    /* never negative: Relu, Softmax and Sigmoid outputs and what data
    ** movement makes of them (nodes are in topological order) */
    for (int i = 0; i < q->g->n_nodes; i++) {
        const ir_node *n = q->g->nodes[i];
        if (n->n_out < 1 || !n->n_in || !n->in[0]) continue;
        if (n->op == OP_Relu || n->op == OP_Softmax || n->op == OP_Sigmoid ||
            (passes_scale(n->op) && q->unsig[n->in[0]->id]))
            q->unsig[n->out[0]->id] = true;
    }
    for (int v = 0; v < nv; v++) {
        q->share[v] = -1;
        const ir_node *pn = q->g->values[v]->producer;
        if (q->cand[v] && pn && passes_scale(pn->op) && pn->n_in >= 1 && pn->in[0] &&
            is_f32_act(pn->in[0]))
            q->share[v] = pn->in[0]->id;
    }
    return KILN_OK;
}

/* The value whose histogram gives v's scale. */
static int scale_source(const qctx *q, int v) {
    for (int k = 0; k < 64 && q->share[v] >= 0; k++) v = q->share[v];
    return v;
}

static void compute_active(qctx *q) {
    memset(q->active, 0, (size_t)(unsigned)q->g->n_values * sizeof *q->active);
    for (int l = 0; l < q->n_layers; l++) {
        if (!q->enabled[l]) continue;
        for (int a = 0; a < 2; a++)
            if (q->L[l].act[a] >= 0) q->active[q->L[l].act[a]] = true;
        if (q->L[l].out_t >= 0) q->active[q->L[l].out_t] = true;
    }
}

/* Per-channel symmetric int8 (fp8: E4M3) weights: the scales, and the
** weight after the round trip (what DequantizeLinear of the stored tensor
** gives). */
static kiln_status prepare_weight(qlayer *l, bool fp8, kiln_tensor **int8_out) {
    const kiln_tensor *w = l->n->in[l->w_slot]->const_val;
    int64_t ch = w->dims[l->w_axis], inner = 1, outer = 1;
    for (int d = l->w_axis + 1; d < w->rank; d++) inner *= w->dims[d];
    for (int d = 0; d < l->w_axis; d++) outer *= w->dims[d];
    kiln_status st;
    kiln_tensor *qt = NULL;
    if (!l->w_fake && (st = tensor_new(KILN_DTYPE_FLOAT32, w->rank, w->dims, &l->w_fake)))
        return st;
    if (int8_out && (st = tensor_new(fp8 ? KILN_DTYPE_FLOAT8E4M3FN : KILN_DTYPE_INT8, w->rank,
                                     w->dims, &qt)))
        return st;
    if (!l->w_scale && !(l->w_scale = calloc((size_t)ch, sizeof *l->w_scale)))
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    l->w_channels = ch;
    const float *src = w->data;
    float *dst = l->w_fake->data;
    for (int64_t c = 0; c < ch; c++) {
        double m = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < inner; k++) {
                double a = fabs((double)src[(o * ch + c) * inner + k]);
                if (a > m) m = a;
            }
        l->w_scale[c] = fp8 ? quant_scale_fp8(m) : quant_scale_for(m);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            float s = l->w_scale[c];
            for (int64_t k = 0; k < inner; k++) {
                int64_t idx = (o * ch + c) * inner + k;
                if (fp8) { /* the reference Q then DQ: x / s in float, saturate */
                    uint8_t b = f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FN, src[idx] / s, true);
                    dst[idx] = fp8_to_f32(KILN_DTYPE_FLOAT8E4M3FN, b) * s;
                    if (qt) ((uint8_t *)qt->data)[idx] = b;
                    continue;
                }
                float r = nearbyintf(src[idx] / s);
                if (r > 127) r = 127;
                if (r < -127) r = -127;
                if (r != r) r = 0;
                dst[idx] = r * s;
                if (qt) ((int8_t *)qt->data)[idx] = (int8_t)r;
            }
        }
    if (int8_out) *int8_out = qt;
    return KILN_OK;
}

/* ---------------------------------------------------------------- executor */
/* The reference QuantizeLinear -> DequantizeLinear round trip with zero
** point 0: x / s in float, round half to even (int8) or to the nearest E4M3
** (fp8), saturate, times s. */
static void fake_quant(const float *x, float *y, int64_t n, float s, int kind) {
    if (kind == QK_F8) {
        for (int64_t i = 0; i < n; i++)
            y[i] = fp8_to_f32(KILN_DTYPE_FLOAT8E4M3FN,
                              f32_to_fp8(KILN_DTYPE_FLOAT8E4M3FN, x[i] / s, true)) * s;
        return;
    }
    bool u8 = kind == QK_U8;
    float lo = u8 ? 0.0f : -128.0f, hi = u8 ? 255.0f : 127.0f;
    for (int64_t i = 0; i < n; i++) {
        float r = nearbyintf(x[i] / s);
        if (r != r) r = 0;
        if (r > hi) r = hi;
        if (r < lo) r = lo;
        y[i] = r * s;
    }
}

static int64_t fast_sym(void *env) {
    int64_t *counter = env;
    return --*counter;
}

/* Runs a Conv/Gemm/MatMul node with the CPU backend's first-choice tactic,
** the way the builder times tactics (time_tactic): calibrating ResNet-50
** on the reference convolution costs seconds per image. Falls back to the
** reference kernel for every other op and whenever no fast tactic runs. */
static kiln_status run_node_fast(const ir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor **out) {
    if ((n->op != OP_Conv && n->op != OP_FusedConv && n->op != OP_Gemm &&
         n->op != OP_FusedGemm && n->op != OP_MatMul) || n->n_implicit || n->n_out != 1 ||
        n->n_in > 8)
        return ref_run_node(n, in, out);
    const kiln_backend_ops *be = kiln_backend_cpu();
    ir_type types[8], otype;
    const ir_type *tin[8];
    for (int i = 0; i < n->n_in; i++) {
        tin[i] = NULL;
        if (!in[i]) continue;
        memset(&types[i], 0, sizeof types[i]);
        types[i].dtype = in[i]->dtype;
        types[i].rank = in[i]->rank;
        memcpy(types[i].dims, in[i]->dims, sizeof in[i]->dims);
        tin[i] = &types[i];
    }
    const kiln_tactic *cand[16], *t = NULL;
    int nc = be->tactics(n, tin, cand, 16);
    for (int k = 0; k < nc && !t; k++)
        if (strcmp(cand[k]->name, "ref") && !(cand[k]->flags & TACTIC_DEVICE)) t = cand[k];
    int64_t counter = -1;
    if (!t || op_infer_node(n, (int)n->graph->model->opset, tin, in, NULL, NULL, &otype, NULL,
                            NULL, true, &counter, fast_sym)) {
        kiln_error_clear();
        return ref_run_node(n, in, out);
    }
    kiln_tensor *o = NULL;
    kiln_status st = tensor_new(otype.dtype, otype.rank, otype.dims, &o);
    if (st) return st;
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
    ref_ctx *c = calloc(1, sizeof *c);
    int rc = -1;
    if (c && (ws || !wsz)) {
        c->node = n;
        c->opset = (int)n->graph->model->opset;
        c->n_in = n->n_in;
        c->in = in;
        c->n_out = 1;
        c->out = &o;
        c->ws = ws;
        c->ws_size = wsz;
        rc = t->run(c);
    }
    free(c);
    kiln_aligned_free(ws);
    if (rc != 0) {
        tensor_free(o);
        return ref_run_node(n, in, out);
    }
    out[0] = o;
    return KILN_OK;
}

/* The fake-quantized copy of t (what Q -> DQ with scale s gives). */
static kiln_status fq_copy(const kiln_tensor *t, float s, int kind, kiln_tensor **out) {
    kiln_status st = tensor_new(KILN_DTYPE_FLOAT32, t->rank, t->dims, out);
    if (!st) fake_quant(t->data, (*out)->data, tensor_numel(t), s, kind);
    return st;
}

/* Runs g on one input set. quant: active tensors are read through their
** fake quantization (by every reader but the disabled layers, as in the Q/DQ
** graph), enabled layers read int8-rounded weights; observe: histogram the
** values that have a hist slot. outputs: g->n_outputs new tensors (may be
** NULL when only observing). */
static kiln_status qexec_run(qctx *q, const kiln_tensor *const *inputs, bool quant,
                             bool observe, kiln_tensor **outputs) {
    const ir_graph *g = q->g;
    int nv = g->n_values;
    kiln_status st = KILN_OK;
    const kiln_tensor **slot = calloc((size_t)nv + 1, sizeof *slot);
    kiln_tensor **qslot = calloc((size_t)nv + 1, sizeof *qslot);
    bool *owned = calloc((size_t)nv + 1, sizeof *owned);
    int *uses = calloc((size_t)nv + 1, sizeof *uses);
    int max_in = 4, max_out = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        max_in = KILN_MAX(max_in, g->nodes[i]->n_in + g->nodes[i]->n_implicit);
        max_out = KILN_MAX(max_out, g->nodes[i]->n_out);
    }
    const kiln_tensor **args = calloc((size_t)max_in, sizeof *args);
    kiln_tensor **res = calloc((size_t)max_out, sizeof *res);
    if (outputs)
        for (int o = 0; o < g->n_outputs; o++) outputs[o] = NULL;
    if (!slot || !qslot || !owned || !uses || !args || !res) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        uses[v] = g->values[v]->n_uses + 1; /* +1: released at the end */
        if (g->values[v]->const_val) slot[v] = g->values[v]->const_val;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int id = g->inputs[i]->id;
        slot[id] = inputs[i];
        if (observe && q->hist[id] && inputs[i]->dtype == KILN_DTYPE_FLOAT32)
            quant_hist_add(q->hist[id], inputs[i]->data, tensor_numel(inputs[i]));
        if (quant && q->active[id] && inputs[i]->dtype == KILN_DTYPE_FLOAT32 &&
            (st = fq_copy(inputs[i], q->scale[id], qkind(q, id), &qslot[id])))
            goto done;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool all_const = true;
        for (int o = 0; o < n->n_out; o++)
            if (!n->out[o]->const_val) all_const = false;
        if (all_const) continue;
        int total = n->n_in + n->n_implicit;
        int li = q->layer_of[i];
        bool float_reader = li >= 0 && !q->enabled[li]; /* a layer kept in FP32 */
        for (int k = 0; k < total; k++) {
            const ir_value *v = n->in[k];
            args[k] = v ? slot[v->id] : NULL;
            if (v && quant && k < n->n_in && !float_reader && qslot[v->id])
                args[k] = qslot[v->id];
            if (v && !args[k]) {
                char lab[256];
                st = kiln_error(KILN_INTERNAL, "%s: input '%s' has no value",
                                ir_node_label(n, lab, sizeof lab), v->name);
                goto done;
            }
        }
        if (quant && li >= 0 && q->enabled[li] && q->L[li].w_slot >= 0)
            args[q->L[li].w_slot] = q->L[li].w_fake;
        if ((st = run_node_fast(n, args, res))) goto done;
        for (int o = 0; o < n->n_out; o++) {
            int id = n->out[o]->id;
            slot[id] = res[o];
            owned[id] = true;
            if (observe && q->hist[id] && res[o]->dtype == KILN_DTYPE_FLOAT32)
                quant_hist_add(q->hist[id], res[o]->data, tensor_numel(res[o]));
            if (quant && q->active[id] && res[o]->dtype == KILN_DTYPE_FLOAT32 &&
                (st = fq_copy(res[o], q->scale[id], qkind(q, id), &qslot[id])))
                goto done;
        }
        for (int k = 0; k < total; k++) {
            const ir_value *v = n->in[k];
            if (v && --uses[v->id] == 1 && !ir_edit_is_graph_output(g, v)) {
                if (owned[v->id]) tensor_free((kiln_tensor *)slot[v->id]);
                tensor_free(qslot[v->id]);
                qslot[v->id] = NULL;
                if (owned[v->id]) slot[v->id] = NULL;
                owned[v->id] = false;
            }
        }
    }
    for (int o = 0; outputs && o < g->n_outputs; o++) {
        const kiln_tensor *t = slot[g->outputs[o]->id];
        if (!t) {
            st = kiln_error(KILN_INTERNAL, "graph output '%s' was not computed",
                            g->outputs[o]->name);
            goto done;
        }
        if ((st = tensor_clone(t, &outputs[o]))) goto done;
    }
done:
    if (st && outputs)
        for (int o = 0; o < g->n_outputs; o++) {
            tensor_free(outputs[o]);
            outputs[o] = NULL;
        }
    for (int v = 0; owned && v < nv; v++)
        if (owned[v]) tensor_free((kiln_tensor *)slot[v]);
    for (int v = 0; qslot && v < nv; v++) tensor_free(qslot[v]);
    free(slot);
    free(qslot);
    free(owned);
    free(uses);
    free(args);
    free(res);
    return st;
}

/* ---------------------------------------------------------------- metrics */
typedef struct qmetrics {
    double top1_pct;   /* % of rows whose argmax differs from FP32's */
    double rel_l2;     /* ||q - f|| / ||f|| over every float output */
    double cosine;     /* mean over sets of cos(q, f) of the flattened outputs */
} qmetrics;

static void metrics_of(const ir_graph *g, int n_sets, kiln_tensor **ref, kiln_tensor **got,
                       qmetrics *m) {
    double num = 0, den = 0, cos_sum = 0;
    int64_t rows = 0, diff = 0;
    int no = g->n_outputs;
    for (int s = 0; s < n_sets; s++) {
        double dot = 0, nf = 0, nq = 0;
        for (int o = 0; o < no; o++) {
            const kiln_tensor *f = ref[s * no + o], *x = got[s * no + o];
            if (f->dtype != KILN_DTYPE_FLOAT32 || x->dtype != KILN_DTYPE_FLOAT32) continue;
            int64_t n = tensor_numel(f);
            const float *a = f->data, *b = x->data;
            for (int64_t i = 0; i < n; i++) {
                double d = (double)b[i] - a[i];
                num += d * d;
                den += (double)a[i] * a[i];
                dot += (double)a[i] * b[i];
                nf += (double)a[i] * a[i];
                nq += (double)b[i] * b[i];
            }
            if (o == 0 && f->rank >= 1 && n > 0) {
                int64_t c = f->dims[f->rank - 1];
                for (int64_t r = 0; c > 0 && r < n / c; r++) {
                    int64_t ia = 0, ib = 0;
                    for (int64_t k = 1; k < c; k++) {
                        if (a[r * c + k] > a[r * c + ia]) ia = k;
                        if (b[r * c + k] > b[r * c + ib]) ib = k;
                    }
                    rows++;
                    diff += ia != ib;
                }
            }
        }
        cos_sum += (nf > 0 && nq > 0) ? dot / sqrt(nf * nq) : (nf == nq ? 1.0 : 0.0);
    }
    m->rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    m->cosine = n_sets ? cos_sum / n_sets : 1;
    m->top1_pct = rows ? 100.0 * (double)diff / (double)rows : 0;
}

static double metric_value(const qmetrics *m, int metric) {
    return metric == KILN_METRIC_TOP1 ? m->top1_pct
           : metric == KILN_METRIC_REL_L2 ? m->rel_l2 : m->cosine;
}

static bool within(const qmetrics *m, int metric, double budget) {
    double v = metric_value(m, metric);
    return metric == KILN_METRIC_COSINE ? v >= budget : v <= budget;
}

static const char *metric_name(int metric) {
    return metric == KILN_METRIC_TOP1 ? "top1 disagreement %"
           : metric == KILN_METRIC_REL_L2 ? "rel-l2" : "cosine";
}

static void progress(const qctx *q, const char *phase, int done, int total) {
    if (q->o->progress) q->o->progress(q->o->progress_user, phase, done, total);
}

/* Runs every validation set with the current enabled[] into got. */
static kiln_status eval_all(qctx *q, const quant_dataset *vd, kiln_tensor **got, bool quant) {
    int no = q->g->n_outputs;
    compute_active(q);
    for (int s = 0; s < vd->n_sets; s++) {
        for (int o = 0; o < no; o++) {
            tensor_free(got[s * no + o]);
            got[s * no + o] = NULL;
        }
        kiln_status st = qexec_run(q, (const kiln_tensor *const *)&vd->t[s * vd->n_inputs],
                                   quant, false, &got[s * no]);
        if (st) return st;
    }
    return KILN_OK;
}

/* Layer indices by decreasing sensitivity (ties: graph order). Insertion
** sort: a few hundred layers at most, and no global state for qsort. */
static void sort_by_sensitivity(const qctx *q, int *order) {
    for (int i = 1; i < q->n_layers; i++) {
        int k = order[i], j = i - 1;
        while (j >= 0 && q->L[order[j]].sensitivity < q->L[k].sensitivity) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = k;
    }
}

static kiln_status apply_budget(qctx *q) {
    const quant_opts *o = q->o;
    quant_dataset vd;
    kiln_status st = quant_dataset_load(o->validate_dir, q->g, 0, &vd);
    if (st) {
        kiln_error_prefix("--validate");
        return st;
    }
    int no = q->g->n_outputs, ns = vd.n_sets;
    size_t nt = (size_t)ns * (size_t)(no ? no : 1);
    kiln_tensor **ref = calloc(nt, sizeof *ref), **got = calloc(nt, sizeof *got);
    int *order = calloc((size_t)q->n_layers + 1, sizeof *order);
    bool *saved = calloc((size_t)q->n_layers + 1, sizeof *saved);
    qmetrics m;
    int total_steps = 1 + 1 + q->n_layers, step = 0;
    if (!ref || !got || !order || !saved) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if ((st = eval_all(q, &vd, ref, false))) goto done;
    progress(q, "accuracy budget", ++step, total_steps);
    if ((st = eval_all(q, &vd, got, true))) goto done;
    progress(q, "accuracy budget", ++step, total_steps);
    metrics_of(q->g, ns, ref, got, &m);
    qlog(q, KILN_SEVERITY_INFO, "accuracy budget: all %d quantizable layers INT8: top1 "
         "disagreement %.3f%%, rel-l2 %.3g, cosine %.6f (%d validation sets)", q->n_layers,
         m.top1_pct, m.rel_l2, m.cosine, ns);
    if (!within(&m, o->budget_metric, o->budget_value)) {
        /* sensitivity: rel-l2 of the output with one layer quantized */
        size_t nl = (size_t)(unsigned)q->n_layers;
        memcpy(saved, q->enabled, nl * sizeof *saved);
        for (int l = 0; l < q->n_layers; l++) {
            memset(q->enabled, 0, nl * sizeof *q->enabled);
            q->enabled[l] = saved[l];
            qmetrics ml;
            if ((st = eval_all(q, &vd, got, true))) goto done;
            metrics_of(q->g, ns, ref, got, &ml);
            /* rel-l2 plus the top1 disagreement in percent: a layer that
            ** flips predictions ranks before one that only adds noise */
            q->L[l].sensitivity = ml.rel_l2 + ml.top1_pct;
            order[l] = l;
            progress(q, "accuracy budget", ++step, total_steps);
            qlog(q, KILN_SEVERITY_VERBOSE, "sensitivity of %s: rel-l2 %.3g, top1 %.3f%%",
                 q->L[l].label, ml.rel_l2, ml.top1_pct);
        }
        memcpy(q->enabled, saved, nl * sizeof *saved);
        sort_by_sensitivity(q, order);
        char kept[1024] = "";
        int n_kept = 0;
        for (int k = 0; k < q->n_layers && !within(&m, o->budget_metric, o->budget_value);
             k++) {
            qlayer *l = &q->L[order[k]];
            q->enabled[order[k]] = false;
            n_kept++;
            size_t u = strlen(kept);
            snprintf(kept + u, sizeof kept - u, "%s%s", u ? ", " : "", l->label);
            if ((st = eval_all(q, &vd, got, true))) goto done;
            metrics_of(q->g, ns, ref, got, &m);
            qlog(q, KILN_SEVERITY_INFO, "accuracy budget: %s back to FP32 -> %s %.6g",
                 l->label, metric_name(o->budget_metric), metric_value(&m, o->budget_metric));
        }
        qlog(q, KILN_SEVERITY_INFO, "accuracy budget %s %s %g met: %d of %d layers kept in "
             "FP32 (%s); final top1 disagreement %.3f%%, rel-l2 %.3g, cosine %.6f",
             metric_name(o->budget_metric), o->budget_metric == KILN_METRIC_COSINE ? ">=" : "<=",
             o->budget_value, n_kept, q->n_layers, kept, m.top1_pct, m.rel_l2, m.cosine);
    } else {
        qlog(q, KILN_SEVERITY_INFO, "accuracy budget %s %s %g met with every layer in INT8",
             metric_name(o->budget_metric),
             o->budget_metric == KILN_METRIC_COSINE ? ">=" : "<=", o->budget_value);
    }
done:
    for (size_t i = 0; ref && i < nt; i++) tensor_free(ref[i]);
    for (size_t i = 0; got && i < nt; i++) tensor_free(got[i]);
    free(ref);
    free(got);
    free(order);
    free(saved);
    quant_dataset_free(&vd);
    return st;
}

/* ---------------------------------------------------------------- calibration */
static kiln_status calibrate(qctx *q, quant_cache *cache) {
    const quant_opts *o = q->o;
    ir_graph *g = q->g;
    quant_dataset cd;
    kiln_status st = quant_dataset_load(o->calib_dir, g, o->max_batches, &cd);
    if (st) {
        kiln_error_prefix("--calib");
        return st;
    }
    if (!(q->hist = calloc((size_t)g->n_values + 1, sizeof *q->hist))) goto oom;
    for (int v = 0; v < g->n_values; v++) {
        int id = q->cand[v] ? scale_source(q, v) : -1;
        if (id >= 0 && !q->hist[id] && !(q->hist[id] = calloc(1, sizeof *q->hist[id])))
            goto oom;
    }
    for (int s = 0; s < cd.n_sets; s++) {
        if ((st = qexec_run(q, (const kiln_tensor *const *)&cd.t[s * cd.n_inputs], false, true,
                            NULL))) {
            kiln_error_prefix("calibration set %d", s);
            goto done;
        }
        progress(q, "calibration", s + 1, cd.n_sets);
    }
    int n_t = 0, n_h = 0;
    for (int v = 0; v < g->n_values; v++) n_t += q->cand[v], n_h += q->hist[v] != NULL;
    if (!(cache->e = calloc((size_t)n_t + 1, sizeof *cache->e))) goto oom;
    snprintf(cache->method, sizeof cache->method, "%s", quant_method_name(o->method));
    if (o->method == QUANT_PERCENTILE)
        snprintf(cache->method, sizeof cache->method, "percentile %.6g", o->percentile);
    if (q->fp8) { /* marks the grid: an INT8 cache's scales are amax / 127 */
        size_t used = strlen(cache->method);
        snprintf(cache->method + used, sizeof cache->method - used, " " FP8_CACHE_TAG);
    }
    snprintf(cache->version, sizeof cache->version, "%s", KILN_VERSION_STRING);
    for (int v = 0; v < g->n_values; v++) {
        if (!q->hist[v]) continue;
        double amax = quant_hist_amax_levels(q->hist[v], o->method, o->percentile,
                                             q->unsig[v] && !q->fp8 ? 256 : 128);
        q->scale[v] = q->fp8 ? quant_scale_fp8(amax)
                      : q->unsig[v] ? quant_scale_u8(amax) : quant_scale_for(amax);
        qlog(q, KILN_SEVERITY_VERBOSE, "calibration: %s: absmax %.6g, %s threshold %.6g",
             g->values[v]->name, q->hist[v]->absmax, quant_method_name(o->method), amax);
    }
    /* every quantized tensor gets its line, shared scales included, so the
    ** cache reads as the list of Q/DQ pairs */
    for (int v = 0; v < g->n_values; v++) {
        if (!q->cand[v]) continue;
        if (!(cache->e[cache->n].name = kiln_strdup(g->values[v]->name))) goto oom;
        cache->e[cache->n++].scale = q->scale[scale_source(q, v)];
    }
    qlog(q, KILN_SEVERITY_INFO, "calibration: %d sets, %d tensors (%d histograms), method %s",
         cd.n_sets, n_t, n_h, cache->method);
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
done:
    for (int v = 0; q->hist && v < g->n_values; v++) free(q->hist[v]);
    free(q->hist);
    q->hist = NULL;
    quant_dataset_free(&cd);
    return st;
}

/* ---------------------------------------------------------------- insertion */
static ir_value *scalar_const(ir_graph *g, kiln_dtype dt, double v, const char *hint) {
    kiln_tensor *t = NULL;
    if (tensor_new(dt, 0, NULL, &t)) return NULL;
    dt_set_f64(dt, t->data, 0, v);
    return ir_edit_add_const(g, t, hint);
}

static kiln_status insert_qdq(qctx *q) {
    ir_graph *g = q->g;
    int nv = g->n_values, nn = g->n_nodes;
    char hint[512];
    compute_active(q);
    /* activations: one Q -> DQ pair per quantized tensor; every reader but
    ** the layers kept in FP32 reads the DequantizeLinear */
    for (int id = 0; id < nv; id++) {
        if (!q->active[id]) continue;
        ir_value *x = g->values[id];
        snprintf(hint, sizeof hint, "%.400s_scale", x->name);
        ir_value *s = scalar_const(g, KILN_DTYPE_FLOAT32, q->scale[id], hint);
        snprintf(hint, sizeof hint, "%.400s_zero_point", x->name);
        kiln_dtype zt = q->fp8 ? KILN_DTYPE_FLOAT8E4M3FN
                        : q->unsig[id] ? KILN_DTYPE_UINT8 : KILN_DTYPE_INT8;
        ir_value *z = scalar_const(g, zt, 0, hint);
        snprintf(hint, sizeof hint, "%.400s_QuantizeLinear", x->name);
        ir_node *qn = s && z ? ir_edit_add_node(g, OP_QuantizeLinear, 3, 1, hint) : NULL;
        snprintf(hint, sizeof hint, "%.400s_DequantizeLinear", x->name);
        ir_node *dn = qn ? ir_edit_add_node(g, OP_DequantizeLinear, 3, 1, hint) : NULL;
        if (!dn) goto oom;
        qn->in[0] = x, qn->in[1] = s, qn->in[2] = z;
        dn->in[0] = qn->out[0], dn->in[1] = s, dn->in[2] = z;
        for (int i = 0; i < nn; i++) { /* the original nodes only */
            ir_node *n = g->nodes[i];
            int li = q->layer_of[i];
            if (li >= 0 && !q->enabled[li]) continue;
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] == x) n->in[k] = dn->out[0];
        }
    }
    for (int li = 0; li < q->n_layers; li++) {
        qlayer *l = &q->L[li];
        if (!q->enabled[li] || l->w_slot < 0) continue;
        ir_value *w = l->n->in[l->w_slot];
        kiln_tensor *qt = NULL, *st_ = NULL, *zt = NULL;
        kiln_status st = prepare_weight(l, q->fp8, &qt);
        if (st) return st;
        int64_t ch = l->w_channels;
        if (tensor_new(KILN_DTYPE_FLOAT32, 1, &ch, &st_) ||
            tensor_new(q->fp8 ? KILN_DTYPE_FLOAT8E4M3FN : KILN_DTYPE_INT8, 1, &ch, &zt)) {
            tensor_free(qt);
            tensor_free(st_);
            tensor_free(zt);
            goto oom;
        }
        memcpy(st_->data, l->w_scale, (size_t)ch * sizeof(float));
        snprintf(hint, sizeof hint, "%.400s_quantized", w->name);
        ir_value *wq = ir_edit_add_const(g, qt, hint);
        snprintf(hint, sizeof hint, "%.400s_scale", w->name);
        ir_value *ws = ir_edit_add_const(g, st_, hint);
        snprintf(hint, sizeof hint, "%.400s_zero_point", w->name);
        ir_value *wz = ir_edit_add_const(g, zt, hint);
        snprintf(hint, sizeof hint, "%.400s_DequantizeLinear", w->name);
        ir_node *dn = wq && ws && wz ? ir_edit_add_node(g, OP_DequantizeLinear, 3, 1, hint)
                                     : NULL;
        if (!dn || !ir_edit_set_int(dn, "axis", l->w_axis)) goto oom;
        dn->in[0] = wq, dn->in[1] = ws, dn->in[2] = wz;
        l->n->in[l->w_slot] = dn->out[0];
    }
    kiln_status st = ir_graph_compact(g);
    if (!st) st = ir_graph_infer(g);
    return st;
oom:
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory while inserting Q/DQ");
}

/* ---------------------------------------------------------------- entry */
kiln_status quant_int8(pass_ctx *p, const quant_opts *o) {
    qctx q;
    memset(&q, 0, sizeof q);
    q.o = o;
    q.g = p->g;
    q.fp8 = o->qtype == KILN_DTYPE_FLOAT8E4M3FN;
    const char *qo_env = getenv("KILN_INT8_QUANTIZE_OUTPUTS");
    q.quantize_outputs = o->quantize_outputs || (qo_env && !strcmp(qo_env, "1")) ||
                         p->no_q8_epilogue;
    const char *flag = q.fp8 ? "--fp8" : "--int8";
    quant_cache cache;
    memset(&cache, 0, sizeof cache);
    kiln_status st = KILN_OK;
    if (o->qtype != KILN_DTYPE_INT8 && o->qtype != KILN_DTYPE_UNDEFINED && !q.fp8) {
        st = kiln_error(KILN_INVALID_ARGUMENT, "quantization to %s is not supported (INT8 "
                        "or FLOAT8E4M3FN)", kiln_dtype_name(o->qtype));
        goto done;
    }
    if (q.fp8 && o->method == QUANT_ENTROPY && o->calib_dir) {
        st = kiln_error(KILN_INVALID_ARGUMENT, "FP8 calibration: entropy calibration picks "
                        "a clipping threshold for 128 uniform integer levels, which does not "
                        "fit E4M3's floating-point grid; use minmax or percentile");
        goto done;
    }
    if ((st = find_layers(&q))) goto done;
    if (!q.n_layers) {
        qlog(&q, KILN_SEVERITY_WARNING, "%s: the model has no float Conv/Gemm/MatMul "
             "layer to quantize; the engine stays FP32", flag);
        goto done;
    }
    if ((st = find_tensors(&q))) goto done;
    q.enabled = calloc((size_t)q.n_layers, sizeof *q.enabled);
    q.scale = calloc((size_t)q.g->n_values + 1, sizeof *q.scale);
    if (!q.enabled || !q.scale) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* scales: the cache when it has them all, else calibration */
    bool from_cache = false;
    if (o->cache_path) {
        FILE *f = fopen(o->cache_path, "r");
        if (f) {
            fclose(f);
            if ((st = quant_cache_read(o->cache_path, &cache))) goto done;
            bool cache_fp8 = strstr(cache.method, FP8_CACHE_TAG) != NULL;
            if (cache_fp8 != q.fp8) {
                st = kiln_error(KILN_INVALID_ARGUMENT, "calibration cache '%s' holds %s "
                                "scales and this is an %s build; give another --calib-cache "
                                "path, or delete the file to recalibrate", o->cache_path,
                                cache_fp8 ? "FP8" : "INT8", q.fp8 ? "FP8" : "INT8");
                goto done;
            }
            const char *missing = NULL;
            for (int v = 0; v < q.g->n_values && !missing; v++)
                if (q.cand[v] && !quant_cache_find(&cache, q.g->values[v]->name))
                    missing = q.g->values[v]->name;
            if (missing && !o->calib_dir) {
                st = kiln_error(KILN_INVALID_ARGUMENT, "calibration cache '%s' has no scale "
                                "for tensor '%s' (made for another model?); give --calib DIR "
                                "to recalibrate", o->cache_path, missing);
                goto done;
            }
            if (missing) {
                qlog(&q, KILN_SEVERITY_WARNING, "calibration cache '%s' lacks tensor '%s'; "
                     "recalibrating", o->cache_path, missing);
                quant_cache_clear(&cache);
            } else {
                from_cache = true;
                const char *want = quant_method_name(o->method);
                if (o->calib_dir && strncmp(cache.method, want, strlen(want)))
                    qlog(&q, KILN_SEVERITY_WARNING, "calibration cache '%s' was made with "
                         "method '%s'; its scales are used, not %s (delete the cache to "
                         "recalibrate)", o->cache_path, cache.method, want);
                qlog(&q, KILN_SEVERITY_INFO, "calibration: %d scales from cache '%s' "
                     "(method %s); no calibration runs", cache.n, o->cache_path,
                     cache.method[0] ? cache.method : "?");
            }
        } else if (!o->calib_dir) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "calibration cache '%s' does not exist "
                            "and no --calib DIR was given", o->cache_path);
            goto done;
        }
    } else if (!o->calib_dir) {
        st = kiln_error(KILN_INVALID_ARGUMENT, "%s needs calibration data (--calib DIR) "
                        "or a calibration cache", flag);
        goto done;
    }
    if (!from_cache && (st = calibrate(&q, &cache))) goto done;
    /* each tensor's own cache line decides (shared scales are written out
    ** equal; a hand edit may make them differ) */
    for (int v = 0; v < q.g->n_values; v++)
        if (q.cand[v]) q.scale[v] = quant_cache_find(&cache, q.g->values[v]->name)->scale;
    for (int l = 0; l < q.n_layers; l++) {
        q.enabled[l] = true;
        if (q.L[l].w_slot >= 0 && (st = prepare_weight(&q.L[l], q.fp8, NULL))) goto done;
    }
    compute_active(&q);
    if (!from_cache && o->cache_path && (st = quant_cache_write(o->cache_path, &cache))) {
        kiln_error_prefix("writing the calibration cache");
        goto done;
    }
    if (o->budget_metric >= 0 && (st = apply_budget(&q))) goto done;
    int n_int8 = 0;
    for (int l = 0; l < q.n_layers; l++) n_int8 += q.enabled[l];
    if ((st = insert_qdq(&q))) goto done;
    if (q.fp8)
        qlog(&q, KILN_SEVERITY_INFO, "fp8: %d of %d quantizable layers quantized (Q/DQ: "
             "activations per tensor, E4M3 weights per output channel, scale amax/448)",
             n_int8, q.n_layers);
    else
        qlog(&q, KILN_SEVERITY_INFO, "int8: %d of %d quantizable layers quantized (Q/DQ: "
             "activations per tensor, int8 symmetric or uint8 from 0 where never negative; "
             "int8 weights per output channel)", n_int8, q.n_layers);
done:
    for (int l = 0; q.L && l < q.n_layers; l++) {
        tensor_free(q.L[l].w_fake);
        free(q.L[l].w_scale);
    }
    free(q.L);
    free(q.layer_of);
    free(q.enabled);
    free(q.scale);
    free(q.cand);
    free(q.active);
    free(q.share);
    free(q.unsig);
    quant_cache_clear(&cache);
    return st;
}
