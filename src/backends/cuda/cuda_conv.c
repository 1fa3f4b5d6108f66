/* cuda_conv.c: Conv and FusedConv (Y = act(Conv(X, W, B) + Z)) on the GPU.
**
** cuDNN (legacy API), NCHW, 1-D (as 2-D with H = 1), 2-D and 3-D, groups,
** strides, dilations and symmetric pads (cuDNN has one pad per dim:
** asymmetric pads are declined and run elsewhere). One tactic per forward
** algorithm so the builder times them; workspace() asks cuDNN for the
** algorithm's scratch through a process-wide query handle and answers
** SIZE_MAX (the builder then drops the tactic) when cuDNN cannot run that
** algorithm on the problem. Bias, residual and activation follow in
** kc_conv_epilogue, except in the "fused" tactic, which hands bias, Z and
** ReLU/identity to cudnnConvolutionBiasActivationForward (implicit
** precomputed GEMM, the one algorithm cuDNN fuses an identity activation
** with). FP32 runs with FMA math (exact FP32) unless the layer carries
** kiln_tf32 = 1; FP16/BF16 use tensor-op math with FP32 accumulation.
** Descriptors are cached per exec (cuda_plan.c).
**
** Asymmetric pads (which cuDNN declines) get a direct gather convolution
** of our own with the epilogue fused.
**
** ConvTranspose runs a direct gather kernel of our own (any groups,
** strides, dilations, pads, output_padding/output_shape, 1-D to 3-D), and
** Col2Im another (1-D to 3-D, its shapes constant or read at run time).
**
** Depthwise convolutions (group == C == M, one filter per channel) also
** get a direct kernel of our own (kernels/conv_direct.cu) with bias,
** residual and activation fused, and any pads.
**
** NhwcConv (channels-last, made by passes/layout.c for FP16/BF16 device
** builds) runs the same cuDNN tactics on NHWC tensor descriptors and a KRSC
** (CUDNN_TENSOR_NHWC) filter, where cuDNN's tensor-core kernels read the
** data directly instead of converting it inside every call; its epilogue
** is kernels/nhwc.cu's. Half-precision NHWC wants C % 8 == 0 and M % 8 == 0
** for those kernels: other channel counts are declined (the pass pads an
** RGB input's channels to 8 and keeps other odd convs NCHW).
**
** Build time: cuDNN's heuristic (cudnnGetConvolutionForwardAlgorithm_v7)
** ranks the algorithms per problem; a layer carrying kiln_algo_top = K (the
** builder sets it below its highest optimization level) offers only the K
** best ranked algorithms (plain, and fused for ReLU layers), plus
** implicit precomputed GEMM plain and fused, for timing. */
#include "cuda_internal.h"
#include "kernels/conv_kernels.h"
#include "kernels/nhwc_kernels.h"
#include "../../ops/conv_window.h"
#include "../../ops/fused.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ geometry */
#define CONV_TAG 0x434f4e56444e0002ll /* "CONVDN" v2 */

/* A cuDNN convolution problem, complete: it is the plan cache key. */
typedef struct conv_params {
    int64_t tag;
    int64_t dt;              /* kiln_dtype */
    int64_t tf32;
    int64_t nd;              /* 4 or 5 (1-D runs as 4-D) */
    int64_t x[5], w[5], y[5];
    int64_t pad[3], stride[3], dil[3];
    int64_t groups;
    int64_t algo;            /* cudnnConvolutionFwdAlgo_t */
    int64_t fused;           /* cudnnConvolutionBiasActivationForward */
    int64_t relu;            /* fused: ReLU (else identity) */
    int64_t nhwc;            /* X, Y NHWC and W KRSC (dims above stay NCHW-ordered) */
} conv_params;

static bool float_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT32 || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

static int kc_dtype(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 ? KC_F16 : t == KILN_DTYPE_BFLOAT16 ? KC_BF16 : KC_F32;
}

static cudnnDataType_t dnn_type(int64_t t) {
    return t == KILN_DTYPE_FLOAT16    ? CUDNN_DATA_HALF
           : t == KILN_DTYPE_BFLOAT16 ? CUDNN_DATA_BFLOAT16
                                      : CUDNN_DATA_FLOAT;
}

static void errf(char *err, size_t n, const char *msg) {
    if (err && n) snprintf(err, n, "%s", msg);
}

/* Geometry of the node on concrete X / W dims (rank r): pads, strides,
** dilations and the output dims. 0, or -1 with a message in err. */
static int conv_geometry(const ir_node *n, int r, const int64_t *xd, const int64_t *wd,
                         conv_geom *g, char *err, size_t nerr) {
    conv_window win;
    if (r < 3 || r > 5) {
        errf(err, nerr, "X and W must have rank 3 to 5");
        return -1;
    }
    if (conv_window_read(n, r - 2, wd + 2, CW_DILATIONS | CW_AUTO_PAD, &win, err, nerr) ||
        conv_geom_forward(&win, xd + 2, g, err, nerr))
        return -1;
    return 0;
}

/* Fills p (all but algo/fused/relu) from the node and concrete dims. */
static int conv_params_make(const ir_node *n, kiln_dtype dt, int r, const int64_t *xd,
                            const int64_t *wd, conv_params *p, char *err, size_t nerr) {
    memset(p, 0, sizeof *p);
    conv_geom g;
    if (conv_geometry(n, r, xd, wd, &g, err, nerr)) return -1;
    int nsp = r - 2;
    int64_t G = ir_attr_int(n, "group", 1);
    if (G < 1 || xd[1] != wd[1] * G || wd[0] % G) {
        errf(err, nerr, "channel counts do not match the group");
        return -1;
    }
    p->tag = CONV_TAG;
    p->dt = dt;
    p->tf32 = dt == KILN_DTYPE_FLOAT32 && ir_attr_int(n, "kiln_tf32", 0) != 0;
    p->nd = nsp == 3 ? 5 : 4;
    p->groups = G;
    int off = nsp == 1 ? 1 : 0; /* 1-D: a leading H = 1 */
    p->x[0] = xd[0], p->x[1] = xd[1];
    p->w[0] = wd[0], p->w[1] = wd[1];
    p->y[0] = xd[0], p->y[1] = wd[0];
    if (off) {
        p->x[2] = p->w[2] = p->y[2] = 1;
        p->pad[0] = 0, p->stride[0] = 1, p->dil[0] = 1;
    }
    for (int i = 0; i < nsp; i++) {
        if (g.pb[i] != g.pe[i]) {
            errf(err, nerr, "cuDNN takes symmetric pads only");
            return -1;
        }
        p->x[2 + off + i] = xd[2 + i];
        p->w[2 + off + i] = wd[2 + i];
        p->y[2 + off + i] = g.grid[i];
        p->pad[off + i] = g.pb[i];
        p->stride[off + i] = g.s[i];
        p->dil[off + i] = g.d[i];
    }
    for (int i = 0; i < p->nd; i++)
        if (p->x[i] > INT32_MAX || p->w[i] > INT32_MAX || p->y[i] > INT32_MAX ||
            p->x[i] < 0 || p->y[i] < 0) {
            errf(err, nerr, "dims out of cuDNN's int range");
            return -1;
        }
    for (int i = 0; i < p->nd - 2; i++)
        if (p->pad[i] > INT32_MAX || p->stride[i] > INT32_MAX || p->dil[i] > INT32_MAX) {
            errf(err, nerr, "window attributes out of cuDNN's int range");
            return -1;
        }
    int64_t xs = 1;
    for (int i = 0; i < p->nd; i++) xs *= p->x[i];
    if (xs > INT32_MAX) { /* cuDNN's legacy descriptors take int strides */
        errf(err, nerr, "tensor too large for cuDNN's int strides");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ descriptors */
typedef struct conv_plan {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t act;
    size_t ws;
} conv_plan;

static void conv_plan_free(const cuda_libs *L, void *payload) {
    conv_plan *p = payload;
    if (!p) return;
    if (p->x) L->dnnDestroyTensorDescriptor(p->x);
    if (p->y) L->dnnDestroyTensorDescriptor(p->y);
    if (p->b) L->dnnDestroyTensorDescriptor(p->b);
    if (p->w) L->dnnDestroyFilterDescriptor(p->w);
    if (p->conv) L->dnnDestroyConvolutionDescriptor(p->conv);
    if (p->act) L->dnnDestroyActivationDescriptor(p->act);
    free(p);
}

static cudnnStatus_t packed(const cuda_libs *L, cudnnTensorDescriptor_t d, cudnnDataType_t t,
                            int nd, const int64_t *dims64) {
    int dims[5], st[5];
    for (int i = 0; i < nd; i++) dims[i] = (int)dims64[i];
    st[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) st[i] = st[i + 1] * (dims[i + 1] > 0 ? dims[i + 1] : 1);
    return L->dnnSetTensorNdDescriptor(d, t, nd, dims, st);
}

/* A 4-D NHWC tensor descriptor: dims in NCHW order, channels-last strides. */
static cudnnStatus_t nhwc_desc(const cuda_libs *L, cudnnTensorDescriptor_t d, cudnnDataType_t t,
                               const int64_t *d64) {
    int dims[4] = {(int)d64[0], (int)d64[1], (int)d64[2], (int)d64[3]};
    int c = dims[1] > 0 ? dims[1] : 1, h = dims[2] > 0 ? dims[2] : 1,
        w = dims[3] > 0 ? dims[3] : 1;
    int st[4] = {h * w * c, 1, w * c, c};
    return L->dnnSetTensorNdDescriptor(d, t, 4, dims, st);
}

/* Makes the descriptors of p (conv_plan_make below adds the algorithm's
** workspace). Status and the failing call in *what. */
static cudnnStatus_t conv_desc_make(const cuda_libs *L, const conv_params *p, conv_plan *cp,
                                    const char **what) {
    cudnnStatus_t s;
    cudnnDataType_t t = dnn_type(p->dt);
    int nd = (int)p->nd, ns = nd - 2;
    int pad[3], str[3], dil[3], wd[5], od[5];
    for (int i = 0; i < ns; i++)
        pad[i] = (int)p->pad[i], str[i] = (int)p->stride[i], dil[i] = (int)p->dil[i];
    for (int i = 0; i < nd; i++) wd[i] = (int)p->w[i];
    *what = "cudnnCreate*Descriptor";
    if ((s = L->dnnCreateTensorDescriptor(&cp->x)) || (s = L->dnnCreateTensorDescriptor(&cp->y)) ||
        (s = L->dnnCreateFilterDescriptor(&cp->w)) ||
        (s = L->dnnCreateConvolutionDescriptor(&cp->conv)))
        return s;
    *what = "cudnnSet*Descriptor";
    if (p->nhwc && nd != 4) return CUDNN_STATUS_BAD_PARAM;
    if ((s = p->nhwc ? nhwc_desc(L, cp->x, t, p->x) : packed(L, cp->x, t, nd, p->x)) ||
        (s = p->nhwc ? nhwc_desc(L, cp->y, t, p->y) : packed(L, cp->y, t, nd, p->y)) ||
        (s = L->dnnSetFilterNdDescriptor(cp->w, t, p->nhwc ? CUDNN_TENSOR_NHWC
                                                           : CUDNN_TENSOR_NCHW, nd, wd)) ||
        (s = L->dnnSetConvolutionNdDescriptor(cp->conv, ns, pad, str, dil,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) ||
        (s = L->dnnSetConvolutionGroupCount(cp->conv, (int)p->groups)))
        return s;
    cudnnMathType_t math = p->dt != KILN_DTYPE_FLOAT32 || p->tf32 ? CUDNN_TENSOR_OP_MATH
                                                                  : CUDNN_FMA_MATH;
    *what = "cudnnSetConvolutionMathType";
    if ((s = L->dnnSetConvolutionMathType(cp->conv, math))) return s;
    /* the output cuDNN computes must be the one the graph planned */
    *what = "cudnnGetConvolutionNdForwardOutputDim";
    if ((s = L->dnnGetConvolutionNdForwardOutputDim(cp->conv, cp->x, cp->w, nd, od))) return s;
    for (int i = 0; i < nd; i++)
        if (od[i] != (int)p->y[i]) {
            *what = "cudnnGetConvolutionNdForwardOutputDim (output shape differs)";
            return CUDNN_STATUS_BAD_PARAM;
        }
    if (p->fused) {
        int64_t bd[5] = {1, p->y[1], 1, 1, 1};
        *what = "bias/activation descriptors";
        /* [1,M,1,1] in the output's format (the same bytes either way) */
        if ((s = L->dnnCreateTensorDescriptor(&cp->b)) ||
            (s = p->nhwc ? nhwc_desc(L, cp->b, t, bd) : packed(L, cp->b, t, nd, bd)) ||
            (s = L->dnnCreateActivationDescriptor(&cp->act)) ||
            (s = L->dnnSetActivationDescriptor(cp->act,
                                               p->relu ? CUDNN_ACTIVATION_RELU
                                                       : CUDNN_ACTIVATION_IDENTITY,
                                               CUDNN_PROPAGATE_NAN, 0.0)))
            return s;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* The descriptors, then the algorithm's workspace. */
static cudnnStatus_t conv_plan_make(const cuda_libs *L, cudnnHandle_t h, const conv_params *p,
                                    conv_plan *cp, const char **what) {
    cudnnStatus_t s = conv_desc_make(L, p, cp, what);
    if (s) return s;
    *what = "cudnnGetConvolutionForwardWorkspaceSize";
    return L->dnnGetConvolutionForwardWorkspaceSize(h, cp->x, cp->w, cp->conv, cp->y,
                                                    (cudnnConvolutionFwdAlgo_t)p->algo, &cp->ws);
}

static void conv_desc_free(const cuda_libs *L, conv_plan *cp) {
    if (cp->x) L->dnnDestroyTensorDescriptor(cp->x);
    if (cp->y) L->dnnDestroyTensorDescriptor(cp->y);
    if (cp->b) L->dnnDestroyTensorDescriptor(cp->b);
    if (cp->w) L->dnnDestroyFilterDescriptor(cp->w);
    if (cp->conv) L->dnnDestroyConvolutionDescriptor(cp->conv);
    if (cp->act) L->dnnDestroyActivationDescriptor(cp->act);
}

/* The handle workspace() queries with: tactics are asked for their scratch
** at build time, before any execution context exists. Made once per
** process on the current device; NULL when there is no GPU or cuDNN. */
static cudnnHandle_t g_query;
static pthread_mutex_t g_query_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_query_once = PTHREAD_ONCE_INIT;

static void query_init(void) {
    const cuda_libs *L = cuda_libs_get();
    int n = 0;
    if (!L->dnnCreate || cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return;
    }
    cudnnHandle_t h = NULL;
    if (L->dnnCreate(&h) == CUDNN_STATUS_SUCCESS) g_query = h;
}

/* ------------------------------------------------------------ tactics */
typedef struct conv_variant {
    int algo;         /* cudnnConvolutionFwdAlgo_t; -1: depthwise kernel */
    bool fused;       /* cudnnConvolutionBiasActivationForward */
    bool nhwc;        /* NhwcConv: X/Y/Z NHWC, W KRSC */
} conv_variant;

static bool dnn_loaded(void) { return cuda_libs_get()->dnnConvolutionForward != NULL; }

/* dtype / rank / attribute checks common to every variant */
static bool conv_common(const ir_node *n, const ir_type *const *in, fused_act *act) {
    if (n->n_in < 2 || !in[0] || !in[1]) return false;
    const ir_type *x = in[0], *w = in[1];
    if (!float_type(x->dtype) || w->dtype != x->dtype || x->rank != w->rank || x->rank < 3 ||
        x->rank > 5)
        return false;
    if (n->n_in > 2 && in[2] && (in[2]->dtype != x->dtype || in[2]->rank != 1)) return false;
    act->kind = FUSED_ACT_NONE;
    if (n->op == OP_FusedConv || n->op == OP_NhwcConv) {
        if (n->n_in > 3 && in[3] && in[3]->dtype != x->dtype) return false;
        if (!fused_act_read(n, act, NULL, 0)) return false;
    }
    return ir_attr_int(n, "group", 1) >= 1;
}

static bool concrete(const ir_type *t) {
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

/* Whether the pads are symmetric for every input size this node can see. */
static bool pads_symmetric(const ir_node *n, const ir_type *x, const ir_type *w) {
    int nsp = x->rank - 2;
    conv_window win;
    if (conv_window_read(n, nsp, w->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win, NULL, 0))
        return false;
    if (win.auto_pad == CW_NOTSET) {
        for (int i = 0; i < nsp; i++)
            if (win.pads[i] != win.pads[nsp + i]) return false;
        return true;
    }
    if (win.auto_pad == CW_VALID) return true;
    if (concrete(x) && win.kernel_known) {
        conv_geom g;
        if (conv_geom_forward(&win, x->dims + 2, &g, NULL, 0)) return false;
        for (int i = 0; i < nsp; i++)
            if (g.pb[i] != g.pe[i]) return false;
        return true;
    }
    /* SAME on unknown sizes: symmetric whatever the size when the stride
    ** is 1 and the dilated kernel extent is odd */
    if (!win.kernel_known) return false;
    for (int i = 0; i < nsp; i++)
        if (win.s[i] != 1 || ((win.k[i] - 1) * win.d[i]) % 2) return false;
    return true;
}

/* ---- NhwcConv: its types and tensors seen in NCHW order (X [N,H,W,C] as
** [N,C,H,W], W [M,KH,KW,C] as [M,C,KH,KW], Z like X), so the NCHW code
** above checks and describes them; conv_params.nhwc gives the strides. */
static void dims_to_nchw(int64_t *d) {
    int64_t c = d[3];
    d[3] = d[2], d[2] = d[1], d[1] = c;
}

/* perm/pin: 4 entries. false when the layer is not a 2-D NhwcConv. */
static bool nhwc_types(const ir_node *n, const ir_type *const *in, ir_type *perm,
                       const ir_type **pin) {
    if (n->op != OP_NhwcConv || n->n_in < 2 || !in[0] || !in[1]) return false;
    for (int k = 0; k < 4; k++) {
        pin[k] = NULL;
        if (k >= n->n_in || !in[k]) continue;
        if (k == 2) {
            pin[k] = in[k];
            continue;
        }
        if (in[k]->rank != 4) return false;
        perm[k] = *in[k];
        dims_to_nchw(perm[k].dims);
        pin[k] = &perm[k];
    }
    return true;
}

/* cuDNN's NHWC tensor-core kernels for half types want channel counts that
** are multiples of 8; the pass pads the inputs that are not. */
static bool nhwc_channels_ok(const ir_type *x, const ir_type *w) {
    if (x->dtype == KILN_DTYPE_FLOAT32) return true;
    int64_t c = x->dims[1], m = w->dims[0];
    return c > 0 && m > 0 && c % 8 == 0 && m % 8 == 0;
}

/* ---- cuDNN's heuristic ranking of the forward algorithms, per problem
** (process-wide cache; the query handle's device). rank[a]: position of
** algorithm a among those cuDNN says can run, 99 when it says none; all
** -1 when the heuristic is unavailable. */
#define HEUR_SLOTS 256
typedef struct heur_entry {
    conv_params key;
    signed char rank[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
} heur_entry;
static heur_entry g_heur[HEUR_SLOTS];
static int g_heur_n, g_heur_next;

static int heur_rank(const conv_params *p0, int algo) {
    if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT) return -1;
    conv_params key = *p0;
    key.algo = key.fused = key.relu = 0;
    const cuda_libs *L = cuda_libs_get();
    if (!L->dnnGetConvolutionForwardAlgorithm_v7) return -1;
    pthread_once(&g_query_once, query_init);
    if (!g_query) return -1;
    int r = -1;
    pthread_mutex_lock(&g_query_mu);
    for (int i = 0; i < g_heur_n; i++)
        if (!memcmp(&g_heur[i].key, &key, sizeof key)) {
            r = g_heur[i].rank[algo];
            goto out;
        }
    heur_entry e;
    memset(&e, 0, sizeof e);
    e.key = key;
    memset(e.rank, -1, sizeof e.rank);
    conv_plan cp;
    memset(&cp, 0, sizeof cp);
    const char *what;
    cudnnConvolutionFwdAlgoPerf_t perf[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    if (conv_desc_make(L, &key, &cp, &what) == CUDNN_STATUS_SUCCESS &&
        L->dnnGetConvolutionForwardAlgorithm_v7(g_query, cp.x, cp.w, cp.conv, cp.y,
                                                2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
                                                perf) == CUDNN_STATUS_SUCCESS) {
        memset(e.rank, 99, sizeof e.rank);
        int next = 0;
        for (int i = 0; i < got; i++) {
            int a = (int)perf[i].algo;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || a < 0 ||
                a >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT || e.rank[a] != 99)
                continue;
            e.rank[a] = (signed char)next++;
        }
    }
    conv_desc_free(L, &cp);
    g_heur[g_heur_next] = e;
    g_heur_next = (g_heur_next + 1) % HEUR_SLOTS;
    if (g_heur_n < HEUR_SLOTS) g_heur_n++;
    r = e.rank[algo];
out:
    pthread_mutex_unlock(&g_query_mu);
    return r;
}

/* Whether the variant's algorithm is among the kiln_algo_top best ranked
** (the builder's narrowed search). The fused tactic and implicit
** precomputed GEMM (which runs nearly every problem) always compete, so a
** layer never ends with only candidates that fail. */
static bool algo_in_top(const ir_node *n, const ir_type *const *in, const conv_variant *v) {
    int64_t top = ir_attr_int(n, "kiln_algo_top", 0);
    if (top <= 0 || v->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return true;
    if (!concrete(in[0]) || !concrete(in[1])) return true;
    conv_params p;
    if (conv_params_make(n, in[0]->dtype, in[0]->rank, in[0]->dims, in[1]->dims, &p, NULL, 0))
        return true;
    p.nhwc = v->nhwc;
    int r = heur_rank(&p, v->algo);
    return r < 0 || r < top;
}

static bool dnn_supports_v(const ir_node *n, const ir_type *const *in, const conv_variant *v) {
    ir_type perm[4];
    const ir_type *pin[4];
    if (v->nhwc) {
        if (!nhwc_types(n, in, perm, pin)) return false;
        in = pin;
    } else if (n->op == OP_NhwcConv) {
        return false;
    }
    fused_act act;
    if (!dnn_loaded() || !conv_common(n, in, &act) || !pads_symmetric(n, in[0], in[1]))
        return false;
    /* KILN_CONV_GRAPH=only: half-precision layers are the graph API's
    ** (cuda_conv_graph.c), for A/B timing */
    if (cuda_conv_graph_env() == 2 && in[0]->dtype != KILN_DTYPE_FLOAT32 &&
        cuda_libs_get()->dnnBackendExecute)
        return false;
    if (v->nhwc && (in[0]->rank != 4 || !nhwc_channels_ok(in[0], in[1]))) return false;
    if (v->fused) {
        bool has_b = n->n_in > 2 && in[2];
        if (!has_b || (act.kind != FUSED_ACT_NONE && act.kind != FUSED_ACT_RELU)) return false;
        /* cuDNN fuses an identity activation with implicit precomputed
        ** GEMM only; ReLU with any algorithm */
        if (act.kind != FUSED_ACT_RELU && v->algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
            return false;
    }
    return algo_in_top(n, in, v);
}

static size_t dnn_workspace_v(const ir_node *n, const ir_type *const *in,
                              const conv_variant *v) {
    ir_type perm[4];
    const ir_type *pin[4];
    if (v->nhwc) {
        if (!nhwc_types(n, in, perm, pin)) return SIZE_MAX;
        in = pin;
    }
    const ir_type *x = in[0], *w = in[1];
    if (!concrete(x) || !concrete(w)) return 0; /* asked again on real sizes */
    conv_params p;
    if (conv_params_make(n, x->dtype, x->rank, x->dims, w->dims, &p, NULL, 0)) return SIZE_MAX;
    p.algo = v->algo;
    p.fused = v->fused;
    p.nhwc = v->nhwc;
    fused_act act = {FUSED_ACT_NONE, 0, 0};
    if (n->op == OP_FusedConv || n->op == OP_NhwcConv) fused_act_read(n, &act, NULL, 0);
    p.relu = act.kind == FUSED_ACT_RELU;
    pthread_once(&g_query_once, query_init);
    if (!g_query) return SIZE_MAX;
    const cuda_libs *L = cuda_libs_get();
    conv_plan cp;
    memset(&cp, 0, sizeof cp);
    const char *what;
    pthread_mutex_lock(&g_query_mu); /* a cuDNN handle is not for two threads */
    cudnnStatus_t s = conv_plan_make(L, g_query, &p, &cp, &what);
    pthread_mutex_unlock(&g_query_mu);
    size_t ws = cp.ws;
    conv_desc_free(L, &cp); /* conv_plan_free frees the struct: not here */
    return s == CUDNN_STATUS_SUCCESS ? ws : SIZE_MAX;
}

static int dnn_fail(ref_ctx *rc, const cuda_libs *L, cudnnStatus_t s, const char *what) {
    return ref_fail(rc, "%s: cuDNN error %s", what,
                    L->dnnGetErrorString ? L->dnnGetErrorString(s) : "?");
}

/* The inputs of a conv layer, checked against each other. */
typedef struct conv_io {
    const kiln_tensor *x, *w, *b, *z;
    kiln_tensor *y;
    fused_act act;
} conv_io;

static int conv_io_get(ref_ctx *rc, conv_io *io) {
    const ir_node *n = rc->node;
    memset(io, 0, sizeof *io);
    io->x = rc->in[0];
    io->w = rc->in[1];
    io->b = ref_has(rc, 2) ? rc->in[2] : NULL;
    bool fused_op = n->op == OP_FusedConv || n->op == OP_NhwcConv;
    io->z = fused_op && ref_has(rc, 3) ? rc->in[3] : NULL;
    io->y = rc->out[0];
    io->act.kind = FUSED_ACT_NONE;
    if (fused_op && !fused_act_read(n, &io->act, rc->err, sizeof rc->err))
        return -1;
    kiln_dtype dt = io->x->dtype;
    if (!float_type(dt) || io->w->dtype != dt || io->y->dtype != dt ||
        (io->b && io->b->dtype != dt) || (io->z && io->z->dtype != dt))
        return ref_fail(rc, "conv tensors must share one float type");
    int r = io->x->rank;
    if (r < 3 || r > 5 || io->w->rank != r || io->y->rank != r)
        return ref_fail(rc, "X, W and Y must have the same rank, 3 to 5");
    int64_t M = io->w->dims[0];
    if (io->y->dims[0] != io->x->dims[0] || io->y->dims[1] != M)
        return ref_fail(rc, "the output's batch/channels differ from X's and W's");
    if (io->b && (io->b->rank != 1 || io->b->dims[0] != M))
        return ref_fail(rc, "B must have %lld values", (long long)M);
    if (io->z && !shape_equal(io->z->rank, io->z->dims, r, io->y->dims))
        return ref_fail(rc, "Z must have the output's shape");
    return 0;
}

static int dnn_run_v(ref_ctx *rc, const conv_variant *v) {
    cuda_exec *x = cuda_exec_of(rc);
    const cuda_libs *L = x && x->dev ? x->dev->libs : NULL;
    if (!L || !x->dnn || !L->dnnConvolutionForward)
        return ref_fail(rc, "cuDNN is not available (%s)", L ? L->dnn_path : "no device");
    cuda_plans_trim(x);
    conv_io io;
    if (conv_io_get(rc, &io)) return -1;
    conv_params p;
    int r = io.x->rank;
    if (conv_params_make(rc->node, io.x->dtype, r, io.x->dims, io.w->dims, &p, rc->err,
                         sizeof rc->err))
        return -1;
    p.algo = v->algo;
    p.fused = v->fused;
    p.nhwc = v->nhwc;
    p.relu = io.act.kind == FUSED_ACT_RELU;
    if (v->nhwc && (r != 4 || (io.x->dtype != KILN_DTYPE_FLOAT32 &&
                               (p.x[1] % 8 || p.y[1] % 8))))
        return ref_fail(rc, "NHWC half-precision convolutions need 8k channels (C %lld, M %lld)",
                        (long long)p.x[1], (long long)p.y[1]);
    if (v->fused && (!io.b || (io.act.kind != FUSED_ACT_NONE && io.act.kind != FUSED_ACT_RELU)))
        return ref_fail(rc, "the fused cuDNN tactic needs a bias and ReLU or no activation");
    for (int i = 2; i < r; i++)
        if (io.y->dims[i] != p.y[i + (r == 3 ? 1 : 0)])
            return ref_fail(rc, "the output's spatial dims differ from the convolution's");
    int64_t ny = tensor_numel(io.y);
    if (ny == 0) return 0;
    conv_plan *cp = cuda_plan_get(x, &p, sizeof p);
    if (!cp) {
        if (!(cp = calloc(1, sizeof *cp))) return ref_fail(rc, "out of memory");
        const char *what;
        cudnnStatus_t s = conv_plan_make(L, (cudnnHandle_t)x->dnn, &p, cp, &what);
        if (s) {
            dnn_fail(rc, L, s, what);
            conv_plan_free(L, cp);
            return -1;
        }
        if (!cuda_plan_put(x, &p, sizeof p, cp, conv_plan_free)) return ref_fail(rc, "out of memory");
    }
    if (cp->ws > rc->ws_size || (cp->ws && !rc->ws))
        return ref_fail(rc, "cuDNN needs %zu bytes of workspace, the layer has %zu", cp->ws,
                        rc->ws_size);
    float one = 1.0f, zero = 0.0f;
    cudnnStatus_t s;
    cudnnHandle_t h = (cudnnHandle_t)x->dnn;
    if (v->fused) {
        float a2 = io.z ? 1.0f : 0.0f;
        s = L->dnnConvolutionBiasActivationForward(
            h, &one, cp->x, io.x->data, cp->w, io.w->data, cp->conv,
            (cudnnConvolutionFwdAlgo_t)p.algo, rc->ws, cp->ws, &a2, cp->y,
            io.z ? io.z->data : io.y->data, cp->b, io.b->data, cp->act, cp->y, io.y->data);
        if (s) return dnn_fail(rc, L, s, "cudnnConvolutionBiasActivationForward");
        return 0;
    }
    s = L->dnnConvolutionForward(h, &one, cp->x, io.x->data, cp->w, io.w->data, cp->conv,
                                 (cudnnConvolutionFwdAlgo_t)p.algo, rc->ws, cp->ws, &zero, cp->y,
                                 io.y->data);
    if (s) return dnn_fail(rc, L, s, "cudnnConvolutionForward");
    if (!io.b && !io.z && io.act.kind == FUSED_ACT_NONE) return 0;
    kc_act a = {io.act.kind, io.act.alpha, io.act.beta};
    if (v->nhwc)
        return cuda_fail_if(rc, kc_nhwc_epilogue(kc_dtype(io.x->dtype), io.y->data, ny,
                                                 io.y->dims[1], io.b ? io.b->data : NULL,
                                                 io.z ? io.z->data : NULL, a, cuda_stream_of(rc)),
                            "NHWC conv epilogue");
    int64_t inner = ny / (io.y->dims[0] * io.y->dims[1]);
    return cuda_fail_if(rc, kc_conv_epilogue(kc_dtype(io.x->dtype), io.y->data, ny, inner,
                                             io.y->dims[1], io.b ? io.b->data : NULL,
                                             io.z ? io.z->data : NULL, a, cuda_stream_of(rc)),
                        "conv epilogue");
}

/* NhwcConv: the same, on the tensors' NCHW-ordered views. */
static int nhwc_run_v(ref_ctx *rc, const conv_variant *v) {
    if (rc->n_in < 2 || !rc->in[0] || !rc->in[1] || rc->n_out < 1 || !rc->out[0])
        return ref_fail(rc, "NhwcConv needs X, W and Y");
    kiln_tensor t[5];
    const kiln_tensor *in[4] = {NULL, NULL, NULL, NULL};
    int n_in = rc->n_in < 4 ? rc->n_in : 4;
    for (int k = 0; k < n_in; k++) {
        if (!ref_has(rc, k)) continue;
        if (k == 2) {
            in[k] = rc->in[k];
            continue;
        }
        if (rc->in[k]->rank != 4) return ref_fail(rc, "NhwcConv input %d must have rank 4", k);
        t[k] = *rc->in[k];
        dims_to_nchw(t[k].dims);
        in[k] = &t[k];
    }
    if (rc->out[0]->rank != 4) return ref_fail(rc, "NhwcConv output must have rank 4");
    t[4] = *rc->out[0];
    dims_to_nchw(t[4].dims);
    kiln_tensor *out[1] = {&t[4]};
    ref_ctx sub = *rc;
    sub.n_in = n_in;
    sub.in = in;
    sub.n_out = 1;
    sub.out = out;
    int r = dnn_run_v(&sub, v);
    if (r) memcpy(rc->err, sub.err, sizeof rc->err);
    return r;
}

/* ---- depthwise: group == C == M, one filter per channel, 1-D or 2-D */
static bool dw_supports(const ir_node *n, const ir_type *const *in) {
    fused_act act;
    if (!conv_common(n, in, &act)) return false;
    const ir_type *x = in[0], *w = in[1];
    int64_t G = ir_attr_int(n, "group", 1);
    return x->rank <= 4 && G > 1 && x->dims[1] == G && w->dims[0] == G && w->dims[1] == 1;
}

static int dw_run(ref_ctx *rc) {
    conv_io io;
    if (conv_io_get(rc, &io)) return -1;
    const ir_node *n = rc->node;
    int r = io.x->rank;
    int64_t G = ir_attr_int(n, "group", 1);
    if (r > 4 || io.x->dims[1] != G || io.w->dims[0] != G || io.w->dims[1] != 1)
        return ref_fail(rc, "not a depthwise convolution");
    conv_geom g;
    if (conv_geometry(n, r, io.x->dims, io.w->dims, &g, rc->err, sizeof rc->err)) return -1;
    int nsp = r - 2;
    for (int i = 0; i < nsp; i++)
        if (io.y->dims[2 + i] != g.grid[i])
            return ref_fail(rc, "the output's spatial dims differ from the convolution's");
    for (int i = 0; i < nsp; i++)
        if (g.k[i] > 1024 || g.s[i] > INT32_MAX || g.d[i] > INT32_MAX || g.pb[i] > INT32_MAX)
            return ref_fail(rc, "window attributes out of range");
    kc_dw_geom dg;
    memset(&dg, 0, sizeof dg);
    dg.n = io.x->dims[0];
    dg.c = G;
    int o = nsp == 2 ? 0 : -1; /* 1-D: H = OH = KH = 1 */
    dg.h = o < 0 ? 1 : io.x->dims[2];
    dg.w = io.x->dims[r - 1];
    dg.oh = o < 0 ? 1 : g.grid[0];
    dg.ow = g.grid[nsp - 1];
    dg.kh = o < 0 ? 1 : (int)g.k[0];
    dg.kw = (int)g.k[nsp - 1];
    dg.sh = o < 0 ? 1 : (int)g.s[0];
    dg.sw = (int)g.s[nsp - 1];
    dg.dh = o < 0 ? 1 : (int)g.d[0];
    dg.dw = (int)g.d[nsp - 1];
    dg.pt = o < 0 ? 0 : (int)g.pb[0];
    dg.pl = (int)g.pb[nsp - 1];
    kc_act a = {io.act.kind, io.act.alpha, io.act.beta};
    return cuda_fail_if(rc, kc_dwconv2d(kc_dtype(io.x->dtype), io.x->data, io.w->data,
                                        io.b ? io.b->data : NULL, io.z ? io.z->data : NULL,
                                        io.y->data, &dg, a, cuda_stream_of(rc)),
                        "depthwise conv");
}

/* ---- the tactic table: one tactic per (op, variant) */
#define DEV_OW (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define DNN_VARIANT(VAR, ALGO, FUSED)                                                    \
    static const conv_variant v_##VAR = {ALGO, FUSED, false};                            \
    static bool sup_##VAR(const ir_node *n, const ir_type *const *in) {                  \
        return dnn_supports_v(n, in, &v_##VAR);                                           \
    }                                                                                    \
    static size_t ws_##VAR(const ir_node *n, const ir_type *const *in) {                 \
        return dnn_workspace_v(n, in, &v_##VAR);                                          \
    }                                                                                    \
    static int run_##VAR(ref_ctx *rc) { return dnn_run_v(rc, &v_##VAR); }

DNN_VARIANT(igemm, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, false)
DNN_VARIANT(precomp, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, false)
DNN_VARIANT(gemm, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, false)
DNN_VARIANT(fft_tiling, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, false)
DNN_VARIANT(winograd, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, false)
/* Non-fused Winograd loses about 5e-4 relative in float32 (seen on an H100
** with 5x5 kernels, 2026-12-06): offered for half precisions only. */
DNN_VARIANT(winograd_nf_any, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, false)
static bool sup_winograd_nf(const ir_node *n, const ir_type *const *in) {
    return in[0] && in[0]->dtype != KILN_DTYPE_FLOAT32 && sup_winograd_nf_any(n, in);
}
static size_t ws_winograd_nf(const ir_node *n, const ir_type *const *in) {
    return ws_winograd_nf_any(n, in);
}
static int run_winograd_nf(ref_ctx *rc) { return run_winograd_nf_any(rc); }
DNN_VARIANT(fused, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true)

/* ------------------------------------------------------------ direct Conv */

/* What cuDNN declines (asymmetric pads: it has one pad per side pair):
** Conv / FusedConv by a direct gather kernel, epilogue fused. */
static bool direct_supports(const ir_node *n, const ir_type *const *in) {
    fused_act act;
    if (n->op == OP_NhwcConv || !conv_common(n, in, &act)) return false;
    conv_window win;
    if (conv_window_read(n, in[0]->rank - 2, in[1]->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win,
                         NULL, 0) ||
        !win.kernel_known)
        return false;
    return !pads_symmetric(n, in[0], in[1]);
}

static int direct_run(ref_ctx *rc) {
    conv_io io;
    if (conv_io_get(rc, &io)) return -1;
    const ir_node *n = rc->node;
    int r = io.x->rank, nsp = r - 2;
    int64_t G = ir_attr_int(n, "group", 1), C = io.x->dims[1], M = io.w->dims[0];
    if (G < 1 || C != io.w->dims[1] * G || M % G)
        return ref_fail(rc, "channel counts do not match the group");
    conv_geom g;
    if (conv_geometry(n, r, io.x->dims, io.w->dims, &g, rc->err, sizeof rc->err)) return -1;
    for (int i = 0; i < nsp; i++)
        if (io.y->dims[2 + i] != g.grid[i])
            return ref_fail(rc, "the output's spatial dims differ from the convolution's");
    kc_convt_geom kg;
    memset(&kg, 0, sizeof kg);
    kg.n = io.x->dims[0], kg.c = C, kg.m = M, kg.g = G;
    int lead = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        kg.img[i] = j >= 0 ? g.img[j] : 1;
        kg.grid[i] = j >= 0 ? g.grid[j] : 1;
        kg.k[i] = j >= 0 ? g.k[j] : 1;
        kg.s[i] = j >= 0 ? g.s[j] : 1;
        kg.d[i] = j >= 0 ? g.d[j] : 1;
        kg.pb[i] = j >= 0 ? g.pb[j] : 0;
    }
    kc_act a = {io.act.kind, io.act.alpha, io.act.beta};
    return cuda_fail_if(rc, kc_conv_direct(kc_dtype(io.x->dtype), io.x->data, io.w->data,
                                           io.b ? io.b->data : NULL, io.z ? io.z->data : NULL,
                                           io.y->data, &kg, a, cuda_stream_of(rc)),
                        "direct conv");
}

static const kiln_tactic t_conv_direct = {"cuda_conv_direct_asympad", OP_Conv, 0, DEV_OW,
                                          direct_supports, NULL, direct_run};
static const kiln_tactic t_fconv_direct = {"cuda_fused_conv_direct_asympad", OP_FusedConv, 0,
                                           DEV_OW, direct_supports, NULL, direct_run};

/* ------------------------------------------------------------ ConvTranspose */

/* X, W (and B) of one float type, rank 3..5, W [C, M/G, k...] with known
** dims, a readable window. */
static bool convt_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 2 || !in[0] || !in[1]) return false;
    const ir_type *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    kiln_dtype dt = x->dtype;
    if (dt != KILN_DTYPE_FLOAT32 && dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_BFLOAT16)
        return false;
    int r = x->rank;
    if (r < 3 || r > 5 || w->rank != r || w->dtype != dt) return false;
    if (b && (b->dtype != dt || b->rank != 1)) return false;
    for (int i = 0; i < r; i++)
        if (w->dims[i] < 0) return false;
    int64_t G = ir_attr_int(n, "group", 1);
    if (G < 1 || w->dims[0] % G || (x->dims[1] >= 0 && x->dims[1] != w->dims[0])) return false;
    conv_window win;
    return !conv_window_read(n, r - 2, w->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win, NULL, 0);
}

static int convt_run(ref_ctx *rc) {
    const kiln_tensor *X = rc->in[0], *W = rc->in[1];
    const kiln_tensor *B = ref_has(rc, 2) ? rc->in[2] : NULL;
    kiln_tensor *Y = rc->out[0];
    int r = X->rank, nsp = r - 2;
    kiln_dtype dt = X->dtype;
    if (r < 3 || r > 5 || W->rank != r || W->dtype != dt || Y->dtype != dt ||
        (B && (B->dtype != dt || B->rank != 1)))
        return ref_fail(rc, "ConvTranspose X, W, B and Y must share a float type and rank 3..5");
    int64_t G = ir_attr_int(rc->node, "group", 1), C = X->dims[1], M;
    if (G < 1 || W->dims[0] != C || C % G || __builtin_mul_overflow(W->dims[1], G, &M))
        return ref_fail(rc, "ConvTranspose W must have X's channels, divisible by group");
    if (B && B->dims[0] != M) return ref_fail(rc, "ConvTranspose B must have %lld values",
                                              (long long)M);
    conv_window win;
    conv_geom g;
    if (conv_window_read(rc->node, nsp, W->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win, rc->err,
                         sizeof rc->err) ||
        conv_geom_transpose(&win, rc->node, X->dims + 2, &g, rc->err, sizeof rc->err))
        return -1;
    if (Y->rank != r || Y->dims[0] != X->dims[0] || Y->dims[1] != M)
        return ref_fail(rc, "internal: ConvTranspose output shape");
    for (int i = 0; i < nsp; i++)
        if (Y->dims[2 + i] != g.img[i]) return ref_fail(rc, "internal: ConvTranspose output shape");
    kc_convt_geom kg;
    memset(&kg, 0, sizeof kg);
    kg.n = X->dims[0], kg.c = C, kg.m = M, kg.g = G;
    int lead = 3 - nsp; /* missing spatial dims become size-1 ones in front */
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        kg.img[i] = j >= 0 ? g.img[j] : 1;
        kg.grid[i] = j >= 0 ? g.grid[j] : 1;
        kg.k[i] = j >= 0 ? g.k[j] : 1;
        kg.s[i] = j >= 0 ? g.s[j] : 1;
        kg.d[i] = j >= 0 ? g.d[j] : 1;
        kg.pb[i] = j >= 0 ? g.pb[j] : 0;
    }
    return cuda_fail_if(rc, kc_conv_transpose(kc_dtype(dt), X->data, W->data, B ? B->data : NULL,
                                              Y->data, &kg, cuda_stream_of(rc)),
                        "ConvTranspose");
}

static const kiln_tactic t_convt = {"cuda_conv_transpose_direct", OP_ConvTranspose, 0, DEV_OW,
                                    convt_supports, NULL, convt_run};

/* ------------------------------------------------------------ Col2Im */

/* input [N, C*K, L] of a float type; image_shape and block_shape int64
** vectors of 1..3 values, constant or (rt) read on the host at run time. */
static bool col2im_common(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 3 || !in[0] || !in[1] || !in[2] || in[0]->rank != 3) return false;
    kiln_dtype dt = in[0]->dtype;
    if (dt != KILN_DTYPE_FLOAT32 && dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_BFLOAT16)
        return false;
    for (int i = 1; i < 3; i++)
        if (in[i]->dtype != KILN_DTYPE_INT64 || in[i]->rank != 1 ||
            (in[i]->dims[0] >= 0 && (in[i]->dims[0] < 1 || in[i]->dims[0] > 3)))
            return false;
    return true;
}

static bool col2im_supports(const ir_node *n, const ir_type *const *in) {
    return col2im_common(n, in) && n->in[1] && n->in[1]->const_val && n->in[2] &&
           n->in[2]->const_val;
}

static bool col2im_rt_supports(const ir_node *n, const ir_type *const *in) {
    if (!col2im_common(n, in)) return false;
    bool rt = false;
    for (int i = 1; i < 3; i++) {
        if (n->in[i] && n->in[i]->const_val) continue;
        if (!cuda_param_runtime(n, in, i, false)) return false;
        rt = true;
    }
    return rt;
}

static int col2im_run(ref_ctx *rc) {
    const kiln_tensor *X = rc->in[0];
    kiln_tensor *Y = rc->out[0];
    int64_t img[3], blk[3];
    int ni = cuda_param_i64(rc, 1, img, 3, "Col2Im image_shape");
    if (ni < 0) return -1;
    int nb = cuda_param_i64(rc, 2, blk, 3, "Col2Im block_shape");
    if (nb < 0) return -1;
    if (ni != nb || ni < 1) return ref_fail(rc, "image_shape and block_shape must have 1..3 "
                                            "values each, as many of one as of the other");
    int nsp = ni;
    for (int i = 0; i < nsp; i++)
        if (img[i] < 0 || img[i] >= ((int64_t)1 << 40))
            return ref_fail(rc, "image_shape value %lld is out of range", (long long)img[i]);
    conv_window win;
    conv_geom g;
    if (conv_window_read(rc->node, nsp, blk, CW_DILATIONS, &win, rc->err, sizeof rc->err) ||
        conv_geom_forward(&win, img, &g, rc->err, sizeof rc->err))
        return -1;
    int64_t ksz = 1, L = 1;
    for (int i = 0; i < nsp; i++) ksz *= g.k[i], L *= g.grid[i];
    if (X->rank != 3 || ksz < 1 || X->dims[1] % ksz || X->dims[2] != L)
        return ref_fail(rc, "Col2Im input shape does not match the block geometry (%lld blocks "
                        "of size %lld)", (long long)L, (long long)ksz);
    int64_t C = X->dims[1] / ksz;
    if (Y->dtype != X->dtype || Y->rank != nsp + 2 || Y->dims[0] != X->dims[0] || Y->dims[1] != C)
        return ref_fail(rc, "internal: Col2Im output shape");
    for (int i = 0; i < nsp; i++)
        if (Y->dims[2 + i] != img[i]) return ref_fail(rc, "internal: Col2Im output shape");
    kc_convt_geom kg;
    memset(&kg, 0, sizeof kg);
    kg.n = X->dims[0], kg.c = C, kg.m = C, kg.g = 1;
    int lead = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        kg.img[i] = j >= 0 ? g.img[j] : 1;
        kg.grid[i] = j >= 0 ? g.grid[j] : 1;
        kg.k[i] = j >= 0 ? g.k[j] : 1;
        kg.s[i] = j >= 0 ? g.s[j] : 1;
        kg.d[i] = j >= 0 ? g.d[j] : 1;
        kg.pb[i] = j >= 0 ? g.pb[j] : 0;
    }
    return cuda_fail_if(rc, kc_col2im(kc_dtype(X->dtype), X->data, Y->data, &kg,
                                      cuda_stream_of(rc)),
                        "Col2Im");
}

static const kiln_tactic t_col2im = {"cuda_col2im_direct", OP_Col2Im, 0, DEV_OW,
                                     col2im_supports, NULL, col2im_run};
static const kiln_tactic t_col2im_rt = {"cuda_col2im_direct_rtparams", OP_Col2Im, 0,
                                        DEV_OW | TACTIC_READS_PARAMS, col2im_rt_supports, NULL,
                                        col2im_run};

#define CONV_TACTICS(PFX, NAME, OP)                                                        \
    static const kiln_tactic PFX##_igemm = {"cuda_" NAME "_dnn_igemm", OP, 0, DEV_OW,        \
                                            sup_igemm, ws_igemm, run_igemm};                \
    static const kiln_tactic PFX##_precomp = {"cuda_" NAME "_dnn_igemm_precomp", OP, 0,      \
                                              DEV_OW, sup_precomp, ws_precomp, run_precomp}; \
    static const kiln_tactic PFX##_gemm = {"cuda_" NAME "_dnn_gemm", OP, 0, DEV_OW,          \
                                           sup_gemm, ws_gemm, run_gemm};                    \
    static const kiln_tactic PFX##_fft = {"cuda_" NAME "_dnn_fft_tiling", OP, 0, DEV_OW,     \
                                          sup_fft_tiling, ws_fft_tiling, run_fft_tiling};   \
    static const kiln_tactic PFX##_wino = {"cuda_" NAME "_dnn_winograd", OP, 0, DEV_OW,      \
                                           sup_winograd, ws_winograd, run_winograd};        \
    static const kiln_tactic PFX##_wino_nf = {"cuda_" NAME "_dnn_winograd_nf", OP, 0,        \
                                              DEV_OW, sup_winograd_nf, ws_winograd_nf,      \
                                              run_winograd_nf};                             \
    static const kiln_tactic PFX##_fused = {"cuda_" NAME "_dnn_fused_precomp", OP, 0,        \
                                            DEV_OW, sup_fused, ws_fused, run_fused};        \
    static const kiln_tactic PFX##_dw = {"cuda_" NAME "_dw_direct", OP, 0, DEV_OW,           \
                                         dw_supports, NULL, dw_run};

CONV_TACTICS(t_conv, "conv", OP_Conv)
CONV_TACTICS(t_fconv, "fused_conv", OP_FusedConv)

/* NhwcConv: the same algorithms on NHWC descriptors */
#define NHWC_VARIANT(VAR, ALGO, FUSED, HALF_ONLY)                                          \
    static const conv_variant vn_##VAR = {ALGO, FUSED, true};                              \
    static bool supn_##VAR(const ir_node *n, const ir_type *const *in) {                   \
        if (HALF_ONLY && (!in[0] || in[0]->dtype == KILN_DTYPE_FLOAT32)) return false;     \
        return dnn_supports_v(n, in, &vn_##VAR);                                            \
    }                                                                                      \
    static size_t wsn_##VAR(const ir_node *n, const ir_type *const *in) {                  \
        return dnn_workspace_v(n, in, &vn_##VAR);                                           \
    }                                                                                      \
    static int runn_##VAR(ref_ctx *rc) { return nhwc_run_v(rc, &vn_##VAR); }              \
    static const kiln_tactic t_nhwc_##VAR = {"cuda_nhwc_conv_dnn_" #VAR, OP_NhwcConv, 0,    \
                                             DEV_OW, supn_##VAR, wsn_##VAR, runn_##VAR};

NHWC_VARIANT(fused_precomp, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, false)
NHWC_VARIANT(igemm_precomp, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, false, false)
NHWC_VARIANT(igemm, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, false, false)
NHWC_VARIANT(gemm, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, false, false)
NHWC_VARIANT(winograd, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, false, false)
NHWC_VARIANT(winograd_nf, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, false, true)
NHWC_VARIANT(fft_tiling, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, false, false)
/* bias + residual + ReLU fused with the other algorithms (ReLU layers) */
NHWC_VARIANT(fused_igemm, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, false)
NHWC_VARIANT(fused_gemm, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, false)
NHWC_VARIANT(fused_winograd, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, true, false)
NHWC_VARIANT(fused_winograd_nf, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, true, true)

const kiln_tactic *const cuda_tactics_conv[] = {
    &t_conv_dw,       &t_conv_fused,  &t_conv_precomp, &t_conv_igemm, &t_conv_gemm,
    &t_conv_wino,     &t_conv_wino_nf, &t_conv_fft,
    &t_fconv_dw,      &t_fconv_fused, &t_fconv_precomp, &t_fconv_igemm, &t_fconv_gemm,
    &t_fconv_wino,    &t_fconv_wino_nf, &t_fconv_fft,
    &t_nhwc_fused_precomp, &t_nhwc_igemm_precomp, &t_nhwc_igemm, &t_nhwc_gemm,
    &t_nhwc_winograd, &t_nhwc_winograd_nf, &t_nhwc_fft_tiling, &t_nhwc_fused_igemm,
    &t_nhwc_fused_gemm, &t_nhwc_fused_winograd, &t_nhwc_fused_winograd_nf,
    &t_convt, &t_col2im, &t_col2im_rt, &t_conv_direct, &t_fconv_direct, NULL,
};
