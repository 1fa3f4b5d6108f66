// gemm_sm90.cu: the C seam of the SM90 fused-epilogue GEMM (gemm_kernels.h):
// checks the problem against what the kernels take, dispatches by dtype and
// configuration to gemm_sm90_f16.cu / gemm_sm90_bf16.cu (the general
// configurations) or gemm_sm90_f16_ffn.cu (the FFN-in candidates,
// gemm_sm90_cfg.h) for a plan, launches and frees plans. A form a
// configuration is not compiled for (gemm_sm90_cfg.h) answers
// cudaErrorNotSupported, with or without a plan to make.
// Compiled in every CUDA build; without CUTLASS (or without sm_90a in the
// gencode list) every entry reports cudaErrorNotSupported and
// kc_gemm_sm90_built() is 0, so the tactic (cuda_gemm_sm90.c) is simply
// never offered.
#define KC_SM90_INTERNAL
#include "gemm_kernels.h"
#include "gemm_sm90_cfg.h"

#include <stdint.h>

#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)
cudaError_t kc_gemm_sm90_plan_f16(int cfg, const kc_sm90_gemm *g, int sm_count,
                                  kc_sm90_plan **out);
cudaError_t kc_gemm_sm90_plan_bf16(int cfg, const kc_sm90_gemm *g, int sm_count,
                                   kc_sm90_plan **out);
cudaError_t kc_gemm_sm90_plan_f16_ffn(int cfg, const kc_sm90_gemm *g, int sm_count,
                                      kc_sm90_plan **out);

static bool sm90_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }

extern "C" int kc_gemm_sm90_built(void) { return 1; }

extern "C" cudaError_t kc_gemm_sm90_plan(int cfg, const kc_sm90_gemm *g, int sm_count,
                                         kc_sm90_plan **out) {
    if (out) *out = NULL;
    if (cfg < 0 || cfg >= KC_SM90_N_ALL) return cudaErrorInvalidValue;
    if (g->dtype != KC_F16 && g->dtype != KC_BF16) return cudaErrorNotSupported;
    if (g->m < 1 || g->n < 8 || g->k < 8 || g->n % 8 || g->k % 8 || g->m > INT32_MAX ||
        g->n > INT32_MAX || g->k > INT32_MAX)
        return cudaErrorNotSupported;
    if (out && (!g->a || !g->b || !g->d || !sm90_aligned(g->a) || !sm90_aligned(g->b) ||
                !sm90_aligned(g->d) || !sm90_aligned(g->bias) || !sm90_aligned(g->c)))
        return cudaErrorNotSupported;
    if (cfg >= KC_SM90_FIRST_FFN)
        return g->dtype == KC_F16 ? kc_gemm_sm90_plan_f16_ffn(cfg, g, sm_count, out)
                                  : cudaErrorNotSupported;
    return g->dtype == KC_F16 ? kc_gemm_sm90_plan_f16(cfg, g, sm_count, out)
                              : kc_gemm_sm90_plan_bf16(cfg, g, sm_count, out);
}

extern "C" cudaError_t kc_gemm_sm90_launch(kc_sm90_plan *p, cudaStream_t s) {
    return p ? p->launch(p, s) : cudaErrorInvalidValue;
}

extern "C" void kc_gemm_sm90_plan_free(kc_sm90_plan *p) {
    if (p) p->destroy(p);
}
#else
extern "C" int kc_gemm_sm90_built(void) { return 0; }

extern "C" cudaError_t kc_gemm_sm90_plan(int cfg, const kc_sm90_gemm *g, int sm_count,
                                         kc_sm90_plan **out) {
    if (out) *out = NULL;
    return cudaErrorNotSupported;
}

extern "C" cudaError_t kc_gemm_sm90_launch(kc_sm90_plan *p, cudaStream_t s) {
    return cudaErrorNotSupported;
}

extern "C" void kc_gemm_sm90_plan_free(kc_sm90_plan *p) {}
#endif
