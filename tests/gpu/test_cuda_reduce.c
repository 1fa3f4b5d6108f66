/* test_cuda_reduce.c: the CUDA reduce-family tactics (cuda_reduce.c) against
** the reference kernels: every Reduce* op over random axis subsets (negative
** axes, empty axes with and without noop_with_empty_axes, keepdims, axes as
** attribute and as constant input, short and long reductions so both the
** thread and the block kernels run), ArgMax/ArgMin with ties and NaN, and
** Softmax/LogSoftmax over rows short and long, inner axes, and the opset < 13
** 2-D coercion; float32 / float16 / bfloat16. */
#include "gpu_test.h"

#define TABLE cuda_tactics_reduce

static const kiln_dtype k_floats[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                      KILN_DTYPE_BFLOAT16};

static const int k_reds[] = {OP_ReduceSum, OP_ReduceMean, OP_ReduceMax, OP_ReduceMin,
                             OP_ReduceProd, OP_ReduceL1, OP_ReduceL2, OP_ReduceLogSum,
                             OP_ReduceLogSumExp, OP_ReduceSumSquare};

static void shape_red(int rank, int64_t *dims, int k) {
    static const int64_t big[] = {300, 1000, 2048, 513};
    gt_shape(rank, dims, 60000);
    if (k % 3 == 2 && rank > 0) { /* a long axis: the block kernel */
        int a = gt_irand(0, rank - 1);
        for (int i = 0; i < rank; i++)
            if (i != a) dims[i] = dims[i] > 8 ? 8 : dims[i];
        dims[a] = big[gt_irand(0, 3)];
    }
}

static void test_reduce(void) {
    for (size_t o = 0; o < KILN_ARRAY_LEN(k_reds); o++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (int k = 0; k < 12; k++) {
                int op = k_reds[o];
                kiln_dtype dt = k_floats[d];
                int rank = gt_irand(1, 4);
                int64_t dims[KILN_MAX_RANK];
                shape_red(rank, dims, k);
                if (k == 11) dims[gt_irand(0, rank - 1)] = 0; /* empty input */
                double lo = -2, hi = 2;
                if (op == OP_ReduceLogSum) lo = 0.1;
                if (op == OP_ReduceProd) lo = 0.9, hi = 1.1;
                kiln_tensor *X = gt_rand(dt, rank, dims, lo, hi);
                int64_t axes[KILN_MAX_RANK];
                int na = 0;
                for (int i = 0; i < rank; i++)
                    if (rnd() < 0.5) axes[na++] = rnd() < 0.5 ? i - rank : i;
                if (k == 0) na = 0;
                bool noop = k == 1;
                if (noop) na = 0;
                /* axes as an input from opset 18 (13 for ReduceSum), as an
                ** attribute before */
                bool as_input = k % 2 == 0;
                g_model->opset = as_input ? 18 : 13;
                if (!as_input && op == OP_ReduceSum) g_model->opset = 11;
                ir_node *n = gt_node(op, as_input ? 2 : 1, 1);
                kiln_tensor *A = NULL;
                if (as_input) {
                    int64_t ad[1] = {na};
                    A = tensor_with(KILN_DTYPE_INT64, 1, ad, axes);
                    /* every third case: axes as a runtime tensor (the
                    ** _rtaxes tactics read it from the device) */
                    if (k % 3 == 0 && (na || k % 4 == 0)) gt_rt_in(n, 1);
                    else if (na || k % 4 == 0) gt_const_in(n, 1, A);
                    else { /* absent axes input */
                        tensor_free(A);
                        A = NULL;
                    }
                } else if (na) {
                    ir_edit_set_ints(n, "axes", axes, na);
                }
                if (noop && g_model->opset >= 18) ir_edit_set_int(n, "noop_with_empty_axes", 1);
                if (k % 3 == 1) ir_edit_set_int(n, "keepdims", 0);
                const kiln_tensor *in[2] = {X, A};
                char desc[160], sx[64];
                snprintf(desc, sizeof desc, "%s %s %s, %d axes, case %d", op_name(op),
                         gt_dt(dt), gt_shp(X, sx, sizeof sx), na, k);
                gt_case(TABLE, n, in, gt_tol(dt), desc);
                tensor_free(X);
                tensor_free(A);
            }
    g_model->opset = 17;
}

/* float64 reductions (kept in float64): every op, axes constant or runtime. */
static void test_reduce_f64(void) {
    g_model->opset = 18;
    for (size_t o = 0; o < KILN_ARRAY_LEN(k_reds); o++)
        for (int k = 0; k < 4; k++) {
            int op = k_reds[o], rank = gt_irand(1, 4);
            int64_t dims[KILN_MAX_RANK];
            shape_red(rank, dims, k);
            double lo = op == OP_ReduceLogSum ? 0.1 : op == OP_ReduceProd ? 0.9 : -2;
            double hi = op == OP_ReduceProd ? 1.1 : 2;
            kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT64, rank, dims, lo, hi);
            int64_t axes[KILN_MAX_RANK];
            int na = 0;
            for (int i = 0; i < rank; i++)
                if (rnd() < 0.5) axes[na++] = i;
            int64_t ad[1] = {na};
            kiln_tensor *A = tensor_with(KILN_DTYPE_INT64, 1, ad, axes);
            ir_node *n = gt_node(op, 2, 1);
            if (k % 2) gt_rt_in(n, 1);
            else gt_const_in(n, 1, A);
            const kiln_tensor *in[2] = {X, A};
            char desc[160], sx[64];
            snprintf(desc, sizeof desc, "%s float64 %s, %d axes%s", op_name(op),
                     gt_shp(X, sx, sizeof sx), na, k % 2 ? " (runtime)" : "");
            gt_case(TABLE, n, in, 1e-12, desc);
            tensor_free(X);
            tensor_free(A);
        }
    g_model->opset = 17;
}

/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: every reduction,
** with and without weights and ignore_index (hit by some targets), int32
** and int64 targets, rank 2 to 4 inputs, N*D from 1 to a few thousand (the
** one-block reduction loops), SCE with and without its log_prob output. */
static void test_loss(void) {
    static const char *reds[] = {"none", "sum", "mean"};
    for (int k = 0; k < 72; k++) {
        int op = k % 2 ? OP_SoftmaxCrossEntropyLoss : OP_NegativeLogLikelihoodLoss;
        kiln_dtype dt = k_floats[(k / 2) % 3];
        const char *red = reds[(k / 6) % 3];
        bool weighted = (k / 18) % 2, ignore = (k / 36) % 2;
        int rank = 2 + k % 3;
        int64_t dims[4] = {gt_irand(1, 9), gt_irand(1, 13), gt_irand(1, 7), gt_irand(1, 5)};
        if (k % 5 == 4) dims[0] = 300; /* N*D above the block size */
        int64_t N = dims[0], C = dims[1], D = 1, td[3];
        td[0] = N;
        for (int a = 2; a < rank; a++) {
            D *= dims[a];
            td[a - 1] = dims[a];
        }
        kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
        if (op == OP_NegativeLogLikelihoodLoss) /* log-probability-like inputs */
            for (int64_t i = 0; i < tensor_numel(X); i++)
                dt_set_f64(dt, X->data, (size_t)i, -fabs(dt_get_f64(dt, X->data, (size_t)i)));
        int64_t ii = gt_irand(0, (int)C - 1);
        kiln_dtype tt = k % 4 < 2 ? KILN_DTYPE_INT64 : KILN_DTYPE_INT32;
        kiln_tensor *T;
        if (tensor_new(tt, rank - 1, td, &T)) gt_die("tensor");
        for (int64_t i = 0; i < N * D; i++)
            dt_set_i64(tt, T->data, (size_t)i, gt_irand(0, (int)C - 1));
        /* mean over only ignored samples is 0/0 in both: keep one counted */
        if (ignore && C > 1 && dt_get_i64(tt, T->data, 0) == ii)
            dt_set_i64(tt, T->data, 0, (ii + 1) % C);
        kiln_tensor *W = weighted ? gt_rand(dt, 1, &C, 0.2, 2) : NULL;
        bool lp = op == OP_SoftmaxCrossEntropyLoss && k % 4 == 1;
        ir_node *n = gt_node(op, weighted ? 3 : 2, lp ? 2 : 1);
        ir_edit_set_str(n, "reduction", red);
        if (ignore && !(C == 1 && !strcmp(red, "mean"))) ir_edit_set_int(n, "ignore_index", ii);
        const kiln_tensor *in[3] = {X, T, W};
        char desc[160], sx[64];
        snprintf(desc, sizeof desc, "%s %s x%s %s target %s%s%s", op_name(op), gt_dt(dt),
                 gt_shp(X, sx, sizeof sx), red, gt_dt(tt), weighted ? " weighted" : "",
                 ignore ? " ignore_index" : "");
        gt_case(TABLE, n, in, gt_tol(dt) * 4, desc);
        tensor_free(X);
        tensor_free(T);
        tensor_free(W);
    }
}

/* CumSum / CumProd: every axis (negative too), exclusive and reverse,
** float types (float64 too) and integer types (wrapping), axis constant or
** runtime (the _rtaxis tactics), lines both innermost and strided. */
static void test_cum(void) {
    static const kiln_dtype dts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16,
                                     KILN_DTYPE_FLOAT64, KILN_DTYPE_INT32, KILN_DTYPE_INT64,
                                     KILN_DTYPE_UINT32, KILN_DTYPE_UINT64};
    for (int k = 0; k < 64; k++) {
        int op = k % 2 ? OP_CumProd : OP_CumSum;
        kiln_dtype dt = dts[(k / 2) % 8];
        int rank = gt_irand(1, 4);
        int64_t dims[KILN_MAX_RANK];
        gt_shape(rank, dims, 5000);
        if (k % 7 == 3) dims[rank - 1] = 700; /* a long innermost axis */
        double lo = op == OP_CumProd ? 0.8 : -3, hi = op == OP_CumProd ? 1.2 : 3;
        if (!gt_is_float(dt)) lo = 0, hi = 5;
        kiln_tensor *X = gt_rand(dt, rank, dims, lo, hi);
        int64_t a = gt_irand(-rank, rank - 1);
        double av = (double)a;
        kiln_tensor *A = tensor_f64(k % 4 < 2 ? KILN_DTYPE_INT64 : KILN_DTYPE_INT32, 0, NULL, &av);
        ir_node *n = gt_node(op, 2, 1);
        if (k % 3 == 0) gt_rt_in(n, 1);
        else gt_const_in(n, 1, A);
        if (k % 5 == 1) ir_edit_set_int(n, "exclusive", 1);
        if (k % 6 >= 3) ir_edit_set_int(n, "reverse", 1);
        const kiln_tensor *in[2] = {X, A};
        char desc[160], sx[64];
        snprintf(desc, sizeof desc, "%s %s %s axis %lld%s", op_name(op), gt_dt(dt),
                 gt_shp(X, sx, sizeof sx), (long long)a, k % 3 == 0 ? " runtime axis" : "");
        /* both walk the axis in the same order with the same accumulator
        ** types: float results agree closely, integers exactly */
        gt_case(TABLE, n, in, gt_is_float(dt) ? gt_tol(dt) * 4 : 0, desc);
        tensor_free(X);
        tensor_free(A);
    }
}

/* Hardmax (ties: the first maximum; opset < 13 coercion), LpNormalization
** (p 1 and 2, a zero line, float64), the three windows (periodic and
** symmetric, one point) and EyeLike (k off the matrix too). */
static void test_lines(void) {
    for (int k = 0; k < 36; k++) {
        kiln_dtype dt = k_floats[k % 3];
        int rank = gt_irand(1, 4);
        int64_t dims[KILN_MAX_RANK];
        gt_shape(rank, dims, 6000);
        kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
        for (int64_t i = 0; i < tensor_numel(X); i += 5) /* ties */
            dt_set_f64(dt, X->data, (size_t)i, 3.0);
        ir_node *n = gt_node(OP_Hardmax, 1, 1);
        int64_t axis = gt_irand(-rank, rank - 1);
        if (k % 4) ir_edit_set_int(n, "axis", k % 8 < 4 || axis >= 0 ? axis : -1);
        g_model->opset = k % 5 == 2 ? 11 : 13;
        if (g_model->opset < 13 && k % 4) ir_edit_set_int(n, "axis", gt_irand(0, rank));
        const kiln_tensor *in[1] = {X};
        char desc[160], sx[64];
        snprintf(desc, sizeof desc, "Hardmax %s %s", gt_dt(dt), gt_shp(X, sx, sizeof sx));
        gt_case(TABLE, n, in, 0, desc);
        g_model->opset = 17;
        tensor_free(X);
    }
    for (int k = 0; k < 24; k++) {
        kiln_dtype dt = k % 4 == 3 ? KILN_DTYPE_FLOAT64 : k_floats[k % 3];
        int rank = gt_irand(1, 4);
        int64_t dims[KILN_MAX_RANK];
        gt_shape(rank, dims, 6000);
        kiln_tensor *X = gt_rand(dt, rank, dims, -3, 3);
        int64_t axis = gt_irand(-rank, rank - 1);
        if (k % 6 == 5) /* a zero line stays zero */
            for (int64_t i = 0; i < tensor_numel(X); i++) dt_set_f64(dt, X->data, (size_t)i, 0.0);
        ir_node *n = gt_node(OP_LpNormalization, 1, 1);
        ir_edit_set_int(n, "axis", axis);
        ir_edit_set_int(n, "p", k % 2 ? 1 : 2);
        const kiln_tensor *in[1] = {X};
        char desc[160], sx[64];
        snprintf(desc, sizeof desc, "LpNormalization p%d %s %s axis %lld", k % 2 ? 1 : 2,
                 gt_dt(dt), gt_shp(X, sx, sizeof sx), (long long)axis);
        gt_case(TABLE, n, in, dt == KILN_DTYPE_FLOAT64 ? 1e-12 : gt_tol(dt) * 2, desc);
        tensor_free(X);
    }
    static const int wops[] = {OP_HannWindow, OP_HammingWindow, OP_BlackmanWindow};
    static const int64_t sizes[] = {1, 2, 10, 257};
    for (int w = 0; w < 3; w++)
        for (int k = 0; k < 8; k++) {
            int64_t sz = sizes[k % 4];
            kiln_tensor *S = tensor_f64(KILN_DTYPE_INT64, 0, NULL, (const double[]){(double)sz});
            ir_node *n = gt_node(wops[w], 1, 1);
            if (k >= 4) ir_edit_set_int(n, "periodic", 0);
            if (k % 2) ir_edit_set_int(n, "output_datatype", KILN_DTYPE_FLOAT64);
            gt_const_in(n, 0, S);
            const kiln_tensor *in[1] = {S};
            char desc[96];
            snprintf(desc, sizeof desc, "%s size %lld%s", op_name(wops[w]), (long long)sz,
                     k >= 4 ? " symmetric" : "");
            g_model->opset = 17;
            gt_case(TABLE, n, in, 1e-6, desc);
            tensor_free(S);
        }
    static const kiln_dtype edts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_INT32, KILN_DTYPE_FLOAT16,
                                      KILN_DTYPE_INT64, KILN_DTYPE_FLOAT64, KILN_DTYPE_BOOL};
    for (int k = 0; k < 12; k++) {
        int64_t dims[2] = {gt_irand(1, 40), gt_irand(1, 40)};
        kiln_tensor *X = gt_rand(KILN_DTYPE_FLOAT32, 2, dims, -1, 1);
        ir_node *n = gt_node(OP_EyeLike, 1, 1);
        ir_edit_set_int(n, "k", gt_irand(-45, 45));
        if (k % 6) ir_edit_set_int(n, "dtype", edts[k % 6]);
        const kiln_tensor *in[1] = {X};
        char desc[96], sx[64];
        snprintf(desc, sizeof desc, "EyeLike %s to %s", gt_shp(X, sx, sizeof sx),
                 gt_dt(edts[k % 6]));
        gt_case(TABLE, n, in, 0, desc);
        tensor_free(X);
    }
}

/* TopK: largest and smallest, ties (small integers), NaN, every axis,
** K from 0 to the whole axis, float and integer types (uint64 above 2^63),
** K constant or runtime. Exact. */
static void test_topk(void) {
    static const kiln_dtype dts[] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16, KILN_DTYPE_INT64,
                                     KILN_DTYPE_INT32, KILN_DTYPE_FLOAT64, KILN_DTYPE_UINT64,
                                     KILN_DTYPE_BFLOAT16, KILN_DTYPE_UINT8};
    for (int k = 0; k < 48; k++) {
        kiln_dtype dt = dts[k % 8];
        int rank = gt_irand(1, 3);
        int64_t dims[KILN_MAX_RANK];
        gt_shape(rank, dims, 3000);
        int64_t axis = gt_irand(-rank, rank - 1), a = axis < 0 ? axis + rank : axis;
        kiln_tensor *X = gt_rand(dt, rank, dims, gt_is_float(dt) ? -3 : 0, gt_is_float(dt) ? 3 : 9);
        if (gt_is_float(dt))
            for (int64_t i = 0; i < tensor_numel(X); i++) {
                if (i % 3 == 0) dt_set_f64(dt, X->data, (size_t)i, (double)(i % 4)); /* ties */
                if (i % 17 == 5) dt_set_f64(dt, X->data, (size_t)i, NAN);
            }
        if (dt == KILN_DTYPE_UINT64)
            for (int64_t i = 0; i < tensor_numel(X); i += 3) ((uint64_t *)X->data)[i] |= 1ull << 63;
        double kv = (double)gt_irand(0, (int)dims[a]);
        if (k % 6 == 0) kv = (double)dims[a];
        kiln_tensor *Kt = tensor_f64(KILN_DTYPE_INT64, 1, (const int64_t[]){1}, &kv);
        ir_node *n = gt_node(OP_TopK, 2, 2);
        if (k % 3 == 0) gt_rt_in(n, 1);
        else gt_const_in(n, 1, Kt);
        ir_edit_set_int(n, "axis", axis);
        if (k % 2) ir_edit_set_int(n, "largest", 0);
        const kiln_tensor *in[2] = {X, Kt};
        char desc[160], sx[64];
        snprintf(desc, sizeof desc, "TopK %s %s axis %lld k %g %s", gt_dt(dt),
                 gt_shp(X, sx, sizeof sx), (long long)axis, kv, k % 2 ? "smallest" : "largest");
        gt_case(TABLE, n, in, 0, desc);
        tensor_free(X);
        tensor_free(Kt);
    }
}

static void test_arg(void) {
    /* integer inputs (CLIP takes the ArgMax of int32 token ids): ties, the
    ** extremes of each type */
    static const kiln_dtype ints[] = {KILN_DTYPE_INT32, KILN_DTYPE_INT64, KILN_DTYPE_INT8,
                                      KILN_DTYPE_UINT8, KILN_DTYPE_INT16, KILN_DTYPE_UINT16,
                                      KILN_DTYPE_UINT32, KILN_DTYPE_UINT64};
    for (int m = 0; m < 2; m++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(ints); d++)
            for (int k = 0; k < 6; k++) {
                kiln_dtype dt = ints[d];
                int rank = gt_irand(1, 4);
                int64_t dims[KILN_MAX_RANK];
                gt_shape(rank, dims, 40000);
                kiln_tensor *X = gt_rand(dt, rank, dims, 0, 5);
                int64_t n_el = tensor_numel(X);
                if (k % 3 == 2) /* the type's own extremes, past float's 24 bits */
                    for (int64_t i = 0; i < n_el; i += 5) {
                        size_t es = kiln_dtype_size(dt);
                        unsigned char *e = (unsigned char *)X->data + (size_t)i * es;
                        memset(e, (i / 5) % 2 ? 0xff : 0x7f, es);
                        if (es > 1 && (i / 5) % 2 == 0) memset(e, 0xff, es - 1); /* LE: max */
                    }
                ir_node *n = gt_node(m ? OP_ArgMin : OP_ArgMax, 1, 1);
                int axis = gt_irand(0, rank - 1);
                ir_edit_set_int(n, "axis", k % 2 ? axis - rank : axis);
                if (k % 3 == 0) ir_edit_set_int(n, "keepdims", 0);
                if (k % 2) ir_edit_set_int(n, "select_last_index", 1);
                const kiln_tensor *in[1] = {X};
                char desc[128], sx[64];
                snprintf(desc, sizeof desc, "%s %s %s axis %d case %d", m ? "ArgMin" : "ArgMax",
                         gt_dt(dt), gt_shp(X, sx, sizeof sx), axis, k);
                gt_case(TABLE, n, in, 0, desc);
                tensor_free(X);
            }
    for (int m = 0; m < 2; m++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++)
            for (int k = 0; k < 10; k++) {
                kiln_dtype dt = k_floats[d];
                int rank = gt_irand(1, 4);
                int64_t dims[KILN_MAX_RANK];
                gt_shape(rank, dims, 40000);
                kiln_tensor *X = gt_rand(dt, rank, dims, 0, 4);
                int64_t n_el = tensor_numel(X);
                for (int64_t i = 0; i < n_el; i++) /* ties */
                    dt_set_f64(dt, X->data, (size_t)i, floor(dt_get_f64(dt, X->data, (size_t)i)));
                if (k % 4 == 3)
                    for (int64_t i = 0; i < n_el; i += 7) dt_set_f64(dt, X->data, (size_t)i, NAN);
                ir_node *n = gt_node(m ? OP_ArgMin : OP_ArgMax, 1, 1);
                int axis = gt_irand(0, rank - 1);
                ir_edit_set_int(n, "axis", k % 2 ? axis - rank : axis);
                if (k % 3 == 0) ir_edit_set_int(n, "keepdims", 0);
                if (k % 2) ir_edit_set_int(n, "select_last_index", 1);
                const kiln_tensor *in[1] = {X};
                char desc[128], sx[64];
                snprintf(desc, sizeof desc, "%s %s %s axis %d case %d", m ? "ArgMin" : "ArgMax",
                         gt_dt(dt), gt_shp(X, sx, sizeof sx), axis, k);
                gt_case(TABLE, n, in, 0, desc);
                tensor_free(X);
            }
}

static void test_softmax(void) {
    static const int64_t rows[] = {1, 5, 17, 31, 32, 33, 64, 100, 128, 200, 256, 300, 512,
                                   777, 1024, 1025, 3000, 50257};
    for (int lg = 0; lg < 2; lg++)
        for (size_t d = 0; d < KILN_ARRAY_LEN(k_floats); d++) {
            kiln_dtype dt = k_floats[d];
            /* innermost axis, every row-length regime */
            for (size_t r = 0; r < KILN_ARRAY_LEN(rows); r++) {
                int64_t dims[2] = {rows[r] > 5000 ? 3 : gt_irand(1, 40), rows[r]};
                kiln_tensor *X = gt_rand(dt, 2, dims, -6, 6);
                g_model->opset = 13;
                ir_node *n = gt_node(lg ? OP_LogSoftmax : OP_Softmax, 1, 1);
                const kiln_tensor *in[1] = {X};
                char desc[96];
                snprintf(desc, sizeof desc, "%s %s rows of %lld", lg ? "LogSoftmax" : "Softmax",
                         gt_dt(dt), (long long)rows[r]);
                gt_case(TABLE, n, in, gt_tol(dt), desc);
                tensor_free(X);
            }
            /* random axes (inner > 1), and opset 11's coercion to 2-D */
            for (int k = 0; k < 10; k++) {
                int rank = gt_irand(1, 4);
                int64_t dims[KILN_MAX_RANK];
                gt_shape(rank, dims, 40000);
                if (k == 9) dims[0] = 0;
                kiln_tensor *X = gt_rand(dt, rank, dims, -6, 6);
                g_model->opset = k % 3 == 2 ? 11 : 13;
                ir_node *n = gt_node(lg ? OP_LogSoftmax : OP_Softmax, 1, 1);
                int axis = gt_irand(0, rank - 1);
                ir_edit_set_int(n, "axis", k % 2 ? axis - rank : axis);
                const kiln_tensor *in[1] = {X};
                char desc[128], sx[64];
                snprintf(desc, sizeof desc, "%s %s %s axis %d", lg ? "LogSoftmax" : "Softmax",
                         gt_dt(dt), gt_shp(X, sx, sizeof sx), axis);
                gt_case(TABLE, n, in, gt_tol(dt), desc);
                tensor_free(X);
            }
        }
    g_model->opset = 17;
}

/* Model-sized timings (KC_GPU_BENCH=1). */
static void bench(void) {
    if (!getenv("KC_GPU_BENCH")) return;
    for (size_t d = 0; d < 2; d++) {
        kiln_dtype dt = k_floats[d];
        int64_t att[2] = {32 * 12 * 128, 128}, voc[2] = {8, 50257}, gap[4] = {32, 2048, 7, 7};
        int64_t ln[2] = {32 * 128, 768};
        kiln_tensor *A = gt_rand(dt, 2, att, -5, 5), *V = gt_rand(dt, 2, voc, -5, 5);
        kiln_tensor *G = gt_rand(dt, 4, gap, -5, 5), *L = gt_rand(dt, 2, ln, -5, 5);
        char l[96];
        const kiln_tensor *a1[1] = {A}, *v1[1] = {V};
        g_model->opset = 13;
        snprintf(l, sizeof l, "Softmax attention [49152,128] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Softmax, 1, 1), a1, l);
        snprintf(l, sizeof l, "Softmax vocab [8,50257] %s", gt_dt(dt));
        gt_bench(TABLE, gt_node(OP_Softmax, 1, 1), v1, l);
        g_model->opset = 18;
        int64_t ax2[2] = {2, 3}, axl[1] = {-1}, n2[1] = {2}, n1[1] = {1};
        kiln_tensor *AX = tensor_with(KILN_DTYPE_INT64, 1, n2, ax2);
        kiln_tensor *AL = tensor_with(KILN_DTYPE_INT64, 1, n1, axl);
        ir_node *n = gt_node(OP_ReduceMean, 2, 1);
        gt_const_in(n, 1, AX);
        const kiln_tensor *g2[2] = {G, AX}, *l2[2] = {L, AL};
        snprintf(l, sizeof l, "ReduceMean spatial [32,2048,7,7] %s", gt_dt(dt));
        gt_bench(TABLE, n, g2, l);
        n = gt_node(OP_ReduceMean, 2, 1);
        gt_const_in(n, 1, AL);
        snprintf(l, sizeof l, "ReduceMean last [4096,768] %s", gt_dt(dt));
        gt_bench(TABLE, n, l2, l);
        g_model->opset = 17;
        tensor_free(A);
        tensor_free(V);
        tensor_free(G);
        tensor_free(L);
        tensor_free(AX);
        tensor_free(AL);
    }
}

int main(void) {
    if (!gt_init()) return 0;
    bench();
    test_reduce();
    test_reduce_f64();
    test_loss();
    test_cum();
    test_lines();
    test_topk();
    test_arg();
    test_softmax();
    return gt_fini();
}
