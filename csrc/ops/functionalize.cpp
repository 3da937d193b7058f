// Functionalization of the in-place ops (leaky_relu_, elu_, selu_, celu_).
//
// torch.compile and torch.export trace mutation-free programs. PyTorch cannot
// functionalize a custom op whose output aliases an input (`Tensor(a!)` returned), so
// each in-place op is rewritten here, as ATen's generated kernels do for its own: run the
// out-of-place op on the current value, then make it the functional tensor's new value.

#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/library.h>

#include "torch_ext/ops.h"

namespace torch_ext {
namespace {

template <typename OutOfPlace, typename InPlace>
at::Tensor& functionalize(at::Tensor& self, const OutOfPlace& out_of_place,
                          const InPlace& in_place) {
  namespace impl = at::functionalization::impl;
  if (!impl::isFunctionalTensor(self)) {
    at::AutoDispatchSkipFunctionalize guard;
    return in_place(self);
  }
  impl::sync(self);
  const at::Tensor value = impl::from_functional_tensor(self);
  at::Tensor result;
  {
    at::AutoDispatchSkipFunctionalize guard;
    result = out_of_place(value);
  }
  impl::replace_(self, result);
  impl::commit_update(self);
  impl::sync(self);
  return self;
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, Functionalize, m) {
  m.impl("leaky_relu_", [](at::Tensor& self, double slope) -> at::Tensor& {
    return functionalize(
        self, [&](const at::Tensor& v) { return torch_ext::leaky_relu(v, slope); },
        [&](at::Tensor& t) -> at::Tensor& { return torch_ext::leaky_relu_(t, slope); });
  });
  m.impl("elu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return functionalize(
        self, [&](const at::Tensor& v) { return torch_ext::elu(v, alpha); },
        [&](at::Tensor& t) -> at::Tensor& { return torch_ext::elu_(t, alpha); });
  });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    return functionalize(
        self, [](const at::Tensor& v) { return torch_ext::selu(v); },
        [](at::Tensor& t) -> at::Tensor& { return torch_ext::selu_(t); });
  });
  m.impl("celu_", [](at::Tensor& self, double alpha) -> at::Tensor& {
    return functionalize(
        self, [&](const at::Tensor& v) { return torch_ext::celu(v, alpha); },
        [&](at::Tensor& t) -> at::Tensor& { return torch_ext::celu_(t, alpha); });
  });
}

}  // namespace torch_ext
