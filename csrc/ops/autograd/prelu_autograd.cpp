// Autograd for torch_ext::prelu and (for double backward) prelu_backward.

#include <ATen/TensorOperators.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd/common.h"
#include "ops/autograd/forward_ad.h"
#include "ops/autograd/named_node.h"
#include "ops/prelu_weight.h"
#include "torch_ext/ops.h"

namespace torch_ext::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor run_forward(const at::Tensor& self, const at::Tensor& weight, const Counter* counter) {
  if (counter == nullptr) return torch_ext::prelu(self, weight);
  return torch_ext::prelu_counted(self, weight, counter->counts, counter->unit_dim,
                                  counter->alive_threshold, counter->abs_sum);
}

// Saves input and weight: the weight gradient needs the input. apply() gets the primals,
// and the tensors themselves are saved, with their tangents (see forward_ad.h).
class Prelu : public torch::autograd::Function<Prelu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self, const at::Tensor& weight,
                            const Counter* counter, const at::Tensor* self_dual,
                            const at::Tensor* weight_dual) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({*self_dual, *weight_dual});
    return run_forward(self, weight, counter);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_input, grad_weight] = torch_ext::prelu_backward(grads[0], saved[0], saved[1]);
    return {grad_input, grad_weight, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// d out = f'(x) dx + (x > 0 ? 0 : x) dw, with dw broadcast like the weight; from the
// primals (see forward_ad.h).
at::Tensor prelu_tangent(const at::Tensor& self_dual, const at::Tensor& weight_dual) {
  const at::Tensor t_self = tangent_of(self_dual);
  const at::Tensor t_weight = tangent_of(weight_dual);
  const at::Tensor self = primal_of(self_dual);
  const at::Tensor weight = primal_of(weight_dual);
  at::Tensor tangent;
  if (t_self.defined()) {
    tangent = std::get<0>(torch_ext::prelu_backward(t_self, self, weight));
  }
  if (t_weight.defined()) {
    at::Tensor term = at::where(self > 0, 0.0, self * prelu_weight::broadcast(t_weight, self));
    tangent = tangent.defined() ? tangent + term : term;
  }
  return tangent;
}

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight, const Counter* counter) {
  at::Tensor out = records_grad(self) || records_grad(weight)
                       ? apply_named<Prelu>("PreluKernelBackward0", primal_of(self),
                                            primal_of(weight), counter, &self, &weight)
                       : below_autograd([&] { return run_forward(self, weight, counter); });
  if (any_tangent(self, weight)) {
    out._set_fw_grad(prelu_tangent(self, weight), /*level=*/0, /*is_inplace_op=*/false);
  }
  return out;
}

// grad_input = g * (x > 0 ? 1 : w), grad_weight = sum(x > 0 ? 0 : x * g). Both are linear
// in g; x enters only through the weight gradient's x * g, w only through grad_input.
// Saves the tensors themselves, with their tangents; apply() gets the primals.
class PreluBackward : public torch::autograd::Function<PreluBackward> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output,
                               const at::Tensor& self, const at::Tensor& weight,
                               const at::Tensor* grad_output_dual, const at::Tensor* self_dual,
                               const at::Tensor* weight_dual) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({*grad_output_dual, *self_dual, *weight_dual});
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
    return {d_grad_output, d_self, d_weight, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The tangents of (grad_input, grad_weight), linear in every input's tangent, from the
// primals: d grad_input = f'(x) dg + (x > 0 ? 0 : g dw),
// d grad_weight = sum(x > 0 ? 0 : dx g + x dg).
std::tuple<at::Tensor, at::Tensor> prelu_backward_tangents(const at::Tensor& grad_output_dual,
                                                           const at::Tensor& self_dual,
                                                           const at::Tensor& weight_dual) {
  const at::Tensor t_grad = tangent_or_zeros(grad_output_dual);
  const at::Tensor t_self = tangent_or_zeros(self_dual);
  const at::Tensor t_weight = tangent_or_zeros(weight_dual);
  const at::Tensor grad_output = primal_of(grad_output_dual);
  const at::Tensor self = primal_of(self_dual);
  const at::Tensor weight = primal_of(weight_dual);
  const auto positive = self > 0;
  at::Tensor d_grad_input =
      std::get<0>(torch_ext::prelu_backward(t_grad, self, weight)) +
      at::where(positive, 0.0, grad_output * prelu_weight::broadcast(t_weight, self));
  at::Tensor d_grad_weight =
      prelu_weight::reduce(at::where(positive, 0.0, t_self * grad_output + self * t_grad), weight);
  return {d_grad_input, d_grad_weight};
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  std::tuple<at::Tensor, at::Tensor> grads;
  if (records_grad(grad_output) || records_grad(self) || records_grad(weight)) {
    auto list = apply_named<PreluBackward>("PreluKernelBackwardBackward0", primal_of(grad_output),
                                           primal_of(self), primal_of(weight), &grad_output, &self,
                                           &weight);
    grads = {list[0], list[1]};
  } else {
    grads = below_autograd([&] { return torch_ext::prelu_backward(grad_output, self, weight); });
  }
  if (any_tangent(grad_output, self, weight)) {
    auto [d_grad_input, d_grad_weight] = prelu_backward_tangents(grad_output, self, weight);
    std::get<0>(grads)._set_fw_grad(d_grad_input, /*level=*/0, /*is_inplace_op=*/false);
    std::get<1>(grads)._set_fw_grad(d_grad_weight, /*level=*/0, /*is_inplace_op=*/false);
  }
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("prelu", [](const at::Tensor& self, const at::Tensor& weight) {
    return prelu(self, weight, nullptr);
  });
  m.impl("prelu_counted",
         [](const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts, int64_t unit_dim,
            const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum) {
           const Counter counter{counts, unit_dim, alive_threshold, abs_sum};
           at::Tensor out = prelu(self, weight, &counter);
           bump_statistics(counter);
           return out;
         });
  m.impl("prelu_backward", prelu_backward);
}

}  // namespace torch_ext::autograd
