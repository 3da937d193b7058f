// The statistics ops torch_ext::count_active_ and abs_sum_ are not differentiable: they only
// read their input and write statistics. At the Autograd key they record nothing and run
// the kernel below, then bump the version of what they wrote (custom ops get no
// ADInplaceOrView kernel).

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
  m.impl("abs_sum_", [](const at::Tensor& h, at::Tensor& sums, int64_t unit_dim) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      torch_ext::abs_sum_(h, sums, unit_dim);
    }
    torch::autograd::impl::bump_version(sums);
  });
}

}  // namespace torch_ext::autograd
