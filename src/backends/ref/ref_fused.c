/* ref_fused.c: reference kernels for Kiln's internal fused ops (semantics
** in ops/fused.c). Each runs the reference kernels of the ops it replaces
** (Conv, MatMul, the elementwise ops) and then a plain epilogue, so it
** matches the unfused graph to float rounding and stays the oracle for the
** fast tactics. */
#include "ref.h"
#include "../../ops/fused.h"

/* A copy of the fused node that presents itself as another op: the ONNX
** kernels read attributes through c->node, and FusedConv/FusedGemm carry
** the attributes of the op they wrap. */
static ir_node as_op(const ir_node *n, int op, int n_in) {
    ir_node s = *n;
    s.op = op;
    s.op_type = op_name(op);
    s.domain = "";
    s.n_in = n_in;
    s.n_implicit = 0;
    s.schema = op_schema_get(op);
    return s;
}

static int run_kernel(ref_ctx *c, const ir_node *sn, int opset, int n_in,
                      const kiln_tensor *const *in, kiln_tensor *out) {
    ref_kernel_fn fn = ref_kernel_get(sn->op);
    if (!fn) return ref_fail(c, "no reference kernel for %s", op_name(sn->op));
    kiln_tensor *outs[1] = {out};
    ref_ctx sub;
    memset(&sub, 0, sizeof sub);
    sub.node = sn;
    sub.opset = opset;
    sub.n_in = n_in;
    sub.in = in;
    sub.n_out = 1;
    sub.out = outs;
    if (fn(&sub) != 0) {
        memcpy(c->err, sub.err, sizeof c->err);
        if (!c->err[0]) ref_fail(c, "%s failed", op_name(sn->op));
        return -1;
    }
    return 0;
}

/* ---- epilogue: y = act(alpha * y + beta * add + res), add broadcast to
** y, res (FusedGemm's residual R) of y's shape */
typedef struct epi {
    float alpha, beta;
    const kiln_tensor *add; /* NULL: none */
    fused_act act;
    const kiln_tensor *res; /* NULL: none */
} epi;

static int epilogue(ref_ctx *c, kiln_tensor *y, const epi *e) {
    int64_t n = tensor_numel(y);
    if (n <= 0) return 0;
    const kiln_tensor *a = e->add;
    int64_t ast[KILN_MAX_RANK] = {0};
    if (e->res && (e->res->dtype != y->dtype ||
                   !shape_equal(e->res->rank, e->res->dims, y->rank, y->dims))) {
        char rs[96], ys[96];
        return ref_fail(c, "R is %s %s, the output %s %s", kiln_dtype_name(e->res->dtype),
                        shape_str(e->res->rank, e->res->dims, rs, sizeof rs),
                        kiln_dtype_name(y->dtype), shape_str(y->rank, y->dims, ys, sizeof ys));
    }
    if (a) {
        if (a->dtype != y->dtype)
            return ref_fail(c, "the added tensor is %s, the output %s",
                            kiln_dtype_name(a->dtype), kiln_dtype_name(y->dtype));
        if (a->rank > y->rank)
            return ref_fail(c, "the added tensor has a higher rank than the output");
        for (int i = 0; i < a->rank; i++) {
            int64_t d = a->dims[i], w = y->dims[y->rank - a->rank + i];
            if (d != 1 && d != w)
                return ref_fail(c, "the added tensor does not broadcast to the "
                                "output");
        }
        bcast_strides(a->rank, a->dims, y->rank, ast);
    }
    bool same = a && tensor_numel(a) == n;
    bool scale = e->alpha != 1.0f;
    int64_t ylast = y->rank ? y->dims[y->rank - 1] : 1;
    /* the common bias layout: a vector along the last dim */
    bool row = a && !same && y->rank > 0 && tensor_numel(a) == ylast &&
               ast[y->rank - 1] == 1;
    const int64_t *stp[1] = {ast};
    bcast_iter it;
    bcast_iter_init(&it, y->rank, y->dims, 1, stp);
    if (y->dtype == KILN_DTYPE_FLOAT32) {
        float *Y = y->data;
        const float *A = a ? a->data : NULL;
        const float *R = e->res ? e->res->data : NULL;
        float al = e->alpha, be = e->beta;
        for (int64_t i = 0; i < n; i++) {
            float v = Y[i];
            if (scale) v = al * v;
            if (A) {
                float w = same ? A[i] : row ? A[i % ylast] : A[it.off[0]];
                if (!same && !row) bcast_iter_next(&it);
                v = be == 1.0f ? v + w : v + be * w;
            }
            if (R) v += R[i];
            Y[i] = fused_act_f32(&e->act, v);
        }
        return 0;
    }
    if (y->dtype == KILN_DTYPE_FLOAT64) {
        double *Y = y->data;
        const double *A = a ? a->data : NULL;
        const double *R = e->res ? e->res->data : NULL;
        double al = e->alpha, be = e->beta;
        for (int64_t i = 0; i < n; i++) {
            double v = Y[i];
            if (scale) v = al * v;
            if (A) {
                double w = same ? A[i] : row ? A[i % ylast] : A[it.off[0]];
                if (!same && !row) bcast_iter_next(&it);
                v = be == 1.0 ? v + w : v + be * w;
            }
            if (R) v += R[i];
            Y[i] = fused_act_f64(&e->act, v);
        }
        return 0;
    }
    if (!dtype_is_float(y->dtype))
        return ref_fail(c, "%s is not a floating-point type",
                        kiln_dtype_name(y->dtype));
    /* float16 / bfloat16: widened to float32, one rounding at the end */
    for (int64_t i = 0; i < n; i++) {
        float v = (float)dt_get_f64(y->dtype, y->data, (size_t)i);
        if (scale) v = e->alpha * v;
        if (a) {
            int64_t k = same ? i : row ? i % ylast : it.off[0];
            if (!same && !row) bcast_iter_next(&it);
            float w = (float)dt_get_f64(a->dtype, a->data, (size_t)k);
            v = e->beta == 1.0f ? v + w : v + e->beta * w;
        }
        if (e->res) v += (float)dt_get_f64(e->res->dtype, e->res->data, (size_t)i);
        dt_set_f64(y->dtype, y->data, (size_t)i, fused_act_f32(&e->act, v));
    }
    return 0;
}

/* ------------------------------------------------------------ FusedConv */
static int k_fused_conv(ref_ctx *c) {
    epi e = {1.0f, 1.0f, NULL, {0, 0, 0}, NULL};
    if (!fused_act_read(c->node, &e.act, c->err, sizeof c->err)) return -1;
    ir_node sn = as_op(c->node, OP_Conv, KILN_MIN(c->n_in, 3));
    if (run_kernel(c, &sn, c->opset, sn.n_in, c->in, c->out[0])) return -1;
    kiln_tensor *y = c->out[0];
    e.add = ref_has(c, 3) ? c->in[3] : NULL;
    if (e.add && !shape_equal(e.add->rank, e.add->dims, y->rank, y->dims)) {
        char a[96], b[96];
        return ref_fail(c, "Z has shape %s, the conv output %s",
                        shape_str(e.add->rank, e.add->dims, a, sizeof a),
                        shape_str(y->rank, y->dims, b, sizeof b));
    }
    return epilogue(c, y, &e);
}

/* ------------------------------------------------------------ FusedGemm */
/* New tensor: t with its last two dims swapped. */
static int transpose_last2(ref_ctx *c, const kiln_tensor *t, kiln_tensor **out) {
    int r = t->rank;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[r - 2] = t->dims[r - 1];
    dims[r - 1] = t->dims[r - 2];
    size_t es;
    if (!dtype_nbytes(t->dtype, 1, &es) || es == 0)
        return ref_fail(c, "unsupported element type %s", kiln_dtype_name(t->dtype));
    if (tensor_new(t->dtype, r, dims, out))
        return ref_fail(c, "%s", kiln_last_error());
    int64_t R = t->dims[r - 2], C = t->dims[r - 1];
    int64_t mat = R * C, nb = mat ? tensor_numel(t) / mat : 0;
    const uint8_t *src = t->data;
    uint8_t *dst = (*out)->data;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++)
                memcpy(dst + (size_t)(b * mat + j * R + i) * es,
                       src + (size_t)(b * mat + i * C + j) * es, es);
    return 0;
}

static int k_fused_gemm(ref_ctx *c) {
    epi e = {1.0f, 1.0f, NULL, {0, 0, 0}, NULL};
    if (!fused_act_read(c->node, &e.act, c->err, sizeof c->err)) return -1;
    const kiln_tensor *a = c->in[0], *b = c->in[1];
    if (a->rank < 2 || b->rank < 2)
        return ref_fail(c, "FusedGemm inputs must have rank >= 2");
    kiln_tensor *ta = NULL, *tb = NULL;
    int rc = 0;
    if (ir_attr_int(c->node, "transA", 0) && !(rc = transpose_last2(c, a, &ta)))
        a = ta;
    if (!rc && ir_attr_int(c->node, "transB", 0) &&
        !(rc = transpose_last2(c, b, &tb)))
        b = tb;
    if (!rc) {
        const kiln_tensor *in[2] = {a, b};
        ir_node sn = as_op(c->node, OP_MatMul, 2);
        rc = run_kernel(c, &sn, c->opset, 2, in, c->out[0]);
    }
    tensor_free(ta);
    tensor_free(tb);
    if (rc) return rc;
    e.alpha = ir_attr_float(c->node, "alpha", 1.0f);
    e.beta = ir_attr_float(c->node, "beta", 1.0f);
    e.add = ref_has(c, 2) && e.beta != 0.0f ? c->in[2] : NULL;
    e.res = ref_has(c, 3) ? c->in[3] : NULL;
    return epilogue(c, c->out[0], &e);
}

/* ----------------------------------------------------- FusedElementwise
** Each instruction runs the ONNX op's own reference kernel. The kernels are
** called with opset 21, whose forms the program encodes (Clip min/max as
** inputs); attributes (LeakyRelu alpha, ...) come from constant registers. */
enum { FE_OPSET = 21 };

static int k_fused_elementwise(ref_ctx *c) {
    int np = 0, nk = 0;
    const int64_t *prog = ir_attr_ints(c->node, "program", &np);
    const float *kv = ir_attr_floats(c->node, "constants", &nk);
    int n_in = c->n_in, n_instr = np / 4;
    if (!prog || n_instr < 1 || n_in < 1)
        return ref_fail(c, "empty program");
    kiln_dtype dt = c->in[0]->dtype;
    int n_regs = n_in + nk + n_instr;
    const kiln_tensor **reg = calloc((size_t)n_regs, sizeof *reg);
    kiln_tensor **own = calloc((size_t)n_regs, sizeof *own);
    int *last = calloc((size_t)n_regs, sizeof *last);
    int rc = 0;
    if (!reg || !own || !last) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++) reg[i] = c->in[i];
    for (int k = 0; k < nk; k++) {
        kiln_tensor *t;
        if (tensor_new(dt, 0, NULL, &t)) {
            rc = ref_fail(c, "%s", kiln_last_error());
            goto done;
        }
        dt_set_f64(dt, t->data, 0, kv[k]);
        reg[n_in + k] = own[n_in + k] = t;
    }
    for (int t = 0; t < n_instr; t++) /* last use, to free temporaries early */
        for (int k = 1; k < 4; k++)
            if (prog[4 * t + k] >= 0 && prog[4 * t + k] < n_regs)
                last[prog[4 * t + k]] = t;
    for (int t = 0; t < n_instr && !rc; t++) {
        const int64_t *ins = prog + 4 * t;
        int opc = (int)ins[0], op = fe_opcode_op(opc), arity = fe_opcode_arity(opc);
        int dst = n_in + nk + t;
        const kiln_tensor *opnd[3] = {NULL, NULL, NULL};
        for (int k = 0; k < arity; k++) {
            int64_t r = ins[1 + k];
            if (r >= 0 && r < dst) opnd[k] = reg[r];
            else if (!(r == -1 && opc == FE_CLIP && k > 0)) {
                rc = ref_fail(c, "instruction %d: bad operand", t);
                break;
            }
        }
        if (rc || !op) {
            if (!rc) rc = ref_fail(c, "instruction %d: bad opcode %d", t, opc);
            break;
        }
        ir_attr at[2];
        memset(at, 0, sizeof at);
        int n_at = 0, n_kin = 1;
        const kiln_tensor *kin[3] = {opnd[0], NULL, NULL};
        switch (opc) {
        case FE_LEAKY_RELU: case FE_ELU:
            at[0].name = "alpha";
            at[0].type = IR_ATTR_FLOAT;
            at[0].f = kv[ins[2] - n_in];
            n_at = 1;
            break;
        case FE_HARD_SIGMOID:
            at[0].name = "alpha";
            at[0].type = IR_ATTR_FLOAT;
            at[0].f = kv[ins[2] - n_in];
            at[1].name = "beta";
            at[1].type = IR_ATTR_FLOAT;
            at[1].f = kv[ins[3] - n_in];
            n_at = 2;
            break;
        case FE_GELU_TANH:
            at[0].name = "approximate";
            at[0].type = IR_ATTR_STRING;
            at[0].s = "tanh";
            at[0].s_len = 4;
            n_at = 1;
            break;
        case FE_CLIP:
            kin[1] = opnd[1];
            kin[2] = opnd[2];
            n_kin = 3;
            break;
        default:
            if (arity == 2) {
                kin[1] = opnd[1];
                n_kin = 2;
            }
            break;
        }
        ir_node sn = as_op(c->node, op, n_kin);
        sn.n_attrs = n_at;
        sn.attrs = at;
        sn.in = NULL; /* kernels read values only through the ref_ctx */
        /* the result's shape: numpy broadcast of the data operands */
        int rank = kin[0]->rank;
        int64_t dims[KILN_MAX_RANK];
        memcpy(dims, kin[0]->dims, sizeof dims);
        if (n_kin == 2 && !shape_broadcast(kin[0]->rank, kin[0]->dims, kin[1]->rank,
                                           kin[1]->dims, &rank, dims)) {
            rc = ref_fail(c, "instruction %d: shapes do not broadcast", t);
            break;
        }
        kiln_tensor *out;
        if (t == n_instr - 1) {
            out = c->out[0];
            if (!out->data || out->dtype != dt ||
                !shape_equal(out->rank, out->dims, rank, dims)) {
                rc = ref_fail(c, "the program's result does not have the output's "
                              "shape");
                break;
            }
        } else if (tensor_new(dt, rank, dims, &out)) {
            rc = ref_fail(c, "%s", kiln_last_error());
            break;
        } else {
            own[dst] = out;
        }
        reg[dst] = out;
        rc = run_kernel(c, &sn, FE_OPSET, n_kin, kin, out);
        /* drop temporaries nobody reads any more */
        for (int k = 0; k < arity && !rc; k++) {
            int64_t r = ins[1 + k];
            if (r >= n_in + nk && last[r] == t && own[r]) {
                tensor_free(own[r]);
                own[r] = NULL;
                reg[r] = NULL;
            }
        }
    }
done:
    if (own)
        for (int i = 0; i < n_regs; i++) tensor_free(own[i]);
    free(own);
    free(reg);
    free(last);
    return rc;
}

const ref_kernel ref_kernels_fused[] = {
    {OP_FusedConv, k_fused_conv},
    {OP_FusedGemm, k_fused_gemm},
    {OP_FusedElementwise, k_fused_elementwise},
    {OP_NONE, NULL},
};
