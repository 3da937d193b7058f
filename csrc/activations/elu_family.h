#pragma once
// The ELU family, one definition for every backend and every member:
//   f(x) = scale * x                                     for x > 0
//          scale * alpha * (exp(input_scale * x) - 1)    for x <= 0
// ELU (Clevert et al. 2015) is (alpha, 1, 1); SELU (Klambauer et al. 2017) is ELU with
// fixed alpha and scale; CELU (Barron 2017) is (alpha, 1, 1 / alpha). ATen runs the family
// as one kernel with these three parameters too.

#include <cmath>
#include <limits>
#include <utility>

#include "activations/primitives.h"

namespace torch_ext::act {

// SELU's constants to full double precision, the values of ATen's SELU_ALPHA and
// SELU_SCALE. Python reads them from the library (torch.ops.torch_ext.selu_constants).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// One member of the family, in double: what an op passes to the loops.
struct EluParams {
  double alpha;
  double scale = 1.0;
  double input_scale = 1.0;
};

inline EluParams elu_params(double alpha) { return {alpha, 1.0, 1.0}; }
inline EluParams selu_params() { return {kSeluAlpha, kSeluScale, 1.0}; }
inline EluParams celu_params(double alpha) { return {alpha, 1.0, 1.0 / alpha}; }

// What Elu::forward and backward may leave out for a member (their template argument, a
// sum of these).
enum EluForm : int {
  kEluUnitInputScale = 1,       // input_scale is 1 (ELU, SELU): expm1's argument is x
  kEluNonPositiveArgument = 2,  // input_scale >= 0 (ELU, SELU, CELU with alpha > 0)
  // scale is 1 and so is the negative side's factor (the forward's alpha * scale: ELU and
  // CELU with alpha 1; the backward's slope at 0-: those and every CELU): the products by
  // 1 are left out. Only on a thread that keeps denormals: where they are flushed
  // (torch.set_flush_denormal sets the CPU's FTZ and DAZ) x * 1 flushes a denormal x, as
  // ATen's kernels, which multiply the side that passes through too, do (the CPU loops
  // read the mode of the thread running each chunk). The same bits but for NaNs: g is not
  // quieted by a multiply, and g * exp(x) of two NaNs may keep either's payload.
  kEluUnitFactors = 4,
};
// The forms the loops are compiled for: every value the form functions below return.
using EluForwardForms =
    std::integer_sequence<int, 0, kEluNonPositiveArgument,
                          kEluUnitInputScale | kEluNonPositiveArgument,
                          kEluUnitInputScale | kEluNonPositiveArgument | kEluUnitFactors>;
using EluBackwardForms = std::integer_sequence<int, 0, kEluUnitInputScale, kEluUnitFactors,
                                               kEluUnitInputScale | kEluUnitFactors>;

template <typename T>
struct Elu {
  T scale;
  T negative_coef;  // alpha * scale, rounded once in the compute type as ATen does
  T input_scale;
  T negative_slope;  // f'(0-) = alpha * scale * input_scale: negative_coef for ELU and SELU

  // kForm, a sum of EluForm flags that the member's parameters allow
  // (elu_forward_form), leaves work out: the multiply by an input_scale of 1 (the same
  // bits: expm1 of a denormal is expm1 of the zero a flushing multiply would make of it;
  // the expm1-bound vector loop spends a tenth of its time on it), expm1 above 0, where the
  // kept lanes' argument x * input_scale is <= 0, or the products by a unit scale and
  // alpha * scale (an eighth of ELU's time).
  template <int kForm = 0>
  C10_HOST_DEVICE T forward(T x) const {
    constexpr bool kUnitFactors = (kForm & kEluUnitFactors) != 0;
    const T argument = (kForm & kEluUnitInputScale) ? x : x * input_scale;
    const T expm1 =
        (kForm & kEluNonPositiveArgument) ? expm1_of_nonpositive(argument) : expm1_of(argument);
    // expm1 keeps full relative accuracy for x near 0, where exp(x) - 1 cancels. At
    // x == +-0 both branches are 0, but only x * scale keeps the sign of zero for
    // alpha < 0, as ATen does.
    return if_not_negative(x, kUnitFactors ? x : x * scale,
                           kUnitFactors ? expm1 : expm1 * negative_coef);
  }

  // At x == 0 the negative branch applies: the gradient there is alpha * scale *
  // input_scale. ATen multiplies g by input_scale and then by negative_coef; one product
  // with their precomputed product is the same for ELU and SELU (input_scale 1) and within
  // an ulp for CELU, and spares the exp-bound loop a multiply.
  // kForm as for forward (elu_backward_form), without kEluNonPositiveArgument (there is
  // no expm1).
  template <int kForm = 0>
  C10_HOST_DEVICE T backward(T g, T x) const {
    constexpr bool kUnitFactors = (kForm & kEluUnitFactors) != 0;
    const T argument = (kForm & kEluUnitInputScale) ? x : x * input_scale;
    return if_positive(x, kUnitFactors ? g : g * scale,
                       (kUnitFactors ? g : g * negative_slope) * exp_of(argument));
  }

  // From the output y: for x <= 0, y + alpha * scale == alpha * scale * exp(input_scale * x).
  // Valid where y > 0 exactly when x > 0: alpha >= 0 (the ops require it).
  C10_HOST_DEVICE T backward_from_result(T g, T y) const {
    return if_positive(y, g * scale, g * input_scale * (y + negative_coef));
  }

  // The z above which |f'(z)| > grad_eps. Above 0, f' is scale; below, |f'(z)| is
  // s * e^(input_scale * z) with s = |alpha * scale * input_scale|. With input_scale > 0
  // that rises with z: z > log(grad_eps / s) / input_scale, or z > 0 when that is >= 0.
  // With input_scale < 0 (CELU with alpha < 0) it falls with z, so every z < 0 passes
  // when s > grad_eps; otherwise the set is not of the form z > t, and z > 0 is kept.
  static double alive_threshold(const EluParams& p, double grad_eps) {
    const double saturation = std::abs(p.alpha * p.scale * p.input_scale);
    if (saturation <= grad_eps) return 0.0;
    if (p.input_scale > 0) return std::log(grad_eps / saturation) / p.input_scale;
    return p.input_scale < 0 ? -std::numeric_limits<double>::infinity() : 0.0;
  }
};

// The parameters in the compute type T (a scalar or a vector of them), alpha * scale
// rounded once in T's element type, as ATen does. The slope at 0-, alpha * scale *
// input_scale, is negative_coef for ELU and SELU (input_scale 1); exactly scale for CELU
// (input_scale 1 / alpha), where the product with the rounded 1 / alpha missed 1 by an ulp
// (in double, and in float where 1 / alpha is subnormal: alpha 1e38); otherwise their
// product in double, rounded once.
template <typename T>
Elu<T> make_elu(const EluParams& p) {
  using S = scalar_of_t<T>;
  const S negative_coef = S(p.alpha) * S(p.scale);
  S negative_slope = negative_coef;
  if (p.input_scale == 1.0 / p.alpha) {
    negative_slope = S(p.scale);
  } else if (p.input_scale != 1.0) {
    negative_slope = S(p.alpha * p.scale * p.input_scale);
  }
  return Elu<T>{T(S(p.scale)), T(negative_coef), T(S(p.input_scale)), T(negative_slope)};
}

// The form of a member's forward (backward) loop (see EluForm), with kEluUnitFactors
// where its factors are 1 (in double, and so in every compute type): the CPU loops leave
// that flag out on the threads that flush denormals.
inline int elu_forward_form(const EluParams& p) {
  if (p.input_scale != 1.0) return p.input_scale >= 0.0 ? kEluNonPositiveArgument : 0;
  const bool unit = p.scale == 1.0 && make_elu<double>(p).negative_coef == 1.0;
  return kEluUnitInputScale | kEluNonPositiveArgument | (unit ? kEluUnitFactors : 0);
}

inline int elu_backward_form(const EluParams& p) {
  const Elu<double> elu = make_elu<double>(p);
  const bool unit = elu.scale == 1.0 && elu.negative_slope == 1.0;
  return (p.input_scale == 1.0 ? kEluUnitInputScale : 0) | (unit ? kEluUnitFactors : 0);
}

}  // namespace torch_ext::act
