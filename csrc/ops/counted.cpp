#include "ops/counted.h"

#include <ATen/ops/empty_like.h>

#include "ops/outputs.h"
#include "torch_ext/ops.h"

namespace torch_ext {

at::Tensor counted_forward(
    const char* op, const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
    const at::Tensor& alive_threshold,
    const std::function<void(const UnitView&, void*, const float*, int64_t*, int64_t*)>& fused,
    const std::function<void(at::Tensor&)>& plain, bool fusable) {
  const int64_t dim = outputs::count_active(z, counts, unit_dim, alive_threshold, op, "input");
  at::Tensor out = at::empty_like(z);
  if (z.numel() == 0) return out;
  const auto view = unit_view(z, dim);
  if (fusable && view && out.strides() == z.strides()) {
    fused(*view, out.mutable_data_ptr(), alive_threshold.const_data_ptr<float>(),
          counts[0].mutable_data_ptr<int64_t>(), counts[1].mutable_data_ptr<int64_t>());
  } else {
    plain(out);
    torch_ext::count_active_(z, counts, dim, alive_threshold);
  }
  return out;
}

at::Tensor prelu_counted_forward(const at::Tensor& self, const at::Tensor& weight,
                                 at::Tensor& counts, int64_t unit_dim,
                                 const at::Tensor& alive_threshold,
                                 const std::function<void(const UnitView&, void*, const void*,
                                                          const float*, int64_t*, int64_t*)>& fused,
                                 const std::function<void(at::Tensor&)>& plain) {
  outputs::prelu(self, weight);  // PReLU's own argument checks
  const bool per_unit_slopes =
      weight.numel() == 1 || self.dim() < 2 || (unit_dim + self.dim()) % self.dim() == 1;
  return counted_forward(
      "torch_ext::prelu_counted", self, counts, unit_dim, alive_threshold,
      [&](const UnitView& view, void* out, const float* threshold, int64_t* active,
          int64_t* alive) {
        // On CUDA, freed after the launch: the caching allocator reuses it only after the
        // kernel has run.
        const at::Tensor slopes = weight.reshape({-1}).expand({view.units}).contiguous();
        fused(view, out, slopes.const_data_ptr(), threshold, active, alive);
      },
      plain, per_unit_slopes);
}

}  // namespace torch_ext
