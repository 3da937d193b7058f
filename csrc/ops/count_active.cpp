// torch_ext::count_active_: per-unit activity counts for the dead-neuron monitor, in one
// pass over the pre-activations, with no full-size temporary and no host sync.
// Schema, C++ entry point, Meta kernel and the device kernel, written once for CPU and CUDA
// over their loops (ops/loops.h).

#include <ATen/DeviceGuard.h>
#include <torch/library.h>

#include "ops/loops.h"
#include "ops/op_handle.h"
#include "ops/outputs.h"
#include "ops/unit_view.h"
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
  // counts[0, u] += #{z > 0}, counts[1, u] += #{z alive}, over every element of unit u (the
  // index along unit_dim). alive_threshold (float32): {units}, alive iff z > threshold[u];
  // or {4, units} (lo, hi, band_lo, band_hi), alive iff lo < z < hi and not
  // band_lo <= z <= band_hi. See count_active_ in torch_ext/ops.h.
  m.def("count_active_(Tensor z, Tensor(a!) counts, int unit_dim, Tensor alive_threshold) -> ()");
}

TORCH_LIBRARY_IMPL(torch_ext, Meta, m) {
  m.impl("count_active_", [](const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                             const at::Tensor& alive_threshold) {
    outputs::count_active(z, counts, unit_dim, alive_threshold);
  });
}

namespace {

void count_active_kernel(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                         const at::Tensor& alive_threshold) {
  const int64_t dim = outputs::count_active(z, counts, unit_dim, alive_threshold);
  if (z.numel() == 0) return;
  const c10::OptionalDeviceGuard guard(at::device_of(z));
  at::Tensor storage;
  const UnitStats stats{alive_threshold.const_data_ptr<float>(), alive_threshold.dim() == 2,
                        counts[0].mutable_data_ptr<int64_t>(),
                        counts[1].mutable_data_ptr<int64_t>(), nullptr};
  loops_for("torch_ext::count_active_", z).count_active(unit_view_or_copy(z, dim, storage), stats);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { m.impl("count_active_", count_active_kernel); }
TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { m.impl("count_active_", count_active_kernel); }

}  // namespace torch_ext
