// torch_ext::leaky_relu: schema, C++ entry points and the Meta (shape-only) kernels.
// CPU kernel: ops/cpu/leaky_relu_kernel.cpp; autograd: ops/autograd/leaky_relu_autograd.cpp.

#include <torch/library.h>

#include "ops/outputs.h"
#include "ops/op_handle.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor leaky_relu(const at::Tensor& self, double negative_slope) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double)>("torch_ext::leaky_relu");
  return op.call(self, negative_slope);
}

at::Tensor& leaky_relu_(at::Tensor& self, double negative_slope) {
  static const auto op =
      detail::op_handle<at::Tensor&(at::Tensor&, double)>("torch_ext::leaky_relu_");
  return op.call(self, negative_slope);
}

at::Tensor leaky_relu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                               double negative_slope, bool is_result) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, double, bool)>(
          "torch_ext::leaky_relu_backward");
  return op.call(grad_output, self_or_result, negative_slope, is_result);
}

std::tuple<at::Tensor, at::Tensor> leaky_relu_masked(const at::Tensor& self,
                                                     double negative_slope) {
  static const auto op =
      detail::op_handle<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double)>(
          "torch_ext::leaky_relu_masked");
  return op.call(self, negative_slope);
}

at::Tensor leaky_relu_backward_masked(const at::Tensor& grad_output, const at::Tensor& sign_mask,
                                      double negative_slope, c10::SymIntArrayRef result_strides) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                   c10::SymIntArrayRef)>("torch_ext::leaky_relu_backward_masked");
  return op.call(grad_output, sign_mask, negative_slope, result_strides);
}

at::Tensor leaky_relu_counted(const at::Tensor& self, double negative_slope, at::Tensor& counts,
                              int64_t unit_dim, const at::Tensor& alive_threshold) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, at::Tensor&, int64_t,
                                   const at::Tensor&)>("torch_ext::leaky_relu_counted");
  return op.call(self, negative_slope, counts, unit_dim, alive_threshold);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  m.def("leaky_relu(Tensor self, float negative_slope=0.01) -> Tensor");
  m.def("leaky_relu_(Tensor(a!) self, float negative_slope=0.01) -> Tensor(a!)");
  m.def(
      "leaky_relu_backward(Tensor grad_output, Tensor self_or_result, float negative_slope, "
      "bool is_result) -> Tensor");
  m.def(
      "leaky_relu_masked(Tensor self, float negative_slope) -> (Tensor result, Tensor sign_mask)");
  // result_strides: the strides of the result the mask came with; its bits follow that
  // layout's memory order, whatever grad_output's layout is.
  m.def(
      "leaky_relu_backward_masked(Tensor grad_output, Tensor sign_mask, float negative_slope, "
      "SymInt[] result_strides) -> Tensor");
  m.def(
      "leaky_relu_counted(Tensor input, float negative_slope, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("leaky_relu", [](const at::Tensor& self, double) {
    return outputs::activation("torch_ext::leaky_relu", self);
  });
  m.impl("leaky_relu_", [](at::Tensor& self, double) -> at::Tensor& {
    outputs::activation_in_place("torch_ext::leaky_relu_", self);
    return self;
  });
  m.impl("leaky_relu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                                   double negative_slope, bool is_result) {
    return outputs::activation_backward("torch_ext::leaky_relu_backward", grad_output,
                                        self_or_result, "negative_slope", negative_slope,
                                        is_result);
  });
  m.impl("leaky_relu_masked", [](const at::Tensor& self, double) {
    return outputs::masked_activation("torch_ext::leaky_relu_masked", self);
  });
  m.impl("leaky_relu_backward_masked",
         [](const at::Tensor& grad_output, const at::Tensor& sign_mask, double,
            c10::SymIntArrayRef result_strides) {
           return outputs::masked_backward("torch_ext::leaky_relu_backward_masked", grad_output,
                                           sign_mask, result_strides);
         });
  m.impl("leaky_relu_counted", [](const at::Tensor& self, double, at::Tensor& counts,
                                  int64_t unit_dim, const at::Tensor& alive_threshold) {
    return outputs::counted_activation("torch_ext::leaky_relu_counted", self, counts, unit_dim,
                                       alive_threshold);
  });
}

}  // namespace torch_ext
