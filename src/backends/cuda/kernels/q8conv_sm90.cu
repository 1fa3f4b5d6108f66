// q8conv_sm90.cu: the Hopper INT8 implicit-GEMM convolution with the
// requantization in its epilogue (C seam and contract: q8conv_sm90_kernels.h).
// Built on CUTLASS 3.x headers (found by cuda.cmake, never copied here):
// CUTLASS's SM90 conv mainloop (im2col TMA loads of x, tiled TMA loads of w,
// wgmma s8/u8 x s8 -> s32, warp-specialized) and a TMA epilogue whose
// per-element math is our own visitor tree:
//   acc (s32) -> float -> fma(acc, alpha[m], beta[m])      (per-channel rows)
//             [-> fma(gamma, float(r), v)]                   (residual, TMA-loaded C)
//             -> clamp(lo, hi) -> rint -> store s8/u8
// The conv GEMM is M = N*OH*OW output pixels, N = output channels, K =
// (C, KW, KH); "per column" in GEMM terms is per output channel.
//
// y's bytes are stored through one int8 element type whatever y's sign: for
// uint8 y the functor rounds itself and maps u in 128..255 to u - 256, whose
// int8 bit pattern is u (the store's own conversion is then exact). The same
// trick reads a uint8 residual through an int8 C. This keeps the build to one
// instantiation per (x type, residual, configuration).
//
// The FP8 kind (kc_f8conv_sm90_plan) is the same kernel with e4m3 x and w,
// f32 accumulators, and a clamp-only epilogue storing f16.
//
// Only with KILN_HAVE_CUTLASS and KILN_CUTLASS_SM90A; otherwise every entry
// answers cudaErrorNotSupported and kc_q8conv_sm90_built() is 0.
#define KC_Q8CONV_SM90_INTERNAL
#include "q8conv_sm90_kernels.h"

#include <stdint.h>

#if defined(KILN_HAVE_CUTLASS) && defined(KILN_CUTLASS_SM90A)

#include <cute/tensor.hpp>
#include <cutlass/kernel_hardware_info.hpp>
#include <cutlass/conv/collective/collective_builder.hpp>
#include <cutlass/conv/convnd_problem_shape.hpp>
#include <cutlass/conv/device/conv_universal_adapter.hpp>
#include <cutlass/conv/kernel/conv_universal.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp>

#include <cmath>
#include <new>
#include <type_traits>

namespace kiln_q8conv {

using namespace cute;
using namespace cutlass::epilogue::fusion;

// The epilogue's run-time scalars, shared by both requantization functors.
struct ReqArgs {
    float lo, hi;      // clamp bounds (integers, inside y's type range)
    float gamma;       // residual scale
    int y_unsigned;    // store uint8 bytes through the int8 element
    int r_unsigned;    // read the residual's int8 bytes as uint8
};

// clamp, round half to even, and the uint8 byte mapping (see top)
CUTLASS_DEVICE float req_one(float v, ReqArgs const &a) {
    float u = rintf(fminf(fmaxf(v, a.lo), a.hi)); // NaN -> lo (fmaxf)
    return a.y_unsigned && u > 127.5f ? u - 256.0f : u;
}

CUTLASS_DEVICE float res_one(float r, ReqArgs const &a) {
    return a.r_unsigned && r < 0.0f ? r + 256.0f : r;
}

// Sm90Compute calls F<Array<float, N>>{}(inputs..., args).
template <class T> struct Requant;
template <int N> struct Requant<cutlass::Array<float, N>> {
    using Arguments = ReqArgs;
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &v,
                                                       Arguments const &a) const {
        cutlass::Array<float, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = req_one(v[i], a);
        return y;
    }
};
template <> struct Requant<float> {
    using Arguments = ReqArgs;
    CUTLASS_DEVICE float operator()(float v, Arguments const &a) const { return req_one(v, a); }
};

template <class T> struct RequantRes;
template <int N> struct RequantRes<cutlass::Array<float, N>> {
    using Arguments = ReqArgs;
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &v,
                                                       cutlass::Array<float, N> const &r,
                                                       Arguments const &a) const {
        cutlass::Array<float, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = req_one(fmaf(a.gamma, res_one(r[i], a), v[i]), a);
        return y;
    }
};
template <> struct RequantRes<float> {
    using Arguments = ReqArgs;
    CUTLASS_DEVICE float operator()(float v, float r, Arguments const &a) const {
        return req_one(fmaf(a.gamma, res_one(r, a), v), a);
    }
};

// a * b + c as one fmaf (CUTLASS's multiply_add leaves the fusion to the
// compiler; the test's reference computes fmaf, so spell it out)
template <class T> struct Fma;
template <int N> struct Fma<cutlass::Array<float, N>> {
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &a,
                                                       cutlass::Array<float, N> const &b,
                                                       cutlass::Array<float, N> const &c) const {
        cutlass::Array<float, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = fmaf(a[i], b[i], c[i]);
        return y;
    }
};
template <> struct Fma<float> {
    CUTLASS_DEVICE float operator()(float a, float b, float c) const { return fmaf(a, b, c); }
};

constexpr auto kRN = cutlass::FloatRoundStyle::round_to_nearest;

// The FP8 kind's epilogue scalars and functors: clamp (lo/hi may be
// infinite), the residual as a second FMA; the store rounds to f16.
struct F8Args {
    float lo, hi, gamma;
};

template <class T> struct Clamp;
template <int N> struct Clamp<cutlass::Array<float, N>> {
    using Arguments = F8Args;
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &v,
                                                       Arguments const &a) const {
        cutlass::Array<float, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = fminf(fmaxf(v[i], a.lo), a.hi);
        return y;
    }
};
template <> struct Clamp<float> {
    using Arguments = F8Args;
    CUTLASS_DEVICE float operator()(float v, Arguments const &a) const {
        return fminf(fmaxf(v, a.lo), a.hi);
    }
};

template <class T> struct ClampRes;
template <int N> struct ClampRes<cutlass::Array<float, N>> {
    using Arguments = F8Args;
    CUTLASS_DEVICE cutlass::Array<float, N> operator()(cutlass::Array<float, N> const &v,
                                                       cutlass::Array<float, N> const &r,
                                                       Arguments const &a) const {
        cutlass::Array<float, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = fminf(fmaxf(fmaf(a.gamma, r[i], v[i]), a.lo), a.hi);
        return y;
    }
};
template <> struct ClampRes<float> {
    using Arguments = F8Args;
    CUTLASS_DEVICE float operator()(float v, float r, Arguments const &a) const {
        return fminf(fmaxf(fmaf(a.gamma, r, v), a.lo), a.hi);
    }
};


// acc * alpha[m] + beta[m], in float (one FMA)
template <class Tile>
using ScaleBias = Sm90EVT<Sm90Compute<Fma, float, float, kRN>,
                          Sm90AccFetch, Sm90RowBroadcast<0, Tile, float, float>,
                          Sm90RowBroadcast<0, Tile, float, float>>;

// The int8 kind: s8/u8 x, s8 w, s32 accumulators, s8/u8 y (through int8
// elements, see top), s8/u8 residual.
struct KindQ8 {
    using W = int8_t;
    using Acc = int32_t;
    using D = int8_t;
    using Args = ReqArgs;
    template <class Tile, bool HasR>
    using Epi = std::conditional_t<
        HasR,
        Sm90EVT<Sm90Compute<RequantRes, int8_t, float, kRN>, ScaleBias<Tile>,
                Sm90SrcFetch<int8_t>>,
        Sm90EVT<Sm90Compute<Requant, int8_t, float, kRN>, ScaleBias<Tile>>>;
};

// The FP8 kind: e4m3 x and w, f32 accumulators, f16 y and residual.
struct KindF8 {
    using W = cutlass::float_e4m3_t;
    using Acc = float;
    using D = cutlass::half_t;
    using Args = F8Args;
    template <class Tile, bool HasR>
    using Epi = std::conditional_t<
        HasR,
        Sm90EVT<Sm90Compute<ClampRes, cutlass::half_t, float, kRN>, ScaleBias<Tile>,
                Sm90SrcFetch<cutlass::half_t>>,
        Sm90EVT<Sm90Compute<Clamp, cutlass::half_t, float, kRN>, ScaleBias<Tile>>>;
};

// One instantiation: the kind, x's element type, residual or not, CTA tile
// (pixels x channels x reduction), cluster, pipeline stages (0: as many as
// fit).
template <class Kind, class XElem, bool HasR, class Tile, class Cluster, int Stages>
struct Conv {
    using Layout = cutlass::layout::TensorNHWC; // x, w (as [M,KH,KW,C]), y, r
    using W = typename Kind::W;
    using D = typename Kind::D;
    using Args = typename Kind::Args;
    using ElementC = std::conditional_t<HasR, D, void>;
    static constexpr int kAlignD = 128 / cutlass::sizeof_bits<D>::value;

    using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Tile, Cluster,
        cutlass::epilogue::collective::EpilogueTileAuto, typename Kind::Acc, float, ElementC,
        Layout, kAlignD, D, Layout, kAlignD, cutlass::epilogue::TmaWarpSpecialized,
        typename Kind::template Epi<Tile, HasR>>::CollectiveOp;

    using CollectiveMainloop = typename cutlass::conv::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cutlass::conv::Operator::kFprop,
        XElem, Layout, 16, W, Layout, 16, typename Kind::Acc, Tile, Cluster,
        std::conditional_t<(Stages > 0), cutlass::conv::collective::StageCount<Stages>,
                           cutlass::conv::collective::StageCountAutoCarveout<static_cast<int>(
                               sizeof(typename CollectiveEpilogue::SharedStorage))>>,
        cutlass::conv::KernelImplicitTmaWarpSpecializedSm90>::CollectiveOp;

    using Problem = cutlass::conv::ConvProblemShape<cutlass::conv::Operator::kFprop, 2>;
    using Kernel =
        cutlass::conv::kernel::ConvUniversal<Problem, CollectiveMainloop, CollectiveEpilogue>;
    using Device = cutlass::conv::device::ConvUniversalAdapter<Kernel>;

    static typename Device::Arguments args(const kc_q8conv_sm90 *p, const Args &ra) {
        Problem ps(cutlass::conv::Mode::kCrossCorrelation,
                   {(int)p->n, (int)p->h, (int)p->w, (int)p->c},
                   {(int)p->m, (int)p->kh, (int)p->kw, (int)p->c}, {(int)p->ph0, (int)p->pw0},
                   {(int)p->ph1, (int)p->pw1}, {(int)p->sh, (int)p->sw},
                   {(int)p->dh, (int)p->dw}, 1);
        int64_t oh = kc_q8conv_sm90_out(p->h, p->kh, p->sh, p->ph0, p->ph1, p->dh);
        int64_t ow = kc_q8conv_sm90_out(p->w, p->kw, p->sw, p->pw0, p->pw1, p->dw);
        using StrideD = typename CollectiveEpilogue::StrideD;
        using StrideC = typename CollectiveEpilogue::StrideC;
        StrideD sd{};
        get<0, 0>(sd) = p->m;           // W (q)
        get<0, 1>(sd) = ow * p->m;      // H (p)
        get<0, 2>(sd) = oh * ow * p->m; // N
        StrideC sc{};
        get<0, 0>(sc) = get<0, 0>(sd);
        get<0, 1>(sc) = get<0, 1>(sd);
        get<0, 2>(sc) = get<0, 2>(sd);
        typename Device::Arguments a{ps,
                                     {(const XElem *)p->x, (const W *)p->wt},
                                     {{}, nullptr, sc, (D *)p->y, sd}};
        auto &t = a.epilogue.thread;
        // a tree's arguments: its children's, then its own operation's
        auto &sb = t.op_0; // ScaleBias: acc, alpha row, beta row, the FMA
        sb.op_1.ptr_row = p->alpha;
        sb.op_2.ptr_row = p->beta;
        if constexpr (HasR) {
            a.epilogue.ptr_C = (const D *)p->r;
            t.op_2 = ra;
        } else {
            t.op_1 = ra;
        }
        return a;
    }

    struct Plan : kc_q8conv_plan {
        typename Kernel::Params params;
    };

    static cudaError_t launch(kc_q8conv_plan *self, cudaStream_t s) {
        Plan *p = static_cast<Plan *>(self);
        if (Device::run(p->params, s) != cutlass::Status::kSuccess) {
            cudaError_t e = cudaGetLastError();
            return e != cudaSuccess ? e : cudaErrorLaunchFailure;
        }
        return cudaSuccess;
    }

    static void destroy(kc_q8conv_plan *self) { delete static_cast<Plan *>(self); }

    static cudaError_t plan(const kc_q8conv_sm90 *p, const Args &ra,
                            kc_q8conv_plan **out) {
        typename Device::Arguments a = args(p, ra);
        if (Device::can_implement(a) != cutlass::Status::kSuccess) return cudaErrorNotSupported;
        if (Device::get_workspace_size(a) != 0) return cudaErrorNotSupported;
        if (!out) return cudaSuccess;
        int smem = (int)Kernel::SharedStorageSize;
        if (smem >= (48 << 10)) {
            cudaError_t e = cudaFuncSetAttribute(cutlass::device_kernel<Kernel>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
            if (e != cudaSuccess) {
                cudaGetLastError();
                return e;
            }
        }
        Plan *pl = new (std::nothrow) Plan;
        if (!pl) return cudaErrorMemoryAllocation;
        pl->launch = &launch;
        pl->destroy = &destroy;
        pl->params = Kernel::to_underlying_arguments(a, nullptr);
        *out = pl;
        return cudaSuccess;
    }
};

static bool q8_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// the shape limits of both kinds (CUTLASS's can_implement checks the TMA
// limits again)
static bool q8_shape_ok(const kc_q8conv_sm90 *p) {
    if (p->n < 1 || p->h < 1 || p->w < 1 || p->c < 16 || p->m < 16 || p->c % 16 ||
        p->m % 16 || p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 ||
        p->dw < 1 || p->ph0 < 0 || p->pw0 < 0 || p->ph1 < 0 || p->pw1 < 0 ||
        p->ph0 > 255 || p->pw0 > 255 || p->ph1 > 255 || p->pw1 > 255 ||
        (p->kh - 1) * p->dh >= 255 || (p->kw - 1) * p->dw >= 255 || p->h > INT32_MAX ||
        p->w > INT32_MAX || p->c > INT32_MAX || p->m > INT32_MAX || p->n > INT32_MAX ||
        p->sh > INT32_MAX || p->sw > INT32_MAX)
        return false;
    int64_t oh = kc_q8conv_sm90_out(p->h, p->kh, p->sh, p->ph0, p->ph1, p->dh);
    int64_t ow = kc_q8conv_sm90_out(p->w, p->kw, p->sw, p->pw0, p->pw1, p->dw);
    return oh >= 1 && ow >= 1 && p->n * oh <= INT32_MAX && p->n * oh * ow <= INT32_MAX &&
           p->n * p->h * p->w <= INT64_MAX / p->c;
}

// Stages 0: as many as fit in shared memory next to the epilogue's.
template <class Tile, class Cluster, int Stages>
static cudaError_t plan_cfg(const kc_q8conv_sm90 *p, const ReqArgs &ra, kc_q8conv_plan **out) {
    bool r = p->r != nullptr;
    if (p->x_signed)
        return r ? Conv<KindQ8, int8_t, true, Tile, Cluster, Stages>::plan(p, ra, out)
                 : Conv<KindQ8, int8_t, false, Tile, Cluster, Stages>::plan(p, ra, out);
    return r ? Conv<KindQ8, uint8_t, true, Tile, Cluster, Stages>::plan(p, ra, out)
             : Conv<KindQ8, uint8_t, false, Tile, Cluster, Stages>::plan(p, ra, out);
}

template <class Tile, class Cluster, int Stages>
static cudaError_t plan_cfg(const kc_q8conv_sm90 *p, const F8Args &fa, kc_q8conv_plan **out) {
    using E = cutlass::float_e4m3_t;
    return p->r ? Conv<KindF8, E, true, Tile, Cluster, Stages>::plan(p, fa, out)
                : Conv<KindF8, E, false, Tile, Cluster, Stages>::plan(p, fa, out);
}

// The checks both kinds share (q8conv_sm90_kernels.h); then the
// configuration's instantiation with the kind's epilogue arguments.
template <class A>
static cudaError_t plan_any(int cfg, const kc_q8conv_sm90 *p, const A &ea,
                            kc_q8conv_plan **out) {
    if (!q8_shape_ok(p)) return cudaErrorNotSupported;
    if (out && (!p->x || !p->wt || !p->y || !p->alpha || !p->beta))
        return cudaErrorNotSupported;
    if (!q8_aligned(p->x) || !q8_aligned(p->wt) || !q8_aligned(p->y) || !q8_aligned(p->r) ||
        !q8_aligned(p->alpha) || !q8_aligned(p->beta))
        return cudaErrorNotSupported;
    using T128 = Shape<_128, _128, Shape<_64>>;
    using T64 = Shape<_128, _64, Shape<_64>>;
    using T64x128 = Shape<_64, _128, Shape<_64>>;
    using C11 = Shape<_1, _1, _1>;
    switch (cfg) {
    case KC_Q8CONV_SM90_128x128_C1x1: return plan_cfg<T128, C11, 0>(p, ea, out);
    case KC_Q8CONV_SM90_128x128_C2x1: return plan_cfg<T128, Shape<_2, _1, _1>, 0>(p, ea, out);
    case KC_Q8CONV_SM90_128x64_C1x1: return plan_cfg<T64, C11, 0>(p, ea, out);
    case KC_Q8CONV_SM90_128x64_C1x1_S4: return plan_cfg<T64, C11, 4>(p, ea, out);
    case KC_Q8CONV_SM90_64x128_C1x1_S4: return plan_cfg<T64x128, C11, 4>(p, ea, out);
    default: return cudaErrorInvalidValue;
    }
}

} // namespace kiln_q8conv

extern "C" int kc_q8conv_sm90_built(void) { return 1; }

extern "C" cudaError_t kc_q8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                           kc_q8conv_plan **out) {
    using namespace kiln_q8conv;
    if (out) *out = NULL;
    if (!p || cfg < 0 || cfg >= KC_Q8CONV_SM90_N_CFG) return cudaErrorInvalidValue;
    // a padded tap reads 0: exact only for a zero point of 0
    if (p->x_zp != 0 && (p->ph0 || p->pw0 || p->ph1 || p->pw1)) return cudaErrorNotSupported;
    if (!(p->lo <= p->hi)) return cudaErrorNotSupported; // NaN bounds too
    if (p->r && !(p->gamma == p->gamma)) return cudaErrorNotSupported;
    ReqArgs ra;
    float tmin = p->y_signed ? -128.0f : 0.0f, tmax = p->y_signed ? 127.0f : 255.0f;
    ra.lo = p->lo < tmin ? tmin : p->lo > tmax ? tmax : rintf(p->lo);
    ra.hi = p->hi > tmax ? tmax : p->hi < tmin ? tmin : rintf(p->hi);
    ra.gamma = p->r ? p->gamma : 0.0f;
    ra.y_unsigned = !p->y_signed;
    ra.r_unsigned = p->r && !p->r_signed;
    return plan_any(cfg, p, ra, out);
}

extern "C" cudaError_t kc_f8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                           kc_q8conv_plan **out) {
    using namespace kiln_q8conv;
    if (out) *out = NULL;
    if (!p || cfg < 0 || cfg >= KC_Q8CONV_SM90_N_CFG) return cudaErrorInvalidValue;
    if (p->lo != p->lo || p->hi != p->hi || p->lo > p->hi) return cudaErrorNotSupported;
    if (p->r && !(p->gamma == p->gamma)) return cudaErrorNotSupported;
    F8Args fa;
    fa.lo = p->lo, fa.hi = p->hi;
    fa.gamma = p->r ? p->gamma : 0.0f;
    return plan_any(cfg, p, fa, out);
}

extern "C" cudaError_t kc_q8conv_sm90_launch(kc_q8conv_plan *p, cudaStream_t s) {
    return p ? p->launch(p, s) : cudaErrorInvalidValue;
}

extern "C" void kc_q8conv_sm90_plan_free(kc_q8conv_plan *p) {
    if (p) p->destroy(p);
}

#else

extern "C" int kc_q8conv_sm90_built(void) { return 0; }

extern "C" cudaError_t kc_q8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                           kc_q8conv_plan **out) {
    if (out) *out = NULL;
    return cudaErrorNotSupported;
}

extern "C" cudaError_t kc_f8conv_sm90_plan(int cfg, const kc_q8conv_sm90 *p,
                                           kc_q8conv_plan **out) {
    if (out) *out = NULL;
    return cudaErrorNotSupported;
}

extern "C" cudaError_t kc_q8conv_sm90_launch(kc_q8conv_plan *p, cudaStream_t s) {
    return cudaErrorNotSupported;
}

extern "C" void kc_q8conv_sm90_plan_free(kc_q8conv_plan *p) {}

#endif
