// torch_ext::count_active_ is not differentiable: it only reads z and writes statistics.
// At the Autograd key it records nothing and runs the kernel below.

#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/library.h>

#include "torch_ext/ops.h"

namespace torch_ext::autograd {

TORCH_LIBRARY_IMPL(torch_ext, Autograd, m) {
  m.impl("count_active_", [](const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                             const at::Tensor& alive_threshold) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      torch_ext::count_active_(z, counts, unit_dim, alive_threshold);
    }
    torch::autograd::impl::bump_version(counts);
  });
}

}  // namespace torch_ext::autograd
