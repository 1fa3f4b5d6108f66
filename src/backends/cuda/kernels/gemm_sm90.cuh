// gemm_sm90.cuh: the Hopper (sm_90a) GEMM with a fused epilogue, built on
// CUTLASS 3.x headers (a dependency found by cuda.cmake, never copied here):
//   D[M,N] = act(alpha * A[M,K] B[K,N] + bias[N] + beta * C[M,N])
// A, B, C, D row-major in FP16 or BF16, FP32 accumulation and FP32 epilogue
// math, one rounding at the store. Why: BERT's FFN-in GEMM ends in an exact
// (erf) GELU that cuBLASLt cannot fuse, so cuda_gemm.c pays a second pass
// over a 100 MB output; here the activation runs on the accumulators before
// the TMA store.
//
// The mainloop is CUTLASS's CollectiveBuilder (TMA loads, warp-specialized,
// cooperative or ping-pong per configuration); the epilogue is CUTLASS's
// LinCombPerColBiasEltAct fusion (bias broadcast along N, "per column" of
// row-major D) with our own activation functor. The activation is a
// template parameter (ActNone, ActRelu, ActGelu: no switch in the epilogue,
// whose instructions are the cost on short-K shapes like BERT's FFN-in; the
// run-time version did not spill, ptxas -v, but the object held about 4x
// the code per kernel); one run-time functor (Act, kc_act in its Arguments, the formulas of
// gemm_act.cuh, which are the reference's, GELU excepted) serves the other
// activations on one configuration. Every GELU here is gemm_sm90_gelu.h's
// branch-free form (its error bound is proven there). Which configuration
// holds which instantiation: gemm_sm90_cfg.h. No bias: a null pointer
// (CUTLASS then adds 0). No C: beta 0, which makes CUTLASS skip loading C
// altogether (and clear it); the GELU instantiations are compiled without C (ElementC void:
// no C shared memory or C checks, and stores that do not wait for their TMA
// to finish before the next subtile; the mainloop's stage count came out
// the same, ptxas -v: 4 for 256x128, 6 for 128x128).
// A plan holds CUTLASS's kernel parameters (TMA descriptors, grid), made
// once per problem and pointers; a launch is then the kernel launch alone
// (the builder times run() between two events, host work included).
//
// Included by gemm_sm90_f16.cu, gemm_sm90_bf16.cu (the general
// configurations, one dtype each) and gemm_sm90_f16_ffn.cu (the FFN-in
// candidates), so the three compile in parallel. Only with
// KILN_HAVE_CUTLASS; the SM90 code of the kernels is empty on the sm_80 and
// compute_90 passes (CUTLASS's own __CUDA_ARCH_FEAT_SM90_ALL guard), and the
// host side offers the tactic only where cuda.cmake saw sm_90a in the
// gencode list (KILN_CUTLASS_SM90A) and the device is compute capability
// 9.0.
#ifndef KILN_CUDA_GEMM_SM90_CUH
#define KILN_CUDA_GEMM_SM90_CUH

#define KC_SM90_INTERNAL
#include "gemm_act.cuh"
#include "gemm_kernels.h"
#include "gemm_sm90_cfg.h"
#include "gemm_sm90_gelu.h"

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

#include <new>
#include <type_traits>
#include <stdint.h>

namespace kiln_sm90 {

// ---- activations, as CUTLASS epilogue compute functors: Sm90Compute calls
// F<Array<float, N>>{}(fragment) (and the run-time one with its Arguments).

// The run-time one: Arguments is the kind and its parameters (Sm90Compute
// hands them to every call). The kind is uniform over the kernel, so the
// switch sits outside the fragment loop.
template <class T> struct Act {
    using Arguments = kc_act;
    CUTLASS_DEVICE T operator()(T const &v, Arguments const &a) const {
        return kc_apply_act(a, v);
    }
};

template <class T, int N> struct Act<cutlass::Array<T, N>> {
    using Arguments = kc_act;
    CUTLASS_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const &v,
                                                   Arguments const &a) const {
        cutlass::Array<T, N> y;
        switch (a.kind) {
        case KC_ACT_NONE:
            y = v;
            break;
        case KC_ACT_RELU:
            CUTLASS_PRAGMA_UNROLL
            for (int i = 0; i < N; i++) y[i] = v[i] < T(0) ? T(0) : v[i];
            break;
        case KC_ACT_GELU:
            CUTLASS_PRAGMA_UNROLL
            for (int i = 0; i < N; i++) y[i] = kc_gelu_fast(v[i]);
            break;
        default:
            CUTLASS_PRAGMA_UNROLL
            for (int i = 0; i < N; i++) y[i] = kc_apply_act(a, v[i]);
            break;
        }
        return y;
    }
};

// Compile-time ones: F(v) on a scalar, applied over the fragment.
template <class T, class F> struct ActMap {
    CUTLASS_DEVICE T operator()(T const &v) const { return F::f(v); }
};
template <class T, int N, class F> struct ActMap<cutlass::Array<T, N>, F> {
    CUTLASS_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const &v) const {
        cutlass::Array<T, N> y;
        CUTLASS_PRAGMA_UNROLL
        for (int i = 0; i < N; i++) y[i] = F::f(v[i]);
        return y;
    }
};

struct FnNone {
    CUTLASS_DEVICE static float f(float v) { return v; }
};
struct FnRelu { // NaN stays NaN, as the reference's v < 0 ? 0 : v
    CUTLASS_DEVICE static float f(float v) { return v < 0.0f ? 0.0f : v; }
};
struct FnGelu { // gemm_sm90_gelu.h: exact erf GELU, bound proven there
    CUTLASS_DEVICE static float f(float v) { return kc_gelu_fast(v); }
};

template <class T> using ActNone = ActMap<T, FnNone>;
template <class T> using ActRelu = ActMap<T, FnRelu>;
template <class T> using ActGelu = ActMap<T, FnGelu>;

using namespace cute;
using EpiAuto = cutlass::epilogue::collective::EpilogueTileAuto;

// One instantiation: dtype, activation, whether C is compiled in, CTA
// tile, cluster, kernel / epilogue schedules (cooperative: two consumer
// warp groups share a tile; ping-pong: each consumer warp group owns a
// tile, the epilogue of one overlapping the other's mainloop) and the
// epilogue subtile (EpiAuto: CUTLASS's choice, 64x32 ping-pong, 128x32
// cooperative).
template <class Element, template <class> class ActFn, bool HasC, class TileShape,
          class ClusterShape, class KernelSchedule, class EpilogueSchedule, class EpiTile = EpiAuto>
struct Gemm {
    using LayoutA = cutlass::layout::RowMajor; // A [M,K], K contiguous
    using LayoutB = cutlass::layout::RowMajor; // B [K,N], N contiguous
    using LayoutC = cutlass::layout::RowMajor;
    static constexpr int kAlign = 128 / cutlass::sizeof_bits<Element>::value;
    using ElementC = std::conditional_t<HasC, Element, void>;
    static constexpr bool kRuntimeAct = std::is_same_v<ActFn<float>, Act<float>>;

    using Fusion = cutlass::epilogue::fusion::LinCombPerColBiasEltAct<ActFn, Element, float,
                                                                    Element, Element, float>;

    using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape, EpiTile,
        float, float, ElementC, LayoutC, kAlign, Element, LayoutC, kAlign, EpilogueSchedule,
        Fusion>::CollectiveOp;

    using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
        cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Element, LayoutA, kAlign, Element,
        LayoutB, kAlign, float, TileShape, ClusterShape,
        cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
            sizeof(typename CollectiveEpilogue::SharedStorage))>,
        KernelSchedule>::CollectiveOp;

    using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>,
                                                        CollectiveMainloop, CollectiveEpilogue>;
    using Device = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

    static typename Device::Arguments args(const kc_sm90_gemm *g, int sm_count) {
        using StrideA = typename Kernel::StrideA;
        using StrideB = typename Kernel::StrideB;
        using StrideC = typename Kernel::StrideC;
        using StrideD = typename Kernel::StrideD;
        int M = (int)g->m, N = (int)g->n, K = (int)g->k;
        StrideA sa = cutlass::make_cute_packed_stride(StrideA{}, make_shape(M, K, 1));
        StrideB sb = cutlass::make_cute_packed_stride(StrideB{}, make_shape(N, K, 1));
        StrideC sc = cutlass::make_cute_packed_stride(StrideC{}, make_shape(M, N, 1));
        StrideD sd = cutlass::make_cute_packed_stride(StrideD{}, make_shape(M, N, 1));
        cutlass::KernelHardwareInfo hw;
        hw.device_id = 0; // unused with sm_count given
        hw.sm_count = sm_count;
        typename Device::Arguments a{cutlass::gemm::GemmUniversalMode::kGemm,
                                     {M, N, K, 1},
                                     {(const Element *)g->a, sa, (const Element *)g->b, sb},
                                     {{}, // fusion arguments, below
                                      nullptr, sc, (Element *)g->d, sd},
                                     hw};
        if constexpr (HasC) a.epilogue.ptr_C = (const Element *)(g->c ? g->c : g->d);
        auto &f = a.epilogue.thread;
        f.alpha = g->alpha;
        f.beta = HasC && g->c ? g->beta : 0.0f; // beta 0: C is never read
        f.bias_ptr = (const Element *)g->bias;
        if constexpr (kRuntimeAct) f.activation = g->act;
        return a;
    }

    // The prepared launch: the kernel's parameters, made once per problem.
    struct Plan : kc_sm90_plan {
        typename Kernel::Params params;
    };

    static cudaError_t launch(kc_sm90_plan *self, cudaStream_t s) {
        Plan *p = static_cast<Plan *>(self);
        if (Device::run(p->params, s) != cutlass::Status::kSuccess) {
            cudaError_t e = cudaGetLastError();
            return e != cudaSuccess ? e : cudaErrorLaunchFailure;
        }
        return cudaSuccess;
    }

    static void destroy(kc_sm90_plan *self) { delete static_cast<Plan *>(self); }

    static cudaError_t plan(const kc_sm90_gemm *g, int sm_count, kc_sm90_plan **out) {
        if constexpr (!HasC) {
            if (g->c) return cudaErrorNotSupported; // compiled without C
        }
        typename Device::Arguments a = args(g, sm_count);
        if (Device::can_implement(a) != cutlass::Status::kSuccess) return cudaErrorNotSupported;
        // these schedules (persistent, no split-K) need none; one that did
        // would need it initialized before every launch
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
        Plan *p = new (std::nothrow) Plan;
        if (!p) return cudaErrorMemoryAllocation;
        p->launch = &launch;
        p->destroy = &destroy;
        p->params = Kernel::to_underlying_arguments(a, nullptr);
        *out = p;
        return cudaSuccess;
    }
};

using Coop = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using CoopEpi = cutlass::epilogue::TmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using PingpongEpi = cutlass::epilogue::TmaWarpSpecialized;

// One general configuration's instantiations (gemm_sm90_cfg.h): no
// activation and Relu with C, GELU without, and (Generic) the run-time one.
template <class E, bool Generic, class... Cfg>
static cudaError_t plan_general(const kc_sm90_gemm *g, int sm_count, kc_sm90_plan **out) {
    switch (g->act.kind) {
    case KC_ACT_NONE: return Gemm<E, ActNone, true, Cfg...>::plan(g, sm_count, out);
    case KC_ACT_RELU: return Gemm<E, ActRelu, true, Cfg...>::plan(g, sm_count, out);
    case KC_ACT_GELU:
        if (!g->c) return Gemm<E, ActGelu, false, Cfg...>::plan(g, sm_count, out);
        break;
    default: break;
    }
    if constexpr (Generic)
        return Gemm<E, Act, true, Cfg...>::plan(g, sm_count, out);
    else
        return cudaErrorNotSupported;
}

// The general configurations, in KC_SM90_* order (gemm_kernels.h).
template <class E>
static cudaError_t dispatch_general(int cfg, const kc_sm90_gemm *g, int sm_count,
                                    kc_sm90_plan **out) {
    switch (cfg) {
    case KC_SM90_128x256_COOP_C2x1:
        return plan_general<E, false, Shape<_128, _256, _64>, Shape<_2, _1, _1>, Coop, CoopEpi>(
            g, sm_count, out);
    case KC_SM90_128x128_PP_C1x1:
        return plan_general<E, true, Shape<_128, _128, _64>, Shape<_1, _1, _1>, Pingpong,
                            PingpongEpi>(g, sm_count, out);
    case KC_SM90_256x128_COOP_C1x2:
        return plan_general<E, false, Shape<_256, _128, _64>, Shape<_1, _2, _1>, Coop, CoopEpi>(
            g, sm_count, out);
    default: return cudaErrorInvalidValue;
    }
}

// The FFN-in candidates (gemm_sm90_cfg.h): erf GELU without C only.
template <class E, class... Cfg>
static cudaError_t plan_ffn(const kc_sm90_gemm *g, int sm_count, kc_sm90_plan **out) {
    if (g->act.kind != KC_ACT_GELU || g->c) return cudaErrorNotSupported;
    return Gemm<E, ActGelu, false, Cfg...>::plan(g, sm_count, out);
}

template <class E>
static cudaError_t dispatch_ffn(int cfg, const kc_sm90_gemm *g, int sm_count,
                                kc_sm90_plan **out) {
    using T128 = Shape<_128, _128, _64>;
    using T256 = Shape<_256, _128, _64>;
    using C11 = Shape<_1, _1, _1>;
    switch (cfg) {
    case KC_SM90_128x128_PP_C1x1_E64:
        return plan_ffn<E, T128, C11, Pingpong, PingpongEpi, Shape<_64, _64>>(
            g, sm_count, out);
    case KC_SM90_64x256_PP_C1x1:
        return plan_ffn<E, Shape<_64, _256, _64>, C11, Pingpong, PingpongEpi>(
            g, sm_count, out);
    case KC_SM90_128x128_PP_C1x2:
        return plan_ffn<E, T128, Shape<_1, _2, _1>, Pingpong, PingpongEpi>(g, sm_count,
                                                                                  out);
    case KC_SM90_256x128_COOP_C2x1:
        return plan_ffn<E, T256, Shape<_2, _1, _1>, Coop, CoopEpi>(g, sm_count, out);
    case KC_SM90_256x128_COOP_C1x2_E64:
        return plan_ffn<E, T256, Shape<_1, _2, _1>, Coop, CoopEpi, Shape<_128, _64>>(
            g, sm_count, out);
    default: return cudaErrorInvalidValue;
    }
}

} // namespace kiln_sm90

#endif
