/* cpu_tactics.h: the optimized CPU tactics (NULL-terminated table) and the
** individual tactics, for tests and benchmarks. */
#ifndef KILN_CPU_TACTICS_H
#define KILN_CPU_TACTICS_H

#include "../backend.h"

extern const kiln_tactic *const cpu_tactic_table[];

/* cpu_matmul.c */
extern const kiln_tactic cpu_t_matmul_avx512, cpu_t_matmul_avx2, cpu_t_matmul_c;
extern const kiln_tactic cpu_t_gemm_avx512, cpu_t_gemm_avx2, cpu_t_gemm_c;
extern const kiln_tactic cpu_t_fgemm_avx512, cpu_t_fgemm_avx2, cpu_t_fgemm_c;
/* cpu_conv.c */
extern const kiln_tactic cpu_t_conv_gemm_avx512, cpu_t_conv_gemm_avx2,
    cpu_t_conv_gemm_c;
extern const kiln_tactic cpu_t_fconv_gemm_avx512, cpu_t_fconv_gemm_avx2,
    cpu_t_fconv_gemm_c;
extern const kiln_tactic cpu_t_conv_dw_avx2, cpu_t_conv_dw_c;
extern const kiln_tactic cpu_t_fconv_dw_avx2, cpu_t_fconv_dw_c;
/* cpu_nchwc.c */
extern const kiln_tactic cpu_t_nchwc_conv_avx512, cpu_t_nchwc_conv_avx2,
    cpu_t_nchwc_dwconv_avx512, cpu_t_nchwc_dwconv_avx2, cpu_t_nchwc_pool_avx512,
    cpu_t_nchwc_pool_avx2, cpu_t_nchwc_reorder_in_c, cpu_t_nchwc_reorder_out_c;

#endif
