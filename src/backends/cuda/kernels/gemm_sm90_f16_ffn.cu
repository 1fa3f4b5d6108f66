// gemm_sm90_f16_ffn.cu: the F16 instantiations of the SM90 fused-epilogue
// GEMM's FFN-in candidates (gemm_sm90_cfg.h: erf GELU without C, BERT's
// bias + GELU layer; the builder times them against cuBLASLt and the
// general configurations). Their own file so they compile in parallel with
// gemm_sm90_f16.cu and gemm_sm90_bf16.cu. Empty without CUTLASS or without
// sm_90a in the gencode list (cuda.cmake).
#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
#include "gemm_sm90.cuh"

cudaError_t kc_gemm_sm90_plan_f16_ffn(int cfg, const kc_sm90_gemm *g, int sm_count,
                                     kc_sm90_plan **out) {
    return kiln_sm90::dispatch_ffn<cutlass::half_t>(cfg, g, sm_count, out);
}
#endif
