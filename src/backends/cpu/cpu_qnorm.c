/* cpu_qnorm.c: QLayerNormalization (ops/qfused.c: LayerNorm, then
** QuantizeLinear's steps) on the CPU: the row-normalization tactic of the
** same ISA (cpu_norm.c) into the workspace, then the quantization, row
** block by row block on the pool. The quantization is the reference's
** float32 steps on the float32 values the LayerNorm tactic writes, so the
** layer computes what that tactic followed by the QuantizeLinear layer
** computes in an unfused CPU engine. */
#include "cpu_gemm.h"
#include "cpu_tactics.h"

#include <math.h>
#include <string.h>

static bool is8(kiln_dtype t) { return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8; }

static bool one_f32(const ir_type *t) {
    if (!t || t->dtype != KILN_DTYPE_FLOAT32) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] != 1) return false;
    return true;
}

static bool qln_supports(const kiln_tactic *ln, const ir_node *n, const ir_type *const *in) {
    if (n->n_in != 5 || n->n_out != 1 || !in[3] || !in[4] || !one_f32(in[3]) ||
        !is8(in[4]->dtype) || in[4]->rank > 1 || !in[0] || in[0]->dtype != KILN_DTYPE_FLOAT32)
        return false;
    return ln->supports(n, in);
}

/* The float32 LayerNorm output (symbolic dims: 0, the run allocates). */
static size_t qln_workspace(const ir_node *n, const ir_type *const *in) {
    (void)n;
    int64_t e = 1;
    for (int i = 0; i < in[0]->rank; i++) {
        if (in[0]->dims[i] < 0) return 0;
        e *= in[0]->dims[i];
    }
    return 64 + (size_t)e * sizeof(float);
}

typedef struct qln_job {
    const float *x;
    uint8_t *y;
    int64_t n;
    float ys, yz, lo, hi;
    bool s8;
} qln_job;

enum { QLN_CHUNK = 1 << 14 };

static void qln_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const qln_job *j = arg;
    int64_t i0 = t * QLN_CHUNK, i1 = i0 + QLN_CHUNK < j->n ? i0 + QLN_CHUNK : j->n;
    for (int64_t i = i0; i < i1; i++) {
        float q = nearbyintf(j->x[i] / j->ys) + j->yz;
        q = q < j->lo ? j->lo : q > j->hi ? j->hi : q;
        if (q != q) q = j->lo;
        j->y[i] = j->s8 ? (uint8_t)(int8_t)(int)q : (uint8_t)(int)q;
    }
}

static int qln_run(const kiln_tactic *ln, ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->dtype != KILN_DTYPE_FLOAT32 || !is8(y->dtype) || tensor_numel(y) != tensor_numel(x))
        return ref_fail(c, "this tactic takes float32 X and an 8-bit output of X's size");
    int64_t n = tensor_numel(x);
    if (n == 0) return 0;
    size_t need = 64 + (size_t)n * sizeof(float);
    void *own = NULL;
    char *ws = c->ws;
    if (!ws || c->ws_size < need) {
        if (!(own = kiln_aligned_alloc(need))) return ref_fail(c, "out of memory");
        ws = own;
    }
    kiln_tensor t = *x;
    t.name = NULL;
    t.flags = 0;
    t.data = cpu_align64(ws);
    t.nbytes = (size_t)n * sizeof(float);
    ref_ctx s = *c;
    kiln_tensor *o[1] = {&t};
    s.n_in = 3;
    s.n_out = 1;
    s.out = o;
    s.ws = NULL;
    s.ws_size = 0;
    s.err[0] = 0;
    if (ln->run(&s)) {
        memcpy(c->err, s.err, sizeof c->err);
        kiln_aligned_free(own);
        return -1;
    }
    qln_job j;
    j.x = t.data;
    j.y = y->data;
    j.n = n;
    j.ys = (float)dt_get_f64(c->in[3]->dtype, c->in[3]->data, 0);
    j.yz = (float)dt_get_i64(c->in[4]->dtype, c->in[4]->data, 0);
    j.s8 = y->dtype == KILN_DTYPE_INT8;
    j.lo = j.s8 ? -128.0f : 0.0f, j.hi = j.lo + 255.0f;
    int64_t tasks = (n + QLN_CHUNK - 1) / QLN_CHUNK;
    cpu_parallel_for(tasks, cpu_threads_for(4.0 * (double)n), 0, NULL, qln_task, &j);
    kiln_aligned_free(own);
    return 0;
}

#define QLN_TACTIC(SUF, ISA)                                                                \
    static bool qln_sup_##SUF(const ir_node *n, const ir_type *const *in) {                \
        return qln_supports(&cpu_t_layernorm_##SUF, n, in);                                 \
    }                                                                                       \
    static int qln_run_##SUF(ref_ctx *c) { return qln_run(&cpu_t_layernorm_##SUF, c); }    \
    const kiln_tactic cpu_t_qlayernorm_##SUF = {"f32_qlayernorm_rows_" #SUF,               \
        OP_QLayerNormalization, ISA, TACTIC_OVERWRITES_OUTPUT, qln_sup_##SUF, qln_workspace, \
        qln_run_##SUF};

QLN_TACTIC(avx512, KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)
QLN_TACTIC(avx2, KILN_ISA_AVX2 | KILN_ISA_FMA)
QLN_TACTIC(c, 0)
