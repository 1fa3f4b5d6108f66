/* ref_linalg.c: reference kernels for MatMul, Gemm, Einsum, Det, Attention
** and RotaryEmbedding. Float32 products go through one blocked GEMM core
** (four output rows per pass, contiguous inner loop) so BERT-sized models
** run in reasonable time; float16/bfloat16 are widened to float32. */
#include "ref.h"
#include "../../ops/attn_qkv.h"

#include "../../ops/linalg_einsum.h"

#include <math.h>

/* ------------------------------------------------------------ GEMM cores
** C[M,N] (row stride ldc) = alpha * A * B (+ C when acc), where
** A(i,k) = A[i*rsa + k*csa] and B(k,j) = B[k*ldb + j] (rows contiguous).
** Blocking keeps a KB x NB panel of B hot in cache while four rows of C are
** updated from each B row it streams. */
enum { GEMM_NB = 256, GEMM_KB = 128 };

#define DEFINE_GEMM_CORE(NAME, T)                                               \
    static void NAME(int64_t M, int64_t N, int64_t K, T alpha, const T *A,      \
                     int64_t rsa, int64_t csa, const T *B, int64_t ldb, T *C,   \
                     int64_t ldc, bool acc) {                                   \
        if (!acc)                                                               \
            for (int64_t i = 0; i < M; i++)                                     \
                memset(C + i * ldc, 0, (size_t)N * sizeof(T));                  \
        for (int64_t j0 = 0; j0 < N; j0 += GEMM_NB) {                           \
            int64_t nb = KILN_MIN((int64_t)GEMM_NB, N - j0);                    \
            for (int64_t k0 = 0; k0 < K; k0 += GEMM_KB) {                       \
                int64_t k1 = KILN_MIN(K, k0 + (int64_t)GEMM_KB);                \
                int64_t i = 0;                                                  \
                for (; i + 4 <= M; i += 4) {                                    \
                    T *restrict c0 = C + i * ldc + j0;                          \
                    T *restrict c1 = c0 + ldc;                                  \
                    T *restrict c2 = c1 + ldc;                                  \
                    T *restrict c3 = c2 + ldc;                                  \
                    const T *a = A + i * rsa;                                   \
                    for (int64_t k = k0; k < k1; k++) {                         \
                        const T *ak = a + k * csa;                              \
                        T x0 = alpha * ak[0], x1 = alpha * ak[rsa];             \
                        T x2 = alpha * ak[2 * rsa], x3 = alpha * ak[3 * rsa];   \
                        const T *restrict b = B + k * ldb + j0;                 \
                        for (int64_t j = 0; j < nb; j++) {                      \
                            T bj = b[j];                                        \
                            c0[j] += x0 * bj;                                   \
                            c1[j] += x1 * bj;                                   \
                            c2[j] += x2 * bj;                                   \
                            c3[j] += x3 * bj;                                   \
                        }                                                       \
                    }                                                           \
                }                                                               \
                for (; i < M; i++) {                                            \
                    T *restrict c0 = C + i * ldc + j0;                          \
                    const T *a = A + i * rsa;                                   \
                    for (int64_t k = k0; k < k1; k++) {                         \
                        T x0 = alpha * a[k * csa];                              \
                        const T *restrict b = B + k * ldb + j0;                 \
                        for (int64_t j = 0; j < nb; j++) c0[j] += x0 * b[j];    \
                    }                                                           \
                }                                                               \
            }                                                                   \
        }                                                                       \
    }

DEFINE_GEMM_CORE(gemm_core_f32, float)
DEFINE_GEMM_CORE(gemm_core_f64, double)

/* General-stride front ends: B(k,j) = B[k*rsb + j*csb]; B is packed into
** contiguous rows first when its columns are strided. false on OOM. */
#define DEFINE_GEMM(NAME, CORE, T)                                              \
    static bool NAME(int64_t M, int64_t N, int64_t K, T alpha, const T *A,      \
                     int64_t rsa, int64_t csa, const T *B, int64_t rsb,         \
                     int64_t csb, T *C, int64_t ldc, bool acc) {                \
        T *pack = NULL;                                                         \
        if (M <= 0 || N <= 0) return true;                                      \
        if (csb != 1 && rsb == 1 && M <= 4 && N > 1) {                          \
            /* few rows against a transposed B (a Linear layer on one           \
            ** token): dot products along contiguous B columns beat packing;    \
            ** each sum keeps the core's k order, so results are identical. */  \
            for (int64_t i = 0; i < M; i++) {                                   \
                const T *a = A + i * rsa;                                       \
                T *c = C + i * ldc;                                             \
                int64_t j = 0;                                                  \
                for (; j + 4 <= N; j += 4) {                                    \
                    const T *b0 = B + j * csb, *b1 = b0 + csb;                  \
                    const T *b2 = b1 + csb, *b3 = b2 + csb;                     \
                    T s0 = acc ? c[j] : 0, s1 = acc ? c[j + 1] : 0;             \
                    T s2 = acc ? c[j + 2] : 0, s3 = acc ? c[j + 3] : 0;         \
                    for (int64_t k = 0; k < K; k++) {                           \
                        T x = alpha * a[k * csa];                               \
                        s0 += x * b0[k];                                        \
                        s1 += x * b1[k];                                        \
                        s2 += x * b2[k];                                        \
                        s3 += x * b3[k];                                        \
                    }                                                           \
                    c[j] = s0, c[j + 1] = s1, c[j + 2] = s2, c[j + 3] = s3;     \
                }                                                               \
                for (; j < N; j++) {                                            \
                    const T *b0 = B + j * csb;                                  \
                    T s0 = acc ? c[j] : 0;                                      \
                    for (int64_t k = 0; k < K; k++) s0 += alpha * a[k * csa] * b0[k]; \
                    c[j] = s0;                                                  \
                }                                                               \
            }                                                                   \
            return true;                                                        \
        }                                                                       \
        if (csb != 1 && N > 1 && K > 0) {                                       \
            pack = malloc((size_t)K * (size_t)N * sizeof(T));                   \
            if (!pack) return false;                                            \
            /* tiled so the strided reads of a transposed B stay cached */      \
            for (int64_t k0 = 0; k0 < K; k0 += 32)                              \
                for (int64_t j0 = 0; j0 < N; j0 += 32) {                        \
                    int64_t k1 = KILN_MIN(K, k0 + 32), j1 = KILN_MIN(N, j0 + 32); \
                    for (int64_t k = k0; k < k1; k++)                           \
                        for (int64_t j = j0; j < j1; j++)                       \
                            pack[k * N + j] = B[k * rsb + j * csb];             \
                }                                                               \
            B = pack;                                                           \
            rsb = N;                                                            \
        }                                                                       \
        CORE(M, N, K, alpha, A, rsa, csa, B, rsb, C, ldc, acc);                 \
        free(pack);                                                             \
        return true;                                                            \
    }

DEFINE_GEMM(sgemm, gemm_core_f32, float)
DEFINE_GEMM(dgemm, gemm_core_f64, double)

/* ------------------------------------------------------- dtype plumbing */
static bool is_int_dtype(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8: case KILN_DTYPE_INT16:
    case KILN_DTYPE_UINT16: case KILN_DTYPE_INT32: case KILN_DTYPE_UINT32:
    case KILN_DTYPE_INT64: case KILN_DTYPE_UINT64:
        return true;
    default:
        return false;
    }
}

/* Integer element as a wrapping 64-bit value. */
static uint64_t iget(kiln_dtype t, const void *p, int64_t i) {
    switch (t) {
    case KILN_DTYPE_INT8: return (uint64_t)(int64_t)((const int8_t *)p)[i];
    case KILN_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case KILN_DTYPE_INT16: return (uint64_t)(int64_t)((const int16_t *)p)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case KILN_DTYPE_INT32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case KILN_DTYPE_INT64: return (uint64_t)((const int64_t *)p)[i];
    case KILN_DTYPE_UINT64: return ((const uint64_t *)p)[i];
    default: return 0;
    }
}

/* Stores v truncated to the element width (integer overflow wraps like
** numpy). Narrowing to signed goes through the unsigned type: defined. */
static void iset(kiln_dtype t, void *p, int64_t i, uint64_t v) {
    switch (t) {
    case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8:
        ((uint8_t *)p)[i] = (uint8_t)v; break;
    case KILN_DTYPE_INT16: case KILN_DTYPE_UINT16:
        ((uint16_t *)p)[i] = (uint16_t)v; break;
    case KILN_DTYPE_INT32: case KILN_DTYPE_UINT32:
        ((uint32_t *)p)[i] = (uint32_t)v; break;
    case KILN_DTYPE_INT64: case KILN_DTYPE_UINT64:
        ((uint64_t *)p)[i] = v; break;
    default: break;
    }
}

/* Signed interpretation for mixing with float attributes (Gemm alpha). */
static double iget_f64(kiln_dtype t, const void *p, int64_t i) {
    uint64_t v = iget(t, p, i);
    if (t == KILN_DTYPE_UINT64) return (double)v;
    return (double)(int64_t)v;
}

/* A float32 view of a float tensor: the data itself for float32, else a
** converted copy (owned). */
typedef struct {
    const float *p;
    float *owned;
} f32_view;

static bool view_f32(const kiln_tensor *t, f32_view *v) {
    v->owned = NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        v->p = t->data;
        return true;
    }
    v->owned = tensor_to_f32(t);
    v->p = v->owned;
    return v->owned != NULL;
}

/* Output scratch in float32 for a non-float32 output, else its data. */
static float *out_f32(kiln_tensor *t, bool *owned) {
    *owned = t->dtype != KILN_DTYPE_FLOAT32;
    if (!*owned) return t->data;
    int64_t n = tensor_numel(t);
    return malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
}

static void out_f32_done(kiln_tensor *t, float *buf, bool owned) {
    if (owned) {
        tensor_from_f32(t, buf);
        free(buf);
    }
}

/* ------------------------------------------------------------------ MatMul */
typedef struct {
    int64_t M, N, K;
    int rbo;                       /* batch rank */
    int64_t bdims[KILN_MAX_RANK];
    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK]; /* batch strides, matrices */
    int64_t nbatch;
    bool fold;                     /* B is one matrix: fold batch into M */
} mm_plan;

static int mm_make_plan(ref_ctx *c, const kiln_tensor *a, const kiln_tensor *b,
                        mm_plan *p) {
    int ra = a->rank, rb = b->rank;
    if (ra < 1 || rb < 1) return ref_fail(c, "MatMul inputs must have rank >= 1");
    p->M = ra > 1 ? a->dims[ra - 2] : 1;
    p->K = a->dims[ra - 1];
    p->N = rb > 1 ? b->dims[rb - 1] : 1;
    int64_t kb = rb > 1 ? b->dims[rb - 2] : b->dims[0];
    if (kb != p->K)
        return ref_fail(c, "MatMul inner dims differ: %lld vs %lld",
                        (long long)p->K, (long long)kb);
    int rba = ra > 2 ? ra - 2 : 0, rbb = rb > 2 ? rb - 2 : 0;
    if (!shape_broadcast(rba, a->dims, rbb, b->dims, &p->rbo, p->bdims))
        return ref_fail(c, "MatMul batch dims do not broadcast");
    bcast_strides(rba, a->dims, p->rbo, p->sa);
    bcast_strides(rbb, b->dims, p->rbo, p->sb);
    p->nbatch = shape_numel(p->rbo, p->bdims);
    p->fold = shape_numel(rbb, b->dims) == 1;
    return 0;
}

static int k_matmul(ref_ctx *c) {
    const kiln_tensor *a = c->in[0], *b = c->in[1];
    kiln_tensor *y = c->out[0];
    if (a->dtype != b->dtype)
        return ref_fail(c, "MatMul input types differ");
    mm_plan p;
    if (mm_make_plan(c, a, b, &p)) return -1;
    int64_t M = p.M, N = p.N, K = p.K;
    if (tensor_numel(y) != p.nbatch * M * N)
        return ref_fail(c, "MatMul output has the wrong size");
    if (p.nbatch == 0 || M == 0 || N == 0) return 0;
    kiln_dtype dt = a->dtype;
    if (is_int_dtype(dt)) {
        bcast_iter it;
        const int64_t *st[2] = {p.sa, p.sb};
        bcast_iter_init(&it, p.rbo, p.bdims, 2, st);
        for (int64_t bi = 0; bi < p.nbatch; bi++, bcast_iter_next(&it)) {
            int64_t oa = it.off[0] * M * K, ob = it.off[1] * K * N;
            int64_t oy = bi * M * N;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    uint64_t s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += iget(dt, a->data, oa + i * K + k) *
                             iget(dt, b->data, ob + k * N + j);
                    iset(dt, y->data, oy + i * N + j, s);
                }
        }
        return 0;
    }
    if (dt == KILN_DTYPE_FLOAT64) {
        const double *A = a->data, *B = b->data;
        double *Y = y->data;
        if (p.fold)
            return dgemm(p.nbatch * M, N, K, 1.0, A, K, 1, B, N, 1, Y, N, false)
                       ? 0 : ref_fail(c, "out of memory");
        bcast_iter it;
        const int64_t *st[2] = {p.sa, p.sb};
        bcast_iter_init(&it, p.rbo, p.bdims, 2, st);
        for (int64_t bi = 0; bi < p.nbatch; bi++, bcast_iter_next(&it))
            if (!dgemm(M, N, K, 1.0, A + it.off[0] * M * K, K, 1,
                       B + it.off[1] * K * N, N, 1, Y + bi * M * N, N, false))
                return ref_fail(c, "out of memory");
        return 0;
    }
    if (!dtype_is_float(dt))
        return ref_fail(c, "MatMul does not support %s", kiln_dtype_name(dt));
    f32_view va, vb;
    bool yown;
    float *Y = NULL;
    int rc = 0;
    if (!view_f32(a, &va)) return ref_fail(c, "out of memory");
    if (!view_f32(b, &vb)) {
        free(va.owned);
        return ref_fail(c, "out of memory");
    }
    Y = out_f32(y, &yown);
    if (!Y) {
        rc = ref_fail(c, "out of memory");
    } else if (p.fold) {
        if (!sgemm(p.nbatch * M, N, K, 1.0f, va.p, K, 1, vb.p, N, 1, Y, N,
                   false))
            rc = ref_fail(c, "out of memory");
    } else {
        bcast_iter it;
        const int64_t *st[2] = {p.sa, p.sb};
        bcast_iter_init(&it, p.rbo, p.bdims, 2, st);
        for (int64_t bi = 0; bi < p.nbatch && !rc; bi++, bcast_iter_next(&it))
            if (!sgemm(M, N, K, 1.0f, va.p + it.off[0] * M * K, K, 1,
                       vb.p + it.off[1] * K * N, N, 1, Y + bi * M * N, N, false))
                rc = ref_fail(c, "out of memory");
    }
    if (Y) {
        if (rc && yown) free(Y);
        else out_f32_done(y, Y, yown);
    }
    free(va.owned);
    free(vb.owned);
    return rc;
}

/* -------------------------------------------------------------------- Gemm */
static int k_gemm(ref_ctx *c) {
    const kiln_tensor *a = c->in[0], *b = c->in[1];
    const kiln_tensor *cc = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    if (a->rank != 2 || b->rank != 2)
        return ref_fail(c, "Gemm inputs A and B must be 2-D");
    bool ta = ir_attr_int(c->node, "transA", 0) != 0;
    bool tb = ir_attr_int(c->node, "transB", 0) != 0;
    float alpha = ir_attr_float(c->node, "alpha", 1.0f);
    float beta = ir_attr_float(c->node, "beta", 1.0f);
    int64_t M = a->dims[ta ? 1 : 0], K = a->dims[ta ? 0 : 1];
    int64_t kb = b->dims[tb ? 1 : 0], N = b->dims[tb ? 0 : 1];
    if (K != kb)
        return ref_fail(c, "Gemm inner dims differ: %lld vs %lld", (long long)K,
                        (long long)kb);
    if (y->rank != 2 || y->dims[0] != M || y->dims[1] != N)
        return ref_fail(c, "Gemm output has the wrong shape");
    int64_t lda = a->dims[1], ldb = b->dims[1];
    int64_t rsa = ta ? 1 : lda, csa = ta ? lda : 1;
    int64_t rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
    /* C broadcast strides over (M, N). */
    int64_t cst[2] = {0, 0};
    bool use_c = cc && beta != 0.0f;
    if (cc) {
        if (cc->rank > 2) return ref_fail(c, "Gemm C must have rank <= 2");
        int64_t want[2] = {M, N};
        for (int i = 0; i < cc->rank; i++) {
            int64_t d = cc->dims[i];
            if (d != 1 && d != want[2 - cc->rank + i])
                return ref_fail(c, "Gemm C does not broadcast to %lldx%lld",
                                (long long)M, (long long)N);
        }
        bcast_strides(cc->rank, cc->dims, 2, cst);
    }
    if (M == 0 || N == 0) return 0;
    kiln_dtype dt = a->dtype;
    if (is_int_dtype(dt)) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                uint64_t s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += iget(dt, a->data, i * rsa + k * csa) *
                         iget(dt, b->data, k * rsb + j * csb);
                double v = (double)alpha * (dt == KILN_DTYPE_UINT64
                                                ? (double)s
                                                : (double)(int64_t)s);
                if (use_c)
                    v += (double)beta *
                         iget_f64(dt, cc->data, i * cst[0] + j * cst[1]);
                if (dtype_is_signed_int(dt))
                    iset(dt, y->data, i * N + j, (uint64_t)f64_to_i64_sat(v));
                else
                    dt_set_f64(dt, y->data, (size_t)(i * N + j), v);
            }
        return 0;
    }
    if (dt == KILN_DTYPE_FLOAT64) {
        double *Y = y->data;
        const double *C = use_c ? cc->data : NULL;
        for (int64_t i = 0; use_c && i < M; i++)
            for (int64_t j = 0; j < N; j++)
                Y[i * N + j] = (double)beta * C[i * cst[0] + j * cst[1]];
        return dgemm(M, N, K, (double)alpha, a->data, rsa, csa, b->data, rsb,
                     csb, Y, N, use_c)
                   ? 0 : ref_fail(c, "out of memory");
    }
    if (!dtype_is_float(dt))
        return ref_fail(c, "Gemm does not support %s", kiln_dtype_name(dt));
    f32_view va = {0}, vb = {0}, vc = {0};
    bool yown = false;
    float *Y = NULL;
    int rc = 0;
    if (!view_f32(a, &va) || !view_f32(b, &vb) ||
        (use_c && !view_f32(cc, &vc)) || !(Y = out_f32(y, &yown))) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t i = 0; use_c && i < M; i++)
        for (int64_t j = 0; j < N; j++)
            Y[i * N + j] = beta * vc.p[i * cst[0] + j * cst[1]];
    if (!sgemm(M, N, K, alpha, va.p, rsa, csa, vb.p, rsb, csb, Y, N, use_c))
        rc = ref_fail(c, "out of memory");
done:
    if (Y) {
        if (rc && yown) free(Y);
        else out_f32_done(y, Y, yown);
    }
    free(va.owned);
    free(vb.owned);
    free(vc.owned);
    return rc;
}

/* ------------------------------------------------------------------ Einsum
** Two float operands go through GEMM: labels in both inputs and the output
** are batch, in one input and the output are M (first) or N (second), and
** the rest are summed (K). Each operand is gathered into [batch, M, K] or
** [batch, K, N] order using its per-label strides (0 where it lacks the
** label or broadcasts it; the sum of axis strides on a diagonal), then the
** [batch, M, N] result is gathered into the output's label order. */
typedef struct {
    int n;
    int labs[EIN_MAX_LABELS];
} label_list;

#define DEFINE_GATHER(NAME, T)                                                  \
    static void NAME(const T *src, const int64_t *st, const label_list *ls,     \
                     const int64_t *size, T *dst, int64_t total) {              \
        int64_t idx[EIN_MAX_LABELS] = {0}, off = 0;                             \
        for (int64_t e = 0; e < total; e++) {                                   \
            dst[e] = src[off];                                                  \
            for (int q = ls->n - 1; q >= 0; q--) {                              \
                int l = ls->labs[q];                                            \
                off += st[l];                                                   \
                if (++idx[q] < size[l]) break;                                  \
                off -= st[l] * size[l];                                         \
                idx[q] = 0;                                                     \
            }                                                                   \
        }                                                                       \
    }

DEFINE_GATHER(gather_f32, float)
DEFINE_GATHER(gather_f64, double)

/* Returns 1 when it handled the node, 0 to fall back, -1 on error. */
static int einsum_gemm(ref_ctx *c, const einsum_spec *sp, const int64_t *size,
                       const bool *used, int64_t (*st)[EIN_MAX_LABELS]) {
    const kiln_tensor *a = c->in[0], *b = c->in[1];
    kiln_tensor *y = c->out[0];
    if (sp->n_ops != 2 || !dtype_is_float(a->dtype) ||
        (a->dtype != KILN_DTYPE_FLOAT32 && a->dtype != KILN_DTYPE_FLOAT64 &&
         a->dtype != KILN_DTYPE_FLOAT16 && a->dtype != KILN_DTYPE_BFLOAT16))
        return 0;
    bool has[2][EIN_MAX_LABELS] = {{false}}, in_out[EIN_MAX_LABELS] = {false};
    for (int i = 0; i < 2; i++)
        for (int ax = 0; ax < sp->rank[i]; ax++) has[i][(int)sp->lab[i][ax]] = true;
    for (int k = 0; k < sp->out_rank; k++) in_out[(int)sp->out[k]] = true;
    label_list lb = {0}, lm = {0}, ln = {0}, lk = {0};
    int64_t nb = 1, m = 1, n = 1, k = 1;
    bool ovf = false;
    for (int l = 0; l < EIN_MAX_LABELS; l++) {
        if (!used[l]) continue;
        int64_t *p;
        if (in_out[l] && has[0][l] && has[1][l]) lb.labs[lb.n++] = l, p = &nb;
        else if (in_out[l] && has[0][l]) lm.labs[lm.n++] = l, p = &m;
        else if (in_out[l]) ln.labs[ln.n++] = l, p = &n;
        else lk.labs[lk.n++] = l, p = &k;
        ovf |= __builtin_mul_overflow(*p, size[l], p);
    }
    /* Labels summed in only one operand replicate the other; give up when
    ** that would blow the buffers far past the inputs' sizes. */
    int64_t na, nbb;
    ovf |= __builtin_mul_overflow(nb, m, &na) || __builtin_mul_overflow(na, k, &na);
    ovf |= __builtin_mul_overflow(nb, k, &nbb) || __builtin_mul_overflow(nbb, n, &nbb);
    int64_t budget = 4 * (tensor_numel(a) + tensor_numel(b) + tensor_numel(y)) + 4096;
    if (ovf || na > budget || nbb > budget) return 0;
    label_list la = lb, lbb = lb, lr = lb;
    for (int q = 0; q < lm.n; q++) la.labs[la.n++] = lm.labs[q];
    for (int q = 0; q < lk.n; q++) la.labs[la.n++] = lk.labs[q];
    for (int q = 0; q < lk.n; q++) lbb.labs[lbb.n++] = lk.labs[q];
    for (int q = 0; q < ln.n; q++) lbb.labs[lbb.n++] = ln.labs[q];
    for (int q = 0; q < lm.n; q++) lr.labs[lr.n++] = lm.labs[q];
    for (int q = 0; q < ln.n; q++) lr.labs[lr.n++] = ln.labs[q];
    /* strides of each label inside the [batch, M, N] result */
    int64_t rst[EIN_MAX_LABELS] = {0}, s = 1;
    for (int q = lr.n - 1; q >= 0; q--) {
        rst[lr.labs[q]] = size[lr.labs[q]] == 1 ? 0 : s;
        s *= size[lr.labs[q]];
    }
    label_list lo = {0};
    for (int q = 0; q < sp->out_rank; q++) lo.labs[lo.n++] = sp->out[q];
    int64_t ny = tensor_numel(y), nr = nb * m * n;
    if (ny != nr) return ref_fail(c, "Einsum output has the wrong size");
    int rc = 1;
    if (a->dtype == KILN_DTYPE_FLOAT64) {
        double *pa = malloc((size_t)(na + 1) * sizeof *pa);
        double *pb = malloc((size_t)(nbb + 1) * sizeof *pb);
        double *pr = malloc((size_t)(nr + 1) * sizeof *pr);
        if (pa && pb && pr) {
            gather_f64(a->data, st[0], &la, size, pa, na);
            gather_f64(b->data, st[1], &lbb, size, pb, nbb);
            for (int64_t bi = 0; bi < nb && rc == 1; bi++)
                if (!dgemm(m, n, k, 1.0, pa + bi * m * k, k, 1, pb + bi * k * n, n,
                           1, pr + bi * m * n, n, false))
                    rc = ref_fail(c, "out of memory");
            if (rc == 1) gather_f64(pr, rst, &lo, size, y->data, ny);
        } else {
            rc = ref_fail(c, "out of memory");
        }
        free(pa);
        free(pb);
        free(pr);
        return rc;
    }
    f32_view va = {0}, vb = {0};
    float *pa = NULL, *pb = NULL, *pr = NULL, *yb = NULL;
    bool yown = false;
    if (!view_f32(a, &va) || !view_f32(b, &vb) ||
        !(pa = malloc((size_t)(na + 1) * sizeof *pa)) ||
        !(pb = malloc((size_t)(nbb + 1) * sizeof *pb)) ||
        !(pr = malloc((size_t)(nr + 1) * sizeof *pr)) || !(yb = out_f32(y, &yown))) {
        rc = ref_fail(c, "out of memory");
    } else {
        gather_f32(va.p, st[0], &la, size, pa, na);
        gather_f32(vb.p, st[1], &lbb, size, pb, nbb);
        for (int64_t bi = 0; bi < nb && rc == 1; bi++)
            if (!sgemm(m, n, k, 1.0f, pa + bi * m * k, k, 1, pb + bi * k * n, n, 1,
                       pr + bi * m * n, n, false))
                rc = ref_fail(c, "out of memory");
        if (rc == 1) gather_f32(pr, rst, &lo, size, yb, ny);
    }
    if (yb) {
        if (rc != 1 && yown) free(yb);
        else out_f32_done(y, yb, yown);
    }
    free(va.owned);
    free(vb.owned);
    free(pa);
    free(pb);
    free(pr);
    return rc;
}

/* Everything else: direct evaluation. For every output element, sum over
** all values of the contracted labels of the product of the operands.
** Repeated labels within an operand (diagonals) just add their axis
** strides. */
static int k_einsum(ref_ctx *c) {
    const char *eq = ir_attr_str(c->node, "equation", NULL);
    int n = c->n_in;
    if (n < 1 || n > EIN_MAX_OPS) return ref_fail(c, "Einsum: bad input count");
    int ranks[EIN_MAX_OPS];
    for (int i = 0; i < n; i++) {
        if (!ref_has(c, i)) return ref_fail(c, "Einsum input %d is missing", i);
        ranks[i] = c->in[i]->rank;
    }
    einsum_spec sp;
    if (einsum_parse(eq, n, ranks, &sp, c->err, sizeof c->err)) return -1;
    int64_t size[EIN_MAX_LABELS];
    bool used[EIN_MAX_LABELS] = {false};
    for (int l = 0; l < EIN_MAX_LABELS; l++) size[l] = 1;
    for (int i = 0; i < n; i++) {
        const kiln_tensor *t = c->in[i];
        for (int ax = 0; ax < t->rank; ax++) {
            int l = sp.lab[i][ax];
            int64_t d = t->dims[ax];
            if (!used[l] || size[l] == 1) size[l] = d;
            else if (d != 1 && d != size[l])
                return ref_fail(c, "Einsum: sizes %lld and %lld for one label",
                                (long long)size[l], (long long)d);
            used[l] = true;
        }
    }
    /* Strides of every operand per label (0 where broadcast). */
    int64_t (*st)[EIN_MAX_LABELS] = calloc((size_t)n, sizeof *st);
    if (!st) return ref_fail(c, "out of memory");
    for (int i = 0; i < n; i++) {
        const kiln_tensor *t = c->in[i];
        int64_t s = 1;
        for (int ax = t->rank - 1; ax >= 0; ax--) {
            if (t->dims[ax] != 1) st[i][(int)sp.lab[i][ax]] += s;
            s *= t->dims[ax];
        }
    }
    if (n == 2 && c->in[0]->dtype == c->in[1]->dtype) {
        int r = einsum_gemm(c, &sp, size, used, st);
        if (r) {
            free(st);
            return r < 0 ? -1 : 0;
        }
    }
    bool in_out[EIN_MAX_LABELS] = {false};
    for (int k = 0; k < sp.out_rank; k++) in_out[(int)sp.out[k]] = true;
    int cl[EIN_MAX_LABELS], ncl = 0;
    int64_t nsum = 1;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (used[l] && !in_out[l]) {
            cl[ncl++] = l;
            if (__builtin_mul_overflow(nsum, size[l], &nsum)) {
                free(st);
                return ref_fail(c, "Einsum: summation space is too large");
            }
        }
    kiln_tensor *y = c->out[0];
    int64_t nout = tensor_numel(y);
    kiln_dtype dt = c->in[0]->dtype;
    bool isint = is_int_dtype(dt);
    int rc = 0;
    /* Operands as double (floats) or wrapping uint64 (ints). */
    void **ops = calloc((size_t)n, sizeof *ops);
    double *ysum = NULL;
    uint64_t *yisum = NULL;
    if (!ops) {
        free(st);
        return ref_fail(c, "out of memory");
    }
    for (int i = 0; i < n && !rc; i++) {
        const kiln_tensor *t = c->in[i];
        if (t->dtype != dt) {
            rc = ref_fail(c, "Einsum input types differ");
            break;
        }
        int64_t m = tensor_numel(t);
        size_t es = isint ? sizeof(uint64_t) : sizeof(double);
        ops[i] = malloc((size_t)(m > 0 ? m : 1) * es);
        if (!ops[i]) {
            rc = ref_fail(c, "out of memory");
            break;
        }
        for (int64_t e = 0; e < m; e++) {
            if (isint) ((uint64_t *)ops[i])[e] = iget(dt, t->data, e);
            else ((double *)ops[i])[e] = dt_get_f64(dt, t->data, (size_t)e);
        }
    }
    if (!rc) {
        if (isint) yisum = calloc((size_t)(nout > 0 ? nout : 1), sizeof *yisum);
        else ysum = calloc((size_t)(nout > 0 ? nout : 1), sizeof *ysum);
        if (!ysum && !yisum) rc = ref_fail(c, "out of memory");
    }
    if (!rc && nsum > 0) {
        int64_t oidx[KILN_MAX_RANK] = {0};
        int64_t base[EIN_MAX_OPS] = {0};
        for (int64_t o = 0; o < nout; o++) {
            int64_t cidx[EIN_MAX_LABELS] = {0};
            int64_t off[EIN_MAX_OPS];
            memcpy(off, base, (size_t)n * sizeof *off);
            double acc = 0;
            uint64_t iacc = 0;
            for (int64_t s = 0; s < nsum; s++) {
                if (isint) {
                    uint64_t pr = 1;
                    for (int i = 0; i < n; i++) pr *= ((uint64_t *)ops[i])[off[i]];
                    iacc += pr;
                } else {
                    double pr = 1;
                    for (int i = 0; i < n; i++) pr *= ((double *)ops[i])[off[i]];
                    acc += pr;
                }
                for (int q = ncl - 1; q >= 0; q--) {
                    int l = cl[q];
                    for (int i = 0; i < n; i++) off[i] += st[i][l];
                    if (++cidx[q] < size[l]) break;
                    for (int i = 0; i < n; i++) off[i] -= st[i][l] * size[l];
                    cidx[q] = 0;
                }
            }
            if (isint) yisum[o] = iacc;
            else ysum[o] = acc;
            for (int q = sp.out_rank - 1; q >= 0; q--) {
                int l = sp.out[q];
                for (int i = 0; i < n; i++) base[i] += st[i][l];
                if (++oidx[q] < size[l]) break;
                for (int i = 0; i < n; i++) base[i] -= st[i][l] * size[l];
                oidx[q] = 0;
            }
        }
    }
    if (!rc) {
        for (int64_t o = 0; o < nout; o++) {
            if (isint) iset(dt, y->data, o, yisum[o]);
            else dt_set_f64(dt, y->data, (size_t)o, ysum[o]);
        }
    }
    for (int i = 0; i < n; i++) free(ops[i]);
    free(ops);
    free(st);
    free(ysum);
    free(yisum);
    return rc;
}

/* --------------------------------------------------------------------- Det
** LU decomposition with partial pivoting in double. */
static int k_det(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->rank < 2) return ref_fail(c, "Det input must have rank >= 2");
    int64_t n = x->dims[x->rank - 1];
    if (x->dims[x->rank - 2] != n)
        return ref_fail(c, "Det input matrices must be square");
    int64_t nb = tensor_numel(y);
    double *m = malloc((size_t)(n > 0 ? n * n : 1) * sizeof *m);
    if (!m) return ref_fail(c, "out of memory");
    for (int64_t bi = 0; bi < nb; bi++) {
        for (int64_t e = 0; e < n * n; e++)
            m[e] = dt_get_f64(x->dtype, x->data, (size_t)(bi * n * n + e));
        double det = 1.0;
        for (int64_t col = 0; col < n; col++) {
            int64_t piv = col;
            for (int64_t r = col + 1; r < n; r++)
                if (fabs(m[r * n + col]) > fabs(m[piv * n + col])) piv = r;
            if (m[piv * n + col] == 0.0) {
                det = 0.0;
                break;
            }
            if (piv != col) {
                for (int64_t k = 0; k < n; k++) {
                    double t = m[col * n + k];
                    m[col * n + k] = m[piv * n + k];
                    m[piv * n + k] = t;
                }
                det = -det;
            }
            double d = m[col * n + col];
            det *= d;
            for (int64_t r = col + 1; r < n; r++) {
                double f = m[r * n + col] / d;
                if (f == 0.0) continue;
                for (int64_t k = col; k < n; k++) m[r * n + k] -= f * m[col * n + k];
            }
        }
        dt_set_f64(y->dtype, y->data, (size_t)bi, det);
    }
    free(m);
    return 0;
}

/* --------------------------------------------------------------- Attention
** Per (batch, q head): scores = scale * Q K^T (K/V = past ++ current),
** optional softcap, + mask/causal/padding bias, softmax, times V. Heads of
** K/V are shared by groups of q heads (GQA). Computed in float32. */
typedef struct {
    int64_t B, Hq, Hkv, Sq, Skv, P, T, Dh, Dv;
    bool is3;
} attn_dims;

static int attn_get_dims(ref_ctx *c, attn_dims *d) {
    const kiln_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
    if (q->rank != k->rank || q->rank != v->rank ||
        (q->rank != 3 && q->rank != 4))
        return ref_fail(c, "Attention Q, K, V must all be 3-D or all 4-D");
    d->is3 = q->rank == 3;
    d->B = q->dims[0];
    if (k->dims[0] != d->B || v->dims[0] != d->B)
        return ref_fail(c, "Attention batch sizes differ");
    if (d->is3) {
        d->Hq = ir_attr_int(c->node, "q_num_heads", 0);
        d->Hkv = ir_attr_int(c->node, "kv_num_heads", 0);
        if (d->Hq <= 0 || d->Hkv <= 0)
            return ref_fail(c, "Attention 3-D inputs need q_num_heads and "
                            "kv_num_heads");
        if (q->dims[2] % d->Hq || k->dims[2] % d->Hkv || v->dims[2] % d->Hkv)
            return ref_fail(c, "Attention hidden sizes are not multiples of "
                            "the head counts");
        d->Sq = q->dims[1];
        d->Skv = k->dims[1];
        d->Dh = q->dims[2] / d->Hq;
        d->Dv = v->dims[2] / d->Hkv;
        if (k->dims[2] / d->Hkv != d->Dh || v->dims[1] != d->Skv)
            return ref_fail(c, "Attention K/V shapes do not match Q");
    } else {
        d->Hq = q->dims[1];
        d->Hkv = k->dims[1];
        d->Sq = q->dims[2];
        d->Skv = k->dims[2];
        d->Dh = q->dims[3];
        d->Dv = v->dims[3];
        if (k->dims[3] != d->Dh || v->dims[1] != d->Hkv ||
            v->dims[2] != d->Skv)
            return ref_fail(c, "Attention K/V shapes do not match Q");
    }
    if (d->Hkv <= 0 || d->Hq % d->Hkv)
        return ref_fail(c, "Attention q heads must be a multiple of kv heads");
    d->P = 0;
    if (ref_has(c, 4) != ref_has(c, 5))
        return ref_fail(c, "Attention past_key and past_value go together");
    if (ref_has(c, 4)) {
        const kiln_tensor *pk = c->in[4], *pv = c->in[5];
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != d->B ||
            pk->dims[1] != d->Hkv || pk->dims[3] != d->Dh ||
            pv->dims[0] != d->B || pv->dims[1] != d->Hkv ||
            pv->dims[2] != pk->dims[2] || pv->dims[3] != d->Dv)
            return ref_fail(c, "Attention past_key/past_value shapes do not "
                            "match K/V");
        d->P = pk->dims[2];
    }
    d->T = d->P + d->Skv;
    return 0;
}

static int attention_unpacked(ref_ctx *c) {
    attn_dims d = {0};
    if (attn_get_dims(c, &d)) return -1;
    const kiln_tensor *mask = ref_has(c, 3) ? c->in[3] : NULL;
    const kiln_tensor *npad = ref_has(c, 6) ? c->in[6] : NULL;
    const ir_attr *sa = ir_attr_find(c->node, "scale");
    float scale = sa ? sa->f : 1.0f / sqrtf((float)d.Dh);
    float softcap = ir_attr_float(c->node, "softcap", 0.0f);
    bool causal = ir_attr_int(c->node, "is_causal", 0) != 0;
    /* Kiln's own (passes/attention.c): a row with no live key gives 0, not
    ** NaN (a NaN cleaner on the probabilities absorbed) */
    bool dead_zero = ir_attr_int(c->node, "kiln_masked_rows_zero", 0) != 0;
    int64_t qmode = ir_attr_int(c->node, "qk_matmul_output_mode", 0);
    int64_t B = d.B, Hq = d.Hq, Hkv = d.Hkv, Sq = d.Sq, Skv = d.Skv, P = d.P,
            T = d.T, Dh = d.Dh, Dv = d.Dv, reps = Hq / Hkv;
    /* Mask broadcast to (B, Hq, Sq, mlast); columns past mlast are -inf. */
    int64_t mst[4] = {0, 0, 0, 0}, mlast = 0;
    if (mask) {
        if (mask->rank < 1 || mask->rank > 4)
            return ref_fail(c, "Attention attn_mask must have rank 1..4");
        mlast = mask->dims[mask->rank - 1];
        if (mlast > T)
            return ref_fail(c, "Attention attn_mask is longer than the total "
                            "sequence");
        int64_t want[4] = {B, Hq, Sq, mlast};
        for (int i = 0; i < mask->rank; i++) {
            int64_t md = mask->dims[i];
            if (md != 1 && md != want[4 - mask->rank + i])
                return ref_fail(c, "Attention attn_mask does not broadcast");
        }
        bcast_strides(mask->rank, mask->dims, 4, mst);
    }
    if (npad && (npad->rank != 1 || npad->dims[0] != B ||
                 npad->dtype != KILN_DTYPE_INT64))
        return ref_fail(c, "Attention nonpad_kv_seqlen must be int64 of shape "
                        "(batch_size)");
    /* Buffer sizes come from several inputs' dims: check their products. */
    int64_t nsc, nqk64;
    if (__builtin_mul_overflow(Sq, T, &nsc) ||
        __builtin_mul_overflow(nsc, B * Hq, &nqk64) ||
        (size_t)nqk64 > KILN_MAX_ALLOC / sizeof(float))
        return ref_fail(c, "Attention: score matrix of %lld x %lld per head is "
                        "too large", (long long)Sq, (long long)T);
    int rc = 0;
    f32_view vq = {0}, vk = {0}, vv = {0}, vpk = {0}, vpv = {0}, vm = {0};
    float *kt = NULL, *vt = NULL, *qb = NULL, *sc = NULL, *ob = NULL;
    float *yb = NULL, *qk = NULL;
    size_t nkt = (size_t)(B * Hkv * T * Dh), nvt = (size_t)(B * Hkv * T * Dv);
    size_t nqk = (size_t)(B * Hq * Sq * T);
    if (!view_f32(c->in[0], &vq) || !view_f32(c->in[1], &vk) ||
        !view_f32(c->in[2], &vv) ||
        (P && (!view_f32(c->in[4], &vpk) || !view_f32(c->in[5], &vpv))) ||
        (mask && mask->dtype != KILN_DTYPE_BOOL && !view_f32(mask, &vm)) ||
        !(kt = malloc((nkt ? nkt : 1) * sizeof *kt)) ||
        !(vt = malloc((nvt ? nvt : 1) * sizeof *vt)) ||
        !(qb = malloc((size_t)(Sq * Dh + 1) * sizeof *qb)) ||
        !(sc = malloc((size_t)(Sq * T + 1) * sizeof *sc)) ||
        !(ob = malloc((size_t)(Sq * Dv + 1) * sizeof *ob)) ||
        !(yb = malloc((size_t)(B * Hq * Sq * Dv + 1) * sizeof *yb)) ||
        (c->n_out > 3 && !(qk = malloc((nqk ? nqk : 1) * sizeof *qk)))) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    /* present K/V = past ++ current, in (B, Hkv, T, D) layout. */
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hkv; h++) {
            float *kd = kt + (b * Hkv + h) * T * Dh;
            float *vd = vt + (b * Hkv + h) * T * Dv;
            if (P) {
                memcpy(kd, vpk.p + (b * Hkv + h) * P * Dh,
                       (size_t)(P * Dh) * sizeof *kd);
                memcpy(vd, vpv.p + (b * Hkv + h) * P * Dv,
                       (size_t)(P * Dv) * sizeof *vd);
            }
            for (int64_t s = 0; s < Skv; s++) {
                const float *ks, *vs;
                if (d.is3) {
                    ks = vk.p + (b * Skv + s) * Hkv * Dh + h * Dh;
                    vs = vv.p + (b * Skv + s) * Hkv * Dv + h * Dv;
                } else {
                    ks = vk.p + ((b * Hkv + h) * Skv + s) * Dh;
                    vs = vv.p + ((b * Hkv + h) * Skv + s) * Dv;
                }
                memcpy(kd + (P + s) * Dh, ks, (size_t)Dh * sizeof *kd);
                memcpy(vd + (P + s) * Dv, vs, (size_t)Dv * sizeof *vd);
            }
        }
    for (int64_t b = 0; b < B; b++) {
        int64_t valid = T;
        if (npad) {
            int64_t nv = ((const int64_t *)npad->data)[b];
            valid = nv < 0 ? 0 : KILN_MIN(nv, T);
        }
        for (int64_t h = 0; h < Hq; h++) {
            int64_t kh = h / reps;
            for (int64_t i = 0; i < Sq; i++) {
                const float *qs = d.is3 ? vq.p + (b * Sq + i) * Hq * Dh + h * Dh
                                        : vq.p + ((b * Hq + h) * Sq + i) * Dh;
                memcpy(qb + i * Dh, qs, (size_t)Dh * sizeof *qb);
            }
            const float *kd = kt + (b * Hkv + kh) * T * Dh;
            const float *vd = vt + (b * Hkv + kh) * T * Dv;
            /* scores(i, t) = scale * sum_d q(i,d) k(t,d) */
            if (!sgemm(Sq, T, Dh, scale, qb, Dh, 1, kd, 1, Dh, sc, T, false)) {
                rc = ref_fail(c, "out of memory");
                goto done;
            }
            float *qko = qk ? qk + (b * Hq + h) * Sq * T : NULL;
            if (qko && qmode == 0) memcpy(qko, sc, (size_t)(Sq * T) * sizeof *sc);
            if (softcap > 0.0f)
                for (int64_t e = 0; e < Sq * T; e++)
                    sc[e] = softcap * tanhf(sc[e] / softcap);
            if (qko && qmode == 1) memcpy(qko, sc, (size_t)(Sq * T) * sizeof *sc);
            for (int64_t i = 0; i < Sq; i++) {
                float *row = sc + i * T;
                int64_t mo = b * mst[0] + h * mst[1] + i * mst[2];
                for (int64_t t = 0; t < T; t++) {
                    if (mask) {
                        if (t >= mlast) row[t] = -INFINITY;
                        else if (mask->dtype == KILN_DTYPE_BOOL) {
                            if (!((const uint8_t *)mask->data)[mo + t * mst[3]])
                                row[t] = -INFINITY;
                        } else {
                            row[t] += vm.p[mo + t * mst[3]];
                        }
                    }
                    if (causal && t > i + P) row[t] = -INFINITY;
                    if (t >= valid) row[t] = -INFINITY;
                }
            }
            if (qko && qmode == 2) memcpy(qko, sc, (size_t)(Sq * T) * sizeof *sc);
            for (int64_t i = 0; i < Sq; i++) {
                float *row = sc + i * T;
                float mx = -INFINITY;
                for (int64_t t = 0; t < T; t++) mx = row[t] > mx ? row[t] : mx;
                if (dead_zero && mx == -INFINITY) {
                    for (int64_t t = 0; t < T; t++) row[t] = 0.0f;
                    continue;
                }
                double sum = 0;
                for (int64_t t = 0; t < T; t++) {
                    row[t] = expf(row[t] - mx);
                    sum += row[t];
                }
                float inv = (float)(1.0 / sum);
                for (int64_t t = 0; t < T; t++) row[t] *= inv;
            }
            if (qko && qmode == 3) memcpy(qko, sc, (size_t)(Sq * T) * sizeof *sc);
            if (!sgemm(Sq, Dv, T, 1.0f, sc, T, 1, vd, Dv, 1, ob, Dv, false)) {
                rc = ref_fail(c, "out of memory");
                goto done;
            }
            for (int64_t i = 0; i < Sq; i++) {
                float *yd = d.is3 ? yb + (b * Sq + i) * Hq * Dv + h * Dv
                                  : yb + ((b * Hq + h) * Sq + i) * Dv;
                memcpy(yd, ob + i * Dv, (size_t)Dv * sizeof *yd);
            }
        }
    }
    if (tensor_numel(c->out[0]) != B * Hq * Sq * Dv) {
        rc = ref_fail(c, "Attention output Y has the wrong size");
        goto done;
    }
    tensor_from_f32(c->out[0], yb);
    if (c->n_out > 1 && (size_t)tensor_numel(c->out[1]) == nkt)
        tensor_from_f32(c->out[1], kt);
    if (c->n_out > 2 && (size_t)tensor_numel(c->out[2]) == nvt)
        tensor_from_f32(c->out[2], vt);
    if (qk && (size_t)tensor_numel(c->out[3]) == nqk)
        tensor_from_f32(c->out[3], qk);
done:
    free(vq.owned);
    free(vk.owned);
    free(vv.owned);
    free(vpk.owned);
    free(vpv.owned);
    free(vm.owned);
    free(kt);
    free(vt);
    free(qb);
    free(sc);
    free(ob);
    free(yb);
    free(qk);
    return rc;
}

/* The packed form (ops/attn_qkv.h): Q, K, V sliced out of input 0 into
** contiguous temporaries (this is the oracle: plain beats fast), then the
** kernel above on a copy of the context that reads them. */
static int k_attention(ref_ctx *c) {
    int64_t w[3], ld;
    int pk = attn_qkv_widths(c->node, w);
    if (pk == 0) return attention_unpacked(c);
    if (pk < 0) return ref_fail(c, "Attention: malformed %s", ATTN_QKV_ATTR);
    if (ref_has(c, 1) || ref_has(c, 2) || ref_has(c, 4) || ref_has(c, 5))
        return ref_fail(c, "packed Attention takes no separate K, V or past key/value");
    kiln_tensor view[3];
    if (!ref_has(c, 0) || !attn_qkv_split_tensor(c->in[0], w, view, &ld))
        return ref_fail(c, "Attention: packed Q/K/V input is not 3-D with last dim %lld",
                        (long long)(w[0] + w[1] + w[2]));
    kiln_tensor *part[3] = {NULL, NULL, NULL};
    const kiln_tensor *in[8] = {NULL};
    int rc = 0;
    size_t es = 0;
    dtype_nbytes(c->in[0]->dtype, 1, &es);
    int64_t rows = view[0].dims[0] * view[0].dims[1];
    for (int i = 0; i < 3; i++) {
        if (tensor_new(view[i].dtype, 3, view[i].dims, &part[i])) {
            rc = ref_fail(c, "out of memory");
            goto done;
        }
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)part[i]->data + (size_t)(r * w[i]) * es,
                   (const char *)view[i].data + (size_t)(r * ld) * es, (size_t)w[i] * es);
    }
    if (c->n_in > 8) {
        rc = ref_fail(c, "Attention has too many inputs");
        goto done;
    }
    for (int i = 0; i < c->n_in; i++) in[i] = c->in[i];
    for (int i = 0; i < 3; i++) in[i] = part[i];
    ref_ctx sub = *c;
    sub.in = in;
    sub.n_in = KILN_MAX(c->n_in, 3);
    sub.n_implicit = 0;
    rc = attention_unpacked(&sub);
    if (rc) memcpy(c->err, sub.err, sizeof c->err);
done:
    for (int i = 0; i < 3; i++) kiln_tensor_destroy(part[i]);
    return rc;
}

/* --------------------------------------------------------- RotaryEmbedding
** Rotates the first rotary_dim features of every head: pairs are either
** (i, i + dim/2) or (2i, 2i+1) when interleaved. */
static int k_rotary(ref_ctx *c) {
    const kiln_tensor *x = c->in[0], *cs = c->in[1], *sn = c->in[2];
    const kiln_tensor *pos = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *y = c->out[0];
    bool inter = ir_attr_int(c->node, "interleaved", 0) != 0;
    int64_t nh_attr = ir_attr_int(c->node, "num_heads", 0);
    int64_t rd = ir_attr_int(c->node, "rotary_embedding_dim", 0);
    int64_t B, S, H, D;
    bool is3 = x->rank == 3;
    if (x->rank == 4) {
        B = x->dims[0];
        H = x->dims[1];
        S = x->dims[2];
        D = x->dims[3];
    } else if (is3) {
        if (nh_attr <= 0 || x->dims[2] % nh_attr)
            return ref_fail(c, "RotaryEmbedding 3-D input needs num_heads "
                            "dividing the hidden size");
        B = x->dims[0];
        S = x->dims[1];
        H = nh_attr;
        D = x->dims[2] / nh_attr;
    } else {
        return ref_fail(c, "RotaryEmbedding input must be 3-D or 4-D");
    }
    if (rd == 0) rd = D;
    if (rd < 0 || rd > D || rd % 2)
        return ref_fail(c, "RotaryEmbedding rotary dim %lld is invalid for "
                        "head size %lld", (long long)rd, (long long)D);
    int64_t half = rd / 2, maxpos = 0;
    if (cs->rank != sn->rank || !shape_equal(cs->rank, cs->dims, sn->rank, sn->dims))
        return ref_fail(c, "RotaryEmbedding cos and sin caches differ in shape");
    if (pos) {
        if (pos->rank != 2 || pos->dims[0] != B || pos->dims[1] != S ||
            pos->dtype != KILN_DTYPE_INT64)
            return ref_fail(c, "RotaryEmbedding position_ids must be int64 "
                            "(batch, sequence)");
        if (cs->rank != 2 || cs->dims[1] != half)
            return ref_fail(c, "RotaryEmbedding caches must be (positions, %lld)",
                            (long long)half);
        maxpos = cs->dims[0];
    } else if (cs->rank != 3 || cs->dims[0] != B || cs->dims[1] != S ||
               cs->dims[2] != half) {
        return ref_fail(c, "RotaryEmbedding caches must be (%lld, %lld, %lld) "
                        "without position_ids", (long long)B, (long long)S,
                        (long long)half);
    }
    int rc = 0;
    f32_view vx = {0}, vc = {0}, vs = {0};
    float *yb = NULL;
    bool yown = false;
    if (!view_f32(x, &vx) || !view_f32(cs, &vc) || !view_f32(sn, &vs) ||
        !(yb = out_f32(y, &yown))) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < B && !rc; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t row = b * S + s;
            if (pos) {
                int64_t p = ((const int64_t *)pos->data)[b * S + s];
                if (p < 0 || p >= maxpos) {
                    rc = ref_fail(c, "RotaryEmbedding position id %lld is out "
                                  "of range [0, %lld)", (long long)p,
                                  (long long)maxpos);
                    break;
                }
                row = p;
            }
            const float *cr = vc.p + row * half, *sr = vs.p + row * half;
            for (int64_t h = 0; h < H; h++) {
                int64_t o = is3 ? (b * S + s) * H * D + h * D
                                : ((b * H + h) * S + s) * D;
                const float *xi = vx.p + o;
                float *yo = yb + o;
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = inter ? 2 * i : i;
                    int64_t i2 = inter ? 2 * i + 1 : i + half;
                    float x1 = xi[i1], x2 = xi[i2];
                    yo[i1] = cr[i] * x1 - sr[i] * x2;
                    yo[i2] = sr[i] * x1 + cr[i] * x2;
                }
                for (int64_t i = rd; i < D; i++) yo[i] = xi[i];
            }
        }
done:
    if (yb) {
        if (rc && yown) free(yb);
        else out_f32_done(y, yb, yown);
    }
    free(vx.owned);
    free(vc.owned);
    free(vs.owned);
    return rc;
}

const ref_kernel ref_kernels_linalg[] = {
    {OP_MatMul, k_matmul},
    {OP_Gemm, k_gemm},
    {OP_Einsum, k_einsum},
    {OP_Det, k_det},
    {OP_Attention, k_attention},
    {OP_RotaryEmbedding, k_rotary},
    {OP_NONE, NULL},
};
