// gemm_sm90.cu: the C seam of the SM90 fused-epilogue GEMM (gemm_kernels.h):
// checks the problem against what the kernels take and dispatches by dtype
// to gemm_sm90_f16.cu / gemm_sm90_bf16.cu. Compiled in every CUDA build;
// without CUTLASS (or without sm_90a in the gencode list) every entry
// reports cudaErrorNotSupported and kc_gemm_sm90_built() is 0, so the
// tactic (cuda_gemm_sm90.c) is simply never offered.
#include "gemm_kernels.h"

#include <stdint.h>

#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
cudaError_t kc_gemm_sm90_f16(int cfg, const kc_sm90_gemm *g, int sm_count, void *ws,
                             size_t ws_size, cudaStream_t s, size_t *ws_query);
cudaError_t kc_gemm_sm90_bf16(int cfg, const kc_sm90_gemm *g, int sm_count, void *ws,
                              size_t ws_size, cudaStream_t s, size_t *ws_query);

static bool sm90_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static cudaError_t sm90_go(int cfg, const kc_sm90_gemm *g, int sm_count, void *ws,
                           size_t ws_size, cudaStream_t s, size_t *ws_query) {
    if (cfg < 0 || cfg >= KC_SM90_N_CFG) return cudaErrorInvalidValue;
    if (g->dtype != KC_F16 && g->dtype != KC_BF16) return cudaErrorNotSupported;
    if (g->m < 1 || g->n < 8 || g->k < 8 || g->n % 8 || g->k % 8 || g->m > INT32_MAX ||
        g->n > INT32_MAX || g->k > INT32_MAX)
        return cudaErrorNotSupported;
    if (!ws_query && (!sm90_aligned(g->a) || !sm90_aligned(g->b) || !sm90_aligned(g->d) ||
                      !sm90_aligned(g->bias) || !sm90_aligned(g->c)))
        return cudaErrorNotSupported;
    return g->dtype == KC_F16 ? kc_gemm_sm90_f16(cfg, g, sm_count, ws, ws_size, s, ws_query)
                              : kc_gemm_sm90_bf16(cfg, g, sm_count, ws, ws_size, s, ws_query);
}

extern "C" int kc_gemm_sm90_built(void) { return 1; }

extern "C" cudaError_t kc_gemm_sm90_workspace(int cfg, const kc_sm90_gemm *g, int sm_count,
                                              size_t *bytes) {
    *bytes = 0;
    return sm90_go(cfg, g, sm_count, NULL, 0, NULL, bytes);
}

extern "C" cudaError_t kc_gemm_sm90(int cfg, const kc_sm90_gemm *g, int sm_count, void *ws,
                                    size_t ws_size, cudaStream_t s) {
    return sm90_go(cfg, g, sm_count, ws, ws_size, s, NULL);
}
#else
extern "C" int kc_gemm_sm90_built(void) { return 0; }

extern "C" cudaError_t kc_gemm_sm90_workspace(int cfg, const kc_sm90_gemm *g, int sm_count,
                                              size_t *bytes) {
    *bytes = 0;
    return cudaErrorNotSupported;
}

extern "C" cudaError_t kc_gemm_sm90(int cfg, const kc_sm90_gemm *g, int sm_count, void *ws,
                                    size_t ws_size, cudaStream_t s) {
    return cudaErrorNotSupported;
}
#endif
