// CPU implementation of torch_ext::prelu and prelu_backward.

#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "ops/iterator.h"
#include "ops/cpu/loops.h"
#include "ops/counted.h"
#include "ops/outputs.h"
#include "ops/prelu_weight.h"

namespace torch_ext::cpu {
namespace {

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  at::Tensor out = outputs::prelu(self, weight);
  auto iter = elementwise(out, self, prelu_weight::broadcast(weight, self));
  loops().prelu(iter);
  return out;
}

// The one-pass backward applies to float32/float64 inputs with channels (dim 1) as a unit
// view (NCHW, channels_last, [N, C]) and grad_output laid out like the input.
bool fusable_backward(const at::Tensor& grad_output, const at::Tensor& self) {
  const auto dtype = self.scalar_type();
  return (dtype == at::kFloat || dtype == at::kDouble) && self.dim() >= 2 && self.numel() > 0 &&
         grad_output.strides() == self.strides() && unit_view(self, 1).has_value();
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  auto [grad_input, grad_weight] = outputs::prelu_backward(grad_output, self, weight);
  if (fusable_backward(grad_output, self) && grad_input.strides() == self.strides()) {
    const auto view = *unit_view(self, 1);
    const at::Tensor slopes = weight.reshape({-1}).expand({view.units}).contiguous();
    at::Tensor per_channel = at::zeros({view.units}, self.options().dtype(at::kDouble));
    loops().prelu_backward_fused(view, grad_output.const_data_ptr(), grad_input.mutable_data_ptr(),
                                 slopes.const_data_ptr(), per_channel.mutable_data_ptr<double>());
    grad_weight.copy_(weight.numel() == 1 ? per_channel.sum().reshape(weight.sizes())
                                          : per_channel.reshape(weight.sizes()));
    return {grad_input, grad_weight};
  }
  auto input_iter =
      elementwise(grad_input, grad_output, self, prelu_weight::broadcast(weight, self));
  loops().prelu_backward_input(input_iter);

  at::Tensor per_element = at::empty_like(self);
  auto weight_iter = elementwise(per_element, grad_output, self);
  loops().prelu_backward_weight(weight_iter);
  grad_weight.copy_(prelu_weight::reduce(per_element, weight));
  return {grad_input, grad_weight};
}

at::Tensor prelu_counted(const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                         int64_t unit_dim, const at::Tensor& alive_threshold) {
  return prelu_counted_forward(
      self, weight, counts, unit_dim, alive_threshold,
      [](const UnitView& view, void* out, const void* slopes, const float* threshold,
         int64_t* active,
         int64_t* alive) { loops().prelu_counted(view, out, slopes, threshold, active, alive); },
      [&](at::Tensor& out) {
        auto iter = elementwise(out, self, prelu_weight::broadcast(weight, self));
        loops().prelu(iter);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("prelu", prelu);
  m.impl("prelu_backward", prelu_backward);
  m.impl("prelu_counted", prelu_counted);
}

}  // namespace torch_ext::cpu
