// CPU implementation of torch_ext::count_active_, and the shared part of the counted
// forwards (ops/cpu/counted.h).

#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "ops/cpu/counted.h"
#include "ops/cpu/loops.h"
#include "ops/outputs.h"

namespace torch_ext::cpu {

// Units innermost in memory (a Linear output, a channels_last conv output) give rows; a
// contiguous tensor gives planes; other layouts have no view.
std::optional<UnitView> unit_view(const at::Tensor& z, int64_t dim) {
  const int64_t units = z.size(dim);
  if (z.movedim(dim, -1).is_contiguous()) {
    return UnitView{z.const_data_ptr(), z.scalar_type(), z.numel() / units, units, 1, units, 1};
  }
  if (!z.is_contiguous()) return std::nullopt;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= z.size(d);
  for (int64_t d = dim + 1; d < z.dim(); ++d) inner *= z.size(d);
  return UnitView{z.const_data_ptr(), z.scalar_type(), outer, units, inner, units * inner, inner};
}

namespace {

// Counts z; a layout without a unit view is first copied contiguous (the one temporary).
void count(const at::Tensor& z, int64_t dim, const at::Tensor& alive_threshold,
           at::Tensor& counts) {
  if (z.numel() == 0) return;
  auto view = unit_view(z, dim);
  const at::Tensor contiguous = view ? at::Tensor() : z.contiguous();
  if (!view) view = unit_view(contiguous, dim);
  loops().count_active(*view, alive_threshold.const_data_ptr<float>(),
                       counts[0].mutable_data_ptr<int64_t>(), counts[1].mutable_data_ptr<int64_t>());
}

void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold) {
  count(z, outputs::count_active(z, counts, unit_dim, alive_threshold), alive_threshold, counts);
}

}  // namespace

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
    count(z, dim, alive_threshold, counts);
  }
  return out;
}

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("count_active_", count_active_);
}

}  // namespace torch_ext::cpu
