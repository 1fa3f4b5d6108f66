/* cpu_eltwise.c: vectorized, threaded Gelu and FusedElementwise tactics
** (float32). FusedElementwise runs its register program (ops/fused.h) over
** blocks of CPU_FE_BLK output elements: every register is one block, so a
** whole chain runs on L1-resident data, one vector op at a time. Inputs
** broadcast to the output: dims are coalesced first, so the innermost run
** of each input is either contiguous (read in place) or one repeated value
** (filled into its block). Opcodes without a vector form run the
** reference's scalar formulas (cpu_fe_scalar). */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "cpu_xf.h"

#include <stdio.h>

static bool is_f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

enum { XF_TASK_ELEMS = 16384 };

/* NaN-propagating min/max, as the reference's FMIN/FMAX. */
static inline float fe_min(float x, float y) {
    return x != x || y != y ? x + y : x < y ? x : y;
}
static inline float fe_max(float x, float y) {
    return x != x || y != y ? x + y : x > y ? x : y;
}
static inline float fe_clamp01(float v) { return v < 0 ? 0.0f : v > 1 ? 1.0f : v; }

void cpu_fe_scalar(int opc, const float *a, const float *b, const float *c,
                   float *y, int64_t n) {
#define MAP1(EXPR)                                                           \
    for (int64_t i = 0; i < n; i++) {                                        \
        float v = a[i];                                                      \
        y[i] = (EXPR);                                                       \
    }                                                                        \
    break
#define MAP2(EXPR)                                                           \
    for (int64_t i = 0; i < n; i++) {                                        \
        float v = a[i], w = b[i];                                            \
        y[i] = (EXPR);                                                       \
    }                                                                        \
    break
    switch (opc) {
    case FE_ADD: MAP2(v + w);
    case FE_SUB: MAP2(v - w);
    case FE_MUL: MAP2(v * w);
    case FE_DIV: MAP2(v / w);
    case FE_POW: MAP2(powf(v, w));
    case FE_MAX: MAP2(fe_max(v, w));
    case FE_MIN: MAP2(fe_min(v, w));
    case CPU_FE_SQUARE: MAP1(v * v);
    case FE_NEG: MAP1(-v);
    case FE_ABS: MAP1(fabsf(v));
    case FE_SQRT: MAP1(sqrtf(v));
    case FE_EXP: MAP1(expf(v));
    case FE_LOG: MAP1(logf(v));
    case FE_TANH: MAP1(tanhf(v));
    case FE_SIGMOID: MAP1(fused_sigmoid_f32(v));
    case FE_RELU: MAP1(v < 0 ? 0.0f : v);
    case FE_ERF: MAP1(erff(v));
    case FE_RECIPROCAL: MAP1(1.0f / v);
    case FE_FLOOR: MAP1(floorf(v));
    case FE_CEIL: MAP1(ceilf(v));
    case FE_SIN: MAP1(sinf(v));
    case FE_COS: MAP1(cosf(v));
    case FE_SOFTPLUS: MAP1(v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)));
    case FE_SOFTSIGN: MAP1(v / (1.0f + fabsf(v)));
    case FE_HARD_SWISH: MAP1(v * fe_clamp01(v * (float)(1.0 / 6.0) + 0.5f));
    case FE_GELU: MAP1(0.5f * v * (1.0f + erff(v * 0.7071067811865476f)));
    case FE_GELU_TANH:
        MAP1(0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))));
    case FE_LEAKY_RELU: {
        float al = b[0];
        MAP1(v < 0 ? al * v : v);
    }
    case FE_ELU: {
        float al = b[0];
        MAP1(v < 0 ? al * expm1f(v) : v);
    }
    case FE_HARD_SIGMOID: {
        float al = b[0], be = c[0];
        MAP1(fe_clamp01(al * v + be));
    }
    case FE_CLIP: {
        float lo = b ? b[0] : -INFINITY, hi = c ? c[0] : INFINITY;
        MAP1(v < lo ? lo : v > hi ? hi : v);
    }
    default: /* decode refuses unknown opcodes */
        for (int64_t i = 0; i < n; i++) y[i] = NAN;
        break;
    }
#undef MAP1
#undef MAP2
}

/* ---------------------------------------------------------------- Gelu */
typedef struct {
    const cpu_xf_kernels *k;
    const float *x;
    float *y;
    int64_t n, per;
    bool tanh_form;
} gelu_job;

static void gelu_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const gelu_job *j = arg;
    int64_t i0 = t * j->per, m = KILN_MIN(j->per, j->n - i0);
    j->k->gelu(j->x + i0, j->y + i0, m, j->tanh_form);
}

static bool gelu_supports(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return n->n_in >= 1 && is_f32(in[0]);
}

static int gelu_run(ref_ctx *c, const cpu_xf_kernels *K) {
    const kiln_tensor *x = c->in[0];
    if (!x || x->dtype != KILN_DTYPE_FLOAT32)
        return ref_fail(c, "this tactic handles float32 only");
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 &&
          shape_equal(Y->rank, Y->dims, x->rank, x->dims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, x->rank, x->dims))
        return -1;
    int64_t n = tensor_numel(x);
    if (n <= 0) return 0;
    bool th = strcmp(ir_attr_str(c->node, "approximate", "none"), "tanh") == 0;
    gelu_job j = {K, x->data, c->out[0]->data, n, XF_TASK_ELEMS, th};
    int threads = cpu_threads_for(20.0 * (double)n);
    cpu_parallel_for((n + j.per - 1) / j.per, threads, 0, NULL, gelu_task, &j);
    return 0;
}

/* ---------------------------------------------------- FusedElementwise */
/* Decodes the node's program into p; the constants' values stay in kv.
** false (message in err) when this tactic cannot run it. */
static bool fe_decode(const ir_node *n, int n_in, cpu_fe_prog *p, const float **kv,
                      int *nk_out, char *err, size_t nerr) {
    int np = 0, nk = 0;
    const int64_t *prog = ir_attr_ints(n, "program", &np);
    *kv = ir_attr_floats(n, "constants", &nk);
    *nk_out = nk;
    int n_ins = np / 4;
    if (!prog || np % 4 || n_ins < 1) {
        snprintf(err, nerr, "empty program");
        return false;
    }
    if (n_ins > CPU_FE_MAX_INS || n_in + nk + n_ins > CPU_FE_MAX_REGS) {
        snprintf(err, nerr, "program too large for this tactic");
        return false;
    }
    p->n_ins = n_ins;
    p->n_regs = n_in + nk + n_ins;
    for (int t = 0; t < n_ins; t++) {
        const int64_t *ins = prog + 4 * t;
        int opc = (int)ins[0], ar = fe_opcode_arity(opc), dst = n_in + nk + t;
        if (!fe_opcode_op(opc) || ar < 1 || ar > 3) {
            snprintf(err, nerr, "instruction %d: bad opcode %d", t, opc);
            return false;
        }
        int r[3] = {-1, -1, -1};
        for (int k = 0; k < ar; k++) {
            int64_t v = ins[1 + k];
            bool absent_ok = opc == FE_CLIP && k > 0 && v == -1;
            if (!absent_ok && (v < 0 || v >= dst)) {
                snprintf(err, nerr, "instruction %d: bad operand", t);
                return false;
            }
            /* parameters must be constants (one value each) */
            if (k > 0 && fe_opcode_param(opc, k) && v >= 0 && (v < n_in || v >= n_in + nk)) {
                snprintf(err, nerr, "instruction %d: parameter is not a constant", t);
                return false;
            }
            r[k] = (int)v;
        }
        if (opc == FE_POW && r[1] >= n_in && r[1] < n_in + nk && (*kv)[r[1] - n_in] == 2.0f)
            opc = CPU_FE_SQUARE;
        p->ins[t] = (cpu_fe_ins){opc, dst, r[0], r[1], r[2]};
    }
    return true;
}

static bool fe_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 1 || n->n_implicit || n->n_out != 1) return false;
    for (int i = 0; i < n->n_in; i++)
        if (!is_f32(in[i])) return false;
    cpu_fe_prog p;
    const float *kv;
    int nk;
    char err[64];
    return fe_decode(n, n->n_in, &p, &kv, &nk, err, sizeof err);
}

typedef struct {
    const cpu_xf_kernels *k;
    const cpu_fe_prog *p;
    int n_in, nk;
    const float *kv;
    const float *in[CPU_FE_MAX_REGS];
    float *y;
    int rank;                              /* coalesced outer dims */
    int64_t dims[KILN_MAX_RANK];
    int64_t st[CPU_FE_MAX_REGS][KILN_MAX_RANK]; /* per input, outer dims */
    bool contig[CPU_FE_MAX_REGS];          /* inner stride 1 (else 0) */
    int64_t L, chunks, units, per;         /* inner length, chunks per row */
} fe_job;

static void fe_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const fe_job *J = arg;
    const cpu_fe_prog *p = J->p;
    float *buf = cpu_align64(scratch);
    float *regs[CPU_FE_MAX_REGS];
    for (int r = 0; r < p->n_regs; r++) regs[r] = buf + (size_t)r * CPU_FE_BLK;
    for (int k = 0; k < J->nk; k++) {
        float *d = regs[J->n_in + k];
        for (int e = 0; e < CPU_FE_BLK; e++) d[e] = J->kv[k];
    }
    int64_t u0 = t * J->per, u1 = KILN_MIN(J->units, u0 + J->per);
    for (int64_t u = u0; u < u1; u++) {
        int64_t row = u / J->chunks, j0 = (u % J->chunks) * CPU_FE_BLK;
        int64_t m = KILN_MIN(CPU_FE_BLK, J->L - j0);
        int64_t off[CPU_FE_MAX_REGS];
        for (int i = 0; i < J->n_in; i++) off[i] = 0;
        int64_t rem = row;
        for (int d = J->rank - 1; d >= 0; d--) {
            int64_t q = rem % J->dims[d];
            rem /= J->dims[d];
            for (int i = 0; i < J->n_in; i++) off[i] += q * J->st[i][d];
        }
        float *rr[CPU_FE_MAX_REGS];
        memcpy(rr, regs, (size_t)p->n_regs * sizeof *rr);
        for (int i = 0; i < J->n_in; i++) {
            if (J->contig[i]) {
                rr[i] = (float *)(J->in[i] + off[i] + j0);
            } else {
                float v = J->in[i][off[i]], *d = regs[i];
                for (int64_t e = 0; e < m; e++) d[e] = v;
            }
        }
        rr[p->n_regs - 1] = J->y + row * J->L + j0;
        J->k->fe_run(p, rr, m);
    }
}

static size_t fe_scratch_bytes(int n_regs) {
    return (size_t)n_regs * CPU_FE_BLK * sizeof(float) + 64;
}

static size_t fe_workspace(const ir_node *n, const ir_type *const *in) {
    (void)in;
    int np = 0, nk = 0;
    ir_attr_ints(n, "program", &np);
    ir_attr_floats(n, "constants", &nk);
    return fe_scratch_bytes(n->n_in + nk + np / 4);
}

/* Runs program p (constants kv[0..nk)) over the node's inputs. */
static int fe_exec(ref_ctx *c, const cpu_xf_kernels *K, const cpu_fe_prog *p,
                   const float *kv, int nk) {
    fe_job *J = calloc(1, sizeof *J);
    void *own = NULL;
    int rc = 0;
    if (!J) return ref_fail(c, "out of memory");
    J->kv = kv;
    J->nk = nk;
    kiln_tensor *Y = c->out[0];
    if (!Y->data || Y->dtype != KILN_DTYPE_FLOAT32) {
        rc = ref_fail(c, "output is not an allocated float32 tensor");
        goto done;
    }
    int ry = Y->rank;
    /* each input broadcasts to the output: strides over its dims */
    int64_t st[CPU_FE_MAX_REGS][KILN_MAX_RANK];
    for (int i = 0; i < c->n_in; i++) {
        const kiln_tensor *x = c->in[i];
        if (!x || x->dtype != KILN_DTYPE_FLOAT32 || x->rank > ry) {
            rc = ref_fail(c, "input %d is not a float32 tensor broadcasting to the output", i);
            goto done;
        }
        for (int d = 0; d < x->rank; d++) {
            int64_t xd = x->dims[d], yd = Y->dims[ry - x->rank + d];
            if (xd != 1 && xd != yd) {
                rc = ref_fail(c, "input %d does not broadcast to the output", i);
                goto done;
            }
        }
        bcast_strides(x->rank, x->dims, ry, st[i]);
        J->in[i] = x->data;
    }
    int64_t numel = tensor_numel(Y);
    if (numel <= 0) goto done;
    /* coalesce: drop size-1 dims, merge d into d+1 where every input
    ** steps through both as one */
    int64_t cd[KILN_MAX_RANK], cs[CPU_FE_MAX_REGS][KILN_MAX_RANK];
    int cr = 0;
    for (int d = 0; d < ry; d++) {
        if (Y->dims[d] == 1) continue;
        if (cr > 0) {
            bool merge = true;
            for (int i = 0; i < c->n_in && merge; i++)
                merge = cs[i][cr - 1] == st[i][d] * Y->dims[d];
            if (merge) {
                cd[cr - 1] *= Y->dims[d];
                for (int i = 0; i < c->n_in; i++) cs[i][cr - 1] = st[i][d];
                continue;
            }
        }
        cd[cr] = Y->dims[d];
        for (int i = 0; i < c->n_in; i++) cs[i][cr] = st[i][d];
        cr++;
    }
    if (cr == 0) {
        cd[0] = 1;
        for (int i = 0; i < c->n_in; i++) cs[i][0] = 0;
        cr = 1;
    }
    J->k = K;
    J->p = p;
    J->n_in = c->n_in;
    J->y = Y->data;
    J->L = cd[cr - 1];
    J->rank = cr - 1;
    for (int d = 0; d < cr - 1; d++) J->dims[d] = cd[d];
    for (int i = 0; i < c->n_in; i++) {
        J->contig[i] = cs[i][cr - 1] != 0;
        for (int d = 0; d < cr - 1; d++) J->st[i][d] = cs[i][d];
    }
    J->chunks = (J->L + CPU_FE_BLK - 1) / CPU_FE_BLK;
    J->units = numel / J->L * J->chunks;
    int threads = cpu_threads_for(4.0 * (double)numel * p->n_ins);
    J->per = KILN_MAX(1, XF_TASK_ELEMS / CPU_FE_BLK);
    if (threads > 1) J->per = KILN_MIN(J->per, KILN_MAX(1, J->units / (4 * threads)));
    size_t sb = fe_scratch_bytes(p->n_regs);
    void *caller = c->ws;
    if (!caller || c->ws_size < sb) {
        own = kiln_aligned_alloc(sb);
        if (!own) {
            rc = ref_fail(c, "out of memory");
            goto done;
        }
        caller = own;
    }
    cpu_parallel_for((J->units + J->per - 1) / J->per, threads, sb, caller, fe_task, J);
done:
    kiln_aligned_free(own);
    free(J);
    return rc;
}

static int fe_run(ref_ctx *c, const cpu_xf_kernels *K) {
    cpu_fe_prog *p = calloc(1, sizeof *p);
    if (!p) return ref_fail(c, "out of memory");
    const float *kv;
    int nk, rc;
    if (!fe_decode(c->node, c->n_in, p, &kv, &nk, c->err, sizeof c->err)) rc = -1;
    else rc = fe_exec(c, K, p, kv, nk);
    free(p);
    return rc;
}

/* ------------------------------------------ single elementwise ops
** Add/Sub/Mul/Div and the parameterless unary ops as one-instruction
** programs (broadcasting as above). */
static int single_opcode(const ir_node *n) {
    switch (n->op) {
    case OP_Add: case OP_Sub: case OP_Mul: case OP_Div:
        return n->n_in == 2 ? fe_op_opcode(n->op, false) : 0;
    case OP_Neg: case OP_Abs: case OP_Sqrt: case OP_Exp: case OP_Tanh:
    case OP_Sigmoid: case OP_Relu: case OP_Erf: case OP_Reciprocal:
        return n->n_in == 1 ? fe_op_opcode(n->op, false) : 0;
    default: return 0;
    }
}

static bool single_supports(const ir_node *n, const ir_type *const *in) {
    if (!single_opcode(n) || n->n_out != 1 || n->n_implicit) return false;
    /* opset < 7 broadcasting (broadcast/axis attributes) is not numpy's */
    if (ir_attr_find(n, "broadcast") || ir_attr_find(n, "axis")) return false;
    for (int i = 0; i < n->n_in; i++)
        if (!is_f32(in[i])) return false;
    return true;
}

static size_t single_workspace(const ir_node *n, const ir_type *const *in) {
    (void)in;
    return fe_scratch_bytes(n->n_in + 1);
}

static int single_run(ref_ctx *c, const cpu_xf_kernels *K) {
    int opc = single_opcode(c->node);
    if (!opc) return ref_fail(c, "this tactic does not run %s", c->node->op_type);
    cpu_fe_prog p;
    p.n_ins = 1;
    p.n_regs = c->n_in + 1;
    p.ins[0] = (cpu_fe_ins){opc, c->n_in, 0, c->n_in == 2 ? 1 : -1, -1};
    return fe_exec(c, K, &p, NULL, 0);
}

#define SINGLE_TACTIC(NAME, OP, SUF, KERN, ISA)                                \
    const kiln_tactic cpu_t_##NAME##_##SUF = {                                 \
        "f32_" #NAME "_blk256_" #SUF, OP, ISA, TACTIC_OVERWRITES_OUTPUT,       \
        single_supports_##SUF, single_workspace, single_run_##SUF};
#define SINGLE_TACTICS(SUF, KERN, ISA)                                         \
    SINGLE_TACTIC(add, OP_Add, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(sub, OP_Sub, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(mul, OP_Mul, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(div, OP_Div, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(neg, OP_Neg, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(abs, OP_Abs, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(sqrt, OP_Sqrt, SUF, KERN, ISA)                               \
    SINGLE_TACTIC(exp, OP_Exp, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(tanh, OP_Tanh, SUF, KERN, ISA)                               \
    SINGLE_TACTIC(sigmoid, OP_Sigmoid, SUF, KERN, ISA)                         \
    SINGLE_TACTIC(relu, OP_Relu, SUF, KERN, ISA)                               \
    SINGLE_TACTIC(erf, OP_Erf, SUF, KERN, ISA)                                 \
    SINGLE_TACTIC(reciprocal, OP_Reciprocal, SUF, KERN, ISA)

#define ELT_TACTICS(SUF, KERN, ISA)                                            \
    static int single_run_##SUF(ref_ctx *c) {                                  \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return single_run(c, &(KERN));                                         \
    }                                                                          \
    static bool single_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && single_supports(n, in);                     \
    }                                                                          \
    SINGLE_TACTICS(SUF, KERN, ISA)                                             \
    static int gelu_run_##SUF(ref_ctx *c) {                                    \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return gelu_run(c, &(KERN));                                           \
    }                                                                          \
    static int fe_run_##SUF(ref_ctx *c) {                                      \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return fe_run(c, &(KERN));                                             \
    }                                                                          \
    static bool gelu_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && gelu_supports(n, in);                       \
    }                                                                          \
    static bool fe_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && fe_supports(n, in);                         \
    }                                                                          \
    const kiln_tactic cpu_t_gelu_##SUF = {                                     \
        "f32_gelu_" #SUF, OP_Gelu, ISA,                                        \
        TACTIC_OVERWRITES_OUTPUT | TACTIC_INPLACE_OK, gelu_supports_##SUF, NULL,     \
        gelu_run_##SUF};                                                       \
    const kiln_tactic cpu_t_fused_eltwise_##SUF = {                            \
        "f32_fused_eltwise_blk256_" #SUF, OP_FusedElementwise, ISA,            \
        TACTIC_OVERWRITES_OUTPUT, fe_supports_##SUF, fe_workspace, fe_run_##SUF};

ELT_TACTICS(avx512, cpu_xf_avx512, KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)
ELT_TACTICS(avx2, cpu_xf_avx2, KILN_ISA_AVX2 | KILN_ISA_FMA)
ELT_TACTICS(c, cpu_xf_c, 0)
