#pragma once
// ELU (Clevert et al. 2015) and SELU (Klambauer et al. 2017), which is a scaled ELU with
// fixed constants. The single definition used by every backend.

#include "activations/primitives.h"
#include "activations/selu_constants.h"

namespace torch_ext::act {

// scale * (x > 0 ? x : alpha * (exp(x) - 1)); ELU is scale == 1.
template <typename T>
struct Elu {
  T scale;
  T negative_coef;  // alpha * scale, rounded once in the compute type as ATen does

  C10_HOST_DEVICE T forward(T x) const {
    // expm1 keeps full relative accuracy for x near 0, where exp(x) - 1 cancels. At
    // x == +-0 both branches are 0, but only x * scale keeps the sign of zero for
    // alpha < 0, as ATen does.
    return if_not_negative(x, x * scale, expm1_of(x) * negative_coef);
  }

  // At x == 0 the negative branch applies: the gradient there is alpha * scale.
  C10_HOST_DEVICE T backward(T g, T x) const {
    return if_positive(x, g * scale, g * negative_coef * exp_of(x));
  }

  // The z above which |f'(z)| > grad_eps: f' is scale above 0 and |alpha| * scale * e^z,
  // increasing, below; so z > log(grad_eps / (|alpha| * scale)), or z > 0 if that is >= 0.
  static double alive_threshold(double alpha, double scale_value, double grad_eps) {
    const double saturation = std::abs(alpha) * scale_value;
    return saturation > grad_eps ? std::log(grad_eps / saturation) : 0.0;
  }

  // From the output y: for x <= 0, y + alpha * scale == alpha * scale * exp(x).
  // Valid only for alpha >= 0, where y > 0 exactly when x > 0.
  C10_HOST_DEVICE T backward_from_result(T g, T y) const {
    return if_positive(y, g * scale, g * (y + negative_coef));
  }
};

// ELU's parameters in the compute type T (a scalar or a vector of them), alpha * scale
// rounded once in T's element type, as ATen does.
template <typename T>
Elu<T> make_elu(double alpha, double scale) {
  using S = scalar_of_t<T>;
  return Elu<T>{T(S(scale)), T(S(alpha) * S(scale))};
}

}  // namespace torch_ext::act
