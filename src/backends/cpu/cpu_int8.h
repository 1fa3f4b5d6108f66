/* cpu_int8.h: INT8 convolution (QLinearConv; the qdq pass also maps
** quantized Gemm/MatMul onto 1x1 QLinearConv) for the CPU backend: the
** packed activation layout, the per-ISA microkernels and the requantizing
** epilogues that cpu_int8.c drives.
**
** Layout. Per image and group the activations are im2col-packed into blocks
** of CPU_Q8_NB output positions: block b holds, for each group of 4
** consecutive reduction indices kq (k = 4*kq .. 4*kq+3, k = channel, ky,
** kx), the 4 bytes of each of the block's positions:
**   xp[b][kq][p][j] = x(k = 4*kq + j, position b*NB + p)   (uint8)
** Signed activations are stored with 0x80 flipped (x + 128), with the zero
** point moved by 128, so every kernel multiplies unsigned activations by
** signed weights (what VNNI's vpdpbusd does). Reduction indices past K are
** 0; padded input positions hold the zero point. The int8 weights are used
** where they are, row-major [M, K] as the model stores OIHW (no packing):
** a kernel broadcasts 4 bytes of a weight row per kq; the kernel16 ones
** (AVX2) read int16 weights packed at build time instead (below).
**
** acc(m, p) = sum_k xu(k, p) * w(m, k) (int32, wrapping as the reference
** does), then the epilogue subtracts the zero-point terms and requantizes
** exactly as the reference QLinearConv: v = int32(acc + beff[m] -
** wz[m] * colsum[p]); y = sat(nearbyint(double(v) * mult[m] + yz)). */
#ifndef KILN_CPU_INT8_H
#define KILN_CPU_INT8_H

#include "../backend.h"

enum { CPU_Q8_NB = 64, CPU_Q8_MR = 6 };

/* acc[r * CPU_Q8_NB + p] for r < mr (<= CPU_Q8_MR) rows of w (row stride
** ldw, K bytes each) against one packed block xp of Kq = ceil(K/4) groups;
** all CPU_Q8_NB positions are computed (unused ones hold garbage). Never
** reads w past row r's K bytes. */
typedef void (*cpu_q8_kernel_fn)(const uint8_t *xp, const int8_t *w, int64_t ldw,
                                 int64_t K, int mr, int32_t *acc);

/* The same, computing (at least) the first np positions only: a block's
** partial tail at the cost of its positions. */
typedef void (*cpu_q8_kernel_n_fn)(const uint8_t *xp, const int8_t *w, int64_t ldw,
                                   int64_t K, int mr, int np, int32_t *acc);

/* d[p] = the 4 bytes t[0][p] .. t[3][p] (byte j of the word from row j,
** xor byte j of flip) for p < np, d[p] = 0 for np <= p < CPU_Q8_NB:
** CPU_Q8_NB positions of 4 rows interleaved into the block layout. */
typedef void (*cpu_q8_pack4_fn)(const uint8_t *const *t, uint32_t flip, int np, uint32_t *d);

typedef struct cpu_q8_epi cpu_q8_epi;
/* kernel_n with the epilogue fused: rows r < mr of the tile requantized
** by e[r] (as epi does; colsum: the block's column sums, read when
** e[r].colsum is not NULL) straight from the accumulators into
** y + r * ldy, positions p < np. */
typedef void (*cpu_q8_kernel_epi_fn)(const uint8_t *xp, const int8_t *w, int64_t ldw,
                                     int64_t K, int mr, int np, const cpu_q8_epi *e,
                                     const int32_t *colsum, uint8_t *y, int64_t ldy);

/* Weights widened to int16 and packed once (at build time, into the
** layer's prepared blob; see cpu_q8_pack_w16) in the order a kernel16
** reads them: per tile of CPU_Q8_W16_MR output channels, per kq, the 4
** weights of each of the tile's rows,
**   wp[t][kq][r][j] = w(t * MR + r, k = 4 * kq + j)   (int16),
** 0 for rows past M and k past K. A kernel16 computes all MR rows of a
** tile (the zero rows cost time, not correctness) against the first
** ceil(np / 8) groups of 8 positions of block xp and stores rows r < mr
** of acc (the same [r * CPU_Q8_NB + p] layout; other positions garbage). */
enum { CPU_Q8_W16_MR = 6 };
typedef void (*cpu_q8_kernel16_fn)(const uint8_t *xp, const int16_t *wp, int64_t Kq,
                                   int mr, int np, int32_t *acc);
/* The same on activations already widened to int16 (any sign; the block
** layout of cpu_int8.h with 4 int16 per position and kq): what the
** Winograd tactic's transformed inputs are. */
typedef void (*cpu_q8_kernel16x_fn)(const int16_t *xp, const int16_t *wp, int64_t Kq,
                                    int mr, int np, int32_t *acc);
/* Packs one group's rows w [M, K] (row-major int8) into dst, which holds
** cpu_q8_w16_elems(M, K) int16. */
int64_t cpu_q8_w16_elems(int64_t M, int64_t K);
void cpu_q8_pack_w16(const int8_t *w, int64_t M, int64_t K, int16_t *dst);

/* Requantization of one row segment. */
struct cpu_q8_epi {
    double mult;          /* x_scale * w_scale[m] / y_scale (float32 steps) */
    uint32_t beff;        /* bias - xz*rowsum(w) + K*xz*wz (mod 2^32) */
    int32_t wz;           /* weight zero point of the row */
    const int32_t *colsum;/* per position sum of xu over k; NULL when wz=0 */
    double yz, lo, hi;
    bool y_signed;
};

/* y[p] = requant(acc[p]) for p < n (colsum indexed from the segment start). */
typedef void (*cpu_q8_epi_fn)(const cpu_q8_epi *e, const int32_t *acc, int64_t n,
                              void *y);

/* QAdd (ops/qfused.c) on n elements, the reference's float32 steps. */
typedef struct cpu_q8_add {
    float sa, za, sb, zb, sy;
    int32_t zy, lo, hi;
    bool a_signed, b_signed, y_signed;
} cpu_q8_add;
typedef void (*cpu_q8_add_fn)(const cpu_q8_add *p, const void *a, const void *b,
                              void *y, int64_t n);

/* Few output positions (a GEMV, as the qdq pass's batch-1 Gemm): out[i] =
** sum_k x[k] * w[(m0 + i) * ldw + k] for m0 + i < m1; x holds K bytes
** followed by zeros up to a multiple of 64. Never reads w past a row. */
typedef void (*cpu_q8_dot_fn)(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K,
                              int64_t m0, int64_t m1, int32_t *out);

/* Per-tensor QuantizeLinear (float32 -> 8-bit) and DequantizeLinear
** (8-bit -> float32) with the reference's float32 steps. */
typedef struct cpu_q8_qparams {
    float scale, zp;
    int32_t izp, lo, hi;
    bool q_signed;
} cpu_q8_qparams;
typedef void (*cpu_q8_quant_fn)(const cpu_q8_qparams *p, const float *x, void *y, int64_t n);
typedef void (*cpu_q8_dequant_fn)(const cpu_q8_qparams *p, const void *x, float *y, int64_t n);

/* AMX (cpu_int8_amx.c). Weights packed once (at build time, into the
** layer's blob) as the A tiles tdpbsud reads: per 16 rows and per 64
** reduction indices, a 16 x 64 byte tile (1 KiB, rows contiguous),
**   wp[t][kc][r][j] = w(16 * t + r, k = 64 * kc + j)   (int8),
** with ceil(M / 32) * 2 row tiles and ceil(K / 64) column steps, 0 for
** rows past M and k past K. A block's B tile is 16 positions of 16 rows
** kq of xp (row stride CPU_Q8_NB * 4): the last column step reads rows up
** to 16 * ceil(K / 64) - 1, past Kq, where the weights are 0; the driver
** leaves CPU_Q8_AMX_SLACK readable bytes after the last block. */
enum { CPU_Q8_AMX_MR = 32, CPU_Q8_AMX_SLACK = 16 * CPU_Q8_NB * 4 };
int64_t cpu_q8_amx_w_bytes(int64_t M, int64_t K);
void cpu_q8_pack_amx(const int8_t *w, int64_t M, int64_t K, int8_t *dst);
/* Rows m0 .. m1-1 (m0 a multiple of CPU_Q8_AMX_MR) of one position block,
** requantized into y: what gemm_task does with kernel and epi, in one call
** so the tile configuration is loaded once (and released at the end). */
typedef struct cpu_q8_tile_job {
    const uint8_t *xp;        /* the block: Kq * CPU_Q8_NB * 4 bytes (+ slack) */
    const int8_t *wp;         /* this group's packed weights (cpu_q8_pack_amx) */
    int64_t K, m0, m1;
    int np;                   /* real positions of the block */
    const cpu_q8_epi *epi;    /* this group's rows */
    const int32_t *colsum;    /* the block's column sums, or NULL */
    uint8_t *y;               /* row m's outputs at y + m * ldy */
    int64_t ldy;
    /* not NULL: no epilogue; row m's raw int32 sums (np positions) go to
    ** acc + (m - m0) * CPU_Q8_NB instead (ConvInteger and MatMulInteger,
    ** cpu_qint.c); epi, colsum and y are not read */
    int32_t *acc;
} cpu_q8_tile_job;
typedef void (*cpu_q8_tile_fn)(const cpu_q8_tile_job *j);


typedef struct cpu_q8_isa {
    const char *name;
    bool available;       /* false: its file was built without the flags */
    cpu_q8_kernel_fn kernel;
    cpu_q8_epi_fn epi;
    cpu_q8_add_fn add;
    cpu_q8_dot_fn dot;
    cpu_q8_quant_fn quant;
    cpu_q8_dequant_fn dequant;
    cpu_q8_kernel16_fn kernel16; /* NULL: reads the int8 weights in place */
    cpu_q8_kernel16x_fn kernel16x;
    cpu_q8_kernel_n_fn kernel_n; /* NULL: kernel (all CPU_Q8_NB positions) */
    cpu_q8_kernel_epi_fn kernel_epi; /* NULL: kernel_n or kernel, then epi */
    cpu_q8_pack4_fn pack4;           /* NULL: the portable loop */
    cpu_q8_tile_fn tile;             /* AMX: reads cpu_q8_pack_amx weights */
} cpu_q8_isa;

/* The bodies of the elementwise quantization kernels, written once and
** compiled in each ISA file (its flags let the compiler vectorize them). */
static inline int32_t cpu_q8_round_sat(float q, int32_t zp, int32_t lo, int32_t hi) {
    if (q != q) return 0; /* NaN: the reference writes 0 */
    q = q < -1e9f ? -1e9f : q > 1e9f ? 1e9f : q;
    int32_t r = (int32_t)__builtin_nearbyintf(q) + zp;
    return r < lo ? lo : r > hi ? hi : r;
}

static inline void cpu_q8_quant_body(const cpu_q8_qparams *p, const float *x, void *y,
                                     int64_t n) {
    if (p->q_signed) {
        int8_t *o = y;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int8_t)cpu_q8_round_sat(x[i] / p->scale, p->izp, p->lo, p->hi);
    } else {
        uint8_t *o = y;
        for (int64_t i = 0; i < n; i++)
            o[i] = (uint8_t)cpu_q8_round_sat(x[i] / p->scale, p->izp, p->lo, p->hi);
    }
}

static inline void cpu_q8_dequant_body(const cpu_q8_qparams *p, const void *x, float *y,
                                       int64_t n) {
    if (p->q_signed) {
        const int8_t *v = x;
        for (int64_t i = 0; i < n; i++) y[i] = ((float)v[i] - p->zp) * p->scale;
    } else {
        const uint8_t *v = x;
        for (int64_t i = 0; i < n; i++) y[i] = ((float)v[i] - p->zp) * p->scale;
    }
}

/* Winograd F(2x2, 3x3) input transform (cpu_int8.c's integer Winograd
** tactic) of tile row th of one image, every channel: V = Bt d B of each
** tile's 4x4 patch d of unsigned activations (signed ones flipped by
** `flip`, the zero point xzu in the padding; 0 for channels past C),
** written to v[xi][block][cq][p][4 channels] (int16, the kernel16x
** layout), xi = 4 * i + j. scr: cpu_q8_wino_scr_elems(TW) int16. */
typedef struct cpu_q8_wino_in_args {
    const uint8_t *x;          /* the image: [C, H, W] */
    int16_t *v;
    int64_t C, H, W, ph, pw, TW, nblk, Cq;
    uint8_t flip, xzu;
} cpu_q8_wino_in_args;
int64_t cpu_q8_wino_scr_elems(int64_t TW);
void cpu_q8_wino_in(const cpu_q8_wino_in_args *a, int64_t th, int16_t *scr);

extern const cpu_q8_isa cpu_q8_c, cpu_q8_avx2, cpu_q8_avx2_7bit, cpu_q8_avx2_w16,
    cpu_q8_avx512vnni, cpu_q8_amx;

/* The portable pieces (cpu_int8.c), also the ISA files' tails. */
void cpu_q8_kernel_c(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K,
                     int mr, int32_t *acc);
void cpu_q8_epi_c(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y);
void cpu_q8_add_c(const cpu_q8_add *p, const void *a, const void *b, void *y, int64_t n);
void cpu_q8_quant_c(const cpu_q8_qparams *p, const float *x, void *y, int64_t n);
void cpu_q8_dequant_c(const cpu_q8_qparams *p, const void *x, float *y, int64_t n);
void cpu_q8_dot_c(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K, int64_t m0,
                  int64_t m1, int32_t *out);

#endif
