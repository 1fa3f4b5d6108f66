/* elementwise.c: schemas and shape/type inference for the elementwise family
** (math, activations, softmax family, logic, bitwise ops and casts). */
#include "elementwise_shared.h"
#include "op.h"

#include <string.h>

/* Element type classes, combined into per-op masks of what the spec allows. */
enum {
    TS_FLOAT = 1,  /* float16 bfloat16 float32 float64 */
    TS_INT = 2,    /* int8..int64 */
    TS_UINT = 4,   /* uint8..uint64 */
    TS_BOOL = 8,
    TS_FP8 = 16,   /* the four float8 formats */
    TS_SMALL = 32, /* int4 uint4 float4e2m1 */
    TS_NUM = TS_FLOAT | TS_INT | TS_UINT,
    TS_ANY = TS_NUM | TS_BOOL | TS_FP8 | TS_SMALL
};

static unsigned tclass(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_FLOAT32:
    case KILN_DTYPE_FLOAT64:
        return TS_FLOAT;
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT16: case KILN_DTYPE_INT32:
    case KILN_DTYPE_INT64:
        return TS_INT;
    case KILN_DTYPE_UINT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_UINT32:
    case KILN_DTYPE_UINT64:
        return TS_UINT;
    case KILN_DTYPE_BOOL: return TS_BOOL;
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT8E8M0:
        return TS_FP8;
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4: case KILN_DTYPE_FLOAT4E2M1:
    case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2:
        return TS_SMALL;
    default: return 0; /* string, complex, undefined */
    }
}

/* Types each op accepts (latest opset of the spec; older opsets allow a
** subset, so this never rejects a valid model). */
static unsigned op_types(int op) {
    switch (op) {
    case OP_Add: case OP_Sub: case OP_Mul: case OP_Div: case OP_Mod:
    case OP_Abs: case OP_Sign: case OP_Min: case OP_Max: case OP_Clip:
    case OP_PRelu: case OP_Shrink:
        return TS_NUM;
    case OP_Pow: return TS_NUM; /* base; exponent checked separately */
    case OP_Neg: case OP_Relu: return TS_FLOAT | TS_INT;
    case OP_IsNaN: case OP_IsInf: return TS_FLOAT | TS_FP8;
    case OP_BitwiseAnd: case OP_BitwiseOr: case OP_BitwiseXor:
    case OP_BitwiseNot:
        return TS_INT | TS_UINT;
    case OP_BitShift: return TS_UINT;
    case OP_Equal: case OP_Less: case OP_LessOrEqual: case OP_Greater:
    case OP_GreaterOrEqual:
        return TS_NUM | TS_BOOL;
    case OP_And: case OP_Or: case OP_Xor: case OP_Not: return TS_BOOL;
    case OP_Where: case OP_Cast: case OP_CastLike: return TS_ANY;
    default: return TS_FLOAT; /* float math and activations */
    }
}

static int need_input(infer_ctx *c, int i) {
    if (ic_has(c, i)) return 0;
    return ic_fail(c, "required input %d is missing", i);
}

static int check_type(infer_ctx *c, int i, unsigned allowed) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->dtype == KILN_DTYPE_UNDEFINED) return 0;
    if (tclass(t->dtype) & allowed) return 0;
    return ic_fail(c, "input %d: type %s is not supported by %s", i,
                   kiln_dtype_name(t->dtype), op_name(c->node->op));
}

static bool is_cmp(int op) {
    return op == OP_Equal || op == OP_Less || op == OP_LessOrEqual ||
           op == OP_Greater || op == OP_GreaterOrEqual || op == OP_And ||
           op == OP_Or || op == OP_Xor;
}

static void set_out_type(infer_ctx *c, int i, const ir_type *t) {
    ic_set_out(c, i, t->dtype, t->rank, t->rank > 0 ? t->dims : NULL);
}

/* ---- shape arithmetic on small int tensors (Shape -> Gather -> Mul -> ...)
** Symbolic contents are dims: >= 0 concrete, < 0 a symbol. Values that came
** from constant data are always concrete, whatever their sign. */
#define SA_MAX 64

static bool sa_values(infer_ctx *c, int i, int64_t *v, bool *sym, int *n) {
    *n = ic_int_values(c, i, v, SA_MAX);
    if (*n < 0) return false;
    bool is_const = ic_const(c, i) != NULL;
    for (int k = 0; k < *n; k++) sym[k] = !is_const && v[k] < 0;
    return true;
}

static void shape_arith(infer_ctx *c, int op) {
    const ir_type *ta = ic_in(c, 0), *tb = ic_in(c, 1);
    if (!ta || !tb || ta->dtype != KILN_DTYPE_INT64 ||
        tb->dtype != KILN_DTYPE_INT64)
        return;
    int64_t va[SA_MAX], vb[SA_MAX], r[SA_MAX];
    bool sa[SA_MAX], sb[SA_MAX];
    int na, nb;
    if (!sa_values(c, 0, va, sa, &na) || !sa_values(c, 1, vb, sb, &nb)) return;
    if (na != nb && na != 1 && nb != 1) return;
    int n = na == 1 ? nb : na;
    for (int k = 0; k < n; k++) {
        int64_t x = va[na == 1 ? 0 : k], y = vb[nb == 1 ? 0 : k];
        bool xs = sa[na == 1 ? 0 : k], ys = sb[nb == 1 ? 0 : k];
        int64_t v = 0;
        if (!xs && !ys) {
            bool ovf = false;
            switch (op) {
            case OP_Add: ovf = __builtin_add_overflow(x, y, &v); break;
            case OP_Sub: ovf = __builtin_sub_overflow(x, y, &v); break;
            case OP_Mul: ovf = __builtin_mul_overflow(x, y, &v); break;
            default:
                if (y == 0 || (x == INT64_MIN && y == -1)) return;
                v = x / y;
                break;
            }
            /* A negative concrete result cannot be told from a symbol. */
            if (ovf || v < 0) return;
        } else if (ys && !xs) {
            if (op == OP_Add && x == 0) v = y;
            else if (op == OP_Mul && x == 1) v = y;
            else if (op == OP_Mul && x == 0) v = 0;
            else if (op == OP_Add || (op == OP_Mul && x > 0)) v = ic_new_sym(c);
            else return;
        } else if (xs && !ys) {
            if ((op == OP_Add || op == OP_Sub) && y == 0) v = x;
            else if ((op == OP_Mul || op == OP_Div) && y == 1) v = x;
            else if (op == OP_Mul && y == 0) v = 0;
            /* still a non-negative dim, just not a known one */
            else if (op == OP_Add && y > 0) v = ic_new_sym(c);
            else if ((op == OP_Mul || op == OP_Div) && y > 0) v = ic_new_sym(c);
            else return;
        } else {
            if (op == OP_Sub && x == y) v = 0;
            else if (op == OP_Add || op == OP_Mul) v = ic_new_sym(c);
            else return;
        }
        r[k] = v;
    }
    ic_set_int_values(c, 0, n, r);
}

/* Before opset 7 binary ops broadcast only with broadcast=1, and then B's
** dims line up with A's starting at 'axis' (default: trailing). Rewrites B's
** type into the equivalent numpy-broadcast shape. */
static int legacy_b(infer_ctx *c, const ir_type *a, const ir_type *b,
                    ir_type *out) {
    *out = *b;
    if (c->opset >= 7 || ir_attr_int(c->node, "broadcast", 0) == 0) return 0;
    if (a->rank < 0 || b->rank < 0) return 0;
    if (b->rank > a->rank)
        return ic_fail(c, "input 1 has higher rank (%d) than input 0 (%d)",
                       b->rank, a->rank);
    int64_t axis = ir_attr_int(c->node, "axis", a->rank - b->rank);
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return ic_fail(c, "broadcast axis %lld does not fit rank %d",
                       (long long)axis, a->rank);
    out->rank = a->rank;
    for (int i = 0; i < a->rank; i++) out->dims[i] = 1;
    for (int k = 0; k < b->rank; k++) out->dims[axis + k] = b->dims[k];
    return 0;
}

/* ---- inference functions */
static int infer_unary(infer_ctx *c) {
    int op = c->node->op;
    if (need_input(c, 0) || check_type(c, 0, op_types(op))) return -1;
    if (op == OP_Gelu) {
        const char *ap = ir_attr_str(c->node, "approximate", "none");
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
            return ic_fail(c, "approximate must be 'none' or 'tanh', got '%s'",
                           ap);
    }
    ic_copy_type(c, 0, 0);
    if (op == OP_IsNaN || op == OP_IsInf) c->out[0]->dtype = KILN_DTYPE_BOOL;
    return 0;
}

static int infer_binary(infer_ctx *c) {
    int op = c->node->op;
    if (need_input(c, 0) || need_input(c, 1)) return -1;
    if (check_type(c, 0, op_types(op))) return -1;
    if (op == OP_Pow) {
        if (check_type(c, 1, TS_NUM)) return -1;
    } else if (ic_require_same_dtype(c, 0, 1)) {
        return -1;
    }
    if (op == OP_BitShift) {
        const char *d = ir_attr_str(c->node, "direction", "");
        if (strcmp(d, "LEFT") != 0 && strcmp(d, "RIGHT") != 0)
            return ic_fail(c, "direction must be 'LEFT' or 'RIGHT', got '%s'",
                           d);
    }
    if (op == OP_Mod) {
        int64_t fm = ir_attr_int(c->node, "fmod", 0);
        if (fm != 0 && fm != 1)
            return ic_fail(c, "fmod must be 0 or 1, got %lld", (long long)fm);
    }
    ir_type o, b;
    if (legacy_b(c, c->in[0], c->in[1], &b) ||
        ic_broadcast(c, c->in[0], &b, &o))
        return -1;
    o.dtype = is_cmp(op) ? KILN_DTYPE_BOOL : c->in[0]->dtype;
    set_out_type(c, 0, &o);
    if (op == OP_Add || op == OP_Sub || op == OP_Mul || op == OP_Div)
        shape_arith(c, op);
    return 0;
}

/* PRelu: slope broadcasts into X (one direction), the output has X's shape. */
static int infer_prelu(infer_ctx *c) {
    if (need_input(c, 0) || need_input(c, 1)) return -1;
    if (check_type(c, 0, op_types(OP_PRelu)) || ic_require_same_dtype(c, 0, 1))
        return -1;
    const ir_type *x = c->in[0], *s = c->in[1];
    ir_type o, sv;
    /* Before opset 7 a 1-D slope is per channel (dim 1), as in Caffe2. */
    if (c->opset < 7 && s->rank == 1 && x->rank >= 2 && s->dims[0] != 1) {
        sv = *s;
        sv.rank = x->rank - 1;
        for (int i = 1; i < sv.rank; i++) sv.dims[i] = 1;
        s = &sv;
    }
    if (ic_broadcast(c, x, s, &o)) return -1;
    if (x->rank >= 0 && s->rank >= 0) {
        if (s->rank > x->rank)
            return ic_fail(c, "slope rank %d exceeds input rank %d", s->rank,
                           x->rank);
        for (int i = 0; i < s->rank; i++) {
            int64_t ds = s->dims[i], dx = x->dims[i + x->rank - s->rank];
            if (ds >= 0 && dx >= 0 && ds != 1 && ds != dx)
                return ic_fail(c, "slope dim %d (%lld) does not broadcast to "
                               "input dim %lld", i, (long long)ds,
                               (long long)dx);
        }
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

/* Min Max Sum Mean: any number of inputs, all broadcast together. */
static int infer_variadic(infer_ctx *c) {
    int op = c->node->op;
    if (c->n_in < 1) return ic_fail(c, "needs at least one input");
    ir_type acc;
    bool have = false;
    for (int i = 0; i < c->n_in; i++) {
        if (need_input(c, i) || check_type(c, i, op_types(op)) ||
            ic_require_same_dtype(c, 0, i))
            return -1;
        if (!have) {
            acc = *c->in[i];
            have = true;
        } else {
            ir_type o;
            if (ic_broadcast(c, &acc, c->in[i], &o)) return -1;
            acc = o;
        }
    }
    acc.dtype = c->in[0]->dtype;
    set_out_type(c, 0, &acc);
    return 0;
}

static int infer_where(infer_ctx *c) {
    for (int i = 0; i < 3; i++)
        if (need_input(c, i)) return -1;
    const ir_type *cond = c->in[0];
    if (cond->dtype != KILN_DTYPE_UNDEFINED && cond->dtype != KILN_DTYPE_BOOL)
        return ic_fail(c, "condition must be bool, got %s",
                       kiln_dtype_name(cond->dtype));
    if (check_type(c, 1, TS_ANY) || ic_require_same_dtype(c, 1, 2)) return -1;
    ir_type t1, t2;
    if (ic_broadcast(c, c->in[0], c->in[1], &t1) ||
        ic_broadcast(c, &t1, c->in[2], &t2))
        return -1;
    t2.dtype = c->in[1]->dtype;
    set_out_type(c, 0, &t2);
    return 0;
}

static int infer_not(infer_ctx *c) {
    if (need_input(c, 0) || check_type(c, 0, TS_BOOL)) return -1;
    ic_copy_type(c, 0, 0);
    return 0;
}

/* A Clip bound must hold exactly one element (a scalar; [1] is tolerated as
** exporters produce it). */
static int check_scalar(infer_ctx *c, int i) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank < 0) return 0;
    for (int k = 0; k < t->rank; k++)
        if (t->dims[k] >= 0 && t->dims[k] != 1)
            return ic_fail(c, "input %d must be a scalar", i);
    return 0;
}

static int infer_clip(infer_ctx *c) {
    if (need_input(c, 0) || check_type(c, 0, TS_NUM)) return -1;
    if (c->opset >= 11) {
        for (int i = 1; i < 3 && i < c->n_in; i++)
            if (ic_has(c, i) &&
                (ic_require_same_dtype(c, 0, i) || check_scalar(c, i)))
                return -1;
    } else if (c->n_in > 1) {
        return ic_fail(c, "Clip before opset 11 takes min/max as attributes");
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

static int infer_softmax(infer_ctx *c) {
    int op = c->node->op;
    if (need_input(c, 0) || check_type(c, 0, op_types(op))) return -1;
    const ir_type *x = c->in[0];
    int64_t axis = ir_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1);
    if (x->rank >= 0) {
        int ax;
        /* Before opset 13 the input is coerced to 2-D at axis, and axis may
        ** equal the rank (everything in the outer dimension). */
        bool whole = c->opset < 13 && axis == x->rank;
        if (!whole && ic_axis(c, axis, x->rank, &ax)) return -1;
    }
    ic_copy_type(c, 0, 0);
    return 0;
}

static bool cast_target_ok(int64_t to) {
    return to > 0 && to < KILN_DTYPE_COUNT_ && dtype_is_valid((int)to) &&
           (tclass((kiln_dtype)to) & TS_ANY);
}

/* Casting between int types keeps shape-arithmetic contents flowing. */
static void cast_int_values(infer_ctx *c, kiln_dtype to) {
    const ir_type *t = ic_in(c, 0);
    if (!t || !(tclass(t->dtype) & (TS_INT | TS_UINT))) return;
    if (to != KILN_DTYPE_INT64 && to != KILN_DTYPE_INT32) return;
    int64_t v[SA_MAX];
    bool sym[SA_MAX];
    int n;
    if (!sa_values(c, 0, v, sym, &n)) return;
    for (int k = 0; k < n; k++) {
        if (sym[k]) continue;
        if (v[k] < 0) return; /* would read back as a symbol */
        if (to == KILN_DTYPE_INT32 && v[k] > INT32_MAX) return;
    }
    ic_set_int_values(c, 0, n, v);
}

/* Cast before opset 6 names the target type with a string ("FLOAT"). */
int64_t elementwise_cast_to(const ir_node *n) {
    static const char *const names[] = {
        "", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64"};
    const ir_attr *a = ir_attr_find(n, "to");
    if (!a) return 0;
    if (a->type != IR_ATTR_STRING) return ir_attr_int(n, "to", 0);
    for (int t = 1; t < (int)KILN_ARRAY_LEN(names); t++) {
        const char *p = names[t], *q = a->s;
        while (*p && *q && *p == (*q >= 'a' && *q <= 'z' ? *q - 32 : *q)) p++, q++;
        if (!*p && !*q) return t;
    }
    return 0;
}

static int infer_cast(infer_ctx *c) {
    if (need_input(c, 0)) return -1;
    if (!ir_attr_find(c->node, "to"))
        return ic_fail(c, "missing attribute 'to'");
    int64_t to = elementwise_cast_to(c->node);
    if (!cast_target_ok(to))
        return ic_fail(c, "cannot cast to element type %lld%s", (long long)to,
                       to == KILN_DTYPE_STRING ? " (string)" : "");
    const ir_type *t = c->in[0];
    if (t->dtype != KILN_DTYPE_UNDEFINED && !(tclass(t->dtype) & TS_ANY))
        return ic_fail(c, "cannot cast from %s", kiln_dtype_name(t->dtype));
    ic_copy_type(c, 0, 0);
    c->out[0]->dtype = (kiln_dtype)to;
    cast_int_values(c, (kiln_dtype)to);
    return 0;
}

static int infer_castlike(infer_ctx *c) {
    if (need_input(c, 0) || need_input(c, 1)) return -1;
    if (check_type(c, 0, TS_ANY) || check_type(c, 1, TS_ANY)) return -1;
    kiln_dtype to = c->in[1]->dtype;
    ic_copy_type(c, 0, 0);
    c->out[0]->dtype = to;
    if (to != KILN_DTYPE_UNDEFINED) cast_int_values(c, to);
    return 0;
}

#define UN(op) {OP_##op, 1, 1, 1, 1, infer_unary}
#define BIN(op) {OP_##op, 2, 2, 1, 1, infer_binary}
#define VAR(op) {OP_##op, 1, -1, 1, 1, infer_variadic}

const op_schema op_schemas_elementwise[] = {
    BIN(Add), BIN(Sub), BIN(Mul), BIN(Div), BIN(Pow), BIN(Mod),
    UN(Neg), UN(Abs), UN(Sign), UN(Reciprocal), UN(Sqrt), UN(Exp), UN(Log),
    UN(Erf), UN(Floor), UN(Ceil), UN(Round), UN(Sin), UN(Cos), UN(Tan),
    UN(Asin), UN(Acos), UN(Atan), UN(Sinh), UN(Cosh), UN(Asinh), UN(Acosh),
    UN(Atanh),
    VAR(Min), VAR(Max), VAR(Mean), VAR(Sum),
    {OP_Clip, 1, 3, 1, 1, infer_clip},
    UN(IsNaN), UN(IsInf), UN(Relu), UN(LeakyRelu),
    {OP_PRelu, 2, 2, 1, 1, infer_prelu},
    UN(Elu), UN(Selu), UN(Celu), UN(Sigmoid), UN(HardSigmoid), UN(HardSwish),
    UN(Tanh), UN(Softplus), UN(Softsign), UN(Mish), UN(Gelu),
    UN(ThresholdedRelu), UN(Shrink), UN(Swish),
    {OP_Softmax, 1, 1, 1, 1, infer_softmax},
    {OP_LogSoftmax, 1, 1, 1, 1, infer_softmax},
    {OP_Hardmax, 1, 1, 1, 1, infer_softmax},
    BIN(BitwiseAnd), BIN(BitwiseOr), BIN(BitwiseXor), UN(BitwiseNot),
    BIN(Equal), BIN(Less), BIN(LessOrEqual), BIN(Greater), BIN(GreaterOrEqual),
    BIN(And), BIN(Or), BIN(Xor),
    {OP_Not, 1, 1, 1, 1, infer_not},
    {OP_Where, 3, 3, 1, 1, infer_where},
    BIN(BitShift),
    {OP_Cast, 1, 1, 1, 1, infer_cast},
    {OP_CastLike, 2, 2, 1, 1, infer_castlike},
    {OP_NONE, 0, 0, 0, 0, NULL},
};
