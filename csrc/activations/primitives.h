#pragma once
// Branch and exponential primitives that every activation formula is written with.
//
// The formulas in leaky_relu.h and elu.h are templates over a value type T. These
// overloads make one formula serve three backends: plain scalars (the CPU scalar tail and,
// marked host/device, the CUDA kernels) and at::vec::Vectorized (the CPU vector body).
// Both branches are always evaluated: that is what a vector blend does anyway, and it
// keeps the scalar and vector paths bitwise identical.

#include <c10/macros/Macros.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#if !defined(__CUDACC__)
#include <ATen/cpu/vec/vec.h>
#endif

namespace torch_ext::act {

// The element type of a value type: float for float and for Vectorized<float>.
template <typename T>
struct ScalarOf {
  using type = T;
};
template <typename T>
using scalar_of_t = typename ScalarOf<T>::type;

// `x > 0 ? if_pos : otherwise`. NaN takes the `otherwise` branch, as in ATen's kernels.
template <typename T>
C10_HOST_DEVICE inline T if_positive(T x, T if_pos, T otherwise) {
  return x > T(0) ? if_pos : otherwise;
}

// `x >= 0 ? if_pos : otherwise`: -0.0 and +0.0 take `if_pos`, NaN takes `otherwise`.
template <typename T>
C10_HOST_DEVICE inline T if_not_negative(T x, T if_pos, T otherwise) {
  return x >= T(0) ? if_pos : otherwise;
}

// x * 1, kept: ATen's kernels multiply the side that passes through by one, so with
// denormals flushed (torch.set_flush_denormal, which sets the CPU's FTZ and DAZ) a denormal
// comes out as a zero. The compiler drops a plain x * 1; the empty asm hides the 1 from it
// (and, free of side effects, is hoisted out of the loops).
template <typename T>
C10_HOST_DEVICE inline T times_one(T x) {
  using S = scalar_of_t<T>;
  S one(1);
#if !defined(__CUDA_ARCH__) && defined(__x86_64__)
  if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>) asm("" : "+x"(one));
#endif
  return x * T(one);
}

template <typename T>
C10_HOST_DEVICE inline T exp_of(T x) {
  return std::exp(x);
}

template <typename T>
C10_HOST_DEVICE inline T expm1_of(T x) {
  return std::expm1(x);
}

// expm1(x) where only x <= 0 (and NaN) is used: other x give some finite or NaN value.
template <typename T>
C10_HOST_DEVICE inline T expm1_of_nonpositive(T x) {
  return expm1_of(x);
}

#if !defined(__CUDACC__)
template <typename T>
struct ScalarOf<at::vec::Vectorized<T>> {
  using type = T;
};

template <typename T>
inline at::vec::Vectorized<T> if_positive(const at::vec::Vectorized<T>& x,
                                          const at::vec::Vectorized<T>& if_pos,
                                          const at::vec::Vectorized<T>& otherwise) {
  using Vec = at::vec::Vectorized<T>;
  return Vec::blendv(otherwise, if_pos, x > Vec(T(0)));
}

template <typename T>
inline at::vec::Vectorized<T> if_not_negative(const at::vec::Vectorized<T>& x,
                                              const at::vec::Vectorized<T>& if_pos,
                                              const at::vec::Vectorized<T>& otherwise) {
  using Vec = at::vec::Vectorized<T>;
  return Vec::blendv(otherwise, if_pos, x >= Vec(T(0)));
}

template <typename T>
inline at::vec::Vectorized<T> exp_of(const at::vec::Vectorized<T>& x) {
  return x.exp();
}

template <typename T>
inline at::vec::Vectorized<T> expm1_of(const at::vec::Vectorized<T>& x) {
  return x.expm1();
}

template <typename T>
inline at::vec::Vectorized<T> expm1_of_nonpositive(const at::vec::Vectorized<T>& x) {
  return x.expm1();
}

#if defined(CPU_CAPABILITY_AVX512)
// float on AVX-512: the comparison straight into a mask register. ATen's comparison
// operators return a vector of all-ones lanes, which its blendv turns back into a mask:
// two instructions more per select, in loops whose time is their instruction count.
inline at::vec::Vectorized<float> if_positive(const at::vec::Vectorized<float>& x,
                                              const at::vec::Vectorized<float>& if_pos,
                                              const at::vec::Vectorized<float>& otherwise) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), otherwise,
                              if_pos);
}

inline at::vec::Vectorized<float> if_not_negative(const at::vec::Vectorized<float>& x,
                                                  const at::vec::Vectorized<float>& if_pos,
                                                  const at::vec::Vectorized<float>& otherwise) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), otherwise,
                              if_pos);
}
#endif

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// float exp, inlined: the algorithm of Sleef's expf_u10 (what Vectorized<float>::exp()
// calls on AVX2 and AVX-512), with its constants and its fused multiply-adds, so the same
// bits (compared with it on all 2^32 floats, on both ISAs; max error 1 ulp). Called, the
// exp left the ELU backward 1.0-1.15x native: every vector register is caller-saved, so
// each call spilled and reloaded the loop's operands and constants, and the two vectors of
// an iteration could not overlap. Inlined they do, and AVX-512 does 2^q in one instruction.
// exp(d) = 2^q exp(s), q = rint(d / ln 2), s = d - q ln 2 (ln 2 in two parts, q times the
// first exact); exp(s) by a polynomial; results below -104 are 0 and above 100 infinite.
inline at::vec::Vectorized<float> exp_of(const at::vec::Vectorized<float>& d) {
  using Vec = at::vec::Vectorized<float>;
  using at::vec::fmadd;
  // Sleef rounds to an int32 and back: the same value wherever the result is not replaced
  // below (|q| < 2^24), NaN where d is NaN.
  const Vec q = (d * Vec(1.442695040888963f)).round();
  Vec s = fmadd(q, Vec(-0.693145751953125f), d);
  s = fmadd(q, Vec(-1.428606765330187045e-06f), s);
  Vec u(0.000198527617612853646278381f);
  u = fmadd(u, s, Vec(0.00139304355252534151077271f));
  u = fmadd(u, s, Vec(0.00833336077630519866943359f));
  u = fmadd(u, s, Vec(0.0416664853692054748535156f));
  u = fmadd(u, s, Vec(0.166666671633720397949219f));
  u = fmadd(u, s, Vec(0.5f));
  u = Vec(1.f) + fmadd(s * s, u, s);
#if defined(CPU_CAPABILITY_AVX512)
  // u * 2^q rounded once, as Sleef's two multiplies (the first exact) give it.
  u = _mm512_scalef_ps(u, q);
  const __mmask16 underflow = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-104.f), _CMP_LT_OQ);
  const __mmask16 overflow = _mm512_cmp_ps_mask(_mm512_set1_ps(100.f), d, _CMP_LT_OQ);
  u = _mm512_mask_blend_ps(underflow, u, _mm512_setzero_ps());
  return _mm512_mask_blend_ps(overflow, u, _mm512_set1_ps(std::numeric_limits<float>::infinity()));
#else
  // u * 2^(q >> 1) * 2^(q - (q >> 1)): the first product exact, so subnormal results round
  // once.
  using IVec = at::vec::Vectorized<int32_t>;
  const IVec qi = at::vec::convert_to_int_of_same_size<float>(q);
  const auto pow2 = [](const IVec& e) {
    return at::vec::cast<float>((e + IVec(0x7f)) << IVec(23));
  };
  const IVec half = qi >> IVec(1);
  u = u * pow2(half) * pow2(qi - half);
  u = Vec::blendv(u, Vec(0.f), d < Vec(-104.f));
  return Vec::blendv(u, Vec(std::numeric_limits<float>::infinity()), Vec(100.f) < d);
#endif
}
#endif

// float: the vector library's expm1 costs ~15x its exp here (about 10 ns per element on
// AVX512), which made ELU and SELU compute-bound. Instead, on AVX2 and AVX-512:
// - expm1_series, for |x| < ln 3: x + x^2/2 + x^3/6 + x^4 q(x), summed so that its two
//   large terms lose nothing: x^2 = h + l exactly (a fused multiply-subtract), x + h/2 with
//   its rounding error kept (Fast2Sum, |x| >= h/2), and the small terms (l/2, that error,
//   x^3/6, x^4 q(x)) added to it once. q is Taylor's to x^11/11! (expm1_near_zero) or,
//   for the reduced arguments of expm1_of_nonpositive (-0.6935 < x < 4e-6), of degree 3,
//   minimax for the error of x^4 q(x) relative to expm1(x) (7.3e-10 with its float
//   coefficients, benchmarks/fit_expm1_series.py). Max error 0.7553 ulp over every float
//   in (-ln 2, 0] either way.
// - expm1_of_nonpositive, for x <= 0 (what ELU, SELU and CELU with alpha > 0 keep): one
//   path for every lane, x = q ln 2 + s with q = trunc(x / ln 2) (Cody-Waite; s of x's
//   sign and |s| < ln 2, but for a few x just beyond a multiple of ln 2, where x / ln 2
//   rounds onto the whole number and s is tiny and of the other sign), then
//   2^q (1 + expm1(s)) - 1 = fma(2^q, the minimax series of s, 2^q - 1), with 2^q - 1
//   exact for q >= -24 (below, it rounds to -1, the result's own value): no cancellation,
//   since q != 0 makes |result| >= 0.5 and scales the series' error by 2^q <= 1/2. Max
//   error 0.7553 ulp over every float in [-88, 0] (benchmarks/elu_accuracy.py), the
//   series' own; 26 vector operations where the exp and the series, blended, took 43.
//   Above 0 it is up to 1.3 ulp off (s's rounding, scaled by 2^q e^s > 1), which is why
//   it is kept for x <= 0.
// - expm1_of, for any x (CELU with alpha < 0 takes positive arguments): that for x <= 0
//   (the same bits), and above 0 the series below ln 3 (0.914 ulp over [ln 2, ln 3)) and
//   exp(x) - 1 from there (1.44 ulp just above a power of 2, where exp's ulp is twice the
//   result's; within ulps.py's bound of native's).
// expm1 keeps the sign of its argument, zeros included, and the series turns -0 into +0:
// the result takes x's sign bit (a no-op for every nonzero x), so a product that
// underflows to -0 (CELU with a large alpha) gives -0, as std::expm1 does.
// DEFAULT has no fused multiply-add to split x^2 with: its series runs in double, and
// expm1_of_nonpositive is expm1_of.
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// q's coefficients, highest power first: Taylor's, to x^11/11!, for |x| < ln 3; and the
// minimax fit for (-0.6935, 4e-6), four fewer (degree 5 on |x| < 0.6935 took two more
// multiply-adds, 11% of the forward's time, for no smaller error over the floats).
constexpr float kTaylorQuartic[] = {1.f / 39916800, 1.f / 3628800, 1.f / 362880, 1.f / 40320,
                                    1.f / 5040,     1.f / 720,     1.f / 120,    1.f / 24};
constexpr float kMinimaxQuartic[] = {0x1.4448c2p-13f, 0x1.64058cp-10f, 0x1.10c190p-7f,
                                     0x1.555320p-5f};

// The terms in halves: x^2 / 2 = x * (x / 2) = half_h + l exactly, then (x^2)^2 q as
// half_h^2 (4 q) and x^3 / 6 as (x half_h) / 3, powers of 2 that round as the unhalved
// terms do (the same bits wherever x^2 / 2 does not underflow, where they fall far below
// x's ulp): one multiply fewer where the multiply ports bound the ELU forward, and l / 2
// an addition.
template <size_t N>
inline at::vec::Vectorized<float> expm1_series(const at::vec::Vectorized<float>& x,
                                               const float (&quartic)[N]) {
  using Vec = at::vec::Vectorized<float>;
  const Vec half_x = x * Vec(0.5f);
  const Vec half_h = half_x * x;
  const Vec half_l = at::vec::fmsub(half_x, x, half_h);
  const Vec sum = x + half_h;
  const Vec sum_error = half_h - (sum - x);
  Vec q(4 * quartic[0]);
  for (size_t k = 1; k < N; ++k) q = at::vec::fmadd(q, x, Vec(4 * quartic[k]));
  Vec small = half_l + sum_error;
  small = at::vec::fmadd(half_h * half_h, q, small);
  small = at::vec::fmadd(x * half_h, Vec(1.f / 3), small);
  return sum + small;
}

inline at::vec::Vectorized<float> expm1_near_zero(const at::vec::Vectorized<float>& x) {
  return expm1_series(x, kTaylorQuartic);
}
#else
// A float vector as two double vectors (its low and high halves), and back (rounded once).
inline std::pair<at::vec::Vectorized<double>, at::vec::Vectorized<double>> to_double(
    const at::vec::Vectorized<float>& x) {
  using DVec = at::vec::Vectorized<double>;
  constexpr int kLanes = at::vec::Vectorized<float>::size();
  static_assert(kLanes == 2 * DVec::size());
  float lanes[kLanes];
  double wide[kLanes];
  x.store(lanes);
  for (int i = 0; i < kLanes; ++i) wide[i] = lanes[i];
  return {DVec::loadu(wide), DVec::loadu(wide + DVec::size())};
}

inline at::vec::Vectorized<float> to_float(const at::vec::Vectorized<double>& lo,
                                           const at::vec::Vectorized<double>& hi) {
  using Vec = at::vec::Vectorized<float>;
  double wide[Vec::size()];
  float lanes[Vec::size()];
  lo.store(wide);
  hi.store(wide + at::vec::Vectorized<double>::size());
  for (int i = 0; i < Vec::size(); ++i) lanes[i] = static_cast<float>(wide[i]);
  return Vec::loadu(lanes);
}

inline at::vec::Vectorized<float> expm1_near_zero(const at::vec::Vectorized<float>& x) {
  using DVec = at::vec::Vectorized<double>;
  constexpr double kInverseFactorials[] = {1. / 39916800, 1. / 3628800, 1. / 362880, 1. / 40320,
                                           1. / 5040,     1. / 720,     1. / 120,    1. / 24,
                                           1. / 6,        1. / 2,       1.};
  const auto series = [&](const DVec& d) {
    DVec sum(kInverseFactorials[0]);
    for (size_t k = 1; k < sizeof(kInverseFactorials) / sizeof(double); ++k) {
      sum = at::vec::fmadd(sum, d, DVec(kInverseFactorials[k]));
    }
    return sum * d;
  };
  const auto [lo, hi] = to_double(x);
  return to_float(series(lo), series(hi));
}
#endif

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// 2^q for whole q in [-126, 127], exactly.
inline at::vec::Vectorized<float> pow2_of(const at::vec::Vectorized<float>& q) {
  using IVec = at::vec::Vectorized<int32_t>;
  const IVec qi = at::vec::convert_to_int_of_same_size<float>(q);
  return at::vec::cast<float>((qi + IVec(0x7f)) << IVec(23));
}

// max(-88, x), NaN kept: below -88 (and at -inf) expm1 is -1 in float.
inline at::vec::Vectorized<float> at_least_minus_88(const at::vec::Vectorized<float>& x) {
  // The instruction returns its second operand where either is NaN.
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_max_ps(_mm512_set1_ps(-88.f), x);
#else
  return _mm256_max_ps(_mm256_set1_ps(-88.f), x);
#endif
}

inline at::vec::Vectorized<float> expm1_of_nonpositive(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  using at::vec::fmadd;
  const Vec d = at_least_minus_88(x);
  const Vec q = (d * Vec(1.442695040888963f)).trunc();
  // ln 2 in two parts, the first with 16 bits, so q times it and s's first part are exact.
  Vec s = fmadd(q, Vec(-0.693145751953125f), d);
  s = fmadd(q, Vec(-1.428606765330187045e-06f), s);
  const Vec t = pow2_of(q);
  return fmadd(t, expm1_series(s, kMinimaxQuartic), t - Vec(1.f)) | (x & Vec(-0.f));
}

inline at::vec::Vectorized<float> expm1_of(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  const Vec positive = Vec::blendv(exp_of(x) - Vec(1.f), expm1_near_zero(x), x < Vec(1.09861231f));
  return Vec::blendv(expm1_of_nonpositive(x), positive, x > Vec(0.f));
}
#else
inline at::vec::Vectorized<float> expm1_of(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  const Vec near_zero = (x > Vec(-0.693147182f)) & (x < Vec(1.09861231f));
  return Vec::blendv(exp_of(x) - Vec(1.f), expm1_near_zero(x), near_zero);
}

inline at::vec::Vectorized<float> expm1_of_nonpositive(const at::vec::Vectorized<float>& x) {
  return expm1_of(x);
}
#endif
#endif

}  // namespace torch_ext::act
