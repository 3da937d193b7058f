#include "ops/counted.h"

#include <ATen/ops/empty_like.h>

#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor counted_forward(
    const char* op, const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum,
    const std::function<void(const UnitView&, void*, const UnitStats&)>& fused,
    const std::function<void(at::Tensor&)>& plain, bool fusable) {
  at::Tensor out = outputs::counted_activation(op, z, counts, unit_dim, alive_threshold, abs_sum);
  if (z.numel() == 0) return out;
  const int64_t dim = unit_dim < 0 ? unit_dim + z.dim() : unit_dim;
  const auto view = unit_view(z, dim);
  if (fusable && view && out.strides() == z.strides()) {
    const UnitStats stats{alive_threshold.const_data_ptr<float>(), alive_threshold.dim() == 2,
                          counts[0].mutable_data_ptr<int64_t>(),
                          counts[1].mutable_data_ptr<int64_t>(),
                          abs_sum ? abs_sum->mutable_data_ptr<double>() : nullptr};
    fused(*view, out.mutable_data_ptr(), stats);
  } else {
    plain(out);
    torch_ext::count_active_(z, counts, dim, alive_threshold);
    if (abs_sum) {
      at::Tensor sums = *abs_sum;
      torch_ext::abs_sum_(out, sums, dim);
    }
  }
  return out;
}

at::Tensor prelu_counted_forward(
    const at::Tensor& self, const at::Tensor& weight, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold, const std::optional<at::Tensor>& abs_sum,
    const std::function<void(const UnitView&, void*, const void*, const UnitStats&)>& fused,
    const std::function<void(at::Tensor&)>& plain) {
  outputs::prelu(self, weight);  // PReLU's own argument checks
  const bool per_unit_slopes =
      weight.numel() == 1 || self.dim() < 2 || (unit_dim + self.dim()) % self.dim() == 1;
  return counted_forward(
      "torch_ext::prelu_counted", self, counts, unit_dim, alive_threshold, abs_sum,
      [&](const UnitView& view, void* out, const UnitStats& stats) {
        // On CUDA, freed after the launch: the caching allocator reuses it only after the
        // kernel has run.
        const at::Tensor slopes = weight.reshape({-1}).expand({view.units}).contiguous();
        fused(view, out, slopes.const_data_ptr(), stats);
      },
      plain, per_unit_slopes);
}

}  // namespace torch_ext
