// CUDA implementation of torch_ext::count_active_.

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/cuda/counting.cuh"
#include "ops/outputs.h"

namespace torch_ext::cuda {
namespace {

void count_active_(const at::Tensor& z, at::Tensor& counts, int64_t unit_dim,
                   const at::Tensor& alive_threshold) {
  const int64_t dim = outputs::count_active(z, counts, unit_dim, alive_threshold);
  if (z.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(z.device());
  at::Tensor storage;
  const UnitView view = unit_view_or_copy(z, dim, storage);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, z.scalar_type(), "count_active_cuda", [&] {
        count_units<scalar_t>(view, CountOnly{}, alive_threshold.const_data_ptr<float>(),
                              counts[0].mutable_data_ptr<int64_t>(),
                              counts[1].mutable_data_ptr<int64_t>());
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, CUDA, m) { m.impl("count_active_", count_active_); }

}  // namespace torch_ext::cuda
