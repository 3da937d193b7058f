#include "torch_ext/nn.h"

#include <ATen/ops/full.h>
#include <torch/nn/init.h>

#include "activations/elu_family.h"
#include "torch_ext/ops.h"

namespace torch_ext::nn {
namespace {

// The alive threshold of an activation with fixed parameters, one value for every unit.
auto uniform_threshold(const char* activation, double param) {
  return [activation, param](double grad_eps, int64_t units) {
    return at::full({units}, torch_ext::alive_threshold(activation, param, grad_eps), at::kFloat);
  };
}

// The forward of an ELU-family module: in place (counted first), counted in the op, or
// plain. `run(input)` and `run_(input)` call the member's own ops.
template <typename Run, typename RunInPlace>
at::Tensor elu_family_forward(at::Tensor input, std::optional<stats::Counting> c,
                              const act::EluParams& p, bool inplace, const Run& run,
                              const RunInPlace& run_) {
  if (inplace) {
    if (c) torch_ext::count_active_(input, c->counts, c->unit_dim, c->alive_threshold);
    return run_(input);
  }
  if (c) {
    return torch_ext::elu_counted(input, p.alpha, p.scale, c->counts, c->unit_dim,
                                  c->alive_threshold, false, p.input_scale);
  }
  return run(input);
}

}  // namespace

LeakyReLUImpl::LeakyReLUImpl(const LeakyReLUOptions& options_) : options(options_) {}

at::Tensor LeakyReLUImpl::forward(at::Tensor input) {
  const double slope = options.negative_slope();
  auto c = counting(is_training(), input, "LeakyReLU", uniform_threshold("leaky_relu", slope));
  if (options.inplace()) {
    if (c) torch_ext::count_active_(input, c->counts, c->unit_dim, c->alive_threshold);
    return torch_ext::leaky_relu_(input, slope);
  }
  if (c) {
    return torch_ext::leaky_relu_counted(input, slope, c->counts, c->unit_dim, c->alive_threshold);
  }
  return torch_ext::leaky_relu(input, slope);
}

void LeakyReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::LeakyReLU(negative_slope=" << options.negative_slope()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

PReLUImpl::PReLUImpl(const PReLUOptions& options_) : options(options_) { reset(); }

void PReLUImpl::reset() {
  weight = register_parameter("weight", torch::full({options.num_parameters()}, options.init()));
}

at::Tensor PReLUImpl::forward(const at::Tensor& input) {
  auto c = counting(is_training(), input, "PReLU", [this](double grad_eps, int64_t units) {
    return torch_ext::slopes_alive_threshold(weight, units, grad_eps);
  });
  if (c) {
    return torch_ext::prelu_counted(input, weight, c->counts, c->unit_dim, c->alive_threshold);
  }
  return torch_ext::prelu(input, weight);
}

void PReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::PReLU(num_parameters=" << options.num_parameters() << ")";
}

ELUImpl::ELUImpl(const ELUOptions& options_) : options(options_) {}

at::Tensor ELUImpl::forward(at::Tensor input) {
  const double alpha = options.alpha();
  return elu_family_forward(
      input, counting(is_training(), input, "ELU", uniform_threshold("elu", alpha)),
      act::elu_params(alpha), options.inplace(),
      [alpha](const at::Tensor& x) { return torch_ext::elu(x, alpha); },
      [alpha](at::Tensor& x) { return torch_ext::elu_(x, alpha); });
}

void ELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::ELU(alpha=" << options.alpha()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

SELUImpl::SELUImpl(const SELUOptions& options_) : options(options_) {}

at::Tensor SELUImpl::forward(at::Tensor input) {
  return elu_family_forward(
      input, counting(is_training(), input, "SELU", uniform_threshold("selu", 0.0)),
      act::selu_params(), options.inplace(), [](const at::Tensor& x) { return torch_ext::selu(x); },
      [](at::Tensor& x) { return torch_ext::selu_(x); });
}

void SELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::SELU(" << (options.inplace() ? "inplace=true" : "") << ")";
}

CELUImpl::CELUImpl(const CELUOptions& options_) : options(options_) {}

at::Tensor CELUImpl::forward(at::Tensor input) {
  const double alpha = options.alpha();
  // Refused before anything is counted (the op would refuse it after an in-place count).
  TORCH_CHECK(alpha != 0, "torch_ext::nn::CELU: alpha cannot be 0 for CELU");
  return elu_family_forward(
      input, counting(is_training(), input, "CELU", uniform_threshold("celu", alpha)),
      act::celu_params(alpha), options.inplace(),
      [alpha](const at::Tensor& x) { return torch_ext::celu(x, alpha); },
      [alpha](at::Tensor& x) { return torch_ext::celu_(x, alpha); });
}

void CELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::CELU(alpha=" << options.alpha()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

}  // namespace torch_ext::nn
