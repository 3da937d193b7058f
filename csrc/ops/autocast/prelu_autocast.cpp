// Autocast for torch_ext::prelu and prelu_counted, as ATen's autocast treats aten::prelu:
// in torch.autocast("cpu") and torch.autocast("cuda") it is a lower-precision op, so the input
// and the weight are cast to the autocast dtype (bfloat16 or float16 by default) and the
// output is of that dtype; the weight's gradient flows back through the cast, in float32.
// The other ops need no rule: autocast leaves their dtypes alone, as it leaves ATen's.

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "torch_ext/ops.h"

namespace torch_ext {
namespace {

// Autocast's cast of one argument for `device`: to the autocast dtype when it is an eligible
// floating tensor (float32; not float64), cached for leaf weights as autocast caches them.
template <c10::DeviceType device>
at::Tensor lower_precision(const at::Tensor& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(device), t,
                                   device);
}

template <c10::DeviceType device>
c10::impl::ExcludeDispatchKeyGuard below_autocast() {
  return c10::impl::ExcludeDispatchKeyGuard(
      at::autocast::get_autocast_dispatch_key_from_device_type(device));
}

template <c10::DeviceType device>
at::Tensor prelu_autocast(const at::Tensor& self, const at::Tensor& weight) {
  const auto guard = below_autocast<device>();
  return torch_ext::prelu(lower_precision<device>(self), lower_precision<device>(weight));
}

template <c10::DeviceType device>
at::Tensor prelu_counted_autocast(const at::Tensor& self, const at::Tensor& weight,
                                  at::Tensor& counts, int64_t unit_dim,
                                  const at::Tensor& alive_threshold,
                                  const std::optional<at::Tensor>& abs_sum) {
  const auto guard = below_autocast<device>();
  return torch_ext::prelu_counted(lower_precision<device>(self), lower_precision<device>(weight),
                                  counts, unit_dim, alive_threshold, abs_sum);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ext, AutocastCPU, m) {
  m.impl("prelu", prelu_autocast<c10::DeviceType::CPU>);
  m.impl("prelu_counted", prelu_counted_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(torch_ext, AutocastCUDA, m) {
  m.impl("prelu", prelu_autocast<c10::DeviceType::CUDA>);
  m.impl("prelu_counted", prelu_counted_autocast<c10::DeviceType::CUDA>);
}

}  // namespace torch_ext
