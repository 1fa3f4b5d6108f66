// attn_flash.cu: fused ("flash") attention for FP16/BF16 on tensor cores.
// The attention layer's other tactic (cuda_attn.c, cuBLASLt) writes a
// float32 score matrix of B*H*S*S and reads it back through a softmax
// kernel; this one keeps the scores in registers. A block takes 64 query
// rows of one head (4 warps x 16 rows) and loops over the keys 64 at a
// time: K and V tiles are staged in shared memory, each warp computes its
// 16x64 scores with mma.sync m16n8k16 (FP32 accumulation), applies scale,
// softcap, mask and causal limits, updates the running row max and sum
// (online softmax, FP32, exp2 of differences times log2 e), rescales its output
// accumulators, and multiplies the probabilities (rounded to the input
// type, straight from the score registers into A fragments) by V.
// Fragment layouts are the PTX ISA's for mma.m16n8k16 with .f16/.bf16:
// with g = lane / 4 and c = lane % 4,
//   A (16x16, row): reg0 = A[g][2c..2c+1], reg1 = A[g+8][2c..], reg2 =
//                   A[g][2c+8..], reg3 = A[g+8][2c+8..]
//   B (16x8, col):  reg0 = B[2c..2c+1][g], reg1 = B[2c+8..2c+9][g]
//   C (16x8, f32):  c0,c1 = C[g][2c..2c+1], c2,c3 = C[g+8][2c..2c+1]
// (the lower 16 bits of a register hold the lower column / row index).
// Two kernels share these helpers: k_attn_flash (v1, described above) and
// v2::k_attn_flash2, the default (see its comment: ldmatrix fragments, a
// cp.async K/V pipeline, masks folded per key tile, scores in log2 units).
// k_attn_flash2 is instantiated at 4 warps (v2: 64 query rows a block) and,
// for head dims 32 and 64, at 8 warps (v3: 128 rows, so that at S <= 128 one
// block takes a whole head and K/V are read once; kernel = 2, chosen by the
// tactic for large grids). v1 stays for A/B timing (kc_attn_flash_args.kernel
// = 1) and for the inputs v2 does not take (rows not 16-byte aligned, masks
// with a key stride other than 1).
#include "attn_kernels.h"
#include "gemm_act.cuh"

#include <math.h>
#include <stdint.h>

namespace {

constexpr int kBM = 64;  // query rows per block (v1, v2; v3 takes 128)
constexpr int kBN = 64;  // keys per step
static_assert(kBM == kBN, "v1 stages Q through the K tile buffer");
constexpr int kWarps = kBM / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kPad = 8;  // halves of padding per shared row (bank spread, 16 B rows)
constexpr float kLog2e = 1.4426950408889634f;

template <typename T> struct elt;
template <> struct elt<__half> {
    static __device__ __forceinline__ uint32_t bits(float v) {
        return __half_as_ushort(__float2half_rn(v));
    }
    static __device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct elt<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t bits(float v) {
        return __bfloat16_as_ushort(__float2bfloat16_rn(v));
    }
    static __device__ __forceinline__ void mma(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    return elt<T>::bits(lo) | (elt<T>::bits(hi) << 16);
}

// Copies rows [0, rows) of a kBN x D tile (row stride ss elements) into
// shared memory (row stride D + kPad); rows past it are zero. vec: the
// source rows are 16-byte aligned.
template <int D>
__device__ __forceinline__ void load_tile(uint16_t *sm, const uint16_t *g, int64_t ss, int rows,
                                          bool vec) {
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    for (int c = threadIdx.x; c < kBN * kChunks; c += kThreads) {
        int r = c / kChunks, col = (c % kChunks) * 8;
        uint16_t *dst = sm + r * (D + kPad) + col;
        if (r < rows) {
            const uint16_t *src = g + (int64_t)r * ss + col;
            if (vec) {
                *reinterpret_cast<uint4 *>(dst) = __ldg(reinterpret_cast<const uint4 *>(src));
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++) dst[j] = src[j];
            }
        } else {
            *reinterpret_cast<uint4 *>(dst) = make_uint4(0u, 0u, 0u, 0u);
        }
    }
}

// Score x (already scaled and capped) with the mask at element offset mo.
__device__ __forceinline__ float apply_mask(const kc_attn_flash_args &a, int64_t mo, float x) {
    if (a.mask_kind == KC_MASK_BOOL)
        return reinterpret_cast<const unsigned char *>(a.mask)[mo] ? x : -INFINITY;
    if (a.mask_dtype == KC_F16) return x + __half2float(reinterpret_cast<const __half *>(a.mask)[mo]);
    if (a.mask_dtype == KC_BF16)
        return x + __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(a.mask)[mo]);
    return x + reinterpret_cast<const float *>(a.mask)[mo];
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    k_attn_flash(const kc_attn_flash_args a, int64_t n_qtiles, bool vec) {
    constexpr int kLds = D + kPad;
    __shared__ __align__(16) uint16_t ks[kBN * kLds];
    __shared__ __align__(16) uint16_t vs[kBN * kLds];

    const int64_t blk = blockIdx.x;
    const int64_t qt = blk % n_qtiles, bh = blk / n_qtiles;
    const int64_t h = bh % a.hq, b = bh / a.hq;
    const int64_t kh = h / (a.hq / a.hkv);
    const int64_t q0 = qt * kBM;
    const uint16_t *Q = reinterpret_cast<const uint16_t *>(a.q) + b * a.q_sb + h * a.q_sh;
    const uint16_t *K = reinterpret_cast<const uint16_t *>(a.k) + b * a.k_sb + kh * a.k_sh;
    const uint16_t *V = reinterpret_cast<const uint16_t *>(a.v) + b * a.v_sb + kh * a.v_sh;
    uint16_t *Y = reinterpret_cast<uint16_t *>(a.y) + b * a.y_sb + h * a.y_sh;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c4 = lane & 3;

    // Q fragments, staged through ks (rows past Sq are zero)
    {
        int64_t left = a.sq - q0;
        load_tile<D>(ks, Q + q0 * a.q_ss, a.q_ss, left < kBM ? (int)left : kBM, vec);
    }
    __syncthreads();
    const int r0 = warp * 16 + g;  // this thread's rows in the tile: r0, r0 + 8
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const uint16_t *p0 = ks + r0 * kLds + kk * 16 + 2 * c4;
        const uint16_t *p1 = p0 + 8 * kLds;
        qf[kk][0] = *reinterpret_cast<const uint32_t *>(p0);
        qf[kk][1] = *reinterpret_cast<const uint32_t *>(p1);
        qf[kk][2] = *reinterpret_cast<const uint32_t *>(p0 + 8);
        qf[kk][3] = *reinterpret_cast<const uint32_t *>(p1 + 8);
    }
    const int64_t i0 = q0 + r0, i1 = i0 + 8;
    const bool live0 = i0 < a.sq, live1 = i1 < a.sq;

    // keys past kend are masked for every row of this block
    int64_t kend = a.t;
    if (a.mask_kind != KC_MASK_NONE && a.mlast < kend) kend = a.mlast;
    if (a.valid) {
        int64_t v = a.valid[b];
        v = v < 0 ? 0 : v;
        if (v < kend) kend = v;
    }
    if (a.causal && q0 + kBM < kend) kend = q0 + kBM;
    int64_t mb0 = 0, mb1 = 0;
    if (a.mask_kind != KC_MASK_NONE) {
        mb0 = b * a.mst[0] + h * a.mst[1] + i0 * a.mst[2];
        mb1 = mb0 + 8 * a.mst[2];
    }

    float o[D / 8][4];
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int64_t kb = 0; kb < kend; kb += kBN) {
        __syncthreads();  // every warp is done with the previous tiles (and Q)
        {
            int64_t left = kend - kb;
            int rows = left < kBN ? (int)left : kBN;
            load_tile<D>(ks, K + kb * a.k_ss, a.k_ss, rows, vec);
            load_tile<D>(vs, V + kb * a.v_ss, a.v_ss, rows, vec);
        }
        __syncthreads();

        float s[kBN / 8][4];
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int nt = 0; nt < kBN / 8; nt++) {
                // B[k][n] = K[key n][dim k]: two dims of one key row per register
                const uint16_t *kp = ks + (nt * 8 + g) * kLds + kk * 16 + 2 * c4;
                elt<T>::mma(s[nt], qf[kk], *reinterpret_cast<const uint32_t *>(kp),
                            *reinterpret_cast<const uint32_t *>(kp + 8));
            }
        }

        // scale, cap, mask; the tile's row maxima. Scores stay in natural
        // units: a float32 mask of finfo.min times log2(e) would overflow
        // to -inf, and a row masked that way everywhere must stay uniform.
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t key = kb + nt * 8 + 2 * c4 + (e & 1);
                const bool top = e < 2;
                float x = s[nt][e] * a.scale;
                if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
                if (key >= kend) {
                    x = -INFINITY;
                } else if (top ? live0 : live1) {  // rows past Sq: no mask reads
                    if (a.mask_kind != KC_MASK_NONE)
                        x = apply_mask(a, (top ? mb0 : mb1) + key * a.mst[3], x);
                    if (a.causal && key > (top ? i0 : i1)) x = -INFINITY;
                }
                s[nt][e] = x;
                if (top) mx0 = fmaxf(mx0, x);
                else mx1 = fmaxf(mx1, x);
            }
        }
        // the four lanes of a quad hold the same two rows
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        // a row with nothing live yet keeps exponent base 0: its p are all 0
        const float u0 = n0 == -INFINITY ? 0.0f : n0, u1 = n1 == -INFINITY ? 0.0f : n1;
        const float al0 = exp2f((m0 - u0) * kLog2e), al1 = exp2f((m1 - u1) * kLog2e);
        m0 = n0, m1 = n1;
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) {
            s[nt][0] = exp2f((s[nt][0] - u0) * kLog2e);
            s[nt][1] = exp2f((s[nt][1] - u0) * kLog2e);
            s[nt][2] = exp2f((s[nt][2] - u1) * kLog2e);
            s[nt][3] = exp2f((s[nt][3] - u1) * kLog2e);
            ps0 += s[nt][0] + s[nt][1];
            ps1 += s[nt][2] + s[nt][3];
        }
        l0 = l0 * al0 + ps0;  // per-lane partial sums; the quad adds them at the end
        l1 = l1 * al1 + ps1;
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) {
            o[nt][0] *= al0, o[nt][1] *= al0;
            o[nt][2] *= al1, o[nt][3] *= al1;
        }

        // O += P V: P's C fragments of key tiles 2j, 2j+1 are the A
        // fragment of k-step j
#pragma unroll
        for (int j = 0; j < kBN / 16; j++) {
            uint32_t pa[4];
            pa[0] = pack2<T>(s[2 * j][0], s[2 * j][1]);
            pa[1] = pack2<T>(s[2 * j][2], s[2 * j][3]);
            pa[2] = pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
            pa[3] = pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
            for (int nt = 0; nt < D / 8; nt++) {
                // B[k][n] = V[key k][dim n]: two keys of one dim per register
                const uint16_t *vp = vs + (j * 16 + 2 * c4) * kLds + nt * 8 + g;
                uint32_t b0 = (uint32_t)vp[0] | ((uint32_t)vp[kLds] << 16);
                uint32_t b1 = (uint32_t)vp[8 * kLds] | ((uint32_t)vp[9 * kLds] << 16);
                elt<T>::mma(o[nt], pa, b0, b1);
            }
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    // l == 0 (every column masked): 0 * inf = NaN, as the reference, or 0
    // with dead_zero (a live column contributes exp2(0) = 1 to l)
    const float inv0 = a.dead_zero && l0 == 0.0f ? 0.0f : 1.0f / l0;
    const float inv1 = a.dead_zero && l1 == 0.0f ? 0.0f : 1.0f / l1;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        const int d = nt * 8 + 2 * c4;
        if (live0) {
            uint16_t *yp = Y + i0 * a.y_ss + d;
            if (vec) {
                *reinterpret_cast<uint32_t *>(yp) = pack2<T>(o[nt][0] * inv0, o[nt][1] * inv0);
            } else {
                yp[0] = (uint16_t)elt<T>::bits(o[nt][0] * inv0);
                yp[1] = (uint16_t)elt<T>::bits(o[nt][1] * inv0);
            }
        }
        if (live1) {
            uint16_t *yp = Y + i1 * a.y_ss + d;
            if (vec) {
                *reinterpret_cast<uint32_t *>(yp) = pack2<T>(o[nt][2] * inv1, o[nt][3] * inv1);
            } else {
                yp[0] = (uint16_t)elt<T>::bits(o[nt][2] * inv1);
                yp[1] = (uint16_t)elt<T>::bits(o[nt][3] * inv1);
            }
        }
    }
}

// ---------------------------------------------------------------- kernel v2
// The same math as k_attn_flash (v1, kept for A/B: kc_attn_flash_args.kernel
// = 1), with the shared-memory traffic and the per-element work cut down:
//  - Q fragments loaded once with ldmatrix.x4, K fragments with ldmatrix.x4
//    (two 8-key tiles per load), V fragments with ldmatrix.x4.trans (v1 built
//    each V register from two 16-bit shared loads);
//  - Q, K and V tiles arrive through cp.async (16-byte aligned operands
//    only: the launcher gives others to v1) into two K/V stages, two tiles
//    ahead: at S <= 128 (BERT) Q and the head's whole K and V are requested
//    at once, one memory round trip per block; longer sequences stream,
//    tile j+2 loading while tile j is computed. 46 KB of shared memory at
//    head dim 64 (4 blocks an SM), 87 KB at 128 (2 blocks);
//  - scores are kept in log2 units (scale * log2 e folded into the score
//    scaling), so each probability is one subtraction and one ex2;
//  - whatever does not depend on the query row (key limit kend, and a mask
//    whose row stride is 0, such as the [B,1,1,T] padding masks) is folded
//    once per key tile into an additive bias row in shared memory (0 or
//    -inf for bool masks, the value for float ones), read as float2 per
//    score pair; per-row masks, causal limits and softcap are compiled only
//    into the kFull instance, which takes a second pass for them;
//  - the output tile is staged through shared memory (Q's tile) and stored
//    16 bytes a thread (v1 stored 4).
namespace v2 {

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte global -> shared copy; n < 16 bytes read (0 here) zero-fill the rest.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int n) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(n)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's committed groups are pending.
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i,
// and r[i] gets, in lane (g, c), matrix i's [g][2c..2c+1] (.trans: [2c][g]
// and [2c+1][g]).
__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const uint16_t *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const uint16_t *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

__device__ __forceinline__ float ex2(float x) {  // 2^x; -inf gives 0
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Starts copying rows [0, rows) of an R x D tile (row stride ss elements,
// 16-byte aligned rows) into shared memory (row stride D + kPad) with
// cp.async, NT threads taking part; rows past `rows` are zero-filled (no
// bytes read). Complete at the next wait on the group it is committed with.
// 1 <= rows <= R.
template <int D, int NT, int R>
__device__ __forceinline__ void load_tile(uint16_t *sm, const uint16_t *g, int64_t ss, int rows) {
    constexpr int kChunks = D / 8, kStep = NT / kChunks;  // 16-byte chunks per row
    static_assert(NT % kChunks == 0 && R % kStep == 0, "whole copy rounds");
    const int lr = threadIdx.x / kChunks, lc = (threadIdx.x % kChunks) * 8;
    const uint16_t *src = g + lr * ss + lc;
    const int64_t step = kStep * ss;
#pragma unroll
    for (int it = 0; it < R / kStep; it++, src += step) {
        const bool in = lr + it * kStep < rows;  // else any valid address, nothing read
        cp_async16(sm + (lr + it * kStep) * (D + kPad) + lc, in ? src : g, in ? 16 : 0);
    }
}

// A mask value in log2 units: finite values are clamped to +-1e30 first, so
// that HF's finfo.min padding (-3.4e38, times log2 e out of float range) stays
// finite: a row padded throughout keeps equal scores (uniform weights, as the
// reference), and in a row with live keys its weights are still exactly 0.
__device__ __forceinline__ float log2_units(float m) {
    return (isinf(m) ? m : fminf(fmaxf(m, -1e30f), 1e30f)) * kLog2e;
}

// apply_mask(a, mo, 0.0f) in two steps, the read and the value, so that a
// thread can have two reads in flight: the element's bits (a bool byte, a
// 16-bit half, or a float's bits), then 0 or -inf (bool) or 0 + the value.
__device__ __forceinline__ uint32_t mask_bits(const kc_attn_flash_args &a, int64_t mo) {
    if (a.mask_kind == KC_MASK_BOOL) return reinterpret_cast<const unsigned char *>(a.mask)[mo];
    if (a.mask_dtype == KC_F16 || a.mask_dtype == KC_BF16)
        return reinterpret_cast<const uint16_t *>(a.mask)[mo];
    return __float_as_uint(reinterpret_cast<const float *>(a.mask)[mo]);
}
__device__ __forceinline__ float mask_from_bits(const kc_attn_flash_args &a, uint32_t r) {
    if (a.mask_kind == KC_MASK_BOOL) return r ? 0.0f : -INFINITY;
    if (a.mask_dtype == KC_F16) return 0.0f + __half2float(__ushort_as_half((unsigned short)r));
    if (a.mask_dtype == KC_BF16)
        return 0.0f + __bfloat162float(__ushort_as_bfloat16((unsigned short)r));
    return 0.0f + __uint_as_float(r);
}

// Dynamic shared memory of k_attn_flash2 with W warps: the Q tile of 16 W
// rows (later Y), then K and V tiles of two stages (tile kt in stage kt % 2).
template <int D, int W> constexpr size_t smem2_bytes() {
    return (size_t)(16 * W + 4 * kBN) * (D + kPad) * sizeof(uint16_t);
}

// Blocks of W warps an SM must hold at once (__launch_bounds__): 16 warps,
// at most 128 registers a thread, for head dims up to 64 (v2: four blocks of
// 46 KB of shared memory at D = 64; v3: two of 55 KB); 8 warps at D = 128
// (v2 only: 255 registers).
constexpr int min_blocks2(int D, int W) { return (D <= 64 ? 16 : 8) / W; }

// kFull: per-row masks, causal limits and softcap are compiled in; without
// it (no mask, or one of row stride 0, and neither causal nor softcap: the
// encoder case) the kernel carries none of that code or its registers.
// W warps of 16 query rows each: 4 (v2, 64 rows a block) or 8 (v3, 128
// rows). Every warp does what it does in v2, on its own rows, so v3's
// outputs are v2's bit for bit; the block only shares each K/V tile among
// twice the rows. Blocks of one head are consecutive in the grid (qt is the
// fastest index), so with Sq > 16 W they run side by side and the second
// read of a K/V tile tends to hit L2.
template <typename T, int D, bool kFull, int W>
__global__ void __launch_bounds__(W * 32, min_blocks2(D, W))
    k_attn_flash2(const kc_attn_flash_args a, int64_t n_qtiles) {
    constexpr int kNT = W * 32, kRows = 16 * W;  // threads, query rows of a block
    constexpr int kLds = D + kPad, kTile = kBN * kLds;
    extern __shared__ __align__(16) uint16_t smem2[];
    uint16_t *const qs = smem2;                          // Q, then Y (rows of each warp its own)
    uint16_t *const ks0 = smem2 + kRows * kLds;          // K stages, then V stages
    uint16_t *const vs0 = ks0 + 2 * kTile;               // (+ stage * kTile)
    __shared__ __align__(16) float bias[2][kBN];         // per stage

    const int64_t blk = blockIdx.x;
    const int64_t qt = blk % n_qtiles, bh = blk / n_qtiles;
    const int64_t h = bh % a.hq, b = bh / a.hq;
    const int64_t kh = h / (a.hq / a.hkv);
    const int64_t q0 = qt * kRows;
    const uint16_t *Q = reinterpret_cast<const uint16_t *>(a.q) + b * a.q_sb + h * a.q_sh;
    const uint16_t *K = reinterpret_cast<const uint16_t *>(a.k) + b * a.k_sb + kh * a.k_sh;
    const uint16_t *V = reinterpret_cast<const uint16_t *>(a.v) + b * a.v_sb + kh * a.v_sh;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, c4 = lane & 3;
    const int r0 = warp * 16 + g;  // this thread's rows in the tile: r0, r0 + 8
    const int64_t i0 = q0 + r0, i1 = i0 + 8;
    const bool live0 = i0 < a.sq, live1 = i1 < a.sq;

    // keys past kend are masked for every row of this block
    int64_t kend = a.t;
    if (a.mask_kind != KC_MASK_NONE && a.mlast < kend) kend = a.mlast;
    if (a.valid) {
        int64_t v = a.valid[b];
        v = v < 0 ? 0 : v;
        if (v < kend) kend = v;
    }
    if (kFull && a.causal && q0 + kRows < kend) kend = q0 + kRows;
    const int64_t n_kt = kend > 0 ? (kend + kBN - 1) / kBN : 0;
    // a mask with row stride 0 goes into the bias rows; others are read per score
    const bool row_mask = kFull && a.mask_kind != KC_MASK_NONE && a.mst[2] != 0;
    const bool col_mask = a.mask_kind != KC_MASK_NONE && a.mst[2] == 0;
    const int64_t mbase = a.mask_kind != KC_MASK_NONE ? b * a.mst[0] + h * a.mst[1] : 0;
    const int64_t mb0 = row_mask ? mbase + i0 * a.mst[2] : 0, mb1 = mb0 + 8 * a.mst[2];

    auto stage_k = [&](int64_t kt) {  // K rows of key tile kt
        const int64_t kb = kt * kBN, left = kend - kb;
        load_tile<D, kNT, kBN>(ks0 + (kt & 1) * kTile, K + kb * a.k_ss, a.k_ss,
                               left < kBN ? (int)left : kBN);
    };
    // Bias rows (threads tid < kBN, key kt * kBN + tid): 0, the mask's value,
    // or -inf past kend. Written after the tiles' copies are issued: a thread
    // waits for its mask read before the store, and copies after it in
    // program order would wait too (twice, for tiles 0 and 1, before the
    // copies of V0, K1 and V1 went out); the two reads are made before
    // either store, so they are in flight together.
    auto mask_of = [&](int64_t key) {  // (col_mask, key < kend)
        return log2_units(apply_mask(a, mbase + key * a.mst[3], 0.0f));
    };
    auto stage_bias2 = [&](int64_t kt) {  // tiles kt and kt + 1
        if (tid < kBN) {
            const int64_t key0 = kt * kBN + tid, key1 = key0 + kBN;
            const bool in0 = key0 < kend, in1 = key1 < kend;
            uint32_t r0 = 0, r1 = 0;  // raw mask elements: both loads before either use
            if (col_mask && in0) r0 = mask_bits(a, mbase + key0 * a.mst[3]);
            if (col_mask && in1) r1 = mask_bits(a, mbase + key1 * a.mst[3]);
            const float x0 = col_mask ? log2_units(mask_from_bits(a, r0)) : 0.0f;
            const float x1 = col_mask ? log2_units(mask_from_bits(a, r1)) : 0.0f;
            bias[kt & 1][tid] = in0 ? x0 : -INFINITY;
            bias[(kt + 1) & 1][tid] = in1 ? x1 : -INFINITY;
        }
    };
    auto stage_bias = [&](int64_t kt) {  // tile kt
        if (tid < kBN) {
            const int64_t key = kt * kBN + tid;
            bias[kt & 1][tid] = key >= kend ? -INFINITY : col_mask ? mask_of(key) : 0.0f;
        }
    };
    auto stage_v = [&](int64_t kt) {
        const int64_t kb = kt * kBN, left = kend - kb;
        load_tile<D, kNT, kBN>(vs0 + (kt & 1) * kTile, V + kb * a.v_ss, a.v_ss,
                               left < kBN ? (int)left : kBN);
    };

    // Copy groups, in order: {Q, K0}, {V0}, {K1}, {V1}, then {K kt+2}, {V kt+2}
    // after tile kt (empty groups where there is no tile, so that the counts
    // below hold): at the top of tile kt three groups may stay in flight
    // (V kt, K kt+1, V kt+1), before its P V two. With S <= 128 the whole
    // K and V of the head arrive in the first round trip.
    {
        const int64_t left = a.sq - q0;  // rows past Sq are zero
        load_tile<D, kNT, kRows>(qs, Q + q0 * a.q_ss, a.q_ss, left < kRows ? (int)left : kRows);
        if (n_kt > 0) stage_k(0);
        cp_async_commit();
        if (n_kt > 0) stage_v(0);
        cp_async_commit();
        if (n_kt > 1) stage_k(1);
        cp_async_commit();
        if (n_kt > 1) stage_v(1);
        cp_async_commit();
        stage_bias2(0);  // (keys past kend: -inf, no reads)
    }
    cp_async_wait<3>();
    __syncthreads();
    // A fragment of k-step kk: matrices (rows 0-7 | 8-15) x (dims 0-7 | 8-15)
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldsm_x4(qf[kk], qs + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLds + kk * 16 +
                            (lane >> 4) * 8);

    float o[D / 8][4];
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    // scores in log2 units (scale * log2 e folded in): exp2 of differences
    const float cap = a.softcap, scale = a.scale, scale2 = a.scale * kLog2e;

    for (int64_t kt = 0; kt < n_kt; kt++) {
        const int64_t kb = kt * kBN;
        const uint16_t *const ks = ks0 + (kt & 1) * kTile, *const vs = vs0 + (kt & 1) * kTile;
        if (kt > 0) {  // (tile 0: waited for with Q)
            cp_async_wait<3>();  // K (and the bias row) of this tile
            __syncthreads();
        }

        // S = Q K^T. B[k][n] = K[key n][dim k]: one ldmatrix.x4 gives the two
        // registers of 8-key tiles 2p and 2p+1 (matrices: keys 0-7 | 8-15 of
        // the pair x dims 0-7 | 8-15 of the k-step).
        float s[kBN / 8][4];
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int p = 0; p < kBN / 16; p++) {
                uint32_t kf[4];
                ldsm_x4(kf, ks + (p * 16 + (lane >> 4) * 8 + (lane & 7)) * kLds + kk * 16 +
                                ((lane >> 3) & 1) * 8);
                elt<T>::mma(s[2 * p], qf[kk], kf[0], kf[1]);
                elt<T>::mma(s[2 * p + 1], qf[kk], kf[2], kf[3]);
            }
        }

        // scale, cap, bias row; then per-row masks and causal limits, all in
        // log2 units
        const float *bz = bias[kt & 1];
        if (kFull && cap > 0.0f) {
            const float cap2 = cap * kLog2e;
#pragma unroll
            for (int nt = 0; nt < kBN / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[nt][e] = cap2 * tanhf(s[nt][e] * scale / cap);
        } else {
#pragma unroll
            for (int nt = 0; nt < kBN / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[nt][e] *= scale2;
        }
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) {
            const float2 bb = *reinterpret_cast<const float2 *>(bz + nt * 8 + 2 * c4);
            s[nt][0] += bb.x, s[nt][1] += bb.y;
            s[nt][2] += bb.x, s[nt][3] += bb.y;
        }
        // (32-bit tile-relative indices; the mask's key stride is 1, so a
        // row's values are one base pointer plus constant offsets)
        if (kFull && row_mask) {
            const int kl = kend - kb < kBN ? (int)(kend - kb) : kBN;  // live keys
            const int64_t at = kb + 2 * c4;
#pragma unroll
            for (int nt = 0; nt < kBN / 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = nt * 8 + 2 * c4 + (e & 1);
                    const bool top = e < 2;
                    if (col >= kl || !(top ? live0 : live1)) continue;  // no mask reads
                    s[nt][e] += log2_units(
                        apply_mask(a, (top ? mb0 : mb1) + at + nt * 8 + (e & 1), 0.0f));
                }
            }
        }
        if (kFull && a.causal) {  // key kb + col > row i: -inf
            const int64_t d0 = i0 - kb, d1 = i1 - kb;
            const int lim0 = d0 < -1 ? -1 : d0 < kBN ? (int)d0 : kBN;
            const int lim1 = d1 < -1 ? -1 : d1 < kBN ? (int)d1 : kBN;
#pragma unroll
            for (int nt = 0; nt < kBN / 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = nt * 8 + 2 * c4 + (e & 1);
                    if (col > (e < 2 ? lim0 : lim1)) s[nt][e] = -INFINITY;
                }
            }
        }
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) {
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        // the four lanes of a quad hold the same two rows
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        // a row with nothing live yet keeps exponent base 0: its p are all 0
        const float u0 = n0 == -INFINITY ? 0.0f : n0, u1 = n1 == -INFINITY ? 0.0f : n1;
        const float al0 = ex2(m0 - u0), al1 = ex2(m1 - u1);
        m0 = n0, m1 = n1;
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kBN / 8; nt++) {
            s[nt][0] = ex2(s[nt][0] - u0);
            s[nt][1] = ex2(s[nt][1] - u0);
            s[nt][2] = ex2(s[nt][2] - u1);
            s[nt][3] = ex2(s[nt][3] - u1);
            ps0 += s[nt][0] + s[nt][1];
            ps1 += s[nt][2] + s[nt][3];
        }
        l0 = l0 * al0 + ps0;  // per-lane partial sums; the quad adds them at the end
        l1 = l1 * al1 + ps1;
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) {
            o[nt][0] *= al0, o[nt][1] *= al0;
            o[nt][2] *= al1, o[nt][3] *= al1;
        }

        cp_async_wait<2>();  // V of this tile
        __syncthreads();
        // O += P V: P's C fragments of key tiles 2j, 2j+1 are the A fragment
        // of k-step j. B[k][n] = V[key k][dim n]: ldmatrix.x4.trans of
        // (keys 0-7 | 8-15 of the step) x (dims of 8-column tiles 2q | 2q+1).
#pragma unroll
        for (int j = 0; j < kBN / 16; j++) {
            uint32_t pa[4];
            pa[0] = pack2<T>(s[2 * j][0], s[2 * j][1]);
            pa[1] = pack2<T>(s[2 * j][2], s[2 * j][3]);
            pa[2] = pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
            pa[3] = pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
            for (int q = 0; q < D / 16; q++) {
                uint32_t vf[4];
                ldsm_x4_t(vf, vs + (j * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kLds +
                                  q * 16 + (lane >> 4) * 8);
                elt<T>::mma(o[2 * q], pa, vf[0], vf[1]);
                elt<T>::mma(o[2 * q + 1], pa, vf[2], vf[3]);
            }
        }
        if (kt + 2 < n_kt) {  // (uniform over the block)
            __syncthreads();  // every warp is done with this stage: tile kt + 2
            stage_k(kt + 2);
            cp_async_commit();
            stage_v(kt + 2);
            cp_async_commit();
            stage_bias(kt + 2);
        } else {
            cp_async_commit();
            cp_async_commit();
        }
    }
    cp_async_wait<0>();  // only empty groups are left; no copy outlives the block

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    // l == 0 (every column masked): 0 * inf = NaN, as the reference, or 0
    // with dead_zero (a live column contributes exp2(0) = 1 to l)
    const float inv0 = a.dead_zero && l0 == 0.0f ? 0.0f : 1.0f / l0;
    const float inv1 = a.dead_zero && l1 == 0.0f ? 0.0f : 1.0f / l1;
    // Y through qs: each warp writes and reads back only its own 16 rows,
    // which only it read Q from
    __syncwarp();
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        uint16_t *p = qs + r0 * kLds + nt * 8 + 2 * c4;
        *reinterpret_cast<uint32_t *>(p) = pack2<T>(o[nt][0] * inv0, o[nt][1] * inv0);
        *reinterpret_cast<uint32_t *>(p + 8 * kLds) = pack2<T>(o[nt][2] * inv1, o[nt][3] * inv1);
    }
    __syncwarp();
    constexpr int kChunks = D / 8;
    static_assert(16 * kChunks % 32 == 0, "whole copy rounds");
    // (Y's base made here, not at the top: held through the key loop it
    // cost v3 a register spill)
    uint16_t *Y = reinterpret_cast<uint16_t *>(a.y) + b * a.y_sb + h * a.y_sh;
#pragma unroll
    for (int it = 0; it < 16 * kChunks / 32; it++) {
        const int c = lane + it * 32;
        const int r = c / kChunks, col = (c % kChunks) * 8;
        const int64_t i = q0 + warp * 16 + r;
        if (i >= a.sq) continue;
        const uint16_t *src = qs + (warp * 16 + r) * kLds + col;
        *reinterpret_cast<uint4 *>(Y + i * a.y_ss + col) = *reinterpret_cast<const uint4 *>(src);
    }
}

}  // namespace v2

template <typename T, int D, bool kFull, int W>
cudaError_t launch2(const kc_attn_flash_args &a, cudaStream_t s) {
    constexpr size_t shm = v2::smem2_bytes<D, W>();
    constexpr int rows = 16 * W;
    const int64_t n_qtiles = (a.sq + rows - 1) / rows;
    const int64_t blocks = a.b * a.hq * n_qtiles;  // at most kc_attn_flash's 64-row grid
    // Set per launch (attributes are per device): past 48 KB of static +
    // dynamic shared memory (head dim 128; v3 at 64) the kernel must be
    // allowed more; and the SM's split of L1 and shared memory should favour
    // shared (the kernel's copies bypass L1), so that the blocks
    // __launch_bounds__ promises fit (4 x 46 KB at head dim 64, v3 2 x 55 KB).
    cudaError_t e = cudaSuccess;
    if (shm + 2 * kBN * sizeof(float) > 48 * 1024)
        e = cudaFuncSetAttribute(v2::k_attn_flash2<T, D, kFull, W>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(v2::k_attn_flash2<T, D, kFull, W>,
                                 cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared);
    if (e != cudaSuccess) return e;
    v2::k_attn_flash2<T, D, kFull, W><<<(unsigned)blocks, W * 32, shm, s>>>(a, n_qtiles);
    return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch(const kc_attn_flash_args &a, int64_t n_qtiles, int64_t blocks, bool vec,
                   cudaStream_t s) {
    // v2 needs 16-byte aligned rows (cp.async, ldmatrix) and reads per-row
    // masks at key stride 1 (any contiguous mask but one of a single key,
    // where stride 0 reads the same element); v1 takes everything
    const bool v2_ok =
        vec && (a.mask_kind == KC_MASK_NONE || a.mst[3] == 1 || a.mlast <= 1 || a.mst[2] == 0);
    if (a.kernel == 1 || !v2_ok) {
        k_attn_flash<T, D><<<(unsigned)blocks, kThreads, 0, s>>>(a, n_qtiles, vec);
        return cudaGetLastError();
    }
    const bool full = a.softcap > 0.0f || a.causal || (a.mask_kind != KC_MASK_NONE && a.mst[2] != 0);
    // v3 (8 warps) has instances for head dims 32 and 64 only: at 128 it
    // would hold one block of 8 warps an SM (255 registers a thread), so a
    // block's load and compute phases could not overlap with another's
    if constexpr (D <= 64) {
        if (a.kernel == 2)
            return full ? launch2<T, D, true, 8>(a, s) : launch2<T, D, false, 8>(a, s);
    }
    return full ? launch2<T, D, true, 4>(a, s) : launch2<T, D, false, 4>(a, s);
}

template <typename T>
cudaError_t launch_d(const kc_attn_flash_args &a, int64_t n_qtiles, int64_t blocks, bool vec,
                     cudaStream_t s) {
    switch (a.d) {
    case 32: return launch<T, 32>(a, n_qtiles, blocks, vec, s);
    case 64: return launch<T, 64>(a, n_qtiles, blocks, vec, s);
    case 128: return launch<T, 128>(a, n_qtiles, blocks, vec, s);
    default: return cudaErrorInvalidValue;
    }
}

bool al16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

}  // namespace

extern "C" int kc_attn_flash_head_dim_ok(int64_t d) { return d == 32 || d == 64 || d == 128; }

extern "C" int kc_attn_flash_v3_head_dim_ok(int64_t d) { return d == 32 || d == 64; }

extern "C" cudaError_t kc_attn_flash(int dtype, const kc_attn_flash_args *a, cudaStream_t s) {
    if (!kc_attn_flash_head_dim_ok(a->d) || a->hkv <= 0 || a->hq % a->hkv) return cudaErrorInvalidValue;
    if (a->b <= 0 || a->hq <= 0 || a->sq <= 0) return cudaSuccess;
    int64_t n_qtiles = (a->sq + kBM - 1) / kBM, blocks;
    if (__builtin_mul_overflow(a->b * a->hq, n_qtiles, &blocks) || blocks > 0x7fffffffLL)
        return cudaErrorInvalidValue;
    // 16-byte row loads and 4-byte stores need aligned bases and strides
    // that are multiples of 8 elements
    bool vec = al16(a->q) && al16(a->k) && al16(a->v) && al16(a->y);
    const int64_t st[12] = {a->q_sb, a->q_sh, a->q_ss, a->k_sb, a->k_sh, a->k_ss,
                            a->v_sb, a->v_sh, a->v_ss, a->y_sb, a->y_sh, a->y_ss};
    for (int i = 0; i < 12; i++) vec = vec && st[i] % 8 == 0;
    switch (dtype) {
    case KC_F16: return launch_d<__half>(*a, n_qtiles, blocks, vec, s);
    case KC_BF16: return launch_d<__nv_bfloat16>(*a, n_qtiles, blocks, vec, s);
    default: return cudaErrorInvalidValue;
    }
}
