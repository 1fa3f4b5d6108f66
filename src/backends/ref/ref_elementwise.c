/* ref_elementwise.c: reference kernels for the elementwise family. Values are
** computed in one of four domains (float32, float64, int64, uint64): inputs
** of other types are widened into a temporary and results narrowed back, so
** each op needs one loop per domain. Integer math wraps (through unsigned
** arithmetic) like the tensor's own type would. */
#include "../../ops/elementwise_shared.h"
#include "ref.h"

#include <tgmath.h>

typedef enum { D_F32, D_F64, D_I64, D_U64 } dom;

static bool is_uint(kiln_dtype t) {
    return t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_UINT16 ||
           t == KILN_DTYPE_UINT32 || t == KILN_DTYPE_UINT64 ||
           t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_UINT2;
}

static dom dom_of(kiln_dtype t) {
    if (t == KILN_DTYPE_FLOAT64) return D_F64;
    if (dtype_is_float(t)) return D_F32;
    if (is_uint(t)) return D_U64;
    return D_I64; /* signed ints and bool */
}

static size_t dom_size(dom d) { return d == D_F32 ? 4 : 8; }

static bool dom_native(dom d, kiln_dtype t) {
    return (d == D_F32 && t == KILN_DTYPE_FLOAT32) ||
           (d == D_F64 && t == KILN_DTYPE_FLOAT64) ||
           (d == D_I64 && t == KILN_DTYPE_INT64) ||
           (d == D_U64 && t == KILN_DTYPE_UINT64);
}

static inline int64_t wrap_i64(uint64_t u) {
    return u <= (uint64_t)INT64_MAX ? (int64_t)u
                                    : -(int64_t)(~u) - 1; /* two's complement */
}

/* A tensor's elements in domain d: its own data when the type matches,
** otherwise a converted copy in own (freed by the caller). */
typedef struct dbuf {
    const void *p;
    void *own;
} dbuf;

static int dload(ref_ctx *c, const kiln_tensor *t, dom d, dbuf *b) {
    b->own = NULL;
    b->p = t->data;
    if (dom_native(d, t->dtype)) return 0;
    int64_t n = tensor_numel(t);
    void *m = malloc((size_t)(n > 0 ? n : 1) * dom_size(d));
    if (!m) return ref_fail(c, "out of memory");
    kiln_dtype dt = t->dtype;
    const void *src = t->data;
    switch (d) {
    case D_F32: {
        float *f = m;
        if (dt == KILN_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++)
                f[i] = f16_to_f32(((const uint16_t *)src)[i]);
        else if (dt == KILN_DTYPE_BFLOAT16)
            for (int64_t i = 0; i < n; i++)
                f[i] = bf16_to_f32(((const uint16_t *)src)[i]);
        else
            for (int64_t i = 0; i < n; i++)
                f[i] = (float)dt_get_f64(dt, src, (size_t)i);
        break;
    }
    case D_F64:
        for (int64_t i = 0; i < n; i++)
            ((double *)m)[i] = dt_get_f64(dt, src, (size_t)i);
        break;
    case D_I64:
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)m)[i] = dt_get_i64(dt, src, (size_t)i);
        break;
    case D_U64:
        if (dtype_is_float(dt))
            for (int64_t i = 0; i < n; i++) {
                double v = dt_get_f64(dt, src, (size_t)i);
                ((uint64_t *)m)[i] = v != v || v <= 0 ? 0
                                     : v >= 18446744073709551615.0
                                         ? UINT64_MAX
                                         : (uint64_t)v;
            }
        else
            for (int64_t i = 0; i < n; i++)
                ((uint64_t *)m)[i] = (uint64_t)dt_get_i64(dt, src, (size_t)i);
        break;
    }
    b->p = m;
    b->own = m;
    return 0;
}

/* Output in domain d: written in place when the type matches, otherwise into
** a temporary that oend narrows into the tensor. */
typedef struct obuf {
    void *p;
    void *own;
} obuf;

static int obegin(ref_ctx *c, kiln_tensor *t, dom d, obuf *o) {
    o->own = NULL;
    o->p = t->data;
    if (dom_native(d, t->dtype)) return 0;
    int64_t n = tensor_numel(t);
    o->own = malloc((size_t)(n > 0 ? n : 1) * dom_size(d));
    if (!o->own) return ref_fail(c, "out of memory");
    o->p = o->own;
    return 0;
}

static void oend(kiln_tensor *t, dom d, obuf *o) {
    if (!o->own) return;
    int64_t n = tensor_numel(t);
    kiln_dtype dt = t->dtype;
    void *dst = t->data;
    switch (d) {
    case D_F32: {
        const float *f = o->own;
        if (dt == KILN_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++)
                ((uint16_t *)dst)[i] = f32_to_f16(f[i]);
        else if (dt == KILN_DTYPE_BFLOAT16)
            for (int64_t i = 0; i < n; i++)
                ((uint16_t *)dst)[i] = f32_to_bf16(f[i]);
        else
            for (int64_t i = 0; i < n; i++) dt_set_f64(dt, dst, (size_t)i, f[i]);
        break;
    }
    case D_F64:
        for (int64_t i = 0; i < n; i++)
            dt_set_f64(dt, dst, (size_t)i, ((const double *)o->own)[i]);
        break;
    case D_I64:
        for (int64_t i = 0; i < n; i++)
            dt_set_i64(dt, dst, (size_t)i, ((const int64_t *)o->own)[i]);
        break;
    case D_U64:
        for (int64_t i = 0; i < n; i++)
            dt_set_i64(dt, dst, (size_t)i, wrap_i64(((const uint64_t *)o->own)[i]));
        break;
    }
    free(o->own);
    o->own = NULL;
}

/* Makes output i exist with the given type and shape (the executor has
** normally allocated it already from inference). */
static int prep_out(ref_ctx *c, int i, kiln_dtype dt, int rank,
                    const int64_t *dims) {
    kiln_tensor *t = c->out[i];
    if (t->data && t->dtype == dt && shape_equal(t->rank, t->dims, rank, dims))
        return 0;
    return ref_alloc_out(c, i, dt, rank, dims);
}

/* ---- broadcasting engine
** Output dims are coalesced (size-1 dims dropped, dims merged wherever every
** operand is contiguous or broadcast across both) so that the innermost run
** is as long as possible; each operand then advances by 0 or 1 element
** along it. A row function handles one run. */
#define BC_MAX 3
typedef void (*row_fn)(void *o, const void *const *in, const int *inc,
                       int64_t n, void *ud);

static void bc_run(int orank, const int64_t *odims, void *o, size_t eso,
                   int nin, const int *rin, const int64_t *const *din,
                   const void *const *pin, const size_t *esin, row_fn fn,
                   void *ud) {
    int64_t total = shape_numel(orank, odims);
    if (total <= 0) return;
    int64_t st[BC_MAX][KILN_MAX_RANK];
    for (int j = 0; j < nin; j++) bcast_strides(rin[j], din[j], orank, st[j]);
    int64_t cd[KILN_MAX_RANK], cs[BC_MAX][KILN_MAX_RANK];
    int r = 0;
    for (int d = 0; d < orank; d++) {
        if (odims[d] == 1) continue;
        bool merge = r > 0;
        for (int j = 0; j < nin && merge; j++)
            if (cs[j][r - 1] != st[j][d] * odims[d]) merge = false;
        if (merge) {
            cd[r - 1] *= odims[d];
            for (int j = 0; j < nin; j++) cs[j][r - 1] = st[j][d];
            continue;
        }
        cd[r] = odims[d];
        for (int j = 0; j < nin; j++) cs[j][r] = st[j][d];
        r++;
    }
    int64_t inner = r ? cd[r - 1] : 1, rows = total / inner;
    int inc[BC_MAX] = {0, 0, 0};
    for (int j = 0; j < nin; j++) inc[j] = r ? (int)cs[j][r - 1] : 0;
    const int64_t *sp[BC_MAX] = {cs[0], cs[1], cs[2]};
    bcast_iter it;
    bcast_iter_init(&it, r ? r - 1 : 0, cd, nin, sp);
    for (int64_t k = 0; k < rows; k++, bcast_iter_next(&it)) {
        const void *ip[BC_MAX] = {NULL, NULL, NULL};
        for (int j = 0; j < nin; j++)
            ip[j] = (const char *)pin[j] + (size_t)it.off[j] * esin[j];
        fn((char *)o + (size_t)(k * inner) * eso, ip, inc, inner, ud);
    }
}

/* Per-call state of binary row functions. */
typedef struct bin_ud {
    int fmod;     /* Mod */
    int err;      /* set on integer division by zero */
} bin_ud;

/* One run of a binary op; the four cases let the compiler emit tight loops
** for the same-shape and scalar-broadcast patterns. */
#define ROW2(NAME, TA, TB, TO, EXPR)                                          \
    static void NAME(void *o_, const void *const *in, const int *inc,         \
                     int64_t n, void *ud_) {                                  \
        TO *o = o_;                                                           \
        const TA *a = in[0];                                                  \
        const TB *b = in[1];                                                  \
        bin_ud *ud = ud_;                                                     \
        (void)ud;                                                             \
        if (inc[0] && inc[1]) {                                               \
            for (int64_t i = 0; i < n; i++) {                                 \
                TA x = a[i];                                                  \
                TB y = b[i];                                                  \
                o[i] = (TO)(EXPR);                                            \
            }                                                                 \
        } else if (inc[0]) {                                                  \
            TB y = b[0];                                                      \
            for (int64_t i = 0; i < n; i++) {                                 \
                TA x = a[i];                                                  \
                o[i] = (TO)(EXPR);                                            \
            }                                                                 \
        } else if (inc[1]) {                                                  \
            TA x = a[0];                                                      \
            for (int64_t i = 0; i < n; i++) {                                 \
                TB y = b[i];                                                  \
                o[i] = (TO)(EXPR);                                            \
            }                                                                 \
        } else {                                                              \
            TA x = a[0];                                                      \
            TB y = b[0];                                                      \
            TO v = (TO)(EXPR);                                                \
            for (int64_t i = 0; i < n; i++) o[i] = v;                         \
        }                                                                     \
    }

/* integer helpers: wrap instead of overflowing, flag division by zero */
static inline int64_t iadd(int64_t x, int64_t y) { return wrap_i64((uint64_t)x + (uint64_t)y); }
static inline int64_t isub(int64_t x, int64_t y) { return wrap_i64((uint64_t)x - (uint64_t)y); }
static inline int64_t imul(int64_t x, int64_t y) { return wrap_i64((uint64_t)x * (uint64_t)y); }
static inline int64_t idiv(int64_t x, int64_t y, bin_ud *u) {
    if (y == 0) { u->err = 1; return 0; }
    if (y == -1) return isub(0, x);
    return x / y;
}
static inline int64_t imod(int64_t x, int64_t y, bin_ud *u) {
    if (y == 0) { u->err = 1; return 0; }
    if (y == -1) return 0;
    int64_t r = x % y;
    if (!u->fmod && r != 0 && ((r < 0) != (y < 0))) r += y; /* sign of divisor */
    return r;
}
static inline uint64_t udiv(uint64_t x, uint64_t y, bin_ud *u) {
    if (y == 0) { u->err = 1; return 0; }
    return x / y;
}
static inline uint64_t umod(uint64_t x, uint64_t y, bin_ud *u) {
    if (y == 0) { u->err = 1; return 0; }
    return x % y;
}
static inline float fmod_f32(float x, float y, const bin_ud *u) {
    float r = fmodf(x, y);
    if (!u->fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
static inline double fmod_f64(double x, double y, const bin_ud *u) {
    double r = fmod(x, y);
    if (!u->fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
static inline uint64_t upow(uint64_t b, uint64_t e) {
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}
/* x**y for ints; a negative exponent truncates 1/x**|y| toward zero. */
static inline int64_t ipow(int64_t x, int64_t y) {
    if (y >= 0) return wrap_i64(upow((uint64_t)x, (uint64_t)y));
    if (x == 1) return 1;
    if (x == -1) return (y & 1) ? -1 : 1;
    return 0;
}
static inline uint64_t upow_s(uint64_t x, int64_t y) {
    if (y >= 0) return upow(x, (uint64_t)y);
    return x == 1 ? 1 : 0;
}
static inline uint64_t f64_to_u64_sat(double v) {
    return v != v || v <= 0 ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX
                                                           : (uint64_t)v;
}
static inline uint64_t ushl(uint64_t x, uint64_t s) { return s >= 64 ? 0 : x << s; }
static inline uint64_t ushr(uint64_t x, uint64_t s) { return s >= 64 ? 0 : x >> s; }

/* NaN-propagating min/max (like numpy's minimum/maximum). */
#define FMIN(x, y) ((x) != (x) || (y) != (y) ? (x) + (y) : (x) < (y) ? (x) : (y))
#define FMAX(x, y) ((x) != (x) || (y) != (y) ? (x) + (y) : (x) > (y) ? (x) : (y))

#define ROWS_FLOAT(S, T, FMODF)                                              \
    ROW2(add_##S, T, T, T, x + y)                                            \
    ROW2(sub_##S, T, T, T, x - y)                                            \
    ROW2(mul_##S, T, T, T, x * y)                                            \
    ROW2(div_##S, T, T, T, x / y)                                            \
    ROW2(mod_##S, T, T, T, FMODF(x, y, ud))                                  \
    ROW2(pow_##S, T, T, T, pow(x, y))                                        \
    ROW2(min_##S, T, T, T, FMIN(x, y))                                       \
    ROW2(max_##S, T, T, T, FMAX(x, y))                                       \
    ROW2(prelu_##S, T, T, T, x < 0 ? y * x : x)                              \
    ROW2(eq_##S, T, T, uint8_t, x == y)                                      \
    ROW2(lt_##S, T, T, uint8_t, x < y)                                       \
    ROW2(le_##S, T, T, uint8_t, x <= y)                                      \
    ROW2(gt_##S, T, T, uint8_t, x > y)                                       \
    ROW2(ge_##S, T, T, uint8_t, x >= y)

ROWS_FLOAT(f32, float, fmod_f32)
ROWS_FLOAT(f64, double, fmod_f64)

#define ROWS_INT(S, T, ADD, SUB, MUL, DIV, MOD, PRELU)                       \
    ROW2(add_##S, T, T, T, ADD(x, y))                                        \
    ROW2(sub_##S, T, T, T, SUB(x, y))                                        \
    ROW2(mul_##S, T, T, T, MUL(x, y))                                        \
    ROW2(div_##S, T, T, T, DIV(x, y, ud))                                    \
    ROW2(mod_##S, T, T, T, MOD(x, y, ud))                                    \
    ROW2(min_##S, T, T, T, x < y ? x : y)                                    \
    ROW2(max_##S, T, T, T, x > y ? x : y)                                    \
    ROW2(prelu_##S, T, T, T, PRELU(x, y))                                    \
    ROW2(eq_##S, T, T, uint8_t, x == y)                                      \
    ROW2(lt_##S, T, T, uint8_t, x < y)                                       \
    ROW2(le_##S, T, T, uint8_t, x <= y)                                      \
    ROW2(gt_##S, T, T, uint8_t, x > y)                                       \
    ROW2(ge_##S, T, T, uint8_t, x >= y)                                      \
    ROW2(band_##S, T, T, T, x & y)                                           \
    ROW2(bor_##S, T, T, T, x | y)                                            \
    ROW2(bxor_##S, T, T, T, x ^ y)

#define UADD(x, y) ((x) + (y))
#define USUB(x, y) ((x) - (y))
#define UMUL(x, y) ((x) * (y))
#define IPRELU(x, y) ((x) < 0 ? imul(y, x) : (x))
#define UPRELU(x, y) ((void)(y), (x))
ROWS_INT(i64, int64_t, iadd, isub, imul, idiv, imod, IPRELU)
ROWS_INT(u64, uint64_t, UADD, USUB, UMUL, udiv, umod, UPRELU)
ROW2(shl_u64, uint64_t, uint64_t, uint64_t, ushl(x, y))
ROW2(shr_u64, uint64_t, uint64_t, uint64_t, ushr(x, y))
/* Pow with an integer base: int exponent exactly, float exponent in double */
ROW2(pow_ii, int64_t, int64_t, int64_t, ipow(x, y))
ROW2(pow_ui, uint64_t, int64_t, uint64_t, upow_s(x, y))
ROW2(pow_if, int64_t, double, int64_t, f64_to_i64_sat(pow((double)x, y)))
ROW2(pow_uf, uint64_t, double, uint64_t, f64_to_u64_sat(pow((double)x, y)))
/* bool logic, on the raw bytes */
ROW2(and_b, uint8_t, uint8_t, uint8_t, (x != 0) & (y != 0))
ROW2(or_b, uint8_t, uint8_t, uint8_t, (x != 0) | (y != 0))
ROW2(xor_b, uint8_t, uint8_t, uint8_t, (x != 0) ^ (y != 0))

#define PICK4(NAME)                                                          \
    return d == D_F32 ? NAME##_f32 : d == D_F64 ? NAME##_f64                 \
         : d == D_I64 ? NAME##_i64 : NAME##_u64
#define PICKINT(NAME) return d == D_I64 ? NAME##_i64 : d == D_U64 ? NAME##_u64 : NULL

static row_fn pick_binary(int op, dom d) {
    switch (op) {
    case OP_Add: case OP_Sum: case OP_Mean: PICK4(add);
    case OP_Sub: PICK4(sub);
    case OP_Mul: PICK4(mul);
    case OP_Div: PICK4(div);
    case OP_Mod: PICK4(mod);
    case OP_Min: PICK4(min);
    case OP_Max: PICK4(max);
    case OP_PRelu: PICK4(prelu);
    case OP_Equal: PICK4(eq);
    case OP_Less: PICK4(lt);
    case OP_LessOrEqual: PICK4(le);
    case OP_Greater: PICK4(gt);
    case OP_GreaterOrEqual: PICK4(ge);
    case OP_BitwiseAnd: PICKINT(band);
    case OP_BitwiseOr: PICKINT(bor);
    case OP_BitwiseXor: PICKINT(bxor);
    default: return NULL;
    }
}

/* Runs fn over the broadcast of a and b (already in their domains) into o. */
static void run2(const kiln_tensor *out, void *o, size_t eso,
                 const kiln_tensor *ta, const void *a, size_t esa,
                 const kiln_tensor *tb, const void *b, size_t esb, row_fn fn,
                 void *ud) {
    int rin[2] = {ta->rank, tb->rank};
    const int64_t *din[2] = {ta->dims, tb->dims};
    const void *pin[2] = {a, b};
    size_t es[2] = {esa, esb};
    bc_run(out->rank, out->dims, o, eso, 2, rin, din, pin, es, fn, ud);
}

static int bcast_shape2(ref_ctx *c, const kiln_tensor *a, const kiln_tensor *b,
                        int *rank, int64_t *dims) {
    if (!shape_broadcast(a->rank, a->dims, b->rank, b->dims, rank, dims))
        return ref_fail(c, "input shapes do not broadcast");
    return 0;
}

static int div_zero(ref_ctx *c) {
    return ref_fail(c, "integer division by zero");
}

static bool is_logic(int op) {
    return op == OP_And || op == OP_Or || op == OP_Xor;
}

static bool is_cmp(int op) {
    return op == OP_Equal || op == OP_Less || op == OP_LessOrEqual ||
           op == OP_Greater || op == OP_GreaterOrEqual;
}

/* Add Sub Mul Div Mod Pow, comparisons, logic, bitwise, BitShift, PRelu. */
static int k_binary(ref_ctx *c) {
    int op = c->node->op;
    const kiln_tensor *ta = c->in[0], *tb = c->in[1];
    if (!ta || !tb) return ref_fail(c, "missing input");
    int rank;
    int64_t dims[KILN_MAX_RANK];
    /* Before opset 7 broadcast=1 aligns B with A at 'axis' (default:
    ** trailing); a view with B's dims padded by 1s gives numpy semantics. */
    kiln_tensor bview;
    if (c->opset < 7 && ir_attr_int(c->node, "broadcast", 0) != 0) {
        int64_t axis = ir_attr_int(c->node, "axis", ta->rank - tb->rank);
        if (axis < 0) axis += ta->rank;
        if (tb->rank > ta->rank || axis < 0 || axis + tb->rank > ta->rank)
            return ref_fail(c, "legacy broadcast axis does not fit");
        bview = *tb;
        bview.rank = ta->rank;
        for (int i = 0; i < ta->rank; i++) bview.dims[i] = 1;
        for (int k = 0; k < tb->rank; k++) bview.dims[axis + k] = tb->dims[k];
        tb = &bview;
    }
    if (op == OP_PRelu && c->opset < 7 && tb->rank == 1 && ta->rank >= 2 &&
        tb->dims[0] != 1) {
        /* before opset 7 a 1-D slope is per channel (dim 1) */
        bview = *tb;
        bview.rank = ta->rank - 1;
        for (int i = 1; i < bview.rank; i++) bview.dims[i] = 1;
        tb = &bview;
    }
    if (op == OP_PRelu) {
        /* slope broadcasts into X only: the output keeps X's shape */
        if (bcast_shape2(c, ta, tb, &rank, dims)) return -1;
        if (!shape_equal(rank, dims, ta->rank, ta->dims))
            return ref_fail(c, "slope does not broadcast to the input shape");
    } else if (bcast_shape2(c, ta, tb, &rank, dims)) {
        return -1;
    }
    bool logic = is_logic(op), cmp = is_cmp(op);
    kiln_dtype odt = logic || cmp ? KILN_DTYPE_BOOL : ta->dtype;
    if (prep_out(c, 0, odt, rank, dims)) return -1;
    kiln_tensor *out = c->out[0];
    bin_ud ud = {(int)ir_attr_int(c->node, "fmod", 0), 0};

    if (logic) {
        if (ta->dtype != KILN_DTYPE_BOOL || tb->dtype != KILN_DTYPE_BOOL)
            return ref_fail(c, "inputs must be bool");
        row_fn fn = op == OP_And ? and_b : op == OP_Or ? or_b : xor_b;
        run2(out, out->data, 1, ta, ta->data, 1, tb, tb->data, 1, fn, &ud);
        return 0;
    }
    dom da = dom_of(ta->dtype), db = da;
    row_fn fn = NULL;
    if (op == OP_Pow) {
        dom e = dom_of(tb->dtype);
        if (da == D_F32 || da == D_F64) {
            fn = da == D_F32 ? pow_f32 : pow_f64;
        } else if (e == D_F32 || e == D_F64) {
            db = D_F64;
            fn = da == D_I64 ? pow_if : pow_uf;
        } else {
            db = D_I64;
            fn = da == D_I64 ? pow_ii : pow_ui;
        }
    } else if (op == OP_BitShift) {
        if (da != D_U64) return ref_fail(c, "BitShift needs unsigned ints");
        const char *dir = ir_attr_str(c->node, "direction", "");
        fn = strcmp(dir, "LEFT") == 0 ? shl_u64 : shr_u64;
    } else {
        if (ta->dtype != tb->dtype)
            return ref_fail(c, "input types differ (%s vs %s)",
                            kiln_dtype_name(ta->dtype),
                            kiln_dtype_name(tb->dtype));
        fn = pick_binary(op, da);
    }
    if (!fn)
        return ref_fail(c, "type %s is not supported",
                        kiln_dtype_name(ta->dtype));
    dbuf a, b;
    obuf o = {NULL, NULL};
    if (dload(c, ta, da, &a)) return -1;
    if (dload(c, tb, db, &b)) {
        free(a.own);
        return -1;
    }
    int rc = 0;
    if (cmp) {
        run2(out, out->data, 1, ta, a.p, dom_size(da), tb, b.p, dom_size(db),
             fn, &ud);
    } else if (obegin(c, out, da, &o) == 0) {
        run2(out, o.p, dom_size(da), ta, a.p, dom_size(da), tb, b.p,
             dom_size(db), fn, &ud);
        oend(out, da, &o);
    } else {
        rc = -1;
    }
    free(a.own);
    free(b.own);
    if (rc == 0 && ud.err) return div_zero(c);
    return rc;
}

/* ---- variadic Min Max Sum Mean */
static void copy_row(void *o, const void *const *in, const int *inc,
                     int64_t n, void *ud) {
    size_t es = *(const size_t *)ud;
    if (inc[0]) {
        memcpy(o, in[0], (size_t)n * es);
    } else {
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)o + (size_t)i * es, in[0], es);
    }
}

static int k_variadic(ref_ctx *c) {
    int op = c->node->op;
    int rank = 0;
    int64_t dims[KILN_MAX_RANK];
    if (c->n_in < 1) return ref_fail(c, "needs at least one input");
    for (int i = 0; i < c->n_in; i++) {
        const kiln_tensor *t = c->in[i];
        if (!t) return ref_fail(c, "input %d is missing", i);
        if (t->dtype != c->in[0]->dtype)
            return ref_fail(c, "input types differ");
        int r2;
        int64_t d2[KILN_MAX_RANK];
        if (!shape_broadcast(rank, dims, t->rank, t->dims, &r2, d2))
            return ref_fail(c, "input shapes do not broadcast");
        rank = r2;
        if (rank) memcpy(dims, d2, (size_t)rank * sizeof *dims);
    }
    kiln_dtype dt = c->in[0]->dtype;
    if (prep_out(c, 0, dt, rank, dims)) return -1;
    kiln_tensor *out = c->out[0];
    dom d = dom_of(dt);
    row_fn fn = pick_binary(op, d);
    if (!fn || ((op == OP_Sum || op == OP_Mean) && d != D_F32 && d != D_F64))
        return ref_fail(c, "type %s is not supported", kiln_dtype_name(dt));
    size_t es = dom_size(d);
    obuf o;
    if (obegin(c, out, d, &o)) return -1;
    bin_ud ud = {0, 0};
    for (int i = 0; i < c->n_in; i++) {
        dbuf b;
        if (dload(c, c->in[i], d, &b)) {
            free(o.own);
            return -1;
        }
        /* The first input seeds the output; later ones fold in place (each
        ** output element reads only its own position of the accumulator). */
        if (i == 0)
            run2(out, o.p, es, c->in[0], b.p, es, c->in[0], b.p, es, copy_row,
                 &es);
        else
            run2(out, o.p, es, out, o.p, es, c->in[i], b.p, es, fn, &ud);
        free(b.own);
    }
    if (op == OP_Mean) {
        int64_t n = tensor_numel(out);
        if (d == D_F32) {
            float *f = o.p, k = (float)c->n_in;
            for (int64_t i = 0; i < n; i++) f[i] /= k;
        } else {
            double *f = o.p, k = (double)c->n_in;
            for (int64_t i = 0; i < n; i++) f[i] /= k;
        }
    }
    oend(out, d, &o);
    return 0;
}

/* ---- unary float math and activations */
typedef struct un_par {
    float alpha, beta, gamma, lambd, bias;
    bool gelu_tanh;
} un_par;

static void un_params(const ir_node *n, un_par *p) {
    int op = n->op;
    float a = 0, b = 0;
    switch (op) {
    case OP_LeakyRelu: a = 0.01f; break;
    case OP_Elu: case OP_Celu: case OP_ThresholdedRelu: case OP_Swish:
        a = 1.0f;
        break;
    case OP_Selu: a = 1.67326319217681884765625f; break;
    case OP_HardSigmoid: a = 0.2f; b = 0.5f; break;
    default: break;
    }
    p->alpha = ir_attr_float(n, "alpha", a);
    p->beta = ir_attr_float(n, "beta", b);
    p->gamma = ir_attr_float(n, "gamma", 1.05070102214813232421875f);
    p->lambd = ir_attr_float(n, "lambd", 0.5f);
    p->bias = ir_attr_float(n, "bias", 0.0f);
    p->gelu_tanh = strcmp(ir_attr_str(n, "approximate", "none"), "tanh") == 0;
}

/* One body for float and double through <tgmath.h>. Returns false for an op
** it does not handle. */
#define UNARY_FLOAT(NAME, T)                                                  \
    static bool NAME(int op, const un_par *p, const T *xs, T *ys, int64_t n) { \
        typedef T elem_t;                                                     \
        const T al = (T)p->alpha, be = (T)p->beta, ga = (T)p->gamma;          \
        const T la = (T)p->lambd, bi = (T)p->bias, one = 1, zero = 0,         \
                half = (T)0.5;                                                \
        switch (op) {                                                         \
        case OP_Neg: MAP(-v);                                                 \
        case OP_Abs: MAP(fabs(v));                                            \
        case OP_Sign: MAP(v > 0 ? one : v < 0 ? -one : v);                    \
        case OP_Reciprocal: MAP(one / v);                                     \
        case OP_Sqrt: MAP(sqrt(v));                                           \
        case OP_Exp: MAP(exp(v));                                             \
        case OP_Log: MAP(log(v));                                             \
        case OP_Erf: MAP(erf(v));                                             \
        case OP_Floor: MAP(floor(v));                                         \
        case OP_Ceil: MAP(ceil(v));                                           \
        case OP_Round: MAP(round_even_##T(v));                                \
        case OP_Sin: MAP(sin(v));                                             \
        case OP_Cos: MAP(cos(v));                                             \
        case OP_Tan: MAP(tan(v));                                             \
        case OP_Asin: MAP(asin(v));                                           \
        case OP_Acos: MAP(acos(v));                                           \
        case OP_Atan: MAP(atan(v));                                           \
        case OP_Sinh: MAP(sinh(v));                                           \
        case OP_Cosh: MAP(cosh(v));                                           \
        case OP_Asinh: MAP(asinh(v));                                         \
        case OP_Acosh: MAP(acosh(v));                                         \
        case OP_Atanh: MAP(atanh(v));                                         \
        case OP_Tanh: MAP(tanh(v));                                           \
        case OP_Relu: MAP(v < 0 ? zero : v);                                  \
        case OP_LeakyRelu: MAP(v < 0 ? al * v : v);                           \
        case OP_Elu: MAP(v < 0 ? al * expm1(v) : v);                          \
        case OP_Selu: MAP(v > 0 ? ga * v : ga * al * expm1(v));               \
        case OP_Celu: MAP(v > 0 ? v : al * expm1(v / al));                    \
        case OP_Sigmoid: MAP(sigmoid_##T(v));                                 \
        case OP_HardSigmoid: MAP(clamp01_##T(al * v + be));                   \
        case OP_HardSwish: MAP(v * clamp01_##T(v * (T)(1.0 / 6.0) + half));   \
        case OP_Softplus: MAP(softplus_##T(v));                               \
        case OP_Softsign: MAP(v / (one + fabs(v)));                           \
        case OP_Mish: MAP(v * tanh(softplus_##T(v)));                         \
        case OP_ThresholdedRelu: MAP(v > al ? v : zero);                      \
        case OP_Shrink: MAP(v < -la ? v + bi : v > la ? v - bi : zero);       \
        case OP_Swish: MAP(v * sigmoid_##T(al * v));                          \
        case OP_Gelu:                                                         \
            if (p->gelu_tanh) {                                               \
                const T k = (T)0.7978845608028654, c3 = (T)0.044715;          \
                MAP(half * v * (one + tanh(k * (v + c3 * v * v * v))));       \
            }                                                                 \
            MAP(half * v * (one + erf(v * (T)0.7071067811865476)));           \
        default: return false;                                                \
        }                                                                     \
    }
#define MAP(EXPR)                                                             \
    do {                                                                      \
        for (int64_t i = 0; i < n; i++) {                                     \
            elem_t v = xs[i];                                                 \
            ys[i] = (EXPR);                                                   \
        }                                                                     \
        return true;                                                          \
    } while (0)

/* helpers used by UNARY_FLOAT, one per element type */
#define FLOAT_HELPERS(T)                                                      \
    static inline T round_even_##T(T v) {                                     \
        T f = floor(v), d = v - f;                                            \
        if (d > (T)0.5 || (d == (T)0.5 && fmod(f, (T)2) != 0)) f += 1;       \
        return f;                                                             \
    }                                                                         \
    static inline T sigmoid_##T(T v) {                                        \
        if (v >= 0) return 1 / (1 + exp(-v));                                 \
        T e = exp(v);                                                         \
        return e / (1 + e);                                                   \
    }                                                                         \
    static inline T clamp01_##T(T v) {                                        \
        return v < 0 ? 0 : v > 1 ? 1 : v;                                     \
    }                                                                         \
    static inline T softplus_##T(T v) {                                       \
        return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));                    \
    }
FLOAT_HELPERS(float)
FLOAT_HELPERS(double)
UNARY_FLOAT(unary_f32, float)
UNARY_FLOAT(unary_f64, double)
#undef MAP

/* Ops that also take integers, in the int64/uint64 domains. */
static bool unary_int(int op, dom d, const un_par *p, const void *xv, void *yv,
                      int64_t n) {
    if (d == D_I64) {
        const int64_t *x = xv;
        int64_t *y = yv;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i];
            switch (op) {
            case OP_Neg: y[i] = isub(0, v); break;
            case OP_Abs: y[i] = v < 0 ? isub(0, v) : v; break;
            case OP_Sign: y[i] = (v > 0) - (v < 0); break;
            case OP_Relu: y[i] = v < 0 ? 0 : v; break;
            case OP_BitwiseNot: y[i] = ~v; break;
            case OP_Shrink: {
                double w = (double)v;
                w = w < -p->lambd ? w + p->bias : w > p->lambd ? w - p->bias : 0;
                y[i] = f64_to_i64_sat(w);
                break;
            }
            default: return false;
            }
        }
        return true;
    }
    const uint64_t *x = xv;
    uint64_t *y = yv;
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = x[i];
        switch (op) {
        case OP_Abs: case OP_Relu: y[i] = v; break;
        case OP_Sign: y[i] = v != 0; break;
        case OP_BitwiseNot: y[i] = ~v; break;
        case OP_Shrink: {
            double w = (double)v;
            w = w < -p->lambd ? w + p->bias : w > p->lambd ? w - p->bias : 0;
            y[i] = f64_to_u64_sat(w);
            break;
        }
        default: return false;
        }
    }
    return true;
}

static int k_unary(ref_ctx *c) {
    int op = c->node->op;
    const kiln_tensor *x = c->in[0];
    if (!x) return ref_fail(c, "missing input");
    if (prep_out(c, 0, x->dtype, x->rank, x->dims)) return -1;
    kiln_tensor *out = c->out[0];
    un_par p;
    un_params(c->node, &p);
    dom d = dom_of(x->dtype);
    dbuf a;
    obuf o;
    if (dload(c, x, d, &a)) return -1;
    if (obegin(c, out, d, &o)) {
        free(a.own);
        return -1;
    }
    int64_t n = tensor_numel(x);
    bool ok = d == D_F32   ? unary_f32(op, &p, a.p, o.p, n)
              : d == D_F64 ? unary_f64(op, &p, a.p, o.p, n)
                           : unary_int(op, d, &p, a.p, o.p, n);
    free(a.own);
    if (!ok) {
        free(o.own);
        return ref_fail(c, "type %s is not supported", kiln_dtype_name(x->dtype));
    }
    oend(out, d, &o);
    return 0;
}

static int k_not(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (!x || x->dtype != KILN_DTYPE_BOOL) return ref_fail(c, "input must be bool");
    if (prep_out(c, 0, KILN_DTYPE_BOOL, x->rank, x->dims)) return -1;
    const uint8_t *s = x->data;
    uint8_t *y = c->out[0]->data;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) y[i] = s[i] == 0;
    return 0;
}

static int k_isx(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (!x) return ref_fail(c, "missing input");
    if (prep_out(c, 0, KILN_DTYPE_BOOL, x->rank, x->dims)) return -1;
    bool isnan_op = c->node->op == OP_IsNaN;
    bool pos = ir_attr_int(c->node, "detect_positive", 1) != 0;
    bool neg = ir_attr_int(c->node, "detect_negative", 1) != 0;
    uint8_t *y = c->out[0]->data;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        /* through double: exact for every float type, so a large finite
        ** float64 does not turn into inf */
        double v = dt_get_f64(x->dtype, x->data, (size_t)i);
        y[i] = isnan_op ? v != v
                        : (isinf(v) && ((v > 0 && pos) || (v < 0 && neg)));
    }
    return 0;
}

/* ---- Clip */
static int k_clip(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (!x) return ref_fail(c, "missing input");
    if (prep_out(c, 0, x->dtype, x->rank, x->dims)) return -1;
    kiln_tensor *out = c->out[0];
    dom d = dom_of(x->dtype);
    double flo = -INFINITY, fhi = INFINITY;
    int64_t ilo = INT64_MIN, ihi = INT64_MAX;
    uint64_t ulo = 0, uhi = UINT64_MAX;
    if (c->opset < 11) {
        flo = ir_attr_float(c->node, "min", -3.402823466e+38f);
        fhi = ir_attr_float(c->node, "max", 3.402823466e+38f);
        if (d != D_F32 && d != D_F64)
            return ref_fail(c, "Clip before opset 11 takes floats only");
    } else {
        for (int k = 1; k < 3; k++) {
            const kiln_tensor *b = ref_has(c, k) ? c->in[k] : NULL;
            if (!b) continue;
            if (b->dtype != x->dtype || tensor_numel(b) != 1)
                return ref_fail(c, "input %d must be a scalar of the input's "
                                "type", k);
            double fv = dt_get_f64(b->dtype, b->data, 0);
            int64_t iv = dt_get_i64(b->dtype, b->data, 0);
            if (k == 1) {
                flo = fv;
                ilo = iv;
                ulo = (uint64_t)iv;
            } else {
                fhi = fv;
                ihi = iv;
                uhi = (uint64_t)iv;
            }
        }
    }
    dbuf a;
    obuf o;
    if (dload(c, x, d, &a)) return -1;
    if (obegin(c, out, d, &o)) {
        free(a.own);
        return -1;
    }
    int64_t n = tensor_numel(x);
    /* lower bound first: when min > max everything becomes max, as the spec
    ** says; NaN passes through */
#define CLIP_LOOP(T, LO, HI)                                                 \
    do {                                                                     \
        const T *s = a.p, lo = (T)(LO), hi = (T)(HI);                        \
        T *y = o.p;                                                          \
        for (int64_t i = 0; i < n; i++) {                                    \
            T v = s[i];                                                      \
            v = v < lo ? lo : v;                                             \
            y[i] = v > hi ? hi : v;                                          \
        }                                                                    \
    } while (0)
    switch (d) {
    case D_F32: CLIP_LOOP(float, flo, fhi); break;
    case D_F64: CLIP_LOOP(double, flo, fhi); break;
    case D_I64: CLIP_LOOP(int64_t, ilo, ihi); break;
    case D_U64: CLIP_LOOP(uint64_t, ulo, uhi); break;
    }
#undef CLIP_LOOP
    free(a.own);
    oend(out, d, &o);
    return 0;
}

/* ---- Softmax LogSoftmax Hardmax over (outer, n, inner) blocks. The sums
** are kept in double: a float sum over a large axis (an OCR recognizer's
** 18,000 classes) drifts by ~1e-4 relative, far more than onnxruntime. */
#define SOFTMAX_FN(NAME, T)                                                   \
    static void NAME(int op, const T *x, T *y, int64_t outer, int64_t n,      \
                     int64_t inner, T *mx, double *sum) {                     \
        for (int64_t o = 0; o < outer; o++) {                                 \
            const T *xb = x + o * n * inner;                                  \
            T *yb = y + o * n * inner;                                        \
            for (int64_t j = 0; j < inner; j++) {                             \
                mx[j] = xb[j];                                                \
                sum[j] = 0;                                                   \
            }                                                                 \
            if (op == OP_Hardmax) {                                           \
                /* first occurrence of the max wins; mx holds the max and */  \
                /* sum the index of its first position */                    \
                for (int64_t k = 1; k < n; k++)                               \
                    for (int64_t j = 0; j < inner; j++)                       \
                        if (xb[k * inner + j] > mx[j]) {                      \
                            mx[j] = xb[k * inner + j];                        \
                            sum[j] = (double)k;                               \
                        }                                                     \
                for (int64_t k = 0; k < n; k++)                               \
                    for (int64_t j = 0; j < inner; j++)                       \
                        yb[k * inner + j] = (T)(sum[j] == (double)k);         \
                continue;                                                     \
            }                                                                 \
            for (int64_t k = 1; k < n; k++)                                   \
                for (int64_t j = 0; j < inner; j++)                           \
                    if (xb[k * inner + j] > mx[j]) mx[j] = xb[k * inner + j]; \
            for (int64_t k = 0; k < n; k++)                                   \
                for (int64_t j = 0; j < inner; j++) {                         \
                    T e = exp(xb[k * inner + j] - mx[j]);                     \
                    sum[j] += e;                                              \
                    yb[k * inner + j] = e;                                    \
                }                                                             \
            if (op == OP_Softmax) {                                           \
                for (int64_t j = 0; j < inner; j++) sum[j] = 1 / sum[j];      \
                for (int64_t k = 0; k < n; k++)                               \
                    for (int64_t j = 0; j < inner; j++)                       \
                        yb[k * inner + j] = (T)(yb[k * inner + j] * sum[j]);  \
            } else {                                                          \
                for (int64_t j = 0; j < inner; j++)                           \
                    sum[j] = mx[j] + log(sum[j]);                             \
                for (int64_t k = 0; k < n; k++)                               \
                    for (int64_t j = 0; j < inner; j++)                       \
                        yb[k * inner + j] = (T)(xb[k * inner + j] - sum[j]);  \
            }                                                                 \
        }                                                                     \
    }
SOFTMAX_FN(softmax_f32, float)
SOFTMAX_FN(softmax_f64, double)

static int k_softmax(ref_ctx *c) {
    int op = c->node->op;
    const kiln_tensor *x = c->in[0];
    if (!x) return ref_fail(c, "missing input");
    if (prep_out(c, 0, x->dtype, x->rank, x->dims)) return -1;
    kiln_tensor *out = c->out[0];
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r || (axis == r && c->opset >= 13))
        return ref_fail(c, "axis out of range for rank %d", r);
    int64_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (c->opset < 13 || i == axis) n *= x->dims[i];
        else inner *= x->dims[i];
    }
    /* opset < 13 coerces to 2-D [outer, n] and works along all of n */
    if (tensor_numel(x) == 0) return 0;
    dom d = dom_of(x->dtype);
    if (d != D_F32 && d != D_F64)
        return ref_fail(c, "type %s is not supported", kiln_dtype_name(x->dtype));
    dbuf a;
    obuf o;
    size_t es = dom_size(d);
    if (dload(c, x, d, &a)) return -1;
    void *tmp = malloc((size_t)inner * (es + sizeof(double)));
    if (!tmp || obegin(c, out, d, &o)) {
        free(a.own);
        free(tmp);
        return tmp ? -1 : ref_fail(c, "out of memory");
    }
    double *sum = tmp;
    if (d == D_F32)
        softmax_f32(op, a.p, o.p, outer, n, inner, (float *)(sum + inner), sum);
    else
        softmax_f64(op, a.p, o.p, outer, n, inner, (double *)(sum + inner), sum);
    free(tmp);
    free(a.own);
    oend(out, d, &o);
    return 0;
}

/* ---- Where */
typedef struct where_ud {
    size_t es;
} where_ud;

static void where_row(void *o, const void *const *in, const int *inc,
                      int64_t n, void *ud) {
    size_t es = ((where_ud *)ud)->es;
    const uint8_t *cond = in[0];
    const char *x = in[1], *y = in[2];
    char *dst = o;
    for (int64_t i = 0; i < n; i++) {
        const char *src = cond[inc[0] ? i : 0] ? x + (inc[1] ? (size_t)i * es : 0)
                                             : y + (inc[2] ? (size_t)i * es : 0);
        switch (es) {
        case 1: dst[i] = *src; break;
        case 2: memcpy(dst + (size_t)i * 2, src, 2); break;
        case 4: memcpy(dst + (size_t)i * 4, src, 4); break;
        default: memcpy(dst + (size_t)i * 8, src, 8); break;
        }
    }
}

static bool is_nibble(kiln_dtype t) {
    return t == KILN_DTYPE_INT4 || t == KILN_DTYPE_UINT4 ||
           t == KILN_DTYPE_FLOAT4E2M1;
}

static uint8_t get_nib(const void *base, size_t i) {
    uint8_t b = ((const uint8_t *)base)[i / 2];
    return (i & 1) ? (uint8_t)(b >> 4) : (uint8_t)(b & 15);
}

static void set_nib(void *base, size_t i, uint8_t q) {
    uint8_t *b = (uint8_t *)base + i / 2;
    q &= 15;
    *b = (i & 1) ? (uint8_t)((*b & 15) | (q << 4)) : (uint8_t)((*b & 0xf0) | q);
}

static int k_where(ref_ctx *c) {
    const kiln_tensor *tc = c->in[0], *tx = c->in[1], *ty = c->in[2];
    if (!tc || !tx || !ty) return ref_fail(c, "missing input");
    if (tc->dtype != KILN_DTYPE_BOOL) return ref_fail(c, "condition must be bool");
    if (tx->dtype != ty->dtype) return ref_fail(c, "X and Y types differ");
    int r1, r2;
    int64_t d1[KILN_MAX_RANK], d2[KILN_MAX_RANK];
    if (bcast_shape2(c, tc, tx, &r1, d1)) return -1;
    if (!shape_broadcast(r1, d1, ty->rank, ty->dims, &r2, d2))
        return ref_fail(c, "input shapes do not broadcast");
    if (prep_out(c, 0, tx->dtype, r2, d2)) return -1;
    kiln_tensor *out = c->out[0];
    int rin[3] = {tc->rank, tx->rank, ty->rank};
    const int64_t *din[3] = {tc->dims, tx->dims, ty->dims};
    if (is_nibble(tx->dtype)) {
        /* packed 4-bit elements: walk element by element */
        int64_t st[3][KILN_MAX_RANK];
        const int64_t *sp[3] = {st[0], st[1], st[2]};
        for (int j = 0; j < 3; j++) bcast_strides(rin[j], din[j], r2, st[j]);
        bcast_iter it;
        bcast_iter_init(&it, r2, d2, 3, sp);
        int64_t total = tensor_numel(out);
        const uint8_t *cd = tc->data;
        for (int64_t k = 0; k < total; k++, bcast_iter_next(&it)) {
            uint8_t q = cd[it.off[0]] ? get_nib(tx->data, (size_t)it.off[1])
                                      : get_nib(ty->data, (size_t)it.off[2]);
            set_nib(out->data, (size_t)k, q);
        }
        return 0;
    }
    size_t es = kiln_dtype_size(tx->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return ref_fail(c, "type %s is not supported", kiln_dtype_name(tx->dtype));
    const void *pin[3] = {tc->data, tx->data, ty->data};
    size_t esin[3] = {1, es, es};
    where_ud ud = {es};
    bc_run(r2, d2, out->data, es, 3, rin, din, pin, esin, where_row, &ud);
    return 0;
}

/* ---- Cast */
/* double -> float rounding to odd: a later rounding to any narrower format
** (f16, bf16, fp8, fp4) then equals one direct rounding of the double. */
static float f64_to_f32_odd(double v) {
    float f = (float)v;
    if (v != v || (double)f == v) return f;
    if (fabs((double)f) > fabs(v)) f = nextafterf(f, 0.0f);
    uint32_t u;
    memcpy(&u, &f, 4);
    u |= 1;
    memcpy(&f, &u, 4);
    return f;
}

static void store_float(kiln_dtype t, void *dst, size_t i, double v, bool sat) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: ((float *)dst)[i] = (float)v; return;
    case KILN_DTYPE_FLOAT64: ((double *)dst)[i] = v; return;
    case KILN_DTYPE_FLOAT16:
        ((uint16_t *)dst)[i] = f32_to_f16(f64_to_f32_odd(v));
        return;
    case KILN_DTYPE_BFLOAT16:
        ((uint16_t *)dst)[i] = f32_to_bf16(f64_to_f32_odd(v));
        return;
    case KILN_DTYPE_FLOAT4E2M1:
        set_nib(dst, i, f32_to_fp4e2m1(f64_to_f32_odd(v)));
        return;
    case KILN_DTYPE_FLOAT8E8M0:
        ((uint8_t *)dst)[i] = f32_to_e8m0((float)v, sat, E8M0_ROUND_UP);
        return;
    default: /* float8 */
        ((uint8_t *)dst)[i] = f32_to_fp8(t, f64_to_f32_odd(v), sat);
        return;
    }
}

/* Integer targets keep the low bits (two's complement), per the spec. */
static void store_int(kiln_dtype t, void *dst, size_t i, uint64_t bits) {
    switch (t) {
    case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8:
        ((uint8_t *)dst)[i] = (uint8_t)bits;
        return;
    case KILN_DTYPE_BOOL: ((uint8_t *)dst)[i] = bits != 0; return;
    case KILN_DTYPE_INT16: case KILN_DTYPE_UINT16:
        ((uint16_t *)dst)[i] = (uint16_t)bits;
        return;
    case KILN_DTYPE_INT32: case KILN_DTYPE_UINT32:
        ((uint32_t *)dst)[i] = (uint32_t)bits;
        return;
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4:
        set_nib(dst, i, (uint8_t)(bits & 15));
        return;
    case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2: { /* wraps, as ONNX casts do */
        uint8_t *b = (uint8_t *)dst + i / 4;
        int sh = 2 * (int)(i & 3);
        *b = (uint8_t)((*b & ~(3u << sh)) | ((unsigned)(bits & 3) << sh));
        return;
    }
    default: ((uint64_t *)dst)[i] = bits; return;
    }
}

static int cast_tensor(ref_ctx *c, const kiln_tensor *x, kiln_tensor *out,
                       bool sat) {
    kiln_dtype st = x->dtype, dt = out->dtype;
    int64_t n = tensor_numel(x);
    const void *src = x->data;
    void *dst = out->data;
    if (n == 0) return 0;
    if (st == dt) {
        memcpy(dst, src, out->nbytes < x->nbytes ? out->nbytes : x->nbytes);
        return 0;
    }
    /* common pairs in models, as plain loops */
    if (st == KILN_DTYPE_FLOAT32 && dt == KILN_DTYPE_FLOAT16) {
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = f32_to_f16(((const float *)src)[i]);
        return 0;
    }
    if (st == KILN_DTYPE_FLOAT16 && dt == KILN_DTYPE_FLOAT32) {
        for (int64_t i = 0; i < n; i++)
            ((float *)dst)[i] = f16_to_f32(((const uint16_t *)src)[i]);
        return 0;
    }
    if (st == KILN_DTYPE_INT64 && dt == KILN_DTYPE_FLOAT32) {
        for (int64_t i = 0; i < n; i++)
            ((float *)dst)[i] = (float)((const int64_t *)src)[i];
        return 0;
    }
    if (st == KILN_DTYPE_BOOL && dt == KILN_DTYPE_FLOAT32) {
        for (int64_t i = 0; i < n; i++)
            ((float *)dst)[i] = ((const uint8_t *)src)[i] ? 1.0f : 0.0f;
        return 0;
    }
    bool dfloat = dtype_is_float(dt);
    if (!dfloat && !dtype_is_int(dt) && dt != KILN_DTYPE_BOOL)
        return ref_fail(c, "cannot cast to %s", kiln_dtype_name(dt));
    if (dtype_is_float(st)) {
        for (int64_t i = 0; i < n; i++) {
            double v = dt_get_f64(st, src, (size_t)i);
            if (dfloat) {
                store_float(dt, dst, (size_t)i, v, sat);
            } else if (dt == KILN_DTYPE_BOOL) {
                ((uint8_t *)dst)[i] = v != 0; /* NaN is true */
            } else if (dt == KILN_DTYPE_UINT64 && v >= 9223372036854775808.0) {
                store_int(dt, dst, (size_t)i, f64_to_u64_sat(v));
            } else {
                /* out of range is undefined in the spec: saturate to int64
                ** and keep the low bits, never C undefined behaviour */
                store_int(dt, dst, (size_t)i, (uint64_t)f64_to_i64_sat(v));
            }
        }
        return 0;
    }
    if (!dtype_is_int(st) && st != KILN_DTYPE_BOOL)
        return ref_fail(c, "cannot cast from %s", kiln_dtype_name(st));
    bool uns = is_uint(st);
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits = (uint64_t)dt_get_i64(st, src, (size_t)i);
        if (!dfloat) {
            store_int(dt, dst, (size_t)i, bits);
        } else if (dt == KILN_DTYPE_FLOAT32) {
            ((float *)dst)[i] = uns ? (float)bits : (float)wrap_i64(bits);
        } else {
            store_float(dt, dst, (size_t)i,
                        uns ? (double)bits : (double)wrap_i64(bits), sat);
        }
    }
    return 0;
}

static int k_cast(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    if (!x) return ref_fail(c, "missing input");
    kiln_dtype to;
    if (c->node->op == OP_CastLike) {
        if (!ref_has(c, 1)) return ref_fail(c, "missing target_type input");
        to = c->in[1]->dtype;
    } else {
        int64_t t = elementwise_cast_to(c->node);
        if (t <= 0 || t >= KILN_DTYPE_COUNT_ || !dtype_is_valid((int)t))
            return ref_fail(c, "invalid target type %lld", (long long)t);
        to = (kiln_dtype)t;
    }
    if (to == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_STRING)
        return ref_fail(c, "string casts are not supported");
    if (prep_out(c, 0, to, x->rank, x->dims)) return -1;
    bool sat = ir_attr_int(c->node, "saturate", 1) != 0;
    if (to == KILN_DTYPE_FLOAT8E8M0 && x->dtype != to) { /* rounds by round_mode */
        const char *rm = ir_attr_str(c->node, "round_mode", "up");
        int mode = !strcmp(rm, "up") ? E8M0_ROUND_UP : !strcmp(rm, "down") ? E8M0_ROUND_DOWN
                   : !strcmp(rm, "nearest") ? E8M0_ROUND_NEAREST : -1;
        if (mode < 0) return ref_fail(c, "round_mode must be up, down or nearest");
        int64_t n = tensor_numel(x);
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)c->out[0]->data)[i] =
                f32_to_e8m0((float)dt_get_f64(x->dtype, x->data, (size_t)i), sat, mode);
        return 0;
    }
    return cast_tensor(c, x, c->out[0], sat);
}

const ref_kernel ref_kernels_elementwise[] = {
    {OP_Add, k_binary}, {OP_Sub, k_binary}, {OP_Mul, k_binary},
    {OP_Div, k_binary}, {OP_Pow, k_binary}, {OP_Mod, k_binary},
    {OP_Neg, k_unary}, {OP_Abs, k_unary}, {OP_Sign, k_unary},
    {OP_Reciprocal, k_unary}, {OP_Sqrt, k_unary}, {OP_Exp, k_unary},
    {OP_Log, k_unary}, {OP_Erf, k_unary}, {OP_Floor, k_unary},
    {OP_Ceil, k_unary}, {OP_Round, k_unary}, {OP_Sin, k_unary},
    {OP_Cos, k_unary}, {OP_Tan, k_unary}, {OP_Asin, k_unary},
    {OP_Acos, k_unary}, {OP_Atan, k_unary}, {OP_Sinh, k_unary},
    {OP_Cosh, k_unary}, {OP_Asinh, k_unary}, {OP_Acosh, k_unary},
    {OP_Atanh, k_unary},
    {OP_Min, k_variadic}, {OP_Max, k_variadic}, {OP_Mean, k_variadic},
    {OP_Sum, k_variadic},
    {OP_Clip, k_clip},
    {OP_IsNaN, k_isx}, {OP_IsInf, k_isx},
    {OP_Relu, k_unary}, {OP_LeakyRelu, k_unary}, {OP_PRelu, k_binary},
    {OP_Elu, k_unary}, {OP_Selu, k_unary}, {OP_Celu, k_unary},
    {OP_Sigmoid, k_unary}, {OP_HardSigmoid, k_unary},
    {OP_HardSwish, k_unary}, {OP_Tanh, k_unary}, {OP_Softplus, k_unary},
    {OP_Softsign, k_unary}, {OP_Mish, k_unary}, {OP_Gelu, k_unary},
    {OP_ThresholdedRelu, k_unary}, {OP_Shrink, k_unary},
    {OP_Softmax, k_softmax}, {OP_LogSoftmax, k_softmax},
    {OP_Hardmax, k_softmax}, {OP_Swish, k_unary},
    {OP_BitwiseAnd, k_binary}, {OP_BitwiseOr, k_binary},
    {OP_BitwiseXor, k_binary}, {OP_BitwiseNot, k_unary},
    {OP_Equal, k_binary}, {OP_Less, k_binary}, {OP_LessOrEqual, k_binary},
    {OP_Greater, k_binary}, {OP_GreaterOrEqual, k_binary},
    {OP_And, k_binary}, {OP_Or, k_binary}, {OP_Xor, k_binary},
    {OP_Not, k_not}, {OP_Where, k_where}, {OP_BitShift, k_binary},
    {OP_Cast, k_cast}, {OP_CastLike, k_cast},
    {OP_NONE, NULL},
};
