/* nchwc.c: schemas and shape inference of the channel-blocked internal ops
** (NchwcReorderIn/Out, NchwcConv, NchwcPool; semantics in nchwc.h). Only
** the layout pass creates them; their checks still hold an engine file to
** the same rules as any node. */
#include "nchwc.h"
#include "fused.h"

#include <stdio.h>

static bool get2(const ir_node *n, const char *name, int64_t def, int64_t lo,
                 int64_t *a, int64_t *b, char *err, size_t nerr) {
    int cnt = 0;
    const int64_t *v = ir_attr_ints(n, name, &cnt);
    if (!v) {
        *a = *b = def;
    } else if (cnt != 2) {
        snprintf(err, nerr, "'%s' must hold 2 values", name);
        return false;
    } else {
        *a = v[0], *b = v[1];
    }
    if (*a < lo || *b < lo || *a > (1 << 20) || *b > (1 << 20)) {
        snprintf(err, nerr, "'%s' out of range", name);
        return false;
    }
    return true;
}

bool nchwc_win_read(const ir_node *n, nchwc_win *w, char *err, size_t nerr) {
    memset(w, 0, sizeof *w);
    if (!get2(n, "kernel_shape", 1, 1, &w->kh, &w->kw, err, nerr) ||
        !get2(n, "strides", 1, 1, &w->sh, &w->sw, err, nerr) ||
        !get2(n, "dilations", 1, 1, &w->dh, &w->dw, err, nerr))
        return false;
    int cnt = 0;
    const int64_t *p = ir_attr_ints(n, "pads", &cnt);
    if (p) {
        if (cnt != 4) {
            snprintf(err, nerr, "'pads' must hold 4 values");
            return false;
        }
        for (int i = 0; i < 4; i++)
            if (p[i] < 0 || p[i] > (1 << 20)) {
                snprintf(err, nerr, "'pads' out of range");
                return false;
            }
        w->pt = p[0], w->pl = p[1], w->pb = p[2], w->pr = p[3];
    }
    return true;
}

static int64_t attr_pos(const ir_node *n, const char *name) {
    int64_t v = ir_attr_int(n, name, 0);
    return v >= 1 && v <= (1 << 24) ? v : -1;
}

bool nchwc_conv_geom_read(const ir_node *n, int xrank, const int64_t *xd,
                          int wrank, const int64_t *wd, nchwc_conv_geom *g,
                          char *err, size_t nerr) {
    memset(g, 0, sizeof *g);
    if (!nchwc_win_read(n, &g->win, err, nerr)) return false;
    g->blk = attr_pos(n, "block");
    g->C = attr_pos(n, "in_channels");
    g->M = attr_pos(n, "out_channels");
    int64_t G = ir_attr_int(n, "group", 1);
    g->nchw_in = ir_attr_int(n, "input_nchw", 0) != 0;
    if (g->blk < 1 || g->blk > 64 || g->C < 1 || g->M < 1) {
        snprintf(err, nerr, "block, in_channels and out_channels must be set");
        return false;
    }
    g->depthwise = G != 1;
    if (g->depthwise && (G != g->C || G != g->M || g->nchw_in)) {
        snprintf(err, nerr, "group must be 1 or in_channels == out_channels (blocked input)");
        return false;
    }
    g->Cb = nchwc_blocks(g->C, g->blk);
    g->Mb = nchwc_blocks(g->M, g->blk);
    const nchwc_win *w = &g->win;
    if (g->nchw_in ? xrank != 4 || xd[1] != g->C
                   : xrank != 5 || xd[1] != g->Cb || xd[4] != g->blk) {
        snprintf(err, nerr, "X does not have the %s layout of %lld channels",
                 g->nchw_in ? "NCHW" : "blocked", (long long)g->C);
        return false;
    }
    bool wok = g->depthwise
                   ? wrank == 4 && wd[0] == g->Cb && wd[1] == w->kh && wd[2] == w->kw &&
                         wd[3] == g->blk
                   : wrank == 5 && wd[0] == g->Mb && wd[1] == g->C && wd[2] == w->kh &&
                         wd[3] == w->kw && wd[4] == g->blk;
    if (!wok) {
        snprintf(err, nerr, "W does not have the blocked weight shape");
        return false;
    }
    g->N = xd[0], g->H = xd[2], g->W = xd[3];
    g->OH = nchwc_out_dim(g->H, w->kh, w->sh, w->dh, w->pt, w->pb);
    g->OW = nchwc_out_dim(g->W, w->kw, w->sw, w->dw, w->pl, w->pr);
    if (g->OH < 0 || g->OW < 0) {
        snprintf(err, nerr, "the window does not fit the padded input");
        return false;
    }
    return true;
}

/* Output spatial dim, symbolic when the input dim is. */
static int out_dim(infer_ctx *c, int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0,
                   int64_t p1, int64_t *out) {
    if (in < 0) {
        *out = ic_new_sym(c);
        return 0;
    }
    *out = nchwc_out_dim(in, k, s, d, p0, p1);
    if (*out < 0) return ic_fail(c, "the window does not fit the padded input");
    return 0;
}

static int require_f32(infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (t && t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_FLOAT32)
        return ic_fail(c, "input %d must be float32", i);
    return 0;
}

static int infer_reorder_in(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    int64_t b = attr_pos(c->node, "block");
    if (b < 1 || b > 64) return ic_fail(c, "'block' must be 1..64");
    if (require_f32(c, 0)) return -1;
    if (x->rank != 4) return ic_fail(c, "X must have rank 4");
    int64_t d[5] = {x->dims[0], -1, x->dims[2], x->dims[3], b};
    d[1] = x->dims[1] >= 0 ? nchwc_blocks(x->dims[1], b) : ic_new_sym(c);
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 5, d);
    return 0;
}

static int infer_reorder_out(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    int64_t ch = attr_pos(c->node, "channels");
    if (ch < 1) return ic_fail(c, "'channels' must be set");
    if (require_f32(c, 0)) return -1;
    if (x->rank != 5) return ic_fail(c, "X must have rank 5");
    if (x->dims[4] >= 0 && x->dims[1] >= 0 && x->dims[1] != nchwc_blocks(ch, x->dims[4]))
        return ic_fail(c, "%lld blocks of %lld do not hold %lld channels",
                       (long long)x->dims[1], (long long)x->dims[4], (long long)ch);
    int64_t d[4] = {x->dims[0], ch, x->dims[2], x->dims[3]};
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 4, d);
    return 0;
}

static int infer_conv(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0), *w = ic_in(c, 1), *z = ic_in(c, 3);
    for (int i = 0; i < 4; i++)
        if (require_f32(c, i)) return -1;
    fused_act a;
    if (!fused_act_read(c->node, &a, c->err, sizeof c->err)) return -1;
    if (x->rank < 0 || w->rank < 0) {
        ic_set_out(c, 0, KILN_DTYPE_FLOAT32, -1, NULL);
        return 0;
    }
    /* Channel and weight dims are constants; check them with the concrete
    ** reader, substituting placeholders for the symbolic spatial dims. */
    int64_t xd[5], wd[5];
    memcpy(xd, x->dims, sizeof xd);
    memcpy(wd, w->dims, sizeof wd);
    bool symh = xd[2] < 0, symw = xd[3] < 0;
    if (xd[0] < 0) xd[0] = 1;
    if (symh) xd[2] = 1 << 20;
    if (symw) xd[3] = 1 << 20;
    nchwc_conv_geom g;
    if (!nchwc_conv_geom_read(c->node, x->rank, xd, w->rank, wd, &g, c->err,
                              sizeof c->err))
        return -1;
    const ir_type *b = ic_in(c, 2);
    if (b && b->rank >= 0 && (b->rank != 1 || (b->dims[0] >= 0 && b->dims[0] != g.Mb * g.blk)))
        return ic_fail(c, "B must hold %lld values", (long long)(g.Mb * g.blk));
    int64_t d[5] = {x->dims[0], g.Mb, 0, 0, g.blk};
    if (out_dim(c, x->dims[2], g.win.kh, g.win.sh, g.win.dh, g.win.pt, g.win.pb, &d[2]) ||
        out_dim(c, x->dims[3], g.win.kw, g.win.sw, g.win.dw, g.win.pl, g.win.pr, &d[3]))
        return -1;
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 5, d);
    if (z && z->rank >= 0) {
        if (z->rank != 5) return ic_fail(c, "Z must have the output's shape");
        for (int i = 0; i < 5; i++) {
            if (z->dims[i] >= 0 && d[i] >= 0 && z->dims[i] != d[i])
                return ic_fail(c, "Z must have the output's shape");
            if (d[i] < 0 && z->dims[i] >= 0) c->out[0]->dims[i] = z->dims[i];
        }
    }
    return 0;
}

static int infer_pool(infer_ctx *c) {
    const ir_type *x = ic_in(c, 0);
    if (require_f32(c, 0)) return -1;
    if (x->rank != 5) return ic_fail(c, "X must have rank 5");
    int64_t kind = ir_attr_int(c->node, "kind", -1);
    if (kind < NCHWC_POOL_MAX || kind > NCHWC_POOL_GLOBAL_MAX)
        return ic_fail(c, "unknown pool kind %lld", (long long)kind);
    nchwc_win w;
    if (!nchwc_win_read(c->node, &w, c->err, sizeof c->err)) return -1;
    int64_t d[5];
    memcpy(d, x->dims, sizeof d);
    if (kind >= NCHWC_POOL_GLOBAL_AVG) {
        d[2] = d[3] = 1;
    } else if (out_dim(c, x->dims[2], w.kh, w.sh, w.dh, w.pt, w.pb, &d[2]) ||
               out_dim(c, x->dims[3], w.kw, w.sw, w.dw, w.pl, w.pr, &d[3])) {
        return -1;
    }
    ic_set_out(c, 0, KILN_DTYPE_FLOAT32, 5, d);
    return 0;
}

const op_schema op_schemas_nchwc[] = {
    {OP_NchwcReorderIn, 1, 1, 1, 1, infer_reorder_in},
    {OP_NchwcReorderOut, 1, 1, 1, 1, infer_reorder_out},
    {OP_NchwcConv, 2, 4, 1, 1, infer_conv},
    {OP_NchwcPool, 1, 1, 1, 1, infer_pool},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
