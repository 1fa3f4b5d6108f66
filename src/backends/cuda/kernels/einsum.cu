// einsum.cu: a general Einsum and a direct DFT (see einsum_kernels.h).
// Einsum: correct for every
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

// ------------------------------------------------------------ DFT
// Element t of the line being transformed (re, im), zero past the input;
// for the onesided inverse the full spectrum's element t.
template <typename T>
__device__ void dft_in(const T *x, const kc_dft_args &a, int64_t o, int64_t in, int64_t t,
                       double *re, double *im) {
    if (a.inverse && a.onesided) {
        int64_t half = a.L / 2 + 1, m = a.n < half ? a.n : half;
        bool mirror = t >= half;
        int64_t k = mirror ? a.L - t : t;
        *re = *im = 0;
        if (k < m) {
            const T *e = x + ((o * a.n + k) * a.inner + in) * a.cin;
            *re = ein_ld(e, 0);
            *im = a.cin > 1 ? ein_ld(e, 1) : 0.0;
        }
        if (mirror) *im = -*im;
        return;
    }
    *re = *im = 0;
    if (t < a.n) {
        const T *e = x + ((o * a.n + t) * a.inner + in) * a.cin;
        *re = ein_ld(e, 0);
        *im = a.cin > 1 ? ein_ld(e, 1) : 0.0;
    }
}

template <typename T>
__global__ void k_dft(const T *__restrict__ x, T *__restrict__ y, kc_dft_args a, int64_t total) {
    const double sign = a.inverse ? 1.0 : -1.0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t in = i % a.inner, ok = i / a.inner, k = ok % a.lout, o = ok / a.lout;
        double sr = 0, si = 0;
        int64_t idx = 0; // k * t mod L, exact
        int64_t tmax = a.inverse && a.onesided ? a.L : (a.n < a.L ? a.n : a.L);
        for (int64_t t = 0; t < tmax; t++) {
            double xr, xi, c, sn;
            dft_in(x, a, o, in, t, &xr, &xi);
            sincospi(2.0 * (double)idx / (double)a.L, &sn, &c);
            double wr = c, wi = sign * sn;
            sr += xr * wr - xi * wi;
            si += xr * wi + xi * wr;
            idx += k;
            if (idx >= a.L) idx -= a.L;
        }
        double sc = a.inverse ? 1.0 / (double)a.L : 1.0;
        T *e = y + ((o * a.lout + k) * a.inner + in) * a.cout;
        ein_st(e, 0, sr * sc);
        if (a.cout > 1) ein_st(e, 1, si * sc);
    }
}

extern "C" cudaError_t kc_dft(int dtype, const void *x, void *y, const kc_dft_args *a,
                              cudaStream_t s) {
    if (a->L < 1 || a->cin < 1 || a->cin > 2 || a->cout < 1 || a->cout > 2)
        return cudaErrorInvalidValue;
    int64_t total = a->outer * a->lout * a->inner;
    if (total <= 0) return cudaSuccess;
    unsigned g = kc_blocks(total, 128);
    switch (dtype) {
    case KC_F32: k_dft<float><<<g, 128, 0, s>>>((const float *)x, (float *)y, *a, total); break;
    case KC_F16: k_dft<__half><<<g, 128, 0, s>>>((const __half *)x, (__half *)y, *a, total); break;
    case KC_BF16:
        k_dft<__nv_bfloat16><<<g, 128, 0, s>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y, *a,
                                                total);
        break;
    case KC_EIN_F64: k_dft<double><<<g, 128, 0, s>>>((const double *)x, (double *)y, *a, total); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ------------------------------------------------------------ STFT
// y[b, f, k] = sum_t x[b, f*step + t] * w[t] * e^(-2 pi i k t / fl), the same
// direct sum in double with exact twiddles as k_dft; one thread a bin.
template <typename T>
__global__ void k_stft(const T *__restrict__ x, const T *__restrict__ w, T *__restrict__ y,
                       kc_stft_args a, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = i % a.bins, bf = i / a.bins, f = bf % a.frames, b = bf / a.frames;
        const T *xs = x + (b * a.len + f * a.step) * a.cin;
        double sr = 0, si = 0;
        int64_t idx = 0; // k * t mod fl, exact
        for (int64_t t = 0; t < a.fl; t++) {
            double g = w ? ein_ld(w, t) : 1.0;
            double xr = ein_ld(xs, t * a.cin) * g;
            double xi = a.cin > 1 ? ein_ld(xs, t * a.cin + 1) * g : 0.0;
            double c, sn;
            sincospi(2.0 * (double)idx / (double)a.fl, &sn, &c);
            double wr = c, wi = -sn;
            sr += xr * wr - xi * wi;
            si += xr * wi + xi * wr;
            idx += k;
            if (idx >= a.fl) idx -= a.fl;
        }
        T *e = y + i * 2;
        ein_st(e, 0, sr);
        ein_st(e, 1, si);
    }
}

extern "C" cudaError_t kc_stft(int dtype, const void *x, const void *w, void *y,
                               const kc_stft_args *a, cudaStream_t s) {
    if (a->fl < 1 || a->step < 1 || a->cin < 1 || a->cin > 2 || a->fl > a->len)
        return cudaErrorInvalidValue;
    int64_t total = a->batch * a->frames * a->bins;
    if (total <= 0) return cudaSuccess;
    unsigned g = kc_blocks(total, 128);
    switch (dtype) {
    case KC_F32:
        k_stft<float><<<g, 128, 0, s>>>((const float *)x, (const float *)w, (float *)y, *a,
                                        total);
        break;
    case KC_F16:
        k_stft<__half><<<g, 128, 0, s>>>((const __half *)x, (const __half *)w, (__half *)y, *a,
                                         total);
        break;
    case KC_BF16:
        k_stft<__nv_bfloat16><<<g, 128, 0, s>>>((const __nv_bfloat16 *)x,
                                                (const __nv_bfloat16 *)w, (__nv_bfloat16 *)y, *a,
                                                total);
        break;
    case KC_EIN_F64:
        k_stft<double><<<g, 128, 0, s>>>((const double *)x, (const double *)w, (double *)y, *a,
                                         total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

// ------------------------------------------------------------ QLinearMatMul
__device__ __forceinline__ int32_t q8(const void *p, int64_t i, int sgn) {
    return sgn ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

__global__ void k_qlmm(const void *__restrict__ a, const void *__restrict__ b, void *__restrict__ y,
                       kc_qlmm_args p, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i % p.N, r = (i / p.N) % p.M, bi = i / (p.N * p.M), oa = 0, ob = 0;
        for (int d = p.nb - 1; d >= 0; d--) {
            int64_t idx = bi % p.bout[d];
            bi /= p.bout[d];
            oa += idx * p.sa[d];
            ob += idx * p.sb[d];
        }
        const int64_t abase = (oa * p.M + r) * p.K, bbase = ob * p.K * p.N + j;
        int64_t acc = 0;
        for (int64_t k = 0; k < p.K; k++)
            acc += (int64_t)(q8(a, abase + k, p.a_signed) - p.a_zp) *
                   (int64_t)(q8(b, bbase + k * p.N, p.b_signed) - p.b_zp);
        int32_t o = (int32_t)(uint32_t)(uint64_t)acc; // wraps as numpy's int32
        double v = __dadd_rn(__dmul_rn((double)o, p.mult), p.y_zp);
        int64_t q;
        if (v != v) q = 0;
        else {
            double rr = rint(v); // half to even
            q = rr <= (double)p.lo ? p.lo : rr >= (double)p.hi ? p.hi : (int64_t)rr;
        }
        if (p.y_signed) ((int8_t *)y)[i] = (int8_t)q;
        else ((uint8_t *)y)[i] = (uint8_t)q;
    }
}

extern "C" cudaError_t kc_qlinear_matmul(const void *a, const void *b, void *y,
                                         const kc_qlmm_args *p, cudaStream_t s) {
    if (p->nb < 0 || p->nb > 4) return cudaErrorInvalidValue;
    int64_t total = p->M * p->N;
    for (int d = 0; d < p->nb; d++) total *= p->bout[d];
    if (total <= 0) return cudaSuccess;
    k_qlmm<<<kc_blocks(total, 128), 128, 0, s>>>(a, b, y, *p, total);
    return cudaGetLastError();
}
