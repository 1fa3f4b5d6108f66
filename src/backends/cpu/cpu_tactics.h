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
extern const kiln_tactic cpu_t_qconv_amx, cpu_t_qconv_vnni, cpu_t_qconv_vnni_c4,
    cpu_t_qconv_avx2_wino, cpu_t_qconv_avx2_7bit, cpu_t_qconv_avx2_w16,
    cpu_t_qconv_avx2, cpu_t_qconv_c;
extern const kiln_tactic cpu_t_qadd_avx512, cpu_t_qadd_avx2, cpu_t_qadd_c, cpu_t_q8_maxpool;
extern const kiln_tactic cpu_t_quant_avx512, cpu_t_quant_avx2, cpu_t_quant_c;
extern const kiln_tactic cpu_t_dequant_avx512, cpu_t_dequant_avx2, cpu_t_dequant_c;
/* cpu_qint.c */
extern const kiln_tactic cpu_t_convint_amx, cpu_t_convint_vnni, cpu_t_convint_avx2,
    cpu_t_convint_c;
extern const kiln_tactic cpu_t_matmulint_amx, cpu_t_matmulint_vnni, cpu_t_matmulint_avx2,
    cpu_t_matmulint_c;
extern const kiln_tactic cpu_t_convintf_amx, cpu_t_convintf_vnni, cpu_t_convintf_avx2,
    cpu_t_convintf_c;
extern const kiln_tactic cpu_t_matmulintf_amx, cpu_t_matmulintf_vnni, cpu_t_matmulintf_avx2,
    cpu_t_matmulintf_c;
extern const kiln_tactic cpu_t_qfgemm_amx, cpu_t_qfgemm_vnni, cpu_t_qfgemm_avx2,
    cpu_t_qfgemm_c;
extern const kiln_tactic cpu_t_dynquant_avx2, cpu_t_dynquant_c, cpu_t_cast_i32_f32;

/* cpu_attn.c, cpu_norm.c, cpu_eltwise.c (transformer layers) */
extern const kiln_tactic cpu_t_attn_avx512, cpu_t_attn_avx2, cpu_t_attn_c;
extern const kiln_tactic cpu_t_layernorm_avx512, cpu_t_layernorm_avx2, cpu_t_layernorm_c;
extern const kiln_tactic cpu_t_qlayernorm_avx512, cpu_t_qlayernorm_avx2, cpu_t_qlayernorm_c;
extern const kiln_tactic cpu_t_rmsnorm_avx512, cpu_t_rmsnorm_avx2, cpu_t_rmsnorm_c;
extern const kiln_tactic cpu_t_softmax_avx512, cpu_t_softmax_avx2, cpu_t_softmax_c;
extern const kiln_tactic cpu_t_logsoftmax_avx512, cpu_t_logsoftmax_avx2,
    cpu_t_logsoftmax_c;
extern const kiln_tactic cpu_t_gelu_avx512, cpu_t_gelu_avx2, cpu_t_gelu_c;
extern const kiln_tactic cpu_t_fused_eltwise_avx512, cpu_t_fused_eltwise_avx2,
    cpu_t_fused_eltwise_c;

/* cpu_eltwise.c: single elementwise ops */
extern const kiln_tactic cpu_t_add_avx512, cpu_t_add_avx2, cpu_t_add_c;
extern const kiln_tactic cpu_t_sub_avx512, cpu_t_sub_avx2, cpu_t_sub_c;
extern const kiln_tactic cpu_t_mul_avx512, cpu_t_mul_avx2, cpu_t_mul_c;
extern const kiln_tactic cpu_t_div_avx512, cpu_t_div_avx2, cpu_t_div_c;
extern const kiln_tactic cpu_t_neg_avx512, cpu_t_neg_avx2, cpu_t_neg_c;
extern const kiln_tactic cpu_t_abs_avx512, cpu_t_abs_avx2, cpu_t_abs_c;
extern const kiln_tactic cpu_t_sqrt_avx512, cpu_t_sqrt_avx2, cpu_t_sqrt_c;
extern const kiln_tactic cpu_t_exp_avx512, cpu_t_exp_avx2, cpu_t_exp_c;
extern const kiln_tactic cpu_t_tanh_avx512, cpu_t_tanh_avx2, cpu_t_tanh_c;
extern const kiln_tactic cpu_t_sigmoid_avx512, cpu_t_sigmoid_avx2, cpu_t_sigmoid_c;
extern const kiln_tactic cpu_t_relu_avx512, cpu_t_relu_avx2, cpu_t_relu_c;
extern const kiln_tactic cpu_t_erf_avx512, cpu_t_erf_avx2, cpu_t_erf_c;
extern const kiln_tactic cpu_t_reciprocal_avx512, cpu_t_reciprocal_avx2, cpu_t_reciprocal_c;

/* cpu_transpose.c */
extern const kiln_tactic cpu_t_transpose_c;
/* cpu_nchwc.c */
extern const kiln_tactic cpu_t_nchwc_conv_avx512, cpu_t_nchwc_conv_avx2,
    cpu_t_nchwc_dwconv_avx512, cpu_t_nchwc_dwconv_avx2, cpu_t_nchwc_pool_avx512,
    cpu_t_nchwc_pool_avx2, cpu_t_nchwc_reorder_in_c, cpu_t_nchwc_reorder_out_c,
    cpu_t_nchwc_conv_taps_avx512, cpu_t_nchwc_conv_taps_avx2;
/* cpu_wino.c: Winograd F(4x4,3x3) and F(2x2,3x3) on the blocked layout */
extern const kiln_tactic cpu_t_nchwc_wino4_avx512, cpu_t_nchwc_wino4_avx2, cpu_t_nchwc_wino4_c,
    cpu_t_nchwc_wino2_avx512, cpu_t_nchwc_wino2_avx2, cpu_t_nchwc_wino2_c;

#endif
