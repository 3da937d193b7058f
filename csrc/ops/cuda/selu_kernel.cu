// CUDA implementation of torch_ext::selu and selu_: the ELU kernel with SELU's constants.
// The backward is torch_ext::elu_backward (ops/cuda/elu_kernel.cu).

#include <torch/library.h>

#include "activations/selu_constants.h"
#include "ops/cuda/elu_kernel.h"

namespace torch_ext::cuda {

TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) {
  m.impl("selu", [](const at::Tensor& self, bool /*save_output*/) {
    return elu_forward("torch_ext::selu", self, act::kSeluAlpha, act::kSeluScale);
  });
  m.impl("selu_", [](at::Tensor& self) -> at::Tensor& {
    return elu_forward_("torch_ext::selu_", self, act::kSeluAlpha, act::kSeluScale);
  });
}

}  // namespace torch_ext::cuda
