/* cpu_tactics.c: table of the optimized CPU tactics, best guess first for
** each op (the builder times them all; with timing off it takes the first
** one the host supports). Tactics whose ISA file was built without its
** flags report unsupported, so the table is the same in every build. */
#include "cpu_tactics.h"

const kiln_tactic *const cpu_tactic_table[] = {
    /* MatMul / Gemm / FusedGemm */
    &cpu_t_matmul_avx512, &cpu_t_matmul_avx2, &cpu_t_matmul_c,
    &cpu_t_gemm_avx512, &cpu_t_gemm_avx2, &cpu_t_gemm_c,
    &cpu_t_fgemm_avx512, &cpu_t_fgemm_avx2, &cpu_t_fgemm_c,
    /* Conv / FusedConv: depthwise direct first (it only accepts depthwise) */
    &cpu_t_conv_dw_avx2, &cpu_t_conv_gemm_avx512, &cpu_t_conv_gemm_avx2,
    &cpu_t_conv_dw_c, &cpu_t_conv_gemm_c,
    &cpu_t_fconv_dw_avx2, &cpu_t_fconv_gemm_avx512, &cpu_t_fconv_gemm_avx2,
    &cpu_t_fconv_dw_c, &cpu_t_fconv_gemm_c,
    /* channel-blocked layers (passes/nchwc.c); each ISA takes its block */
    &cpu_t_nchwc_conv_avx512, &cpu_t_nchwc_conv_avx2, &cpu_t_nchwc_dwconv_avx512,
    &cpu_t_nchwc_dwconv_avx2, &cpu_t_nchwc_pool_avx512, &cpu_t_nchwc_pool_avx2,
    &cpu_t_nchwc_reorder_in_c, &cpu_t_nchwc_reorder_out_c,
    NULL,
};
