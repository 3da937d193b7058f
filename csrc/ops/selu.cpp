// torch_ext::selu: schema, C++ entry points and the Meta (shape-only) kernels.
// SELU is ELU with fixed alpha and scale: its backward is torch_ext::elu_backward.
// CPU kernel: ops/cpu/selu_kernel.cpp; autograd: ops/autograd/selu_autograd.cpp.

#include <torch/library.h>

#include <tuple>

#include "activations/selu_constants.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor selu(const at::Tensor& self, bool save_output) {
  static const auto op = detail::op_handle<at::Tensor(const at::Tensor&, bool)>("torch_ext::selu");
  return op.call(self, save_output);
}

at::Tensor& selu_(at::Tensor& self) {
  static const auto op = detail::op_handle<at::Tensor&(at::Tensor&)>("torch_ext::selu_");
  return op.call(self);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  m.def("selu(Tensor self, *, bool save_output=False) -> Tensor");  // as elu's
  m.def("selu_(Tensor(a!) self) -> Tensor(a!)");
  // (alpha, scale), the one definition Python reads too (torch_ext.activations).
  m.def("selu_constants() -> (float, float)",
        [] { return std::make_tuple(act::kSeluAlpha, act::kSeluScale); });
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("selu",
         [](const at::Tensor& self, bool) { return outputs::activation("torch_ext::selu", self); });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    outputs::activation_in_place("torch_ext::selu_", self);
    return self;
  });
}

}  // namespace torch_ext
