/* cpu_int8.c: the INT8 convolution tactics (QLinearConv, 2-D, any group,
** stride, dilation and padding; uint8 or int8 activations and outputs, int8
** weights per tensor or per output channel). Per image and group: im2col
** into the 4-byte-interleaved blocks of cpu_int8.h (threaded over blocks),
** then tiles of CPU_Q8_MR output channels x CPU_Q8_NB positions (threaded)
** through an ISA microkernel and the requantizing epilogue, which writes
** the int8/uint8 output directly. Results are bit-identical to the
** reference kernel (same int32 wrap, same float32 multiplier steps, double
** requantization, half-to-even rounding, saturation). Two other paths
** share the epilogue: at most 8 output positions (a batch-1 Gemm) run as
** dot products that stream the weights once; depthwise convs run direct.
** The VNNI, 7-bit and old AVX2 tactics read the weights in place (the
** model's OIHW int8) and compute the weight row sums the zero-point
** correction needs on every run (only when the activation zero point is
** not 0). The AVX2 kernel16 tactics (u8s8_qconv_im2col_w16_6x8_avx2 and
** the integer Winograd u8s8_qconv_wino2x2_6x8_avx2 for 3x3 stride-1
** layers) take weights widened to int16 and packed at build time, with
** their row sums, from the layer's prepared blob (made at run time when
** there is none). Scratch comes from the layer's planned workspace
** (malloc'ed only when the caller gives too little).
** Also here: QAdd, per-tensor 8-bit QuantizeLinear/DequantizeLinear and
** an 8-bit MaxPool, the other layers the qdq pass leaves in INT8 graphs. */
#include "cpu_int8.h"
#include "cpu_gemm.h"
#include "cpu_tactics.h"

#include <math.h>

/* ------------------------------------------------------- portable pieces */

void cpu_q8_kernel_c(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K,
                     int mr, int32_t *acc) {
    int64_t Kq = (K + 3) / 4;
    for (int r = 0; r < mr; r++) {
        uint32_t a[CPU_Q8_NB];
        for (int p = 0; p < CPU_Q8_NB; p++) a[p] = 0;
        const int8_t *wr = w + r * ldw;
        for (int64_t kq = 0; kq < Kq; kq++) {
            int8_t wv[4] = {0, 0, 0, 0};
            for (int j = 0; j < 4 && 4 * kq + j < K; j++) wv[j] = wr[4 * kq + j];
            const uint8_t *x = xp + kq * CPU_Q8_NB * 4;
            for (int p = 0; p < CPU_Q8_NB; p++)
                a[p] += (uint32_t)(x[4 * p] * wv[0] + x[4 * p + 1] * wv[1] +
                                   x[4 * p + 2] * wv[2] + x[4 * p + 3] * wv[3]);
        }
        for (int p = 0; p < CPU_Q8_NB; p++) acc[r * CPU_Q8_NB + p] = (int32_t)a[p];
    }
}

void cpu_q8_epi_c(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y) {
    for (int64_t p = 0; p < n; p++) {
        uint32_t v = (uint32_t)acc[p] + e->beff;
        if (e->colsum) v -= (uint32_t)e->wz * (uint32_t)e->colsum[p];
        double d = (double)(int32_t)v * e->mult + e->yz;
        d = d < e->lo ? e->lo : d > e->hi ? e->hi : d;
        int32_t q = (int32_t)nearbyint(d);
        if (e->y_signed) ((int8_t *)y)[p] = (int8_t)q;
        else ((uint8_t *)y)[p] = (uint8_t)q;
    }
}

static inline float q8_load(const void *p, int64_t i, bool s) {
    return s ? (float)((const int8_t *)p)[i] : (float)((const uint8_t *)p)[i];
}

void cpu_q8_add_c(const cpu_q8_add *p, const void *a, const void *b, void *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float av = (q8_load(a, i, p->a_signed) - p->za) * p->sa;
        float bv = (q8_load(b, i, p->b_signed) - p->zb) * p->sb;
        float q = (av + bv) / p->sy;
        q = q < -1e9f ? -1e9f : q > 1e9f ? 1e9f : q;
        int32_t r = (int32_t)nearbyintf(q) + p->zy;
        r = r < p->lo ? p->lo : r > p->hi ? p->hi : r;
        if (p->y_signed) ((int8_t *)y)[i] = (int8_t)r;
        else ((uint8_t *)y)[i] = (uint8_t)r;
    }
}

void cpu_q8_dot_c(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K, int64_t m0,
                  int64_t m1, int32_t *out) {
    for (int64_t m = m0; m < m1; m++) {
        const int8_t *wr = w + m * ldw;
        uint32_t a = 0;
        for (int64_t k = 0; k < K; k++) a += (uint32_t)(x[k] * wr[k]);
        out[m - m0] = (int32_t)a;
    }
}

void cpu_q8_quant_c(const cpu_q8_qparams *p, const float *x, void *y, int64_t n) {
    cpu_q8_quant_body(p, x, y, n);
}

void cpu_q8_dequant_c(const cpu_q8_qparams *p, const void *x, float *y, int64_t n) {
    cpu_q8_dequant_body(p, x, y, n);
}

const cpu_q8_isa cpu_q8_c = {"c", true, cpu_q8_kernel_c, cpu_q8_epi_c, cpu_q8_add_c,
                             cpu_q8_dot_c, cpu_q8_quant_c, cpu_q8_dequant_c, NULL, NULL};

int64_t cpu_q8_w16_elems(int64_t M, int64_t K) {
    return (M + CPU_Q8_W16_MR - 1) / CPU_Q8_W16_MR * ((K + 3) / 4) * CPU_Q8_W16_MR * 4;
}

static void pack_w16(const int8_t *w8, const int16_t *w16, int64_t M, int64_t K,
                     int16_t *dst) {
    int64_t Kq = (K + 3) / 4, tiles = (M + CPU_Q8_W16_MR - 1) / CPU_Q8_W16_MR;
    for (int64_t t = 0; t < tiles; t++)
        for (int64_t kq = 0; kq < Kq; kq++)
            for (int r = 0; r < CPU_Q8_W16_MR; r++)
                for (int j = 0; j < 4; j++) {
                    int64_t m = t * CPU_Q8_W16_MR + r, k = 4 * kq + j;
                    *dst++ = (int16_t)(m >= M || k >= K ? 0 : w8 ? w8[m * K + k]
                                                                 : w16[m * K + k]);
                }
}

void cpu_q8_pack_w16(const int8_t *w, int64_t M, int64_t K, int16_t *dst) {
    pack_w16(w, NULL, M, K, dst);
}

/* ------------------------------------------------------------- geometry */

typedef struct q8_conv {
    int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, OH, OW, P, K, Kq, nblk;
    int64_t sh, sw, dh, dw, ph, pw;
    bool x_signed, y_signed;
} q8_conv;

static bool is_q8(kiln_dtype t) {
    return t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT8;
}

static bool geom(const ir_node *nd, const int64_t *xd, const int64_t *wd, q8_conv *g) {
    memset(g, 0, sizeof *g);
    g->N = xd[0]; g->C = xd[1]; g->H = xd[2]; g->W = xd[3];
    g->M = wd[0]; g->kh = wd[2]; g->kw = wd[3];
    g->G = ir_attr_int(nd, "group", 1);
    if (g->G < 1 || g->M % g->G || wd[1] * g->G != g->C) return false;
    g->Cg = wd[1];
    g->Mg = g->M / g->G;
    int np = 0, ns = 0, nl = 0;
    const int64_t *pads = ir_attr_ints(nd, "pads", &np);
    const int64_t *st = ir_attr_ints(nd, "strides", &ns);
    const int64_t *dl = ir_attr_ints(nd, "dilations", &nl);
    g->sh = st && ns == 2 ? st[0] : 1;
    g->sw = st && ns == 2 ? st[1] : 1;
    g->dh = dl && nl == 2 ? dl[0] : 1;
    g->dw = dl && nl == 2 ? dl[1] : 1;
    if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) return false;
    const char *ap = ir_attr_str(nd, "auto_pad", "NOTSET");
    int64_t ekh = (g->kh - 1) * g->dh + 1, ekw = (g->kw - 1) * g->dw + 1;
    if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        bool up = ap[5] == 'U';
        g->OH = (g->H + g->sh - 1) / g->sh;
        g->OW = (g->W + g->sw - 1) / g->sw;
        int64_t th = KILN_MAX(0, (g->OH - 1) * g->sh + ekh - g->H);
        int64_t tw = KILN_MAX(0, (g->OW - 1) * g->sw + ekw - g->W);
        g->ph = up ? th / 2 : th - th / 2;
        g->pw = up ? tw / 2 : tw - tw / 2;
    } else {
        bool valid = strcmp(ap, "VALID") == 0;
        int64_t p0 = !valid && pads && np == 4 ? pads[0] : 0;
        int64_t p1 = !valid && pads && np == 4 ? pads[1] : 0;
        int64_t p2 = !valid && pads && np == 4 ? pads[2] : 0;
        int64_t p3 = !valid && pads && np == 4 ? pads[3] : 0;
        g->ph = p0;
        g->pw = p1;
        g->OH = (g->H + p0 + p2 - ekh) / g->sh + 1;
        g->OW = (g->W + p1 + p3 - ekw) / g->sw + 1;
    }
    if (g->OH < 0 || g->OW < 0) return false;
    g->P = g->OH * g->OW;
    g->K = g->Cg * g->kh * g->kw;
    g->Kq = (g->K + 3) / 4;
    g->nblk = (g->P + CPU_Q8_NB - 1) / CPU_Q8_NB;
    return true;
}

/* ------------------------------------------------------------- the run */

typedef struct q8_run {
    const q8_conv *g;
    const cpu_q8_isa *isa;
    const uint8_t *x;        /* this image and group: [Cg, H, W] */
    const int8_t *w;         /* this group's rows: [Mg, K] */
    const int16_t *w16;      /* the same rows packed for isa->kernel16, or NULL */
    const int8_t *wamx;      /* the same rows packed for isa->tile, or NULL */
    uint8_t *y;              /* this image and group: [Mg, P] (bytes) */
    uint8_t *xp;             /* nblk blocks of Kq * NB * 4 bytes */
    uint8_t *rows;           /* im2col rows [K, P], or NULL (direct) */
    int32_t *colsum;         /* nblk * NB, or NULL */
    const cpu_q8_epi *epi;   /* Mg of them, for this group */
    uint8_t flip, xzu;
    int64_t mchunk, nmc;
} q8_run;

/* t[i] = xr[off + i * s] (flipped) for output columns c0 <= i < c1, whose
** indices lie in the row xr. */
static void copy_cols(const q8_run *r, const uint8_t *xr, int64_t off, int64_t s, int64_t c0,
                      int64_t c1, uint8_t *t) {
    if (c1 <= c0) return;
    const uint8_t *src = xr + (off + c0 * s); /* column c0 */
    int64_t n = c1 - c0;
    t += c0;
    if (s == 1) {
        memcpy(t, src, (size_t)n);
        if (r->flip)
            for (int64_t i = 0; i < n; i++) t[i] ^= 0x80;
    } else if (s == 2) {
        /* even bytes of 16-bit pairs: a loop the compiler vectorizes (a
        ** mask and a pack), unlike the stride-2 byte gather; the last
        ** one alone, so the row's end is never read past */
        int64_t i = 0;
        for (; i + 1 < n; i++) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            v = (uint16_t)(v >> 8);
#endif
            t[i] = (uint8_t)((uint8_t)v ^ r->flip);
        }
        for (; i < n; i++) t[i] = (uint8_t)(src[2 * i] ^ r->flip);
    } else {
        for (int64_t i = 0; i < n; i++) t[i] = (uint8_t)(src[i * s] ^ r->flip);
    }
}

/* Phase 1 of packing, task k: im2col row k (all P positions, padding
** included, signed inputs flipped) into r->rows + k * P. Not used when the
** conv is 1x1 with stride 1 and no padding: x's channels are those rows. */
static void im2col_task(void *arg, int64_t k, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_run *r = arg;
    const q8_conv *g = r->g;
    uint8_t *row = r->rows + k * g->P;
    /* the channel, kernel offsets and the output columns whose input
    ** column ox * s + off lies in [0, W) once per k, then each output row
    ** (a 3x3 layer's rows are short: per-row divisions dominated) */
    int64_t ksz = g->kh * g->kw, n = g->OW, s = g->sw;
    int64_t c = k / ksz, rr = k % ksz, ky = rr / g->kw, kx = rr % g->kw;
    int64_t off = kx * g->dw - g->pw;
    int64_t clo = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t chi = g->W - 1 - off < 0 ? 0 : (g->W - 1 - off) / s + 1;
    int64_t c0 = KILN_MIN(clo, n), c1 = KILN_MAX(c0, KILN_MIN(chi, n));
    const uint8_t *xc = r->x + c * g->H * g->W;
    if (s == 1 && g->sh == 1 && n == g->W && !r->flip && c0 < c1) {
        /* output rows as long as input rows, unit strides: the rows that
        ** read inside the plane are one contiguous copy (each output row's
        ** columns c0..c1 from input row oy + dy, one span of the plane),
        ** then their c0 and n - c1 padding columns get the zero point */
        int64_t dy = ky * g->dh - g->ph;
        int64_t oy0 = KILN_MIN(KILN_MAX(-dy, 0), g->OH);
        int64_t oy1 = KILN_MAX(KILN_MIN(g->H - dy, g->OH), oy0);
        if (oy0 > 0) memset(row, r->xzu, (size_t)(oy0 * n));
        if (oy1 < g->OH) memset(row + oy1 * n, r->xzu, (size_t)((g->OH - oy1) * n));
        if (oy1 > oy0) {
            int64_t len = (oy1 - 1 - oy0) * n + c1 - c0;
            memcpy(row + oy0 * n + c0, xc + ((oy0 + dy) * g->W + off + c0), (size_t)len);
            for (int64_t oy = oy0; oy < oy1; oy++) {
                uint8_t *t = row + oy * n;
                for (int64_t i = 0; i < c0; i++) t[i] = r->xzu;
                for (int64_t i = c1; i < n; i++) t[i] = r->xzu;
            }
        }
        return;
    }
    for (int64_t oy = 0; oy < g->OH; oy++) {
        uint8_t *t = row + oy * n;
        int64_t iy = oy * g->sh - g->ph + ky * g->dh;
        if (iy < 0 || iy >= g->H) {
            memset(t, r->xzu, (size_t)n);
            continue;
        }
        if (c0 > 0) memset(t, r->xzu, (size_t)c0);
        copy_cols(r, xc + iy * g->W, off, s, c0, c1, t);
        if (c1 < n) memset(t + c1, r->xzu, (size_t)(n - c1));
    }
}

/* Phase 2, task b: interleaves 4 rows at a time into block b's 32-bit
** words (a loop the compiler vectorizes), zero beyond K and past P. */
static void pack_task(void *arg, int64_t b, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_run *r = arg;
    const q8_conv *g = r->g;
    uint8_t *dst = r->xp + b * g->Kq * CPU_Q8_NB * 4;
    int64_t p0 = b * CPU_Q8_NB, np = KILN_MIN(CPU_Q8_NB, g->P - p0);
    int32_t *cs = r->colsum ? r->colsum + p0 : NULL;
    if (cs)
        for (int p = 0; p < CPU_Q8_NB; p++) cs[p] = 0;
    static const uint8_t zeros[CPU_Q8_NB];
    const uint8_t *src = r->rows ? r->rows : r->x;
    for (int64_t kq = 0; kq < g->Kq; kq++) {
        uint32_t *d = (uint32_t *)(void *)(dst + kq * CPU_Q8_NB * 4);
        const uint8_t *t[4];
        uint32_t flip = 0;
        for (int j = 0; j < 4; j++) {
            int64_t k = 4 * kq + j;
            t[j] = k < g->K ? src + k * g->P + p0 : zeros;
            /* direct rows are x itself: flip signed values here */
            if (k < g->K && !r->rows) flip |= (uint32_t)r->flip << (8 * j);
        }
        if (r->isa->pack4 && !cs) {
            r->isa->pack4(t, flip, (int)np, d);
            continue;
        }
        int64_t i = 0;
        if (r->isa->pack4) {
            r->isa->pack4(t, flip, (int)np, d);
        } else {
            for (; i < np; i++)
                d[i] = ((uint32_t)t[0][i] | (uint32_t)t[1][i] << 8 | (uint32_t)t[2][i] << 16 |
                        (uint32_t)t[3][i] << 24) ^ flip;
            for (; i < CPU_Q8_NB; i++) d[i] = 0;
        }
        if (cs)
            for (i = 0; i < np; i++)
                cs[i] += (int32_t)(d[i] & 0xFF) + (int32_t)(d[i] >> 8 & 0xFF) +
                         (int32_t)(d[i] >> 16 & 0xFF) + (int32_t)(d[i] >> 24);
    }
}

/* A block's last 1..Q8_TAIL_DOT positions past its whole 16-position
** vectors run as dot products over K (each weight row read once per
** position, 16x fewer multiply-adds than a vector of 16 positions would
** spend on them): ResNet's 7x7 = 49 positions are 3 vectors and one dot
** instead of 4 vectors. Columns of at most Q8_TAIL_KMAX bytes. */
enum { Q8_TAIL_DOT = 4, Q8_TAIL_KMAX = 8192, Q8_TAIL_ROWS = 64 };

static void tail_dots(const q8_run *r, const uint8_t *xp, int64_t p0, int64_t pa, int64_t pb,
                      int64_t m0, int64_t m1) {
    const q8_conv *g = r->g;
    _Alignas(64) uint8_t col[Q8_TAIL_KMAX];
    int32_t out[Q8_TAIL_ROWS];
    int64_t kpad = (g->Kq * 4 + 63) / 64 * 64;
    for (int64_t p = pa; p < pb; p++) {
        /* the packed block's words of position p are its column */
        for (int64_t kq = 0; kq < g->Kq; kq++)
            memcpy(col + 4 * kq, xp + (kq * CPU_Q8_NB + p) * 4, 4);
        memset(col + 4 * g->Kq, 0, (size_t)(kpad - 4 * g->Kq));
        for (int64_t mb = m0; mb < m1; mb += Q8_TAIL_ROWS) {
            int64_t me = KILN_MIN(m1, mb + Q8_TAIL_ROWS);
            r->isa->dot(col, r->w, g->K, g->K, mb, me, out);
            for (int64_t m = mb; m < me; m++) {
                cpu_q8_epi e = r->epi[m];
                if (e.colsum) e.colsum = r->colsum + p0 + p;
                r->isa->epi(&e, out + (m - mb), 1, r->y + m * g->P + p0 + p);
            }
        }
    }
}

static void gemm_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_run *r = arg;
    const q8_conv *g = r->g;
    int64_t b = t / r->nmc, mc = t % r->nmc;
    int64_t p0 = b * CPU_Q8_NB, np = KILN_MIN(CPU_Q8_NB, g->P - p0);
    int64_t m0 = mc * r->mchunk, m1 = KILN_MIN(g->Mg, m0 + r->mchunk);
    const uint8_t *xp = r->xp + b * g->Kq * CPU_Q8_NB * 4;
    if (r->wamx) { /* AMX: the whole chunk, epilogue included */
        cpu_q8_tile_job j = {xp, r->wamx, g->K, m0, m1, (int)np, r->epi,
                             r->colsum ? r->colsum + p0 : NULL, r->y + p0, g->P};
        r->isa->tile(&j);
        return;
    }
    int32_t acc[CPU_Q8_MR * CPU_Q8_NB];
    size_t ysz = 1;
    if (!r->w16 && r->isa->kernel_epi) {
        /* whole vectors through the fused kernel, a short tail as dots */
        int64_t nv = np % 16 && np % 16 <= Q8_TAIL_DOT && g->Kq * 4 <= Q8_TAIL_KMAX
                         ? np / 16 * 16 : np;
        for (int64_t m = m0; m < m1 && nv; m += CPU_Q8_MR) {
            int mr = (int)KILN_MIN(CPU_Q8_MR, m1 - m);
            r->isa->kernel_epi(xp, r->w + m * g->K, g->K, g->K, mr, (int)nv, r->epi + m,
                               r->colsum ? r->colsum + p0 : NULL, r->y + m * g->P + p0,
                               g->P);
        }
        if (nv < np) tail_dots(r, xp, p0, nv, np, m0, m1);
        return;
    }
    for (int64_t m = m0; m < m1; m += CPU_Q8_MR) {
        int mr = (int)KILN_MIN(CPU_Q8_MR, m1 - m);
        if (r->w16) /* CPU_Q8_MR == CPU_Q8_W16_MR: m is a tile start */
            r->isa->kernel16(xp, r->w16 + m / CPU_Q8_W16_MR * g->Kq * CPU_Q8_W16_MR * 4,
                             g->Kq, mr, (int)np, acc);
        else if (r->isa->kernel_n && np < CPU_Q8_NB)
            r->isa->kernel_n(xp, r->w + m * g->K, g->K, g->K, mr, (int)np, acc);
        else
            r->isa->kernel(xp, r->w + m * g->K, g->K, g->K, mr, acc);
        for (int i = 0; i < mr; i++) {
            cpu_q8_epi e = r->epi[m + i];
            if (e.colsum) e.colsum = r->colsum + p0;
            r->isa->epi(&e, acc + i * CPU_Q8_NB, np, r->y + ((m + i) * g->P + p0) * ysz);
        }
    }
}

/* Positions at or below which a conv runs as dot products (GEMV path). */
enum { Q8_GEMV_MAX_P = 8, Q8_GEMV_ROWS = 64 };
_Static_assert((int)CPU_Q8_MR == (int)CPU_Q8_W16_MR, "kernel16 tiles are the driver's row tiles");

/* Scratch of one run, carved from one block (64-byte aligned pieces). */
typedef struct q8_scratch {
    size_t epi, xp, cs, rows, total;
} q8_scratch;

static size_t al64(size_t v) { return (v + 63) & ~(size_t)63; }

static void scratch_sizes(const q8_conv *g, bool direct, q8_scratch *s) {
    s->epi = al64((size_t)(g->M ? g->M : 1) * sizeof(cpu_q8_epi));
    /* + the AMX kernel's overread of the last block (cpu_int8.h) */
    s->xp = al64((size_t)(g->nblk * g->Kq * CPU_Q8_NB * 4) + CPU_Q8_AMX_SLACK);
    s->cs = al64((size_t)(g->nblk * CPU_Q8_NB) * sizeof(int32_t) + 1);
    s->rows = direct ? 0 : al64((size_t)(g->K * g->P) + 1);
    /* the GEMV path's columns live in the xp area */
    size_t cols = al64((size_t)(g->P * ((g->K + 63) / 64 * 64)) + 1);
    if (g->P <= Q8_GEMV_MAX_P && cols > s->xp) s->xp = cols;
    s->total = s->epi + s->xp + s->cs + s->rows + 64;
}

static bool is_direct(const q8_conv *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->OH == g->H &&
           g->OW == g->W && g->ph == 0 && g->pw == 0;
}

static size_t q8_workspace(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || !in[3] || in[0]->rank != 4 || in[3]->rank != 4) return 0;
    for (int i = 0; i < 4; i++)
        if (in[0]->dims[i] < 0 || in[3]->dims[i] < 0) return 0;
    q8_conv g;
    if (!geom(n, in[0]->dims, in[3]->dims, &g)) return 0;
    q8_scratch s;
    scratch_sizes(&g, is_direct(&g), &s);
    return s.total;
}

/* ---- few positions: one dot product per output (weights streamed once) */
typedef struct q8_gemv {
    const q8_run *r;
    const uint8_t *xcol;    /* [P][Kpad] columns (flipped, zero-padded) */
    const int32_t *cs;      /* [P] column sums, or NULL */
    int64_t kpad;
} q8_gemv;

static void gemv_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_gemv *v = arg;
    const q8_run *r = v->r;
    const q8_conv *g = r->g;
    int64_t m0 = t * Q8_GEMV_ROWS, m1 = KILN_MIN(g->Mg, m0 + Q8_GEMV_ROWS);
    int32_t acc[Q8_GEMV_ROWS];
    for (int64_t p = 0; p < g->P; p++) {
        r->isa->dot(v->xcol + p * v->kpad, r->w, g->K, g->K, m0, m1, acc);
        for (int64_t m = m0; m < m1; m++) {
            cpu_q8_epi e = r->epi[m];
            if (e.colsum) e.colsum = v->cs + p;
            cpu_q8_epi_c(&e, acc + (m - m0), 1, r->y + m * g->P + p);
        }
    }
}

/* Columns of this image and group for the GEMV path, from im2col rows
** (r->rows, already flipped) or x itself (flipped here). */
static void gemv_columns(const q8_run *r, uint8_t *xcol, int32_t *cs, int64_t kpad) {
    const q8_conv *g = r->g;
    for (int64_t p = 0; p < g->P; p++) {
        uint8_t *col = xcol + p * kpad;
        int32_t s = 0;
        for (int64_t k = 0; k < g->K; k++) {
            uint8_t b = r->rows ? r->rows[k * g->P + p] : (uint8_t)(r->x[k * g->P + p] ^ r->flip);
            col[k] = b;
            s += b;
        }
        memset(col + g->K, 0, (size_t)(kpad - g->K));
        if (cs) cs[p] = s;
    }
}

/* ---- depthwise (one input and one output channel per group): a direct
** conv per plane in exact int32, taps applied to whole output rows over
** the columns where they land inside the input (padding holds the zero
** point, which contributes nothing, so it is skipped), then the ISA's
** requantizing epilogue per row. The im2col tiles would use one row of 6. */
typedef struct q8_dw {
    const q8_conv *g;
    const cpu_q8_isa *isa;
    const uint8_t *x;         /* [N, C, H, W] (int8 or uint8 bytes) */
    const int8_t *w;          /* [C, 1, kh, kw] */
    const int32_t *bias;      /* [C] or NULL */
    const cpu_q8_epi *epi;    /* [C] (mult, yz, lo, hi) */
    uint8_t *y;
    int32_t xz;
    bool x_signed;
} q8_dw;

enum { Q8_DW_COLS = 1024 };

static void dw_task(void *arg, int64_t plane, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_dw *d = arg;
    const q8_conv *g = d->g;
    int64_t ch = plane % g->C;
    const uint8_t *x = d->x + plane * g->H * g->W;
    const int8_t *w = d->w + ch * g->kh * g->kw;
    uint8_t *y = d->y + plane * g->P;
    int32_t acc[Q8_DW_COLS], xr[Q8_DW_COLS];
    cpu_q8_epi e = d->epi[ch];
    e.beff = d->bias ? (uint32_t)d->bias[ch] : 0;
    e.colsum = NULL;
    for (int64_t oy = 0; oy < g->OH; oy++)
        for (int64_t c0 = 0; c0 < g->OW; c0 += Q8_DW_COLS) {
            int64_t n = KILN_MIN(Q8_DW_COLS, g->OW - c0);
            for (int64_t i = 0; i < n; i++) acc[i] = 0;
            for (int64_t ky = 0; ky < g->kh; ky++) {
                int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                if (iy < 0 || iy >= g->H) continue;
                const uint8_t *row = x + iy * g->W;
                for (int64_t kx = 0; kx < g->kw; kx++) {
                    int32_t wv = (int32_t)w[ky * g->kw + kx] - e.wz;
                    int64_t off = kx * g->dw - g->pw, s = g->sw;
                    int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
                    int64_t hi = g->W - 1 - off < 0 ? 0 : (g->W - 1 - off) / s + 1;
                    lo = KILN_MAX(lo, c0) - c0;
                    hi = KILN_MIN(hi, c0 + n) - c0;
                    if (lo >= hi) continue;
                    int64_t base = (c0 + lo) * s + off;
                    int64_t cnt = hi - lo;
                    if (d->x_signed)
                        for (int64_t i = 0; i < cnt; i++)
                            xr[i] = (int32_t)(int8_t)row[base + i * s];
                    else
                        for (int64_t i = 0; i < cnt; i++) xr[i] = row[base + i * s];
                    for (int64_t i = 0; i < cnt; i++)
                        acc[lo + i] = (int32_t)((uint32_t)acc[lo + i] +
                                                (uint32_t)((xr[i] - d->xz) * wv));
                }
            }
            d->isa->epi(&e, acc, n, y + oy * g->OW + c0);
        }
}

/* ---- prepared weights of the kernel16 tactics (the engine's layer blob):
** a 64-byte header, the weight row sums (int32, [G * Mg], what the
** activation zero-point term needs; padded to 64 bytes), then per group
** the rows packed by cpu_q8_pack_w16. Made by w16_prepare at build time;
** without one (timing, tests) a run packs into a buffer of its own. */
typedef struct q8_w16_hdr {
    char magic[8];          /* "KLNQ8W16"; "KLNQ8AMX": cpu_q8_pack_amx's int8 tiles */
    uint32_t version, mr;   /* Q8_W16_VERSION, CPU_Q8_W16_MR (CPU_Q8_AMX_MR) */
    int64_t groups, mg, k;  /* G, output channels per group, K per group */
    uint8_t zero[24];
} q8_w16_hdr;

/* A layer's prepared blob is the size its layout gives and starts with the
** header its kernel and shape expect; else the engine predates them. */
static int q8_blob_check(ref_ctx *c, const q8_w16_hdr *want, size_t total) {
    q8_w16_hdr got;
    if (c->blob_size != total)
        return ref_fail(c, "prepared int8 weights have %zu bytes, expected %zu: "
                        "rebuild the engine", c->blob_size, total);
    memcpy(&got, c->blob, sizeof got);
    if (memcmp(&got, want, sizeof got))
        return ref_fail(c, "prepared int8 weights are for another kernel or shape: "
                        "rebuild the engine");
    return 0;
}
_Static_assert(sizeof(q8_w16_hdr) == 64, "blob header is 64 bytes");
enum { Q8_W16_VERSION = 1 };

/* Bytes of the blob and offset of the packed weights; false on overflow. */
static bool w16_layout(int64_t G, int64_t Mg, int64_t K, bool amx, size_t *bytes,
                       size_t *woff) {
    size_t rs, nw, t;
    if (G < 1 || Mg < 1 || K < 1 || K > INT64_MAX / 8 || Mg > INT64_MAX / 8) return false;
    if (kiln_mul_overflow((size_t)G, (size_t)Mg, &rs) || kiln_mul_overflow(rs, 4, &rs) ||
        rs > KILN_MAX_ALLOC)
        return false;
    *woff = sizeof(q8_w16_hdr) + al64(rs);
    size_t per = amx ? (size_t)cpu_q8_amx_w_bytes(Mg, K)
                     : (size_t)cpu_q8_w16_elems(Mg, K) * sizeof(int16_t);
    if (kiln_mul_overflow(per, (size_t)G, &nw) || kiln_add_overflow(*woff, nw, &t) ||
        t > KILN_MAX_ALLOC)
        return false;
    *bytes = t;
    return true;
}

static void w16_hdr_fill(q8_w16_hdr *h, int64_t G, int64_t Mg, int64_t K, bool amx) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, amx ? "KLNQ8AMX" : "KLNQ8W16", 8);
    h->version = Q8_W16_VERSION;
    h->mr = amx ? CPU_Q8_AMX_MR : CPU_Q8_W16_MR;
    h->groups = G;
    h->mg = Mg;
    h->k = K;
}

/* G, Mg, K of a QLinearConv whose weights get packed; false for the
** depthwise layers (their direct path reads W in place) and odd shapes. */
static bool w16_geom(const ir_node *n, int64_t M, int64_t Cg, int64_t kh, int64_t kw,
                     int64_t *G, int64_t *Mg, int64_t *K) {
    *G = ir_attr_int(n, "group", 1);
    if (*G < 1 || M < 1 || M % *G || Cg < 1 || kh < 1 || kw < 1) return false;
    *Mg = M / *G;
    if (Cg == 1 && *Mg == 1 && *G > 1) return false;
    if (Cg > INT32_MAX || kh > INT32_MAX / Cg || kw > INT32_MAX / (Cg * kh)) return false;
    *K = Cg * kh * kw;
    return true;
}

static kiln_status wpack_prepare(const ir_node *n, const kiln_tensor *const *cin,
                                 void **blob, size_t *bytes, bool amx) {
    *blob = NULL;
    *bytes = 0;
    const kiln_tensor *w = n->n_in > 3 ? cin[3] : NULL;
    int64_t G, Mg, K;
    size_t total, woff;
    if (!w || !w->data || w->dtype != KILN_DTYPE_INT8 || w->rank != 4 ||
        !w16_geom(n, w->dims[0], w->dims[1], w->dims[2], w->dims[3], &G, &Mg, &K))
        return KILN_OK;
    if (!w16_layout(G, Mg, K, amx, &total, &woff))
        return kiln_error(KILN_UNSUPPORTED, "int8 weights too large to pack");
    uint8_t *b = kiln_aligned_alloc(total);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing int8 weights");
    memset(b, 0, total); /* deterministic bytes: rebuilds are identical */
    q8_w16_hdr h;
    w16_hdr_fill(&h, G, Mg, K, amx);
    memcpy(b, &h, sizeof h);
    const int8_t *wv = w->data;
    int32_t *rs = (int32_t *)(void *)(b + sizeof h);
    for (int64_t m = 0; m < G * Mg; m++) {
        uint32_t sum = 0;
        for (int64_t k = 0; k < K; k++) sum += (uint32_t)(int32_t)wv[m * K + k];
        rs[m] = (int32_t)sum;
    }
    if (amx) {
        int64_t per = cpu_q8_amx_w_bytes(Mg, K);
        for (int64_t gi = 0; gi < G; gi++)
            cpu_q8_pack_amx(wv + gi * Mg * K, Mg, K, (int8_t *)(b + woff) + gi * per);
    } else {
        int16_t *dst = (int16_t *)(void *)(b + woff);
        int64_t per = cpu_q8_w16_elems(Mg, K);
        for (int64_t gi = 0; gi < G; gi++)
            cpu_q8_pack_w16(wv + gi * Mg * K, Mg, K, dst + gi * per);
    }
    *blob = b;
    *bytes = total;
    return KILN_OK;
}

static kiln_status w16_prepare(const ir_node *n, const ir_type *const *in,
                               const kiln_tensor *const *cin, void **blob, size_t *bytes) {
    (void)in;
    return wpack_prepare(n, cin, blob, bytes, false);
}

static kiln_status amx_prepare(const ir_node *n, const ir_type *const *in,
                               const kiln_tensor *const *cin, void **blob, size_t *bytes) {
    (void)in;
    return wpack_prepare(n, cin, blob, bytes, true);
}

/* The blob's row sums and packed weights for this layer, checked against
** the shapes it runs on; 0 with both NULL when there is no blob. */
static int w16_blob(ref_ctx *c, const q8_conv *g, bool amx, const int32_t **rs,
                    const void **wp) {
    *rs = NULL;
    *wp = NULL;
    if (!c->blob) return 0;
    int64_t G, Mg, K;
    size_t total, woff;
    q8_w16_hdr want;
    if (!w16_geom(c->node, g->M, g->Cg, g->kh, g->kw, &G, &Mg, &K) ||
        !w16_layout(G, Mg, K, amx, &total, &woff))
        return ref_fail(c, "prepared int8 weights for a layer that takes none: "
                        "rebuild the engine");
    w16_hdr_fill(&want, G, Mg, K, amx);
    int rc = q8_blob_check(c, &want, total);
    if (rc) return rc;
    *rs = (const int32_t *)(const void *)((const uint8_t *)c->blob + sizeof want);
    *wp = (const uint8_t *)c->blob + woff;
    return 0;
}

/* ---- Winograd F(2x2, 3x3) on integers (3x3 stride-1 convolutions, one
** group, weight zero points 0). Per 2x2 output tile, the 4x4 input patch d
** (unsigned activations, the zero point in the padding) becomes
** V = Bt d B and the weights U' = (2G) g (2G)t, both small integers
** (|V| <= 1020, |U'| <= 9 * 128), so 16 int16 GEMMs over the channels
** (kernel16x, vpmaddwd) give M = U' . V exactly in int32 arithmetic, and
** At M A = 4 * acc, with acc the same sum over k of xu * w that the im2col
** path computes. Everything is linear and computed modulo 2^32, so the
** result is exact whenever |4 * acc| < 2^31; the tactic only takes layers
** whose weights guarantee it (255 * sum |w| < 2^29 for every output
** channel, checked on the constant weights), then the shared epilogue
** requantizes acc bit-identically to the reference. 2.25x fewer
** multiply-adds than the direct 3x3 for the cost of the transforms. */
static const int8_t WINO_G2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};

/* The sums stay exact: 255 * sum_k |w(m, k)| < 2^29 for every row m. */
static bool wino_bound_ok(const int8_t *w, int64_t M, int64_t K) {
    for (int64_t m = 0; m < M; m++) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; k++) s += w[m * K + k] < 0 ? -w[m * K + k] : w[m * K + k];
        if (255 * s >= (int64_t)1 << 29) return false;
    }
    return true;
}

/* U'[xi][m][c] (16 matrices [M, C], xi = 4 * i + j) from w [M, C, 3, 3],
** each packed by pack_w16, then stored tile by tile: the 16 matrices' part
** for output channels 6t .. 6t+5 at dst + (t * 16 + xi) * tile, tile =
** Cq * 6 * 4, so a task reads one contiguous stream per channel tile. */
static bool wino_pack_u(const int8_t *w, int64_t M, int64_t C, int16_t *dst) {
    int64_t per = cpu_q8_w16_elems(M, C), tile = (C + 3) / 4 * CPU_Q8_W16_MR * 4;
    int64_t tiles = per / tile;
    size_t n;
    if (kiln_mul_overflow((size_t)M, (size_t)C, &n) || kiln_mul_overflow(n, 2, &n)) return false;
    int16_t *u = malloc(n), *pk = malloc((size_t)per * sizeof(int16_t));
    if (!u || !pk) {
        free(u);
        free(pk);
        return false;
    }
    for (int xi = 0; xi < 16; xi++) {
        int i = xi / 4, j = xi % 4;
        for (int64_t mc = 0; mc < M * C; mc++) {
            const int8_t *g = w + mc * 9;
            int32_t acc = 0;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) acc += WINO_G2[i][a] * g[a * 3 + b] * WINO_G2[j][b];
            u[mc] = (int16_t)acc;
        }
        pack_w16(NULL, u, M, C, pk);
        for (int64_t t = 0; t < tiles; t++)
            memcpy(dst + (t * 16 + xi) * tile, pk + t * tile, (size_t)tile * sizeof(int16_t));
    }
    free(u);
    free(pk);
    return true;
}

typedef struct q8_wino {
    const q8_conv *g;
    const cpu_q8_isa *isa;
    const uint8_t *x;       /* this image: [C, H, W] */
    uint8_t *y;             /* this image: [M, P] */
    const int16_t *u;       /* per 6-channel tile, 16 packed [6, C] parts */
    int64_t uper;           /* elements of the 16 matrices */
    int16_t *v;             /* [16][nblk][Cq][NB][4] transformed inputs */
    int32_t *yb;            /* [M][P] exact sums */
    const cpu_q8_epi *epi;
    int64_t TH, TW, T, nblk, Cq, mchunk, nmc, wp;
    uint8_t flip, xzu;
} q8_wino;

/* Workspace of the Winograd path, in 64-byte aligned pieces. */
typedef struct q8_wino_ws {
    size_t epi, v, yb, scr, total;
} q8_wino_ws;

static void wino_sizes(const q8_conv *g, q8_wino_ws *s, int64_t *TH, int64_t *TW,
                       int64_t *nblk) {
    *TH = (g->OH + 1) / 2;
    *TW = (g->OW + 1) / 2;
    *nblk = (*TH * *TW + CPU_Q8_NB - 1) / CPU_Q8_NB;
    int64_t Cq = (g->C + 3) / 4;
    s->epi = al64((size_t)(g->M ? g->M : 1) * sizeof(cpu_q8_epi));
    s->v = al64((size_t)(16 * *nblk * Cq * CPU_Q8_NB * 4) * sizeof(int16_t) + 1);
    s->yb = al64((size_t)(g->M * g->P) * sizeof(int32_t) + 1);
    /* the caller's share of the input transform's scratch */
    s->scr = al64((size_t)cpu_q8_wino_scr_elems(*TW) * sizeof(int16_t) + 1);
    s->total = s->epi + s->v + s->yb + s->scr + 64;
}

static size_t wino_scr_bytes(int64_t TW) {
    return al64((size_t)cpu_q8_wino_scr_elems(TW) * sizeof(int16_t) + 1);
}

static void wino_in_task(void *arg, int64_t th, int tid, void *scratch) {
    (void)tid;
    const q8_wino *w = arg;
    const q8_conv *g = w->g;
    cpu_q8_wino_in_args a = {w->x, w->v, g->C, g->H, g->W, g->ph, g->pw, w->TW, w->nblk,
                             w->Cq, w->flip, w->xzu};
    cpu_q8_wino_in(&a, th, scratch);
}

/* Task (block b, channel chunk): per tile of 6 output channels, the 16
** products M[xi] = U'[xi] . V[xi] of the block's 64 tiles (kept in a
** small buffer that stays in cache), then the output transform
** At M A = 4 * acc into the exact sums yb. */
static void wino_gemm_task(void *arg, int64_t task, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_wino *w = arg;
    const q8_conv *g = w->g;
    int64_t mc = task % w->nmc, b = task / w->nmc;
    int64_t np = KILN_MIN(CPU_Q8_NB, w->T - b * CPU_Q8_NB);
    int64_t m0 = mc * w->mchunk, m1 = KILN_MIN(g->M, m0 + w->mchunk);
    int64_t vstride = w->nblk * w->Cq * CPU_Q8_NB * 4;
    const int16_t *vb = w->v + b * w->Cq * CPU_Q8_NB * 4;
    int32_t mm[16][CPU_Q8_MR * CPU_Q8_NB];
    for (int64_t m = m0; m < m1; m += CPU_Q8_MR) {
        int mr = (int)KILN_MIN(CPU_Q8_MR, m1 - m);
        int64_t tile = w->Cq * CPU_Q8_W16_MR * 4;
        const int16_t *ut = w->u + m / CPU_Q8_W16_MR * 16 * tile;
        for (int xi = 0; xi < 16; xi++)
            w->isa->kernel16x(vb + xi * vstride, ut + xi * tile, w->Cq, mr, (int)np, mm[xi]);
        for (int r = 0; r < mr; r++) {
            int32_t o[4][CPU_Q8_NB];
            int64_t off = r * CPU_Q8_NB;
            for (int64_t p = 0; p < np; p++) {
#define WM(i, j) ((uint32_t)mm[4 * (i) + (j)][off + p])
                uint32_t z00 = WM(0, 0) + WM(1, 0) + WM(2, 0), z10 = WM(1, 0) - WM(2, 0) - WM(3, 0);
                uint32_t z01 = WM(0, 1) + WM(1, 1) + WM(2, 1), z11 = WM(1, 1) - WM(2, 1) - WM(3, 1);
                uint32_t z02 = WM(0, 2) + WM(1, 2) + WM(2, 2), z12 = WM(1, 2) - WM(2, 2) - WM(3, 2);
                uint32_t z03 = WM(0, 3) + WM(1, 3) + WM(2, 3), z13 = WM(1, 3) - WM(2, 3) - WM(3, 3);
#undef WM
                /* 4 * acc, exact (the tactic's bound): divide back */
                o[0][p] = (int32_t)(z00 + z01 + z02) / 4;
                o[1][p] = (int32_t)(z01 - z02 - z03) / 4;
                o[2][p] = (int32_t)(z10 + z11 + z12) / 4;
                o[3][p] = (int32_t)(z11 - z12 - z13) / 4;
            }
            int32_t *yr = w->yb + (m + r) * g->P;
            for (int64_t p = 0; p < np; p++) {
                int64_t t = b * CPU_Q8_NB + p, oy = 2 * (t / w->TW), ox = 2 * (t % w->TW);
                int32_t *q = yr + oy * g->OW + ox;
                bool r2 = oy + 1 < g->OH, c2 = ox + 1 < g->OW;
                q[0] = o[0][p];
                if (c2) q[1] = o[1][p];
                if (r2) q[g->OW] = o[2][p];
                if (r2 && c2) q[g->OW + 1] = o[3][p];
            }
        }
    }
}

/* Requantization of output channel m. */
static void wino_out_task(void *arg, int64_t m, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_wino *w = arg;
    const q8_conv *g = w->g;
    cpu_q8_epi e = w->epi[m];
    e.colsum = NULL;
    w->isa->epi(&e, w->yb + m * g->P, g->P, w->y + m * g->P);
}

/* The layer geometry the Winograd path takes. */
static bool wino_shape(const q8_conv *g) {
    return g->G == 1 && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && g->C >= 1 && g->M >= 1;
}

/* Prepared blob of the Winograd tactic: header, row sums [M] (padded to
** 64 bytes), then U' packed by wino_pack_u (per 6-channel tile, its 16 parts). */
enum { Q8_WINO_VERSION = 1 };

static bool wino_layout(int64_t M, int64_t C, size_t *bytes, size_t *uoff) {
    size_t rs, nu, t;
    if (M < 1 || C < 1 || M > INT32_MAX || C > INT32_MAX) return false;
    if (kiln_mul_overflow((size_t)M, 4, &rs)) return false;
    *uoff = sizeof(q8_w16_hdr) + al64(rs);
    if (kiln_mul_overflow((size_t)cpu_q8_w16_elems(M, C), 16 * sizeof(int16_t), &nu) ||
        kiln_add_overflow(*uoff, nu, &t) || t > KILN_MAX_ALLOC)
        return false;
    *bytes = t;
    return true;
}

static void wino_hdr_fill(q8_w16_hdr *h, int64_t M, int64_t C) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "KLNQ8WG2", 8);
    h->version = Q8_WINO_VERSION;
    h->mr = CPU_Q8_W16_MR;
    h->groups = 1;
    h->mg = M;
    h->k = C;
}

static kiln_status wino_prepare(const ir_node *n, const ir_type *const *in,
                                const kiln_tensor *const *cin, void **blob, size_t *bytes) {
    (void)in;
    *blob = NULL;
    *bytes = 0;
    const kiln_tensor *w = n->n_in > 3 ? cin[3] : NULL;
    if (!w || !w->data || w->dtype != KILN_DTYPE_INT8 || w->rank != 4 || w->dims[2] != 3 ||
        w->dims[3] != 3 || ir_attr_int(n, "group", 1) != 1)
        return KILN_OK;
    int64_t M = w->dims[0], C = w->dims[1];
    size_t total, uoff;
    if (M < 1 || C < 1 || C > INT32_MAX / 9 || !wino_bound_ok(w->data, M, 9 * C))
        return KILN_OK; /* a run without a blob refuses it with the reason */
    if (!wino_layout(M, C, &total, &uoff))
        return kiln_error(KILN_UNSUPPORTED, "int8 weights too large to pack");
    uint8_t *b = kiln_aligned_alloc(total);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing int8 weights");
    memset(b, 0, total); /* deterministic bytes: rebuilds are identical */
    q8_w16_hdr h;
    wino_hdr_fill(&h, M, C);
    memcpy(b, &h, sizeof h);
    const int8_t *wv = w->data;
    int32_t *rs = (int32_t *)(void *)(b + sizeof h);
    for (int64_t m = 0; m < M; m++) {
        uint32_t sum = 0;
        for (int64_t k = 0; k < 9 * C; k++) sum += (uint32_t)(int32_t)wv[m * 9 * C + k];
        rs[m] = (int32_t)sum;
    }
    if (!wino_pack_u(wv, M, C, (int16_t *)(void *)(b + uoff))) {
        kiln_aligned_free(b);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing int8 weights");
    }
    *blob = b;
    *bytes = total;
    return KILN_OK;
}

static int wino_blob(ref_ctx *c, const q8_conv *g, const int32_t **rs, const int16_t **u) {
    *rs = NULL;
    *u = NULL;
    if (!c->blob) return 0;
    size_t total, uoff;
    q8_w16_hdr want;
    if (!wino_shape(g) || !wino_layout(g->M, g->C, &total, &uoff))
        return ref_fail(c, "prepared int8 weights for a layer that takes none: "
                        "rebuild the engine");
    wino_hdr_fill(&want, g->M, g->C);
    int rc = q8_blob_check(c, &want, total);
    if (rc) return rc;
    *rs = (const int32_t *)(const void *)((const uint8_t *)c->blob + sizeof want);
    *u = (const int16_t *)(const void *)((const uint8_t *)c->blob + uoff);
    return 0;
}

/* The Winograd path of q8_run_conv, all images; scratch carved from base
** (sizes from wino_sizes); u: the packed U' (blob), or NULL to make it. */
static int wino_run(ref_ctx *c, const q8_conv *g, const cpu_q8_isa *isa, const uint8_t *xb,
                    uint8_t *yb, const cpu_q8_epi *epi, const int16_t *u, uint8_t *base,
                    const q8_wino_ws *ws, uint8_t flip, uint8_t xzu, const int8_t *wv) {
    q8_wino w;
    memset(&w, 0, sizeof w);
    int16_t *uown = NULL;
    wino_sizes(g, (q8_wino_ws[1]){{0}}, &w.TH, &w.TW, &w.nblk);
    w.g = g;
    w.isa = isa;
    w.T = w.TH * w.TW;
    w.Cq = (g->C + 3) / 4;
    w.wp = 2 * w.TW + 2;
    w.uper = cpu_q8_w16_elems(g->M, g->C);
    w.flip = flip;
    w.xzu = xzu;
    w.epi = epi;
    w.v = (int16_t *)(void *)(base + ws->epi);
    w.yb = (int32_t *)(void *)((uint8_t *)w.v + ws->v);
    void *scr = (uint8_t *)w.yb + ws->yb;
    if (!u) {
        size_t n;
        if (!wv || !wino_bound_ok(wv, g->M, g->K))
            return ref_fail(c, "int8 Winograd: the weights could overflow int32");
        if (kiln_mul_overflow((size_t)w.uper, 16 * sizeof(int16_t), &n) ||
            !(uown = kiln_aligned_alloc(n)) || !wino_pack_u(wv, g->M, g->C, uown)) {
            kiln_aligned_free(uown);
            return ref_fail(c, "out of memory packing int8 weights");
        }
        u = uown;
    }
    w.u = u;
    double flops = 2.0 * (double)g->M * (double)g->K * (double)g->P / 2.25;
    int T = cpu_threads_for(flops);
    int64_t mtiles = (g->M + CPU_Q8_MR - 1) / CPU_Q8_MR;
    int64_t want = w.nblk >= 4 * T ? 1 : (4 * T + w.nblk - 1) / w.nblk;
    if (want > mtiles) want = mtiles;
    if (want < 1) want = 1;
    w.mchunk = ((mtiles + want - 1) / want) * CPU_Q8_MR;
    w.nmc = (g->M + w.mchunk - 1) / w.mchunk;
    int64_t tail = w.nblk * CPU_Q8_NB - w.T;
    for (int64_t n = 0; n < g->N; n++) {
        w.x = xb + n * g->C * g->H * g->W;
        w.y = yb + n * g->M * g->P;
        /* zero the unused positions of the last block (the kernel reads
        ** them; no tile writes them) */
        if (tail)
            for (int64_t xi = 0; xi < 16; xi++)
                for (int64_t cq = 0; cq < w.Cq; cq++)
                    memset(w.v + (((xi * w.nblk + w.nblk - 1) * w.Cq + cq) * CPU_Q8_NB +
                                  CPU_Q8_NB - tail) * 4,
                           0, (size_t)tail * 4 * sizeof(int16_t));
        cpu_parallel_for(w.TH, T, wino_scr_bytes(w.TW), scr, wino_in_task, &w);
        cpu_parallel_for(w.nblk * w.nmc, T, 0, NULL, wino_gemm_task, &w);
        cpu_parallel_for(g->M, T, 0, NULL, wino_out_task, &w);
    }
    kiln_aligned_free(uown);
    return 0;
}

static size_t q8_workspace_wino(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || !in[3] || in[0]->rank != 4 || in[3]->rank != 4) return 0;
    for (int i = 0; i < 4; i++)
        if (in[0]->dims[i] < 0 || in[3]->dims[i] < 0) return 0;
    q8_conv g;
    if (!geom(n, in[0]->dims, in[3]->dims, &g) || !wino_shape(&g)) return 0;
    q8_wino_ws s;
    int64_t TH, TW, nb;
    wino_sizes(&g, &s, &TH, &TW, &nb);
    return s.total;
}

/* ---- NCHW4 path (u8s8_qconv_nchw4_6x64_avx512vnni; one group, any
** kernel, stride, dilation and padding): the im2col rows are never made.
** The image is first rewritten with 4 channels interleaved, x4[cq][h][w]
** = the 32-bit word of channels 4cq .. 4cq+3 (flipped when signed, 0 in
** the lanes past C), and the reduction order becomes (tap, channel):
** k' = 4 * (tap * Cq + cq) + j, with the weights reordered to match (0 in
** the lanes past C; made at build time into the layer blob). A block's
** group kq' = (tap, cq) is then 64 words copied from one row of x4 (a
** strided gather for stride 2), the zero point's word in the padding:
** one pass from a tensor 9x smaller than the im2col rows instead of a
** pass to write them and one to interleave them. The padded lanes hold 0
** in both operands, so acc, the column sums and the epilogue (with the
** layer's real K) are those of the im2col path: bit-identical. */
typedef struct q8_c4 {
    const q8_conv *g;        /* the layer (K its real reduction length) */
    const uint8_t *x;        /* this image: [C, H, W] */
    uint32_t *x4;            /* [Cq][H][W] */
    uint8_t *xp;             /* nblk blocks of Kq4 * NB * 4 bytes */
    int32_t *colsum;         /* nblk * NB, or NULL */
    int64_t Cq, Kq4;
    uint32_t flip4, padw, padw_last; /* flip word; zero-point words (last cq) */
    cpu_q8_pack4_fn pack4;   /* the ISA's interleave, or NULL */
} q8_c4;

/* Bytes of the reordered weights: M rows of K4 = kh * kw * Cq * 4. */
static int64_t c4_k(const q8_conv *g) { return g->kh * g->kw * ((g->Cg + 3) / 4) * 4; }

/* w4[m][tap][cq][j] = w[m][4cq + j][ky][kx], 0 past C. */
static void c4_pack_w(const int8_t *w, int64_t M, int64_t C, int64_t kh, int64_t kw,
                      int8_t *dst) {
    int64_t Cq = (C + 3) / 4, T = kh * kw, K = C * T, K4 = T * Cq * 4;
    for (int64_t m = 0; m < M; m++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < Cq * 4; c++)
                dst[m * K4 + t * Cq * 4 + c] = c < C ? w[m * K + c * T + t] : 0;
}

/* Task cq: the 4-channel words of channels 4cq .. 4cq+3, all of H x W. */
static void c4_x4_task(void *arg, int64_t cq, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_c4 *r = arg;
    const q8_conv *g = r->g;
    int64_t HW = g->H * g->W;
    const uint8_t *s[4];
    static const uint8_t zeros[64];
    uint32_t *d = r->x4 + cq * HW;
    uint32_t fl = 0;
    for (int j = 0; j < 4; j++) {
        bool in = 4 * cq + j < g->Cg;
        s[j] = in ? r->x + (4 * cq + j) * HW : zeros;
        fl |= in ? (r->flip4 & 0xFFu) << (8 * j) : 0;
    }
    if (r->pack4) { /* 64 positions at a time, the last ones through a copy */
        for (int64_t i = 0; i < HW; i += CPU_Q8_NB) {
            int np = (int)KILN_MIN(CPU_Q8_NB, HW - i);
            const uint8_t *t[4];
            uint32_t tmp[CPU_Q8_NB];
            for (int j = 0; j < 4; j++) t[j] = s[j] == zeros ? zeros : s[j] + i;
            r->pack4(t, fl, np, np == CPU_Q8_NB ? d + i : tmp);
            if (np < CPU_Q8_NB) memcpy(d + i, tmp, (size_t)np * 4);
        }
    } else if (4 * cq + 3 < g->Cg) {
        for (int64_t i = 0; i < HW; i++)
            d[i] = ((uint32_t)s[0][i] | (uint32_t)s[1][i] << 8 | (uint32_t)s[2][i] << 16 |
                    (uint32_t)s[3][i] << 24) ^ fl;
    } else {
        for (int64_t i = 0; i < HW; i++) {
            uint32_t v = 0;
            for (int j = 0; j < 4; j++)
                if (s[j] != zeros) v |= (uint32_t)s[j][i] << (8 * j);
            d[i] = v ^ fl;
        }
    }
}

/* Task b: block b's Kq4 groups of 64 words, from x4; 0 past P. */
static void c4_pack_task(void *arg, int64_t b, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_c4 *r = arg;
    const q8_conv *g = r->g;
    uint32_t *dst = (uint32_t *)(void *)(r->xp + b * r->Kq4 * CPU_Q8_NB * 4);
    int64_t p0 = b * CPU_Q8_NB, np = KILN_MIN(CPU_Q8_NB, g->P - p0);
    int64_t Cq = r->Cq, HW = g->H * g->W;
    if (np < CPU_Q8_NB)
        for (int64_t kq = 0; kq < r->Kq4; kq++)
            memset(dst + kq * CPU_Q8_NB + np, 0, (size_t)(CPU_Q8_NB - np) * 4);
    /* segments of the block along output rows */
    for (int64_t p = 0; p < np;) {
        int64_t oy = (p0 + p) / g->OW, ox = (p0 + p) % g->OW;
        int64_t n = KILN_MIN(np - p, g->OW - ox);
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t iy = oy * g->sh - g->ph + ky * g->dh;
            bool rin = iy >= 0 && iy < g->H;
            for (int64_t kx = 0; kx < g->kw; kx++) {
                uint32_t *dt = dst + (ky * g->kw + kx) * Cq * CPU_Q8_NB + p;
                int64_t off = kx * g->dw - g->pw, s = g->sw, e = ox + n;
                int64_t c0 = 0, c1 = 0;
                if (rin) {
                    int64_t clo = off >= 0 ? 0 : (-off + s - 1) / s;
                    int64_t chi = g->W - 1 - off < 0 ? 0 : (g->W - 1 - off) / s + 1;
                    c0 = KILN_MAX(ox, KILN_MIN(clo, e)) - ox;
                    c1 = KILN_MAX(c0 + ox, KILN_MIN(chi, e)) - ox;
                }
                for (int64_t cq = 0; cq < Cq; cq++) {
                    uint32_t *d = dt + cq * CPU_Q8_NB;
                    uint32_t pw = cq == Cq - 1 ? r->padw_last : r->padw;
                    for (int64_t i = 0; i < c0; i++) d[i] = pw;
                    if (c1 > c0) {
                        const uint32_t *src =
                            r->x4 + cq * HW + iy * g->W + off + (ox + c0) * s;
                        int64_t nc = c1 - c0, i = 0;
                        if (s == 1) { /* short rows: a loop, not a libc call */
                            for (; i < nc; i++) d[c0 + i] = src[i];
                        } else if (s == 2) {
                            /* the even words of 64-bit pairs (a loop the
                            ** compiler vectorizes, unlike the stride-2
                            ** gather); the last one alone, so the row's
                            ** end is never read past */
                            for (; i + 1 < nc; i++) {
                                uint64_t v;
                                memcpy(&v, src + 2 * i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                                v >>= 32;
#endif
                                d[c0 + i] = (uint32_t)v;
                            }
                            for (; i < nc; i++) d[c0 + i] = src[2 * i];
                        } else {
                            for (; i < nc; i++) d[c0 + i] = src[i * s];
                        }
                    }
                    for (int64_t i = c1; i < n; i++) d[i] = pw;
                }
            }
        }
        p += n;
    }
    if (r->colsum) {
        int32_t *cs = r->colsum + p0;
        for (int i = 0; i < CPU_Q8_NB; i++) cs[i] = 0;
        for (int64_t kq = 0; kq < r->Kq4; kq++) {
            const uint32_t *d = dst + kq * CPU_Q8_NB;
            for (int64_t i = 0; i < np; i++)
                cs[i] += (int32_t)(d[i] & 0xFF) + (int32_t)(d[i] >> 8 & 0xFF) +
                         (int32_t)(d[i] >> 16 & 0xFF) + (int32_t)(d[i] >> 24);
        }
    }
}

/* Workspace of the NCHW4 path, in 64-byte aligned pieces. */
typedef struct q8_c4_ws {
    size_t epi, x4, xp, cs, total;
} q8_c4_ws;

static void c4_sizes(const q8_conv *g, q8_c4_ws *s) {
    int64_t Cq = (g->Cg + 3) / 4, Kq4 = g->kh * g->kw * Cq;
    s->epi = al64((size_t)(g->M ? g->M : 1) * sizeof(cpu_q8_epi));
    s->x4 = al64((size_t)(Cq * g->H * g->W) * 4 + 1);
    s->xp = al64((size_t)(g->nblk * Kq4 * CPU_Q8_NB * 4) + 1);
    s->cs = al64((size_t)(g->nblk * CPU_Q8_NB) * sizeof(int32_t) + 1);
    s->total = s->epi + s->x4 + s->xp + s->cs + 64;
}

static bool c4_shape(const q8_conv *g) {
    return g->G == 1 && g->M >= 1 && g->Cg >= 1 && g->kh >= 1 && g->kw >= 1;
}

static size_t q8_workspace_c4(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || !in[3] || in[0]->rank != 4 || in[3]->rank != 4) return 0;
    for (int i = 0; i < 4; i++)
        if (in[0]->dims[i] < 0 || in[3]->dims[i] < 0) return 0;
    q8_conv g;
    if (!geom(n, in[0]->dims, in[3]->dims, &g) || !c4_shape(&g)) return 0;
    q8_c4_ws s;
    c4_sizes(&g, &s);
    return s.total;
}

/* Prepared blob: header, row sums [M] (int32, padded to 64 bytes), then
** the reordered weights [M][K4]. */
enum { Q8_C4_VERSION = 1 };

static bool c4_layout(int64_t M, int64_t C, int64_t kh, int64_t kw, size_t *bytes,
                      size_t *woff) {
    size_t rs, nw, t;
    if (M < 1 || C < 1 || kh < 1 || kw < 1 || M > INT32_MAX || C > INT32_MAX / 4 ||
        kh > INT32_MAX / ((C + 3) / 4 * 4) || kw > INT32_MAX / (kh * ((C + 3) / 4 * 4)))
        return false;
    if (kiln_mul_overflow((size_t)M, 4, &rs)) return false;
    *woff = sizeof(q8_w16_hdr) + al64(rs);
    if (kiln_mul_overflow((size_t)M, (size_t)(kh * kw * ((C + 3) / 4) * 4), &nw) ||
        kiln_add_overflow(*woff, nw, &t) || t > KILN_MAX_ALLOC)
        return false;
    *bytes = t;
    return true;
}

static void c4_hdr_fill(q8_w16_hdr *h, int64_t M, int64_t C, int64_t kh, int64_t kw) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "KLNQ8C4T", 8);
    h->version = Q8_C4_VERSION;
    h->mr = (uint32_t)kh;
    h->groups = kw;
    h->mg = M;
    h->k = C;
}

static kiln_status c4_prepare(const ir_node *n, const ir_type *const *in,
                              const kiln_tensor *const *cin, void **blob, size_t *bytes) {
    (void)in;
    *blob = NULL;
    *bytes = 0;
    const kiln_tensor *w = n->n_in > 3 ? cin[3] : NULL;
    if (!w || !w->data || w->dtype != KILN_DTYPE_INT8 || w->rank != 4 ||
        ir_attr_int(n, "group", 1) != 1)
        return KILN_OK;
    int64_t M = w->dims[0], C = w->dims[1], kh = w->dims[2], kw = w->dims[3];
    size_t total, woff;
    if (!c4_layout(M, C, kh, kw, &total, &woff))
        return kiln_error(KILN_UNSUPPORTED, "int8 weights too large to pack");
    uint8_t *b = kiln_aligned_alloc(total);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory packing int8 weights");
    memset(b, 0, total); /* deterministic bytes: rebuilds are identical */
    q8_w16_hdr h;
    c4_hdr_fill(&h, M, C, kh, kw);
    memcpy(b, &h, sizeof h);
    const int8_t *wv = w->data;
    int64_t K = C * kh * kw;
    int32_t *rs = (int32_t *)(void *)(b + sizeof h);
    for (int64_t m = 0; m < M; m++) {
        uint32_t sum = 0;
        for (int64_t k = 0; k < K; k++) sum += (uint32_t)(int32_t)wv[m * K + k];
        rs[m] = (int32_t)sum;
    }
    c4_pack_w(wv, M, C, kh, kw, (int8_t *)(b + woff));
    *blob = b;
    *bytes = total;
    return KILN_OK;
}

static int c4_blob(ref_ctx *c, const q8_conv *g, const int32_t **rs, const int8_t **w4) {
    *rs = NULL;
    *w4 = NULL;
    if (!c->blob) return 0;
    size_t total, woff;
    q8_w16_hdr want;
    if (!c4_shape(g) || !c4_layout(g->M, g->Cg, g->kh, g->kw, &total, &woff))
        return ref_fail(c, "prepared int8 weights for a layer that takes none: "
                        "rebuild the engine");
    c4_hdr_fill(&want, g->M, g->Cg, g->kh, g->kw);
    int rc = q8_blob_check(c, &want, total);
    if (rc) return rc;
    *rs = (const int32_t *)(const void *)((const uint8_t *)c->blob + sizeof want);
    *w4 = (const int8_t *)(const void *)((const uint8_t *)c->blob + woff);
    return 0;
}

/* The NCHW4 path of q8_run_conv_mode, all images; scratch carved from base
** (sizes from c4_sizes); w4: the reordered weights (blob), or NULL to make
** them from wv. */
static int c4_run(ref_ctx *c, const q8_conv *g, const cpu_q8_isa *isa, const uint8_t *xb,
                  uint8_t *yb, const cpu_q8_epi *epi, const int8_t *w4, uint8_t *base,
                  const q8_c4_ws *ws, uint8_t flip, uint8_t xzu, const int8_t *wv,
                  bool any_wz) {
    int8_t *wown = NULL;
    int64_t K4 = c4_k(g);
    if (!w4) {
        size_t n;
        if (!wv)
            return ref_fail(c, "int8 NCHW4 tactic without its prepared weights: "
                            "rebuild the engine");
        if (kiln_mul_overflow((size_t)g->M, (size_t)K4, &n) || n > KILN_MAX_ALLOC ||
            !(wown = kiln_aligned_alloc(n ? n : 1)))
            return ref_fail(c, "out of memory packing int8 weights");
        c4_pack_w(wv, g->M, g->Cg, g->kh, g->kw, wown);
        w4 = wown;
    }
    q8_c4 r4;
    memset(&r4, 0, sizeof r4);
    r4.g = g;
    r4.Cq = (g->Cg + 3) / 4;
    r4.Kq4 = K4 / 4;
    r4.x4 = (uint32_t *)(void *)(base + ws->epi);
    r4.xp = (uint8_t *)r4.x4 + ws->x4;
    r4.colsum = any_wz ? (int32_t *)(void *)(r4.xp + ws->xp) : NULL;
    r4.flip4 = flip * 0x01010101u;
    r4.pack4 = isa->pack4;
    r4.padw = xzu * 0x01010101u;
    for (int j = 0; j < 4; j++)
        if (4 * (r4.Cq - 1) + j < g->Cg) r4.padw_last |= (uint32_t)xzu << (8 * j);
    /* the GEMM phase sees the reordered reduction */
    q8_conv g4 = *g;
    g4.K = K4;
    g4.Kq = r4.Kq4;
    q8_run r;
    memset(&r, 0, sizeof r);
    r.g = &g4;
    r.isa = isa;
    r.xp = r4.xp;
    r.colsum = r4.colsum;
    r.w = w4;
    r.epi = epi;
    double flops = 2.0 * (double)g->M * (double)g->K * (double)g->P;
    int T = cpu_threads_for(flops);
    int64_t mtiles = (g->M + CPU_Q8_MR - 1) / CPU_Q8_MR;
    int64_t want = g->nblk >= 4 * T ? 1 : (4 * T + g->nblk - 1) / g->nblk;
    if (want > mtiles) want = mtiles;
    if (want < 1) want = 1;
    r.mchunk = ((mtiles + want - 1) / want) * CPU_Q8_MR;
    r.nmc = (g->M + r.mchunk - 1) / r.mchunk;
    for (int64_t n = 0; n < g->N; n++) {
        r4.x = xb + n * g->C * g->H * g->W;
        r.y = yb + n * g->M * g->P;
        cpu_parallel_for(r4.Cq, T, 0, NULL, c4_x4_task, &r4);
        cpu_parallel_for(g->nblk, T, 0, NULL, c4_pack_task, &r4);
        cpu_parallel_for(g->nblk * r.nmc, T, 0, NULL, gemm_task, &r);
    }
    kiln_aligned_free(wown);
    return 0;
}

/* Q8_IM2COL, Q8_WINO or Q8_C4: which path runs the conv. */
enum { Q8_IM2COL, Q8_WINO, Q8_C4 };

static int q8_run_conv_mode(ref_ctx *c, const cpu_q8_isa *isa, int mode) {
    bool wino = mode == Q8_WINO;
    const kiln_tensor *x = c->in[0], *xs = c->in[1], *xzt = c->in[2], *w = c->in[3];
    const kiln_tensor *ws = c->in[4], *wzt = c->in[5], *ys = c->in[6], *yzt = c->in[7];
    const kiln_tensor *bias = c->n_in > 8 ? c->in[8] : NULL;
    kiln_tensor *y = c->out[0];
    q8_conv g;
    if (!isa->available)
        return ref_fail(c, "int8 kernel '%s' is not in this build", isa->name);
    if (x->rank != 4 || w->rank != 4 || y->rank != 4 || !geom(c->node, x->dims, w->dims, &g) ||
        y->dims[0] != g.N || y->dims[1] != g.M || y->dims[2] != g.OH || y->dims[3] != g.OW)
        return ref_fail(c, "unsupported or inconsistent conv shapes");
    /* what supports() promised, checked again: an engine file names the
    ** tactic, and a damaged one must fail here, not compute garbage */
    if (!is_q8(x->dtype) || w->dtype != KILN_DTYPE_INT8 || !is_q8(y->dtype) ||
        (wzt && wzt->dtype != KILN_DTYPE_INT8) || (xzt && xzt->dtype != x->dtype) ||
        yzt->dtype != y->dtype || (bias && bias->dtype != KILN_DTYPE_INT32) ||
        xs->dtype != KILN_DTYPE_FLOAT32 || ws->dtype != KILN_DTYPE_FLOAT32 ||
        ys->dtype != KILN_DTYPE_FLOAT32)
        return ref_fail(c, "int8 conv: unsupported input types");
    int64_t M = g.M, nws = tensor_numel(ws), nwz = wzt ? tensor_numel(wzt) : 1;
    if (tensor_numel(xs) != 1 || tensor_numel(ys) != 1 || tensor_numel(yzt) != 1 ||
        (xzt && tensor_numel(xzt) != 1))
        return ref_fail(c, "x_scale, y_scale and the zero points of x, y must be scalars");
    if ((nws != 1 && nws != M) || (nwz != 1 && nwz != M) ||
        (bias && (bias->rank != 1 || bias->dims[0] != M)))
        return ref_fail(c, "w_scale, w_zero_point and B must have 1 or %lld elements",
                        (long long)M);
    g.x_signed = x->dtype == KILN_DTYPE_INT8;
    g.y_signed = y->dtype == KILN_DTYPE_INT8;
    uint8_t flip = g.x_signed ? 0x80 : 0;
    int64_t xz = xzt ? dt_get_i64(xzt->dtype, xzt->data, 0) : 0;
    int32_t xzu = (int32_t)xz + (g.x_signed ? 128 : 0);
    double xsv = dt_get_f64(xs->dtype, xs->data, 0);
    double ysv = dt_get_f64(ys->dtype, ys->data, 0);
    double yz = (double)dt_get_i64(yzt->dtype, yzt->data, 0);
    bool any_wz = false;
    int64_t nblk = g.nblk;
    const int32_t *blob_rs = NULL;
    const int16_t *blob_w16 = NULL;
    const void *blob_wp = NULL;
    if (wino && !wino_shape(&g))
        return ref_fail(c, "int8 Winograd tactic on a layer that is not a 3x3 stride-1 "
                        "conv: rebuild the engine");
    const int8_t *blob_w4 = NULL;
    if (mode == Q8_C4 && !c4_shape(&g))
        return ref_fail(c, "int8 NCHW4 tactic on a grouped conv: rebuild the engine");
    if (mode == Q8_C4 ? c4_blob(c, &g, &blob_rs, &blob_w4)
        : wino        ? wino_blob(c, &g, &blob_rs, &blob_w16)
                      : (isa->kernel16 || isa->tile) &&
                            w16_blob(c, &g, isa->tile != NULL, &blob_rs, &blob_wp))
        return -1;
    if (!wino && isa->kernel16) blob_w16 = blob_wp;
    bool direct = is_direct(&g);
    q8_scratch ss;
    q8_wino_ws wws;
    q8_c4_ws cws = {0};
    scratch_sizes(&g, direct, &ss);
    if (wino) {
        int64_t th, tw, nb;
        wino_sizes(&g, &wws, &th, &tw, &nb);
        memset(&ss, 0, sizeof ss);
        ss.epi = wws.epi;
        ss.total = wws.total;
        direct = true; /* no im2col rows */
    } else if (mode == Q8_C4) {
        c4_sizes(&g, &cws);
        memset(&ss, 0, sizeof ss);
        ss.epi = cws.epi;
        ss.total = cws.total;
        direct = true;
    }
    /* the planned workspace; malloc'ed when the caller gave too little */
    uint8_t *block = c->ws && c->ws_size >= ss.total ? c->ws : NULL, *owned = NULL;
    if (!block && !(block = owned = malloc(ss.total)))
        return ref_fail(c, "out of memory");
    uint8_t *base = cpu_align64(block);
    cpu_q8_epi *epi = (cpu_q8_epi *)(void *)base;
    uint8_t *xp = base + ss.epi;
    int32_t *colsum = (int32_t *)(void *)(xp + ss.xp);
    uint8_t *rows = direct ? NULL : (uint8_t *)colsum + ss.cs;
    const int8_t *wv = w->data;
    for (int64_t m = 0; m < M; m++) {
        cpu_q8_epi *e = &epi[m];
        double wsm = dt_get_f64(ws->dtype, ws->data, (size_t)(nws == 1 ? 0 : m));
        e->mult = (float)((float)((float)xsv * (float)wsm) / (float)ysv);
        e->wz = wzt ? (int32_t)dt_get_i64(wzt->dtype, wzt->data, (size_t)(nwz == 1 ? 0 : m))
                    : 0;
        any_wz |= e->wz != 0;
        uint32_t rs = 0;
        if (xzu && blob_rs) {
            rs = (uint32_t)blob_rs[m];
        } else if (xzu) {
            const int8_t *wr = wv + m * g.K;
            int32_t s = 0;
            for (int64_t k = 0; k < g.K; k++) s += wr[k];
            rs = (uint32_t)s;
        }
        uint32_t b = bias ? (uint32_t)((const int32_t *)bias->data)[m] : 0;
        e->beff = b - (uint32_t)xzu * rs + (uint32_t)g.K * (uint32_t)xzu * (uint32_t)e->wz;
        e->yz = yz;
        e->lo = g.y_signed ? -128 : 0;
        e->hi = g.y_signed ? 127 : 255;
        e->y_signed = g.y_signed;
        e->colsum = NULL;
    }
    /* a non-NULL colsum marks the rows that need the weight zero-point term;
    ** gemm_task points it at the block's sums */
    for (int64_t m = 0; m < M && any_wz; m++) epi[m].colsum = colsum;
    if (mode == Q8_C4) {
        int rc = c4_run(c, &g, isa, x->data, y->data, epi, blob_w4, base, &cws, flip,
                        (uint8_t)xzu, w->data, any_wz);
        free(owned);
        return rc;
    }
    if (wino) {
        int rc = any_wz ? ref_fail(c, "int8 Winograd tactic with weight zero points: "
                                   "rebuild the engine")
                        : wino_run(c, &g, isa, x->data, y->data, epi, blob_w16, base, &wws,
                                   flip, (uint8_t)xzu, w->data);
        free(owned);
        return rc;
    }
    q8_run r;
    memset(&r, 0, sizeof r);
    r.g = &g;
    r.isa = isa;
    r.xp = xp;
    r.rows = rows;
    r.colsum = any_wz ? colsum : NULL;
    r.flip = flip;
    r.xzu = (uint8_t)xzu;
    double flops = 2.0 * (double)g.Mg * (double)g.K * (double)g.P;
    int T = cpu_threads_for(flops);
    /* channel chunks: enough tasks for the threads, whole MR tiles */
    int64_t tmr = isa->tile ? CPU_Q8_AMX_MR : CPU_Q8_MR;
    int64_t mtiles = (g.Mg + tmr - 1) / tmr;
    int64_t want = nblk >= 4 * T ? 1 : (4 * T + nblk - 1) / nblk;
    if (want > mtiles) want = mtiles;
    if (want < 1) want = 1;
    r.mchunk = ((mtiles + want - 1) / want) * tmr;
    r.nmc = (g.Mg + r.mchunk - 1) / r.mchunk;
    const uint8_t *xb = x->data;
    uint8_t *yb = y->data;
    if (g.Cg == 1 && g.Mg == 1 && g.G > 1) {
        q8_dw d = {&g, isa, xb, wv, bias ? bias->data : NULL, epi, yb, (int32_t)xz,
                   g.x_signed};
        cpu_parallel_for(g.N * g.C, cpu_threads_for(2.0 * (double)g.N * flops), 0, NULL,
                         dw_task, &d);
        free(owned);
        return 0;
    }
    /* kernel16 without a blob: pack this run's weights */
    int16_t *w16own = NULL;
    int64_t w16per = isa->kernel16 ? cpu_q8_w16_elems(g.Mg, g.K) : 0;
    if (isa->kernel16 && !blob_w16 && g.P > Q8_GEMV_MAX_P) {
        size_t nb;
        if (kiln_mul_overflow((size_t)w16per, (size_t)g.G * sizeof(int16_t), &nb) ||
            nb > KILN_MAX_ALLOC || !(w16own = kiln_aligned_alloc(nb))) {
            free(owned);
            return ref_fail(c, "out of memory packing int8 weights");
        }
        for (int64_t gi = 0; gi < g.G; gi++)
            cpu_q8_pack_w16(wv + gi * g.Mg * g.K, g.Mg, g.K, w16own + gi * w16per);
        blob_w16 = w16own;
    }
    /* the AMX tile kernel reads its packed weights only; without a blob it
    ** packs this run's */
    int8_t *wamxown = NULL;
    const int8_t *blob_amx = isa->tile ? blob_wp : NULL;
    int64_t amxper = isa->tile ? cpu_q8_amx_w_bytes(g.Mg, g.K) : 0;
    if (isa->tile && !blob_amx) {
        size_t nb;
        if (kiln_mul_overflow((size_t)amxper, (size_t)g.G, &nb) || nb > KILN_MAX_ALLOC ||
            !(wamxown = kiln_aligned_alloc(nb))) {
            free(owned);
            return ref_fail(c, "out of memory packing int8 weights");
        }
        for (int64_t gi = 0; gi < g.G; gi++)
            cpu_q8_pack_amx(wv + gi * g.Mg * g.K, g.Mg, g.K, wamxown + gi * amxper);
        blob_amx = wamxown;
    }
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t gi = 0; gi < g.G; gi++) {
            r.x = xb + (n * g.C + gi * g.Cg) * g.H * g.W;
            /* with a blob W's data may be absent (blob_replaces) */
            r.w = wv ? wv + gi * g.Mg * g.K : NULL;
            r.w16 = blob_w16 ? blob_w16 + gi * w16per : NULL;
            r.wamx = blob_amx ? blob_amx + gi * amxper : NULL;
            r.y = yb + (n * g.M + gi * g.Mg) * g.P;
            r.epi = epi + gi * g.Mg;
            if (r.rows) cpu_parallel_for(g.K, T, 0, NULL, im2col_task, &r);
            /* few positions: dot products on the int8 weights, or with a
            ** blob the kernel16 on one group of 8 positions */
            if (g.P <= Q8_GEMV_MAX_P && !r.w16 && !r.wamx) {
                q8_gemv v = {&r, xp, any_wz ? colsum : NULL, (g.K + 63) / 64 * 64};
                gemv_columns(&r, xp, v.cs ? colsum : NULL, v.kpad);
                cpu_parallel_for((g.Mg + Q8_GEMV_ROWS - 1) / Q8_GEMV_ROWS, T, 0, NULL,
                                 gemv_task, &v);
                continue;
            }
            cpu_parallel_for(nblk, T, 0, NULL, pack_task, &r);
            cpu_parallel_for(nblk * r.nmc, T, 0, NULL, gemm_task, &r);
        }
    kiln_aligned_free(w16own);
    kiln_aligned_free(wamxown);
    free(owned);
    return 0;
}

/* ------------------------------------------------------------- QAdd */

enum { Q8_ADD_CHUNK = 16384 };

typedef struct q8_add_run {
    const cpu_q8_isa *isa;
    cpu_q8_add p;
    const uint8_t *a, *b;
    uint8_t *y;
    int64_t n;
} q8_add_run;

static void add_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_add_run *r = arg;
    int64_t i0 = t * Q8_ADD_CHUNK, m = KILN_MIN(Q8_ADD_CHUNK, r->n - i0);
    r->isa->add(&r->p, r->a + i0, r->b + i0, r->y + i0, m);
}

static int q8_run_add(ref_ctx *c, const cpu_q8_isa *isa) {
    const kiln_tensor *a = c->in[0], *b = c->in[3];
    kiln_tensor *y = c->out[0];
    if (!isa->available)
        return ref_fail(c, "int8 kernel '%s' is not in this build", isa->name);
    for (int i = 1; i < 8; i++)
        if (i != 3 && tensor_numel(c->in[i]) != 1)
            return ref_fail(c, "scales and zero points must be scalars");
    int64_t n = tensor_numel(a);
    if (tensor_numel(b) != n || tensor_numel(y) != n)
        return ref_fail(c, "A and B must have the same shape");
    if (!is_q8(a->dtype) || !is_q8(b->dtype) || !is_q8(y->dtype))
        return ref_fail(c, "QAdd: 8-bit inputs and output expected");
    q8_add_run r;
    r.isa = isa;
    r.p.sa = (float)dt_get_f64(c->in[1]->dtype, c->in[1]->data, 0);
    r.p.za = (float)dt_get_i64(c->in[2]->dtype, c->in[2]->data, 0);
    r.p.sb = (float)dt_get_f64(c->in[4]->dtype, c->in[4]->data, 0);
    r.p.zb = (float)dt_get_i64(c->in[5]->dtype, c->in[5]->data, 0);
    r.p.sy = (float)dt_get_f64(c->in[6]->dtype, c->in[6]->data, 0);
    r.p.zy = (int32_t)dt_get_i64(c->in[7]->dtype, c->in[7]->data, 0);
    r.p.a_signed = a->dtype == KILN_DTYPE_INT8;
    r.p.b_signed = b->dtype == KILN_DTYPE_INT8;
    r.p.y_signed = y->dtype == KILN_DTYPE_INT8;
    r.p.lo = r.p.y_signed ? -128 : 0;
    r.p.hi = r.p.lo + 255;
    r.a = a->data;
    r.b = b->data;
    r.y = y->data;
    r.n = n;
    int64_t chunks = (n + Q8_ADD_CHUNK - 1) / Q8_ADD_CHUNK;
    cpu_parallel_for(chunks, cpu_threads_for(16.0 * (double)n), 0, NULL, add_task, &r);
    return 0;
}

static bool qadd_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in != 8) return false;
    for (int i = 0; i < 8; i++)
        if (!in[i]) return false;
    return is_q8(in[0]->dtype) && is_q8(in[3]->dtype) && is_q8(in[7]->dtype) &&
           in[1]->dtype == KILN_DTYPE_FLOAT32 && in[4]->dtype == KILN_DTYPE_FLOAT32 &&
           in[6]->dtype == KILN_DTYPE_FLOAT32;
}

static bool qadd_sup_avx512(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx512vnni.available && qadd_supports(n, in);
}

static bool qadd_sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2.available && qadd_supports(n, in);
}

static int add_c(ref_ctx *c) { return q8_run_add(c, &cpu_q8_c); }
static int add_avx2(ref_ctx *c) { return q8_run_add(c, &cpu_q8_avx2); }
static int add_avx512(ref_ctx *c) { return q8_run_add(c, &cpu_q8_avx512vnni); }

const kiln_tactic cpu_t_qadd_avx512 = {"q8_add_avx512", OP_QAdd,
    KILN_ISA_AVX512F | KILN_ISA_AVX512BW, TACTIC_OVERWRITES_OUTPUT, qadd_sup_avx512, NULL,
    add_avx512};
const kiln_tactic cpu_t_qadd_avx2 = {"q8_add_avx2", OP_QAdd, KILN_ISA_AVX2,
    TACTIC_OVERWRITES_OUTPUT, qadd_sup_avx2, NULL, add_avx2};
const kiln_tactic cpu_t_qadd_c = {"q8_add_c", OP_QAdd, 0, TACTIC_OVERWRITES_OUTPUT,
    qadd_supports, NULL, add_c};

/* --------------------------------- per-tensor QuantizeLinear / Dequantize */

typedef struct q8_qd_run {
    const cpu_q8_isa *isa;
    cpu_q8_qparams p;
    const void *x;
    void *y;
    int64_t n;
    bool quant;
} q8_qd_run;

static void qd_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_qd_run *r = arg;
    int64_t i0 = t * Q8_ADD_CHUNK, m = KILN_MIN(Q8_ADD_CHUNK, r->n - i0);
    if (r->quant) r->isa->quant(&r->p, (const float *)r->x + i0, (uint8_t *)r->y + i0, m);
    else r->isa->dequant(&r->p, (const uint8_t *)r->x + i0, (float *)r->y + i0, m);
}

static bool scalar_type(const ir_type *t) {
    if (!t || t->rank < 0) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] != 1) return false;
    return true;
}

static bool qd_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 2 || n->n_out != 1 || !in[0] || !scalar_type(in[1]) ||
        in[1]->dtype != KILN_DTYPE_FLOAT32 || ir_attr_find(n, "block_size") ||
        ir_attr_find(n, "precision") || ir_attr_find(n, "output_dtype"))
        return false;
    const ir_type *z = n->n_in >= 3 ? in[2] : NULL;
    if (z && (!scalar_type(z) || !is_q8(z->dtype))) return false;
    if (n->op == OP_QuantizeLinear)
        return in[0]->dtype == KILN_DTYPE_FLOAT32 && ir_attr_int(n, "saturate", 1) == 1;
    return is_q8(in[0]->dtype) && (!z || z->dtype == in[0]->dtype);
}

static bool qd_sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2.available && qd_supports(n, in);
}

static bool qd_sup_avx512(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx512vnni.available && qd_supports(n, in);
}

static int qd_run(ref_ctx *c, const cpu_q8_isa *isa) {
    const kiln_tensor *x = c->in[0], *s = c->in[1];
    const kiln_tensor *z = c->n_in >= 3 ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    if (!isa->available)
        return ref_fail(c, "int8 kernel '%s' is not in this build", isa->name);
    if (tensor_numel(s) != 1 || (z && tensor_numel(z) != 1) || tensor_numel(x) != tensor_numel(y))
        return ref_fail(c, "per-tensor scale and zero point expected");
    bool quant = c->node->op == OP_QuantizeLinear;
    kiln_dtype qt = quant ? y->dtype : x->dtype;
    kiln_dtype ft = quant ? x->dtype : y->dtype;
    if (!is_q8(qt) || (z && z->dtype != qt) || ft != KILN_DTYPE_FLOAT32 ||
        s->dtype != KILN_DTYPE_FLOAT32)
        return ref_fail(c, "8-bit quantized type and float32 expected");
    q8_qd_run r;
    r.isa = isa;
    r.p.scale = (float)dt_get_f64(s->dtype, s->data, 0);
    r.p.izp = z ? (int32_t)dt_get_i64(z->dtype, z->data, 0) : 0;
    r.p.zp = (float)r.p.izp;
    r.p.q_signed = qt == KILN_DTYPE_INT8;
    r.p.lo = r.p.q_signed ? -128 : 0;
    r.p.hi = r.p.lo + 255;
    r.x = x->data;
    r.y = y->data;
    r.n = tensor_numel(x);
    r.quant = quant;
    int64_t chunks = (r.n + Q8_ADD_CHUNK - 1) / Q8_ADD_CHUNK;
    cpu_parallel_for(chunks, cpu_threads_for(8.0 * (double)r.n), 0, NULL, qd_task, &r);
    return 0;
}

static int qd_c(ref_ctx *c) { return qd_run(c, &cpu_q8_c); }
static int qd_avx2(ref_ctx *c) { return qd_run(c, &cpu_q8_avx2); }
static int qd_avx512(ref_ctx *c) { return qd_run(c, &cpu_q8_avx512vnni); }

#define OWO TACTIC_OVERWRITES_OUTPUT
const kiln_tactic cpu_t_quant_avx512 = {"q8_quantize_avx512", OP_QuantizeLinear,
    KILN_ISA_AVX512F | KILN_ISA_AVX512BW, OWO, qd_sup_avx512, NULL, qd_avx512};
const kiln_tactic cpu_t_quant_avx2 = {"q8_quantize_avx2", OP_QuantizeLinear, KILN_ISA_AVX2,
    OWO, qd_sup_avx2, NULL, qd_avx2};
const kiln_tactic cpu_t_quant_c = {"q8_quantize_c", OP_QuantizeLinear, 0, OWO, qd_supports,
    NULL, qd_c};
const kiln_tactic cpu_t_dequant_avx512 = {"q8_dequantize_avx512", OP_DequantizeLinear,
    KILN_ISA_AVX512F | KILN_ISA_AVX512BW, OWO, qd_sup_avx512, NULL, qd_avx512};
const kiln_tactic cpu_t_dequant_avx2 = {"q8_dequantize_avx2", OP_DequantizeLinear,
    KILN_ISA_AVX2, OWO, qd_sup_avx2, NULL, qd_avx2};
const kiln_tactic cpu_t_dequant_c = {"q8_dequantize_c", OP_DequantizeLinear, 0, OWO,
    qd_supports, NULL, qd_c};

/* ------------------------------------------------- MaxPool on 8-bit */

/* What the qdq pass leaves between quantized convs (DQ -> MaxPool -> Q at
** one scale becomes MaxPool on the int8 tensor). 2-D, one output. Signed
** values are compared as unsigned after flipping the top bit (order kept). */
typedef struct q8_pool {
    const uint8_t *x;
    uint8_t *y;
    int64_t H, W, OH, OW, kh, kw, sh, sw, dh, dw, ph, pw;
    uint8_t flip;
} q8_pool;

/* Per output row, in the flipped (unsigned-ordered) domain where padding
** is 0, the smallest value and so neutral for max: the max over the
** window's rows of the input columns the outputs read (vpad, whole rows:
** a loop the compiler vectorizes), then the max over the window's columns
** at every column (contiguous again), then every sw-th of those. Windows
** wider than the row buffer (absurd kernels) take a direct loop. */
enum { Q8_POOL_COLS = 4096 };

static uint8_t pool_direct(const q8_pool *q, const uint8_t *x, int64_t oy, int64_t ox) {
    uint8_t m = 0;
    for (int64_t ky = 0; ky < q->kh; ky++) {
        int64_t iy = oy * q->sh - q->ph + ky * q->dh;
        if (iy < 0 || iy >= q->H) continue;
        for (int64_t kx = 0; kx < q->kw; kx++) {
            int64_t ix = ox * q->sw - q->pw + kx * q->dw;
            if (ix < 0 || ix >= q->W) continue;
            uint8_t v = (uint8_t)(x[iy * q->W + ix] ^ q->flip);
            m = v > m ? v : m;
        }
    }
    return m;
}

static void pool_task(void *arg, int64_t plane, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const q8_pool *q = arg;
    const uint8_t *x = q->x + plane * q->H * q->W;
    uint8_t *y = q->y + plane * q->OH * q->OW;
    uint8_t vpad[Q8_POOL_COLS], h[Q8_POOL_COLS];
    int64_t kspan = (q->kw - 1) * q->dw + 1;
    /* outputs per chunk so that the columns they read fit the buffer */
    int64_t per = kspan > Q8_POOL_COLS ? 0 : (Q8_POOL_COLS - kspan) / q->sw + 1;
    for (int64_t oy = 0; oy < q->OH; oy++) {
        uint8_t *yr = y + oy * q->OW;
        if (!per) {
            for (int64_t ox = 0; ox < q->OW; ox++)
                yr[ox] = (uint8_t)(pool_direct(q, x, oy, ox) ^ q->flip);
            continue;
        }
        for (int64_t ox0 = 0; ox0 < q->OW; ox0 += per) {
            int64_t n = KILN_MIN(per, q->OW - ox0);
            int64_t cb = ox0 * q->sw - q->pw;        /* input column of vpad[0] */
            int64_t span = (n - 1) * q->sw + kspan;  /* <= Q8_POOL_COLS */
            int64_t lo = KILN_MIN(KILN_MAX(-cb, 0), span);
            int64_t hi = KILN_MAX(KILN_MIN(q->W - cb, span), lo);
            memset(vpad, 0, (size_t)span);
            for (int64_t ky = 0; ky < q->kh; ky++) {
                int64_t iy = oy * q->sh - q->ph + ky * q->dh;
                if (iy < 0 || iy >= q->H) continue;
                const uint8_t *xr = x + iy * q->W + cb;
                for (int64_t i = lo; i < hi; i++) {
                    uint8_t v = (uint8_t)(xr[i] ^ q->flip);
                    vpad[i] = v > vpad[i] ? v : vpad[i];
                }
            }
            int64_t nh = (n - 1) * q->sw + 1;
            memcpy(h, vpad, (size_t)nh);
            for (int64_t kx = 1; kx < q->kw; kx++) {
                const uint8_t *src = vpad + kx * q->dw;
                for (int64_t i = 0; i < nh; i++) h[i] = src[i] > h[i] ? src[i] : h[i];
            }
            uint8_t *o = yr + ox0;
            if (q->sw == 1) {
                for (int64_t i = 0; i < n; i++) o[i] = h[i] ^ q->flip;
            } else {
                for (int64_t i = 0; i < n; i++) o[i] = h[i * q->sw] ^ q->flip;
            }
        }
    }
}

static bool pool_supports(const ir_node *n, const ir_type *const *in) {
    return n->n_out == 1 && in[0] && is_q8(in[0]->dtype) && in[0]->rank == 4 &&
           !ir_attr_find(n, "storage_order");
}

static int pool_run(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    const ir_node *nd = c->node;
    int nk = 0, np = 0, ns = 0, nl = 0;
    const int64_t *ks = ir_attr_ints(nd, "kernel_shape", &nk);
    const int64_t *pads = ir_attr_ints(nd, "pads", &np);
    const int64_t *st = ir_attr_ints(nd, "strides", &ns);
    const int64_t *dl = ir_attr_ints(nd, "dilations", &nl);
    if (!is_q8(x->dtype) || y->dtype != x->dtype)
        return ref_fail(c, "8-bit MaxPool: int8 or uint8 tensors expected");
    if (!ks || nk != 2 || x->rank != 4 || y->rank != 4 || y->dims[0] != x->dims[0] ||
        y->dims[1] != x->dims[1])
        return ref_fail(c, "unsupported MaxPool shape");
    q8_pool q = {x->data, y->data, x->dims[2], x->dims[3], y->dims[2], y->dims[3],
                 ks[0], ks[1], st && ns == 2 ? st[0] : 1, st && ns == 2 ? st[1] : 1,
                 dl && nl == 2 ? dl[0] : 1, dl && nl == 2 ? dl[1] : 1, 0, 0,
                 (uint8_t)(x->dtype == KILN_DTYPE_INT8 ? 0x80 : 0)};
    const char *ap = ir_attr_str(nd, "auto_pad", "NOTSET");
    if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        int64_t th = KILN_MAX(0, (q.OH - 1) * q.sh + (q.kh - 1) * q.dh + 1 - q.H);
        int64_t tw = KILN_MAX(0, (q.OW - 1) * q.sw + (q.kw - 1) * q.dw + 1 - q.W);
        q.ph = ap[5] == 'U' ? th / 2 : th - th / 2;
        q.pw = ap[5] == 'U' ? tw / 2 : tw - tw / 2;
    } else if (strcmp(ap, "VALID") != 0 && pads && np == 4) {
        q.ph = pads[0];
        q.pw = pads[1];
    }
    if (q.sh < 1 || q.sw < 1 || q.dh < 1 || q.dw < 1 || q.kh < 1 || q.kw < 1)
        return ref_fail(c, "unsupported MaxPool attributes");
    int64_t planes = x->dims[0] * x->dims[1];
    cpu_parallel_for(planes, cpu_threads_for((double)tensor_numel(y) * (double)(q.kh * q.kw)),
                     0, NULL, pool_task, &q);
    return 0;
}

const kiln_tactic cpu_t_q8_maxpool = {"q8_maxpool_c", OP_MaxPool, 0,
    TACTIC_OVERWRITES_OUTPUT, pool_supports, NULL, pool_run};

/* ------------------------------------------------------------- tactics */

static bool q8_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_in < 8 || !in[0] || !in[3] || !in[7]) return false;
    if (!is_q8(in[0]->dtype) || in[3]->dtype != KILN_DTYPE_INT8 || !is_q8(in[7]->dtype))
        return false;
    if (in[5] && in[5]->dtype != KILN_DTYPE_INT8) return false;
    if (in[0]->rank != 4 || in[3]->rank != 4) return false;
    if (n->n_in > 8 && in[8] && in[8]->dtype != KILN_DTYPE_INT32) return false;
    static const int scales[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++)
        if (!in[scales[i]] || in[scales[i]]->dtype != KILN_DTYPE_FLOAT32) return false;
    return true;
}

static bool q8_sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2.available && q8_supports(n, in);
}

/* The weights are a constant whose values all lie in [-64, 63]. */
static int q8_run_conv(ref_ctx *c, const cpu_q8_isa *isa) {
    return q8_run_conv_mode(c, isa, Q8_IM2COL);
}

static bool weights_7bit(const ir_node *n) {
    const kiln_tensor *w = n->n_in > 3 && n->in[3] ? n->in[3]->const_val : NULL;
    if (!w || w->dtype != KILN_DTYPE_INT8) return false;
    const int8_t *v = w->data;
    for (int64_t i = 0; i < tensor_numel(w); i++)
        if (v[i] < -64 || v[i] > 63) return false;
    return true;
}

static bool q8_sup_avx2_7bit(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2_7bit.available && q8_supports(n, in) && weights_7bit(n);
}

static bool q8_sup_vnni(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx512vnni.available && q8_supports(n, in);
}

static int run_c(ref_ctx *c) { return q8_run_conv(c, &cpu_q8_c); }
static int run_avx2(ref_ctx *c) { return q8_run_conv(c, &cpu_q8_avx2); }
static int run_avx2_w16(ref_ctx *c) { return q8_run_conv(c, &cpu_q8_avx2_w16); }
static int run_avx2_wino(ref_ctx *c) { return q8_run_conv_mode(c, &cpu_q8_avx2_w16, Q8_WINO); }

/* Winograd: 3x3 stride 1, one group, constant weights whose sums stay
** exact (wino_bound_ok) and constant weight zero points all 0; enough
** channels that the 2.25x fewer multiply-adds outweigh the transforms. */
static bool q8_sup_avx2_wino(const ir_node *n, const ir_type *const *in) {
    if (!cpu_q8_avx2_w16.available || !q8_supports(n, in)) return false;
    const kiln_tensor *w = n->in[3] ? n->in[3]->const_val : NULL;
    const kiln_tensor *wz = n->n_in > 5 && n->in[5] ? n->in[5]->const_val : NULL;
    if (!w || w->dtype != KILN_DTYPE_INT8 || w->rank != 4 || w->dims[2] != 3 ||
        w->dims[3] != 3 || w->dims[1] < 16 || ir_attr_int(n, "group", 1) != 1)
        return false;
    if (n->n_in > 5 && n->in[5] && !wz) return false;
    if (wz)
        for (int64_t i = 0; i < tensor_numel(wz); i++)
            if (((const int8_t *)wz->data)[i]) return false;
    int ns = 0, nl = 0;
    const int64_t *st = ir_attr_ints(n, "strides", &ns);
    const int64_t *dl = ir_attr_ints(n, "dilations", &nl);
    for (int i = 0; i < ns; i++)
        if (st[i] != 1) return false;
    for (int i = 0; i < nl; i++)
        if (dl[i] != 1) return false;
    return wino_bound_ok(w->data, w->dims[0], w->dims[1] * 9);
}

static bool q8_sup_avx2_w16(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2_w16.available && q8_supports(n, in);
}
static int run_avx2_7bit(ref_ctx *c) { return q8_run_conv(c, &cpu_q8_avx2_7bit); }
static int run_vnni(ref_ctx *c) { return q8_run_conv(c, &cpu_q8_avx512vnni); }
static int run_vnni_c4(ref_ctx *c) { return q8_run_conv_mode(c, &cpu_q8_avx512vnni, Q8_C4); }

/* NCHW4: one group, not depthwise, and not a 1x1 stride-1 unpadded conv
** (the im2col tactic reads x in place there, with no im2col rows). */
static bool q8_sup_vnni_c4(const ir_node *n, const ir_type *const *in) {
    if (!cpu_q8_avx512vnni.available || !q8_supports(n, in) ||
        ir_attr_int(n, "group", 1) != 1)
        return false;
    const int64_t *wd = in[3]->dims;
    if (wd[2] != 1 || wd[3] != 1) return true;
    int ns = 0, np = 0;
    const int64_t *st = ir_attr_ints(n, "strides", &ns);
    const int64_t *pads = ir_attr_ints(n, "pads", &np);
    bool strided = false, padded = strcmp(ir_attr_str(n, "auto_pad", "NOTSET"), "NOTSET") &&
                                  strcmp(ir_attr_str(n, "auto_pad", "NOTSET"), "VALID");
    for (int i = 0; i < ns; i++) strided |= st[i] != 1;
    for (int i = 0; i < np; i++) padded |= pads[i] != 0;
    return strided || padded;
}

static bool q8_sup_amx(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_amx.available && cpu_q8_avx512vnni.available && q8_supports(n, in);
}

/* Tile instructions fault unless this process was granted the tile state
** (cpu_backend.c asks once): an engine names the tactic, so check here. */
static int run_amx(ref_ctx *c) {
    if (!cpu_q8_amx.available || !cpu_q8_avx512vnni.available ||
        !(kiln_backend_cpu()->host_isa() & KILN_ISA_AMXINT8))
        return ref_fail(c, "int8 AMX kernel: AMX is not available to this process");
    return q8_run_conv(c, &cpu_q8_amx);
}

const kiln_tactic cpu_t_qconv_amx = {"u8s8_qconv_im2col_32x32_amx", OP_QLinearConv,
    KILN_ISA_AMXINT8 | KILN_ISA_AVX512F | KILN_ISA_AVX512BW | KILN_ISA_AVX512VNNI,
    TACTIC_OVERWRITES_OUTPUT, q8_sup_amx, q8_workspace, run_amx, amx_prepare, 1u << 3};
const kiln_tactic cpu_t_qconv_vnni = {"u8s8_qconv_im2col_6x64_avx512vnni", OP_QLinearConv,
    KILN_ISA_AVX512F | KILN_ISA_AVX512BW | KILN_ISA_AVX512VNNI, TACTIC_OVERWRITES_OUTPUT,
    q8_sup_vnni, q8_workspace, run_vnni};
const kiln_tactic cpu_t_qconv_vnni_c4 = {"u8s8_qconv_nchw4_6x64_avx512vnni",
    OP_QLinearConv, KILN_ISA_AVX512F | KILN_ISA_AVX512BW | KILN_ISA_AVX512VNNI,
    TACTIC_OVERWRITES_OUTPUT, q8_sup_vnni_c4, q8_workspace_c4, run_vnni_c4, c4_prepare,
    1u << 3};
const kiln_tactic cpu_t_qconv_avx2_7bit = {"u8s8_qconv_im2col_w7_4x16_avx2",
    OP_QLinearConv, KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, q8_sup_avx2_7bit, q8_workspace,
    run_avx2_7bit};
const kiln_tactic cpu_t_qconv_avx2_wino = {"u8s8_qconv_wino2x2_6x8_avx2", OP_QLinearConv,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, q8_sup_avx2_wino, q8_workspace_wino,
    run_avx2_wino, wino_prepare, 1u << 3};
const kiln_tactic cpu_t_qconv_avx2_w16 = {"u8s8_qconv_im2col_w16_6x8_avx2", OP_QLinearConv,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, q8_sup_avx2_w16, q8_workspace, run_avx2_w16,
    w16_prepare, 1u << 3};
const kiln_tactic cpu_t_qconv_avx2 = {"u8s8_qconv_im2col_2x16_avx2", OP_QLinearConv,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, q8_sup_avx2, q8_workspace, run_avx2};
const kiln_tactic cpu_t_qconv_c = {"u8s8_qconv_im2col_c", OP_QLinearConv, 0,
    TACTIC_OVERWRITES_OUTPUT, q8_supports, q8_workspace, run_c};
