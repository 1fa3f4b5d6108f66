/* nchwc.c: the channel-blocked layout pass for CPU builds. Float32 2-D
** Conv/FusedConv nodes become NchwcConv on the blocked layout (ops/nchwc.h)
** with their weights reordered here, once, into new constants; the layers
** between them that do not care about the layout (activations, residual
** Add/Sum, same-shape elementwise chains, max/average/global pools, Concat
** along channels of whole blocks, nearest Resize of H and W) follow them into the layout, so a whole
** chain stays blocked. NchwcReorderIn/Out nodes appear only where a value
** crosses the chain's border: a reorder-out is made for every rewritten
** node and dropped again when no NCHW consumer is left.
** Runs only when the builder sets pass_ctx.nchwc_block (CPU target with
** AVX2+FMA: 8, AVX-512F: 16); why blocking pays: the kernels (cpu_nchwc*.c)
** get a whole vector of output channels per load and never gather. */
#include "passes_util.h"
#include "../ops/fused.h"
#include "../ops/nchwc.h"

typedef struct nchwc_pass {
    pass_ctx *p;
    ir_graph *g;
    int64_t b;
    int n0;            /* values before the pass (map size) */
    ir_value **blk;    /* blocked twin of an original value, by id */
    ir_value **rin;    /* reorder-in of an original value, by id */
    ir_node **outs;    /* reorder-outs made (killed later if unused) */
    int n_outs, cap_outs;
} nchwc_pass;

static bool is_f32_4d(const ir_value *v) {
    return v && v->type.dtype == KILN_DTYPE_FLOAT32 && v->type.rank == 4 &&
           v->type.dims[1] > 0;
}

static ir_value *blocked_of(nchwc_pass *s, const ir_value *v) {
    return v && v->id < s->n0 && s->g->values[v->id] == v ? s->blk[v->id] : NULL;
}

/* The blocked form of v: its twin, else a (shared) reorder-in. NULL on OOM. */
static ir_value *to_blocked(nchwc_pass *s, ir_value *v) {
    ir_value *t = blocked_of(s, v);
    if (t) return t;
    if (v->id < s->n0 && s->rin[v->id]) return s->rin[v->id];
    ir_node *r = ir_edit_add_node(s->g, OP_NchwcReorderIn, 1, 1, v->name);
    if (!r || !ir_edit_set_int(r, "block", s->b)) return NULL;
    r->in[0] = v;
    if (v->id < s->n0) s->rin[v->id] = r->out[0];
    return r->out[0];
}

/* new_node (blocked output) replaces old: old's output becomes a reorder-out
** of the new one for whatever still reads it as NCHW. */
static bool replace(nchwc_pass *s, ir_node *old, ir_node *nn, int64_t channels) {
    ir_value *y = old->out[0];
    ir_node *ro = ir_edit_add_node(s->g, OP_NchwcReorderOut, 1, 1, y->name);
    if (!ro || !ir_edit_set_int(ro, "channels", channels)) return false;
    ro->in[0] = nn->out[0];
    ir_edit_note_fused(s->g, nn, &old, 1);
    ir_edit_note_fused(s->g, ro, &old, 1);
    ir_edit_set_output(ro, 0, y);
    ir_edit_kill(old);
    s->blk[y->id] = nn->out[0];
    if (s->n_outs == s->cap_outs) {
        int cap = s->cap_outs ? 2 * s->cap_outs : 64;
        ir_node **o = realloc(s->outs, (size_t)cap * sizeof *o);
        if (!o) return false;
        s->outs = o, s->cap_outs = cap;
    }
    s->outs[s->n_outs++] = ro;
    return true;
}

/* Explicit 2-D pads of a node (auto_pad NOTSET or VALID); false otherwise. */
static bool explicit_pads(const ir_node *n, int64_t pads[4]) {
    const char *ap = ir_attr_str(n, "auto_pad", "NOTSET");
    memset(pads, 0, 4 * sizeof *pads);
    if (!strcmp(ap, "VALID")) return true;
    if (strcmp(ap, "NOTSET") && ap[0]) return false;
    int cnt = 0;
    const int64_t *p = ir_attr_ints(n, "pads", &cnt);
    if (!p) return true;
    if (cnt != 4) return false;
    for (int i = 0; i < 4; i++) {
        if (p[i] < 0 || p[i] > 1 << 20) return false;
        pads[i] = p[i];
    }
    return true;
}

static bool ints2(const ir_node *n, const char *name, int64_t out[2]) {
    int cnt = 0;
    const int64_t *v = ir_attr_ints(n, name, &cnt);
    if (!v) return out[0] = out[1] = 1, true;
    if (cnt != 2 || v[0] < 1 || v[1] < 1 || v[0] > 1 << 20 || v[1] > 1 << 20) return false;
    out[0] = v[0], out[1] = v[1];
    return true;
}

static bool set_window(ir_node *nn, const int64_t k[2], const int64_t st[2],
                       const int64_t d[2], const int64_t pads[4]) {
    return ir_edit_set_ints(nn, "kernel_shape", k, 2) && ir_edit_set_ints(nn, "strides", st, 2) &&
           ir_edit_set_ints(nn, "dilations", d, 2) && ir_edit_set_ints(nn, "pads", pads, 4);
}

/* 1: rewritten, 0: left alone, -1: out of memory. */
static int do_conv(nchwc_pass *s, ir_node *n) {
    ir_value *x = n->in[0], *w = n->n_in > 1 ? n->in[1] : NULL;
    ir_value *bv = n->n_in > 2 ? n->in[2] : NULL;
    ir_value *z = n->op == OP_FusedConv && n->n_in > 3 ? n->in[3] : NULL;
    if (!is_f32_4d(x) || !w || !w->const_val || w->const_val->dtype != KILN_DTYPE_FLOAT32 ||
        w->const_val->rank != 4 || n->n_out != 1)
        return 0;
    if (bv && (!bv->const_val || bv->const_val->dtype != KILN_DTYPE_FLOAT32)) return 0;
    if (z && (!is_f32_4d(z) || !pu_same_type(&z->type, &n->out[0]->type))) return 0;
    fused_act act;
    if (n->op == OP_FusedConv && !fused_act_read(n, &act, NULL, 0)) return 0;
    const kiln_tensor *W = w->const_val;
    int64_t M = W->dims[0], C = x->type.dims[1], G = ir_attr_int(n, "group", 1);
    int64_t k[2] = {W->dims[2], W->dims[3]}, st[2], d[2], pads[4];
    bool dw = G != 1;
    if (G < 1 || (dw && (G != C || G != M || W->dims[1] != 1)) || (!dw && W->dims[1] != C))
        return 0;
    if (bv && tensor_numel(bv->const_val) != M) return 0;
    int ck = 0;
    const int64_t *ks = ir_attr_ints(n, "kernel_shape", &ck);
    if (ks && (ck != 2 || ks[0] != k[0] || ks[1] != k[1])) return 0;
    if (!explicit_pads(n, pads) || !ints2(n, "strides", st) || !ints2(n, "dilations", d))
        return 0;
    int64_t b = s->b, Mb = nchwc_blocks(M, b), Cb = nchwc_blocks(C, b);
    ir_value *xin = blocked_of(s, x);
    bool nchw_in = false;
    if (!xin) {
        if (!dw && C < b) nchw_in = true, xin = x;
        else if (!(xin = to_blocked(s, x))) return -1;
    }
    ir_value *zin = NULL;
    if (z && !(zin = to_blocked(s, z))) return -1;
    /* weights */
    kiln_tensor *wt = NULL, *bt = NULL;
    int64_t kk = k[0] * k[1];
    const float *ws = W->data;
    if (dw) {
        int64_t wd[4] = {Cb, k[0], k[1], b};
        if (tensor_new(KILN_DTYPE_FLOAT32, 4, wd, &wt)) return -1;
        float *o = wt->data;
        for (int64_t m = 0; m < M; m++)
            for (int64_t t = 0; t < kk; t++) o[((m / b) * kk + t) * b + m % b] = ws[m * kk + t];
    } else {
        int64_t wd[5] = {Mb, C, k[0], k[1], b};
        if (tensor_new(KILN_DTYPE_FLOAT32, 5, wd, &wt)) return -1;
        float *o = wt->data;
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t t = 0; t < kk; t++)
                    o[(((m / b) * C + c) * kk + t) * b + m % b] = ws[(m * C + c) * kk + t];
    }
    ir_value *wv = ir_edit_add_const(s->g, wt, w->name), *bvv = NULL;
    if (!wv) return -1;
    if (bv) {
        int64_t bd = Mb * b;
        if (tensor_new(KILN_DTYPE_FLOAT32, 1, &bd, &bt)) return -1;
        memcpy(bt->data, bv->const_val->data, (size_t)M * sizeof(float));
        if (!(bvv = ir_edit_add_const(s->g, bt, bv->name))) return -1;
    }
    ir_node *nn = ir_edit_add_node(s->g, OP_NchwcConv, z ? 4 : bv ? 3 : 2, 1, pu_name(n));
    if (!nn || !ir_edit_copy_attrs(nn, n) || !set_window(nn, k, st, d, pads) ||
        !ir_edit_set_int(nn, "block", b) || !ir_edit_set_int(nn, "in_channels", C) ||
        !ir_edit_set_int(nn, "out_channels", M) || !ir_edit_set_int(nn, "group", G) ||
        !ir_edit_set_int(nn, "input_nchw", nchw_in) || !ir_edit_set_str(nn, "auto_pad", "NOTSET"))
        return -1;
    nn->in[0] = xin;
    nn->in[1] = wv;
    if (nn->n_in > 2) nn->in[2] = bvv;
    if (z) nn->in[3] = zin;
    if (!replace(s, n, nn, M)) return -1;
    pass_note(s->p, "%s -> NchwcConv (block %lld%s%s)", pu_name(n), (long long)b,
              dw ? ", depthwise" : "", nchw_in ? ", NCHW input" : "");
    return 1;
}

static int do_pool(nchwc_pass *s, ir_node *n) {
    ir_value *x = n->in[0], *xb = blocked_of(s, x);
    if (!xb || !is_f32_4d(x)) return 0;
    for (int i = 1; i < n->n_out; i++)
        if (ir_edit_num_consumers(s->g, n->out[i]) || ir_edit_is_graph_output(s->g, n->out[i]))
            return 0;
    int kind;
    int64_t k[2] = {1, 1}, st[2] = {1, 1}, d[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    if (n->op == OP_GlobalAveragePool || n->op == OP_GlobalMaxPool) {
        kind = n->op == OP_GlobalAveragePool ? NCHWC_POOL_GLOBAL_AVG : NCHWC_POOL_GLOBAL_MAX;
    } else {
        kind = n->op == OP_MaxPool ? NCHWC_POOL_MAX : NCHWC_POOL_AVG;
        int ck = 0;
        const int64_t *ks = ir_attr_ints(n, "kernel_shape", &ck);
        if (!ks || ck != 2 || ks[0] < 1 || ks[1] < 1 || ks[0] > 1 << 20 || ks[1] > 1 << 20)
            return 0;
        k[0] = ks[0], k[1] = ks[1];
        if (ir_attr_int(n, "ceil_mode", 0) || !explicit_pads(n, pads) || !ints2(n, "strides", st) ||
            !ints2(n, "dilations", d))
            return 0;
        /* a window that lies wholly in padding would make -inf / 0 / 0;
        ** keep those rare shapes on the plain kernels */
        if (pads[0] >= k[0] || pads[1] >= k[1] || pads[2] >= k[0] || pads[3] >= k[1]) return 0;
    }
    ir_node *nn = ir_edit_add_node(s->g, OP_NchwcPool, 1, 1, pu_name(n));
    if (!nn || !ir_edit_set_int(nn, "kind", kind) || !set_window(nn, k, st, d, pads) ||
        !ir_edit_set_int(nn, "channels", x->type.dims[1]) ||
        !ir_edit_set_int(nn, "count_include_pad", ir_attr_int(n, "count_include_pad", 0)))
        return -1;
    nn->in[0] = xb;
    if (!replace(s, n, nn, x->type.dims[1])) return -1;
    pass_note(s->p, "%s -> NchwcPool", pu_name(n));
    return 1;
}

/* Layout-blind ops: the same op on blocked tensors (see bcast_ok). */
static bool layout_blind(int op) {
    switch (op) {
    case OP_Relu: case OP_Clip: case OP_LeakyRelu: case OP_Sigmoid: case OP_HardSigmoid:
    case OP_HardSwish: case OP_Tanh: case OP_Elu: case OP_Selu: case OP_Softplus:
    case OP_Add: case OP_Sub: case OP_Mul: case OP_Max: case OP_Min: case OP_Sum:
    case OP_Mean: case OP_FusedElementwise: case OP_Gelu:
        return true;
    default: return false;
    }
}

/* An operand of a layout-blind op on the blocked layout: all of the
** output's channels (a per-channel scale [N, C, 1, 1] broadcasts the same
** way blocked), other dims equal to the output's or 1. */
static bool bcast_ok(const ir_type *v, const ir_type *y) {
    if (v->dtype != KILN_DTYPE_FLOAT32 || v->rank != 4 || v->dims[1] != y->dims[1]) return false;
    for (int d = 0; d < 4; d++)
        if (v->dims[d] != y->dims[d] && v->dims[d] != 1) return false;
    return true;
}

static int do_blind(nchwc_pass *s, ir_node *n) {
    ir_value *y = n->out[0];
    if (n->n_out != 1 || n->n_implicit || !is_f32_4d(y)) return 0;
    /* Clip's bounds are constant operands; every other input is data and
    ** must be blocked with the output's shape. */
    int nd = n->op == OP_Clip ? 1 : n->n_in;
    for (int i = 0; i < n->n_in; i++) {
        ir_value *v = n->in[i];
        if (i >= nd) {
            if (v && !v->const_val) return 0;
            continue;
        }
        if (!v || !blocked_of(s, v) || !bcast_ok(&v->type, &y->type)) return 0;
    }
    ir_node *nn = ir_edit_add_node(s->g, n->op, n->n_in, 1, pu_name(n));
    if (!nn || !ir_edit_copy_attrs(nn, n)) return -1;
    for (int i = 0; i < n->n_in; i++) nn->in[i] = i < nd ? blocked_of(s, n->in[i]) : n->in[i];
    if (!replace(s, n, nn, y->type.dims[1])) return -1;
    pass_note(s->p, "%s (%s) kept blocked", pu_name(n), n->op_type);
    return 1;
}

static int do_concat(nchwc_pass *s, ir_node *n) {
    ir_value *y = n->out[0];
    int64_t axis = ir_attr_int(n, "axis", 0);
    if (n->n_out != 1 || !is_f32_4d(y) || (axis != 1 && axis != -3) || n->n_in < 1) return 0;
    for (int i = 0; i < n->n_in; i++) {
        ir_value *v = n->in[i];
        if (!v || !blocked_of(s, v) || !is_f32_4d(v) || v->type.dims[1] % s->b) return 0;
    }
    ir_node *nn = ir_edit_add_node(s->g, OP_Concat, n->n_in, 1, pu_name(n));
    if (!nn || !ir_edit_set_int(nn, "axis", 1)) return -1;
    for (int i = 0; i < n->n_in; i++) nn->in[i] = blocked_of(s, n->in[i]);
    if (!replace(s, n, nn, y->type.dims[1])) return -1;
    pass_note(s->p, "%s (Concat) kept blocked", pu_name(n));
    return 1;
}

/* Resize nearest of H and W only: the same Resize on the blocked tensor with
** a unit scale on the block axis (a unit-scale axis maps every index to
** itself in every coordinate mode but tf_crop_and_resize). */
static int do_resize(nchwc_pass *s, ir_node *n) {
    ir_value *x = n->in[0], *xb = blocked_of(s, x), *y = n->out[0];
    if (!xb || !is_f32_4d(x) || !is_f32_4d(y) || n->n_out != 1 || n->n_in < 3) return 0;
    if (strcmp(ir_attr_str(n, "mode", "nearest"), "nearest") ||
        !strcmp(ir_attr_str(n, "coordinate_transformation_mode", ""), "tf_crop_and_resize") ||
        ir_attr_find(n, "axes") ||
        strcmp(ir_attr_str(n, "keep_aspect_ratio_policy", "stretch"), "stretch"))
        return 0;
    ir_value *roi = n->in[1], *sc = n->in[2], *sz = n->n_in > 3 ? n->in[3] : NULL;
    if (roi && (!roi->const_val || tensor_numel(roi->const_val))) return 0;
    const kiln_tensor *st = sc && sc->const_val && tensor_numel(sc->const_val) ? sc->const_val : NULL;
    const kiln_tensor *zt = sz && sz->const_val && tensor_numel(sz->const_val) ? sz->const_val : NULL;
    if ((sc && !st && !(sc->const_val)) || (sz && !zt && !sz->const_val) || (!st == !zt)) return 0;
    ir_value *nsc = NULL, *nsz = NULL;
    if (st) {
        if (st->dtype != KILN_DTYPE_FLOAT32 || tensor_numel(st) != 4) return 0;
        const float *f = st->data;
        if (f[0] != 1.0f || f[1] != 1.0f) return 0;
        int64_t d = 5;
        kiln_tensor *t;
        if (tensor_new(KILN_DTYPE_FLOAT32, 1, &d, &t)) return -1;
        float *o = t->data;
        o[0] = o[1] = o[4] = 1.0f, o[2] = f[2], o[3] = f[3];
        if (!(nsc = ir_edit_add_const(s->g, t, sc->name))) return -1;
    } else {
        if (zt->dtype != KILN_DTYPE_INT64 || tensor_numel(zt) != 4) return 0;
        const int64_t *z = zt->data;
        if (z[0] != x->type.dims[0] || z[1] != x->type.dims[1] || z[0] < 0) return 0;
        int64_t v[5] = {z[0], nchwc_blocks(z[1], s->b), z[2], z[3], s->b};
        if (!(nsz = pu_const_i64(s->g, 5, v, sz->name))) return -1;
    }
    ir_node *nn = ir_edit_add_node(s->g, OP_Resize, st ? 3 : 4, 1, pu_name(n));
    if (!nn || !ir_edit_copy_attrs(nn, n)) return -1;
    nn->in[0] = xb;
    nn->in[1] = NULL;
    nn->in[2] = nsc;
    if (!st) nn->in[3] = nsz;
    if (!replace(s, n, nn, y->type.dims[1])) return -1;
    pass_note(s->p, "%s (Resize nearest) kept blocked", pu_name(n));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    int64_t b = p->nchwc_block;
    if (b != 8 && b != 16) return KILN_OK;
    ir_graph *g = p->g;
    nchwc_pass s = {p, g, b, g->n_values, NULL, NULL, NULL, 0, 0};
    s.blk = calloc((size_t)s.n0 + 1, sizeof *s.blk);
    s.rin = calloc((size_t)s.n0 + 1, sizeof *s.rin);
    kiln_status st = KILN_OK;
    if (!s.blk || !s.rin) goto oom;
    int nn = g->n_nodes;
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->n_out < 1) continue;
        int rc = 0;
        switch (n->op) {
        case OP_Conv: case OP_FusedConv: rc = do_conv(&s, n); break;
        case OP_MaxPool: case OP_AveragePool: case OP_GlobalAveragePool:
        case OP_GlobalMaxPool:
            rc = do_pool(&s, n);
            break;
        case OP_Concat: rc = do_concat(&s, n); break;
        case OP_Resize: rc = do_resize(&s, n); break;
        default:
            if (layout_blind(n->op)) rc = do_blind(&s, n);
        }
        if (rc < 0) goto oom;
    }
    /* reorder-outs nothing reads any more (the chain continued) */
    for (int i = 0; i < s.n_outs; i++) {
        ir_value *y = s.outs[i]->out[0];
        if (!ir_edit_num_consumers(g, y) && !ir_edit_is_graph_output(g, y)) ir_edit_kill(s.outs[i]);
    }
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
done:
    free(s.blk);
    free(s.rin);
    free(s.outs);
    return st;
}

const kiln_pass pass_nchwc = {"nchwc", run};
