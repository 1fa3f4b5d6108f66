/* cpu_wino.c: Winograd tactics for the blocked 3x3 convolutions (NchwcConv,
** group 1, stride 1, dilation 1, blocked input): F(4x4,3x3), which does
** 36 multiplies per 16 outputs where the direct kernel does 144, and
** F(2x2,3x3) (16 per 4, kinder to small images and to accuracy). The
** builder times them against the direct tactic (cpu_nchwc.c) and keeps
** whichever is faster per layer. prepare turns the weights into
** U = G g G^T once, in double, laid out [P][Mb][C][b] (cpu_nchwc.h), and
** stores them as the layer's blob; run cuts the output tiles into chunks
** whose transformed input and GEMM output stay in L2 and spreads the chunks
** over the pool (cpu_wino_tmpl.h has the kernels); when U outweighs the
** transformed input (small maps), tasks take slices of output blocks
** instead, so U is read once (cpu_split.h). */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "cpu_nchwc.h"
#include "cpu_split.h"

#define ISA_AVX2 (KILN_ISA_AVX2 | KILN_ISA_FMA)
#define ISA_AVX512 (KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)

enum { WK_AVX512 = 0, WK_AVX2 = 1, WK_C = 2 };

static const cpu_wino_kernels *wk_for(int kind, int64_t block) {
    const cpu_wino_kernels *k = kind == WK_AVX512 ? cpu_wino_kernels_avx512()
                                : kind == WK_AVX2 ? cpu_wino_kernels_avx2()
                                                  : cpu_wino_kernels_c(block);
    return k && k->block == block ? k : NULL;
}

/* ------------------------------------------------------------ layers taken */
/* KILN_CPU_WINO=0 hides these tactics from builds (A/B against the direct
** kernels with one binary, as KILN_NCHWC=0 does for the layout). */
static bool wino_enabled(void) {
    const char *e = getenv("KILN_CPU_WINO");
    return !e || strcmp(e, "0") != 0;
}

static bool wino_ok(const ir_node *n, const ir_type *const *in, int kind) {
    if (!wino_enabled()) return false;
    if (!in[0] || !in[1] || in[0]->dtype != KILN_DTYPE_FLOAT32 ||
        in[1]->dtype != KILN_DTYPE_FLOAT32)
        return false;
    if (!wk_for(kind, ir_attr_int(n, "block", 0))) return false;
    if (ir_attr_int(n, "group", 1) != 1 || ir_attr_int(n, "input_nchw", 0) != 0) return false;
    nchwc_win w;
    if (!nchwc_win_read(n, &w, NULL, 0)) return false;
    if (w.kh != 3 || w.kw != 3 || w.sh != 1 || w.sw != 1 || w.dh != 1 || w.dw != 1) return false;
    fused_act a;
    return fused_act_read(n, &a, NULL, 0);
}

static bool sup_512(const ir_node *n, const ir_type *const *in) {
    return wino_ok(n, in, WK_AVX512);
}
static bool sup_2(const ir_node *n, const ir_type *const *in) { return wino_ok(n, in, WK_AVX2); }
/* The portable kernels only where no vector instance of the block runs
** (tests call them directly): timing them everywhere would only slow
** builds. */
static bool sup_c(const ir_node *n, const ir_type *const *in) {
    unsigned host = kiln_backend_cpu()->host_isa();
    int64_t b = ir_attr_int(n, "block", 0);
    if (b == 16 && (host & ISA_AVX512) == ISA_AVX512 && cpu_wino_kernels_avx512()) return false;
    if (b == 8 && (host & ISA_AVX2) == ISA_AVX2 && cpu_wino_kernels_avx2()) return false;
    return wino_ok(n, in, WK_C);
}

/* ------------------------------------------------------------ weights */
/* The prepared blob: this header, then P * Mb * C * b floats at byte 64. */
typedef struct wino_hdr {
    char magic[8]; /* "KLNWINO" */
    int64_t m, block, C, Mb;
} wino_hdr;
enum { WINO_HDR = 64 };

static size_t u_floats(int m, int64_t C, int64_t Mb, int64_t b) {
    return (size_t)((m + 2) * (m + 2)) * (size_t)Mb * (size_t)C * (size_t)b;
}

/* u[P][Mb][C][b] = G g G^T of each 3x3 filter in w [Mb][C][3][3][b]. */
static void transform_weights(int m, const float *w, int64_t C, int64_t Mb, int64_t b,
                              float *u) {
    static const double G4[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int A = m + 2;
    for (int64_t mb = 0; mb < Mb; mb++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < b; j++) {
                double g[3][3], t[6][3];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        g[ky][kx] = w[(((mb * C + c) * 3 + ky) * 3 + kx) * b + j];
                for (int i = 0; i < A; i++)
                    for (int kx = 0; kx < 3; kx++) {
                        double s = 0;
                        for (int ky = 0; ky < 3; ky++)
                            s += (m == 4 ? G4[i][ky] : G2[i][ky]) * g[ky][kx];
                        t[i][kx] = s;
                    }
                for (int i = 0; i < A; i++)
                    for (int q = 0; q < A; q++) {
                        double s = 0;
                        for (int kx = 0; kx < 3; kx++)
                            s += t[i][kx] * (m == 4 ? G4[q][kx] : G2[q][kx]);
                        u[((((int64_t)(i * A + q)) * Mb + mb) * C + c) * b + j] = (float)s;
                    }
            }
}

/* Weight dims [Mb, C, 3, 3, b] and the node's block; false if they do not
** fit (the run then reports the geometry error). */
static bool w_dims(const ir_node *n, const ir_type *wt, int64_t *C, int64_t *Mb, int64_t *b) {
    if (!wt || wt->rank != 5 || wt->dtype != KILN_DTYPE_FLOAT32) return false;
    *Mb = wt->dims[0], *C = wt->dims[1], *b = wt->dims[4];
    return *Mb > 0 && *C > 0 && *b == ir_attr_int(n, "block", 0) && wt->dims[2] == 3 &&
           wt->dims[3] == 3;
}

static kiln_status prepare_m(int m, const ir_node *n, const ir_type *const *in,
                             const kiln_tensor *const *cin, void **blob_out, size_t *size_out) {
    *blob_out = NULL, *size_out = 0;
    const kiln_tensor *W = cin[1];
    int64_t C, Mb, b;
    if (!W || !W->data || !w_dims(n, in[1], &C, &Mb, &b)) return KILN_OK; /* no blob */
    if (W->rank != 5 || memcmp(W->dims, in[1]->dims, sizeof W->dims[0] * 5)) return KILN_OK;
    size_t nf = u_floats(m, C, Mb, b);
    if (nf > (KILN_MAX_ALLOC - WINO_HDR) / sizeof(float))
        return kiln_error(KILN_OUT_OF_MEMORY, "%s: Winograd weights too large",
                              n->name ? n->name : n->op_type);
    size_t bytes = WINO_HDR + nf * sizeof(float);
    uint8_t *blob = kiln_aligned_alloc(bytes);
    if (!blob) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory for Winograd weights");
    memset(blob, 0, WINO_HDR);
    wino_hdr h = {"KLNWINO", m, b, C, Mb};
    memcpy(blob, &h, sizeof h);
    transform_weights(m, W->data, C, Mb, b, (float *)(blob + WINO_HDR));
    *blob_out = blob;
    *size_out = bytes;
    return KILN_OK;
}

static kiln_status prepare4(const ir_node *n, const ir_type *const *in,
                            const kiln_tensor *const *cin, void **blob_out, size_t *size_out) {
    return prepare_m(4, n, in, cin, blob_out, size_out);
}
static kiln_status prepare2(const ir_node *n, const ir_type *const *in,
                            const kiln_tensor *const *cin, void **blob_out, size_t *size_out) {
    return prepare_m(2, n, in, cin, blob_out, size_out);
}

/* ------------------------------------------------------------ run */
/* Tiles per chunk: every chunk streams all of U (0.6 MiB at 64 channels,
** 9 MiB at 256, 36 MiB at 512), so chunks are large: their V and M
** (cpu_wino_scratch_floats) up to about 2 MiB, past a 1 MiB L2. Measured on
** Zen 4 (bench/gemm_bench -f NchwcConv), 640 KiB chunks were up to 4x
** slower on the 512-channel layers at batch 8 and no faster elsewhere:
** V read again from L3 costs less than U read again from memory. A whole
** number of GEMM tiles when there is room. */
static int64_t chunk_cap(const cpu_wino_kernels *k, int m, int64_t C) {
    int64_t per = cpu_wino_scratch_floats(k, m, nchwc_blocks(C, k->block), 1);
    int64_t cap = (512 * 1024) / (per > 0 ? per : 1);
    if (cap >= k->tile) cap = cap / k->tile * k->tile;
    return KILN_MAX(cap, 1);
}

typedef struct wino_run {
    cpu_wino_job wj;
    const cpu_wino_kernels *k;
    int64_t ntiles, nsplit, split_mb;
} wino_run;

static void wino_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const wino_run *r = arg;
    int64_t ch = t / r->nsplit, sp = t % r->nsplit;
    int64_t t0 = ch * r->wj.tc, nt = KILN_MIN(r->wj.tc, r->ntiles - t0);
    int64_t mb_lo = sp * r->split_mb, mb_hi = KILN_MIN(r->wj.j.g.Mb, mb_lo + r->split_mb);
    r->k->chunk(&r->wj, t0, nt, mb_lo, mb_hi, cpu_align64(scratch));
}

static size_t ws_m(int m, int kind, const ir_node *n, const ir_type *const *in) {
    int64_t C, Mb, b;
    if (!w_dims(n, in[1], &C, &Mb, &b)) return 0;
    const cpu_wino_kernels *k = wk_for(kind, b);
    if (!k) return 0;
    int64_t Cb = nchwc_blocks(C, b), nt = -1;
    const ir_type *x = in[0];
    if (x && x->rank == 5 && x->dims[0] >= 0 && x->dims[2] >= 0 && x->dims[3] >= 0) {
        int64_t p[4] = {0};
        int cnt = 0;
        const int64_t *pa = ir_attr_ints(n, "pads", &cnt);
        if (pa && cnt == 4) memcpy(p, pa, sizeof p);
        int64_t OH = x->dims[2] + p[0] + p[2] - 2, OW = x->dims[3] + p[1] + p[3] - 2;
        if (OH > 0 && OW > 0) nt = x->dims[0] * ((OH + m - 1) / m) * ((OW + m - 1) / m);
    }
    int64_t tc = chunk_cap(k, m, C);
    if (nt > 0) tc = KILN_MIN(tc, nt);
    return (size_t)cpu_wino_scratch_floats(k, m, Cb, tc) * sizeof(float) + 64;
}

static int run_m(ref_ctx *c, int m, int kind) {
    wino_run r;
    memset(&r, 0, sizeof r);
    cpu_wino_job *wj = &r.wj;
    int64_t block = ir_attr_int(c->node, "block", 0);
    r.k = wk_for(kind, block);
    if (!r.k) return ref_fail(c, "this build has no Winograd kernels of block %lld for the host",
                              (long long)block);
    if (cpu_nchwc_job_init(c, block, &wj->j)) return -1;
    const nchwc_conv_geom *g = &wj->j.g;
    const nchwc_win *w = &g->win;
    if (g->depthwise || g->nchw_in || w->kh != 3 || w->kw != 3 || w->sh != 1 || w->sw != 1 ||
        w->dh != 1 || w->dw != 1)
        return ref_fail(c, "Winograd takes 3x3 stride-1 undilated group-1 blocked convolutions");
    wj->m = m;
    wj->TH = (g->OH + m - 1) / m, wj->TW = (g->OW + m - 1) / m;
    r.ntiles = g->N * wj->TH * wj->TW;
    if (r.ntiles == 0) return 0;
    size_t nf = u_floats(m, g->C, g->Mb, g->blk);
    float *owned_u = NULL;
    if (c->blob) {
        wino_hdr h;
        memset(&h, 0, sizeof h);
        if (c->blob_size >= sizeof h) memcpy(&h, c->blob, sizeof h);
        if (c->blob_size != WINO_HDR + nf * sizeof(float) || memcmp(h.magic, "KLNWINO", 8) ||
            h.m != m || h.block != g->blk || h.C != g->C || h.Mb != g->Mb)
            return ref_fail(c, "the layer's prepared Winograd weights do not match it "
                               "(rebuild the engine)");
        wj->u = (const float *)((const uint8_t *)c->blob + WINO_HDR);
    } else {
        const kiln_tensor *W = c->in[1];
        if (!W->data) return ref_fail(c, "the weights are absent and the layer has no blob");
        if (nf > KILN_MAX_ALLOC / sizeof(float) ||
            !(owned_u = kiln_aligned_alloc(nf * sizeof(float))))
            return ref_fail(c, "out of memory for the Winograd weights");
        transform_weights(m, W->data, g->C, g->Mb, g->blk, owned_u);
        wj->u = owned_u;
    }
    /* chunks as large as the cap allows; when that leaves fewer chunks
    ** than threads, the threads split the output blocks instead (each
    ** then reads only its share of U) */
    double flops = 2.0 * (double)r.ntiles * (double)((m + 2) * (m + 2)) * (double)g->C *
                   (double)(g->Mb * g->blk);
    int nth = cpu_threads_for(flops);
    int64_t cap = chunk_cap(r.k, m, g->C);
    int64_t nchunk = (r.ntiles + cap - 1) / cap;
    int64_t ngroups = (g->Mb + r.k->ob - 1) / r.k->ob;
    /* the pixel-first partition: chunks, then output-block splits when
    ** there are fewer chunks than threads */
    r.nsplit = 1;
    /* each split transforms the chunk's input again: no more than needed */
    if (nth > 1 && nchunk < nth) r.nsplit = KILN_MIN(ngroups, (nth + nchunk - 1) / nchunk);
    r.split_mb = (ngroups + r.nsplit - 1) / r.nsplit * r.k->ob;
    r.nsplit = (g->Mb + r.split_mb - 1) / r.split_mb;
    int64_t nchunk0 = nchunk;
    if (nchunk * r.nsplit < nth) nchunk = KILN_MIN(r.ntiles, (nth + r.nsplit - 1) / r.nsplit);
    /* U against the transformed input (V) the split would share: more
    ** output channels than tiles (7x7 and 14x14 maps at batch 1) and the
    ** layer is bound by reading U, so each task takes its own slice of
    ** output blocks for all the tiles and U is read once, not once per
    ** chunk (cpu_split.h); kept only where it reads U no more often than
    ** the pixel-first partition does (at batch 8 it would cut the tiles
    ** finer for balance and read U more often) */
    double ubytes = (double)nf * sizeof(float);
    double vbytes = (double)((m + 2) * (m + 2)) * (double)(g->Cb * g->blk) *
                    (double)r.ntiles * sizeof(float);
    if (nchunk0 < nth && cpu_split_weights_pay(nth, ubytes, vbytes)) {
        cpu_split s = cpu_split_weights_first(nth, r.ntiles, cap, g->Mb, r.k->ob,
                                              cpu_split_w_units(1),
                                              CPU_SPLIT_WINO_X_TENTHS / 10.0);
        if (s.px_parts <= nchunk)
            r.split_mb = s.oc_per, r.nsplit = s.oc_parts, nchunk = s.px_parts;
    }
    wj->tc = (r.ntiles + nchunk - 1) / nchunk;
    nchunk = (r.ntiles + wj->tc - 1) / wj->tc;
    size_t sb = (size_t)cpu_wino_scratch_floats(r.k, m, g->Cb, wj->tc) * sizeof(float) + 64;
    void *mine = c->ws, *owned_s = NULL;
    if (!mine || c->ws_size < sb) {
        if (!(owned_s = malloc(sb))) {
            kiln_aligned_free(owned_u);
            return ref_fail(c, "out of memory for Winograd scratch");
        }
        mine = owned_s;
    }
    cpu_parallel_for(nchunk * r.nsplit, nth, sb, mine, wino_task, &r);
    free(owned_s);
    kiln_aligned_free(owned_u);
    return 0;
}

static int run4_512(ref_ctx *c) { return run_m(c, 4, WK_AVX512); }
static int run4_2(ref_ctx *c) { return run_m(c, 4, WK_AVX2); }
static int run4_c(ref_ctx *c) { return run_m(c, 4, WK_C); }
static int run2_512(ref_ctx *c) { return run_m(c, 2, WK_AVX512); }
static int run2_2(ref_ctx *c) { return run_m(c, 2, WK_AVX2); }
static int run2_c(ref_ctx *c) { return run_m(c, 2, WK_C); }

static size_t ws4_512(const ir_node *n, const ir_type *const *in) {
    return ws_m(4, WK_AVX512, n, in);
}
static size_t ws4_2(const ir_node *n, const ir_type *const *in) { return ws_m(4, WK_AVX2, n, in); }
static size_t ws4_c(const ir_node *n, const ir_type *const *in) { return ws_m(4, WK_C, n, in); }
static size_t ws2_512(const ir_node *n, const ir_type *const *in) {
    return ws_m(2, WK_AVX512, n, in);
}
static size_t ws2_2(const ir_node *n, const ir_type *const *in) { return ws_m(2, WK_AVX2, n, in); }
static size_t ws2_c(const ir_node *n, const ir_type *const *in) { return ws_m(2, WK_C, n, in); }

/* W (input 1) is read only through the blob when there is one. */
#define WINO_TACTIC(var, nm, isa_, sup_, ws_, run_, prep_)                              \
    const kiln_tactic var = {.name = nm, .op = OP_NchwcConv, .isa = isa_,             \
                             .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_,     \
                             .workspace = ws_, .run = run_, .prepare = prep_,         \
                             .blob_replaces = 1u << 1}
WINO_TACTIC(cpu_t_nchwc_wino4_avx512, "f32_nchwc_wino4x4_6x64_avx512", ISA_AVX512, sup_512,
            ws4_512, run4_512, prepare4);
WINO_TACTIC(cpu_t_nchwc_wino4_avx2, "f32_nchwc_wino4x4_6x16_avx2", ISA_AVX2, sup_2, ws4_2,
            run4_2, prepare4);
WINO_TACTIC(cpu_t_nchwc_wino4_c, "f32_nchwc_wino4x4_4x2b_c", 0, sup_c, ws4_c, run4_c, prepare4);
WINO_TACTIC(cpu_t_nchwc_wino2_avx512, "f32_nchwc_wino2x2_6x64_avx512", ISA_AVX512, sup_512,
            ws2_512, run2_512, prepare2);
WINO_TACTIC(cpu_t_nchwc_wino2_avx2, "f32_nchwc_wino2x2_6x16_avx2", ISA_AVX2, sup_2, ws2_2,
            run2_2, prepare2);
WINO_TACTIC(cpu_t_nchwc_wino2_c, "f32_nchwc_wino2x2_4x2b_c", 0, sup_c, ws2_c, run2_c, prepare2);
