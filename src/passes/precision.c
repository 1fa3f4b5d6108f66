/* precision.c: reduced-precision layers for device backends (--fp16,
** --bf16). Layers whose kernels take half-precision data (matrix products,
** convolutions, attention, normalizations and softmax, which accumulate in
** float32 inside, elementwise math, pooling and data movement) compute in
** the target type; their float32 weights are converted once here, and Cast
** layers (the "reformat" layers) are inserted wherever a value crosses
** between a half-precision layer and a float32 one, and in front of every
** graph output, so the engine's inputs and outputs keep the model's types.
** Data-movement layers switch only when their input already did, so they
** never add a cast of their own, or when they move constants (a Gather
** from an embedding table) for layers that compute in half: they then move
** the half copy of the constant, and no Cast follows them. Ops with overflow-prone math in float16
** (Exp, Pow, sums) stay in float32. Around INT8 layers: a QuantizeLinear
** behind a half layer reads the half value, and a DequantizeLinear whose
** readers all compute in half writes half itself (output_dtype), both
** exact, so no Cast surrounds the quantized layers; a QFusedGemm with a
** float output does the same (output_dtype: it rounds its float32 result
** once, as the Cast would). */
#include "passes.h"

#include <stdio.h>

enum {
    MOVE = 1,     /* follows its input's precision, never casts itself */
    KEEP_OUT = 2  /* a test (IsNaN, IsInf) or a QuantizeLinear: reads a half
                     input as it is, where its input already is half, and
                     keeps its (bool, integer) output */
};

typedef struct prec_rule {
    int op;
    unsigned data;   /* bit k: input k is float data in the layer's type;
                        0xFFFF: every input */
    unsigned flags;
} prec_rule;

/* Attention: Q, K, V and the past K/V; the mask (input 3) is left as it
** is, bool or float32 (the kernels read either, and a float32 mask of
** finfo.min would round to -inf in float16). */
static const prec_rule k_rules[] = {
    {OP_Conv, 0x7, 0}, {OP_FusedConv, 0xF, 0}, {OP_MatMul, 0x3, 0},
    {OP_Gemm, 0x7, 0}, {OP_FusedGemm, 0xF, 0}, {OP_Attention, 0x37, 0},
    {OP_ConvTranspose, 0x7, 0},
    {OP_Add, 0x3, 0}, {OP_Sub, 0x3, 0}, {OP_Mul, 0x3, 0}, {OP_Div, 0x3, 0},
    {OP_Max, 0xFFFF, 0}, {OP_Min, 0xFFFF, 0}, {OP_Where, 0x6, 0}, {OP_PRelu, 0x3, 0},
    {OP_Relu, 0x1, 0}, {OP_Sigmoid, 0x1, 0}, {OP_Tanh, 0x1, 0}, {OP_Gelu, 0x1, 0},
    {OP_Erf, 0x1, 0}, {OP_Neg, 0x1, 0}, {OP_Abs, 0x1, 0}, {OP_Clip, 0x7, 0},
    {OP_LeakyRelu, 0x1, 0}, {OP_HardSwish, 0x1, 0}, {OP_HardSigmoid, 0x1, 0},
    {OP_Elu, 0x1, 0}, {OP_Sqrt, 0x1, 0},
    {OP_FusedElementwise, 0xFFFF, 0},
    {OP_IsNaN, 0x1, KEEP_OUT}, {OP_IsInf, 0x1, KEEP_OUT},
    /* a QuantizeLinear behind a half layer reads the half value as it is
    ** (exact: Q computes x / scale in float32 either way, and half to
    ** float32 is exact), instead of a Cast back to float32 in front of it */
    {OP_QuantizeLinear, 0x1, KEEP_OUT},
    /* LayerNorm then Q (ops/qfused.c): normalizes in X's type, like the
    ** LayerNormalization it replaces, and writes 8 bits */
    {OP_QLayerNormalization, 0x7, KEEP_OUT},
    {OP_Softmax, 0x1, 0}, {OP_LayerNormalization, 0x7, 0},
    {OP_RMSNormalization, 0x3, 0}, {OP_BatchNormalization, 0x1F, 0},
    {OP_InstanceNormalization, 0x7, 0}, {OP_GroupNormalization, 0x7, 0},
    {OP_MaxPool, 0x1, 0}, {OP_AveragePool, 0x1, 0}, {OP_GlobalAveragePool, 0x1, 0},
    {OP_GlobalMaxPool, 0x1, 0}, {OP_ReduceMean, 0x1, 0}, {OP_ReduceMax, 0x1, 0},
    {OP_ReduceMin, 0x1, 0}, {OP_Resize, 0x1, 0},
    {OP_Transpose, 0x1, MOVE}, {OP_Reshape, 0x1, MOVE}, {OP_Flatten, 0x1, MOVE},
    {OP_Squeeze, 0x1, MOVE}, {OP_Unsqueeze, 0x1, MOVE}, {OP_Concat, 0xFFFF, MOVE},
    {OP_Split, 0x1, MOVE}, {OP_Slice, 0x1, MOVE}, {OP_Gather, 0x1, MOVE},
    {OP_Expand, 0x1, MOVE}, {OP_Tile, 0x1, MOVE}, {OP_Pad, 0x5, MOVE},
    {OP_Identity, 0x1, MOVE}, {OP_DepthToSpace, 0x1, MOVE},
    {OP_SpaceToDepth, 0x1, MOVE},
};

static const prec_rule *rule_for(int op) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_rules); i++)
        if (k_rules[i].op == op) return &k_rules[i];
    return NULL;
}

static bool is_data(const prec_rule *r, int k) {
    return r->data == 0xFFFF || (k < 16 && (r->data >> k) & 1);
}

typedef struct prec_state {
    pass_ctx *p;
    kiln_dtype half;
    ir_value **to_half;   /* by value id: half version of a float32 value */
    ir_value **to_float;  /* by value id: float32 version of a half value */
    bool *pinned;         /* captured by a subgraph: keep float32 */
} prec_state;

static ir_value *cast_of(prec_state *s, ir_value *v, kiln_dtype to) {
    ir_graph *g = s->p->g;
    ir_value **memo = to == s->half ? s->to_half : s->to_float;
    if (memo[v->id]) return memo[v->id];
    ir_value *r;
    if (v->const_val && to == s->half) {
        const kiln_tensor *src = v->const_val;
        kiln_tensor *t;
        if (tensor_new(to, src->rank, src->dims, &t)) return NULL;
        int64_t n = tensor_numel(src);
        for (int64_t k = 0; k < n; k++)
            dt_set_f64(to, t->data, (size_t)k, dt_get_f64(src->dtype, src->data, (size_t)k));
        char hint[256];
        snprintf(hint, sizeof hint, "%s_%s", v->name, to == KILN_DTYPE_FLOAT16 ? "fp16" : "bf16");
        if (!(r = ir_edit_add_const(g, t, hint))) return NULL;
    } else {
        char hint[256];
        snprintf(hint, sizeof hint, "%s_to_%s", v->name, kiln_dtype_name(to));
        ir_node *c = ir_edit_add_node(g, OP_Cast, 1, 1, hint);
        if (!c || !ir_edit_set_int(c, "to", to)) return NULL;
        c->in[0] = v;
        r = c->out[0];
        r->type = v->type;
        r->type.dtype = to;
        pass_note(s->p, "reformat %s to %s", v->name, kiln_dtype_name(to));
    }
    memo[v->id] = r;
    return r;
}

/* Whether DequantizeLinear n may write the half type itself (its
** output_dtype) instead of float32 and a Cast: exact, since it computes in
** float32 and rounds once either way, provided every reader computes in
** half anyway: a layer with a rule (not a data mover, which would carry the
** half value on to layers that may stay float32, nor a QuantizeLinear),
** reading it as data, whose other data inputs are float too. Graph outputs
** and values a subgraph captures keep float32. */
static bool readers_compute_half(const prec_state *s, const ir_value *y);

/* QFusedGemm n with a float32 output (no y_scale) and no float residual
** (an 8-bit one is dequantized inside) may write half: see dq_to_half_ok.
** A QLayerNormalization reading it as X counts as computing in half: it
** then normalizes the half value, as the LayerNormalization of the
** unfused half graph would (the residual Add before it computed in half). */
static bool qfgemm_to_half_ok(const prec_state *s, const ir_node *n) {
    const ir_graph *g = s->p->g;
    const ir_value *y = n->out[0];
    if (n->n_out != 1 || y->type.dtype != KILN_DTYPE_FLOAT32 || s->pinned[y->id] ||
        ir_edit_is_graph_output(g, y) || (n->n_in > 9 && n->in[9]) ||
        ir_attr_find(n, "output_dtype") ||
        (n->n_in > 6 && n->in[6] && n->in[6]->type.dtype != KILN_DTYPE_INT8 &&
         n->in[6]->type.dtype != KILN_DTYPE_UINT8))
        return false;
    bool qln = false, other = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *c = g->nodes[i];
        bool reads = false;
        for (int k = 0; k < c->n_in + c->n_implicit; k++) reads |= c->in[k] == y;
        if (!reads) continue;
        if (c->op == OP_QLayerNormalization && c->in[0] == y && !c->n_implicit &&
            (c->n_in < 2 || c->in[1] != y) && (c->n_in < 3 || c->in[2] != y))
            qln = true;
        else
            other = true;
    }
    return qln && !other ? true : !qln && readers_compute_half(s, y);
}

static bool dq_to_half_ok(const prec_state *s, const ir_node *n) {
    const ir_graph *g = s->p->g;
    const ir_value *y = n->out[0];
    if (n->n_out != 1 || y->type.dtype != KILN_DTYPE_FLOAT32 || s->pinned[y->id] ||
        ir_edit_is_graph_output(g, y) || n->n_in < 2 || !n->in[1] ||
        n->in[1]->type.dtype != KILN_DTYPE_FLOAT32 || ir_attr_find(n, "output_dtype"))
        return false;
    return readers_compute_half(s, y);
}

/* Whether a data mover whose float data are all constants (a Gather from an
** embedding table) should move the half copy of them instead: when its one
** output goes only to layers that compute in half anyway (the readers of
** dq_to_half_ok). Exact: rounding each element commutes with selecting,
** repeating or reordering elements, so the readers see the values the
** float32 move and a Cast after it would give them, without that Cast. */
static bool move_const_to_half_ok(const prec_state *s, const ir_node *n, const prec_rule *r) {
    const ir_graph *g = s->p->g;
    if (n->n_out != 1 || n->n_implicit) return false;
    const ir_value *y = n->out[0];
    if (y->type.dtype != KILN_DTYPE_FLOAT32 || s->pinned[y->id] || ir_edit_is_graph_output(g, y))
        return false;
    bool any = false;
    for (int k = 0; k < n->n_in; k++) {
        const ir_value *v = n->in[k];
        if (!v || !is_data(r, k)) continue;
        if (v->type.dtype != KILN_DTYPE_FLOAT32 || !v->const_val) return false;
        any = true;
    }
    return any && readers_compute_half(s, y);
}

/* Every reader of y computes in half and reads y as data, its other data
** inputs float (see dq_to_half_ok). */
static bool readers_compute_half(const prec_state *s, const ir_value *y) {
    const ir_graph *g = s->p->g;
    int readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *c = g->nodes[i];
        bool reads = false;
        for (int k = 0; k < c->n_in + c->n_implicit; k++)
            reads |= c->in[k] == y;
        if (!reads) continue;
        readers++;
        const prec_rule *r = rule_for(c->op);
        if (!r || (r->flags & (MOVE | KEEP_OUT)) || c->n_implicit ||
            c->out[0]->type.dtype != KILN_DTYPE_FLOAT32)
            return false;
        for (int k = 0; k < c->n_in; k++) {
            const ir_value *v = c->in[k];
            if (!v) continue;
            if (v == y && !is_data(r, k)) return false;
            if (is_data(r, k) && v->type.dtype != KILN_DTYPE_FLOAT32 &&
                v->type.dtype != s->half)
                return false;
        }
    }
    return readers > 0;
}

kiln_status pass_reduced_precision(pass_ctx *p, kiln_dtype half) {
    ir_graph *g = p->g;
    int nv = g->n_values, nn = g->n_nodes;
    kiln_status st = KILN_OK;
    prec_state s = {p, half, NULL, NULL, NULL};
    /* New values get ids past nv; size the memos for what casts can add. */
    size_t cap = (size_t)nv * 3 + 16;
    s.to_half = calloc(cap, sizeof *s.to_half);
    s.to_float = calloc(cap, sizeof *s.to_float);
    s.pinned = calloc(cap, sizeof *s.pinned);
    if (!s.to_half || !s.to_float || !s.pinned) goto oom;
    p->changes = 0;
    p->pass_name = "precision";
    for (int i = 0; i < nn; i++)
        for (int k = g->nodes[i]->n_in; k < g->nodes[i]->n_in + g->nodes[i]->n_implicit; k++)
            if (g->nodes[i]->in[k]) s.pinned[g->nodes[i]->in[k]->id] = true;
    int converted = 0;
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        if ((n->op == OP_DequantizeLinear && dq_to_half_ok(&s, n)) ||
            (n->op == OP_QFusedGemm && qfgemm_to_half_ok(&s, n))) {
            if (!ir_edit_set_int(n, "output_dtype", half)) goto oom;
            n->out[0]->type.dtype = half;
            pass_note(p, "%s %s writes %s", n->op_type, n->out[0]->name,
                      kiln_dtype_name(half));
            converted++;
            continue;
        }
        const prec_rule *r = rule_for(n->op);
        bool convert = r != NULL && n->n_implicit == 0;
        bool any_half = false, any_data = false;
        for (int k = 0; convert && k < n->n_in; k++) {
            ir_value *v = n->in[k];
            if (!v || !is_data(r, k)) continue;
            kiln_dtype t = v->type.dtype;
            if (t == half) any_half = true;
            else if (t != KILN_DTYPE_FLOAT32) convert = false;
            any_data = true;
        }
        for (int o = 0; convert && o < n->n_out; o++)
            if (n->out[o]->type.dtype != KILN_DTYPE_FLOAT32 && o == 0 && !(r->flags & KEEP_OUT))
                convert = false;
            else if (s.pinned[n->out[o]->id]) convert = false;
        if (convert && (!any_data || ((r->flags & (MOVE | KEEP_OUT)) && !any_half)) &&
            !((r->flags & MOVE) && move_const_to_half_ok(&s, n, r)))
            convert = false;
        if (convert) {
            for (int k = 0; k < n->n_in; k++) {
                ir_value *v = n->in[k];
                if (!v || !is_data(r, k) || v->type.dtype == half) continue;
                ir_value *h = cast_of(&s, v, half);
                if (!h) goto oom;
                n->in[k] = h;
            }
            /* Statistics outputs of the normalizations stay float32. */
            for (int o = 0; o < n->n_out && !(r->flags & KEEP_OUT); o++)
                if (n->out[o]->type.dtype == KILN_DTYPE_FLOAT32 &&
                    (o == 0 || n->op != OP_LayerNormalization))
                    n->out[o]->type.dtype = half;
            converted++;
            continue;
        }
        /* A float32 layer reading a half value gets it cast back. Shape and
        ** Size read only the dims (host shape layers): no Cast of a whole
        ** activation for them. */
        bool dims_only = n->op == OP_Shape || n->op == OP_Size;
        for (int k = dims_only ? n->n_in : 0; k < n->n_in + n->n_implicit; k++) {
            ir_value *v = n->in[k];
            if (!v || v->type.dtype != half || v->const_val) continue;
            bool was_half = false;
            for (int j = 0; j < nv && !was_half; j++) was_half = s.to_half[j] == v;
            if (was_half) continue; /* a cast we made for another layer */
            ir_value *f = cast_of(&s, v, KILN_DTYPE_FLOAT32);
            if (!f) goto oom;
            n->in[k] = f;
        }
    }
    /* Graph outputs keep the model's float32: the producer writes a new
    ** half value and a Cast writes the output. */
    for (int o = 0; o < g->n_outputs; o++) {
        ir_value *v = g->outputs[o];
        if (v->type.dtype != half || !v->producer) continue;
        bool was_float = false;
        for (int j = 0; j < nv && !was_float; j++) was_float = s.to_half[j] == v;
        if (was_float) continue;
        ir_node *prod = v->producer;
        int slot = -1;
        for (int k = 0; k < prod->n_out; k++)
            if (prod->out[k] == v) slot = k;
        if (slot < 0) continue;
        char hint[256];
        snprintf(hint, sizeof hint, "%s_%s", v->name, kiln_dtype_name(half));
        ir_value *h = ir_edit_new_value(g, hint);
        if (!h) goto oom;
        h->type = v->type;
        ir_edit_replace_uses(g, v, h);
        ir_edit_set_output(prod, slot, h);
        ir_node *c = ir_edit_add_node(g, OP_Cast, 1, 1, hint);
        if (!c || !ir_edit_set_int(c, "to", KILN_DTYPE_FLOAT32)) goto oom;
        c->in[0] = h;
        ir_edit_set_output(c, 0, v);
        v->type.dtype = KILN_DTYPE_FLOAT32;
        pass_note(p, "reformat output %s back to float32", v->name);
    }
    if ((st = ir_graph_compact(g)) || (st = ir_graph_infer(g))) {
        kiln_error_prefix("after pass precision");
        goto done;
    }
    pass_log(p, KILN_SEVERITY_INFO, "pass %-12s %d layers in %s, %d reformats", "precision",
             converted, kiln_dtype_name(half), p->changes);
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory in the precision pass");
done:
    free(s.to_half);
    free(s.to_float);
    free(s.pinned);
    return st;
}
