/* fused.c: schemas and shape inference for Kiln's internal fused ops
** (domain "kiln"; only the optimizer creates them).
**
** FusedConv: inputs X, W, [B], [Z]. Every Conv attribute (auto_pad,
**   dilations, group, kernel_shape, pads, strides) with Conv's meaning, plus
**   "activation" (string), "activation_alpha", "activation_beta" (floats).
**     Y = act(Conv(X, W, B) + Z)
**   Z (the residual) has exactly the conv output's shape and dtype; it is
**   added before the activation, as in a ResNet block. Absent Z adds nothing.
**
** FusedGemm: inputs A, B, [C], [R]; attributes transA, transB (ints,
**   transpose the last two dims of that input), alpha, beta (floats, default
**   1), plus the activation attributes.
**     Y = act(alpha * matmul(opA(A), opB(B)) + beta * C + R)
**   matmul is numpy MatMul on inputs of rank >= 2: the leading (batch) dims
**   broadcast, e.g. [batch, seq, 768] x [768, 3072] -> [batch, seq, 3072].
**   C broadcasts unidirectionally to Y (numpy rules, Y's shape unchanged).
**   R (the residual) has exactly Y's shape and dtype and, like FusedConv's
**   Z, is added before the activation (a transformer's x + (h W + b)).
**   It covers Gemm (rank 2) and MatMul + Add (+ residual Add) (+ activation).
**
** Activations ("" none, Relu, Clip, Sigmoid, SiLU = x * sigmoid(x), Gelu
**   (erf), GeluTanh, LeakyRelu, HardSwish, HardSigmoid, Tanh) mean what the
**   ONNX op of that name means; activation_alpha / activation_beta carry its
**   float parameters: Clip min / max (absent: -inf / +inf), LeakyRelu alpha
**   (absent 0.01), HardSigmoid alpha / beta (absent 0.2 / 0.5). The exact
**   scalar formulas are in fused.h.
**
** FusedElementwise: a fused chain of elementwise float ops. Inputs: any
**   number (>= 1) of tensors of one float dtype, broadcastable. Attributes
**   "program" (ints) and "constants" (floats) encode the chain as register
**   code (layout and opcodes in fused.h): each instruction applies the ONNX
**   op of its opcode to its operand registers with numpy broadcasting,
**   exactly as the unfused node would; the output is the last register. */
#include "fused.h"

static const char *const k_act_names[FUSED_ACT_COUNT_] = {
    [FUSED_ACT_NONE] = "",
    [FUSED_ACT_RELU] = "Relu",
    [FUSED_ACT_CLIP] = "Clip",
    [FUSED_ACT_SIGMOID] = "Sigmoid",
    [FUSED_ACT_SILU] = "SiLU",
    [FUSED_ACT_GELU] = "Gelu",
    [FUSED_ACT_GELU_TANH] = "GeluTanh",
    [FUSED_ACT_LEAKY_RELU] = "LeakyRelu",
    [FUSED_ACT_HARD_SWISH] = "HardSwish",
    [FUSED_ACT_HARD_SIGMOID] = "HardSigmoid",
    [FUSED_ACT_TANH] = "Tanh",
};

int fused_act_parse(const char *s) {
    if (!s) return FUSED_ACT_NONE;
    for (int k = 0; k < FUSED_ACT_COUNT_; k++)
        if (strcmp(s, k_act_names[k]) == 0) return k;
    return -1;
}

const char *fused_act_name(int kind) {
    return kind >= 0 && kind < FUSED_ACT_COUNT_ ? k_act_names[kind] : "?";
}

bool fused_act_read(const ir_node *n, fused_act *a, char *err, size_t nerr) {
    const char *s = ir_attr_str(n, "activation", "");
    a->kind = fused_act_parse(s);
    if (a->kind < 0) {
        if (err && nerr) {
            size_t k = 0;
            const char *pre = "unknown activation '";
            for (; *pre && k + 1 < nerr; pre++) err[k++] = *pre;
            for (; *s && k + 2 < nerr && k < 80; s++)
                err[k++] = (*s >= 32 && *s < 127) ? *s : '?';
            if (k + 1 < nerr) err[k++] = '\'';
            err[k] = 0;
        }
        return false;
    }
    float da = 0, db = 0;
    switch (a->kind) {
    case FUSED_ACT_CLIP: da = -INFINITY; db = INFINITY; break;
    case FUSED_ACT_LEAKY_RELU: da = 0.01f; break;
    case FUSED_ACT_HARD_SIGMOID: da = 0.2f; db = 0.5f; break;
    default: break;
    }
    a->alpha = ir_attr_float(n, "activation_alpha", da);
    a->beta = ir_attr_float(n, "activation_beta", db);
    return true;
}

/* ---- FusedElementwise opcodes */
typedef struct fe_info {
    int opcode, op, arity;
    bool gelu_tanh;
} fe_info;

static const fe_info k_fe[] = {
    {FE_ADD, OP_Add, 2, false}, {FE_SUB, OP_Sub, 2, false},
    {FE_MUL, OP_Mul, 2, false}, {FE_DIV, OP_Div, 2, false},
    {FE_POW, OP_Pow, 2, false}, {FE_MAX, OP_Max, 2, false},
    {FE_MIN, OP_Min, 2, false},
    {FE_NEG, OP_Neg, 1, false}, {FE_ABS, OP_Abs, 1, false},
    {FE_SQRT, OP_Sqrt, 1, false}, {FE_EXP, OP_Exp, 1, false},
    {FE_LOG, OP_Log, 1, false}, {FE_TANH, OP_Tanh, 1, false},
    {FE_SIGMOID, OP_Sigmoid, 1, false}, {FE_RELU, OP_Relu, 1, false},
    {FE_ERF, OP_Erf, 1, false}, {FE_RECIPROCAL, OP_Reciprocal, 1, false},
    {FE_FLOOR, OP_Floor, 1, false}, {FE_CEIL, OP_Ceil, 1, false},
    {FE_SIN, OP_Sin, 1, false}, {FE_COS, OP_Cos, 1, false},
    {FE_SOFTPLUS, OP_Softplus, 1, false}, {FE_SOFTSIGN, OP_Softsign, 1, false},
    {FE_HARD_SWISH, OP_HardSwish, 1, false}, {FE_GELU, OP_Gelu, 1, false},
    {FE_GELU_TANH, OP_Gelu, 1, true},
    {FE_LEAKY_RELU, OP_LeakyRelu, 2, false}, {FE_ELU, OP_Elu, 2, false},
    {FE_HARD_SIGMOID, OP_HardSigmoid, 3, false}, {FE_CLIP, OP_Clip, 3, false},
};

static const fe_info *fe_find(int opcode) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_fe); i++)
        if (k_fe[i].opcode == opcode) return &k_fe[i];
    return NULL;
}

int fe_opcode_op(int opcode) {
    const fe_info *f = fe_find(opcode);
    return f ? f->op : OP_NONE;
}

int fe_op_opcode(int op, bool gelu_tanh) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_fe); i++)
        if (k_fe[i].op == op && (op != OP_Gelu || k_fe[i].gelu_tanh == gelu_tanh))
            return k_fe[i].opcode;
    return 0;
}

int fe_opcode_arity(int opcode) {
    const fe_info *f = fe_find(opcode);
    return f ? f->arity : 0;
}

bool fe_opcode_param(int opcode, int k) {
    return opcode >= FE_LEAKY_RELU && k >= 1 && k < fe_opcode_arity(opcode);
}

/* ------------------------------------------------------------ inference */
static int check_act(infer_ctx *c) {
    fused_act a;
    if (!fused_act_read(c->node, &a, c->err, sizeof c->err)) return -1;
    return 0;
}

/* Two dims that must be equal: false only when both are concrete and differ. */
static bool dims_compatible(int64_t a, int64_t b) {
    return a < 0 || b < 0 || a == b;
}

/* Fails unless t broadcasts to y without changing y's shape. */
static int check_unidir(infer_ctx *c, const ir_type *t, const ir_type *y,
                        const char *what) {
    if (t->rank < 0 || y->rank < 0) return 0;
    if (t->rank > y->rank)
        return ic_fail(c, "%s has rank %d, above the output's %d", what, t->rank,
                       y->rank);
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i], w = y->dims[y->rank - t->rank + i];
        if (d == 1 || dims_compatible(d, w)) continue;
        return ic_fail(c, "%s (dim %d = %lld) does not broadcast to %lld", what,
                       i, (long long)d, (long long)w);
    }
    return 0;
}

static int infer_fused_conv(infer_ctx *c) {
    const op_schema *conv = op_schema_get(OP_Conv);
    if (!conv || !conv->infer) return ic_fail(c, "Conv is not available");
    if (check_act(c)) return -1;
    /* Conv's own inference on X, W, B: identical attributes. */
    infer_ctx sub = *c;
    sub.n_in = KILN_MIN(c->n_in, 3);
    int rc = conv->infer(&sub);
    if (rc) {
        memcpy(c->err, sub.err, sizeof c->err);
        return rc;
    }
    const ir_type *x = ic_in(c, 0), *z = ic_in(c, 3);
    ir_type *y = c->out[0];
    if (!z) return 0;
    if (z->dtype != KILN_DTYPE_UNDEFINED && x->dtype != KILN_DTYPE_UNDEFINED &&
        z->dtype != x->dtype)
        return ic_fail(c, "Z is %s but X is %s", kiln_dtype_name(z->dtype),
                       kiln_dtype_name(x->dtype));
    if (z->rank < 0 || y->rank < 0) return 0;
    if (z->rank != y->rank)
        return ic_fail(c, "Z has rank %d, the conv output %d", z->rank, y->rank);
    for (int i = 0; i < z->rank; i++) {
        if (!dims_compatible(z->dims[i], y->dims[i]))
            return ic_fail(c, "Z dim %d is %lld, the conv output's %lld", i,
                           (long long)z->dims[i], (long long)y->dims[i]);
        /* prefer the concrete dim of the two */
        if (y->dims[i] < 0 && z->dims[i] >= 0) y->dims[i] = z->dims[i];
    }
    return 0;
}

static int infer_fused_gemm(infer_ctx *c) {
    const ir_type *a = ic_in(c, 0), *b = ic_in(c, 1), *cc = ic_in(c, 2);
    if (!a || !b) return ic_fail(c, "FusedGemm needs inputs A and B");
    if (ic_require_float(c, 0) || ic_require_same_dtype(c, 0, 1) ||
        ic_require_same_dtype(c, 0, 2) || check_act(c))
        return -1;
    kiln_dtype dt = a->dtype != KILN_DTYPE_UNDEFINED ? a->dtype : b->dtype;
    if (a->rank < 0 || b->rank < 0) {
        ic_set_out(c, 0, dt, -1, NULL);
        return 0;
    }
    if (a->rank < 2 || b->rank < 2)
        return ic_fail(c, "FusedGemm inputs must have rank >= 2 (got %d and %d)",
                       a->rank, b->rank);
    bool ta = ir_attr_int(c->node, "transA", 0) != 0;
    bool tb = ir_attr_int(c->node, "transB", 0) != 0;
    int ra = a->rank, rb = b->rank;
    int64_t m = a->dims[ra - (ta ? 1 : 2)], ka = a->dims[ra - (ta ? 2 : 1)];
    int64_t kb = b->dims[rb - (tb ? 1 : 2)], n = b->dims[rb - (tb ? 2 : 1)];
    if (!dims_compatible(ka, kb))
        return ic_fail(c, "FusedGemm inner dims differ: %lld vs %lld",
                       (long long)ka, (long long)kb);
    ir_type ba = {0}, bb = {0}, bo = {0};
    ba.rank = ra - 2;
    bb.rank = rb - 2;
    memcpy(ba.dims, a->dims, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.dims, b->dims, (size_t)bb.rank * sizeof(int64_t));
    if (ic_broadcast(c, &ba, &bb, &bo)) return -1;
    if (bo.rank + 2 > KILN_MAX_RANK) return ic_fail(c, "output rank too large");
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, bo.dims, (size_t)bo.rank * sizeof(int64_t));
    dims[bo.rank] = m;
    dims[bo.rank + 1] = n;
    ic_set_out(c, 0, dt, bo.rank + 2, dims);
    if (cc && check_unidir(c, cc, c->out[0], "C")) return -1;
    const ir_type *r = ic_in(c, 3);
    if (!r) return 0;
    if (r->dtype != KILN_DTYPE_UNDEFINED && dt != KILN_DTYPE_UNDEFINED && r->dtype != dt)
        return ic_fail(c, "R is %s but A is %s", kiln_dtype_name(r->dtype),
                       kiln_dtype_name(dt));
    ir_type *y = c->out[0];
    if (r->rank < 0) return 0;
    if (r->rank != y->rank)
        return ic_fail(c, "R has rank %d, the output %d", r->rank, y->rank);
    for (int i = 0; i < r->rank; i++) {
        if (!dims_compatible(r->dims[i], y->dims[i]))
            return ic_fail(c, "R dim %d is %lld, the output's %lld", i,
                           (long long)r->dims[i], (long long)y->dims[i]);
        if (y->dims[i] < 0 && r->dims[i] >= 0) y->dims[i] = r->dims[i];
    }
    return 0;
}

static int infer_fused_elementwise(infer_ctx *c) {
    int np = 0, nk = 0;
    const int64_t *prog = ir_attr_ints(c->node, "program", &np);
    ir_attr_floats(c->node, "constants", &nk);
    if (!prog || np < 4 || np % 4)
        return ic_fail(c, "'program' must hold 4 ints per instruction, got %d",
                       np);
    if (c->n_in < 1) return ic_fail(c, "FusedElementwise needs an input");
    int n_instr = np / 4, n_in = c->n_in;
    int64_t n_regs = (int64_t)n_in + nk + n_instr;
    if (n_regs > 1 << 20) return ic_fail(c, "program too large");
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    for (int i = 0; i < n_in; i++) {
        if (!ic_has(c, i)) return ic_fail(c, "input %d is missing", i);
        if (ic_require_float(c, i)) return -1;
        if (c->in[i]->dtype == KILN_DTYPE_UNDEFINED) continue;
        if (dt == KILN_DTYPE_UNDEFINED) dt = c->in[i]->dtype;
        else if (c->in[i]->dtype != dt)
            return ic_fail(c, "inputs must share one dtype (%s vs %s)",
                           kiln_dtype_name(dt), kiln_dtype_name(c->in[i]->dtype));
    }
    ir_type *regs = malloc((size_t)n_regs * sizeof *regs);
    if (!regs) return ic_fail(c, "out of memory");
    int rc = 0;
    for (int i = 0; i < n_in; i++) regs[i] = *c->in[i];
    for (int k = 0; k < nk; k++) {
        memset(&regs[n_in + k], 0, sizeof regs[0]);
        regs[n_in + k].dtype = dt;
        regs[n_in + k].rank = 0;
    }
    for (int t = 0; t < n_instr && !rc; t++) {
        const int64_t *ins = prog + 4 * t;
        int64_t defined = (int64_t)n_in + nk + t;
        int arity = fe_opcode_arity((int)KILN_MIN(ins[0], INT32_MAX));
        if (ins[0] > INT32_MAX || ins[0] < 0 || !arity) {
            rc = ic_fail(c, "instruction %d: unknown opcode %lld", t,
                         (long long)ins[0]);
            break;
        }
        int opc = (int)ins[0];
        for (int k = 0; k < 3 && !rc; k++) {
            int64_t r = ins[1 + k];
            bool optional = opc == FE_CLIP && k > 0;
            if (k >= arity) {
                if (r != -1)
                    rc = ic_fail(c, "instruction %d: operand %d must be -1", t, k);
            } else if (r == -1 && optional) {
            } else if (r < 0 || r >= defined) {
                rc = ic_fail(c, "instruction %d: operand %d reads register %lld, "
                             "not yet defined", t, k, (long long)r);
            } else if (fe_opcode_param(opc, k) && (r < n_in || r >= n_in + nk)) {
                rc = ic_fail(c, "instruction %d: operand %d must be a constant", t,
                             k);
            }
        }
        if (rc) break;
        ir_type *out = &regs[defined];
        if (arity >= 2 && !fe_opcode_param(opc, 1)) {
            rc = ic_broadcast(c, &regs[ins[1]], &regs[ins[2]], out);
        } else {
            *out = regs[ins[1]];
        }
        out->dtype = dt;
    }
    if (!rc) {
        const ir_type *y = &regs[n_regs - 1];
        ic_set_out(c, 0, dt, y->rank, y->rank > 0 ? y->dims : NULL);
    }
    free(regs);
    return rc;
}

const op_schema op_schemas_fused[] = {
    {OP_FusedConv, 2, 4, 1, 1, infer_fused_conv},
    {OP_FusedGemm, 2, 4, 1, 1, infer_fused_gemm},
    {OP_FusedElementwise, 1, -1, 1, 1, infer_fused_elementwise},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
