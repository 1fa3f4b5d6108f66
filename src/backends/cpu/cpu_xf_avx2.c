/* cpu_xf_avx2.c: the transformer kernels of cpu_xf_kern.h for AVX2+FMA
** (8 lanes). Built with -mavx2 -mfma (cpu.cmake); without those flags the
** table is marked unavailable. */
#include "cpu_xf.h"
#include "cpu_gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

static inline __m256i xf_mask8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline float xf_hsum8(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}
static inline float xf_hmax8(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

#define XF_SIMD 1
#define W 8
#define XF_PV 2
#define XF_NV 2
#define VT __m256
#define XF_TABLE cpu_xf_avx2
#define XF_ISA "avx2"
#define XF_FN(name) xf256_##name
#define V1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VLOADN(p, n) _mm256_maskload_ps((p), xf_mask8(n))
#define VSTOREN(p, v, n) _mm256_maskstore_ps((p), xf_mask8(n), (v))
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMIN _mm256_min_ps
#define VMAX _mm256_max_ps
#define VFMA _mm256_fmadd_ps
#define VSQRT _mm256_sqrt_ps
#define VABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (x))
#define VSEL_LT(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))
#define VROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                              \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                     \
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define VHSUM(v) xf_hsum8(v)
#define VHMAX(v) xf_hmax8(v)
#include "cpu_xf_kern.h"

#else
const cpu_xf_kernels cpu_xf_avx2 = {"avx2", false, 8, NULL, NULL, NULL, NULL, NULL};
#endif
