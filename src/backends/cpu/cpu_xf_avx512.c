/* cpu_xf_avx512.c: the transformer kernels of cpu_xf_kern.h for AVX-512F
** (16 lanes). Built with -mavx512f -mavx2 -mfma (cpu.cmake); without those
** flags the table is marked unavailable. */
#include "cpu_xf.h"
#include "cpu_gemm.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define XF_SIMD 1
#define W 16
#define XF_PV 4
#define XF_NV 4
#define VT __m512
#define XF_TABLE cpu_xf_avx512
#define XF_ISA "avx512"
#define XF_FN(name) xf512_##name
#define V1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define XF_M16(n) ((__mmask16)((1u << (n)) - 1u))
#define VLOADN(p, n) _mm512_maskz_loadu_ps(XF_M16(n), (p))
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps((p), XF_M16(n), (v))
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMIN _mm512_min_ps
#define VMAX _mm512_max_ps
#define VFMA _mm512_fmadd_ps
#define VSQRT _mm512_sqrt_ps
#define VABS(x) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)))
#define VSEL_LT(a, b, x, y) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (y), (x))
#define VROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n)                                                              \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                     \
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#include "cpu_xf_kern.h"

#else
const cpu_xf_kernels cpu_xf_avx512 = {"avx512", false, 16, NULL, NULL, NULL, NULL, NULL};
#endif
