// Autograd for torch_ext::selu and selu_: the ELU rule (elu_autograd.cpp) with SELU's
// constants; the backward op is torch_ext::elu_backward.

#include <torch/library.h>

#include "activations/selu_constants.h"
#include "ops/autograd/elu_family.h"

namespace torch_ext::autograd {
namespace {
constexpr EluSpec kSelu{act::kSeluAlpha, act::kSeluScale, true};
}

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("selu", [](const at::Tensor& self, bool save_output) {
    EluSpec spec = kSelu;
    spec.save_output = save_output;
    return elu_family(self, spec);
  });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& { return elu_family_(self, kSelu); });
}

}  // namespace torch_ext::autograd
