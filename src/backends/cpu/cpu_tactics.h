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
/* cpu_int8.c */
extern const kiln_tactic cpu_t_qconv_vnni, cpu_t_qconv_avx2_7bit, cpu_t_qconv_avx2,
    cpu_t_qconv_c;
extern const kiln_tactic cpu_t_qadd_avx512, cpu_t_qadd_avx2, cpu_t_qadd_c, cpu_t_q8_maxpool;
extern const kiln_tactic cpu_t_quant_avx512, cpu_t_quant_avx2, cpu_t_quant_c;
extern const kiln_tactic cpu_t_dequant_avx512, cpu_t_dequant_avx2, cpu_t_dequant_c;

#endif
