/* dtype.c: element type facts, half/bfloat16 conversions and generic
** element access used by the reference kernels. */
#include "tensor.h"

#include <math.h>

static const struct {
    const char *name;
    size_t size;
} k_dtypes[KILN_DTYPE_COUNT_] = {
    [KILN_DTYPE_UNDEFINED] = {"undefined", 0},
    [KILN_DTYPE_FLOAT32] = {"float32", 4},
    [KILN_DTYPE_UINT8] = {"uint8", 1},
    [KILN_DTYPE_INT8] = {"int8", 1},
    [KILN_DTYPE_UINT16] = {"uint16", 2},
    [KILN_DTYPE_INT16] = {"int16", 2},
    [KILN_DTYPE_INT32] = {"int32", 4},
    [KILN_DTYPE_INT64] = {"int64", 8},
    [KILN_DTYPE_STRING] = {"string", 0},
    [KILN_DTYPE_BOOL] = {"bool", 1},
    [KILN_DTYPE_FLOAT16] = {"float16", 2},
    [KILN_DTYPE_FLOAT64] = {"float64", 8},
    [KILN_DTYPE_UINT32] = {"uint32", 4},
    [KILN_DTYPE_UINT64] = {"uint64", 8},
    [KILN_DTYPE_COMPLEX64] = {"complex64", 8},
    [KILN_DTYPE_COMPLEX128] = {"complex128", 16},
    [KILN_DTYPE_BFLOAT16] = {"bfloat16", 2},
    [KILN_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 1},
    [KILN_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1},
    [KILN_DTYPE_FLOAT8E5M2] = {"float8e5m2", 1},
    [KILN_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1},
    [KILN_DTYPE_UINT4] = {"uint4", 0},
    [KILN_DTYPE_INT4] = {"int4", 0},
    [KILN_DTYPE_FLOAT4E2M1] = {"float4e2m1", 0},
    [KILN_DTYPE_FLOAT8E8M0] = {"float8e8m0", 1},
    [KILN_DTYPE_UINT2] = {"uint2", 0},
    [KILN_DTYPE_INT2] = {"int2", 0},
};

/* a gap in the ONNX numbering would have no name */
bool dtype_is_valid(int t) { return t > 0 && t < KILN_DTYPE_COUNT_ && k_dtypes[t].name; }

const char *kiln_dtype_name(kiln_dtype t) {
    if ((int)t < 0 || t >= KILN_DTYPE_COUNT_ || !k_dtypes[t].name) return "invalid";
    return k_dtypes[t].name;
}

size_t kiln_dtype_size(kiln_dtype t) {
    if ((int)t < 0 || t >= KILN_DTYPE_COUNT_) return 0;
    return k_dtypes[t].size;
}

bool dtype_is_float(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_FLOAT64:
    case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT4E2M1: case KILN_DTYPE_FLOAT8E8M0:
        return true;
    default:
        return false;
    }
}

bool dtype_is_signed_int(kiln_dtype t) {
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_INT16 ||
           t == KILN_DTYPE_INT32 || t == KILN_DTYPE_INT64 ||
           t == KILN_DTYPE_INT4 || t == KILN_DTYPE_INT2;
}

bool dtype_is_int(kiln_dtype t) {
    return dtype_is_signed_int(t) || t == KILN_DTYPE_UINT8 ||
           t == KILN_DTYPE_UINT16 || t == KILN_DTYPE_UINT32 ||
           t == KILN_DTYPE_UINT64 || t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_UINT2;
}

bool dtype_is_numeric(kiln_dtype t) {
    return dtype_is_float(t) || dtype_is_int(t);
}

bool dtype_nbytes(kiln_dtype t, int64_t n, size_t *out) {
    if (n < 0) return false;
    if (t == KILN_DTYPE_UINT2 || t == KILN_DTYPE_INT2) {
        *out = (size_t)(n / 4 + ((n & 3) != 0));
        return true;
    }
    if (t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_INT4 ||
        t == KILN_DTYPE_FLOAT4E2M1) {
        *out = (size_t)(n / 2 + (n & 1));
        return true;
    }
    size_t es = kiln_dtype_size(t);
    if (es == 0) return false;
    return !kiln_mul_overflow((size_t)n, es, out) && *out <= KILN_MAX_ALLOC;
}

/* ---- half precision */
float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) |
                   ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00; /* NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* overflow -> inf */
    if (ax < 0x38800000u) { /* subnormal or zero in half */
        if (ax < 0x33000000u) return sign; /* below half of min subnormal */
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        int shift = (int)(126 - e); /* value is m * 2^(e-150); half step 2^-24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | (uint16_t)r;
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return sign | (uint16_t)r;
}

float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fff + lsb;
    return (uint16_t)(x >> 16);
}

int64_t f64_to_i64_sat(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

double dt_get_f64(kiln_dtype t, const void *base, size_t i) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: return ((const float *)base)[i];
    case KILN_DTYPE_FLOAT64: return ((const double *)base)[i];
    case KILN_DTYPE_FLOAT16: return f16_to_f32(((const uint16_t *)base)[i]);
    case KILN_DTYPE_BFLOAT16: return bf16_to_f32(((const uint16_t *)base)[i]);
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ:
        return fp8_to_f32(t, ((const uint8_t *)base)[i]);
    case KILN_DTYPE_FLOAT8E8M0: return e8m0_to_f32(((const uint8_t *)base)[i]);
    case KILN_DTYPE_FLOAT4E2M1: {
        uint8_t b = ((const uint8_t *)base)[i / 2];
        return fp4e2m1_to_f32((i & 1) ? (b >> 4) : (b & 15));
    }
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)base)[i];
    default: return (double)dt_get_i64(t, base, i);
    }
}

void dt_set_f64(kiln_dtype t, void *base, size_t i, double v) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: ((float *)base)[i] = (float)v; return;
    case KILN_DTYPE_FLOAT64: ((double *)base)[i] = v; return;
    case KILN_DTYPE_FLOAT16: ((uint16_t *)base)[i] = f32_to_f16((float)v); return;
    case KILN_DTYPE_BFLOAT16:
        ((uint16_t *)base)[i] = f32_to_bf16((float)v);
        return;
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ:
        ((uint8_t *)base)[i] = f32_to_fp8(t, (float)v, true);
        return;
    case KILN_DTYPE_FLOAT8E8M0:
        ((uint8_t *)base)[i] = f32_to_e8m0((float)v, true, E8M0_ROUND_UP);
        return;
    case KILN_DTYPE_FLOAT4E2M1: {
        uint8_t *b = (uint8_t *)base + i / 2, q = f32_to_fp4e2m1((float)v);
        *b = (i & 1) ? (uint8_t)((*b & 15) | (q << 4))
                     : (uint8_t)((*b & 0xf0) | q);
        return;
    }
    case KILN_DTYPE_BOOL: ((uint8_t *)base)[i] = v != 0; return;
    case KILN_DTYPE_UINT64:
        ((uint64_t *)base)[i] = v != v || v <= 0 ? 0
                              : v >= 18446744073709551615.0 ? UINT64_MAX
                              : (uint64_t)v;
        return;
    default: dt_set_i64(t, base, i, f64_to_i64_sat(v)); return;
    }
}

int64_t dt_get_i64(kiln_dtype t, const void *base, size_t i) {
    switch (t) {
    case KILN_DTYPE_INT64: return ((const int64_t *)base)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)base)[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)base)[i];
    case KILN_DTYPE_INT8: return ((const int8_t *)base)[i];
    case KILN_DTYPE_UINT8: case KILN_DTYPE_BOOL: return ((const uint8_t *)base)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)base)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)base)[i];
    case KILN_DTYPE_UINT64: return (int64_t)((const uint64_t *)base)[i];
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: {
        uint8_t b = ((const uint8_t *)base)[i / 2];
        int v = (i & 1) ? (b >> 4) : (b & 15);
        if (t == KILN_DTYPE_INT4 && v >= 8) v -= 16;
        return v;
    }
    case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2: {
        uint8_t b = ((const uint8_t *)base)[i / 4];
        int v = (b >> (2 * (i & 3))) & 3;
        if (t == KILN_DTYPE_INT2 && v >= 2) v -= 4;
        return v;
    }
    default: return f64_to_i64_sat(dt_get_f64(t, base, i));
    }
}

void dt_set_i64(kiln_dtype t, void *base, size_t i, int64_t v) {
    switch (t) {
    case KILN_DTYPE_INT64: ((int64_t *)base)[i] = v; return;
    case KILN_DTYPE_INT32: ((int32_t *)base)[i] = (int32_t)(uint32_t)v; return;
    case KILN_DTYPE_INT16: ((int16_t *)base)[i] = (int16_t)(uint16_t)v; return;
    case KILN_DTYPE_INT8: ((int8_t *)base)[i] = (int8_t)(uint8_t)v; return;
    case KILN_DTYPE_UINT8: ((uint8_t *)base)[i] = (uint8_t)v; return;
    case KILN_DTYPE_BOOL: ((uint8_t *)base)[i] = v != 0; return;
    case KILN_DTYPE_UINT16: ((uint16_t *)base)[i] = (uint16_t)v; return;
    case KILN_DTYPE_UINT32: ((uint32_t *)base)[i] = (uint32_t)v; return;
    case KILN_DTYPE_UINT64: ((uint64_t *)base)[i] = (uint64_t)v; return;
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: {
        uint8_t *b = (uint8_t *)base + i / 2;
        int64_t c = t == KILN_DTYPE_INT4 ? clamp_i64(v, -8, 7)
                                         : clamp_i64(v, 0, 15);
        uint8_t q = (uint8_t)(c & 15);
        *b = (i & 1) ? (uint8_t)((*b & 15) | (q << 4))
                     : (uint8_t)((*b & 0xf0) | q);
        return;
    }
    case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2: {
        uint8_t *b = (uint8_t *)base + i / 4;
        int64_t c = t == KILN_DTYPE_INT2 ? clamp_i64(v, -2, 1) : clamp_i64(v, 0, 3);
        int sh = 2 * (int)(i & 3);
        *b = (uint8_t)((*b & ~(3u << sh)) | ((unsigned)(c & 3) << sh));
        return;
    }
    default: dt_set_f64(t, base, i, (double)v); return;
    }
}
