#include "torch_ext/nn.h"

#include <ATen/ops/full.h>
#include <torch/nn/init.h>

#include "activations/selu_constants.h"
#include "torch_ext/ops.h"

namespace torch_ext::nn {
namespace {

// The alive threshold of an activation with fixed parameters, one value for every unit.
auto uniform_threshold(const char* activation, double param) {
  return [activation, param](double grad_eps, int64_t units) {
    return at::full({units}, torch_ext::alive_threshold(activation, param, grad_eps), at::kFloat);
  };
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
  auto c = counting(is_training(), input, "ELU", uniform_threshold("elu", alpha));
  if (options.inplace()) {
    if (c) torch_ext::count_active_(input, c->counts, c->unit_dim, c->alive_threshold);
    return torch_ext::elu_(input, alpha);
  }
  if (c) {
    return torch_ext::elu_counted(input, alpha, 1.0, c->counts, c->unit_dim, c->alive_threshold);
  }
  return torch_ext::elu(input, alpha);
}

void ELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::ELU(alpha=" << options.alpha()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

SELUImpl::SELUImpl(const SELUOptions& options_) : options(options_) {}

at::Tensor SELUImpl::forward(at::Tensor input) {
  auto c = counting(is_training(), input, "SELU", uniform_threshold("selu", 0.0));
  if (options.inplace()) {
    if (c) torch_ext::count_active_(input, c->counts, c->unit_dim, c->alive_threshold);
    return torch_ext::selu_(input);
  }
  if (c) {
    return torch_ext::elu_counted(input, act::kSeluAlpha, act::kSeluScale, c->counts, c->unit_dim,
                                  c->alive_threshold);
  }
  return torch_ext::selu(input);
}

void SELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::SELU(" << (options.inplace() ? "inplace=true" : "") << ")";
}

}  // namespace torch_ext::nn
