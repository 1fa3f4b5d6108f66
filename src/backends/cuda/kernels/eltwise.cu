// eltwise.cu: Kiln's elementwise kernels. Grid-stride loops; broadcasting
// through kc_offsets (32-bit index math when everything fits). Float math
// in float32 whatever the storage type; formulas as the reference kernels
// (src/backends/ref/ref_elementwise.c) evaluate them.
#include "eltwise_kernels.h"
#include "kc_device.cuh"

#include <stdlib.h>
#include <string.h>

// The vector fast paths below (FusedElementwise, broadcasting binary ops,
// float casts) passed tests/gpu/test_cuda_eltwise on an H100 (2026-12-07)
// and are the default; KILN_CUDA_ELT_FAST=0 takes the older kernels (A/B
// timing). Read once.
static bool elt_fast_on() {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("KILN_CUDA_ELT_FAST");
        on = !(e && e[0] == '0');
    }
    return on != 0;
}

// ---------------------------------------------------------------- scalar ops
__device__ __forceinline__ float kc_sigmoid(float v) {
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}
__device__ __forceinline__ float kc_clamp01(float v) { return v < 0 ? 0.0f : v > 1 ? 1.0f : v; }
__device__ __forceinline__ float kc_softplus(float v) {
    return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v));
}

__device__ __forceinline__ float kc_unop(int op, float v, float p0, float p1, float p2) {
    switch (op) {
    case KU_NEG: return -v;
    case KU_ABS: return fabsf(v);
    case KU_SQRT: return sqrtf(v);
    case KU_EXP: return expf(v);
    case KU_LOG: return logf(v);
    case KU_TANH: return tanhf(v);
    case KU_SIGMOID: return kc_sigmoid(v);
    case KU_RELU: return v < 0 ? 0.0f : v;
    case KU_ERF: return erff(v);
    case KU_RECIP: return 1.0f / v;
    case KU_FLOOR: return floorf(v);
    case KU_CEIL: return ceilf(v);
    case KU_ROUND: return rintf(v); // half to even
    case KU_SIN: return sinf(v);
    case KU_COS: return cosf(v);
    case KU_TAN: return tanf(v);
    case KU_SIGN: return v > 0 ? 1.0f : v < 0 ? -1.0f : v;
    case KU_SOFTPLUS: return kc_softplus(v);
    case KU_SOFTSIGN: return v / (1.0f + fabsf(v));
    case KU_ELU: return v < 0 ? p0 * expm1f(v) : v;
    case KU_SELU: return v > 0 ? p2 * v : p2 * p0 * expm1f(v);
    case KU_CELU: return v > 0 ? v : p0 * expm1f(v / p0);
    case KU_THRELU: return v > p0 ? v : 0.0f;
    case KU_SWISH: return v * kc_sigmoid(p0 * v);
    case KU_LEAKY: return v < 0 ? p0 * v : v;
    case KU_HSIG: return kc_clamp01(p0 * v + p1);
    case KU_HSWISH: return v * kc_clamp01(v * (float)(1.0 / 6.0) + 0.5f);
    case KU_MISH: return v * tanhf(kc_softplus(v));
    case KU_GELU: return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    case KU_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case KU_CLIP: v = v < p0 ? p0 : v; return v > p1 ? p1 : v; // NaN passes
    case KU_SCALE: return v * p0;
    case KU_ASIN: return asinf(v);
    case KU_ACOS: return acosf(v);
    case KU_ATAN: return atanf(v);
    case KU_SINH: return sinhf(v);
    case KU_COSH: return coshf(v);
    case KU_ASINH: return asinhf(v);
    case KU_ACOSH: return acoshf(v);
    case KU_ATANH: return atanhf(v);
    case KU_SHRINK: return v < -p0 ? v + p1 : v > p0 ? v - p1 : 0.0f;
    default: return v;
    }
}

__device__ __forceinline__ float kc_binf(int op, float x, float y) {
    switch (op) {
    case KB_ADD: return x + y;
    case KB_SUB: return x - y;
    case KB_MUL: return x * y;
    case KB_DIV: return x / y;
    case KB_POW: return powf(x, y);
    case KB_MAX: return x != x || y != y ? x + y : x > y ? x : y; // NaN wins
    case KB_MIN: return x != x || y != y ? x + y : x < y ? x : y;
    case KB_MOD: { // sign of the divisor, as Python
        float r = fmodf(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
    }
    case KB_FMOD: return fmodf(x, y);
    case KB_PRELU: return x < 0 ? y * x : x;
    default: return 0.0f;
    }
}
__device__ __forceinline__ bool kc_cmpf(int op, float x, float y) {
    switch (op) {
    case KB_EQ: return x == y;
    case KB_LT: return x < y;
    case KB_LE: return x <= y;
    case KB_GT: return x > y;
    default: return x >= y;
    }
}
__device__ __forceinline__ unsigned long long kc_upow(unsigned long long b, unsigned long long e) {
    unsigned long long r = 1;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}
// Shifts as the reference: counts of the width or more give 0.
__device__ __forceinline__ long long kc_shift(int op, unsigned long long x, unsigned long long y,
                                              int bits) {
    if (y >= (unsigned long long)bits) return 0;
    unsigned long long m = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
    return (long long)((op == KB_SHL ? x << y : x >> y) & m);
}
// Integer ops on int64 values (narrower types widened, their results
// wrapped by the store). Division by zero gives 0 (the reference fails; a
// kernel cannot). The reference's int64 domain: x / -1 wraps, x % -1 is 0.
__device__ __forceinline__ long long kc_bini(int op, long long x, long long y) {
    typedef unsigned long long u64;
    switch (op) { // wrap like the type's own arithmetic
    case KB_ADD: return (long long)((u64)x + (u64)y);
    case KB_SUB: return (long long)((u64)x - (u64)y);
    case KB_MUL: return (long long)((u64)x * (u64)y);
    case KB_DIV: return y == 0 ? 0 : y == -1 ? (long long)(0 - (u64)x) : x / y;
    case KB_MOD: case KB_FMOD: {
        if (y == 0 || y == -1) return 0;
        long long r = x % y;
        if (op == KB_MOD && r != 0 && ((r < 0) != (y < 0))) r += y; // sign of divisor
        return r;
    }
    case KB_POW:
        if (y >= 0) return (long long)kc_upow((u64)x, (u64)y);
        return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
    case KB_BAND: return x & y;
    case KB_BOR: return x | y;
    case KB_BXOR: return x ^ y;
    case KB_MAX: return x > y ? x : y;
    case KB_MIN: return x < y ? x : y;
    case KB_PRELU: return x < 0 ? (long long)((u64)y * (u64)x) : x;
    case KB_EQ: return x == y;
    case KB_LT: return x < y;
    case KB_LE: return x <= y;
    case KB_GT: return x > y;
    case KB_GE: return x >= y;
    case KB_AND: return (x != 0) & (y != 0);
    case KB_OR: return (x != 0) | (y != 0);
    case KB_XOR: return (x != 0) ^ (y != 0);
    default: return 0;
    }
}

// uint64: the orderings, division and remainder differ from int64's.
__device__ __forceinline__ long long kc_binu(int op, long long xs, long long ys) {
    typedef unsigned long long u64;
    u64 x = (u64)xs, y = (u64)ys;
    switch (op) {
    case KB_DIV: return y == 0 ? 0 : (long long)(x / y);
    case KB_MOD: case KB_FMOD: return y == 0 ? 0 : (long long)(x % y);
    case KB_POW: return (long long)kc_upow(x, y);
    case KB_MAX: return (long long)(x > y ? x : y);
    case KB_MIN: return (long long)(x < y ? x : y);
    case KB_PRELU: return xs;
    case KB_LT: return x < y;
    case KB_LE: return x <= y;
    case KB_GT: return x > y;
    case KB_GE: return x >= y;
    default: return kc_bini(op, xs, ys);
    }
}
__device__ __forceinline__ int kc_int_bits(int dt) {
    switch (dt) {
    case KC_U8: case KC_I8: case KC_BOOL: return 8;
    case KC_U16: case KC_I16: return 16;
    case KC_U32: case KC_I32: return 32;
    default: return 64;
    }
}

// ---------------------------------------------------------------- binary
template <class I>
__global__ void k_binary(int op, int dta, int dtb, int dty, const __grid_constant__ kc_bshape s,
                         const void *a, const void *b, void *y, I n) {
    bool cmp = op >= KB_EQ;
    bool fl = kc_is_float(dta);
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I off[2];
        kc_offsets<2, I>(s, i, off);
        if (dta == KC_F64) { // float64 in double, like the reference
            double x = ((const double *)a)[off[0]], w = kc_ldd(b, off[1], dtb), r;
            switch (op) {
            case KB_ADD: r = x + w; break;
            case KB_SUB: r = x - w; break;
            case KB_MUL: r = x * w; break;
            case KB_DIV: r = x / w; break;
            case KB_POW: r = pow(x, w); break;
            case KB_MAX: r = x != x || w != w ? x + w : x > w ? x : w; break;
            case KB_MIN: r = x != x || w != w ? x + w : x < w ? x : w; break;
            case KB_MOD: r = fmod(x, w); if (r != 0 && ((r < 0) != (w < 0))) r += w; break;
            case KB_FMOD: r = fmod(x, w); break;
            case KB_PRELU: r = x < 0 ? w * x : x; break;
            case KB_EQ: r = x == w; break;
            case KB_LT: r = x < w; break;
            case KB_LE: r = x <= w; break;
            case KB_GT: r = x > w; break;
            case KB_GE: r = x >= w; break;
            default: r = 0; break;
            }
            if (cmp) ((uint8_t *)y)[i] = r != 0;
            else ((double *)y)[i] = r;
        } else if (fl) {
            float x = kc_ldf(a, off[0], dta), w = kc_ldf(b, off[1], dtb);
            if (cmp) ((uint8_t *)y)[i] = kc_cmpf(op, x, w);
            else kc_stf(y, i, dty, kc_binf(op, x, w));
        } else {
            long long x = kc_ldi(a, off[0], dta), w = kc_ldi(b, off[1], dtb);
            long long r;
            if (op == KB_POW && kc_is_float(dtb)) { // an integer to a float power
                // saturated like the reference: unsigned types to [0, 2^64)
                bool uns = dta == KC_U8 || dta == KC_U16 || dta == KC_U32 || dta == KC_U64;
                double pw = pow(dta == KC_U64 ? (double)(unsigned long long)x : (double)x,
                                kc_ldd(b, off[1], dtb));
                if (uns)
                    r = (long long)(pw != pw || pw <= 0 ? 0ull
                                    : pw >= 18446744073709551615.0 ? ~0ull
                                                                   : (unsigned long long)pw);
                else
                    r = pw != pw ? 0
                        : pw >= 9223372036854775807.0 ? 9223372036854775807LL
                        : pw <= -9223372036854775808.0 ? (-9223372036854775807LL - 1)
                                                        : (long long)pw;
            } else if (op == KB_SHL || op == KB_SHR)
                r = kc_shift(op, (unsigned long long)x, (unsigned long long)w, kc_int_bits(dta));
            else if (dta == KC_U64)
                r = kc_binu(op, x, w);
            else
                r = kc_bini(op, x, w);
            kc_sti(y, i, dty, r);
        }
    }
}

// Equal shapes or scalars (coalesced rank <= 1), one float type throughout:
// four elements per thread per step; sa/sb 0 for a broadcast scalar.
template <class T>
__global__ void k_binary_vec(int op, const T *a, int sa, const T *b, int sb, T *y, int64_t n) {
    int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t nv = n / 4;
    float a0 = kc_f(a[0]), b0 = kc_f(b[0]);
    for (int64_t v = tid; v < nv; v += stride) {
        float fa[4], fb[4];
        if (sa) kc_ld4(a, v, fa);
        else fa[0] = fa[1] = fa[2] = fa[3] = a0;
        if (sb) kc_ld4(b, v, fb);
        else fb[0] = fb[1] = fb[2] = fb[3] = b0;
#pragma unroll
        for (int k = 0; k < 4; k++) fa[k] = kc_binf(op, fa[k], fb[k]);
        kc_st4(y, v, fa);
    }
    for (int64_t i = nv * 4 + tid; i < n; i += stride)
        y[i] = kc_to<T>(kc_binf(op, sa ? kc_f(a[i]) : a0, sb ? kc_f(b[i]) : b0));
}

template <class T>
static void kc_binary_vec_t(int op, const kc_bshape *s, const void *a, const void *b, void *y,
                            int64_t n, cudaStream_t st) {
    int sa = s->rank ? (int)s->st[0][0] : 0, sb = s->rank ? (int)s->st[1][0] : 0;
    k_binary_vec<T><<<kc_blocks((n + 3) / 4, 256), 256, 0, st>>>(op, (const T *)a, sa,
                                                                  (const T *)b, sb, (T *)y, n);
}

static bool kc_fits32(const kc_bshape *s, int64_t n) {
    if (n >= (int64_t)1 << 31) return false;
    for (int j = 0; j < s->nin; j++) {
        int64_t m = 0; // largest offset
        for (int d = 0; d < s->rank; d++) m += (s->dims[d] - 1) * s->st[j][d];
        if (m >= (int64_t)1 << 31) return false;
    }
    return true;
}

template <class T>
static bool kc_fused_fast_t(const kc_fe_prog *p, void *y, int64_t n, cudaStream_t st);

// Broadcasting float ops of one type (a bias row, a per-channel scale) as a
// one-instruction FusedElementwise program: its fast path reads 8 or 16
// bytes per input where the shapes allow (same operation, same rounding).
static bool kc_binary_fast(int op, int dt, const kc_bshape *s, const void *a, const void *b,
                           void *y, int64_t n, cudaStream_t st) {
    kc_fe_prog p;
    memset(&p, 0, sizeof p);
    p.n_in = 2, p.n_instr = 1, p.out_reg = 2;
    p.ins[0].binary = 1, p.ins[0].op = (int16_t)op, p.ins[0].dst = 2;
    p.ins[0].a = 0, p.ins[0].b = 1;
    p.s = *s;
    p.in[0] = a, p.in[1] = b;
    switch (dt) {
    case KC_F32: return kc_fused_fast_t<float>(&p, y, n, st);
    case KC_F16: return kc_fused_fast_t<__half>(&p, y, n, st);
    case KC_BF16: return kc_fused_fast_t<__nv_bfloat16>(&p, y, n, st);
    default: return false;
    }
}

static cudaError_t kc_binary_impl(int op, int dta, int dtb, int dty, const kc_bshape *s,
                                  const void *a, const void *b, void *y, int64_t n,
                                  cudaStream_t st, bool fast) {
    if (n <= 0) return cudaSuccess;
    size_t es = dty == KC_F32 ? 4 : 2, al = 4 * es;
    bool aligned = (uintptr_t)y % al == 0 && (s->rank == 0 || s->st[0][0] == 0 || (uintptr_t)a % al == 0) &&
                   (s->rank == 0 || s->st[1][0] == 0 || (uintptr_t)b % al == 0);
    if (s->rank <= 1 && op < KB_EQ && dta == dty && dtb == dty && aligned &&
        (dty == KC_F32 || dty == KC_F16 || dty == KC_BF16)) {
        if (dty == KC_F32) kc_binary_vec_t<float>(op, s, a, b, y, n, st);
        else if (dty == KC_F16) kc_binary_vec_t<__half>(op, s, a, b, y, n, st);
        else kc_binary_vec_t<__nv_bfloat16>(op, s, a, b, y, n, st);
        return cudaGetLastError();
    }
    if (fast && s->rank >= 2 && op < KB_EQ && dta == dty && dtb == dty && s->nin == 2 &&
        kc_binary_fast(op, dty, s, a, b, y, n, st))
        return cudaGetLastError();
    unsigned g = kc_blocks(n, 256);
    if (kc_fits32(s, n))
        k_binary<uint32_t><<<g, 256, 0, st>>>(op, dta, dtb, dty, *s, a, b, y, (uint32_t)n);
    else
        k_binary<int64_t><<<g, 256, 0, st>>>(op, dta, dtb, dty, *s, a, b, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_binary(int op, int dta, int dtb, int dty, const kc_bshape *s,
                                 const void *a, const void *b, void *y, int64_t n,
                                 cudaStream_t st) {
    return kc_binary_impl(op, dta, dtb, dty, s, a, b, y, n, st, elt_fast_on());
}

extern "C" cudaError_t kc_binary_generic(int op, int dta, int dtb, int dty, const kc_bshape *s,
                                         const void *a, const void *b, void *y, int64_t n,
                                         cudaStream_t st) {
    return kc_binary_impl(op, dta, dtb, dty, s, a, b, y, n, st, false);
}

// ---------------------------------------------------------------- where
template <class E, class I>
__global__ void k_where(const __grid_constant__ kc_bshape s, const uint8_t *c, const E *x,
                        const E *w, E *y, I n) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I off[3];
        kc_offsets<3, I>(s, i, off);
        y[i] = c[off[0]] ? x[off[1]] : w[off[2]];
    }
}

template <class E>
static void kc_where_t(const kc_bshape *s, const void *c, const void *x, const void *w, void *y,
                       int64_t n, cudaStream_t st) {
    unsigned g = kc_blocks(n, 256);
    if (kc_fits32(s, n))
        k_where<E, uint32_t><<<g, 256, 0, st>>>(*s, (const uint8_t *)c, (const E *)x,
                                                (const E *)w, (E *)y, (uint32_t)n);
    else
        k_where<E, int64_t><<<g, 256, 0, st>>>(*s, (const uint8_t *)c, (const E *)x,
                                               (const E *)w, (E *)y, n);
}

extern "C" cudaError_t kc_where(const kc_bshape *s, const void *c, const void *x,
                                const void *w, void *y, int es, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    switch (es) {
    case 1: kc_where_t<uint8_t>(s, c, x, w, y, n, st); break;
    case 2: kc_where_t<uint16_t>(s, c, x, w, y, n, st); break;
    case 4: kc_where_t<uint32_t>(s, c, x, w, y, n, st); break;
    case 8: kc_where_t<unsigned long long>(s, c, x, w, y, n, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ---------------------------------------------------------------- unary
// Four elements per thread per step through 8- or 16-byte accesses when the
// pointers allow; the tail and unaligned tensors go one by one.
template <class T>
__global__ void k_unary(int op, float p0, float p1, float p2, const T *x, T *y, int64_t n,
                        bool vec) {
    int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec) {
        int64_t nv = n / 4;
        for (int64_t v = tid; v < nv; v += stride) {
            float e[4];
            kc_ld4(x, v, e);
#pragma unroll
            for (int k = 0; k < 4; k++) e[k] = kc_unop(op, e[k], p0, p1, p2);
            kc_st4(y, v, e);
        }
        done = nv * 4;
    }
    for (int64_t i = done + tid; i < n; i += stride)
        y[i] = kc_to<T>(kc_unop(op, kc_f(x[i]), p0, p1, p2));
}

template <class T>
static void kc_unary_t(int op, float p0, float p1, float p2, const void *x, void *y, int64_t n,
                       cudaStream_t st) {
    size_t al = 4 * sizeof(T);
    bool vec = ((uintptr_t)x % al) == 0 && ((uintptr_t)y % al) == 0;
    unsigned g = kc_blocks(vec ? (n + 3) / 4 : n, 256);
    k_unary<T><<<g, 256, 0, st>>>(op, p0, p1, p2, (const T *)x, (T *)y, n, vec);
}

// float64 math for the ops a float64 model uses (kc_unary_f64_ok), in
// double like the reference.
__device__ __forceinline__ double kc_unop_d(int op, double v) {
    switch (op) {
    case KU_NEG: return -v;
    case KU_ABS: return fabs(v);
    case KU_SQRT: return sqrt(v);
    case KU_EXP: return exp(v);
    case KU_LOG: return log(v);
    case KU_TANH: return tanh(v);
    case KU_SIGMOID: {
        if (v >= 0) return 1.0 / (1.0 + exp(-v));
        double e = exp(v);
        return e / (1.0 + e);
    }
    case KU_RELU: return v < 0 ? 0.0 : v; // NaN passes
    case KU_RECIP: return 1.0 / v;
    case KU_FLOOR: return floor(v);
    case KU_CEIL: return ceil(v);
    case KU_ROUND: return rint(v);
    case KU_SIN: return sin(v);
    case KU_COS: return cos(v);
    case KU_ERF: return erf(v);
    default: return v;
    }
}

__global__ void k_unary_f64(int op, const double *x, double *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = kc_unop_d(op, x[i]);
}

extern "C" int kc_unary_f64_ok(int op) {
    switch (op) {
    case KU_NEG: case KU_ABS: case KU_SQRT: case KU_EXP: case KU_LOG: case KU_TANH:
    case KU_SIGMOID: case KU_RELU: case KU_RECIP: case KU_FLOOR: case KU_CEIL: case KU_ROUND:
    case KU_SIN: case KU_COS: case KU_ERF:
        return 1;
    default: return 0;
    }
}

extern "C" cudaError_t kc_unary(int op, int dt, float p0, float p1, float p2, const void *x,
                                void *y, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (dt == KC_F64) {
        if (!kc_unary_f64_ok(op)) return cudaErrorInvalidValue;
        k_unary_f64<<<kc_blocks(n, 256), 256, 0, st>>>(op, (const double *)x, (double *)y, n);
        return cudaGetLastError();
    }
    switch (dt) {
    case KC_F32: kc_unary_t<float>(op, p0, p1, p2, x, y, n, st); break;
    case KC_F16: kc_unary_t<__half>(op, p0, p1, p2, x, y, n, st); break;
    case KC_BF16: kc_unary_t<__nv_bfloat16>(op, p0, p1, p2, x, y, n, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

__global__ void k_isx(int dt, int isnan_op, int pos, int neg, const void *x, uint8_t *y,
                      int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        double v = kc_ldd(x, i, dt);
        y[i] = isnan_op ? v != v : (isinf(v) && ((v > 0 && pos) || (v < 0 && neg)));
    }
}

extern "C" cudaError_t kc_isx(int dt, int isnan_op, int pos, int neg, const void *x, void *y,
                              int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_isx<<<kc_blocks(n, 256), 256, 0, st>>>(dt, isnan_op, pos, neg, x, (uint8_t *)y, n);
    return cudaGetLastError();
}

__global__ void k_not(const uint8_t *x, uint8_t *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[i] == 0;
}

__global__ void k_bitnot(int dt, const void *x, void *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        kc_sti(y, i, dt, ~kc_ldi(x, i, dt)); // the store keeps the type's bits
}

extern "C" cudaError_t kc_bitnot(int dt, const void *x, void *y, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_bitnot<<<kc_blocks(n, 256), 256, 0, st>>>(dt, x, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_not(const void *x, void *y, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_not<<<kc_blocks(n, 256), 256, 0, st>>>((const uint8_t *)x, (uint8_t *)y, n);
    return cudaGetLastError();
}

// ---------------------------------------------------------------- cast
__device__ __forceinline__ long long kc_f64_to_i64_sat(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return 9223372036854775807LL;
    if (v <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
    return (long long)v;
}

__global__ void k_cast(int dts, int dtd, const void *x, void *y, int64_t n) {
    bool sf = kc_is_float(dts), df = kc_is_float(dtd);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        if (sf) {
            double v = kc_ldd(x, i, dts);
            if (df) {
                // one rounding from the exact double value
                switch (dtd) {
                case KC_F32: ((float *)y)[i] = (float)v; break;
                case KC_F64: ((double *)y)[i] = v; break;
                case KC_F16: ((__half *)y)[i] = __double2half(v); break;
                default: ((__nv_bfloat16 *)y)[i] = __double2bfloat16(v); break;
                }
            } else if (dtd == KC_BOOL) {
                ((uint8_t *)y)[i] = v != 0; // NaN is true
            } else if (dtd == KC_U64 && v >= 9223372036854775808.0) {
                ((unsigned long long *)y)[i] =
                    v >= 18446744073709551615.0 ? ~0ULL : (unsigned long long)v;
            } else {
                kc_sti(y, i, dtd, kc_f64_to_i64_sat(v));
            }
        } else {
            long long v = kc_ldi(x, i, dts);
            if (!df) {
                kc_sti(y, i, dtd, v);
            } else {
                double d = dts == KC_U64 ? (double)(unsigned long long)v : (double)v;
                switch (dtd) {
                case KC_F32:
                    ((float *)y)[i] = dts == KC_U64 ? (float)(unsigned long long)v : (float)v;
                    break;
                case KC_F64: ((double *)y)[i] = d; break;
                case KC_F16: ((__half *)y)[i] = __double2half(d); break;
                default: ((__nv_bfloat16 *)y)[i] = __double2bfloat16(d); break;
                }
            }
        }
    }
}

// Between two of float32 / float16 / bfloat16 (the reformat layers around
// half-precision layers, whole activations): four elements per thread per
// step through one load and one store, types known at compile time. One
// rounding from the exact value, as k_cast's double path gives.
template <class S, class D>
__global__ void k_cast_vec(const S *x, D *y, int64_t n) {
    int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t nv = n / 4;
    for (int64_t v = tid; v < nv; v += stride) {
        float e[4];
        kc_ld4(x, v, e);
        kc_st4(y, v, e);
    }
    for (int64_t i = nv * 4 + tid; i < n; i += stride) y[i] = kc_to<D>(kc_f(x[i]));
}

template <class S>
static bool kc_cast_vec_s(int dtd, const void *x, void *y, int64_t n, cudaStream_t st) {
    unsigned g = kc_blocks((n + 3) / 4, 256);
    switch (dtd) {
    case KC_F32:
        if ((uintptr_t)y % 16) return false;
        k_cast_vec<S, float><<<g, 256, 0, st>>>((const S *)x, (float *)y, n);
        return true;
    case KC_F16:
        if ((uintptr_t)y % 8) return false;
        k_cast_vec<S, __half><<<g, 256, 0, st>>>((const S *)x, (__half *)y, n);
        return true;
    case KC_BF16:
        if ((uintptr_t)y % 8) return false;
        k_cast_vec<S, __nv_bfloat16><<<g, 256, 0, st>>>((const S *)x, (__nv_bfloat16 *)y, n);
        return true;
    default: return false;
    }
}

extern "C" cudaError_t kc_cast_generic(int dts, int dtd, const void *x, void *y, int64_t n,
                                       cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_cast<<<kc_blocks(n, 256), 256, 0, st>>>(dts, dtd, x, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_cast(int dts, int dtd, const void *x, void *y, int64_t n,
                               cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (dts != dtd && elt_fast_on()) {
        bool done = false;
        if (dts == KC_F32 && (uintptr_t)x % 16 == 0)
            done = kc_cast_vec_s<float>(dtd, x, y, n, st);
        else if (dts == KC_F16 && (uintptr_t)x % 8 == 0)
            done = kc_cast_vec_s<__half>(dtd, x, y, n, st);
        else if (dts == KC_BF16 && (uintptr_t)x % 8 == 0)
            done = kc_cast_vec_s<__nv_bfloat16>(dtd, x, y, n, st);
        if (done) return cudaGetLastError();
    }
    return kc_cast_generic(dts, dtd, x, y, n, st);
}

// ---------------------------------------------------------------- fused
// Registers live in local memory (L1-resident): dynamic register numbers
// rule out real registers. Each result is rounded to T, as storing the
// unfused graph's intermediate tensor would.
template <class T, class I>
__global__ void k_fused(const __grid_constant__ kc_fe_prog p, T *y, I n) {
    float r[KC_FE_MAX_REGS];
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I off[KC_MAX_IN];
        kc_offsets<KC_MAX_IN, I>(p.s, i, off);
#pragma unroll
        for (int j = 0; j < KC_MAX_IN; j++)
            if (j < p.n_in) r[j] = kc_f(((const T *)p.in[j])[off[j]]);
        for (int t = 0; t < p.n_instr; t++) {
            const kc_fe_instr &q = p.ins[t];
            float a = q.a >= 0 ? r[q.a] : p.k[-q.a - 1];
            float v;
            if (q.binary) {
                float b = q.b >= 0 ? r[q.b] : p.k[-q.b - 1];
                v = kc_binf(q.op, a, b);
            } else {
                v = kc_unop(q.op, a, q.p0, q.p1, 0.0f);
            }
            r[q.dst] = kc_round<T>(v);
        }
        y[i] = kc_to<T>(r[p.out_reg]);
    }
}

template <class T>
static void kc_fused_t(const kc_fe_prog *p, void *y, int64_t n, cudaStream_t st) {
    unsigned g = kc_blocks(n, 256);
    if (kc_fits32(&p->s, n))
        k_fused<T, uint32_t><<<g, 256, 0, st>>>(*p, (T *)y, (uint32_t)n);
    else
        k_fused<T, int64_t><<<g, 256, 0, st>>>(*p, (T *)y, n);
}

// ---------------------------------------------------------------- fused, fast path
// The same program over groups of V consecutive output elements, each input
// loaded once per group: with one V*sizeof(T)-byte access where its elements
// are consecutive in memory, or one element broadcast over the group where
// they are all the same one. This needs every input's offset to be
// (i / a) % b of the output index i (a the size of the broadcast trailing
// block, b that of the input's own contiguous block; b 0: no modulo), which
// covers inputs of the output's shape, scalars, row vectors, blocks repeated
// along leading dims and per-channel vectors. The register file is NR x V
// floats in real registers, read and written through switches on the
// (warp-uniform) register numbers, where the interpreter above indexes an
// array in local memory. Same operations in the same order as k_fused, so the
// same results bit for bit.
enum { FE_LD_VEC = 0, FE_LD_BCAST = 1 };
typedef struct kc_fe_geo {
    uint32_t a[KC_MAX_IN], b[KC_MAX_IN];
    int mode[KC_MAX_IN];
} kc_fe_geo;

template <class T, int V> struct alignas(sizeof(T) * V) kc_vec { T v[V]; };

template <int NR, int V>
__device__ __forceinline__ void fe_get(const float (&r)[NR][V], const kc_fe_prog &p, int idx,
                                       float (&o)[V]) {
    if (idx < 0) {
        float c = p.k[-idx - 1];
#pragma unroll
        for (int k = 0; k < V; k++) o[k] = c;
        return;
    }
#define FE_GET(s)                                                                          \
    case s:                                                                                \
        if (s < NR) {                                                                      \
            _Pragma("unroll") for (int k = 0; k < V; k++) o[k] = r[s < NR ? s : 0][k];    \
        }                                                                                  \
        break;
    switch (idx) {
        FE_GET(0) FE_GET(1) FE_GET(2) FE_GET(3) FE_GET(4) FE_GET(5) FE_GET(6) FE_GET(7)
        FE_GET(8) FE_GET(9) FE_GET(10) FE_GET(11) FE_GET(12) FE_GET(13) FE_GET(14) FE_GET(15)
    default: break;
    }
#undef FE_GET
}

template <int NR, int V>
__device__ __forceinline__ void fe_put(float (&r)[NR][V], int idx, const float (&v)[V]) {
#define FE_PUT(s)                                                                          \
    case s:                                                                                \
        if (s < NR) {                                                                      \
            _Pragma("unroll") for (int k = 0; k < V; k++) r[s < NR ? s : 0][k] = v[k];    \
        }                                                                                  \
        break;
    switch (idx) {
        FE_PUT(0) FE_PUT(1) FE_PUT(2) FE_PUT(3) FE_PUT(4) FE_PUT(5) FE_PUT(6) FE_PUT(7)
        FE_PUT(8) FE_PUT(9) FE_PUT(10) FE_PUT(11) FE_PUT(12) FE_PUT(13) FE_PUT(14) FE_PUT(15)
    default: break;
    }
#undef FE_PUT
}

__host__ __device__ __forceinline__ uint32_t fe_off(const kc_fe_geo &g, int j, uint32_t i) {
    uint32_t b = g.b[j];
    if (b == 1) return 0;
    uint32_t q = g.a[j] == 1 ? i : i / g.a[j];
    return b ? q % b : q;
}

template <class T, int V, int NR>
__global__ void k_fused_vec(const __grid_constant__ kc_fe_prog p,
                            const __grid_constant__ kc_fe_geo g, T *y, uint32_t n) {
    uint32_t ng = (n + V - 1) / V;
    for (uint32_t gi = blockIdx.x * blockDim.x + threadIdx.x; gi < ng;
         gi += gridDim.x * blockDim.x) {
        uint32_t i0 = gi * V;
        bool whole = n - i0 >= (uint32_t)V;
        float r[NR][V];
        constexpr int NI = KC_MAX_IN < NR ? KC_MAX_IN : NR;
        if (whole) {
            // every load issued before the first is used
            kc_vec<T, V> raw[NI];
#pragma unroll
            for (int j = 0; j < NI; j++) {
                if (j >= p.n_in) break;
                const T *x = (const T *)p.in[j] + fe_off(g, j, i0);
                if (g.mode[j] == FE_LD_VEC) raw[j] = *(const kc_vec<T, V> *)x;
                else raw[j].v[0] = *x;
            }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                if (j >= p.n_in) break;
                if (g.mode[j] == FE_LD_VEC) {
#pragma unroll
                    for (int k = 0; k < V; k++) r[j][k] = kc_f(raw[j].v[k]);
                } else {
                    float c = kc_f(raw[j].v[0]);
#pragma unroll
                    for (int k = 0; k < V; k++) r[j][k] = c;
                }
            }
        } else { // the last, partial group (V does not divide n)
#pragma unroll
            for (int j = 0; j < NI; j++) {
                if (j >= p.n_in) break;
                const T *x = (const T *)p.in[j];
#pragma unroll
                for (int k = 0; k < V; k++)
                    r[j][k] = i0 + k < n ? kc_f(x[fe_off(g, j, i0 + k)]) : 0.0f;
            }
        }
        for (int t = 0; t < p.n_instr; t++) {
            const kc_fe_instr &q = p.ins[t];
            float a[V], b[V], v[V];
            fe_get<NR, V>(r, p, q.a, a);
            if (q.binary) {
                fe_get<NR, V>(r, p, q.b, b);
                if (q.op == KB_ADD) {
#pragma unroll
                    for (int k = 0; k < V; k++) v[k] = kc_round<T>(a[k] + b[k]);
                } else if (q.op == KB_MUL) {
#pragma unroll
                    for (int k = 0; k < V; k++) v[k] = kc_round<T>(a[k] * b[k]);
                } else {
#pragma unroll
                    for (int k = 0; k < V; k++) v[k] = kc_round<T>(kc_binf(q.op, a[k], b[k]));
                }
            } else {
#pragma unroll
                for (int k = 0; k < V; k++)
                    v[k] = kc_round<T>(kc_unop(q.op, a[k], q.p0, q.p1, 0.0f));
            }
            fe_put<NR, V>(r, q.dst, v);
        }
        float o[V];
        fe_get<NR, V>(r, p, p.out_reg, o);
        if (whole) {
            kc_vec<T, V> q;
#pragma unroll
            for (int k = 0; k < V; k++) q.v[k] = kc_to<T>(o[k]);
            *(kc_vec<T, V> *)(y + i0) = q;
        } else {
#pragma unroll
            for (int k = 0; k < V; k++)
                if (i0 + k < n) y[i0 + k] = kc_to<T>(o[k]);
        }
    }
}

// Classifies the inputs of p for groups of V elements: false when some
// input's offset is not (i / a) % b, or the group size does not suit it
// (a block not a multiple of V, a pointer not aligned to V elements).
static bool fe_geo_make(const kc_fe_prog *p, int V, size_t es, const void *y, int64_t n,
                        kc_fe_geo *g) {
    const kc_bshape *s = &p->s;
    if (n >= ((int64_t)1 << 31) - 64) return false;
    if ((uintptr_t)y % (es * (size_t)V)) return false;
    for (int j = 0; j < p->n_in; j++) {
        int lo = -1, hi = -1;
        for (int d = 0; d < s->rank; d++)
            if (s->st[j][d]) {
                if (lo < 0) lo = d;
                hi = d;
            }
        if (lo < 0) { // a scalar
            g->a[j] = g->b[j] = 1;
            g->mode[j] = FE_LD_BCAST;
            continue;
        }
        if (s->st[j][hi] != 1) return false;
        int64_t a = 1, b = 1;
        for (int d = hi; d >= lo; d--) {
            if (s->st[j][d] != b) return false; // a gap or a broadcast dim inside
            b *= s->dims[d];
        }
        for (int d = hi + 1; d < s->rank; d++) a *= s->dims[d];
        g->a[j] = (uint32_t)a;
        g->b[j] = lo == 0 ? 0 : (uint32_t)b;
        if (a == 1) {
            if ((g->b[j] && g->b[j] % V) || (uintptr_t)p->in[j] % (es * (size_t)V)) return false;
            g->mode[j] = FE_LD_VEC;
        } else {
            if (a % V) return false;
            g->mode[j] = FE_LD_BCAST;
        }
    }
    return true;
}

// Registers the program touches (inputs, results, the output).
static int fe_regs(const kc_fe_prog *p) {
    int m = p->n_in - 1;
    if (p->out_reg > m) m = p->out_reg;
    for (int t = 0; t < p->n_instr; t++) {
        const kc_fe_instr *q = &p->ins[t];
        if (q->dst > m) m = q->dst;
        if (q->a > m) m = q->a;
        if (q->binary && q->b > m) m = q->b;
    }
    return m + 1;
}

template <class T, int V>
static bool kc_fused_vec_v(const kc_fe_prog *p, int nr, void *y, int64_t n, cudaStream_t st) {
    kc_fe_geo g;
    memset(&g, 0, sizeof g);
    if (!fe_geo_make(p, V, sizeof(T), y, n, &g)) return false;
    unsigned blocks = kc_blocks((n + V - 1) / V, 256);
    if (nr <= 4) {
        k_fused_vec<T, V, 4><<<blocks, 256, 0, st>>>(*p, g, (T *)y, (uint32_t)n);
        return true;
    }
    if constexpr (sizeof(T) * V <= 8 || sizeof(T) == 4) { // see kc_fused_fast_t
        k_fused_vec<T, V, 8><<<blocks, 256, 0, st>>>(*p, g, (T *)y, (uint32_t)n);
        return true;
    }
    return false;
}

// The fast path when it applies: 16-byte groups, else 8-byte ones for the
// 16-bit types, else single elements (still no per-dim index loop). Programs
// with more than four live registers take 8-byte groups at most: eight
// registers of eight floats would leave room for one block per SM. false:
// the caller runs the interpreter.
template <class T>
static bool kc_fused_fast_t(const kc_fe_prog *p, void *y, int64_t n, cudaStream_t st) {
    int nr = fe_regs(p);
    if (nr > 8) return false;
    if (sizeof(T) == 4 || nr <= 4) {
        if (kc_fused_vec_v<T, 16 / sizeof(T)>(p, nr, y, n, st)) return true;
    }
    if (sizeof(T) == 2 && kc_fused_vec_v<T, 4>(p, nr, y, n, st)) return true;
    return kc_fused_vec_v<T, 1>(p, nr, y, n, st);
}

extern "C" cudaError_t kc_fused_eltwise_interp(int dt, const kc_fe_prog *p, void *y, int64_t n,
                                               cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    switch (dt) {
    case KC_F32: kc_fused_t<float>(p, y, n, st); break;
    case KC_F16: kc_fused_t<__half>(p, y, n, st); break;
    case KC_BF16: kc_fused_t<__nv_bfloat16>(p, y, n, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" int kc_fused_eltwise_path(int dt, const kc_fe_prog *p, const void *y, int64_t n) {
    int nr = fe_regs(p);
    if (n <= 0 || nr > 8) return 0;
    if (dt != KC_F32 && dt != KC_F16 && dt != KC_BF16) return 0;
    kc_fe_geo g;
    size_t es = dt == KC_F32 ? 4 : 2;
    if ((es == 4 || nr <= 4) && fe_geo_make(p, (int)(16 / es), es, y, n, &g)) return (int)(16 / es);
    if (es == 2 && fe_geo_make(p, 4, es, y, n, &g)) return 4;
    return fe_geo_make(p, 1, es, y, n, &g) ? 1 : 0;
}

extern "C" cudaError_t kc_fused_eltwise(int dt, const kc_fe_prog *p, void *y, int64_t n,
                                        cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (!elt_fast_on()) return kc_fused_eltwise_interp(dt, p, y, n, st);
    bool done = false;
    switch (dt) {
    case KC_F32: done = kc_fused_fast_t<float>(p, y, n, st); break;
    case KC_F16: done = kc_fused_fast_t<__half>(p, y, n, st); break;
    case KC_BF16: done = kc_fused_fast_t<__nv_bfloat16>(p, y, n, st); break;
    default: return cudaErrorInvalidValue;
    }
    if (done) return cudaGetLastError();
    switch (dt) {
    case KC_F32: kc_fused_t<float>(p, y, n, st); break;
    case KC_F16: kc_fused_t<__half>(p, y, n, st); break;
    case KC_BF16: kc_fused_t<__nv_bfloat16>(p, y, n, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
