// torch_ext::elu: schema, C++ entry points and the Meta (shape-only) kernels.
// elu_backward also serves SELU (a scaled ELU, ops/selu.cpp).
// CPU kernel: ops/cpu/elu_kernel.cpp; autograd: ops/autograd/elu_autograd.cpp.

#include <torch/library.h>

#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor elu(const at::Tensor& self, double alpha, bool save_output) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, bool)>("torch_ext::elu");
  return op.call(self, alpha, save_output);
}

at::Tensor& elu_(at::Tensor& self, double alpha) {
  static const auto op = detail::op_handle<at::Tensor&(at::Tensor&, double)>("torch_ext::elu_");
  return op.call(self, alpha);
}

at::Tensor elu_backward(const at::Tensor& grad_output, const at::Tensor& self_or_result,
                        double alpha, double scale, bool is_result) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, double, double, bool)>(
          "torch_ext::elu_backward");
  return op.call(grad_output, self_or_result, alpha, scale, is_result);
}

at::Tensor elu_counted(const at::Tensor& self, double alpha, double scale, at::Tensor& counts,
                       int64_t unit_dim, const at::Tensor& alive_threshold, bool save_output) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, double, double, at::Tensor&, int64_t,
                                   const at::Tensor&, bool)>("torch_ext::elu_counted");
  return op.call(self, alpha, scale, counts, unit_dim, alive_threshold, save_output);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // save_output: autograd keeps the output instead of the input (opt-in; see the README's
  // memory table). The device kernels ignore it.
  m.def("elu(Tensor self, float alpha=1.0, *, bool save_output=False) -> Tensor");
  m.def("elu_(Tensor(a!) self, float alpha=1.0) -> Tensor(a!)");
  m.def(
      "elu_backward(Tensor grad_output, Tensor self_or_result, float alpha, float scale, "
      "bool is_result) -> Tensor");
  // scale * elu(self, alpha), counted: serves ELU (scale 1) and SELU.
  m.def(
      "elu_counted(Tensor input, float alpha, float scale, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold, bool save_output=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("elu", [](const at::Tensor& self, double, bool) {
    return outputs::activation("torch_ext::elu", self);
  });
  m.impl("elu_", [](at::Tensor& self, double) -> at::Tensor& {
    outputs::activation_in_place("torch_ext::elu_", self);
    return self;
  });
  m.impl("elu_backward", [](const at::Tensor& grad_output, const at::Tensor& self_or_result,
                            double alpha, double, bool is_result) {
    return outputs::activation_backward("torch_ext::elu_backward", grad_output, self_or_result,
                                        "alpha", alpha, is_result);
  });
  m.impl("elu_counted", [](const at::Tensor& self, double, double, at::Tensor& counts,
                           int64_t unit_dim, const at::Tensor& alive_threshold, bool) {
    return outputs::counted_activation("torch_ext::elu_counted", self, counts, unit_dim,
                                       alive_threshold);
  });
}

}  // namespace torch_ext
