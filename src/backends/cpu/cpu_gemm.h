/* cpu_gemm.h: the CPU backend's packed, cache-blocked float32 GEMM: problem
** description with a fused epilogue, the per-ISA microkernels, the threaded
** driver, and the small thread pool the tactics share. */
#ifndef KILN_CPU_GEMM_H
#define KILN_CPU_GEMM_H

#include "../backend.h"
#include "../../ops/fused.h"

/* Epilogue, applied once per output element after the whole K sum:
**   y(i,j) = act(alpha * sum + beta * C(i,j) + Z(i,j))
** C covers Gemm's C, FusedGemm's broadcast C and a conv's per-row bias
** (c_cs = 0); Z is FusedConv's residual. */
typedef struct cpu_epi {
    float alpha, beta;
    const float *c;      /* C(i,j) = c[i*c_rs + j*c_cs]; NULL: none */
    int64_t c_rs, c_cs;
    const float *z;      /* Z(i,j) = z[i*z_ld + j]; NULL: none */
    int64_t z_ld;
    fused_act act;
} cpu_epi;

/* Packs B(k0.., j0..) (kc x nc) of the operand at b into panels of nr
** columns: dst[(j/nr)*kc*nr + k*nr + j%nr], the last panel zero-filled to
** nr columns. Used for im2col, which is packed straight into panels. */
typedef void (*cpu_bpack_fn)(const void *ctx, const float *b, int64_t k0,
                             int64_t kc, int64_t j0, int64_t nc, int nr,
                             float *dst);

/* One GEMM: Y(i,j) = epi(sum_k A(i,k) B(k,j)), i < M, j < N, k < K. */
typedef struct cpu_gemm_prob {
    const float *a;        /* A(i,k) = a[i*a_rs + k*a_cs] */
    int64_t a_rs, a_cs;
    const float *b;        /* B(k,j) = b[k*b_rs + j*b_cs] unless bpack */
    int64_t b_rs, b_cs;
    cpu_bpack_fn bpack;    /* NULL: B is the strided matrix above */
    const void *bpack_ctx;
    const float *a_pre;    /* A already packed (cpu_gemm_prepack_a), or NULL */
    const float *b_pre;    /* B already packed (cpu_gemm_prepack_b), or NULL */
    float *y;              /* Y(i,j) = y[i*ldy + j] */
    int64_t ldy;
    cpu_epi epi;
} cpu_gemm_prob;

/* A batch of independent problems of one size; get fills problem idx. */
typedef struct cpu_gemm_job {
    int64_t M, N, K, nprob;
    void (*get)(const void *ctx, int64_t idx, cpu_gemm_prob *p);
    const void *ctx;
} cpu_gemm_job;

/* Microkernel: acc = sum over kc of a[k*MR + r] * b[k*bs + c] for the full
** MR x NR tile (packed A, B panel rows bs apart), then writes its mr x nr
** corner to y: v = acc (+ y when accumulate), and when epi is set v gets
** the epilogue ((i0, j0) is the tile's origin in the problem). */
typedef void (*cpu_ukr_fn)(int64_t kc, const float *a, const float *b,
                           int64_t bs, float *y, int64_t ldy, int mr, int nr,
                           bool accumulate, const cpu_epi *epi, int64_t i0,
                           int64_t j0);

/* Small-M kernel (M <= CPU_DOT_MAX_M) for B stored transposed (rows of B^T
** contiguous along K, as Gemm transB=1 weights): Y(i0+r, j) =
** epi(dot(A row r, B^T row j)) for r < m (1 or 2 per call), j in [j0, j1).
** No packing: B streams once per pair of A rows (for one row the x86
** kernels read B^T row after row, as one forward stream). */
enum { CPU_DOT_MAX_M = 4 };
typedef void (*cpu_dot_fn)(int64_t K, const float *a, int64_t lda, int m,
                           const float *bt, int64_t ldb, int64_t j0, int64_t j1,
                           float *y, int64_t ldy, const cpu_epi *e, int64_t i0);

/* Packs A(i0.., k0..) (mc x kc) of a row-major A (A(i,k) = a[i*lda + k])
** into panels of mr rows: dst[(i/mr)*kc*mr + k*mr + i%mr], the last panel
** zero-filled. */
typedef void (*cpu_pack_a_fn)(const float *a, int64_t lda, int64_t i0,
                              int64_t mc, int64_t k0, int64_t kc, float *dst);

/* Conv geometry for im2col, normalized to three spatial dims. B(k, j):
** k = (channel, tz, ty, tx), j = output position (oz, oy, ox); the input
** of one image and group is x [channels, id, ih, iw]. */
typedef struct cpu_im2col {
    int64_t id, ih, iw, od, oh, ow, kd, kh, kw;
    int64_t sd, sh, sw, dd, dh, dw, pd, ph, pw;
    int64_t in_plane;   /* id * ih * iw */
} cpu_im2col;

/* The portable im2col packer (cpu_bpack_fn, ctx: const cpu_im2col *). */
void cpu_im2col_pack_c(const void *ctx, const float *x, int64_t k0, int64_t kc,
                       int64_t j0, int64_t nc, int nr, float *dst);

typedef struct cpu_gemm_kernel {
    const char *name;
    bool available;        /* false: its file was built without ISA flags */
    int mr, nr;
    int64_t mc, kc, nc;    /* cache blocking: A block mc x kc, B kc x nc */
    cpu_ukr_fn ukr;
    cpu_dot_fn dot;        /* NULL: small M goes through ukr too */
    cpu_pack_a_fn pack_a;  /* row-major A; NULL: the portable packer */
    cpu_bpack_fn im2col;   /* NULL: cpu_im2col_pack_c */
} cpu_gemm_kernel;

extern const cpu_gemm_kernel cpu_gemm_kernel_c;      /* 4x8, portable */
extern const cpu_gemm_kernel cpu_gemm_kernel_avx2;   /* 6x16, AVX2+FMA */
extern const cpu_gemm_kernel cpu_gemm_kernel_avx512; /* 8x32, AVX-512F */

/* Scratch bytes of the calling thread for jobs up to M x N x K (a negative
** dim: unknown, assume the largest blocks); pool workers bring their own. */
size_t cpu_gemm_workspace(const cpu_gemm_kernel *k, int64_t M, int64_t N,
                          int64_t K);
/* Runs a job on the thread pool; the caller's scratch is c->ws (malloc'ed
** when that is too small). 0, or -1 via ref_fail. */
int cpu_gemm_run(ref_ctx *c, const cpu_gemm_kernel *k, const cpu_gemm_job *job);

/* Whole-operand packing for constant weights, done once instead of on every
** run: the layouts the driver reads through cpu_gemm_prob.a_pre / b_pre.
** Per kc-block of K, panels over all of M (of mr rows) or N (of nr
** columns), zero-padded: B block pc starts at pc * roundup(N, nr), A block
** pc at pc * roundup(M, mr). The tactics' prepare hooks store these in the
** engine (see cpu_pack_blob_new). */
size_t cpu_gemm_packed_a_floats(const cpu_gemm_kernel *k, int64_t M, int64_t K);
size_t cpu_gemm_packed_b_floats(const cpu_gemm_kernel *k, int64_t K, int64_t N);
void cpu_gemm_prepack_a(const cpu_gemm_kernel *k, const float *a, int64_t rs,
                        int64_t cs, int64_t M, int64_t K, float *dst);
void cpu_gemm_prepack_b(const cpu_gemm_kernel *k, const float *b, int64_t rs,
                        int64_t cs, int64_t K, int64_t N, float *dst);

/* ---- prepared weights (kiln_tactic.prepare) of the GEMM-based tactics.
** A blob is a 64-byte header, then the packed floats at byte 64:
**   CPU_PACK_B: one constant B (K x N) as cpu_gemm_prepack_b lays it out;
**   CPU_PACK_A: `groups` constant A matrices (M x K each, a conv's weights
**   per group) as cpu_gemm_prepack_a lays them out, one after another.
** The header names the kernel and the sizes, so a run checks that the
** blob is the one it expects and refuses anything else. */
enum { CPU_PACK_B = 1, CPU_PACK_A = 2, CPU_PACK_HDR = 64 };

/* New zeroed blob with its header for a packed operand of `floats` floats
** (kiln_aligned_alloc; NULL on overflow or out of memory). */
void *cpu_pack_blob_new(const cpu_gemm_kernel *k, int kind, int64_t rows,
                        int64_t cols, int64_t groups, size_t floats,
                        size_t *bytes_out);
/* The packed floats of c->blob when it matches (kernel, kind, sizes), NULL
** in *out when the layer has no blob; -1 via ref_fail when the blob is
** of another shape or kernel (a stale or foreign engine). */
int cpu_pack_blob_get(ref_ctx *c, const cpu_gemm_kernel *k, int kind,
                      int64_t rows, int64_t cols, int64_t groups,
                      size_t floats, const float **out);

/* Writes an mr x nr accumulator tile (row stride ld) to y with the
** microkernel's semantics; the scalar tail shared by every kernel. */
void cpu_tile_store(const float *acc, int ld, float *y, int64_t ldy, int mr,
                    int nr, bool accumulate, const cpu_epi *e, int64_t i0,
                    int64_t j0);

static inline float cpu_epi_scalar(const cpu_epi *e, float v, int64_t i,
                                   int64_t j) {
    v *= e->alpha;
    if (e->c) v += e->beta * e->c[i * e->c_rs + j * e->c_cs];
    if (e->z) v += e->z[i * e->z_ld + j];
    return fused_act_f32(&e->act, v);
}

/* Applies the epilogue to a contiguous row segment y[0..n) = Y(i, j0..). */
void cpu_epi_row(const cpu_epi *e, float *y, int64_t n, int64_t i, int64_t j0);

/* ---- thread pool */
/* Runs fn(arg, t, tid, scratch) for every t in [0, ntasks) on up to
** nthreads threads, returning when all are done. The caller runs tasks too,
** as tid 0 with caller_scratch; each pool worker (tid 1..nthreads-1) gets
** scratch_bytes of its own 64-byte aligned scratch, kept by the pool between
** jobs (so only the caller's share need come from a layer's workspace).
** Runs serially on the caller when nthreads <= 1, when the pool is already
** busy (a nested or concurrent call), or when no worker can be had. */
typedef void (*cpu_task_fn)(void *arg, int64_t task, int tid, void *scratch);
void cpu_parallel_for(int64_t ntasks, int nthreads, size_t scratch_bytes,
                      void *caller_scratch, cpu_task_fn fn, void *arg);

/* Evicts [p, p + bytes) from every cache level on the pool's threads
** (kiln_backend_ops.evict). Only where there is a flush instruction this
** code knows: x86 clflush, AArch64 dc civac. */
#if ((defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)) || defined(__aarch64__)
#define CPU_HAVE_EVICT 1
void cpu_evict(const void *p, size_t bytes);
#endif

/* Physical cores available to this process (see kiln_set_num_threads). */
int cpu_physical_cores(void);

/* Thread count for work of this many flops (at least 1). */
int cpu_threads_for(double flops);

/* 64-byte aligned pointer at or after p. */
static inline void *cpu_align64(void *p) {
    return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* ---- depthwise conv rows (cpu_dwconv*.c) */
/* One depthwise conv plane: x [ih, iw], w [kh, kw] -> y [oh, ow], then the
** epilogue per row (epi's i is the output channel, j the flat position). */
typedef struct cpu_dw_plane {
    const float *x, *w;
    float *y;
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
    const cpu_epi *epi;    /* i = channel, C/Z offsets relative to plane */
    int64_t ch;
    float *scratch;        /* cpu_dw_scratch_floats(...) floats, per thread */
} cpu_dw_plane;

/* Width of the zero-padded copy of an input row the AVX2 kernel reads
** (every block of 16 outputs, the last one rounded up, stays inside). */
static inline int64_t cpu_dw_padded_width(int64_t iw, int64_t ow, int64_t kw,
                                          int64_t sw, int64_t dw, int64_t pw) {
    int64_t ow16 = (ow + 15) / 16 * 16;
    int64_t need = (ow16 - 1) * sw + (kw - 1) * dw + sw; /* last read + 1 */
    return KILN_MAX(need, pw + iw);
}
static inline int64_t cpu_dw_scratch_floats(int64_t ih, int64_t iw, int64_t ow,
                                            int64_t kw, int64_t sw, int64_t dw,
                                            int64_t pw) {
    return ih * cpu_dw_padded_width(iw, ow, kw, sw, dw, pw) + 16;
}

typedef void (*cpu_dw_fn)(const cpu_dw_plane *p);
void cpu_dw_plane_c(const cpu_dw_plane *p);
extern const cpu_dw_fn cpu_dw_plane_avx2; /* NULL without AVX2 flags */

#endif
