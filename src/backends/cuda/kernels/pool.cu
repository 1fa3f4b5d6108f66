// pool.cu: pooling (sliding-window max/average/Lp, global pools) and
// Resize (nearest, linear). One thread per output element for the windowed
// ops, one warp per plane for the global pools; float32 arithmetic for
// every storage type.
#include "pool_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {

const int kThreads = 256;

unsigned blocks_for(int64_t n, int threads = kThreads) {
    int64_t b = (n + threads - 1) / threads;
    if (b > (1 << 20)) b = 1 << 20;
    return (unsigned)(b < 1 ? 1 : b);
}

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// ------------------------------------------------------------ windowed pools
template <typename T>
__global__ void k_pool(const T *__restrict__ x, T *__restrict__ y, kc_pool_params p, int64_t n) {
    const int64_t pin = p.img[0] * p.img[1] * p.img[2];
    const int64_t pout = p.grid[0] * p.grid[1] * p.grid[2];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t pc = i / pout, pos = i - pc * pout;
        int64_t o[3], s0[3], lo[3], hi[3], padcnt = 1;
        o[2] = pos % p.grid[2];
        o[1] = (pos / p.grid[2]) % p.grid[1];
        o[0] = pos / (p.grid[2] * p.grid[1]);
        bool empty = false;
#pragma unroll
        for (int a = 0; a < 3; a++) {
            int64_t st0 = o[a] * p.s[a] - p.pb[a], d = p.d[a], k = p.k[a], img = p.img[a];
            int64_t l = st0 >= 0 ? 0 : (-st0 + d - 1) / d;
            int64_t h = img - st0 <= 0 ? 0 : (img - st0 + d - 1) / d;
            int64_t ph = img + p.pe[a] - st0 <= 0 ? 0 : (img + p.pe[a] - st0 + d - 1) / d;
            l = l < k ? l : k;
            h = h < k ? h : k;
            h = h > l ? h : l;
            padcnt *= ph < k ? ph : k;
            s0[a] = st0;
            lo[a] = l;
            hi[a] = h;
            if (l == h) empty = true;
        }
        const T *xp = x + pc * pin;
        float r = 0.f;
        int64_t bi = -1; // offset of the first maximum in the plane
        if (!empty) {
            float best = 0.f, acc = 0.f;
            int64_t cnt = 0;
            for (int64_t t0 = lo[0]; t0 < hi[0]; t0++) {
                int64_t off0 = (s0[0] + t0 * p.d[0]) * p.img[1];
                for (int64_t t1 = lo[1]; t1 < hi[1]; t1++) {
                    int64_t off1 = (off0 + s0[1] + t1 * p.d[1]) * p.img[2];
                    for (int64_t t2 = lo[2]; t2 < hi[2]; t2++) {
                        float v = ld(xp, off1 + s0[2] + t2 * p.d[2]);
                        if (p.kind == KC_POOL_MAX) {
                            if (cnt == 0 || v > best) {
                                best = v;
                                bi = off1 + s0[2] + t2 * p.d[2];
                            }
                        } else if (p.kind == KC_POOL_AVG) {
                            acc += v;
                        } else if (p.p == 1.f) {
                            acc += fabsf(v);
                        } else if (p.p == 2.f) {
                            acc += v * v;
                        } else {
                            acc += powf(fabsf(v), p.p);
                        }
                        cnt++;
                    }
                }
            }
            if (p.kind == KC_POOL_MAX) r = best;
            else if (p.kind == KC_POOL_AVG) {
                int64_t div = p.include_pad ? padcnt : cnt;
                r = div ? acc / (float)div : 0.f;
            } else if (p.p == 1.f) r = acc;
            else if (p.p == 2.f) r = sqrtf(acc);
            else r = powf(acc, 1.f / p.p);
        }
        st(y, i, r);
        if (p.ind) {
            int64_t v = -1;
            if (bi >= 0) {
                v = bi;
                if (p.col_major) { // re-express the row-major offset column-major
                    int64_t c2 = bi % p.img[2], c1 = (bi / p.img[2]) % p.img[1],
                            c0 = bi / (p.img[2] * p.img[1]);
                    v = c0 + c1 * p.img[0] + c2 * p.img[0] * p.img[1];
                }
                v += pc * pin;
            }
            p.ind[i] = v;
        }
    }
}

// ------------------------------------------------------------ global pools
// One warp per plane; the pool kind is a template parameter, so each kind
// is its own straight-line kernel. (The first version took the kind at run
// time and read 16-byte vectors through a type-punned pointer; on an H100
// its max and Lp forms came out wrong while the average passed. This form
// loads elements one by one through their own type, coalesced across the
// warp, and keeps each lane's partial in a plain float.)
template <int KIND>
__device__ __forceinline__ float gp_init() {
    return KIND == KC_POOL_MAX ? -INFINITY : 0.f;
}

template <int KIND>
__device__ __forceinline__ float gp_acc(float a, float v, float p) {
    if (KIND == KC_POOL_MAX) return v > a || v != v ? v : a; // NaN propagates
    if (KIND == KC_POOL_AVG) return a + v;
    float m = fabsf(v);
    return p == 2.f ? a + m * m : p == 1.f ? a + m : a + powf(m, p);
}

template <int KIND>
__device__ __forceinline__ float gp_combine(float a, float b) {
    if (KIND == KC_POOL_MAX) return b > a || b != b ? b : a;
    return a + b;
}

template <typename T, int KIND>
__global__ void k_global_pool(const T *__restrict__ x, T *__restrict__ y, int64_t planes,
                              int64_t n, float p) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t pc = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5); pc < planes;
         pc += warps) {
        const T *xp = x + pc * n;
        float a = gp_init<KIND>();
        for (int64_t j = lane; j < n; j += 32) a = gp_acc<KIND>(a, ld(xp, j), p);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a = gp_combine<KIND>(a, __shfl_xor_sync(0xffffffffu, a, o));
        if (lane == 0) {
            float r;
            if (n == 0) r = 0.f;
            else if (KIND == KC_POOL_MAX) r = a;
            else if (KIND == KC_POOL_AVG) r = a / (float)n;
            else if (p == 2.f) r = sqrtf(a);
            else if (p == 1.f) r = a;
            else r = powf(a, 1.f / p);
            st(y, pc, r);
        }
    }
}

// ------------------------------------------------------------ resize
// Source coordinate of output index yv on one axis, with the host
// reference's operations in its order (the _rn intrinsics keep the compiler
// from fusing a multiply and an add, which would change tie decisions).
__device__ double rz_coord(int mode, double yv, const kc_resize_axis &ax) {
    double s = ax.scale;
    double ow = __dmul_rn(s, (double)ax.L), Lm1 = (double)(ax.L - 1);
    double hp = __ddiv_rn(__dadd_rn(yv, 0.5), s);
    switch (mode) {
    case KC_RZ_ALIGN_CORNERS:
        return ow == 1 ? 0.0 : __ddiv_rn(__dmul_rn(yv, Lm1), __dsub_rn(ow, 1.0));
    case KC_RZ_ASYMMETRIC:
        return __ddiv_rn(yv, s);
    case KC_RZ_TF_CROP_AND_RESIZE: {
        float d = __fsub_rn((float)ax.r1, (float)ax.r0);
        float base = __fmul_rn((float)ax.r0, (float)(ax.L - 1));
        double v = ow == 1 ? (double)__fdiv_rn(__fmul_rn(d, (float)(ax.L - 1)), 2.0f)
                           : __ddiv_rn(__dmul_rn(__dmul_rn(yv, (double)d), Lm1),
                                       __dsub_rn(ow, 1.0));
        return __dadd_rn(v, (double)base);
    }
    case KC_RZ_PYTORCH_HALF_PIXEL:
        return ow == 1 ? -0.5 : __dsub_rn(hp, 0.5);
    case KC_RZ_HALF_PIXEL_SYMMETRIC: {
        double adj = __ddiv_rn((double)ax.O, ow), center = __ddiv_rn((double)ax.L, 2.0);
        double off = __dmul_rn(center, __dsub_rn(1.0, adj));
        return __dsub_rn(__dadd_rn(off, hp), 0.5);
    }
    case KC_RZ_TF_HALF_PIXEL_FOR_NN:
        return hp;
    default:
        return __dsub_rn(hp, 0.5);
    }
}

// NT taps (2: nearest/linear, 4: cubic) of output index o: clamped indices
// and weights, as the host reference picks them. mode: KC_RZ_*. Returns
// true when the point lies outside the input (tf_crop_and_resize).
template <int NT>
__device__ bool rz_taps(const kc_resize_params &p, int mode, int64_t o, const kc_resize_axis &ax,
                        int64_t *idx, double *w) {
    double xc = rz_coord(p.coord, (double)o, ax);
    if (p.coord == KC_RZ_TF_CROP_AND_RESIZE && (xc < 0 || xc > (double)(ax.L - 1))) return true;
    if (!isfinite(xc)) xc = 0;
    xc = fmin(fmax(xc, -1e15), 1e15);
    double fl = floor(xc), ratio = xc == fl ? 1.0 : __dsub_rn(xc, fl);
    if (mode == KC_RZ_NEAREST) {
        bool up;
        if (ratio == 1.0) up = true;
        else if (p.nearest == KC_RZ_ROUND_PREFER_FLOOR) up = ratio > 0.5;
        else if (p.nearest == KC_RZ_ROUND_PREFER_CEIL) up = ratio >= 0.5;
        else if (p.nearest == KC_RZ_SIMPLE) up = ax.scale < 1;
        else up = p.nearest == KC_RZ_CEIL;
        w[0] = up ? 0 : 1;
        w[1] = up ? 1 : 0;
    } else if (NT == 2) {
        w[0] = __dsub_rn(1.0, ratio);
        w[1] = ratio;
    } else {
        double A = p.cubic_a, r = ratio, q = 1 - ratio;
        w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
        w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        w[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
        w[3] = ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A;
    }
    const int half = NT / 2;
    double xp = __dadd_rn(xc, (double)half), pf = floor(xp);
    int64_t start = (int64_t)pf + (__dsub_rn(xp, pf) == 0 ? -half : -half + 1) - half;
    if (p.exclude_outside) {
        double sum = 0;
        for (int k = 0; k < NT; k++) {
            int64_t i = start + k;
            if (i < 0 || i >= ax.L) w[k] = 0;
            sum += w[k];
        }
        if (sum == 0) sum = 1;
        for (int k = 0; k < NT; k++) w[k] = __ddiv_rn(w[k], sum);
    }
    for (int k = 0; k < NT; k++) {
        int64_t i = start + k;
        idx[k] = i < 0 ? 0 : i >= ax.L ? ax.L - 1 : i;
    }
    return false;
}

template <typename T>
__global__ void k_resize_nearest(T *__restrict__ y, const T *__restrict__ x, kc_resize_params p,
                                 int64_t n, T fill) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = 0;
        bool ext = false;
        for (int a = p.rank - 1; a >= 0; a--) {
            const kc_resize_axis &ax = p.ax[a];
            int64_t o = rem % ax.O;
            rem /= ax.O;
            int64_t m = o;
            if (!ax.identity) {
                int64_t idx[2];
                double w[2];
                if (rz_taps<2>(p, KC_RZ_NEAREST, o, ax, idx, w)) ext = true;
                else m = w[1] > w[0] ? idx[1] : idx[0];
            }
            off += m * p.istr[a];
        }
        y[i] = ext ? fill : x[off];
    }
}

// Linear (NT 2) or cubic (NT 4) over every non-identity axis: the sum over
// the NT^nr tap combinations of the product of the axes' weights.
template <typename T, int NT>
__global__ void k_resize_interp(T *__restrict__ y, const T *__restrict__ x, kc_resize_params p,
                                int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, base = 0;
        bool ext = false;
        int nr = 0;
        int64_t ti[KC_RZ_MAXD][NT];
        float tw[KC_RZ_MAXD][NT];
        for (int a = p.rank - 1; a >= 0; a--) {
            const kc_resize_axis &ax = p.ax[a];
            int64_t o = rem % ax.O;
            rem /= ax.O;
            if (ax.identity) {
                base += o * p.istr[a];
                continue;
            }
            int64_t idx[NT];
            double w[NT];
            if (rz_taps<NT>(p, NT == 2 ? KC_RZ_LINEAR : KC_RZ_CUBIC, o, ax, idx, w)) {
                ext = true;
                continue;
            }
            for (int k = 0; k < NT; k++) {
                ti[nr][k] = idx[k] * p.istr[a];
                tw[nr][k] = (float)w[k];
            }
            nr++;
        }
        if (ext) {
            st(y, i, (float)p.extrapolation);
            continue;
        }
        float acc = 0.f;
        int combos = 1;
        for (int k = 0; k < nr; k++) combos *= NT;
        for (int combo = 0; combo < combos; combo++) {
            float wt = 1.f;
            int64_t off = base;
            int c = combo;
            for (int k = 0; k < nr; k++) {
                int t = c % NT;
                c /= NT;
                wt *= tw[k][t];
                off += ti[k][t];
            }
            if (wt != 0.f) acc += wt * ld(x, off);
        }
        st(y, i, acc);
    }
}

// ------------------------------------------------------------ GridSample
// One thread per (batch, output position): the taps of each spatial dim
// are found once, then every channel is summed over them. The float
// arithmetic repeats the host reference's operations one by one (_rn
// intrinsics: no fused multiply-adds, so nearest's rounding ties and the
// padding tests decide the same way).

// Reflects x into [lo, hi] by the nearest border, repeatedly (double).
__device__ double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo) {
        double dx = __dsub_rn(lo, x);
        double k = floor(__ddiv_rn(dx, rng)), rem = __dsub_rn(dx, __dmul_rn(k, rng));
        return fmod(k, 2.0) == 0 ? __dadd_rn(lo, rem) : __dsub_rn(hi, rem);
    }
    if (x > hi) {
        double dx = __dsub_rn(x, hi);
        double k = floor(__ddiv_rn(dx, rng)), rem = __dsub_rn(dx, __dmul_rn(k, rng));
        return fmod(k, 2.0) == 0 ? __dsub_rn(hi, rem) : __dadd_rn(lo, rem);
    }
    return x;
}

// Index of a tap after padding, or -1 for a zero (padding "zeros").
__device__ int64_t gs_pixel(int64_t i, int64_t d, int pad, double lo, double hi) {
    if (pad == KC_GS_PAD_ZEROS) return i >= 0 && i < d ? i : -1;
    if (pad == KC_GS_PAD_REFLECTION) i = (int64_t)gs_reflect((double)i, lo, hi);
    return i < 0 ? 0 : i >= d ? d - 1 : i;
}

__device__ float gs_load(int dt, const void *p, int64_t i) {
    return dt == KC_DT_F16    ? __half2float(((const __half *)p)[i])
           : dt == KC_DT_BF16 ? __bfloat162float(((const __nv_bfloat16 *)p)[i])
                              : ((const float *)p)[i];
}

template <typename T>
__global__ void k_grid_sample(const T *__restrict__ x, const void *__restrict__ grid, int grid_dt,
                              T *__restrict__ y, kc_grid_sample_params p, int64_t total) {
    const int k = p.k, nt = p.mode == KC_GS_NEAREST ? 1 : p.mode == KC_GS_LINEAR ? 2 : 4;
    int64_t outsz = 1, chan = 1, ds[3];
    for (int d = 0; d < k; d++) outsz *= p.out[d];
    for (int d = k - 1; d >= 0; d--) {
        ds[d] = chan;
        chan *= p.in[d];
    }
    int combos = 1;
    for (int d = 0; d < k; d++) combos *= nt;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t n = i / outsz, pos = i - n * outsz;
        int64_t tidx[3][4];
        float tw[3][4];
        for (int d = 0; d < k; d++) {
            float v = gs_load(grid_dt, grid, (n * outsz + pos) * k + (k - 1 - d));
            float L = (float)p.in[d];
            float xc = p.align_corners
                           ? __fmul_rn(__fdiv_rn(__fadd_rn(v, 1.0f), 2.0f), __fsub_rn(L, 1.0f))
                           : __fdiv_rn(__fsub_rn(__fmul_rn(__fadd_rn(v, 1.0f), L), 1.0f), 2.0f);
            double lo = p.align_corners ? 0.0 : -0.5;
            double hi = p.align_corners ? (double)p.in[d] - 1 : (double)p.in[d] - 0.5;
            if (p.mode == KC_GS_NEAREST) xc = rintf(xc); // nearbyintf: ties to even
            if (p.mode != KC_GS_CUBIC && ((double)xc < lo || (double)xc > hi)) {
                if (p.pad == KC_GS_PAD_BORDER) {
                    float Lm1 = __fsub_rn(L, 1.0f);
                    xc = xc < 0 ? 0.0f : xc > Lm1 ? Lm1 : xc;
                } else if (p.pad == KC_GS_PAD_REFLECTION) {
                    xc = (float)gs_reflect((double)xc, lo, hi);
                }
            }
            if (!(xc >= -1e9f)) xc = -1e9f;
            if (xc > 1e9f) xc = 1e9f;
            if (p.mode == KC_GS_NEAREST) {
                tidx[d][0] = gs_pixel((int64_t)xc, p.in[d], p.pad, lo, hi);
                tw[d][0] = 1.0f;
                continue;
            }
            float fl = floorf(xc);
            int64_t i0 = (int64_t)fl;
            float t = __fsub_rn(xc, fl);
            if (p.mode == KC_GS_LINEAR) {
                tw[d][0] = __fsub_rn(1.0f, t);
                tw[d][1] = t;
                for (int j = 0; j < 2; j++) tidx[d][j] = gs_pixel(i0 + j, p.in[d], p.pad, lo, hi);
            } else {
                const float A = -0.75f;
                float a = fabsf(t), b = 1.0f - a, a1 = a + 1.0f, b1 = 2.0f - a;
                tw[d][0] = ((A * a1 - 5 * A) * a1 + 8 * A) * a1 - 4 * A;
                tw[d][1] = ((A + 2) * a - (A + 3)) * a * a + 1;
                tw[d][2] = ((A + 2) * b - (A + 3)) * b * b + 1;
                tw[d][3] = ((A * b1 - 5 * A) * b1 + 8 * A) * b1 - 4 * A;
                for (int j = 0; j < 4; j++)
                    tidx[d][j] = gs_pixel(i0 - 1 + j, p.in[d], p.pad, lo, hi);
            }
        }
        for (int64_t ch = 0; ch < p.c; ch++) {
            const T *xs = x + (n * p.c + ch) * chan;
            float acc = 0.0f;
            for (int cb = 0; cb < combos; cb++) {
                int q = cb;
                int64_t off = 0;
                float wt = 1.0f;
                bool zero = false;
                for (int d = k - 1; d >= 0; d--) {
                    int j = q % nt;
                    q /= nt;
                    if (tidx[d][j] < 0) zero = true;
                    else off += tidx[d][j] * ds[d];
                    wt = __fmul_rn(wt, tw[d][j]);
                }
                if (!zero) acc = __fadd_rn(acc, __fmul_rn(wt, ld(xs, off)));
            }
            st(y, (n * p.c + ch) * outsz + pos, acc);
        }
    }
}

template <typename T>
cudaError_t grid_sample_t(int grid_dt, const void *x, const void *grid, void *y,
                          const kc_grid_sample_params *p, cudaStream_t s) {
    int64_t total = p->n;
    for (int d = 0; d < p->k; d++) total *= p->out[d];
    if (total <= 0 || p->c <= 0) return cudaSuccess;
    k_grid_sample<T><<<blocks_for(total, 128), 128, 0, s>>>((const T *)x, grid, grid_dt, (T *)y,
                                                              *p, total);
    return cudaGetLastError();
}

// ------------------------------------------------------------ AffineGrid
template <typename T>
__global__ void k_affine_grid(const T *__restrict__ theta, T *__restrict__ grid,
                              kc_affine_grid_params p, int64_t total) {
    const int k = p.k;
    int64_t sp = 1;
    for (int d = 0; d < k; d++) sp *= p.size[d];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i / sp, pos = i - b * sp, rem = pos;
        double base[3], hom[4];
        for (int d = k - 1; d >= 0; d--) {
            int64_t idx = rem % p.size[d];
            rem /= p.size[d];
            double L = (double)p.size[d], x = (double)idx;
            if (p.align_corners)
                base[d] = L <= 1 ? 0.0 : __dadd_rn(-1.0, __dmul_rn(x, __ddiv_rn(2.0, __dsub_rn(L, 1.0))));
            else
                base[d] = __dadd_rn(__dadd_rn(-1.0, __ddiv_rn(__ddiv_rn(2.0, L), 2.0)),
                                    __dmul_rn(x, __ddiv_rn(2.0, L)));
        }
        for (int d = 0; d < k; d++) hom[d] = base[k - 1 - d];
        hom[k] = 1.0;
        const T *t = theta + b * k * (k + 1);
        for (int row = 0; row < k; row++) {
            double v = 0;
            for (int j = 0; j <= k; j++)
                v = __dadd_rn(v, __dmul_rn((double)ld(t, row * (k + 1) + j), hom[j]));
            st(grid, i * k + row, (float)v);
        }
    }
}

// ------------------------------------------------------------ antialiased resize
__device__ double rz_cubic_w(double x, double A) {
    x = fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
}

// The stretched kernel at tap k of an axis (before normalization).
__device__ __forceinline__ double rz_aa_f(int cubic, double A, int nt, int k, double ratio,
                                          double sc) {
    double arg = ((double)(1 - nt / 2 + k) - ratio) * sc;
    return cubic ? rz_cubic_w(arg, A) : fmin(fmax(1 - fabs(arg), 0.0), 1.0);
}

template <typename T>
__global__ void k_resize_aa(T *__restrict__ y, const T *__restrict__ x, kc_resize_params p,
                            int64_t n, int cubic) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, base = 0;
        bool ext = false;
        int nr = 0;
        int ax_of[KC_RZ_AA_MAXAX], nt[KC_RZ_AA_MAXAX];
        int64_t start[KC_RZ_AA_MAXAX];
        double ratio[KC_RZ_AA_MAXAX], sc[KC_RZ_AA_MAXAX], inv1[KC_RZ_AA_MAXAX],
            inv2[KC_RZ_AA_MAXAX];
        for (int a = p.rank - 1; a >= 0; a--) {
            const kc_resize_axis &ax = p.ax[a];
            int64_t o = rem % ax.O;
            rem /= ax.O;
            if (ax.identity) {
                base += o * p.istr[a];
                continue;
            }
            if (nr == KC_RZ_AA_MAXAX) continue; // the host never sends more
            double xc = rz_coord(p.coord, (double)o, ax);
            if (p.coord == KC_RZ_TF_CROP_AND_RESIZE && (xc < 0 || xc > (double)(ax.L - 1))) {
                ext = true;
                continue;
            }
            if (!isfinite(xc)) xc = 0;
            xc = fmin(fmax(xc, -1e15), 1e15);
            double fl = floor(xc), r = xc == fl ? 1.0 : __dsub_rn(xc, fl);
            double s = ax.scale < 1 ? ax.scale : 1.0;
            int m = ax.nt, half = m / 2;
            double xp = __dadd_rn(xc, (double)half), pf = floor(xp);
            int64_t st0 = (int64_t)pf + (__dsub_rn(xp, pf) == 0 ? -half : -half + 1) - half;
            double sum = 0, sum2 = 0;
            for (int k = 0; k < m; k++) sum += rz_aa_f(cubic, p.cubic_a, m, k, r, s);
            for (int k = 0; k < m; k++) {
                int64_t t = st0 + k;
                if (!p.exclude_outside || (t >= 0 && t < ax.L))
                    sum2 += rz_aa_f(cubic, p.cubic_a, m, k, r, s) / sum;
            }
            if (sum2 == 0) sum2 = 1;
            ax_of[nr] = a, nt[nr] = m, start[nr] = st0, ratio[nr] = r, sc[nr] = s;
            inv1[nr] = sum;
            inv2[nr] = p.exclude_outside ? sum2 : 1.0;
            nr++;
        }
        if (ext) {
            st(y, i, (float)p.extrapolation);
            continue;
        }
        int64_t combos = 1;
        for (int k = 0; k < nr; k++) combos *= nt[k];
        float acc = 0.f;
        for (int64_t c = 0; c < combos; c++) {
            int64_t q = c, off = base;
            float wt = 1.f;
            for (int k = 0; k < nr; k++) {
                int j = (int)(q % nt[k]);
                q /= nt[k];
                const kc_resize_axis &ax = p.ax[ax_of[k]];
                int64_t t = start[k] + j;
                double w = rz_aa_f(cubic, p.cubic_a, nt[k], j, ratio[k], sc[k]) / inv1[k];
                if (p.exclude_outside) w = (t < 0 || t >= ax.L) ? 0.0 : w / inv2[k];
                wt *= (float)w;
                off += (t < 0 ? 0 : t >= ax.L ? ax.L - 1 : t) * p.istr[ax_of[k]];
            }
            if (wt != 0.f) acc += wt * ld(x, off);
        }
        st(y, i, acc);
    }
}

template <typename T>
cudaError_t aa_t(int cubic, void *y, const void *x, const kc_resize_params *p, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->ax[a].O;
    if (n <= 0) return cudaSuccess;
    k_resize_aa<T><<<blocks_for(n, 128), 128, 0, s>>>((T *)y, (const T *)x, *p, n, cubic);
    return cudaGetLastError();
}

// ------------------------------------------------------------ LRN
template <typename T>
__global__ void k_lrn(const T *__restrict__ x, T *__restrict__ y, int64_t C, int64_t inner,
                      int64_t size, double alpha, double beta, double bias, int64_t total) {
    const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t s = i % inner, nc = i / inner, ch = nc % C, n = nc / C;
        int64_t c0 = ch - lo < 0 ? 0 : ch - lo, c1 = ch + hi > C - 1 ? C - 1 : ch + hi;
        double q = 0;
        for (int64_t k = c0; k <= c1; k++) {
            double t = (double)ld(x, (n * C + k) * inner + s);
            q += t * t;
        }
        double v = (double)ld(x, i) / pow(bias + alpha / (double)size * q, beta);
        st(y, i, (float)v);
    }
}

template <typename T> T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}

template <typename T>
cudaError_t pool_t(const void *x, void *y, const kc_pool_params *p, cudaStream_t s) {
    int64_t n = p->planes * p->grid[0] * p->grid[1] * p->grid[2];
    if (n <= 0) return cudaSuccess;
    k_pool<T><<<blocks_for(n), kThreads, 0, s>>>((const T *)x, (T *)y, *p, n);
    return cudaGetLastError();
}

template <typename T>
cudaError_t global_pool_t(const void *x, void *y, int64_t planes, int64_t n, int kind, float p,
                          cudaStream_t s) {
    if (planes <= 0) return cudaSuccess;
    int64_t blocks = (planes + 7) / 8; // 8 warps of 256 threads, one plane each
    if (blocks > (1 << 20)) blocks = 1 << 20;
    const T *xt = (const T *)x;
    T *yt = (T *)y;
    switch (kind) {
    case KC_POOL_MAX:
        k_global_pool<T, KC_POOL_MAX><<<(unsigned)blocks, 256, 0, s>>>(xt, yt, planes, n, p);
        break;
    case KC_POOL_AVG:
        k_global_pool<T, KC_POOL_AVG><<<(unsigned)blocks, 256, 0, s>>>(xt, yt, planes, n, p);
        break;
    case KC_POOL_LP:
        k_global_pool<T, KC_POOL_LP><<<(unsigned)blocks, 256, 0, s>>>(xt, yt, planes, n, p);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

template <typename T, int NT>
cudaError_t interp_t(void *y, const void *x, const kc_resize_params *p, cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->ax[a].O;
    if (n <= 0) return cudaSuccess;
    k_resize_interp<T, NT><<<blocks_for(n), kThreads, 0, s>>>((T *)y, (const T *)x, *p, n);
    return cudaGetLastError();
}

template <typename T>
cudaError_t nearest_t(void *y, const void *x, const kc_resize_params *p, uint64_t fill,
                      cudaStream_t s) {
    int64_t n = 1;
    for (int a = 0; a < p->rank; a++) n *= p->ax[a].O;
    if (n <= 0) return cudaSuccess;
    k_resize_nearest<T><<<blocks_for(n), kThreads, 0, s>>>((T *)y, (const T *)x, *p, n,
                                                            from_bits<T>(fill));
    return cudaGetLastError();
}


// ------------------------------------------------------------ RoiAlign, MaxRoiPool
// One thread per output element, each working out its ROI's geometry
// itself. The float operations are the host reference's, in its order and
// without contraction (__fmul_rn/__fadd_rn/__fdiv_rn), so a sample lands in
// the same cell as on the host. A batch index outside [0, N) gives zeros
// (the host refuses the run; the device cannot without a sync).
#define ROI_MAX_GRID 4096

template <typename T>
__global__ void k_roialign(const T *__restrict__ x, const T *__restrict__ rois,
                           const long long *__restrict__ bidx, T *__restrict__ y,
                           kc_roialign_params p, int64_t total) {
    const int64_t hw = p.h * p.w, ohw = p.oh * p.ow;
    const float off = p.half_pixel ? 0.5f : 0.0f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t pw = i % p.ow, ph = (i / p.ow) % p.oh;
        int64_t ch = (i / ohw) % p.c, r = i / (ohw * p.c);
        long long b = bidx[r];
        if (b < 0 || b >= p.n || hw == 0) {
            st(y, i, 0.0f);
            continue;
        }
        float x0 = __fsub_rn(__fmul_rn(ld(rois, r * 4 + 0), p.scale), off);
        float y0 = __fsub_rn(__fmul_rn(ld(rois, r * 4 + 1), p.scale), off);
        float x1 = __fsub_rn(__fmul_rn(ld(rois, r * 4 + 2), p.scale), off);
        float y1 = __fsub_rn(__fmul_rn(ld(rois, r * 4 + 3), p.scale), off);
        float rw = __fsub_rn(x1, x0), rh = __fsub_rn(y1, y0);
        if (!p.half_pixel) {
            rw = fmaxf(rw, 1.0f);
            rh = fmaxf(rh, 1.0f);
        }
        float bh = __fdiv_rn(rh, (float)p.oh), bw = __fdiv_rn(rw, (float)p.ow);
        double gh = p.sampling_ratio > 0 ? (double)p.sampling_ratio : ceil((double)bh);
        double gw = p.sampling_ratio > 0 ? (double)p.sampling_ratio : ceil((double)bw);
        int64_t ngh = gh >= 1 ? (int64_t)fmin(gh, (double)ROI_MAX_GRID) : 0;
        int64_t ngw = gw >= 1 ? (int64_t)fmin(gw, (double)ROI_MAX_GRID) : 0;
        float count = (float)(ngh * ngw > 1 ? ngh * ngw : 1);
        const T *xc = x + (b * p.c + ch) * hw;
        float acc = 0.0f;
        bool first = true;
        for (int64_t iy = 0; iy < ngh; iy++) {
            float yy = __fadd_rn(__fadd_rn(y0, __fmul_rn((float)ph, bh)),
                                 __fdiv_rn(__fmul_rn(__fadd_rn((float)iy, 0.5f), bh), (float)ngh));
            for (int64_t ix = 0; ix < ngw; ix++) {
                float xx = __fadd_rn(__fadd_rn(x0, __fmul_rn((float)pw, bw)),
                                     __fdiv_rn(__fmul_rn(__fadd_rn((float)ix, 0.5f), bw),
                                               (float)ngw));
                int64_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                float w1 = 0, w2 = 0, w3 = 0, w4 = 0;
                float sy = yy, sx = xx;
                if (!(sy < -1.0f || sy > (float)p.h || sx < -1.0f || sx > (float)p.w ||
                      sy != sy || sx != sx)) {
                    sy = fmaxf(sy, 0.0f);
                    sx = fmaxf(sx, 0.0f);
                    int64_t yl = (int64_t)sy, xl = (int64_t)sx, yh, xh;
                    if (yl >= p.h - 1) {
                        yh = yl = p.h - 1;
                        sy = (float)yl;
                    } else {
                        yh = yl + 1;
                    }
                    if (xl >= p.w - 1) {
                        xh = xl = p.w - 1;
                        sx = (float)xl;
                    } else {
                        xh = xl + 1;
                    }
                    float ly = __fsub_rn(sy, (float)yl), lx = __fsub_rn(sx, (float)xl);
                    float hy = __fsub_rn(1.0f, ly), hx = __fsub_rn(1.0f, lx);
                    w1 = __fmul_rn(hy, hx);
                    w2 = __fmul_rn(hy, lx);
                    w3 = __fmul_rn(ly, hx);
                    w4 = __fmul_rn(ly, lx);
                    p1 = yl * p.w + xl;
                    p2 = yl * p.w + xh;
                    p3 = yh * p.w + xl;
                    p4 = yh * p.w + xh;
                }
                float v1 = __fmul_rn(w1, ld(xc, p1)), v2 = __fmul_rn(w2, ld(xc, p2));
                float v3 = __fmul_rn(w3, ld(xc, p3)), v4 = __fmul_rn(w4, ld(xc, p4));
                if (p.is_max) {
                    float v = fmaxf(fmaxf(v1, v2), fmaxf(v3, v4));
                    acc = first ? v : fmaxf(acc, v);
                } else {
                    acc = __fadd_rn(acc, __fadd_rn(__fadd_rn(__fadd_rn(v1, v2), v3), v4));
                }
                first = false;
            }
        }
        if (!p.is_max) acc = __fdiv_rn(acc, count);
        st(y, i, acc);
    }
}

// MaxRoiPool, Caffe's rules: rois [R, 5] = (batch, x1, y1, x2, y2) in x's
// type, corners rounded after scaling, bins of rh/ph and rw/pw cells.
template <typename T>
__global__ void k_max_roi_pool(const T *__restrict__ x, const T *__restrict__ rois,
                               T *__restrict__ y, kc_max_roi_pool_params p, int64_t total) {
    const int64_t lim = (int64_t)1 << 40;
    const int64_t phw = p.ph * p.pw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i % p.pw, ii = (i / p.pw) % p.ph;
        int64_t ch = (i / phw) % p.c, r = i / (phw * p.c);
        double bd = (double)ld(rois, r * 5);
        if (!(bd >= 0) || bd >= (double)p.n || bd != (double)(int64_t)bd) {
            st(y, i, 0.0f);
            continue;
        }
        int64_t bi = (int64_t)bd, v[4];
        for (int k = 0; k < 4; k++) {
            double prod = (double)__fmul_rn(ld(rois, r * 5 + 1 + k), p.scale);
            double rq = round(prod);
            int64_t q = rq != rq ? 0 : rq >= 9.2e18 ? INT64_MAX : rq <= -9.2e18 ? INT64_MIN
                                                                            : (int64_t)rq;
            v[k] = q < -lim ? -lim : q > lim ? lim : q;
        }
        int64_t sw = v[0], sh = v[1], ew = v[2], eh = v[3];
        int64_t rh = eh - sh + 1 > 1 ? eh - sh + 1 : 1, rw = ew - sw + 1 > 1 ? ew - sw + 1 : 1;
        float bh = __fdiv_rn((float)rh, (float)p.ph), bw = __fdiv_rn((float)rw, (float)p.pw);
        int64_t hs = (int64_t)floorf(__fmul_rn((float)ii, bh)) + sh;
        int64_t he = (int64_t)ceilf(__fmul_rn((float)(ii + 1), bh)) + sh;
        int64_t ws = (int64_t)floorf(__fmul_rn((float)j, bw)) + sw;
        int64_t we = (int64_t)ceilf(__fmul_rn((float)(j + 1), bw)) + sw;
        hs = hs < 0 ? 0 : hs > p.h ? p.h : hs;
        he = he < 0 ? 0 : he > p.h ? p.h : he;
        ws = ws < 0 ? 0 : ws > p.w ? p.w : ws;
        we = we < 0 ? 0 : we > p.w ? p.w : we;
        const T *xp = x + (bi * p.c + ch) * p.h * p.w;
        float best = 0.0f;
        bool any = false;
        for (int64_t h = hs; h < he; h++)
            for (int64_t w2 = ws; w2 < we; w2++) {
                float val = ld(xp, h * p.w + w2);
                if (!any || val > best) best = val;
                any = true;
            }
        st(y, i, best);
    }
}

} // namespace

extern "C" cudaError_t kc_pool(int dt, const void *x, void *y, const kc_pool_params *p,
                               cudaStream_t s) {
    switch (dt) {
    case KC_DT_F32: return pool_t<float>(x, y, p, s);
    case KC_DT_F16: return pool_t<__half>(x, y, p, s);
    case KC_DT_BF16: return pool_t<__nv_bfloat16>(x, y, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_global_pool(int dt, const void *x, void *y, int64_t planes, int64_t n,
                                      int kind, float p, cudaStream_t s) {
    switch (dt) {
    case KC_DT_F32: return global_pool_t<float>(x, y, planes, n, kind, p, s);
    case KC_DT_F16: return global_pool_t<__half>(x, y, planes, n, kind, p, s);
    case KC_DT_BF16: return global_pool_t<__nv_bfloat16>(x, y, planes, n, kind, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_resize_nearest(void *y, const void *x, const kc_resize_params *p, int es,
                                         uint64_t fill, cudaStream_t s) {
    if (p->rank < 1 || p->rank > KC_RZ_MAXD) return cudaErrorInvalidValue;
    switch (es) {
    case 1: return nearest_t<uint8_t>(y, x, p, fill, s);
    case 2: return nearest_t<uint16_t>(y, x, p, fill, s);
    case 4: return nearest_t<uint32_t>(y, x, p, fill, s);
    case 8: return nearest_t<uint64_t>(y, x, p, fill, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_resize_linear(int dt, void *y, const void *x, const kc_resize_params *p,
                                        cudaStream_t s) {
    if (p->rank < 1 || p->rank > KC_RZ_MAXD) return cudaErrorInvalidValue;
    switch (dt) {
    case KC_DT_F32: return interp_t<float, 2>(y, x, p, s);
    case KC_DT_F16: return interp_t<__half, 2>(y, x, p, s);
    case KC_DT_BF16: return interp_t<__nv_bfloat16, 2>(y, x, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_resize_cubic(int dt, void *y, const void *x, const kc_resize_params *p,
                                       cudaStream_t s) {
    if (p->rank < 1 || p->rank > KC_RZ_MAXD) return cudaErrorInvalidValue;
    switch (dt) {
    case KC_DT_F32: return interp_t<float, 4>(y, x, p, s);
    case KC_DT_F16: return interp_t<__half, 4>(y, x, p, s);
    case KC_DT_BF16: return interp_t<__nv_bfloat16, 4>(y, x, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_grid_sample(int x_dt, int grid_dt, const void *x, const void *grid,
                                      void *y, const kc_grid_sample_params *p, cudaStream_t s) {
    if (p->k < 1 || p->k > 3 || grid_dt < KC_DT_F32 || grid_dt > KC_DT_BF16 ||
        p->mode < KC_GS_LINEAR || p->mode > KC_GS_CUBIC)
        return cudaErrorInvalidValue;
    switch (x_dt) {
    case KC_DT_F32: return grid_sample_t<float>(grid_dt, x, grid, y, p, s);
    case KC_DT_F16: return grid_sample_t<__half>(grid_dt, x, grid, y, p, s);
    case KC_DT_BF16: return grid_sample_t<__nv_bfloat16>(grid_dt, x, grid, y, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_affine_grid(int dt, const void *theta, void *grid,
                                      const kc_affine_grid_params *p, cudaStream_t s) {
    if (p->k < 2 || p->k > 3) return cudaErrorInvalidValue;
    int64_t total = p->n;
    for (int d = 0; d < p->k; d++) total *= p->size[d];
    if (total <= 0) return cudaSuccess;
    unsigned b = blocks_for(total, 128);
    switch (dt) {
    case KC_DT_F32:
        k_affine_grid<float><<<b, 128, 0, s>>>((const float *)theta, (float *)grid, *p, total);
        break;
    case KC_DT_F16:
        k_affine_grid<__half><<<b, 128, 0, s>>>((const __half *)theta, (__half *)grid, *p, total);
        break;
    case KC_DT_BF16:
        k_affine_grid<__nv_bfloat16><<<b, 128, 0, s>>>((const __nv_bfloat16 *)theta,
                                                       (__nv_bfloat16 *)grid, *p, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_resize_aa(int dt, int cubic, void *y, const void *x,
                                    const kc_resize_params *p, cudaStream_t s) {
    if (p->rank < 1 || p->rank > KC_RZ_MAXD) return cudaErrorInvalidValue;
    int nr = 0;
    for (int a = 0; a < p->rank; a++)
        if (!p->ax[a].identity) {
            if (p->ax[a].nt < 1) return cudaErrorInvalidValue;
            nr++;
        }
    if (nr > KC_RZ_AA_MAXAX) return cudaErrorInvalidValue;
    switch (dt) {
    case KC_DT_F32: return aa_t<float>(cubic, y, x, p, s);
    case KC_DT_F16: return aa_t<__half>(cubic, y, x, p, s);
    case KC_DT_BF16: return aa_t<__nv_bfloat16>(cubic, y, x, p, s);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t kc_lrn(int dt, const void *x, void *y, int64_t n, int64_t c,
                              int64_t inner, int64_t size, double alpha, double beta,
                              double bias, cudaStream_t s) {
    int64_t total = n * c * inner;
    if (size < 1) return cudaErrorInvalidValue;
    if (total <= 0) return cudaSuccess;
    unsigned b = blocks_for(total);
    switch (dt) {
    case KC_DT_F32:
        k_lrn<float><<<b, kThreads, 0, s>>>((const float *)x, (float *)y, c, inner, size, alpha,
                                            beta, bias, total);
        break;
    case KC_DT_F16:
        k_lrn<__half><<<b, kThreads, 0, s>>>((const __half *)x, (__half *)y, c, inner, size,
                                             alpha, beta, bias, total);
        break;
    case KC_DT_BF16:
        k_lrn<__nv_bfloat16><<<b, kThreads, 0, s>>>((const __nv_bfloat16 *)x,
                                                    (__nv_bfloat16 *)y, c, inner, size, alpha,
                                                    beta, bias, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_roialign(int dt, const void *x, const void *rois, const void *bidx,
                                   void *y, const kc_roialign_params *p, cudaStream_t s) {
    int64_t total = p->r * p->c * p->oh * p->ow;
    if (total <= 0) return cudaSuccess;
    unsigned b = blocks_for(total);
    const long long *bi = (const long long *)bidx;
    switch (dt) {
    case KC_DT_F32:
        k_roialign<float><<<b, kThreads, 0, s>>>((const float *)x, (const float *)rois, bi,
                                                 (float *)y, *p, total);
        break;
    case KC_DT_F16:
        k_roialign<__half><<<b, kThreads, 0, s>>>((const __half *)x, (const __half *)rois, bi,
                                                  (__half *)y, *p, total);
        break;
    case KC_DT_BF16:
        k_roialign<__nv_bfloat16><<<b, kThreads, 0, s>>>((const __nv_bfloat16 *)x,
                                                         (const __nv_bfloat16 *)rois, bi,
                                                         (__nv_bfloat16 *)y, *p, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_max_roi_pool(int dt, const void *x, const void *rois, void *y,
                                       const kc_max_roi_pool_params *p, cudaStream_t s) {
    int64_t total = p->r * p->c * p->ph * p->pw;
    if (total <= 0) return cudaSuccess;
    unsigned b = blocks_for(total);
    switch (dt) {
    case KC_DT_F32:
        k_max_roi_pool<float><<<b, kThreads, 0, s>>>((const float *)x, (const float *)rois,
                                                     (float *)y, *p, total);
        break;
    case KC_DT_F16:
        k_max_roi_pool<__half><<<b, kThreads, 0, s>>>((const __half *)x, (const __half *)rois,
                                                      (__half *)y, *p, total);
        break;
    case KC_DT_BF16:
        k_max_roi_pool<__nv_bfloat16><<<b, kThreads, 0, s>>>(
            (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)rois, (__nv_bfloat16 *)y, *p, total);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
