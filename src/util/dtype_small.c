/* dtype_small.c: 8-bit and 4-bit float formats (float8 e4m3fn/e4m3fnuz/
** e5m2/e5m2fnuz, float4 e2m1). Placeholder until the Cast work lands. */
#include "tensor.h"

float fp8_to_f32(kiln_dtype t, uint8_t v) { (void)t; (void)v; return 0.0f; }
uint8_t f32_to_fp8(kiln_dtype t, float f, bool saturate) {
    (void)t; (void)f; (void)saturate; return 0;
}
float fp4e2m1_to_f32(uint8_t nibble) { (void)nibble; return 0.0f; }
uint8_t f32_to_fp4e2m1(float f) { (void)f; return 0; }
