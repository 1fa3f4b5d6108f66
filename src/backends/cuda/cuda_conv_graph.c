/* cuda_conv_graph.c: Conv, FusedConv and NhwcConv in FP16/BF16 through
** cuDNN's graph API (the backend descriptor API of cudnn_graph.h), next to
** the legacy-API tactics of cuda_conv.c.
**
** Why: the legacy API fuses bias + ReLU only through
** cudnnConvolutionBiasActivationForward with implicit precomputed GEMM,
** slow at batch 1; the graph API offers cuDNN's newer engines (runtime-
** fusion ones included) for a convolution followed by pointwise ops, and
** its heuristics rank engine configurations per problem.
**
** One operation graph per layer: conv (FP32 compute) -> + B (bias
** [1,M,1,1]) -> + Z (residual) -> ReLU, the intermediates virtual FP32
** tensors, the last op writing Y. X/Y/Z are NCHW, or NHWC for NhwcConv
** (dims stay NCHW-ordered, the strides say channels-last; W is KRSC).
** Groups follow from W's channel count (cuDNN infers them); pads may be
** asymmetric (pre and post paddings).
**
** Tactics, each one engine configuration, so the builder times several:
**   cuda_<op>_graph_h<k>       heuristic mode A's k-th config, everything fused
**   cuda_<op>_graph_fb<k>      mode FALLBACK's k-th config, everything fused
**   cuda_<op>_graph_conv_h<k>  mode A's k-th config of the convolution alone,
**                              bias/residual/any activation in Kiln's epilogue
**                              kernel (offered when there is something to fuse)
** A configuration cuDNN refuses (the plan does not finalize, or the engine
** reduces in reduced precision) is not a candidate: workspace() answers
** SIZE_MAX. A layer carrying kiln_algo_top (builder, below its highest
** optimization level) offers fewer of each. FP32 layers are left to
** cuda_conv.c (exact-FP32 math there).
**
** Plans: workspace() builds the plan on a process-wide query handle and
** caches only the answer; run() builds it once per exec and shape (the plan
** cache of cuda_plan.c, keyed by the whole problem: dims, strides, pads,
** pointer alignments, the fused ops, the config asked for) and keeps the
** variant pack until the pointers change. Should the asked-for config not
** build at run time (other shape, alignment or workspace than at build),
** the first of mode A then FALLBACK that builds runs instead: a run never
** fails for want of the exact engine the builder timed.
**
** The graph-API machinery (descriptors, configurations, plan trials, the
** query handle, the plan cache, variant packs) is cuda_graph.c's, shared
** with cuda_gemm_graph.c.
**
** Environment: by default these tactics are offered next to the legacy
** ones and the builder times them all (on an H100 they passed
** test_cuda_conv and took ResNet-50 FP16 batch 1 from 0.62 ms to 0.33 ms in
** channels-last); KILN_CONV_GRAPH=0 offers none, =only also withdraws
** cuda_conv.c's legacy cuDNN tactics from FP16/BF16 layers (A/B timing);
** KILN_CONV_GRAPH_LOG=1 prints every plan built (config, engine, workspace,
** or why cuDNN refused it) to stderr. */
#include "cuda_graph.h"
#include "kernels/conv_kernels.h"
#include "kernels/nhwc_kernels.h"
#include "../../ops/conv_window.h"
#include "../../ops/fused.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ environment */
static int g_env_mode = -1; /* 0 off, 1 on, 2 only */
static int g_env_log;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static void env_init(void) {
    const char *e = getenv("KILN_CONV_GRAPH");
    g_env_mode = e && !strcmp(e, "0") ? 0 : e && !strcmp(e, "only") ? 2 : 1;
    const char *l = getenv("KILN_CONV_GRAPH_LOG");
    g_env_log = l && l[0] == '1';
}

int cuda_conv_graph_env(void) {
    pthread_once(&g_env_once, env_init);
    return g_env_mode;
}


/* ------------------------------------------------------------ the problem */
#define GC_TAG 0x4743434f4e560001ll /* "GCCONV" v1 */

enum { GC_MODE_A = CG_MODE_A, GC_MODE_FB = CG_MODE_FB };
/* unique ids of the graph's tensors (virtual ones from GC_UID_V) */
enum { GC_UID_X = 1, GC_UID_W, GC_UID_Y, GC_UID_B, GC_UID_Z, GC_UID_V = 16 };

/* A graph convolution problem, complete: the plan cache key. Zeroed with
** memset before filling (memcmp'd). */
typedef struct gc_key {
    int64_t tag;
    int64_t dt;                 /* kiln_dtype (FP16 or BF16) */
    int64_t nd;                 /* 4 or 5 (1-D runs as 4-D with H = 1) */
    int64_t nhwc;               /* X/Y/Z channels-last, W KRSC */
    int64_t x[5], w[5], y[5];   /* NCHW-ordered dims */
    int64_t pre[3], post[3], stride[3], dil[3];
    int64_t has_b, has_z, relu; /* pointwise ops in the graph */
    int64_t align[5];           /* byte alignment of X, W, Y, B, Z (<= 16) */
    int64_t mode, index;        /* the configuration asked for */
} gc_key;

static void errf(char *err, size_t n, const char *msg) {
    if (err && n) snprintf(err, n, "%s", msg);
}

/* Fills the geometry of k from the node and concrete NCHW-ordered X / W
** dims of rank r. 0, or -1 with a message. */
static int gc_geometry(const ir_node *n, int r, const int64_t *xd, const int64_t *wd, gc_key *k,
                       char *err, size_t nerr) {
    if (r < 3 || r > 5) {
        errf(err, nerr, "X and W must have rank 3 to 5");
        return -1;
    }
    int nsp = r - 2;
    conv_window win;
    conv_geom g;
    if (conv_window_read(n, nsp, wd + 2, CW_DILATIONS | CW_AUTO_PAD, &win, err, nerr) ||
        conv_geom_forward(&win, xd + 2, &g, err, nerr))
        return -1;
    int64_t G = ir_attr_int(n, "group", 1);
    if (G < 1 || xd[1] != wd[1] * G || wd[0] % G) {
        errf(err, nerr, "channel counts do not match the group");
        return -1;
    }
    int off = nsp == 1 ? 1 : 0;
    k->nd = nsp == 3 ? 5 : 4;
    k->x[0] = xd[0], k->x[1] = xd[1];
    k->w[0] = wd[0], k->w[1] = wd[1];
    k->y[0] = xd[0], k->y[1] = wd[0];
    if (off) {
        k->x[2] = k->w[2] = k->y[2] = 1;
        k->pre[0] = k->post[0] = 0, k->stride[0] = k->dil[0] = 1;
    }
    for (int i = 0; i < nsp; i++) {
        k->x[2 + off + i] = xd[2 + i];
        k->w[2 + off + i] = wd[2 + i];
        k->y[2 + off + i] = g.grid[i];
        k->pre[off + i] = g.pb[i];
        k->post[off + i] = g.pe[i];
        k->stride[off + i] = g.s[i];
        k->dil[off + i] = g.d[i];
    }
    for (int i = 0; i < k->nd; i++)
        if (k->x[i] <= 0 || k->w[i] <= 0 || k->y[i] <= 0) {
            errf(err, nerr, "empty tensors have no convolution plan");
            return -1;
        }
    for (int i = 0; i < k->nd - 2; i++)
        if (k->pre[i] < 0 || k->post[i] < 0) {
            errf(err, nerr, "negative pads");
            return -1;
        }
    return 0;
}


/* ------------------------------------------------------------ descriptors */
/* Strides of an nd-dim tensor with NCHW-ordered dims: packed, or
** channels-last (4-D only). */
static void gc_strides(int nd, const int64_t *d, bool nhwc, int64_t *st) {
    if (nhwc && nd == 4) {
        st[1] = 1;
        st[3] = d[1];
        st[2] = d[3] * d[1];
        st[0] = d[2] * d[3] * d[1];
        return;
    }
    st[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) st[i] = st[i + 1] * d[i + 1];
}

static cudnnStatus_t gd_tensor(cg_build *b, int64_t uid, cudnnDataType_t t, int nd,
                               const int64_t *dims, bool nhwc, int64_t align, bool virt,
                               cudnnBackendDescriptor_t *out) {
    int64_t st[5];
    gc_strides(nd, dims, nhwc, st);
    return cg_tensor(b, uid, t, nd, dims, st, align, virt, out);
}

/* The operation graph of k on handle h: conv -> [+B] -> [+Z] -> [ReLU]. */
static cudnnStatus_t gc_graph_make(cg_build *b, cudnnHandle_t h, const void *key,
                                   cudnnBackendDescriptor_t *graph) {
    const gc_key *k = key;
    cudnnDataType_t t = k->dt == KILN_DTYPE_BFLOAT16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    int nd = (int)k->nd, nsp = nd - 2;
    bool nhwc = k->nhwc != 0;
    cudnnStatus_t s;
    cudnnBackendDescriptor_t tx, tw, ty, tb = NULL, tz = NULL, cur, conv, ops[4];
    int n_ops = 0, n_pw = (k->has_b ? 1 : 0) + (k->has_z ? 1 : 0) + (k->relu ? 1 : 0);
    int64_t bd[5] = {1, k->y[1], 1, 1, 1};
    if ((s = gd_tensor(b, GC_UID_X, t, nd, k->x, nhwc, k->align[0], false, &tx)) ||
        (s = gd_tensor(b, GC_UID_W, t, nd, k->w, nhwc, k->align[1], false, &tw)) ||
        (s = gd_tensor(b, GC_UID_Y, t, nd, k->y, nhwc, k->align[2], false, &ty)) ||
        (k->has_b && (s = gd_tensor(b, GC_UID_B, t, nd, bd, nhwc, k->align[3], false, &tb))) ||
        (k->has_z && (s = gd_tensor(b, GC_UID_Z, t, nd, k->y, nhwc, k->align[4], false, &tz))))
        return s;
    /* the convolution */
    cudnnConvolutionMode_t cm = CUDNN_CROSS_CORRELATION;
    int64_t ns = nsp;
    if ((s = cg_new(b, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv))) return s;
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &cm);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &ns);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, ns, k->dil);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, ns, k->stride);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, ns, k->pre);
    GSET(b, conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, ns, k->post);
    GFIN(b, conv, "convolution");
    /* its output: Y itself, or a virtual FP32 tensor the pointwise ops read */
    int64_t vuid = GC_UID_V;
    if (n_pw) {
        if ((s = gd_tensor(b, vuid++, f, nd, k->y, nhwc, 16, true, &cur))) return s;
    } else {
        cur = ty;
    }
    float one = 1.0f, zero = 0.0f;
    cudnnBackendDescriptor_t op;
    if ((s = cg_new(b, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op))) return s;
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx);
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw);
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
         &cur);
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv);
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &one);
    GSET(b, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &zero);
    GFIN(b, op, "convolution forward");
    ops[n_ops++] = op;
    /* pointwise chain, the last op writing Y */
    int left = n_pw;
    for (int step = 0; step < 3; step++) {
        bool on = step == 0 ? k->has_b != 0 : step == 1 ? k->has_z != 0 : k->relu != 0;
        if (!on) continue;
        cudnnBackendDescriptor_t out;
        if (--left == 0) out = ty;
        else if ((s = gd_tensor(b, vuid++, f, nd, k->y, nhwc, 16, true, &out))) return s;
        cudnnPointwiseMode_t pm = step < 2 ? CUDNN_POINTWISE_ADD : CUDNN_POINTWISE_RELU_FWD;
        if ((s = cg_pointwise(b, pm, cur, step == 0 ? tb : step == 1 ? tz : NULL, out,
                              &ops[n_ops])))
            return s;
        n_ops++;
        cur = out;
    }
    /* h NULL: cuda_conv_graph_probe's host-only check */
    return cg_graph(b, h, ops, n_ops, graph);
}

static void gc_log(const void *key, const cg_plan *p, int mode, int index, cudnnStatus_t s,
                   const char *what) {
    pthread_once(&g_env_once, env_init);
    if (!g_env_log) return;
    const gc_key *k = key;
    const cuda_libs *L = cuda_libs_get();
    fprintf(stderr,
            "kiln conv graph: %s %s x=[%lld,%lld,%lld,%lld] w=[%lld,%lld,%lld,%lld] s=%lld,%lld "
            "p=%lld,%lld/%lld,%lld b=%d z=%d relu=%d: %s cfg %d -> %s%s%s (engine %lld, "
            "workspace %lld%s, %.0f ms)\n",
            k->nhwc ? "nhwc" : "nchw", k->dt == KILN_DTYPE_BFLOAT16 ? "bf16" : "f16",
            (long long)k->x[0], (long long)k->x[1], (long long)k->x[k->nd - 2],
            (long long)k->x[k->nd - 1], (long long)k->w[0], (long long)k->w[1],
            (long long)k->w[k->nd - 2], (long long)k->w[k->nd - 1],
            (long long)k->stride[k->nd - 4], (long long)k->stride[k->nd - 3],
            (long long)k->pre[k->nd - 4], (long long)k->pre[k->nd - 3],
            (long long)k->post[k->nd - 4], (long long)k->post[k->nd - 3], (int)k->has_b,
            (int)k->has_z, (int)k->relu, mode == GC_MODE_A ? "mode A" : "fallback", index,
            s ? (L->dnnGetErrorString ? L->dnnGetErrorString(s) : "refused") : "ok",
            s ? ": " : "", s ? what : "", (long long)p->engine, (long long)p->ws,
            p->rtc ? ", runtime-compiled" : "", p->build_ms);
}

/* The cg_problem of k (which must outlive it). */
static cg_problem gc_problem(const gc_key *k) {
    cg_problem pr = {k, sizeof *k, (int)k->mode, (int)k->index, gc_graph_make, gc_log};
    return pr;
}

/* ------------------------------------------------------------ tactics */
typedef struct gc_variant {
    int layout;     /* 0: Conv / FusedConv (NCHW), 1: NhwcConv */
    bool fused;     /* bias/residual/ReLU in the graph; else the conv alone */
    int mode, index;
} gc_variant;

/* How many configurations of each family a layer offers: all of them, or
** fewer under kiln_algo_top (the builder's narrowed search). */
static int offered(const ir_node *n, const gc_variant *v) {
    int64_t top = ir_attr_int(n, "kiln_algo_top", 0);
    if (!v->fused) return top > 0 ? 2 : 4;
    if (v->mode == GC_MODE_FB) return top > 0 ? 1 : 2;
    return top > 0 ? (int)(top < 6 ? top : 6) : 6;
}

static bool half_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* NhwcConv's rank-4 NHWC dims (X [N,H,W,C], W [M,KH,KW,C], Z like Y) seen
** in NCHW order */
static void dims_to_nchw(const int64_t *d, int64_t *o) {
    o[0] = d[0], o[1] = d[3], o[2] = d[1], o[3] = d[2];
}

/* The node's fused activation (NONE for plain Conv); false if unreadable. */
static bool node_act(const ir_node *n, fused_act *act) {
    act->kind = FUSED_ACT_NONE;
    act->alpha = act->beta = 0;
    if (n->op == OP_FusedConv || n->op == OP_NhwcConv) return fused_act_read(n, act, NULL, 0);
    return true;
}

static bool gc_supports(const ir_node *n, const ir_type *const *in, const gc_variant *v) {
    if (cuda_conv_graph_env() == 0 || !cg_api()) return false;
    if ((v->layout == 1) != (n->op == OP_NhwcConv)) return false;
    if (v->index >= offered(n, v)) return false;
    if (n->n_in < 2 || !in[0] || !in[1]) return false;
    const ir_type *x = in[0], *w = in[1];
    kiln_dtype dt = x->dtype;
    if (!half_type(dt) || w->dtype != dt || x->rank != w->rank) return false;
    if (v->layout == 1 ? x->rank != 4 : (x->rank < 3 || x->rank > 5)) return false;
    bool has_b = n->n_in > 2 && in[2];
    bool fused_op = n->op == OP_FusedConv || n->op == OP_NhwcConv;
    bool has_z = fused_op && n->n_in > 3 && in[3];
    if (has_b && (in[2]->dtype != dt || in[2]->rank != 1)) return false;
    if (has_z && (in[3]->dtype != dt || in[3]->rank != x->rank)) return false;
    fused_act act;
    if (!node_act(n, &act)) return false;
    if (v->fused) {
        if (act.kind != FUSED_ACT_NONE && act.kind != FUSED_ACT_RELU) return false;
    } else if (!has_b && !has_z && act.kind == FUSED_ACT_NONE) {
        return false; /* nothing to fuse: the fused variant is the same plan */
    }
    int64_t wd[5];
    if (v->layout == 1) dims_to_nchw(w->dims, wd);
    else memcpy(wd, w->dims, sizeof(int64_t) * (size_t)w->rank);
    for (int i = 2; i < w->rank; i++)
        if (wd[i] < 1) return false; /* the window must be known */
    conv_window win;
    if (conv_window_read(n, x->rank - 2, wd + 2, CW_DILATIONS | CW_AUTO_PAD, &win, NULL, 0))
        return false;
    /* Asymmetric pads go to the direct kernel (cuda_conv.c): on an H100 the
    ** graph plans for them asked for workspaces no allocation could give. */
    int nsp = x->rank - 2;
    if (win.auto_pad == CW_NOTSET) {
        for (int i = 0; i < nsp; i++)
            if (win.pads[i] != win.pads[nsp + i]) return false;
    } else if (win.auto_pad != CW_VALID) {
        int64_t xd[5];
        if (v->layout == 1) dims_to_nchw(x->dims, xd);
        else memcpy(xd, x->dims, sizeof(int64_t) * (size_t)x->rank);
        bool known = true;
        for (int i = 0; i < nsp; i++) known = known && xd[2 + i] >= 0;
        conv_geom g;
        if (known) {
            if (conv_geom_forward(&win, xd + 2, &g, NULL, 0)) return false;
            for (int i = 0; i < nsp; i++)
                if (g.pb[i] != g.pe[i]) return false;
        } else {
            for (int i = 0; i < nsp; i++) /* symmetric at any size */
                if (win.s[i] != 1 || ((win.k[i] - 1) * win.d[i]) % 2) return false;
        }
    }
    return ir_attr_int(n, "group", 1) >= 1;
}

static bool concrete(const ir_type *t) {
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

/* The key of the variant's graph on concrete dims (alignments 16). */
static int gc_key_types(const ir_node *n, const ir_type *const *in, const gc_variant *v,
                        gc_key *k) {
    memset(k, 0, sizeof *k);
    const ir_type *x = in[0], *w = in[1];
    int64_t xd[5], wd[5];
    if (v->layout == 1) {
        dims_to_nchw(x->dims, xd);
        dims_to_nchw(w->dims, wd);
    } else {
        memcpy(xd, x->dims, sizeof(int64_t) * (size_t)x->rank);
        memcpy(wd, w->dims, sizeof(int64_t) * (size_t)w->rank);
    }
    if (gc_geometry(n, x->rank, xd, wd, k, NULL, 0)) return -1;
    fused_act act;
    node_act(n, &act);
    bool fused_op = n->op == OP_FusedConv || n->op == OP_NhwcConv;
    k->tag = GC_TAG;
    k->dt = x->dtype;
    k->nhwc = v->layout == 1;
    if (v->fused) {
        k->has_b = n->n_in > 2 && in[2];
        k->has_z = fused_op && n->n_in > 3 && in[3];
        k->relu = act.kind == FUSED_ACT_RELU;
    }
    for (int i = 0; i < 5; i++) k->align[i] = 16;
    k->mode = v->mode;
    k->index = v->index;
    return 0;
}

static size_t gc_workspace(const ir_node *n, const ir_type *const *in, const gc_variant *v) {
    if (!in[0] || !in[1]) return SIZE_MAX;
    if (!concrete(in[0]) || !concrete(in[1])) return 0; /* asked again on real sizes */
    gc_key k;
    if (gc_key_types(n, in, v, &k)) return SIZE_MAX;
    cg_problem pr = gc_problem(&k);
    return cg_workspace(&pr);
}

static int gc_run(ref_ctx *rc, const gc_variant *v) {
    cuda_exec *x = cuda_exec_of(rc);
    const cuda_libs *L = x && x->dev ? x->dev->libs : NULL;
    if (!L || !x->dnn || !L->dnnBackendExecute)
        return ref_fail(rc, "cuDNN's graph API is not available (%s)",
                        L ? L->dnn_path : "no device");
    cuda_plans_trim(x);
    const ir_node *n = rc->node;
    if (rc->n_in < 2 || !ref_has(rc, 0) || !ref_has(rc, 1) || rc->n_out < 1 || !rc->out[0])
        return ref_fail(rc, "conv needs X, W and Y");
    bool fused_op = n->op == OP_FusedConv || n->op == OP_NhwcConv;
    const kiln_tensor *X = rc->in[0], *W = rc->in[1];
    const kiln_tensor *B = ref_has(rc, 2) ? rc->in[2] : NULL;
    const kiln_tensor *Z = fused_op && ref_has(rc, 3) ? rc->in[3] : NULL;
    kiln_tensor *Y = rc->out[0];
    kiln_dtype dt = X->dtype;
    fused_act act;
    if (!node_act(n, &act)) return ref_fail(rc, "unreadable activation");
    if (!half_type(dt) || W->dtype != dt || Y->dtype != dt || (B && B->dtype != dt) ||
        (Z && Z->dtype != dt))
        return ref_fail(rc, "graph conv tensors must share FP16 or BF16");
    int r = X->rank;
    if (r < 3 || r > 5 || W->rank != r || Y->rank != r || (v->layout == 1 && r != 4))
        return ref_fail(rc, "X, W and Y must have the same rank (4 for NhwcConv, 3 to 5 else)");
    if (v->fused && act.kind != FUSED_ACT_NONE && act.kind != FUSED_ACT_RELU)
        return ref_fail(rc, "the fused graph tactic takes ReLU or no activation");
    int64_t xd[5], wd[5], yd[5];
    if (v->layout == 1) {
        dims_to_nchw(X->dims, xd);
        dims_to_nchw(W->dims, wd);
        dims_to_nchw(Y->dims, yd);
    } else {
        memcpy(xd, X->dims, sizeof(int64_t) * (size_t)r);
        memcpy(wd, W->dims, sizeof(int64_t) * (size_t)r);
        memcpy(yd, Y->dims, sizeof(int64_t) * (size_t)r);
    }
    int64_t M = wd[0];
    if (yd[0] != xd[0] || yd[1] != M)
        return ref_fail(rc, "the output's batch/channels differ from X's and W's");
    if (B && (B->rank != 1 || B->dims[0] != M))
        return ref_fail(rc, "B must have %lld values", (long long)M);
    if (Z && !shape_equal(Z->rank, Z->dims, Y->rank, Y->dims))
        return ref_fail(rc, "Z must have the output's shape");
    int64_t ny = tensor_numel(Y);
    if (ny == 0) return 0;
    gc_key k;
    memset(&k, 0, sizeof k);
    if (gc_geometry(n, r, xd, wd, &k, rc->err, sizeof rc->err)) return -1;
    int off = r == 3 ? 1 : 0;
    for (int i = 2; i < r; i++)
        if (yd[i] != k.y[i + off])
            return ref_fail(rc, "the output's spatial dims differ from the convolution's");
    k.tag = GC_TAG;
    k.dt = dt;
    k.nhwc = v->layout == 1;
    if (v->fused) {
        k.has_b = B != NULL;
        k.has_z = Z != NULL;
        k.relu = act.kind == FUSED_ACT_RELU;
    }
    k.align[0] = cg_ptr_align(X->data);
    k.align[1] = cg_ptr_align(W->data);
    k.align[2] = cg_ptr_align(Y->data);
    k.align[3] = k.has_b ? cg_ptr_align(B->data) : 16;
    k.align[4] = k.has_z ? cg_ptr_align(Z->data) : 16;
    k.mode = v->mode;
    k.index = v->index;
    cg_problem pr = gc_problem(&k);
    cg_plan *p = cg_plan_for(rc, &pr);
    if (!p) return -1;
    int64_t uid[5];
    void *ptr[5];
    int nu = 0;
    uid[nu] = GC_UID_X, ptr[nu++] = X->data;
    uid[nu] = GC_UID_W, ptr[nu++] = W->data;
    uid[nu] = GC_UID_Y, ptr[nu++] = Y->data;
    if (k.has_b) uid[nu] = GC_UID_B, ptr[nu++] = B->data;
    if (k.has_z) uid[nu] = GC_UID_Z, ptr[nu++] = Z->data;
    if (cg_execute(rc, p, nu, uid, ptr)) return -1;
    if (v->fused || (!B && !Z && act.kind == FUSED_ACT_NONE)) return 0;
    kc_act a = {act.kind, act.alpha, act.beta};
    int kdt = dt == KILN_DTYPE_FLOAT16 ? KC_F16 : KC_BF16;
    if (v->layout == 1)
        return cuda_fail_if(rc, kc_nhwc_epilogue(kdt, Y->data, ny, M, B ? B->data : NULL,
                                                 Z ? Z->data : NULL, a, cuda_stream_of(rc)),
                            "NHWC conv epilogue");
    return cuda_fail_if(rc, kc_conv_epilogue(kdt, Y->data, ny, ny / (yd[0] * M), M,
                                             B ? B->data : NULL, Z ? Z->data : NULL, a,
                                             cuda_stream_of(rc)),
                        "conv epilogue");
}

/* ------------------------------------------------------------ the table */
#define DEV_OW (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define GC_TACTIC(VAR, NAME, OP, LAYOUT, FUSED, MODE, INDEX)                                \
    static const gc_variant gv_##VAR = {LAYOUT, FUSED, MODE, INDEX};                       \
    static bool gsup_##VAR(const ir_node *n, const ir_type *const *in) {                   \
        return gc_supports(n, in, &gv_##VAR);                                              \
    }                                                                                      \
    static size_t gws_##VAR(const ir_node *n, const ir_type *const *in) {                  \
        return gc_workspace(n, in, &gv_##VAR);                                             \
    }                                                                                      \
    static int grun_##VAR(ref_ctx *rc) { return gc_run(rc, &gv_##VAR); }                  \
    static const kiln_tactic tg_##VAR = {NAME, OP, 0, DEV_OW, gsup_##VAR, gws_##VAR,        \
                                         grun_##VAR};

/* per op: fused h0..h5, fallback fb0..fb1, conv-only conv_h0..conv_h3 */
#define GC_FAMILY(PFX, NAME, OP, LAYOUT)                                                    \
    GC_TACTIC(PFX##_h0, "cuda_" NAME "_graph_h0", OP, LAYOUT, true, GC_MODE_A, 0)           \
    GC_TACTIC(PFX##_h1, "cuda_" NAME "_graph_h1", OP, LAYOUT, true, GC_MODE_A, 1)           \
    GC_TACTIC(PFX##_h2, "cuda_" NAME "_graph_h2", OP, LAYOUT, true, GC_MODE_A, 2)           \
    GC_TACTIC(PFX##_h3, "cuda_" NAME "_graph_h3", OP, LAYOUT, true, GC_MODE_A, 3)           \
    GC_TACTIC(PFX##_h4, "cuda_" NAME "_graph_h4", OP, LAYOUT, true, GC_MODE_A, 4)           \
    GC_TACTIC(PFX##_h5, "cuda_" NAME "_graph_h5", OP, LAYOUT, true, GC_MODE_A, 5)           \
    GC_TACTIC(PFX##_fb0, "cuda_" NAME "_graph_fb0", OP, LAYOUT, true, GC_MODE_FB, 0)        \
    GC_TACTIC(PFX##_fb1, "cuda_" NAME "_graph_fb1", OP, LAYOUT, true, GC_MODE_FB, 1)        \
    GC_TACTIC(PFX##_c0, "cuda_" NAME "_graph_conv_h0", OP, LAYOUT, false, GC_MODE_A, 0)     \
    GC_TACTIC(PFX##_c1, "cuda_" NAME "_graph_conv_h1", OP, LAYOUT, false, GC_MODE_A, 1)     \
    GC_TACTIC(PFX##_c2, "cuda_" NAME "_graph_conv_h2", OP, LAYOUT, false, GC_MODE_A, 2)     \
    GC_TACTIC(PFX##_c3, "cuda_" NAME "_graph_conv_h3", OP, LAYOUT, false, GC_MODE_A, 3)

#define GC_LIST(PFX)                                                                      \
    &tg_##PFX##_h0, &tg_##PFX##_h1, &tg_##PFX##_c0, &tg_##PFX##_h2, &tg_##PFX##_fb0,       \
        &tg_##PFX##_c1, &tg_##PFX##_h3, &tg_##PFX##_h4, &tg_##PFX##_h5, &tg_##PFX##_fb1,   \
        &tg_##PFX##_c2, &tg_##PFX##_c3

GC_FAMILY(conv, "conv", OP_Conv, 0)
GC_FAMILY(fconv, "fused_conv", OP_FusedConv, 0)
GC_FAMILY(nhwc, "nhwc_conv", OP_NhwcConv, 1)

/* Ordered so that the likely winners come first (the builder looks at a
** bounded number of candidates per layer). */
const kiln_tactic *const cuda_tactics_conv_graph[] = {
    GC_LIST(nhwc), GC_LIST(fconv), GC_LIST(conv), NULL,
};

/* The same order, the variants (cuda_conv_graph_probe) */
#define GC_VLIST(PFX)                                                                     \
    &gv_##PFX##_h0, &gv_##PFX##_h1, &gv_##PFX##_c0, &gv_##PFX##_h2, &gv_##PFX##_fb0,       \
        &gv_##PFX##_c1, &gv_##PFX##_h3, &gv_##PFX##_h4, &gv_##PFX##_h5, &gv_##PFX##_fb1,   \
        &gv_##PFX##_c2, &gv_##PFX##_c3
static const gc_variant *const gc_variants[] = {
    GC_VLIST(nhwc), GC_VLIST(fconv), GC_VLIST(conv), NULL,
};
_Static_assert(sizeof gc_variants == sizeof cuda_tactics_conv_graph, "one variant per tactic");

int cuda_conv_graph_probe(const kiln_tactic *t, const ir_node *n, const ir_type *const *in,
                          char *err, size_t nerr) {
    const gc_variant *v = NULL;
    for (int i = 0; cuda_tactics_conv_graph[i]; i++)
        if (cuda_tactics_conv_graph[i] == t) v = gc_variants[i];
    const cuda_libs *L = cuda_libs_get();
    if (!v || !L->dnnBackendExecute) {
        errf(err, nerr, !v ? "not a graph tactic" : "no cuDNN graph API");
        return -1;
    }
    if (!in[0] || !in[1] || !concrete(in[0]) || !concrete(in[1])) {
        errf(err, nerr, "dims not concrete");
        return -1;
    }
    gc_key k;
    if (gc_key_types(n, in, v, &k)) {
        errf(err, nerr, "geometry");
        return -1;
    }
    cg_problem pr = gc_problem(&k);
    return cg_probe(&pr, err, nerr);
}
