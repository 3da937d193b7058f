// Autograd for torch_ext::prelu and (for double backward) prelu_backward.

#include <ATen/TensorOperators.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd/common.h"
#include "ops/prelu_weight.h"
#include "torch_ext/ops.h"

namespace torch_ext::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor run_forward(const at::Tensor& self, const at::Tensor& weight, const Counter* counter) {
  if (counter == nullptr) return torch_ext::prelu(self, weight);
  return torch_ext::prelu_counted(self, weight, counter->counts, counter->unit_dim,
                                  counter->alive_threshold);
}

// Saves input and weight: the weight gradient needs the input.
class Prelu : public torch::autograd::Function<Prelu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self,
                            const at::Tensor& weight, const Counter* counter) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({self, weight});
    return run_forward(self, weight, counter);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_input, grad_weight] = torch_ext::prelu_backward(grads[0], saved[0], saved[1]);
    return {grad_input, grad_weight, at::Tensor()};
  }
};

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight, const Counter* counter) {
  if (!records_grad(self) && !records_grad(weight)) {
    return below_autograd([&] { return run_forward(self, weight, counter); });
  }
  return Prelu::apply(self, weight, counter);
}

// grad_input = g * (x > 0 ? 1 : w), grad_weight = sum(x > 0 ? 0 : x * g). Both are linear
// in g; x enters only through the weight gradient's x * g, w only through grad_input.
class PreluBackward : public torch::autograd::Function<PreluBackward> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output,
                               const at::Tensor& self, const at::Tensor& weight) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({grad_output, self, weight});
    auto [grad_input, grad_weight] = torch_ext::prelu_backward(grad_output, self, weight);
    return {grad_input, grad_weight};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& grad_output = saved[0];
    const auto& self = saved[1];
    const auto& weight = saved[2];
    const auto& gg_input = grads[0];
    const auto gg_weight = prelu_weight::broadcast(grads[1], self);
    const auto positive = self > 0;

    auto d_grad_output = std::get<0>(torch_ext::prelu_backward(gg_input, self, weight)) +
                         at::where(positive, 0.0, self * gg_weight);
    auto d_self = at::where(positive, 0.0, grad_output * gg_weight);
    auto d_weight = prelu_weight::reduce(at::where(positive, 0.0, gg_input * grad_output), weight);
    return {d_grad_output, d_self, d_weight};
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("prelu", [](const at::Tensor& self, const at::Tensor& weight) {
    return prelu(self, weight, nullptr);
  });
  m.impl("prelu_counted", [](const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                             int64_t unit_dim, const at::Tensor& alive_threshold) {
    const Counter counter{counts, unit_dim, alive_threshold};
    at::Tensor out = prelu(self, weight, &counter);
    torch::autograd::impl::bump_version(counts);
    return out;
  });
  m.impl("prelu_backward", [](const at::Tensor& grad_output, const at::Tensor& self,
                              const at::Tensor& weight) {
    if (!records_grad(grad_output) && !records_grad(self) && !records_grad(weight)) {
      return below_autograd([&] { return torch_ext::prelu_backward(grad_output, self, weight); });
    }
    auto grads = PreluBackward::apply(grad_output, self, weight);
    return std::make_tuple(grads[0], grads[1]);
  });
}

}  // namespace torch_ext::autograd
