/* cpu_vec_math.h: vector activation math (exp, sigmoid, tanh, erf-GELU,
** tanh-GELU) written once over a small set of vector macros, included by
** the AVX2 and AVX-512 files. Accuracy is a few float ulps (the reference
** uses libm's expf/tanhf/erff), the same scale as the summation-order
** differences of a GEMM. The includer defines:
**   VM(name)       function name prefix for this vector width
**   VT             vector type
**   V1(x)          broadcast a float
**   VADD VSUB VMUL VDIV VMIN VMAX (ab) VFMA(a,b,c)=a*b+c
**   VABS(x)        |x|
**   VSEL_LT(a,b,x,y)  lanewise a < b ? x : y
**   VROUND(x)      round to nearest integer (as float)
**   VPOW2I(n)      2^n for integral float n in [-126, 127]
** min/max keep NaN where the comments say so: VMIN(c, x) and VMAX(c, x)
** return x when x is NaN (x86 min/max return their second operand). */

/* e^x: Cody-Waite reduction by ln 2 (split in two parts) and a degree-6
** polynomial on |r| <= ln2/2. x above 88 gives +inf, below -87.3 zero
** (the true result is below the smallest normal); NaN stays NaN. */
static inline VT VM(exp)(VT x) {
    VT big = V1(88.0f);
    VT xc = VMAX(V1(-87.3f), VMIN(big, x));
    VT n = VROUND(VMUL(xc, V1(1.44269504088896341f)));
    VT r = VFMA(n, V1(-0.693359375f), xc);
    r = VFMA(n, V1(2.12194440e-4f), r);
    VT p = V1(1.9875691500e-4f);
    p = VFMA(p, r, V1(1.3981999507e-3f));
    p = VFMA(p, r, V1(8.3334519073e-3f));
    p = VFMA(p, r, V1(4.1665795894e-2f));
    p = VFMA(p, r, V1(1.6666665459e-1f));
    p = VFMA(p, r, V1(5.0000001201e-1f));
    p = VFMA(p, VMUL(r, r), VADD(r, V1(1.0f)));
    VT y = VMUL(p, VPOW2I(n));
    y = VSEL_LT(x, V1(-87.3f), V1(0.0f), y);
    return VSEL_LT(big, x, V1(INFINITY), y);
}

/* The reference's two-branch sigmoid: 1/(1+e^-v) for v >= 0, e^v/(1+e^v)
** below, both from e = e^-|v| in (0, 1]. */
static inline VT VM(sigmoid)(VT v) {
    VT e = VM(exp)(VSUB(V1(0.0f), VABS(v)));
    VT d = VADD(V1(1.0f), e);
    return VSEL_LT(v, V1(0.0f), VDIV(e, d), VDIV(V1(1.0f), d));
}

/* tanh: odd Taylor polynomial below |x| = 0.3 (error < 1e-9 relative),
** else 1 - 2/(e^{2|x|} + 1) with the sign restored; |x| >= 9 is +-1. */
static inline VT VM(tanh)(VT x) {
    VT ax = VABS(x);
    VT x2 = VMUL(x, x);
    VT p = V1(-1382.0f / 155925.0f);
    p = VFMA(p, x2, V1(62.0f / 2835.0f));
    p = VFMA(p, x2, V1(-17.0f / 315.0f));
    p = VFMA(p, x2, V1(2.0f / 15.0f));
    p = VFMA(p, x2, V1(-1.0f / 3.0f));
    VT small = VFMA(VMUL(p, x2), x, x);
    VT e = VM(exp)(VMUL(V1(2.0f), VMIN(V1(9.0f), ax)));
    VT t = VSUB(V1(1.0f), VDIV(V1(2.0f), VADD(e, V1(1.0f))));
    VT big = VSEL_LT(x, V1(0.0f), VSUB(V1(0.0f), t), t);
    return VSEL_LT(ax, V1(0.3f), small, big);
}

/* 0.5 v (1 + erf(v / sqrt 2)). 1 + erf(z) = erfc(-z) comes from the
** Chebyshev-fitted erfc of Numerical Recipes (relative error ~1.2e-7):
** erfc(|z|) for z < 0, 2 - erfc(|z|) otherwise, so large negative v keep
** their relative accuracy. */
static inline VT VM(gelu)(VT v) {
    VT z = VMUL(v, V1(0.7071067811865476f));
    VT az = VABS(z);
    VT t = VDIV(V1(1.0f), VFMA(V1(0.5f), az, V1(1.0f)));
    VT p = V1(0.17087277f);
    p = VFMA(p, t, V1(-0.82215223f));
    p = VFMA(p, t, V1(1.48851587f));
    p = VFMA(p, t, V1(-1.13520398f));
    p = VFMA(p, t, V1(0.27886807f));
    p = VFMA(p, t, V1(-0.18628806f));
    p = VFMA(p, t, V1(0.09678418f));
    p = VFMA(p, t, V1(0.37409196f));
    p = VFMA(p, t, V1(1.00002368f));
    p = VFMA(p, t, V1(-1.26551223f));
    VT erfc = VMUL(t, VM(exp)(VSUB(p, VMUL(az, az))));
    VT one_p_erf = VSEL_LT(z, V1(0.0f), erfc, VSUB(V1(2.0f), erfc));
    return VMUL(VMUL(V1(0.5f), v), one_p_erf);
}

/* 0.5 v (1 + tanh(u)), u = sqrt(2/pi) (v + 0.044715 v^3), using
** 1 + tanh(u) = 2 / (1 + e^{-2u}): no cancellation for negative u. */
static inline VT VM(gelu_tanh)(VT v) {
    VT v3 = VMUL(VMUL(v, v), v);
    VT u = VMUL(V1(0.7978845608028654f), VFMA(V1(0.044715f), v3, v));
    VT d = VADD(V1(1.0f), VM(exp)(VMUL(V1(-2.0f), u)));
    return VMUL(VMUL(V1(0.5f), v), VDIV(V1(2.0f), d));
}
