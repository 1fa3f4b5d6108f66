/* cpu_gemm.c: the GEMM driver shared by every ISA: splits a job into tasks
** for the thread pool, blocks each task for the caches (B block kc x nc,
** A block mc x kc), packs both operands into microkernel panels and calls
** the ISA's microkernel, which applies the epilogue on the last K block.
** Also the portable 4x8 microkernel and the scalar epilogue. */
#include "cpu_gemm.h"

#include <stdio.h>

/* ------------------------------------------------------------ epilogue */
void cpu_tile_store(const float *acc, int ld, float *y, int64_t ldy, int mr,
                    int nr, bool accumulate, const cpu_epi *e, int64_t i0,
                    int64_t j0) {
    for (int r = 0; r < mr; r++) {
        float *yr = y + r * ldy;
        const float *ar = acc + r * ld;
        for (int c = 0; c < nr; c++) {
            float v = ar[c];
            if (accumulate) v += yr[c];
            if (e) v = cpu_epi_scalar(e, v, i0 + r, j0 + c);
            yr[c] = v;
        }
    }
}

void cpu_epi_row(const cpu_epi *e, float *y, int64_t n, int64_t i, int64_t j0) {
    for (int64_t j = 0; j < n; j++) y[j] = cpu_epi_scalar(e, y[j], i, j0 + j);
}

/* ------------------------------------------------ portable microkernel */
enum { CMR = 4, CNR = 8 };

static void ukr_c(int64_t kc, const float *a, const float *b, int64_t bs,
                  float *y, int64_t ldy, int mr, int nr, bool accumulate,
                  const cpu_epi *e, int64_t i0, int64_t j0) {
    float acc[CMR][CNR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * bs;
        for (int r = 0; r < CMR; r++) {
            float av = a[k * CMR + r];
            for (int c = 0; c < CNR; c++) acc[r][c] += av * bk[c];
        }
    }
    cpu_tile_store(&acc[0][0], CNR, y, ldy, mr, nr, accumulate, e, i0, j0);
}

/* Eight partial sums per dot product so the compiler can vectorize it. */
static void dot_c(int64_t K, const float *a, int64_t lda, int m, const float *bt,
                  int64_t ldb, int64_t j0, int64_t j1, float *y, int64_t ldy,
                  const cpu_epi *e, int64_t i0) {
    for (int64_t j = j0; j < j1; j++) {
        const float *b = bt + j * ldb;
        for (int r = 0; r < m; r++) {
            const float *ar = a + r * lda;
            float acc[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= K; k += 8)
                for (int q = 0; q < 8; q++) acc[q] += ar[k + q] * b[k + q];
            float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                      ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (; k < K; k++) s += ar[k] * b[k];
            y[r * ldy + j] = cpu_epi_scalar(e, s, i0 + r, j);
        }
    }
}

const cpu_gemm_kernel cpu_gemm_kernel_c = {
    "4x8_c", true, CMR, CNR, 128, 256, 1024, ukr_c, dot_c, NULL, NULL,
};

/* ------------------------------------------------------------- packing */
/* A(i0.., k0..) (mc x kc) into panels of mr rows: dst[(i/mr)*kc*mr + k*mr
** + i%mr], the last panel zero-filled. */
static void pack_a(const float *a, int64_t rs, int64_t cs, int64_t i0,
                   int64_t mc, int64_t k0, int64_t kc, int mr, float *dst) {
    for (int64_t ip = 0; ip < mc; ip += mr) {
        int h = (int)KILN_MIN((int64_t)mr, mc - ip);
        float *d = dst + ip * kc;
        const float *src = a + (i0 + ip) * rs + k0 * cs;
        if (cs == 1) {
            for (int r = 0; r < h; r++) {
                const float *s = src + r * rs;
                for (int64_t k = 0; k < kc; k++) d[k * mr + r] = s[k];
            }
        } else {
            for (int64_t k = 0; k < kc; k++) {
                const float *s = src + k * cs;
                for (int r = 0; r < h; r++) d[k * mr + r] = s[r * rs];
            }
        }
        if (h < mr)
            for (int64_t k = 0; k < kc; k++)
                for (int r = h; r < mr; r++) d[k * mr + r] = 0.0f;
    }
}

/* A strided B matrix into panels (cpu_bpack_fn layout). */
static void pack_b(const float *b, int64_t rs, int64_t cs, int64_t k0,
                   int64_t kc, int64_t j0, int64_t nc, int nr, float *dst) {
    for (int64_t jp = 0; jp < nc; jp += nr) {
        int w = (int)KILN_MIN((int64_t)nr, nc - jp);
        float *d = dst + jp * kc;
        const float *src = b + k0 * rs + (j0 + jp) * cs;
        if (cs == 1) {
            for (int64_t k = 0; k < kc; k++) {
                memcpy(d + k * nr, src + k * rs, (size_t)w * sizeof(float));
                for (int c = w; c < nr; c++) d[k * nr + c] = 0.0f;
            }
        } else {
            /* Transposed B: read each column contiguously when it is. */
            for (int c = 0; c < w; c++) {
                const float *s = src + c * cs;
                for (int64_t k = 0; k < kc; k++) d[k * nr + c] = s[k * rs];
            }
            if (w < nr)
                for (int64_t k = 0; k < kc; k++)
                    for (int c = w; c < nr; c++) d[k * nr + c] = 0.0f;
        }
    }
}

size_t cpu_gemm_packed_a_floats(const cpu_gemm_kernel *k, int64_t M, int64_t K) {
    int64_t mp = (M + k->mr - 1) / k->mr * k->mr;
    return (size_t)(K * mp);
}

size_t cpu_gemm_packed_b_floats(const cpu_gemm_kernel *k, int64_t K, int64_t N) {
    int64_t np = (N + k->nr - 1) / k->nr * k->nr;
    return (size_t)(K * np);
}

void cpu_gemm_prepack_a(const cpu_gemm_kernel *k, const float *a, int64_t rs,
                        int64_t cs, int64_t M, int64_t K, float *dst) {
    int64_t mp = (M + k->mr - 1) / k->mr * k->mr;
    for (int64_t pc = 0; pc < K; pc += k->kc) {
        int64_t kc = KILN_MIN(k->kc, K - pc);
        pack_a(a, rs, cs, 0, M, pc, kc, k->mr, dst + pc * mp);
    }
}

void cpu_gemm_prepack_b(const cpu_gemm_kernel *k, const float *b, int64_t rs,
                        int64_t cs, int64_t K, int64_t N, float *dst) {
    int64_t np = (N + k->nr - 1) / k->nr * k->nr;
    for (int64_t pc = 0; pc < K; pc += k->kc) {
        int64_t kc = KILN_MIN(k->kc, K - pc);
        pack_b(b, rs, cs, pc, kc, 0, N, k->nr, dst + pc * np);
    }
}

/* ------------------------------------------------ prepared-weight blobs */
typedef struct pack_hdr { /* 64 bytes, little-endian fields at fixed places */
    char magic[8];        /* "KLNPACK1" */
    uint32_t kind;
    uint32_t mr_nr;       /* mr << 16 | nr */
    char kernel[16];      /* cpu_gemm_kernel.name */
    int64_t rows, cols, groups, kc;
} pack_hdr;
_Static_assert(sizeof(pack_hdr) <= CPU_PACK_HDR, "pack header too big");

static void pack_hdr_fill(pack_hdr *h, const cpu_gemm_kernel *k, int kind,
                          int64_t rows, int64_t cols, int64_t groups) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "KLNPACK1", 8);
    h->kind = (uint32_t)kind;
    h->mr_nr = (uint32_t)k->mr << 16 | (uint32_t)k->nr;
    snprintf(h->kernel, sizeof h->kernel, "%s", k->name);
    h->rows = rows;
    h->cols = cols;
    h->groups = groups;
    h->kc = k->kc;
}

void *cpu_pack_blob_new(const cpu_gemm_kernel *k, int kind, int64_t rows,
                        int64_t cols, int64_t groups, size_t floats,
                        size_t *bytes_out) {
    size_t bytes;
    *bytes_out = 0;
    if (floats > (KILN_MAX_ALLOC - CPU_PACK_HDR) / sizeof(float)) return NULL;
    bytes = CPU_PACK_HDR + floats * sizeof(float);
    uint8_t *b = kiln_aligned_alloc(bytes);
    if (!b) return NULL;
    memset(b, 0, bytes); /* deterministic bytes: rebuilds are identical */
    pack_hdr h;
    pack_hdr_fill(&h, k, kind, rows, cols, groups);
    memcpy(b, &h, sizeof h);
    *bytes_out = bytes;
    return b;
}

int cpu_pack_blob_get(ref_ctx *c, const cpu_gemm_kernel *k, int kind,
                      int64_t rows, int64_t cols, int64_t groups,
                      size_t floats, const float **out) {
    *out = NULL;
    if (!c->blob) return 0;
    pack_hdr want, got;
    pack_hdr_fill(&want, k, kind, rows, cols, groups);
    if (c->blob_size < CPU_PACK_HDR ||
        (c->blob_size - CPU_PACK_HDR) / sizeof(float) != floats ||
        (c->blob_size - CPU_PACK_HDR) % sizeof(float))
        return ref_fail(c, "prepared weights have %zu bytes, expected %zu: "
                        "rebuild the engine", c->blob_size,
                        (size_t)CPU_PACK_HDR + floats * sizeof(float));
    memcpy(&got, c->blob, sizeof got);
    if (memcmp(&got, &want, sizeof want))
        return ref_fail(c, "prepared weights are for another kernel or shape "
                        "(%lld x %lld): rebuild the engine", (long long)got.rows,
                        (long long)got.cols);
    *out = (const float *)((const uint8_t *)c->blob + CPU_PACK_HDR);
    return 0;
}

/* -------------------------------------------------------------- driver */
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Floats of one thread's A and B blocks for an M x N x K job. */
static void block_floats(const cpu_gemm_kernel *k, int64_t M, int64_t N,
                         int64_t K, int64_t *na, int64_t *nb) {
    int64_t mc = M < 0 ? k->mc : KILN_MIN(k->mc, round_up(M, k->mr));
    int64_t nc = N < 0 ? k->nc : KILN_MIN(k->nc, round_up(N, k->nr));
    int64_t kc = K < 0 ? k->kc : KILN_MIN(k->kc, K);
    *na = mc * kc;
    *nb = kc * nc;
}

static size_t per_thread_bytes(const cpu_gemm_kernel *k, int64_t M, int64_t N,
                               int64_t K) {
    int64_t na, nb;
    block_floats(k, M, N, K, &na, &nb);
    /* Two 64-byte alignment gaps plus one for the block start. */
    return (size_t)(na + nb) * sizeof(float) + 3 * 64;
}

size_t cpu_gemm_workspace(const cpu_gemm_kernel *k, int64_t M, int64_t N,
                          int64_t K) {
    return per_thread_bytes(k, M, N, K);
}

/* Rows of a task at or below which B is read in place (row-major B, full
** panels) instead of packed: packing only pays when many row panels reuse
** each B panel. */
#define DIRECT_B_ROWS(k) (2 * (k)->mr)

typedef struct gemm_run {
    const cpu_gemm_kernel *k;
    const cpu_gemm_job *job;
    int64_t tm, tn;            /* tasks per problem along M and N */
    int64_t tiles_m, tiles_n;  /* microtiles per problem */
} gemm_run;

/* One task: rows [m0, m1) x columns [n0, n1) of a problem of M x N x K. */
static void gemm_block(const cpu_gemm_kernel *k, const cpu_gemm_prob *p,
                       int64_t M, int64_t N, int64_t K, int64_t m0, int64_t m1,
                       int64_t n0, int64_t n1, float *ap, float *bp) {
    int MR = k->mr, NR = k->nr;
    bool direct = !p->b_pre && !p->bpack && p->b_cs == 1 && m1 - m0 <= DIRECT_B_ROWS(k);
    int64_t mp = round_up(M, MR), np = round_up(N, NR); /* pre-packed strides */
    for (int64_t jc = n0; jc < n1; jc += k->nc) {
        int64_t nc = KILN_MIN(k->nc, n1 - jc);
        int64_t nfull = direct ? nc / NR * NR : 0;
        /* K == 0 still runs one (empty) block so the epilogue writes Y. */
        for (int64_t pc = 0; pc < K || pc == 0; pc += k->kc) {
            int64_t kc = KILN_MIN(k->kc, K - pc);
            bool first = pc == 0, last = pc + kc >= K;
            if (p->b_pre)
                ;
            else if (p->bpack)
                p->bpack(p->bpack_ctx, p->b, pc, kc, jc, nc, NR, bp);
            else if (nc > nfull)
                pack_b(p->b, p->b_rs, p->b_cs, pc, kc, jc + nfull, nc - nfull,
                       NR, bp);
            for (int64_t ic = m0; ic < m1; ic += k->mc) {
                int64_t mc = KILN_MIN(k->mc, m1 - ic);
                const float *ablk = ap;
                if (p->a_pre)
                    ablk = p->a_pre + pc * mp + ic * kc;
                else if (k->pack_a && p->a_cs == 1)
                    k->pack_a(p->a, p->a_rs, ic, mc, pc, kc, ap);
                else
                    pack_a(p->a, p->a_rs, p->a_cs, ic, mc, pc, kc, MR, ap);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int nr = (int)KILN_MIN((int64_t)NR, nc - jr);
                    const float *bpanel;
                    int64_t bs = NR;
                    if (p->b_pre) {
                        bpanel = p->b_pre + pc * np + (jc + jr) * kc;
                    } else if (jr < nfull) {
                        bpanel = p->b + pc * p->b_rs + jc + jr;
                        bs = p->b_rs;
                    } else {
                        bpanel = bp + (jr - nfull) * kc;
                    }
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int mr = (int)KILN_MIN((int64_t)MR, mc - ir);
                        int64_t i = ic + ir, j = jc + jr;
                        k->ukr(kc, ablk + ir * kc, bpanel, bs, p->y + i * p->ldy + j,
                               p->ldy, mr, nr, !first, last ? &p->epi : NULL, i, j);
                    }
                }
            }
            if (K == 0) break;
        }
    }
}

static void gemm_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    const gemm_run *r = arg;
    const cpu_gemm_kernel *k = r->k;
    const cpu_gemm_job *job = r->job;
    int64_t per = r->tm * r->tn, pi = t / per, q = t % per;
    int64_t mi = q / r->tn, ni = q % r->tn;
    int64_t m0 = r->tiles_m * mi / r->tm * k->mr;
    int64_t m1 = KILN_MIN(job->M, r->tiles_m * (mi + 1) / r->tm * k->mr);
    int64_t n0 = r->tiles_n * ni / r->tn * k->nr;
    int64_t n1 = KILN_MIN(job->N, r->tiles_n * (ni + 1) / r->tn * k->nr);
    if (m0 >= m1 || n0 >= n1) return;
    cpu_gemm_prob p = {0};
    job->get(job->ctx, pi, &p);
    int64_t na, nb;
    block_floats(k, job->M, job->N, job->K, &na, &nb);
    float *ap = cpu_align64(scratch);
    float *bp = cpu_align64(ap + na);
    gemm_block(k, &p, job->M, job->N, job->K, m0, m1, n0, n1, ap, bp);
}

static void dot_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid;
    (void)scratch;
    const gemm_run *r = arg;
    const cpu_gemm_job *job = r->job;
    int64_t pi = t / r->tn, ni = t % r->tn;
    int64_t n0 = r->tiles_n * ni / r->tn * 16;
    int64_t n1 = KILN_MIN(job->N, r->tiles_n * (ni + 1) / r->tn * 16);
    if (n0 >= n1) return;
    cpu_gemm_prob p = {0};
    job->get(job->ctx, pi, &p);
    for (int64_t i = 0; i < job->M; i += 2)
        r->k->dot(job->K, p.a + i * p.a_rs, p.a_rs, (int)KILN_MIN(2, job->M - i),
                  p.b, p.b_cs, n0, n1, p.y + i * p.ldy, p.ldy, &p.epi, i);
}

/* Splits one problem into tm x tn tasks (tm*tn <= want) minimizing the
** largest task, counting packing as extra work per row and column. */
static void choose_split(int64_t tiles_m, int64_t tiles_n, int mr, int nr,
                         int64_t want, int64_t *tm, int64_t *tn) {
    double best = -1;
    *tm = *tn = 1;
    for (int64_t a = 1; a <= want && a <= tiles_m; a++) {
        int64_t b = KILN_MAX(KILN_MIN(want / a, tiles_n), 1);
        double pm = (double)((tiles_m + a - 1) / a * mr);
        double pn = (double)((tiles_n + b - 1) / b * nr);
        double cost = pm * pn + 8.0 * (pm + pn);
        if (best < 0 || cost < best) {
            best = cost;
            *tm = a;
            *tn = b;
        }
    }
}

int cpu_gemm_run(ref_ctx *c, const cpu_gemm_kernel *k, const cpu_gemm_job *job) {
    if (job->M <= 0 || job->N <= 0 || job->nprob <= 0) return 0;
    gemm_run r = {0};
    r.k = k;
    r.job = job;
    size_t per_thread = per_thread_bytes(k, job->M, job->N, job->K);
    double flops = 2.0 * (double)job->M * (double)job->N *
                   (double)KILN_MAX(job->K, 1) * (double)job->nprob;
    /* A job of fewer rows than a tile (a batch-1 fc layer, a GEMV) is bound
    ** by reading B, not by its flops: 2 flops per 4-byte weight against a
    ** compute-bound tile's 2*mr. Weighed by its flops alone, ResNet-50's
    ** 2048 -> 1000 fc got 3 of 16 threads (cpu_threads_for: 1 MFLOP a
    ** thread) and took 0.26 ms at 16 threads on the device host, where its
    ** 8 MB read split over the cores takes a few tens of microseconds. */
    if (job->M < k->mr) flops *= (double)k->mr / (double)job->M;
    int T = cpu_threads_for(flops);
    void *owned = NULL;
    if (k->dot && job->M <= CPU_DOT_MAX_M && job->K > 0) {
        /* Few rows against a transposed B: dot products beat packing B.
        ** The job's problems share one layout; problem 0 shows it. */
        cpu_gemm_prob p0 = {0};
        job->get(job->ctx, 0, &p0);
        /* Not with B prepacked: its raw data may be absent from the engine
        ** (kiln_tactic.blob_replaces), and the packed path reads it once too. */
        if (!p0.bpack && p0.b && !p0.a_pre && !p0.b_pre && p0.b_rs == 1 && p0.a_cs == 1) {
            r.tiles_n = (job->N + 15) / 16;
            r.tn = 1;
            if (T > 1 && job->nprob < T)
                r.tn = KILN_MIN(r.tiles_n, (int64_t)(T + job->nprob - 1) / job->nprob);
            cpu_parallel_for(job->nprob * r.tn, T, 0, NULL, dot_task, &r);
            return 0;
        }
    }
    void *mine = c->ws;
    if (!mine || c->ws_size < per_thread) {
        if (per_thread > KILN_MAX_ALLOC || !(owned = malloc(per_thread)))
            return ref_fail(c, "out of memory for GEMM packing buffers");
        mine = owned;
    }
    r.tiles_m = (job->M + k->mr - 1) / k->mr;
    r.tiles_n = (job->N + k->nr - 1) / k->nr;
    r.tm = r.tn = 1;
    if (T > 1 && job->nprob < T)
        choose_split(r.tiles_m, r.tiles_n, k->mr, k->nr,
                     (T + job->nprob - 1) / job->nprob, &r.tm, &r.tn);
    int64_t ntasks = job->nprob * r.tm * r.tn;
    cpu_parallel_for(ntasks, T, per_thread, mine, gemm_task, &r);
    free(owned);
    return 0;
}
