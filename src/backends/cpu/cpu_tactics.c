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
    /* QLinearConv (and the qdq pass's quantized Gemm/MatMul as 1x1) */
    &cpu_t_qconv_amx, &cpu_t_qconv_vnni, &cpu_t_qconv_vnni_c4, &cpu_t_qconv_avx2_wino,
    &cpu_t_qconv_avx2_7bit,
    &cpu_t_qconv_avx2_w16, &cpu_t_qconv_avx2,
    &cpu_t_qconv_c,
    /* ConvInteger / MatMulInteger (onnxruntime's quantize_dynamic) */
    &cpu_t_convint_amx, &cpu_t_convint_vnni, &cpu_t_convint_avx2, &cpu_t_convint_c,
    &cpu_t_matmulint_amx, &cpu_t_matmulint_vnni, &cpu_t_matmulint_avx2, &cpu_t_matmulint_c,
    &cpu_t_convintf_amx, &cpu_t_convintf_vnni, &cpu_t_convintf_avx2, &cpu_t_convintf_c,
    &cpu_t_matmulintf_amx, &cpu_t_matmulintf_vnni, &cpu_t_matmulintf_avx2, &cpu_t_matmulintf_c,
    /* QFusedGemm (internal, from the qdq and qepi passes) */
    &cpu_t_qfgemm_amx, &cpu_t_qfgemm_vnni, &cpu_t_qfgemm_avx2, &cpu_t_qfgemm_c,
    &cpu_t_dynquant_avx2, &cpu_t_dynquant_c, &cpu_t_cast_i32_f32,
    /* QAdd (internal, from the qdq pass) */
    &cpu_t_qadd_avx512, &cpu_t_qadd_avx2, &cpu_t_qadd_c,
    /* per-tensor 8-bit QuantizeLinear / DequantizeLinear */
    &cpu_t_quant_avx512, &cpu_t_quant_avx2, &cpu_t_quant_c,
    &cpu_t_dequant_avx512, &cpu_t_dequant_avx2, &cpu_t_dequant_c,
    /* MaxPool on int8/uint8 (what the qdq pass leaves between convs) */
    &cpu_t_q8_maxpool,
    /* transformer layers (cpu_attn.c, cpu_norm.c, cpu_eltwise.c) */
    &cpu_t_attn_avx512, &cpu_t_attn_avx2, &cpu_t_attn_c,
    &cpu_t_layernorm_avx512, &cpu_t_layernorm_avx2, &cpu_t_layernorm_c,
    &cpu_t_qlayernorm_avx512, &cpu_t_qlayernorm_avx2, &cpu_t_qlayernorm_c,
    &cpu_t_rmsnorm_avx512, &cpu_t_rmsnorm_avx2, &cpu_t_rmsnorm_c,
    &cpu_t_softmax_avx512, &cpu_t_softmax_avx2, &cpu_t_softmax_c,
    &cpu_t_logsoftmax_avx512, &cpu_t_logsoftmax_avx2, &cpu_t_logsoftmax_c,
    &cpu_t_gelu_avx512, &cpu_t_gelu_avx2, &cpu_t_gelu_c,
    &cpu_t_fused_eltwise_avx512, &cpu_t_fused_eltwise_avx2, &cpu_t_fused_eltwise_c,
    &cpu_t_add_avx512, &cpu_t_add_avx2, &cpu_t_add_c,
    &cpu_t_sub_avx512, &cpu_t_sub_avx2, &cpu_t_sub_c,
    &cpu_t_mul_avx512, &cpu_t_mul_avx2, &cpu_t_mul_c,
    &cpu_t_div_avx512, &cpu_t_div_avx2, &cpu_t_div_c,
    &cpu_t_neg_avx512, &cpu_t_neg_avx2, &cpu_t_neg_c,
    &cpu_t_abs_avx512, &cpu_t_abs_avx2, &cpu_t_abs_c,
    &cpu_t_sqrt_avx512, &cpu_t_sqrt_avx2, &cpu_t_sqrt_c,
    &cpu_t_exp_avx512, &cpu_t_exp_avx2, &cpu_t_exp_c,
    &cpu_t_tanh_avx512, &cpu_t_tanh_avx2, &cpu_t_tanh_c,
    &cpu_t_sigmoid_avx512, &cpu_t_sigmoid_avx2, &cpu_t_sigmoid_c,
    &cpu_t_relu_avx512, &cpu_t_relu_avx2, &cpu_t_relu_c,
    &cpu_t_erf_avx512, &cpu_t_erf_avx2, &cpu_t_erf_c,
    &cpu_t_reciprocal_avx512, &cpu_t_reciprocal_avx2, &cpu_t_reciprocal_c,
    &cpu_t_transpose_c,
    /* channel-blocked layers (passes/nchwc.c); each ISA takes its block;
    ** convs of several taps first on tap-major weights (the builder's guess
    ** when it does not time) */
    &cpu_t_nchwc_conv_taps_avx512, &cpu_t_nchwc_conv_taps_avx2,
    &cpu_t_nchwc_conv_avx512, &cpu_t_nchwc_conv_avx2, &cpu_t_nchwc_dwconv_avx512,
    &cpu_t_nchwc_dwconv_avx2, &cpu_t_nchwc_pool_avx512, &cpu_t_nchwc_pool_avx2,
    &cpu_t_nchwc_reorder_in_c, &cpu_t_nchwc_reorder_out_c,
    /* Winograd for the 3x3 stride-1 ones, after the direct kernel (taken
    ** untimed); the builder keeps whichever is faster per layer */
    &cpu_t_nchwc_wino4_avx512, &cpu_t_nchwc_wino4_avx2, &cpu_t_nchwc_wino2_avx512,
    &cpu_t_nchwc_wino2_avx2, &cpu_t_nchwc_wino4_c, &cpu_t_nchwc_wino2_c,
    NULL,
};
