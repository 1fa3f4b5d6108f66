/* gelu_fast_check.c: proves the error bound written in
** src/backends/cuda/kernels/gemm_sm90_gelu.h (the SM90 GEMM epilogue's
** branch-free erf GELU) on the host, no GPU needed (registered with ctest).
** The header's arithmetic is plain C with explicit multiplies and FMAs, so
** the host evaluates the device's exact sequence of roundings; the two SFU
** instructions the device uses instead of a correctly rounded reciprocal
** and exp2 are covered by perturbation: every input is evaluated with t =
** 1/d rounded then moved -2, 0, +2 ulps (rcp.approx.f32: at most 1 ulp off)
** and e = 2^a rounded then moved -4, 0, +4 ulps (ex2.approx.f32: at most 2),
** e flushed to 0 where 2^a < 2^-126 (.ftz); the error is monotone in each,
** so the extremes bound it. The truth: x/2 erfc(-x/sqrt 2) in double.
** Inputs: every FP16 and every BF16 value, every 1021st FP32 in (-16, 16)
** (beyond, the output is x or 0 and checked with the specials).
** Checked: relative error <= 1.5e-5 where |GELU| >= 2^-126, absolute <=
** 2^-126 below; reports the worst in FP16 ulps of the true value (FP16
** subnormals included; must stay under 0.02) and in BF16 ulps where the
** output is a normal number (under 0.005). */
#include "../../src/backends/cuda/kernels/gemm_sm90_gelu.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define REL_BOUND 1.5e-5
#define F16_ULP_BOUND 0.02
#define BF16_ULP_BOUND 0.005

static double g_rel, g_f16, g_bf16, g_rel_x, g_f16_x;
static long g_n, g_fail;

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static float step_ulps(float v, int k) {
    for (; k > 0; k--) v = nextafterf(v, INFINITY);
    for (; k < 0; k++) v = nextafterf(v, 0.0f);
    return v;
}

/* The spacing of FP16 (11-bit significand, subnormals from 2^-24) and BF16
** (8-bit, FP32's exponent range) numbers at |v|. */
static double ulp16(double v) {
    int e = ilogb(fabs(v));
    return ldexp(1.0, e - 10 < -24 ? -24 : e - 10);
}
static double ulpbf16(double v) {
    int e = ilogb(fabs(v));
    return ldexp(1.0, e - 7 < -133 ? -133 : e - 7);
}

static void check(float x) {
    double want = 0.5 * (double)x * erfc(-(double)x * 0.70710678118654752440);
    float d = kc_gelu_den(x), a = kc_gelu_arg(x);
    float t0 = 1.0f / d;
    double e2 = exp2((double)a);
    float e0 = (float)e2;
    static const int ts[3] = {-2, 0, 2}, es[3] = {-4, 0, 4};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float t = step_ulps(t0, ts[i]);
            float e = j < 3 ? step_ulps(e0, es[j]) : 0.0f;
            if (j < 3 && e2 < 0x1p-126) continue; /* ftz: the device gives 0 */
            if (j == 3 && e2 >= 0x1p-125) continue;
            double got = kc_gelu_finish(x, t, e);
            double err = fabs(got - want);
            g_n++;
            bool bad;
            if (fabs(want) >= 0x1p-126) {
                double rel = err / fabs(want);
                if (rel > g_rel) g_rel = rel, g_rel_x = x;
                bad = !(rel <= REL_BOUND);
            } else {
                bad = !(err <= 0x1p-126);
            }
            if (want != 0.0) {
                double u16 = err / ulp16(want), ub = err / ulpbf16(want);
                if (u16 > g_f16) g_f16 = u16, g_f16_x = x;
                if (ub > g_bf16 && fabs(want) >= 0x1p-126) g_bf16 = ub;
            } else if (got != 0.0) {
                bad = true;
            }
            if (bad && g_fail++ < 10)
                fprintf(stderr, "FAIL x=%.9g (t %+d ulp, e %s): got %.9g want %.9g\n", x, ts[i],
                        j < 3 ? (es[j] < 0 ? "-4 ulp" : es[j] ? "+4 ulp" : "rounded") : "0",
                        got, want);
        }
}

/* Half-precision bit patterns to float (FP16: sign 1, exponent 5, 10). */
static float half_to_float(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static int expect(const char *what, float got, float want) {
    bool ok = isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want);
    if (!ok) fprintf(stderr, "FAIL %s: got %g want %g\n", what, got, want);
    return ok ? 0 : 1;
}

int main(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float x = half_to_float((uint16_t)h);
        if (isfinite(x)) check(x);
    }
    for (uint32_t b = 0; b < 65536; b++) {
        float x = from_bits(b << 16); /* BF16: FP32's top half */
        if (isfinite(x) && fabsf(x) < 64.0f) check(x);
    }
    const uint32_t top = 0x41800000u; /* 16.0f */
    for (uint32_t b = 0; b < top; b += 1021) {
        check(from_bits(b));
        check(from_bits(b | 0x80000000u));
    }
    /* Specials, with exact SFU results (what they give there). */
    int bad = 0;
#define DEV(x) kc_gelu_finish((x), 1.0f / kc_gelu_den(x), exp2f(kc_gelu_arg(x)))
    bad += expect("+inf", DEV(INFINITY), INFINITY);
    bad += expect("-inf", DEV(-INFINITY), NAN);
    bad += expect("nan", DEV(NAN), NAN);
    bad += expect("-0", DEV(-0.0f), -0.0f);
    bad += expect("+0", DEV(0.0f), 0.0f);
    bad += expect("1e30", DEV(1e30f), 1e30f);
    bad += expect("-1e30", DEV(-1e30f), -0.0f);
    bad += expect("100", DEV(100.0f), 100.0f);
    bad += expect("-100", DEV(-100.0f), -0.0f);
    g_fail += bad;
    printf("gelu_fast: %ld evaluations; max relative error %.3g (x=%.9g), %.4f FP16 ulp "
           "(x=%.9g), %.4f BF16 ulp\n",
           g_n, g_rel, g_rel_x, g_f16, g_f16_x, g_bf16);
    if (g_f16 > F16_ULP_BOUND || g_bf16 > BF16_ULP_BOUND) {
        fprintf(stderr, "FAIL: over the ulp bounds %g / %g\n", F16_ULP_BOUND, BF16_ULP_BOUND);
        g_fail++;
    }
    printf("%s (%ld failures)\n", g_fail ? "FAILED" : "passed", g_fail);
    return g_fail != 0;
}
