// torch_ext::abs_sum_: per-unit sums of |h| (ReDo's activation scale) for the dead-neuron
// monitor, in one pass, with no full-size temporary and no host sync. Schema, C++ entry
// point, Meta kernel and the device kernel, written once for CPU and CUDA over their loops
// (ops/loops.h), as count_active_ is (ops/count_active.cpp).

#include <ATen/DeviceGuard.h>
#include <torch/library.h>

#include "ops/loops.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "ops/unit_view.h"
#include "torch_ext/ops.h"

namespace torch_ext {

void abs_sum_(const at::Tensor& h, at::Tensor& sums, int64_t unit_dim) {
  static const auto op =
      detail::op_handle<void(const at::Tensor&, at::Tensor&, int64_t)>("torch_ext::abs_sum_");
  op.call(h, sums, unit_dim);
}

TORCH_LIBRARY_FRAGMENT(torch_ext, m) {
  // sums[u] += sum of |h| over every element of unit u (the index along unit_dim); sums:
  // float64 {units}. See abs_sum_ in torch_ext/ops.h for the order and bounds of the sums.
  m.def("abs_sum_(Tensor h, Tensor(a!) sums, int unit_dim) -> ()");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("abs_sum_", [](const at::Tensor& h, at::Tensor& sums, int64_t unit_dim) {
    outputs::abs_sum(h, sums, unit_dim);
  });
}

namespace {

void abs_sum_kernel(const at::Tensor& h, at::Tensor& sums, int64_t unit_dim) {
  const int64_t dim = outputs::abs_sum(h, sums, unit_dim);
  if (h.numel() == 0) return;
  const c10::OptionalDeviceGuard guard(at::device_of(h));
  at::Tensor storage;
  loops_for("torch_ext::abs_sum_", h)
      .abs_sum(unit_view_or_copy(h, dim, storage), sums.mutable_data_ptr<double>());
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { m.impl("abs_sum_", abs_sum_kernel); }
TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { m.impl("abs_sum_", abs_sum_kernel); }

}  // namespace torch_ext
