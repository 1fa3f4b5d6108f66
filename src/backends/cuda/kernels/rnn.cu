// rnn.cu: LSTM / GRU / RNN (see rnn_kernels.h). One block per (direction,
// batch row); per time step the gate rows' dot products (input and
// recurrence) are spread over the threads, then the cell update runs one
// thread per hidden unit. The formulas and their order follow the host
// reference (ref_rnn.c) step by step.
#include "rnn_kernels.h"
#include "gemm_kernels.h"
#include "gemm_act.cuh"

namespace {

__device__ float rnn_act(const kc_rnn_act &a, float v) {
    float al = a.alpha, be = a.beta;
    switch (a.kind) {
    case KC_RA_RELU: return v > 0 ? v : 0.0f;
    case KC_RA_TANH: return tanhf(v);
    case KC_RA_SIGMOID:
        if (v >= 0) return 1.0f / (1.0f + expf(-v));
        else {
            float e = expf(v);
            return e / (1.0f + e);
        }
    case KC_RA_AFFINE: return al * v + be;
    case KC_RA_LEAKYRELU: return v >= 0 ? v : al * v;
    case KC_RA_THRESHOLDEDRELU: return v > al ? v : 0.0f;
    case KC_RA_SCALEDTANH: return al * tanhf(be * v);
    case KC_RA_HARDSIGMOID: {
        float y = al * v + be;
        return y < 0 ? 0.0f : y > 1 ? 1.0f : y;
    }
    case KC_RA_ELU: return v >= 0 ? v : al * (expf(v) - 1.0f);
    case KC_RA_SOFTSIGN: return v / (1.0f + fabsf(v));
    case KC_RA_SOFTPLUS: return (v > 0 ? v : 0.0f) + log1pf(expf(-fabsf(v)));
    default: return v;
    }
}

__device__ __forceinline__ float clipv(float v, int on, float c) {
    return on ? (v > c ? c : v < -c ? -c : v) : v;
}

template <typename T>
__device__ __forceinline__ float ldo(const void *p, int64_t i) {
    return kc_ld((const T *)p, i);
}

template <typename T>
__global__ void k_rnn(kc_rnn_args a) {
    extern __shared__ float sm[];
    const int64_t H = a.hid, I = a.isz;
    const int G = a.cell == KC_CELL_LSTM ? 4 : a.cell == KC_CELL_GRU ? 3 : 1;
    const int64_t GH = G * H;
    float *h = sm, *cs = h + H, *g = cs + H, *tmp = g + GH, *rec = tmp + H;
    const int d = blockIdx.x / (int)a.batch;
    const int64_t b = blockIdx.x % a.batch;
    const bool reverse = a.ndir == 2 ? d == 1 : a.reverse != 0;
    const int nacts = a.cell == KC_CELL_LSTM ? 3 : a.cell == KC_CELL_GRU ? 2 : 1;
    const kc_rnn_act *acts = a.acts + d * nacts;
    const int64_t woff = (int64_t)d * GH * I, roff = (int64_t)d * GH * H;
    const int64_t boff = (int64_t)d * 2 * GH, poff = (int64_t)d * 3 * H;
    const int64_t soff = a.layout ? (b * a.ndir + d) * H : ((int64_t)d * a.batch + b) * H;
    int64_t len = a.seq;
    if (a.lens) {
        len = a.lens[b];
        len = len < 0 ? 0 : len > a.seq ? a.seq : len; // the reference refuses these
    }
    for (int64_t k = threadIdx.x; k < H; k += blockDim.x) {
        h[k] = a.h0 ? ldo<T>(a.h0, soff + k) : 0.0f;
        cs[k] = a.c0 ? ldo<T>(a.c0, soff + k) : 0.0f;
    }
    // steps past this row's length stay zero in Y
    if (a.y)
        for (int64_t t = len; t < a.seq; t++) {
            int64_t yo = a.layout ? ((b * a.seq + t) * a.ndir + d) * H
                                  : ((t * a.ndir + d) * a.batch + b) * H;
            for (int64_t k = threadIdx.x; k < H; k += blockDim.x) kc_st((T *)a.y, yo + k, 0.0f);
        }
    __syncthreads();
    for (int64_t s = 0; s < len; s++) {
        const int64_t t = reverse ? len - 1 - s : s;
        const int64_t xo = (a.layout ? b * a.seq + t : t * a.batch + b) * I;
        // gate pre-activations: x W^T + Wb (+ Rb) + h R^T (GRU's third
        // gate keeps its recurrence apart, in rec)
        for (int64_t row = threadIdx.x; row < GH; row += blockDim.x) {
            float acc = 0.0f;
            for (int64_t i = 0; i < I; i++)
                acc += ldo<T>(a.x, xo + i) * ldo<T>(a.w, woff + row * I + i);
            bool third = a.cell == KC_CELL_GRU && row >= 2 * H;
            if (a.b) acc += ldo<T>(a.b, boff + row) + (third ? 0.0f : ldo<T>(a.b, boff + GH + row));
            if (!third) {
                float hr = 0.0f;
                for (int64_t k = 0; k < H; k++) hr += h[k] * ldo<T>(a.r, roff + row * H + k);
                acc += hr;
            } else if (a.lbr) {
                float hr = 0.0f;
                for (int64_t k = 0; k < H; k++) hr += h[k] * ldo<T>(a.r, roff + row * H + k);
                rec[row - 2 * H] = hr;
            }
            g[row] = acc;
        }
        __syncthreads();
        if (a.cell == KC_CELL_RNN) {
            for (int64_t k = threadIdx.x; k < H; k += blockDim.x)
                h[k] = rnn_act(acts[0], clipv(g[k], a.has_clip, a.clip));
        } else if (a.cell == KC_CELL_LSTM) {
            for (int64_t k = threadIdx.x; k < H; k += blockDim.x) {
                float ig = g[k], og = g[H + k], fg = g[2 * H + k], cg = g[3 * H + k], c = cs[k];
                if (a.p) {
                    ig += ldo<T>(a.p, poff + k) * c;
                    fg += ldo<T>(a.p, poff + 2 * H + k) * c;
                }
                ig = clipv(ig, a.has_clip, a.clip);
                fg = clipv(fg, a.has_clip, a.clip);
                cg = clipv(cg, a.has_clip, a.clip);
                ig = rnn_act(acts[0], ig);
                fg = a.input_forget ? 1.0f - ig : rnn_act(acts[0], fg);
                cg = rnn_act(acts[1], cg);
                c = fg * c + ig * cg;
                if (a.p) og += ldo<T>(a.p, poff + H + k) * c;
                og = rnn_act(acts[0], clipv(og, a.has_clip, a.clip));
                cs[k] = c;
                h[k] = og * rnn_act(acts[2], c);
            }
        } else { // GRU: z, r, then the candidate
            for (int64_t k = threadIdx.x; k < 2 * H; k += blockDim.x)
                g[k] = rnn_act(acts[0], clipv(g[k], a.has_clip, a.clip));
            __syncthreads();
            if (!a.lbr) {
                for (int64_t k = threadIdx.x; k < H; k += blockDim.x) tmp[k] = g[H + k] * h[k];
                __syncthreads();
                for (int64_t k = threadIdx.x; k < H; k += blockDim.x) {
                    float hr = 0.0f;
                    for (int64_t i = 0; i < H; i++)
                        hr += tmp[i] * ldo<T>(a.r, roff + (2 * H + k) * H + i);
                    rec[k] = hr;
                }
                __syncthreads();
            }
            for (int64_t k = threadIdx.x; k < H; k += blockDim.x) {
                float rb = a.b ? ldo<T>(a.b, boff + GH + 2 * H + k) : 0.0f, hh;
                if (a.lbr) hh = g[2 * H + k] + g[H + k] * (rec[k] + rb);
                else hh = rec[k] + g[2 * H + k] + rb;
                hh = rnn_act(acts[1], clipv(hh, a.has_clip, a.clip));
                float z = g[k];
                h[k] = (1.0f - z) * hh + z * h[k];
            }
        }
        __syncthreads();
        if (a.y) {
            int64_t yo = a.layout ? ((b * a.seq + t) * a.ndir + d) * H
                                  : ((t * a.ndir + d) * a.batch + b) * H;
            for (int64_t k = threadIdx.x; k < H; k += blockDim.x) kc_st((T *)a.y, yo + k, h[k]);
        }
        // the next step's gate loop reads h only after every thread wrote
        // its units above (and Y reads are done): one barrier
        __syncthreads();
    }
    for (int64_t k = threadIdx.x; k < H; k += blockDim.x) {
        if (a.yh) kc_st((T *)a.yh, soff + k, h[k]);
        if (a.yc) kc_st((T *)a.yc, soff + k, cs[k]);
    }
}

} // namespace

extern "C" cudaError_t kc_rnn(int dtype, const kc_rnn_args *a, cudaStream_t s) {
    if (a->hid < 0 || a->hid > KC_RNN_MAX_HIDDEN || a->ndir < 1 || a->ndir > 2 || a->batch < 0 ||
        a->seq < 0 || a->isz < 0)
        return cudaErrorInvalidValue;
    int64_t blocks = a->ndir * a->batch;
    if (blocks <= 0) return cudaSuccess;
    if (blocks > 65535LL * 1024) return cudaErrorInvalidValue;
    int G = a->cell == KC_CELL_LSTM ? 4 : a->cell == KC_CELL_GRU ? 3 : 1;
    size_t shm = (size_t)(4 * a->hid + G * a->hid) * sizeof(float);
    if (shm == 0) shm = sizeof(float);
    int threads = 256;
    cudaError_t e = cudaSuccess;
    switch (dtype) {
    case KC_F32:
        if (shm > 48 * 1024)
            e = cudaFuncSetAttribute(k_rnn<float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)shm);
        if (e == cudaSuccess) k_rnn<float><<<(unsigned)blocks, threads, shm, s>>>(*a);
        break;
    case KC_F16:
        if (shm > 48 * 1024)
            e = cudaFuncSetAttribute(k_rnn<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)shm);
        if (e == cudaSuccess) k_rnn<__half><<<(unsigned)blocks, threads, shm, s>>>(*a);
        break;
    case KC_BF16:
        if (shm > 48 * 1024)
            e = cudaFuncSetAttribute(k_rnn<__nv_bfloat16>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e == cudaSuccess) k_rnn<__nv_bfloat16><<<(unsigned)blocks, threads, shm, s>>>(*a);
        break;
    default: return cudaErrorInvalidValue;
    }
    return e != cudaSuccess ? e : cudaGetLastError();
}
