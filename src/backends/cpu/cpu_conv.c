/* cpu_conv.c: float32 Conv / FusedConv tactics. The general one is im2col +
** the packed GEMM per (image, group): weights are A [Cout/G, Cin/G*k], the
** input columns B are gathered straight into the microkernel's panels (no
** column buffer), and a pointwise conv reads its input as B directly; the
** bias, residual and activation run in the GEMM epilogue. Depthwise convs
** (group == Cin == Cout) also get a direct per-plane tactic. */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "../../ops/conv_window.h"

/* Geometry normalized to three spatial dims (1-D and 2-D convs get leading
** unit dims). */
typedef struct conv_info {
    cpu_im2col g;   /* the im2col packers' context */
    int64_t N, C, M, G, Cg, Mg, Kg, P, in_plane;
    int64_t id, ih, iw, od, oh, ow, kd, kh, kw;
    int64_t sd, sh, sw, dd, dh, dw, pd, ph, pw;
    bool pointwise; /* 1x1, stride 1, no padding: X is B as is */
    cpu_bpack_fn im2col;
    const float *x, *w, *b, *z;
    const float *w_pre; /* W packed at build time (per group), or NULL */
    size_t w_pre_group; /* floats per group in w_pre */
    float *y;
    cpu_epi epi;
} conv_info;

static bool is_f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

static bool conv_supports(const ir_node *n, const ir_type *const *in) {
    const ir_type *x = in[0], *w = n->n_in > 1 ? in[1] : NULL;
    if (!is_f32(x) || !is_f32(w) || x->rank != w->rank || x->rank < 3 ||
        x->rank > 5)
        return false;
    if (n->n_in > 2 && in[2] && !is_f32(in[2])) return false;
    if (n->op == OP_FusedConv) {
        if (n->n_in > 3 && in[3] && !is_f32(in[3])) return false;
        fused_act a;
        if (!fused_act_read(n, &a, NULL, 0)) return false;
    }
    return ir_attr_int(n, "group", 1) >= 1;
}

/* Group == Cin == Cout with one filter per channel, known statically. */
static bool dw_supports(const ir_node *n, const ir_type *const *in) {
    if (!conv_supports(n, in)) return false;
    const ir_type *x = in[0], *w = in[1];
    int64_t G = ir_attr_int(n, "group", 1);
    return x->rank <= 4 && G > 1 && x->dims[1] == G && w->dims[0] == G &&
           w->dims[1] == 1;
}

/* Reads the node's inputs and geometry and makes the output. */
static int conv_prepare(ref_ctx *c, conv_info *ci) {
    const kiln_tensor *X = c->in[0], *W = c->in[1];
    const kiln_tensor *B = ref_has(c, 2) ? c->in[2] : NULL;
    const kiln_tensor *Z = c->node->op == OP_FusedConv && ref_has(c, 3) ? c->in[3] : NULL;
    memset(ci, 0, sizeof *ci);
    int r = X->rank, nsp = r - 2;
    if (r < 3 || r > 5 || W->rank != r)
        return ref_fail(c, "X and W must have the same rank, 3 to 5");
    if (X->dtype != KILN_DTYPE_FLOAT32 || W->dtype != KILN_DTYPE_FLOAT32 ||
        (B && B->dtype != KILN_DTYPE_FLOAT32) || (Z && Z->dtype != KILN_DTYPE_FLOAT32))
        return ref_fail(c, "this tactic handles float32 only");
    if (!fused_act_read(c->node, &ci->epi.act, c->err, sizeof c->err)) return -1;
    int64_t G = ir_attr_int(c->node, "group", 1);
    if (G < 1) return ref_fail(c, "group must be >= 1");
    conv_window win;
    conv_geom g;
    if (conv_window_read(c->node, nsp, W->dims + 2, CW_DILATIONS | CW_AUTO_PAD,
                         &win, c->err, sizeof c->err) ||
        conv_geom_forward(&win, X->dims + 2, &g, c->err, sizeof c->err))
        return -1;
    int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0], wcg;
    if (__builtin_mul_overflow(W->dims[1], G, &wcg) || C != wcg || M % G)
        return ref_fail(c, "channel counts do not match the group");
    if (B && (B->rank != 1 || B->dims[0] != M))
        return ref_fail(c, "B must have %lld values", (long long)M);
    int64_t dims[KILN_MAX_RANK];
    dims[0] = N;
    dims[1] = M;
    memcpy(dims + 2, g.grid, (size_t)nsp * sizeof *dims);
    if (Z && !shape_equal(Z->rank, Z->dims, r, dims))
        return ref_fail(c, "Z must have the conv output's shape");
    kiln_tensor *Y = c->out[0];
    if (!(Y->data && Y->dtype == KILN_DTYPE_FLOAT32 &&
          shape_equal(Y->rank, Y->dims, r, dims)) &&
        ref_alloc_out(c, 0, KILN_DTYPE_FLOAT32, r, dims))
        return -1;
    /* Spatial dims right-aligned into (d, h, w). */
    int64_t one3[3] = {1, 1, 1}, zero3[3] = {0, 0, 0};
    int64_t img[3], grid[3], k[3], s[3], d[3], pb[3];
    memcpy(img, one3, sizeof img);
    memcpy(grid, one3, sizeof grid);
    memcpy(k, one3, sizeof k);
    memcpy(s, one3, sizeof s);
    memcpy(d, one3, sizeof d);
    memcpy(pb, zero3, sizeof pb);
    bool pointwise = true;
    for (int i = 0; i < nsp; i++) {
        int q = 3 - nsp + i;
        img[q] = g.img[i];
        grid[q] = g.grid[i];
        k[q] = g.k[i];
        s[q] = g.s[i];
        d[q] = g.d[i];
        pb[q] = g.pb[i];
        if (g.k[i] != 1 || g.s[i] != 1 || g.pb[i] != 0 || g.grid[i] != g.img[i])
            pointwise = false;
    }
    ci->N = N;
    ci->C = C;
    ci->M = M;
    ci->G = G;
    ci->Cg = C / G;
    ci->Mg = M / G;
    ci->id = img[0], ci->ih = img[1], ci->iw = img[2];
    ci->od = grid[0], ci->oh = grid[1], ci->ow = grid[2];
    ci->kd = k[0], ci->kh = k[1], ci->kw = k[2];
    ci->sd = s[0], ci->sh = s[1], ci->sw = s[2];
    ci->dd = d[0], ci->dh = d[1], ci->dw = d[2];
    ci->pd = pb[0], ci->ph = pb[1], ci->pw = pb[2];
    ci->Kg = ci->Cg * k[0] * k[1] * k[2];
    ci->P = grid[0] * grid[1] * grid[2];
    ci->in_plane = img[0] * img[1] * img[2];
    ci->pointwise = pointwise;
    cpu_im2col ig = {ci->id, ci->ih, ci->iw, ci->od, ci->oh, ci->ow, ci->kd, ci->kh,
                     ci->kw, ci->sd, ci->sh, ci->sw, ci->dd, ci->dh, ci->dw, ci->pd,
                     ci->ph, ci->pw, ci->in_plane};
    ci->g = ig;
    ci->x = X->data;
    ci->w = W->data;
    ci->b = B ? B->data : NULL;
    ci->z = Z ? Z->data : NULL;
    ci->y = Y->data;
    ci->epi.alpha = 1.0f;
    ci->epi.beta = 1.0f;
    return 0;
}

/* ------------------------------------------------------- im2col packing */
/* Appends values to a row of B panels, moving to the next panel every nr. */
typedef struct panel_writer {
    float *d;       /* current panel row */
    int64_t step;   /* floats between panels (kc * nr) */
    int nr, lane;
} panel_writer;

static inline void pw_zeros(panel_writer *w, int64_t n) {
    while (n > 0) {
        int m = (int)KILN_MIN(n, (int64_t)(w->nr - w->lane));
        memset(w->d + w->lane, 0, (size_t)m * sizeof(float));
        n -= m;
        if ((w->lane += m) == w->nr) w->lane = 0, w->d += w->step;
    }
}

static inline void pw_copy(panel_writer *w, const float *src, int64_t n) {
    while (n > 0) {
        int m = (int)KILN_MIN(n, (int64_t)(w->nr - w->lane));
        memcpy(w->d + w->lane, src, (size_t)m * sizeof(float));
        src += m;
        n -= m;
        if ((w->lane += m) == w->nr) w->lane = 0, w->d += w->step;
    }
}

static inline void pw_strided(panel_writer *w, const float *src, int64_t s,
                              int64_t n) {
    while (n > 0) {
        int m = (int)KILN_MIN(n, (int64_t)(w->nr - w->lane));
        float *d = w->d + w->lane;
        for (int q = 0; q < m; q++) d[q] = src[q * s];
        src += m * s;
        n -= m;
        if ((w->lane += m) == w->nr) w->lane = 0, w->d += w->step;
    }
}

/* Columns [lo, hi) of a run of n outputs starting at ox whose input column
** ox*s + off falls inside [0, iw). */
static void valid_cols(int64_t ox, int64_t n, int64_t s, int64_t off,
                       int64_t iw, int64_t *lo, int64_t *hi) {
    int64_t o = ox * s + off; /* input column of the run's first output */
    int64_t l = o >= 0 ? 0 : (-o + s - 1) / s;
    int64_t h = iw - 1 - o < 0 ? 0 : (iw - 1 - o) / s + 1;
    *lo = KILN_MIN(l, n);
    *hi = KILN_MAX(KILN_MIN(h, n), *lo);
}

void cpu_im2col_pack_c(const void *ctx, const float *x, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, int nr, float *dst) {
    const cpu_im2col *ci = ctx;
    int64_t ksz = ci->kd * ci->kh * ci->kw, khw = ci->kh * ci->kw;
    int64_t ohw = ci->oh * ci->ow, ihw = ci->ih * ci->iw;
    int64_t oz0 = j0 / ohw, oy0 = j0 % ohw / ci->ow, ox0 = j0 % ci->ow;
    for (int64_t kk = 0; kk < kc; kk++) {
        int64_t k = k0 + kk, ch = k / ksz, t = k % ksz;
        int64_t tz = t / khw, ty = t / ci->kw % ci->kh, tx = t % ci->kw;
        const float *xc = x + ch * ci->in_plane;
        int64_t xoff = tx * ci->dw - ci->pw;
        panel_writer w = {dst + kk * nr, kc * nr, nr, 0};
        int64_t oz = oz0, oy = oy0, ox = ox0, left = nc;
        while (left > 0) {
            int64_t run = KILN_MIN(ci->ow - ox, left);
            int64_t iz = oz * ci->sd - ci->pd + tz * ci->dd;
            int64_t iy = oy * ci->sh - ci->ph + ty * ci->dh;
            if (iz < 0 || iz >= ci->id || iy < 0 || iy >= ci->ih) {
                pw_zeros(&w, run);
            } else {
                const float *row = xc + iz * ihw + iy * ci->iw;
                int64_t lo, hi;
                valid_cols(ox, run, ci->sw, xoff, ci->iw, &lo, &hi);
                pw_zeros(&w, lo);
                const float *src = row + (ox + lo) * ci->sw + xoff;
                if (ci->sw == 1) pw_copy(&w, src, hi - lo);
                else pw_strided(&w, src, ci->sw, hi - lo);
                pw_zeros(&w, run - hi);
            }
            left -= run;
            ox += run;
            if (ox == ci->ow) {
                ox = 0;
                if (++oy == ci->oh) oy = 0, oz++;
            }
        }
        if (w.lane) pw_zeros(&w, nr - w.lane);
    }
}

/* ------------------------------------------------------ im2col + GEMM */
static void conv_get(const void *ctx, int64_t idx, cpu_gemm_prob *p) {
    const conv_info *ci = ctx;
    int64_t n = idx / ci->G, g = idx % ci->G;
    /* W's data is NULL in an engine that keeps only the packed copy */
    p->a = ci->w ? ci->w + g * ci->Mg * ci->Kg : NULL;
    p->a_rs = ci->Kg;
    p->a_cs = 1;
    p->a_pre = ci->w_pre ? ci->w_pre + (size_t)g * ci->w_pre_group : NULL;
    p->b = ci->x + (n * ci->C + g * ci->Cg) * ci->in_plane;
    if (ci->pointwise) {
        p->b_rs = ci->P;
        p->b_cs = 1;
        p->bpack = NULL;
    } else {
        p->b_rs = p->b_cs = 0;
        p->bpack = ci->im2col;
        p->bpack_ctx = &ci->g;
    }
    int64_t yoff = (n * ci->M + g * ci->Mg) * ci->P;
    p->y = ci->y + yoff;
    p->ldy = ci->P;
    p->epi = ci->epi;
    if (ci->b) {
        p->epi.c = ci->b + g * ci->Mg;
        p->epi.c_rs = 1;
        p->epi.c_cs = 0;
    }
    if (ci->z) {
        p->epi.z = ci->z + yoff;
        p->epi.z_ld = ci->P;
    }
}

/* Static GEMM sizes of a conv node (-1 where unknown). */
static void conv_gemm_dims(const ir_node *n, const ir_type *const *in,
                           int64_t *M, int64_t *Nn, int64_t *K) {
    const ir_type *x = in[0], *w = in[1];
    int nsp = x->rank - 2;
    int64_t G = ir_attr_int(n, "group", 1), k = 1;
    *M = *Nn = *K = -1;
    if (G < 1 || w->rank != x->rank) return;
    if (w->dims[0] >= 0) *M = w->dims[0] / G;
    conv_window win;
    if (conv_window_read(n, nsp, w->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win,
                         NULL, 0) == 0) {
        for (int i = 0; i < nsp; i++) k *= win.k[i];
        if (w->dims[1] >= 0 && win.kernel_known) *K = w->dims[1] * k;
        bool known = true;
        for (int i = 0; i < nsp; i++) known = known && x->dims[2 + i] >= 0;
        conv_geom g;
        if (known && conv_geom_forward(&win, x->dims + 2, &g, NULL, 0) == 0) {
            int64_t p = 1;
            for (int i = 0; i < nsp; i++) p *= g.grid[i];
            *Nn = p;
        }
    }
}

static size_t conv_ws(const cpu_gemm_kernel *k, const ir_node *n,
                      const ir_type *const *in) {
    int64_t M, N, K;
    conv_gemm_dims(n, in, &M, &N, &K);
    return cpu_gemm_workspace(k, M, N, K);
}

/* The weights as GEMM A operands: G matrices of Mg x Kg, row-major. A
** group of one output channel (depthwise) is not worth a blob. */
static bool conv_const_w(const ir_node *n, const kiln_tensor *W, int64_t *G,
                         int64_t *Mg, int64_t *Kg) {
    if (!W || W->dtype != KILN_DTYPE_FLOAT32 || W->rank < 3 || W->rank > 5) return false;
    *G = ir_attr_int(n, "group", 1);
    if (*G < 1 || W->dims[0] % *G) return false;
    *Mg = W->dims[0] / *G;
    *Kg = 1;
    for (int i = 1; i < W->rank; i++) *Kg *= W->dims[i];
    return *Mg > 1 && *Kg > 0;
}

static kiln_status conv_prepare_blob(const cpu_gemm_kernel *k, const ir_node *n,
                                     const kiln_tensor *const *cin, void **blob,
                                     size_t *bytes) {
    int64_t G, Mg, Kg;
    *blob = NULL;
    *bytes = 0;
    if (n->n_in < 2 || !conv_const_w(n, cin[1], &G, &Mg, &Kg)) return KILN_OK;
    size_t per = cpu_gemm_packed_a_floats(k, Mg, Kg), total;
    if (kiln_mul_overflow(per, (size_t)G, &total))
        return kiln_error(KILN_UNSUPPORTED, "weights too large to pack");
    uint8_t *b = cpu_pack_blob_new(k, CPU_PACK_A, Mg, Kg, G, total, bytes);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing weights");
    float *dst = (float *)(b + CPU_PACK_HDR);
    const float *w = cin[1]->data;
    for (int64_t g = 0; g < G; g++)
        cpu_gemm_prepack_a(k, w + g * Mg * Kg, Kg, 1, Mg, Kg, dst + (size_t)g * per);
    *blob = b;
    return KILN_OK;
}

static int conv_gemm_run(ref_ctx *c, const cpu_gemm_kernel *k) {
    conv_info ci;
    if (conv_prepare(c, &ci)) return -1;
    if (ci.N == 0 || ci.M == 0 || ci.P == 0) return 0;
    if (!c->blob && !ci.w && c->in[1]->nbytes)
        return ref_fail(c, "W is stored only as prepared weights, which this layer "
                        "lacks: rebuild the engine");
    if (c->blob) {
        int64_t G, Mg, Kg;
        if (!conv_const_w(c->node, c->in[1], &G, &Mg, &Kg) || G != ci.G ||
            Mg != ci.Mg || Kg != ci.Kg)
            return ref_fail(c, "prepared weights do not match W: rebuild the engine");
        ci.w_pre_group = cpu_gemm_packed_a_floats(k, Mg, Kg);
        if (cpu_pack_blob_get(c, k, CPU_PACK_A, Mg, Kg, G,
                              ci.w_pre_group * (size_t)G, &ci.w_pre))
            return -1;
    }
    /* The vector packers index a row with 32-bit lane offsets. */
    ci.im2col = k->im2col && ci.iw < INT32_MAX / 2 && ci.sw < INT32_MAX / 64
                    ? k->im2col : cpu_im2col_pack_c;
    cpu_gemm_job job = {ci.Mg, ci.P, ci.Kg, ci.N * ci.G, conv_get, &ci};
    return cpu_gemm_run(c, k, &job);
}

static bool sup_avx512(const ir_node *n, const ir_type *const *in) {
    return cpu_gemm_kernel_avx512.available && conv_supports(n, in);
}
static bool sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_gemm_kernel_avx2.available && conv_supports(n, in);
}
static size_t ws_avx512(const ir_node *n, const ir_type *const *in) {
    return conv_ws(&cpu_gemm_kernel_avx512, n, in);
}
static size_t ws_avx2(const ir_node *n, const ir_type *const *in) {
    return conv_ws(&cpu_gemm_kernel_avx2, n, in);
}
static size_t ws_c(const ir_node *n, const ir_type *const *in) {
    return conv_ws(&cpu_gemm_kernel_c, n, in);
}
static kiln_status prep_avx512(const ir_node *n, const ir_type *const *in,
                               const kiln_tensor *const *cin, void **b, size_t *sz) {
    return conv_prepare_blob(&cpu_gemm_kernel_avx512, n, cin, b, sz);
}
static kiln_status prep_avx2(const ir_node *n, const ir_type *const *in,
                             const kiln_tensor *const *cin, void **b, size_t *sz) {
    return conv_prepare_blob(&cpu_gemm_kernel_avx2, n, cin, b, sz);
}
static kiln_status prep_c(const ir_node *n, const ir_type *const *in,
                          const kiln_tensor *const *cin, void **b, size_t *sz) {
    return conv_prepare_blob(&cpu_gemm_kernel_c, n, cin, b, sz);
}
static int run_avx512(ref_ctx *c) { return conv_gemm_run(c, &cpu_gemm_kernel_avx512); }
static int run_avx2(ref_ctx *c) { return conv_gemm_run(c, &cpu_gemm_kernel_avx2); }
static int run_c(ref_ctx *c) { return conv_gemm_run(c, &cpu_gemm_kernel_c); }

#define ISA_AVX2 (KILN_ISA_AVX2 | KILN_ISA_FMA)
#define ISA_AVX512 (KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)
#define OW TACTIC_OVERWRITES_OUTPUT

const kiln_tactic cpu_t_conv_gemm_avx512 = {"f32_conv_im2col_gemm_8x32_avx512",
    OP_Conv, ISA_AVX512, OW, sup_avx512, ws_avx512, run_avx512, prep_avx512, 1u << 1};
const kiln_tactic cpu_t_conv_gemm_avx2 = {"f32_conv_im2col_gemm_6x16_avx2",
    OP_Conv, ISA_AVX2, OW, sup_avx2, ws_avx2, run_avx2, prep_avx2, 1u << 1};
const kiln_tactic cpu_t_conv_gemm_c = {"f32_conv_im2col_gemm_4x8_c",
    OP_Conv, 0, OW, conv_supports, ws_c, run_c, prep_c, 1u << 1};
const kiln_tactic cpu_t_fconv_gemm_avx512 = {"f32_fused_conv_im2col_gemm_8x32_avx512",
    OP_FusedConv, ISA_AVX512, OW, sup_avx512, ws_avx512, run_avx512, prep_avx512, 1u << 1};
const kiln_tactic cpu_t_fconv_gemm_avx2 = {"f32_fused_conv_im2col_gemm_6x16_avx2",
    OP_FusedConv, ISA_AVX2, OW, sup_avx2, ws_avx2, run_avx2, prep_avx2, 1u << 1};
const kiln_tactic cpu_t_fconv_gemm_c = {"f32_fused_conv_im2col_gemm_4x8_c",
    OP_FusedConv, 0, OW, conv_supports, ws_c, run_c, prep_c, 1u << 1};

/* ---------------------------------------------------------- depthwise */
typedef struct dw_run {
    const conv_info *ci;
    cpu_dw_fn fn;
    int64_t per_task; /* planes per task */
    cpu_epi *epi;     /* per image */
} dw_run;

static size_t dw_scratch_bytes(int64_t ih, int64_t iw, int64_t ow, int64_t kw,
                               int64_t sw, int64_t dw, int64_t pw) {
    return (size_t)cpu_dw_scratch_floats(ih, iw, ow, kw, sw, dw, pw) * sizeof(float) + 64;
}

static void dw_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const dw_run *r = arg;
    const conv_info *ci = r->ci;
    int64_t total = ci->N * ci->C;
    for (int64_t q = t * r->per_task; q < KILN_MIN(total, (t + 1) * r->per_task); q++) {
        int64_t n = q / ci->C, ch = q % ci->C;
        cpu_dw_plane p = {
            ci->x + q * ci->in_plane, ci->w + ch * ci->kh * ci->kw,
            ci->y + q * ci->P, ci->ih, ci->iw, ci->oh, ci->ow, ci->kh, ci->kw,
            ci->sh, ci->sw, ci->dh, ci->dw, ci->ph, ci->pw,
            r->epi ? &r->epi[n] : NULL, ch,
            cpu_align64(scratch),
        };
        r->fn(&p);
    }
}

static int dw_conv_run(ref_ctx *c, cpu_dw_fn fn) {
    conv_info ci;
    if (conv_prepare(c, &ci)) return -1;
    if (ci.G != ci.C || ci.M != ci.C || ci.Cg != 1 || ci.kd != 1 || ci.id != 1)
        return ref_fail(c, "not a 1-D/2-D depthwise conv");
    if (ci.N == 0 || ci.C == 0 || ci.P == 0) return 0;
    bool need_epi = ci.b || ci.z || ci.epi.act.kind != FUSED_ACT_NONE;
    cpu_epi *epi = NULL;
    if (need_epi) {
        size_t bytes;
        if (kiln_mul_overflow((size_t)ci.N, sizeof *epi, &bytes) ||
            !(epi = malloc(bytes)))
            return ref_fail(c, "out of memory");
        for (int64_t n = 0; n < ci.N; n++) {
            epi[n] = ci.epi;
            if (ci.b) epi[n].c = ci.b, epi[n].c_rs = 1, epi[n].c_cs = 0;
            if (ci.z) epi[n].z = ci.z + n * ci.C * ci.P, epi[n].z_ld = ci.P;
        }
    }
    int64_t planes = ci.N * ci.C;
    /* Depthwise runs far below GEMM speed per flop: weigh it up so threads
    ** start at a similar amount of time. */
    double flops = 16.0 * (double)planes * (double)ci.P * (double)(ci.kh * ci.kw);
    int T = cpu_threads_for(flops);
    size_t per = dw_scratch_bytes(ci.ih, ci.iw, ci.ow, ci.kw, ci.sw, ci.dw, ci.pw);
    void *owned = NULL, *mine = c->ws;
    if (!mine || c->ws_size < per) {
        if (per > KILN_MAX_ALLOC || !(owned = malloc(per))) {
            free(epi);
            return ref_fail(c, "out of memory");
        }
        mine = owned;
    }
    /* A few tasks per thread so uneven planes balance. */
    int64_t ntask = KILN_MIN(planes, (int64_t)T * 4);
    dw_run r = {&ci, fn, (planes + ntask - 1) / ntask, epi};
    ntask = (planes + r.per_task - 1) / r.per_task;
    cpu_parallel_for(ntask, T, per, mine, dw_task, &r);
    free(epi);
    free(owned);
    return 0;
}

/* The caller's padded-plane scratch (pool workers bring their own); 0 when
** the sizes are not static (the run then allocates it). */
static size_t dw_ws(const ir_node *n, const ir_type *const *in) {
    const ir_type *x = in[0], *w = in[1];
    int nsp = x->rank - 2;
    conv_window win;
    conv_geom g;
    for (int i = 0; i < nsp; i++)
        if (x->dims[2 + i] < 0) return 0;
    if (conv_window_read(n, nsp, w->dims + 2, CW_DILATIONS | CW_AUTO_PAD, &win,
                         NULL, 0) ||
        conv_geom_forward(&win, x->dims + 2, &g, NULL, 0))
        return 0;
    int L = nsp - 1;
    int64_t ih = nsp > 1 ? g.img[0] : 1;
    return dw_scratch_bytes(ih, g.img[L], g.grid[L], g.k[L], g.s[L], g.d[L], g.pb[L]);
}

static bool dw_sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_dw_plane_avx2 && dw_supports(n, in);
}
static int dw_run_avx2(ref_ctx *c) {
    if (!cpu_dw_plane_avx2) return ref_fail(c, "built without AVX2");
    return dw_conv_run(c, cpu_dw_plane_avx2);
}
static int dw_run_c(ref_ctx *c) { return dw_conv_run(c, cpu_dw_plane_c); }

const kiln_tactic cpu_t_conv_dw_avx2 = {"f32_dwconv_avx2", OP_Conv, ISA_AVX2, OW,
    dw_sup_avx2, dw_ws, dw_run_avx2};
const kiln_tactic cpu_t_conv_dw_c = {"f32_dwconv_c", OP_Conv, 0, OW, dw_supports,
    dw_ws, dw_run_c};
const kiln_tactic cpu_t_fconv_dw_avx2 = {"f32_fused_dwconv_avx2", OP_FusedConv,
    ISA_AVX2, OW, dw_sup_avx2, dw_ws, dw_run_avx2};
const kiln_tactic cpu_t_fconv_dw_c = {"f32_fused_dwconv_c", OP_FusedConv, 0, OW,
    dw_supports, dw_ws, dw_run_c};
