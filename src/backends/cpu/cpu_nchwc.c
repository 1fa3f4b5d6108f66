/* cpu_nchwc.c: the CPU tactics of the channel-blocked ops (ops/nchwc.h):
** direct and pointwise convolution, depthwise convolution and pools over the
** microkernels of the host's ISA (cpu_nchwc_tmpl.h; the tactic of an ISA
** takes only layers of its block: 16 for AVX-512, 8 for AVX2), plus the
** portable layout reorders. Each checks the layer's geometry the way the
** reference kernel does, then spreads (image, output-block, row) tasks over
** the pool. A 1x1 stride-1 unpadded conv is one GEMM over the blocked
** layout: its image is taken as a single row of H*W pixels cut into chunks,
** and the weights of every output block are reused on a chunk while it is
** in cache. When the weights outweigh the input and output (small maps at
** batch 1), each task owns a slice of output blocks for all the rows
** instead, so each weight is read once (cpu_split.h). */
#include "cpu_tactics.h"
#include "cpu_gemm.h"
#include "cpu_nchwc.h"
#include "cpu_split.h"

#define ISA_AVX2 (KILN_ISA_AVX2 | KILN_ISA_FMA)
#define ISA_AVX512 (KILN_ISA_AVX512F | KILN_ISA_AVX2 | KILN_ISA_FMA)

static bool f32(const ir_type *t) { return t && t->dtype == KILN_DTYPE_FLOAT32; }

static bool conv_ok(const cpu_nchwc_kernels *k, const ir_node *n, const ir_type *const *in,
                    bool dw) {
    if (!k || !f32(in[0]) || !f32(in[1])) return false;
    if (ir_attr_int(n, "block", 0) != k->block) return false;
    if ((ir_attr_int(n, "group", 1) != 1) != dw) return false;
    fused_act a;
    return fused_act_read(n, &a, NULL, 0);
}

static bool taps_ok(const cpu_nchwc_kernels *k, const ir_node *n, const ir_type *const *in);

/* Not the layers the taps tactics take: the same kernels on W as it is
** only lose to them, and a noisy timing run then and again picked them
** (engines that name them for such layers still run: the run takes any
** group-1 layer). */
static bool sup_conv512(const ir_node *n, const ir_type *const *in) {
    const cpu_nchwc_kernels *k = cpu_nchwc_kernels_avx512();
    return conv_ok(k, n, in, false) && !taps_ok(k, n, in);
}
static bool sup_conv2(const ir_node *n, const ir_type *const *in) {
    const cpu_nchwc_kernels *k = cpu_nchwc_kernels_avx2();
    return conv_ok(k, n, in, false) && !taps_ok(k, n, in);
}
/* The tap-major tactics: group-1 convs of more than one tap on a blocked
** input (the others read W as it is). KILN_CPU_WTAP=0 hides them from
** builds (A/B against the [C][KH][KW][b] weights with one binary). */
static bool taps_ok(const cpu_nchwc_kernels *k, const ir_node *n, const ir_type *const *in) {
    const char *e = getenv("KILN_CPU_WTAP");
    if ((e && !strcmp(e, "0")) || !conv_ok(k, n, in, false)) return false;
    if (ir_attr_int(n, "input_nchw", 0) != 0) return false;
    return in[1]->rank == 5 && in[1]->dims[2] * in[1]->dims[3] > 1;
}
static bool sup_taps512(const ir_node *n, const ir_type *const *in) {
    return taps_ok(cpu_nchwc_kernels_avx512(), n, in);
}
static bool sup_taps2(const ir_node *n, const ir_type *const *in) {
    return taps_ok(cpu_nchwc_kernels_avx2(), n, in);
}
static bool sup_dw512(const ir_node *n, const ir_type *const *in) {
    return conv_ok(cpu_nchwc_kernels_avx512(), n, in, true);
}
static bool sup_dw2(const ir_node *n, const ir_type *const *in) {
    return conv_ok(cpu_nchwc_kernels_avx2(), n, in, true);
}

static bool pool_ok(const cpu_nchwc_kernels *k, const ir_type *const *in) {
    return k && f32(in[0]) && in[0]->rank == 5 && in[0]->dims[4] == k->block;
}
static bool sup_pool512(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return pool_ok(cpu_nchwc_kernels_avx512(), in);
}
static bool sup_pool2(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return pool_ok(cpu_nchwc_kernels_avx2(), in);
}

/* ---------------------------------------------------------------- conv */
typedef struct conv_run {
    const cpu_nchwc_kernels *k;
    cpu_nchwc_job j;
    int64_t nbg, nchunk;
    bool pix_outer; /* tasks (n, oy, chunk, block group): 1x1 reuse */
    int64_t dw_rows, dw_total; /* depthwise: output rows per task, in all */
    /* weights-first tasks (cpu_split.h): output blocks of a part x a range
    ** of pixel units (output rows; 1x1: tiles of pixels), per_img a image */
    cpu_split ws;
    int64_t units, per_img;
    bool flat; /* a 1x1 stride-1 unpadded conv, taken as one row of H*W pixels */
    bool mb_even; /* block groups of near-equal size (group_range) */
    bool rows_first; /* weights-first tasks: all their rows per input part
                     ** (KILN_CPU_ROWS=0: a row at a time) */
} conv_run;

/* Block group i of ng over output blocks [lo, hi): ng = ceil((hi - lo) /
** ob) groups of near-equal size (6 blocks in tiles of 4 are 3 + 3, not
** 4 + 2), or with KILN_CPU_MB_EVEN=0 groups of ob and the remainder. */
static void group_range(const conv_run *r, int64_t lo, int64_t hi, int64_t i, int64_t ng,
                        int64_t *mb0, int64_t *nb) {
    if (r->mb_even) {
        *mb0 = lo + i * (hi - lo) / ng;
        *nb = lo + (i + 1) * (hi - lo) / ng - *mb0;
    } else {
        *mb0 = lo + i * r->k->ob;
        *nb = KILN_MIN(r->k->ob, hi - *mb0);
    }
}

static void conv_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const conv_run *r = arg;
    const nchwc_conv_geom *g = &r->j.g;
    int64_t bg, ch, oy, n;
    if (r->pix_outer) {
        bg = t % r->nbg, t /= r->nbg;
        ch = t % r->nchunk, t /= r->nchunk;
        oy = t % g->OH, n = t / g->OH;
    } else {
        ch = t % r->nchunk, t /= r->nchunk;
        oy = t % g->OH, t /= g->OH;
        bg = t % r->nbg, n = t / r->nbg;
    }
    int64_t mb0, nb;
    group_range(r, 0, g->Mb, bg, r->nbg, &mb0, &nb);
    int64_t ox0 = ch * r->j.ow_chunk, ox1 = KILN_MIN(ox0 + r->j.ow_chunk, g->OW);
    r->k->conv(&r->j, n, mb0, nb, oy, ox0, ox1);
}

/* Weights-first task: output blocks of part t % oc_parts, for the pixel
** units of range t / oc_parts. The register tiles' block group is the
** outer loop, so its weights stay in L2 across all the rows. */
static void conv_task_wf(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const conv_run *r = arg;
    const nchwc_conv_geom *g = &r->j.g;
    const cpu_split *s = &r->ws;
    int64_t o = t % s->oc_parts, p = t / s->oc_parts;
    int64_t u0 = p * r->units / s->px_parts, u1 = (p + 1) * r->units / s->px_parts;
    int64_t mb_end = KILN_MIN(g->Mb, (o + 1) * s->oc_per), ob = r->k->ob, tile = r->k->tile;
    int64_t mb_lo = o * s->oc_per, ng = (mb_end - mb_lo + ob - 1) / ob;
    for (int64_t gi = 0; gi < ng; gi++) {
        int64_t mb0, nb;
        group_range(r, mb_lo, mb_end, gi, ng, &mb0, &nb);
        for (int64_t u = u0; u < u1;) {
            int64_t n = u / r->per_img, q = u % r->per_img;
            if (r->flat) { /* a run of pixel tiles within image n */
                int64_t run = KILN_MIN(u1 - u, r->per_img - q);
                r->k->conv(&r->j, n, mb0, nb, 0, q * tile, KILN_MIN(g->OW, (q + run) * tile));
                u += run;
            } else if (r->rows_first) { /* the rows left in image n, parts outermost */
                int64_t run = KILN_MIN(u1 - u, r->per_img - q);
                r->k->conv_rows(&r->j, n, mb0, nb, q, q + run);
                u += run;
            } else {
                r->k->conv(&r->j, n, mb0, nb, q, 0, g->OW);
                u++;
            }
        }
    }
}

static void dw_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const conv_run *r = arg;
    const nchwc_conv_geom *g = &r->j.g;
    int64_t end = KILN_MIN((t + 1) * r->dw_rows, r->dw_total);
    for (int64_t i = t * r->dw_rows; i < end; i++) {
        int64_t oy = i % g->OH, cb = i / g->OH % g->Mb, n = i / g->OH / g->Mb;
        r->k->dwconv(&r->j, n, cb, oy);
    }
}

int cpu_nchwc_job_init(ref_ctx *c, int64_t block, cpu_nchwc_job *j) {
    const kiln_tensor *X = c->in[0], *W = c->in[1];
    const kiln_tensor *B = ref_has(c, 2) ? c->in[2] : NULL;
    const kiln_tensor *Z = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *Y = c->out[0];
    memset(j, 0, sizeof *j);
    nchwc_conv_geom *g = &j->g;
    if (X->dtype != KILN_DTYPE_FLOAT32 || W->dtype != KILN_DTYPE_FLOAT32 ||
        (B && B->dtype != KILN_DTYPE_FLOAT32) || (Z && Z->dtype != KILN_DTYPE_FLOAT32))
        return ref_fail(c, "this tactic handles float32 only");
    if (!nchwc_conv_geom_read(c->node, X->rank, X->dims, W->rank, W->dims, g, c->err,
                              sizeof c->err) ||
        !fused_act_read(c->node, &j->fact, c->err, sizeof c->err))
        return -1;
    if (g->blk != block) return ref_fail(c, "block %lld is not this tactic's", (long long)g->blk);
    int64_t yd[5] = {g->N, g->Mb, g->OH, g->OW, g->blk};
    if (Y->dtype != KILN_DTYPE_FLOAT32 || Y->rank != 5 || memcmp(Y->dims, yd, sizeof yd) ||
        (!Y->data && tensor_numel(Y)))
        return ref_fail(c, "output shape does not match the geometry");
    if (Z && (Z->rank != 5 || memcmp(Z->dims, yd, sizeof yd)))
        return ref_fail(c, "Z must have the output's shape");
    if (B && tensor_numel(B) != g->Mb * g->blk) return ref_fail(c, "B has the wrong size");
    int64_t b = g->blk, HW = g->H * g->W;
    if (g->nchw_in) {
        j->xs_n = g->C * HW, j->xs_cb = b * HW, j->xs_row = g->W, j->xs_pix = 1, j->xs_ic = HW;
    } else {
        j->xs_n = g->Cb * HW * b, j->xs_cb = HW * b, j->xs_row = g->W * b, j->xs_pix = b;
        j->xs_ic = 1;
    }
    int64_t KK = g->win.kh * g->win.kw;
    j->w_mb = g->C * KK * b, j->w_cb = b * KK * b, j->w_ic = KK * b, j->w_tap = b;
    j->x = X->data, j->w = W->data, j->bias = B ? B->data : NULL;
    j->z = Z ? Z->data : NULL, j->y = Y->data;
    switch (j->fact.kind) {
    case FUSED_ACT_NONE: j->act = NCHWC_ACT_NONE; break;
    case FUSED_ACT_RELU: j->act = NCHWC_ACT_RELU; break;
    case FUSED_ACT_CLIP:
        j->act = NCHWC_ACT_CLIP, j->lo = j->fact.alpha, j->hi = j->fact.beta;
        break;
    default: j->act = NCHWC_ACT_POST;
    }
    return 0;
}

/* Input blocks per pass of a conv's tiles over the output pixels (0: all
** of them in one pass). A register tile sums over every input channel and
** tap; with hundreds of channels (MobileNetV2's 576 and 960, ResNet-50's
** 1024 and 2048; a 3x3 conv's block of 16 channels is 36 KB of weights
** for 4 output blocks) a tile's weights outgrow L1 and every tile of the
** row streamed them from L2 again: a 7-pixel row of 3x3 stride 2 read all
** of them twice (a 6-pixel tile and a 1-pixel one). In parts of about
** 32 KB of weights (at least one input block), a part stays in L1 while
** the tiles pass over it; the partial sums go through y.
** KILN_CPU_CB_PART=N sets the part to N blocks (0: off), for A/B runs and
** for the tests, which reach several parts with few channels. */
static int64_t cpu_nchwc_cb_part(const cpu_nchwc_kernels *k, const nchwc_conv_geom *g) {
    const nchwc_win *w = &g->win;
    if (g->nchw_in) return 0;
    const char *e = getenv("KILN_CPU_CB_PART");
    int64_t part = e && *e ? (int64_t)atoll(e)
                           : KILN_MAX((int64_t)1, (int64_t)(32768 / (4 * k->block * k->block *
                                                                      k->ob * w->kh * w->kw)));
    if (part <= 0 || part >= g->Cb) return 0;
    int64_t np = (g->Cb + part - 1) / part; /* as many parts, evened out: 9 is 5 + 4 */
    return (g->Cb + np - 1) / np;
}

/* ---- tap-major weights: the prepared blob of the taps tactics. W is
** [Mb][C][KH][KW][b]: in the direct tile's inner loop over input channels
** consecutive channels' weight vectors are KH*KW*b floats apart (576
** bytes for a 3x3 on AVX-512), every load on another cache line; the
** blob holds them as [Mb][Cb][KH][KW][b][b] (input channels padded to
** whole blocks with zeros, never read), so the loop's loads follow one
** another and an input block's weights stay one piece (whole [KH][KW][C]
** planes per output block put a part's pieces 4 KiB-aliased and thrashed
** L1: 2.29 against 2.04 ms on 512 channels 14x14 stride 2). A 64-byte
** header, then Mb * Cb * KH * KW * b * b floats. */
typedef struct taps_hdr {
    char magic[8]; /* "KLNWTAP" */
    int64_t block, C, Mb, kh, kw;
} taps_hdr;
enum { TAPS_HDR = 64 };

static kiln_status taps_prepare(const ir_node *n, const ir_type *const *in,
                                const kiln_tensor *const *cin, void **blob_out,
                                size_t *size_out) {
    *blob_out = NULL, *size_out = 0;
    const kiln_tensor *W = cin[1];
    const ir_type *wt = in[1];
    if (!W || !W->data || !wt || W->dtype != KILN_DTYPE_FLOAT32 || W->rank != 5 ||
        wt->rank != 5 || memcmp(W->dims, wt->dims, sizeof W->dims[0] * 5))
        return KILN_OK; /* no blob: the run reads W */
    int64_t Mb = W->dims[0], C = W->dims[1], kh = W->dims[2], kw = W->dims[3], b = W->dims[4];
    if (Mb <= 0 || C <= 0 || kh <= 0 || kw <= 0 || b != ir_attr_int(n, "block", 0) ||
        kh * kw < 2)
        return KILN_OK;
    int64_t Cb = nchwc_blocks(C, b), KK = kh * kw;
    double nfd = (double)Mb * (double)Cb * (double)KK * (double)(b * b);
    if (nfd > (double)((KILN_MAX_ALLOC - TAPS_HDR) / sizeof(float)))
        return kiln_error(KILN_OUT_OF_MEMORY, "%s: weights too large",
                          n->name ? n->name : n->op_type);
    size_t nf = (size_t)nfd;
    size_t bytes = TAPS_HDR + nf * sizeof(float);
    uint8_t *blob = kiln_aligned_alloc(bytes);
    if (!blob) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory for tap-major weights");
    memset(blob, 0, bytes);
    taps_hdr h = {"KLNWTAP", b, C, Mb, kh, kw};
    memcpy(blob, &h, sizeof h);
    const float *w = W->data;
    float *u = (float *)(blob + TAPS_HDR);
    for (int64_t mb = 0; mb < Mb; mb++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < KK; t++)
                memcpy(u + (((mb * Cb + c / b) * KK + t) * b + c % b) * b,
                       w + ((mb * C + c) * KK + t) * b, (size_t)b * sizeof(float));
    *blob_out = blob;
    *size_out = bytes;
    return KILN_OK;
}

/* Points j at the layer's tap-major blob when it has one (checked against
** the geometry), else at W, which must then be there. */
static int taps_use(ref_ctx *c, cpu_nchwc_job *j) {
    const nchwc_conv_geom *g = &j->g;
    const nchwc_win *w = &g->win;
    if (!c->blob) {
        if (!j->w && g->Mb && g->C)
            return ref_fail(c, "the weights are absent and the layer has no blob");
        return 0;
    }
    taps_hdr h;
    memset(&h, 0, sizeof h);
    if (c->blob_size >= sizeof h) memcpy(&h, c->blob, sizeof h);
    int64_t KK = w->kh * w->kw, b = g->blk;
    double nf = (double)g->Mb * (double)g->Cb * (double)KK * (double)(b * b);
    if (memcmp(h.magic, "KLNWTAP", 8) || h.block != g->blk || h.C != g->C || h.Mb != g->Mb ||
        h.kh != w->kh || h.kw != w->kw || g->nchw_in || g->depthwise ||
        (double)c->blob_size != TAPS_HDR + nf * sizeof(float))
        return ref_fail(c, "the layer's prepared tap-major weights do not match it "
                           "(rebuild the engine)");
    j->w = (const float *)((const uint8_t *)c->blob + TAPS_HDR);
    j->w_mb = g->Cb * KK * b * b, j->w_cb = KK * b * b, j->w_ic = b, j->w_tap = b * b;
    return 0;
}

static int conv_prepare(ref_ctx *c, const cpu_nchwc_kernels *k, conv_run *r) {
    memset(r, 0, sizeof *r);
    r->k = k;
    if (!k) return ref_fail(c, "this build has no kernels for the host");
    if (cpu_nchwc_job_init(c, k->block, &r->j)) return -1;
    cpu_nchwc_job *j = &r->j;
    nchwc_conv_geom *g = &j->g;
    if (taps_use(c, j)) return -1;
    int64_t HW = g->H * g->W;
    const nchwc_win *w = &g->win;
    bool flat = w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && !w->pt && !w->pl &&
                !w->pb && !w->pr;
    r->flat = flat;
    if (flat) { /* one row of H*W pixels */
        g->W = g->OW = HW, g->H = g->OH = 1;
        j->xs_row = 0;
    }
    r->pix_outer = w->kh == 1 && w->kw == 1;
    r->nbg = (g->Mb + k->ob - 1) / k->ob;
    const char *ev = getenv("KILN_CPU_MB_EVEN");
    r->mb_even = !(ev && !strcmp(ev, "0"));
    ev = getenv("KILN_CPU_ROWS");
    r->rows_first = !(ev && !strcmp(ev, "0"));
    j->ow_chunk = g->OW;
    if (flat) {
        /* chunks of at most 96 pixels (a chunk's input stays in L2 while
        ** every block group passes over it), cut finer, in whole tiles,
        ** until there are about 4 tasks per thread */
        int64_t per = g->N * r->nbg, want = 4 * (int64_t)kiln_get_num_threads();
        int64_t nch = (want + per - 1) / per, cw = nch > 0 ? (g->OW + nch - 1) / nch : g->OW;
        cw = (cw + k->tile - 1) / k->tile * k->tile;
        j->ow_chunk = KILN_MAX(KILN_MIN(cw, 96), k->tile);
    }
    if (j->ow_chunk < 1) j->ow_chunk = 1;
    j->cb_part = cpu_nchwc_cb_part(k, g);
    const char *pe = getenv("KILN_CPU_PW_TILE");
    j->pw_off = pe && !strcmp(pe, "0");
    pe = getenv("KILN_CPU_TILE7");
    j->td_off = pe && !strcmp(pe, "0");
    r->nchunk = g->OW ? (g->OW + j->ow_chunk - 1) / j->ow_chunk : 0;
    return 0;
}

static int run_conv(ref_ctx *c, const cpu_nchwc_kernels *k) {
    conv_run r;
    if (conv_prepare(c, k, &r)) return -1;
    const nchwc_conv_geom *g = &r.j.g;
    if (g->depthwise) return ref_fail(c, "depthwise layer on the group-1 tactic");
    double flops = 2.0 * (double)g->N * (double)(g->Mb * g->blk) * (double)(g->OH * g->OW) *
                   (double)(g->C * g->win.kh * g->win.kw);
    int nth = cpu_threads_for(flops);
    /* weights against the input and output the tasks share: few rows
    ** (7x7, 14x14 maps at batch 1) and many channels make the layer bound
    ** by reading its weights, which the row-first tasks read once per row */
    const nchwc_win *w = &g->win;
    double wbytes = 4.0 * (double)(g->Mb * g->blk) * (double)(g->C * w->kh * w->kw);
    double pbytes = 4.0 * (double)g->N * (double)g->blk *
                    ((double)g->Cb * (double)(g->H * g->W) +
                     (double)g->Mb * (double)(g->OH * g->OW));
    if (cpu_split_weights_pay(nth, wbytes, pbytes)) {
        r.per_img = r.flat ? (g->OW + r.k->tile - 1) / r.k->tile : g->OH;
        r.units = g->N * r.per_img;
        if (r.units > 0) {
            r.ws = cpu_split_weights_first(
                nth, r.units, r.units, g->Mb, r.k->ob,
                cpu_split_w_units(r.flat ? (double)r.k->tile : (double)g->OW), 0);
            cpu_parallel_for(r.ws.oc_parts * r.ws.px_parts, nth, 0, NULL, conv_task_wf, &r);
        }
        return 0;
    }
    int64_t nt = g->N * r.nbg * g->OH * r.nchunk;
    cpu_parallel_for(nt, nth, 0, NULL, conv_task, &r);
    return 0;
}

static int run_dw(ref_ctx *c, const cpu_nchwc_kernels *k) {
    conv_run r;
    if (conv_prepare(c, k, &r)) return -1;
    /* conv_prepare flattens 1x1 layers; a depthwise one has the same
    ** per-pixel math either way */
    const nchwc_conv_geom *g = &r.j.g;
    if (!g->depthwise) return ref_fail(c, "group-1 layer on the depthwise tactic");
    double flops = 2.0 * (double)g->N * (double)(g->Mb * g->blk) * (double)(g->OH * g->OW) *
                   (double)(g->win.kh * g->win.kw);
    /* One output row of one channel block is a few hundred flops: claimed
    ** one by one, the task counter's cache line bounced between the cores
    ** cost more than the row (MobileNetV2's 14x14 depthwise layers ran
    ** slower on 2 threads than on 1). About 8 tasks a thread.
    ** A depthwise flop takes longer than a blocked conv's (Zen 4, one
    ** thread: 42 GFLOP/s for a 14x14x384 depthwise layer, 92 for the 1x1
    ** conv before it): counted as plain flops,
    ** MobileNetV2's 14x14 and 7x7 depthwise layers (0.7-2 MFLOP, 16-50 us)
    ** stayed on one thread although the pool's worker was still spinning
    ** from the conv before. Weighted 4x they take it (2 threads, Zen 4:
    ** whole net 0.92-0.95x the time; weights 2 and 8: 0.95x). */
    int nth = cpu_threads_for(4.0 * flops);
    r.dw_total = g->N * g->Mb * g->OH;
    r.dw_rows = KILN_MAX(r.dw_total / (8 * (int64_t)nth), 1);
    int64_t nt = (r.dw_total + r.dw_rows - 1) / r.dw_rows;
    cpu_parallel_for(nt, nth, 0, NULL, dw_task, &r);
    return 0;
}

static int run_conv512(ref_ctx *c) { return run_conv(c, cpu_nchwc_kernels_avx512()); }
static int run_taps512(ref_ctx *c) { return run_conv(c, cpu_nchwc_kernels_avx512()); }
static int run_taps2(ref_ctx *c) { return run_conv(c, cpu_nchwc_kernels_avx2()); }
static int run_conv2(ref_ctx *c) { return run_conv(c, cpu_nchwc_kernels_avx2()); }
static int run_dw512(ref_ctx *c) { return run_dw(c, cpu_nchwc_kernels_avx512()); }
static int run_dw2(ref_ctx *c) { return run_dw(c, cpu_nchwc_kernels_avx2()); }

/* ---------------------------------------------------------------- pools */
static void pool_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const conv_run *r = arg;
    const nchwc_conv_geom *g = &r->j.g;
    int64_t oy = t % g->OH, cb = t / g->OH % g->Cb, n = t / g->OH / g->Cb;
    r->k->pool(&r->j, n, cb, oy);
}

static int run_pool(ref_ctx *c, const cpu_nchwc_kernels *k) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    conv_run r;
    memset(&r, 0, sizeof r);
    r.k = k;
    cpu_nchwc_job *j = &r.j;
    nchwc_conv_geom *g = &j->g;
    if (!k) return ref_fail(c, "this build has no kernels for the host");
    if (!nchwc_win_read(c->node, &g->win, c->err, sizeof c->err)) return -1;
    j->pool_kind = (int)ir_attr_int(c->node, "kind", -1);
    j->count_include_pad = ir_attr_int(c->node, "count_include_pad", 0) != 0;
    if (X->dtype != KILN_DTYPE_FLOAT32 || X->rank != 5 || X->dims[4] != k->block ||
        j->pool_kind < NCHWC_POOL_MAX || j->pool_kind > NCHWC_POOL_GLOBAL_MAX)
        return ref_fail(c, "expected a float32 tensor of block %d", k->block);
    g->N = X->dims[0], g->Cb = g->Mb = X->dims[1], g->H = X->dims[2], g->W = X->dims[3];
    g->blk = k->block;
    bool glob = j->pool_kind >= NCHWC_POOL_GLOBAL_AVG;
    const nchwc_win *w = &g->win;
    g->OH = glob ? 1 : nchwc_out_dim(g->H, w->kh, w->sh, w->dh, w->pt, w->pb);
    g->OW = glob ? 1 : nchwc_out_dim(g->W, w->kw, w->sw, w->dw, w->pl, w->pr);
    int64_t yd[5] = {g->N, g->Cb, g->OH, g->OW, g->blk};
    if (g->OH < 0 || g->OW < 0 || Y->rank != 5 || memcmp(Y->dims, yd, sizeof yd) ||
        (!Y->data && tensor_numel(Y)))
        return ref_fail(c, "output shape does not match the window");
    if (glob && (g->H == 0 || g->W == 0)) return ref_fail(c, "global pool of an empty image");
    j->x = X->data, j->y = Y->data;
    double work = (double)tensor_numel(X) * (glob ? 1.0 : (double)(w->kh * w->kw));
    cpu_parallel_for(g->N * g->Cb * g->OH, cpu_threads_for(work), 0, NULL, pool_task, &r);
    return 0;
}

static int run_pool512(ref_ctx *c) { return run_pool(c, cpu_nchwc_kernels_avx512()); }
static int run_pool2(ref_ctx *c) { return run_pool(c, cpu_nchwc_kernels_avx2()); }

/* -------------------------------------------------------------- reorders */
typedef struct reorder_run {
    const float *x;
    float *y;
    int64_t C, Cb, HW, b;
} reorder_run;

static void rin_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const reorder_run *r = arg;
    int64_t n = t / r->Cb, cb = t % r->Cb, b = r->b;
    float *y = r->y + t * r->HW * b;
    int64_t cn = KILN_MIN(b, r->C - cb * b);
    const float *x = r->x + (n * r->C + cb * b) * r->HW;
    for (int64_t p = 0; p < r->HW; p++) {
        int64_t jj = 0;
        for (; jj < cn; jj++) y[p * b + jj] = x[jj * r->HW + p];
        for (; jj < b; jj++) y[p * b + jj] = 0.0f;
    }
}

static void rout_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const reorder_run *r = arg;
    int64_t n = t / r->C, ch = t % r->C, b = r->b;
    const float *x = r->x + ((n * r->Cb + ch / b) * r->HW) * b + ch % b;
    float *y = r->y + t * r->HW;
    for (int64_t p = 0; p < r->HW; p++) y[p] = x[p * b];
}

static int run_reorder(ref_ctx *c, bool in) {
    const kiln_tensor *X = c->in[0];
    kiln_tensor *Y = c->out[0];
    if (X->dtype != KILN_DTYPE_FLOAT32 || Y->dtype != KILN_DTYPE_FLOAT32 ||
        X->rank != (in ? 4 : 5) || Y->rank != (in ? 5 : 4) || (!Y->data && tensor_numel(Y)))
        return ref_fail(c, "expected float32 tensors of the reorder's ranks");
    const kiln_tensor *P = in ? X : Y, *Bk = in ? Y : X; /* plain and blocked */
    reorder_run r = {X->data, Y->data, P->dims[1], Bk->dims[1], P->dims[2] * P->dims[3],
                     Bk->dims[4]};
    if (r.b < 1 || Bk->dims[0] != P->dims[0] || Bk->dims[2] != P->dims[2] ||
        Bk->dims[3] != P->dims[3] || r.Cb != nchwc_blocks(r.C, r.b))
        return ref_fail(c, "shapes do not match");
    int64_t nt = in ? P->dims[0] * r.Cb : P->dims[0] * r.C;
    cpu_parallel_for(nt, cpu_threads_for((double)tensor_numel(Y) * 4), 0, NULL,
                     in ? rin_task : rout_task, &r);
    return 0;
}

static int run_rin(ref_ctx *c) { return run_reorder(c, true); }
static int run_rout(ref_ctx *c) { return run_reorder(c, false); }

static bool sup_reorder(const ir_node *n, const ir_type *const *in) {
    (void)n;
    return f32(in[0]);
}

/* Designated fields: members added later (hooks) stay NULL. */
const kiln_tactic cpu_t_nchwc_conv_avx512 = {
    .name = "f32_nchwc_conv_6x64_avx512", .op = OP_NchwcConv, .isa = ISA_AVX512,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_conv512, .run = run_conv512};
const kiln_tactic cpu_t_nchwc_conv_avx2 = {
    .name = "f32_nchwc_conv_6x16_avx2", .op = OP_NchwcConv, .isa = ISA_AVX2,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_conv2, .run = run_conv2};
/* W (input 1) is read only through the blob when there is one. */
const kiln_tactic cpu_t_nchwc_conv_taps_avx512 = {
    .name = "f32_nchwc_conv_taps_7x64_avx512", .op = OP_NchwcConv, .isa = ISA_AVX512,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_taps512, .run = run_taps512,
    .prepare = taps_prepare, .blob_replaces = 1u << 1};
const kiln_tactic cpu_t_nchwc_conv_taps_avx2 = {
    .name = "f32_nchwc_conv_taps_6x16_avx2", .op = OP_NchwcConv, .isa = ISA_AVX2,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_taps2, .run = run_taps2,
    .prepare = taps_prepare, .blob_replaces = 1u << 1};
const kiln_tactic cpu_t_nchwc_dwconv_avx512 = {
    .name = "f32_nchwc_dwconv_6x16_avx512", .op = OP_NchwcConv, .isa = ISA_AVX512,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_dw512, .run = run_dw512};
const kiln_tactic cpu_t_nchwc_dwconv_avx2 = {
    .name = "f32_nchwc_dwconv_6x8_avx2", .op = OP_NchwcConv, .isa = ISA_AVX2,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_dw2, .run = run_dw2};
const kiln_tactic cpu_t_nchwc_pool_avx512 = {
    .name = "f32_nchwc_pool_16_avx512", .op = OP_NchwcPool, .isa = ISA_AVX512,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_pool512, .run = run_pool512};
const kiln_tactic cpu_t_nchwc_pool_avx2 = {
    .name = "f32_nchwc_pool_8_avx2", .op = OP_NchwcPool, .isa = ISA_AVX2,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_pool2, .run = run_pool2};
const kiln_tactic cpu_t_nchwc_reorder_in_c = {
    .name = "f32_nchwc_reorder_in_c", .op = OP_NchwcReorderIn, .isa = 0,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_reorder, .run = run_rin};
const kiln_tactic cpu_t_nchwc_reorder_out_c = {
    .name = "f32_nchwc_reorder_out_c", .op = OP_NchwcReorderOut, .isa = 0,
    .flags = TACTIC_OVERWRITES_OUTPUT, .supports = sup_reorder, .run = run_rout};
