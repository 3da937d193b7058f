#include "torch_ext/nn.h"

#include <torch/nn/init.h>

#include "torch_ext/ops.h"

namespace torch_ext::nn {

LeakyReLUImpl::LeakyReLUImpl(const LeakyReLUOptions& options_) : options(options_) {}

at::Tensor LeakyReLUImpl::forward(at::Tensor input) {
  if (options.inplace()) {
    return torch_ext::leaky_relu_(input, options.negative_slope());
  }
  return torch_ext::leaky_relu(input, options.negative_slope());
}

void LeakyReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::LeakyReLU(negative_slope=" << options.negative_slope()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

PReLUImpl::PReLUImpl(const PReLUOptions& options_) : options(options_) {
  reset();
}

void PReLUImpl::reset() {
  weight = register_parameter("weight", torch::full({options.num_parameters()}, options.init()));
}

at::Tensor PReLUImpl::forward(const at::Tensor& input) {
  return torch_ext::prelu(input, weight);
}

void PReLUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::PReLU(num_parameters=" << options.num_parameters() << ")";
}

ELUImpl::ELUImpl(const ELUOptions& options_) : options(options_) {}

at::Tensor ELUImpl::forward(at::Tensor input) {
  if (options.inplace()) {
    return torch_ext::elu_(input, options.alpha());
  }
  return torch_ext::elu(input, options.alpha());
}

void ELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::ELU(alpha=" << options.alpha()
         << (options.inplace() ? ", inplace=true" : "") << ")";
}

SELUImpl::SELUImpl(const SELUOptions& options_) : options(options_) {}

at::Tensor SELUImpl::forward(at::Tensor input) {
  return options.inplace() ? torch_ext::selu_(input) : torch_ext::selu(input);
}

void SELUImpl::pretty_print(std::ostream& stream) const {
  stream << "torch_ext::nn::SELU(" << (options.inplace() ? "inplace=true" : "") << ")";
}

}  // namespace torch_ext::nn
