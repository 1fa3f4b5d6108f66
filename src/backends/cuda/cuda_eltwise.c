/* cuda_eltwise.c: CUDA tactics of the elementwise family: binary ops with
** numpy broadcasting (arithmetic, comparisons, logic, variadic Max/Min/Sum,
** PRelu, Where), unary float math and activations (Clip with constant
** bounds), IsNaN/IsInf, Not, Identity, Cast/CastLike, and the
** FusedElementwise interpreter. Kernels in kernels/eltwise.cu. */
#include "cuda_kc.h"
#include "kernels/eltwise_kernels.h"
#include "../../ops/elementwise_shared.h"
#include "../../ops/fused.h"

#include <float.h>
#include <math.h>

/* ------------------------------------------------------------ geometry */
/* Broadcast geometry of nin inputs against the output y: output dims with
** size 1 dropped and neighbours merged wherever every input walks them as
** one run (the reference's coalescing), so equal shapes and scalars become
** rank 1 and the kernels skip index division. */
static int bshape_make(ref_ctx *c, const kiln_tensor *y, int nin,
                       const kiln_tensor *const *ins, kc_bshape *s) {
    memset(s, 0, sizeof *s);
    s->nin = nin;
    int R = y->rank, r = 0;
    int64_t st[KC_MAX_IN][KILN_MAX_RANK];
    for (int j = 0; j < nin; j++) {
        const kiln_tensor *t = ins[j];
        if (t->rank > R)
            return ref_fail(c, "input %d has rank %d, above the output's %d", j, t->rank, R);
        int64_t run = 1;
        for (int d = R - 1; d >= 0; d--) {
            int k = d - (R - t->rank);
            int64_t dim = k >= 0 ? t->dims[k] : 1;
            if (dim != 1 && dim != y->dims[d])
                return ref_fail(c, "input %d does not broadcast to the output shape", j);
            st[j][d] = dim == 1 ? 0 : run;
            run *= dim;
        }
    }
    for (int d = 0; d < R; d++) {
        if (y->dims[d] == 1) continue;
        bool merge = r > 0;
        for (int j = 0; j < nin && merge; j++)
            if (s->st[j][r - 1] != st[j][d] * y->dims[d]) merge = false;
        if (merge) {
            s->dims[r - 1] *= y->dims[d];
            for (int j = 0; j < nin; j++) s->st[j][r - 1] = st[j][d];
            continue;
        }
        if (r == KC_MAX_RANK) return ref_fail(c, "too many broadcast dims for the GPU kernel");
        s->dims[r] = y->dims[d];
        for (int j = 0; j < nin; j++) s->st[j][r] = st[j][d];
        r++;
    }
    s->rank = r;
    return 0;
}

/* ------------------------------------------------------------ binary */
typedef struct bin_info {
    int op, kb;
    bool fl, in, bl; /* float, integer, bool inputs allowed */
} bin_info;

static const bin_info k_bin[] = {
    {OP_Add, KB_ADD, true, true, false},   {OP_Sub, KB_SUB, true, true, false},
    {OP_Mul, KB_MUL, true, true, false},   {OP_Div, KB_DIV, true, true, false},
    {OP_Pow, KB_POW, true, true, false},   {OP_Max, KB_MAX, true, true, false},
    {OP_Min, KB_MIN, true, true, false},   {OP_Sum, KB_ADD, true, false, false},
    {OP_Mean, KB_ADD, true, false, false}, {OP_Mod, KB_MOD, true, true, false},
    {OP_BitwiseAnd, KB_BAND, false, true, false}, {OP_BitwiseOr, KB_BOR, false, true, false},
    {OP_BitwiseXor, KB_BXOR, false, true, false}, {OP_BitShift, KB_SHL, false, true, false},
    {OP_PRelu, KB_PRELU, true, true, false},
    {OP_Equal, KB_EQ, true, true, true},   {OP_Less, KB_LT, true, true, false},
    {OP_LessOrEqual, KB_LE, true, true, false}, {OP_Greater, KB_GT, true, true, false},
    {OP_GreaterOrEqual, KB_GE, true, true, false},
    {OP_And, KB_AND, false, false, true},  {OP_Or, KB_OR, false, false, true},
    {OP_Xor, KB_XOR, false, false, true},
};

static const bin_info *bin_find(int op) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_bin); i++)
        if (k_bin[i].op == op) return &k_bin[i];
    return NULL;
}

static bool variadic(int op) {
    return op == OP_Max || op == OP_Min || op == OP_Sum || op == OP_Mean;
}

static bool binary_supports(const ir_node *n, const ir_type *const *in) {
    const bin_info *b = bin_find(n->op);
    if (!b) return false;
    int lo = variadic(n->op) ? 1 : 2, hi = variadic(n->op) ? KC_MAX_IN : 2;
    if (n->n_in < lo || n->n_in > hi) return false;
    /* legacy (opset < 7) broadcasting and per-channel PRelu: host */
    if (ir_attr_find(n, "broadcast") || (n->op == OP_PRelu && kc_opset(n) < 7)) return false;
    kiln_dtype dt = in[0] ? in[0]->dtype : KILN_DTYPE_UNDEFINED;
    /* float64 runs in double (not PRelu's per-channel forms: no matter) */
    bool ok = (b->fl && (kc_dt_float(dt) || dt == KILN_DTYPE_FLOAT64)) ||
              (b->in && kc_dt_int(dt)) || (b->bl && dt == KILN_DTYPE_BOOL);
    if (!ok) return false;
    /* Mean's final scaling has no float64 kernel */
    if (n->op == OP_Mean && dt == KILN_DTYPE_FLOAT64) return false;
    /* BitShift is defined on unsigned types only */
    if (n->op == OP_BitShift &&
        ((dt != KILN_DTYPE_UINT8 && dt != KILN_DTYPE_UINT16 && dt != KILN_DTYPE_UINT32 &&
          dt != KILN_DTYPE_UINT64) ||
         (strcmp(ir_attr_str(n, "direction", ""), "LEFT") &&
          strcmp(ir_attr_str(n, "direction", ""), "RIGHT"))))
        return false;
    for (int i = 0; i < n->n_in; i++) {
        if (!kc_has_in(n, in, i) || !kc_rank_ok(in[i])) return false;
        /* Pow's exponent may be any type the loader widens to float; an
        ** integer base takes an integer exponent (exact integer powers) */
        bool exp_ok = n->op == OP_Pow && i == 1 &&
                      (kc_dt_float(in[1]->dtype) || in[1]->dtype == KILN_DTYPE_FLOAT64 ||
                       kc_dt_int(in[1]->dtype));
        if (in[i]->dtype != dt && !exp_ok) return false;
    }
    return true;
}

static int binary_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const bin_info *b = bin_find(n->op);
    kiln_tensor *y = c->out[0];
    cudaStream_t st = cuda_stream_of(c);
    int64_t cnt = tensor_numel(y);
    if (cnt == 0) return 0;
    int kb = b->kb;
    if (n->op == OP_Mod && ir_attr_int(n, "fmod", 0)) kb = KB_FMOD;
    if (n->op == OP_BitShift && !strcmp(ir_attr_str(n, "direction", ""), "RIGHT")) kb = KB_SHR;
    kc_bshape s;
    /* Max/Min/Sum/Mean of one input: the input (it has the output's shape) */
    if (c->n_in == 1) {
        if (c->in[0]->nbytes != y->nbytes) return ref_fail(c, "internal: output size");
        if (y->data == c->in[0]->data) return 0;
        return cuda_fail_if(c, cudaMemcpyAsync(y->data, c->in[0]->data, y->nbytes,
                                               cudaMemcpyDeviceToDevice, st),
                            n->op_type);
    }
    /* Variadic ops fold in place: y = op(in0, in1), then y = op(y, in_k);
    ** each element reads only its own position of y. */
    for (int k = 1; k < c->n_in; k++) {
        const kiln_tensor *a = k == 1 ? c->in[0] : y, *bb = c->in[k];
        const kiln_tensor *pair[2] = {a, bb};
        if (bshape_make(c, y, 2, pair, &s)) return -1;
        if (cuda_fail_if(c, kc_binary(kb, (int)a->dtype, (int)bb->dtype, (int)y->dtype, &s,
                                      a->data, bb->data, y->data, cnt, st),
                         n->op_type))
            return -1;
    }
    if (n->op == OP_Mean)
        return cuda_fail_if(c, kc_unary(KU_SCALE, (int)y->dtype, 1.0f / (float)c->n_in, 0, 0,
                                        y->data, y->data, cnt, st),
                            "Mean");
    return 0;
}

static bool where_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in != 3) return false;
    for (int i = 0; i < 3; i++)
        if (!kc_has_in(n, in, i) || !kc_rank_ok(in[i])) return false;
    kiln_dtype t = in[1]->dtype;
    size_t es = kiln_dtype_size(t);
    return in[0]->dtype == KILN_DTYPE_BOOL && in[2]->dtype == t && t != KILN_DTYPE_STRING &&
           t != KILN_DTYPE_INT4 && t != KILN_DTYPE_UINT4 && t != KILN_DTYPE_FLOAT4E2M1 &&
           (es == 1 || es == 2 || es == 4 || es == 8);
}

static int where_run(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    int64_t cnt = tensor_numel(y);
    if (cnt == 0) return 0;
    kc_bshape s;
    if (bshape_make(c, y, 3, c->in, &s)) return -1;
    return cuda_fail_if(c, kc_where(&s, c->in[0]->data, c->in[1]->data, c->in[2]->data, y->data,
                                    (int)kiln_dtype_size(y->dtype), cnt, cuda_stream_of(c)),
                        "Where");
}

/* ------------------------------------------------------------ unary */
typedef struct un_info {
    int op, ku;
} un_info;

static const un_info k_un[] = {
    {OP_Neg, KU_NEG}, {OP_Abs, KU_ABS}, {OP_Sqrt, KU_SQRT}, {OP_Exp, KU_EXP},
    {OP_Log, KU_LOG}, {OP_Tanh, KU_TANH}, {OP_Sigmoid, KU_SIGMOID}, {OP_Relu, KU_RELU},
    {OP_Erf, KU_ERF}, {OP_Reciprocal, KU_RECIP}, {OP_Floor, KU_FLOOR}, {OP_Ceil, KU_CEIL},
    {OP_Round, KU_ROUND}, {OP_Sin, KU_SIN}, {OP_Cos, KU_COS}, {OP_Tan, KU_TAN},
    {OP_Sign, KU_SIGN}, {OP_Softplus, KU_SOFTPLUS}, {OP_Softsign, KU_SOFTSIGN},
    {OP_Elu, KU_ELU}, {OP_Selu, KU_SELU}, {OP_Celu, KU_CELU},
    {OP_ThresholdedRelu, KU_THRELU}, {OP_Swish, KU_SWISH}, {OP_LeakyRelu, KU_LEAKY},
    {OP_HardSigmoid, KU_HSIG}, {OP_HardSwish, KU_HSWISH}, {OP_Mish, KU_MISH},
    {OP_Gelu, KU_GELU}, {OP_Clip, KU_CLIP},
    {OP_Asin, KU_ASIN}, {OP_Acos, KU_ACOS}, {OP_Atan, KU_ATAN}, {OP_Sinh, KU_SINH},
    {OP_Cosh, KU_COSH}, {OP_Asinh, KU_ASINH}, {OP_Acosh, KU_ACOSH}, {OP_Atanh, KU_ATANH},
    {OP_Shrink, KU_SHRINK},
};

static const un_info *un_find(int op) {
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_un); i++)
        if (k_un[i].op == op) return &k_un[i];
    return NULL;
}

static bool unary_supports(const ir_node *n, const ir_type *const *in) {
    if (!un_find(n->op) || !kc_has_in(n, in, 0)) return false;
    /* float64: the parameterless math kc_unary computes in double */
    if (in[0]->dtype == KILN_DTYPE_FLOAT64)
        return n->n_in == 1 && n->op != OP_Clip && kc_unary_f64_ok(un_find(n->op)->ku);
    if (!kc_dt_float(in[0]->dtype)) return false;
    /* Clip's bounds are read on the host: constant (or absent) scalars */
    if (n->op == OP_Clip)
        for (int k = 1; k < 3; k++) {
            if (!kc_absent_or_const(n, k)) return false;
            const kiln_tensor *b = kc_const_in(n, k);
            if (b && (b->dtype != in[0]->dtype || tensor_numel(b) != 1)) return false;
        }
    else if (n->n_in != 1)
        return false;
    return true;
}

/* Clip whose bounds are runtime scalars, read on the host at run time
** (TACTIC_READS_PARAMS). */
static bool clip_rt_supports(const ir_node *n, const ir_type *const *in) {
    if (n->op != OP_Clip || !kc_has_in(n, in, 0) || !kc_dt_float(in[0]->dtype)) return false;
    bool rt = false;
    for (int k = 1; k < 3; k++) {
        if (kc_absent_or_const(n, k)) {
            const kiln_tensor *b = kc_const_in(n, k);
            if (b && (b->dtype != in[0]->dtype || tensor_numel(b) != 1)) return false;
            continue;
        }
        if (!kc_has_in(n, in, k) || in[k]->dtype != in[0]->dtype || in[k]->rank > 1 ||
            (in[k]->rank == 1 && in[k]->dims[0] != 1))
            return false;
        rt = true;
    }
    return rt;
}

static int unary_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const un_info *u = un_find(n->op);
    float p0 = 0, p1 = 0, p2 = 0;
    int ku = u->ku;
    switch (n->op) {
    case OP_LeakyRelu: p0 = ir_attr_float(n, "alpha", 0.01f); break;
    case OP_Elu: case OP_Celu: case OP_ThresholdedRelu: case OP_Swish:
        p0 = ir_attr_float(n, "alpha", 1.0f);
        break;
    case OP_Selu:
        p0 = ir_attr_float(n, "alpha", 1.67326319217681884765625f);
        p2 = ir_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case OP_HardSigmoid:
        p0 = ir_attr_float(n, "alpha", 0.2f);
        p1 = ir_attr_float(n, "beta", 0.5f);
        break;
    case OP_Gelu:
        if (strcmp(ir_attr_str(n, "approximate", "none"), "tanh") == 0) ku = KU_GELU_TANH;
        break;
    case OP_Shrink:
        p0 = ir_attr_float(n, "lambd", 0.5f);
        p1 = ir_attr_float(n, "bias", 0.0f);
        break;
    case OP_Clip:
        if (c->opset < 11) {
            p0 = ir_attr_float(n, "min", -FLT_MAX);
            p1 = ir_attr_float(n, "max", FLT_MAX);
        } else {
            p0 = -INFINITY;
            p1 = INFINITY;
            for (int k = 1; k < 3; k++) {
                if (!ref_has(c, k)) continue;
                double b;
                int nb = cuda_param_f64(c, k, &b, 1, "Clip bound");
                if (nb < 0) return -1;
                if (nb != 1) return ref_fail(c, "Clip bound %d must be a scalar", k);
                if (k == 1) p0 = (float)b;
                else p1 = (float)b;
            }
        }
        break;
    default: break;
    }
    const kiln_tensor *x = c->in[0];
    return cuda_fail_if(c, kc_unary(ku, (int)x->dtype, p0, p1, p2, x->data, c->out[0]->data,
                                    tensor_numel(x), cuda_stream_of(c)),
                        n->op_type);
}

/* Clip on integer types: y = min(max(x, lo), hi) with the bounds read on
** the device as broadcast scalars (absent bounds skipped), so constant and
** runtime bounds are the same case. */
static bool clip_int_supports(const ir_node *n, const ir_type *const *in) {
    if (n->op != OP_Clip || kc_opset(n) < 11 || !kc_has_in(n, in, 0) || !kc_dt_int(in[0]->dtype))
        return false;
    for (int k = 1; k < 3; k++) {
        if (k >= n->n_in || !n->in[k]) continue;
        if (!kc_has_in(n, in, k) || in[k]->dtype != in[0]->dtype ||
            shape_numel(in[k]->rank < 0 ? 0 : in[k]->rank, in[k]->dims) != 1 || in[k]->rank > 1)
            return false;
    }
    return true;
}

static int clip_int_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t cnt = tensor_numel(y);
    cudaStream_t st = cuda_stream_of(c);
    const kiln_tensor *cur = x;
    if (cnt == 0) return 0;
    for (int k = 1; k < 3; k++) {
        if (!ref_has(c, k)) continue;
        if (tensor_numel(c->in[k]) != 1) return ref_fail(c, "Clip bound %d must be a scalar", k);
        const kiln_tensor *pair[2] = {cur, c->in[k]};
        kc_bshape s;
        if (bshape_make(c, y, 2, pair, &s)) return -1;
        if (cuda_fail_if(c, kc_binary(k == 1 ? KB_MAX : KB_MIN, (int)cur->dtype, (int)c->in[k]->dtype,
                                      (int)y->dtype, &s, cur->data, c->in[k]->data, y->data, cnt,
                                      st),
                         "Clip"))
            return -1;
        cur = y;
    }
    if (cur == x && y->data != x->data) /* no bounds: a copy */
        return cuda_fail_if(c, cudaMemcpyAsync(y->data, x->data, x->nbytes,
                                               cudaMemcpyDeviceToDevice, st),
                            "Clip");
    return 0;
}

/* BitwiseNot on the integer types. */
static bool bitnot_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && kc_dt_int(in[0]->dtype);
}

static int bitnot_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    return cuda_fail_if(c, kc_bitnot((int)x->dtype, x->data, c->out[0]->data, tensor_numel(x),
                                     cuda_stream_of(c)),
                        "BitwiseNot");
}

static bool isx_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && kc_dt_float(in[0]->dtype);
}

static int isx_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0];
    return cuda_fail_if(c, kc_isx((int)x->dtype, n->op == OP_IsNaN,
                                  ir_attr_int(n, "detect_positive", 1) != 0,
                                  ir_attr_int(n, "detect_negative", 1) != 0, x->data,
                                  c->out[0]->data, tensor_numel(x), cuda_stream_of(c)),
                        n->op_type);
}

static bool not_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && in[0]->dtype == KILN_DTYPE_BOOL;
}

static int not_run(ref_ctx *c) {
    return cuda_fail_if(c, kc_not(c->in[0]->data, c->out[0]->data, tensor_numel(c->in[0]),
                                  cuda_stream_of(c)),
                        "Not");
}

static bool identity_supports(const ir_node *n, const ir_type *const *in) {
    return n->n_in == 1 && kc_has_in(n, in, 0) && in[0]->dtype != KILN_DTYPE_STRING &&
           in[0]->dtype != KILN_DTYPE_UNDEFINED;
}

static int identity_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->data == y->data || !x->nbytes) return 0;
    size_t nb = x->nbytes < y->nbytes ? x->nbytes : y->nbytes;
    return cuda_fail_if(c, cudaMemcpyAsync(y->data, x->data, nb, cudaMemcpyDeviceToDevice,
                                           cuda_stream_of(c)),
                        "Identity");
}

/* ------------------------------------------------------------ cast */
/* The 8- and 4-bit types cast_small.cu converts. */
static bool dt_small(kiln_dtype t) {
    return (t >= KILN_DTYPE_FLOAT8E4M3FN && t <= KILN_DTYPE_FLOAT8E5M2FNUZ) ||
           t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_INT4 || t == KILN_DTYPE_FLOAT4E2M1;
}

static bool cast_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || !(kc_dt_cast(in[0]->dtype) || dt_small(in[0]->dtype)))
        return false;
    kiln_dtype to;
    if (n->op == OP_CastLike) {
        if (!kc_has_in(n, in, 1)) return false;
        to = in[1]->dtype;
    } else {
        int64_t t = elementwise_cast_to(n);
        if (t <= 0 || t >= KILN_DTYPE_COUNT_) return false;
        to = (kiln_dtype)t;
    }
    return kc_dt_cast(to) || dt_small(to);
}

static int cast_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    int64_t cnt = tensor_numel(x);
    if (cnt == 0) return 0;
    if (x->dtype == y->dtype)
        return cuda_fail_if(c, cudaMemcpyAsync(y->data, x->data, x->nbytes,
                                               cudaMemcpyDeviceToDevice, cuda_stream_of(c)),
                            "Cast");
    if (dt_small(x->dtype) || dt_small(y->dtype))
        return cuda_fail_if(c, kc_cast_small((int)x->dtype, (int)y->dtype,
                                             ir_attr_int(c->node, "saturate", 1) != 0, x->data,
                                             y->data, cnt, cuda_stream_of(c)),
                            c->node->op_type);
    return cuda_fail_if(c, kc_cast((int)x->dtype, (int)y->dtype, x->data, y->data, cnt,
                                   cuda_stream_of(c)),
                        c->node->op_type);
}

/* ------------------------------------------------------------ quantization */
static bool q_float(kiln_dtype t) { return kc_dt_float(t) || t == KILN_DTYPE_FLOAT64; }

/* Quantized types: the integer ones of ONNX QuantizeLinear and the 8- and
** 4-bit ones. */
static bool q_type(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT16 ||
           t == KILN_DTYPE_UINT16 || t == KILN_DTYPE_INT32 || dt_small(t);
}

static bool quant_supports(const ir_node *n, const ir_type *const *in) {
    if (!kc_has_in(n, in, 0) || !kc_has_in(n, in, 1) || !q_float(in[1]->dtype) || n->n_out < 1 ||
        !n->out[0])
        return false;
    kiln_dtype yt = n->out[0]->type.dtype;
    if (kc_has_in(n, in, 2) && !q_type(in[2]->dtype)) return false;
    if (n->op == OP_QuantizeLinear)
        return (q_float(in[0]->dtype) || in[0]->dtype == KILN_DTYPE_INT32) && q_type(yt) &&
               yt != KILN_DTYPE_INT32;
    return q_type(in[0]->dtype) && q_float(yt);
}

static int quant_run(ref_ctx *c) {
    const ir_node *n = c->node;
    const kiln_tensor *x = c->in[0], *s = c->in[1];
    const kiln_tensor *z = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    kc_qparams p;
    memset(&p, 0, sizeof p);
    int64_t ns = tensor_numel(s);
    if (z && tensor_numel(z) != ns)
        return ref_fail(c, "zero point has %lld elements, scale has %lld",
                        (long long)tensor_numel(z), (long long)ns);
    if (ns != 1) {
        int64_t axis = ir_attr_int(n, "axis", 1), bs = ir_attr_int(n, "block_size", 0);
        if (x->rank == 0 || axis < -x->rank || axis >= x->rank)
            return ref_fail(c, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
        int a = (int)(axis < 0 ? axis + x->rank : axis);
        p.m.dim = x->dims[a];
        p.m.inner = shape_numel(x->rank - a - 1, x->dims + a + 1);
        if (bs <= 0) {
            if (s->rank != 1 || s->dims[0] != p.m.dim)
                return ref_fail(c, "per-axis scale must be 1-D of length %lld",
                                (long long)p.m.dim);
            p.m.mode = 1;
        } else {
            if (s->rank != x->rank) return ref_fail(c, "blocked scale must have rank %d", x->rank);
            for (int k = 0; k < x->rank; k++) {
                int64_t want = k == a ? x->dims[k] / bs + (x->dims[k] % bs != 0) : x->dims[k];
                if (s->dims[k] != want)
                    return ref_fail(c, "blocked scale dim %d is %lld, expected %lld", k,
                                    (long long)s->dims[k], (long long)want);
            }
            p.m.mode = 2;
            p.m.sdim = s->dims[a];
            p.m.block = bs;
        }
        if (p.m.inner <= 0 || p.m.dim <= 0) return 0; /* empty: nothing to write */
    }
    p.xt = (int)x->dtype;
    p.st = (int)s->dtype;
    p.zt = z ? (int)z->dtype : 0;
    p.yt = (int)y->dtype;
    p.saturate = ir_attr_int(n, "saturate", 1) != 0;
    kiln_dtype prec = (kiln_dtype)ir_attr_int(n, "precision", 0);
    if (!prec) {
        if (x->dtype == s->dtype)
            prec = x->dtype == KILN_DTYPE_INT32 ? KILN_DTYPE_FLOAT64 : x->dtype;
        else if (x->dtype == KILN_DTYPE_INT32 || s->dtype == KILN_DTYPE_INT32)
            prec = KILN_DTYPE_FLOAT64;
        else
            prec = KILN_DTYPE_FLOAT32;
    }
    if (!q_float(prec)) return ref_fail(c, "precision %d is not a float type", (int)prec);
    p.prec = (int)prec;
    switch (y->dtype) {
    case KILN_DTYPE_INT8: p.lo = -128; p.hi = 127; break;
    case KILN_DTYPE_UINT8: p.lo = 0; p.hi = 255; break;
    case KILN_DTYPE_INT16: p.lo = -32768; p.hi = 32767; break;
    case KILN_DTYPE_UINT16: p.lo = 0; p.hi = 65535; break;
    case KILN_DTYPE_INT4: p.lo = -8; p.hi = 7; break;
    case KILN_DTYPE_UINT4: p.lo = 0; p.hi = 15; break;
    default: p.lo = INT32_MIN; p.hi = INT32_MAX; break;
    }
    cudaStream_t st = cuda_stream_of(c);
    if (n->op == OP_QuantizeLinear)
        return cuda_fail_if(c, kc_quantize(&p, x->data, s->data, z ? z->data : NULL, y->data,
                                           tensor_numel(x), st),
                            "QuantizeLinear");
    return cuda_fail_if(c, kc_dequantize(&p, x->data, s->data, z ? z->data : NULL, y->data,
                                         tensor_numel(x), st),
                        "DequantizeLinear");
}

static bool dynq_supports(const ir_node *n, const ir_type *const *in) {
    return kc_has_in(n, in, 0) && in[0]->dtype == KILN_DTYPE_FLOAT32 && n->n_out == 3 &&
           n->out[0] && n->out[1] && n->out[2];
}

static size_t dynq_workspace(const ir_node *n, const ir_type *const *in) {
    (void)n;
    (void)in;
    return 64;
}

static int dynq_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (c->n_out < 3 || !c->out[1] || !c->out[2] || !c->out[1]->data || !c->out[2]->data)
        return ref_fail(c, "DynamicQuantizeLinear needs its three outputs");
    if (!c->ws || c->ws_size < sizeof(float)) return ref_fail(c, "no workspace");
    return cuda_fail_if(c, kc_dynamic_quantize(x->data, tensor_numel(x), c->out[0]->data,
                                               c->out[1]->data, c->out[2]->data, c->ws,
                                               cuda_stream_of(c)),
                        "DynamicQuantizeLinear");
}

/* ------------------------------------------------------------ fused */
/* FE_* opcode -> kernel opcode (binary or unary). */
static bool fe_map(int opc, bool *binary, int *code) {
    static const int bin[][2] = {{FE_ADD, KB_ADD}, {FE_SUB, KB_SUB}, {FE_MUL, KB_MUL},
                                 {FE_DIV, KB_DIV}, {FE_POW, KB_POW}, {FE_MAX, KB_MAX},
                                 {FE_MIN, KB_MIN}};
    static const int un[][2] = {
        {FE_NEG, KU_NEG}, {FE_ABS, KU_ABS}, {FE_SQRT, KU_SQRT}, {FE_EXP, KU_EXP},
        {FE_LOG, KU_LOG}, {FE_TANH, KU_TANH}, {FE_SIGMOID, KU_SIGMOID}, {FE_RELU, KU_RELU},
        {FE_ERF, KU_ERF}, {FE_RECIPROCAL, KU_RECIP}, {FE_FLOOR, KU_FLOOR},
        {FE_CEIL, KU_CEIL}, {FE_SIN, KU_SIN}, {FE_COS, KU_COS}, {FE_SOFTPLUS, KU_SOFTPLUS},
        {FE_SOFTSIGN, KU_SOFTSIGN}, {FE_HARD_SWISH, KU_HSWISH}, {FE_GELU, KU_GELU},
        {FE_GELU_TANH, KU_GELU_TANH}, {FE_LEAKY_RELU, KU_LEAKY}, {FE_ELU, KU_ELU},
        {FE_HARD_SIGMOID, KU_HSIG}, {FE_CLIP, KU_CLIP}};
    for (size_t i = 0; i < KILN_ARRAY_LEN(bin); i++)
        if (bin[i][0] == opc) {
            *binary = true;
            *code = bin[i][1];
            return true;
        }
    for (size_t i = 0; i < KILN_ARRAY_LEN(un); i++)
        if (un[i][0] == opc) {
            *binary = false;
            *code = un[i][1];
            return true;
        }
    return false;
}

/* A value as a tensor of dt would hold it (constant registers are tensors
** of the inputs' type in the reference). */
static float round_to(kiln_dtype dt, float v) {
    if (dt == KILN_DTYPE_FLOAT16) return f16_to_f32(f32_to_f16(v));
    if (dt == KILN_DTYPE_BFLOAT16) return bf16_to_f32(f32_to_bf16(v));
    return v;
}

/* Decodes the node's program into p (registers allocated by liveness so
** they fit the kernel's register file). false with a reason otherwise. */
static bool fe_decode(const ir_node *n, kiln_dtype dt, kc_fe_prog *p, const char **why) {
    int np = 0, nk = 0;
    const int64_t *prog = ir_attr_ints(n, "program", &np);
    const float *kv = ir_attr_floats(n, "constants", &nk);
    int n_in = n->n_in, n_instr = np / 4;
    memset(p, 0, sizeof *p);
    *why = "program too large for the GPU interpreter";
    if (!prog || np % 4 || n_instr < 1 || n_in < 1) {
        *why = "empty or malformed program";
        return false;
    }
    if (n_in > KC_MAX_IN || n_instr > KC_FE_MAX_INSTR || nk > KC_FE_MAX_CONST) return false;
    int n_regs = n_in + nk + n_instr;
    int last[KC_MAX_IN + KC_FE_MAX_CONST + KC_FE_MAX_INSTR];
    int slot[KC_MAX_IN + KC_FE_MAX_CONST + KC_FE_MAX_INSTR];
    bool busy[KC_FE_MAX_REGS] = {false};
    for (int i = 0; i < n_regs; i++) last[i] = -1;
    for (int t = 0; t < n_instr; t++)
        for (int k = 1; k < 4; k++) {
            int64_t r = prog[4 * t + k];
            if (r >= 0 && r < n_regs) last[r] = t;
        }
    for (int i = 0; i < nk; i++) p->k[i] = round_to(dt, kv[i]);
    for (int i = 0; i < n_in; i++) {
        slot[i] = i;
        busy[i] = true;
    }
    for (int t = 0; t < n_instr; t++) {
        const int64_t *q = prog + 4 * t;
        int dst = n_in + nk + t;
        kc_fe_instr *o = &p->ins[t];
        bool binary;
        int code;
        if (q[0] < 0 || q[0] > 1000 || !fe_map((int)q[0], &binary, &code)) {
            *why = "unknown opcode";
            return false;
        }
        int arity = fe_opcode_arity((int)q[0]);
        for (int k = 0; k < arity; k++) {
            int64_t r = q[1 + k];
            bool opt = q[0] == FE_CLIP && k > 0 && r == -1;
            bool param = fe_opcode_param((int)q[0], k);
            if (!opt && (r < 0 || r >= dst || (param && (r < n_in || r >= n_in + nk)))) {
                *why = "bad operand";
                return false;
            }
        }
        int16_t opnd[2] = {0, -1};
        for (int k = 0; k < 2 && k < arity; k++) {
            int64_t r = q[1 + k];
            if (k == 1 && !binary) break;
            opnd[k] = (int16_t)(r < n_in ? r : r < n_in + nk ? -(r - n_in) - 1 : slot[r]);
        }
        o->binary = binary;
        o->op = (int16_t)code;
        o->a = opnd[0];
        o->b = binary ? opnd[1] : -1;
        /* parameters: LeakyRelu/Elu/HardSigmoid take the raw attribute value,
        ** Clip the bound as its constant tensor holds it */
        switch (q[0]) {
        case FE_LEAKY_RELU: case FE_ELU: o->p0 = kv[q[2] - n_in]; break;
        case FE_HARD_SIGMOID:
            o->p0 = kv[q[2] - n_in];
            o->p1 = kv[q[3] - n_in];
            break;
        case FE_CLIP:
            o->p0 = q[2] >= 0 ? p->k[q[2] - n_in] : -INFINITY;
            o->p1 = q[3] >= 0 ? p->k[q[3] - n_in] : INFINITY;
            break;
        default: break;
        }
        /* operands whose last reader is this instruction free their slot
        ** first (the kernel reads operands before writing the result) */
        for (int k = 0; k < arity; k++) {
            int64_t r = q[1 + k];
            if (r >= n_in + nk && last[r] == t) busy[slot[r]] = false;
        }
        int s = 0;
        while (s < KC_FE_MAX_REGS && busy[s]) s++;
        if (s == KC_FE_MAX_REGS) return false;
        slot[dst] = s;
        o->dst = (int16_t)s;
        if (last[dst] >= 0 || t == n_instr - 1) busy[s] = true;
    }
    p->n_in = n_in;
    p->n_instr = n_instr;
    p->out_reg = slot[n_regs - 1];
    return true;
}

static bool fused_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 1 || !kc_has_in(n, in, 0) || !kc_dt_float(in[0]->dtype)) return false;
    for (int i = 0; i < n->n_in; i++)
        if (!kc_has_in(n, in, i) || in[i]->dtype != in[0]->dtype || !kc_rank_ok(in[i]))
            return false;
    kc_fe_prog p;
    const char *why;
    return fe_decode(n, in[0]->dtype, &p, &why);
}

static int fused_run(ref_ctx *c) {
    kiln_tensor *y = c->out[0];
    int64_t cnt = tensor_numel(y);
    kc_fe_prog p;
    const char *why;
    if (!fe_decode(c->node, y->dtype, &p, &why)) return ref_fail(c, "%s", why);
    if (cnt == 0) return 0;
    if (bshape_make(c, y, c->n_in, c->in, &p.s)) return -1;
    for (int i = 0; i < c->n_in; i++) p.in[i] = c->in[i]->data;
    return cuda_fail_if(c, kc_fused_eltwise((int)y->dtype, &p, y->data, cnt, cuda_stream_of(c)),
                        "FusedElementwise");
}

/* ------------------------------------------------------------ tables */
#define BIN(OP, NAME, FL)                                                               \
    static const kiln_tactic t_##OP = {"cuda_" NAME "_bcast", OP_##OP, 0, FL,            \
                                       binary_supports, NULL, binary_run};
BIN(Add, "add", KC_FLAGS_INPLACE)
BIN(Sub, "sub", KC_FLAGS_INPLACE)
BIN(Mul, "mul", KC_FLAGS_INPLACE)
BIN(Div, "div", KC_FLAGS_INPLACE)
BIN(Pow, "pow", KC_FLAGS_INPLACE)
BIN(Max, "max", KC_FLAGS_INPLACE)
BIN(Min, "min", KC_FLAGS_INPLACE)
BIN(Sum, "sum", KC_FLAGS_INPLACE)
BIN(Mean, "mean", KC_FLAGS_INPLACE)
BIN(Mod, "mod", KC_FLAGS_INPLACE)
BIN(PRelu, "prelu", KC_FLAGS_INPLACE)
BIN(Equal, "equal", KC_FLAGS)
BIN(Less, "less", KC_FLAGS)
BIN(LessOrEqual, "less_or_equal", KC_FLAGS)
BIN(Greater, "greater", KC_FLAGS)
BIN(GreaterOrEqual, "greater_or_equal", KC_FLAGS)
BIN(And, "and", KC_FLAGS)
BIN(Or, "or", KC_FLAGS)
BIN(Xor, "xor", KC_FLAGS)
BIN(BitwiseAnd, "bitwise_and", KC_FLAGS_INPLACE)
BIN(BitwiseOr, "bitwise_or", KC_FLAGS_INPLACE)
BIN(BitwiseXor, "bitwise_xor", KC_FLAGS_INPLACE)
BIN(BitShift, "bit_shift", KC_FLAGS_INPLACE)
#undef BIN

#define UN(OP, NAME)                                                                    \
    static const kiln_tactic t_##OP = {"cuda_" NAME "_f", OP_##OP, 0, KC_FLAGS_INPLACE,  \
                                       unary_supports, NULL, unary_run};
UN(Neg, "neg") UN(Abs, "abs") UN(Sqrt, "sqrt") UN(Exp, "exp") UN(Log, "log")
UN(Tanh, "tanh") UN(Sigmoid, "sigmoid") UN(Relu, "relu") UN(Erf, "erf")
UN(Reciprocal, "reciprocal") UN(Floor, "floor") UN(Ceil, "ceil") UN(Round, "round")
UN(Sin, "sin") UN(Cos, "cos") UN(Tan, "tan") UN(Sign, "sign") UN(Softplus, "softplus")
UN(Softsign, "softsign") UN(Elu, "elu") UN(Selu, "selu") UN(Celu, "celu")
UN(ThresholdedRelu, "thresholded_relu") UN(Swish, "swish") UN(LeakyRelu, "leaky_relu")
UN(HardSigmoid, "hard_sigmoid") UN(HardSwish, "hard_swish") UN(Mish, "mish")
UN(Gelu, "gelu") UN(Clip, "clip")
UN(Asin, "asin") UN(Acos, "acos") UN(Atan, "atan") UN(Sinh, "sinh") UN(Cosh, "cosh")
UN(Asinh, "asinh") UN(Acosh, "acosh") UN(Atanh, "atanh") UN(Shrink, "shrink")
#undef UN
static const kiln_tactic t_Clip_rt = {"cuda_clip_f_rtbounds", OP_Clip, 0,
                                      KC_FLAGS_INPLACE | TACTIC_READS_PARAMS, clip_rt_supports,
                                      NULL, unary_run};

static const kiln_tactic t_Where = {"cuda_where_bcast", OP_Where, 0, KC_FLAGS, where_supports,
                                    NULL, where_run};
static const kiln_tactic t_IsNaN = {"cuda_isnan", OP_IsNaN, 0, KC_FLAGS, isx_supports, NULL,
                                    isx_run};
static const kiln_tactic t_IsInf = {"cuda_isinf", OP_IsInf, 0, KC_FLAGS, isx_supports, NULL,
                                    isx_run};
static const kiln_tactic t_Not = {"cuda_not", OP_Not, 0, KC_FLAGS_INPLACE, not_supports, NULL,
                                  not_run};
static const kiln_tactic t_Identity = {"cuda_identity_copy", OP_Identity, 0, KC_FLAGS_INPLACE,
                                       identity_supports, NULL, identity_run};
static const kiln_tactic t_Cast = {"cuda_cast", OP_Cast, 0, KC_FLAGS, cast_supports, NULL,
                                   cast_run};
static const kiln_tactic t_CastLike = {"cuda_castlike", OP_CastLike, 0, KC_FLAGS,
                                       cast_supports, NULL, cast_run};
static const kiln_tactic t_Clip_int = {"cuda_clip_int", OP_Clip, 0, KC_FLAGS_INPLACE,
                                       clip_int_supports, NULL, clip_int_run};
static const kiln_tactic t_BitNot = {"cuda_bitwise_not", OP_BitwiseNot, 0, KC_FLAGS_INPLACE,
                                     bitnot_supports, NULL, bitnot_run};
static const kiln_tactic t_Quant = {"cuda_quantize_linear", OP_QuantizeLinear, 0, KC_FLAGS,
                                    quant_supports, NULL, quant_run};
static const kiln_tactic t_Dequant = {"cuda_dequantize_linear", OP_DequantizeLinear, 0,
                                      KC_FLAGS, quant_supports, NULL, quant_run};
static const kiln_tactic t_DynQ = {"cuda_dynamic_quantize_linear", OP_DynamicQuantizeLinear, 0,
                                   KC_FLAGS, dynq_supports, dynq_workspace, dynq_run};
static const kiln_tactic t_Fused = {"cuda_fused_elementwise_interp", OP_FusedElementwise, 0,
                                    KC_FLAGS_INPLACE, fused_supports, NULL, fused_run};

const kiln_tactic *const cuda_tactics_eltwise[] = {
    &t_Add, &t_Sub, &t_Mul, &t_Div, &t_Pow, &t_Max, &t_Min, &t_Sum, &t_Mean, &t_Mod,
    &t_PRelu, &t_Equal, &t_Less, &t_LessOrEqual, &t_Greater, &t_GreaterOrEqual, &t_And,
    &t_Or, &t_Xor, &t_Where, &t_BitwiseAnd, &t_BitwiseOr, &t_BitwiseXor, &t_BitShift,
    &t_Neg, &t_Abs, &t_Sqrt, &t_Exp, &t_Log, &t_Tanh, &t_Sigmoid, &t_Relu, &t_Erf,
    &t_Reciprocal, &t_Floor, &t_Ceil, &t_Round, &t_Sin, &t_Cos, &t_Tan, &t_Sign,
    &t_Softplus, &t_Softsign, &t_Elu, &t_Selu, &t_Celu, &t_ThresholdedRelu, &t_Swish,
    &t_LeakyRelu, &t_HardSigmoid, &t_HardSwish, &t_Mish, &t_Gelu, &t_Clip, &t_Clip_rt,
    &t_Asin, &t_Acos, &t_Atan, &t_Sinh, &t_Cosh, &t_Asinh, &t_Acosh, &t_Atanh, &t_Shrink,
    &t_Clip_int, &t_BitNot, &t_IsNaN, &t_IsInf, &t_Not, &t_Identity, &t_Cast, &t_CastLike, &t_Fused, &t_Quant,
    &t_Dequant, &t_DynQ,
    NULL,
};
