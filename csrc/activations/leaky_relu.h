#pragma once
// Leaky ReLU (Maas et al. 2013), and PReLU (He et al. 2015), which is Leaky ReLU with a
// learned slope per channel. The single definition used by every backend.

#include <cmath>
#include <limits>

#include "activations/primitives.h"

namespace torch_ext::act {

template <typename T>
struct LeakyRelu {
  T slope;

  C10_HOST_DEVICE T forward(T x) const { return if_positive(x, x, x * slope); }

  // d forward / dx times g. At x == 0 the slope applies (x > 0 is false). g times one, as
  // ATen's kernel (see times_one).
  C10_HOST_DEVICE T backward(T g, T x) const { return if_positive(x, times_one(g), g * slope); }

  // Same gradient from the output y: y > 0 exactly when x > 0, provided slope >= 0.
  C10_HOST_DEVICE T backward_from_result(T g, T y) const { return backward(g, y); }

  // The z above which |f'(z)| > grad_eps (the dead-neuron monitor's "gradient-alive"):
  // f' is 1 above 0 and the slope below, so everywhere if |slope| > grad_eps, else z > 0.
  static double alive_threshold(double slope_value, double grad_eps) {
    return std::abs(slope_value) > grad_eps ? -std::numeric_limits<double>::infinity() : 0.0;
  }

  // d forward / d slope times g: the PReLU weight gradient of one element.
  C10_HOST_DEVICE T slope_backward(T g, T x) const { return if_positive(x, T(0), x * g); }
};

}  // namespace torch_ext::act
