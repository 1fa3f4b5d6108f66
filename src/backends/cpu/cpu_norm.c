/* cpu_norm.c: vectorized, threaded LayerNormalization, RMSNormalization,
** Softmax and LogSoftmax tactics (float32) over the kernels of
** cpu_xf_kern.h. Norms: rows are the trailing dims from `axis`; scale and
** bias must cover the whole row (leading 1s allowed), otherwise the
** reference runs. Softmax: any axis (opset < 13 flattens from the axis);
** the last axis runs row by row, others with vectors along the inner dims. */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "cpu_xf.h"

static bool is_f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

/* Elements per task: enough work to be worth a thread hand-off. */
enum { XF_TASK_ELEMS = 16384 };

/* A parameter of type p covers the trailing dims of x from ax exactly. */
static bool covers_row(const ir_type *p, const ir_type *x, int ax) {
    int nr = x->rank - ax;
    for (int i = 0; i < p->rank; i++) {
        int xi = x->rank - p->rank + i;
        if (xi < ax) {
            if (p->dims[i] != 1) return false;
        } else if (p->dims[i] != x->dims[xi] || p->dims[i] < 0) {
            return false;
        }
    }
    return p->rank >= nr || shape_numel(nr - p->rank, x->dims + ax) == 1;
}

static int norm_axis(const ir_node *n, int rank) {
    int64_t axis = ir_attr_int(n, "axis", -1);
    if (axis < -(int64_t)rank || axis >= rank) return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

static bool norm_supports(const ir_node *n, const ir_type *const *in) {
    bool rms = n->op == OP_RMSNormalization;
    if (n->n_in < 2 || !is_f32(in[0]) || !is_f32(in[1])) return false;
    int ax = norm_axis(n, in[0]->rank);
    if (ax < 0) return false;
    for (int i = ax; i < in[0]->rank; i++)
        if (in[0]->dims[i] < 0) return false;
    if (!covers_row(in[1], in[0], ax)) return false;
    if (!rms && n->n_in > 2 && in[2] && (!is_f32(in[2]) || !covers_row(in[2], in[0], ax)))
        return false;
    return n->n_out == 1; /* Mean / InvStdDev outputs: the reference */
}

typedef struct {
    const cpu_xf_kernels *k;
    const void *a;
    int64_t per, total;
} row_job;

static void norm_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const row_job *j = arg;
    int64_t r0 = t * j->per, r1 = KILN_MIN(j->total, r0 + j->per);
    j->k->norm_rows(j->a, r0, r1);
}

static void softmax_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const row_job *j = arg;
    int64_t r0 = t * j->per, r1 = KILN_MIN(j->total, r0 + j->per);
    j->k->softmax(j->a, r0, r1);
}

/* Splits `rows` rows of `len` elements into tasks; runs fn. */
static void run_rows(const cpu_xf_kernels *K, const void *a, int64_t rows, int64_t len,
                     cpu_task_fn fn) {
    int64_t per = KILN_MAX(1, XF_TASK_ELEMS / KILN_MAX(len, 1));
    int threads = cpu_threads_for(8.0 * (double)rows * (double)len);
    if (threads > 1) per = KILN_MIN(per, KILN_MAX(1, rows / (4 * threads)));
    row_job j = {K, a, per, rows};
    cpu_parallel_for((rows + per - 1) / per, threads, 0, NULL, fn, &j);
}

static int norm_run(ref_ctx *c, const cpu_xf_kernels *K) {
    const ir_node *n = c->node;
    bool rms = n->op == OP_RMSNormalization;
    const kiln_tensor *x = c->in[0], *s = c->in[1];
    const kiln_tensor *b = !rms && ref_has(c, 2) ? c->in[2] : NULL;
    if (x->dtype != KILN_DTYPE_FLOAT32 || s->dtype != KILN_DTYPE_FLOAT32 ||
        (b && b->dtype != KILN_DTYPE_FLOAT32))
        return ref_fail(c, "this tactic handles float32 only");
    int ax = norm_axis(n, x->rank);
    if (ax < 0) return ref_fail(c, "axis is out of range for rank %d", x->rank);
    int64_t outer = shape_numel(ax, x->dims), inner = shape_numel(x->rank - ax, x->dims + ax);
    if (tensor_numel(s) != inner || (b && tensor_numel(b) != inner))
        return ref_fail(c, "this tactic needs Scale and B covering the normalized dims");
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 &&
          shape_equal(Y->rank, Y->dims, x->rank, x->dims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, x->rank, x->dims))
        return -1;
    cpu_norm_args A = {x->data, s->data, b ? b->data : NULL, c->out[0]->data,
                       NULL, NULL, inner,
                       ir_attr_float(n, "epsilon", 1e-5f), rms};
    if (outer <= 0 || inner <= 0) return 0;
    run_rows(K, &A, outer, inner, norm_task);
    return 0;
}

static bool softmax_supports(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return n->n_in >= 1 && is_f32(in[0]) && in[0]->rank >= 1;
}

static int softmax_run(ref_ctx *c, const cpu_xf_kernels *K) {
    const kiln_tensor *x = c->in[0];
    if (!x || x->dtype != KILN_DTYPE_FLOAT32)
        return ref_fail(c, "this tactic handles float32 only");
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 &&
          shape_equal(Y->rank, Y->dims, x->rank, x->dims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, x->rank, x->dims))
        return -1;
    int r = x->rank;
    int64_t axis = ir_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r || (axis == r && c->opset >= 13))
        return ref_fail(c, "axis out of range for rank %d", r);
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (c->opset < 13 || i == axis) len *= x->dims[i];
        else inner *= x->dims[i];
    }
    if (tensor_numel(x) == 0) return 0;
    cpu_softmax_args A = {x->data, c->out[0]->data, len, inner,
                          c->node->op == OP_LogSoftmax};
    run_rows(K, &A, outer, len * inner, softmax_task);
    return 0;
}

#define NORM_TACTICS(SUF, KERN, ISA)                                           \
    static int norm_run_##SUF(ref_ctx *c) {                                    \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return norm_run(c, &(KERN));                                           \
    }                                                                          \
    static int softmax_run_##SUF(ref_ctx *c) {                                 \
        if (!(KERN).available) return ref_fail(c, "built without " #SUF);     \
        return softmax_run(c, &(KERN));                                        \
    }                                                                          \
    static bool norm_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && norm_supports(n, in);                       \
    }                                                                          \
    static bool softmax_supports_##SUF(const ir_node *n, const ir_type *const *in) { \
        return (KERN).available && softmax_supports(n, in);                    \
    }                                                                          \
    const kiln_tactic cpu_t_layernorm_##SUF = {                                \
        "f32_layernorm_rows_" #SUF, OP_LayerNormalization, ISA,                \
        TACTIC_OVERWRITES_OUTPUT, norm_supports_##SUF, NULL, norm_run_##SUF};        \
    const kiln_tactic cpu_t_rmsnorm_##SUF = {                                  \
        "f32_rmsnorm_rows_" #SUF, OP_RMSNormalization, ISA,                    \
        TACTIC_OVERWRITES_OUTPUT, norm_supports_##SUF, NULL, norm_run_##SUF};        \
    const kiln_tactic cpu_t_softmax_##SUF = {                                  \
        "f32_softmax_" #SUF, OP_Softmax, ISA, TACTIC_OVERWRITES_OUTPUT,        \
        softmax_supports_##SUF, NULL, softmax_run_##SUF};                            \
    const kiln_tactic cpu_t_logsoftmax_##SUF = {                               \
        "f32_logsoftmax_" #SUF, OP_LogSoftmax, ISA, TACTIC_OVERWRITES_OUTPUT,  \
        softmax_supports_##SUF, NULL, softmax_run_##SUF};

NORM_TACTICS(avx512, cpu_xf_avx512, KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)
NORM_TACTICS(avx2, cpu_xf_avx2, KILN_ISA_AVX2 | KILN_ISA_FMA)
NORM_TACTICS(c, cpu_xf_c, 0)
