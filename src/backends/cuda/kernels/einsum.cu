// einsum.cu: a general Einsum (see einsum_kernels.h): correct for every
// equation the parser accepts (diagonals, sums, transposes, batched
// products, broadcasting), not tuned; the two-operand matrix products that
// matter for speed are MatMul after the optimizer's rewrites.
#include "einsum_kernels.h"
#include "gemm_act.cuh"

template <typename T> __device__ __forceinline__ double ein_ld(const T *p, int64_t i) {
    return (double)kc_ld(p, i);
}
template <> __device__ __forceinline__ double ein_ld<double>(const double *p, int64_t i) {
    return p[i];
}
template <typename T> __device__ __forceinline__ void ein_st(T *p, int64_t i, double v) {
    kc_st(p, i, (float)v);
}
template <> __device__ __forceinline__ void ein_st<double>(double *p, int64_t i, double v) {
    p[i] = v;
}

template <typename T>
__global__ void k_einsum(kc_einsum_args a, T *__restrict__ y, int64_t nout) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < nout;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t base[KC_EIN_MAX_OPS] = {0, 0, 0, 0}, rem = o;
        for (int q = a.n_out - 1; q >= 0; q--) {
            int64_t idx = rem % a.out_size[q];
            rem /= a.out_size[q];
            for (int i = 0; i < a.n_ops; i++) base[i] += idx * a.out_stride[i][q];
        }
        double acc = 0;
        for (int64_t s = 0; s < a.nsum; s++) {
            int64_t off[KC_EIN_MAX_OPS];
            for (int i = 0; i < a.n_ops; i++) off[i] = base[i];
            int64_t r = s;
            for (int q = a.n_sum - 1; q >= 0; q--) {
                int64_t idx = r % a.sum_size[q];
                r /= a.sum_size[q];
                for (int i = 0; i < a.n_ops; i++) off[i] += idx * a.sum_stride[i][q];
            }
            double pr = 1;
            for (int i = 0; i < a.n_ops; i++) pr *= ein_ld((const T *)a.op[i], off[i]);
            acc += pr;
        }
        ein_st(y, o, acc);
    }
}

extern "C" cudaError_t kc_einsum(int dtype, const kc_einsum_args *a, void *y, cudaStream_t s) {
    if (a->n_ops < 1 || a->n_ops > KC_EIN_MAX_OPS || a->n_out < 0 ||
        a->n_out > KC_EIN_MAX_LABELS || a->n_sum < 0 || a->n_sum > KC_EIN_MAX_LABELS)
        return cudaErrorInvalidValue;
    int64_t nout = 1;
    for (int q = 0; q < a->n_out; q++) nout *= a->out_size[q];
    if (nout <= 0) return cudaSuccess;
    unsigned g = kc_blocks(nout, 128);
    switch (dtype) {
    case KC_F32: k_einsum<float><<<g, 128, 0, s>>>(*a, (float *)y, nout); break;
    case KC_F16: k_einsum<__half><<<g, 128, 0, s>>>(*a, (__half *)y, nout); break;
    case KC_BF16: k_einsum<__nv_bfloat16><<<g, 128, 0, s>>>(*a, (__nv_bfloat16 *)y, nout); break;
    case KC_EIN_F64: k_einsum<double><<<g, 128, 0, s>>>(*a, (double *)y, nout); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
