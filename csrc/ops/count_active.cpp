// torch_ext::count_active_: per-unit activity counts for the dead-neuron monitor, in one
// pass over the pre-activations, with no full-size temporary and no host sync.
// Schema, C++ entry point and Meta kernel; CPU kernel: ops/cpu/count_active_kernel.cpp.

#include <torch/library.h>

#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold) {
  static const auto op =
      detail::op_handle<void(const at::Tensor&, at::Tensor&, int64_t, const at::Tensor&)>(
          "torch_ext::count_active_");
  op.call(z, counts, unit_dim, alive_threshold);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // counts[0, u] += #{z > 0}, counts[1, u] += #{z > alive_threshold[u]}, over every
  // element of unit u (the index along unit_dim).
  m.def("count_active_(Tensor z, Tensor(a!) counts, int unit_dim, Tensor alive_threshold) -> ()");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("count_active_", [](const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                             const at::Tensor& alive_threshold) {
    outputs::count_active(z, counts, unit_dim, alive_threshold);
  });
}

}  // namespace torch_ext
