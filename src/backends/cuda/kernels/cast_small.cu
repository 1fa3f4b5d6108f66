// cast_small.cu: Cast where either side is a float8 (e4m3fn, e4m3fnuz, e5m2,
// e5m2fnuz), float4 e2m1 or a packed 4-bit integer, on the device. It
// follows the reference's rules (src/util/dtype_small.c, ref Cast): values
// pass through a double; a float8/float4 is decoded exactly, encoded with
// round-to-nearest-even from the double first rounded to float32 "to odd"
// (so the double rounding cannot shift a tie), saturating or overflowing
// per the saturate attribute; integer targets keep the low bits of the
// int64-saturated value. 4-bit outputs pack two elements per byte (low
// nibble first): one thread writes each byte. QuantizeLinear and
// DequantizeLinear live here too: they share the small formats' codecs.
#include "eltwise_kernels.h"
#include "kc_device.cuh"

namespace {

enum { F8E4M3FN = 17, F8E4M3FNUZ = 18, F8E5M2 = 19, F8E5M2FNUZ = 20, U4 = 21, I4 = 22, F4 = 23 };

struct small_fmt {
    int mbits, bias;
    unsigned maxcode;
    bool fnuz, has_inf;
};

__device__ __forceinline__ small_fmt fmt_of(int t) {
    switch (t) {
    case F8E4M3FN: return {3, 7, 0x7e, false, false};
    case F8E4M3FNUZ: return {3, 8, 0x7f, true, false};
    case F8E5M2: return {2, 15, 0x7b, false, true};
    default: return {2, 16, 0x7f, true, false}; // e5m2fnuz
    }
}

__device__ __forceinline__ bool is_f8(int t) { return t >= F8E4M3FN && t <= F8E5M2FNUZ; }
__device__ __forceinline__ bool is_4bit(int t) { return t == U4 || t == I4 || t == F4; }

// Magnitude code of finite ax >= 0, nearest even; may exceed the max code.
__device__ unsigned long long encode_mag(double ax, int mbits, int bias) {
    if (ax == 0) return 0;
    int e;
    (void)frexp(ax, &e);
    int E = e - 1, emin = 1 - bias;
    bool sub = E < emin;
    int qexp = (sub ? emin : E) - mbits;
    double y = ldexp(ax, -qexp), fl = floor(y), d = y - fl;
    unsigned long long q = (unsigned long long)fl;
    if (d > 0.5 || (d == 0.5 && (q & 1))) q++;
    if (sub) return q;
    return ((unsigned long long)(E + bias) << mbits) + q - (1ull << mbits);
}

__device__ double decode_mag(unsigned code, int mbits, int bias) {
    unsigned ex = code >> mbits, m = code & ((1u << mbits) - 1);
    if (ex == 0) return ldexp((double)m, 1 - bias - mbits);
    return ldexp((double)(m | (1u << mbits)), (int)ex - bias - mbits);
}

__device__ double f8_decode(int t, unsigned v) {
    small_fmt f = fmt_of(t);
    if (f.fnuz) {
        if (v == 0x80) return NAN;
    } else if (f.has_inf) {
        if ((v & 0x7c) == 0x7c) {
            if (v & 3) return NAN;
            return (v & 0x80) ? -INFINITY : INFINITY;
        }
    } else if ((v & 0x7f) == 0x7f) {
        return NAN;
    }
    double r = decode_mag(v & 0x7fu, f.mbits, f.bias);
    return (v & 0x80) ? -r : r;
}

__device__ unsigned f8_encode(int t, float x, bool saturate) {
    small_fmt f = fmt_of(t);
    unsigned sign = signbit(x) ? 0x80u : 0u;
    unsigned nan = f.fnuz ? 0x80u : (sign | (f.has_inf ? 0x7eu : 0x7fu));
    unsigned ovf = f.fnuz ? 0x80u : f.has_inf ? (sign | 0x7cu) : nan;
    if (isnan(x)) return nan;
    if (isinf(x)) return saturate ? (sign | f.maxcode) : ovf;
    unsigned long long code = encode_mag(fabs((double)x), f.mbits, f.bias);
    if (code > f.maxcode) return saturate ? (sign | f.maxcode) : ovf;
    if (code == 0 && f.fnuz) return 0;
    return sign | (unsigned)code;
}

__device__ unsigned f4_encode(float x) {
    unsigned sign = signbit(x) ? 8u : 0u;
    if (isnan(x)) return sign ^ 8u;
    if (isinf(x)) return sign | 7u;
    unsigned long long code = encode_mag(fabs((double)x), 1, 1);
    if (code > 7) code = 7;
    return sign | (unsigned)code;
}

// A double rounded to float32 with the sticky bit kept in the last place.
__device__ float f64_to_f32_odd(double v) {
    float f = __double2float_rn(v);
    if (v != v || (double)f == v) return f;
    if (fabs((double)f) > fabs(v)) f = nextafterf(f, 0.0f);
    return __uint_as_float(__float_as_uint(f) | 1u);
}

__device__ long long f64_to_i64_sat(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return 9223372036854775807LL;
    if (v <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
    return (long long)v;
}

__device__ __forceinline__ bool src_is_float(int t) {
    return t == KC_F32 || t == KC_F16 || t == KC_BF16 || t == KC_F64 || is_f8(t) || t == F4;
}

// Element i of x: its double value (float types) or integer bits.
__device__ void load(const void *x, long long i, int t, double *f, long long *b) {
    const uint8_t *p8 = (const uint8_t *)x;
    if (is_4bit(t)) {
        unsigned nib = (i & 1) ? (p8[i / 2] >> 4) : (p8[i / 2] & 15u);
        if (t == F4) {
            double r = decode_mag(nib & 7u, 1, 1);
            *f = (nib & 8) ? -r : r;
        } else {
            *b = (t == I4 && nib >= 8) ? (long long)nib - 16 : (long long)nib;
        }
        return;
    }
    if (is_f8(t)) {
        *f = f8_decode(t, p8[i]);
        return;
    }
    if (src_is_float(t)) *f = kc_ldd(x, i, t); // f32/f16/bf16/f64: exact in a double
    else *b = kc_ldi(x, i, t);
}

// The destination's code of one element (4-bit: the nibble; 8-bit float:
// the byte), or a direct store for the wider types.
__device__ unsigned code_of(int dt, bool sf, double f, long long b, bool uns_src, bool sat) {
    if (dt == F4 || is_f8(dt)) {
        double v = sf ? f : (uns_src ? (double)(unsigned long long)b : (double)b);
        float x = f64_to_f32_odd(v);
        return dt == F4 ? f4_encode(x) : f8_encode(dt, x, sat);
    }
    // int4 / uint4: the low bits
    long long q = sf ? f64_to_i64_sat(f) : b;
    return (unsigned)(q & 15);
}

__device__ void store_wide(void *y, long long i, int dt, bool sf, double f, long long b,
                           bool uns_src) {
    if (dt == KC_F32 || dt == KC_F64 || dt == KC_F16 || dt == KC_BF16) {
        double v = sf ? f : (uns_src ? (double)(unsigned long long)b : (double)b);
        switch (dt) {
        case KC_F32:
            ((float *)y)[i] = sf ? (float)v
                                 : (uns_src ? (float)(unsigned long long)b : (float)b);
            return;
        case KC_F64: ((double *)y)[i] = v; return;
        case KC_F16: ((__half *)y)[i] = __float2half_rn(f64_to_f32_odd(v)); return;
        default: ((__nv_bfloat16 *)y)[i] = __float2bfloat16_rn(f64_to_f32_odd(v)); return;
        }
    }
    if (dt == KC_BOOL) {
        ((uint8_t *)y)[i] = sf ? (f != 0) : (b != 0);
        return;
    }
    if (sf && dt == KC_U64 && f >= 9223372036854775808.0) {
        ((unsigned long long *)y)[i] = f >= 18446744073709551615.0 ? ~0ULL
                                                                   : (unsigned long long)f;
        return;
    }
    kc_sti(y, i, dt, sf ? f64_to_i64_sat(f) : b);
}

__global__ void k_cast_small(int ts, int td, int sat, const void *x, void *y, long long n) {
    bool sf = src_is_float(ts);
    bool uns = ts == KC_U8 || ts == KC_U16 || ts == KC_U32 || ts == KC_U64 || ts == U4 ||
               ts == KC_BOOL;
    long long units = is_4bit(td) ? (n + 1) / 2 : n;
    for (long long u = blockIdx.x * (long long)blockDim.x + threadIdx.x; u < units;
         u += (long long)gridDim.x * blockDim.x) {
        if (is_4bit(td)) {
            unsigned byte = 0;
            for (int h = 0; h < 2; h++) {
                long long i = 2 * u + h;
                if (i >= n) break;
                double f = 0;
                long long b = 0;
                load(x, i, ts, &f, &b);
                byte |= (code_of(td, sf, f, b, uns, sat != 0) & 15u) << (4 * h);
            }
            ((uint8_t *)y)[u] = (uint8_t)byte;
        } else {
            double f = 0;
            long long b = 0;
            load(x, u, ts, &f, &b);
            if (is_f8(td)) ((uint8_t *)y)[u] = (uint8_t)code_of(td, sf, f, b, uns, sat != 0);
            else store_wide(y, u, td, sf, f, b, uns);
        }
    }
}

// ---------------------------------------------------------------- quantization
__device__ __forceinline__ double ld_num(const void *p, long long i, int t) {
    double f = 0;
    long long b = 0;
    load(p, i, t, &f, &b);
    if (src_is_float(t)) return f;
    return t == KC_U64 ? (double)(unsigned long long)b : (double)b;
}

__device__ __forceinline__ long long q_index(const kc_qmap &m, long long i) {
    if (m.mode == 0) return 0;
    long long in = i % m.inner, rest = i / m.inner, d = rest % m.dim;
    if (m.mode == 1) return d;
    return ((rest / m.dim) * m.sdim + d / m.block) * m.inner + in;
}

// v rounded to float type t, as the reference's round_to.
__device__ double round_to(int t, double v) {
    switch (t) {
    case KC_F16:
        if (fabs(v) < 6.103515625e-05)
            return nearbyint((double)(float)v * 16777216.0) / 16777216.0;
        return (double)__half2float(__float2half_rn((float)v));
    case KC_BF16: return (double)__bfloat162float(__float2bfloat16_rn((float)v));
    case KC_F64: return v;
    default: return (double)(float)v;
    }
}

__device__ long long round_sat(double v, long long lo, long long hi) {
    if (v != v) return 0;
    double r = nearbyint(v);
    if (r <= (double)lo) return lo;
    if (r >= (double)hi) return hi;
    return (long long)r;
}

__device__ unsigned quant_one(const kc_qparams &p, const void *x, const void *s, const void *z,
                              long long i) {
    long long si = q_index(p.m, i);
    double xv = ld_num(x, i, p.xt), sv = ld_num(s, si, p.st);
    double q = p.prec == KC_F64
                   ? xv / sv
                   : round_to(p.prec, (double)((float)round_to(p.prec, xv) /
                                               (float)round_to(p.prec, sv)));
    double zp = z ? ld_num(z, si, p.zt) : 0.0;
    if (is_f8(p.yt)) return f8_encode(p.yt, (float)(q + zp), p.saturate != 0);
    if (p.yt == F4) return f4_encode((float)(q + zp));
    long long v = round_sat(nearbyint(q) + zp, p.lo, p.hi);
    return (unsigned)(unsigned long long)v;
}

__global__ void k_quantize(kc_qparams p, const void *x, const void *s, const void *z, void *y,
                           long long n) {
    bool packed = is_4bit(p.yt);
    long long units = packed ? (n + 1) / 2 : n;
    for (long long u = blockIdx.x * (long long)blockDim.x + threadIdx.x; u < units;
         u += (long long)gridDim.x * blockDim.x) {
        if (packed) {
            unsigned byte = quant_one(p, x, s, z, 2 * u) & 15u;
            if (2 * u + 1 < n) byte |= (quant_one(p, x, s, z, 2 * u + 1) & 15u) << 4;
            ((uint8_t *)y)[u] = (uint8_t)byte;
        } else if (is_f8(p.yt)) {
            ((uint8_t *)y)[u] = (uint8_t)quant_one(p, x, s, z, u);
        } else {
            // the value fits int32 (clamped to the target's range)
            kc_sti(y, u, p.yt, (long long)(int)quant_one(p, x, s, z, u));
        }
    }
}

__global__ void k_dequantize(kc_qparams p, const void *x, const void *s, const void *z, void *y,
                             long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        long long si = q_index(p.m, i);
        float dx = (float)ld_num(x, i, p.xt);
        if (z) dx -= (float)ld_num(z, si, p.zt);
        float v = dx * (float)ld_num(s, si, p.st);
        kc_stf(y, i, p.yt, v);
    }
}

// ---- per-tensor 8-bit QuantizeLinear / DequantizeLinear, 8 elements per
// thread (BERT-style graphs run one around every GEMM): float32 / float16 /
// bfloat16 values through 16-byte accesses, int8 / uint8 through 8-byte
// ones, no per-element type switch. The arithmetic is quant_one's and
// k_dequantize's for these types (precision float32: x / s rounded to
// float, rint, + zp, saturation; (x - zp) * s in float).
__device__ __forceinline__ void ld8(const float *p, long long v, float *f) {
    float4 a = reinterpret_cast<const float4 *>(p)[2 * v];
    float4 b = reinterpret_cast<const float4 *>(p)[2 * v + 1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ void ld8(const __half *p, long long v, float *f) {
    uint4 q = reinterpret_cast<const uint4 *>(p)[v];
    const __half *h = reinterpret_cast<const __half *>(&q);
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = __half2float(h[k]);
}
__device__ __forceinline__ void ld8(const __nv_bfloat16 *p, long long v, float *f) {
    uint4 q = reinterpret_cast<const uint4 *>(p)[v];
    const __nv_bfloat16 *h = reinterpret_cast<const __nv_bfloat16 *>(&q);
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = __bfloat162float(h[k]);
}
__device__ __forceinline__ void st8(float *p, long long v, const float *f) {
    reinterpret_cast<float4 *>(p)[2 * v] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4 *>(p)[2 * v + 1] = make_float4(f[4], f[5], f[6], f[7]);
}
__device__ __forceinline__ void st8(__half *p, long long v, const float *f) {
    uint4 q;
    __half *h = reinterpret_cast<__half *>(&q);
#pragma unroll
    for (int k = 0; k < 8; k++) h[k] = __float2half_rn(f[k]);
    reinterpret_cast<uint4 *>(p)[v] = q;
}
__device__ __forceinline__ void st8(__nv_bfloat16 *p, long long v, const float *f) {
    uint4 q;
    __nv_bfloat16 *h = reinterpret_cast<__nv_bfloat16 *>(&q);
#pragma unroll
    for (int k = 0; k < 8; k++) h[k] = __float2bfloat16_rn(f[k]);
    reinterpret_cast<uint4 *>(p)[v] = q;
}

template <class T>
__global__ void k_quant8_vec(const T *x, const float *s, const void *z, int sgn, uint2 *y,
                             long long n8) {
    float sv = *s;
    double zp = !z ? 0.0 : sgn ? (double)*(const int8_t *)z : (double)*(const uint8_t *)z;
    long long lo = sgn ? -128 : 0, hi = sgn ? 127 : 255;
    for (long long v = blockIdx.x * (long long)blockDim.x + threadIdx.x; v < n8;
         v += (long long)gridDim.x * blockDim.x) {
        float f[8];
        ld8(x, v, f);
        uint32_t w[2] = {0, 0};
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float q = __fdiv_rn(f[k], sv);
            long long c = round_sat(nearbyint((double)q) + zp, lo, hi);
            w[k / 4] |= (uint32_t)(uint8_t)c << (8 * (k % 4));
        }
        y[v] = make_uint2(w[0], w[1]);
    }
}

template <class T>
__global__ void k_dequant8_vec(const uint2 *x, const float *s, const void *z, int sgn, T *y,
                               long long n8) {
    float sv = *s;
    float zp = !z ? 0.0f : sgn ? (float)*(const int8_t *)z : (float)*(const uint8_t *)z;
    for (long long v = blockIdx.x * (long long)blockDim.x + threadIdx.x; v < n8;
         v += (long long)gridDim.x * blockDim.x) {
        uint2 q = x[v];
        float f[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t b = ((k < 4 ? q.x : q.y) >> (8 * (k % 4))) & 0xffu;
            float dx = sgn ? (float)(int8_t)b : (float)b;
            f[k] = __fmul_rn(__fsub_rn(dx, zp), sv);
        }
        st8(y, v, f);
    }
}

// DynamicQuantizeLinear: one block finds the range (always including 0),
// the scale and zero point; then every element is quantized with them.
__global__ void k_dynq_stats(const float *x, long long n, float *scale, uint8_t *zp, float *zpf) {
    __shared__ float smx[1024], smn[1024];
    float mx = 0.0f, mn = 0.0f;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        if (v > mx) mx = v;
        if (v < mn) mn = v;
    }
    smx[threadIdx.x] = mx;
    smn[threadIdx.x] = mn;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            if (smx[threadIdx.x + s] > smx[threadIdx.x]) smx[threadIdx.x] = smx[threadIdx.x + s];
            if (smn[threadIdx.x + s] < smn[threadIdx.x]) smn[threadIdx.x] = smn[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        mx = smx[0];
        mn = smn[0];
        float sc = __fdiv_rn(mx == mn ? 1.0f : __fsub_rn(mx, mn), 255.0f);
        float izp = __fsub_rn(0.0f, __fdiv_rn(mn, sc));
        float z = izp < 0 ? 0.0f : izp > 255 ? 255.0f : izp;
        float zpi = nearbyintf(z);
        *scale = sc;
        *zpf = zpi;
        *zp = (uint8_t)round_sat(zpi, 0, 255);
    }
}

__global__ void k_dynq_apply(const float *x, long long n, const float *scale, const float *zpf,
                             uint8_t *y) {
    float sc = *scale, zpi = *zpf;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = (uint8_t)round_sat((double)__fadd_rn(nearbyintf(__fdiv_rn(x[i], sc)), zpi), 0,
                                  255);
}

} // namespace

extern "C" cudaError_t kc_dynamic_quantize(const float *x, int64_t n, uint8_t *y, float *scale,
                                           uint8_t *zp, float *scratch, cudaStream_t st) {
    k_dynq_stats<<<1, 1024, 0, st>>>(x, (long long)n, scale, zp, scratch);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || n <= 0) return e;
    k_dynq_apply<<<kc_blocks(n, 256), 256, 0, st>>>(x, (long long)n, scale, scratch, y);
    return cudaGetLastError();
}

static bool al_to(const void *p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }
extern "C" int kc_q8_fast(void); // qconv.cu: the opt-in for these vector paths
static bool vec_float(int t) { return t == KC_F32 || t == KC_F16 || t == KC_BF16; }

extern "C" cudaError_t kc_quantize(const kc_qparams *p, const void *x, const void *s,
                                   const void *z, void *y, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (kc_q8_fast() && p->m.mode == 0 && p->prec == KC_F32 && p->st == KC_F32 &&
        vec_float(p->xt) &&
        (p->yt == KC_I8 || p->yt == KC_U8) && (!z || p->zt == p->yt) && n % 8 == 0 &&
        al_to(x, 16) && al_to(y, 8)) {
        int sgn = p->yt == KC_I8;
        unsigned g = kc_blocks(n / 8, 256);
        const float *sf = (const float *)s;
        if (p->xt == KC_F32)
            k_quant8_vec<<<g, 256, 0, st>>>((const float *)x, sf, z, sgn, (uint2 *)y, n / 8);
        else if (p->xt == KC_F16)
            k_quant8_vec<<<g, 256, 0, st>>>((const __half *)x, sf, z, sgn, (uint2 *)y, n / 8);
        else
            k_quant8_vec<<<g, 256, 0, st>>>((const __nv_bfloat16 *)x, sf, z, sgn, (uint2 *)y,
                                            n / 8);
        return cudaGetLastError();
    }
    bool packed = p->yt == U4 || p->yt == I4 || p->yt == F4;
    long long units = packed ? (n + 1) / 2 : n;
    k_quantize<<<kc_blocks(units, 256), 256, 0, st>>>(*p, x, s, z, y, (long long)n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_dequantize(const kc_qparams *p, const void *x, const void *s,
                                     const void *z, void *y, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (kc_q8_fast() && p->m.mode == 0 && p->st == KC_F32 &&
        (p->xt == KC_I8 || p->xt == KC_U8) &&
        (!z || p->zt == p->xt) && vec_float(p->yt) && n % 8 == 0 && al_to(x, 8) &&
        al_to(y, 16)) {
        int sgn = p->xt == KC_I8;
        unsigned g = kc_blocks(n / 8, 256);
        const float *sf = (const float *)s;
        const uint2 *xv = (const uint2 *)x;
        if (p->yt == KC_F32)
            k_dequant8_vec<<<g, 256, 0, st>>>(xv, sf, z, sgn, (float *)y, n / 8);
        else if (p->yt == KC_F16)
            k_dequant8_vec<<<g, 256, 0, st>>>(xv, sf, z, sgn, (__half *)y, n / 8);
        else
            k_dequant8_vec<<<g, 256, 0, st>>>(xv, sf, z, sgn, (__nv_bfloat16 *)y, n / 8);
        return cudaGetLastError();
    }
    k_dequantize<<<kc_blocks(n, 256), 256, 0, st>>>(*p, x, s, z, y, (long long)n);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_cast_small(int dts, int dtd, int saturate, const void *x, void *y,
                                     int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    long long units = (dtd == U4 || dtd == I4 || dtd == F4) ? (n + 1) / 2 : n;
    k_cast_small<<<kc_blocks(units, 256), 256, 0, st>>>(dts, dtd, saturate, x, y, (long long)n);
    return cudaGetLastError();
}
