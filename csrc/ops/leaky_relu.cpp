// torch_ext::leaky_relu: schema, C++ entry points, the Meta (shape-only) kernels and the
// device kernels, written once for CPU and CUDA over their loops (ops/loops.h).
// Autograd: ops/autograd/leaky_relu_autograd.cpp.

#include <ATen/DeviceGuard.h>
#include <torch/library.h>

#include "ops/counted.h"
#include "ops/iterator.h"
#include "ops/loops.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
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
                              int64_t unit_dim, const at::Tensor& alive_threshold,
                              const std::optional<at::Tensor>& abs_sum) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, at::Tensor&, int64_t,
                                   const at::Tensor&, const std::optional<at::Tensor>&)>(
          "torch_ext::leaky_relu_counted");
  return op.call(self, negative_slope, counts, unit_dim, alive_threshold, abs_sum);
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
  // count_active_(input, counts, unit_dim, alive_threshold) and, with abs_sum,
  // abs_sum_(result, abs_sum, unit_dim), in the activation's pass.
  m.def(
      "leaky_relu_counted(Tensor input, float negative_slope, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold, Tensor(b!)? abs_sum=None) -> Tensor");
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
                                        self_or_result, "negative_slope", negative_slope, is_result,
                                        /*self_first=*/true);
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
  m.impl("leaky_relu_counted",
         [](const at::Tensor& self, double, at::Tensor& counts, int64_t unit_dim,
            const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum) {
           return outputs::counted_activation("torch_ext::leaky_relu_counted", self, counts,
                                              unit_dim, alive_threshold, abs_sum);
         });
}

namespace {

void check_slope(const char* op, double negative_slope, const at::Tensor& like) {
  outputs::check_fits_compute_type(op, "argument 'negative_slope'", negative_slope,
                                   like.scalar_type());
}

at::Tensor leaky_relu_kernel(const at::Tensor& self, double negative_slope) {
  constexpr const char* op = "torch_ext::leaky_relu";
  at::Tensor out = outputs::activation(op, self);
  check_slope(op, negative_slope, self);
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  auto iter = elementwise_iterator(out, self);
  loops_for(op, self).leaky_relu(iter, negative_slope);
  return out;
}

at::Tensor& leaky_relu_kernel_(at::Tensor& self, double negative_slope) {
  constexpr const char* op = "torch_ext::leaky_relu_";
  outputs::activation_in_place(op, self);
  check_slope(op, negative_slope, self);
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  auto iter = elementwise_iterator(self, self);
  loops_for(op, self).leaky_relu(iter, negative_slope);
  return self;
}

at::Tensor leaky_relu_backward_kernel(const at::Tensor& grad_output,
                                      const at::Tensor& self_or_result, double negative_slope,
                                      bool is_result) {
  constexpr const char* op = "torch_ext::leaky_relu_backward";
  at::Tensor grad_input = outputs::activation_backward(op, grad_output, self_or_result,
                                                       "negative_slope", negative_slope, is_result,
                                                       /*self_first=*/true);
  check_slope(op, negative_slope, grad_input);
  const c10::OptionalDeviceGuard guard(at::device_of(grad_output));
  // With slope >= 0 the result has the input's sign, so one loop serves both paths.
  auto iter = promoted_iterator(grad_input, grad_output, self_or_result);
  loops_for(op, grad_output).leaky_relu_backward(iter, negative_slope);
  return grad_input;
}

std::tuple<at::Tensor, at::Tensor> leaky_relu_masked_kernel(const at::Tensor& self,
                                                            double negative_slope) {
  constexpr const char* op = "torch_ext::leaky_relu_masked";
  auto [result, mask] = outputs::masked_activation(op, self);
  check_slope(op, negative_slope, self);
  if (self.numel() == 0) return {result, mask};
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  const at::Tensor source = outputs::laid_out_like(self, result);
  loops_for(op, self).leaky_relu_masked(self.scalar_type(), source.const_data_ptr(),
                                        result.mutable_data_ptr(), mask.mutable_data_ptr<uint8_t>(),
                                        self.numel(), negative_slope);
  return {result, mask};
}

at::Tensor leaky_relu_backward_masked_kernel(const at::Tensor& grad_output,
                                             const at::Tensor& sign_mask, double negative_slope,
                                             c10::SymIntArrayRef result_strides) {
  constexpr const char* op = "torch_ext::leaky_relu_backward_masked";
  at::Tensor grad_input = outputs::masked_backward(op, grad_output, sign_mask, result_strides);
  check_slope(op, negative_slope, grad_output);
  if (grad_output.numel() == 0) return grad_input;
  const c10::OptionalDeviceGuard guard(at::device_of(grad_output));
  const at::Tensor source = outputs::laid_out_like(grad_output, grad_input);
  loops_for(op, grad_output)
      .leaky_relu_backward_masked(
          grad_output.scalar_type(), source.const_data_ptr(), sign_mask.const_data_ptr<uint8_t>(),
          grad_input.mutable_data_ptr(), grad_output.numel(), negative_slope);
  return grad_input;
}

at::Tensor leaky_relu_counted_kernel(const at::Tensor& self, double negative_slope,
                                     at::Tensor& counts, int64_t unit_dim,
                                     const at::Tensor& alive_threshold,
                                     const std::optional<at::Tensor>& abs_sum) {
  constexpr const char* op = "torch_ext::leaky_relu_counted";
  check_slope(op, negative_slope, self);
  const c10::OptionalDeviceGuard guard(at::device_of(self));
  const Loops& loops = loops_for(op, self);
  return counted_forward(
      op, self, counts, unit_dim, alive_threshold, abs_sum,
      [&](const UnitView& view, void* out, const UnitStats& stats) {
        loops.leaky_relu_counted(view, out, negative_slope, stats);
      },
      [&](at::Tensor& out) {
        auto iter = elementwise_iterator(out, self);
        loops.leaky_relu(iter, negative_slope);
      });
}

void register_leaky_relu_kernels(torch::Library& m) {
  m.impl("leaky_relu", leaky_relu_kernel);
  m.impl("leaky_relu_", leaky_relu_kernel_);
  m.impl("leaky_relu_backward", leaky_relu_backward_kernel);
  m.impl("leaky_relu_counted", leaky_relu_counted_kernel);
  m.impl("leaky_relu_masked", leaky_relu_masked_kernel);
  m.impl("leaky_relu_backward_masked", leaky_relu_backward_masked_kernel);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { register_leaky_relu_kernels(m); }
TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { register_leaky_relu_kernels(m); }

}  // namespace torch_ext
