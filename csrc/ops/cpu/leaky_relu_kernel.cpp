// CPU implementation of torch_ext::leaky_relu, leaky_relu_ and leaky_relu_backward.

#include <torch/library.h>

#include "ops/iterator.h"
#include "ops/cpu/loops.h"
#include "ops/counted.h"
#include "ops/outputs.h"

namespace torch_ext::cpu {
namespace {

at::Tensor leaky_relu(const at::Tensor& self, double negative_slope) {
  at::Tensor out = outputs::activation("torch_ext::leaky_relu", self);
  auto iter = elementwise(out, self);
  loops().leaky_relu(iter, negative_slope);
  return out;
}

at::Tensor& leaky_relu_(at::Tensor& self, double negative_slope) {
  outputs::activation_in_place("torch_ext::leaky_relu_", self);
  auto iter = elementwise(self, self);
  loops().leaky_relu(iter, negative_slope);
  return self;
}

at::Tensor leaky_relu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                               double negative_slope, bool is_result) {
  at::Tensor grad_input =
      outputs::activation_backward("torch_ext::leaky_relu_backward", grad_output, self_or_result,
                                   "negative_slope", negative_slope, is_result);
  // With slope >= 0 the result has the input's sign, so one loop serves both paths.
  auto iter = elementwise(grad_input, grad_output, self_or_result);
  loops().leaky_relu_backward(iter, negative_slope);
  return grad_input;
}

std::tuple<at::Tensor, at::Tensor> leaky_relu_masked(const at::Tensor& self,
                                                     double negative_slope) {
  auto [result, mask] = outputs::masked_activation("torch_ext::leaky_relu_masked", self);
  if (self.numel() > 0) {
    const at::Tensor source = outputs::laid_out_like(self, result);
    loops().leaky_relu_masked(self.scalar_type(), source.const_data_ptr(),
                              result.mutable_data_ptr(), mask.mutable_data_ptr<uint8_t>(),
                              self.numel(), negative_slope);
  }
  return {result, mask};
}

at::Tensor leaky_relu_backward_masked(const at::Tensor& grad_output, const at::Tensor& sign_mask,
                                      double negative_slope, c10::SymIntArrayRef result_strides) {
  at::Tensor grad_input = outputs::masked_backward("torch_ext::leaky_relu_backward_masked",
                                                   grad_output, sign_mask, result_strides);
  if (grad_output.numel() > 0) {
    const at::Tensor source = outputs::laid_out_like(grad_output, grad_input);
    loops().leaky_relu_backward_masked(
        grad_output.scalar_type(), source.const_data_ptr(), sign_mask.const_data_ptr<uint8_t>(),
        grad_input.mutable_data_ptr(), grad_output.numel(), negative_slope);
  }
  return grad_input;
}

at::Tensor leaky_relu_counted(const at::Tensor& self, double negative_slope, at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold) {
  return counted_forward(
      "torch_ext::leaky_relu_counted", self, counts, unit_dim, alive_threshold,
      [&](const UnitView& view, void* out, const float* threshold, int64_t* active,
          int64_t* alive) {
        loops().leaky_relu_counted(view, out, negative_slope, threshold, active, alive);
      },
      [&](at::Tensor& out) {
        auto iter = elementwise(out, self);
        loops().leaky_relu(iter, negative_slope);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("leaky_relu", leaky_relu);
  m.impl("leaky_relu_", leaky_relu_);
  m.impl("leaky_relu_backward", leaky_relu_backward);
  m.impl("leaky_relu_counted", leaky_relu_counted);
  m.impl("leaky_relu_masked", leaky_relu_masked);
  m.impl("leaky_relu_backward_masked", leaky_relu_backward_masked);
}

}  // namespace torch_ext::cpu
