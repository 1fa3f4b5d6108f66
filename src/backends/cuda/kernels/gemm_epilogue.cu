// gemm_epilogue.cu: the in-place epilogue after a cuBLASLt product, for what
// cuBLASLt cannot fuse: alpha/beta with a broadcast C, and activations other
// than ReLU / tanh-GELU. One thread per element, grid-stride, f32 math.
#include "gemm_act.cuh"

template <typename T>
__global__ void k_gemm_epilogue(T *y, int64_t n, float alpha, const T *c, float beta,
                                int mode, int64_t n_last, kc_bcast bc, kc_act act) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = alpha * kc_ld(y, i);
        if (mode != KC_ADD_NONE) {
            int64_t off;
            if (mode == KC_ADD_SAME) {
                off = i;
            } else if (mode == KC_ADD_ROW) {
                off = i % n_last;
            } else {
                off = 0;
                int64_t r = i;
                for (int d = bc.rank - 1; d >= 0; d--) {
                    int64_t q = r % bc.dims[d];
                    r /= bc.dims[d];
                    off += q * bc.cst[d];
                }
            }
            v = v + beta * kc_ld(c, off);
        }
        kc_st(y, i, kc_apply_act(act, v));
    }
}

extern "C" cudaError_t kc_gemm_epilogue(int dtype, void *y, int64_t n, float alpha,
                                        const void *c, float beta, int add_mode,
                                        int64_t n_last, const kc_bcast *bc, kc_act act,
                                        cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    kc_bcast b = *bc;
    if (!c) add_mode = KC_ADD_NONE;
    if (n_last < 1) n_last = 1;
    unsigned g = kc_blocks(n, 256);
    switch (dtype) {
    case KC_F32:
        k_gemm_epilogue<float><<<g, 256, 0, s>>>((float *)y, n, alpha, (const float *)c, beta,
                                                 add_mode, n_last, b, act);
        break;
    case KC_F16:
        k_gemm_epilogue<__half><<<g, 256, 0, s>>>((__half *)y, n, alpha, (const __half *)c,
                                                  beta, add_mode, n_last, b, act);
        break;
    case KC_BF16:
        k_gemm_epilogue<__nv_bfloat16><<<g, 256, 0, s>>>((__nv_bfloat16 *)y, n, alpha,
                                                         (const __nv_bfloat16 *)c, beta,
                                                         add_mode, n_last, b, act);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
