// gemm_sm90_f16.cu: the F16 instantiations of the SM90 fused-epilogue GEMM
// (gemm_sm90.cuh) for the general configurations (gemm_kernels.h,
// gemm_sm90_cfg.h says which activations each holds); gemm_sm90.cu
// dispatches to them. A file per dtype (and gemm_sm90_f16_ffn.cu for the
// FFN-in candidates) so they compile in parallel. Empty without CUTLASS or
// without sm_90a in the gencode list (cuda.cmake).
#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
#include "gemm_sm90.cuh"

cudaError_t kc_gemm_sm90_plan_f16(int cfg, const kc_sm90_gemm *g, int sm_count,
                                 kc_sm90_plan **out) {
    return kiln_sm90::dispatch_general<cutlass::half_t>(cfg, g, sm_count, out);
}
#endif
