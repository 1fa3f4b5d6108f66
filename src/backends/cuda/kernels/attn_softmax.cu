// attn_softmax.cu: the masked softmax between the two products of the
// attention layer. One block per score row; the masked score of a column is
// recomputed in each of the three passes (max, sum, write) rather than
// stored, so the scores buffer is read-only until the last pass and the
// float32 case can write in place. Math in float32, as the reference.
#include "attn_kernels.h"
#include "gemm_act.cuh"

#include <math.h>

// The masked score of column t; with stage1 non-NULL also the score after
// softcap, before the masks (the qk output's mode 1).
static __device__ __forceinline__ float attn_val(const float *row, int64_t t, int64_t b,
                                                 int64_t h, int64_t i, int64_t valid,
                                                 const kc_attn_softmax_args &a,
                                                 float *stage1 = nullptr) {
    float s = row[t];
    if (a.softcap > 0.0f) s = a.softcap * tanhf(s / a.softcap);
    if (stage1) *stage1 = s;
    if (a.mask_kind != KC_MASK_NONE) {
        if (t >= a.mlast) {
            s = -INFINITY;
        } else {
            int64_t mo = b * a.mst[0] + h * a.mst[1] + i * a.mst[2] + t * a.mst[3];
            if (a.mask_kind == KC_MASK_BOOL) {
                if (!((const unsigned char *)a.mask)[mo]) s = -INFINITY;
            } else if (a.mask_dtype == KC_F16) {
                s += kc_ld((const __half *)a.mask, mo);
            } else if (a.mask_dtype == KC_BF16) {
                s += kc_ld((const __nv_bfloat16 *)a.mask, mo);
            } else {
                s += ((const float *)a.mask)[mo];
            }
        }
    }
    if (a.causal && t > i + a.past) s = -INFINITY;
    if (t >= valid) s = -INFINITY;
    return s;
}

// Block-wide reduction (max or sum) of one value per thread; every thread
// gets the result. blockDim.x is a multiple of 32, at most 1024.
template <bool MAX>
static __device__ float block_reduce(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads(); // sh may still be read from the previous reduction
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = MAX ? fmaxf(v, w) : v + w;
    }
    return v;
}

template <typename T>
__global__ void k_attn_softmax(const float *scores, T *p, kc_attn_softmax_args a) {
    __shared__ float sh[32];
    int64_t rows = a.b * a.hq * a.sq;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t i = r % a.sq, bh = r / a.sq;
        int64_t h = bh % a.hq, b = bh / a.hq;
        int64_t valid = a.t;
        if (a.valid) {
            int64_t v = a.valid[b];
            valid = v < 0 ? 0 : v < a.t ? v : a.t;
        }
        const float *row = scores + r * a.t;
        T *out = p + r * a.t;
        T *qk = a.qk ? (T *)a.qk + r * a.t : nullptr;
        float mx = -INFINITY;
        for (int64_t t = threadIdx.x; t < a.t; t += blockDim.x)
            mx = fmaxf(mx, attn_val(row, t, b, h, i, valid, a));
        mx = block_reduce<true>(mx, sh);
        // The qk output's stages 0..2 (stage 3 is written with the
        // probabilities); each thread handles the columns it owns in every
        // pass, and reads a score before the in-place write below.
        if (qk && a.qk_mode < 3)
            for (int64_t t = threadIdx.x; t < a.t; t += blockDim.x) {
                float raw = row[t], capped, masked = attn_val(row, t, b, h, i, valid, a, &capped);
                kc_st(qk, t, a.qk_mode == 0 ? raw : a.qk_mode == 1 ? capped : masked);
            }
        if (a.dead_zero && mx == -INFINITY) { // no live column (uniform over the block)
            for (int64_t t = threadIdx.x; t < a.t; t += blockDim.x) {
                kc_st(out, t, 0.0f);
                if (qk && a.qk_mode == 3) kc_st(qk, t, 0.0f);
            }
            continue;
        }
        float sum = 0.0f;
        for (int64_t t = threadIdx.x; t < a.t; t += blockDim.x)
            sum += expf(attn_val(row, t, b, h, i, valid, a) - mx);
        sum = block_reduce<false>(sum, sh);
        float inv = 1.0f / sum;
        // each thread reads column t before writing it, and every read of
        // the row by other threads finished at the reductions above
        for (int64_t t = threadIdx.x; t < a.t; t += blockDim.x) {
            float pr = expf(attn_val(row, t, b, h, i, valid, a) - mx) * inv;
            kc_st(out, t, pr);
            if (qk && a.qk_mode == 3) kc_st(qk, t, pr);
        }
    }
}

extern "C" cudaError_t kc_attn_softmax(int dtype, const float *scores, void *p,
                                       const kc_attn_softmax_args *a, cudaStream_t s) {
    int64_t rows = a->b * a->hq * a->sq;
    if (rows <= 0 || a->t <= 0) return cudaSuccess;
    int threads = a->t >= 1024 ? 512 : a->t >= 256 ? 256 : a->t > 64 ? 128 : 64;
    unsigned grid = (unsigned)(rows < 65535LL * 32 ? rows : 65535LL * 32);
    switch (dtype) {
    case KC_F32: k_attn_softmax<float><<<grid, threads, 0, s>>>(scores, (float *)p, *a); break;
    case KC_F16: k_attn_softmax<__half><<<grid, threads, 0, s>>>(scores, (__half *)p, *a); break;
    case KC_BF16:
        k_attn_softmax<__nv_bfloat16><<<grid, threads, 0, s>>>(scores, (__nv_bfloat16 *)p, *a);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
