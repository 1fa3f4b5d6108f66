/* gemm_sm90_gelu.h: a cheaper exact (erf) GELU for the SM90 GEMM's fused
** epilogue, GELU(x) = x Phi(x), Phi the standard normal CDF. Why: with CUDA's
** erff the FFN-in GEMM's epilogue (50 M elements on BERT b128) costs more
** than its mainloop can hide; erff has a data-dependent branch (two
** polynomial paths, both run in a diverged warp) and 0.5 x (1 + erf) loses
** the tail at very negative x to cancellation.
**
** Form: u = |x|, Q(u) = 1 - Phi(u) = exp(-u^2/2) R(u), R smooth, fitted as
**   R(u) ~ t P(t),  t = 1 / (1 + 0.31 u),  P of degree 5
** (a weighted least-squares fit of the relative error of R on u in [0, 14]),
** then Phi(x) = Q(u) for x < 0 and 1 - Q(u) for x >= 0. Branch-free: one
** reciprocal and one exp2 (the SFU's rcp.approx and ex2.approx.ftz), 12
** FP32 operations and a select. Q is computed directly, never as a
** difference of numbers near 1, so tiny outputs at very negative x keep
** their relative accuracy.
**
** Error bound (tests/gpu/gelu_fast_check.c, a host test in ctest, proves it
** over every FP16 and BF16 input and every 1021st FP32 in (-16, 16), with
** the device's two SFU results perturbed past their documented worst case
** (PTX ISA: rcp.approx.f32 1 ulp, ex2.approx.f32 2 ulp; the test allows 2
** and 4)):
**   |gelu_fast(x) - GELU(x)| <= 1.5e-5 |GELU(x)|  where |GELU(x)| >= 2^-126
**   (absolute 2^-126 below, where ex2.approx.ftz flushes: x < -13.1);
**   measured worst: 1.1e-5 relative (x = -12.6: exp2's argument rounding;
**   4.7e-6 is the fit's own error), 0.012 FP16 ulp of the true value
**   (FP16 subnormal outputs included), 0.003 BF16 ulp (normal outputs).
** CUDA's erff form loses relative accuracy as x goes negative, where
** 1 + erf(x / sqrt 2) cancels (about 4e-5 at x = -3, 10% at x = -5, and 0
** once erff rounds to -1, below about x = -5.5); the reference, in double,
** does not.
** Special values: +inf -> +inf, -inf -> NaN (as the reference's
** 0.5 x (1 + erf): -inf * 0), NaN -> NaN, -0 -> -0.
**
** Plain C (a header of static inline functions) so the host test evaluates
** exactly the device's sequence: every product is an explicit multiply
** (__fmul_rn on the device: nvcc may not contract it into an FMA) and every
** FMA an explicit fmaf, so host and device round identically; only the two
** SFU results differ, and the test covers those by perturbation. */
#ifndef KILN_CUDA_GEMM_SM90_GELU_H
#define KILN_CUDA_GEMM_SM90_GELU_H

#ifdef __CUDACC__
#define KC_GELU_FN __host__ __device__ __forceinline__
#else
#include <math.h>
#define KC_GELU_FN static inline
#endif

#if defined(__CUDA_ARCH__)
#define KC_GELU_MUL(a, b) __fmul_rn((a), (b))
#define KC_GELU_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#else
#define KC_GELU_MUL(a, b) ((a) * (b))
#define KC_GELU_FMA(a, b, c) fmaf((a), (b), (c))
#endif

#define KC_GELU_P 0.31f
#define KC_GELU_C0 1.238607019e-01f
#define KC_GELU_C1 1.204412505e-01f
#define KC_GELU_C2 1.334299147e-01f
#define KC_GELU_C3 1.574446261e-02f
#define KC_GELU_C4 1.804505736e-01f
#define KC_GELU_C5 -7.392922044e-02f
/* -0.5 * log2(e): exp(-u^2/2) = 2^(u * (u * KC_GELU_K)) */
#define KC_GELU_K -0.7213475204444817f

/* The reciprocal's argument, 1 + 0.31 |x| (>= 1). */
KC_GELU_FN float kc_gelu_den(float x) { return KC_GELU_FMA(KC_GELU_P, fabsf(x), 1.0f); }

/* The exp2 argument, -u^2 / 2 * log2(e) (<= 0). */
KC_GELU_FN float kc_gelu_arg(float x) {
    float u = fabsf(x);
    return KC_GELU_MUL(u, KC_GELU_MUL(u, KC_GELU_K));
}

/* GELU(x) from t ~ 1 / kc_gelu_den(x) and e ~ 2^kc_gelu_arg(x). */
KC_GELU_FN float kc_gelu_finish(float x, float t, float e) {
    float p = KC_GELU_FMA(KC_GELU_C5, t, KC_GELU_C4);
    p = KC_GELU_FMA(p, t, KC_GELU_C3);
    p = KC_GELU_FMA(p, t, KC_GELU_C2);
    p = KC_GELU_FMA(p, t, KC_GELU_C1);
    p = KC_GELU_FMA(p, t, KC_GELU_C0);
    float q = KC_GELU_MUL(KC_GELU_MUL(e, t), p); /* Q(|x|) = 1 - Phi(|x|) */
    float phi = x < 0.0f ? q : 1.0f - q;
    return KC_GELU_MUL(x, phi);
}

#ifdef __CUDACC__
/* The device's GELU: the SFU reciprocal and exp2 (flushing results below
** 2^-126 to 0). */
__device__ __forceinline__ float kc_gelu_fast(float x) {
    float t, e;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(t) : "f"(kc_gelu_den(x)));
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(kc_gelu_arg(x)));
    return kc_gelu_finish(x, t, e);
}
#endif

#endif
