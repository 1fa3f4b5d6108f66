/* cpu_int8_amx.c: Intel AMX INT8 conv microkernel (cpu_int8.h): 32 output
** channels x 32 positions per pass in four 16x16 int32 tiles, per 64
** reduction indices two A tiles of packed weights (cpu_q8_pack_amx) and two
** B tiles of the packed activations (xp is VNNI-4, which is AMX's B layout)
** and four tdpbsud (signed weights x unsigned activations, int32 sums that
** wrap like the reference's). The requantizing epilogue is the AVX-512 one.
** Built with -mamx-tile -mamx-int8 -mavx512f -mavx512bw (cpu.cmake); the
** tactic also needs the OS and the process's permission for the tile state
** (cpu_backend.c), which the driver checks before calling it. */
#include "cpu_int8.h"

enum { AMX_KC = 64, AMX_TILE_BYTES = 16 * AMX_KC };

int64_t cpu_q8_amx_w_bytes(int64_t M, int64_t K) {
    return (M + CPU_Q8_AMX_MR - 1) / CPU_Q8_AMX_MR * CPU_Q8_AMX_MR *
           ((K + AMX_KC - 1) / AMX_KC * AMX_KC);
}

void cpu_q8_pack_amx(const int8_t *w, int64_t M, int64_t K, int8_t *dst) {
    int64_t nkc = (K + AMX_KC - 1) / AMX_KC;
    memset(dst, 0, (size_t)cpu_q8_amx_w_bytes(M, K));
    for (int64_t m = 0; m < M; m++)
        for (int64_t kc = 0; kc < nkc; kc++) {
            int64_t n = KILN_MIN(AMX_KC, K - kc * AMX_KC);
            memcpy(dst + ((m / 16) * nkc + kc) * AMX_TILE_BYTES + (m % 16) * AMX_KC,
                   w + m * K + kc * AMX_KC, (size_t)n);
        }
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && \
    defined(__AVX512BW__)
#include <immintrin.h>

/* The 64-byte tile configuration (palette 1): all 8 tiles 16 rows x 64 bytes. */
typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;
_Static_assert(sizeof(amx_cfg) == 64, "tile configuration is 64 bytes");

/* Tiles: 0..3 accumulators (rows 0-15 / 16-31 x positions 0-15 / 16-31 of
** the pass), 4, 5 weights (rows 0-15, 16-31), 6, 7 activations. */
static void tile_job(const cpu_q8_tile_job *j) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
    int64_t nkc = (j->K + AMX_KC - 1) / AMX_KC;
    const int64_t bstep = 16 * CPU_Q8_NB * 4; /* 16 rows kq of the block */
    _Alignas(64) int32_t acc[CPU_Q8_AMX_MR * CPU_Q8_NB];
    for (int64_t m = j->m0; m < j->m1; m += CPU_Q8_AMX_MR) {
        int mr = (int)KILN_MIN(CPU_Q8_AMX_MR, j->m1 - m);
        const int8_t *a0 = j->wp + (m / 16) * nkc * AMX_TILE_BYTES;
        const int8_t *a1 = a0 + nkc * AMX_TILE_BYTES;
        for (int ph = 0; ph < j->np; ph += 32) {
            const uint8_t *b = j->xp + ph * 4;
            _tile_zero(0);
            _tile_zero(1);
            if (mr > 16) {
                _tile_zero(2);
                _tile_zero(3);
                for (int64_t kc = 0; kc < nkc; kc++) {
                    _tile_loadd(4, a0 + kc * AMX_TILE_BYTES, AMX_KC);
                    _tile_loadd(6, b + kc * bstep, CPU_Q8_NB * 4);
                    _tile_loadd(7, b + kc * bstep + 64, CPU_Q8_NB * 4);
                    _tile_loadd(5, a1 + kc * AMX_TILE_BYTES, AMX_KC);
                    _tile_dpbsud(0, 4, 6);
                    _tile_dpbsud(1, 4, 7);
                    _tile_dpbsud(2, 5, 6);
                    _tile_dpbsud(3, 5, 7);
                }
                _tile_stored(2, acc + 16 * CPU_Q8_NB + ph, CPU_Q8_NB * 4);
                _tile_stored(3, acc + 16 * CPU_Q8_NB + ph + 16, CPU_Q8_NB * 4);
            } else {
                for (int64_t kc = 0; kc < nkc; kc++) {
                    _tile_loadd(4, a0 + kc * AMX_TILE_BYTES, AMX_KC);
                    _tile_loadd(6, b + kc * bstep, CPU_Q8_NB * 4);
                    _tile_loadd(7, b + kc * bstep + 64, CPU_Q8_NB * 4);
                    _tile_dpbsud(0, 4, 6);
                    _tile_dpbsud(1, 4, 7);
                }
            }
            _tile_stored(0, acc + ph, CPU_Q8_NB * 4);
            _tile_stored(1, acc + ph + 16, CPU_Q8_NB * 4);
        }
        if (j->acc) {
            for (int i = 0; i < mr; i++)
                memcpy(j->acc + (m - j->m0 + i) * CPU_Q8_NB, acc + i * CPU_Q8_NB,
                       (size_t)j->np * sizeof(int32_t));
            continue;
        }
        for (int i = 0; i < mr; i++) {
            cpu_q8_epi e = j->epi[m + i];
            if (e.colsum) e.colsum = j->colsum;
            cpu_q8_avx512vnni.epi(&e, acc + i * CPU_Q8_NB, j->np, j->y + (m + i) * j->ldy);
        }
    }
    _tile_release();
}

/* The other pieces, the 4-row interleave included, are the AVX-512 VNNI
** file's (every AMX CPU has it). */
static void kernel(const uint8_t *xp, const int8_t *w, int64_t ldw, int64_t K, int mr,
                   int32_t *acc) {
    cpu_q8_avx512vnni.kernel(xp, w, ldw, K, mr, acc);
}
static void epi(const cpu_q8_epi *e, const int32_t *acc, int64_t n, void *y) {
    cpu_q8_avx512vnni.epi(e, acc, n, y);
}
static void add(const cpu_q8_add *p, const void *a, const void *b, void *y, int64_t n) {
    cpu_q8_avx512vnni.add(p, a, b, y, n);
}
static void dot(const uint8_t *x, const int8_t *w, int64_t ldw, int64_t K, int64_t m0,
                int64_t m1, int32_t *out) {
    cpu_q8_avx512vnni.dot(x, w, ldw, K, m0, m1, out);
}
static void pack4(const uint8_t *const *t, uint32_t flip, int np, uint32_t *d) {
    cpu_q8_avx512vnni.pack4(t, flip, np, d);
}

const cpu_q8_isa cpu_q8_amx = {"amx", true, kernel, epi, add, dot, cpu_q8_quant_c,
    cpu_q8_dequant_c, NULL, NULL, NULL, NULL, pack4, tile_job};
#else
const cpu_q8_isa cpu_q8_amx = {"amx", false, cpu_q8_kernel_c, cpu_q8_epi_c, cpu_q8_add_c,
                               cpu_q8_dot_c, cpu_q8_quant_c, cpu_q8_dequant_c, NULL, NULL,
                               NULL, NULL};
#endif
