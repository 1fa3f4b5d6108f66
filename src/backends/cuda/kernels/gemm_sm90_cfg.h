/* gemm_sm90_cfg.h: the SM90 GEMM's configurations beyond the three general
** ones of gemm_kernels.h (KC_SM90_128x256_COOP_C2x1 ...), and which
** (activation, C) forms each configuration is compiled for. Why a second
** list: the activation is a compile-time parameter of the kernels (no
** switch in the epilogue), so each configuration holds a few
** instantiations, not one for every activation, and the FFN-in candidates
** (BERT's bias + erf GELU layer, M 16384 K 768 N 3072) are compiled for that
** one form only, to keep the build time down.
**
** General configurations (gemm_kernels.h), FP16 and BF16:
**   - no activation, Relu, with or without C (C: a source read through
**     TMA, beta * C; the FFN-out residual goes there);
**   - erf GELU without C (gemm_sm90_gelu.h's branch-free form; the C
**     buffer, its shared memory and the store's wait on it compiled out);
**   - KC_SM90_128x128_PP_C1x1 also holds the run-time (kc_act switch)
**     instantiation: every other activation, and GELU with C.
** FFN-in candidates (below): FP16, erf GELU without C only. (No
** candidate with CUDA's erff: that form misses the bound of
** gemm_sm90_gelu.h at very negative x, so it could not be kept.)
** Anything else: kc_gemm_sm90_plan answers cudaErrorNotSupported (the
** tactic declines it at build time, asking with a NULL plan). */
#ifndef KILN_CUDA_GEMM_SM90_CFG_H
#define KILN_CUDA_GEMM_SM90_CFG_H

#include "gemm_kernels.h"

enum {
    /* CTA 128x128x64 ping-pong, epilogue tile 64x64 (default 64x32: half the
    ** store barriers and TMA stores per tile) */
    KC_SM90_128x128_PP_C1x1_E64 = KC_SM90_N_CFG,
    /* CTA 64x256x64 ping-pong: the same 128 accumulators per thread as
    ** 128x128, A tile reused over 256 columns */
    KC_SM90_64x256_PP_C1x1,
    /* CTA 128x128x64 ping-pong, cluster 1x2 (A tile multicast to the pair) */
    KC_SM90_128x128_PP_C1x2,
    /* CTA 256x128x64 cooperative, cluster 2x1 (B tile multicast) */
    KC_SM90_256x128_COOP_C2x1,
    /* CTA 256x128x64 cooperative, cluster 1x2, epilogue tile 128x64 */
    KC_SM90_256x128_COOP_C1x2_E64,
    KC_SM90_N_ALL
};

/* The first FFN-in candidate: configurations from here on take FP16 erf
** GELU without C only. */
#define KC_SM90_FIRST_FFN KC_SM90_N_CFG

#endif
