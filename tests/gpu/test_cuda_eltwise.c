/* test_cuda_eltwise.c: the CUDA elementwise tactics (cuda_eltwise.c) against
** the reference kernels on random shapes: broadcasting of every kind (equal,
** scalar, dropped leading dims, size-1 dims, empty tensors), float32 /
** float16 / bfloat16 and the integer and bool types each op takes, every
** unary op and activation, Cast between all supported types with special
** values, and FusedElementwise programs (hand-written and random; the fast
** path's input classes through the tactic, and the fast path against the
** interpreter through the kernel seam, misaligned pointers included). Runs on
** a GPU machine only (tests/gpu/run.sh). */
#include "gpu_test.h"
#include "../../src/backends/cuda/kernels/eltwise_kernels.h"
#include "../../src/ops/fused.h"

#define TABLE cuda_tactics_eltwise

static const kiln_dtype k_floats[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                      KILN_DTYPE_BFLOAT16};

typedef struct binop {
    int op;
    const char *name;
    bool fl, in, bl;
} binop;

static const binop k_binops[] = {
    {OP_Add, "Add", true, true, false},   {OP_Sub, "Sub", true, true, false},
    {OP_Mul, "Mul", true, true, false},   {OP_Div, "Div", true, true, false},
    {OP_Pow, "Pow", true, true, false},   {OP_Max, "Max", true, true, false},
    {OP_Min, "Min", true, true, false},   {OP_Mod, "Mod", true, true, false},
    {OP_BitwiseAnd, "BitwiseAnd", false, true, false},
    {OP_BitwiseOr, "BitwiseOr", false, true, false},
    {OP_BitwiseXor, "BitwiseXor", false, true, false},
    {OP_BitShift, "BitShift", false, true, false},
    {OP_PRelu, "PRelu", true, true, false},
    {OP_Equal, "Equal", true, true, true}, {OP_Less, "Less", true, true, false},
    {OP_LessOrEqual, "LessOrEqual", true, true, false},
    {OP_Greater, "Greater", true, true, false},
    {OP_GreaterOrEqual, "GreaterOrEqual", true, true, false},
    {OP_And, "And", false, false, true},  {OP_Or, "Or", false, false, true},
    {OP_Xor, "Xor", false, false, true},
};

static bool is_cmp(int op) {
    return op == OP_Equal || op == OP_Less || op == OP_LessOrEqual || op == OP_Greater ||
           op == OP_GreaterOrEqual;
}

/* Values for input k of a binary op. */
static bool is_unsigned(kiln_dtype dt) {
    return dt == KILN_DTYPE_UINT8 || dt == KILN_DTYPE_UINT16 || dt == KILN_DTYPE_UINT32 ||
           dt == KILN_DTYPE_UINT64;
}

static kiln_tensor *bin_input(int op, int k, kiln_dtype dt, int rank, const int64_t *dims) {
    if (!gt_is_float(dt)) {
        if (dt == KILN_DTYPE_BOOL) return gt_rand(dt, rank, dims, 0, 1);
        kiln_tensor *t;
        if (op == OP_BitShift && k == 1) /* counts up to past the width */
            return gt_rand(dt, rank, dims, 0, (double)kiln_dtype_size(dt) * 8 + 3);
        if (op == OP_Pow) /* exact small powers, negative exponents too */
            return k == 0 ? gt_rand(dt, rank, dims, is_unsigned(dt) ? 0 : -3, 4)
                          : gt_rand(dt, rank, dims, is_unsigned(dt) ? 0 : -2, 6);
        if (is_unsigned(dt)) {
            t = gt_rand(dt, rank, dims, 0, 100);
            /* uint64 above 2^63: orderings and division must be unsigned */
            if (dt == KILN_DTYPE_UINT64)
                for (int64_t i = 0; i < tensor_numel(t); i++)
                    if (rnd() < 0.3) ((uint64_t *)t->data)[i] |= 1ull << 63;
        } else {
            t = gt_rand(dt, rank, dims, is_cmp(op) ? -3 : -50, is_cmp(op) ? 3 : 50);
        }
        /* integer division by zero fails in the reference: no zero divisors */
        if ((op == OP_Div || op == OP_Mod) && k == 1)
            for (int64_t i = 0; i < tensor_numel(t); i++)
                if (dt_get_i64(dt, t->data, (size_t)i) == 0) dt_set_i64(dt, t->data, (size_t)i, 7);
        return t;
    }
    kiln_tensor *t;
    if (is_cmp(op)) { /* small integers: ties */
        t = gt_rand(dt, rank, dims, -3, 3);
        for (int64_t i = 0; i < tensor_numel(t); i++)
            dt_set_f64(dt, t->data, (size_t)i, floor(dt_get_f64(dt, t->data, (size_t)i)));
        return t;
    }
    if (op == OP_Pow) return k == 0 ? gt_rand(dt, rank, dims, 0.1, 2) : gt_rand(dt, rank, dims, -2, 2);
    if ((op == OP_Div || op == OP_Mod) && k == 1) {
        t = gt_rand(dt, rank, dims, 0.5, 2);
        for (int64_t i = 0; i < tensor_numel(t); i++)
            if (rnd() < 0.5)
                dt_set_f64(dt, t->data, (size_t)i, -dt_get_f64(dt, t->data, (size_t)i));
        return t;
    }
    return gt_rand(dt, rank, dims, op == OP_Mod ? -6 : -2, op == OP_Mod ? 6 : 2);
}

static void test_binary(void) {
    kiln_dtype dts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16,
                        KILN_DTYPE_INT32, KILN_DTYPE_INT64, KILN_DTYPE_INT8,
                        KILN_DTYPE_UINT8, KILN_DTYPE_BOOL, KILN_DTYPE_INT16,
                        KILN_DTYPE_UINT16, KILN_DTYPE_UINT32, KILN_DTYPE_UINT64,
                        KILN_DTYPE_FLOAT64};
    for (size_t o = 0; o < KILN_ARRAY_LEN(k_binops); o++) {
        const binop *b = &k_binops[o];
        for (size_t d = 0; d < KILN_ARRAY_LEN(dts); d++) {
            kiln_dtype dt = dts[d];
            bool fl = gt_is_float(dt), bl = dt == KILN_DTYPE_BOOL;
            if ((fl && !b->fl) || (bl && !b->bl) || (!fl && !bl && !b->in)) continue;
            if (b->op == OP_BitShift && !is_unsigned(dt)) continue;
            for (int k = 0; k < 8; k++) {
                int64_t od[KILN_MAX_RANK], ad[KILN_MAX_RANK], bd[KILN_MAX_RANK];
                int R = gt_irand(0, 5);
                gt_shape(R, od, 40000);
                if (k == 7 && R > 0) od[gt_irand(0, R - 1)] = 0; /* empty */
                int ra, rb;
                if (k == 0) { /* equal shapes: the contiguous fast path */
                    ra = rb = R;
                    memcpy(ad, od, sizeof ad);
                    memcpy(bd, od, sizeof bd);
                } else {
                    ra = gt_bcast_of(R, od, ad);
                    rb = gt_bcast_of(R, od, bd);
                }
                if (b->op == OP_PRelu) { /* the slope broadcasts into X */
                    ra = R;
                    memcpy(ad, od, sizeof ad);
                }
                kiln_tensor *A = bin_input(b->op, 0, dt, ra, ad);
                kiln_tensor *B = bin_input(b->op, 1, dt, rb, bd);
                ir_node *n = gt_node(b->op, 2, 1);
                if (b->op == OP_Mod && (fl ? k % 2 : k % 3 == 1)) ir_edit_set_int(n, "fmod", 1);
                if (b->op == OP_BitShift) ir_edit_set_str(n, "direction", k % 2 ? "LEFT" : "RIGHT");
                const kiln_tensor *in[2] = {A, B};
                char desc[200], sa[64], sb[64];
                snprintf(desc, sizeof desc, "%s %s %s x %s", b->name, gt_dt(dt),
                         gt_shp(A, sa, sizeof sa), gt_shp(B, sb, sizeof sb));
                gt_case(TABLE, n, in, gt_tol(dt), desc);
                tensor_free(A);
                tensor_free(B);
            }
        }
    }
    /* variadic Max / Min / Sum / Mean over three inputs, and Pow with an
    ** integer exponent */
    int vops[] = {OP_Max, OP_Min, OP_Sum, OP_Mean};
    for (size_t v = 0; v < KILN_ARRAY_LEN(vops); v++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (int k = 0; k < 4; k++) {
                kiln_dtype dt = k_floats[d];
                int64_t od[KILN_MAX_RANK], sd[3][KILN_MAX_RANK];
                int R = gt_irand(1, 4), r[3];
                gt_shape(R, od, 20000);
                kiln_tensor *X[3];
                for (int j = 0; j < 3; j++) {
                    r[j] = gt_bcast_of(R, od, sd[j]);
                    X[j] = gt_rand(dt, r[j], sd[j], -2, 2);
                }
                ir_node *n = gt_node(vops[v], 3, 1);
                char desc[96];
                snprintf(desc, sizeof desc, "%s of 3 %s", op_name(vops[v]), gt_dt(dt));
                gt_case(TABLE, n, (const kiln_tensor *const *)X, gt_tol(dt), desc);
                for (int j = 0; j < 3; j++) tensor_free(X[j]);
            }
    {
        int64_t d[2] = {7, 33}, e[1] = {33};
        kiln_tensor *A = gt_rand(KILN_DTYPE_FLOAT32, 2, d, 0.1, 2);
        kiln_tensor *B = gt_rand(KILN_DTYPE_INT64, 1, e, -3, 4);
        ir_node *n = gt_node(OP_Pow, 2, 1);
        const kiln_tensor *in[2] = {A, B};
        gt_case(TABLE, n, in, 1e-5, "Pow float ** int64");
        tensor_free(A);
        tensor_free(B);
    }
    /* integer bases to float powers (saturated like the reference) */
    static const kiln_dtype ib[] = {KILN_DTYPE_INT32, KILN_DTYPE_INT64, KILN_DTYPE_UINT8,
                                    KILN_DTYPE_INT8};
    for (int k = 0; k < 8; k++) {
        int64_t d[2] = {5, 17}, e[1] = {17};
        kiln_tensor *A = gt_rand(ib[k % 4], 2, d, ib[k % 4] == KILN_DTYPE_UINT8 ? 0 : -6, 9);
        kiln_tensor *B = gt_rand(k < 4 ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_FLOAT64, 1, e, -1.5, 3.5);
        ir_node *n = gt_node(OP_Pow, 2, 1);
        const kiln_tensor *in[2] = {A, B};
        char desc[64];
        snprintf(desc, sizeof desc, "Pow %s ** %s", gt_dt(A->dtype), gt_dt(B->dtype));
        gt_case(TABLE, n, in, 0, desc);
        tensor_free(A);
        tensor_free(B);
    }
    /* Max / Min / Sum / Mean of one input: the input */
    for (size_t v = 0; v < KILN_ARRAY_LEN(vops); v++) {
        int64_t d[2] = {3, 11};
        kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT32, 2, d, -2, 2);
        const kiln_tensor *in[1] = {X};
        char desc[64];
        snprintf(desc, sizeof desc, "%s of one input", op_name(vops[v]));
        gt_case(TABLE, gt_node(vops[v], 1, 1), in, 0, desc);
        tensor_free(X);
    }
}

static void test_where(void) {
    kiln_dtype dts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_INT64,
                        KILN_DTYPE_BOOL, KILN_DTYPE_INT32};
    for (size_t d = 0; d < KILN_ARRAY_LEN(dts); d++)
        for (int k = 0; k < 8; k++) {
            int64_t od[KILN_MAX_RANK], sd[3][KILN_MAX_RANK];
            int R = gt_irand(0, 5), r[3];
            gt_shape(R, od, 40000);
            if (k == 7 && R > 0) od[0] = 0;
            for (int j = 0; j < 3; j++) r[j] = k == 0 ? R : gt_bcast_of(R, od, sd[j]);
            if (k == 0)
                for (int j = 0; j < 3; j++) memcpy(sd[j], od, sizeof od);
            kiln_tensor *X[3] = {gt_rand(KILN_DTYPE_BOOL, r[0], sd[0], 0, 1),
                                 gt_rand(dts[d], r[1], sd[1], -9, 9),
                                 gt_rand(dts[d], r[2], sd[2], -9, 9)};
            ir_node *n = gt_node(OP_Where, 3, 1);
            char desc[96];
            snprintf(desc, sizeof desc, "Where %s case %d", gt_dt(dts[d]), k);
            gt_case(TABLE, n, (const kiln_tensor *const *)X, 0, desc);
            for (int j = 0; j < 3; j++) tensor_free(X[j]);
        }
}

typedef struct unop {
    int op;
    const char *name;
    double lo, hi;
} unop;

static const unop k_unops[] = {
    {OP_Neg, "Neg", -3, 3}, {OP_Abs, "Abs", -3, 3}, {OP_Sqrt, "Sqrt", 0.05, 4},
    {OP_Exp, "Exp", -5, 5}, {OP_Log, "Log", 0.05, 4}, {OP_Tanh, "Tanh", -3, 3},
    {OP_Sigmoid, "Sigmoid", -8, 8}, {OP_Relu, "Relu", -3, 3}, {OP_Erf, "Erf", -3, 3},
    {OP_Reciprocal, "Reciprocal", 0.2, 3}, {OP_Floor, "Floor", -5, 5},
    {OP_Ceil, "Ceil", -5, 5}, {OP_Round, "Round", -5, 5}, {OP_Sin, "Sin", -3, 3},
    {OP_Cos, "Cos", -3, 3}, {OP_Tan, "Tan", -1.2, 1.2}, {OP_Sign, "Sign", -3, 3},
    {OP_Softplus, "Softplus", -8, 8}, {OP_Softsign, "Softsign", -3, 3},
    {OP_Elu, "Elu", -3, 3}, {OP_Selu, "Selu", -3, 3}, {OP_Celu, "Celu", -3, 3},
    {OP_ThresholdedRelu, "ThresholdedRelu", -3, 3}, {OP_Swish, "Swish", -3, 3},
    {OP_LeakyRelu, "LeakyRelu", -3, 3}, {OP_HardSigmoid, "HardSigmoid", -5, 5},
    {OP_HardSwish, "HardSwish", -5, 5}, {OP_Mish, "Mish", -3, 3}, {OP_Gelu, "Gelu", -3, 3},
    {OP_Asin, "Asin", -0.99, 0.99}, {OP_Acos, "Acos", -0.99, 0.99}, {OP_Atan, "Atan", -4, 4},
    {OP_Sinh, "Sinh", -3, 3}, {OP_Cosh, "Cosh", -3, 3}, {OP_Asinh, "Asinh", -4, 4},
    {OP_Acosh, "Acosh", 1.01, 6}, {OP_Atanh, "Atanh", -0.95, 0.95},
    {OP_Shrink, "Shrink", -3, 3},
};

static void test_unary(void) {
    static const int64_t sizes[] = {0, 1, 3, 4, 5, 1001, 4099, 65537};
    for (size_t o = 0; o < KILN_ARRAY_LEN(k_unops); o++) {
        const unop *u = &k_unops[o];
        if (u->op == OP_Swish) continue; /* newest opset only; checked below */
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (size_t s = 0; s < KILN_ARRAY_LEN(sizes); s++) {
                kiln_dtype dt = k_floats[d];
                int64_t dims[3] = {sizes[s], 1, 1};
                int rank = s % 3 == 0 ? 1 : s % 3 == 1 ? 3 : 2;
                if (s == 2) rank = 0;
                kiln_tensor *X = gt_rand(dt, rank, dims, u->lo, u->hi);
                if (u->op == OP_Round) /* exact halves: ties to even */
                    for (int64_t i = 0; i < tensor_numel(X); i += 3)
                        dt_set_f64(dt, X->data, (size_t)i, (double)(i % 9) - 4.5);
                ir_node *n = gt_node(u->op, 1, 1);
                if (s % 2 && (u->op == OP_LeakyRelu || u->op == OP_Elu || u->op == OP_Celu ||
                              u->op == OP_ThresholdedRelu))
                    ir_edit_set_float(n, "alpha", 0.37f);
                if (s % 2 && u->op == OP_HardSigmoid) {
                    ir_edit_set_float(n, "alpha", 0.3f);
                    ir_edit_set_float(n, "beta", 0.4f);
                }
                if (s % 2 && u->op == OP_Selu) {
                    ir_edit_set_float(n, "alpha", 1.5f);
                    ir_edit_set_float(n, "gamma", 1.1f);
                }
                if (s % 2 && u->op == OP_Gelu) ir_edit_set_str(n, "approximate", "tanh");
                if (s % 2 && u->op == OP_Shrink) {
                    ir_edit_set_float(n, "lambd", 1.5f);
                    ir_edit_set_float(n, "bias", 0.25f);
                }
                g_model->opset = u->op == OP_Gelu || u->op == OP_Mish ? 20 : 17;
                const kiln_tensor *in[1] = {X};
                char desc[96];
                snprintf(desc, sizeof desc, "%s %s n=%lld", u->name, gt_dt(dt),
                         (long long)sizes[s]);
                gt_case(TABLE, n, in, gt_tol(dt), desc);
                tensor_free(X);
            }
    }
    /* float64: the parameterless math, in double */
    static const int f64_ops[] = {OP_Neg, OP_Abs, OP_Sqrt, OP_Exp, OP_Log, OP_Tanh, OP_Sigmoid,
                                  OP_Relu, OP_Reciprocal, OP_Floor, OP_Ceil, OP_Round, OP_Sin,
                                  OP_Cos, OP_Erf};
    for (size_t o = 0; o < KILN_ARRAY_LEN(f64_ops); o++) {
        int64_t dims[2] = {13, 77};
        bool pos = f64_ops[o] == OP_Sqrt || f64_ops[o] == OP_Log;
        kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT64, 2, dims, pos ? 0.01 : -4, 4);
        for (int64_t i = 0; i < tensor_numel(X); i += 7) /* halves for Round */
            dt_set_f64(KILN_DTYPE_FLOAT64, X->data, (size_t)i, (double)(i % 9) - 4.5 + (pos ? 5 : 0));
        const kiln_tensor *in[1] = {X};
        char desc[64];
        snprintf(desc, sizeof desc, "%s float64", op_name(f64_ops[o]));
        gt_case(TABLE, gt_node(f64_ops[o], 1, 1), in, 1e-12, desc);
        tensor_free(X);
    }
    g_model->opset = 24;
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++) {
        int64_t dims[1] = {777};
        kiln_tensor *X = gt_rand(k_floats[d], 1, dims, -3, 3);
        ir_node *n = gt_node(OP_Swish, 1, 1);
        ir_edit_set_float(n, "alpha", 1.7f);
        const kiln_tensor *in[1] = {X};
        gt_case(TABLE, n, in, gt_tol(k_floats[d]), "Swish");
        tensor_free(X);
    }
    g_model->opset = 17;
    /* Clip: constant bounds (both, min only, max only, min > max), and the
    ** attribute form before opset 11 */
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
        for (int k = 0; k < 5; k++) {
            kiln_dtype dt = k_floats[d];
            int64_t dims[2] = {37, 41};
            kiln_tensor *X = gt_rand(dt, 2, dims, -3, 3);
            if (k == 4) {
                g_model->opset = 10;
                ir_node *n = gt_node(OP_Clip, 1, 1);
                ir_edit_set_float(n, "min", -0.5f);
                ir_edit_set_float(n, "max", 2.0f);
                const kiln_tensor *in[1] = {X};
                gt_case(TABLE, n, in, gt_tol(dt), "Clip opset 10");
                g_model->opset = 17;
                tensor_free(X);
                continue;
            }
            double lo = k == 3 ? 1.0 : -1.25, hi = k == 3 ? -1.0 : 0.75;
            kiln_tensor *L = tensor_f64(dt, 0, NULL, &lo), *H = tensor_f64(dt, 0, NULL, &hi);
            ir_node *n = gt_node(OP_Clip, 3, 1);
            const kiln_tensor *in[3] = {X, k == 2 ? NULL : L, k == 1 ? NULL : H};
            if (in[1]) gt_const_in(n, 1, L);
            if (in[2]) gt_const_in(n, 2, H);
            char desc[64];
            snprintf(desc, sizeof desc, "Clip %s case %d", gt_dt(dt), k);
            gt_case(TABLE, n, in, gt_tol(dt), desc);
            /* the same bounds as runtime tensors (cuda_clip_f_rtbounds),
            ** one of them constant in case 0 */
            ir_node *m = gt_node(OP_Clip, 3, 1);
            if (in[1]) {
                if (k == 0) gt_const_in(m, 1, L);
                else gt_rt_in(m, 1);
            }
            if (in[2]) gt_rt_in(m, 2);
            snprintf(desc, sizeof desc, "Clip %s case %d runtime bounds", gt_dt(dt), k);
            if (in[1] || in[2]) gt_case(TABLE, m, in, gt_tol(dt), desc);
            tensor_free(X);
            tensor_free(L);
            tensor_free(H);
        }
}

/* QuantizeLinear / DequantizeLinear: per tensor, per axis and blocked
** scales (blocks not dividing the axis), zero points present or not, every
** quantized type (8- and 4-bit, odd element counts for the packed ones),
** float32/float16 inputs, saturate on and off for float8. Exact. */
static void test_quant(void) {
    static const kiln_dtype qts[] = {KILN_DTYPE_INT8, KILN_DTYPE_UINT8, KILN_DTYPE_INT16,
                                     KILN_DTYPE_UINT16, KILN_DTYPE_INT4, KILN_DTYPE_UINT4,
                                     KILN_DTYPE_FLOAT8E4M3FN, KILN_DTYPE_FLOAT8E5M2,
                                     KILN_DTYPE_FLOAT8E4M3FNUZ, KILN_DTYPE_FLOAT4E2M1};
    for (size_t q = 0; q < KILN_ARRAY_LEN(qts); q++)
        for (int k = 0; k < 12; k++) {
            kiln_dtype qt = qts[q];
            bool is_f = qt >= KILN_DTYPE_FLOAT8E4M3FN && qt != KILN_DTYPE_UINT4 &&
                        qt != KILN_DTYPE_INT4;
            kiln_dtype ft = k % 4 == 3 ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_FLOAT32;
            int mode = k % 3; /* per tensor, per axis, blocked */
            int64_t dims[3] = {gt_irand(1, 5), gt_irand(1, 9), gt_irand(1, 7)};
            int rank = 3, axis = gt_irand(0, 2);
            int64_t bs = gt_irand(1, 4), sd[3];
            memcpy(sd, dims, sizeof sd);
            int srank = 0;
            if (mode == 1) {
                srank = 1;
                sd[0] = dims[axis];
            } else if (mode == 2) {
                srank = 3;
                sd[axis] = (dims[axis] + bs - 1) / bs;
            }
            kiln_tensor *S = gt_rand(ft, srank, sd, 0.05, 2.0);
            kiln_tensor *Z = NULL;
            bool has_z = k % 2 == 0 && !(is_f && qt != KILN_DTYPE_FLOAT8E4M3FN);
            if (has_z) {
                if (tensor_new(qt, srank, sd, &Z)) gt_die("tensor");
                for (int64_t i = 0; i < tensor_numel(Z); i++)
                    dt_set_f64(qt, Z->data, (size_t)i, is_f ? 0.0 : (double)gt_irand(0, 3));
            }
            for (int dir = 0; dir < 2; dir++) {
                kiln_tensor *X;
                if (dir == 0) { /* quantize: wide values, halves (ties), beyond the range */
                    X = gt_rand(ft, rank, dims, -300, 300);
                    for (int64_t i = 0; i < tensor_numel(X); i += 4)
                        dt_set_f64(ft, X->data, (size_t)i, 0.5 * gt_irand(-9, 9));
                } else {
                    if (tensor_new(qt, rank, dims, &X)) gt_die("tensor");
                    for (size_t i = 0; i < X->nbytes; i++)
                        ((uint8_t *)X->data)[i] = (uint8_t)(rnd() * 256);
                }
                ir_node *n = gt_node(dir ? OP_DequantizeLinear : OP_QuantizeLinear, has_z ? 3 : 2,
                                     1);
                if (mode) ir_edit_set_int(n, "axis", axis);
                if (mode == 2) ir_edit_set_int(n, "block_size", bs);
                if (!has_z && dir == 0) ir_edit_set_int(n, "output_dtype", qt);
                if (is_f && k % 4 == 1) ir_edit_set_int(n, "saturate", 0);
                g_model->opset = 23;
                const kiln_tensor *in[3] = {X, S, Z};
                char desc[160], sx[64];
                snprintf(desc, sizeof desc, "%s %s<->%s %s mode %d axis %d block %lld%s",
                         dir ? "DequantizeLinear" : "QuantizeLinear", gt_dt(ft), gt_dt(qt),
                         gt_shp(X, sx, sizeof sx), mode, axis, (long long)bs,
                         has_z ? " zero point" : "");
                gt_case(TABLE, n, in, 0, desc);
                g_model->opset = 17;
                tensor_free(X);
            }
            tensor_free(S);
            tensor_free(Z);
        }
}

/* BitwiseNot on every integer type; Clip on integer types with bounds
** constant, runtime or absent (min > max too). */
static void test_int_misc(void) {
    static const kiln_dtype its[] = {KILN_DTYPE_INT8, KILN_DTYPE_UINT8, KILN_DTYPE_INT16,
                                     KILN_DTYPE_UINT16, KILN_DTYPE_INT32, KILN_DTYPE_UINT32,
                                     KILN_DTYPE_INT64, KILN_DTYPE_UINT64};
    for (size_t d = 0; d < KILN_ARRAY_LEN(its); d++)
        for (int k = 0; k < 6; k++) {
            kiln_dtype dt = its[d];
            int64_t dims[2] = {gt_irand(1, 30), gt_irand(1, 50)};
            kiln_tensor *X = gt_rand(dt, 2, dims, is_unsigned(dt) ? 0 : -120, 120);
            const kiln_tensor *in1[1] = {X};
            char desc[96];
            snprintf(desc, sizeof desc, "BitwiseNot %s", gt_dt(dt));
            if (k == 0) gt_case(TABLE, gt_node(OP_BitwiseNot, 1, 1), in1, 0, desc);
            double lo = k == 4 ? 50 : (is_unsigned(dt) ? 10 : -30), hi = k == 4 ? 20 : 70;
            kiln_tensor *L = tensor_f64(dt, 0, NULL, &lo), *H = tensor_f64(dt, 0, NULL, &hi);
            ir_node *n = gt_node(OP_Clip, 3, 1);
            const kiln_tensor *in[3] = {X, k == 2 ? NULL : L, k == 3 ? NULL : H};
            if (in[1]) {
                if (k % 2) gt_rt_in(n, 1);
                else gt_const_in(n, 1, L);
            }
            if (in[2]) {
                if (k % 3 == 1) gt_const_in(n, 2, H);
                else gt_rt_in(n, 2);
            }
            snprintf(desc, sizeof desc, "Clip %s case %d", gt_dt(dt), k);
            gt_case(TABLE, n, in, 0, desc);
            tensor_free(X);
            tensor_free(L);
            tensor_free(H);
        }
}

/* DynamicQuantizeLinear: ranges all positive, all negative, mixed, all
** zero, sizes around the stats block's 1024 threads. Exact. */
static void test_dynq(void) {
    static const int64_t sizes[] = {1, 7, 1023, 1024, 1025, 5000};
    for (int k = 0; k < 24; k++) {
        int64_t dims[1] = {sizes[k % 6]};
        double lo = k / 6 == 0 ? 0.5 : k / 6 == 1 ? -9 : -3, hi = k / 6 == 1 ? -0.5 : 7;
        kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT32, 1, dims, lo, hi);
        if (k / 6 == 3)
            for (int64_t i = 0; i < dims[0]; i++) ((float *)X->data)[i] = 0.0f;
        ir_node *n = gt_node(OP_DynamicQuantizeLinear, 1, 3);
        const kiln_tensor *in[1] = {X};
        char desc[96];
        snprintf(desc, sizeof desc, "DynamicQuantizeLinear n=%lld range %g..%g",
                 (long long)dims[0], lo, hi);
        gt_case(TABLE, n, in, 0, desc);
        tensor_free(X);
    }
}

static void test_misc(void) {
    /* IsNaN / IsInf with specials */
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
        for (int k = 0; k < 4; k++) {
            kiln_dtype dt = k_floats[d];
            int64_t dims[2] = {9, 13};
            kiln_tensor *X = gt_rand(dt, 2, dims, -3, 3);
            for (int64_t i = 0; i < 117; i += 5)
                dt_set_f64(dt, X->data, (size_t)i, i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY);
            ir_node *n = gt_node(k < 1 ? OP_IsNaN : OP_IsInf, 1, 1);
            if (k == 2) ir_edit_set_int(n, "detect_negative", 0);
            if (k == 3) ir_edit_set_int(n, "detect_positive", 0);
            const kiln_tensor *in[1] = {X};
            gt_case(TABLE, n, in, 0, k < 1 ? "IsNaN" : "IsInf");
            tensor_free(X);
        }
    { /* Not, Identity */
        int64_t dims[3] = {3, 5, 7};
        kiln_tensor *B = gt_rand(KILN_DTYPE_BOOL, 3, dims, 0, 1);
        kiln_tensor *I = gt_rand(KILN_DTYPE_INT64, 3, dims, -1000, 1000);
        const kiln_tensor *in[1] = {B};
        gt_case(TABLE, gt_node(OP_Not, 1, 1), in, 0, "Not");
        in[0] = I;
        gt_case(TABLE, gt_node(OP_Identity, 1, 1), in, 0, "Identity int64");
        tensor_free(B);
        tensor_free(I);
    }
    /* Cast between every pair, with special values */
    kiln_dtype cts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16,
                        KILN_DTYPE_FLOAT64, KILN_DTYPE_INT64, KILN_DTYPE_INT32,
                        KILN_DTYPE_INT8, KILN_DTYPE_UINT8, KILN_DTYPE_BOOL,
                        KILN_DTYPE_INT16, KILN_DTYPE_UINT16, KILN_DTYPE_UINT32,
                        KILN_DTYPE_UINT64};
    static const double special[] = {NAN, INFINITY, -INFINITY, 0.5, -0.5, 1.5, -2.5, 1e10,
                                     -1e10, 65519.0, 300.7, -129.9, 255.0, 256.0, 0.0, -0.0,
                                     1e19, 65536.5, 4294967296.0};
    for (size_t s = 0; s < KILN_ARRAY_LEN(cts); s++)
        for (size_t t = 0; t < KILN_ARRAY_LEN(cts); t++) {
            kiln_dtype from = cts[s], to = cts[t];
            int64_t dims[1] = {333};
            kiln_tensor *X;
            if (gt_is_float(from)) {
                X = gt_rand(from, 1, dims, -300, 300);
                for (size_t i = 0; i < KILN_ARRAY_LEN(special); i++)
                    dt_set_f64(from, X->data, i, special[i]);
            } else {
                X = gt_rand(from, 1, dims, from == KILN_DTYPE_UINT8 ? 0 : -300,
                            from == KILN_DTYPE_UINT8 ? 255 : 300);
                if (from == KILN_DTYPE_INT64) {
                    ((int64_t *)X->data)[0] = INT64_MAX;
                    ((int64_t *)X->data)[1] = INT64_MIN;
                    ((int64_t *)X->data)[2] = (int64_t)1 << 40;
                }
                if (from == KILN_DTYPE_UINT64) { /* above 2^63: unsigned to float */
                    ((uint64_t *)X->data)[0] = UINT64_MAX;
                    ((uint64_t *)X->data)[1] = (1ull << 63) + 12345;
                }
            }
            ir_node *n = gt_node(OP_Cast, 1, 1);
            ir_edit_set_int(n, "to", to);
            const kiln_tensor *in[1] = {X};
            char desc[96];
            snprintf(desc, sizeof desc, "Cast %s -> %s", gt_dt(from), gt_dt(to));
            gt_case(TABLE, n, in, 0, desc);
            tensor_free(X);
        }
    /* float8 / float4 / int4 / uint4 on either side (cast_small.cu): every
    ** float8 code, random nibbles with an odd count (the spare nibble of the
    ** last byte), wide values with specials, ties and out-of-range values,
    ** saturate on and off */
    kiln_dtype smalls[] = {KILN_DTYPE_FLOAT8E4M3FN, KILN_DTYPE_FLOAT8E4M3FNUZ,
                           KILN_DTYPE_FLOAT8E5M2, KILN_DTYPE_FLOAT8E5M2FNUZ,
                           KILN_DTYPE_FLOAT4E2M1, KILN_DTYPE_INT4, KILN_DTYPE_UINT4};
    kiln_dtype wides[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16,
                          KILN_DTYPE_FLOAT64, KILN_DTYPE_INT32, KILN_DTYPE_INT64,
                          KILN_DTYPE_UINT8, KILN_DTYPE_INT8, KILN_DTYPE_BOOL,
                          KILN_DTYPE_UINT64};
    static const double sp2[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 448.0, 464.0, 480.0,
                                 57344.0, 61440.0, 1e6, -1e6, 0.25, 0.75, 1.25, 2.5, 3.5,
                                 5.0, 7.0, -8.5, 15.5, 0.0009765625, 0.00048828125,
                                 1.52587890625e-05, 1e-9, -3.0, 6.5, 1.0 / 3.0};
    for (size_t a = 0; a < KILN_ARRAY_LEN(smalls); a++)
        for (size_t b = 0; b < KILN_ARRAY_LEN(wides) + KILN_ARRAY_LEN(smalls); b++)
            for (int dir = 0; dir < 2; dir++) {
                kiln_dtype other = b < KILN_ARRAY_LEN(wides) ? wides[b]
                                                             : smalls[b - KILN_ARRAY_LEN(wides)];
                kiln_dtype from = dir ? other : smalls[a], to = dir ? smalls[a] : other;
                if (dir && b >= KILN_ARRAY_LEN(wides)) continue; /* small pairs once */
                int64_t dims[1] = {gt_is_float(from) ? 301 : 257};
                kiln_tensor *X;
                if (tensor_new(from, 1, dims, &X)) gt_die("tensor");
                if (kiln_dtype_size(from) == 0 || from == KILN_DTYPE_FLOAT8E4M3FN ||
                    from == KILN_DTYPE_FLOAT8E4M3FNUZ || from == KILN_DTYPE_FLOAT8E5M2 ||
                    from == KILN_DTYPE_FLOAT8E5M2FNUZ) {
                    for (size_t i = 0; i < X->nbytes; i++) /* every code, then random */
                        ((uint8_t *)X->data)[i] = i < 256 ? (uint8_t)i : (uint8_t)(rnd() * 256);
                } else if (gt_is_float(from)) {
                    for (int64_t i = 0; i < dims[0]; i++)
                        dt_set_f64(from, X->data, (size_t)i,
                                   i < (int64_t)KILN_ARRAY_LEN(sp2) ? sp2[i]
                                   : i % 3 ? gt_urand(-20, 20) : gt_urand(-600, 600));
                } else {
                    for (int64_t i = 0; i < dims[0]; i++)
                        dt_set_i64(from, X->data, (size_t)i, gt_irand(-300, 300));
                }
                int sat = (int)(a + b) % 2;
                ir_node *n = gt_node(OP_Cast, 1, 1);
                ir_edit_set_int(n, "to", to);
                ir_edit_set_int(n, "saturate", sat);
                const kiln_tensor *in[1] = {X};
                char desc[96];
                snprintf(desc, sizeof desc, "Cast %s -> %s saturate %d", gt_dt(from), gt_dt(to),
                         sat);
                gt_case(TABLE, n, in, 0, desc);
                tensor_free(X);
            }
    {
        int64_t dims[2] = {4, 9};
        kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT32, 2, dims, -9, 9);
        kiln_tensor *L = gt_rand(KILN_DTYPE_INT32, 1, dims, 0, 1);
        const kiln_tensor *in[2] = {X, L};
        gt_case(TABLE, gt_node(OP_CastLike, 2, 1), in, 0, "CastLike float -> int32");
        tensor_free(X);
        tensor_free(L);
    }
}

/* ---- FusedElementwise */
typedef struct fe_prog {
    int n_in, n_instr, nk;
    int64_t ins[64 * 4];
    float k[16];
} fe_prog;

static void fe_add(fe_prog *p, int opc, int a, int b, int c) {
    int64_t *q = p->ins + 4 * p->n_instr++;
    q[0] = opc;
    q[1] = a;
    q[2] = b;
    q[3] = c;
}
static int fe_last(const fe_prog *p) { return p->n_in + p->nk + p->n_instr - 1; }

static void fe_run(const fe_prog *p, kiln_tensor *const *X, double tol, const char *desc) {
    ir_node *n = gt_node(OP_FusedElementwise, p->n_in, 1);
    ir_edit_set_ints(n, "program", p->ins, 4 * p->n_instr);
    ir_edit_set_floats(n, "constants", p->k, p->nk);
    gt_case(TABLE, n, (const kiln_tensor *const *)X, tol, desc);
}

static void test_fused(void) {
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++) {
        kiln_dtype dt = k_floats[d];
        double tol = gt_tol(dt);
        /* Gelu spelled out: x * 0.5 * (1 + erf(x / sqrt 2)), on [B, S, H] */
        {
            fe_prog p = {1, 0, 3, {0}, {0.70710678f, 1.0f, 0.5f}};
            fe_add(&p, FE_MUL, 0, 1, -1);
            fe_add(&p, FE_ERF, fe_last(&p), -1, -1);
            fe_add(&p, FE_ADD, fe_last(&p), 2, -1);
            fe_add(&p, FE_MUL, 0, fe_last(&p), -1);
            fe_add(&p, FE_MUL, fe_last(&p), 3, -1);
            int64_t dims[3] = {2, 17, 768};
            kiln_tensor *X[1] = {gt_rand(dt, 3, dims, -4, 4)};
            fe_run(&p, X, tol, "gelu chain");
            tensor_free(X[0]);
        }
        /* bias add then GeluTanh, bias broadcast along the last dim */
        {
            fe_prog p = {2, 0, 0, {0}, {0}};
            fe_add(&p, FE_ADD, 0, 1, -1);
            fe_add(&p, FE_GELU_TANH, fe_last(&p), -1, -1);
            int64_t dims[3] = {3, 5, 100}, bd[1] = {100};
            kiln_tensor *X[2] = {gt_rand(dt, 3, dims, -3, 3), gt_rand(dt, 1, bd, -1, 1)};
            fe_run(&p, X, tol, "bias gelu_tanh");
            tensor_free(X[0]);
            tensor_free(X[1]);
        }
        /* every parameterized op, three inputs with per-channel and scalar
        ** broadcasting */
        {
            fe_prog p = {3, 0, 6, {0}, {2.0f, -0.75f, 0.8f, 0.1f, 0.3f, 0.45f}};
            /* regs: x0 x1 x2 | k3=2 k4=-0.75 k5=0.8 k6=0.1 k7=0.3 k8=0.45 */
            fe_add(&p, FE_SUB, 0, 1, -1);                 /* 9 */
            fe_add(&p, FE_DIV, 9, 3, -1);                 /* 10 */
            fe_add(&p, FE_CLIP, 10, 4, 5);                /* 11 */
            fe_add(&p, FE_LEAKY_RELU, 11, 6, -1);         /* 12 */
            fe_add(&p, FE_MUL, 12, 2, -1);                /* 13 */
            fe_add(&p, FE_HARD_SIGMOID, 13, 7, 8);        /* 14 */
            fe_add(&p, FE_CLIP, 13, -1, 5);               /* 15 */
            fe_add(&p, FE_ELU, 15, 6, -1);                /* 16 */
            fe_add(&p, FE_MAX, 14, 16, -1);               /* 17 */
            fe_add(&p, FE_MIN, 17, 0, -1);                /* 18 */
            fe_add(&p, FE_ABS, 18, -1, -1);               /* 19 */
            fe_add(&p, FE_SQRT, 19, -1, -1);              /* 20 */
            fe_add(&p, FE_HARD_SWISH, 20, -1, -1);        /* 21 */
            fe_add(&p, FE_SIGMOID, 21, -1, -1);           /* 22 */
            fe_add(&p, FE_ADD, 22, 16, -1);               /* 23 */
            int64_t dims[4] = {2, 6, 5, 7}, cd[3] = {6, 1, 1};
            kiln_tensor *X[3] = {gt_rand(dt, 4, dims, -3, 3), gt_rand(dt, 4, dims, -3, 3),
                                 gt_rand(dt, 3, cd, -2, 2)};
            fe_run(&p, X, tol, "parameterized ops");
            int64_t sd[1] = {1};
            tensor_free(X[2]);
            X[2] = gt_rand(dt, 1, sd, -2, 2);
            fe_run(&p, X, tol, "parameterized ops, scalar");
            for (int j = 0; j < 3; j++) tensor_free(X[j]);
        }
        /* random programs over continuous ops (no Floor/Ceil: a last-bit
        ** difference in an earlier step could move a value across an integer) */
        static const int un[] = {FE_NEG, FE_ABS, FE_TANH, FE_SIGMOID, FE_RELU, FE_ERF,
                                 FE_SIN, FE_COS, FE_SOFTSIGN, FE_HARD_SWISH, FE_GELU,
                                 FE_GELU_TANH, FE_SOFTPLUS};
        static const int bi[] = {FE_ADD, FE_SUB, FE_MUL, FE_MAX, FE_MIN};
        for (int k = 0; k < 12; k++) {
            fe_prog p = {gt_irand(1, 3), 0, 2, {0}, {0.5f, -1.25f}};
            int len = gt_irand(1, 12);
            for (int t = 0; t < len; t++) {
                int avail = p.n_in + p.nk + p.n_instr;
                int a = gt_irand(0, avail - 1), b = gt_irand(0, avail - 1);
                if (a >= p.n_in && a < p.n_in + p.nk) a = 0; /* no all-constant ops */
                if (rnd() < 0.5) fe_add(&p, un[gt_irand(0, (int)KILN_ARRAY_LEN(un) - 1)], a, -1, -1);
                else fe_add(&p, bi[gt_irand(0, (int)KILN_ARRAY_LEN(bi) - 1)], a, b, -1);
            }
            /* end on input 0 (full shape) so the result has the full shape,
            ** as every input of an optimizer-made chain feeds its result */
            fe_add(&p, FE_ADD, fe_last(&p), 0, -1);
            int64_t od[KILN_MAX_RANK], sd[3][KILN_MAX_RANK];
            int R = gt_irand(0, 4);
            gt_shape(R, od, 30000);
            if (k == 11 && R > 0) od[0] = 0;
            kiln_tensor *X[3] = {NULL, NULL, NULL};
            for (int j = 0; j < p.n_in; j++) {
                /* input 0 has the full shape so the result does */
                int r = j == 0 ? R : gt_bcast_of(R, od, sd[j]);
                if (j == 0) memcpy(sd[0], od, sizeof od);
                X[j] = gt_rand(dt, r, sd[j], -2, 2);
            }
            char desc[64];
            snprintf(desc, sizeof desc, "random program %d (%d instructions) %s", k, len,
                     gt_dt(dt));
            fe_run(&p, X, tol * 2, desc);
            for (int j = 0; j < 3; j++) tensor_free(X[j]);
        }
    }
}

/* FusedElementwise through the tactic on the input classes of the fast path
** (same shape, blocks repeated along leading dims, row vectors, columns,
** per-channel vectors, scalars) and on shapes that leave it (a block not a
** multiple of the 16-byte group, a broadcast dim inside a block), against
** the reference. Two programs: the BERT embedding sum (x0 + x1) + x2, and
** one with unary ops and constants. */
static void test_fused_shapes(void) {
    static const struct {
        int r[3];
        int64_t d[3][4];
        const char *what;
    } k_cases[] = {
        {{3, 3, 3}, {{2, 128, 768}, {2, 128, 768}, {1, 128, 768}}, "BERT embeddings"},
        {{3, 3, 3}, {{2, 128, 768}, {1, 1, 768}, {1, 128, 768}},
         "BERT embeddings, token type folded to a row"},
        {{3, 2, 1}, {{3, 5, 7}, {5, 7}, {1}}, "inner block of 35"},
        {{2, 1, 1}, {{4, 13}, {13}, {1}}, "row vector of 13"},
        {{2, 1, 2}, {{5, 64}, {64}, {5, 1}}, "row vector of 64, column"},
        {{2, 2, 1}, {{6, 10}, {6, 1}, {10}}, "column, row of 10"},
        {{4, 4, 4}, {{2, 6, 5, 7}, {1, 6, 1, 1}, {2, 6, 5, 7}}, "channel, plane of 35"},
        {{4, 3, 1}, {{2, 3, 4, 4}, {3, 1, 1}, {1}}, "channel, plane of 16"},
        {{4, 4, 0}, {{2, 3, 8, 8}, {2, 3, 1, 1}, {0}}, "per (n, c), plane of 64, scalar"},
        {{1, 1, 1}, {{1}, {1}, {1}}, "one element"},
        {{0, 0, 0}, {{0}, {0}, {0}}, "rank 0"},
        {{1, 1, 0}, {{1003}, {1003}, {0}}, "1003 elements (a partial group)"},
        {{1, 1, 1}, {{9}, {1}, {9}}, "9 elements"},
        {{3, 3, 1}, {{4, 3, 8}, {4, 1, 8}, {8}}, "broadcast inside a block (interpreter)"},
        {{3, 3, 3}, {{2, 17, 16}, {1, 17, 1}, {2, 1, 16}}, "two blocks (interpreter)"},
        {{3, 3, 3}, {{7, 3, 33}, {7, 3, 33}, {1, 3, 33}}, "block of 99"},
    };
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++) {
        kiln_dtype dt = k_floats[d];
        double tol = gt_tol(dt);
        for (size_t c = 0; c < KILN_ARRAY_LEN(k_cases); c++) {
            kiln_tensor *X[3];
            for (int j = 0; j < 3; j++) X[j] = gt_rand(dt, k_cases[c].r[j], k_cases[c].d[j], -2, 2);
            char desc[128];
            fe_prog p = {3, 0, 0, {0}, {0}};
            fe_add(&p, FE_ADD, 0, 1, -1);
            fe_add(&p, FE_ADD, fe_last(&p), 2, -1);
            snprintf(desc, sizeof desc, "sum of 3, %s %s", k_cases[c].what, gt_dt(dt));
            fe_run(&p, X, tol, desc);
            fe_prog q = {3, 0, 2, {0}, {0.5f, -1.25f}};
            /* regs: x0 x1 x2 | k3 = 0.5, k4 = -1.25 */
            fe_add(&q, FE_MUL, 0, 3, -1);          /* 5 */
            fe_add(&q, FE_GELU, 5, -1, -1);        /* 6 */
            fe_add(&q, FE_SUB, 6, 1, -1);          /* 7 */
            fe_add(&q, FE_MAX, 7, 4, -1);          /* 8 */
            fe_add(&q, FE_MUL, 8, 2, -1);          /* 9 */
            fe_add(&q, FE_TANH, 9, -1, -1);        /* 10 */
            fe_add(&q, FE_ADD, 10, 0, -1);         /* 11 */
            snprintf(desc, sizeof desc, "gelu/sub/max/mul/tanh, %s %s", k_cases[c].what,
                     gt_dt(dt));
            fe_run(&q, X, tol * 2, desc);
            for (int j = 0; j < 3; j++) tensor_free(X[j]);
        }
    }
}

/* The fast path against the interpreter through the kernel seam, on
** geometries as the tactic coalesces them (rank, dims, per-input strides),
** with pointers offset by `shift` elements from the allocation (a shift
** that breaks 16-byte alignment must fall back to single elements), and
** checks which path ran. Add/Mul-only programs must agree bit for bit (the
** same float operations in the same order); programs with other ops within
** 2 units in the last place of the type. */
typedef struct fp_case {
    int rank;
    int64_t dims[3];
    int64_t st[3][3];
    int want_v[3]; /* path at shift 0: float32; 16-bit types with at most
                      four registers; 16-bit types with more */
    const char *what;
} fp_case;

static float fp_host(kiln_dtype dt, const void *p, int64_t i) {
    if (dt == KILN_DTYPE_FLOAT32) return ((const float *)p)[i];
    uint16_t b = ((const uint16_t *)p)[i];
    return dt == KILN_DTYPE_FLOAT16 ? f16_to_f32(b) : bf16_to_f32(b);
}

static void fp_one(kiln_dtype dt, const fp_case *fc, const kc_fe_prog *prog, bool exact,
                   int shift, const char *pname) {
    int regs = prog->n_in;
    for (int t = 0; t < prog->n_instr; t++) {
        const kc_fe_instr *q = &prog->ins[t];
        regs = q->dst + 1 > regs ? q->dst + 1 : regs;
        regs = q->a + 1 > regs ? q->a + 1 : regs;
        regs = q->binary && q->b + 1 > regs ? q->b + 1 : regs;
    }
    size_t es = dt == KILN_DTYPE_FLOAT32 ? 4 : 2;
    int64_t n = 1, len[3] = {1, 1, 1};
    for (int d = 0; d < fc->rank; d++) n *= fc->dims[d];
    for (int j = 0; j < 3; j++)
        for (int d = 0; d < fc->rank; d++) len[j] += (fc->dims[d] - 1) * fc->st[j][d];
    char lab[200];
    snprintf(lab, sizeof lab, "FusedElementwise seam %s, %s, shift %d %s", pname, fc->what, shift,
             gt_dt(dt));
    kc_fe_prog p = *prog;
    p.s.rank = fc->rank;
    p.s.nin = 3;
    for (int d = 0; d < fc->rank; d++) {
        p.s.dims[d] = fc->dims[d];
        for (int j = 0; j < 3; j++) p.s.st[j][d] = fc->st[j][d];
    }
    void *din[3] = {NULL, NULL, NULL}, *dy[2] = {NULL, NULL};
    unsigned char *hx = malloc((size_t)(len[0] + len[1] + len[2] + 3 * 8) * es);
    unsigned char *hy[2] = {malloc((size_t)(n + 8) * es), malloc((size_t)(n + 8) * es)};
    if (!hx || !hy[0] || !hy[1]) gt_die("oom");
    size_t at = 0;
    bool ok = true;
    for (int j = 0; j < 3; j++) {
        size_t bytes = (size_t)(len[j] + shift) * es;
        for (int64_t i = 0; i < len[j] + shift; i++) {
            float v = (float)gt_urand(-2, 2);
            if (es == 4) memcpy(hx + at + (size_t)i * 4, &v, 4);
            else {
                uint16_t b = dt == KILN_DTYPE_FLOAT16 ? f32_to_f16(v) : f32_to_bf16(v);
                memcpy(hx + at + (size_t)i * 2, &b, 2);
            }
        }
        if (cudaMalloc(&din[j], bytes) != cudaSuccess ||
            cudaMemcpy(din[j], hx + at, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
            gt_die("upload");
        p.in[j] = (const unsigned char *)din[j] + (size_t)shift * es;
        at += bytes;
    }
    for (int k = 0; k < 2; k++) {
        if (cudaMalloc(&dy[k], (size_t)(n + shift) * es) != cudaSuccess ||
            cudaMemset(dy[k], 0xff, (size_t)(n + shift) * es) != cudaSuccess)
            gt_die("output");
    }
    if (cudaDeviceSynchronize() != cudaSuccess) gt_die("sync");
    void *y0 = (unsigned char *)dy[0] + (size_t)shift * es;
    void *y1 = (unsigned char *)dy[1] + (size_t)shift * es;
    int kdt = (int)dt;
    int path = kc_fused_eltwise_path(kdt, &p, y0, n);
    int wv = fc->want_v[es == 4 ? 0 : regs <= 4 ? 1 : 2];
    int want = shift ? (wv ? 1 : 0) : wv;
    if (path != want) {
        fprintf(stderr, "FAIL %s: path %d, expected %d\n", lab, path, want);
        ok = false;
    }
    cudaStream_t st = (cudaStream_t)g_stream;
    if (kc_fused_eltwise(kdt, &p, y0, n, st) != cudaSuccess ||
        kc_fused_eltwise_interp(kdt, &p, y1, n, st) != cudaSuccess ||
        cudaStreamSynchronize(st) != cudaSuccess) {
        fprintf(stderr, "FAIL %s: launch failed\n", lab);
        gt_die("device error");
    }
    for (int k = 0; k < 2; k++)
        if (cudaMemcpy(hy[k], (k ? y1 : y0), (size_t)n * es, cudaMemcpyDeviceToHost) != cudaSuccess)
            gt_die("download");
    double ulp = dt == KILN_DTYPE_FLOAT32 ? 1.2e-7 : dt == KILN_DTYPE_FLOAT16 ? 9.8e-4 : 7.9e-3;
    for (int64_t i = 0; i < n && ok; i++) {
        float a = fp_host(dt, hy[0], i), b = fp_host(dt, hy[1], i);
        bool same = exact ? memcmp(hy[0] + (size_t)i * es, hy[1] + (size_t)i * es, es) == 0
                          : a == b || (a != a && b != b) || fabs((double)a - b) <= 2 * ulp * fabs((double)b);
        if (!same) {
            fprintf(stderr, "FAIL %s: element %lld: fast %g, interpreter %g\n", lab,
                    (long long)i, a, b);
            ok = false;
        }
    }
    if (ok) g_pass++;
    else g_fail++;
    for (int j = 0; j < 3; j++) cudaFree(din[j]);
    cudaFree(dy[0]);
    cudaFree(dy[1]);
    free(hx);
    free(hy[0]);
    free(hy[1]);
}

/* kc_binary's fast path (broadcasting float ops run as a one-instruction
** FusedElementwise program) against kc_binary_generic, bit for bit (NaN
** against NaN), on the seam geometries above (inputs 0 and 1), every float
** binary op, pointers shifted or not. */
static void bp_one(kiln_dtype dt, const fp_case *fc, int op, int shift) {
    size_t es = dt == KILN_DTYPE_FLOAT32 ? 4 : 2;
    int64_t n = 1, len[2] = {1, 1};
    for (int d = 0; d < fc->rank; d++) n *= fc->dims[d];
    for (int j = 0; j < 2; j++)
        for (int d = 0; d < fc->rank; d++) len[j] += (fc->dims[d] - 1) * fc->st[j][d];
    char lab[200];
    snprintf(lab, sizeof lab, "kc_binary seam op %d, %s, shift %d %s", op, fc->what, shift,
             gt_dt(dt));
    kc_bshape s;
    memset(&s, 0, sizeof s);
    s.rank = fc->rank;
    s.nin = 2;
    for (int d = 0; d < fc->rank; d++) {
        s.dims[d] = fc->dims[d];
        for (int j = 0; j < 2; j++) s.st[j][d] = fc->st[j][d];
    }
    void *din[2] = {NULL, NULL}, *dy[2] = {NULL, NULL};
    const void *x[2];
    unsigned char *hy[2] = {malloc((size_t)n * es), malloc((size_t)n * es)};
    if (!hy[0] || !hy[1]) gt_die("oom");
    for (int j = 0; j < 2; j++) {
        int64_t m = len[j] + shift;
        unsigned char *h = malloc((size_t)m * es);
        if (!h) gt_die("oom");
        for (int64_t i = 0; i < m; i++) /* away from 0: Div, Mod and Pow stay finite mostly */
            dt_set_f64(dt, h, (size_t)i, (rnd() < 0.5 ? -1 : 1) * gt_urand(0.25, 3));
        if (cudaMalloc(&din[j], (size_t)m * es) ||
            cudaMemcpy(din[j], h, (size_t)m * es, cudaMemcpyHostToDevice))
            gt_die("upload");
        free(h);
        x[j] = (const unsigned char *)din[j] + (size_t)shift * es;
    }
    for (int k = 0; k < 2; k++)
        if (cudaMalloc(&dy[k], (size_t)(n + shift) * es) ||
            cudaMemset(dy[k], 0xff, (size_t)(n + shift) * es))
            gt_die("output");
    void *y[2] = {(unsigned char *)dy[0] + (size_t)shift * es,
                  (unsigned char *)dy[1] + (size_t)shift * es};
    cudaStream_t st = (cudaStream_t)g_stream;
    int k = (int)dt;
    if (cudaDeviceSynchronize() || kc_binary(op, k, k, k, &s, x[0], x[1], y[0], n, st) ||
        kc_binary_generic(op, k, k, k, &s, x[0], x[1], y[1], n, st) ||
        cudaStreamSynchronize(st) || cudaMemcpy(hy[0], y[0], (size_t)n * es, cudaMemcpyDeviceToHost) ||
        cudaMemcpy(hy[1], y[1], (size_t)n * es, cudaMemcpyDeviceToHost))
        gt_die("kc_binary run");
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        double u = dt_get_f64(dt, hy[0], (size_t)i), w = dt_get_f64(dt, hy[1], (size_t)i);
        if ((u != u && w != w) || !memcmp(hy[0] + (size_t)i * es, hy[1] + (size_t)i * es, es))
            continue;
        fprintf(stderr, "FAIL %s: element %lld: %.9g vs %.9g\n", lab, (long long)i, u, w);
        ok = false;
    }
    if (ok) g_pass++;
    else g_fail++;
    for (int j = 0; j < 2; j++) {
        cudaFree(din[j]);
        cudaFree(dy[j]);
        free(hy[j]);
    }
}

static void test_fused_paths(void) {
    if (g_dry) return; /* no reference involved: both sides are device kernels */
    static const fp_case k_cases[] = {
        {2, {4, 384}, {{384, 1}, {384, 1}, {0, 1}}, {4, 8, 4}, "[4,384]+[4,384]+[384]"},
        {3, {4, 3, 128}, {{384, 128, 1}, {0, 0, 1}, {0, 128, 1}}, {4, 8, 4},
         "[4,3,128]+[1,1,128]+[1,3,128]"},
        {2, {6, 13}, {{13, 1}, {0, 1}, {0, 0}}, {1, 1, 1}, "[6,13]+[13]+scalar"},
        {2, {6, 16}, {{16, 1}, {1, 0}, {0, 1}}, {4, 8, 4}, "[6,16]+[6,1]+[16]"},
        {3, {2, 6, 40}, {{240, 40, 1}, {0, 1, 0}, {0, 0, 0}}, {4, 8, 4}, "channel, plane 40"},
        {3, {2, 6, 36}, {{216, 36, 1}, {0, 1, 0}, {0, 0, 0}}, {4, 4, 4}, "channel, plane 36"},
        {3, {2, 6, 34}, {{204, 34, 1}, {0, 1, 0}, {0, 0, 0}}, {1, 1, 1}, "channel, plane 34"},
        {3, {2, 6, 35}, {{210, 35, 1}, {0, 1, 0}, {0, 0, 0}}, {1, 1, 1}, "channel, plane 35"},
        {1, {1003}, {{1}, {0}, {1}}, {4, 8, 4}, "1003 elements"},
        {1, {1002}, {{1}, {0}, {1}}, {4, 8, 4}, "1002 elements"},
        {0, {0}, {{0}, {0}, {0}}, {4, 8, 4}, "one element"},
        {3, {4, 3, 8}, {{24, 8, 1}, {8, 0, 1}, {0, 0, 1}}, {0, 0, 0},
         "[4,3,8]+[4,1,8] (interpreter)"},
        {2, {300, 1000}, {{1000, 1}, {0, 1}, {1, 0}}, {4, 8, 4}, "[300,1000]+[1000]+[300,1]"},
    };
    /* (x0 + x1) + x2, the embedding sum */
    kc_fe_prog sum;
    memset(&sum, 0, sizeof sum);
    sum.n_in = 3;
    sum.n_instr = 2;
    sum.ins[0] = (kc_fe_instr){1, KB_ADD, 3, 0, 1, 0, 0, 0};
    sum.ins[1] = (kc_fe_instr){1, KB_ADD, 3, 3, 2, 0, 0, 0};
    sum.out_reg = 3;
    /* x0 * 0.5 + x1 * x2, then *(-1.25): Mul/Add only, constants */
    kc_fe_prog mad = sum;
    mad.n_instr = 4;
    mad.k[0] = 0.5f;
    mad.k[1] = -1.25f;
    mad.ins[0] = (kc_fe_instr){1, KB_MUL, 3, 0, -1, 0, 0, 0};
    mad.ins[1] = (kc_fe_instr){1, KB_MUL, 4, 1, 2, 0, 0, 0};
    mad.ins[2] = (kc_fe_instr){1, KB_ADD, 3, 3, 4, 0, 0, 0};
    mad.ins[3] = (kc_fe_instr){1, KB_MUL, 3, 3, -2, 0, 0, 0};
    /* gelu(x0) - x1, clip to [-1.25, 0.5], sigmoid, / x2, max with x0,
    ** in registers 5..7 (eight registers) */
    kc_fe_prog un = sum;
    un.n_instr = 5;
    un.k[0] = 0.5f;
    un.k[1] = -1.25f;
    un.ins[0] = (kc_fe_instr){0, KU_GELU, 7, 0, -1, 0, 0, 0};
    un.ins[1] = (kc_fe_instr){1, KB_SUB, 5, 7, 1, 0, 0, 0};
    un.ins[2] = (kc_fe_instr){0, KU_CLIP, 6, 5, -1, 0, -1.25f, 0.5f};
    un.ins[3] = (kc_fe_instr){1, KB_DIV, 7, 6, 2, 0, 0, 0};
    un.ins[4] = (kc_fe_instr){1, KB_MAX, 7, 7, 0, 0, 0, 0};
    un.out_reg = 7;
    /* the sum with its result in register 9: more registers than the fast
    ** path holds, so always the interpreter */
    kc_fe_prog wide = sum;
    wide.ins[0].dst = 9;
    wide.ins[1] = (kc_fe_instr){1, KB_ADD, 9, 9, 2, 0, 0, 0};
    wide.out_reg = 9;
    for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
        for (size_t c = 0; c < KILN_ARRAY_LEN(k_cases); c++)
            for (int shift = 0; shift < 2; shift++) {
                fp_one(k_floats[d], &k_cases[c], &sum, true, shift, "sum");
                fp_one(k_floats[d], &k_cases[c], &mad, true, shift, "mul/add");
                fp_one(k_floats[d], &k_cases[c], &un, false, shift, "unary");
                fp_case w = k_cases[c];
                w.want_v[0] = w.want_v[1] = w.want_v[2] = 0;
                fp_one(k_floats[d], &w, &wide, true, shift, "ten registers");
                static const int ops[] = {KB_ADD, KB_SUB, KB_MUL, KB_DIV, KB_POW,
                                          KB_MAX, KB_MIN, KB_MOD, KB_FMOD, KB_PRELU};
                for (size_t o = 0; o < KILN_ARRAY_LEN(ops); o++)
                    bp_one(k_floats[d], &k_cases[c], ops[o], shift);
            }
}

/* Cast between float32 / float16 / bfloat16: kc_cast's four-per-thread
** kernel against the one-element kernel (kc_cast_generic, which the Cast
** tests above check against the reference) bit for bit, NaN payloads aside,
** on sizes around the group of four, with special values (infinities, NaN,
** values that overflow float16, subnormals, halfway cases) and pointers
** shifted by one element (which must fall back and still be right). */
static void test_cast_paths(void) {
    if (g_dry) return;
    static const int k_t[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};
    static const int64_t k_n[] = {1, 3, 4, 5, 8, 1001, 4099, 100000};
    static const float k_special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f,
                                      65520.0f, 70000.0f, -1e30f, 1e-8f, 6e-8f, 3e-39f,
                                      1.00048828125f, 1.001953125f, 0.33333334f};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            if (a == b) continue;
            kiln_dtype ts = (kiln_dtype)k_t[a], td = (kiln_dtype)k_t[b];
            size_t es = kiln_dtype_size(ts), ed = kiln_dtype_size(td);
            for (size_t c = 0; c < KILN_ARRAY_LEN(k_n); c++)
                for (int shift = 0; shift < 2; shift++) {
                    int64_t n = k_n[c];
                    char lab[160];
                    snprintf(lab, sizeof lab, "Cast seam %s -> %s, %lld elements, shift %d",
                             gt_dt(ts), gt_dt(td), (long long)n, shift);
                    unsigned char *hx = malloc((size_t)(n + 1) * es);
                    unsigned char *hy[2] = {malloc((size_t)n * ed), malloc((size_t)n * ed)};
                    void *dx = NULL, *dy[2] = {NULL, NULL};
                    if (!hx || !hy[0] || !hy[1]) gt_die("oom");
                    for (int64_t i = 0; i < n + 1; i++) {
                        double v = i % 3 == 0 ? k_special[(size_t)i / 3 % KILN_ARRAY_LEN(k_special)]
                                              : gt_urand(-3, 3);
                        dt_set_f64(ts, hx, (size_t)i, v);
                    }
                    if (cudaMalloc(&dx, (size_t)(n + 1) * es) ||
                        cudaMemcpy(dx, hx, (size_t)(n + 1) * es, cudaMemcpyHostToDevice) ||
                        cudaMalloc(&dy[0], (size_t)(n + 1) * ed) ||
                        cudaMalloc(&dy[1], (size_t)(n + 1) * ed))
                        gt_die("upload");
                    const void *x = (const unsigned char *)dx + (size_t)shift * es;
                    void *y0 = (unsigned char *)dy[0] + (size_t)shift * ed;
                    void *y1 = (unsigned char *)dy[1] + (size_t)shift * ed;
                    cudaStream_t st = (cudaStream_t)g_stream;
                    if (cudaDeviceSynchronize() ||
                        kc_cast((int)ts, (int)td, x, y0, n, st) != cudaSuccess ||
                        kc_cast_generic((int)ts, (int)td, x, y1, n, st) != cudaSuccess ||
                        cudaStreamSynchronize(st) != cudaSuccess ||
                        cudaMemcpy(hy[0], y0, (size_t)n * ed, cudaMemcpyDeviceToHost) ||
                        cudaMemcpy(hy[1], y1, (size_t)n * ed, cudaMemcpyDeviceToHost))
                        gt_die("cast run");
                    bool ok = true;
                    for (int64_t i = 0; i < n && ok; i++) {
                        double u = dt_get_f64(td, hy[0], (size_t)i), w = dt_get_f64(td, hy[1], (size_t)i);
                        if ((u != u && w != w) ||
                            !memcmp(hy[0] + (size_t)i * ed, hy[1] + (size_t)i * ed, ed))
                            continue;
                        fprintf(stderr, "FAIL %s: element %lld: %.9g vs %.9g\n", lab, (long long)i,
                                u, w);
                        ok = false;
                    }
                    if (ok) g_pass++;
                    else g_fail++;
                    cudaFree(dx);
                    cudaFree(dy[0]);
                    cudaFree(dy[1]);
                    free(hx);
                    free(hy[0]);
                    free(hy[1]);
                }
        }
}

/* Model-sized timings (KC_GPU_BENCH=1): BERT-base activations at batch 32,
** sequence 128. */
static void bench(void) {
    if (!getenv("KC_GPU_BENCH")) return;
    for (size_t d = 0; d < 2; d++) {
        kiln_dtype dt = k_floats[d];
        int64_t h[3] = {32, 128, 768}, f[3] = {32, 128, 3072}, b[1] = {768}, one[1] = {1};
        kiln_tensor *X = gt_rand(dt, 3, h, -2, 2), *Y = gt_rand(dt, 3, h, -2, 2);
        kiln_tensor *B = gt_rand(dt, 1, b, -2, 2), *S = gt_rand(dt, 1, one, -2, 2);
        kiln_tensor *F = gt_rand(dt, 3, f, -2, 2);
        char l[96];
        const kiln_tensor *xy[2] = {X, Y}, *xb[2] = {X, B}, *xs[2] = {X, S}, *ff[1] = {F};
        snprintf(l, sizeof l, "Add residual [32,128,768] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Add, 2, 1), xy, l);
        snprintf(l, sizeof l, "Add bias [32,128,768]+[768] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Add, 2, 1), xb, l);
        snprintf(l, sizeof l, "Mul scalar [32,128,768] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Mul, 2, 1), xs, l);
        g_model->opset = 20;
        snprintf(l, sizeof l, "Gelu [32,128,3072] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Gelu, 1, 1), ff, l);
        g_model->opset = 17;
        fe_prog p = {1, 0, 3, {0}, {0.70710678f, 1.0f, 0.5f}};
        fe_add(&p, FE_MUL, 0, 1, -1);
        fe_add(&p, FE_ERF, fe_last(&p), -1, -1);
        fe_add(&p, FE_ADD, fe_last(&p), 2, -1);
        fe_add(&p, FE_MUL, 0, fe_last(&p), -1);
        fe_add(&p, FE_MUL, fe_last(&p), 3, -1);
        ir_node *n = gt_node(OP_FusedElementwise, 1, 1);
        ir_edit_set_ints(n, "program", p.ins, 4 * p.n_instr);
        ir_edit_set_floats(n, "constants", p.k, p.nk);
        snprintf(l, sizeof l, "FusedElementwise gelu(5) [32,128,3072] %s", gt_dt(dt));
        gt_bench(TABLE, n, ff, l);
        ir_node *cn = gt_node(OP_Cast, 1, 1);
        ir_edit_set_int(cn, "to", dt == KILN_DTYPE_FLOAT32 ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_FLOAT32);
        snprintf(l, sizeof l, "Cast [32,128,3072] from %s", gt_dt(dt));
        gt_bench(TABLE, cn, ff, l);
        tensor_free(X);
        tensor_free(Y);
        tensor_free(B);
        tensor_free(S);
        tensor_free(F);
    }
}

int main(void) {
    /* the vector fast paths are opt-in (kernels/eltwise.cu) until this
    ** program has passed on a GPU: test them */
    setenv("KILN_CUDA_ELT_FAST", "1", 1);
    if (!gt_init()) return 0;
    bench();
    test_binary();
    test_where();
    test_unary();
    test_misc();
    test_quant();
    test_int_misc();
    test_dynq();
    test_fused();
    test_fused_shapes();
    test_fused_paths();
    test_cast_paths();
    return gt_fini();
}
