/* dtype_small.c: 8-bit and 4-bit float formats (float8 e4m3fn/e4m3fnuz/
** e5m2/e5m2fnuz, float4 e2m1) with round-to-nearest-even encoding and the
** saturate / overflow rules of ONNX Cast, and float8e8m0 (exponent only). */
#include "tensor.h"

#include <math.h>
#include <string.h>

/* Layout of one small format: mantissa bits, exponent bias and the largest
** finite magnitude code. The exponent field is whatever lies above. */
typedef struct small_fmt {
    int mbits, bias;
    unsigned maxcode;
    bool fnuz;      /* no negative zero, 0x80 is the only NaN */
    bool has_inf;   /* e5m2: exponent all ones is inf/NaN */
} small_fmt;

static bool fmt_of(kiln_dtype t, small_fmt *f) {
    switch (t) {
    case KILN_DTYPE_FLOAT8E4M3FN: *f = (small_fmt){3, 7, 0x7e, false, false}; return true;
    case KILN_DTYPE_FLOAT8E4M3FNUZ: *f = (small_fmt){3, 8, 0x7f, true, false}; return true;
    case KILN_DTYPE_FLOAT8E5M2: *f = (small_fmt){2, 15, 0x7b, false, true}; return true;
    case KILN_DTYPE_FLOAT8E5M2FNUZ: *f = (small_fmt){2, 16, 0x7f, true, false}; return true;
    default: return false;
    }
}

/* Magnitude code of a finite ax >= 0 rounded to nearest even; may exceed the
** format's max code (the caller decides between saturation and overflow).
** Works for subnormals too: a subnormal whose rounding carries into the
** smallest normal lands on the right code because codes are contiguous. */
static uint64_t encode_mag(double ax, int mbits, int bias) {
    if (ax == 0) return 0;
    int e;
    (void)frexp(ax, &e);
    int E = e - 1; /* ax in [2^E, 2^(E+1)) */
    int emin = 1 - bias;
    bool sub = E < emin;
    int qexp = (sub ? emin : E) - mbits; /* weight of one mantissa ulp */
    double y = ldexp(ax, -qexp);         /* exact: power-of-two scaling */
    /* y < 2^(mbits+1), so the integer part always fits. */
    double fl = floor(y), d = y - fl;
    uint64_t q = (uint64_t)fl;
    if (d > 0.5 || (d == 0.5 && (q & 1))) q++;
    if (sub) return q;
    return ((uint64_t)(E + bias) << mbits) + q - ((uint64_t)1 << mbits);
}

static float decode_mag(unsigned code, int mbits, int bias) {
    unsigned ex = code >> mbits, m = code & ((1u << mbits) - 1);
    if (ex == 0) return (float)ldexp((double)m, 1 - bias - mbits);
    return (float)ldexp((double)(m | (1u << mbits)), (int)ex - bias - mbits);
}

float fp8_to_f32(kiln_dtype t, uint8_t v) {
    small_fmt f;
    if (!fmt_of(t, &f)) return NAN;
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
    float r = decode_mag(v & 0x7fu, f.mbits, f.bias);
    return (v & 0x80) ? -r : r;
}

uint8_t f32_to_fp8(kiln_dtype t, float x, bool saturate) {
    small_fmt f;
    if (!fmt_of(t, &f)) return 0;
    uint8_t sign = signbit(x) ? 0x80 : 0;
    uint8_t nan = f.fnuz ? 0x80 : (uint8_t)(sign | (f.has_inf ? 0x7e : 0x7f));
    /* What an out-of-range value becomes without saturation. */
    uint8_t ovf = f.fnuz ? 0x80 : f.has_inf ? (uint8_t)(sign | 0x7c) : nan;
    if (isnan(x)) return nan;
    if (isinf(x)) return saturate ? (uint8_t)(sign | f.maxcode) : ovf;
    uint64_t code = encode_mag(fabs((double)x), f.mbits, f.bias);
    if (code > f.maxcode) return saturate ? (uint8_t)(sign | f.maxcode) : ovf;
    if (code == 0 && f.fnuz) return 0; /* no negative zero */
    return (uint8_t)(sign | code);
}

float fp4e2m1_to_f32(uint8_t nibble) {
    float r = decode_mag(nibble & 7u, 1, 1);
    return (nibble & 8) ? -r : r;
}

/* float4 has neither inf nor NaN: out-of-range values saturate to +-6.
** NaN has no encoding; like the ONNX reference (ml_dtypes) it becomes a
** zero with the sign bit flipped. */
uint8_t f32_to_fp4e2m1(float x) {
    uint8_t sign = signbit(x) ? 8 : 0;
    if (isnan(x)) return (uint8_t)(sign ^ 8);
    if (isinf(x)) return (uint8_t)(sign | 7);
    uint64_t code = encode_mag(fabs((double)x), 1, 1);
    if (code > 7) code = 7;
    return (uint8_t)(sign | code);
}

/* ---- float8e8m0: a biased power-of-two exponent, nothing else */
float e8m0_to_f32(uint8_t v) {
    if (v == 255) return NAN;
    return ldexpf(1.0f, (int)v - 127);
}

uint8_t f32_to_e8m0(float f, bool saturate, int round_mode) {
    if (isnan(f)) return 255;
    if (isinf(f)) return saturate ? 254 : 255;
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t e = (b >> 23) & 0xff, m = b & 0x7fffff;
    /* the sign is dropped: the format has none */
    bool up = round_mode == E8M0_ROUND_UP ? m != 0
              : round_mode == E8M0_ROUND_NEAREST ? m >= 0x400000 : false;
    if (up) e++;
    if (e > 254) e = saturate ? 254 : 255;
    return (uint8_t)e;
}
