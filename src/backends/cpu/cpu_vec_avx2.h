/* cpu_vec_avx2.h: 8-lane float epilogue (bias/C, residual, activation) for
** the AVX2 files. Include only from files compiled with -mavx2 -mfma.
** Piecewise-linear activations match the scalar formulas bit for bit; the
** transcendental ones use cpu_vec_math.h (a few ulps from libm). */
#ifndef KILN_CPU_VEC_AVX2_H
#define KILN_CPU_VEC_AVX2_H

#include "cpu_gemm.h"

#include <immintrin.h>
#include <math.h>

#define VM(name) v8_##name
#define VT __m256
#define V1(x) _mm256_set1_ps(x)
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMIN _mm256_min_ps
#define VMAX _mm256_max_ps
#define VFMA _mm256_fmadd_ps
#define VABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (x))
#define VSEL_LT(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))
#define VROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                              \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                     \
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#include "cpu_vec_math.h"
#undef VM
#undef VT
#undef V1
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMIN
#undef VMAX
#undef VFMA
#undef VABS
#undef VSEL_LT
#undef VROUND
#undef VPOW2I

/* The transcendental activations, out of line: big, and their cost hides
** a call. */
static __attribute__((noinline, unused)) __m256 v8_act_math(__m256 v,
                                                            const fused_act *a) {
    switch (a->kind) {
    case FUSED_ACT_SIGMOID: return v8_sigmoid(v);
    case FUSED_ACT_SILU: return _mm256_mul_ps(v, v8_sigmoid(v));
    case FUSED_ACT_TANH: return v8_tanh(v);
    case FUSED_ACT_GELU: return v8_gelu(v);
    case FUSED_ACT_GELU_TANH: return v8_gelu_tanh(v);
    default: {
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int i = 0; i < 8; i++) t[i] = fused_act_f32(a, t[i]);
        return _mm256_loadu_ps(t);
    }
    }
}

/* Inlined into the microkernels' stores: a call would make the caller
** spill every accumulator (no vector register survives a call). */
static inline __attribute__((always_inline)) __m256 v8_act(__m256 v,
                                                           const fused_act *a) {
    const __m256 zero = _mm256_setzero_ps();
    switch (a->kind) {
    case FUSED_ACT_NONE: return v;
    /* max/min operand order keeps the scalar formulas' NaN behaviour:
    ** maxps returns its second operand when either is NaN. */
    case FUSED_ACT_RELU: return _mm256_max_ps(zero, v);
    case FUSED_ACT_CLIP:
        v = _mm256_max_ps(_mm256_set1_ps(a->alpha), v);
        return _mm256_min_ps(_mm256_set1_ps(a->beta), v);
    case FUSED_ACT_LEAKY_RELU:
        return _mm256_blendv_ps(v, _mm256_mul_ps(_mm256_set1_ps(a->alpha), v),
                                _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case FUSED_ACT_HARD_SWISH: {
        __m256 t = _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps((float)(1.0 / 6.0))),
                                 _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(zero, t));
        return _mm256_mul_ps(v, t);
    }
    case FUSED_ACT_HARD_SIGMOID: {
        __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(a->alpha), v),
                                 _mm256_set1_ps(a->beta));
        return _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(zero, t));
    }
    default: return v8_act_math(v, a);
    }
}

/* Epilogue on 8 consecutive elements Y(i, j..j+7). */
static inline __attribute__((always_inline)) __m256
v8_epi(__m256 v, const cpu_epi *e, int64_t i, int64_t j) {
    if (e->alpha != 1.0f) v = _mm256_mul_ps(v, _mm256_set1_ps(e->alpha));
    if (e->c) {
        const float *cp = e->c + i * e->c_rs + j * e->c_cs;
        __m256 cv;
        if (e->c_cs == 1) cv = _mm256_loadu_ps(cp);
        else if (e->c_cs == 0) cv = _mm256_set1_ps(*cp);
        else {
            int64_t s = e->c_cs;
            cv = _mm256_setr_ps(cp[0], cp[s], cp[2 * s], cp[3 * s], cp[4 * s],
                                cp[5 * s], cp[6 * s], cp[7 * s]);
        }
        v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(e->beta), cv));
    }
    if (e->z) v = _mm256_add_ps(v, _mm256_loadu_ps(e->z + i * e->z_ld + j));
    return v8_act(v, &e->act);
}

#endif
