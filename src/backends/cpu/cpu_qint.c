/* cpu_qint.c: ConvInteger and MatMulInteger (int32 outputs) on the INT8
** microkernels of cpu_int8.h. These are what onnxruntime's quantize_dynamic
** writes (DynamicQuantizeLinear -> ConvInteger/MatMulInteger -> Cast ->
** Mul by the scales); without them such a model ran every product on the
** reference kernel (a YOLOv8n: 650 ms against onnxruntime's 24 ms).
**
** Both map onto the same product: rows of signed 8-bit weights against
** columns of unsigned 8-bit activations packed in the block layout of
** cpu_int8.h (CPU_Q8_NB positions per block, 4 reduction indices per
** word). Other signs are moved there exactly: an int8 activation x becomes
** x + 128 with its zero point moved by 128, a uint8 weight w becomes
** w - 128 with its zero point moved by -128. Then, with xu/xz and ws/wz
** the moved values,
**   y = sum_k (xu - xz)(ws - wz)
**     = acc - xz * rowsum(ws) - wz * colsum(xu) + K * xz * wz
** in int32 arithmetic that wraps as the reference's does (it sums in
** int64 and keeps the low 32 bits). Padded input positions hold xz, so
** they add nothing.
**
** ConvInteger: 2-D (rank 4), any group count, strides, dilations, pads
** and auto_pad; positions are the output pixels of one image and group,
** in blocks of CPU_Q8_NB; the weights [M, Cg*kh*kw] as stored.
** MatMulInteger: A [..., M, K] against B [K, N] (rank 2); positions are
** A's rows, the weight rows are B's columns (B transposed).
** Constant weights are converted and summed once at build time into the
** layer blob; otherwise per run, in the workspace. Zero points: x/a scalar;
** w scalar or per output channel, b scalar or per column.
**
** MatMulIntegerToFloat and ConvIntegerToFloat (passes/qdyn.c: the product
** with the Cast, scale Mul and bias Add after it) are the same products
** with a float store:
** (float)acc * scale[n] (+ bias[n]), the reference's float32 steps.
** QFusedGemm (ops/qfused.c: the same product from a Q/DQ model, with its
** epilogue) adds, per element as it stores, the residual (float32, or
** 8-bit dequantized), the activation and the output quantization, in the
** reference's float32 steps; half outputs are left to the reference.
**
** DynamicQuantizeLinear (the same models' activation quantizer) is here too:
** the range min(0, x) .. max(0, x) and the quantized bytes in chunks on the
** pool, the float steps exactly as the reference's (so the bytes match). */
#include "cpu_gemm.h"
#include "cpu_int8.h"
#include "cpu_tactics.h"
#include "../../ops/conv_window.h"
#include "../../ops/fused.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QI_X86 1
#endif

typedef struct qi_geom {
    bool conv;
    int64_t N, G, Cg, Mg, M, K, Kq; /* M output channels (conv) or columns (matmul) */
    int64_t H, W, OH, OW, P, nblk;  /* P positions per (image, group); blocks of them */
    int64_t kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t rows; /* matmul: rows of A in all */
} qi_geom;

static bool is8(kiln_dtype t) { return t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT8; }

/* ConvInteger or its float-output fold */
static bool is_conv(const ir_node *n) {
    return n->op == OP_ConvInteger || n->op == OP_ConvIntegerToFloat;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Geometry from concrete dims; false when the node is not one this file
** runs (err says why when given). */
static bool qi_geom_make(const ir_node *n, const int64_t *xd, int xr, const int64_t *wd, int wr,
                         qi_geom *g, char *err, size_t nerr) {
    memset(g, 0, sizeof *g);
    if (is_conv(n)) {
        if (xr != 4 || wr != 4) return false;
        int64_t G = ir_attr_int(n, "group", 1);
        if (G < 1 || xd[1] % G || wd[0] % G || wd[1] * G != xd[1]) return false;
        conv_window w;
        conv_geom cg;
        int64_t kdef[2] = {wd[2], wd[3]};
        char e[128];
        if (conv_window_read(n, 2, kdef, CW_DILATIONS | CW_AUTO_PAD, &w, e, sizeof e) ||
            conv_geom_forward(&w, xd + 2, &cg, e, sizeof e)) {
            if (err) snprintf(err, nerr, "%s", e);
            return false;
        }
        if (cg.k[0] != wd[2] || cg.k[1] != wd[3]) return false;
        g->conv = true;
        g->N = xd[0], g->G = G, g->Cg = wd[1], g->Mg = wd[0] / G, g->M = wd[0];
        g->H = xd[2], g->W = xd[3], g->OH = cg.grid[0], g->OW = cg.grid[1];
        g->kh = cg.k[0], g->kw = cg.k[1], g->sh = cg.s[0], g->sw = cg.s[1];
        g->dh = cg.d[0], g->dw = cg.d[1], g->pt = cg.pb[0], g->pl = cg.pb[1];
        g->K = g->Cg * g->kh * g->kw;
        g->P = g->OH * g->OW;
    } else {
        bool nk = n->op == OP_QFusedGemm; /* B [N, K] */
        if (xr < 2 || wr != 2 || xd[xr - 1] != wd[nk ? 1 : 0]) return false;
        g->rows = 1;
        for (int i = 0; i < xr - 1; i++) g->rows *= xd[i];
        g->N = 1, g->G = 1, g->K = wd[nk ? 1 : 0], g->M = g->Mg = wd[nk ? 0 : 1];
        g->P = g->rows;
    }
    g->Kq = cdiv(g->K, 4);
    g->nblk = cdiv(g->P, CPU_Q8_NB);
    return g->K > 0;
}

/* QFusedGemm's epilogue inputs: a float32 or 8-bit residual of the
** output's size (8-bit: scalar float32 r_scale, scalar r_zero_point), a
** quantized output (scalar float32 y_scale, 8-bit scalar y_zero_point) or
** a float32 one, a known activation. */
static bool qi_epi_supports(const ir_node *n, const ir_type *const *in) {
    fused_act a;
    char err[64];
    if (!fused_act_read(n, &a, err, sizeof err)) return false;
    const ir_type *r = n->n_in > 6 ? in[6] : NULL;
    if (r && r->dtype != KILN_DTYPE_FLOAT32 && !is8(r->dtype)) return false;
    for (int i = 7; i < n->n_in && i < 11; i++) {
        if (!in[i]) continue;
        int64_t len = 1;
        for (int d = 0; d < in[i]->rank; d++) len *= in[i]->dims[d];
        if (len != 1) return false;
        if ((i == 7 || i == 9) && in[i]->dtype != KILN_DTYPE_FLOAT32) return false;
        if ((i == 8 || i == 10) && !is8(in[i]->dtype)) return false;
    }
    bool quant = n->n_in > 10 && in[9] && in[10];
    if (r && is8(r->dtype) && !(n->n_in > 7 && in[7])) return false;
    if (!quant && ir_attr_int(n, "output_dtype", KILN_DTYPE_FLOAT32) != KILN_DTYPE_FLOAT32)
        return false;
    return true;
}

static bool qi_supports(const ir_node *n, const ir_type *const *in) {
    if (n->n_out != 1 || n->n_in < 2 || !in[0] || !in[1]) return false;
    if (!is8(in[0]->dtype) || !is8(in[1]->dtype)) return false;
    /* zero points: x/a scalar of x's type; w/b scalar or per channel */
    if (n->n_in > 2 && in[2] &&
        (in[2]->dtype != in[0]->dtype || in[2]->rank > 1 ||
         (in[2]->rank == 1 && in[2]->dims[0] != 1)))
        return false;
    if (n->n_in > 3 && in[3] && (in[3]->dtype != in[1]->dtype || in[3]->rank > 1)) return false;
    if (n->op == OP_ConvInteger) return in[0]->rank == 4 && in[1]->rank == 4;
    if (n->op == OP_QFusedGemm && !qi_epi_supports(n, in)) return false;
    if (n->op == OP_MatMulIntegerToFloat || n->op == OP_ConvIntegerToFloat ||
        n->op == OP_QFusedGemm) {
        bool conv = n->op == OP_ConvIntegerToFloat;
        if ((conv ? in[0]->rank != 4 || in[1]->rank != 4 : in[1]->rank != 2) || n->n_in < 5)
            return false;
        int64_t cols = conv || n->op == OP_QFusedGemm ? in[1]->dims[0] : in[1]->dims[1];
        for (int i = 4; i < n->n_in && i < 6; i++) {
            if (!in[i]) {
                if (i == 4) return false;
                continue;
            }
            int64_t len = 1;
            for (int d = 0; d < in[i]->rank; d++) len *= in[i]->dims[d];
            if (in[i]->dtype != KILN_DTYPE_FLOAT32 || (len != 1 && len != cols))
                return false;
        }
        if (conv) return true;
    }
    return in[0]->rank >= 2 && in[1]->rank == 2;
}

/* ---- weights: s8 rows [M][K] and their sums, from W or B */
typedef struct qi_wt {
    int8_t *ws;       /* [M][K] */
    int32_t *rowsum;  /* [M] */
    int8_t *wamx;     /* AMX tactics: each group's rows packed as A tiles */
} qi_wt;

static size_t qi_wt_bytes(int64_t M, int64_t K) {
    return ((size_t)(M * K) + 63) / 64 * 64 + ((size_t)M * sizeof(int32_t) + 63) / 64 * 64;
}

/* With the AMX tiles of G groups after the rows and sums. */
static size_t qi_wt_bytes_amx(int64_t M, int64_t K, int64_t G) {
    return qi_wt_bytes(M, K) + (size_t)(G * cpu_q8_amx_w_bytes(M / G, K));
}

/* dst: qi_wt_bytes(M, K) bytes, 64-byte aligned. */
static void qi_wt_fill(const ir_node *n, const kiln_tensor *w, int64_t M, int64_t K, void *dst,
                       qi_wt *out) {
    out->ws = dst;
    out->rowsum = (int32_t *)((char *)dst + ((size_t)(M * K) + 63) / 64 * 64);
    const uint8_t *src = w->data;
    const uint8_t flip = w->dtype == KILN_DTYPE_UINT8 ? 0x80 : 0;
    for (int64_t m = 0; m < M; m++) {
        int32_t s = 0;
        for (int64_t k = 0; k < K; k++) {
            /* conv, QFusedGemm: W [M][K] as stored; matmul: B [K][M] transposed */
            uint8_t b = is_conv(n) || n->op == OP_QFusedGemm ? src[m * K + k] : src[k * M + m];
            int8_t v = (int8_t)(b ^ flip);
            out->ws[m * K + k] = v;
            s += v;
        }
        out->rowsum[m] = s;
    }
    out->wamx = NULL;
}

/* dst: qi_wt_bytes_amx(M, K, G) bytes, 64-byte aligned. */
static void qi_wt_fill_amx(const ir_node *n, const kiln_tensor *w, int64_t M, int64_t K,
                           int64_t G, void *dst, qi_wt *out) {
    qi_wt_fill(n, w, M, K, dst, out);
    out->wamx = (int8_t *)dst + qi_wt_bytes(M, K);
    int64_t Mg = M / G, per = cpu_q8_amx_w_bytes(Mg, K);
    for (int64_t gi = 0; gi < G; gi++)
        cpu_q8_pack_amx(out->ws + gi * Mg * K, Mg, K, out->wamx + gi * per);
}

/* Blob: "KLNQINT1" (or "KLNQINTA": with the AMX tiles), M, K, G, then
** the qi_wt bytes from offset 64. */
typedef struct qi_hdr {
    char magic[8];
    int64_t M, K, G;
} qi_hdr;

static int64_t qi_groups(const ir_node *n) {
    return is_conv(n) ? ir_attr_int(n, "group", 1) : 1;
}

static bool qi_dims_mk(const ir_node *n, const ir_type *w, int64_t *M, int64_t *K) {
    for (int i = 0; i < w->rank; i++)
        if (w->dims[i] < 0) return false;
    if (is_conv(n)) {
        if (w->rank != 4) return false;
        *M = w->dims[0], *K = w->dims[1] * w->dims[2] * w->dims[3];
    } else {
        if (w->rank != 2) return false;
        bool nk = n->op == OP_QFusedGemm; /* B [N, K] */
        *M = w->dims[nk ? 0 : 1], *K = w->dims[nk ? 1 : 0];
    }
    return *M > 0 && *K > 0;
}

static kiln_status qi_prepare_any(const ir_node *n, const ir_type *const *in,
                                  const kiln_tensor *const *cin, void **blob_out,
                                  size_t *size_out, bool amx) {
    *blob_out = NULL, *size_out = 0;
    int64_t M, K, G = qi_groups(n);
    if (!cin[1] || !in[1] || !qi_dims_mk(n, in[1], &M, &K) || G < 1 || M % G) return KILN_OK;
    size_t total = 64 + (amx ? qi_wt_bytes_amx(M, K, G) : qi_wt_bytes(M, K));
    char *b = kiln_aligned_alloc(total);
    if (!b) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    memset(b, 0, total);
    qi_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, amx ? "KLNQINTA" : "KLNQINT1", 8);
    h.M = M, h.K = K, h.G = G;
    memcpy(b, &h, sizeof h);
    qi_wt t;
    if (amx) qi_wt_fill_amx(n, cin[1], M, K, G, b + 64, &t);
    else qi_wt_fill(n, cin[1], M, K, b + 64, &t);
    *blob_out = b, *size_out = total;
    return KILN_OK;
}

static kiln_status qi_prepare(const ir_node *n, const ir_type *const *in,
                              const kiln_tensor *const *cin, void **blob_out, size_t *size_out) {
    return qi_prepare_any(n, in, cin, blob_out, size_out, false);
}
static kiln_status qi_prepare_amx(const ir_node *n, const ir_type *const *in,
                                  const kiln_tensor *const *cin, void **blob_out,
                                  size_t *size_out) {
    return qi_prepare_any(n, in, cin, blob_out, size_out, true);
}

/* ---- run */
typedef struct qi_run {
    const cpu_q8_isa *isa;
    qi_geom g;
    const uint8_t *x;
    uint8_t xflip;  /* 0x80 for int8 activations */
    uint8_t xz;     /* moved zero point, as stored in padded positions */
    qi_wt w;
    const int32_t *wz;  /* [M] moved weight zero points */
    int32_t *y;
    float *fy;                  /* MatMulIntegerToFloat: the float output (y unused) */
    const float *scale, *bias;  /* its per-column scale and bias (NULL: none) */
    bool scale_vec, bias_vec;   /* one value per column, else one in all */
    bool epi;                   /* QFusedGemm: the epilogue below runs */
    const float *rf;            /* float32 residual, or */
    const uint8_t *r8;          /* an 8-bit one (r8s: int8) */
    bool r8s;
    float rs, rz;               /* its scale and zero point */
    fused_act act;
    uint8_t *qy;                /* quantized output (qys: int8), else fy */
    bool qys;
    float ys, yz, ylo, yhi;
    int64_t mparts, mper; /* each block's Mg rows in mparts tasks of mper */
    uint8_t *packed;      /* mparts > 1: every block packed once, before the tasks */
    size_t pstride;       /* bytes per packed block (block, slack, column sums) */
} qi_run;

/* One task's scratch: the packed block (AMX: then the tiles' slack, see
** cpu_int8.h), its column sums, one tile of sums. */
static size_t qi_scratch(const qi_geom *g) {
    return 64 + (size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK + CPU_Q8_NB * sizeof(int32_t) +
           CPU_Q8_AMX_MR * CPU_Q8_NB * sizeof(int32_t);
}

/* Packs positions [p0, p0 + np) of image n, group gi into xp (the block
** layout) and their column sums. */
static void qi_pack(const qi_run *r, int64_t n, int64_t gi, int64_t p0, int np, uint8_t *xp,
                    int32_t *colsum) {
    const qi_geom *g = &r->g;
    const int64_t K = g->K;
    memset(xp, 0, (size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK);
    if (!g->conv) { /* a row's 4 reduction bytes are one word of the block */
        const uint8_t *a = r->x + p0 * K;
        const uint8_t fl = r->xflip;
        const uint32_t fl4 = fl * 0x01010101u;
        const int64_t kq4 = K / 4;
        uint32_t *xw = (uint32_t *)(void *)xp;
        for (int p = 0; p < np; p++) {
            const uint8_t *row = a + (int64_t)p * K;
            for (int64_t kq = 0; kq < kq4; kq++) {
                uint32_t w;
                memcpy(&w, row + 4 * kq, 4);
                xw[kq * CPU_Q8_NB + p] = w ^ fl4;
            }
            for (int64_t k = 4 * kq4; k < K; k++)
                xp[(k >> 2) * 4 * CPU_Q8_NB + p * 4 + (k & 3)] = (uint8_t)(row[k] ^ fl);
            int32_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (uint8_t)(row[k] ^ fl);
            colsum[p] = s;
        }
        return;
    }
    for (int p = 0; p < np; p++) colsum[p] = 0;
    const int64_t HW = g->H * g->W, kk = g->kh * g->kw;
    const uint8_t *xn = r->x + (n * g->G + gi) * g->Cg * HW;
    const uint8_t flip = r->xflip, xz = r->xz;
    for (int64_t k = 0; k < K; k++) {
        int64_t c = k / kk, t = k % kk, ky = t / g->kw, kx = t % g->kw;
        const uint8_t *xc = xn + c * HW;
        uint8_t *dst = xp + (k >> 2) * 4 * CPU_Q8_NB + (k & 3);
        /* the block's positions by output row: one bounds test per row
        ** segment, not per position */
        int64_t pos = p0;
        int p = 0;
        while (p < np) {
            int64_t oy = pos / g->OW, ox0 = pos % g->OW;
            int seg = (int)(g->OW - ox0 < np - p ? g->OW - ox0 : np - p);
            int64_t iy = oy * g->sh - g->pt + ky * g->dh;
            if (iy < 0 || iy >= g->H) {
                for (int j = 0; j < seg; j++) dst[(p + j) * 4] = xz;
                for (int j = 0; j < seg; j++) colsum[p + j] += xz;
            } else {
                /* ox with 0 <= ox*sw - pl + kx*dw < W: [lo, hi) */
                int64_t off = kx * g->dw - g->pl;
                int64_t lo = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
                int64_t hi = g->W - off <= 0 ? 0 : (g->W - off + g->sw - 1) / g->sw;
                const uint8_t *row = xc + iy * g->W + off;
                if (ox0 >= lo && ox0 + seg <= hi) { /* inside the row throughout */
                    const uint8_t *src = row + ox0 * g->sw;
                    const int64_t sw = g->sw;
                    for (int j = 0; j < seg; j++) {
                        uint8_t v = (uint8_t)(src[j * sw] ^ flip);
                        dst[(p + j) * 4] = v;
                        colsum[p + j] += v;
                    }
                    p += seg;
                    pos += seg;
                    continue;
                }
                for (int j = 0; j < seg; j++) {
                    int64_t ox = ox0 + j;
                    uint8_t v = ox >= lo && ox < hi ? (uint8_t)(row[ox * g->sw] ^ flip) : xz;
                    dst[(p + j) * 4] = v;
                    colsum[p + j] += v;
                }
            }
            p += seg;
            pos += seg;
        }
    }
}

/* QFusedGemm's epilogue on one element (f: the scaled product plus bias)
** at output index idx: the reference's float32 steps. */
static inline void qi_epi_store(const qi_run *r, float f, int64_t idx) {
    if (r->rf) f = f + r->rf[idx];
    else if (r->r8)
        f = f + ((float)(r->r8s ? (int)(int8_t)r->r8[idx] : (int)r->r8[idx]) - r->rz) * r->rs;
    f = fused_act_f32(&r->act, f);
    if (!r->qy) {
        r->fy[idx] = f;
        return;
    }
    float t = nearbyintf(f / r->ys) + r->yz;
    t = t < r->ylo ? r->ylo : t > r->yhi ? r->yhi : t;
    if (t != t) t = r->ylo; /* NaN: as the reference's saturation leaves it */
    r->qy[idx] = r->qys ? (uint8_t)(int8_t)(int)t : (uint8_t)(int)t;
}

static void qi_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const qi_run *r = arg;
    const qi_geom *g = &r->g;
    int64_t part = t % r->mparts;
    t /= r->mparts;
    int64_t b = t % g->nblk, ng = t / g->nblk, gi = ng % g->G, n = ng / g->G;
    int64_t mlo = part * r->mper, mhi = mlo + r->mper < g->Mg ? mlo + r->mper : g->Mg;
    int64_t p0 = b * CPU_Q8_NB;
    int np = (int)(g->P - p0 < CPU_Q8_NB ? g->P - p0 : CPU_Q8_NB);
    uint8_t *xp = cpu_align64(scratch);
    int32_t *colsum = (int32_t *)(xp + (size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK);
    int32_t *acc = colsum + CPU_Q8_NB;
    const int64_t th = r->isa->tile ? CPU_Q8_AMX_MR : CPU_Q8_MR;
    if (r->packed) { /* packed once by qi_pack_task */
        xp = r->packed + (size_t)t * r->pstride;
        colsum = (int32_t *)(xp + (size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK);
    } else {
        qi_pack(r, n, gi, p0, np, xp, colsum);
    }
    const uint32_t K = (uint32_t)g->K, xz = r->xz;
    for (int64_t m0 = mlo; m0 < mhi; m0 += th) {
        int mr = (int)(mhi - m0 < th ? mhi - m0 : th);
        int64_t mg = gi * g->Mg + m0;
        if (r->isa->tile) {
            cpu_q8_tile_job j;
            memset(&j, 0, sizeof j);
            j.xp = xp;
            j.wp = r->w.wamx + gi * cpu_q8_amx_w_bytes(g->Mg, g->K);
            j.K = g->K, j.m0 = m0, j.m1 = m0 + mr, j.np = np;
            j.acc = acc;
            r->isa->tile(&j);
        } else {
            r->isa->kernel(xp, r->w.ws + mg * g->K, g->K, g->K, mr, acc);
        }
        if (!g->conv) { /* y [rows][M]: per position, the tile's rows are contiguous */
            uint32_t base[CPU_Q8_AMX_MR], wzs[CPU_Q8_AMX_MR];
            for (int i = 0; i < mr; i++) {
                wzs[i] = (uint32_t)r->wz[mg + i];
                base[i] = K * xz * wzs[i] - xz * (uint32_t)r->w.rowsum[mg + i];
            }
            if (r->fy || r->epi) { /* (float)acc * scale (+ bias), float32 steps */
                float sc[CPU_Q8_AMX_MR], bi[CPU_Q8_AMX_MR];
                for (int i = 0; i < mr; i++) {
                    sc[i] = r->scale[r->scale_vec ? mg + i : 0];
                    bi[i] = r->bias ? r->bias[r->bias_vec ? mg + i : 0] : 0.0f;
                }
                if (r->epi) {
                    for (int p = 0; p < np; p++) {
                        const int64_t row = (p0 + p) * g->M + mg;
                        const uint32_t cs = (uint32_t)colsum[p];
                        for (int i = 0; i < mr; i++) {
                            int32_t v = (int32_t)((uint32_t)acc[i * CPU_Q8_NB + p] + base[i] -
                                                  wzs[i] * cs);
                            float f = (float)v * sc[i];
                            qi_epi_store(r, r->bias ? f + bi[i] : f, row + i);
                        }
                    }
                    continue;
                }
                for (int p = 0; p < np; p++) {
                    float *y = r->fy + (p0 + p) * g->M + mg;
                    const uint32_t cs = (uint32_t)colsum[p];
                    for (int i = 0; i < mr; i++) {
                        int32_t v = (int32_t)((uint32_t)acc[i * CPU_Q8_NB + p] + base[i] -
                                              wzs[i] * cs);
                        float f = (float)v * sc[i];
                        y[i] = r->bias ? f + bi[i] : f;
                    }
                }
                continue;
            }
            for (int p = 0; p < np; p++) {
                int32_t *y = r->y + (p0 + p) * g->M + mg;
                const uint32_t cs = (uint32_t)colsum[p];
                for (int i = 0; i < mr; i++)
                    y[i] = (int32_t)((uint32_t)acc[i * CPU_Q8_NB + p] + base[i] - wzs[i] * cs);
            }
            continue;
        }
        for (int i = 0; i < mr; i++) {
            int64_t m = mg + i;
            uint32_t wz = (uint32_t)r->wz[m];
            uint32_t base = K * xz * wz - xz * (uint32_t)r->w.rowsum[m];
            const int32_t *a = acc + i * CPU_Q8_NB;
            if (r->fy) { /* (float)acc * scale (+ bias), float32 steps */
                float *y = r->fy + (n * g->M + m) * g->P + p0;
                const float sc = r->scale[r->scale_vec ? m : 0];
                const float bi = r->bias ? r->bias[r->bias_vec ? m : 0] : 0.0f;
                for (int p = 0; p < np; p++) {
                    float f = (float)(int32_t)((uint32_t)a[p] + base - wz * (uint32_t)colsum[p]) *
                              sc;
                    y[p] = r->bias ? f + bi : f;
                }
                continue;
            }
            int32_t *y = r->y + (n * g->M + m) * g->P + p0;
            for (int p = 0; p < np; p++)
                y[p] = (int32_t)((uint32_t)a[p] + base - wz * (uint32_t)colsum[p]);
        }
    }
}

/* Block t (image, group, position block) packed into r->packed. */
static void qi_pack_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const qi_run *r = arg;
    const qi_geom *g = &r->g;
    int64_t b = t % g->nblk, ng = t / g->nblk, gi = ng % g->G, n = ng / g->G;
    int64_t p0 = b * CPU_Q8_NB;
    int np = (int)(g->P - p0 < CPU_Q8_NB ? g->P - p0 : CPU_Q8_NB);
    uint8_t *xp = r->packed + (size_t)t * r->pstride;
    qi_pack(r, n, gi, p0, np, xp,
            (int32_t *)(xp + (size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK));
}

static size_t qi_workspace(const ir_node *n, const ir_type *const *in) {
    if (!in[0] || !in[1]) return 0;
    for (int i = 0; i < in[0]->rank; i++)
        if (in[0]->dims[i] < 0) return 0;
    int64_t M, K;
    if (!qi_dims_mk(n, in[1], &M, &K)) return 0;
    qi_geom g;
    if (!qi_geom_make(n, in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, &g, NULL, 0))
        return 0;
    /* weights converted per run when no blob (AMX: with their tiles), the
    ** zero points, one block */
    return 64 + qi_wt_bytes_amx(M, K, g.G) + 64 + (size_t)M * sizeof(int32_t) + qi_scratch(&g);
}

static int qi_run_isa(ref_ctx *c, const cpu_q8_isa *isa) {
    const kiln_tensor *x = c->in[0], *w = c->in[1];
    const kiln_tensor *xzt = ref_has(c, 2) ? c->in[2] : NULL;
    const kiln_tensor *wzt = ref_has(c, 3) ? c->in[3] : NULL;
    kiln_tensor *y = c->out[0];
    qi_run r;
    memset(&r, 0, sizeof r);
    r.isa = isa;
    const bool epi = c->node->op == OP_QFusedGemm;
    const bool tofloat = c->node->op == OP_MatMulIntegerToFloat ||
                         c->node->op == OP_ConvIntegerToFloat || epi;
    const bool quant_out = epi && ref_has(c, 9) && ref_has(c, 10);
    if (!is8(x->dtype) || !is8(w->dtype) ||
        (quant_out ? !is8(y->dtype)
                   : y->dtype != (tofloat ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_INT32)))
        return ref_fail(c, "needs 8-bit inputs and an %s output", tofloat ? "float32" : "int32");
    if (!qi_geom_make(c->node, x->dims, x->rank, w->dims, w->rank, &r.g, c->err, sizeof c->err))
        return c->err[0] ? -1 : ref_fail(c, "shapes this tactic does not take");
    const qi_geom *g = &r.g;
    int64_t yn = g->conv ? g->N * g->M * g->P : g->rows * g->M;
    if (tensor_numel(y) != yn) return ref_fail(c, "output size does not match the inputs");
    if (yn == 0) return 0;
    if (xzt && (tensor_numel(xzt) != 1 || xzt->dtype != x->dtype))
        return ref_fail(c, "the activation zero point must be one value of the input's type");
    if (wzt && wzt->dtype != w->dtype)
        return ref_fail(c, "the weight zero point must have the weights' type");
    int64_t nwz = wzt ? tensor_numel(wzt) : 1;
    if (wzt && nwz != 1 && nwz != g->M)
        return ref_fail(c, "the weight zero point must have 1 or %lld values", (long long)g->M);
    r.x = x->data;
    r.xflip = x->dtype == KILN_DTYPE_INT8 ? 0x80 : 0;
    int64_t xz = xzt ? dt_get_i64(xzt->dtype, xzt->data, 0) : 0;
    r.xz = (uint8_t)(xz + (r.xflip ? 128 : 0));
    r.y = y->data;
    if (tofloat) {
        const kiln_tensor *st = ref_has(c, 4) ? c->in[4] : NULL;
        const kiln_tensor *bt = ref_has(c, 5) ? c->in[5] : NULL;
        int64_t ns = st ? tensor_numel(st) : 0, nb = bt ? tensor_numel(bt) : 1;
        if (!st || st->dtype != KILN_DTYPE_FLOAT32 || (ns != 1 && ns != g->M) ||
            (bt && (bt->dtype != KILN_DTYPE_FLOAT32 || (nb != 1 && nb != g->M))))
            return ref_fail(c, "scale and bias must be float32 with 1 or %lld values",
                            (long long)g->M);
        r.fy = y->data, r.y = NULL;
        r.scale = st->data, r.scale_vec = ns != 1;
        r.bias = bt ? bt->data : NULL, r.bias_vec = nb != 1;
    }
    if (epi) {
        r.epi = true;
        if (!fused_act_read(c->node, &r.act, c->err, sizeof c->err)) return -1;
        const kiln_tensor *rt = ref_has(c, 6) ? c->in[6] : NULL;
        if (rt && tensor_numel(rt) != yn)
            return ref_fail(c, "the residual must have the output's shape");
        if (rt && is8(rt->dtype)) {
            if (!ref_has(c, 7)) return ref_fail(c, "an 8-bit residual needs r_scale");
            r.r8 = rt->data, r.r8s = rt->dtype == KILN_DTYPE_INT8;
            r.rs = (float)dt_get_f64(c->in[7]->dtype, c->in[7]->data, 0);
            r.rz = ref_has(c, 8) ? (float)dt_get_i64(c->in[8]->dtype, c->in[8]->data, 0) : 0.0f;
        } else if (rt) {
            if (rt->dtype != KILN_DTYPE_FLOAT32) return ref_fail(c, "residual type not taken");
            r.rf = rt->data;
        }
        if (quant_out) {
            r.fy = NULL;
            r.qy = y->data, r.qys = y->dtype == KILN_DTYPE_INT8;
            r.ys = (float)dt_get_f64(c->in[9]->dtype, c->in[9]->data, 0);
            r.yz = (float)dt_get_i64(c->in[10]->dtype, c->in[10]->data, 0);
            r.ylo = r.qys ? -128.0f : 0.0f, r.yhi = r.ylo + 255.0f;
        }
    }

    /* workspace: converted weights (no blob), zero points, caller's block */
    const bool amx = isa->tile != NULL;
    size_t wtb = amx ? qi_wt_bytes_amx(g->M, g->K, g->G) : qi_wt_bytes(g->M, g->K);
    size_t scr = qi_scratch(g);
    size_t total = 64 + wtb + 64 + (size_t)g->M * sizeof(int32_t) + scr;
    void *own = NULL;
    char *ws = c->ws;
    if (!ws || c->ws_size < total) {
        own = kiln_aligned_alloc(total);
        if (!own) return ref_fail(c, "out of memory");
        ws = own;
    }
    char *wt_area = cpu_align64(ws);
    int32_t *wz = (int32_t *)cpu_align64(wt_area + wtb);
    char *caller_scratch = (char *)(wz + g->M);
    const qi_hdr *h = c->blob;
    if (h && c->blob_size == 64 + wtb && !memcmp(h->magic, amx ? "KLNQINTA" : "KLNQINT1", 8) &&
        h->M == g->M && h->K == g->K && h->G == g->G) {
        char *base = (char *)c->blob + 64;
        r.w.ws = (int8_t *)base;
        r.w.rowsum = (int32_t *)(base + ((size_t)(g->M * g->K) + 63) / 64 * 64);
        r.w.wamx = amx ? (int8_t *)(base + qi_wt_bytes(g->M, g->K)) : NULL;
    } else if (h) {
        kiln_aligned_free(own);
        return ref_fail(c, "prepared weights do not match this layer (rebuild the engine)");
    } else {
        if (!w->data) {
            kiln_aligned_free(own);
            return ref_fail(c, "weights missing");
        }
        if (amx) qi_wt_fill_amx(c->node, w, g->M, g->K, g->G, wt_area, &r.w);
        else qi_wt_fill(c->node, w, g->M, g->K, wt_area, &r.w);
    }
    const int32_t wmove = w->dtype == KILN_DTYPE_UINT8 ? -128 : 0;
    for (int64_t m = 0; m < g->M; m++)
        wz[m] = (int32_t)(wzt ? dt_get_i64(wzt->dtype, wzt->data, (size_t)(nwz == 1 ? 0 : m)) : 0) +
                wmove;
    r.wz = wz;
    int64_t nblocks = g->N * g->G * g->nblk;
    double flops = 2.0 * (double)nblocks * CPU_Q8_NB * (double)g->Mg * (double)g->K;
    int nth = cpu_threads_for(flops);
    /* Few blocks (a transformer's 128 tokens are two): the rows of a block
    ** split over tasks too, about 4 tasks a thread, each at least 4 row
    ** tiles (a task packs its block again, K x 64 bytes, against at least
    ** 24 rows x K x 64 multiply-adds). */
    const int64_t th = amx ? CPU_Q8_AMX_MR : CPU_Q8_MR; /* rows a tile call takes */
    const int64_t least = amx ? 2 * th : 4 * th;         /* rows a task takes at least */
    r.mparts = 1;
    if (nth > 1 && nblocks < 4 * (int64_t)nth) {
        int64_t want = (4 * (int64_t)nth + nblocks - 1) / nblocks;
        int64_t most = g->Mg / least;
        r.mparts = want < most ? want : most < 1 ? 1 : most;
    }
    int64_t tiles = cdiv(g->Mg, th);
    r.mper = cdiv(tiles, r.mparts) * th;
    r.mparts = cdiv(g->Mg, r.mper);
    /* Split rows: pack each block once for all its tasks (few blocks, by
    ** the condition above, so little memory) */
    void *packed = NULL;
    if (r.mparts > 1) {
        r.pstride = ((size_t)g->Kq * 4 * CPU_Q8_NB + CPU_Q8_AMX_SLACK +
                     CPU_Q8_NB * sizeof(int32_t) + 63) / 64 * 64;
        packed = kiln_aligned_alloc(r.pstride * (size_t)nblocks);
        if (packed) {
            r.packed = packed;
            cpu_parallel_for(nblocks, nth, 0, NULL, qi_pack_task, &r);
        }
    }
    cpu_parallel_for(nblocks * r.mparts, nth, scr, caller_scratch, qi_task, &r);
    kiln_aligned_free(packed);
    kiln_aligned_free(own);
    return 0;
}

static bool qi_sup_vnni(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx512vnni.available && qi_supports(n, in);
}
static bool qi_sup_avx2(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_avx2.available && qi_supports(n, in);
}
static bool qi_sup_amx(const ir_node *n, const ir_type *const *in) {
    return cpu_q8_amx.available && qi_supports(n, in);
}
static int qi_amx(ref_ctx *c) { return qi_run_isa(c, &cpu_q8_amx); }
static int qi_vnni(ref_ctx *c) { return qi_run_isa(c, &cpu_q8_avx512vnni); }
static int qi_avx2(ref_ctx *c) { return qi_run_isa(c, &cpu_q8_avx2); }
static int qi_c(ref_ctx *c) { return qi_run_isa(c, &cpu_q8_c); }

#define VNNI_ISA (KILN_ISA_AVX512F | KILN_ISA_AVX512BW | KILN_ISA_AVX512VNNI)
#define AMX_ISA (VNNI_ISA | KILN_ISA_AMXINT8)
const kiln_tactic cpu_t_convint_amx = {"u8s8_convinteger_im2col_32x32_amx", OP_ConvInteger,
    AMX_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_amx, qi_workspace, qi_amx, qi_prepare_amx,
    1u << 1};
const kiln_tactic cpu_t_matmulint_amx = {"u8s8_matmulinteger_32x32_amx", OP_MatMulInteger,
    AMX_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_amx, qi_workspace, qi_amx, qi_prepare_amx,
    1u << 1};
const kiln_tactic cpu_t_convint_vnni = {"u8s8_convinteger_im2col_6x64_avx512vnni",
    OP_ConvInteger, VNNI_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_vnni, qi_workspace, qi_vnni,
    qi_prepare, 1u << 1};
const kiln_tactic cpu_t_convint_avx2 = {"u8s8_convinteger_im2col_2x16_avx2", OP_ConvInteger,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, qi_sup_avx2, qi_workspace, qi_avx2, qi_prepare,
    1u << 1};
const kiln_tactic cpu_t_convint_c = {"u8s8_convinteger_im2col_c", OP_ConvInteger, 0,
    TACTIC_OVERWRITES_OUTPUT, qi_supports, qi_workspace, qi_c, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_matmulint_vnni = {"u8s8_matmulinteger_6x64_avx512vnni",
    OP_MatMulInteger, VNNI_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_vnni, qi_workspace, qi_vnni,
    qi_prepare, 1u << 1};
const kiln_tactic cpu_t_matmulint_avx2 = {"u8s8_matmulinteger_2x16_avx2", OP_MatMulInteger,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, qi_sup_avx2, qi_workspace, qi_avx2, qi_prepare,
    1u << 1};
const kiln_tactic cpu_t_matmulint_c = {"u8s8_matmulinteger_c", OP_MatMulInteger, 0,
    TACTIC_OVERWRITES_OUTPUT, qi_supports, qi_workspace, qi_c, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_matmulintf_amx = {"u8s8_matmulinteger_f32_32x32_amx",
    OP_MatMulIntegerToFloat, AMX_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_amx, qi_workspace,
    qi_amx, qi_prepare_amx, 1u << 1};
const kiln_tactic cpu_t_matmulintf_vnni = {"u8s8_matmulinteger_f32_6x64_avx512vnni",
    OP_MatMulIntegerToFloat, VNNI_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_vnni, qi_workspace,
    qi_vnni, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_matmulintf_avx2 = {"u8s8_matmulinteger_f32_2x16_avx2",
    OP_MatMulIntegerToFloat, KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, qi_sup_avx2,
    qi_workspace, qi_avx2, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_convintf_amx = {"u8s8_convinteger_f32_im2col_32x32_amx",
    OP_ConvIntegerToFloat, AMX_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_amx, qi_workspace, qi_amx,
    qi_prepare_amx, 1u << 1};
const kiln_tactic cpu_t_convintf_vnni = {"u8s8_convinteger_f32_im2col_6x64_avx512vnni",
    OP_ConvIntegerToFloat, VNNI_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_vnni, qi_workspace,
    qi_vnni, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_convintf_avx2 = {"u8s8_convinteger_f32_im2col_2x16_avx2",
    OP_ConvIntegerToFloat, KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, qi_sup_avx2, qi_workspace,
    qi_avx2, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_convintf_c = {"u8s8_convinteger_f32_im2col_c", OP_ConvIntegerToFloat, 0,
    TACTIC_OVERWRITES_OUTPUT, qi_supports, qi_workspace, qi_c, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_matmulintf_c = {"u8s8_matmulinteger_f32_c", OP_MatMulIntegerToFloat,
    0, TACTIC_OVERWRITES_OUTPUT, qi_supports, qi_workspace, qi_c, qi_prepare, 1u << 1};
const kiln_tactic cpu_t_qfgemm_amx = {"u8s8_qfusedgemm_32x32_amx", OP_QFusedGemm, AMX_ISA,
    TACTIC_OVERWRITES_OUTPUT, qi_sup_amx, qi_workspace, qi_amx, qi_prepare_amx, 1u << 1};
const kiln_tactic cpu_t_qfgemm_vnni = {"u8s8_qfusedgemm_6x64_avx512vnni", OP_QFusedGemm,
    VNNI_ISA, TACTIC_OVERWRITES_OUTPUT, qi_sup_vnni, qi_workspace, qi_vnni, qi_prepare,
    1u << 1};
const kiln_tactic cpu_t_qfgemm_avx2 = {"u8s8_qfusedgemm_2x16_avx2", OP_QFusedGemm,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, qi_sup_avx2, qi_workspace, qi_avx2, qi_prepare,
    1u << 1};
const kiln_tactic cpu_t_qfgemm_c = {"u8s8_qfusedgemm_c", OP_QFusedGemm, 0,
    TACTIC_OVERWRITES_OUTPUT, qi_supports, qi_workspace, qi_c, qi_prepare, 1u << 1};

/* ---------------------------------------------------- DynamicQuantizeLinear */
enum { DQ_CHUNK = 1 << 15 };

typedef struct dq_run {
    const float *x;
    uint8_t *y;
    int64_t n;
    float *mx, *mn; /* per chunk */
    float scale, zpi;
    bool avx2;
} dq_run;

/* max/min of x[0..n) with 0 included, NaNs skipped (the reference compares
** with > and <, which a NaN never passes) */
static void dq_range_c(const float *x, int64_t n, float *mx, float *mn) {
    float a = 0.0f, b = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > a) a = x[i];
        if (x[i] < b) b = x[i];
    }
    *mx = a, *mn = b;
}

static void dq_quant_c(const float *x, int64_t n, float scale, float zpi, uint8_t *y) {
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] / scale) + zpi;
        y[i] = q != q ? 0 : q <= 0.0f ? 0 : q >= 255.0f ? 255 : (uint8_t)q;
    }
}

#ifdef QI_X86
__attribute__((target("avx2"))) static void dq_range_avx2(const float *x, int64_t n, float *mx,
                                                          float *mn) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    /* max_ps(v, a) returns a when v is NaN: NaNs are skipped */
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a = _mm256_max_ps(v, a);
        b = _mm256_min_ps(v, b);
    }
    float ta[8], tb[8];
    _mm256_storeu_ps(ta, a);
    _mm256_storeu_ps(tb, b);
    float ra, rb;
    dq_range_c(x + i, n - i, &ra, &rb);
    for (int k = 0; k < 8; k++) {
        if (ta[k] > ra) ra = ta[k];
        if (tb[k] < rb) rb = tb[k];
    }
    *mx = ra, *mn = rb;
}

__attribute__((target("avx2"))) static void dq_quant_avx2(const float *x, int64_t n, float scale,
                                                          float zpi, uint8_t *y) {
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zpi);
    const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_add_ps(q, z);
        q = _mm256_and_ps(q, _mm256_cmp_ps(q, q, _CMP_ORD_Q)); /* NaN -> 0 */
        q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        __m256i v = _mm256_cvtps_epi32(q);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packus_epi16(w, w));
    }
    dq_quant_c(x + i, n - i, scale, zpi, y + i);
}
#endif

static void dq_range_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const dq_run *r = arg;
    int64_t i0 = t * DQ_CHUNK, m = r->n - i0 < DQ_CHUNK ? r->n - i0 : DQ_CHUNK;
#ifdef QI_X86
    if (r->avx2) {
        dq_range_avx2(r->x + i0, m, &r->mx[t], &r->mn[t]);
        return;
    }
#endif
    dq_range_c(r->x + i0, m, &r->mx[t], &r->mn[t]);
}

static void dq_quant_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const dq_run *r = arg;
    int64_t i0 = t * DQ_CHUNK, m = r->n - i0 < DQ_CHUNK ? r->n - i0 : DQ_CHUNK;
#ifdef QI_X86
    if (r->avx2) {
        dq_quant_avx2(r->x + i0, m, r->scale, r->zpi, r->y + i0);
        return;
    }
#endif
    dq_quant_c(r->x + i0, m, r->scale, r->zpi, r->y + i0);
}

static bool dq_supports(const ir_node *n, const ir_type *const *in) {
    return n->n_in >= 1 && n->n_out == 3 && in[0] && in[0]->dtype == KILN_DTYPE_FLOAT32;
}

static int dq_run_isa(ref_ctx *c, bool avx2) {
    const kiln_tensor *x = c->in[0];
    if (x->dtype != KILN_DTYPE_FLOAT32 || c->n_out < 3 || !c->out[0] || !c->out[1] ||
        !c->out[2] || c->out[0]->dtype != KILN_DTYPE_UINT8 ||
        c->out[1]->dtype != KILN_DTYPE_FLOAT32 || c->out[2]->dtype != KILN_DTYPE_UINT8 ||
        tensor_numel(c->out[0]) != tensor_numel(x) || tensor_numel(c->out[1]) != 1 ||
        tensor_numel(c->out[2]) != 1)
        return ref_fail(c, "DynamicQuantizeLinear needs float32 in, uint8/float32/uint8 out");
    dq_run r;
    memset(&r, 0, sizeof r);
    r.x = x->data, r.y = c->out[0]->data, r.n = tensor_numel(x), r.avx2 = avx2;
    int64_t nt = (r.n + DQ_CHUNK - 1) / DQ_CHUNK;
    float stack[2 * 64];
    float *heap = NULL;
    if (nt <= 64) {
        r.mx = stack, r.mn = stack + 64;
    } else {
        heap = malloc((size_t)nt * 2 * sizeof(float));
        if (!heap) return ref_fail(c, "out of memory");
        r.mx = heap, r.mn = heap + nt;
    }
    int nth = cpu_threads_for(4.0 * (double)r.n);
    if (nt > 0) cpu_parallel_for(nt, nth, 0, NULL, dq_range_task, &r);
    float mx = 0.0f, mn = 0.0f;
    for (int64_t t = 0; t < nt; t++) {
        if (r.mx[t] > mx) mx = r.mx[t];
        if (r.mn[t] < mn) mn = r.mn[t];
    }
    /* the reference's steps, in float */
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float izp = 0.0f - mn / scale;
    float zp = izp < 0 ? 0.0f : izp > 255 ? 255.0f : izp;
    r.scale = scale, r.zpi = nearbyintf(zp);
    if (nt > 0) cpu_parallel_for(nt, nth, 0, NULL, dq_quant_task, &r);
    free(heap);
    *(float *)c->out[1]->data = scale;
    *(uint8_t *)c->out[2]->data = r.zpi != r.zpi ? 0 : (uint8_t)r.zpi;
    return 0;
}

static int dq_avx2(ref_ctx *c) { return dq_run_isa(c, true); }
static int dq_c(ref_ctx *c) { return dq_run_isa(c, false); }

const kiln_tactic cpu_t_dynquant_avx2 = {"f32_dynamic_quantize_avx2", OP_DynamicQuantizeLinear,
    KILN_ISA_AVX2, TACTIC_OVERWRITES_OUTPUT, dq_supports, NULL, dq_avx2};
const kiln_tactic cpu_t_dynquant_c = {"f32_dynamic_quantize_c", OP_DynamicQuantizeLinear, 0,
    TACTIC_OVERWRITES_OUTPUT, dq_supports, NULL, dq_c};

/* ---------------------------------------------------- Cast int32 -> float32
** (the int32 products of ConvInteger/MatMulInteger on their way to the
** scale multiply); the conversion rounds to nearest as the reference's */
typedef struct cast_run {
    const int32_t *x;
    float *y;
    int64_t n;
} cast_run;

static void cast_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const cast_run *r = arg;
    int64_t i0 = t * DQ_CHUNK, m = r->n - i0 < DQ_CHUNK ? r->n - i0 : DQ_CHUNK;
    const int32_t *x = r->x + i0;
    float *y = r->y + i0;
    for (int64_t i = 0; i < m; i++) y[i] = (float)x[i];
}

static bool cast_supports(const ir_node *n, const ir_type *const *in) {
    return n->n_in == 1 && n->n_out == 1 && in[0] && in[0]->dtype == KILN_DTYPE_INT32 &&
           ir_attr_int(n, "to", 0) == KILN_DTYPE_FLOAT32;
}

static int cast_run_i32(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    if (x->dtype != KILN_DTYPE_INT32 || y->dtype != KILN_DTYPE_FLOAT32 ||
        tensor_numel(x) != tensor_numel(y))
        return ref_fail(c, "this tactic casts int32 to float32 only");
    cast_run r = {x->data, y->data, tensor_numel(x)};
    int64_t nt = (r.n + DQ_CHUNK - 1) / DQ_CHUNK;
    if (nt > 0) cpu_parallel_for(nt, cpu_threads_for(2.0 * (double)r.n), 0, NULL, cast_task, &r);
    return 0;
}

const kiln_tactic cpu_t_cast_i32_f32 = {"i32_f32_cast_c", OP_Cast, 0, TACTIC_OVERWRITES_OUTPUT,
    cast_supports, NULL, cast_run_i32};
