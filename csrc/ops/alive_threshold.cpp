// torch_ext::alive_threshold: the pre-activation above which a unit passes gradient
// (|f'(z)| > grad_eps), from the activation formulas' own definition, for the dead-neuron
// monitor (Python) and the stats recorder (C++).

#include <ATen/TensorOperators.h>
#include <ATen/ops/where.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <string>

#include "activations/elu_family.h"
#include "activations/leaky_relu.h"
#include "torch_ext/ops.h"

namespace torch_ext {

double alive_threshold(const std::string& activation, double param, double grad_eps) {
  // Above 0 every supported activation's slope is 1 (SELU: 1.05): grad_eps >= 1 would
  // call a unit dead while it passes gradient unchanged, which no threshold z can express.
  TORCH_CHECK(grad_eps > 0 && grad_eps < 1,
              "torch_ext::alive_threshold: expected argument 'grad_eps' in (0, 1), but got ",
              grad_eps);
  if (activation == "relu") return act::LeakyRelu<double>::alive_threshold(0.0, grad_eps);
  if (activation == "leaky_relu" || activation == "prelu") {
    return act::LeakyRelu<double>::alive_threshold(param, grad_eps);
  }
  if (activation == "elu")
    return act::Elu<double>::alive_threshold(act::elu_params(param), grad_eps);
  if (activation == "selu") return act::Elu<double>::alive_threshold(act::selu_params(), grad_eps);
  if (activation == "celu") {
    // alpha == 0 has no CELU (the op refuses it): no unit is counted alive below 0.
    return param == 0 ? 0.0 : act::Elu<double>::alive_threshold(act::celu_params(param), grad_eps);
  }
  TORCH_CHECK(false,
              "torch_ext::alive_threshold: expected argument 'activation' to be one of "
              "relu, leaky_relu, prelu, elu, selu, celu, but got '",
              activation, "'");
}

at::Tensor slopes_alive_threshold(const at::Tensor& slopes, int64_t units, double grad_eps) {
  TORCH_CHECK(grad_eps > 0 && grad_eps < 1,
              "torch_ext::slopes_alive_threshold: expected argument 'grad_eps' in (0, 1), but got ",
              grad_eps);
  TORCH_CHECK(slopes.numel() == 1 || slopes.numel() == units,
              "torch_ext::slopes_alive_threshold: expected argument 'slopes' to have 1 or ", units,
              " elements, but got ", slopes.numel());
  // LeakyRelu::alive_threshold, element by element, on the device (no host sync).
  const at::Tensor alive = slopes.detach().abs().to(at::kFloat) > grad_eps;
  const at::Tensor threshold =
      at::where(alive, -std::numeric_limits<double>::infinity(), 0.0).reshape({-1});
  return threshold.expand({units}).contiguous();
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // param: the slope (leaky_relu, prelu) or alpha (elu, celu); unused for relu and selu.
  m.def("alive_threshold(str activation, float param, float grad_eps) -> float",
        [](const std::string& activation, double param, double grad_eps) {
          return alive_threshold(activation, param, grad_eps);
        });
  // Per unit, for learned slopes (PReLU's weight, 1 or `units` elements).
  m.def("slopes_alive_threshold(Tensor slopes, int units, float grad_eps) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_ext, CompositeExplicitAutograd, m) {
  m.impl("slopes_alive_threshold", slopes_alive_threshold);
}

}  // namespace torch_ext
