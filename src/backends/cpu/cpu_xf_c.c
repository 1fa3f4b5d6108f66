/* cpu_xf_c.c: the transformer kernels of cpu_xf_kern.h in portable C (one
** lane; the transcendentals are libm's, as in the reference kernels). */
#include "cpu_xf.h"
#include "cpu_gemm.h"

#include <math.h>

/* GELU through erfc and 2 / (1 + e^-2u): no cancellation for negative v
** (libm's 1 + erff(z) loses digits there), matching the vector kernels. */
static inline float xc_gelu(float v) {
    return 0.5f * v * erfcf(-v * 0.7071067811865476f);
}
static inline float xc_gelu_tanh(float v) {
    float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return v / (1.0f + expf(-2.0f * u));
}

#define W 1
#define XF_PV 4
#define XF_NV 4
#define VT float
#define XF_TABLE cpu_xf_c
#define XF_ISA "c"
#define XF_FN(name) xfc_##name
#define V1(x) ((float)(x))
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VLOADN(p, n) ((void)(n), *(p))
#define VSTOREN(p, v, n) ((void)(n), *(p) = (v))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VSQRT(x) sqrtf(x)
#define VABS(x) fabsf(x)
#define VSEL_LT(a, b, x, y) ((a) < (b) ? (x) : (y))
#define VHSUM(v) (v)
#define VHMAX(v) (v)
#define XEXP(x) expf(x)
#define XTANH(x) tanhf(x)
#define XSIGMOID(x) fused_sigmoid_f32(x)
#define XERF(x) erff(x)
#define XGELU(x) xc_gelu(x)
#define XGELU_TANH(x) xc_gelu_tanh(x)
#include "cpu_xf_kern.h"
