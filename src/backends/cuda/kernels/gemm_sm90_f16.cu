// gemm_sm90_f16.cu: the F16 instantiations of the SM90 fused-epilogue GEMM
// (gemm_sm90.cuh), one per configuration; gemm_sm90.cu dispatches to them.
// A file per dtype so the two compile in parallel. Empty without CUTLASS or
// without sm_90a in the gencode list (cuda.cmake).
#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
#include "gemm_sm90.cuh"

cudaError_t kc_gemm_sm90_plan_f16(int cfg, const kc_sm90_gemm *g, int sm_count,
                                 kc_sm90_plan **out) {
    return kiln_sm90::dispatch<cutlass::half_t>(cfg, g, sm_count, out);
}
#endif
