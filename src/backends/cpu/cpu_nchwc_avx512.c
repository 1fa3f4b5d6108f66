/* cpu_nchwc_avx512.c: the NCHWc microkernels for AVX-512F, block 16, tiles
** of 6 pixels x 4 blocks (24 accumulators; 4 weight loads and 6 broadcasts
** per 24 FMAs; the direct conv on a blocked input 7 x 4, one accumulator
** spilled, a better trade than a row of 7 as 6 + 1), from cpu_nchwc_tmpl.h, and the Winograd kernels of
** cpu_wino_tmpl.h (GEMM tile 6 tiles x 4 blocks). Built
** with -mavx512f -mavx2 -mfma (cpu.cmake); without them it offers none. */
#include "cpu_nchwc.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define NC_B 16
#define NC_OB 4
#define NC_T 6
#define NC_TD 7
#define NC_EDGE1 1
#define NC_VEC __m512
#define NC_LOAD(p) _mm512_loadu_ps(p)
#define NC_STORE(p, v) _mm512_storeu_ps((p), (v))
#define NC_SET1(x) _mm512_set1_ps(x)
#define NC_ZERO() _mm512_setzero_ps()
#define NC_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define NC_ADD(a, b) _mm512_add_ps((a), (b))
#define NC_SUB(a, b) _mm512_sub_ps((a), (b))
#define NC_MUL(a, b) _mm512_mul_ps((a), (b))
#define NC_MAX(a, b) _mm512_max_ps((a), (b))
#define NC_MIN(a, b) _mm512_min_ps((a), (b))
#define NC_FN(name) f32_nchwc_##name##_avx512
#define VM(name) nc16_##name
#define VT __m512
#define V1(x) _mm512_set1_ps(x)
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMIN _mm512_min_ps
#define VMAX _mm512_max_ps
#define VFMA _mm512_fmadd_ps
#define VABS(x) _mm512_abs_ps(x)
#define VSEL_LT(a, b, x, y) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (y), (x))
#define VROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                              \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                     \
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#include "cpu_nchwc_tmpl.h"
#define WN_T 6
#define WN_OB 4
#include "cpu_wino_tmpl.h"

static const cpu_nchwc_kernels k_avx512 = {
    16, 4, NC_T, "avx512", NC_FN(conv), NC_FN(conv_rows), NC_FN(dwconv), NC_FN(pool),
};

const cpu_nchwc_kernels *cpu_nchwc_kernels_avx512(void) { return &k_avx512; }

static const cpu_wino_kernels wk_avx512 = {16, WN_OB, WN_T, "avx512", NC_FN(wino_chunk)};

const cpu_wino_kernels *cpu_wino_kernels_avx512(void) { return &wk_avx512; }
#else
const cpu_nchwc_kernels *cpu_nchwc_kernels_avx512(void) { return NULL; }
const cpu_wino_kernels *cpu_wino_kernels_avx512(void) { return NULL; }
#endif
