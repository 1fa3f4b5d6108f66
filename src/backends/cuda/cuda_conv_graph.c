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
** Environment: by default these tactics are offered next to the legacy
** ones and the builder times them all (on an H100 they passed
** test_cuda_conv and took ResNet-50 FP16 batch 1 from 0.62 ms to 0.33 ms in
** channels-last); KILN_CONV_GRAPH=0 offers none, =only also withdraws
** cuda_conv.c's legacy cuDNN tactics from FP16/BF16 layers (A/B timing);
** KILN_CONV_GRAPH_LOG=1 prints every plan built (config, engine, workspace,
** or why cuDNN refused it) to stderr. */
#include "cuda_internal.h"
#include "kernels/conv_kernels.h"
#include "kernels/nhwc_kernels.h"
#include "../../ops/conv_window.h"
#include "../../ops/fused.h"

#include <pthread.h>
#include <stdint.h>
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

static bool graph_api(void) {
    const cuda_libs *L = cuda_libs_get();
    return L->dnnBackendExecute != NULL && L->dnnConvolutionForward != NULL;
}

/* ------------------------------------------------------------ the problem */
#define GC_TAG 0x4743434f4e560001ll /* "GCCONV" v1 */

enum { GC_MODE_A = 0, GC_MODE_FB = 1 };
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
enum { GC_MAX_DESC = 24, GC_MAX_CFG = 64 };

/* Everything one plan needs alive, destroyed together (reverse order). */
typedef struct gc_plan {
    cudnnBackendDescriptor_t d[GC_MAX_DESC];
    int n_d;
    cudnnBackendDescriptor_t plan, vpack;
    int64_t ws;
    int n_uid;
    int64_t uid[5];
    void *vp_ptr[5], *vp_ws; /* what vpack was made with */
    int64_t engine;          /* cuDNN's global engine index, -1 unknown */
    int mode, index;         /* the configuration that built */
} gc_plan;

static void gc_plan_clear(const cuda_libs *L, gc_plan *p) {
    if (p->vpack) L->dnnBackendDestroyDescriptor(p->vpack);
    if (p->plan) L->dnnBackendDestroyDescriptor(p->plan);
    for (int i = p->n_d - 1; i >= 0; i--)
        if (p->d[i]) L->dnnBackendDestroyDescriptor(p->d[i]);
    p->n_d = 0;
    p->plan = p->vpack = NULL;
}

static void gc_plan_free(const cuda_libs *L, void *payload) {
    gc_plan *p = payload;
    if (!p) return;
    gc_plan_clear(L, p);
    free(p);
}

typedef struct gc_build {
    const cuda_libs *L;
    gc_plan *p;
    const char *what;        /* the call that failed */
} gc_build;

/* A new descriptor owned by the plan. */
static cudnnStatus_t gd_new(gc_build *b, cudnnBackendDescriptorType_t t,
                            cudnnBackendDescriptor_t *out) {
    *out = NULL;
    if (b->p->n_d >= GC_MAX_DESC) {
        b->what = "internal: too many descriptors";
        return CUDNN_STATUS_INTERNAL_ERROR;
    }
    cudnnStatus_t s = b->L->dnnBackendCreateDescriptor(t, out);
    if (s) {
        b->what = "cudnnBackendCreateDescriptor";
        *out = NULL;
        return s;
    }
    b->p->d[b->p->n_d++] = *out;
    return CUDNN_STATUS_SUCCESS;
}

#define GSET(B, D, NAME, TYPE, CNT, PTR)                                                    \
    do {                                                                                   \
        cudnnStatus_t s_ = (B)->L->dnnBackendSetAttribute((D), NAME, TYPE, (CNT), (PTR));   \
        if (s_) {                                                                          \
            (B)->what = "cudnnBackendSetAttribute(" #NAME ")";                              \
            return s_;                                                                     \
        }                                                                                  \
    } while (0)

#define GFIN(B, D, WHAT)                                                                   \
    do {                                                                                   \
        cudnnStatus_t s_ = (B)->L->dnnBackendFinalize(D);                                  \
        if (s_) {                                                                          \
            (B)->what = "cudnnBackendFinalize(" WHAT ")";                                   \
            return s_;                                                                     \
        }                                                                                  \
    } while (0)

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

static cudnnStatus_t gd_tensor(gc_build *b, int64_t uid, cudnnDataType_t t, int nd,
                               const int64_t *dims, bool nhwc, int64_t align, bool virt,
                               cudnnBackendDescriptor_t *out) {
    int64_t st[5];
    gc_strides(nd, dims, nhwc, st);
    cudnnStatus_t s = gd_new(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR, out);
    if (s) return s;
    bool v = virt;
    GSET(b, *out, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t);
    GSET(b, *out, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, nd, dims);
    GSET(b, *out, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, nd, st);
    GSET(b, *out, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    GSET(b, *out, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    GSET(b, *out, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
    GFIN(b, *out, "tensor");
    return CUDNN_STATUS_SUCCESS;
}

/* A pointwise op y = mode(x[, bb]) in FP32 math. */
static cudnnStatus_t gd_pointwise(gc_build *b, cudnnPointwiseMode_t mode,
                                  cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t bb,
                                  cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t *op) {
    cudnnBackendDescriptor_t pw;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    cudnnStatus_t s = gd_new(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
    if (s) return s;
    GSET(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    GSET(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    GFIN(b, pw, "pointwise");
    if ((s = gd_new(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op))) return s;
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
         &pw);
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (bb)
        GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bb);
    GSET(b, *op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    GFIN(b, *op, "pointwise operation");
    return CUDNN_STATUS_SUCCESS;
}

/* The operation graph of k on handle h: conv -> [+B] -> [+Z] -> [ReLU]. */
static cudnnStatus_t gc_graph_make(gc_build *b, cudnnHandle_t h, const gc_key *k,
                                   cudnnBackendDescriptor_t *graph) {
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
    if ((s = gd_new(b, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv))) return s;
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
    if ((s = gd_new(b, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op))) return s;
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
        if ((s = gd_pointwise(b, pm, cur, step == 0 ? tb : step == 1 ? tz : NULL, out,
                              &ops[n_ops])))
            return s;
        n_ops++;
        cur = out;
    }
    if ((s = gd_new(b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph))) return s;
    GSET(b, *graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops);
    /* h NULL: cuda_conv_graph_probe's host-only check (newer cuDNN 9
    ** finalizes a graph without a device) */
    if (h) GSET(b, *graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    GFIN(b, *graph, "operation graph");
    return CUDNN_STATUS_SUCCESS;
}

/* The heuristic's configurations for graph in mode m (at most GC_MAX_CFG),
** into cfg[] (the caller destroys them and *heur). */
static cudnnStatus_t gc_configs(gc_build *b, cudnnBackendDescriptor_t graph, int m,
                                cudnnBackendDescriptor_t *heur, cudnnBackendDescriptor_t *cfg,
                                int *n_cfg) {
    const cuda_libs *L = b->L;
    *n_cfg = 0;
    *heur = NULL;
    cudnnBackendHeurMode_t hm = m == GC_MODE_A ? CUDNN_HEUR_MODE_A : CUDNN_HEUR_MODE_FALLBACK;
    cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, heur);
    if (s) {
        *heur = NULL;
        b->what = "cudnnBackendCreateDescriptor(ENGINEHEUR)";
        return s;
    }
    GSET(b, *heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
         &graph);
    GSET(b, *heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm);
    GFIN(b, *heur, "engine heuristic");
    int64_t n = 0;
    if ((s = L->dnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL))) {
        b->what = "cudnnBackendGetAttribute(ENGINEHEUR_RESULTS count)";
        return s;
    }
    if (n > GC_MAX_CFG) n = GC_MAX_CFG;
    if (n <= 0) return CUDNN_STATUS_SUCCESS;
    for (int i = 0; i < n; i++) {
        if ((s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]))) {
            for (int j = 0; j < i; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
            b->what = "cudnnBackendCreateDescriptor(ENGINECFG)";
            return s;
        }
    }
    int64_t got = 0;
    s = L->dnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got, cfg);
    if (s) {
        for (int j = 0; j < n; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
        b->what = "cudnnBackendGetAttribute(ENGINEHEUR_RESULTS)";
        return s;
    }
    if (got < 0) got = 0;
    for (int64_t j = got; j < n; j++) L->dnnBackendDestroyDescriptor(cfg[j]);
    *n_cfg = (int)(got < n ? got : n);
    return CUDNN_STATUS_SUCCESS;
}

/* Finalizes a plan of configuration cfg on h. CUDNN_STATUS_NOT_SUPPORTED
** for engines that reduce in reduced precision (our FP16/BF16 layers
** accumulate in FP32) and for workspaces over max_ws. */
static cudnnStatus_t gc_try(gc_build *b, cudnnHandle_t h, cudnnBackendDescriptor_t cfg,
                            size_t max_ws, cudnnBackendDescriptor_t *plan, int64_t *ws,
                            int64_t *engine) {
    const cuda_libs *L = b->L;
    *plan = NULL;
    *ws = 0;
    *engine = -1;
    cudnnBackendDescriptor_t eng = NULL;
    if (!L->dnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng)) {
        int64_t cnt = 0;
        if (!L->dnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cnt, &eng) &&
            cnt == 1) {
            cudnnBackendNumericalNote_t notes[32];
            int64_t nn = 0, gi = -1;
            if (!L->dnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64,
                                           1, &cnt, &gi))
                *engine = gi;
            if (!L->dnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                           CUDNN_TYPE_NUMERICAL_NOTE, 32, &nn, notes)) {
                for (int64_t i = 0; i < nn && i < 32; i++)
                    if (notes[i] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) {
                        L->dnnBackendDestroyDescriptor(eng);
                        b->what = "engine reduces in reduced precision";
                        return CUDNN_STATUS_NOT_SUPPORTED;
                    }
            }
        }
        L->dnnBackendDestroyDescriptor(eng);
    }
    cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, plan);
    if (s) {
        *plan = NULL;
        b->what = "cudnnBackendCreateDescriptor(EXECUTION_PLAN)";
        return s;
    }
    if ((s = L->dnnBackendSetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE,
                                       1, &h)) ||
        (s = L->dnnBackendSetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg))) {
        b->what = "cudnnBackendSetAttribute(EXECUTION_PLAN)";
    } else if ((s = L->dnnBackendFinalize(*plan))) {
        b->what = "cudnnBackendFinalize(execution plan)";
    } else {
        int64_t cnt = 0;
        if ((s = L->dnnBackendGetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                           CUDNN_TYPE_INT64, 1, &cnt, ws))) {
            b->what = "cudnnBackendGetAttribute(EXECUTION_PLAN_WORKSPACE_SIZE)";
        } else if (*ws < 0 || (uint64_t)*ws > (uint64_t)max_ws) {
            b->what = *ws < 0 ? "negative workspace" : "workspace over the layer's";
            s = CUDNN_STATUS_NOT_SUPPORTED;
        }
    }
    if (s) {
        L->dnnBackendDestroyDescriptor(*plan);
        *plan = NULL;
    }
    return s;
}

static void gc_log(const gc_key *k, const gc_plan *p, int mode, int index, cudnnStatus_t s,
                   const char *what, const cuda_libs *L) {
    pthread_once(&g_env_once, env_init);
    if (!g_env_log) return;
    fprintf(stderr,
            "kiln conv graph: %s %s x=[%lld,%lld,%lld,%lld] w=[%lld,%lld,%lld,%lld] s=%lld,%lld "
            "p=%lld,%lld/%lld,%lld b=%d z=%d relu=%d: %s cfg %d -> %s%s%s (engine %lld, "
            "workspace %lld)\n",
            k->nhwc ? "nhwc" : "nchw", k->dt == KILN_DTYPE_BFLOAT16 ? "bf16" : "f16",
            (long long)k->x[0], (long long)k->x[1], (long long)k->x[k->nd - 2],
            (long long)k->x[k->nd - 1], (long long)k->w[0], (long long)k->w[1],
            (long long)k->w[k->nd - 2], (long long)k->w[k->nd - 1],
            (long long)k->stride[k->nd - 4], (long long)k->stride[k->nd - 3],
            (long long)k->pre[k->nd - 4], (long long)k->pre[k->nd - 3],
            (long long)k->post[k->nd - 4], (long long)k->post[k->nd - 3], (int)k->has_b,
            (int)k->has_z, (int)k->relu, mode == GC_MODE_A ? "mode A" : "fallback", index,
            s ? (L->dnnGetErrorString ? L->dnnGetErrorString(s) : "refused") : "ok",
            s ? ": " : "", s ? what : "", (long long)p->engine, (long long)p->ws);
}

/* Builds k's plan on h into p: configuration (k->mode, k->index); when
** that one does not build and `any`, the first of mode A, then FALLBACK,
** that does. Status and the failing call in *what. */
static cudnnStatus_t gc_plan_make(const cuda_libs *L, cudnnHandle_t h, const gc_key *k, bool any,
                                  size_t max_ws, gc_plan *p, const char **what) {
    gc_build b = {L, p, "?"};
    memset(p, 0, sizeof *p);
    p->engine = -1;
    cudnnBackendDescriptor_t graph = NULL;
    cudnnStatus_t s = gc_graph_make(&b, h, k, &graph), first = CUDNN_STATUS_SUCCESS;
    const char *first_what = NULL;
    if (s) {
        *what = b.what;
        gc_log(k, p, (int)k->mode, (int)k->index, s, b.what, L);
        gc_plan_clear(L, p);
        return s;
    }
    /* pass 0: the asked-for config; passes 1, 2: modes A, FALLBACK in order */
    for (int pass = 0; pass < (any ? 3 : 1) && !p->plan; pass++) {
        int m = pass == 0 ? (int)k->mode : pass == 1 ? GC_MODE_A : GC_MODE_FB;
        cudnnBackendDescriptor_t heur = NULL, cfg[GC_MAX_CFG];
        int n_cfg = 0, keep = -1;
        s = gc_configs(&b, graph, m, &heur, cfg, &n_cfg);
        if (!s && pass == 0 && k->index >= n_cfg) {
            s = CUDNN_STATUS_NOT_SUPPORTED;
            b.what = "the heuristic offers fewer configurations";
        }
        for (int i = 0; !s && i < n_cfg && keep < 0; i++) {
            if (pass == 0 && i != k->index) continue;
            if (pass > 0 && m == k->mode && i == k->index) continue; /* tried already */
            int64_t ws = 0, engine = -1;
            cudnnBackendDescriptor_t plan = NULL;
            cudnnStatus_t t = gc_try(&b, h, cfg[i], max_ws, &plan, &ws, &engine);
            p->engine = engine;
            p->ws = ws;
            gc_log(k, p, m, i, t, b.what, L);
            if (t) {
                if (pass == 0) s = t;
                continue;
            }
            keep = i;
            p->plan = plan;
            p->mode = m;
            p->index = i;
        }
        if (s && pass == 0) {
            first = s;
            first_what = b.what;
            if (n_cfg == 0 || k->index >= n_cfg) gc_log(k, p, m, (int)k->index, s, b.what, L);
        }
        for (int i = 0; i < n_cfg; i++) {
            if (i == keep && p->n_d < GC_MAX_DESC) p->d[p->n_d++] = cfg[i]; /* plan's own */
            else L->dnnBackendDestroyDescriptor(cfg[i]);
        }
        if (heur) {
            if (keep >= 0 && p->n_d < GC_MAX_DESC) p->d[p->n_d++] = heur;
            else L->dnnBackendDestroyDescriptor(heur);
        }
        s = CUDNN_STATUS_SUCCESS;
    }
    if (!p->plan) {
        *what = first_what ? first_what : "no engine configuration builds";
        gc_plan_clear(L, p);
        return first ? first : CUDNN_STATUS_NOT_SUPPORTED;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ query handle */
/* Tactics are asked for their scratch at build time, before any execution
** context exists: a process-wide handle on the current device answers, and
** a small cache keeps the answers (the plans themselves are dropped). */
static cudnnHandle_t g_query;
static pthread_mutex_t g_query_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_query_once = PTHREAD_ONCE_INIT;

static void query_init(void) {
    const cuda_libs *L = cuda_libs_get();
    int n = 0;
    if (!L->dnnCreate || !L->dnnBackendExecute || cudaGetDeviceCount(&n) != cudaSuccess ||
        n == 0) {
        cudaGetLastError();
        return;
    }
    cudnnHandle_t h = NULL;
    if (L->dnnCreate(&h) == CUDNN_STATUS_SUCCESS) g_query = h;
}

enum { WS_SLOTS = 1024 };
typedef struct ws_entry {
    gc_key key;
    size_t ws; /* SIZE_MAX: refused */
} ws_entry;
static ws_entry g_ws[WS_SLOTS];
static int g_ws_n, g_ws_next;

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
    if (cuda_conv_graph_env() == 0 || !graph_api()) return false;
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
    pthread_once(&g_query_once, query_init);
    if (!g_query) return SIZE_MAX;
    const cuda_libs *L = cuda_libs_get();
    size_t ws = SIZE_MAX;
    pthread_mutex_lock(&g_query_mu); /* one handle, one thread at a time */
    for (int i = 0; i < g_ws_n; i++)
        if (!memcmp(&g_ws[i].key, &k, sizeof k)) {
            ws = g_ws[i].ws;
            goto out;
        }
    gc_plan p;
    const char *what;
    if (gc_plan_make(L, g_query, &k, false, SIZE_MAX, &p, &what) == CUDNN_STATUS_SUCCESS) {
        ws = (size_t)p.ws;
        gc_plan_clear(L, &p);
    }
    g_ws[g_ws_next].key = k;
    g_ws[g_ws_next].ws = ws;
    g_ws_next = (g_ws_next + 1) % WS_SLOTS;
    if (g_ws_n < WS_SLOTS) g_ws_n++;
out:
    pthread_mutex_unlock(&g_query_mu);
    return ws;
}

static int dnn_fail(ref_ctx *rc, const cuda_libs *L, cudnnStatus_t s, const char *what) {
    return ref_fail(rc, "%s: cuDNN error %s", what,
                    L->dnnGetErrorString ? L->dnnGetErrorString(s) : "?");
}

/* Byte alignment of a device pointer, at most 16. */
static int64_t ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p | 16u;
    return (int64_t)(a & (~a + 1));
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
    k.align[0] = ptr_align(X->data);
    k.align[1] = ptr_align(W->data);
    k.align[2] = ptr_align(Y->data);
    k.align[3] = k.has_b ? ptr_align(B->data) : 16;
    k.align[4] = k.has_z ? ptr_align(Z->data) : 16;
    k.mode = v->mode;
    k.index = v->index;
    cudnnHandle_t h = (cudnnHandle_t)x->dnn;
    gc_plan *p = cuda_plan_get(x, &k, sizeof k);
    if (!p) {
        if (!(p = calloc(1, sizeof *p))) return ref_fail(rc, "out of memory");
        const char *what = "?";
        size_t max_ws = rc->ws ? rc->ws_size : 0;
        cudnnStatus_t s = gc_plan_make(L, h, &k, true, max_ws, p, &what);
        if (s) {
            dnn_fail(rc, L, s, what);
            free(p);
            return -1;
        }
        if (!cuda_plan_put(x, &k, sizeof k, p, gc_plan_free)) return ref_fail(rc, "out of memory");
    }
    if ((size_t)p->ws > rc->ws_size || (p->ws && !rc->ws))
        return ref_fail(rc, "cuDNN needs %lld bytes of workspace, the layer has %zu",
                        (long long)p->ws, rc->ws_size);
    /* the variant pack, remade only when a pointer changed */
    int64_t uid[5];
    void *ptr[5];
    int nu = 0;
    uid[nu] = GC_UID_X, ptr[nu++] = X->data;
    uid[nu] = GC_UID_W, ptr[nu++] = W->data;
    uid[nu] = GC_UID_Y, ptr[nu++] = Y->data;
    if (k.has_b) uid[nu] = GC_UID_B, ptr[nu++] = B->data;
    if (k.has_z) uid[nu] = GC_UID_Z, ptr[nu++] = Z->data;
    void *ws = p->ws ? rc->ws : NULL;
    if (!p->vpack || p->n_uid != nu || memcmp(p->vp_ptr, ptr, sizeof(void *) * (size_t)nu) ||
        p->vp_ws != ws) {
        if (p->vpack) L->dnnBackendDestroyDescriptor(p->vpack);
        p->vpack = NULL;
        cudnnBackendDescriptor_t vp = NULL;
        cudnnStatus_t s = L->dnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
        if (s) return dnn_fail(rc, L, s, "cudnnBackendCreateDescriptor(VARIANT_PACK)");
        if ((s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                           CUDNN_TYPE_INT64, nu, uid)) ||
            (s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                           CUDNN_TYPE_VOID_PTR, nu, ptr)) ||
            (s = L->dnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                           CUDNN_TYPE_VOID_PTR, 1, &ws)) ||
            (s = L->dnnBackendFinalize(vp))) {
            L->dnnBackendDestroyDescriptor(vp);
            return dnn_fail(rc, L, s, "variant pack");
        }
        p->vpack = vp;
        p->n_uid = nu;
        memcpy(p->uid, uid, sizeof(int64_t) * (size_t)nu);
        memcpy(p->vp_ptr, ptr, sizeof(void *) * (size_t)nu);
        p->vp_ws = ws;
    }
    cudnnStatus_t s = L->dnnBackendExecute(h, p->plan, p->vpack);
    if (s) return dnn_fail(rc, L, s, "cudnnBackendExecute");
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
    gc_plan p;
    memset(&p, 0, sizeof p);
    gc_build b = {L, &p, "?"};
    cudnnBackendDescriptor_t graph = NULL;
    cudnnStatus_t s = gc_graph_make(&b, NULL, &k, &graph);
    if (s && err && nerr)
        snprintf(err, nerr, "%s: %s", b.what,
                 L->dnnGetErrorString ? L->dnnGetErrorString(s) : "cuDNN error");
    gc_plan_clear(L, &p);
    return s ? -1 : 0;
}
