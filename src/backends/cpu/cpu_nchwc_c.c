/* cpu_nchwc_c.c: portable C instances of the Winograd kernels
** (cpu_wino_tmpl.h) for blocks 8 and 16. A "vector" is a struct of b floats
** and each macro a loop over its lanes, which the compiler vectorizes as far
** as the baseline ISA allows. Hosts without AVX2 get no blocked layout today
** (passes/nchwc.c), so this is the fallback behind the ISA tactics and a
** second instance of the template that the tests run on every host. */
#include "cpu_nchwc.h"

#include <string.h>

#define NC_INLINE static inline __attribute__((always_inline))

#define WC_OPS(B)                                                                    \
    typedef struct wc##B##_vec {                                                     \
        float v[B];                                                                  \
    } wc##B##_vec;                                                                   \
    NC_INLINE wc##B##_vec wc##B##_load(const float *p) {                             \
        wc##B##_vec r;                                                               \
        memcpy(r.v, p, sizeof r.v);                                                  \
        return r;                                                                    \
    }                                                                                \
    NC_INLINE void wc##B##_store(float *p, wc##B##_vec a) { memcpy(p, a.v, sizeof a.v); } \
    NC_INLINE wc##B##_vec wc##B##_set1(float x) {                                    \
        wc##B##_vec r;                                                               \
        for (int i = 0; i < B; i++) r.v[i] = x;                                      \
        return r;                                                                    \
    }                                                                                \
    NC_INLINE wc##B##_vec wc##B##_add(wc##B##_vec a, wc##B##_vec b) {                \
        for (int i = 0; i < B; i++) a.v[i] += b.v[i];                                \
        return a;                                                                    \
    }                                                                                \
    NC_INLINE wc##B##_vec wc##B##_sub(wc##B##_vec a, wc##B##_vec b) {                \
        for (int i = 0; i < B; i++) a.v[i] -= b.v[i];                                \
        return a;                                                                    \
    }                                                                                \
    NC_INLINE wc##B##_vec wc##B##_fma(wc##B##_vec a, wc##B##_vec b, wc##B##_vec c) {  \
        for (int i = 0; i < B; i++) c.v[i] += a.v[i] * b.v[i];                       \
        return c;                                                                    \
    }                                                                                \
    /* bias added already; residual, then the scalar activation formulas */          \
    static inline wc##B##_vec wc##B##_epi(const cpu_nchwc_job *j, wc##B##_vec a,     \
                                          const float *z) {                          \
        for (int i = 0; i < B; i++)                                                  \
            a.v[i] = fused_act_f32(&j->fact, z ? a.v[i] + z[i] : a.v[i]);            \
        return a;                                                                    \
    }

WC_OPS(8)
WC_OPS(16)

#define NC_LOAD(p) WC(load)(p)
#define NC_STORE(p, a) WC(store)((p), (a))
#define NC_SET1(x) WC(set1)(x)
#define NC_ZERO() WC(set1)(0.0f)
#define NC_ADD(a, b) WC(add)((a), (b))
#define NC_SUB(a, b) WC(sub)((a), (b))
#define NC_FMA(a, b, c) WC(fma)((a), (b), (c))
#define WN_T 4
#define WN_OB 2

#define NC_B 8
#define NC_VEC wc8_vec
#define WC(op) wc8_##op
#define NC_FN(name) f32_nchwc_##name##_c8
#define f32_nchwc_epi_c8 wc8_epi
#include "cpu_wino_tmpl.h"
#undef NC_B
#undef NC_VEC
#undef WC
#undef NC_FN

#define NC_B 16
#define NC_VEC wc16_vec
#define WC(op) wc16_##op
#define NC_FN(name) f32_nchwc_##name##_c16
#define f32_nchwc_epi_c16 wc16_epi
#include "cpu_wino_tmpl.h"

static const cpu_wino_kernels wk_c8 = {8, WN_OB, WN_T, "c", f32_nchwc_wino_chunk_c8};
static const cpu_wino_kernels wk_c16 = {16, WN_OB, WN_T, "c", f32_nchwc_wino_chunk_c16};

const cpu_wino_kernels *cpu_wino_kernels_c(int64_t block) {
    return block == 8 ? &wk_c8 : block == 16 ? &wk_c16 : NULL;
}
