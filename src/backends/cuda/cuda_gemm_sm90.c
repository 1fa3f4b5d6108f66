/* cuda_gemm_sm90.c: FusedGemm in FP16/BF16 through our SM90 (Hopper) GEMM
** with a fused epilogue (kernels/gemm_sm90*.cu, on CUTLASS headers):
**   Y = act(alpha * A B + bias + beta * C + R)
** in one kernel, the activation applied to the FP32 accumulators before the
** store. Why: BERT's FFN-in layer (bias + exact erf GELU) otherwise runs as
** cuBLASLt with the bias and then a second pass of ours over Y
** (cuda_gemm.c), since cuBLASLt's GELU epilogue is the tanh form.
**
** Offered (supports) only where the kernels are built (CUTLASS found, sm_90a
** in the gencode list) and the current device is compute capability 9.0,
** for FusedGemm layers with: A [..., M, K] (batch dims fold into M), B
** [K, N] (leading dims of 1 allowed), no transA / transB, K and N concrete
** multiples of 8, every input FP16 or BF16 of one type, the activations
** and C forms the tactic's configuration is compiled for
** (kernels/gemm_sm90_cfg.h: no activation, Relu and erf GELU as
** compile-time instantiations, the rest through 128x128_pp_c1x1's run-time
** one; the FFN-in candidates take FP16 GELU without C only; supports()
** asks the kernels, no plan made); C absent, a bias row of N elements
** with beta 1 (the kernel's bias), or of the output's shape (the kernel's
** C with beta) when there is no residual R; R (the output's shape) is the
** kernel's C with beta 1. Anything else is declined to the
** cuBLASLt tactics.
**
** run() re-checks the concrete problem (dims that were symbolic at build
** time, 16-byte alignment of every pointer); a problem the kernel cannot
** take runs through cuda_gemm.c's cuBLASLt path instead (counted:
** cuda_gemm_sm90_fallbacks, so tests see that the kernel really ran). The
** kernel's launch parameters (CUTLASS's TMA descriptors) are made once per
** problem and pointers and kept in the exec's plan cache: the builder times
** run() between two events, host work included. No workspace: the
** persistent, non-split schedules need none (the plan refuses one that
** would).
** Tactics cuda_fused_gemm_sm90_<tile>_<schedule>_<cluster>[_<variant>], one
** per kernel configuration (kernels/gemm_kernels.h, gemm_sm90_cfg.h: _e64 a
** wider epilogue subtile): the builder times them against cuBLASLt and
** keeps the fastest.
**
** On by default since session 8 (KILN_GEMM_SM90=0 withdraws them). In
** session 7 (one H100) they were opt-in: the erf GELU, chosen at run time
** in the epilogue, made FFN-in 0.225 ms against 0.206 for cuBLASLt + our
** GELU pass. With the activation a compile-time parameter, the GELU
** instantiations without C, the branch-free erf GELU
** (kernels/gemm_sm90_gelu.h) and the FFN-in candidates, one H200
** (bench/RESULTS.md, session 8): FFN-in 0.148 ms (128x128 ping-pong,
** 64-wide epilogue subtile) against 0.192 ms, FFN-out 0.115 against
** 0.119, test_cuda_gemm_sm90 1565 passed (plus 9 false failures of the
** test's own FP16 tail bound, since fixed), and BERT-base FP16 b128 6.575 ms
** with the tactics against 6.783 ms without, the builder picking them for
** all 48 GEMMs. */
#include "cuda_lt.h"
#include "kernels/gemm_kernels.h"
#include "kernels/gemm_sm90_cfg.h"
#include "../../ops/fused.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int g_runs, g_fallbacks;

int cuda_gemm_sm90_runs(void) { return atomic_load(&g_runs); }
int cuda_gemm_sm90_fallbacks(void) { return atomic_load(&g_fallbacks); }

/* Whether the current device runs the kernels: built, and compute
** capability 9.0 exactly (sm_90a code runs nowhere else). Cached per
** ordinal: 0 unknown, 1 yes, 2 no. */
#define SM90_MAX_DEV 64
static atomic_int g_dev_ok[SM90_MAX_DEV];

static bool sm90_device_ok(void) {
    if (!kc_gemm_sm90_built()) return false;
    int d = 0;
    if (cudaGetDevice(&d) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    if (d < 0 || d >= SM90_MAX_DEV) return false;
    int v = atomic_load(&g_dev_ok[d]);
    if (v == 0) {
        int ma = 0, mi = 0;
        bool read = cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, d) ==
                        cudaSuccess &&
                    cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, d) ==
                        cudaSuccess;
        if (!read) cudaGetLastError(); /* only our own error is cleared */
        v = read && ma == 9 && mi == 0 ? 1 : 2;
        atomic_store(&g_dev_ok[d], v);
    }
    return v == 1;
}

static bool half_type(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* How the layer maps onto the kernel, from types (build time, dims may be
** symbolic: equal symbols compare equal) or concrete tensors (run time). */
typedef struct sm90_map {
    int64_t m, n, k;     /* m < 0: symbolic */
    int c_role;          /* 0 none, 1 bias, 2 the kernel's C (scaled by beta) */
    bool r;              /* R is the kernel's C (beta 1) */
    float alpha, beta;
    fused_act act;
} sm90_map;

/* false when the kernel does not take the layer. d[i]/rank[i]: input i's
** dims (rank -1: absent). */
static bool sm90_plan(const ir_node *n, const int *rank, const int64_t *const *d,
                      const kiln_dtype *dt, sm90_map *mp) {
    memset(mp, 0, sizeof *mp);
    if (n->op != OP_FusedGemm || n->n_in < 2 || rank[0] < 2 || rank[1] < 2) return false;
    if (ir_attr_int(n, "transA", 0) || ir_attr_int(n, "transB", 0)) return false;
    if (!fused_act_read(n, &mp->act, NULL, 0)) return false;
    mp->alpha = ir_attr_float(n, "alpha", 1.0f);
    mp->beta = ir_attr_float(n, "beta", 1.0f);
    kiln_dtype t = dt[0];
    if (!half_type(t)) return false;
    for (int i = 1; i < n->n_in && i < 4; i++)
        if (rank[i] >= 0 && dt[i] != t) return false;
    int ra = rank[0], rb = rank[1];
    for (int i = 0; i < rb - 2; i++)
        if (d[1][i] != 1) return false; /* one B for the whole batch */
    int64_t K = d[1][rb - 2], N = d[1][rb - 1];
    if (d[0][ra - 1] != K || K < 8 || N < 8 || K % 8 || N % 8) return false;
    int64_t M = 1;
    for (int i = 0; i < ra - 1; i++) {
        if (d[0][i] < 0) M = -1;
        else if (M >= 0) M *= d[0][i];
    }
    mp->m = M, mp->n = N, mp->k = K;
    /* the output: A's dims with the last replaced by N */
    int ry = ra;
    int64_t yd[KILN_MAX_RANK];
    memcpy(yd, d[0], sizeof(int64_t) * (size_t)ra);
    yd[ry - 1] = N;
    bool has_c = n->n_in > 2 && rank[2] >= 0 && mp->beta != 0.0f;
    mp->r = n->n_in > 3 && rank[3] >= 0;
    if (mp->r) { /* R has the output's shape (shape inference checked it) */
        if (rank[3] != ry) return false;
        for (int i = 0; i < ry; i++)
            if (d[3][i] != yd[i]) return false;
    }
    if (has_c) {
        int rc = rank[2];
        if (rc > ry) return false;
        int64_t cn = 1;
        bool full = true;
        for (int i = 0; i < rc; i++) {
            if (d[2][i] < 0) cn = -1;
            else if (cn >= 0) cn *= d[2][i];
            full &= d[2][i] == yd[ry - rc + i];
        }
        for (int i = 0; i < ry - rc; i++) full &= yd[i] == 1;
        if (rc >= 1 && cn == N && d[2][rc - 1] == N && mp->beta == 1.0f) {
            mp->c_role = 1;
        } else if (full && !mp->r) {
            mp->c_role = 2;
        } else {
            return false; /* broadcast C, or a scaled bias row, or C and R */
        }
    }
    return true;
}

/* The layer's problem from its input types; false where the kernels cannot
** take it. */
static bool sm90_map_of(const ir_node *n, const ir_type *const *in, sm90_map *mp,
                        kiln_dtype *t) {
    int rank[4] = {-1, -1, -1, -1};
    const int64_t *d[4] = {0};
    kiln_dtype dt[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) {
        if (!in[i]) continue;
        if (in[i]->rank < 0 || in[i]->dtype == KILN_DTYPE_UNDEFINED) return false;
        rank[i] = in[i]->rank, d[i] = in[i]->dims, dt[i] = in[i]->dtype;
    }
    *t = dt[0];
    return rank[0] >= 0 && rank[1] >= 0 && sm90_plan(n, rank, d, dt, mp);
}

bool cuda_gemm_sm90_takes(const ir_node *n, const ir_type *const *in) {
    sm90_map mp;
    kiln_dtype t;
    return sm90_map_of(n, in, &mp, &t);
}

/* KILN_GEMM_SM90=0 withdraws the tactics (A/B timing against cuBLASLt). */
static bool sm90_env_off(void) {
    const char *e = getenv("KILN_GEMM_SM90");
    return e && !strcmp(e, "0");
}

/* The kernel problem of a layer (pointers left NULL; c non-NULL, a dummy,
** when the layer has a C or R: it picks the instantiation). */
static void sm90_problem(const sm90_map *mp, kiln_dtype t, kc_sm90_gemm *g) {
    memset(g, 0, sizeof *g);
    g->dtype = t == KILN_DTYPE_FLOAT16 ? KC_F16 : KC_BF16;
    g->m = mp->m < 1 ? 1 : mp->m; /* symbolic: any M passes the kernels' check */
    g->n = mp->n, g->k = mp->k;
    g->alpha = mp->alpha;
    if (mp->c_role == 2 || mp->r) g->c = mp, g->beta = mp->r ? 1.0f : mp->beta;
    g->act.kind = mp->act.kind;
    g->act.alpha = mp->act.alpha;
    g->act.beta = mp->act.beta;
}

static bool sm90_supports(const ir_node *n, const ir_type *const *in, int cfg) {
    sm90_map mp;
    kiln_dtype t;
    if (sm90_env_off() || !sm90_map_of(n, in, &mp, &t) || !sm90_device_ok()) return false;
    kc_sm90_gemm g;
    sm90_problem(&mp, t, &g);
    /* the kernels' own check, no plan made: whether this configuration is
    ** compiled for the activation and C form, and CUTLASS's can_implement */
    return kc_gemm_sm90_plan(cfg, &g, 132, NULL) == cudaSuccess;
}

/* Plan cache key (cuda_plan.c): the whole problem, pointers included. */
#define SM90_TAG 0x53393047454d0001ll /* "S90GEM" v1 */
typedef struct sm90_key {
    int64_t tag;
    int cfg, sm_count;
    kc_sm90_gemm g;
} sm90_key;

static void sm90_plan_free(const cuda_libs *L, void *payload) {
    (void)L;
    kc_gemm_sm90_plan_free(payload);
}

static int sm90_fallback(ref_ctx *rc) {
    atomic_fetch_add(&g_fallbacks, 1);
    return cuda_gemm_lt_run(rc);
}

static int sm90_run(ref_ctx *rc, int cfg) {
    const ir_node *n = rc->node;
    cuda_exec *x = cuda_exec_of(rc);
    int rank[4] = {-1, -1, -1, -1};
    const int64_t *d[4] = {0};
    kiln_dtype dt[4] = {0};
    const void *p[4] = {0};
    for (int i = 0; i < n->n_in && i < 4; i++) {
        if (!ref_has(rc, i)) continue;
        rank[i] = rc->in[i]->rank, d[i] = rc->in[i]->dims, dt[i] = rc->in[i]->dtype;
        p[i] = rc->in[i]->data;
    }
    kiln_tensor *Y = rc->out[0];
    sm90_map mp;
    if (rank[0] < 0 || rank[1] < 0 || !x || !x->dev || x->dev->sm != 90 ||
        !kc_gemm_sm90_built() || !sm90_plan(n, rank, d, dt, &mp) || Y->dtype != dt[0] ||
        tensor_numel(Y) != mp.m * mp.n)
        return sm90_fallback(rc);
    if (mp.m == 0) return 0;
    cuda_plans_trim(x);
    kc_sm90_gemm g;
    sm90_problem(&mp, dt[0], &g);
    g.m = mp.m;
    g.a = p[0], g.b = p[1], g.d = Y->data;
    g.c = NULL; /* sm90_problem's dummy: the real one below */
    if (mp.c_role == 1) g.bias = p[2];
    if (mp.c_role == 2) g.c = p[2];
    if (mp.r) g.c = p[3];
    /* the prepared launch for this problem and these pointers, from the
    ** exec's plan cache (made on the first run, so steady-state runs do
    ** no host work besides the launch) */
    sm90_key key;
    memset(&key, 0, sizeof key); /* padding too: keys are memcmp'd */
    key.tag = SM90_TAG;
    key.cfg = cfg;
    key.sm_count = x->dev->n_sm;
    key.g = g;
    kc_sm90_plan *plan = cuda_plan_get(x, &key, sizeof key);
    if (!plan) {
        cudaError_t e = kc_gemm_sm90_plan(cfg, &g, x->dev->n_sm, &plan);
        if (e == cudaErrorNotSupported) return sm90_fallback(rc);
        if (cuda_fail_if(rc, e, "SM90 GEMM plan")) return -1;
        if (!cuda_plan_put(x, &key, sizeof key, plan, sm90_plan_free))
            return ref_fail(rc, "out of memory");
    }
    if (cuda_fail_if(rc, kc_gemm_sm90_launch(plan, cuda_stream_of(rc)), "SM90 GEMM")) return -1;
    atomic_fetch_add(&g_runs, 1);
    return 0;
}

#define SM90_TACTIC(VAR, CFG, NAME)                                                          \
    static int VAR##_run(ref_ctx *rc) { return sm90_run(rc, CFG); }                          \
    static bool VAR##_supports(const ir_node *n, const ir_type *const *in) {                 \
        return sm90_supports(n, in, CFG);                                                    \
    }                                                                                        \
    static const kiln_tactic VAR = {"cuda_fused_gemm_sm90_" NAME, OP_FusedGemm, 0,           \
                                    TACTIC_DEVICE | TACTIC_OVERWRITES_OUTPUT, VAR##_supports, \
                                    NULL, VAR##_run};

SM90_TACTIC(t_sm90_0, KC_SM90_128x256_COOP_C2x1, "128x256_coop_c2x1")
SM90_TACTIC(t_sm90_1, KC_SM90_128x128_PP_C1x1, "128x128_pp_c1x1")
SM90_TACTIC(t_sm90_2, KC_SM90_256x128_COOP_C1x2, "256x128_coop_c1x2")
/* the FFN-in candidates (kernels/gemm_sm90_cfg.h): FP16 erf GELU, no C */
SM90_TACTIC(t_sm90_3, KC_SM90_128x128_PP_C1x1_E64, "128x128_pp_c1x1_e64")
SM90_TACTIC(t_sm90_4, KC_SM90_64x256_PP_C1x1, "64x256_pp_c1x1")
SM90_TACTIC(t_sm90_5, KC_SM90_128x128_PP_C1x2, "128x128_pp_c1x2")
SM90_TACTIC(t_sm90_6, KC_SM90_256x128_COOP_C2x1, "256x128_coop_c2x1")
SM90_TACTIC(t_sm90_7, KC_SM90_256x128_COOP_C1x2_E64, "256x128_coop_c1x2_e64")

_Static_assert(KC_SM90_N_ALL == 8, "one tactic per SM90 configuration");
const kiln_tactic *const cuda_tactics_gemm_sm90[] = {&t_sm90_0, &t_sm90_1, &t_sm90_2,
                                                     &t_sm90_3, &t_sm90_4, &t_sm90_5,
                                                     &t_sm90_6, &t_sm90_7, NULL};
