/* layout.c: the channels-last pass. cuDNN's fast FP16/BF16 tensor-core
** convolutions read and write NHWC; run in NCHW, cuDNN converts layouts
** inside every convolution. This pass rewrites chains of 2-D convolutions
** and what sits between them into Kiln's internal NHWC ops (ops/layout.h):
**
**   Conv/FusedConv (group 1, symmetric pads)   -> NhwcConv, weights reordered
**                                                 to KRSC here, once
**   MaxPool/AveragePool (plain windows)        -> NhwcMaxPool/NhwcAveragePool
**   GlobalAveragePool                          -> NhwcGlobalAveragePool (its
**                                                 [N,C,1,1] output is NCHW)
**   Add (same shapes), Relu, Clip (scalars)    -> the same op on NHWC values
**
** Explicit ToNhwc/ToNchw layers (the "reformat" layers inspect shows) are
** inserted only where a value crosses a chain border, one per value; a
** value converted back and forth is never converted twice. Pools and
** elementwise ops join a chain only when their input is already NHWC, so a
** graph without convolutions is left alone. Convolutions whose input
** channels are not a multiple of `align` (an RGB input) read a ToNhwc that
** zero-pads the channels, with zero weights to match; ones whose output
** channels are not a multiple of `align` stay NCHW. Graphs with grouped
** (depthwise) convolutions are left NCHW for now: their kernel is NCHW, and
** a conversion around every one of them costs more than it saves.
**
** INT8 chains (kinds CL_KIND_Q8): the same for 8-bit values, made by the
** Q/DQ fold (passes/qdq.c), so that every QLinearConv reads and writes
** channels-last and the GPU runs it as a GEMM over [N*H*W, C] without a
** transpose (cuda_qconv.c):
**
**   QLinearConv (2-D, group 1, symmetric pads) -> NhwcQLinearConv, weights
**                                                 reordered to KRSC here
**   MaxPool of int8/uint8                      -> NhwcMaxPool
**   QAdd (same shapes)                         -> QAdd on NHWC values
**
** A QLinearConv over [rows, K, 1, 1] (the form passes/qdq.c gives Gemm and
** MatMul) starts no chain.
** The padding of an RGB input's channels is the same (zero bytes with zero
** weights: they add (0 - x_zp) * 0); it needs weight zero points of 0,
** which a convolution that has others does not get (it stays NCHW).
**
** When it runs: device builds at FP16/BF16, after the precision pass, and
** device builds with INT8 layers unless KILN_CHANNELS_LAST_INT8=0 (builder.c, through
** pass_channels_last_wanted). The environment variable
** KILN_CHANNELS_LAST overrides that: "1" runs it in every build, CPU builds
** included (the CPU backend runs the NHWC ops through their reference
** kernels: tests/unit/test_layout.c checks graphs give equal results with
** and without the pass); "0" never runs it (A/B timing on a GPU).
** KILN_CHANNELS_LAST_ALIGN=k (tests) sets the channel alignment builds use
** (default 8): 1 converts every eligible convolution, however few its
** channels, so the ONNX node tests exercise the rewrite. */
#include "passes.h"
#include "../ops/conv_window.h"
#include "../ops/layout.h"

#include <stdio.h>
#include <stdlib.h>

bool pass_channels_last_wanted(bool by_default) {
    const char *e = getenv("KILN_CHANNELS_LAST");
    if (e && e[0] == '1') return true;
    if (e && e[0] == '0') return false;
    return by_default;
}

int pass_channels_last_align(void) {
    const char *e = getenv("KILN_CHANNELS_LAST_ALIGN");
    long v = e ? strtol(e, NULL, 10) : 8;
    return v >= 1 && v <= 1024 ? (int)v : 8;
}

typedef struct cl_state {
    pass_ctx *p;
    int align;
    unsigned kinds;       /* CL_KIND_* */
    int cap;
    ir_value **nhwc;      /* by value id: its NHWC version */
    ir_value **nhwc_pad;  /* by value id: its channel-padded NHWC version */
    ir_node **conv_orig;  /* converted original nodes, to kill at the end */
    int n_conv;
} cl_state;

static bool is_half_or_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

static bool is_q8(kiln_dtype t) { return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8; }

/* A constant of zeros (weight zero points); NULL counts as zeros. */
static bool const_zeros(const ir_value *v) {
    if (!v) return true;
    const kiln_tensor *z = v->const_val;
    if (!z) return false;
    for (int64_t i = 0; i < tensor_numel(z); i++)
        if (dt_get_i64(z->dtype, z->data, (size_t)i) != 0) return false;
    return true;
}

static int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

static ir_type nhwc_type(const ir_type *t, int64_t channels) {
    ir_type r = *t;
    if (t->rank == 4) {
        r.dims[1] = t->dims[2], r.dims[2] = t->dims[3];
        r.dims[3] = channels >= 0 ? channels : t->dims[1];
    }
    return r;
}

static ir_value *lookup(cl_state *s, ir_value **memo, const ir_value *v) {
    return v->id >= 0 && v->id < s->cap ? memo[v->id] : NULL;
}

static void remember(cl_state *s, ir_value **memo, const ir_value *v, ir_value *r) {
    if (v->id >= 0 && v->id < s->cap) memo[v->id] = r;
}

/* The NHWC version of v (NCHW, rank 4), padded to `channels` when that is
** more than v's. A ToNhwc layer at the chain border, made once. */
static ir_value *to_nhwc(cl_state *s, ir_value *v, int64_t channels) {
    bool pad = channels > 0 && channels > v->type.dims[1];
    ir_value *r = lookup(s, pad ? s->nhwc_pad : s->nhwc, v);
    if (r) return r;
    char hint[256];
    snprintf(hint, sizeof hint, "%s_nhwc", v->name);
    ir_node *t = ir_edit_add_node(s->p->g, OP_ToNhwc, 1, 1, hint);
    if (!t || (pad && !ir_edit_set_int(t, "channels", channels))) return NULL;
    t->in[0] = v;
    r = t->out[0];
    r->type = nhwc_type(&v->type, pad ? channels : -1);
    remember(s, pad ? s->nhwc_pad : s->nhwc, v, r);
    pass_note(s->p, "reformat %s to NHWC%s", v->name, pad ? " (channels padded)" : "");
    return r;
}

static bool pads_symmetric(const ir_node *n, const int64_t *kdef, unsigned flags) {
    conv_window w;
    if (conv_window_read(n, 2, kdef, flags, &w, NULL, 0)) return false;
    if (w.auto_pad != CW_NOTSET && w.auto_pad != CW_VALID) return false;
    if (w.ceil_mode) return false;
    return w.pads[0] == w.pads[2] && w.pads[1] == w.pads[3];
}

static bool dilations_one(const ir_node *n) {
    int cnt = 0;
    const int64_t *d = ir_attr_ints(n, "dilations", &cnt);
    for (int i = 0; d && i < cnt; i++)
        if (d[i] != 1) return false;
    return true;
}

/* The KRSC copy of constant weights W [M,C,KH,KW], channels padded to cp. */
static ir_value *weights_krsc(cl_state *s, const ir_value *w, int64_t cp) {
    const kiln_tensor *src = w->const_val;
    int64_t M = src->dims[0], C = src->dims[1], KH = src->dims[2], KW = src->dims[3];
    int64_t d[4] = {M, KH, KW, cp};
    kiln_tensor *t;
    size_t es;
    if (!dtype_nbytes(src->dtype, 1, &es) || es == 0) return NULL;
    if (tensor_new(src->dtype, 4, d, &t)) return NULL;
    const unsigned char *a = src->data;
    unsigned char *b = t->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < KH; h++)
                for (int64_t x = 0; x < KW; x++)
                    memcpy(b + (((m * KH + h) * KW + x) * cp + c) * es,
                           a + (((m * C + c) * KH + h) * KW + x) * es, es);
    char hint[256];
    snprintf(hint, sizeof hint, "%s_krsc", w->name);
    return ir_edit_add_const(s->p->g, t, hint);
}

/* Which rewrite n gets: the NHWC op, or OP_NONE. */
static int plan_node(cl_state *s, const ir_node *n, int64_t *pad_c) {
    *pad_c = -1;
    if (n->n_implicit || n->n_out != 1 || n->n_in < 1 || !n->in[0]) return OP_NONE;
    const ir_value *x = n->in[0];
    const ir_type *xt = &x->type;
    if (xt->rank != 4) return OP_NONE;
    bool q8 = is_q8(xt->dtype);
    if (q8 ? !(s->kinds & CL_KIND_Q8)
           : !(s->kinds & CL_KIND_HALF) || !is_half_or_float(xt->dtype))
        return OP_NONE;
    bool x_nhwc = lookup(s, s->nhwc, x) != NULL;
    switch (n->op) {
    case OP_QLinearConv: {
        if (!q8 || n->n_in < 8) return OP_NONE;
        for (int k = 1; k < 8; k++)
            if (!n->in[k]) return OP_NONE;
        const ir_value *w = n->in[3];
        if (!w->const_val || w->const_val->rank != 4 || !is_q8(w->const_val->dtype))
            return OP_NONE;
        if (ir_attr_int(n, "group", 1) != 1) return OP_NONE;
        if (!pads_symmetric(n, w->const_val->dims + 2, CW_DILATIONS | CW_AUTO_PAD))
            return OP_NONE;
        int64_t M = w->const_val->dims[0], C = w->const_val->dims[1];
        if (M % s->align || xt->dims[1] != C) return OP_NONE;
        /* the 1x1 form of a Gemm / MatMul ([rows, K, 1, 1], passes/qdq.c)
        ** starts no chain: its layouts are the same bytes already, and
        ** reformats around it would be pure cost (BERT) */
        if (!x_nhwc && xt->dims[2] == 1 && xt->dims[3] == 1) return OP_NONE;
        if (C % s->align) {
            if (x_nhwc || !const_zeros(n->in[5])) return OP_NONE;
            *pad_c = round_up(C, s->align);
        }
        return OP_NhwcQLinearConv;
    }
    case OP_QAdd: {
        if (!q8 || n->n_in != 8 || !n->in[3]) return OP_NONE;
        const ir_type *yt = &n->in[3]->type;
        if (n->in[3]->const_val || yt->rank != 4 || !is_q8(yt->dtype)) return OP_NONE;
        for (int i = 0; i < 4; i++)
            if (xt->dims[i] != yt->dims[i] || xt->dims[i] < 0) return OP_NONE;
        if (!x_nhwc && !lookup(s, s->nhwc, n->in[3])) return OP_NONE;
        return OP_QAdd;
    }
    case OP_Conv:
    case OP_FusedConv: {
        if (q8) return OP_NONE;
        const ir_value *w = n->n_in > 1 ? n->in[1] : NULL;
        if (!w || !w->const_val || w->const_val->rank != 4 || w->const_val->dtype != xt->dtype)
            return OP_NONE;
        if (ir_attr_int(n, "group", 1) != 1) return OP_NONE;
        if (!pads_symmetric(n, w->const_val->dims + 2, CW_DILATIONS | CW_AUTO_PAD))
            return OP_NONE;
        int64_t M = w->const_val->dims[0], C = w->const_val->dims[1];
        if (M % s->align) return OP_NONE;
        if (xt->dims[1] != C) return OP_NONE; /* also a symbolic channel count */
        if (C % s->align) {
            if (x_nhwc) return OP_NONE; /* a chain value is never padded */
            *pad_c = round_up(C, s->align);
        }
        if (n->n_in > 2 && n->in[2] && !n->in[2]->const_val && n->in[2]->type.rank != 1)
            return OP_NONE;
        return OP_NhwcConv;
    }
    case OP_MaxPool:
    case OP_AveragePool:
        if (q8 && n->op != OP_MaxPool) return OP_NONE;
        if (!x_nhwc || !dilations_one(n) || ir_attr_int(n, "ceil_mode", 0) != 0)
            return OP_NONE;
        if (!pads_symmetric(n, NULL, CW_CEIL | CW_AUTO_PAD |
                                         (n->op == OP_MaxPool ? CW_DILATIONS : 0)))
            return OP_NONE;
        return n->op == OP_MaxPool ? OP_NhwcMaxPool : OP_NhwcAveragePool;
    case OP_GlobalAveragePool:
        return x_nhwc && !q8 ? OP_NhwcGlobalAveragePool : OP_NONE;
    case OP_Relu:
        return x_nhwc && !q8 && n->n_in == 1 ? OP_Relu : OP_NONE;
    case OP_Clip:
        if (!x_nhwc || q8) return OP_NONE;
        for (int k = 1; k < n->n_in; k++)
            if (n->in[k] && (!n->in[k]->const_val || tensor_numel(n->in[k]->const_val) != 1))
                return OP_NONE;
        return OP_Clip;
    case OP_Add: {
        if (q8 || n->n_in != 2 || !n->in[1]) return OP_NONE;
        const ir_type *yt = &n->in[1]->type;
        if (n->in[1]->const_val || yt->rank != 4 || yt->dtype != xt->dtype) return OP_NONE;
        for (int i = 0; i < 4; i++)
            if (xt->dims[i] != yt->dims[i]) return OP_NONE;
        if (!x_nhwc && !lookup(s, s->nhwc, n->in[1])) return OP_NONE;
        return OP_Add;
    }
    default:
        return OP_NONE;
    }
}

static kiln_status rewrite(cl_state *s, ir_node *n, int nop, int64_t pad_c) {
    ir_graph *g = s->p->g;
    ir_value *v = n->out[0];
    char hint[256];
    snprintf(hint, sizeof hint, "%s_nhwc", v->name);
    ir_node *r = ir_edit_add_node(g, nop, n->n_in, 1, hint);
    if (!r || !ir_edit_copy_attrs(r, n)) goto oom;
    r->name = n->name;
    ir_edit_note_fused(g, r, &n, 1);
    /* an ONNX op working on NHWC data: say so for inspect */
    if (!layout_is_nhwc_op(nop) && !ir_edit_set_str(r, "kiln_layout", "NHWC")) goto oom;
    for (int k = 0; k < n->n_in; k++) {
        ir_value *in = n->in[k];
        if (!in) continue;
        bool spatial = k == 0 || (nop == OP_NhwcConv && k == 3) ||
                       (nop == OP_Add && k == 1) || (nop == OP_QAdd && k == 3);
        bool weights = (nop == OP_NhwcConv && k == 1) || (nop == OP_NhwcQLinearConv && k == 3);
        if (weights) {
            ir_value *w = weights_krsc(s, in, pad_c > 0 ? pad_c : in->const_val->dims[1]);
            if (!w) goto oom;
            r->in[k] = w;
        } else if (spatial) {
            ir_value *h = lookup(s, s->nhwc, in);
            if (!h || (k == 0 && pad_c > 0)) h = to_nhwc(s, in, k == 0 ? pad_c : -1);
            if (!h) goto oom;
            r->in[k] = h;
        } else {
            r->in[k] = in;
        }
    }
    if (nop == OP_NhwcGlobalAveragePool) {
        /* [N,C,1,1] in either layout: r takes over v, nothing to convert */
        ir_edit_set_output(r, 0, v);
    } else {
        r->out[0]->type = nhwc_type(&v->type, -1);
        remember(s, s->nhwc, v, r->out[0]);
    }
    s->conv_orig[s->n_conv++] = n;
    pass_note(s->p, "%s %s -> %s", op_name(n->op), v->name, op_name(nop));
    return KILN_OK;
oom:
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory in the channels-last pass");
}

kiln_status pass_channels_last(pass_ctx *p, int align) {
    return pass_channels_last_kinds(p, align, CL_KIND_HALF | CL_KIND_Q8);
}

kiln_status pass_channels_last_kinds(pass_ctx *p, int align, unsigned kinds) {
    ir_graph *g = p->g;
    int nn = g->n_nodes, nv = g->n_values;
    p->changes = 0;
    p->pass_name = "layout";
    if (align < 1) align = 1;
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        if ((n->op == OP_Conv || n->op == OP_FusedConv || n->op == OP_QLinearConv) &&
            ir_attr_int(n, "group", 1) != 1) {
            pass_log(p, KILN_SEVERITY_INFO, "pass %-12s grouped convolutions: kept NCHW",
                     "layout");
            return KILN_OK;
        }
    }
    cl_state s = {p, align, kinds, nv + 6 * nn + 64, NULL, NULL, NULL, 0};
    s.nhwc = calloc((size_t)s.cap, sizeof *s.nhwc);
    s.nhwc_pad = calloc((size_t)s.cap, sizeof *s.nhwc_pad);
    s.conv_orig = calloc((size_t)nn + 1, sizeof *s.conv_orig);
    kiln_status st = KILN_OK;
    int reformats = 0;
    if (!s.nhwc || !s.nhwc_pad || !s.conv_orig) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory in the channels-last pass");
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        int64_t pad_c;
        int nop = plan_node(&s, n, &pad_c);
        if (nop != OP_NONE && (st = rewrite(&s, n, nop, pad_c))) goto done;
    }
    if (!s.n_conv) goto done;
    for (int i = 0; i < s.n_conv; i++) ir_edit_kill(s.conv_orig[i]);
    /* Values still read in NCHW (by layers outside the chains, or as graph
    ** outputs) get one ToNchw each, which takes over the value. */
    for (int i = 0; i < s.n_conv; i++) {
        ir_value *v = s.conv_orig[i]->out[0];
        ir_value *h = lookup(&s, s.nhwc, v);
        if (!h || (ir_edit_num_consumers(g, v) == 0 && !ir_edit_is_graph_output(g, v)))
            continue;
        char hint[256];
        snprintf(hint, sizeof hint, "%s_nchw", v->name);
        ir_node *t = ir_edit_add_node(g, OP_ToNchw, 1, 1, hint);
        if (!t) {
            st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory in the channels-last pass");
            goto done;
        }
        t->in[0] = h;
        ir_edit_set_output(t, 0, v);
        pass_note(p, "reformat %s back to NCHW", v->name);
    }
    if ((st = ir_graph_compact(g)) || (st = ir_graph_infer(g))) {
        kiln_error_prefix("after pass layout");
        goto done;
    }
    for (int i = 0; i < g->n_nodes; i++)
        reformats += g->nodes[i]->op == OP_ToNhwc || g->nodes[i]->op == OP_ToNchw;
done:
    if (!st)
        pass_log(p, KILN_SEVERITY_INFO, "pass %-12s %d layers in NHWC, %d reformats", "layout",
                 s.n_conv, reformats);
    free(s.nhwc);
    free(s.nhwc_pad);
    free(s.conv_orig);
    return st;
}
