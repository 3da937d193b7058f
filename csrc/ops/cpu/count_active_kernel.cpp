// CPU implementation of torch_ext::count_active_.

#include <torch/library.h>

#include "ops/cpu/loops.h"
#include "ops/outputs.h"
#include "ops/unit_view.h"

namespace torch_ext::cpu {
namespace {

void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold) {
  const int64_t dim = outputs::count_active(z, counts, unit_dim, alive_threshold);
  if (z.numel() == 0) return;
  at::Tensor storage;
  loops().count_active(unit_view_or_copy(z, dim, storage), alive_threshold.const_data_ptr<float>(),
                       counts[0].mutable_data_ptr<int64_t>(),
                       counts[1].mutable_data_ptr<int64_t>());
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CPU, m) { m.impl("count_active_", count_active_); }

}  // namespace torch_ext::cpu
