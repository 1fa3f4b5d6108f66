/* cpu_nchwc_avx2.c: the NCHWc microkernels for AVX2+FMA, block 8, tiles of
** 6 pixels x 2 blocks (12 of the 16 registers accumulate), from
** cpu_nchwc_tmpl.h, and the Winograd kernels of cpu_wino_tmpl.h (GEMM tile
** 6 tiles x 2 blocks). Built with -mavx2 -mfma (cpu.cmake); without them it
** offers none. */
#include "cpu_nchwc.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define NC_B 8
#define NC_OB 2
#define NC_T 6
#define NC_TD 7
#define NC_TD_TAIL 1
#define NC_VEC __m256
#define NC_LOAD(p) _mm256_loadu_ps(p)
#define NC_STORE(p, v) _mm256_storeu_ps((p), (v))
#define NC_SET1(x) _mm256_set1_ps(x)
#define NC_ZERO() _mm256_setzero_ps()
#define NC_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define NC_ADD(a, b) _mm256_add_ps((a), (b))
#define NC_SUB(a, b) _mm256_sub_ps((a), (b))
#define NC_MUL(a, b) _mm256_mul_ps((a), (b))
#define NC_MAX(a, b) _mm256_max_ps((a), (b))
#define NC_MIN(a, b) _mm256_min_ps((a), (b))
#define NC_FN(name) f32_nchwc_##name##_avx2
#define VM(name) nc8_##name
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
#include "cpu_nchwc_tmpl.h"
#define WN_T 6
#define WN_OB 2
#include "cpu_wino_tmpl.h"

static const cpu_nchwc_kernels k_avx2 = {
    8, 2, NC_T, "avx2", NC_FN(conv), NC_FN(conv_rows), NC_FN(dwconv), NC_FN(pool),
};

const cpu_nchwc_kernels *cpu_nchwc_kernels_avx2(void) { return &k_avx2; }

static const cpu_wino_kernels wk_avx2 = {8, WN_OB, WN_T, "avx2", NC_FN(wino_chunk)};

const cpu_wino_kernels *cpu_wino_kernels_avx2(void) { return &wk_avx2; }
#else
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx2(void) { return NULL; }
const cpu_wino_kernels *cpu_wino_kernels_avx2(void) { return NULL; }
#endif
