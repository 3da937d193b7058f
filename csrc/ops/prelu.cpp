// torch_ext::prelu: schema, C++ entry points and the Meta (shape-only) kernels.
// CPU kernel: ops/cpu/prelu_kernel.cpp; autograd: ops/autograd/prelu_autograd.cpp.

#include <torch/library.h>

#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor prelu(const at::Tensor& self, const at::Tensor& weight) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&)>("torch_ext::prelu");
  return op.call(self, weight);
}

std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output,
                                                  const at::Tensor& self,
                                                  const at::Tensor& weight) {
  static const auto op = detail::op_handle<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&)>("torch_ext::prelu_backward");
  return op.call(grad_output, self, weight);
}

at::Tensor prelu_counted(const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                         int64_t unit_dim, const at::Tensor& alive_threshold) {
  static const auto op =
      detail::op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, at::Tensor&, int64_t,
                                   const at::Tensor&)>("torch_ext::prelu_counted");
  return op.call(self, weight, counts, unit_dim, alive_threshold);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  m.def("prelu(Tensor self, Tensor weight) -> Tensor");
  m.def(
      "prelu_backward(Tensor grad_output, Tensor self, Tensor weight) "
      "-> (Tensor grad_input, Tensor grad_weight)");
  m.def(
      "prelu_counted(Tensor input, Tensor weight, Tensor(a!) counts, int unit_dim, "
      "Tensor alive_threshold) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("prelu", outputs::prelu);
  m.impl("prelu_backward", outputs::prelu_backward);
  m.impl("prelu_counted", [](const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts,
                             int64_t unit_dim, const at::Tensor& alive_threshold) {
    at::Tensor out = outputs::prelu(self, weight);
    outputs::count_active(self, counts, unit_dim, alive_threshold, "torch_ext::prelu_counted",
                          "input");
    return out;
  });
}

}  // namespace torch_ext
