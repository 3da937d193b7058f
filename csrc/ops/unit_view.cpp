#include "ops/unit_view.h"

namespace torch_ext {

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

UnitView unit_view_or_copy(const at::Tensor& z, int64_t dim, at::Tensor& storage) {
  if (auto view = unit_view(z, dim)) return *view;
  storage = z.contiguous();
  return *unit_view(storage, dim);
}

}  // namespace torch_ext
