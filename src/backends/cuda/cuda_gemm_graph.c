/* cuda_gemm_graph.c: FusedGemm in FP16/BF16 through cuDNN's graph API
** (cuda_graph.h), the matmul sibling of cuda_conv_graph.c, for the layers
** whose activation cuBLASLt cannot apply in its epilogue.
**
** Why: cuBLASLt's GELU epilogue is the tanh form, which is no stand-in for
** the exact erf GELU (bench/gelu_forms.py), so cuda_gemm.c runs BERT's
** FFN-in layer (768 -> 3072, bias + erf GELU) as cuBLASLt with the bias and
** then a second pass of ours over Y (on an H100 at batch 128: 0.191 ms
** against 0.115 ms for the FFN-out GEMM of the same FLOP count). cuDNN 9's
** graph fuses a matmul with its pointwise successors, CUDNN_POINTWISE_GELU_FWD
** being the erf GELU, in one kernel.
**
** One operation graph per layer: matmul (A [b,M,K], B [b,K,N], the strides
** expressing transA / transB; FP32 compute, output a virtual FP32 tensor)
** -> + C (a bias row broadcast as [1,1,N], or a C of the output's shape)
** -> + R (the residual) -> activation, the last op writing Y [b,M,N] in the
** layer's type. The intermediates stay FP32: one rounding, at the end.
** Batches: a B shared by the batch (no transA) folds the batch into M, as
** cuda_gemm.c does; A and B with the same batch dims run as cuDNN's batch;
** other broadcasts are declined.
**
** Offered (supports) for FusedGemm with alpha 1, beta 1 (or no C) and an
** activation cuBLASLt leaves to our second pass: Gelu (erf: GELU_FWD),
** SiLU (SWISH_FWD, its beta at the default 1: x * sigmoid(x)), Sigmoid
** (SIGMOID_FWD), Tanh (TANH_FWD) always; Relu (RELU_FWD) and GeluTanh
** (GELU_APPROX_TANH_FWD) only with a residual or a C of the output's shape,
** where cuda_gemm.c cannot fuse them either. Clip, LeakyRelu, HardSwish,
** HardSigmoid stay with cuda_gemm.c. Dims must be concrete (the IR's, so a
** dynamic layer is not offered: no plan built at inference time).
**
** Tactics cuda_fused_gemm_graph_h<k>, k = 0..3: heuristic mode A's k-th
** engine configuration. workspace() builds that plan on the process-wide
** query handle (cg_workspace: SIZE_MAX when cuDNN refuses the graph, the
** configuration, its alignment or workspace, or the engine reduces in
** reduced precision) and caches the answer by problem; run() builds the
** plan once per exec and problem (the exec's plan cache) and keeps the
** variant pack while pointers stay. Runtime-compiled engines (NVRTC; the
** plan log marks them and their finalize time) are kept: the builder times
** every tactic, a problem's plan is built once on the query handle and
** once per exec, and only this one tactic family of four configs per
** distinct shape pays it (BERT: one shape for its 12 FFN-in layers).
** Should no configuration build at run time (another alignment than at
** build), the layer runs through cuda_gemm.c's cuBLASLt path instead
** (counted: cuda_gemm_graph_fallbacks), never failing for want of a plan.
**
** Environment: the tactics are opt-in. On an H100 (cuDNN 9.14, 2026-12-07)
** the best configuration ran BERT's FFN-in (M 16384, K 768, N 3072, bias +
** erf GELU) in 0.2037 ms against 0.1998 for cuBLASLt + our GELU pass: the
** fused kernel's GEMM is far slower than cuBLASLt's (380 vs 645 TFLOP/s), so
** the fusion buys nothing there, while its runtime compilation costs build
** time. KILN_GEMM_GRAPH=1 offers them beside cuBLASLt + our epilogue
** (unset or 0: none), =only also withdraws cuda_gemm.c's cuBLASLt tactics
** from the FusedGemm layers these take; KILN_GEMM_GRAPH_LOG=1 prints every
** plan built or refused (problem, config, engine, workspace, runtime
** compilation, finalize time) to stderr. */
#include "cuda_graph.h"
#include "cuda_lt.h"
#include "../../ops/fused.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ environment */
static int g_env_mode = -1; /* 0 off, 1 on, 2 only */
static int g_env_log;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static atomic_int g_fallbacks;

static void env_init(void) {
    const char *e = getenv("KILN_GEMM_GRAPH");
    /* opt-in: no faster than cuBLASLt + our epilogue (file comment) */
    g_env_mode = e && !strcmp(e, "1") ? 1 : e && !strcmp(e, "only") ? 2 : 0;
    const char *l = getenv("KILN_GEMM_GRAPH_LOG");
    g_env_log = l && l[0] == '1';
}

int cuda_gemm_graph_env(void) {
    pthread_once(&g_env_once, env_init);
    return g_env_mode;
}

static bool log_on(void) {
    pthread_once(&g_env_once, env_init);
    return g_env_log != 0;
}

int cuda_gemm_graph_fallbacks(void) { return atomic_load(&g_fallbacks); }

/* ------------------------------------------------------------ the problem */
#define GG_TAG 0x4747454d4d000001ll /* "GGEMM" v1 */

/* unique ids of the graph's tensors (virtual ones from GG_UID_V) */
enum { GG_UID_A = 1, GG_UID_B, GG_UID_Y, GG_UID_C, GG_UID_R, GG_UID_V = 16 };
enum { GG_C_NONE = 0, GG_C_ROW, GG_C_FULL };

/* A graph GEMM problem, complete: the plan cache key. Zeroed with memset
** before filling (memcmp'd). */
typedef struct gg_key {
    int64_t tag;
    int64_t dt;              /* kiln_dtype (FP16 or BF16) */
    int64_t batch, m, n, k;  /* Y [batch, m, n] */
    int64_t ta, tb;          /* A stored [k, m], B stored [n, k] */
    int64_t c_kind;          /* GG_C_* */
    int64_t has_r;
    int64_t act;             /* FUSED_ACT_* */
    int64_t align[5];        /* byte alignment of A, B, Y, C, R (<= 16) */
    int64_t mode, index;     /* the configuration asked for */
} gg_key;
_Static_assert(sizeof(gg_key) <= CG_KEY_MAX, "gg_key fits the workspace cache");

static void errf(char *err, size_t n, const char *msg) {
    if (err && n) snprintf(err, n, "%s", msg);
}

static bool half_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* cuDNN's pointwise mode for activation kind a, -1 where none matches the
** reference's formula (fused.h). */
static int act_mode(int a) {
    switch (a) {
    case FUSED_ACT_GELU: return CUDNN_POINTWISE_GELU_FWD;
    case FUSED_ACT_GELU_TANH: return CUDNN_POINTWISE_GELU_APPROX_TANH_FWD;
    case FUSED_ACT_SILU: return CUDNN_POINTWISE_SWISH_FWD;
    case FUSED_ACT_SIGMOID: return CUDNN_POINTWISE_SIGMOID_FWD;
    case FUSED_ACT_TANH: return CUDNN_POINTWISE_TANH_FWD;
    case FUSED_ACT_RELU: return CUDNN_POINTWISE_RELU_FWD;
    default: return -1;
    }
}

static int64_t numel(int r, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < r; i++) n *= d[i];
    return n;
}

/* One operand or the output: rank and dims (rank -1: absent). */
typedef struct gg_shape {
    int rank;
    const int64_t *dims;
} gg_shape;

/* Fills the geometry and the fused ops of k (not alignments nor config)
** from node n and the concrete shapes of A, B, C (rank -1: absent) and
** whether R is there. 0, or -1 with a message when the graph tactic does
** not take the case. */
static int gg_geometry(const ir_node *n, gg_shape a, gg_shape b, gg_shape c, bool has_r,
                       gg_key *k, char *err, size_t nerr) {
    fused_act act;
    if (!fused_act_read(n, &act, NULL, 0)) return errf(err, nerr, "unreadable activation"), -1;
    if (act_mode(act.kind) < 0) return errf(err, nerr, "activation not in cuDNN's graph"), -1;
    if (ir_attr_float(n, "alpha", 1.0f) != 1.0f) return errf(err, nerr, "alpha != 1"), -1;
    float beta = ir_attr_float(n, "beta", 1.0f);
    if (beta == 0.0f) c.rank = -1;
    else if (c.rank >= 0 && beta != 1.0f) return errf(err, nerr, "beta != 1"), -1;
    int ra = a.rank, rb = b.rank;
    if (ra < 2 || rb < 2) return errf(err, nerr, "A and B need rank >= 2"), -1;
    bool ta = ir_attr_int(n, "transA", 0) != 0, tb = ir_attr_int(n, "transB", 0) != 0;
    int64_t M = a.dims[ra - (ta ? 1 : 2)], K = a.dims[ra - (ta ? 2 : 1)];
    int64_t kb = b.dims[rb - (tb ? 1 : 2)], N = b.dims[rb - (tb ? 2 : 1)];
    if (K != kb) return errf(err, nerr, "inner dims differ"), -1;
    if (M < 1 || N < 1 || K < 1) return errf(err, nerr, "empty product"), -1;
    int64_t nba = numel(ra - 2, a.dims), nbb = numel(rb - 2, b.dims);
    if (nba < 1 || nbb < 1) return errf(err, nerr, "empty batch"), -1;
    int64_t batch = 1, rows = M;
    if (nbb == 1 && (!ta || nba == 1)) {
        rows = M * nba; /* B shared: the batch folds into M */
    } else if (ra == rb && !memcmp(a.dims, b.dims, sizeof(int64_t) * (size_t)(ra - 2))) {
        batch = nba;
    } else {
        return errf(err, nerr, "broadcast batch dims"), -1;
    }
    int64_t ny = batch * rows * N;
    int ck = GG_C_NONE;
    if (c.rank >= 0) {
        int64_t cn = numel(c.rank, c.dims);
        if (cn == ny) ck = GG_C_FULL; /* first, as cuda_gemm.c (M = 1: both) */
        else if (c.rank >= 1 && cn == N && c.dims[c.rank - 1] == N) ck = GG_C_ROW;
        else return errf(err, nerr, "C broadcasts other than along the rows"), -1;
    }
    /* cuBLASLt fuses ReLU and the tanh GELU itself unless a C of the
    ** output's shape or R takes its C slot: leave those to cuda_gemm.c */
    if ((act.kind == FUSED_ACT_RELU || act.kind == FUSED_ACT_GELU_TANH) && ck != GG_C_FULL &&
        !has_r)
        return errf(err, nerr, "cuBLASLt fuses this activation"), -1;
    k->tag = GG_TAG;
    k->batch = batch, k->m = rows, k->n = N, k->k = K;
    k->ta = ta, k->tb = tb;
    k->c_kind = ck;
    k->has_r = has_r;
    k->act = act.kind;
    return 0;
}

/* ------------------------------------------------------------ the graph */
/* The operation graph of k on handle h: matmul -> [+C] -> [+R] -> act. */
static cudnnStatus_t gg_graph_make(cg_build *b, cudnnHandle_t h, const void *key,
                                   cudnnBackendDescriptor_t *graph) {
    const gg_key *k = key;
    cudnnDataType_t t = k->dt == KILN_DTYPE_BFLOAT16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    int64_t B = k->batch, M = k->m, N = k->n, K = k->k;
    int64_t ad[3] = {B, M, K}, bd[3] = {B, K, N}, yd[3] = {B, M, N}, cd[3] = {1, 1, N};
    int64_t as[3] = {M * K, k->ta ? 1 : K, k->ta ? M : 1};
    int64_t bs[3] = {K * N, k->tb ? 1 : N, k->tb ? K : 1};
    int64_t ys[3] = {M * N, N, 1}, cs[3] = {N, N, 1};
    cudnnStatus_t s;
    cudnnBackendDescriptor_t ta, tb, ty, tc = NULL, tr = NULL, cur, mm, op, ops[4];
    int n_ops = 0, n_pw = (k->c_kind ? 1 : 0) + (k->has_r ? 1 : 0) + (k->act ? 1 : 0);
    if ((s = cg_tensor(b, GG_UID_A, t, 3, ad, as, k->align[0], false, &ta)) ||
        (s = cg_tensor(b, GG_UID_B, t, 3, bd, bs, k->align[1], false, &tb)) ||
        (s = cg_tensor(b, GG_UID_Y, t, 3, yd, ys, k->align[2], false, &ty)) ||
        (k->c_kind == GG_C_ROW &&
         (s = cg_tensor(b, GG_UID_C, t, 3, cd, cs, k->align[3], false, &tc))) ||
        (k->c_kind == GG_C_FULL &&
         (s = cg_tensor(b, GG_UID_C, t, 3, yd, ys, k->align[3], false, &tc))) ||
        (k->has_r && (s = cg_tensor(b, GG_UID_R, t, 3, yd, ys, k->align[4], false, &tr))))
        return s;
    if ((s = cg_new(b, CUDNN_BACKEND_MATMUL_DESCRIPTOR, &mm))) return s;
    GSET(b, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f);
    GFIN(b, mm, "matmul");
    /* its output: Y itself, or a virtual FP32 tensor the pointwise ops read */
    int64_t vuid = GG_UID_V;
    if (n_pw) {
        if ((s = cg_tensor(b, vuid++, f, 3, yd, ys, 16, true, &cur))) return s;
    } else {
        cur = ty;
    }
    if ((s = cg_new(b, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, &op))) return s;
    GSET(b, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ta);
    GSET(b, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tb);
    GSET(b, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cur);
    GSET(b, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm);
    GFIN(b, op, "matmul operation");
    ops[n_ops++] = op;
    /* pointwise chain, the last op writing Y */
    int left = n_pw;
    for (int step = 0; step < 3; step++) {
        bool on = step == 0 ? k->c_kind != 0 : step == 1 ? k->has_r != 0 : k->act != 0;
        if (!on) continue;
        cudnnBackendDescriptor_t out;
        if (--left == 0) out = ty;
        else if ((s = cg_tensor(b, vuid++, f, 3, yd, ys, 16, true, &out))) return s;
        cudnnPointwiseMode_t pm =
            step < 2 ? CUDNN_POINTWISE_ADD : (cudnnPointwiseMode_t)act_mode((int)k->act);
        if ((s = cg_pointwise(b, pm, cur, step == 0 ? tc : step == 1 ? tr : NULL, out,
                              &ops[n_ops])))
            return s;
        n_ops++;
        cur = out;
    }
    return cg_graph(b, h, ops, n_ops, graph);
}

static void gg_log(const void *key, const cg_plan *p, int mode, int index, cudnnStatus_t s,
                   const char *what) {
    if (!log_on()) return;
    const gg_key *k = key;
    const cuda_libs *L = cuda_libs_get();
    static const char *const ck[] = {"none", "row", "full"};
    fprintf(stderr,
            "kiln gemm graph: %s b=%lld m=%lld n=%lld k=%lld ta=%d tb=%d c=%s r=%d act=%s "
            "align=%lld,%lld,%lld: %s cfg %d -> %s%s%s (engine %lld, workspace %lld%s, "
            "%.0f ms)\n",
            k->dt == KILN_DTYPE_BFLOAT16 ? "bf16" : "f16", (long long)k->batch,
            (long long)k->m, (long long)k->n, (long long)k->k, (int)k->ta, (int)k->tb,
            ck[k->c_kind], (int)k->has_r, fused_act_name((int)k->act), (long long)k->align[0],
            (long long)k->align[1], (long long)k->align[2],
            mode == CG_MODE_A ? "mode A" : "fallback", index,
            s ? (L->dnnGetErrorString ? L->dnnGetErrorString(s) : "refused") : "ok",
            s ? ": " : "", s ? what : "", (long long)p->engine, (long long)p->ws,
            p->rtc ? ", runtime-compiled" : "", p->build_ms);
}

/* The cg_problem of k (which must outlive it). */
static cg_problem gg_problem(const gg_key *k) {
    cg_problem pr = {k, sizeof *k, (int)k->mode, (int)k->index, gg_graph_make, gg_log};
    return pr;
}

/* ------------------------------------------------------------ tactics */
typedef struct gg_variant {
    int mode, index;
} gg_variant;

static bool concrete(const ir_type *t) {
    if (t->rank < 0) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

static gg_shape shape_of(const ir_type *t) {
    gg_shape s = {t ? t->rank : -1, t ? t->dims : NULL};
    return s;
}

/* The key of the layer's graph on concrete types (alignments 16), without
** the configuration. 0, or -1 (message in err) when not taken. */
static int gg_key_types(const ir_node *n, const ir_type *const *in, gg_key *k, char *err,
                        size_t nerr) {
    memset(k, 0, sizeof *k);
    if (n->op != OP_FusedGemm || n->n_in < 2 || !in[0] || !in[1])
        return errf(err, nerr, "not a FusedGemm with A and B"), -1;
    const ir_type *c = n->n_in > 2 ? in[2] : NULL, *r = n->n_in > 3 ? in[3] : NULL;
    kiln_dtype dt = in[0]->dtype;
    if (!half_type(dt) || in[1]->dtype != dt || (c && c->dtype != dt) || (r && r->dtype != dt))
        return errf(err, nerr, "graph GEMM takes FP16 or BF16 tensors of one type"), -1;
    if (!concrete(in[0]) || !concrete(in[1]) || (c && !concrete(c)) || (r && !concrete(r)))
        return errf(err, nerr, "dims not concrete"), -1;
    if (gg_geometry(n, shape_of(in[0]), shape_of(in[1]), shape_of(c), r != NULL, k, err, nerr))
        return -1;
    if (r && numel(r->rank, r->dims) != k->batch * k->m * k->n)
        return errf(err, nerr, "R does not have the output's shape"), -1;
    k->dt = dt;
    for (int i = 0; i < 5; i++) k->align[i] = 16;
    return 0;
}

static bool gg_takes(const ir_node *n, const ir_type *const *in) {
    if (!cg_api()) return false;
    gg_key k;
    return gg_key_types(n, in, &k, NULL, 0) == 0;
}

static bool gg_supports(const ir_node *n, const ir_type *const *in, const gg_variant *v) {
    (void)v;
    return cuda_gemm_graph_env() != 0 && gg_takes(n, in);
}

static size_t gg_workspace(const ir_node *n, const ir_type *const *in, const gg_variant *v) {
    gg_key k;
    if (gg_key_types(n, in, &k, NULL, 0)) return SIZE_MAX;
    k.mode = v->mode;
    k.index = v->index;
    cg_problem pr = gg_problem(&k);
    return cg_workspace(&pr);
}

static const gg_variant gv_first = {CG_MODE_A, 0};

bool cuda_gemm_graph_replaces(const ir_node *n, const ir_type *const *in) {
    return cuda_gemm_graph_env() == 2 && gg_takes(n, in) &&
           gg_workspace(n, in, &gv_first) != SIZE_MAX;
}

static gg_shape tshape(const kiln_tensor *t) {
    gg_shape s = {t ? t->rank : -1, t ? t->dims : NULL};
    return s;
}

static int gg_run(ref_ctx *rc, const gg_variant *v) {
    cuda_exec *x = cuda_exec_of(rc);
    const cuda_libs *L = x && x->dev ? x->dev->libs : NULL;
    if (!L || !x->dnn || !L->dnnBackendExecute)
        return ref_fail(rc, "cuDNN's graph API is not available (%s)",
                        L ? L->dnn_path : "no device");
    cuda_plans_trim(x);
    const ir_node *n = rc->node;
    if (rc->n_in < 2 || !ref_has(rc, 0) || !ref_has(rc, 1) || rc->n_out < 1 || !rc->out[0])
        return ref_fail(rc, "FusedGemm needs A, B and Y");
    const kiln_tensor *A = rc->in[0], *B = rc->in[1];
    const kiln_tensor *C = ref_has(rc, 2) ? rc->in[2] : NULL;
    const kiln_tensor *R = ref_has(rc, 3) ? rc->in[3] : NULL;
    kiln_tensor *Y = rc->out[0];
    kiln_dtype dt = A->dtype;
    if (!half_type(dt) || B->dtype != dt || Y->dtype != dt || (C && C->dtype != dt) ||
        (R && R->dtype != dt))
        return ref_fail(rc, "graph GEMM tensors must share FP16 or BF16");
    gg_key k;
    memset(&k, 0, sizeof k);
    if (gg_geometry(n, tshape(A), tshape(B), tshape(C), R != NULL, &k, rc->err,
                    sizeof rc->err))
        return -1;
    int64_t ny = k.batch * k.m * k.n;
    if (tensor_numel(Y) != ny) return ref_fail(rc, "the output does not have the product's size");
    if (R && !shape_equal(R->rank, R->dims, Y->rank, Y->dims))
        return ref_fail(rc, "R does not have the output's shape");
    if (k.c_kind == GG_C_NONE) C = NULL; /* beta 0 */
    k.dt = dt;
    k.align[0] = cg_ptr_align(A->data);
    k.align[1] = cg_ptr_align(B->data);
    k.align[2] = cg_ptr_align(Y->data);
    k.align[3] = C ? cg_ptr_align(C->data) : 16;
    k.align[4] = R ? cg_ptr_align(R->data) : 16;
    k.mode = v->mode;
    k.index = v->index;
    cg_problem pr = gg_problem(&k);
    cg_plan *p = cg_plan_for(rc, &pr);
    if (!p) {
        /* no configuration builds here (not the build's alignment?):
        ** cuBLASLt and our epilogue instead */
        atomic_fetch_add(&g_fallbacks, 1);
        if (log_on())
            fprintf(stderr, "kiln gemm graph: no plan at run time (%s); cuBLASLt runs it\n",
                    rc->err);
        rc->err[0] = 0;
        return cuda_gemm_lt_run(rc);
    }
    int64_t uid[5];
    void *ptr[5];
    int nu = 0;
    uid[nu] = GG_UID_A, ptr[nu++] = A->data;
    uid[nu] = GG_UID_B, ptr[nu++] = B->data;
    uid[nu] = GG_UID_Y, ptr[nu++] = Y->data;
    if (C) uid[nu] = GG_UID_C, ptr[nu++] = C->data;
    if (R) uid[nu] = GG_UID_R, ptr[nu++] = R->data;
    return cg_execute(rc, p, nu, uid, ptr);
}

/* ------------------------------------------------------------ the table */
#define DEV_OW (TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT)
#define GG_TACTIC(K)                                                                       \
    static const gg_variant gv_h##K = {CG_MODE_A, K};                                      \
    static bool gsup_h##K(const ir_node *n, const ir_type *const *in) {                    \
        return gg_supports(n, in, &gv_h##K);                                               \
    }                                                                                      \
    static size_t gws_h##K(const ir_node *n, const ir_type *const *in) {                   \
        return gg_workspace(n, in, &gv_h##K);                                              \
    }                                                                                      \
    static int grun_h##K(ref_ctx *rc) { return gg_run(rc, &gv_h##K); }                     \
    static const kiln_tactic tg_h##K = {"cuda_fused_gemm_graph_h" #K, OP_FusedGemm, 0,      \
                                        DEV_OW, gsup_h##K, gws_h##K, grun_h##K};

GG_TACTIC(0)
GG_TACTIC(1)
GG_TACTIC(2)
GG_TACTIC(3)

const kiln_tactic *const cuda_tactics_gemm_graph[] = {&tg_h0, &tg_h1, &tg_h2, &tg_h3, NULL};

int cuda_gemm_graph_probe(const kiln_tactic *t, const ir_node *n, const ir_type *const *in,
                          char *err, size_t nerr) {
    static const gg_variant *const vs[] = {&gv_h0, &gv_h1, &gv_h2, &gv_h3};
    const gg_variant *v = NULL;
    for (int i = 0; cuda_tactics_gemm_graph[i]; i++)
        if (cuda_tactics_gemm_graph[i] == t) v = vs[i];
    if (!v) return errf(err, nerr, "not a graph GEMM tactic"), -1;
    gg_key k;
    if (gg_key_types(n, in, &k, err, nerr)) return -1;
    k.mode = v->mode;
    k.index = v->index;
    cg_problem pr = gg_problem(&k);
    return cg_probe(&pr, err, nerr);
}
