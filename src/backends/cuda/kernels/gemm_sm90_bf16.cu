// gemm_sm90_bf16.cu: the BF16 instantiations of the SM90 fused-epilogue GEMM
// (gemm_sm90.cuh) for the general configurations (gemm_kernels.h,
// gemm_sm90_cfg.h says which activations each holds; the FFN-in candidates
// are F16 only); gemm_sm90.cu dispatches to them. A file per dtype so they
// compile in parallel. Empty without CUTLASS or without sm_90a in the
// gencode list (cuda.cmake).
#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
#include "gemm_sm90.cuh"

cudaError_t kc_gemm_sm90_plan_bf16(int cfg, const kc_sm90_gemm *g, int sm_count,
                                  kc_sm90_plan **out) {
    return kiln_sm90::dispatch_general<cutlass::bfloat16_t>(cfg, g, sm_count, out);
}
#endif
