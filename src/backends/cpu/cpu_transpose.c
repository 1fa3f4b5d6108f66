/* cpu_transpose.c: a threaded, cache-blocked Transpose tactic for 1, 2, 4
** and 8 byte elements (ViT and GPT-2 exports move heads around with it).
** Dims that stay adjacent in both layouts are merged and size-1 dims
** dropped first; then either the innermost output run is contiguous in the
** input (rows are copied with memcpy) or it is a true transpose between
** the output's innermost dim and the dim that is innermost in the input,
** done in 32 x 32 tiles so both sides stream through whole cache lines.
** Portable C: the tiles are plain copies the compiler vectorizes. */
#include "cpu_tactics.h"
#include "cpu_gemm.h"

enum { TR_TILE = 32, TR_TASK_ELEMS = 32768 };

static size_t tr_elem(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_BOOL:
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ:
        return 1;
    case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16: case KILN_DTYPE_FLOAT16:
    case KILN_DTYPE_BFLOAT16:
        return 2;
    case KILN_DTYPE_FLOAT32: case KILN_DTYPE_INT32: case KILN_DTYPE_UINT32:
        return 4;
    case KILN_DTYPE_FLOAT64: case KILN_DTYPE_INT64: case KILN_DTYPE_UINT64:
        return 8;
    default: return 0; /* strings, packed 4-bit types, complex: the reference */
    }
}

static bool tr_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in != 1 || n->n_out != 1 || !in[0] || !tr_elem(in[0]->dtype)) return false;
    int np;
    const int64_t *p = ir_attr_ints(n, "perm", &np);
    return !p || np == in[0]->rank;
}

typedef struct {
    const char *x;
    char *y;
    size_t es;
    int rank;                       /* coalesced output dims */
    int64_t od[KILN_MAX_RANK];      /* output dims */
    int64_t is[KILN_MAX_RANK];      /* input stride of each output dim */
    int jd;                         /* output dim with input stride 1, or -1 */
    int64_t nt_j, nt_l;             /* tiles along dim jd and the last dim */
    int64_t outer, per, ntasks;     /* outer = output rows / tiled blocks */
} tr_job;

static inline void tr_copy(char *d, const char *s, size_t es) {
    switch (es) {
    case 1: *d = *s; break;
    case 2: memcpy(d, s, 2); break;
    case 4: memcpy(d, s, 4); break;
    default: memcpy(d, s, 8); break;
    }
}

/* Output offset (elements) and input offset of outer index o over the
** output dims other than `skip` and the last. */
static void tr_outer(const tr_job *J, int64_t o, int skip, int64_t *yo, int64_t *xo) {
    int64_t yoff = 0, xoff = 0;
    int last = J->rank - 1;
    int64_t ys = J->od[last];
    for (int d = last - 1; d >= 0; d--) {
        if (d != skip) {
            int64_t q = o % J->od[d];
            o /= J->od[d];
            yoff += q * ys;
            xoff += q * J->is[d];
        }
        ys *= J->od[d];
    }
    *yo = yoff;
    *xo = xoff;
}

static int64_t tr_ystride(const tr_job *J, int d) {
    int64_t s = 1;
    for (int k = J->rank - 1; k > d; k--) s *= J->od[k];
    return s;
}

static void tr_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const tr_job *J = arg;
    const size_t es = J->es;
    const int last = J->rank - 1;
    int64_t u0 = t * J->per, u1 = KILN_MIN(J->outer, u0 + J->per);
    if (J->jd < 0) {
        /* the innermost output run is contiguous in the input */
        size_t row = (size_t)J->od[last] * es;
        for (int64_t u = u0; u < u1; u++) {
            int64_t yo, xo;
            tr_outer(J, u, -1, &yo, &xo);
            memcpy(J->y + (size_t)yo * es, J->x + (size_t)xo * es, row);
        }
        return;
    }
    const int jd = J->jd;
    const int64_t L = J->od[last], Jn = J->od[jd];
    const int64_t ysj = tr_ystride(J, jd), xsl = J->is[last];
    const int64_t tiles = J->nt_j * J->nt_l;
    for (int64_t u = u0; u < u1; u++) {
        int64_t o = u / tiles, tt = u % tiles;
        int64_t a0 = (tt / J->nt_l) * TR_TILE, b0 = (tt % J->nt_l) * TR_TILE;
        int64_t a1 = KILN_MIN(Jn, a0 + TR_TILE), b1 = KILN_MIN(L, b0 + TR_TILE);
        int64_t yo, xo;
        tr_outer(J, o, jd, &yo, &xo);
        /* y[a*ysj + b] = x[a + b*xsl]: read down input rows (contiguous
        ** along a) and write along output rows (contiguous along b) */
        for (int64_t a = a0; a < a1; a++) {
            char *yr = J->y + (size_t)(yo + a * ysj) * es;
            const char *xr = J->x + (size_t)(xo + a) * es;
            if (es == 4) {
                uint32_t *y4 = (uint32_t *)(void *)yr;
                const uint32_t *x4 = (const uint32_t *)(const void *)xr;
                for (int64_t b = b0; b < b1; b++) y4[b] = x4[b * xsl];
            } else {
                for (int64_t b = b0; b < b1; b++)
                    tr_copy(yr + (size_t)b * es, xr + (size_t)(b * xsl) * es, es);
            }
        }
    }
}

static int tr_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    int r = x->rank, perm[KILN_MAX_RANK], np;
    const int64_t *p = ir_attr_ints(c->node, "perm", &np);
    if (p && np != r) return ref_fail(c, "perm length %d != rank %d", np, r);
    size_t es = tr_elem(x->dtype);
    if (!es) return ref_fail(c, "this tactic does not move %s", kiln_dtype_name(x->dtype));
    int64_t od[KILN_MAX_RANK], xs[KILN_MAX_RANK];
    bool seen[KILN_MAX_RANK] = {false};
    for (int k = 0; k < r; k++) {
        perm[k] = p ? (int)p[k] : r - 1 - k;
        if (perm[k] < 0 || perm[k] >= r || seen[perm[k]]) return ref_fail(c, "bad perm");
        seen[perm[k]] = true;
        od[k] = x->dims[perm[k]];
    }
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == x->dtype && shape_equal(Y->rank, Y->dims, r, od)) &&
        ref_alloc_out(c, 0, x->dtype, r, od))
        return -1;
    int64_t numel = tensor_numel(x);
    if (numel <= 0) return 0;
    shape_strides(r, x->dims, xs);
    tr_job J;
    memset(&J, 0, sizeof J);
    J.x = x->data;
    J.y = c->out[0]->data;
    J.es = es;
    /* coalesce output dims: drop 1s, merge k into the previous when the
    ** input steps through both as one */
    for (int k = 0; k < r; k++) {
        int64_t d = od[k], s = xs[perm[k]];
        if (d == 1) continue;
        if (J.rank > 0 && J.is[J.rank - 1] == s * d) {
            J.od[J.rank - 1] *= d;
            J.is[J.rank - 1] = s;
            continue;
        }
        J.od[J.rank] = d;
        J.is[J.rank] = s;
        J.rank++;
    }
    if (J.rank == 0) J.od[0] = 1, J.is[0] = 1, J.rank = 1;
    int last = J.rank - 1;
    J.jd = -1;
    if (J.is[last] != 1)
        for (int d = 0; d < last; d++)
            if (J.is[d] == 1) J.jd = d;
    if (J.jd < 0 && J.is[last] != 1) return ref_fail(c, "internal: no unit-stride dim");
    if (J.jd < 0) {
        J.outer = numel / J.od[last];
        J.per = KILN_MAX(1, TR_TASK_ELEMS / J.od[last]);
    } else {
        J.nt_j = (J.od[J.jd] + TR_TILE - 1) / TR_TILE;
        J.nt_l = (J.od[last] + TR_TILE - 1) / TR_TILE;
        J.outer = numel / (J.od[last] * J.od[J.jd]) * J.nt_j * J.nt_l;
        J.per = KILN_MAX(1, TR_TASK_ELEMS / (TR_TILE * TR_TILE));
    }
    int threads = cpu_threads_for(2.0 * (double)numel * (double)es);
    if (threads > 1) J.per = KILN_MIN(J.per, KILN_MAX(1, J.outer / (4 * threads)));
    cpu_parallel_for((J.outer + J.per - 1) / J.per, threads, 0, NULL, tr_task, &J);
    return 0;
}

const kiln_tactic cpu_t_transpose_c = {
    "any_transpose_tile32_c", OP_Transpose, 0, TACTIC_OVERWRITES_OUTPUT,
    tr_supports, NULL, tr_run,
};
