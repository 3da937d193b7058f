// CPU implementation of torch_ext::count_active_.

#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "ops/cpu/loops.h"
#include "ops/outputs.h"

namespace torch_ext::cpu {
namespace {

// Views z as [outer, units, inner] with inner contiguous. Units innermost in memory (a
// Linear output, a channels_last conv output) give rows; a contiguous tensor gives planes;
// any other layout is copied contiguous first (the one case with a temporary).
UnitView unit_view(const at::Tensor& z, int64_t dim) {
  const int64_t units = z.size(dim);
  if (z.movedim(dim, -1).is_contiguous()) {
    return {z.const_data_ptr(), z.scalar_type(), z.numel() / units, units, 1, units, 1};
  }
  TORCH_INTERNAL_ASSERT(z.is_contiguous());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= z.size(d);
  for (int64_t d = dim + 1; d < z.dim(); ++d) inner *= z.size(d);
  return {z.const_data_ptr(), z.scalar_type(), outer, units, inner, units * inner, inner};
}

void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold) {
  const int64_t dim = outputs::count_active(z, counts, unit_dim, alive_threshold);
  if (z.numel() == 0) return;
  const bool has_view = z.movedim(dim, -1).is_contiguous() || z.is_contiguous();
  const at::Tensor source = has_view ? z : z.contiguous();
  loops().count_active(unit_view(source, dim), alive_threshold.const_data_ptr<float>(),
                       counts[0].mutable_data_ptr<int64_t>(), counts[1].mutable_data_ptr<int64_t>());
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) {
  m.impl("count_active_", count_active_);
}

}  // namespace torch_ext::cpu
